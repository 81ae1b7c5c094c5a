//! Any sequence of signalling commands (with arbitrary SDP) and datagrams from a few addresses
//! into the SFU: never a panic, every output datagram goes to an address that sent something,
//! and every refusal carries a media error code.
#![no_main]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kammer_core::media::dtls::{DtlsCertificate, DtlsConfig, DtlsEndpoint};
use kammer_core::media::sfu::{MediaCommand, MediaEvent, Sfu, SfuConfig};
use kammer_core::room::Entropy;
use kammer_core::signal::{ErrorCode, PublishTrack, TrackSource};
use libfuzzer_sys::fuzz_target;

struct Counter(u8);

impl Entropy for Counter {
    fn fill(&mut self, buf: &mut [u8]) {
        for byte in buf {
            self.0 = self.0.wrapping_add(29);
            *byte = self.0;
        }
    }
}

fn certificate() -> DtlsCertificate {
    static CERTIFICATE: OnceLock<DtlsCertificate> = OnceLock::new();
    CERTIFICATE
        .get_or_init(|| DtlsCertificate::generate().expect("a certificate"))
        .clone()
}

fn start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn source(index: u8) -> SocketAddr {
    SocketAddr::from(([198, 51, 100, 1 + index % 4], 5000 + u16::from(index % 4)))
}

fuzz_target!(|data: &[u8]| {
    let dtls = DtlsEndpoint::new(DtlsConfig::default(), certificate()).expect("endpoint");
    let config = SfuConfig {
        candidates: vec![SocketAddr::from(([192, 0, 2, 1], 3478))],
        max_participants: 3,
        ..SfuConfig::default()
    };
    let mut sfu = Sfu::new(config, dtls, Counter(0));
    let mut now = start();
    let mut senders = HashSet::new();
    for chunk in data.split(|byte| *byte == 0xFE).take(64) {
        let Some((&selector, rest)) = chunk.split_first() else {
            continue;
        };
        let participant = u64::from(selector >> 4) % 4;
        let text = String::from_utf8_lossy(rest).into_owned();
        match selector & 0x0F {
            0 => sfu.handle_command(
                now,
                MediaCommand::Join {
                    participant,
                    room: format!("r{}", participant % 2),
                },
            ),
            1 => sfu.handle_command(now, MediaCommand::Leave { participant }),
            2 => sfu.handle_command(
                now,
                MediaCommand::Publish {
                    participant,
                    sdp: text,
                    tracks: vec![
                        PublishTrack {
                            mid: "0".into(),
                            source: TrackSource::Microphone,
                        },
                        PublishTrack {
                            mid: "1".into(),
                            source: TrackSource::Camera,
                        },
                    ],
                },
            ),
            3 => sfu.handle_command(
                now,
                MediaCommand::SubscribeAnswer {
                    participant,
                    version: u64::from(selector >> 6),
                    sdp: text,
                },
            ),
            4 => {
                now += Duration::from_millis(u64::from(rest.first().copied().unwrap_or(0)) * 20);
                sfu.handle_timeout(now);
            }
            _ => {
                let from = source(selector);
                senders.insert(from);
                let mut datagram = rest.to_vec();
                sfu.handle_datagram(now, from, &mut datagram);
            }
        }
        while let Some(transmit) = sfu.poll_transmit() {
            assert!(
                senders.contains(&transmit.destination),
                "sent to {} which never sent anything",
                transmit.destination
            );
        }
        while let Some(event) = sfu.poll_event() {
            if let MediaEvent::Refused { code, .. } = event {
                assert!(matches!(
                    code,
                    ErrorCode::InvalidSdp
                        | ErrorCode::InvalidTracks
                        | ErrorCode::StaleAnswer
                        | ErrorCode::MediaUnavailable
                ));
            }
        }
    }
});
