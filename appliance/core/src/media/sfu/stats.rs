//! What the SFU counts: every dropped datagram by a closed reason, and what it forwarded.

/// Why a datagram (or an RTP/RTCP packet inside one) was dropped. A closed set without peer
/// data, so that it can be logged and counted as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Not STUN, DTLS, RTP or RTCP (RFC 7983), or empty.
    UnknownKind,
    /// DTLS, RTP or RTCP from an address no ICE check validated.
    UnknownSource,
    /// RTP or RTCP before the DTLS handshake of its transport completed.
    NotConnected,
    /// A STUN message that does not parse.
    StunMalformed,
    /// A STUN message the ICE-lite agent refused (see `stun_rejected` by reason).
    StunRejected,
    /// A valid check whose remote ufrag is not the one the session description announced.
    StunWrongUfrag,
    /// An address that is already bound to another transport, or one too many for a transport.
    AddressRefused,
    /// SRTP or SRTCP whose authentication tag does not verify.
    SrtpAuth,
    /// SRTP or SRTCP that was already received or is older than the replay window.
    SrtpReplay,
    /// SRTP or SRTCP that is too short or not version 2.
    SrtpMalformed,
    /// The SRTP context refused another SSRC or ran out of packet indices.
    SrtpLimit,
    /// RTP whose header does not parse after decryption.
    RtpMalformed,
    /// RTCP whose compound does not parse after decryption.
    RtcpMalformed,
    /// RTP with an SSRC that belongs to no published track.
    UnknownSsrc,
    /// RTP on a receiving (subscribe) transport.
    UnexpectedRtp,
}

impl DropReason {
    /// Every reason, for metrics that list each one.
    pub const ALL: [DropReason; 15] = [
        Self::UnknownKind,
        Self::UnknownSource,
        Self::NotConnected,
        Self::StunMalformed,
        Self::StunRejected,
        Self::StunWrongUfrag,
        Self::AddressRefused,
        Self::SrtpAuth,
        Self::SrtpReplay,
        Self::SrtpMalformed,
        Self::SrtpLimit,
        Self::RtpMalformed,
        Self::RtcpMalformed,
        Self::UnknownSsrc,
        Self::UnexpectedRtp,
    ];

    /// Stable name for logs and metrics, e.g. `"srtp_replay"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UnknownKind => "unknown_kind",
            Self::UnknownSource => "unknown_source",
            Self::NotConnected => "not_connected",
            Self::StunMalformed => "stun_malformed",
            Self::StunRejected => "stun_rejected",
            Self::StunWrongUfrag => "stun_wrong_ufrag",
            Self::AddressRefused => "address_refused",
            Self::SrtpAuth => "srtp_auth",
            Self::SrtpReplay => "srtp_replay",
            Self::SrtpMalformed => "srtp_malformed",
            Self::SrtpLimit => "srtp_limit",
            Self::RtpMalformed => "rtp_malformed",
            Self::RtcpMalformed => "rtcp_malformed",
            Self::UnknownSsrc => "unknown_ssrc",
            Self::UnexpectedRtp => "unexpected_rtp",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Counters of one SFU since it started. The DTLS endpoint keeps its own
/// ([`crate::media::dtls::DtlsStats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SfuStats {
    drops: [u64; DropReason::ALL.len()],
    /// RTP packets received from publishers and accepted.
    pub rtp_received: u64,
    /// RTP packets sent to subscribers (one per subscriber per packet).
    pub rtp_forwarded: u64,
    /// RTP packets sent again from the retransmission cache on a subscriber's NACK.
    pub nack_resent: u64,
    /// Sequence numbers a subscriber NACKed that were no longer (or never) in the cache.
    pub nack_missed: u64,
    /// Key-frame requests (PLI) sent to publishers, forwarded or our own.
    pub keyframe_requests: u64,
    /// PLI or FIR entries received from subscribers.
    pub keyframe_requests_received: u64,
    /// Of those, for an SSRC the subscriber does not receive.
    pub keyframe_requests_unmatched: u64,
    /// Key-frame requests not sent because one went to the same stream within
    /// `keyframe_interval`.
    pub keyframe_requests_throttled: u64,
    /// Sender reports forwarded to subscribers.
    pub sender_reports_forwarded: u64,
    /// Receiver reports sent to publishers.
    pub receiver_reports_sent: u64,
    /// STUN Binding requests answered with success.
    pub stun_answered: u64,
    /// Transports whose DTLS handshake completed.
    pub transports_connected: u64,
    /// Offers made again because the subscriber did not answer in time.
    pub offers_repeated: u64,
}

impl SfuStats {
    /// Datagrams dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// Every datagram dropped, whatever the reason.
    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().sum()
    }

    pub(super) fn drop(&mut self, reason: DropReason) {
        self.drops[reason.index()] += 1;
    }
}
