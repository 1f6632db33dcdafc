"""The host a transform talks to: corral's, inside the sandbox, or a fake
one (``corral_guest.testing.MemoryHost``) when the transform runs natively.

A host has three calls, the ``host`` interface of corral's WIT world:
``log(level, message)``, ``open_scan(columns, filter, batch_rows)`` (a scan
with ``schema()`` and ``next()``, both IPC bytes) and ``emit(ipc_bytes)``.
"""

__all__ = ["ScanError", "EmitError", "current", "install", "sandbox_host"]


class ScanError(Exception):
    """The host refused a scan (an unknown column, a literal that cannot be
    compared with its column, a request over a limit); the message is the
    host's."""


class EmitError(Exception):
    """The host refused an emitted batch (a changed schema, the output cap);
    the iteration fails as ``invalid_output`` whatever ``run`` does next."""


_current = None


def install(host):
    """Makes ``host`` the one this process's calls go to; returns the one
    it replaces."""
    global _current
    previous, _current = _current, host
    return previous


def current():
    """The host calls go to."""
    if _current is None:
        raise RuntimeError(
            "no corral host: a transform's calls work inside corral, or natively under corral_guest.testing.MemoryHost"
        )
    return _current


try:  # Inside a component built by componentize-py: corral's own host.
    from componentize_py_types import Err as _Err
    from wit_world.imports import host as _wit
    from wit_world.imports import types as _wit_types
except ImportError:  # Natively: only the fake host.
    _wit = None


def sandbox_host():
    """corral's host, or ``None`` outside a component."""
    return _SandboxHost() if _wit is not None else None


if _wit is not None:
    _LEVELS = {
        "trace": _wit.Level.TRACE,
        "debug": _wit.Level.DEBUG,
        "info": _wit.Level.INFO,
        "warn": _wit.Level.WARN,
        "error": _wit.Level.ERROR,
    }
    _OPS = {
        "eq": _wit_types.ComparisonOp.EQ,
        "ne": _wit_types.ComparisonOp.NE,
        "lt": _wit_types.ComparisonOp.LT,
        "le": _wit_types.ComparisonOp.LE,
        "gt": _wit_types.ComparisonOp.GT,
        "ge": _wit_types.ComparisonOp.GE,
    }

    def _literal(value):
        if value is None:
            return _wit_types.Literal_Null()
        if isinstance(value, bool):
            return _wit_types.Literal_Boolean(value)
        if isinstance(value, int):
            if value >= 1 << 63:
                return _wit_types.Literal_Uint(value)
            return _wit_types.Literal_Int(value)
        if isinstance(value, float):
            return _wit_types.Literal_Float(value)
        if isinstance(value, str):
            return _wit_types.Literal_Text(value)
        raise TypeError("a filter compares with None, bool, int, float or str, not %s" % value.__class__.__name__)

    class _SandboxHost:
        def log(self, level, message):
            _wit.log(_LEVELS[level], message)

        def open_scan(self, columns, comparisons, batch_rows):
            request = _wit_types.ScanRequest(
                columns=None if columns is None else list(columns),
                filter=[_wit_types.Comparison(c, _OPS[op], _literal(v)) for c, op, v in comparisons],
                batch_rows=batch_rows,
            )
            try:
                return _wit.open_scan(request)
            except _Err as e:
                raise ScanError(str(e.value)) from None

        def emit(self, data):
            try:
                _wit.emit(data)
            except _Err as e:
                raise EmitError(str(e.value)) from None
