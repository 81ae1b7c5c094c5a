//! Our server against an rtc-dtls client set up like a browser, packets carried by a small loop
//! in simulated time; plus the pieces (fingerprints, record scan, limits) on their own.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use core::net::SocketAddr;
use rtc_dtls::cipher_suite::CipherSuiteId;
use rtc_dtls::config::{ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig};
use rtc_dtls::crypto_provider::providers::RingProvider;
use rtc_dtls::crypto_provider::{
    ActiveKeyExchange, AeadAlgorithm, AeadCipher, BlockCipherAlgorithm, CbcAlgorithm,
    CryptoAlgorithm, CryptoError, HashAlgorithm, HmacAlgorithm, KeyExchangeAlgorithm, Mac,
    PublicKey, RTCCrypto, RTCCryptoProvider, RTCRandom, SignatureScheme as Scheme,
    StreamCipherAlgorithm,
};
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile as Profile;

use super::policy::{self, PolicyProvider};
use super::record::{RECORD_HEADER_LEN, offered_groups, offered_srtp_profiles, scan};
use super::*;
use crate::media::srtp::{MasterKeys, SrtpContext};

/// The start of simulated time: the one clock read, in tests only.
#[cfg(test)]
fn clock() -> Instant {
    Instant::now()
}

const GCM128: Profile = Profile::Srtp_Aead_Aes_128_Gcm;
const GCM256: Profile = Profile::Srtp_Aead_Aes_256_Gcm;
const CM80: Profile = Profile::Srtp_Aes128_Cm_Hmac_Sha1_80;
/// What Chromium offers in `use_srtp` (its 32-bit-tag profile is not implemented by rtc-dtls).
const BROWSER_PROFILES: [Profile; 3] = [GCM128, GCM256, CM80];

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], port))
}

const SERVER: u16 = 3478;
const CLIENT: u16 = 50_000;

/// Certificates are costly to make: one for the server and one for "the browser", shared.
fn server_certificate() -> DtlsCertificate {
    static CERTIFICATE: OnceLock<DtlsCertificate> = OnceLock::new();
    CERTIFICATE
        .get_or_init(|| DtlsCertificate::generate().expect("a certificate"))
        .clone()
}

fn browser_certificate() -> DtlsCertificate {
    static CERTIFICATE: OnceLock<DtlsCertificate> = OnceLock::new();
    CERTIFICATE
        .get_or_init(|| DtlsCertificate::generate().expect("a certificate"))
        .clone()
}

/// An rtc-dtls client configured like a browser: several suites (ChaCha20 first), the given
/// SRTP profiles, extended master secret, its own certificate, the server checked by fingerprint.
fn browser_config(profiles: &[Profile], server: CertificateFingerprint) -> Arc<HandshakeConfig> {
    browser_config_with(profiles, server, Duration::from_secs(1))
}

fn browser_config_with(
    profiles: &[Profile],
    server: CertificateFingerprint,
    flight_interval: Duration,
) -> Arc<HandshakeConfig> {
    browser_config_on(
        Arc::new(RingProvider::new()),
        profiles,
        server,
        flight_interval,
    )
}

/// The browser-like client on `provider`, which decides the curves it offers.
fn browser_config_on(
    provider: Arc<dyn RTCCryptoProvider>,
    profiles: &[Profile],
    server: CertificateFingerprint,
    flight_interval: Duration,
) -> Arc<HandshakeConfig> {
    let verify: rtc_dtls::config::VerifyPeerCertificateFn =
        Arc::new(move |chain: &[Vec<u8>], _: &[_]| {
            if chain.first().is_some_and(|der| server.matches(der)) {
                Ok(())
            } else {
                Err(rtc_shared::error::Error::ErrInvalidCertificate)
            }
        });
    let config = ConfigBuilder::default()
        .with_crypto_provider(provider)
        .with_certificates(vec![browser_certificate().inner().clone()])
        .with_cipher_suites(vec![
            CipherSuiteId::Tls_Ecdhe_Ecdsa_With_ChaCha20_Poly1305_Sha256,
            CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_128_Gcm_Sha256,
            CipherSuiteId::Tls_Ecdhe_Rsa_With_Aes_128_Gcm_Sha256,
            CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_256_Cbc_Sha,
        ])
        .with_srtp_protection_profiles(profiles.to_vec())
        .with_extended_master_secret(ExtendedMasterSecretType::Require)
        .with_insecure_skip_verify(true)
        .with_verify_peer_certificate(Some(verify))
        .with_flight_interval(flight_interval)
        .build(true, Some(addr(SERVER)))
        .expect("a browser-like client configuration");
    Arc::new(config)
}

fn server(config: DtlsConfig) -> DtlsEndpoint {
    DtlsEndpoint::new(config, server_certificate()).expect("a server")
}

/// A server that expects the browser's certificate from `CLIENT`.
fn expecting_server(config: DtlsConfig) -> DtlsEndpoint {
    let mut server = server(config);
    let fingerprint = *browser_certificate().fingerprint();
    server
        .expect_fingerprint(
            addr(CLIENT),
            fingerprint.algorithm(),
            fingerprint.as_bytes(),
        )
        .expect("room for a fingerprint");
    server
}

/// What [`Net`] does to a datagram on its way from the browser to the server.
type Rewrite = Box<dyn FnMut(&mut [u8])>;

/// The browser's side of the wire and our server, in simulated time.
struct Net {
    start: Instant,
    now: Instant,
    server: DtlsEndpoint,
    browser: Endpoint,
    /// Whether to lose the n-th datagram (from 1) the server sends.
    lose: Box<dyn FnMut(usize) -> bool>,
    /// Datagrams to slip in from the browser's address before each of its own.
    garbage: Vec<Vec<u8>>,
    /// Changes each datagram the browser sends on its way to the server.
    rewrite: Rewrite,
    /// Every datagram the server sent, lost ones included.
    sent: Vec<Vec<u8>>,
    server_sent: usize,
    browser_complete: bool,
    browser_error: bool,
    events: Vec<DtlsEvent>,
}

impl Net {
    fn new(server: DtlsEndpoint, profiles: &[Profile]) -> Self {
        Self::with_browser_interval(server, profiles, Duration::from_secs(1))
    }

    fn with_browser_interval(
        server: DtlsEndpoint,
        profiles: &[Profile],
        interval: Duration,
    ) -> Self {
        let config = browser_config_with(profiles, *server.local_fingerprint(), interval);
        Self::with_browser_config(server, config)
    }

    fn with_browser_config(server: DtlsEndpoint, config: Arc<HandshakeConfig>) -> Self {
        let start = clock();
        let mut browser = Endpoint::new(addr(CLIENT), Default::default(), None);
        browser
            .connect(start, addr(SERVER), config, None)
            .expect("the browser starts");
        Self {
            start,
            now: start,
            server,
            browser,
            lose: Box::new(|_| false),
            garbage: Vec::new(),
            rewrite: Box::new(|_| {}),
            sent: Vec::new(),
            server_sent: 0,
            browser_complete: false,
            browser_error: false,
            events: Vec::new(),
        }
    }

    fn server_done(&self) -> bool {
        self.events.iter().any(|event| {
            matches!(
                event,
                DtlsEvent::Connected { .. } | DtlsEvent::Failed { .. }
            )
        })
    }

    /// Carries datagrams both ways, advancing time when nothing moves, until the server reports
    /// an outcome and the browser completed or failed, or `limit` of simulated time passed.
    fn run(&mut self, limit: Duration) {
        loop {
            let mut moved = false;
            while let Some(transmit) = self.browser.poll_transmit() {
                for garbage in std::mem::take(&mut self.garbage) {
                    self.server
                        .handle_datagram(self.now, addr(CLIENT), &garbage);
                }
                let mut datagram = transmit.message.to_vec();
                (self.rewrite)(&mut datagram);
                self.server
                    .handle_datagram(self.now, addr(CLIENT), &datagram);
                moved = true;
            }
            while let Some(transmit) = self.server.poll_transmit() {
                assert_eq!(transmit.destination, addr(CLIENT));
                self.sent.push(transmit.payload.clone());
                self.server_sent += 1;
                moved = true;
                if (self.lose)(self.server_sent) {
                    continue;
                }
                match self.browser.read(
                    self.now,
                    addr(SERVER),
                    None,
                    transmit.payload.as_slice().into(),
                ) {
                    Ok(events) => {
                        self.browser_complete |= events
                            .iter()
                            .any(|event| matches!(event, EndpointEvent::HandshakeComplete));
                    }
                    Err(_) => self.browser_error = true,
                }
            }
            while let Some(event) = self.server.poll_event() {
                self.events.push(event);
            }
            if self.server_done() && (self.browser_complete || self.browser_error) {
                return;
            }
            if !moved {
                let next = [
                    self.server.poll_timeout(),
                    self.browser.poll_timeout(&addr(SERVER)),
                ]
                .into_iter()
                .flatten()
                .min();
                match next {
                    Some(next) if next <= self.start + limit => {
                        self.now = self.now.max(next);
                        self.server.handle_timeout(self.now);
                        if self.browser.handle_timeout(addr(SERVER), self.now).is_err() {
                            self.browser_error = true;
                        }
                    }
                    _ => return,
                }
            }
        }
    }

    /// The keys of the server's `Connected` event and the browser's own, exported as a browser
    /// does: the same label, no context, split for the client role.
    fn keys(&mut self) -> (SrtpProfile, MasterKeys, MasterKeys) {
        let index = self
            .events
            .iter()
            .position(|event| matches!(event, DtlsEvent::Connected { .. }))
            .unwrap_or_else(|| panic!("no Connected event: {:?}", self.events));
        let DtlsEvent::Connected {
            remote,
            profile,
            keys,
            peer,
        } = self.events.remove(index)
        else {
            unreachable!("a Connected event");
        };
        assert_eq!(remote, addr(CLIENT));
        assert!(peer.fingerprint().matches(browser_certificate().der()));
        assert!(self.browser_complete, "the browser completed too");
        let state = self
            .browser
            .get_connection_state(addr(SERVER))
            .expect("the browser's connection");
        let material = state
            .export_keying_material(DTLS_SRTP_EXPORTER_LABEL, &[], profile.keying_material_len())
            .expect("the browser exports keys");
        let browser =
            MasterKeys::from_keying_material(profile, material.as_ref(), DtlsRole::Client)
                .expect("keying material of the profile's length");
        (profile, keys, browser)
    }
}

fn rtp_packet(seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x80, 96];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    packet.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

/// One packet each way: what one side protects, the other unprotects.
fn assert_same_keys(server: &MasterKeys, browser: &MasterKeys) {
    for (sender, receiver) in [
        (&browser.local, &server.remote),
        (&server.local, &browser.remote),
    ] {
        let plain = rtp_packet(7, b"kammer media");
        let mut packet = plain.clone();
        SrtpContext::new(sender)
            .protect_rtp(&mut packet)
            .expect("protects");
        assert_ne!(packet[12..], plain[12..]);
        let len = SrtpContext::new(receiver)
            .unprotect_rtp(&mut packet)
            .expect("the other side's keys unprotect it");
        assert_eq!(packet[..len], plain[..]);
    }
}

fn handshake(config: DtlsConfig, profiles: &[Profile]) -> Net {
    let mut net = Net::new(expecting_server(config), profiles);
    net.run(Duration::from_secs(30));
    net
}

#[test]
fn handshake_completes_and_both_sides_derive_the_same_srtp_keys() {
    let mut net = handshake(DtlsConfig::default(), &BROWSER_PROFILES);
    let (profile, server_keys, browser_keys) = net.keys();
    assert_eq!(profile, SrtpProfile::AeadAes128Gcm);
    assert_same_keys(&server_keys, &browser_keys);
    assert!(net.server.is_connected(addr(CLIENT)));
    assert_eq!(net.server.handshake_count(), 0);
    assert_eq!(net.server.stats().connected(), 1);
    assert_eq!(net.server.stats().dropped_total(), 0);
    assert_eq!(
        net.server.poll_timeout(),
        None,
        "nothing waits once connected"
    );
    assert!(
        net.now < net.start + Duration::from_millis(1),
        "no retransmission needed"
    );
    let shown = format!("{server_keys:?}");
    assert!(shown.contains("[redacted]"), "{shown}");
}

#[test]
fn gcm_is_chosen_by_our_order_even_when_the_client_lists_cm_first() {
    for (offered, chosen) in [
        (vec![CM80, GCM256, GCM128], SrtpProfile::AeadAes128Gcm),
        (vec![CM80, GCM256], SrtpProfile::AeadAes256Gcm),
        (vec![GCM256, GCM128], SrtpProfile::AeadAes128Gcm),
    ] {
        let mut net = handshake(DtlsConfig::default(), &offered);
        let (profile, server_keys, browser_keys) = net.keys();
        assert_eq!(profile, chosen, "offered {offered:?}");
        assert_same_keys(&server_keys, &browser_keys);
    }
}

#[test]
fn cm_is_chosen_when_the_client_offers_only_cm() {
    let mut net = handshake(DtlsConfig::default(), &[CM80]);
    let (profile, server_keys, browser_keys) = net.keys();
    assert_eq!(profile, SrtpProfile::Aes128CmHmacSha1_80);
    assert_same_keys(&server_keys, &browser_keys);
}

#[test]
fn no_common_srtp_profile_fails_the_handshake() {
    let config = DtlsConfig {
        srtp_profiles: vec![SrtpProfile::AeadAes128Gcm],
        ..DtlsConfig::default()
    };
    let net = handshake(config, &[CM80]);
    assert_failed(&net, HandshakeFailure::NoCommonSrtpProfile);
    assert!(net.browser_error);
}

fn assert_failed(net: &Net, reason: HandshakeFailure) {
    assert!(
        matches!(
            net.events.as_slice(),
            [DtlsEvent::Failed { remote, reason: got }] if *remote == addr(CLIENT) && *got == reason
        ),
        "expected {reason:?}: {:?}",
        net.events
    );
    assert_eq!(net.server.stats().failed(reason), 1);
    assert_eq!(net.server.association_count(), 0);
    assert!(!net.browser_complete);
}

#[test]
fn a_certificate_with_another_fingerprint_fails_the_handshake() {
    let mut server = server(DtlsConfig::default());
    let other = CertificateFingerprint::of_certificate(FingerprintAlgorithm::Sha256, b"other");
    server.expect(addr(CLIENT), other).expect("room");
    let mut net = Net::new(server, &BROWSER_PROFILES);
    net.run(Duration::from_secs(30));
    assert_failed(&net, HandshakeFailure::FingerprintMismatch);
    assert!(
        net.browser_error,
        "the browser got our bad_certificate alert"
    );
}

#[test]
fn any_of_several_announced_fingerprints_may_match() {
    let mut server = server(DtlsConfig::default());
    let der = browser_certificate().der().to_vec();
    let other = CertificateFingerprint::of_certificate(FingerprintAlgorithm::Sha256, b"other");
    let sha512 = CertificateFingerprint::of_certificate(FingerprintAlgorithm::Sha512, &der);
    server.expect(addr(CLIENT), other).expect("room");
    server.expect(addr(CLIENT), sha512).expect("room");
    let mut net = Net::new(server, &BROWSER_PROFILES);
    net.run(Duration::from_secs(30));
    let DtlsEvent::Connected { peer, .. } = &net.events[0] else {
        panic!("expected Connected: {:?}", net.events);
    };
    assert_eq!(*peer.fingerprint(), sha512);
    let (_, server_keys, browser_keys) = net.keys();
    assert_same_keys(&server_keys, &browser_keys);
}

#[test]
fn unannounced_remotes_are_refused_unless_admitted() {
    let mut net = Net::new(server(DtlsConfig::default()), &BROWSER_PROFILES);
    net.run(Duration::from_secs(30));
    assert!(net.events.is_empty());
    assert!(net.server.stats().dropped(DatagramDrop::NotExpectedRemote) >= 1);
    assert_eq!(net.server.association_count(), 0);
    assert_eq!(net.server_sent, 0, "nothing answered");
}

#[test]
fn a_fingerprint_may_be_announced_after_the_first_datagram() {
    let config = DtlsConfig {
        admit_unannounced: true,
        ..DtlsConfig::default()
    };
    let mut net = Net::new(server(config), &BROWSER_PROFILES);
    let hello = net.browser.poll_transmit().expect("a ClientHello");
    net.server
        .handle_datagram(net.now, addr(CLIENT), &hello.message);
    assert_eq!(net.server.handshake_count(), 1);
    let fingerprint = *browser_certificate().fingerprint();
    net.server.expect(addr(CLIENT), fingerprint).expect("room");
    net.run(Duration::from_secs(30));
    let (_, server_keys, browser_keys) = net.keys();
    assert_same_keys(&server_keys, &browser_keys);
}

#[test]
fn a_certificate_before_any_announced_fingerprint_fails() {
    let config = DtlsConfig {
        admit_unannounced: true,
        ..DtlsConfig::default()
    };
    let mut net = Net::new(server(config), &BROWSER_PROFILES);
    net.run(Duration::from_secs(30));
    assert_failed(&net, HandshakeFailure::FingerprintMissing);
}

/// Datagrams that are not DTLS, or DTLS that DTLS-SRTP never sends.
fn garbage() -> Vec<Vec<u8>> {
    let record = |content_type: u8, version: [u8; 2], epoch: u16, body: &[u8]| {
        let mut datagram = vec![content_type, version[0], version[1]];
        datagram.extend_from_slice(&epoch.to_be_bytes());
        datagram.extend_from_slice(&[0, 0, 0, 0, 0x10, 0x00]);
        let len = u16::try_from(body.len()).expect("short body");
        datagram.extend_from_slice(&len.to_be_bytes());
        datagram.extend_from_slice(body);
        datagram
    };
    let v12 = [0xfe, 0xfd];
    let mut truncated = record(22, v12, 0, &[1, 0, 0, 40, 0, 0, 0, 0, 0, 0, 0, 40]);
    truncated.truncate(20);
    vec![
        vec![],
        vec![0x16],
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        vec![0x17; 200],
        truncated,
        record(22, [0x03, 0x03], 0, &[1; 40]),
        record(99, v12, 0, &[1; 40]),
        record(22, v12, 7, &[1; 40]),
        record(23, v12, 0, b"plaintext application data"),
        record(21, v12, 0, &[2, 40, 0]),
        record(20, v12, 0, &[2]),
        record(23, v12, 1, &[0; 10]),
        // A handshake fragment reaching past its message, and one of an unknown type.
        record(
            22,
            v12,
            0,
            &[1, 0, 0, 4, 0, 0, 0, 0, 2, 0, 0, 4, 1, 2, 3, 4],
        ),
        record(
            22,
            v12,
            0,
            &[4, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4],
        ),
        // An empty fragment of a non-empty message.
        record(22, v12, 0, &[1, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0]),
    ]
}

#[test]
fn garbage_is_dropped_and_counted_without_disturbing_the_handshake() {
    let mut net = Net::new(expecting_server(DtlsConfig::default()), &BROWSER_PROFILES);
    let garbage = garbage();
    net.garbage = garbage.clone();
    // Garbage before the first ClientHello and between every flight.
    for datagram in &garbage {
        net.server.handle_datagram(net.now, addr(CLIENT), datagram);
    }
    assert_eq!(net.server.association_count(), 0);
    net.run(Duration::from_secs(30));
    let (_, server_keys, browser_keys) = net.keys();
    assert_same_keys(&server_keys, &browser_keys);
    let stats = net.server.stats();
    assert_eq!(stats.failed_total(), 0);
    let n = garbage.len() as u64;
    assert!(stats.dropped(DatagramDrop::BadRecord) >= n, "{stats}");
    assert_eq!(
        stats.dropped_total(),
        stats.dropped(DatagramDrop::BadRecord)
    );
    assert!(
        net.now < net.start + Duration::from_millis(1),
        "garbage caused no retransmission"
    );
}

#[test]
fn a_lost_flight_is_sent_again_after_the_retransmission_timeout() {
    let mut net = Net::new(expecting_server(DtlsConfig::default()), &BROWSER_PROFILES);
    // The first datagram is the HelloVerifyRequest; the second starts the server's flight 4.
    net.lose = Box::new(|n| n == 2);
    net.run(Duration::from_secs(30));
    let (_, server_keys, browser_keys) = net.keys();
    assert_same_keys(&server_keys, &browser_keys);
    let waited = net.now - net.start;
    assert!(
        waited >= DtlsConfig::default().retransmit_interval,
        "completed after {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(3),
        "completed after {waited:?}"
    );
}

/// Browsers repeat their ClientHello sooner than our one second (Chromium from 50 ms, by the
/// ICE round trip). rtc-dtls ignores the repeat but cancels its own timer on it, so without the
/// endpoint's filter a lost ServerHello flight was never sent again. (The rtc-dtls client gives
/// up after seven repeats without backing off, hence 300 ms here.)
#[test]
fn a_lost_answer_is_repeated_even_when_the_client_repeats_first() {
    let mut net = Net::with_browser_interval(
        expecting_server(DtlsConfig::default()),
        &BROWSER_PROFILES,
        Duration::from_millis(300),
    );
    net.lose = Box::new(|n| n == 2);
    net.run(Duration::from_secs(30));
    let (_, server_keys, browser_keys) = net.keys();
    assert_same_keys(&server_keys, &browser_keys);
    assert!(net.server.stats().dropped(DatagramDrop::StaleClientHello) >= 3);
    let waited = net.now - net.start;
    assert!(
        waited >= Duration::from_secs(1),
        "completed after {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(2),
        "completed after {waited:?}"
    );
}

#[test]
fn a_silent_peer_fails_at_the_handshake_timeout() {
    let config = DtlsConfig {
        handshake_timeout: Duration::from_secs(5),
        ..DtlsConfig::default()
    };
    let mut server = expecting_server(config);
    let start = clock();
    server.handle_datagram(start, addr(CLIENT), &client_hello());
    let answer = server.poll_transmit().expect("a HelloVerifyRequest");
    assert_eq!(answer.destination, addr(CLIENT));
    let mut now = start;
    while let Some(next) = server.poll_timeout() {
        assert!(next > now && next <= start + Duration::from_secs(5));
        now = next;
        server.handle_timeout(now);
        while server.poll_transmit().is_some() {}
    }
    let events: Vec<_> = std::iter::from_fn(|| server.poll_event()).collect();
    assert!(
        matches!(
            events.as_slice(),
            [DtlsEvent::Failed {
                reason: HandshakeFailure::HandshakeTimeout,
                ..
            }]
        ),
        "{events:?}"
    );
    assert_eq!(now, start + Duration::from_secs(5));
    assert_eq!(server.association_count(), 0);
}

/// The first datagram of a fresh browser: its ClientHello.
fn client_hello() -> Vec<u8> {
    let mut browser = Endpoint::new(addr(CLIENT), Default::default(), None);
    browser
        .connect(
            clock(),
            addr(SERVER),
            browser_config(&BROWSER_PROFILES, *server_certificate().fingerprint()),
            None,
        )
        .expect("the browser starts");
    browser
        .poll_transmit()
        .expect("a ClientHello")
        .message
        .to_vec()
}

#[test]
fn remotes_beyond_the_limits_are_refused() {
    let config = DtlsConfig {
        max_handshakes: 4,
        max_associations: 6,
        admit_unannounced: true,
        ..DtlsConfig::default()
    };
    let mut server = server(config);
    let hello = client_hello();
    let now = clock();
    for port in 1..=10 {
        server.handle_datagram(now, addr(port), &hello);
    }
    assert_eq!(server.handshake_count(), 4);
    assert_eq!(server.stats().dropped(DatagramDrop::TooManyHandshakes), 6);
    assert_eq!(
        std::iter::from_fn(|| server.poll_transmit()).count(),
        4,
        "one HelloVerifyRequest per admitted remote"
    );
    assert_eq!(
        server.connect(now, addr(99)),
        Err(DtlsError::TooManyAssociations)
    );
    // Forgetting one makes room for the next.
    server.forget(addr(1));
    server.handle_datagram(now, addr(11), &hello);
    assert_eq!(server.handshake_count(), 4);
    assert_eq!(server.stats().dropped(DatagramDrop::TooManyHandshakes), 6);
}

#[test]
fn a_new_remote_must_start_with_a_client_hello() {
    let config = DtlsConfig {
        admit_unannounced: true,
        ..DtlsConfig::default()
    };
    let mut server = server(config);
    // A well-formed alert is no way to start.
    let alert = [21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 40];
    server.handle_datagram(clock(), addr(1), &alert);
    assert_eq!(server.stats().dropped(DatagramDrop::NotClientHello), 1);
    assert_eq!(server.association_count(), 0);
}

#[test]
fn a_flood_of_client_hellos_is_capped() {
    let config = DtlsConfig {
        admit_unannounced: true,
        max_client_hellos: 3,
        ..DtlsConfig::default()
    };
    let mut server = server(config);
    let hello = client_hello();
    let now = clock();
    for _ in 0..10 {
        server.handle_datagram(now, addr(1), &hello);
    }
    assert_eq!(server.stats().dropped(DatagramDrop::ClientHelloFlood), 7);
    assert_eq!(server.association_count(), 1);
}

#[test]
fn oversized_datagrams_are_dropped() {
    let mut server = expecting_server(DtlsConfig::default());
    server.handle_datagram(clock(), addr(CLIENT), &[22; 1501]);
    assert_eq!(server.stats().dropped(DatagramDrop::Oversized), 1);
}

#[test]
fn the_peers_close_notify_ends_the_association() {
    let mut net = handshake(DtlsConfig::default(), &BROWSER_PROFILES);
    let _ = net.keys();
    net.browser.close(net.now).expect("closes");
    while let Some(transmit) = net.browser.poll_transmit() {
        net.server
            .handle_datagram(net.now, addr(CLIENT), &transmit.message);
    }
    let events: Vec<_> = std::iter::from_fn(|| net.server.poll_event()).collect();
    assert!(
        matches!(events.as_slice(), [DtlsEvent::Closed { remote }] if *remote == addr(CLIENT)),
        "{events:?}"
    );
    assert_eq!(net.server.stats().closed(), 1);
    assert_eq!(net.server.association_count(), 0);
}

#[test]
fn application_data_after_the_handshake_is_dropped() {
    let mut net = handshake(DtlsConfig::default(), &BROWSER_PROFILES);
    let _ = net.keys();
    net.browser
        .write(net.now, addr(SERVER), b"a data channel message")
        .expect("writes");
    while let Some(transmit) = net.browser.poll_transmit() {
        net.server
            .handle_datagram(net.now, addr(CLIENT), &transmit.message);
    }
    assert_eq!(net.server.stats().dropped(DatagramDrop::ApplicationData), 1);
    assert!(net.server.is_connected(addr(CLIENT)));
    assert!(net.server.poll_event().is_none());
}

#[test]
fn our_client_and_our_server_agree_on_keys() {
    let now = clock();
    let mut server = server(DtlsConfig::default());
    let mut client =
        DtlsEndpoint::new(DtlsConfig::default(), browser_certificate()).expect("a client");
    server
        .expect(addr(CLIENT), *client.local_fingerprint())
        .expect("room");
    client
        .expect(addr(SERVER), *server.local_fingerprint())
        .expect("room");
    client.connect(now, addr(SERVER)).expect("connects");
    let mut events = (Vec::new(), Vec::new());
    for _ in 0..16 {
        while let Some(transmit) = client.poll_transmit() {
            assert_eq!(transmit.destination, addr(SERVER));
            server.handle_datagram(now, addr(CLIENT), &transmit.payload);
        }
        while let Some(transmit) = server.poll_transmit() {
            client.handle_datagram(now, addr(SERVER), &transmit.payload);
        }
        events.0.extend(std::iter::from_fn(|| server.poll_event()));
        events.1.extend(std::iter::from_fn(|| client.poll_event()));
    }
    let (
        [
            DtlsEvent::Connected {
                profile: server_profile,
                keys: server_keys,
                ..
            },
        ],
        [
            DtlsEvent::Connected {
                profile: client_profile,
                keys: client_keys,
                ..
            },
        ],
    ) = (events.0.as_slice(), events.1.as_slice())
    else {
        panic!("both connect: {events:?}");
    };
    assert_eq!(server_profile, client_profile);
    assert_eq!(*server_profile, SrtpProfile::AeadAes128Gcm);
    assert_same_keys(server_keys, client_keys);
}

// ---------------------------------------------------------------------------------------------
// The key exchange: ECDHE on P-256 or P-384, never X25519 (BSI TR-02102-2).
// ---------------------------------------------------------------------------------------------

/// TLS codes of the named groups (RFC 8422 §5.1.1, RFC 8446 §4.2.7).
const P256: u16 = 0x0017;
const P384: u16 = 0x0018;
const X25519: u16 = 0x001d;

/// The named curve of the first ServerKeyExchange among `datagrams`: a message of type 12 in a
/// plaintext handshake record, whose ECDH parameters begin with curve_type 3 (named_curve) and
/// the curve's code.
fn server_key_exchange_curve(datagrams: &[Vec<u8>]) -> Option<u16> {
    const HANDSHAKE_HEADER_LEN: usize = 12;
    datagrams.iter().find_map(|datagram| {
        let scanned = scan(datagram)?;
        scanned
            .records
            .iter()
            .filter(|record| record.epoch == 0 && record.content_type == 22)
            .find_map(|record| {
                let mut body =
                    datagram.get(record.span.start + RECORD_HEADER_LEN..record.span.end)?;
                while body.len() >= HANDSHAKE_HEADER_LEN {
                    let offset = u32::from_be_bytes([0, body[6], body[7], body[8]]);
                    let len = u32::from_be_bytes([0, body[9], body[10], body[11]]);
                    let end = HANDSHAKE_HEADER_LEN + usize::try_from(len).ok()?;
                    let fragment = body.get(HANDSHAKE_HEADER_LEN..end)?;
                    if body[0] == 12 && offset == 0 && fragment.first() == Some(&3) {
                        return Some(u16::from_be_bytes([*fragment.get(1)?, *fragment.get(2)?]));
                    }
                    body = &body[end..];
                }
                None
            })
    })
}

/// Rewrites the `supported_groups` of an rtc-dtls ClientHello (P-256, X25519, P-384) into
/// Chromium's order, X25519 first. Returns whether the datagram held that extension.
fn offer_x25519_first(datagram: &mut [u8]) -> bool {
    let rtc_dtls = [0, 10, 0, 8, 0, 6, 0x00, 0x17, 0x00, 0x1d, 0x00, 0x18];
    let chromium = [0, 10, 0, 8, 0, 6, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18];
    let Some(at) = datagram
        .windows(rtc_dtls.len())
        .position(|window| window == rtc_dtls)
    else {
        return false;
    };
    datagram[at..at + rtc_dtls.len()].copy_from_slice(&chromium);
    true
}

#[test]
fn an_ordinary_handshake_runs_on_p256() {
    let mut net = handshake(DtlsConfig::default(), &BROWSER_PROFILES);
    assert_eq!(server_key_exchange_curve(&net.sent), Some(P256));
    let (_, server_keys, browser_keys) = net.keys();
    assert_same_keys(&server_keys, &browser_keys);
}

/// rtc-dtls's server takes the first curve of the ClientHello that its provider supports: on
/// plain ring, X25519 for a browser. The rtc-dtls client lists P-256 first, so its ClientHellos
/// are rewritten to a browser's order on the way.
#[test]
fn the_server_picks_p256_when_the_client_offers_x25519_first() {
    let mut net = Net::new(expecting_server(DtlsConfig::default()), &BROWSER_PROFILES);
    let rewritten = Rc::new(Cell::new(0));
    let count = Rc::clone(&rewritten);
    net.rewrite = Box::new(move |datagram| {
        if offer_x25519_first(datagram) {
            let scanned = scan(datagram).expect("still well-formed");
            assert_eq!(
                offered_groups(datagram, &scanned),
                Some(vec![X25519, P256, P384])
            );
            count.set(count.get() + 1);
        }
    });
    net.run(Duration::from_secs(30));
    assert_eq!(
        rewritten.get(),
        2,
        "both ClientHellos, before and after the cookie"
    );
    assert_eq!(server_key_exchange_curve(&net.sent), Some(P256));
    // The rewritten ClientHello is part of the transcript that the client's CertificateVerify
    // signs: the tampering is caught and the handshake cannot complete.
    assert_failed(&net, HandshakeFailure::AuthenticationFailed);
}

/// A browser-like client whose provider offers only `curves` (in rtc-dtls's order: P-256,
/// X25519, P-384): ring with the other key exchanges refused.
struct OnlyCurves(&'static [KeyExchangeAlgorithm], RingProvider);

impl RTCCryptoProvider for OnlyCurves {
    fn name(&self) -> &'static str {
        "ring-restricted-curves"
    }

    fn crypto(&self) -> &dyn RTCCrypto {
        self
    }

    fn random(&self) -> &dyn RTCRandom {
        self.1.random()
    }
}

impl RTCCrypto for OnlyCurves {
    fn supports(&self, algorithm: CryptoAlgorithm) -> bool {
        match algorithm {
            CryptoAlgorithm::KeyExchange(exchange) => self.0.contains(&exchange),
            other => self.1.crypto().supports(other),
        }
    }

    fn hash(&self, algorithm: HashAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.1.crypto().hash(algorithm, data)
    }

    fn new_hmac(&self, algorithm: HmacAlgorithm, key: &[u8]) -> Result<Box<dyn Mac>, CryptoError> {
        self.1.crypto().new_hmac(algorithm, key)
    }

    fn new_aead(
        &self,
        algorithm: AeadAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn AeadCipher>, CryptoError> {
        self.1.crypto().new_aead(algorithm, key)
    }

    fn start_key_exchange(
        &self,
        algorithm: KeyExchangeAlgorithm,
    ) -> Result<Box<dyn ActiveKeyExchange>, CryptoError> {
        if self.0.contains(&algorithm) {
            self.1.crypto().start_key_exchange(algorithm)
        } else {
            Err(CryptoError::UnsupportedAlgorithm(
                CryptoAlgorithm::KeyExchange(algorithm),
            ))
        }
    }

    fn verify_signature(
        &self,
        scheme: Scheme,
        public_key: PublicKey<'_>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self.1
            .crypto()
            .verify_signature(scheme, public_key, message, signature)
    }
}

/// Our server and a browser-like client offering only `curves`, each ClientHello checked to
/// offer `offered`.
fn net_with_curves(curves: &'static [KeyExchangeAlgorithm], offered: &'static [u16]) -> Net {
    let server = expecting_server(DtlsConfig::default());
    let config = browser_config_on(
        Arc::new(OnlyCurves(curves, RingProvider::new())),
        &BROWSER_PROFILES,
        *server.local_fingerprint(),
        Duration::from_secs(1),
    );
    let mut net = Net::with_browser_config(server, config);
    net.rewrite = Box::new(move |datagram| {
        let scanned = scan(datagram).expect("a well-formed datagram");
        if scanned.has_client_hello {
            assert_eq!(offered_groups(datagram, &scanned).as_deref(), Some(offered));
        }
    });
    net
}

/// Without the rewrite: a real client offering X25519 first completes, on P-384.
#[test]
fn a_client_offering_x25519_before_p384_completes_on_p384() {
    use KeyExchangeAlgorithm::{P384 as OnP384, X25519 as OnX25519};
    let mut net = net_with_curves(&[OnX25519, OnP384], &[X25519, P384]);
    net.run(Duration::from_secs(30));
    assert_eq!(server_key_exchange_curve(&net.sent), Some(P384));
    let (_, server_keys, browser_keys) = net.keys();
    assert_same_keys(&server_keys, &browser_keys);
}

/// rtc-dtls's server would answer with its own first curve, one the client never offered;
/// the endpoint refuses the ClientHello instead, without a word (each retransmission again).
#[test]
fn a_client_offering_only_x25519_gets_no_handshake() {
    let mut net = net_with_curves(&[KeyExchangeAlgorithm::X25519], &[X25519]);
    net.run(Duration::from_secs(30));
    assert!(net.browser_error && !net.browser_complete);
    assert!(!net.events.is_empty());
    assert!(
        net.events.iter().all(|event| matches!(
            event,
            DtlsEvent::Failed {
                reason: HandshakeFailure::NoCommonAlgorithms,
                ..
            }
        )),
        "{:?}",
        net.events
    );
    let stats = net.server.stats();
    assert_eq!(
        stats.failed(HandshakeFailure::NoCommonAlgorithms),
        net.events.len() as u64
    );
    assert_eq!(stats.failed_total(), net.events.len() as u64);
    assert_eq!(stats.dropped_total(), 0);
    assert_eq!(net.sent.len(), 0, "not even a HelloVerifyRequest");
    assert_eq!(net.server.association_count(), 0);
}

// ---------------------------------------------------------------------------------------------
// The pieces.
// ---------------------------------------------------------------------------------------------

#[test]
fn the_generated_certificate_is_ecdsa_p256_and_its_fingerprint_reads_back() {
    let certificate = server_certificate();
    let prime256v1 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    assert!(
        certificate
            .der()
            .windows(prime256v1.len())
            .any(|window| window == prime256v1)
    );
    let fingerprint = certificate.fingerprint();
    let text = fingerprint.to_string();
    assert!(text.starts_with("sha-256 "), "{text}");
    assert_eq!(text.len(), "sha-256 ".len() + 32 * 3 - 1);
    assert_eq!(text.parse::<CertificateFingerprint>(), Ok(*fingerprint));
    assert!(fingerprint.matches(certificate.der()));
    let shown = format!("{certificate:?}");
    assert!(
        shown.contains("[redacted]") && shown.contains("sha-256"),
        "{shown}"
    );
}

#[test]
fn the_policy_provider_allows_only_what_the_suite_needs() {
    use CryptoAlgorithm as A;
    let provider = PolicyProvider::new();
    let policy = provider.crypto();
    let ring = RingProvider::new();
    let allowed = [
        A::KeyExchange(KeyExchangeAlgorithm::P256),
        A::KeyExchange(KeyExchangeAlgorithm::P384),
        A::Aead(AeadAlgorithm::Aes128Gcm),
        A::Hash(HashAlgorithm::Sha256),
        A::Hmac(HmacAlgorithm::Sha256),
        A::Signature(Scheme::EcdsaP256Sha256),
        A::Signature(Scheme::EcdsaP384Sha256),
        A::Signature(Scheme::EcdsaP384Sha384),
        A::SigningKeyImport(Scheme::EcdsaP256Sha256),
    ];
    for algorithm in allowed {
        assert!(policy.supports(algorithm), "{algorithm:?}");
    }
    let refused = [
        A::KeyExchange(KeyExchangeAlgorithm::X25519),
        A::Aead(AeadAlgorithm::ChaCha20Poly1305),
        A::Aead(AeadAlgorithm::Aes128Ccm),
        A::Aead(AeadAlgorithm::Aes128Ccm8),
        A::Aead(AeadAlgorithm::Aes256Gcm),
        A::Cbc(CbcAlgorithm::Aes256Cbc),
        A::StreamCipher(StreamCipherAlgorithm::Aes128Ctr),
        A::BlockCipher(BlockCipherAlgorithm::Aes128),
        A::Hash(HashAlgorithm::Md5),
        A::Hmac(HmacAlgorithm::Sha1),
        A::Signature(Scheme::Ed25519),
        A::Signature(Scheme::RsaPkcs1Sha1),
        A::Signature(Scheme::RsaPkcs1Sha256),
        A::SigningKeyGeneration(Scheme::EcdsaP256Sha256),
        A::SigningKeyImport(Scheme::Ed25519),
        A::SigningKeyImport(Scheme::RsaPkcs1Sha256),
    ];
    for algorithm in refused {
        assert!(ring.crypto().supports(algorithm), "ring has {algorithm:?}");
        assert!(!policy.supports(algorithm), "{algorithm:?}");
    }

    // Each operation refuses what `supports` refuses: a caller that does not ask first gets no
    // further.
    let refusal = |algorithm| Some(CryptoError::UnsupportedAlgorithm(algorithm));
    let x25519 = KeyExchangeAlgorithm::X25519;
    assert!(ring.crypto().start_key_exchange(x25519).is_ok());
    assert_eq!(
        policy.start_key_exchange(x25519).err(),
        refusal(A::KeyExchange(x25519))
    );
    let chacha = AeadAlgorithm::ChaCha20Poly1305;
    assert_eq!(
        policy.new_aead(chacha, &[7; 32]).err(),
        refusal(A::Aead(chacha))
    );
    let cbc = CbcAlgorithm::Aes256Cbc;
    assert_eq!(policy.new_cbc(cbc, &[7; 32]).err(), refusal(A::Cbc(cbc)));
    let sha1 = HmacAlgorithm::Sha1;
    assert_eq!(
        policy.new_hmac(sha1, &[7; 20]).err(),
        refusal(A::Hmac(sha1))
    );
    assert_eq!(
        policy.hash(HashAlgorithm::Md5, b"kammer").err(),
        refusal(A::Hash(HashAlgorithm::Md5))
    );
    assert_eq!(
        policy.generate_signing_key(Scheme::Ed25519).err(),
        refusal(A::SigningKeyGeneration(Scheme::Ed25519))
    );

    // What it allows works: both curves agree on a secret.
    for exchange in [KeyExchangeAlgorithm::P256, KeyExchangeAlgorithm::P384] {
        let ours = policy.start_key_exchange(exchange).expect("allowed");
        let theirs = policy.start_key_exchange(exchange).expect("allowed");
        let (our_public, their_public) = (ours.public_key().to_vec(), theirs.public_key().to_vec());
        let ours = ours.complete(&their_public).expect("agrees");
        let theirs = theirs.complete(&our_public).expect("agrees");
        assert_eq!(ours.as_ref(), theirs.as_ref(), "{exchange:?}");
    }
    assert_eq!(
        policy
            .hash(HashAlgorithm::Sha256, b"")
            .map(|digest| digest.len()),
        Ok(32)
    );
}

#[test]
fn only_client_hellos_without_our_curves_are_refused() {
    assert!(policy::accepts_any_group(&[X25519, P256, P384]));
    assert!(policy::accepts_any_group(&[0x001e, P384]));
    assert!(!policy::accepts_any_group(&[X25519]));
    assert!(!policy::accepts_any_group(&[
        X25519, 0x001e, 0x0019, 0x0100
    ]));
    assert!(!policy::accepts_any_group(&[]));
}

#[test]
fn fingerprints_parse_strictly() {
    let hex32 = vec!["ab"; 32].join(":");
    let parsed: CertificateFingerprint = format!("SHA-256 {hex32}").parse().expect("parses");
    assert_eq!(parsed.algorithm(), FingerprintAlgorithm::Sha256);
    assert_eq!(parsed.as_bytes(), [0xab; 32]);
    assert_eq!(
        parsed.to_string(),
        format!("sha-256 {}", hex32.to_uppercase())
    );
    for bad in [
        String::new(),
        hex32.clone(),
        format!("sha-256  {hex32}"),
        format!("sha-256 {hex32}:"),
        format!("sha-256 {hex32}:ab"),
        format!("sha-256 {}", vec!["ab"; 31].join(":")),
        format!("sha-256 {}", vec!["a"; 32].join(":")),
        format!("sha-256 {}", vec!["+b"; 32].join(":")),
        format!("sha-256 {}", vec!["ab"; 65].join(":")),
    ] {
        assert_eq!(
            bad.parse::<CertificateFingerprint>(),
            Err(DtlsError::MalformedFingerprint),
            "{bad:?}"
        );
    }
    assert_eq!(
        format!("sha-1 {}", vec!["ab"; 20].join(":")).parse::<CertificateFingerprint>(),
        Err(DtlsError::UnsupportedFingerprintAlgorithm)
    );
    assert_eq!(
        CertificateFingerprint::new(FingerprintAlgorithm::Sha384, &[0; 32]),
        Err(DtlsError::MalformedFingerprint)
    );
}

#[test]
fn expectations_are_bounded() {
    let config = DtlsConfig {
        max_handshakes: 1,
        max_associations: 2,
        ..DtlsConfig::default()
    };
    let mut server = server(config);
    let fingerprint =
        |n: u8| CertificateFingerprint::of_certificate(FingerprintAlgorithm::Sha256, &[n]);
    for n in 0..4 {
        server.expect(addr(1), fingerprint(n)).expect("room");
    }
    server
        .expect(addr(1), fingerprint(0))
        .expect("a repeat is no new entry");
    assert_eq!(
        server.expect(addr(1), fingerprint(4)),
        Err(DtlsError::TooManyFingerprints)
    );
    server.expect(addr(2), fingerprint(0)).expect("room");
    assert_eq!(
        server.expect(addr(3), fingerprint(0)),
        Err(DtlsError::TooManyFingerprints)
    );
    assert_eq!(
        server.expect_fingerprint(addr(2), FingerprintAlgorithm::Sha256, &[0; 31]),
        Err(DtlsError::MalformedFingerprint)
    );
}

#[test]
fn invalid_configurations_are_refused() {
    let invalid = [
        DtlsConfig {
            srtp_profiles: Vec::new(),
            ..DtlsConfig::default()
        },
        DtlsConfig {
            srtp_profiles: vec![SrtpProfile::AeadAes128Gcm, SrtpProfile::AeadAes128Gcm],
            ..DtlsConfig::default()
        },
        DtlsConfig {
            max_handshakes: 0,
            ..DtlsConfig::default()
        },
        DtlsConfig {
            max_associations: 1,
            max_handshakes: 2,
            ..DtlsConfig::default()
        },
        DtlsConfig {
            handshake_timeout: Duration::from_millis(500),
            ..DtlsConfig::default()
        },
        DtlsConfig {
            handshake_timeout: Duration::MAX,
            ..DtlsConfig::default()
        },
        DtlsConfig {
            mtu: 2000,
            ..DtlsConfig::default()
        },
        DtlsConfig {
            max_early_encrypted: 0,
            ..DtlsConfig::default()
        },
    ];
    for config in invalid {
        assert_eq!(
            DtlsEndpoint::new(config.clone(), server_certificate()).err(),
            Some(DtlsError::InvalidConfig),
            "{config:?}"
        );
    }
}

#[test]
fn reasons_are_listed_in_order_with_distinct_names() {
    for (index, reason) in DatagramDrop::ALL.into_iter().enumerate() {
        assert_eq!(reason as usize, index);
        let later = &DatagramDrop::ALL[index + 1..];
        assert!(later.iter().all(|other| other.as_str() != reason.as_str()));
    }
    for (index, reason) in HandshakeFailure::ALL.into_iter().enumerate() {
        assert_eq!(reason as usize, index);
        let later = &HandshakeFailure::ALL[index + 1..];
        assert!(later.iter().all(|other| other.as_str() != reason.as_str()));
    }
}

#[test]
fn the_scan_reads_a_real_client_hello() {
    let hello = client_hello();
    let scanned = scan(&hello).expect("a well-formed ClientHello");
    assert!(scanned.is_client_hello_only());
    assert_eq!(scanned.client_hellos, 1);
    assert_eq!(scanned.handshake_fragments, 1);
    assert_eq!(
        offered_srtp_profiles(&hello, &scanned),
        Some(vec![0x0007, 0x0008, 0x0001])
    );
    assert_eq!(
        offered_groups(&hello, &scanned),
        Some(vec![P256, X25519, P384])
    );
    // Every truncation is refused, and none panics.
    for len in 0..hello.len() {
        assert_eq!(scan(&hello[..len]), None, "truncated to {len}");
    }
}

#[test]
fn the_scan_splits_fragmented_handshakes_by_their_own_length() {
    let header = |length: u32, offset: u32, fragment: u32| {
        let mut bytes = vec![1];
        bytes.extend_from_slice(&length.to_be_bytes()[1..]);
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&offset.to_be_bytes()[1..]);
        bytes.extend_from_slice(&fragment.to_be_bytes()[1..]);
        bytes
    };
    let record = |body: &[u8]| {
        let mut datagram = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1];
        let len = u16::try_from(body.len()).expect("short");
        datagram.extend_from_slice(&len.to_be_bytes());
        datagram.extend_from_slice(body);
        datagram
    };
    // A middle fragment that ends its record is fine.
    let mut body = header(100, 10, 5);
    body.extend_from_slice(&[0; 5]);
    let scanned = scan(&record(body.as_slice())).expect("a fragment");
    assert_eq!((scanned.client_hellos, scanned.handshake_fragments), (0, 1));
    assert!(scanned.has_client_hello);
    // One followed by more bytes in the same record is not.
    body.extend_from_slice(&header(0, 0, 0));
    assert_eq!(scan(&record(&body)), None);
    // Two whole messages in one record are.
    let mut two = header(2, 0, 2);
    two.extend_from_slice(&[0; 2]);
    two.extend_from_slice(&two.clone());
    let scanned = scan(&record(&two)).expect("two messages");
    assert_eq!((scanned.client_hellos, scanned.handshake_fragments), (2, 2));
}
