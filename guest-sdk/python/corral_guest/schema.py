"""Arrow data types, fields and schemas: the types a config table holds."""

__all__ = [
    "DataType",
    "Field",
    "Schema",
    "UnsupportedTypeError",
    "null",
    "bool_",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
    "utf8",
    "large_utf8",
    "binary",
    "large_binary",
    "date32",
    "date64",
    "timestamp",
]


class UnsupportedTypeError(TypeError):
    """An Arrow type this SDK does not read or write."""


_TIME_UNITS = ("s", "ms", "us", "ns")


class DataType:
    """An Arrow data type.

    ``kind`` is one of ``null bool int float utf8 large_utf8 binary
    large_binary date32 date64 timestamp``; ``bit_width`` and ``signed`` are
    set for ``int`` and ``float``; ``unit`` (``s ms us ns``) and ``tz`` (a
    time zone name or ``None``) for ``timestamp``. Use the module's
    constants (``int64``, ``utf8``, ...) and ``timestamp(unit, tz)`` rather
    than building one.
    """

    __slots__ = ("kind", "bit_width", "signed", "unit", "tz", "format", "byte_width")

    def __init__(self, kind, bit_width=0, signed=True, unit=None, tz=None):
        self.kind = kind
        self.bit_width = bit_width
        self.signed = signed
        self.unit = unit
        self.tz = tz
        #: The ``struct``/``memoryview`` format of one value of a fixed-width
        #: type, or ``None``.
        self.format = _format(kind, bit_width, signed)
        #: Bytes a value of a fixed-width type takes, or 0.
        self.byte_width = bit_width // 8 if self.format else 0

    @property
    def is_fixed_width(self):
        """Whether values are stored as one fixed-width number each."""
        return self.format is not None

    @property
    def is_binary_like(self):
        """Whether values are variable-length strings or bytes."""
        return self.kind in ("utf8", "large_utf8", "binary", "large_binary")

    def __eq__(self, other):
        return isinstance(other, DataType) and (self.kind, self.bit_width, self.signed, self.unit, self.tz) == (
            other.kind,
            other.bit_width,
            other.signed,
            other.unit,
            other.tz,
        )

    def __hash__(self):
        return hash((self.kind, self.bit_width, self.signed, self.unit, self.tz))

    def __repr__(self):
        if self.kind == "int":
            return "%sint%d" % ("" if self.signed else "u", self.bit_width)
        if self.kind == "float":
            return "float%d" % self.bit_width
        if self.kind == "timestamp":
            return "timestamp[%s%s]" % (self.unit, ", tz=%s" % self.tz if self.tz else "")
        if self.kind == "bool":
            return "bool"
        return self.kind


def _format(kind, bit_width, signed):
    if kind == "int":
        return {8: "b", 16: "h", 32: "i", 64: "q"}[bit_width] if signed else {8: "B", 16: "H", 32: "I", 64: "Q"}[bit_width]
    if kind == "float":
        return {32: "f", 64: "d"}[bit_width]
    if kind == "date32":
        return "i"
    if kind in ("date64", "timestamp"):
        return "q"
    return None


null = DataType("null")
bool_ = DataType("bool")
int8 = DataType("int", 8)
int16 = DataType("int", 16)
int32 = DataType("int", 32)
int64 = DataType("int", 64)
uint8 = DataType("int", 8, signed=False)
uint16 = DataType("int", 16, signed=False)
uint32 = DataType("int", 32, signed=False)
uint64 = DataType("int", 64, signed=False)
float32 = DataType("float", 32)
float64 = DataType("float", 64)
utf8 = DataType("utf8")
large_utf8 = DataType("large_utf8")
binary = DataType("binary")
large_binary = DataType("large_binary")
date32 = DataType("date32", 32)
date64 = DataType("date64", 64)


def timestamp(unit="us", tz=None):
    """A timestamp type: ``unit`` one of ``s ms us ns``, ``tz`` a zone name
    (``"UTC"``) or ``None`` for a timestamp without a time zone."""
    if unit not in _TIME_UNITS:
        raise ValueError("timestamp unit must be one of %s, not %r" % (", ".join(_TIME_UNITS), unit))
    return DataType("timestamp", 64, unit=unit, tz=tz)


class Field:
    """A named column of a schema: ``name``, ``type`` and ``nullable``."""

    __slots__ = ("name", "type", "nullable")

    def __init__(self, name, type, nullable=True):
        if not isinstance(name, str):
            raise TypeError("a field's name must be a str, not %s" % name.__class__.__name__)
        if not isinstance(type, DataType):
            raise TypeError("field %r: the type must be a corral_guest DataType, not %r" % (name, type))
        self.name = name
        self.type = type
        self.nullable = bool(nullable)

    def __eq__(self, other):
        return isinstance(other, Field) and (self.name, self.type, self.nullable) == (other.name, other.type, other.nullable)

    def __hash__(self):
        return hash((self.name, self.type, self.nullable))

    def __repr__(self):
        return "Field(%r, %r%s)" % (self.name, self.type, "" if self.nullable else ", nullable=False")


class Schema:
    """The fields of a batch, in order."""

    __slots__ = ("fields", "_index", "_encoded")

    def __init__(self, fields):
        self.fields = tuple(fields)
        for field in self.fields:
            if not isinstance(field, Field):
                raise TypeError("a schema holds Fields, not %r" % (field,))
        self._index = {}
        for i, field in enumerate(self.fields):
            self._index.setdefault(field.name, i)
        # The IPC schema message, written once (see ipc.py).
        self._encoded = None

    @property
    def names(self):
        """The field names, in order."""
        return [field.name for field in self.fields]

    def index(self, name):
        """The position of the field called ``name``."""
        try:
            return self._index[name]
        except KeyError:
            raise KeyError("no column %r (columns: %s)" % (name, ", ".join(self.names))) from None

    def field(self, key):
        """A field by name or position."""
        return self.fields[key if isinstance(key, int) else self.index(key)]

    def __len__(self):
        return len(self.fields)

    def __iter__(self):
        return iter(self.fields)

    def __eq__(self, other):
        return isinstance(other, Schema) and self.fields == other.fields

    def __hash__(self):
        return hash(self.fields)

    def __repr__(self):
        return "Schema([%s])" % ", ".join(repr(f) for f in self.fields)
