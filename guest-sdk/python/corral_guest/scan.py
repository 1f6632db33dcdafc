"""Reading the config table: ``scan(columns=..., filter=col("c") == n)``.

The host evaluates the projection and the filter natively, so only the
matching rows are copied into the sandbox, in batches of ``batch_rows``.
"""

from . import host, ipc

__all__ = ["col", "Filter", "Scan", "scan"]


class Filter:
    """Comparisons a row must all satisfy; combine with ``&``."""

    __slots__ = ("comparisons",)

    def __init__(self, comparisons):
        self.comparisons = tuple(comparisons)

    def __and__(self, other):
        if not isinstance(other, Filter):
            return NotImplemented
        return Filter(self.comparisons + other.comparisons)

    def __bool__(self):
        raise TypeError("a filter is not a bool: combine comparisons with & (not `and`), and wrap each in parentheses")

    def __repr__(self):
        return " & ".join("(col(%r) %s %r)" % (c, _SYMBOLS[op], v) for c, op, v in self.comparisons)


_SYMBOLS = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


class col:
    """A column of the config table, to compare in a filter:
    ``col("some_column") == n``; ``== None`` is IS NULL."""

    __slots__ = ("name",)
    __hash__ = None

    def __init__(self, name):
        if not isinstance(name, str):
            raise TypeError("col() takes a column name, not %r" % (name,))
        self.name = name

    def _compare(self, op, value):
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise TypeError("col(%r) can be compared with None, bool, int, float or str, not %s" % (self.name, value.__class__.__name__))
        if value is None and op not in ("eq", "ne"):
            raise TypeError("col(%r): only == and != compare with None" % self.name)
        return Filter([(self.name, op, value)])

    def __eq__(self, value):
        return self._compare("eq", value)

    def __ne__(self, value):
        return self._compare("ne", value)

    def __lt__(self, value):
        return self._compare("lt", value)

    def __le__(self, value):
        return self._compare("le", value)

    def __gt__(self, value):
        return self._compare("gt", value)

    def __ge__(self, value):
        return self._compare("ge", value)


class Scan:
    """An open scan: iterate it for ``Batch``es; ``schema`` is theirs."""

    def __init__(self, resource):
        self._resource = resource
        self._schema = None

    @property
    def schema(self):
        """The schema of the batches this scan yields."""
        if self._schema is None:
            self._schema = ipc.read_schema(self._resource.schema())
        return self._schema

    def __iter__(self):
        try:
            while True:
                data = self._resource.next()
                if data is None:
                    return
                schema, batches = ipc.read_stream(data)
                if self._schema is None:
                    self._schema = schema
                yield from batches
        finally:
            self.close()

    def close(self):
        """Releases the scan on the host (done when iteration ends)."""
        resource, self._resource = self._resource, _Closed()
        exit = getattr(resource, "__exit__", None)
        if exit is not None:
            exit(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Closed:
    def schema(self):
        raise ValueError("the scan is closed")

    def next(self):
        return None


def scan(columns=None, filter=None, batch_rows=None):
    """Opens a scan of the config table: ``columns`` to read, in this order
    (``None`` for all); ``filter`` a comparison such as ``col("c") == n``
    (combine several with ``&``); ``batch_rows`` the most rows a batch
    holds (``None`` for the host's default). Raises ``ScanError`` with the
    host's message if the request is refused."""
    if columns is not None:
        if isinstance(columns, str):
            raise TypeError("scan(columns=...) takes a list of column names, not one string")
        columns = list(columns)
    if filter is None:
        comparisons = ()
    elif isinstance(filter, Filter):
        comparisons = filter.comparisons
    else:
        raise TypeError("scan(filter=...) takes a comparison such as col('c') == n, not %r" % (filter,))
    if batch_rows is not None and (not isinstance(batch_rows, int) or not 0 < batch_rows < 1 << 32):
        raise ValueError("batch_rows must be a positive int below 2**32, not %r" % (batch_rows,))
    return Scan(host.current().open_scan(columns, comparisons, batch_rows))
