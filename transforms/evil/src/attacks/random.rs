//! `random`: random numbers and clocks, as a model might use them (fixed
//! per iteration under `--deterministic`).

use std::sync::Arc;

use corral_guest::arrow_array::{Int64Array, RecordBatch};
use corral_guest::arrow_schema::{DataType, Field, Schema};
use corral_guest::{Context, Result, emit};

/// Emits a random hash, the time since the epoch and an elapsed time.
pub fn run(ctx: &Context) -> Result<()> {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_i64(ctx.iteration());
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as i64;
    let start = std::time::Instant::now();
    let elapsed = start.elapsed().as_nanos() as i64;
    let values = vec![hasher.finish() as i64, since_epoch, elapsed];
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    emit(&RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values))])?)?;
    Ok(())
}
