//! The `kapso-core` binary as a child process on 127.0.0.1, for tests that
//! kill or signal it. Every wait is bounded, and a child left running when a
//! test fails is killed on drop.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use kapso_gateway_proto::v1 as pb;
use tokio::time::{Instant, sleep};
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Longest wait for a started core to serve.
const START: Duration = Duration::from_secs(30);

pub struct Core {
    pub addr: SocketAddr,
    child: Option<Child>,
}

/// The binary with a test environment: a free port (`CORE_LISTEN_ADDR` unless
/// `env` sets it), the database file `db`, no metrics; `env` adds variables.
fn command(addr: SocketAddr, db: &Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kapso-core"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CORE_LISTEN_ADDR", addr.to_string())
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("CORE_METRICS_ADDR", "off")
        .env("EVENT_RETENTION_DAYS", "0")
        .env("KAPSO_API_BASE_URL", "http://127.0.0.1:9/unused")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// Runs the binary with `args` to its exit (killed after `START`): its exit
/// status (`None`: still running, killed) and its stdout and stderr together.
pub async fn run_to_exit(
    db: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Option<ExitStatus>, String) {
    let mut child = command(free_port(), db, env)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kapso-core");
    let deadline = Instant::now() + START;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        sleep(Duration::from_millis(20)).await;
    };
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (status, text)
}

impl Core {
    /// Starts the binary on a free port over the database file `db`; `env` adds variables.
    pub async fn start(db: &Path, env: &[(&str, &str)]) -> Core {
        Core::start_listening(db, env, |addr| addr.to_string()).await
    }

    /// As [`start`](Core::start), listening on `listen(port)` (e.g. every
    /// interface) while the tests reach it on 127.0.0.1.
    pub async fn start_listening(
        db: &Path,
        env: &[(&str, &str)],
        listen: impl FnOnce(SocketAddr) -> String,
    ) -> Core {
        let addr = free_port();
        let child = command(addr, db, env)
            .env("CORE_LISTEN_ADDR", listen(addr))
            .stdout(Stdio::null())
            .spawn()
            .expect("start kapso-core");
        let core = Core {
            addr,
            child: Some(child),
        };
        core.wait_serving().await;
        core
    }

    /// As [`start`](Core::start), with everything it writes (stdout and
    /// stderr) going to the file `log`.
    pub async fn start_logging(db: &Path, env: &[(&str, &str)], log: &Path) -> Core {
        let file = std::fs::File::create(log).expect("create the log file");
        let addr = free_port();
        let child = command(addr, db, env)
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("start kapso-core");
        let core = Core {
            addr,
            child: Some(child),
        };
        core.wait_serving().await;
        core
    }

    /// Starts the binary over `db` expecting it to refuse: waits (bounded)
    /// for it to exit and returns how, with what it wrote to stderr. A core
    /// that starts serving instead is killed and the test fails.
    pub async fn start_refused(db: &Path) -> (ExitStatus, String) {
        let mut command = command(free_port(), db, &[]);
        command.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("start kapso-core");
        let pipe = child.stderr.take();
        let mut core = Core {
            addr: free_port(),
            child: Some(child),
        };
        let status = core
            .exit_within(START)
            .await
            .expect("the core exits instead of serving");
        let mut stderr = String::new();
        if let Some(mut pipe) = pipe {
            std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
        }
        (status, stderr)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Sends SIGTERM (through `kill`, so the tests need no `unsafe`).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits up to `limit` for the process to exit.
    pub async fn exit_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            sleep(Duration::from_millis(20)).await;
        }
        None
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .unwrap()
    }

    async fn wait_serving(&self) {
        let deadline = Instant::now() + START;
        loop {
            assert!(
                Instant::now() < deadline,
                "kapso-core did not start serving"
            );
            if let Ok(channel) = Channel::from_shared(format!("http://{}", self.addr))
                .unwrap()
                .connect()
                .await
            {
                let health = HealthClient::new(channel)
                    .check(tonic_health::pb::HealthCheckRequest::default())
                    .await;
                if health.is_ok_and(|r| r.into_inner().status() == ServingStatus::Serving) {
                    return;
                }
            }
            sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port free now on 127.0.0.1 (a tiny race with other processes is accepted).
fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// An inbound text message event with its own wamid.
pub fn received(wamid: &str) -> pb::InboundEvent {
    pb::InboundEvent {
        event_type: "whatsapp.message.received".into(),
        message_id: wamid.into(),
        conversation_id: "conv-crash".into(),
        phone_number_id: "1234567890".into(),
        contact_phone: "15551234567".into(),
        direction: pb::Direction::Inbound.into(),
        message_type: "text".into(),
        text: "hola".into(),
        timestamp: 1_700_000_000,
        payload_json: "{}".into(),
        ..Default::default()
    }
}
