//! `kammer-hardening`: the sandbox of each Kammer process, declared per role and put in force
//! by the process itself.
//!
//! # What it does
//! * [`syscalls`] maps every [`Role`] (an exhaustive match) to its system-call allowlist, each
//!   call with the reason it is needed and, where the kernel lets a filter look, a rule on its
//!   arguments ([`Rule`]). [`policy_markdown`] renders the lists for docs/hardening.md.
//! * [`enter`] puts a role's [`Sandbox`] in force in the calling process: private mount and IPC
//!   namespaces, resource limits (no core dumps), the switch to an unprivileged uid/gid, the
//!   empty capability sets, `PR_SET_DUMPABLE` 0, `PR_SET_NO_NEW_PRIVS`, a Landlock ruleset and
//!   two seccomp filters whose default action kills the process. It returns what it could put
//!   in force ([`Applied`]) for the appliance's status report.
//! * [`inspect`] reads another process's state from `/proc`, and [`evaluate`] compares it with
//!   the policy, for `kammer selfcheck`.
//!
//! # Invariants
//! * [`enter`] refuses to run in a process with more than one thread: Landlock and seccomp apply
//!   to the calling thread and the threads it creates later, never to threads that already
//!   exist, and a half-sandboxed process must not be possible.
//! * Nothing is weakened silently: a Landlock feature the kernel lacks is reported as partial
//!   or not enforced in [`Applied`]; every other step either succeeds or [`enter`] fails.
//!
//! # What it refuses to do
//! It does not decide whether a sandbox is wanted (that is the appliance's configuration), and
//! it has no "log only" mode: a call outside the allowlist ends the process.

mod apply;
mod inspect;
mod policy;
#[cfg(feature = "test-hooks")]
pub mod trigger;

pub use apply::{Applied, LandlockState, Sandbox, SandboxError, enter, harden_supervisor};
pub use inspect::{
    Expected, FdKind, Finding, InspectError, OpenFd, ProcessFacts, evaluate, inspect,
};
pub use policy::{Rule, Syscall, policy_markdown, syscalls};

/// The processes of the appliance, each with its own policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The parent: binds the ports, starts and restarts the others. Not filtered by seccomp
    /// (see docs/hardening.md).
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
