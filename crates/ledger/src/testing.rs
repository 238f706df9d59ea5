//! Deterministic synthetic traffic for tests, benchmarks and demos (no randomness source needed).

use crate::pricing::{cost, Prices};
use crate::record::{AttemptRecord, LedgerRecord, Outcome};
use switchyard_types::{Cloud, ErrorKind, Jurisdiction, Money, PricePerMillion, TokenUsage};

/// A tiny linear congruential generator: enough variety for test traffic, reproducible by seed.
#[derive(Debug, Clone)]
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        // `items` is never empty at the call sites below.
        &items[(self.next() as usize) % items.len()]
    }
}

struct Place {
    deployment: &'static str,
    provider: &'static str,
    cloud: Cloud,
    region: &'static str,
    jurisdiction: Jurisdiction,
    model: &'static str,
    priced: bool,
}

const PLACES: [Place; 5] = [
    Place {
        deployment: "gpt-4o@openai",
        provider: "openai",
        cloud: Cloud::OpenAi,
        region: "us",
        jurisdiction: Jurisdiction::Us,
        model: "gpt-4o",
        priced: true,
    },
    Place {
        deployment: "gpt-4o@azure-eu",
        provider: "azure-sweden",
        cloud: Cloud::Azure,
        region: "swedencentral",
        jurisdiction: Jurisdiction::Eu,
        model: "gpt-4o",
        priced: true,
    },
    Place {
        deployment: "sonnet@bedrock",
        provider: "bedrock-frankfurt",
        cloud: Cloud::Aws,
        region: "eu-central-1",
        jurisdiction: Jurisdiction::Eu,
        model: "sonnet",
        priced: true,
    },
    Place {
        deployment: "flash@vertex",
        provider: "vertex-us",
        cloud: Cloud::Gcp,
        region: "us-central1",
        jurisdiction: Jurisdiction::Us,
        model: "flash",
        priced: true,
    },
    Place {
        deployment: "llama@vllm",
        provider: "vllm-lab",
        cloud: Cloud::SelfHosted,
        region: "lab",
        jurisdiction: Jurisdiction::Us,
        model: "llama",
        priced: false,
    },
];

fn usd(x: i64) -> PricePerMillion {
    PricePerMillion(Money(x))
}

/// `n` varied records starting at `start_ms`, one every ~1.5 s, reproducible from `seed`.
pub fn traffic(seed: u64, start_ms: i64, n: usize) -> Vec<LedgerRecord> {
    let mut rng = Lcg(seed);
    let teams = ["search", "support", "ads", "research"];
    let prices = Prices {
        input: usd(2_500_000_000),
        output: usd(10_000_000_000),
        cached_input: Some(usd(1_250_000_000)),
        cache_write: None,
    };
    let mut t = start_ms;
    (0..n)
        .map(|i| {
            t += 1_000 + (rng.next() % 1_000) as i64;
            let place = rng.pick(&PLACES);
            let team = *rng.pick(&teams);
            let input = 10 + rng.next() % 5_000;
            let output = rng.next() % 2_000;
            let usage = TokenUsage {
                input,
                output,
                cached_input: if rng.below(3) == 0 { input / 2 } else { 0 },
                cache_write: if rng.below(7) == 0 { input / 4 } else { 0 },
                reasoning: output / 3,
            };
            let failed_first = rng.below(5) == 0;
            let mut attempts = Vec::new();
            if failed_first {
                attempts.push(AttemptRecord {
                    deployment: "gpt-4o@azure-east".into(),
                    provider: "azure-east".into(),
                    status: Some(429),
                    error_kind: Some(ErrorKind::RateLimited),
                    latency_ms: rng.next() % 50,
                    ..Default::default()
                });
            }
            attempts.push(AttemptRecord {
                deployment: place.deployment.into(),
                provider: place.provider.into(),
                status: Some(200),
                error_kind: None,
                latency_ms: 100 + rng.next() % 900,
                ..Default::default()
            });
            let mut r = LedgerRecord::new(format!("req-{seed}-{i}"), t, place.model);
            r.key_id = Some(format!("key-{}", rng.next() % 6).into());
            r.team = Some(team.into());
            r.deployment = Some(place.deployment.into());
            r.provider = Some(place.provider.into());
            r.cloud = Some(place.cloud);
            r.region = Some(place.region.into());
            r.jurisdiction = Some(place.jurisdiction);
            r.data_class = (rng.below(4) == 0).then(|| "confidential".into());
            r.attempts = attempts;
            r.usage = usage;
            r.price_known = place.priced;
            r.cost = if place.priced {
                cost(&prices, &usage)
            } else {
                Money::ZERO
            };
            r.latency_ms = 120 + rng.next() % 2_000;
            r.stream = rng.below(2) == 0;
            r.ttft_ms = r.stream.then(|| 50 + rng.next() % 400);
            r.outcome = match rng.next() % 10 {
                0 => Outcome::Error(ErrorKind::UpstreamTimeout),
                1 => Outcome::ClientDisconnected,
                _ => Outcome::Ok,
            };
            if rng.below(8) == 0 {
                r.prompt_body = Some(format!("{{\"prompt\":\"hello \\\"{i}\\\" ünïcode\"}}"));
                r.response_body = Some("{\"answer\":\"hi\"}".into());
            }
            r
        })
        .collect()
}
