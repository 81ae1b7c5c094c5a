//! System test of the media plane of the real `kammer demo` binary over its real UDP port: two
//! signalling clients negotiate through `publish` / `subscribe_offer`, test peers (ICE, DTLS,
//! SRTP from `kammer-core`'s `peer` module) send and receive through real sockets, and bad
//! datagrams are dropped and counted in `/metrics`.

#[path = "support/mod.rs"]
mod support;

use std::net::UdpSocket;
use std::time::Instant;

use kammer_core::media::peer::{OutgoingTrack, VP8_PT, rtp_packet};
use kammer_core::media::rtp::RtpPacket;
use kammer_core::media::sdp::MediaKind;
use serde_json::json;
use support::Appliance;
use support::media::{Endpoint, media_port, meeting, run_until};

const CAMERA_SSRC: u32 = 0xCA11;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_flows_from_a_publisher_to_a_subscriber_through_the_udp_port() {
    let kammer = Appliance::demo();
    let (mut alice, mut bob, alice_id) = meeting(&kammer).await;
    let mut sender = Endpoint::new(1);
    let mut receiver = Endpoint::new(2);

    let offer = sender.peer.publish_offer(&[OutgoingTrack {
        mid: "0",
        kind: MediaKind::Video,
        ssrc: CAMERA_SSRC,
    }]);
    alice
        .send(
            json!({"type": "publish", "sdp": offer, "tracks": [{"mid": "0", "source": "camera"}]}),
        )
        .await;
    let answer = alice.recv_type("publish_answer").await;
    let answer = answer["sdp"].as_str().expect("sdp");
    let server = media_port(answer);
    assert!(
        server.ip().is_loopback(),
        "the demo announces loopback: {server}"
    );
    sender
        .peer
        .apply_remote(Instant::now(), answer)
        .expect("usable answer");

    let offer = bob.recv_type("subscribe_offer").await;
    assert_eq!(offer["version"], 1);
    assert_eq!(
        offer["tracks"],
        json!([{"mid": "0", "participant": alice_id, "source": "camera", "kind": "video"}])
    );
    let sdp = offer["sdp"].as_str().expect("sdp");
    let reply = receiver.peer.subscribe_answer(sdp).expect("answer");
    bob.send(json!({"type": "subscribe_answer", "version": 1, "sdp": reply}))
        .await;
    receiver
        .peer
        .apply_remote(Instant::now(), sdp)
        .expect("usable offer");

    run_until(&mut [&mut sender, &mut receiver], |e| {
        e[0].peer.is_connected() && e[1].peer.is_connected()
    })
    .await;

    for sequence in 1..=50u16 {
        let packet = rtp_packet(
            VP8_PT,
            sequence,
            u32::from(sequence) * 3000,
            CAMERA_SSRC,
            "0",
            &[7; 800],
        );
        sender.peer.send_rtp(&packet).expect("keyed");
    }
    let mut sequences = Vec::new();
    run_until(&mut [&mut sender, &mut receiver], |e| {
        while let Some(packet) = e[1].peer.poll_rtp() {
            let packet = RtpPacket::parse(&packet).expect("RTP");
            assert_eq!(packet.ssrc(), CAMERA_SSRC);
            assert_eq!(packet.payload_type(), 96);
            assert_eq!(packet.payload(), &[7; 800][..]);
            sequences.push(packet.sequence());
        }
        sequences.len() >= 50
    })
    .await;
    sequences.sort_unstable();
    assert_eq!(sequences, (1..=50).collect::<Vec<u16>>());

    // Datagrams from strangers and garbage are dropped and counted; the session goes on.
    let stranger = UdpSocket::bind("127.0.0.1:0").expect("bind");
    stranger.send_to(&[0xFF; 40], server).expect("send");
    let mut rtp = rtp_packet(96, 1, 1, 5, "0", &[0; 100]);
    stranger.send_to(&rtp, server).expect("send");
    rtp[0] = 0x00;
    stranger.send_to(&rtp[..30], server).expect("send");
    let packet = rtp_packet(VP8_PT, 51, 153_000, CAMERA_SSRC, "0", &[7; 800]);
    sender.peer.send_rtp(&packet).expect("keyed");
    run_until(&mut [&mut sender, &mut receiver], |e| {
        e[1].peer.poll_rtp().is_some()
    })
    .await;

    let (status, _, metrics) = kammer.get("/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "kammer_media_dropped_total{reason=\"unknown_kind\"} 1",
        "kammer_media_dropped_total{reason=\"unknown_source\"} 1",
        "kammer_media_dropped_total{reason=\"stun_malformed\"} 1",
        "kammer_media_transports_connected 2",
        "kammer_media_participants 2",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    let forwarded: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("kammer_media_rtp_forwarded_total "))
        .and_then(|value| value.parse().ok())
        .expect("forwarded counter");
    assert_eq!(forwarded, 51);

    // When Alice leaves, Bob's next offer ends her track.
    alice.send(json!({"type": "leave"})).await;
    let offer = bob.recv_type("subscribe_offer").await;
    assert_eq!(offer["version"], 2);
    assert_eq!(offer["tracks"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_negotiation_gets_error_codes_and_the_connection_stays() {
    let kammer = Appliance::demo();
    let (mut alice, _bob, _) = meeting(&kammer).await;
    alice
        .send(json!({"type": "publish", "sdp": "v=0\r\nrubbish", "tracks": []}))
        .await;
    assert_eq!(alice.recv_type("error").await["code"], "invalid_sdp");
    alice
        .send(json!({"type": "subscribe_answer", "version": 9, "sdp": "v=0"}))
        .await;
    assert_eq!(alice.recv_type("error").await["code"], "stale_answer");
    alice.send(json!({"type": "ping"})).await;
    assert_eq!(alice.recv_type("pong").await["type"], "pong");
}
