//! Arrow IPC stream encoding and decoding for the bytes that cross the boundary.

use std::collections::HashMap;

use anyhow::{Context as _, Result, bail};
use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::convert::MessageBuffer;
use arrow_ipc::reader::{RecordBatchDecoder, StreamDecoder};
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

/// The end-of-stream marker that ends an IPC stream: a continuation marker
/// and a zero length.
const END_OF_STREAM: [u8; 8] = [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0];

/// Decodes the batch streams of one scan. Every stream the host sends for
/// a scan begins with the same schema message as the scan's schema stream,
/// so the schema is decoded once, at the open; a batch stream that begins
/// with those bytes and holds only record batches has just its batches
/// decoded, against that schema. Any other stream is decoded whole. For a
/// scan of one small batch, decoding the schema again was most of the
/// decoding.
pub(crate) struct ScanDecoder {
    /// The scan's schema.
    schema: SchemaRef,
    /// The schema stream without its end marker: the bytes a batch stream
    /// begins with. Empty if the schema stream does not end with the
    /// marker; then every stream is decoded whole.
    schema_message: Vec<u8>,
}

impl ScanDecoder {
    /// Reads the scan's schema stream (a schema message and no batch).
    pub(crate) fn new(schema_stream: Vec<u8>) -> Result<ScanDecoder> {
        let schema_message = schema_stream.strip_suffix(&END_OF_STREAM).map(<[u8]>::to_vec).unwrap_or_default();
        let (schema, _) = decode(schema_stream)?;
        Ok(ScanDecoder { schema, schema_message })
    }

    /// The scan's schema.
    pub(crate) fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The batches of one complete IPC stream of the scan, without copying
    /// the data buffers.
    pub(crate) fn batches(&self, stream: Vec<u8>) -> Result<Vec<RecordBatch>> {
        let head = self.schema_message.len();
        let repeats_the_schema = head > 0
            && stream.len() >= head + END_OF_STREAM.len()
            && stream[..head] == self.schema_message[..]
            && stream.ends_with(&END_OF_STREAM);
        let stream = Buffer::from_vec(stream);
        if repeats_the_schema {
            let messages = stream.slice_with_length(head, stream.len() - head - END_OF_STREAM.len());
            if let Some(batches) = self.record_batches(messages)? {
                return Ok(batches);
            }
        }
        decode_buffer(stream).map(|(_, batches)| batches)
    }

    /// The record batches of `messages` (the messages between a stream's
    /// schema and its end marker), or `None` if one of them is not a
    /// record batch (a dictionary batch, say).
    fn record_batches(&self, mut messages: Buffer) -> Result<Option<Vec<RecordBatch>>> {
        const MALFORMED: &str = "the host sent a malformed Arrow IPC stream";
        let no_dictionaries = HashMap::new();
        let mut batches = Vec::new();
        while !messages.is_empty() {
            // A message: the continuation marker, its length, its flatbuffer, its body.
            let prefix = messages.get(..8).context(MALFORMED)?;
            if prefix[..4] != END_OF_STREAM[..4] {
                return Ok(None);
            }
            let length = u32::from_le_bytes(prefix[4..].try_into().expect("4 bytes")) as usize;
            if messages.len() < 8 + length {
                bail!("{MALFORMED}: a message runs past the end of the stream");
            }
            let message = MessageBuffer::try_new(messages.slice_with_length(8, length)).context(MALFORMED)?;
            let message = message.as_ref();
            let Some(batch) = message.header_as_record_batch() else { return Ok(None) };
            let body_length = usize::try_from(message.bodyLength()).context(MALFORMED)?;
            if messages.len() - 8 - length < body_length {
                bail!("{MALFORMED}: a batch's body runs past the end of the stream");
            }
            let body = messages.slice_with_length(8 + length, body_length);
            let batch = RecordBatchDecoder::try_new(&body, batch, self.schema.clone(), &no_dictionaries, &message.version())
                .and_then(RecordBatchDecoder::read_record_batch)
                .context(MALFORMED)?;
            batches.push(batch);
            messages.advance(8 + length + body_length);
        }
        Ok(Some(batches))
    }
}

/// Decodes the schema and every batch of one complete IPC stream, without
/// copying the data buffers.
pub(crate) fn decode(bytes: Vec<u8>) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    decode_buffer(Buffer::from_vec(bytes))
}

/// [`decode`] of a buffer.
fn decode_buffer(mut buffer: Buffer) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let mut decoder = StreamDecoder::new();
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Array, ArrayRef, DictionaryArray, Float64Array, Int64Array, StringArray, types::Int32Type};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn batch(ids: &[i64], names: &[&str]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(ids.to_vec())), Arc::new(StringArray::from(names.to_vec()))];
        RecordBatch::try_new(schema, columns).unwrap()
    }

    /// One stream holding every batch, as the host sends a scan's batches.
    fn stream(batches: &[RecordBatch]) -> Vec<u8> {
        let mut writer = StreamWriter::try_new(Vec::new(), &batches[0].schema()).unwrap();
        for batch in batches {
            writer.write(batch).unwrap();
        }
        writer.finish().unwrap();
        writer.into_inner().unwrap()
    }

    #[test]
    fn a_stream_that_repeats_the_scan_schema_has_only_its_batches_decoded() {
        let batches = [batch(&[1, 2], &["a", "b"]), batch(&[3], &["c"])];
        let scan = ScanDecoder::new(encode_schema(&batches[0].schema()).unwrap()).unwrap();
        assert_eq!(scan.schema(), batches[0].schema());
        let bytes = stream(&batches);
        // The messages after the schema are decoded by themselves ...
        let head = scan.schema_message.len();
        assert!(head > 0 && bytes.starts_with(&scan.schema_message));
        let messages = Buffer::from(&bytes[head..bytes.len() - END_OF_STREAM.len()]);
        assert_eq!(scan.record_batches(messages).unwrap().as_deref(), Some(&batches[..]));
        // ... and the whole stream gives the batches a whole decode gives.
        assert_eq!(scan.batches(bytes.clone()).unwrap(), batches);
        assert_eq!(decode(bytes).unwrap().1, batches);
    }

    #[test]
    fn a_stream_of_another_schema_is_decoded_whole() {
        let scan = ScanDecoder::new(encode_schema(&batch(&[1], &["a"]).schema()).unwrap()).unwrap();
        let other = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, true)])),
            vec![Arc::new(Float64Array::from(vec![0.5]))],
        )
        .unwrap();
        let batches = scan.batches(stream(std::slice::from_ref(&other))).unwrap();
        assert_eq!(batches, [other]);
    }

    #[test]
    fn a_stream_with_a_dictionary_batch_is_decoded_whole() {
        let names: DictionaryArray<Int32Type> = vec!["a", "b", "a"].into_iter().collect();
        let schema = Arc::new(Schema::new(vec![Field::new("name", names.data_type().clone(), true)]));
        let dictionary = RecordBatch::try_new(schema.clone(), vec![Arc::new(names)]).unwrap();
        let scan = ScanDecoder::new(encode_schema(&schema).unwrap()).unwrap();
        let bytes = stream(std::slice::from_ref(&dictionary));
        let messages = Buffer::from(&bytes[scan.schema_message.len()..bytes.len() - END_OF_STREAM.len()]);
        assert_eq!(scan.record_batches(messages).unwrap(), None);
        assert_eq!(scan.batches(bytes).unwrap(), [dictionary]);
    }

    #[test]
    fn a_truncated_batch_stream_is_an_error_naming_it() {
        let full = batch(&[1, 2, 3], &["a", "b", "c"]);
        let scan = ScanDecoder::new(encode_schema(&full.schema()).unwrap()).unwrap();
        let bytes = stream(std::slice::from_ref(&full));
        // A batch message cut short: its body runs past the end marker.
        let head = scan.schema_message.len();
        let mut cut = bytes[..head + 24].to_vec();
        cut.extend_from_slice(&END_OF_STREAM);
        let error = format!("{:#}", scan.batches(cut).unwrap_err());
        assert!(error.contains("malformed Arrow IPC stream") || error.contains("truncated Arrow IPC stream"), "{error}");
        // Cut short without an end marker, it is decoded whole, and is truncated.
        let error = format!("{:#}", scan.batches(bytes[..head + 24].to_vec()).unwrap_err());
        assert!(error.contains("truncated Arrow IPC stream"), "{error}");
    }
}
