//! Constraints remove deployments before ranking: where a request may run (jurisdictions,
//! regions, clouds) and what a deployment must promise (tags). They come from the global
//! policy, the model, the request's data class and the caller's own preferences; every
//! removal names the constraint and where it came from.

use crate::Deployment;
use std::fmt;
use std::sync::Arc;
use switchyard_types::{Cloud, Jurisdiction, Money};
use tokio::time::Instant;

/// A data class name (such as `confidential`), defined in config; policy turns it into
/// constraints. Validated: 1-64 characters of lowercase ASCII letters, digits, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataClass(Arc<str>);

/// A data class name that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a valid data class name (use 1-64 lowercase letters, digits, '-' or '_')")]
pub struct DataClassError(pub String);

impl DataClass {
    /// Validates a data class name.
    pub fn new(name: &str) -> Result<DataClass, DataClassError> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(DataClass(name.into()))
        } else {
            Err(DataClassError(name.to_string()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DataClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An allow list (empty = everything) and a deny list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter<T> {
    /// When not empty, only these.
    pub allow: Vec<T>,
    /// Never these.
    pub deny: Vec<T>,
}

impl<T> Default for Filter<T> {
    fn default() -> Self {
        Filter {
            allow: Vec::new(),
            deny: Vec::new(),
        }
    }
}

impl<T: PartialEq + ?Sized> Filter<Box<T>> {
    fn admits_ref(&self, value: &T) -> Verdict {
        if self.deny.iter().any(|d| **d == *value) {
            Verdict::Denied
        } else if !self.allow.is_empty() && !self.allow.iter().any(|a| **a == *value) {
            Verdict::NotAllowed
        } else {
            Verdict::Ok
        }
    }
}

impl<T: PartialEq + Copy> Filter<T> {
    fn admits(&self, value: T) -> Verdict {
        if self.deny.contains(&value) {
            Verdict::Denied
        } else if !self.allow.is_empty() && !self.allow.contains(&value) {
            Verdict::NotAllowed
        } else {
            Verdict::Ok
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    Denied,
    NotAllowed,
}

/// Where a deployment may run and what it must promise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Constraints {
    /// Allowed and denied jurisdictions.
    pub jurisdictions: Filter<Jurisdiction>,
    /// Allowed and denied regions (the provider's region names).
    pub regions: Filter<Box<str>>,
    /// Allowed and denied clouds.
    pub clouds: Filter<Cloud>,
    /// Tags every deployment must carry.
    pub require_tags: Vec<String>,
}

impl Constraints {
    /// Whether nothing is constrained.
    pub fn is_empty(&self) -> bool {
        *self == Constraints::default()
    }

    /// Pushes every reason this set of constraints excludes `d` (stops after the first when
    /// `first_only`, which is what planning needs).
    pub(crate) fn check(
        &self,
        d: &Deployment,
        source: &ConstraintSource,
        first_only: bool,
        out: &mut Vec<Exclusion>,
    ) {
        let p = &d.provider;
        let before = out.len();
        let done = |out: &Vec<Exclusion>| first_only && out.len() > before;
        match self.jurisdictions.admits(p.jurisdiction) {
            Verdict::Ok => {}
            v => out.push(Exclusion::Jurisdiction {
                source: source.clone(),
                jurisdiction: p.jurisdiction,
                denied: v == Verdict::Denied,
            }),
        }
        if done(out) {
            return;
        }
        match self.regions.admits_ref(&p.region) {
            Verdict::Ok => {}
            v => out.push(Exclusion::Region {
                source: source.clone(),
                region: p.region.clone(),
                denied: v == Verdict::Denied,
            }),
        }
        if done(out) {
            return;
        }
        match self.clouds.admits(p.cloud) {
            Verdict::Ok => {}
            v => out.push(Exclusion::Cloud {
                source: source.clone(),
                cloud: p.cloud,
                denied: v == Verdict::Denied,
            }),
        }
        for tag in &self.require_tags {
            if done(out) {
                return;
            }
            if !d.has_tag(tag) {
                out.push(Exclusion::MissingTag {
                    source: source.clone(),
                    tag: tag.clone(),
                });
            }
        }
    }
}

/// A data-handling promise the caller asks for; each maps to deployment tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataPolicy {
    /// The provider must not train on the data: tag `no-training` or `zdr`.
    DenyTraining,
    /// Zero data retention: tag `zdr`.
    Zdr,
}

impl DataPolicy {
    /// The name used in headers and bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            DataPolicy::DenyTraining => "deny-training",
            DataPolicy::Zdr => "zdr",
        }
    }

    /// Whether `d` keeps this promise.
    pub fn kept_by(self, d: &Deployment) -> bool {
        match self {
            // Zero retention implies the data cannot be trained on.
            DataPolicy::DenyTraining => d.has_tag("no-training") || d.has_tag("zdr"),
            DataPolicy::Zdr => d.has_tag("zdr"),
        }
    }
}

/// Where a constraint came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstraintSource {
    /// The config's global `[constraints]`.
    Global,
    /// The model's own constraints.
    Model(Arc<str>),
    /// The request's data class.
    DataClass(DataClass),
    /// The caller's preferences (header or body extension).
    Request,
}

impl fmt::Display for ConstraintSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConstraintSource::Global => f.write_str("global constraints"),
            ConstraintSource::Model(m) => write!(f, "model '{m}' constraints"),
            ConstraintSource::DataClass(c) => write!(f, "data class '{c}'"),
            ConstraintSource::Request => f.write_str("request preferences"),
        }
    }
}

/// Why a deployment is not a candidate for a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Exclusion {
    /// Its jurisdiction is denied or not in the allow list.
    Jurisdiction {
        /// Who said so.
        source: ConstraintSource,
        /// The deployment's jurisdiction.
        jurisdiction: Jurisdiction,
        /// Denied explicitly (else: not in the allow list).
        denied: bool,
    },
    /// Its region is denied or not in the allow list.
    Region {
        /// Who said so.
        source: ConstraintSource,
        /// The deployment's region.
        region: Arc<str>,
        /// Denied explicitly (else: not in the allow list).
        denied: bool,
    },
    /// Its cloud is denied or not in the allow list.
    Cloud {
        /// Who said so.
        source: ConstraintSource,
        /// The deployment's cloud.
        cloud: Cloud,
        /// Denied explicitly (else: not in the allow list).
        denied: bool,
    },
    /// It lacks a required tag.
    MissingTag {
        /// Who said so.
        source: ConstraintSource,
        /// The missing tag.
        tag: String,
    },
    /// It does not keep the requested data policy.
    DataPolicy(DataPolicy),
    /// The caller's `only` list does not name it.
    NotInOnly,
    /// The caller's `ignore` list names it.
    Ignored,
    /// Its estimated marginal cost is over the caller's `max_price`.
    OverMaxPrice {
        /// Estimated marginal cost of this request there.
        cost: Money,
        /// The caller's ceiling.
        max: Money,
    },
    /// It belongs to a fallback model and the caller disallowed fallbacks.
    FallbacksDisabled,
    /// Already listed under an earlier model of the chain.
    Duplicate,
    /// Its circuit breaker is open (or half-open with its one probe in flight).
    BreakerOpen(crate::TripReason),
    /// It asked us to wait (Retry-After) or was rate limited.
    CoolingDown {
        /// When traffic may return.
        until: Instant,
    },
    /// One of its limits has no headroom for this request.
    AtCapacity(crate::LimitKind),
}

impl Exclusion {
    /// Whether the exclusion is about health or capacity (may clear by itself) rather than
    /// a constraint.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Exclusion::BreakerOpen(_) | Exclusion::CoolingDown { .. } | Exclusion::AtCapacity(_)
        )
    }
}

impl fmt::Display for Exclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = |denied: bool| if denied { "denied" } else { "not allowed" };
        match self {
            Exclusion::Jurisdiction {
                source,
                jurisdiction,
                denied,
            } => write!(
                f,
                "jurisdiction '{jurisdiction}' {} by {source}",
                how(*denied)
            ),
            Exclusion::Region {
                source,
                region,
                denied,
            } => write!(f, "region '{region}' {} by {source}", how(*denied)),
            Exclusion::Cloud {
                source,
                cloud,
                denied,
            } => write!(f, "cloud '{cloud}' {} by {source}", how(*denied)),
            Exclusion::MissingTag { source, tag } => {
                write!(f, "tag '{tag}' required by {source}")
            }
            Exclusion::DataPolicy(p) => write!(f, "does not keep data_policy={}", p.as_str()),
            Exclusion::NotInOnly => f.write_str("not in the request's 'only' list"),
            Exclusion::Ignored => f.write_str("in the request's 'ignore' list"),
            Exclusion::OverMaxPrice { cost, max } => write!(
                f,
                "estimated cost ${} over the request's max_price ${}",
                cost, max
            ),
            Exclusion::FallbacksDisabled => f.write_str("fallback model and allow_fallbacks=false"),
            Exclusion::Duplicate => f.write_str("already listed for an earlier model"),
            Exclusion::BreakerOpen(reason) => write!(f, "circuit breaker open ({reason})"),
            Exclusion::CoolingDown { until } => write!(
                f,
                "cooling down for {} ms more",
                until.saturating_duration_since(Instant::now()).as_millis()
            ),
            Exclusion::AtCapacity(limit) => write!(f, "at its {} limit", limit.as_str()),
        }
    }
}
