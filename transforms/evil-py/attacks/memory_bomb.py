"""Allocates until refused: stopped at the memory cap."""


def run(ctx):
    hoard = []
    while True:
        hoard.append(bytearray(1 << 20))
