//! The system-call allowlists as reviewed policy: one list per [`Role`] (in [`lists`]), each
//! call with its reason and a [`Rule`] on its arguments, and their translation into the two
//! seccomp filters a process installs.
//!
//! A call missing from a list kills the process that makes it. The lists were read from what
//! the Rust standard library, glibc 2.36 (malloc, thread creation, `abort`), tokio and the TPM
//! library do after a sandbox is in force, and each is exercised by `tests/sandbox.rs`.

mod lists;

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::Role;
pub use lists::syscalls;

/// The number of seccomp filters [`crate::enter`] installs: `clone3` → `ENOSYS`, then the
/// role's allowlist.
pub const FILTERS_PER_PROCESS: u32 = 2;

/// The namespace flags of `clone`/`unshare`.
const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;

/// The bits of `socket`'s type argument that name the type (the rest are `SOCK_NONBLOCK` and
/// `SOCK_CLOEXEC`).
const SOCK_TYPE_MASK: u64 = 0xf;

/// What a filter checks of a call's arguments besides its number. A closed set: each variant
/// is one reviewed idea, rendered in docs/hardening.md by [`Rule::describe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Any arguments.
    Always,
    /// `clone`: `CLONE_THREAD` set and no namespace flag: threads, never processes.
    CloneThreadOnly,
    /// `clone`: no namespace flag (the supervisor forks its children).
    CloneNoNamespaces,
    /// `mmap`/`mprotect`: the protection (arg 2) without `PROT_EXEC`: no new executable memory.
    NoExecutableMemory,
    /// `tgkill`: the thread group (arg 0) is this process (its id is captured when the filter
    /// is built): `abort()` may signal itself, nothing else.
    OwnProcessOnly,
    /// `prctl`: the option (arg 0) is one of these.
    PrctlOptions(&'static [i32]),
    /// `fcntl`: the command (arg 1) is one of these (not `F_SETOWN`/`F_SETSIG`, through which a
    /// process could have the kernel signal another).
    FcntlCommands(&'static [i32]),
    /// `ioctl`: the request (arg 1) is one of these.
    IoctlRequests(&'static [libc::Ioctl]),
    /// `socket`/`socketpair`: the family (arg 0) and the type (arg 1, without its flags) are
    /// among these.
    SocketKinds {
        /// `AF_*`.
        families: &'static [i32],
        /// `SOCK_*`.
        types: &'static [i32],
    },
    /// `setsockopt`: the level (arg 1) is one of these.
    SockoptLevels(&'static [i32]),
    /// `unshare`: the flags (arg 0) are within these.
    UnshareWithin(u64),
}

impl Rule {
    /// The rule in words, for the tables in docs/hardening.md; empty for [`Rule::Always`].
    pub fn describe(self) -> String {
        let list = |names: Vec<String>| format!("{{{}}}", names.join(", "));
        match self {
            Rule::Always => String::new(),
            Rule::CloneThreadOnly => "`CLONE_THREAD` set, no `CLONE_NEW*` flag".to_owned(),
            Rule::CloneNoNamespaces => "no `CLONE_NEW*` flag".to_owned(),
            Rule::NoExecutableMemory => "protection without `PROT_EXEC`".to_owned(),
            Rule::OwnProcessOnly => "thread group = own process".to_owned(),
            Rule::PrctlOptions(options) => format!(
                "option ∈ {}",
                list(options.iter().map(|o| prctl_name(*o)).collect())
            ),
            Rule::FcntlCommands(commands) => format!(
                "command ∈ {}",
                list(commands.iter().map(|c| fcntl_name(*c)).collect())
            ),
            Rule::IoctlRequests(requests) => format!(
                "request ∈ {}",
                list(requests.iter().map(|r| ioctl_name(*r)).collect())
            ),
            Rule::SocketKinds { families, types } => format!(
                "family ∈ {}, type ∈ {}",
                list(families.iter().map(|f| family_name(*f)).collect()),
                list(types.iter().map(|t| type_name(*t)).collect())
            ),
            Rule::SockoptLevels(levels) => format!(
                "level ∈ {}",
                list(levels.iter().map(|l| level_name(*l)).collect())
            ),
            Rule::UnshareWithin(flags) => format!(
                "flags ⊆ {}",
                list(
                    CLONE_NAMES
                        .iter()
                        .filter(|(flag, _)| flags & flag != 0)
                        .map(|(_, name)| format!("`{name}`"))
                        .collect()
                )
            ),
        }
    }

    /// The seccompiler rules (alternatives) of this rule; none for [`Rule::Always`], which
    /// matches on the number alone.
    fn seccomp_rules(self) -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
        // `int` arguments are compared in their low 32 bits, flag words in all 64.
        let int = |arg: u8, value: i32| {
            SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value as u64)
        };
        let masked = |arg: u8, mask: u64, value: u64| {
            SeccompCondition::new(
                arg,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(mask),
                value,
            )
        };
        let one = |condition| SeccompRule::new(vec![condition?]);
        Ok(match self {
            Rule::Always => Vec::new(),
            Rule::CloneThreadOnly => {
                let thread = libc::CLONE_THREAD as u64;
                vec![one(masked(0, thread | NAMESPACE_FLAGS, thread))?]
            }
            Rule::CloneNoNamespaces => vec![one(masked(0, NAMESPACE_FLAGS, 0))?],
            Rule::NoExecutableMemory => vec![one(masked(2, libc::PROT_EXEC as u64, 0))?],
            Rule::OwnProcessOnly => vec![one(int(0, std::process::id() as i32))?],
            Rule::PrctlOptions(options) => options
                .iter()
                .map(|option| one(int(0, *option)))
                .collect::<Result<_, _>>()?,
            Rule::FcntlCommands(commands) => commands
                .iter()
                .map(|command| one(int(1, *command)))
                .collect::<Result<_, _>>()?,
            Rule::IoctlRequests(requests) => requests
                .iter()
                .map(|request| {
                    // `Ioctl` is `c_ulong` with glibc and `c_int` with musl; the kernel
                    // compares the request's low 32 bits.
                    #[allow(clippy::unnecessary_cast)]
                    let request = *request as u64;
                    one(SeccompCondition::new(
                        1,
                        SeccompCmpArgLen::Dword,
                        SeccompCmpOp::Eq,
                        request,
                    ))
                })
                .collect::<Result<_, _>>()?,
            Rule::SocketKinds { families, types } => {
                let mut rules = Vec::new();
                for family in families {
                    for kind in types {
                        rules.push(SeccompRule::new(vec![
                            int(0, *family)?,
                            masked(1, SOCK_TYPE_MASK, *kind as u64)?,
                        ])?);
                    }
                }
                rules
            }
            Rule::SockoptLevels(levels) => levels
                .iter()
                .map(|level| one(int(1, *level)))
                .collect::<Result<_, _>>()?,
            Rule::UnshareWithin(flags) => vec![one(masked(0, !flags, 0))?],
        })
    }
}

const CLONE_NAMES: &[(u64, &str)] = &[
    (libc::CLONE_NEWNS as u64, "CLONE_NEWNS"),
    (libc::CLONE_NEWIPC as u64, "CLONE_NEWIPC"),
    (libc::CLONE_NEWUSER as u64, "CLONE_NEWUSER"),
    (libc::CLONE_NEWUTS as u64, "CLONE_NEWUTS"),
    (libc::CLONE_NEWPID as u64, "CLONE_NEWPID"),
    (libc::CLONE_NEWNET as u64, "CLONE_NEWNET"),
    (libc::CLONE_NEWCGROUP as u64, "CLONE_NEWCGROUP"),
];

fn named<T: PartialEq + ToString>(value: T, names: &[(T, &str)]) -> String {
    names
        .iter()
        .find(|(known, _)| *known == value)
        .map_or_else(|| value.to_string(), |(_, name)| format!("`{name}`"))
}

fn fcntl_name(command: i32) -> String {
    named(
        command,
        &[
            (libc::F_GETFD, "F_GETFD"),
            (libc::F_SETFD, "F_SETFD"),
            (libc::F_GETFL, "F_GETFL"),
            (libc::F_SETFL, "F_SETFL"),
            (libc::F_DUPFD_CLOEXEC, "F_DUPFD_CLOEXEC"),
        ],
    )
}

fn prctl_name(option: i32) -> String {
    named(
        option,
        &[
            (libc::PR_SET_NAME, "PR_SET_NAME"),
            (libc::PR_GET_NAME, "PR_GET_NAME"),
            (libc::PR_SET_DUMPABLE, "PR_SET_DUMPABLE"),
            (libc::PR_GET_DUMPABLE, "PR_GET_DUMPABLE"),
            (libc::PR_SET_NO_NEW_PRIVS, "PR_SET_NO_NEW_PRIVS"),
            (libc::PR_GET_NO_NEW_PRIVS, "PR_GET_NO_NEW_PRIVS"),
            (libc::PR_CAPBSET_READ, "PR_CAPBSET_READ"),
            (libc::PR_CAPBSET_DROP, "PR_CAPBSET_DROP"),
            (libc::PR_CAP_AMBIENT, "PR_CAP_AMBIENT"),
            (libc::PR_SET_PDEATHSIG, "PR_SET_PDEATHSIG"),
            (libc::PR_GET_SECUREBITS, "PR_GET_SECUREBITS"),
        ],
    )
}

fn ioctl_name(request: libc::Ioctl) -> String {
    named(
        request,
        &[
            (libc::FIONBIO, "FIONBIO"),
            (libc::FIOCLEX, "FIOCLEX"),
            (libc::FIONCLEX, "FIONCLEX"),
            (libc::TCGETS, "TCGETS"),
            (libc::TIOCGWINSZ, "TIOCGWINSZ"),
        ],
    )
}

fn family_name(family: i32) -> String {
    named(
        family,
        &[
            (libc::AF_UNIX, "AF_UNIX"),
            (libc::AF_INET, "AF_INET"),
            (libc::AF_INET6, "AF_INET6"),
        ],
    )
}

fn type_name(kind: i32) -> String {
    named(
        kind,
        &[
            (libc::SOCK_STREAM, "SOCK_STREAM"),
            (libc::SOCK_DGRAM, "SOCK_DGRAM"),
            (libc::SOCK_SEQPACKET, "SOCK_SEQPACKET"),
        ],
    )
}

fn level_name(level: i32) -> String {
    named(
        level,
        &[
            (libc::SOL_SOCKET, "SOL_SOCKET"),
            (libc::IPPROTO_TCP, "IPPROTO_TCP"),
            (libc::IPPROTO_UDP, "IPPROTO_UDP"),
            (libc::IPPROTO_IP, "IPPROTO_IP"),
            (libc::IPPROTO_IPV6, "IPPROTO_IPV6"),
        ],
    )
}

/// One allowed system call.
#[derive(Debug, Clone, Copy)]
pub struct Syscall {
    /// Its name.
    pub name: &'static str,
    /// Its number on this architecture.
    pub number: i64,
    /// Why the role needs it.
    pub reason: &'static str,
    /// What is checked of its arguments.
    pub rule: Rule,
}

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;

/// The filters of `role`, in the order they are installed:
/// 1. `clone3` → `ENOSYS`, everything else allowed. `clone3` takes its flags in memory, where
///    a filter cannot look; glibc then falls back to `clone`, whose flags the second filter
///    checks.
/// 2. The role's allowlist; anything else → `SECCOMP_RET_KILL_PROCESS`. It lists `clone3` as
///    allowed, so that for `clone3` the first filter's `ERRNO` is the most restrictive answer
///    (the kernel takes the most restrictive result of all filters).
pub(crate) fn filters(role: Role) -> Result<Vec<BpfProgram>, seccompiler::BackendError> {
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        ARCH,
    )?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for call in syscalls(role) {
        rules.insert(call.number, call.rule.seccomp_rules()?);
    }
    let allowlist = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        ARCH,
    )?;
    let filters = vec![clone3.try_into()?, allowlist.try_into()?];
    debug_assert_eq!(filters.len() as u32, FILTERS_PER_PROCESS);
    Ok(filters)
}

/// Every role's allowlist as a markdown table (system call | argument rule | reason), for
/// docs/hardening.md; a test of `kammer` checks that the document contains exactly this.
pub fn policy_markdown() -> String {
    let mut out = String::new();
    for role in [Role::Keys, Role::Signal, Role::Media, Role::Supervisor] {
        let calls = syscalls(role);
        out.push_str(&format!(
            "\n### `{role}` ({} system calls)\n\n",
            calls.len()
        ));
        if role == Role::Supervisor {
            out.push_str(
                "The supervisor's filter is inherited by its children through `fork` and \
                 `execve`, so it also covers their start-up until their own filters are in \
                 force.\n\n",
            );
        }
        out.push_str("| system call | arguments | why |\n|---|---|---|\n");
        for call in calls {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                call.name,
                call.rule.describe(),
                call.reason
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Never in a worker's list: each would give an attacker in the worker a new way out.
    const NEVER: &[&str] = &[
        "execve",
        "execveat",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "unshare",
        "setns",
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "io_uring_setup",
        "io_uring_enter",
        "fork",
        "vfork",
        "setuid",
        "setresuid",
        "capset",
        "seccomp",
        "memfd_create",
        "pkey_mprotect",
    ];

    #[test]
    fn lists_have_reasons_no_duplicates_and_no_dangerous_calls() {
        for role in Role::ALL {
            let calls = syscalls(role);
            let mut names: Vec<&str> = calls.iter().map(|c| c.name).collect();
            names.sort_unstable();
            let before = names.len();
            for pair in names.windows(2) {
                assert_ne!(pair[0], pair[1], "{role}: listed twice");
            }
            let mut numbers: Vec<i64> = calls.iter().map(|c| c.number).collect();
            numbers.sort_unstable();
            numbers.dedup();
            assert_eq!(before, numbers.len(), "{role}: two names, one number");
            assert!(
                calls.iter().all(|c| c.reason.len() > 3),
                "{role}: no reason"
            );
            assert!(names.contains(&"clone3"), "{role}: clone3 must meet ENOSYS");
        }
        for role in [Role::Keys, Role::Signal, Role::Media] {
            let names: Vec<&str> = syscalls(role).iter().map(|c| c.name).collect();
            for never in NEVER {
                assert!(!names.contains(never), "{role} allows {never}");
            }
            let clone = syscalls(role).into_iter().find(|c| c.name == "clone");
            assert_eq!(clone.map(|c| c.rule), Some(Rule::CloneThreadOnly));
        }
        for role in [Role::Signal, Role::Media] {
            let names: Vec<&str> = syscalls(role).iter().map(|c| c.name).collect();
            for never in [
                "open", "openat", "openat2", "socket", "connect", "bind", "listen",
            ] {
                assert!(!names.contains(&never), "{role} allows {never}");
            }
        }
        let supervisor: Vec<&str> = syscalls(Role::Supervisor).iter().map(|c| c.name).collect();
        // Its filter stays in force beneath every child's: it must allow what they do.
        for role in [Role::Keys, Role::Signal, Role::Media] {
            for call in syscalls(role) {
                assert!(
                    supervisor.contains(&call.name),
                    "the supervisor's filter would stop {role}'s {}",
                    call.name
                );
            }
        }
        for never in [
            "ptrace",
            "process_vm_readv",
            "mount",
            "bpf",
            "setns",
            "io_uring_setup",
        ] {
            assert!(
                !supervisor.contains(&never),
                "the supervisor allows {never}"
            );
        }
    }

    #[test]
    fn filters_compile_within_the_kernels_size_limit() {
        for role in Role::ALL {
            let filters = filters(role).expect("filters");
            assert_eq!(filters.len() as u32, FILTERS_PER_PROCESS);
            // BPF_MAXINSNS
            assert!(filters[1].len() < 4096, "{role}: {}", filters[1].len());
        }
    }

    #[test]
    fn the_markdown_names_every_call_and_rule() {
        let markdown = policy_markdown();
        for role in Role::ALL {
            assert!(markdown.contains(&format!("### `{role}`")));
            for call in syscalls(role) {
                assert!(markdown.contains(&format!("| `{}` |", call.name)));
            }
        }
        assert!(markdown.contains("family ∈ {`AF_INET`, `AF_INET6`}, type ∈ {`SOCK_STREAM`}"));
        assert!(markdown.contains("option ∈ {`PR_SET_NAME`, `PR_GET_NAME`}"));
        assert!(markdown.contains("flags ⊆ {`CLONE_NEWNS`, `CLONE_NEWIPC`, `CLONE_NEWUSER`}"));
    }
}
