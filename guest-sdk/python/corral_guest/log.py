"""Logging to the host's log: ``log.info("...")`` and the standard
``logging`` module (its root logger is routed to the host)."""

import logging

from . import host

__all__ = ["trace", "debug", "info", "warn", "warning", "error", "HostHandler"]


def _write(level, message):
    host.current().log(level, str(message))


def trace(message):
    """Logs at trace level."""
    _write("trace", message)


def debug(message):
    """Logs at debug level."""
    _write("debug", message)


def info(message):
    """Logs at info level."""
    _write("info", message)


def warn(message):
    """Logs at warn level."""
    _write("warn", message)


warning = warn


def error(message):
    """Logs at error level."""
    _write("error", message)


class HostHandler(logging.Handler):
    """A ``logging`` handler writing records to the host's log."""

    def emit(self, record):
        if record.levelno >= logging.ERROR:
            level = "error"
        elif record.levelno >= logging.WARNING:
            level = "warn"
        elif record.levelno >= logging.INFO:
            level = "info"
        elif record.levelno >= logging.DEBUG:
            level = "debug"
        else:
            level = "trace"
        try:
            _write(level, self.format(record))
        except RuntimeError:
            # No host (the module imported outside a run): nowhere to log.
            pass


def route_logging():
    """Routes the root logger to the host, keeping every level (the host
    filters by its own log level)."""
    root = logging.getLogger()
    if not any(isinstance(h, HostHandler) for h in root.handlers):
        root.addHandler(HostHandler())
    root.setLevel(logging.DEBUG)
