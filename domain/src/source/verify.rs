//! Verifying that an inbound webhook comes from the source's provider: each
//! kind's proof, checked over the raw bytes in constant time against every
//! secret the source accepts (the current one, and rotated-out ones while
//! their overlap lasts).

use super::values::{HeaderName, SourceKind, STANDARD_WEBHOOKS_TOLERANCE_SECS};
use crate::sealed::SigningSecret;
use crate::signature::{
    HEADER_INFLOW_SIGNATURE, HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP,
    HEADER_X_SIGNATURE,
};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Why an inbound webhook was refused: its code (recorded and answered)
/// and a sentence for the tenant. Never names a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectionReason,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectionReason {
    SignatureMissing,
    SignatureMalformed,
    SignatureInvalid,
    TimestampOutsideTolerance,
    SecretMissing,
    SecretInvalid,
}

impl RejectionReason {
    pub const ALL: [Self; 6] = [
        Self::SignatureMissing,
        Self::SignatureMalformed,
        Self::SignatureInvalid,
        Self::TimestampOutsideTolerance,
        Self::SecretMissing,
        Self::SecretInvalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignatureMissing => "signature_missing",
            Self::SignatureMalformed => "signature_malformed",
            Self::SignatureInvalid => "signature_invalid",
            Self::TimestampOutsideTolerance => "timestamp_outside_tolerance",
            Self::SecretMissing => "secret_missing",
            Self::SecretInvalid => "secret_invalid",
        }
    }
}

impl fmt::Display for RejectionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn reject(reason: RejectionReason, detail: impl Into<String>) -> Rejection {
    Rejection {
        reason,
        detail: detail.into(),
    }
}

/// What verification needs of a request: its headers (by lowercase name;
/// a value that is not visible ASCII is given as it is and fails to
/// match) and its raw body.
pub trait Headers {
    fn header(&self, name: &str) -> Option<&str>;
}

impl Headers for std::collections::HashMap<String, String> {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Headers for std::collections::BTreeMap<String, String> {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// The secrets a source accepts right now and where its secret header is.
#[derive(Clone)]
pub struct Verifier {
    kind: SourceKind,
    header_name: Option<HeaderName>,
    /// Current first, then rotated-out ones still in their overlap.
    secrets: Vec<SigningSecret>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("kind", &self.kind)
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Verifier {
    pub fn new(
        kind: SourceKind,
        header_name: Option<HeaderName>,
        secrets: Vec<SigningSecret>,
    ) -> Self {
        Self {
            kind,
            header_name,
            secrets,
        }
    }

    pub fn kind(&self) -> SourceKind {
        self.kind
    }

    /// Checks the request's proof; `now` (unix seconds) bounds Standard
    /// Webhooks timestamps.
    ///
    /// # Errors
    /// The [`Rejection`]: what is missing, malformed or does not match.
    pub fn verify(&self, headers: &dyn Headers, body: &[u8], now: i64) -> Result<(), Rejection> {
        match self.kind {
            SourceKind::Inflow => self.body_hmac(
                headers,
                body,
                HEADER_INFLOW_SIGNATURE,
                |v| decode_base64(v.trim()),
                "base64",
            ),
            SourceKind::HmacSha256Hex => self.body_hmac(
                headers,
                body,
                HEADER_X_SIGNATURE,
                |v| {
                    let v = v.trim();
                    let hex_part = v
                        .get(..7)
                        .filter(|p| p.eq_ignore_ascii_case("sha256="))
                        .map_or(v, |_| &v[7..]);
                    hex::decode(hex_part).ok()
                },
                "sha256=<hex>",
            ),
            SourceKind::StandardWebhooks => self.standard_webhooks(headers, body, now),
            SourceKind::Siigo | SourceKind::HeaderSecret => self.header_secret(headers),
        }
    }

    /// A body-only HMAC in `header`, keyed with the secret's text.
    fn body_hmac(
        &self,
        headers: &dyn Headers,
        body: &[u8],
        header: &str,
        decode: impl Fn(&str) -> Option<Vec<u8>>,
        form: &str,
    ) -> Result<(), Rejection> {
        let value = headers.header(header).ok_or_else(|| {
            reject(
                RejectionReason::SignatureMissing,
                format!("the {header} header is missing"),
            )
        })?;
        let given = decode(value).ok_or_else(|| {
            reject(
                RejectionReason::SignatureMalformed,
                format!("the {header} header is not {form}"),
            )
        })?;
        for secret in &self.secrets {
            let mut mac = hmac_for(secret.raw_key());
            mac.update(body);
            if mac.verify_slice(&given).is_ok() {
                return Ok(());
            }
        }
        Err(reject(
            RejectionReason::SignatureInvalid,
            format!("the {header} signature does not match the body under this source's secret"),
        ))
    }

    fn standard_webhooks(
        &self,
        headers: &dyn Headers,
        body: &[u8],
        now: i64,
    ) -> Result<(), Rejection> {
        // Svix sends the same headers under its own prefix.
        let either = |name: &str, svix: &str| headers.header(name).or_else(|| headers.header(svix));
        let (Some(id), Some(timestamp), Some(signatures)) = (
            either(HEADER_WEBHOOK_ID, "svix-id"),
            either(HEADER_WEBHOOK_TIMESTAMP, "svix-timestamp"),
            either(HEADER_WEBHOOK_SIGNATURE, "svix-signature"),
        ) else {
            return Err(reject(
                RejectionReason::SignatureMissing,
                "Standard Webhooks needs the webhook-id, webhook-timestamp and webhook-signature headers",
            ));
        };
        let ts: i64 = timestamp.trim().parse().map_err(|_| {
            reject(
                RejectionReason::SignatureMalformed,
                "webhook-timestamp is not a whole number of seconds since 1970",
            )
        })?;
        // Any i64 may come in: the difference is taken without overflow.
        let skew = now.abs_diff(ts);
        if skew > STANDARD_WEBHOOKS_TOLERANCE_SECS.unsigned_abs() {
            return Err(reject(
                RejectionReason::TimestampOutsideTolerance,
                format!(
                    "webhook-timestamp is {skew} s from Hookline's clock; at most {STANDARD_WEBHOOKS_TOLERANCE_SECS} s are accepted (a replayed or delayed request)"
                ),
            ));
        }
        let candidates: Vec<Vec<u8>> = signatures
            .split(' ')
            .filter_map(|part| part.strip_prefix("v1,"))
            .filter_map(decode_base64)
            .collect();
        if candidates.is_empty() {
            return Err(reject(
                RejectionReason::SignatureMalformed,
                "webhook-signature holds no v1,<base64> signature",
            ));
        }
        for secret in &self.secrets {
            let mut mac = hmac_for(&secret.standard_webhooks_key());
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.as_bytes());
            mac.update(b".");
            mac.update(body);
            let expected = mac.finalize().into_bytes();
            let mut found = subtle::Choice::from(0u8);
            for c in &candidates {
                // Lengths are public (32 bytes); the content is compared
                // in constant time.
                if c.len() == expected.len() {
                    found |= expected.as_slice().ct_eq(c);
                }
            }
            if bool::from(found) {
                return Ok(());
            }
        }
        Err(reject(
            RejectionReason::SignatureInvalid,
            "no webhook-signature matches the body under this source's secret",
        ))
    }

    fn header_secret(&self, headers: &dyn Headers) -> Result<(), Rejection> {
        let name = self.header_name.as_ref().map_or("", HeaderName::as_str);
        let value = headers.header(name).ok_or_else(|| {
            reject(
                RejectionReason::SecretMissing,
                format!("the {name} header that carries this source's secret is missing"),
            )
        })?;
        // Digests first, so neither the content nor the length of the
        // secret shows in the comparison's timing.
        let given = Sha256::digest(value.as_bytes());
        let mut found = subtle::Choice::from(0u8);
        for secret in &self.secrets {
            found |= Sha256::digest(secret.expose().as_bytes())
                .as_slice()
                .ct_eq(given.as_slice());
        }
        if bool::from(found) {
            Ok(())
        } else {
            Err(reject(
                RejectionReason::SecretInvalid,
                format!("the {name} header does not hold this source's secret"),
            ))
        }
    }
}

fn hmac_for(key: &[u8]) -> HmacSha256 {
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length.
        Err(_) => unreachable_hmac(),
    }
}

#[cold]
fn unreachable_hmac() -> ! {
    panic!("HMAC-SHA256 rejected a key; HMAC accepts keys of any length")
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(s)
        .or_else(|_| STANDARD_NO_PAD.decode(s))
        .ok()
}

/// A body's SHA-256, hex (rejections record it instead of the body).
pub fn body_sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{SignatureScheme, SigningKey};
    use std::collections::HashMap;

    fn headers(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn check(
        v: &Verifier,
        h: &HashMap<String, String>,
        body: &[u8],
        now: i64,
    ) -> Result<(), RejectionReason> {
        v.verify(h, body, now).map_err(|r| r.reason)
    }

    fn secret(s: &str) -> SigningSecret {
        SigningSecret::parse(s).unwrap()
    }

    #[test]
    fn inflow_base64_hmac_keyed_with_the_secret_text() {
        let s = secret("c2VjcmV0LWtleS1iYXNlNjQ=");
        let body = br#"{"event":"salesOrder.updated","data":{"salesOrderId":"1"}}"#;
        let sig = SigningKey::new(SignatureScheme::HmacSha256Base64, &s).sign("", 0, body);
        let v = Verifier::new(SourceKind::Inflow, None, vec![s]);
        assert_eq!(
            check(&v, &headers(&[("x-inflow-hmac-sha256", &sig)]), body, 0),
            Ok(())
        );
        assert_eq!(
            check(&v, &headers(&[("x-inflow-hmac-sha256", &sig)]), b"{}", 0),
            Err(RejectionReason::SignatureInvalid)
        );
        assert_eq!(
            check(&v, &headers(&[("x-inflow-hmac-sha256", "***")]), body, 0),
            Err(RejectionReason::SignatureMalformed)
        );
        assert_eq!(
            check(&v, &headers(&[]), body, 0),
            Err(RejectionReason::SignatureMissing)
        );
    }

    #[test]
    fn hex_accepts_with_and_without_prefix_and_any_overlapping_secret() {
        let old = secret("old-secret-123");
        let new = secret("new-secret-456");
        let body = b"{}";
        let sig = SigningKey::new(SignatureScheme::HmacSha256Hex, &old).sign("", 0, body);
        let v = Verifier::new(SourceKind::HmacSha256Hex, None, vec![new, old]);
        assert_eq!(
            check(&v, &headers(&[("x-signature", &sig)]), body, 0),
            Ok(())
        );
        assert_eq!(
            check(&v, &headers(&[("x-signature", &sig[7..])]), body, 0),
            Ok(())
        );
        assert_eq!(
            check(&v, &headers(&[("x-signature", "sha256=zz")]), body, 0),
            Err(RejectionReason::SignatureMalformed)
        );
    }

    #[test]
    fn standard_webhooks_vector_tolerance_and_svix_prefix() {
        let s = secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = br#"{"test": 2432232314}"#;
        let v = Verifier::new(SourceKind::StandardWebhooks, None, vec![s]);
        let good = [
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            (
                "webhook-signature",
                "v1,bm90LWl0 v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
        ];
        assert_eq!(
            check(&v, &headers(&good), body, 1_614_265_330 + 299),
            Ok(())
        );
        assert_eq!(
            check(&v, &headers(&good), body, 1_614_265_330 + 301),
            Err(RejectionReason::TimestampOutsideTolerance)
        );
        // Timestamps at the ends of i64 are refused, not an overflow.
        for far in ["-9223372036854775808", "9223372036854775807"] {
            let mut extreme = good;
            extreme[1].1 = far;
            assert_eq!(
                check(&v, &headers(&extreme), body, 1_614_265_330),
                Err(RejectionReason::TimestampOutsideTolerance)
            );
        }
        let svix: Vec<(&str, &str)> = good
            .iter()
            .map(|(k, v)| (if *k == "webhook-id" { "svix-id" } else { *k }, *v))
            .collect();
        assert_eq!(check(&v, &headers(&svix), body, 1_614_265_330), Ok(()));
        let mut bad = good;
        bad[2].1 = "v2,abc";
        assert_eq!(
            check(&v, &headers(&bad), body, 1_614_265_330),
            Err(RejectionReason::SignatureMalformed)
        );
        bad[1].1 = "soon";
        assert_eq!(
            check(&v, &headers(&bad), body, 1_614_265_330),
            Err(RejectionReason::SignatureMalformed)
        );
        assert_eq!(
            check(&v, &headers(&good[..2]), body, 1_614_265_330),
            Err(RejectionReason::SignatureMissing)
        );
    }

    #[test]
    fn header_secret() {
        let v = Verifier::new(
            SourceKind::HeaderSecret,
            Some(HeaderName::parse("X-Siigo-Secret", "h").unwrap()),
            vec![secret("shared-secret")],
        );
        assert_eq!(
            check(
                &v,
                &headers(&[("x-siigo-secret", "shared-secret")]),
                b"x",
                0
            ),
            Ok(())
        );
        assert_eq!(
            check(&v, &headers(&[("x-siigo-secret", "shared-secre")]), b"x", 0),
            Err(RejectionReason::SecretInvalid)
        );
        assert_eq!(
            check(&v, &headers(&[]), b"x", 0),
            Err(RejectionReason::SecretMissing)
        );
    }
}
