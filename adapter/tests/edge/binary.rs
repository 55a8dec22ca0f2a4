//! The `kapso-adapter` executable itself.

#[test]
fn the_binary_answers_version() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kapso-adapter"))
        .arg("--version")
        .env_clear()
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run kapso-adapter");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("kapso-adapter {}", env!("CARGO_PKG_VERSION")),
        "{stderr}"
    );
}
