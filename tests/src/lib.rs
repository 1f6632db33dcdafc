//! Test support for corral: the paths of the guests built from
//! `transforms/`, a deterministic config generator, the seed step computed
//! natively (the reference outputs are checked against), and Parquet reading.

use std::fmt::Write as _;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, RecordBatch};

pub mod fault_proxy;
pub mod s3;

/// The guests, built by `build.rs`.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

/// One config row of the seed workload.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigRow {
    /// Row id.
    pub id: i64,
    /// The iteration key, 0..64.
    pub some_column: i64,
    /// A value in -1000..1000.
    pub value: f64,
    /// A weight in 0..1.
    pub weight: f64,
    /// A name.
    pub name: String,
}

/// Generates `rows` deterministic config rows (a 64-bit LCG, seed `seed`),
/// with the columns of `../shared/peers/gen_config.py`.
pub fn config_rows(rows: usize, seed: u64) -> Vec<ConfigRow> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        state >> 11
    };
    (0..rows)
        .map(|i| {
            let some_column = (next() % 64) as i64;
            let value = (next() % 2_000_000_000) as f64 / 1_000_000.0 - 1000.0;
            let weight = (next() % 1_000_000) as f64 / 1_000_000.0;
            ConfigRow { id: i as i64, some_column, value, weight, name: format!("name_{}", next() % 10_000) }
        })
        .collect()
}

/// Writes rows as the seed's CSV (values with six decimals, as the peers do).
pub fn write_config_csv(path: &Path, rows: &[ConfigRow]) {
    let mut text = String::with_capacity(rows.len() * 48 + 64);
    text.push_str("id,some_column,value,weight,name\n");
    for r in rows {
        let _ = writeln!(text, "{},{},{:.6},{:.6},{}", r.id, r.some_column, r.value, r.weight, r.name);
    }
    std::fs::write(path, text).expect("writing the config");
}

/// One output row of the seed model step.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedRow {
    /// Row id.
    pub id: i64,
    /// The iteration key.
    pub some_column: i64,
    /// `value * param1 + weight * param2`.
    pub score: f64,
    /// The name.
    pub name: String,
}

/// The seed step computed natively over rows parsed back from the CSV text
/// (so that rounding to six decimals is the same as what corral reads),
/// sorted by id.
pub fn seed_step(rows: &[ConfigRow], n: i64, param1: f64, param2: f64) -> Vec<SeedRow> {
    let round = |v: f64| format!("{v:.6}").parse::<f64>().unwrap();
    rows.iter()
        .filter(|r| r.some_column == n)
        .map(|r| SeedRow {
            id: r.id,
            some_column: r.some_column,
            score: round(r.value) * param1 + round(r.weight) * param2,
            name: r.name.clone(),
        })
        .collect()
}

/// Reads every batch of a Parquet file.
pub fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let bytes = bytes::Bytes::from(std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())));
    parquet_batches(bytes)
}

/// Reads every batch of a Parquet file's bytes.
pub fn parquet_batches(bytes: bytes::Bytes) -> Vec<RecordBatch> {
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .expect("a Parquet file")
        .build()
        .expect("a Parquet reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("Parquet batches")
}

/// Reads a seed-model output file into rows sorted by id, checking its
/// column names and types on the way.
pub fn read_seed_output(path: &Path) -> Vec<SeedRow> {
    seed_rows(read_parquet(path))
}

/// The rows of seed-model output batches, sorted by id, checking their
/// column names and types on the way.
pub fn seed_rows(batches: Vec<RecordBatch>) -> Vec<SeedRow> {
    let mut out = Vec::new();
    for batch in batches {
        let names: Vec<_> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["id", "some_column", "score", "name"], "columns of a seed output");
        let id = batch.column(0).as_primitive::<Int64Type>();
        let key = batch.column(1).as_primitive::<Int64Type>();
        let score = batch.column(2).as_primitive::<Float64Type>();
        let name = batch.column(3).as_string::<i32>();
        for i in 0..batch.num_rows() {
            assert!(!score.is_null(i));
            out.push(SeedRow {
                id: id.value(i),
                some_column: key.value(i),
                score: score.value(i),
                name: name.value(i).to_owned(),
            });
        }
    }
    out.sort_by_key(|r| r.id);
    out
}

/// Reads a JSON file.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

/// Lists the files under `dir`, relative, sorted (empty if it is missing).
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
