//! Wrapping data keys under the storage secret.
//!
//! The storage secret `S` (32 bytes) never encrypts anything itself. For a label `L` the data
//! key is `K = HKDF-SHA-256(salt = "kammer-keys/v1", ikm = S, info = "wrap" || 0x00 || L)`,
//! 32 bytes, and a blob is
//!
//! ```text
//! 0x01 (format version) || nonce (12 random bytes) || AES-256-GCM(K, nonce, plaintext,
//!                                                     aad = 0x01 || L) with its 16-byte tag
//! ```
//!
//! So a blob opens only under the same storage secret *and* the same label; any changed byte,
//! another label or another secret fails authentication alike.
//!
//! Labels starting with [`RESERVED_PREFIX`] (`kammer/`) belong to the key manager itself: with
//! [`TlsKeyMode::Sealed`](crate::TlsKeyMode::Sealed) the TLS key's PKCS#8 document is wrapped
//! under `kammer/tls-key`. `KeyManager::wrap` and `unwrap` refuse such labels, so the TLS key
//! cannot be unwrapped through them.

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::KeyError;
use crate::secret::SecretBytes;

/// The longest label, in bytes.
pub const MAX_LABEL: usize = 255;
/// The largest plaintext `wrap` accepts: data keys, not data.
pub const MAX_PLAINTEXT: usize = 1024;
/// The length of the storage secret.
pub(crate) const STORAGE_SECRET_LEN: usize = 32;
/// Labels starting with this are the key manager's own: [`KeyManager::wrap`] and
/// [`KeyManager::unwrap`] refuse them.
///
/// [`KeyManager::wrap`]: crate::KeyManager::wrap
/// [`KeyManager::unwrap`]: crate::KeyManager::unwrap
pub const RESERVED_PREFIX: &str = "kammer/";
/// The label of the TLS key's PKCS#8 document with [`TlsKeyMode::Sealed`](crate::TlsKeyMode).
pub(crate) const TLS_KEY_LABEL: &str = "kammer/tls-key";

const VERSION: u8 = 1;
const SALT: &[u8] = b"kammer-keys/v1";
const NONCE_LEN: usize = aead::NONCE_LEN;
const TAG_LEN: usize = 16;

/// Derives the data key for `label`; its bytes pass through a locked, zeroized buffer.
///
/// ring's HKDF and AES-GCM keep their internal state (the HKDF PRK, the AES round keys) in
/// their own structures, which ring does not zeroize: they live on the stack for the length of
/// one call.
fn data_key(storage_secret: &SecretBytes, label: &str) -> Result<LessSafeKey, KeyError> {
    check_label(label)?;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(storage_secret.as_bytes());
    let info = [b"wrap\0".as_slice(), label.as_bytes()];
    let okm = prk
        .expand(&info, &aead::AES_256_GCM)
        .map_err(|_| KeyError::Crypto("HKDF expand"))?;
    let mut key = SecretBytes::zeroed(32);
    okm.fill(key.as_mut_bytes())
        .map_err(|_| KeyError::Crypto("HKDF fill"))?;
    let key = UnboundKey::new(&aead::AES_256_GCM, key.as_bytes())
        .map_err(|_| KeyError::Crypto("AES-256-GCM key"))?;
    Ok(LessSafeKey::new(key))
}

pub(crate) fn check_label(label: &str) -> Result<(), KeyError> {
    if label.is_empty() || label.len() > MAX_LABEL {
        return Err(KeyError::Label { max: MAX_LABEL });
    }
    Ok(())
}

/// Checks a label a caller of the key manager gave: valid, and not one of the manager's own.
pub(crate) fn check_caller_label(label: &str) -> Result<(), KeyError> {
    check_label(label)?;
    if label.starts_with(RESERVED_PREFIX) {
        return Err(KeyError::ReservedLabel {
            prefix: RESERVED_PREFIX,
        });
    }
    Ok(())
}

fn aad(label: &str) -> Aad<Vec<u8>> {
    let mut aad = Vec::with_capacity(1 + label.len());
    aad.push(VERSION);
    aad.extend_from_slice(label.as_bytes());
    Aad::from(aad)
}

/// Encrypts `plaintext` for `label` under the storage secret.
pub(crate) fn wrap(
    storage_secret: &SecretBytes,
    label: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, KeyError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(KeyError::TooLarge {
            what: "the plaintext to wrap",
            max: MAX_PLAINTEXT,
        });
    }
    let key = data_key(storage_secret, label)?;
    let mut nonce = [0; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| KeyError::Crypto("random nonce"))?;
    let mut blob = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
    blob.push(VERSION);
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(plaintext);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            aad(label),
            &mut blob[1 + NONCE_LEN..],
        )
        .map_err(|_| KeyError::Crypto("AES-256-GCM seal"))?;
    blob.extend_from_slice(tag.as_ref());
    Ok(blob)
}

/// Decrypts a blob made by [`wrap`] for the same label under the same storage secret. The
/// plaintext is decrypted in place inside a locked page.
pub(crate) fn unwrap(
    storage_secret: &SecretBytes,
    label: &str,
    blob: &[u8],
) -> Result<SecretBytes, KeyError> {
    let key = data_key(storage_secret, label)?;
    let Some((&VERSION, rest)) = blob.split_first() else {
        return Err(KeyError::Unwrap);
    };
    if rest.len() < NONCE_LEN + TAG_LEN || rest.len() > NONCE_LEN + MAX_PLAINTEXT + TAG_LEN {
        return Err(KeyError::Unwrap);
    }
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Unwrap)?;
    let mut buffer = SecretBytes::copy_from(sealed);
    let plaintext_len = key
        .open_in_place(nonce, aad(label), buffer.as_mut_bytes())
        .map_err(|_| KeyError::Unwrap)?
        .len();
    buffer.truncate(plaintext_len);
    Ok(buffer)
}

/// Checks a blob's size before the storage secret is unsealed for it (an unseal is a slow TPM
/// round trip; a blob that cannot open should not cost one).
pub(crate) fn precheck(label: &str, blob: &[u8]) -> Result<(), KeyError> {
    check_label(label)?;
    match blob.split_first() {
        Some((&VERSION, rest))
            if rest.len() >= NONCE_LEN + TAG_LEN
                && rest.len() <= NONCE_LEN + MAX_PLAINTEXT + TAG_LEN =>
        {
            Ok(())
        }
        _ => Err(KeyError::Unwrap),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> SecretBytes {
        SecretBytes::copy_from(&[byte; STORAGE_SECRET_LEN])
    }

    #[test]
    fn round_trip() {
        let blob = wrap(&secret(1), "recording/1", b"data key").expect("wrap");
        assert_eq!(blob.len(), 1 + 12 + 8 + 16);
        let plain = unwrap(&secret(1), "recording/1", &blob).expect("unwrap");
        assert_eq!(plain.as_bytes(), b"data key");
        let empty = wrap(&secret(1), "l", b"").expect("wrap");
        assert!(unwrap(&secret(1), "l", &empty).expect("unwrap").is_empty());
    }

    #[test]
    fn every_change_fails() {
        let blob = wrap(&secret(1), "a", b"data key").expect("wrap");
        assert!(matches!(
            unwrap(&secret(1), "b", &blob),
            Err(KeyError::Unwrap)
        ));
        assert!(matches!(
            unwrap(&secret(2), "a", &blob),
            Err(KeyError::Unwrap)
        ));
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 1;
            assert!(
                matches!(unwrap(&secret(1), "a", &bad), Err(KeyError::Unwrap)),
                "byte {i}"
            );
        }
        assert!(matches!(
            unwrap(&secret(1), "a", &blob[..20]),
            Err(KeyError::Unwrap)
        ));
        assert!(matches!(
            unwrap(&secret(1), "a", &[]),
            Err(KeyError::Unwrap)
        ));
    }

    #[test]
    fn reserved_labels_are_refused_to_callers() {
        assert!(check_caller_label("recording/1").is_ok());
        assert!(matches!(
            check_caller_label(TLS_KEY_LABEL),
            Err(KeyError::ReservedLabel { prefix: "kammer/" })
        ));
        assert!(matches!(
            check_caller_label(""),
            Err(KeyError::Label { .. })
        ));
        assert!(check_label(TLS_KEY_LABEL).is_ok());
    }

    #[test]
    fn limits() {
        assert!(matches!(
            wrap(&secret(1), "", b"x"),
            Err(KeyError::Label { .. })
        ));
        let long = "x".repeat(MAX_LABEL + 1);
        assert!(matches!(
            wrap(&secret(1), &long, b"x"),
            Err(KeyError::Label { .. })
        ));
        let big = vec![0; MAX_PLAINTEXT + 1];
        assert!(matches!(
            wrap(&secret(1), "a", &big),
            Err(KeyError::TooLarge { .. })
        ));
        let max = wrap(&secret(1), "a", &big[1..]).expect("wrap");
        assert!(precheck("a", &max).is_ok());
        assert_eq!(
            unwrap(&secret(1), "a", &max).expect("unwrap").len(),
            MAX_PLAINTEXT
        );
    }
}
