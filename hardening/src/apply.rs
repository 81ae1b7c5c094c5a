//! Putting a role's sandbox in force in the calling process.

use std::fmt;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, LandlockStatus, NetPort,
    PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr, RulesetStatus,
    Scope,
};
use nix::sched::CloneFlags;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::unistd::{Gid, Uid};

use crate::Role;
use crate::policy;

/// The Landlock ABI whose rights this code handles: the newest one it was tested against
/// (Linux 6.15+: filesystem incl. `IOCTL_DEV`, TCP bind/connect, scoping of abstract Unix
/// sockets and signals). Older kernels get what they support, reported as `partial`. Rights
/// of newer ABIs are taken on only after a review: ABI 9's pathname-socket right would change
/// nothing here, and ABI 10's UDP rights would stop the media worker from answering peers on
/// any port.
const LANDLOCK_ABI: ABI = ABI::V7;

/// `RLIMIT_NPROC` for a process that switches to a dedicated account (see [`enter`]).
pub const TASKS_PER_ACCOUNT: u64 = 1024;

/// What a process is to be confined to.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// Whose allowlist.
    pub role: Role,
    /// The uid and gid to switch to: only a process started as root can switch (to any ids);
    /// any other process may only name its current ids. `None` keeps the current ids.
    pub user: Option<(u32, u32)>,
    /// Landlock: full access beneath these paths (a path may be a file, such as a device).
    pub read_write: Vec<PathBuf>,
    /// Landlock: read (and execute) access beneath these paths.
    pub read_only: Vec<PathBuf>,
    /// Landlock: the TCP ports the process may connect to; none when empty. Binding TCP is
    /// never allowed.
    pub tcp_connect: Vec<u16>,
    /// Private mount and IPC namespaces, when the process may create them.
    pub private_namespaces: bool,
    /// `RLIMIT_NOFILE`, capped by the hard limit the process was given.
    pub max_open_files: u64,
}

/// How much of the requested Landlock ruleset the kernel enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LandlockEnforcement {
    /// Every requested right is handled.
    #[serde(rename = "enforced")]
    Enforced,
    /// The kernel's Landlock is older than ABI 7: some rights are not handled.
    #[serde(rename = "partial")]
    Partial,
    /// No Landlock (not built in, or not enabled at boot).
    #[serde(rename = "not enforced")]
    NotEnforced,
}

impl fmt::Display for LandlockEnforcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Enforced => "enforced",
            Self::Partial => "partial",
            Self::NotEnforced => "not enforced",
        })
    }
}

/// The Landlock domain as the kernel took it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LandlockState {
    /// Enforced, partial or not.
    pub status: LandlockEnforcement,
    /// The kernel's Landlock ABI (0: none).
    pub abi: i32,
}

/// What [`enter`] put in force, as the process itself saw it (for the status report; what
/// the kernel shows from outside is read by [`crate::inspect`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    /// The role.
    pub role: Role,
    /// Seccomp filters installed.
    pub seccomp_filters: u32,
    /// Landlock.
    pub landlock: LandlockState,
    /// The namespaces made private (`user`, `mnt`, `ipc`); empty when not permitted.
    pub namespaces: Vec<String>,
    /// The effective uid the process runs with.
    pub uid: u32,
    /// The effective gid it runs with.
    pub gid: u32,
    /// Every capability set is empty, the bounding and ambient sets included.
    pub capabilities_dropped: bool,
    /// `PR_SET_NO_NEW_PRIVS` is set.
    pub no_new_privs: bool,
    /// `PR_GET_DUMPABLE`.
    pub dumpable: bool,
    /// `RLIMIT_CORE` (hard).
    pub core_limit: u64,
    /// `RLIMIT_NOFILE` (soft = hard).
    #[serde(default)]
    pub open_files_limit: u64,
    /// `RLIMIT_NPROC` when it was set (a switch to a dedicated account).
    #[serde(default)]
    pub tasks_limit: Option<u64>,
}

/// A step of [`enter`] failed; the process must not go on.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Threads already exist.
    #[error("the process has {0} threads; a sandbox is entered before any thread starts")]
    Threads(usize),
    /// [`enter`] was asked for the supervisor.
    #[error(
        "the supervisor keeps its privileges to start its children: use harden_supervisor and install_filters"
    )]
    Supervisor,
    /// A switch of ids was asked of a process that cannot make it.
    #[error("switching to uid {uid} / gid {gid} needs a process started as root")]
    Ids {
        /// The uid asked for.
        uid: u32,
        /// The gid asked for.
        gid: u32,
    },
    /// A system call failed.
    #[error("{step}")]
    System {
        /// What was being done.
        step: &'static str,
        /// The error.
        source: nix::Error,
    },
    /// Capabilities could not be dropped.
    #[error("cannot drop capabilities")]
    Capabilities(#[from] caps::errors::CapsError),
    /// A path of the Landlock ruleset cannot be opened.
    #[error("Landlock path {}", .path.display())]
    LandlockPath {
        /// The path.
        path: PathBuf,
        /// The error.
        source: landlock::PathFdError,
    },
    /// Landlock refused the ruleset.
    #[error("Landlock")]
    Landlock(#[from] landlock::RulesetError),
    /// A seccomp filter could not be built.
    #[error("cannot build the seccomp filters")]
    Filter(#[from] seccompiler::BackendError),
    /// A seccomp filter could not be installed.
    #[error("cannot install a seccomp filter")]
    Seccomp(#[from] seccompiler::Error),
}

fn system(step: &'static str) -> impl FnOnce(nix::Error) -> SandboxError {
    move |source| SandboxError::System { step, source }
}

/// A field of `/proc/self/status`.
fn own_status(field: &str) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        Some(value.trim().to_owned())
    })
}

fn single_threaded() -> Result<(), SandboxError> {
    let threads = own_status("Threads")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    match threads {
        1 => Ok(()),
        n => Err(SandboxError::Threads(n)),
    }
}

/// Puts `sandbox` in force in the calling process, in this order: private namespaces, resource
/// limits, the switch of ids, empty capability sets, `PR_SET_DUMPABLE` 0,
/// `PR_SET_NO_NEW_PRIVS` 1, Landlock, and last the two seccomp filters. Call it while the
/// process has exactly one thread, before any runtime starts; every thread created afterwards
/// inherits the Landlock domain and the filters.
///
/// Resource limits: `RLIMIT_CORE` 0/0; `RLIMIT_NOFILE` [`Sandbox::max_open_files`] (capped by
/// the hard limit); `RLIMIT_NPROC` [`TASKS_PER_ACCOUNT`] only when the process switches to a
/// dedicated non-root account. `RLIMIT_NPROC` counts every task (process or thread) of the
/// real uid across the system, not of this process: for a dedicated account, shared by the
/// two workers, it bounds a compromised worker's thread bomb; for the invoking user's own
/// account it would count their other programs too, so it is then left alone.
pub fn enter(sandbox: &Sandbox) -> Result<Applied, SandboxError> {
    if sandbox.role == Role::Supervisor {
        return Err(SandboxError::Supervisor);
    }
    single_threaded()?;
    // Built first: reading the process id and allocating are harmless now.
    let filters = policy::filters(sandbox.role)?;

    let namespaces = if sandbox.private_namespaces {
        private_namespaces()
    } else {
        Vec::new()
    };

    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(system("RLIMIT_CORE"))?;
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(system("RLIMIT_NOFILE"))?;
    // Raising the hard limit needs CAP_SYS_RESOURCE, which containers withhold even from root.
    let open_files_limit = sandbox.max_open_files.min(hard);
    setrlimit(Resource::RLIMIT_NOFILE, open_files_limit, open_files_limit)
        .map_err(system("RLIMIT_NOFILE"))?;
    // A switch from root to a non-root account: the account is the appliance's own.
    let dedicated = Uid::effective().is_root() && sandbox.user.is_some_and(|(uid, _)| uid != 0);
    let tasks_limit = if dedicated {
        let (_, hard) = getrlimit(Resource::RLIMIT_NPROC).map_err(system("RLIMIT_NPROC"))?;
        let limit = TASKS_PER_ACCOUNT.min(hard);
        setrlimit(Resource::RLIMIT_NPROC, limit, limit).map_err(system("RLIMIT_NPROC"))?;
        Some(limit)
    } else {
        None
    };

    // Ambient and inheritable first; the bounding set needs CAP_SETPCAP, which the switch of
    // ids takes away, so it goes before the switch.
    caps::clear(None, caps::CapSet::Ambient)?;
    caps::clear(None, caps::CapSet::Inheritable)?;
    if caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SETPCAP)? {
        caps::clear(None, caps::CapSet::Bounding)?;
    }
    if let Some((uid, gid)) = sandbox.user {
        switch_ids(uid, gid)?;
    }
    caps::clear(None, caps::CapSet::Permitted)?;

    nix::sys::prctl::set_dumpable(false).map_err(system("PR_SET_DUMPABLE"))?;
    nix::sys::prctl::set_no_new_privs().map_err(system("PR_SET_NO_NEW_PRIVS"))?;

    // Read back while /proc may still be read and prctl still asked.
    let capabilities_dropped = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
        .into_iter()
        .all(|set| own_status(set).is_some_and(|mask| mask.trim_start_matches('0').is_empty()));
    let no_new_privs = nix::sys::prctl::get_no_new_privs().unwrap_or(false);
    let dumpable = nix::sys::prctl::get_dumpable().unwrap_or(true);
    let core_limit = getrlimit(Resource::RLIMIT_CORE).map_or(u64::MAX, |(_, hard)| hard);
    let (uid, gid) = (Uid::effective().as_raw(), Gid::effective().as_raw());

    let landlock = landlock(sandbox)?;

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
        open_files_limit,
        tasks_limit,
    })
}

/// Installs the seccomp filters of `role` and nothing else; sets `PR_SET_NO_NEW_PRIVS`. For
/// the supervisor, which keeps its capabilities to start its children: its filter is inherited
/// by every child through `fork` and `execve` and stays under the child's own filters. Refused
/// in a process with more than one thread (a filter covers only the calling thread and the
/// threads it creates later). Returns the number of filters installed.
pub fn install_filters(role: Role) -> Result<u32, SandboxError> {
    single_threaded()?;
    let filters = policy::filters(role)?;
    nix::sys::prctl::set_no_new_privs().map_err(system("PR_SET_NO_NEW_PRIVS"))?;
    for filter in &filters {
        seccompiler::apply_filter(filter)?;
    }
    Ok(filters.len() as u32)
}

/// What the supervisor, which stays privileged to start its children, can still give up: core
/// dumps, being dumpable (no ptrace attach, `/proc/PID` readable only by root) and gaining
/// privileges through exec.
pub fn harden_supervisor() -> Result<(), SandboxError> {
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(system("RLIMIT_CORE"))?;
    nix::sys::prctl::set_dumpable(false).map_err(system("PR_SET_DUMPABLE"))?;
    nix::sys::prctl::set_no_new_privs().map_err(system("PR_SET_NO_NEW_PRIVS"))
}

/// New mount and IPC namespaces: directly with `CAP_SYS_ADMIN`, else inside a new user
/// namespace that maps the current ids onto themselves, where the kernel permits one to an
/// unprivileged process. Returns the namespaces made; none when neither was permitted.
fn private_namespaces() -> Vec<String> {
    let names = |list: &[&str]| list.iter().map(|name| (*name).to_owned()).collect();
    let mount_ipc = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC;
    let admin = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_ADMIN,
    )
    .unwrap_or(false);
    if admin && nix::sched::unshare(mount_ipc).is_ok() {
        return names(&["mnt", "ipc"]);
    }
    let (uid, gid) = (Uid::current().as_raw(), Gid::current().as_raw());
    if nix::sched::unshare(CloneFlags::CLONE_NEWUSER | mount_ipc).is_err() {
        return Vec::new();
    }
    // The process has every capability in its new user namespace until it drops them below.
    let mapped = std::fs::write("/proc/self/setgroups", "deny")
        .and_then(|()| std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1")))
        .and_then(|()| std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1")));
    match mapped {
        Ok(()) => names(&["user", "mnt", "ipc"]),
        // Unmapped, the process runs as the overflow ids; the namespaces are private anyway.
        Err(_) => names(&["user (unmapped)", "mnt", "ipc"]),
    }
}

/// Switches to `uid`/`gid` with no supplementary groups, and checks the result.
fn switch_ids(uid: u32, gid: u32) -> Result<(), SandboxError> {
    let ids = nix::unistd::getresuid().map_err(system("getresuid"))?;
    let groups = nix::unistd::getresgid().map_err(system("getresgid"))?;
    let current = |id: u32| {
        [ids.real, ids.effective, ids.saved]
            .iter()
            .all(|held| held.as_raw() == id)
    };
    let current_group = [groups.real, groups.effective, groups.saved]
        .iter()
        .all(|held| held.as_raw() == gid);
    if !ids.effective.is_root() {
        // Nothing to switch, or nothing that may be switched.
        return if current(uid) && current_group {
            Ok(())
        } else {
            Err(SandboxError::Ids { uid, gid })
        };
    }
    let (target_uid, target_gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    nix::unistd::setgroups(&[]).map_err(system("setgroups"))?;
    nix::unistd::setresgid(target_gid, target_gid, target_gid).map_err(system("setresgid"))?;
    nix::unistd::setresuid(target_uid, target_uid, target_uid).map_err(system("setresuid"))?;
    let ids = nix::unistd::getresuid().map_err(system("getresuid"))?;
    let groups = nix::unistd::getresgid().map_err(system("getresgid"))?;
    let switched = [ids.real, ids.effective, ids.saved]
        .iter()
        .all(|held| held.as_raw() == uid)
        && [groups.real, groups.effective, groups.saved]
            .iter()
            .all(|held| held.as_raw() == gid);
    if switched {
        Ok(())
    } else {
        Err(SandboxError::Ids { uid, gid })
    }
}

/// The Landlock domain: every filesystem right of [`LANDLOCK_ABI`] handled (so denied except
/// beneath the given paths), TCP bind denied, TCP connect only to the given ports, abstract
/// Unix sockets and signals scoped to the domain.
fn landlock(sandbox: &Sandbox) -> Result<LandlockState, SandboxError> {
    let all = AccessFs::from_all(LANDLOCK_ABI);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)?
        .handle_access(AccessNet::from_all(LANDLOCK_ABI))?
        .scope(Scope::from_all(LANDLOCK_ABI))?
        .create()?;
    for path in &sandbox.read_write {
        ruleset = beneath(ruleset, path, all)?;
    }
    for path in &sandbox.read_only {
        ruleset = beneath(ruleset, path, AccessFs::from_read(LANDLOCK_ABI))?;
    }
    for port in &sandbox.tcp_connect {
        ruleset = ruleset.add_rule(NetPort::new(*port, AccessNet::ConnectTcp))?;
    }
    let status = ruleset.restrict_self()?;
    let abi = match status.landlock {
        LandlockStatus::Available {
            effective_abi,
            kernel_abi,
        } => kernel_abi.unwrap_or(effective_abi as i32),
        LandlockStatus::NotEnabled | LandlockStatus::NotImplemented => 0,
    };
    Ok(LandlockState {
        status: match status.ruleset {
            RulesetStatus::FullyEnforced => LandlockEnforcement::Enforced,
            RulesetStatus::PartiallyEnforced => LandlockEnforcement::Partial,
            RulesetStatus::NotEnforced => LandlockEnforcement::NotEnforced,
        },
        abi,
    })
}

/// Adds `access` beneath `path`; a path that is not a directory gets only the rights that
/// apply to files. A path that cannot be opened is an error, not a rule silently left out.
fn beneath(
    ruleset: RulesetCreated,
    path: &Path,
    access: landlock::BitFlags<AccessFs>,
) -> Result<RulesetCreated, SandboxError> {
    let fd = PathFd::new(path).map_err(|source| SandboxError::LandlockPath {
        path: path.to_owned(),
        source,
    })?;
    let access = if std::fs::metadata(path).is_ok_and(|meta| meta.is_dir()) {
        access
    } else {
        access & AccessFs::from_file(LANDLOCK_ABI)
    };
    Ok(ruleset.add_rule(PathBeneath::new(fd, access))?)
}
