//! The partition index: the config's rows grouped by a key column, split
//! batch by batch on the threads that parse them, so that `key == n` scans
//! read one group and the table is never held twice over; and the position
//! index, for a key of too many keys to partition.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow_schema::{ArrowError, DataType, SchemaRef};
use arrow_select::coalesce::BatchCoalescer;

use crate::filter::Literal;

/// A partition key value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Key {
    Null,
    Int(i64),
    UInt(u64),
    Text(String),
    Bool(bool),
}

/// The type a key column is normalised to before hashing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KeyKind {
    Int,
    UInt,
    Text,
    Bool,
}

impl KeyKind {
    /// The kind of a column of `data_type`, or why it cannot be a key.
    pub(super) fn of(data_type: &DataType) -> Result<KeyKind, String> {
        match data_type {
            t if t.is_signed_integer() => Ok(KeyKind::Int),
            t if t.is_unsigned_integer() => Ok(KeyKind::UInt),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(KeyKind::Text),
            DataType::Boolean => Ok(KeyKind::Bool),
            other => Err(format!("its type {other} cannot be indexed (use an integer, string or boolean column)")),
        }
    }
}

/// Rows grouped by the key column: for each key, its rows in the file's
/// order, in batches of about the scan size.
#[derive(Debug)]
pub(super) struct PartitionIndex {
    /// The key column's position in the schema.
    pub(super) column: usize,
    /// How its values are hashed.
    pub(super) kind: KeyKind,
    /// The rows of each key.
    pub(super) groups: HashMap<Key, Vec<RecordBatch>>,
}

/// A batch made ready for the table on the thread that parsed it.
pub(super) enum Prepared {
    /// Kept as parsed (no index).
    Whole(RecordBatch),
    /// Split into the rows of each key (an index is built).
    Split(Vec<(Key, RecordBatch)>),
}

/// How the parsed batches become the table: kept, or split by a key.
#[derive(Clone, Debug)]
pub(super) enum Layout {
    /// No index: the batches as parsed.
    Plain,
    /// Indexed by the column at this position.
    Indexed {
        /// The key column's position.
        column: usize,
        /// Its kind.
        kind: KeyKind,
        /// Whether batches are still split by key: cleared, for every
        /// parsing thread, once the key proves to have too many keys to
        /// partition (see [`Assembler`]).
        split: Arc<AtomicBool>,
    },
}

/// Keys in one parsed batch above which the key is not partitioned: the
/// batch's rows would be split into more than this many small parts, and
/// parts wait (a batch each, with the fixed cost of a batch) until their
/// key has a group's worth of rows; with every key in every batch about a
/// quarter of the square of this many.
const MAX_KEYS_A_BATCH: usize = 512;
/// Parts waiting for their key's group above which the key is not
/// partitioned (about 100 MB of batches' fixed costs).
const MAX_PENDING_PARTS: usize = 65_536;

impl Layout {
    /// The layout for `partition_by` over `schema`, or why the column
    /// cannot be a key (checked before any row is parsed).
    pub(super) fn new(schema: &SchemaRef, partition_by: Option<&str>) -> Result<Layout, String> {
        let Some(key) = partition_by else { return Ok(Layout::Plain) };
        let column = schema.index_of(key).map_err(|_| {
            let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            format!("no such column (columns: {})", names.join(", "))
        })?;
        let kind = KeyKind::of(schema.field(column).data_type())?;
        Ok(Layout::Indexed { column, kind, split: Arc::new(AtomicBool::new(true)) })
    }

    /// Prepares one parsed batch (run on the parsing thread): split by key
    /// while the key is partitioned, whole once the key has proved to have
    /// too many keys to partition (a batch of more than
    /// [`MAX_KEYS_A_BATCH`] keys proves it).
    pub(super) fn prepare(&self, batch: RecordBatch) -> Result<Prepared, ArrowError> {
        let Layout::Indexed { column, kind, split } = self else { return Ok(Prepared::Whole(batch)) };
        if !split.load(Ordering::Relaxed) {
            return Ok(Prepared::Whole(batch));
        }
        let rows_by_key = rows_by_key(&batch, *column, *kind)?;
        if rows_by_key.len() > MAX_KEYS_A_BATCH {
            split.store(false, Ordering::Relaxed);
            return Ok(Prepared::Whole(batch));
        }
        let parts = rows_by_key
            .into_iter()
            .map(|(key, rows)| Ok((key, arrow_select::take::take_record_batch(&batch, &UInt32Array::from(rows))?)))
            .collect::<Result<_, ArrowError>>()?;
        Ok(Prepared::Split(parts))
    }
}

/// Gathers the prepared batches, in the file's order, into the table's
/// batches (plain) or its index. An index groups each key's rows into
/// batches of a quarter of the scan size, allocated to fit, so that scans
/// hand over whole batches without copying; each group's parts are
/// concatenated as soon as they make a batch, so that they are not held
/// beside the finished groups. (The parts waiting are about half a group
/// batch per key: a quarter of the scan size keeps them at a few percent
/// of the table, where whole scan-size batches made them up to 40%.)
///
/// A key of many keys a batch (an id, say) would be split into parts of a
/// row or a few, each with the fixed cost of a batch: more than ten times
/// the table, and seconds to load. Once a batch has more than
/// [`MAX_KEYS_A_BATCH`] keys or more than [`MAX_PENDING_PARTS`] parts wait,
/// the key is not partitioned: the rows so far are gathered back into
/// batches, the rest are kept as parsed, and [`Assembler::finish`] indexes
/// the rows' positions instead, as a first `key == v` scan does when no key
/// is declared (4 bytes a row and a hash entry a key).
pub(super) struct Assembler {
    layout: Layout,
    schema: SchemaRef,
    /// Rows of a group's batch.
    batch_rows: usize,
    /// Rows of a scan's batch.
    scan_rows: usize,
    batches: Vec<RecordBatch>,
    /// Per key: parts not yet concatenated, and their rows.
    pending: HashMap<Key, (Vec<RecordBatch>, usize)>,
    /// The parts in `pending`.
    pending_parts: usize,
    groups: HashMap<Key, Vec<RecordBatch>>,
    /// Whether the key has proved to have too many keys to partition.
    positional: bool,
}

/// What [`Assembler::finish`] makes of the table.
pub(super) struct Assembled {
    /// The rows, unless `partitions` holds them.
    pub(super) batches: Vec<RecordBatch>,
    /// The rows grouped by the declared key.
    pub(super) partitions: Option<PartitionIndex>,
    /// The positions of each key's rows in `batches`, for a declared key of
    /// too many keys to partition: the column, and the index.
    pub(super) positions: Option<(usize, PositionIndex)>,
}

impl Assembler {
    /// An empty table of `schema`, laid out as `layout`, for scans of at
    /// most `batch_rows` rows a batch.
    pub(super) fn new(layout: Layout, schema: SchemaRef, batch_rows: usize) -> Assembler {
        Assembler {
            layout,
            schema,
            batch_rows: batch_rows.div_ceil(4).max(1),
            scan_rows: batch_rows.max(1),
            batches: Vec::new(),
            pending: HashMap::new(),
            pending_parts: 0,
            groups: HashMap::new(),
            positional: false,
        }
    }

    /// How batches are prepared for this table.
    pub(super) fn layout(&self) -> Layout {
        self.layout.clone()
    }

    /// Adds the next prepared batch.
    pub(super) fn push(&mut self, prepared: Prepared) -> Result<(), ArrowError> {
        let parts = match (prepared, &self.layout) {
            (Prepared::Whole(batch), Layout::Indexed { .. }) if !self.positional => {
                // The parsing threads found too many keys (or a re-parse
                // did not split).
                self.stop_partitioning()?;
                self.batches.push(batch);
                return Ok(());
            }
            (Prepared::Whole(batch), _) => {
                self.batches.push(batch);
                return Ok(());
            }
            (Prepared::Split(parts), _) if self.positional => {
                // Split by a thread before it saw the key was not partitioned.
                let parts: Vec<RecordBatch> = parts.into_iter().map(|(_, part)| part).collect();
                self.batches.push(arrow_select::concat::concat_batches(&self.schema, &parts)?);
                return Ok(());
            }
            (Prepared::Split(parts), _) => parts,
        };
        for (key, part) in parts {
            let (parts, rows) = self.pending.entry(key.clone()).or_default();
            *rows += part.num_rows();
            parts.push(part);
            self.pending_parts += 1;
            if *rows >= self.batch_rows {
                let batch = arrow_select::concat::concat_batches(&self.schema, parts.iter())?;
                self.pending_parts -= parts.len();
                parts.clear();
                *rows = 0;
                self.groups.entry(key).or_default().push(batch);
            }
        }
        if self.pending_parts > MAX_PENDING_PARTS {
            self.stop_partitioning()?;
        }
        Ok(())
    }

    /// Adds the next prepared batches, in order.
    pub(super) fn push_all(&mut self, prepared: Vec<Prepared>) -> Result<(), ArrowError> {
        prepared.into_iter().try_for_each(|p| self.push(p))
    }

    /// Stops partitioning: the parsing threads keep their batches whole,
    /// and the rows grouped so far become batches of the scan size (each
    /// key's rows still in the file's order, and before its later rows).
    fn stop_partitioning(&mut self) -> Result<(), ArrowError> {
        self.positional = true;
        if let Layout::Indexed { split, .. } = &self.layout {
            split.store(false, Ordering::Relaxed);
        }
        let mut coalescer = BatchCoalescer::new(self.schema.clone(), self.scan_rows);
        for (key, (parts, _)) in std::mem::take(&mut self.pending) {
            for batch in self.groups.remove(&key).into_iter().flatten().chain(parts) {
                coalescer.push_batch(batch)?;
                while let Some(batch) = coalescer.next_completed_batch() {
                    self.batches.push(batch);
                }
            }
        }
        coalescer.finish_buffered_batch()?;
        while let Some(batch) = coalescer.next_completed_batch() {
            self.batches.push(batch);
        }
        self.pending_parts = 0;
        debug_assert!(self.groups.is_empty(), "every grouped key is pending");
        Ok(())
    }

    /// The table's batches, and its index when a key is declared.
    pub(super) fn finish(mut self) -> Result<Assembled, ArrowError> {
        let Layout::Indexed { column, kind, .. } = self.layout else {
            return Ok(Assembled { batches: self.batches, partitions: None, positions: None });
        };
        if self.positional {
            let index = PositionIndex::build(&self.batches, column, kind)?;
            return Ok(Assembled { batches: self.batches, partitions: None, positions: Some((column, index)) });
        }
        debug_assert!(self.batches.is_empty(), "a partitioned layout prepares split batches only");
        for (key, (parts, _)) in std::mem::take(&mut self.pending) {
            let group = self.groups.entry(key).or_default();
            if !parts.is_empty() {
                group.push(arrow_select::concat::concat_batches(&self.schema, &parts)?);
            }
        }
        let partitions = PartitionIndex { column, kind, groups: self.groups };
        Ok(Assembled { batches: Vec::new(), partitions: Some(partitions), positions: None })
    }
}

/// The positions of the rows of `batch` for each key of its `column`.
fn rows_by_key(batch: &RecordBatch, column: usize, kind: KeyKind) -> Result<HashMap<Key, Vec<u32>>, ArrowError> {
    let keys = normalise_keys(batch.column(column), kind)?;
    let mut rows_by_key: HashMap<Key, Vec<u32>> = HashMap::new();
    for row in 0..batch.num_rows() {
        rows_by_key.entry(key_at(&keys, kind, row)).or_default().push(row as u32);
    }
    Ok(rows_by_key)
}

/// What a scan's `key == literal` looks up.
pub(super) enum KeyLookup {
    /// This key's group.
    Key(Key),
    /// No row can match (e.g. `2.5` against an integer key).
    NoRows,
}

/// The key a literal compares equal to, in a key column of `kind`.
pub(super) fn lookup_key(value: &Literal, kind: KeyKind) -> KeyLookup {
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

/// An index built on a table's first `column == v` scan when none was
/// declared: the positions of every key's rows, one array for the whole
/// table (4 bytes a row, and a hash entry and 4 bytes a key), not a second
/// copy of the table; a scan takes the matching rows instead of filtering
/// every one. One array rather than one per key and batch: with a key of
/// high cardinality (one or a few rows a key) those small arrays held more
/// than ten times the table.
#[derive(Debug)]
pub(super) struct PositionIndex {
    /// How the key column's values are hashed.
    pub(super) kind: KeyKind,
    /// Each key's number, in the order first seen.
    ids: HashMap<Key, u32>,
    /// For each key number, where its rows start in `rows`; then the total.
    starts: Vec<u32>,
    /// Every row's number in the table, grouped by key, each key's in the
    /// table's order.
    rows: Vec<u32>,
    /// The table's row number of each batch's first row, and the total.
    batch_starts: Vec<u32>,
}

impl PositionIndex {
    /// Indexes `column` of `batches`: each core numbers the keys of its
    /// share of the batches, then the numbers are merged and the rows
    /// grouped by key.
    pub(super) fn build(batches: &[RecordBatch], column: usize, kind: KeyKind) -> Result<PositionIndex, ArrowError> {
        Self::build_until(batches, column, kind, &crate::deadline::Deadline::never())
    }

    /// [`PositionIndex::build`], given up (with an error naming why) once
    /// `deadline` passes: checked between batches.
    pub(super) fn build_until(
        batches: &[RecordBatch],
        column: usize,
        kind: KeyKind,
        deadline: &crate::deadline::Deadline,
    ) -> Result<PositionIndex, ArrowError> {
        let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
        u32::try_from(total)
            .map_err(|_| ArrowError::ComputeError(format!("{total} rows are more than a position index holds ({})", u32::MAX)))?;
        let mut batch_starts = Vec::with_capacity(batches.len() + 1);
        let mut start = 0u32;
        for batch in batches {
            batch_starts.push(start);
            start += batch.num_rows() as u32;
        }
        batch_starts.push(start);

        // Each share: its keys in the order first seen, and each row's
        // number of its key among them.
        let threads = crate::share::threads().clamp(1, batches.len().max(1));
        let per_thread = batches.len().div_ceil(threads).max(1);
        let number_share = |share: &[RecordBatch]| -> Result<(Vec<Key>, Vec<u32>), ArrowError> {
            let mut ids: HashMap<Key, u32> = HashMap::new();
            let mut row_ids = Vec::with_capacity(share.iter().map(RecordBatch::num_rows).sum());
            for batch in share {
                deadline.check().map_err(|stop| ArrowError::ComputeError(format!("indexing stopped: {stop}")))?;
                let keys = normalise_keys(batch.column(column), kind)?;
                for row in 0..batch.num_rows() {
                    row_ids.push(number(&mut ids, key_at(&keys, kind, row)));
                }
            }
            let mut keys: Vec<(Key, u32)> = ids.into_iter().collect();
            keys.sort_unstable_by_key(|(_, id)| *id);
            Ok((keys.into_iter().map(|(key, _)| key).collect(), row_ids))
        };
        let number_share = &number_share;
        let shares: Vec<Result<(Vec<Key>, Vec<u32>), ArrowError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = batches.chunks(per_thread).map(|share| scope.spawn(move || number_share(share))).collect();
            handles.into_iter().map(|h| h.join().expect("numbering keys does not panic")).collect()
        });

        // The shares' numbers made the table's.
        let mut ids: HashMap<Key, u32> = HashMap::new();
        let mut row_ids: Vec<u32> = Vec::with_capacity(total);
        for share in shares {
            let (keys, share_rows) = share?;
            let to_table: Vec<u32> = keys.into_iter().map(|key| number(&mut ids, key)).collect();
            row_ids.extend(share_rows.into_iter().map(|id| to_table[id as usize]));
        }
        // Each key's rows start after the rows of the keys numbered before it.
        let mut starts = vec![0u32; ids.len() + 1];
        for &id in &row_ids {
            starts[id as usize + 1] += 1;
        }
        for key in 1..starts.len() {
            starts[key] += starts[key - 1];
        }
        let mut fill = starts[..ids.len()].to_vec();
        let mut rows = vec![0u32; total];
        for (row, id) in row_ids.into_iter().enumerate() {
            let at = &mut fill[id as usize];
            rows[*at as usize] = row as u32;
            *at += 1;
        }
        Ok(PositionIndex { kind, ids, starts, rows, batch_starts })
    }

    /// The number of keys.
    pub(super) fn keys(&self) -> usize {
        self.ids.len()
    }

    /// The rows of `key`: each batch holding some, with their positions in
    /// it, in the table's order.
    pub(super) fn rows_of(&self, key: &Key) -> Vec<(usize, UInt32Array)> {
        let Some(&id) = self.ids.get(key) else { return Vec::new() };
        let (start, end) = (self.starts[id as usize], self.starts[id as usize + 1]);
        let mut out: Vec<(usize, Vec<u32>)> = Vec::new();
        let mut batch = 0;
        for &row in &self.rows[start as usize..end as usize] {
            // The rows ascend, so the batch only moves forward.
            while self.batch_starts[batch + 1] <= row {
                batch += 1;
            }
            let local = row - self.batch_starts[batch];
            match out.last_mut() {
                Some((b, rows)) if *b == batch => rows.push(local),
                _ => out.push((batch, vec![local])),
            }
        }
        out.into_iter().map(|(batch, rows)| (batch, UInt32Array::from(rows))).collect()
    }

    /// Bytes held.
    pub(super) fn memory_bytes(&self) -> usize {
        // A hash table holds a power of two of slots, at most 7/8 full; a
        // slot is its entry and a control byte.
        let slots = (self.ids.capacity() * 8 / 7).next_power_of_two() * (std::mem::size_of::<(Key, u32)>() + 1);
        let text: usize = self.ids.keys().map(|key| if let Key::Text(text) = key { text.capacity() } else { 0 }).sum();
        slots + text + (self.starts.capacity() + self.rows.capacity() + self.batch_starts.capacity()) * 4
    }
}

/// `key`'s number in `ids`, the next one if it is new.
fn number(ids: &mut HashMap<Key, u32>, key: Key) -> u32 {
    let next = ids.len() as u32;
    *ids.entry(key).or_insert(next)
}
