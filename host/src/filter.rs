//! Scan requests (projection, AND of comparisons, batch size) and their
//! native evaluation on Arrow batches, before anything enters a sandbox.

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Datum, Float64Array, Int64Array, RecordBatch, Scalar, StringArray,
    UInt64Array,
};
use arrow_buffer::BooleanBuffer;
use arrow_cast::{CastOptions, cast_with_options};
use arrow_schema::{ArrowError, DataType, Schema, SchemaRef};

/// A literal compared with a column.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// NULL: `eq` is IS NULL, `ne` IS NOT NULL.
    Null,
    /// A boolean.
    Boolean(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    Uint(u64),
    /// A float.
    Float(f64),
    /// A string.
    Text(String),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
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

/// `column op value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// Column name.
    pub column: String,
    /// Operator.
    pub op: CmpOp,
    /// Literal.
    pub value: Literal,
}

/// What a transform asks to read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScanRequest {
    /// Columns to return, in order; `None` for all.
    pub columns: Option<Vec<String>>,
    /// Comparisons every row satisfies.
    pub filter: Vec<Comparison>,
    /// Most rows per batch; `None` for the job's default.
    pub batch_rows: Option<u32>,
}

/// Why a scan request cannot be served; reported to the guest, which
/// usually fails with it.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// A named column does not exist.
    #[error("no column `{column}` in the config table (columns: {available})")]
    UnknownColumn {
        /// The name asked for.
        column: String,
        /// The columns there are.
        available: String,
    },
    /// A literal cannot be compared with its column.
    #[error("cannot compare column `{column}` of type {data_type} with {value:?}: {reason}")]
    Incomparable {
        /// The column.
        column: String,
        /// Its type.
        data_type: DataType,
        /// The literal.
        value: Literal,
        /// Why.
        reason: String,
    },
    /// NULL used with an ordering operator.
    #[error("column `{0}`: NULL can only be compared with eq (IS NULL) or ne (IS NOT NULL)")]
    NullOrdering(String),
    /// An Arrow kernel failed.
    #[error("evaluating the filter: {0}")]
    Arrow(#[from] ArrowError),
    /// The iteration's deadline passed, or the run is shutting down, while
    /// the scan was being evaluated.
    #[error(transparent)]
    Stopped(#[from] crate::deadline::Stop),
}

/// A comparison bound to a column index, with its literal converted once.
#[derive(Debug)]
pub(crate) struct BoundComparison {
    index: usize,
    op: CmpOp,
    /// The type the column is cast to before comparing (`None`: as is).
    cast_to: Option<DataType>,
    /// `None` for NULL.
    literal: Option<Scalar<ArrayRef>>,
}

/// A scan request checked against a schema: column indices resolved,
/// literals typed.
#[derive(Debug)]
pub(crate) struct BoundScan {
    pub(crate) projection: Option<Vec<usize>>,
    pub(crate) output_schema: SchemaRef,
    pub(crate) filter: Vec<BoundComparison>,
}

fn column_index(schema: &Schema, name: &str) -> Result<usize, ScanError> {
    schema.index_of(name).map_err(|_| ScanError::UnknownColumn {
        column: name.to_owned(),
        available: schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", "),
    })
}

impl BoundScan {
    /// Resolves `request` against `schema`.
    pub(crate) fn bind(request: &ScanRequest, schema: &SchemaRef) -> Result<BoundScan, ScanError> {
        let projection = match &request.columns {
            None => None,
            Some(columns) => {
                Some(columns.iter().map(|c| column_index(schema, c)).collect::<Result<Vec<_>, _>>()?)
            }
        };
        let output_schema = match &projection {
            None => schema.clone(),
            Some(indices) => Arc::new(schema.project(indices)?),
        };
        let filter = request
            .filter
            .iter()
            .map(|c| bind_comparison(c, schema))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BoundScan { projection, output_schema, filter })
    }

    /// The rows of `batch` that pass the filter, projected.
    pub(crate) fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch, ScanError> {
        let batch = if self.filter.is_empty() {
            batch.clone()
        } else {
            let mask = self.mask(batch)?;
            if mask.true_count() == batch.num_rows() {
                batch.clone()
            } else {
                arrow_select::filter::filter_record_batch(batch, &mask)?
            }
        };
        Ok(match &self.projection {
            None => batch,
            Some(indices) => batch.project(indices)?,
        })
    }

    fn mask(&self, batch: &RecordBatch) -> Result<BooleanArray, ScanError> {
        let mut mask: Option<BooleanBuffer> = None;
        for cmp in &self.filter {
            let column = batch.column(cmp.index);
            let column = match &cmp.cast_to {
                Some(to) => cast_with_options(column, to, &CastOptions { safe: true, ..Default::default() })?,
                None => column.clone(),
            };
            let hits = match &cmp.literal {
                None => {
                    let valid = column.logical_nulls().map(|n| n.into_inner());
                    let valid = valid.unwrap_or_else(|| BooleanBuffer::new_set(column.len()));
                    if cmp.op == CmpOp::Eq { !&valid } else { valid }
                }
                Some(literal) => {
                    let result = compare(cmp.op, &column, literal)?;
                    match result.nulls() {
                        Some(nulls) => result.values() & nulls.inner(),
                        None => result.values().clone(),
                    }
                }
            };
            mask = Some(match mask {
                None => hits,
                Some(m) => &m & &hits,
            });
        }
        Ok(BooleanArray::new(mask.expect("filter is not empty"), None))
    }
}

fn compare(op: CmpOp, column: &dyn Datum, literal: &dyn Datum) -> Result<BooleanArray, ArrowError> {
    use arrow_ord::cmp;
    match op {
        CmpOp::Eq => cmp::eq(column, literal),
        CmpOp::Ne => cmp::neq(column, literal),
        CmpOp::Lt => cmp::lt(column, literal),
        CmpOp::Le => cmp::lt_eq(column, literal),
        CmpOp::Gt => cmp::gt(column, literal),
        CmpOp::Ge => cmp::gt_eq(column, literal),
    }
}

fn literal_array(value: &Literal) -> ArrayRef {
    match value {
        Literal::Null => unreachable!("NULL has no array"),
        Literal::Boolean(v) => Arc::new(BooleanArray::from(vec![*v])),
        Literal::Int(v) => Arc::new(Int64Array::from(vec![*v])),
        Literal::Uint(v) => Arc::new(UInt64Array::from(vec![*v])),
        Literal::Float(v) => Arc::new(Float64Array::from(vec![*v])),
        Literal::Text(v) => Arc::new(StringArray::from(vec![v.as_str()])),
    }
}

fn bind_comparison(c: &Comparison, schema: &Schema) -> Result<BoundComparison, ScanError> {
    let index = column_index(schema, &c.column)?;
    let column_type = schema.field(index).data_type();
    if c.value == Literal::Null {
        if !matches!(c.op, CmpOp::Eq | CmpOp::Ne) {
            return Err(ScanError::NullOrdering(c.column.clone()));
        }
        return Ok(BoundComparison { index, op: c.op, cast_to: None, literal: None });
    }
    let incomparable = |reason: String| ScanError::Incomparable {
        column: c.column.clone(),
        data_type: column_type.clone(),
        value: c.value.clone(),
        reason,
    };
    // Numbers compare by value: an integer column against a fractional
    // literal compares as floats, never by truncating the literal.
    let (cast_to, target) = match (&c.value, column_type) {
        (Literal::Float(_), t) if t.is_integer() => (Some(DataType::Float64), DataType::Float64),
        (Literal::Int(_) | Literal::Uint(_), t) if t.is_integer() && t != &DataType::Int64 && t != &DataType::UInt64 => {
            (Some(DataType::Int64), DataType::Int64)
        }
        (Literal::Boolean(_) | Literal::Int(_) | Literal::Uint(_) | Literal::Float(_), t)
            if !(t.is_numeric() || t == &DataType::Boolean) =>
        {
            return Err(incomparable("a number or boolean against a non-numeric column".into()));
        }
        (_, t) => (None, t.clone()),
    };
    let literal = literal_array(&c.value);
    let literal = cast_with_options(&literal, &target, &CastOptions { safe: false, ..Default::default() })
        .map_err(|e| incomparable(e.to_string()))?;
    Ok(BoundComparison { index, op: c.op, cast_to, literal: Some(Scalar::new(literal)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Int32Array;
    use arrow_schema::Field;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![Some(1), Some(2), None, Some(2)])),
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
            ],
        )
        .unwrap()
    }

    fn run(filter: Vec<Comparison>, columns: Option<Vec<&str>>) -> Result<RecordBatch, ScanError> {
        let b = batch();
        let request = ScanRequest {
            columns: columns.map(|c| c.into_iter().map(String::from).collect()),
            filter,
            batch_rows: None,
        };
        BoundScan::bind(&request, &b.schema())?.apply(&b)
    }

    fn cmp(column: &str, op: CmpOp, value: Literal) -> Comparison {
        Comparison { column: column.into(), op, value }
    }

    #[test]
    fn equality_on_a_narrower_integer_column() {
        let out = run(vec![cmp("k", CmpOp::Eq, Literal::Int(2))], Some(vec!["s"])).unwrap();
        let s = out.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(s.iter().flatten().collect::<Vec<_>>(), ["b", "d"]);
    }

    #[test]
    fn fractional_literals_do_not_truncate() {
        let out = run(vec![cmp("k", CmpOp::Eq, Literal::Float(2.5))], None).unwrap();
        assert_eq!(out.num_rows(), 0);
        let out = run(vec![cmp("k", CmpOp::Lt, Literal::Float(1.5))], None).unwrap();
        assert_eq!(out.num_rows(), 1);
    }

    #[test]
    fn null_tests_and_conjunctions() {
        assert_eq!(run(vec![cmp("k", CmpOp::Eq, Literal::Null)], None).unwrap().num_rows(), 1);
        let both = vec![cmp("k", CmpOp::Ne, Literal::Null), cmp("s", CmpOp::Gt, Literal::Text("a".into()))];
        assert_eq!(run(both, None).unwrap().num_rows(), 2);
    }

    #[test]
    fn bad_requests_name_the_problem() {
        let err = run(vec![cmp("nope", CmpOp::Eq, Literal::Int(1))], None).unwrap_err();
        assert!(err.to_string().contains("`nope`") && err.to_string().contains("k, s"), "{err}");
        let err = run(vec![cmp("k", CmpOp::Eq, Literal::Text("x".into()))], None).unwrap_err();
        assert!(matches!(err, ScanError::Incomparable { .. }), "{err}");
        let err = run(vec![cmp("k", CmpOp::Lt, Literal::Null)], None).unwrap_err();
        assert!(matches!(err, ScanError::NullOrdering(_)), "{err}");
    }
}
