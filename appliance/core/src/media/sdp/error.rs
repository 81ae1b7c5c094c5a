//! The errors of the reader: one closed enum, with line numbers and attribute names only.

use std::fmt;

/// Why a text is not an acceptable session description. Closed: it carries line numbers
/// (counted from 1) and attribute names, never peer text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SdpError {
    /// The description is larger than [`MAX_SIZE`](super::MAX_SIZE).
    #[error("description exceeds {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The description has more than [`MAX_LINES`](super::MAX_LINES) lines.
    #[error("description has more than {limit} lines")]
    TooManyLines {
        /// The limit.
        limit: usize,
    },
    /// The description has more than [`MAX_MEDIA_SECTIONS`](super::MAX_MEDIA_SECTIONS) media sections.
    #[error("description has more than {limit} media sections")]
    TooManyMediaSections {
        /// The limit.
        limit: usize,
    },
    /// A section has more than [`MAX_ATTRIBUTES`](super::MAX_ATTRIBUTES) attribute lines.
    #[error("line {line}: section has more than {limit} attributes")]
    TooManyAttributes {
        /// The first attribute line over the limit.
        line: usize,
        /// The limit.
        limit: usize,
    },
    /// A line holds NUL or a CR that does not end it.
    #[error("line {line} holds a NUL or a stray carriage return")]
    InvalidText {
        /// The line.
        line: usize,
    },
    /// A line is not `<letter>=<value>`, or an attribute name is not a token.
    #[error("line {line} is not of the form <letter>=<value>")]
    MalformedLine {
        /// The line.
        line: usize,
    },
    /// A line type that RFC 8866 does not define, that is refused (`k=`), that does not belong
    /// at its level, or that may appear only once and is repeated.
    #[error("line {line} has a type that is unknown, repeated or out of place")]
    UnexpectedLine {
        /// The line.
        line: usize,
    },
    /// The description does not start with `v=0`.
    #[error("description does not start with v=0")]
    MissingVersion,
    /// The second line is not `o=`.
    #[error("o= line is missing")]
    MissingOrigin,
    /// The third line is not `s=`.
    #[error("s= line is missing")]
    MissingSessionName,
    /// The description has no `t=` line.
    #[error("t= line is missing")]
    MissingTiming,
    /// The `o=` line does not have six fields with numeric session ID and version.
    #[error("line {line}: o= line is invalid")]
    InvalidOrigin {
        /// The line.
        line: usize,
    },
    /// A `c=` line does not have three fields.
    #[error("line {line}: c= line is invalid")]
    InvalidConnection {
        /// The line.
        line: usize,
    },
    /// A `b=` line is not `<type>:<number>`.
    #[error("line {line}: b= line is invalid")]
    InvalidBandwidth {
        /// The line.
        line: usize,
    },
    /// A `t=` line is not two numbers, or an `r=` line has no `t=` before it.
    #[error("line {line}: t= or r= line is invalid")]
    InvalidTiming {
        /// The line.
        line: usize,
    },
    /// An `m=` line has an unknown media kind, an invalid protocol or no formats.
    #[error("line {line}: m= line is invalid")]
    InvalidMediaLine {
        /// The line.
        line: usize,
    },
    /// The port (or port count) of an `m=` line is not a number in 0..=65535.
    #[error("line {line}: port is not a number in 0..=65535")]
    InvalidPort {
        /// The line.
        line: usize,
    },
    /// A payload type in an `m=`, `rtpmap`, `fmtp` or `rtcp-fb` line is not in 0..=127.
    #[error("line {line}: payload type is not a number in 0..=127")]
    InvalidPayloadType {
        /// The line.
        line: usize,
    },
    /// An `extmap` ID is not in 1..=255.
    #[error("line {line}: extmap ID is not a number in 1..=255")]
    InvalidExtmapId {
        /// The line.
        line: usize,
    },
    /// A fingerprint names an unsupported hash, or its hex is invalid or of the wrong length.
    #[error("line {line}: fingerprint is invalid")]
    InvalidFingerprint {
        /// The line.
        line: usize,
    },
    /// An interpreted attribute does not have its syntax.
    #[error("line {line}: a={attribute} has an invalid value")]
    InvalidAttribute {
        /// The line.
        line: usize,
        /// The attribute.
        attribute: AttributeKind,
    },
    /// An attribute that may appear once (per section, or per key) is repeated.
    #[error("line {line}: a={attribute} is repeated")]
    DuplicateAttribute {
        /// The line.
        line: usize,
        /// The attribute.
        attribute: AttributeKind,
    },
}

/// The attributes this module interprets, to name them in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // each is the attribute `as_str` names
pub enum AttributeKind {
    Group,
    IceLite,
    IceUfrag,
    IcePwd,
    IceOptions,
    Fingerprint,
    Setup,
    MsidSemantic,
    ExtmapAllowMixed,
    Mid,
    Direction,
    Candidate,
    EndOfCandidates,
    RtcpMux,
    RtcpRsize,
    Rtpmap,
    Fmtp,
    RtcpFb,
    Extmap,
    Ssrc,
    SsrcGroup,
    Msid,
    Rid,
    Simulcast,
    SctpPort,
    MaxMessageSize,
}

impl AttributeKind {
    /// The attribute name (for a direction, `sendrecv` stands for all four).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Group => "group",
            Self::IceLite => "ice-lite",
            Self::IceUfrag => "ice-ufrag",
            Self::IcePwd => "ice-pwd",
            Self::IceOptions => "ice-options",
            Self::Fingerprint => "fingerprint",
            Self::Setup => "setup",
            Self::MsidSemantic => "msid-semantic",
            Self::ExtmapAllowMixed => "extmap-allow-mixed",
            Self::Mid => "mid",
            Self::Direction => "sendrecv",
            Self::Candidate => "candidate",
            Self::EndOfCandidates => "end-of-candidates",
            Self::RtcpMux => "rtcp-mux",
            Self::RtcpRsize => "rtcp-rsize",
            Self::Rtpmap => "rtpmap",
            Self::Fmtp => "fmtp",
            Self::RtcpFb => "rtcp-fb",
            Self::Extmap => "extmap",
            Self::Ssrc => "ssrc",
            Self::SsrcGroup => "ssrc-group",
            Self::Msid => "msid",
            Self::Rid => "rid",
            Self::Simulcast => "simulcast",
            Self::SctpPort => "sctp-port",
            Self::MaxMessageSize => "max-message-size",
        }
    }
}

impl fmt::Display for AttributeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
