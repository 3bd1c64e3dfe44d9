//! Secrets at rest: XChaCha20-Poly1305 with a key derived (HKDF-SHA256) from
//! the application's secret key, and SHA-256 for values that only need to be
//! recognised (session cookies, OAuth states).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use hirecj_domain::Secret;
use sha2::{Digest, Sha256};

const VERSION_PREFIX: &str = "v1:";
const NONCE_LEN: usize = 24;

/// Encrypts and decrypts stored secrets. Cheap to clone.
#[derive(Clone)]
pub struct Cipher {
    aead: XChaCha20Poly1305,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(***)")
    }
}

/// A stored secret could not be decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not decrypt a stored secret")]
pub struct DecryptError;

impl Cipher {
    /// Derives the encryption key from the application's secret key.
    pub fn from_secret_key(secret_key: &[u8]) -> Self {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"hirecj"), secret_key);
        let mut okm = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit of 255 * 32.
        if hk.expand(b"token-encryption-v1", &mut okm).is_err() {
            unreachable!("HKDF output length is valid");
        }
        Self {
            aead: XChaCha20Poly1305::new(Key::from_slice(&okm)),
        }
    }

    /// `v1:` + base64(nonce ‖ ciphertext). A fresh random nonce every time.
    pub fn encrypt(&self, plaintext: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let Ok(ciphertext) = self.aead.encrypt(&nonce, plaintext.as_bytes()) else {
            unreachable!("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        };
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        format!("{VERSION_PREFIX}{}", B64.encode(out))
    }

    pub fn decrypt(&self, stored: &str) -> Result<Secret, DecryptError> {
        let encoded = stored.strip_prefix(VERSION_PREFIX).ok_or(DecryptError)?;
        let bytes = B64.decode(encoded).map_err(|_| DecryptError)?;
        if bytes.len() < NONCE_LEN {
            return Err(DecryptError);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plain = self
            .aead
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| DecryptError)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| DecryptError)
    }
}

/// Lower-case hex SHA-256, for values stored only to be recognised later.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A random URL-safe token with 256 bits of entropy.
pub fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let c = Cipher::from_secret_key(b"0123456789abcdef0123456789abcdef");
        let sealed = c.encrypt("shpat_abc");
        assert!(!sealed.contains("shpat_abc"));
        assert_ne!(sealed, c.encrypt("shpat_abc"), "nonces are fresh");
        assert_eq!(c.decrypt(&sealed).unwrap().expose(), "shpat_abc");

        let other = Cipher::from_secret_key(b"another key entirely, 32 bytes!!");
        assert_eq!(other.decrypt(&sealed), Err(DecryptError));
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push('A');
        assert!(c.decrypt(&tampered).is_err() || tampered == sealed);
        assert_eq!(c.decrypt("plain"), Err(DecryptError));
        assert_eq!(c.decrypt("v1:!!"), Err(DecryptError));
    }

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        assert_ne!(random_token(), random_token());
        assert_eq!(hash_token("a"), hash_token("a"));
        assert_eq!(hash_token("a").len(), 64);
    }
}
