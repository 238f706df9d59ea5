use super::*;
use crate::FindingKind::{Approximated, Assumed, Unmapped};

/// LiteLLM's documented example configs (see each file's first line for its source).
pub(crate) const EXAMPLES: &[(&str, &str)] = &[
    (
        "quick_start",
        include_str!("../tests/litellm/quick_start.yaml"),
    ),
    (
        "load_balancing",
        include_str!("../tests/litellm/load_balancing.yaml"),
    ),
    (
        "fallback_model_id",
        include_str!("../tests/litellm/fallback_model_id.yaml"),
    ),
    (
        "retries_cooldowns",
        include_str!("../tests/litellm/retries_cooldowns.yaml"),
    ),
    (
        "router_fallbacks",
        include_str!("../tests/litellm/router_fallbacks.yaml"),
    ),
    (
        "bedrock_regions",
        include_str!("../tests/litellm/bedrock_regions.yaml"),
    ),
    (
        "embeddings",
        include_str!("../tests/litellm/embeddings.yaml"),
    ),
    ("vertex", include_str!("../tests/litellm/vertex.yaml")),
    ("anthropic", include_str!("../tests/litellm/anthropic.yaml")),
];

fn example(name: &str) -> Conversion {
    let (_, text) = EXAMPLES
        .iter()
        .find(|(n, _)| *n == name)
        .expect("an example of that name");
    convert(text).expect("converts")
}

fn toml_of(c: &Conversion) -> toml::Value {
    toml::from_str(&c.toml).unwrap_or_else(|e| panic!("{e}\n{}", c.toml))
}

fn has(c: &Conversion, kind: FindingKind, path: &str, needle: &str) -> bool {
    c.findings
        .iter()
        .any(|f| f.kind == kind && f.path == path && f.message.contains(needle))
}

#[track_caller]
fn assert_finding(c: &Conversion, kind: FindingKind, path: &str, needle: &str) {
    assert!(
        has(c, kind, path, needle),
        "no {kind:?} finding at {path} containing {needle:?}; findings:\n{}",
        c.findings
            .iter()
            .map(|f| format!("{f}\n"))
            .collect::<String>()
    );
}

#[test]
fn every_example_converts_to_toml_and_snapshots() {
    for (name, text) in EXAMPLES {
        let c = convert(text).expect("converts");
        toml_of(&c);
        insta::assert_snapshot!(format!("{name}.toml"), c.toml);
        let report: String = c.findings.iter().map(|f| format!("{f}\n")).collect();
        insta::assert_snapshot!(format!("{name}.findings"), report);
    }
}

#[test]
fn quick_start_entries_with_one_model_name_become_deployments_of_one_model() {
    let c = example("quick_start");
    let t = toml_of(&c);
    let deployments = t["models"]["gpt-4o"]["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 2);
    // simple-shuffle (the default) with rpm on both: weighted by rpm.
    assert_eq!(t["models"]["gpt-4o"]["strategy"].as_str(), Some("weighted"));
    for d in deployments {
        let d = d.as_str().unwrap();
        assert_eq!(t["models"]["gpt-4o"]["weights"][d].as_integer(), Some(6));
        assert_eq!(t["deployments"][d]["limits"]["rpm"].as_integer(), Some(6));
        let provider = t["deployments"][d]["provider"].as_str().unwrap();
        assert_eq!(
            t["providers"][provider]["kind"].as_str(),
            Some("azure_openai")
        );
        assert_eq!(t["providers"][provider]["cloud"].as_str(), Some("azure"));
    }
    // Two resources with two keys: two providers, each reading its own variable.
    let eu = &t["providers"]["azure-my-endpoint-europe-berri-992"];
    assert_eq!(eu["api_key_env"].as_str(), Some("AZURE_API_KEY_EU"));
    assert_eq!(eu["region"].as_str(), Some("unknown"));
    assert_finding(
        &c,
        Assumed,
        "model_list[0].litellm_params.api_base",
        "not recognisable",
    );
    assert_eq!(
        t["deployments"]["gpt-4o-azure-my-endpoint-europe-berri-992"]["upstream_model"].as_str(),
        Some("gpt-4o-eu")
    );
}

#[test]
fn quick_start_bedrock_vllm_wildcard_and_settings() {
    let c = example("quick_start");
    let t = toml_of(&c);
    // No aws_region_name: assumed us-east-1, which the second entry names: one provider.
    let bedrock = &t["providers"]["bedrock-us-east-1"];
    assert_eq!(bedrock["cloud"].as_str(), Some("aws"));
    assert_eq!(bedrock["jurisdiction"].as_str(), Some("us"));
    assert_eq!(
        t["providers"]
            .as_table()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with("bedrock"))
            .count(),
        1
    );
    assert_finding(
        &c,
        Assumed,
        "model_list[1].litellm_params.aws_region_name",
        "us-east-1",
    );
    // openai/ with an api_base is an OpenAI-compatible server; the literal "none" key is dropped.
    let vllm = &t["providers"]["compat-0-0-0-0-4000"];
    assert_eq!(vllm["kind"].as_str(), Some("openai_compatible"));
    assert_eq!(vllm["base_url"].as_str(), Some("http://0.0.0.0:4000/v1"));
    assert!(vllm.get("api_key_env").is_none());
    assert_finding(
        &c,
        Unmapped,
        "model_list[4].model_info.version",
        "no Switchyard equivalent",
    );
    assert_finding(&c, Unmapped, "model_list[5]", "wildcard");
    assert!(t["models"].get("*").is_none());
    assert_finding(&c, Unmapped, "litellm_settings.drop_params", "");
    assert_finding(&c, Unmapped, "litellm_settings.success_callback", "");
    assert_finding(&c, Unmapped, "general_settings.alerting", "");
    // The literal master key is not copied; its variable serves the admin API and a client key.
    assert_finding(
        &c,
        Unmapped,
        "general_settings.master_key",
        "LITELLM_MASTER_KEY",
    );
    assert!(!c.toml.contains("sk-1234"));
    assert_eq!(t["admin"]["token_env"].as_str(), Some("LITELLM_MASTER_KEY"));
    assert_eq!(
        t["keys"][0]["secret_env"].as_str(),
        Some("LITELLM_MASTER_KEY")
    );
    assert!(c.env_vars.contains(&"LITELLM_MASTER_KEY".to_string()));
}

#[test]
fn load_balancing_settings_map_to_server_breaker_fallbacks_and_an_alias_model() {
    let c = example("load_balancing");
    let t = toml_of(&c);
    // router_settings.num_retries (2) overrides litellm_settings.num_retries (3).
    assert_eq!(t["server"]["max_attempts"].as_integer(), Some(3));
    assert_eq!(
        t["server"]["timeouts"]["attempt_ms"].as_integer(),
        Some(30_000)
    );
    assert_eq!(t["breaker"]["consecutive_failures"].as_integer(), Some(4));
    // huggingface has no Switchyard kind: zephyr-beta is not converted, nor its fallbacks.
    assert!(t["models"].get("zephyr-beta").is_none());
    assert_finding(
        &c,
        Unmapped,
        "model_list[0].litellm_params.model",
        "huggingface",
    );
    assert_finding(
        &c,
        Unmapped,
        "litellm_settings.fallbacks[0].zephyr-beta",
        "not converted",
    );
    assert_eq!(
        t["models"]["gpt-4o"]["context_fallbacks"]
            .as_array()
            .unwrap()[0]
            .as_str(),
        Some("gpt-3.5-turbo-16k")
    );
    // The alias is a model with gpt-4o's deployments.
    assert_eq!(
        t["models"]["gpt-4"]["deployments"],
        t["models"]["gpt-4o"]["deployments"]
    );
    // A placeholder Redis host is not a host.
    assert!(t.get("governance").is_none());
    assert_finding(&c, Unmapped, "router_settings.redis_host", "redis://");
    // gpt-4o is in the shipped table; gpt-3.5-turbo-16k is not.
    assert!(t["deployments"]["gpt-4o-openai"].get("price").is_none());
    assert_finding(
        &c,
        Unmapped,
        "model_list[4].litellm_params.model",
        "no price",
    );
    assert!(!has(
        &c,
        Unmapped,
        "model_list[3].litellm_params.model",
        "no price"
    ));
    // A literal key becomes a variable to export.
    assert_eq!(
        t["providers"]["openai"]["api_key_env"].as_str(),
        Some("OPENAI_API_KEY")
    );
    assert_finding(
        &c,
        Unmapped,
        "model_list[3].litellm_params.api_key",
        "export it as OPENAI_API_KEY",
    );
}

#[test]
fn fallbacks_to_a_deployment_id_are_dropped_and_env_api_bases_get_a_placeholder() {
    let c = example("fallback_model_id");
    let t = toml_of(&c);
    assert_finding(
        &c,
        Unmapped,
        "litellm_settings.fallbacks[0].gpt-4",
        "my-specific-model-id",
    );
    assert!(t["models"]["gpt-4"].get("fallbacks").is_none());
    assert_finding(
        &c,
        Approximated,
        "model_list[0].model_info.id",
        "deployment ids",
    );
    assert_finding(
        &c,
        Unmapped,
        "model_list[1].litellm_params.api_base",
        "AZURE_API_BASE",
    );
    let anthropic = &t["providers"]["anthropic"];
    assert_eq!(anthropic["cloud"].as_str(), Some("anthropic"));
    assert_eq!(anthropic["api_key_env"].as_str(), Some("ANTHROPIC_API_KEY"));
    // openai/gpt-4 without a key reads LiteLLM's default variable.
    assert_finding(
        &c,
        Assumed,
        "model_list[0].litellm_params.api_key",
        "OPENAI_API_KEY",
    );
    assert_eq!(
        c.env_vars,
        ["ANTHROPIC_API_KEY", "AZURE_API_KEY", "OPENAI_API_KEY"]
    );
}

#[test]
fn cooldowns_become_breaker_probes() {
    let c = example("retries_cooldowns");
    let t = toml_of(&c);
    assert_eq!(t["breaker"]["probe_initial_ms"].as_integer(), Some(30_000));
    assert_eq!(t["breaker"]["open_ms"].as_integer(), Some(30_000));
    assert_eq!(t["server"]["max_attempts"].as_integer(), Some(4));
    assert_eq!(
        t["server"]["timeouts"]["attempt_ms"].as_integer(),
        Some(10_000)
    );
    // No master key: LiteLLM is open, Switchyard is not.
    assert!(t.get("keys").is_none());
    assert_finding(&c, Assumed, "general_settings.master_key", "401");
}

#[test]
fn an_entry_with_a_placeholder_url_is_skipped_and_fallbacks_to_it_are_dropped() {
    let c = example("router_fallbacks");
    let t = toml_of(&c);
    assert_finding(
        &c,
        Unmapped,
        "model_list[0].litellm_params.api_base",
        "not an http(s) URL",
    );
    assert!(t["models"].get("gpt-3.5-turbo").is_none());
    assert_finding(
        &c,
        Unmapped,
        "router_settings.fallbacks[0].gpt-3.5-turbo",
        "not converted",
    );
}

#[test]
fn bedrock_regions_are_three_providers_of_one_model() {
    let c = example("bedrock_regions");
    let t = toml_of(&c);
    let model = &t["models"]["bedrock-cohere"];
    let names: Vec<&str> = model["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d.as_str())
        .collect();
    assert_eq!(names.len(), 3);
    let regions: BTreeSet<&str> = names
        .iter()
        .map(|d| t["deployments"][d]["provider"].as_str().unwrap())
        .map(|p| t["providers"][p]["region"].as_str().unwrap())
        .collect();
    assert_eq!(
        regions,
        BTreeSet::from(["us-east-1", "us-east-2", "us-west-2"])
    );
    // No rpm/tpm: an even shuffle.
    for n in names {
        assert_eq!(model["weights"][n].as_integer(), Some(1));
    }
    assert!(
        c.env_vars.is_empty(),
        "the AWS credential chain needs no variables"
    );
}

#[test]
fn vertex_location_is_the_region_and_credentials_are_left_for_the_user() {
    let c = example("vertex");
    let t = toml_of(&c);
    let p = &t["providers"]["vertex-us-central1"];
    assert_eq!(p["kind"].as_str(), Some("vertex"));
    assert_eq!(p["gcp_project"].as_str(), Some("project-id"));
    assert_eq!(p["gcp_location"].as_str(), Some("us-central1"));
    assert_eq!(p["cloud"].as_str(), Some("gcp"));
    assert_eq!(p["jurisdiction"].as_str(), Some("us"));
    assert!(p.get("credentials_file").is_none());
    assert!(c
        .toml
        .contains("# credentials_file = \"/path/to/service_account.json\""));
    assert_finding(
        &c,
        Unmapped,
        "model_list[0].litellm_params.vertex_credentials",
        "application-default",
    );
}

#[test]
fn base_model_and_per_token_costs_price_deployments_the_table_does_not_know() {
    let c = convert(
        r#"
model_list:
  - model_name: a
    litellm_params: { model: azure/prod-4o, api_base: "https://x-eastus2.openai.azure.com", api_key: os.environ/K }
    model_info: { base_model: azure/gpt-4o }
  - model_name: b
    litellm_params: { model: hosted_vllm/llama, api_base: "http://10.0.0.1:8000/v1", input_cost_per_token: 0.0000002, output_cost_per_token: 0.0000006 }
router_settings: { routing_strategy: usage-based-routing-v2 }
"#,
    )
    .unwrap();
    let t = toml_of(&c);
    let shipped = DefaultPrices::shipped()
        .unwrap()
        .lookup(ProviderKind::AzureOpenAi, "gpt-4o")
        .unwrap();
    let a = &t["deployments"]["a-azure-x-eastus2"];
    assert_eq!(
        a["price"]["input"].as_float(),
        Some(shipped.input.0.as_usd())
    );
    assert_eq!(
        a["price"]["output"].as_float(),
        Some(shipped.output.0.as_usd())
    );
    let b = &t["deployments"]["b-compat-10-0-0-1-8000"];
    assert_eq!(b["price"]["input"].as_float(), Some(0.2));
    assert_eq!(b["price"]["output"].as_float(), Some(0.6));
    // The region is in the host name.
    assert_eq!(
        t["providers"]["azure-x-eastus2"]["region"].as_str(),
        Some("eastus2")
    );
    assert_finding(
        &c,
        Approximated,
        "router_settings.routing_strategy",
        "least_busy",
    );
    assert!(!c.findings.iter().any(|f| f.message.contains("no price")));
}

#[test]
fn routing_strategies_map_to_their_switchyard_names() {
    for (litellm, switchyard) in [
        ("simple-shuffle", "weighted"),
        ("latency-based-routing", "fastest"),
        ("cost-based-routing", "cheapest"),
        ("least-busy", "least_busy"),
        ("usage-based-routing", "least_busy"),
    ] {
        let c = convert(&format!(
            "model_list:\n  - {{model_name: m, litellm_params: {{model: openai/gpt-4o}}}}\n  - {{model_name: m, litellm_params: {{model: openai/gpt-4o-mini}}}}\nrouter_settings: {{routing_strategy: {litellm}}}\n"
        ))
        .unwrap();
        assert_eq!(
            toml_of(&c)["models"]["m"]["strategy"].as_str(),
            Some(switchyard),
            "{litellm}"
        );
    }
}

#[test]
fn openai_with_openais_own_api_base_stays_openai() {
    let c = convert(
        "model_list:\n  - {model_name: a, litellm_params: {model: openai/gpt-4o, api_base: \"https://api.openai.com/v1\"}}\n  - {model_name: b, litellm_params: {model: openai/x, api_base: \"https://llm.example.com/v1\"}}\n",
    )
    .unwrap();
    let t = toml_of(&c);
    assert_eq!(t["providers"]["openai"]["kind"].as_str(), Some("openai"));
    assert_eq!(
        t["providers"]["compat-llm-example-com"]["kind"].as_str(),
        Some("openai_compatible")
    );
}

#[test]
fn not_yaml_or_not_a_mapping_is_an_error() {
    assert!(matches!(
        convert("model_list: [\n"),
        Err(ImportError::Yaml(_))
    ));
    assert!(matches!(convert("- a\n- b\n"), Err(ImportError::Shape(_))));
    assert!(matches!(convert(""), Err(ImportError::Shape(_))));
}

#[test]
fn anthropic_bare_model_names_are_inferred_like_litellm_does() {
    let c = example("anthropic");
    let t = toml_of(&c);
    let d = &t["deployments"]["claude-3-anthropic"];
    assert_eq!(d["upstream_model"].as_str(), Some("claude-3-opus-20240229"));
    assert_eq!(
        t["providers"]["anthropic"]["kind"].as_str(),
        Some("anthropic")
    );
    assert_finding(
        &c,
        Assumed,
        "model_list[0].litellm_params.model",
        "cloud = \"anthropic\"",
    );
}

#[test]
fn credentials_timeouts_and_the_remaining_providers_map() {
    let c = convert(
        r#"
model_list:
  - model_name: flash
    litellm_params: { model: gemini/gemini-2.5-flash, api_key: os.environ/GOOGLE_KEY, timeout: 12.5, stream_timeout: 3 }
  - model_name: claude
    litellm_params:
      model: bedrock/converse/anthropic.claude-haiku-4-5-20251001-v1:0
      aws_region_name: eu-west-2
      aws_access_key_id: os.environ/AWS_ID
      aws_secret_access_key: os.environ/AWS_SECRET
  - model_name: pro
    litellm_params: { model: vertex_ai/gemini-2.5-pro, vertex_project: os.environ/PROJ, vertex_location: europe-west4 }
  - model_name: llama
    litellm_params: { model: ollama/llama3, api_base: "http://localhost:11434" }
  - model_name: az
    litellm_params: { model: azure/dep, api_base: "https://r.openai.azure.com", api_key: os.environ/AZ, api_version: os.environ/AZ_VERSION }
router_settings:
  redis_host: redis.internal
  redis_port: 6380
  model_group_alias: { fast: { model: flash, hidden: true } }
  content_policy_fallbacks: [{"flash": ["pro"]}]
"#,
    )
    .unwrap();
    let t = toml_of(&c);
    let gemini = &t["providers"]["gemini"];
    assert_eq!(gemini["api_key_env"].as_str(), Some("GOOGLE_KEY"));
    assert_eq!(gemini["cloud"].as_str(), Some("gcp"));
    let flash = &t["deployments"]["flash-gemini"];
    assert_eq!(flash["timeouts"]["attempt_ms"].as_integer(), Some(12_500));
    assert_eq!(flash["timeouts"]["first_byte_ms"].as_integer(), Some(3_000));
    let bedrock = &t["providers"]["bedrock-eu-west-2"];
    assert_eq!(bedrock["jurisdiction"].as_str(), Some("uk"));
    assert_eq!(bedrock["aws_access_key_id_env"].as_str(), Some("AWS_ID"));
    assert_eq!(
        bedrock["aws_secret_access_key_env"].as_str(),
        Some("AWS_SECRET")
    );
    assert_eq!(
        t["deployments"]["claude-bedrock-eu-west-2"]["upstream_model"].as_str(),
        Some("anthropic.claude-haiku-4-5-20251001-v1:0")
    );
    let vertex = &t["providers"]["vertex-europe-west4"];
    assert_eq!(vertex["jurisdiction"].as_str(), Some("eu"));
    assert!(vertex.get("gcp_project").is_none());
    assert_finding(
        &c,
        Unmapped,
        "model_list[2].litellm_params.vertex_project",
        "PROJ",
    );
    let ollama = &t["providers"]["compat-localhost-11434"];
    assert_eq!(
        ollama["base_url"].as_str(),
        Some("http://localhost:11434/v1")
    );
    assert_finding(
        &c,
        Approximated,
        "model_list[3].litellm_params.model",
        "OpenAI-compatible",
    );
    assert!(t["providers"]["azure-r"].get("api_version").is_none());
    assert_finding(
        &c,
        Unmapped,
        "model_list[4].litellm_params.api_version",
        "AZ_VERSION",
    );
    assert_eq!(
        t["governance"]["state"].as_str(),
        Some("redis://redis.internal:6380")
    );
    assert_eq!(
        t["models"]["fast"]["deployments"],
        t["models"]["flash"]["deployments"]
    );
    assert_finding(
        &c,
        Unmapped,
        "router_settings.content_policy_fallbacks",
        "content_filter",
    );
    assert_eq!(c.env_vars, ["AWS_ID", "AWS_SECRET", "AZ", "GOOGLE_KEY"]);
}
