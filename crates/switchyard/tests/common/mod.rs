//! End-to-end harness: the real `switchyard` binary against in-process simulated providers,
//! everything on 127.0.0.1 port 0.
#![allow(dead_code, clippy::unwrap_used)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchyard_sim::{RunningSim, SimProtocol, SimSpec};

/// The client key every test config accepts.
pub const KEY: &str = "sk-test-key";
/// The key simulated providers require from the gateway.
pub const UPSTREAM_KEY: &str = "sim-key";

/// Starts a simulated provider on a free port.
pub async fn sim(name: &str, protocol: SimProtocol) -> RunningSim {
    RunningSim::start(SimSpec {
        name: name.to_string(),
        protocol,
        listen: "127.0.0.1:0".parse().unwrap(),
        api_key: Some(UPSTREAM_KEY.to_string()),
    })
    .await
    .unwrap()
}

/// The `[providers.NAME]` table for a simulated provider: OpenAI-shaped ones on Azure in
/// `NAME-region`, the others on AWS in us-east-1.
pub fn provider_toml(name: &str, sim: &RunningSim, protocol: SimProtocol) -> String {
    let url = sim.base_url();
    let key = format!("api_key = \"{UPSTREAM_KEY}\"\n");
    let (kind, base, auth) = match protocol {
        SimProtocol::OpenAi => ("openai", format!("{url}/v1"), key),
        SimProtocol::OpenAiCompatible => ("openai_compatible", format!("{url}/v1"), key),
        SimProtocol::AzureOpenAi => ("azure_openai", url, key + "api_version = \"2024-10-21\"\n"),
        SimProtocol::Anthropic => ("anthropic", url, key),
        SimProtocol::Gemini => ("gemini", url, key),
        SimProtocol::Bedrock => (
            "bedrock",
            url,
            format!(
                "aws_access_key_id = \"{UPSTREAM_KEY}\"\naws_secret_access_key = \"sim-secret\"\n"
            ),
        ),
        other => panic!("no gateway support for {other:?} yet"),
    };
    let openai_shaped = matches!(
        protocol,
        SimProtocol::OpenAi | SimProtocol::OpenAiCompatible | SimProtocol::AzureOpenAi
    );
    let place = if openai_shaped {
        format!("cloud = \"azure\"\nregion = \"{name}-region\"\n")
    } else {
        "cloud = \"aws\"\nregion = \"us-east-1\"\n".to_string()
    };
    format!(
        "[providers.{name}]\nkind = \"{kind}\"\nbase_url = \"{base}\"\n{auth}{place}jurisdiction = \"us\"\n\n"
    )
}

/// A `[deployments.NAME]` table.
pub fn deployment_toml(name: &str, provider: &str, upstream_model: &str) -> String {
    format!(
        "[deployments.{name}]\nprovider = \"{provider}\"\nupstream_model = \"{upstream_model}\"\nprice = {{ input = 2.5, output = 10.0, cached_input = 1.25 }}\n\n"
    )
}

/// The `[server]` table and the test key.
pub fn server_toml(extra: &str) -> String {
    format!("[server]\nreload_poll_ms = 100\n{extra}\n[[keys]]\nname = \"test\"\nsecret = \"{KEY}\"\n\n")
}

/// The admin token every test config that enables the admin API uses.
pub const ADMIN: &str = "test-admin-token-0123456789";

/// The `[admin]` table enabling the admin API.
pub fn admin_toml() -> String {
    format!("[admin]\ntoken = \"{ADMIN}\"\n\n")
}

/// A running gateway process.
pub struct Gateway {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// The folder holding its config file and its databases.
    pub dir: tempfile::TempDir,
    logs: Arc<Mutex<Vec<String>>>,
    events: mpsc::Receiver<Value>,
}

impl Gateway {
    /// Starts `switchyard serve` on a free port and waits until it listens.
    pub fn start(config: &str) -> Gateway {
        Self::start_in(tempfile::tempdir().unwrap(), config)
    }

    /// Starts a gateway whose config (and default databases) live in `dir`.
    pub fn start_in(dir: tempfile::TempDir, config: &str) -> Gateway {
        Self::start_with_env(dir, config, &[])
    }

    /// Starts a gateway with extra environment variables.
    pub fn start_with_env(dir: tempfile::TempDir, config: &str, env: &[(&str, &str)]) -> Gateway {
        Self::start_opts(dir, config, env, "json")
    }

    /// Starts a gateway logging in `format` (`json` or `human`).
    pub fn start_opts(
        dir: tempfile::TempDir,
        config: &str,
        env: &[(&str, &str)],
        format: &str,
    ) -> Gateway {
        let path = dir.path().join("switchyard.toml");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(config.as_bytes())
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args([
                "--log-format",
                format,
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--config",
            ])
            .arg(&path)
            .env("SWITCHYARD_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let mut gateway = Gateway {
            child,
            url: String::new(),
            dir,
            logs,
            events: rx,
        };
        gateway.url = if format == "json" {
            let listening = gateway.wait_for_log("switchyard is listening");
            format!("http://{}", listening["fields"]["local"].as_str().unwrap())
        } else {
            let line = gateway.wait_for_text("switchyard is listening");
            let local = line
                .split("local=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap();
            format!("http://{local}")
        };
        gateway
    }

    /// Waits (at most 30 s) for a log line whose message is `message`, and returns it.
    pub fn wait_for_log(&mut self, message: &str) -> Value {
        self.wait_for_line(message, |v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(message))
        })
    }

    /// Waits (at most 30 s) for a JSON log line that `matches` (`what` names it in the
    /// failure), and returns it; earlier lines are consumed.
    pub fn wait_for_line(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) if matches(&v) => return v,
                Ok(_) => continue,
                Err(_) => panic!(
                    "no log line '{what}' within 30 s; the gateway logged:\n{}",
                    self.logs.lock().unwrap().join("\n")
                ),
            }
        }
    }

    /// Waits (at most 30 s) for a raw log line containing `text` (any format), and returns it.
    pub fn wait_for_text(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(line) = self.logs.lock().unwrap().iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no log line containing '{text}' within 30 s; the gateway logged:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything the gateway logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// The process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The records of the gateway's default SQLite ledger (read after it stopped), once
    /// their hash chain verified.
    pub async fn ledger(&self) -> Vec<switchyard_ledger::StoredRecord> {
        let url = format!("sqlite://{}/switchyard.db", self.dir.path().display());
        let store = switchyard_ledger::open(&url, false).await.unwrap();
        let report = switchyard_ledger::audit::verify(store.as_ref())
            .await
            .unwrap();
        assert!(report.ok, "the ledger's chain does not verify: {report:?}");
        store.records(0, i64::MAX, 1_000_000).await.unwrap()
    }

    /// The config file's path.
    pub fn config_path(&self) -> std::path::PathBuf {
        self.dir.path().join("switchyard.toml")
    }

    /// Replaces the config file's content.
    pub fn rewrite_config(&mut self, text: &str) {
        std::fs::write(self.config_path(), text).unwrap();
    }

    /// POSTs JSON with the test key.
    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        client()
            .post(format!("{}{path}", self.url))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }
}

impl Gateway {
    /// Calls the admin API.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = client()
            .request(method, format!("{}/admin{path}", self.url))
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let bytes = r.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// SIGTERM, then waits (at most 30 s) for the process to exit; returns its exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait_exit(Duration::from_secs(30))
    }

    /// Waits (at most `limit`) for the process to exit, after a signal sent elsewhere;
    /// returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the gateway did not exit within {limit:?} after SIGTERM:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs a chat request to the gateway at `url` with the client key `secret`.
pub async fn chat_as(url: &str, secret: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(secret)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// A client without retries or pooling surprises.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Sets a simulated provider's faults through its control API.
pub async fn set_faults(sim: &RunningSim, faults: Value) {
    let r = client()
        .post(format!("{}/_sim/faults", sim.base_url()))
        .header("content-type", "application/json")
        .body(faults.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "setting faults: {}", r.status());
}

/// A simulated provider's counters.
pub async fn stats(sim: &RunningSim) -> Value {
    let r = client()
        .get(format!("{}/_sim/stats", sim.base_url()))
        .send()
        .await
        .unwrap();
    serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
}

/// A minimal chat request.
pub fn chat(model: &str, text: &str) -> Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

/// Reads a whole SSE body into its `data:` payloads.
pub async fn sse_data(response: reqwest::Response) -> Vec<String> {
    let text = response.text().await.unwrap();
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}
