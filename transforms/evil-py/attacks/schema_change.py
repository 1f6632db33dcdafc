"""Emits two batches of different schemas."""

from corral_guest import Batch, emit


def run(ctx):
    emit(Batch.from_pydict({"a": [1, 2]}))
    emit(Batch.from_pydict({"b": ["x"]}))
