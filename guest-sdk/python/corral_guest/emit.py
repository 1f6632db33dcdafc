"""Writing the iteration's output: ``emit(batch)``."""

from . import host, ipc
from .batch import Batch

__all__ = ["emit", "MAX_STREAM_BYTES"]

#: The most bytes one emitted IPC stream may hold (the host's limit): a
#: larger batch is emitted as several.
MAX_STREAM_BYTES = 16 << 20


def emit(batch):
    """Appends ``batch`` to the iteration's output. Every batch an iteration
    emits must have the same schema. A batch whose encoding exceeds the
    host's per-call limit is split and emitted in parts. Raises
    ``EmitError`` with the host's message if the host refuses it."""
    if not isinstance(batch, Batch):
        raise TypeError("emit() takes a corral_guest Batch, not %s" % batch.__class__.__name__)
    target = host.current()
    for data in _streams(batch):
        target.emit(data)


def _streams(batch):
    """The IPC streams of ``batch``, each within ``MAX_STREAM_BYTES`` unless
    it is a single row that cannot be split."""
    data = ipc.write_stream(batch)
    if len(data) <= MAX_STREAM_BYTES or batch.num_rows <= 1:
        yield data
        return
    parts = -(-len(data) // (MAX_STREAM_BYTES * 7 // 8))
    step = -(-batch.num_rows // parts)
    for start in range(0, batch.num_rows, step):
        yield from _streams(batch.slice(start, step))
