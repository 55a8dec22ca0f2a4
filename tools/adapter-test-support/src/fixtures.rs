//! The recorded Kapso deliveries in `adapter/tests/fixtures` (their README says
//! where each comes from), shared by every crate's tests and the fuzz corpus.

use std::path::PathBuf;

/// The fixtures directory, found from this crate's place in the workspace.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../adapter/tests/fixtures")
}

/// The bytes of fixture `name` (e.g. `received_text.json`), exactly as stored.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading fixture {}: {e}", path.display()))
}
