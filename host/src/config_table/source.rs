//! The config file's bytes, read chunk by chunk on a blocking thread, so
//! that a config is parsed as it arrives and its file is never held whole.

use std::io::{BufRead, Read, Seek, SeekFrom};

use bytes::{Buf, Bytes};
use futures::StreamExt as _;
use futures::stream::BoxStream;
use object_store::{GetResult, GetResultPayload};

/// Bytes read from a local file at a time.
const FILE_CHUNK: usize = 4 << 20;

/// Where the bytes come from.
pub(super) enum ByteSource {
    /// Already in memory.
    Memory(Option<Bytes>),
    /// A local file, read directly in large chunks (object_store's own
    /// stream reads 8 KiB at a time, each through a blocking-thread hop).
    File {
        /// The open file, positioned at the start of the range.
        file: std::fs::File,
        /// Bytes left to read.
        remaining: u64,
        /// For errors.
        path: std::path::PathBuf,
    },
    /// An object store's response body, driven on the runtime of `handle`.
    Stream {
        /// The body.
        stream: BoxStream<'static, object_store::Result<Bytes>>,
        /// The runtime the store's I/O runs on.
        handle: tokio::runtime::Handle,
    },
}

impl ByteSource {
    /// The bytes of a `get`. Must be called inside a tokio runtime.
    pub(super) fn of(result: GetResult) -> object_store::Result<ByteSource> {
        let range = result.range.clone();
        match result.payload {
            GetResultPayload::File(mut file, path) => {
                file.seek(SeekFrom::Start(range.start)).map_err(|e| io_error(&path, e))?;
                Ok(ByteSource::File { file, remaining: range.end - range.start, path })
            }
            GetResultPayload::Stream(stream) => {
                Ok(ByteSource::Stream { stream, handle: tokio::runtime::Handle::current() })
            }
        }
    }

    /// The next chunk, or `None` at the end. Blocks: call it off the runtime.
    pub(super) fn next_chunk(&mut self) -> object_store::Result<Option<Bytes>> {
        match self {
            ByteSource::Memory(bytes) => Ok(bytes.take().filter(|b| !b.is_empty())),
            ByteSource::File { file, remaining, path } => {
                if *remaining == 0 {
                    return Ok(None);
                }
                let want = (*remaining).min(FILE_CHUNK as u64);
                let mut buffer = Vec::with_capacity(want as usize);
                let read = file.take(want).read_to_end(&mut buffer).map_err(|e| io_error(path, e))?;
                if read == 0 {
                    let e = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the file became shorter while it was read");
                    return Err(io_error(path, e));
                }
                *remaining -= read as u64;
                Ok(Some(Bytes::from(buffer)))
            }
            ByteSource::Stream { stream, handle } => loop {
                match handle.block_on(stream.next()) {
                    Some(Ok(chunk)) if chunk.is_empty() => continue,
                    Some(Ok(chunk)) => return Ok(Some(chunk)),
                    Some(Err(e)) => return Err(e),
                    None => return Ok(None),
                }
            },
        }
    }
}

fn io_error(path: &std::path::Path, source: std::io::Error) -> object_store::Error {
    object_store::Error::Generic { store: "local file", source: format!("{}: {source}", path.display()).into() }
}

/// A [`BufRead`] over a [`ByteSource`] (after some bytes already read), for
/// arrow's streaming CSV reader. A storage error ends the input as an I/O
/// error and is kept, so that it is reported as a read error, not as a
/// malformed file.
pub(super) struct ChunkReader {
    source: ByteSource,
    current: Bytes,
    /// The storage error that ended the input early, if any.
    pub(super) error: Option<object_store::Error>,
}

impl ChunkReader {
    /// Reads `prefix`, then the rest of `source`.
    pub(super) fn new(prefix: Bytes, source: ByteSource) -> ChunkReader {
        ChunkReader { source, current: prefix, error: None }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChunkReader {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.current.is_empty() {
            match self.source.next_chunk() {
                Ok(Some(chunk)) => self.current = chunk,
                Ok(None) => break,
                Err(e) => {
                    let message = e.to_string();
                    self.error = Some(e);
                    return Err(std::io::Error::other(message));
                }
            }
        }
        Ok(&self.current)
    }

    fn consume(&mut self, amount: usize) {
        self.current.advance(amount);
    }
}

impl ByteSource {
    /// Every remaining byte, in one buffer (for formats read whole).
    pub(super) fn read_all(mut self) -> object_store::Result<Bytes> {
        let mut all = match &self {
            ByteSource::Memory(bytes) => return Ok(bytes.clone().unwrap_or_default()),
            ByteSource::File { remaining, .. } => bytes::BytesMut::with_capacity(*remaining as usize),
            ByteSource::Stream { .. } => bytes::BytesMut::new(),
        };
        while let Some(chunk) = self.next_chunk()? {
            all.extend_from_slice(&chunk);
        }
        Ok(all.freeze())
    }
}
