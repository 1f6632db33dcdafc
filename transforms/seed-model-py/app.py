"""The seed job's model step in Python: for iteration ``n``, the config rows
where ``some_column == n``, with ``score = value * param1 + weight * param2``,
as columns ``(id, some_column, score, name)``; the same output as the Rust
``seed-model``."""

from corral_guest import Batch, Column, Field, Schema, both_valid, col, emit, export, log, scan, types


@export
def run(ctx):
    param1 = float(ctx.params["param1"])
    param2 = float(ctx.params["param2"])
    rows = scan(columns=["id", "some_column", "value", "weight", "name"], filter=col("some_column") == ctx.iteration)
    source = rows.schema
    schema = Schema([source.field("id"), source.field("some_column"), Field("score", types.float64), source.field("name")])
    emitted = 0
    for batch in rows:
        value, weight = batch["value"], batch["weight"]
        scores = [v * param1 + w * param2 for v, w in zip(value.values, weight.values)]
        score = Column.from_values(types.float64, scores, both_valid(value, weight))
        emit(Batch(schema, [batch["id"], batch["some_column"], score, batch["name"]]))
        emitted += batch.num_rows
    if emitted == 0:
        # An iteration with no rows still writes an (empty) output with its schema.
        emit(Batch.empty(schema))
    log.debug("iteration %d: %d rows" % (ctx.iteration, emitted))
