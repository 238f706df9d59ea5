//! `[admin] listen`: the admin API on its own listener, and not on the data plane.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::Value;
use switchyard_sim::SimProtocol;

#[tokio::test]
async fn the_admin_api_moves_to_its_own_listener() {
    let sim = sim("p1", SimProtocol::OpenAi).await;
    let config = format!(
        "{}[admin]\ntoken = \"{ADMIN}\"\nlisten = \"127.0.0.1:0\"\n\n{}{}[models.m]\ndeployments = [\"d\"]\n",
        server_toml(""),
        provider_toml("p1", &sim, SimProtocol::OpenAi),
        deployment_toml("d", "p1", "gpt-4o"),
    );
    let gw = Gateway::start(&config);
    let line = gw
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("the admin API is listening"))
        })
        .expect("the admin listener's address is logged");
    let admin = format!("http://{}", line["fields"]["local"].as_str().unwrap());
    let get = |url: String| async move {
        client()
            .get(url)
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(get(format!("{admin}/admin/keys")).await, 200);
    assert_eq!(
        get(format!("{}/admin/keys", gw.url)).await,
        404,
        "not on the data plane"
    );
    assert_eq!(
        get(format!("{admin}/v1/models")).await,
        404,
        "no data plane on the admin listener"
    );
    // The data plane still serves.
    assert_eq!(
        gw.post("/v1/chat/completions", &chat("m", "hi"))
            .await
            .status(),
        200
    );
}
