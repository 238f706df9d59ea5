//! SigV4 and Google OAuth end to end: `Upstream::send` against the simulator, which verifies
//! signatures and issues and checks tokens.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use switchyard_providers::{
    Auth, Endpoints, GoogleTokens, Operation, PoolSettings, ProviderExtras, ProviderSpec, Timeouts,
    Upstream,
};
use switchyard_sim::{Faults, RunningSim, SimProtocol, SimSpec, SIM_AWS_SECRET_ACCESS_KEY};
use switchyard_types::{Cloud, ErrorKind, Jurisdiction, ProviderKind};

const KEY: &str = "k1";
const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

async fn sim(protocol: SimProtocol) -> RunningSim {
    RunningSim::start(SimSpec {
        name: "s".into(),
        protocol,
        listen: "127.0.0.1:0".parse().unwrap(),
        api_key: Some(KEY.into()),
    })
    .await
    .unwrap()
}

fn provider(kind: ProviderKind, base_url: String, auth: Auth) -> ProviderSpec {
    ProviderSpec {
        id: "p".into(),
        kind,
        base_url,
        auth,
        api_version: None,
        cloud: Cloud::Aws,
        region: "us-east-1".into(),
        jurisdiction: Jurisdiction::Us,
        http2_prior_knowledge: false,
        extra: ProviderExtras {
            gcp_project: Some("sim-project".into()),
            ..ProviderExtras::default()
        },
    }
}

fn timeouts() -> Timeouts {
    Timeouts {
        first_byte: Duration::from_secs(10),
        total: Duration::from_secs(20),
        connect: None,
    }
}

async fn call(
    up: &Upstream,
    p: &ProviderSpec,
    op: Operation,
    model: &str,
    body: &Value,
) -> Result<Value, switchyard_providers::AttemptError> {
    let sent = up
        .send(
            p,
            &Endpoints::new(p, model),
            op,
            Bytes::from(body.to_string()),
            timeouts(),
        )
        .await?;
    let bytes = sent.body(p, 1 << 20).await?;
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn converse() -> Value {
    json!({"messages": [{"role": "user", "content": [{"text": "hi there"}]}]})
}

#[tokio::test]
async fn bedrock_requests_carry_a_valid_sigv4_signature() {
    let sim = sim(SimProtocol::Bedrock).await;
    let up = Upstream::new(PoolSettings::default()).unwrap();
    let good = Auth::bedrock_static(KEY, SIM_AWS_SECRET_ACCESS_KEY, None);
    let p = provider(ProviderKind::Bedrock, sim.base_url(), good);
    let v = call(
        &up,
        &p,
        Operation::Chat { stream: false },
        MODEL,
        &converse(),
    )
    .await
    .unwrap();
    assert_eq!(
        v["output"]["message"]["content"][0]["text"],
        "s says: hi there"
    );
    let last = sim.controls().stats().last_request.unwrap();
    assert_eq!(
        last.path,
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    );
    assert!(
        last.headers["authorization"].starts_with(&format!("AWS4-HMAC-SHA256 Credential={KEY}/"))
    );
    assert!(last.headers.contains_key("x-amz-date"));

    // Streams: signed the same way, and asked for as an AWS event stream.
    let sent = up
        .send(
            &p,
            &Endpoints::new(&p, &format!("us.{MODEL}")),
            Operation::Chat { stream: true },
            Bytes::from(converse().to_string()),
            timeouts(),
        )
        .await
        .unwrap();
    assert_eq!(
        sent.response.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let last = sim.controls().stats().last_request.unwrap();
    assert_eq!(last.headers["accept"], "application/vnd.amazon.eventstream");

    // Temporary credentials: the session token is sent and signed.
    let temp = Auth::bedrock_static(KEY, SIM_AWS_SECRET_ACCESS_KEY, Some("session-token"));
    let p = provider(ProviderKind::Bedrock, sim.base_url(), temp);
    call(
        &up,
        &p,
        Operation::Chat { stream: false },
        MODEL,
        &converse(),
    )
    .await
    .unwrap();
    let last = sim.controls().stats().last_request.unwrap();
    assert_eq!(last.headers["x-amz-security-token"], "session-token");
    assert!(last.headers["authorization"].contains("x-amz-security-token"));

    // Embeddings through InvokeModel are signed too.
    let v = call(
        &up,
        &p,
        Operation::Embeddings,
        "amazon.titan-embed-text-v2:0",
        &json!({"inputText": "a b"}),
    )
    .await
    .unwrap();
    assert_eq!(v["inputTextTokenCount"], 2);

    // A wrong secret is refused by the verifier and classified as the gateway's problem.
    let bad = Auth::bedrock_static(KEY, "wrong-secret", None);
    let p = provider(ProviderKind::Bedrock, sim.base_url(), bad);
    let e = call(
        &up,
        &p,
        Operation::Chat { stream: false },
        MODEL,
        &converse(),
    )
    .await
    .unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::UpstreamRejected, Some(403)));
    assert!(e.message.contains("signature"), "{}", e.message);
    sim.shutdown().await;
}

/// A service-account key file whose `token_uri` is the simulator's token endpoint.
fn service_account(token_uri: &str) -> GoogleTokens {
    let key = include_str!("fixtures/test-only-key.pem");
    let json = json!({
        "type": "service_account",
        "project_id": "sim-project",
        "private_key_id": "test",
        "private_key": key,
        "client_email": "gateway@sim-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    });
    GoogleTokens::service_account_json(&json.to_string()).unwrap()
}

fn generate() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "hi there"}]}]})
}

#[tokio::test]
async fn vertex_tokens_are_cached_shared_and_refreshed() {
    let sim = sim(SimProtocol::Vertex).await;
    let up = Upstream::new(PoolSettings::default()).unwrap();
    let tokens = service_account(&format!("{}/token", sim.base_url()));
    let mut spec = provider(
        ProviderKind::Vertex,
        sim.base_url(),
        Auth::GoogleOAuth { tokens },
    );
    spec.extra.gcp_location = Some("us-central1".into());
    let p = Arc::new(spec);
    let chat = Operation::Chat { stream: false };

    // Concurrent first requests share one token grant.
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (up, p) = (up.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            call(&up, &p, chat, "gemini-2.5-flash", &generate()).await
        }));
    }
    for t in tasks {
        let v = t.await.unwrap().unwrap();
        assert_eq!(
            v["candidates"][0]["content"]["parts"][0]["text"],
            "s says: hi there"
        );
    }
    let stats = sim.controls().stats();
    assert_eq!((stats.token_grants, stats.requests), (1, 6));
    let last = stats.last_request.unwrap();
    assert!(last.headers["authorization"].starts_with("Bearer ya29.sim-"));
    assert_eq!(
        last.path,
        "/v1/projects/sim-project/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
    );

    // Short-lived tokens are refreshed before they expire: gcp_auth treats a token as expired
    // 20 s early, so a 22 s token is reused for about 2 s and then replaced.
    let fresh = service_account(&format!("{}/token", sim.base_url()));
    let p = provider(
        ProviderKind::Vertex,
        sim.base_url(),
        Auth::GoogleOAuth { tokens: fresh },
    );
    sim.controls().set_faults(Faults {
        token_lifetime_s: Some(22),
        ..Faults::default()
    });
    sim.controls().reset_stats();
    call(&up, &p, chat, "g", &generate()).await.unwrap();
    call(&up, &p, chat, "g", &generate()).await.unwrap();
    assert_eq!(sim.controls().stats().token_grants, 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    call(&up, &p, chat, "g", &generate()).await.unwrap();
    let stats = sim.controls().stats();
    assert_eq!((stats.token_grants, stats.tokens_rejected), (2, 0));
    sim.shutdown().await;
}

#[tokio::test]
async fn token_endpoint_failures_are_upstream_rejections() {
    let sim = sim(SimProtocol::Vertex).await;
    let up = Upstream::new(PoolSettings::default()).unwrap();
    // A token URI that answers 404: no token, so the attempt fails before reaching Vertex.
    let tokens = service_account(&format!("{}/no-token-here", sim.base_url()));
    let p = provider(
        ProviderKind::Vertex,
        sim.base_url(),
        Auth::GoogleOAuth { tokens },
    );
    let e = call(&up, &p, Operation::Chat { stream: false }, "g", &generate())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::UpstreamRejected);
    assert!(e.message.contains("no usable credentials"), "{}", e.message);
    let stats = sim.controls().stats();
    assert!(
        stats.by_path.keys().all(|p| p == "/no-token-here"),
        "{:?}",
        stats.by_path
    );
    sim.shutdown().await;
}
