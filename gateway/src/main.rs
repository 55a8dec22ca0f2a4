//! `kapso-gateway` binary: parse both halves' configuration, start logging (and
//! traces), serve until Ctrl-C or SIGTERM, then flush the spans still buffered.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (adapter, core) = kapso_gateway::config::parse();
    let telemetry = kapso_telemetry::init("kapso-gateway", adapter.log_format)?;
    let served = kapso_gateway::run(adapter, core, kapso_process::shutdown::signal()).await;
    // After both have drained: the last deliveries' spans are exported too.
    telemetry.shutdown().await;
    served
}
