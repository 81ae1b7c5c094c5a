//! One room: its admitted participants, its lobby and its settings.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::ConnId;
use super::rate::TokenBucket;
use crate::secret::Secret;
use crate::signal::{LobbyEntry, MediaState, ParticipantInfo, Role, ServerMessage};

#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) conn: ConnId,
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) hand: bool,
    pub(crate) media: MediaState,
    pub(crate) chat: TokenBucket,
}

impl Member {
    pub(crate) fn new(
        conn: ConnId,
        name: String,
        role: Role,
        chat_per_10s: u32,
        now: Instant,
    ) -> Self {
        let chat = TokenBucket::new(chat_per_10s, Duration::from_secs(10), chat_per_10s, now);
        Self {
            conn,
            name,
            role,
            hand: false,
            media: MediaState::default(),
            chat,
        }
    }

    pub(crate) fn info(&self, id: u64) -> ParticipantInfo {
        ParticipantInfo {
            id,
            name: self.name.clone(),
            role: self.role,
            hand: self.hand,
            media: self.media,
        }
    }
}

/// Wrong PINs per room per minute, over all connections.
pub(crate) const PIN_GUESSES_PER_MINUTE: u32 = 10;

#[derive(Debug)]
pub(crate) struct Waiter {
    pub(crate) conn: ConnId,
    pub(crate) name: String,
}

#[derive(Debug)]
pub(crate) struct Room {
    pub(crate) pin: Option<Secret>,
    pub(crate) moderator_secret: Secret,
    pub(crate) locked: bool,
    pub(crate) lobby_enabled: bool,
    pub(crate) members: BTreeMap<u64, Member>,
    pub(crate) lobby: BTreeMap<u64, Waiter>,
    pub(crate) chat_seq: u64,
    /// Wrong PINs this room still tolerates; shared by all connections, so that reconnecting
    /// does not reset the count.
    pub(crate) pin_guesses: TokenBucket,
}

impl Room {
    pub(crate) fn new(
        pin: Option<Secret>,
        moderator_secret: Secret,
        lobby_enabled: bool,
        now: Instant,
    ) -> Self {
        Self {
            pin,
            moderator_secret,
            locked: false,
            lobby_enabled,
            members: BTreeMap::new(),
            lobby: BTreeMap::new(),
            chat_seq: 0,
            pin_guesses: TokenBucket::new(
                PIN_GUESSES_PER_MINUTE,
                Duration::from_secs(60),
                PIN_GUESSES_PER_MINUTE,
                now,
            ),
        }
    }

    pub(crate) fn occupancy(&self) -> usize {
        self.members.len() + self.lobby.len()
    }

    pub(crate) fn member_conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.members.values().map(|m| m.conn)
    }

    pub(crate) fn member_conns_except(&self, id: u64) -> impl Iterator<Item = ConnId> + '_ {
        self.members
            .iter()
            .filter(move |(other, _)| **other != id)
            .map(|(_, m)| m.conn)
    }

    pub(crate) fn moderator_conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.members
            .values()
            .filter(|m| m.role == Role::Moderator)
            .map(|m| m.conn)
    }

    pub(crate) fn lobby_entries(&self) -> Vec<LobbyEntry> {
        self.lobby
            .iter()
            .map(|(id, w)| LobbyEntry {
                id: *id,
                name: w.name.clone(),
            })
            .collect()
    }

    pub(crate) fn state_message(&self) -> ServerMessage {
        ServerMessage::RoomState {
            locked: self.locked,
            lobby_enabled: self.lobby_enabled,
        }
    }

    /// The `joined` message for member `id`; moderators also get the secret and the lobby.
    pub(crate) fn joined_message(&self, room_id: &str, id: u64) -> ServerMessage {
        let role = self.members.get(&id).map_or(Role::Participant, |m| m.role);
        let moderator = role == Role::Moderator;
        ServerMessage::Joined {
            room: room_id.to_owned(),
            you: id,
            role,
            moderator_secret: moderator.then(|| self.moderator_secret.clone()),
            locked: self.locked,
            lobby_enabled: self.lobby_enabled,
            participants: self.members.iter().map(|(id, m)| m.info(*id)).collect(),
            lobby: moderator.then(|| self.lobby_entries()),
        }
    }
}
