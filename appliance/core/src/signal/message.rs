//! Message types of protocol version 1.

use serde::{Deserialize, Serialize};

use super::ErrorCode;
use crate::secret::Secret;

/// A message from a client. See docs/protocol.md for each one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[allow(missing_docs)] // documented message by message in docs/protocol.md
// Messages without fields are empty struct variants so that unknown fields are rejected.
pub enum ClientMessage {
    Join {
        protocol: u32,
        room: String,
        name: String,
        #[serde(default)]
        pin: Option<Secret>,
        #[serde(default)]
        moderator_secret: Option<Secret>,
    },
    Leave {},
    Chat {
        text: String,
    },
    Hand {
        raised: bool,
    },
    Admit {
        participant: u64,
    },
    Reject {
        participant: u64,
    },
    Lock {
        locked: bool,
    },
    SetLobby {
        enabled: bool,
    },
    AskMute {
        participant: u64,
    },
    Remove {
        participant: u64,
    },
    EndMeeting {},
    Ping {},
    Publish {
        sdp: String,
        tracks: Vec<PublishTrack>,
    },
    SubscribeAnswer {
        version: u64,
        sdp: String,
    },
    MediaState {
        microphone: bool,
        camera: bool,
        screen: bool,
    },
}

impl ClientMessage {
    /// The wire names of all client message types.
    pub const TYPES: [&'static str; 15] = [
        "join",
        "leave",
        "chat",
        "hand",
        "admit",
        "reject",
        "lock",
        "set_lobby",
        "ask_mute",
        "remove",
        "end_meeting",
        "ping",
        "publish",
        "subscribe_answer",
        "media_state",
    ];

    /// The wire name of this message's type.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Join { .. } => "join",
            Self::Leave {} => "leave",
            Self::Chat { .. } => "chat",
            Self::Hand { .. } => "hand",
            Self::Admit { .. } => "admit",
            Self::Reject { .. } => "reject",
            Self::Lock { .. } => "lock",
            Self::SetLobby { .. } => "set_lobby",
            Self::AskMute { .. } => "ask_mute",
            Self::Remove { .. } => "remove",
            Self::EndMeeting {} => "end_meeting",
            Self::Ping {} => "ping",
            Self::Publish { .. } => "publish",
            Self::SubscribeAnswer { .. } => "subscribe_answer",
            Self::MediaState { .. } => "media_state",
        }
    }
}

/// A participant's role in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May speak, chat and raise a hand.
    Participant,
    /// May additionally admit, reject, lock, mute, remove and end the meeting.
    Moderator,
}

/// A participant as others see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ParticipantInfo {
    pub id: u64,
    pub name: String,
    pub role: Role,
    pub hand: bool,
    pub media: MediaState,
}

/// What a participant sends, as they announced it with `media_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct MediaState {
    pub microphone: bool,
    pub camera: bool,
    pub screen: bool,
}

/// Where a published track comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackSource {
    /// Audio from a microphone.
    Microphone,
    /// Video from a camera.
    Camera,
    /// Video of a shared screen or window.
    Screen,
}

impl TrackSource {
    /// Every source, in the order tracks are listed.
    pub const ALL: [TrackSource; 3] = [Self::Microphone, Self::Camera, Self::Screen];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Microphone => "microphone",
            Self::Camera => "camera",
            Self::Screen => "screen",
        }
    }

    /// The kind of media the source produces.
    pub const fn kind(self) -> TrackKind {
        match self {
            Self::Microphone => TrackKind::Audio,
            Self::Camera | Self::Screen => TrackKind::Video,
        }
    }
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum TrackKind {
    Audio,
    Video,
}

/// A media section of a `publish` offer and what it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct PublishTrack {
    pub mid: String,
    pub source: TrackSource,
}

/// A media section of a `subscribe_offer` and whose track it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct SubscribeTrack {
    pub mid: String,
    pub participant: u64,
    pub source: TrackSource,
    pub kind: TrackKind,
}

/// Someone waiting in the lobby, as moderators see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct LobbyEntry {
    pub id: u64,
    pub name: String,
}

/// Why a participant is no longer in the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum LeaveReason {
    Left,
    Disconnected,
    Removed,
    IdleTimeout,
    TooSlow,
}

/// Limits the server announces in `welcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub chat_max_chars: usize,
    pub idle_timeout_secs: u64,
}

/// A message from the server. See docs/protocol.md for each one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum ServerMessage {
    Welcome {
        protocol: u32,
        limits: Limits,
    },
    Joined {
        room: String,
        you: u64,
        role: Role,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        moderator_secret: Option<Secret>,
        locked: bool,
        lobby_enabled: bool,
        participants: Vec<ParticipantInfo>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        lobby: Option<Vec<LobbyEntry>>,
    },
    LobbyWaiting {
        room: String,
    },
    LobbyRejected {
        room: String,
    },
    LobbyChanged {
        lobby: Vec<LobbyEntry>,
    },
    Left,
    ParticipantJoined {
        participant: ParticipantInfo,
    },
    ParticipantUpdated {
        participant: ParticipantInfo,
    },
    ParticipantLeft {
        participant: u64,
        reason: LeaveReason,
    },
    Chat {
        from: u64,
        name: String,
        text: String,
        seq: u64,
    },
    RoomState {
        locked: bool,
        lobby_enabled: bool,
    },
    MuteRequested {
        by: u64,
    },
    Removed {
        by: u64,
    },
    MeetingEnded,
    Pong,
    PublishAnswer {
        sdp: String,
    },
    SubscribeOffer {
        version: u64,
        sdp: String,
        tracks: Vec<SubscribeTrack>,
    },
    /// The media plane was restarted: every media transport of this participant has ended.
    MediaReset,
    Error {
        code: ErrorCode,
        message: String,
    },
}

impl ServerMessage {
    /// The `error` message for a code, with its fixed English sentence.
    pub fn error(code: ErrorCode) -> Self {
        Self::Error {
            code,
            message: code.message().to_owned(),
        }
    }

    /// Serialises to the JSON text sent in one WebSocket frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages contain only strings, numbers and maps")
    }
}
