//! A small TOML writer: the converter's output is written by hand rather than serialised, so
//! it can keep Switchyard's inline-table style and carry comments next to assumed values.

use std::fmt::Write as _;

/// A TOML document under construction.
#[derive(Default)]
pub(crate) struct Doc {
    out: String,
}

/// A TOML value the converter writes.
pub(crate) enum Val {
    Str(String),
    Int(i64),
    Float(f64),
    Strs(Vec<String>),
    /// An inline table, keys in the given order.
    Inline(Vec<(String, Val)>),
}

impl Doc {
    /// Starts `[path]` (each part quoted if needed), after a blank line.
    pub(crate) fn table(&mut self, parts: &[&str]) {
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        let path: Vec<String> = parts.iter().map(|p| key(p)).collect();
        let _ = writeln!(self.out, "[{}]", path.join("."));
    }

    /// Starts `[[name]]`, after a blank line.
    pub(crate) fn array_table(&mut self, name: &str) {
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        let _ = writeln!(self.out, "[[{}]]", key(name));
    }

    /// `key = value`, with an optional trailing comment.
    pub(crate) fn set(&mut self, k: &str, v: &Val, comment: Option<&str>) {
        let _ = write!(self.out, "{} = {}", key(k), render(v));
        if let Some(c) = comment {
            let _ = write!(self.out, "   # {}", c.replace('\n', " "));
        }
        self.out.push('\n');
    }

    /// A comment line.
    pub(crate) fn comment(&mut self, text: &str) {
        for line in text.lines() {
            let _ = writeln!(self.out, "# {line}");
        }
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// A key, bare when TOML allows it, else quoted.
pub(crate) fn key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        k.to_string()
    } else {
        string(k)
    }
}

/// A basic string with TOML escapes.
fn string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn render(v: &Val) -> String {
    match v {
        Val::Str(s) => string(s),
        Val::Int(i) => i.to_string(),
        Val::Float(f) => toml::Value::Float(*f).to_string(),
        Val::Strs(items) => {
            let items: Vec<String> = items.iter().map(|s| string(s)).collect();
            format!("[{}]", items.join(", "))
        }
        Val::Inline(pairs) => {
            let items: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{} = {}", key(k), render(v)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_dots_or_spaces_are_quoted_and_the_document_parses_back() {
        let mut d = Doc::default();
        d.table(&["models", "gpt-3.5-turbo"]);
        d.set(
            "deployments",
            &Val::Strs(vec!["a \"b\"".into()]),
            Some("why"),
        );
        d.set(
            "weights",
            &Val::Inline(vec![
                ("x.y".into(), Val::Int(3)),
                ("z".into(), Val::Float(0.5)),
            ]),
            None,
        );
        let text = d.finish();
        assert!(text.contains("[models.\"gpt-3.5-turbo\"]"), "{text}");
        let parsed: toml::Value = toml::from_str(&text).unwrap();
        let model = &parsed["models"]["gpt-3.5-turbo"];
        assert_eq!(model["deployments"][0].as_str(), Some("a \"b\""));
        assert_eq!(model["weights"]["x.y"].as_integer(), Some(3));
        assert_eq!(model["weights"]["z"].as_float(), Some(0.5));
    }
}
