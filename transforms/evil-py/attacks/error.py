"""Raises: the iteration fails as guest_error with the traceback."""


def _diverge(ctx):
    raise ValueError("the model diverged at iteration %d" % ctx.iteration)


def run(ctx):
    _diverge(ctx)
