//! Any bytes into the RTCP compound parser: an error or a compound, never a panic. Every packet
//! of an accepted compound is yielded, and reports, NACK, PLI and FIR re-encode to packets that
//! parse back to the same content.
#![no_main]

use kammer_core::media::rtcp::{
    RtcpCompound, RtcpError, RtcpPacket, encode_fir, encode_nack, encode_pli,
    encode_receiver_report,
};
use libfuzzer_sys::fuzz_target;

fn single(bytes: &[u8]) -> RtcpPacket<'_> {
    let compound = RtcpCompound::parse(bytes).expect("our packets parse");
    let mut packets = compound.packets();
    let packet = packets.next().expect("one packet");
    assert!(packets.next().is_none());
    packet
}

fuzz_target!(|data: &[u8]| {
    let Ok(compound) = RtcpCompound::parse(data) else {
        return;
    };
    assert!(compound.packets().count() >= 1);
    let mut out = Vec::new();
    for packet in compound {
        out.clear();
        match packet {
            RtcpPacket::SenderReport(sr) => {
                let blocks: Vec<_> = sr.report_blocks().collect();
                encode_receiver_report(sr.ssrc, &blocks, &mut out).expect("at most 31 blocks");
                let RtcpPacket::ReceiverReport(rr) = single(&out) else {
                    panic!("RR expected");
                };
                assert_eq!(rr.ssrc, sr.ssrc);
                assert_eq!(rr.report_blocks().collect::<Vec<_>>(), blocks);
            }
            RtcpPacket::ReceiverReport(rr) => {
                let blocks: Vec<_> = rr.report_blocks().collect();
                encode_receiver_report(rr.ssrc, &blocks, &mut out).expect("at most 31 blocks");
                assert_eq!(single(&out), RtcpPacket::ReceiverReport(rr));
            }
            RtcpPacket::Nack(nack) => {
                let lost: Vec<u16> = nack.lost().collect();
                assert!(lost.len() >= nack.entries().len());
                match encode_nack(nack.sender_ssrc, nack.media_ssrc, &lost, &mut out) {
                    Ok(()) => {
                        let RtcpPacket::Nack(again) = single(&out) else {
                            panic!("NACK expected");
                        };
                        let mut before = lost.clone();
                        let mut after: Vec<u16> = again.lost().collect();
                        before.sort_unstable();
                        before.dedup();
                        after.sort_unstable();
                        after.dedup();
                        assert_eq!(before, after);
                    }
                    Err(error) => assert_eq!(error, RtcpError::TooLong),
                }
            }
            RtcpPacket::Pli(ids) => {
                encode_pli(ids.sender_ssrc, ids.media_ssrc, &mut out);
                assert_eq!(single(&out), RtcpPacket::Pli(ids));
            }
            RtcpPacket::Fir(fir) => {
                let entries: Vec<_> = fir.entries().collect();
                encode_fir(fir.sender_ssrc, &entries, &mut out).expect("at least one entry");
                let RtcpPacket::Fir(again) = single(&out) else {
                    panic!("FIR expected");
                };
                assert_eq!(again.entries().collect::<Vec<_>>(), entries);
            }
            RtcpPacket::Remb(remb) => {
                let _ = (remb.bitrate, remb.ssrcs().count());
            }
            RtcpPacket::Goodbye(bye) => {
                let _ = bye.sources().count();
            }
            RtcpPacket::SourceDescription
            | RtcpPacket::App
            | RtcpPacket::TransportCc(_)
            | RtcpPacket::Other { .. } => {}
        }
    }
});
