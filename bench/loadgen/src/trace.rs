//! Replaying a token-count trace (`TIMESTAMP,ContextTokens,GeneratedTokens`, as in the Azure
//! LLM inference traces) as chat requests.

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;

/// One trace row: when it arrived (after the first row) and its token counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row {
    /// Arrival time after the first row.
    pub offset: Duration,
    /// Input tokens: the system message gets this many words.
    pub context_tokens: usize,
    /// Output tokens: the user message gets this many words, which the simulator echoes.
    pub generated_tokens: usize,
}

/// Parses the first `limit` rows of a trace file's text (a header line first).
pub fn parse(text: &str, limit: usize) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    let mut first = None;
    let mut prev = 0.0;
    let mut day_offset = 0.0;
    for (n, line) in text.lines().enumerate().skip(1).take(limit) {
        let bad = || format!("trace line {}: cannot parse {line:?}", n + 1);
        let mut cols = line.split(',');
        let (Some(ts), Some(ctx), Some(gen)) = (cols.next(), cols.next(), cols.next()) else {
            return Err(bad());
        };
        let mut secs = seconds_of_day(ts).ok_or_else(bad)? + day_offset;
        if secs < prev {
            // The trace crossed midnight.
            day_offset += 86_400.0;
            secs += 86_400.0;
        }
        prev = secs;
        let t0 = *first.get_or_insert(secs);
        rows.push(Row {
            offset: Duration::from_secs_f64((secs - t0).max(0.0)),
            context_tokens: ctx.trim().parse().map_err(|_| bad())?,
            generated_tokens: gen.trim().parse().map_err(|_| bad())?,
        });
    }
    if rows.is_empty() {
        return Err("the trace has no rows".into());
    }
    Ok(rows)
}

/// Seconds since midnight of `YYYY-MM-DD HH:MM:SS.fffffff`.
fn seconds_of_day(ts: &str) -> Option<f64> {
    let time = ts.trim().split_once(' ')?.1;
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

const WORDS: [&str; 8] = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
];

fn words(n: usize) -> String {
    let mut out = String::with_capacity(n * 7);
    for (i, w) in WORDS.iter().cycle().take(n).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// The chat request for a row: a system message of `context_tokens` words and a user message
/// of `generated_tokens` words (at least one).
pub fn body(row: &Row, model: &str, stream: bool) -> Bytes {
    let req = json!({
        "model": model,
        "stream": stream,
        "messages": [
            {"role": "system", "content": words(row.context_tokens)},
            {"role": "user", "content": words(row.generated_tokens.max(1))},
        ],
    });
    Bytes::from(req.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rows_and_builds_bodies() {
        let text = "TIMESTAMP,ContextTokens,GeneratedTokens\n\
                    2023-11-16 18:15:46.5000000,374,44\n\
                    2023-11-16 18:15:50.0000000,3,2\n\
                    2023-11-16 18:15:51.0000000,9,9\n";
        let rows = parse(text, 2).unwrap_or_default();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].offset, Duration::ZERO);
        assert_eq!(rows[1].offset, Duration::from_millis(3500));
        assert_eq!((rows[1].context_tokens, rows[1].generated_tokens), (3, 2));
        let body: serde_json::Value =
            serde_json::from_slice(&body(&rows[1], "m", true)).unwrap_or_default();
        assert_eq!(body["messages"][0]["content"], "lorem ipsum dolor");
        assert_eq!(body["messages"][1]["content"], "lorem ipsum");
        assert!(parse("TIMESTAMP\n", 5).is_err());
        assert!(parse("h\nnot a row\n", 5).is_err());
    }
}
