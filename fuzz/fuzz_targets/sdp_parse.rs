//! Any text into the SDP reader: an error or a description, never a panic. What it accepts
//! round-trips: writing it and reading that back gives the same description, the writer's
//! text is stable and never longer than the input (line endings counted as CRLF), and every
//! query answers.
#![no_main]

use kammer_core::media::sdp::{RidDirection, SessionDescription};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(description) = SessionDescription::parse(text) else {
        return;
    };
    let written = description.to_sdp_string();
    let canonical: usize = text.lines().map(|line| line.len() + 2).sum();
    assert!(
        written.len() <= canonical,
        "the writer made the text longer"
    );
    let again = SessionDescription::parse(&written).expect("what the writer writes parses");
    assert_eq!(again, description, "the round trip changed the description");
    assert_eq!(again.to_sdp_string(), written, "writing is not stable");

    let _ = description.bundle_group();
    for media in &description.media {
        let _ = (
            description.fingerprints_of(media),
            description.setup_of(media),
            description.ice_ufrag_of(media),
            description.ice_pwd_of(media),
            media.direction(),
            media.is_rejected(),
            media.fid_pairs(),
            media.simulcast_rids(RidDirection::Send),
            media.simulcast_rids(RidDirection::Recv),
        );
        for sender in media.sender_ssrcs() {
            assert_ne!(Some(sender.ssrc), sender.rtx);
            let _ = media.ssrc_attribute(sender.ssrc, "cname");
        }
        for codec in media.codecs() {
            assert!(media.payload_types().contains(&codec.payload_type));
            if let Some(apt) = codec.associated_payload_type() {
                assert!(apt <= 127);
            }
            let _ = media.rtx_payload_type(codec.payload_type);
        }
        for extmap in &media.extmaps {
            assert_ne!(extmap.id, 0);
            assert_eq!(media.extmap_id(&extmap.uri).map(|id| id != 0), Some(true));
        }
        if let Some(mid) = &media.mid {
            assert!(description.media_by_mid(mid).is_some());
        }
    }
});
