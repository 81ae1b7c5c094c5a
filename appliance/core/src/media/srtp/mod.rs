//! SRTP and SRTCP: protecting and unprotecting RTP and RTCP packets in place.
//!
//! Three protection profiles (RFC 5764 ids): `SRTP_AEAD_AES_128_GCM` and `SRTP_AEAD_AES_256_GCM`
//! (RFC 7714), whose per-packet work runs on ring, and `SRTP_AES128_CM_HMAC_SHA1_80` (RFC 3711)
//! for peers that offer nothing else. Offer them in the order of [`SrtpProfile::ALL`].
//!
//! How the pieces fit:
//!
//! 1. After the DTLS handshake the shell exports [`SrtpProfile::keying_material_len`] bytes with
//!    the label [`DTLS_SRTP_EXPORTER_LABEL`] and no context, and splits them with
//!    [`MasterKeys::from_keying_material`] according to our [`DtlsRole`].
//! 2. It builds one [`SrtpContext`] per direction: the sending one from [`MasterKeys::local`], the
//!    receiving one from [`MasterKeys::remote`].
//! 3. Each received SRTP packet goes through [`SrtpContext::unprotect_rtp`], each SRTCP packet
//!    through [`SrtpContext::unprotect_rtcp`]; each packet to send through
//!    [`SrtpContext::protect_rtp`] or [`SrtpContext::protect_rtcp`].
//!
//! Invariants:
//!
//! * Nothing a peer sends can make these functions panic; every failure is an [`SrtpError`],
//!   a closed enum without peer data, to be counted by [`SrtpError::as_str`].
//! * A received packet counts as seen (replay window, rollover counter, new SSRC) only after its
//!   authentication tag has been verified. Forged packets change no state.
//! * Per SSRC, a replay window of [`RTP_REPLAY_WINDOW`] packets for SRTP and
//!   [`RTCP_REPLAY_WINDOW`] for SRTCP (RFC 3711 §3.3.2); the rollover counter is estimated as in
//!   RFC 3711 Appendix A.
//! * The sending side refuses to protect two packets with the same index and SSRC
//!   ([`SrtpError::IndexReused`]): with AES-GCM a repeated nonce would reveal the
//!   authentication key. Retransmit already protected bytes, or use RTX.
//! * Key material lives in types that print `[redacted]` and are overwritten when dropped. The
//!   `aes` crate wipes its expanded keys too (its `zeroize` feature is on); ring's expanded
//!   AES-GCM and HMAC keys are outside our reach, as ring offers no way to wipe them.
//!
//! What this module refuses to do: master key indicators (MKI), key derivation rates other than
//! zero, unencrypted SRTP, and the 32-bit-tag profile; none of them is negotiated by DTLS-SRTP in
//! browsers.

mod context;
mod keys;
mod replay;
mod transform;

pub use context::{DEFAULT_MAX_SSRCS, SrtpContext};
pub use keys::{DTLS_SRTP_EXPORTER_LABEL, DtlsRole, MasterKey, MasterKeys};

/// Packets an SRTP replay window spans, per SSRC. As large as WebRTC's own receivers use, so that
/// a NACK-triggered retransmission that arrives late is still accepted.
pub const RTP_REPLAY_WINDOW: u64 = 1024;

/// Packets an SRTCP replay window spans, per SSRC (the minimum of RFC 3711 §3.3.2 is 64).
pub const RTCP_REPLAY_WINDOW: u64 = 128;

/// An SRTP protection profile, with its RFC 5764 / RFC 7714 identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpProfile {
    /// `SRTP_AES128_CM_HMAC_SHA1_80` (0x0001): AES-128 in counter mode, HMAC-SHA1 tag of 80 bits.
    Aes128CmHmacSha1_80,
    /// `SRTP_AEAD_AES_128_GCM` (0x0007): AES-128-GCM with a 128-bit tag.
    AeadAes128Gcm,
    /// `SRTP_AEAD_AES_256_GCM` (0x0008): AES-256-GCM with a 128-bit tag.
    AeadAes256Gcm,
}

impl SrtpProfile {
    /// Every profile, in the order we prefer them (GCM first: it runs on ring and is what
    /// browsers pick when offered first).
    pub const ALL: [SrtpProfile; 3] = [
        Self::AeadAes128Gcm,
        Self::AeadAes256Gcm,
        Self::Aes128CmHmacSha1_80,
    ];

    /// The two-byte identifier in the DTLS `use_srtp` extension.
    pub const fn id(self) -> u16 {
        match self {
            Self::Aes128CmHmacSha1_80 => 0x0001,
            Self::AeadAes128Gcm => 0x0007,
            Self::AeadAes256Gcm => 0x0008,
        }
    }

    /// The profile with this `use_srtp` identifier.
    pub fn from_id(id: u16) -> Result<Self, SrtpError> {
        Self::ALL
            .into_iter()
            .find(|profile| profile.id() == id)
            .ok_or(SrtpError::UnknownProfile)
    }

    /// The IANA name, e.g. `"SRTP_AEAD_AES_128_GCM"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Aes128CmHmacSha1_80 => "SRTP_AES128_CM_HMAC_SHA1_80",
            Self::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
            Self::AeadAes256Gcm => "SRTP_AEAD_AES_256_GCM",
        }
    }

    /// Length of a master key in bytes.
    pub const fn master_key_len(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 | Self::AeadAes128Gcm => 16,
            Self::AeadAes256Gcm => 32,
        }
    }

    /// Length of a master salt in bytes (112 bits for AES-CM, 96 bits for AES-GCM).
    pub const fn master_salt_len(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 => 14,
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 12,
        }
    }

    /// Bytes to export from DTLS for this profile: two master keys and two master salts
    /// (RFC 5764 §4.2).
    pub const fn keying_material_len(self) -> usize {
        2 * (self.master_key_len() + self.master_salt_len())
    }

    /// Length of the authentication tag in bytes.
    pub const fn tag_len(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 => 10,
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 16,
        }
    }

    /// Bytes that protecting adds to an RTP packet.
    pub const fn rtp_overhead(self) -> usize {
        self.tag_len()
    }

    /// Bytes that protecting adds to an RTCP packet: the tag and the E-bit/index word.
    pub const fn rtcp_overhead(self) -> usize {
        self.tag_len() + SRTCP_INDEX_LEN
    }

    pub(crate) const fn is_gcm(self) -> bool {
        matches!(self, Self::AeadAes128Gcm | Self::AeadAes256Gcm)
    }
}

/// Length of the SRTCP trailer word that holds the E-bit and the 31-bit index.
const SRTCP_INDEX_LEN: usize = 4;

/// Why a packet could not be protected or unprotected, or keys could not be set up.
///
/// A closed set without peer data, so that it can be logged and counted as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SrtpError {
    /// The packet is shorter than its header and authentication tag.
    #[error("packet is too short for its header and authentication tag")]
    TooShort,
    /// The packet is not version 2 RTP or RTCP.
    #[error("packet is not version 2 RTP or RTCP")]
    Malformed,
    /// The authentication tag did not verify: forged, damaged or under another key.
    #[error("authentication tag does not verify")]
    AuthFailed,
    /// A packet with this index and SSRC was already accepted.
    #[error("packet was already received")]
    Replayed,
    /// The packet is older than the replay window reaches, so a replay cannot be ruled out.
    #[error("packet is older than the replay window")]
    TooOld,
    /// Protecting refused: this context already protected a packet with this index and SSRC.
    #[error("a packet with this index and SSRC was already protected")]
    IndexReused,
    /// The context already tracks as many SSRCs as it may.
    #[error("too many SSRCs on one SRTP context")]
    TooManySsrcs,
    /// The packet index space of this key is used up (2^48 SRTP or 2^31 SRTCP packets per SSRC);
    /// the session needs new keys.
    #[error("packet index space of this key is used up")]
    KeyExhausted,
    /// The buffer has no room for the authentication tag.
    #[error("buffer has no room for the authentication tag")]
    BufferTooSmall,
    /// The protection profile identifier names no profile we support.
    #[error("SRTP protection profile is not supported")]
    UnknownProfile,
    /// A master key or salt does not have the profile's length.
    #[error("master key or salt has the wrong length for the profile")]
    KeyLength,
    /// The exported keying material does not have the profile's length.
    #[error("exported keying material has the wrong length for the profile")]
    KeyingMaterialLength,
}

impl SrtpError {
    /// Every error, for metrics that list each one.
    pub const ALL: [SrtpError; 12] = [
        Self::TooShort,
        Self::Malformed,
        Self::AuthFailed,
        Self::Replayed,
        Self::TooOld,
        Self::IndexReused,
        Self::TooManySsrcs,
        Self::KeyExhausted,
        Self::BufferTooSmall,
        Self::UnknownProfile,
        Self::KeyLength,
        Self::KeyingMaterialLength,
    ];

    /// Stable name for logs and metrics, e.g. `"auth_failed"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TooShort => "too_short",
            Self::Malformed => "malformed",
            Self::AuthFailed => "auth_failed",
            Self::Replayed => "replayed",
            Self::TooOld => "too_old",
            Self::IndexReused => "index_reused",
            Self::TooManySsrcs => "too_many_ssrcs",
            Self::KeyExhausted => "key_exhausted",
            Self::BufferTooSmall => "buffer_too_small",
            Self::UnknownProfile => "unknown_profile",
            Self::KeyLength => "key_length",
            Self::KeyingMaterialLength => "keying_material_length",
        }
    }
}

#[cfg(test)]
mod tests;
