//! Arrow IPC stream encoding and decoding for the bytes that cross the boundary.

use anyhow::{Context as _, Result, bail};
use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::SchemaRef;

/// Encodes one batch as a complete IPC stream (schema, batch, end marker).
pub(crate) fn encode(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    Ok(writer.into_inner()?)
}

/// Encodes a schema alone as an IPC stream (schema message, end marker).
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn encode_schema(schema: &SchemaRef) -> Result<Vec<u8>> {
    let mut writer = StreamWriter::try_new(Vec::new(), schema)?;
    writer.finish()?;
    Ok(writer.into_inner()?)
}

/// Decodes the schema and every batch of one complete IPC stream, without
/// copying the data buffers.
pub(crate) fn decode(bytes: Vec<u8>) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let mut decoder = StreamDecoder::new();
    let mut buffer = Buffer::from_vec(bytes);
    let mut batches = Vec::new();
    while !buffer.is_empty() {
        if let Some(batch) = decoder
            .decode(&mut buffer)
            .context("the host sent a malformed Arrow IPC stream")?
        {
            batches.push(batch);
        }
    }
    decoder.finish().context("the host sent a truncated Arrow IPC stream")?;
    let schema = match (decoder.schema(), batches.first()) {
        (Some(schema), _) => schema,
        (None, Some(batch)) => batch.schema(),
        (None, None) => bail!("the host sent an IPC stream without a schema"),
    };
    Ok((schema, batches))
}
