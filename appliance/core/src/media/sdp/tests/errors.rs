//! Every error of the reader, and the limits at their edges.

use super::*;

#[test]
fn limits_are_inclusive() {
    let mut text = HEADER.to_owned();
    for _ in 0..MAX_MEDIA_SECTIONS {
        text.push_str(AUDIO);
    }
    assert_eq!(parse(&text).media.len(), MAX_MEDIA_SECTIONS);

    let attributes: Vec<String> = (0..MAX_ATTRIBUTES).map(|i| format!("a=x{i}")).collect();
    let refs: Vec<&str> = attributes.iter().map(String::as_str).collect();
    assert_eq!(
        parse(&audio_with(&refs)).media[0].attributes.len(),
        MAX_ATTRIBUTES
    );

    // Exactly MAX_SIZE bytes, in sections of 200 attributes.
    let mut text = HEADER.to_owned();
    let mut attributes = 0;
    let line = "a=x:0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    while text.len() + 2 * line.len() <= MAX_SIZE {
        if attributes % 200 == 0 {
            text.push_str(AUDIO);
        }
        text.push_str(line);
        attributes += 1;
    }
    let padding = MAX_SIZE - text.len() - "a=x:\r\n".len();
    text.push_str(&format!("a=x:{}\r\n", "p".repeat(padding)));
    assert_eq!(text.len(), MAX_SIZE);
    assert_round_trip(&text);
    text.insert(text.len() - 2, 'p');
    assert_eq!(error_of(&text), SdpError::TooLarge { limit: MAX_SIZE });

    // The session level counts as a section.
    let mut text = HEADER.to_owned();
    for _ in 0..=MAX_ATTRIBUTES {
        text.push_str("a=x:y\r\n");
    }
    assert_eq!(
        error_of(&text),
        SdpError::TooManyAttributes {
            line: 4 + MAX_ATTRIBUTES + 1,
            limit: MAX_ATTRIBUTES
        }
    );
}

#[test]
fn error_too_large() {
    let text = format!("{HEADER}a=x:{}\r\n", "y".repeat(MAX_SIZE));
    assert_eq!(error_of(&text), SdpError::TooLarge { limit: MAX_SIZE });
    // Counted as CRLF: 4000 LF lines of 16 bytes fit raw but not as written.
    let text = "a=xxxxxxxxxxxxx\n".repeat(4000);
    assert!(text.len() <= MAX_SIZE);
    assert_eq!(error_of(&text), SdpError::TooLarge { limit: MAX_SIZE });
}

#[test]
fn error_too_many_lines() {
    let text = "a=x\n".repeat(MAX_LINES + 1);
    assert_eq!(error_of(&text), SdpError::TooManyLines { limit: MAX_LINES });
}

#[test]
fn error_too_many_media_sections() {
    let mut text = HEADER.to_owned();
    for _ in 0..=MAX_MEDIA_SECTIONS {
        text.push_str(AUDIO);
    }
    assert_eq!(
        error_of(&text),
        SdpError::TooManyMediaSections {
            limit: MAX_MEDIA_SECTIONS
        }
    );
}

#[test]
fn error_too_many_attributes() {
    let attributes: Vec<String> = (0..=MAX_ATTRIBUTES).map(|i| format!("a=x{i}")).collect();
    let refs: Vec<&str> = attributes.iter().map(String::as_str).collect();
    assert_eq!(
        error_of(&audio_with(&refs)),
        SdpError::TooManyAttributes {
            line: 5 + MAX_ATTRIBUTES + 1,
            limit: MAX_ATTRIBUTES
        }
    );
}

#[test]
fn error_invalid_text() {
    assert_eq!(
        error_of(&audio_with(&["a=x:a\0b"])),
        SdpError::InvalidText { line: 6 }
    );
    assert_eq!(
        error_of(&audio_with(&["a=x:a\rb"])),
        SdpError::InvalidText { line: 6 }
    );
    assert_eq!(
        error_of(&audio_with(&["a=x:a\r"])),
        SdpError::InvalidText { line: 6 }
    );
}

#[test]
fn error_malformed_line() {
    for line in [
        "", "a", "a:b", "A=0", "=x", "ab=c", "a= mid:0", "a=:x", "a=x y:z",
    ] {
        assert_eq!(
            error_of(&audio_with(&[line])),
            SdpError::MalformedLine { line: 6 },
            "{line:?}"
        );
    }
    assert_eq!(error_of("\r\n"), SdpError::MalformedLine { line: 1 });
    assert_eq!(error_of("v=0\n\n"), SdpError::MalformedLine { line: 2 });
}

#[test]
fn error_unexpected_line() {
    for line in [
        "x=1",
        "k=clear:secret",
        "t=0 0",
        "v=0",
        "s=again",
        "o=- 1 1 IN IP4 0.0.0.0",
    ] {
        assert_eq!(
            error_of(&audio_with(&[line])),
            SdpError::UnexpectedLine { line: 6 },
            "{line:?}"
        );
    }
    assert_eq!(
        error_of(&audio_with(&["i=a", "i=b"])),
        SdpError::UnexpectedLine { line: 7 }
    );
    let text = format!("{HEADER}c=IN IP4 0.0.0.0\r\nc=IN IP4 0.0.0.0\r\n");
    assert_eq!(error_of(&text), SdpError::UnexpectedLine { line: 6 });
    let text = format!("{HEADER}k=prompt\r\n");
    assert_eq!(error_of(&text), SdpError::UnexpectedLine { line: 5 });
}

#[test]
fn error_missing_version() {
    for text in [
        "",
        "\n",
        "o=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
        "v=1\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
        "v=0 \r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
    ] {
        assert_eq!(error_of(text), SdpError::MissingVersion, "{text:?}");
    }
}

#[test]
fn error_missing_origin_session_name_and_timing() {
    assert_eq!(error_of("v=0\r\n"), SdpError::MissingOrigin);
    assert_eq!(error_of("v=0\r\ns=-\r\nt=0 0\r\n"), SdpError::MissingOrigin);
    assert_eq!(
        error_of("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\nt=0 0\r\n"),
        SdpError::MissingSessionName
    );
    assert_eq!(
        error_of("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"),
        SdpError::MissingTiming
    );
    assert_eq!(
        error_of(&format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n{AUDIO}"
        )),
        SdpError::MissingTiming
    );
}

#[test]
fn error_invalid_origin() {
    for origin in [
        "o=- x 1 IN IP4 127.0.0.1",
        "o=- 1 -1 IN IP4 127.0.0.1",
        "o=- 1 1 IN IP4",
        "o=- 1 1 IN IP4 127.0.0.1 extra",
        "o=- 18446744073709551616 1 IN IP4 127.0.0.1",
    ] {
        let text = format!("v=0\r\n{origin}\r\ns=-\r\nt=0 0\r\n");
        assert_eq!(
            error_of(&text),
            SdpError::InvalidOrigin { line: 2 },
            "{origin}"
        );
    }
}

#[test]
fn error_invalid_connection_bandwidth_and_timing() {
    assert_eq!(
        error_of(&audio_with(&["c=IN IP4"])),
        SdpError::InvalidConnection { line: 6 }
    );
    for line in ["b=AS", "b=AS:x", "b=AS:-1", "b=A S:1", "b=:1"] {
        assert_eq!(
            error_of(&audio_with(&[line])),
            SdpError::InvalidBandwidth { line: 6 },
            "{line}"
        );
    }
    for text in [
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0\r\n",
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=now 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nr=1d 1h 0\r\n",
    ] {
        assert_eq!(
            error_of(text),
            SdpError::InvalidTiming { line: 4 },
            "{text:?}"
        );
    }
}

#[test]
fn error_invalid_media_line() {
    for line in [
        "m=text 9 RTP/AVP 0",
        "m=audio 9 UDP/TLS/RTP/SAVPF",
        "m=audio 9",
        "m=audio",
        "m=audio 9 UDP//SAVPF 0",
        "m=",
    ] {
        let text = format!("{HEADER}{line}\r\n");
        assert_eq!(
            error_of(&text),
            SdpError::InvalidMediaLine { line: 5 },
            "{line}"
        );
    }
}

#[test]
fn error_invalid_port() {
    for line in [
        "m=audio 65536 UDP/TLS/RTP/SAVPF 111",
        "m=audio x UDP/TLS/RTP/SAVPF 111",
        "m=audio -9 UDP/TLS/RTP/SAVPF 111",
        "m=audio 9/ UDP/TLS/RTP/SAVPF 111",
        "m=audio 9/70000 UDP/TLS/RTP/SAVPF 111",
    ] {
        let text = format!("{HEADER}{line}\r\n");
        assert_eq!(error_of(&text), SdpError::InvalidPort { line: 5 }, "{line}");
    }
}

#[test]
fn error_invalid_payload_type() {
    let text = format!("{HEADER}m=video 9 UDP/TLS/RTP/SAVPF 96 128\r\n");
    assert_eq!(error_of(&text), SdpError::InvalidPayloadType { line: 5 });
    for line in [
        "a=rtpmap:200 VP8/90000",
        "a=fmtp:200 apt=96",
        "a=rtcp-fb:128 nack",
        "a=rtpmap:x VP8/90000",
    ] {
        assert_eq!(
            error_of(&audio_with(&[line])),
            SdpError::InvalidPayloadType { line: 6 },
            "{line}"
        );
    }
}

#[test]
fn error_invalid_extmap_id() {
    for line in [
        "a=extmap:0 urn:x",
        "a=extmap:256 urn:x",
        "a=extmap:x urn:x",
        "a=extmap:4096/sendonly urn:x",
    ] {
        assert_eq!(
            error_of(&audio_with(&[line])),
            SdpError::InvalidExtmapId { line: 6 },
            "{line}"
        );
    }
}

#[test]
fn error_invalid_fingerprint() {
    let good = ["3B"; 32].join(":");
    let mut bad_hex = ["3B"; 32];
    bad_hex[7] = "G0";
    for value in [
        format!("sha-256 {}", bad_hex.join(":")),
        format!("sha-256 {}", ["3B"; 31].join(":")),
        format!("sha-256 {good}:3B"),
        format!("md5 {}", ["3B"; 16].join(":")),
        format!("sha-256 {}", good.replace(':', "")),
        format!("sha-256 {good} extra"),
        "sha-256".to_owned(),
    ] {
        let line = format!("a=fingerprint:{value}");
        assert_eq!(
            error_of(&audio_with(&[&line])),
            SdpError::InvalidFingerprint { line: 6 },
            "{value}"
        );
        let text = format!("{HEADER}{line}\r\n");
        assert_eq!(error_of(&text), SdpError::InvalidFingerprint { line: 5 });
    }
}

#[test]
fn error_invalid_attribute() {
    use AttributeKind as K;
    for (line, attribute) in [
        ("a=mid", K::Mid),
        ("a=mid:a b", K::Mid),
        ("a=sendrecv:x", K::Direction),
        ("a=rtcp-mux:1", K::RtcpMux),
        ("a=setup:client", K::Setup),
        ("a=ice-ufrag:abc", K::IceUfrag),
        ("a=ice-pwd:short", K::IcePwd),
        ("a=ice-options:", K::IceOptions),
        ("a=candidate:1 1 udp 1 h 9 typ nat", K::Candidate),
        ("a=rtpmap:96 VP8", K::Rtpmap),
        ("a=fmtp:96 =1", K::Fmtp),
        ("a=rtcp-fb:96", K::RtcpFb),
        ("a=extmap:1/sideways urn:x", K::Extmap),
        ("a=ssrc:1", K::Ssrc),
        ("a=ssrc:x cname:a", K::Ssrc),
        ("a=ssrc-group:FID", K::SsrcGroup),
        ("a=msid:a b c", K::Msid),
        ("a=rid:h sideways", K::Rid),
        ("a=rid:h.1 send", K::Rid),
        ("a=simulcast:send h;;l", K::Simulcast),
        ("a=sctp-port:65536", K::SctpPort),
        ("a=max-message-size:big", K::MaxMessageSize),
        ("a=end-of-candidates:now", K::EndOfCandidates),
    ] {
        assert_eq!(
            error_of(&audio_with(&[line])),
            SdpError::InvalidAttribute { line: 6, attribute },
            "{line}"
        );
    }
    for (line, attribute) in [
        ("a=group", K::Group),
        ("a=ice-lite:yes", K::IceLite),
        ("a=msid-semantic:", K::MsidSemantic),
        ("a=extmap-allow-mixed:1", K::ExtmapAllowMixed),
    ] {
        let text = format!("{HEADER}{line}\r\n");
        assert_eq!(
            error_of(&text),
            SdpError::InvalidAttribute { line: 5, attribute },
            "{line}"
        );
    }
}

#[test]
fn error_duplicate_attribute() {
    use AttributeKind as K;
    for (lines, attribute) in [
        (["a=mid:0", "a=mid:1"], K::Mid),
        (["a=sendrecv", "a=recvonly"], K::Direction),
        (
            ["a=rtpmap:96 VP8/90000", "a=rtpmap:96 VP9/90000"],
            K::Rtpmap,
        ),
        (["a=fmtp:96 a=1", "a=fmtp:96 b=2"], K::Fmtp),
        (["a=extmap:1 urn:a", "a=extmap:1 urn:b"], K::Extmap),
        (["a=rid:h send", "a=rid:h recv"], K::Rid),
        (["a=simulcast:send a", "a=simulcast:recv b"], K::Simulcast),
        (["a=setup:active", "a=setup:active"], K::Setup),
        (["a=rtcp-mux", "a=rtcp-mux"], K::RtcpMux),
        (["a=ice-ufrag:abcd", "a=ice-ufrag:efgh"], K::IceUfrag),
        (
            ["a=ice-options:trickle", "a=ice-options:trickle"],
            K::IceOptions,
        ),
        (["a=sctp-port:5000", "a=sctp-port:5001"], K::SctpPort),
    ] {
        assert_eq!(
            error_of(&audio_with(&lines)),
            SdpError::DuplicateAttribute { line: 7, attribute },
            "{lines:?}"
        );
    }
    let text = format!("{HEADER}a=ice-lite\r\na=ice-lite\r\n");
    assert_eq!(
        error_of(&text),
        SdpError::DuplicateAttribute {
            line: 6,
            attribute: K::IceLite
        }
    );
}

#[test]
fn errors_never_carry_peer_text() {
    let error = error_of(&audio_with(&["a=mid:secret value"]));
    assert_eq!(error.to_string(), "line 6: a=mid has an invalid value");
    assert!(!format!("{error:?}").contains("secret"));
}
