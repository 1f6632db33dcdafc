"""Logs without end: stopped by fuel, the host's log kept to its budget."""

from corral_guest import log


def run(ctx):
    line = "x" * 4096
    while True:
        log.info(line)
