//! A guest's stdout or stderr: forwarded line by line to the host's log up
//! to a budget, with the last few KiB kept for the iteration's record.
//! Writes never fail, so a guest that prints without end is not killed by
//! its own output, and the host's memory stays bounded. What is logged and
//! what the record keeps are made inert ([`text`]) first: a guest's output
//! cannot forge a host log line or drive the operator's terminal.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use crate::guest_input::text;

/// Bytes of the stream's end kept for the record.
pub const TAIL_BYTES: usize = 8 * 1024;
/// Bytes forwarded to the host log per stream and iteration.
pub const FORWARD_BYTES: u64 = 64 * 1024;
/// Bytes of one forwarded line: a longer one is forwarded in pieces, each
/// escaped and cut to this.
pub const LINE_BYTES: usize = 4096;

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

    /// The end of what was written, as inert text ([`text::block_tail`]:
    /// lines kept, control characters escaped) of at most [`TAIL_BYTES`]
    /// bytes after a marker line saying how much was left out, or `None`
    /// if nothing was written.
    pub fn tail(&self) -> Option<String> {
        let state = self.state.lock().expect("capture lock");
        if state.total == 0 {
            return None;
        }
        let (a, b) = state.tail.as_slices();
        let raw = String::from_utf8_lossy(&[a, b].concat()).into_owned();
        let (text, left_out) = text::block_tail(raw.trim_end(), TAIL_BYTES);
        let earlier = state.total - state.tail.len() as u64 + left_out as u64;
        if earlier > 0 {
            Some(format!("[... {earlier} earlier bytes not kept]\n{text}"))
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
            if byte == b'\n' || state.line.len() >= LINE_BYTES {
                // A CR before the LF ends the line with it; any other is escaped.
                let raw = &state.line[..];
                let raw = if byte == b'\n' { raw.strip_suffix(b"\r").unwrap_or(raw) } else { raw };
                let line = text::line(&String::from_utf8_lossy(raw), LINE_BYTES);
                state.line.clear();
                if byte != b'\n' {
                    state.line.push(byte);
                }
                // Empty lines are not free: each costs a host line.
                state.forwarded += line.len() as u64 + crate::guest_input::LOG_LINE_OVERHEAD;
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

    const HOSTILE: &str = "50%\rdone \x1b]52;c;aGk=\x07 \u{202e}txt.exe\x1b[2J\n2026-12-04T00:00:00Z INFO iteration{iteration=3}: iteration succeeded\r\n";

    /// The host log lines `f` makes, as the fmt layer writes them.
    fn logged(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl io::Write for Buffer {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).without_time().with_writer(move || writer.clone()).finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn forwarded_lines_are_inert() {
        let out = CapturedOutput::new(7, "stderr");
        let log = logged(|| out.accept(HOSTILE.as_bytes()));
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 2, "{log}");
        assert!(lines[0].contains("50%\\rdone \\u{1b}]52;c;aGk=\\u{7} \\u{202e}txt.exe\\u{1b}[2J"), "{log}");
        // The CR of the CRLF ends the line: it is not shown.
        assert!(lines[1].contains("INFO iteration{iteration=3}: iteration succeeded "), "{log}");
        assert!(!lines[1].contains("succeeded\\r"), "{log}");
        assert!(lines.iter().all(|l| !l.starts_with("2026-12-04")), "{log}");
        assert!(!log.chars().any(|c| text::is_raw_control(c, true)), "{log:?}");
    }

    #[test]
    fn a_long_line_is_forwarded_in_pieces_and_loses_nothing() {
        let out = CapturedOutput::new(1, "stdout");
        let long = format!("{}\n", "x".repeat(LINE_BYTES * 2 + 10));
        let log = logged(|| out.accept(long.as_bytes()));
        assert_eq!(log.matches('x').count(), LINE_BYTES * 2 + 10, "{log}");
        assert_eq!(log.lines().count(), 3);
    }

    #[test]
    fn empty_lines_count_against_the_budget() {
        let out = CapturedOutput::new(1, "stdout");
        let log = logged(|| out.accept(&vec![b'\n'; 1 << 20]));
        let most = (FORWARD_BYTES / crate::guest_input::LOG_LINE_OVERHEAD) as usize + 2;
        assert!(log.lines().count() <= most, "{} lines logged", log.lines().count());
    }

    #[test]
    fn the_tail_is_inert() {
        let out = CapturedOutput::new(1, "stderr");
        out.accept(HOSTILE.as_bytes());
        let tail = out.tail().unwrap();
        assert!(!tail.chars().any(|c| text::is_raw_control(c, true)), "{tail:?}");
        assert!(tail.contains("50%\\rdone \\u{1b}]52;c;aGk=\\u{7} \\u{202e}txt.exe"), "{tail}");
        // The line break is kept: the tail reads as lines.
        assert!(tail.ends_with("\n2026-12-04T00:00:00Z INFO iteration{iteration=3}: iteration succeeded"), "{tail}");
    }

    #[test]
    fn an_escaped_tail_keeps_its_end_within_the_cap() {
        let out = CapturedOutput::new(1, "stderr");
        // Coloured output takes more room once escaped: the end still stays.
        for i in 0..2_000 {
            out.accept(format!("\x1b[31mline {i}\x1b[0m\n").as_bytes());
        }
        out.accept(b"thread 'main' panicked at the end\n");
        let tail = out.tail().unwrap();
        let (marker, text) = tail.split_once('\n').unwrap();
        assert!(marker.starts_with("[... ") && marker.ends_with(" earlier bytes not kept]"), "{marker}");
        assert!(text.len() <= TAIL_BYTES, "{}", text.len());
        assert!(text.ends_with("thread 'main' panicked at the end"), "{text}");
        assert!(!tail.chars().any(|c| text::is_raw_control(c, true)));
    }

    /// Whatever bytes a guest writes, split however: the tail is inert and
    /// within its cap, the log within its budget, every line logged inert,
    /// and the total counted.
    #[test]
    fn any_bytes_in_any_writes_keep_the_capture_bounded_and_inert() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
        let piece = prop_oneof![
            Just(b"\n".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"\x1b[2J".to_vec()),
            Just("\u{202e}".as_bytes().to_vec()),
            Just("\u{2028}".as_bytes().to_vec()),
            Just("日".as_bytes().to_vec()),
            Just("日".as_bytes()[..2].to_vec()),
            Just(vec![0xff, 0xfe, 0x80]),
            prop::collection::vec(any::<u8>(), 0..64),
            (1usize..6000).prop_map(|n| vec![b'x'; n]),
        ];
        let writes = prop::collection::vec(prop::collection::vec(piece, 0..40).prop_map(|p| p.concat()), 1..60);
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[5; 32]);
        let mut runner = TestRunner::new_with_rng(Config { cases: 200, failure_persistence: None, ..Config::default() }, rng);
        runner
            .run(&writes, |writes| {
                let out = CapturedOutput::new(1, "stderr");
                let log = logged(|| writes.iter().for_each(|w| out.accept(w)));
                let total: usize = writes.iter().map(Vec::len).sum();
                prop_assert_eq!(out.total(), total as u64);
                prop_assert!(!log.chars().any(|c| text::is_raw_control(c, false) && c != '\n'), "{log:?}");
                let forwarded = out.state.lock().unwrap().forwarded;
                prop_assert!(forwarded <= FORWARD_BYTES + LINE_BYTES as u64 + 64 + crate::guest_input::LOG_LINE_OVERHEAD, "{forwarded}");
                match out.tail() {
                    None => prop_assert_eq!(total, 0),
                    Some(tail) => {
                        prop_assert!(total > 0);
                        prop_assert!(tail.len() <= TAIL_BYTES + 64, "a tail of {} bytes", tail.len());
                        prop_assert!(!tail.chars().any(|c| text::is_raw_control(c, true)), "{tail:?}");
                    }
                }
                Ok(())
            })
            .unwrap();
    }
}
