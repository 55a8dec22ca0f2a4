//! The adapter with a real core: in one process (`kapso-gateway`) and as two,
//! and the trace both export over OTLP.

use kapso_adapter_test_support as support;

mod e2e;
mod in_process;
mod otlp;
