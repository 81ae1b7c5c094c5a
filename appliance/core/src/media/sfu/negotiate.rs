//! Session descriptions the SFU reads and writes: the answer to a publish offer, the offer to a
//! subscriber and the reading of its answer. What is accepted is fixed here: BUNDLE, rtcp-mux,
//! Opus, VP8, VP9 or H.264 (packetization-mode 1), NACK/PLI/FIR feedback, the mid,
//! audio-level and abs-send-time header extensions.

use core::net::SocketAddr;

use crate::media::dtls::CertificateFingerprint;
use crate::media::sdp::{
    Attribute, Candidate, CandidateType, Codec, Connection, Direction, ExtMap, Formats, Group,
    MediaKind, MediaSection, Msid, MsidSemantic, Origin, Parameter, RtcpFeedback,
    SessionDescription, Setup, SsrcDescription,
};
use crate::secret::Secret;
use crate::signal::{ErrorCode, PublishTrack, TrackKind, TrackSource};

/// The RTP protocol of every media section.
const PROTOCOL: &str = "UDP/TLS/RTP/SAVPF";

/// `urn:ietf:params:rtp-hdrext:sdes:mid` (RFC 9143).
pub(super) const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// `urn:ietf:params:rtp-hdrext:ssrc-audio-level` (RFC 6464).
pub(super) const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// `http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time`: the publisher's send time,
/// passed on for the subscriber's delay-based bandwidth estimate.
pub(super) const ABS_SEND_TIME_URI: &str =
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";

/// IDs of the header extensions in our offers.
const OFFER_AUDIO_LEVEL_ID: u8 = 1;
const OFFER_ABS_SEND_TIME_ID: u8 = 2;
const OFFER_MID_ID: u8 = 4;

/// Payload types of our offers, one per codec.
const OPUS_PT: u8 = 111;
const VP8_PT: u8 = 96;
const VP9_PT: u8 = 98;
const H264_PT: u8 = 102;

/// Most fingerprints taken from one description.
const MAX_FINGERPRINTS: usize = 4;

/// Our side of a transport, as written into descriptions.
pub(super) struct LocalTransport<'a> {
    pub ufrag: &'a str,
    pub pwd: &'a Secret,
    pub fingerprint: &'a CertificateFingerprint,
    pub candidates: &'a [SocketAddr],
    pub setup: Setup,
}

/// The peer's side of a transport, as its description announced it.
#[derive(Debug, Clone)]
pub(super) struct RemoteTransport {
    pub ufrag: String,
    pub fingerprints: Vec<CertificateFingerprint>,
    pub setup: Option<Setup>,
}

/// A publisher's media section the answer accepted.
#[derive(Debug, Clone)]
pub(super) struct AcceptedTrack {
    pub mid: String,
    pub source: TrackSource,
    pub codec: Codec,
    pub ssrcs: Vec<u32>,
}

/// The IDs of the header extensions negotiated on one transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Extensions {
    pub mid: Option<u8>,
    pub audio_level: Option<u8>,
    pub abs_send_time: Option<u8>,
}

/// One media section of a subscriber's offer.
pub(super) struct OfferedSection<'a> {
    pub mid: &'a str,
    pub live: bool,
    pub participant: u64,
    pub source: TrackSource,
    pub codec: &'a Codec,
    pub ssrc: u32,
}

/// Reads the transport of a description: ICE credentials and fingerprints of the first section
/// that is not rejected, which must be in a BUNDLE group with every other accepted section and
/// use rtcp-mux.
pub(super) fn remote_transport(
    description: &SessionDescription,
) -> Result<RemoteTransport, ErrorCode> {
    let accepted: Vec<&MediaSection> = description
        .media
        .iter()
        .filter(|media| media.is_rtp() && !media.is_rejected())
        .collect();
    let first = accepted.first().ok_or(ErrorCode::InvalidSdp)?;
    let bundle = description.bundle_group().ok_or(ErrorCode::InvalidSdp)?;
    let bundled = accepted.iter().all(|media| {
        media.rtcp_mux
            && media
                .mid
                .as_ref()
                .is_some_and(|mid| bundle.mids.contains(mid))
    });
    if !bundled {
        return Err(ErrorCode::InvalidSdp);
    }
    let ufrag = description
        .ice_ufrag_of(first)
        .ok_or(ErrorCode::InvalidSdp)?;
    description.ice_pwd_of(first).ok_or(ErrorCode::InvalidSdp)?;
    let fingerprints: Vec<CertificateFingerprint> = description
        .fingerprints_of(first)
        .iter()
        .filter_map(|fingerprint| CertificateFingerprint::from_sdp(fingerprint).ok())
        .take(MAX_FINGERPRINTS)
        .collect();
    if fingerprints.is_empty() {
        return Err(ErrorCode::InvalidSdp);
    }
    Ok(RemoteTransport {
        ufrag: ufrag.to_owned(),
        fingerprints,
        setup: description.setup_of(first),
    })
}

/// The codec we accept from a publisher's section, with only the feedback we act on; `None`
/// when it offers none of ours.
fn choose_codec(media: &MediaSection) -> Option<Codec> {
    let codecs = media.codecs();
    let chosen = match media.kind {
        MediaKind::Audio => codecs
            .into_iter()
            .find(|codec| codec.is("opus") && codec.clock_rate == 48_000),
        MediaKind::Video => {
            let vp8 = codecs
                .iter()
                .find(|codec| codec.is("VP8") && codec.clock_rate == 90_000);
            // Profile 0 only: what every browser decodes.
            let vp9 = || {
                codecs.iter().find(|codec| {
                    codec.is("VP9")
                        && codec.clock_rate == 90_000
                        && codec.parameter("profile-id").is_none_or(|id| id == "0")
                })
            };
            let h264 = || {
                codecs.iter().find(|codec| {
                    codec.is("H264")
                        && codec.clock_rate == 90_000
                        && codec.parameter("packetization-mode") == Some("1")
                })
            };
            vp8.or_else(vp9).or_else(h264).cloned()
        }
        _ => None,
    }?;
    Some(with_our_feedback(chosen))
}

#[cfg(test)]
pub(super) fn choose_codec_for_tests(media: &MediaSection) -> Option<Codec> {
    choose_codec(media)
}

/// Keeps the feedback the SFU handles: NACK, PLI and FIR for video, none for audio.
fn with_our_feedback(mut codec: Codec) -> Codec {
    let video = codec.clock_rate == 90_000;
    codec.feedback.retain(|feedback| {
        video
            && matches!(
                (feedback.kind.as_str(), feedback.parameter.as_deref()),
                ("nack", None) | ("nack", Some("pli")) | ("ccm", Some("fir"))
            )
    });
    codec
}

/// The codec as subscribers are offered it: our payload type and our feedback, the publisher's
/// parameters.
pub(super) fn canonical(codec: &Codec) -> Codec {
    let payload_type = if codec.is("opus") {
        OPUS_PT
    } else if codec.is("VP8") {
        VP8_PT
    } else if codec.is("VP9") {
        VP9_PT
    } else {
        H264_PT
    };
    let mut canonical = codec.clone();
    canonical.payload_type = payload_type;
    canonical.feedback = if canonical.clock_rate == 90_000 {
        vec![
            RtcpFeedback::new(payload_type, "nack", None),
            RtcpFeedback::new(payload_type, "nack", Some("pli")),
            RtcpFeedback::new(payload_type, "ccm", Some("fir")),
        ]
    } else {
        Vec::new()
    };
    if canonical.is("opus") {
        canonical.parameters = vec![
            Parameter::new("minptime", "10"),
            Parameter::new("useinbandfec", "1"),
        ];
    }
    canonical
}

fn kind_of(kind: TrackKind) -> MediaKind {
    match kind {
        TrackKind::Audio => MediaKind::Audio,
        TrackKind::Video => MediaKind::Video,
    }
}

/// Checks the track list against the offer: each mid names an RTP section of the offer, each
/// source appears once and matches its section's kind.
pub(super) fn check_tracks(
    offer: &SessionDescription,
    tracks: &[PublishTrack],
) -> Result<(), ErrorCode> {
    for (index, track) in tracks.iter().enumerate() {
        let repeated = tracks[..index]
            .iter()
            .any(|other| other.source == track.source || other.mid == track.mid);
        let media = offer
            .media_by_mid(&track.mid)
            .ok_or(ErrorCode::InvalidTracks)?;
        if repeated || !media.is_rtp() || media.kind != kind_of(track.source.kind()) {
            return Err(ErrorCode::InvalidTracks);
        }
    }
    Ok(())
}

/// Our answer to a publish offer, and the sections it accepted. A section is accepted when the
/// track list names it, it sends, and it offers one of our codecs; every other is rejected
/// (port 0).
pub(super) fn answer_publish(
    offer: &SessionDescription,
    tracks: &[PublishTrack],
    local: &LocalTransport<'_>,
    origin: Origin,
) -> (SessionDescription, Vec<AcceptedTrack>, Extensions) {
    let mut answer = session(origin);
    let mut accepted = Vec::new();
    let mut extensions = Extensions::default();
    for media in &offer.media {
        let source = media
            .mid
            .as_ref()
            .and_then(|mid| tracks.iter().find(|track| &track.mid == mid))
            .map(|track| track.source);
        let sends = matches!(media.direction(), Direction::SendOnly | Direction::SendRecv);
        let codec = (media.is_rtp() && !media.is_rejected())
            .then(|| choose_codec(media))
            .flatten();
        let Some(codec) = codec else {
            answer.media.push(rejected(media));
            continue;
        };
        let mut section = MediaSection::new(media.kind, 9, PROTOCOL, Formats::Rtp(Vec::new()));
        section.connection = Some(Connection::placeholder());
        section.mid.clone_from(&media.mid);
        add_transport(&mut section, local);
        section.add_codec(&codec);
        let Some(source) = source.filter(|_| sends) else {
            // Not sending now (a camera turned off): kept in the bundle, inactive, so that the
            // client may use the section again in a later offer.
            section.direction = Some(Direction::Inactive);
            answer.media.push(section);
            continue;
        };
        section.direction = Some(Direction::RecvOnly);
        for uri in [MID_URI, AUDIO_LEVEL_URI, ABS_SEND_TIME_URI] {
            if let Some(id) = media.extmap_id(uri) {
                section.extmaps.push(ExtMap::new(id, uri));
                match uri {
                    MID_URI => extensions.mid = Some(id),
                    AUDIO_LEVEL_URI => extensions.audio_level = Some(id),
                    _ => extensions.abs_send_time = Some(id),
                }
            }
        }
        accepted.push(AcceptedTrack {
            mid: media.mid.clone().unwrap_or_default(),
            source,
            ssrcs: media
                .sender_ssrcs()
                .iter()
                .map(|sender| sender.ssrc)
                .collect(),
            codec,
        });
        answer.media.push(section);
    }
    answer.bundle_accepted_sections();
    (answer, accepted, extensions)
}

/// Our offer to a subscriber: every section it ever had, in order; ended ones rejected.
pub(super) fn offer_subscribe(
    sections: &[OfferedSection<'_>],
    local: &LocalTransport<'_>,
    origin: Origin,
) -> SessionDescription {
    let mut offer = session(origin);
    for offered in sections {
        let kind = kind_of(offered.source.kind());
        let mut section = MediaSection::new(kind, 0, PROTOCOL, Formats::Rtp(Vec::new()));
        section.connection = Some(Connection::placeholder());
        section.mid = Some(offered.mid.to_owned());
        section.add_codec(offered.codec);
        if offered.live {
            section.port = 9;
            add_transport(&mut section, local);
            section.direction = Some(Direction::SendOnly);
            section.extmaps.push(ExtMap::new(OFFER_MID_ID, MID_URI));
            if kind == MediaKind::Audio {
                section
                    .extmaps
                    .push(ExtMap::new(OFFER_AUDIO_LEVEL_ID, AUDIO_LEVEL_URI));
            } else {
                section
                    .extmaps
                    .push(ExtMap::new(OFFER_ABS_SEND_TIME_ID, ABS_SEND_TIME_URI));
            }
            let stream = offered.participant.to_string();
            let track = format!("{}-{}", offered.participant, offered.source.as_str());
            section.msids.push(Msid {
                stream_id: stream.clone(),
                track_id: Some(track.clone()),
            });
            section.ssrcs.push(SsrcDescription {
                ssrc: offered.ssrc,
                attributes: vec![
                    Attribute::new("cname", Some(&stream)),
                    Attribute::new("msid", Some(&format!("{stream} {track}"))),
                ],
            });
        } else {
            // Ended. Transport attributes without candidates: some stacks want them even on
            // a rejected section.
            add_transport(&mut section, local);
            section.candidates.clear();
            section.end_of_candidates = false;
            section.direction = Some(Direction::Inactive);
        }
        offer.media.push(section);
    }
    offer.bundle_accepted_sections();
    if offer.groups.is_empty() && !offer.media.is_empty() {
        // Every section ended: browsers still expect the BUNDLE group they agreed to.
        offer.groups.push(Group {
            semantics: "BUNDLE".to_owned(),
            mids: offer.media.iter().filter_map(|m| m.mid.clone()).collect(),
        });
    }
    offer
}

/// What a subscriber's answer says: its transport (none when it accepted no section), the
/// extension IDs it kept, and which of our sections it accepted.
pub(super) struct SubscribeAnswer {
    pub transport: Option<RemoteTransport>,
    pub extensions: Extensions,
    pub accepted: Vec<String>,
}

/// Reads a subscriber's answer to an offer with `offered_mids`; the answer must have exactly
/// those sections in that order.
pub(super) fn read_subscribe_answer(
    answer: &SessionDescription,
    offered_mids: &[&str],
) -> Result<SubscribeAnswer, ErrorCode> {
    let same = answer.media.len() == offered_mids.len()
        && answer
            .media
            .iter()
            .zip(offered_mids)
            .all(|(media, mid)| media.mid.as_deref() == Some(*mid));
    if !same {
        return Err(ErrorCode::InvalidSdp);
    }
    let live: Vec<&MediaSection> = answer
        .media
        .iter()
        .filter(|media| !media.is_rejected())
        .collect();
    let transport = if live.is_empty() {
        None
    } else {
        Some(remote_transport(answer)?)
    };
    let extensions = Extensions {
        mid: live.iter().find_map(|media| media.extmap_id(MID_URI)),
        audio_level: live
            .iter()
            .find_map(|media| media.extmap_id(AUDIO_LEVEL_URI)),
        abs_send_time: live
            .iter()
            .find_map(|media| media.extmap_id(ABS_SEND_TIME_URI)),
    };
    Ok(SubscribeAnswer {
        transport,
        extensions,
        accepted: live.iter().filter_map(|media| media.mid.clone()).collect(),
    })
}

fn session(origin: Origin) -> SessionDescription {
    let mut description = SessionDescription::new(origin);
    description.ice_lite = true;
    description.msid_semantic = Some(MsidSemantic {
        semantic: "WMS".to_owned(),
        ids: vec!["*".to_owned()],
    });
    description
}

fn rejected(media: &MediaSection) -> MediaSection {
    let mut section = MediaSection::new(media.kind, 0, &media.protocol, media.formats.clone());
    if let Formats::Rtp(payload_types) = &mut section.formats {
        payload_types.truncate(1);
        if payload_types.is_empty() {
            payload_types.push(0);
        }
    }
    section.connection = Some(Connection::placeholder());
    section.mid.clone_from(&media.mid);
    section.direction = Some(Direction::Inactive);
    section
}

fn add_transport(section: &mut MediaSection, local: &LocalTransport<'_>) {
    section.ice_ufrag = Some(local.ufrag.to_owned());
    section.ice_pwd = Some(local.pwd.clone());
    section.fingerprints = vec![local.fingerprint.to_sdp()];
    section.setup = Some(local.setup);
    section.rtcp_mux = true;
    section.rtcp_rsize = true;
    section.candidates = local
        .candidates
        .iter()
        .enumerate()
        .map(|(index, address)| host_candidate(index, *address))
        .collect();
    section.end_of_candidates = true;
}

/// A host candidate for one announced address; priorities fall with the list's order.
fn host_candidate(index: usize, address: SocketAddr) -> Candidate {
    let preference = 65_535u32.saturating_sub(u32::try_from(index).unwrap_or(u32::MAX));
    Candidate {
        foundation: (index + 1).to_string(),
        component: 1,
        transport: "udp".to_owned(),
        priority: (126 << 24) | (preference << 8) | 255,
        address: address.ip().to_string(),
        port: address.port(),
        kind: CandidateType::Host,
        related_address: None,
        related_port: None,
        extensions: Vec::new(),
    }
}
