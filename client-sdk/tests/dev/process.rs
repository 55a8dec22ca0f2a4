//! The `kapso` binary as `kapso dev` and `kapso dev trigger`, with an
//! environment cleared of the variables its flags read. Every wait is
//! bounded; a server left running is killed on drop, and what it wrote to
//! stderr is shown when the test failed.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::Value;

use super::gateway::SECRET;

/// Longest wait for `kapso dev` to say where it listens.
const START: Duration = Duration::from_secs(30);

/// The variables `kapso dev` and its trigger read, never taken from the
/// environment the tests run in.
const THEIR_VARIABLES: [&str; 6] = [
    "KAPSO_DEV_LISTEN_ADDR",
    "KAPSO_WEBHOOK_URL",
    "KAPSO_WEBHOOK_SECRET",
    "KAPSO_API_TOKEN",
    "KAPSO_PHONE_NUMBER_ID",
    "KAPSO_CORE_URL",
];

fn kapso() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kapso"));
    for variable in THEIR_VARIABLES {
        command.env_remove(variable);
    }
    command.stdin(Stdio::null());
    command
}

/// A running `kapso dev`.
#[derive(Debug)]
pub struct DevKapso {
    /// `http://127.0.0.1:PORT`: what `KAPSO_API_BASE_URL` is set to.
    pub url: String,
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl DevKapso {
    /// Starts `kapso dev` on a free port, posting receipts to `webhook_url`;
    /// `extra` adds flags.
    pub fn start(webhook_url: &str, api_key: &str, extra: &[&str]) -> DevKapso {
        let mut child = kapso()
            .args([
                "dev",
                "--listen",
                "127.0.0.1:0",
                "--webhook-url",
                webhook_url,
            ])
            .args(["--secret", SECRET, "--api-key", api_key])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kapso dev");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let collected = stderr.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (first_line, read) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = first_line.send(lines.next());
            // Keep reading so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match read.recv_timeout(START) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                panic!(
                    "kapso dev did not say where it listens ({other:?}); stderr: {}",
                    stderr.lock().unwrap()
                );
            }
        };
        let url = line
            .strip_prefix("kapso dev listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        DevKapso { url, child, stderr }
    }

    /// Sends SIGTERM, as a container runtime or a process manager stops it,
    /// and waits at most 10 s for it to end.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        let signalled = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(signalled.success(), "kill -TERM failed");
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().expect("wait for kapso dev") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// What it wrote to stderr so far: one line per call and per webhook.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for DevKapso {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("kapso dev's stderr:\n{}", self.stderr());
        }
    }
}

/// Runs `kapso dev trigger received` against `webhook_url`, signing with the
/// adapter's secret; returns the JSON line it printed, checking it exited 0.
pub async fn trigger(webhook_url: &str, args: &[&str]) -> Value {
    let output = trigger_output(webhook_url, SECRET, args).await;
    assert!(
        output.status.success(),
        "trigger failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON line")
}

/// Runs `kapso dev trigger received` to its end, signing with `secret`.
pub async fn trigger_output(webhook_url: &str, secret: &str, args: &[&str]) -> Output {
    let mut command = kapso();
    command
        .args(["dev", "trigger", "received", "--webhook-url", webhook_url])
        .args(["--secret", secret])
        .args(args);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}
