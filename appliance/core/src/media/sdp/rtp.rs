//! The RTP attributes of a media section: codecs (`rtpmap`, `fmtp`, `rtcp-fb`), header
//! extensions (`extmap`, RFC 8285), sources (`ssrc`, `ssrc-group`, RFC 5576) and media stream
//! identification (`msid`, RFC 8830). Simulcast is in [`super::simulcast`].

use std::fmt;

use super::line::{
    Attribute, Fields, Invalid, is_token, need, parse_number, parse_payload_type, write_joined,
};

/// A direction attribute: `sendrecv`, `sendonly`, `recvonly` or `inactive` (RFC 8866 §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `sendrecv`, the default when a section has no direction attribute.
    SendRecv,
    /// `sendonly`.
    SendOnly,
    /// `recvonly`.
    RecvOnly,
    /// `inactive`.
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    /// The direction seen from the other side: what one sends, the other receives.
    pub fn reversed(self) -> Self {
        match self {
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            other => other,
        }
    }

    pub(super) fn from_name(name: &str) -> Option<Self> {
        [
            Self::SendRecv,
            Self::SendOnly,
            Self::RecvOnly,
            Self::Inactive,
        ]
        .into_iter()
        .find(|direction| direction.as_str() == name)
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `a=rtpmap:<pt> <name>/<clock rate>[/<channels>]` (RFC 8866 §6.6).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RtpMap {
    /// The payload type, 0..=127.
    pub payload_type: u8,
    /// The encoding name as written (`opus`, `VP8`, `rtx`, …); compare without regard to case.
    pub encoding_name: String,
    /// The RTP clock rate in Hz.
    pub clock_rate: u32,
    /// The encoding parameters; for audio the number of channels.
    pub channels: Option<u16>,
}

impl RtpMap {
    pub(super) fn parse(value: &str) -> Result<Self, Invalid> {
        let mut fields = Fields::new(value);
        let payload_type = parse_payload_type(need(fields.token())?)?;
        let mut encoding = need(fields.token())?.split('/');
        need(fields.end())?;
        let encoding_name = need(encoding.next().filter(|name| is_token(name)))?;
        let clock_rate = need(encoding.next().and_then(parse_number))?;
        let channels = match encoding.next() {
            Some(channels) => Some(need(parse_number(channels))?),
            None => None,
        };
        need(encoding.next().is_none().then_some(()))?;
        Ok(Self {
            payload_type,
            encoding_name: encoding_name.to_owned(),
            clock_rate,
            channels,
        })
    }
}

impl fmt::Display for RtpMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{}",
            self.payload_type, self.encoding_name, self.clock_rate
        )?;
        if let Some(channels) = self.channels {
            write!(f, "/{channels}")?;
        }
        Ok(())
    }
}

/// One `name=value` (or bare `name`) of a `;`-separated list, as in `fmtp` and `rid`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Parameter {
    /// The name, e.g. `profile-level-id` or `max-width`; for lists such as red's `111/111`
    /// or telephone-event's `0-15` the whole item.
    pub name: String,
    /// The value after the first `=`.
    pub value: Option<String>,
}

impl Parameter {
    /// A `name=value` parameter.
    pub fn new(name: &str, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: Some(value.to_owned()),
        }
    }

    /// Reads a `;`-separated list; items are trimmed, empty items skipped.
    pub(super) fn parse_list(text: Option<&str>) -> Result<Vec<Self>, Invalid> {
        let mut parameters = Vec::new();
        for item in text.unwrap_or("").split(';').map(str::trim) {
            if item.is_empty() {
                continue;
            }
            let (name, value) = match item.split_once('=') {
                Some((name, value)) => (name, Some(value.to_owned())),
                None => (item, None),
            };
            if name.is_empty() {
                return Err(Invalid::Value);
            }
            parameters.push(Self {
                name: name.to_owned(),
                value,
            });
        }
        Ok(parameters)
    }

    /// The value of the first parameter called `name`.
    pub(super) fn find<'a>(parameters: &'a [Self], name: &str) -> Option<&'a str> {
        parameters
            .iter()
            .find(|parameter| parameter.name == name)
            .and_then(|parameter| parameter.value.as_deref())
    }
}

impl fmt::Display for Parameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(value) = &self.value {
            write!(f, "={value}")?;
        }
        Ok(())
    }
}

/// `a=fmtp:<pt> <parameters>`: format parameters of one payload type (RFC 8866 §6.15).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fmtp {
    /// The payload type, 0..=127.
    pub payload_type: u8,
    /// The parameters, in order.
    pub parameters: Vec<Parameter>,
}

impl Fmtp {
    pub(super) fn parse(value: &str) -> Result<Self, Invalid> {
        let mut fields = Fields::new(value);
        let payload_type = parse_payload_type(need(fields.token())?)?;
        Ok(Self {
            payload_type,
            parameters: Parameter::parse_list(fields.rest())?,
        })
    }
}

impl fmt::Display for Fmtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.payload_type)?;
        if !self.parameters.is_empty() {
            f.write_str(" ")?;
            write_joined(f, &self.parameters, ";")?;
        }
        Ok(())
    }
}

/// `a=rtcp-fb:<pt|*> <type> [<parameter>]`: an RTCP feedback message a payload type
/// supports (RFC 4585 §4.2), e.g. `nack`, `nack pli`, `ccm fir`, `transport-cc`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RtcpFeedback {
    /// The payload type; `None` for `*`, every payload type of the section.
    pub payload_type: Option<u8>,
    /// The feedback type: `ack`, `nack`, `ccm`, `trr-int`, `goog-remb`, `transport-cc`, ….
    pub kind: String,
    /// The rest of the line, e.g. `pli` or `fir`.
    pub parameter: Option<String>,
}

impl RtcpFeedback {
    /// Feedback of one kind, with an optional parameter, for one payload type.
    pub fn new(payload_type: u8, kind: &str, parameter: Option<&str>) -> Self {
        Self {
            payload_type: Some(payload_type),
            kind: kind.to_owned(),
            parameter: parameter.map(str::to_owned),
        }
    }

    pub(super) fn parse(value: &str) -> Result<Self, Invalid> {
        let mut fields = Fields::new(value);
        let payload_type = match need(fields.token())? {
            "*" => None,
            pt => Some(parse_payload_type(pt)?),
        };
        let kind = need(fields.token().filter(|kind| is_token(kind)))?;
        Ok(Self {
            payload_type,
            kind: kind.to_owned(),
            parameter: fields.rest().map(str::to_owned),
        })
    }
}

impl fmt::Display for RtcpFeedback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.payload_type {
            Some(pt) => write!(f, "{pt} {}", self.kind)?,
            None => write!(f, "* {}", self.kind)?,
        }
        if let Some(parameter) = &self.parameter {
            write!(f, " {parameter}")?;
        }
        Ok(())
    }
}

/// `a=extmap:<id>[/<direction>] <uri> [<attributes>]`: an RTP header extension (RFC 8285 §8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtMap {
    /// The ID in RTP packets, 1..=255 (1..=14 fit the one-byte form).
    pub id: u8,
    /// The direction, if one is given.
    pub direction: Option<Direction>,
    /// The extension's URI.
    pub uri: String,
    /// Extension attributes after the URI, as written.
    pub attributes: Option<String>,
}

impl ExtMap {
    /// An extension with an ID and a URI.
    pub fn new(id: u8, uri: &str) -> Self {
        Self {
            id,
            direction: None,
            uri: uri.to_owned(),
            attributes: None,
        }
    }

    pub(super) fn parse(value: &str) -> Result<Self, Invalid> {
        let mut fields = Fields::new(value);
        let first = need(fields.token())?;
        let (id, direction) = match first.split_once('/') {
            Some((id, direction)) => (id, Some(need(Direction::from_name(direction))?)),
            None => (first, None),
        };
        let id = parse_number::<u8>(id)
            .filter(|id| *id != 0)
            .ok_or(Invalid::ExtmapId)?;
        let uri = need(fields.token())?;
        Ok(Self {
            id,
            direction,
            uri: uri.to_owned(),
            attributes: fields.rest().map(str::to_owned),
        })
    }
}

impl fmt::Display for ExtMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.id)?;
        if let Some(direction) = self.direction {
            write!(f, "/{direction}")?;
        }
        write!(f, " {}", self.uri)?;
        if let Some(attributes) = &self.attributes {
            write!(f, " {attributes}")?;
        }
        Ok(())
    }
}

/// The `a=ssrc` lines of one synchronisation source (RFC 5576 §4.1), in the order written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SsrcDescription {
    /// The SSRC.
    pub ssrc: u32,
    /// Its source attributes: `cname:…`, `msid:…`, …, each with the value as written.
    pub attributes: Vec<Attribute>,
}

impl SsrcDescription {
    /// `<ssrc> <attribute>[:<value>]`: one line.
    pub(super) fn parse_line(value: &str) -> Result<(u32, Attribute), Invalid> {
        let mut fields = Fields::new(value);
        let ssrc = need(fields.token().and_then(parse_number))?;
        let attribute = need(fields.rest().and_then(Attribute::parse))?;
        Ok((ssrc, attribute))
    }

    /// The value of the first source attribute called `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|attribute| attribute.name == name)
            .and_then(|attribute| attribute.value.as_deref())
    }
}

/// `a=ssrc-group:<semantics> <ssrc>…` (RFC 5576 §4.2), e.g. `FID` (media and its RTX) or
/// `SIM` (simulcast layers).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SsrcGroup {
    /// `FID`, `SIM`, `FEC-FR`, ….
    pub semantics: String,
    /// The SSRCs, at least one.
    pub ssrcs: Vec<u32>,
}

impl SsrcGroup {
    pub(super) fn parse(value: &str) -> Result<Self, Invalid> {
        let mut fields = Fields::new(value);
        let semantics = need(fields.token().filter(|s| is_token(s)))?;
        let mut ssrcs = Vec::new();
        while let Some(ssrc) = fields.token() {
            ssrcs.push(need(parse_number(ssrc))?);
        }
        need((!ssrcs.is_empty()).then_some(()))?;
        Ok(Self {
            semantics: semantics.to_owned(),
            ssrcs,
        })
    }
}

impl fmt::Display for SsrcGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.semantics)?;
        for ssrc in &self.ssrcs {
            write!(f, " {ssrc}")?;
        }
        Ok(())
    }
}

/// `a=msid:<stream id> [<track id>]` (RFC 8830 §2); `-` as the stream ID means no stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Msid {
    /// The MediaStream ID.
    pub stream_id: String,
    /// The track ID ("appdata"), which JSEP no longer relies on.
    pub track_id: Option<String>,
}

impl Msid {
    pub(super) fn parse(value: &str) -> Result<Self, Invalid> {
        let mut fields = Fields::new(value);
        let stream_id = need(fields.token())?;
        let track_id = fields.token();
        need(fields.end())?;
        Ok(Self {
            stream_id: stream_id.to_owned(),
            track_id: track_id.map(str::to_owned),
        })
    }
}

impl fmt::Display for Msid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.stream_id)?;
        if let Some(track) = &self.track_id {
            write!(f, " {track}")?;
        }
        Ok(())
    }
}

/// Session-level `a=msid-semantic:<semantic> [<id>…]`, as Chromium and aiortc still write it
/// (`WMS`, sometimes with `*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MsidSemantic {
    /// The semantic, `WMS`.
    pub semantic: String,
    /// The identifiers after it.
    pub ids: Vec<String>,
}

impl MsidSemantic {
    pub(super) fn parse(value: &str) -> Result<Self, Invalid> {
        let mut fields = Fields::new(value);
        let semantic = need(fields.token())?;
        let mut ids = Vec::new();
        while let Some(id) = fields.token() {
            ids.push(id.to_owned());
        }
        Ok(Self {
            semantic: semantic.to_owned(),
            ids,
        })
    }
}

impl fmt::Display for MsidSemantic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.semantic)?;
        for id in &self.ids {
            write!(f, " {id}")?;
        }
        Ok(())
    }
}

/// A codec of a media section: its `rtpmap` (or the static payload type), `fmtp` and
/// `rtcp-fb` lines joined.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Codec {
    /// The payload type.
    pub payload_type: u8,
    /// The encoding name as written (`opus`, `VP8`, `H264`, `AV1`, `rtx`, `red`, …).
    pub name: String,
    /// The RTP clock rate in Hz.
    pub clock_rate: u32,
    /// For audio, the number of channels.
    pub channels: Option<u16>,
    /// The `fmtp` parameters.
    pub parameters: Vec<Parameter>,
    /// The `rtcp-fb` lines for this payload type and for `*`.
    pub feedback: Vec<RtcpFeedback>,
}

impl Codec {
    /// The static payload types of RFC 3551 that browsers may list without `rtpmap`.
    pub(super) fn static_payload_type(payload_type: u8) -> Option<Self> {
        let (name, clock_rate) = match payload_type {
            0 => ("PCMU", 8000),
            8 => ("PCMA", 8000),
            9 => ("G722", 8000),
            13 => ("CN", 8000),
            _ => return None,
        };
        Some(Self {
            payload_type,
            name: name.to_owned(),
            clock_rate,
            channels: None,
            parameters: Vec::new(),
            feedback: Vec::new(),
        })
    }

    /// Whether the encoding name is `name`, without regard to case.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The value of the first `fmtp` parameter called `name`.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        Parameter::find(&self.parameters, name)
    }

    /// For an `rtx` codec (RFC 4588), the payload type it repairs: its `apt` parameter.
    pub fn associated_payload_type(&self) -> Option<u8> {
        if !self.is("rtx") {
            return None;
        }
        self.parameter("apt")
            .and_then(parse_number::<u8>)
            .filter(|pt| *pt <= 127)
    }

    /// Whether the codec has feedback of `kind` with `parameter` (e.g. `nack` with `pli`).
    pub fn has_feedback(&self, kind: &str, parameter: Option<&str>) -> bool {
        self.feedback
            .iter()
            .any(|fb| fb.kind == kind && fb.parameter.as_deref() == parameter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_trim_and_skip_empty_items() {
        let list = Parameter::parse_list(Some(" a=1; b ;;c=x=y; ")).expect("valid list");
        assert_eq!(
            list,
            [
                Parameter::new("a", "1"),
                Parameter {
                    name: "b".into(),
                    value: None
                },
                Parameter::new("c", "x=y"),
            ]
        );
        assert_eq!(Parameter::parse_list(Some("=1")), Err(Invalid::Value));
    }

    #[test]
    fn extmap_checks_id_and_direction() {
        let extmap = ExtMap::parse("7/recvonly urn:x attr").expect("valid extmap");
        assert_eq!(extmap.id, 7);
        assert_eq!(extmap.direction, Some(Direction::RecvOnly));
        assert_eq!(extmap.to_string(), "7/recvonly urn:x attr");
        assert_eq!(ExtMap::parse("0 urn:x"), Err(Invalid::ExtmapId));
        assert_eq!(ExtMap::parse("256 urn:x"), Err(Invalid::ExtmapId));
        assert_eq!(ExtMap::parse("1/up urn:x"), Err(Invalid::Value));
        assert_eq!(ExtMap::parse("1"), Err(Invalid::Value));
    }

    #[test]
    fn rtpmap_needs_name_and_rate() {
        assert_eq!(
            RtpMap::parse("111 opus/48000/2"),
            Ok(RtpMap {
                payload_type: 111,
                encoding_name: "opus".into(),
                clock_rate: 48000,
                channels: Some(2),
            })
        );
        for bad in [
            "96",
            "96 VP8",
            "96 VP8/x",
            "96 /90000",
            "96 a/1/2/3",
            "96 a/1 b",
        ] {
            assert_eq!(RtpMap::parse(bad), Err(Invalid::Value), "{bad:?}");
        }
        assert_eq!(RtpMap::parse("x VP8/90000"), Err(Invalid::PayloadType));
    }
}
