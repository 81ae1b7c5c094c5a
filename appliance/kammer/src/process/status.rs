//! The status file the supervisor keeps in `state_dir/run/status.json` for `kammer selfcheck`:
//! which process has which role, what each reported as in force, the TLS policy and the key
//! backend. `selfcheck` does not take it on trust: it checks the processes themselves in
//! `/proc` and the TLS policy on the port.

use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use kammer_hardening::{Applied, Role};
use kammer_keys::KeyManager;
use serde::{Deserialize, Serialize};

/// The file, relative to the state directory.
pub(crate) fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("run").join("status.json")
}

/// What the key manager process reports about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct KeysReport {
    /// `tpm`, `soft` (insecure files) or `file` (a PEM key file, no key manager).
    pub(crate) backend: String,
    /// How the TPM is reached.
    pub(crate) tcti: Option<String>,
    /// Where the TLS key signs: `in-tpm`, `sealed`, `soft` or `file`.
    pub(crate) tls_key: String,
    /// The SHA-256 fingerprint of the TLS key's SubjectPublicKeyInfo.
    pub(crate) tls_fingerprint: String,
    /// The TLS signature scheme.
    pub(crate) tls_scheme: String,
    /// The TLS key's SubjectPublicKeyInfo (DER) and scheme (wire value), for the signalling
    /// worker (not written to the status file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) tls_spki: Vec<u8>,
    pub(crate) tls_scheme_value: u16,
    /// Whether security events are recorded in the signed audit log.
    pub(crate) audit_log: bool,
    /// What the storage secret is sealed to (PCRs, the signed PCR policy's key and PCRs), when
    /// there is a key manager.
    #[serde(default)]
    pub(crate) storage: Option<String>,
}

impl KeysReport {
    pub(crate) fn new(
        manager: Option<&KeyManager>,
        spki: &[u8],
        scheme: rustls::SignatureScheme,
    ) -> Self {
        let status = manager.map(KeyManager::status);
        let (backend, tcti, tls_key) = match &status {
            None => ("file", None, "file".to_owned()),
            Some(status) => match &status.backend {
                kammer_keys::BackendStatus::Tpm { tcti, .. } => (
                    "tpm",
                    Some(tcti.to_string()),
                    status
                        .tls_mode
                        .map_or_else(|| "in-tpm".to_owned(), |mode| mode.to_string()),
                ),
                kammer_keys::BackendStatus::Soft => ("soft", None, "soft".to_owned()),
            },
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, spki);
        Self {
            backend: backend.to_owned(),
            tcti,
            tls_key,
            tls_fingerprint: digest.as_ref().iter().map(|b| format!("{b:02x}")).collect(),
            tls_scheme: format!("{scheme:?}"),
            tls_spki: spki.to_vec(),
            tls_scheme_value: u16::from(scheme),
            audit_log: manager.is_some(),
            storage: status.as_ref().map(|status| status.storage.sealing()),
        }
    }
}

/// One child process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ProcessEntry {
    pub(crate) role: Role,
    pub(crate) pid: i32,
    /// Starts of this role after the first.
    pub(crate) restarts: u32,
    /// What the process reported as in force after entering its sandbox; `None` when the
    /// sandbox is disabled.
    pub(crate) applied: Option<Applied>,
}

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Status {
    pub(crate) version: String,
    pub(crate) supervisor_pid: i32,
    /// The address the TLS port is bound to.
    pub(crate) listen: std::net::SocketAddr,
    /// The media UDP port, if any.
    pub(crate) media: Option<std::net::SocketAddr>,
    /// `[dangerous]` switches that are on.
    pub(crate) dangerous: Vec<String>,
    /// The uid and gid the workers were to switch to (when started as root).
    pub(crate) worker_user: Option<(u32, u32)>,
    /// The uid and gid the key manager was to run as.
    pub(crate) keys_user: Option<(u32, u32)>,
    pub(crate) keys: Option<KeysReport>,
    /// Whether TLS 1.2 is accepted besides 1.3.
    pub(crate) tls12: bool,
    pub(crate) processes: Vec<ProcessEntry>,
    /// Sandbox violations (a worker killed by seccomp) since start.
    pub(crate) violations: u64,
    /// Seccomp filters the supervisor had before it installed its own (a service manager's),
    /// and after: its children inherit the latter.
    pub(crate) supervisor_filters: (u32, u32),
}

impl Status {
    /// Writes the file atomically (mode 0600 in a 0700 directory). The state directory may
    /// belong to the key manager's account: the directory is opened without following a link
    /// and must be the writer's own, and the file is created anew beside the old one, so that
    /// a planted link cannot make this process write elsewhere.
    pub(crate) fn write(&self, state_dir: &Path) -> std::io::Result<()> {
        use nix::fcntl::{OFlag, open, openat, renameat};
        use nix::sys::stat::{Mode, fstat};
        let target = path(state_dir);
        let dir = target.parent().unwrap_or(state_dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let dir = open(
            dir,
            OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
            Mode::empty(),
        )?;
        if fstat(&dir)?.st_uid != nix::unistd::geteuid().as_raw() {
            return Err(std::io::Error::other(
                "the status directory belongs to another account",
            ));
        }
        let temporary = "status.json.new";
        let _ = nix::unistd::unlinkat(&dir, temporary, nix::unistd::UnlinkatFlags::NoRemoveDir);
        let file = openat(
            &dir,
            temporary,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )?;
        let mut file = std::fs::File::from(file);
        file.write_all(&serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        renameat(&dir, temporary, &dir, "status.json")?;
        Ok(())
    }

    pub(crate) fn read(state_dir: &Path) -> anyhow::Result<Self> {
        let path = path(state_dir);
        let text = std::fs::read_to_string(&path).map_err(|error| {
            anyhow::anyhow!(
                "{}: {error} (is the appliance running with this state directory?)",
                path.display()
            )
        })?;
        serde_json::from_str(&text).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
    }
}
