//! Test builds only (feature `test-hooks`): make the calling process attempt what its sandbox
//! forbids, as an attacker who had taken over a parser would. Each attempt is a real system
//! call; under the sandbox the process does not survive it.

use std::str::FromStr;

/// A forbidden action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// `execve("/bin/true")`.
    Execve,
    /// `open("/etc/passwd")`.
    OpenFile,
    /// `socket(AF_PACKET, SOCK_RAW, 0)`.
    PacketSocket,
    /// `ptrace(PTRACE_ATTACH)`, on the process's own id: the filter stops the call whatever
    /// its target, and unsandboxed the call fails harmlessly (a process cannot trace itself),
    /// where attaching to the parent (the supervisor) would stop it. The id comes from
    /// `getpid`, which every role may call, so that the `ptrace` call itself is what is
    /// stopped (`getppid` is not allowed and would be stopped first).
    Ptrace,
}

impl FromStr for Violation {
    type Err = UnknownViolation;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "execve" => Ok(Self::Execve),
            "open-file" => Ok(Self::OpenFile),
            "packet-socket" => Ok(Self::PacketSocket),
            "ptrace" => Ok(Self::Ptrace),
            _ => Err(UnknownViolation),
        }
    }
}

/// A name that is not a [`Violation`].
#[derive(Debug, thiserror::Error)]
#[error("not a violation: use execve, open-file, packet-socket or ptrace")]
pub struct UnknownViolation;

/// Attempts `violation`. Returns only if the system call returned (no sandbox, or a denial).
pub fn attempt(violation: Violation) -> std::io::Result<()> {
    match violation {
        Violation::Execve => {
            let program = c"/bin/true";
            nix::unistd::execv(program, &[program]).map(drop)?;
        }
        Violation::OpenFile => {
            std::fs::File::open("/etc/passwd")?;
        }
        Violation::PacketSocket => {
            let socket = nix::sys::socket::socket(
                nix::sys::socket::AddressFamily::Packet,
                nix::sys::socket::SockType::Raw,
                nix::sys::socket::SockFlag::empty(),
                None,
            )?;
            drop(socket);
        }
        Violation::Ptrace => {
            nix::sys::ptrace::attach(nix::unistd::getpid())?;
        }
    }
    Ok(())
}
