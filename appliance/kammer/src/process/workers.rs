//! The two network workers: `signal` (TLS, HTTP, WebSocket signalling) and `media` (the SFU).
//! Neither holds a key, opens a file or creates a socket after its sandbox is in force: every
//! descriptor they use came from the supervisor.

use std::net::{TcpListener, UdpSocket};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use anyhow::Context;
use kammer::config::Config;
use kammer_hardening::Role;
use kammer_server::ipc;
use kammer_server::tls::RemoteTlsKey;
use kammer_server::{MediaSettings, RemoteMedia, Server, Settings};
use tokio::sync::mpsc;

use super::{ChildSpec, Descriptors, RoleSpec, ToChild, enter_sandbox_and_report};

pub(crate) fn signal(
    spec: ChildSpec,
    config: &Config,
    control: UnixStream,
    fds: Vec<OwnedFd>,
) -> anyhow::Result<()> {
    let RoleSpec::Signal {
        chain,
        tls_spki,
        tls_scheme,
        notices,
        media,
    } = spec.role
    else {
        anyhow::bail!("a signalling worker got another role's brief");
    };
    let mut fds = Descriptors::new(fds);
    let listener = TcpListener::from(fds.next("TCP listener")?);
    let keys = UnixStream::from(fds.next("key link")?);
    let media_link = if media {
        Some(UnixStream::from(fds.next("media link")?))
    } else {
        None
    };
    let key = RemoteTlsKey::new(keys, tls_spki, tls_scheme).context("key link")?;
    let chain = chain
        .into_iter()
        .map(rustls::pki_types::CertificateDer::from)
        .collect();
    let certified = rustls::sign::CertifiedKey::new(chain, Arc::new(key));
    certified
        .keys_match()
        .context("the certificate is not for the key manager's TLS key")?;
    let tls = kammer_server::tls::server_config_with_key(certified, config.tls12)?;
    let settings = Settings {
        tls,
        limits: config.limits.clone(),
        policy: config.rooms,
        outbound_queue: config.outbound_queue,
        max_tcp_connections: config.max_tcp_connections,
        metrics_allow: config.metrics_allow.clone(),
        footer_notice: (!notices.is_empty()).then(|| notices.join(" ")),
        media: None,
    };

    enter_sandbox_and_report(
        Role::Signal,
        spec.sandbox.as_ref(),
        Vec::new(),
        Vec::new(),
        &control,
        None,
    )?;

    let (relinks_tx, relinks) = mpsc::channel(4);
    std::thread::Builder::new()
        .name("kammer-control".to_owned())
        .spawn(move || {
            // New media links; when the supervisor goes, so does this process.
            loop {
                match ipc::recv_with_fds::<ToChild>(&control) {
                    Ok((ToChild::NewLink, fds)) => {
                        if let Some(fd) = fds.into_iter().next() {
                            let _ = relinks_tx.blocking_send(UnixStream::from(fd));
                        }
                    }
                    Ok(_) => tracing::warn!("unexpected control message"),
                    Err(_) => std::process::exit(0),
                }
            }
        })
        .context("cannot start the control thread")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("kammer-net")
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let media = media_link.map(|link| RemoteMedia { link, relinks });
        let server = Server::from_listener(listener, settings, media)?;
        server.serve(std::future::pending()).await?;
        anyhow::Ok(())
    })
}

pub(crate) fn media(
    spec: ChildSpec,
    config: &Config,
    control: UnixStream,
    fds: Vec<OwnedFd>,
) -> anyhow::Result<()> {
    let RoleSpec::Media { dtls } = spec.role else {
        anyhow::bail!("a media worker got another role's brief");
    };
    let media = config
        .media
        .as_ref()
        .context("a media worker without [media]")?;
    let mut fds = Descriptors::new(fds);
    let socket = UdpSocket::from(fds.next("UDP socket")?);
    let link = UnixStream::from(fds.next("media link")?);
    let certificate = dtls.as_ref().map(|pair| pair.certificate()).transpose()?;
    drop(dtls);
    let settings = MediaSettings {
        listen: media.listen,
        announce: media.announce.clone(),
        max_participants: media.max_participants,
        certificate,
    };

    enter_sandbox_and_report(
        Role::Media,
        spec.sandbox.as_ref(),
        Vec::new(),
        Vec::new(),
        &control,
        None,
    )?;
    std::thread::Builder::new()
        .name("kammer-control".to_owned())
        .spawn(move || {
            // Nothing is sent after the brief; the end of the socket is the supervisor's end.
            let _ = ipc::recv_with_fds::<ToChild>(&control);
            std::process::exit(0);
        })
        .context("cannot start the control thread")?;
    kammer_server::run_media_worker(socket, &settings, link)?;
    Ok(())
}
