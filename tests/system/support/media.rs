//! Media test peers on real loopback sockets, and a two-person meeting through signalling.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use kammer_core::media::dtls::DtlsCertificate;
use kammer_core::media::peer::Peer;
use kammer_core::media::sdp::SessionDescription;
use serde_json::json;

use super::{Appliance, Client};

/// A test peer on its own loopback socket.
pub struct Endpoint {
    pub peer: Peer,
    pub socket: UdpSocket,
}

impl Endpoint {
    pub fn new(seed: u64) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.set_nonblocking(true).expect("nonblocking");
        let certificate = DtlsCertificate::generate().expect("certificate");
        let peer = Peer::new(socket.local_addr().expect("addr"), certificate, seed);
        Self { peer, socket }
    }

    /// Sends what the peer queued, reads what arrived, runs its timers.
    pub fn turn(&mut self) {
        let now = Instant::now();
        while let Some(transmit) = self.peer.poll_transmit() {
            let _ = self.socket.send_to(&transmit.payload, transmit.destination);
        }
        let mut buffer = [0u8; 2048];
        while let Ok((len, source)) = self.socket.recv_from(&mut buffer) {
            self.peer.handle_datagram(now, source, &mut buffer[..len]);
        }
        if self.peer.poll_timeout().is_some_and(|at| at <= now) {
            self.peer.handle_timeout(now);
        }
        while let Some(transmit) = self.peer.poll_transmit() {
            let _ = self.socket.send_to(&transmit.payload, transmit.destination);
        }
    }
}

/// Turns both endpoints until `done` holds; fails after 10 s.
pub async fn run_until(
    endpoints: &mut [&mut Endpoint],
    mut done: impl FnMut(&mut [&mut Endpoint]) -> bool,
) {
    let start = Instant::now();
    while !done(endpoints) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "media did not get there within 10 s"
        );
        for endpoint in endpoints.iter_mut() {
            endpoint.turn();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub async fn meeting(kammer: &Appliance) -> (Client, Client, u64) {
    let mut alice = kammer.client().await;
    let mut bob = kammer.client().await;
    alice
        .send(json!({"type": "join", "protocol": 1, "room": "media", "name": "Alice"}))
        .await;
    let joined = alice.recv_type("joined").await;
    let alice_id = joined["you"].as_u64().expect("id");
    bob.send(json!({"type": "join", "protocol": 1, "room": "media", "name": "Bob"}))
        .await;
    let lobby = alice.recv_type("lobby_changed").await;
    let bob_id = lobby["lobby"][0]["id"].as_u64().expect("id");
    alice
        .send(json!({"type": "admit", "participant": bob_id}))
        .await;
    assert_eq!(bob.recv_type("joined").await["role"], "participant");
    (alice, bob, alice_id)
}

pub fn media_port(sdp: &str) -> SocketAddr {
    let description = SessionDescription::parse(sdp).expect("the server's SDP parses");
    let candidate = description.media[0]
        .candidates
        .first()
        .expect("a host candidate");
    SocketAddr::new(candidate.address.parse().expect("ip"), candidate.port)
}
