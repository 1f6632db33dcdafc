//! `schema-change`: emits two batches of different schemas.

use std::sync::Arc;

use corral_guest::arrow_array::{RecordBatch, StringArray};
use corral_guest::arrow_schema::{DataType, Field, Schema};
use corral_guest::{Context, Result, emit};

use crate::common::small_batch;

/// An Int64 batch, then a Utf8 one.
pub fn run(_: &Context) -> Result<()> {
    emit(&small_batch(3))?;
    let other = Arc::new(Schema::new(vec![Field::new("y", DataType::Utf8, true)]));
    emit(&RecordBatch::try_new(other, vec![Arc::new(StringArray::from(vec!["a"]))])?)?;
    Ok(())
}
