//! Server-sent events framing: an incremental decoder (push bytes, pull events) and a writer.
//!
//! The decoder follows the WHATWG `text/event-stream` rules that matter for LLM APIs: LF, CRLF
//! and CR line endings (Gemini uses CRLF), multi-line `data:` joined with `\n`, `event:` names,
//! `:` comments, an optional single space after the colon, and a leading byte-order mark.
//! `id:` and `retry:` are ignored: no LLM API relies on reconnection.
//!
//! It never rescans bytes: `scan` remembers where the search for the next line ending resumes,
//! so a long event that arrives one byte at a time costs linear time.

use crate::DecodeError;

/// One dispatched event.
///
/// `data` is an owned `String`: events are small JSON documents that the caller parses right
/// away, and an owned value keeps the decoder free to reuse its buffer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` name, if the event had one.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// An incremental SSE parser: [`SseDecoder::push`] bytes as they arrive, then call
/// [`SseDecoder::next_event`] until it returns `Ok(None)`.
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// Received bytes not yet consumed as complete lines.
    buf: Vec<u8>,
    /// Start of the first unconsumed line in `buf`.
    pos: usize,
    /// Where the search for the next line ending resumes (no byte is scanned twice).
    scan: usize,
    /// The previous line ended with CR at the end of a chunk: a following LF belongs to it.
    skip_lf: bool,
    /// No line has been seen yet (a byte-order mark may lead the first one).
    at_start: bool,
    /// The event being assembled.
    data: String,
    /// Whether any `data:` line was seen for the event being assembled.
    has_data: bool,
    /// The `event:` name of the event being assembled.
    event: Option<String>,
}

impl SseDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        SseDecoder {
            at_start: true,
            ..SseDecoder::default()
        }
    }

    /// Appends received bytes; they may split lines and events anywhere.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.pos > 0 {
            // Only the unfinished tail is kept, so this copy is bounded by one line.
            self.buf.drain(..self.pos);
            self.scan -= self.pos;
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event, `Ok(None)` when more bytes are needed.
    ///
    /// A line that is not valid UTF-8 gives an error; that line is skipped, so the caller may
    /// keep reading if it chooses to.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, DecodeError> {
        loop {
            if self.skip_lf && self.scan < self.buf.len() {
                self.skip_lf = false;
                if self.buf[self.scan] == b'\n' {
                    self.scan += 1;
                    self.pos = self.scan;
                }
            }
            let Some(offset) = memchr::memchr2(b'\n', b'\r', &self.buf[self.scan..]) else {
                self.scan = self.buf.len();
                return Ok(None);
            };
            let end = self.scan + offset;
            let mut next = end + 1;
            if self.buf[end] == b'\r' {
                match self.buf.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    // The LF of a CRLF may be in the next chunk.
                    None => self.skip_lf = true,
                }
            }
            let start = self.pos;
            self.pos = next;
            self.scan = next;
            if let Some(event) = self.line(start, end)? {
                return Ok(Some(event));
            }
        }
    }

    /// Flushes the last event of a stream that did not end with a blank line.
    ///
    /// Call it after [`SseDecoder::next_event`] returned `Ok(None)` and no more bytes will come.
    /// An unterminated last line is processed as if it were terminated; invalid UTF-8 in it
    /// drops the event.
    pub fn finish(&mut self) -> Option<SseEvent> {
        // A CR that ended the last chunk already ended its line; the LF we add must not merge.
        self.skip_lf = false;
        if self.pos < self.buf.len() {
            self.buf.push(b'\n');
        }
        self.buf.push(b'\n');
        self.next_event().ok().flatten()
    }

    /// Processes the line `buf[start..end]`; returns an event when it was the blank line that
    /// ends one.
    fn line(&mut self, start: usize, end: usize) -> Result<Option<SseEvent>, DecodeError> {
        let mut line = &self.buf[start..end];
        if self.at_start {
            self.at_start = false;
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                let value = std::str::from_utf8(value).map_err(invalid_utf8)?;
                if self.has_data {
                    self.data.push('\n');
                }
                self.has_data = true;
                self.data.push_str(value);
            }
            b"event" => {
                let value = std::str::from_utf8(value).map_err(invalid_utf8)?;
                self.event = Some(value.to_owned());
            }
            // `id`, `retry` and unknown fields are ignored, as the spec says.
            _ => {}
        }
        Ok(None)
    }

    /// Ends the event being assembled; an event without data is not dispatched (per the spec).
    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
        })
    }
}

fn invalid_utf8(e: std::str::Utf8Error) -> DecodeError {
    DecodeError::new(format!(
        "SSE stream is not valid UTF-8 (after {} valid bytes of a line)",
        e.valid_up_to()
    ))
}

/// Writes one event: `event: <name>\n` if any, one `data: ` line per line of `data`, then a
/// blank line. Line breaks inside `data` (LF, CRLF or CR) become separate `data:` lines, so
/// the reader gets back the same text with `\n` separators.
pub fn write_event(out: &mut Vec<u8>, event: Option<&str>, data: &[u8]) {
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    let mut rest = data;
    loop {
        out.extend_from_slice(b"data: ");
        match memchr::memchr2(b'\n', b'\r', rest) {
            None => {
                out.extend_from_slice(rest);
                out.push(b'\n');
                break;
            }
            Some(i) => {
                out.extend_from_slice(&rest[..i]);
                out.push(b'\n');
                let skip = if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                rest = &rest[i + skip..];
            }
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all(dec: &mut SseDecoder) -> Vec<SseEvent> {
        let mut out = Vec::new();
        while let Some(ev) = dec.next_event().unwrap() {
            out.push(ev);
        }
        out
    }

    fn parse(bytes: &[u8]) -> Vec<SseEvent> {
        let mut dec = SseDecoder::new();
        dec.push(bytes);
        let mut out = all(&mut dec);
        out.extend(dec.finish());
        out
    }

    fn data(d: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: d.to_owned(),
        }
    }

    #[test]
    fn lf_crlf_and_cr_line_endings() {
        for sep in ["\n", "\r\n", "\r"] {
            let text = format!("data: a{sep}{sep}data: b{sep}{sep}");
            assert_eq!(
                parse(text.as_bytes()),
                vec![data("a"), data("b")],
                "{sep:?}"
            );
        }
    }

    #[test]
    fn multi_line_data_event_names_and_comments() {
        let text =
            ": keep-alive\nevent: message_start\ndata: {\"a\":\ndata:1}\nid: 7\nretry: 10\n\n";
        assert_eq!(
            parse(text.as_bytes()),
            vec![SseEvent {
                event: Some("message_start".into()),
                data: "{\"a\":\n1}".into()
            }]
        );
    }

    #[test]
    fn only_one_space_after_the_colon_is_stripped() {
        assert_eq!(parse(b"data:  x\n\ndata\n\n"), vec![data(" x"), data("")]);
    }

    #[test]
    fn events_without_data_are_not_dispatched_and_do_not_leak_their_name() {
        assert_eq!(parse(b"event: ping\n\ndata: x\n\n"), vec![data("x")]);
    }

    #[test]
    fn crlf_split_between_chunks_is_one_line_ending() {
        let mut dec = SseDecoder::new();
        dec.push(b"data: a\r");
        assert_eq!(dec.next_event().unwrap(), None);
        // The LF completes the CRLF; the lone CR after it is the blank line.
        dec.push(b"\n\r");
        assert_eq!(dec.next_event().unwrap(), Some(data("a")));
        // This LF belongs to that CR, so it is not a second blank line.
        dec.push(b"\ndata: b\n\n");
        assert_eq!(dec.next_event().unwrap(), Some(data("b")));
        assert_eq!(dec.next_event().unwrap(), None);
    }

    #[test]
    fn finish_flushes_an_unterminated_event() {
        assert_eq!(parse(b"data: [DONE]"), vec![data("[DONE]")]);
        assert_eq!(parse(b"data: x\n"), vec![data("x")]);
        assert_eq!(parse(b"data: x\r"), vec![data("x")]);
        assert_eq!(parse(b""), vec![]);
        assert_eq!(parse(b"data: x\n\n"), vec![data("x")]);
    }

    #[test]
    fn a_leading_bom_is_ignored() {
        assert_eq!(parse(b"\xEF\xBB\xBFdata: x\n\n"), vec![data("x")]);
    }

    #[test]
    fn invalid_utf8_is_an_error_and_the_line_is_skipped() {
        let mut dec = SseDecoder::new();
        dec.push(b"data: \xFF\n\ndata: ok\n\n");
        assert!(dec.next_event().is_err());
        assert_eq!(dec.next_event().unwrap(), Some(data("ok")));
    }

    #[test]
    fn write_event_splits_lines() {
        let mut out = Vec::new();
        write_event(&mut out, Some("ping"), b"a\r\nb\nc");
        write_event(&mut out, None, b"{}");
        assert_eq!(
            out,
            b"event: ping\ndata: a\ndata: b\ndata: c\n\ndata: {}\n\n"
        );
        assert_eq!(
            parse(&out),
            vec![
                SseEvent {
                    event: Some("ping".into()),
                    data: "a\nb\nc".into()
                },
                data("{}")
            ]
        );
    }

    #[test]
    fn a_huge_line_fed_byte_by_byte_is_linear() {
        let payload = "x".repeat(200_000);
        let text = format!("data: {payload}\n\n");
        let mut dec = SseDecoder::new();
        let mut got = Vec::new();
        for b in text.as_bytes() {
            dec.push(std::slice::from_ref(b));
            got.extend(all(&mut dec));
        }
        assert_eq!(got, vec![data(&payload)]);
    }

    fn event_strategy() -> impl Strategy<Value = (Option<String>, String)> {
        (
            proptest::option::of("[a-z_]{1,12}"),
            // Data with line breaks and multi-byte characters, to split inside both.
            "[ -~éあ\n]{0,40}",
        )
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_events(
            events in proptest::collection::vec(event_strategy(), 0..8),
            seps in proptest::collection::vec(prop_oneof![Just("\n"), Just("\r\n"), Just("\r")], 8),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            // Build the stream by hand so each event uses its own line ending.
            let mut stream = Vec::new();
            for (i, (name, d)) in events.iter().enumerate() {
                let sep = seps[i % seps.len()];
                if i % 3 == 0 {
                    stream.extend_from_slice(format!(": comment{sep}").as_bytes());
                }
                if let Some(name) = name {
                    stream.extend_from_slice(format!("event: {name}{sep}").as_bytes());
                }
                for line in d.split('\n') {
                    stream.extend_from_slice(format!("data: {line}{sep}").as_bytes());
                }
                stream.extend_from_slice(sep.as_bytes());
            }
            let whole = parse(&stream);
            let expected: Vec<SseEvent> = events
                .iter()
                .map(|(name, d)| SseEvent { event: name.clone(), data: d.clone() })
                .collect();
            prop_assert_eq!(&whole, &expected);

            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            points.sort_unstable();
            let mut dec = SseDecoder::new();
            let mut got = Vec::new();
            let mut last = 0;
            for p in points.into_iter().chain([stream.len()]) {
                dec.push(&stream[last..p]);
                got.extend(all(&mut dec));
                last = p;
            }
            got.extend(dec.finish());
            prop_assert_eq!(got, whole);
        }
    }
}
