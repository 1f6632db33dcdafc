//! One iteration's output: emitted batches checked and streamed into a
//! Parquet file (a small output held back and written whole), on the
//! object store or the local disk, committed (`part-00000.parquet`, then
//! `_SUCCESS` holding the iteration's record) only when the iteration
//! succeeds, aborted otherwise. The Parquet settings are [`format`]'s, the
//! local disk's staging names and their clean-up `staging`'s.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::{ArrowWriter, AsyncArrowWriter};

use futures::FutureExt as _;

use crate::deadline::Deadline;

mod format;
mod staging;

pub use self::format::ParquetFormat;
pub use self::staging::remove_local_staging;
use self::staging::staging_path;

/// The data file of an iteration's output directory.
pub const PART_FILE: &str = "part-00000.parquet";
/// The marker written last, when the output is complete; it holds the
/// iteration's record as JSON (as Hadoop's S3A committers put a summary
/// in theirs), so a successful iteration costs one object fewer.
pub const SUCCESS_FILE: &str = "_SUCCESS";

/// Arrow bytes an output may reach before its Parquet file is begun: below
/// this the batches are held and written whole at the end, with
/// [`ParquetFormat`]'s settings for small files.
pub const SMALL_OUTPUT_BYTES: u64 = 64 << 10;

/// Why an emitted batch was refused (the guest's fault, `invalid_output`)
/// or could not be written (a storage problem).
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
    #[error("output over its cap of {cap} bytes (limits.max_output): {emitted} bytes of data emitted, counting a dictionary's or view's values for every row that refers to them")]
    TooLarge {
        /// The cap.
        cap: u64,
        /// The bytes the output would have reached with this batch.
        emitted: u64,
    },
    /// The output has more rows than its cap.
    #[error("output over its cap of {cap} rows (limits.max_output_rows)")]
    TooManyRows {
        /// The cap.
        cap: u64,
    },
    /// The schema has a type the Parquet writer cannot store.
    #[error("{0}")]
    Unwritable(String),
    /// Writing failed (a storage problem, not the guest's).
    #[error("writing the output: {0}")]
    Write(#[from] parquet::errors::ParquetError),
    /// A local file or directory could not be made (a storage problem).
    #[error(transparent)]
    Local(#[from] LocalFileError),
    /// The Parquet writer panicked on the guest's batch (a type or shape
    /// the schema check did not foresee); the output is unusable.
    #[error("the Parquet writer cannot write this output: {0}")]
    WriterPanic(String),
    /// The iteration's deadline passed, or the run is shutting down, while
    /// the batch was being written.
    #[error(transparent)]
    Stopped(#[from] crate::deadline::Stop),
}

impl OutputError {
    /// Whether storage failed, rather than the guest's output being refused:
    /// the file system's or object store's errors, which reach the Parquet
    /// writer as `External`; its other errors are about the data.
    pub fn is_storage(&self) -> bool {
        match self {
            OutputError::Write(e) => Self::is_storage_error(e),
            OutputError::Local(_) => true,
            OutputError::WriterPanic(_) | OutputError::Stopped(_) | OutputError::Unwritable(_) => false,
            OutputError::SchemaChanged { .. } | OutputError::TooLarge { .. } | OutputError::TooManyRows { .. } => false,
        }
    }

    /// Whether a Parquet writer's error is storage's (`External`).
    pub(crate) fn is_storage_error(error: &parquet::errors::ParquetError) -> bool {
        matches!(error, parquet::errors::ParquetError::External(_))
    }
}

/// Rows of a batch are written in slices of about this many bytes of data,
/// the deadline checked between them, so that writing one large emitted
/// batch cannot run the host past the iteration's timeout or a shutdown.
const WRITE_SLICE_BYTES: u64 = 8 << 20;
/// Rows of a batch written in one slice, at most (a slice of zero-width
/// values has no bytes to measure it by).
const WRITE_SLICE_ROWS: usize = 1 << 20;
/// A streamed output's row group is flushed once its buffered data reaches
/// this size (as well as at Parquet's default of 1M rows), so that the host
/// memory an iteration's writer holds is bounded by bytes, not only rows.
pub const MAX_ROW_GROUP_BYTES: usize = 32 << 20;

/// Why an output could not be completed or committed (a storage problem).
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The object store failed.
    #[error(transparent)]
    Store(#[from] object_store::Error),
    /// The Parquet writer failed to complete the file.
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    /// A local file could not be written, renamed or removed.
    #[error(transparent)]
    Local(#[from] LocalFileError),
    /// The held output could not be written for a reason not of storage's
    /// (the data, or the deadline).
    #[error(transparent)]
    Refused(OutputError),
}

/// A file system operation on a local output's file or directory failed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct LocalFileError {
    /// The file or directory.
    pub path: PathBuf,
    /// The file system's error.
    pub source: std::io::Error,
}

impl LocalFileError {
    /// Maps an error of an operation on `path` (for `map_err`).
    fn at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> LocalFileError {
        let path = path.to_owned();
        move |source| LocalFileError { path, source }
    }
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

/// Where an output goes.
#[derive(Clone, Debug)]
enum Target {
    /// A directory of an object store (S3): the data file streams through
    /// a multipart upload.
    Store {
        /// The store.
        store: Arc<dyn ObjectStore>,
        /// The iteration's directory in it.
        dir: Path,
    },
    /// A directory on the local disk, written with `std::fs` on the
    /// iteration's own task, staged as `NAME#PID` and renamed into place
    /// as object_store's local store does, so that a reader never sees a
    /// file in part (a `_SUCCESS` without its record, say). That store
    /// hands every put to a blocking thread; for the many small outputs of
    /// short iterations those two thread handoffs per iteration cost more
    /// CPU than the writes themselves (see BENCHMARKS.md, iterations per
    /// second).
    Local {
        /// The iteration's directory.
        dir: PathBuf,
    },
}

/// The Parquet writer of an output in progress (one per iteration, so
/// its size does not matter).
#[allow(clippy::large_enum_variant)]
enum Writer {
    /// Streaming to an object store.
    Store(AsyncArrowWriter<BufWriter>),
    /// Writing the staging file `staged` on the local disk.
    Local {
        /// The writer.
        writer: ArrowWriter<File>,
        /// The staging file, renamed to [`PART_FILE`] when complete.
        staged: PathBuf,
    },
}

/// The output of one iteration, in progress.
pub struct OutputSink {
    target: Target,
    format: Arc<ParquetFormat>,
    writer: Option<Writer>,
    /// The batches held back while the output is under
    /// [`SMALL_OUTPUT_BYTES`] and no writer is begun, each with its bytes
    /// of data.
    held: Vec<(RecordBatch, u64)>,
    /// Host memory the held batches keep alive (their streams' buffers,
    /// schemas and metadata included), at least their data.
    held_bytes: u64,
    /// When writing must stop.
    deadline: Deadline,
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
        Self::to(Target::Store { store, dir }, max_bytes, max_rows)
    }

    /// A sink writing into the local directory `dir` (made when the
    /// output is written), refusing more than `max_bytes` of Arrow data
    /// or `max_rows` rows.
    pub fn local(dir: PathBuf, max_bytes: u64, max_rows: u64) -> Self {
        Self::to(Target::Local { dir }, max_bytes, max_rows)
    }

    fn to(target: Target, max_bytes: u64, max_rows: u64) -> Self {
        let format = Arc::default();
        OutputSink {
            target,
            format,
            writer: None,
            held: Vec::new(),
            held_bytes: 0,
            deadline: Deadline::never(),
            schema: None,
            batches: 0,
            rows: 0,
            arrow_bytes: 0,
            max_bytes,
            max_rows,
        }
    }

    /// Shares `format` with the run's other outputs.
    pub fn with_format(mut self, format: Arc<ParquetFormat>) -> Self {
        self.format = format;
        self
    }

    /// Stops writing (with [`OutputError::Stopped`]) once `deadline` passes.
    pub fn with_deadline(mut self, deadline: Deadline) -> Self {
        self.deadline = deadline;
        self
    }

    /// Bytes of host memory the output holds now: the batches held back
    /// (what they keep alive), or the writer's buffered row group.
    pub fn memory_bytes(&self) -> u64 {
        let writer = match &self.writer {
            None => 0,
            Some(Writer::Store(writer)) => writer.memory_size(),
            Some(Writer::Local { writer, .. }) => writer.memory_size(),
        };
        self.held_bytes.saturating_add(writer as u64)
    }

    /// Rows accepted so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Checks `batch` against the first batch's schema (the first against
    /// what Parquet can store) and the caps; returns its bytes of data
    /// ([`crate::guest_input::ipc::logical_bytes`]).
    pub fn check(&self, batch: &RecordBatch) -> Result<u64, OutputError> {
        match &self.schema {
            Some(expected) => {
                if expected.fields() != batch.schema().fields() {
                    return Err(OutputError::SchemaChanged {
                        batch: self.batches,
                        expected: describe(expected),
                        found: describe(&batch.schema()),
                    });
                }
            }
            None => crate::guest_input::ipc::check_writable(&batch.schema()).map_err(OutputError::Unwritable)?,
        }
        if self.rows.saturating_add(batch.num_rows() as u64) > self.max_rows {
            return Err(OutputError::TooManyRows { cap: self.max_rows });
        }
        let data = crate::guest_input::ipc::logical_bytes(batch);
        let emitted = self.arrow_bytes.saturating_add(counted_bytes(data, batch));
        if emitted > self.max_bytes {
            return Err(OutputError::TooLarge { cap: self.max_bytes, emitted });
        }
        Ok(data)
    }

    /// Appends `batch`: held back while the output is small (nothing is
    /// written until [`OutputSink::finish`]), else streamed towards storage.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<(), OutputError> {
        let holds = batch.get_array_memory_size() as u64 + metadata_bytes(&batch.schema());
        self.write_sized(batch, holds).await
    }

    /// [`OutputSink::write`] of a batch that keeps `holds` bytes of host
    /// memory alive while it is held (an emitted stream's whole buffer).
    pub async fn write_sized(&mut self, batch: &RecordBatch, holds: u64) -> Result<(), OutputError> {
        let data = self.check(batch)?;
        let size = counted_bytes(data, batch);
        if self.schema.is_none() {
            self.schema = Some(batch.schema());
        }
        self.arrow_bytes += size;
        self.batches += 1;
        self.rows += batch.num_rows() as u64;
        if self.writer.is_none() {
            self.held.push((batch.clone(), data));
            self.held_bytes = self.held_bytes.saturating_add(holds.max(size));
            if self.arrow_bytes < SMALL_OUTPUT_BYTES && self.held_bytes < SMALL_OUTPUT_BYTES {
                return Ok(());
            }
            // No longer small: begin the streamed file with what was held.
            self.begin(false)?;
            return self.write_held().await;
        }
        Self::write_to(self.writer.as_mut().expect("begun"), batch, data, &self.deadline).await
    }

    /// Begins the Parquet file, with the settings of a small output or a
    /// streamed one.
    fn begin(&mut self, small: bool) -> Result<(), OutputError> {
        let schema = self.schema.clone().expect("a batch was emitted");
        let options = self.format.options(&schema, small)?;
        self.writer = Some(self.target.create(schema, options)?);
        Ok(())
    }

    /// Writes the batches held back into the begun file.
    async fn write_held(&mut self) -> Result<(), OutputError> {
        let writer = self.writer.as_mut().expect("begun");
        self.held_bytes = 0;
        for (batch, data) in std::mem::take(&mut self.held) {
            Self::write_to(writer, &batch, data, &self.deadline).await?;
        }
        Ok(())
    }

    /// Writes `batch`, of `bytes` of data, in slices of about
    /// [`WRITE_SLICE_BYTES`], checking `deadline` before each; a panic of
    /// the writer on the guest's data is caught and refuses the output.
    async fn write_to(writer: &mut Writer, batch: &RecordBatch, bytes: u64, deadline: &Deadline) -> Result<(), OutputError> {
        let rows = batch.num_rows();
        let slices = usize::try_from(bytes / WRITE_SLICE_BYTES).unwrap_or(usize::MAX).clamp(1, rows.max(1));
        let step = rows.div_ceil(slices).clamp(1, WRITE_SLICE_ROWS);
        let mut offset = 0;
        loop {
            deadline.check()?;
            let len = step.min(rows - offset);
            let slice = if len == rows { batch.clone() } else { batch.slice(offset, len) };
            let written = match writer {
                Writer::Store(writer) => std::panic::AssertUnwindSafe(writer.write(&slice)).catch_unwind().await,
                Writer::Local { writer, .. } => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| writer.write(&slice))),
            };
            written.map_err(writer_panic)??;
            offset += len;
            if offset >= rows {
                return Ok(());
            }
        }
    }

    /// Completes the data file. An iteration that emitted nothing has no
    /// data file; a stale one from an earlier run is removed so that the
    /// directory reflects this run. The output is not committed until
    /// [`Finished::seal`] writes `_SUCCESS`.
    pub async fn finish(mut self) -> Result<Finished, CommitError> {
        if self.writer.is_none() && self.schema.is_some() {
            // A small output: written whole now.
            let storage = |e: OutputError| match e {
                OutputError::Write(e) if OutputError::is_storage_error(&e) => CommitError::Parquet(e),
                OutputError::Local(e) => CommitError::Local(e),
                // The writer refused or panicked on the data, or time ran out.
                refused => CommitError::Refused(refused),
            };
            self.begin(true).map_err(storage)?;
            self.write_held().await.map_err(storage)?;
        }
        let Some(mut writer) = self.writer.take() else {
            self.target.remove_part().await?;
            return Ok(Finished { target: self.target, committed: Committed { path: None, rows: self.rows, bytes: 0 } });
        };
        // Finishing encodes the last row group and the footer from the
        // guest's data: a panic there is a refusal of this output (as one
        // while writing is), its upload aborted, not a fault of the host's
        // that an attempt again (and a Spark task again) would repeat.
        let target = &self.target;
        let finished = match &mut writer {
            Writer::Store(writer) => {
                std::panic::AssertUnwindSafe(async {
                    finish_hook(target);
                    writer.finish().await.map(drop)
                })
                .catch_unwind()
                .await
            }
            Writer::Local { writer, .. } => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                finish_hook(target);
                writer.finish().map(drop)
            })),
        };
        match finished {
            Ok(finished) => finished?,
            Err(panic) => {
                self.writer = Some(writer);
                self.abort().await;
                return Err(CommitError::Refused(writer_panic(panic)));
            }
        }
        let (path, bytes) = match writer {
            Writer::Store(writer) => (Some(self.target.part_name()), writer.bytes_written() as u64),
            Writer::Local { writer, staged } => {
                let bytes = writer.bytes_written() as u64;
                drop(writer);
                let part = staged.with_file_name(PART_FILE);
                std::fs::rename(&staged, &part).map_err(LocalFileError::at(&part))?;
                (Some(self.target.part_name()), bytes)
            }
        };
        Ok(Finished { target: self.target, committed: Committed { path, rows: self.rows, bytes } })
    }

    /// Abandons the output: an upload in progress is aborted (a staging
    /// file removed), so nothing of this attempt becomes visible and an
    /// earlier good output stays.
    pub async fn abort(mut self) {
        match self.writer.take() {
            Some(Writer::Store(writer)) => {
                let mut upload = writer.into_inner();
                if let Err(e) = upload.abort().await {
                    tracing::warn!(dir = %self.target, "aborting an output upload failed: {e}");
                }
            }
            Some(Writer::Local { writer, staged }) => {
                drop(writer);
                if let Err(e) = std::fs::remove_file(&staged) {
                    tracing::warn!(file = %staged.display(), "removing an aborted output's staging file failed: {e}");
                }
            }
            None => {}
        }
    }
}

/// A panic of the Parquet writer on a guest's data, as the refusal of that
/// output (while writing and while finishing alike).
fn writer_panic(panic: Box<dyn std::any::Any + Send>) -> OutputError {
    OutputError::WriterPanic(crate::guest_input::panic_message(panic.as_ref()).to_owned())
}

/// Test hook, compiled into debug builds only: the writer's finish panics
/// for the iteration `CORRAL_TEST_FINISH_PANIC` names, as a Parquet bug on
/// a guest's data would, to show that it is a refusal of that output.
fn finish_hook(target: &Target) {
    #[cfg(debug_assertions)]
    if let Ok(n) = std::env::var("CORRAL_TEST_FINISH_PANIC")
        && target.to_string().ends_with(&format!("iter_{n}"))
    {
        panic!("CORRAL_TEST_FINISH_PANIC: the writer's finish panicked for {target}");
    }
    let _ = target;
}

impl Target {
    /// A Parquet writer for `schema`.
    fn create(&self, schema: SchemaRef, options: ArrowWriterOptions) -> Result<Writer, OutputError> {
        match self {
            Target::Store { store, dir } => {
                let object = BufWriter::new(store.clone(), dir.clone().join(PART_FILE));
                Ok(Writer::Store(AsyncArrowWriter::try_new_with_options(object, schema, options)?))
            }
            Target::Local { dir } => {
                std::fs::create_dir_all(dir).map_err(LocalFileError::at(dir))?;
                let staged = staging_path(dir, PART_FILE);
                let file = File::create(&staged).map_err(LocalFileError::at(&staged))?;
                Ok(Writer::Local { writer: ArrowWriter::try_new_with_options(file, schema, options)?, staged })
            }
        }
    }

    /// The data file's path as records show it: its key in its store, or
    /// a local file's absolute path.
    fn part_name(&self) -> String {
        match self {
            Target::Store { dir, .. } => dir.clone().join(PART_FILE).to_string(),
            Target::Local { dir } => dir.join(PART_FILE).display().to_string(),
        }
    }

    /// Removes a data file an earlier run left, if any.
    async fn remove_part(&self) -> Result<(), CommitError> {
        match self {
            Target::Store { store, dir } => match store.delete(&dir.clone().join(PART_FILE)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            },
            Target::Local { dir } => {
                let part = dir.join(PART_FILE);
                match std::fs::remove_file(&part) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(source) => Err(LocalFileError { path: part, source }.into()),
                }
            }
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Store { dir, .. } => write!(f, "{dir}"),
            Target::Local { dir } => write!(f, "{}", dir.display()),
        }
    }
}

/// An output whose data file is complete, waiting for its `_SUCCESS`.
#[derive(Debug)]
pub struct Finished {
    target: Target,
    committed: Committed,
}

impl Finished {
    /// What the output holds.
    pub fn committed(&self) -> &Committed {
        &self.committed
    }

    /// Commits the output: writes `_SUCCESS` holding `record`.
    pub async fn seal(self, record: Vec<u8>) -> Result<Committed, CommitError> {
        match &self.target {
            Target::Store { store, dir } => {
                store.put(&dir.clone().join(SUCCESS_FILE), PutPayload::from(record)).await?;
            }
            Target::Local { dir } => {
                if self.committed.path.is_none() {
                    // No data file: the directory may not exist yet.
                    std::fs::create_dir_all(dir).map_err(LocalFileError::at(dir))?;
                }
                let staged = staging_path(dir, SUCCESS_FILE);
                std::fs::write(&staged, record).map_err(LocalFileError::at(&staged))?;
                let success = dir.join(SUCCESS_FILE);
                std::fs::rename(&staged, &success).map_err(LocalFileError::at(&success))?;
            }
        }
        Ok(self.committed)
    }
}

/// A schema as `(name: type, ...)`, at most [`DESCRIBED_FIELDS`] fields of
/// it (a guest's schema may have thousands).
fn describe(schema: &SchemaRef) -> String {
    let mut fields: Vec<String> =
        schema.fields().iter().take(DESCRIBED_FIELDS).map(|f| format!("{}: {}", f.name(), f.data_type())).collect();
    if schema.fields().len() > DESCRIBED_FIELDS {
        fields.push(format!("... {} more fields", schema.fields().len() - DESCRIBED_FIELDS));
    }
    format!("({})", fields.join(", "))
}

/// What a batch of `data` bytes of data counts against the output's cap:
/// its data, and a byte a row at least, since columns of zero-width values
/// (`FixedSizeBinary(0)`) hold no data, yet a billion rows of them are a
/// billion values to write.
fn counted_bytes(data: u64, batch: &RecordBatch) -> u64 {
    data.saturating_add(batch.num_rows() as u64)
}

/// Fields of a schema an error message lists.
const DESCRIBED_FIELDS: usize = 20;

/// Bytes of `schema`'s metadata and its fields' (keys and values).
fn metadata_bytes(schema: &arrow_schema::Schema) -> u64 {
    let pairs = |m: &arrow_schema::Metadata| m.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum::<u64>();
    pairs(schema.metadata()) + schema.flattened_fields().iter().map(|f| pairs(f.metadata()) + f.name().len() as u64).sum::<u64>()
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::staging::StagingOwner;
    use parquet::basic::Compression;

    fn batch(values: &[i64]) -> RecordBatch {
        let array = arrow_array::Int64Array::from(values.to_vec());
        RecordBatch::try_from_iter([("v", Arc::new(array) as arrow_array::ArrayRef)]).unwrap()
    }

    fn listing(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(future)
    }

    /// The values of column 0 of the Parquet file `path`, and its first
    /// column chunk's metadata.
    fn read_part(path: &std::path::Path) -> (Vec<i64>, parquet::file::metadata::ColumnChunkMetaData) {
        let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
        let chunk = builder.metadata().row_group(0).column(0).clone();
        let values = builder
            .build()
            .unwrap()
            .flat_map(|b| b.unwrap().column(0).as_any().downcast_ref::<arrow_array::Int64Array>().unwrap().values().to_vec())
            .collect();
        (values, chunk)
    }

    #[test]
    fn a_local_output_is_staged_then_renamed_into_place_and_sealed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/iter_7");
        // Over SMALL_OUTPUT_BYTES: streamed as it is emitted.
        let first: Vec<i64> = (0..10_000).collect();
        let committed = block_on(async {
            let mut sink = OutputSink::local(dir.clone(), u64::MAX, u64::MAX);
            sink.write(&batch(&first)).await.unwrap();
            sink.write(&batch(&[4])).await.unwrap();
            // Until it is finished, only the staging file exists.
            assert_eq!(listing(&dir), [format!("{PART_FILE}#{}", StagingOwner::current())]);
            let finished = sink.finish().await.unwrap();
            finished.seal(b"{\"iteration\":7}".to_vec()).await.unwrap()
        });
        assert_eq!(listing(&dir), [SUCCESS_FILE, PART_FILE]);
        assert_eq!(committed.rows, 10_001);
        assert_eq!(committed.bytes, std::fs::metadata(dir.join(PART_FILE)).unwrap().len());
        let part = committed.path.expect("a data file");
        assert_eq!(part, dir.join(PART_FILE).display().to_string(), "a local file's absolute path");
        assert_eq!(std::fs::read(dir.join(SUCCESS_FILE)).unwrap(), b"{\"iteration\":7}");
        let (values, chunk) = read_part(&dir.join(PART_FILE));
        assert_eq!(values, [first, vec![4]].concat());
        // The streamed settings: Snappy, with a dictionary.
        assert_eq!(chunk.compression(), Compression::SNAPPY);
        assert!(chunk.dictionary_page_offset().is_some(), "a streamed output has its dictionary");
    }

    #[test]
    fn a_small_output_is_held_until_it_finishes_then_written_plain() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("iter_8");
        let committed = block_on(async {
            let mut sink = OutputSink::local(dir.clone(), u64::MAX, u64::MAX);
            sink.write(&batch(&[1, 2, 3])).await.unwrap();
            sink.write(&batch(&[4])).await.unwrap();
            // Held back: not even the directory is made yet.
            assert!(!dir.exists(), "a small output is written at its end");
            assert_eq!(sink.rows(), 4);
            sink.finish().await.unwrap().seal(b"{}".to_vec()).await.unwrap()
        });
        assert_eq!(listing(&dir), [SUCCESS_FILE, PART_FILE]);
        assert_eq!(committed.rows, 4);
        assert_eq!(committed.bytes, std::fs::metadata(dir.join(PART_FILE)).unwrap().len());
        let (values, chunk) = read_part(&dir.join(PART_FILE));
        assert_eq!(values, [1, 2, 3, 4]);
        // The small settings: uncompressed, no dictionary, the chunk's
        // statistics kept for readers that prune by them.
        assert_eq!(chunk.compression(), Compression::UNCOMPRESSED);
        assert_eq!(chunk.dictionary_page_offset(), None);
        let statistics = chunk.statistics().expect("the column chunk's statistics");
        assert_eq!(statistics.min_bytes_opt(), Some(&1i64.to_le_bytes()[..]));
        assert_eq!(statistics.max_bytes_opt(), Some(&4i64.to_le_bytes()[..]));
    }

    #[test]
    fn an_empty_batch_still_writes_a_file_with_its_schema() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("iter_9");
        let committed = block_on(async {
            let mut sink = OutputSink::local(dir.clone(), u64::MAX, u64::MAX);
            sink.write(&batch(&[])).await.unwrap();
            sink.finish().await.unwrap().seal(b"{}".to_vec()).await.unwrap()
        });
        assert_eq!(committed.rows, 0);
        assert!(committed.path.is_some(), "an emitted empty batch has a data file");
        let file = File::open(dir.join(PART_FILE)).unwrap();
        let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        assert_eq!(builder.schema().fields(), batch(&[]).schema().fields());
    }

    #[test]
    fn an_aborted_local_output_leaves_the_earlier_output_and_no_staging_file() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("iter_1");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join(PART_FILE), b"earlier").unwrap();
        std::fs::write(dir.join(SUCCESS_FILE), b"earlier record").unwrap();
        block_on(async {
            let mut sink = OutputSink::local(dir.clone(), u64::MAX, u64::MAX);
            sink.write(&batch(&[1])).await.unwrap();
            sink.abort().await;
        });
        assert_eq!(listing(&dir), [SUCCESS_FILE, PART_FILE]);
        assert_eq!(std::fs::read(dir.join(PART_FILE)).unwrap(), b"earlier");
    }

    #[test]
    fn a_local_output_with_nothing_emitted_removes_an_earlier_data_file() {
        let root = tempfile::tempdir().unwrap();
        let stale = root.path().join("iter_2");
        std::fs::create_dir(&stale).unwrap();
        std::fs::write(stale.join(PART_FILE), b"from an earlier run").unwrap();
        let fresh = root.path().join("iter_3");
        for dir in [&stale, &fresh] {
            let committed = block_on(async {
                let finished = OutputSink::local(dir.clone(), u64::MAX, u64::MAX).finish().await.unwrap();
                finished.seal(b"{}".to_vec()).await.unwrap()
            });
            assert_eq!(committed, Committed { path: None, rows: 0, bytes: 0 });
            // The directory reflects this run: its marker only.
            assert_eq!(listing(dir), [SUCCESS_FILE], "{}", dir.display());
        }
    }

    #[test]
    fn a_local_output_that_cannot_be_created_is_a_storage_error_naming_the_path() {
        let root = tempfile::tempdir().unwrap();
        // A file where the iteration's directory should be.
        let dir = root.path().join("iter_4");
        std::fs::write(&dir, b"in the way").unwrap();
        // A streamed output finds out at the write that begins its file.
        let long: Vec<i64> = (0..10_000).collect();
        let err = block_on(async {
            let mut sink = OutputSink::local(dir.clone(), u64::MAX, u64::MAX);
            sink.write(&batch(&long)).await.unwrap_err()
        });
        assert!(err.is_storage(), "{err:?}");
        assert!(err.to_string().contains(&dir.display().to_string()), "{err}");
        // A small one when it finishes; so does one with nothing emitted.
        let err = block_on(async {
            let mut sink = OutputSink::local(dir.clone(), u64::MAX, u64::MAX);
            sink.write(&batch(&[1])).await.unwrap();
            sink.finish().await.unwrap_err()
        });
        assert!(matches!(&err, CommitError::Local(e) if e.path.starts_with(&dir)), "{err:?}");
        let err = block_on(OutputSink::local(dir.clone(), u64::MAX, u64::MAX).finish()).unwrap_err();
        assert!(matches!(&err, CommitError::Local(e) if e.path.starts_with(&dir)), "{err:?}");
        // The refused batches of a guest are not storage errors.
        let err = block_on(async {
            let mut sink = OutputSink::local(root.path().join("iter_5"), u64::MAX, 1);
            sink.write(&batch(&[1, 2])).await.unwrap_err()
        });
        assert!(!err.is_storage(), "{err:?}");
        assert!(!root.path().join("iter_5").exists(), "a refused batch makes nothing");
    }
    #[test]
    fn a_shared_format_writes_the_bytes_of_a_plain_writer_for_each_schema() {
        let plain = |batch: &RecordBatch| {
            let small = (batch.get_array_memory_size() as u64) < SMALL_OUTPUT_BYTES;
            let props = if small { ParquetFormat::small() } else { ParquetFormat::streamed() };
            let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props)).unwrap();
            writer.write(batch).unwrap();
            writer.into_inner().unwrap()
        };
        let text = |values: &[&str]| {
            let array = arrow_array::StringArray::from(values.to_vec());
            RecordBatch::try_from_iter([("name", Arc::new(array) as arrow_array::ArrayRef)]).unwrap()
        };
        let root = tempfile::tempdir().unwrap();
        let format = Arc::new(ParquetFormat::default());
        // Two schemas in turn: each output gets its own schema's settings,
        // never the previous output's.
        // Small outputs and streamed ones of each schema.
        let long: Vec<i64> = (0..10_000).collect();
        let words: Vec<String> = (0..10_000).map(|n| format!("word {}", n % 7)).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let batches = [batch(&[1, 2]), batch(&long), text(&["a"]), batch(&[4]), text(&words), text(&["b", "c"])];
        for (n, batch) in batches.iter().enumerate() {
            let dir = root.path().join(format!("iter_{n}"));
            block_on(async {
                let mut sink = OutputSink::local(dir.clone(), u64::MAX, u64::MAX).with_format(format.clone());
                sink.write(batch).await.unwrap();
                sink.finish().await.unwrap().seal(b"{}".to_vec()).await.unwrap();
            });
            assert_eq!(std::fs::read(dir.join(PART_FILE)).unwrap(), plain(batch), "output {n}");
        }
    }

}
