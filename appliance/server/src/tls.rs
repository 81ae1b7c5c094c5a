//! The TLS policy: BSI TR-02102-2 as an explicit rustls `CryptoProvider`.
//!
//! * TLS 1.3 with `TLS_AES_128_GCM_SHA256` and `TLS_AES_256_GCM_SHA384`;
//! * TLS 1.2 only when enabled, and then only ECDHE-ECDSA with AES-GCM;
//! * key exchange on secp256r1 and secp384r1 only (no X25519), no ChaCha20-Poly1305;
//! * the server's order of preference wins; session tickets are not issued.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::{Signer, SigningKey};
use rustls::{ServerConfig, SignatureScheme, SupportedCipherSuite, version};

use crate::ipc::{self, KeyReply, KeyRequest};

/// Whether TLS 1.2 is accepted besides TLS 1.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls12 {
    /// TLS 1.3 only (the default).
    Refused,
    /// TLS 1.2 with ECDHE-ECDSA and AES-GCM, for clients that cannot do 1.3.
    Allowed,
}

/// Could not build the TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or contains nothing usable.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the combination (for example a key that does not match the certificate).
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The restricted provider. Every field of ring's provider is named, so that a new field in a
/// future rustls forces a review here.
pub fn provider(tls12: Tls12) -> CryptoProvider {
    let CryptoProvider {
        cipher_suites: _,
        kx_groups: _,
        signature_verification_algorithms,
        secure_random,
        key_provider,
    } = ring::default_provider();
    let mut cipher_suites: Vec<SupportedCipherSuite> = vec![
        ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
        ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
    ];
    if tls12 == Tls12::Allowed {
        cipher_suites.extend([
            ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ]);
    }
    CryptoProvider {
        cipher_suites,
        kx_groups: vec![ring::kx_group::SECP384R1, ring::kx_group::SECP256R1],
        signature_verification_algorithms,
        secure_random,
        key_provider,
    }
}

fn pem_error(path: &Path, reason: String) -> TlsError {
    TlsError::Pem {
        path: path.display().to_string(),
        reason,
    }
}

/// Reads a PEM certificate chain (the server's certificate first).
pub fn load_chain(chain_pem: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(chain_pem)
        .map_err(|e| pem_error(chain_pem, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_error(chain_pem, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem_error(chain_pem, "contains no certificate".into()));
    }
    Ok(chain)
}

/// Builds the server configuration for a key that signs elsewhere (the key manager): the
/// certificate must be for that key.
pub fn server_config_with_key(
    certified: rustls::sign::CertifiedKey,
    tls12: Tls12,
) -> Result<Arc<ServerConfig>, TlsError> {
    if certified.key.algorithm() != rustls::SignatureAlgorithm::ECDSA {
        return Err(TlsError::Rustls(rustls::Error::General(
            "the TLS policy needs an ECDSA key on P-256 or P-384".to_owned(),
        )));
    }
    let provider = Arc::new(provider(tls12));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions(tls12))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    restrict(&mut config);
    Ok(Arc::new(config))
}

const TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&version::TLS13];
const TLS13_AND_12: &[&rustls::SupportedProtocolVersion] = &[&version::TLS13, &version::TLS12];

fn versions(tls12: Tls12) -> &'static [&'static rustls::SupportedProtocolVersion] {
    match tls12 {
        Tls12::Refused => TLS13_ONLY,
        Tls12::Allowed => TLS13_AND_12,
    }
}

/// Builds the server configuration from a PEM certificate chain and a PEM private key.
pub fn server_config(
    chain_pem: &Path,
    key_pem: &Path,
    tls12: Tls12,
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = load_chain(chain_pem)?;
    let key = load_signing_key(key_pem)?;
    let certified = rustls::sign::CertifiedKey::new(chain, key);
    certified.keys_match()?;
    server_config_with_key(certified, tls12)
}

/// Reads a PEM private key for the TLS policy: ECDSA on P-256 or P-384 only (ring loads no
/// other curve); RSA below 3000 bits or Ed25519 fall outside TR-02102-2.
pub fn load_signing_key(key_pem: &Path) -> Result<Arc<dyn SigningKey>, TlsError> {
    let key =
        PrivateKeyDer::from_pem_file(key_pem).map_err(|e| pem_error(key_pem, e.to_string()))?;
    let signing_key = provider(Tls12::Refused)
        .key_provider
        .load_private_key(key)
        .map_err(|e| pem_error(key_pem, e.to_string()))?;
    if signing_key.algorithm() != rustls::SignatureAlgorithm::ECDSA {
        return Err(pem_error(
            key_pem,
            format!(
                "is a {:?} key; the TLS policy needs an ECDSA key on P-256 or P-384",
                signing_key.algorithm()
            ),
        ));
    }
    Ok(signing_key)
}

/// The one signature scheme an ECDSA key of the policy signs with (P-256 with SHA-256, P-384
/// with SHA-384), if it is one.
pub fn ecdsa_scheme(key: &dyn SigningKey) -> Option<SignatureScheme> {
    [
        SignatureScheme::ECDSA_NISTP256_SHA256,
        SignatureScheme::ECDSA_NISTP384_SHA384,
    ]
    .into_iter()
    .find(|scheme| key.choose_scheme(&[*scheme]).is_some())
}

/// A TLS key that another process holds (the key manager process): each handshake signature
/// is one [`KeyRequest::SignTls`] over a Unix socket, so the network worker that terminates
/// TLS never has the key. Requests are answered in order, one at a time; a signature blocks the
/// calling thread for the round trip (microseconds with a sealed key, tens of milliseconds
/// when a hardware TPM signs).
#[derive(Debug)]
pub struct RemoteTlsKey {
    link: Arc<Mutex<KeyLink>>,
    spki: Vec<u8>,
    scheme: SignatureScheme,
}

/// How long a signature may take before the handshake fails.
const REMOTE_SIGN_TIMEOUT: Duration = Duration::from_secs(5);

impl RemoteTlsKey {
    /// A key whose public half is `spki` (DER SubjectPublicKeyInfo) and which signs with
    /// `scheme` (its wire value) through `link`.
    pub fn new(link: UnixStream, spki: Vec<u8>, scheme: u16) -> std::io::Result<Self> {
        link.set_read_timeout(Some(REMOTE_SIGN_TIMEOUT))?;
        link.set_write_timeout(Some(REMOTE_SIGN_TIMEOUT))?;
        Ok(Self {
            link: Arc::new(Mutex::new(KeyLink {
                stream: link,
                next_id: 0,
            })),
            spki,
            scheme: SignatureScheme::from(scheme),
        })
    }
}

impl SigningKey for RemoteTlsKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered.contains(&self.scheme).then(|| {
            Box::new(RemoteSigner {
                link: Arc::clone(&self.link),
                scheme: self.scheme,
            }) as Box<dyn Signer>
        })
    }

    fn public_key(&self) -> Option<rustls::pki_types::SubjectPublicKeyInfoDer<'_>> {
        Some(rustls::pki_types::SubjectPublicKeyInfoDer::from(
            self.spki.as_slice(),
        ))
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::ECDSA
    }
}

/// The link to the key manager and the number of the last request on it.
#[derive(Debug)]
struct KeyLink {
    stream: UnixStream,
    next_id: u64,
}

#[derive(Debug)]
struct RemoteSigner {
    link: Arc<Mutex<KeyLink>>,
    scheme: SignatureScheme,
}

impl Signer for RemoteSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let failed = |reason: String| rustls::Error::General(format!("key manager: {reason}"));
        // A poisoned lock only means another handshake panicked mid-request: the link itself
        // stays usable, stale replies are skipped by their number.
        let mut link = self
            .link
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        link.next_id += 1;
        let id = link.next_id;
        let request = KeyRequest::SignTls {
            id,
            scheme: u16::from(self.scheme),
            message: message.to_vec(),
        };
        ipc::send(&mut link.stream, &request).map_err(|e| failed(e.to_string()))?;
        // Replies to earlier requests that timed out come first; skip them.
        loop {
            let reply: KeyReply = ipc::recv(&mut link.stream).map_err(|e| failed(e.to_string()))?;
            if reply.id() != id {
                continue;
            }
            return match reply {
                KeyReply::Signature { signature, .. } => Ok(signature),
                KeyReply::Refused { reason, .. } => Err(failed(reason)),
            };
        }
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// The settings every server configuration shares.
fn restrict(config: &mut ServerConfig) {
    config.ignore_client_order = true;
    // RFC 7627: TLS 1.2 only with the extended master secret.
    config.require_ems = true;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.send_tls13_tickets = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(
        dir: &Path,
        alg: &'static rcgen::SignatureAlgorithm,
    ) -> (std::path::PathBuf, std::path::PathBuf) {
        let key = rcgen::KeyPair::generate_for(alg).expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        let (chain, key_path) = (dir.join("chain.pem"), dir.join("key.pem"));
        std::fs::write(&chain, cert.pem()).expect("write");
        std::fs::write(&key_path, key.serialize_pem()).expect("write");
        (chain, key_path)
    }

    #[test]
    fn only_ecdsa_keys_are_accepted() {
        let dir = tempfile::tempdir().expect("temp dir");
        for alg in [
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
        ] {
            let (chain, key) = write_pair(dir.path(), alg);
            let config = server_config(&chain, &key, Tls12::Allowed).expect("ECDSA accepted");
            assert!(config.require_ems);
        }
        let (chain, key) = write_pair(dir.path(), &rcgen::PKCS_ED25519);
        let error = server_config(&chain, &key, Tls12::Refused).expect_err("Ed25519 refused");
        assert!(error.to_string().contains("needs an ECDSA key"), "{error}");
    }

    #[test]
    fn provider_has_only_gcm_suites_and_nist_groups() {
        for tls12 in [Tls12::Refused, Tls12::Allowed] {
            let provider = provider(tls12);
            for suite in &provider.cipher_suites {
                let name = format!("{:?}", suite.suite());
                assert!(name.contains("GCM"), "{name}");
                assert!(!name.contains("CHACHA"), "{name}");
                assert!(!name.contains("RSA"), "{name}");
            }
            let groups: Vec<String> = provider
                .kx_groups
                .iter()
                .map(|g| format!("{:?}", g.name()))
                .collect();
            assert_eq!(groups, ["secp384r1", "secp256r1"]);
        }
        assert_eq!(provider(Tls12::Refused).cipher_suites.len(), 2);
        assert_eq!(provider(Tls12::Allowed).cipher_suites.len(), 4);
    }
}
