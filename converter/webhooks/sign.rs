//! Signing webhooks: HMAC-SHA256 of the exact body bytes with the
//! operator's secret, sent as `Docconv-Signature: sha256=<hex>`.
//!
//! The timestamp header is not signed: the body holds the delivery id, and
//! a receiver that ignores delivery ids it has seen (as at-least-once
//! delivery asks of it anyway) ignores a replayed request too.

use ring::hmac;

/// The signature of the body.
pub const SIGNATURE: &str = "docconv-signature";
/// The delivery's id: the same for every attempt of one job's webhook.
pub const DELIVERY: &str = "docconv-delivery";
/// When this attempt was made, in seconds since 1970.
pub const TIMESTAMP: &str = "docconv-timestamp";
/// What happened: `job.succeeded`, `job.failed` or `job.cancelled`.
pub const EVENT: &str = "docconv-event";

/// The signing key. Never shown: its `Debug` says only that it is there.
#[derive(Clone)]
pub struct Secret(hmac::Key);

impl Secret {
    /// A key from the secret's bytes; `None` for an empty secret.
    pub fn new(secret: &[u8]) -> Option<Secret> {
        (!secret.is_empty()).then(|| Secret(hmac::Key::new(hmac::HMAC_SHA256, secret)))
    }

    /// The `Docconv-Signature` value for `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        format!("sha256={}", docconv::ids::hex(hmac::sign(&self.0, body).as_ref()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        let secret = Secret::new(b"Jefe").unwrap();
        assert_eq!(
            secret.sign(b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(Secret::new(b"").is_none());
        assert_eq!(format!("{secret:?}"), "Secret(…)");
    }
}
