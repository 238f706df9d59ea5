use super::*;

fn usd_per_m(nanos: i64) -> PricePerMillion {
    PricePerMillion(Money(nanos))
}

fn sonnet() -> Prices {
    Prices {
        input: usd_per_m(3_000_000_000),
        output: usd_per_m(15_000_000_000),
        cached_input: Some(usd_per_m(300_000_000)),
        cache_write: Some(usd_per_m(3_750_000_000)),
    }
}

#[test]
fn plain_input_and_output() {
    let u = TokenUsage {
        input: 1_000,
        output: 500,
        ..TokenUsage::default()
    };
    // 1000 × $3/M + 500 × $15/M = $0.003 + $0.0075.
    assert_eq!(cost(&sonnet(), &u), Money(10_500_000));
}

#[test]
fn cached_and_written_tokens_use_their_rates() {
    let u = TokenUsage {
        input: 1_000,
        output: 0,
        cached_input: 600,
        cache_write: 100,
        reasoning: 0,
    };
    // 300 uncached × 3 + 600 × 0.30 + 100 × 3.75, per million.
    assert_eq!(cost(&sonnet(), &u), Money(900_000 + 180_000 + 375_000));
}

#[test]
fn reasoning_is_part_of_output_not_added_twice() {
    let with = TokenUsage {
        output: 500,
        reasoning: 200,
        ..TokenUsage::default()
    };
    let without = TokenUsage {
        output: 500,
        ..TokenUsage::default()
    };
    assert_eq!(cost(&sonnet(), &with), cost(&sonnet(), &without));
}

#[test]
fn defaults_cached_at_input_and_writes_at_a_quarter_more() {
    let p = Prices {
        input: usd_per_m(2_500_000_000),
        output: usd_per_m(10_000_000_000),
        cached_input: None,
        cache_write: None,
    };
    assert_eq!(p.cached_input_rate(), p.input);
    assert_eq!(p.cache_write_rate(), usd_per_m(3_125_000_000));
}

#[test]
fn inconsistent_counts_never_go_negative() {
    // A buggy upstream reporting more cached than input tokens: the excess is ignored.
    let u = TokenUsage {
        input: 10,
        cached_input: 50,
        cache_write: 50,
        ..TokenUsage::default()
    };
    assert_eq!(cost(&sonnet(), &u), Money(3_000));
}

#[test]
fn unknown_price_is_flagged_not_free() {
    let u = TokenUsage {
        input: 5,
        ..TokenUsage::default()
    };
    assert_eq!(price(None, &u), (Money::ZERO, false));
    assert_eq!(price(Some(&sonnet()), &u), (Money(15_000), true));
}

#[test]
fn every_protocols_report_of_the_same_tokens_costs_the_same() {
    // The same real token mix: 1000 input of which 600 cache reads and 100 cache writes,
    // 500 output of which 200 reasoning. Each protocol reports it in its own shape, and
    // streamed answers report the same totals in pieces (the server sums them first).
    let prices = Prices {
        cache_write: Some(sonnet().input),
        ..sonnet()
    };
    let openai = normalize::openai(1_000, 500, 600, 200);
    let anthropic = normalize::anthropic(300, 500, 600, 100);
    let bedrock = normalize::bedrock(300, 500, 600, 100);
    let gemini = normalize::gemini(1_000, 300, 600, 200);
    let expected = cost(&prices, &openai);
    for u in [anthropic, bedrock, gemini] {
        assert_eq!(u.input, 1_000);
        assert_eq!(u.output, 500);
        assert_eq!(cost(&prices, &u), expected, "{u:?}");
    }
}

#[test]
fn shipped_table_parses_and_covers_every_cloud() {
    let t = DefaultPrices::shipped().unwrap();
    let v = t.version();
    assert!(
        v.len() == 10 && v.chars().filter(|c| *c == '-').count() == 2,
        "version {v} is not a date"
    );
    for (kind, model) in [
        (ProviderKind::OpenAi, "gpt-4o"),
        (ProviderKind::OpenAi, "gpt-4o-mini"),
        (ProviderKind::OpenAi, "text-embedding-3-small"),
        (ProviderKind::AzureOpenAi, "gpt-4o"),
        (ProviderKind::AzureOpenAi, "gpt-4o-mini"),
        (ProviderKind::Anthropic, "claude-sonnet-4-5"),
        (ProviderKind::Anthropic, "claude-haiku-4-5"),
        (
            ProviderKind::Bedrock,
            "anthropic.claude-sonnet-4-20250514-v1:0",
        ),
        (
            ProviderKind::Bedrock,
            "eu.anthropic.claude-sonnet-4-20250514-v1:0",
        ),
        (ProviderKind::Vertex, "claude-sonnet-4@20250514"),
        (ProviderKind::Gemini, "gemini-2.5-flash"),
        (ProviderKind::Vertex, "gemini-2.5-pro"),
    ] {
        assert!(t.lookup(kind, model).is_some(), "{kind} {model}");
    }
    let gpt4o = t.lookup(ProviderKind::OpenAi, "gpt-4o").unwrap();
    assert_eq!(gpt4o.input, usd_per_m(2_500_000_000));
    assert_eq!(gpt4o.cached_input, Some(usd_per_m(1_250_000_000)));
    assert!(t.lookup(ProviderKind::OpenAi, "gpt-9").is_none());
    assert!(t
        .lookup(
            ProviderKind::Bedrock,
            "xx.anthropic.claude-sonnet-4-20250514-v1:0"
        )
        .is_none());
}

/// The table says which price list its numbers come from, and it is the one
/// `scripts/update-prices` pins: moving the pin without rerunning the script fails here.
#[test]
fn shipped_table_names_the_pinned_source() {
    let script = include_str!("../../../scripts/update-prices");
    let pinned = |name: &str| {
        script
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(" = "))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("{name} is not in scripts/update-prices"))
    };
    let source = DefaultPrices::shipped().unwrap().source().unwrap();
    assert!(
        source.starts_with(&format!("litellm {} ", pinned("LITELLM_VERSION"))),
        "{source}"
    );
    assert!(source.contains(&pinned("LITELLM_SHA256")), "{source}");
}

#[test]
fn a_model_priced_twice_is_rejected() {
    let text = r#"
version = "x"
[[price]]
kinds = ["openai"]
models = ["a"]
input = 1.0
output = 1.0
[[price]]
kinds = ["openai"]
models = ["a"]
input = 2.0
output = 2.0
"#;
    assert!(DefaultPrices::parse(text).is_err());
}
