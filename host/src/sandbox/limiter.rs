//! The per-iteration resource limiter: caps linear memory, tables and
//! instances, records the peak, and remembers whether the cap was hit so
//! that the failure is reported as `memory_limit`.

use wasmtime::ResourceLimiter;

/// Most instances, tables and memories a transform component may create.
const MAX_INSTANCES: usize = 64;
const MAX_TABLES: usize = 64;
const MAX_MEMORIES: usize = 16;
/// Most elements of one table.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// Caps one iteration's memory.
#[derive(Debug)]
pub struct MemoryLimiter {
    cap: usize,
    /// Bytes of linear memory across all of the guest's memories.
    current: usize,
    peak: usize,
    hit: Option<usize>,
}

impl MemoryLimiter {
    /// A limiter with a cap of `cap` bytes of linear memory in total.
    pub fn new(cap: u64) -> Self {
        MemoryLimiter { cap: usize::try_from(cap).unwrap_or(usize::MAX), current: 0, peak: 0, hit: None }
    }

    /// The most linear memory the guest held at once.
    pub fn peak(&self) -> u64 {
        self.peak as u64
    }

    /// The cap, in bytes.
    pub fn cap(&self) -> u64 {
        self.cap as u64
    }

    /// The guest's linear memory now.
    pub fn current(&self) -> u64 {
        self.current as u64
    }

    /// The size the guest asked for when it hit the cap, if it did.
    pub fn hit(&self) -> Option<usize> {
        self.hit
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = (self.current - current.min(self.current)).saturating_add(desired);
        if total > self.cap {
            self.hit = Some(total);
            // Refusing makes `memory.grow` return -1; Rust's allocator then
            // aborts, which the classification reads with `hit()`.
            return Ok(false);
        }
        self.current = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_the_cap_is_refused_and_remembered() {
        let mut limiter = MemoryLimiter::new(1 << 20);
        assert!(limiter.memory_growing(0, 1 << 19, None).unwrap());
        assert!(limiter.memory_growing(1 << 19, 1 << 20, None).unwrap());
        assert_eq!(limiter.hit(), None);
        assert!(!limiter.memory_growing(1 << 20, 2 << 20, None).unwrap());
        assert_eq!(limiter.hit(), Some(2 << 20));
        assert_eq!(limiter.peak(), 1 << 20);
    }

    #[test]
    fn tables_and_instances_are_capped() {
        let mut limiter = MemoryLimiter::new(1 << 20);
        assert!(limiter.table_growing(0, 1000, None).unwrap());
        assert!(!limiter.table_growing(0, MAX_TABLE_ELEMENTS + 1, None).unwrap());
        assert_eq!((limiter.instances(), limiter.tables(), limiter.memories()), (MAX_INSTANCES, MAX_TABLES, MAX_MEMORIES));
    }
}
