//! Emitted IPC bytes, validated before arrow sees them, then decoded, and
//! measured as the data they really hold.
//!
//! [`decode_emit`] walks the stream's framing itself: every message has the
//! continuation marker and a metadata length within the bytes received,
//! its flatbuffer verifies (within bounds proportional to its size), its
//! body lies within the bytes; the 8-byte end marker ends the stream and
//! nothing follows it. Exactly one schema, first: its fields (nested ones
//! included) and metadata bytes within [`GuestLimits`], little-endian, every
//! type one [`check_writable`] accepts. Every record batch and dictionary
//! batch: rows and array lengths within `0..=i32::MAX`, null counts within
//! the lengths, every buffer within the body, and the buffers its columns
//! take present, each a whole number of its values. No delta dictionary
//! (arrow concatenates at each one), no compressed body, at most one
//! dictionary batch a dictionary and record batch, at most
//! [`GuestLimits::max_messages`] messages. Only then does arrow read the
//! batches (`read_dictionary` and `read_record_batch`, what its
//! `StreamDecoder` calls, on the messages found here), with its validation
//! of every array on, and a panic of arrow's caught as an error. A
//! `Utf8View` column is read as `BinaryView` and its UTF-8 checked here, in
//! time linear in the stream (arrow checks each view's bytes in turn).
//!
//! Two kinds of refusal: bytes that are not what they claim give a message
//! starting with [`MALFORMED`] (and a stream cut short, or missing its end
//! marker, then says [`INCOMPLETE`]); a well-formed stream that asks for
//! what the host does not take (over a limit, a delta dictionary, a
//! compressed body, a type Parquet cannot store) gives a message saying so.
//! Either is made inert (guest field names in it) and cut to
//! [`GuestLimits::max_error_bytes`].

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_buffer::Buffer;
use arrow_ipc::{Endianness, MessageHeader, MetadataVersion};
use arrow_schema::{DataType, Field, Schema, SchemaRef, UnionMode};

use super::GuestLimits;
use crate::deadline::{Deadline, Stop};

/// How every message about bytes that are not a well-formed stream starts.
pub const MALFORMED: &str = "not a well-formed Arrow IPC stream: ";
/// What a message about a stream cut short (or missing its end marker)
/// says after [`MALFORMED`].
pub const INCOMPLETE: &str = "not a complete Arrow IPC stream";

/// The first bytes of every message of a stream (and of its end marker).
const CONTINUATION: [u8; 4] = [0xff; 4];

/// An emitted stream, validated and decoded.
#[derive(Debug)]
pub struct Emitted {
    /// Its batches.
    pub batches: Vec<RecordBatch>,
    /// Bytes of the stream as received.
    pub ipc_bytes: u64,
}

/// Validates and decodes one emitted IPC stream: its framing and every
/// length in its messages are checked against the bytes received, its
/// schema against `limits` and [`check_writable`], before arrow decodes it
/// (with its own validation, and a panic of arrow's caught as an error).
pub fn decode_emit(bytes: Vec<u8>, limits: &GuestLimits) -> Result<Emitted, String> {
    match decode_emit_until(bytes, limits, &Deadline::never()) {
        Ok(result) => result,
        Err(stop) => Err(stop.to_string()),
    }
}

/// [`decode_emit`], checking `deadline` before each message is decoded:
/// `Err` if it passed (the iteration's timeout, or a shutdown).
pub fn decode_emit_until(bytes: Vec<u8>, limits: &GuestLimits, deadline: &Deadline) -> Result<Result<Emitted, String>, Stop> {
    let ipc_bytes = bytes.len() as u64;
    // The messages name the guest's fields: made inert, and bounded.
    let inert = |message: String| super::text::line(&message, limits.max_error_bytes);
    let plan = match validate_stream(&bytes, limits) {
        Ok(plan) => plan,
        Err(message) => return Ok(Err(inert(message))),
    };
    let batches = match decode(bytes, plan, deadline)? {
        Ok(batches) => batches,
        Err(message) => return Ok(Err(inert(message))),
    };
    Ok(Ok(Emitted { batches, ipc_bytes }))
}

fn malformed(detail: impl std::fmt::Display) -> String {
    format!("{MALFORMED}{detail}")
}

fn incomplete(detail: impl std::fmt::Display) -> String {
    format!("{MALFORMED}{INCOMPLETE}: {detail}")
}

/// Walks every message of `bytes` without decoding any data: the framing,
/// the schema (and [`check_writable`]), the lengths of every batch against
/// its body and its columns.
fn validate_stream(bytes: &[u8], limits: &GuestLimits) -> Result<Plan, String> {
    let mut pos = 0usize;
    let mut spans = Vec::new();
    let mut messages = 0usize;
    let mut schema: Option<Schema> = None;
    // The value type of each dictionary id, as arrow's reader finds it
    // (the first field of that id).
    let mut dictionaries: HashMap<i64, DataType> = HashMap::new();
    let (mut record_batches, mut dictionary_batches) = (0usize, 0usize);
    loop {
        let rest = &bytes[pos..];
        if rest.is_empty() {
            return Err(incomplete(format!("the stream ends at byte {pos} without its end-of-stream marker")));
        }
        let marker = &rest[..rest.len().min(4)];
        if marker != &CONTINUATION[..marker.len()] {
            return Err(malformed(format!(
                "byte {pos} does not start a message: no continuation marker 0xFFFFFFFF (and no end-of-stream marker)"
            )));
        }
        let Some(length) = rest.get(4..8) else {
            return Err(incomplete(format!("the stream ends at byte {} inside a message header", bytes.len())));
        };
        let length = i32::from_le_bytes([length[0], length[1], length[2], length[3]]);
        if length == 0 {
            // The end-of-stream marker: nothing may follow it.
            let after = rest.len() - 8;
            if after != 0 {
                return Err(malformed(format!("{after} bytes follow the end-of-stream marker at byte {pos}")));
            }
            break;
        }
        messages += 1;
        let n = messages;
        if messages > limits.max_messages {
            return Err(format!("the stream has more than {} messages, the limit", limits.max_messages));
        }
        let Ok(length) = usize::try_from(length) else {
            return Err(malformed(format!("message {n} at byte {pos} declares a metadata length of {length}")));
        };
        let after_header = rest.len() - 8;
        if length > after_header {
            return Err(incomplete(format!(
                "message {n} at byte {pos} declares {length} bytes of metadata, past the end of the stream ({after_header} bytes remain)"
            )));
        }
        let metadata = &rest[8..8 + length];
        let message = verify_message(metadata).map_err(|e| malformed(format!("the metadata of message {n} at byte {pos} is not a valid flatbuffer: {e}")))?;
        let body_length = message.bodyLength();
        let after_metadata = after_header - length;
        let Ok(body) = usize::try_from(body_length) else {
            return Err(malformed(format!("message {n} declares a body length of {body_length}")));
        };
        if body > after_metadata {
            return Err(incomplete(format!(
                "message {n} at byte {pos} declares a body of {body} bytes, past the end of the stream ({after_metadata} bytes remain)"
            )));
        }
        let version = message.version();
        if version.variant_name().is_none() {
            return Err(malformed(format!("message {n} has an unknown metadata version {}", version.0)));
        }
        if version != MetadataVersion::V4 && version != MetadataVersion::V5 {
            return Err(format!("message {n} has metadata version {version:?}; only V4 and V5 are accepted"));
        }
        match message.header_type() {
            MessageHeader::Schema => {
                if schema.is_some() {
                    return Err(malformed(format!("message {n} is a second schema; a stream has one, first")));
                }
                let header = message.header_as_schema().ok_or_else(|| malformed(format!("message {n} is a schema without its header")))?;
                let known = validate_schema(header, limits)?;
                for field in known.flattened_fields() {
                    #[expect(deprecated, reason = "arrow's reader finds a dictionary's field by its id, so must this")]
                    if let (DataType::Dictionary(_, values), Some(id)) = (field.data_type(), field.dict_id()) {
                        dictionaries.entry(id).or_insert_with(|| values.as_ref().clone());
                    }
                }
                schema = Some(known);
            }
            MessageHeader::RecordBatch => {
                if schema.is_none() {
                    return Err(malformed(format!("message {n} is a record batch before the schema")));
                }
                let header = message.header_as_record_batch().ok_or_else(|| malformed(format!("message {n} is a record batch without its header")))?;
                let columns = schema.iter().flat_map(|s| s.fields().iter().map(|f| f.data_type()));
                validate_batch(header, body_length, n, columns, version)?;
                record_batches += 1;
                spans.push(Span { metadata: pos + 8..pos + 8 + length, body: pos + 8 + length..pos + 8 + length + body });
            }
            MessageHeader::DictionaryBatch => {
                if schema.is_none() {
                    return Err(malformed(format!("message {n} is a dictionary batch before the schema")));
                }
                let header = message
                    .header_as_dictionary_batch()
                    .ok_or_else(|| malformed(format!("message {n} is a dictionary batch without its header")))?;
                if header.isDelta() {
                    return Err(format!(
                        "message {n} is a delta dictionary batch (dictionary id {}): delta dictionaries are not accepted; emit each batch's dictionary whole",
                        header.id()
                    ));
                }
                let data = header.data().ok_or_else(|| malformed(format!("message {n} is a dictionary batch without its data")))?;
                let id = header.id();
                let Some(values) = dictionaries.get(&id) else {
                    return Err(malformed(format!("message {n} is a dictionary batch of id {id}, which no field of the schema has")));
                };
                validate_batch(data, body_length, n, [values], version)?;
                dictionary_batches += 1;
                spans.push(Span { metadata: pos + 8..pos + 8 + length, body: pos + 8 + length..pos + 8 + length + body });
            }
            other => {
                return Err(malformed(format!(
                    "message {n} is of type {other:?}; a stream carries a schema, dictionary batches and record batches"
                )));
            }
        }
        if n == 1 && schema.is_none() {
            return Err(malformed("the first message is not the schema"));
        }
        // Within `bytes`: checked above.
        pos += 8 + length + body;
    }
    let Some(schema) = schema else {
        return Err(malformed("the stream has no schema"));
    };
    // A writer sends a dictionary at most once a batch (arrow's reader
    // looks each one's field up among all the fields: a flood of them
    // costs the fields times the messages).
    let most = dictionaries.len().saturating_mul(record_batches + 1);
    let fields = schema.flattened_fields().len();
    if dictionary_batches.saturating_mul(fields) > MAX_DICTIONARY_FIELD_VISITS {
        return Err(format!(
            "the stream has {dictionary_batches} dictionary batches for a schema of {fields} fields, over the limit of {MAX_DICTIONARY_FIELD_VISITS} for the two multiplied \
             (each dictionary batch is looked up among all the fields)"
        ));
    }
    if dictionary_batches > most {
        return Err(format!(
            "the stream has {dictionary_batches} dictionary batches for {} dictionaries and {record_batches} record batches; \
             at most one a dictionary and batch is accepted",
            dictionaries.len()
        ));
    }
    Ok(Plan { schema, spans })
}

/// Dictionary batches times the schema's fields, at most: arrow's reader
/// looks each dictionary batch's field up among all the fields.
const MAX_DICTIONARY_FIELD_VISITS: usize = 10_000_000;

/// What [`validate_stream`] found: the schema, and where each dictionary
/// batch and record batch lies.
struct Plan {
    schema: Schema,
    spans: Vec<Span>,
}

/// Where one message's flatbuffer and body lie in the stream.
struct Span {
    metadata: std::ops::Range<usize>,
    body: std::ops::Range<usize>,
}

/// Verifies one message's flatbuffer, with bounds proportional to its size
/// (arrow's `root_as_message` allows 2 GiB of "apparent size" and a million
/// tables whatever the size: offsets that share one table or string make a
/// few kilobytes verify as gigabytes).
fn verify_message(metadata: &[u8]) -> Result<arrow_ipc::Message<'_>, String> {
    // `flatbuffers` is not a dependency of ours: its options type is the
    // one `root_as_message_with_opts` takes, and is inferred from it.
    fn with_options<'b, O: Default, R>(root: impl FnOnce(&O, &'b [u8]) -> R, set: impl FnOnce(&mut O), buf: &'b [u8]) -> R {
        let mut options = O::default();
        set(&mut options);
        root(&options, buf)
    }
    let len = metadata.len();
    with_options(
        arrow_ipc::root_as_message_with_opts,
        |options| {
            // Every table takes 4 bytes at least; a table's vtable is counted
            // again at each table, hence the factor.
            options.max_tables = len / 4 + 16;
            options.max_apparent_size = len.saturating_mul(8).saturating_add(64 << 10);
        },
        metadata,
    )
    .map_err(|e| e.to_string())
}

/// Fields and metadata bytes of a schema's flatbuffer, counted before it is
/// converted (which allocates for each).
#[derive(Default)]
struct SchemaCounts {
    fields: usize,
    metadata_bytes: usize,
}

fn key_value_bytes<'a>(metadata: Option<impl IntoIterator<Item = arrow_ipc::KeyValue<'a>>>) -> usize {
    metadata.into_iter().flatten().fold(0usize, |sum, kv| {
        sum.saturating_add(kv.key().map_or(0, str::len)).saturating_add(kv.value().map_or(0, str::len))
    })
}

fn count_field(field: arrow_ipc::Field<'_>, depth: usize, counts: &mut SchemaCounts, limits: &GuestLimits) -> Result<(), String> {
    counts.fields += 1;
    if counts.fields > limits.max_fields {
        return Err(format!("the schema has more than {} fields (nested ones included), the limit", limits.max_fields));
    }
    // Arrow's decoding of deeply nested columns is slow (lists 26 deep: 2.2 s
    // for 18 MB), and a decode is not interrupted by the deadline.
    if depth > limits.max_nesting {
        return Err(format!("the schema nests fields more than {} deep, the limit", limits.max_nesting));
    }
    counts.metadata_bytes = counts.metadata_bytes.saturating_add(key_value_bytes(field.custom_metadata()));
    for child in field.children().into_iter().flatten() {
        count_field(child, depth + 1, counts, limits)?;
    }
    Ok(())
}

fn validate_schema(header: arrow_ipc::Schema<'_>, limits: &GuestLimits) -> Result<Schema, String> {
    if header.endianness() != Endianness::Little {
        return Err("the stream is big-endian; only little-endian streams are accepted".into());
    }
    let mut counts = SchemaCounts { fields: 0, metadata_bytes: key_value_bytes(header.custom_metadata()) };
    for field in header.fields().into_iter().flatten() {
        count_field(field, 1, &mut counts, limits)?;
    }
    if counts.metadata_bytes > limits.max_metadata_bytes {
        return Err(format!(
            "the schema carries {} bytes of metadata, over the limit of {} bytes",
            counts.metadata_bytes, limits.max_metadata_bytes
        ));
    }
    let schema = match catch_unwind(|| arrow_ipc::convert::try_fb_to_schema(header)) {
        Ok(Ok(schema)) => schema,
        Ok(Err(e)) => return Err(malformed(format!("its schema does not convert: {e}"))),
        Err(panic) => return Err(malformed(format!("converting its schema panicked: {}", panic_message(panic.as_ref())))),
    };
    // Before any batch: an unwritable type is refused at the first emit.
    check_writable(&schema)?;
    Ok(schema)
}

/// Checks the lengths of a record batch's (or dictionary batch's data's)
/// header against its message body of `body_length` bytes.
fn validate_batch<'s>(
    header: arrow_ipc::RecordBatch<'_>,
    body_length: i64,
    n: usize,
    columns: impl IntoIterator<Item = &'s DataType>,
    version: MetadataVersion,
) -> Result<(), String> {
    if let Some(compression) = header.compression() {
        return Err(format!(
            "message {n} has a body compressed with {:?}: compressed streams are not accepted; emit it uncompressed",
            compression.codec()
        ));
    }
    let rows = header.length();
    if !(0..=i64::from(i32::MAX)).contains(&rows) {
        return Err(malformed(format!("message {n} declares {rows} rows (0 to {} are accepted)", i32::MAX)));
    }
    let mut nodes = 0usize;
    for (i, node) in header.nodes().into_iter().flatten().enumerate() {
        nodes += 1;
        let (length, nulls) = (node.length(), node.null_count());
        if !(0..=i64::from(i32::MAX)).contains(&length) {
            return Err(malformed(format!("message {n}: array {i} declares a length of {length} (0 to {} are accepted)", i32::MAX)));
        }
        if !(0..=length).contains(&nulls) {
            return Err(malformed(format!("message {n}: array {i} of length {length} declares {nulls} nulls")));
        }
    }
    let mut lengths = Vec::new();
    // Buffers in order, none overlapping another, each at an 8-byte offset
    // (as the format says and every writer writes them): together they are
    // at most the body, and arrow never copies a misaligned one (it copies
    // each whole: 10,000 columns sharing one misaligned 60 MiB buffer
    // would be 600 GB).
    let mut previous_end = 0i64;
    for (i, buffer) in header.buffers().into_iter().flatten().enumerate() {
        let (offset, length) = (buffer.offset(), buffer.length());
        lengths.push(length);
        let end = offset.checked_add(length);
        if offset < 0 || length < 0 || end.is_none_or(|end| end > body_length) {
            return Err(malformed(format!(
                "message {n}: buffer {i} (at offset {offset}, {length} bytes) lies outside the message's body of {body_length} bytes"
            )));
        }
        if offset < previous_end {
            return Err(malformed(format!(
                "message {n}: buffer {i} (at offset {offset}) overlaps the buffer before it (which ends at {previous_end}); buffers follow each other"
            )));
        }
        if offset % 8 != 0 {
            return Err(malformed(format!("message {n}: buffer {i} is at offset {offset}, not a multiple of 8")));
        }
        previous_end = end.unwrap_or(body_length);
    }
    let mut variadic = Vec::new();
    for count in header.variadicBufferCounts().into_iter().flatten() {
        let count = usize::try_from(count).map_err(|_| malformed(format!("message {n} declares {count} variadic buffers")))?;
        variadic.push(count);
    }
    // Each column takes a node: the walk is as long as the message.
    let mut walk = Walk { nodes, lengths: lengths.iter().enumerate(), variadic: variadic.iter(), n, version };
    columns.into_iter().try_for_each(|column| walk.column(column))
}

/// The buffers of a batch's columns, taken in the order arrow's reader
/// takes them: each must be there, and a whole number of the values it
/// holds (arrow panics on an offsets buffer of 13 bytes).
struct Walk<'v> {
    /// Nodes left.
    nodes: usize,
    lengths: std::iter::Enumerate<std::slice::Iter<'v, i64>>,
    variadic: std::slice::Iter<'v, usize>,
    n: usize,
    version: MetadataVersion,
}

impl Walk<'_> {
    fn buffer(&mut self, width: usize, data_type: &DataType) -> Result<(), String> {
        let n = self.n;
        let Some((i, &length)) = self.lengths.next() else {
            return Err(malformed(format!("message {n} has fewer buffers than its schema needs")));
        };
        if length % width as i64 != 0 {
            return Err(malformed(format!(
                "message {n}: buffer {i} (of a {data_type} column) has {length} bytes, not a whole number of {width}-byte values"
            )));
        }
        Ok(())
    }

    fn column(&mut self, data_type: &DataType) -> Result<(), String> {
        use DataType::*;
        let t = data_type;
        let Some(left) = self.nodes.checked_sub(1) else {
            return Err(malformed(format!("message {} has fewer arrays (nodes) than its schema needs", self.n)));
        };
        self.nodes = left;
        match data_type {
            Null => Ok(()),
            Utf8 | Binary => [1, 4, 1].into_iter().try_for_each(|w| self.buffer(w, t)),
            LargeUtf8 | LargeBinary => [1, 8, 1].into_iter().try_for_each(|w| self.buffer(w, t)),
            Utf8View | BinaryView => {
                let Some(&count) = self.variadic.next() else {
                    return Err(malformed(format!("message {} has no variadic buffer count for a {t} column", self.n)));
                };
                self.buffer(1, t)?;
                self.buffer(16, t)?;
                (0..count).try_for_each(|_| self.buffer(1, t))
            }
            List(f) | Map(f, _) => {
                [1, 4].into_iter().try_for_each(|w| self.buffer(w, t))?;
                self.column(f.data_type())
            }
            LargeList(f) => {
                [1, 8].into_iter().try_for_each(|w| self.buffer(w, t))?;
                self.column(f.data_type())
            }
            ListView(f) => {
                [1, 4, 4].into_iter().try_for_each(|w| self.buffer(w, t))?;
                self.column(f.data_type())
            }
            LargeListView(f) => {
                [1, 8, 8].into_iter().try_for_each(|w| self.buffer(w, t))?;
                self.column(f.data_type())
            }
            FixedSizeList(f, _) => {
                self.buffer(1, t)?;
                self.column(f.data_type())
            }
            Struct(fields) => {
                self.buffer(1, t)?;
                fields.iter().try_for_each(|f| self.column(f.data_type()))
            }
            RunEndEncoded(run_ends, values) => {
                self.column(run_ends.data_type())?;
                self.column(values.data_type())
            }
            Dictionary(key, _) => {
                self.buffer(1, t)?;
                self.buffer(key.primitive_width().unwrap_or(1), t)
            }
            Union(fields, mode) => {
                if self.version < MetadataVersion::V5 {
                    self.buffer(1, t)?;
                }
                self.buffer(1, t)?;
                if *mode == UnionMode::Dense {
                    self.buffer(4, t)?;
                }
                fields.iter().try_for_each(|(_, f)| self.column(f.data_type()))
            }
            // Boolean values and fixed-size binaries are read as bytes.
            Boolean | FixedSizeBinary(_) => [1, 1].into_iter().try_for_each(|w| self.buffer(w, t)),
            other => {
                self.buffer(1, t)?;
                self.buffer(other.primitive_width().unwrap_or(1), t)
            }
        }
    }
}

/// Decodes a stream whose messages [`validate_stream`] accepted, with
/// arrow's reader and its validation of every array; a panic of arrow's
/// becomes an error.
///
/// A `Utf8View` column is read as `BinaryView` (arrow checks its views
/// against its buffers), then its UTF-8 checked here and the column made a
/// `Utf8View` again: arrow checks each view's bytes in turn, and 100,000
/// views of one megabyte take it 100 GB of checking, where here a buffer
/// valid as a whole is checked once and each view's ends in constant time.
fn decode(bytes: Vec<u8>, plan: Plan, deadline: &Deadline) -> Result<Result<Vec<RecordBatch>, String>, Stop> {
    let mut stopped = None;
    let run = || {
        let stream_bytes = bytes.len();
        let buffer = Buffer::from_vec(bytes);
        let schema = Arc::new(plan.schema);
        let fields: Vec<Field> = schema.fields().iter().map(|f| binary_views_field(f)).collect();
        let read_as = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        let views = read_as.fields() != schema.fields();
        let mut dictionaries = HashMap::new();
        let mut restore = Restore::new(stream_bytes);
        let mut batches = Vec::new();
        for span in &plan.spans {
            if let Err(stop) = deadline.check() {
                stopped = Some(stop);
                return Ok(Vec::new());
            }
            let message = verify_message(&buffer[span.metadata.clone()]).map_err(malformed)?;
            let body = buffer.slice_with_length(span.body.start, span.body.len());
            let version = message.version();
            if let Some(dictionary) = message.header_as_dictionary_batch() {
                arrow_ipc::reader::read_dictionary(&body, dictionary, &read_as, &mut dictionaries, &version).map_err(malformed)?;
            } else if let Some(header) = message.header_as_record_batch() {
                let batch = arrow_ipc::reader::read_record_batch(&body, header, read_as.clone(), &dictionaries, None, &version).map_err(malformed)?;
                let batch = if views { restore.batch(&batch, &schema)? } else { batch };
                batches.push(batch);
            }
        }
        Ok(batches)
    };
    let result = match catch_unwind(AssertUnwindSafe(run)) {
        Ok(result) => result,
        Err(panic) => Err(malformed(format!("decoding it panicked: {}", panic_message(panic.as_ref())))),
    };
    match stopped {
        Some(stop) => Err(stop),
        None => Ok(result),
    }
}

/// `field` with every `Utf8View` in its type read as `BinaryView`.
fn binary_views_field(field: &Field) -> Field {
    field.clone().with_data_type(binary_views(field.data_type()))
}

fn binary_views(data_type: &DataType) -> DataType {
    use DataType::*;
    let field = |f: &arrow_schema::FieldRef| Arc::new(binary_views_field(f));
    match data_type {
        Utf8View => BinaryView,
        List(f) => List(field(f)),
        LargeList(f) => LargeList(field(f)),
        ListView(f) => ListView(field(f)),
        LargeListView(f) => LargeListView(field(f)),
        FixedSizeList(f, size) => FixedSizeList(field(f), *size),
        Map(f, sorted) => Map(field(f), *sorted),
        Struct(fields) => Struct(fields.iter().map(field).collect()),
        Dictionary(key, value) => Dictionary(key.clone(), Box::new(binary_views(value))),
        RunEndEncoded(run_ends, values) => RunEndEncoded(run_ends.clone(), field(values)),
        // Refused before: by `check_writable`.
        Union(..) => data_type.clone(),
        other => other.clone(),
    }
}

/// Makes the columns read as `BinaryView` `Utf8View` again, checking their
/// UTF-8.
struct Restore {
    /// Bytes of views in buffers that are not valid UTF-8 as a whole still
    /// to be checked one view at a time.
    budget: usize,
    /// Dictionary values (arrow's, and restored), by the address of
    /// arrow's array: a stream's batches share them.
    values: HashMap<usize, (ArrayRef, ArrayRef)>,
}

impl Restore {
    fn new(stream_bytes: usize) -> Restore {
        Restore { budget: stream_bytes.saturating_mul(2).saturating_add(64 << 20), values: HashMap::new() }
    }

    fn batch(&mut self, batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
        let columns = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(column, field)| self.array(column, field.data_type()))
            .collect::<Result<Vec<_>, _>>()?;
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        RecordBatch::try_new_with_options(schema.clone(), columns, &options).map_err(malformed)
    }

    /// `array` (read with [`binary_views`] of `target`) as `target`.
    fn array(&mut self, array: &ArrayRef, target: &DataType) -> Result<ArrayRef, String> {
        use DataType::*;
        if array.data_type() == target {
            return Ok(array.clone());
        }
        let mismatch = || malformed(format!("a column read as {} is not a {target}", array.data_type()));
        let e = |e: arrow_schema::ArrowError| malformed(e);
        Ok(match target {
            Utf8View => {
                let binary = array.as_binary_view_opt().ok_or_else(mismatch)?;
                self.check_utf8(binary)?;
                let (views, buffers, nulls) = binary.clone().into_parts();
                // SAFETY: arrow built `binary` with its validation (views
                // within their buffers, prefixes matching, inline padding
                // zero), which is a `Utf8View`'s but for UTF-8, and every
                // view's bytes are valid UTF-8 (`check_utf8`).
                Arc::new(unsafe { arrow_array::StringViewArray::new_unchecked(views, buffers, nulls) })
            }
            List(f) => {
                let list = array.as_list_opt::<i32>().ok_or_else(mismatch)?;
                let values = self.array(list.values(), f.data_type())?;
                Arc::new(arrow_array::ListArray::try_new(f.clone(), list.offsets().clone(), values, list.nulls().cloned()).map_err(e)?)
            }
            LargeList(f) => {
                let list = array.as_list_opt::<i64>().ok_or_else(mismatch)?;
                let values = self.array(list.values(), f.data_type())?;
                Arc::new(arrow_array::LargeListArray::try_new(f.clone(), list.offsets().clone(), values, list.nulls().cloned()).map_err(e)?)
            }
            ListView(f) => {
                let list = array.as_list_view_opt::<i32>().ok_or_else(mismatch)?;
                let values = self.array(list.values(), f.data_type())?;
                let (offsets, sizes, nulls) = (list.offsets().clone(), list.sizes().clone(), list.nulls().cloned());
                Arc::new(arrow_array::ListViewArray::try_new(f.clone(), offsets, sizes, values, nulls).map_err(e)?)
            }
            LargeListView(f) => {
                let list = array.as_list_view_opt::<i64>().ok_or_else(mismatch)?;
                let values = self.array(list.values(), f.data_type())?;
                let (offsets, sizes, nulls) = (list.offsets().clone(), list.sizes().clone(), list.nulls().cloned());
                Arc::new(arrow_array::LargeListViewArray::try_new(f.clone(), offsets, sizes, values, nulls).map_err(e)?)
            }
            FixedSizeList(f, size) => {
                let list = array.as_fixed_size_list_opt().ok_or_else(mismatch)?;
                let values = self.array(list.values(), f.data_type())?;
                let array = arrow_array::FixedSizeListArray::try_new_with_length(f.clone(), *size, values, list.nulls().cloned(), list.len());
                Arc::new(array.map_err(e)?)
            }
            Map(f, sorted) => {
                let map = array.as_map_opt().ok_or_else(mismatch)?;
                let entries: ArrayRef = Arc::new(map.entries().clone());
                let entries = self.array(&entries, f.data_type())?;
                let entries = entries.as_struct_opt().ok_or_else(mismatch)?.clone();
                Arc::new(arrow_array::MapArray::try_new(f.clone(), map.offsets().clone(), entries, map.nulls().cloned(), *sorted).map_err(e)?)
            }
            Struct(fields) => {
                let structs = array.as_struct_opt().ok_or_else(mismatch)?;
                let columns = structs
                    .columns()
                    .iter()
                    .zip(fields)
                    .map(|(column, field)| self.array(column, field.data_type()))
                    .collect::<Result<Vec<_>, _>>()?;
                let array = arrow_array::StructArray::try_new_with_length(fields.clone(), columns, structs.nulls().cloned(), structs.len());
                Arc::new(array.map_err(e)?)
            }
            Dictionary(key, value) => match key.as_ref() {
                Int8 => self.dictionary::<Int8Type>(array, value)?,
                Int16 => self.dictionary::<Int16Type>(array, value)?,
                Int32 => self.dictionary::<Int32Type>(array, value)?,
                Int64 => self.dictionary::<Int64Type>(array, value)?,
                UInt8 => self.dictionary::<UInt8Type>(array, value)?,
                UInt16 => self.dictionary::<UInt16Type>(array, value)?,
                UInt32 => self.dictionary::<UInt32Type>(array, value)?,
                UInt64 => self.dictionary::<UInt64Type>(array, value)?,
                _ => return Err(mismatch()),
            },
            RunEndEncoded(run_ends, values) => match run_ends.data_type() {
                Int16 => self.run_ends::<Int16Type>(array, values.data_type())?,
                Int32 => self.run_ends::<Int32Type>(array, values.data_type())?,
                Int64 => self.run_ends::<Int64Type>(array, values.data_type())?,
                _ => return Err(mismatch()),
            },
            _ => return Err(mismatch()),
        })
    }

    fn dictionary<K: arrow_array::types::ArrowDictionaryKeyType>(&mut self, array: &ArrayRef, value: &DataType) -> Result<ArrayRef, String> {
        let dictionary = array.as_dictionary_opt::<K>().ok_or_else(|| malformed("a dictionary column of another key type"))?;
        let key = Arc::as_ptr(dictionary.values()) as *const u8 as usize;
        let values = match self.values.get(&key) {
            Some((_, restored)) => restored.clone(),
            None => {
                let restored = self.array(dictionary.values(), value)?;
                // Arrow's array is kept too, so that its address is not reused.
                self.values.insert(key, (dictionary.values().clone(), restored.clone()));
                restored
            }
        };
        Ok(Arc::new(arrow_array::DictionaryArray::<K>::try_new(dictionary.keys().clone(), values).map_err(malformed)?))
    }

    fn run_ends<R: arrow_array::types::RunEndIndexType>(&mut self, array: &ArrayRef, value: &DataType) -> Result<ArrayRef, String> {
        let run = array.as_run_opt::<R>().ok_or_else(|| malformed("a run-end encoded column of another run-end type"))?;
        let values = self.array(run.values(), value)?;
        let run_ends = arrow_array::PrimitiveArray::<R>::new(run.run_ends().inner().clone(), None);
        let restored = arrow_array::RunArray::<R>::try_new(&run_ends, values.as_ref()).map_err(malformed)?;
        if restored.len() < run.len() || run.offset() != 0 {
            return Err(malformed("a run-end encoded column whose length is not its last run's end"));
        }
        Ok(Arc::new(restored.slice(0, run.len())))
    }

    /// Every view's bytes are valid UTF-8: a buffer valid as a whole is
    /// checked once, a view into it by whether both its ends fall on a
    /// character's boundary; a view into another is checked itself, within
    /// the budget.
    fn check_utf8(&mut self, array: &arrow_array::BinaryViewArray) -> Result<(), String> {
        let buffers = array.data_buffers();
        let whole: Vec<bool> = buffers.iter().map(|b| std::str::from_utf8(b).is_ok()).collect();
        let boundary = |data: &[u8], at: usize| at == data.len() || data.get(at).is_some_and(|b| (*b as i8) >= -0x40);
        for (i, view) in array.views().iter().enumerate() {
            let len = *view as u32 as usize;
            let valid = if len <= 12 {
                let bytes = view.to_le_bytes();
                std::str::from_utf8(&bytes[4..4 + len]).is_ok()
            } else {
                let index = (*view >> 64) as u32 as usize;
                let offset = (*view >> 96) as u32 as usize;
                let data = buffers.get(index).map(|b| b.as_slice()).unwrap_or_default();
                let end = offset.saturating_add(len);
                if whole.get(index).copied().unwrap_or(false) {
                    end <= data.len() && boundary(data, offset) && boundary(data, end)
                } else {
                    if len > self.budget {
                        return Err(format!(
                            "a Utf8View column's views refer, again and again, to bytes that are not valid UTF-8 as a whole: \
                             checking each view's bytes in turn would take over {} bytes more",
                            self.budget
                        ));
                    }
                    self.budget -= len;
                    data.get(offset..end).is_some_and(|b| std::str::from_utf8(b).is_ok())
                }
            };
            if !valid {
                return Err(malformed(format!("view {i} of a Utf8View column is not valid UTF-8")));
            }
        }
        Ok(())
    }
}

/// A caught panic's message, cut short: a guest chose the bytes it names.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let message = super::panic_message(panic);
    message[..message.floor_char_boundary(500)].to_owned()
}

/// Whether the Parquet writer can store every field of `schema`; the error
/// names the first field that it cannot, and its type.
///
/// An allow-list over [`DataType`], nested types checked recursively, held
/// to what the writer does by a unit test that writes every type. Refused,
/// as the writer fails on them: a union (the writer panics), an empty
/// struct, an interval of months, days and nanoseconds (not implemented),
/// a non-nullable field of type `Null` (every row is null). Refused though
/// the writer takes it: a schema of no fields (Parquet keeps no rows without
/// a column, so an output of rows and no columns would read back empty
/// while its record counted the rows), and a run-end encoded array under a
/// list view or in a dictionary's values, whose materialised size
/// [`logical_bytes`] could not measure in linear time.
pub fn check_writable(schema: &Schema) -> Result<(), String> {
    if schema.fields().is_empty() {
        return Err("the output's schema has no fields: Parquet stores no rows without a column, so an output needs at least one".into());
    }
    for field in schema.fields() {
        writable(field, field.name(), Context::default())?;
    }
    Ok(())
}

/// Where a field lies, for the types refused only somewhere.
#[derive(Clone, Copy, Default)]
struct Context {
    /// Under a list view.
    under_view: bool,
    /// In a dictionary's values.
    in_dictionary: bool,
}

fn refuse(path: &str, data_type: &DataType, why: &str) -> String {
    format!("field `{path}` has type {data_type}, which cannot be written to Parquet{why}")
}

fn writable(field: &Field, path: &str, context: Context) -> Result<(), String> {
    let data_type = field.data_type();
    let null = match data_type {
        DataType::Dictionary(_, value) => value.as_ref() == &DataType::Null,
        other => other == &DataType::Null,
    };
    if null && !field.is_nullable() {
        return Err(refuse(path, data_type, " as a non-nullable field (every row of it is null)"));
    }
    writable_type(data_type, path, context)
}

fn writable_type(data_type: &DataType, path: &str, context: Context) -> Result<(), String> {
    use DataType::*;
    let child = |f: &Field, context: Context| writable(f, &format!("{path}.{}", f.name()), context);
    match data_type {
        Null | Boolean | Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 | Float16 | Float32 | Float64 => Ok(()),
        Timestamp(..) | Date32 | Date64 | Time32(_) | Time64(_) | Duration(_) => Ok(()),
        Interval(arrow_schema::IntervalUnit::MonthDayNano) => Err(refuse(path, data_type, "")),
        Interval(_) => Ok(()),
        Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..) => Ok(()),
        Binary | LargeBinary | FixedSizeBinary(_) | BinaryView | Utf8 | LargeUtf8 | Utf8View => Ok(()),
        List(f) | LargeList(f) | FixedSizeList(f, _) => child(f, context),
        ListView(f) | LargeListView(f) => child(f, Context { under_view: true, ..context }),
        Struct(fields) if fields.is_empty() => Err(refuse(path, data_type, " (a struct needs a field)")),
        Struct(fields) => fields.iter().try_for_each(|f| child(f, context)),
        Map(entries, _) => child(entries, context),
        Dictionary(key, value) => {
            if !key.is_dictionary_key_type() {
                return Err(refuse(path, data_type, " (a dictionary's keys must be integers)"));
            }
            writable_type(value, path, Context { in_dictionary: true, ..context })
        }
        Union(..) => Err(refuse(path, data_type, "")),
        RunEndEncoded(..) if context.under_view || context.in_dictionary => Err(refuse(
            path,
            data_type,
            " here: a run-end encoded array under a list view or in a dictionary's values is not accepted",
        )),
        RunEndEncoded(_, values) => child(values, context),
    }
}

/// Bytes of `batch`'s data once materialised: what the Parquet writer will
/// hold and write.
///
/// Sliced arrays count their slice only; a dictionary counts its key and
/// the value it refers to for every row; a view array 16 bytes and the
/// viewed bytes for every view; a run-end encoded array its run's value for
/// every row; offsets (one per row), fixed-width values and nested
/// children what the rows take; a validity bitmap, a boolean and a null
/// array one bit a row. Saturating. The time is linear in the batch's
/// rows and values; what is allocated (prefix sums, where a list view or
/// a dictionary looks values up at random) is a few bytes per row present
/// in the batch, never proportional to the result.
pub fn logical_bytes(batch: &RecordBatch) -> u64 {
    let bits = batch.columns().iter().fold(0u64, |sum, column| {
        let sizer = Sizer::new(column.as_ref(), false);
        sum.saturating_add(sizer.bits(0, column.len()))
    });
    bits.div_ceil(8)
}

/// Offsets of a list or a byte array, as logical (sliced) positions.
#[derive(Clone, Copy)]
enum Offsets<'a> {
    Small(&'a [i32]),
    Large(&'a [i64]),
}

impl Offsets<'_> {
    fn get(&self, i: usize) -> u64 {
        let value = match self {
            Offsets::Small(o) => o.get(i).map_or(0, |v| i64::from(*v)),
            Offsets::Large(o) => o.get(i).copied().unwrap_or(0),
        };
        u64::try_from(value).unwrap_or(0)
    }

    fn width_bits(&self) -> u64 {
        match self {
            Offsets::Small(_) => 32,
            Offsets::Large(_) => 64,
        }
    }
}

/// A dictionary's keys, logical (sliced).
#[derive(Clone, Copy)]
enum Keys<'a> {
    I8(&'a [i8]),
    I16(&'a [i16]),
    I32(&'a [i32]),
    I64(&'a [i64]),
    U8(&'a [u8]),
    U16(&'a [u16]),
    U32(&'a [u32]),
    U64(&'a [u64]),
}

impl Keys<'_> {
    fn get(&self, i: usize) -> Option<usize> {
        match self {
            Keys::I8(k) => k.get(i).and_then(|v| usize::try_from(*v).ok()),
            Keys::I16(k) => k.get(i).and_then(|v| usize::try_from(*v).ok()),
            Keys::I32(k) => k.get(i).and_then(|v| usize::try_from(*v).ok()),
            Keys::I64(k) => k.get(i).and_then(|v| usize::try_from(*v).ok()),
            Keys::U8(k) => k.get(i).map(|v| usize::from(*v)),
            Keys::U16(k) => k.get(i).map(|v| usize::from(*v)),
            Keys::U32(k) => k.get(i).and_then(|v| usize::try_from(*v).ok()),
            Keys::U64(k) => k.get(i).and_then(|v| usize::try_from(*v).ok()),
        }
    }

    /// Bits of one key, and how many values its type can refer to.
    fn shape(&self) -> (u64, usize) {
        match self {
            Keys::I8(_) => (8, 1 << 7),
            Keys::U8(_) => (8, 1 << 8),
            Keys::I16(_) => (16, 1 << 15),
            Keys::U16(_) => (16, 1 << 16),
            Keys::I32(_) => (32, 1 << 31),
            Keys::U32(_) => (32, usize::MAX),
            Keys::I64(_) | Keys::U64(_) => (64, usize::MAX),
        }
    }
}

/// A run-end encoded array's run ends (absolute: the array's offset is
/// not applied).
#[derive(Clone, Copy)]
enum RunEnds<'a> {
    I16(&'a [i16]),
    I32(&'a [i32]),
    I64(&'a [i64]),
}

impl RunEnds<'_> {
    fn len(&self) -> usize {
        match self {
            RunEnds::I16(e) => e.len(),
            RunEnds::I32(e) => e.len(),
            RunEnds::I64(e) => e.len(),
        }
    }

    fn get(&self, p: usize) -> u64 {
        let value = match self {
            RunEnds::I16(e) => e.get(p).map_or(0, |v| i64::from(*v)),
            RunEnds::I32(e) => e.get(p).map_or(0, |v| i64::from(*v)),
            RunEnds::I64(e) => e.get(p).copied().unwrap_or(0),
        };
        u64::try_from(value).unwrap_or(0)
    }

    /// The first run ending after absolute position `at`.
    fn run_of(&self, at: u64) -> usize {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = low + (high - low) / 2;
            if self.get(mid) <= at { low = mid + 1 } else { high = mid }
        }
        low
    }
}

/// How a dictionary's values are sized.
enum ValueBits {
    /// Every value takes this many bits.
    Uniform(u64),
    /// The bits of each value (those the keys' type can refer to).
    Table(Vec<u64>),
}

/// Answers "how many bits do rows `start..start + len` take once
/// materialised" for one array, in time independent of the rows' sizes
/// where it is asked at random (see [`Sizer::new`]).
struct Sizer<'a> {
    /// A validity bitmap: one bit a row.
    validity: bool,
    kind: Kind<'a>,
}

enum Kind<'a> {
    /// Every row takes this many bits.
    Uniform(u64),
    /// Offsets and the bytes between them.
    Bytes(Offsets<'a>),
    /// Views and the bytes each views.
    Views(&'a [u128]),
    /// Offsets and the child's rows between them.
    List(Offsets<'a>, Box<Sizer<'a>>),
    /// So many of the child's rows a row.
    FixedList(usize, Box<Sizer<'a>>),
    /// An offset and a size a row, and the child's rows each covers.
    ListView(Offsets<'a>, Offsets<'a>, Box<Sizer<'a>>),
    /// Bits a row of the uniform children, and the other children.
    Struct(u64, Vec<Sizer<'a>>),
    /// A key a row, and the value it refers to.
    Dictionary(Keys<'a>, Option<&'a arrow_buffer::NullBuffer>, ValueBits),
    /// The runs (logical offset, run ends) and their values.
    RunEnds(usize, RunEnds<'a>, Box<Sizer<'a>>),
    /// Prefix sums of the bits of every row (validity included).
    Prefix(Vec<u64>),
}

impl<'a> Sizer<'a> {
    /// A sizer for `array`; `random` if it will be asked about rows at
    /// random (overlapping ranges, as a list view's child), else the ranges
    /// asked are disjoint (and the work is linear in the rows asked about).
    fn new(array: &'a dyn Array, random: bool) -> Sizer<'a> {
        let sizer = Self::direct(array, random);
        if !random || sizer.answers_at_random() {
            return sizer;
        }
        // Rows of a non-uniform kind are present in the batch (offsets,
        // views, keys: bytes each), so the prefix is a few bytes a row.
        let mut prefix = Vec::with_capacity(array.len() + 1);
        let mut sum = 0u64;
        prefix.push(0);
        for i in 0..array.len() {
            sum = sum.saturating_add(sizer.bits(i, 1));
            prefix.push(sum);
        }
        Sizer { validity: false, kind: Kind::Prefix(prefix) }
    }

    /// Whether [`Sizer::bits`] takes time independent of the range.
    fn answers_at_random(&self) -> bool {
        match &self.kind {
            Kind::Uniform(_) | Kind::Bytes(_) | Kind::Prefix(_) => true,
            Kind::List(_, child) | Kind::FixedList(_, child) => child.answers_at_random(),
            Kind::Struct(_, others) => others.len() <= 1 && others.iter().all(Sizer::answers_at_random),
            // Run ends are looked up by binary search; a run-end encoded
            // array under a list view is refused by `check_writable`.
            Kind::RunEnds(..) => true,
            Kind::Views(_) | Kind::ListView(..) | Kind::Dictionary(..) => false,
        }
    }

    /// A sizer for `array` without prefix sums of its own; its children
    /// made for the same access (`random`), except those whose access is
    /// known (a list view's child at random, a dictionary's values in order).
    fn direct(array: &'a dyn Array, random: bool) -> Sizer<'a> {
        use DataType::*;
        let validity = array.nulls().is_some();
        let kind = match array.data_type() {
            Null | Boolean => Kind::Uniform(1),
            Utf8 => Kind::Bytes(Offsets::Small(array.as_string::<i32>().value_offsets())),
            LargeUtf8 => Kind::Bytes(Offsets::Large(array.as_string::<i64>().value_offsets())),
            Binary => Kind::Bytes(Offsets::Small(array.as_binary::<i32>().value_offsets())),
            LargeBinary => Kind::Bytes(Offsets::Large(array.as_binary::<i64>().value_offsets())),
            Utf8View => Kind::Views(array.as_string_view().views()),
            BinaryView => Kind::Views(array.as_binary_view().views()),
            FixedSizeBinary(width) => Kind::Uniform(u64::try_from(*width).unwrap_or(0).saturating_mul(8)),
            List(_) => {
                let list = array.as_list::<i32>();
                Kind::List(Offsets::Small(list.value_offsets()), Box::new(Sizer::new(list.values().as_ref(), random)))
            }
            LargeList(_) => {
                let list = array.as_list::<i64>();
                Kind::List(Offsets::Large(list.value_offsets()), Box::new(Sizer::new(list.values().as_ref(), random)))
            }
            Map(..) => {
                let map = array.as_map();
                Kind::List(Offsets::Small(map.value_offsets()), Box::new(Sizer::new(map.entries(), random)))
            }
            FixedSizeList(_, size) => {
                let list = array.as_fixed_size_list();
                let size = usize::try_from(*size).unwrap_or(0);
                let child = Sizer::new(list.values().as_ref(), random);
                match child.uniform() {
                    Some(bits) => Kind::Uniform(bits.saturating_mul(size as u64)),
                    None => Kind::FixedList(size, Box::new(child)),
                }
            }
            ListView(_) => {
                let list = array.as_list_view::<i32>();
                let child = Box::new(Sizer::new(list.values().as_ref(), true));
                Kind::ListView(Offsets::Small(list.value_offsets()), Offsets::Small(list.value_sizes()), child)
            }
            LargeListView(_) => {
                let list = array.as_list_view::<i64>();
                let child = Box::new(Sizer::new(list.values().as_ref(), true));
                Kind::ListView(Offsets::Large(list.value_offsets()), Offsets::Large(list.value_sizes()), child)
            }
            Struct(_) => {
                let mut uniform = 0u64;
                let mut others = Vec::new();
                for column in array.as_struct().columns() {
                    let child = Sizer::new(column.as_ref(), random);
                    match child.uniform() {
                        Some(bits) => uniform = uniform.saturating_add(bits),
                        None => others.push(child),
                    }
                }
                Kind::Struct(uniform, others)
            }
            Dictionary(key, _) => match key.as_ref() {
                Int8 => dictionary::<Int8Type>(array, Keys::I8),
                Int16 => dictionary::<Int16Type>(array, Keys::I16),
                Int32 => dictionary::<Int32Type>(array, Keys::I32),
                Int64 => dictionary::<Int64Type>(array, Keys::I64),
                UInt8 => dictionary::<UInt8Type>(array, Keys::U8),
                UInt16 => dictionary::<UInt16Type>(array, Keys::U16),
                UInt32 => dictionary::<UInt32Type>(array, Keys::U32),
                UInt64 => dictionary::<UInt64Type>(array, Keys::U64),
                _ => Kind::Uniform(0),
            },
            RunEndEncoded(run_ends, _) => match run_ends.data_type() {
                Int16 => run_ends_of::<Int16Type>(array, RunEnds::I16),
                Int32 => run_ends_of::<Int32Type>(array, RunEnds::I32),
                Int64 => run_ends_of::<Int64Type>(array, RunEnds::I64),
                _ => Kind::Uniform(0),
            },
            Union(_, mode) => {
                // Not writable: its type ids (and offsets), and every
                // child's rows, spread over its rows.
                let union = array.as_union();
                let children = union.type_ids().iter().collect::<std::collections::BTreeSet<_>>();
                let child_bits = children.into_iter().fold(0u64, |sum, id| {
                    let child = union.child(*id);
                    sum.saturating_add(Sizer::new(child.as_ref(), false).bits(0, child.len()))
                });
                let header = if *mode == UnionMode::Dense { 40 } else { 8 };
                Kind::Uniform(header + child_bits / array.len().max(1) as u64)
            }
            other => Kind::Uniform(other.primitive_width().map_or(0, |w| w as u64 * 8)),
        };
        Sizer { validity, kind }
    }

    /// Bits a row when every row takes the same.
    fn uniform(&self) -> Option<u64> {
        match self.kind {
            Kind::Uniform(bits) => Some(bits.saturating_add(u64::from(self.validity))),
            Kind::Struct(bits, ref others) if others.is_empty() => Some(bits.saturating_add(u64::from(self.validity))),
            _ => None,
        }
    }

    /// Bits of rows `start..start + len`.
    fn bits(&self, start: usize, len: usize) -> u64 {
        let rows = len as u64;
        let validity = if self.validity { rows } else { 0 };
        let data = match &self.kind {
            Kind::Uniform(bits) => rows.saturating_mul(*bits),
            Kind::Bytes(offsets) => {
                let bytes = offsets.get(start + len).saturating_sub(offsets.get(start));
                rows.saturating_mul(offsets.width_bits()).saturating_add(bytes.saturating_mul(8))
            }
            Kind::Views(views) => {
                let views = views.get(start..start.saturating_add(len)).unwrap_or_default();
                let bytes = views.iter().fold(0u64, |sum, view| sum.saturating_add(u64::from(*view as u32)));
                rows.saturating_mul(128).saturating_add(bytes.saturating_mul(8))
            }
            Kind::List(offsets, child) => {
                let (first, last) = (offsets.get(start), offsets.get(start + len));
                let values = child.bits(first as usize, last.saturating_sub(first) as usize);
                rows.saturating_mul(offsets.width_bits()).saturating_add(values)
            }
            Kind::FixedList(size, child) => child.bits(start.saturating_mul(*size), len.saturating_mul(*size)),
            Kind::ListView(offsets, sizes, child) => (start..start.saturating_add(len)).fold(0u64, |sum, i| {
                let values = child.bits(offsets.get(i) as usize, sizes.get(i) as usize);
                sum.saturating_add(2 * offsets.width_bits()).saturating_add(values)
            }),
            Kind::Struct(uniform, others) => others.iter().fold(rows.saturating_mul(*uniform), |sum, c| sum.saturating_add(c.bits(start, len))),
            Kind::Dictionary(keys, nulls, values) => {
                let (key_bits, _) = keys.shape();
                (start..start.saturating_add(len)).fold(rows.saturating_mul(key_bits), |sum, i| {
                    if nulls.is_some_and(|n| n.is_null(i)) {
                        return sum;
                    }
                    let value = match (values, keys.get(i)) {
                        (ValueBits::Uniform(bits), _) => *bits,
                        (ValueBits::Table(table), Some(key)) => table.get(key).copied().unwrap_or(0),
                        (ValueBits::Table(_), None) => 0,
                    };
                    sum.saturating_add(value)
                })
            }
            Kind::RunEnds(offset, ends, values) => {
                if len == 0 {
                    return 0;
                }
                let from = (*offset + start) as u64;
                let to = from.saturating_add(rows);
                let mut sum = 0u64;
                let mut p = ends.run_of(from);
                let mut run_start = if p == 0 { 0 } else { ends.get(p - 1) };
                while p < ends.len() && run_start < to {
                    let run_end = ends.get(p);
                    let overlap = run_end.min(to).saturating_sub(run_start.max(from));
                    sum = sum.saturating_add(overlap.saturating_mul(values.bits(p, 1)));
                    run_start = run_end;
                    p += 1;
                }
                sum
            }
            Kind::Prefix(prefix) => {
                let at = |i: usize| prefix.get(i).or(prefix.last()).copied().unwrap_or(0);
                at(start.saturating_add(len)).saturating_sub(at(start))
            }
        };
        validity.saturating_add(data)
    }
}

fn dictionary<'a, K>(array: &'a dyn Array, keys: fn(&'a [K::Native]) -> Keys<'a>) -> Kind<'a>
where
    K: arrow_array::types::ArrowDictionaryKeyType,
{
    let dictionary = array.as_dictionary::<K>();
    let keys = keys(dictionary.keys().values());
    let values = dictionary.values().as_ref();
    let sizer = Sizer::new(values, false);
    let bits = match sizer.uniform() {
        Some(bits) => ValueBits::Uniform(bits),
        None => {
            // Each value once, in order: linear in the values.
            let (_, referable) = keys.shape();
            ValueBits::Table((0..values.len().min(referable)).map(|j| sizer.bits(j, 1)).collect())
        }
    };
    Kind::Dictionary(keys, dictionary.keys().nulls(), bits)
}

fn run_ends_of<'a, R>(array: &'a dyn Array, ends: fn(&'a [R::Native]) -> RunEnds<'a>) -> Kind<'a>
where
    R: arrow_array::types::RunEndIndexType,
{
    let run = array.as_run::<R>();
    let values = Box::new(Sizer::new(run.values().as_ref(), false));
    Kind::RunEnds(run.run_ends().offset(), ends(run.run_ends().values()), values)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::ops::Range;
    use std::sync::Arc;

    use arrow_array::builder::{MapBuilder, StringBuilder, Int32Builder, StringDictionaryBuilder};
    use arrow_array::types::{Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type};
    use arrow_array::*;
    use arrow_buffer::{OffsetBuffer, ScalarBuffer};
    use arrow_ipc::writer::{DictionaryHandling, IpcWriteOptions, StreamWriter};
    use arrow_schema::{DataType, Field, Fields, Schema, UnionFields, UnionMode};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::{EnabledStatistics, WriterProperties};

    use super::*;

    /// One complete stream of `batches`, written with `options`.
    pub(crate) fn stream_with(schema: &Schema, batches: &[RecordBatch], options: IpcWriteOptions) -> Vec<u8> {
        let mut writer = StreamWriter::try_new_with_options(Vec::new(), schema, options).unwrap();
        for batch in batches {
            writer.write(batch).unwrap();
        }
        writer.finish().unwrap();
        writer.into_inner().unwrap()
    }

    /// One complete stream of `batches` (at least one).
    pub(crate) fn stream(batches: &[RecordBatch]) -> Vec<u8> {
        stream_with(&batches[0].schema(), batches, IpcWriteOptions::default())
    }

    /// Where one message of a well-formed stream lies.
    #[derive(Clone, Debug)]
    pub(crate) struct Message {
        /// Prefix, flatbuffer and body.
        pub(crate) whole: Range<usize>,
        /// The flatbuffer.
        pub(crate) metadata: Range<usize>,
        /// The body.
        pub(crate) body: Range<usize>,
    }

    /// The messages of a well-formed stream, without its end marker.
    pub(crate) fn messages(stream: &[u8]) -> Vec<Message> {
        let mut at = 0;
        let mut out = Vec::new();
        loop {
            assert_eq!(stream[at..at + 4], CONTINUATION);
            let length = u32::from_le_bytes(stream[at + 4..at + 8].try_into().unwrap()) as usize;
            if length == 0 {
                return out;
            }
            let metadata = at + 8..at + 8 + length;
            let body_length = arrow_ipc::root_as_message(&stream[metadata.clone()]).unwrap().bodyLength() as usize;
            let body = metadata.end..metadata.end + body_length;
            out.push(Message { whole: at..body.end, metadata, body: body.clone() });
            at = body.end;
        }
    }

    /// The position in `stream` of field `slot` of a flatbuffer table (one
    /// the writer stored: not a default).
    macro_rules! slot {
        ($stream:expr, $metadata:expr, $table:expr, $slot:expr) => {{
            let offset = $table._tab.vtable().get($slot) as usize;
            assert_ne!(offset, 0, "the field is stored");
            $metadata.start + $table._tab.loc() + offset
        }};
    }

    /// Position in `stream` of the `index`th buffer (offset, then length) of
    /// message `m`'s record batch, or of the `index`th node (length, then
    /// null count) when `node`.
    fn struct_at(stream: &[u8], m: &Message, index: usize, node: bool) -> usize {
        let bytes = &stream[m.metadata.clone()];
        let message = arrow_ipc::root_as_message(bytes).unwrap();
        let batch = message
            .header_as_record_batch()
            .or_else(|| message.header_as_dictionary_batch().and_then(|d| d.data()))
            .unwrap();
        let pointer = if node {
            batch.nodes().unwrap().get(index) as *const arrow_ipc::FieldNode as usize
        } else {
            batch.buffers().unwrap().get(index) as *const arrow_ipc::Buffer as usize
        };
        m.metadata.start + pointer - bytes.as_ptr() as usize
    }

    fn put_i64(stream: &mut [u8], at: usize, value: i64) {
        stream[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }

    fn ids(n: i64) -> RecordBatch {
        RecordBatch::try_from_iter([("id", Arc::new(Int64Array::from_iter_values(0..n)) as ArrayRef)]).unwrap()
    }

    fn mixed() -> RecordBatch {
        RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(vec![Some(1), None, Some(3), Some(4)])) as ArrayRef),
            ("name", Arc::new(StringArray::from(vec![Some("a"), Some("bb"), None, Some("dddd")])) as ArrayRef),
            ("tag", Arc::new(DictionaryArray::<Int32Type>::from_iter(["x", "y", "x", "z"])) as ArrayRef),
        ])
        .unwrap()
    }

    fn refused(bytes: Vec<u8>) -> String {
        refused_with(bytes, &GuestLimits::default())
    }

    fn refused_with(bytes: Vec<u8>, limits: &GuestLimits) -> String {
        match decode_emit(bytes, limits) {
            Ok(emitted) => panic!("accepted: {:?}", emitted.batches),
            Err(message) => message,
        }
    }

    #[track_caller]
    fn assert_malformed(message: &str, needle: &str) {
        assert!(message.starts_with(MALFORMED), "{message}");
        assert!(message.contains(needle), "`{needle}` in {message}");
        assert!(!message.contains("panicked"), "{message}");
    }

    #[test]
    fn a_real_stream_round_trips() {
        let a = mixed();
        let b = a.slice(1, 2);
        let bytes = stream(&[a.clone(), b.clone()]);
        let n = bytes.len() as u64;
        let emitted = decode_emit(bytes, &GuestLimits::default()).unwrap();
        assert_eq!(emitted.batches, [a.clone(), b.clone()]);
        assert_eq!(emitted.ipc_bytes, n);
        assert_eq!(emitted.batches.iter().map(logical_bytes).sum::<u64>(), logical_bytes(&a) + logical_bytes(&b));
        // Schema metadata (within the limit) comes through.
        let mut metadata = std::collections::HashMap::new();
        metadata.insert("origin".to_owned(), "test".to_owned());
        let with = RecordBatch::try_new(Arc::new(a.schema().as_ref().clone().with_metadata(metadata)), a.columns().to_vec()).unwrap();
        assert_eq!(decode_emit(stream(std::slice::from_ref(&with)), &GuestLimits::default()).unwrap().batches, [with]);
        // A schema alone is a stream too.
        let schema_only = stream_with(&a.schema(), &[], IpcWriteOptions::default());
        assert!(decode_emit(schema_only, &GuestLimits::default()).unwrap().batches.is_empty());
    }

    #[test]
    fn lying_buffer_lengths_and_offsets_are_refused() {
        let bytes = stream(&[ids(1234)]);
        let batch = messages(&bytes)[1].clone();
        let body = batch.body.len() as i64;
        let past = format!("lies outside the message's body of {body} bytes");
        for (what, value, needle) in [
            ("length", 1i64 << 62, "message 2: buffer 1 (at offset 0, 4611686018427387904 bytes) lies outside the message's body"),
            ("length", -1, "buffer 1 (at offset 0, -1 bytes)"),
            ("length", i64::MAX, "lies outside"),
            ("offset", 1 << 62, "buffer 1 (at offset 4611686018427387904"),
            ("offset", -8, "at offset -8"),
            // 1234 values of 8 bytes ending 8 bytes past the (padded) body.
            ("offset", body - 9872 + 8, past.as_str()),
        ] {
            let mut lie = bytes.clone();
            let at = struct_at(&lie, &batch, 1, false) + if what == "length" { 8 } else { 0 };
            put_i64(&mut lie, at, value);
            assert_malformed(&refused(lie), needle);
        }
    }

    #[test]
    fn overlapping_or_misaligned_buffers_are_refused() {
        // A misaligned buffer would be copied whole by arrow, for every
        // column that names it.
        let bytes = stream(&[ids(1234)]);
        let batch = messages(&bytes)[1].clone();
        let mut lie = bytes.clone();
        let at = struct_at(&lie, &batch, 1, false);
        put_i64(&mut lie, at, 4);
        assert_malformed(&refused(lie), "buffer 1 is at offset 4, not a multiple of 8");
        // Strings: validity, offsets, then values; values laid over the offsets.
        let names = Arc::new(StringArray::from(vec!["alpha", "beta", "gamma"])) as ArrayRef;
        let bytes = stream(&[RecordBatch::try_from_iter([("s", names)]).unwrap()]);
        let batch = messages(&bytes)[1].clone();
        let mut lie = bytes.clone();
        let at = struct_at(&lie, &batch, 2, false);
        put_i64(&mut lie, at, 0);
        assert_malformed(&refused(lie), "buffer 2 (at offset 0) overlaps the buffer before it");
    }

    #[test]
    fn lying_nodes_and_row_counts_are_refused() {
        let bytes = stream(&[mixed()]);
        let batch = messages(&bytes)[2].clone(); // schema, dictionary, batch
        for (field, value, needle) in [
            (0, -5, "array 0 declares a length of -5"),
            (0, 1 << 40, "array 0 declares a length of 1099511627776"),
            (1, 5, "array 0 of length 4 declares 5 nulls"),
            (1, -1, "array 0 of length 4 declares -1 nulls"),
        ] {
            let mut lie = bytes.clone();
            let at = struct_at(&lie, &batch, 0, true) + 8 * field;
            put_i64(&mut lie, at, value);
            assert_malformed(&refused(lie), needle);
        }
        for rows in [-1i64, 1 << 62] {
            let mut lie = bytes.clone();
            let at = {
                let message = arrow_ipc::root_as_message(&lie[batch.metadata.clone()]).unwrap();
                let header = message.header_as_record_batch().unwrap();
                slot!(lie, batch.metadata, header, arrow_ipc::RecordBatch::VT_LENGTH)
            };
            put_i64(&mut lie, at, rows);
            assert_malformed(&refused(lie), &format!("declares {rows} rows"));
        }
    }

    #[test]
    fn lying_message_and_body_lengths_are_refused() {
        let bytes = stream(&[ids(1234)]);
        let batch = messages(&bytes)[1].clone();
        let body_slot = |lie: &[u8]| {
            let message = arrow_ipc::root_as_message(&lie[batch.metadata.clone()]).unwrap();
            slot!(lie, batch.metadata, message, arrow_ipc::Message::VT_BODYLENGTH)
        };
        // A body past the end of the stream.
        let mut lie = bytes.clone();
        let at = body_slot(&lie);
        put_i64(&mut lie, at, 1 << 62);
        let message = refused(lie);
        assert_malformed(&message, INCOMPLETE);
        assert!(message.contains("declares a body of 4611686018427387904 bytes, past the end of the stream"), "{message}");
        let mut lie = bytes.clone();
        put_i64(&mut lie, at, -1);
        assert_malformed(&refused(lie), "message 2 declares a body length of -1");
        // Metadata past the end, or negative.
        let mut lie = bytes.clone();
        lie[batch.whole.start + 4..batch.whole.start + 8].copy_from_slice(&i32::MAX.to_le_bytes());
        let message = refused(lie);
        assert_malformed(&message, INCOMPLETE);
        assert!(message.contains("declares 2147483647 bytes of metadata, past the end"), "{message}");
        let mut lie = bytes.clone();
        lie[batch.whole.start + 4..batch.whole.start + 8].copy_from_slice(&(-8i32).to_le_bytes());
        assert_malformed(&refused(lie), "declares a metadata length of -8");
        // A flatbuffer of garbage.
        let mut lie = bytes.clone();
        lie[batch.metadata.clone()].fill(0xAB);
        assert_malformed(&refused(lie), "the metadata of message 2 at byte");
        let mut lie = bytes.clone();
        lie[messages(&bytes)[0].metadata.clone()].fill(0x7F);
        assert_malformed(&refused(lie), "is not a valid flatbuffer");
    }

    #[test]
    fn streams_cut_short_or_with_bytes_after_the_end_are_refused() {
        let bytes = stream(&[ids(1234)]);
        let batch = messages(&bytes)[1].clone();
        for cut in [0, 3, 7, batch.whole.start + 4, batch.metadata.end - 1, batch.body.start + batch.body.len() / 2, bytes.len() - 8, bytes.len() - 1] {
            let message = refused(bytes[..cut].to_vec());
            assert_malformed(&message, INCOMPLETE);
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_malformed(&refused(trailing), "1 bytes follow the end-of-stream marker");
        let mut twice = bytes.clone();
        twice.extend_from_slice(&bytes);
        assert_malformed(&refused(twice), "follow the end-of-stream marker");
        assert_malformed(&refused(b"definitely not arrow ipc".to_vec()), "byte 0 does not start a message");
    }

    #[test]
    fn a_second_schema_or_a_batch_before_the_schema_is_refused() {
        let bytes = stream(&[ids(10)]);
        let [schema, batch] = <[Message; 2]>::try_from(messages(&bytes)).unwrap();
        let mut two = bytes[schema.whole.clone()].to_vec();
        two.extend_from_slice(&bytes);
        assert_malformed(&refused(two), "message 2 is a second schema");
        let headless = bytes[batch.whole.start..].to_vec();
        assert_malformed(&refused(headless), "message 1 is a record batch before the schema");
        let dictionary = stream(&[mixed()]);
        let headless = dictionary[messages(&dictionary)[1].whole.start..].to_vec();
        assert_malformed(&refused(headless), "message 1 is a dictionary batch before the schema");
    }

    #[test]
    fn delta_dictionaries_are_refused() {
        let schema = Schema::new(vec![Field::new("name", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), false)]);
        let mut builder = StringDictionaryBuilder::<Int32Type>::new();
        builder.append_value("a");
        let first = builder.finish_cloned();
        builder.append_value("b");
        let second = builder.finish();
        let batches: Vec<RecordBatch> = [first, second]
            .into_iter()
            .map(|a| RecordBatch::try_new(Arc::new(schema.clone()), vec![Arc::new(a)]).unwrap())
            .collect();
        let options = IpcWriteOptions::default().with_dictionary_handling(DictionaryHandling::Delta);
        let message = refused(stream_with(&schema, &batches, options));
        assert!(message.contains("delta dictionaries are not accepted"), "{message}");
        assert!(message.starts_with("message 4 is a delta dictionary batch (dictionary id 0)"), "{message}");
        // Replacing a dictionary whole is fine.
        let options = IpcWriteOptions::default().with_dictionary_handling(DictionaryHandling::Resend);
        assert_eq!(decode_emit(stream_with(&schema, &batches, options), &GuestLimits::default()).unwrap().batches, batches);
    }

    #[test]
    fn a_flood_of_dictionary_batches_is_refused() {
        let bytes = stream(&[mixed()]);
        let [schema, dictionary, batch] = <[Message; 3]>::try_from(messages(&bytes)).unwrap();
        // Sent again before the batch: fine (a dictionary replaced).
        let mut again = bytes[..batch.whole.start].to_vec();
        again.extend_from_slice(&bytes[dictionary.whole.clone()]);
        again.extend_from_slice(&bytes[batch.whole.start..]);
        assert!(decode_emit(again.clone(), &GuestLimits::default()).is_ok());
        let mut flood = bytes[..batch.whole.start].to_vec();
        for _ in 0..3 {
            flood.extend_from_slice(&bytes[dictionary.whole.clone()]);
        }
        flood.extend_from_slice(&bytes[batch.whole.start..]);
        assert_eq!(
            refused(flood),
            "the stream has 4 dictionary batches for 1 dictionaries and 1 record batches; at most one a dictionary and batch is accepted"
        );
        let _ = schema;
    }

    #[test]
    fn compressed_bodies_are_refused() {
        // The writer only compresses non-empty buffers, and lz4 is not built
        // in: an empty batch is written with the compression header.
        let options = IpcWriteOptions::default().try_with_compression(Some(arrow_ipc::CompressionType::LZ4_FRAME)).unwrap();
        let empty = ids(0);
        let message = refused(stream_with(&empty.schema(), &[empty], options));
        assert_eq!(message, "message 2 has a body compressed with LZ4_FRAME: compressed streams are not accepted; emit it uncompressed");
    }

    #[test]
    fn other_metadata_versions_are_refused() {
        let mut bytes = stream(&[ids(3)]);
        let schema = messages(&bytes)[0].clone();
        let message = arrow_ipc::root_as_message(&bytes[schema.metadata.clone()]).unwrap();
        let at = slot!(bytes, schema.metadata, message, arrow_ipc::Message::VT_VERSION);
        bytes[at..at + 2].copy_from_slice(&2i16.to_le_bytes());
        assert_eq!(refused(bytes), "message 1 has metadata version V3; only V4 and V5 are accepted");
    }

    #[test]
    fn metadata_bombs_and_too_many_fields_or_messages_are_refused() {
        let mut metadata = std::collections::HashMap::new();
        metadata.insert("k".to_owned(), "v".repeat((5 << 20) - 1));
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]).with_metadata(metadata));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
        assert_eq!(refused(stream(&[batch])), "the schema carries 5242880 bytes of metadata, over the limit of 65536 bytes");
        // On a field, nested.
        let mut metadata = std::collections::HashMap::new();
        metadata.insert("key".to_owned(), "v".repeat(70_000));
        let inner = Field::new("inner", DataType::Int64, true).with_metadata(metadata);
        let outer = Field::new_struct("outer", vec![inner], true);
        let values = StructArray::new(
            Fields::from(vec![match outer.data_type() { DataType::Struct(f) => f[0].clone(), _ => unreachable!() }]),
            vec![Arc::new(Int64Array::from(vec![1])) as ArrayRef],
            None,
        );
        let batch = RecordBatch::try_new(Arc::new(Schema::new(vec![outer])), vec![Arc::new(values)]).unwrap();
        assert_eq!(refused(stream(&[batch])), "the schema carries 70003 bytes of metadata, over the limit of 65536 bytes");

        let limits = GuestLimits { max_fields: 10, max_messages: 3, ..GuestLimits::default() };
        let wide: Vec<(String, ArrayRef)> = (0..11).map(|i| (format!("c{i}"), Arc::new(Int8Array::from(vec![1])) as ArrayRef)).collect();
        let wide = RecordBatch::try_from_iter(wide).unwrap();
        assert_eq!(refused_with(stream(std::slice::from_ref(&wide)), &limits), "the schema has more than 10 fields (nested ones included), the limit");
        let ten = wide.project(&(0..10).collect::<Vec<_>>()).unwrap();
        assert!(decode_emit(stream(&[ten.clone(), ten.clone()]), &limits).is_ok());
        assert_eq!(refused_with(stream(&[ten.clone(), ten.clone(), ten]), &limits), "the stream has more than 3 messages, the limit");
        // Nested fields count.
        let nested = Field::new_struct("s", (0..10).map(|i| Field::new(format!("f{i}"), DataType::Int8, true)).collect::<Vec<_>>(), true);
        let schema = Schema::new(vec![nested]);
        assert_eq!(
            refused_with(stream_with(&schema, &[], IpcWriteOptions::default()), &limits),
            "the schema has more than 10 fields (nested ones included), the limit"
        );
    }

    #[test]
    fn a_schema_nested_past_the_limit_is_refused() {
        let nested = |depth: usize| {
            let mut data_type = DataType::Int64;
            for _ in 1..depth {
                data_type = DataType::List(Arc::new(Field::new("item", data_type, true)));
            }
            let schema = Arc::new(Schema::new(vec![Field::new("deep", data_type, true)]));
            stream(&[RecordBatch::new_empty(schema)])
        };
        let limits = GuestLimits::default();
        assert!(decode_emit(nested(limits.max_nesting), &limits).is_ok());
        let message = refused(nested(limits.max_nesting + 1));
        assert!(message.contains("nests fields more than 16 deep"), "{message}");
    }

    #[test]
    fn a_union_column_is_refused_at_the_first_emit() {
        let union = sample_union(UnionMode::Sparse);
        let batch = RecordBatch::try_from_iter([("u", union)]).unwrap();
        let message = refused(stream(&[batch]));
        assert!(message.starts_with("field `u` has type Union("), "{message}");
        assert!(message.ends_with("which cannot be written to Parquet"), "{message}");
    }

    #[test]
    fn check_writable_names_the_nested_field() {
        let union = sample_union(UnionMode::Dense);
        let field = Arc::new(Field::new("x", union.data_type().clone(), true));
        let s = StructArray::new(Fields::from(vec![field]), vec![union], None);
        let schema = Schema::new(vec![Field::new("ok", DataType::Int32, true), Field::new("s", s.data_type().clone(), true)]);
        let message = check_writable(&schema).unwrap_err();
        assert!(message.starts_with("field `s.x` has type Union("), "{message}");
        let empty = Schema::new(vec![Field::new("e", DataType::Struct(Fields::empty()), true)]);
        assert_eq!(check_writable(&empty).unwrap_err(), "field `e` has type Struct(), which cannot be written to Parquet (a struct needs a field)");
        let no_fields = Schema::empty();
        assert!(check_writable(&no_fields).unwrap_err().contains("has no fields"), "rows without columns read back as none");
    }

    fn sample_union(mode: UnionMode) -> ArrayRef {
        let ints = Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])) as ArrayRef;
        let strs = Arc::new(StringArray::from(vec![Some("a"), None, Some("ccc")])) as ArrayRef;
        let fields = UnionFields::try_new([0, 1], [Field::new("i", DataType::Int32, true), Field::new("s", DataType::Utf8, true)]).unwrap();
        let offsets = (mode == UnionMode::Dense).then(|| ScalarBuffer::from(vec![0i32, 0, 1]));
        Arc::new(UnionArray::try_new(fields, ScalarBuffer::from(vec![0i8, 1, 0]), offsets, vec![ints, strs]).unwrap())
    }

    #[test]
    fn every_writable_type_round_trips_through_a_stream() {
        let mut unwritten = Vec::new();
        for array in samples() {
            let batch = RecordBatch::try_from_iter_with_nullable([("c", array.clone(), true)]).unwrap();
            if check_writable(&batch.schema()).is_err() {
                continue;
            }
            // Whole, sliced, and twice (a second batch, dictionaries resent).
            let batches = [batch.clone(), batch.slice(1.min(batch.num_rows()), 2.min(batch.num_rows().saturating_sub(1)))];
            let options = IpcWriteOptions::default().with_dictionary_handling(DictionaryHandling::Resend);
            let bytes = match catch_unwind(AssertUnwindSafe(|| {
                let mut writer = StreamWriter::try_new_with_options(Vec::new(), &batch.schema(), options)?;
                batches.iter().try_for_each(|b| writer.write(b))?;
                writer.finish()?;
                writer.into_inner()
            })) {
                Ok(Ok(bytes)) => bytes,
                other => {
                    unwritten.push(format!("{}: {:?}", array.data_type(), other.map(|r| r.err()).ok().flatten()));
                    continue;
                }
            };
            let emitted = decode_emit(bytes, &GuestLimits::default()).unwrap_or_else(|e| panic!("{}: {e}", array.data_type()));
            assert_eq!(emitted.batches, batches, "{}", array.data_type());
        }
        // What arrow's own IPC writer cannot write is no stream a guest sends.
        println!("not written by arrow's IPC writer: {unwritten:#?}");
    }

    /// A stream of one `BinaryView` column of `views` over `data`, its
    /// schema rewritten to say `Utf8View`.
    fn as_utf8_views(views: Vec<u128>, data: &[u8]) -> Vec<u8> {
        let array = BinaryViewArray::try_new(ScalarBuffer::from(views), vec![arrow_buffer::Buffer::from(data)], None).unwrap();
        let mut bytes = stream(&[RecordBatch::try_from_iter([("s", Arc::new(array) as ArrayRef)]).unwrap()]);
        let schema = messages(&bytes)[0].clone();
        let at = {
            let message = arrow_ipc::root_as_message(&bytes[schema.metadata.clone()]).unwrap();
            let field = message.header_as_schema().unwrap().fields().unwrap().get(0);
            slot!(bytes, schema.metadata, field, arrow_ipc::Field::VT_TYPE_TYPE)
        };
        assert_eq!(bytes[at], arrow_ipc::Type::BinaryView.0);
        bytes[at] = arrow_ipc::Type::Utf8View.0;
        bytes
    }

    /// A view of `len` bytes at `offset` of buffer 0, whose first 4 bytes are `prefix`.
    fn view(len: usize, offset: usize, prefix: &[u8]) -> u128 {
        let prefix = u32::from_le_bytes(prefix[..4].try_into().unwrap());
        len as u128 | (u128::from(prefix) << 32) | ((offset as u128) << 96)
    }

    #[test]
    fn a_view_bomb_decodes_in_linear_time() {
        // 100,000 views of one megabyte: arrow's validation alone checks
        // the megabyte's UTF-8 100,000 times.
        let data = vec![b'v'; 1 << 20];
        let bytes = as_utf8_views(vec![view(1 << 20, 0, b"vvvv"); 100_000], &data);
        let started = std::time::Instant::now();
        let emitted = decode_emit(bytes, &GuestLimits::default()).unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
        assert_eq!(emitted.batches[0].column(0).data_type(), &DataType::Utf8View);
        assert_eq!(emitted.batches.iter().map(logical_bytes).sum::<u64>(), 100_000 * (16 + (1 << 20)));
    }

    #[test]
    fn views_that_are_not_utf8_are_refused() {
        // The buffer is valid as a whole; a view ends inside a character.
        let data = "éééééééééé".as_bytes();
        let good = as_utf8_views(vec![view(14, 0, &data[..4]), view(16, 2, &data[2..6])], data);
        let emitted = decode_emit(good, &GuestLimits::default()).unwrap();
        assert_eq!(emitted.batches[0].column(0).as_string_view().value(1), "éééééééé");
        let inside = as_utf8_views(vec![view(13, 0, &data[..4])], data);
        assert_malformed(&refused(inside), "view 0 of a Utf8View column is not valid UTF-8");
        let starts_inside = as_utf8_views(vec![view(14, 1, &data[1..5])], data);
        assert_malformed(&refused(starts_inside), "view 0 of a Utf8View column is not valid UTF-8");
        // A buffer that is not valid as a whole: each view is checked.
        let mut data = b"a valid string of bytes".to_vec();
        data.extend_from_slice(&[0xFF; 20]);
        let fine = as_utf8_views(vec![view(23, 0, b"a va")], &data);
        assert!(decode_emit(fine, &GuestLimits::default()).is_ok());
        let bad = as_utf8_views(vec![view(23, 0, b"a va"), view(20, 23, &[0xFF; 4])], &data);
        assert_malformed(&refused(bad), "view 1 of a Utf8View column is not valid UTF-8");
        // Inline.
        let inline = as_utf8_views(vec![2 | (0xFFFFu128 << 32)], b"");
        assert_malformed(&refused(inline), "view 0 of a Utf8View column is not valid UTF-8");
    }

    fn bytes_of(columns: Vec<(&str, ArrayRef)>) -> u64 {
        logical_bytes(&RecordBatch::try_from_iter(columns).unwrap())
    }

    #[test]
    fn logical_bytes_of_a_wide_decoded_batch_counts_each_column_once() {
        let columns: Vec<(String, ArrayRef)> =
            (0..100).map(|i| (format!("c{i}"), Arc::new(Int64Array::from_iter_values(0..1000)) as ArrayRef)).collect();
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let bytes = stream(&[batch]);
        let n = bytes.len() as u64;
        let emitted = decode_emit(bytes, &GuestLimits::default()).unwrap();
        assert_eq!(emitted.batches.iter().map(logical_bytes).sum::<u64>(), 800_000);
        assert_eq!(logical_bytes(&emitted.batches[0]), 800_000);
        // Every column's buffer is the whole stream: what arrow's memory
        // size says is about 100 times the stream.
        assert!(emitted.batches[0].get_array_memory_size() as u64 > 50 * n, "{}", emitted.batches[0].get_array_memory_size());
    }

    #[test]
    fn logical_bytes_of_slices_count_the_slice() {
        let ints = Arc::new(Int64Array::from_iter_values(0..1000)) as ArrayRef;
        assert_eq!(bytes_of(vec![("i", ints.slice(100, 10))]), 80);
        let nulls = Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])) as ArrayRef;
        assert_eq!(bytes_of(vec![("i", nulls)]), 12 + 1);
        let strings = Arc::new(StringArray::from_iter_values((0..1000).map(|i| "x".repeat(i % 10)))) as ArrayRef;
        // Rows 10..20 are 0..9 bytes long: 45 bytes and 10 offsets.
        assert_eq!(bytes_of(vec![("s", strings.slice(10, 10))]), 45 + 40);
        let list = Arc::new(ListArray::new(
            Arc::new(Field::new("item", DataType::Int32, true)),
            OffsetBuffer::from_lengths([1, 0, 2, 5]),
            Arc::new(Int32Array::from_iter_values(0..8)),
            None,
        )) as ArrayRef;
        assert_eq!(bytes_of(vec![("l", list.clone())]), 4 * 4 + 8 * 4);
        assert_eq!(bytes_of(vec![("l", list.slice(1, 2))]), 2 * 4 + 2 * 4);
        let fixed = Arc::new(FixedSizeListArray::new(
            Arc::new(Field::new("item", DataType::Int16, true)),
            3,
            Arc::new(Int16Array::from_iter_values(0..30)),
            None,
        )) as ArrayRef;
        assert_eq!(bytes_of(vec![("f", fixed.slice(2, 4))]), 4 * 3 * 2);
        let structs = Arc::new(StructArray::from(vec![
            (Arc::new(Field::new("a", DataType::Int64, true)), Arc::new(Int64Array::from_iter_values(0..100)) as ArrayRef),
            (Arc::new(Field::new("b", DataType::Utf8, true)), Arc::new(StringArray::from_iter_values((0..100).map(|_| "abc"))) as ArrayRef),
        ])) as ArrayRef;
        assert_eq!(bytes_of(vec![("s", structs.slice(50, 10))]), 10 * 8 + 10 * (4 + 3));
        assert_eq!(bytes_of(vec![("n", Arc::new(NullArray::new(800)) as ArrayRef)]), 100);
        assert_eq!(bytes_of(vec![("b", Arc::new(BooleanArray::from(vec![true; 80])) as ArrayRef)]), 10);
    }

    #[test]
    fn logical_bytes_of_a_dictionary_count_each_keys_value() {
        // A million keys referring to one value of a megabyte: a terabyte.
        let value = "v".repeat(1 << 20);
        let keys = Int32Array::from(vec![0; 1 << 20]);
        let bomb = DictionaryArray::new(keys, Arc::new(StringArray::from(vec![value.as_str()])));
        assert_eq!(bytes_of(vec![("d", Arc::new(bomb) as ArrayRef)]), (1 << 20) * (4 + 4 + (1 << 20)));
        // Null keys count their key only; slices their rows.
        let dictionary = Arc::new(DictionaryArray::<Int8Type>::from_iter([Some("aaa"), None, Some("b"), Some("aaa")])) as ArrayRef;
        assert_eq!(bytes_of(vec![("d", dictionary.clone())]), 4 + 1 + (4 + 3) + (4 + 1) + (4 + 3));
        assert_eq!(bytes_of(vec![("d", dictionary.slice(2, 2))]), 2 + 1 + (4 + 1) + (4 + 3));
        // Values of a nested type.
        let lists = ListArray::new(
            Arc::new(Field::new("item", DataType::Int64, true)),
            OffsetBuffer::from_lengths([3, 1]),
            Arc::new(Int64Array::from_iter_values(0..4)),
            None,
        );
        let nested = DictionaryArray::new(Int32Array::from(vec![0, 0, 1]), Arc::new(lists));
        assert_eq!(bytes_of(vec![("d", Arc::new(nested) as ArrayRef)]), 3 * 4 + 2 * (4 + 24) + (4 + 8));
    }

    #[test]
    fn logical_bytes_of_views_count_every_view() {
        let long = "a value longer than twelve bytes";
        let views = Arc::new(StringViewArray::from(vec![Some("a"), None, Some(long)])) as ArrayRef;
        assert_eq!(bytes_of(vec![("v", views.clone())]), 3 * 16 + 1 + long.len() as u64 + 1);
        assert_eq!(bytes_of(vec![("v", views.slice(2, 1))]), 16 + long.len() as u64 + 1);
        // A million views of one megabyte: a terabyte.
        let big = arrow_buffer::Buffer::from(vec![b'b'; 1 << 20]);
        // A view: length, first 4 bytes, buffer 0, offset 0.
        let view = (1u128 << 20) | (u128::from(u32::from_le_bytes(*b"bbbb")) << 32);
        let bomb = Arc::new(BinaryViewArray::try_new(ScalarBuffer::from(vec![view; 1 << 20]), vec![big], None).unwrap()) as ArrayRef;
        assert_eq!(bytes_of(vec![("v", bomb)]), (1 << 20) * (16 + (1 << 20)));
        let binary = Arc::new(BinaryViewArray::from(vec![b"xy".as_ref(), b""])) as ArrayRef;
        assert_eq!(bytes_of(vec![("b", binary)]), 2 * 16 + 2);
    }

    #[test]
    fn logical_bytes_of_list_views_and_run_ends_count_what_each_row_covers() {
        // Every row views all 1000 values of the child.
        let rows = 1000;
        let child = Arc::new(StringArray::from_iter_values((0..1000).map(|_| "abcd"))) as ArrayRef;
        let views = ListViewArray::new(
            Arc::new(Field::new("item", DataType::Utf8, true)),
            ScalarBuffer::from(vec![0i32; rows]),
            ScalarBuffer::from(vec![1000i32; rows]),
            child,
            None,
        );
        assert_eq!(bytes_of(vec![("l", Arc::new(views) as ArrayRef)]), rows as u64 * (8 + 1000 * (4 + 4)));
        let runs = RunArray::<Int32Type>::try_new(&Int32Array::from(vec![10, 1_000_000]), &StringArray::from(vec!["ab", "cdef"])).unwrap();
        let runs = Arc::new(runs) as ArrayRef;
        assert_eq!(bytes_of(vec![("r", runs.clone())]), 10 * 6 + 999_990 * 8);
        assert_eq!(bytes_of(vec![("r", runs.slice(5, 10))]), 5 * 6 + 5 * 8);
    }

    #[test]
    fn logical_bytes_is_linear_in_the_rows() {
        // A list view of a million rows over a dictionary of views: each
        // row covers every value, and measuring takes well under a second.
        let values = Arc::new(DictionaryArray::new(
            Int32Array::from_iter_values((0..1000).map(|i| i % 3)),
            Arc::new(StringViewArray::from(vec!["a value longer than twelve bytes", "b", "c"])),
        )) as ArrayRef;
        let rows = 1 << 20;
        let views = ListViewArray::new(
            Arc::new(Field::new("item", values.data_type().clone(), true)),
            ScalarBuffer::from(vec![0i32; rows]),
            ScalarBuffer::from(vec![1000i32; rows]),
            values.clone(),
            None,
        );
        let batch = RecordBatch::try_from_iter([("l", Arc::new(views) as ArrayRef)]).unwrap();
        let started = std::time::Instant::now();
        let once = bytes_of(vec![("v", values)]);
        assert_eq!(logical_bytes(&batch), rows as u64 * (8 + once));
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    }

    /// Arrays of (nearly) every type, and of the doubtful ones nested.
    pub(crate) fn samples() -> Vec<ArrayRef> {
        let ints = || Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])) as ArrayRef;
        let strs = || Arc::new(StringArray::from(vec![Some("a"), None, Some("ccc")])) as ArrayRef;
        let item = Arc::new(Field::new("item", DataType::Int32, true));
        let keys = || Int32Array::from(vec![0, 1, 0]);
        let mut out: Vec<ArrayRef> = vec![
            Arc::new(NullArray::new(3)),
            Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            Arc::new(Int8Array::from(vec![1, 2, 3])),
            Arc::new(Int16Array::from(vec![1, 2, 3])),
            ints(),
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(UInt8Array::from(vec![1, 2, 3])),
            Arc::new(UInt16Array::from(vec![1, 2, 3])),
            Arc::new(UInt32Array::from(vec![1, 2, 3])),
            Arc::new(UInt64Array::from(vec![1, 2, 3])),
            arrow_cast::cast(&Float32Array::from(vec![1.0, 2.0, 3.0]), &DataType::Float16).unwrap(),
            Arc::new(Float32Array::from(vec![1.0, 2.0, 3.0])),
            Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0])),
            Arc::new(TimestampSecondArray::from(vec![1, 2, 3])),
            Arc::new(TimestampMillisecondArray::from(vec![1, 2, 3]).with_timezone("UTC")),
            Arc::new(TimestampMicrosecondArray::from(vec![1, 2, 3])),
            Arc::new(TimestampNanosecondArray::from(vec![1, 2, 3]).with_timezone("+01:00")),
            Arc::new(Date32Array::from(vec![1, 2, 3])),
            Arc::new(Date64Array::from(vec![86_400_000, 2, 3])),
            Arc::new(Time32SecondArray::from(vec![1, 2, 3])),
            Arc::new(Time32MillisecondArray::from(vec![1, 2, 3])),
            Arc::new(Time64MicrosecondArray::from(vec![1, 2, 3])),
            Arc::new(Time64NanosecondArray::from(vec![1, 2, 3])),
            Arc::new(DurationSecondArray::from(vec![1, 2, 3])),
            Arc::new(DurationMillisecondArray::from(vec![1, 2, 3])),
            Arc::new(DurationMicrosecondArray::from(vec![1, 2, 3])),
            Arc::new(DurationNanosecondArray::from(vec![1, 2, 3])),
            Arc::new(IntervalYearMonthArray::from(vec![1, 2, 3])),
            Arc::new(IntervalDayTimeArray::from(vec![arrow_buffer::IntervalDayTime::new(1, 2); 3])),
            Arc::new(IntervalMonthDayNanoArray::from(vec![arrow_buffer::IntervalMonthDayNano::new(1, 2, 3); 3])),
            Arc::new(Decimal32Array::from(vec![1, 2, 3]).with_precision_and_scale(9, 2).unwrap()),
            Arc::new(Decimal64Array::from(vec![1, 2, 3]).with_precision_and_scale(18, 2).unwrap()),
            Arc::new(Decimal128Array::from(vec![1, 2, 3]).with_precision_and_scale(38, 2).unwrap()),
            Arc::new(Decimal256Array::from(vec![arrow_buffer::i256::ONE; 3]).with_precision_and_scale(76, 2).unwrap()),
            Arc::new(BinaryArray::from(vec![b"a".as_ref(), b"", b"ccc"])),
            Arc::new(LargeBinaryArray::from(vec![b"a".as_ref(), b"", b"ccc"])),
            Arc::new(FixedSizeBinaryArray::try_from_iter([b"abc", b"def", b"ghi"].into_iter()).unwrap()),
            Arc::new(BinaryViewArray::from(vec![b"a".as_ref(), b"", b"a long value over twelve bytes"])),
            strs(),
            Arc::new(LargeStringArray::from(vec!["a", "", "ccc"])),
            Arc::new(StringViewArray::from(vec![Some("a"), None, Some("a long value over twelve bytes")])),
            Arc::new(ListArray::new(item.clone(), OffsetBuffer::from_lengths([1, 0, 2]), ints(), None)),
            Arc::new(LargeListArray::new(item.clone(), OffsetBuffer::from_lengths([1, 0, 2]), ints(), None)),
            Arc::new(FixedSizeListArray::new(item.clone(), 1, ints(), None)),
            Arc::new(FixedSizeListArray::new(item.clone(), 0, Arc::new(Int32Array::from(Vec::<i32>::new())), None)),
            Arc::new(ListViewArray::new(item.clone(), ScalarBuffer::from(vec![0, 1, 0]), ScalarBuffer::from(vec![1, 2, 3]), ints(), None)),
            Arc::new(LargeListViewArray::new(item.clone(), ScalarBuffer::from(vec![0i64, 1, 0]), ScalarBuffer::from(vec![1i64, 2, 3]), ints(), None)),
            Arc::new(StructArray::from(vec![(Arc::new(Field::new("a", DataType::Int32, true)), ints())])),
            Arc::new(StructArray::new_empty_fields(3, None)),
            {
                let mut b = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
                b.keys().append_value("k");
                b.values().append_value(1);
                b.append(true).unwrap();
                b.append(false).unwrap();
                b.append(true).unwrap();
                Arc::new(b.finish())
            },
            sample_union(UnionMode::Sparse),
            sample_union(UnionMode::Dense),
            Arc::new(DictionaryArray::<Int8Type>::from_iter(["x", "y", "x"])),
            Arc::new(DictionaryArray::<Int16Type>::from_iter(["x", "y", "x"])),
            Arc::new(DictionaryArray::<Int32Type>::from_iter(["x", "y", "x"])),
            Arc::new(DictionaryArray::<Int64Type>::from_iter(["x", "y", "x"])),
            Arc::new(DictionaryArray::<UInt8Type>::from_iter(["x", "y", "x"])),
            Arc::new(DictionaryArray::<UInt16Type>::from_iter(["x", "y", "x"])),
            Arc::new(DictionaryArray::<UInt32Type>::from_iter(["x", "y", "x"])),
            Arc::new(DictionaryArray::<UInt64Type>::from_iter(["x", "y", "x"])),
            Arc::new(DictionaryArray::new(keys(), Arc::new(Int64Array::from(vec![7, 8])))),
            Arc::new(DictionaryArray::new(keys(), Arc::new(UInt8Array::from(vec![7, 8])))),
            Arc::new(DictionaryArray::new(keys(), Arc::new(LargeStringArray::from(vec!["p", "q"])))),
            Arc::new(DictionaryArray::new(keys(), Arc::new(BinaryArray::from(vec![b"p".as_ref(), b"q"])))),
            Arc::new(DictionaryArray::new(keys(), Arc::new(LargeBinaryArray::from(vec![b"p".as_ref(), b"q"])))),
            Arc::new(DictionaryArray::new(keys(), Arc::new(StringViewArray::from(vec!["p", "q"])))),
            Arc::new(DictionaryArray::new(keys(), Arc::new(BinaryViewArray::from(vec![b"p".as_ref(), b"q"])))),
            Arc::new(DictionaryArray::new(keys(), Arc::new(FixedSizeBinaryArray::try_from_iter([b"ab", b"cd"].into_iter()).unwrap()))),
            Arc::new(DictionaryArray::new(keys(), Arc::new(Decimal128Array::from(vec![1, 2]).with_precision_and_scale(10, 2).unwrap()))),
            Arc::new(DictionaryArray::new(keys(), Arc::new(Decimal256Array::from(vec![arrow_buffer::i256::ONE; 2]).with_precision_and_scale(40, 2).unwrap()))),
            Arc::new(DictionaryArray::new(keys(), Arc::new(BooleanArray::from(vec![true, false])))),
            Arc::new(DictionaryArray::new(keys(), Arc::new(Float64Array::from(vec![1.0, 2.0])))),
            Arc::new(DictionaryArray::new(keys(), arrow_cast::cast(&Float32Array::from(vec![1.0, 2.0]), &DataType::Float16).unwrap())),
            Arc::new(DictionaryArray::new(keys(), Arc::new(Date32Array::from(vec![1, 2])))),
            Arc::new(DictionaryArray::new(keys(), Arc::new(TimestampMicrosecondArray::from(vec![1, 2])))),
            Arc::new(DictionaryArray::new(keys(), Arc::new(IntervalMonthDayNanoArray::from(vec![arrow_buffer::IntervalMonthDayNano::new(1, 2, 3); 2])))),
            Arc::new(DictionaryArray::new(keys(), Arc::new(NullArray::new(2)))),
            Arc::new(DictionaryArray::new(keys(), Arc::new(ListArray::new(item.clone(), OffsetBuffer::from_lengths([1, 2]), ints(), None)))),
            Arc::new(DictionaryArray::new(keys(), Arc::new(StructArray::from(vec![(Arc::new(Field::new("a", DataType::Int32, true)), Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef)])))),
            Arc::new(DictionaryArray::new(keys(), Arc::new(DictionaryArray::<Int8Type>::from_iter(["x", "y"])))),
            Arc::new(DictionaryArray::new(keys(), Arc::new(RunArray::<Int32Type>::try_new(&Int32Array::from(vec![1, 2]), &StringArray::from(vec!["a", "b"])).unwrap()))),
            Arc::new(DictionaryArray::new(keys(), Arc::new(ListViewArray::new(item.clone(), ScalarBuffer::from(vec![0, 1]), ScalarBuffer::from(vec![3, 2]), ints(), None)))),
            Arc::new(RunArray::<Int32Type>::try_new(&Int32Array::from(vec![2, 3]), &StringArray::from(vec!["a", "b"])).unwrap()),
            Arc::new(RunArray::<Int32Type>::try_new(&Int32Array::from(vec![2, 3]), &DictionaryArray::<Int8Type>::from_iter(["x", "y"])).unwrap()),
            Arc::new(RunArray::<Int32Type>::try_new(&Int32Array::from(vec![2, 3]), &ListArray::new(item.clone(), OffsetBuffer::from_lengths([1, 2]), ints(), None)).unwrap()),
            Arc::new(RunArray::<Int32Type>::try_new(&Int32Array::from(vec![2, 3]), &StructArray::from(vec![(Arc::new(Field::new("a", DataType::Int32, true)), Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef)])).unwrap()),
            Arc::new(RunArray::<Int16Type>::try_new(&Int16Array::from(vec![2, 3]), &Int64Array::from(vec![4, 5])).unwrap()),
            Arc::new(RunArray::<Int64Type>::try_new(&Int64Array::from(vec![1, 3]), &Int64Array::from(vec![4, 5])).unwrap()),
            Arc::new(ListArray::new(Arc::new(Field::new("item", DataType::Null, true)), OffsetBuffer::from_lengths([1, 0, 2]), Arc::new(NullArray::new(3)), None)),
            Arc::new(StructArray::from(vec![(Arc::new(Field::new("n", DataType::Null, true)), Arc::new(NullArray::new(3)) as ArrayRef)])),
        ];
        // The doubtful ones nested, and a plain one.
        let find = |f: &dyn Fn(&DataType) -> bool| out.iter().find(|a| f(a.data_type())).unwrap().clone();
        let inners = [
            find(&|t| matches!(t, DataType::Union(_, UnionMode::Sparse))),
            find(&|t| matches!(t, DataType::Struct(f) if f.is_empty())),
            find(&|t| matches!(t, DataType::RunEndEncoded(..))),
            find(&|t| matches!(t, DataType::ListView(_))),
            find(&|t| matches!(t, DataType::Utf8View)),
            Arc::new(DictionaryArray::<Int32Type>::from_iter(["x", "y", "x"])),
            strs(),
        ];
        for inner in inners {
            let field = Arc::new(Field::new("x", inner.data_type().clone(), true));
            out.push(Arc::new(StructArray::new(Fields::from(vec![field.clone()]), vec![inner.clone()], None)));
            out.push(Arc::new(ListArray::new(field.clone(), OffsetBuffer::from_lengths([1, 0, 2]), inner.clone(), None)));
            out.push(Arc::new(FixedSizeListArray::new(field.clone(), 1, inner.clone(), None)));
            out.push(Arc::new(ListViewArray::new(field.clone(), ScalarBuffer::from(vec![0, 1, 0]), ScalarBuffer::from(vec![1, 2, 3]), inner.clone(), None)));
        }
        // A map with dictionary keys and view values.
        let entries = StructArray::from(vec![
            (
                Arc::new(Field::new("keys", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), false)),
                Arc::new(DictionaryArray::<Int32Type>::from_iter(["x", "y", "x"])) as ArrayRef,
            ),
            (Arc::new(Field::new("values", DataType::Utf8View, true)), Arc::new(StringViewArray::from(vec!["p", "q", "r"])) as ArrayRef),
        ]);
        out.push(Arc::new(MapArray::new(
            Arc::new(Field::new("entries", entries.data_type().clone(), false)),
            OffsetBuffer::from_lengths([1, 0, 2]),
            entries,
            None,
            false,
        )));
        // Nulls of every type so far (where arrow can make them).
        let nulls: Vec<ArrayRef> = out
            .iter()
            .filter_map(|a| {
                let data_type = a.data_type().clone();
                std::panic::catch_unwind(move || new_null_array(&data_type, 3)).ok()
            })
            .collect();
        out.extend(nulls);
        out
    }

    /// `Ok` if the Parquet writer stores `batch` (whole, then sliced),
    /// with dictionary encoding and without, else what it said or the panic.
    pub(crate) fn writes(batch: &RecordBatch) -> Result<(), String> {
        for props in [
            WriterProperties::builder().build(),
            WriterProperties::builder().set_dictionary_enabled(false).set_statistics_enabled(EnabledStatistics::Chunk).build(),
        ] {
            let result = catch_unwind(AssertUnwindSafe(|| {
                let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props)).map_err(|e| format!("try_new: {e}"))?;
                writer.write(batch).map_err(|e| format!("write: {e}"))?;
                if batch.num_rows() >= 3 {
                    writer.write(&batch.slice(1, 2)).map_err(|e| format!("write slice: {e}"))?;
                }
                writer.close().map_err(|e| format!("close: {e}"))?;
                Ok::<_, String>(())
            }));
            match result {
                Ok(result) => result?,
                Err(panic) => return Err(format!("panic: {}", panic_message(panic.as_ref()))),
            }
        }
        Ok(())
    }

    /// Where `check_writable` is stricter than the writer: a run-end
    /// encoded array under a list view or in a dictionary's values.
    fn stricter(data_type: &DataType) -> bool {
        fn has_ree(t: &DataType) -> bool {
            match t {
                DataType::RunEndEncoded(..) => true,
                DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) | DataType::ListView(f) | DataType::LargeListView(f) | DataType::Map(f, _) => has_ree(f.data_type()),
                DataType::Struct(fields) => fields.iter().any(|f| has_ree(f.data_type())),
                DataType::Dictionary(_, v) => has_ree(v),
                _ => false,
            }
        }
        match data_type {
            DataType::ListView(f) | DataType::LargeListView(f) => has_ree(f.data_type()),
            DataType::Dictionary(_, v) => has_ree(v),
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) | DataType::Map(f, _) => stricter(f.data_type()),
            DataType::Struct(fields) => fields.iter().any(|f| stricter(f.data_type())),
            DataType::RunEndEncoded(_, v) => stricter(v.data_type()),
            _ => false,
        }
    }

    #[test]
    fn check_writable_agrees_with_the_parquet_writer() {
        let mut disagreements = Vec::new();
        let mut table = String::new();
        for array in samples() {
            // As `try_from_iter` infers (a null array is not nullable), and
            // every field nullable.
            for nullable in [None, Some(true)] {
                let batch = match nullable {
                    None => RecordBatch::try_from_iter([("c", array.clone())]).unwrap(),
                    Some(_) => RecordBatch::try_from_iter_with_nullable([("c", array.clone(), true)]).unwrap(),
                };
                let written = writes(&batch);
                let checked = check_writable(&batch.schema());
                let field = &batch.schema().fields()[0].clone();
                let kind = if array.logical_null_count() == array.len() { "nulls" } else { "data" };
                let nullable = if field.is_nullable() { "nullable" } else { "required" };
                let said = written.as_ref().err().map_or("", |e| e.lines().next().unwrap_or(""));
                table.push_str(&format!("{:4} {kind:5} {nullable:8} {}: {said}\n", if written.is_ok() { "OK" } else { "FAIL" }, field.data_type()));
                let agree = written.is_ok() == checked.is_ok() || (written.is_ok() && stricter(field.data_type()));
                if !agree {
                    disagreements.push(format!("{kind} {nullable} {}: writer {written:?}, check_writable {checked:?}", field.data_type()));
                }
            }
        }
        println!("{table}");
        assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    }
}
