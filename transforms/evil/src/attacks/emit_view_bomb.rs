//! `emit-view-bomb`: a `Utf8View` column of 100,000 views that all refer to
//! one 1 MiB region of one buffer: under 3 MB of IPC, 100 GiB of strings.

use std::sync::Arc;

use arrow_ipc::writer::IpcWriteOptions;
use corral_guest::arrow_array::{RecordBatch, StringViewArray};
use corral_guest::arrow_buffer::{Buffer, ScalarBuffer};
use corral_guest::arrow_schema::{DataType, Field, Schema};
use corral_guest::{Context, Result, ensure};

use crate::common::raw_emit;
use crate::ipc;

/// Bytes of the one region every view refers to.
const REGION: usize = 1 << 20;

/// Emits the bomb as one stream.
pub fn run(_: &Context) -> Result<()> {
    let data = vec![b'v'; REGION];
    // A view of more than 12 bytes: length, 4-byte prefix, buffer index 0, offset 0.
    let prefix = u32::from_le_bytes(data[..4].try_into().expect("4 bytes"));
    let view = REGION as u128 | (prefix as u128) << 32;
    let views = ScalarBuffer::from(vec![view; 100_000]);
    // Checked the once: what every view refers to is ASCII.
    ensure!(data.is_ascii(), "the region is ASCII");
    let buffers: Arc<[Buffer]> = vec![Buffer::from_vec(data)].into();
    // SAFETY: every view is the one above: the region's length (over 12
    // bytes, so not inline), its first 4 bytes as the prefix, buffer 0
    // (which exists), offset 0, and the region is valid UTF-8 (ASCII): what
    // `try_new` checks, which would check the same megabyte 100,000 times.
    let array = unsafe { StringViewArray::new_unchecked(views, buffers, None) };
    let schema = Schema::new(vec![Field::new("bomb", DataType::Utf8View, false)]);
    let batch = RecordBatch::try_new(Arc::new(schema.clone()), vec![Arc::new(array)])?;
    raw_emit(&ipc::stream(&schema, &[batch], IpcWriteOptions::default())?)
}
