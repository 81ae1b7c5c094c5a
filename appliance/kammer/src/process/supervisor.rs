//! The supervisor: the process `kammer serve` and `kammer demo` start as. It binds the ports,
//! starts the key manager and the two workers, and then only waits: for a signal to stop, or
//! for a child to end. A worker that ends is started again (a seccomp kill is recorded as a
//! security event in the audit log first); the key manager ending ends the appliance, because
//! it is the one process that must never be in doubt.
//!
//! It is single-threaded and blocks SIGCHLD, SIGTERM and SIGINT to take them synchronously.

use std::collections::VecDeque;
use std::net::{TcpListener, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use anyhow::Context;
use kammer::config::{Config, TlsKey};
use kammer_hardening::Role;
use kammer_server::{MediaSettings, ipc};
use nix::sys::signal::{SigSet, Signal};

use super::status::{KeysReport, ProcessEntry, Status};
use super::{Child, ChildSpec, ConfigSource, FromChild, RoleSpec, SandboxPlan, ToChild, spawn};

/// How long a child may take from start to `Ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// More worker restarts than this within [`RESTART_WINDOW`] end the appliance.
const MAX_RESTARTS: usize = 10;
const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// How long children get to end after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Everything the supervisor holds.
struct Supervisor {
    source: ConfigSource,
    config: Config,
    listener: TcpListener,
    udp: Option<UdpSocket>,
    keys_plan: Option<SandboxPlan>,
    worker_plan: Option<SandboxPlan>,
    notices: Vec<String>,
    keys: Option<Child>,
    keys_report: Option<KeysReport>,
    signal: Option<Child>,
    media: Option<Child>,
    restarts: VecDeque<Instant>,
    signal_restarts: u32,
    media_restarts: u32,
    violations: u64,
    supervisor_filters: (u32, u32),
}

/// Runs the appliance until SIGTERM or SIGINT. `demo_ca` is printed for the demo.
pub(crate) fn run(
    source: ConfigSource,
    config: Config,
    demo_ca: Option<PathBuf>,
) -> anyhow::Result<()> {
    crate::init_logging(&config);
    ipc::close_inherited_on_exec().context("cannot list open descriptors")?;
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT] {
        signals.add(signal);
    }
    signals.thread_block().context("cannot block signals")?;

    let listener = TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let udp = config
        .media
        .as_ref()
        .map(|media| kammer_server::bind_media_socket(&media_settings(media)))
        .transpose()?;
    let (keys_plan, worker_plan) = plans(&config, demo_ca.is_some())?;
    let own_filters = || {
        kammer_hardening::inspect(std::process::id() as i32)
            .map_or(0, |facts| facts.seccomp_filters)
    };
    let inherited_filters = own_filters();
    if !config.dangerous.disable_sandbox {
        kammer_hardening::harden_supervisor().context("cannot harden the supervisor")?;
        // Everything the supervisor will do is known from here on: start children, wait,
        // signal them, write the status file. Its filter stays under every child's.
        kammer_hardening::install_filters(Role::Supervisor)
            .context("cannot install the supervisor's seccomp filter")?;
    }
    let supervisor_filters = (inherited_filters, own_filters());
    let mut notices = Vec::new();
    if demo_ca.is_some() {
        notices.push("Demo mode: development certificate, not for classified use.".to_owned());
    }
    for switch in config.dangerous.enabled() {
        tracing::warn!("{switch} is on: the appliance runs without its protections");
        notices.push(format!("Unsafe setting: {switch}."));
    }
    let mut supervisor = Supervisor {
        source,
        config,
        listener,
        udp,
        keys_plan,
        worker_plan,
        notices,
        keys: None,
        keys_report: None,
        signal: None,
        media: None,
        restarts: VecDeque::new(),
        signal_restarts: 0,
        media_restarts: 0,
        violations: 0,
        supervisor_filters,
    };
    let started = supervisor
        .start_keys()
        .and_then(|()| supervisor.start_workers());
    if let Err(error) = started {
        supervisor.stop();
        return Err(error);
    }
    supervisor.write_status();
    let address = supervisor.listener.local_addr()?;
    let media = supervisor
        .udp
        .as_ref()
        .map(UdpSocket::local_addr)
        .transpose()?;
    tracing::info!(%address, ?media, "serving");
    if let Some(ca) = &demo_ca {
        print_demo_banner(address, media, ca);
    }
    let result = supervisor.wait(&signals);
    supervisor.stop();
    tracing::info!("stopped");
    result
}

fn media_settings(media: &kammer::config::MediaConfig) -> MediaSettings {
    MediaSettings {
        listen: media.listen,
        announce: media.announce.clone(),
        max_participants: media.max_participants,
        certificate: None,
    }
}

/// The sandbox plans of the key manager and of the workers: `None` when disabled. Started as
/// root, the workers switch to `sandbox.user` and the key manager to the owner of the state
/// directory (who ran the key ceremony); otherwise every process keeps the caller's ids.
fn plans(
    config: &Config,
    demo: bool,
) -> anyhow::Result<(Option<SandboxPlan>, Option<SandboxPlan>)> {
    if config.dangerous.disable_sandbox {
        return Ok((None, None));
    }
    if !nix::unistd::geteuid().is_root() {
        return Ok((
            Some(SandboxPlan { user: None }),
            Some(SandboxPlan { user: None }),
        ));
    }
    let lookup = |name: &str| {
        nix::unistd::User::from_name(name)
            .with_context(|| format!("cannot look up the account {name}"))
    };
    let user = match &config.sandbox_user {
        Some(name) => lookup(name)?.with_context(|| {
            format!("sandbox.user: there is no account \"{name}\" (create it with `useradd --system --no-create-home --shell /usr/sbin/nologin {name}`)")
        })?,
        None => match lookup("kammer")? {
            Some(user) => user,
            None if demo => lookup("nobody")?.context("there is neither a kammer nor a nobody account")?,
            None => anyhow::bail!(
                "the workers run as the account \"kammer\", which does not exist: create it with `useradd --system --no-create-home --shell /usr/sbin/nologin kammer`, or name another in sandbox.user"
            ),
        },
    };
    if user.uid.is_root() {
        anyhow::bail!("sandbox.user must not be root");
    }
    let keys = super::owner_of(&config.state_dir)?;
    Ok((
        Some(SandboxPlan { user: Some(keys) }),
        Some(SandboxPlan {
            user: Some((user.uid.as_raw(), user.gid.as_raw())),
        }),
    ))
}

impl Supervisor {
    fn start_keys(&mut self) -> anyhow::Result<()> {
        let spec = ChildSpec {
            config: self.source.clone(),
            sandbox: self.keys_plan.clone(),
            role: RoleSpec::Keys,
        };
        // The key manager starts with no client; each signalling worker gets a link later.
        let mut child = spawn(Role::Keys, spec, &[])?;
        let report = await_ready(&mut child)?.context("the key manager sent no report")?;
        if report.backend == "soft" {
            tracing::warn!("keys: the soft backend keeps keys in files on disk; development only");
            self.notices
                .push("Development keys (soft backend): not for classified use.".to_owned());
        }
        self.keys_report = Some(report);
        self.keys = Some(child);
        Ok(())
    }

    /// Starts the media worker (if configured) and the signalling worker.
    fn start_workers(&mut self) -> anyhow::Result<()> {
        let media_link = self.start_media()?;
        self.start_signal(media_link)
    }

    /// Starts a media worker; returns the signalling worker's end of its link.
    fn start_media(&mut self) -> anyhow::Result<Option<UnixStream>> {
        let Some(udp) = &self.udp else {
            return Ok(None);
        };
        let dtls = match (&self.config.tls_key, self.keys.as_mut()) {
            (TlsKey::KeyManager, Some(keys)) => match request(keys, &ToChild::MediaCertificate)? {
                FromChild::MediaCertificate(pair) => pair,
                FromChild::Failed(reason) => {
                    anyhow::bail!("no media certificate: {reason}")
                }
                other => anyhow::bail!("the key manager answered {other:?}"),
            },
            _ => None,
        };
        let (ours, theirs) = UnixStream::pair()?;
        let spec = ChildSpec {
            config: self.source.clone(),
            sandbox: self.worker_plan.clone(),
            role: RoleSpec::Media { dtls },
        };
        let mut child = spawn(Role::Media, spec, &[udp.as_fd(), theirs.as_fd()])?;
        drop(theirs);
        await_ready(&mut child)?;
        self.media = Some(child);
        Ok(Some(ours))
    }

    fn start_signal(&mut self, media_link: Option<UnixStream>) -> anyhow::Result<()> {
        let report = self
            .keys_report
            .as_ref()
            .context("the key manager is not running")?;
        let keys = self
            .keys
            .as_ref()
            .context("the key manager is not running")?;
        // A fresh link to the key manager for this worker.
        let (ours, theirs) = UnixStream::pair()?;
        ipc::send_with_fds(&keys.control, &ToChild::NewLink, &[ours.as_fd()])?;
        drop(ours);
        let chain: Vec<Vec<u8>> = kammer_server::tls::load_chain(&self.config.certificate)?
            .into_iter()
            .map(|der| der.as_ref().to_vec())
            .collect();
        let certified_key = chain
            .first()
            .and_then(|der| x509_parser::parse_x509_certificate(der).ok())
            .map(|(_, certificate)| certificate.public_key().raw.to_vec());
        if certified_key.as_deref() != Some(report.tls_spki.as_slice()) {
            let hint = match &self.config.tls_key {
                TlsKey::KeyManager => {
                    "the key manager's TLS key (issue one for `kammer keys export-public`)"
                        .to_owned()
                }
                TlsKey::File(key) => format!("the key in {}", key.display()),
            };
            anyhow::bail!(
                "{}: the certificate is not for {hint}",
                self.config.certificate.display()
            );
        }
        let spec = ChildSpec {
            config: self.source.clone(),
            sandbox: self.worker_plan.clone(),
            role: RoleSpec::Signal {
                chain,
                tls_spki: report.tls_spki.clone(),
                tls_scheme: report.tls_scheme_value,
                notices: self.notices.clone(),
                media: media_link.is_some(),
            },
        };
        let mut fds = vec![self.listener.as_fd(), theirs.as_fd()];
        if let Some(link) = &media_link {
            fds.push(link.as_fd());
        }
        let mut child = spawn(Role::Signal, spec, &fds)?;
        drop(theirs);
        drop(media_link);
        await_ready(&mut child)?;
        self.signal = Some(child);
        Ok(())
    }

    /// Waits for signals until told to stop or the key manager ends.
    fn wait(&mut self, signals: &SigSet) -> anyhow::Result<()> {
        loop {
            match signals.wait().context("sigwait")? {
                Signal::SIGTERM | Signal::SIGINT => return Ok(()),
                Signal::SIGCHLD => self.reap()?,
                _ => {}
            }
        }
    }

    /// Handles every child that ended.
    fn reap(&mut self) -> anyhow::Result<()> {
        let keys = ended(&mut self.keys);
        let signal = ended(&mut self.signal);
        let media = ended(&mut self.media);
        if let Some((pid, status)) = keys {
            anyhow::bail!("the key manager process ({pid}) ended ({status}); stopping");
        }
        for (role, ended) in [(Role::Signal, &signal), (Role::Media, &media)] {
            if let Some((pid, status)) = ended {
                self.report_exit(role, *pid, *status);
            }
        }
        if signal.is_some() {
            // Its media worker follows it (their link is gone); both start again together.
            if let Some(mut media) = self.media.take() {
                let _ = media.control.shutdown(std::net::Shutdown::Both);
                let _ = media.process.kill();
                let _ = media.process.wait();
            }
            self.signal_restarts += 1;
            self.media_restarts += u32::from(self.udp.is_some());
            self.retry("the workers", Self::start_workers)?;
        } else if media.is_some() {
            self.media_restarts += 1;
            self.retry("the media worker", |supervisor| {
                let link = supervisor.start_media()?;
                if let (Some(signal), Some(link)) = (&supervisor.signal, link) {
                    // If the signalling worker just ended, its SIGCHLD follows and both restart.
                    let _ = ipc::send_with_fds(&signal.control, &ToChild::NewLink, &[link.as_fd()]);
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Starts again what ended, under the restart limit: a start that fails is retried until
    /// the limit ends the appliance.
    fn retry(
        &mut self,
        what: &str,
        mut start: impl FnMut(&mut Self) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        loop {
            self.throttle()?;
            match start(self) {
                Ok(()) => {
                    self.write_status();
                    return Ok(());
                }
                Err(error) => tracing::error!("cannot restart {what}: {error:#}"),
            }
        }
    }

    /// Logs a worker's end; a seccomp kill is a security event for the audit log.
    fn report_exit(&mut self, role: Role, pid: u32, status: ExitStatus) {
        let killed_by_seccomp = status.signal() == Some(Signal::SIGSYS as i32);
        let (event, details) = if killed_by_seccomp {
            self.violations += 1;
            tracing::error!(%role, pid, "sandbox violation: the worker made a forbidden system call and was killed; restarting it");
            (
                "sandbox_violation",
                serde_json::json!({
                    "role": role.as_str(),
                    "pid": pid,
                    "signal": "SIGSYS",
                    "action": "killed by seccomp; restarted",
                }),
            )
        } else {
            tracing::error!(%role, pid, %status, "a worker ended; restarting it");
            (
                "worker_exit",
                serde_json::json!({
                    "role": role.as_str(),
                    "pid": pid,
                    "status": status.to_string(),
                }),
            )
        };
        let Some(keys) = self.keys.as_mut() else {
            return;
        };
        let message = ToChild::Audit {
            event: event.to_owned(),
            details,
        };
        match request(keys, &message) {
            Ok(FromChild::Recorded(Some(seq))) => tracing::info!(seq, event, "recorded"),
            Ok(FromChild::Recorded(None)) => {
                tracing::warn!(
                    event,
                    "no audit key ([keys] is not configured): logged only"
                );
            }
            Ok(other) => tracing::error!(event, ?other, "the audit record failed"),
            Err(error) => tracing::error!(event, "the audit record failed: {error:#}"),
        }
    }

    fn throttle(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        while self
            .restarts
            .front()
            .is_some_and(|at| now.duration_since(*at) > RESTART_WINDOW)
        {
            self.restarts.pop_front();
        }
        if self.restarts.len() >= MAX_RESTARTS {
            anyhow::bail!(
                "workers were restarted {MAX_RESTARTS} times within {} s; stopping",
                RESTART_WINDOW.as_secs()
            );
        }
        self.restarts.push_back(now);
        // A moment, so that a worker dying at once does not spin.
        std::thread::sleep(Duration::from_millis(200));
        Ok(())
    }

    fn write_status(&self) {
        let entry = |child: &Option<Child>, restarts: u32| {
            child.as_ref().map(|child| ProcessEntry {
                role: child.role,
                pid: child.process.id() as i32,
                restarts,
                applied: child.applied.clone(),
            })
        };
        let status = Status {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            supervisor_pid: std::process::id() as i32,
            listen: self.listener.local_addr().unwrap_or(self.config.listen),
            media: self.udp.as_ref().and_then(|udp| udp.local_addr().ok()),
            dangerous: self
                .config
                .dangerous
                .enabled()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            worker_user: self.worker_plan.as_ref().and_then(|plan| plan.user),
            keys_user: self.keys_plan.as_ref().and_then(|plan| plan.user),
            keys: self.keys_report.clone().map(|mut report| {
                report.tls_spki.clear();
                report
            }),
            tls12: self.config.tls12 == kammer_server::tls::Tls12::Allowed,
            processes: [
                entry(&self.keys, 0),
                entry(&self.signal, self.signal_restarts),
                entry(&self.media, self.media_restarts),
            ]
            .into_iter()
            .flatten()
            .collect(),
            violations: self.violations,
            supervisor_filters: self.supervisor_filters,
        };
        if let Err(error) = status.write(&self.config.state_dir) {
            tracing::error!(%error, "cannot write the status file for `kammer selfcheck`");
        }
    }

    /// SIGTERM to every child, then SIGKILL to those still there after the grace period.
    fn stop(&mut self) {
        let mut children: Vec<Child> = [self.signal.take(), self.media.take(), self.keys.take()]
            .into_iter()
            .flatten()
            .collect();
        for child in &children {
            // The end of its control socket ends a child by itself, even where a signal is not
            // permitted (a root supervisor without CAP_KILL and a child of another uid).
            let _ = child.control.shutdown(std::net::Shutdown::Both);
            let pid = nix::unistd::Pid::from_raw(child.process.id() as i32);
            let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        for child in &mut children {
            while Instant::now() < deadline {
                if !matches!(child.process.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.process.kill();
            let _ = child.process.wait();
        }
    }
}

/// Takes a child out of `slot` if it has ended.
fn ended(slot: &mut Option<Child>) -> Option<(u32, ExitStatus)> {
    let child = slot.as_mut()?;
    match child.process.try_wait() {
        Ok(Some(status)) => {
            let pid = child.process.id();
            *slot = None;
            Some((pid, status))
        }
        _ => None,
    }
}

/// A request to a child and its answer.
fn request(child: &mut Child, message: &ToChild) -> anyhow::Result<FromChild> {
    child.control.set_read_timeout(Some(READY_TIMEOUT))?;
    ipc::send(&mut &child.control, message)?;
    Ok(ipc::recv(&mut &child.control)?)
}

/// Waits for a new child's `Ready`; returns the key manager's report if it sent one.
fn await_ready(child: &mut Child) -> anyhow::Result<Option<KeysReport>> {
    child.control.set_read_timeout(Some(READY_TIMEOUT))?;
    let role = child.role;
    match ipc::recv::<FromChild>(&mut &child.control) {
        Ok(FromChild::Ready { applied, keys }) => {
            tracing::info!(%role, pid = child.process.id(), sandbox = applied.is_some(), "started");
            child.applied = applied;
            Ok(keys.map(|keys| *keys))
        }
        Ok(other) => anyhow::bail!("the {role} process answered {other:?}"),
        Err(error) => {
            let _ = child.control.shutdown(std::net::Shutdown::Both);
            // Give it a moment to finish writing why it failed.
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline && matches!(child.process.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.process.kill();
            let status = child.process.wait().ok();
            anyhow::bail!(
                "the {role} process did not start ({}); see its messages above",
                status.map_or_else(|| error.to_string(), |status| status.to_string())
            )
        }
    }
}

fn print_demo_banner(
    address: std::net::SocketAddr,
    media: Option<std::net::SocketAddr>,
    ca: &std::path::Path,
) {
    let host = match address.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    println!("Kammer demo is running.");
    println!("  URL:     https://{host}:{}/", address.port());
    println!("  CA file: {}", ca.display());
    if let Some(media) = media {
        println!("  Media:   udp {media}");
    }
    println!("Trust the CA file in your browser (or accept the warning once). Stop with Ctrl+C.");
}
