//! The standard AWS credential chain, fed from the environment (its own test binary, because
//! it sets process environment variables).
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use std::time::Duration;
use switchyard_providers::{
    Auth, Endpoints, Operation, PoolSettings, ProviderExtras, ProviderSpec, Timeouts, Upstream,
};
use switchyard_sim::{RunningSim, SimProtocol, SimSpec, SIM_AWS_SECRET_ACCESS_KEY};
use switchyard_types::{Cloud, Jurisdiction, ProviderKind};

#[tokio::test]
async fn default_chain_reads_environment_credentials() {
    // Only the environment provider may answer: no profile files, no instance metadata.
    std::env::set_var("AWS_ACCESS_KEY_ID", "chain-key");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SIM_AWS_SECRET_ACCESS_KEY);
    std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/switchyard-test-config");
    std::env::set_var(
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/switchyard-test-creds",
    );
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let sim = RunningSim::start(SimSpec {
        name: "br".into(),
        protocol: SimProtocol::Bedrock,
        listen: "127.0.0.1:0".parse().unwrap(),
        api_key: Some("chain-key".into()),
    })
    .await
    .unwrap();
    let p = ProviderSpec {
        id: "p".into(),
        kind: ProviderKind::Bedrock,
        base_url: sim.base_url(),
        auth: Auth::bedrock_default_chain("us-east-1"),
        api_version: None,
        cloud: Cloud::Aws,
        region: "us-east-1".into(),
        jurisdiction: Jurisdiction::Us,
        http2_prior_knowledge: false,
        extra: ProviderExtras::default(),
    };
    let up = Upstream::new(PoolSettings::default()).unwrap();
    let body = r#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#;
    let timeouts = Timeouts {
        first_byte: Duration::from_secs(10),
        total: Duration::from_secs(20),
        connect: None,
    };
    let sent = up
        .send(
            &p,
            &Endpoints::new(&p, "m"),
            Operation::Chat { stream: false },
            Bytes::from_static(body.as_bytes()),
            timeouts,
        )
        .await
        .unwrap();
    assert_eq!(sent.response.status(), 200);
    let last = sim.controls().stats().last_request.unwrap();
    assert!(last.headers["authorization"].starts_with("AWS4-HMAC-SHA256 Credential=chain-key/"));
    sim.shutdown().await;
}
