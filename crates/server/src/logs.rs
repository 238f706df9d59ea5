//! The log writer: one thread owns stderr. Ordinary `tracing` events arrive formatted (through
//! [`ChannelWriter`]); the per-request "request finished" line arrives as a typed
//! [`AccessLine`] and is formatted on that thread, in the same shape as the `tracing` JSON or
//! human format, so the serving task only fills a struct. Writes are buffered and flushed
//! whenever the queue runs empty: one `write` for many lines under load. The queue is bounded
//! and lossless (a full queue makes the sender wait, as a slow stderr would).

use crate::request::{Api, ClientProtocol};
use http::HeaderValue;
use std::io::{BufWriter, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};
use switchyard_types::Money;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// The end of one request, as its log line says it.
pub(crate) struct AccessLine {
    /// When the request ended.
    pub at: SystemTime,
    /// The request id.
    pub request_id: HeaderValue,
    /// The front door.
    pub dialect: ClientProtocol,
    /// The endpoint.
    pub api: Api,
    /// The key's name.
    pub key: Arc<str>,
    /// The model asked for.
    pub model: Arc<str>,
    /// Whether it streamed.
    pub stream: bool,
    /// The serving deployment and its provider.
    pub served_by: Option<(Arc<str>, Arc<str>)>,
    /// Upstream attempts.
    pub attempts: usize,
    /// Input, output and cached input tokens.
    pub tokens: [u64; 3],
    /// Whether the usage is partly estimated.
    pub usage_estimated: bool,
    /// The request's cost.
    pub cost: Money,
    /// Arrival to end.
    pub latency_ms: u64,
    /// Arrival to first byte (streams).
    pub ttft_ms: Option<u64>,
    /// How it ended.
    pub outcome: &'static str,
}

enum Message {
    /// A line formatted by `tracing`.
    Raw(Vec<u8>),
    /// A request's end, to format here.
    Access(Box<AccessLine>),
    /// Write everything queued, then acknowledge.
    Flush(SyncSender<()>),
}

static QUEUE: OnceLock<SyncSender<Message>> = OnceLock::new();

/// Starts the writer thread (once per process); later calls return `None`.
pub(crate) fn start(format: LogFormat) -> Option<LogGuard> {
    let (tx, rx) = sync_channel(16 * 1024);
    QUEUE.set(tx).ok()?;
    std::thread::Builder::new()
        .name("switchyard-log".into())
        .spawn(move || run(rx, format))
        .ok()?;
    Some(LogGuard)
}

/// Writes a request's end line. Without a writer (no `Telemetry::init` in
/// this process) there is no log, as for every other line.
pub(crate) fn access(line: AccessLine) {
    if let Some(q) = QUEUE.get() {
        let _ = q.send(Message::Access(Box::new(line)));
    }
}

/// Flushes the writer when dropped (at process end).
pub struct LogGuard;

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(q) = QUEUE.get() {
            let (ack, done) = sync_channel(1);
            if q.send(Message::Flush(ack)).is_ok() {
                let _ = done.recv_timeout(Duration::from_secs(5));
            }
        }
    }
}

/// `tracing`'s writer: each formatted event goes to the queue whole.
#[derive(Clone, Copy)]
pub(crate) struct ChannelWriter;

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match QUEUE.get() {
            Some(q) if q.send(Message::Raw(buf.to_vec())).is_ok() => {}
            _ => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ChannelWriter {
    type Writer = ChannelWriter;

    fn make_writer(&'a self) -> ChannelWriter {
        *self
    }
}

fn run(rx: Receiver<Message>, format: LogFormat) {
    let mut out = BufWriter::with_capacity(64 * 1024, std::io::stderr());
    let mut line = Vec::with_capacity(1024);
    loop {
        let message = match rx.try_recv() {
            Ok(m) => m,
            Err(TryRecvError::Empty) => {
                let _ = out.flush();
                let first = match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                };
                // Let lines gather before draining them: a sender wakes this thread only
                // while it waits in `recv`, so under load one wake-up (a context switch on
                // the serving core) covers many lines instead of one each.
                std::thread::sleep(GATHER);
                first
            }
            Err(TryRecvError::Disconnected) => break,
        };
        // A failing stderr cannot be reported anywhere; keep draining so senders never block.
        let _ = match message {
            Message::Raw(mut bytes) => {
                sanitize(format, &mut bytes);
                out.write_all(&bytes)
            }
            Message::Access(a) => {
                line.clear();
                match format {
                    LogFormat::Json => a.json(&mut line),
                    LogFormat::Human => a.human(&mut line),
                }
                sanitize(format, &mut line);
                out.write_all(&line)
            }
            Message::Flush(ack) => {
                let _ = out.flush();
                ack.send(())
                    .map_err(|_| std::io::ErrorKind::BrokenPipe.into())
            }
        };
    }
    let _ = out.flush();
}

/// The longest log line written, newline excluded: longer human lines are cut, longer JSON
/// lines have their long strings cut, so no client text (a 100 KB model name) floods a log.
pub(crate) const MAX_LINE: usize = 16 * 1024;
/// A JSON line over [`MAX_LINE`] keeps at most this many bytes of each string.
const MAX_FIELD: usize = 1024;

/// Makes `line` (one formatted event) exactly one bounded line. Human lines get every control
/// character escaped (`\r`, `\n`, `\x1b`...), so client text can neither start a forged line
/// nor drive a terminal; JSON lines are already escaped by their encoder, and only need
/// bounding. Lines that need nothing (nearly all) are left untouched.
pub(crate) fn sanitize(format: LogFormat, line: &mut Vec<u8>) {
    while line.last() == Some(&b'\n') {
        line.pop();
    }
    let control = |b: &u8| *b < 0x20 || *b == 0x7f;
    match format {
        LogFormat::Human => {
            if line.iter().any(control) {
                let mut escaped = Vec::with_capacity(line.len() + 16);
                for &b in line.iter() {
                    match b {
                        b'\n' => escaped.extend_from_slice(b"\\n"),
                        b'\r' => escaped.extend_from_slice(b"\\r"),
                        b'\t' => escaped.extend_from_slice(b"\\t"),
                        b if control(&b) => {
                            let _ = write!(escaped, "\\x{b:02x}");
                        }
                        b => escaped.push(b),
                    }
                }
                *line = escaped;
            }
            if line.len() > MAX_LINE {
                let total = line.len();
                line.truncate(char_boundary(line, MAX_LINE));
                let _ = write!(line, "... [log line cut: {total} bytes]");
            }
        }
        LogFormat::Json => {
            if line.len() > MAX_LINE {
                let cut = match serde_json::from_slice::<serde_json::Value>(line) {
                    Ok(mut v) => {
                        cut_strings(&mut v);
                        serde_json::to_vec(&v).unwrap_or_default()
                    }
                    Err(_) => Vec::new(),
                };
                *line = if cut.is_empty() || cut.len() > MAX_LINE {
                    format!(
                        "{{\"level\":\"WARN\",\"fields\":{{\"message\":\"log line dropped: {} bytes\"}}}}",
                        line.len()
                    )
                    .into_bytes()
                } else {
                    cut
                };
            } else if line.iter().any(control) {
                // Never from serde's encoder; escape anyway rather than split the line.
                line.retain(|b| !control(b));
            }
        }
    }
    line.push(b'\n');
}

/// The largest char boundary of UTF-8 `bytes` at or below `at`.
fn char_boundary(bytes: &[u8], at: usize) -> usize {
    let mut i = at.min(bytes.len());
    // UTF-8 continuation bytes are 0b10xx_xxxx.
    while i > 0 && i < bytes.len() && (bytes[i] & 0xc0) == 0x80 {
        i -= 1;
    }
    i
}

fn cut_strings(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) if s.len() > MAX_FIELD => {
            let total = s.len();
            let keep = char_boundary(s.as_bytes(), MAX_FIELD);
            s.truncate(keep);
            s.push_str(&format!("... [cut: {total} bytes]"));
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(cut_strings),
        serde_json::Value::Object(map) => map.values_mut().for_each(cut_strings),
        _ => {}
    }
}

/// How long the writer lets lines gather after waking.
const GATHER: Duration = Duration::from_millis(2);

const TARGET: &str = "switchyard_server::observe";
const MESSAGE: &str = "request finished";

/// RFC 3339 UTC with microseconds, as `tracing-subscriber` writes it.
fn timestamp(at: SystemTime, out: &mut Vec<u8>) {
    let t = time::OffsetDateTime::from(at);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    );
}

fn json_str(s: &str, out: &mut Vec<u8>) {
    // Serialising a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

impl AccessLine {
    fn id(&self) -> &str {
        self.request_id.to_str().unwrap_or_default()
    }

    /// The `tracing-subscriber` JSON shape: fields, target and the request span.
    fn json(&self, out: &mut Vec<u8>) {
        let id = self.id();
        out.extend_from_slice(b"{\"timestamp\":\"");
        timestamp(self.at, out);
        out.extend_from_slice(b"\",\"level\":\"INFO\",\"fields\":{\"message\":\"");
        out.extend_from_slice(MESSAGE.as_bytes());
        out.extend_from_slice(b"\",\"request_id\":");
        json_str(id, out);
        let _ = write!(
            out,
            ",\"dialect\":\"{}\",\"api\":\"{}\",\"key\":",
            self.dialect.as_str(),
            self.api.as_str()
        );
        json_str(&self.key, out);
        out.extend_from_slice(b",\"model\":");
        json_str(&self.model, out);
        let (deployment, provider) = match &self.served_by {
            Some((d, p)) => (&**d, &**p),
            None => ("", ""),
        };
        let _ = write!(out, ",\"stream\":{},\"deployment\":", self.stream);
        json_str(deployment, out);
        out.extend_from_slice(b",\"provider\":");
        json_str(provider, out);
        let [input, output, cached] = self.tokens;
        let _ = write!(
            out,
            ",\"attempts\":{},\"input_tokens\":{input},\"output_tokens\":{output},\"cached_tokens\":{cached},\"usage_estimated\":{},\"cost_usd\":{},\"latency_ms\":{}",
            self.attempts,
            self.usage_estimated,
            self.cost.as_usd(),
            self.latency_ms
        );
        if let Some(ttft) = self.ttft_ms {
            let _ = write!(out, ",\"ttft_ms\":{ttft}");
        }
        let _ = write!(
            out,
            ",\"outcome\":\"{}\"}},\"target\":\"{TARGET}\"",
            self.outcome
        );
        out.extend_from_slice(b",\"span\":{\"request_id\":");
        json_str(id, out);
        out.extend_from_slice(b",\"name\":\"request\"},\"spans\":[{\"request_id\":");
        json_str(id, out);
        out.extend_from_slice(b",\"name\":\"request\"}]}\n");
    }

    /// The `tracing-subscriber` human shape. Text from clients (the model name) is written
    /// with Rust's debug escaping, so it cannot start a new line.
    fn human(&self, out: &mut Vec<u8>) {
        let id = self.id();
        timestamp(self.at, out);
        let (deployment, provider) = match &self.served_by {
            Some((d, p)) => (&**d, &**p),
            None => ("", ""),
        };
        let [input, output, cached] = self.tokens;
        let _ = write!(
            out,
            "  INFO request{{request_id={id}}}: {TARGET}: {MESSAGE} request_id={id} dialect={} api={} key={:?} model={:?} stream={} deployment={deployment} provider={provider} attempts={} input_tokens={input} output_tokens={output} cached_tokens={cached} usage_estimated={} cost_usd={} latency_ms={}",
            self.dialect.as_str(),
            self.api.as_str(),
            &*self.key,
            &*self.model,
            self.stream,
            self.attempts,
            self.usage_estimated,
            self.cost.as_usd(),
            self.latency_ms,
        );
        if let Some(ttft) = self.ttft_ms {
            let _ = write!(out, " ttft_ms={ttft}");
        }
        let _ = writeln!(out, " outcome={}", self.outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> AccessLine {
        AccessLine {
            at: SystemTime::UNIX_EPOCH + Duration::from_micros(1_765_123_456_789_012),
            request_id: HeaderValue::from_static("req_1"),
            dialect: ClientProtocol::OpenAiChat,
            api: Api::Chat,
            key: "team \"a\"".into(),
            model: "gpt-4o\r\nforged".into(),
            stream: true,
            served_by: Some(("d1".into(), "p1".into())),
            attempts: 2,
            tokens: [3, 4, 0],
            usage_estimated: false,
            cost: Money(70_000),
            latency_ms: 12,
            ttft_ms: Some(5),
            outcome: "ok",
        }
    }

    #[test]
    fn the_json_line_has_the_tracing_shape_and_escapes_client_text() {
        let mut out = Vec::new();
        line().json(&mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(v["timestamp"], "2025-12-07T16:04:16.789012Z");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["target"], TARGET);
        let f = &v["fields"];
        assert_eq!(f["message"], MESSAGE);
        assert_eq!(f["request_id"], "req_1");
        assert_eq!(f["model"], "gpt-4o\r\nforged");
        assert_eq!(f["key"], "team \"a\"");
        assert_eq!(f["deployment"], "d1");
        assert_eq!(f["attempts"], 2);
        assert_eq!(f["output_tokens"], 4);
        assert_eq!(f["cost_usd"], 0.00007);
        assert_eq!(f["ttft_ms"], 5);
        assert_eq!(f["outcome"], "ok");
        assert_eq!(v["span"]["request_id"], "req_1");
        assert_eq!(v["spans"][0]["name"], "request");
    }

    #[test]
    fn every_line_is_one_bounded_line_in_both_formats() {
        let huge = "x".repeat(100 * 1024);
        let raw = format!("2025-12-07T00:00:00Z  INFO a: rejected error=The model 'm\r\nINFO forged\x1b[2J{huge}'\n");
        let mut human = raw.clone().into_bytes();
        sanitize(LogFormat::Human, &mut human);
        let text = String::from_utf8(human).unwrap_or_default();
        assert_eq!(text.matches('\n').count(), 1);
        assert!(text.ends_with("bytes]\n"), "{}", &text[text.len() - 80..]);
        assert!(text.len() <= MAX_LINE + 64);
        assert!(
            text.contains("'m\\r\\nINFO forged\\x1b[2J"),
            "{}",
            &text[..120]
        );
        assert!(!text.contains('\x1b'));

        let event = serde_json::json!({"fields": {"message": "rejected", "model": format!("m\r\n{huge}")}, "n": 1});
        let mut json = serde_json::to_vec(&event).unwrap_or_default();
        json.push(b'\n');
        sanitize(LogFormat::Json, &mut json);
        assert!(json.len() <= MAX_LINE);
        assert_eq!(json.iter().filter(|&&b| b == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap_or_default();
        assert_eq!(v["n"], 1);
        assert_eq!(v["fields"]["message"], "rejected");
        let model = v["fields"]["model"].as_str().unwrap_or_default();
        assert!(
            model.starts_with("m\r\nxxx") && model.ends_with("bytes]"),
            "{model:.40}"
        );

        // A short, clean line is written as it came.
        let mut clean = b"2025  INFO ok a=1\n".to_vec();
        sanitize(LogFormat::Human, &mut clean);
        assert_eq!(clean, b"2025  INFO ok a=1\n");
    }

    #[test]
    fn the_human_line_is_one_line_whatever_the_client_sent() {
        let mut out = Vec::new();
        line().human(&mut out);
        let text = String::from_utf8(out).unwrap_or_default();
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        assert!(text.contains("model=\"gpt-4o\\r\\nforged\""), "{text}");
        assert!(text.contains("request finished request_id=req_1"), "{text}");
        assert!(text.ends_with(" outcome=ok\n"), "{text}");
    }
}
