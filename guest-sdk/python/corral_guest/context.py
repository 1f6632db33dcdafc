"""What a transform is given for one iteration."""

import json

__all__ = ["Context"]


class Context:
    """The iteration's id (``iteration``, the seed's ``n``), the job's
    ``[params]`` as a dict (``params``, the seed's ``config_dict``) and the
    job's name (``job_name``)."""

    __slots__ = ("iteration", "job_name", "_params_json", "_params")

    def __init__(self, iteration, params="{}", job_name=""):
        self.iteration = iteration
        self.job_name = job_name
        if isinstance(params, str):
            self._params_json, self._params = params, None
        else:
            self._params_json, self._params = None, dict(params)

    @property
    def params(self):
        """The job's ``[params]`` table as a dict."""
        if self._params is None:
            self._params = json.loads(self._params_json)
        return self._params

    def __repr__(self):
        return "Context(iteration=%r, job_name=%r)" % (self.iteration, self.job_name)
