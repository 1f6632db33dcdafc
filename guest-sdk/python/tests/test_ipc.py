"""The IPC codec against pyarrow: every supported type, nulls included, both
ways, and the streams corral's host sends."""

import datetime
import io

import pyarrow as pa
import pytest

from corral_guest import Batch, Column, Field, Schema, UnsupportedTypeError, types
from corral_guest import ipc
from corral_guest.emit import MAX_STREAM_BYTES, _streams

# (pyarrow type, corral_guest type, values with a null)
CASES = [
    (pa.bool_(), types.bool_, [True, None, False, True, False, False, True, True, False, None]),
    (pa.int8(), types.int8, [-128, None, 0, 127]),
    (pa.int16(), types.int16, [-32768, 1, None, 32767]),
    (pa.int32(), types.int32, [-(2**31), None, 7, 2**31 - 1]),
    (pa.int64(), types.int64, [-(2**63), 2**63 - 1, None, 0]),
    (pa.uint8(), types.uint8, [0, 255, None]),
    (pa.uint16(), types.uint16, [0, 65535, None]),
    (pa.uint32(), types.uint32, [0, 2**32 - 1, None]),
    (pa.uint64(), types.uint64, [0, 2**64 - 1, None]),
    (pa.float32(), types.float32, [1.5, None, -0.25]),
    (pa.float64(), types.float64, [1.5, None, float("inf"), -2.0e300]),
    (pa.utf8(), types.utf8, ["a", None, "", "héllo wörld", "✓"]),
    (pa.large_utf8(), types.large_utf8, ["x" * 100, None, "y"]),
    (pa.binary(), types.binary, [b"\x00\x01", None, b""]),
    (pa.large_binary(), types.large_binary, [b"abc", None]),
    (pa.date32(), types.date32, [datetime.date(2024, 2, 29), None, datetime.date(1960, 1, 1)]),
    (pa.date64(), types.date64, [datetime.date(2024, 2, 29), None]),
    (pa.timestamp("s"), types.timestamp("s"), [datetime.datetime(2024, 1, 1, 12), None]),
    (pa.timestamp("ms"), types.timestamp("ms"), [datetime.datetime(2024, 1, 1, 12, 0, 0, 5000), None]),
    (pa.timestamp("us"), types.timestamp("us"), [datetime.datetime(1969, 12, 31, 23, 59, 59, 999999), None]),
    (pa.timestamp("ns"), types.timestamp("ns"), [datetime.datetime(2024, 1, 1), None]),
    (
        pa.timestamp("ms", tz="UTC"),
        types.timestamp("ms", "UTC"),
        [datetime.datetime(2024, 5, 1, tzinfo=datetime.timezone.utc), None],
    ),
    (pa.null(), types.null, [None, None, None]),
]
IDS = [str(c[0]) for c in CASES]


def pyarrow_stream(table):
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches():
            writer.write_batch(batch)
    return sink.getvalue()


def pyarrow_read(data):
    return pa.ipc.open_stream(data).read_all()


@pytest.mark.parametrize("pa_type,cg_type,values", CASES, ids=IDS)
def test_reads_what_pyarrow_writes(pa_type, cg_type, values):
    table = pa.table({"c": pa.array(values, pa_type)})
    schema, batches = ipc.read_stream(pyarrow_stream(table))
    assert schema == Schema([Field("c", cg_type)])
    assert [v for b in batches for v in b["c"].to_pylist()] == table["c"].to_pylist()
    assert batches[0]["c"].null_count == table["c"].null_count


@pytest.mark.parametrize("pa_type,cg_type,values", CASES, ids=IDS)
def test_pyarrow_reads_what_it_writes(pa_type, cg_type, values):
    batch = Batch.from_columns({"c": Column.from_pylist(values, cg_type)})
    table = pyarrow_read(ipc.write_stream(batch))
    assert table.schema == pa.schema([pa.field("c", pa_type)])
    assert table["c"].to_pylist() == pa.array(values, pa_type).to_pylist()
    table.validate(full=True)


@pytest.mark.parametrize("pa_type,cg_type,values", CASES, ids=IDS)
def test_slices_and_takes_survive_a_round_trip(pa_type, cg_type, values):
    column = Column.from_pylist(values * 5, cg_type)
    expected = pa.array(values * 5, pa_type)
    for offset, length in [(0, 3), (1, 4), (3, 9), (7, 100)]:
        sliced = Batch.from_columns({"c": column.slice(offset, length)})
        table = pyarrow_read(ipc.write_stream(sliced))
        table.validate(full=True)
        assert table["c"].to_pylist() == expected.slice(offset, length).to_pylist()
    picks = [4, 0, 0, 3, len(values) * 5 - 1]
    taken = pyarrow_read(ipc.write_stream(Batch.from_columns({"c": column.take(picks)})))
    assert taken["c"].to_pylist() == expected.take(pa.array(picks)).to_pylist()


def test_a_slice_of_what_pyarrow_sent_is_rebased():
    # The host sends batches that are slices of larger arrays; pyarrow sends
    # offsets that start at zero, but a column sliced here does not.
    table = pa.table({"s": pa.array(["ab", "cde", None, "f", "gh"]), "n": pa.array([1, 2, 3, None, 5])})
    _, [batch] = ipc.read_stream(pyarrow_stream(table))
    again = pyarrow_read(ipc.write_stream(batch.slice(1, 3)))
    assert again.to_pydict() == table.slice(1, 3).to_pydict()


def test_a_multi_batch_stream_like_the_hosts_scan():
    # What the host sends for a scan: one schema, many batches of a wide table.
    n = 10_000
    table = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "some_column": pa.array([i % 64 for i in range(n)], pa.int32()),
            "value": pa.array([None if i % 7 == 0 else i * 0.5 for i in range(n)], pa.float64()),
            "name": pa.array([None if i % 11 == 0 else "name_%d" % i for i in range(n)], pa.utf8()),
            "flag": pa.array([i % 3 == 0 for i in range(n)], pa.bool_()),
        }
    )
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=1000)
    schema, batches = ipc.read_stream(sink.getvalue())
    assert len(batches) == 10
    assert schema.names == table.column_names
    got = {name: [v for b in batches for v in b[name].to_pylist()] for name in schema.names}
    assert got == table.to_pydict()
    # ...and a batch built from them goes back the same.
    out = Batch.from_columns({"id": batches[3]["id"], "name": batches[3]["name"], "flag": batches[3]["flag"]})
    assert pyarrow_read(ipc.write_stream(out)).to_pydict() == table.slice(3000, 1000).select(["id", "name", "flag"]).to_pydict()


def test_fixed_width_values_are_zero_copy():
    import struct

    buffer = bytearray(pyarrow_stream(pa.table({"v": pa.array([1.0, 2.0, 3.0])})))
    _, [batch] = ipc.read_stream(buffer)
    values = batch["v"].values
    assert values.tolist() == [1.0, 2.0, 3.0]
    # Writing into the stream's bytes changes the column: it is a view of
    # them, not a copy.
    at = bytes(buffer).index(struct.pack("<d", 2.0))
    buffer[at : at + 8] = struct.pack("<d", 42.0)
    assert values.tolist() == [1.0, 42.0, 3.0]


def test_an_empty_stream_and_empty_batches():
    table = pa.table({"s": pa.array([], pa.utf8()), "i": pa.array([], pa.int64())})
    schema, batches = ipc.read_stream(pyarrow_stream(table))
    assert schema.names == ["s", "i"]
    assert sum(b.num_rows for b in batches) == 0
    empty = Batch.empty(schema)
    assert pyarrow_read(ipc.write_stream(empty)).num_rows == 0


@pytest.mark.parametrize(
    "array,named",
    [
        (pa.array([[1], [2, 3]]), "List"),
        (pa.array([{"a": 1}]), "Struct"),
        (pa.array([1, 2], pa.decimal128(10, 2)), "Decimal"),
        (pa.array([1], pa.time64("us")), "Time"),
        (pa.array([1], pa.duration("s")), "Duration"),
        (pa.array(["a", "a"]).dictionary_encode(), "dictionary"),
        (pa.array([1.0], pa.float16()), "half-precision"),
    ],
)
def test_other_types_are_named_in_the_error(array, named):
    data = pyarrow_stream(pa.table({"odd": array}))
    with pytest.raises(UnsupportedTypeError) as error:
        ipc.read_stream(data)
    assert named in str(error.value) and "odd" in str(error.value)


@pytest.mark.parametrize("cut", [0, 3, 9, 40, -9, -1])
def test_truncated_streams_are_errors_not_crashes(cut):
    data = pyarrow_stream(pa.table({"s": pa.array(["abc", "de"]), "i": pa.array([1, 2])}))
    with pytest.raises(ValueError):
        ipc.read_stream(data[:cut])


def test_garbage_is_an_error():
    import random

    rng = random.Random(7)
    good = pyarrow_stream(pa.table({"s": pa.array(["abc", "de"]), "i": pa.array([1, 2])}))
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            schema, batches = ipc.read_stream(bytes(data))
            for b in batches:
                for c in b.columns:
                    c.to_pylist()
        except (ValueError, TypeError):
            pass


def test_a_batch_over_the_per_call_limit_is_split():
    n = 300_000
    batch = Batch.from_columns({"s": Column.from_pylist(["x" * 60] * n), "i": Column.from_values(types.int64, range(n))})
    streams = list(_streams(batch))
    assert len(streams) > 1
    assert all(len(s) <= MAX_STREAM_BYTES for s in streams)
    tables = [pyarrow_read(s) for s in streams]
    assert sum(t.num_rows for t in tables) == n
    assert [v for t in tables for v in t["i"].to_pylist()] == list(range(n))
