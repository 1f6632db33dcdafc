//! Emitted IPC bytes, validated before arrow sees them: the stream's
//! framing (every message and buffer within the bytes received), its
//! schema (fields, metadata, types the Parquet writer can store), no
//! delta dictionaries; then decoded, and measured as the data it really
//! holds.
//!
//! Two kinds of refusal: bytes that are not what they claim (a length past
//! the end, a flatbuffer that does not verify, a buffer outside its body,
//! a second schema, a panic of arrow's decoder) give a message starting
//! with [`MALFORMED`], and one cut short or missing its end marker also
//! says [`INCOMPLETE`]; a well-formed stream that asks for what the host
//! does not take (over a limit, a delta dictionary, a compressed body, a
//! type Parquet cannot store) gives a message saying so.

use std::panic::{AssertUnwindSafe, catch_unwind};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::{Endianness, MessageHeader, MetadataVersion};
use arrow_schema::{DataType, Field, Schema, UnionMode};

use super::GuestLimits;

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
    /// Bytes of the data it holds once materialised (a dictionary's values
    /// counted for every key that refers to them, a view's bytes for every
    /// view): what the Parquet writer will hold and write.
    pub logical_bytes: u64,
}

/// Validates and decodes one emitted IPC stream: its framing and every
/// length in its messages are checked against the bytes received, its
/// schema against `limits` and [`check_writable`], before arrow decodes it
/// (with its own validation, and a panic of arrow's caught as an error).
pub fn decode_emit(bytes: Vec<u8>, limits: &GuestLimits) -> Result<Emitted, String> {
    let ipc_bytes = bytes.len() as u64;
    let schema = validate_stream(&bytes, limits)?;
    check_writable(&schema)?;
    let batches = decode(bytes)?;
    let logical_bytes = batches.iter().fold(0u64, |sum, batch| sum.saturating_add(logical_bytes(batch)));
    Ok(Emitted { batches, ipc_bytes, logical_bytes })
}

fn malformed(detail: impl std::fmt::Display) -> String {
    format!("{MALFORMED}{detail}")
}

fn incomplete(detail: impl std::fmt::Display) -> String {
    format!("{MALFORMED}{INCOMPLETE}: {detail}")
}

/// Walks every message of `bytes` without decoding any data; returns the
/// stream's schema.
fn validate_stream(bytes: &[u8], limits: &GuestLimits) -> Result<Schema, String> {
    let mut pos = 0usize;
    let mut messages = 0usize;
    let mut schema = None;
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
        if version != MetadataVersion::V4 && version != MetadataVersion::V5 {
            return Err(format!("message {n} has metadata version {version:?}; only V4 and V5 are accepted"));
        }
        match message.header_type() {
            MessageHeader::Schema => {
                if schema.is_some() {
                    return Err(malformed(format!("message {n} is a second schema; a stream has one, first")));
                }
                let header = message.header_as_schema().ok_or_else(|| malformed(format!("message {n} is a schema without its header")))?;
                schema = Some(validate_schema(header, limits)?);
            }
            MessageHeader::RecordBatch => {
                if schema.is_none() {
                    return Err(malformed(format!("message {n} is a record batch before the schema")));
                }
                let header = message.header_as_record_batch().ok_or_else(|| malformed(format!("message {n} is a record batch without its header")))?;
                validate_batch(header, body_length, n)?;
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
                validate_batch(data, body_length, n)?;
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
    schema.ok_or_else(|| malformed("the stream has no schema"))
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

fn count_field(field: arrow_ipc::Field<'_>, counts: &mut SchemaCounts, limits: &GuestLimits) -> Result<(), String> {
    counts.fields += 1;
    if counts.fields > limits.max_fields {
        return Err(format!("the schema has more than {} fields (nested ones included), the limit", limits.max_fields));
    }
    counts.metadata_bytes = counts.metadata_bytes.saturating_add(key_value_bytes(field.custom_metadata()));
    // Nesting is bounded by the verifier's depth limit (64 tables).
    for child in field.children().into_iter().flatten() {
        count_field(child, counts, limits)?;
    }
    Ok(())
}

fn validate_schema(header: arrow_ipc::Schema<'_>, limits: &GuestLimits) -> Result<Schema, String> {
    if header.endianness() != Endianness::Little {
        return Err("the stream is big-endian; only little-endian streams are accepted".into());
    }
    let mut counts = SchemaCounts { fields: 0, metadata_bytes: key_value_bytes(header.custom_metadata()) };
    for field in header.fields().into_iter().flatten() {
        count_field(field, &mut counts, limits)?;
    }
    if counts.metadata_bytes > limits.max_metadata_bytes {
        return Err(format!(
            "the schema carries {} bytes of metadata, over the limit of {} bytes",
            counts.metadata_bytes, limits.max_metadata_bytes
        ));
    }
    match catch_unwind(|| arrow_ipc::convert::try_fb_to_schema(header)) {
        Ok(Ok(schema)) => Ok(schema),
        Ok(Err(e)) => Err(malformed(format!("its schema does not convert: {e}"))),
        Err(panic) => Err(malformed(format!("converting its schema panicked: {}", panic_message(panic.as_ref())))),
    }
}

/// Checks the lengths of a record batch's (or dictionary batch's data's)
/// header against its message body of `body_length` bytes.
fn validate_batch(header: arrow_ipc::RecordBatch<'_>, body_length: i64, n: usize) -> Result<(), String> {
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
    for (i, node) in header.nodes().into_iter().flatten().enumerate() {
        let (length, nulls) = (node.length(), node.null_count());
        if !(0..=i64::from(i32::MAX)).contains(&length) {
            return Err(malformed(format!("message {n}: array {i} declares a length of {length} (0 to {} are accepted)", i32::MAX)));
        }
        if !(0..=length).contains(&nulls) {
            return Err(malformed(format!("message {n}: array {i} of length {length} declares {nulls} nulls")));
        }
    }
    let mut buffers = 0usize;
    for (i, buffer) in header.buffers().into_iter().flatten().enumerate() {
        buffers += 1;
        let (offset, length) = (buffer.offset(), buffer.length());
        let end = offset.checked_add(length);
        if offset < 0 || length < 0 || end.is_none_or(|end| end > body_length) {
            return Err(malformed(format!(
                "message {n}: buffer {i} (at offset {offset}, {length} bytes) lies outside the message's body of {body_length} bytes"
            )));
        }
    }
    let mut variadic = 0usize;
    for count in header.variadicBufferCounts().into_iter().flatten() {
        let count = usize::try_from(count).map_err(|_| malformed(format!("message {n} declares {count} variadic buffers")))?;
        variadic = variadic.saturating_add(count);
    }
    if variadic > buffers {
        return Err(malformed(format!("message {n} declares {variadic} variadic buffers but has {buffers} buffers")));
    }
    Ok(())
}

/// Decodes a stream whose framing [`validate_stream`] accepted, with
/// arrow's validation of every array; a panic of arrow's becomes an error.
fn decode(bytes: Vec<u8>) -> Result<Vec<RecordBatch>, String> {
    let run = move || {
        let mut decoder = StreamDecoder::new();
        let mut buffer = Buffer::from_vec(bytes);
        let mut batches = Vec::new();
        while !buffer.is_empty() {
            match decoder.decode(&mut buffer) {
                Ok(Some(batch)) => batches.push(batch),
                Ok(None) => {}
                Err(e) => return Err(malformed(e)),
            }
        }
        decoder.finish().map_err(|e| incomplete(e))?;
        Ok(batches)
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(result) => result,
        Err(panic) => Err(malformed(format!("decoding it panicked: {}", panic_message(panic.as_ref())))),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    // A guest chose these bytes: keep the message short.
    let cut = (0..=message.len().min(500)).rev().find(|i| message.is_char_boundary(*i)).unwrap_or(0);
    message[..cut].to_owned()
}

/// Whether the Parquet writer can store every field of `schema`; the error
/// names the first field that it cannot, and its type.
///
/// An allow-list over [`DataType`], nested types checked recursively, held
/// to what the writer does by a unit test that writes every type. Refused,
/// as the writer fails on them: a union (the writer panics), an empty
/// struct, an interval of months, days and nanoseconds (not implemented),
/// a non-nullable field of type `Null` (every row is null). Refused though
/// the writer takes it: a run-end encoded array under a list view or in a
/// dictionary's values, whose materialised size [`logical_bytes`] could not
/// measure in linear time.
pub fn check_writable(schema: &Schema) -> Result<(), String> {
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

/// Bytes of `batch`'s data once materialised (see [`Emitted::logical_bytes`]).
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
        assert_eq!(emitted.logical_bytes, logical_bytes(&a) + logical_bytes(&b));
        // A schema alone is a stream too.
        let schema_only = stream_with(&a.schema(), &[], IpcWriteOptions::default());
        assert!(decode_emit(schema_only, &GuestLimits::default()).unwrap().batches.is_empty());
    }

    #[test]
    fn lying_buffer_lengths_and_offsets_are_refused() {
        let bytes = stream(&[ids(1234)]);
        let batch = messages(&bytes)[1].clone();
        for (what, value, needle) in [
            ("length", 1i64 << 62, "buffer 1 (at offset 0, 4611686018427387904 bytes) lies outside the message's body"),
            ("length", -1, "buffer 1 (at offset 0, -1 bytes)"),
            ("length", i64::MAX, "lies outside"),
            ("offset", 1 << 62, "buffer 1 (at offset 4611686018427387904"),
            ("offset", -8, "at offset -8"),
            // Past the body by one byte: 1234 values of 8 bytes, at 8.
            ("offset", 8, "lies outside the message's body of 9872 bytes"),
        ] {
            let mut lie = bytes.clone();
            let at = struct_at(&lie, &batch, 1, false) + if what == "length" { 8 } else { 0 };
            put_i64(&mut lie, at, value);
            assert_malformed(&refused(lie), needle);
        }
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
        assert_eq!(refused_with(stream(&[wide.clone()]), &limits), "the schema has more than 10 fields (nested ones included), the limit");
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
    }

    fn sample_union(mode: UnionMode) -> ArrayRef {
        let ints = Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])) as ArrayRef;
        let strs = Arc::new(StringArray::from(vec![Some("a"), None, Some("ccc")])) as ArrayRef;
        let fields = UnionFields::try_new([0, 1], [Field::new("i", DataType::Int32, true), Field::new("s", DataType::Utf8, true)]).unwrap();
        let offsets = (mode == UnionMode::Dense).then(|| ScalarBuffer::from(vec![0i32, 0, 1]));
        Arc::new(UnionArray::try_new(fields, ScalarBuffer::from(vec![0i8, 1, 0]), offsets, vec![ints, strs]).unwrap())
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
