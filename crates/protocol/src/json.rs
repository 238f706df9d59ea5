//! Small helpers for walking JSON one level at a time over borrowed raw values.
//!
//! Codecs parse an object into its ordered `(key, raw value)` pairs and then parse each known
//! member on its own. That keeps the raw bytes for passthrough, and it lets every error name
//! the exact field (`messages[2].content[0].type`), which serde's own errors cannot.

use crate::DecodeError;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// A JSON path built on the stack while walking, rendered only when an error needs it.
#[derive(Clone, Copy)]
pub(crate) enum Path<'p> {
    /// The document itself.
    Root,
    /// A member of an object.
    Key(&'p Path<'p>, &'p str),
    /// An element of an array.
    Index(&'p Path<'p>, usize),
}

impl<'p> Path<'p> {
    /// The path of member `key` under this one.
    pub(crate) fn key(&'p self, key: &'p str) -> Path<'p> {
        Path::Key(self, key)
    }

    /// The path of element `i` under this one.
    pub(crate) fn index(&'p self, i: usize) -> Path<'p> {
        Path::Index(self, i)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, k) => f.write_str(k),
            Path::Key(parent, k) => write!(f, "{parent}.{k}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// An object's members in document order, values borrowed unparsed.
pub(crate) struct RawObject<'a>(pub(crate) Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> RawObject<'a> {
    /// The value of member `key` (the last one if repeated, as serde and most parsers do).
    pub(crate) fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Like [`RawObject::get`], but JSON `null` counts as absent.
    pub(crate) fn get_non_null(&self, key: &str) -> Option<&'a RawValue> {
        self.get(key).filter(|v| !is_null(v))
    }
}

/// A key that borrows from the input when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjVisitor;
        impl<'de> Visitor<'de> for ObjVisitor {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    let v: &'de RawValue = map.next_value()?;
                    members.push((k, v));
                }
                Ok(RawObject(members))
            }
        }
        d.deserialize_map(ObjVisitor)
    }
}

/// Whether a raw value is JSON `null`.
pub(crate) fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// A short description of a raw value for error messages: `a string "hot"`, `the number -5`.
pub(crate) fn describe(raw: &RawValue) -> String {
    let text = raw.get();
    let shown = truncate(text, 40);
    match text.as_bytes().first() {
        Some(b'"') => format!("the string {shown}"),
        Some(b'{') => "an object".to_owned(),
        Some(b'[') => "an array".to_owned(),
        Some(b't' | b'f') => format!("the boolean {shown}"),
        Some(b'n') => "null".to_owned(),
        _ => format!("the number {shown}"),
    }
}

/// The first `max` bytes of `s`, cut at a character boundary, with `…` if cut.
pub(crate) fn truncate(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &s[..end]))
}

/// Parses the members of an object at `path`.
pub(crate) fn object<'a>(raw: &'a RawValue, path: &Path<'_>) -> Result<RawObject<'a>, DecodeError> {
    if !raw.get().starts_with('{') {
        return Err(DecodeError::at(
            path,
            format!(
                "invalid '{path}': expected an object, got {}",
                describe(raw)
            ),
        ));
    }
    serde_json::from_str(raw.get())
        .map_err(|e| DecodeError::at(path, format!("invalid '{path}': {e}")))
}

/// Parses the elements of an array at `path`.
pub(crate) fn array<'a>(
    raw: &'a RawValue,
    path: &Path<'_>,
) -> Result<Vec<&'a RawValue>, DecodeError> {
    if !raw.get().starts_with('[') {
        return Err(DecodeError::at(
            path,
            format!("invalid '{path}': expected an array, got {}", describe(raw)),
        ));
    }
    serde_json::from_str(raw.get())
        .map_err(|e| DecodeError::at(path, format!("invalid '{path}': {e}")))
}

/// Parses a leaf value at `path` into `T`; `expected` names what was wanted (`a number`).
pub(crate) fn typed<'a, T: Deserialize<'a>>(
    raw: &'a RawValue,
    path: &Path<'_>,
    expected: &str,
) -> Result<T, DecodeError> {
    serde_json::from_str(raw.get()).map_err(|_| {
        DecodeError::at(
            path,
            format!(
                "invalid '{path}': expected {expected}, got {}",
                describe(raw)
            ),
        )
    })
}

/// Parses an optional leaf: absent or `null` gives `None`.
pub(crate) fn opt<'a, T: Deserialize<'a>>(
    obj: &RawObject<'a>,
    key: &'a str,
    parent: &Path<'_>,
    expected: &str,
) -> Result<Option<T>, DecodeError> {
    match obj.get_non_null(key) {
        None => Ok(None),
        Some(raw) => typed(raw, &parent.key(key), expected).map(Some),
    }
}

/// Parses a required leaf: absent or `null` is an error naming the field.
pub(crate) fn required<'a, T: Deserialize<'a>>(
    obj: &RawObject<'a>,
    key: &'a str,
    parent: &Path<'_>,
    expected: &str,
) -> Result<T, DecodeError> {
    opt(obj, key, parent, expected)?.ok_or_else(|| {
        let path = parent.key(key);
        DecodeError::at(path, format!("missing required parameter '{path}'"))
    })
}

/// Parses a JSON string value (escapes resolved).
pub(crate) fn string(raw: &RawValue, path: &Path<'_>) -> Result<String, DecodeError> {
    typed::<String>(raw, path, "a string")
}

/// Writes `s` as a JSON string literal.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    // Serializing a str into a Vec cannot fail: there is no I/O and no map key to reject.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Writes any serializable value as compact JSON.
pub(crate) fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Our wire structs only have string keys and finite numbers, and a Vec cannot fail to grow
    // short of aborting, so the error arm is unreachable in practice.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// The byte range of `inner` inside `outer`, or `None` if it does not borrow from it.
pub(crate) fn range_in(outer: &str, inner: &str) -> Option<std::ops::Range<usize>> {
    let start = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
    let end = start.checked_add(inner.len())?;
    (end <= outer.len()).then_some(start..end)
}

/// Turns a whole-body parse into a `DecodeError`, keeping serde's line and column.
pub(crate) fn body_object(body: &[u8]) -> Result<(&str, RawObject<'_>), DecodeError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        DecodeError::new(format!(
            "request body is not valid UTF-8 (at byte {})",
            e.valid_up_to()
        ))
    })?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(DecodeError::new(
            "request body is empty; expected a JSON object",
        ));
    }
    if !trimmed.starts_with('{') {
        return Err(DecodeError::new("request body must be a JSON object"));
    }
    let obj: RawObject<'_> = serde_json::from_str(text)
        .map_err(|e| DecodeError::new(format!("request body is not valid JSON: {e}")))?;
    Ok((text, obj))
}

/// `raw` JSON text with the whitespace between tokens removed, member order kept (serde_json's
/// `Value` would sort keys). Strings are copied verbatim, escapes included.
pub(crate) fn compact(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in raw.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            out.push(c);
        }
    }
    out
}

/// Tool-call arguments (JSON text) as a JSON object for protocols that take an object.
///
/// Empty text, invalid JSON and non-objects give `{}`: the call is still made (a model's
/// truncated arguments must not fail the whole exchange), as docs/translation.md records.
pub(crate) fn arguments_object(arguments: &str) -> ArgsObject<'_> {
    match serde_json::from_str::<&RawValue>(arguments) {
        Ok(raw) if raw.get().starts_with('{') => ArgsObject(Some(raw)),
        _ => ArgsObject(None),
    }
}

/// A JSON object written verbatim, or `{}`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArgsObject<'a>(pub(crate) Option<&'a RawValue>);

impl serde::Serialize for ArgsObject<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(raw) => raw.serialize(s),
            None => serde::ser::SerializeMap::end(s.serialize_map(Some(0))?),
        }
    }
}

/// The compact JSON text of an object member value received from an upstream (`input`,
/// `args`), `{}` when absent or null.
pub(crate) fn arguments_text(raw: Option<&RawValue>) -> String {
    match raw {
        Some(raw) if !is_null(raw) => compact(raw.get()),
        _ => "{}".to_owned(),
    }
}

/// A body's top-level members in document order, kept for pass-through: each key (as a range
/// of the body when it has no escapes, so decoding allocates nothing per member) and the byte
/// range of its raw value. Owns the body so the value is `'static` and `Send`.
#[derive(Debug, Clone)]
pub(crate) struct Members {
    body: Box<str>,
    fields: Vec<(MemberKey, std::ops::Range<usize>)>,
}

#[derive(Debug, Clone)]
enum MemberKey {
    /// The key's text inside the quotes, which is also its decoded value.
    Raw(std::ops::Range<usize>),
    /// A key written with escapes, decoded.
    Decoded(Box<str>),
}

impl Members {
    /// The members of `top`, parsed from `text`.
    pub(crate) fn new(text: &str, top: &RawObject<'_>) -> Result<Members, DecodeError> {
        let outside = || DecodeError::new("internal error: raw value outside the body");
        let fields = top
            .0
            .iter()
            .map(|(k, v)| {
                let key = match k {
                    Cow::Borrowed(k) => MemberKey::Raw(range_in(text, k).ok_or_else(outside)?),
                    Cow::Owned(k) => MemberKey::Decoded(Box::from(k.as_str())),
                };
                Ok((key, range_in(text, v.get()).ok_or_else(outside)?))
            })
            .collect::<Result<Vec<_>, DecodeError>>()?;
        Ok(Members {
            body: Box::from(text),
            fields,
        })
    }

    /// The members as (decoded key, raw value text), in document order.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = (&str, &str)> + '_ {
        self.fields
            .iter()
            .map(|(k, v)| (self.key(k), &self.body[v.clone()]))
    }

    /// Writes member `key` (as returned by [`Members::iter`]) as a JSON string literal.
    pub(crate) fn write_key(out: &mut Vec<u8>, key: &str) {
        // A key without escapes or quotes is its own literal (the parser rejects raw control
        // characters, the only other thing serde_json escapes); copy it without re-escaping.
        if key.bytes().all(|b| b != b'"' && b != b'\\' && b >= 0x20) {
            out.push(b'"');
            out.extend_from_slice(key.as_bytes());
            out.push(b'"');
        } else {
            write_str(out, key);
        }
    }

    /// The length of the body they were parsed from.
    pub(crate) fn body_len(&self) -> usize {
        self.body.len()
    }

    fn key<'s>(&'s self, k: &'s MemberKey) -> &'s str {
        match k {
            MemberKey::Raw(r) => &self.body[r.clone()],
            MemberKey::Decoded(k) => k,
        }
    }
}
