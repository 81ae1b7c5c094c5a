//! `kammer-hardening`: the sandbox of each Kammer process, declared per role as reviewed
//! policy and put in force by the process itself; and the inspection of a running process
//! from `/proc` that `kammer selfcheck` compares with the policy.
//!
//! # What it does
//! * [`syscalls`] maps every [`Role`] (an exhaustive match) to its system-call allowlist, each
//!   call with the reason it is needed and, where a filter can look at the arguments, a
//!   [`Rule`] on them (`clone` only with `CLONE_THREAD`, `mmap`/`mprotect` never executable,
//!   `tgkill` only to the process itself, `socket` only of the listed families and types, …).
//!   [`policy_markdown`] renders the lists for docs/hardening.md.
//! * [`enter`] puts a role's [`Sandbox`] in force in the calling process, in this order:
//!   1. refuse unless the process has exactly one thread;
//!   2. private mount and IPC namespaces (directly with `CAP_SYS_ADMIN`, else inside a new user
//!      namespace where the kernel allows one; reported, not required);
//!   3. `RLIMIT_CORE` 0/0, `RLIMIT_NOFILE`, and `RLIMIT_NPROC` [`TASKS_PER_ACCOUNT`] for a
//!      process that switches to a dedicated account (the limit counts every task of the uid);
//!   4. ambient, inheritable and (with `CAP_SETPCAP`) bounding capability sets emptied, then
//!      the switch of ids (`setgroups([])`, `setresgid`, `setresuid`: root only), then the
//!      permitted and effective sets emptied;
//!   5. `PR_SET_DUMPABLE` 0 and `PR_SET_NO_NEW_PRIVS` 1;
//!   6. Landlock (ABI 7 rights, best effort): every filesystem right handled and granted only
//!      beneath the given paths, TCP bind denied, TCP connect only to the given ports,
//!      abstract Unix sockets and signals scoped to the domain;
//!   7. two seccomp filters: `clone3` → `ENOSYS` (its flags are in memory, out of a filter's
//!      sight; glibc falls back to `clone`), then the allowlist, whose default action is
//!      `SECCOMP_RET_KILL_PROCESS`.
//!
//!   It returns what it put in force ([`Applied`]) for the appliance's status report.
//! * [`harden_supervisor`] and [`install_filters`] are for the supervisor, which keeps its
//!   capabilities to start its children: no core dumps, not dumpable, `no_new_privs`, and its
//!   looser allowlist, which every child inherits and keeps beneath its own filters.
//! * [`inspect`] reads another process's state from `/proc` (seccomp mode and filter count,
//!   `no_new_privs`, capability sets, ids, threads, core limit, open descriptors,
//!   dumpability, namespaces), and [`evaluate`] compares it with the policy, item by item.
//!
//! # Invariants
//! * A sandbox is entered by a single-threaded process, before any runtime starts. Landlock
//!   and seccomp apply to the calling thread and the threads it creates later, never to
//!   threads that already exist: [`enter`] and [`install_filters`] refuse otherwise, so a
//!   half-sandboxed process cannot come about.
//! * The workers' lists hold no call that creates a process, executes a program, traces or
//!   reads another process, opens a file (`signal`, `media`), creates a socket other than a
//!   connected Unix pair (`signal`, `media`), binds, listens, mounts, changes ids or
//!   capabilities, creates namespaces, loads modules or BPF, or maps executable memory.
//!   A unit test holds the lists to that.
//! * Nothing is weakened silently: a Landlock ABI older than 7 is reported as `partial`, no
//!   Landlock as `not enforced`, namespaces that could not be made are absent from
//!   [`Applied::namespaces`]; every other step succeeds or [`enter`] fails, and a caller must
//!   not go on after a failure.
//! * The kernel does not show a process's Landlock domain from outside: [`evaluate`] takes it
//!   from the process's own report and says so. Everything else it reads from `/proc`.
//!
//! # What it refuses to do
//! * No "log only" or "permissive" mode: a call outside the allowlist ends the process
//!   (SIGSYS), and a worker killed that way is a security event for the supervisor.
//! * It does not decide whether a sandbox is wanted (the appliance's configuration does, and
//!   reports a disabled sandbox loudly), nor which account or paths a role gets.
//! * It does not restrict UDP with Landlock (the media worker answers peers on any port; its
//!   socket is bound before the sandbox and it cannot create another), and it does not take
//!   on rights of Landlock ABIs newer than the one it was tested with.
//! * Code that runs after [`enter`] in a worker must not open files (a backtrace
//!   symbolizer, `std::thread::available_parallelism`'s cgroup lookup, a time-zone
//!   database): the filter kills the process. Such work belongs before [`enter`].

mod apply;
mod evaluate;
mod inspect;
mod policy;
#[cfg(feature = "test-hooks")]
pub mod trigger;

pub use apply::{
    Applied, LandlockEnforcement, LandlockState, Sandbox, SandboxError, TASKS_PER_ACCOUNT, enter,
    harden_supervisor, install_filters,
};
pub use evaluate::{Expected, Finding, evaluate};
pub use inspect::{FdKind, InspectError, OpenFd, ProcessFacts, inspect};
pub use policy::{FILTERS_PER_PROCESS, Rule, Syscall, policy_markdown, syscalls};

/// The processes of the appliance, each with its own policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The parent: binds the ports, starts and restarts the others. Keeps its capabilities;
    /// its allowlist is the loosest, since its children start under it.
    Supervisor,
    /// The key manager: TPM, key files, audit log; no network port.
    Keys,
    /// The signalling worker: TLS, HTTP, WebSocket, the hub.
    Signal,
    /// The media worker: the SFU on the UDP port.
    Media,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Supervisor, Role::Keys, Role::Signal, Role::Media];

    /// The role's name, as in logs and `kammer selfcheck`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Supervisor => "supervisor",
            Role::Keys => "keys",
            Role::Signal => "signal",
            Role::Media => "media",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or(UnknownRole)
    }
}

/// A name that is not a [`Role`].
#[derive(Debug, thiserror::Error)]
#[error("not a process role")]
pub struct UnknownRole;
