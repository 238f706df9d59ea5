//! Prices and cost: from normalised token usage to integer nano-USD, plus the shipped default
//! price table.
//!
//! # Usage normalisation (done by the server before it calls [`cost`])
//!
//! [`TokenUsage`] means: `input` is *all* input tokens (cache reads and cache writes included),
//! `output` is *all* output tokens (reasoning included); `cached_input`, `cache_write` and
//! `reasoning` are subsets. Upstreams report differently; the helpers in [`normalize`] map each
//! shape so that streamed and non-streamed answers of each protocol price identically:
//!
//! | protocol | input | output |
//! |---|---|---|
//! | OpenAI / Azure (`prompt_tokens`, `completion_tokens`) | includes `cached_tokens` | includes `reasoning_tokens` |
//! | Anthropic (`input_tokens`) | excludes `cache_read_input_tokens` and `cache_creation_input_tokens` | includes thinking |
//! | Bedrock Converse (`inputTokens`) | excludes `cacheReadInputTokens` and `cacheWriteInputTokens` | includes reasoning |
//! | Gemini / Vertex (`promptTokenCount`) | includes `cachedContentTokenCount` | `candidatesTokenCount` excludes `thoughtsTokenCount` |
//!
//! # Rounding
//!
//! Each of the four parts (uncached input, cache reads, cache writes, output) is priced with
//! [`PricePerMillion::cost`], which rounds half up to the nano-dollar, and the parts are added.
//! A request's cost is therefore within 2 nano-USD of the exact value.

use crate::LedgerError;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::OnceLock;
use switchyard_types::{Money, PricePerMillion, ProviderKind, TokenUsage};

pub use switchyard_types::Prices;

/// The cost of `usage` at `prices` ([`Prices::cost`], the gateway's one pricing rule).
pub fn cost(prices: &Prices, usage: &TokenUsage) -> Money {
    prices.cost(usage)
}

/// The cost and the `price_known` flag for a record: an unknown price gives zero *and* false,
/// so reports can show the request as unpriced rather than free.
pub fn price(prices: Option<&Prices>, usage: &TokenUsage) -> (Money, bool) {
    match prices {
        Some(p) => (cost(p, usage), true),
        None => (Money::ZERO, false),
    }
}

/// Maps each protocol's usage report onto [`TokenUsage`] (see the module docs).
pub mod normalize {
    use switchyard_types::TokenUsage;

    /// OpenAI and Azure OpenAI chat completions (`prompt_tokens` includes `cached_tokens`,
    /// `completion_tokens` includes `reasoning_tokens`).
    pub fn openai(prompt: u64, completion: u64, cached: u64, reasoning: u64) -> TokenUsage {
        TokenUsage {
            input: prompt,
            output: completion,
            cached_input: cached,
            cache_write: 0,
            reasoning,
        }
    }

    /// Anthropic Messages (`input_tokens` counts only tokens after the last cache breakpoint).
    pub fn anthropic(input: u64, output: u64, cache_read: u64, cache_creation: u64) -> TokenUsage {
        TokenUsage {
            input: input + cache_read + cache_creation,
            output,
            cached_input: cache_read,
            cache_write: cache_creation,
            reasoning: 0,
        }
    }

    /// Bedrock Converse (`inputTokens` excludes cache reads and writes, like Anthropic).
    pub fn bedrock(input: u64, output: u64, cache_read: u64, cache_write: u64) -> TokenUsage {
        anthropic(input, output, cache_read, cache_write)
    }

    /// Gemini and Vertex (`promptTokenCount` includes cached tokens; thoughts are reported
    /// apart from `candidatesTokenCount` but billed as output).
    pub fn gemini(prompt: u64, candidates: u64, cached: u64, thoughts: u64) -> TokenUsage {
        TokenUsage {
            input: prompt,
            output: candidates + thoughts,
            cached_input: cached,
            cache_write: 0,
            reasoning: thoughts,
        }
    }
}

/// The shipped price table, parsed.
const SHIPPED: &str = include_str!("../prices/default.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    version: String,
    source: Option<String>,
    #[serde(rename = "price")]
    prices: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    kinds: Vec<ProviderKind>,
    models: Vec<String>,
    input: PricePerMillion,
    output: PricePerMillion,
    cached_input: Option<PricePerMillion>,
    cache_write: Option<PricePerMillion>,
    max_output: Option<u64>,
}

/// A versioned table of list prices by (provider kind, upstream model id), for deployments
/// configured with `price = "default"`.
#[derive(Debug, Clone)]
pub struct DefaultPrices {
    version: String,
    source: Option<String>,
    by_model: HashMap<(ProviderKind, String), Prices>,
    max_output: HashMap<(ProviderKind, String), u64>,
}

impl DefaultPrices {
    /// The table shipped in this build (`crates/ledger/prices/default.toml`), parsed once.
    pub fn shipped() -> Result<&'static DefaultPrices, LedgerError> {
        static TABLE: OnceLock<Result<DefaultPrices, String>> = OnceLock::new();
        TABLE
            .get_or_init(|| Self::parse(SHIPPED).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| LedgerError::Prices(e.clone()))
    }

    /// Parses a table in the shipped format.
    pub fn parse(text: &str) -> Result<DefaultPrices, LedgerError> {
        let raw: RawTable = toml::from_str(text).map_err(|e| LedgerError::Prices(e.to_string()))?;
        let mut by_model = HashMap::new();
        let mut max_output = HashMap::new();
        for e in raw.prices {
            let prices = Prices {
                input: e.input,
                output: e.output,
                cached_input: e.cached_input,
                cache_write: e.cache_write,
            };
            for kind in &e.kinds {
                for model in &e.models {
                    if let Some(max) = e.max_output {
                        max_output.insert((*kind, model.clone()), max);
                    }
                    if by_model.insert((*kind, model.clone()), prices).is_some() {
                        return Err(LedgerError::Prices(format!(
                            "{kind} {model} is priced twice"
                        )));
                    }
                }
            }
        }
        Ok(DefaultPrices {
            version: raw.version,
            source: raw.source,
            by_model,
            max_output,
        })
    }

    /// The table's version (a date, e.g. `2026-11-01`), to record next to costs.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Where the numbers come from (`scripts/update-prices` records the pinned price list).
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// The list price of `model` on `kind`. Bedrock cross-region inference profiles
    /// (`us.`, `eu.`, `apac.`, `global.` prefixes) are priced as the base model.
    pub fn lookup(&self, kind: ProviderKind, model: &str) -> Option<Prices> {
        find(&self.by_model, kind, model)
    }

    /// The most output tokens one answer of `model` on `kind` can have, when the table says.
    pub fn max_output(&self, kind: ProviderKind, model: &str) -> Option<u64> {
        find(&self.max_output, kind, model)
    }
}

/// `model`'s entry on `kind`; Bedrock cross-region inference profiles as their base model.
fn find<T: Copy>(
    map: &HashMap<(ProviderKind, String), T>,
    kind: ProviderKind,
    model: &str,
) -> Option<T> {
    if let Some(v) = map.get(&(kind, model.to_owned())) {
        return Some(*v);
    }
    if kind == ProviderKind::Bedrock {
        let (prefix, rest) = model.split_once('.')?;
        if matches!(prefix, "us" | "eu" | "apac" | "global" | "us-gov") {
            return map.get(&(kind, rest.to_owned())).copied();
        }
    }
    None
}

#[cfg(test)]
#[path = "pricing_tests.rs"]
mod tests;
