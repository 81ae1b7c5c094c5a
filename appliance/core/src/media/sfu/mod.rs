//! The selective forwarding unit: every media transport of every room on one UDP port, sans-IO.
//!
//! Each participant has two transports (docs/protocol.md, "Media"): a **publish** transport on
//! which it sends its tracks (it offers, we answer) and a **subscribe** transport on which it
//! receives everyone else's (we offer, it answers). Each transport is one ICE-lite session (our
//! ufrag and password), one DTLS association (our certificate, the peer's fingerprint from its
//! description) and, once the handshake completed, a pair of SRTP contexts.
//!
//! A datagram is told apart by its first byte (RFC 7983) and then found its transport: STUN by
//! the ufrag in USERNAME; DTLS, RTP and RTCP by the source address an authenticated check
//! validated. RTP from a publisher is decrypted once, matched to its track by SSRC (or by the
//! mid header extension), and for each subscriber of the room rewritten (payload type, mid and
//! audio-level extensions with the subscriber's IDs) and encrypted once; video packets are kept,
//! encrypted, in a per-subscriber cache to answer NACKs. PLI and FIR from subscribers become a
//! PLI to the publisher (at most one per stream per `keyframe_interval`); publishers' sender
//! reports are forwarded; we send receiver reports to publishers. SSRCs, sequence numbers and
//! timestamps pass unchanged (no simulcast), so a subscriber's offer names the publisher's SSRC.
//!
//! Inputs: [`Sfu::handle_command`] (from signalling), [`Sfu::handle_datagram`],
//! [`Sfu::handle_timeout`]. Outputs: [`Sfu::poll_transmit`], [`Sfu::poll_event`] (to
//! signalling), [`Sfu::poll_timeout`]. Every dropped datagram is counted by [`DropReason`].

mod negotiate;
mod stats;
#[cfg(test)]
mod tests;

pub use stats::{DropReason, SfuStats};

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use core::net::SocketAddr;

use negotiate::{Extensions, LocalTransport, OfferedSection, RemoteTransport};

use crate::media::demux::{PacketKind, classify};
use crate::media::dtls::{CertificateFingerprint, DtlsEndpoint, DtlsEvent, Transmit};
use crate::media::rtcp::{self, ReportBlock, RtcpCompound, RtcpPacket};
use crate::media::rtp::{ONE_BYTE_PROFILE, RtpPacket};
use crate::media::sdp::{Codec, Origin, SessionDescription, Setup};
use crate::media::srtp::{SrtpContext, SrtpError};
use crate::media::stun::{self, BindingDecision, StunMessage};
use crate::room::Entropy;
use crate::secret::Secret;
use crate::signal::{ErrorCode, PublishTrack, SubscribeTrack, TrackKind, TrackSource};

/// How the SFU behaves and what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfuConfig {
    /// Host candidates written into every description: the appliance's addresses with the
    /// media port. At least one.
    pub candidates: Vec<SocketAddr>,
    /// Participants with media at once (each has up to two transports).
    pub max_participants: usize,
    /// Encrypted video packets kept per subscriber stream to answer NACKs.
    pub nack_cache_packets: usize,
    /// Time without a valid ICE check after which we stop sending to an address (RFC 7675).
    pub consent_timeout: Duration,
    /// Time between receiver reports to each publisher.
    pub report_interval: Duration,
    /// Shortest time between two key-frame requests for one stream.
    pub keyframe_interval: Duration,
    /// Time a subscriber has to answer an offer; then the offer is made again with a new
    /// version (a lost message or a stuck client must not stop its media for good).
    pub answer_timeout: Duration,
}

impl Default for SfuConfig {
    fn default() -> Self {
        Self {
            candidates: Vec::new(),
            max_participants: 1000,
            nack_cache_packets: 512,
            consent_timeout: Duration::from_secs(30),
            report_interval: Duration::from_secs(1),
            keyframe_interval: Duration::from_millis(300),
            answer_timeout: Duration::from_secs(10),
        }
    }
}

/// What signalling asks of the media plane (also carried between processes, see the server's
/// `ipc` module).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MediaCommand {
    /// A participant was admitted to a room; they will receive its tracks.
    Join {
        /// The participant.
        participant: u64,
        /// The room.
        room: String,
    },
    /// A participant left; their transports and tracks end.
    Leave {
        /// The participant.
        participant: u64,
    },
    /// A `publish` message: an offer for the participant's publish transport.
    Publish {
        /// The participant.
        participant: u64,
        /// The offer.
        sdp: String,
        /// What each sending section carries.
        tracks: Vec<PublishTrack>,
    },
    /// A `subscribe_answer` message.
    SubscribeAnswer {
        /// The participant.
        participant: u64,
        /// The offer's version it answers.
        version: u64,
        /// The answer.
        sdp: String,
    },
}

/// What the media plane tells signalling to send.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MediaEvent {
    /// Send `publish_answer`.
    PublishAnswer {
        /// To whom.
        participant: u64,
        /// The answer.
        sdp: String,
    },
    /// Send `subscribe_offer`.
    SubscribeOffer {
        /// To whom.
        participant: u64,
        /// The offer's version.
        version: u64,
        /// The offer.
        sdp: String,
        /// Which track each section carries (ended sections are not listed).
        tracks: Vec<SubscribeTrack>,
    },
    /// Send `media_reset`: the media plane was restarted (emitted by the shell that restarted
    /// it, never by the SFU).
    Reset {
        /// To whom.
        participant: u64,
    },
    /// Send `error` with this code.
    Refused {
        /// To whom.
        participant: u64,
        /// Why.
        code: ErrorCode,
    },
}

type TransportId = u64;

/// Sections of a subscriber's connection from which ended ones are recycled for new tracks.
const RECYCLE_FROM: usize = 32;

/// Most addresses one transport may validate (one per candidate pair the peer tries).
const MAX_ADDRESSES: usize = 8;

/// Length of our ICE ufrag and password in characters (RFC 8839: at least 4 and 22).
const UFRAG_LEN: usize = 8;
const PWD_LEN: usize = 24;

/// A published track, named for routing: whose, which source, which incarnation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct TrackKey {
    participant: u64,
    source: TrackSource,
    generation: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Publish,
    Subscribe,
}

struct Srtp {
    remote: SocketAddr,
    inbound: SrtpContext,
    outbound: SrtpContext,
}

struct Transport {
    participant: u64,
    role: Role,
    ufrag: String,
    pwd: Secret,
    remote: Option<RemoteTransport>,
    addresses: Vec<SocketAddr>,
    selected: Option<SocketAddr>,
    last_check: Option<Instant>,
    srtp: Option<Srtp>,
    /// Our SSRC as the sender of RTCP on this transport.
    rtcp_ssrc: u32,
}

impl Transport {
    /// Where to send, if the path is consented and keyed.
    fn sending(&mut self) -> Option<(SocketAddr, &mut SrtpContext)> {
        let destination = self.selected?;
        let srtp = self.srtp.as_mut()?;
        Some((destination, &mut srtp.outbound))
    }

    fn dtls_client(&self) -> bool {
        self.remote
            .as_ref()
            .is_some_and(|remote| remote.setup == Some(Setup::Passive))
    }
}

/// Reception state of one publisher SSRC, for receiver reports (RFC 3550 A.1, A.3).
#[derive(Debug, Clone, Default)]
struct Reception {
    base: u32,
    highest: u32,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    last_sr: Option<(u32, Instant)>,
}

impl Reception {
    fn new(sequence: u16) -> Self {
        Self {
            base: u32::from(sequence),
            highest: u32::from(sequence),
            received: 1,
            ..Self::default()
        }
    }

    fn update(&mut self, sequence: u16) {
        self.received += 1;
        let highest_low = self.highest as u16;
        let ahead = sequence.wrapping_sub(highest_low);
        if ahead != 0 && ahead < 0x8000 {
            let cycles = self.highest & 0xFFFF_0000;
            let wrapped = sequence < highest_low;
            self.highest = cycles + u32::from(sequence) + if wrapped { 0x1_0000 } else { 0 };
        }
    }

    fn block(&mut self, ssrc: u32, now: Instant) -> ReportBlock {
        let expected = u64::from(self.highest.wrapping_sub(self.base)) + 1;
        let lost = i64::try_from(expected).unwrap_or(i64::MAX)
            - i64::try_from(self.received).unwrap_or(i64::MAX);
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        let lost_interval = expected_interval.saturating_sub(received_interval);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let fraction_lost = (lost_interval << 8)
            .checked_div(expected_interval)
            .map_or(0, |fraction| u8::try_from(fraction).unwrap_or(u8::MAX));
        let (last_sr, delay_since_last_sr) = self.last_sr.map_or((0, 0), |(ntp, at)| {
            let delay = now.saturating_duration_since(at);
            let units = delay.as_secs_f64() * 65_536.0;
            (ntp, units.min(f64::from(u32::MAX)) as u32)
        });
        ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: i32::try_from(lost).unwrap_or(i32::MAX),
            highest_sequence: self.highest,
            jitter: 0,
            last_sr,
            delay_since_last_sr,
        }
    }
}

struct PublishedTrack {
    key: TrackKey,
    mid: String,
    codec: Codec,
    ssrcs: Vec<u32>,
    last_keyframe_request: Option<Instant>,
}

struct Publisher {
    transport: TransportId,
    session_id: u64,
    version: u64,
    tracks: Vec<PublishedTrack>,
    extensions: Extensions,
    reception: HashMap<u32, Reception>,
}

/// A cache of encrypted packets of one stream, by sequence number.
struct NackCache {
    packets: Vec<Option<(u16, Vec<u8>)>>,
}

impl NackCache {
    fn new(capacity: usize) -> Self {
        Self {
            packets: vec![None; capacity],
        }
    }

    fn put(&mut self, sequence: u16, packet: &[u8]) {
        if self.packets.is_empty() {
            return;
        }
        let slot = usize::from(sequence) % self.packets.len();
        match &mut self.packets[slot] {
            Some((stored, bytes)) => {
                *stored = sequence;
                bytes.clear();
                bytes.extend_from_slice(packet);
            }
            empty => *empty = Some((sequence, packet.to_vec())),
        }
    }

    fn get(&self, sequence: u16) -> Option<&[u8]> {
        if self.packets.is_empty() {
            return None;
        }
        match &self.packets[usize::from(sequence) % self.packets.len()] {
            Some((stored, bytes)) if *stored == sequence => Some(bytes),
            _ => None,
        }
    }
}

/// One section of a subscriber's transport.
struct Slot {
    mid: String,
    track: TrackKey,
    kind: TrackKind,
    codec: Codec,
    ssrc: u32,
    /// The track still exists; false once it ended (the section is then rejected for good).
    live: bool,
    /// The section went out in an offer.
    offered: bool,
    /// The subscriber's answer rejected the section.
    refused: bool,
    /// The offer version that first showed the section ended, once one did.
    ended_in: Option<u64>,
    cache: NackCache,
}

struct Subscriber {
    transport: Option<TransportId>,
    session_id: u64,
    slots: Vec<Slot>,
    next_mid: u64,
    version: u64,
    /// The version of the last offer the subscriber answered.
    answered: u64,
    outstanding: Option<Vec<String>>,
    /// When the outstanding offer went out.
    offered_at: Option<Instant>,
    dirty: bool,
    extensions: Extensions,
}

struct Participant {
    room: String,
    publisher: Option<Publisher>,
    subscriber: Subscriber,
}

/// The media plane of one server. See the [module documentation](self).
pub struct Sfu<E> {
    config: SfuConfig,
    entropy: E,
    dtls: DtlsEndpoint,
    participants: HashMap<u64, Participant>,
    rooms: HashMap<String, Vec<u64>>,
    transports: HashMap<TransportId, Transport>,
    by_ufrag: HashMap<String, TransportId>,
    by_address: HashMap<SocketAddr, TransportId>,
    /// For each track, who receives it: (subscriber, slot index).
    routes: HashMap<TrackKey, Vec<(u64, usize)>>,
    next_transport: TransportId,
    next_generation: u64,
    next_report: Option<Instant>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<MediaEvent>,
    stats: SfuStats,
    scratch: Vec<u8>,
}

impl<E: Entropy> Sfu<E> {
    /// An SFU with no participants, answering DTLS with `dtls`'s certificate.
    pub fn new(config: SfuConfig, dtls: DtlsEndpoint, entropy: E) -> Self {
        Self {
            config,
            entropy,
            dtls,
            participants: HashMap::new(),
            rooms: HashMap::new(),
            transports: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_address: HashMap::new(),
            routes: HashMap::new(),
            next_transport: 1,
            next_generation: 1,
            next_report: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: SfuStats::default(),
            scratch: Vec::with_capacity(1500),
        }
    }

    /// Counters since start.
    pub fn stats(&self) -> &SfuStats {
        &self.stats
    }

    /// The DTLS endpoint, for its counters.
    pub fn dtls(&self) -> &DtlsEndpoint {
        &self.dtls
    }

    /// Participants with media state.
    pub fn participant_count(&self) -> usize {
        self.participants.len()
    }

    /// Transports whose DTLS handshake completed and that still stand.
    pub fn connected_transports(&self) -> usize {
        self.transports
            .values()
            .filter(|transport| transport.srtp.is_some())
            .count()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next message for signalling.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.dtls.poll_timeout(), self.next_report]
            .into_iter()
            .flatten()
            .min()
    }

    /// Time passed: DTLS retransmissions and deadlines, receiver reports, consent expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.dtls.handle_timeout(now);
        self.drain_dtls(now);
        if self.next_report.is_some_and(|at| at <= now) {
            self.send_reports(now);
            self.expire_consent(now);
            self.offer_again_when_unanswered(now);
            self.next_report = Some(now + self.config.report_interval);
        }
    }

    /// A command from signalling.
    pub fn handle_command(&mut self, now: Instant, command: MediaCommand) {
        match command {
            MediaCommand::Join { participant, room } => self.join(now, participant, room),
            MediaCommand::Leave { participant } => self.leave(now, participant),
            MediaCommand::Publish {
                participant,
                sdp,
                tracks,
            } => {
                if let Err(code) = self.publish(now, participant, &sdp, &tracks) {
                    self.events
                        .push_back(MediaEvent::Refused { participant, code });
                }
            }
            MediaCommand::SubscribeAnswer {
                participant,
                version,
                sdp,
            } => {
                if let Err(code) = self.subscribe_answer(now, participant, version, &sdp) {
                    self.events
                        .push_back(MediaEvent::Refused { participant, code });
                }
            }
        }
        if self.next_report.is_none() {
            self.next_report = Some(now + self.config.report_interval);
        }
    }

    /// One datagram arrived on the media port from `source`. The buffer is decrypted in place.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, datagram: &mut [u8]) {
        match classify(datagram) {
            PacketKind::Stun => self.handle_stun(now, source, datagram),
            PacketKind::Dtls => {
                if self.by_address.contains_key(&source) {
                    self.dtls.handle_datagram(now, source, datagram);
                    self.drain_dtls(now);
                } else {
                    self.stats.drop(DropReason::UnknownSource);
                }
            }
            PacketKind::Rtp => self.handle_rtp(source, datagram),
            PacketKind::Rtcp => self.handle_rtcp(now, source, datagram),
            PacketKind::Unknown => self.stats.drop(DropReason::UnknownKind),
        }
    }

    // Signalling

    fn join(&mut self, now: Instant, participant: u64, room: String) {
        if self.participants.contains_key(&participant) {
            return;
        }
        if self.participants.len() >= self.config.max_participants {
            self.events.push_back(MediaEvent::Refused {
                participant,
                code: ErrorCode::MediaUnavailable,
            });
            return;
        }
        let session_id = self.random_session_id();
        self.rooms
            .entry(room.clone())
            .or_default()
            .push(participant);
        self.participants.insert(
            participant,
            Participant {
                room: room.clone(),
                publisher: None,
                subscriber: Subscriber {
                    transport: None,
                    session_id,
                    slots: Vec::new(),
                    next_mid: 0,
                    version: 0,
                    answered: 0,
                    outstanding: None,
                    offered_at: None,
                    dirty: false,
                    extensions: Extensions::default(),
                },
            },
        );
        self.refresh_room(now, &room);
    }

    fn leave(&mut self, now: Instant, participant: u64) {
        let Some(gone) = self.participants.remove(&participant) else {
            return;
        };
        let transports = gone
            .publisher
            .map(|publisher| publisher.transport)
            .into_iter()
            .chain(gone.subscriber.transport);
        for id in transports {
            self.drop_transport(id);
        }
        if let Some(members) = self.rooms.get_mut(&gone.room) {
            members.retain(|member| *member != participant);
            if members.is_empty() {
                self.rooms.remove(&gone.room);
            }
        }
        self.refresh_room(now, &gone.room);
    }

    fn publish(
        &mut self,
        now: Instant,
        participant: u64,
        sdp: &str,
        tracks: &[PublishTrack],
    ) -> Result<(), ErrorCode> {
        if !self.participants.contains_key(&participant) {
            return Err(ErrorCode::MediaUnavailable);
        }
        let offer = SessionDescription::parse(sdp).map_err(|_| ErrorCode::InvalidSdp)?;
        negotiate::check_tracks(&offer, tracks)?;
        let remote = negotiate::remote_transport(&offer)?;
        let existing = self.participants[&participant]
            .publisher
            .as_ref()
            .map(|publisher| publisher.transport);
        let transport = match existing {
            Some(id) => id,
            None => self.new_transport(participant, Role::Publish),
        };
        self.set_remote(now, transport, remote);
        let (session_id, version) = match &self.participants[&participant].publisher {
            Some(publisher) => (publisher.session_id, publisher.version + 1),
            None => (self.random_session_id(), 1),
        };
        let local = &self.transports[&transport];
        let fingerprint = *self.dtls.local_fingerprint();
        let (answer, accepted, extensions) = negotiate::answer_publish(
            &offer,
            tracks,
            &LocalTransport {
                ufrag: &local.ufrag,
                pwd: &local.pwd,
                fingerprint: &fingerprint,
                candidates: &self.config.candidates,
                setup: Setup::Passive,
            },
            Origin::new(session_id, version),
        );
        let old = self
            .participants
            .get_mut(&participant)
            .and_then(|p| p.publisher.take());
        let mut old_tracks = old.as_ref().map_or_else(Vec::new, |old| {
            old.tracks
                .iter()
                .map(|track| (track.key, track.mid.clone(), track.codec.clone()))
                .collect()
        });
        let reception = old.map(|old| old.reception).unwrap_or_default();
        let mut published = Vec::new();
        for track in accepted {
            let same = old_tracks.iter().position(|(key, mid, codec)| {
                key.source == track.source && *mid == track.mid && *codec == track.codec
            });
            let key = match same {
                Some(index) => old_tracks.swap_remove(index).0,
                None => {
                    self.next_generation += 1;
                    TrackKey {
                        participant,
                        source: track.source,
                        generation: self.next_generation,
                    }
                }
            };
            published.push(PublishedTrack {
                key,
                mid: track.mid,
                codec: track.codec,
                ssrcs: track.ssrcs,
                last_keyframe_request: None,
            });
        }
        let room = {
            let entry = self
                .participants
                .get_mut(&participant)
                .expect("checked at the start");
            entry.publisher = Some(Publisher {
                transport,
                session_id,
                version,
                tracks: published,
                extensions,
                reception,
            });
            entry.room.clone()
        };
        self.events.push_back(MediaEvent::PublishAnswer {
            participant,
            sdp: answer.to_sdp_string(),
        });
        self.refresh_room(now, &room);
        Ok(())
    }

    fn subscribe_answer(
        &mut self,
        now: Instant,
        participant: u64,
        version: u64,
        sdp: &str,
    ) -> Result<(), ErrorCode> {
        let entry = self
            .participants
            .get_mut(&participant)
            .ok_or(ErrorCode::MediaUnavailable)?;
        let subscriber = &mut entry.subscriber;
        let (Some(offered), Some(transport)) = (&subscriber.outstanding, subscriber.transport)
        else {
            return Err(ErrorCode::StaleAnswer);
        };
        if version != subscriber.version {
            return Err(ErrorCode::StaleAnswer);
        }
        let answer = SessionDescription::parse(sdp).map_err(|_| ErrorCode::InvalidSdp)?;
        let mids: Vec<&str> = offered.iter().map(String::as_str).collect();
        let read = negotiate::read_subscribe_answer(&answer, &mids)?;
        subscriber.outstanding = None;
        subscriber.offered_at = None;
        subscriber.answered = version;
        subscriber.extensions = read.extensions;
        for slot in &mut subscriber.slots {
            slot.refused = slot.offered && slot.live && !read.accepted.contains(&slot.mid);
        }
        let room = entry.room.clone();
        if let Some(remote) = read.transport {
            self.set_remote(now, transport, remote);
        }
        self.rebuild_routes(&room);
        self.request_keyframes_for(now, participant);
        self.offer_if_dirty(now, participant);
        Ok(())
    }

    /// Brings every subscriber of `room` up to date with the room's live tracks, and offers
    /// to those whose set changed.
    fn refresh_room(&mut self, now: Instant, room: &str) {
        let Some(members) = self.rooms.get(room).cloned() else {
            return;
        };
        let mut live: Vec<(TrackKey, Codec, u32)> = Vec::new();
        for member in &members {
            let Some(publisher) = &self.participants[member].publisher else {
                continue;
            };
            for track in &publisher.tracks {
                let ssrc = track.ssrcs.first().copied().unwrap_or_default();
                live.push((track.key, negotiate::canonical(&track.codec), ssrc));
            }
        }
        live.sort_by_key(|(key, _, _)| (key.participant, key.source));
        let cache = self.config.nack_cache_packets;
        for member in &members {
            let subscriber = &mut self
                .participants
                .get_mut(member)
                .expect("room members have entries")
                .subscriber;
            let mut changed = false;
            for slot in &mut subscriber.slots {
                let still = live.iter().any(|(key, codec, ssrc)| {
                    *key == slot.track && *codec == slot.codec && *ssrc == slot.ssrc
                });
                if slot.live && !still {
                    slot.live = false;
                    changed = true;
                }
            }
            subscriber.slots.retain(|slot| slot.live || slot.offered);
            for (key, codec, ssrc) in &live {
                let present = subscriber
                    .slots
                    .iter()
                    .any(|slot| slot.live && slot.track == *key);
                if key.participant == *member || present {
                    continue;
                }
                let mid = subscriber.next_mid.to_string();
                subscriber.next_mid += 1;
                let slot = Slot {
                    mid,
                    track: *key,
                    kind: key.source.kind(),
                    codec: codec.clone(),
                    ssrc: *ssrc,
                    live: true,
                    offered: false,
                    refused: false,
                    ended_in: None,
                    cache: NackCache::new(if key.source.kind() == TrackKind::Video {
                        cache
                    } else {
                        0
                    }),
                };
                // In long meetings the list of sections would only grow: past a size, a new
                // track takes the place of a section whose end the subscriber has answered
                // (JSEP recycling, with a new mid).
                let answered = subscriber.answered;
                let recyclable = (subscriber.slots.len() >= RECYCLE_FROM)
                    .then(|| {
                        subscriber
                            .slots
                            .iter()
                            .position(|old| old.ended_in.is_some_and(|v| v <= answered))
                    })
                    .flatten();
                match recyclable {
                    Some(index) => subscriber.slots[index] = slot,
                    None => subscriber.slots.push(slot),
                }
                changed = true;
            }
            if changed {
                subscriber.dirty = true;
            }
        }
        self.rebuild_routes(room);
        for member in members {
            self.offer_if_dirty(now, member);
        }
    }

    /// Sends a new offer to `participant` if their tracks changed and no offer is outstanding.
    fn offer_if_dirty(&mut self, now: Instant, participant: u64) {
        let Some(entry) = self.participants.get(&participant) else {
            return;
        };
        let subscriber = &entry.subscriber;
        if !subscriber.dirty || subscriber.outstanding.is_some() || subscriber.slots.is_empty() {
            return;
        }
        let transport = match subscriber.transport {
            Some(id) => id,
            None => {
                let id = self.new_transport(participant, Role::Subscribe);
                self.participants
                    .get_mut(&participant)
                    .expect("checked above")
                    .subscriber
                    .transport = Some(id);
                id
            }
        };
        let fingerprint = *self.dtls.local_fingerprint();
        let local = &self.transports[&transport];
        let subscriber = &mut self
            .participants
            .get_mut(&participant)
            .expect("checked above")
            .subscriber;
        subscriber.version += 1;
        subscriber.dirty = false;
        let sections: Vec<OfferedSection<'_>> = subscriber
            .slots
            .iter()
            .map(|slot| OfferedSection {
                mid: &slot.mid,
                live: slot.live && !slot.refused,
                participant: slot.track.participant,
                source: slot.track.source,
                codec: &slot.codec,
                ssrc: slot.ssrc,
            })
            .collect();
        let offer = negotiate::offer_subscribe(
            &sections,
            &LocalTransport {
                ufrag: &local.ufrag,
                pwd: &local.pwd,
                fingerprint: &fingerprint,
                candidates: &self.config.candidates,
                setup: Setup::ActPass,
            },
            Origin::new(subscriber.session_id, subscriber.version),
        );
        let tracks = subscriber
            .slots
            .iter()
            .filter(|slot| slot.live && !slot.refused)
            .map(|slot| SubscribeTrack {
                mid: slot.mid.clone(),
                participant: slot.track.participant,
                source: slot.track.source,
                kind: slot.kind,
            })
            .collect();
        subscriber.outstanding = Some(subscriber.slots.iter().map(|s| s.mid.clone()).collect());
        subscriber.offered_at = Some(now);
        let version = subscriber.version;
        for slot in &mut subscriber.slots {
            slot.offered = true;
            if !slot.live && slot.ended_in.is_none() {
                slot.ended_in = Some(version);
            }
        }
        self.events.push_back(MediaEvent::SubscribeOffer {
            participant,
            version: subscriber.version,
            sdp: offer.to_sdp_string(),
            tracks,
        });
    }

    /// Offers again to every subscriber whose offer went unanswered for `answer_timeout`; the
    /// old version's answer is then stale.
    fn offer_again_when_unanswered(&mut self, now: Instant) {
        let timeout = self.config.answer_timeout;
        let mut late = Vec::new();
        for (id, entry) in &mut self.participants {
            let subscriber = &mut entry.subscriber;
            if subscriber
                .offered_at
                .is_some_and(|at| now.saturating_duration_since(at) >= timeout)
                && subscriber.outstanding.is_some()
            {
                subscriber.outstanding = None;
                subscriber.offered_at = None;
                subscriber.dirty = true;
                self.stats.offers_repeated += 1;
                late.push(*id);
            }
        }
        late.sort_unstable();
        for id in late {
            self.offer_if_dirty(now, id);
        }
    }

    /// Recomputes who receives which track in `room`: every live, offered, not refused slot.
    fn rebuild_routes(&mut self, room: &str) {
        let Some(members) = self.rooms.get(room) else {
            return;
        };
        for member in members {
            if let Some(publisher) = &self.participants[member].publisher {
                for track in &publisher.tracks {
                    self.routes.insert(track.key, Vec::new());
                }
            }
        }
        for member in members {
            let subscriber = &self.participants[member].subscriber;
            for (index, slot) in subscriber.slots.iter().enumerate() {
                if slot.live
                    && slot.offered
                    && !slot.refused
                    && let Some(route) = self.routes.get_mut(&slot.track)
                {
                    route.push((*member, index));
                }
            }
        }
        let participants = &self.participants;
        self.routes
            .retain(|key, _| participants.contains_key(&key.participant));
    }

    // Transports

    fn new_transport(&mut self, participant: u64, role: Role) -> TransportId {
        let id = self.next_transport;
        self.next_transport += 1;
        let ufrag = loop {
            let candidate = self.random_ice_string(UFRAG_LEN);
            if !self.by_ufrag.contains_key(&candidate) {
                break candidate;
            }
        };
        let pwd = Secret::new(self.random_ice_string(PWD_LEN));
        let mut ssrc = [0u8; 4];
        self.entropy.fill(&mut ssrc);
        self.by_ufrag.insert(ufrag.clone(), id);
        self.transports.insert(
            id,
            Transport {
                participant,
                role,
                ufrag,
                pwd,
                remote: None,
                addresses: Vec::new(),
                selected: None,
                last_check: None,
                srtp: None,
                rtcp_ssrc: u32::from_be_bytes(ssrc),
            },
        );
        id
    }

    /// Applies the peer's transport from a description. A new ufrag or fingerprint is an ICE
    /// restart: validated addresses and the DTLS association are dropped.
    fn set_remote(&mut self, now: Instant, id: TransportId, remote: RemoteTransport) {
        let Some(transport) = self.transports.get_mut(&id) else {
            return;
        };
        let restart = transport.remote.as_ref().is_some_and(|old| {
            old.ufrag != remote.ufrag || old.fingerprints != remote.fingerprints
        });
        if restart {
            for address in transport.addresses.drain(..) {
                self.dtls.forget(address);
                self.by_address.remove(&address);
            }
            transport.selected = None;
            transport.srtp = None;
        }
        transport.remote = Some(remote);
        let addresses = transport.addresses.clone();
        for address in addresses {
            self.trust_address(now, id, address);
        }
    }

    /// Lets `address` (validated by ICE) start the DTLS handshake of transport `id`.
    fn trust_address(&mut self, now: Instant, id: TransportId, address: SocketAddr) {
        let Some(transport) = self.transports.get(&id) else {
            return;
        };
        let Some(remote) = &transport.remote else {
            return;
        };
        let fingerprints: Vec<CertificateFingerprint> = remote.fingerprints.clone();
        let client = transport.dtls_client() && transport.selected == Some(address);
        for fingerprint in fingerprints {
            // Refused only when the endpoint is full; the handshake then cannot start and
            // shows in the DTLS counters.
            let _ = self.dtls.expect(address, fingerprint);
        }
        if client && !self.dtls.is_connected(address) {
            let _ = self.dtls.connect(now, address);
            self.drain_dtls(now);
        }
    }

    fn drop_transport(&mut self, id: TransportId) {
        let Some(transport) = self.transports.remove(&id) else {
            return;
        };
        self.by_ufrag.remove(&transport.ufrag);
        for address in transport.addresses {
            self.by_address.remove(&address);
            self.dtls.forget(address);
        }
    }

    fn random_session_id(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        self.entropy.fill(&mut bytes);
        // SDP session IDs should fit a signed 64-bit number (RFC 3264 §5).
        u64::from_be_bytes(bytes) >> 2
    }

    fn random_ice_string(&mut self, len: usize) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bytes = vec![0u8; len];
        self.entropy.fill(&mut bytes);
        bytes
            .iter()
            .map(|byte| char::from(ALPHABET[usize::from(byte % 64)]))
            .collect()
    }

    // STUN and DTLS

    fn handle_stun(&mut self, now: Instant, source: SocketAddr, datagram: &[u8]) {
        let Ok(message) = StunMessage::parse(datagram) else {
            self.stats.drop(DropReason::StunMalformed);
            return;
        };
        let mut response = Vec::new();
        let transports = &self.transports;
        let by_ufrag = &self.by_ufrag;
        let decision = stun::answer_binding_request(
            &message,
            source,
            |ufrag| {
                by_ufrag
                    .get(ufrag)
                    .and_then(|id| transports.get(id))
                    .map(|transport| transport.pwd.expose().as_bytes().to_vec())
            },
            &mut response,
        );
        let accepted = match decision {
            BindingDecision::Accept(accepted) => accepted,
            BindingDecision::Reject(_) => {
                self.stats.drop(DropReason::StunRejected);
                if !response.is_empty() {
                    self.transmits.push_back(Transmit {
                        destination: source,
                        payload: response,
                    });
                }
                return;
            }
        };
        let Some(&id) = self.by_ufrag.get(accepted.local_ufrag) else {
            return;
        };
        let use_candidate = accepted.use_candidate;
        let transport = self.transports.get_mut(&id).expect("found by ufrag");
        if transport
            .remote
            .as_ref()
            .is_some_and(|remote| remote.ufrag != accepted.remote_ufrag)
        {
            self.stats.drop(DropReason::StunWrongUfrag);
            return;
        }
        let known = transport.addresses.contains(&source);
        if !known {
            let taken = self
                .by_address
                .get(&source)
                .is_some_and(|owner| *owner != id);
            if taken || transport.addresses.len() >= MAX_ADDRESSES {
                self.stats.drop(DropReason::AddressRefused);
                return;
            }
            transport.addresses.push(source);
            self.by_address.insert(source, id);
        }
        transport.last_check = Some(now);
        // The controlling peer decides the path: a nomination moves sending there, whichever
        // address the DTLS handshake ran on (the association belongs to the transport).
        if use_candidate || transport.selected.is_none() {
            transport.selected = Some(source);
        }
        self.stats.stun_answered += 1;
        self.transmits.push_back(Transmit {
            destination: source,
            payload: response,
        });
        if !known {
            self.trust_address(now, id, source);
        }
    }

    fn drain_dtls(&mut self, now: Instant) {
        while let Some(transmit) = self.dtls.poll_transmit() {
            self.transmits.push_back(transmit);
        }
        while let Some(event) = self.dtls.poll_event() {
            match event {
                DtlsEvent::Connected { remote, keys, .. } => {
                    let Some(&id) = self.by_address.get(&remote) else {
                        continue;
                    };
                    let Some(transport) = self.transports.get_mut(&id) else {
                        continue;
                    };
                    transport.srtp = Some(Srtp {
                        remote,
                        inbound: SrtpContext::new(&keys.remote),
                        outbound: SrtpContext::new(&keys.local),
                    });
                    transport.selected.get_or_insert(remote);
                    self.stats.transports_connected += 1;
                    if transport.role == Role::Subscribe {
                        let participant = transport.participant;
                        self.request_keyframes_for(now, participant);
                    }
                }
                DtlsEvent::Failed { remote, .. } | DtlsEvent::Closed { remote } => {
                    if let Some(transport) = self
                        .by_address
                        .get(&remote)
                        .and_then(|id| self.transports.get_mut(id))
                        && transport
                            .srtp
                            .as_ref()
                            .is_some_and(|srtp| srtp.remote == remote)
                    {
                        transport.srtp = None;
                    }
                }
            }
        }
    }

    fn expire_consent(&mut self, now: Instant) {
        let timeout = self.config.consent_timeout;
        for transport in self.transports.values_mut() {
            let expired = transport
                .last_check
                .is_some_and(|last| now.saturating_duration_since(last) > timeout);
            if expired {
                transport.selected = None;
            }
        }
    }

    // RTP and RTCP

    /// The transport `source` belongs to (an address ICE validated for it), if its DTLS
    /// handshake completed. Any validated address of the transport may carry its SRTP: ICE may
    /// move the path after the handshake.
    fn keyed_transport(&mut self, source: SocketAddr) -> Result<TransportId, DropReason> {
        let id = *self
            .by_address
            .get(&source)
            .ok_or(DropReason::UnknownSource)?;
        let transport = self.transports.get(&id).ok_or(DropReason::UnknownSource)?;
        match &transport.srtp {
            Some(_) => Ok(id),
            None => Err(DropReason::NotConnected),
        }
    }

    fn handle_rtp(&mut self, source: SocketAddr, datagram: &mut [u8]) {
        let id = match self.keyed_transport(source) {
            Ok(id) => id,
            Err(reason) => return self.stats.drop(reason),
        };
        let transport = self.transports.get_mut(&id).expect("found above");
        if transport.role != Role::Publish {
            return self.stats.drop(DropReason::UnexpectedRtp);
        }
        let participant = transport.participant;
        let srtp = transport.srtp.as_mut().expect("checked by keyed_transport");
        let len = match srtp.inbound.unprotect_rtp(datagram) {
            Ok(len) => len,
            Err(error) => return self.stats.drop(srtp_reason(error)),
        };
        let Ok(packet) = RtpPacket::parse(&datagram[..len]) else {
            return self.stats.drop(DropReason::RtpMalformed);
        };
        let Some(key) = self.track_of(participant, &packet) else {
            return self.stats.drop(DropReason::UnknownSsrc);
        };
        self.stats.rtp_received += 1;
        let publisher = self
            .participants
            .get_mut(&participant)
            .and_then(|p| p.publisher.as_mut())
            .expect("track_of found the publisher");
        let ssrc = packet.ssrc();
        let sequence = packet.sequence();
        match publisher.reception.get_mut(&ssrc) {
            Some(reception) => reception.update(sequence),
            None => {
                if publisher.reception.len() < 16 {
                    publisher.reception.insert(ssrc, Reception::new(sequence));
                }
            }
        }
        let values = ExtensionValues {
            audio_level: publisher
                .extensions
                .audio_level
                .and_then(|id| packet.extension(id))
                .and_then(|value| value.first().copied()),
            abs_send_time: publisher
                .extensions
                .abs_send_time
                .and_then(|id| packet.extension(id))
                .and_then(|value| <[u8; 3]>::try_from(value).ok()),
        };
        self.forward(key, &packet, values);
    }

    /// The track an RTP packet of `participant` belongs to: by SSRC, else by the mid header
    /// extension (which then binds the SSRC to the track).
    fn track_of(&mut self, participant: u64, packet: &RtpPacket<'_>) -> Option<TrackKey> {
        let publisher = self
            .participants
            .get_mut(&participant)?
            .publisher
            .as_mut()?;
        let ssrc = packet.ssrc();
        if let Some(track) = publisher
            .tracks
            .iter()
            .find(|track| track.ssrcs.contains(&ssrc))
        {
            return Some(track.key);
        }
        let mid = packet.extension(publisher.extensions.mid?)?;
        let track = publisher
            .tracks
            .iter_mut()
            .find(|track| track.mid.as_bytes() == mid && track.ssrcs.len() < 4)?;
        track.ssrcs.push(ssrc);
        Some(track.key)
    }

    /// Sends one publisher packet to every subscriber of its track.
    fn forward(&mut self, key: TrackKey, packet: &RtpPacket<'_>, values: ExtensionValues) {
        let Some(route) = self.routes.get(&key) else {
            return;
        };
        let header_len = packet.header_len();
        let body = &packet.as_bytes()[header_len..];
        for &(member, index) in route {
            let Some(entry) = self.participants.get_mut(&member) else {
                continue;
            };
            let subscriber = &mut entry.subscriber;
            let Some(transport) = subscriber
                .transport
                .and_then(|id| self.transports.get_mut(&id))
            else {
                continue;
            };
            let Some((destination, outbound)) = transport.sending() else {
                continue;
            };
            let Some(slot) = subscriber.slots.get_mut(index) else {
                continue;
            };
            let out = &mut self.scratch;
            out.clear();
            write_header(out, packet, slot, subscriber.extensions, values);
            out.extend_from_slice(body);
            if outbound.protect_rtp(out).is_err() {
                continue;
            }
            if slot.kind == TrackKind::Video {
                slot.cache.put(packet.sequence(), out);
            }
            self.stats.rtp_forwarded += 1;
            self.transmits.push_back(Transmit {
                destination,
                payload: out.clone(),
            });
        }
    }

    fn handle_rtcp(&mut self, now: Instant, source: SocketAddr, datagram: &mut [u8]) {
        let id = match self.keyed_transport(source) {
            Ok(id) => id,
            Err(reason) => return self.stats.drop(reason),
        };
        let transport = self.transports.get_mut(&id).expect("found above");
        let role = transport.role;
        let participant = transport.participant;
        let srtp = transport.srtp.as_mut().expect("checked by keyed_transport");
        let len = match srtp.inbound.unprotect_rtcp(datagram) {
            Ok(len) => len,
            Err(error) => return self.stats.drop(srtp_reason(error)),
        };
        let Ok(compound) = RtcpCompound::parse(&datagram[..len]) else {
            return self.stats.drop(DropReason::RtcpMalformed);
        };
        for packet in compound.packets() {
            match (role, packet) {
                (Role::Subscribe, RtcpPacket::Pli(feedback)) => {
                    self.request_keyframe(now, participant, feedback.media_ssrc);
                }
                (Role::Subscribe, RtcpPacket::Fir(fir)) => {
                    for entry in fir.entries() {
                        self.request_keyframe(now, participant, entry.ssrc);
                    }
                }
                (Role::Subscribe, RtcpPacket::Nack(nack)) => {
                    self.resend(participant, nack.media_ssrc, nack.lost());
                }
                (Role::Publish, RtcpPacket::SenderReport(report)) => {
                    self.forward_sender_report(now, participant, &report);
                }
                _ => {}
            }
        }
    }

    /// A subscriber asked for a key frame of the stream it receives as `ssrc`.
    fn request_keyframe(&mut self, now: Instant, subscriber: u64, ssrc: u32) {
        self.stats.keyframe_requests_received += 1;
        let Some(slot) = self.participants.get(&subscriber).and_then(|entry| {
            entry
                .subscriber
                .slots
                .iter()
                .find(|slot| slot.live && slot.ssrc == ssrc)
        }) else {
            self.stats.keyframe_requests_unmatched += 1;
            return;
        };
        let key = slot.track;
        self.send_pli(now, key, ssrc);
    }

    /// Asks the publisher of every video track `subscriber` receives for a key frame.
    fn request_keyframes_for(&mut self, now: Instant, subscriber: u64) {
        let Some(entry) = self.participants.get(&subscriber) else {
            return;
        };
        let wanted: Vec<(TrackKey, u32)> = entry
            .subscriber
            .slots
            .iter()
            .filter(|slot| slot.live && slot.kind == TrackKind::Video)
            .map(|slot| (slot.track, slot.ssrc))
            .collect();
        for (key, ssrc) in wanted {
            self.send_pli(now, key, ssrc);
        }
    }

    fn send_pli(&mut self, now: Instant, key: TrackKey, ssrc: u32) {
        let interval = self.config.keyframe_interval;
        let Some(publisher) = self
            .participants
            .get_mut(&key.participant)
            .and_then(|p| p.publisher.as_mut())
        else {
            return;
        };
        let Some(track) = publisher.tracks.iter_mut().find(|track| track.key == key) else {
            return;
        };
        if track
            .last_keyframe_request
            .is_some_and(|last| now.saturating_duration_since(last) < interval)
        {
            self.stats.keyframe_requests_throttled += 1;
            return;
        }
        let Some(transport) = self.transports.get_mut(&publisher.transport) else {
            return;
        };
        let sender = transport.rtcp_ssrc;
        let Some((destination, outbound)) = transport.sending() else {
            return;
        };
        let mut out = Vec::with_capacity(64);
        rtcp::encode_pli(sender, ssrc, &mut out);
        if outbound.protect_rtcp(&mut out).is_ok() {
            track.last_keyframe_request = Some(now);
            self.stats.keyframe_requests += 1;
            self.transmits.push_back(Transmit {
                destination,
                payload: out,
            });
        }
    }

    /// Answers a subscriber's NACK from its cache of the stream with this SSRC.
    fn resend(&mut self, subscriber: u64, ssrc: u32, lost: impl Iterator<Item = u16>) {
        let Some(entry) = self.participants.get(&subscriber) else {
            return;
        };
        let Some(destination) = entry
            .subscriber
            .transport
            .and_then(|id| self.transports.get(&id))
            .and_then(|transport| transport.selected)
        else {
            return;
        };
        let Some(slot) = entry
            .subscriber
            .slots
            .iter()
            .find(|slot| slot.live && slot.ssrc == ssrc)
        else {
            return;
        };
        // A NACK names at most 17 packets per entry; bound the work one packet can cause.
        for sequence in lost.take(256) {
            match slot.cache.get(sequence) {
                Some(bytes) => {
                    self.stats.nack_resent += 1;
                    self.transmits.push_back(Transmit {
                        destination,
                        payload: bytes.to_vec(),
                    });
                }
                None => self.stats.nack_missed += 1,
            }
        }
    }

    /// Passes a publisher's sender report on to the subscribers of that SSRC's track, and keeps
    /// its time for our receiver reports.
    fn forward_sender_report(
        &mut self,
        now: Instant,
        publisher_id: u64,
        report: &rtcp::SenderReport<'_>,
    ) {
        let Some(publisher) = self
            .participants
            .get_mut(&publisher_id)
            .and_then(|p| p.publisher.as_mut())
        else {
            return;
        };
        if let Some(reception) = publisher.reception.get_mut(&report.ssrc) {
            reception.last_sr = Some(((report.ntp_time >> 16) as u32, now));
        }
        let Some(track) = publisher
            .tracks
            .iter()
            .find(|track| track.ssrcs.contains(&report.ssrc))
        else {
            return;
        };
        let Some(route) = self.routes.get(&track.key) else {
            return;
        };
        let mut plain = Vec::with_capacity(28);
        plain.extend_from_slice(&[0x80, rtcp::packet_type::SENDER_REPORT, 0, 6]);
        plain.extend_from_slice(&report.ssrc.to_be_bytes());
        plain.extend_from_slice(&report.ntp_time.to_be_bytes());
        plain.extend_from_slice(&report.rtp_time.to_be_bytes());
        plain.extend_from_slice(&report.packet_count.to_be_bytes());
        plain.extend_from_slice(&report.octet_count.to_be_bytes());
        for &(member, _) in route {
            let Some(transport) = self
                .participants
                .get(&member)
                .and_then(|entry| entry.subscriber.transport)
                .and_then(|id| self.transports.get_mut(&id))
            else {
                continue;
            };
            let Some((destination, outbound)) = transport.sending() else {
                continue;
            };
            let mut out = plain.clone();
            if outbound.protect_rtcp(&mut out).is_ok() {
                self.stats.sender_reports_forwarded += 1;
                self.transmits.push_back(Transmit {
                    destination,
                    payload: out,
                });
            }
        }
    }

    /// A receiver report to every keyed publisher about each of its SSRCs.
    fn send_reports(&mut self, now: Instant) {
        for entry in self.participants.values_mut() {
            let Some(publisher) = entry.publisher.as_mut() else {
                continue;
            };
            let Some(transport) = self.transports.get_mut(&publisher.transport) else {
                continue;
            };
            if publisher.reception.is_empty() {
                continue;
            }
            let sender = transport.rtcp_ssrc;
            let Some((destination, outbound)) = transport.sending() else {
                continue;
            };
            let blocks: Vec<ReportBlock> = publisher
                .reception
                .iter_mut()
                .map(|(ssrc, reception)| reception.block(*ssrc, now))
                .collect();
            let mut out = Vec::with_capacity(8 + 24 * blocks.len() + 32);
            if rtcp::encode_receiver_report(sender, &blocks, &mut out).is_ok()
                && outbound.protect_rtcp(&mut out).is_ok()
            {
                self.stats.receiver_reports_sent += 1;
                self.transmits.push_back(Transmit {
                    destination,
                    payload: out,
                });
            }
        }
    }
}

/// Header extension values of a publisher's packet that subscribers receive.
#[derive(Debug, Clone, Copy, Default)]
struct ExtensionValues {
    audio_level: Option<u8>,
    abs_send_time: Option<[u8; 3]>,
}

/// The RTP header for one subscriber: the publisher's, with the subscriber's payload type and
/// our header extensions (mid, audio level, abs-send-time, with the IDs the subscriber
/// negotiated; one-byte form).
fn write_header(
    out: &mut Vec<u8>,
    packet: &RtpPacket<'_>,
    slot: &Slot,
    extensions: Extensions,
    values: ExtensionValues,
) {
    let one_byte = |id: Option<u8>| id.filter(|id| (1..=14).contains(id));
    let bytes = packet.as_bytes();
    let csrc_len = 4 * usize::from(packet.csrc_count());
    let mid = one_byte(extensions.mid).filter(|_| (1..=16).contains(&slot.mid.len()));
    let level = one_byte(extensions.audio_level)
        .zip(values.audio_level)
        .filter(|_| slot.kind == TrackKind::Audio);
    let send_time = one_byte(extensions.abs_send_time)
        .zip(values.abs_send_time)
        .filter(|_| slot.kind == TrackKind::Video);
    let extended = mid.is_some() || level.is_some() || send_time.is_some();
    out.push((bytes[0] & 0xEF) | if extended { 0x10 } else { 0 });
    out.push((bytes[1] & 0x80) | slot.codec.payload_type);
    out.extend_from_slice(&bytes[2..12 + csrc_len]);
    if !extended {
        return;
    }
    let start = out.len();
    out.extend_from_slice(&ONE_BYTE_PROFILE.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    if let Some(id) = mid {
        let len = u8::try_from(slot.mid.len() - 1).unwrap_or(0);
        out.push((id << 4) | len);
        out.extend_from_slice(slot.mid.as_bytes());
    }
    if let Some((id, value)) = level {
        out.push(id << 4);
        out.push(value);
    }
    if let Some((id, value)) = send_time {
        out.push((id << 4) | 2);
        out.extend_from_slice(&value);
    }
    while !(out.len() - start).is_multiple_of(4) {
        out.push(0);
    }
    let words = u16::try_from((out.len() - start - 4) / 4).unwrap_or(0);
    out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
}

fn srtp_reason(error: SrtpError) -> DropReason {
    match error {
        SrtpError::AuthFailed => DropReason::SrtpAuth,
        SrtpError::Replayed | SrtpError::TooOld => DropReason::SrtpReplay,
        SrtpError::TooManySsrcs | SrtpError::KeyExhausted => DropReason::SrtpLimit,
        _ => DropReason::SrtpMalformed,
    }
}
