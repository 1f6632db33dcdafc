"""Sleeps far past any timeout: stopped by the timeout, without burning fuel."""

import time


def run(ctx):
    time.sleep(3600)
