//! Reader, writer and queries against hand-written descriptions in the shapes Chromium and
//! aiortc produce (`*.sdp` beside this file), an SFU answer built with the writer, and the round
//! trip. Every error is in [`errors`].

use super::*;

mod errors;

/// A Chromium-style unified-plan offer: audio, video with four codecs and RTX, a simulcast
/// video section with three RIDs, and a data channel. Written with LF; tests add the CRs.
const CHROMIUM_OFFER: &str = include_str!("chromium_offer.sdp");

/// An aiortc-style offer: candidates inline with end-of-candidates, transport attributes after
/// the codecs, `a=ssrc` lines before the rtpmaps, `msid-semantic:WMS *`.
const AIORTC_OFFER: &str = include_str!("aiortc_offer.sdp");

/// The three lines every description starts with, and `t=`.
const HEADER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

/// A minimal RTP section.
const AUDIO: &str = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";

fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

fn parse(text: &str) -> SessionDescription {
    SessionDescription::parse(text).expect("sample parses")
}

/// `HEADER`, `AUDIO` and then `lines`, each followed by CRLF.
fn audio_with(lines: &[&str]) -> String {
    let mut text = format!("{HEADER}{AUDIO}");
    for line in lines {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text
}

fn error_of(text: &str) -> SdpError {
    SessionDescription::parse(text).expect_err("sample is invalid")
}

/// Reading, writing and reading again gives the same value, and writing is then stable.
fn assert_round_trip(text: &str) -> SessionDescription {
    let description = parse(text);
    let written = description.to_sdp_string();
    let again = SessionDescription::parse(&written).expect("written text parses");
    assert_eq!(again, description);
    assert_eq!(again.to_sdp_string(), written);
    // Never longer than the text as read, counting its line endings as CRLF.
    let canonical: usize = text.lines().map(|line| line.len() + 2).sum();
    assert!(written.len() <= canonical);
    description
}

#[test]
fn chromium_offer_session_level() {
    let offer = parse(&crlf(CHROMIUM_OFFER));
    assert_eq!(offer.origin.session_id, 5_832_104_797_316_247_013);
    assert_eq!(offer.origin.session_version, 2);
    assert_eq!(offer.session_name, "-");
    assert_eq!(offer.timing, [Timing::unbounded()]);
    let bundle = offer.bundle_group().expect("BUNDLE group");
    assert_eq!(bundle.mids, ["0", "1", "2", "3"]);
    assert!(offer.extmap_allow_mixed);
    assert!(!offer.ice_lite);
    let semantic = offer.msid_semantic.as_ref().expect("msid-semantic");
    assert_eq!(semantic.semantic, "WMS");
    assert_eq!(semantic.ids, ["4c0e1f5a-7d1b-4e3a-9b52-a8f6c2d10e37"]);
    assert_eq!(offer.media.len(), 4);
    let kinds: Vec<MediaKind> = offer.media.iter().map(|media| media.kind).collect();
    use MediaKind::{Application, Audio, Video};
    assert_eq!(kinds, [Audio, Video, Video, Application]);
    assert_eq!(
        offer.media_by_mid("2").map(|media| media.direction()),
        Some(Direction::SendOnly)
    );
}

#[test]
fn chromium_offer_transport() {
    let offer = parse(CHROMIUM_OFFER);
    let audio = &offer.media[0];
    assert_eq!(audio.port, 9);
    assert_eq!(audio.protocol, "UDP/TLS/RTP/SAVPF");
    assert_eq!(audio.connection, Some(Connection::placeholder()));
    assert_eq!(offer.ice_ufrag_of(audio), Some("Hq3z"));
    let pwd = offer.ice_pwd_of(audio).expect("ice-pwd");
    assert_eq!(pwd.expose(), "vN8xR2mKq5TtY7wLc0pJd4sF");
    assert_eq!(audio.ice_options, ["trickle"]);
    assert_eq!(offer.setup_of(audio), Some(Setup::ActPass));
    let fingerprints = offer.fingerprints_of(audio);
    assert_eq!(fingerprints.len(), 1);
    assert_eq!(fingerprints[0].hash_function, HashFunction::Sha256);
    assert_eq!(fingerprints[0].value[..4], [0x3B, 0x8E, 0x51, 0xC4]);
    assert_eq!(fingerprints[0].value[31], 0xB0);
    assert!(audio.rtcp_mux && audio.rtcp_rsize);
    assert_eq!(
        audio.attribute("rtcp"),
        Some(&Attribute::new("rtcp", Some("9 IN IP4 0.0.0.0")))
    );
    // The password never reaches Debug output.
    let debug = format!("{offer:?}");
    assert!(!debug.contains("vN8xR2mKq5TtY7wLc0pJd4sF"));
    assert!(debug.contains("[redacted]"));
}

#[test]
fn chromium_audio_codecs() {
    let offer = parse(CHROMIUM_OFFER);
    let audio = &offer.media[0];
    let codecs = audio.codecs();
    let names: Vec<&str> = codecs.iter().map(|codec| codec.name.as_str()).collect();
    assert_eq!(
        names,
        ["opus", "red", "G722", "PCMU", "PCMA", "telephone-event"]
    );
    let opus = &codecs[0];
    assert_eq!((opus.payload_type, opus.clock_rate), (111, 48000));
    assert_eq!(opus.channels, Some(2));
    assert_eq!(opus.parameter("minptime"), Some("10"));
    assert_eq!(opus.parameter("useinbandfec"), Some("1"));
    assert!(opus.has_feedback("transport-cc", None));
    let red = &codecs[1];
    assert_eq!(red.parameters[0].name, "111/111");
    assert_eq!(red.parameters[0].value, None);
    assert_eq!(codecs[5].clock_rate, 8000);
    assert_eq!(codecs[5].channels, None);
    assert_eq!(audio.rtx_payload_type(111), None);
    assert_eq!(
        audio.extmap_id("urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
        Some(1)
    );
    assert_eq!(
        audio.sender_ssrcs(),
        [SenderSsrc {
            ssrc: 2_871_004_527,
            rtx: None
        }]
    );
    assert_eq!(
        audio.ssrc_attribute(2_871_004_527, "cname"),
        Some("Zr5vQm2LxT8kWc1e")
    );
    assert_eq!(
        audio.msids[0].stream_id,
        "4c0e1f5a-7d1b-4e3a-9b52-a8f6c2d10e37"
    );
}

#[test]
fn chromium_video_codecs_rtx_and_extensions() {
    let offer = parse(CHROMIUM_OFFER);
    let video = &offer.media[1];
    let codecs = video.codecs();
    assert_eq!(codecs.len(), 8);
    let vp8 = &codecs[0];
    assert!(vp8.is("vp8"));
    assert_eq!(vp8.feedback.len(), 5);
    assert!(vp8.has_feedback("nack", Some("pli")));
    assert!(vp8.has_feedback("ccm", Some("fir")));
    assert!(vp8.has_feedback("goog-remb", None));
    for (media, rtx) in [(96, 97), (98, 99), (100, 101), (45, 46)] {
        assert_eq!(video.rtx_payload_type(media), Some(rtx));
        let codec = video.codec(rtx).expect("rtx codec");
        assert_eq!(codec.associated_payload_type(), Some(media));
    }
    assert_eq!(vp8.associated_payload_type(), None);
    let vp9 = video.codec(98).expect("VP9");
    assert_eq!(vp9.parameter("profile-id"), Some("0"));
    let h264 = video.codec(100).expect("H264");
    assert!(h264.is("H264"));
    assert_eq!(h264.parameter("profile-level-id"), Some("42e01f"));
    assert_eq!(h264.parameter("packetization-mode"), Some("1"));
    assert_eq!(h264.parameter("level-asymmetry-allowed"), Some("1"));
    let av1 = video.codec(45).expect("AV1");
    assert_eq!(av1.name, "AV1");
    assert_eq!(av1.clock_rate, 90000);
    assert_eq!(av1.parameter("level-idx"), Some("5"));

    for (uri, id) in [
        ("urn:ietf:params:rtp-hdrext:sdes:mid", 4),
        (
            "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            2,
        ),
        (
            "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            3,
        ),
        ("urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", 10),
        ("urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id", 11),
    ] {
        assert_eq!(video.extmap_id(uri), Some(id), "{uri}");
    }
    assert_eq!(
        video.extmap_id("urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
        None
    );

    assert_eq!(video.fid_pairs(), [(1_618_409_371, 3_920_541_178)]);
    assert_eq!(
        video.sender_ssrcs(),
        [SenderSsrc {
            ssrc: 1_618_409_371,
            rtx: Some(3_920_541_178)
        }]
    );
    assert_eq!(video.ssrcs.len(), 2);
    assert_eq!(video.ssrcs[1].attributes.len(), 2);
}

#[test]
fn chromium_simulcast_section() {
    let offer = parse(CHROMIUM_OFFER);
    let video = &offer.media[2];
    assert_eq!(video.simulcast_rids(RidDirection::Send), ["q", "h", "f"]);
    assert!(video.simulcast_rids(RidDirection::Recv).is_empty());
    let simulcast = video.simulcast.as_ref().expect("simulcast");
    assert!(simulcast.send[2][0].paused);
    assert!(!simulcast.send[0][0].paused);
    let ids: Vec<&str> = video.rids.iter().map(|rid| rid.id.as_str()).collect();
    assert_eq!(ids, ["q", "h", "f"]);
    assert!(
        video
            .rids
            .iter()
            .all(|rid| rid.direction == RidDirection::Send)
    );
    assert_eq!(video.rids[2].restriction("max-width"), Some("1280"));
    assert_eq!(video.rids[2].restriction("max-height"), Some("720"));
    assert_eq!(video.rids[0].restriction("max-width"), None);
    assert!(video.sender_ssrcs().is_empty());
    assert_eq!(video.rtx_payload_type(96), Some(97));
    assert_eq!(
        video.extmap_id("urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"),
        Some(10)
    );
}

#[test]
fn chromium_data_channel_section() {
    let offer = parse(CHROMIUM_OFFER);
    let data = &offer.media[3];
    assert_eq!(data.kind, MediaKind::Application);
    assert_eq!(data.protocol, "UDP/DTLS/SCTP");
    assert!(!data.is_rtp());
    assert_eq!(
        data.formats,
        Formats::Other(vec!["webrtc-datachannel".to_owned()])
    );
    assert!(data.payload_types().is_empty());
    assert!(data.codecs().is_empty());
    assert_eq!(data.sctp_port, Some(5000));
    assert_eq!(data.max_message_size, Some(262_144));
    assert_eq!(data.mid.as_deref(), Some("3"));
    assert_eq!(data.direction, None);
    assert_eq!(data.direction(), Direction::SendRecv);
}

#[test]
fn aiortc_offer() {
    let offer = parse(&crlf(AIORTC_OFFER));
    let semantic = offer.msid_semantic.as_ref().expect("msid-semantic");
    assert_eq!(semantic.ids, ["*"]);
    assert!(offer.fingerprints.is_empty());
    let audio = &offer.media[0];
    assert_eq!(audio.port, 51372);
    let connection = audio.connection.as_ref().expect("c= line");
    assert_eq!(connection.address, "192.168.20.7");
    assert_eq!(audio.candidates.len(), 2);
    let host = &audio.candidates[0];
    assert_eq!(host.foundation, "5e1b0e8f2d6a4c97b3f1a0d9e7c2b48a");
    assert_eq!((host.component, host.transport.as_str()), (1, "udp"));
    assert_eq!(host.priority, 2_130_706_431);
    assert_eq!((host.address.as_str(), host.port), ("192.168.20.7", 51372));
    assert_eq!(host.kind, CandidateType::Host);
    let srflx = &audio.candidates[1];
    assert_eq!(srflx.kind, CandidateType::ServerReflexive);
    assert_eq!(srflx.related_address.as_deref(), Some("192.168.20.7"));
    assert_eq!(srflx.related_port, Some(51372));
    assert!(srflx.extensions.is_empty());
    assert!(audio.end_of_candidates);
    assert_eq!(offer.ice_ufrag_of(audio), Some("Tq8m"));
    assert_eq!(offer.fingerprints_of(audio)[0].value[0], 0xA0);
    assert_eq!(offer.setup_of(audio), Some(Setup::ActPass));
    assert!(audio.rtcp_mux && !audio.rtcp_rsize);

    let names: Vec<String> = audio.codecs().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["opus", "PCMU", "PCMA"]);
    assert_eq!(
        audio.ssrc_attribute(1_295_806_834, "cname"),
        Some("7f0c2e4b-61a9-4d38-9b5e-c2a147d8e063")
    );

    let video = &offer.media[1];
    assert_eq!(video.rtx_payload_type(97), Some(98));
    assert_eq!(
        video.sender_ssrcs(),
        [SenderSsrc {
            ssrc: 2_439_851_260,
            rtx: Some(617_305_948)
        }]
    );
    let vp8 = video.codec(97).expect("VP8");
    assert_eq!(vp8.feedback.len(), 3);
    assert_eq!(
        video.extmap_id("http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
        Some(3)
    );
}

#[test]
fn samples_round_trip_with_either_line_ending() {
    for sample in [CHROMIUM_OFFER, AIORTC_OFFER] {
        let from_lf = assert_round_trip(sample);
        let from_crlf = assert_round_trip(&crlf(sample));
        assert_eq!(from_lf, from_crlf);
        // Without the final line ending too.
        assert_eq!(assert_round_trip(sample.trim_end()), from_lf);
    }
}

#[test]
fn writer_writes_crlf_in_canonical_order() {
    let offer = parse(AIORTC_OFFER);
    let text = offer.to_sdp_string();
    assert!(
        text.starts_with("v=0\r\no=- 3921570336 3921570336 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n")
    );
    assert!(text.ends_with("\r\n"));
    assert_eq!(text.matches('\n').count(), text.matches("\r\n").count());
    // The audio section: transport first, kept attributes last.
    let audio = text.split("m=").nth(1).expect("audio section");
    let expected = "audio 51372 UDP/TLS/RTP/SAVPF 96 0 8\r\n\
        c=IN IP4 192.168.20.7\r\n\
        a=ice-ufrag:Tq8m\r\n\
        a=ice-pwd:e4Rk9ZpW2sLx7cVb3nMq0aYh\r\n\
        a=fingerprint:sha-256 A0:19:5C:E3:72:4D:B8:06:F1:2E:95:6A:C7:30:8B:D4:5F:E2:17:9C:63:0A:BD:48:F5:21:7E:C9:36:84:DA:0B\r\n\
        a=setup:actpass\r\n\
        a=mid:0\r\n\
        a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
        a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
        a=sendrecv\r\n\
        a=msid:a3f1c07e-2b9d-4d15-8e6a-53c0b7f19d42 e8b25d41-9c73-4a06-bf1e-7d3a60c2f918\r\n\
        a=rtcp-mux\r\n\
        a=rtpmap:96 opus/48000/2\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:8 PCMA/8000\r\n\
        a=ssrc:1295806834 cname:7f0c2e4b-61a9-4d38-9b5e-c2a147d8e063\r\n\
        a=candidate:5e1b0e8f2d6a4c97b3f1a0d9e7c2b48a 1 udp 2130706431 192.168.20.7 51372 typ host\r\n\
        a=candidate:c4d7a19e03b85f26e1a9d0c3b7f4e852 1 udp 1694498815 198.51.100.23 51372 typ srflx raddr 192.168.20.7 rport 51372\r\n\
        a=end-of-candidates\r\n\
        a=rtcp:9 IN IP4 0.0.0.0\r\n";
    assert_eq!(audio, expected);
}

/// The answer an SFU gives Chromium's offer: ICE-lite, passive DTLS, one codec (plus RTX) per
/// section, receiving the simulcast layers, accepting the data channel.
fn sfu_answer(offer: &SessionDescription) -> SessionDescription {
    let mut answer = SessionDescription::new(Origin::new(4_242_424_242, 1));
    answer.ice_lite = true;
    answer.groups.extend(offer.bundle_group().cloned());
    answer.msid_semantic = Some(MsidSemantic {
        semantic: "WMS".to_owned(),
        ids: Vec::new(),
    });
    answer.fingerprints.push(Fingerprint {
        hash_function: HashFunction::Sha256,
        value: (0..32).map(|b| b * 7).collect(),
    });
    for offered in &offer.media {
        let formats = match &offered.formats {
            Formats::Rtp(_) => Formats::Rtp(Vec::new()),
            other => other.clone(),
        };
        let mut media = MediaSection::new(offered.kind, 9, &offered.protocol, formats);
        media.connection = Some(Connection::placeholder());
        media.mid = offered.mid.clone();
        media.ice_ufrag = Some("sfu0".to_owned());
        media.ice_pwd = Some(Secret::new("Kammer0SfuPassword0123456".to_owned()));
        media.setup = Some(Setup::Passive);
        media.candidates.push(
            Candidate::parse("candidate:1 1 udp 2130706431 192.0.2.10 3478 typ host")
                .expect("valid candidate"),
        );
        media.end_of_candidates = true;
        if offered.is_rtp() {
            media.direction = Some(offered.direction().reversed());
            media.rtcp_mux = true;
            media.rtcp_rsize = offered.rtcp_rsize;
            let codecs = offered.codecs();
            let chosen = codecs
                .iter()
                .find(|codec| codec.is("opus") || codec.is("VP8"))
                .expect("offer has opus and VP8");
            media.add_codec(chosen);
            if let Some(rtx) = offered.rtx_payload_type(chosen.payload_type) {
                media.add_codec(&offered.codec(rtx).expect("rtx codec exists"));
            }
            for uri in [
                "urn:ietf:params:rtp-hdrext:sdes:mid",
                "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
            ] {
                if let Some(id) = offered.extmap_id(uri) {
                    media.extmaps.push(ExtMap::new(id, uri));
                }
            }
            for rid in &offered.rids {
                media.rids.push(Rid::new(&rid.id, RidDirection::Recv));
            }
            if let Some(simulcast) = &offered.simulcast {
                media.simulcast = Some(Simulcast {
                    send: Vec::new(),
                    recv: simulcast.send.clone(),
                });
            }
        } else {
            media.sctp_port = offered.sctp_port;
            media.max_message_size = Some(65536);
        }
        answer.media.push(media);
    }
    answer
}

#[test]
fn sfu_answer_is_written_and_reads_back() {
    let offer = parse(CHROMIUM_OFFER);
    let answer = sfu_answer(&offer);
    let text = answer.to_sdp_string();
    assert_eq!(SessionDescription::parse(&text), Ok(answer.clone()));
    assert_eq!(text.matches('\n').count(), text.matches("\r\n").count());
    for line in [
        "o=- 4242424242 1 IN IP4 127.0.0.1",
        "a=group:BUNDLE 0 1 2 3",
        "a=ice-lite",
        "a=fingerprint:sha-256 00:07:0E:15:1C:23:2A:31:",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "a=setup:passive",
        "a=recvonly",
        "a=rtcp-fb:96 nack pli",
        "a=fmtp:97 apt=96",
        "a=rid:q recv",
        "a=simulcast:recv q;h;~f",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "a=sctp-port:5000",
        "a=candidate:1 1 udp 2130706431 192.0.2.10 3478 typ host",
    ] {
        assert!(text.contains(line), "{line}");
    }
    // The simulcast section as a whole.
    let simulcast = text.split("m=").nth(3).expect("third section");
    let expected = "video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
        c=IN IP4 0.0.0.0\r\n\
        a=ice-ufrag:sfu0\r\n\
        a=ice-pwd:Kammer0SfuPassword0123456\r\n\
        a=setup:passive\r\n\
        a=mid:2\r\n\
        a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
        a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n\
        a=recvonly\r\n\
        a=rtcp-mux\r\n\
        a=rtcp-rsize\r\n\
        a=rtpmap:96 VP8/90000\r\n\
        a=rtcp-fb:96 nack\r\n\
        a=rtcp-fb:96 nack pli\r\n\
        a=rtcp-fb:96 ccm fir\r\n\
        a=rtcp-fb:96 transport-cc\r\n\
        a=rtpmap:97 rtx/90000\r\n\
        a=fmtp:97 apt=96\r\n\
        a=rid:q recv\r\n\
        a=rid:h recv\r\n\
        a=rid:f recv\r\n\
        a=simulcast:recv q;h;~f\r\n\
        a=candidate:1 1 udp 2130706431 192.0.2.10 3478 typ host\r\n\
        a=end-of-candidates\r\n";
    assert_eq!(simulcast, expected);
    // What the browser will see of the answer's codecs.
    let video = &answer.media[1];
    assert_eq!(video.rtx_payload_type(96), Some(97));
    assert!(
        video
            .codec(96)
            .expect("VP8")
            .has_feedback("nack", Some("pli"))
    );
}

#[test]
fn session_level_transport_is_inherited() {
    let text = format!(
        "{HEADER}a=ice-ufrag:sess\r\na=ice-pwd:SessionPassword0123456789\r\n\
         a=setup:active\r\n\
         a=fingerprint:sha-1 00:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10:11:12:13\r\n\
         {AUDIO}m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:own1\r\na=setup:passive\r\n\
         a=fingerprint:sha-256 {}\r\n",
        ["AA"; 32].join(":")
    );
    let description = assert_round_trip(&text);
    let (first, second) = (&description.media[0], &description.media[1]);
    assert_eq!(description.ice_ufrag_of(first), Some("sess"));
    assert_eq!(description.ice_ufrag_of(second), Some("own1"));
    assert_eq!(
        description.ice_pwd_of(second).map(Secret::expose),
        Some("SessionPassword0123456789")
    );
    assert_eq!(description.setup_of(first), Some(Setup::Active));
    assert_eq!(description.setup_of(second), Some(Setup::Passive));
    assert_eq!(
        description.fingerprints_of(first)[0].hash_function,
        HashFunction::Sha1
    );
    assert_eq!(description.fingerprints_of(second)[0].value, [0xAA; 32]);
}

#[test]
fn reader_brings_lines_into_writer_order() {
    let text = audio_with(&[
        "a=fmtp:97 apt=96",
        "a=rtcp-fb:* nack",
        "a=ssrc:1 cname:a",
        "a=rtcp-fb:97 x",
        "a=ssrc:2 cname:a",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 nack pli",
        "a=ssrc:1 msid:s t",
        "a=fmtp:96 x-google-start-bitrate=800",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:5 y",
    ]);
    let description = assert_round_trip(&text);
    let media = &description.media[0];
    let fmtp_order: Vec<u8> = media.fmtps.iter().map(|f| f.payload_type).collect();
    assert_eq!(fmtp_order, [96, 97, 5]);
    let feedback_order: Vec<Option<u8>> =
        media.rtcp_feedback.iter().map(|f| f.payload_type).collect();
    assert_eq!(feedback_order, [Some(96), Some(97), None]);
    assert_eq!(media.ssrcs.len(), 2);
    assert_eq!(media.ssrc_attribute(1, "msid"), Some("s t"));
    // `*` feedback reaches every codec; the m= line lists only 111, so codecs() is empty.
    assert!(media.codecs().is_empty());
    assert!(media.codec(96).expect("VP8").has_feedback("nack", None));
}

#[test]
fn unknown_and_misplaced_attributes_are_kept() {
    let text = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\ni=info\r\nu=http://example.com/\r\n\
         e=a@example.com\r\np=+49 30 1234\r\nc=IN IP4 0.0.0.0\r\nb=AS:300\r\nt=0 0\r\n\
         r=7d 1h 0 25h\r\nt=1 2\r\nz=2882844526 -1h\r\na=x-session:value with  spaces \r\n\
         a=mid:0\r\na=tool\r\na=empty:\r\n\
         m=audio 9/2 RTP/AVP 0 8\r\ni=audio\r\nc=IN IP4 0.0.0.0\r\nb=TIAS:64000\r\n\
         a=x-google-flag:conference\r\na=bundle-only\r\n\
         m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\na=rtpmap:x y\r\na=fmtp:webrtc-datachannel z\r\n";
    let description = assert_round_trip(text);
    assert_eq!(description.information.as_deref(), Some("info"));
    assert_eq!(description.timing.len(), 2);
    assert_eq!(description.timing[0].repeats, ["7d 1h 0 25h"]);
    assert_eq!(description.bandwidths[0].value, 300);
    let names: Vec<&str> = description
        .attributes
        .iter()
        .map(|attribute| attribute.name.as_str())
        .collect();
    assert_eq!(names, ["x-session", "mid", "tool", "empty"]);
    assert_eq!(
        description.attributes[0].value.as_deref(),
        Some("value with  spaces ")
    );
    assert_eq!(description.attributes[3].value.as_deref(), Some(""));
    let audio = &description.media[0];
    assert_eq!(audio.port_count, Some(2));
    // Static payload types without rtpmap.
    let names: Vec<String> = audio.codecs().into_iter().map(|codec| codec.name).collect();
    assert_eq!(names, ["PCMU", "PCMA"]);
    assert!(!audio.is_rejected());
    let data = &description.media[1];
    assert!(data.is_rejected());
    assert_eq!(data.attributes.len(), 2);
}
