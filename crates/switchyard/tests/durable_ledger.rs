//! `[ledger] durability = "before_response"`: an answer's bytes complete only once its record
//! is committed, so SIGKILL under load leaves no answered request without its ledger record.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::Command;
use switchyard_sim::SimProtocol;

#[tokio::test]
async fn sigkill_under_load_loses_no_answered_request_in_durable_mode() {
    let sim = sim("p1", SimProtocol::OpenAi).await;
    sim.controls()
        .set_faults(serde_json::from_value(json!({"latency_ms": 5})).unwrap());
    let config = format!(
        "{}{}{}[models.m]\ndeployments = [\"d\"]\n\n[ledger]\ndurability = \"before_response\"\n",
        server_toml(""),
        provider_toml("p1", &sim, SimProtocol::OpenAi),
        deployment_toml("d", "p1", "gpt-4o"),
    );
    let gw = Gateway::start(&config);
    let url = gw.url.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut clients = Vec::new();
    for c in 0..8 {
        let (url, tx) = (url.clone(), tx.clone());
        clients.push(tokio::spawn(async move {
            for i in 0..1_000 {
                let stream = i % 2 == 0;
                let mut body = chat("m", &format!("client {c} request {i}"));
                body["stream"] = json!(stream);
                let Ok(r) = client()
                    .post(format!("{url}/v1/chat/completions"))
                    .bearer_auth(KEY)
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                else {
                    return;
                };
                let id = r
                    .headers()
                    .get("x-request-id")
                    .map(|v| v.to_str().unwrap().to_string());
                let ok = r.status() == 200;
                let Ok(bytes) = r.bytes().await else { return };
                // Answered = the whole answer arrived: a stream up to its end marker, a
                // non-stream as a complete JSON body.
                let complete = ok
                    && if stream {
                        bytes.ends_with(b"data: [DONE]\n\n")
                    } else {
                        serde_json::from_slice::<Value>(&bytes).is_ok()
                    };
                if let (true, Some(id)) = (complete, id) {
                    let _ = tx.send(id);
                }
            }
        }));
    }
    drop(tx);
    let mut answered = Vec::new();
    while answered.len() < 150 {
        answered.push(rx.recv().await.unwrap());
    }
    assert!(Command::new("kill")
        .args(["-KILL", &gw.pid().to_string()])
        .status()
        .unwrap()
        .success());
    for c in clients {
        c.await.unwrap();
    }
    while let Ok(id) = rx.try_recv() {
        answered.push(id);
    }

    // The database as the killed process left it, read by a fresh one.
    let ids: std::collections::HashSet<String> = gw
        .ledger()
        .await
        .into_iter()
        .map(|r| r.record.request_id)
        .collect();
    let missing: Vec<&String> = answered.iter().filter(|id| !ids.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered requests have no ledger record: {:?}",
        missing.len(),
        answered.len(),
        &missing[..missing.len().min(5)]
    );
}
