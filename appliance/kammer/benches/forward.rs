//! Forwarding benchmark of the real binary: one publisher → N subscribers over real DTLS-SRTP
//! sessions on loopback, through the appliance's UDP port.
//!
//! `cargo bench -p kammer --bench forward` starts `kammer demo` (release build), negotiates
//! through signalling like a browser, connects test peers (ICE, DTLS, SRTP-GCM from
//! `kammer-core`'s `peer` module) and then, for each offered rate, sends 1,200-byte SRTP packets
//! from the publisher for a few seconds. It prints, per rate: packets forwarded per second,
//! the media worker's CPU time (from /proc), forwarded packets per CPU-second, the time forwarding
//! adds inside the server (p50/p99 from its `kammer_media_forward_seconds` histogram: from
//! reading a batch to having sent all it caused, bucket bounds), the one-way latency from the
//! publisher's send to a subscriber's receive (e2e p50/p99: both loopback hops and the load
//! generator's own scheduling included) and the loss.
//!
//! Settings from the environment: `KAMMER_BENCH_SUBSCRIBERS` (default 10),
//! `KAMMER_BENCH_RATES` (published packets per second, comma-separated, default
//! `2000,5000,10000,20000,30000`), `KAMMER_BENCH_SECONDS` per rate (default 3).

#[path = "../../../tests/system/support/mod.rs"]
mod support;

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kammer_core::media::dtls::DtlsCertificate;
use kammer_core::media::peer::{OutgoingTrack, Peer, VP8_PT, rtp_packet};
use kammer_core::media::sdp::MediaKind;
use serde_json::json;
use support::{Appliance, Client};

const SSRC: u32 = 0xBE7C;
/// RTP header (12) + mid extension (8) + payload + GCM tag (16) = 1,200 bytes on the wire.
const PAYLOAD: usize = 1200 - 12 - 8 - 16;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

struct Endpoint {
    peer: Peer,
    socket: UdpSocket,
}

impl Endpoint {
    fn new(seed: u64, certificate: &DtlsCertificate) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.set_nonblocking(true).expect("nonblocking");
        // Deep receive queues so that the measurement sees the server's loss, not ours (forcing
        // past net.core.rmem_max needs root; otherwise the default stays).
        let _ = nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::RcvBufForce,
            &(8 << 20),
        );
        let peer = Peer::new(
            socket.local_addr().expect("addr"),
            certificate.clone(),
            seed,
        );
        Self { peer, socket }
    }

    fn flush(&mut self) {
        while let Some(transmit) = self.peer.poll_transmit() {
            let _ = self.socket.send_to(&transmit.payload, transmit.destination);
        }
    }

    /// Handshake phase: everything goes through the peer.
    fn turn(&mut self) {
        let now = Instant::now();
        self.flush();
        let mut buffer = [0u8; 2048];
        while let Ok((len, source)) = self.socket.recv_from(&mut buffer) {
            self.peer.handle_datagram(now, source, &mut buffer[..len]);
        }
        if self.peer.poll_timeout().is_some_and(|at| at <= now) {
            self.peer.handle_timeout(now);
        }
        self.flush();
    }
}

/// The media worker's process ID, from the supervisor's status file.
fn media_worker(state: &std::path::Path) -> u32 {
    let text = std::fs::read_to_string(state.join("run/status.json")).expect("status file");
    let status: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    status["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|entry| entry["role"] == "media")
        .and_then(|entry| entry["pid"].as_u64())
        .and_then(|pid| u32::try_from(pid).ok())
        .expect("a media worker")
}

/// The CPU time the process has used so far (user + system), from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name in parentheses; utime and stime are the 14th and 15th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat format")
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // The kernel reports in USER_HZ, 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// On two or more CPUs: the server on the first, this process (publisher and subscribers) on
/// the second, so that the load generator does not steal the server's CPU and the latencies
/// measure forwarding rather than scheduling. Returns whether it pinned.
fn pin(server: u32) -> bool {
    use nix::sched::{CpuSet, sched_setaffinity};
    use nix::unistd::Pid;
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    if cpus < 2 {
        return false;
    }
    let mut server_set = CpuSet::new();
    let mut bench_set = CpuSet::new();
    let (Ok(()), Ok(())) = (server_set.set(0), bench_set.set(1)) else {
        return false;
    };
    let server = Pid::from_raw(i32::try_from(server).unwrap_or(i32::MAX));
    // Every thread of the server: affinity is per thread on Linux.
    let threads = std::fs::read_dir(format!("/proc/{server}/task"))
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let server_pinned = threads
        .into_iter()
        .all(|thread| sched_setaffinity(Pid::from_raw(thread), &server_set).is_ok());
    server_pinned && sched_setaffinity(Pid::from_raw(0), &bench_set).is_ok()
}

fn percentile(sorted: &[u32], fraction: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// The cumulative buckets of the server's `kammer_media_forward_seconds` histogram: (upper
/// bound in µs, count), `+Inf` as `u64::MAX`.
async fn forwarding_buckets(kammer: &Appliance) -> Vec<(u64, u64)> {
    let (_, _, metrics) = kammer.get("/metrics").await;
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix("kammer_media_forward_seconds_bucket{le=\""))
        .filter_map(|rest| {
            let (bound, count) = rest.split_once("\"} ")?;
            let bound = if bound == "+Inf" {
                u64::MAX
            } else {
                (bound.parse::<f64>().ok()? * 1_000_000.0).round() as u64
            };
            Some((bound, count.parse().ok()?))
        })
        .collect()
}

/// The bucket bound below which `fraction` of the datagrams counted between two readings lie.
fn bucket_percentile(before: &[(u64, u64)], after: &[(u64, u64)], fraction: f64) -> String {
    let total = after.last().map_or(0, |b| b.1) - before.last().map_or(0, |b| b.1);
    if total == 0 {
        return "-".to_owned();
    }
    for ((bound, count), (_, earlier)) in after.iter().zip(before) {
        if (count - earlier) as f64 >= fraction * total as f64 {
            return if *bound == u64::MAX {
                ">50000".to_owned()
            } else {
                format!("≤{bound}")
            };
        }
    }
    "-".to_owned()
}

/// What one subscriber thread saw in one run.
#[derive(Default)]
struct Received {
    packets: u64,
    latencies_us: Vec<u32>,
}

/// All subscribers in one thread that polls their sockets without blocking: a receiver blocked
/// in `recv` would make every one of the server's sends on loopback pay for a thread wake-up,
/// which a real network interface does not.
fn subscribers_loop(
    mut endpoints: Vec<Endpoint>,
    epoch: Instant,
    stop: Arc<AtomicBool>,
) -> (Vec<Endpoint>, Received) {
    let mut received = Received::default();
    let mut buffer = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let mut idle = true;
        for endpoint in &mut endpoints {
            while let Ok((len, source)) = endpoint.socket.recv_from(&mut buffer) {
                idle = false;
                let now = Instant::now();
                let datagram = &mut buffer[..len];
                // RTP headers travel in clear: the subscriber reads the send time the publisher
                // put into the RTP timestamp without decrypting.
                if len > 12
                    && (128..192).contains(&datagram[0])
                    && !(192..224).contains(&datagram[1])
                {
                    let sent =
                        u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]);
                    let elapsed =
                        u32::try_from(now.duration_since(epoch).as_micros()).unwrap_or(u32::MAX);
                    received.packets += 1;
                    received.latencies_us.push(elapsed.wrapping_sub(sent));
                } else {
                    endpoint.peer.handle_datagram(now, source, datagram);
                    endpoint.flush();
                }
            }
        }
        if idle {
            let now = Instant::now();
            for endpoint in &mut endpoints {
                if endpoint.peer.poll_timeout().is_some_and(|at| at <= now) {
                    endpoint.peer.handle_timeout(now);
                    endpoint.flush();
                }
            }
            std::thread::yield_now();
        }
    }
    (endpoints, received)
}

async fn join(kammer: &Appliance, name: &str, secret: Option<&str>) -> (Client, u64) {
    let mut client = kammer.client().await;
    let mut join = json!({"type": "join", "protocol": 1, "room": "bench", "name": name});
    if let Some(secret) = secret {
        join["moderator_secret"] = json!(secret);
    }
    client.send(join).await;
    let joined = client.recv_type("joined").await;
    let id = joined["you"].as_u64().expect("id");
    (client, id)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let subscribers: usize = env_or("KAMMER_BENCH_SUBSCRIBERS", 10);
    let seconds: u64 = env_or("KAMMER_BENCH_SECONDS", 3);
    let rates: Vec<u64> = std::env::var("KAMMER_BENCH_RATES")
        .unwrap_or_else(|_| "2000,5000,10000,20000,30000".to_owned())
        .split(',')
        .filter_map(|rate| rate.trim().parse().ok())
        .collect();
    let certificate = DtlsCertificate::generate().expect("certificate");
    let kammer = Appliance::demo();
    // The SFU runs in the media worker, a child of the process started.
    let pid = media_worker(&kammer.state);
    let pinned = pin(pid);

    // The publisher creates the room; its moderator secret lets subscribers skip the lobby.
    let mut publisher_client = kammer.client().await;
    publisher_client
        .send(json!({"type": "join", "protocol": 1, "room": "bench", "name": "Publisher"}))
        .await;
    let joined = publisher_client.recv_type("joined").await;
    let secret = joined["moderator_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let mut publisher = Endpoint::new(1, &certificate);
    let offer = publisher.peer.publish_offer(&[OutgoingTrack {
        mid: "0",
        kind: MediaKind::Video,
        ssrc: SSRC,
    }]);
    publisher_client
        .send(
            json!({"type": "publish", "sdp": offer, "tracks": [{"mid": "0", "source": "camera"}]}),
        )
        .await;
    let answer = publisher_client.recv_type("publish_answer").await;
    publisher
        .peer
        .apply_remote(Instant::now(), answer["sdp"].as_str().expect("sdp"))
        .expect("answer");

    let mut clients = Vec::new();
    let mut endpoints = Vec::new();
    for index in 0..subscribers {
        let (mut client, _) = join(&kammer, &format!("Subscriber {index}"), Some(&secret)).await;
        let offer = client.recv_type("subscribe_offer").await;
        let sdp = offer["sdp"].as_str().expect("sdp");
        let mut endpoint = Endpoint::new(10 + index as u64, &certificate);
        let reply = endpoint.peer.subscribe_answer(sdp).expect("answer");
        client
            .send(json!({"type": "subscribe_answer", "version": offer["version"], "sdp": reply}))
            .await;
        endpoint
            .peer
            .apply_remote(Instant::now(), sdp)
            .expect("offer");
        clients.push(client);
        endpoints.push(endpoint);
    }
    let start = Instant::now();
    while !(publisher.peer.is_connected() && endpoints.iter().all(|e| e.peer.is_connected())) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "sessions did not connect"
        );
        publisher.turn();
        for endpoint in &mut endpoints {
            endpoint.turn();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Let the key-frame requests and first reports pass.
    tokio::time::sleep(Duration::from_millis(200)).await;
    publisher.turn();

    println!(
        "kammer forwarding benchmark: 1 publisher -> {subscribers} subscribers, 1200-byte SRTP (AEAD_AES_128_GCM) packets, {seconds} s per rate, loopback{}",
        if pinned {
            ", server on CPU 0, load generator on CPU 1"
        } else {
            ""
        }
    );
    println!(
        "{:>10} {:>12} {:>10} {:>11} {:>12} {:>12} {:>9} {:>9} {:>8}",
        "published/s",
        "forwarded/s",
        "server CPU",
        "fwd/CPU-s",
        "in-server",
        "in-server",
        "e2e p50",
        "e2e p99",
        "loss"
    );
    println!(
        "{:>10} {:>12} {:>10} {:>11} {:>12} {:>12} {:>9} {:>9} {:>8}",
        "", "", "", "", "p50 µs", "p99 µs", "µs", "µs", ""
    );
    let epoch = Instant::now();
    let mut sequence: u16 = 0;
    for rate in rates {
        let stop = Arc::new(AtomicBool::new(false));
        let receiver = {
            let stop = Arc::clone(&stop);
            let endpoints = std::mem::take(&mut endpoints);
            std::thread::spawn(move || subscribers_loop(endpoints, epoch, stop))
        };
        let payload = vec![0x5A; PAYLOAD];
        let buckets_before = forwarding_buckets(&kammer).await;
        let cpu_before = cpu_time(pid);
        let run_start = Instant::now();
        let total = rate * seconds;
        let mut sent = 0u64;
        // Paced in 1 ms steps.
        while sent < total {
            let due = (run_start.elapsed().as_micros() as u64 * rate / 1_000_000).min(total);
            while sent < due {
                sequence = sequence.wrapping_add(1);
                let now_us = u32::try_from(epoch.elapsed().as_micros()).unwrap_or(u32::MAX);
                let packet = rtp_packet(VP8_PT, sequence, now_us, SSRC, "0", &payload);
                if publisher.peer.send_rtp(&packet).is_some() {
                    sent += 1;
                }
                publisher.flush();
            }
            let mut buffer = [0u8; 2048];
            while let Ok((len, source)) = publisher.socket.recv_from(&mut buffer) {
                publisher
                    .peer
                    .handle_datagram(Instant::now(), source, &mut buffer[..len]);
            }
            let now = Instant::now();
            if publisher.peer.poll_timeout().is_some_and(|at| at <= now) {
                publisher.peer.handle_timeout(now);
            }
            publisher.flush();
            std::thread::sleep(Duration::from_micros(500));
        }
        let elapsed = run_start.elapsed();
        // Let the last packets arrive.
        std::thread::sleep(Duration::from_millis(200));
        let cpu = cpu_time(pid).saturating_sub(cpu_before);
        let buckets_after = forwarding_buckets(&kammer).await;
        stop.store(true, Ordering::Relaxed);
        let (returned, seen) = receiver.join().expect("subscriber thread");
        endpoints = returned;
        let received = seen.packets;
        let mut latencies = seen.latencies_us;
        latencies.sort_unstable();
        let expected = sent * subscribers as u64;
        let loss = 1.0 - received as f64 / expected as f64;
        let forwarded_per_second = received as f64 / elapsed.as_secs_f64();
        let per_cpu = if cpu.is_zero() {
            f64::INFINITY
        } else {
            received as f64 / cpu.as_secs_f64()
        };
        println!(
            "{:>11} {:>12.0} {:>9.2}s {:>11.0} {:>12} {:>12} {:>9} {:>9} {:>7.3}%",
            rate,
            forwarded_per_second,
            cpu.as_secs_f64(),
            per_cpu,
            bucket_percentile(&buckets_before, &buckets_after, 0.50),
            bucket_percentile(&buckets_before, &buckets_after, 0.99),
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            loss.max(0.0) * 100.0
        );
    }
    let (status, _, metrics) = kammer.get("/metrics").await;
    if status == 200 {
        for line in metrics.lines().filter(|line| {
            line.starts_with("kammer_media_rtp_")
                || line.starts_with("kammer_media_send_errors")
                || (line.starts_with("kammer_media_dropped_total") && !line.ends_with(" 0"))
        }) {
            println!("  {line}");
        }
    }
    drop(clients);
    drop(publisher_client);
}
