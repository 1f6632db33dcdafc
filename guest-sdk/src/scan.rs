//! Reading the config table: a scan request built like a query, and the
//! iterator of record batches it yields.

use anyhow::{Context as _, Result, anyhow};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::{ipc, sys};

/// A literal that a column is compared with; the host casts it to the
/// column's type.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// SQL NULL (only with `eq`/`ne`: IS NULL / IS NOT NULL).
    Null,
    /// A boolean.
    Boolean(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    Uint(u64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Text(String),
}

macro_rules! literal_from {
    ($($t:ty => $variant:ident as $as:ty),* $(,)?) => {
        $(impl From<$t> for Literal {
            fn from(value: $t) -> Self {
                Literal::$variant(value as $as)
            }
        })*
    };
}
literal_from!(i8 => Int as i64, i16 => Int as i64, i32 => Int as i64, i64 => Int as i64,
    u8 => Uint as u64, u16 => Uint as u64, u32 => Uint as u64, u64 => Uint as u64,
    f32 => Float as f64, f64 => Float as f64);

impl From<bool> for Literal {
    fn from(value: bool) -> Self {
        Literal::Boolean(value)
    }
}
impl From<&str> for Literal {
    fn from(value: &str) -> Self {
        Literal::Text(value.to_owned())
    }
}
impl From<String> for Literal {
    fn from(value: String) -> Self {
        Literal::Text(value)
    }
}
impl<T: Into<Literal>> From<Option<T>> for Literal {
    fn from(value: Option<T>) -> Self {
        value.map_or(Literal::Null, Into::into)
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// `column op value`, evaluated by the host before rows reach the guest.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// The column's name.
    pub column: String,
    /// The operator.
    pub op: Op,
    /// The literal.
    pub value: Literal,
}

/// A column of the config table, to build comparisons: `col("x").eq(3)`.
pub fn col(name: impl Into<String>) -> Column {
    Column(name.into())
}

/// A column named in a filter; see [`col`].
#[derive(Clone, Debug)]
pub struct Column(String);

impl Column {
    fn cmp(self, op: Op, value: impl Into<Literal>) -> Comparison {
        Comparison { column: self.0, op, value: value.into() }
    }
    /// `column == value`
    pub fn eq(self, value: impl Into<Literal>) -> Comparison {
        self.cmp(Op::Eq, value)
    }
    /// `column != value`
    pub fn ne(self, value: impl Into<Literal>) -> Comparison {
        self.cmp(Op::Ne, value)
    }
    /// `column < value`
    pub fn lt(self, value: impl Into<Literal>) -> Comparison {
        self.cmp(Op::Lt, value)
    }
    /// `column <= value`
    pub fn le(self, value: impl Into<Literal>) -> Comparison {
        self.cmp(Op::Le, value)
    }
    /// `column > value`
    pub fn gt(self, value: impl Into<Literal>) -> Comparison {
        self.cmp(Op::Gt, value)
    }
    /// `column >= value`
    pub fn ge(self, value: impl Into<Literal>) -> Comparison {
        self.cmp(Op::Ge, value)
    }
    /// `column IS NULL`
    pub fn is_null(self) -> Comparison {
        self.cmp(Op::Eq, Literal::Null)
    }
    /// `column IS NOT NULL`
    pub fn is_not_null(self) -> Comparison {
        self.cmp(Op::Ne, Literal::Null)
    }
}

/// What to read from the config table: columns, a filter (AND of
/// comparisons) and a batch size. Build it with [`scan`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScanRequest {
    /// The columns to return, in this order; `None` for all.
    pub columns: Option<Vec<String>>,
    /// Comparisons that every returned row satisfies.
    pub filter: Vec<Comparison>,
    /// The most rows per batch; `None` for the host's default.
    pub batch_rows: Option<u32>,
}

/// Starts a scan of the config table: all columns, all rows, until narrowed
/// with [`ScanRequest::select`] and [`ScanRequest::filter`].
pub fn scan() -> ScanRequest {
    ScanRequest::default()
}

impl ScanRequest {
    /// Returns only these columns, in this order.
    pub fn select<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Keeps only rows that satisfy `comparison` (and every other filter).
    pub fn filter(mut self, comparison: Comparison) -> Self {
        self.filter.push(comparison);
        self
    }

    /// Asks for batches of at most `rows` rows.
    pub fn batch_rows(mut self, rows: u32) -> Self {
        self.batch_rows = Some(rows);
        self
    }

    /// Opens the scan on the host. Fails if a column is unknown or a literal
    /// does not fit its column.
    pub fn open(self) -> Result<Batches> {
        let (schema, handle) =
            sys::open_scan(&self).map_err(|e| anyhow!("the host refused the scan: {e}"))?;
        let decoder = ipc::ScanDecoder::new(schema).context("reading the scan's schema")?;
        Ok(Batches { decoder, handle, pending: Vec::new().into_iter() })
    }

    #[cfg(target_arch = "wasm32")]
    pub(crate) fn to_wit(&self) -> crate::bindings::corral::transform::types::ScanRequest {
        use crate::bindings::corral::transform::types as wit;
        wit::ScanRequest {
            columns: self.columns.clone(),
            filter: self
                .filter
                .iter()
                .map(|c| wit::Comparison {
                    column: c.column.clone(),
                    op: match c.op {
                        Op::Eq => wit::ComparisonOp::Eq,
                        Op::Ne => wit::ComparisonOp::Ne,
                        Op::Lt => wit::ComparisonOp::Lt,
                        Op::Le => wit::ComparisonOp::Le,
                        Op::Gt => wit::ComparisonOp::Gt,
                        Op::Ge => wit::ComparisonOp::Ge,
                    },
                    value: match &c.value {
                        Literal::Null => wit::Literal::Null,
                        Literal::Boolean(v) => wit::Literal::Boolean(*v),
                        Literal::Int(v) => wit::Literal::Int(*v),
                        Literal::Uint(v) => wit::Literal::Uint(*v),
                        Literal::Float(v) => wit::Literal::Float(*v),
                        Literal::Text(v) => wit::Literal::Text(v.clone()),
                    },
                })
                .collect(),
            batch_rows: self.batch_rows,
        }
    }
}

/// The batches of an open scan, pulled from the host one at a time.
pub struct Batches {
    decoder: ipc::ScanDecoder,
    handle: sys::ScanHandle,
    pending: std::vec::IntoIter<RecordBatch>,
}

impl Batches {
    /// The schema of every batch this scan yields.
    pub fn schema(&self) -> SchemaRef {
        self.decoder.schema()
    }
}

impl Iterator for Batches {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(batch) = self.pending.next() {
                return Some(Ok(batch));
            }
            let bytes = sys::next(&mut self.handle)?;
            match self.decoder.batches(bytes) {
                Ok(batches) => self.pending = batches.into_iter(),
                Err(e) => return Some(Err(e.context("reading a config batch"))),
            }
        }
    }
}
