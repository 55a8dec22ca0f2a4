//! What the load costs the gateway's processes: resident memory, sampled
//! through the whole run, and bytes written to storage in the measured window.
//!
//! The bytes written per event are what a durable store pays for each event
//! whatever the disk: unlike throughput, they do not move with the machine's
//! period, so they show where a store's cost comes from (indexes, pages,
//! checkpoints) and whether a change reduced it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A process named on the command line (`--pid NAME=PID`).
pub(crate) type Watched = (String, u32);

/// Resident memory of one process over the run, in KiB.
#[derive(Clone, Copy, Default)]
pub(crate) struct Rss {
    pub(crate) peak_kib: u64,
    pub(crate) last_kib: u64,
}

/// Peak and last RSS per process, sampled every 250 ms until `stop`.
pub(crate) async fn sample_rss(pids: Vec<Watched>, stop: Arc<AtomicBool>) -> Vec<Rss> {
    let mut samples = vec![Rss::default(); pids.len()];
    while !stop.load(Ordering::Relaxed) {
        for ((_, pid), sample) in pids.iter().zip(samples.iter_mut()) {
            if let Some(kib) = read_proc(*pid, "status", "VmRSS:") {
                sample.peak_kib = sample.peak_kib.max(kib);
                sample.last_kib = kib;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    samples
}

/// Bytes each process has caused to be written to storage so far, `None`
/// where that cannot be read (another user's process, or a kernel without
/// I/O accounting). The kernel counts a page when it is dirtied, so bytes
/// rewritten before they reach the disk count once: this is what the disk
/// is asked to write, not what the program passed to `write`.
pub(crate) fn written_bytes(pids: &[Watched]) -> Vec<Option<u64>> {
    pids.iter()
        .map(|(_, pid)| read_proc(*pid, "io", "write_bytes:"))
        .collect()
}

/// The bytes written between two [`written_bytes`] readings, per process.
pub(crate) fn written_between(before: &[Option<u64>], after: &[Option<u64>]) -> Vec<Option<u64>> {
    before
        .iter()
        .zip(after)
        .map(|(before, after)| Some(after.as_ref()?.saturating_sub(*before.as_ref()?)))
        .collect()
}

/// The number after `key` in `/proc/PID/FILE` (`VmRSS:  2048 kB`, `write_bytes: 4096`).
fn read_proc(pid: u32, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    value_of(&text, key)
}

fn value_of(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn values_are_read_after_their_key() {
        let status = "Name:\tkapso-gateway\nVmPeak:\t  30000 kB\nVmRSS:\t   20480 kB\n";
        assert_eq!(value_of(status, "VmRSS:"), Some(20480));
        let io =
            "rchar: 100\nwchar: 200\nread_bytes: 0\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n";
        assert_eq!(value_of(io, "write_bytes:"), Some(8192));
        assert_eq!(value_of(io, "syscr:"), None);
    }

    /// A megabyte written and synced by this process shows in its count.
    #[test]
    fn a_synced_file_counts_as_written() {
        let me = [("self".to_owned(), std::process::id())];
        let before = written_bytes(&me);
        // Beside the sources rather than in $TMPDIR, which is often a tmpfs,
        // where nothing is written to storage. The file has no name and goes
        // when it is closed.
        let mut file = tempfile::tempfile_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        file.write_all(&vec![7u8; 1 << 20]).unwrap();
        file.sync_all().unwrap();
        let written = written_between(&before, &written_bytes(&me))[0];
        assert!(
            written.is_some_and(|bytes| bytes >= 1 << 20),
            "written: {written:?}"
        );
    }

    #[test]
    fn an_unreadable_count_stays_unknown() {
        assert_eq!(
            written_between(&[None, Some(5)], &[Some(9), None]),
            [None, None]
        );
        assert_eq!(written_between(&[Some(5)], &[Some(9)]), [Some(4)]);
    }
}
