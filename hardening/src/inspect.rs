//! Reading a process's confinement from `/proc`, from outside: what `kammer selfcheck` shows
//! without taking the process's word for it. Reading another process's descriptors and
//! namespaces needs the right to ptrace-read it: root, for the appliance's non-dumpable
//! children.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// What kind of object a descriptor refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FdKind {
    /// A socket.
    Socket,
    /// A pipe.
    Pipe,
    /// An anonymous inode (eventfd, epoll, signalfd, …).
    AnonInode,
    /// A character or block device (`/dev/…`).
    Device,
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// Anything else.
    Other,
}

/// One open descriptor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpenFd {
    /// Its number.
    pub fd: i32,
    /// What `/proc/PID/fd/N` points to.
    pub target: String,
    /// Its kind.
    pub kind: FdKind,
}

/// A process as the kernel shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessFacts {
    /// The process.
    pub pid: i32,
    /// `Seccomp:` 0 off, 1 strict, 2 filter.
    pub seccomp_mode: u8,
    /// `Seccomp_filters:`.
    pub seccomp_filters: u32,
    /// `NoNewPrivs:`.
    pub no_new_privs: bool,
    /// Capability sets.
    pub cap_inheritable: u64,
    /// Capability sets.
    pub cap_permitted: u64,
    /// Capability sets.
    pub cap_effective: u64,
    /// Capability sets.
    pub cap_bounding: u64,
    /// Capability sets.
    pub cap_ambient: u64,
    /// Real, effective, saved and filesystem uid.
    pub uid: [u32; 4],
    /// Real, effective, saved and filesystem gid.
    pub gid: [u32; 4],
    /// Threads.
    pub threads: u32,
    /// `Max core file size`, soft and hard; `None` for unlimited.
    pub core_limit: (Option<u64>, Option<u64>),
    /// Open descriptors.
    pub open_fds: Vec<OpenFd>,
    /// Whether the process is dumpable, where that can be told from outside: a non-dumpable
    /// process's `/proc/PID` entries belong to root, which says something only when the process
    /// itself does not run as root.
    pub dumpable: Option<bool>,
    /// Namespace inodes by name (`mnt`, `ipc`, `net`, `pid`, `user`, `uts`).
    pub namespaces: BTreeMap<String, u64>,
}

/// `/proc` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// A file of `/proc/PID` could not be read (no such process, or no permission).
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A field was missing or malformed.
    #[error("/proc/{pid}: no usable {field}")]
    Field {
        /// The process.
        pid: i32,
        /// The field.
        field: &'static str,
    },
}

fn read(path: String) -> Result<String, InspectError> {
    std::fs::read_to_string(&path).map_err(|source| InspectError::Read { path, source })
}

/// Reads the facts of process `pid`.
pub fn inspect(pid: i32) -> Result<ProcessFacts, InspectError> {
    let status = read(format!("/proc/{pid}/status"))?;
    let field = |name: &'static str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .ok_or(InspectError::Field { pid, field: name })
    };
    let number = |name: &'static str| {
        field(name)?
            .parse::<u64>()
            .map_err(|_| InspectError::Field { pid, field: name })
    };
    let hex = |name: &'static str| {
        u64::from_str_radix(field(name)?, 16).map_err(|_| InspectError::Field { pid, field: name })
    };
    let ids = |name: &'static str| -> Result<[u32; 4], InspectError> {
        let values: Vec<u32> = field(name)?
            .split_whitespace()
            .filter_map(|value| value.parse().ok())
            .collect();
        values
            .try_into()
            .map_err(|_| InspectError::Field { pid, field: name })
    };
    let uid = ids("Uid")?;
    let limits = read(format!("/proc/{pid}/limits"))?;
    let core_limit = limits
        .lines()
        .find(|line| line.starts_with("Max core file size"))
        .map(|line| {
            let values: Vec<Option<u64>> = line["Max core file size".len()..]
                .split_whitespace()
                .take(2)
                .map(|value| value.parse().ok())
                .collect();
            (
                values.first().copied().flatten(),
                values.get(1).copied().flatten(),
            )
        })
        .ok_or(InspectError::Field {
            pid,
            field: "Max core file size",
        })?;
    let dumpable = (uid[1] != 0).then(|| {
        std::fs::metadata(format!("/proc/{pid}/status")).is_ok_and(|meta| meta.uid() != 0)
    });
    Ok(ProcessFacts {
        pid,
        seccomp_mode: number("Seccomp")? as u8,
        seccomp_filters: number("Seccomp_filters")? as u32,
        no_new_privs: number("NoNewPrivs")? == 1,
        cap_inheritable: hex("CapInh")?,
        cap_permitted: hex("CapPrm")?,
        cap_effective: hex("CapEff")?,
        cap_bounding: hex("CapBnd")?,
        cap_ambient: hex("CapAmb")?,
        uid,
        gid: ids("Gid")?,
        threads: number("Threads")? as u32,
        core_limit,
        open_fds: open_fds(pid)?,
        dumpable,
        namespaces: namespaces(pid),
    })
}

fn open_fds(pid: i32) -> Result<Vec<OpenFd>, InspectError> {
    let dir = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&dir).map_err(|source| InspectError::Read {
        path: dir.clone(),
        source,
    })?;
    let mut fds: Vec<OpenFd> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let fd = entry.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            let text = target.to_string_lossy().into_owned();
            let kind = if text.starts_with("socket:") {
                FdKind::Socket
            } else if text.starts_with("pipe:") {
                FdKind::Pipe
            } else if text.starts_with("anon_inode:") {
                FdKind::AnonInode
            } else {
                // The object itself, through the descriptor's link.
                match std::fs::metadata(entry.path()).map(|meta| meta.file_type()) {
                    Ok(kind) if kind.is_dir() => FdKind::Directory,
                    Ok(kind) if kind.is_file() => FdKind::File,
                    Ok(kind) if kind.is_char_device() || kind.is_block_device() => FdKind::Device,
                    Ok(kind) if kind.is_fifo() => FdKind::Pipe,
                    Ok(kind) if kind.is_socket() => FdKind::Socket,
                    _ => FdKind::Other,
                }
            };
            Some(OpenFd {
                fd,
                target: text,
                kind,
            })
        })
        .collect();
    fds.sort_by_key(|fd| fd.fd);
    Ok(fds)
}

fn namespaces(pid: i32) -> BTreeMap<String, u64> {
    ["mnt", "ipc", "net", "pid", "user", "uts"]
        .into_iter()
        .filter_map(|name| {
            let link = std::fs::read_link(format!("/proc/{pid}/ns/{name}")).ok()?;
            // "mnt:[4026531841]"
            let inode = link
                .to_str()?
                .split_once('[')?
                .1
                .trim_end_matches(']')
                .parse()
                .ok()?;
            Some((name.to_owned(), inode))
        })
        .collect()
}
