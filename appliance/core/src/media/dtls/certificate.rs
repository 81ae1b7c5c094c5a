//! Our DTLS certificate and certificate fingerprints as session descriptions carry them
//! (RFC 8122 `a=fingerprint`).

use std::fmt;
use std::str::FromStr;

use rtc_dtls::crypto::Certificate;
use rtc_dtls::crypto_provider::{RTCCryptoProvider, SignatureScheme};
use rustls_pki_types::CertificateDer;

use super::DtlsError;
use super::policy::PolicyProvider;

/// A hash function for certificate fingerprints. SHA-1 and MD5 are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FingerprintAlgorithm {
    /// `sha-256`, what browsers announce.
    Sha256,
    /// `sha-384`.
    Sha384,
    /// `sha-512`.
    Sha512,
}

impl FingerprintAlgorithm {
    /// Every algorithm we accept.
    pub const ALL: [FingerprintAlgorithm; 3] = [Self::Sha256, Self::Sha384, Self::Sha512];

    /// The RFC 8122 token (IANA "Hash Function Textual Names"), e.g. `"sha-256"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha-256",
            Self::Sha384 => "sha-384",
            Self::Sha512 => "sha-512",
        }
    }

    /// The algorithm with this token, compared without regard to case (RFC 8122 §5).
    pub fn from_name(name: &str) -> Result<Self, DtlsError> {
        Self::ALL
            .into_iter()
            .find(|algorithm| algorithm.name().eq_ignore_ascii_case(name))
            .ok_or(DtlsError::UnsupportedFingerprintAlgorithm)
    }

    /// Length of a fingerprint in bytes.
    pub const fn hash_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    fn digest(self) -> &'static ring::digest::Algorithm {
        match self {
            Self::Sha256 => &ring::digest::SHA256,
            Self::Sha384 => &ring::digest::SHA384,
            Self::Sha512 => &ring::digest::SHA512,
        }
    }
}

/// Longest fingerprint of any accepted algorithm.
const MAX_FINGERPRINT_LEN: usize = 64;

/// The hash of a DER certificate under one algorithm. `Display` writes the SDP attribute value,
/// e.g. `sha-256 AB:CD:…`; `FromStr` reads it. Fingerprints are public: nothing is redacted.
#[derive(Clone, Copy)]
pub struct CertificateFingerprint {
    algorithm: FingerprintAlgorithm,
    bytes: [u8; MAX_FINGERPRINT_LEN],
}

impl CertificateFingerprint {
    /// A fingerprint announced by a peer: `bytes` must have `algorithm`'s length.
    pub fn new(algorithm: FingerprintAlgorithm, bytes: &[u8]) -> Result<Self, DtlsError> {
        if bytes.len() != algorithm.hash_len() {
            return Err(DtlsError::MalformedFingerprint);
        }
        let mut fingerprint = Self {
            algorithm,
            bytes: [0; MAX_FINGERPRINT_LEN],
        };
        fingerprint.bytes[..bytes.len()].copy_from_slice(bytes);
        Ok(fingerprint)
    }

    /// The fingerprint of the DER certificate `der` under `algorithm`.
    pub fn of_certificate(algorithm: FingerprintAlgorithm, der: &[u8]) -> Self {
        let digest = ring::digest::digest(algorithm.digest(), der);
        Self::new(algorithm, digest.as_ref())
            .expect("a digest has its algorithm's fingerprint length")
    }

    /// The hash function.
    pub fn algorithm(&self) -> FingerprintAlgorithm {
        self.algorithm
    }

    /// The fingerprint an `a=fingerprint` attribute announces; refused for SHA-1 and other
    /// algorithms we do not accept, or a value of the wrong length.
    pub fn from_sdp(fingerprint: &crate::media::sdp::Fingerprint) -> Result<Self, DtlsError> {
        let algorithm = FingerprintAlgorithm::from_name(fingerprint.hash_function.as_str())?;
        Self::new(algorithm, &fingerprint.value)
    }

    /// The `a=fingerprint` attribute of a session description for this fingerprint.
    pub fn to_sdp(&self) -> crate::media::sdp::Fingerprint {
        use crate::media::sdp::HashFunction;
        crate::media::sdp::Fingerprint {
            hash_function: match self.algorithm {
                FingerprintAlgorithm::Sha256 => HashFunction::Sha256,
                FingerprintAlgorithm::Sha384 => HashFunction::Sha384,
                FingerprintAlgorithm::Sha512 => HashFunction::Sha512,
            },
            value: self.as_bytes().to_vec(),
        }
    }

    /// The hash.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.algorithm.hash_len()]
    }

    /// Whether `der` is the certificate this fingerprint names.
    pub fn matches(&self, der: &[u8]) -> bool {
        Self::of_certificate(self.algorithm, der) == *self
    }
}

impl PartialEq for CertificateFingerprint {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && self.as_bytes() == other.as_bytes()
    }
}

impl Eq for CertificateFingerprint {}

impl fmt::Display for CertificateFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.algorithm.name())?;
        for (index, byte) in self.as_bytes().iter().enumerate() {
            let separator = if index == 0 { " " } else { ":" };
            write!(f, "{separator}{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CertificateFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertificateFingerprint({self})")
    }
}

impl FromStr for CertificateFingerprint {
    type Err = DtlsError;

    /// Reads an SDP `a=fingerprint` value: a hash function token, one space, and the hash as
    /// colon-separated pairs of hex digits (either case).
    fn from_str(value: &str) -> Result<Self, DtlsError> {
        let (name, hex) = value
            .split_once(' ')
            .ok_or(DtlsError::MalformedFingerprint)?;
        let algorithm = FingerprintAlgorithm::from_name(name)?;
        let mut bytes = [0u8; MAX_FINGERPRINT_LEN];
        let mut len = 0;
        for pair in hex.split(':') {
            let slot = bytes.get_mut(len).ok_or(DtlsError::MalformedFingerprint)?;
            if pair.len() != 2 || !pair.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(DtlsError::MalformedFingerprint);
            }
            *slot = u8::from_str_radix(pair, 16).map_err(|_| DtlsError::MalformedFingerprint)?;
            len += 1;
        }
        Self::new(algorithm, &bytes[..len])
    }
}

/// Our certificate for DTLS: a self-signed ECDSA P-256 certificate and its key. Peers
/// authenticate it by the fingerprint in our session description, not by a CA.
///
/// `Debug` prints the fingerprint only; the private key never leaves the crypto provider
/// (ring), which offers no way to wipe it.
#[derive(Clone)]
pub struct DtlsCertificate {
    certificate: Certificate,
    fingerprint: CertificateFingerprint,
}

impl DtlsCertificate {
    /// Generates a fresh self-signed ECDSA P-256 certificate (rcgen defaults: the subject
    /// "rcgen self signed cert", validity 1975–4096; WebRTC peers check neither).
    /// Generate one per process start, so that the fingerprint does not track the appliance.
    pub fn generate() -> Result<Self, DtlsError> {
        let provider = PolicyProvider::new();
        let certificate =
            Certificate::generate_self_signed(Vec::<String>::new(), provider.crypto())
                .map_err(|_| DtlsError::Certificate)?;
        Self::from_certificate(certificate)
    }

    /// A certificate made elsewhere (DER) for an ECDSA P-256 key given as PKCS#8: a per-start
    /// key whose certificate the key manager's media key issued. The key must be the one the
    /// certificate names, or every handshake fails at the peer.
    pub fn from_pkcs8_and_der(pkcs8: &[u8], der: Vec<u8>) -> Result<Self, DtlsError> {
        let provider = PolicyProvider::new();
        let key = provider
            .crypto()
            .import_signing_key(SignatureScheme::EcdsaP256Sha256, pkcs8)
            .map_err(|_| DtlsError::Certificate)?;
        Self::from_certificate(Certificate::from_signing_key(
            vec![CertificateDer::from(der)],
            key,
        ))
    }

    /// Wraps an rtc-dtls certificate, e.g. one whose key lives in the key manager
    /// (`Certificate::from_signing_key`).
    pub fn from_certificate(certificate: Certificate) -> Result<Self, DtlsError> {
        let der = certificate
            .certificate
            .first()
            .ok_or(DtlsError::Certificate)?;
        let fingerprint = CertificateFingerprint::of_certificate(FingerprintAlgorithm::Sha256, der);
        Ok(Self {
            certificate,
            fingerprint,
        })
    }

    /// The SHA-256 fingerprint to announce in `a=fingerprint` (`Display` gives the value).
    pub fn fingerprint(&self) -> &CertificateFingerprint {
        &self.fingerprint
    }

    /// The DER encoding of the (leaf) certificate.
    pub fn der(&self) -> &[u8] {
        self.certificate
            .certificate
            .first()
            .map(|der| der.as_ref())
            .expect("a DtlsCertificate holds at least one certificate")
    }

    pub(super) fn inner(&self) -> &Certificate {
        &self.certificate
    }
}

impl fmt::Debug for DtlsCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsCertificate")
            .field("fingerprint", &self.fingerprint)
            .field("private_key", &format_args!("[redacted]"))
            .finish()
    }
}
