//! The process model (docs/hardening.md): a supervisor that binds the ports and starts, by
//! re-executing this binary, three sandboxed children:
//!
//! * **keys** holds the key manager (TPM) and the state directory, signs TLS handshakes for the
//!   signalling worker and audit records for the supervisor; it has no network port;
//! * **signal** terminates TLS and serves HTTP and the WebSocket signalling (the hub);
//! * **media** runs the SFU on the media UDP port.
//!
//! Each child gets one inherited descriptor, its control socket, on which the supervisor sends
//! a [`ChildSpec`] with the other descriptors it needs (SCM_RIGHTS). The child prepares what
//! needs the filesystem (configuration, TPM context), enters its sandbox (`kammer-hardening`)
//! while it still has one thread, answers [`FromChild::Ready`] with what is in force, and only
//! then starts its threads.

pub(crate) mod keyd;
pub(crate) mod status;
pub(crate) mod supervisor;
pub(crate) mod workers;

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;
use kammer::config::Config;
use kammer_hardening::{Applied, Role};
use kammer_server::ipc;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Where a child's configuration comes from: the same text or demo parameters the supervisor
/// validated, validated again by the child (so that every process holds a [`Config`] that went
/// through validation).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum ConfigSource {
    /// `kammer serve --config FILE`.
    File {
        /// For messages.
        path: PathBuf,
        /// The file's text as the supervisor read it.
        text: String,
    },
    /// `kammer demo`.
    Demo {
        /// The demo's state directory.
        state_dir: PathBuf,
        /// The TCP port asked for.
        port: u16,
        /// The development certificate chain.
        certificate: PathBuf,
        /// The development key.
        private_key: PathBuf,
        /// TOML after the embedded defaults (`--dangerous`).
        extra: String,
    },
}

impl ConfigSource {
    pub(crate) fn load(&self) -> anyhow::Result<Config> {
        match self {
            Self::File { path, text } => Config::from_toml(text, true)
                .map_err(|error| anyhow::anyhow!("{}: {error}", path.display())),
            Self::Demo {
                state_dir,
                port,
                certificate,
                private_key,
                extra,
            } => Config::demo_with(state_dir, *port, certificate, private_key, extra)
                .map_err(|error| anyhow::anyhow!("demo configuration: {error}")),
        }
    }
}

/// How a child confines itself; `None` in a [`ChildSpec`] when `[dangerous] disable_sandbox`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SandboxPlan {
    /// The uid and gid to switch to (only when started as root).
    pub(crate) user: Option<(u32, u32)>,
}

/// The media plane's DTLS key and certificate for one media worker's life.
#[derive(Serialize, Deserialize)]
pub(crate) struct DtlsKeyPair {
    pub(crate) pkcs8: Zeroizing<Vec<u8>>,
    pub(crate) certificate: Vec<u8>,
}

impl std::fmt::Debug for DtlsKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsKeyPair")
            .field("pkcs8", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// What one child is to do. The descriptors come with it, in the order given here.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ChildSpec {
    pub(crate) config: ConfigSource,
    pub(crate) sandbox: Option<SandboxPlan>,
    pub(crate) role: RoleSpec,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RoleSpec {
    /// No descriptors: links from signalling workers come with `NewLink`.
    Keys,
    /// Descriptors: the TCP listener, the key link, then the media link if `media`.
    Signal {
        /// The certificate chain, DER, the server's first.
        chain: Vec<Vec<u8>>,
        /// The TLS key's SubjectPublicKeyInfo (DER) and signature scheme (wire value).
        tls_spki: Vec<u8>,
        tls_scheme: u16,
        /// Lines for the web client's footer.
        notices: Vec<String>,
        media: bool,
    },
    /// Descriptors: the UDP socket, the media link.
    Media { dtls: Option<DtlsKeyPair> },
}

/// From the supervisor, on a child's control socket.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToChild {
    Spec(ChildSpec),
    /// A new link comes with this message: to the signalling worker, to a new media worker; to
    /// the key manager, from a new signalling worker.
    NewLink,
    /// To the key manager: append a signed audit record.
    Audit {
        event: String,
        details: serde_json::Value,
    },
    /// To the key manager: a DTLS key and certificate for a new media worker.
    MediaCertificate,
}

/// From a child, on its control socket.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromChild {
    /// The sandbox is in force (`None` when disabled); the key manager adds its report.
    Ready {
        applied: Option<Applied>,
        keys: Option<Box<status::KeysReport>>,
    },
    /// The audit record's sequence number; `None` when there is no audit key.
    Recorded(Option<u64>),
    MediaCertificate(Option<DtlsKeyPair>),
    /// The request failed.
    Failed(String),
}

/// A started child, as the supervisor sees it.
#[derive(Debug)]
pub(crate) struct Child {
    pub(crate) role: Role,
    pub(crate) process: std::process::Child,
    pub(crate) control: UnixStream,
    pub(crate) applied: Option<Applied>,
}

/// Environment variables a child keeps; everything else is cleared. Not `RUST_BACKTRACE`: a
/// backtrace reads the executable's symbols from a file, which a sandboxed worker may not open,
/// so a panic would end as a seccomp kill and be recorded as a sandbox violation.
const KEPT_ENVIRONMENT: [&str; 1] = ["KAMMER_LOG"];

/// Starts `role` from this binary's own executable with `spec` and `fds`.
pub(crate) fn spawn(role: Role, spec: ChildSpec, fds: &[BorrowedFd<'_>]) -> anyhow::Result<Child> {
    let (control, theirs) = UnixStream::pair().context("socketpair")?;
    // Only this one descriptor survives exec (Rust opens everything else close-on-exec).
    nix::fcntl::fcntl(
        &theirs,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .context("fcntl")?;
    let mut command = Command::new("/proc/self/exe");
    command
        .arg0(format!("kammer-{role}"))
        .args(["__child", role.as_str(), "--control"])
        .arg(theirs.as_raw_fd().to_string())
        .env_clear()
        .stdin(Stdio::null());
    for name in KEPT_ENVIRONMENT {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    // The TPM library writes warnings to stderr unless told otherwise.
    command.env(
        "TSS2_LOG",
        std::env::var_os("TSS2_LOG").unwrap_or_else(|| "all+NONE".into()),
    );
    let process = command
        .spawn()
        .with_context(|| format!("cannot start the {role} process"))?;
    drop(theirs);
    ipc::send_with_fds(&control, &ToChild::Spec(spec), fds)
        .with_context(|| format!("cannot brief the {role} process"))?;
    Ok(Child {
        role,
        process,
        control,
        applied: None,
    })
}

/// `kammer __child ROLE --control FD`: the entry point of every child.
pub(crate) fn child_main(role: &str, control: i32) -> anyhow::Result<()> {
    let role: Role = role
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown role {role}"))?;
    let control = UnixStream::from(ipc::inherited_fd(control).context("no control socket")?);
    let (message, fds) = ipc::recv_with_fds::<ToChild>(&control).context("no brief")?;
    let ToChild::Spec(spec) = message else {
        anyhow::bail!("the first message was not a brief");
    };
    let config = spec.config.load()?;
    crate::init_logging(&config);
    let result = match role {
        Role::Keys => keyd::run(spec, &config, control, fds),
        Role::Signal => workers::signal(spec, &config, control, fds),
        Role::Media => workers::media(spec, &config, control, fds),
        Role::Supervisor => Err(anyhow::anyhow!("the supervisor is not a child")),
    };
    if let Err(error) = &result {
        tracing::error!(role = %role, "{error:#}");
    }
    result
}

/// Enters the sandbox of `role` as planned (or notes that it is disabled) and tells the
/// supervisor, with the key manager's report when there is one: the step every child takes
/// between preparing and starting its threads.
pub(crate) fn enter_sandbox_and_report(
    role: Role,
    plan: Option<&SandboxPlan>,
    read_write: Vec<PathBuf>,
    tcp_connect: Vec<u16>,
    control: &UnixStream,
    keys: Option<status::KeysReport>,
) -> anyhow::Result<()> {
    let applied = match plan {
        None => {
            tracing::warn!(%role, "[dangerous] disable_sandbox: running without a sandbox");
            None
        }
        Some(plan) => {
            let sandbox = kammer_hardening::Sandbox {
                role,
                user: plan.user,
                read_write,
                read_only: Vec::new(),
                tcp_connect,
                private_namespaces: true,
                max_open_files: 65_536,
            };
            let applied = kammer_hardening::enter(&sandbox)
                .with_context(|| format!("cannot enter the {role} sandbox"))?;
            Some(applied)
        }
    };
    let keys = keys.map(Box::new);
    ipc::send(&mut &*control, &FromChild::Ready { applied, keys })?;
    Ok(())
}

/// Takes the descriptors of a brief in order.
pub(crate) struct Descriptors(std::vec::IntoIter<OwnedFd>);

impl Descriptors {
    pub(crate) fn new(fds: Vec<OwnedFd>) -> Self {
        Self(fds.into_iter())
    }

    pub(crate) fn next(&mut self, what: &str) -> anyhow::Result<OwnedFd> {
        self.0
            .next()
            .with_context(|| format!("the brief came without the {what}"))
    }
}

/// The owner of the state directory: the key manager runs as it, so that it can read the keys
/// the ceremony wrote.
pub(crate) fn owner_of(path: &Path) -> anyhow::Result<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    Ok((meta.uid(), meta.gid()))
}
