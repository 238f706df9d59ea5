use super::*;
use switchyard_router::DataClass;

const GOOD: &str = r#"
[server]
listen = "127.0.0.1:0"

[[keys]]
name = "team-a"
secret_env = "TEAM_A_KEY"
models = ["gpt-4o", "mini*"]

[providers.azure-eu]
kind = "azure_openai"
base_url = "https://example.openai.azure.com/"
api_key_env = "AZURE_KEY"
api_version = "2024-10-21"
cloud = "azure"
region = "swedencentral"
jurisdiction = "eu"

[providers.openai]
kind = "openai"
base_url = "https://api.openai.com/v1"
api_key = "sk-test"
cloud = "openai"
region = "us"
jurisdiction = "us"

[deployments.gpt4o-azure]
provider = "azure-eu"
upstream_model = "gpt-4o-prod"
price = { input = 2.5, output = 10.0 }

[deployments.gpt4o-openai]
provider = "openai"
upstream_model = "gpt-4o"
price = { input = 2.5, output = 10.0, cached_input = 1.25 }
tags = ["zdr"]

[models.gpt-4o]
deployments = ["gpt4o-azure", "gpt4o-openai"]
fallbacks = ["mini"]

[models.mini]
deployments = ["gpt4o-openai"]
"#;

fn env(name: &str) -> Option<String> {
    match name {
        "TEAM_A_KEY" => Some("sk-team-a".into()),
        "AZURE_KEY" => Some("az".into()),
        _ => None,
    }
}

#[test]
fn a_good_config_compiles() {
    let snap = compile(GOOD, &env).unwrap();
    let model = snap.catalog.model("gpt-4o").unwrap();
    assert_eq!(model.deployments.len(), 2);
    assert_eq!(&*model.deployments[0].id, "gpt4o-azure");
    assert_eq!(
        model.deployments[0].provider.base_url,
        "https://example.openai.azure.com"
    );
    let key = snap.key("sk-team-a").unwrap();
    assert!(key.allows("gpt-4o"));
    assert!(key.allows("mini"));
    assert!(!key.allows("other"));
    assert!(snap.key("sk-wrong").is_none());
    assert_eq!(snap.settings.max_attempts, 3);
}

#[test]
fn every_problem_is_reported_with_location_and_hint() {
    let bad = GOOD
        .replace("provider = \"openai\"", "provider = \"opeani\"")
        .replace(
            "fallbacks = [\"mini\"]",
            "fallbacks = [\"gpt-4o\", \"nope\"]",
        )
        .replace(
            "secret_env = \"TEAM_A_KEY\"",
            "secret_env = \"MISSING_VAR\"",
        )
        .replace("listen = \"127.0.0.1:0\"", "listen = \"localhost\"");
    let problems = compile(&bad, &env).unwrap_err();
    let errors: Vec<(&str, &str)> = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .map(|p| (p.location.as_str(), p.message.as_str()))
        .collect();
    assert!(
        errors.contains(&("server.listen", "'localhost' is not an address with a port")),
        "{errors:?}"
    );
    assert!(
        errors.contains(&(
            "deployments.gpt4o-openai.provider",
            "unknown provider 'opeani'"
        )),
        "{errors:?}"
    );
    assert!(
        errors.contains(&(
            "models.gpt-4o.fallbacks[0]",
            "a model cannot fall back to itself"
        )),
        "{errors:?}"
    );
    assert!(
        errors.contains(&("models.gpt-4o.fallbacks[1]", "unknown model 'nope'")),
        "{errors:?}"
    );
    assert!(
        errors.contains(&(
            "keys[0].secret_env",
            "environment variable MISSING_VAR is not set"
        )),
        "{errors:?}"
    );
    // One root cause, one error: the broken deployment is not blamed again where models use it.
    assert!(
        !errors
            .iter()
            .any(|(l, _)| *l == "models.gpt-4o.deployments[1]"),
        "{errors:?}"
    );
    let hint = &problems
        .iter()
        .find(|p| p.location == "deployments.gpt4o-openai.provider")
        .unwrap()
        .hint;
    assert_eq!(
        hint,
        "did you mean 'openai'? (defined providers: azure-eu, openai)"
    );
}

#[test]
fn syntax_and_type_errors_point_at_line_and_column() {
    let problems = compile("[server]\nmax_attempts = \"three\"\n", &env).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].location,
        "server.max_attempts (line 2, column 16)"
    );
    let problems = compile(
        "[models.x]\ndeployments = []\nstrategy = \"random\"\n",
        &env,
    )
    .unwrap_err();
    assert!(problems[0].message.contains("random"), "{:?}", problems[0]);
    let problems = compile("[providers.p]\nkind = \"openai\"\nbase_url=\"http://x\"\ncloud=\"aws\"\nregion=\"r\"\njurisdiction=\"us\"\nsurprise = 1\n", &env).unwrap_err();
    assert!(
        problems[0].message.contains("surprise"),
        "{:?}",
        problems[0]
    );
}

#[test]
fn missing_prices_are_warnings_not_silent_zeroes() {
    let text = GOOD.replace("price = { input = 2.5, output = 10.0 }\n", "");
    let snap = compile(&text, &env).unwrap();
    assert!(snap
        .warnings
        .iter()
        .any(|w| w.location == "deployments.gpt4o-azure.price"));
}

#[test]
fn the_shipped_example_config_compiles() {
    let text = include_str!("../../../../config/example.toml");
    let snap = compile(text, &|name| Some(format!("secret-{name}"))).unwrap();
    assert!(snap.warnings.is_empty(), "{:?}", snap.warnings);
    assert_eq!(snap.catalog.models().count(), 5);
}

const ROUTING: &str = r#"
[constraints]
deny_clouds = ["oci"]

[data_classes.confidential]
jurisdictions = ["eu"]
require_tags = ["zdr"]

[retry]
time_budget_ms = 20000
backoff_base_ms = 20
backoff_max_ms = 500
rate_limit_cooldown_ms = 2000
statuses = { anthropic = [429, 500, 529], openai = [429, 500, 503] }

[breaker]
consecutive_failures = 3
error_rate = 0.4
min_requests = 10
window_ms = 10000
probe_initial_ms = 500
open_ms = 5000

[[keys]]
name = "eu-team"
secret = "sk-eu"
data_class = "confidential"

[providers.azure-eu]
kind = "azure_openai"
base_url = "https://example.openai.azure.com"
api_key = "az"
api_version = "2024-10-21"
cloud = "azure"
region = "swedencentral"
jurisdiction = "eu"
retry_statuses = [400, 429, 500]

[providers.openai]
kind = "openai"
base_url = "https://api.openai.com/v1"
api_key = "sk"
cloud = "openai"
region = "us"
jurisdiction = "us"

[deployments.ptu]
provider = "azure-eu"
upstream_model = "gpt-4o-ptu"
price = { input = 2.5, output = 10.0 }
commitment = { kind = "provisioned", rpm = 100, tpm = 200000 }
tags = ["zdr"]

[deployments.prepaid]
provider = "openai"
upstream_model = "gpt-4o"
price = { input = 2.5, output = 10.0 }
commitment = { kind = "prepaid", amount_usd = 500, period = "month" }

[deployments.paygo]
provider = "openai"
upstream_model = "gpt-4o"
price = { input = 2.5, output = 10.0 }

[models.spill]
deployments = ["ptu", "prepaid", "paygo"]
strategy = "spillover"
hedging = { delay_ms = 800, percentile = 95 }
constraints = { deny_regions = ["us-west"] }

[models.split]
deployments = ["prepaid", "paygo"]
strategy = "weighted"
weights = { prepaid = 3, paygo = 1 }
"#;

#[test]
fn routing_settings_compile_into_the_router_policy() {
    use switchyard_router::{Commitment, Period, Strategy};
    use switchyard_types::{Cloud, Money, ProviderKind};
    let snap = compile(ROUTING, &env).unwrap();
    let policy = snap.catalog.policy();
    assert_eq!(policy.constraints.clouds.deny, vec![Cloud::Oci]);
    let class = DataClass::new("confidential").unwrap();
    assert_eq!(
        policy.data_classes[&class].require_tags,
        vec!["zdr".to_string()]
    );
    assert_eq!(policy.breaker.consecutive_failures, 3);
    assert_eq!(policy.breaker.open_for, Duration::from_secs(5));
    assert_eq!(policy.breaker.probe_initial, Duration::from_millis(500));
    assert_eq!(policy.budget.time, Duration::from_secs(20));
    assert_eq!(policy.budget.max_attempts, 3);
    assert_eq!(policy.rate_limit_cooldown, Duration::from_secs(2));
    let anthropic = policy.retry.table(&ProviderSpec {
        id: "x".into(),
        kind: ProviderKind::Anthropic,
        base_url: String::new(),
        auth: Auth::None,
        api_version: None,
        cloud: Cloud::Anthropic,
        region: "us".into(),
        jurisdiction: switchyard_types::Jurisdiction::Us,
        http2_prior_knowledge: false,
        extra: Default::default(),
    });
    assert_eq!(anthropic.statuses(), [429, 500, 529]);
    let spill = snap.catalog.model("spill").unwrap();
    assert_eq!(spill.strategy, Strategy::Spillover);
    assert!(spill.hedging.is_some());
    assert_eq!(spill.constraints.regions.deny, vec![Box::from("us-west")]);
    assert_eq!(
        spill.deployments[0].commitment,
        Some(Commitment::Provisioned {
            rpm: Some(100),
            tpm: Some(200_000)
        })
    );
    assert_eq!(
        spill.deployments[1].commitment,
        Some(Commitment::Prepaid {
            amount: Money::from_usd(500.0).unwrap(),
            period: Period::Month
        })
    );
    let split = snap.catalog.model("split").unwrap();
    assert_eq!(
        split.strategy,
        Strategy::Weighted {
            weights: vec![3, 1]
        }
    );
    let key = snap.key("sk-eu").unwrap();
    assert_eq!(key.data_class, Some(class));
    assert!(snap.key_by_name("eu-team").is_some());
}

#[test]
fn routing_problems_are_reported_with_location_and_hint() {
    let bad = ROUTING
        .replace("data_class = \"confidential\"", "data_class = \"secret\"")
        .replace(
            "weights = { prepaid = 3, paygo = 1 }",
            "weights = { prepaid = 3, nope = 1 }",
        )
        .replace("amount_usd = 500", "amount_usd = -5")
        .replace(", rpm = 100, tpm = 200000", "")
        .replace("error_rate = 0.4", "error_rate = 1.5")
        .replace("probe_initial_ms = 500", "probe_initial_ms = 6000")
        .replace("percentile = 95", "percentile = 100")
        .replace(
            "retry_statuses = [400, 429, 500]",
            "retry_statuses = [400, 4290]",
        )
        .replace(
            "strategy = \"spillover\"",
            "strategy = \"spillover\"\nweights = { ptu = 1 }",
        );
    let problems = compile(&bad, &env).unwrap_err();
    let at = |loc: &str| {
        problems
            .iter()
            .find(|p| p.location == loc)
            .unwrap_or_else(|| panic!("no problem at {loc}: {problems:#?}"))
    };
    assert_eq!(
        at("keys[0].data_class").message,
        "unknown data class 'secret'"
    );
    assert_eq!(
        at("keys[0].data_class").hint,
        "defined data classes: confidential"
    );
    assert_eq!(
        at("models.split.weights.nope").message,
        "'nope' is not one of this model's deployments"
    );
    assert_eq!(at("models.split.weights").message, "no weight for paygo");
    assert_eq!(
        at("models.spill.weights").message,
        "weights only apply to strategy = \"weighted\""
    );
    assert!(at("deployments.prepaid.commitment.amount_usd")
        .message
        .contains("not a positive amount"));
    assert_eq!(
        at("deployments.ptu.commitment").message,
        "provisioned capacity without rpm or tpm"
    );
    assert!(at("breaker.error_rate").hint.contains("0.5"));
    assert!(at("breaker.probe_initial_ms")
        .message
        .contains("longer than open_ms"));
    assert!(at("models.spill.hedging.percentile")
        .message
        .contains("100"));
    assert_eq!(
        at("providers.azure-eu.retry_statuses[1]").message,
        "4290 is not an HTTP status"
    );
    // Unknown strategy names, commitment kinds and constraint keys are rejected by the parser.
    for (from, to, word) in [
        (
            "strategy = \"spillover\"",
            "strategy = \"random\"",
            "random",
        ),
        ("kind = \"prepaid\"", "kind = \"reserved\"", "reserved"),
        (
            "deny_clouds = [\"oci\"]",
            "deny_cloud = [\"oci\"]",
            "deny_cloud",
        ),
        (
            "jurisdictions = [\"eu\"]",
            "jurisdictions = [\"mars\"]",
            "mars",
        ),
    ] {
        let problems = compile(&ROUTING.replace(from, to), &env).unwrap_err();
        assert!(
            problems[0].message.contains(word),
            "{word}: {:?}",
            problems[0]
        );
    }
}

#[test]
fn retry_tables_context_fallbacks_and_timeouts_compile_per_model_and_deployment() {
    use switchyard_router::{Action, ErrorClass};
    let text = GOOD
        .replace(
            "[server]\n",
            "[server]\ntimeouts = { total_ms = 30000, attempt_ms = 20000 }\n",
        )
        .replace(
            "fallbacks = [\"mini\"]\n",
            "fallbacks = [\"mini\"]\ncontext_fallbacks = [\"mini\"]\nretry = { same_deployment_retries = 2, on = { server_error = \"failover\" } }\ntimeouts = { attempt_ms = 500 }\n",
        )
        .replace(
            "tags = [\"zdr\"]\n",
            "tags = [\"zdr\"]\ntimeouts = { connect_ms = 100, attempt_ms = 900, stall_ms = 700 }\n",
        )
        + "\n[retry]\nretry_after_wait_max_ms = 1500\non = { auth = \"fail\" }\n";
    let snap = compile(&text, &env).unwrap();
    let policy = snap.catalog.policy();
    assert_eq!(
        policy.retry_rules.retry_after_wait_max,
        Duration::from_millis(1500)
    );
    assert_eq!(policy.retry_rules.action(ErrorClass::Auth), Action::Fail);
    assert_eq!(policy.retry_rules.same_deployment, 1);
    // Twice the attempt timeout, more than the total: room for one failover.
    assert_eq!(policy.budget.time, Duration::from_secs(40));
    let model = snap.catalog.model("gpt-4o").unwrap();
    let rules = model.retry.unwrap();
    assert_eq!(rules.same_deployment, 2);
    assert_eq!(rules.action(ErrorClass::ServerError), Action::Failover);
    assert_eq!(rules.action(ErrorClass::Auth), Action::Fail, "inherited");
    assert_eq!(model.context_fallbacks, vec![Arc::<str>::from("mini")]);
    assert!(snap.catalog.model("mini").unwrap().retry.is_none());
    let s = &snap.settings;
    let t = |m: &str, d: &str| s.timeout_overrides.resolve(&s.timeouts, m, d);
    // The model's keys win, then the deployment's, then the server's.
    let both = t("gpt-4o", "gpt4o-openai");
    assert_eq!(
        (both.attempt, both.connect, both.stall, both.total),
        (
            Duration::from_millis(500),
            Duration::from_millis(100),
            Duration::from_millis(700),
            Duration::from_secs(30)
        )
    );
    assert_eq!(
        t("mini", "gpt4o-openai").attempt,
        Duration::from_millis(900)
    );
    assert_eq!(t("mini", "gpt4o-azure").attempt, Duration::from_secs(20));

    let bad = text
        .replace(
            "context_fallbacks = [\"mini\"]",
            "context_fallbacks = [\"gpt-4o\", \"huge\"]",
        )
        .replace("attempt_ms = 500", "attempt_ms = 0");
    let problems = compile(&bad, &env).unwrap_err();
    let at: Vec<&str> = problems.iter().map(|p| p.location.as_str()).collect();
    for loc in [
        "models.gpt-4o.context_fallbacks[0]",
        "models.gpt-4o.context_fallbacks[1]",
        "models.gpt-4o.timeouts.attempt_ms",
    ] {
        assert!(at.contains(&loc), "{loc} in {at:?}");
    }
    let unknown = text.replace("server_error = \"failover\"", "server_eror = \"failover\"");
    assert!(compile(&unknown, &env).is_err());
}

#[test]
fn connection_limits_have_defaults_and_refuse_zero() {
    let snap = compile(GOOD, &env).unwrap();
    assert_eq!(snap.settings.connections, ConnectionSettings::default());
    let text = GOOD.replace(
        "[server]\n",
        "[server]\nmax_connections = 100\nmax_in_flight = 10\nheader_read_timeout_ms = 1500\nbody_read_timeout_ms = 2500\nidle_timeout_ms = 3500\ndrain_timeout_ms = 4500\n",
    );
    let c = compile(&text, &env).unwrap().settings.connections;
    assert_eq!(
        c,
        ConnectionSettings {
            max_connections: 100,
            max_in_flight: 10,
            header_read: Duration::from_millis(1500),
            body_read: Duration::from_millis(2500),
            idle: Duration::from_millis(3500),
            drain: Duration::from_millis(4500),
        }
    );
    for field in ["max_in_flight = 0", "drain_timeout_ms = 0"] {
        let text = GOOD.replace("[server]\n", &format!("[server]\n{field}\n"));
        let problems = compile(&text, &env).unwrap_err();
        let name = field.split(' ').next().unwrap();
        assert!(
            problems
                .iter()
                .any(|p| p.location == format!("server.{name}")),
            "{problems:?}"
        );
    }
}

#[test]
fn ledger_on_full_block_is_refused_with_a_hint_and_db_timeouts_have_defaults() {
    let snap = compile(GOOD, &env).unwrap();
    let rt = &snap.settings.runtime;
    assert_eq!(rt.keys_db_timeouts.acquire, Duration::from_secs(1));
    assert_eq!(rt.keys_db_timeouts.statement, Duration::from_secs(2));
    assert_eq!(rt.ledger_db_timeouts.statement, Duration::from_secs(10));
    let text = format!("{GOOD}\n[ledger]\non_full = \"block\"\nblock_timeout_ms = 500\n");
    let problems = compile(&text, &env).unwrap_err();
    let on_full = problems
        .iter()
        .find(|p| p.location == "ledger.on_full")
        .expect("on_full = block is refused");
    assert!(on_full.message.contains("not supported"), "{on_full}");
    assert!(problems
        .iter()
        .any(|p| p.location == "ledger.block_timeout_ms"));
    let text = format!(
        "{GOOD}\n[ledger]\non_full = \"drop\"\nstatement_timeout_ms = 1500\n\n[governance]\nacquire_timeout_ms = 250\n"
    );
    let rt = compile(&text, &env).unwrap().settings.runtime;
    assert_eq!(rt.ledger_db_timeouts.statement, Duration::from_millis(1500));
    assert_eq!(rt.keys_db_timeouts.acquire, Duration::from_millis(250));
    let text = format!("{GOOD}\n[governance]\nstatement_timeout_ms = 0\n");
    let problems = compile(&text, &env).unwrap_err();
    assert!(problems
        .iter()
        .any(|p| p.location == "governance.statement_timeout_ms"));
}

/// Ten mistakes people make, each answered by one plain-language error that says where it is
/// and what to do (a "did you mean" for near-miss names).
#[test]
fn ten_typical_mistakes_get_one_plain_error_each() {
    let replace = |from: &str, to: &str| {
        assert!(GOOD.contains(from), "{from}");
        GOOD.replacen(from, to, 1)
    };
    let cases: Vec<(&str, String, &str, &str)> = vec![
        // (what, config, location contains, message or hint contains)
        (
            "a misspelt table",
            format!("[sever]\nlisten = \"127.0.0.1:0\"\n{GOOD}"),
            "sever",
            "did you mean `server`?",
        ),
        (
            "a misspelt key",
            replace(
                "listen = \"127.0.0.1:0\"",
                "listen = \"127.0.0.1:0\"\nmax_atempts = 3",
            ),
            "server.max_atempts",
            "did you mean `max_attempts`?",
        ),
        (
            "text where a number goes",
            replace(
                "listen = \"127.0.0.1:0\"",
                "listen = \"127.0.0.1:0\"\nmax_attempts = \"three\"",
            ),
            "server.max_attempts",
            "expected a whole number, found the text \"three\"",
        ),
        (
            "a misspelt provider kind",
            replace("kind = \"openai\"", "kind = \"open_ai\""),
            "providers.openai.kind",
            "did you mean \"openai\"?",
        ),
        (
            "a misspelt cloud",
            replace("cloud = \"azure\"", "cloud = \"azur\""),
            "providers.azure-eu.cloud",
            "did you mean \"azure\"?",
        ),
        (
            "a deployment naming a misspelt provider",
            replace("provider = \"openai\"", "provider = \"opnai\""),
            "deployments.gpt4o-openai.provider",
            "did you mean 'openai'?",
        ),
        (
            "a model naming a misspelt deployment",
            replace(
                "deployments = [\"gpt4o-openai\"]",
                "deployments = [\"gpt4o-opnai\"]",
            ),
            "models.mini.deployments[0]",
            "did you mean 'gpt4o-openai'?",
        ),
        (
            "a misspelt fallback model",
            replace("fallbacks = [\"mini\"]", "fallbacks = [\"mimi\"]"),
            "models.gpt-4o.fallbacks[0]",
            "did you mean 'mini'?",
        ),
        (
            "a misspelt strategy",
            replace(
                "fallbacks = [\"mini\"]",
                "fallbacks = [\"mini\"]\nstrategy = \"cheapst\"",
            ),
            "models.gpt-4o.strategy",
            "did you mean \"cheapest\"?",
        ),
        // One root cause: the provider fails, and its deployment and models are not blamed too.
        (
            "an unset environment variable",
            replace(
                "api_key_env = \"AZURE_KEY\"",
                "api_key_env = \"AZURE_KEY_TYPO\"",
            ),
            "providers.azure-eu.api_key_env",
            "AZURE_KEY_TYPO is not set",
        ),
    ];
    for (what, config, location, words) in cases {
        let problems = compile(&config, &env)
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"));
        let errors: Vec<&Problem> = problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .collect();
        assert_eq!(errors.len(), 1, "{what}: one error, got {errors:#?}");
        let e = errors[0];
        assert!(
            e.location.contains(location),
            "{what}: location {:?}",
            e.location
        );
        let text = format!("{} {}", e.message, e.hint);
        assert!(text.contains(words), "{what}: {text:?}");
        for rust in ["usize", "invalid type", "variant", "struct "] {
            assert!(!text.contains(rust), "{what}: {text:?} reads like Rust");
        }
        assert!(!e.hint.is_empty(), "{what}: no hint");
    }
}
