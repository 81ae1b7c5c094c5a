//! Tells apart what arrives on the one UDP port: STUN, DTLS, RTP and RTCP share it.
//!
//! The first byte decides (RFC 7983 §7): 0–3 is STUN, 20–63 DTLS, 128–191 RTP or RTCP. RTP and
//! RTCP are then split by the second byte (RFC 5761 §4): RTCP packet types are 192–223, and a
//! session must not use RTP payload types 64–95, which with the marker bit set would look the
//! same (the second byte is marker bit and payload type). Everything else — ZRTP (16–19), TURN channels (64–79), the unassigned ranges and
//! empty datagrams — is [`PacketKind::Unknown`] and is dropped by the caller.
//!
//! [`classify`] reads at most two bytes; it does not check that the rest is well formed. That is
//! the job of the parser each kind goes to ([`super::stun`], [`super::rtp`], [`super::rtcp`]).

/// What a datagram on the media port carries, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// A STUN message (ICE connectivity checks); first byte 0–3.
    Stun,
    /// A DTLS record (the key exchange); first byte 20–63.
    Dtls,
    /// An RTP (or SRTP) packet; first byte 128–191, second byte outside 192–223.
    Rtp,
    /// An RTCP (or SRTCP) compound packet; first byte 128–191, second byte 192–223.
    Rtcp,
    /// Anything else, including an empty datagram and RTP/RTCP cut after one byte.
    Unknown,
}

impl PacketKind {
    /// Every kind, for metrics that list each one.
    pub const ALL: [PacketKind; 5] = [Self::Stun, Self::Dtls, Self::Rtp, Self::Rtcp, Self::Unknown];

    /// Stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stun => "stun",
            Self::Dtls => "dtls",
            Self::Rtp => "rtp",
            Self::Rtcp => "rtcp",
            Self::Unknown => "unknown",
        }
    }
}

/// Classifies one datagram by its first byte (and, for RTP/RTCP, its second).
#[must_use]
pub fn classify(datagram: &[u8]) -> PacketKind {
    match datagram {
        [0..=3, ..] => PacketKind::Stun,
        [20..=63, ..] => PacketKind::Dtls,
        [128..=191, 192..=223, ..] => PacketKind::Rtcp,
        [128..=191, _, ..] => PacketKind::Rtp,
        _ => PacketKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_unknown() {
        assert_eq!(classify(&[]), PacketKind::Unknown);
    }

    #[test]
    fn stun_range_boundaries() {
        assert_eq!(classify(&[0, 1]), PacketKind::Stun);
        assert_eq!(classify(&[3]), PacketKind::Stun);
        assert_eq!(classify(&[4, 0]), PacketKind::Unknown);
    }

    #[test]
    fn zrtp_range_is_unknown() {
        for first in 16..=19 {
            assert_eq!(classify(&[first, 0]), PacketKind::Unknown, "{first}");
        }
    }

    #[test]
    fn dtls_range_boundaries() {
        assert_eq!(classify(&[19, 0]), PacketKind::Unknown);
        assert_eq!(classify(&[20, 0]), PacketKind::Dtls);
        assert_eq!(classify(&[22, 0xfe, 0xfd]), PacketKind::Dtls);
        assert_eq!(classify(&[63]), PacketKind::Dtls);
        assert_eq!(classify(&[64, 0]), PacketKind::Unknown);
    }

    #[test]
    fn turn_channel_and_gap_are_unknown() {
        for first in [64, 79, 80, 127, 192, 255] {
            assert_eq!(classify(&[first, 0]), PacketKind::Unknown, "{first}");
        }
    }

    #[test]
    fn rtp_range_boundaries() {
        assert_eq!(classify(&[127, 96]), PacketKind::Unknown);
        assert_eq!(classify(&[128, 96]), PacketKind::Rtp);
        assert_eq!(classify(&[191, 96]), PacketKind::Rtp);
        assert_eq!(classify(&[192, 96]), PacketKind::Unknown);
    }

    #[test]
    fn rtp_rtcp_split_by_second_byte() {
        assert_eq!(classify(&[0x80, 191]), PacketKind::Rtp);
        assert_eq!(classify(&[0x80, 192]), PacketKind::Rtcp);
        assert_eq!(classify(&[0x81, 200]), PacketKind::Rtcp);
        assert_eq!(classify(&[0x8f, 206]), PacketKind::Rtcp);
        assert_eq!(classify(&[0x80, 223]), PacketKind::Rtcp);
        assert_eq!(classify(&[0x80, 224]), PacketKind::Rtp);
        // Marker bit set on dynamic payload type 96 (0x80 | 96 = 224) stays RTP.
        assert_eq!(classify(&[0x80, 0x80 | 96]), PacketKind::Rtp);
        assert_eq!(classify(&[0x80, 0]), PacketKind::Rtp);
    }

    #[test]
    fn rtp_needs_a_second_byte() {
        assert_eq!(classify(&[0x80]), PacketKind::Unknown);
    }

    #[test]
    fn names_are_distinct() {
        let mut names: Vec<_> = PacketKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PacketKind::ALL.len());
    }
}
