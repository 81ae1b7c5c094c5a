//! The endpoint's configuration, and the one place that tells rtc-dtls which algorithms to use.

use std::sync::Arc;
use std::time::Duration;

use rtc_dtls::cipher_suite::CipherSuiteId;
use rtc_dtls::config::{
    ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig,
    VerifyPeerCertificateFn,
};
use rtc_dtls::crypto_provider::RTCCryptoProvider;
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_dtls::signature_hash_algorithm::SignatureScheme;

use super::gate::FingerprintGate;
use super::policy::PolicyProvider;
use super::{DtlsCertificate, DtlsError, HandshakeFailure};
use crate::media::srtp::{DtlsRole, SrtpProfile};

/// The one record cipher suite we negotiate (BSI TR-02102-2: ECDHE, ECDSA, AES-GCM).
/// `TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384` would be the second, but rtc-dtls 0.21 does not
/// implement it.
pub(super) const CIPHER_SUITE: CipherSuiteId =
    CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_128_Gcm_Sha256;

/// Signatures we make and accept in the handshake: ECDSA on P-256 and P-384, as browsers'
/// certificates use.
const SIGNATURE_SCHEMES: [SignatureScheme; 2] = [
    SignatureScheme::EcdsaWithP256AndSha256,
    SignatureScheme::EcdsaWithP384AndSha384,
];

/// Longest handshake timeout a configuration may set.
pub const MAX_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(300);

/// How a [`super::DtlsEndpoint`] behaves and what it allows. Every limit must be non-zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtlsConfig {
    /// SRTP protection profiles, most preferred first. As server we choose the first of these
    /// that the ClientHello offers, whatever the client's order; as client we offer them in
    /// this order.
    pub srtp_profiles: Vec<SrtpProfile>,
    /// Handshakes under way at once; a ClientHello from a new remote beyond it is dropped.
    pub max_handshakes: usize,
    /// Associations (under way or established) at once; also the most remotes that may have
    /// expected fingerprints.
    pub max_associations: usize,
    /// Time from the first datagram (or `connect`) to a completed handshake; at most
    /// [`MAX_HANDSHAKE_TIMEOUT`].
    pub handshake_timeout: Duration,
    /// Time before a flight is sent again when no answer came (rtc-dtls does not back off);
    /// shorter than the handshake timeout.
    pub retransmit_interval: Duration,
    /// Whether a remote without an expected fingerprint may start a handshake. Its fingerprint
    /// must then be announced before its certificate arrives. Off: only remotes that ICE and
    /// signalling vouched for take handshake state.
    pub admit_unannounced: bool,
    /// Longest datagram taken.
    pub max_datagram_len: usize,
    /// Size at which our handshake messages are fragmented (rtc-dtls adds 25 bytes of headers).
    pub mtu: usize,
    /// ClientHellos one association takes, retransmissions included.
    pub max_client_hellos: u32,
    /// Plaintext handshake fragments one association takes over its life, retransmissions
    /// included. Bounds rtc-dtls's reassembly buffer.
    pub max_handshake_fragments: u32,
    /// Encrypted records one association takes before its handshake completes (a Finished and
    /// its retransmissions). rtc-dtls queues them without bound otherwise.
    pub max_early_encrypted: u32,
}

impl Default for DtlsConfig {
    fn default() -> Self {
        Self {
            srtp_profiles: SrtpProfile::ALL.to_vec(),
            max_handshakes: 64,
            max_associations: 1024,
            handshake_timeout: Duration::from_secs(15),
            retransmit_interval: Duration::from_secs(1),
            admit_unannounced: false,
            max_datagram_len: 1500,
            mtu: 1200,
            max_client_hellos: 16,
            max_handshake_fragments: 128,
            max_early_encrypted: 16,
        }
    }
}

impl DtlsConfig {
    /// Checks that every limit is usable and the profiles are neither empty nor repeated.
    pub fn validate(&self) -> Result<(), DtlsError> {
        let profiles = &self.srtp_profiles;
        let repeated = profiles
            .iter()
            .enumerate()
            .any(|(index, profile)| profiles[..index].contains(profile));
        let usable = !profiles.is_empty()
            && !repeated
            && self.max_handshakes > 0
            && self.max_associations >= self.max_handshakes
            && !self.retransmit_interval.is_zero()
            && self.handshake_timeout > self.retransmit_interval
            && self.handshake_timeout <= MAX_HANDSHAKE_TIMEOUT
            && (256..=self.max_datagram_len).contains(&self.mtu)
            && self.max_client_hellos > 0
            && self.max_handshake_fragments > 0
            && self.max_early_encrypted > 0;
        usable.then_some(()).ok_or(DtlsError::InvalidConfig)
    }
}

/// Builds rtc-dtls handshake configurations, one per association: the policy is fixed, the
/// SRTP profiles and the fingerprint gate vary.
pub(super) struct HandshakePolicy {
    provider: Arc<dyn RTCCryptoProvider>,
    certificate: DtlsCertificate,
    retransmit_interval: Duration,
    mtu: usize,
}

impl HandshakePolicy {
    pub(super) fn new(config: &DtlsConfig, certificate: DtlsCertificate) -> Self {
        Self {
            provider: Arc::new(PolicyProvider::new()),
            certificate,
            retransmit_interval: config.retransmit_interval,
            mtu: config.mtu,
        }
    }

    /// A configuration for one association in `role`, offering `profiles` in this order.
    /// Both roles present our certificate and require the peer's; chain validation is off
    /// because the peer is authenticated by its fingerprint, which `gate` checks.
    pub(super) fn build(
        &self,
        role: DtlsRole,
        profiles: &[SrtpProfile],
        gate: &Arc<FingerprintGate>,
    ) -> Result<Arc<HandshakeConfig>, HandshakeFailure> {
        let gate = Arc::clone(gate);
        let verify: VerifyPeerCertificateFn = Arc::new(move |chain: &[Vec<u8>], _: &[_]| {
            gate.check(chain)
                .map(drop)
                .map_err(|_| rtc_shared::error::Error::ErrInvalidCertificate)
        });
        ConfigBuilder::default()
            .with_crypto_provider(Arc::clone(&self.provider))
            .with_certificates(vec![self.certificate.inner().clone()])
            .with_cipher_suites(vec![CIPHER_SUITE])
            .with_signature_schemes(SIGNATURE_SCHEMES.to_vec())
            .with_srtp_protection_profiles(profiles.iter().copied().map(to_library).collect())
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_insecure_skip_verify(true)
            .with_verify_peer_certificate(Some(verify))
            .with_server_name("kammer".to_owned())
            .with_flight_interval(self.retransmit_interval)
            .with_mtu(self.mtu)
            .build(role == DtlsRole::Client, None)
            .map(Arc::new)
            .map_err(|_| HandshakeFailure::Internal)
    }

    pub(super) fn certificate(&self) -> &DtlsCertificate {
        &self.certificate
    }
}

/// The profiles a server association offers: the first of ours that the client offered, so
/// that our order decides and not the client's (rtc-dtls itself takes the client's first).
/// All of ours when the ClientHello could not be read or nothing matches; rtc-dtls then decides
/// or fails the handshake.
pub(super) fn choose_profiles(ours: &[SrtpProfile], offered: Option<&[u16]>) -> Vec<SrtpProfile> {
    offered
        .and_then(|offered| ours.iter().find(|profile| offered.contains(&profile.id())))
        .map_or_else(|| ours.to_vec(), |profile| vec![*profile])
}

fn to_library(profile: SrtpProfile) -> SrtpProtectionProfile {
    match profile {
        SrtpProfile::Aes128CmHmacSha1_80 => SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
        SrtpProfile::AeadAes128Gcm => SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
        SrtpProfile::AeadAes256Gcm => SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm,
    }
}

/// Our profile for the one rtc-dtls negotiated; `None` for none or one we never offer.
pub(super) fn from_library(profile: SrtpProtectionProfile) -> Option<SrtpProfile> {
    match profile {
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => {
            Some(SrtpProfile::Aes128CmHmacSha1_80)
        }
        SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => Some(SrtpProfile::AeadAes128Gcm),
        SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm => Some(SrtpProfile::AeadAes256Gcm),
        _ => None,
    }
}
