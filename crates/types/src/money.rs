//! Money as integers: floating-point sums drift, and ledgers must add up exactly.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::{Add, AddAssign};

const NANOS_PER_USD: i64 = 1_000_000_000;

/// An amount of US dollars, in nano-dollars (1e-9 USD).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(pub i64);

impl Money {
    /// Zero dollars.
    pub const ZERO: Money = Money(0);

    /// From a dollar amount, rounded to the nearest nano-dollar; `None` if not finite or too big.
    pub fn from_usd(usd: f64) -> Option<Money> {
        let nanos = (usd * NANOS_PER_USD as f64).round();
        (nanos.is_finite() && nanos.abs() < i64::MAX as f64).then_some(Money(nanos as i64))
    }

    /// The amount in dollars, for display and JSON.
    pub fn as_usd(self) -> f64 {
        self.0 as f64 / NANOS_PER_USD as f64
    }

    /// Nano-dollars.
    pub fn nanos(self) -> i64 {
        self.0
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        *self = *self + rhs;
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let nanos_per_usd = NANOS_PER_USD as u64;
        write!(
            f,
            "{sign}{}.{:09}",
            abs / nanos_per_usd,
            abs % nanos_per_usd
        )
    }
}

/// A price in US dollars per million tokens, stored exactly as nano-dollars per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PricePerMillion(pub Money);

impl PricePerMillion {
    /// The cost of `tokens` tokens at this price, rounded half up to the nano-dollar.
    pub fn cost(self, tokens: u64) -> Money {
        let per_million = i128::from(self.0 .0);
        let total = per_million * i128::from(tokens);
        let rounded = (total + 500_000).div_euclid(1_000_000);
        Money(i64::try_from(rounded).unwrap_or(i64::MAX))
    }
}

impl Serialize for PricePerMillion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0.as_usd())
    }
}

impl<'de> Deserialize<'de> for PricePerMillion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let usd = f64::deserialize(d)?;
        if usd < 0.0 {
            return Err(serde::de::Error::custom("a price cannot be negative"));
        }
        Money::from_usd(usd)
            .map(PricePerMillion)
            .ok_or_else(|| serde::de::Error::custom("price is not a finite number"))
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_usd())
    }
}

/// What a deployment charges, in USD per million tokens. The one pricing rule of the gateway:
/// response headers, budgets, routing and the ledger all price with [`Prices::cost`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prices {
    /// Uncached input tokens.
    pub input: PricePerMillion,
    /// Output tokens (reasoning included).
    pub output: PricePerMillion,
    /// Input tokens read from the prompt cache; `None` means no discount (the input price).
    pub cached_input: Option<PricePerMillion>,
    /// Input tokens written to the prompt cache; `None` means input price × 1.25, Anthropic's
    /// and Bedrock's 5-minute cache-write premium (OpenAI and Gemini do not charge writes, so
    /// their entries set it to the input price).
    pub cache_write: Option<PricePerMillion>,
}

impl Prices {
    /// The rate for cache reads after defaults.
    pub fn cached_input_rate(&self) -> PricePerMillion {
        self.cached_input.unwrap_or(self.input)
    }

    /// The rate for cache writes after defaults (input × 1.25, rounded half up to the nano-USD).
    pub fn cache_write_rate(&self) -> PricePerMillion {
        self.cache_write.unwrap_or_else(|| {
            let base = i128::from(self.input.0.nanos());
            let premium = (base * 5 + 2).div_euclid(4);
            PricePerMillion(Money(i64::try_from(premium).unwrap_or(i64::MAX)))
        })
    }

    /// The cost of `usage`: cache reads and writes at their own rates, taken out of the input
    /// count; reasoning tokens are part of `output` and not added again. Each of the four parts
    /// rounds half up to the nano-USD, so a cost is within 2 nano-USD of exact.
    pub fn cost(&self, usage: &crate::TokenUsage) -> Money {
        let cached = usage.cached_input.min(usage.input);
        let written = usage.cache_write.min(usage.input - cached);
        let uncached = usage.input - cached - written;
        self.input.cost(uncached)
            + self.cached_input_rate().cost(cached)
            + self.cache_write_rate().cost(written)
            + self.output.cost(usage.output)
    }

    /// The list cost of an estimate (all input uncached, every allowed output token used): an
    /// upper bound, for ranking, price ceilings and budget reservations.
    pub fn estimate(&self, input_tokens: u64, max_output_tokens: u64) -> Money {
        self.input.cost(input_tokens) + self.output.cost(max_output_tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_per_million_is_exact_for_common_prices() {
        // $2.50 per million input tokens, 1,234 tokens: $0.003085.
        let price: PricePerMillion = serde_json::from_str("2.5").unwrap();
        assert_eq!(price.cost(1_234), Money(3_085_000));
        assert_eq!(price.cost(0), Money::ZERO);
        // $0.15 / M and one token: 150 nano-dollars.
        let cheap: PricePerMillion = serde_json::from_str("0.15").unwrap();
        assert_eq!(cheap.cost(1), Money(150));
    }

    #[test]
    fn negative_prices_are_rejected() {
        assert!(serde_json::from_str::<PricePerMillion>("-1").is_err());
    }

    #[test]
    fn display_has_nine_decimals() {
        assert_eq!(Money(3_085_000).to_string(), "0.003085000");
        assert_eq!(Money(-1_500_000_000).to_string(), "-1.500000000");
    }
}
