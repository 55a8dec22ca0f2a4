//! `kapso-loadgen`: posts realistic signed Kapso deliveries to a running adapter
//! and reports throughput, latency percentiles, errors, and the memory and disk
//! writes of the gateway's processes. The `tools/bench` crate: this binary,
//! and beside it the scripts that drive it (`bench-gateway.sh`,
//! `bench-history.sh`, `bench-peer.sh`) and chart their output (`bench-chart.py`).
//!
//! What it sends is in [`deliveries`]: fresh random keys and ids on every
//! delivery, messages from `--contacts` customers, and with `--traffic
//! conversation` the status receipts of the replies too. Each worker owns one
//! keep-alive HTTP/1.1 connection, like Kapso's senders and wrk.
//!
//! ```sh
//! kapso-loadgen --secret dev-secret-change-me --concurrency 64 --duration 10 \
//!     --batch 1 --mix mixed --pid adapter=$(pgrep -f kapso-adapter)
//! ```

use std::fmt::Write as _;
use std::num::{NonZeroU64, NonZeroUsize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use kapso_process::Secret;
use kapso_signature::sign;
use tokio::net::TcpStream;

use deliveries::{Delivery, Mix, Plan, Traffic};
use processes::{Rss, Watched};

mod deliveries;
mod processes;

#[derive(Debug, Parser)]
#[command(
    name = "kapso-loadgen",
    version,
    about = "Load generator for the Kapso webhook adapter"
)]
struct Args {
    /// Adapter address (host:port).
    #[arg(long, default_value = "127.0.0.1:8000")]
    target: String,
    /// Webhook secret the adapter verifies with.
    #[arg(long, env = "KAPSO_WEBHOOK_SECRET", hide_env_values = true)]
    secret: Secret,
    /// Concurrent connections, one request in flight on each.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds of measured load.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of load before measuring (connection setup, caches, WAL growth).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Events per delivery: 1 sends single events, more sends Kapso v2 batches.
    #[arg(long, default_value = "1")]
    batch: NonZeroUsize,
    /// Contacts the messages come from, each in its own conversation. A delivery
    /// is one contact's messages, from a contact picked at random.
    #[arg(long, default_value = "1000")]
    contacts: NonZeroU64,
    /// Message types of received messages: text, media (image with caption) or mixed (alternating).
    #[arg(long, value_enum, default_value_t = Mix::Mixed)]
    mix: Mix,
    /// received: received messages only. conversation: each delivery of received
    /// messages followed by the sent, delivered and read receipts of a reply.
    #[arg(long, value_enum, default_value_t = Traffic::Received)]
    traffic: Traffic,
    /// Processes whose RSS and disk writes to report, as NAME=PID (repeatable).
    #[arg(long = "pid", value_parser = parse_pid)]
    pids: Vec<Watched>,
    /// Also print the summary as one JSON line.
    #[arg(long)]
    json: bool,
}

fn parse_pid(raw: &str) -> Result<Watched, String> {
    let (name, pid) = raw.split_once('=').ok_or("expected NAME=PID")?;
    Ok((
        name.to_owned(),
        pid.parse().map_err(|e| format!("bad pid: {e}"))?,
    ))
}

/// What one worker saw during the measured window.
struct Tally {
    latency_us: Histogram<u64>,
    ok: u64,
    /// Events in the deliveries answered 200.
    events: u64,
    non_200: u64,
    errors: u64,
}

impl Tally {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            // Up to a minute, three significant digits.
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            ok: 0,
            events: 0,
            non_200: 0,
            errors: 0,
        })
    }

    fn add(&mut self, other: &Tally) -> anyhow::Result<()> {
        self.latency_us.add(&other.latency_us)?;
        self.ok += other.ok;
        self.events += other.events;
        self.non_200 += other.non_200;
        self.errors += other.errors;
        Ok(())
    }
}

// One thread, like `wrk -t1`: a generator that spreads over every core competes with
// the gateway it measures on a small machine.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let sequence = Arc::new(AtomicU64::new(0));
    let plan = Plan {
        batch: args.batch,
        contacts: args.contacts,
        mix: args.mix,
        traffic: args.traffic,
        run_id: std::process::id(),
    };

    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let job = Job {
                target: args.target.clone(),
                secret: args.secret.clone(),
                plan,
            };
            tokio::spawn(job.run(stop.clone(), measuring.clone(), sequence.clone()))
        })
        .collect();
    let sampler = tokio::spawn(processes::sample_rss(args.pids.clone(), stop.clone()));

    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let written_before = processes::written_bytes(&args.pids);
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let written =
        processes::written_between(&written_before, &processes::written_bytes(&args.pids));
    stop.store(true, Ordering::Relaxed);

    let mut total = Tally::new()?;
    for worker in workers {
        total.add(&worker.await??)?;
    }
    let rss = sampler.await?;
    print_summary(&args, &total, elapsed, &rss, &written);
    Ok(())
}

struct Job {
    target: String,
    secret: Secret,
    plan: Plan,
}

impl Job {
    async fn run(
        self,
        stop: Arc<AtomicBool>,
        measuring: Arc<AtomicBool>,
        sequence: Arc<AtomicU64>,
    ) -> anyhow::Result<Tally> {
        let mut tally = Tally::new()?;
        let mut sender = None;
        while !stop.load(Ordering::Relaxed) {
            if sender.is_none() {
                match connect(&self.target).await {
                    Ok(s) => sender = Some(s),
                    Err(_) => {
                        tally.errors += u64::from(measuring.load(Ordering::Relaxed));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                }
            }
            let n = sequence.fetch_add(1, Ordering::Relaxed);
            let delivery = self.plan.delivery(n);
            let events = delivery.events as u64;
            let request = self.request(delivery)?;
            let started = Instant::now();
            let outcome = send(sender.as_mut().context("connected")?, request).await;
            let measured = measuring.load(Ordering::Relaxed);
            match outcome {
                Ok(200) if measured => {
                    tally.ok += 1;
                    tally.events += events;
                    tally
                        .latency_us
                        .saturating_record(started.elapsed().as_micros() as u64);
                }
                Ok(200) => {}
                Ok(_) => tally.non_200 += u64::from(measured),
                Err(_) => {
                    tally.errors += u64::from(measured);
                    sender = None;
                }
            }
        }
        Ok(tally)
    }

    fn request(&self, delivery: Delivery) -> anyhow::Result<hyper::Request<Full<Bytes>>> {
        let Delivery {
            event_type,
            key,
            body,
            events,
            batch,
        } = delivery;
        let mut request = hyper::Request::post("/api/whatsapp/webhook")
            .header("host", &self.target)
            .header("content-type", "application/json")
            .header("x-webhook-event", event_type)
            .header(
                "x-webhook-signature",
                sign(self.secret.expose(), body.as_bytes()),
            )
            .header("x-idempotency-key", key)
            .header("x-webhook-payload-version", "v2");
        if batch {
            request = request
                .header("x-webhook-batch", "true")
                .header("x-batch-size", events.to_string());
        }
        Ok(request.body(Full::new(Bytes::from(body)))?)
    }
}

async fn connect(target: &str) -> anyhow::Result<http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(target).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn send(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    request: hyper::Request<Full<Bytes>>,
) -> anyhow::Result<u16> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    // Read the body to the end so the connection can carry the next request.
    response.into_body().collect().await?;
    Ok(status)
}

fn print_summary(
    args: &Args,
    total: &Tally,
    elapsed: Duration,
    rss: &[Rss],
    written: &[Option<u64>],
) {
    let secs = elapsed.as_secs_f64();
    let rps = total.ok as f64 / secs;
    let eps = total.events as f64 / secs;
    let ms = |q: f64| total.latency_us.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "target {} concurrency {} batch {} mix {:?} traffic {:?}: {} ok in {:.1} s",
        args.target, args.concurrency, args.batch, args.mix, args.traffic, total.ok, secs
    );
    println!("throughput  {rps:.0} deliveries/s  {eps:.0} events/s");
    println!(
        "latency     p50 {:.2} ms  p99 {:.2} ms  p999 {:.2} ms  max {:.2} ms",
        ms(0.5),
        ms(0.99),
        ms(0.999),
        total.latency_us.max() as f64 / 1000.0
    );
    println!(
        "errors      non-200 {}  transport {}",
        total.non_200, total.errors
    );
    let mut processes_json = String::new();
    for (((name, _), rss), written) in args.pids.iter().zip(rss).zip(written) {
        let peak_mib = rss.peak_kib as f64 / 1024.0;
        println!(
            "rss         {name}: peak {peak_mib:.1} MiB, last {:.1} MiB",
            rss.last_kib as f64 / 1024.0
        );
        let _ = write!(processes_json, r#","rss_peak_mib_{name}":{peak_mib:.1}"#);
        if let Some(bytes) = written
            && total.events > 0
        {
            let kib_per_event = *bytes as f64 / 1024.0 / total.events as f64;
            println!(
                "written     {name}: {:.0} MB, {kib_per_event:.1} KiB per event",
                *bytes as f64 / 1e6
            );
            let _ = write!(
                processes_json,
                r#","written_kib_per_event_{name}":{kib_per_event:.1}"#
            );
        }
    }
    if args.json {
        println!(
            r#"{{"deliveries_per_s":{rps:.0},"events_per_s":{eps:.0},"p50_ms":{:.2},"p99_ms":{:.2},"p999_ms":{:.2},"non_200":{},"errors":{}{processes_json}}}"#,
            ms(0.5),
            ms(0.99),
            ms(0.999),
            total.non_200,
            total.errors
        );
    }
}
