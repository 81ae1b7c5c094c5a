//! The writer: CRLF lines in a fixed order. Session: `v o s i u e p c b t r z`, then the
//! attributes; each section: `m i c b`, then the attributes. Attributes go in the order
//! Chromium writes them where it has one — transport, mid, extmaps, direction, msid, RTCP,
//! codecs (each rtpmap followed by its rtcp-fb and fmtp lines), sources, simulcast, SCTP,
//! candidates — and attributes kept as written last.

use std::fmt::{self, Write as _};

use super::{Formats, MediaSection, SessionDescription};

/// The text being written.
struct Out(String);

impl Out {
    fn line(&mut self, kind: char, value: impl fmt::Display) {
        write!(self.0, "{kind}={value}\r\n").expect("writing to a String does not fail");
    }

    fn attribute(&mut self, name: &str, value: impl fmt::Display) {
        write!(self.0, "a={name}:{value}\r\n").expect("writing to a String does not fail");
    }

    fn flag(&mut self, name: &str, set: bool) {
        if set {
            write!(self.0, "a={name}\r\n").expect("writing to a String does not fail");
        }
    }

    fn each<T: fmt::Display>(&mut self, name: &str, values: &[T]) {
        for value in values {
            self.attribute(name, value);
        }
    }
}

/// Space-separated tokens.
struct Spaced<'a>(&'a [String]);

impl fmt::Display for Spaced<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        super::line::write_joined(f, self.0, " ")
    }
}

pub(super) fn write(session: &SessionDescription) -> String {
    let mut out = Out(String::with_capacity(1024 + 2048 * session.media.len()));
    out.line('v', 0);
    out.line('o', &session.origin);
    out.line('s', &session.session_name);
    if let Some(information) = &session.information {
        out.line('i', information);
    }
    if let Some(uri) = &session.uri {
        out.line('u', uri);
    }
    for email in &session.emails {
        out.line('e', email);
    }
    for phone in &session.phones {
        out.line('p', phone);
    }
    if let Some(connection) = &session.connection {
        out.line('c', connection);
    }
    for bandwidth in &session.bandwidths {
        out.line('b', bandwidth);
    }
    for timing in &session.timing {
        out.line('t', format_args!("{} {}", timing.start, timing.stop));
        for repeat in &timing.repeats {
            out.line('r', repeat);
        }
    }
    if let Some(zones) = &session.time_zones {
        out.line('z', zones);
    }
    out.each("group", &session.groups);
    out.flag("extmap-allow-mixed", session.extmap_allow_mixed);
    if let Some(semantic) = &session.msid_semantic {
        out.attribute("msid-semantic", semantic);
    }
    out.flag("ice-lite", session.ice_lite);
    write_transport(
        &mut out,
        session.ice_ufrag.as_deref(),
        session.ice_pwd.as_ref().map(|pwd| pwd.expose()),
        &session.ice_options,
    );
    out.each("fingerprint", &session.fingerprints);
    if let Some(setup) = session.setup {
        out.attribute("setup", setup);
    }
    for attribute in &session.attributes {
        out.line('a', attribute);
    }
    for media in &session.media {
        write_media(&mut out, media);
    }
    out.0
}

fn write_transport(out: &mut Out, ufrag: Option<&str>, pwd: Option<&str>, options: &[String]) {
    if let Some(ufrag) = ufrag {
        out.attribute("ice-ufrag", ufrag);
    }
    if let Some(pwd) = pwd {
        out.attribute("ice-pwd", pwd);
    }
    if !options.is_empty() {
        out.attribute("ice-options", Spaced(options));
    }
}

fn write_media(out: &mut Out, media: &MediaSection) {
    out.line('m', MediaLine(media));
    if let Some(information) = &media.information {
        out.line('i', information);
    }
    if let Some(connection) = &media.connection {
        out.line('c', connection);
    }
    for bandwidth in &media.bandwidths {
        out.line('b', bandwidth);
    }
    write_transport(
        out,
        media.ice_ufrag.as_deref(),
        media.ice_pwd.as_ref().map(|pwd| pwd.expose()),
        &media.ice_options,
    );
    out.each("fingerprint", &media.fingerprints);
    if let Some(setup) = media.setup {
        out.attribute("setup", setup);
    }
    if let Some(mid) = &media.mid {
        out.attribute("mid", mid);
    }
    out.each("extmap", &media.extmaps);
    if let Some(direction) = media.direction {
        out.flag(direction.as_str(), true);
    }
    out.each("msid", &media.msids);
    out.flag("rtcp-mux", media.rtcp_mux);
    out.flag("rtcp-rsize", media.rtcp_rsize);
    write_codecs(out, media);
    out.each("ssrc-group", &media.ssrc_groups);
    for description in &media.ssrcs {
        for attribute in &description.attributes {
            out.attribute("ssrc", format_args!("{} {attribute}", description.ssrc));
        }
    }
    out.each("rid", &media.rids);
    if let Some(simulcast) = &media.simulcast {
        out.attribute("simulcast", simulcast);
    }
    if let Some(port) = media.sctp_port {
        out.attribute("sctp-port", port);
    }
    if let Some(size) = media.max_message_size {
        out.attribute("max-message-size", size);
    }
    out.each("candidate", &media.candidates);
    out.flag("end-of-candidates", media.end_of_candidates);
    for attribute in &media.attributes {
        out.line('a', attribute);
    }
}

/// Each rtpmap with the rtcp-fb and fmtp lines of its payload type, then the rtcp-fb and fmtp
/// lines of payload types without rtpmap, each list in its own order.
fn write_codecs(out: &mut Out, media: &MediaSection) {
    let mut feedback_written = vec![false; media.rtcp_feedback.len()];
    let mut fmtp_written = vec![false; media.fmtps.len()];
    for rtpmap in &media.rtpmaps {
        out.attribute("rtpmap", rtpmap);
        let pt = Some(rtpmap.payload_type);
        for (feedback, written) in media.rtcp_feedback.iter().zip(&mut feedback_written) {
            if feedback.payload_type == pt && !*written {
                out.attribute("rtcp-fb", feedback);
                *written = true;
            }
        }
        for (fmtp, written) in media.fmtps.iter().zip(&mut fmtp_written) {
            if Some(fmtp.payload_type) == pt && !*written {
                out.attribute("fmtp", fmtp);
                *written = true;
            }
        }
    }
    for (feedback, written) in media.rtcp_feedback.iter().zip(&feedback_written) {
        if !written {
            out.attribute("rtcp-fb", feedback);
        }
    }
    for (fmtp, written) in media.fmtps.iter().zip(&fmtp_written) {
        if !written {
            out.attribute("fmtp", fmtp);
        }
    }
}

/// The value of the `m=` line.
struct MediaLine<'a>(&'a MediaSection);

impl fmt::Display for MediaLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let media = self.0;
        write!(f, "{} {}", media.kind.as_str(), media.port)?;
        if let Some(count) = media.port_count {
            write!(f, "/{count}")?;
        }
        write!(f, " {}", media.protocol)?;
        match &media.formats {
            Formats::Rtp(payload_types) => {
                for pt in payload_types {
                    write!(f, " {pt}")?;
                }
            }
            Formats::Other(formats) => {
                for format in formats {
                    write!(f, " {format}")?;
                }
            }
        }
        Ok(())
    }
}
