//! An ECDSA P-256 key that signs in this process with ring: every role key of the soft backend,
//! and the TLS key of the TPM backend with [`TlsKeyMode::Sealed`](crate::TlsKeyMode::Sealed).
//!
//! Its PKCS#8 document passes only through [`SecretBytes`] (a locked page, zeroized on drop).
//! ring's parsed `EcdsaKeyPair` (the private scalar and the nonce key derived from it) is kept in
//! a heap page of its own, locked into RAM the same way, so it is never swapped out. ring offers
//! no way to zeroize it: when the key is dropped (a rotation, the end of the process) the page
//! returns to the allocator as it is. Two more copies are outside the locked pages and not
//! zeroized: the `Document` that ring's key generation returns (on the stack for one call) and
//! ring's intermediate values while it signs.

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

use crate::Role;
use crate::der::PublicKey;
use crate::error::KeyError;
use crate::secret::{self, SECRET_CAPACITY, SecretBytes};

/// ring's key pair alone in a page-aligned, page-sized allocation: an exclusive page, which can
/// be locked and unlocked without touching another allocation's.
#[repr(C, align(4096))]
struct PairPage(EcdsaKeyPair);

const _: () = assert!(size_of::<PairPage>() == SECRET_CAPACITY);

/// An ECDSA P-256 key pair in this process's locked memory.
pub(crate) struct ProcessKey {
    /// Held for its drop, which unlocks the page. Declared before `page`: fields drop in order,
    /// so the page is unlocked before it is freed (and possibly handed to another allocation).
    _lock: Option<region::LockGuard>,
    page: Box<PairPage>,
    key: PublicKey,
    rng: SystemRandom,
}

impl ProcessKey {
    /// A new PKCS#8 document (ECDSA P-256), from the operating system's generator.
    pub(crate) fn generate_pkcs8() -> Result<SecretBytes, KeyError> {
        let document =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .map_err(|_| KeyError::Crypto("ECDSA key generation"))?;
        Ok(SecretBytes::copy_from(document.as_ref()))
    }

    /// Parses a PKCS#8 document; `None` if it is not an ECDSA P-256 key.
    pub(crate) fn from_pkcs8(pkcs8: &[u8]) -> Option<Self> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &rng).ok()?;
        let key = PublicKey::from_point(pair.public_key().as_ref())?;
        let page = Box::new(PairPage(pair));
        let lock = secret::lock_page(std::ptr::from_ref(&*page).cast::<u8>());
        Some(Self {
            _lock: lock,
            page,
            key,
            rng,
        })
    }

    /// The public key.
    pub(crate) fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// Whether the key pair's page is locked into RAM.
    #[cfg(test)]
    fn is_locked(&self) -> bool {
        self._lock.is_some() || region::page::size() > SECRET_CAPACITY
    }

    /// Signs `message` (hashed here with SHA-256) as `role`'s key, DER-encoded; with `expected`,
    /// only if this is that key.
    pub(crate) fn sign(
        &self,
        role: Role,
        message: &[u8],
        expected: Option<&PublicKey>,
    ) -> Result<Vec<u8>, KeyError> {
        if expected.is_some_and(|expected| *expected != self.key) {
            return Err(KeyError::KeyRotated { role });
        }
        let signature = self
            .page
            .0
            .sign(&self.rng, message)
            .map_err(|_| KeyError::Crypto("ECDSA signing"))?;
        Ok(signature.as_ref().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

    use super::*;

    #[test]
    fn signs_verifiably_from_a_locked_page() {
        let pkcs8 = ProcessKey::generate_pkcs8().expect("generate");
        let key = ProcessKey::from_pkcs8(pkcs8.as_bytes()).expect("parse");
        assert!(key.is_locked());
        assert_eq!(std::ptr::from_ref(&*key.page) as usize % SECRET_CAPACITY, 0);
        let signature = key.sign(Role::Tls, b"hello", None).expect("sign");
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.public_key().point())
            .verify(b"hello", &signature)
            .expect("verifies");
        let other =
            ProcessKey::from_pkcs8(ProcessKey::generate_pkcs8().expect("generate").as_bytes())
                .expect("parse");
        assert!(matches!(
            key.sign(Role::Tls, b"hello", Some(other.public_key())),
            Err(KeyError::KeyRotated { role: Role::Tls })
        ));
        assert!(ProcessKey::from_pkcs8(b"not a key").is_none());
    }
}
