//! The `kapso-loadgen` executable itself; its sums and deliveries are unit-tested beside them.

#[test]
fn the_binary_answers_version() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kapso-loadgen"))
        .arg("--version")
        .env_clear()
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run kapso-loadgen");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("kapso-loadgen {}", env!("CARGO_PKG_VERSION")),
        "{stderr}"
    );
}
