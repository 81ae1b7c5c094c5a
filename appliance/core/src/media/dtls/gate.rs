//! The fingerprint check of RFC 8122 §5: the peer's certificate must hash to a fingerprint its
//! session description announced. rtc-dtls runs the check from inside the handshake (so that a
//! mismatch ends it with `bad_certificate` before any key is used), and the endpoint runs it
//! again before it exports keys; only a passed check yields the [`VerifiedFingerprint`] that a
//! [`super::DtlsEvent::Connected`] must carry.

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{CertificateFingerprint, HandshakeFailure};

/// Most fingerprints one remote may announce (RFC 8122 allows several, one per hash function).
pub(super) const MAX_FINGERPRINTS_PER_REMOTE: usize = 4;

/// Proof that a peer's certificate matched an announced fingerprint: only the check creates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedFingerprint(CertificateFingerprint);

impl VerifiedFingerprint {
    /// The announced fingerprint the peer's certificate matched.
    pub fn fingerprint(&self) -> &CertificateFingerprint {
        &self.0
    }
}

/// The fingerprints expected from one remote and the outcome of the check, shared between the
/// endpoint and the verification callback it hands to rtc-dtls. Fingerprints may be announced
/// after the handshake started; they must be there when the peer's certificate arrives.
#[derive(Debug, Default)]
pub(super) struct FingerprintGate {
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    expected: Vec<CertificateFingerprint>,
    /// Why the check failed, the first time it did.
    verdict: Option<HandshakeFailure>,
}

impl FingerprintGate {
    pub(super) fn new(expected: Vec<CertificateFingerprint>) -> Self {
        Self {
            state: Mutex::new(GateState {
                expected,
                verdict: None,
            }),
        }
    }

    /// Replaces the expected fingerprints.
    pub(super) fn set_expected(&self, expected: &[CertificateFingerprint]) {
        self.lock().expected = expected.to_vec();
    }

    /// Checks the peer's certificate chain (leaf first) and remembers a failure.
    pub(super) fn check(&self, chain: &[Vec<u8>]) -> Result<VerifiedFingerprint, HandshakeFailure> {
        let mut state = self.lock();
        let outcome = verify(&state.expected, chain);
        if let Err(reason) = outcome {
            state.verdict.get_or_insert(reason);
        }
        outcome
    }

    /// Why the check failed, if it ran and failed.
    pub(super) fn verdict(&self) -> Option<HandshakeFailure> {
        self.lock().verdict
    }

    /// The state is plain data that every writer leaves consistent, so a poisoned lock (a panic
    /// elsewhere while it was held) leaves nothing half-done.
    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn verify(
    expected: &[CertificateFingerprint],
    chain: &[Vec<u8>],
) -> Result<VerifiedFingerprint, HandshakeFailure> {
    let leaf = chain.first().ok_or(HandshakeFailure::NoCertificate)?;
    if expected.is_empty() {
        return Err(HandshakeFailure::FingerprintMissing);
    }
    expected
        .iter()
        .find(|fingerprint| fingerprint.matches(leaf))
        .map(|fingerprint| VerifiedFingerprint(*fingerprint))
        .ok_or(HandshakeFailure::FingerprintMismatch)
}
