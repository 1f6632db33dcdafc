//! The seed job's model step: for iteration `n`, the config rows where
//! `some_column == n`, with `score = value * param1 + weight * param2`,
//! as columns `(id, some_column, score, name)`.

use std::sync::Arc;

use corral_guest::arrow_array::cast::AsArray;
use corral_guest::arrow_array::types::Float64Type;
use corral_guest::arrow_array::{Array, Float64Array, RecordBatch};
use corral_guest::arrow_buffer::NullBuffer;
use corral_guest::arrow_schema::{DataType, Field, Schema};
use corral_guest::{Context, Result, col, debug, emit, scan};
use serde::Deserialize;

/// The job's `[params]`.
#[derive(Deserialize)]
struct Params {
    param1: f64,
    param2: f64,
}

/// Runs the model step for one iteration.
pub fn run(ctx: &Context) -> Result<()> {
    let Params { param1, param2 } = ctx.params()?;
    let batches = scan()
        .select(["id", "some_column", "value", "weight", "name"])
        .filter(col("some_column").eq(ctx.iteration()))
        .open()?;
    let input = batches.schema();
    let schema = Arc::new(Schema::new(vec![
        input.field(0).clone(),
        input.field(1).clone(),
        Field::new("score", DataType::Float64, true),
        input.field(4).clone(),
    ]));
    let mut rows = 0;
    for batch in batches {
        let batch = batch?;
        let value = batch.column(2).as_primitive::<Float64Type>();
        let weight = batch.column(3).as_primitive::<Float64Type>();
        let scores: Vec<f64> = (value.values().iter().zip(weight.values().iter()))
            .map(|(v, w)| v * param1 + w * param2)
            .collect();
        let nulls = NullBuffer::union(value.nulls(), weight.nulls());
        let score = Float64Array::new(scores.into(), nulls);
        let out = RecordBatch::try_new(
            schema.clone(),
            vec![batch.column(0).clone(), batch.column(1).clone(), Arc::new(score), batch.column(4).clone()],
        )?;
        rows += out.num_rows();
        emit(&out)?;
    }
    if rows == 0 {
        // An iteration with no rows still writes an (empty) output with its schema.
        emit(&RecordBatch::new_empty(schema))?;
    }
    debug!("iteration {}: {rows} rows", ctx.iteration());
    Ok(())
}

corral_guest::export!(run);
