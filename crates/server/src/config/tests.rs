use super::*;

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
    // The unknown deployment is also reported where models use it.
    assert!(
        errors
            .iter()
            .any(|(l, _)| *l == "models.gpt-4o.deployments[1]"),
        "{errors:?}"
    );
    let hint = &problems
        .iter()
        .find(|p| p.location == "deployments.gpt4o-openai.provider")
        .unwrap()
        .hint;
    assert_eq!(hint, "defined providers: azure-eu, openai");
}

#[test]
fn syntax_and_type_errors_point_at_line_and_column() {
    let problems = compile("[server]\nmax_attempts = \"three\"\n", &env).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].location, "line 2, column 16");
    let problems = compile(
        "[models.x]\ndeployments = []\nstrategy = \"fastest\"\n",
        &env,
    )
    .unwrap_err();
    assert!(problems[0].message.contains("fastest"), "{:?}", problems[0]);
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
    let snap = compile(text, &|_| Some("secret".into())).unwrap();
    assert!(snap.warnings.is_empty(), "{:?}", snap.warnings);
    assert_eq!(snap.catalog.models().count(), 4);
}
