//! CSV configs, parsed as they are read: the schema from the first rows,
//! then the file cut into blocks of whole records that every core parses,
//! the results kept in the file's order. Only a few blocks are in flight,
//! so the file's bytes are never held whole. A block holding a quote (a
//! quoted field may span lines, so a cut at a line end may be wrong) hands
//! the rest of the file to one streaming parser.

use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel};
use std::sync::{Arc, Mutex};

use arrow_csv::ReaderBuilder;
use arrow_schema::{ArrowError, SchemaRef};
use bytes::{Bytes, BytesMut};

use super::index::{Assembler, Layout, Prepared};
use super::source::{ByteSource, ChunkReader};
use crate::job::ConfigSpec;

/// Rows sampled to infer a CSV's schema when none is declared.
const INFER_ROWS: usize = 20_000;
/// The most bytes read to infer the schema.
const INFER_BYTES: usize = 64 << 20;
/// A block holds a whole number of batches and at least this many bytes,
/// so that handing it to a thread costs little against parsing it...
const MIN_BLOCK_BYTES: usize = 1 << 20;
/// ... and at most this many, unless one record is longer.
const MAX_BLOCK_BYTES: usize = 64 << 20;

/// Why a parse stopped.
#[derive(Debug)]
pub(super) enum CsvFailure {
    /// Reading the file failed.
    Read(object_store::Error),
    /// The file could not be parsed. From the parallel parse, line numbers
    /// count from the start of a block, not of the file: parse the file
    /// again with [`parse_sequential`] for the true ones.
    Parse(ArrowError),
}

/// The start of a CSV file: its schema, and the bytes read to find it.
pub(super) struct CsvHead {
    /// The declared or inferred schema.
    pub(super) schema: SchemaRef,
    /// Bytes read and not yet parsed (the header line removed).
    buf: BytesMut,
    /// The rest of the file.
    source: ByteSource,
    /// Whether `source` is exhausted.
    eof: bool,
    /// The header line holds a quote: parse everything on one thread,
    /// leaving the header to arrow.
    header_pending: bool,
    /// Bytes per record in what was read (for the block size).
    bytes_per_row: usize,
}

impl CsvHead {
    /// Reads enough of `source` to know the schema (the declared one, or one
    /// inferred from the first rows).
    pub(super) fn read(spec: &ConfigSpec, mut source: ByteSource) -> Result<CsvHead, CsvFailure> {
        let header = usize::from(spec.header);
        let need = if spec.schema.is_none() { INFER_ROWS + header } else { header };
        let (mut buf, mut eof, mut lines, mut counted) = (BytesMut::new(), false, 0, 0);
        while !eof && lines < need && buf.len() < INFER_BYTES {
            match source.next_chunk().map_err(CsvFailure::Read)? {
                Some(chunk) => buf.extend_from_slice(&chunk),
                None => eof = true,
            }
            lines += memchr::memchr_iter(b'\n', &buf[counted..]).count();
            counted = buf.len();
        }
        let schema = match &spec.schema {
            Some(schema) => schema.clone(),
            None => {
                let end = if eof { buf.len() } else { memchr::memrchr(b'\n', &buf).map_or(buf.len(), |at| at + 1) };
                let format = arrow_csv::reader::Format::default().with_header(spec.header).with_delimiter(spec.delimiter);
                let (schema, _) =
                    format.infer_schema(Cursor::new(&buf[..end]), Some(INFER_ROWS)).map_err(CsvFailure::Parse)?;
                Arc::new(schema)
            }
        };
        if schema.fields().is_empty() {
            return Err(CsvFailure::Parse(ArrowError::CsvError("the file has no columns".into())));
        }
        let bytes_per_row = buf.len().div_ceil(lines.max(1)).max(1);
        let mut header_pending = false;
        if spec.header {
            let end = memchr::memchr(b'\n', &buf).map_or(buf.len(), |at| at + 1);
            if memchr::memchr(b'"', &buf[..end]).is_some() {
                header_pending = true;
            } else {
                let _ = buf.split_to(end);
            }
        }
        Ok(CsvHead { schema, buf, source, eof, header_pending, bytes_per_row })
    }

    /// Parses the rest of the file on every core, each batch prepared for
    /// `layout` on the thread that parsed it; in the file's order.
    pub(super) fn parse_parallel(self, spec: &ConfigSpec, table: &mut Assembler) -> Result<(), CsvFailure> {
        let CsvHead { schema, buf, source, eof, header_pending, bytes_per_row } = self;
        let layout = &table.layout();
        if header_pending {
            let prepared = parse_sequential(spec, &schema, ChunkReader::new(buf.freeze(), source), true, layout)?;
            return table.push_all(prepared).map_err(CsvFailure::Parse);
        }
        let batches_per_block = MIN_BLOCK_BYTES.div_ceil(spec.batch_rows.saturating_mul(bytes_per_row)).max(1);
        let blocks = Blocks::new(source, buf, eof, spec.batch_rows * batches_per_block);
        let threads = crate::share::threads().clamp(1, 16);
        let failed = AtomicBool::new(false);
        let (job_tx, job_rx) = sync_channel::<(usize, Bytes)>(threads);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (result_tx, result_rx) = channel::<(usize, Result<Vec<Prepared>, ArrowError>)>();
        let (read, assembled) = std::thread::scope(|scope| {
            for _ in 0..threads {
                let (job_rx, result_tx, failed, schema) = (job_rx.clone(), result_tx.clone(), &failed, &schema);
                scope.spawn(move || {
                    loop {
                        // Only the workers hold the receiver: if they all
                        // stop, the reader's send fails instead of blocking.
                        let job = job_rx.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).recv();
                        let Ok((seq, block)) = job else { break };
                        if failed.load(Ordering::Relaxed) {
                            continue;
                        }
                        let result = parse_block(spec, schema, &block, layout);
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        if result_tx.send((seq, result)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(job_rx);
            // The results, put back in the file's order as they come.
            let collector = scope.spawn(move || -> Result<(), ArrowError> {
                let (mut next, mut waiting) = (0, std::collections::BTreeMap::new());
                let mut failure = None;
                for (seq, result) in result_rx {
                    match result {
                        // Any failure sends the file to the one-thread parse:
                        // the rest is only drained.
                        Err(e) => failure = failure.or(Some(e)),
                        Ok(prepared) if failure.is_none() => {
                            waiting.insert(seq, prepared);
                            while let Some(prepared) = waiting.remove(&next) {
                                next += 1;
                                if let Err(e) = table.push_all(prepared) {
                                    failure = Some(e);
                                    break;
                                }
                            }
                        }
                        Ok(_) => {}
                    }
                }
                failure.map_or(Ok(()), Err)
            });
            let read = feed(blocks, &job_tx, &result_tx, &failed, spec, &schema, layout);
            drop(job_tx);
            drop(result_tx);
            (read, collector.join().expect("collecting batches does not panic"))
        });
        read?;
        assembled.map_err(CsvFailure::Parse)
    }
}

/// Hands the blocks to the workers in order, until the end, a failure, or
/// a block with a quote, from which on this thread parses the rest.
fn feed(
    mut blocks: Blocks,
    jobs: &std::sync::mpsc::SyncSender<(usize, Bytes)>,
    results: &std::sync::mpsc::Sender<(usize, Result<Vec<Prepared>, ArrowError>)>,
    failed: &AtomicBool,
    spec: &ConfigSpec,
    schema: &SchemaRef,
    layout: &Layout,
) -> Result<(), CsvFailure> {
    for seq in 0.. {
        if failed.load(Ordering::Relaxed) {
            break;
        }
        let Some(block) = blocks.next_block().map_err(CsvFailure::Read)? else { break };
        if memchr::memchr(b'"', &block).is_some() {
            // The cut after this block may be inside a quoted field; the
            // cut before it is not (no quote came before): one parser from
            // here on.
            let mut rest = BytesMut::from(&block[..]);
            rest.extend_from_slice(&blocks.buf);
            let reader = ChunkReader::new(rest.freeze(), blocks.source);
            let result = match parse_sequential(spec, schema, reader, false, layout) {
                Ok(prepared) => Ok(prepared),
                Err(CsvFailure::Parse(e)) => Err(e),
                Err(read) => return Err(read),
            };
            let _ = results.send((seq, result));
            break;
        }
        if jobs.send((seq, block)).is_err() {
            break;
        }
    }
    Ok(())
}

/// The file cut into blocks of whole records (quote-free input assumed:
/// every line end is a record's end).
pub(super) struct Blocks {
    source: ByteSource,
    /// Read and not yet handed out; starts at a record.
    buf: BytesMut,
    eof: bool,
    /// How far `buf` was searched for line ends, and how many were found.
    scanned: usize,
    newlines: usize,
    /// Records per block.
    rows: usize,
}

impl Blocks {
    /// Blocks of `rows` records of `buf` (read from `source` up to its
    /// end when `eof`, starting at a record), then of the rest of `source`.
    pub(super) fn new(source: ByteSource, buf: BytesMut, eof: bool, rows: usize) -> Blocks {
        Blocks { source, buf, eof, scanned: 0, newlines: 0, rows }
    }

    /// The next block, or `None` at the end.
    pub(super) fn next_block(&mut self) -> object_store::Result<Option<Bytes>> {
        loop {
            let limit = self.buf.len().min(MAX_BLOCK_BYTES);
            // Find the `rows`-th line end, searching only new bytes.
            if self.scanned < limit {
                let mut last = None;
                for at in memchr::memchr_iter(b'\n', &self.buf[self.scanned..limit]).take(self.rows - self.newlines) {
                    self.newlines += 1;
                    last = Some(self.scanned + at);
                }
                if let Some(at) = last.filter(|_| self.newlines == self.rows) {
                    return Ok(Some(self.cut(at + 1)));
                }
                self.scanned = limit;
            }
            if limit == MAX_BLOCK_BYTES {
                // Long records: as many whole ones as fit, else the first
                // record that is longer than a block.
                let end = memchr::memrchr(b'\n', &self.buf[..limit])
                    .or_else(|| memchr::memchr(b'\n', &self.buf[limit..]).map(|at| limit + at));
                if let Some(at) = end {
                    return Ok(Some(self.cut(at + 1)));
                }
            }
            if self.eof {
                return Ok((!self.buf.is_empty()).then(|| self.cut(self.buf.len())));
            }
            match self.source.next_chunk()? {
                Some(chunk) => self.buf.extend_from_slice(&chunk),
                None => self.eof = true,
            }
        }
    }

    fn cut(&mut self, at: usize) -> Bytes {
        self.scanned = 0;
        self.newlines = 0;
        self.buf.split_to(at).freeze()
    }
}

/// Parses one block of whole records (no header).
fn parse_block(spec: &ConfigSpec, schema: &SchemaRef, block: &[u8], layout: &Layout) -> Result<Vec<Prepared>, ArrowError> {
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_header(false)
        .with_delimiter(spec.delimiter)
        .with_batch_size(spec.batch_rows)
        .build_decoder();
    let (mut out, mut offset) = (Vec::new(), 0);
    loop {
        // An empty slice at the end tells the decoder the input is over.
        loop {
            let decoded = decoder.decode(&block[offset..])?;
            offset += decoded;
            if decoded == 0 || decoder.capacity() == 0 {
                break;
            }
        }
        match decoder.flush()? {
            Some(batch) => out.push(layout.prepare(batch)?),
            None => return Ok(out),
        }
    }
}

/// Parses `reader` on this thread, streaming: the whole file (with its
/// header line when `header`) gives arrow's own error messages, with the
/// file's line numbers.
pub(super) fn parse_sequential(
    spec: &ConfigSpec,
    schema: &SchemaRef,
    mut reader: ChunkReader,
    header: bool,
    layout: &Layout,
) -> Result<Vec<Prepared>, CsvFailure> {
    let mut out = Vec::new();
    let failure = {
        let batches = ReaderBuilder::new(schema.clone())
            .with_header(header)
            .with_delimiter(spec.delimiter)
            .with_batch_size(spec.batch_rows)
            .build_buffered(&mut reader)
            .map_err(CsvFailure::Parse)?;
        let mut failure = None;
        for batch in batches {
            match batch.and_then(|b| layout.prepare(b)) {
                Ok(prepared) => out.push(prepared),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        failure
    };
    match (failure, reader.error.take()) {
        (None, _) => Ok(out),
        (Some(_), Some(read)) => Err(CsvFailure::Read(read)),
        (Some(parse), None) => Err(CsvFailure::Parse(parse)),
    }
}
