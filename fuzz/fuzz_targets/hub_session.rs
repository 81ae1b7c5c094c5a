//! Sequences of frames from several connections into one hub, with time moving: no panic, every
//! output goes to a connection that is open, none is closed twice, and the gauges stay consistent.
#![no_main]

use std::time::{Duration, Instant};

use kammer_core::room::{ConnId, Entropy, Hub, Limits, Output, RoomPolicy};
use libfuzzer_sys::fuzz_target;

struct Counter(u8);

impl Entropy for Counter {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
    }
}

const SEEDS: [&[u8]; 6] = [
    br#"{"type":"join","protocol":1,"room":"r","name":"a"}"#,
    br#"{"type":"admit","participant":2}"#,
    br#"{"type":"chat","text":"hi"}"#,
    br#"{"type":"remove","participant":2}"#,
    br#"{"type":"end_meeting"}"#,
    br#"{"type":"leave"}"#,
];

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_participants_per_room: 3,
        max_connections: 4,
        ..Limits::default()
    };
    let mut hub = Hub::new(limits, RoomPolicy::default(), Counter(0));
    let mut now = Instant::now();
    let mut open = std::collections::BTreeSet::new();
    for conn in 0..4 {
        hub.handle_connect(ConnId(conn), now);
        open.insert(conn);
    }
    // The welcomes.
    while hub.poll_output().is_some() {}
    // Each chunk: first byte picks the connection and the action, the rest is the frame.
    for chunk in data.split(|b| *b == 0xff) {
        let Some((&selector, frame)) = chunk.split_first() else {
            continue;
        };
        let conn = ConnId(u64::from(selector & 3));
        match selector >> 2 {
            0 => hub.handle_binary(conn, now),
            1 => hub.handle_disconnect(conn, now),
            2 => hub.handle_slow(conn, now),
            3 => {
                now += Duration::from_secs(u64::from(frame.first().copied().unwrap_or(0)));
                hub.handle_timeout(now);
            }
            4..=9 => hub.handle_message(conn, SEEDS[usize::from(selector >> 2) - 4], now),
            _ => hub.handle_message(conn, frame, now),
        }
        if selector >> 2 == 1 {
            open.remove(&conn.0);
        }
        while let Some(output) = hub.poll_output() {
            match output {
                // Nothing is ever sent to a connection that ended or was closed.
                Output::Send { conn, .. } => assert!(open.contains(&conn.0)),
                Output::Close { conn, .. } => assert!(open.remove(&conn.0), "closed twice"),
                Output::Media(_) => {}
            }
        }
        let gauges = hub.gauges();
        assert!(gauges.connections <= 4);
        assert!(gauges.participants + gauges.waiting <= gauges.connections);
    }
});
