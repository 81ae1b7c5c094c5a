//! Moderator actions: ask to mute, remove, end meeting.

mod common;

use common::Sim;
use kammer_core::room::CloseReason;
use kammer_core::signal::{ErrorCode, LeaveReason, ServerMessage};
use serde_json::json;

#[test]
fn remove_closes_the_target_and_tells_the_others() {
    let mut sim = Sim::new();
    let (alice, alice_id, _) = sim.create("r1", "Alice");
    let (bob, bob_id) = sim.wait_in_lobby("r1", "Bob", alice);
    sim.admit(alice, bob, bob_id);
    let (carol, carol_id) = sim.wait_in_lobby("r1", "Carol", alice);
    sim.admit(alice, carol, carol_id);
    sim.take(bob);

    sim.send(alice, json!({"type": "remove", "participant": bob_id}));
    assert_eq!(sim.one(bob), ServerMessage::Removed { by: alice_id });
    assert_eq!(sim.closed.get(&bob), Some(&CloseReason::Removed));
    let left = ServerMessage::ParticipantLeft {
        participant: bob_id,
        reason: LeaveReason::Removed,
    };
    assert_eq!(sim.one(alice), left);
    assert_eq!(sim.one(carol), left);
    // The shell reports the socket's end afterwards; that must change nothing.
    sim.hub.handle_disconnect(bob, sim.now);
    sim.drain();
    assert!(sim.take(alice).is_empty());
    assert_eq!(sim.hub.gauges().participants, 2);
    sim.send(alice, json!({"type": "remove", "participant": bob_id}));
    sim.expect_error(alice, ErrorCode::UnknownParticipant);
}

#[test]
fn ask_mute_reaches_only_the_target() {
    let mut sim = Sim::new();
    let (alice, alice_id, _) = sim.create("r1", "Alice");
    let (bob, bob_id) = sim.wait_in_lobby("r1", "Bob", alice);
    sim.admit(alice, bob, bob_id);
    sim.send(alice, json!({"type": "ask_mute", "participant": bob_id}));
    assert_eq!(sim.one(bob), ServerMessage::MuteRequested { by: alice_id });
    assert!(sim.take(alice).is_empty());
}

#[test]
fn end_meeting_closes_everyone_including_the_lobby() {
    let mut sim = Sim::new();
    let (alice, _, _) = sim.create("r1", "Alice");
    let (bob, bob_id) = sim.wait_in_lobby("r1", "Bob", alice);
    sim.admit(alice, bob, bob_id);
    let (carol, _) = sim.wait_in_lobby("r1", "Carol", alice);
    let (other_room, _, _) = sim.create("r2", "Dora");

    sim.send(alice, json!({"type": "end_meeting"}));
    for conn in [alice, bob, carol] {
        assert_eq!(sim.one(conn), ServerMessage::MeetingEnded);
        assert_eq!(sim.closed.get(&conn), Some(&CloseReason::MeetingEnded));
    }
    assert!(sim.is_open(other_room));
    assert!(sim.take(other_room).is_empty());
    assert_eq!(sim.hub.gauges().rooms, 1);
    assert_eq!(sim.hub.counters().closed(CloseReason::MeetingEnded), 3);
}
