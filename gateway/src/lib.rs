//! `kapso_gateway`: the adapter and the core in one process (`kapso-gateway`),
//! for the quick start and small deployments. Each keeps its own address:
//! internal services reach the core's gRPC port as they would a separate
//! `kapso-core`.
//!
//! The adapter calls the core's `Ingest` through the core's own gRPC service
//! stack inside the process (the same messages, token check, spans and metrics)
//! rather than over a loopback HTTP/2 connection, whose cost on a small
//! machine is measured in docs/design/write-path.md ("kapso-gateway").
//! Moving to separate processes later changes no behaviour, only that hop's
//! transport.
//!
//! Configured by the adapter's and the core's settings together, each as a
//! flag or its environment variable (`kapso-gateway --help`). The adapter
//! always talks to this process's core, so `CORE_GRPC_URL` is not one of them.
//!
//! The only crate that depends on both halves: the adapter alone never builds the core.
//!
//! Modules:
//! - [`config`]: the one command line assembled from both halves' settings.

use std::future::Future;

use anyhow::Context as _;

use kapso_adapter::core_client::CoreClient;
use kapso_core::auth::Scope;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub mod config;

/// Binds both addresses, opens the core and serves both until `shutdown`
/// resolves; then the adapter drains first, and the core after it.
pub async fn run(
    mut adapter: kapso_adapter::Config,
    mut core: kapso_core::Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    core.outbound.resolve_api_key()?;
    core.check_protected(core.listen_addr)?;

    let core_listener = TcpListener::bind(core.listen_addr)
        .await
        .with_context(|| format!("binding CORE_LISTEN_ADDR {}", core.listen_addr))?;
    // The in-process core must accept the adapter: without GATEWAY_API_TOKEN,
    // present the first token that may ingest. Tokens but none with `ingest`
    // would refuse every webhook, so that configuration does not start.
    if adapter.gateway_api_token.is_none()
        && let Some(tokens) = core.gateway_api_tokens.as_ref()
    {
        let ingest = tokens
            .tokens()
            .iter()
            .find(|t| t.scopes().contains(Scope::Ingest))
            .context(
                "no token in GATEWAY_API_TOKENS has the `ingest` scope the adapter needs: \
                 give one the scope or set GATEWAY_API_TOKEN",
            )?;
        adapter.gateway_api_token = Some(ingest.expose().parse()?);
    }
    let adapter_listener = TcpListener::bind(adapter.listen_addr)
        .await
        .with_context(|| format!("binding ADAPTER_LISTEN_ADDR {}", adapter.listen_addr))?;
    let core = kapso_core::Core::open(core).await?;
    let link = CoreClient::in_process(core.link(), &adapter);

    // Shutdown order: the adapter stops taking webhooks and drains first, so
    // every delivery it still forwards finds the core up; then the core.
    let (stop_adapter, adapter_stopping) = watch::channel(false);
    let (stop_core, core_stopping) = watch::channel(false);
    let mut core = tokio::spawn(core.serve(core_listener, stopped(core_stopping)));
    let mut adapter = tokio::spawn(kapso_adapter::run_with_core(
        adapter,
        link,
        adapter_listener,
        stopped(adapter_stopping),
    ));
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_adapter.send(true);
    });

    let adapter_result = tokio::select! {
        ended = &mut adapter => ended.context("adapter task")?,
        // Only a failure ends the core before it is told to stop (its store
        // stopped for good): the whole process exits with it, to be restarted.
        ended = &mut core => {
            ended.context("core task")??;
            anyhow::bail!("the core stopped on its own");
        }
    };
    let _ = stop_core.send(true);
    let core_result = core.await.context("core task")?;
    adapter_result.and(core_result)
}

/// Resolves once the flag flips to true (or its sender is gone).
async fn stopped(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
}
