//! Guest text made inert: control characters (C0, C1, ESC, CR, LF inside a
//! line, BEL, DEL) and bidi overrides escaped, and the text cut to a cap
//! with a marker, so that one guest line can never look like a host line
//! or drive the operator's terminal.

/// `text` as one line: every control character (`\n` and `\t` too) and
/// bidi control escaped, cut to at most `max_bytes` bytes (plus a marker
/// saying how much was cut).
pub fn line(text: &str, max_bytes: usize) -> String {
    let _ = (text, max_bytes);
    todo!("guest_input::text::line")
}

/// `text` as a block of lines: `\n` and `\t` kept, every other control
/// character and bidi control escaped, cut to at most `max_bytes` bytes
/// (plus a marker saying how much was cut).
pub fn block(text: &str, max_bytes: usize) -> String {
    let _ = (text, max_bytes);
    todo!("guest_input::text::block")
}
