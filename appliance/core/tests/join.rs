//! Joining rooms: creation, PIN, moderator secret, lock and failed attempts.

mod common;

use common::Sim;
use kammer_core::room::{CloseReason, Limits, RoomPolicy};
use kammer_core::signal::{ErrorCode, Role, ServerMessage};
use serde_json::json;

#[test]
fn creator_becomes_moderator_with_secret() {
    let mut sim = Sim::new();
    let alice = sim.connect();
    match sim.join(alice, "r1", "  Alice ") {
        ServerMessage::Joined {
            room,
            role,
            moderator_secret,
            participants,
            lobby,
            locked,
            lobby_enabled,
            ..
        } => {
            assert_eq!(room, "r1");
            assert_eq!(role, Role::Moderator);
            assert_eq!(moderator_secret.expect("secret").expose().len(), 32);
            assert_eq!(participants.len(), 1);
            assert_eq!(participants[0].name, "Alice");
            assert_eq!(lobby, Some(vec![]));
            assert!(!locked);
            assert!(lobby_enabled);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.hub.gauges().rooms, 1);
}

#[test]
fn moderator_secret_skips_lobby_and_grants_role() {
    let mut sim = Sim::new();
    let (alice, _, secret) = sim.create("r1", "Alice");
    let bob = sim.connect();
    sim.send(
        bob,
        json!({"type": "join", "protocol": 1, "room": "r1", "name": "Bob", "moderator_secret": secret}),
    );
    match sim.one(bob) {
        ServerMessage::Joined {
            role, participants, ..
        } => {
            assert_eq!(role, Role::Moderator);
            assert_eq!(participants.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        sim.one(alice),
        ServerMessage::ParticipantJoined { participant } if participant.name == "Bob"
    ));
}

#[test]
fn pin_is_required_once_set() {
    let mut sim = Sim::new();
    let _alice = sim.create_with_pin("r1", "Alice", "4711");

    let bob = sim.connect();
    sim.send(
        bob,
        json!({"type": "join", "protocol": 1, "room": "r1", "name": "Bob"}),
    );
    sim.expect_error(bob, ErrorCode::WrongPin);
    sim.send(
        bob,
        json!({"type": "join", "protocol": 1, "room": "r1", "name": "Bob", "pin": "0000"}),
    );
    sim.expect_error(bob, ErrorCode::WrongPin);
    sim.send(
        bob,
        json!({"type": "join", "protocol": 1, "room": "r1", "name": "Bob", "pin": "4711"}),
    );
    assert_eq!(
        sim.one(bob),
        ServerMessage::LobbyWaiting { room: "r1".into() }
    );
    assert_eq!(sim.hub.counters().dropped(ErrorCode::WrongPin), 2);
}

#[test]
fn too_many_wrong_pins_close_the_connection() {
    let mut sim = Sim::new();
    let alice = sim.create_with_pin("r1", "Alice", "4711");
    let mallory = sim.connect();
    for attempt in 1..=Limits::default().max_join_attempts {
        sim.send(mallory, json!({"type": "join", "protocol": 1, "room": "r1", "name": "M", "pin": format!("{attempt}")}));
        sim.expect_error(mallory, ErrorCode::WrongPin);
    }
    assert_eq!(
        sim.closed.get(&mallory),
        Some(&CloseReason::TooManyAttempts)
    );
    assert!(sim.take(alice).is_empty(), "the room noticed nothing");
}

#[test]
fn wrong_moderator_secret_is_an_error_not_a_lobby_entry() {
    let mut sim = Sim::new();
    let (alice, _, _) = sim.create("r1", "Alice");
    let bob = sim.connect();
    sim.send(
        bob,
        json!({"type": "join", "protocol": 1, "room": "r1", "name": "Bob", "moderator_secret": "guess"}),
    );
    sim.expect_error(bob, ErrorCode::WrongSecret);
    assert!(sim.take(alice).is_empty());
}

#[test]
fn invalid_join_fields_have_their_codes() {
    let mut sim = Sim::new();
    let c = sim.connect();
    for (message, code) in [
        (
            json!({"type": "join", "protocol": 2, "room": "r", "name": "A"}),
            ErrorCode::UnsupportedProtocol,
        ),
        (
            json!({"type": "join", "protocol": 1, "room": "r 1", "name": "A"}),
            ErrorCode::InvalidRoom,
        ),
        (
            json!({"type": "join", "protocol": 1, "room": "", "name": "A"}),
            ErrorCode::InvalidRoom,
        ),
        (
            json!({"type": "join", "protocol": 1, "room": "r", "name": "\u{7}"}),
            ErrorCode::InvalidName,
        ),
        (
            json!({"type": "join", "protocol": 1, "room": "r", "name": "A", "pin": ""}),
            ErrorCode::InvalidPin,
        ),
    ] {
        sim.send(c, message);
        sim.expect_error(c, code);
    }
    assert_eq!(sim.hub.gauges().rooms, 0);
}

#[test]
fn joining_twice_is_refused() {
    let mut sim = Sim::new();
    let (alice, _, _) = sim.create("r1", "Alice");
    sim.send(
        alice,
        json!({"type": "join", "protocol": 1, "room": "r2", "name": "Alice"}),
    );
    sim.expect_error(alice, ErrorCode::AlreadyJoined);
}

#[test]
fn ad_hoc_rooms_can_be_disabled() {
    let policy = RoomPolicy {
        allow_ad_hoc_rooms: false,
        ..RoomPolicy::default()
    };
    let mut sim = Sim::with(Limits::default(), policy);
    let c = sim.connect();
    sim.send(
        c,
        json!({"type": "join", "protocol": 1, "room": "r1", "name": "A"}),
    );
    sim.expect_error(c, ErrorCode::RoomNotFound);
}

#[test]
fn room_full_counts_lobby_waiters() {
    let limits = Limits {
        max_participants_per_room: 2,
        ..Limits::default()
    };
    let mut sim = Sim::with(limits, RoomPolicy::default());
    let (alice, _, _) = sim.create("r1", "Alice");
    let (_bob, _) = sim.wait_in_lobby("r1", "Bob", alice);
    let carol = sim.connect();
    sim.send(
        carol,
        json!({"type": "join", "protocol": 1, "room": "r1", "name": "Carol"}),
    );
    sim.expect_error(carol, ErrorCode::RoomFull);
}

#[test]
fn leave_and_rejoin_on_the_same_connection() {
    let mut sim = Sim::new();
    let (alice, _, _) = sim.create("r1", "Alice");
    let bob = sim.connect();
    sim.send(bob, json!({"type": "leave"}));
    sim.expect_error(bob, ErrorCode::NotJoined);
    let (bob, bob_id) = {
        let (conn, id) = sim.wait_in_lobby("r1", "Bob", alice);
        sim.admit(alice, conn, id);
        (conn, id)
    };
    sim.send(bob, json!({"type": "leave"}));
    assert_eq!(sim.one(bob), ServerMessage::Left);
    assert!(matches!(
        sim.one(alice),
        ServerMessage::ParticipantLeft { participant, reason: kammer_core::signal::LeaveReason::Left } if participant == bob_id
    ));
    // The same connection joins again and waits in the lobby once more.
    assert_eq!(
        sim.join(bob, "r1", "Bob"),
        ServerMessage::LobbyWaiting { room: "r1".into() }
    );
    assert!(matches!(sim.one(alice), ServerMessage::LobbyChanged { lobby } if lobby.len() == 1));
    assert!(sim.is_open(bob));
}

#[test]
fn last_one_out_ends_the_room_and_tells_the_lobby() {
    let mut sim = Sim::new();
    let (alice, _, _) = sim.create("r1", "Alice");
    let (bob, _) = sim.wait_in_lobby("r1", "Bob", alice);
    sim.hub.handle_disconnect(alice, sim.now);
    sim.drain();
    assert_eq!(sim.one(bob), ServerMessage::MeetingEnded);
    assert_eq!(sim.closed.get(&bob), Some(&CloseReason::MeetingEnded));
    assert_eq!(sim.hub.gauges().rooms, 0);
    // The room ID is free again: the next joiner creates a new room with a new secret.
    let (_, _, _) = sim.create("r1", "Carol");
}

#[test]
fn pin_guesses_are_limited_per_room_across_connections() {
    let mut sim = Sim::new();
    let alice = sim.create_with_pin("r1", "Alice", "4711");
    // Reconnecting does not reset the room's budget of wrong PINs.
    for round in 0..5 {
        let mallory = sim.connect();
        for guess in 0..2 {
            sim.send(mallory, json!({"type": "join", "protocol": 1, "room": "r1", "name": "M", "pin": format!("{round}{guess}")}));
            sim.expect_error(mallory, ErrorCode::WrongPin);
        }
    }
    // The right PIN is now refused as well, until time passes.
    let bob = sim.connect();
    sim.send(
        bob,
        json!({"type": "join", "protocol": 1, "room": "r1", "name": "Bob", "pin": "4711"}),
    );
    sim.expect_error(bob, ErrorCode::WrongPin);
    sim.advance(std::time::Duration::from_secs(30));
    sim.send(alice, json!({"type": "ping"}));
    sim.take(alice);
    sim.send(
        bob,
        json!({"type": "join", "protocol": 1, "room": "r1", "name": "Bob", "pin": "4711"}),
    );
    assert_eq!(
        sim.one(bob),
        ServerMessage::LobbyWaiting { room: "r1".into() }
    );
}
