//! RTP packets (RFC 3550 §5.1) and their header extensions (RFC 8285), read in place.
//!
//! [`RtpPacket::parse`] checks a packet and returns a view that borrows it: fixed header, CSRC
//! list, header extension block and padding are bounds-checked once, and every accessor after
//! that reads from the borrowed bytes. [`RtpPacket::parse_header`] does the same without looking
//! at the padding, for SRTP packets whose padding count is still encrypted.
//!
//! [`RtpPacket::extensions`] walks the elements of the extension block in the one-byte (profile
//! 0xBEDE) or two-byte (0x100X) form. Garbage inside the block never fails the packet: the walk
//! stops at the first element that does not fit, as RFC 8285 §4.2 asks for ID 15.
//!
//! The SFU rewrites what differs per subscriber in place: [`rewrite_ssrc`],
//! [`rewrite_sequence`], [`rewrite_timestamp`] and [`rewrite_extension`] (same length only).
//! Nothing here allocates or copies a packet.

use core::ops::Range;

/// Length of the fixed RTP header.
pub const FIXED_HEADER_LEN: usize = 12;

/// The profile of one-byte header extensions (RFC 8285 §4.2).
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;

/// The profile of two-byte header extensions, without its 4 "appbits" (RFC 8285 §4.3).
pub const TWO_BYTE_PROFILE: u16 = 0x1000;

/// Why bytes are not an acceptable RTP packet, or why a rewrite failed. Closed: it never carries
/// peer data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    #[error("packet is shorter than the RTP header")]
    TooShort,
    /// The version field is not 2.
    #[error("RTP version is not 2")]
    BadVersion,
    /// The CSRC list runs past the end of the packet.
    #[error("CSRC list runs past the end of the packet")]
    TruncatedCsrc,
    /// The header extension runs past the end of the packet.
    #[error("header extension runs past the end of the packet")]
    TruncatedExtension,
    /// The padding count is zero or larger than the payload.
    #[error("padding count is invalid")]
    BadPadding,
    /// The packet has no header extension element with the requested ID.
    #[error("no header extension element with this ID")]
    ExtensionNotFound,
    /// The element exists with another length than the new value.
    #[error("header extension element has another length")]
    ExtensionLengthMismatch,
}

/// The form of a header extension block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtensionForm {
    /// RFC 8285 one-byte headers (profile 0xBEDE): IDs 1–14, 1 to 16 bytes each.
    OneByte,
    /// RFC 8285 two-byte headers (profile 0x100X): IDs 1–255, 0 to 255 bytes each.
    TwoByte,
    /// Any other profile: the block is opaque.
    Other,
}

impl ExtensionForm {
    fn of(profile: u16) -> Self {
        if profile == ONE_BYTE_PROFILE {
            Self::OneByte
        } else if profile & 0xFFF0 == TWO_BYTE_PROFILE {
            Self::TwoByte
        } else {
            Self::Other
        }
    }
}

/// A checked RTP packet that borrows the bytes it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    bytes: &'a [u8],
    header_len: usize,
    /// Profile and range of the extension data (after the 4-byte extension header).
    extension: Option<(u16, usize, usize)>,
    payload_end: usize,
}

impl<'a> RtpPacket<'a> {
    /// Parses and checks a whole packet, padding included.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RtpError> {
        let mut packet = Self::parse_header(bytes)?;
        if packet.has_padding() {
            let count = usize::from(bytes[bytes.len() - 1]);
            if count == 0 || count > bytes.len() - packet.header_len {
                return Err(RtpError::BadPadding);
            }
            packet.payload_end = bytes.len() - count;
        }
        Ok(packet)
    }

    /// Parses and checks the header only; the payload runs to the end of `bytes` whatever the
    /// padding bit says. For SRTP, whose padding count is encrypted (and whose authentication
    /// tag the caller must cut off first).
    pub fn parse_header(bytes: &'a [u8]) -> Result<Self, RtpError> {
        let first = *bytes.first().ok_or(RtpError::TooShort)?;
        if bytes.len() < FIXED_HEADER_LEN {
            return Err(RtpError::TooShort);
        }
        if first >> 6 != 2 {
            return Err(RtpError::BadVersion);
        }
        let csrc_count = usize::from(first & 0x0F);
        let mut header_len = FIXED_HEADER_LEN + 4 * csrc_count;
        if header_len > bytes.len() {
            return Err(RtpError::TruncatedCsrc);
        }
        let mut extension = None;
        if first & 0x10 != 0 {
            let ext = bytes
                .get(header_len..header_len + 4)
                .ok_or(RtpError::TruncatedExtension)?;
            let profile = u16::from_be_bytes([ext[0], ext[1]]);
            let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
            let start = header_len + 4;
            let end = start + 4 * words;
            if end > bytes.len() {
                return Err(RtpError::TruncatedExtension);
            }
            extension = Some((profile, start, end));
            header_len = end;
        }
        Ok(Self {
            bytes,
            header_len,
            extension,
            payload_end: bytes.len(),
        })
    }

    /// The whole packet.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The padding bit.
    pub fn has_padding(&self) -> bool {
        self.bytes[0] & 0x20 != 0
    }

    /// The extension bit.
    pub fn has_extension(&self) -> bool {
        self.extension.is_some()
    }

    /// Number of CSRCs (0–15).
    pub fn csrc_count(&self) -> u8 {
        self.bytes[0] & 0x0F
    }

    /// The marker bit (for video: last packet of a frame).
    pub fn marker(&self) -> bool {
        self.bytes[1] & 0x80 != 0
    }

    /// The payload type (0–127).
    pub fn payload_type(&self) -> u8 {
        self.bytes[1] & 0x7F
    }

    /// The sequence number.
    pub fn sequence(&self) -> u16 {
        u16::from_be_bytes([self.bytes[2], self.bytes[3]])
    }

    /// The RTP timestamp.
    pub fn timestamp(&self) -> u32 {
        read_u32(self.bytes, 4)
    }

    /// The synchronisation source.
    pub fn ssrc(&self) -> u32 {
        read_u32(self.bytes, 8)
    }

    /// The contributing sources.
    pub fn csrcs(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        let list =
            &self.bytes[FIXED_HEADER_LEN..FIXED_HEADER_LEN + 4 * usize::from(self.csrc_count())];
        list.chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// The header extension's profile (0xBEDE, 0x100X or another), if there is a block.
    pub fn extension_profile(&self) -> Option<u16> {
        self.extension.map(|(profile, _, _)| profile)
    }

    /// The raw extension data (after the 4-byte extension header), if there is a block.
    pub fn extension_data(&self) -> Option<&'a [u8]> {
        let (_, start, end) = self.extension?;
        Some(&self.bytes[start..end])
    }

    /// The RFC 8285 elements of the extension block; empty if there is no block or its profile
    /// is neither form.
    pub fn extensions(&self) -> Extensions<'a> {
        match self.extension {
            Some((profile, start, end)) => {
                Extensions::new(ExtensionForm::of(profile), &self.bytes[start..end])
            }
            None => Extensions::new(ExtensionForm::Other, &[]),
        }
    }

    /// The value of the first extension element with this ID.
    pub fn extension(&self, id: u8) -> Option<&'a [u8]> {
        self.extensions()
            .find(|(element, _)| *element == id)
            .map(|(_, value)| value)
    }

    /// Length of the header: fixed part, CSRCs and extension block.
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// Number of padding bytes, counted by [`Self::parse`] (zero after [`Self::parse_header`]).
    pub fn padding_len(&self) -> usize {
        self.bytes.len() - self.payload_end
    }

    /// Where the payload lies in the packet.
    pub fn payload_range(&self) -> Range<usize> {
        self.header_len..self.payload_end
    }

    /// The payload, without header and padding.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.header_len..self.payload_end]
    }
}

/// The RFC 8285 elements of a header extension block, as `(id, value)`.
#[derive(Debug, Clone)]
pub struct Extensions<'a> {
    form: ExtensionForm,
    data: &'a [u8],
    at: usize,
}

impl<'a> Extensions<'a> {
    fn new(form: ExtensionForm, data: &'a [u8]) -> Self {
        Self { form, data, at: 0 }
    }

    /// The next element as `(id, range in the block's data)`.
    fn next_range(&mut self) -> Option<(u8, Range<usize>)> {
        loop {
            let id_byte = *self.data.get(self.at)?;
            let (id, start, len) = match self.form {
                ExtensionForm::OneByte => {
                    let id = id_byte >> 4;
                    if id == 0 {
                        // Padding (RFC 8285 §4.2): skip one byte, whatever its length bits say.
                        self.at += 1;
                        continue;
                    }
                    if id == 15 {
                        // Reserved: stop processing the block.
                        self.at = self.data.len();
                        return None;
                    }
                    (id, self.at + 1, usize::from(id_byte & 0x0F) + 1)
                }
                ExtensionForm::TwoByte => {
                    if id_byte == 0 {
                        self.at += 1;
                        continue;
                    }
                    let Some(&len) = self.data.get(self.at + 1) else {
                        self.at = self.data.len();
                        return None;
                    };
                    (id_byte, self.at + 2, usize::from(len))
                }
                ExtensionForm::Other => return None,
            };
            let end = start + len;
            if end > self.data.len() {
                self.at = self.data.len();
                return None;
            }
            self.at = end;
            return Some((id, start..end));
        }
    }
}

impl<'a> Iterator for Extensions<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (id, range) = self.next_range()?;
        Some((id, &self.data[range]))
    }
}

/// Sets the sequence number of an RTP packet in place.
pub fn rewrite_sequence(packet: &mut [u8], sequence: u16) -> Result<(), RtpError> {
    check_fixed_header(packet)?;
    packet[2..4].copy_from_slice(&sequence.to_be_bytes());
    Ok(())
}

/// Sets the RTP timestamp of an RTP packet in place.
pub fn rewrite_timestamp(packet: &mut [u8], timestamp: u32) -> Result<(), RtpError> {
    check_fixed_header(packet)?;
    packet[4..8].copy_from_slice(&timestamp.to_be_bytes());
    Ok(())
}

/// Sets the SSRC of an RTP packet in place.
pub fn rewrite_ssrc(packet: &mut [u8], ssrc: u32) -> Result<(), RtpError> {
    check_fixed_header(packet)?;
    packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
    Ok(())
}

/// Overwrites the value of the first header extension element with this ID (one-byte or
/// two-byte form) in place. The new value must have the element's length: the packet never
/// changes size.
pub fn rewrite_extension(packet: &mut [u8], id: u8, value: &[u8]) -> Result<(), RtpError> {
    let header = RtpPacket::parse_header(packet)?;
    let Some((profile, start, end)) = header.extension else {
        return Err(RtpError::ExtensionNotFound);
    };
    let mut elements = Extensions::new(ExtensionForm::of(profile), &packet[start..end]);
    let range = loop {
        match elements.next_range() {
            Some((element, range)) if element == id => break range,
            Some(_) => {}
            None => return Err(RtpError::ExtensionNotFound),
        }
    };
    if range.len() != value.len() {
        return Err(RtpError::ExtensionLengthMismatch);
    }
    packet[start + range.start..start + range.end].copy_from_slice(value);
    Ok(())
}

fn check_fixed_header(packet: &[u8]) -> Result<(), RtpError> {
    match packet.first() {
        None => Err(RtpError::TooShort),
        Some(_) if packet.len() < FIXED_HEADER_LEN => Err(RtpError::TooShort),
        Some(first) if first >> 6 != 2 => Err(RtpError::BadVersion),
        Some(_) => Ok(()),
    }
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet: V=2, PT 111, seq 0x1234, ts 0xdeadbeef, SSRC 0x01020304, then `rest`.
    fn packet(first: u8, rest: &[u8]) -> Vec<u8> {
        let mut bytes = vec![
            first,
            0x80 | 111,
            0x12,
            0x34,
            0xde,
            0xad,
            0xbe,
            0xef,
            1,
            2,
            3,
            4,
        ];
        bytes.extend_from_slice(rest);
        bytes
    }

    #[test]
    fn parses_fixed_header() {
        let bytes = packet(0x80, b"payload");
        let p = RtpPacket::parse(&bytes).expect("valid");
        assert!(!p.has_padding());
        assert!(!p.has_extension());
        assert_eq!(p.csrc_count(), 0);
        assert!(p.marker());
        assert_eq!(p.payload_type(), 111);
        assert_eq!(p.sequence(), 0x1234);
        assert_eq!(p.timestamp(), 0xdead_beef);
        assert_eq!(p.ssrc(), 0x0102_0304);
        assert_eq!(p.header_len(), 12);
        assert_eq!(p.payload(), b"payload");
        assert_eq!(p.payload_range(), 12..19);
        assert_eq!(p.padding_len(), 0);
        assert_eq!(p.extensions().count(), 0);
    }

    #[test]
    fn parses_csrcs_extension_and_padding() {
        let mut rest = vec![0, 0, 0, 9, 0, 0, 0, 10]; // two CSRCs
        rest.extend_from_slice(&[0xBE, 0xDE, 0, 2]); // one-byte form, 2 words
        rest.extend_from_slice(&[0x10, 0xAA, 0x22, 1, 2, 3, 0, 0]); // id1 len1, id2 len3, pad
        rest.extend_from_slice(b"data");
        rest.extend_from_slice(&[0, 0, 3]); // 3 bytes of padding
        let bytes = packet(0xB2, &rest); // V=2 P X CC=2
        let p = RtpPacket::parse(&bytes).expect("valid");
        assert!(p.has_padding());
        assert_eq!(p.csrcs().collect::<Vec<_>>(), [9, 10]);
        assert_eq!(p.extension_profile(), Some(ONE_BYTE_PROFILE));
        assert_eq!(p.header_len(), 12 + 8 + 4 + 8);
        assert_eq!(p.payload(), b"data");
        assert_eq!(p.padding_len(), 3);
        let elements: Vec<_> = p.extensions().collect();
        assert_eq!(elements, [(1, &[0xAA][..]), (2, &[1, 2, 3][..])]);
        assert_eq!(p.extension(2), Some(&[1, 2, 3][..]));
        assert_eq!(p.extension(3), None);
        // parse_header leaves the padding in the payload.
        let h = RtpPacket::parse_header(&bytes).expect("valid");
        assert_eq!(h.payload(), b"data\0\0\x03");
        assert_eq!(h.padding_len(), 0);
    }

    #[test]
    fn parses_two_byte_extensions() {
        let mut rest = vec![0x10, 0x07, 0, 3]; // two-byte form, appbits 7, 3 words
        rest.extend_from_slice(&[0, 5, 0, 200, 2, 0xAB, 0xCD, 0]); // pad, id5 len0, id200 len2, pad
        rest.extend_from_slice(&[0, 0, 0, 0]);
        let bytes = packet(0x90, &rest);
        let p = RtpPacket::parse(&bytes).expect("valid");
        let elements: Vec<_> = p.extensions().collect();
        assert_eq!(elements, [(5, &[][..]), (200, &[0xAB, 0xCD][..])]);
        assert!(p.payload().is_empty());
    }

    #[test]
    fn other_profile_is_opaque() {
        let bytes = packet(0x90, &[0x12, 0x34, 0, 1, 0x11, 0x22, 0x33, 0x44]);
        let p = RtpPacket::parse(&bytes).expect("valid");
        assert_eq!(p.extension_profile(), Some(0x1234));
        assert_eq!(p.extension_data(), Some(&[0x11, 0x22, 0x33, 0x44][..]));
        assert_eq!(p.extensions().count(), 0);
    }

    fn element_count(bytes: &[u8]) -> usize {
        RtpPacket::parse(bytes).expect("valid").extensions().count()
    }

    #[test]
    fn extension_walk_stops_at_garbage() {
        // id1 with 3 bytes fills the block; with 4 or 5 bytes it does not fit: nothing.
        let bytes = packet(0x90, &[0xBE, 0xDE, 0, 1, 0x12, 1, 2, 3]);
        assert_eq!(element_count(&bytes), 1);
        let bytes = packet(0x90, &[0xBE, 0xDE, 0, 1, 0x13, 1, 2, 3]);
        assert_eq!(element_count(&bytes), 0);
        let bytes = packet(0x90, &[0xBE, 0xDE, 0, 1, 0x14, 1, 2, 3]);
        assert_eq!(element_count(&bytes), 0);
        // ID 15 ends the walk.
        let bytes = packet(0x90, &[0xBE, 0xDE, 0, 1, 0x10, 1, 0xF0, 0x10]);
        let p = RtpPacket::parse(&bytes).expect("valid");
        assert_eq!(p.extensions().collect::<Vec<_>>(), [(1, &[1][..])]);
        // Two-byte element whose length byte is missing.
        let bytes = packet(0x90, &[0x10, 0x00, 0, 1, 0, 0, 0, 7]);
        assert_eq!(element_count(&bytes), 0);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(RtpPacket::parse(&[]), Err(RtpError::TooShort));
        assert_eq!(
            RtpPacket::parse(&packet(0x80, b"")[..11]),
            Err(RtpError::TooShort)
        );
        assert_eq!(
            RtpPacket::parse(&packet(0x40, b"")),
            Err(RtpError::BadVersion)
        );
        assert_eq!(
            RtpPacket::parse(&packet(0xC0, b"")),
            Err(RtpError::BadVersion)
        );
        assert_eq!(
            RtpPacket::parse(&packet(0x81, b"abc")),
            Err(RtpError::TruncatedCsrc)
        );
        assert_eq!(
            RtpPacket::parse(&packet(0x90, b"\xbe\xde")),
            Err(RtpError::TruncatedExtension)
        );
        assert_eq!(
            RtpPacket::parse(&packet(0x90, &[0xBE, 0xDE, 0, 2, 0x10, 0, 0, 0])),
            Err(RtpError::TruncatedExtension)
        );
        assert_eq!(
            RtpPacket::parse(&packet(0xA0, b"ab\0")),
            Err(RtpError::BadPadding)
        );
        assert_eq!(
            RtpPacket::parse(&packet(0xA0, b"ab\x04")),
            Err(RtpError::BadPadding)
        );
        assert_eq!(
            RtpPacket::parse(&packet(0xA0, b"")),
            Err(RtpError::BadPadding)
        );
        // Padding may take the whole payload.
        let bytes = packet(0xA0, b"\0\0\x03");
        let p = RtpPacket::parse(&bytes).expect("valid");
        assert!(p.payload().is_empty());
        assert_eq!(p.padding_len(), 3);
    }

    #[test]
    fn rewrites_fields_in_place() {
        let mut bytes = packet(0x90, &[0xBE, 0xDE, 0, 1, 0x21, 7, 8, 0, 0xFF]);
        rewrite_sequence(&mut bytes, 0xFFFE).expect("rewrite");
        rewrite_timestamp(&mut bytes, 77).expect("rewrite");
        rewrite_ssrc(&mut bytes, 0xCAFE_BABE).expect("rewrite");
        rewrite_extension(&mut bytes, 2, &[9, 10]).expect("rewrite");
        let p = RtpPacket::parse(&bytes).expect("valid");
        assert_eq!(p.sequence(), 0xFFFE);
        assert_eq!(p.timestamp(), 77);
        assert_eq!(p.ssrc(), 0xCAFE_BABE);
        assert!(p.marker());
        assert_eq!(p.payload_type(), 111);
        assert_eq!(p.extension(2), Some(&[9, 10][..]));
        assert_eq!(p.payload(), &[0xFF]);
        assert_eq!(
            rewrite_extension(&mut bytes, 2, &[1]),
            Err(RtpError::ExtensionLengthMismatch)
        );
        assert_eq!(
            rewrite_extension(&mut bytes, 3, &[1]),
            Err(RtpError::ExtensionNotFound)
        );
        let mut plain = packet(0x80, b"x");
        assert_eq!(
            rewrite_extension(&mut plain, 1, &[1]),
            Err(RtpError::ExtensionNotFound)
        );
        assert_eq!(rewrite_ssrc(&mut [0x80; 11], 1), Err(RtpError::TooShort));
        assert_eq!(
            rewrite_sequence(&mut [0x00; 12], 1),
            Err(RtpError::BadVersion)
        );
        assert_eq!(rewrite_timestamp(&mut [], 1), Err(RtpError::TooShort));
    }

    #[test]
    fn rewrites_two_byte_extension() {
        let mut bytes = packet(0x90, &[0x10, 0x00, 0, 1, 0, 3, 1, 0x55]);
        rewrite_extension(&mut bytes, 3, &[0x66]).expect("rewrite");
        assert_eq!(
            RtpPacket::parse(&bytes).expect("valid").extension(3),
            Some(&[0x66][..])
        );
    }
}
