"""Emits one small batch and reads nothing: a row ``(iteration, label)`` for
its iteration; the Python twin of ``one-row``, for the benchmark's
per-iteration overhead case."""

from corral_guest import Batch, Column, Field, Schema, emit, export, types

SCHEMA = Schema([Field("iteration", types.int64, nullable=False), Field("label", types.utf8, nullable=False)])


@export
def run(ctx):
    emit(
        Batch(
            SCHEMA,
            [Column.from_values(types.int64, [ctx.iteration]), Column.from_values(types.utf8, ["iteration %d" % ctx.iteration])],
        )
    )
