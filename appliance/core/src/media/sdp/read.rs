//! The reader: lines first (size, count, syntax), then the session level, then each media
//! section.

use super::line::{Fields, Invalid, is_token, parse_number, parse_payload_type};
use super::transport::{is_ice_pwd, is_ice_ufrag};
use super::{
    Attribute, AttributeKind, Bandwidth, Candidate, Connection, Direction, ExtMap, Fingerprint,
    Fmtp, Formats, Group, MAX_ATTRIBUTES, MAX_LINES, MAX_MEDIA_SECTIONS, MAX_SIZE, MediaKind,
    MediaSection, Msid, MsidSemantic, Origin, Rid, RtcpFeedback, RtpMap, SdpError,
    SessionDescription, Setup, Simulcast, SsrcDescription, SsrcGroup, Timing, is_rtp_protocol,
};
use crate::secret::Secret;

/// One line: its number (from 1), its type letter and the value after `=`.
#[derive(Clone, Copy)]
struct Line<'a> {
    number: usize,
    kind: u8,
    value: &'a str,
}

pub(super) fn parse(text: &str) -> Result<SessionDescription, SdpError> {
    let lines = split_lines(text)?;
    let mut lines = lines.into_iter();
    if !lines
        .next()
        .is_some_and(|line| line.kind == b'v' && line.value == "0")
    {
        return Err(SdpError::MissingVersion);
    }
    let origin = lines
        .next()
        .filter(|line| line.kind == b'o')
        .ok_or(SdpError::MissingOrigin)?;
    let origin = Origin::parse(origin.value).ok_or(SdpError::InvalidOrigin {
        line: origin.number,
    })?;
    let name = lines
        .next()
        .filter(|line| line.kind == b's')
        .ok_or(SdpError::MissingSessionName)?;
    let mut session = SessionDescription::new(origin);
    session.session_name = name.value.to_owned();
    session.timing.clear();

    let mut attributes = 0;
    for line in lines {
        if line.kind == b'm' {
            if session.media.len() == MAX_MEDIA_SECTIONS {
                return Err(SdpError::TooManyMediaSections {
                    limit: MAX_MEDIA_SECTIONS,
                });
            }
            session.media.push(media_line(line)?);
            attributes = 0;
            continue;
        }
        if line.kind == b'a' {
            attributes += 1;
            if attributes > MAX_ATTRIBUTES {
                return Err(SdpError::TooManyAttributes {
                    line: line.number,
                    limit: MAX_ATTRIBUTES,
                });
            }
        }
        match session.media.last_mut() {
            Some(media) if line.kind == b'a' => media_attribute(media, line)?,
            Some(media) => media_line_other(media, line)?,
            None if line.kind == b'a' => session_attribute(&mut session, line)?,
            None => session_line(&mut session, line)?,
        }
    }
    if session.timing.is_empty() {
        return Err(SdpError::MissingTiming);
    }
    for media in &mut session.media {
        into_writer_order(media);
    }
    Ok(session)
}

/// Splits the text into lines and checks the limits and the `<letter>=` syntax of each.
fn split_lines(text: &str) -> Result<Vec<Line<'_>>, SdpError> {
    if text.len() > MAX_SIZE {
        return Err(SdpError::TooLarge { limit: MAX_SIZE });
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() {
        return Err(SdpError::MissingVersion);
    }
    let mut lines = Vec::new();
    // The size as the writer would write it: every line ending counted as CRLF.
    let mut size = 0;
    for (index, line) in body.split('\n').enumerate() {
        let number = index + 1;
        if number > MAX_LINES {
            return Err(SdpError::TooManyLines { limit: MAX_LINES });
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        size += line.len() + 2;
        if size > MAX_SIZE {
            return Err(SdpError::TooLarge { limit: MAX_SIZE });
        }
        if line.bytes().any(|b| b == b'\r' || b == 0) {
            return Err(SdpError::InvalidText { line: number });
        }
        let kind = match line.as_bytes() {
            [kind, b'=', ..] if kind.is_ascii_lowercase() => *kind,
            _ => return Err(SdpError::MalformedLine { line: number }),
        };
        lines.push(Line {
            number,
            kind,
            value: &line[2..],
        });
    }
    Ok(lines)
}

/// Sets a line type that may appear once per level.
fn once_line<T>(slot: &mut Option<T>, value: T, line: Line<'_>) -> Result<(), SdpError> {
    if slot.is_some() {
        return Err(SdpError::UnexpectedLine { line: line.number });
    }
    *slot = Some(value);
    Ok(())
}

fn connection(line: Line<'_>) -> Result<Connection, SdpError> {
    Connection::parse(line.value).ok_or(SdpError::InvalidConnection { line: line.number })
}

fn bandwidth(line: Line<'_>) -> Result<Bandwidth, SdpError> {
    Bandwidth::parse(line.value).ok_or(SdpError::InvalidBandwidth { line: line.number })
}

/// A session-level line other than `a=` and `m=`.
fn session_line(session: &mut SessionDescription, line: Line<'_>) -> Result<(), SdpError> {
    let text = line.value.to_owned();
    match line.kind {
        b'i' => once_line(&mut session.information, text, line),
        b'u' => once_line(&mut session.uri, text, line),
        b'e' => {
            session.emails.push(text);
            Ok(())
        }
        b'p' => {
            session.phones.push(text);
            Ok(())
        }
        b'c' => once_line(&mut session.connection, connection(line)?, line),
        b'b' => {
            session.bandwidths.push(bandwidth(line)?);
            Ok(())
        }
        b't' => {
            let timing =
                Timing::parse(line.value).ok_or(SdpError::InvalidTiming { line: line.number })?;
            session.timing.push(timing);
            Ok(())
        }
        b'r' => {
            let timing = session
                .timing
                .last_mut()
                .ok_or(SdpError::InvalidTiming { line: line.number })?;
            timing.repeats.push(text);
            Ok(())
        }
        b'z' => once_line(&mut session.time_zones, text, line),
        _ => Err(SdpError::UnexpectedLine { line: line.number }),
    }
}

/// A media-level line other than `a=` and `m=`.
fn media_line_other(media: &mut MediaSection, line: Line<'_>) -> Result<(), SdpError> {
    match line.kind {
        b'i' => once_line(&mut media.information, line.value.to_owned(), line),
        b'c' => once_line(&mut media.connection, connection(line)?, line),
        b'b' => {
            media.bandwidths.push(bandwidth(line)?);
            Ok(())
        }
        _ => Err(SdpError::UnexpectedLine { line: line.number }),
    }
}

/// `m=<kind> <port>[/<count>] <protocol> <format>…`.
fn media_line(line: Line<'_>) -> Result<MediaSection, SdpError> {
    let number = line.number;
    let invalid = SdpError::InvalidMediaLine { line: number };
    let mut fields = Fields::new(line.value);
    let kind = fields
        .token()
        .and_then(MediaKind::from_name)
        .ok_or(invalid)?;
    let port = fields.token().ok_or(invalid)?;
    let (port, port_count) = match port.split_once('/') {
        Some((port, count)) => (port, Some(count)),
        None => (port, None),
    };
    let bad_port = SdpError::InvalidPort { line: number };
    let port = parse_number::<u16>(port).ok_or(bad_port)?;
    let port_count = match port_count {
        Some(count) => Some(parse_number::<u16>(count).ok_or(bad_port)?),
        None => None,
    };
    let protocol = fields
        .token()
        .filter(|protocol| protocol.split('/').all(is_token))
        .ok_or(invalid)?;
    let mut formats = Vec::new();
    while let Some(format) = fields.token() {
        formats.push(format);
    }
    if formats.is_empty() {
        return Err(invalid);
    }
    let formats = if is_rtp_protocol(protocol) {
        let payload_types = formats
            .into_iter()
            .map(parse_payload_type)
            .collect::<Result<_, _>>()
            .map_err(|_| SdpError::InvalidPayloadType { line: number })?;
        Formats::Rtp(payload_types)
    } else {
        Formats::Other(formats.into_iter().map(str::to_owned).collect())
    };
    let mut media = MediaSection::new(kind, port, protocol, formats);
    media.port_count = port_count;
    Ok(media)
}

/// An attribute line being read: where it is, what it is called and its value.
struct Reading<'a> {
    line: usize,
    kind: AttributeKind,
    value: Option<&'a str>,
}

impl<'a> Reading<'a> {
    fn invalid(&self) -> SdpError {
        SdpError::InvalidAttribute {
            line: self.line,
            attribute: self.kind,
        }
    }

    fn duplicate(&self) -> SdpError {
        SdpError::DuplicateAttribute {
            line: self.line,
            attribute: self.kind,
        }
    }

    /// The value, which this attribute must have.
    fn value(&self) -> Result<&'a str, SdpError> {
        self.value.ok_or(self.invalid())
    }

    /// The value read by `parse`, with the reason of a refusal turned into an error.
    fn parse<T>(&self, parse: impl FnOnce(&str) -> Result<T, Invalid>) -> Result<T, SdpError> {
        parse(self.value()?).map_err(|invalid| match invalid {
            Invalid::Value => self.invalid(),
            Invalid::PayloadType => SdpError::InvalidPayloadType { line: self.line },
            Invalid::ExtmapId => SdpError::InvalidExtmapId { line: self.line },
            Invalid::Fingerprint => SdpError::InvalidFingerprint { line: self.line },
        })
    }

    /// The value read by `parse`, which refuses with `None`.
    fn parse_with<T>(&self, parse: impl FnOnce(&str) -> Option<T>) -> Result<T, SdpError> {
        parse(self.value()?).ok_or(self.invalid())
    }

    /// A property attribute (no value) that may appear once.
    fn flag(&self, slot: &mut bool) -> Result<(), SdpError> {
        if self.value.is_some() {
            return Err(self.invalid());
        }
        if *slot {
            return Err(self.duplicate());
        }
        *slot = true;
        Ok(())
    }

    /// An attribute that may appear once.
    fn once<T>(&self, slot: &mut Option<T>, value: T) -> Result<(), SdpError> {
        if slot.is_some() {
            return Err(self.duplicate());
        }
        *slot = Some(value);
        Ok(())
    }

    fn ice_ufrag(&self, slot: &mut Option<String>) -> Result<(), SdpError> {
        let ufrag = self.parse_with(|v| is_ice_ufrag(v).then(|| v.to_owned()))?;
        self.once(slot, ufrag)
    }

    fn ice_pwd(&self, slot: &mut Option<Secret>) -> Result<(), SdpError> {
        let pwd = self.parse_with(|v| is_ice_pwd(v).then(|| Secret::new(v.to_owned())))?;
        self.once(slot, pwd)
    }

    /// One or more tokens, once.
    fn ice_options(&self, slot: &mut Vec<String>) -> Result<(), SdpError> {
        let mut fields = Fields::new(self.value()?);
        let mut options = Vec::new();
        while let Some(option) = fields.token() {
            options.push(option.to_owned());
        }
        if options.is_empty() {
            return Err(self.invalid());
        }
        if !slot.is_empty() {
            return Err(self.duplicate());
        }
        *slot = options;
        Ok(())
    }

    fn setup(&self, slot: &mut Option<Setup>) -> Result<(), SdpError> {
        let setup = self.parse_with(Setup::from_name)?;
        self.once(slot, setup)
    }
}

/// Splits `a=<name>[:<value>]`; the name must be a token.
fn split_attribute(line: Line<'_>) -> Result<(&str, Option<&str>), SdpError> {
    let (name, value) = match line.value.split_once(':') {
        Some((name, value)) => (name, Some(value)),
        None => (line.value, None),
    };
    if !is_token(name) {
        return Err(SdpError::MalformedLine { line: line.number });
    }
    Ok((name, value))
}

fn session_attribute(session: &mut SessionDescription, line: Line<'_>) -> Result<(), SdpError> {
    let (name, value) = split_attribute(line)?;
    let reading = |kind| Reading {
        line: line.number,
        kind,
        value,
    };
    match name {
        "group" => {
            let group = reading(AttributeKind::Group).parse(Group::parse)?;
            session.groups.push(group);
        }
        "ice-lite" => reading(AttributeKind::IceLite).flag(&mut session.ice_lite)?,
        "ice-ufrag" => reading(AttributeKind::IceUfrag).ice_ufrag(&mut session.ice_ufrag)?,
        "ice-pwd" => reading(AttributeKind::IcePwd).ice_pwd(&mut session.ice_pwd)?,
        "ice-options" => {
            reading(AttributeKind::IceOptions).ice_options(&mut session.ice_options)?;
        }
        "fingerprint" => {
            let fingerprint = reading(AttributeKind::Fingerprint).parse(Fingerprint::parse)?;
            session.fingerprints.push(fingerprint);
        }
        "setup" => reading(AttributeKind::Setup).setup(&mut session.setup)?,
        "msid-semantic" => {
            let reading = reading(AttributeKind::MsidSemantic);
            let semantic = reading.parse(MsidSemantic::parse)?;
            reading.once(&mut session.msid_semantic, semantic)?;
        }
        "extmap-allow-mixed" => {
            reading(AttributeKind::ExtmapAllowMixed).flag(&mut session.extmap_allow_mixed)?;
        }
        _ => session.attributes.push(Attribute::new(name, value)),
    }
    Ok(())
}

fn media_attribute(media: &mut MediaSection, line: Line<'_>) -> Result<(), SdpError> {
    let (name, value) = split_attribute(line)?;
    let reading = |kind| Reading {
        line: line.number,
        kind,
        value,
    };
    let rtp = media.is_rtp();
    match name {
        "mid" => {
            let reading = reading(AttributeKind::Mid);
            let mid = reading.parse_with(|v| is_token(v).then(|| v.to_owned()))?;
            reading.once(&mut media.mid, mid)?;
        }
        "sendrecv" | "sendonly" | "recvonly" | "inactive" => {
            let reading = reading(AttributeKind::Direction);
            if value.is_some() {
                return Err(reading.invalid());
            }
            let direction = Direction::from_name(name).expect("the match lists only directions");
            reading.once(&mut media.direction, direction)?;
        }
        "ice-ufrag" => reading(AttributeKind::IceUfrag).ice_ufrag(&mut media.ice_ufrag)?,
        "ice-pwd" => reading(AttributeKind::IcePwd).ice_pwd(&mut media.ice_pwd)?,
        "ice-options" => reading(AttributeKind::IceOptions).ice_options(&mut media.ice_options)?,
        "candidate" => {
            let candidate = reading(AttributeKind::Candidate).parse_with(Candidate::parse_value)?;
            media.candidates.push(candidate);
        }
        "end-of-candidates" => {
            reading(AttributeKind::EndOfCandidates).flag(&mut media.end_of_candidates)?;
        }
        "fingerprint" => {
            let fingerprint = reading(AttributeKind::Fingerprint).parse(Fingerprint::parse)?;
            media.fingerprints.push(fingerprint);
        }
        "setup" => reading(AttributeKind::Setup).setup(&mut media.setup)?,
        "rtcp-mux" => reading(AttributeKind::RtcpMux).flag(&mut media.rtcp_mux)?,
        "rtcp-rsize" => reading(AttributeKind::RtcpRsize).flag(&mut media.rtcp_rsize)?,
        "rtpmap" if rtp => {
            let reading = reading(AttributeKind::Rtpmap);
            let rtpmap = reading.parse(RtpMap::parse)?;
            if media
                .rtpmaps
                .iter()
                .any(|known| known.payload_type == rtpmap.payload_type)
            {
                return Err(reading.duplicate());
            }
            media.rtpmaps.push(rtpmap);
        }
        "fmtp" if rtp => {
            let reading = reading(AttributeKind::Fmtp);
            let fmtp = reading.parse(Fmtp::parse)?;
            if media
                .fmtps
                .iter()
                .any(|known| known.payload_type == fmtp.payload_type)
            {
                return Err(reading.duplicate());
            }
            media.fmtps.push(fmtp);
        }
        "rtcp-fb" if rtp => {
            let feedback = reading(AttributeKind::RtcpFb).parse(RtcpFeedback::parse)?;
            media.rtcp_feedback.push(feedback);
        }
        "extmap" => {
            let reading = reading(AttributeKind::Extmap);
            let extmap = reading.parse(ExtMap::parse)?;
            if media.extmaps.iter().any(|known| known.id == extmap.id) {
                return Err(reading.duplicate());
            }
            media.extmaps.push(extmap);
        }
        "ssrc" => {
            let (ssrc, attribute) =
                reading(AttributeKind::Ssrc).parse(SsrcDescription::parse_line)?;
            match media.ssrcs.iter_mut().find(|known| known.ssrc == ssrc) {
                Some(known) => known.attributes.push(attribute),
                None => media.ssrcs.push(SsrcDescription {
                    ssrc,
                    attributes: vec![attribute],
                }),
            }
        }
        "ssrc-group" => {
            let group = reading(AttributeKind::SsrcGroup).parse(SsrcGroup::parse)?;
            media.ssrc_groups.push(group);
        }
        "msid" => {
            let msid = reading(AttributeKind::Msid).parse(Msid::parse)?;
            media.msids.push(msid);
        }
        "rid" => {
            let reading = reading(AttributeKind::Rid);
            let rid = reading.parse(Rid::parse)?;
            if media.rids.iter().any(|known| known.id == rid.id) {
                return Err(reading.duplicate());
            }
            media.rids.push(rid);
        }
        "simulcast" => {
            let reading = reading(AttributeKind::Simulcast);
            let simulcast = reading.parse(Simulcast::parse)?;
            reading.once(&mut media.simulcast, simulcast)?;
        }
        "sctp-port" => {
            let reading = reading(AttributeKind::SctpPort);
            let port = reading.parse_with(parse_number::<u16>)?;
            reading.once(&mut media.sctp_port, port)?;
        }
        "max-message-size" => {
            let reading = reading(AttributeKind::MaxMessageSize);
            let size = reading.parse_with(parse_number::<u64>)?;
            reading.once(&mut media.max_message_size, size)?;
        }
        _ => media.attributes.push(Attribute::new(name, value)),
    }
    Ok(())
}

/// Brings `rtcp-fb` and `fmtp` lines into the writer's order, which follows the rtpmaps: the
/// lines of the first rtpmap's payload type, then the second's, …, then those of payload types
/// without rtpmap (and `*`). Stable, so lines of one payload type keep their order.
fn into_writer_order(media: &mut MediaSection) {
    let rtpmaps = &media.rtpmaps;
    let rank = |payload_type: Option<u8>| {
        payload_type
            .and_then(|pt| rtpmaps.iter().position(|rtpmap| rtpmap.payload_type == pt))
            .unwrap_or(usize::MAX)
    };
    media.rtcp_feedback.sort_by_key(|fb| rank(fb.payload_type));
    media
        .fmtps
        .sort_by_key(|fmtp| rank(Some(fmtp.payload_type)));
}
