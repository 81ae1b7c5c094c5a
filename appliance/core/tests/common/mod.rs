//! A small driver for the hub in simulated time: connections with inboxes, a clock that moves
//! only when told.

#![allow(dead_code, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kammer_core::media::sfu::MediaCommand;
use kammer_core::room::{CloseReason, ConnId, Entropy, Hub, Limits, Output, RoomPolicy};
use kammer_core::signal::{ErrorCode, ServerMessage};
use serde_json::{Value, json};

/// Deterministic "randomness": a counter. Good enough to tell rooms apart in tests.
pub struct Counter(u8);

impl Entropy for Counter {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
    }
}

pub struct Sim {
    pub hub: Hub<Counter>,
    pub now: Instant,
    next_conn: u64,
    pub inbox: BTreeMap<ConnId, Vec<ServerMessage>>,
    pub closed: BTreeMap<ConnId, CloseReason>,
    /// Commands for the media plane, in order.
    pub media: Vec<MediaCommand>,
}

impl Sim {
    pub fn new() -> Self {
        Self::with(Limits::default(), RoomPolicy::default())
    }

    pub fn with(limits: Limits, policy: RoomPolicy) -> Self {
        Self {
            hub: Hub::new(limits, policy, Counter(0)),
            now: Instant::now(),
            next_conn: 1,
            inbox: BTreeMap::new(),
            closed: BTreeMap::new(),
            media: Vec::new(),
        }
    }

    pub fn connect(&mut self) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.hub.handle_connect(conn, self.now);
        self.drain();
        let welcome = self.take(conn);
        assert!(
            matches!(
                welcome.as_slice(),
                [ServerMessage::Welcome { protocol: 1, .. }]
            ),
            "{welcome:?}"
        );
        conn
    }

    pub fn send(&mut self, conn: ConnId, message: Value) {
        self.send_raw(conn, message.to_string().as_bytes());
    }

    pub fn send_raw(&mut self, conn: ConnId, frame: &[u8]) {
        self.hub.handle_message(conn, frame, self.now);
        self.drain();
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        if self.hub.poll_timeout().is_some_and(|t| t <= self.now) {
            self.hub.handle_timeout(self.now);
        }
        self.drain();
    }

    pub fn drain(&mut self) {
        while let Some(output) = self.hub.poll_output() {
            match output {
                Output::Send { conn, text } => {
                    assert!(
                        !self.closed.contains_key(&conn),
                        "message to closed connection {conn:?}: {text}"
                    );
                    let message: ServerMessage =
                        serde_json::from_str(&text).expect("server sends valid messages");
                    self.inbox.entry(conn).or_default().push(message);
                }
                Output::Close { conn, reason } => {
                    assert!(self.closed.insert(conn, reason).is_none(), "closed twice");
                }
                Output::Media(command) => self.media.push(command),
            }
        }
    }

    /// Everything received since the last call.
    pub fn take(&mut self, conn: ConnId) -> Vec<ServerMessage> {
        self.inbox.remove(&conn).unwrap_or_default()
    }

    /// Asserts exactly one message arrived since the last call and returns it.
    pub fn one(&mut self, conn: ConnId) -> ServerMessage {
        let mut messages = self.take(conn);
        assert_eq!(messages.len(), 1, "expected one message, got {messages:?}");
        messages.remove(0)
    }

    pub fn expect_error(&mut self, conn: ConnId, code: ErrorCode) {
        match self.one(conn) {
            ServerMessage::Error { code: got, .. } => assert_eq!(got, code),
            other => panic!("expected error {code:?}, got {other:?}"),
        }
    }

    /// Joins `room`; returns the participant id and the full `joined` message.
    pub fn join(&mut self, conn: ConnId, room: &str, name: &str) -> ServerMessage {
        self.send(
            conn,
            json!({"type": "join", "protocol": 1, "room": room, "name": name}),
        );
        self.one(conn)
    }

    /// Creates a room as its moderator; returns (connection, participant id, moderator secret).
    pub fn create(&mut self, room: &str, name: &str) -> (ConnId, u64, String) {
        let conn = self.connect();
        match self.join(conn, room, name) {
            ServerMessage::Joined {
                you,
                moderator_secret: Some(secret),
                ..
            } => (conn, you, secret.expose().to_owned()),
            other => panic!("expected joined with secret, got {other:?}"),
        }
    }

    /// Creates a room with a PIN as its moderator; returns the connection.
    pub fn create_with_pin(&mut self, room: &str, name: &str, pin: &str) -> ConnId {
        let conn = self.connect();
        self.send(
            conn,
            json!({"type": "join", "protocol": 1, "room": room, "name": name, "pin": pin}),
        );
        assert!(matches!(self.one(conn), ServerMessage::Joined { .. }));
        conn
    }

    /// Connects, joins into the lobby and returns (connection, lobby id seen by `moderator`).
    pub fn wait_in_lobby(&mut self, room: &str, name: &str, moderator: ConnId) -> (ConnId, u64) {
        let conn = self.connect();
        assert_eq!(
            self.join(conn, room, name),
            ServerMessage::LobbyWaiting { room: room.into() }
        );
        let lobby = self.take(moderator);
        let id = lobby
            .iter()
            .rev()
            .find_map(|m| match m {
                ServerMessage::LobbyChanged { lobby } => {
                    lobby.iter().find(|e| e.name == name).map(|e| e.id)
                }
                _ => None,
            })
            .expect("moderator sees the waiter");
        (conn, id)
    }

    /// Admits a waiter and clears the inboxes of both.
    pub fn admit(&mut self, moderator: ConnId, conn: ConnId, id: u64) {
        self.send(moderator, json!({"type": "admit", "participant": id}));
        assert!(matches!(self.one(conn), ServerMessage::Joined { you, .. } if you == id));
        self.take(moderator);
    }

    pub fn is_open(&self, conn: ConnId) -> bool {
        !self.closed.contains_key(&conn)
    }

    pub fn others_empty(&self, except: &[ConnId]) -> bool {
        let except: BTreeSet<_> = except.iter().collect();
        self.inbox.keys().all(|c| except.contains(c))
    }
}
