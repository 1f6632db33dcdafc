"""The subset of FlatBuffers that Arrow IPC's message headers need: reading
tables, vectors, strings and unions, and writing them.

Hand-written because the guest has no third-party packages: there is no WASI
build of pyarrow, and the ``flatbuffers`` runtime alone would still leave the
Arrow accessors to write. The layout is the FlatBuffers binary format
(https://flatbuffers.dev/internals/); the codec's tests check every message
against pyarrow.
"""

import struct

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_I16 = struct.Struct("<h")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")


class FlatbufferError(ValueError):
    """A FlatBuffer that points outside itself or is otherwise malformed."""


class Table:
    """A table at ``pos`` in ``buf``: reads its fields by slot number."""

    __slots__ = ("buf", "pos", "_vtable", "_vtable_len")

    def __init__(self, buf, pos):
        self.buf = buf
        self.pos = pos
        if pos < 0 or pos + 4 > len(buf):
            raise FlatbufferError("table offset out of bounds")
        vtable = pos - _I32.unpack_from(buf, pos)[0]
        if vtable < 0 or vtable + 4 > len(buf):
            raise FlatbufferError("vtable offset out of bounds")
        self._vtable = vtable
        self._vtable_len = _U16.unpack_from(buf, vtable)[0]
        if vtable + self._vtable_len > len(buf):
            raise FlatbufferError("vtable runs past the buffer")

    def _field(self, slot):
        """The absolute position of field ``slot``, or 0 if it is absent."""
        entry = 4 + 2 * slot
        if entry + 2 > self._vtable_len:
            return 0
        offset = _U16.unpack_from(self.buf, self._vtable + entry)[0]
        return self.pos + offset if offset else 0

    def scalar(self, slot, fmt, default=0):
        """A scalar field (``fmt`` a ``struct.Struct``), or its default."""
        at = self._field(slot)
        if not at:
            return default
        if at + fmt.size > len(self.buf):
            raise FlatbufferError("field out of bounds")
        return fmt.unpack_from(self.buf, at)[0]

    def u8(self, slot, default=0):
        return self.scalar(slot, _U8, default)

    def i16(self, slot, default=0):
        return self.scalar(slot, _I16, default)

    def i32(self, slot, default=0):
        return self.scalar(slot, _I32, default)

    def i64(self, slot, default=0):
        return self.scalar(slot, _I64, default)

    def boolean(self, slot, default=False):
        return bool(self.scalar(slot, _U8, int(default)))

    def _indirect(self, slot):
        at = self._field(slot)
        if not at:
            return 0
        if at + 4 > len(self.buf):
            raise FlatbufferError("offset field out of bounds")
        target = at + _U32.unpack_from(self.buf, at)[0]
        if target >= len(self.buf):
            raise FlatbufferError("offset out of bounds")
        return target

    def table(self, slot):
        """A sub-table (or a union's value), or ``None``."""
        target = self._indirect(slot)
        return Table(self.buf, target) if target else None

    def string(self, slot):
        """A string field as ``str``, or ``None``."""
        target = self._indirect(slot)
        if not target:
            return None
        if target + 4 > len(self.buf):
            raise FlatbufferError("string out of bounds")
        length = _U32.unpack_from(self.buf, target)[0]
        start = target + 4
        if start + length > len(self.buf):
            raise FlatbufferError("string out of bounds")
        try:
            return bytes(self.buf[start : start + length]).decode("utf-8")
        except UnicodeDecodeError:
            raise FlatbufferError("a string that is not UTF-8") from None

    def _vector(self, slot, element_size):
        target = self._indirect(slot)
        if not target:
            return 0, 0
        if target + 4 > len(self.buf):
            raise FlatbufferError("vector out of bounds")
        length = _U32.unpack_from(self.buf, target)[0]
        start = target + 4
        if start + length * element_size > len(self.buf):
            raise FlatbufferError("vector out of bounds")
        return start, length

    def tables(self, slot):
        """A vector of tables."""
        start, length = self._vector(slot, 4)
        buf = self.buf
        out = []
        for i in range(length):
            at = start + 4 * i
            out.append(Table(buf, at + _U32.unpack_from(buf, at)[0]))
        return out

    def structs(self, slot, fmt):
        """A vector of structs, each unpacked with ``fmt`` (a ``struct.Struct``)."""
        start, length = self._vector(slot, fmt.size)
        return [fmt.unpack_from(self.buf, start + fmt.size * i) for i in range(length)]

    def i64s(self, slot):
        """A vector of 64-bit integers."""
        start, length = self._vector(slot, 8)
        return list(struct.unpack_from("<%dq" % length, self.buf, start)) if length else []


def root(buf):
    """The root table of the FlatBuffer ``buf``."""
    if len(buf) < 8:
        raise FlatbufferError("buffer too short for a root table")
    return Table(buf, _U32.unpack_from(buf, 0)[0])


# --- Writing -------------------------------------------------------------
#
# A message is described as nested values and written front to back: a table
# first, then what it refers to, so that every offset points forward as the
# format requires. Each value type knows its alignment.


class TableValue:
    """A table to write: ``fields`` maps a slot to a ``(kind, value)`` pair,
    kind one of ``u8 i16 i32 i64 bool`` or ``ref`` (value another value)."""

    __slots__ = ("fields",)

    def __init__(self, fields):
        self.fields = fields


class StringValue:
    """A string to write."""

    __slots__ = ("data",)

    def __init__(self, text):
        self.data = text.encode("utf-8")


class TablesValue:
    """A vector of tables to write."""

    __slots__ = ("items",)

    def __init__(self, items):
        self.items = items


class StructsValue:
    """A vector of structs to write: ``data`` the packed structs, ``count``
    how many, ``align`` their alignment."""

    __slots__ = ("data", "count", "align")

    def __init__(self, data, count, align):
        self.data = data
        self.count = count
        self.align = align


_SIZES = {"u8": 1, "bool": 1, "i16": 2, "i32": 4, "ref": 4, "i64": 8}
_FORMATS = {"u8": _U8, "bool": _U8, "i16": _I16, "i32": _I32, "i64": _I64}


def _pad(buf, align):
    buf.extend(b"\0" * (-len(buf) % align))


def build(root_table):
    """The bytes of a FlatBuffer whose root is ``root_table``, padded to 8."""
    buf = bytearray(b"\0" * 8)  # the root offset, then room to align
    pending = []  # (position of a uoffset to patch, value it refers to)
    root_at = _write_table(buf, root_table, pending)
    _U32.pack_into(buf, 0, root_at)
    while pending:
        patch_at, value = pending.pop(0)
        at = _write(buf, value, pending)
        _U32.pack_into(buf, patch_at, at - patch_at)
    _pad(buf, 8)
    return bytes(buf)


def _write(buf, value, pending):
    if isinstance(value, TableValue):
        return _write_table(buf, value, pending)
    if isinstance(value, StringValue):
        _pad(buf, 4)
        at = len(buf)
        buf.extend(_U32.pack(len(value.data)))
        buf.extend(value.data)
        buf.append(0)
        return at
    if isinstance(value, TablesValue):
        _pad(buf, 4)
        at = len(buf)
        buf.extend(_U32.pack(len(value.items)))
        for item in value.items:
            pending.append((len(buf), item))
            buf.extend(b"\0\0\0\0")
        return at
    if isinstance(value, StructsValue):
        # The length prefix sits right before the first struct, which must
        # be aligned to the struct's alignment.
        while (len(buf) + 4) % value.align:
            buf.append(0)
        at = len(buf)
        buf.extend(_U32.pack(value.count))
        buf.extend(value.data)
        return at
    raise TypeError("cannot write %r" % (value,))


def _write_table(buf, table, pending):
    fields = sorted(table.fields.items(), key=lambda item: -_SIZES[item[1][0]])
    slots = max(table.fields) + 1 if table.fields else 0
    # Inline layout: the soffset to the vtable, padding to 8, then fields
    # from the widest down so each is naturally aligned.
    offsets = {}
    size = 4
    for slot, (kind, _) in fields:
        width = _SIZES[kind]
        size += -size % width
        offsets[slot] = size
        size += width
    # vtable first (2-aligned), then the table at an 8-aligned position.
    vtable_len = 4 + 2 * slots
    _pad(buf, 2)
    vtable_at = len(buf)
    buf.extend(_U16.pack(vtable_len))
    buf.extend(_U16.pack(size))
    for slot in range(slots):
        buf.extend(_U16.pack(offsets.get(slot, 0)))
    _pad(buf, 8)
    table_at = len(buf)
    buf.extend(b"\0" * size)
    _I32.pack_into(buf, table_at, table_at - vtable_at)
    for slot, (kind, value) in fields:
        at = table_at + offsets[slot]
        if kind == "ref":
            pending.append((at, value))
        else:
            _FORMATS[kind].pack_into(buf, at, int(value))
    return table_at
