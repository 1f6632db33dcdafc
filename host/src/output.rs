//! One iteration's output: emitted batches checked and streamed into a
//! Parquet file on the object store, committed (`part-00000.parquet`, then
//! `_SUCCESS` holding the iteration's record) only when the iteration
//! succeeds, aborted otherwise.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use object_store::path::Path;
use object_store::buffered::BufWriter;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// The data file of an iteration's output directory.
pub const PART_FILE: &str = "part-00000.parquet";
/// The marker written last, when the output is complete; it holds the
/// iteration's record as JSON (as Hadoop's S3A committers put a summary
/// in theirs), so a successful iteration costs one object fewer.
pub const SUCCESS_FILE: &str = "_SUCCESS";

/// Why an emitted batch was refused: the guest's fault (`invalid_output`).
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A batch's schema differs from the first batch's.
    #[error("batch {batch} has schema {found}, but the first batch had {expected}: every batch of an iteration must have the same schema")]
    SchemaChanged {
        /// The batch's number (0-based).
        batch: u64,
        /// The first batch's schema.
        expected: String,
        /// This batch's schema.
        found: String,
    },
    /// The output is over its cap.
    #[error("output over its cap of {cap} bytes (limits.max_output)")]
    TooLarge {
        /// The cap.
        cap: u64,
    },
    /// The output has more rows than its cap.
    #[error("output over its cap of {cap} rows (limits.max_output_rows)")]
    TooManyRows {
        /// The cap.
        cap: u64,
    },
    /// Writing failed (a storage problem, not the guest's).
    #[error("writing the output: {0}")]
    Write(#[from] parquet::errors::ParquetError),
}

/// What a committed output holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The data file, if any batch was emitted.
    pub path: Option<String>,
    /// Rows written.
    pub rows: u64,
    /// Bytes of Parquet written.
    pub bytes: u64,
}

/// The output of one iteration, in progress.
pub struct OutputSink {
    store: Arc<dyn ObjectStore>,
    dir: Path,
    writer: Option<AsyncArrowWriter<BufWriter>>,
    schema: Option<SchemaRef>,
    batches: u64,
    rows: u64,
    arrow_bytes: u64,
    max_bytes: u64,
    max_rows: u64,
}

impl OutputSink {
    /// A sink writing under `dir` of `store`, refusing more than `max_bytes`
    /// of Arrow data or `max_rows` rows.
    pub fn new(store: Arc<dyn ObjectStore>, dir: Path, max_bytes: u64, max_rows: u64) -> Self {
        OutputSink { store, dir, writer: None, schema: None, batches: 0, rows: 0, arrow_bytes: 0, max_bytes, max_rows }
    }

    /// Rows accepted so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Checks `batch` against the first batch's schema and the cap.
    pub fn check(&self, batch: &RecordBatch) -> Result<(), OutputError> {
        if let Some(expected) = &self.schema {
            if expected.fields() != batch.schema().fields() {
                return Err(OutputError::SchemaChanged {
                    batch: self.batches,
                    expected: describe(expected),
                    found: describe(&batch.schema()),
                });
            }
        }
        if self.rows.saturating_add(batch.num_rows() as u64) > self.max_rows {
            return Err(OutputError::TooManyRows { cap: self.max_rows });
        }
        let size = batch.get_array_memory_size() as u64;
        if self.arrow_bytes.saturating_add(size) > self.max_bytes {
            return Err(OutputError::TooLarge { cap: self.max_bytes });
        }
        Ok(())
    }

    /// Appends `batch`, streaming it towards storage.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<(), OutputError> {
        self.check(batch)?;
        if self.writer.is_none() {
            let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
            let object = BufWriter::new(self.store.clone(), self.dir.clone().join(PART_FILE));
            self.writer = Some(AsyncArrowWriter::try_new(object, batch.schema(), Some(props))?);
            self.schema = Some(batch.schema());
        }
        self.arrow_bytes += batch.get_array_memory_size() as u64;
        self.batches += 1;
        self.rows += batch.num_rows() as u64;
        self.writer.as_mut().expect("created above").write(batch).await?;
        Ok(())
    }

    /// Completes the data file. An iteration that emitted nothing has no
    /// data file; a stale one from an earlier run is removed so that the
    /// directory reflects this run. The output is not committed until
    /// [`Finished::seal`] writes `_SUCCESS`.
    pub async fn finish(mut self) -> Result<Finished, object_store::Error> {
        let part = self.dir.clone().join(PART_FILE);
        let (path, bytes) = match self.writer.take() {
            Some(mut writer) => {
                writer.finish().await.map_err(parquet_to_store)?;
                (Some(part.to_string()), writer.bytes_written() as u64)
            }
            None => {
                match self.store.delete(&part).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
                (None, 0)
            }
        };
        Ok(Finished { store: self.store, dir: self.dir, committed: Committed { path, rows: self.rows, bytes } })
    }

    /// Abandons the output: an upload in progress is aborted, so nothing of
    /// this attempt becomes visible and an earlier good output stays.
    pub async fn abort(mut self) {
        if let Some(writer) = self.writer.take() {
            let mut upload = writer.into_inner();
            if let Err(e) = upload.abort().await {
                tracing::warn!(dir = %self.dir, "aborting an output upload failed: {e}");
            }
        }
    }
}

/// An output whose data file is complete, waiting for its `_SUCCESS`.
#[derive(Debug)]
pub struct Finished {
    store: Arc<dyn ObjectStore>,
    dir: Path,
    committed: Committed,
}

impl Finished {
    /// What the output holds.
    pub fn committed(&self) -> &Committed {
        &self.committed
    }

    /// Commits the output: writes `_SUCCESS` holding `record`.
    pub async fn seal(self, record: Vec<u8>) -> Result<Committed, object_store::Error> {
        self.store.put(&self.dir.join(SUCCESS_FILE), PutPayload::from(record)).await?;
        Ok(self.committed)
    }
}

fn describe(schema: &SchemaRef) -> String {
    let fields: Vec<String> =
        schema.fields().iter().map(|f| format!("{}: {}", f.name(), f.data_type())).collect();
    format!("({})", fields.join(", "))
}

fn parquet_to_store(e: parquet::errors::ParquetError) -> object_store::Error {
    object_store::Error::Generic { store: "parquet", source: Box::new(e) }
}

/// Removes the staging files a killed run left in the local directory `dir`
/// for the object `name` (for every object, if `name` is empty). object_store's
/// local store writes `NAME#N` and renames it into place, and hides such
/// files from listings, so nothing else would ever remove them.
pub fn remove_local_staging(dir: &std::path::Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        let Some((object, suffix)) = file.rsplit_once('#') else { continue };
        if (name.is_empty() || object == name) && !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::info!(file = %entry.path().display(), "removed a staging file left by an earlier run"),
                Err(e) => tracing::warn!(file = %entry.path().display(), "cannot remove a stale staging file: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_files_of_a_killed_run_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["part-00000.parquet", "part-00000.parquet#3", "_SUCCESS#12", "_SUCCESS", "notes#draft", "iter_1.json#2", "iter_12.json#1"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        remove_local_staging(dir.path(), "iter_1.json");
        let mut left: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["_SUCCESS", "_SUCCESS#12", "iter_12.json#1", "notes#draft", "part-00000.parquet", "part-00000.parquet#3"]);
        remove_local_staging(dir.path(), "");
        let mut left: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["_SUCCESS", "notes#draft", "part-00000.parquet"]);
    }
}
