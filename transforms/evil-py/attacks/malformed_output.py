"""Emits bytes that are not Arrow IPC, past the SDK's encoder."""

from corral_guest import host


def run(ctx):
    host.current().emit(b"\xff\xff\xff\xff\x10\x00\x00\x00not arrow at all")
