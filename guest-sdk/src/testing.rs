//! Running a transform natively in tests: [`MemoryHost`] serves given
//! batches to every scan (projection applied, filter not) and keeps what the
//! transform emits.
//!
//! ```
//! use std::sync::Arc;
//! use corral_guest::arrow_array::{Float64Array, RecordBatch, cast::AsArray, types::Float64Type};
//! use corral_guest::arrow_schema::{DataType, Field, Schema};
//! use corral_guest::testing::MemoryHost;
//! use corral_guest::{Context, Result, emit, scan};
//!
//! fn double(ctx: &Context) -> Result<()> {
//!     for batch in scan().select(["v"]).open()? {
//!         let v = batch?.column(0).as_primitive::<Float64Type>().unary::<_, Float64Type>(|v| v * 2.0);
//!         let schema = Arc::new(Schema::new(vec![Field::new("v2", DataType::Float64, true)]));
//!         emit(&RecordBatch::try_new(schema, vec![Arc::new(v)])?)?;
//!     }
//!     Ok(())
//! }
//!
//! let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Float64, true)]));
//! let input = RecordBatch::try_new(schema, vec![Arc::new(Float64Array::from(vec![1.0, 2.5]))]).unwrap();
//! let (host, result) = corral_guest::run_native(MemoryHost::new(vec![input]), Context::new(1, "{}", "doc"), double);
//! result.unwrap();
//! let out = &host.emitted()[0];
//! assert_eq!(out.column(0).as_primitive::<Float64Type>().values(), &[2.0, 5.0]);
//! ```

use arrow_array::RecordBatch;

use crate::scan::ScanRequest;
use crate::sys::{Level, NativeHost};
use crate::ipc;

/// A native host over batches held in memory.
#[derive(Debug, Default)]
pub struct MemoryHost {
    input: Vec<RecordBatch>,
    emitted: Vec<RecordBatch>,
    logs: Vec<(Level, String)>,
}

impl MemoryHost {
    /// A host whose scans yield `input` (projected; filters are not applied).
    pub fn new(input: Vec<RecordBatch>) -> Self {
        MemoryHost { input, ..Default::default() }
    }

    /// The batches the transform emitted.
    pub fn emitted(&self) -> &[RecordBatch] {
        &self.emitted
    }

    /// The lines the transform logged.
    pub fn logs(&self) -> &[(Level, String)] {
        &self.logs
    }
}

impl NativeHost for MemoryHost {
    fn log(&mut self, level: Level, message: &str) {
        self.logs.push((level, message.to_owned()));
    }

    fn open_scan(&mut self, request: &ScanRequest) -> Result<(Vec<u8>, Box<dyn Iterator<Item = Vec<u8>>>), String> {
        let project = |batch: &RecordBatch| -> Result<RecordBatch, String> {
            match &request.columns {
                None => Ok(batch.clone()),
                Some(columns) => {
                    let indices = columns
                        .iter()
                        .map(|c| batch.schema().index_of(c).map_err(|e| e.to_string()))
                        .collect::<Result<Vec<_>, _>>()?;
                    batch.project(&indices).map_err(|e| e.to_string())
                }
            }
        };
        let batches = self.input.iter().map(project).collect::<Result<Vec<_>, _>>()?;
        let schema = match batches.first() {
            Some(batch) => ipc::encode_schema(&batch.schema()),
            None => return Err("the MemoryHost has no input batch".into()),
        }
        .map_err(|e| e.to_string())?;
        let encoded = batches.iter().map(ipc::encode).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
        Ok((schema, Box::new(encoded.into_iter())))
    }

    fn emit(&mut self, batch: Vec<u8>) -> Result<(), String> {
        let (_, batches) = ipc::decode(batch).map_err(|e| format!("{e:#}"))?;
        self.emitted.extend(batches);
        Ok(())
    }
}
