"""What a good iteration does: copy its rows."""

from corral_guest import col, emit, scan


def copy_rows(ctx):
    """Emits the config rows of this iteration (``id, some_column, value``)."""
    rows = scan(columns=["id", "some_column", "value"], filter=col("some_column") == ctx.iteration)
    for batch in rows:
        emit(batch)
