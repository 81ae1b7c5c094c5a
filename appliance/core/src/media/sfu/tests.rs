//! The SFU with test peers (`media::peer`) in simulated time: real ICE checks, DTLS handshakes
//! and SRTP on synthesised packets, carried by a small loop instead of sockets.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use core::net::SocketAddr;

use super::*;
use crate::media::dtls::{DtlsCertificate, DtlsConfig, DtlsEndpoint};
use crate::media::peer::{OPUS_PT, OutgoingTrack, Peer, VP8_PT, rtp_packet};
use crate::media::rtcp::{RtcpCompound, RtcpPacket, encode_nack, encode_pli};
use crate::media::rtp::RtpPacket;
use crate::media::sdp::{MediaKind, SessionDescription};

/// The start of simulated time: the one clock read, in tests only.
#[cfg(test)]
fn clock() -> Instant {
    Instant::now()
}

const ROOM: &str = "lage";
const MIC_SSRC: u32 = 0x1111;
const CAM_SSRC: u32 = 0x2222;

fn sfu_address() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], 3478))
}

fn peer_address(n: u16) -> SocketAddr {
    SocketAddr::from(([198, 51, 100, 7], 50_000 + n))
}

fn certificate() -> DtlsCertificate {
    static CERTIFICATE: OnceLock<DtlsCertificate> = OnceLock::new();
    CERTIFICATE
        .get_or_init(|| DtlsCertificate::generate().expect("a certificate"))
        .clone()
}

struct Counter(u8);

impl Entropy for Counter {
    fn fill(&mut self, buf: &mut [u8]) {
        for byte in buf {
            self.0 = self.0.wrapping_add(37);
            *byte = self.0;
        }
    }
}

/// One participant: its two test peers (publish, subscribe).
struct Member {
    id: u64,
    publish: Peer,
    subscribe: Peer,
    offers: Vec<(u64, String, Vec<SubscribeTrack>)>,
    /// Whether this member answers offers (a stuck client does not).
    answers: bool,
}

struct Net {
    sfu: Sfu<Counter>,
    members: Vec<Member>,
    now: Instant,
    refused: Vec<(u64, ErrorCode)>,
}

impl Net {
    fn new() -> Self {
        let dtls = DtlsEndpoint::new(DtlsConfig::default(), certificate()).expect("endpoint");
        let config = SfuConfig {
            candidates: vec![sfu_address()],
            ..SfuConfig::default()
        };
        Self {
            sfu: Sfu::new(config, dtls, Counter(0)),
            members: Vec::new(),
            now: clock(),
            refused: Vec::new(),
        }
    }

    fn join(&mut self, id: u64) -> usize {
        let n = u16::try_from(id).expect("small ids");
        self.members.push(Member {
            id,
            publish: Peer::new(peer_address(2 * n), certificate(), 2 * id),
            subscribe: Peer::new(peer_address(2 * n + 1), certificate(), 2 * id + 1),
            offers: Vec::new(),
            answers: true,
        });
        self.sfu.handle_command(
            self.now,
            MediaCommand::Join {
                participant: id,
                room: ROOM.to_owned(),
            },
        );
        self.settle();
        self.members.len() - 1
    }

    fn member(&mut self, id: u64) -> &mut Member {
        self.members
            .iter_mut()
            .find(|member| member.id == id)
            .expect("a member")
    }

    /// Publishes microphone (mid 0) and camera (mid 1) for `id`.
    fn publish(&mut self, id: u64) {
        let tracks = [
            OutgoingTrack {
                mid: "0",
                kind: MediaKind::Audio,
                ssrc: MIC_SSRC + u32::try_from(id).expect("small"),
            },
            OutgoingTrack {
                mid: "1",
                kind: MediaKind::Video,
                ssrc: CAM_SSRC + u32::try_from(id).expect("small"),
            },
        ];
        let offer = self.member(id).publish.publish_offer(&tracks);
        self.sfu.handle_command(
            self.now,
            MediaCommand::Publish {
                participant: id,
                sdp: offer,
                tracks: vec![
                    PublishTrack {
                        mid: "0".to_owned(),
                        source: TrackSource::Microphone,
                    },
                    PublishTrack {
                        mid: "1".to_owned(),
                        source: TrackSource::Camera,
                    },
                ],
            },
        );
        self.settle();
    }

    /// Moves events and datagrams until nothing moves; peers answer offers at once.
    fn settle(&mut self) {
        self.settle_dropping(|_, _| false);
    }

    /// Like [`Self::settle`], but datagrams from the SFU for which `lose` says so are lost.
    fn settle_dropping(&mut self, mut lose: impl FnMut(SocketAddr, &[u8]) -> bool) {
        for _ in 0..1000 {
            let mut moved = false;
            while let Some(event) = self.sfu.poll_event() {
                moved = true;
                self.deliver_event(event);
            }
            while let Some(mut transmit) = self.sfu.poll_transmit() {
                moved = true;
                if lose(transmit.destination, &transmit.payload) {
                    continue;
                }
                let now = self.now;
                for member in &mut self.members {
                    for peer in [&mut member.publish, &mut member.subscribe] {
                        if peer.local() == transmit.destination {
                            peer.handle_datagram(now, sfu_address(), &mut transmit.payload);
                        }
                    }
                }
            }
            for index in 0..self.members.len() {
                for which in 0..2 {
                    loop {
                        let member = &mut self.members[index];
                        let peer = if which == 0 {
                            &mut member.publish
                        } else {
                            &mut member.subscribe
                        };
                        let Some(mut transmit) = peer.poll_transmit() else {
                            break;
                        };
                        let source = peer.local();
                        moved = true;
                        self.sfu
                            .handle_datagram(self.now, source, &mut transmit.payload);
                    }
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the network did not settle");
    }

    fn deliver_event(&mut self, event: MediaEvent) {
        let now = self.now;
        match event {
            MediaEvent::PublishAnswer { participant, sdp } => {
                self.member(participant)
                    .publish
                    .apply_remote(now, &sdp)
                    .expect("a usable answer");
            }
            MediaEvent::SubscribeOffer {
                participant,
                version,
                sdp,
                tracks,
            } => {
                let member = self.member(participant);
                member.offers.push((version, sdp.clone(), tracks));
                if !member.answers {
                    return;
                }
                let answer = member.subscribe.subscribe_answer(&sdp).expect("an answer");
                self.sfu.handle_command(
                    now,
                    MediaCommand::SubscribeAnswer {
                        participant,
                        version,
                        sdp: answer,
                    },
                );
                self.member(participant)
                    .subscribe
                    .apply_remote(now, &sdp)
                    .expect("a usable offer");
            }
            MediaEvent::Refused { participant, code } => self.refused.push((participant, code)),
            MediaEvent::Reset { .. } => panic!("the SFU never resets its own participants"),
        }
    }

    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        loop {
            let next = self
                .members
                .iter()
                .flat_map(|m| [m.publish.poll_timeout(), m.subscribe.poll_timeout()])
                .chain([self.sfu.poll_timeout()])
                .flatten()
                .filter(|at| *at <= end)
                .min();
            let Some(at) = next else {
                break;
            };
            self.now = at.max(self.now);
            let now = self.now;
            self.sfu.handle_timeout(now);
            for member in &mut self.members {
                member.publish.handle_timeout(now);
                member.subscribe.handle_timeout(now);
            }
            self.settle();
        }
        self.now = end;
    }

    /// `id` sends one RTP packet on its camera (or microphone) track; returns the SRTP bytes.
    fn send(&mut self, id: u64, video: bool, sequence: u16) -> Vec<u8> {
        let offset = u32::try_from(id).expect("small");
        let (pt, ssrc, mid) = if video {
            (VP8_PT, CAM_SSRC + offset, "1")
        } else {
            (OPUS_PT, MIC_SSRC + offset, "0")
        };
        let payload = [sequence as u8; 100];
        let packet = rtp_packet(
            pt,
            sequence,
            u32::from(sequence) * 3000,
            ssrc,
            mid,
            &payload,
        );
        self.member(id)
            .publish
            .send_rtp(&packet)
            .expect("the publisher is connected")
    }

    fn received(&mut self, id: u64) -> Vec<Vec<u8>> {
        let peer = &mut self.member(id).subscribe;
        std::iter::from_fn(|| peer.poll_rtp()).collect()
    }
}

/// Alice (1) publishes, Bob (2) receives; both connected.
fn two() -> Net {
    let mut net = Net::new();
    net.join(1);
    net.join(2);
    net.publish(1);
    net.advance(Duration::from_millis(100));
    assert!(net.member(1).publish.is_connected(), "publisher connected");
    assert!(
        net.member(2).subscribe.is_connected(),
        "subscriber connected"
    );
    net
}

#[test]
fn forwards_each_packet_with_the_subscribers_payload_type_and_mid() {
    let mut net = two();
    let (version, sdp, tracks) = net.member(2).offers.last().cloned().expect("an offer");
    assert_eq!(version, 1);
    assert_eq!(tracks.len(), 2);
    assert!(tracks.iter().all(|track| track.participant == 1));
    let camera = tracks
        .iter()
        .find(|track| track.source == TrackSource::Camera)
        .expect("camera offered");
    let offer = SessionDescription::parse(&sdp).expect("our offer parses");
    assert!(offer.ice_lite);
    for sequence in 1..=10 {
        net.send(1, true, sequence);
        net.send(1, false, sequence);
    }
    net.settle();
    let received = net.received(2);
    assert_eq!(received.len(), 20);
    let video: Vec<RtpPacket<'_>> = received
        .iter()
        .map(|bytes| RtpPacket::parse(bytes).expect("RTP"))
        .filter(|packet| packet.ssrc() == CAM_SSRC + 1)
        .collect();
    assert_eq!(video.len(), 10);
    for (packet, sequence) in video.iter().zip(1u16..) {
        assert_eq!(packet.payload_type(), 96, "VP8 with our payload type");
        assert_eq!(packet.sequence(), sequence);
        assert_eq!(packet.extension(4), Some(camera.mid.as_bytes()));
        assert_eq!(packet.payload(), &[sequence as u8; 100][..]);
    }
    let audio = received
        .iter()
        .map(|bytes| RtpPacket::parse(bytes).expect("RTP"))
        .find(|packet| packet.ssrc() == MIC_SSRC + 1)
        .expect("audio forwarded");
    assert_eq!(audio.payload_type(), 111);
    assert_eq!(net.sfu.stats().rtp_forwarded, 20);
}

#[test]
fn four_participants_each_receive_the_three_others() {
    let mut net = Net::new();
    for id in 1..=4 {
        net.join(id);
    }
    for id in 1..=4 {
        net.publish(id);
    }
    net.advance(Duration::from_millis(100));
    for id in 1..=4 {
        net.send(id, true, 7);
    }
    net.settle();
    for id in 1..=4 {
        let ssrcs: Vec<u32> = net
            .received(id)
            .iter()
            .map(|bytes| RtpPacket::parse(bytes).expect("RTP").ssrc())
            .collect();
        let mut expected: Vec<u32> = (1..=4)
            .filter(|other| *other != id)
            .map(|other| CAM_SSRC + u32::try_from(other).expect("small"))
            .collect();
        let mut got = ssrcs.clone();
        got.sort_unstable();
        expected.sort_unstable();
        assert_eq!(
            got, expected,
            "participant {id} gets each other camera once"
        );
        let (_, _, tracks) = net.member(id).offers.last().cloned().expect("offers");
        assert_eq!(tracks.len(), 6, "three others, two tracks each");
    }
}

#[test]
fn nack_is_answered_from_the_cache() {
    let mut net = two();
    for sequence in 1..=5 {
        net.send(1, true, sequence);
    }
    let bob = net.member(2).subscribe.local();
    // The network loses Bob's copy of packet 3.
    net.settle_dropping(|destination, bytes| {
        destination == bob
            && RtpPacket::parse_header(bytes).is_ok_and(|packet| packet.sequence() == 3)
    });
    let first: Vec<u16> = net
        .received(2)
        .iter()
        .map(|bytes| RtpPacket::parse(bytes).expect("RTP").sequence())
        .collect();
    assert_eq!(first, [1, 2, 4, 5]);
    let mut nack = Vec::new();
    encode_nack(0xB0B, CAM_SSRC + 1, &[3, 900], &mut nack).expect("a NACK");
    net.member(2).subscribe.send_rtcp(&nack).expect("connected");
    net.settle();
    let again: Vec<u16> = net
        .received(2)
        .iter()
        .map(|bytes| RtpPacket::parse(bytes).expect("RTP").sequence())
        .collect();
    assert_eq!(again, [3], "the lost packet came again and decrypts");
    assert_eq!(net.sfu.stats().nack_resent, 1);
    assert_eq!(net.sfu.stats().nack_missed, 1, "900 was never sent");
}

fn plis_received(net: &mut Net, id: u64) -> Vec<u32> {
    let peer = &mut net.member(id).publish;
    let compounds: Vec<Vec<u8>> = std::iter::from_fn(|| peer.poll_rtcp()).collect();
    let mut media = Vec::new();
    for compound in &compounds {
        for packet in RtcpCompound::parse(compound).expect("RTCP").packets() {
            if let RtcpPacket::Pli(feedback) = packet {
                media.push(feedback.media_ssrc);
            }
        }
    }
    media
}

#[test]
fn pli_reaches_the_publisher_at_most_once_per_interval() {
    let mut net = two();
    // Bob's connection already asked for a key frame on his behalf.
    assert_eq!(plis_received(&mut net, 1), [CAM_SSRC + 1]);
    net.advance(Duration::from_secs(1));
    let mut pli = Vec::new();
    encode_pli(0xB0B, CAM_SSRC + 1, &mut pli);
    net.member(2).subscribe.send_rtcp(&pli).expect("connected");
    net.member(2).subscribe.send_rtcp(&pli).expect("connected");
    net.settle();
    assert_eq!(
        plis_received(&mut net, 1),
        [CAM_SSRC + 1],
        "second one throttled"
    );
    net.advance(Duration::from_millis(400));
    net.member(2).subscribe.send_rtcp(&pli).expect("connected");
    net.settle();
    assert_eq!(plis_received(&mut net, 1), [CAM_SSRC + 1]);
}

#[test]
fn replayed_and_forged_srtp_is_dropped_and_counted() {
    let mut net = two();
    let protected = net.send(1, true, 1);
    net.settle();
    assert_eq!(net.received(2).len(), 1);
    let mut forged = net.send(1, true, 2);
    net.member(1).publish.poll_transmit();
    net.member(1).publish.send_raw(protected);
    let last = forged.len() - 1;
    forged[last] ^= 1;
    net.member(1).publish.send_raw(forged);
    net.settle();
    assert!(net.received(2).is_empty());
    assert_eq!(net.sfu.stats().dropped(DropReason::SrtpReplay), 1);
    assert_eq!(net.sfu.stats().dropped(DropReason::SrtpAuth), 1);
}

#[test]
fn garbage_strangers_and_unknown_ssrcs_are_counted_not_forwarded() {
    let mut net = two();
    let now = net.now;
    let stranger = SocketAddr::from(([203, 0, 113, 9], 4000));
    let mut rtp = rtp_packet(96, 1, 1, 5, "0", &[0; 40]);
    net.sfu.handle_datagram(now, stranger, &mut rtp);
    net.sfu.handle_datagram(now, stranger, &mut [0xFF, 0, 1]);
    net.sfu.handle_datagram(now, stranger, &mut []);
    net.sfu
        .handle_datagram(now, stranger, &mut [0, 1, 0, 4, 0x21, 0x12, 0xA4, 0x42]);
    let mut dtls = vec![22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    net.sfu.handle_datagram(now, stranger, &mut dtls);
    let unknown = rtp_packet(VP8_PT, 1, 1, 0xDEAD, "9", &[1; 40]);
    net.member(1).publish.send_rtp(&unknown).expect("connected");
    net.settle();
    let stats = net.sfu.stats();
    assert_eq!(stats.dropped(DropReason::UnknownSource), 2, "RTP and DTLS");
    assert_eq!(stats.dropped(DropReason::UnknownKind), 2);
    assert_eq!(stats.dropped(DropReason::StunMalformed), 1);
    assert_eq!(stats.dropped(DropReason::UnknownSsrc), 1);
    assert!(net.received(2).is_empty());
    // The session is unharmed.
    net.send(1, true, 2);
    net.settle();
    assert_eq!(net.received(2).len(), 1);
}

#[test]
fn a_leaving_publisher_ends_its_tracks_for_the_others() {
    let mut net = two();
    net.sfu
        .handle_command(net.now, MediaCommand::Leave { participant: 1 });
    net.members.retain(|member| member.id != 1);
    net.settle();
    let (version, sdp, tracks) = net.member(2).offers.last().cloned().expect("an offer");
    assert_eq!(version, 2);
    assert!(tracks.is_empty());
    let offer = SessionDescription::parse(&sdp).expect("parses");
    assert_eq!(offer.media.len(), 2, "the sections stay, rejected");
    assert!(offer.media.iter().all(|media| media.is_rejected()));
    assert!(net.refused.is_empty());
}

#[test]
fn a_late_joiner_gets_the_existing_tracks_and_the_publisher_a_key_frame_request() {
    let mut net = two();
    plis_received(&mut net, 1);
    net.advance(Duration::from_secs(1));
    net.join(3);
    net.advance(Duration::from_millis(100));
    let (_, _, tracks) = net.member(3).offers.last().cloned().expect("an offer");
    assert_eq!(tracks.len(), 2);
    assert_eq!(plis_received(&mut net, 1), [CAM_SSRC + 1]);
    net.send(1, true, 1);
    net.settle();
    assert_eq!(net.received(3).len(), 1);
    assert_eq!(net.received(2).len(), 1);
}

#[test]
fn sender_reports_are_forwarded_and_receiver_reports_sent() {
    let mut net = two();
    for sequence in 1..=3 {
        net.send(1, true, sequence);
    }
    let mut report = vec![0x80, 200, 0, 6];
    report.extend_from_slice(&(CAM_SSRC + 1).to_be_bytes());
    report.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
    report.extend_from_slice(&[0; 12]);
    net.member(1).publish.send_rtcp(&report).expect("connected");
    net.settle();
    let peer = &mut net.member(2).subscribe;
    let forwarded: Vec<Vec<u8>> = std::iter::from_fn(|| peer.poll_rtcp()).collect();
    assert!(forwarded.iter().any(|compound| {
        RtcpCompound::parse(compound).is_ok_and(|c| {
            c.packets().any(|p| {
                matches!(p, RtcpPacket::SenderReport(sr) if sr.ssrc == CAM_SSRC + 1 && sr.ntp_time == 0x0102_0304_0506_0708)
            })
        })
    }));
    net.advance(Duration::from_millis(1100));
    let peer = &mut net.member(1).publish;
    let reports: Vec<Vec<u8>> = std::iter::from_fn(|| peer.poll_rtcp()).collect();
    let block = reports
        .iter()
        .filter_map(|compound| RtcpCompound::parse(compound).ok())
        .flat_map(|compound| compound.packets().collect::<Vec<_>>())
        .find_map(|packet| match packet {
            RtcpPacket::ReceiverReport(rr) => rr.report_blocks().next(),
            _ => None,
        })
        .expect("a receiver report with a block");
    assert_eq!(block.ssrc, CAM_SSRC + 1);
    assert_eq!(block.highest_sequence, 3);
    assert_eq!(block.cumulative_lost, 0);
    assert_eq!(block.last_sr, 0x0304_0506);
}

#[test]
fn bad_negotiation_is_refused_with_a_code() {
    let mut net = two();
    let now = net.now;
    net.sfu.handle_command(
        now,
        MediaCommand::Publish {
            participant: 2,
            sdp: "v=0\r\nnonsense".to_owned(),
            tracks: Vec::new(),
        },
    );
    let offer = net.member(2).publish.publish_offer(&[OutgoingTrack {
        mid: "0",
        kind: MediaKind::Audio,
        ssrc: 5,
    }]);
    net.sfu.handle_command(
        now,
        MediaCommand::Publish {
            participant: 2,
            sdp: offer,
            tracks: vec![PublishTrack {
                mid: "0".to_owned(),
                source: TrackSource::Camera,
            }],
        },
    );
    net.sfu.handle_command(
        now,
        MediaCommand::SubscribeAnswer {
            participant: 2,
            version: 7,
            sdp: String::new(),
        },
    );
    net.settle();
    assert_eq!(
        net.refused,
        [
            (2, ErrorCode::InvalidSdp),
            (2, ErrorCode::InvalidTracks),
            (2, ErrorCode::StaleAnswer),
        ]
    );
    // Alice's media is unaffected.
    net.send(1, true, 1);
    net.settle();
    assert_eq!(net.received(2).len(), 1);
}

#[test]
fn an_ice_path_switch_after_the_handshake_keeps_media_flowing() {
    let mut net = two();
    let now = net.now;
    let publisher_moved = SocketAddr::from(([198, 51, 100, 8], 40_001));
    let subscriber_moved = SocketAddr::from(([198, 51, 100, 8], 40_002));
    net.member(1).publish.move_to(now, publisher_moved);
    net.member(2).subscribe.move_to(now, subscriber_moved);
    net.settle();
    net.send(1, true, 1);
    net.settle();
    assert_eq!(
        net.received(2).len(),
        1,
        "sent from and to the new addresses"
    );
    assert_eq!(net.sfu.stats().dropped_total(), 0);
}

fn slot(kind: TrackKind, payload_type: u8) -> Slot {
    let codec = crate::media::sdp::Codec {
        payload_type,
        name: "VP8".to_owned(),
        clock_rate: 90_000,
        channels: None,
        parameters: Vec::new(),
        feedback: Vec::new(),
    };
    Slot {
        mid: "12".to_owned(),
        track: TrackKey {
            participant: 1,
            source: TrackSource::Camera,
            generation: 1,
        },
        kind,
        codec,
        ssrc: 7,
        live: true,
        offered: true,
        refused: false,
        ended_in: None,
        cache: NackCache::new(0),
    }
}

#[test]
fn headers_are_rewritten_with_the_subscribers_extension_ids() {
    // A publisher packet with CSRC, padding bit, and mid (4), audio level (1), send time (3).
    let mut packet = vec![0xB1, 0x80 | 120, 0, 9, 0, 0, 0, 5, 0, 0, 0, 7, 0, 0, 0, 42];
    packet.extend_from_slice(&[0xBE, 0xDE, 0, 3]);
    packet.extend_from_slice(&[0x40, b'1', 0x10, 0x85, 0x32, 0xAA, 0xBB, 0xCC, 0, 0, 0, 0]);
    packet.extend_from_slice(&[1, 2, 3, 0, 0, 2]);
    let parsed = RtpPacket::parse(&packet).expect("RTP");
    let values = ExtensionValues {
        audio_level: parsed.extension(1).map(|v| v[0]),
        abs_send_time: parsed
            .extension(3)
            .and_then(|v| <[u8; 3]>::try_from(v).ok()),
    };
    let ids = Extensions {
        mid: Some(9),
        audio_level: Some(2),
        abs_send_time: Some(5),
    };
    let mut out = Vec::new();
    write_header(&mut out, &parsed, &slot(TrackKind::Video, 96), ids, values);
    out.extend_from_slice(&packet[parsed.header_len()..]);
    let rewritten = RtpPacket::parse(&out).expect("rewritten RTP");
    assert_eq!(rewritten.payload_type(), 96);
    assert!(rewritten.marker());
    assert_eq!(rewritten.sequence(), 9);
    assert_eq!(rewritten.csrcs().collect::<Vec<_>>(), [42]);
    assert_eq!(rewritten.extension(9), Some(&b"12"[..]));
    assert_eq!(rewritten.extension(5), Some(&[0xAA, 0xBB, 0xCC][..]));
    assert_eq!(rewritten.extension(2), None, "no audio level on video");
    assert_eq!(rewritten.payload(), parsed.payload());
    assert_eq!(rewritten.padding_len(), 2);

    let mut out = Vec::new();
    write_header(&mut out, &parsed, &slot(TrackKind::Audio, 111), ids, values);
    out.extend_from_slice(&packet[parsed.header_len()..]);
    let audio = RtpPacket::parse(&out).expect("rewritten RTP");
    assert_eq!(audio.extension(2), Some(&[0x85][..]));
    assert_eq!(audio.extension(5), None, "no send time on audio");
}

#[test]
fn codecs_are_chosen_vp8_then_vp9_then_h264_and_opus_for_audio() {
    let offer = |m: &str| {
        SessionDescription::parse(&format!(
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n{m}"
        ))
        .expect("parses")
    };
    let video = offer(
        "m=video 9 UDP/TLS/RTP/SAVPF 100 101 102\r\na=rtpmap:100 H264/90000\r\na=fmtp:100 packetization-mode=1;profile-level-id=42e01f\r\na=rtpmap:101 VP9/90000\r\na=fmtp:101 profile-id=2\r\na=rtpmap:102 VP9/90000\r\na=fmtp:102 profile-id=0\r\na=rtcp-fb:102 nack\r\na=rtcp-fb:102 goog-remb\r\n",
    );
    let chosen = negotiate::choose_codec_for_tests(&video.media[0]).expect("a codec");
    assert!(chosen.is("VP9"));
    assert_eq!(chosen.payload_type, 102, "profile 0, not 2");
    assert_eq!(chosen.feedback.len(), 1, "goog-remb dropped");
    assert_eq!(negotiate::canonical(&chosen).payload_type, 98);
    let h264_only = offer(
        "m=video 9 UDP/TLS/RTP/SAVPF 100 103\r\na=rtpmap:100 H264/90000\r\na=fmtp:100 packetization-mode=0\r\na=rtpmap:103 H264/90000\r\na=fmtp:103 packetization-mode=1\r\n",
    );
    let chosen = negotiate::choose_codec_for_tests(&h264_only.media[0]).expect("a codec");
    assert_eq!(chosen.payload_type, 103, "packetization-mode 1 only");
    let audio = offer("m=audio 9 UDP/TLS/RTP/SAVPF 0 111\r\na=rtpmap:111 opus/48000/2\r\n");
    let chosen = negotiate::choose_codec_for_tests(&audio.media[0]).expect("a codec");
    assert!(chosen.is("opus"));
    let none = offer("m=audio 9 UDP/TLS/RTP/SAVPF 0 8\r\n");
    assert!(negotiate::choose_codec_for_tests(&none.media[0]).is_none());
}

#[test]
fn a_section_not_in_the_track_list_stays_in_the_bundle_as_inactive() {
    let mut net = Net::new();
    net.join(1);
    net.join(2);
    let offer = net.member(1).publish.publish_offer(&[
        OutgoingTrack {
            mid: "0",
            kind: MediaKind::Audio,
            ssrc: 5,
        },
        OutgoingTrack {
            mid: "1",
            kind: MediaKind::Video,
            ssrc: 6,
        },
    ]);
    let now = net.now;
    net.sfu.handle_command(
        now,
        MediaCommand::Publish {
            participant: 1,
            sdp: offer,
            tracks: vec![PublishTrack {
                mid: "0".to_owned(),
                source: TrackSource::Microphone,
            }],
        },
    );
    let Some(MediaEvent::PublishAnswer { sdp, .. }) = net.sfu.poll_event() else {
        panic!("an answer");
    };
    let answer = SessionDescription::parse(&sdp).expect("parses");
    let camera = answer.media_by_mid("1").expect("camera section");
    assert!(!camera.is_rejected());
    assert_eq!(camera.direction(), crate::media::sdp::Direction::Inactive);
    assert_eq!(
        answer.bundle_group().expect("bundle").mids,
        ["0".to_owned(), "1".to_owned()]
    );
    let Some(MediaEvent::SubscribeOffer { tracks, .. }) = net.sfu.poll_event() else {
        panic!("Bob's offer");
    };
    assert_eq!(tracks.len(), 1, "only the microphone is published");
}

#[test]
fn sections_of_ended_tracks_are_recycled_in_long_meetings() {
    let mut net = two();
    for round in 0..40u64 {
        let id = 10 + round;
        net.join(id);
        net.publish(id);
        net.sfu
            .handle_command(net.now, MediaCommand::Leave { participant: id });
        net.members.retain(|member| member.id != id);
        net.settle();
    }
    let (_, sdp, tracks) = net.member(2).offers.last().cloned().expect("offers");
    let offer = SessionDescription::parse(&sdp).expect("parses");
    assert!(
        offer.media.len() <= RECYCLE_FROM + 2,
        "{} sections after 40 publishers came and went",
        offer.media.len()
    );
    assert_eq!(tracks.len(), 2, "Alice's two tracks are still received");
    net.advance(Duration::from_millis(100));
    net.send(1, true, 1);
    net.settle();
    assert_eq!(net.received(2).len(), 1);
    assert!(net.refused.is_empty(), "{:?}", net.refused);
}

#[test]
fn an_unanswered_offer_is_made_again_and_the_late_answer_is_stale() {
    let mut net = Net::new();
    net.join(1);
    net.join(2);
    net.member(2).answers = false;
    net.publish(1);
    assert_eq!(net.member(2).offers.len(), 1);
    net.advance(Duration::from_secs(5));
    assert_eq!(net.member(2).offers.len(), 1, "still waiting");
    net.advance(Duration::from_secs(6));
    let offers = net.member(2).offers.clone();
    assert_eq!(offers.len(), 2, "offered again after the answer timeout");
    assert_eq!(offers[1].0, 2);
    assert_eq!(offers[1].2, offers[0].2, "the same tracks");
    assert_eq!(net.sfu.stats().offers_repeated, 1);

    // The answer to the first version comes too late.
    let late = net
        .member(2)
        .subscribe
        .subscribe_answer(&offers[0].1)
        .expect("answer");
    let now = net.now;
    net.sfu.handle_command(
        now,
        MediaCommand::SubscribeAnswer {
            participant: 2,
            version: 1,
            sdp: late,
        },
    );
    net.settle();
    assert_eq!(net.refused, [(2, ErrorCode::StaleAnswer)]);

    // The current one works.
    let answer = net
        .member(2)
        .subscribe
        .subscribe_answer(&offers[1].1)
        .expect("answer");
    net.sfu.handle_command(
        now,
        MediaCommand::SubscribeAnswer {
            participant: 2,
            version: 2,
            sdp: answer,
        },
    );
    net.member(2)
        .subscribe
        .apply_remote(now, &offers[1].1)
        .expect("offer");
    net.advance(Duration::from_millis(200));
    net.send(1, true, 1);
    net.settle();
    assert_eq!(net.received(2).len(), 1);
}
