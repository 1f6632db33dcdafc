//! The config table: read once from storage into Arrow batches shared by
//! every iteration, optionally indexed by a key column so that
//! `key == n` scans touch only the matching rows.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, UInt64Type};
use arrow_schema::{ArrowError, DataType, SchemaRef};
use arrow_select::coalesce::BatchCoalescer;
use bytes::Bytes;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::filter::{BoundScan, CmpOp, Literal, ScanError, ScanRequest};
use crate::job::{ConfigFormat, ConfigSpec};
use crate::location::Location;

/// Rows sampled to infer a CSV's schema when none is declared.
const INFER_ROWS: usize = 20_000;

/// Why the config table could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file does not exist.
    #[error("config file {0} not found")]
    NotFound(Location),
    /// Reading the file failed.
    #[error("cannot read config file {location}: {source}")]
    Read {
        /// The file.
        location: Location,
        /// The storage error.
        source: object_store::Error,
    },
    /// The file is not a CSV or Parquet file corral can parse.
    #[error("cannot parse config file {location} as {format}: {source}{hint}")]
    Parse {
        /// The file.
        location: Location,
        /// The format it was read as.
        format: &'static str,
        /// Arrow's or Parquet's message.
        source: ArrowError,
        /// What to try.
        hint: &'static str,
    },
    /// The partition key is not a column, or has a type that cannot be indexed.
    #[error("cannot index the config by `{column}`: {reason}")]
    PartitionKey {
        /// The key column.
        column: String,
        /// Why.
        reason: String,
    },
}

/// A partition key value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Null,
    Int(i64),
    UInt(u64),
    Text(String),
    Bool(bool),
}

/// The type a key column is normalised to before hashing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyKind {
    Int,
    UInt,
    Text,
    Bool,
}

/// Rows grouped by the key column.
#[derive(Debug)]
struct PartitionIndex {
    column: usize,
    kind: KeyKind,
    groups: HashMap<Key, Vec<RecordBatch>>,
}

/// The config table, in memory, shared by all iterations.
#[derive(Debug)]
pub struct ConfigTable {
    schema: SchemaRef,
    /// All rows; empty when an index holds them instead.
    batches: Vec<RecordBatch>,
    index: Option<PartitionIndex>,
    rows: usize,
    batch_rows: usize,
}

impl ConfigTable {
    /// Reads the config once from `store` and builds the index if asked.
    pub async fn load(spec: &ConfigSpec, store: &dyn ObjectStore) -> Result<ConfigTable, ConfigError> {
        let path = spec.location.prefix();
        let bytes = match store.get(&path).await {
            Ok(result) => result.bytes().await,
            Err(e) => Err(e),
        }
        .map_err(|source| match source {
            object_store::Error::NotFound { .. } => ConfigError::NotFound(spec.location.clone()),
            source => ConfigError::Read { location: spec.location.clone(), source },
        })?;
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || ConfigTable::parse(&spec, bytes))
            .await
            .expect("config parsing does not panic")
    }

    /// Parses the bytes of a config file.
    pub fn parse(spec: &ConfigSpec, bytes: Bytes) -> Result<ConfigTable, ConfigError> {
        let (schema, batches) = match spec.format {
            ConfigFormat::Csv => parse_csv(spec, bytes),
            ConfigFormat::Parquet => parse_parquet(bytes, spec.batch_rows),
        }
        .map_err(|(source, format, hint)| ConfigError::Parse {
            location: spec.location.clone(),
            format,
            source,
            hint,
        })?;
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        let mut table = ConfigTable { schema, batches, index: None, rows, batch_rows: spec.batch_rows };
        if let Some(key) = &spec.partition_by {
            table.build_index(key)?;
        }
        Ok(table)
    }

    /// The table's schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The number of rows.
    pub fn num_rows(&self) -> usize {
        self.rows
    }

    /// Bytes of Arrow memory held.
    pub fn memory_bytes(&self) -> usize {
        let batches = self.batches.iter();
        let groups = self.index.iter().flat_map(|i| i.groups.values().flatten());
        batches.chain(groups).map(RecordBatch::get_array_memory_size).sum()
    }

    fn build_index(&mut self, key: &str) -> Result<(), ConfigError> {
        let err = |reason: String| ConfigError::PartitionKey { column: key.to_owned(), reason };
        let column = self.schema.index_of(key).map_err(|_| {
            let names: Vec<_> = self.schema.fields().iter().map(|f| f.name().as_str()).collect();
            err(format!("no such column (columns: {})", names.join(", ")))
        })?;
        let data_type = self.schema.field(column).data_type();
        let kind = match data_type {
            t if t.is_signed_integer() => KeyKind::Int,
            t if t.is_unsigned_integer() => KeyKind::UInt,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => KeyKind::Text,
            DataType::Boolean => KeyKind::Bool,
            other => return Err(err(format!("its type {other} cannot be indexed (use an integer, string or boolean column)"))),
        };
        // Each loaded batch is split by key on its own; the batches are
        // shared out between the cores, and the parts gathered in order.
        let batches = std::mem::take(&mut self.batches);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, batches.len().max(1));
        let per_thread = batches.len().div_ceil(threads).max(1);
        let split = |batch: &RecordBatch| -> Result<Vec<(Key, RecordBatch)>, ArrowError> {
            let keys = normalise_keys(batch.column(column), kind)?;
            let mut rows_by_key: HashMap<Key, Vec<u32>> = HashMap::new();
            for row in 0..batch.num_rows() {
                rows_by_key.entry(key_at(&keys, kind, row)).or_default().push(row as u32);
            }
            rows_by_key
                .into_iter()
                .map(|(key, rows)| Ok((key, arrow_select::take::take_record_batch(batch, &UInt32Array::from(rows))?)))
                .collect()
        };
        // Each thread owns its batches and drops each once split, so that
        // the table is never held twice over.
        let mut owned = batches.into_iter();
        let chunks: Vec<Vec<RecordBatch>> =
            std::iter::from_fn(|| Some(owned.by_ref().take(per_thread).collect::<Vec<_>>()).filter(|c| !c.is_empty())).collect();
        let split = &split;
        let parts: Vec<Result<Vec<(Key, RecordBatch)>, ArrowError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    scope.spawn(move || {
                        let mut out = Vec::new();
                        for batch in chunk {
                            out.extend(split(&batch)?);
                        }
                        Ok(out)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("splitting a batch does not panic")).collect()
        });
        let mut slices: HashMap<Key, Vec<RecordBatch>> = HashMap::new();
        for chunk in parts {
            for (key, part) in chunk.map_err(|e| err(e.to_string()))? {
                slices.entry(key).or_default().push(part);
            }
        }
        // Each group is made of a part per loaded batch: concatenate them
        // once into batches of about the scan size (allocated to fit), so that
        // scans hand over few large batches without copying.
        let mut groups = HashMap::with_capacity(slices.len());
        for (key, parts) in slices {
            let mut out = Vec::new();
            let mut pending: Vec<RecordBatch> = Vec::new();
            let mut pending_rows = 0;
            for part in parts {
                pending_rows += part.num_rows();
                pending.push(part);
                if pending_rows >= self.batch_rows {
                    out.push(arrow_select::concat::concat_batches(&self.schema, &pending).map_err(|e| err(e.to_string()))?);
                    pending.clear();
                    pending_rows = 0;
                }
            }
            if !pending.is_empty() {
                out.push(arrow_select::concat::concat_batches(&self.schema, &pending).map_err(|e| err(e.to_string()))?);
            }
            groups.insert(key, out);
        }
        self.index = Some(PartitionIndex { column, kind, groups });
        Ok(())
    }

    /// Opens a scan: checks the request against the schema and picks the
    /// batches to read (one partition when the filter pins the key).
    pub fn scan(self: &Arc<Self>, request: &ScanRequest) -> Result<ConfigScan, ScanError> {
        let mut request = request.clone();
        let mut sources: Option<Vec<RecordBatch>> = None;
        if let Some(index) = &self.index {
            let key_name = self.schema.field(index.column).name();
            if let Some(pos) = request.filter.iter().position(|c| &c.column == key_name && c.op == CmpOp::Eq) {
                // Bind first so that an incomparable literal is still an error.
                BoundScan::bind(&ScanRequest { filter: vec![request.filter[pos].clone()], ..Default::default() }, &self.schema)?;
                let group = match lookup_key(&request.filter[pos].value, index.kind) {
                    KeyLookup::Key(key) => index.groups.get(&key).cloned().unwrap_or_default(),
                    KeyLookup::NoRows => Vec::new(),
                };
                request.filter.remove(pos);
                sources = Some(group);
            }
        }
        let sources = sources.unwrap_or_else(|| match &self.index {
            Some(index) => index.groups.values().flatten().cloned().collect(),
            None => self.batches.clone(),
        });
        let bound = BoundScan::bind(&request, &self.schema)?;
        let batch_rows = request.batch_rows.map_or(self.batch_rows, |n| n.max(1) as usize);
        Ok(ConfigScan {
            coalescer: BatchCoalescer::new(bound.output_schema.clone(), batch_rows),
            bound,
            sources: sources.into_iter(),
            batch_rows,
            rows_out: 0,
        })
    }
}

enum KeyLookup {
    Key(Key),
    NoRows,
}

fn lookup_key(value: &Literal, kind: KeyKind) -> KeyLookup {
    let key = match (value, kind) {
        (Literal::Null, _) => Some(Key::Null),
        (Literal::Int(v), KeyKind::Int) => Some(Key::Int(*v)),
        (Literal::Int(v), KeyKind::UInt) => u64::try_from(*v).ok().map(Key::UInt),
        (Literal::Uint(v), KeyKind::UInt) => Some(Key::UInt(*v)),
        (Literal::Uint(v), KeyKind::Int) => i64::try_from(*v).ok().map(Key::Int),
        (Literal::Float(v), KeyKind::Int) if v.fract() == 0.0 && v.abs() < 9.0e18 => Some(Key::Int(*v as i64)),
        (Literal::Float(v), KeyKind::UInt) if v.fract() == 0.0 && *v >= 0.0 && *v < 1.8e19 => Some(Key::UInt(*v as u64)),
        (Literal::Float(_), _) => None,
        (Literal::Text(v), KeyKind::Text) => Some(Key::Text(v.clone())),
        (Literal::Text(v), KeyKind::Int) => v.trim().parse().ok().map(Key::Int),
        (Literal::Text(v), KeyKind::UInt) => v.trim().parse().ok().map(Key::UInt),
        (Literal::Boolean(v), KeyKind::Bool) => Some(Key::Bool(*v)),
        _ => None,
    };
    key.map_or(KeyLookup::NoRows, KeyLookup::Key)
}

fn normalise_keys(column: &ArrayRef, kind: KeyKind) -> Result<ArrayRef, ArrowError> {
    let to = match kind {
        KeyKind::Int => DataType::Int64,
        KeyKind::UInt => DataType::UInt64,
        KeyKind::Text => DataType::Utf8,
        KeyKind::Bool => DataType::Boolean,
    };
    arrow_cast::cast(column, &to)
}

fn key_at(keys: &ArrayRef, kind: KeyKind, row: usize) -> Key {
    if keys.is_null(row) {
        return Key::Null;
    }
    match kind {
        KeyKind::Int => Key::Int(keys.as_primitive::<Int64Type>().value(row)),
        KeyKind::UInt => Key::UInt(keys.as_primitive::<UInt64Type>().value(row)),
        KeyKind::Text => Key::Text(keys.as_string::<i32>().value(row).to_owned()),
        KeyKind::Bool => Key::Bool(keys.as_boolean().value(row)),
    }
}

/// An open scan: yields filtered, projected batches of at most the scan's
/// batch size, never an empty one.
pub struct ConfigScan {
    bound: BoundScan,
    sources: std::vec::IntoIter<RecordBatch>,
    coalescer: BatchCoalescer,
    batch_rows: usize,
    rows_out: u64,
}

impl ConfigScan {
    /// The schema of the batches yielded.
    pub fn schema(&self) -> SchemaRef {
        self.bound.output_schema.clone()
    }

    /// Rows yielded so far.
    pub fn rows_out(&self) -> u64 {
        self.rows_out
    }

    /// The next batch, or `None` at the end.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, ScanError> {
        loop {
            if let Some(batch) = self.coalescer.next_completed_batch() {
                self.rows_out += batch.num_rows() as u64;
                return Ok(Some(batch));
            }
            match self.sources.next() {
                Some(source) => {
                    let batch = self.bound.apply(&source)?;
                    if batch.num_rows() == source.num_rows() && batch.num_rows() <= self.batch_rows {
                        // Nothing filtered out (an indexed scan): hand it over as is.
                        if batch.num_rows() > 0 {
                            self.rows_out += batch.num_rows() as u64;
                            return Ok(Some(batch));
                        }
                        continue;
                    }
                    // Slice big batches; coalesce small ones.
                    let mut offset = 0;
                    while offset < batch.num_rows() {
                        let len = self.batch_rows.min(batch.num_rows() - offset);
                        self.coalescer.push_batch(batch.slice(offset, len))?;
                        offset += len;
                    }
                }
                None if !self.coalescer.is_empty() => self.coalescer.finish_buffered_batch()?,
                None => return Ok(None),
            }
        }
    }
}

type ParseFailure = (ArrowError, &'static str, &'static str);

fn parse_csv(spec: &ConfigSpec, bytes: Bytes) -> Result<(SchemaRef, Vec<RecordBatch>), ParseFailure> {
    let schema = match &spec.schema {
        Some(schema) => schema.clone(),
        None => {
            let format = arrow_csv::reader::Format::default()
                .with_header(spec.header)
                .with_delimiter(spec.delimiter);
            let (schema, _) = format
                .infer_schema(Cursor::new(&bytes[..]), Some(INFER_ROWS))
                .map_err(|e| (e, "CSV", ""))?;
            Arc::new(schema)
        }
    };
    if schema.fields().is_empty() {
        return Err((ArrowError::CsvError("the file has no columns".into()), "CSV", ""));
    }
    if let Some(batches) = parse_csv_in_parallel(spec, &schema, &bytes) {
        return Ok((schema, batches));
    }
    let reader = arrow_csv::ReaderBuilder::new(schema.clone())
        .with_header(spec.header)
        .with_delimiter(spec.delimiter)
        .with_batch_size(spec.batch_rows)
        .build(Cursor::new(bytes))
        .map_err(|e| (e, "CSV", ""))?;
    let hint = if spec.schema.is_none() {
        " (the schema was inferred from the first rows; declare it with config.schema if later rows differ)"
    } else {
        ""
    };
    let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|e| (e, "CSV", hint))?;
    Ok((schema, batches))
}

/// Files smaller than this are parsed on one thread.
const PARALLEL_CSV_BYTES: usize = 8 << 20;

/// Parses a large CSV as one chunk per core, cut at line ends, in order.
/// Returns `None` (parse it on one thread) when the file is small, when a
/// chunk holds a quote (a quoted field may span lines, so cutting at line
/// ends would be wrong), or when a chunk fails (the one-thread parse then
/// reports the error with its true line number).
fn parse_csv_in_parallel(spec: &ConfigSpec, schema: &SchemaRef, bytes: &Bytes) -> Option<Vec<RecordBatch>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(16);
    if threads < 2 || bytes.len() < PARALLEL_CSV_BYTES {
        return None;
    }
    let start = if spec.header { bytes.iter().position(|&b| b == b'\n')? + 1 } else { 0 };
    let mut cuts = vec![start];
    for i in 1..threads {
        let from = (start + (bytes.len() - start) * i / threads).max(*cuts.last()?);
        match bytes[from..].iter().position(|&b| b == b'\n') {
            Some(at) => cuts.push(from + at + 1),
            None => break,
        }
    }
    cuts.push(bytes.len());
    cuts.dedup();
    let chunks: Vec<Bytes> = cuts.windows(2).map(|w| bytes.slice(w[0]..w[1])).collect();
    let parsed: Vec<Option<Vec<RecordBatch>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    if chunk.contains(&b'"') {
                        return None;
                    }
                    let reader = arrow_csv::ReaderBuilder::new(schema.clone())
                        .with_header(false)
                        .with_delimiter(spec.delimiter)
                        .with_batch_size(spec.batch_rows)
                        .build(Cursor::new(chunk))
                        .ok()?;
                    reader.collect::<Result<Vec<_>, _>>().ok()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().ok().flatten()).collect()
    });
    parsed.into_iter().try_fold(Vec::new(), |mut all, chunk| {
        all.extend(chunk?);
        Some(all)
    })
}

/// Parses a Parquet file, its row groups spread over the cores (each
/// thread decodes a contiguous run of row groups; the batches keep the
/// file's order).
fn parse_parquet(bytes: Bytes, batch_rows: usize) -> Result<(SchemaRef, Vec<RecordBatch>), ParseFailure> {
    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    let fail = |e: parquet::errors::ParquetError| (ArrowError::ExternalError(Box::new(e)), "Parquet", "");
    let metadata = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new()).map_err(fail)?;
    let schema = metadata.schema().clone();
    let row_groups = metadata.metadata().num_row_groups();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(16).min(row_groups.max(1));
    let read = |groups: Vec<usize>| -> Result<Vec<RecordBatch>, ParseFailure> {
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes.clone(), metadata.clone())
            .with_row_groups(groups)
            .with_batch_size(batch_rows)
            .build()
            .map_err(fail)?;
        reader.collect::<Result<Vec<_>, _>>().map_err(|e| (e, "Parquet", ""))
    };
    if threads < 2 {
        return Ok((schema, read((0..row_groups).collect())?));
    }
    let runs: Vec<Vec<usize>> =
        (0..threads).map(|t| (row_groups * t / threads..row_groups * (t + 1) / threads).collect()).collect();
    let parsed: Vec<Result<Vec<RecordBatch>, ParseFailure>> = std::thread::scope(|scope| {
        let read = &read;
        let handles: Vec<_> = runs.into_iter().map(|groups| scope.spawn(move || read(groups))).collect();
        handles.into_iter().map(|h| h.join().expect("decoding Parquet does not panic")).collect()
    });
    let mut batches = Vec::new();
    for run in parsed {
        batches.extend(run?);
    }
    Ok((schema, batches))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Comparison;
    use std::path::Path;

    fn table(partition_by: Option<&str>) -> Arc<ConfigTable> {
        let mut csv = String::from("id,k,v\n");
        for i in 0..1000 {
            csv.push_str(&format!("{i},{},{}.5\n", i % 7, i));
        }
        let spec = ConfigSpec {
            location: Location::parse("c.csv", Path::new("/")).unwrap(),
            format: ConfigFormat::Csv,
            partition_by: partition_by.map(String::from),
            schema: None,
            header: true,
            delimiter: b',',
            batch_rows: 64,
        };
        Arc::new(ConfigTable::parse(&spec, Bytes::from(csv)).unwrap())
    }

    fn large_csv(rows: usize, quoted_row: Option<usize>) -> (ConfigSpec, Bytes) {
        let mut csv = String::from("id,k,v,name\n");
        for i in 0..rows {
            if Some(i) == quoted_row {
                csv.push_str(&format!("{i},{},{}.25,\"two\nlines\"\n", i % 64, i));
            } else {
                csv.push_str(&format!("{i},{},{}.25,name_{}\n", i % 64, i, i % 977));
            }
        }
        assert!(csv.len() > PARALLEL_CSV_BYTES, "large enough to be cut: {}", csv.len());
        let spec = ConfigSpec {
            location: Location::parse("c.csv", Path::new("/")).unwrap(),
            format: ConfigFormat::Csv,
            partition_by: Some("k".into()),
            schema: None,
            header: true,
            delimiter: b',',
            batch_rows: 4096,
        };
        (spec, Bytes::from(csv))
    }

    fn all_rows(table: &ConfigTable) -> Vec<(i64, i64, f64, String)> {
        let mut rows = Vec::new();
        for batch in table.index.as_ref().unwrap().groups.values().flatten() {
            let (id, k) = (batch.column(0).as_primitive::<Int64Type>(), batch.column(1).as_primitive::<Int64Type>());
            let (v, name) = (batch.column(2).as_primitive::<arrow_array::types::Float64Type>(), batch.column(3).as_string::<i32>());
            for i in 0..batch.num_rows() {
                rows.push((id.value(i), k.value(i), v.value(i), name.value(i).to_owned()));
            }
        }
        rows.sort_by_key(|r| r.0);
        rows
    }

    #[test]
    fn a_parquet_file_of_many_row_groups_parses_in_order_over_the_cores() {
        let rows = 400_000;
        let (spec, csv) = large_csv(rows, None);
        let (_, batches) = parse_csv(&spec, csv).unwrap();
        let mut file = Vec::new();
        let properties = parquet::file::properties::WriterProperties::builder().set_max_row_group_row_count(Some(30_000)).build();
        let mut writer = parquet::arrow::ArrowWriter::try_new(&mut file, batches[0].schema(), Some(properties)).unwrap();
        for batch in &batches {
            writer.write(batch).unwrap();
        }
        let metadata = writer.close().unwrap();
        assert!(metadata.num_row_groups() > 10, "{} row groups", metadata.num_row_groups());
        let (_, parsed) = parse_parquet(Bytes::from(file), 4096).unwrap();
        assert!(parsed.iter().all(|b| b.num_rows() <= 4096));
        let ids: Vec<i64> = parsed.iter().flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec()).collect();
        assert_eq!(ids, (0..rows as i64).collect::<Vec<_>>(), "every row once, in the file's order");
        let names: Vec<String> =
            parsed.iter().flat_map(|b| (0..b.num_rows()).map(|i| b.column(3).as_string::<i32>().value(i).to_owned()).collect::<Vec<_>>()).collect();
        assert_eq!(names[12_345], format!("name_{}", 12_345 % 977));
    }

    #[test]
    fn a_large_csv_cut_into_chunks_parses_like_one_piece() {
        let rows = 400_000;
        let (spec, bytes) = large_csv(rows, None);
        let (schema, batches) = parse_csv(&spec, bytes.clone()).unwrap();
        let parallel = parse_csv_in_parallel(&spec, &schema, &bytes).expect("cut into chunks");
        assert_eq!(parallel.iter().map(RecordBatch::num_rows).sum::<usize>(), rows);
        let sequential: Vec<RecordBatch> = arrow_csv::ReaderBuilder::new(schema.clone())
            .with_header(true)
            .with_batch_size(4096)
            .build(Cursor::new(bytes.clone()))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let concat = |b: &[RecordBatch]| arrow_select::concat::concat_batches(&schema, b).unwrap();
        assert_eq!(concat(&parallel), concat(&sequential), "same rows in the same order");
        assert_eq!(concat(&batches), concat(&sequential));
        // And through the index, which also splits batches on every core.
        let table = ConfigTable::parse(&spec, bytes).unwrap();
        let got = all_rows(&table);
        assert_eq!(got.len(), rows);
        assert!(got.iter().enumerate().all(|(i, r)| r.0 == i as i64 && r.1 == (i % 64) as i64 && r.3 == format!("name_{}", i % 977)));
        let group = &table.index.as_ref().unwrap().groups;
        assert_eq!(group.len(), 64);
    }

    #[test]
    fn a_quoted_field_across_lines_is_parsed_on_one_thread() {
        let (spec, bytes) = large_csv(400_000, Some(123_456));
        let (schema, _) = parse_csv(&spec, bytes.clone()).unwrap();
        assert!(parse_csv_in_parallel(&spec, &schema, &bytes).is_none(), "a chunk holds a quote");
        let table = ConfigTable::parse(&spec, bytes).unwrap();
        let rows = all_rows(&table);
        assert_eq!(rows.len(), 400_000);
        assert_eq!(rows[123_456].3, "two\nlines");
    }

    fn ids(table: &Arc<ConfigTable>, request: ScanRequest) -> Vec<i64> {
        let mut scan = table.scan(&request).unwrap();
        let mut out = Vec::new();
        while let Some(batch) = scan.next_batch().unwrap() {
            assert!(batch.num_rows() > 0 && batch.num_rows() <= 64);
            out.extend(batch.column(0).as_primitive::<Int64Type>().values().iter().copied());
        }
        out.sort();
        out
    }

    #[test]
    fn indexed_and_plain_scans_agree() {
        let request = ScanRequest {
            columns: Some(vec!["id".into()]),
            filter: vec![
                Comparison { column: "k".into(), op: CmpOp::Eq, value: Literal::Int(3) },
                Comparison { column: "v".into(), op: CmpOp::Lt, value: Literal::Float(500.0) },
            ],
            batch_rows: None,
        };
        let expected: Vec<i64> = (0..500).filter(|i| i % 7 == 3).collect();
        assert_eq!(ids(&table(None), request.clone()), expected);
        assert_eq!(ids(&table(Some("k")), request), expected);
    }

    #[test]
    fn an_absent_key_scans_nothing_and_full_scans_see_every_row() {
        let t = table(Some("k"));
        let absent = ScanRequest {
            filter: vec![Comparison { column: "k".into(), op: CmpOp::Eq, value: Literal::Int(99) }],
            ..Default::default()
        };
        assert!(ids(&t, absent).is_empty());
        assert_eq!(ids(&t, ScanRequest::default()), (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn a_bad_partition_key_is_named() {
        let spec = ConfigSpec {
            location: Location::parse("c.csv", Path::new("/")).unwrap(),
            format: ConfigFormat::Csv,
            partition_by: Some("v".into()),
            schema: None,
            header: true,
            delimiter: b',',
            batch_rows: 64,
        };
        let err = ConfigTable::parse(&spec, Bytes::from("id,v\n1,2.5\n")).unwrap_err();
        assert!(err.to_string().contains("`v`"), "{err}");
    }
}
