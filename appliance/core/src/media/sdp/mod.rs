//! Session descriptions (SDP, RFC 8866) as the SFU negotiates them with browsers (JSEP,
//! RFC 8829; Chromium's unified plan) and with aiortc.
//!
//! [`SessionDescription::parse`] reads an offer or answer into typed fields; the attributes the
//! SFU needs are interpreted (ICE, DTLS, BUNDLE, codecs, header extensions, sources, simulcast,
//! SCTP), every other attribute is kept as an [`Attribute`] with its value as written.
//! [`SessionDescription::to_sdp_string`] writes a description with CRLF line endings in a fixed
//! order. The queries on [`MediaSection`] join what the SFU asks about: [`MediaSection::codecs`]
//! (rtpmap, fmtp and rtcp-fb), the RTX payload type of a codec, the ID of a header extension,
//! the simulcast RIDs and the sender SSRCs with their RTX partners.
//!
//! # What the reader enforces
//! * Size first: at most [`MAX_SIZE`] bytes counting every line ending as CRLF, [`MAX_LINES`]
//!   lines, [`MAX_MEDIA_SECTIONS`] media sections and [`MAX_ATTRIBUTES`] attribute lines per
//!   section (the session counts as one); each limit has its own [`SdpError`].
//! * Line syntax: `<letter>=<value>`, lines ending in CRLF or LF, no empty lines, no NUL and no
//!   CR inside a line. The description starts with `v=0`, `o=` and `s=`, has a `t=` line, and
//!   uses only the line types RFC 8866 defines at each level; `k=` (obsolete) is refused.
//! * Every number is plain ASCII digits in range: ports 0..=65535, payload types 0..=127, extmap
//!   IDs 1..=255, and the ranges of the attributes below. Each `m=` line opens one section.
//! * Interpreted attributes must have their syntax; one that may appear once per section (mid,
//!   direction, setup, ice-ufrag, …) or once per key (rtpmap and fmtp per payload type, extmap
//!   per ID, rid per RID) fails with [`SdpError::DuplicateAttribute`] when repeated. Fingerprints
//!   are hex pairs exactly as long as the hash's digest; MD5 and MD2 are refused. ICE
//!   credentials have the lengths and characters of RFC 8839.
//! * Unknown attributes, and known ones at a level where this module does not interpret them,
//!   are kept unread. `rtpmap`, `fmtp` and `rtcp-fb` are interpreted only in RTP sections.
//!
//! # Round trip
//! For every text the reader accepts, reading what the writer makes of the result gives the same
//! value: `parse(write(x)) == x`. The writer puts each line back once, never longer than it was
//! read (so a description within the limits stays within them); values kept as written come back
//! byte for byte. To make this hold, the reader brings what the writer orders into the writer's
//! order: `a=ssrc` lines are grouped by SSRC, and `rtcp-fb` and `fmtp` lines follow the order of
//! their `rtpmap`. The fuzz target `sdp_parse` checks the property.
//!
//! No input makes the reader or a query panic; the only `expect`s are on writing into a `String`
//! and on a match arm that lists only direction names.
//!
//! The ICE password is a [`Secret`], so `Debug` never shows it. For the same reason a description
//! has no `Display`: the text for the peer carries the password, so writing it is the explicit
//! call [`SessionDescription::to_sdp_string`].

mod error;
mod line;
mod read;
mod rtp;
mod simulcast;
#[cfg(test)]
mod tests;
mod transport;
mod write;

pub use error::{AttributeKind, SdpError};
pub use line::{Attribute, Bandwidth, Connection, Origin, Timing};
pub use rtp::{
    Codec, Direction, ExtMap, Fmtp, Msid, MsidSemantic, Parameter, RtcpFeedback, RtpMap,
    SsrcDescription, SsrcGroup,
};
pub use simulcast::{Rid, RidDirection, Simulcast, SimulcastRid, SimulcastStream};
pub use transport::{
    Candidate, CandidateType, Fingerprint, Group, HashFunction, InvalidCandidate, Setup,
};

use crate::secret::Secret;

/// Largest description accepted, in bytes, counting every line ending as CRLF.
pub const MAX_SIZE: usize = 64 * 1024;

/// Most lines in a description.
pub const MAX_LINES: usize = 4096;

/// Most media sections in a description.
pub const MAX_MEDIA_SECTIONS: usize = 64;

/// Most attribute lines at session level and in each media section.
pub const MAX_ATTRIBUTES: usize = 256;

/// A parsed session description: the session-level lines and attributes, then the media
/// sections in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`.
    pub origin: Origin,
    /// `s=`, as written; JSEP endpoints write `-`.
    pub session_name: String,
    /// `i=`, as written.
    pub information: Option<String>,
    /// `u=`, as written.
    pub uri: Option<String>,
    /// `e=` lines, as written.
    pub emails: Vec<String>,
    /// `p=` lines, as written.
    pub phones: Vec<String>,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines with their `r=` lines; the reader requires at least one.
    pub timing: Vec<Timing>,
    /// `z=`, as written.
    pub time_zones: Option<String>,
    /// `a=group` lines, e.g. BUNDLE.
    pub groups: Vec<Group>,
    /// `a=ice-lite`: the writer is an ICE-lite agent (RFC 8445 §2.5), as the SFU is.
    pub ice_lite: bool,
    /// Session-level `a=ice-ufrag`, inherited by sections without their own.
    pub ice_ufrag: Option<String>,
    /// Session-level `a=ice-pwd`, inherited by sections without their own.
    pub ice_pwd: Option<Secret>,
    /// Session-level `a=ice-options` tokens (`trickle`, `renomination`, …).
    pub ice_options: Vec<String>,
    /// Session-level `a=fingerprint` lines, inherited by sections without their own.
    pub fingerprints: Vec<Fingerprint>,
    /// Session-level `a=setup`, inherited by sections without their own.
    pub setup: Option<Setup>,
    /// `a=msid-semantic`.
    pub msid_semantic: Option<MsidSemantic>,
    /// `a=extmap-allow-mixed` (RFC 8285 §6): one- and two-byte extensions may be mixed.
    pub extmap_allow_mixed: bool,
    /// Other session-level attributes, as written.
    pub attributes: Vec<Attribute>,
    /// The media sections.
    pub media: Vec<MediaSection>,
}

impl SessionDescription {
    /// A description with `origin`, session name `-`, `t=0 0` and nothing else.
    pub fn new(origin: Origin) -> Self {
        Self {
            origin,
            session_name: "-".to_owned(),
            information: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            timing: vec![Timing::unbounded()],
            time_zones: None,
            groups: Vec::new(),
            ice_lite: false,
            ice_ufrag: None,
            ice_pwd: None,
            ice_options: Vec::new(),
            fingerprints: Vec::new(),
            setup: None,
            msid_semantic: None,
            extmap_allow_mixed: false,
            attributes: Vec::new(),
            media: Vec::new(),
        }
    }

    /// Reads a description; see the module documentation for what is checked.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        read::parse(text)
    }

    /// Adds one BUNDLE group of every section that is not rejected (RFC 8843), the first one
    /// tagged; nothing when every section is rejected.
    pub fn bundle_accepted_sections(&mut self) {
        let mids: Vec<String> = self
            .media
            .iter()
            .filter(|media| !media.is_rejected())
            .filter_map(|media| media.mid.clone())
            .collect();
        if !mids.is_empty() {
            self.groups.push(Group {
                semantics: "BUNDLE".to_owned(),
                mids,
            });
        }
    }

    /// Writes the description: CRLF lines, session lines in RFC 8866 order, then each section.
    /// The text contains the ICE password; it is for the peer, not for logs.
    pub fn to_sdp_string(&self) -> String {
        write::write(self)
    }

    /// The first BUNDLE group.
    pub fn bundle_group(&self) -> Option<&Group> {
        self.groups.iter().find(|group| group.semantics == "BUNDLE")
    }

    /// The section with `a=mid:<mid>`.
    pub fn media_by_mid(&self, mid: &str) -> Option<&MediaSection> {
        self.media
            .iter()
            .find(|media| media.mid.as_deref() == Some(mid))
    }

    /// The fingerprints that apply to `media`: its own, else the session's.
    pub fn fingerprints_of<'a>(&'a self, media: &'a MediaSection) -> &'a [Fingerprint] {
        if media.fingerprints.is_empty() {
            &self.fingerprints
        } else {
            &media.fingerprints
        }
    }

    /// The DTLS role that applies to `media`: its own, else the session's.
    pub fn setup_of(&self, media: &MediaSection) -> Option<Setup> {
        media.setup.or(self.setup)
    }

    /// The ICE username fragment that applies to `media`: its own, else the session's.
    pub fn ice_ufrag_of<'a>(&'a self, media: &'a MediaSection) -> Option<&'a str> {
        media.ice_ufrag.as_deref().or(self.ice_ufrag.as_deref())
    }

    /// The ICE password that applies to `media`: its own, else the session's.
    pub fn ice_pwd_of<'a>(&'a self, media: &'a MediaSection) -> Option<&'a Secret> {
        media.ice_pwd.as_ref().or(self.ice_pwd.as_ref())
    }
}

/// The kind of a media section, the first field of `m=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// `audio`.
    Audio,
    /// `video`.
    Video,
    /// `application`: for WebRTC, data channels over SCTP.
    Application,
}

impl MediaKind {
    /// The name in `m=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Application => "application",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::Audio, Self::Video, Self::Application]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// The formats of an `m=` line: payload types for an RTP protocol, else tokens such as
/// `webrtc-datachannel`. Which one is decided by the protocol (see [`is_rtp_protocol`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Formats {
    /// Payload types, 0..=127, in order of preference.
    Rtp(Vec<u8>),
    /// Other formats, as written.
    Other(Vec<String>),
}

/// Whether an `m=` protocol carries RTP: one of its `/`-separated parts is `RTP`, as in
/// `UDP/TLS/RTP/SAVPF` (but not `UDP/DTLS/SCTP`).
pub fn is_rtp_protocol(protocol: &str) -> bool {
    protocol.split('/').any(|part| part == "RTP")
}

/// One media section: the `m=` line and everything up to the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    /// The media kind.
    pub kind: MediaKind,
    /// The port; 0 rejects the section (unless it is `bundle-only`), 9 is JSEP's placeholder.
    pub port: u16,
    /// The `/<number of ports>` after the port, rarely written.
    pub port_count: Option<u16>,
    /// The protocol, e.g. `UDP/TLS/RTP/SAVPF` or `UDP/DTLS/SCTP`.
    pub protocol: String,
    /// The formats.
    pub formats: Formats,
    /// `i=`, as written.
    pub information: Option<String>,
    /// `c=`.
    pub connection: Option<Connection>,
    /// `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `a=mid`, a token.
    pub mid: Option<String>,
    /// The direction attribute, if written; see [`MediaSection::direction`].
    pub direction: Option<Direction>,
    /// `a=ice-ufrag`.
    pub ice_ufrag: Option<String>,
    /// `a=ice-pwd`.
    pub ice_pwd: Option<Secret>,
    /// `a=ice-options` tokens.
    pub ice_options: Vec<String>,
    /// `a=candidate` lines.
    pub candidates: Vec<Candidate>,
    /// `a=end-of-candidates`.
    pub end_of_candidates: bool,
    /// `a=fingerprint` lines.
    pub fingerprints: Vec<Fingerprint>,
    /// `a=setup`.
    pub setup: Option<Setup>,
    /// `a=rtcp-mux`: RTP and RTCP share the port.
    pub rtcp_mux: bool,
    /// `a=rtcp-rsize`: reduced-size RTCP (RFC 5506).
    pub rtcp_rsize: bool,
    /// `a=rtpmap` lines (RTP sections), one per payload type.
    pub rtpmaps: Vec<RtpMap>,
    /// `a=fmtp` lines (RTP sections), one per payload type, in the order of the rtpmaps.
    pub fmtps: Vec<Fmtp>,
    /// `a=rtcp-fb` lines (RTP sections), in the order of the rtpmaps.
    pub rtcp_feedback: Vec<RtcpFeedback>,
    /// `a=extmap` lines, one per ID.
    pub extmaps: Vec<ExtMap>,
    /// `a=ssrc` lines, grouped by SSRC in order of first appearance.
    pub ssrcs: Vec<SsrcDescription>,
    /// `a=ssrc-group` lines.
    pub ssrc_groups: Vec<SsrcGroup>,
    /// `a=msid` lines.
    pub msids: Vec<Msid>,
    /// `a=rid` lines, one per RID.
    pub rids: Vec<Rid>,
    /// `a=simulcast`.
    pub simulcast: Option<Simulcast>,
    /// `a=sctp-port` (RFC 8841): the SCTP port of a data channel section.
    pub sctp_port: Option<u16>,
    /// `a=max-message-size` (RFC 8841): the largest data channel message the writer accepts.
    pub max_message_size: Option<u64>,
    /// Other attributes, as written.
    pub attributes: Vec<Attribute>,
}

/// A sending source of a section: an SSRC that is not the repair stream of another, and the
/// SSRC of its RTX stream from an `FID` group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SenderSsrc {
    /// The media SSRC.
    pub ssrc: u32,
    /// The RTX SSRC, if an `FID` group pairs one with it.
    pub rtx: Option<u32>,
}

impl MediaSection {
    /// A section with the `m=` line's fields and nothing else.
    pub fn new(kind: MediaKind, port: u16, protocol: &str, formats: Formats) -> Self {
        Self {
            kind,
            port,
            port_count: None,
            protocol: protocol.to_owned(),
            formats,
            information: None,
            connection: None,
            bandwidths: Vec::new(),
            mid: None,
            direction: None,
            ice_ufrag: None,
            ice_pwd: None,
            ice_options: Vec::new(),
            candidates: Vec::new(),
            end_of_candidates: false,
            fingerprints: Vec::new(),
            setup: None,
            rtcp_mux: false,
            rtcp_rsize: false,
            rtpmaps: Vec::new(),
            fmtps: Vec::new(),
            rtcp_feedback: Vec::new(),
            extmaps: Vec::new(),
            ssrcs: Vec::new(),
            ssrc_groups: Vec::new(),
            msids: Vec::new(),
            rids: Vec::new(),
            simulcast: None,
            sctp_port: None,
            max_message_size: None,
            attributes: Vec::new(),
        }
    }

    /// Whether the formats are RTP payload types.
    pub fn is_rtp(&self) -> bool {
        matches!(self.formats, Formats::Rtp(_))
    }

    /// The payload types of the `m=` line, in order of preference; empty for non-RTP sections.
    pub fn payload_types(&self) -> &[u8] {
        match &self.formats {
            Formats::Rtp(payload_types) => payload_types,
            Formats::Other(_) => &[],
        }
    }

    /// Port 0 without `a=bundle-only`: the section is rejected or stopped (JSEP §5.2.2).
    pub fn is_rejected(&self) -> bool {
        self.port == 0 && self.attribute("bundle-only").is_none()
    }

    /// The direction; `sendrecv` when none is written (RFC 8866 §6.7).
    pub fn direction(&self) -> Direction {
        self.direction.unwrap_or(Direction::SendRecv)
    }

    /// The first attribute kept as written with this name.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes
            .iter()
            .find(|attribute| attribute.name == name)
    }

    /// The codecs in the `m=` line's order of preference. A payload type without `rtpmap` is
    /// included only if it is one of RFC 3551's static types (PCMU, PCMA, G722, CN).
    pub fn codecs(&self) -> Vec<Codec> {
        let mut codecs: Vec<Codec> = Vec::new();
        for &payload_type in self.payload_types() {
            if codecs
                .iter()
                .any(|codec| codec.payload_type == payload_type)
            {
                continue;
            }
            if let Some(codec) = self.codec(payload_type) {
                codecs.push(codec);
            }
        }
        codecs
    }

    /// The codec of one payload type, whether or not the `m=` line lists it.
    pub fn codec(&self, payload_type: u8) -> Option<Codec> {
        let mut codec = match self
            .rtpmaps
            .iter()
            .find(|rtpmap| rtpmap.payload_type == payload_type)
        {
            Some(rtpmap) => Codec {
                payload_type,
                name: rtpmap.encoding_name.clone(),
                clock_rate: rtpmap.clock_rate,
                channels: rtpmap.channels,
                parameters: Vec::new(),
                feedback: Vec::new(),
            },
            None => Codec::static_payload_type(payload_type)?,
        };
        if let Some(fmtp) = self
            .fmtps
            .iter()
            .find(|fmtp| fmtp.payload_type == payload_type)
        {
            codec.parameters = fmtp.parameters.clone();
        }
        codec.feedback = self
            .rtcp_feedback
            .iter()
            .filter(|fb| fb.payload_type.is_none_or(|pt| pt == payload_type))
            .cloned()
            .collect();
        Some(codec)
    }

    /// The payload type of the RTX codec whose `apt` is `payload_type`.
    pub fn rtx_payload_type(&self, payload_type: u8) -> Option<u8> {
        self.codecs()
            .into_iter()
            .find(|codec| codec.associated_payload_type() == Some(payload_type))
            .map(|codec| codec.payload_type)
    }

    /// The ID negotiated for the header extension with this URI.
    pub fn extmap_id(&self, uri: &str) -> Option<u8> {
        self.extmaps
            .iter()
            .find(|extmap| extmap.uri == uri)
            .map(|extmap| extmap.id)
    }

    /// The RIDs of the `a=simulcast` list in one direction, alternatives included, in order;
    /// empty without simulcast.
    pub fn simulcast_rids(&self, direction: RidDirection) -> Vec<&str> {
        self.simulcast
            .iter()
            .flat_map(|simulcast| simulcast.rids(direction))
            .map(|rid| rid.id.as_str())
            .collect()
    }

    /// The pairs `(media SSRC, RTX SSRC)` of the `FID` groups with two SSRCs.
    pub fn fid_pairs(&self) -> Vec<(u32, u32)> {
        self.ssrc_groups
            .iter()
            .filter(|group| group.semantics == "FID")
            .filter_map(|group| match group.ssrcs[..] {
                [media, rtx] => Some((media, rtx)),
                _ => None,
            })
            .collect()
    }

    /// The sending sources: every SSRC of the `a=ssrc` lines and the groups, in order of first
    /// appearance, except those that are the RTX side of an `FID` pair; each with its RTX SSRC.
    pub fn sender_ssrcs(&self) -> Vec<SenderSsrc> {
        let pairs = self.fid_pairs();
        let mut senders: Vec<SenderSsrc> = Vec::new();
        let listed = self.ssrcs.iter().map(|description| description.ssrc);
        let grouped = self.ssrc_groups.iter().flat_map(|group| group.ssrcs.iter());
        for ssrc in listed.chain(grouped.copied()) {
            if pairs.iter().any(|&(_, rtx)| rtx == ssrc)
                || senders.iter().any(|sender| sender.ssrc == ssrc)
            {
                continue;
            }
            let rtx = pairs
                .iter()
                .find(|&&(media, _)| media == ssrc)
                .map(|&(_, rtx)| rtx);
            senders.push(SenderSsrc { ssrc, rtx });
        }
        senders
    }

    /// The value of a source attribute, e.g. `cname`, of one SSRC.
    pub fn ssrc_attribute(&self, ssrc: u32, name: &str) -> Option<&str> {
        self.ssrcs
            .iter()
            .find(|description| description.ssrc == ssrc)
            .and_then(|description| description.attribute(name))
    }

    /// Appends a codec to an RTP section: its payload type to the `m=` line, its `rtpmap`, its
    /// `fmtp` if it has parameters, and its feedback as `rtcp-fb` lines for its payload type.
    /// Does nothing to a non-RTP section. The caller keeps payload types unique.
    pub fn add_codec(&mut self, codec: &Codec) {
        let Formats::Rtp(payload_types) = &mut self.formats else {
            return;
        };
        let payload_type = codec.payload_type;
        payload_types.push(payload_type);
        self.rtpmaps.push(RtpMap {
            payload_type,
            encoding_name: codec.name.clone(),
            clock_rate: codec.clock_rate,
            channels: codec.channels,
        });
        for feedback in &codec.feedback {
            self.rtcp_feedback.push(RtcpFeedback {
                payload_type: Some(payload_type),
                ..feedback.clone()
            });
        }
        if !codec.parameters.is_empty() {
            self.fmtps.push(Fmtp {
                payload_type,
                parameters: codec.parameters.clone(),
            });
        }
    }
}
