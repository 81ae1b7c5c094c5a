//! The signalling wire format, version 1 (docs/protocol.md).
//!
//! [`parse`] turns one WebSocket text frame into a [`ClientMessage`] or a [`ParseError`] with a
//! stable [`ErrorCode`]; [`ServerMessage`] is everything the server sends. The parser checks the
//! size first, then the JSON shape, then the message type, then the fields: unknown fields are
//! rejected so that a typo never silently changes meaning.

mod message;

pub use message::{
    ClientMessage, LeaveReason, Limits as WireLimits, LobbyEntry, MediaState, ParticipantInfo,
    PublishTrack, Role, ServerMessage, SubscribeTrack, TrackKind, TrackSource,
};
use serde::{Deserialize, Serialize};

/// The protocol version this server speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Stable error codes sent in `error` messages. The `snake_case` names are the wire values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // each code is described in docs/protocol.md and by `message()`
pub enum ErrorCode {
    Malformed,
    TooLarge,
    UnknownType,
    BinaryNotSupported,
    UnsupportedProtocol,
    RateLimited,
    InvalidRoom,
    InvalidName,
    InvalidPin,
    InvalidText,
    WrongPin,
    WrongSecret,
    RoomLocked,
    RoomFull,
    RoomNotFound,
    AlreadyJoined,
    NotJoined,
    NotModerator,
    UnknownParticipant,
    ChatTooLong,
    ChatRateLimited,
    InvalidSdp,
    InvalidTracks,
    StaleAnswer,
    MediaUnavailable,
}

impl ErrorCode {
    /// Every code, for metrics that list each one.
    pub const ALL: [ErrorCode; 25] = [
        Self::Malformed,
        Self::TooLarge,
        Self::UnknownType,
        Self::BinaryNotSupported,
        Self::UnsupportedProtocol,
        Self::RateLimited,
        Self::InvalidRoom,
        Self::InvalidName,
        Self::InvalidPin,
        Self::InvalidText,
        Self::WrongPin,
        Self::WrongSecret,
        Self::RoomLocked,
        Self::RoomFull,
        Self::RoomNotFound,
        Self::AlreadyJoined,
        Self::NotJoined,
        Self::NotModerator,
        Self::UnknownParticipant,
        Self::ChatTooLong,
        Self::ChatRateLimited,
        Self::InvalidSdp,
        Self::InvalidTracks,
        Self::StaleAnswer,
        Self::MediaUnavailable,
    ];

    /// The wire name, e.g. `"too_large"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::TooLarge => "too_large",
            Self::UnknownType => "unknown_type",
            Self::BinaryNotSupported => "binary_not_supported",
            Self::UnsupportedProtocol => "unsupported_protocol",
            Self::RateLimited => "rate_limited",
            Self::InvalidRoom => "invalid_room",
            Self::InvalidName => "invalid_name",
            Self::InvalidPin => "invalid_pin",
            Self::InvalidText => "invalid_text",
            Self::WrongPin => "wrong_pin",
            Self::WrongSecret => "wrong_secret",
            Self::RoomLocked => "room_locked",
            Self::RoomFull => "room_full",
            Self::RoomNotFound => "room_not_found",
            Self::AlreadyJoined => "already_joined",
            Self::NotJoined => "not_joined",
            Self::NotModerator => "not_moderator",
            Self::UnknownParticipant => "unknown_participant",
            Self::ChatTooLong => "chat_too_long",
            Self::ChatRateLimited => "chat_rate_limited",
            Self::InvalidSdp => "invalid_sdp",
            Self::InvalidTracks => "invalid_tracks",
            Self::StaleAnswer => "stale_answer",
            Self::MediaUnavailable => "media_unavailable",
        }
    }

    /// A fixed English sentence for developers and logs; never contains peer input.
    pub fn message(self) -> &'static str {
        match self {
            Self::Malformed => "The message is not a valid protocol message.",
            Self::TooLarge => "The message is larger than the server accepts.",
            Self::UnknownType => "The message type is not part of this protocol version.",
            Self::BinaryNotSupported => "Binary frames are not supported; send JSON text.",
            Self::UnsupportedProtocol => "This server speaks protocol version 1.",
            Self::RateLimited => "Too many messages; the message was dropped.",
            Self::InvalidRoom => "Room IDs are 1 to 64 characters of A-Z, a-z, 0-9, - and _.",
            Self::InvalidName => "Names are 1 to 64 characters without control characters.",
            Self::InvalidPin => "PINs are 1 to 32 characters.",
            Self::InvalidText => "The chat text is empty.",
            Self::WrongPin => "The room PIN is missing or wrong.",
            Self::WrongSecret => "The moderator secret is wrong.",
            Self::RoomLocked => "The room is locked.",
            Self::RoomFull => "The room is full.",
            Self::RoomNotFound => "The room does not exist.",
            Self::AlreadyJoined => "This connection is already in a room or lobby.",
            Self::NotJoined => "This action needs a participant admitted to a room.",
            Self::NotModerator => "This action needs a moderator.",
            Self::UnknownParticipant => "The participant is not in this room.",
            Self::ChatTooLong => "The chat text is too long.",
            Self::ChatRateLimited => "Too many chat messages; wait a moment.",
            Self::InvalidSdp => {
                "The session description cannot be read or lacks what the server needs."
            }
            Self::InvalidTracks => "The track list does not match the offer.",
            Self::StaleAnswer => "The answer is not for the outstanding offer.",
            Self::MediaUnavailable => "The media plane cannot take this connection now.",
        }
    }
}

/// Why a frame could not be turned into a [`ClientMessage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The frame is larger than the configured limit.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size of the frame in bytes.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Not JSON, not an object, no string `type`, or fields that do not fit the type.
    #[error("message is not a valid protocol message")]
    Malformed,
    /// `type` names no message of this protocol version.
    #[error("message type is unknown")]
    UnknownType,
}

impl ParseError {
    /// The code sent back to the client.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::TooLarge { .. } => ErrorCode::TooLarge,
            Self::Malformed => ErrorCode::Malformed,
            Self::UnknownType => ErrorCode::UnknownType,
        }
    }
}

/// Parses one text frame of at most `max_bytes` bytes.
pub fn parse(frame: &[u8], max_bytes: usize) -> Result<ClientMessage, ParseError> {
    if frame.len() > max_bytes {
        return Err(ParseError::TooLarge {
            size: frame.len(),
            limit: max_bytes,
        });
    }
    let value: serde_json::Value =
        serde_json::from_slice(frame).map_err(|_| ParseError::Malformed)?;
    let kind = value
        .as_object()
        .and_then(|object| object.get("type"))
        .and_then(|kind| kind.as_str())
        .ok_or(ParseError::Malformed)?;
    if !ClientMessage::TYPES.contains(&kind) {
        return Err(ParseError::UnknownType);
    }
    serde_json::from_value(value).map_err(|_| ParseError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_join() {
        let msg = parse(
            br#"{"type":"join","protocol":1,"room":"r1","name":"Alice","pin":"4711"}"#,
            1024,
        )
        .expect("valid join");
        match msg {
            ClientMessage::Join {
                protocol,
                room,
                name,
                pin,
                moderator_secret,
            } => {
                assert_eq!(protocol, 1);
                assert_eq!(room, "r1");
                assert_eq!(name, "Alice");
                assert_eq!(pin.expect("pin given").expose(), "4711");
                assert!(moderator_secret.is_none());
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn parses_unit_messages() {
        assert_eq!(parse(br#"{"type":"ping"}"#, 64), Ok(ClientMessage::Ping {}));
        assert_eq!(
            parse(br#"{"type":"leave"}"#, 64),
            Ok(ClientMessage::Leave {})
        );
        assert_eq!(
            parse(br#"{"type":"end_meeting"}"#, 64),
            Ok(ClientMessage::EndMeeting {})
        );
    }

    #[test]
    fn rejects_oversized_before_parsing() {
        let frame = vec![b' '; 100];
        assert_eq!(
            parse(&frame, 99),
            Err(ParseError::TooLarge {
                size: 100,
                limit: 99
            })
        );
    }

    #[test]
    fn rejects_malformed_shapes() {
        for frame in [
            &b"not json"[..],
            b"[]",
            b"42",
            b"{}",
            br#"{"type":7}"#,
            br#"{"type":"chat"}"#,
            br#"{"type":"chat","text":5}"#,
            br#"{"type":"chat","text":"hi","extra":1}"#,
            br#"{"type":"ping","x":1}"#,
            br#"{"type":"admit","participant":-1}"#,
            b"\xff\xfe",
        ] {
            assert_eq!(
                parse(frame, 1024),
                Err(ParseError::Malformed),
                "{:?}",
                String::from_utf8_lossy(frame)
            );
        }
    }

    #[test]
    fn rejects_unknown_type() {
        assert_eq!(
            parse(br#"{"type":"teleport"}"#, 64),
            Err(ParseError::UnknownType)
        );
    }

    #[test]
    fn every_error_code_has_matching_wire_name() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).expect("serialises");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert!(!code.message().is_empty());
        }
    }

    #[test]
    fn every_listed_type_parses_with_its_fields() {
        let samples = [
            r#"{"type":"join","protocol":1,"room":"a","name":"b"}"#,
            r#"{"type":"leave"}"#,
            r#"{"type":"chat","text":"x"}"#,
            r#"{"type":"hand","raised":true}"#,
            r#"{"type":"admit","participant":1}"#,
            r#"{"type":"reject","participant":1}"#,
            r#"{"type":"lock","locked":true}"#,
            r#"{"type":"set_lobby","enabled":false}"#,
            r#"{"type":"ask_mute","participant":1}"#,
            r#"{"type":"remove","participant":1}"#,
            r#"{"type":"end_meeting"}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"publish","sdp":"v=0","tracks":[{"mid":"0","source":"camera"}]}"#,
            r#"{"type":"subscribe_answer","version":1,"sdp":"v=0"}"#,
            r#"{"type":"media_state","microphone":true,"camera":false,"screen":false}"#,
        ];
        assert_eq!(samples.len(), ClientMessage::TYPES.len());
        for sample in samples {
            assert!(parse(sample.as_bytes(), 1024).is_ok(), "{sample}");
        }
    }
}
