//! The DTLS 1.2 handshake of DTLS-SRTP (RFC 5763, RFC 5764), sans-IO, on rtc-dtls.
//!
//! One [`DtlsEndpoint`] serves every remote on the media port. The SFU answers with
//! `a=setup:passive`, so it is the DTLS server; [`DtlsEndpoint::connect`] makes it a client
//! towards one remote. A completed handshake yields the SRTP keys as a
//! [`DtlsEvent::Connected`]; after that the association only answers retransmissions and
//! notices the peer's `close_notify`.
//!
//! Policy (the only place that picks DTLS algorithms):
//!
//! * DTLS 1.2 with `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256` only (BSI TR-02102-2), ECDHE on
//!   P-256 or P-384 only (never X25519, which browsers offer first), ECDSA signatures on
//!   P-256/P-384, the extended master secret (RFC 7627) required. rtc-dtls runs on a crypto
//!   provider that refuses every other algorithm (`policy`), so it can neither offer nor pick
//!   one; a ClientHello that offers none of our curves fails at once
//!   ([`HandshakeFailure::NoCommonAlgorithms`]).
//! * SRTP profiles in [`DtlsConfig::srtp_profiles`] order (by default AEAD_AES_128_GCM,
//!   AEAD_AES_256_GCM, AES128_CM_HMAC_SHA1_80); as server our order wins over the client's.
//! * Both ends present a certificate. The peer's must hash to a fingerprint announced in its
//!   session description ([`DtlsEndpoint::expect_fingerprint`], RFC 8122); the check runs inside
//!   the handshake and again before keys are exported, and only it yields the
//!   [`VerifiedFingerprint`] a `Connected` event carries.
//!
//! Limits, each drop counted by a closed reason ([`DatagramDrop`], [`HandshakeFailure`], both
//! with `as_str()` for metrics, in [`DtlsStats`]): handshakes and associations at once, a
//! handshake deadline, ClientHellos, plaintext handshake fragments and early encrypted records
//! per association, and the datagram size. Each datagram is read as DTLS records before
//! rtc-dtls sees it; a malformed one is dropped, never answered, and never ends an association.
//! By default only remotes with an announced fingerprint may start a handshake.
//!
//! Driving it (the shell's loop): feed every DTLS datagram to [`DtlsEndpoint::handle_datagram`]
//! and call [`DtlsEndpoint::handle_timeout`] when the deadline passed; after each input drain
//! [`DtlsEndpoint::poll_transmit`] and [`DtlsEndpoint::poll_event`] until they return `None`,
//! then re-arm the timer from [`DtlsEndpoint::poll_timeout`]. Time only comes in as `now`.
//!
//! After a failure the remote may start afresh with a new ClientHello (within the limits); the
//! shell decides whether to [`DtlsEndpoint::forget`] it instead. rtc-dtls logs through the `log`
//! crate, some lines at warn level on peer input (an unknown ClientHello extension): the shell
//! should filter the `rtc_dtls` target.
//!
//! What this module refuses: DTLS 1.3 (rtc-dtls has none; browsers fall back to 1.2),
//! renegotiation, application data (no data channels), PSK, RSA, and SHA-1 fingerprints.

mod certificate;
mod config;
mod gate;
mod policy;
mod reason;
mod record;

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use core::net::{Ipv4Addr, SocketAddr};
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};

pub use certificate::{CertificateFingerprint, DtlsCertificate, FingerprintAlgorithm};
pub use config::{DtlsConfig, MAX_HANDSHAKE_TIMEOUT};
pub use gate::VerifiedFingerprint;
pub use reason::{DatagramDrop, DtlsError, DtlsStats, HandshakeFailure};

use config::{CIPHER_SUITE, HandshakePolicy};
use gate::{FingerprintGate, MAX_FINGERPRINTS_PER_REMOTE};
use record::Scan;

use crate::media::srtp::{DTLS_SRTP_EXPORTER_LABEL, DtlsRole, MasterKeys, SrtpProfile};

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// The DTLS records.
    pub payload: Vec<u8>,
}

/// What happened to an association.
#[derive(Debug)]
pub enum DtlsEvent {
    /// The handshake completed: the peer is authenticated and these are the session's SRTP keys.
    Connected {
        /// The peer.
        remote: SocketAddr,
        /// The negotiated SRTP protection profile.
        profile: SrtpProfile,
        /// Our SRTP master key and the peer's, already split for our DTLS role.
        keys: MasterKeys,
        /// The announced fingerprint the peer's certificate matched.
        peer: VerifiedFingerprint,
    },
    /// The handshake failed, or an authenticated peer broke the association off; its state is
    /// gone.
    Failed {
        /// The peer.
        remote: SocketAddr,
        /// Why.
        reason: HandshakeFailure,
    },
    /// The peer closed the association with `close_notify` (answered); its state is gone.
    Closed {
        /// The peer.
        remote: SocketAddr,
    },
}

/// The DTLS side of the media port: many associations, one per remote address.
///
/// Inputs are [`Self::handle_datagram`], [`Self::handle_timeout`], [`Self::connect`],
/// [`Self::close`] and the fingerprint calls; outputs are [`Self::poll_transmit`],
/// [`Self::poll_event`] and [`Self::poll_timeout`]. After any input, drain transmits and events
/// until `None`, then ask for the next timeout.
pub struct DtlsEndpoint {
    config: DtlsConfig,
    policy: HandshakePolicy,
    expected: BTreeMap<SocketAddr, Vec<CertificateFingerprint>>,
    associations: BTreeMap<SocketAddr, Association>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<DtlsEvent>,
    stats: DtlsStats,
}

/// One remote's DTLS state.
struct Association {
    role: DtlsRole,
    /// rtc-dtls's endpoint, holding just this remote's connection: dropping it ends the
    /// association without a word on the wire.
    dtls: Endpoint,
    gate: Arc<FingerprintGate>,
    /// When the handshake must have completed; `None` once it has.
    deadline: Option<Instant>,
    client_hellos: u32,
    handshake_fragments: u32,
    early_encrypted: u32,
    /// Whether we sent a ServerHello: every ClientHello after that is a stale repeat.
    answered_hello: bool,
}

impl Association {
    fn new(role: DtlsRole, dtls: Endpoint, gate: Arc<FingerprintGate>, deadline: Instant) -> Self {
        Self {
            role,
            dtls,
            gate,
            deadline: Some(deadline),
            client_hellos: 0,
            handshake_fragments: 0,
            early_encrypted: 0,
            answered_hello: false,
        }
    }

    fn is_connected(&self) -> bool {
        self.deadline.is_none()
    }

    /// Charges the datagram's records against this association's limits.
    fn admit(&mut self, scan: &Scan, config: &DtlsConfig) -> Result<(), DatagramDrop> {
        if self.answered_hello && scan.has_client_hello {
            return Err(DatagramDrop::StaleClientHello);
        }
        let client_hellos = self.client_hellos.saturating_add(scan.client_hellos);
        let fragments = self
            .handshake_fragments
            .saturating_add(scan.handshake_fragments);
        let early = if self.is_connected() {
            0
        } else {
            scan.encrypted
        };
        let early_encrypted = self.early_encrypted.saturating_add(early);
        if client_hellos > config.max_client_hellos {
            return Err(DatagramDrop::ClientHelloFlood);
        }
        if fragments > config.max_handshake_fragments
            || early_encrypted > config.max_early_encrypted
        {
            return Err(DatagramDrop::RecordFlood);
        }
        self.client_hellos = client_hellos;
        self.handshake_fragments = fragments;
        self.early_encrypted = early_encrypted;
        Ok(())
    }

    /// Moves rtc-dtls's datagrams for this remote to `transmits`, noting a ServerHello.
    fn drain(&mut self, transmits: &mut VecDeque<Transmit>) {
        while let Some(message) = self.dtls.poll_transmit() {
            if self.role == DtlsRole::Server && !self.answered_hello {
                self.answered_hello =
                    record::scan(&message.message).is_some_and(|scan| scan.has_server_hello);
            }
            transmits.push_back(Transmit {
                destination: message.transport.peer_addr,
                payload: message.message.to_vec(),
            });
        }
    }

    /// Why rtc-dtls's `error` ends the association: a failed fingerprint check explains it best.
    fn failure(&self, error: &rtc_shared::error::Error, alert_seen: bool) -> HandshakeFailure {
        self.gate
            .verdict()
            .unwrap_or_else(|| HandshakeFailure::from_library(error, alert_seen))
    }
}

/// The local address rtc-dtls stamps on what it sends; we route by remote only.
const UNSPECIFIED: SocketAddr = SocketAddr::new(core::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

impl DtlsEndpoint {
    /// An endpoint presenting `certificate`, with `config`'s policy and limits.
    pub fn new(config: DtlsConfig, certificate: DtlsCertificate) -> Result<Self, DtlsError> {
        config.validate()?;
        let policy = HandshakePolicy::new(&config, certificate);
        // Build once now, so that a certificate rtc-dtls cannot use fails here and not per peer.
        let gate = Arc::new(FingerprintGate::default());
        for role in [DtlsRole::Server, DtlsRole::Client] {
            policy
                .build(role, &config.srtp_profiles, &gate)
                .map_err(|_| DtlsError::Certificate)?;
        }
        Ok(Self {
            config,
            policy,
            expected: BTreeMap::new(),
            associations: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: DtlsStats::default(),
        })
    }

    /// Our certificate's SHA-256 fingerprint, for `a=fingerprint` (its `Display` is the value).
    pub fn local_fingerprint(&self) -> &CertificateFingerprint {
        self.policy.certificate().fingerprint()
    }

    /// The configuration in force.
    pub fn config(&self) -> &DtlsConfig {
        &self.config
    }

    /// Counters of drops, failures, connections and closes.
    pub fn stats(&self) -> &DtlsStats {
        &self.stats
    }

    /// Associations that exist, under way or established.
    pub fn association_count(&self) -> usize {
        self.associations.len()
    }

    /// Handshakes under way.
    pub fn handshake_count(&self) -> usize {
        self.associations
            .values()
            .filter(|association| !association.is_connected())
            .count()
    }

    /// Whether the handshake with `remote` completed and the association still stands.
    pub fn is_connected(&self, remote: SocketAddr) -> bool {
        self.associations
            .get(&remote)
            .is_some_and(Association::is_connected)
    }

    /// Announces that `remote`'s certificate must have this fingerprint, as its session
    /// description says (`a=fingerprint:<algorithm> <bytes>`). Several calls add fingerprints;
    /// a certificate matching any of them is accepted. Call it before the remote's first
    /// datagram, or at least before its certificate arrives. An established association is not
    /// re-checked.
    pub fn expect_fingerprint(
        &mut self,
        remote: SocketAddr,
        algorithm: FingerprintAlgorithm,
        bytes: &[u8],
    ) -> Result<(), DtlsError> {
        let fingerprint = CertificateFingerprint::new(algorithm, bytes)?;
        self.expect(remote, fingerprint)
    }

    /// Like [`Self::expect_fingerprint`], with a parsed fingerprint.
    pub fn expect(
        &mut self,
        remote: SocketAddr,
        fingerprint: CertificateFingerprint,
    ) -> Result<(), DtlsError> {
        if !self.expected.contains_key(&remote)
            && self.expected.len() >= self.config.max_associations
        {
            return Err(DtlsError::TooManyFingerprints);
        }
        let expected = self.expected.entry(remote).or_default();
        if !expected.contains(&fingerprint) {
            if expected.len() >= MAX_FINGERPRINTS_PER_REMOTE {
                return Err(DtlsError::TooManyFingerprints);
            }
            expected.push(fingerprint);
        }
        if let Some(association) = self.associations.get(&remote) {
            association.gate.set_expected(expected);
        }
        Ok(())
    }

    /// Forgets `remote`: its expected fingerprints and its association, without a word on the
    /// wire and without an event. For a participant that left or whose ICE path is gone.
    pub fn forget(&mut self, remote: SocketAddr) {
        self.expected.remove(&remote);
        self.associations.remove(&remote);
    }

    /// Ends the association with `remote` with a `close_notify`; its expected fingerprints
    /// stay. No event follows. Returns whether there was an association.
    pub fn close(&mut self, now: Instant, remote: SocketAddr) -> bool {
        let Some(mut association) = self.associations.remove(&remote) else {
            return false;
        };
        // The connection rtc-dtls hands back is dropped with the association.
        drop(association.dtls.stop(now, remote));
        association.drain(&mut self.transmits);
        true
    }

    /// Starts a handshake towards `remote` as DTLS client (for `a=setup:active`).
    pub fn connect(&mut self, now: Instant, remote: SocketAddr) -> Result<(), DtlsError> {
        if remote.port() == 0 {
            return Err(DtlsError::InvalidRemote);
        }
        if self.associations.contains_key(&remote) {
            return Err(DtlsError::AlreadyAssociated);
        }
        if self.associations.len() >= self.config.max_associations
            || self.handshake_count() >= self.config.max_handshakes
        {
            return Err(DtlsError::TooManyAssociations);
        }
        let gate = Arc::new(FingerprintGate::new(
            self.expected.get(&remote).cloned().unwrap_or_default(),
        ));
        let config = self
            .policy
            .build(DtlsRole::Client, &self.config.srtp_profiles, &gate)
            .map_err(|_| DtlsError::Certificate)?;
        let mut dtls = Endpoint::new(UNSPECIFIED, Default::default(), None);
        dtls.connect(now, remote, config, None)
            .map_err(|_| DtlsError::InvalidRemote)?;
        let deadline = now + self.config.handshake_timeout;
        let mut association = Association::new(DtlsRole::Client, dtls, gate, deadline);
        association.drain(&mut self.transmits);
        self.associations.insert(remote, association);
        Ok(())
    }

    /// Takes one datagram from `remote` that the demultiplexer classed as DTLS (RFC 7983).
    /// A datagram that is dropped is counted in [`Self::stats`] and changes nothing else.
    pub fn handle_datagram(&mut self, now: Instant, remote: SocketAddr, datagram: &[u8]) {
        if let Err(reason) = self.take_datagram(now, remote, datagram) {
            self.stats.count_drop(reason);
        }
    }

    fn take_datagram(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), DatagramDrop> {
        if datagram.len() > self.config.max_datagram_len {
            return Err(DatagramDrop::Oversized);
        }
        let scan = record::scan(datagram).ok_or(DatagramDrop::BadRecord)?;
        if !self.associations.contains_key(&remote) {
            self.accept(now, remote, datagram, &scan)?;
        }
        let Some(association) = self.associations.get_mut(&remote) else {
            // The ClientHello offered none of our curves, or the configuration could not be
            // built; `accept` reported the failure.
            return Ok(());
        };
        association.admit(&scan, &self.config)?;
        let input = if association.is_connected() {
            let after = scan.after_handshake();
            if after.keep.is_empty() {
                return Err(if after.application_data {
                    DatagramDrop::ApplicationData
                } else {
                    DatagramDrop::HandshakeAfterConnected
                });
            }
            if after.keep.len() == scan.records.len() {
                Cow::Borrowed(datagram)
            } else {
                if after.application_data {
                    self.stats.count_drop(DatagramDrop::ApplicationData);
                }
                if after.handshake {
                    self.stats.count_drop(DatagramDrop::HandshakeAfterConnected);
                }
                let kept = after.keep.into_iter().filter_map(|span| datagram.get(span));
                Cow::Owned(kept.flatten().copied().collect())
            }
        } else {
            Cow::Borrowed(datagram)
        };
        let result = association
            .dtls
            .read(now, remote, None, input.as_ref().into());
        association.drain(&mut self.transmits);
        match result {
            Ok(events) => {
                for event in events {
                    self.on_library_event(now, remote, event);
                }
            }
            Err(error) => {
                let reason = association.failure(&error, scan.alerts > 0);
                self.fail(remote, reason);
            }
        }
        Ok(())
    }

    /// Creates a server association for a new remote whose first datagram is a ClientHello,
    /// unless that offers no curve we may use: then the handshake fails without an answer.
    fn accept(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        datagram: &[u8],
        scan: &Scan,
    ) -> Result<(), DatagramDrop> {
        if !scan.is_client_hello_only() {
            return Err(DatagramDrop::NotClientHello);
        }
        let expected = self.expected.get(&remote);
        if expected.is_none() && !self.config.admit_unannounced {
            return Err(DatagramDrop::NotExpectedRemote);
        }
        if self.handshake_count() >= self.config.max_handshakes {
            return Err(DatagramDrop::TooManyHandshakes);
        }
        if self.associations.len() >= self.config.max_associations {
            return Err(DatagramDrop::TooManyAssociations);
        }
        // rtc-dtls would go on with its own first curve, one the client did not offer.
        let groups = record::offered_groups(datagram, scan);
        if groups.is_some_and(|groups| !policy::accepts_any_group(&groups)) {
            self.report_failure(remote, HandshakeFailure::NoCommonAlgorithms);
            return Ok(());
        }
        let gate = Arc::new(FingerprintGate::new(expected.cloned().unwrap_or_default()));
        let offered = record::offered_srtp_profiles(datagram, scan);
        let profiles = config::choose_profiles(&self.config.srtp_profiles, offered.as_deref());
        match self.policy.build(DtlsRole::Server, &profiles, &gate) {
            Ok(handshake) => {
                let dtls = Endpoint::new(UNSPECIFIED, Default::default(), Some(handshake));
                let deadline = now + self.config.handshake_timeout;
                let association = Association::new(DtlsRole::Server, dtls, gate, deadline);
                self.associations.insert(remote, association);
            }
            Err(reason) => self.report_failure(remote, reason),
        }
        Ok(())
    }

    fn on_library_event(&mut self, now: Instant, remote: SocketAddr, event: EndpointEvent) {
        match event {
            EndpointEvent::HandshakeComplete => self.on_connected(now, remote),
            EndpointEvent::ApplicationData(_) => {
                self.stats.count_drop(DatagramDrop::ApplicationData);
            }
            EndpointEvent::PeerClosed if self.associations.remove(&remote).is_some() => {
                self.stats.count_closed();
                self.events.push_back(DtlsEvent::Closed { remote });
            }
            _ => {}
        }
    }

    /// The handshake completed: check the peer again, export the keys, report them.
    fn on_connected(&mut self, now: Instant, remote: SocketAddr) {
        let Some(association) = self.associations.get_mut(&remote) else {
            return;
        };
        match connected(association, remote) {
            Ok(event) => {
                association.deadline = None;
                self.stats.count_connected();
                self.events.push_back(event);
            }
            Err(reason) => {
                drop(association.dtls.stop(now, remote));
                association.drain(&mut self.transmits);
                self.fail(remote, reason);
            }
        }
    }

    /// Ends the association with `remote` for `reason` (whatever rtc-dtls queued, such as an
    /// alert, was already moved to the transmits).
    fn fail(&mut self, remote: SocketAddr, reason: HandshakeFailure) {
        if self.associations.remove(&remote).is_some() {
            self.report_failure(remote, reason);
        }
    }

    fn report_failure(&mut self, remote: SocketAddr, reason: HandshakeFailure) {
        self.stats.count_failure(reason);
        self.events.push_back(DtlsEvent::Failed { remote, reason });
    }

    /// Runs retransmissions and handshake deadlines that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<SocketAddr> = self
            .associations
            .iter()
            .filter(|(remote, association)| {
                next_timeout(remote, association).is_some_and(|deadline| deadline <= now)
            })
            .map(|(remote, _)| *remote)
            .collect();
        for remote in due {
            let Some(association) = self.associations.get_mut(&remote) else {
                continue;
            };
            if association.deadline.is_some_and(|deadline| deadline <= now) {
                self.fail(remote, HandshakeFailure::HandshakeTimeout);
                continue;
            }
            let result = association.dtls.handle_timeout(remote, now);
            association.drain(&mut self.transmits);
            if let Err(error) = result {
                let reason = association.failure(&error, false);
                self.fail(remote, reason);
            }
        }
    }

    /// The next datagram to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<DtlsEvent> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] must next be called; `None` while nothing waits for time.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.associations
            .iter()
            .filter_map(|(remote, association)| next_timeout(remote, association))
            .min()
    }
}

/// The earlier of the association's handshake deadline and rtc-dtls's retransmission timer.
fn next_timeout(remote: &SocketAddr, association: &Association) -> Option<Instant> {
    let retransmit = association.dtls.poll_timeout(remote);
    match (association.deadline, retransmit) {
        (Some(deadline), Some(retransmit)) => Some(deadline.min(retransmit)),
        (deadline, retransmit) => deadline.or(retransmit),
    }
}

/// The `Connected` event for a completed handshake, after checking what rtc-dtls negotiated.
fn connected(association: &Association, remote: SocketAddr) -> Result<DtlsEvent, HandshakeFailure> {
    let state = association
        .dtls
        .get_connection_state(remote)
        .ok_or(HandshakeFailure::Internal)?;
    let peer = association.gate.check(&state.peer_certificates)?;
    if state.cipher_suite().map(|suite| suite.id()) != Some(CIPHER_SUITE) {
        return Err(HandshakeFailure::NoCommonAlgorithms);
    }
    let profile = config::from_library(state.srtp_protection_profile())
        .ok_or(HandshakeFailure::SrtpNotNegotiated)?;
    let material = state
        .export_keying_material(DTLS_SRTP_EXPORTER_LABEL, &[], profile.keying_material_len())
        .map_err(|_| HandshakeFailure::KeyExport)?;
    let keys = MasterKeys::from_keying_material(profile, material.as_ref(), association.role)
        .map_err(|_| HandshakeFailure::KeyExport)?;
    Ok(DtlsEvent::Connected {
        remote,
        profile,
        keys,
        peer,
    })
}

#[cfg(test)]
mod tests;
