"""Tries to open a socket: the sandbox has no network."""

# Imported here, at the top: name lookups encode host names with the idna
# codec, and codecs load lazily, which a sandbox without files cannot.
import encodings.idna  # noqa: F401
import socket

from attacks.common import copy_rows


def run(ctx):
    port = int(ctx.params.get("port", 80))
    for connect in (
        lambda: socket.create_connection(("127.0.0.1", port), timeout=2),
        lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(("127.0.0.1", port)),
    ):
        try:
            connect()
        except OSError:
            continue
        raise RuntimeError("connected to 127.0.0.1:%d from the sandbox" % port)
    copy_rows(ctx)
