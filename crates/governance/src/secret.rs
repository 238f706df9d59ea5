//! Key secrets: generated once, shown once, stored only as SHA-256.

use rand::distr::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

/// Every secret starts with this, so leaked keys are recognisable by secret scanners.
pub const SECRET_PREFIX: &str = "sk-sy-";
/// Random base62 characters after the prefix (~238 bits).
const RANDOM_CHARS: usize = 40;
/// Characters of the secret kept in clear for display: the prefix plus six random ones,
/// which leaves 34 unknown base62 characters (~202 bits).
const DISPLAY_CHARS: usize = SECRET_PREFIX.len() + 6;

/// A new secret `sk-sy-<40 base62>` from the thread-local CSPRNG.
pub fn generate() -> String {
    let random: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(RANDOM_CHARS)
        .map(char::from)
        .collect();
    format!("{SECRET_PREFIX}{random}")
}

/// A random id with a readable prefix (`key_…`), not secret.
pub fn new_id(prefix: &str) -> String {
    // One allocation: this runs for every admission.
    let mut id = String::with_capacity(prefix.len() + 17);
    id.push_str(prefix);
    id.push('_');
    id.extend(
        rand::rng()
            .sample_iter(&Alphanumeric)
            .take(16)
            .map(char::from),
    );
    id
}

/// The stored form of a secret: lowercase hex SHA-256.
///
/// A plain hash (no salt, no KDF) is right here: secrets are 200+ random bits, so there is
/// nothing to brute-force, and lookups must be by hash on every request.
pub fn hash(secret: &str) -> String {
    hex::encode(digest(secret))
}

/// The raw SHA-256 of a secret, whose lowercase hex is [`hash`] (for in-memory lookups).
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The non-secret display prefix of a secret.
pub fn display_prefix(secret: &str) -> String {
    secret.chars().take(DISPLAY_CHARS).collect()
}

/// Whether a presented token even looks like one of ours (cheap rejection before any lookup).
pub fn looks_like_secret(token: &str) -> bool {
    token.len() == SECRET_PREFIX.len() + RANDOM_CHARS
        && token.starts_with(SECRET_PREFIX)
        && token[SECRET_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_the_documented_shape_and_differ() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(looks_like_secret(&a));
        assert_eq!(display_prefix(&a).len(), 12);
        assert_eq!(hash(&a).len(), 64);
        assert!(!hash(&a).contains(&a[SECRET_PREFIX.len()..]));
        assert!(!looks_like_secret("sk-sy-short"));
    }
}
