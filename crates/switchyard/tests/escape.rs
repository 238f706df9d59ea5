//! The escape hatch through the real binary: simulated providers produce ledger records, then
//! `switchyard whatif`, `switchyard report concentration` and their admin routes are checked
//! against figures computed here from those records.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::Value;
use std::process::Command;
use switchyard_sim::{RunningSim, SimProtocol};
use switchyard_types::{Cloud, Money, PricePerMillion, Prices};

/// d1 (Azure) at $2.50 / $10 / $1.25 cached per million (the harness's price); d2 (AWS
/// Bedrock) at $3 / $15 / $0.30 cached / $3.75 cache write.
fn config(azure: &RunningSim, aws: &RunningSim) -> String {
    format!(
        "{}{}{}{}{}[deployments.d2]\nprovider = \"p2\"\nupstream_model = \"anthropic.claude-3-haiku-20240307-v1:0\"\n\
         price = {{ input = 3.0, output = 15.0, cached_input = 0.3, cache_write = 3.75 }}\n\n\
         [models.m]\ndeployments = [\"d1\"]\n\n[models.n]\ndeployments = [\"d2\"]\n",
        server_toml(""),
        admin_toml(),
        provider_toml("p1", azure, SimProtocol::OpenAi),
        provider_toml("p2", aws, SimProtocol::Bedrock),
        deployment_toml("d1", "p1", "gpt-4o"),
    )
}

fn d2_prices() -> Prices {
    let per_m = |n: i64| PricePerMillion(Money(n));
    Prices {
        input: per_m(3_000_000_000),
        output: per_m(15_000_000_000),
        cached_input: Some(per_m(300_000_000)),
        cache_write: Some(per_m(3_750_000_000)),
    }
}

/// Runs the binary with `args`; its standard output parsed as JSON.
fn cli_json(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "switchyard {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn without_window(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("since");
    v.as_object_mut().unwrap().remove("until");
    v
}

#[tokio::test]
async fn whatif_and_concentration_match_the_ledger_through_cli_and_admin() {
    let azure = sim("p1", SimProtocol::OpenAi).await;
    let aws = sim("p2", SimProtocol::Bedrock).await;
    let text = config(&azure, &aws);
    let mut gw = Gateway::start(&text);
    for (model, n) in [("m", 5), ("n", 3)] {
        for i in 0..n {
            let r = gw
                .post(
                    "/v1/chat/completions",
                    &chat(model, &format!("hello number {i} from {model}")),
                )
                .await;
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
    }
    // Stopping flushes the ledger; the records are then the ground truth.
    assert_eq!(gw.stop(), Some(0));
    let records: Vec<_> = gw.ledger().await.into_iter().map(|s| s.record).collect();
    assert_eq!(records.len(), 8);
    let config_path = gw.config_path();
    let config_arg = config_path.to_str().unwrap();

    // What-if: m's traffic at d2's prices, record by record.
    let m: Vec<_> = records.iter().filter(|r| &*r.model == "m").collect();
    assert!(m
        .iter()
        .all(|r| r.price_known && r.deployment.as_deref() == Some("d1")));
    let current: i64 = m.iter().map(|r| r.cost.nanos()).sum();
    let moved: i64 = m.iter().map(|r| d2_prices().cost(&r.usage).nanos()).sum();
    let input: u64 = m.iter().map(|r| r.usage.input).sum();
    assert!(current > 0 && moved != current);
    let whatif = cli_json(&[
        "whatif",
        "--config",
        config_arg,
        "--since",
        "1d",
        "--move",
        "model=m",
        "--to",
        "deployment=d2",
        "--format",
        "json",
    ]);
    let rows = whatif["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{whatif}");
    let row = &rows[0];
    assert_eq!(row["model"], "m");
    assert_eq!(row["to"], "d2");
    assert_eq!(row["to_cloud"], "aws");
    assert_eq!(row["requests"], 5);
    assert_eq!(row["input_tokens"], input);
    assert_eq!(row["current_nanos"], current);
    assert_eq!(row["whatif_nanos"], moved);
    assert_eq!(row["difference_nanos"], moved - current);
    assert_eq!(whatif["total"]["whatif_nanos"], moved);

    // On the recorded deployments at unchanged prices: the ledger's own total, exactly.
    let ledger_total: i64 = records.iter().map(|r| r.cost.nanos()).sum();
    let recorded = cli_json(&[
        "whatif", "--config", config_arg, "--to", "recorded", "--format", "json",
    ]);
    assert_eq!(recorded["total"]["current_nanos"], ledger_total);
    assert_eq!(recorded["total"]["whatif_nanos"], ledger_total);
    assert_eq!(recorded["total"]["difference_nanos"], 0);
    assert_eq!(recorded["total"]["requests"], 8);

    // Every deployment of n: its only one, at its own prices, so no difference.
    let every = cli_json(&[
        "whatif",
        "--config",
        config_arg,
        "--move",
        "model=n",
        "--reprice-all",
        "--format",
        "json",
    ]);
    let n_cost: i64 = records
        .iter()
        .filter(|r| &*r.model == "n")
        .map(|r| r.cost.nanos())
        .sum();
    assert_eq!(every["rows"].as_array().unwrap().len(), 1, "{every}");
    assert_eq!(every["rows"][0]["to"], "d2");
    assert_eq!(every["total"]["whatif_nanos"], n_cost);
    assert_eq!(every["total"]["difference_nanos"], 0);

    // Concentration from the same records.
    let spend = |c: Cloud| -> i64 {
        records
            .iter()
            .filter(|r| r.cloud == Some(c))
            .map(|r| r.cost.nanos())
            .sum()
    };
    let (on_aws, on_azure) = (spend(Cloud::Aws), spend(Cloud::Azure));
    let total = (on_aws + on_azure) as f64;
    let hhi = (on_aws as f64 / total).powi(2) + (on_azure as f64 / total).powi(2);
    let conc = cli_json(&[
        "report",
        "concentration",
        "--config",
        config_arg,
        "--format",
        "json",
    ]);
    assert_eq!(conc["routed_requests"], 8);
    assert_eq!(conc["cost_nanos"], on_aws + on_azure);
    assert!(
        (conc["overall_hhi"].as_f64().unwrap() - hhi).abs() < 1e-12,
        "{conc}"
    );
    let azure_row = conc["clouds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "azure")
        .unwrap();
    assert_eq!(azure_row["requests"], 5);
    assert_eq!(azure_row["cost_nanos"], on_azure);
    assert_eq!(azure_row["request_share"], 5.0 / 8.0);
    assert_eq!(
        azure_row["stranded_requests"], 5,
        "m has no deployment off azure"
    );
    assert_eq!(conc["single_cloud_models"], serde_json::json!(["m", "n"]));
    let model_m = conc["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["model"] == "m")
        .unwrap();
    assert_eq!(model_m["hhi"], 1.0);
    // The biggest dependency, drilled offline: m's requests have nowhere else to go.
    let drill = &conc["biggest_dependency_drill"];
    assert_eq!(drill["down"], "cloud=azure", "{drill}");
    assert_eq!(drill["requests"], 8);
    assert_eq!(drill["failed"]["all_eligible_down"], 5, "{drill}");
    assert_eq!(drill["served_share"], 3.0 / 8.0);

    // FOCUS rows cover exactly the ledger's spend.
    let since =
        switchyard_ledger::time::format_ms(records.iter().map(|r| r.time_ms).min().unwrap());
    let db = format!("sqlite://{}/switchyard.db", gw.dir.path().display());
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "report", "spend", "--db", &db, "--since", &since, "--format", "focus",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let focus = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        switchyard_ledger::escape::focus::total_nanos(&focus),
        Some(Money(ledger_total))
    );
    assert!(
        focus.lines().next().unwrap().starts_with("BilledCost,"),
        "{focus}"
    );
    assert!(
        focus.contains(",Amazon Bedrock,") && focus.contains(",Azure OpenAI,"),
        "{focus}"
    );

    // SLOs: every attempt of the ledger, per deployment, in every window.
    let until = switchyard_ledger::time::format_ms(
        records.iter().map(|r| r.time_ms).max().unwrap() + 1_000,
    );
    let slo = cli_json(&[
        "report", "slo", "--db", &db, "--until", &until, "--format", "json",
    ]);
    for (deployment, n) in [("d1", 5), ("d2", 3)] {
        let attempts: usize = records
            .iter()
            .flat_map(|r| &r.attempts)
            .filter(|a| &*a.deployment == deployment)
            .count();
        assert_eq!(attempts, n);
        let rows: Vec<&Value> = slo["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["deployment"] == deployment)
            .collect();
        assert_eq!(rows.len(), 3, "{slo}");
        for row in rows {
            assert_eq!(
                (row["attempts"].as_u64(), row["failures"].as_u64()),
                (Some(n as u64), Some(0)),
                "{row}"
            );
            assert_eq!(row["availability"], 1.0);
            assert!(
                row["latency_ms"]["p50"]["at_most"].as_u64().is_some(),
                "{row}"
            );
        }
    }

    // The admin routes of a gateway on the same ledger give the same documents.
    let dir = std::mem::replace(&mut gw.dir, tempfile::tempdir().unwrap());
    let gw2 = Gateway::start_in(dir, &text);
    let (status, body) = gw2
        .admin(Method::GET, "/whatif?model=m&to=deployment%3Dd2", None)
        .await;
    assert_eq!(status, 200, "{body}");
    let cli_whatif = cli_json(&[
        "whatif",
        "--config",
        gw2.config_path().to_str().unwrap(),
        "--move",
        "model=m",
        "--to",
        "deployment=d2",
        "--format",
        "json",
    ]);
    assert_eq!(body, cli_whatif);
    assert_eq!(without_window(body), without_window(whatif));
    let (status, body) = gw2.admin(Method::GET, "/concentration", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, conc);
    let (status, body) = gw2.admin(Method::GET, "/whatif?to=region%3Dx", None).await;
    assert_eq!(status, 400, "{body}");
    let csv = client()
        .get(format!(
            "{}/admin/focus?since={}",
            gw2.url,
            since.replace('+', "%2B")
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    assert_eq!(
        switchyard_ledger::escape::focus::total_nanos(&csv),
        Some(Money(ledger_total))
    );
    let (status, body) = gw2
        .admin(
            Method::GET,
            &format!("/slo?until={}", until.replace('+', "%2B")),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, slo);
    // The same SLOs as gauges, for the config's deployments.
    let metrics = client()
        .get(format!("{}/metrics", gw2.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for window in ["1h", "1d", "30d"] {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("switchyard_slo_availability{")
                    && l.contains("deployment=\"d1\"")
                    && l.contains(&format!("window=\"{window}\""))
            })
            .unwrap_or_else(|| panic!("no SLO gauge for d1 {window}:\n{metrics}"));
        assert!(line.ends_with(" 1"), "{line}");
    }
    let anonymous = client()
        .get(format!("{}/admin/concentration", gw2.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}
