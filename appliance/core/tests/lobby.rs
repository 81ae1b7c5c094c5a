//! The lobby: admit, reject, lock, lobby on/off.

mod common;

use common::Sim;
use kammer_core::signal::{ErrorCode, LobbyEntry, Role, ServerMessage};
use serde_json::json;

#[test]
fn admit_moves_waiter_into_room_and_tells_everyone() {
    let mut sim = Sim::new();
    let (alice, alice_id, _) = sim.create("r1", "Alice");
    let (bob, bob_id) = sim.wait_in_lobby("r1", "Bob", alice);
    assert_eq!(sim.hub.gauges().waiting, 1);

    sim.send(alice, json!({"type": "admit", "participant": bob_id}));
    match sim.one(bob) {
        ServerMessage::Joined {
            you,
            role,
            participants,
            moderator_secret,
            lobby,
            ..
        } => {
            assert_eq!(you, bob_id);
            assert_eq!(role, Role::Participant);
            assert_eq!(
                participants.iter().map(|p| p.id).collect::<Vec<_>>(),
                vec![alice_id, bob_id]
            );
            assert!(
                moderator_secret.is_none(),
                "participants never see the secret"
            );
            assert!(lobby.is_none());
        }
        other => panic!("{other:?}"),
    }
    let to_alice = sim.take(alice);
    assert_eq!(to_alice[0], ServerMessage::LobbyChanged { lobby: vec![] });
    assert!(
        matches!(&to_alice[1], ServerMessage::ParticipantJoined { participant } if participant.id == bob_id)
    );
    assert_eq!(sim.hub.gauges().participants, 2);
    assert_eq!(sim.hub.gauges().waiting, 0);
}

#[test]
fn reject_sends_waiter_back_outside() {
    let mut sim = Sim::new();
    let (alice, _, _) = sim.create("r1", "Alice");
    let (bob, bob_id) = sim.wait_in_lobby("r1", "Bob", alice);
    sim.send(alice, json!({"type": "reject", "participant": bob_id}));
    assert_eq!(
        sim.one(bob),
        ServerMessage::LobbyRejected { room: "r1".into() }
    );
    assert_eq!(
        sim.one(alice),
        ServerMessage::LobbyChanged { lobby: vec![] }
    );
    assert!(sim.is_open(bob), "a rejected waiter may try again");
    sim.send(bob, json!({"type": "chat", "text": "let me in"}));
    sim.expect_error(bob, ErrorCode::NotJoined);
}

#[test]
fn waiters_cannot_act_and_participants_cannot_moderate() {
    let mut sim = Sim::new();
    let (alice, _, _) = sim.create("r1", "Alice");
    let (bob, bob_id) = sim.wait_in_lobby("r1", "Bob", alice);
    sim.send(bob, json!({"type": "admit", "participant": bob_id}));
    sim.expect_error(bob, ErrorCode::NotJoined);
    sim.send(bob, json!({"type": "chat", "text": "hi"}));
    sim.expect_error(bob, ErrorCode::NotJoined);
    sim.admit(alice, bob, bob_id);
    let (carol, carol_id) = sim.wait_in_lobby("r1", "Carol", alice);
    for message in [
        json!({"type": "admit", "participant": carol_id}),
        json!({"type": "reject", "participant": carol_id}),
        json!({"type": "lock", "locked": true}),
        json!({"type": "set_lobby", "enabled": false}),
        json!({"type": "remove", "participant": 1}),
        json!({"type": "ask_mute", "participant": 1}),
        json!({"type": "end_meeting"}),
    ] {
        sim.send(bob, message);
        sim.expect_error(bob, ErrorCode::NotModerator);
    }
    assert!(sim.take(carol).is_empty());
    assert_eq!(sim.hub.gauges().waiting, 1);
}

#[test]
fn admitting_someone_not_waiting_is_an_error() {
    let mut sim = Sim::new();
    let (alice, alice_id, _) = sim.create("r1", "Alice");
    sim.send(alice, json!({"type": "admit", "participant": 999}));
    sim.expect_error(alice, ErrorCode::UnknownParticipant);
    sim.send(alice, json!({"type": "admit", "participant": alice_id}));
    sim.expect_error(alice, ErrorCode::UnknownParticipant);
}

#[test]
fn lock_refuses_new_joiners_but_not_moderators() {
    let mut sim = Sim::new();
    let (alice, _, secret) = sim.create("r1", "Alice");
    let (waiting, _) = sim.wait_in_lobby("r1", "Waiting", alice);
    sim.send(alice, json!({"type": "lock", "locked": true}));
    assert_eq!(
        sim.one(alice),
        ServerMessage::RoomState {
            locked: true,
            lobby_enabled: true
        }
    );
    let bob = sim.connect();
    sim.send(
        bob,
        json!({"type": "join", "protocol": 1, "room": "r1", "name": "Bob"}),
    );
    sim.expect_error(bob, ErrorCode::RoomLocked);
    assert!(sim.take(waiting).is_empty(), "the lobby keeps its waiters");

    let carol = sim.connect();
    sim.send(carol, json!({"type": "join", "protocol": 1, "room": "r1", "name": "Carol", "moderator_secret": secret}));
    assert!(matches!(
        sim.one(carol),
        ServerMessage::Joined {
            role: Role::Moderator,
            ..
        }
    ));

    sim.send(alice, json!({"type": "lock", "locked": false}));
    sim.take(alice);
    sim.send(
        bob,
        json!({"type": "join", "protocol": 1, "room": "r1", "name": "Bob"}),
    );
    assert_eq!(
        sim.one(bob),
        ServerMessage::LobbyWaiting { room: "r1".into() }
    );
}

#[test]
fn lobby_off_admits_directly() {
    let mut sim = Sim::new();
    let (alice, _, _) = sim.create("r1", "Alice");
    sim.send(alice, json!({"type": "set_lobby", "enabled": false}));
    assert_eq!(
        sim.one(alice),
        ServerMessage::RoomState {
            locked: false,
            lobby_enabled: false
        }
    );
    let bob = sim.connect();
    assert!(matches!(
        sim.join(bob, "r1", "Bob"),
        ServerMessage::Joined {
            role: Role::Participant,
            ..
        }
    ));
}

#[test]
fn every_moderator_sees_lobby_changes_and_waiter_disconnect() {
    let mut sim = Sim::new();
    let (alice, _, secret) = sim.create("r1", "Alice");
    let mod2 = sim.connect();
    sim.send(mod2, json!({"type": "join", "protocol": 1, "room": "r1", "name": "Mod", "moderator_secret": secret}));
    sim.take(mod2);
    sim.take(alice);
    let (bob, bob_id) = sim.wait_in_lobby("r1", "Bob", alice);
    assert_eq!(
        sim.one(mod2),
        ServerMessage::LobbyChanged {
            lobby: vec![LobbyEntry {
                id: bob_id,
                name: "Bob".into()
            }]
        }
    );
    sim.hub.handle_disconnect(bob, sim.now);
    sim.drain();
    assert_eq!(
        sim.one(alice),
        ServerMessage::LobbyChanged { lobby: vec![] }
    );
    assert_eq!(sim.one(mod2), ServerMessage::LobbyChanged { lobby: vec![] });
}
