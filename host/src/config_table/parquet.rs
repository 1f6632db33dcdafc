//! Parquet configs: the row groups decoded on every core (each thread a
//! contiguous run of them), each batch prepared on the thread that decoded
//! it; the results keep the file's order.

use arrow_schema::{ArrowError, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};

use super::index::{Layout, Prepared};

fn failure(e: parquet::errors::ParquetError) -> ArrowError {
    ArrowError::ExternalError(Box::new(e))
}

/// The schema of a Parquet file, and what is needed to decode it.
pub(super) struct ParquetFile {
    bytes: Bytes,
    metadata: ArrowReaderMetadata,
}

impl ParquetFile {
    /// Reads the footer.
    pub(super) fn open(bytes: Bytes) -> Result<ParquetFile, ArrowError> {
        let metadata = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new()).map_err(failure)?;
        Ok(ParquetFile { bytes, metadata })
    }

    /// The file's schema as Arrow.
    pub(super) fn schema(&self) -> SchemaRef {
        self.metadata.schema().clone()
    }

    /// Decodes every row group in batches of at most `batch_rows` rows.
    pub(super) fn decode(self, batch_rows: usize, layout: &Layout) -> Result<Vec<Prepared>, ArrowError> {
        let row_groups = self.metadata.metadata().num_row_groups();
        let threads = crate::share::threads().min(16).min(row_groups.max(1));
        let read = |groups: Vec<usize>| -> Result<Vec<Prepared>, ArrowError> {
            let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(self.bytes.clone(), self.metadata.clone())
                .with_row_groups(groups)
                .with_batch_size(batch_rows)
                .build()
                .map_err(failure)?;
            reader.map(|batch| layout.prepare(batch?)).collect()
        };
        if threads < 2 {
            return read((0..row_groups).collect());
        }
        let runs: Vec<Vec<usize>> =
            (0..threads).map(|t| (row_groups * t / threads..row_groups * (t + 1) / threads).collect()).collect();
        let decoded: Vec<Result<Vec<Prepared>, ArrowError>> = std::thread::scope(|scope| {
            let read = &read;
            let handles: Vec<_> = runs.into_iter().map(|groups| scope.spawn(move || read(groups))).collect();
            handles.into_iter().map(|h| h.join().expect("decoding Parquet does not panic")).collect()
        });
        let mut prepared = Vec::new();
        for run in decoded {
            prepared.extend(run?);
        }
        Ok(prepared)
    }
}
