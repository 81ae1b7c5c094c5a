//! Media negotiation through the hub: who may publish, what reaches the media plane, and how
//! the media plane's answers and offers reach the right connection.

mod common;

use common::Sim;
use kammer_core::media::sfu::{MediaCommand, MediaEvent};
use kammer_core::signal::{
    ErrorCode, MediaState, PublishTrack, ServerMessage, SubscribeTrack, TrackKind, TrackSource,
};
use serde_json::json;

#[test]
fn admission_and_departure_reach_the_media_plane() {
    let mut sim = Sim::new();
    let (alice, alice_id, _) = sim.create("r1", "Alice");
    let (bob, bob_id) = sim.wait_in_lobby("r1", "Bob", alice);
    assert_eq!(
        sim.media,
        [MediaCommand::Join {
            participant: alice_id,
            room: "r1".into()
        }],
        "someone in the lobby has no media"
    );
    sim.admit(alice, bob, bob_id);
    sim.send(bob, json!({"type": "leave"}));
    sim.send(alice, json!({"type": "leave"}));
    assert_eq!(
        sim.media[1..],
        [
            MediaCommand::Join {
                participant: bob_id,
                room: "r1".into()
            },
            MediaCommand::Leave {
                participant: bob_id
            },
            MediaCommand::Leave {
                participant: alice_id
            },
        ]
    );
}

#[test]
fn publish_and_answers_are_passed_on_for_admitted_participants_only() {
    let mut sim = Sim::new();
    let (alice, alice_id, _) = sim.create("r1", "Alice");
    let (waiter, _) = sim.wait_in_lobby("r1", "Waiter", alice);
    let publish =
        json!({"type": "publish", "sdp": "v=0", "tracks": [{"mid": "0", "source": "microphone"}]});
    sim.send(waiter, publish.clone());
    sim.expect_error(waiter, ErrorCode::NotJoined);
    sim.send(alice, publish);
    sim.send(
        alice,
        json!({"type": "subscribe_answer", "version": 3, "sdp": "v=0"}),
    );
    sim.send(
        alice,
        json!({"type": "publish", "sdp": "v=0", "tracks": [{"mid": "0", "source": "speaker"}]}),
    );
    sim.expect_error(alice, ErrorCode::Malformed);
    assert_eq!(
        sim.media[1..],
        [
            MediaCommand::Publish {
                participant: alice_id,
                sdp: "v=0".into(),
                tracks: vec![PublishTrack {
                    mid: "0".into(),
                    source: TrackSource::Microphone
                }],
            },
            MediaCommand::SubscribeAnswer {
                participant: alice_id,
                version: 3,
                sdp: "v=0".into()
            },
        ]
    );
}

#[test]
fn media_events_reach_the_participant_and_no_one_else() {
    let mut sim = Sim::new();
    let (alice, alice_id, _) = sim.create("r1", "Alice");
    let (bob, bob_id) = sim.wait_in_lobby("r1", "Bob", alice);
    sim.admit(alice, bob, bob_id);
    sim.take(alice);
    let tracks = vec![SubscribeTrack {
        mid: "0".into(),
        participant: alice_id,
        source: TrackSource::Camera,
        kind: TrackKind::Video,
    }];
    sim.hub.handle_media(MediaEvent::SubscribeOffer {
        participant: bob_id,
        version: 1,
        sdp: "v=0".into(),
        tracks: tracks.clone(),
    });
    sim.hub.handle_media(MediaEvent::Refused {
        participant: alice_id,
        code: ErrorCode::InvalidSdp,
    });
    sim.hub.handle_media(MediaEvent::PublishAnswer {
        participant: 999,
        sdp: "v=0".into(),
    });
    sim.drain();
    assert_eq!(
        sim.one(bob),
        ServerMessage::SubscribeOffer {
            version: 1,
            sdp: "v=0".into(),
            tracks
        }
    );
    sim.expect_error(alice, ErrorCode::InvalidSdp);
}

#[test]
fn a_media_reset_reaches_only_its_participant() {
    let mut sim = Sim::new();
    let (alice, alice_id, _) = sim.create("r1", "Alice");
    let (bob, bob_id) = sim.wait_in_lobby("r1", "Bob", alice);
    sim.admit(alice, bob, bob_id);
    sim.take(alice);
    sim.take(bob);
    sim.hub.handle_media(MediaEvent::Reset {
        participant: alice_id,
    });
    sim.drain();
    assert_eq!(sim.one(alice), ServerMessage::MediaReset);
    assert!(sim.take(bob).is_empty());
}

#[test]
fn media_state_is_shown_to_the_room() {
    let mut sim = Sim::new();
    let (alice, _, _) = sim.create("r1", "Alice");
    let (bob, bob_id) = sim.wait_in_lobby("r1", "Bob", alice);
    sim.admit(alice, bob, bob_id);
    sim.take(alice);
    sim.take(bob);
    sim.send(
        bob,
        json!({"type": "media_state", "microphone": true, "camera": false, "screen": true}),
    );
    let ServerMessage::ParticipantUpdated { participant } = sim.one(alice) else {
        panic!("participant_updated expected");
    };
    assert_eq!(participant.id, bob_id);
    assert_eq!(
        participant.media,
        MediaState {
            microphone: true,
            camera: false,
            screen: true
        }
    );
    assert!(matches!(
        sim.one(bob),
        ServerMessage::ParticipantUpdated { .. }
    ));
    // The same state again is not news.
    sim.send(
        bob,
        json!({"type": "media_state", "microphone": true, "camera": false, "screen": true}),
    );
    assert!(sim.take(alice).is_empty());
}
