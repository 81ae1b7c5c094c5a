//! Putting a role's sandbox in force in the calling process.

use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, LandlockStatus, NetPort, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};
use nix::sched::CloneFlags;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::unistd::{Gid, Uid};

use crate::Role;
use crate::policy;

/// The newest Landlock ABI this code asks for; older kernels get what they support, and the
/// report says so.
const LANDLOCK_ABI: ABI = ABI::V7;

/// What a process is to be confined to.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// Whose allowlist.
    pub role: Role,
    /// The uid and gid to switch to; only possible for a process started as root. `None`
    /// keeps the current ids.
    pub user: Option<(u32, u32)>,
    /// Landlock: full access beneath these paths.
    pub read_write: Vec<PathBuf>,
    /// Landlock: read access beneath these paths.
    pub read_only: Vec<PathBuf>,
    /// Landlock: the TCP ports the process may connect to; none when empty. Binding TCP is
    /// never allowed.
    pub tcp_connect: Vec<u16>,
    /// Private mount and IPC namespaces, when the process may create them.
    pub private_namespaces: bool,
    /// `RLIMIT_NOFILE`.
    pub max_open_files: u64,
}

/// The Landlock domain as the kernel took it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LandlockState {
    /// `enforced`, `partial` or `not enforced`.
    pub status: String,
    /// The ABI in use (0 when Landlock is off).
    pub abi: i32,
}

/// What [`enter`] put in force, as the process itself saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    /// The role.
    pub role: Role,
    /// Seccomp filters installed.
    pub seccomp_filters: u32,
    /// Landlock.
    pub landlock: LandlockState,
    /// The namespaces made private (`mnt`, `ipc`).
    pub namespaces: Vec<String>,
    /// The ids the process runs with.
    pub uid: u32,
    /// The group it runs with.
    pub gid: u32,
    /// Every capability set is empty.
    pub capabilities_dropped: bool,
    /// `PR_SET_NO_NEW_PRIVS` is set.
    pub no_new_privs: bool,
    /// `PR_GET_DUMPABLE`.
    pub dumpable: bool,
    /// `RLIMIT_CORE` (hard).
    pub core_limit: u64,
}

/// A step of [`enter`] failed; the process must not go on.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Threads already exist.
    #[error("the process has {0} threads; a sandbox is entered before any thread starts")]
    Threads(usize),
    /// The supervisor cannot be sandboxed by this function.
    #[error("the supervisor role has no sandbox of its own")]
    Supervisor,
    /// A system call failed.
    #[error("{step}: {source}")]
    System {
        /// What was being done.
        step: &'static str,
        /// The error.
        source: nix::Error,
    },
    /// Capabilities could not be dropped.
    #[error("capabilities: {0}")]
    Capabilities(#[from] caps::errors::CapsError),
    /// Landlock refused the ruleset.
    #[error("landlock: {0}")]
    Landlock(#[from] landlock::RulesetError),
    /// A seccomp filter could not be built.
    #[error("seccomp filter: {0}")]
    Filter(#[from] seccompiler::BackendError),
    /// A seccomp filter could not be installed.
    #[error("seccomp: {0}")]
    Seccomp(#[from] seccompiler::Error),
}

fn system(step: &'static str) -> impl FnOnce(nix::Error) -> SandboxError {
    move |source| SandboxError::System { step, source }
}

/// The number of threads of this process.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

/// Puts `sandbox` in force in the calling process. Call it while the process has exactly one
/// thread; every thread started afterwards inherits the Landlock domain and the filters.
pub fn enter(sandbox: &Sandbox) -> Result<Applied, SandboxError> {
    if sandbox.role == Role::Supervisor {
        return Err(SandboxError::Supervisor);
    }
    let count = threads();
    if count != 1 {
        return Err(SandboxError::Threads(count));
    }
    // Built first, while the process may still read what it likes.
    let filters = policy::filters(sandbox.role)?;
    let root = Uid::effective().is_root();

    let mut namespaces = Vec::new();
    if sandbox.private_namespaces && root {
        nix::sched::unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC)
            .map_err(system("unshare"))?;
        namespaces = vec!["mnt".to_owned(), "ipc".to_owned()];
    }

    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(system("RLIMIT_CORE"))?;
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(system("RLIMIT_NOFILE"))?;
    // Never above the hard limit the process was given (raising it needs CAP_SYS_RESOURCE,
    // which containers often withhold even from root).
    let files = sandbox.max_open_files.min(hard);
    setrlimit(Resource::RLIMIT_NOFILE, files, files).map_err(system("RLIMIT_NOFILE"))?;

    // The bounding set needs CAP_SETPCAP: before the switch of ids, which takes it away.
    if root {
        for capability in caps::all() {
            caps::drop(None, caps::CapSet::Bounding, capability)?;
        }
    }
    if let Some((uid, gid)) = sandbox.user {
        let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
        nix::unistd::setgroups(&[]).map_err(system("setgroups"))?;
        nix::unistd::setresgid(gid, gid, gid).map_err(system("setresgid"))?;
        nix::unistd::setresuid(uid, uid, uid).map_err(system("setresuid"))?;
    }
    for set in [
        caps::CapSet::Ambient,
        caps::CapSet::Inheritable,
        caps::CapSet::Effective,
        caps::CapSet::Permitted,
    ] {
        caps::clear(None, set)?;
    }
    nix::sys::prctl::set_dumpable(false).map_err(system("PR_SET_DUMPABLE"))?;
    nix::sys::prctl::set_no_new_privs().map_err(system("PR_SET_NO_NEW_PRIVS"))?;

    let landlock = landlock(sandbox)?;
    // Read back before the filters: reading capabilities takes calls the filters forbid.
    let capabilities_dropped = [
        caps::CapSet::Ambient,
        caps::CapSet::Inheritable,
        caps::CapSet::Effective,
        caps::CapSet::Permitted,
    ]
    .into_iter()
    .all(|set| caps::read(None, set).is_ok_and(|caps| caps.is_empty()));
    let no_new_privs = nix::sys::prctl::get_no_new_privs().unwrap_or(false);
    let dumpable = nix::sys::prctl::get_dumpable().unwrap_or(true);
    let core_limit = getrlimit(Resource::RLIMIT_CORE).map_or(u64::MAX, |(_, hard)| hard);
    let (uid, gid) = (Uid::effective().as_raw(), Gid::effective().as_raw());

    for filter in &filters {
        seccompiler::apply_filter(filter)?;
    }
    Ok(Applied {
        role: sandbox.role,
        seccomp_filters: filters.len() as u32,
        landlock,
        namespaces,
        uid,
        gid,
        capabilities_dropped,
        no_new_privs,
        dumpable,
        core_limit,
    })
}

/// What the supervisor, which stays privileged to start its children, can still give up: core
/// dumps, being dumpable (no ptrace attach, `/proc/PID` readable only by root) and gaining
/// privileges through exec.
pub fn harden_supervisor() -> Result<(), SandboxError> {
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(system("RLIMIT_CORE"))?;
    nix::sys::prctl::set_dumpable(false).map_err(system("PR_SET_DUMPABLE"))?;
    nix::sys::prctl::set_no_new_privs().map_err(system("PR_SET_NO_NEW_PRIVS"))
}

fn landlock(sandbox: &Sandbox) -> Result<LandlockState, SandboxError> {
    let fs = AccessFs::from_all(LANDLOCK_ABI);
    let mut created = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(fs)?
        .handle_access(AccessNet::from_all(LANDLOCK_ABI))?
        .scope(Scope::from_all(LANDLOCK_ABI))?
        .create()?
        .add_rules(path_beneath_rules(&sandbox.read_write, fs))?
        .add_rules(path_beneath_rules(
            &sandbox.read_only,
            AccessFs::from_read(LANDLOCK_ABI),
        ))?;
    for port in &sandbox.tcp_connect {
        created = created.add_rule(NetPort::new(*port, AccessNet::ConnectTcp))?;
    }
    let status = created.restrict_self()?;
    let abi = match status.landlock {
        LandlockStatus::Available {
            effective_abi,
            kernel_abi,
        } => kernel_abi.unwrap_or(effective_abi as i32),
        _ => 0,
    };
    Ok(LandlockState {
        status: match status.ruleset {
            RulesetStatus::FullyEnforced => "enforced",
            RulesetStatus::PartiallyEnforced => "partial",
            RulesetStatus::NotEnforced => "not enforced",
        }
        .to_owned(),
        abi,
    })
}
