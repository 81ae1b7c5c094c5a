//! A minimal WebRTC endpoint on the client side of the SFU, for tests and the benchmark: a full
//! ICE agent that sends one nominating check, a DTLS client, SRTP, and the session descriptions
//! a browser would write (sendonly Opus/VP8 for publishing, the answer for receiving).
//! Sans-IO like the rest of the core. Not part of the appliance binary (feature `peer`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use core::net::SocketAddr;

use crate::media::demux::{PacketKind, classify};
use crate::media::dtls::{
    CertificateFingerprint, DtlsCertificate, DtlsConfig, DtlsEndpoint, DtlsEvent, Transmit,
};
use crate::media::sdp::{
    Attribute, Codec, Connection, Direction, ExtMap, Formats, MediaKind, MediaSection, Origin,
    RtcpFeedback, SessionDescription, Setup, SsrcDescription,
};
use crate::media::srtp::SrtpContext;
use crate::media::stun::{self, BindingRequest, IceRole, StunMessage, TransactionId};
use crate::secret::Secret;

/// The mid header extension's ID in the peer's descriptions.
pub const MID_EXTENSION_ID: u8 = 4;
/// The audio-level header extension's ID in the peer's descriptions.
pub const AUDIO_LEVEL_EXTENSION_ID: u8 = 1;
/// Payload type of Opus in the peer's publish offer.
pub const OPUS_PT: u8 = 109;
/// Payload type of VP8 in the peer's publish offer.
pub const VP8_PT: u8 = 120;

const CHECK_INTERVAL: Duration = Duration::from_millis(200);
const CONSENT_INTERVAL: Duration = Duration::from_secs(5);

/// One track the peer publishes: section mid, audio or video, SSRC.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingTrack<'a> {
    /// The section's mid.
    pub mid: &'a str,
    /// Audio (Opus) or video (VP8).
    pub kind: MediaKind,
    /// The SSRC it sends with.
    pub ssrc: u32,
}

/// Why the peer could not use a description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// The description does not parse or lacks a candidate, credentials or a fingerprint.
    #[error("the remote description is unusable")]
    BadDescription,
    /// The DTLS endpoint refused.
    #[error("DTLS refused")]
    Dtls,
}

struct Remote {
    address: SocketAddr,
    ufrag: String,
    pwd: Secret,
}

/// The client side of one transport.
pub struct Peer {
    local: SocketAddr,
    ufrag: String,
    pwd: Secret,
    dtls: DtlsEndpoint,
    remote: Option<Remote>,
    srtp: Option<(SrtpContext, SrtpContext)>,
    checked: bool,
    next_check: Option<Instant>,
    transaction: u64,
    transmits: VecDeque<Transmit>,
    rtp: VecDeque<Vec<u8>>,
    rtcp: VecDeque<Vec<u8>>,
    session_version: u64,
}

impl Peer {
    /// A peer at `local` (the address the SFU will see), with its own certificate and ICE
    /// credentials derived from `seed` (tests want them reproducible; they are not secrets).
    pub fn new(local: SocketAddr, certificate: DtlsCertificate, seed: u64) -> Self {
        let config = DtlsConfig {
            admit_unannounced: false,
            ..DtlsConfig::default()
        };
        let dtls =
            DtlsEndpoint::new(config, certificate).expect("the default DTLS config is valid");
        Self {
            local,
            ufrag: format!("p{seed:07}"),
            pwd: Secret::new(format!("peerpassword{seed:016}")),
            dtls,
            remote: None,
            srtp: None,
            checked: false,
            next_check: None,
            transaction: seed << 32,
            transmits: VecDeque::new(),
            rtp: VecDeque::new(),
            rtcp: VecDeque::new(),
            session_version: 0,
        }
    }

    /// The address the peer sends from.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Moves the peer to another local address, as an ICE path switch does: it sends a
    /// nominating check from there at once. DTLS and SRTP stay.
    pub fn move_to(&mut self, now: Instant, local: SocketAddr) {
        self.local = local;
        self.send_check(now);
    }

    /// Whether DTLS completed and SRTP is keyed.
    pub fn is_connected(&self) -> bool {
        self.srtp.is_some()
    }

    /// A publish offer with one sendonly section per track, as a browser writes it.
    pub fn publish_offer(&mut self, tracks: &[OutgoingTrack<'_>]) -> String {
        let mut description = self.session();
        for track in tracks {
            let mut section = self.section(track.kind, track.mid, Direction::SendOnly);
            let codec = match track.kind {
                MediaKind::Audio => Codec {
                    payload_type: OPUS_PT,
                    name: "opus".to_owned(),
                    clock_rate: 48_000,
                    channels: Some(2),
                    parameters: Vec::new(),
                    feedback: Vec::new(),
                },
                _ => Codec {
                    payload_type: VP8_PT,
                    name: "VP8".to_owned(),
                    clock_rate: 90_000,
                    channels: None,
                    parameters: Vec::new(),
                    feedback: vec![
                        RtcpFeedback::new(VP8_PT, "nack", None),
                        RtcpFeedback::new(VP8_PT, "nack", Some("pli")),
                        RtcpFeedback::new(VP8_PT, "transport-cc", None),
                    ],
                },
            };
            section.add_codec(&codec);
            section.ssrcs.push(SsrcDescription {
                ssrc: track.ssrc,
                attributes: vec![Attribute::new("cname", Some("peer"))],
            });
            description.media.push(section);
        }
        description.bundle_accepted_sections();
        description.to_sdp_string()
    }

    /// The answer to a subscribe offer: every section received, with the offer's codecs.
    pub fn subscribe_answer(&mut self, offer: &str) -> Result<String, PeerError> {
        let offer = SessionDescription::parse(offer).map_err(|_| PeerError::BadDescription)?;
        let mut description = self.session();
        for media in &offer.media {
            let mid = media.mid.clone().unwrap_or_default();
            if media.is_rejected() {
                let mut section =
                    MediaSection::new(media.kind, 0, &media.protocol, media.formats.clone());
                section.mid = Some(mid);
                section.direction = Some(Direction::Inactive);
                description.media.push(section);
                continue;
            }
            let mut section = self.section(media.kind, &mid, Direction::RecvOnly);
            section.setup = Some(Setup::Active);
            section.extmaps.clone_from(&media.extmaps);
            for codec in media.codecs() {
                section.add_codec(&codec);
            }
            description.media.push(section);
        }
        description.bundle_accepted_sections();
        Ok(description.to_sdp_string())
    }

    /// Takes the SFU's answer or offer: its candidate, credentials and fingerprint; starts ICE
    /// and then DTLS as client. A description with every section rejected changes nothing.
    pub fn apply_remote(&mut self, now: Instant, sdp: &str) -> Result<(), PeerError> {
        let description = SessionDescription::parse(sdp).map_err(|_| PeerError::BadDescription)?;
        let Some(media) = description.media.iter().find(|media| !media.is_rejected()) else {
            return Ok(());
        };
        let candidate = media.candidates.first().ok_or(PeerError::BadDescription)?;
        let ip = candidate
            .address
            .parse()
            .map_err(|_| PeerError::BadDescription)?;
        let address = SocketAddr::new(ip, candidate.port);
        let ufrag = description
            .ice_ufrag_of(media)
            .ok_or(PeerError::BadDescription)?
            .to_owned();
        let pwd = description
            .ice_pwd_of(media)
            .ok_or(PeerError::BadDescription)?
            .clone();
        for fingerprint in description.fingerprints_of(media) {
            let fingerprint = CertificateFingerprint::from_sdp(fingerprint)
                .map_err(|_| PeerError::BadDescription)?;
            self.dtls
                .expect(address, fingerprint)
                .map_err(|_| PeerError::Dtls)?;
        }
        let fresh = self.remote.as_ref().is_none_or(|r| r.address != address);
        self.remote = Some(Remote {
            address,
            ufrag,
            pwd,
        });
        if fresh {
            self.send_check(now);
        }
        Ok(())
    }

    /// A datagram from the SFU.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, datagram: &mut [u8]) {
        match classify(datagram) {
            PacketKind::Stun => {
                let success = StunMessage::parse(datagram)
                    .is_ok_and(|message| message.class() == stun::Class::SuccessResponse);
                if success && !self.checked {
                    self.checked = true;
                    if let Some(remote) = &self.remote {
                        let address = remote.address;
                        if self.dtls.connect(now, address).is_ok() {
                            self.drain(now);
                        }
                    }
                }
            }
            PacketKind::Dtls => {
                self.dtls.handle_datagram(now, source, datagram);
                self.drain(now);
            }
            PacketKind::Rtp => {
                if let Some((inbound, _)) = &mut self.srtp
                    && let Ok(len) = inbound.unprotect_rtp(datagram)
                {
                    self.rtp.push_back(datagram[..len].to_vec());
                }
            }
            PacketKind::Rtcp => {
                if let Some((inbound, _)) = &mut self.srtp
                    && let Ok(len) = inbound.unprotect_rtcp(datagram)
                {
                    self.rtcp.push_back(datagram[..len].to_vec());
                }
            }
            PacketKind::Unknown => {}
        }
    }

    /// Time passed: ICE checks until answered, then consent; DTLS retransmissions.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_check.is_some_and(|at| at <= now) {
            self.send_check(now);
        }
        self.dtls.handle_timeout(now);
        self.drain(now);
    }

    /// When [`Self::handle_timeout`] wants to be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.next_check, self.dtls.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next datagram to send to the SFU.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next RTP packet received, decrypted.
    pub fn poll_rtp(&mut self) -> Option<Vec<u8>> {
        self.rtp.pop_front()
    }

    /// The next RTCP compound received, decrypted.
    pub fn poll_rtcp(&mut self) -> Option<Vec<u8>> {
        self.rtcp.pop_front()
    }

    /// Encrypts and queues an RTP packet (a whole plain packet, header included). Returns the
    /// protected bytes, or `None` before DTLS completed or when protection refuses.
    pub fn send_rtp(&mut self, packet: &[u8]) -> Option<Vec<u8>> {
        let remote = self.remote.as_ref()?.address;
        let (_, outbound) = self.srtp.as_mut()?;
        let mut out = packet.to_vec();
        outbound.protect_rtp(&mut out).ok()?;
        self.transmits.push_back(Transmit {
            destination: remote,
            payload: out.clone(),
        });
        Some(out)
    }

    /// Encrypts and queues an RTCP compound.
    pub fn send_rtcp(&mut self, compound: &[u8]) -> Option<Vec<u8>> {
        let remote = self.remote.as_ref()?.address;
        let (_, outbound) = self.srtp.as_mut()?;
        let mut out = compound.to_vec();
        outbound.protect_rtcp(&mut out).ok()?;
        self.transmits.push_back(Transmit {
            destination: remote,
            payload: out.clone(),
        });
        Some(out)
    }

    /// Queues raw bytes to the SFU, e.g. a replayed or forged packet.
    pub fn send_raw(&mut self, bytes: Vec<u8>) {
        if let Some(remote) = &self.remote {
            self.transmits.push_back(Transmit {
                destination: remote.address,
                payload: bytes,
            });
        }
    }

    fn send_check(&mut self, now: Instant) {
        let Some(remote) = &self.remote else {
            return;
        };
        self.transaction += 1;
        let mut id = [0u8; 12];
        id[4..].copy_from_slice(&self.transaction.to_be_bytes());
        let username = format!("{}:{}", remote.ufrag, self.ufrag);
        let mut out = Vec::with_capacity(128);
        let request = BindingRequest {
            transaction_id: TransactionId(id),
            username: &username,
            password: remote.pwd.expose().as_bytes(),
            priority: 0x6E00_1EFF,
            role: IceRole::Controlling(self.transaction),
            use_candidate: true,
        };
        if stun::encode_binding_request(&request, &mut out).is_ok() {
            self.transmits.push_back(Transmit {
                destination: remote.address,
                payload: out,
            });
        }
        let interval = if self.checked {
            CONSENT_INTERVAL
        } else {
            CHECK_INTERVAL
        };
        self.next_check = Some(now + interval);
    }

    fn drain(&mut self, _now: Instant) {
        while let Some(transmit) = self.dtls.poll_transmit() {
            self.transmits.push_back(transmit);
        }
        while let Some(event) = self.dtls.poll_event() {
            if let DtlsEvent::Connected { keys, .. } = event {
                self.srtp = Some((
                    SrtpContext::new(&keys.remote),
                    SrtpContext::new(&keys.local),
                ));
            }
        }
    }

    fn session(&mut self) -> SessionDescription {
        self.session_version += 1;
        SessionDescription::new(Origin::new(4_242, self.session_version))
    }

    fn section(&self, kind: MediaKind, mid: &str, direction: Direction) -> MediaSection {
        let mut section = MediaSection::new(kind, 9, "UDP/TLS/RTP/SAVPF", Formats::Rtp(Vec::new()));
        section.connection = Some(Connection::placeholder());
        section.mid = Some(mid.to_owned());
        section.ice_ufrag = Some(self.ufrag.clone());
        section.ice_pwd = Some(self.pwd.clone());
        let fingerprint = self.dtls.local_fingerprint();
        section.fingerprints = vec![fingerprint.to_sdp()];
        section.setup = Some(Setup::ActPass);
        section.rtcp_mux = true;
        section.direction = Some(direction);
        section.extmaps = vec![
            ExtMap::new(MID_EXTENSION_ID, "urn:ietf:params:rtp-hdrext:sdes:mid"),
            ExtMap::new(
                AUDIO_LEVEL_EXTENSION_ID,
                "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            ),
        ];
        section
    }
}

/// A plain RTP packet: version 2, the given fields, a one-byte-form mid extension, `payload`.
pub fn rtp_packet(
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    mid: &str,
    payload: &[u8],
) -> Vec<u8> {
    let mut packet = Vec::with_capacity(payload.len() + 32);
    packet.push(0x90);
    packet.push(payload_type & 0x7F);
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(&timestamp.to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    let mid = mid.as_bytes();
    let element = 1 + mid.len();
    let words = element.div_ceil(4);
    packet.extend_from_slice(&[0xBE, 0xDE, 0, u8::try_from(words).unwrap_or(0)]);
    let len = u8::try_from(mid.len().saturating_sub(1)).unwrap_or(0);
    packet.push((MID_EXTENSION_ID << 4) | (len & 0x0F));
    packet.extend_from_slice(mid);
    packet.resize(packet.len() + words * 4 - element, 0);
    packet.extend_from_slice(payload);
    packet
}
