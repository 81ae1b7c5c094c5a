//! The media plane's shell: one UDP socket for every room, one thread that owns the sans-IO
//! SFU of `kammer-core`, with its own single-threaded runtime so that packet work never waits
//! behind HTTP or signalling.
//!
//! The thread reads every datagram that is ready (up to a batch) before it sends what the SFU
//! produced, so that one wake-up carries many packets; commands from signalling and timer
//! expiries are taken between batches. Datagrams of one batch to the same destination leave in
//! one `sendmsg` with UDP generic segmentation offload (`UDP_SEGMENT`) when their sizes allow:
//! under load, batches grow and the kernel's per-datagram cost shrinks. Where the kernel
//! refuses GSO, every datagram is sent on its own from then on.

use std::io::{ErrorKind, IoSlice};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Instant;

use kammer_core::media::dtls::{DtlsCertificate, DtlsConfig, DtlsEndpoint, DtlsStats, Transmit};
use kammer_core::media::sfu::{MediaCommand, Sfu, SfuConfig, SfuStats};
use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmsg, sockopt};
use tokio::io::Interest;
use tokio::sync::{mpsc, oneshot};

use crate::signal::{Event, SystemEntropy};

/// Datagrams read per wake-up before the SFU's output is sent.
const RECEIVE_BATCH: usize = 64;

/// Commands queued towards the media thread before signalling gets `media_unavailable`.
const COMMAND_QUEUE: usize = 1024;

/// Largest datagram read; longer ones are cut and then fail their authentication.
const RECEIVE_BUFFER: usize = 4096;

/// Socket buffer size asked for, in bytes.
const SOCKET_BUFFER: usize = 4 << 20;

/// Most segments in one GSO send (the kernel allows 64) and most bytes (one IP datagram).
const GSO_MAX_SEGMENTS: usize = 64;
const GSO_MAX_BYTES: usize = 65_000;

/// What the binary configures for the media plane.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// Where the UDP socket binds.
    pub listen: SocketAddr,
    /// The addresses clients reach the socket at, written as host candidates (with the bound
    /// port). Empty: the bound address, which must then not be unspecified.
    pub announce: Vec<IpAddr>,
    /// Participants with media at once.
    pub max_participants: usize,
    /// The DTLS certificate; `None` makes a self-signed one at start.
    pub certificate: Option<DtlsCertificate>,
}

/// Failure to set up the media plane.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The UDP socket could not be bound or configured.
    #[error("cannot bind the media port {address}: {source}")]
    Bind {
        /// The configured address.
        address: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Nothing to announce: the socket binds an unspecified address and `announce` is empty.
    #[error("media.announce must list the addresses clients reach when media.listen is {0}")]
    NothingToAnnounce(SocketAddr),
    /// The DTLS certificate could not be made.
    #[error("cannot create the DTLS certificate")]
    Certificate,
}

/// Binds and configures the media plane's UDP socket; checks that there is something to
/// announce.
pub fn bind_socket(settings: &MediaSettings) -> Result<UdpSocket, MediaError> {
    let bind = |source| MediaError::Bind {
        address: settings.listen,
        source,
    };
    announced(settings)?;
    let socket = UdpSocket::bind(settings.listen).map_err(bind)?;
    socket.set_nonblocking(true).map_err(bind)?;
    // Room for bursts (a key frame from every publisher at once). Beyond net.core.rmem_max
    // only with CAP_NET_ADMIN (the sealed image raises the sysctl instead); a smaller buffer is
    // not an error.
    if nix::sys::socket::setsockopt(&socket, sockopt::RcvBufForce, &SOCKET_BUFFER).is_err() {
        let _ = nix::sys::socket::setsockopt(&socket, sockopt::RcvBuf, &SOCKET_BUFFER);
    }
    let _ = nix::sys::socket::setsockopt(&socket, sockopt::SndBuf, &SOCKET_BUFFER);
    Ok(socket)
}

/// The addresses written as host candidates.
fn announced(settings: &MediaSettings) -> Result<Vec<IpAddr>, MediaError> {
    if !settings.announce.is_empty() {
        return Ok(settings.announce.clone());
    }
    if settings.listen.ip().is_unspecified() {
        return Err(MediaError::NothingToAnnounce(settings.listen));
    }
    Ok(vec![settings.listen.ip()])
}

/// A bound media socket, not yet running.
pub(crate) struct MediaSocket {
    socket: UdpSocket,
    candidates: Vec<SocketAddr>,
    max_participants: usize,
    certificate: Option<DtlsCertificate>,
}

impl MediaSocket {
    pub(crate) fn bind(settings: &MediaSettings) -> Result<Self, MediaError> {
        Self::from_socket(bind_socket(settings)?, settings)
    }

    /// A media plane on a socket bound elsewhere (by [`bind_socket`], in the supervisor).
    pub(crate) fn from_socket(
        socket: UdpSocket,
        settings: &MediaSettings,
    ) -> Result<Self, MediaError> {
        let failed = |source| MediaError::Bind {
            address: settings.listen,
            source,
        };
        socket.set_nonblocking(true).map_err(failed)?;
        let port = socket.local_addr().map_err(failed)?.port();
        Ok(Self {
            socket,
            candidates: announced(settings)?
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect(),
            max_participants: settings.max_participants,
            certificate: settings.certificate.clone(),
        })
    }

    pub(crate) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

/// What signalling and `/metrics` send to the media thread.
#[derive(Debug)]
pub(crate) enum MediaInput {
    Command(MediaCommand),
    /// The media plane's part of `/metrics`, rendered.
    Metrics(oneshot::Sender<String>),
}

/// The media plane's figures, for `/metrics`.
#[derive(Debug, Clone, Default)]
pub(crate) struct MediaSnapshot {
    pub(crate) sfu: SfuStats,
    pub(crate) dtls: DtlsStats,
    pub(crate) participants: usize,
    pub(crate) connected_transports: usize,
    pub(crate) datagrams_received: u64,
    pub(crate) datagrams_sent: u64,
    pub(crate) gso_sends: u64,
    pub(crate) send_errors: u64,
    pub(crate) forwarding: LatencyHistogram,
}

/// Upper bounds of the forwarding-time buckets, in microseconds.
pub(crate) const LATENCY_BOUNDS_US: [u64; 10] =
    [25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 50_000];

/// Time from reading a batch of datagrams to having sent everything it caused, counted once
/// per datagram sent (so the figure is an upper bound for each packet of the batch).
#[derive(Debug, Clone, Default)]
pub(crate) struct LatencyHistogram {
    /// Per bucket of [`LATENCY_BOUNDS_US`], and one more for longer.
    pub(crate) buckets: [u64; LATENCY_BOUNDS_US.len() + 1],
    pub(crate) count: u64,
    pub(crate) sum_us: u64,
}

impl LatencyHistogram {
    fn record(&mut self, elapsed: std::time::Duration, datagrams: usize) {
        if datagrams == 0 {
            return;
        }
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BOUNDS_US
            .iter()
            .position(|bound| us <= *bound)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        let n = datagrams as u64;
        self.buckets[bucket] += n;
        self.count += n;
        self.sum_us = self.sum_us.saturating_add(us.saturating_mul(n));
    }
}

/// The handle signalling and `/metrics` use.
#[derive(Debug, Clone)]
pub(crate) struct MediaHandle {
    pub(crate) inputs: mpsc::Sender<MediaInput>,
}

impl MediaHandle {
    pub(crate) async fn metrics(&self) -> Option<String> {
        let (tx, rx) = oneshot::channel();
        self.inputs.send(MediaInput::Metrics(tx)).await.ok()?;
        rx.await.ok()
    }
}

/// The channel to the media thread, made before the thread so that signalling can hold it.
pub(crate) fn channel() -> (MediaHandle, mpsc::Receiver<MediaInput>) {
    let (inputs, rx) = mpsc::channel(COMMAND_QUEUE);
    (MediaHandle { inputs }, rx)
}

/// Starts the media thread. A panic in it ends the process (exit code 70), as one in the
/// signalling hub does: the service manager restarts a consistent appliance.
pub(crate) fn spawn(
    media: MediaSocket,
    inputs: mpsc::Receiver<MediaInput>,
    events: mpsc::Sender<Event>,
) -> Result<(), MediaError> {
    let certificate = match media.certificate.clone() {
        Some(certificate) => certificate,
        None => DtlsCertificate::generate().map_err(|_| MediaError::Certificate)?,
    };
    tracing::info!(fingerprint = %certificate.fingerprint(), "media DTLS certificate");
    let dtls = DtlsEndpoint::new(DtlsConfig::default(), certificate)
        .map_err(|_| MediaError::Certificate)?;
    let config = SfuConfig {
        candidates: media.candidates.clone(),
        max_participants: media.max_participants,
        ..SfuConfig::default()
    };
    let sfu = Sfu::new(config, dtls, SystemEntropy::new());
    let socket = media.socket;
    let spawned = std::thread::Builder::new()
        .name("kammer-media".to_owned())
        .spawn(move || {
            let run = std::panic::AssertUnwindSafe(|| run(socket, sfu, inputs, events));
            if std::panic::catch_unwind(run).is_err() {
                tracing::error!("the media plane panicked; exiting so that the service restarts");
                std::process::exit(70);
            }
        });
    spawned.map(drop).map_err(|source| MediaError::Bind {
        address: media.candidates[0],
        source,
    })
}

fn run(
    socket: UdpSocket,
    mut sfu: Sfu<SystemEntropy>,
    mut inputs: mpsc::Receiver<MediaInput>,
    events: mpsc::Sender<Event>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a single-threaded runtime starts");
    runtime.block_on(async move {
        let Ok(socket) = tokio::net::UdpSocket::from_std(socket) else {
            tracing::error!("the media socket cannot be registered with the runtime");
            return;
        };
        let mut figures = MediaSnapshot::default();
        let mut buffer = vec![0u8; RECEIVE_BUFFER];
        let mut outgoing: Vec<Transmit> = Vec::new();
        let mut gso = true;
        let mut batch_start = None;
        loop {
            let deadline = sfu.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                input = inputs.recv() => match input {
                    None => break,
                    Some(MediaInput::Command(command)) => {
                        sfu.handle_command(Instant::now(), command);
                    }
                    Some(MediaInput::Metrics(reply)) => {
                        figures.sfu = sfu.stats().clone();
                        figures.dtls = sfu.dtls().stats().clone();
                        figures.participants = sfu.participant_count();
                        figures.connected_transports = sfu.connected_transports();
                        let _ = reply.send(crate::metrics::render_media_text(&figures));
                    }
                },
                ready = socket.readable() => {
                    if ready.is_ok() {
                        batch_start = Some(Instant::now());
                        receive_batch(&socket, &mut sfu, &mut buffer, &mut figures);
                    }
                }
                () = crate::signal::sleep_until(deadline) => sfu.handle_timeout(Instant::now()),
            }
            outgoing.extend(std::iter::from_fn(|| sfu.poll_transmit()));
            let sent = outgoing.len();
            send_all(&socket, &mut outgoing, &mut gso, &mut figures).await;
            if let Some(start) = batch_start.take() {
                figures.forwarding.record(start.elapsed(), sent);
            }
            while let Some(event) = sfu.poll_event() {
                if events.send(Event::Media(event)).await.is_err() {
                    return;
                }
            }
        }
    });
}

fn receive_batch(
    socket: &tokio::net::UdpSocket,
    sfu: &mut Sfu<SystemEntropy>,
    buffer: &mut [u8],
    figures: &mut MediaSnapshot,
) {
    for _ in 0..RECEIVE_BATCH {
        match socket.try_recv_from(buffer) {
            Ok((len, source)) => {
                figures.datagrams_received += 1;
                #[cfg(feature = "test-hooks")]
                test_hooks::on_datagram(&buffer[..len], source);
                sfu.handle_datagram(Instant::now(), source, &mut buffer[..len]);
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => break,
            Err(error) => {
                // ICMP errors of earlier sends (port unreachable) surface here; they say
                // nothing about the next datagram.
                tracing::trace!(%error, "media receive error");
            }
        }
    }
}

/// Sends and empties `outgoing`: runs to one destination go out as GSO sends, the rest one
/// by one. Order is kept per destination.
async fn send_all(
    socket: &tokio::net::UdpSocket,
    outgoing: &mut Vec<Transmit>,
    gso: &mut bool,
    figures: &mut MediaSnapshot,
) {
    if *gso && outgoing.len() > 1 {
        outgoing.sort_by_key(|transmit| transmit.destination);
    }
    let mut rest = &outgoing[..];
    while let Some(first) = rest.first() {
        let run = if *gso { segment_run(rest) } else { 1 };
        if run > 1 {
            match send_segments(socket, &rest[..run]) {
                Ok(()) => {
                    figures.datagrams_sent += run as u64;
                    figures.gso_sends += 1;
                    rest = &rest[run..];
                    continue;
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                Err(error) => {
                    tracing::info!(%error, "UDP segmentation offload refused; sending datagrams one by one");
                    *gso = false;
                }
            }
        }
        send(socket, &first.payload, first.destination, figures).await;
        rest = &rest[1..];
    }
    outgoing.clear();
}

/// How many datagrams from the start of `transmits` can leave in one GSO send: same
/// destination, every one but the last of the first one's size, the last no larger.
fn segment_run(transmits: &[Transmit]) -> usize {
    let Some(first) = transmits.first() else {
        return 0;
    };
    let size = first.payload.len();
    let mut run = 1;
    let mut bytes = size;
    for transmit in &transmits[1..] {
        let len = transmit.payload.len();
        if transmit.destination != first.destination
            || len > size
            || len == 0
            || run == GSO_MAX_SEGMENTS
            || bytes + len > GSO_MAX_BYTES
        {
            break;
        }
        run += 1;
        bytes += len;
        if len < size {
            break;
        }
    }
    run
}

fn send_segments(socket: &tokio::net::UdpSocket, run: &[Transmit]) -> std::io::Result<()> {
    let destination = SockaddrStorage::from(run[0].destination);
    let segment = u16::try_from(run[0].payload.len()).map_err(|_| ErrorKind::InvalidInput)?;
    let slices: Vec<IoSlice<'_>> = run
        .iter()
        .map(|transmit| IoSlice::new(&transmit.payload))
        .collect();
    socket.try_io(Interest::WRITABLE, || {
        sendmsg(
            socket.as_raw_fd(),
            &slices,
            &[ControlMessage::UdpGsoSegments(&segment)],
            MsgFlags::empty(),
            Some(&destination),
        )
        .map(drop)
        .map_err(std::io::Error::from)
    })
}

async fn send(
    socket: &tokio::net::UdpSocket,
    payload: &[u8],
    destination: SocketAddr,
    figures: &mut MediaSnapshot,
) {
    let result = match socket.try_send_to(payload, destination) {
        Err(error) if error.kind() == ErrorKind::WouldBlock => {
            socket.send_to(payload, destination).await
        }
        other => other,
    };
    match result {
        Ok(_) => figures.datagrams_sent += 1,
        Err(_) => figures.send_errors += 1,
    }
}

/// Test builds only: a datagram from loopback that names a forbidden action makes the media
/// worker attempt it, as a parser an attacker had taken over would; the sandbox must stop it.
#[cfg(feature = "test-hooks")]
mod test_hooks {
    use std::net::SocketAddr;

    /// The prefix of a trigger datagram; the rest names a `kammer_hardening::trigger::Violation`.
    const PREFIX: &[u8] = b"KAMMER-TEST-VIOLATION ";

    pub(super) fn on_datagram(payload: &[u8], source: SocketAddr) {
        let Some(name) = payload.strip_prefix(PREFIX) else {
            return;
        };
        if !source.ip().is_loopback() {
            return;
        }
        let Some(violation) = std::str::from_utf8(name).ok().and_then(|name| {
            name.trim()
                .parse::<kammer_hardening::trigger::Violation>()
                .ok()
        }) else {
            return;
        };
        tracing::warn!(?violation, "test hook: attempting a forbidden action");
        let result = kammer_hardening::trigger::attempt(violation);
        tracing::warn!(
            ?violation,
            ?result,
            "test hook: the forbidden action returned"
        );
    }
}
