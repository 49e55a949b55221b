//! Sealing secrets at rest: XChaCha20-Poly1305 under a 32-byte server key.
//!
//! The key comes from `HOOKLINE_SECRET_KEY` (base64), or from
//! `<data dir>/secret.key`, which is generated once (mode 0600) with a
//! warning when neither exists. Every sealed value records the id of the key
//! that sealed it (the first 8 hex digits of the key's SHA-256), so keys can
//! be rotated later without ambiguity.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hookline_application::ports::SecretCipher;
use hookline_application::AppError;
use hookline_domain::Sealed;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub const ALG: &str = "xchacha20poly1305";
pub const KEY_FILE: &str = "secret.key";

pub struct XChaChaCipher {
    key_id: String,
    aead: XChaCha20Poly1305,
    /// A key for message authentication, derived from the server key
    /// (never the server key itself).
    mac_key: [u8; 32],
}

impl fmt::Debug for XChaChaCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "XChaChaCipher(key {})", self.key_id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("HOOKLINE_SECRET_KEY must be base64 of exactly 32 bytes (e.g. from `openssl rand -base64 32`)")]
    Malformed,
    #[error("cannot use the key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the key file {0} does not hold base64 of exactly 32 bytes (a damaged file: restore it from its backup, or give the key as HOOKLINE_SECRET_KEY)")]
    MalformedFile(String),
}

/// The key a key file holds.
fn key_of_file(path: &Path, text: &str) -> Result<XChaChaCipher, KeyError> {
    XChaChaCipher::from_base64(text)
        .map_err(|_| KeyError::MalformedFile(path.display().to_string()))
}

impl XChaChaCipher {
    /// # Errors
    /// [`KeyError::Malformed`] unless `b64` decodes to 32 bytes.
    pub fn from_base64(b64: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD
            .decode(b64.trim())
            .map_err(|_| KeyError::Malformed)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Malformed)?;
        Ok(Self::from_bytes(&key))
    }

    pub fn from_bytes(key: &[u8; 32]) -> Self {
        let key_id = hex::encode(&Sha256::digest(key)[..4]);
        let mut derive = Sha256::new();
        derive.update(b"hookline:mac-key:v1:");
        derive.update(key);
        Self {
            key_id,
            aead: XChaCha20Poly1305::new(key.into()),
            mac_key: derive.finalize().into(),
        }
    }

    /// A signer with a key derived from this server key.
    pub fn signer(&self) -> HmacSigner {
        HmacSigner { key: self.mac_key }
    }

    /// The configured key, or the data directory's key file (created on
    /// first use).
    ///
    /// # Errors
    /// A malformed key, or a key file that cannot be read or written.
    pub fn load_or_create(configured: Option<&str>, data_dir: &Path) -> Result<Self, KeyError> {
        if let Some(b64) = configured {
            return Self::from_base64(b64);
        }
        let path = data_dir.join(KEY_FILE);
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        if let Ok(text) = std::fs::read_to_string(&path) {
            return key_of_file(&path, &text);
        }
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        // Written whole under another name, then linked into place: a kill
        // at any moment leaves either no key file or a whole one (never an
        // empty file), and of two processes starting at once one links its
        // key and the other reads it.
        let mut nonce = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let staging = data_dir.join(format!(".{KEY_FILE}.{}", hex::encode(nonce)));
        let encoded = STANDARD.encode(key);
        let write_new = |at: &Path| -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(at)?;
            file.write_all(encoded.as_bytes())?;
            file.sync_all()
        };
        let written = write_new(&staging).and_then(|()| {
            match std::fs::hard_link(&staging, &path) {
                // A file system without hard links (some network shares):
                // written in place, as whole as the file system allows.
                Err(e)
                    if e.kind() != std::io::ErrorKind::AlreadyExists
                        && e.kind() != std::io::ErrorKind::NotFound =>
                {
                    write_new(&path)
                }
                other => other,
            }
        });
        let _ = std::fs::remove_file(&staging);
        match written {
            Ok(()) => {
                if let Ok(dir) = std::fs::File::open(data_dir) {
                    let _ = dir.sync_all();
                }
                tracing::warn!(
                    path = %path.display(),
                    "no HOOKLINE_SECRET_KEY given: generated a secret key file; back it up, \
                     subscription secrets cannot be read without it"
                );
                Ok(Self::from_bytes(&key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(&path).map_err(io)?;
                key_of_file(&path, &text)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The configured key, or the data directory's key file if there is
    /// one (never created: for commands that seal nothing).
    ///
    /// # Errors
    /// A malformed key, or a key file that cannot be read.
    pub fn load_existing(
        configured: Option<&str>,
        data_dir: &Path,
    ) -> Result<Option<Self>, KeyError> {
        if let Some(b64) = configured {
            return Self::from_base64(b64).map(Some);
        }
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => key_of_file(&path, &text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(KeyError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

/// Stands in for the cipher where no secret key exists yet: anything that
/// would seal or open a secret fails with a clear message.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKey;

impl SecretCipher for NoKey {
    fn seal(&self, _plaintext: &[u8], _context: &str) -> Result<Sealed, AppError> {
        Err(AppError::Unavailable(
            "no secret key: set HOOKLINE_SECRET_KEY or start the server once to create one".into(),
        ))
    }

    fn open(&self, _sealed: &Sealed, _context: &str) -> Result<Vec<u8>, AppError> {
        self.seal(&[], "").map(|_| Vec::new())
    }
}

impl SecretCipher for XChaChaCipher {
    fn seal(&self, plaintext: &[u8], context: &str) -> Result<Sealed, AppError> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .aead
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| AppError::Internal("sealing failed".into()))?;
        Ok(Sealed {
            alg: ALG.to_string(),
            key_id: self.key_id.clone(),
            nonce: STANDARD.encode(nonce),
            ciphertext: STANDARD.encode(ciphertext),
        })
    }

    fn open(&self, sealed: &Sealed, context: &str) -> Result<Vec<u8>, AppError> {
        if sealed.alg != ALG || sealed.key_id != self.key_id {
            return Err(AppError::Internal(format!(
                "a secret was sealed with key '{}' ({}), but this server has key '{}': \
                 configure the same HOOKLINE_SECRET_KEY on every Hookline process",
                sealed.key_id, sealed.alg, self.key_id
            )));
        }
        let nonce = STANDARD
            .decode(&sealed.nonce)
            .ok()
            .filter(|n| n.len() == 24)
            .ok_or_else(|| AppError::Internal("sealed value has a malformed nonce".into()))?;
        let ciphertext = STANDARD
            .decode(&sealed.ciphertext)
            .map_err(|_| AppError::Internal("sealed value has malformed ciphertext".into()))?;
        self.aead
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| AppError::Internal("a sealed value failed authentication (altered, or bound to another subscription)".into()))
    }
}

/// HMAC-SHA256 tags under a key derived from the server key (portal
/// links).
pub struct HmacSigner {
    key: [u8; 32],
}

impl fmt::Debug for HmacSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSigner")
    }
}

type HmacSha256 = hmac::Hmac<Sha256>;

impl HmacSigner {
    fn mac(&self, message: &[u8]) -> Result<HmacSha256, AppError> {
        use hmac::Mac;
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .map_err(|e| AppError::Internal(format!("HMAC key: {e}")))?;
        mac.update(message);
        Ok(mac)
    }
}

impl hookline_application::ports::LinkSigner for HmacSigner {
    fn sign(&self, message: &[u8]) -> Result<[u8; 32], AppError> {
        use hmac::Mac;
        Ok(self.mac(message)?.finalize().into_bytes().into())
    }

    fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        use hmac::Mac;
        self.mac(message)
            .map(|m| m.verify_slice(tag).is_ok())
            .unwrap_or(false)
    }
}

impl hookline_application::ports::LinkSigner for NoKey {
    fn sign(&self, _message: &[u8]) -> Result<[u8; 32], AppError> {
        Err(AppError::Unavailable(
            "no secret key: set HOOKLINE_SECRET_KEY or start the server once to create one".into(),
        ))
    }

    fn verify(&self, _message: &[u8], _tag: &[u8]) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_bound_to_context() {
        let c = XChaChaCipher::from_bytes(&[9u8; 32]);
        let s = c.seal(b"whsec_abc", "sub:1").unwrap();
        assert!(!s.ciphertext.contains("whsec"));
        assert_eq!(c.open(&s, "sub:1").unwrap(), b"whsec_abc");
        assert!(c.open(&s, "sub:2").is_err());
        let mut tampered = s.clone();
        tampered.ciphertext = STANDARD.encode(b"garbage-garbage-garbage-garbage");
        assert!(c.open(&tampered, "sub:1").is_err());
        let other = XChaChaCipher::from_bytes(&[8u8; 32]);
        assert!(other.open(&s, "sub:1").is_err());
    }

    #[test]
    fn key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = XChaChaCipher::load_or_create(None, dir.path()).unwrap();
        let b = XChaChaCipher::load_or_create(None, dir.path()).unwrap();
        assert_eq!(a.key_id(), b.key_id());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(XChaChaCipher::from_base64("short").is_err());
        // Nothing but the key file is left in the directory.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(KEY_FILE)]);
    }

    #[test]
    fn processes_starting_at_once_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let ids: Vec<String> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    XChaChaCipher::load_or_create(None, &path)
                        .unwrap()
                        .key_id()
                        .to_string()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    }

    #[test]
    fn a_damaged_key_file_is_named_not_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), "").unwrap();
        let e = XChaChaCipher::load_or_create(None, dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains(KEY_FILE) && !e.starts_with("HOOKLINE_SECRET_KEY"),
            "{e}"
        );
        let e = XChaChaCipher::load_existing(None, dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(KEY_FILE), "{e}");
    }

    #[test]
    fn signer_tags_verify_only_under_the_same_key() {
        use hookline_application::ports::LinkSigner;
        let a = XChaChaCipher::from_bytes(&[9u8; 32]).signer();
        let b = XChaChaCipher::from_bytes(&[8u8; 32]).signer();
        let tag = a.sign(b"link").unwrap();
        assert!(a.verify(b"link", &tag));
        assert!(!a.verify(b"other", &tag));
        assert!(!b.verify(b"link", &tag));
        assert!(!a.verify(b"link", &tag[..16]));
    }
}
