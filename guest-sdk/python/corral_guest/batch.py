"""Columns and batches: Arrow data as Python sequences.

A ``Column`` read from a scan keeps the bytes it came in: fixed-width values
are a zero-copy ``memoryview`` (``column.values``), strings are decoded only
when asked for, and a column passed on to ``emit`` unchanged is written out
from those same bytes without being decoded.
"""

import datetime
import sys
from array import array
from itertools import accumulate

from . import schema as types
from .schema import DataType, Field, Schema, UnsupportedTypeError

__all__ = ["Column", "Batch", "both_valid"]

if sys.byteorder != "little":  # Arrow IPC from the host is little-endian
    raise ImportError("corral_guest needs a little-endian machine")

_EPOCH_DATE = datetime.date(1970, 1, 1)
_EPOCH = datetime.datetime(1970, 1, 1)
_EPOCH_UTC = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _bitmap(flags):
    """Packs a sequence of truthy values into an LSB-first bitmap."""
    n = len(flags)
    out = bytearray((n + 7) // 8)
    for i in range(0, n, 8):
        byte = 0
        for bit, flag in enumerate(flags[i : i + 8]):
            if flag:
                byte |= 1 << bit
        out[i >> 3] = byte
    return bytes(out)


def _count_set(bitmap, length):
    """How many of the first ``length`` bits of ``bitmap`` are set."""
    if length == 0:
        return 0
    value = int.from_bytes(bitmap[: (length + 7) // 8], "little")
    return (value & ((1 << length) - 1)).bit_count()


def _flags(bitmap, length):
    """The first ``length`` bits of ``bitmap`` as a list of 0/1."""
    out = [(byte >> bit) & 1 for byte in bytes(bitmap[: (length + 7) // 8]) for bit in range(8)]
    del out[length:]
    return out


def _shift_bits(bitmap, offset, length):
    """Bits ``offset`` to ``offset + length`` of ``bitmap``, from bit 0."""
    if offset % 8 == 0:
        return bytes(bitmap[offset // 8 : (offset + length + 7) // 8])
    value = int.from_bytes(bitmap[offset // 8 : (offset + length + 7) // 8 + 1], "little") >> (offset % 8)
    return (value & ((1 << length) - 1)).to_bytes((length + 7) // 8, "little")


def _clamp(offset, length, total):
    if not isinstance(offset, int) or offset < 0:
        raise ValueError("slice offset must be a non-negative int, not %r" % (offset,))
    offset = min(offset, total)
    length = total - offset if length is None else max(0, min(length, total - offset))
    return offset, length


def both_valid(*columns):
    """The validity bitmap of rows valid in every one of ``columns``: the
    nulls of a value computed from them. ``None`` if none has nulls."""
    result = None
    length = None
    for column in columns:
        if length is None:
            length = len(column)
        elif len(column) != length:
            raise ValueError("both_valid: columns of %d and %d rows" % (length, len(column)))
        if column.validity is None:
            continue
        bits = int.from_bytes(column.validity[: (length + 7) // 8], "little")
        result = bits if result is None else result & bits
    if result is None:
        return None
    return result.to_bytes((length + 7) // 8, "little")


class Column:
    """One column of a batch: a sequence of Python values, ``None`` for nulls.

    ``len(column)``, ``column[i]``, iteration and ``to_pylist()`` give Python
    values (``int``, ``float``, ``bool``, ``str``, ``bytes``,
    ``datetime.date``, ``datetime.datetime``). ``values`` gives a fixed-width
    column's raw values without copying (a ``memoryview``; a null's slot
    holds an arbitrary value) and ``validity`` its null bitmap (``None`` when
    no value is null). Build one with ``Column.from_pylist`` or, from raw
    values, ``Column.from_values``.
    """

    __slots__ = ("type", "length", "null_count", "validity", "_data", "_offsets")

    def __init__(self, type, length, null_count, validity, data, offsets=None):
        self.type = type
        self.length = length
        self.null_count = null_count
        #: The null bitmap (LSB first, 1 = valid), or ``None`` if no nulls.
        self.validity = validity if null_count else None
        self._data = data
        self._offsets = offsets

    # --- Building --------------------------------------------------------

    @classmethod
    def from_values(cls, type, values, validity=None):
        """A column of ``type`` from raw values: numbers for a fixed-width
        type (a list, an ``array`` or a buffer of that type's format;
        timestamps and dates as integers since the epoch), ``str``/``bytes``
        for strings and binary, ``bool`` for booleans. ``validity`` is a null
        bitmap (see ``both_valid``) or ``None``; a null's value is ignored
        but must be there."""
        if not isinstance(type, DataType):
            raise TypeError("Column.from_values: the type must be a corral_guest DataType, not %r" % (type,))
        length = len(values)
        null_count = 0
        if validity is not None:
            validity = bytes(validity)
            if len(validity) < (length + 7) // 8:
                raise ValueError("validity bitmap of %d bytes for %d values" % (len(validity), length))
            null_count = length - _count_set(validity, length)
        if type.is_fixed_width:
            if isinstance(values, (array, memoryview)) and getattr(values, "typecode", getattr(values, "format", None)) == type.format:
                data = bytes(values)
            else:
                data = array(type.format, values).tobytes()
            return cls(type, length, null_count, validity, data)
        if type.kind == "bool":
            return cls(type, length, null_count, validity, _bitmap(values))
        if type.is_binary_like:
            if type.kind in ("utf8", "large_utf8"):
                encoded = [v.encode("utf-8") for v in values]
            else:
                encoded = [bytes(v) for v in values]
            code = "q" if type.kind.startswith("large") else "i"
            offsets = array(code, [0])
            offsets.extend(accumulate(len(v) for v in encoded))
            if code == "i" and offsets[-1] > 0x7FFFFFFF:
                raise ValueError("a %s column holds at most 2 GiB of data; use large_utf8/large_binary" % type)
            return cls(type, length, null_count, validity, b"".join(encoded), offsets.tobytes())
        if type.kind == "null":
            return cls(type, length, length, None, b"")
        raise UnsupportedTypeError("cannot build a column of type %r" % type)

    @classmethod
    def from_pylist(cls, values, type=None):
        """A column from Python values, ``None`` for null. ``type`` is
        inferred when not given: ``bool``, ``int64``, ``float64`` (ints and
        floats mixed), ``utf8``, ``binary``, ``date32``, ``timestamp[us]``,
        or ``null`` if every value is ``None``."""
        values = list(values)
        if type is None:
            type = _infer(values)
        valid = [v is not None for v in values]
        validity = None if all(valid) else _bitmap(valid)
        fill = _FILL.get(type.kind)
        if type.kind == "null":
            return cls.from_values(type, values)
        if validity is not None:
            values = [fill if v is None else v for v in values]
        if type.kind == "date32":
            values = [v if isinstance(v, int) else (v - _EPOCH_DATE).days for v in values]
        elif type.kind == "date64":
            values = [v if isinstance(v, int) else (v - _EPOCH_DATE).days * 86_400_000 for v in values]
        elif type.kind == "timestamp":
            values = [v if isinstance(v, int) else _timestamp_value(v, type.unit) for v in values]
        try:
            return cls.from_values(type, values, validity)
        except (TypeError, OverflowError, AttributeError) as e:
            raise TypeError("cannot make a %r column of these values: %s" % (type, e)) from None

    # --- Reading ---------------------------------------------------------

    @property
    def values(self):
        """A fixed-width column's values as a ``memoryview`` of its format,
        without copying; ``bool`` columns give a list of ``bool``. Nulls'
        slots hold arbitrary values: see ``validity``."""
        if self.type.is_fixed_width:
            view = memoryview(self._data)
            if len(view) < self.length * self.type.byte_width:
                raise ValueError("column data shorter than its length")
            return view[: self.length * self.type.byte_width].cast(self.type.format)
        if self.type.kind == "bool":
            return [bool(f) for f in _flags(self._data, self.length)]
        raise TypeError("values is for fixed-width and bool columns; a %r column gives Python values with to_pylist()" % self.type)

    def is_valid(self, i):
        """Whether row ``i`` is not null."""
        if self.validity is None:
            return self.type.kind != "null"
        return bool((self.validity[i >> 3] >> (i & 7)) & 1)

    def to_pylist(self):
        """Every value as a Python value, ``None`` for nulls."""
        kind = self.type.kind
        n = self.length
        if kind == "null":
            return [None] * n
        if self.type.is_fixed_width:
            out = self.values.tolist()
            if kind == "date32":
                out = [_EPOCH_DATE + datetime.timedelta(days=v) for v in out]
            elif kind == "date64":
                out = [_EPOCH_DATE + datetime.timedelta(milliseconds=v) for v in out]
            elif kind == "timestamp":
                out = [_timestamp_object(v, self.type) for v in out]
        elif kind == "bool":
            out = self.values
        else:
            code = "q" if kind.startswith("large") else "i"
            offsets = memoryview(self._offsets)[: (n + 1) * (8 if code == "q" else 4)].cast(code)
            data = bytes(self._data)
            if kind in ("utf8", "large_utf8"):
                out = [data[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n)]
            else:
                out = [data[offsets[i] : offsets[i + 1]] for i in range(n)]
        if self.validity is not None:
            out = [v if f else None for v, f in zip(out, _flags(self.validity, n))]
        return out

    def slice(self, offset, length=None):
        """Rows ``offset`` to ``offset + length`` (to the end if ``length``
        is ``None``) as a column sharing this one's bytes where it can."""
        offset, length = _clamp(offset, length, self.length)
        validity = None if self.validity is None else _shift_bits(self.validity, offset, length)
        null_count = length if self.type.kind == "null" else (0 if validity is None else length - _count_set(validity, length))
        if self.type.kind == "null":
            return Column(self.type, length, length, None, b"")
        if self.type.is_fixed_width:
            width = self.type.byte_width
            data = memoryview(self._data)[offset * width : (offset + length) * width]
            return Column(self.type, length, null_count, validity, data)
        if self.type.kind == "bool":
            return Column(self.type, length, null_count, validity, _shift_bits(self._data, offset, length))
        width = 8 if self.type.kind.startswith("large") else 4
        offsets = memoryview(self._offsets)[offset * width : (offset + length + 1) * width]
        return Column(self.type, length, null_count, validity, self._data, offsets)

    def take(self, indices):
        """The rows at ``indices`` (a sequence of ints), in that order."""
        indices = list(indices)
        validity = None
        if self.validity is not None:
            flags = _flags(self.validity, self.length)
            validity = _bitmap([flags[i] for i in indices])
        if self.type.kind == "null":
            return Column(self.type, len(indices), len(indices), None, b"")
        if self.type.is_fixed_width:
            values = self.values
            data = array(self.type.format, [values[i] for i in indices]).tobytes()
            return Column(self.type, len(indices), 0, None, data)._with_validity(validity)
        if self.type.kind == "bool":
            flags = _flags(self._data, self.length)
            return Column(self.type, len(indices), 0, None, _bitmap([flags[i] for i in indices]))._with_validity(validity)
        code = "q" if self.type.kind.startswith("large") else "i"
        offsets = memoryview(self._offsets).cast(code)
        data = self._data
        parts = [data[offsets[i] : offsets[i + 1]] for i in indices]
        new_offsets = array(code, [0])
        new_offsets.extend(accumulate(len(p) for p in parts))
        return Column(self.type, len(indices), 0, None, b"".join(parts), new_offsets.tobytes())._with_validity(validity)

    def _with_validity(self, validity):
        if validity is not None:
            nulls = self.length - _count_set(validity, self.length)
            if nulls:
                self.validity, self.null_count = validity, nulls
        return self

    def __len__(self):
        return self.length

    def __iter__(self):
        return iter(self.to_pylist())

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.to_pylist()[i]
        if i < 0:
            i += self.length
        if not 0 <= i < self.length:
            raise IndexError("row %d of a column of %d rows" % (i, self.length))
        if not self.is_valid(i):
            return None
        kind = self.type.kind
        if self.type.is_fixed_width:
            value = self.values[i]
            if kind == "date32":
                return _EPOCH_DATE + datetime.timedelta(days=value)
            if kind == "date64":
                return _EPOCH_DATE + datetime.timedelta(milliseconds=value)
            if kind == "timestamp":
                return _timestamp_object(value, self.type)
            return value
        if kind == "bool":
            return bool((self._data[i >> 3] >> (i & 7)) & 1)
        code = "q" if kind.startswith("large") else "i"
        offsets = memoryview(self._offsets).cast(code)
        value = bytes(self._data[offsets[i] : offsets[i + 1]])
        return value.decode("utf-8") if kind in ("utf8", "large_utf8") else value

    def __repr__(self):
        preview = self[: min(self.length, 5)]
        return "Column(%r, %d rows: %r%s)" % (self.type, self.length, preview, ", ..." if self.length > 5 else "")


_FILL = {"bool": False, "int": 0, "float": 0.0, "utf8": "", "large_utf8": "", "binary": b"", "large_binary": b"", "date32": 0, "date64": 0, "timestamp": 0}


def _infer(values):
    kinds = set()
    for v in values:
        if v is None:
            continue
        kinds.add(v.__class__)
    if not kinds:
        return types.null
    if kinds == {bool}:
        return types.bool_
    if kinds <= {int}:
        return types.int64
    if kinds <= {int, float}:
        return types.float64
    if kinds == {str}:
        return types.utf8
    if kinds <= {bytes, bytearray}:
        return types.binary
    if kinds == {datetime.date}:
        return types.date32
    if kinds == {datetime.datetime}:
        tz = next(v for v in values if v is not None).tzinfo
        return types.timestamp("us", "UTC" if tz is not None else None)
    raise TypeError("cannot infer one Arrow type for values of types %s; pass type=" % ", ".join(sorted(k.__name__ for k in kinds)))


def _timestamp_value(moment, unit):
    if moment.tzinfo is None:
        delta = moment - _EPOCH
    else:
        delta = moment - _EPOCH_UTC
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if unit == "us":
        return micros
    if unit == "ns":
        return micros * 1000
    return micros // (1_000_000 // _PER_SECOND[unit])


def _timestamp_object(value, type):
    per_second = _PER_SECOND[type.unit]
    micros = value * 1_000_000 // per_second if per_second <= 1_000_000 else value // (per_second // 1_000_000)
    if type.tz is None:
        return _EPOCH + datetime.timedelta(microseconds=micros)
    # Only fixed offsets can be honoured without a time zone database (the
    # sandbox has no files): a named zone's instants are given in UTC.
    return _EPOCH_UTC + datetime.timedelta(microseconds=micros)


class Batch:
    """Rows of data under one schema: columns by name or position.

    ``batch["name"]`` is a ``Column``; ``batch.num_rows``, ``batch.schema``
    and ``batch.column_names`` describe it; ``to_pydict()`` and
    ``to_pylist()`` give plain Python data. Build one with
    ``Batch.from_columns``, ``Batch.from_pydict`` or ``Batch.from_rows``.
    """

    __slots__ = ("schema", "columns", "num_rows")

    def __init__(self, schema, columns):
        columns = list(columns)
        if len(columns) != len(schema):
            raise ValueError("a batch of %d fields given %d columns" % (len(schema), len(columns)))
        num_rows = None
        for field, column in zip(schema, columns):
            if not isinstance(column, Column):
                raise TypeError("column %r is a %s, not a Column" % (field.name, column.__class__.__name__))
            if column.type != field.type:
                raise TypeError("column %r is %r but its field says %r" % (field.name, column.type, field.type))
            if num_rows is None:
                num_rows = column.length
            elif column.length != num_rows:
                raise ValueError("column %r has %d rows, the batch %d" % (field.name, column.length, num_rows))
            if column.null_count and not field.nullable:
                raise ValueError("column %r has %d nulls but its field is not nullable" % (field.name, column.null_count))
        self.schema = schema
        self.columns = columns
        self.num_rows = num_rows or 0

    @classmethod
    def from_columns(cls, columns, schema=None):
        """A batch from a mapping of name to ``Column`` (or Python list,
        made a column with ``Column.from_pylist``). Fields are nullable and
        typed as their columns unless ``schema`` is given."""
        names = list(columns)
        if schema is None:
            built = [c if isinstance(c, Column) else Column.from_pylist(c) for c in columns.values()]
            schema = Schema([Field(name, c.type) for name, c in zip(names, built)])
        else:
            if schema.names != names:
                raise ValueError("columns %s do not match the schema's %s" % (names, schema.names))
            built = [c if isinstance(c, Column) else Column.from_pylist(c, f.type) for c, f in zip(columns.values(), schema)]
        return cls(schema, built)

    @classmethod
    def from_pydict(cls, mapping, schema=None):
        """A batch from a mapping of name to a list of Python values."""
        return cls.from_columns(mapping, schema)

    @classmethod
    def from_rows(cls, rows, schema):
        """A batch from rows (dicts keyed by field name, or tuples in the
        schema's order)."""
        rows = list(rows)
        names = schema.names
        if rows and isinstance(rows[0], dict):
            data = {name: [row.get(name) for row in rows] for name in names}
        else:
            data = {name: [row[i] for row in rows] for i, name in enumerate(names)}
        return cls.from_columns(data, schema)

    @classmethod
    def empty(cls, schema):
        """A batch of no rows."""
        return cls(schema, [Column.from_values(f.type, []) for f in schema])

    @property
    def column_names(self):
        """The columns' names, in order."""
        return self.schema.names

    def column(self, key):
        """A column by name or position."""
        return self.columns[key if isinstance(key, int) else self.schema.index(key)]

    def __getitem__(self, key):
        return self.column(key)

    def __len__(self):
        return self.num_rows

    def slice(self, offset, length=None):
        """Rows ``offset`` to ``offset + length`` (to the end if ``length``
        is ``None``), sharing this batch's bytes where it can."""
        offset, length = _clamp(offset, length, self.num_rows)
        return Batch(self.schema, [c.slice(offset, length) for c in self.columns])

    def take(self, indices):
        """The rows at ``indices``, in that order."""
        indices = list(indices)
        return Batch(self.schema, [c.take(indices) for c in self.columns])

    def select(self, names):
        """A batch of just these columns, in this order (no copy)."""
        indexes = [self.schema.index(n) for n in names]
        return Batch(Schema([self.schema.fields[i] for i in indexes]), [self.columns[i] for i in indexes])

    def to_pydict(self):
        """``{name: [values]}``."""
        return {f.name: c.to_pylist() for f, c in zip(self.schema, self.columns)}

    def to_pylist(self):
        """The rows as dicts."""
        names = self.schema.names
        return [dict(zip(names, row)) for row in zip(*(c.to_pylist() for c in self.columns))]

    def __repr__(self):
        return "Batch(%d rows, %r)" % (self.num_rows, self.schema)
