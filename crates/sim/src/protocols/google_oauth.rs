//! A local OAuth2 token endpoint for Vertex simulators: the JWT-bearer grant Google uses for
//! service accounts, issuing short-lived tokens that the Vertex routes then require.

use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Value};

use crate::plumbing::{json_response, unix_now, Sim};

/// The grant type of a service-account token request.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Every token this simulator issues starts with this, so a Vertex route can tell a sim
/// token (checked for expiry) from a static key.
pub(crate) const TOKEN_PREFIX: &str = "ya29.sim-";
/// Token lifetime when the `token_lifetime_s` fault is unset (Google's is one hour).
const DEFAULT_LIFETIME_S: u64 = 3600;

fn oauth_error(error: &str, description: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": error, "error_description": description}),
        &[],
    )
}

/// `POST /token` with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>`.
pub(super) async fn token(State(ctx): State<Sim>, body: Bytes) -> Response {
    let form = parse_form(&body);
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("grant_type") != Some(JWT_BEARER) {
        return oauth_error(
            "unsupported_grant_type",
            &format!("Invalid grant_type: {}", get("grant_type").unwrap_or("")),
        );
    }
    let Some(assertion) = get("assertion") else {
        return oauth_error("invalid_request", "Missing required parameter: assertion");
    };
    if let Err(why) = check_assertion(assertion, unix_now()) {
        return oauth_error("invalid_grant", &why);
    }
    let lifetime = ctx
        .controls
        .faults()
        .token_lifetime_s
        .unwrap_or(DEFAULT_LIFETIME_S);
    let token = ctx.next_id(TOKEN_PREFIX);
    let expires = tokio::time::Instant::now() + Duration::from_secs(lifetime);
    {
        let mut tokens = ctx
            .tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = tokio::time::Instant::now();
        tokens.retain(|_, exp| *exp > now);
        tokens.insert(token.clone(), expires);
    }
    ctx.controls.count_token_grant();
    json_response(
        StatusCode::OK,
        &json!({"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}),
        &[("cache-control", "no-store".to_owned())],
    )
}

/// Whether `token` was issued here and has not expired.
pub(super) fn token_valid(ctx: &Sim, token: &str) -> bool {
    let tokens = ctx
        .tokens
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    tokens
        .get(token)
        .is_some_and(|exp| *exp > tokio::time::Instant::now())
}

/// Checks the JWT's shape and claims; the RS256 signature is not verified (the simulator
/// has no public key to check it with, and the gateway's signing is gcp_auth's, not ours).
fn check_assertion(jwt: &str, now: u64) -> Result<(), String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err("assertion is not a JWT (header.claims.signature)".to_owned());
    };
    let decode = |p: &str, what: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(p.trim_end_matches('='))
            .map_err(|_| format!("JWT {what} is not base64url"))?;
        serde_json::from_slice(&bytes).map_err(|_| format!("JWT {what} is not JSON"))
    };
    let header = decode(header, "header")?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err("JWT alg must be RS256".to_owned());
    }
    if signature.is_empty() {
        return Err("JWT has no signature".to_owned());
    }
    let claims = decode(claims, "claims")?;
    let text = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let num = |k: &str| claims.get(k).and_then(Value::as_u64);
    text("iss").ok_or("JWT claim iss (the service account email) is missing")?;
    text("aud").ok_or("JWT claim aud (the token URI) is missing")?;
    if text("scope").is_none() && text("target_audience").is_none() {
        return Err("JWT has neither scope nor target_audience".to_owned());
    }
    let (Some(iat), Some(exp)) = (num("iat"), num("exp")) else {
        return Err("JWT claims iat and exp are required".to_owned());
    };
    if exp <= iat || exp - iat > 3600 {
        return Err("JWT exp must be after iat and at most one hour later".to_owned());
    }
    if exp <= now || iat > now + 300 {
        return Err("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.".to_owned());
    }
    Ok(())
}

/// `application/x-www-form-urlencoded` pairs, decoded.
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
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
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn jwt(claims: &Value) -> String {
        let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.c2ln",
            enc(&json!({"alg": "RS256", "typ": "JWT"})),
            enc(claims)
        )
    }

    #[test]
    fn assertions_are_checked() {
        let now = 1_700_000_000;
        let good = json!({"iss": "sa@p.iam.gserviceaccount.com", "aud": "http://x/token",
            "scope": "https://www.googleapis.com/auth/cloud-platform", "iat": now, "exp": now + 3595});
        assert_eq!(check_assertion(&jwt(&good), now), Ok(()));
        let mut no_scope = good.clone();
        no_scope.as_object_mut().unwrap().remove("scope");
        assert!(check_assertion(&jwt(&no_scope), now).is_err());
        let mut old = good.clone();
        old["exp"] = json!(now - 1);
        old["iat"] = json!(now - 100);
        assert!(check_assertion(&jwt(&old), now).is_err());
        assert!(check_assertion("a.b", now).is_err());
    }

    #[test]
    fn forms_decode() {
        let f = parse_form(
            b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c",
        );
        assert_eq!(f[0].1, JWT_BEARER);
        assert_eq!(f[1], ("assertion".to_owned(), "a.b.c".to_owned()));
    }
}
