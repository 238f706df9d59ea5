//! Config errors in plain words: the TOML parser's and serde's messages (written for Rust
//! programmers: `invalid type: string "three", expected usize`) turned into what a person
//! editing the file needs, with the key path and a "did you mean" for near-miss names.

use super::{Problem, Severity};

/// The closest of `candidates` to `wanted`, when it is close enough to be a typo: at most a
/// third of the name's length in edits (and at least one).
pub(super) fn did_you_mean<'a>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (wanted.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(wanted, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// The problem a TOML or type error describes, located by key path and line.
pub(super) fn parse_problem(text: &str, e: &toml::de::Error) -> Problem {
    let (path, position) = match e.span() {
        Some(span) => {
            let (line, col) = super::line_col(text, span.start);
            (
                key_path(text, span.start),
                format!("line {line}, column {col}"),
            )
        }
        None => (None, String::new()),
    };
    let location = match (path, position.is_empty()) {
        (Some(p), false) => format!("{p} (line {})", position.trim_start_matches("line ")),
        (Some(p), true) => p,
        (None, false) => position,
        (None, true) => "config".into(),
    };
    let (message, hint) = plain(e.message());
    Problem {
        severity: Severity::Error,
        location,
        message,
        hint,
    }
}

/// `table.key` at byte `offset`: the key on that line, under the nearest table header above.
fn key_path(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text[line_start..line_end].trim();
    let header = |l: &str| {
        let l = l.trim();
        l.strip_prefix("[[")
            .and_then(|r| r.split("]]").next())
            .or_else(|| l.strip_prefix('[').and_then(|r| r.split(']').next()))
            .map(|h| h.trim().to_string())
    };
    if let Some(h) = header(line) {
        return Some(h);
    }
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string());
    let table = text[..line_start].lines().rev().find_map(header);
    match (table, key) {
        (Some(t), Some(k)) => Some(format!("{t}.{k}")),
        (None, Some(k)) => Some(k),
        (t, None) => t,
    }
}

/// The backquoted names after `expected` in a serde message: `a`, `b` or `c`.
fn expected_names(message: &str) -> Vec<&str> {
    message
        .split_once("expected")
        .map(|(_, rest)| rest.split('`').skip(1).step_by(2).collect())
        .unwrap_or_default()
}

/// The first backquoted name in a serde message.
fn first_quoted(message: &str) -> Option<&str> {
    message.split('`').nth(1)
}

/// A serde type as a person would say it.
fn kind(expected: &str) -> String {
    let e = expected.trim();
    let whole = [
        "u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32", "i64", "isize",
    ];
    if whole.contains(&e) {
        "a whole number".into()
    } else if e == "f32" || e == "f64" || e == "a number" {
        "a number".into()
    } else if e.contains("string") || e.contains("str") {
        "text in quotes".into()
    } else if e.contains("bool") {
        "true or false".into()
    } else if e.contains("sequence") || e.starts_with("a list") {
        "a list like [\"a\", \"b\"]".into()
    } else if e.starts_with("struct") || e.contains("map") || e.contains("table") {
        "a table".into()
    } else {
        e.to_string()
    }
}

/// What was found, from serde's `invalid type: string "three"` part.
fn found(part: &str) -> String {
    let p = part.trim();
    if let Some(s) = p.strip_prefix("string ") {
        format!("the text {s}")
    } else if let Some(n) = p
        .strip_prefix("integer ")
        .or_else(|| p.strip_prefix("floating point "))
    {
        format!("the number {}", n.trim_matches('`'))
    } else if let Some(b) = p.strip_prefix("boolean ") {
        b.trim_matches('`').to_string()
    } else if p == "sequence" {
        "a list".into()
    } else if p == "map" {
        "a table".into()
    } else {
        p.to_string()
    }
}

/// serde's message → (plain message, hint).
fn plain(message: &str) -> (String, String) {
    let message = message.trim();
    let example = "see config/example.toml for a complete, commented example".to_string();
    if message.starts_with("unknown field") {
        let name = first_quoted(message).unwrap_or("?");
        let allowed = expected_names(message);
        let hint = match did_you_mean(name, allowed.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None if allowed.is_empty() => example,
            None => format!("the keys allowed here are: {}", allowed.join(", ")),
        };
        return (format!("unknown key `{name}`"), hint);
    }
    if message.starts_with("unknown variant") {
        let value = first_quoted(message).unwrap_or("?");
        let allowed = expected_names(message);
        let hint = match did_you_mean(value, allowed.iter().copied()) {
            Some(s) => format!("did you mean \"{s}\"?"),
            None => format!("use one of: {}", allowed.join(", ")),
        };
        return (format!("\"{value}\" is not a valid value here"), hint);
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        let name = rest.trim_matches('`');
        return (format!("`{name}` is required here"), example);
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            if let Some((what, expected)) = rest.split_once(", expected ") {
                return (
                    format!("expected {}, found {}", kind(expected), found(what)),
                    example,
                );
            }
        }
    }
    (
        message.to_string(),
        "fix the TOML syntax; see config/example.toml for a complete, commented example".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_suggested_and_far_ones_are_not() {
        let names = ["server", "providers", "deployments", "models"];
        assert_eq!(did_you_mean("sever", names), Some("server"));
        assert_eq!(did_you_mean("deployment", names), Some("deployments"));
        assert_eq!(did_you_mean("budgets", names), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn serde_words_become_plain_ones() {
        let (m, _) = plain("invalid type: string \"three\", expected usize");
        assert_eq!(m, "expected a whole number, found the text \"three\"");
        let (m, h) = plain("unknown field `max_atempts`, expected one of `listen`, `max_attempts`");
        assert_eq!(
            (m.as_str(), h.as_str()),
            ("unknown key `max_atempts`", "did you mean `max_attempts`?")
        );
        let (m, h) = plain("unknown variant `cheapst`, expected one of `priority`, `cheapest`");
        assert_eq!(m, "\"cheapst\" is not a valid value here");
        assert_eq!(h, "did you mean \"cheapest\"?");
    }
}
