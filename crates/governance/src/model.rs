//! The governance vocabulary: keys, teams, limits, budgets, and the authenticated `Principal`.

use crate::error::GovernanceError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use switchyard_types::Money;

/// Requests and tokens per minute; `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Tokens (input + output) per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
}

/// The calendar period a budget covers; periods are UTC and start at midnight (weeks on Monday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// One UTC day.
    Day,
    /// One ISO week (Monday 00:00 UTC to the next Monday).
    Week,
    /// One calendar month in UTC.
    Month,
}

impl Period {
    /// Every period, shortest first.
    pub const ALL: [Period; 3] = [Period::Day, Period::Week, Period::Month];

    /// The name used in config, CLI, keys and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// `daily`, `weekly` or `monthly`, for messages.
    pub fn adjective(self) -> &'static str {
        match self {
            Period::Day => "daily",
            Period::Week => "weekly",
            Period::Month => "monthly",
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Period {
    type Err = GovernanceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "day" | "daily" => Ok(Period::Day),
            "week" | "weekly" => Ok(Period::Week),
            "month" | "monthly" => Ok(Period::Month),
            other => Err(GovernanceError::Invalid(format!(
                "unknown budget period `{other}` (day, week or month)"
            ))),
        }
    }
}

/// What happens when a budget is used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetMode {
    /// Deny requests that do not fit in what is left.
    Hard,
    /// Never deny; emit an alert event when the budget is crossed.
    Alert,
}

impl BudgetMode {
    /// The name used in config, CLI and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetMode::Hard => "hard",
            BudgetMode::Alert => "alert",
        }
    }
}

impl FromStr for BudgetMode {
    type Err = GovernanceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "hard" => Ok(BudgetMode::Hard),
            "alert" => Ok(BudgetMode::Alert),
            other => Err(GovernanceError::Invalid(format!(
                "unknown budget mode `{other}` (hard or alert)"
            ))),
        }
    }
}

/// A spending cap in USD over one period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// The period the amount covers.
    pub period: Period,
    /// The cap; serialized as a USD number (`12.5`), stored exactly as nano-dollars.
    #[serde(rename = "amount_usd", with = "usd")]
    pub amount: Money,
    /// Deny (`hard`) or only alert (`alert`) once used up.
    #[serde(default = "hard")]
    pub mode: BudgetMode,
}

fn hard() -> BudgetMode {
    BudgetMode::Hard
}

impl FromStr for Budget {
    type Err = GovernanceError;
    /// Parses the CLI form `PERIOD:USD[:MODE]`, e.g. `day:10`, `month:500:alert`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split(':');
        let period = parts.next().unwrap_or_default().parse()?;
        let usd: f64 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(|| {
            GovernanceError::Invalid(format!("budget `{s}`: expected PERIOD:USD[:MODE]"))
        })?;
        let amount = Money::from_usd(usd)
            .filter(|m| m.0 >= 0)
            .ok_or_else(|| GovernanceError::Invalid(format!("budget `{s}`: bad amount")))?;
        let mode = match parts.next() {
            Some(m) => m.parse()?,
            None => BudgetMode::Hard,
        };
        if parts.next().is_some() {
            return Err(GovernanceError::Invalid(format!(
                "budget `{s}`: expected PERIOD:USD[:MODE]"
            )));
        }
        Ok(Budget {
            period,
            amount,
            mode,
        })
    }
}

/// Serde for `Money` as a USD number, since `Money` itself only serializes.
pub(crate) mod usd {
    use super::*;

    /// Writes nano-dollars as a USD float.
    pub fn serialize<S: Serializer>(m: &Money, s: S) -> Result<S::Ok, S::Error> {
        m.serialize(s)
    }

    /// Reads a non-negative USD float.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        let usd = f64::deserialize(d)?;
        Money::from_usd(usd)
            .filter(|m| m.0 >= 0)
            .ok_or_else(|| serde::de::Error::custom("amount_usd must be a non-negative number"))
    }
}

/// An allowed-model pattern: `*` (any), `prefix*`, or an exact name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelPattern(String);

impl ModelPattern {
    /// Wraps a pattern; only a trailing `*` is special.
    pub fn new(pattern: impl Into<String>) -> Result<ModelPattern, GovernanceError> {
        let p: String = pattern.into();
        let stars = p.matches('*').count();
        if p.is_empty() || stars > 1 || (stars == 1 && !p.ends_with('*')) {
            return Err(GovernanceError::Invalid(format!(
                "model pattern `{p}`: use an exact name, `prefix*` or `*`"
            )));
        }
        Ok(ModelPattern(p))
    }

    /// Whether `model` matches.
    pub fn matches(&self, model: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => model.starts_with(prefix),
            None => self.0 == model,
        }
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for ModelPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ModelPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ModelPattern::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Checks a team or key name: 1-64 of `[A-Za-z0-9._-]`, so it is safe in state-store key names.
pub fn validate_name(what: &str, name: &str) -> Result<(), GovernanceError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(GovernanceError::Invalid(format!(
            "{what} `{name}`: use 1-64 characters from A-Z a-z 0-9 . _ -"
        )))
    }
}

/// What to create: a team's limits and budgets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamSpec {
    /// The team's name, also its id.
    pub name: String,
    /// Team-wide rate limits, applied on top of each key's.
    #[serde(default)]
    pub limits: Limits,
    /// Team-wide budgets, applied on top of each key's.
    #[serde(default)]
    pub budgets: Vec<Budget>,
}

/// A stored team.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Team {
    /// The team's name, also its id.
    pub name: String,
    /// Team-wide rate limits.
    pub limits: Limits,
    /// Team-wide budgets.
    pub budgets: Vec<Budget>,
    /// Creation time, Unix milliseconds.
    pub created_ms: i64,
}

/// What to create: one virtual key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// The owning team (created without limits if it does not exist yet).
    pub team: String,
    /// A human name, unique within the team.
    pub name: String,
    /// Models this key may call; `["*"]` for any.
    #[serde(default = "any_model")]
    pub allowed_models: Vec<ModelPattern>,
    /// The data class of requests that do not name one.
    #[serde(default = "default_class")]
    pub default_data_class: String,
    /// Per-key rate limits.
    #[serde(default)]
    pub limits: Limits,
    /// Per-key budgets.
    #[serde(default)]
    pub budgets: Vec<Budget>,
    /// Whether prompt and response bodies may be stored in the ledger.
    #[serde(default)]
    pub store_bodies: bool,
}

fn any_model() -> Vec<ModelPattern> {
    vec![ModelPattern("*".into())]
}

fn default_class() -> String {
    "internal".into()
}

impl KeySpec {
    /// A key for `team` named `name` that may call any model, with no limits.
    pub fn new(team: impl Into<String>, name: impl Into<String>) -> KeySpec {
        KeySpec {
            team: team.into(),
            name: name.into(),
            allowed_models: any_model(),
            default_data_class: default_class(),
            limits: Limits::default(),
            budgets: Vec::new(),
            store_bodies: false,
        }
    }

    /// Checks names and patterns before anything is stored.
    pub fn validate(&self) -> Result<(), GovernanceError> {
        validate_name("team", &self.team)?;
        validate_name("key name", &self.name)?;
        validate_name("data class", &self.default_data_class)?;
        validate_budgets(&self.budgets)
    }
}

impl TeamSpec {
    /// Checks the name and budgets before anything is stored.
    pub fn validate(&self) -> Result<(), GovernanceError> {
        validate_name("team", &self.name)?;
        validate_budgets(&self.budgets)
    }
}

/// At most one budget per (period, mode): they share one counter in the state store.
fn validate_budgets(budgets: &[Budget]) -> Result<(), GovernanceError> {
    for (i, b) in budgets.iter().enumerate() {
        if budgets[..i]
            .iter()
            .any(|o| o.period == b.period && o.mode == b.mode)
        {
            return Err(GovernanceError::Invalid(format!(
                "two {} {} budgets: keep one per period and mode",
                b.mode.as_str(),
                b.period.adjective()
            )));
        }
    }
    Ok(())
}

/// A stored key as listed: never the secret, only its display prefix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyInfo {
    /// The key's id (`key_…`), used to rotate and revoke.
    pub id: String,
    /// The owning team.
    pub team: String,
    /// The key's name.
    pub name: String,
    /// The first characters of the secret, for recognising it (`sk-sy-AbCdEf`).
    pub prefix: String,
    /// Allowed model patterns.
    pub allowed_models: Vec<ModelPattern>,
    /// Default data class.
    pub default_data_class: String,
    /// Per-key rate limits.
    pub limits: Limits,
    /// Per-key budgets.
    pub budgets: Vec<Budget>,
    /// Whether bodies may be stored.
    pub store_bodies: bool,
    /// Creation time, Unix milliseconds.
    pub created_ms: i64,
    /// Revocation time, Unix milliseconds, once revoked.
    pub revoked_ms: Option<i64>,
    /// Until when the secret replaced by the last rotation still works, Unix milliseconds.
    pub previous_valid_until_ms: Option<i64>,
}

/// A freshly created or rotated key: the only time the secret is visible.
#[derive(Clone, Serialize)]
pub struct IssuedKey {
    /// The stored key.
    #[serde(flatten)]
    pub info: KeyInfo,
    /// The secret (`sk-sy-…`); show it once, it cannot be recovered.
    pub secret: String,
}

impl fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never let the secret reach a log line through `{:?}`.
        f.debug_struct("IssuedKey")
            .field("info", &self.info)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Who is calling: an authenticated key with everything the request path needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The key's id.
    pub key_id: String,
    /// The key's name.
    pub key_name: String,
    /// The owning team.
    pub team: String,
    /// Allowed model patterns.
    pub allowed_models: Vec<ModelPattern>,
    /// The data class of requests that do not name one.
    pub data_class: String,
    /// Per-key rate limits.
    pub limits: Limits,
    /// Per-key budgets.
    pub budgets: Vec<Budget>,
    /// The team's rate limits (applied on top of the key's).
    pub team_limits: Limits,
    /// The team's budgets (applied on top of the key's).
    pub team_budgets: Vec<Budget>,
    /// Whether bodies may be stored in the ledger.
    pub store_bodies: bool,
}

impl Principal {
    /// Whether this key may call `model`.
    pub fn allows_model(&self, model: &str) -> bool {
        self.allowed_models.iter().any(|p| p.matches(model))
    }
}

/// Whose limit or budget: the key's own or its team's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The key's own limit or budget.
    Key,
    /// The team's limit or budget, shared by all its keys.
    Team,
}

impl Scope {
    /// The name used in messages, keys and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Key => "key",
            Scope::Team => "team",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which rate limit: requests or tokens per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateKind {
    /// Requests per minute.
    Requests,
    /// Tokens per minute.
    Tokens,
}

impl RateKind {
    /// The name used in messages, keys and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RateKind::Requests => "requests",
            RateKind::Tokens => "tokens",
        }
    }
}

impl fmt::Display for RateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_patterns_match_exact_prefix_and_any() {
        let any = ModelPattern::new("*").unwrap();
        let prefix = ModelPattern::new("gpt-4o*").unwrap();
        let exact = ModelPattern::new("claude-sonnet").unwrap();
        assert!(any.matches("anything"));
        assert!(prefix.matches("gpt-4o-mini") && prefix.matches("gpt-4o"));
        assert!(!prefix.matches("gpt-4"));
        assert!(exact.matches("claude-sonnet") && !exact.matches("claude-sonnet-4"));
        assert!(ModelPattern::new("a*b").is_err());
        assert!(ModelPattern::new("").is_err());
    }

    #[test]
    fn budgets_parse_from_cli_and_json() {
        let b: Budget = "month:500.5:alert".parse().unwrap();
        assert_eq!(b.period, Period::Month);
        assert_eq!(b.amount, Money(500_500_000_000));
        assert_eq!(b.mode, BudgetMode::Alert);
        let d: Budget = "day:10".parse().unwrap();
        assert_eq!(d.mode, BudgetMode::Hard);
        assert!("year:1".parse::<Budget>().is_err());
        assert!("day:-1".parse::<Budget>().is_err());
        let j: Budget = serde_json::from_str(r#"{"period":"week","amount_usd":2.5}"#).unwrap();
        assert_eq!(j.amount, Money(2_500_000_000));
        assert_eq!(
            serde_json::to_string(&j).unwrap(),
            r#"{"period":"week","amount_usd":2.5,"mode":"hard"}"#
        );
    }

    #[test]
    fn names_are_restricted_to_key_safe_characters() {
        assert!(validate_name("team", "ml-platform.eu_1").is_ok());
        assert!(validate_name("team", "a:b").is_err());
        assert!(validate_name("team", "").is_err());
    }
}
