//! A property test of [`decode_emit`] on hostile bytes: real IPC streams of
//! several schemas (ints with nulls, strings, dictionaries, nested lists,
//! structs and maps, views) mutated at random (bits flipped, bytes
//! overwritten with 0xFF/0x7F/0x80/0x00, cut, spliced, duplicated,
//! i32::MIN/i32::MAX/-1 inserted, lengths rewritten), streams of framed
//! garbage, and garbage. Whatever the bytes: no panic (nor one of arrow's
//! caught), an answer within a second or two, the bytes held by this thread
//! after it at most 8 times the input and 1 MiB, and none once it is
//! dropped; an accepted stream has `ipc_bytes` its length and a writable
//! schema.
//!
//! The default run is short and deterministic (a fixed seed, 1000 cases, a
//! few seconds). A long run, with the number of cases in
//! `CORRAL_FUZZ_CASES`:
//!
//! ```text
//! CORRAL_FUZZ_CASES=200000 cargo test -p corral --lib guest_input::fuzz --release
//! ```
//!
//! (a failure prints the shrunk input; `CORRAL_FUZZ_SEED=N` changes the
//! seed, for a run that explores other cases).
//!
//! A second property takes what `decode_emit` accepts of the same inputs
//! on through the host's write path, as an emit does: an output sink
//! writes it as Parquet and finishes the file, and either refuses it with
//! one of its errors or writes a file that reads back with the rows
//! emitted; never a panic, caught or not (a caught one is a check missing
//! before the writer).

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::builder::{Int32Builder, MapBuilder, StringBuilder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BinaryViewArray, BooleanArray, Float64Array, Int8Array, Int64Array, LargeStringArray, ListArray, RecordBatch, StringArray,
    StringViewArray, StructArray, TimestampMicrosecondArray,
};
use arrow_buffer::OffsetBuffer;
use arrow_ipc::writer::{DictionaryHandling, IpcWriteOptions};
use arrow_schema::{DataType, Field, Fields};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use super::GuestLimits;
use super::ipc::tests::{stream, stream_with};
use super::ipc::{check_writable, decode_emit};
use crate::test_alloc::held;

/// Cases of the default run.
const DEFAULT_CASES: u32 = 1000;

/// Real streams to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let ints = RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(vec![Some(1), None, Some(3), Some(-4), None])) as ArrayRef),
        ("small", Arc::new(Int8Array::from(vec![Some(1), Some(2), None, Some(4), Some(5)])) as ArrayRef),
        ("score", Arc::new(Float64Array::from(vec![0.5, 1.5, f64::NAN, -0.0, 1e300])) as ArrayRef),
        ("flag", Arc::new(BooleanArray::from(vec![Some(true), None, Some(false), Some(true), Some(false)])) as ArrayRef),
        ("at", Arc::new(TimestampMicrosecondArray::from(vec![1, 2, 3, 4, 5]).with_timezone("UTC")) as ArrayRef),
    ])
    .unwrap();
    let strings = RecordBatch::try_from_iter([
        ("name", Arc::new(StringArray::from(vec![Some("a"), Some(""), None, Some("dddd"), Some("héllo")])) as ArrayRef),
        ("long", Arc::new(LargeStringArray::from(vec!["x", "yy", "zzz", "", "w"])) as ArrayRef),
    ])
    .unwrap();
    let mut builder = StringDictionaryBuilder::<Int32Type>::new();
    for v in [Some("x"), Some("y"), None, Some("x"), Some("z")] {
        builder.append_option(v);
    }
    let first = builder.finish_cloned();
    builder.append_value("w");
    let second = builder.finish();
    let dictionary = |a| RecordBatch::try_from_iter([("tag", Arc::new(a) as ArrayRef)]).unwrap();
    let item = Arc::new(Field::new("item", DataType::Int64, true));
    let list = ListArray::new(item, OffsetBuffer::from_lengths([2, 0, 3]), Arc::new(Int64Array::from(vec![Some(1), None, Some(3), Some(4), Some(5)])), None);
    let inner = StructArray::new(
        Fields::from(vec![Field::new("a", DataType::Int64, true), Field::new("b", DataType::Utf8, true)]),
        vec![Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef, Arc::new(StringArray::from(vec![Some("p"), None, Some("r")])) as ArrayRef],
        None,
    );
    let mut map = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
    for (k, v) in [("k", 1), ("l", 2)] {
        map.keys().append_value(k);
        map.values().append_value(v);
        map.append(true).unwrap();
    }
    map.append(false).unwrap();
    let nested = RecordBatch::try_from_iter([
        ("list", Arc::new(list) as ArrayRef),
        ("struct", Arc::new(inner) as ArrayRef),
        ("map", Arc::new(map.finish()) as ArrayRef),
    ])
    .unwrap();
    let views = RecordBatch::try_from_iter([
        ("s", Arc::new(StringViewArray::from(vec![Some("short"), None, Some("a value longer than twelve bytes")])) as ArrayRef),
        ("b", Arc::new(BinaryViewArray::from(vec![b"xy".as_ref(), b"", b"another long binary value of bytes"])) as ArrayRef),
    ])
    .unwrap();
    let resend = IpcWriteOptions::default().with_dictionary_handling(DictionaryHandling::Resend);
    vec![
        stream(&[ints.clone(), ints.slice(1, 3)]),
        stream(std::slice::from_ref(&strings)),
        stream_with(&dictionary(first.clone()).schema(), &[dictionary(first), dictionary(second)], resend),
        stream(&[nested]),
        stream(&[views.clone(), views.slice(1, 2)]),
        stream_with(&strings.schema(), &[], IpcWriteOptions::default()),
        stream(&[RecordBatch::new_empty(ints.schema())]),
    ]
}

/// One change to a stream.
#[derive(Clone, Debug)]
enum Mutation {
    /// Flips bit `.1` of the byte at `.0`.
    Flip(Index, u8),
    /// Sets the byte at `.0`.
    Overwrite(Index, u8),
    /// Writes a little-endian i32 at `.0`.
    WriteI32(Index, i32),
    /// Writes a little-endian i64 at `.0`.
    WriteI64(Index, i64),
    /// Inserts a little-endian i32 at `.0`.
    InsertI32(Index, i32),
    /// Cuts the stream at `.0`.
    Truncate(Index),
    /// Removes `.1` bytes at `.0`.
    Remove(Index, usize),
    /// Copies `.2` bytes from `.0` over the bytes at `.1`.
    Splice(Index, Index, usize),
    /// Inserts a copy of `.2` bytes from `.0` at `.1`.
    Duplicate(Index, Index, usize),
    /// Appends the bytes of seed `.0` from `.1` on (another schema's
    /// messages after this one's).
    Graft(Index, Index),
}

fn special_byte() -> impl Strategy<Value = u8> {
    prop_oneof![Just(0xFF), Just(0x7F), Just(0x80), Just(0x00), any::<u8>()]
}

fn special_i32() -> impl Strategy<Value = i32> {
    prop_oneof![Just(i32::MIN), Just(i32::MAX), Just(-1), Just(0), Just(8), any::<i32>()]
}

fn special_i64() -> impl Strategy<Value = i64> {
    prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(-1), Just(1 << 62), Just(1 << 31), Just(i64::from(i32::MAX) + 1), any::<i64>()]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip(at, bit)),
        4 => (any::<Index>(), special_byte()).prop_map(|(at, byte)| Mutation::Overwrite(at, byte)),
        3 => (any::<Index>(), special_i32()).prop_map(|(at, v)| Mutation::WriteI32(at, v)),
        3 => (any::<Index>(), special_i64()).prop_map(|(at, v)| Mutation::WriteI64(at, v)),
        2 => (any::<Index>(), special_i32()).prop_map(|(at, v)| Mutation::InsertI32(at, v)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), 1usize..64).prop_map(|(at, n)| Mutation::Remove(at, n)),
        1 => (any::<Index>(), any::<Index>(), 1usize..256).prop_map(|(from, to, n)| Mutation::Splice(from, to, n)),
        1 => (any::<Index>(), any::<Index>(), 1usize..512).prop_map(|(from, to, n)| Mutation::Duplicate(from, to, n)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(seed, from)| Mutation::Graft(seed, from)),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation, seeds: &[Vec<u8>]) {
    let len = bytes.len();
    if len == 0 {
        return;
    }
    let at = |i: &Index| i.index(len);
    match mutation {
        Mutation::Flip(i, bit) => bytes[at(i)] ^= 1 << bit,
        Mutation::Overwrite(i, byte) => bytes[at(i)] = *byte,
        Mutation::WriteI32(i, v) => {
            let at = at(i).min(len.saturating_sub(4));
            let end = (at + 4).min(len);
            bytes[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
        }
        Mutation::WriteI64(i, v) => {
            // Aligned as the flatbuffer's i64 fields are, often enough.
            let at = (at(i) & !7).min(len.saturating_sub(8));
            let end = (at + 8).min(len);
            bytes[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
        }
        Mutation::InsertI32(i, v) => {
            let at = at(i);
            bytes.splice(at..at, v.to_le_bytes());
        }
        Mutation::Truncate(i) => bytes.truncate(at(i)),
        Mutation::Remove(i, n) => {
            let at = at(i);
            bytes.drain(at..(at + n).min(len));
        }
        Mutation::Splice(from, to, n) => {
            let (from, to) = (at(from), at(to));
            let n = (*n).min(len - from).min(len - to);
            bytes.copy_within(from..from + n, to);
        }
        Mutation::Duplicate(from, to, n) => {
            let (from, to) = (at(from), at(to));
            let copy = bytes[from..(from + n).min(len)].to_vec();
            bytes.splice(to..to, copy);
        }
        Mutation::Graft(seed, from) => {
            let other = &seeds[seed.index(seeds.len())];
            bytes.extend_from_slice(&other[from.index(other.len())..]);
        }
    }
}

/// A stream of `messages`, each a continuation marker, a length and bytes:
/// framed right, with garbage inside.
fn framed(messages: Vec<(i32, Vec<u8>)>, end: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (length, body) in messages {
        out.extend_from_slice(&[0xFF; 4]);
        out.extend_from_slice(&length.to_le_bytes());
        out.extend_from_slice(&body);
    }
    if end {
        out.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]);
    }
    out
}

/// The bytes of one case.
fn input(seeds: Arc<Vec<Vec<u8>>>) -> impl Strategy<Value = Vec<u8>> {
    let count = seeds.len();
    let mutated = (0..count, prop::collection::vec(mutation(), 1..8)).prop_map(move |(seed, mutations)| {
        let mut bytes = seeds[seed].clone();
        for m in &mutations {
            apply(&mut bytes, m, &seeds);
        }
        bytes
    });
    let garbage = prop::collection::vec(prop_oneof![special_byte(), any::<u8>()], 0..2048);
    let message = (prop_oneof![special_i32(), 0i32..256], prop::collection::vec(any::<u8>(), 0..512));
    let frames = (prop::collection::vec(message, 0..6), any::<bool>()).prop_map(|(messages, end)| framed(messages, end));
    prop_oneof![8 => mutated, 1 => garbage, 1 => frames]
}

/// Outcomes of the run so far: "accepted", or the first words of the
/// refusal (numbers left out), with their counts.
static OUTCOMES: std::sync::Mutex<std::collections::BTreeMap<String, usize>> = std::sync::Mutex::new(std::collections::BTreeMap::new());

fn outcome(result: &Result<super::ipc::Emitted, String>) -> String {
    match result {
        Ok(_) => "accepted".into(),
        Err(message) => {
            let words: Vec<&str> = message.split_whitespace().filter(|w| !w.chars().any(|c| c.is_ascii_digit())).take(12).collect();
            words.join(" ")
        }
    }
}

/// Decodes `bytes` and checks what the module promises about any input.
fn check(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let n = bytes.len();
    let limits = GuestLimits::default();
    let before = held();
    let started = Instant::now();
    let result = decode_emit(bytes, &limits);
    let elapsed = started.elapsed();
    let holding = held() - before;
    prop_assert!(elapsed < Duration::from_secs(2), "{n} bytes took {elapsed:?}");
    let bound = 8 * n as isize + (1 << 20);
    prop_assert!(holding <= bound, "{n} bytes in leave {holding} bytes held (bound {bound})");
    *OUTCOMES.lock().unwrap_or_else(|e| e.into_inner()).entry(outcome(&result)).or_default() += 1;
    match &result {
        Ok(emitted) => {
            prop_assert_eq!(emitted.ipc_bytes, n as u64);
            for batch in &emitted.batches {
                prop_assert!(check_writable(&batch.schema()).is_ok(), "{:?}", batch.schema());
            }
        }
        Err(message) => {
            prop_assert!(!message.is_empty());
            // A panic of arrow's is caught, but is a check missing here.
            prop_assert!(!message.contains("panicked"), "{message}");
            prop_assert!(message.len() <= limits.max_error_bytes + 64, "a message of {} bytes", message.len());
        }
    }
    drop(result);
    let left = held() - before;
    prop_assert!(left <= 64 << 10, "{left} bytes still held after the result is dropped");
    Ok(())
}

/// Writes what `decode_emit` accepts of `bytes` through an output sink into
/// `dir` and finishes it; checks the outcome.
fn check_written(bytes: Vec<u8>, dir: &std::path::Path) -> Result<(), TestCaseError> {
    let limits = GuestLimits::default();
    let Ok(emitted) = decode_emit(bytes, &limits) else { return Ok(()) };
    let _ = std::fs::remove_dir_all(dir);
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async {
            let mut sink = crate::output::OutputSink::local(dir.to_owned(), 1 << 30, u64::MAX);
            let mut rows = 0u64;
            let mut holds = emitted.ipc_bytes;
            for batch in &emitted.batches {
                sink.write_sized(batch, std::mem::take(&mut holds)).await.map_err(|e| e.to_string())?;
                rows += batch.num_rows() as u64;
            }
            let finished = sink.finish().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((rows, finished.committed().path.clone()))
        })
    }));
    let outcome = outcome.map_err(|panic| TestCaseError::fail(format!("the write path panicked: {}", super::panic_message(panic.as_ref()))))?;
    match outcome {
        Ok((rows, Some(_))) => {
            let file = std::fs::File::open(dir.join(crate::output::PART_FILE)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|builder| builder.build())
                .map_err(|e| TestCaseError::fail(format!("the file written does not read back: {e}")))?;
            let mut read = 0u64;
            for batch in reader {
                read += batch.map_err(|e| TestCaseError::fail(format!("the file written does not read back: {e}")))?.num_rows() as u64;
            }
            prop_assert_eq!(read, rows, "rows read back");
        }
        Ok((rows, None)) => prop_assert_eq!(rows, 0, "no file only for no batch"),
        // Refused: the writer's own words, never a caught panic.
        Err(message) => prop_assert!(!message.contains("cannot write this output") && !message.contains("panicked"), "{message}"),
    }
    Ok(())
}

#[test]
fn accepted_streams_are_written_and_finished_or_refused_without_a_panic() {
    let cases = std::env::var("CORRAL_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_CASES);
    let seed: u64 = std::env::var("CORRAL_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x00C0_22A2);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    // Every seed is written whole, then the mutations.
    for bytes in seeds() {
        check_written(bytes, &out).unwrap();
    }
    if let Err(e) = runner.run(&input(Arc::new(seeds())), |bytes| check_written(bytes, &out)) {
        panic!("{e}");
    }
}

#[test]
fn decode_emit_survives_mutated_and_garbage_streams() {
    let cases = std::env::var("CORRAL_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_CASES);
    let seed: u64 = std::env::var("CORRAL_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x00C0_22A1);
    let seeds = Arc::new(seeds());
    for seed in seeds.iter() {
        // The seeds themselves are accepted.
        decode_emit(seed.clone(), &GuestLimits::default()).unwrap();
    }
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    let started = Instant::now();
    let result = runner.run(&input(seeds), check);
    eprintln!("{cases} cases in {:?}; outcomes:", started.elapsed());
    for (outcome, count) in OUTCOMES.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        eprintln!("{count:8} {outcome}");
    }
    if let Err(e) = result {
        panic!("{e}");
    }
}
