//! Writing output: each emitted batch is appended to the iteration's output,
//! split into IPC streams small enough for the host to take in one call.

use anyhow::{Result, anyhow};
use arrow_array::{Array, RecordBatch};

use crate::{ipc, sys};

/// The most bytes of one IPC stream `emit` hands the host: far under the
/// host's per-call limit (64 MiB or more), so that an honest transform never
/// meets it, and small next to the sandbox's memory.
pub(crate) const MAX_STREAM_BYTES: usize = 16 << 20;

/// The bytes a slice is aimed at from the estimate, under
/// [`MAX_STREAM_BYTES`] to leave room for the stream's schema, padding and
/// rows larger than the average.
const TARGET_STREAM_BYTES: usize = MAX_STREAM_BYTES / 8 * 7;

/// Appends `batch` to this iteration's output. Every batch of an iteration
/// must have the same schema. Emit as you go: the host streams batches to
/// storage, so nothing needs to be held in the guest.
///
/// A batch of any size may be emitted: one whose data is over 16 MiB is
/// handed to the host in slices of rows, each an IPC stream of at most
/// 16 MiB (a single row larger than that goes alone), as the host takes
/// at most a fixed amount of data in one call.
pub fn emit(batch: &RecordBatch) -> Result<()> {
    let rows = batch.num_rows();
    // The memory the batch holds bounds the data it refers to: a small
    // batch (the common case) is one stream without a closer look.
    if rows <= 1 || batch.get_array_memory_size() <= TARGET_STREAM_BYTES {
        return emit_checked(batch);
    }
    let estimate = estimated_bytes(batch);
    let per_slice = if estimate <= TARGET_STREAM_BYTES {
        rows
    } else {
        // Rows in proportion: the estimate's average row, at least one.
        ((TARGET_STREAM_BYTES as u128 * rows as u128 / estimate as u128) as usize).max(1)
    };
    if per_slice >= rows {
        return emit_checked(batch);
    }
    let mut offset = 0;
    while offset < rows {
        let len = per_slice.min(rows - offset);
        emit_checked(&batch.slice(offset, len))?;
        offset += len;
    }
    Ok(())
}

/// The bytes of data `batch` refers to (its slice of them): arrow's
/// `get_slice_memory_size` of each column, which the IPC writer's output
/// follows closely for flat types (it counts nested children and
/// dictionaries whole, so it may be high for a slice of them).
fn estimated_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|column| column.to_data().get_slice_memory_size().unwrap_or_else(|_| column.get_array_memory_size()))
        .fold(0usize, usize::saturating_add)
}

/// Encodes `batch` and hands it to the host, or, if its stream is over
/// [`MAX_STREAM_BYTES`] and it has rows to split, emits each half the same
/// way. A batch whose stream without rows (schema and dictionaries) is
/// already over half the limit is not split: slices would each carry it
/// again and not be smaller.
fn emit_checked(batch: &RecordBatch) -> Result<()> {
    let bytes = ipc::encode(batch)?;
    let rows = batch.num_rows();
    if bytes.len() > MAX_STREAM_BYTES && rows > 1 && ipc::encode(&batch.slice(0, 0))?.len() <= MAX_STREAM_BYTES / 2 {
        drop(bytes);
        let half = rows / 2;
        emit_checked(&batch.slice(0, half))?;
        return emit_checked(&batch.slice(half, rows - half));
    }
    sys::emit(bytes).map_err(|e| anyhow!("the host refused the output batch: {e}"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;
    use crate::sys::{Level, NativeHost};
    use crate::{Context, ScanRequest, run_native};

    /// A host that keeps every stream it is handed.
    #[derive(Default)]
    struct Streams(Vec<Vec<u8>>);

    impl NativeHost for Streams {
        fn log(&mut self, _: Level, _: &str) {}
        fn open_scan(&mut self, _: &ScanRequest) -> Result<(Vec<u8>, Box<dyn Iterator<Item = Vec<u8>>>), String> {
            Err("no input".into())
        }
        fn emit(&mut self, batch: Vec<u8>) -> Result<(), String> {
            self.0.push(batch);
            Ok(())
        }
    }

    thread_local! {
        /// The batch the transform under test emits.
        static BATCH: std::cell::RefCell<Option<RecordBatch>> = const { std::cell::RefCell::new(None) };
    }

    /// Emits `batch` through the SDK on a native host; returns the streams
    /// the host got, and their batches decoded and concatenated.
    fn emitted(batch: RecordBatch) -> (Vec<Vec<u8>>, Vec<RecordBatch>) {
        BATCH.with(|cell| *cell.borrow_mut() = Some(batch));
        let (host, result) = run_native(Streams::default(), Context::new(0, "{}", "test"), |_| {
            emit(&BATCH.with(|cell| cell.borrow_mut().take()).expect("a batch"))
        });
        result.unwrap();
        let batches = host.0.iter().flat_map(|stream| ipc::decode(stream.clone()).unwrap().1).collect();
        (host.0, batches)
    }

    fn ids(batches: &[RecordBatch]) -> Vec<i64> {
        batches.iter().flat_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec()).collect()
    }

    #[test]
    fn a_small_batch_is_one_stream() {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap();
        let (streams, batches) = emitted(batch.clone());
        assert_eq!(streams.len(), 1);
        assert_eq!(batches, [batch]);
    }

    #[test]
    fn a_batch_without_rows_is_one_stream_with_its_schema() {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let (streams, batches) = emitted(RecordBatch::new_empty(schema.clone()));
        assert_eq!(streams.len(), 1);
        assert_eq!(ipc::decode(streams[0].clone()).unwrap().0, schema);
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
    }

    #[test]
    fn a_batch_over_16_mib_is_split_into_streams_of_at_most_16_mib_in_order() {
        // 2 x 8 bytes x 3,000,000 rows: 48 MB.
        let rows = 3_000_000i64;
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("twice", DataType::Int64, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(0..rows)),
            Arc::new(Int64Array::from_iter_values((0..rows).map(|i| 2 * i))),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let (streams, batches) = emitted(batch);
        assert!(streams.len() >= 3, "{} streams", streams.len());
        for stream in &streams {
            assert!(stream.len() <= MAX_STREAM_BYTES, "a stream of {} bytes", stream.len());
            // Each slice is well filled: no more streams than needed, about.
            assert!(stream.len() > MAX_STREAM_BYTES / 4 || std::ptr::eq(stream, streams.last().unwrap()), "{}", stream.len());
        }
        assert!(batches.iter().all(|b| b.schema() == schema));
        assert_eq!(ids(&batches), (0..rows).collect::<Vec<_>>());
        let twice: Vec<i64> =
            batches.iter().flat_map(|b| b.column(1).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec()).collect();
        assert_eq!(twice, (0..rows).map(|i| 2 * i).collect::<Vec<_>>());
    }

    #[test]
    fn rows_of_uneven_sizes_are_split_by_their_encoded_size_and_a_huge_row_goes_alone() {
        // 4,000 rows of 1 KiB around one row of 20 MiB (bigger than a stream).
        let rows = 4_001usize;
        let big = 2_000;
        let text: Vec<String> = (0..rows).map(|i| if i == big { "b".repeat(20 << 20) } else { "s".repeat(1024) }).collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("text", DataType::Utf8, false),
        ]));
        let columns: Vec<ArrayRef> =
            vec![Arc::new(Int64Array::from_iter_values(0..rows as i64)), Arc::new(StringArray::from(text.clone()))];
        let (streams, batches) = emitted(RecordBatch::try_new(schema, columns).unwrap());
        let over: Vec<usize> = streams.iter().map(Vec::len).filter(|len| *len > MAX_STREAM_BYTES).collect();
        assert_eq!(over.len(), 1, "only the huge row's stream is over the limit: {over:?}");
        let alone = streams.iter().find(|s| s.len() > MAX_STREAM_BYTES).unwrap();
        let (_, alone) = ipc::decode(alone.clone()).unwrap();
        assert_eq!(alone.iter().map(RecordBatch::num_rows).sum::<usize>(), 1, "the huge row goes alone");
        assert_eq!(ids(&batches), (0..rows as i64).collect::<Vec<_>>());
        let got: Vec<String> = batches
            .iter()
            .flat_map(|b| b.column(1).as_any().downcast_ref::<StringArray>().unwrap().iter().map(|s| s.unwrap().to_owned()).collect::<Vec<_>>())
            .collect();
        assert!(got == text, "the text of every row, in order");
    }
}
