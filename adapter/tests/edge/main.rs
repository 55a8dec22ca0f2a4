//! The adapter's own tests: its router, limits and link to a core, against a fake core.

#[path = "../support/mod.rs"]
mod support;

mod core_link;
mod fuzzish;
mod limits;
mod router;
