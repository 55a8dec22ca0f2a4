//! The `kapso-adapter` executable for the tests of another crate.
//!
//! Cargo hands a test the paths of its own package's binaries only
//! (`CARGO_BIN_EXE_*`), and depending on a binary of another package
//! (artifact dependencies) is not stable Cargo. So the gateway's tests, which
//! run `kapso-adapter` as a process of its own, find it in the same target
//! directory as their `kapso-gateway` and have Cargo build it when it is
//! missing or older than a source file it was built from. Trusting an existing
//! fresh binary matters: `cargo test --workspace` has just built it, and a
//! `cargo build -p kapso-adapter` would resolve features for that package alone
//! and compile its dependencies a second time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

/// `kapso-adapter` in the directory of `sibling` (a binary of the same build,
/// e.g. `env!("CARGO_BIN_EXE_kapso-gateway")`), built first if it is missing
/// or stale. Panics, with Cargo's output, when it cannot be built.
pub fn kapso_adapter_beside(sibling: impl AsRef<Path>) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let profile_dir = sibling
                .as_ref()
                .parent()
                .expect("a binary lies in a directory");
            let binary = profile_dir.join(format!("kapso-adapter{}", std::env::consts::EXE_SUFFIX));
            if !is_fresh(&binary, &profile_dir.join("kapso-adapter.d")) {
                build(profile_dir);
            }
            binary
        })
        .clone()
}

/// Built after every source it was compiled from was last changed: the files
/// Cargo's dep-info lists, or, where there is none (Cargo writes it beside the
/// binary for `cargo build`, not for the binaries a `cargo test` builds), every
/// file of the crates it is made of.
fn is_fresh(binary: &Path, dep_info: &Path) -> bool {
    let Some(built) = modified(binary) else {
        return false;
    };
    let sources = match std::fs::read_to_string(dep_info) {
        Ok(deps) => listed_sources(&deps),
        Err(_) => Some(workspace_sources()),
    };
    sources.is_some_and(|sources| {
        sources
            .iter()
            .all(|source| modified(source).is_some_and(|changed: SystemTime| changed <= built))
    })
}

fn modified(path: &Path) -> Option<SystemTime> {
    path.metadata().and_then(|m| m.modified()).ok()
}

/// The sources a dep-info file names: `target: source source ...`, spaces in
/// paths escaped as `\ `.
fn listed_sources(deps: &str) -> Option<Vec<PathBuf>> {
    let (_, sources) = deps.lines().next()?.split_once(": ")?;
    let sources = sources.replace("\\ ", "\u{0}");
    Some(
        sources
            .split_whitespace()
            .map(|source| PathBuf::from(source.replace('\u{0}', " ")))
            .collect(),
    )
}

/// Every file of the crates `kapso-adapter` is built from: the adapter, the
/// wire contract and the shared crates.
fn workspace_sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in [
        "adapter/src",
        "adapter/Cargo.toml",
        "proto",
        "shared",
        "Cargo.lock",
    ] {
        collect_files(&root.join(dir), &mut files);
    }
    files
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>) {
    match std::fs::read_dir(path) {
        Ok(entries) => {
            for entry in entries.flatten() {
                collect_files(&entry.path(), files);
            }
        }
        Err(_) => files.push(path.to_owned()),
    }
}

/// `cargo build --bin kapso-adapter` into the target directory and profile
/// that `profile_dir` (`<target>/<profile>` or `<target>/<triple>/<profile>`) belongs to.
fn build(profile_dir: &Path) {
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let mut target_dir = profile_dir
        .parent()
        .expect("a profile lies in a target directory");
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .args([
            "build",
            "--quiet",
            "--package",
            "kapso-adapter",
            "--bin",
            "kapso-adapter",
        ])
        .args(["--profile", profile]);
    // Cargo keeps what it learnt of rustc at the root of a target directory
    // (`CACHEDIR.TAG` is no mark: a directory that existed before Cargo first
    // ran has none); without it, the level above the profile is a target triple.
    if !target_dir.join(".rustc_info.json").exists()
        && let (Some(triple), Some(root)) = (target_dir.file_name(), target_dir.parent())
    {
        command.arg("--target").arg(triple);
        target_dir = root;
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let output = command
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "building kapso-adapter failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
