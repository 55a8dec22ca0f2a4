//! The one command line of `kapso-gateway`: every setting of the adapter and
//! of the core, each as a flag or its environment variable.
//!
//! Both binaries call their address `--listen-addr`, and clap identifies an
//! argument by its field name, so their structs cannot simply be flattened
//! into one. The command is instead assembled from both: the two addresses
//! become `--adapter-listen-addr` and `--core-listen-addr` (named after their
//! variables), a setting both share (`LOG_FORMAT`) appears once. Parsing it
//! checks every value, answers `--help` and `--version` and refuses unknown
//! flags; each typed config is then built from the flags given to it, and
//! reads its own variables for the rest.

use std::ffi::OsString;

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command, CommandFactory as _, Parser as _};

/// A setting both binaries have under the same id, renamed here as `(id, long flag)`.
const ADAPTER_LISTEN: (&str, &str) = ("adapter_listen_addr", "adapter-listen-addr");
const CORE_LISTEN: (&str, &str) = ("core_listen_addr", "core-listen-addr");

/// Adapter settings that have no meaning in one process: the link to the
/// core is in process, whatever these say.
const ADAPTER_ONLY_APART: &[&str] = &["core_grpc_url"];

/// The adapter's and the core's configs from this process's flags and
/// environment; on a bad value, `--help` or `--version`, prints and exits.
pub fn parse() -> (kapso_adapter::Config, kapso_core::Config) {
    let adapter_args = own_args(
        kapso_adapter::Config::command(),
        "listen_addr",
        ADAPTER_LISTEN,
    )
    .into_iter()
    .filter(|arg| !ADAPTER_ONLY_APART.contains(&arg.get_id().as_str()))
    .collect::<Vec<_>>();
    let core_args = own_args(kapso_core::Config::command(), "listen_addr", CORE_LISTEN)
        .into_iter()
        .filter(|arg| adapter_args.iter().all(|a| a.get_id() != arg.get_id()))
        .collect::<Vec<_>>();
    let matches = command(&adapter_args, &core_args)
        .try_get_matches()
        .unwrap_or_else(|e| e.exit());

    let adapter = kapso_adapter::Config::try_parse_from(argv(
        &matches,
        &kapso_adapter::Config::command(),
        ADAPTER_LISTEN.0,
    ))
    .unwrap_or_else(|e| e.exit());
    let core = kapso_core::Config::try_parse_from(argv(
        &matches,
        &kapso_core::Config::command(),
        CORE_LISTEN.0,
    ))
    .unwrap_or_else(|e| e.exit());
    (adapter, core)
}

fn command(adapter: &[Arg], core: &[Arg]) -> Command {
    Command::new("kapso-gateway")
        .version(env!("CARGO_PKG_VERSION"))
        .about(
            "kapso-gateway: the Kapso webhook adapter and the gateway core in one process. \
             The adapter uses the first GATEWAY_API_TOKENS token with the `ingest` scope \
             unless GATEWAY_API_TOKEN is set.",
        )
        .next_help_heading("Adapter (as kapso-adapter)")
        .args(adapter.iter().cloned())
        .next_help_heading("Core (as kapso-core)")
        .args(core.iter().cloned())
}

/// A binary's arguments without clap's own `help`/`version`, its address renamed.
fn own_args(binary: Command, listen: &str, (id, long): (&'static str, &'static str)) -> Vec<Arg> {
    binary
        .get_arguments()
        .filter(|arg| !matches!(arg.get_id().as_str(), "help" | "version"))
        .map(|arg| {
            if arg.get_id() == listen {
                arg.clone().id(id).long(long)
            } else {
                arg.clone()
            }
        })
        .collect()
}

/// The command line one binary would have been given: each of its flags
/// that was given to `kapso-gateway`, with the values as given.
fn argv(matches: &ArgMatches, binary: &Command, listen_id: &str) -> Vec<OsString> {
    let mut argv = vec![OsString::from("kapso-gateway")];
    for arg in binary.get_arguments() {
        let id = match arg.get_id().as_str() {
            "listen_addr" => listen_id,
            other => other,
        };
        let Some(long) = arg.get_long() else { continue };
        if matches!(id, "help" | "version")
            || ADAPTER_ONLY_APART.contains(&id)
            || matches.value_source(id) != Some(ValueSource::CommandLine)
        {
            continue;
        }
        for value in matches.get_raw(id).into_iter().flatten() {
            let mut flag = OsString::from(format!("--{long}="));
            flag.push(value);
            argv.push(flag);
        }
    }
    argv
}
