//! Chat (length and rate limits) and raised hands.

mod common;

use std::time::Duration;

use common::Sim;
use kammer_core::signal::{ErrorCode, ServerMessage};
use serde_json::json;

fn meeting(
    sim: &mut Sim,
) -> (
    kammer_core::room::ConnId,
    u64,
    kammer_core::room::ConnId,
    u64,
) {
    let (alice, alice_id, _) = sim.create("r1", "Alice");
    let (bob, bob_id) = sim.wait_in_lobby("r1", "Bob", alice);
    sim.admit(alice, bob, bob_id);
    (alice, alice_id, bob, bob_id)
}

#[test]
fn chat_reaches_every_member_with_sequence() {
    let mut sim = Sim::new();
    let (alice, _, bob, bob_id) = meeting(&mut sim);
    let (waiter, _) = sim.wait_in_lobby("r1", "Waiter", alice);
    sim.send(bob, json!({"type": "chat", "text": "  Guten Morgen  "}));
    let expected = ServerMessage::Chat {
        from: bob_id,
        name: "Bob".into(),
        text: "Guten Morgen".into(),
        seq: 1,
    };
    assert_eq!(sim.one(alice), expected);
    assert_eq!(sim.one(bob), expected);
    assert!(
        sim.take(waiter).is_empty(),
        "the lobby does not read the chat"
    );
    sim.send(alice, json!({"type": "chat", "text": "<script>x</script>"}));
    assert!(
        matches!(sim.one(bob), ServerMessage::Chat { seq: 2, text, .. } if text == "<script>x</script>")
    );
}

#[test]
fn chat_length_limit_counts_characters() {
    let mut sim = Sim::new();
    let (alice, _, bob, _) = meeting(&mut sim);
    sim.send(bob, json!({"type": "chat", "text": "ä".repeat(2000)}));
    assert!(matches!(sim.one(alice), ServerMessage::Chat { .. }));
    sim.take(bob);
    sim.send(bob, json!({"type": "chat", "text": "a".repeat(2001)}));
    sim.expect_error(bob, ErrorCode::ChatTooLong);
    sim.send(bob, json!({"type": "chat", "text": "   "}));
    sim.expect_error(bob, ErrorCode::InvalidText);
    assert!(sim.take(alice).is_empty());
}

#[test]
fn chat_rate_limit_recovers_over_time() {
    let mut sim = Sim::new();
    let (alice, _, bob, _) = meeting(&mut sim);
    for i in 0..5 {
        sim.send(bob, json!({"type": "chat", "text": format!("m{i}")}));
        sim.now += Duration::from_millis(10);
    }
    assert_eq!(sim.take(alice).len(), 5);
    sim.take(bob);
    sim.send(bob, json!({"type": "chat", "text": "one too many"}));
    sim.expect_error(bob, ErrorCode::ChatRateLimited);
    assert!(sim.take(alice).is_empty());
    assert_eq!(sim.hub.counters().dropped(ErrorCode::ChatRateLimited), 1);
    sim.advance(Duration::from_secs(2));
    sim.send(bob, json!({"type": "chat", "text": "later"}));
    assert!(matches!(sim.one(alice), ServerMessage::Chat { text, .. } if text == "later"));
}

#[test]
fn hand_raise_and_lower_is_broadcast() {
    let mut sim = Sim::new();
    let (alice, _, bob, bob_id) = meeting(&mut sim);
    sim.send(bob, json!({"type": "hand", "raised": true}));
    for conn in [alice, bob] {
        assert!(matches!(
            sim.one(conn),
            ServerMessage::ParticipantUpdated { participant } if participant.id == bob_id && participant.hand
        ));
    }
    sim.send(bob, json!({"type": "hand", "raised": false}));
    assert!(matches!(
        sim.one(alice),
        ServerMessage::ParticipantUpdated { participant } if !participant.hand
    ));
}
