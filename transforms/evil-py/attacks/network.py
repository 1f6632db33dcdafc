"""Tries to open a socket: the sandbox has no network."""

import socket

from attacks.common import copy_rows


def run(ctx):
    port = int(ctx.params.get("port", 80))
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
    except OSError:
        copy_rows(ctx)
        return
    s.close()
    raise RuntimeError("connected to 127.0.0.1:%d from the sandbox" % port)
