//! What a module may cost the host before it is compiled: its functions and
//! the memory it needs to start, found by a streaming parse of its sections
//! (the function bodies are skipped, never read one by one, and nothing is
//! allocated per function or memory), and how a size is shown in a refusal.

use wasmparser::{Parser, Payload};

/// Components and core modules nested in one another, at most: real
/// components nest two or three deep; the bound keeps the parse's stack
/// small whatever the bytes say.
pub const MAX_NESTING: usize = 100;

/// Why a module could not be inspected.
#[derive(Debug, thiserror::Error)]
pub enum CountError {
    /// The bytes are not a well-formed module or component.
    #[error("{0}")]
    Malformed(#[from] wasmparser::BinaryReaderError),
    /// A code section runs past the end of the bytes.
    #[error("its code section runs past the end of the file (truncated?)")]
    Truncated,
    /// Components or modules nested deeper than [`MAX_NESTING`].
    #[error("its components and modules are nested more than {MAX_NESTING} deep")]
    TooDeep,
}

/// What compiling and starting a module asks of the host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModuleShape {
    /// The functions a module (a component or a core module) asks the
    /// compiler for: those defined by every core module nested in it, plus
    /// the component's canonical functions (each is compiled to a
    /// trampoline). Imported functions are not counted.
    pub functions: u64,
    /// The linear memory its core modules define, at their initial sizes:
    /// what an instance holds before running a line. Imported memories are
    /// not counted (they are another module's).
    pub min_memory_bytes: u64,
}

/// The [`ModuleShape`] of `bytes`, read without compiling.
pub fn inspect(bytes: &[u8]) -> Result<ModuleShape, CountError> {
    // The parsers of the enclosing components, to resume when a nested one
    // ends; bounded by MAX_NESTING.
    let mut stack: Vec<Parser> = Vec::new();
    let mut parser = Parser::new(0);
    let mut data = bytes;
    let mut shape = ModuleShape::default();
    loop {
        let (payload, consumed) = match parser.parse(data, true)? {
            wasmparser::Chunk::Parsed { consumed, payload } => (payload, consumed),
            // Not with `eof = true`: a truncated module is an error.
            wasmparser::Chunk::NeedMoreData(_) => unreachable!("the whole module is given"),
        };
        data = &data[consumed..];
        match payload {
            Payload::FunctionSection(section) => shape.functions = shape.functions.saturating_add(u64::from(section.count())),
            // Each entry is at least two bytes of the section: the loop is
            // bounded by the module's size.
            Payload::MemorySection(section) => {
                for memory in section {
                    let memory = memory?;
                    let page = 1u64.checked_shl(memory.page_size_log2.unwrap_or(16)).unwrap_or(u64::MAX);
                    shape.min_memory_bytes = shape.min_memory_bytes.saturating_add(memory.initial.saturating_mul(page));
                }
            }
            // The code section's count must match the function section's (the
            // parser checks that at the module's end); the bodies are skipped.
            Payload::CodeSectionStart { size, .. } => {
                data = data.get(size as usize..).ok_or(CountError::Truncated)?;
                parser.skip_section();
            }
            Payload::ComponentCanonicalSection(section) => {
                shape.functions = shape.functions.saturating_add(u64::from(section.count()));
            }
            Payload::ModuleSection { parser: nested, .. } | Payload::ComponentSection { parser: nested, .. } => {
                if stack.len() >= MAX_NESTING {
                    return Err(CountError::TooDeep);
                }
                stack.push(std::mem::replace(&mut parser, nested));
            }
            Payload::End(_) => match stack.pop() {
                Some(outer) => parser = outer,
                None => return Ok(shape),
            },
            _ => {}
        }
    }
}

/// A size as the job file writes it: `1 MiB` when it is a whole number of
/// a unit, else rounded (`5.2 MiB`).
pub(crate) fn show_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    match UNITS.iter().find(|(unit, _)| bytes >= *unit) {
        Some((unit, name)) if bytes % unit == 0 => format!("{} {name}", bytes / unit),
        Some(_) => bytesize::ByteSize(bytes).display().iec().to_string(),
        None => format!("{bytes} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn functions(bytes: &[u8]) -> Result<u64, CountError> {
        inspect(bytes).map(|shape| shape.functions)
    }

    #[test]
    fn finds_the_memory_a_module_needs_to_start() {
        let core = wat::parse_str("(module (memory 3) (memory 2))").unwrap();
        assert_eq!(inspect(&core).unwrap().min_memory_bytes, 5 << 16);
        let nested = wat::parse_str(
            "(component (core module (memory 200)) (core module (import \"a\" \"m\" (memory 1000)) (memory 1)))",
        )
        .unwrap();
        assert_eq!(inspect(&nested).unwrap().min_memory_bytes, 201 << 16, "imported memories are not counted");
        // 2^48 pages of 64 KiB is 2^64 bytes, one more than a u64 holds.
        let huge = wat::parse_str("(module (memory i64 281474976710656))").unwrap();
        assert_eq!(inspect(&huge).unwrap().min_memory_bytes, u64::MAX, "saturates, does not wrap");
        let two = wat::parse_str("(module (memory i64 140737488355328) (memory i64 140737488355328))").unwrap();
        assert_eq!(inspect(&two).unwrap().min_memory_bytes, u64::MAX, "the sum saturates too");
    }

    /// `(component (core module (func) …))` with `n` functions, and a
    /// second module with `m`.
    fn component(n: usize, m: usize) -> Vec<u8> {
        let mut text = String::with_capacity((n + m) * 7 + 64);
        text.push_str("(component (core module ");
        text.push_str(&"(func)".repeat(n));
        text.push_str(") (core module ");
        text.push_str(&"(func)".repeat(m));
        text.push_str("))");
        wat::parse_str(&text).unwrap()
    }

    #[test]
    fn counts_the_functions_of_every_nested_module() {
        assert_eq!(functions(&component(3, 4)).unwrap(), 7);
        assert_eq!(functions(&component(0, 0)).unwrap(), 0);
        let core = wat::parse_str("(module (import \"a\" \"b\" (func)) (func) (func))").unwrap();
        assert_eq!(functions(&core).unwrap(), 2, "imports are not counted");
        let nested = wat::parse_str("(component (component (core module (func))) (core module (func) (func)))").unwrap();
        assert_eq!(functions(&nested).unwrap(), 3);
    }

    #[test]
    fn sizes_show_as_the_job_file_writes_them() {
        assert_eq!(show_size(1 << 20), "1 MiB");
        assert_eq!(show_size(256 << 20), "256 MiB");
        assert_eq!(show_size(3 << 30), "3 GiB");
        assert_eq!(show_size(5_452_595), "5.2 MiB");
        assert_eq!(show_size(1000), "1000 bytes");
    }

    #[test]
    fn counts_canonical_functions() {
        let text = r#"(component
            (import "f" (func $f))
            (core func (canon lower (func $f)))
            (core module (func)))"#;
        assert_eq!(functions(&wat::parse_str(text).unwrap()).unwrap(), 2);
    }

    #[test]
    fn a_million_functions_are_counted_keeping_nothing() {
        let bytes = component(1_000_000, 0);
        let before = crate::test_alloc::held();
        assert_eq!(functions(&bytes).unwrap(), 1_000_000);
        let held = crate::test_alloc::held() - before;
        assert!(held < 4096, "counting kept {held} bytes");
    }

    #[test]
    fn truncated_and_deeply_nested_modules_are_errors_not_panics() {
        let bytes = component(10, 10);
        assert!(functions(&bytes[..bytes.len() - 3]).is_err());
        // Cut anywhere: an error or a shorter count, never a panic.
        for cut in 0..bytes.len() {
            assert!(functions(&bytes[..cut]).map_or(true, |n| n < 20), "cut at {cut}");
        }
        assert!(functions(b"not wasm at all").is_err());
        // Components in components, as deep as the text format will not go.
        let nest = |depth: usize| {
            let header = wat::parse_str("(component)").unwrap();
            let mut bytes = header.clone();
            for _ in 0..depth {
                let mut outer = header.clone();
                outer.push(4); // a component section
                let mut len = bytes.len();
                while len >= 0x80 {
                    outer.push((len as u8 & 0x7f) | 0x80);
                    len >>= 7;
                }
                outer.push(len as u8);
                outer.extend_from_slice(&bytes);
                bytes = outer;
            }
            bytes
        };
        assert_eq!(functions(&nest(MAX_NESTING)).unwrap(), 0);
        assert!(matches!(inspect(&nest(MAX_NESTING + 1)), Err(CountError::TooDeep)));
    }
}
