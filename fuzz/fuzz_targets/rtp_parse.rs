//! Any bytes into the RTP parser: an error or a packet, never a panic. Header, payload and
//! padding add up to the packet; extension elements lie inside the extension block; the
//! in-place rewrites change exactly the fields they name.
#![no_main]

use kammer_core::media::rtp::{
    ONE_BYTE_PROFILE, RtpPacket, rewrite_extension, rewrite_sequence, rewrite_ssrc,
    rewrite_timestamp,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = RtpPacket::parse_header(data) {
        assert_eq!(header.payload_range().end, data.len());
        let _ = header.extensions().count();
    }
    let Ok(packet) = RtpPacket::parse(data) else {
        return;
    };
    assert_eq!(
        packet.header_len() + packet.payload().len() + packet.padding_len(),
        data.len()
    );
    assert_eq!(&data[packet.payload_range()], packet.payload());
    assert_eq!(packet.csrcs().count(), usize::from(packet.csrc_count()));
    let header = RtpPacket::parse_header(data).expect("a packet that parses has a valid header");
    assert_eq!(header.header_len(), packet.header_len());

    let block = packet.extension_data().unwrap_or(&[]).as_ptr_range();
    let one_byte = packet.extension_profile() == Some(ONE_BYTE_PROFILE);
    for (id, value) in packet.extensions() {
        assert_ne!(id, 0);
        let range = value.as_ptr_range();
        assert!(block.start <= range.start && range.end <= block.end);
        if one_byte {
            assert!(id < 15 && (1..=16).contains(&value.len()));
        }
    }

    let mut copy = data.to_vec();
    rewrite_sequence(&mut copy, !packet.sequence()).expect("valid header");
    rewrite_timestamp(&mut copy, !packet.timestamp()).expect("valid header");
    rewrite_ssrc(&mut copy, !packet.ssrc()).expect("valid header");
    // Each element's ID gets the bitwise inverse of the first value with that ID.
    for (id, _) in packet.extensions() {
        let first = packet.extension(id).expect("the ID was just seen");
        let value: Vec<u8> = first.iter().map(|b| !b).collect();
        rewrite_extension(&mut copy, id, &value).expect("same length");
    }
    let changed = RtpPacket::parse(&copy).expect("rewrites keep the packet valid");
    assert_eq!(changed.sequence(), !packet.sequence());
    assert_eq!(changed.timestamp(), !packet.timestamp());
    assert_eq!(changed.ssrc(), !packet.ssrc());
    assert_eq!(changed.payload(), packet.payload());
    assert_eq!(changed.marker(), packet.marker());
    assert_eq!(changed.payload_type(), packet.payload_type());
    assert_eq!(changed.extensions().count(), packet.extensions().count());
    for (id, _) in packet.extensions() {
        let first = packet.extension(id).expect("the ID was just seen");
        let inverted: Vec<u8> = first.iter().map(|b| !b).collect();
        assert_eq!(changed.extension(id), Some(&inverted[..]));
    }
});
