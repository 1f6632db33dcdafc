//! `emit-no-columns`: a batch of 1,000 rows and no columns. Parquet keeps
//! no rows without a column, so the file would read back empty while the
//! record counted 1,000 rows out: an output that lies about itself.

use std::sync::Arc;

use corral_guest::arrow_array::{RecordBatch, RecordBatchOptions};
use corral_guest::arrow_schema::Schema;
use corral_guest::{Context, Result, emit};

/// Emits the batch of no columns.
pub fn run(_: &Context) -> Result<()> {
    let options = RecordBatchOptions::new().with_row_count(Some(1_000));
    let batch = RecordBatch::try_new_with_options(Arc::new(Schema::empty()), Vec::new(), &options)?;
    emit(&batch)
}
