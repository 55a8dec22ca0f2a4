//! The adapter's own tests: its router, limits and link to a core, against a
//! fake core, and its binary.

use kapso_adapter_test_support as support;

mod binary;
mod core_link;
mod fuzzish;
mod limits;
mod router;
