//! Why a datagram was dropped, why a handshake failed, and the counters of both.

use std::fmt;

/// Why a datagram was dropped before it could change any association. Dropping never ends an
/// association: whoever can spoof a peer's address must not be able to end it with one datagram.
///
/// A closed set without peer data, so that it can be logged and counted as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DatagramDrop {
    /// Longer than [`super::DtlsConfig::max_datagram_len`].
    #[error("datagram is longer than a DTLS datagram may be")]
    Oversized,
    /// Not a sequence of well-formed DTLS 1.2 records of the kinds DTLS-SRTP uses.
    #[error("datagram is not a sequence of well-formed DTLS records")]
    BadRecord,
    /// The first datagram from a new remote does not carry a ClientHello.
    #[error("first datagram from a new remote is not a ClientHello")]
    NotClientHello,
    /// No fingerprint was announced for this remote, and unannounced remotes are not admitted.
    #[error("no fingerprint is expected from this remote")]
    NotExpectedRemote,
    /// As many handshakes as allowed are already under way.
    #[error("too many handshakes under way")]
    TooManyHandshakes,
    /// As many associations as allowed already exist.
    #[error("too many DTLS associations")]
    TooManyAssociations,
    /// The association already received as many ClientHellos as it may.
    #[error("too many ClientHellos on one association")]
    ClientHelloFlood,
    /// A ClientHello repeated after we answered it with a ServerHello. rtc-dtls would ignore
    /// it but cancel its own retransmission timer, and so never repeat a lost answer; kept from
    /// it, the timer repeats the answer.
    #[error("ClientHello repeated after it was answered")]
    StaleClientHello,
    /// The association already received as many handshake fragments or early encrypted records
    /// as a handshake needs, retransmissions included.
    #[error("too many handshake records on one association")]
    RecordFlood,
    /// Application data: the SFU carries no data channels over DTLS.
    #[error("application data is not accepted")]
    ApplicationData,
    /// An encrypted handshake record after the handshake: renegotiation is refused.
    #[error("handshake record after the handshake completed")]
    HandshakeAfterConnected,
}

impl DatagramDrop {
    /// Every reason, for metrics that list each one.
    pub const ALL: [DatagramDrop; 11] = [
        Self::Oversized,
        Self::BadRecord,
        Self::NotClientHello,
        Self::NotExpectedRemote,
        Self::TooManyHandshakes,
        Self::TooManyAssociations,
        Self::ClientHelloFlood,
        Self::StaleClientHello,
        Self::RecordFlood,
        Self::ApplicationData,
        Self::HandshakeAfterConnected,
    ];

    /// Stable name for logs and metrics, e.g. `"bad_record"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Oversized => "oversized",
            Self::BadRecord => "bad_record",
            Self::NotClientHello => "not_client_hello",
            Self::NotExpectedRemote => "not_expected_remote",
            Self::TooManyHandshakes => "too_many_handshakes",
            Self::TooManyAssociations => "too_many_associations",
            Self::ClientHelloFlood => "client_hello_flood",
            Self::StaleClientHello => "stale_client_hello",
            Self::RecordFlood => "record_flood",
            Self::ApplicationData => "application_data",
            Self::HandshakeAfterConnected => "handshake_after_connected",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Why an association ended without a `close_notify`: its handshake failed, or an
/// authenticated peer broke off later.
///
/// A closed set without peer data, so that it can be logged and counted as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum HandshakeFailure {
    /// The peer's certificate does not have the fingerprint its session description announced.
    #[error("certificate fingerprint does not match the announced one")]
    FingerprintMismatch,
    /// The peer's certificate arrived before any fingerprint was announced for it.
    #[error("no fingerprint was announced before the certificate arrived")]
    FingerprintMissing,
    /// The peer sent no certificate (RFC 8122: both ends must present one).
    #[error("peer presented no certificate")]
    NoCertificate,
    /// The handshake did not complete within [`super::DtlsConfig::handshake_timeout`].
    #[error("handshake did not complete in time")]
    HandshakeTimeout,
    /// Our flight was retransmitted as often as allowed without an answer.
    #[error("handshake retransmissions exhausted")]
    RetransmitsExhausted,
    /// The peer sent an alert.
    #[error("peer sent an alert")]
    PeerAlert,
    /// No SRTP protection profile is offered by both ends.
    #[error("no common SRTP protection profile")]
    NoCommonSrtpProfile,
    /// The handshake completed without negotiating SRTP (`use_srtp` missing).
    #[error("handshake negotiated no SRTP protection profile")]
    SrtpNotNegotiated,
    /// No common cipher suite, curve or signature scheme.
    #[error("no common cipher suite, curve or signature scheme")]
    NoCommonAlgorithms,
    /// The peer does not support the extended master secret (RFC 7627), which we require.
    #[error("peer does not support the extended master secret")]
    ExtendedMasterSecretMissing,
    /// The peer does not speak DTLS 1.2.
    #[error("peer does not speak DTLS 1.2")]
    UnsupportedVersion,
    /// A signature or the Finished verify data did not verify.
    #[error("handshake authentication failed")]
    AuthenticationFailed,
    /// Any other violation of the protocol.
    #[error("peer violated the DTLS protocol")]
    Protocol,
    /// The SRTP keys could not be exported (an internal error).
    #[error("SRTP keys could not be exported")]
    KeyExport,
    /// The handshake configuration could not be built (an internal error).
    #[error("handshake configuration could not be built")]
    Internal,
}

impl HandshakeFailure {
    /// Every reason, for metrics that list each one.
    pub const ALL: [HandshakeFailure; 15] = [
        Self::FingerprintMismatch,
        Self::FingerprintMissing,
        Self::NoCertificate,
        Self::HandshakeTimeout,
        Self::RetransmitsExhausted,
        Self::PeerAlert,
        Self::NoCommonSrtpProfile,
        Self::SrtpNotNegotiated,
        Self::NoCommonAlgorithms,
        Self::ExtendedMasterSecretMissing,
        Self::UnsupportedVersion,
        Self::AuthenticationFailed,
        Self::Protocol,
        Self::KeyExport,
        Self::Internal,
    ];

    /// Stable name for logs and metrics, e.g. `"fingerprint_mismatch"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::FingerprintMismatch => "fingerprint_mismatch",
            Self::FingerprintMissing => "fingerprint_missing",
            Self::NoCertificate => "no_certificate",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::RetransmitsExhausted => "retransmits_exhausted",
            Self::PeerAlert => "peer_alert",
            Self::NoCommonSrtpProfile => "no_common_srtp_profile",
            Self::SrtpNotNegotiated => "srtp_not_negotiated",
            Self::NoCommonAlgorithms => "no_common_algorithms",
            Self::ExtendedMasterSecretMissing => "extended_master_secret_missing",
            Self::UnsupportedVersion => "unsupported_version",
            Self::AuthenticationFailed => "authentication_failed",
            Self::Protocol => "protocol",
            Self::KeyExport => "key_export",
            Self::Internal => "internal",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }

    /// Maps an error of rtc-dtls to a reason. `alert_seen` says whether the datagram that caused
    /// it carried an alert record: rtc-dtls reports a received alert as an untyped error.
    pub(super) fn from_library(error: &rtc_shared::error::Error, alert_seen: bool) -> Self {
        use rtc_shared::error::Error;
        match error {
            Error::ErrAlertFatalOrClose => Self::PeerAlert,
            Error::ErrServerNoMatchingSrtpProfile | Error::ErrClientNoMatchingSrtpProfile => {
                Self::NoCommonSrtpProfile
            }
            Error::ErrRequestedButNoSrtpExtension => Self::SrtpNotNegotiated,
            Error::ErrCipherSuiteNoIntersection
            | Error::ErrNoSupportedEllipticCurves
            | Error::ErrNoAvailableSignatureSchemes
            | Error::ErrInvalidCipherSuite => Self::NoCommonAlgorithms,
            Error::ErrServerRequiredButNoClientEms | Error::ErrClientRequiredButNoServerEms => {
                Self::ExtendedMasterSecretMissing
            }
            Error::ErrClientCertificateRequired | Error::ErrCertificateVerifyNoCertificate => {
                Self::NoCertificate
            }
            Error::ErrUnsupportedProtocolVersion => Self::UnsupportedVersion,
            Error::ErrKeySignatureMismatch
            | Error::ErrKeySignatureVerifyUnimplemented
            | Error::ErrVerifyDataMismatch
            | Error::ErrInvalidEcdsasignature
            | Error::ErrInvalidCertificate
            | Error::ErrInvalidMac => Self::AuthenticationFailed,
            Error::ErrInvalidFsmTransition => Self::RetransmitsExhausted,
            _ if alert_seen => Self::PeerAlert,
            _ => Self::Protocol,
        }
    }
}

/// Misuse of the endpoint's API, or a certificate or configuration that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DtlsError {
    /// A limit in the configuration is zero, or the profiles are empty or repeated.
    #[error("DTLS configuration is invalid")]
    InvalidConfig,
    /// The certificate could not be generated or imported.
    #[error("certificate could not be generated or imported")]
    Certificate,
    /// The fingerprint's hash function is not one we accept (SHA-256, SHA-384, SHA-512).
    #[error("fingerprint hash function is not supported")]
    UnsupportedFingerprintAlgorithm,
    /// The fingerprint is not a colon-separated hex string of its hash function's length.
    #[error("fingerprint is malformed")]
    MalformedFingerprint,
    /// As many fingerprints as allowed are already expected from this remote, or from as many
    /// remotes as allowed.
    #[error("too many expected fingerprints")]
    TooManyFingerprints,
    /// An association with this remote already exists.
    #[error("an association with this remote already exists")]
    AlreadyAssociated,
    /// As many associations or handshakes as allowed already exist.
    #[error("too many DTLS associations")]
    TooManyAssociations,
    /// The remote address has port zero.
    #[error("remote address is not usable")]
    InvalidRemote,
}

/// Counters of everything that happened to datagrams and associations, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DtlsStats {
    dropped: [u64; DatagramDrop::ALL.len()],
    failed: [u64; HandshakeFailure::ALL.len()],
    connected: u64,
    closed: u64,
}

impl DtlsStats {
    /// Datagrams dropped for `reason`.
    pub fn dropped(&self, reason: DatagramDrop) -> u64 {
        self.dropped[reason.index()]
    }

    /// Datagrams dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Associations that failed for `reason`.
    pub fn failed(&self, reason: HandshakeFailure) -> u64 {
        self.failed[reason.index()]
    }

    /// Associations that failed for any reason.
    pub fn failed_total(&self) -> u64 {
        self.failed.iter().sum()
    }

    /// Handshakes that completed and yielded SRTP keys.
    pub fn connected(&self) -> u64 {
        self.connected
    }

    /// Associations the peer closed with `close_notify`.
    pub fn closed(&self) -> u64 {
        self.closed
    }

    pub(super) fn count_drop(&mut self, reason: DatagramDrop) {
        self.dropped[reason.index()] += 1;
    }

    pub(super) fn count_failure(&mut self, reason: HandshakeFailure) {
        self.failed[reason.index()] += 1;
    }

    pub(super) fn count_connected(&mut self) {
        self.connected += 1;
    }

    pub(super) fn count_closed(&mut self) {
        self.closed += 1;
    }
}

impl fmt::Display for DtlsStats {
    /// One `name=count` pair per non-zero counter, for a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connected={} closed={}", self.connected, self.closed)?;
        for reason in DatagramDrop::ALL {
            let count = self.dropped(reason);
            if count > 0 {
                write!(f, " drop.{}={count}", reason.as_str())?;
            }
        }
        for reason in HandshakeFailure::ALL {
            let count = self.failed(reason);
            if count > 0 {
                write!(f, " fail.{}={count}", reason.as_str())?;
            }
        }
        Ok(())
    }
}
