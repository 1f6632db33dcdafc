//! Guest text made inert: control characters (C0, C1, ESC, CR, LF inside a
//! line, BEL, DEL) and bidi overrides escaped, and the text cut to a cap
//! with a marker, so that one guest line can never look like a host line
//! or drive the operator's terminal.
//!
//! Escaped are: every C0 control (U+0000–U+001F; [`block`] keeps `\n` and
//! `\t`), DEL, every C1 control (U+0080–U+009F), the bidi controls (U+061C,
//! U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), the line and paragraph
//! separators U+2028 and U+2029, and U+FEFF. `\n`, `\r` and `\t` become
//! those two-character escapes, the others `\u{1b}` and the like (as
//! Rust's `escape_debug` writes them). Everything else, a backslash
//! included, is kept as it is.
//!
//! The work is linear in what is kept, and what is allocated is bounded by
//! the cap (plus the marker), whatever the size of the input.

use std::fmt::Write as _;

/// Bytes reserved for the cut marker: ` [cut: N more bytes]` with a 20-digit N.
const MARKER_BYTES: usize = 40;

/// Whether `c` is shown escaped; `block` keeps `\n` and `\t`.
fn escaped(c: char, block: bool) -> bool {
    match c {
        '\n' | '\t' => !block,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        '\u{2028}' | '\u{2029}' | '\u{feff}' => true,
        _ => false,
    }
}

/// Bytes `c` takes once escaped.
fn escaped_len(c: char, block: bool) -> usize {
    match c {
        _ if !escaped(c, block) => c.len_utf8(),
        '\n' | '\r' | '\t' => 2,
        c => c.escape_unicode().len(),
    }
}

fn push_escaped(out: &mut String, c: char, block: bool) {
    match c {
        _ if !escaped(c, block) => out.push(c),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => out.extend(c.escape_unicode()),
    }
}

fn inert(text: &str, max_bytes: usize, block: bool) -> String {
    let mut out = String::with_capacity(text.len().min(max_bytes).saturating_add(MARKER_BYTES));
    for (at, c) in text.char_indices() {
        if out.len().saturating_add(escaped_len(c, block)) > max_bytes {
            // Nothing past here is looked at: only its length is needed.
            let _ = write!(out, " [cut: {} more bytes]", text.len() - at);
            return out;
        }
        push_escaped(&mut out, c, block);
    }
    out
}

/// `text` as one line: every control character (`\n` and `\t` too) and
/// bidi control escaped, cut to at most `max_bytes` bytes (plus a marker
/// saying how much was cut).
pub fn line(text: &str, max_bytes: usize) -> String {
    inert(text, max_bytes, false)
}

/// `text` as a block of lines: `\n` and `\t` kept, every other control
/// character and bidi control escaped, cut to at most `max_bytes` bytes
/// (plus a marker saying how much was cut).
pub fn block(text: &str, max_bytes: usize) -> String {
    inert(text, max_bytes, true)
}

/// The end of `text` as a block (escaped as by [`block`]): the longest
/// suffix of `text`, starting at a char boundary, that takes at most
/// `max_bytes` bytes once escaped, and how many bytes of `text` before it
/// were left out. For a stream's tail, where the last lines matter most;
/// the caller says what was left out.
pub fn block_tail(text: &str, max_bytes: usize) -> (String, usize) {
    let mut start = text.len();
    let mut size = 0usize;
    for (at, c) in text.char_indices().rev() {
        size = size.saturating_add(escaped_len(c, true));
        if size > max_bytes {
            break;
        }
        start = at;
    }
    (inert(&text[start..], usize::MAX, true), start)
}

/// What the tests of the renderers check their output against: whether
/// `c` may not appear raw (`layout`: `\n` and `\t` may).
#[cfg(test)]
pub(crate) fn is_raw_control(c: char, layout: bool) -> bool {
    let n = c as u32;
    if layout && (c == '\n' || c == '\t') {
        return false;
    }
    n <= 0x1f
        || (0x7f..=0x9f).contains(&n)
        || [0x61c, 0x200e, 0x200f, 0x2028, 0x2029, 0xfeff].contains(&n)
        || (0x202a..=0x202e).contains(&n)
        || (0x2066..=0x2069).contains(&n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORGED: &str = "done\n2026-12-04T00:00:00Z INFO iteration{iteration=3}: iteration succeeded";

    #[test]
    fn a_forged_newline_becomes_an_escape() {
        let out = line(FORGED, 4096);
        assert_eq!(out, "done\\n2026-12-04T00:00:00Z INFO iteration{iteration=3}: iteration succeeded");
        assert!(!out.contains('\n'));
        // A block keeps the line break, but nothing else.
        assert_eq!(block(FORGED, 4096), FORGED);
        assert_eq!(block("a\tb\r\nc", 100), "a\tb\\r\nc");
        assert_eq!(line("a\tb\r\nc", 100), "a\\tb\\r\\nc");
    }

    #[test]
    fn terminal_controls_are_escaped() {
        assert_eq!(line("50%\rdone", 100), "50%\\rdone");
        assert_eq!(line("\x1b[2J\x1b[31mred", 100), "\\u{1b}[2J\\u{1b}[31mred");
        // OSC 52 would set the operator's clipboard.
        let osc52 = "\x1b]52;c;aGk=\x07";
        assert_eq!(line(osc52, 100), "\\u{1b}]52;c;aGk=\\u{7}");
        assert_eq!(block(osc52, 100), "\\u{1b}]52;c;aGk=\\u{7}");
        assert_eq!(line("\0\u{7f}\u{85}\u{9b}", 100), "\\u{0}\\u{7f}\\u{85}\\u{9b}");
        assert_eq!(line("\u{feff}x\u{2028}y\u{2029}", 100), "\\u{feff}x\\u{2028}y\\u{2029}");
    }

    #[test]
    fn bidi_controls_are_escaped() {
        assert_eq!(line("file\u{202e}txt.exe", 100), "file\\u{202e}txt.exe");
        let all = "\u{61c}\u{200e}\u{200f}\u{202a}\u{202b}\u{202c}\u{202d}\u{202e}\u{2066}\u{2067}\u{2068}\u{2069}";
        for out in [line(all, 1000), block(all, 1000)] {
            assert!(!out.chars().any(|c| is_raw_control(c, false)), "{out}");
            assert_eq!(out.matches("\\u{").count(), 12, "{out}");
        }
    }

    #[test]
    fn every_escaped_char_is_escaped_and_nothing_else() {
        for n in 0..0x11000u32 {
            let Some(c) = char::from_u32(n) else { continue };
            let s = c.to_string();
            for layout in [false, true] {
                let out = if layout { block(&s, 100) } else { line(&s, 100) };
                if is_raw_control(c, layout) {
                    assert!(out.starts_with('\\') && out.is_ascii(), "{n:#x}: {out:?}");
                    assert_eq!(out.len(), escaped_len(c, layout));
                } else {
                    assert_eq!(out, s, "{n:#x}");
                }
            }
        }
    }

    #[test]
    fn plain_text_passes_unchanged() {
        let text = "iteration 3: wrote 1,024 rows to s3://bucket/out — ok ✓ (C:\\tmp\\x) ünïcödé 日本語";
        assert_eq!(line(text, 4096), text);
        assert_eq!(block(text, 4096), text);
        assert_eq!(line("", 0), "");
        assert_eq!(line("abc", 3), "abc");
    }

    #[test]
    fn a_cut_marks_how_much_was_left_out() {
        assert_eq!(line("abcdef", 4), "abcd [cut: 2 more bytes]");
        assert_eq!(line("abcdef", 0), " [cut: 6 more bytes]");
        // An escape is kept whole or not at all; N counts the original's bytes.
        assert_eq!(line("ab\x1bcd", 6), "ab [cut: 3 more bytes]");
        assert_eq!(line("ab\ncd", 4), "ab\\n [cut: 2 more bytes]");
    }

    #[test]
    fn multi_byte_utf8_is_cut_at_a_char_boundary() {
        // "é" is 2 bytes, "日" 3: no cap may split one.
        let text = "éé日日";
        for cap in 0..=text.len() {
            let out = line(text, cap);
            let kept = out.split(" [cut: ").next().unwrap();
            assert!(kept.len() <= cap, "{cap}: {out}");
            assert!(text.starts_with(kept), "{cap}: {out}");
            if kept.len() < text.len() {
                assert_eq!(out, format!("{kept} [cut: {} more bytes]", text.len() - kept.len()));
            }
        }
        assert_eq!(line(text, 5), "éé [cut: 6 more bytes]");
        assert_eq!(line(text, 6), "éé [cut: 6 more bytes]");
        assert_eq!(line(text, 7), "éé日 [cut: 3 more bytes]");
    }

    #[test]
    fn a_huge_input_gives_a_short_string_fast() {
        let mut huge = "\x1b".repeat(50 << 20);
        huge.push_str(&"x".repeat(50 << 20));
        let started = std::time::Instant::now();
        for out in [line(&huge, 4096), block(&huge, 4096)] {
            assert!(out.len() <= 4096 + MARKER_BYTES, "{}", out.len());
            assert!(out.capacity() <= 4096 + MARKER_BYTES, "allocated {}", out.capacity());
            let kept = 4096 / 6;
            assert!(out.ends_with(&format!(" [cut: {} more bytes]", huge.len() - kept)), "{}", &out[out.len() - 40..]);
        }
        drop(huge);
        let plain = "y".repeat(100 << 20);
        let out = line(&plain, 100);
        assert_eq!(out, format!("{} [cut: {} more bytes]", "y".repeat(100), (100 << 20) - 100));
        let (tail, left_out) = block_tail(&plain, 100);
        assert_eq!((tail.len(), left_out), (100, (100 << 20) - 100));
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn a_tail_keeps_the_end() {
        assert_eq!(block_tail("abc\ndef", 100), ("abc\ndef".to_owned(), 0));
        assert_eq!(block_tail("abc\ndef", 3), ("def".to_owned(), 4));
        // The escapes count against the cap, and are kept whole.
        assert_eq!(block_tail("ab\x1b[0mpanic", 10), ("[0mpanic".to_owned(), 3));
        assert_eq!(block_tail("ab\x1b[0mpanic", 14), ("\\u{1b}[0mpanic".to_owned(), 2));
        assert_eq!(block_tail("日本", 4), ("本".to_owned(), 3));
        assert_eq!(block_tail("", 0), (String::new(), 0));
    }
}
