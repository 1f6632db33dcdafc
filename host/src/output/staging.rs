//! Where a local output's files are staged before they are renamed into
//! place (a name per process and host), and removing what a killed run
//! left without touching what a live attempt is writing.

use std::path::PathBuf;

/// Where a local file is staged before it is renamed to `name`: the
/// `NAME#…` form of object_store's local store, which its listings hide
/// and [`remove_local_staging`] removes after a killed run. The suffix is
/// this process's [`StagingOwner`], so that no two attempts share one,
/// on one host or on several writing to a shared disk.
pub(super) fn staging_path(dir: &std::path::Path, name: &str) -> PathBuf {
    dir.join(format!("{name}#{}", StagingOwner::current()))
}

/// Who wrote a staging file: a process id and a hash of its host's name,
/// `PID.HOST` (`PID` alone in files of older runs and object_store's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct StagingOwner {
    pid: u32,
    host: Option<u32>,
}

impl StagingOwner {
    /// This process.
    pub(super) fn current() -> StagingOwner {
        static CURRENT: std::sync::OnceLock<StagingOwner> = std::sync::OnceLock::new();
        *CURRENT.get_or_init(|| StagingOwner { pid: std::process::id(), host: Some(host_hash()) })
    }

    /// The owner a staging suffix names, if it is one of ours.
    fn parse(suffix: &str) -> Option<StagingOwner> {
        let (pid, host) = match suffix.split_once('.') {
            Some((pid, host)) => (pid, Some(u32::from_str_radix(host, 16).ok().filter(|_| host.len() == 8)?)),
            None => (suffix, None),
        };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(StagingOwner { pid: pid.parse().ok()?, host })
    }

    /// Whether a file it staged `age` ago is left over, not being written:
    /// on this host, when its process is gone (or is this one, which has
    /// no file staged where it is about to write); from another host, which
    /// this one cannot see, after [`FOREIGN_STAGING_AGE`]; in the `PID`
    /// form (object_store's counter, not a pid), after
    /// [`PLAIN_STAGING_AGE`].
    fn left_over(self, age: std::time::Duration) -> bool {
        let here = StagingOwner::current();
        match self.host {
            None => age > PLAIN_STAGING_AGE,
            Some(host) if Some(host) != here.host => age > FOREIGN_STAGING_AGE,
            Some(_) => self.pid == here.pid || !std::path::Path::new(&format!("/proc/{}", self.pid)).exists(),
        }
    }
}

impl std::fmt::Display for StagingOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.host {
            Some(host) => write!(f, "{}.{host:08x}", self.pid),
            None => write!(f, "{}", self.pid),
        }
    }
}

/// A hash of this host's name (FNV-1a: stable across builds and runs).
fn host_hash() -> u32 {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    name.trim().bytes().fold(0x811c_9dc5u32, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193))
}

/// A staging file another host's attempt left is removed once it is this
/// old: no attempt writes one file for a day.
const FOREIGN_STAGING_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A staging file of object_store's (a manifest's, a failure record's: it
/// exists for the milliseconds of one put) is removed once it is this old,
/// so that a concurrent attempt's put in flight is not.
const PLAIN_STAGING_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes the staging files a killed run left in the local directory `dir`
/// for the object `name` (for every object, if `name` is empty). object_store's
/// local store writes `NAME#N` and renames it into place, and hides such
/// files from listings, so nothing else would ever remove them. A file an
/// attempt may still be writing ([`StagingOwner::left_over`]) is left
/// alone: two attempts of one shard may run at once.
pub fn remove_local_staging(dir: &std::path::Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        let Some((object, suffix)) = file.rsplit_once('#') else { continue };
        let Some(owner) = StagingOwner::parse(suffix) else { continue };
        let age = entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).unwrap_or_default();
        if (name.is_empty() || object == name) && owner.left_over(age) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::info!(file = %entry.path().display(), "removed a staging file left by an earlier run"),
                Err(e) => tracing::warn!(file = %entry.path().display(), "cannot remove a stale staging file: {e}"),
            }
        }
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_files_of_a_killed_run_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        // Pids above the kernel's largest (2^22) are of no process.
        let here = StagingOwner::current();
        let dead = StagingOwner { pid: 99_999_999, ..here };
        let (ours, theirs) = (format!("_SUCCESS#{here}"), format!("_SUCCESS#{dead}"));
        // object_store's `NAME#N` files count once they are a minute old.
        let names = ["part-00000.parquet", "part-00000.parquet#3", "_SUCCESS#12", "_SUCCESS", "notes#draft", "iter_1.json#2", "iter_12.json#1"];
        let minutes_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
        for name in names.iter().copied().chain([ours.as_str(), theirs.as_str()]) {
            let file = std::fs::File::create(dir.path().join(name)).unwrap();
            if !name.contains('.') || name.rsplit_once('#').is_some_and(|(_, suffix)| !suffix.contains('.')) {
                file.set_modified(minutes_ago).unwrap();
            }
        }
        std::fs::File::create(dir.path().join("_manifest.json#1")).unwrap();
        remove_local_staging(dir.path(), "iter_1.json");
        let mut left: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        let mut want = vec!["_SUCCESS", "_SUCCESS#12", "_manifest.json#1", "iter_12.json#1", "notes#draft", "part-00000.parquet", "part-00000.parquet#3", ours.as_str(), theirs.as_str()];
        want.sort();
        assert_eq!(left, want);
        remove_local_staging(dir.path(), "");
        let mut left: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["_SUCCESS", "_manifest.json#1", "notes#draft", "part-00000.parquet"], "a put in flight (under a minute old) stays");
    }

    #[test]
    fn staging_files_of_a_live_attempt_or_another_host_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let here = StagingOwner::current();
        // pid 1 is always alive; another host's file is recent.
        let live = StagingOwner { pid: 1, ..here };
        let elsewhere = StagingOwner { pid: 99_999_999, host: here.host.map(|h| h ^ 1) };
        for owner in [live, elsewhere] {
            assert_eq!(StagingOwner::parse(&owner.to_string()), Some(owner));
            std::fs::write(dir.path().join(format!("part-00000.parquet#{owner}")), b"x").unwrap();
        }
        remove_local_staging(dir.path(), "");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "both are left for their writers");
        assert_eq!(StagingOwner::parse("12.zz"), None);
        assert_eq!(StagingOwner::parse("12"), Some(StagingOwner { pid: 12, host: None }));
    }
}
