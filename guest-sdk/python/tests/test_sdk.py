"""The SDK natively: batches, scans and emits through MemoryHost, logging,
and the failure message an exception becomes."""

import datetime
import logging

import pyarrow as pa
import pytest

import corral_guest as cg
from corral_guest import Batch, Column, ScanError, col, emit, export, scan, types
from corral_guest.testing import MemoryHost

CONFIG = {
    "id": [1, 2, 3, 4, 5, 6],
    "k": [1, 2, 1, 1, None, 2],
    "value": [1.0, None, 3.0, 4.5, 5.0, 6.0],
    "name": ["a", "b", None, "dd", "e", "f"],
}


@export
def double_values(ctx):
    factor = ctx.params["factor"]
    for batch in scan(columns=["id", "value", "name"], filter=col("k") == ctx.iteration, batch_rows=2):
        value = batch["value"]
        score = Column.from_values(types.float64, [v * factor for v in value.values], cg.both_valid(value))
        emit(Batch.from_columns({"id": batch["id"], "score": score, "name": batch["name"]}))
    cg.log.info("iteration %d done" % ctx.iteration)


def test_a_transform_runs_against_the_memory_host():
    host = MemoryHost(CONFIG, params={"factor": 2})
    result = host.run(double_values, iteration=1)
    assert result.to_pydict() == {"id": [1, 3, 4], "score": [2.0, 6.0, 9.0], "name": ["a", None, "dd"]}
    assert [b.num_rows for b in result.batches] == [2, 1]
    assert result.logs == [("info", "iteration 1 done")]
    assert host.run(double_values, iteration=2).to_pydict() == {"id": [2, 6], "score": [None, 12.0], "name": ["b", "f"]}
    assert host.run(double_values, iteration=9).num_rows == 0


@pytest.mark.parametrize(
    "filter,expected",
    [
        (col("k") == None, [5]),  # noqa: E711 (IS NULL)
        (col("k") != None, [1, 2, 3, 4, 6]),  # noqa: E711
        (col("k") != 1, [2, 6]),  # NULL is not != 1
        (col("value") > 3, [4, 5, 6]),
        (col("value") <= 3, [1, 3]),
        ((col("k") == 1) & (col("value") >= 3.0), [3, 4]),
        (col("name") < "c", [1, 2]),
        (col("k") == 1.0, [1, 3, 4]),
        (col("k") == 1.5, []),
    ],
    ids=repr,
)
def test_the_memory_host_filters_like_corral(filter, expected):
    @export
    def ids(ctx):
        for batch in scan(columns=["id"], filter=filter):
            emit(batch)

    assert MemoryHost(CONFIG).run(ids, 0).to_pydict().get("id", []) == expected


def test_scan_errors_carry_the_hosts_message():
    def unknown(ctx):
        scan(columns=["nope"])

    with pytest.raises(ScanError, match="no column `nope`"):
        MemoryHost(CONFIG).run(unknown, 0)

    def mismatched(ctx):
        scan(filter=col("name") == 3)

    with pytest.raises(ScanError, match="cannot compare column `name`"):
        MemoryHost(CONFIG).run(mismatched, 0)
    with pytest.raises(TypeError, match="only == and != compare with None"):
        col("k") < None
    with pytest.raises(TypeError, match="combine comparisons with &"):
        bool(col("k") == 1)


def test_a_changed_schema_is_refused_like_the_host_does():
    def two_schemas(ctx):
        emit(Batch.from_pydict({"a": [1]}))
        emit(Batch.from_pydict({"b": ["x"]}))

    with pytest.raises(cg.EmitError, match="schema"):
        MemoryHost(CONFIG).run(two_schemas, 0)


def test_standard_logging_goes_to_the_host():
    def logs(ctx):
        cg.log.route_logging()
        logging.getLogger("model").warning("careful: %d", ctx.iteration)
        cg.log.debug("detail")

    result = MemoryHost(CONFIG).run(logs, 7)
    assert ("warn", "careful: 7") in result.logs and ("debug", "detail") in result.logs


def test_context_gives_iteration_params_and_job_name():
    seen = {}

    def look(ctx):
        seen.update(iteration=ctx.iteration, params=ctx.params, job=ctx.job_name)

    MemoryHost(CONFIG, params={"a": [1, 2], "b": "x"}, job_name="seed").run(look, 12)
    assert seen == {"iteration": 12, "params": {"a": [1, 2], "b": "x"}, "job": "seed"}


def test_rows_and_columns_build_the_same_batch():
    schema = cg.Schema([cg.Field("d", types.date32), cg.Field("n", types.int32), cg.Field("s", types.utf8)])
    rows = [(datetime.date(2024, 1, 2), 1, "x"), (None, 2, None)]
    by_rows = Batch.from_rows(rows, schema)
    by_dicts = Batch.from_rows([dict(zip(schema.names, r)) for r in rows], schema)
    by_columns = Batch.from_pydict({"d": [r[0] for r in rows], "n": [1, 2], "s": ["x", None]}, schema)
    assert by_rows.to_pylist() == by_dicts.to_pylist() == by_columns.to_pylist()
    assert by_rows.to_pylist() == [{"d": datetime.date(2024, 1, 2), "n": 1, "s": "x"}, {"d": None, "n": 2, "s": None}]
    assert by_rows["n"].values.tolist() == [1, 2]
    assert by_rows.select(["s", "n"]).column_names == ["s", "n"]


def test_type_inference_and_its_errors():
    assert Column.from_pylist([1, None]).type == types.int64
    assert Column.from_pylist([1, 2.5]).type == types.float64
    assert Column.from_pylist(["a"]).type == types.utf8
    assert Column.from_pylist([None]).type == types.null
    with pytest.raises(TypeError, match="pass type="):
        Column.from_pylist([1, "a"])
    with pytest.raises(TypeError, match="cannot make"):
        Column.from_pylist(["a"], types.int32)
    with pytest.raises(ValueError, match="has 2 rows"):
        Batch.from_pydict({"a": [1], "b": [1, 2]})


def test_failure_message_has_the_exception_and_traceback():
    def inner():
        raise ValueError("the model diverged")

    try:
        inner()
    except ValueError as e:
        message = cg.failure_message(e)
    assert message.startswith("ValueError: the model diverged\n")
    assert "Traceback (most recent call last)" in message and "in inner" in message


def test_an_import_error_explains_imports_in_the_sandbox():
    try:
        import not_a_module_anywhere  # noqa: F401
    except ImportError as e:
        message = cg.failure_message(e)
    assert "import every module at the top of the file" in message


def test_a_huge_failure_message_is_cut_keeping_its_ends():
    message = cg.failure_message(RuntimeError("x" * 100_000))
    assert len(message) < 20_000
    assert message.startswith("RuntimeError: x") and message.rstrip().endswith("x")


def test_memory_host_sends_what_pyarrow_reads():
    # The fake host's scan streams are valid Arrow IPC, as the real host's.
    host = MemoryHost(CONFIG)
    resource = host.open_scan(["id", "name"], [("k", "eq", 1)], 2)
    tables = [pa.ipc.open_stream(resource.schema()).read_all()]
    while (data := resource.next()) is not None:
        tables.append(pa.ipc.open_stream(data).read_all())
    assert pa.concat_tables(tables).to_pydict() == {"id": [1, 3, 4], "name": ["a", None, "dd"]}


def test_settling_writes_the_modules_schemas_and_freezes_the_heap():
    # What the component's build runs after the app module is imported (see
    # corral_guest._settle): natively it must leave the codec working.
    import gc
    import types as pytypes

    module = pytypes.ModuleType("app_under_test")
    module.SCHEMA = cg.Schema([cg.Field("x", types.int64)])
    try:
        cg._settle(module)
        assert module.SCHEMA._encoded is not None
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        logging.getLogger().handlers[:] = [
            h for h in logging.getLogger().handlers if not isinstance(h, cg.log.HostHandler)
        ]
    batch = Batch.from_columns({"x": Column.from_values(types.int64, [7])})
    host = MemoryHost({"x": [1]})
    result = host.run(lambda ctx: emit(batch), 0)
    assert result.to_pydict() == {"x": [7]}
