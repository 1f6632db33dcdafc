//! What of the machine this process may use, read once: its CPUs (the
//! affinity mask and a cgroup's CPU quota) and its memory (the machine's,
//! a cgroup v2 or v1 memory limit, the address-space limit `RLIMIT_AS`).
//! corral's defaults (workers, runtime and loader threads, the memory
//! budget, the sandbox's address-space reservations) are sized from it,
//! not from the machine, and the manifest records it.

use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

/// What this process may use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// CPUs it may run on: the affinity mask, lowered to a cgroup's CPU
    /// quota (`std::thread::available_parallelism`, which reads both).
    pub cpus: usize,
    /// The machine's online CPUs.
    pub machine_cpus: usize,
    /// The machine's memory (`MemTotal`), bytes.
    pub machine_memory_bytes: Option<u64>,
    /// The memory limit of its cgroup (v2 `memory.max`, v1
    /// `memory.limit_in_bytes`; the lowest on the way to the root), bytes.
    pub cgroup_memory_bytes: Option<u64>,
    /// Its address-space limit (`RLIMIT_AS`, as `ulimit -v` and PySpark's
    /// `spark.executor.pyspark.memory` set it), bytes, if not unlimited.
    pub address_space_bytes: Option<u64>,
}

impl Share {
    /// This process's share, read once.
    pub fn current() -> &'static Share {
        static SHARE: OnceLock<Share> = OnceLock::new();
        SHARE.get_or_init(|| {
            let read = |path: &str| std::fs::read_to_string(path).ok();
            Share {
                cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
                machine_cpus: read("/sys/devices/system/cpu/online").as_deref().and_then(count_cpu_list).unwrap_or(0),
                machine_memory_bytes: read("/proc/meminfo").as_deref().and_then(mem_total),
                cgroup_memory_bytes: read("/proc/self/cgroup")
                    .and_then(|text| cgroup_memory_limit(&text, Path::new("/sys/fs/cgroup"))),
                address_space_bytes: read("/proc/self/limits").as_deref().and_then(address_space_limit),
            }
        })
    }

    /// The resident memory it may use: the lower of the machine's and the
    /// cgroup's.
    pub fn memory_bytes(&self) -> Option<u64> {
        [self.machine_memory_bytes, self.cgroup_memory_bytes].into_iter().flatten().min()
    }

    /// The default memory budget (what the running iterations' memory caps
    /// may add up to): 3/4 of [`Share::memory_bytes`] (4 GiB where it
    /// cannot be read), and at most half an address-space limit, whose
    /// other half the host's own mappings (compiled code, thread stacks,
    /// allocator arenas, the config table) need.
    pub fn default_memory_budget(&self) -> u64 {
        let resident = self.memory_bytes().map_or(4 << 30, |bytes| bytes / 4 * 3);
        self.address_space_bytes.map_or(resident, |limit| resident.min(limit / 2))
    }
}

/// The threads the host's parallel work uses (0: not set, the share's CPUs).
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets the threads the host's parallel work (the config's parsing and
/// indexing, the runtime) uses, for this process: a run sets it to its
/// CPUs before it starts. One figure for the process, as
/// `available_parallelism` is.
pub fn set_threads(threads: usize) {
    THREADS.store(threads.max(1), Ordering::Relaxed);
}

/// The threads the host's parallel work uses: what [`set_threads`] set,
/// else the share's CPUs.
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => Share::current().cpus,
        threads => threads,
    }
}

/// CPUs in a list such as `0-3,8,10-11`.
fn count_cpu_list(text: &str) -> Option<usize> {
    let mut count = 0;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        count += match part.split_once('-') {
            Some((a, b)) => b.trim().parse::<usize>().ok()?.checked_sub(a.trim().parse().ok()?)? + 1,
            None => part.trim().parse::<usize>().map(|_| 1).ok()?,
        };
    }
    (count > 0).then_some(count)
}

/// `MemTotal` of `/proc/meminfo`, bytes.
fn mem_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok()?.checked_mul(1024)
}

/// The soft `Max address space` of `/proc/self/limits`, bytes, unless
/// unlimited.
fn address_space_limit(text: &str) -> Option<u64> {
    let line = text.lines().find_map(|l| l.strip_prefix("Max address space"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// A cgroup v1 memory limit this high means none (the kernel's
/// `PAGE_COUNTER_MAX` in bytes, about 2^63).
const V1_UNLIMITED: u64 = 1 << 62;

/// The memory limit of the cgroup `/proc/self/cgroup` (`text`) names,
/// under the cgroup file systems mounted at `root`: v2's `memory.max`, or
/// v1's `memory/…/memory.limit_in_bytes`, the lowest from the process's
/// cgroup up to the root (a parent's limit bounds its children).
fn cgroup_memory_limit(text: &str, root: &Path) -> Option<u64> {
    let mut limits = Vec::new();
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next()) else { continue };
        let relative = path.trim_start_matches('/');
        if id == "0" && controllers.is_empty() {
            // v2: the unified hierarchy, at `root` or, in hybrid mode, at
            // `root/unified`.
            for base in [root.to_owned(), root.join("unified")] {
                limits.extend(walk_up(&base, relative, "memory.max", |text| text.trim().parse().ok()));
            }
        } else if controllers.split(',').any(|c| c == "memory") {
            limits.extend(walk_up(&root.join("memory"), relative, "memory.limit_in_bytes", |text| {
                text.trim().parse::<u64>().ok().filter(|&bytes| bytes < V1_UNLIMITED)
            }));
        }
    }
    limits.into_iter().min()
}

/// The lowest of `file` read by `parse` in `base/relative` and each of its
/// parents up to `base`.
fn walk_up(base: &Path, relative: &str, file: &str, parse: impl Fn(&str) -> Option<u64>) -> Option<u64> {
    let mut dir = base.join(relative);
    let mut lowest = None;
    loop {
        if let Some(bytes) = std::fs::read_to_string(dir.join(file)).ok().as_deref().and_then(&parse) {
            lowest = Some(lowest.map_or(bytes, |l: u64| l.min(bytes)));
        }
        if dir == base || !dir.pop() || !dir.starts_with(base) {
            return lowest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_are_counted() {
        assert_eq!(count_cpu_list("0-1\n"), Some(2));
        assert_eq!(count_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list(""), None);
    }

    #[test]
    fn the_address_space_limit_is_the_soft_one_and_unlimited_is_none() {
        let limited = "Limit                     Soft Limit           Hard Limit           Units     \n\
                       Max stack size            8388608              unlimited            bytes     \n\
                       Max address space         4294967296           unlimited            bytes     \n";
        assert_eq!(address_space_limit(limited), Some(4 << 30));
        assert_eq!(address_space_limit("Max address space         unlimited            unlimited            bytes"), None);
        assert_eq!(mem_total("MemTotal:       24570000 kB\nMemFree: 1 kB\n"), Some(24_570_000 * 1024));
    }

    #[test]
    fn cgroup_limits_are_read_up_to_the_root_v1_and_v2() {
        let root = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        // v1: the process's group is unlimited, its parent is not.
        write("memory/memory.limit_in_bytes", "9223372036854771712\n");
        write("memory/spark/memory.limit_in_bytes", "1073741824\n");
        write("memory/spark/task/memory.limit_in_bytes", "9223372036854771712\n");
        let v1 = "4:memory:/spark/task\n3:cpuset:/\n0::/\n";
        assert_eq!(cgroup_memory_limit(v1, root.path()), Some(1 << 30));
        // v2: `max` is none; a number is a limit.
        write("yarn/container_1/memory.max", "max\n");
        write("yarn/memory.max", "2147483648\n");
        assert_eq!(cgroup_memory_limit("0::/yarn/container_1\n", root.path()), Some(2 << 30));
        assert_eq!(cgroup_memory_limit("0::/\n", root.path()), None);
        assert_eq!(cgroup_memory_limit("garbage\n", root.path()), None);
    }

    #[test]
    fn the_budget_is_three_quarters_of_the_least_memory_and_half_the_address_space() {
        let share = |machine, cgroup, address| Share {
            cpus: 2,
            machine_cpus: 2,
            machine_memory_bytes: machine,
            cgroup_memory_bytes: cgroup,
            address_space_bytes: address,
        };
        assert_eq!(share(Some(16 << 30), None, None).default_memory_budget(), 12 << 30);
        assert_eq!(share(Some(16 << 30), Some(4 << 30), None).default_memory_budget(), 3 << 30);
        assert_eq!(share(Some(16 << 30), Some(4 << 30), Some(2 << 30)).default_memory_budget(), 1 << 30);
        assert_eq!(share(None, None, None).default_memory_budget(), 4 << 30);
    }
}
