//! Meetings: rooms, lobby, roles, chat, hands and moderation, as one sans-IO state machine.
//!
//! [`Hub`] holds every connection and every room of the server. The shell owns the sockets and
//! drives the hub:
//!
//! 1. on a new WebSocket, call [`Hub::handle_connect`]; for each text frame
//!    [`Hub::handle_message`], for a binary frame [`Hub::handle_binary`], when the socket ends
//!    [`Hub::handle_disconnect`], when a client's outbound queue is full [`Hub::handle_slow`];
//! 2. after any input, drain [`Hub::poll_output`] until it returns `None` and carry out each
//!    [`Output`] (send a frame, close a connection, pass a command to the media plane); hand
//!    the media plane's events back with [`Hub::handle_media`];
//! 3. arm one timer at [`Hub::poll_timeout`] and call [`Hub::handle_timeout`] when it fires, then
//!    drain the outputs again.
//!
//! The hub never reads the clock: every input carries `now`.

mod hub;
mod meeting;
mod rate;
mod validate;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

pub use hub::Hub;

use crate::media::sfu::MediaCommand;
use crate::signal::{ErrorCode, ServerMessage};

/// Identifies one client connection; chosen by the shell, unique while the connection lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Source of unpredictable bytes (moderator secrets). The shell passes the system's CSPRNG;
/// tests pass a deterministic one.
pub trait Entropy {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

/// Limits that protect the server and the other participants from one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted message, in bytes.
    pub max_message_bytes: usize,
    /// Sustained messages per second per connection.
    pub messages_per_second: u32,
    /// Messages a connection may send at once before the rate applies.
    pub message_burst: u32,
    /// Chat messages per participant per ten seconds (also the burst).
    pub chat_per_10s: u32,
    /// Longest chat text, in characters.
    pub chat_max_chars: usize,
    /// Admitted participants plus lobby waiters per room.
    pub max_participants_per_room: usize,
    /// Connections the hub accepts at once.
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Wrong PINs or moderator secrets per connection before it is closed.
    pub max_join_attempts: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            messages_per_second: 20,
            message_burst: 40,
            chat_per_10s: 5,
            chat_max_chars: 2000,
            max_participants_per_room: 50,
            max_connections: 1000,
            idle_timeout: Duration::from_secs(60),
            max_join_attempts: 5,
        }
    }
}

/// How rooms come to be and how they start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomPolicy {
    /// The first `join` to an unknown room creates it.
    pub allow_ad_hoc_rooms: bool,
    /// New rooms start with the lobby on.
    pub lobby_by_default: bool,
}

impl Default for RoomPolicy {
    fn default() -> Self {
        Self {
            allow_ad_hoc_rooms: true,
            lobby_by_default: true,
        }
    }
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this JSON text as one WebSocket text frame. Broadcasts share one allocation.
    Send {
        /// The receiving connection.
        conn: ConnId,
        /// The serialised [`ServerMessage`].
        text: Arc<str>,
    },
    /// Close the connection; the hub has already forgotten it.
    Close {
        /// The connection to close.
        conn: ConnId,
        /// Why, for the log and the WebSocket close frame.
        reason: CloseReason,
    },
    /// Hand this to the media plane ([`crate::media::sfu::Sfu::handle_command`]).
    Media(MediaCommand),
}

/// Why the server closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Nothing received for longer than the idle timeout.
    IdleTimeout,
    /// The client did not read its messages fast enough.
    TooSlow,
    /// A moderator removed the participant.
    Removed,
    /// A moderator ended the meeting, or its last participant left.
    MeetingEnded,
    /// The server has reached its connection limit.
    ServerFull,
    /// Too many wrong PINs or moderator secrets.
    TooManyAttempts,
}

impl CloseReason {
    /// Every reason, for metrics.
    pub const ALL: [CloseReason; 6] = [
        Self::IdleTimeout,
        Self::TooSlow,
        Self::Removed,
        Self::MeetingEnded,
        Self::ServerFull,
        Self::TooManyAttempts,
    ];

    /// Stable name for logs, metrics and the close frame.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IdleTimeout => "idle_timeout",
            Self::TooSlow => "too_slow",
            Self::Removed => "removed",
            Self::MeetingEnded => "meeting_ended",
            Self::ServerFull => "server_full",
            Self::TooManyAttempts => "too_many_attempts",
        }
    }
}

/// Counts since start, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages received (all, including dropped ones).
    pub messages_received: u64,
    /// Messages dropped, by the error code they earned (index as in [`ErrorCode::ALL`]).
    dropped: [u64; ErrorCode::ALL.len()],
    /// Connections closed by the server, by reason (index as in [`CloseReason::ALL`]).
    closed: [u64; CloseReason::ALL.len()],
    /// Chat messages delivered to rooms.
    pub chat_messages: u64,
}

impl Counters {
    /// Messages dropped with this error code.
    pub fn dropped(&self, code: ErrorCode) -> u64 {
        let index = ErrorCode::ALL.iter().position(|c| *c == code);
        index.map_or(0, |i| self.dropped[i])
    }

    /// Connections the server closed for this reason.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        let index = CloseReason::ALL.iter().position(|r| *r == reason);
        index.map_or(0, |i| self.closed[i])
    }

    fn count_drop(&mut self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
            self.dropped[i] += 1;
        }
    }

    fn count_close(&mut self, reason: CloseReason) {
        if let Some(i) = CloseReason::ALL.iter().position(|r| *r == reason) {
            self.closed[i] += 1;
        }
    }
}

/// Current sizes, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Open connections.
    pub connections: usize,
    /// Rooms with at least one participant.
    pub rooms: usize,
    /// Admitted participants over all rooms.
    pub participants: usize,
    /// Lobby waiters over all rooms.
    pub waiting: usize,
}

/// The queue of outputs, kept apart from the rooms so both can be borrowed at once.
#[derive(Debug, Default)]
struct Outbox {
    queue: VecDeque<Output>,
}

impl Outbox {
    fn send(&mut self, conn: ConnId, message: &ServerMessage) {
        let text: Arc<str> = message.to_json().into();
        self.queue.push_back(Output::Send { conn, text });
    }

    fn broadcast(&mut self, conns: impl IntoIterator<Item = ConnId>, message: &ServerMessage) {
        let text: Arc<str> = message.to_json().into();
        for conn in conns {
            self.queue.push_back(Output::Send {
                conn,
                text: Arc::clone(&text),
            });
        }
    }

    fn media(&mut self, command: MediaCommand) {
        self.queue.push_back(Output::Media(command));
    }

    fn close(&mut self, conn: ConnId, reason: CloseReason) {
        self.queue.push_back(Output::Close { conn, reason });
    }
}
