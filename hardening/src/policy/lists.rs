//! The allowlists themselves: one function per role, an exhaustive match in [`syscalls`].
//!
//! Legacy calls that only x86_64 has (`poll`, `epoll_wait`, `rename`, `mkdir`, …) are listed
//! for it alone: glibc uses them there and their `*at` successors elsewhere.

use super::{Rule, Syscall};
use crate::Role;

/// `call!(SYS_name, [rule,] "reason")`: one allowed call under its libc number.
macro_rules! call {
    ($sys:ident, $rule:expr, $reason:literal) => {
        Syscall {
            // "SYS_read" → "read"
            name: {
                let full: &'static str = stringify!($sys);
                match full.strip_prefix("SYS_") {
                    Some(name) => name,
                    None => full,
                }
            },
            number: libc::$sys as i64,
            reason: $reason,
            rule: $rule,
        }
    };
    ($sys:ident, $reason:literal) => {
        call!($sys, Rule::Always, $reason)
    };
}

/// The allowlist of `role`.
pub fn syscalls(role: Role) -> Vec<Syscall> {
    match role {
        Role::Supervisor => supervisor(),
        Role::Keys => {
            let mut calls = runtime();
            calls.extend(keys());
            calls
        }
        Role::Signal => {
            let mut calls = runtime();
            calls.extend([
                call!(
                    SYS_accept4,
                    "accept TLS connections on the listener the supervisor bound"
                ),
                call!(
                    SYS_setsockopt,
                    Rule::SockoptLevels(&[libc::SOL_SOCKET, libc::IPPROTO_TCP]),
                    "`TCP_NODELAY` and keep-alive on accepted connections"
                ),
            ]);
            calls
        }
        Role::Media => runtime(),
    }
}

/// What every sandboxed process needs: the Rust and C runtime (memory, threads, signals,
/// time, randomness), the tokio event loop, and I/O on descriptors it already holds.
fn runtime() -> Vec<Syscall> {
    vec![
        // Memory.
        call!(SYS_brk, "the allocator's heap"),
        call!(
            SYS_mmap,
            Rule::NoExecutableMemory,
            "the allocator, thread stacks, signal stacks; never executable memory"
        ),
        call!(
            SYS_mprotect,
            Rule::NoExecutableMemory,
            "guard pages of thread stacks and malloc arenas; never executable memory"
        ),
        call!(SYS_munmap, "give memory back"),
        call!(SYS_mremap, "grow large allocations"),
        call!(
            SYS_madvise,
            "the allocator and thread exit return free pages"
        ),
        // Threads.
        call!(
            SYS_clone,
            Rule::CloneThreadOnly,
            "start threads (runtime workers, blocking pool); never processes or namespaces"
        ),
        call!(
            SYS_clone3,
            "answered `ENOSYS` by the first filter (its flags cannot be checked), so that glibc falls back to `clone`"
        ),
        call!(SYS_set_robust_list, "thread start-up in glibc"),
        call!(SYS_rseq, "thread start-up in glibc (restartable sequences)"),
        call!(
            SYS_futex,
            "locks, condition variables, parking and joining threads"
        ),
        call!(SYS_sched_yield, "spinning locks and the runtime's yield"),
        call!(
            SYS_sched_getaffinity,
            "glibc sizes malloc's arenas by the CPUs it may use"
        ),
        call!(SYS_getpid, "the process id, for logs"),
        call!(SYS_gettid, "thread ids, for logs and thread-local state"),
        call!(SYS_exit, "end a thread"),
        call!(SYS_exit_group, "end the process"),
        call!(
            SYS_tgkill,
            Rule::OwnProcessOnly,
            "`abort()` raises `SIGABRT` in its own process, no other"
        ),
        call!(
            SYS_prctl,
            Rule::PrctlOptions(&[libc::PR_SET_NAME, libc::PR_GET_NAME]),
            "name threads (shown by ps and in logs)"
        ),
        // Signals.
        call!(
            SYS_rt_sigaction,
            "signal handlers of the runtime and of Rust's stack-overflow guard"
        ),
        call!(SYS_rt_sigprocmask, "signal masks around thread creation"),
        call!(SYS_rt_sigreturn, "return from a signal handler"),
        call!(
            SYS_sigaltstack,
            "the per-thread signal stack of Rust's stack-overflow guard"
        ),
        call!(
            SYS_restart_syscall,
            "resume a wait that a signal interrupted"
        ),
        // Time and randomness.
        call!(SYS_clock_gettime, "time, where the vDSO does not answer"),
        call!(SYS_clock_nanosleep, "sleep"),
        call!(SYS_nanosleep, "sleep"),
        call!(
            SYS_getrandom,
            "the kernel's random source (keys, nonces, ICE credentials, hash seeds)"
        ),
        // The event loop.
        call!(SYS_epoll_create1, "the runtime's event loop"),
        call!(SYS_epoll_ctl, "register descriptors with the event loop"),
        #[cfg(target_arch = "x86_64")]
        call!(SYS_epoll_wait, "wait for events"),
        call!(SYS_epoll_pwait, "wait for events"),
        call!(SYS_epoll_pwait2, "wait for events"),
        call!(SYS_eventfd2, "wake the event loop from another thread"),
        #[cfg(target_arch = "x86_64")]
        call!(
            SYS_poll,
            "wait on a few descriptors (the key manager's loop, blocking IPC)"
        ),
        call!(SYS_ppoll, "wait on a few descriptors"),
        // Descriptors held since start.
        call!(
            SYS_read,
            "read from sockets, pipes and the runtime's eventfd"
        ),
        call!(
            SYS_write,
            "write to sockets, to stderr (the log) and to the runtime's eventfd"
        ),
        call!(SYS_readv, "vectored reads (TLS records, HTTP)"),
        call!(SYS_writev, "vectored writes (TLS records, HTTP, the log)"),
        call!(SYS_close, "close connections and descriptors"),
        call!(
            SYS_fcntl,
            Rule::FcntlCommands(&[
                libc::F_GETFD,
                libc::F_SETFD,
                libc::F_GETFL,
                libc::F_SETFL,
                libc::F_DUPFD_CLOEXEC,
            ]),
            "descriptor flags (non-blocking, close-on-exec) and close-on-exec duplicates; never \
             `F_SETOWN`/`F_SETSIG`, through which one worker could have the kernel signal another"
        ),
        call!(
            SYS_ioctl,
            Rule::IoctlRequests(&[libc::FIONBIO, libc::FIOCLEX]),
            "make a descriptor non-blocking or close-on-exec"
        ),
        call!(
            SYS_socketpair,
            Rule::SocketKinds {
                families: &[libc::AF_UNIX],
                types: &[libc::SOCK_STREAM]
            },
            "tokio's signal driver makes a connected pair of Unix sockets; reaches nothing outside"
        ),
        call!(SYS_recvfrom, "receive on sockets held since start"),
        call!(SYS_sendto, "send on sockets held since start"),
        call!(
            SYS_recvmsg,
            "receive, also descriptors (`SCM_RIGHTS`) from the supervisor"
        ),
        call!(
            SYS_sendmsg,
            "send, also UDP with segmentation offload (`UDP_SEGMENT`) and frames to other processes"
        ),
        call!(SYS_getsockopt, "socket errors (`SO_ERROR`)"),
        call!(SYS_getsockname, "the local address of a held socket"),
        call!(
            SYS_getpeername,
            "the peer address of a connection, for limits and logs"
        ),
        call!(SYS_shutdown, "close one direction of a connection"),
    ]
}

/// The key manager beyond the runtime: its files (Landlock: the state directory and the TPM
/// device only), the swtpm connection (Landlock: the configured ports only), locked pages.
fn keys() -> Vec<Syscall> {
    vec![
        call!(
            SYS_openat,
            "key blobs, the sealed secret, the audit log, the TPM device (Landlock confines it)"
        ),
        call!(SYS_newfstatat, "file metadata in the state directory"),
        call!(SYS_fstat, "file metadata of an open file"),
        call!(SYS_statx, "file metadata in the state directory"),
        call!(SYS_lseek, "positions in open files"),
        call!(SYS_pread64, "read key blobs"),
        call!(SYS_pwrite64, "write key blobs"),
        call!(
            SYS_fsync,
            "make audit records and key blobs durable (files and their directory)"
        ),
        call!(SYS_fdatasync, "make audit records durable"),
        call!(SYS_ftruncate, "truncate a file being replaced"),
        call!(SYS_renameat, "replace a file atomically"),
        call!(SYS_renameat2, "replace a file atomically"),
        #[cfg(target_arch = "x86_64")]
        call!(SYS_rename, "replace a file atomically"),
        call!(SYS_mkdirat, "create the audit and key directories"),
        #[cfg(target_arch = "x86_64")]
        call!(SYS_mkdir, "create the audit and key directories"),
        call!(SYS_unlinkat, "remove temporary files"),
        #[cfg(target_arch = "x86_64")]
        call!(SYS_unlink, "remove temporary files"),
        call!(SYS_getdents64, "list the key directory"),
        call!(SYS_flock, "lock files against a second writer"),
        call!(SYS_fchmod, "mode 0600 on new files"),
        call!(SYS_fchmodat, "mode 0700 on the state directories"),
        #[cfg(target_arch = "x86_64")]
        call!(SYS_chmod, "mode 0700 on the state directories"),
        call!(SYS_faccessat2, "the TPM library checks its files"),
        #[cfg(target_arch = "x86_64")]
        call!(SYS_access, "the TPM library checks its files"),
        call!(
            SYS_socket,
            Rule::SocketKinds {
                families: &[libc::AF_INET, libc::AF_INET6],
                types: &[libc::SOCK_STREAM]
            },
            "the swtpm TCTI opens one TCP connection per TPM command; never raw, packet or Unix sockets"
        ),
        call!(
            SYS_connect,
            "connect to swtpm (Landlock: the configured ports only)"
        ),
        call!(
            SYS_setsockopt,
            Rule::SockoptLevels(&[libc::SOL_SOCKET, libc::IPPROTO_TCP]),
            "socket options of the TPM connection"
        ),
        call!(SYS_mlock, "keep secret pages out of swap"),
        call!(SYS_munlock, "unlock secret pages when they are freed"),
        // Read-only queries kept from the traces of the TPM path over the system tests.
        call!(SYS_getuid, "the TPM library reads the user id"),
        call!(SYS_geteuid, "the TPM library reads the user id"),
        call!(SYS_uname, "the TPM library's version checks"),
    ]
}

/// The supervisor's filter (looser: it is the privileged parent). A filter is inherited
/// through `fork` and `execve` and the kernel applies every filter of a process, so this list
/// also covers every child: its start-up until its own filters are in force (the dynamic
/// loader, reading the configuration, the TPM context, the steps of [`crate::enter`]) and,
/// after that, everything the child's own list allows. The supervisor's own entries come
/// first; every worker call it does not list itself is added after them.
fn supervisor() -> Vec<Syscall> {
    let mut calls = supervisor_own();
    for role in [Role::Keys, Role::Signal, Role::Media] {
        for call in syscalls(role) {
            if !calls.iter().any(|own| own.name == call.name) {
                calls.push(call);
            }
        }
    }
    calls
}

/// What the supervisor lists itself, where it needs more than the workers or differs from
/// them.
fn supervisor_own() -> Vec<Syscall> {
    vec![
        // Looser than the workers' rules.
        call!(
            SYS_mmap,
            "the dynamic loader maps the code of a starting child"
        ),
        call!(
            SYS_mprotect,
            "the dynamic loader protects the code and relocations of a starting child"
        ),
        call!(
            SYS_clone,
            Rule::CloneNoNamespaces,
            "fork the children (and threads); namespaces only through `unshare` below"
        ),
        call!(
            SYS_tgkill,
            "`abort()` in the supervisor or in a starting child, whose id the filter cannot know"
        ),
        call!(
            SYS_prctl,
            Rule::PrctlOptions(&[
                libc::PR_SET_NAME,
                libc::PR_GET_NAME,
                libc::PR_SET_DUMPABLE,
                libc::PR_GET_DUMPABLE,
                libc::PR_SET_NO_NEW_PRIVS,
                libc::PR_GET_NO_NEW_PRIVS,
                libc::PR_CAPBSET_READ,
                libc::PR_CAPBSET_DROP,
                libc::PR_CAP_AMBIENT,
                libc::PR_SET_PDEATHSIG,
            ]),
            "thread names; the children's sandbox steps (dumpable, no_new_privs, capability sets)"
        ),
        // The children.
        call!(SYS_execve, "re-execute the binary as a child role"),
        call!(SYS_wait4, "wait for a child to end"),
        call!(SYS_waitid, "wait for a child to end"),
        call!(SYS_kill, "forward SIGTERM to the children"),
        call!(
            SYS_rt_sigtimedwait,
            "`sigwait` for SIGTERM, SIGINT and SIGCHLD"
        ),
        call!(SYS_pipe2, "the exec-error pipe of `std::process::Command`"),
        #[cfg(target_arch = "x86_64")]
        call!(SYS_dup2, "a child's standard streams, set up before exec"),
        call!(SYS_dup3, "a child's standard streams, set up before exec"),
        // Start-up of an executed image (loader, glibc, std).
        #[cfg(target_arch = "x86_64")]
        call!(SYS_arch_prctl, "the dynamic loader sets the thread pointer"),
        call!(SYS_set_tid_address, "glibc start-up"),
        call!(SYS_prlimit64, "read and set resource limits"),
        call!(
            SYS_readlinkat,
            "the path of the running binary (`/proc/self/exe`)"
        ),
        #[cfg(target_arch = "x86_64")]
        call!(
            SYS_readlink,
            "the path of the running binary (`/proc/self/exe`)"
        ),
        // Files: the status file; the libraries, configuration, key files and TPM of a child
        // before its own sandbox (whose Landlock domain then confines it).
        call!(
            SYS_openat,
            "the status file; libraries, configuration and state of starting children"
        ),
        call!(SYS_newfstatat, "file metadata"),
        call!(SYS_fstat, "file metadata"),
        call!(SYS_statx, "file metadata"),
        call!(SYS_lseek, "positions in open files"),
        call!(SYS_pread64, "the dynamic loader reads ELF headers"),
        call!(SYS_pwrite64, "write at a position"),
        call!(SYS_getdents64, "list directories (`/proc/self/task`)"),
        call!(SYS_fsync, "make the status file durable"),
        call!(SYS_fdatasync, "make files durable"),
        call!(SYS_ftruncate, "truncate a file being replaced"),
        call!(SYS_renameat, "replace the status file atomically"),
        call!(SYS_renameat2, "replace the status file atomically"),
        #[cfg(target_arch = "x86_64")]
        call!(SYS_rename, "replace the status file atomically"),
        call!(SYS_mkdirat, "create the runtime directory"),
        #[cfg(target_arch = "x86_64")]
        call!(SYS_mkdir, "create the runtime directory"),
        call!(SYS_unlinkat, "remove temporary files"),
        #[cfg(target_arch = "x86_64")]
        call!(SYS_unlink, "remove temporary files"),
        call!(SYS_fchmod, "modes of new files"),
        call!(SYS_fchmodat, "modes of new directories"),
        #[cfg(target_arch = "x86_64")]
        call!(SYS_chmod, "modes of new directories"),
        call!(SYS_flock, "lock files"),
        call!(
            SYS_faccessat2,
            "the dynamic loader and libraries check files"
        ),
        #[cfg(target_arch = "x86_64")]
        call!(SYS_access, "the dynamic loader checks `/etc/ld.so.preload`"),
        // Sockets: the ports, the control links, swtpm for a starting key manager.
        call!(
            SYS_socket,
            Rule::SocketKinds {
                families: &[libc::AF_UNIX, libc::AF_INET, libc::AF_INET6],
                types: &[libc::SOCK_STREAM, libc::SOCK_DGRAM]
            },
            "the TCP and UDP ports, swtpm connections; never raw or packet sockets"
        ),
        call!(SYS_bind, "bind the TCP and UDP ports"),
        call!(SYS_listen, "listen on the TCP port"),
        call!(SYS_connect, "swtpm, for a starting key manager"),
        call!(
            SYS_setsockopt,
            Rule::SockoptLevels(&[
                libc::SOL_SOCKET,
                libc::IPPROTO_TCP,
                libc::IPPROTO_UDP,
                libc::IPPROTO_IP,
                libc::IPPROTO_IPV6,
            ]),
            "address reuse, buffer sizes, v6-only"
        ),
        call!(
            SYS_ioctl,
            Rule::IoctlRequests(&[
                libc::FIONBIO,
                libc::FIOCLEX,
                libc::FIONCLEX,
                libc::TCGETS,
                libc::TIOCGWINSZ,
            ]),
            "non-blocking and close-on-exec flags; is stderr a terminal (log colours)"
        ),
        call!(SYS_mlock, "a starting key manager locks its secret pages"),
        call!(SYS_munlock, "unlock secret pages"),
        // The steps of `enter` in a starting child.
        call!(
            SYS_unshare,
            Rule::UnshareWithin(
                (libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUSER) as u64
            ),
            "a child's private mount and IPC namespaces (through a user namespace when unprivileged)"
        ),
        call!(SYS_getuid, "a child's current ids"),
        call!(SYS_geteuid, "a child's current ids"),
        call!(SYS_getgid, "a child's current ids"),
        call!(SYS_getegid, "a child's current ids"),
        call!(SYS_getresuid, "a child checks its switch of ids"),
        call!(SYS_getresgid, "a child checks its switch of ids"),
        call!(SYS_setgroups, "a child clears its supplementary groups"),
        call!(SYS_setresgid, "a child switches to its group"),
        call!(SYS_setresuid, "a child switches to its user"),
        call!(SYS_capget, "a child reads its capabilities"),
        call!(SYS_capset, "a child empties its capability sets"),
        call!(SYS_landlock_create_ruleset, "a child's Landlock ruleset"),
        call!(SYS_landlock_add_rule, "a child's Landlock ruleset"),
        call!(SYS_landlock_restrict_self, "a child's Landlock ruleset"),
        call!(SYS_seccomp, "a child installs its own filters"),
    ]
}
