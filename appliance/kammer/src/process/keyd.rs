//! The key manager process: the only process with the TPM, the key files and the audit log.
//!
//! It opens everything it needs before it enters its sandbox (the TPM library loads its TCTI
//! module when the context is made), then serves, on one thread, a `poll(2)` loop over its
//! control socket (the supervisor: audit records, DTLS certificates, new links) and the links
//! of signalling workers (TLS handshake signatures). It signs; it never hands out a key.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use kammer::audit::AuditLog;
use kammer::config::{Config, TlsKey};
use kammer_hardening::Role;
use kammer_keys::{Backend, KeyConfig, KeyManager, Tcti};
use kammer_server::ipc::{self, KeyReply, KeyRequest};
use kammer_server::tls;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use rustls::SignatureScheme;
use rustls::sign::SigningKey;

use super::status::KeysReport;
use super::{ChildSpec, Descriptors, DtlsKeyPair, FromChild, ToChild, enter_sandbox_and_report};

struct Keys {
    tls: Arc<dyn SigningKey>,
    /// Whether TLS 1.2 is accepted (then ServerKeyExchange messages are signed too).
    tls12: bool,
    manager: Option<Arc<KeyManager>>,
    audit: Option<AuditLog>,
}

pub(crate) fn run(
    spec: ChildSpec,
    config: &Config,
    control: UnixStream,
    fds: Vec<OwnedFd>,
) -> anyhow::Result<()> {
    // Links from signalling workers come later, each with a `NewLink`.
    drop(fds);
    let (manager, tls): (Option<Arc<KeyManager>>, Arc<dyn SigningKey>) = match &config.tls_key {
        TlsKey::File(path) => (None, tls::load_signing_key(path)?),
        TlsKey::KeyManager => {
            let backend = config
                .keys
                .clone()
                .context("[keys] is validated with the TLS key")?;
            // Before the sandbox: besides the TPM context, `open` reads the signed PCR policy's
            // public key and signature file (outside the state directory) and keeps them.
            let key_config =
                KeyConfig::new(&config.state_dir, backend).with_tls_mode(config.tls_key_mode);
            let manager = as_owner(&spec, || crate::keys::open(&key_config))??;
            let key = Arc::new(kammer_keys::tls::TlsSigningKey::new(Arc::clone(&manager)));
            (Some(manager), key)
        }
    };
    let scheme = tls::ecdsa_scheme(&*tls).context("the TLS key is not ECDSA on P-256/P-384")?;
    let spki = tls
        .public_key()
        .context("the TLS key has no public key")?
        .as_ref()
        .to_vec();
    let audit = match &manager {
        Some(_) => Some(as_owner(&spec, || {
            AuditLog::in_state_dir(&config.state_dir)
        })??),
        None => None,
    };
    let report = KeysReport::new(manager.as_deref(), &spki, scheme);
    let mut read_write: Vec<PathBuf> = vec![config.state_dir.clone()];
    let mut tcp_connect = Vec::new();
    match &config.keys {
        Some(Backend::Tpm {
            tcti: Tcti::Device(path),
            ..
        }) => read_write.push(path.clone()),
        Some(Backend::Tpm {
            tcti: Tcti::Swtpm { port, .. },
            ..
        }) => tcp_connect.push(*port),
        Some(Backend::Soft) | None => {}
    }
    enter_sandbox_and_report(
        Role::Keys,
        spec.sandbox.as_ref(),
        read_write,
        tcp_connect,
        &control,
        Some(report),
    )?;
    let keys = Keys {
        tls,
        tls12: config.tls12 == kammer_server::tls::Tls12::Allowed,
        manager,
        audit,
    };
    serve(&keys, &control, Vec::new())
}

/// Runs `open` with the effective ids of the account the key manager is about to become (the
/// owner of the state directory), when it is started as root to switch to another one: the key
/// files are that account's (mode 0700), and a root without CAP_DAC_OVERRIDE (as under the
/// systemd unit's bounding set) may not read them. The effective ids return to root afterwards
/// for the sandbox's own switch; files created meanwhile belong to the account.
fn as_owner<T>(spec: &ChildSpec, open: impl FnOnce() -> T) -> anyhow::Result<T> {
    use nix::unistd::{Gid, Uid, setegid, seteuid};
    let owner = spec.sandbox.as_ref().and_then(|plan| plan.user);
    let Some((uid, gid)) = owner.filter(|&(uid, _)| Uid::effective().is_root() && uid != 0) else {
        return Ok(open());
    };
    setegid(Gid::from_raw(gid)).context("cannot take the state directory owner's group")?;
    if let Err(error) = seteuid(Uid::from_raw(uid)) {
        let _ = setegid(Gid::from_raw(0));
        return Err(error).context("cannot take the state directory owner's uid");
    }
    let result = open();
    seteuid(Uid::from_raw(0)).context("cannot return to root after opening the keys")?;
    setegid(Gid::from_raw(0)).context("cannot return to root's group after opening the keys")?;
    Ok(result)
}

/// The loop: until the supervisor closes the control socket.
fn serve(keys: &Keys, control: &UnixStream, mut clients: Vec<UnixStream>) -> anyhow::Result<()> {
    loop {
        let (control_ready, ready): (bool, Vec<bool>) = {
            let mut fds = vec![PollFd::new(control.as_fd(), PollFlags::POLLIN)];
            fds.extend(
                clients
                    .iter()
                    .map(|client| PollFd::new(client.as_fd(), PollFlags::POLLIN)),
            );
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(error) => return Err(error).context("poll"),
            }
            let ready: Vec<bool> = fds
                .iter()
                .map(|fd| fd.revents().is_some_and(|events| !events.is_empty()))
                .collect();
            (ready[0], ready[1..].to_vec())
        };
        if control_ready {
            match ipc::recv_with_fds::<ToChild>(control) {
                Ok((message, fds)) => {
                    if let Some(client) = handle_control(keys, control, message, fds)? {
                        clients.push(client);
                    }
                }
                Err(ipc::IpcError::Closed) => return Ok(()),
                Err(error) => return Err(error).context("control socket"),
            }
        }
        let mut gone = Vec::new();
        // Links added above were not polled yet.
        for (index, client) in clients.iter().enumerate().take(ready.len()) {
            if ready[index] && serve_client(keys, client).is_err() {
                gone.push(index);
            }
        }
        for index in gone.into_iter().rev() {
            clients.swap_remove(index);
        }
    }
}

fn handle_control(
    keys: &Keys,
    control: &UnixStream,
    message: ToChild,
    fds: Vec<OwnedFd>,
) -> anyhow::Result<Option<UnixStream>> {
    let mut reply_to = control;
    match message {
        ToChild::NewLink => {
            let link = UnixStream::from(Descriptors::new(fds).next("link")?);
            link.set_read_timeout(Some(CLIENT_READ_TIMEOUT))?;
            Ok(Some(link))
        }
        ToChild::Audit { event, details } => {
            let reply = match record(keys, &event, details) {
                Ok(seq) => FromChild::Recorded(seq),
                Err(error) => FromChild::Failed(format!("{error:#}")),
            };
            ipc::send(&mut reply_to, &reply)?;
            Ok(None)
        }
        ToChild::MediaCertificate => {
            let reply = match &keys.manager {
                Some(manager) => match crate::keys::media_certificate(manager) {
                    Ok(pair) => FromChild::MediaCertificate(Some(pair)),
                    Err(error) => FromChild::Failed(format!("{error:#}")),
                },
                None => FromChild::MediaCertificate(None),
            };
            ipc::send(&mut reply_to, &reply)?;
            Ok(None)
        }
        ToChild::Spec(_) => anyhow::bail!("a second brief"),
    }
}

/// Appends a signed audit record; `None` when no key manager is configured.
fn record(keys: &Keys, event: &str, details: serde_json::Value) -> anyhow::Result<Option<u64>> {
    let (Some(manager), Some(log)) = (&keys.manager, &keys.audit) else {
        return Ok(None);
    };
    let key = manager
        .public_key(kammer_keys::Role::Audit)
        .fingerprint()
        .to_string();
    let signer = |message: &[u8]| {
        manager
            .sign(kammer_keys::Role::Audit, message)
            .map_err(|error| error.to_string())
    };
    Ok(Some(log.append(event, details, &key, &signer)?))
}

/// The start of every message a TLS 1.3 server signs (RFC 8446, 4.4.3): 64 spaces and the
/// context string. With TLS 1.2 refused, nothing else is signed.
const TLS13_SERVER_SIGNATURE_PREFIX: &[u8] =
    b"                                                                TLS 1.3, server CertificateVerify\0";

/// How long a signalling worker may take to send the rest of a request once it began one;
/// afterwards its link is dropped (it cannot hold the key manager's only thread).
const CLIENT_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// One request of a signalling worker. An error ends that link.
fn serve_client(keys: &Keys, client: &UnixStream) -> Result<(), ipc::IpcError> {
    let mut stream = client;
    let KeyRequest::SignTls {
        id,
        scheme,
        message,
    } = ipc::recv(&mut stream)?;
    let scheme = SignatureScheme::from(scheme);
    let reply = if !keys.tls12 && !message.starts_with(TLS13_SERVER_SIGNATURE_PREFIX) {
        KeyReply::Refused {
            id,
            reason: "not a TLS 1.3 server CertificateVerify message".to_owned(),
        }
    } else {
        match keys.tls.choose_scheme(&[scheme]) {
            Some(signer) => match signer.sign(&message) {
                Ok(signature) => KeyReply::Signature { id, signature },
                Err(error) => KeyReply::Refused {
                    id,
                    reason: error.to_string(),
                },
            },
            None => KeyReply::Refused {
                id,
                reason: format!("the TLS key does not sign with {scheme:?}"),
            },
        }
    };
    ipc::send(&mut stream, &reply)
}

impl DtlsKeyPair {
    /// The media plane's certificate as the DTLS endpoint takes it.
    pub(crate) fn certificate(&self) -> anyhow::Result<kammer_core::media::dtls::DtlsCertificate> {
        kammer_core::media::dtls::DtlsCertificate::from_pkcs8_and_der(
            &self.pkcs8,
            self.certificate.clone(),
        )
        .map_err(|error| anyhow::anyhow!("the media DTLS certificate is unusable: {error}"))
    }
}
