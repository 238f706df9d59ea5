//! Per-request routing preferences from the caller, in a header or a body extension.
//!
//! Header: `x-switchyard-route: order=a,b; only=x,y; ignore=z; sort=price|latency|throughput;
//! max_price=0.05; allow_fallbacks=false; data_policy=deny-training|zdr`.
//!
//! Body extension (the top-level `"switchyard"` member of a chat request):
//! `{"order": ["a", "b"], "only": [..], "ignore": [..], "sort": "price", "max_price": 0.05,
//! "allow_fallbacks": false, "data_policy": "zdr"}`.
//!
//! Names in `order`, `only` and `ignore` are deployment or provider names. `max_price` is a
//! ceiling in USD on the request's estimated marginal cost (the same estimate `cheapest`
//! ranks by; zero under an unused commitment). `allow_fallbacks=false` keeps the request on
//! the model's own deployments. Unknown keys or values are a [`PreferenceError`] (a 400).

use crate::constraints::DataPolicy;
use serde::Deserialize;
use std::sync::Arc;
use switchyard_types::Money;

/// How the caller wants candidates sorted, overriding the model's strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Lowest effective marginal price first.
    Price,
    /// Lowest latency estimate first.
    Latency,
    /// Most free capacity first (fewest requests in flight).
    Throughput,
}

impl Sort {
    /// The name used in headers and bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Price => "price",
            Sort::Latency => "latency",
            Sort::Throughput => "throughput",
        }
    }
}

/// The caller's routing preferences; empty by default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Preferences {
    /// Try these first, in this order.
    pub order: Vec<Arc<str>>,
    /// Only these (empty = no restriction).
    pub only: Vec<Arc<str>>,
    /// Never these.
    pub ignore: Vec<Arc<str>>,
    /// Overrides the strategy.
    pub sort: Option<Sort>,
    /// Ceiling on the estimated marginal cost of the request.
    pub max_price: Option<Money>,
    /// `Some(false)` forbids fallback models.
    pub allow_fallbacks: Option<bool>,
    /// A data-handling promise every deployment must keep.
    pub data_policy: Option<DataPolicy>,
}

/// Preferences the gateway cannot accept (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreferenceError {
    /// A key that is not one of the documented ones.
    #[error("unknown routing preference '{0}'; known: order, only, ignore, sort, max_price, allow_fallbacks, data_policy")]
    UnknownKey(String),
    /// A key given twice.
    #[error("routing preference '{0}' is given twice")]
    Duplicate(String),
    /// A value of the wrong shape.
    #[error("routing preference {key}='{value}' is invalid: expected {expected}")]
    BadValue {
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// A part without `=`.
    #[error("routing preference '{0}' is not key=value")]
    Syntax(String),
    /// A name that is neither a deployment nor a provider of the catalog.
    #[error(
        "routing preference {key} names '{name}', which is neither a deployment nor a provider"
    )]
    UnknownName {
        /// The key.
        key: &'static str,
        /// The unknown name.
        name: String,
    },
    /// The body extension is not a valid object.
    #[error("the \"switchyard\" routing object is invalid: {0}")]
    Body(String),
}

const SORT_VALUES: &str = "price, latency or throughput";
const POLICY_VALUES: &str = "deny-training or zdr";

impl Preferences {
    /// Whether no preference is set.
    pub fn is_empty(&self) -> bool {
        *self == Preferences::default()
    }

    /// Parses the `x-switchyard-route` header value.
    pub fn parse_header(value: &str) -> Result<Preferences, PreferenceError> {
        let mut p = Preferences::default();
        let mut seen: Vec<&str> = Vec::new();
        for part in value.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, val) = part
                .split_once('=')
                .ok_or_else(|| PreferenceError::Syntax(part.to_string()))?;
            let (key, val) = (key.trim(), val.trim());
            if seen.contains(&key) {
                return Err(PreferenceError::Duplicate(key.to_string()));
            }
            seen.push(key);
            match key {
                "order" => p.order = names("order", val)?,
                "only" => p.only = names("only", val)?,
                "ignore" => p.ignore = names("ignore", val)?,
                "sort" => p.sort = Some(parse_sort(val)?),
                "max_price" => p.max_price = Some(parse_price(val)?),
                "allow_fallbacks" => {
                    p.allow_fallbacks = Some(match val {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad("allow_fallbacks", val, "true or false")),
                    })
                }
                "data_policy" => p.data_policy = Some(parse_policy(val)?),
                other => return Err(PreferenceError::UnknownKey(other.to_string())),
            }
        }
        Ok(p)
    }

    /// Parses the body extension (the value of the request's `"switchyard"` member).
    pub fn from_json(value: &serde_json::Value) -> Result<Preferences, PreferenceError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            #[serde(default)]
            order: Vec<String>,
            #[serde(default)]
            only: Vec<String>,
            #[serde(default)]
            ignore: Vec<String>,
            sort: Option<String>,
            max_price: Option<f64>,
            allow_fallbacks: Option<bool>,
            data_policy: Option<String>,
        }
        let body = Body::deserialize(value).map_err(|e| PreferenceError::Body(e.to_string()))?;
        let list = |key: &'static str, v: Vec<String>| -> Result<Vec<Arc<str>>, PreferenceError> {
            v.into_iter()
                .map(|n| {
                    let n = n.trim().to_string();
                    if n.is_empty() {
                        Err(bad(key, "", "a deployment or provider name"))
                    } else {
                        Ok(Arc::from(n))
                    }
                })
                .collect()
        };
        Ok(Preferences {
            order: list("order", body.order)?,
            only: list("only", body.only)?,
            ignore: list("ignore", body.ignore)?,
            sort: body.sort.as_deref().map(parse_sort).transpose()?,
            max_price: body
                .max_price
                .map(|usd| price_from_usd(usd, &usd.to_string()))
                .transpose()?,
            allow_fallbacks: body.allow_fallbacks,
            data_policy: body.data_policy.as_deref().map(parse_policy).transpose()?,
        })
    }

    /// Field by field, `over`'s settings win (the header overrides the body extension).
    pub fn overridden_by(self, over: Preferences) -> Preferences {
        let pick = |a: Vec<Arc<str>>, b: Vec<Arc<str>>| if b.is_empty() { a } else { b };
        Preferences {
            order: pick(self.order, over.order),
            only: pick(self.only, over.only),
            ignore: pick(self.ignore, over.ignore),
            sort: over.sort.or(self.sort),
            max_price: over.max_price.or(self.max_price),
            allow_fallbacks: over.allow_fallbacks.or(self.allow_fallbacks),
            data_policy: over.data_policy.or(self.data_policy),
        }
    }

    /// Whether `name` (a deployment or provider name) matches `list`.
    pub(crate) fn names_match(list: &[Arc<str>], deployment: &str, provider: &str) -> bool {
        list.iter().any(|n| &**n == deployment || &**n == provider)
    }
}

fn bad(key: &'static str, value: &str, expected: &'static str) -> PreferenceError {
    PreferenceError::BadValue {
        key,
        value: value.to_string(),
        expected,
    }
}

fn names(key: &'static str, val: &str) -> Result<Vec<Arc<str>>, PreferenceError> {
    val.split(',')
        .map(str::trim)
        .map(|n| {
            let valid = !n.is_empty()
                && n.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b':')
                });
            if valid {
                Ok(Arc::from(n))
            } else {
                Err(bad(
                    key,
                    val,
                    "a comma-separated list of deployment or provider names",
                ))
            }
        })
        .collect()
}

fn parse_sort(val: &str) -> Result<Sort, PreferenceError> {
    match val {
        "price" => Ok(Sort::Price),
        "latency" => Ok(Sort::Latency),
        "throughput" => Ok(Sort::Throughput),
        _ => Err(bad("sort", val, SORT_VALUES)),
    }
}

fn parse_policy(val: &str) -> Result<DataPolicy, PreferenceError> {
    match val {
        "deny-training" => Ok(DataPolicy::DenyTraining),
        "zdr" => Ok(DataPolicy::Zdr),
        _ => Err(bad("data_policy", val, POLICY_VALUES)),
    }
}

fn parse_price(val: &str) -> Result<Money, PreferenceError> {
    let usd: f64 = val
        .parse()
        .map_err(|_| bad("max_price", val, "a non-negative amount in USD"))?;
    price_from_usd(usd, val)
}

fn price_from_usd(usd: f64, raw: &str) -> Result<Money, PreferenceError> {
    if usd < 0.0 {
        return Err(bad("max_price", raw, "a non-negative amount in USD"));
    }
    Money::from_usd(usd).ok_or_else(|| bad("max_price", raw, "a non-negative amount in USD"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parses_every_key() {
        let p = Preferences::parse_header(
            "order=a,b; only=a,b,c; ignore=d; sort=price; max_price=0.05; allow_fallbacks=false; data_policy=zdr",
        )
        .unwrap();
        assert_eq!(p.order, vec![Arc::from("a"), Arc::from("b")]);
        assert_eq!(p.only.len(), 3);
        assert_eq!(p.ignore, vec![Arc::from("d")]);
        assert_eq!(p.sort, Some(Sort::Price));
        assert_eq!(p.max_price, Some(Money(50_000_000)));
        assert_eq!(p.allow_fallbacks, Some(false));
        assert_eq!(p.data_policy, Some(DataPolicy::Zdr));
        assert!(Preferences::parse_header("").unwrap().is_empty());
    }

    #[test]
    fn header_rejects_unknown_keys_and_values() {
        use PreferenceError::*;
        assert_eq!(
            Preferences::parse_header("colour=red"),
            Err(UnknownKey("colour".into()))
        );
        assert!(matches!(
            Preferences::parse_header("sort=cheap"),
            Err(BadValue { key: "sort", .. })
        ));
        assert!(matches!(
            Preferences::parse_header("max_price=-1"),
            Err(BadValue {
                key: "max_price",
                ..
            })
        ));
        assert!(matches!(
            Preferences::parse_header("data_policy=maybe"),
            Err(BadValue {
                key: "data_policy",
                ..
            })
        ));
        assert!(matches!(
            Preferences::parse_header("allow_fallbacks=no"),
            Err(BadValue { .. })
        ));
        assert!(matches!(
            Preferences::parse_header("order=a,,b"),
            Err(BadValue { key: "order", .. })
        ));
        assert_eq!(
            Preferences::parse_header("sort=price;sort=latency"),
            Err(Duplicate("sort".into()))
        );
        assert_eq!(
            Preferences::parse_header("sort"),
            Err(Syntax("sort".into()))
        );
    }

    #[test]
    fn body_extension_parses_and_rejects_unknown_fields() {
        let v = serde_json::json!({"order": ["x"], "sort": "latency", "max_price": 0.5, "data_policy": "deny-training"});
        let p = Preferences::from_json(&v).unwrap();
        assert_eq!(p.order, vec![Arc::from("x")]);
        assert_eq!(p.sort, Some(Sort::Latency));
        assert_eq!(p.data_policy, Some(DataPolicy::DenyTraining));
        let err = Preferences::from_json(&serde_json::json!({"speed": "max"})).unwrap_err();
        assert!(
            matches!(err, PreferenceError::Body(ref m) if m.contains("speed")),
            "{err}"
        );
        assert!(Preferences::from_json(&serde_json::json!({"sort": "fast"})).is_err());
    }

    #[test]
    fn header_overrides_body_field_by_field() {
        let body = Preferences::parse_header("sort=price; only=a").unwrap();
        let header = Preferences::parse_header("sort=latency").unwrap();
        let p = body.overridden_by(header);
        assert_eq!(p.sort, Some(Sort::Latency));
        assert_eq!(p.only, vec![Arc::from("a")]);
    }
}
