//! Bad input and resource limits: size, shape, type, rate, idle, slow readers, server full.
//! None of it may affect another connection.

mod common;

use std::time::Duration;

use common::Sim;
use kammer_core::room::{CloseReason, Limits, RoomPolicy};
use kammer_core::signal::{ErrorCode, LeaveReason, ServerMessage};
use serde_json::json;

#[test]
fn malformed_oversized_unknown_and_binary_get_codes_and_keep_the_connection() {
    let mut sim = Sim::new();
    let (alice, _, _) = sim.create("r1", "Alice");
    let (bob, bob_id) = sim.wait_in_lobby("r1", "Bob", alice);
    sim.admit(alice, bob, bob_id);

    let big = format!(r#"{{"type":"chat","text":"{}"}}"#, "a".repeat(70_000));
    for (frame, code) in [
        (&b"{not json"[..], ErrorCode::Malformed),
        (
            br#"{"type":"chat","text":"x","extra":true}"#,
            ErrorCode::Malformed,
        ),
        (br#"{"type":"teleport"}"#, ErrorCode::UnknownType),
        (big.as_bytes(), ErrorCode::TooLarge),
        (b"\xc3\x28", ErrorCode::Malformed),
    ] {
        sim.send_raw(bob, frame);
        sim.expect_error(bob, code);
    }
    sim.hub.handle_binary(bob, sim.now);
    sim.drain();
    sim.expect_error(bob, ErrorCode::BinaryNotSupported);

    assert!(sim.is_open(bob));
    assert!(
        sim.take(alice).is_empty(),
        "no other participant is affected"
    );
    sim.send(bob, json!({"type": "chat", "text": "still here"}));
    assert!(matches!(sim.one(alice), ServerMessage::Chat { .. }));
    let counters = sim.hub.counters();
    assert_eq!(counters.dropped(ErrorCode::Malformed), 3);
    assert_eq!(counters.dropped(ErrorCode::TooLarge), 1);
    assert_eq!(counters.dropped(ErrorCode::UnknownType), 1);
    assert_eq!(counters.dropped(ErrorCode::BinaryNotSupported), 1);
}

#[test]
fn message_flood_is_dropped_with_one_error_per_second() {
    let mut sim = Sim::new();
    let (alice, _, _) = sim.create("r1", "Alice");
    // The `join` took one token of the burst.
    let burst = Limits::default().message_burst as usize - 1;
    for _ in 0..burst {
        sim.send(alice, json!({"type": "ping"}));
    }
    assert_eq!(sim.take(alice), vec![ServerMessage::Pong; burst]);
    for _ in 0..100 {
        sim.send(alice, json!({"type": "ping"}));
    }
    let replies = sim.take(alice);
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(matches!(
        replies[0],
        ServerMessage::Error {
            code: ErrorCode::RateLimited,
            ..
        }
    ));
    assert_eq!(sim.hub.counters().dropped(ErrorCode::RateLimited), 100);
    assert!(sim.is_open(alice));
    sim.advance(Duration::from_secs(1));
    sim.send(alice, json!({"type": "ping"}));
    assert_eq!(sim.take(alice), vec![ServerMessage::Pong]);
}

#[test]
fn idle_connections_are_closed_and_active_ones_kept() {
    let mut sim = Sim::new();
    let (alice, _, _) = sim.create("r1", "Alice");
    let (bob, bob_id) = sim.wait_in_lobby("r1", "Bob", alice);
    sim.admit(alice, bob, bob_id);
    let idle = Limits::default().idle_timeout;
    assert_eq!(sim.hub.poll_timeout(), Some(sim.now + idle));

    sim.advance(idle / 2);
    sim.send(alice, json!({"type": "ping"}));
    sim.take(alice);
    sim.advance(idle / 2);
    assert_eq!(sim.closed.get(&bob), Some(&CloseReason::IdleTimeout));
    assert!(sim.is_open(alice));
    assert_eq!(
        sim.one(alice),
        ServerMessage::ParticipantLeft {
            participant: bob_id,
            reason: LeaveReason::IdleTimeout
        }
    );
}

#[test]
fn slow_reader_is_dropped_alone() {
    let mut sim = Sim::new();
    let (alice, _, _) = sim.create("r1", "Alice");
    let (bob, bob_id) = sim.wait_in_lobby("r1", "Bob", alice);
    sim.admit(alice, bob, bob_id);
    sim.hub.handle_slow(bob, sim.now);
    sim.drain();
    assert_eq!(sim.closed.get(&bob), Some(&CloseReason::TooSlow));
    assert_eq!(
        sim.one(alice),
        ServerMessage::ParticipantLeft {
            participant: bob_id,
            reason: LeaveReason::TooSlow
        }
    );
}

#[test]
fn server_full_closes_new_connections() {
    let limits = Limits {
        max_connections: 1,
        ..Limits::default()
    };
    let mut sim = Sim::with(limits, RoomPolicy::default());
    let first = sim.connect();
    let second = kammer_core::room::ConnId(99);
    sim.hub.handle_connect(second, sim.now);
    sim.drain();
    assert_eq!(sim.closed.get(&second), Some(&CloseReason::ServerFull));
    assert!(sim.take(second).is_empty());
    assert!(sim.is_open(first));
}

#[test]
fn messages_on_unknown_connections_are_ignored() {
    let mut sim = Sim::new();
    let ghost = kammer_core::room::ConnId(12345);
    sim.hub
        .handle_message(ghost, br#"{"type":"ping"}"#, sim.now);
    sim.hub.handle_binary(ghost, sim.now);
    sim.hub.handle_disconnect(ghost, sim.now);
    sim.hub.handle_slow(ghost, sim.now);
    sim.drain();
    assert!(sim.inbox.is_empty());
    assert!(sim.closed.is_empty());
}

#[test]
fn oversized_and_binary_frames_count_against_the_rate_limit() {
    let mut sim = Sim::new();
    let c = sim.connect();
    let burst = Limits::default().message_burst as usize;
    for i in 0..burst {
        if i % 2 == 0 {
            sim.hub.handle_binary(c, sim.now);
        } else {
            sim.hub.handle_oversized(c, sim.now);
        }
    }
    sim.drain();
    let replies = sim.take(c);
    assert_eq!(replies.len(), burst);
    sim.hub.handle_binary(c, sim.now);
    sim.hub.handle_oversized(c, sim.now);
    sim.drain();
    let replies = sim.take(c);
    assert!(
        matches!(
            replies.as_slice(),
            [ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            }]
        ),
        "{replies:?}"
    );
    assert_eq!(
        sim.hub.counters().dropped(ErrorCode::TooLarge),
        (burst / 2) as u64
    );
    assert_eq!(sim.hub.counters().dropped(ErrorCode::RateLimited), 2);
}

#[test]
fn waiter_and_last_member_expiring_together_are_closed_once() {
    let mut sim = Sim::new();
    let (alice, _, _) = sim.create("r1", "Alice");
    let (bob, _) = sim.wait_in_lobby("r1", "Bob", alice);
    // The harness asserts that no connection is closed twice.
    sim.advance(Limits::default().idle_timeout);
    assert_eq!(sim.closed.get(&alice), Some(&CloseReason::IdleTimeout));
    assert!(sim.closed.contains_key(&bob));
    let closed: u64 = CloseReason::ALL
        .iter()
        .map(|r| sim.hub.counters().closed(*r))
        .sum();
    assert_eq!(closed, 2);
    assert_eq!(sim.hub.gauges().connections, 0);
}
