//! Arrow IPC streams built and taken apart by hand, for attacks that hand
//! the host streams the SDK would never write.

use std::ops::Range;

use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use corral_guest::arrow_array::RecordBatch;
use corral_guest::arrow_schema::Schema;
use corral_guest::anyhow::Context as _;
use corral_guest::{Result, ensure};

/// The end-of-stream marker: a continuation marker and a zero length.
pub const END_OF_STREAM: [u8; 8] = [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0];

/// One complete stream of `batches` (schema, dictionaries, batches, end
/// marker), written with `options`.
pub fn stream(schema: &Schema, batches: &[RecordBatch], options: IpcWriteOptions) -> Result<Vec<u8>> {
    let mut writer = StreamWriter::try_new_with_options(Vec::new(), schema, options)?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    Ok(writer.into_inner()?)
}

/// Where one message of a stream lies.
#[derive(Clone, Debug)]
pub struct Message {
    /// The whole message: prefix, flatbuffer and body.
    pub whole: Range<usize>,
    /// Its flatbuffer (the `Message` table).
    pub metadata: Range<usize>,
    /// Its body.
    pub body: Range<usize>,
}

/// The messages of a well-formed stream, in order, without its end marker.
pub fn messages(stream: &[u8]) -> Result<Vec<Message>> {
    let mut at = 0;
    let mut out = Vec::new();
    loop {
        let prefix = stream.get(at..at + 8).context("a message prefix past the end")?;
        ensure!(prefix[..4] == END_OF_STREAM[..4], "no continuation marker at {at}");
        let length = u32::from_le_bytes(prefix[4..].try_into().expect("4 bytes")) as usize;
        if length == 0 {
            return Ok(out);
        }
        let metadata = at + 8..at + 8 + length;
        let message = arrow_ipc::root_as_message(&stream[metadata.clone()]).map_err(|e| corral_guest::anyhow!("{e}"))?;
        let body = metadata.end..metadata.end + message.bodyLength() as usize;
        out.push(Message { whole: at..body.end, metadata, body: body.clone() });
        at = body.end;
    }
}
