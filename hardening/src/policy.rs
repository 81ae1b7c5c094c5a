//! The system-call allowlists, one per role, each call with its reason.
//!
//! The lists were drawn from what the processes do after their sandbox is in force (traced
//! with strace over the system and browser tests) and then cut to what each role needs. A
//! call that is missing here kills the process: tests that run the real binary through its
//! interfaces are what keeps the lists complete.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::Role;

/// What a filter checks of a call's arguments, beyond its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Any arguments.
    Always,
    /// `clone` only with `CLONE_THREAD` in its flags: threads, never processes.
    ThreadsOnly,
    /// The protection argument (at this index) without `PROT_EXEC`: no new executable memory.
    NoExec(u8),
    /// The argument at this index is one of these values.
    OneOf(u8, &'static [u64]),
    /// The first argument is this process's own id (captured when the filter is built).
    OwnProcess,
}

impl Rule {
    fn describe(self) -> String {
        match self {
            Rule::Always => String::new(),
            Rule::ThreadsOnly => "flags include `CLONE_THREAD`".to_owned(),
            Rule::NoExec(arg) => format!("arg{arg} without `PROT_EXEC`"),
            Rule::OneOf(arg, values) => {
                let names: Vec<String> = values
                    .iter()
                    .map(|value| constant_name(*value, arg))
                    .collect();
                format!("arg{arg} ∈ {{{}}}", names.join(", "))
            }
            Rule::OwnProcess => "arg0 = own process id".to_owned(),
        }
    }

    fn seccomp_rules(self) -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
        let condition = |arg: u8, op: SeccompCmpOp, value: u64| {
            SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value)
        };
        Ok(match self {
            Rule::Always => Vec::new(),
            Rule::ThreadsOnly => {
                let thread = libc::CLONE_THREAD as u64;
                vec![SeccompRule::new(vec![condition(
                    0,
                    SeccompCmpOp::MaskedEq(thread),
                    thread,
                )?])?]
            }
            Rule::NoExec(arg) => vec![SeccompRule::new(vec![condition(
                arg,
                SeccompCmpOp::MaskedEq(libc::PROT_EXEC as u64),
                0,
            )?])?],
            Rule::OneOf(arg, values) => values
                .iter()
                .map(|value| {
                    SeccompRule::new(vec![SeccompCondition::new(
                        arg,
                        SeccompCmpArgLen::Dword,
                        SeccompCmpOp::Eq,
                        *value,
                    )?])
                })
                .collect::<Result<_, _>>()?,
            Rule::OwnProcess => vec![SeccompRule::new(vec![SeccompCondition::new(
                0,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Eq,
                u64::from(std::process::id()),
            )?])?],
        })
    }
}

/// Readable names of the constants the rules use.
fn constant_name(value: u64, arg: u8) -> String {
    let known: &[(u64, &str)] = &[
        (libc::FIONBIO, "FIONBIO"),
        (libc::FIOCLEX, "FIOCLEX"),
        (libc::PR_SET_NAME as u64, "PR_SET_NAME"),
        (libc::PR_GET_NAME as u64, "PR_GET_NAME"),
        (libc::AF_UNIX as u64, "AF_UNIX"),
        (libc::AF_INET as u64, "AF_INET"),
        (libc::AF_INET6 as u64, "AF_INET6"),
    ];
    // AF_UNIX (1) and PR_SET_NAME (15) do not collide with each other; FIONBIO/FIOCLEX are
    // ioctl requests (arg1).
    let _ = arg;
    known
        .iter()
        .find(|(known, _)| *known == value)
        .map_or_else(|| value.to_string(), |(_, name)| (*name).to_owned())
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

macro_rules! call {
    ($name:ident, $rule:expr, $reason:literal) => {
        Syscall {
            name: stringify!($name),
            number: sys::$name,
            reason: $reason,
            rule: $rule,
        }
    };
    ($name:ident, $reason:literal) => {
        call!($name, Rule::Always, $reason)
    };
}

/// System-call numbers by name (libc's `SYS_*` constants under their plain names).
#[allow(non_upper_case_globals)]
mod sys {
    macro_rules! numbers {
        ($($name:ident => $sys:ident),* $(,)?) => {
            $(pub(super) const $name: i64 = libc::$sys as i64;)*
        };
    }
    numbers! {
        read => SYS_read, write => SYS_write, readv => SYS_readv, writev => SYS_writev,
        close => SYS_close, fcntl => SYS_fcntl, ioctl => SYS_ioctl, brk => SYS_brk,
        mmap => SYS_mmap, munmap => SYS_munmap, mremap => SYS_mremap, mprotect => SYS_mprotect,
        madvise => SYS_madvise, futex => SYS_futex, clone => SYS_clone, clone3 => SYS_clone3,
        set_robust_list => SYS_set_robust_list, rseq => SYS_rseq, sigaltstack => SYS_sigaltstack,
        rt_sigaction => SYS_rt_sigaction, rt_sigprocmask => SYS_rt_sigprocmask,
        rt_sigreturn => SYS_rt_sigreturn, sched_yield => SYS_sched_yield,
        sched_getaffinity => SYS_sched_getaffinity, getpid => SYS_getpid, gettid => SYS_gettid,
        getrandom => SYS_getrandom, clock_gettime => SYS_clock_gettime,
        clock_nanosleep => SYS_clock_nanosleep, nanosleep => SYS_nanosleep, exit => SYS_exit,
        exit_group => SYS_exit_group, tgkill => SYS_tgkill, prctl => SYS_prctl,
        epoll_create1 => SYS_epoll_create1, epoll_ctl => SYS_epoll_ctl,
        epoll_pwait => SYS_epoll_pwait, epoll_pwait2 => SYS_epoll_pwait2, eventfd2 => SYS_eventfd2,
        ppoll => SYS_ppoll, socketpair => SYS_socketpair, restart_syscall => SYS_restart_syscall,
        getsockopt => SYS_getsockopt, setsockopt => SYS_setsockopt, recvfrom => SYS_recvfrom,
        sendto => SYS_sendto, recvmsg => SYS_recvmsg, sendmsg => SYS_sendmsg,
        getsockname => SYS_getsockname, getpeername => SYS_getpeername, shutdown => SYS_shutdown,
        accept4 => SYS_accept4, openat => SYS_openat, newfstatat => SYS_newfstatat,
        fstat => SYS_fstat, statx => SYS_statx, lseek => SYS_lseek, pread64 => SYS_pread64,
        pwrite64 => SYS_pwrite64, fsync => SYS_fsync, fdatasync => SYS_fdatasync,
        renameat => SYS_renameat, renameat2 => SYS_renameat2, mkdirat => SYS_mkdirat,
        unlinkat => SYS_unlinkat, getdents64 => SYS_getdents64, flock => SYS_flock,
        fchmod => SYS_fchmod, ftruncate => SYS_ftruncate, socket => SYS_socket,
        connect => SYS_connect, mlock => SYS_mlock, munlock => SYS_munlock,
        faccessat2 => SYS_faccessat2, getuid => SYS_getuid, geteuid => SYS_geteuid,
        uname => SYS_uname,
    }
    #[cfg(target_arch = "x86_64")]
    numbers! {
        epoll_wait => SYS_epoll_wait, poll => SYS_poll, rename => SYS_rename,
        mkdir => SYS_mkdir, unlink => SYS_unlink, access => SYS_access,
    }
}

/// What every sandboxed process needs: the Rust and C runtime, threads, memory, time,
/// randomness, the tokio event loop, and I/O on descriptors it already holds.
fn runtime() -> Vec<Syscall> {
    vec![
        call!(read, "read from sockets and the runtime's eventfd"),
        call!(
            write,
            "write to sockets, to stderr (the log) and to the runtime's eventfd"
        ),
        call!(readv, "vectored reads (TLS records, HTTP)"),
        call!(writev, "vectored writes (TLS records, HTTP, the log)"),
        call!(close, "close connections and descriptors"),
        call!(
            fcntl,
            "descriptor flags: non-blocking, close-on-exec, duplicates for the runtime"
        ),
        call!(
            ioctl,
            Rule::OneOf(1, &[libc::FIONBIO, libc::FIOCLEX]),
            "make a descriptor non-blocking or close-on-exec"
        ),
        call!(brk, "the allocator's heap"),
        call!(
            mmap,
            Rule::NoExec(2),
            "the allocator and thread stacks; never executable memory"
        ),
        call!(munmap, "give memory back"),
        call!(mremap, "grow large allocations"),
        call!(
            mprotect,
            Rule::NoExec(2),
            "thread stack guard pages; never executable memory"
        ),
        call!(madvise, "the allocator returns free pages"),
        call!(
            futex,
            "locks, condition variables, parking of runtime threads"
        ),
        call!(
            clone,
            Rule::ThreadsOnly,
            "start threads (the runtime's workers), never processes"
        ),
        call!(
            clone3,
            "answered ENOSYS by the first filter, so that the C library falls back to clone, whose flags can be checked"
        ),
        call!(set_robust_list, "thread start-up in the C library"),
        call!(
            rseq,
            "thread start-up in the C library (restartable sequences)"
        ),
        call!(
            sigaltstack,
            "the per-thread signal stack of Rust's stack-overflow guard"
        ),
        call!(
            rt_sigaction,
            "signal handlers of the runtime and the stack-overflow guard"
        ),
        call!(rt_sigprocmask, "signal masks of new threads"),
        call!(rt_sigreturn, "return from a signal handler"),
        call!(sched_yield, "spinning locks"),
        call!(sched_getaffinity, "the runtime sizes its blocking pool"),
        call!(getpid, "the process id for logs"),
        call!(gettid, "thread ids for logs and thread-local state"),
        call!(
            getrandom,
            "the kernel's random source (ring: keys, nonces, ICE credentials)"
        ),
        call!(clock_gettime, "time, where the vDSO does not answer"),
        call!(clock_nanosleep, "sleep"),
        call!(nanosleep, "sleep"),
        call!(restart_syscall, "resume a sleep a signal interrupted"),
        call!(exit, "end a thread"),
        call!(exit_group, "end the process"),
        call!(
            tgkill,
            Rule::OwnProcess,
            "abort() raises SIGABRT in its own process, no other"
        ),
        call!(
            prctl,
            Rule::OneOf(0, &[libc::PR_SET_NAME as u64, libc::PR_GET_NAME as u64]),
            "name threads (shown by ps and in logs)"
        ),
        call!(epoll_create1, "the runtime's event loop"),
        call!(epoll_ctl, "register descriptors with the event loop"),
        #[cfg(target_arch = "x86_64")]
        call!(epoll_wait, "wait for events"),
        call!(epoll_pwait, "wait for events"),
        call!(epoll_pwait2, "wait for events"),
        call!(eventfd2, "wake the event loop from another thread"),
        #[cfg(target_arch = "x86_64")]
        call!(
            poll,
            "wait on one descriptor (the key manager's loop, blocking socket helpers)"
        ),
        call!(ppoll, "wait on descriptors"),
        call!(
            socketpair,
            Rule::OneOf(0, &[libc::AF_UNIX as u64]),
            "the runtime's signal-delivery pipe; Unix sockets only"
        ),
        call!(recvfrom, "receive on sockets held since start"),
        call!(sendto, "send on sockets held since start"),
        call!(
            recvmsg,
            "receive, with descriptors (SCM_RIGHTS) from the supervisor"
        ),
        call!(
            sendmsg,
            "send (UDP with segmentation offload; frames to other processes)"
        ),
        call!(getsockopt, "socket errors (SO_ERROR)"),
        call!(getsockname, "the local address of a held socket"),
        call!(
            getpeername,
            "the peer address of a connection, for limits and logs"
        ),
        call!(shutdown, "close one direction of a connection"),
    ]
}

/// The allowlist of `role`. The supervisor has none: it is not filtered (docs/hardening.md).
pub fn syscalls(role: Role) -> Vec<Syscall> {
    match role {
        Role::Supervisor => Vec::new(),
        Role::Signal => {
            let mut calls = runtime();
            calls.extend([
                call!(
                    accept4,
                    "accept TLS connections on the listener the supervisor bound"
                ),
                call!(setsockopt, "TCP_NODELAY on accepted connections"),
            ]);
            calls
        }
        Role::Media => runtime(),
        Role::Keys => {
            let mut calls = runtime();
            calls.extend([
                call!(openat, "key blobs, the sealed secret, the audit log (Landlock: the state directory and the TPM device only)"),
                call!(newfstatat, "file metadata in the state directory"),
                call!(fstat, "file metadata of an open file"),
                call!(statx, "file metadata in the state directory"),
                call!(lseek, "positions in open files"),
                call!(pread64, "read key blobs"),
                call!(pwrite64, "write key blobs"),
                call!(fsync, "make audit records and key blobs durable"),
                call!(fdatasync, "make audit records durable"),
                call!(renameat, "replace a file atomically"),
                call!(renameat2, "replace a file atomically"),
                call!(mkdirat, "create the audit directory"),
                call!(unlinkat, "remove temporary files"),
                call!(getdents64, "list the key directory"),
                call!(flock, "lock files against a second writer"),
                call!(fchmod, "mode 0600 on new files"),
                call!(ftruncate, "truncate a file being replaced"),
                call!(faccessat2, "the TPM library checks its files"),
                call!(socket, Rule::OneOf(0, &[libc::AF_UNIX as u64, libc::AF_INET as u64, libc::AF_INET6 as u64]), "the swtpm TCTI opens one TCP connection per TPM command (Landlock: the configured port only); never raw or packet sockets"),
                call!(connect, "connect to swtpm (Landlock: the configured port only)"),
                call!(setsockopt, "socket options the TPM library sets"),
                call!(mlock, "keep secrets out of swap"),
                call!(munlock, "unlock freed secret pages"),
                call!(getuid, "the TPM library reads the user id"),
                call!(geteuid, "the TPM library reads the user id"),
                call!(uname, "the TPM library's version checks"),
                #[cfg(target_arch = "x86_64")]
                call!(rename, "replace a file atomically"),
                #[cfg(target_arch = "x86_64")]
                call!(mkdir, "create the audit directory"),
                #[cfg(target_arch = "x86_64")]
                call!(unlink, "remove temporary files"),
                #[cfg(target_arch = "x86_64")]
                call!(access, "the TPM library checks its files"),
            ]);
            calls
        }
    }
}

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;

/// The two filters of `role`, in the order they are installed: `clone3` → `ENOSYS`, then the
/// allowlist with `SECCOMP_RET_KILL_PROCESS` for everything else.
pub(crate) fn filters(role: Role) -> Result<Vec<BpfProgram>, seccompiler::BackendError> {
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(sys::clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        ARCH,
    )?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for call in syscalls(role) {
        rules
            .entry(call.number)
            .or_default()
            .extend(call.rule.seccomp_rules()?);
    }
    let allowlist = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        ARCH,
    )?;
    Ok(vec![clone3.try_into()?, allowlist.try_into()?])
}

/// The allowlists as markdown tables, for docs/hardening.md.
pub fn policy_markdown() -> String {
    let mut out = String::new();
    for role in [Role::Keys, Role::Signal, Role::Media] {
        let calls = syscalls(role);
        out.push_str(&format!(
            "\n### `{role}` ({} system calls)\n\n",
            calls.len()
        ));
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

    #[test]
    fn lists_have_no_duplicates_and_no_dangerous_calls() {
        for role in [Role::Keys, Role::Signal, Role::Media] {
            let calls = syscalls(role);
            let mut names: Vec<&str> = calls.iter().map(|c| c.name).collect();
            names.sort_unstable();
            let before = names.len();
            names.dedup();
            assert_eq!(before, names.len(), "{role}: a call listed twice");
            for forbidden in [
                "execve",
                "execveat",
                "ptrace",
                "process_vm_readv",
                "mount",
                "bpf",
                "perf_event_open",
                "userfaultfd",
                "unshare",
                "setns",
                "init_module",
                "kexec_load",
                "keyctl",
                "io_uring_setup",
            ] {
                assert!(!names.contains(&forbidden), "{role} allows {forbidden}");
            }
            assert!(calls.iter().all(|c| !c.reason.is_empty()));
        }
        for worker in [Role::Signal, Role::Media] {
            let names: Vec<&str> = syscalls(worker).iter().map(|c| c.name).collect();
            for forbidden in ["openat", "socket", "connect", "bind", "listen"] {
                assert!(!names.contains(&forbidden), "{worker} allows {forbidden}");
            }
        }
        assert!(syscalls(Role::Supervisor).is_empty());
    }

    #[test]
    fn filters_compile_and_the_markdown_names_every_call() {
        for role in [Role::Keys, Role::Signal, Role::Media] {
            assert_eq!(filters(role).expect("filters").len(), 2);
        }
        let markdown = policy_markdown();
        assert!(markdown.contains("| `accept4` |"));
        assert!(markdown.contains("arg0 ∈ {AF_UNIX}"));
    }
}
