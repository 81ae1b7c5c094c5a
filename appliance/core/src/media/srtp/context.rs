//! [`SrtpContext`]: the session keys of one direction and the per-SSRC state that goes with them.

use std::collections::HashMap;
use std::fmt;

use super::keys::{MasterKey, Stream};
use super::replay::{ReplayWindow, estimate_index};
use super::transform::{RTCP_HEADER_LEN, SRTCP_E_BIT, Transform};
use super::{RTCP_REPLAY_WINDOW, RTP_REPLAY_WINDOW, SRTCP_INDEX_LEN, SrtpError, SrtpProfile};

/// SSRCs a context tracks per kind of state unless [`SrtpContext::with_max_ssrcs`] says otherwise:
/// enough for a subscriber that receives every stream of a large room.
pub const DEFAULT_MAX_SSRCS: usize = 1024;

/// Length of the fixed RTP header.
const RTP_HEADER_LEN: usize = 12;

/// The highest SRTCP index; one more and the key is used up (RFC 3711 §3.4).
const MAX_SRTCP_INDEX: u32 = !SRTCP_E_BIT;

type RtpWindow = ReplayWindow<{ (RTP_REPLAY_WINDOW / 64) as usize }>;
type RtcpWindow = ReplayWindow<{ (RTCP_REPLAY_WINDOW / 64) as usize }>;

/// SRTP and SRTCP for one direction of one transport: the session keys derived from one
/// [`MasterKey`], and per SSRC the rollover counter, the replay window and the SRTCP index.
///
/// Build the receiving context from the peer's master key and call only the `unprotect_*`
/// methods on it; build the sending context from ours and call only the `protect_*` methods.
/// (Received and sent state are kept apart, so mixing them up fails to decrypt, not worse.)
///
/// State for an SSRC is created by the first packet of it that authenticates (received) or that
/// is protected (sent), and is kept for the life of the context: forgetting it would let old
/// packets be replayed, or, when sending, repeat a nonce. At most
/// [`DEFAULT_MAX_SSRCS`] SSRCs (or [`Self::with_max_ssrcs`]) are tracked per kind of state.
///
/// The methods work in place and allocate only when an SSRC is first seen (and, for the `Vec`
/// variants of protect, when the vector lacks capacity for the tag).
pub struct SrtpContext {
    profile: SrtpProfile,
    rtp: Transform,
    rtcp: Transform,
    max_ssrcs: usize,
    received_rtp: HashMap<u32, RtpWindow>,
    received_rtcp: HashMap<u32, RtcpWindow>,
    sent_rtp: HashMap<u32, RtpWindow>,
    /// The SRTCP index the next packet of each SSRC gets.
    sent_rtcp: HashMap<u32, u32>,
}

impl SrtpContext {
    /// A context with the session keys derived from `master` (RFC 3711 §4.3, key derivation rate
    /// zero) and no SSRC state yet.
    pub fn new(master: &MasterKey) -> Self {
        Self::from_transforms(
            master.profile(),
            Transform::new(master, Stream::Rtp),
            Transform::new(master, Stream::Rtcp),
        )
    }

    fn from_transforms(profile: SrtpProfile, rtp: Transform, rtcp: Transform) -> Self {
        Self {
            profile,
            rtp,
            rtcp,
            max_ssrcs: DEFAULT_MAX_SSRCS,
            received_rtp: HashMap::new(),
            received_rtcp: HashMap::new(),
            sent_rtp: HashMap::new(),
            sent_rtcp: HashMap::new(),
        }
    }

    /// Tracks at most `max` SSRCs per kind of state (received or sent, SRTP or SRTCP); packets of
    /// further SSRCs fail with [`SrtpError::TooManySsrcs`].
    #[must_use]
    pub fn with_max_ssrcs(mut self, max: usize) -> Self {
        self.max_ssrcs = max;
        self
    }

    /// The protection profile of this context's keys.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Verifies, replay-checks and decrypts one received SRTP packet in place. Returns the length
    /// of the RTP packet now at the front of `packet` (header, payload and any padding; the tag
    /// is dropped). On error the contents of `packet` are unspecified and no state has changed.
    pub fn unprotect_rtp(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let header_len = rtp_header_len(packet)?;
        if packet.len() < header_len + self.profile.rtp_overhead() {
            return Err(SrtpError::TooShort);
        }
        let (ssrc, seq) = rtp_ssrc_and_seq(packet);
        let full = self.received_rtp.len() >= self.max_ssrcs;
        match self.received_rtp.get_mut(&ssrc) {
            Some(window) => {
                let index = estimate_index(window.highest(), seq)?;
                window.check(index)?;
                let len = self.rtp.open_rtp(packet, header_len, ssrc, index)?;
                window.mark(index);
                Ok(len)
            }
            None if full => Err(SrtpError::TooManySsrcs),
            None => {
                // A new stream starts with rollover counter zero (RFC 3711 §3.3.1).
                let index = u64::from(seq);
                let len = self.rtp.open_rtp(packet, header_len, ssrc, index)?;
                self.received_rtp.insert(ssrc, RtpWindow::new(index));
                Ok(len)
            }
        }
    }

    /// Verifies, replay-checks and (if its E-bit says so) decrypts one received SRTCP packet in
    /// place. Returns the length of the compound RTCP packet now at the front of `packet`. On
    /// error the contents of `packet` are unspecified and no state has changed.
    pub fn unprotect_rtcp(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        if packet.len() < RTCP_HEADER_LEN + self.profile.rtcp_overhead() {
            return Err(SrtpError::TooShort);
        }
        if !is_version_2(packet) {
            return Err(SrtpError::Malformed);
        }
        let at = self.rtcp.srtcp_index_at(packet.len());
        let word = read_u32(packet, at);
        let index = u64::from(word & !SRTCP_E_BIT);
        let ssrc = read_u32(packet, 4);
        let full = self.received_rtcp.len() >= self.max_ssrcs;
        match self.received_rtcp.get_mut(&ssrc) {
            Some(window) => {
                window.check(index)?;
                let len = self.rtcp.open_rtcp(packet, ssrc, word)?;
                window.mark(index);
                Ok(len)
            }
            None if full => Err(SrtpError::TooManySsrcs),
            None => {
                let len = self.rtcp.open_rtcp(packet, ssrc, word)?;
                self.received_rtcp.insert(ssrc, RtcpWindow::new(index));
                Ok(len)
            }
        }
    }

    /// Encrypts and tags the RTP packet in `packet`, appending the tag
    /// ([`SrtpProfile::rtp_overhead`] bytes). On error `packet` is unchanged.
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let len = packet.len();
        packet.resize(len + self.profile.rtp_overhead(), 0);
        let result = self.protect_rtp_in(packet, len);
        packet.truncate(*result.as_ref().unwrap_or(&len));
        result.map(|_| ())
    }

    /// Encrypts and tags the RTP packet in `buffer[..len]`, writing the tag after it. Returns the
    /// length of the SRTP packet; `buffer` must hold [`SrtpProfile::rtp_overhead`] more bytes.
    /// On error `buffer` is unchanged.
    pub fn protect_rtp_in(&mut self, buffer: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let protected_len = len
            .checked_add(self.profile.rtp_overhead())
            .ok_or(SrtpError::BufferTooSmall)?;
        let packet = buffer
            .get_mut(..protected_len)
            .ok_or(SrtpError::BufferTooSmall)?;
        let header_len = rtp_header_len(&packet[..len])?;
        let (ssrc, seq) = rtp_ssrc_and_seq(packet);
        let full = self.sent_rtp.len() >= self.max_ssrcs;
        match self.sent_rtp.get_mut(&ssrc) {
            Some(window) => {
                let index = estimate_index(window.highest(), seq)?;
                window.check(index).map_err(|error| match error {
                    SrtpError::Replayed => SrtpError::IndexReused,
                    other => other,
                })?;
                self.rtp.seal_rtp(packet, header_len, ssrc, index);
                window.mark(index);
            }
            None if full => return Err(SrtpError::TooManySsrcs),
            None => {
                let index = u64::from(seq);
                self.rtp.seal_rtp(packet, header_len, ssrc, index);
                self.sent_rtp.insert(ssrc, RtpWindow::new(index));
            }
        }
        Ok(protected_len)
    }

    /// Encrypts and tags the compound RTCP packet in `packet`, appending the E-bit/index word and
    /// the tag ([`SrtpProfile::rtcp_overhead`] bytes). On error `packet` is unchanged.
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let len = packet.len();
        packet.resize(len + self.profile.rtcp_overhead(), 0);
        let result = self.protect_rtcp_in(packet, len);
        packet.truncate(*result.as_ref().unwrap_or(&len));
        result.map(|_| ())
    }

    /// Encrypts and tags the compound RTCP packet in `buffer[..len]`, writing the E-bit/index word
    /// and the tag after it. Returns the length of the SRTCP packet; `buffer` must hold
    /// [`SrtpProfile::rtcp_overhead`] more bytes. On error `buffer` is unchanged.
    pub fn protect_rtcp_in(&mut self, buffer: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let protected_len = len
            .checked_add(self.profile.rtcp_overhead())
            .ok_or(SrtpError::BufferTooSmall)?;
        let packet = buffer
            .get_mut(..protected_len)
            .ok_or(SrtpError::BufferTooSmall)?;
        if len < RTCP_HEADER_LEN {
            return Err(SrtpError::TooShort);
        }
        if !is_version_2(packet) {
            return Err(SrtpError::Malformed);
        }
        let ssrc = read_u32(packet, 4);
        let index = match self.sent_rtcp.get(&ssrc) {
            Some(&next) => next,
            None if self.sent_rtcp.len() >= self.max_ssrcs => {
                return Err(SrtpError::TooManySsrcs);
            }
            // RFC 3711 §3.4: the first SRTCP packet has index zero.
            None => 0,
        };
        if index > MAX_SRTCP_INDEX {
            return Err(SrtpError::KeyExhausted);
        }
        self.rtcp.seal_rtcp(packet, ssrc, index);
        self.sent_rtcp.insert(ssrc, index + 1);
        Ok(protected_len)
    }
}

impl fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpContext")
            .field("profile", &self.profile)
            .field("keys", &format_args!("[redacted]"))
            .field("received_rtp_ssrcs", &self.received_rtp.len())
            .field("received_rtcp_ssrcs", &self.received_rtcp.len())
            .field("sent_rtp_ssrcs", &self.sent_rtp.len())
            .field("sent_rtcp_ssrcs", &self.sent_rtcp.len())
            .finish()
    }
}

fn is_version_2(packet: &[u8]) -> bool {
    packet.first().is_some_and(|first| first >> 6 == 2)
}

/// The big-endian word at `at`; the caller has checked that four bytes are there.
fn read_u32(packet: &[u8], at: usize) -> u32 {
    let mut word = [0; SRTCP_INDEX_LEN];
    word.copy_from_slice(&packet[at..at + SRTCP_INDEX_LEN]);
    u32::from_be_bytes(word)
}

/// Length of the RTP header with its CSRCs and header extension (RFC 3550 §5.1, §5.3.1), which
/// SRTP leaves unencrypted.
fn rtp_header_len(packet: &[u8]) -> Result<usize, SrtpError> {
    let Some(&first) = packet.first() else {
        return Err(SrtpError::TooShort);
    };
    if packet.len() < RTP_HEADER_LEN {
        return Err(SrtpError::TooShort);
    }
    if !is_version_2(packet) {
        return Err(SrtpError::Malformed);
    }
    let csrc_count = usize::from(first & 0x0f);
    let mut len = RTP_HEADER_LEN + 4 * csrc_count;
    if first & 0x10 != 0 {
        let Some(extension) = packet.get(len..len + 4) else {
            return Err(SrtpError::TooShort);
        };
        let words = usize::from(u16::from_be_bytes([extension[2], extension[3]]));
        len += 4 + 4 * words;
    }
    if len > packet.len() {
        return Err(SrtpError::TooShort);
    }
    Ok(len)
}

/// SSRC and sequence number of an RTP packet at least [`RTP_HEADER_LEN`] long.
fn rtp_ssrc_and_seq(packet: &[u8]) -> (u32, u16) {
    (
        read_u32(packet, 8),
        u16::from_be_bytes([packet[2], packet[3]]),
    )
}

#[cfg(test)]
impl SrtpContext {
    /// A context from session keys given directly, the same for SRTP and SRTCP (the RFC 7714
    /// vectors skip the key derivation).
    pub(super) fn from_session_keys(profile: SrtpProfile, key: &[u8], salt: &[u8]) -> Self {
        let transform = || {
            let mut keys = super::keys::SessionKeys {
                encryption: [0; 32],
                salt: [0; 14],
                authentication: [0; 20],
            };
            keys.encryption[..key.len()].copy_from_slice(key);
            keys.salt[..salt.len()].copy_from_slice(salt);
            Transform::from_session_keys(profile, &keys)
        };
        Self::from_transforms(profile, transform(), transform())
    }

    /// Makes the next SRTCP packet of `ssrc` carry `index` (the vectors start mid-session).
    pub(super) fn set_next_srtcp_index(&mut self, ssrc: u32, index: u32) {
        self.sent_rtcp.insert(ssrc, index);
    }

    /// The highest index received on `ssrc`, if any.
    pub(super) fn received_rtp_index(&self, ssrc: u32) -> Option<u64> {
        self.received_rtp.get(&ssrc).map(RtpWindow::highest)
    }
}
