//! The hub: every connection and every room of one server.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::meeting::{Member, Room, Waiter};
use super::rate::TokenBucket;
use super::{
    CloseReason, ConnId, Counters, Entropy, Gauges, Limits, Outbox, Output, RoomPolicy, validate,
};
use crate::media::sfu::{MediaCommand, MediaEvent};
use crate::secret::Secret;
use crate::signal::{
    self, ClientMessage, ErrorCode, LeaveReason, MediaState, PROTOCOL_VERSION, Role, ServerMessage,
    WireLimits,
};

/// At most one `rate_limited` error per connection per this interval, so that a flood does not
/// turn into a flood of errors.
const RATE_ERROR_INTERVAL: Duration = Duration::from_secs(1);

/// Where a connection is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    Outside,
    Lobby { room: String, id: u64 },
    Room { room: String, id: u64 },
}

#[derive(Debug)]
struct Connection {
    place: Place,
    last_seen: Instant,
    bucket: TokenBucket,
    last_rate_error: Option<Instant>,
    failed_joins: u32,
}

/// An admitted participant's address in the hub; obtained only through [`Hub::member`].
struct MemberRef {
    room: String,
    id: u64,
}

/// A member whose moderator role was checked; obtained only through [`Hub::moderator`].
struct ModeratorRef {
    room: String,
    id: u64,
}

/// Every connection and room of one server. See the [module documentation](super) for the
/// order in which to call the methods.
#[derive(Debug)]
pub struct Hub<E> {
    limits: Limits,
    policy: RoomPolicy,
    entropy: E,
    conns: HashMap<ConnId, Connection>,
    rooms: HashMap<String, Room>,
    next_participant: u64,
    outbox: Outbox,
    counters: Counters,
}

impl<E: Entropy> Hub<E> {
    /// An empty hub.
    pub fn new(limits: Limits, policy: RoomPolicy, entropy: E) -> Self {
        Self {
            limits,
            policy,
            entropy,
            conns: HashMap::new(),
            rooms: HashMap::new(),
            next_participant: 1,
            outbox: Outbox::default(),
            counters: Counters::default(),
        }
    }

    /// A new connection opened. It receives `welcome`, or is closed at once if the server is full.
    pub fn handle_connect(&mut self, conn: ConnId, now: Instant) {
        if self.conns.len() >= self.limits.max_connections {
            self.close(conn, CloseReason::ServerFull);
            return;
        }
        let limits = &self.limits;
        let bucket = TokenBucket::new(
            limits.messages_per_second,
            Duration::from_secs(1),
            limits.message_burst,
            now,
        );
        self.conns.insert(
            conn,
            Connection {
                place: Place::Outside,
                last_seen: now,
                bucket,
                last_rate_error: None,
                failed_joins: 0,
            },
        );
        let welcome = ServerMessage::Welcome {
            protocol: PROTOCOL_VERSION,
            limits: WireLimits {
                max_message_bytes: limits.max_message_bytes,
                chat_max_chars: limits.chat_max_chars,
                idle_timeout_secs: limits.idle_timeout.as_secs(),
            },
        };
        self.outbox.send(conn, &welcome);
    }

    /// One text frame arrived. Frames of unknown or closed connections are ignored.
    pub fn handle_message(&mut self, conn: ConnId, frame: &[u8], now: Instant) {
        if !self.admit_frame(conn, now) {
            return;
        }
        match signal::parse(frame, self.limits.max_message_bytes) {
            Ok(message) => self.dispatch(conn, message, now),
            Err(error) => self.reject(conn, error.code()),
        }
    }

    /// A binary frame arrived; the protocol has none.
    pub fn handle_binary(&mut self, conn: ConnId, now: Instant) {
        if self.admit_frame(conn, now) {
            self.reject(conn, ErrorCode::BinaryNotSupported);
        }
    }

    /// A text frame larger than `max_message_bytes` arrived; the shell did not copy it.
    pub fn handle_oversized(&mut self, conn: ConnId, now: Instant) {
        if self.admit_frame(conn, now) {
            self.reject(conn, ErrorCode::TooLarge);
        }
    }

    /// Counts a frame, resets the idle timer and applies the rate limit. Returns whether the
    /// frame is to be handled.
    fn admit_frame(&mut self, conn: ConnId, now: Instant) -> bool {
        let Some(connection) = self.conns.get_mut(&conn) else {
            return false;
        };
        self.counters.messages_received += 1;
        connection.last_seen = now;
        if connection.bucket.try_take(now) {
            return true;
        }
        self.counters.count_drop(ErrorCode::RateLimited);
        let quiet = connection
            .last_rate_error
            .is_some_and(|at| now.saturating_duration_since(at) < RATE_ERROR_INTERVAL);
        if !quiet {
            connection.last_rate_error = Some(now);
            self.outbox
                .send(conn, &ServerMessage::error(ErrorCode::RateLimited));
        }
        false
    }

    /// The connection ended from the client's side (or the network's).
    pub fn handle_disconnect(&mut self, conn: ConnId, _now: Instant) {
        if self.conns.contains_key(&conn) {
            self.depart(conn, LeaveReason::Disconnected);
            self.conns.remove(&conn);
        }
    }

    /// The shell could not queue a message for this connection: the client reads too slowly.
    pub fn handle_slow(&mut self, conn: ConnId, _now: Instant) {
        if self.conns.contains_key(&conn) {
            self.depart(conn, LeaveReason::TooSlow);
            self.close(conn, CloseReason::TooSlow);
        }
    }

    /// Time has passed; closes idle connections.
    pub fn handle_timeout(&mut self, now: Instant) {
        let idle = self.limits.idle_timeout;
        let mut expired: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| now.saturating_duration_since(c.last_seen) >= idle)
            .map(|(conn, _)| *conn)
            .collect();
        expired.sort();
        for conn in expired {
            self.depart(conn, LeaveReason::IdleTimeout);
            self.close(conn, CloseReason::IdleTimeout);
        }
    }

    /// The next thing for the shell to do, until `None`.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outbox.queue.pop_front()
    }

    /// When [`Hub::handle_timeout`] must be called next, if any connection is open.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.conns
            .values()
            .map(|c| c.last_seen + self.limits.idle_timeout)
            .min()
    }

    /// An event of the media plane: sends the message it asks for to the participant's
    /// connection, if they are still in a room.
    pub fn handle_media(&mut self, event: MediaEvent) {
        let (participant, message) = match event {
            MediaEvent::PublishAnswer { participant, sdp } => {
                (participant, ServerMessage::PublishAnswer { sdp })
            }
            MediaEvent::SubscribeOffer {
                participant,
                version,
                sdp,
                tracks,
            } => (
                participant,
                ServerMessage::SubscribeOffer {
                    version,
                    sdp,
                    tracks,
                },
            ),
            MediaEvent::Reset { participant } => (participant, ServerMessage::MediaReset),
            MediaEvent::Refused { participant, code } => (participant, ServerMessage::error(code)),
        };
        let conn = self
            .rooms
            .values()
            .find_map(|room| room.members.get(&participant))
            .map(|member| member.conn);
        if let Some(conn) = conn {
            self.outbox.send(conn, &message);
        }
    }

    /// Counts since start.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Current sizes.
    pub fn gauges(&self) -> Gauges {
        Gauges {
            connections: self.conns.len(),
            rooms: self.rooms.len(),
            participants: self.rooms.values().map(|r| r.members.len()).sum(),
            waiting: self.rooms.values().map(|r| r.lobby.len()).sum(),
        }
    }

    fn dispatch(&mut self, conn: ConnId, message: ClientMessage, now: Instant) {
        let result = match message {
            ClientMessage::Join {
                protocol,
                room,
                name,
                pin,
                moderator_secret,
            } => self.join(conn, protocol, &room, &name, pin, moderator_secret, now),
            ClientMessage::Leave {} => self.leave(conn),
            ClientMessage::Chat { text } => self.chat(conn, &text, now),
            ClientMessage::Hand { raised } => self.hand(conn, raised),
            ClientMessage::Admit { participant } => self.admit(conn, participant, now),
            ClientMessage::Reject { participant } => self.refuse(conn, participant),
            ClientMessage::Lock { locked } => self.set_room(conn, |room| room.locked = locked),
            ClientMessage::SetLobby { enabled } => {
                self.set_room(conn, |room| room.lobby_enabled = enabled)
            }
            ClientMessage::AskMute { participant } => self.ask_mute(conn, participant),
            ClientMessage::Remove { participant } => self.remove(conn, participant),
            ClientMessage::EndMeeting {} => self.end_meeting(conn),
            ClientMessage::Ping {} => {
                self.outbox.send(conn, &ServerMessage::Pong);
                Ok(())
            }
            ClientMessage::Publish { sdp, tracks } => self.member(conn).map(|at| {
                self.outbox.media(MediaCommand::Publish {
                    participant: at.id,
                    sdp,
                    tracks,
                });
            }),
            ClientMessage::SubscribeAnswer { version, sdp } => self.member(conn).map(|at| {
                self.outbox.media(MediaCommand::SubscribeAnswer {
                    participant: at.id,
                    version,
                    sdp,
                });
            }),
            ClientMessage::MediaState {
                microphone,
                camera,
                screen,
            } => self.set_media_state(
                conn,
                MediaState {
                    microphone,
                    camera,
                    screen,
                },
            ),
        };
        if let Err(code) = result {
            self.reject(conn, code);
        }
    }

    #[allow(clippy::too_many_arguments)] // the fields of one `join` message
    fn join(
        &mut self,
        conn: ConnId,
        protocol: u32,
        room_id: &str,
        name: &str,
        pin: Option<Secret>,
        secret: Option<Secret>,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        let connection = self.conns.get(&conn).ok_or(ErrorCode::NotJoined)?;
        if connection.place != Place::Outside {
            return Err(ErrorCode::AlreadyJoined);
        }
        if protocol != PROTOCOL_VERSION {
            return Err(ErrorCode::UnsupportedProtocol);
        }
        validate::room_id(room_id)?;
        let name = validate::display_name(name)?.to_owned();
        if let Some(pin) = &pin {
            validate::pin(pin)?;
        }

        let Some(room) = self.rooms.get_mut(room_id) else {
            return self.create_room(conn, room_id, name, pin, now);
        };
        let moderator = match &secret {
            Some(secret) if room.moderator_secret.matches(secret) => true,
            Some(_) => return self.failed_attempt(conn, ErrorCode::WrongSecret),
            None => false,
        };
        if !moderator {
            if room.locked {
                return Err(ErrorCode::RoomLocked);
            }
            let pin_ok = match (&room.pin, &pin) {
                (None, _) => true,
                // Once the room's guesses are used up, no PIN is compared at all.
                (Some(_), _) if !room.pin_guesses.has_token(now) => false,
                (Some(expected), Some(given)) => expected.matches(given),
                (Some(_), None) => false,
            };
            if !pin_ok {
                if pin.is_some() {
                    let _ = room.pin_guesses.try_take(now);
                }
                return self.failed_attempt(conn, ErrorCode::WrongPin);
            }
        }
        if room.occupancy() >= self.limits.max_participants_per_room {
            return Err(ErrorCode::RoomFull);
        }

        let id = self.next_participant;
        self.next_participant += 1;
        if moderator || !room.lobby_enabled {
            let role = if moderator {
                Role::Moderator
            } else {
                Role::Participant
            };
            let member = Member::new(conn, name, role, self.limits.chat_per_10s, now);
            self.enter(conn, room_id, id, member);
        } else {
            room.lobby.insert(id, Waiter { conn, name });
            let lobby = room.lobby_entries();
            self.outbox.broadcast(
                room.moderator_conns(),
                &ServerMessage::LobbyChanged { lobby },
            );
            self.outbox.send(
                conn,
                &ServerMessage::LobbyWaiting {
                    room: room_id.to_owned(),
                },
            );
            self.set_place(
                conn,
                Place::Lobby {
                    room: room_id.to_owned(),
                    id,
                },
            );
        }
        Ok(())
    }

    fn create_room(
        &mut self,
        conn: ConnId,
        room_id: &str,
        name: String,
        pin: Option<Secret>,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        if !self.policy.allow_ad_hoc_rooms {
            return Err(ErrorCode::RoomNotFound);
        }
        let mut raw = [0u8; 16];
        self.entropy.fill(&mut raw);
        let secret = Secret::new(raw.iter().map(|b| format!("{b:02x}")).collect());
        self.rooms.insert(
            room_id.to_owned(),
            Room::new(pin, secret, self.policy.lobby_by_default, now),
        );
        let id = self.next_participant;
        self.next_participant += 1;
        let member = Member::new(conn, name, Role::Moderator, self.limits.chat_per_10s, now);
        self.enter(conn, room_id, id, member);
        Ok(())
    }

    /// Counts a wrong PIN or secret; too many close the connection.
    fn failed_attempt(&mut self, conn: ConnId, code: ErrorCode) -> Result<(), ErrorCode> {
        let Some(connection) = self.conns.get_mut(&conn) else {
            return Err(code);
        };
        connection.failed_joins += 1;
        if connection.failed_joins >= self.limits.max_join_attempts {
            self.reject(conn, code);
            self.close(conn, CloseReason::TooManyAttempts);
            return Ok(());
        }
        Err(code)
    }

    /// Puts `member` into the room and tells everyone.
    fn enter(&mut self, conn: ConnId, room_id: &str, id: u64, member: Member) {
        let Some(room) = self.rooms.get_mut(room_id) else {
            return;
        };
        let info = member.info(id);
        room.members.insert(id, member);
        self.outbox.send(conn, &room.joined_message(room_id, id));
        self.outbox.broadcast(
            room.member_conns_except(id),
            &ServerMessage::ParticipantJoined { participant: info },
        );
        self.set_place(
            conn,
            Place::Room {
                room: room_id.to_owned(),
                id,
            },
        );
        self.outbox.media(MediaCommand::Join {
            participant: id,
            room: room_id.to_owned(),
        });
    }

    fn leave(&mut self, conn: ConnId) -> Result<(), ErrorCode> {
        let place = self.conns.get(&conn).map(|c| c.place.clone());
        if place == Some(Place::Outside) {
            return Err(ErrorCode::NotJoined);
        }
        self.depart(conn, LeaveReason::Left);
        self.outbox.send(conn, &ServerMessage::Left);
        Ok(())
    }

    fn chat(&mut self, conn: ConnId, text: &str, now: Instant) -> Result<(), ErrorCode> {
        let at = self.member(conn)?;
        let text = validate::chat_text(text, self.limits.chat_max_chars)?;
        let room = self.rooms.get_mut(&at.room).ok_or(ErrorCode::NotJoined)?;
        let member = room.members.get_mut(&at.id).ok_or(ErrorCode::NotJoined)?;
        if !member.chat.try_take(now) {
            return Err(ErrorCode::ChatRateLimited);
        }
        let name = member.name.clone();
        room.chat_seq += 1;
        let message = ServerMessage::Chat {
            from: at.id,
            name,
            text: text.to_owned(),
            seq: room.chat_seq,
        };
        self.outbox.broadcast(room.member_conns(), &message);
        self.counters.chat_messages += 1;
        Ok(())
    }

    fn hand(&mut self, conn: ConnId, raised: bool) -> Result<(), ErrorCode> {
        let at = self.member(conn)?;
        let room = self.rooms.get_mut(&at.room).ok_or(ErrorCode::NotJoined)?;
        let member = room.members.get_mut(&at.id).ok_or(ErrorCode::NotJoined)?;
        member.hand = raised;
        let participant = member.info(at.id);
        self.outbox.broadcast(
            room.member_conns(),
            &ServerMessage::ParticipantUpdated { participant },
        );
        Ok(())
    }

    fn set_media_state(&mut self, conn: ConnId, media: MediaState) -> Result<(), ErrorCode> {
        let at = self.member(conn)?;
        let room = self.rooms.get_mut(&at.room).ok_or(ErrorCode::NotJoined)?;
        let member = room.members.get_mut(&at.id).ok_or(ErrorCode::NotJoined)?;
        if member.media == media {
            return Ok(());
        }
        member.media = media;
        let participant = member.info(at.id);
        self.outbox.broadcast(
            room.member_conns(),
            &ServerMessage::ParticipantUpdated { participant },
        );
        Ok(())
    }

    fn admit(&mut self, conn: ConnId, target: u64, now: Instant) -> Result<(), ErrorCode> {
        let at = self.moderator(conn)?;
        let waiter = self.take_waiter(&at.room, target)?;
        let member = Member::new(
            waiter.conn,
            waiter.name,
            Role::Participant,
            self.limits.chat_per_10s,
            now,
        );
        self.enter(waiter.conn, &at.room, target, member);
        Ok(())
    }

    fn refuse(&mut self, conn: ConnId, target: u64) -> Result<(), ErrorCode> {
        let at = self.moderator(conn)?;
        let waiter = self.take_waiter(&at.room, target)?;
        self.outbox.send(
            waiter.conn,
            &ServerMessage::LobbyRejected {
                room: at.room.clone(),
            },
        );
        self.set_place(waiter.conn, Place::Outside);
        Ok(())
    }

    /// Takes a waiter out of a room's lobby and shows the moderators the new lobby.
    fn take_waiter(&mut self, room_id: &str, id: u64) -> Result<Waiter, ErrorCode> {
        let room = self.rooms.get_mut(room_id).ok_or(ErrorCode::NotJoined)?;
        let waiter = room
            .lobby
            .remove(&id)
            .ok_or(ErrorCode::UnknownParticipant)?;
        let lobby = room.lobby_entries();
        self.outbox.broadcast(
            room.moderator_conns(),
            &ServerMessage::LobbyChanged { lobby },
        );
        Ok(waiter)
    }

    fn set_room(&mut self, conn: ConnId, change: impl FnOnce(&mut Room)) -> Result<(), ErrorCode> {
        let at = self.moderator(conn)?;
        let room = self.rooms.get_mut(&at.room).ok_or(ErrorCode::NotJoined)?;
        change(room);
        self.outbox
            .broadcast(room.member_conns(), &room.state_message());
        Ok(())
    }

    fn ask_mute(&mut self, conn: ConnId, target: u64) -> Result<(), ErrorCode> {
        let at = self.moderator(conn)?;
        let room = self.rooms.get(&at.room).ok_or(ErrorCode::NotJoined)?;
        let member = room
            .members
            .get(&target)
            .ok_or(ErrorCode::UnknownParticipant)?;
        self.outbox
            .send(member.conn, &ServerMessage::MuteRequested { by: at.id });
        Ok(())
    }

    fn remove(&mut self, conn: ConnId, target: u64) -> Result<(), ErrorCode> {
        let at = self.moderator(conn)?;
        let room = self.rooms.get(&at.room).ok_or(ErrorCode::NotJoined)?;
        let target_conn = room
            .members
            .get(&target)
            .ok_or(ErrorCode::UnknownParticipant)?
            .conn;
        self.outbox
            .send(target_conn, &ServerMessage::Removed { by: at.id });
        self.depart(target_conn, LeaveReason::Removed);
        self.close(target_conn, CloseReason::Removed);
        Ok(())
    }

    fn end_meeting(&mut self, conn: ConnId) -> Result<(), ErrorCode> {
        let at = self.moderator(conn)?;
        self.dissolve(&at.room);
        Ok(())
    }

    /// Ends a room: everyone in it and in its lobby gets `meeting_ended` and is closed.
    fn dissolve(&mut self, room_id: &str) {
        let Some(room) = self.rooms.remove(room_id) else {
            return;
        };
        for id in room.members.keys() {
            self.outbox.media(MediaCommand::Leave { participant: *id });
        }
        let everyone: Vec<ConnId> = room
            .members
            .values()
            .map(|m| m.conn)
            .chain(room.lobby.values().map(|w| w.conn))
            .collect();
        self.outbox
            .broadcast(everyone.iter().copied(), &ServerMessage::MeetingEnded);
        for conn in everyone {
            self.set_place(conn, Place::Outside);
            self.close(conn, CloseReason::MeetingEnded);
        }
    }

    /// Takes the connection out of its room or lobby and tells the others. A room left empty
    /// ends.
    fn depart(&mut self, conn: ConnId, reason: LeaveReason) {
        let Some(connection) = self.conns.get_mut(&conn) else {
            return;
        };
        match std::mem::replace(&mut connection.place, Place::Outside) {
            Place::Outside => {}
            Place::Lobby { room, id } => {
                // Already gone when a moderator admitted or rejected it just now.
                let _ = self.take_waiter(&room, id);
            }
            Place::Room { room: room_id, id } => {
                let Some(room) = self.rooms.get_mut(&room_id) else {
                    return;
                };
                room.members.remove(&id);
                self.outbox.media(MediaCommand::Leave { participant: id });
                if room.members.is_empty() {
                    self.dissolve(&room_id);
                } else {
                    self.outbox.broadcast(
                        room.member_conns(),
                        &ServerMessage::ParticipantLeft {
                            participant: id,
                            reason,
                        },
                    );
                }
            }
        }
    }

    fn member(&self, conn: ConnId) -> Result<MemberRef, ErrorCode> {
        match self.conns.get(&conn).map(|c| &c.place) {
            Some(Place::Room { room, id }) => Ok(MemberRef {
                room: room.clone(),
                id: *id,
            }),
            _ => Err(ErrorCode::NotJoined),
        }
    }

    fn moderator(&self, conn: ConnId) -> Result<ModeratorRef, ErrorCode> {
        let MemberRef { room, id } = self.member(conn)?;
        let role = self
            .rooms
            .get(&room)
            .and_then(|r| r.members.get(&id))
            .map(|m| m.role);
        if role == Some(Role::Moderator) {
            Ok(ModeratorRef { room, id })
        } else {
            Err(ErrorCode::NotModerator)
        }
    }

    fn set_place(&mut self, conn: ConnId, place: Place) {
        if let Some(connection) = self.conns.get_mut(&conn) {
            connection.place = place;
        }
    }

    fn reject(&mut self, conn: ConnId, code: ErrorCode) {
        self.counters.count_drop(code);
        self.outbox.send(conn, &ServerMessage::error(code));
    }

    /// Forgets the connection and asks the shell to close it. Call [`Hub::depart`] first.
    ///
    /// A connection is closed once: a second close (say, an idle waiter whose room just ended)
    /// is ignored. Connections refused before they were registered (server full) are closed too.
    fn close(&mut self, conn: ConnId, reason: CloseReason) {
        if self.conns.remove(&conn).is_none() && reason != CloseReason::ServerFull {
            return;
        }
        self.counters.count_close(reason);
        self.outbox.close(conn, reason);
    }
}
