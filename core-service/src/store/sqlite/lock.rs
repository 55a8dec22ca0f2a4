//! One core per database file: an exclusive advisory lock on `FILE.lock`
//! beside the database, held for as long as the store is open.
//!
//! Two writers on one file would interleave their group commits and hand out
//! the same sequences, so a second core must refuse to start. SQLite's own
//! locks are per transaction and cannot say that. The lock is the kernel's
//! (`flock`): it goes with the process, even one killed with SIGKILL, so a
//! stale lock file never keeps a restarted core out.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::store::StoreError;

/// Held while the store is open; dropping it releases the file.
#[derive(Debug)]
pub(super) struct FileLock {
    _file: File,
}

/// Takes the lock of `database`, writing this process's id into the lock
/// file; refuses, naming the holder when its id can be read, if another
/// process (or another store in this one) holds it.
pub(super) fn acquire(database: &Path) -> Result<FileLock, StoreError> {
    let mut path = database.as_os_str().to_owned();
    path.push(".lock");
    let path = Path::new(&path);
    let unusable = |error: std::io::Error| {
        StoreError::Unavailable(format!("cannot lock {}: {error}", path.display()))
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(unusable)?;
    match file.try_lock() {
        Ok(()) => {
            // The id is only for the message another core prints.
            file.set_len(0).map_err(unusable)?;
            file.rewind().map_err(unusable)?;
            writeln!(file, "{}", std::process::id()).map_err(unusable)?;
            Ok(FileLock { _file: file })
        }
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let holder = match file.read_to_string(&mut holder) {
                Ok(_) => holder.trim().parse::<u32>().ok(),
                Err(_) => None,
            };
            let who = holder.map_or_else(
                || "another process".to_owned(),
                |pid| format!("another process (pid {pid})"),
            );
            Err(StoreError::Unavailable(format!(
                "database {} is in use by {who}, which holds {}: \
                 a SQLite database takes one core; stop the other or use PostgreSQL",
                database.display(),
                path.display()
            )))
        }
        Err(TryLockError::Error(error)) => Err(unusable(error)),
    }
}
