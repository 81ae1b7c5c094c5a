//! RTCP compound packets (RFC 3550 §6), read in place, and the feedback the SFU sends.
//!
//! [`RtcpCompound::parse`] checks a whole compound packet before anything is read from it: every
//! packet has version 2 and a length inside the datagram, only the last one may be padded, and
//! the packets this module decodes have the size their type and count require. The compound is
//! rejected as a whole otherwise (RFC 3550 §A.2). Reduced-size RTCP (RFC 5506) is accepted: the
//! first packet need not be a report. With RTP/RTCP multiplexing (RFC 5761) the caller has
//! already told RTCP apart by its packet type ([`super::demux`]).
//!
//! [`RtcpCompound::packets`] then yields each packet as an [`RtcpPacket`]: sender and receiver
//! reports with their report blocks, BYE, generic NACK (RFC 4585 §6.2.1) as the list of lost
//! sequence numbers, PLI, FIR (RFC 5104 §4.3.1), REMB (draft-alvestrand-rmcat-remb) and
//! transport-wide congestion control feedback (recognised, not decoded). SDES and APP are
//! skipped, other types and formats reported as [`RtcpPacket::Other`]. Nothing is copied or
//! allocated.
//!
//! The encoders append a receiver report, PLI, FIR or NACK to a caller's buffer.

use core::slice::ChunksExact;

/// RTCP packet types (RFC 3550 §12.1, RFC 4585 §6.1).
pub mod packet_type {
    /// Sender report.
    pub const SENDER_REPORT: u8 = 200;
    /// Receiver report.
    pub const RECEIVER_REPORT: u8 = 201;
    /// Source description.
    pub const SOURCE_DESCRIPTION: u8 = 202;
    /// Goodbye.
    pub const GOODBYE: u8 = 203;
    /// Application-defined.
    pub const APP: u8 = 204;
    /// Transport-layer feedback (NACK, transport-wide CC).
    pub const TRANSPORT_FEEDBACK: u8 = 205;
    /// Payload-specific feedback (PLI, FIR, REMB).
    pub const PAYLOAD_FEEDBACK: u8 = 206;
}

/// Feedback message types (FMT), per packet type.
mod format {
    /// RTPFB: generic NACK.
    pub const NACK: u8 = 1;
    /// RTPFB: transport-wide congestion control.
    pub const TRANSPORT_CC: u8 = 15;
    /// PSFB: picture loss indication.
    pub const PLI: u8 = 1;
    /// PSFB: full intra request.
    pub const FIR: u8 = 4;
    /// PSFB: application-layer feedback (REMB).
    pub const APPLICATION: u8 = 15;
}

/// Length of a report block.
const REPORT_BLOCK_LEN: usize = 24;

/// Most report blocks in one SR or RR (the 5-bit count).
const MAX_REPORT_BLOCKS: usize = 31;

/// Why bytes are not an acceptable RTCP compound packet, or why an encoder refused. Closed: it
/// never carries peer data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RtcpError {
    /// No bytes at all.
    #[error("RTCP datagram is empty")]
    Empty,
    /// Fewer than four bytes left for a packet header.
    #[error("RTCP header is truncated")]
    TruncatedHeader,
    /// The version field is not 2.
    #[error("RTCP version is not 2")]
    BadVersion,
    /// A packet's length field runs past the end of the datagram.
    #[error("RTCP length runs past the end of the datagram")]
    LengthOverrun,
    /// The padding count is zero or larger than the packet's body.
    #[error("RTCP padding count is invalid")]
    BadPadding,
    /// A packet other than the last one has the padding bit.
    #[error("only the last RTCP packet may be padded")]
    PaddingNotLast,
    /// A packet's body does not have the size its type and count require.
    #[error("{0:?} packet has an invalid size")]
    Malformed(RtcpKind),
    /// More than 31 report blocks to encode.
    #[error("more than 31 report blocks")]
    TooManyReportBlocks,
    /// An encoder was given an empty list where at least one entry is required.
    #[error("nothing to encode")]
    NothingToEncode,
    /// The packet to encode would exceed the 16-bit length field.
    #[error("packet would be too long")]
    TooLong,
}

/// The packet kinds whose size is checked; names the culprit of [`RtcpError::Malformed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RtcpKind {
    /// SR: shorter than its sender info and report blocks.
    SenderReport,
    /// RR: shorter than its report blocks.
    ReceiverReport,
    /// BYE: shorter than its SSRC list or reason.
    Goodbye,
    /// RTPFB or PSFB: shorter than the two SSRCs of every feedback message.
    Feedback,
    /// Generic NACK: no FCI entry, or a partial one.
    Nack,
    /// PLI: carries an FCI.
    Pli,
    /// FIR: no FCI entry, or a partial one.
    Fir,
    /// REMB: its SSRC count does not match its size.
    Remb,
}

/// One checked RTCP compound packet, borrowing the datagram it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpCompound<'a> {
    bytes: &'a [u8],
}

impl<'a> RtcpCompound<'a> {
    /// Checks every packet of a compound. See the [module documentation](self).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RtcpError> {
        if bytes.is_empty() {
            return Err(RtcpError::Empty);
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            let (packet, next) = next_packet(rest)?;
            packet?;
            rest = next;
        }
        Ok(Self { bytes })
    }

    /// The whole compound packet.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The packets, in order.
    pub fn packets(&self) -> Packets<'a> {
        Packets { rest: self.bytes }
    }
}

impl<'a> IntoIterator for RtcpCompound<'a> {
    type Item = RtcpPacket<'a>;
    type IntoIter = Packets<'a>;

    fn into_iter(self) -> Packets<'a> {
        self.packets()
    }
}

/// The packets of an [`RtcpCompound`].
#[derive(Debug, Clone)]
pub struct Packets<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Packets<'a> {
    type Item = RtcpPacket<'a>;

    fn next(&mut self) -> Option<RtcpPacket<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        // The compound was checked whole by `parse`; an error cannot occur, and would end the
        // iteration rather than panic.
        match next_packet(self.rest) {
            Ok((Ok(packet), rest)) => {
                self.rest = rest;
                Some(packet)
            }
            _ => {
                self.rest = &[];
                None
            }
        }
    }
}

/// One packet of a compound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    /// SR (200).
    SenderReport(SenderReport<'a>),
    /// RR (201).
    ReceiverReport(ReceiverReport<'a>),
    /// SDES (202), not decoded.
    SourceDescription,
    /// BYE (203).
    Goodbye(Goodbye<'a>),
    /// APP (204), not decoded.
    App,
    /// Generic NACK (205, FMT 1).
    Nack(Nack<'a>),
    /// Transport-wide congestion control feedback (205, FMT 15), not decoded.
    TransportCc(FeedbackSsrcs),
    /// Picture loss indication (206, FMT 1).
    Pli(FeedbackSsrcs),
    /// Full intra request (206, FMT 4).
    Fir(Fir<'a>),
    /// Receiver estimated maximum bitrate (206, FMT 15, "REMB").
    Remb(Remb<'a>),
    /// Any other packet type, feedback format or application-layer feedback.
    Other {
        /// The packet type.
        packet_type: u8,
        /// The 5-bit count or format field.
        count: u8,
    },
}

/// A sender report (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderReport<'a> {
    /// The sender.
    pub ssrc: u32,
    /// NTP timestamp: seconds since 1900 in the high 32 bits, fraction in the low.
    pub ntp_time: u64,
    /// The RTP timestamp of the same instant.
    pub rtp_time: u32,
    /// Packets sent.
    pub packet_count: u32,
    /// Payload octets sent.
    pub octet_count: u32,
    blocks: &'a [u8],
}

impl<'a> SenderReport<'a> {
    /// The report blocks about the sources this sender receives.
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks(self.blocks.chunks_exact(REPORT_BLOCK_LEN))
    }
}

/// A receiver report (RFC 3550 §6.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverReport<'a> {
    /// The receiver.
    pub ssrc: u32,
    blocks: &'a [u8],
}

impl<'a> ReceiverReport<'a> {
    /// The report blocks.
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks(self.blocks.chunks_exact(REPORT_BLOCK_LEN))
    }
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction of packets lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed; duplicates can make it negative). The encoder
    /// clamps it to the 24-bit range.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_sequence: u32,
    /// Interarrival jitter, in RTP timestamp units.
    pub jitter: u32,
    /// The middle 32 bits of the last SR's NTP timestamp.
    pub last_sr: u32,
    /// Delay since the last SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn decode(b: &[u8]) -> Self {
        Self {
            ssrc: read_u32(b, 0),
            fraction_lost: b[4],
            cumulative_lost: i32::from_be_bytes([b[5], b[6], b[7], 0]) >> 8,
            highest_sequence: read_u32(b, 8),
            jitter: read_u32(b, 12),
            last_sr: read_u32(b, 16),
            delay_since_last_sr: read_u32(b, 20),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let lost = self.cumulative_lost.clamp(-(1 << 23), (1 << 23) - 1);
        let lost = lost.to_be_bytes();
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&[self.fraction_lost, lost[1], lost[2], lost[3]]);
        out.extend_from_slice(&self.highest_sequence.to_be_bytes());
        out.extend_from_slice(&self.jitter.to_be_bytes());
        out.extend_from_slice(&self.last_sr.to_be_bytes());
        out.extend_from_slice(&self.delay_since_last_sr.to_be_bytes());
    }
}

/// The report blocks of an SR or RR.
#[derive(Debug, Clone)]
pub struct ReportBlocks<'a>(ChunksExact<'a, u8>);

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;

    fn next(&mut self) -> Option<ReportBlock> {
        self.0.next().map(ReportBlock::decode)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for ReportBlocks<'_> {}

/// A BYE packet (RFC 3550 §6.6). The reason, peer text, is not exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Goodbye<'a> {
    sources: &'a [u8],
}

impl<'a> Goodbye<'a> {
    /// The sources that leave.
    pub fn sources(&self) -> Ssrcs<'a> {
        Ssrcs(self.sources.chunks_exact(4))
    }
}

/// A list of SSRCs (BYE sources, REMB targets).
#[derive(Debug, Clone)]
pub struct Ssrcs<'a>(ChunksExact<'a, u8>);

impl Iterator for Ssrcs<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        self.0.next().map(|c| read_u32(c, 0))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for Ssrcs<'_> {}

/// The two SSRCs every feedback message starts with (RFC 4585 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FeedbackSsrcs {
    /// Who sends the feedback.
    pub sender_ssrc: u32,
    /// The media source it is about.
    pub media_ssrc: u32,
}

/// A generic NACK (RFC 4585 §6.2.1): packets the receiver asks to be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nack<'a> {
    /// Who sends the feedback.
    pub sender_ssrc: u32,
    /// The media source whose packets are lost.
    pub media_ssrc: u32,
    fci: &'a [u8],
}

impl<'a> Nack<'a> {
    /// The FCI entries as `(PID, BLP)`.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (u16, u16)> + 'a {
        self.fci.chunks_exact(4).map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u16::from_be_bytes([c[2], c[3]]),
            )
        })
    }

    /// The lost sequence numbers: each PID, then PID + i + 1 for every bit i set in its BLP.
    /// In wire order; a peer may repeat numbers.
    pub fn lost(&self) -> LostSequences<'a> {
        LostSequences {
            entries: self.fci.chunks_exact(4),
            current: None,
            bit: 0,
        }
    }
}

/// The lost sequence numbers of a [`Nack`].
#[derive(Debug, Clone)]
pub struct LostSequences<'a> {
    entries: ChunksExact<'a, u8>,
    current: Option<(u16, u16)>,
    /// 0: the PID itself is next; 1–16: the BLP bit `bit - 1` is next.
    bit: u16,
}

impl Iterator for LostSequences<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        loop {
            if let Some((pid, blp)) = self.current {
                if self.bit == 0 {
                    self.bit = 1;
                    return Some(pid);
                }
                while self.bit <= 16 {
                    let bit = self.bit;
                    self.bit += 1;
                    if blp & (1 << (bit - 1)) != 0 {
                        return Some(pid.wrapping_add(bit));
                    }
                }
                self.current = None;
            }
            let entry = self.entries.next()?;
            self.current = Some((
                u16::from_be_bytes([entry[0], entry[1]]),
                u16::from_be_bytes([entry[2], entry[3]]),
            ));
            self.bit = 0;
        }
    }
}

/// A full intra request (RFC 5104 §4.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fir<'a> {
    /// Who sends the request.
    pub sender_ssrc: u32,
    /// Unused by FIR (zero); the targets are in the entries.
    pub media_ssrc: u32,
    fci: &'a [u8],
}

impl<'a> Fir<'a> {
    /// The media sources asked for a key frame, with the request's sequence number.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = FirEntry> + 'a {
        self.fci.chunks_exact(8).map(|c| FirEntry {
            ssrc: read_u32(c, 0),
            sequence: c[4],
        })
    }
}

/// One FIR entry: which source, and a sequence number that changes with every new request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FirEntry {
    /// The media source asked for a key frame.
    pub ssrc: u32,
    /// The command sequence number.
    pub sequence: u8,
}

/// A receiver estimated maximum bitrate message (draft-alvestrand-rmcat-remb-03 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remb<'a> {
    /// Who sends the estimate.
    pub sender_ssrc: u32,
    /// The estimate in bits per second (saturated at `u64::MAX`).
    pub bitrate: u64,
    ssrcs: &'a [u8],
}

impl<'a> Remb<'a> {
    /// The media sources the estimate applies to.
    pub fn ssrcs(&self) -> Ssrcs<'a> {
        Ssrcs(self.ssrcs.chunks_exact(4))
    }
}

/// The first packet of a compound (or why its body is malformed), and the rest.
type Split<'a> = (Result<RtcpPacket<'a>, RtcpError>, &'a [u8]);

/// Splits the first packet off `bytes`. The outer error is broken framing, the inner one a body
/// that does not fit its type.
fn next_packet(bytes: &[u8]) -> Result<Split<'_>, RtcpError> {
    let [first, packet_type, l0, l1, ..] = *bytes else {
        return Err(RtcpError::TruncatedHeader);
    };
    if first >> 6 != 2 {
        return Err(RtcpError::BadVersion);
    }
    let len = (usize::from(u16::from_be_bytes([l0, l1])) + 1) * 4;
    if len > bytes.len() {
        return Err(RtcpError::LengthOverrun);
    }
    let (packet, rest) = bytes.split_at(len);
    let mut body = &packet[4..];
    if first & 0x20 != 0 {
        if !rest.is_empty() {
            return Err(RtcpError::PaddingNotLast);
        }
        let count = usize::from(packet[len - 1]);
        if count == 0 || count > body.len() {
            return Err(RtcpError::BadPadding);
        }
        body = &body[..body.len() - count];
    }
    Ok((decode(packet_type, first & 0x1F, body), rest))
}

/// Decodes one packet's body (after the 4-byte header, without padding).
fn decode(packet_type: u8, count: u8, body: &[u8]) -> Result<RtcpPacket<'_>, RtcpError> {
    let blocks = usize::from(count) * REPORT_BLOCK_LEN;
    match packet_type {
        packet_type::SENDER_REPORT => {
            // Extra bytes after the blocks are profile-specific extensions (RFC 3550 §6.4.1).
            let blocks = body
                .get(24..24 + blocks)
                .ok_or(RtcpError::Malformed(RtcpKind::SenderReport))?;
            Ok(RtcpPacket::SenderReport(SenderReport {
                ssrc: read_u32(body, 0),
                ntp_time: u64::from(read_u32(body, 4)) << 32 | u64::from(read_u32(body, 8)),
                rtp_time: read_u32(body, 12),
                packet_count: read_u32(body, 16),
                octet_count: read_u32(body, 20),
                blocks,
            }))
        }
        packet_type::RECEIVER_REPORT => {
            let blocks = body
                .get(4..4 + blocks)
                .ok_or(RtcpError::Malformed(RtcpKind::ReceiverReport))?;
            Ok(RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: read_u32(body, 0),
                blocks,
            }))
        }
        packet_type::SOURCE_DESCRIPTION => Ok(RtcpPacket::SourceDescription),
        packet_type::GOODBYE => {
            let malformed = RtcpError::Malformed(RtcpKind::Goodbye);
            let sources_len = usize::from(count) * 4;
            let sources = body.get(..sources_len).ok_or(malformed)?;
            if let Some(&reason_len) = body.get(sources_len)
                && sources_len + 1 + usize::from(reason_len) > body.len()
            {
                return Err(malformed);
            }
            Ok(RtcpPacket::Goodbye(Goodbye { sources }))
        }
        packet_type::APP => Ok(RtcpPacket::App),
        packet_type::TRANSPORT_FEEDBACK | packet_type::PAYLOAD_FEEDBACK => {
            decode_feedback(packet_type, count, body)
        }
        _ => Ok(RtcpPacket::Other { packet_type, count }),
    }
}

fn decode_feedback(packet_type: u8, format: u8, body: &[u8]) -> Result<RtcpPacket<'_>, RtcpError> {
    if body.len() < 8 {
        return Err(RtcpError::Malformed(RtcpKind::Feedback));
    }
    let ssrcs = FeedbackSsrcs {
        sender_ssrc: read_u32(body, 0),
        media_ssrc: read_u32(body, 4),
    };
    let fci = &body[8..];
    let entries_ok = |size: usize| !fci.is_empty() && fci.len().is_multiple_of(size);
    match (packet_type, format) {
        (packet_type::TRANSPORT_FEEDBACK, format::NACK) => {
            if !entries_ok(4) {
                return Err(RtcpError::Malformed(RtcpKind::Nack));
            }
            Ok(RtcpPacket::Nack(Nack {
                sender_ssrc: ssrcs.sender_ssrc,
                media_ssrc: ssrcs.media_ssrc,
                fci,
            }))
        }
        (packet_type::TRANSPORT_FEEDBACK, format::TRANSPORT_CC) => {
            Ok(RtcpPacket::TransportCc(ssrcs))
        }
        (packet_type::PAYLOAD_FEEDBACK, format::PLI) => {
            if !fci.is_empty() {
                return Err(RtcpError::Malformed(RtcpKind::Pli));
            }
            Ok(RtcpPacket::Pli(ssrcs))
        }
        (packet_type::PAYLOAD_FEEDBACK, format::FIR) => {
            if !entries_ok(8) {
                return Err(RtcpError::Malformed(RtcpKind::Fir));
            }
            Ok(RtcpPacket::Fir(Fir {
                sender_ssrc: ssrcs.sender_ssrc,
                media_ssrc: ssrcs.media_ssrc,
                fci,
            }))
        }
        (packet_type::PAYLOAD_FEEDBACK, format::APPLICATION) if fci.starts_with(b"REMB") => {
            let [_, _, _, _, count, b0, b1, b2, ref targets @ ..] = *fci else {
                return Err(RtcpError::Malformed(RtcpKind::Remb));
            };
            if targets.len() != usize::from(count) * 4 {
                return Err(RtcpError::Malformed(RtcpKind::Remb));
            }
            let exponent = b0 >> 2;
            let mantissa = u32::from_be_bytes([0, b0 & 0x03, b1, b2]);
            let bitrate = u64::try_from(u128::from(mantissa) << exponent).unwrap_or(u64::MAX);
            Ok(RtcpPacket::Remb(Remb {
                sender_ssrc: ssrcs.sender_ssrc,
                bitrate,
                ssrcs: targets,
            }))
        }
        _ => Ok(RtcpPacket::Other {
            packet_type,
            count: format,
        }),
    }
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Appends a packet header; `len` is the whole packet's length in bytes, a multiple of 4.
fn put_header(out: &mut Vec<u8>, count: u8, packet_type: u8, len: usize) -> Result<(), RtcpError> {
    let words = u16::try_from(len / 4 - 1).map_err(|_| RtcpError::TooLong)?;
    out.push(0x80 | (count & 0x1F));
    out.push(packet_type);
    out.extend_from_slice(&words.to_be_bytes());
    Ok(())
}

/// Appends a receiver report with up to 31 report blocks.
pub fn encode_receiver_report(
    ssrc: u32,
    blocks: &[ReportBlock],
    out: &mut Vec<u8>,
) -> Result<(), RtcpError> {
    if blocks.len() > MAX_REPORT_BLOCKS {
        return Err(RtcpError::TooManyReportBlocks);
    }
    let count = u8::try_from(blocks.len()).map_err(|_| RtcpError::TooManyReportBlocks)?;
    put_header(
        out,
        count,
        packet_type::RECEIVER_REPORT,
        8 + REPORT_BLOCK_LEN * blocks.len(),
    )?;
    out.extend_from_slice(&ssrc.to_be_bytes());
    for block in blocks {
        block.encode(out);
    }
    Ok(())
}

/// Appends a picture loss indication: `sender_ssrc` asks `media_ssrc` for a key frame.
pub fn encode_pli(sender_ssrc: u32, media_ssrc: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x80 | format::PLI, packet_type::PAYLOAD_FEEDBACK, 0, 2]);
    out.extend_from_slice(&sender_ssrc.to_be_bytes());
    out.extend_from_slice(&media_ssrc.to_be_bytes());
}

/// Appends a full intra request for each entry (at least one).
pub fn encode_fir(
    sender_ssrc: u32,
    entries: &[FirEntry],
    out: &mut Vec<u8>,
) -> Result<(), RtcpError> {
    if entries.is_empty() {
        return Err(RtcpError::NothingToEncode);
    }
    let len = entries
        .len()
        .checked_mul(8)
        .and_then(|fci| fci.checked_add(12))
        .ok_or(RtcpError::TooLong)?;
    put_header(out, format::FIR, packet_type::PAYLOAD_FEEDBACK, len)?;
    out.extend_from_slice(&sender_ssrc.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    for entry in entries {
        out.extend_from_slice(&entry.ssrc.to_be_bytes());
        out.extend_from_slice(&[entry.sequence, 0, 0, 0]);
    }
    Ok(())
}

/// Appends a generic NACK for the lost sequence numbers (at least one). Numbers within 16 after
/// an entry's PID share its BLP; pass them in ascending (wrapping) order for the fewest entries.
pub fn encode_nack(
    sender_ssrc: u32,
    media_ssrc: u32,
    lost: &[u16],
    out: &mut Vec<u8>,
) -> Result<(), RtcpError> {
    let Some((&first, rest)) = lost.split_first() else {
        return Err(RtcpError::NothingToEncode);
    };
    let start = out.len();
    out.extend_from_slice(&[0x80 | format::NACK, packet_type::TRANSPORT_FEEDBACK, 0, 0]);
    out.extend_from_slice(&sender_ssrc.to_be_bytes());
    out.extend_from_slice(&media_ssrc.to_be_bytes());
    let mut pid = first;
    let mut blp = 0u16;
    for &sequence in rest {
        let distance = sequence.wrapping_sub(pid);
        match distance {
            0 => {}
            1..=16 => blp |= 1 << (distance - 1),
            _ => {
                out.extend_from_slice(&pid.to_be_bytes());
                out.extend_from_slice(&blp.to_be_bytes());
                pid = sequence;
                blp = 0;
            }
        }
    }
    out.extend_from_slice(&pid.to_be_bytes());
    out.extend_from_slice(&blp.to_be_bytes());
    let Ok(words) = u16::try_from((out.len() - start) / 4 - 1) else {
        out.truncate(start);
        return Err(RtcpError::TooLong);
    };
    out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Vec<RtcpPacket<'_>> {
        RtcpCompound::parse(bytes)
            .expect("valid compound")
            .packets()
            .collect()
    }

    fn block(ssrc: u32, cumulative_lost: i32) -> ReportBlock {
        ReportBlock {
            ssrc,
            fraction_lost: 25,
            cumulative_lost,
            highest_sequence: 0x0001_0203,
            jitter: 40,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 65536,
        }
    }

    /// SR with one report block, then SDES, as a browser sends them.
    fn sender_report_and_sdes() -> Vec<u8> {
        let mut bytes = vec![0x81, 200, 0, 12];
        bytes.extend_from_slice(&0x1111_1111u32.to_be_bytes());
        bytes.extend_from_slice(&0xE000_0000_8000_0000u64.to_be_bytes());
        bytes.extend_from_slice(&90_000u32.to_be_bytes());
        bytes.extend_from_slice(&10u32.to_be_bytes());
        bytes.extend_from_slice(&12_000u32.to_be_bytes());
        block(0x2222_2222, -3).encode(&mut bytes);
        // SDES: one chunk, CNAME "ab", end, padding to a word.
        bytes.extend_from_slice(&[0x81, 202, 0, 2]);
        bytes.extend_from_slice(&0x1111_1111u32.to_be_bytes());
        bytes.extend_from_slice(&[1, 2, b'a', b'b']);
        bytes
    }

    #[test]
    fn parses_sender_report_and_skips_sdes() {
        let bytes = sender_report_and_sdes();
        let packets = parse(&bytes);
        assert_eq!(packets.len(), 2);
        let RtcpPacket::SenderReport(sr) = packets[0] else {
            panic!("not an SR: {:?}", packets[0]);
        };
        assert_eq!(sr.ssrc, 0x1111_1111);
        assert_eq!(sr.ntp_time, 0xE000_0000_8000_0000);
        assert_eq!(sr.rtp_time, 90_000);
        assert_eq!(sr.packet_count, 10);
        assert_eq!(sr.octet_count, 12_000);
        let blocks: Vec<_> = sr.report_blocks().collect();
        assert_eq!(blocks, [block(0x2222_2222, -3)]);
        assert_eq!(packets[1], RtcpPacket::SourceDescription);
    }

    #[test]
    fn receiver_report_round_trips() {
        let blocks = [block(1, 0), block(2, 5_000_000), block(3, -(1 << 23))];
        let mut out = Vec::new();
        encode_receiver_report(0xAAAA_0001, &blocks, &mut out).expect("encode");
        assert_eq!(out.len(), 8 + 3 * 24);
        let packets = parse(&out);
        let [RtcpPacket::ReceiverReport(rr)] = packets[..] else {
            panic!("not one RR: {packets:?}");
        };
        assert_eq!(rr.ssrc, 0xAAAA_0001);
        assert_eq!(rr.report_blocks().len(), 3);
        assert_eq!(rr.report_blocks().collect::<Vec<_>>(), blocks);

        // Out-of-range cumulative loss is clamped to 24 bits.
        out.clear();
        encode_receiver_report(1, &[block(9, i32::MAX), block(9, i32::MIN)], &mut out)
            .expect("encode");
        let packets = parse(&out);
        let RtcpPacket::ReceiverReport(rr) = packets[0] else {
            panic!("not an RR");
        };
        let lost: Vec<_> = rr.report_blocks().map(|b| b.cumulative_lost).collect();
        assert_eq!(lost, [(1 << 23) - 1, -(1 << 23)]);

        // An empty RR is valid.
        out.clear();
        encode_receiver_report(7, &[], &mut out).expect("encode");
        assert_eq!(out, [0x80, 201, 0, 1, 0, 0, 0, 7]);
        assert_eq!(
            encode_receiver_report(7, &[block(1, 0); 32], &mut out),
            Err(RtcpError::TooManyReportBlocks)
        );
    }

    #[test]
    fn parses_goodbye() {
        let mut bytes = vec![0x82, 203, 0, 4, 0, 0, 0, 1, 0, 0, 0, 2];
        bytes.extend_from_slice(&[3, b'b', b'y', b'e']);
        bytes.extend_from_slice(&[0, 0, 0, 0]);
        let packets = parse(&bytes);
        let RtcpPacket::Goodbye(bye) = packets[0] else {
            panic!("not a BYE");
        };
        assert_eq!(bye.sources().collect::<Vec<_>>(), [1, 2]);
        // Reason longer than the packet.
        bytes[12] = 9;
        assert_eq!(
            RtcpCompound::parse(&bytes),
            Err(RtcpError::Malformed(RtcpKind::Goodbye))
        );
        // More sources than the packet holds.
        assert_eq!(
            RtcpCompound::parse(&[0x82, 203, 0, 1, 0, 0, 0, 1]),
            Err(RtcpError::Malformed(RtcpKind::Goodbye))
        );
    }

    #[test]
    fn nack_follows_rfc4585() {
        // PID 100, BLP 0b101: 100, 101 and 103 are lost.
        let bytes = [0x81, 205, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 100, 0, 0b101];
        let packets = parse(&bytes);
        let RtcpPacket::Nack(nack) = packets[0] else {
            panic!("not a NACK");
        };
        assert_eq!(nack.sender_ssrc, 1);
        assert_eq!(nack.media_ssrc, 2);
        assert_eq!(nack.entries().collect::<Vec<_>>(), [(100, 0b101)]);
        assert_eq!(nack.lost().collect::<Vec<_>>(), [100, 101, 103]);
        // Wrapping and all 16 bits.
        let bytes = [
            0x81, 205, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0xFF, 0xFF, 0xFF, 0xFF,
        ];
        let packets = parse(&bytes);
        let RtcpPacket::Nack(nack) = packets[0] else {
            panic!("not a NACK");
        };
        let lost: Vec<u16> = nack.lost().collect();
        assert_eq!(lost.len(), 17);
        assert_eq!(lost[0], 0xFFFF);
        assert_eq!(lost[1..], (0..16).collect::<Vec<u16>>());
    }

    #[test]
    fn nack_round_trips() {
        let lost = [100, 101, 103, 116, 117, 200, 65535, 0, 15];
        let mut out = Vec::new();
        encode_nack(5, 6, &lost, &mut out).expect("encode");
        let packets = parse(&out);
        let RtcpPacket::Nack(nack) = packets[0] else {
            panic!("not a NACK");
        };
        assert_eq!((nack.sender_ssrc, nack.media_ssrc), (5, 6));
        assert_eq!(
            nack.entries().collect::<Vec<_>>(),
            [(100, 0x8000 | 0b101), (117, 0), (200, 0), (65535, 0x8001)]
        );
        assert_eq!(nack.lost().collect::<Vec<_>>(), lost);
        assert_eq!(
            encode_nack(5, 6, &[], &mut out),
            Err(RtcpError::NothingToEncode)
        );
    }

    #[test]
    fn nack_encoder_refuses_more_than_the_length_field_holds() {
        // Descending numbers each start a new entry: 65536 entries do not fit.
        let lost: Vec<u16> = (0..=u16::MAX).rev().collect();
        let mut out = vec![1, 2, 3];
        assert_eq!(encode_nack(1, 2, &lost, &mut out), Err(RtcpError::TooLong));
        assert_eq!(out, [1, 2, 3]);
        // 65533 entries do.
        encode_nack(1, 2, &lost[..65533], &mut out).expect("fits");
        assert_eq!(out.len(), 3 + 4 * 65536);
    }

    #[test]
    fn pli_round_trips() {
        let mut out = Vec::new();
        encode_pli(7, 8, &mut out);
        assert_eq!(out, [0x81, 206, 0, 2, 0, 0, 0, 7, 0, 0, 0, 8]);
        assert_eq!(
            parse(&out),
            [RtcpPacket::Pli(FeedbackSsrcs {
                sender_ssrc: 7,
                media_ssrc: 8
            })]
        );
    }

    #[test]
    fn fir_round_trips() {
        let entries = [
            FirEntry {
                ssrc: 0x0A0B_0C0D,
                sequence: 3,
            },
            FirEntry {
                ssrc: 9,
                sequence: 255,
            },
        ];
        let mut out = Vec::new();
        encode_fir(7, &entries, &mut out).expect("encode");
        assert_eq!(out.len(), 12 + 16);
        let packets = parse(&out);
        let RtcpPacket::Fir(fir) = packets[0] else {
            panic!("not a FIR");
        };
        assert_eq!((fir.sender_ssrc, fir.media_ssrc), (7, 0));
        assert_eq!(fir.entries().collect::<Vec<_>>(), entries);
        assert_eq!(
            encode_fir(7, &[], &mut out),
            Err(RtcpError::NothingToEncode)
        );
    }

    #[test]
    fn parses_remb() {
        // 'REMB', 2 SSRCs, exponent 3, mantissa 0x3FFFF: 262143 * 8 bit/s.
        let mut bytes = vec![0x8F, 206, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0];
        bytes.extend_from_slice(b"REMB");
        bytes.extend_from_slice(&[2, (3 << 2) | 0x03, 0xFF, 0xFF]);
        bytes.extend_from_slice(&[0, 0, 0, 10, 0, 0, 0, 11]);
        let packets = parse(&bytes);
        let RtcpPacket::Remb(remb) = packets[0] else {
            panic!("not a REMB");
        };
        assert_eq!(remb.sender_ssrc, 1);
        assert_eq!(remb.bitrate, 0x3FFFF * 8);
        assert_eq!(remb.ssrcs().collect::<Vec<_>>(), [10, 11]);
        // Exponent 63 saturates.
        bytes[17] = (63 << 2) | 0x03;
        let packets = parse(&bytes);
        let RtcpPacket::Remb(remb) = packets[0] else {
            panic!("not a REMB");
        };
        assert_eq!(remb.bitrate, u64::MAX);
        // The count must match.
        bytes[16] = 3;
        assert_eq!(
            RtcpCompound::parse(&bytes),
            Err(RtcpError::Malformed(RtcpKind::Remb))
        );
        // Application-layer feedback that is not REMB is "other".
        let bytes = [
            0x8F, 206, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, b'X', b'Y', b'Z', b'W',
        ];
        assert_eq!(
            parse(&bytes),
            [RtcpPacket::Other {
                packet_type: 206,
                count: 15
            }]
        );
    }

    #[test]
    fn recognises_transport_cc_and_others() {
        let mut bytes = vec![0x8F, 205, 0, 4, 0, 0, 0, 1, 0, 0, 0, 2];
        bytes.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&[0x80, 207, 0, 1, 0, 0, 0, 1]); // XR
        bytes.extend_from_slice(&[0x83, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]); // TMMBR
        bytes.extend_from_slice(&[0x80, 204, 0, 2, 0, 0, 0, 1, b'n', b'a', b'm', b'e']); // APP
        let packets = parse(&bytes);
        assert_eq!(
            packets,
            [
                RtcpPacket::TransportCc(FeedbackSsrcs {
                    sender_ssrc: 1,
                    media_ssrc: 2
                }),
                RtcpPacket::Other {
                    packet_type: 207,
                    count: 0
                },
                RtcpPacket::Other {
                    packet_type: 205,
                    count: 3
                },
                RtcpPacket::App,
            ]
        );
    }

    #[test]
    fn padding_on_the_last_packet() {
        let mut bytes = sender_report_and_sdes();
        // Pad the SDES with 4 bytes.
        bytes[52] |= 0x20;
        bytes[55] += 1;
        bytes.extend_from_slice(&[0, 0, 0, 4]);
        assert_eq!(parse(&bytes).len(), 2);
        // Padding count 0, or larger than the body.
        let last = bytes.len() - 1;
        bytes[last] = 0;
        assert_eq!(RtcpCompound::parse(&bytes), Err(RtcpError::BadPadding));
        bytes[last] = 13;
        assert_eq!(RtcpCompound::parse(&bytes), Err(RtcpError::BadPadding));
        // Padding on the first packet.
        let mut bytes = sender_report_and_sdes();
        bytes[0] |= 0x20;
        assert_eq!(RtcpCompound::parse(&bytes), Err(RtcpError::PaddingNotLast));
    }

    #[test]
    fn rejects_broken_framing() {
        assert_eq!(RtcpCompound::parse(&[]), Err(RtcpError::Empty));
        assert_eq!(
            RtcpCompound::parse(&[0x80, 201, 0]),
            Err(RtcpError::TruncatedHeader)
        );
        assert_eq!(
            RtcpCompound::parse(&[0x40, 201, 0, 0]),
            Err(RtcpError::BadVersion)
        );
        assert_eq!(
            RtcpCompound::parse(&[0x80, 201, 0, 1, 0, 0, 0]),
            Err(RtcpError::LengthOverrun)
        );
        let mut bytes = sender_report_and_sdes();
        bytes.extend_from_slice(&[0x80, 201]);
        assert_eq!(RtcpCompound::parse(&bytes), Err(RtcpError::TruncatedHeader));
        let mut bytes = sender_report_and_sdes();
        bytes.truncate(bytes.len() - 1);
        assert_eq!(RtcpCompound::parse(&bytes), Err(RtcpError::LengthOverrun));
        // A second packet with a bad version spoils the compound.
        let mut bytes = sender_report_and_sdes();
        bytes[52] = 0x01;
        assert_eq!(RtcpCompound::parse(&bytes), Err(RtcpError::BadVersion));
    }

    #[test]
    fn rejects_bodies_too_short_for_their_type() {
        let cases: [(&[u8], RtcpKind); 9] = [
            (
                &[
                    0x80, 200, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                ],
                RtcpKind::SenderReport,
            ),
            (&[0x81, 201, 0, 1, 0, 0, 0, 1], RtcpKind::ReceiverReport),
            (&[0x81, 205, 0, 1, 0, 0, 0, 1], RtcpKind::Feedback),
            (&[0x81, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2], RtcpKind::Nack),
            (
                &[0xA1, 205, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 1, 0, 2],
                RtcpKind::Nack,
            ),
            (
                &[0x81, 206, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0],
                RtcpKind::Pli,
            ),
            (&[0x84, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0], RtcpKind::Fir),
            (
                &[0x84, 206, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9],
                RtcpKind::Fir,
            ),
            (
                &[
                    0x8F, 206, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, b'R', b'E', b'M', b'B',
                ],
                RtcpKind::Remb,
            ),
        ];
        for (bytes, kind) in cases {
            assert_eq!(
                RtcpCompound::parse(bytes),
                Err(RtcpError::Malformed(kind)),
                "{kind:?} {bytes:?}"
            );
        }
    }
}
