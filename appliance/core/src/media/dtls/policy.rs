//! The crypto provider the DTLS handshake runs on: ring, restricted to what BSI TR-02102-2
//! allows and the one cipher suite we negotiate needs.
//!
//! rtc-dtls picks its algorithms by asking the provider what it supports: the ECDHE curves it
//! offers and accepts, the cipher suites, the signature schemes. ring supports X25519, and
//! rtc-dtls's server takes the first curve of the ClientHello it also supports; browsers offer
//! X25519 first, so on plain ring the key exchange would be X25519, which TR-02102-2 does not
//! list. This provider answers "unsupported" for everything but:
//!
//! * ECDHE on secp256r1 (P-256) and secp384r1 (P-384). TR-02102-2 recommends these, secp521r1
//!   and the brainpool curves; rtc-dtls implements only P-256, P-384 and X25519.
//! * AES-128-GCM, the record cipher of `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`.
//! * SHA-256 and HMAC-SHA-256, for that suite's PRF, the extended master secret's session
//!   hash (RFC 7627) and the SRTP key export (RFC 5705).
//! * ECDSA signatures on P-256 with SHA-256 and on P-384 with SHA-384 or SHA-256 (a peer with
//!   a P-384 certificate may sign with SHA-256 in DTLS 1.2), verified in the ServerKeyExchange
//!   and CertificateVerify.
//! * Importing an ECDSA P-256 PKCS#8 key, which [`super::DtlsCertificate::generate`] needs.
//!
//! Refused, although ring has them: X25519, ChaCha20-Poly1305, AES-CCM (and CCM_8), AES-CBC
//! with HMAC-SHA-1, AES-256-GCM and AES-CTR/AES block encryption (no suite rtc-dtls implements
//! uses them in DTLS; SRTP runs on our own code), MD5, Ed25519 and RSA. Certificate
//! fingerprints (SHA-256/384/512) are hashed by [`super::CertificateFingerprint`] with ring
//! directly, not through this provider.
//!
//! The rule is an allow-list: an algorithm a later rtc-crypto adds is refused until reviewed.
//! Every operation checks it, not only [`RTCCrypto::supports`], so that no path through
//! rtc-dtls gets around it.

use std::sync::Arc;

use rtc_dtls::crypto_provider::providers::RingProvider;
use rtc_dtls::crypto_provider::{
    ActiveKeyExchange, AeadAlgorithm, AeadCipher, BlockCipherAlgorithm, CbcAlgorithm, CbcCipher,
    CryptoAlgorithm, CryptoError, HashAlgorithm, HmacAlgorithm, KeyExchangeAlgorithm, Mac,
    PublicKey, RTCCrypto, RTCCryptoProvider, RTCRandom, SignatureScheme, SigningKey, StreamCipher,
    StreamCipherAlgorithm,
};

/// Whether the policy allows `algorithm` (see the module documentation for why each).
pub(super) const fn allows(algorithm: CryptoAlgorithm) -> bool {
    matches!(
        algorithm,
        CryptoAlgorithm::Hash(HashAlgorithm::Sha256)
            | CryptoAlgorithm::Hmac(HmacAlgorithm::Sha256)
            | CryptoAlgorithm::Aead(AeadAlgorithm::Aes128Gcm)
            | CryptoAlgorithm::KeyExchange(KeyExchangeAlgorithm::P256 | KeyExchangeAlgorithm::P384)
            | CryptoAlgorithm::Signature(
                SignatureScheme::EcdsaP256Sha256
                    | SignatureScheme::EcdsaP384Sha384
                    | SignatureScheme::EcdsaP384Sha256
            )
            | CryptoAlgorithm::SigningKeyImport(SignatureScheme::EcdsaP256Sha256)
    )
}

/// The key exchange of a TLS named group (the `supported_groups` code), if rtc-crypto has it.
const fn key_exchange(group: u16) -> Option<KeyExchangeAlgorithm> {
    match group {
        0x0017 => Some(KeyExchangeAlgorithm::P256),
        0x0018 => Some(KeyExchangeAlgorithm::P384),
        0x001d => Some(KeyExchangeAlgorithm::X25519),
        _ => None,
    }
}

/// Whether a ClientHello offering the named groups `offered` lets us do ECDHE on a curve the
/// policy allows. rtc-dtls itself would go on with its own first curve, which the client never
/// offered (RFC 8422 §5.1 forbids that).
pub(super) fn accepts_any_group(offered: &[u16]) -> bool {
    offered
        .iter()
        .filter_map(|&group| key_exchange(group))
        .any(|exchange| allows(CryptoAlgorithm::KeyExchange(exchange)))
}

/// ring behind the policy: the provider every DTLS handshake and our certificate use.
pub(super) struct PolicyProvider {
    ring: RingProvider,
}

impl PolicyProvider {
    pub(super) const fn new() -> Self {
        Self {
            ring: RingProvider::new(),
        }
    }

    /// `Ok` if the policy allows `algorithm`, the refusal rtc-dtls expects otherwise.
    fn check(algorithm: CryptoAlgorithm) -> Result<(), CryptoError> {
        if allows(algorithm) {
            Ok(())
        } else {
            Err(CryptoError::UnsupportedAlgorithm(algorithm))
        }
    }

    fn ring(&self) -> &dyn RTCCrypto {
        self.ring.crypto()
    }
}

impl RTCCryptoProvider for PolicyProvider {
    fn name(&self) -> &'static str {
        "kammer-tr-02102-2-ring"
    }

    fn crypto(&self) -> &dyn RTCCrypto {
        self
    }

    fn random(&self) -> &dyn RTCRandom {
        self.ring.random()
    }
}

impl RTCCrypto for PolicyProvider {
    fn supports(&self, algorithm: CryptoAlgorithm) -> bool {
        allows(algorithm) && self.ring().supports(algorithm)
    }

    fn hash(&self, algorithm: HashAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Self::check(CryptoAlgorithm::Hash(algorithm))?;
        self.ring().hash(algorithm, data)
    }

    fn block_encrypt(
        &self,
        algorithm: BlockCipherAlgorithm,
        key: &[u8],
        block: &mut [u8],
    ) -> Result<(), CryptoError> {
        Self::check(CryptoAlgorithm::BlockCipher(algorithm))?;
        self.ring().block_encrypt(algorithm, key, block)
    }

    fn new_hmac(&self, algorithm: HmacAlgorithm, key: &[u8]) -> Result<Box<dyn Mac>, CryptoError> {
        Self::check(CryptoAlgorithm::Hmac(algorithm))?;
        self.ring().new_hmac(algorithm, key)
    }

    fn new_stream_cipher(
        &self,
        algorithm: StreamCipherAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn StreamCipher>, CryptoError> {
        Self::check(CryptoAlgorithm::StreamCipher(algorithm))?;
        self.ring().new_stream_cipher(algorithm, key)
    }

    fn new_aead(
        &self,
        algorithm: AeadAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn AeadCipher>, CryptoError> {
        Self::check(CryptoAlgorithm::Aead(algorithm))?;
        self.ring().new_aead(algorithm, key)
    }

    fn new_cbc(
        &self,
        algorithm: CbcAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn CbcCipher>, CryptoError> {
        Self::check(CryptoAlgorithm::Cbc(algorithm))?;
        self.ring().new_cbc(algorithm, key)
    }

    fn start_key_exchange(
        &self,
        algorithm: KeyExchangeAlgorithm,
    ) -> Result<Box<dyn ActiveKeyExchange>, CryptoError> {
        Self::check(CryptoAlgorithm::KeyExchange(algorithm))?;
        self.ring().start_key_exchange(algorithm)
    }

    fn generate_signing_key(
        &self,
        scheme: SignatureScheme,
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        Self::check(CryptoAlgorithm::SigningKeyGeneration(scheme))?;
        self.ring().generate_signing_key(scheme)
    }

    fn import_signing_key(
        &self,
        scheme: SignatureScheme,
        pkcs8_der: &[u8],
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        Self::check(CryptoAlgorithm::SigningKeyImport(scheme))?;
        self.ring().import_signing_key(scheme, pkcs8_der)
    }

    fn verify_signature(
        &self,
        scheme: SignatureScheme,
        public_key: PublicKey<'_>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        Self::check(CryptoAlgorithm::Signature(scheme))?;
        self.ring()
            .verify_signature(scheme, public_key, message, signature)
    }
}
