//! The per-packet cryptography of each profile, on buffers whose layout the caller has checked.
//!
//! AES-GCM (RFC 7714) runs on ring's `LessSafeKey`; AES-CM (RFC 3711 §4.1.1) on the `aes` and
//! `ctr` crates, with HMAC-SHA1 (RFC 3711 §4.2.1) on ring. Every function here takes a buffer that
//! already has the profile's layout (the caller checked the lengths); a tag that does not verify
//! is the only failure.

use aes::Aes128;
use aes::cipher::KeyInit;
use ctr::cipher::{InnerIvInit, StreamCipher};
use ctr::{Ctr128BE, CtrCore, flavors};
use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::keys::{MAX_SALT_LEN, MasterKey, SessionKeys, Stream};
use super::replay::roc_of;
use super::{SRTCP_INDEX_LEN, SrtpError, SrtpProfile};

/// The E-bit of the SRTCP trailer word: set when the packet is encrypted.
pub(super) const SRTCP_E_BIT: u32 = 0x8000_0000;

/// Length of the fixed RTCP header that SRTCP leaves unencrypted (first word and sender SSRC).
pub(super) const RTCP_HEADER_LEN: usize = 8;

const GCM_TAG_LEN: usize = 16;
const CM_TAG_LEN: usize = 10;
const GCM_IV_LEN: usize = 12;

/// A session salt, overwritten when dropped.
#[derive(Zeroize, ZeroizeOnDrop)]
struct Salt([u8; MAX_SALT_LEN]);

/// The session keys of one stream (SRTP or SRTCP) of one profile, ready for per-packet use.
// Two of these live in each context for its whole life and are never moved on the per-packet
// path; boxing a variant would only add an indirection to every packet.
#[allow(clippy::large_enum_variant)]
pub(super) enum Transform {
    Gcm(Gcm),
    Cm(Cm),
}

pub(super) struct Gcm {
    key: LessSafeKey,
    salt: Salt,
}

pub(super) struct Cm {
    cipher: Aes128,
    salt: Salt,
    auth: hmac::Key,
}

impl Transform {
    /// Derives the session keys of `stream` from `master`.
    pub(super) fn new(master: &MasterKey, stream: Stream) -> Self {
        let keys = SessionKeys::derive(master, stream);
        Self::from_session_keys(master.profile(), &keys)
    }

    /// Builds the transform from session keys directly (the RFC 7714 vectors start there).
    pub(super) fn from_session_keys(profile: SrtpProfile, keys: &SessionKeys) -> Self {
        let salt = Salt(keys.salt);
        let encryption = &keys.encryption[..profile.master_key_len()];
        match profile {
            SrtpProfile::AeadAes128Gcm | SrtpProfile::AeadAes256Gcm => {
                let algorithm = if profile == SrtpProfile::AeadAes128Gcm {
                    &AES_128_GCM
                } else {
                    &AES_256_GCM
                };
                let key = UnboundKey::new(algorithm, encryption)
                    .expect("the session key has the profile's AES key length");
                Self::Gcm(Gcm {
                    key: LessSafeKey::new(key),
                    salt,
                })
            }
            SrtpProfile::Aes128CmHmacSha1_80 => Self::Cm(Cm {
                cipher: Aes128::new_from_slice(encryption)
                    .expect("the session key has AES-128's key length"),
                salt,
                auth: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &keys.authentication),
            }),
        }
    }

    fn tag_len(&self) -> usize {
        match self {
            Self::Gcm(_) => GCM_TAG_LEN,
            Self::Cm(_) => CM_TAG_LEN,
        }
    }

    /// Encrypts and tags an RTP packet. `packet` is header, payload and room for the tag;
    /// `header_len` covers the CSRCs and the header extension.
    pub(super) fn seal_rtp(&self, packet: &mut [u8], header_len: usize, ssrc: u32, index: u64) {
        let plain_end = packet.len() - self.tag_len();
        match self {
            Self::Gcm(gcm) => {
                let (header, rest) = packet.split_at_mut(header_len);
                let (payload, tag_out) = rest.split_at_mut(plain_end - header_len);
                let tag = gcm
                    .key
                    .seal_in_place_separate_tag(
                        gcm.rtp_nonce(ssrc, index),
                        Aad::from(&*header),
                        payload,
                    )
                    .expect("an RTP packet is far below AES-GCM's length limit");
                tag_out.copy_from_slice(tag.as_ref());
            }
            Self::Cm(cm) => {
                cm.apply_keystream(ssrc, index, &mut packet[header_len..plain_end]);
                let (body, tag_out) = packet.split_at_mut(plain_end);
                tag_out.copy_from_slice(&cm.tag(body, Some(roc_of(index))));
            }
        }
    }

    /// Verifies and decrypts an SRTP packet in place; returns the length of the RTP packet.
    pub(super) fn open_rtp(
        &self,
        packet: &mut [u8],
        header_len: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<usize, SrtpError> {
        let plain_end = packet.len() - self.tag_len();
        match self {
            Self::Gcm(gcm) => {
                let (header, rest) = packet.split_at_mut(header_len);
                gcm.key
                    .open_in_place(gcm.rtp_nonce(ssrc, index), Aad::from(&*header), rest)
                    .map_err(|_| SrtpError::AuthFailed)?;
            }
            Self::Cm(cm) => {
                let (body, tag) = packet.split_at_mut(plain_end);
                cm.verify(body, Some(roc_of(index)), tag)?;
                cm.apply_keystream(ssrc, index, &mut body[header_len..]);
            }
        }
        Ok(plain_end)
    }

    /// Where the E-bit/index word sits in an SRTCP packet of `len` bytes (at least the overhead).
    pub(super) fn srtcp_index_at(&self, len: usize) -> usize {
        match self {
            Self::Gcm(_) => len - SRTCP_INDEX_LEN,
            Self::Cm(_) => len - CM_TAG_LEN - SRTCP_INDEX_LEN,
        }
    }

    /// Encrypts and tags an RTCP packet with the E-bit set. `packet` is the compound RTCP packet
    /// and room for the overhead; `index` has at most 31 bits.
    pub(super) fn seal_rtcp(&self, packet: &mut [u8], ssrc: u32, index: u32) {
        let word = (SRTCP_E_BIT | index).to_be_bytes();
        let plain_end = packet.len() - self.tag_len() - SRTCP_INDEX_LEN;
        match self {
            Self::Gcm(gcm) => {
                let aad = gcm_rtcp_aad(&packet[..RTCP_HEADER_LEN], word);
                let (body, trailer) =
                    packet[RTCP_HEADER_LEN..].split_at_mut(plain_end - RTCP_HEADER_LEN);
                let tag = gcm
                    .key
                    .seal_in_place_separate_tag(gcm.rtcp_nonce(ssrc, index), Aad::from(aad), body)
                    .expect("an RTCP packet is far below AES-GCM's length limit");
                trailer[..GCM_TAG_LEN].copy_from_slice(tag.as_ref());
                trailer[GCM_TAG_LEN..].copy_from_slice(&word);
            }
            Self::Cm(cm) => {
                cm.apply_keystream(
                    ssrc,
                    u64::from(index),
                    &mut packet[RTCP_HEADER_LEN..plain_end],
                );
                let tag_at = plain_end + SRTCP_INDEX_LEN;
                packet[plain_end..tag_at].copy_from_slice(&word);
                let (body, tag_out) = packet.split_at_mut(tag_at);
                tag_out.copy_from_slice(&cm.tag(body, None));
            }
        }
    }

    /// Verifies and, if the E-bit is set, decrypts an SRTCP packet in place; returns the length of
    /// the RTCP packet. `word` is the E-bit/index word read from [`Self::srtcp_index_at`].
    pub(super) fn open_rtcp(
        &self,
        packet: &mut [u8],
        ssrc: u32,
        word: u32,
    ) -> Result<usize, SrtpError> {
        let index = word & !SRTCP_E_BIT;
        let encrypted = word & SRTCP_E_BIT != 0;
        let plain_end = packet.len() - self.tag_len() - SRTCP_INDEX_LEN;
        match self {
            Self::Gcm(gcm) => {
                let nonce = gcm.rtcp_nonce(ssrc, index);
                if encrypted {
                    // header | ciphertext | tag | word, authenticated data = header | word.
                    let aad = gcm_rtcp_aad(&packet[..RTCP_HEADER_LEN], word.to_be_bytes());
                    let end = packet.len() - SRTCP_INDEX_LEN;
                    gcm.key
                        .open_in_place(nonce, Aad::from(aad), &mut packet[RTCP_HEADER_LEN..end])
                        .map_err(|_| SrtpError::AuthFailed)?;
                } else {
                    // packet | tag | word, authenticated data = packet | word (RFC 7714 §17).
                    // Move the word in front of the tag so that both are contiguous.
                    packet[plain_end..].rotate_right(SRTCP_INDEX_LEN);
                    let (aad, tag) = packet.split_at_mut(plain_end + SRTCP_INDEX_LEN);
                    gcm.key
                        .open_in_place(nonce, Aad::from(&*aad), tag)
                        .map_err(|_| SrtpError::AuthFailed)?;
                }
            }
            Self::Cm(cm) => {
                let tag_at = plain_end + SRTCP_INDEX_LEN;
                let (body, tag) = packet.split_at_mut(tag_at);
                cm.verify(body, None, tag)?;
                if encrypted {
                    cm.apply_keystream(
                        ssrc,
                        u64::from(index),
                        &mut body[RTCP_HEADER_LEN..plain_end],
                    );
                }
            }
        }
        Ok(plain_end)
    }
}

/// RFC 7714 §17.1: the first eight bytes of the RTCP packet, then the E-bit/index word.
fn gcm_rtcp_aad(header: &[u8], word: [u8; 4]) -> [u8; RTCP_HEADER_LEN + SRTCP_INDEX_LEN] {
    let mut aad = [0; RTCP_HEADER_LEN + SRTCP_INDEX_LEN];
    aad[..RTCP_HEADER_LEN].copy_from_slice(header);
    aad[RTCP_HEADER_LEN..].copy_from_slice(&word);
    aad
}

impl Gcm {
    /// RFC 7714 §8.1: `00 00 | SSRC | ROC | SEQ` XOR the session salt.
    fn rtp_nonce(&self, ssrc: u32, index: u64) -> Nonce {
        let mut iv = [0; GCM_IV_LEN];
        iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
        iv[6..12].copy_from_slice(&index.to_be_bytes()[2..]);
        self.nonce(iv)
    }

    /// RFC 7714 §9.1: `00 00 | SSRC | 00 00 | 0 + 31-bit index` XOR the session salt.
    fn rtcp_nonce(&self, ssrc: u32, index: u32) -> Nonce {
        let mut iv = [0; GCM_IV_LEN];
        iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
        iv[8..12].copy_from_slice(&index.to_be_bytes());
        self.nonce(iv)
    }

    fn nonce(&self, mut iv: [u8; GCM_IV_LEN]) -> Nonce {
        for (byte, salt) in iv.iter_mut().zip(&self.salt.0) {
            *byte ^= salt;
        }
        Nonce::assume_unique_for_key(iv)
    }
}

impl Cm {
    /// RFC 3711 §4.1.1: the keystream starts at `salt << 16 XOR SSRC << 64 XOR index << 16`;
    /// the SRTCP index takes the place of the SRTP index.
    fn apply_keystream(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[4..8].copy_from_slice(&ssrc.to_be_bytes());
        iv[8..14].copy_from_slice(&index.to_be_bytes()[2..]);
        for (byte, salt) in iv.iter_mut().zip(&self.salt.0) {
            *byte ^= salt;
        }
        let core =
            CtrCore::<Aes128, flavors::Ctr128BE>::inner_iv_init(self.cipher.clone(), &iv.into());
        Ctr128BE::<Aes128>::from_core(core).apply_keystream(data);
    }

    /// HMAC-SHA1 over the authenticated portion (and for SRTP the rollover counter), cut to 80
    /// bits (RFC 3711 §4.2).
    fn tag(&self, authenticated: &[u8], roc: Option<u32>) -> [u8; CM_TAG_LEN] {
        let mut context = hmac::Context::with_key(&self.auth);
        context.update(authenticated);
        if let Some(roc) = roc {
            context.update(&roc.to_be_bytes());
        }
        let mut tag = [0; CM_TAG_LEN];
        tag.copy_from_slice(&context.sign().as_ref()[..CM_TAG_LEN]);
        tag
    }

    fn verify(&self, authenticated: &[u8], roc: Option<u32>, tag: &[u8]) -> Result<(), SrtpError> {
        if bool::from(self.tag(authenticated, roc).ct_eq(tag)) {
            Ok(())
        } else {
            Err(SrtpError::AuthFailed)
        }
    }
}

#[cfg(test)]
impl Cm {
    /// The raw keystream for SSRC 0 and index 0, for the RFC 3711 B.2 vector.
    pub(super) fn keystream_for_test(&self, out: &mut [u8]) {
        out.fill(0);
        self.apply_keystream(0, 0, out);
    }
}
