//! What one iteration's store holds, and the host imports of the
//! `transform` world served from it: log, scans of the config table, emit.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteContext, IpcWriteOptions, StreamWriter, write_message};
use arrow_schema::{DataType, SchemaRef};
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::corral::transform::{host, types};
use super::limiter::MemoryLimiter;
use crate::config_table::{ConfigScan, ConfigTable};
use crate::deadline::Deadline;
use crate::filter::{CmpOp, Comparison, Literal, ScanError, ScanRequest};
use crate::guest_input::{self, GuestLimits, text};
use crate::output::{OutputError, OutputSink};
use crate::schema_memo::LastSchema;

/// An open scan, as the guest's `scan` resource, with the host memory it
/// held when last counted.
pub struct GuestScan {
    scan: ConfigScan,
    held: usize,
}

/// Why the iteration cannot succeed whatever the guest returns: found while
/// serving its imports.
#[derive(Debug)]
pub enum HostFailure {
    /// The guest emitted something invalid.
    InvalidOutput(String),
    /// Storage failed under an emit.
    Storage(String),
    /// The host memory held for the iteration's output, with its linear
    /// memory, went over its memory cap.
    MemoryLimit(String),
}

/// The data of one iteration's store.
pub struct IterationState {
    pub(crate) iteration: i64,
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    config: Arc<ConfigTable>,
    pub(crate) sink: Option<OutputSink>,
    pub(crate) failure: Option<HostFailure>,
    pub(crate) rows_in: u64,
    log_bytes: u64,
    schema_messages: Arc<SchemaMessages>,
    /// What the guest may hand the host.
    limits: GuestLimits,
    /// When host work for this iteration must stop.
    deadline: Deadline,
    /// Scans the guest holds open.
    open_scans: usize,
    /// Host memory the open scans hold of their own, as last counted.
    scans_held: usize,
}

impl IterationState {
    /// The state for `iteration`, reading `config` (its scans' schemas
    /// encoded by `schema_messages`), writing to `sink`.
    /// The guest's input is checked against `limits`; host work on its
    /// behalf stops at `deadline`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        iteration: i64,
        wasi: WasiCtx,
        limiter: MemoryLimiter,
        config: Arc<ConfigTable>,
        schema_messages: Arc<SchemaMessages>,
        sink: OutputSink,
        limits: GuestLimits,
        deadline: Deadline,
    ) -> Self {
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_handles);
        IterationState {
            iteration,
            wasi,
            table,
            limiter,
            config,
            schema_messages,
            sink: Some(sink),
            failure: None,
            rows_in: 0,
            log_bytes: 0,
            limits,
            deadline,
            open_scans: 0,
            scans_held: 0,
        }
    }

    fn fail(&mut self, failure: HostFailure) -> String {
        let message = match &failure {
            HostFailure::InvalidOutput(m) | HostFailure::Storage(m) | HostFailure::MemoryLimit(m) => m.clone(),
        };
        self.failure.get_or_insert(failure);
        message
    }

    /// Whether what the host holds for this iteration (its output's
    /// buffers and its open scans' own rows) and its linear memory still
    /// fit its memory cap; if not, the iteration fails as `memory_limit`.
    fn check_memory(&mut self) -> Result<(), String> {
        let output = self.sink.as_ref().map_or(0, OutputSink::memory_bytes);
        let scans = self.scans_held as u64;
        let (guest, cap) = (self.limiter.current(), self.limiter.cap());
        if output.saturating_add(scans).saturating_add(guest) <= cap {
            return Ok(());
        }
        let message = format!(
            "the host holds {output} bytes of this iteration's output and {scans} bytes of its open scans' rows, \
             and its linear memory is {guest} bytes: together over its cap of {cap} bytes (limits.memory)"
        );
        Err(self.fail(HostFailure::MemoryLimit(message)))
    }
}

impl WasiView for IterationState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Encodes one batch as a complete IPC stream.
pub(crate) fn encode_ipc(batch: &RecordBatch) -> Result<Vec<u8>, arrow_schema::ArrowError> {
    let mut writer = StreamWriter::try_new(Vec::with_capacity(batch.get_array_memory_size() + 1024), &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    writer.into_inner()
}

/// The IPC schema message of the run's scans, encoded once rather than
/// twice an iteration (a scan's `schema` and every batch's stream start
/// with it): byte for byte what `StreamWriter` writes. Schemas with
/// dictionaries are encoded whole each time, as their messages carry
/// dictionary ids.
#[derive(Debug, Default)]
pub struct SchemaMessages {
    last: LastSchema<SchemaMessage>,
}

/// One schema's encoding.
#[derive(Debug)]
struct SchemaMessage {
    /// The schema message, then the end-of-stream marker.
    stream: Vec<u8>,
    /// Where the end-of-stream marker starts.
    end: usize,
}

impl SchemaMessages {
    /// The encoding of `schema`, unless it has dictionaries.
    fn get(&self, schema: &SchemaRef) -> Result<Option<Arc<SchemaMessage>>, arrow_schema::ArrowError> {
        if schema.flattened_fields().iter().any(|f| matches!(f.data_type(), DataType::Dictionary(..))) {
            return Ok(None);
        }
        let message = self.last.get_or_try_make(schema, || {
            let mut writer = StreamWriter::try_new(Vec::new(), schema)?;
            let end = writer.get_ref().len();
            writer.finish()?;
            Ok::<_, arrow_schema::ArrowError>(SchemaMessage { stream: writer.into_inner()?, end })
        })?;
        Ok(Some(message))
    }

    /// `schema` as an IPC stream with no batch.
    fn schema_only(&self, schema: &SchemaRef) -> Result<Vec<u8>, arrow_schema::ArrowError> {
        match self.get(schema)? {
            Some(message) => Ok(message.stream.clone()),
            None => encode_schema_only(schema),
        }
    }

    /// `batch` as a complete IPC stream, as [`encode_ipc`] writes it.
    fn stream(&self, batch: &RecordBatch) -> Result<Vec<u8>, arrow_schema::ArrowError> {
        let Some(message) = self.get(&batch.schema())? else { return encode_ipc(batch) };
        let mut out = Vec::with_capacity(message.stream.len() + batch.get_array_memory_size() + 1024);
        out.extend_from_slice(&message.stream[..message.end]);
        let options = IpcWriteOptions::default();
        let (dictionaries, encoded) =
            IpcDataGenerator::default().encode(batch, &mut DictionaryTracker::new(false), &options, &mut IpcWriteContext::default())?;
        debug_assert!(dictionaries.is_empty(), "a schema without dictionaries");
        write_message(&mut out, encoded, &options)?;
        out.extend_from_slice(&message.stream[message.end..]);
        Ok(out)
    }
}

/// Decodes every batch of one complete IPC stream (validating it).
#[cfg(test)]
fn decode_ipc(bytes: Vec<u8>) -> Result<Vec<RecordBatch>, String> {
    let mut decoder = arrow_ipc::reader::StreamDecoder::new();
    let mut buffer = arrow_buffer::Buffer::from_vec(bytes);
    let mut batches = Vec::new();
    while !buffer.is_empty() {
        match decoder.decode(&mut buffer) {
            Ok(Some(batch)) => batches.push(batch),
            Ok(None) => {}
            Err(e) => return Err(format!("not a well-formed Arrow IPC stream: {e}")),
        }
    }
    decoder.finish().map_err(|e| format!("not a complete Arrow IPC stream: {e}"))?;
    Ok(batches)
}

fn to_request(request: types::ScanRequest) -> ScanRequest {
    ScanRequest {
        columns: request.columns,
        filter: request
            .filter
            .into_iter()
            .map(|c| Comparison {
                column: c.column,
                op: match c.op {
                    types::ComparisonOp::Eq => CmpOp::Eq,
                    types::ComparisonOp::Ne => CmpOp::Ne,
                    types::ComparisonOp::Lt => CmpOp::Lt,
                    types::ComparisonOp::Le => CmpOp::Le,
                    types::ComparisonOp::Gt => CmpOp::Gt,
                    types::ComparisonOp::Ge => CmpOp::Ge,
                },
                value: match c.value {
                    types::Literal::Null => Literal::Null,
                    types::Literal::Boolean(v) => Literal::Boolean(v),
                    types::Literal::Int(v) => Literal::Int(v),
                    types::Literal::Uint(v) => Literal::Uint(v),
                    types::Literal::Float(v) => Literal::Float(v),
                    types::Literal::Text(v) => Literal::Text(v),
                },
            })
            .collect(),
        batch_rows: request.batch_rows,
    }
}

impl types::Host for IterationState {}

impl host::Host for IterationState {
    async fn log(&mut self, level: host::Level, message: String) -> wasmtime::Result<()> {
        let budget = self.limits.max_log_bytes;
        if self.log_bytes >= budget {
            return Ok(());
        }
        // Each line costs its bytes and a host line's own (time, level,
        // iteration): empty lines are not free.
        self.log_bytes += message.len() as u64 + guest_input::LOG_LINE_OVERHEAD;
        // Inert and short: one guest line can never look like a host line.
        let message = text::line(&message, self.limits.max_log_line_bytes);
        let iteration = self.iteration;
        match level {
            host::Level::Trace => tracing::trace!(target: "corral::guest", iteration, "{message}"),
            host::Level::Debug => tracing::debug!(target: "corral::guest", iteration, "{message}"),
            host::Level::Info => tracing::info!(target: "corral::guest", iteration, "{message}"),
            host::Level::Warn => tracing::warn!(target: "corral::guest", iteration, "{message}"),
            host::Level::Error => tracing::error!(target: "corral::guest", iteration, "{message}"),
        }
        if self.log_bytes >= budget {
            tracing::warn!(target: "corral::guest", iteration, "further log lines of this iteration are dropped (over {budget} bytes)");
        }
        Ok(())
    }

    async fn open_scan(&mut self, request: types::ScanRequest) -> wasmtime::Result<Result<Resource<GuestScan>, String>> {
        // Test hook, compiled into debug builds only: a bug of ours, on demand,
        // to show that a host panic fails one iteration and not the run.
        #[cfg(debug_assertions)]
        if std::env::var("CORRAL_TEST_HOST_PANIC").is_ok_and(|n| n == self.iteration.to_string()) {
            panic!("CORRAL_TEST_HOST_PANIC: host panic serving iteration {}", self.iteration);
        }
        if self.open_scans >= self.limits.max_open_scans {
            return Ok(Err(format!(
                "scan request refused: {} scans are open, the limit (each holds host memory); drop a scan before opening another",
                self.open_scans
            )));
        }
        let request = match guest_input::scan::validate(to_request(request), &self.limits) {
            Ok(request) => request,
            Err(message) => return Ok(Err(message)),
        };
        match self.config.scan(&request, &self.limits, self.deadline.clone()) {
            Ok(scan) => {
                let scan = self.table.push(GuestScan { scan, held: 0 })?;
                self.open_scans += 1;
                Ok(Ok(scan))
            }
            Err(ScanError::Stopped(stop)) => Err(wasmtime::Error::new(stop)),
            // The message names the guest's columns and literals: inert and short.
            Err(e) => Ok(Err(text::line(&e.to_string(), self.limits.max_error_bytes))),
        }
    }

    async fn emit(&mut self, batch: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        if self.failure.is_some() {
            return Ok(Err("an earlier emit failed; this iteration's output is discarded".into()));
        }
        let emitted = match guest_input::ipc::decode_emit_until(batch, &self.limits, &self.deadline) {
            Ok(Ok(emitted)) => emitted,
            Ok(Err(message)) => return Ok(Err(self.fail(HostFailure::InvalidOutput(message)))),
            Err(stop) => return Err(wasmtime::Error::new(stop)),
        };
        let sink = self.sink.as_mut().expect("the sink lives until the call returns");
        // The batches of one stream share its buffer: the first holds it.
        let mut holds = emitted.ipc_bytes;
        for batch in &emitted.batches {
            if let Err(e) = sink.write_sized(batch, std::mem::take(&mut holds)).await {
                let failure = match e {
                    OutputError::Stopped(stop) => return Err(wasmtime::Error::new(stop)),
                    e if e.is_storage() => HostFailure::Storage(format!("writing the output failed: {e}")),
                    e => HostFailure::InvalidOutput(e.to_string()),
                };
                return Ok(Err(self.fail(failure)));
            }
        }
        // What the host holds for this output counts against the
        // iteration's memory, with its linear memory.
        Ok(self.check_memory())
    }
}

impl host::HostScan for IterationState {
    async fn schema(&mut self, scan: Resource<GuestScan>) -> wasmtime::Result<Vec<u8>> {
        let scan = self.table.get(&scan)?;
        Ok(self.schema_messages.schema_only(&scan.scan.schema())?)
    }

    async fn next(&mut self, scan: Resource<GuestScan>) -> wasmtime::Result<Option<Vec<u8>>> {
        let scan = self.table.get_mut(&scan)?;
        let next = scan.scan.next_batch();
        // What the scan holds of its own counts against the iteration's
        // memory, with its output and its linear memory.
        let held = scan.scan.memory_bytes();
        self.scans_held = self.scans_held.saturating_sub(std::mem::replace(&mut scan.held, held)).saturating_add(held);
        let batch = match next {
            Ok(Some(batch)) => batch,
            Ok(None) => return Ok(None),
            Err(ScanError::Stopped(stop)) => return Err(wasmtime::Error::new(stop)),
            Err(e) => return Err(e.into()),
        };
        if let Err(message) = self.check_memory() {
            return Err(wasmtime::Error::msg(message));
        }
        self.rows_in += batch.num_rows() as u64;
        Ok(Some(self.schema_messages.stream(&batch)?))
    }

    async fn drop(&mut self, scan: Resource<GuestScan>) -> wasmtime::Result<()> {
        let scan = self.table.delete(scan)?;
        self.scans_held = self.scans_held.saturating_sub(scan.held);
        self.open_scans = self.open_scans.saturating_sub(1);
        Ok(())
    }
}

fn encode_schema_only(schema: &SchemaRef) -> Result<Vec<u8>, arrow_schema::ArrowError> {
    let mut writer = StreamWriter::try_new(Vec::new(), schema)?;
    writer.finish()?;
    writer.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, DictionaryArray, Float64Array, Int64Array, StringArray};
    use arrow_array::types::Int32Type;

    #[test]
    fn cached_schema_messages_give_the_bytes_of_a_stream_writer() {
        let a = RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(vec![Some(1), None, Some(3), Some(4)])) as ArrayRef),
            ("name", Arc::new(StringArray::from(vec!["a", "bb", "ccc", "dddd"])) as ArrayRef),
        ])
        .unwrap();
        let b = RecordBatch::try_from_iter([("score", Arc::new(Float64Array::from(vec![0.5])) as ArrayRef)]).unwrap();
        let keys = DictionaryArray::<Int32Type>::from_iter(["x", "y", "x"]);
        let dictionary = RecordBatch::try_from_iter([("k", Arc::new(keys) as ArrayRef)]).unwrap();
        let messages = SchemaMessages::default();
        // Schemas in turn, a slice, and a dictionary column (encoded whole):
        // every stream and schema is what the writer makes, and decodes back.
        for batch in [a.clone(), a.slice(1, 2), b.clone(), a.slice(3, 1), dictionary.clone(), a.clone()] {
            let stream = messages.stream(&batch).unwrap();
            assert_eq!(stream, encode_ipc(&batch).unwrap(), "{:?}", batch.schema());
            assert_eq!(decode_ipc(stream).unwrap(), [batch.clone()]);
            let schema = messages.schema_only(&batch.schema()).unwrap();
            assert_eq!(schema, encode_schema_only(&batch.schema()).unwrap());
        }
    }
}
