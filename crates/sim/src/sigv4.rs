//! AWS Signature Version 4 verification, written from the specification so that it checks
//! signers (aws-sigv4, botocore) independently rather than agreeing with itself.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha256};

/// The largest accepted difference between `X-Amz-Date` and the simulator's clock.
pub const MAX_CLOCK_SKEW_SECS: i64 = 5 * 60;

/// The parts of an `Authorization: AWS4-HMAC-SHA256 …` header.
#[derive(Debug, PartialEq)]
pub struct SigV4Auth {
    /// The access key id of the credential scope.
    pub access_key: String,
    /// The scope date, `yyyymmdd`.
    pub date: String,
    /// The scope region.
    pub region: String,
    /// The scope service (`bedrock`).
    pub service: String,
    /// Signed header names, lower-case, in the order given.
    pub signed_headers: Vec<String>,
    /// The signature, 64 hex digits.
    pub signature: String,
}

/// Parses a SigV4 `Authorization` header; `None` when it is malformed.
pub fn parse_authorization(value: &str) -> Option<SigV4Auth> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',').map(str::trim) {
        let (k, v) = part.split_once('=')?;
        match k {
            "Credential" => cred = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => sig = Some(v),
            _ => {}
        }
    }
    let scope: Vec<&str> = cred?.split('/').collect();
    let signature = sig?;
    if scope.len() != 5
        || scope[4] != "aws4_request"
        || signature.len() != 64
        || !signature.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    Some(SigV4Auth {
        access_key: scope[0].to_owned(),
        date: scope[1].to_owned(),
        region: scope[2].to_owned(),
        service: scope[3].to_owned(),
        signed_headers: signed?.split(';').map(str::to_owned).collect(),
        signature: signature.to_ascii_lowercase(),
    })
}

/// Why a signature was refused; each maps to the service's 403 error name.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SigV4Error {
    /// No or unparsable `X-Amz-Date`, or `host` not signed.
    #[error("{0}")]
    Incomplete(String),
    /// The date is more than five minutes away from now.
    #[error("Signature expired: {0} is now earlier or later than the allowed 5 minutes.")]
    Expired(String),
    /// The signature does not match.
    #[error("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")]
    Mismatch,
}

impl SigV4Error {
    /// The `x-amzn-ErrorType` name the service sends for this failure.
    pub fn error_name(&self) -> &'static str {
        match self {
            SigV4Error::Incomplete(_) => "IncompleteSignatureException",
            SigV4Error::Expired(_) | SigV4Error::Mismatch => "InvalidSignatureException",
        }
    }
}

/// One request as the verifier needs it (the path and query exactly as received).
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// The path, still percent-encoded.
    pub path: &'a str,
    /// The raw query string.
    pub query: Option<&'a str>,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The body.
    pub body: &'a [u8],
}

/// Checks a SigV4 signature with `secret` at time `now` (Unix seconds).
pub fn verify(
    auth: &SigV4Auth,
    req: SignedRequest<'_>,
    secret: &str,
    now: i64,
) -> Result<(), SigV4Error> {
    let header = |n: &str| req.headers.get(n).and_then(|v| v.to_str().ok());
    let amz_date = header("x-amz-date").ok_or_else(|| {
        SigV4Error::Incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .to_owned(),
        )
    })?;
    let when = parse_amz_date(amz_date)
        .ok_or_else(|| SigV4Error::Incomplete(format!("Invalid X-Amz-Date value: {amz_date}")))?;
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(SigV4Error::Incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        ));
    }
    if (now - when).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(SigV4Error::Expired(amz_date.to_owned()));
    }
    if !amz_date.starts_with(&auth.date) {
        return Err(SigV4Error::Mismatch);
    }
    let canonical = canonical_request(auth, req);
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    for part in [auth.region.as_str(), auth.service.as_str(), "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    if hex::encode(hmac(&key, to_sign.as_bytes())) == auth.signature {
        Ok(())
    } else {
        Err(SigV4Error::Mismatch)
    }
}

/// The canonical request: method, twice-encoded path, sorted query, signed headers and
/// their values, the signed-header list, and the payload hash.
pub fn canonical_request(auth: &SigV4Auth, req: SignedRequest<'_>) -> String {
    // Non-S3 services encode the already-encoded path again (`%3A` → `%253A`).
    let path = if req.path.is_empty() { "/" } else { req.path };
    let uri: Vec<String> = path.split('/').map(|s| uri_encode(s.as_bytes())).collect();
    let mut query: Vec<(String, String)> = req
        .query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k)),
                uri_encode(&percent_decode(v)),
            )
        })
        .collect();
    query.sort();
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut headers = String::new();
    for name in &auth.signed_headers {
        let values: Vec<String> = req
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload = req
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| hex::encode(Sha256::digest(req.body)), str::to_owned);
    format!(
        "{}\n{}\n{}\n{headers}\n{}\n{payload}",
        req.method,
        uri.join("/"),
        query.join("&"),
        auth.signed_headers.join(";")
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail; an empty MAC would only make the
    // comparison fail.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// RFC 3986 encoding of everything but unreserved characters (upper-case hex), as SigV4 wants.
fn uri_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// `yyyymmddThhmmssZ` → Unix seconds.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20250101T000000Z"), Some(1_735_689_600));
        assert_eq!(parse_amz_date("20240229T120000Z"), Some(1_709_208_000));
        assert_eq!(parse_amz_date("2025-01-01T00:00:00Z"), None);
    }

    /// The example from AWS's SigV4 documentation ("GET /?Action=ListUsers", IAM).
    #[test]
    fn aws_documentation_example_verifies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8"
                .parse()
                .unwrap(),
        );
        headers.insert("host", "iam.amazonaws.com".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        let auth = parse_authorization("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7").unwrap();
        let req = SignedRequest {
            method: "GET",
            path: "/",
            query: Some("Action=ListUsers&Version=2010-05-08"),
            headers: &headers,
            body: b"",
        };
        let now = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(
            verify(&auth, req, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", now),
            Ok(())
        );
        assert_eq!(verify(&auth, req, "wrong", now), Err(SigV4Error::Mismatch));
        assert!(matches!(
            verify(
                &auth,
                req,
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                now + 301
            ),
            Err(SigV4Error::Expired(_))
        ));
    }

    #[test]
    fn paths_are_encoded_twice() {
        let headers = HeaderMap::new();
        let auth = parse_authorization(&format!(
            "AWS4-HMAC-SHA256 Credential=A/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature={}",
            "0".repeat(64)
        ))
        .unwrap();
        let req = SignedRequest {
            method: "POST",
            path: "/model/a.b-v1%3A0/converse",
            query: None,
            headers: &headers,
            body: b"",
        };
        let c = canonical_request(&auth, req);
        assert!(
            c.starts_with("POST\n/model/a.b-v1%253A0/converse\n\nhost:\n"),
            "{c}"
        );
    }
}
