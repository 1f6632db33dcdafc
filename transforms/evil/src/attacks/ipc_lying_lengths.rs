//! `ipc-lying-lengths` and its variants: a real stream whose record batch
//! lies about a size in its flatbuffer: a buffer's length 2^62 (or -1), a
//! buffer's offset 2^62, the message's body length 2^62, the row count 2^62.

use std::sync::Arc;

use arrow_ipc::writer::IpcWriteOptions;
use corral_guest::arrow_array::{Int64Array, RecordBatch};
use corral_guest::arrow_schema::{DataType, Field, Schema};
use corral_guest::{Context, Result, anyhow, ensure};

use crate::common::raw_emit;
use crate::ipc;

/// What to rewrite, and to what.
enum Lie {
    /// The values buffer's length.
    BufferLength(i64),
    /// The values buffer's offset in the body.
    BufferOffset(i64),
    /// The message's `bodyLength`.
    BodyLength(i64),
    /// The record batch's row count.
    RowCount(i64),
}

/// The values buffer's length is 2^62.
pub fn buffer_length_2_62(_: &Context) -> Result<()> {
    lie(Lie::BufferLength(1 << 62))
}

/// The values buffer's length is -1.
pub fn buffer_length_negative(_: &Context) -> Result<()> {
    lie(Lie::BufferLength(-1))
}

/// The values buffer starts 2^62 bytes into the body.
pub fn buffer_offset_2_62(_: &Context) -> Result<()> {
    lie(Lie::BufferOffset(1 << 62))
}

/// The batch's body is 2^62 bytes long.
pub fn body_length_2_62(_: &Context) -> Result<()> {
    lie(Lie::BodyLength(1 << 62))
}

/// The batch has 2^62 rows.
pub fn row_count_2_62(_: &Context) -> Result<()> {
    lie(Lie::RowCount(1 << 62))
}

/// Writes a stream of one batch (`id: Int64`, 1234 rows), rewrites one
/// field of the batch's flatbuffer in place and emits it.
fn lie(lie: Lie) -> Result<()> {
    let schema = Schema::new(vec![Field::new("id", DataType::Int64, false)]);
    let batch = RecordBatch::try_new(Arc::new(schema.clone()), vec![Arc::new(Int64Array::from_iter_values(0..1234))])?;
    let mut stream = ipc::stream(&schema, &[batch], IpcWriteOptions::default())?;
    let messages = ipc::messages(&stream)?;
    ensure!(messages.len() == 2, "arrow wrote {} messages, not 2", messages.len());
    let metadata = messages[1].metadata.clone();
    let (at, value) = {
        let bytes = &stream[metadata.clone()];
        let message = arrow_ipc::root_as_message(bytes).map_err(|e| anyhow!("{e}"))?;
        let field = |table: &arrow_ipc::RecordBatch<'_>, slot| {
            let offset = table._tab.vtable().get(slot) as usize;
            (offset != 0).then(|| table._tab.loc() + offset)
        };
        let record_batch = message.header_as_record_batch().ok_or_else(|| anyhow!("not a record batch"))?;
        // A buffer is a struct of (offset: i64, length: i64) inside the flatbuffer.
        let values_buffer = || -> Result<usize> {
            let buffers = record_batch.buffers().ok_or_else(|| anyhow!("no buffers"))?;
            ensure!(buffers.len() == 2, "{} buffers, not 2", buffers.len());
            Ok(buffers.get(1) as *const arrow_ipc::Buffer as usize - bytes.as_ptr() as usize)
        };
        match lie {
            Lie::BufferLength(value) => (values_buffer()? + 8, value),
            Lie::BufferOffset(value) => (values_buffer()?, value),
            Lie::BodyLength(value) => {
                let offset = message._tab.vtable().get(arrow_ipc::Message::VT_BODYLENGTH) as usize;
                ensure!(offset != 0, "no bodyLength field");
                (message._tab.loc() + offset, value)
            }
            Lie::RowCount(value) => {
                (field(&record_batch, arrow_ipc::RecordBatch::VT_LENGTH).ok_or_else(|| anyhow!("no length field"))?, value)
            }
        }
    };
    stream[metadata.start + at..metadata.start + at + 8].copy_from_slice(&value.to_le_bytes());
    raw_emit(&stream)
}
