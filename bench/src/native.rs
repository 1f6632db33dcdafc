//! The seed-model transform compiled natively and served by the same host
//! pipeline as its Wasm build (the config table's scans, Arrow IPC both
//! ways, the Parquet output sink), so that the two differ only by the
//! sandbox.

use std::sync::Arc;

use arrow_array::RecordBatch;
use corral::config_table::{ConfigScan, ConfigTable};
use corral::filter::{CmpOp, Comparison, Literal, ScanRequest};
use corral::output::OutputSink;
use corral_guest::{Level, NativeHost};

/// A [`NativeHost`] over corral's config table and one iteration's sink.
pub struct PipelineHost {
    config: Arc<ConfigTable>,
    sink: OutputSink,
    runtime: tokio::runtime::Handle,
    /// The first error writing the output, if any.
    pub error: Option<String>,
}

impl PipelineHost {
    /// A host for one iteration; writes go through `runtime`.
    pub fn new(config: Arc<ConfigTable>, sink: OutputSink, runtime: tokio::runtime::Handle) -> Self {
        PipelineHost { config, sink, runtime, error: None }
    }

    /// The sink, to commit.
    pub fn into_sink(self) -> OutputSink {
        self.sink
    }
}

fn encode(batch: &RecordBatch) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut bytes, &batch.schema()).expect("an IPC writer");
    writer.write(batch).expect("an IPC batch");
    writer.finish().expect("an IPC stream");
    drop(writer);
    bytes
}

fn request(request: &corral_guest::ScanRequest) -> ScanRequest {
    use corral_guest::{Literal as L, Op};
    ScanRequest {
        columns: request.columns.clone(),
        filter: request
            .filter
            .iter()
            .map(|c| Comparison {
                column: c.column.clone(),
                op: match c.op {
                    Op::Eq => CmpOp::Eq,
                    Op::Ne => CmpOp::Ne,
                    Op::Lt => CmpOp::Lt,
                    Op::Le => CmpOp::Le,
                    Op::Gt => CmpOp::Gt,
                    Op::Ge => CmpOp::Ge,
                },
                value: match &c.value {
                    L::Null => Literal::Null,
                    L::Boolean(v) => Literal::Boolean(*v),
                    L::Int(v) => Literal::Int(*v),
                    L::Uint(v) => Literal::Uint(*v),
                    L::Float(v) => Literal::Float(*v),
                    L::Text(v) => Literal::Text(v.clone()),
                },
            })
            .collect(),
        batch_rows: request.batch_rows,
    }
}

struct Batches(ConfigScan);

impl Iterator for Batches {
    type Item = Vec<u8>;
    fn next(&mut self) -> Option<Vec<u8>> {
        self.0.next_batch().expect("a scan batch").map(|b| encode(&b))
    }
}

impl NativeHost for PipelineHost {
    fn log(&mut self, _level: Level, _message: &str) {}

    fn open_scan(&mut self, scan: &corral_guest::ScanRequest) -> Result<(Vec<u8>, Box<dyn Iterator<Item = Vec<u8>>>), String> {
        let scan = self.config.scan(&request(scan), &corral::guest_input::GuestLimits::default(), corral::deadline::Deadline::never()).map_err(|e| e.to_string())?;
        let schema = encode(&RecordBatch::new_empty(scan.schema()));
        Ok((schema, Box::new(Batches(scan))))
    }

    fn emit(&mut self, bytes: Vec<u8>) -> Result<(), String> {
        let reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).map_err(|e| e.to_string())?;
        for batch in reader {
            let batch = batch.map_err(|e| e.to_string())?;
            if let Err(e) = self.runtime.block_on(self.sink.write(&batch)) {
                self.error.get_or_insert(e.to_string());
                return Err(e.to_string());
            }
        }
        Ok(())
    }
}
