"""corral's guest SDK for Python: write a transform as a Python function.

::

    from corral_guest import Batch, Column, col, emit, export, scan

    @export
    def run(ctx):
        for batch in scan(columns=["id", "value"], filter=col("some_column") == ctx.iteration):
            doubled = Column.from_values(batch["value"].type, [v * 2 for v in batch["value"].values])
            emit(Batch.from_columns({"id": batch["id"], "doubled": doubled}))

Build it into a component of corral's ``transform`` world with
``componentize-py -d wit -w transform componentize app -p . -p <this SDK's
folder> -o app.wasm``; test it natively with ``corral_guest.testing.MemoryHost``.

Inside the sandbox there are no files, sockets or environment, and imports
are taken when the component is built: import everything at the top of the
module, never inside ``run``.
"""

import gc
import sys
import traceback

from . import host as _host
from . import log
from . import schema as types
from .batch import Batch, Column, both_valid
from .context import Context
from .emit import MAX_STREAM_BYTES, emit
from .host import EmitError, ScanError
from . import ipc
from .ipc import IpcError
from .scan import Filter, Scan, col, scan
from .schema import DataType, Field, Schema, UnsupportedTypeError

__all__ = [
    "Batch",
    "Column",
    "Context",
    "DataType",
    "EmitError",
    "Field",
    "Filter",
    "IpcError",
    "MAX_STREAM_BYTES",
    "Scan",
    "ScanError",
    "Schema",
    "UnsupportedTypeError",
    "both_valid",
    "col",
    "emit",
    "export",
    "log",
    "scan",
    "types",
]

#: The most characters of a failure message handed to the host (the host
#: truncates longer ones too; this keeps the traceback's end, where the
#: error is).
_MAX_MESSAGE = 16 * 1024


def failure_message(error):
    """The ``guest_error`` message for an exception raised by ``run``: its
    type, message and traceback, with a hint for the mistakes Python
    transforms make in the sandbox."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip()
    headline = "%s: %s" % (type(error).__name__, error)
    if isinstance(error, ImportError):
        headline += (
            " (inside the sandbox modules cannot be imported while running: imports are taken when the"
            " component is built, so import every module at the top of the file, not inside run)"
        )
    message = headline + "\n" + text
    if len(message) > _MAX_MESSAGE:
        message = headline[: _MAX_MESSAGE // 2] + "\n...\n" + text[-_MAX_MESSAGE // 2 :]
    return message


def export(run):
    """Makes ``run(ctx)`` the module's transform. Use it as a decorator on a
    function of the app module (the one given to ``componentize-py``).

    ``run`` is called once per iteration with a ``Context``; it reads the
    config table with ``scan``, writes its output with ``emit`` and fails
    the iteration by raising. Natively the function is returned unchanged,
    to be run by ``corral_guest.testing.MemoryHost``.
    """
    if not callable(run):
        raise TypeError("export() takes the transform's run function")
    if _host._wit is not None:
        module = sys.modules[run.__module__]
        module.WitWorld = _world(run)
        _settle(module)
    return run


def _settle(module):
    """Work done once, inside the component's build, rather than in every
    iteration: componentize-py snapshots the interpreter after the app module
    is imported, and each iteration starts from that snapshot (a fresh
    interpreter runs its first call of anything several times slower than
    its next). So here:

    - the root logger is routed to the host;
    - the schemas the app module has defined so far have their IPC message
      written;
    - the codec runs once, writing and reading a batch of every type, so
      that the snapshot holds its bytecode specialised and its caches
      filled;
    - the collector runs, and what survives is frozen, so that no
      iteration's collection walks (and writes to the pages of) the
      thousands of objects every iteration starts with.
    """
    log.route_logging()
    for value in list(vars(module).values()):
        if isinstance(value, Schema):
            ipc._schema_message(value)
    _run_codec_once()
    gc.collect()
    gc.freeze()


def _run_codec_once():
    """Writes a batch holding a column of every type (with a null) as IPC,
    reads it back and reads its values, twice: the first run specialises
    the interpreter's bytecode, the second settles it."""
    kinds = [
        types.bool_, types.int8, types.int16, types.int32, types.int64,
        types.uint8, types.uint16, types.uint32, types.uint64, types.float32, types.float64,
        types.utf8, types.large_utf8, types.binary, types.large_binary,
        types.date32, types.date64, types.timestamp("us"),
    ]
    samples = {"bool": [True, False], "utf8": ["a", ""], "large_utf8": ["a", ""], "binary": [b"a", b""], "large_binary": [b"a", b""]}
    for _ in range(2):
        columns = {}
        for i, kind in enumerate(kinds):
            values = samples.get(kind.kind, [1, 0])
            if kind.kind == "float":
                values = [1.5, 0.0]
            columns["c%d" % i] = Column.from_values(kind, values, validity=both_valid(Column.from_pylist([1, None])))
        columns["n"] = Column.from_values(types.int64, [1, 2])
        batch = Batch.from_columns(columns)
        _schema, batches = ipc.read_stream(ipc.write_stream(batch))
        for decoded in batches:
            decoded.to_pylist()
            for column in decoded.columns:
                if column.type.is_fixed_width or column.type.kind == "bool":
                    column.values


def _world(run):
    from componentize_py_types import Err
    from wit_world import WitWorld as _Base
    from wit_world.imports import types as wit_types

    class WitWorld(_Base):
        def run(self, ctx):
            previous = _host.install(_host.sandbox_host())
            try:
                log.route_logging()
                run(Context(ctx.iteration, ctx.params, ctx.job_name))
            except BaseException as error:  # every failure is the iteration's, reported as such
                raise Err(wit_types.GuestError(failure_message(error))) from None
            finally:
                _host.install(previous)

    return WitWorld
