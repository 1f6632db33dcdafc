"""Computes forever: stopped by fuel (or by the timeout)."""


def run(ctx):
    n = 0
    while True:
        n += 1
