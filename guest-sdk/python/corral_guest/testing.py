"""Running a transform natively, under CPython, against a fake host.

::

    from corral_guest.testing import MemoryHost
    import app

    def test_iteration_3():
        host = MemoryHost({"some_column": [3, 4], "value": [1.5, 2.0]}, params={"param1": 2})
        result = host.run(app.run, iteration=3)
        assert result.to_pydict() == {...}

``MemoryHost`` does what corral's host does, in Python: it projects and
filters the config table for ``scan`` (with the host's NULL semantics),
sends batches and takes emitted ones as Arrow IPC through the same codec as
the sandbox, checks that every emitted batch has one schema, and keeps the
log. It does not sandbox: limits on fuel, memory and time apply only in corral.
"""

import json
import math
import time
from array import array

from . import host as _host
from . import ipc
from .batch import Batch, Column
from .context import Context
from .host import EmitError, ScanError
from .schema import Schema

__all__ = ["MemoryHost", "RunResult"]

_DEFAULT_BATCH_ROWS = 8192


class RunResult:
    """What one iteration did: ``batches`` emitted, ``logs`` as
    ``(level, message)`` pairs."""

    def __init__(self, batches, logs):
        self.batches = batches
        self.logs = logs

    @property
    def schema(self):
        """The output's schema (``None`` if nothing was emitted)."""
        return self.batches[0].schema if self.batches else None

    @property
    def num_rows(self):
        """Rows emitted in all."""
        return sum(b.num_rows for b in self.batches)

    def to_pydict(self):
        """Every emitted row as ``{name: [values]}``."""
        if not self.batches:
            return {}
        out = {name: [] for name in self.batches[0].column_names}
        for batch in self.batches:
            for name, values in batch.to_pydict().items():
                out[name].extend(values)
        return out

    def to_pylist(self):
        """Every emitted row as a dict."""
        return [row for batch in self.batches for row in batch.to_pylist()]


class MemoryHost:
    """A fake corral host over a config table held in memory.

    ``config`` is a ``Batch``, a list of ``Batch``es of one schema, or a
    mapping of column name to Python values; ``params`` is the job's
    ``[params]`` as a dict; ``job_name`` the job's name.
    """

    def __init__(self, config, params=None, job_name="test"):
        if isinstance(config, dict):
            config = Batch.from_pydict(config)
        if isinstance(config, Batch):
            config = [config]
        config = list(config)
        if not config:
            raise ValueError("MemoryHost needs at least one config batch (it gives the table its schema)")
        schema = config[0].schema
        for batch in config[1:]:
            if batch.schema != schema:
                raise ValueError("config batches of different schemas: %r and %r" % (schema, batch.schema))
        self.schema = schema
        self.config = config
        self.params_json = json.dumps(params or {})
        self.job_name = job_name
        #: Seconds spent in the fake host's own work (filtering, encoding
        #: and decoding), which inside corral is the native host's.
        self.host_seconds = 0.0
        self._indexes = {}
        self._emitted = None
        self._logs = None

    def run(self, transform, iteration):
        """Runs ``transform`` (the function given to ``export``) for one
        iteration and returns a ``RunResult``. An exception ``run`` raises
        propagates, as the iteration's failure."""
        self._emitted, self._logs = [], []
        previous = _host.install(self)
        try:
            transform(Context(iteration, self.params_json, self.job_name))
        finally:
            _host.install(previous)
        result = RunResult(self._emitted, self._logs)
        self._emitted = self._logs = None
        return result

    # --- The host interface ----------------------------------------------

    def log(self, level, message):
        self._logs.append((level, message))

    def emit(self, data):
        started = time.perf_counter()
        try:
            schema, batches = ipc.read_stream(data)
        except ValueError as e:
            raise EmitError("the emitted batch is not valid Arrow IPC: %s" % e) from None
        finally:
            self.host_seconds += time.perf_counter() - started
        if self._emitted and self._emitted[0].schema != schema:
            raise EmitError("an emitted batch's schema %r differs from the first one's %r" % (schema, self._emitted[0].schema))
        if not batches:
            batches = [Batch.empty(schema)]
        self._emitted.extend(batches)

    def open_scan(self, columns, comparisons, batch_rows):
        started = time.perf_counter()
        try:
            return _MemoryScan(self._scan(columns, comparisons, batch_rows or _DEFAULT_BATCH_ROWS))
        finally:
            self.host_seconds += time.perf_counter() - started

    # --- Scanning --------------------------------------------------------

    def _scan(self, columns, comparisons, batch_rows):
        names = self.schema.names
        for name in list(columns or ()) + [c for c, _, _ in comparisons]:
            if name not in names:
                raise ScanError("no column `%s` in the config table (columns: %s)" % (name, ", ".join(names)))
        for column, op, value in comparisons:
            _check_comparable(self.schema.field(column).type, column, op, value)
        projection = names if columns is None else list(columns)
        schema = Schema([self.schema.field(n) for n in projection])
        streams = [ipc.write_stream(Batch.empty(schema))]
        pending = []
        for part, batch in enumerate(self.config):
            rows = self._matching_rows(part, batch, comparisons)
            if rows is None:
                selected = batch.select(projection)
            elif rows:
                selected = batch.select(projection).take(rows)
            else:
                continue
            pending.append(selected)
        for selected in pending:
            for start in range(0, selected.num_rows, batch_rows):
                streams.append(ipc.write_stream(selected.slice(start, batch_rows)))
        return streams

    def _matching_rows(self, part, batch, comparisons):
        """Indices of ``batch``'s rows matching every comparison, or
        ``None`` for all of them."""
        if not comparisons:
            return None
        candidates = None
        rest = list(comparisons)
        # An equality with a non-null literal is answered from an index of
        # that column, built once: iterations that each select their own
        # rows then cost their rows, not the table's.
        for i, (column, op, value) in enumerate(rest):
            if op == "eq" and value is not None:
                index = self._indexes.get((part, column))
                if index is None:
                    index = self._indexes[(part, column)] = _index(batch[column])
                candidates = list(index.get(_key(value), ()))
                del rest[i]
                break
        if candidates is None:
            candidates = range(batch.num_rows)
        for column, op, value in rest:
            data = batch[column]
            candidates = [r for r in candidates if _matches(data[r], op, value)]
        return candidates


class _MemoryScan:
    def __init__(self, streams):
        self._schema = streams[0]
        self._streams = iter(streams[1:])

    def schema(self):
        return self._schema

    def next(self):
        return next(self._streams, None)


def _key(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _index(column):
    index = {}
    for row, value in enumerate(column.to_pylist()):
        if value is None:
            continue
        rows = index.get(value)
        if rows is None:
            rows = index[value] = array("q")
        rows.append(row)
    return index


_OPS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


def _matches(cell, op, value):
    if value is None:
        return (cell is None) == (op == "eq")
    if cell is None:
        return False  # SQL: a comparison with NULL is not true
    if isinstance(cell, float) and math.isnan(cell):
        return op == "ne"
    return _OPS[op](cell, value)


def _check_comparable(datatype, column, op, value):
    if value is None:
        if op not in ("eq", "ne"):
            raise ScanError("column `%s`: NULL can only be compared with eq (IS NULL) or ne (IS NOT NULL)" % column)
        return
    kind = datatype.kind
    ok = {
        "int": isinstance(value, (int, float)) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "utf8": isinstance(value, str),
        "large_utf8": isinstance(value, str),
    }.get(kind, False)
    if not ok:
        raise ScanError("cannot compare column `%s` of type %r with %r" % (column, datatype, value))
