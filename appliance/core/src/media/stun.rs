//! STUN (RFC 8489, RFC 5389) as an ICE-lite agent (RFC 8445) needs it.
//!
//! * [`StunMessage::parse`] checks a datagram strictly and returns a view that borrows it: the
//!   header, the framing of every attribute and the values of the attributes this module knows.
//!   Nothing is copied or allocated.
//! * [`StunMessage::verify_fingerprint`] and [`StunMessage::verify_integrity`] check FINGERPRINT
//!   (CRC-32) and MESSAGE-INTEGRITY (HMAC-SHA1 with the short-term credential, i.e. the ICE
//!   password); the tag is compared in constant time.
//! * [`check_binding_request`] is the ICE-lite decision for one Binding request;
//!   [`answer_binding_request`] also writes the response to send.
//! * [`encode_binding_success`], [`encode_binding_error`] and [`encode_binding_request`] append
//!   messages to a caller's buffer.
//!
//! What the parser enforces: a 20-byte header with the two top bits zero and the magic cookie;
//! a length that is a multiple of four and equals the datagram's rest (no trailing bytes); every
//! attribute, padding included, inside the message (attributes start aligned, so a missing
//! padding shows as a length that is not a multiple of four); at most one MESSAGE-INTEGRITY and
//! at most one FINGERPRINT, which must be last. Padding bytes may hold any value (RFC 8489 §14;
//! the RFC 5769 vectors pad with spaces). As RFC 8489 §14.5 requires, attributes between
//! MESSAGE-INTEGRITY and FINGERPRINT are ignored: their framing is checked, but no lookup and no
//! iterator sees them.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ring::hmac;
use subtle::ConstantTimeEq;

/// The fixed value in bytes 4–7 of every STUN header since RFC 5389.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;

/// Length of the STUN header.
pub const HEADER_LEN: usize = 20;

/// The STUN method of ICE connectivity checks.
pub const METHOD_BINDING: u16 = 0x001;

/// XORed into the CRC-32 of a FINGERPRINT (RFC 8489 §14.7): "STUN" in ASCII.
const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// Length of an HMAC-SHA1 tag, the value of MESSAGE-INTEGRITY.
const INTEGRITY_LEN: usize = 20;

/// Longest USERNAME value (RFC 8489 §14.3).
const MAX_USERNAME_LEN: usize = 512;

/// Longest SOFTWARE value and ERROR-CODE reason phrase (RFC 8489 §14.8, §14.14).
const MAX_TEXT_LEN: usize = 763;

/// Attribute types this module reads or writes (RFC 8489 §18.3, RFC 8445 §16.1).
pub mod attr {
    /// MAPPED-ADDRESS (not read; listed so that it is not an unknown required attribute).
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    /// USERNAME: for ICE, "receiver's ufrag:sender's ufrag".
    pub const USERNAME: u16 = 0x0006;
    /// MESSAGE-INTEGRITY: HMAC-SHA1 over the message up to this attribute.
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    /// ERROR-CODE: class, number and reason phrase of an error response.
    pub const ERROR_CODE: u16 = 0x0009;
    /// UNKNOWN-ATTRIBUTES (not read).
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    /// REALM (not read; long-term credentials only).
    pub const REALM: u16 = 0x0014;
    /// NONCE (not read; long-term credentials only).
    pub const NONCE: u16 = 0x0015;
    /// MESSAGE-INTEGRITY-SHA256 (not read).
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    /// PASSWORD-ALGORITHM (not read).
    pub const PASSWORD_ALGORITHM: u16 = 0x001D;
    /// USERHASH (not read).
    pub const USERHASH: u16 = 0x001E;
    /// XOR-MAPPED-ADDRESS: the transport address the request came from.
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    /// PRIORITY: the priority of the peer-reflexive candidate (ICE).
    pub const PRIORITY: u16 = 0x0024;
    /// USE-CANDIDATE: the controlling agent nominates this pair (ICE).
    pub const USE_CANDIDATE: u16 = 0x0025;
    /// SOFTWARE: a description of the sender's software.
    pub const SOFTWARE: u16 = 0x8022;
    /// FINGERPRINT: CRC-32 of the message up to this attribute, XOR 0x5354554e.
    pub const FINGERPRINT: u16 = 0x8028;
    /// ICE-CONTROLLED: the sender is controlled; value is its tie-breaker (ICE).
    pub const ICE_CONTROLLED: u16 = 0x8029;
    /// ICE-CONTROLLING: the sender is controlling; value is its tie-breaker (ICE).
    pub const ICE_CONTROLLING: u16 = 0x802A;

    /// Comprehension-required types (below 0x8000) this implementation understands.
    pub(super) const KNOWN_REQUIRED: [u16; 13] = [
        MAPPED_ADDRESS,
        USERNAME,
        MESSAGE_INTEGRITY,
        ERROR_CODE,
        UNKNOWN_ATTRIBUTES,
        REALM,
        NONCE,
        MESSAGE_INTEGRITY_SHA256,
        PASSWORD_ALGORITHM,
        USERHASH,
        XOR_MAPPED_ADDRESS,
        PRIORITY,
        USE_CANDIDATE,
    ];
}

/// Why bytes are not an acceptable STUN message, or why a check failed. Closed: it never carries
/// peer data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum StunError {
    /// Shorter than the 20-byte header.
    #[error("datagram is shorter than a STUN header")]
    TooShort,
    /// One of the two top bits of the first byte is set.
    #[error("first two bits of a STUN message must be zero")]
    NotStun,
    /// Bytes 4–7 are not 0x2112A442.
    #[error("magic cookie is wrong")]
    BadMagicCookie,
    /// The length field is not a multiple of four.
    #[error("message length is not a multiple of four")]
    UnalignedLength,
    /// Header length plus the length field is not the size of the datagram.
    #[error("message length does not match the datagram")]
    LengthMismatch,
    /// An attribute's header or value runs past the end of the message.
    #[error("attribute runs past the end of the message")]
    AttributeOverrun,
    /// A known attribute has a value of the wrong length or form.
    #[error("attribute {0:?} has an invalid value")]
    InvalidAttribute(AttributeName),
    /// A second MESSAGE-INTEGRITY.
    #[error("more than one MESSAGE-INTEGRITY attribute")]
    DuplicateIntegrity,
    /// A second FINGERPRINT.
    #[error("more than one FINGERPRINT attribute")]
    DuplicateFingerprint,
    /// An attribute follows FINGERPRINT, which must be last.
    #[error("an attribute follows FINGERPRINT")]
    AttributeAfterFingerprint,
    /// FINGERPRINT was asked for but is absent.
    #[error("message has no FINGERPRINT")]
    MissingFingerprint,
    /// FINGERPRINT does not match the message.
    #[error("FINGERPRINT does not match")]
    FingerprintMismatch,
    /// MESSAGE-INTEGRITY was asked for but is absent.
    #[error("message has no MESSAGE-INTEGRITY")]
    MissingIntegrity,
    /// MESSAGE-INTEGRITY does not match the message and the key.
    #[error("MESSAGE-INTEGRITY does not match")]
    IntegrityMismatch,
}

/// The attributes whose values this module checks; names the culprit of
/// [`StunError::InvalidAttribute`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // each is the attribute of the same name in `attr`
pub enum AttributeName {
    Username,
    MessageIntegrity,
    ErrorCode,
    XorMappedAddress,
    Priority,
    UseCandidate,
    Software,
    Fingerprint,
    IceControlled,
    IceControlling,
}

/// The class of a STUN message (RFC 8489 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Asks for a response.
    Request,
    /// Asks for nothing.
    Indication,
    /// Answers a request with success.
    SuccessResponse,
    /// Answers a request with an error.
    ErrorResponse,
}

impl Class {
    fn bits(self) -> u16 {
        match self {
            Self::Request => 0b00,
            Self::Indication => 0b01,
            Self::SuccessResponse => 0b10,
            Self::ErrorResponse => 0b11,
        }
    }
}

/// The 96-bit transaction ID that pairs a response with its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransactionId(pub [u8; 12]);

/// One attribute as it appears on the wire: its type and its value without padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// The attribute type, e.g. [`attr::USERNAME`].
    pub kind: u16,
    /// The value, without padding.
    pub value: &'a [u8],
}

/// The value of an ERROR-CODE attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCodeAttribute<'a> {
    /// The code, 300 to 699.
    pub code: u16,
    /// The reason phrase, as sent by the peer: never log it unfiltered.
    pub reason: &'a str,
}

/// A checked STUN message that borrows the datagram it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StunMessage<'a> {
    bytes: &'a [u8],
    class: Class,
    method: u16,
    /// Offset of the MESSAGE-INTEGRITY attribute's header.
    integrity_at: Option<usize>,
    /// Offset of the FINGERPRINT attribute's header.
    fingerprint_at: Option<usize>,
    /// End of the attributes that count: the end of MESSAGE-INTEGRITY if there is one, else
    /// the start of FINGERPRINT or the end of the message.
    counted_end: usize,
}

impl<'a> StunMessage<'a> {
    /// Parses one datagram. See the [module documentation](self) for what is checked.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, StunError> {
        let header: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(StunError::TooShort)?;
        if header[0] & 0xC0 != 0 {
            return Err(StunError::NotStun);
        }
        if read_u32(header, 4) != Some(MAGIC_COOKIE) {
            return Err(StunError::BadMagicCookie);
        }
        let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if length % 4 != 0 {
            return Err(StunError::UnalignedLength);
        }
        if HEADER_LEN + length != bytes.len() {
            return Err(StunError::LengthMismatch);
        }
        let message_type = u16::from_be_bytes([header[0], header[1]]);
        let (class, method) = split_type(message_type);

        let mut integrity_at = None;
        let mut fingerprint_at = None;
        let mut at = HEADER_LEN;
        while at < bytes.len() {
            let (kind, value, next) = read_attribute(bytes, at)?;
            if kind == attr::FINGERPRINT && fingerprint_at.is_some() {
                return Err(StunError::DuplicateFingerprint);
            }
            if fingerprint_at.is_some() {
                return Err(StunError::AttributeAfterFingerprint);
            }
            match kind {
                attr::MESSAGE_INTEGRITY => {
                    if integrity_at.is_some() {
                        return Err(StunError::DuplicateIntegrity);
                    }
                    if value.len() != INTEGRITY_LEN {
                        return Err(StunError::InvalidAttribute(AttributeName::MessageIntegrity));
                    }
                    integrity_at = Some(at);
                }
                attr::FINGERPRINT => {
                    if value.len() != 4 {
                        return Err(StunError::InvalidAttribute(AttributeName::Fingerprint));
                    }
                    fingerprint_at = Some(at);
                }
                // Ignored after MESSAGE-INTEGRITY (RFC 8489 §14.5): framing only.
                _ if integrity_at.is_some() => {}
                _ => check_value(kind, value, header)?,
            }
            at = next;
        }
        let counted_end = match (integrity_at, fingerprint_at) {
            (Some(mi), _) => mi + 4 + INTEGRITY_LEN,
            (None, Some(fp)) => fp,
            (None, None) => bytes.len(),
        };
        Ok(Self {
            bytes,
            class,
            method,
            integrity_at,
            fingerprint_at,
            counted_end,
        })
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The class: request, indication or response.
    pub fn class(&self) -> Class {
        self.class
    }

    /// The 12-bit method, e.g. [`METHOD_BINDING`].
    pub fn method(&self) -> u16 {
        self.method
    }

    /// Whether this is a Binding request, the message of ICE connectivity checks.
    pub fn is_binding_request(&self) -> bool {
        self.class == Class::Request && self.method == METHOD_BINDING
    }

    /// The transaction ID.
    pub fn transaction_id(&self) -> TransactionId {
        let mut id = [0; 12];
        id.copy_from_slice(&self.bytes[8..HEADER_LEN]);
        TransactionId(id)
    }

    /// The attributes that count, in order: those before MESSAGE-INTEGRITY, MESSAGE-INTEGRITY
    /// itself and FINGERPRINT. Attributes between the two are ignored (RFC 8489 §14.5).
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            bytes: self.bytes,
            at: HEADER_LEN,
            end: self.counted_end,
            fingerprint_at: self.fingerprint_at,
        }
    }

    /// The value of the first counted attribute of this type.
    pub fn attribute(&self, kind: u16) -> Option<&'a [u8]> {
        self.attributes()
            .find(|attribute| attribute.kind == kind)
            .map(|attribute| attribute.value)
    }

    /// USERNAME; for an ICE check "receiver's ufrag:sender's ufrag".
    pub fn username(&self) -> Option<&'a str> {
        text(self.attribute(attr::USERNAME)?, MAX_USERNAME_LEN)
    }

    /// SOFTWARE, as sent by the peer: never log it unfiltered.
    pub fn software(&self) -> Option<&'a str> {
        text(self.attribute(attr::SOFTWARE)?, MAX_TEXT_LEN)
    }

    /// PRIORITY (ICE).
    pub fn priority(&self) -> Option<u32> {
        fixed_u32(self.attribute(attr::PRIORITY)?)
    }

    /// Whether USE-CANDIDATE is present (ICE).
    pub fn use_candidate(&self) -> bool {
        self.attribute(attr::USE_CANDIDATE).is_some()
    }

    /// The tie-breaker of ICE-CONTROLLING, if present.
    pub fn ice_controlling(&self) -> Option<u64> {
        fixed_u64(self.attribute(attr::ICE_CONTROLLING)?)
    }

    /// The tie-breaker of ICE-CONTROLLED, if present.
    pub fn ice_controlled(&self) -> Option<u64> {
        fixed_u64(self.attribute(attr::ICE_CONTROLLED)?)
    }

    /// XOR-MAPPED-ADDRESS, decoded.
    pub fn xor_mapped_address(&self) -> Option<SocketAddr> {
        let value = self.attribute(attr::XOR_MAPPED_ADDRESS)?;
        decode_xor_address(value, &self.bytes[4..HEADER_LEN])
    }

    /// ERROR-CODE, decoded.
    pub fn error_code(&self) -> Option<ErrorCodeAttribute<'a>> {
        decode_error_code(self.attribute(attr::ERROR_CODE)?)
    }

    /// The 20-byte value of MESSAGE-INTEGRITY, if present.
    pub fn message_integrity(&self) -> Option<&'a [u8]> {
        let at = self.integrity_at?;
        self.bytes.get(at + 4..at + 4 + INTEGRITY_LEN)
    }

    /// The value of FINGERPRINT, if present.
    pub fn fingerprint(&self) -> Option<u32> {
        read_u32(self.bytes, self.fingerprint_at? + 4)
    }

    /// The first counted attribute of a comprehension-required type (below 0x8000) that this
    /// module does not know; RFC 8489 §6.3.1 rejects a request that carries one.
    pub fn unknown_required_attribute(&self) -> Option<u16> {
        self.attributes()
            .map(|attribute| attribute.kind)
            .find(|kind| *kind < 0x8000 && !attr::KNOWN_REQUIRED.contains(kind))
    }

    /// Checks FINGERPRINT: CRC-32 over the message before it (with the header's length as if
    /// FINGERPRINT ended the message), XOR 0x5354554e.
    pub fn verify_fingerprint(&self) -> Result<(), StunError> {
        let at = self.fingerprint_at.ok_or(StunError::MissingFingerprint)?;
        let sent = read_u32(self.bytes, at + 4).ok_or(StunError::MissingFingerprint)?;
        if fingerprint(&self.bytes[..at]) == sent {
            Ok(())
        } else {
            Err(StunError::FingerprintMismatch)
        }
    }

    /// Checks MESSAGE-INTEGRITY with a short-term credential: `key` is the password (for ICE,
    /// the receiver's ICE password) as bytes. The tag is compared in constant time.
    pub fn verify_integrity(&self, key: &[u8]) -> Result<(), StunError> {
        let at = self.integrity_at.ok_or(StunError::MissingIntegrity)?;
        let sent = self
            .message_integrity()
            .ok_or(StunError::MissingIntegrity)?;
        let tag = integrity(&self.bytes[..at], key);
        if bool::from(tag.as_ref().ct_eq(sent)) {
            Ok(())
        } else {
            Err(StunError::IntegrityMismatch)
        }
    }
}

/// The counted attributes of a [`StunMessage`], in order.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    bytes: &'a [u8],
    at: usize,
    end: usize,
    fingerprint_at: Option<usize>,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;

    fn next(&mut self) -> Option<Attribute<'a>> {
        if self.at >= self.end {
            // FINGERPRINT comes last, after any ignored attributes.
            let at = self.fingerprint_at.take()?;
            self.at = self.bytes.len();
            let (kind, value, _) = read_attribute(self.bytes, at).ok()?;
            return Some(Attribute { kind, value });
        }
        let (kind, value, next) = read_attribute(self.bytes, self.at).ok()?;
        self.at = next;
        Some(Attribute { kind, value })
    }
}

/// `(class, method)` of a message type (RFC 8489 §5: the class bits sit between method bits).
fn split_type(message_type: u16) -> (Class, u16) {
    let class = match ((message_type >> 7) & 0b10) | ((message_type >> 4) & 0b01) {
        0b00 => Class::Request,
        0b01 => Class::Indication,
        0b10 => Class::SuccessResponse,
        _ => Class::ErrorResponse,
    };
    let method =
        (message_type & 0x000F) | ((message_type >> 1) & 0x0070) | ((message_type >> 2) & 0x0F80);
    (class, method)
}

/// The message type of `class` and `method` (the inverse of [`split_type`]).
fn join_type(class: Class, method: u16) -> u16 {
    let c = class.bits();
    (method & 0x000F)
        | ((method & 0x0070) << 1)
        | ((method & 0x0F80) << 2)
        | ((c & 0b01) << 4)
        | ((c & 0b10) << 7)
}

/// Reads the attribute at `at`: `(type, value, offset of the next attribute)`.
fn read_attribute(bytes: &[u8], at: usize) -> Result<(u16, &[u8], usize), StunError> {
    let header = bytes.get(at..at + 4).ok_or(StunError::AttributeOverrun)?;
    let kind = u16::from_be_bytes([header[0], header[1]]);
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let value = bytes
        .get(at + 4..at + 4 + len)
        .ok_or(StunError::AttributeOverrun)?;
    // Attributes start aligned and the message length is a multiple of four, so a value that
    // fits has room for its padding; the check only keeps the iterator honest.
    let next = at + 4 + padded(len);
    if next > bytes.len() {
        return Err(StunError::AttributeOverrun);
    }
    Ok((kind, value, next))
}

/// Checks the value of a counted attribute this module reads.
fn check_value(kind: u16, value: &[u8], header: &[u8; HEADER_LEN]) -> Result<(), StunError> {
    let (name, ok) = match kind {
        attr::USERNAME => (
            AttributeName::Username,
            text(value, MAX_USERNAME_LEN).is_some(),
        ),
        attr::SOFTWARE => (AttributeName::Software, text(value, MAX_TEXT_LEN).is_some()),
        attr::PRIORITY => (AttributeName::Priority, value.len() == 4),
        attr::USE_CANDIDATE => (AttributeName::UseCandidate, value.is_empty()),
        attr::ICE_CONTROLLING => (AttributeName::IceControlling, value.len() == 8),
        attr::ICE_CONTROLLED => (AttributeName::IceControlled, value.len() == 8),
        attr::XOR_MAPPED_ADDRESS => (
            AttributeName::XorMappedAddress,
            decode_xor_address(value, &header[4..]).is_some(),
        ),
        attr::ERROR_CODE => (AttributeName::ErrorCode, decode_error_code(value).is_some()),
        _ => return Ok(()),
    };
    if ok {
        Ok(())
    } else {
        Err(StunError::InvalidAttribute(name))
    }
}

fn padded(len: usize) -> usize {
    (len + 3) & !3
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn fixed_u32(value: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(value.try_into().ok()?))
}

fn fixed_u64(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.try_into().ok()?))
}

fn text(value: &[u8], max_len: usize) -> Option<&str> {
    if value.len() > max_len {
        return None;
    }
    core::str::from_utf8(value).ok()
}

/// Decodes XOR-MAPPED-ADDRESS; `cookie_and_id` is bytes 4–19 of the header.
fn decode_xor_address(value: &[u8], cookie_and_id: &[u8]) -> Option<SocketAddr> {
    let port_mask = u16::from_be_bytes([cookie_and_id[0], cookie_and_id[1]]);
    match *value {
        [_, 0x01, p0, p1, ref address @ ..] if address.len() == 4 => {
            let mut ip = [0; 4];
            for (i, byte) in ip.iter_mut().enumerate() {
                *byte = address[i] ^ cookie_and_id[i];
            }
            let port = u16::from_be_bytes([p0, p1]) ^ port_mask;
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
        }
        [_, 0x02, p0, p1, ref address @ ..] if address.len() == 16 => {
            let mut ip = [0; 16];
            for (i, byte) in ip.iter_mut().enumerate() {
                *byte = address[i] ^ cookie_and_id[i];
            }
            let port = u16::from_be_bytes([p0, p1]) ^ port_mask;
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port))
        }
        _ => None,
    }
}

/// Encodes XOR-MAPPED-ADDRESS into `out`; `cookie_and_id` is bytes 4–19 of the header.
fn encode_xor_address(address: SocketAddr, cookie_and_id: &[u8], out: &mut Vec<u8>) {
    let port_mask = u16::from_be_bytes([cookie_and_id[0], cookie_and_id[1]]);
    let port = (address.port() ^ port_mask).to_be_bytes();
    match address.ip() {
        IpAddr::V4(ip) => {
            out.extend_from_slice(&[0, 0x01, port[0], port[1]]);
            out.extend(ip.octets().iter().zip(cookie_and_id).map(|(a, m)| a ^ m));
        }
        IpAddr::V6(ip) => {
            out.extend_from_slice(&[0, 0x02, port[0], port[1]]);
            out.extend(ip.octets().iter().zip(cookie_and_id).map(|(a, m)| a ^ m));
        }
    }
}

fn decode_error_code(value: &[u8]) -> Option<ErrorCodeAttribute<'_>> {
    let [_, _, class, number, ref reason @ ..] = *value else {
        return None;
    };
    let class = class & 0x07;
    if !(3..=6).contains(&class) || number > 99 {
        return None;
    }
    Some(ErrorCodeAttribute {
        code: u16::from(class) * 100 + u16::from(number),
        reason: text(reason, MAX_TEXT_LEN)?,
    })
}

/// The 16-bit length field for a message whose attributes end at `end` (an offset from the start
/// of the message).
fn length_field(end: usize) -> [u8; 2] {
    u16::try_from(end - HEADER_LEN)
        .expect("messages this module checks or writes are at most 20 + 65535 bytes")
        .to_be_bytes()
}

/// FINGERPRINT of a message whose attributes before FINGERPRINT are `before`.
fn fingerprint(before: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&before[..2]);
    crc.update(&length_field(before.len() + 8));
    crc.update(&before[4..]);
    crc.finalize() ^ FINGERPRINT_XOR
}

/// MESSAGE-INTEGRITY of a message whose attributes before MESSAGE-INTEGRITY are `before`.
fn integrity(before: &[u8], key: &[u8]) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let mut mac = hmac::Context::with_key(&key);
    mac.update(&before[..2]);
    mac.update(&length_field(before.len() + 4 + INTEGRITY_LEN));
    mac.update(&before[4..]);
    mac.sign()
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// The error codes the ICE-lite agent sends (RFC 8489 §14.8, RFC 8445 §7.3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BindingErrorCode {
    /// 400: the request lacks an attribute or is malformed.
    BadRequest,
    /// 401: the username or the integrity check is wrong.
    Unauthorized,
    /// 487: the peer claims the controlled role too; an ICE-lite agent is always controlled.
    RoleConflict,
}

impl BindingErrorCode {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::RoleConflict => 487,
        }
    }

    /// The reason phrase sent with it.
    pub fn reason(self) -> &'static str {
        match self {
            Self::BadRequest => "Bad Request",
            Self::Unauthorized => "Unauthorized",
            Self::RoleConflict => "Role Conflict",
        }
    }
}

/// The role an ICE agent claims in a request, with its tie-breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceRole {
    /// ICE-CONTROLLING with this tie-breaker.
    Controlling(u64),
    /// ICE-CONTROLLED with this tie-breaker.
    Controlled(u64),
}

/// A Binding request as an ICE client sends it, for [`encode_binding_request`].
#[derive(Debug, Clone, Copy)]
pub struct BindingRequest<'a> {
    /// A fresh random transaction ID.
    pub transaction_id: TransactionId,
    /// "receiver's ufrag:sender's ufrag", at most 512 bytes.
    pub username: &'a str,
    /// The receiver's ICE password: the MESSAGE-INTEGRITY key.
    pub password: &'a [u8],
    /// PRIORITY.
    pub priority: u32,
    /// ICE-CONTROLLING or ICE-CONTROLLED.
    pub role: IceRole,
    /// Whether to add USE-CANDIDATE (nominate the pair).
    pub use_candidate: bool,
}

/// Why [`encode_binding_request`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum EncodeError {
    /// USERNAME is longer than 512 bytes.
    #[error("username is longer than 512 bytes")]
    UsernameTooLong,
}

/// Appends a Binding success response: XOR-MAPPED-ADDRESS (`mapped`, the source address of the
/// request), MESSAGE-INTEGRITY keyed with `password` (the local ICE password) and FINGERPRINT.
pub fn encode_binding_success(
    transaction_id: &TransactionId,
    mapped: SocketAddr,
    password: &[u8],
    out: &mut Vec<u8>,
) {
    let start = begin(out, Class::SuccessResponse, transaction_id);
    let cookie_and_id = header_tail(transaction_id);
    let value_len = if mapped.is_ipv4() { 8 } else { 20 };
    put_attribute_header(out, attr::XOR_MAPPED_ADDRESS, value_len);
    encode_xor_address(mapped, &cookie_and_id, out);
    finish(out, start, Some(password));
}

/// Appends a Binding error response with ERROR-CODE, MESSAGE-INTEGRITY if `password` is given
/// (send it only when the request was authenticated) and FINGERPRINT.
pub fn encode_binding_error(
    transaction_id: &TransactionId,
    code: BindingErrorCode,
    password: Option<&[u8]>,
    out: &mut Vec<u8>,
) {
    let start = begin(out, Class::ErrorResponse, transaction_id);
    let reason = code.reason().as_bytes();
    let number = code.code();
    let class = u8::try_from(number / 100).expect("error codes are 300 to 699");
    let number = u8::try_from(number % 100).expect("a remainder of 100 fits a byte");
    put_attribute_header(out, attr::ERROR_CODE, 4 + reason.len());
    out.extend_from_slice(&[0, 0, class, number]);
    out.extend_from_slice(reason);
    pad(out, start);
    finish(out, start, password);
}

/// Appends a Binding request as an ICE agent sends it: USERNAME, PRIORITY, the role attribute,
/// USE-CANDIDATE if asked for, MESSAGE-INTEGRITY and FINGERPRINT. For tests, benchmarks and load
/// generators: the appliance itself is ICE-lite and sends no requests.
pub fn encode_binding_request(
    request: &BindingRequest<'_>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if request.username.len() > MAX_USERNAME_LEN {
        return Err(EncodeError::UsernameTooLong);
    }
    let start = begin(out, Class::Request, &request.transaction_id);
    put_attribute_header(out, attr::USERNAME, request.username.len());
    out.extend_from_slice(request.username.as_bytes());
    pad(out, start);
    put_attribute_header(out, attr::PRIORITY, 4);
    out.extend_from_slice(&request.priority.to_be_bytes());
    let (kind, tie_breaker) = match request.role {
        IceRole::Controlling(t) => (attr::ICE_CONTROLLING, t),
        IceRole::Controlled(t) => (attr::ICE_CONTROLLED, t),
    };
    put_attribute_header(out, kind, 8);
    out.extend_from_slice(&tie_breaker.to_be_bytes());
    if request.use_candidate {
        put_attribute_header(out, attr::USE_CANDIDATE, 0);
    }
    finish(out, start, Some(request.password));
    Ok(())
}

/// Bytes 4–19 of a header: the magic cookie and the transaction ID.
fn header_tail(transaction_id: &TransactionId) -> [u8; 16] {
    let mut tail = [0; 16];
    tail[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    tail[4..].copy_from_slice(&transaction_id.0);
    tail
}

/// Appends a header with length 0; returns where the message starts in `out`.
fn begin(out: &mut Vec<u8>, class: Class, transaction_id: &TransactionId) -> usize {
    let start = out.len();
    out.extend_from_slice(&join_type(class, METHOD_BINDING).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&header_tail(transaction_id));
    start
}

fn put_attribute_header(out: &mut Vec<u8>, kind: u16, len: usize) {
    let len = u16::try_from(len).expect("attribute values written here are short");
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
}

/// Pads the last attribute to four bytes; `start` is where the message starts in `out`.
fn pad(out: &mut Vec<u8>, start: usize) {
    while !(out.len() - start).is_multiple_of(4) {
        out.push(0);
    }
}

/// Appends MESSAGE-INTEGRITY (if keyed) and FINGERPRINT and sets the final length.
fn finish(out: &mut Vec<u8>, start: usize, key: Option<&[u8]>) {
    if let Some(key) = key {
        let tag = integrity(&out[start..], key);
        put_attribute_header(out, attr::MESSAGE_INTEGRITY, INTEGRITY_LEN);
        out.extend_from_slice(tag.as_ref());
    }
    let crc = fingerprint(&out[start..]);
    put_attribute_header(out, attr::FINGERPRINT, 4);
    out.extend_from_slice(&crc.to_be_bytes());
    let length = length_field(out.len() - start);
    out[start + 2..start + 4].copy_from_slice(&length);
}

// ---------------------------------------------------------------------------------------------
// ICE-lite

/// Why the ICE-lite agent does not accept a Binding request. Closed: it never carries peer data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Not a Binding request (an indication or a response): dropped.
    NotBindingRequest,
    /// No FINGERPRINT, which ICE requires (RFC 8445 §7.2.2): dropped.
    MissingFingerprint,
    /// FINGERPRINT does not match: dropped (RFC 8489 §7.3).
    FingerprintMismatch,
    /// No USERNAME: answered 400.
    MissingUsername,
    /// No MESSAGE-INTEGRITY: answered 400.
    MissingIntegrity,
    /// USERNAME is not "local:remote" with both parts non-empty: answered 401.
    MalformedUsername,
    /// The local ufrag names no session: answered 401.
    UnknownUfrag,
    /// MESSAGE-INTEGRITY does not match the session's password: answered 401.
    IntegrityMismatch,
    /// An unknown comprehension-required attribute: answered 400 (RFC 8489 asks for 420 with
    /// UNKNOWN-ATTRIBUTES; ICE peers send none, so the appliance keeps to three codes).
    UnknownRequiredAttribute,
    /// Neither ICE-CONTROLLING nor ICE-CONTROLLED: answered 400.
    MissingRole,
    /// ICE-CONTROLLED: the peer wants to be controlled too; answered 487 (RFC 8445 §7.3.1.1 —
    /// an ICE-lite agent never switches to controlling).
    RoleConflict,
    /// No PRIORITY, which ICE requires: answered 400.
    MissingPriority,
}

impl RejectReason {
    /// Every reason, for metrics.
    pub const ALL: [RejectReason; 12] = [
        Self::NotBindingRequest,
        Self::MissingFingerprint,
        Self::FingerprintMismatch,
        Self::MissingUsername,
        Self::MissingIntegrity,
        Self::MalformedUsername,
        Self::UnknownUfrag,
        Self::IntegrityMismatch,
        Self::UnknownRequiredAttribute,
        Self::MissingRole,
        Self::RoleConflict,
        Self::MissingPriority,
    ];

    /// Stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotBindingRequest => "not_binding_request",
            Self::MissingFingerprint => "missing_fingerprint",
            Self::FingerprintMismatch => "fingerprint_mismatch",
            Self::MissingUsername => "missing_username",
            Self::MissingIntegrity => "missing_integrity",
            Self::MalformedUsername => "malformed_username",
            Self::UnknownUfrag => "unknown_ufrag",
            Self::IntegrityMismatch => "integrity_mismatch",
            Self::UnknownRequiredAttribute => "unknown_required_attribute",
            Self::MissingRole => "missing_role",
            Self::RoleConflict => "role_conflict",
            Self::MissingPriority => "missing_priority",
        }
    }

    /// The error response to send, or `None` to drop the request silently.
    pub fn response(self) -> Option<BindingErrorCode> {
        match self {
            Self::NotBindingRequest | Self::MissingFingerprint | Self::FingerprintMismatch => None,
            Self::MissingUsername
            | Self::MissingIntegrity
            | Self::UnknownRequiredAttribute
            | Self::MissingRole
            | Self::MissingPriority => Some(BindingErrorCode::BadRequest),
            Self::MalformedUsername | Self::UnknownUfrag | Self::IntegrityMismatch => {
                Some(BindingErrorCode::Unauthorized)
            }
            Self::RoleConflict => Some(BindingErrorCode::RoleConflict),
        }
    }
}

/// A Binding request that passed every check: authenticated with the session's password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptedRequest<'a> {
    /// Our ufrag: names the session.
    pub local_ufrag: &'a str,
    /// The peer's ufrag, to compare with the one it signalled.
    pub remote_ufrag: &'a str,
    /// The peer nominates this pair (USE-CANDIDATE).
    pub use_candidate: bool,
    /// PRIORITY of the peer-reflexive candidate.
    pub priority: u32,
    /// The tie-breaker of ICE-CONTROLLING.
    pub tie_breaker: u64,
    /// To echo in the response.
    pub transaction_id: TransactionId,
}

/// What the ICE-lite agent does with a Binding request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingDecision<'a> {
    /// Answer with success; the source address is a valid candidate of the session.
    Accept(AcceptedRequest<'a>),
    /// Answer with [`RejectReason::response`], or drop.
    Reject(RejectReason),
}

/// Decides on a Binding request as an ICE-lite agent (always controlled). `lookup` gets the
/// local ufrag (the part of USERNAME before the first colon) and returns that session's ICE
/// password. Checks, in order: Binding request, FINGERPRINT, USERNAME and MESSAGE-INTEGRITY
/// present, known ufrag, MESSAGE-INTEGRITY, then — authenticated — no unknown
/// comprehension-required attribute, the peer's role, PRIORITY.
#[must_use]
pub fn check_binding_request<'a, K: AsRef<[u8]>>(
    message: &StunMessage<'a>,
    lookup: impl FnOnce(&str) -> Option<K>,
) -> BindingDecision<'a> {
    match decide(message, lookup) {
        Decided::Accept(accepted, _) => BindingDecision::Accept(accepted),
        Decided::Reject(reason, _) => BindingDecision::Reject(reason),
    }
}

/// Like [`check_binding_request`], and appends the response to send to `out`: a success response
/// with `source` (where the request came from) as XOR-MAPPED-ADDRESS, an error response (with
/// MESSAGE-INTEGRITY if the request was authenticated), or nothing if the request is dropped.
#[must_use]
pub fn answer_binding_request<'a, K: AsRef<[u8]>>(
    message: &StunMessage<'a>,
    source: SocketAddr,
    lookup: impl FnOnce(&str) -> Option<K>,
    out: &mut Vec<u8>,
) -> BindingDecision<'a> {
    let id = message.transaction_id();
    match decide(message, lookup) {
        Decided::Accept(accepted, key) => {
            encode_binding_success(&id, source, key.as_ref(), out);
            BindingDecision::Accept(accepted)
        }
        Decided::Reject(reason, key) => {
            if let Some(code) = reason.response() {
                encode_binding_error(&id, code, key.as_ref().map(AsRef::as_ref), out);
            }
            BindingDecision::Reject(reason)
        }
    }
}

/// A decision and, once the request is authenticated, the key that authenticated it.
enum Decided<'a, K> {
    Accept(AcceptedRequest<'a>, K),
    Reject(RejectReason, Option<K>),
}

/// Runs the checks of [`check_binding_request`].
fn decide<'a, K: AsRef<[u8]>>(
    message: &StunMessage<'a>,
    lookup: impl FnOnce(&str) -> Option<K>,
) -> Decided<'a, K> {
    if !message.is_binding_request() {
        return Decided::Reject(RejectReason::NotBindingRequest, None);
    }
    match message.verify_fingerprint() {
        Ok(()) => {}
        Err(StunError::MissingFingerprint) => {
            return Decided::Reject(RejectReason::MissingFingerprint, None);
        }
        Err(_) => return Decided::Reject(RejectReason::FingerprintMismatch, None),
    }
    let Some(username) = message.username() else {
        return Decided::Reject(RejectReason::MissingUsername, None);
    };
    if message.message_integrity().is_none() {
        return Decided::Reject(RejectReason::MissingIntegrity, None);
    }
    let Some((local_ufrag, remote_ufrag)) = username
        .split_once(':')
        .filter(|(local, remote)| !local.is_empty() && !remote.is_empty())
    else {
        return Decided::Reject(RejectReason::MalformedUsername, None);
    };
    let Some(key) = lookup(local_ufrag) else {
        return Decided::Reject(RejectReason::UnknownUfrag, None);
    };
    if message.verify_integrity(key.as_ref()).is_err() {
        return Decided::Reject(RejectReason::IntegrityMismatch, None);
    }
    // Authenticated from here on: error responses carry MESSAGE-INTEGRITY.
    if message.unknown_required_attribute().is_some() {
        return Decided::Reject(RejectReason::UnknownRequiredAttribute, Some(key));
    }
    if message.ice_controlled().is_some() {
        return Decided::Reject(RejectReason::RoleConflict, Some(key));
    }
    let Some(tie_breaker) = message.ice_controlling() else {
        return Decided::Reject(RejectReason::MissingRole, Some(key));
    };
    let Some(priority) = message.priority() else {
        return Decided::Reject(RejectReason::MissingPriority, Some(key));
    };
    let accepted = AcceptedRequest {
        local_ufrag,
        remote_ufrag,
        use_candidate: message.use_candidate(),
        priority,
        tie_breaker,
        transaction_id: message.transaction_id(),
    };
    Decided::Accept(accepted, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hex as the RFC prints it (spaces and line breaks) to bytes.
    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text
            .bytes()
            .filter(u8::is_ascii_hexdigit)
            .map(|d| match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                _ => d - b'A' + 10,
            })
            .collect();
        digits
            .chunks(2)
            .map(|pair| pair[0] << 4 | pair[1])
            .collect()
    }

    const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";
    const VECTOR_ID: TransactionId = TransactionId([
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ]);

    /// RFC 5769 §2.1, "Sample Request": SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME,
    /// MESSAGE-INTEGRITY, FINGERPRINT. SOFTWARE and USERNAME are padded with spaces.
    fn sample_request() -> Vec<u8> {
        hex("00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
             80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
             00 24 00 04 6e 00 01 ff
             80 29 00 08 93 2f f9 b1 51 26 3b 36
             00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
             00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
             80 28 00 04 e5 7a 3b cf")
    }

    /// RFC 5769 §2.2, "Sample IPv4 Response".
    fn sample_ipv4_response() -> Vec<u8> {
        hex("01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
             80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
             00 20 00 08 00 01 a1 47 e1 12 a6 43
             00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
             80 28 00 04 c0 7d 4c 96")
    }

    /// RFC 5769 §2.3, "Sample IPv6 Response".
    fn sample_ipv6_response() -> Vec<u8> {
        hex("01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
             80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
             00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
             00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
             80 28 00 04 c8 fb 0b 4c")
    }

    fn parse(bytes: &[u8]) -> StunMessage<'_> {
        StunMessage::parse(bytes).expect("test message parses")
    }

    /// Sets the header's length field to what the buffer holds.
    fn fix_length(bytes: &mut [u8]) {
        let len = u16::try_from(bytes.len() - HEADER_LEN).expect("short test message");
        bytes[2..4].copy_from_slice(&len.to_be_bytes());
    }

    fn client_request(use_candidate: bool, role: IceRole) -> Vec<u8> {
        let mut out = Vec::new();
        encode_binding_request(
            &BindingRequest {
                transaction_id: TransactionId([7; 12]),
                username: "local1:remote1",
                password: b"local-password-0123456",
                priority: 0x6e00_01ff,
                role,
                use_candidate,
            },
            &mut out,
        )
        .expect("short username");
        out
    }

    fn lookup(ufrag: &str) -> Option<&'static [u8]> {
        (ufrag == "local1").then_some(b"local-password-0123456".as_slice())
    }

    #[test]
    fn rfc5769_sample_request() {
        let bytes = sample_request();
        let message = parse(&bytes);
        assert_eq!(message.class(), Class::Request);
        assert_eq!(message.method(), METHOD_BINDING);
        assert!(message.is_binding_request());
        assert_eq!(message.transaction_id(), VECTOR_ID);
        assert_eq!(message.software(), Some("STUN test client"));
        assert_eq!(message.username(), Some("evtj:h6vY"));
        assert_eq!(message.priority(), Some(0x6e00_01ff));
        assert_eq!(message.ice_controlled(), Some(0x932f_f9b1_5126_3b36));
        assert_eq!(message.ice_controlling(), None);
        assert!(!message.use_candidate());
        assert_eq!(message.fingerprint(), Some(0xe57a_3bcf));
        assert_eq!(message.verify_fingerprint(), Ok(()));
        assert_eq!(message.verify_integrity(PASSWORD), Ok(()));
        assert_eq!(
            message.verify_integrity(b"VOkJxbRl1RmTxUk/WvJxBT"),
            Err(StunError::IntegrityMismatch)
        );
        assert_eq!(message.unknown_required_attribute(), None);
        let kinds: Vec<u16> = message.attributes().map(|a| a.kind).collect();
        assert_eq!(
            kinds,
            [
                attr::SOFTWARE,
                attr::PRIORITY,
                attr::ICE_CONTROLLED,
                attr::USERNAME,
                attr::MESSAGE_INTEGRITY,
                attr::FINGERPRINT
            ]
        );
    }

    #[test]
    fn rfc5769_sample_ipv4_response() {
        let bytes = sample_ipv4_response();
        let message = parse(&bytes);
        assert_eq!(message.class(), Class::SuccessResponse);
        assert_eq!(message.method(), METHOD_BINDING);
        assert_eq!(message.transaction_id(), VECTOR_ID);
        assert_eq!(message.software(), Some("test vector"));
        assert_eq!(
            message.xor_mapped_address(),
            Some("192.0.2.1:32853".parse().expect("address"))
        );
        assert_eq!(message.verify_fingerprint(), Ok(()));
        assert_eq!(message.verify_integrity(PASSWORD), Ok(()));
    }

    #[test]
    fn rfc5769_sample_ipv6_response() {
        let bytes = sample_ipv6_response();
        let message = parse(&bytes);
        assert_eq!(message.class(), Class::SuccessResponse);
        assert_eq!(
            message.xor_mapped_address(),
            Some(
                "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
                    .parse()
                    .expect("address")
            )
        );
        assert_eq!(message.verify_fingerprint(), Ok(()));
        assert_eq!(message.verify_integrity(PASSWORD), Ok(()));
    }

    #[test]
    fn encoder_reproduces_the_rfc5769_address_values() {
        // The vectors carry SOFTWARE, which the encoder does not write, so MI and FP differ;
        // the XOR-MAPPED-ADDRESS values must match byte for byte.
        for (vector, mapped) in [
            (sample_ipv4_response(), "192.0.2.1:32853"),
            (
                sample_ipv6_response(),
                "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
            ),
        ] {
            let mut out = Vec::new();
            let mapped = mapped.parse().expect("address");
            encode_binding_success(&VECTOR_ID, mapped, PASSWORD, &mut out);
            let ours = parse(&out);
            let theirs = parse(&vector);
            assert_eq!(
                ours.attribute(attr::XOR_MAPPED_ADDRESS),
                theirs.attribute(attr::XOR_MAPPED_ADDRESS)
            );
        }
    }

    #[test]
    fn class_and_method_bits_round_trip() {
        for class in [
            Class::Request,
            Class::Indication,
            Class::SuccessResponse,
            Class::ErrorResponse,
        ] {
            for method in [0x000, 0x001, 0x00f, 0x070, 0xf80, 0xfff] {
                assert_eq!(split_type(join_type(class, method)), (class, method));
            }
        }
        assert_eq!(join_type(Class::Request, METHOD_BINDING), 0x0001);
        assert_eq!(join_type(Class::SuccessResponse, METHOD_BINDING), 0x0101);
        assert_eq!(join_type(Class::ErrorResponse, METHOD_BINDING), 0x0111);
        assert_eq!(join_type(Class::Indication, METHOD_BINDING), 0x0011);
    }

    #[test]
    fn success_response_round_trips() {
        for mapped in [
            "203.0.113.9:50000",
            "[2001:db8::1]:1",
            "[::ffff:1.2.3.4]:65535",
        ] {
            let mapped: SocketAddr = mapped.parse().expect("address");
            let mut out = vec![0xaa; 3]; // appends after what is there
            encode_binding_success(&VECTOR_ID, mapped, b"pw", &mut out);
            assert_eq!(&out[..3], &[0xaa; 3]);
            let message = parse(&out[3..]);
            assert_eq!(message.class(), Class::SuccessResponse);
            assert_eq!(message.transaction_id(), VECTOR_ID);
            assert_eq!(message.xor_mapped_address(), Some(mapped));
            assert_eq!(message.verify_integrity(b"pw"), Ok(()));
            assert_eq!(message.verify_fingerprint(), Ok(()));
        }
    }

    #[test]
    fn error_response_round_trips() {
        for (code, number, reason) in [
            (BindingErrorCode::BadRequest, 400, "Bad Request"),
            (BindingErrorCode::Unauthorized, 401, "Unauthorized"),
            (BindingErrorCode::RoleConflict, 487, "Role Conflict"),
        ] {
            let mut out = Vec::new();
            encode_binding_error(&VECTOR_ID, code, None, &mut out);
            let message = parse(&out);
            assert_eq!(message.class(), Class::ErrorResponse);
            assert_eq!(
                message.error_code(),
                Some(ErrorCodeAttribute {
                    code: number,
                    reason
                })
            );
            assert_eq!(
                message.verify_integrity(b"pw"),
                Err(StunError::MissingIntegrity)
            );
            assert_eq!(message.verify_fingerprint(), Ok(()));

            out.clear();
            encode_binding_error(&VECTOR_ID, code, Some(b"pw"), &mut out);
            let message = parse(&out);
            assert_eq!(message.verify_integrity(b"pw"), Ok(()));
            assert_eq!(message.verify_fingerprint(), Ok(()));
        }
    }

    #[test]
    fn request_round_trips() {
        let bytes = client_request(true, IceRole::Controlling(42));
        let message = parse(&bytes);
        assert!(message.is_binding_request());
        assert_eq!(message.username(), Some("local1:remote1"));
        assert_eq!(message.priority(), Some(0x6e00_01ff));
        assert_eq!(message.ice_controlling(), Some(42));
        assert!(message.use_candidate());
        assert_eq!(message.verify_integrity(b"local-password-0123456"), Ok(()));
        assert_eq!(message.verify_fingerprint(), Ok(()));
    }

    #[test]
    fn request_encoder_refuses_long_username() {
        let long = "a".repeat(513);
        let mut out = Vec::new();
        let request = BindingRequest {
            transaction_id: VECTOR_ID,
            username: &long,
            password: b"pw",
            priority: 1,
            role: IceRole::Controlling(1),
            use_candidate: false,
        };
        assert_eq!(
            encode_binding_request(&request, &mut out),
            Err(EncodeError::UsernameTooLong)
        );
        assert!(out.is_empty());
        let request = BindingRequest {
            username: &long[..512],
            ..request
        };
        assert_eq!(encode_binding_request(&request, &mut out), Ok(()));
        assert_eq!(parse(&out).username().map(str::len), Some(512));
    }

    #[test]
    fn rejects_truncated() {
        let bytes = sample_request();
        assert_eq!(StunMessage::parse(&[]), Err(StunError::TooShort));
        assert_eq!(StunMessage::parse(&bytes[..19]), Err(StunError::TooShort));
        for cut in HEADER_LEN..bytes.len() {
            assert!(StunMessage::parse(&bytes[..cut]).is_err(), "{cut}");
        }
    }

    #[test]
    fn rejects_bad_header() {
        let mut bytes = sample_request();
        bytes[0] |= 0x80;
        assert_eq!(StunMessage::parse(&bytes), Err(StunError::NotStun));
        let mut bytes = sample_request();
        bytes[5] ^= 1;
        assert_eq!(StunMessage::parse(&bytes), Err(StunError::BadMagicCookie));
    }

    #[test]
    fn rejects_bad_length() {
        let mut bytes = sample_request();
        bytes[3] += 1;
        assert_eq!(StunMessage::parse(&bytes), Err(StunError::UnalignedLength));
        let mut bytes = sample_request();
        bytes[3] += 4;
        assert_eq!(StunMessage::parse(&bytes), Err(StunError::LengthMismatch));
        let mut bytes = sample_request();
        bytes.extend_from_slice(&[0; 4]);
        assert_eq!(StunMessage::parse(&bytes), Err(StunError::LengthMismatch));
        // Length cut inside the last attribute.
        let mut bytes = sample_request();
        bytes.truncate(bytes.len() - 4);
        fix_length(&mut bytes);
        assert_eq!(StunMessage::parse(&bytes), Err(StunError::AttributeOverrun));
    }

    #[test]
    fn rejects_attribute_overrunning_the_message() {
        let mut bytes = sample_request();
        // SOFTWARE claims 0x0100 bytes.
        bytes[22] = 0x01;
        assert_eq!(StunMessage::parse(&bytes), Err(StunError::AttributeOverrun));
        // A lone attribute header cut in half.
        let mut bytes = vec![0, 1, 0, 4, 0x21, 0x12, 0xa4, 0x42];
        bytes.extend_from_slice(&[0; 12]);
        bytes.extend_from_slice(&[0x80, 0x22, 0x00, 0x08]);
        assert_eq!(StunMessage::parse(&bytes), Err(StunError::AttributeOverrun));
    }

    #[test]
    fn rejects_missing_padding() {
        // USERNAME "a:bcd" (5 bytes) as the last attribute, without its 3 padding bytes.
        let mut bytes = vec![0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42];
        bytes.extend_from_slice(&[0; 12]);
        bytes.extend_from_slice(&[0x00, 0x06, 0x00, 0x05, b'a', b':', b'b', b'c', b'd']);
        fix_length(&mut bytes);
        assert_eq!(StunMessage::parse(&bytes), Err(StunError::UnalignedLength));
        // Length field claims the padding, the datagram lacks it.
        bytes[3] = 12;
        assert_eq!(StunMessage::parse(&bytes), Err(StunError::LengthMismatch));
        // With padding (of any value) it parses.
        bytes.extend_from_slice(&[1, 2, 3]);
        assert_eq!(parse(&bytes).username(), Some("a:bcd"));
    }

    #[test]
    fn padding_may_hold_any_value() {
        // The RFC 5769 request pads USERNAME and SOFTWARE with spaces; parsing above succeeded.
        let bytes = sample_request();
        assert_eq!(&bytes[73..76], b"   ");
        assert!(StunMessage::parse(&bytes).is_ok());
    }

    #[test]
    fn rejects_wrong_fingerprint() {
        let mut bytes = sample_request();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(
            parse(&bytes).verify_fingerprint(),
            Err(StunError::FingerprintMismatch)
        );
        // A flipped byte in the body breaks both checks.
        let mut bytes = sample_request();
        bytes[30] ^= 0x20;
        let message = parse(&bytes);
        assert_eq!(
            message.verify_fingerprint(),
            Err(StunError::FingerprintMismatch)
        );
        assert_eq!(
            message.verify_integrity(PASSWORD),
            Err(StunError::IntegrityMismatch)
        );
    }

    #[test]
    fn rejects_wrong_integrity() {
        let mut bytes = sample_request();
        let mi = bytes.len() - 8 - 20;
        bytes[mi] ^= 1;
        let message = parse(&bytes);
        assert_eq!(
            message.verify_integrity(PASSWORD),
            Err(StunError::IntegrityMismatch)
        );
        assert_eq!(
            message.verify_integrity(b""),
            Err(StunError::IntegrityMismatch)
        );
    }

    #[test]
    fn rejects_duplicates_and_attributes_after_fingerprint() {
        // A second MESSAGE-INTEGRITY after the first.
        let mut bytes = sample_request();
        let fp = bytes.split_off(bytes.len() - 8);
        let mi = bytes[bytes.len() - 24..].to_vec();
        bytes.extend_from_slice(&mi);
        bytes.extend_from_slice(&fp);
        fix_length(&mut bytes);
        assert_eq!(
            StunMessage::parse(&bytes),
            Err(StunError::DuplicateIntegrity)
        );
        // A second FINGERPRINT.
        let mut bytes = sample_request();
        let fp = bytes[bytes.len() - 8..].to_vec();
        bytes.extend_from_slice(&fp);
        fix_length(&mut bytes);
        assert_eq!(
            StunMessage::parse(&bytes),
            Err(StunError::DuplicateFingerprint)
        );
        // Anything after FINGERPRINT.
        let mut bytes = sample_request();
        bytes.extend_from_slice(&[0x00, 0x25, 0x00, 0x00]);
        fix_length(&mut bytes);
        assert_eq!(
            StunMessage::parse(&bytes),
            Err(StunError::AttributeAfterFingerprint)
        );
    }

    #[test]
    fn ignores_attributes_between_integrity_and_fingerprint() {
        let mut bytes = sample_request();
        bytes.truncate(bytes.len() - 8);
        // USE-CANDIDATE, a duplicate USERNAME and a malformed PRIORITY after MI: ignored.
        bytes.extend_from_slice(&[0x00, 0x25, 0x00, 0x00]);
        bytes.extend_from_slice(&[0x00, 0x06, 0x00, 0x03, b'x', b':', b'y', 0]);
        bytes.extend_from_slice(&[0x00, 0x24, 0x00, 0x01, 9, 0, 0, 0]);
        let fp = fingerprint(&{
            let mut prefix = bytes.clone();
            fix_length(&mut prefix);
            prefix
        });
        bytes.extend_from_slice(&[0x80, 0x28, 0x00, 0x04]);
        bytes.extend_from_slice(&fp.to_be_bytes());
        fix_length(&mut bytes);
        let message = parse(&bytes);
        assert!(!message.use_candidate());
        assert_eq!(message.username(), Some("evtj:h6vY"));
        assert_eq!(message.priority(), Some(0x6e00_01ff));
        assert_eq!(message.verify_integrity(PASSWORD), Ok(()));
        assert_eq!(message.verify_fingerprint(), Ok(()));
        assert_eq!(
            message.attributes().map(|a| a.kind).last(),
            Some(attr::FINGERPRINT)
        );
        assert_eq!(message.attributes().count(), 6);
    }

    #[test]
    fn rejects_invalid_known_values() {
        let cases: [(u16, &[u8], AttributeName); 7] = [
            (attr::PRIORITY, &[1, 2], AttributeName::Priority),
            (
                attr::USE_CANDIDATE,
                &[1, 2, 3, 4],
                AttributeName::UseCandidate,
            ),
            (
                attr::ICE_CONTROLLING,
                &[1; 4],
                AttributeName::IceControlling,
            ),
            (attr::ICE_CONTROLLED, &[1; 12], AttributeName::IceControlled),
            (attr::USERNAME, &[0xff, 0xfe], AttributeName::Username),
            (
                attr::XOR_MAPPED_ADDRESS,
                &[0, 3, 0, 0, 1, 2, 3, 4],
                AttributeName::XorMappedAddress,
            ),
            (attr::ERROR_CODE, &[0, 0, 2, 0], AttributeName::ErrorCode),
        ];
        for (kind, value, name) in cases {
            let mut bytes = vec![0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42];
            bytes.extend_from_slice(&[0; 12]);
            bytes.extend_from_slice(&kind.to_be_bytes());
            bytes.extend_from_slice(&u16::try_from(value.len()).expect("short").to_be_bytes());
            bytes.extend_from_slice(value);
            while bytes.len() % 4 != 0 {
                bytes.push(0);
            }
            fix_length(&mut bytes);
            assert_eq!(
                StunMessage::parse(&bytes),
                Err(StunError::InvalidAttribute(name)),
                "{name:?}"
            );
        }
        let mut bytes = sample_request();
        let mi_len = bytes.len() - 8 - 24 + 3;
        bytes[mi_len] = 16;
        assert_eq!(
            StunMessage::parse(&bytes),
            Err(StunError::InvalidAttribute(AttributeName::MessageIntegrity))
        );
    }

    #[test]
    fn missing_checks_report_absence() {
        let mut out = Vec::new();
        let message_bytes = {
            let mut bytes = vec![0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42];
            bytes.extend_from_slice(&[0; 12]);
            bytes
        };
        let message = parse(&message_bytes);
        assert_eq!(
            message.verify_fingerprint(),
            Err(StunError::MissingFingerprint)
        );
        assert_eq!(
            message.verify_integrity(b"k"),
            Err(StunError::MissingIntegrity)
        );
        assert_eq!(message.attributes().count(), 0);
        assert_eq!(
            check_binding_request(&message, lookup),
            BindingDecision::Reject(RejectReason::MissingFingerprint)
        );
        let source = "10.0.0.1:9".parse().expect("address");
        let decision = answer_binding_request(&message, source, lookup, &mut out);
        assert_eq!(
            decision,
            BindingDecision::Reject(RejectReason::MissingFingerprint)
        );
        assert!(out.is_empty(), "dropped requests get no answer");
    }

    #[test]
    fn ice_lite_accepts_a_valid_check() {
        let bytes = client_request(true, IceRole::Controlling(42));
        let message = parse(&bytes);
        let BindingDecision::Accept(accepted) = check_binding_request(&message, lookup) else {
            panic!("valid request rejected");
        };
        assert_eq!(accepted.local_ufrag, "local1");
        assert_eq!(accepted.remote_ufrag, "remote1");
        assert!(accepted.use_candidate);
        assert_eq!(accepted.priority, 0x6e00_01ff);
        assert_eq!(accepted.tie_breaker, 42);
        assert_eq!(accepted.transaction_id, TransactionId([7; 12]));

        let source: SocketAddr = "[2001:db8::7]:4444".parse().expect("address");
        let mut out = Vec::new();
        let decision = answer_binding_request(&message, source, lookup, &mut out);
        assert!(matches!(decision, BindingDecision::Accept(_)));
        let response = parse(&out);
        assert_eq!(response.class(), Class::SuccessResponse);
        assert_eq!(response.transaction_id(), TransactionId([7; 12]));
        assert_eq!(response.xor_mapped_address(), Some(source));
        assert_eq!(response.verify_integrity(b"local-password-0123456"), Ok(()));
        assert_eq!(response.verify_fingerprint(), Ok(()));

        let bytes = client_request(false, IceRole::Controlling(1));
        let message = parse(&bytes);
        assert!(matches!(
            check_binding_request(&message, lookup),
            BindingDecision::Accept(AcceptedRequest {
                use_candidate: false,
                ..
            })
        ));
    }

    /// Runs the ICE-lite check and returns the reason and the error response, if any.
    fn reject(bytes: &[u8]) -> (RejectReason, Option<(u16, bool)>) {
        let message = parse(bytes);
        let mut out = Vec::new();
        let source = "192.0.2.1:1".parse().expect("address");
        let BindingDecision::Reject(reason) =
            answer_binding_request(&message, source, lookup, &mut out)
        else {
            panic!("accepted");
        };
        if out.is_empty() {
            return (reason, None);
        }
        let response = parse(&out);
        assert_eq!(response.verify_fingerprint(), Ok(()));
        let code = response.error_code().expect("error code").code;
        assert_eq!(Some(code), reason.response().map(BindingErrorCode::code));
        let signed = response.verify_integrity(b"local-password-0123456") == Ok(());
        (reason, Some((code, signed)))
    }

    #[test]
    fn ice_lite_rejections() {
        // The RFC 5769 request: unknown ufrag "evtj".
        assert_eq!(
            reject(&sample_request()),
            (RejectReason::UnknownUfrag, Some((401, false)))
        );
        // The response vector is not a request.
        assert_eq!(
            reject(&sample_ipv4_response()),
            (RejectReason::NotBindingRequest, None)
        );
        // Peer claims controlled: role conflict, answered with integrity.
        assert_eq!(
            reject(&client_request(false, IceRole::Controlled(5))),
            (RejectReason::RoleConflict, Some((487, true)))
        );
        // Wrong password.
        let wrong = |ufrag: &str| (ufrag == "local1").then_some(b"nope".as_slice());
        let bytes = client_request(false, IceRole::Controlling(5));
        assert_eq!(
            check_binding_request(&parse(&bytes), wrong),
            BindingDecision::Reject(RejectReason::IntegrityMismatch)
        );
        // Broken fingerprint: dropped.
        let mut bytes = client_request(false, IceRole::Controlling(5));
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        assert_eq!(reject(&bytes), (RejectReason::FingerprintMismatch, None));
    }

    /// A signed Binding request built from raw attributes, with MI keyed for session "local1".
    fn raw_request(attributes: &[(u16, &[u8])], with_integrity: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let start = begin(&mut out, Class::Request, &TransactionId([9; 12]));
        for (kind, value) in attributes {
            put_attribute_header(&mut out, *kind, value.len());
            out.extend_from_slice(value);
            pad(&mut out, start);
        }
        let key: Option<&[u8]> = with_integrity.then_some(b"local-password-0123456");
        finish(&mut out, start, key);
        out
    }

    #[test]
    fn ice_lite_rejections_of_incomplete_requests() {
        let user: (u16, &[u8]) = (attr::USERNAME, b"local1:remote1");
        let priority: (u16, &[u8]) = (attr::PRIORITY, &[0, 0, 0, 1]);
        let controlling: (u16, &[u8]) = (attr::ICE_CONTROLLING, &[0; 8]);
        type Case<'a> = (
            &'a [(u16, &'a [u8])],
            bool,
            RejectReason,
            Option<(u16, bool)>,
        );
        let cases: [Case<'_>; 7] = [
            (
                &[priority, controlling],
                true,
                RejectReason::MissingUsername,
                Some((400, false)),
            ),
            (
                &[user, priority, controlling],
                false,
                RejectReason::MissingIntegrity,
                Some((400, false)),
            ),
            (
                &[(attr::USERNAME, b"local1"), priority, controlling],
                true,
                RejectReason::MalformedUsername,
                Some((401, false)),
            ),
            (
                &[(attr::USERNAME, b":remote1"), priority, controlling],
                true,
                RejectReason::MalformedUsername,
                Some((401, false)),
            ),
            (
                &[user, controlling],
                true,
                RejectReason::MissingPriority,
                Some((400, true)),
            ),
            (
                &[user, priority],
                true,
                RejectReason::MissingRole,
                Some((400, true)),
            ),
            (
                &[user, priority, controlling, (0x7777, b"x")],
                true,
                RejectReason::UnknownRequiredAttribute,
                Some((400, true)),
            ),
        ];
        for (attributes, signed, reason, response) in cases {
            assert_eq!(
                reject(&raw_request(attributes, signed)),
                (reason, response),
                "{reason:?}"
            );
        }
        // An unknown comprehension-optional attribute is fine.
        let bytes = raw_request(&[user, priority, controlling, (0xC057, b"net")], true);
        assert!(matches!(
            check_binding_request(&parse(&bytes), lookup),
            BindingDecision::Accept(_)
        ));
    }

    #[test]
    fn reject_reasons_are_listed_once_with_distinct_names() {
        let mut names: Vec<_> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RejectReason::ALL.len());
    }

    #[test]
    fn unaligned_output_buffer_still_yields_aligned_message() {
        let mut out = vec![1];
        encode_binding_error(
            &VECTOR_ID,
            BindingErrorCode::Unauthorized,
            Some(b"pw"),
            &mut out,
        );
        let message = parse(&out[1..]);
        assert_eq!(message.verify_integrity(b"pw"), Ok(()));
        assert_eq!(message.verify_fingerprint(), Ok(()));
    }
}
