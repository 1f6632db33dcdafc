"""Tries to read the host's files: the sandbox has none."""

from attacks.common import copy_rows


def run(ctx):
    for path in ("/etc/passwd", "/proc/self/environ", "."):
        try:
            with open(path, "rb") as f:
                data = f.read(64)
        except OSError:
            continue
        raise RuntimeError("read %s from the host: %r" % (path, data))
    copy_rows(ctx)
