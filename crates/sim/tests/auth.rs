//! SigV4 verification, the Vertex token endpoint and Bedrock InvokeModel embeddings.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use switchyard_sim::{
    rules, Faults, RunningSim, SimOptions, SimProtocol, SimSpec, SIM_AWS_SECRET_ACCESS_KEY,
};

mod common;

const KEY: &str = "k1";

fn spec(name: &str, protocol: SimProtocol) -> SimSpec {
    SimSpec {
        name: name.into(),
        protocol,
        listen: "127.0.0.1:0".parse().unwrap(),
        api_key: Some(KEY.into()),
    }
}

async fn send(req: reqwest::Request) -> (u16, Option<String>, Value) {
    let r = reqwest::Client::new().execute(req).await.unwrap();
    let status = r.status().as_u16();
    let error_type = r
        .headers()
        .get("x-amzn-errortype")
        .map(|v| v.to_str().unwrap().split(':').next().unwrap().to_owned());
    (status, error_type, r.json().await.unwrap_or(Value::Null))
}

fn converse_body() -> Value {
    json!({"messages": [{"role": "user", "content": [{"text": "hi there"}]}]})
}

#[tokio::test]
async fn sigv4_is_verified() {
    let sim = RunningSim::start(spec("br", SimProtocol::Bedrock))
        .await
        .unwrap();
    let url = format!(
        "{}/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.m-v1%3A0/converse",
        sim.base_url()
    );
    let body = converse_body();
    let now = SystemTime::now();
    let ok = common::signed_post(&url, &body, KEY, SIM_AWS_SECRET_ACCESS_KEY, now);
    let (status, _, v) = send(ok).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["output"]["message"]["content"][0]["text"],
        "br says: hi there"
    );

    let wrong_secret = common::signed_post(&url, &body, KEY, "not-the-secret", now);
    let (status, name, v) = send(wrong_secret).await;
    assert_eq!(
        (status, name.as_deref()),
        (403, Some("InvalidSignatureException"))
    );
    assert!(v["message"].as_str().unwrap().contains("does not match"));

    // A body changed after signing no longer matches.
    let mut tampered = common::signed_post(&url, &body, KEY, SIM_AWS_SECRET_ACCESS_KEY, now);
    *tampered.body_mut() = Some(json!({"messages": []}).to_string().into());
    let (status, name, _) = send(tampered).await;
    assert_eq!(
        (status, name.as_deref()),
        (403, Some("InvalidSignatureException"))
    );

    let skewed = now - Duration::from_secs(6 * 60);
    let (status, name, v) = send(common::signed_post(
        &url,
        &body,
        KEY,
        SIM_AWS_SECRET_ACCESS_KEY,
        skewed,
    ))
    .await;
    assert_eq!(
        (status, name.as_deref()),
        (403, Some("InvalidSignatureException"))
    );
    assert!(v["message"]
        .as_str()
        .unwrap()
        .starts_with("Signature expired"));

    let (status, name, _) = send(common::signed_post(
        &url,
        &body,
        "other",
        SIM_AWS_SECRET_ACCESS_KEY,
        now,
    ))
    .await;
    assert_eq!(
        (status, name.as_deref()),
        (403, Some("UnrecognizedClientException"))
    );
    sim.shutdown().await;

    // Another secret, chosen at start-up.
    let options = SimOptions {
        aws_secret_access_key: "custom".into(),
    };
    let sim = RunningSim::start_with(spec("br", SimProtocol::Bedrock), options)
        .await
        .unwrap();
    let url = format!("{}/model/m/converse", sim.base_url());
    let (status, ..) = send(common::signed_post(&url, &body, KEY, "custom", now)).await;
    assert_eq!(status, 200);
    let (status, ..) = send(common::signed_post(
        &url,
        &body,
        KEY,
        SIM_AWS_SECRET_ACCESS_KEY,
        now,
    ))
    .await;
    assert_eq!(status, 403);
    sim.shutdown().await;
}

#[tokio::test]
async fn bedrock_invoke_embeddings() {
    let sim = RunningSim::start(spec("br", SimProtocol::Bedrock))
        .await
        .unwrap();
    let base = sim.base_url();
    let now = SystemTime::now();
    let post = |model: &str, body: Value| {
        common::signed_post(
            &format!("{base}/model/{model}/invoke"),
            &body,
            KEY,
            SIM_AWS_SECRET_ACCESS_KEY,
            now,
        )
    };
    let r = reqwest::Client::new()
        .execute(post(
            "amazon.titan-embed-text-v2%3A0",
            json!({"inputText": "hello sim world", "dimensions": 16}),
        ))
        .await
        .unwrap();
    assert_eq!(r.headers()["x-amzn-bedrock-input-token-count"], "3");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["inputTextTokenCount"], 3);
    let want: Vec<f32> = rules::embedding("hello sim world", 16);
    let got: Vec<f32> = serde_json::from_value(v["embedding"].clone()).unwrap();
    assert_eq!(got, want);

    let (status, _, v) = send(post(
        "cohere.embed-english-v3",
        json!({"texts": ["a b", "c"], "input_type": "search_document"}),
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["response_type"], "embeddings_floats");
    assert_eq!(v["texts"], json!(["a b", "c"]));
    let second: Vec<f32> = serde_json::from_value(v["embeddings"][1].clone()).unwrap();
    assert_eq!(second, rules::embedding("c", 8));

    let (status, name, _) = send(post("anthropic.claude-v2", json!({"prompt": "x"}))).await;
    assert_eq!(
        (status, name.as_deref()),
        (400, Some("ValidationException"))
    );
    assert_eq!(
        sim.controls()
            .stats()
            .by_model
            .get("amazon.titan-embed-text-v2:0"),
        Some(&1)
    );
    sim.shutdown().await;
}

/// A service-account style JWT assertion (the signature is not checked by the simulator).
fn assertion(token_uri: &str) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iss": "sa@sim-project.iam.gserviceaccount.com", "aud": token_uri,
        "scope": "https://www.googleapis.com/auth/cloud-platform", "iat": now, "exp": now + 3600});
    let enc = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2ln",
        enc(json!({"alg": "RS256", "typ": "JWT"})),
        enc(claims)
    )
}

async fn grant(base: &str, grant_type: &str) -> (u16, Value) {
    let token_uri = format!("{base}/token");
    let form = format!(
        "grant_type={}&assertion={}",
        grant_type.replace(':', "%3A"),
        assertion(&token_uri)
    );
    let r = reqwest::Client::new()
        .post(&token_uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn generate(base: &str, token: &str) -> u16 {
    let url = format!(
        "{base}/v1/projects/p/locations/us-central1/publishers/google/models/g:generateContent"
    );
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn vertex_token_endpoint_grants_and_expires() {
    let sim = RunningSim::start(spec("vx", SimProtocol::Vertex))
        .await
        .unwrap();
    let base = sim.base_url();
    let (status, v) = grant(&base, "urn:ietf:params:oauth:grant-type:jwt-bearer").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["token_type"].as_str(), v["expires_in"].as_u64()),
        (Some("Bearer"), Some(3600))
    );
    let token = v["access_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("ya29.sim-"));
    assert_eq!(generate(&base, &token).await, 200);
    // The static key still works; a forged sim-looking token does not.
    assert_eq!(generate(&base, KEY).await, 200);
    assert_eq!(generate(&base, "ya29.sim-forged").await, 401);

    sim.controls().set_faults(Faults {
        token_lifetime_s: Some(1),
        ..Faults::default()
    });
    let (_, v) = grant(&base, "urn:ietf:params:oauth:grant-type:jwt-bearer").await;
    assert_eq!(v["expires_in"], 1);
    let short = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(generate(&base, &short).await, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(generate(&base, &short).await, 401);
    assert_eq!(generate(&base, &token).await, 200);

    let (status, v) = grant(&base, "refresh_token").await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let stats = sim.controls().stats();
    assert_eq!((stats.token_grants, stats.tokens_rejected), (2, 2));
    sim.shutdown().await;
}
