//! A guest's stdout or stderr: forwarded line by line to the host's log up
//! to a budget, with the last few KiB kept for the iteration's record.
//! Writes never fail, so a guest that prints without end is not killed by
//! its own output, and the host's memory stays bounded.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Bytes of the stream's end kept for the record.
pub const TAIL_BYTES: usize = 8 * 1024;
/// Bytes forwarded to the host log per stream and iteration.
pub const FORWARD_BYTES: u64 = 64 * 1024;

#[derive(Debug, Default)]
struct State {
    tail: VecDeque<u8>,
    line: Vec<u8>,
    total: u64,
    forwarded: u64,
}

/// One captured stream of one iteration.
#[derive(Clone, Debug)]
pub struct CapturedOutput {
    iteration: i64,
    stream: &'static str,
    state: Arc<Mutex<State>>,
}

impl CapturedOutput {
    /// A capture of `stream` ("stdout" or "stderr") for `iteration`.
    pub fn new(iteration: i64, stream: &'static str) -> Self {
        CapturedOutput { iteration, stream, state: Arc::default() }
    }

    /// The last [`TAIL_BYTES`] written, as text, or `None` if nothing was.
    pub fn tail(&self) -> Option<String> {
        let state = self.state.lock().expect("capture lock");
        if state.total == 0 {
            return None;
        }
        let (a, b) = state.tail.as_slices();
        let text = String::from_utf8_lossy(&[a, b].concat()).into_owned();
        let text = text.trim_end().to_owned();
        if state.total > TAIL_BYTES as u64 {
            Some(format!("[... {} earlier bytes not kept]\n{text}", state.total - TAIL_BYTES as u64))
        } else {
            Some(text)
        }
    }

    /// Total bytes the guest wrote.
    pub fn total(&self) -> u64 {
        self.state.lock().expect("capture lock").total
    }

    fn accept(&self, bytes: &[u8]) {
        let mut state = self.state.lock().expect("capture lock");
        state.total += bytes.len() as u64;
        let keep = &bytes[bytes.len().saturating_sub(TAIL_BYTES)..];
        state.tail.extend(keep);
        let excess = state.tail.len().saturating_sub(TAIL_BYTES);
        state.tail.drain(..excess);
        if state.forwarded >= FORWARD_BYTES {
            return;
        }
        for &byte in bytes {
            if byte == b'\n' || state.line.len() >= 4096 {
                let line = String::from_utf8_lossy(&state.line).into_owned();
                state.line.clear();
                state.forwarded += line.len() as u64 + 1;
                tracing::info!(target: "corral::guest", iteration = self.iteration, stream = self.stream, "{line}");
                if state.forwarded >= FORWARD_BYTES {
                    tracing::warn!(
                        target: "corral::guest",
                        iteration = self.iteration,
                        stream = self.stream,
                        "further {} output of this iteration is not logged (over {FORWARD_BYTES} bytes)",
                        self.stream
                    );
                    return;
                }
            } else {
                state.line.push(byte);
            }
        }
    }
}

impl AsyncWrite for CapturedOutput {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.accept(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_tail() {
        let out = CapturedOutput::new(1, "stderr");
        for i in 0..10_000 {
            out.accept(format!("line {i}\n").as_bytes());
        }
        let tail = out.tail().unwrap();
        assert!(tail.ends_with("line 9999"), "{tail}");
        assert!(tail.starts_with("[... "), "{tail}");
        assert!(tail.len() < TAIL_BYTES + 100);
        assert_eq!(out.total(), (0..10_000).map(|i| format!("line {i}\n").len() as u64).sum::<u64>());
    }

    #[test]
    fn an_empty_stream_has_no_tail() {
        assert_eq!(CapturedOutput::new(1, "stdout").tail(), None);
    }
}
