"""Arrow IPC streams, read and written in pure Python: what crosses the
boundary with the host (``scan`` batches in, ``emit`` batches out).

Reading keeps the stream's bytes and hands columns ``memoryview`` slices of
them; writing copies each column's buffers once into the output. Supported:
null, bool, int8-64, uint8-64, float32/64, utf8, large_utf8, binary,
large_binary, date32, date64 and timestamp, with nulls. Any other type, a
dictionary or a compressed body is refused with an error naming it.
"""

import struct
from array import array

from . import _flatbuf as fb
from . import schema as types
from .batch import Batch, Column
from .schema import DataType, Field, Schema, UnsupportedTypeError

__all__ = ["IpcError", "read_stream", "read_schema", "write_stream"]


class IpcError(ValueError):
    """Bytes that are not an Arrow IPC stream this SDK can read."""


_CONTINUATION = 0xFFFFFFFF
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_NODE = struct.Struct("<qq")  # FieldNode: length, null_count
_BUFFER = struct.Struct("<qq")  # Buffer: offset, length
_EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"

# Message.fbs
_V4, _V5 = 3, 4
_HEADER_SCHEMA, _HEADER_DICTIONARY, _HEADER_RECORD_BATCH = 1, 2, 3

# Schema.fbs, the `Type` union.
_TYPE_NAMES = {
    1: "Null",
    2: "Int",
    3: "FloatingPoint",
    4: "Binary",
    5: "Utf8",
    6: "Bool",
    7: "Decimal",
    8: "Date",
    9: "Time",
    10: "Timestamp",
    11: "Interval",
    12: "List",
    13: "Struct",
    14: "Union",
    15: "FixedSizeBinary",
    16: "FixedSizeList",
    17: "Map",
    18: "Duration",
    19: "LargeBinary",
    20: "LargeUtf8",
    21: "LargeList",
    22: "RunEndEncoded",
    23: "BinaryView",
    24: "Utf8View",
    25: "ListView",
    26: "LargeListView",
}
_SUPPORTED = "null, bool, int8-64, uint8-64, float32/64, utf8, large_utf8, binary, large_binary, date32, date64, timestamp"
_SIMPLE = {1: types.null, 4: types.binary, 5: types.utf8, 6: types.bool_, 19: types.large_binary, 20: types.large_utf8}
_TYPE_IDS = {"null": 1, "int": 2, "float": 3, "binary": 4, "utf8": 5, "bool": 6, "date32": 8, "date64": 8, "timestamp": 10, "large_binary": 19, "large_utf8": 20}
_UNITS = ("s", "ms", "us", "ns")


# --- Reading -------------------------------------------------------------


def _messages(data):
    """Yields ``(message table, body memoryview)`` for each message."""
    view = memoryview(data)
    pos = 0
    end = len(view)
    while True:
        if pos + 4 > end:
            raise IpcError("the IPC stream ends without its end-of-stream marker")
        length = _U32.unpack_from(view, pos)[0]
        pos += 4
        if length == _CONTINUATION:
            if pos + 4 > end:
                raise IpcError("the IPC stream is cut inside a message's length")
            length = _I32.unpack_from(view, pos)[0]
            pos += 4
        if length == 0:
            return
        if length < 0 or pos + length > end:
            raise IpcError("an IPC message's metadata (%d bytes) runs past the stream's end" % length)
        try:
            message = fb.root(view[pos : pos + length])
            version = message.i16(0)
            header_type = message.u8(1)
            header = message.table(2)
            body_length = message.i64(3)
        except (fb.FlatbufferError, struct.error) as e:
            raise IpcError("malformed IPC message: %s" % e) from None
        pos += length
        if version not in (_V4, _V5):
            raise IpcError("IPC metadata version %d is not supported (V4 or V5)" % (version + 1))
        if body_length < 0 or pos + body_length > end:
            raise IpcError("an IPC message's body (%d bytes) runs past the stream's end" % body_length)
        yield header_type, header, view[pos : pos + body_length]
        pos += body_length


def _decode_type(field):
    name = field.string(0) or ""
    type_id = field.u8(2)
    table = field.table(3)
    if field.table(4) is not None:
        raise UnsupportedTypeError("column %r is dictionary-encoded, which corral_guest does not read" % name)
    if type_id in _SIMPLE:
        return _SIMPLE[type_id]
    if type_id == 2 and table is not None:
        width = table.i32(0)
        signed = table.boolean(1)
        if width in (8, 16, 32, 64):
            return DataType("int", width, signed)
    elif type_id == 3 and table is not None:
        precision = table.i16(0)
        if precision == 1:
            return types.float32
        if precision == 2:
            return types.float64
        raise UnsupportedTypeError("column %r is a half-precision float, which corral_guest does not read (supported: %s)" % (name, _SUPPORTED))
    elif type_id == 8 and table is not None:
        return types.date32 if table.i16(0, 1) == 0 else types.date64
    elif type_id == 10 and table is not None:
        unit = table.i16(0, 0)
        if 0 <= unit < 4:
            return types.timestamp(_UNITS[unit], table.string(1))
    raise UnsupportedTypeError(
        "column %r has Arrow type %s, which corral_guest does not read (supported: %s); leave it out with scan(columns=[...])"
        % (name, _TYPE_NAMES.get(type_id, "#%d" % type_id), _SUPPORTED)
    )


def _decode_schema(header):
    if header.i16(0) != 0:
        raise IpcError("big-endian IPC data is not supported")
    fields = []
    for field in header.tables(1):
        datatype = _decode_type(field)
        fields.append(Field(field.string(0) or "", datatype, field.boolean(1)))
    return Schema(fields)


def _decode_batch(schema, header, body):
    if header.table(3) is not None:
        raise IpcError("compressed IPC bodies are not supported")
    length = header.i64(0)
    nodes = header.structs(1, _NODE)
    buffers = header.structs(2, _BUFFER)
    if len(nodes) != len(schema):
        raise IpcError("a record batch of %d columns under a schema of %d" % (len(nodes), len(schema)))
    body_length = len(body)
    next_buffer = 0

    def take():
        nonlocal next_buffer
        if next_buffer >= len(buffers):
            raise IpcError("a record batch has fewer buffers than its schema needs")
        offset, size = buffers[next_buffer]
        next_buffer += 1
        if offset < 0 or size < 0 or offset + size > body_length:
            raise IpcError("a buffer runs past its record batch's body")
        return body[offset : offset + size]

    columns = []
    for field, (rows, null_count) in zip(schema, nodes):
        if rows != length or null_count < 0 or null_count > rows:
            raise IpcError("column %r: %d rows (%d null) in a batch of %d" % (field.name, rows, null_count, length))
        datatype = field.type
        if datatype.kind == "null":
            columns.append(Column(datatype, rows, rows, None, b""))
            continue
        validity = take()
        if null_count and len(validity) < (rows + 7) // 8:
            raise IpcError("column %r: its null bitmap is too short" % field.name)
        if datatype.is_fixed_width or datatype.kind == "bool":
            data = take()
            need = rows * datatype.byte_width if datatype.is_fixed_width else (rows + 7) // 8
            if len(data) < need:
                raise IpcError("column %r: %d bytes of values for %d rows" % (field.name, len(data), rows))
            columns.append(Column(datatype, rows, null_count, validity, data))
        else:
            offsets = take()
            data = take()
            width = 8 if datatype.kind.startswith("large") else 4
            if rows == 0 and len(offsets) < width:
                offsets = bytes(width)  # an empty column may send no offsets at all
            if len(offsets) < (rows + 1) * width:
                raise IpcError("column %r: its offsets are too short" % field.name)
            if rows:
                last = struct.unpack_from("<q" if width == 8 else "<i", offsets, rows * width)[0]
                if last > len(data):
                    raise IpcError("column %r: its offsets point past its data" % field.name)
            columns.append(Column(datatype, rows, null_count, validity, data, offsets))
    return Batch(schema, columns)


def _malformed(read):
    """Reports any bounds or format failure while reading as ``IpcError``."""

    def checked(data):
        try:
            return read(data)
        except (IpcError, UnsupportedTypeError):
            raise
        except (fb.FlatbufferError, struct.error, IndexError, OverflowError, ValueError) as e:
            raise IpcError("malformed IPC stream: %s" % e) from None

    checked.__doc__ = read.__doc__
    checked.__name__ = read.__name__
    return checked


@_malformed
def read_schema(data):
    """The schema of an IPC stream (its first message)."""
    for header_type, header, _ in _messages(data):
        if header_type != _HEADER_SCHEMA or header is None:
            raise IpcError("an IPC stream must start with its schema")
        return _decode_schema(header)
    raise IpcError("an empty IPC stream has no schema")


@_malformed
def read_stream(data):
    """The schema and the batches of an IPC stream: ``(schema, [Batch])``.
    Columns refer to ``data`` without copying."""
    schema = None
    batches = []
    for header_type, header, body in _messages(data):
        if header is None:
            raise IpcError("an IPC message has no header")
        if schema is None:
            if header_type != _HEADER_SCHEMA:
                raise IpcError("an IPC stream must start with its schema")
            schema = _decode_schema(header)
        elif header_type == _HEADER_RECORD_BATCH:
            batches.append(_decode_batch(schema, header, body))
        elif header_type == _HEADER_DICTIONARY:
            raise UnsupportedTypeError("dictionary batches are not supported")
        else:
            raise IpcError("unexpected IPC message (header type %d)" % header_type)
    if schema is None:
        raise IpcError("an empty IPC stream has no schema")
    return schema, batches


# --- Writing -------------------------------------------------------------


def _type_table(datatype):
    kind = datatype.kind
    if kind == "int":
        return fb.TableValue({0: ("i32", datatype.bit_width), 1: ("bool", datatype.signed)})
    if kind == "float":
        return fb.TableValue({0: ("i16", 1 if datatype.bit_width == 32 else 2)})
    if kind in ("date32", "date64"):
        return fb.TableValue({0: ("i16", 0 if kind == "date32" else 1)})
    if kind == "timestamp":
        fields = {0: ("i16", _UNITS.index(datatype.unit))}
        if datatype.tz is not None:
            fields[1] = ("ref", fb.StringValue(datatype.tz))
        return fb.TableValue(fields)
    if kind in _TYPE_IDS:
        return fb.TableValue({})
    raise UnsupportedTypeError("cannot write Arrow type %r" % datatype)


def _message(header_type, header, body_length):
    metadata = fb.build(
        fb.TableValue(
            {
                0: ("i16", _V5),
                1: ("u8", header_type),
                2: ("ref", header),
                3: ("i64", body_length),
            }
        )
    )
    return _U32.pack(_CONTINUATION) + _I32.pack(len(metadata)) + metadata


def _schema_message(schema):
    if schema._encoded is None:
        fields = []
        for field in schema:
            fields.append(
                fb.TableValue(
                    {
                        0: ("ref", fb.StringValue(field.name)),
                        1: ("bool", field.nullable),
                        2: ("u8", _TYPE_IDS[field.type.kind]),
                        3: ("ref", _type_table(field.type)),
                        5: ("ref", fb.TablesValue([])),
                    }
                )
            )
        header = fb.TableValue({1: ("ref", fb.TablesValue(fields))})
        schema._encoded = _message(_HEADER_SCHEMA, header, 0)
    return schema._encoded


def write_stream(batch):
    """One complete IPC stream (schema, the batch, end marker) of ``batch``."""
    schema = batch.schema
    nodes = []
    buffers = []
    body = []
    size = 0

    def put(data, length):
        nonlocal size
        buffers.append(_BUFFER.pack(size, length))
        if length:
            body.append(data if len(data) == length else data[:length])
            pad = -length % 8
            if pad:
                body.append(b"\0" * pad)
            size += length + pad

    for field, column in zip(schema, batch.columns):
        rows = column.length
        nodes.append(_NODE.pack(rows, column.null_count))
        if field.type.kind == "null":
            continue
        if column.validity is not None:
            put(column.validity, (rows + 7) // 8)
        else:
            put(b"", 0)
        if field.type.is_fixed_width:
            put(column._data, rows * field.type.byte_width)
        elif field.type.kind == "bool":
            put(column._data, (rows + 7) // 8)
        else:
            width = 8 if field.type.kind.startswith("large") else 4
            code = "q" if width == 8 else "i"
            offsets = column._offsets
            first = struct.unpack_from("<" + code, offsets, 0)[0]
            last = struct.unpack_from("<" + code, offsets, rows * width)[0]
            data = column._data
            if first:
                # Offsets into a larger buffer: rebased to start at 0.
                offsets = array(code, (o - first for o in memoryview(offsets)[: (rows + 1) * width].cast(code))).tobytes()
                data = memoryview(data)[first:last]
                last -= first
            put(offsets, (rows + 1) * width)
            put(data, last)

    header = fb.TableValue(
        {
            0: ("i64", batch.num_rows),
            1: ("ref", fb.StructsValue(b"".join(nodes), len(nodes), 8)),
            2: ("ref", fb.StructsValue(b"".join(buffers), len(buffers), 8)),
        }
    )
    return b"".join([_schema_message(schema), _message(_HEADER_RECORD_BATCH, header, size), *body, _EOS])
