//! A DTLS server endpoint fed arbitrary datagrams from a few remotes, interleaved with a genuine
//! client's handshake (whose datagrams the input may corrupt), a lossy return path and time
//! that advances: never a panic; limits hold; only the genuine client can connect, and when it
//! does both ends hold the same SRTP keys. With `KAMMER_FUZZ_TRACE` set, each such agreement is
//! printed, to check that inputs reach it (a seed: the bytes `00 04 ff`, ten times).
#![no_main]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kammer_core::media::dtls::{DtlsCertificate, DtlsConfig, DtlsEndpoint, DtlsEvent};
use kammer_core::media::srtp::{MasterKeys, SrtpContext};
use libfuzzer_sys::fuzz_target;

const MAX_HANDSHAKES: usize = 3;
const MAX_ASSOCIATIONS: usize = 4;

fn certificates() -> &'static (DtlsCertificate, DtlsCertificate) {
    static CERTIFICATES: OnceLock<(DtlsCertificate, DtlsCertificate)> = OnceLock::new();
    CERTIFICATES.get_or_init(|| {
        (
            DtlsCertificate::generate().expect("a server certificate"),
            DtlsCertificate::generate().expect("a client certificate"),
        )
    })
}

fn start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// The genuine client, then a spoofer of an expected remote, then two strangers.
fn remote(index: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], 50_000 + u16::from(index % 4)))
}

fn server_addr() -> SocketAddr {
    SocketAddr::from(([198, 51, 100, 1], 3478))
}

/// What one side protects with its key, the other unprotects with the same key.
fn assert_agree(server: &MasterKeys, client: &MasterKeys) {
    for (sender, receiver) in [
        (&client.local, &server.remote),
        (&server.local, &client.remote),
    ] {
        let plain = [
            0x80, 96, 0, 1, 0, 0, 0, 1, 0x12, 0x34, 0x56, 0x78, 0xab, 0xcd,
        ];
        let mut packet = plain.to_vec();
        SrtpContext::new(sender)
            .protect_rtp(&mut packet)
            .expect("protects");
        let len = SrtpContext::new(receiver)
            .unprotect_rtp(&mut packet)
            .expect("both ends derived the same keys");
        assert_eq!(packet[..len], plain);
    }
    if std::env::var_os("KAMMER_FUZZ_TRACE").is_some() {
        eprintln!("both ends connected and agree");
    }
}

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn bytes(&mut self, len: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(len.min(self.0.len()));
        self.0 = rest;
        taken
    }
}

fuzz_target!(|data: &[u8]| {
    let (server_certificate, client_certificate) = certificates();
    let config = DtlsConfig {
        admit_unannounced: true,
        max_handshakes: MAX_HANDSHAKES,
        max_associations: MAX_ASSOCIATIONS,
        max_client_hellos: 6,
        max_handshake_fragments: 48,
        max_early_encrypted: 6,
        handshake_timeout: Duration::from_secs(8),
        ..DtlsConfig::default()
    };
    let mut server = DtlsEndpoint::new(config, server_certificate.clone()).expect("a server");
    let mut client =
        DtlsEndpoint::new(DtlsConfig::default(), client_certificate.clone()).expect("a client");
    let client_fingerprint = *client.local_fingerprint();
    server.expect(remote(0), client_fingerprint).expect("room");
    server.expect(remote(1), client_fingerprint).expect("room");
    client
        .expect(server_addr(), *server.local_fingerprint())
        .expect("room");
    let mut now = start();
    client
        .connect(now, server_addr())
        .expect("the client starts");

    let mut to_server: VecDeque<Vec<u8>> = VecDeque::new();
    let mut to_client: VecDeque<Vec<u8>> = VecDeque::new();
    let mut input = Input(data);
    let (mut server_keys, mut client_keys) = (None, None);
    while let Some(op) = input.byte() {
        while let Some(transmit) = client.poll_transmit() {
            to_server.push_back(transmit.payload);
        }
        match op % 8 {
            // The client's next datagram, as sent.
            0..=2 => {
                if let Some(datagram) = to_server.pop_front() {
                    server.handle_datagram(now, remote(0), &datagram);
                }
            }
            // The client's next datagram with a byte changed, or from another remote.
            3 => {
                if let Some(mut datagram) = to_server.pop_front() {
                    let at = usize::from(input.byte().unwrap_or(0));
                    let xor = input.byte().unwrap_or(1);
                    let at = at % datagram.len().max(1);
                    if let Some(byte) = datagram.get_mut(at) {
                        *byte ^= xor;
                    }
                    let from = remote(input.byte().unwrap_or(0));
                    server.handle_datagram(now, from, &datagram);
                }
            }
            // Everything the server sent to the client so far, minus what the input drops.
            4 => {
                let keep = input.byte().unwrap_or(0xff);
                for (index, datagram) in to_client.drain(..).enumerate() {
                    if keep & (1 << (index % 8)) != 0 {
                        client.handle_datagram(now, server_addr(), &datagram);
                    }
                }
            }
            // An arbitrary datagram from one of the remotes.
            5 => {
                let from = remote(input.byte().unwrap_or(0));
                let len = usize::from(input.byte().unwrap_or(0)) * 8;
                let datagram = input.bytes(len);
                server.handle_datagram(now, from, datagram);
            }
            // Time passes.
            6 => {
                let step = u64::from(input.byte().unwrap_or(0));
                now += Duration::from_millis(step * 40);
                server.handle_timeout(now);
                client.handle_timeout(now);
            }
            // A remote is closed or forgotten.
            _ => {
                let which = input.byte().unwrap_or(0);
                if which & 0x80 != 0 {
                    server.forget(remote(which));
                } else {
                    let _ = server.close(now, remote(which));
                }
            }
        }
        while let Some(transmit) = server.poll_transmit() {
            if transmit.destination == remote(0) {
                to_client.push_back(transmit.payload);
            }
        }
        while let Some(event) = server.poll_event() {
            if let DtlsEvent::Connected {
                remote: peer, keys, ..
            } = event
            {
                assert_eq!(peer, remote(0), "only the genuine client holds its key");
                server_keys = Some(keys);
            }
        }
        while let Some(event) = client.poll_event() {
            if let DtlsEvent::Connected { keys, .. } = event {
                client_keys = Some(keys);
            }
        }
        if let (Some(server), Some(client)) = (&server_keys, &client_keys) {
            assert_agree(server, client);
            (server_keys, client_keys) = (None, None);
        }
        assert!(server.handshake_count() <= MAX_HANDSHAKES);
        assert!(server.association_count() <= MAX_ASSOCIATIONS);
        if let Some(deadline) = server.poll_timeout() {
            assert!(deadline <= now + Duration::from_secs(8));
        }
    }
});
