//! The config table: read once from storage into Arrow batches shared by
//! every iteration, optionally indexed by a key column so that
//! `key == n` scans touch only the matching rows.
//!
//! The file streams through the parser as it is read (its bytes are never
//! held whole, for CSV), parsed on every core; an index is built batch by
//! batch on the parsing threads.

mod csv;
mod index;
mod parquet;
mod source;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use arrow_array::{RecordBatch, UInt32Array};
use arrow_schema::{ArrowError, SchemaRef};
use arrow_select::coalesce::BatchCoalescer;
use bytes::Bytes;
use object_store::{ObjectStore, ObjectStoreExt};

use self::csv::{CsvFailure, CsvHead};
use self::index::{Assembled, Assembler, KeyKind, KeyLookup, Layout, PartitionIndex, PositionIndex, lookup_key};
use self::parquet::ParquetFile;
use self::source::{ByteSource, ChunkReader};
use crate::deadline::Deadline;
use crate::filter::{BoundScan, CmpOp, ScanError, ScanRequest};
use crate::guest_input::GuestLimits;
use crate::guest_input::scan::clamp_batch_rows;
use crate::job::{ConfigFormat, ConfigSpec};
use crate::location::Location;

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

/// The config table, in memory, shared by all iterations.
#[derive(Debug)]
pub struct ConfigTable {
    schema: SchemaRef,
    /// All rows; empty when an index holds them instead.
    batches: Vec<RecordBatch>,
    index: Option<PartitionIndex>,
    rows: usize,
    batch_rows: usize,
    /// Per column, the index built on its first `column == v` scan when no
    /// index was declared (`None` inside: not indexable, or over the limit).
    first_filter_indexes: Vec<OnceLock<Option<PositionIndex>>>,
    first_filter_indexes_built: AtomicUsize,
    /// The declared key, when it had too many keys to partition and its
    /// positions were indexed at load instead (in `first_filter_indexes`).
    declared_positions: Option<usize>,
    /// Bytes of an average row, as loaded.
    row_bytes: usize,
    /// The file as it was read ([`crate::inputs::config_identity`]);
    /// `memory` for a table parsed from bytes.
    identity: String,
}

/// Opens the config file for reading (again, if a parse must be redone).
type Open<'a> = dyn FnMut() -> Result<ByteSource, ConfigError> + 'a;

impl ConfigTable {
    /// Reads the config once from `store`, parsing it as it streams in, and
    /// builds the index if asked.
    pub async fn load(spec: &ConfigSpec, store: Arc<dyn ObjectStore>) -> Result<ConfigTable, ConfigError> {
        let spec = spec.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let location = spec.location.clone();
            // The identity of the first read: a parse redone for its error
            // message reads the file again, but then there is no table.
            let identity = OnceLock::new();
            let mut open = || {
                let path = location.prefix();
                handle
                    .block_on(async {
                        let read = store.get(&path).await?;
                        identity.get_or_init(|| crate::inputs::config_identity(&read.meta, location.as_local().is_some()));
                        ByteSource::of(read)
                    })
                    .map_err(|source| match source {
                        object_store::Error::NotFound { .. } => ConfigError::NotFound(location.clone()),
                        source => ConfigError::Read { location: location.clone(), source },
                    })
            };
            let mut table = ConfigTable::read(&spec, &mut open)?;
            table.identity = identity.into_inner().unwrap_or_default();
            Ok(table)
        })
        .await
        .expect("config parsing does not panic")
    }

    /// Parses the bytes of a config file.
    pub fn parse(spec: &ConfigSpec, bytes: Bytes) -> Result<ConfigTable, ConfigError> {
        ConfigTable::read(spec, &mut || Ok(ByteSource::Memory(Some(bytes.clone()))))
    }

    fn read(spec: &ConfigSpec, open: &mut Open<'_>) -> Result<ConfigTable, ConfigError> {
        let read_error = |source| ConfigError::Read { location: spec.location.clone(), source };
        let parse_error = |format, source, hint| ConfigError::Parse { location: spec.location.clone(), format, source, hint };
        let key_error = |reason: String| ConfigError::PartitionKey {
            column: spec.partition_by.clone().unwrap_or_default(),
            reason,
        };
        let inferred_hint = if spec.schema.is_none() {
            " (the schema was inferred from the first rows; declare it with config.schema if later rows differ)"
        } else {
            ""
        };
        let csv_error = |failure, hint| match failure {
            CsvFailure::Read(source) => read_error(source),
            CsvFailure::Parse(source) => parse_error("CSV", source, hint),
        };
        let (schema, table) = match spec.format {
            ConfigFormat::Csv => {
                let head = CsvHead::read(spec, open()?).map_err(|f| csv_error(f, ""))?;
                let schema = head.schema.clone();
                let layout = Layout::new(&schema, spec.partition_by.as_deref()).map_err(key_error)?;
                let mut table = Assembler::new(layout.clone(), schema.clone(), spec.batch_rows);
                match head.parse_parallel(spec, &mut table) {
                    Ok(()) => {}
                    Err(CsvFailure::Read(source)) => return Err(read_error(source)),
                    Err(CsvFailure::Parse(_)) => {
                        // A block's line numbers are not the file's: parse
                        // the file again on one thread, for arrow's own
                        // message with the true line (or, should the cut
                        // have been wrong, the rows).
                        let reader = ChunkReader::new(Bytes::new(), open()?);
                        let prepared = csv::parse_sequential(spec, &schema, reader, spec.header, &layout)
                            .map_err(|f| csv_error(f, inferred_hint))?;
                        table = Assembler::new(layout, schema.clone(), spec.batch_rows);
                        table.push_all(prepared).map_err(|e| key_error(e.to_string()))?;
                    }
                }
                (schema, table)
            }
            ConfigFormat::Parquet => {
                let bytes = open()?.read_all().map_err(read_error)?;
                let file = ParquetFile::open(bytes).map_err(|e| parse_error("Parquet", e, ""))?;
                let schema = file.schema();
                let layout = Layout::new(&schema, spec.partition_by.as_deref()).map_err(key_error)?;
                let prepared = file.decode(spec.batch_rows, &layout).map_err(|e| parse_error("Parquet", e, ""))?;
                let mut table = Assembler::new(layout, schema.clone(), spec.batch_rows);
                table.push_all(prepared).map_err(|e| key_error(e.to_string()))?;
                (schema, table)
            }
        };
        let Assembled { batches, partitions: index, positions } = table.finish().map_err(|e| key_error(e.to_string()))?;
        let groups = index.iter().flat_map(|i| i.groups.values().flatten());
        let rows = batches.iter().chain(groups).map(RecordBatch::num_rows).sum();
        if let (Some(index), Some(key)) = (&index, &spec.partition_by) {
            let keys = index.groups.len();
            if few_rows_a_key(keys, rows) {
                tracing::warn!(
                    keys,
                    rows,
                    "config.partition_by = `{key}` has {keys} keys for {rows} rows: each key's few rows are a batch of their own, \
                     which costs more memory and load time than it saves; for a key this selective, leave partition_by unset \
                     (the first `{key} == v` scan then indexes the rows' positions: 4 bytes a row and a hash entry a key)"
                );
            }
        }
        let first_filter_indexes: Vec<OnceLock<Option<PositionIndex>>> = schema.fields().iter().map(|_| OnceLock::new()).collect();
        let declared_positions = positions.map(|(column, index)| {
            if let Some(key) = &spec.partition_by {
                tracing::info!(
                    keys = index.keys(),
                    rows,
                    bytes = index.memory_bytes(),
                    "config.partition_by = `{key}` has too many keys to partition ({} for {rows} rows): the rows are kept as read \
                     and each key's row positions indexed instead (4 bytes a row and a hash entry a key)",
                    index.keys()
                );
            }
            first_filter_indexes[column].set(Some(index)).expect("a new table's indexes are unset");
            column
        });
        Ok(ConfigTable {
            schema,
            batches,
            index,
            rows,
            batch_rows: spec.batch_rows,
            first_filter_indexes,
            first_filter_indexes_built: AtomicUsize::new(0),
            declared_positions,
            row_bytes: 0,
            identity: "memory".to_owned(),
        }
        .with_row_bytes())
    }

    fn with_row_bytes(mut self) -> Self {
        self.row_bytes = self.memory_bytes() / self.rows.max(1);
        self
    }

    /// Bytes of an average row (its data, and its share of an index).
    pub fn row_bytes(&self) -> usize {
        self.row_bytes
    }

    /// The config file as it was read: what an output computed from this
    /// table records of it ([`crate::inputs::config_identity`]).
    pub fn identity(&self) -> &str {
        &self.identity
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
        let positions: usize = self.first_filter_indexes.iter().filter_map(|i| i.get()?.as_ref()).map(PositionIndex::memory_bytes).sum();
        batches.chain(groups).map(RecordBatch::get_array_memory_size).sum::<usize>() + positions
    }

    /// Opens a scan: checks the request against the schema and picks the
    /// batches to read (one partition when the filter pins the declared
    /// key; the rows of one key when it pins a column indexed on its first
    /// such scan).
    ///
    /// The request must have passed [`crate::guest_input::scan::validate`];
    /// its batch size is clamped to `limits`, and the scan's work stops
    /// (with [`ScanError::Stopped`]) once `deadline` passes.
    pub fn scan(
        self: &Arc<Self>,
        request: &ScanRequest,
        limits: &GuestLimits,
        deadline: Deadline,
    ) -> Result<ConfigScan, ScanError> {
        let mut request = request.clone();
        let mut sources: Option<Vec<Source>> = None;
        if let Some(index) = &self.index {
            let key_name = self.schema.field(index.column).name();
            if let Some(pos) = request.filter.iter().position(|c| &c.column == key_name && c.op == CmpOp::Eq) {
                self.bind_pinned(&request, pos)?;
                let group = match lookup_key(&request.filter[pos].value, index.kind) {
                    KeyLookup::Key(key) => index.groups.get(&key).cloned().unwrap_or_default(),
                    KeyLookup::NoRows => Vec::new(),
                };
                request.filter.remove(pos);
                sources = Some(group.into_iter().map(|batch| (batch, None)).collect());
            }
        } else if let Some((pos, column, kind)) = self.first_indexable_eq(&request) {
            self.bind_pinned(&request, pos)?;
            if let Some(index) = self.first_filter_index(column, kind, &deadline) {
                let group = match lookup_key(&request.filter[pos].value, index.kind) {
                    KeyLookup::Key(key) => index.rows_of(&key),
                    KeyLookup::NoRows => Vec::new(),
                };
                request.filter.remove(pos);
                sources = Some(group.into_iter().map(|(batch, rows)| (self.batches[batch].clone(), Some(rows))).collect());
            }
        }
        let sources = sources.unwrap_or_else(|| match &self.index {
            Some(index) => index.groups.values().flatten().map(|batch| (batch.clone(), None)).collect(),
            None => self.batches.iter().map(|batch| (batch.clone(), None)).collect(),
        });
        let bound = BoundScan::bind(&request, &self.schema)?;
        let batch_rows = clamp_batch_rows(request.batch_rows, self.batch_rows, self.row_bytes, limits);
        Ok(ConfigScan {
            deadline,
            coalescer: BatchCoalescer::new(bound.output_schema.clone(), batch_rows),
            bound,
            sources: sources.into_iter(),
            pending: None,
            batch_rows,
            rows_out: 0,
        })
    }

    /// Binds the comparison at `pos` alone, before an index answers it and
    /// it leaves the request: an incomparable literal is still an error.
    fn bind_pinned(&self, request: &ScanRequest, pos: usize) -> Result<(), ScanError> {
        BoundScan::bind(&ScanRequest { filter: vec![request.filter[pos].clone()], ..Default::default() }, &self.schema)?;
        Ok(())
    }

    /// The first `column == v` of `request` whose column can be indexed:
    /// its position, the column's and the column's key kind.
    /// A comparison of the declared key comes first, when its positions
    /// were indexed at load.
    fn first_indexable_eq(&self, request: &ScanRequest) -> Option<(usize, usize, KeyKind)> {
        let indexable = |(pos, c): (usize, &crate::filter::Comparison)| {
            let column = self.schema.index_of(&c.column).ok().filter(|_| c.op == CmpOp::Eq)?;
            Some((pos, column, KeyKind::of(self.schema.field(column).data_type()).ok()?))
        };
        let declared = self.declared_positions.and_then(|key| {
            request.filter.iter().enumerate().filter_map(indexable).find(|&(_, column, _)| column == key)
        });
        declared.or_else(|| request.filter.iter().enumerate().find_map(indexable))
    }

    /// The index of `column`, built on the first scan that asks (at most
    /// [`MAX_FIRST_FILTER_INDEXES`] columns are), within the deadline of
    /// the iteration that asks: host work done for a guest stops with its
    /// iteration. Given up past it, the column is not indexed for the rest
    /// of the run (its scans filter the table, as without an index).
    fn first_filter_index(&self, column: usize, kind: KeyKind, deadline: &Deadline) -> Option<&PositionIndex> {
        let index = self.first_filter_indexes[column].get_or_init(|| {
            if self.first_filter_indexes_built.fetch_add(1, Ordering::Relaxed) >= MAX_FIRST_FILTER_INDEXES {
                return None;
            }
            let started = std::time::Instant::now();
            let name = self.schema.field(column).name();
            match PositionIndex::build_until(&self.batches, column, kind, deadline) {
                Ok(index) => {
                    // A declared partition pays off for keys of many rows; one
                    // of a few rows a key is better served by positions.
                    let hint = if few_rows_a_key(index.keys(), self.rows) { "" } else { " (set config.partition_by for a faster one)" };
                    tracing::info!(
                        column = %name,
                        keys = index.keys(),
                        bytes = index.memory_bytes(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "indexed the config by `{name}` on its first `{name} == v` scan{hint}"
                    );
                    Some(index)
                }
                Err(e) => {
                    tracing::warn!(column = %name, "cannot index the config by `{name}`: {e}");
                    None
                }
            }
        });
        index.as_ref()
    }
}

/// A batch of the table, and the rows of it a scan reads (all when `None`).
type Source = (RecordBatch, Option<UInt32Array>);

/// Columns indexed on their first `column == v` scan, at most (4 bytes a
/// row and a hash entry a key each).
pub const MAX_FIRST_FILTER_INDEXES: usize = 2;
/// Rows a key below which a partition index costs more than it saves: its
/// groups are batches of their own, each with the fixed cost of a batch.
const FEW_ROWS_A_KEY: usize = 64;

/// Whether `keys` keys for `rows` rows have fewer than [`FEW_ROWS_A_KEY`]
/// rows a key on average.
fn few_rows_a_key(keys: usize, rows: usize) -> bool {
    keys.saturating_mul(FEW_ROWS_A_KEY) > rows
}

/// An open scan: yields filtered, projected batches of at most the scan's
/// batch size, never an empty one.
pub struct ConfigScan {
    deadline: Deadline,
    bound: BoundScan,
    sources: std::vec::IntoIter<Source>,
    /// The filtered source batch being handed over a slice at a time, the
    /// rows of it handed over so far, and whether it is a copy (filtered
    /// or taken) rather than a view of the table's own memory.
    pending: Option<(RecordBatch, usize, bool)>,
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

    /// Host memory this scan holds of its own (not shared with the
    /// table): the filtered or taken batch it is handing over and the rows
    /// it has coalesced. At most about two batches of the scan's size and
    /// one of the table's.
    pub fn memory_bytes(&self) -> usize {
        let pending = match &self.pending {
            Some((batch, _, true)) => batch.get_array_memory_size(),
            _ => 0,
        };
        pending + self.coalescer.size()
    }

    /// The next batch, or `None` at the end.
    /// Stops with [`ScanError::Stopped`] between source batches once the
    /// scan's deadline passes (a filter that matches little may read the
    /// whole table in one call).
    ///
    /// A filtered source batch bigger than the scan's batch size is handed
    /// over a slice at a time, as the guest asks for them, never sliced all
    /// at once: a guest asking for one row a batch would otherwise make the
    /// host hold a batch for every row of the source (each with arrays of
    /// its own) before the first is handed over.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, ScanError> {
        loop {
            self.deadline.check()?;
            if let Some(batch) = self.coalescer.next_completed_batch() {
                self.rows_out += batch.num_rows() as u64;
                return Ok(Some(batch));
            }
            if let Some((batch, offset, _)) = &mut self.pending {
                let rows = batch.num_rows();
                if *offset < rows {
                    let len = self.batch_rows.min(rows - *offset);
                    let slice = batch.slice(*offset, len);
                    *offset += len;
                    if len == self.batch_rows && self.coalescer.is_empty() {
                        // A whole batch, nothing buffered before it: handed
                        // over as a view, no copy.
                        self.rows_out += len as u64;
                        return Ok(Some(slice));
                    }
                    // At most one batch completes from a push of at most a
                    // batch's rows.
                    self.coalescer.push_batch(slice)?;
                    continue;
                }
                self.pending = None;
            }
            match self.sources.next() {
                Some((source, rows)) => {
                    let taken = rows.is_some();
                    let source = match rows {
                        Some(rows) => arrow_select::take::take_record_batch(&source, &rows)?,
                        None => source,
                    };
                    let batch = self.bound.apply(&source)?;
                    if batch.num_rows() == 0 {
                        continue;
                    }
                    let copied = taken || batch.num_rows() != source.num_rows();
                    if batch.num_rows() == source.num_rows() && batch.num_rows() <= self.batch_rows && self.coalescer.is_empty() {
                        // Nothing filtered out (an indexed scan): hand it over as is.
                        self.rows_out += batch.num_rows() as u64;
                        return Ok(Some(batch));
                    }
                    self.pending = Some((batch, 0, copied));
                }
                None if !self.coalescer.is_empty() => self.coalescer.finish_buffered_batch()?,
                None => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{Comparison, Literal};
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use std::path::Path;

    fn csv_spec(partition_by: Option<&str>, batch_rows: usize) -> ConfigSpec {
        ConfigSpec {
            location: Location::parse("c.csv", Path::new("/")).unwrap(),
            format: ConfigFormat::Csv,
            partition_by: partition_by.map(String::from),
            schema: None,
            header: true,
            delimiter: b',',
            batch_rows,
        }
    }

    fn table(partition_by: Option<&str>) -> Arc<ConfigTable> {
        let mut csv = String::from("id,k,v\n");
        for i in 0..1000 {
            csv.push_str(&format!("{i},{},{}.5\n", i % 7, i));
        }
        let spec = csv_spec(partition_by, 64);
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
        let spec = csv_spec(Some("k"), 4096);
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

    /// The file parsed by arrow's own reader, in one piece, as the reference.
    fn parsed_in_one_piece(spec: &ConfigSpec, schema: &SchemaRef, bytes: &Bytes) -> Result<RecordBatch, ArrowError> {
        let batches = arrow_csv::ReaderBuilder::new(schema.clone())
            .with_header(spec.header)
            .with_batch_size(spec.batch_rows)
            .build(std::io::Cursor::new(bytes.clone()))?
            .collect::<Result<Vec<_>, _>>()?;
        arrow_select::concat::concat_batches(schema, &batches)
    }

    /// The streaming parallel parse, without its fallback.
    fn parsed_in_blocks(spec: &ConfigSpec, bytes: &Bytes) -> Result<(SchemaRef, RecordBatch), CsvFailure> {
        let head = CsvHead::read(spec, ByteSource::Memory(Some(bytes.clone())))?;
        let schema = head.schema.clone();
        let mut table = Assembler::new(Layout::Plain, schema.clone(), spec.batch_rows);
        head.parse_parallel(spec, &mut table)?;
        let batches = table.finish().unwrap().batches;
        assert!(batches.iter().all(|b| b.num_rows() <= spec.batch_rows));
        Ok((schema.clone(), arrow_select::concat::concat_batches(&schema, &batches).unwrap()))
    }

    #[test]
    fn a_parquet_file_of_many_row_groups_parses_in_order_over_the_cores() {
        let rows = 400_000;
        let (spec, csv) = large_csv(rows, None);
        let (_, all) = parsed_in_blocks(&spec, &csv).unwrap();
        let mut file = Vec::new();
        let properties = ::parquet::file::properties::WriterProperties::builder().set_max_row_group_row_count(Some(30_000)).build();
        let mut writer = ::parquet::arrow::ArrowWriter::try_new(&mut file, all.schema(), Some(properties)).unwrap();
        writer.write(&all).unwrap();
        let metadata = writer.close().unwrap();
        assert!(metadata.num_row_groups() > 10, "{} row groups", metadata.num_row_groups());
        let spec = ConfigSpec { format: ConfigFormat::Parquet, partition_by: None, ..spec };
        let table = ConfigTable::parse(&spec, Bytes::from(file)).unwrap();
        assert!(table.batches.iter().all(|b| b.num_rows() <= 4096));
        let ids: Vec<i64> = table.batches.iter().flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec()).collect();
        assert_eq!(ids, (0..rows as i64).collect::<Vec<_>>(), "every row once, in the file's order");
        let parsed = arrow_select::concat::concat_batches(table.schema(), &table.batches).unwrap();
        assert_eq!(parsed, all);
    }

    #[test]
    fn a_large_csv_cut_into_blocks_parses_like_one_piece() {
        let rows = 400_000;
        let (spec, bytes) = large_csv(rows, None);
        let (schema, blocks) = parsed_in_blocks(&spec, &bytes).expect("no fallback");
        assert_eq!(blocks.num_rows(), rows);
        assert_eq!(blocks, parsed_in_one_piece(&spec, &schema, &bytes).unwrap(), "same rows in the same order");
        // And through the index, split on the parsing threads.
        let table = ConfigTable::parse(&spec, bytes).unwrap();
        let got = all_rows(&table);
        assert_eq!(got.len(), rows);
        assert!(got.iter().enumerate().all(|(i, r)| r.0 == i as i64 && r.1 == (i % 64) as i64 && r.3 == format!("name_{}", i % 977)));
        let group = &table.index.as_ref().unwrap().groups;
        assert_eq!(group.len(), 64);
        // Parts of 64 rows (a key's share of a 4096-row batch), gathered
        // into batches of a quarter of the scan size.
        for batches in group.values() {
            let (last, full) = batches.split_last().unwrap();
            assert!(full.iter().all(|b| b.num_rows() == 1024), "{:?}", batches.iter().map(RecordBatch::num_rows).collect::<Vec<_>>());
            assert_eq!(last.num_rows(), rows / 64 - 1024 * full.len());
        }
    }

    #[test]
    fn a_quoted_field_across_lines_hands_the_rest_to_one_parser() {
        let rows = 400_000;
        let (spec, bytes) = large_csv(rows, Some(323_456));
        let (schema, blocks) = parsed_in_blocks(&spec, &bytes).expect("no fallback");
        assert_eq!(blocks, parsed_in_one_piece(&spec, &schema, &bytes).unwrap(), "same rows in the same order");
        let table = ConfigTable::parse(&spec, bytes).unwrap();
        let rows = all_rows(&table);
        assert_eq!(rows.len(), 400_000);
        assert_eq!(rows[323_456].3, "two\nlines");
        assert_eq!(rows[323_457].3, format!("name_{}", 323_457 % 977));
    }

    #[test]
    fn a_bad_value_deep_in_a_large_csv_is_reported_at_its_line_in_the_file() {
        let (spec, bytes) = large_csv(400_000, None);
        let text = String::from_utf8(bytes.to_vec()).unwrap().replace("\n300000,", "\nthree hundred thousand,");
        let bytes = Bytes::from(text);
        let (schema, _) = parsed_in_blocks(&spec, &large_csv(10, None).1).unwrap();
        let expected = parsed_in_one_piece(&spec, &schema, &bytes).unwrap_err().to_string();
        assert!(expected.contains("line 300001"), "{expected}");
        let err = ConfigTable::parse(&spec, bytes).unwrap_err().to_string();
        assert!(err.contains(&expected), "{err}");
        assert!(err.starts_with("cannot parse config file /c.csv as CSV"), "{err}");
    }

    #[test]
    fn a_storage_error_mid_file_is_a_read_error_not_a_parse_error() {
        let (spec, bytes) = large_csv(400_000, None);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut opened = 0;
        let mut open = || {
            opened += 1;
            let chunks = vec![
                Ok(bytes.slice(..3_000_000)),
                Err(object_store::Error::Generic { store: "S3", source: "connection reset".into() }),
            ];
            Ok(ByteSource::Stream { stream: Box::pin(futures::stream::iter(chunks)), handle: runtime.handle().clone() })
        };
        let err = ConfigTable::read(&spec, &mut open).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("connection reset"), "{err}");
        assert_eq!(opened, 1, "read once");
    }

    #[test]
    fn blocks_end_at_line_ends_and_hold_the_asked_rows() {
        let text: String = (0..100).map(|i| format!("{i},{}\n", "x".repeat(i))).collect();
        let mut blocks = csv::Blocks::new(ByteSource::Memory(Some(Bytes::from(text.clone()))), bytes::BytesMut::new(), false, 7);
        let mut joined = Vec::new();
        let mut sizes = Vec::new();
        while let Some(block) = blocks.next_block().unwrap() {
            assert_eq!(block.last(), Some(&b'\n'));
            sizes.push(memchr::memchr_iter(b'\n', &block).count());
            joined.extend_from_slice(&block);
        }
        assert_eq!(joined, text.as_bytes());
        assert_eq!(sizes.iter().sum::<usize>(), 100);
        assert!(sizes[..sizes.len() - 1].iter().all(|&n| n == 7), "{sizes:?}");
    }

    /// The first column of every batch a scan yields, in order.
    fn scanned(table: &Arc<ConfigTable>, request: ScanRequest, check: impl Fn(&RecordBatch)) -> Vec<i64> {
        let mut scan = table.scan(&request, &GuestLimits::default(), Deadline::never()).unwrap();
        let mut out = Vec::new();
        while let Some(batch) = scan.next_batch().unwrap() {
            check(&batch);
            out.extend(batch.column(0).as_primitive::<Int64Type>().values().iter().copied());
        }
        out
    }

    fn ids(table: &Arc<ConfigTable>, request: ScanRequest) -> Vec<i64> {
        let mut out = scanned(table, request, |batch| assert!(batch.num_rows() > 0 && batch.num_rows() <= 64));
        out.sort();
        out
    }

    #[test]
    fn regression_small_batches_are_sliced_as_asked_and_scans_hold_little() {
        let t = table(None);
        let table_batch = t.batches[0].get_array_memory_size();
        let lt = Comparison { column: "v".into(), op: CmpOp::Lt, value: Literal::Float(500.0) };
        for (filter, expected) in [(vec![], (0..1000).collect::<Vec<i64>>()), (vec![lt], (0..500).collect())] {
            for batch_rows in [1u32, 5, 64, 100] {
                let request = ScanRequest { columns: None, filter: filter.clone(), batch_rows: Some(batch_rows) };
                let mut scan = t.scan(&request, &GuestLimits::default(), Deadline::never()).unwrap();
                let mut out = Vec::new();
                while let Some(batch) = scan.next_batch().unwrap() {
                    assert!(batch.num_rows() >= 1 && batch.num_rows() <= batch_rows as usize, "{batch_rows}: {}", batch.num_rows());
                    out.extend(batch.column(0).as_primitive::<Int64Type>().values().iter().copied());
                    // One source batch (a filtered copy) and what is coalesced,
                    // never a batch for every row.
                    let held = scan.memory_bytes();
                    assert!(held <= 3 * table_batch, "{batch_rows} rows a batch: {held} bytes held, a table batch is {table_batch}");
                    if filter.is_empty() && batch_rows <= 64 && 64 % batch_rows == 0 {
                        assert!(held < 1024, "slices of the table's own batches are views: {held} bytes held");
                    }
                }
                assert_eq!(out, expected, "{batch_rows} rows a batch, {} comparisons: every row once, in order", filter.len());
            }
        }
    }

    #[test]
    fn a_first_filter_index_past_its_iterations_deadline_is_given_up_and_scans_still_filter() {
        let t = table(None);
        let request = ScanRequest {
            filter: vec![Comparison { column: "k".into(), op: CmpOp::Eq, value: Literal::Int(3) }],
            ..Default::default()
        };
        let passed = Deadline::new(std::time::Instant::now(), Arc::default());
        let mut scan = t.scan(&request, &GuestLimits::default(), passed).unwrap();
        let stopped = scan.next_batch().unwrap_err();
        assert!(matches!(stopped, ScanError::Stopped(crate::deadline::Stop::Timeout)), "{stopped}");
        assert!(matches!(t.first_filter_indexes[1].get(), Some(None)), "the index was given up, not built past the deadline");
        assert_eq!(ids(&t, request), (0..1000).filter(|i| i % 7 == 3).collect::<Vec<_>>(), "later scans filter the table");
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
    fn an_unindexed_table_indexes_a_column_on_its_first_filter() {
        let t = table(None);
        let eq = |column: &str, value| Comparison { column: column.into(), op: CmpOp::Eq, value };
        let request = |filter| ScanRequest { filter, ..Default::default() };
        assert!(t.first_filter_indexes[1].get().is_none(), "not before a scan asks");
        let lt = Comparison { column: "v".into(), op: CmpOp::Lt, value: Literal::Float(500.0) };
        assert_eq!(ids(&t, request(vec![lt, eq("k", Literal::Int(3))])), (0..500).filter(|i| i % 7 == 3).collect::<Vec<_>>());
        let index = t.first_filter_indexes[1].get().expect("built").as_ref().expect("an index");
        assert_eq!(index.keys(), 7);
        assert_eq!(ids(&t, request(vec![eq("k", Literal::Text("4".into()))])), (0..1000).filter(|i| i % 7 == 4).collect::<Vec<_>>());
        assert!(ids(&t, request(vec![eq("k", Literal::Int(99))])).is_empty());
        assert!(ids(&t, request(vec![eq("k", Literal::Float(3.5))])).is_empty());
        assert!(t.scan(&request(vec![eq("k", Literal::Text("x".into()))]), &GuestLimits::default(), Deadline::never()).is_err(), "an incomparable literal is still an error");
        // A float column is filtered, not indexed; at most two columns are.
        assert_eq!(ids(&t, request(vec![eq("v", Literal::Float(5.5))])), vec![5]);
        assert!(t.first_filter_indexes[2].get().is_none());
        assert_eq!(ids(&t, request(vec![eq("id", Literal::Int(5))])), vec![5]);
        assert!(t.first_filter_indexes[0].get().unwrap().is_some());
        assert!(t.memory_bytes() > 1000 * 8 * 3, "the positions are counted");

        let mut csv = String::from("a,b,c\n");
        for i in 0..100 {
            csv.push_str(&format!("{i},{},{}\n", i % 3, i % 5));
        }
        let spec = ConfigSpec { batch_rows: 16, ..large_csv(1, None).0 };
        let t = Arc::new(ConfigTable::parse(&ConfigSpec { partition_by: None, ..spec }, Bytes::from(csv)).unwrap());
        for column in ["a", "b", "c"] {
            let got = ids(&t, request(vec![eq(column, Literal::Int(1))]));
            assert!(!got.is_empty(), "{column}");
        }
        let built: Vec<bool> = t.first_filter_indexes.iter().map(|i| i.get().unwrap().is_some()).collect();
        assert_eq!(built, [true, true, false], "the third column is filtered");
    }

    #[test]
    fn a_first_filter_index_on_a_key_of_one_row_each_stays_small() {
        // Regression: the index held an array per key and batch, more than
        // ten times the table when every key has one row.
        let mut csv = String::from("id,name\n");
        for i in 0..20_000 {
            csv.push_str(&format!("{i},n{}\n", i % 9_000));
        }
        let spec = ConfigSpec { partition_by: None, ..csv_spec(None, 256) };
        let t = Arc::new(ConfigTable::parse(&spec, Bytes::from(csv)).unwrap());
        let plain = t.memory_bytes();
        let eq = |column: &str, value| ScanRequest {
            filter: vec![Comparison { column: column.into(), op: CmpOp::Eq, value }],
            ..Default::default()
        };
        // The index is built on this thread, by the first scan.
        let held = crate::test_alloc::held();
        assert_eq!(ids(&t, eq("id", Literal::Int(12_345))), [12_345]);
        let kept = crate::test_alloc::held() - held;
        let index = t.first_filter_indexes[0].get().unwrap().as_ref().unwrap();
        assert_eq!(index.keys(), 20_000);
        // A hash entry, a range and a position per key, nothing per batch.
        assert!(kept < 20_000 * 80, "the index keeps {kept} bytes for 20,000 keys");
        assert!(index.memory_bytes() as isize >= kept * 9 / 10, "it counts {} of its {kept} bytes", index.memory_bytes());
        assert_eq!(t.memory_bytes(), plain + index.memory_bytes(), "the index is counted");
        // A text key whose rows span many batches: every row, in order.
        let expected: Vec<i64> = (0..20_000).filter(|i| i % 9_000 == 17).collect();
        assert_eq!(ids(&t, eq("name", Literal::Text("n17".into()))), expected);
        assert!(ids(&t, eq("name", Literal::Text("n9000".into()))).is_empty());
    }

    #[test]
    fn a_declared_key_of_one_row_a_key_is_indexed_by_position_not_split_into_batches() {
        // Regression: each key's rows became batches of their own, more
        // than ten times the table (1M keys of one row: 13 s to load).
        let mut csv = String::from("id,pair,name\n");
        for i in 0..140_000 {
            csv.push_str(&format!("{i},{},n{}\n", i / 2, i % 9));
        }
        let spec = |partition_by: Option<&str>, batch_rows| ConfigSpec { partition_by: partition_by.map(String::from), ..csv_spec(None, batch_rows) };
        let plain = ConfigTable::parse(&spec(None, 4096), Bytes::from(csv.clone())).unwrap();
        let eq = |column: &str, value| Comparison { column: column.into(), op: CmpOp::Eq, value };
        let in_order = |t: &Arc<ConfigTable>, filter| scanned(t, ScanRequest { filter, ..Default::default() }, |_| {});
        // Too many keys a batch (4096 keys of two rows in a batch of 8192),
        // and too many parts waiting (batches of 64 rows, 32 keys each).
        for batch_rows in [8192, 64] {
            let t = Arc::new(ConfigTable::parse(&spec(Some("pair"), batch_rows), Bytes::from(csv.clone())).unwrap());
            assert!(t.index.is_none(), "not partitioned, batches of {batch_rows}");
            let index = t.first_filter_indexes[1].get().expect("indexed at load").as_ref().unwrap();
            assert_eq!(index.keys(), 70_000);
            let positions = index.memory_bytes();
            assert!(positions < 70_000 * 80 + 140_000 * 4, "{positions} bytes of positions");
            assert!(
                t.memory_bytes() < plain.memory_bytes() * 5 / 4 + positions,
                "{} bytes held against {} unpartitioned, batches of {batch_rows}",
                t.memory_bytes(),
                plain.memory_bytes()
            );
            // Each key's rows, in the file's order, whether they were read
            // before the key was found too many to partition or after.
            for pair in [0, 3, 1_000, 35_000, 69_999] {
                assert_eq!(in_order(&t, vec![eq("pair", Literal::Int(pair))]), [2 * pair, 2 * pair + 1], "pair {pair}");
            }
            // The declared key is looked up first, whatever the order.
            let both = vec![eq("name", Literal::Text("n5".into())), eq("pair", Literal::Int(7))];
            assert_eq!(in_order(&t, both), [14]);
            assert!(t.first_filter_indexes[2].get().is_none(), "no index on name");
            assert!(in_order(&t, vec![eq("pair", Literal::Int(70_000))]).is_empty());
            let mut all = in_order(&t, vec![]);
            all.sort();
            assert_eq!(all, (0..140_000).collect::<Vec<_>>());
        }
        // A key of many rows a key is still partitioned.
        let t = Arc::new(ConfigTable::parse(&spec(Some("name"), 8192), Bytes::from(csv)).unwrap());
        assert_eq!(t.index.as_ref().map(|i| i.groups.len()), Some(9));
        assert_eq!(in_order(&t, vec![eq("name", Literal::Text("n4".into()))]), (0..140_000).filter(|i| i % 9 == 4).collect::<Vec<_>>());
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
        let spec = csv_spec(Some("v"), 64);
        let err = ConfigTable::parse(&spec, Bytes::from("id,v\n1,2.5\n")).unwrap_err();
        assert!(err.to_string().contains("`v`"), "{err}");
    }
}
