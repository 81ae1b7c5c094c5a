//! rustls over the key manager: the TLS server signs its handshakes with the `Tls` role key.
//! With the TPM backend and [`TlsKeyMode::InTpm`](crate::TlsKeyMode::InTpm) that key never
//! leaves the TPM; with [`TlsKeyMode::Sealed`](crate::TlsKeyMode::Sealed) it signs in the key
//! manager's memory. The adapter is the same for both.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, SubjectPublicKeyInfoDer};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};

use crate::der::PublicKey;
use crate::{KeyManager, Role};

/// The one scheme the role keys can produce.
const SCHEME: SignatureScheme = SignatureScheme::ECDSA_NISTP256_SHA256;

/// A [`rustls::sign::SigningKey`] whose private half is the key manager's [`Role::Tls`] key.
///
/// It is pinned to the public key the role had when it was built: after
/// [`KeyManager::rotate`]`(Role::Tls)` it refuses to sign (the handshake fails) instead of
/// signing with a key that does not match the certificate. Build a new one, with the new
/// certificate, after a rotation.
///
/// Signing blocks. With [`TlsKeyMode::InTpm`](crate::TlsKeyMode::InTpm) one signature takes tens
/// of milliseconds on a hardware TPM, during which the calling thread waits, and other signers
/// (other handshakes, audit records) queue on the TPM; keep it off threads that other
/// connections need. With [`TlsKeyMode::Sealed`](crate::TlsKeyMode::Sealed) it is a software
/// signature (tens of microseconds), and several threads sign at once.
#[derive(Debug)]
pub struct TlsSigningKey {
    keys: Arc<KeyManager>,
    pinned: PublicKey,
}

impl TlsSigningKey {
    /// The signing key for the current `Tls` role key.
    pub fn new(keys: Arc<KeyManager>) -> Self {
        let pinned = keys.public_key(Role::Tls);
        Self { keys, pinned }
    }
}

impl SigningKey for TlsSigningKey {
    /// Only ECDSA P-256 with SHA-256: if the peer does not offer it, no signer.
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered.contains(&SCHEME).then(|| {
            Box::new(TlsSigner {
                keys: Arc::clone(&self.keys),
                pinned: self.pinned.clone(),
            }) as Box<dyn Signer>
        })
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(SubjectPublicKeyInfoDer::from(self.pinned.spki_der()))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ECDSA
    }
}

#[derive(Debug)]
struct TlsSigner {
    keys: Arc<KeyManager>,
    pinned: PublicKey,
}

impl Signer for TlsSigner {
    /// rustls hands over the message to sign; the key manager hashes it with SHA-256.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.keys
            .sign_pinned(Role::Tls, &self.pinned, message)
            .map_err(|e| rustls::Error::General(e.to_string()))
    }

    fn scheme(&self) -> SignatureScheme {
        SCHEME
    }
}

/// A [`CertifiedKey`] for a certificate chain whose first certificate is for the current `Tls`
/// role key; fails if it is for another key.
pub fn certified_key(
    keys: Arc<KeyManager>,
    chain: Vec<CertificateDer<'static>>,
) -> Result<CertifiedKey, rustls::Error> {
    let certified = CertifiedKey::new(chain, Arc::new(TlsSigningKey::new(keys)));
    certified.keys_match()?;
    Ok(certified)
}
