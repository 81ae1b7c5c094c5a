//! The I/O shell of Kammer: everything that touches a socket.
//!
//! * [`tls`] builds the restricted TLS policy (BSI TR-02102-2) as an explicit rustls
//!   `CryptoProvider`.
//! * [`Server`] binds one TCP port and serves, over TLS only, the embedded web client, the
//!   WebSocket signalling endpoint `/signal`, `/healthz` and (when enabled, for an address
//!   allowlist) `/metrics`.
//! * The signalling hub of `kammer-core` runs in one task (the driver); connection tasks feed it
//!   events and carry out its outputs. No protocol decision is taken here.

mod http;
pub mod ipc;
mod media;
mod media_link;
mod metrics;
mod signal;
pub mod tls;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ipnet::IpNet;
use kammer_core::room::{Limits, RoomPolicy};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

pub use media::{MediaError, MediaSettings, bind_socket as bind_media_socket};
pub use media_link::{RemoteMedia, run_media_worker};

/// How long a client may take for the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the server needs, validated and built by the binary.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The TLS configuration, from [`tls::server_config`].
    pub tls: Arc<rustls::ServerConfig>,
    /// Limits of the signalling hub.
    pub limits: Limits,
    /// How rooms come to be.
    pub policy: RoomPolicy,
    /// Messages queued per connection before the client counts as too slow.
    pub outbound_queue: usize,
    /// TCP connections served at once.
    pub max_tcp_connections: usize,
    /// `/metrics`: `None` when disabled, else the networks allowed to read it.
    pub metrics_allow: Option<Vec<IpNet>>,
    /// A line for the web client's footer (for example a warning about a development setup).
    pub footer_notice: Option<String>,
    /// The media plane; `None` serves signalling only (`publish` is refused).
    pub media: Option<MediaSettings>,
}

/// Counters of the shell itself (the hub counts signalling).
#[derive(Debug, Default)]
pub(crate) struct ShellCounters {
    pub(crate) tcp_accepted: AtomicU64,
    pub(crate) tcp_refused_busy: AtomicU64,
    pub(crate) tls_handshake_failed: AtomicU64,
    pub(crate) http_requests: AtomicU64,
    pub(crate) ws_upgrades_refused: AtomicU64,
}

/// Failure to start serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The media plane could not be set up.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The configured address.
        address: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// Where the media plane runs.
enum MediaPlane {
    /// Signalling only.
    Off,
    /// On a thread of this process.
    Local(media::MediaSocket),
    /// In the media worker process.
    Remote(RemoteMedia),
}

/// A bound, not yet serving, server.
pub struct Server {
    listener: TcpListener,
    media: MediaPlane,
    settings: Settings,
}

impl Server {
    /// Binds the TCP port and, if configured, the media UDP port.
    pub async fn bind(address: SocketAddr, settings: Settings) -> Result<Self, ServeError> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| ServeError::Bind { address, source })?;
        let media = match &settings.media {
            Some(media) => MediaPlane::Local(media::MediaSocket::bind(media)?),
            None => MediaPlane::Off,
        };
        Ok(Self {
            listener,
            media,
            settings,
        })
    }

    /// A server on a TCP listener bound elsewhere (by the supervisor process), whose media
    /// plane, if any, runs in the media worker process at the other end of `media`.
    /// `settings.media` is not used.
    pub fn from_listener(
        listener: std::net::TcpListener,
        settings: Settings,
        media: Option<RemoteMedia>,
    ) -> std::io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(Self {
            listener: TcpListener::from_std(listener)?,
            media: media.map_or(MediaPlane::Off, MediaPlane::Remote),
            settings,
        })
    }

    /// The bound media address, if the media plane runs in this process.
    pub fn media_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        match &self.media {
            MediaPlane::Local(socket) => Some(socket.local_addr()),
            MediaPlane::Off | MediaPlane::Remote(_) => None,
        }
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes. Fails only if the media thread cannot start.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let Self {
            listener,
            media,
            settings,
        } = self;
        let counters = Arc::new(ShellCounters::default());
        let channel = match media {
            MediaPlane::Off => None,
            plane => Some((plane, media::channel())),
        };
        let media_handle = channel.as_ref().map(|(_, (handle, _))| handle.clone());
        let hub = signal::spawn_driver(
            settings.limits.clone(),
            settings.policy,
            media_handle.clone(),
        );
        match channel {
            Some((MediaPlane::Local(socket), (_, inputs))) => {
                media::spawn(socket, inputs, hub.events.clone())?;
            }
            Some((MediaPlane::Remote(remote), (_, inputs))) => {
                tokio::spawn(media_link::bridge(remote, inputs, hub.events.clone()));
            }
            Some((MediaPlane::Off, _)) | None => {}
        }
        let app = http::router(http::AppState {
            media: media_handle,
            hub,
            counters: Arc::clone(&counters),
            metrics_allow: settings.metrics_allow.clone().map(Arc::new),
            outbound_queue: settings.outbound_queue,
            footer_notice: settings.footer_notice.clone().map(Arc::from),
            max_message_bytes: settings.limits.max_message_bytes,
        });
        let acceptor = TlsAcceptor::from(Arc::clone(&settings.tls));
        let slots = Arc::new(Semaphore::new(settings.max_tcp_connections));
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        // Typically EMFILE: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                counters.tcp_refused_busy.fetch_add(1, Ordering::Relaxed);
                drop(tcp);
                continue;
            };
            counters.tcp_accepted.fetch_add(1, Ordering::Relaxed);
            let acceptor = acceptor.clone();
            let app = app.clone();
            let counters = Arc::clone(&counters);
            tokio::spawn(async move {
                let _slot = slot;
                let _ = tcp.set_nodelay(true);
                let tls =
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(error)) => {
                            counters
                                .tls_handshake_failed
                                .fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            counters
                                .tls_handshake_failed
                                .fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                http::serve_connection(tls, peer, app).await;
            });
        }
        Ok(())
    }
}
