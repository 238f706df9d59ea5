//! `switchyard-loadgen`: a small HTTP/1.1 load generator for Switchyard's benchmarks.
//!
//! Closed loop (default): `--concurrency` keep-alive connections each send POSTs back to back
//! for `--warmup` + `--duration` seconds; only requests that start and finish inside the
//! measured window are counted. Open loop (`--trace FILE`): replays a token-count trace at its
//! arrival rate times `--trace-scale` over at most `--concurrency` connections, latency counted
//! from each request's scheduled time (queueing included).
//!
//! Prints one JSON object on stdout: count, errors, rps, and p50/p90/p99 of the time to response
//! headers, to the first body byte and to the whole answer, in microseconds; with `--watch
//! NAME=PID`, also each watched process's CPU time per request and memory high-water mark.

mod client;
mod procfs;
mod stats;
mod trace;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Mutex};
use tokio::time::sleep_until;

use client::{Conn, Failure, Sample, Target};
use procfs::{Machine, Watched};
use stats::Tally;

type BoxError = Box<dyn std::error::Error>;

/// Load generator for Switchyard benchmarks (HTTP/1.1, keep-alive, 127.0.0.1 targets).
#[derive(Debug, Parser)]
#[command(name = "switchyard-loadgen", version)]
struct Args {
    /// The URL to POST to, e.g. http://127.0.0.1:8080/v1/chat/completions.
    #[arg(long)]
    url: String,
    /// Connections, each with one request in flight at a time.
    #[arg(long, short = 'c', default_value_t = 1)]
    concurrency: usize,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds measured after the warm-up.
    #[arg(long, short = 'd', default_value_t = 8.0)]
    duration: f64,
    /// Ask for streamed answers (sets `"stream": true` in the built-in body) and require each
    /// stream to end with `data: [DONE]`.
    #[arg(long)]
    stream: bool,
    /// The model of the built-in body.
    #[arg(long, default_value = "bench")]
    model: String,
    /// The user message of the built-in body.
    #[arg(
        long,
        default_value = "Say hello to the benchmark in a few short words please"
    )]
    prompt: String,
    /// A request body to send instead of the built-in one.
    #[arg(long, conflicts_with = "body_file")]
    body: Option<String>,
    /// A file whose content is the request body.
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// Sent as `Authorization: Bearer KEY`.
    #[arg(long, env = "LOADGEN_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Extra request header, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// Seconds before one request counts as timed out.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// A process to report CPU time per request and peak RSS for, as NAME=PID (repeatable).
    #[arg(long = "watch", value_name = "NAME=PID")]
    watch: Vec<String>,
    /// Clock ticks per second of /proc/PID/stat (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    clk_tck: u64,
    /// Free-form label copied into the output.
    #[arg(long, default_value = "")]
    label: String,
    /// Replay this trace CSV (TIMESTAMP,ContextTokens,GeneratedTokens) open-loop.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Replay the first this many rows of the trace.
    #[arg(long, default_value_t = 1000)]
    trace_rows: usize,
    /// Speed-up of the trace's arrival rate (2 = twice as fast).
    #[arg(long, default_value_t = 1.0)]
    trace_scale: f64,
}

/// What every worker shares.
struct Shared {
    target: Target,
    stream: bool,
    timeout: Duration,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("switchyard-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<Value, BoxError> {
    let positive = |x: f64, what: &str| {
        if x.is_finite() && x >= 0.0 {
            Ok(Duration::from_secs_f64(x))
        } else {
            Err(format!("{what} must be a non-negative number of seconds"))
        }
    };
    let warmup = positive(args.warmup, "--warmup")?;
    let duration = positive(args.duration, "--duration")?;
    let timeout = positive(args.timeout, "--timeout")?;
    if args.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    if !(args.trace_scale.is_finite() && args.trace_scale > 0.0) {
        return Err("--trace-scale must be positive".into());
    }
    let mut watched = args
        .watch
        .iter()
        .map(|w| Watched::parse(w))
        .collect::<Result<Vec<_>, _>>()?;
    let mut machine = Machine::default();
    // The load generator itself, to show whether its core was saturated.
    watched.push(Watched::new("loadgen", std::process::id()));
    let shared = Arc::new(Shared {
        target: Target::new(&args.url, args.key.as_deref(), &args.headers)?,
        stream: args.stream,
        timeout,
    });

    let t0 = Instant::now();
    let measure = t0 + warmup;
    let mut end = measure + duration;
    let mut tally = Tally::default();
    let mut extra = serde_json::Map::new();
    let mode = match &args.trace {
        None => {
            let body = request_body(&args)?;
            let workers: Vec<_> = (0..args.concurrency)
                .map(|_| tokio::spawn(closed_worker(shared.clone(), body.clone(), measure, end)))
                .collect();
            watch_window(&mut watched, &mut machine, measure, end).await;
            for w in workers {
                tally.merge(w.await?);
            }
            if args.stream {
                "stream"
            } else {
                "chat"
            }
        }
        Some(path) => {
            let rows = trace::parse(&std::fs::read_to_string(path)?, args.trace_rows)?;
            // The replay ends with the last row if that comes before the duration is up.
            if let Some(last) = rows.last() {
                end =
                    end.min(t0 + last.offset.div_f64(args.trace_scale) + Duration::from_millis(1));
            }
            let (tx, rx) = mpsc::unbounded_channel::<Job>();
            let rx = Arc::new(Mutex::new(rx));
            let workers: Vec<_> = (0..args.concurrency)
                .map(|_| tokio::spawn(open_worker(shared.clone(), rx.clone(), measure, end)))
                .collect();
            let replay = Replay {
                model: args.model.clone(),
                stream: args.stream,
                t0,
                scale: args.trace_scale,
                measure,
                end,
            };
            let dispatcher = tokio::spawn(dispatch(rows, tx, replay));
            watch_window(&mut watched, &mut machine, measure, end).await;
            let offered = dispatcher.await?;
            for w in workers {
                tally.merge(w.await?);
            }
            let secs = end.saturating_duration_since(measure).as_secs_f64();
            let offered_rps = if secs > 0.0 {
                offered as f64 / secs
            } else {
                0.0
            };
            extra.insert("offered".into(), offered.into());
            extra.insert(
                "offered_rps".into(),
                ((offered_rps * 1000.0).round() / 1000.0).into(),
            );
            extra.insert("trace_scale".into(), args.trace_scale.into());
            "trace"
        }
    };
    let count = tally.samples.len();
    let window = end.saturating_duration_since(measure);
    let mut out = tally.summary(window);
    let watched_ticks = watched.iter().filter_map(Watched::ticks).sum();
    let machine = machine.report(watched_ticks, window, args.clk_tck);
    let watched: serde_json::Map<String, Value> = watched
        .iter()
        .map(|w| (w.name.clone(), w.report(count, window, args.clk_tck)))
        .collect();
    if let Value::Object(o) = &mut out {
        o.insert("label".into(), args.label.clone().into());
        o.insert("mode".into(), mode.into());
        o.insert("url".into(), args.url.clone().into());
        o.insert("concurrency".into(), args.concurrency.into());
        o.insert("warmup_s".into(), args.warmup.into());
        o.insert("duration_s".into(), args.duration.into());
        o.insert("watched".into(), Value::Object(watched));
        o.insert("machine".into(), machine);
        o.extend(extra);
    }
    Ok(out)
}

/// Samples the watched processes' CPU time and memory at the measured window's start and end.
async fn watch_window(
    watched: &mut [Watched],
    machine: &mut Machine,
    measure: Instant,
    end: Instant,
) {
    sleep_until(measure.into()).await;
    machine.start();
    for w in watched.iter_mut() {
        w.start();
    }
    sleep_until(end.into()).await;
    machine.stop();
    for w in watched.iter_mut() {
        w.stop();
    }
}

/// The request body: `--body`, `--body-file`, or a one-message chat request.
fn request_body(args: &Args) -> Result<Bytes, BoxError> {
    if let Some(b) = &args.body {
        return Ok(Bytes::from(b.clone()));
    }
    if let Some(path) = &args.body_file {
        return Ok(Bytes::from(std::fs::read(path)?));
    }
    let body = json!({
        "model": args.model,
        "stream": args.stream,
        "messages": [{"role": "user", "content": args.prompt}],
    });
    Ok(Bytes::from(body.to_string()))
}

/// Sends one request on `conn`, connecting first if needed and dropping the connection when a
/// failure leaves it unusable.
async fn attempt(
    conn: &mut Option<Conn>,
    shared: &Shared,
    body: Bytes,
    start: Instant,
) -> Result<Sample, Failure> {
    // A peer may close an idle keep-alive connection (nginx after `keepalive_requests`); then
    // nothing was sent, so reconnect and send once more.
    for _ in 0..2 {
        let c = match conn {
            Some(c) => c,
            None => match shared.target.connect().await {
                Ok(c) => conn.insert(c),
                Err(f) => {
                    // Do not spin on a refused connection.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    return Err(f);
                }
            },
        };
        let sent = c.send(&shared.target, body.clone(), shared.stream, start);
        let result = tokio::time::timeout(shared.timeout, sent)
            .await
            .unwrap_or(Err(Failure::Timeout));
        if result.as_ref().is_err_and(|f| f.breaks_connection()) {
            *conn = None;
        }
        if result.as_ref().is_err_and(|f| *f == Failure::Closed) {
            continue;
        }
        return result;
    }
    Err(Failure::Closed)
}

/// Closed loop: requests back to back on one connection until `end`.
async fn closed_worker(shared: Arc<Shared>, body: Bytes, measure: Instant, end: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut conn = None;
    loop {
        let start = Instant::now();
        if start >= end {
            break;
        }
        let result = attempt(&mut conn, &shared, body.clone(), start).await;
        if start < measure {
            continue;
        }
        match result {
            Ok(s) if start + s.total <= end => tally.samples.push(s),
            Ok(_) => {}
            Err(f) => tally.fail(f),
        }
    }
    tally
}

/// A scheduled trace request.
struct Job {
    scheduled: Instant,
    body: Bytes,
}

/// How a trace is replayed.
struct Replay {
    model: String,
    stream: bool,
    /// When the replay began (the first row's arrival).
    t0: Instant,
    /// Speed-up of the arrival rate.
    scale: f64,
    measure: Instant,
    end: Instant,
}

/// Queues each trace row at its (scaled) arrival time until `end`; returns how many were due
/// inside the measured window.
async fn dispatch(rows: Vec<trace::Row>, tx: mpsc::UnboundedSender<Job>, r: Replay) -> u64 {
    let mut offered = 0;
    for row in &rows {
        let at = r.t0 + row.offset.div_f64(r.scale);
        if at >= r.end {
            break;
        }
        sleep_until(at.into()).await;
        if tx
            .send(Job {
                scheduled: at,
                body: trace::body(row, &r.model, r.stream),
            })
            .is_err()
        {
            break;
        }
        if at >= r.measure {
            offered += 1;
        }
    }
    offered
}

/// Open loop: takes queued jobs until the queue closes; latency counts from the scheduled time.
async fn open_worker(
    shared: Arc<Shared>,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>,
    measure: Instant,
    end: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut conn = None;
    loop {
        let job = rx.lock().await.recv().await;
        let Some(job) = job else { break };
        // A backlog left when the replay ends is not sent: it would only prolong the run.
        let result = if Instant::now() > end + shared.timeout {
            Err(Failure::Timeout)
        } else {
            attempt(&mut conn, &shared, job.body, job.scheduled).await
        };
        if job.scheduled < measure {
            continue;
        }
        match result {
            Ok(s) => tally.samples.push(s),
            Err(f) => tally.fail(f),
        }
    }
    tally
}
