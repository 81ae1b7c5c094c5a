//! Master keys, the RFC 5764 split of DTLS keying material, and the RFC 3711 key derivation.

use std::fmt;

use aes::{Aes128, Aes256};
use ctr::Ctr128BE;
use ctr::cipher::{KeyIvInit, StreamCipher};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{SrtpError, SrtpProfile};

/// The TLS exporter label for DTLS-SRTP keying material (RFC 5764 §4.2); export without context.
pub const DTLS_SRTP_EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// Longest master key of any profile (AES-256).
pub(super) const MAX_KEY_LEN: usize = 32;
/// Longest master salt of any profile (112 bits, AES-CM).
pub(super) const MAX_SALT_LEN: usize = 14;
/// Length of the HMAC-SHA1 session authentication key (RFC 3711 §8.2: 160 bits).
pub(super) const AUTH_KEY_LEN: usize = 20;

/// Which end of the DTLS handshake we were. An SFU is the DTLS server, but either works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtlsRole {
    /// We sent the ClientHello.
    Client,
    /// We answered it.
    Server,
}

/// One direction's SRTP master key and master salt. `Debug` prints `[redacted]`; the bytes are
/// overwritten when the value is dropped.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    #[zeroize(skip)]
    profile: SrtpProfile,
    key: [u8; MAX_KEY_LEN],
    salt: [u8; MAX_SALT_LEN],
}

impl MasterKey {
    /// A master key and salt of `profile`'s lengths.
    pub fn new(profile: SrtpProfile, key: &[u8], salt: &[u8]) -> Result<Self, SrtpError> {
        if key.len() != profile.master_key_len() || salt.len() != profile.master_salt_len() {
            return Err(SrtpError::KeyLength);
        }
        let mut master = Self {
            profile,
            key: [0; MAX_KEY_LEN],
            salt: [0; MAX_SALT_LEN],
        };
        master.key[..key.len()].copy_from_slice(key);
        master.salt[..salt.len()].copy_from_slice(salt);
        Ok(master)
    }

    /// The profile this key belongs to.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    fn key(&self) -> &[u8] {
        &self.key[..self.profile.master_key_len()]
    }

    /// The salt padded with zeros to 112 bits, as the key derivation uses it: the 96-bit GCM salt
    /// is padded on the right, as libsrtp (and so every browser) does.
    fn padded_salt(&self) -> &[u8; MAX_SALT_LEN] {
        &self.salt
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("profile", &self.profile)
            .field("key", &format_args!("[redacted]"))
            .finish()
    }
}

/// The two master keys of one DTLS-SRTP session: ours to protect what we send, the peer's to
/// unprotect what we receive.
#[derive(Debug)]
pub struct MasterKeys {
    /// Protects what we send; build the sending [`super::SrtpContext`] from it.
    pub local: MasterKey,
    /// Unprotects what we receive; build the receiving [`super::SrtpContext`] from it.
    pub remote: MasterKey,
}

impl MasterKeys {
    /// Splits keying material exported from DTLS (RFC 5764 §4.2: client key, server key, client
    /// salt, server salt) into ours and the peer's, given our DTLS `role`.
    pub fn from_keying_material(
        profile: SrtpProfile,
        material: &[u8],
        role: DtlsRole,
    ) -> Result<Self, SrtpError> {
        if material.len() != profile.keying_material_len() {
            return Err(SrtpError::KeyingMaterialLength);
        }
        let (keys, salts) = material.split_at(2 * profile.master_key_len());
        let (client_key, server_key) = keys.split_at(profile.master_key_len());
        let (client_salt, server_salt) = salts.split_at(profile.master_salt_len());
        let client = MasterKey::new(profile, client_key, client_salt)?;
        let server = MasterKey::new(profile, server_key, server_salt)?;
        Ok(match role {
            DtlsRole::Client => Self {
                local: client,
                remote: server,
            },
            DtlsRole::Server => Self {
                local: server,
                remote: client,
            },
        })
    }
}

/// The key derivation labels of RFC 3711 §4.3.1 and §4.3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Label {
    RtpEncryption = 0x00,
    RtpAuthentication = 0x01,
    RtpSalt = 0x02,
    RtcpEncryption = 0x03,
    RtcpAuthentication = 0x04,
    RtcpSalt = 0x05,
}

/// Which stream a set of session keys serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stream {
    Rtp,
    Rtcp,
}

impl Stream {
    fn labels(self) -> [Label; 3] {
        match self {
            Self::Rtp => [
                Label::RtpEncryption,
                Label::RtpAuthentication,
                Label::RtpSalt,
            ],
            Self::Rtcp => [
                Label::RtcpEncryption,
                Label::RtcpAuthentication,
                Label::RtcpSalt,
            ],
        }
    }
}

/// Session keys of one stream (SRTP or SRTCP), overwritten when dropped. Only the first
/// `profile`-dependent bytes of each array are used.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(super) struct SessionKeys {
    pub(super) encryption: [u8; MAX_KEY_LEN],
    pub(super) salt: [u8; MAX_SALT_LEN],
    pub(super) authentication: [u8; AUTH_KEY_LEN],
}

impl SessionKeys {
    /// Derives the session keys of `stream` with key derivation rate 0 (RFC 3711 §4.3; RFC 7714
    /// §11 uses the same function for AES-GCM). The authentication key is derived for AES-CM only.
    pub(super) fn derive(master: &MasterKey, stream: Stream) -> Self {
        let profile = master.profile();
        let [encryption, authentication, salt] = stream.labels();
        let mut keys = Self {
            encryption: [0; MAX_KEY_LEN],
            salt: [0; MAX_SALT_LEN],
            authentication: [0; AUTH_KEY_LEN],
        };
        prf(
            master,
            encryption,
            &mut keys.encryption[..profile.master_key_len()],
        );
        prf(master, salt, &mut keys.salt[..profile.master_salt_len()]);
        if !profile.is_gcm() {
            prf(master, authentication, &mut keys.authentication);
        }
        keys
    }
}

/// The AES-CM pseudo-random function of RFC 3711 §4.3.3: the keystream of AES in counter mode
/// under the master key, starting at `(label << 48 XOR master_salt) << 16`.
pub(super) fn prf(master: &MasterKey, label: Label, out: &mut [u8]) {
    let mut iv = Zeroizing::new([0u8; 16]);
    iv[..MAX_SALT_LEN].copy_from_slice(master.padded_salt());
    // key_id = label || r with r = 0 (48 bits): the label lands on the 8th byte of the salt.
    iv[7] ^= label as u8;
    out.fill(0);
    match master.profile() {
        SrtpProfile::Aes128CmHmacSha1_80 | SrtpProfile::AeadAes128Gcm => {
            Ctr128BE::<Aes128>::new_from_slices(master.key(), &iv[..])
                .expect("a 16-byte master key and a 16-byte counter block")
                .apply_keystream(out);
        }
        SrtpProfile::AeadAes256Gcm => {
            Ctr128BE::<Aes256>::new_from_slices(master.key(), &iv[..])
                .expect("a 32-byte master key and a 16-byte counter block")
                .apply_keystream(out);
        }
    }
}
