//! Reading another process's confinement from `/proc`, and comparing it with the policy.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::{Applied, Role};

/// What kind of object a descriptor refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpenFd {
    /// Its number.
    pub fd: i32,
    /// What `/proc/PID/fd/N` points to.
    pub target: String,
    /// Its kind.
    pub kind: FdKind,
}

/// A process as the kernel shows it.
#[derive(Debug, Clone, serde::Serialize)]
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
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A field was missing or malformed.
    #[error("/proc/{pid}/status: no usable {field}")]
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
            } else if text.starts_with("/dev/") {
                FdKind::Device
            } else {
                match std::fs::metadata(entry.path()) {
                    Ok(meta) if meta.is_dir() => FdKind::Directory,
                    Ok(meta) if meta.is_file() => FdKind::File,
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

/// What the policy expects of a process beyond its role's fixed items.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// The uid it must run as.
    pub uid: Option<u32>,
    /// The gid it must run as.
    pub gid: Option<u32>,
    /// Regular files and directories it may hold open lie beneath these paths (none for the
    /// workers).
    pub allowed_file_prefixes: Vec<PathBuf>,
    /// The supervisor's namespaces: the mount and IPC namespaces must differ from them.
    pub reference_namespaces: Option<BTreeMap<String, u64>>,
}

/// One checked item.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    /// What was checked.
    pub item: String,
    /// What the policy wants.
    pub expected: String,
    /// What was found.
    pub actual: String,
    /// Whether they agree.
    pub ok: bool,
}

fn finding(
    item: &str,
    expected: impl Into<String>,
    actual: impl Into<String>,
    ok: bool,
) -> Finding {
    Finding {
        item: item.to_owned(),
        expected: expected.into(),
        actual: actual.into(),
        ok,
    }
}

/// Compares a process's facts (and its own report, for what the kernel does not show) with
/// the policy of `role`.
pub fn evaluate(
    role: Role,
    facts: &ProcessFacts,
    reported: Option<&Applied>,
    expect: &Expected,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let filters = if role == Role::Supervisor { 0 } else { 2 };
    findings.push(finding(
        "seccomp",
        format!("filter mode, {filters} filters"),
        format!(
            "mode {}, {} filters",
            facts.seccomp_mode, facts.seccomp_filters
        ),
        facts.seccomp_mode == 2 && facts.seccomp_filters >= filters,
    ));
    findings.push(finding(
        "no_new_privs",
        "1",
        u8::from(facts.no_new_privs).to_string(),
        facts.no_new_privs,
    ));
    let sets = [
        ("eff", facts.cap_effective),
        ("prm", facts.cap_permitted),
        ("inh", facts.cap_inheritable),
        ("amb", facts.cap_ambient),
        ("bnd", facts.cap_bounding),
    ];
    findings.push(finding(
        "capabilities",
        "every set empty",
        sets.iter()
            .map(|(name, value)| format!("{name} {value:x}"))
            .collect::<Vec<_>>()
            .join(", "),
        sets.iter().all(|(_, value)| *value == 0),
    ));
    let ids_match = |actual: &[u32; 4], expected: Option<u32>| {
        expected.is_none_or(|expected| actual.iter().all(|id| *id == expected))
    };
    findings.push(finding(
        "uid/gid",
        match (expect.uid, expect.gid) {
            (Some(uid), Some(gid)) => format!("{uid}/{gid}"),
            _ => "unchanged".to_owned(),
        },
        format!("{}/{}", facts.uid[1], facts.gid[1]),
        ids_match(&facts.uid, expect.uid) && ids_match(&facts.gid, expect.gid),
    ));
    findings.push(finding(
        "core dumps",
        "limit 0",
        match facts.core_limit {
            (Some(soft), Some(hard)) => format!("limit {soft}/{hard}"),
            _ => "unlimited".to_owned(),
        },
        facts.core_limit == (Some(0), Some(0)),
    ));
    let dumpable = facts.dumpable.or(reported.map(|applied| applied.dumpable));
    findings.push(finding(
        "dumpable",
        "0",
        match (facts.dumpable, reported) {
            (Some(value), _) => format!("{} (from /proc ownership)", u8::from(value)),
            (None, Some(applied)) => format!("{} (self-reported)", u8::from(applied.dumpable)),
            (None, None) => "unknown".to_owned(),
        },
        dumpable == Some(false),
    ));
    findings.push(match reported {
        Some(applied) => finding(
            "landlock (self-reported)",
            "enforced",
            format!("{} (ABI {})", applied.landlock.status, applied.landlock.abi),
            applied.landlock.status == "enforced",
        ),
        None => finding(
            "landlock (self-reported)",
            "enforced",
            "no sandbox report",
            false,
        ),
    });
    if let Some(reference) = &expect.reference_namespaces {
        let private: Vec<&str> = ["mnt", "ipc"]
            .into_iter()
            .filter(|name| facts.namespaces.get(*name) != reference.get(*name))
            .collect();
        findings.push(finding(
            "namespaces",
            "private mnt, ipc",
            if private.is_empty() {
                "shared with the supervisor".to_owned()
            } else {
                format!("private {}", private.join(", "))
            },
            private.len() == 2,
        ));
    }
    let unexpected: Vec<&OpenFd> = facts
        .open_fds
        .iter()
        // 0–2 are the standard streams the appliance was started with (a terminal, a pipe,
        // the journal, a log file): inherited, not opened by the process.
        .filter(|fd| fd.fd > 2)
        .filter(|fd| match fd.kind {
            FdKind::File | FdKind::Directory | FdKind::Device | FdKind::Other => !expect
                .allowed_file_prefixes
                .iter()
                .any(|prefix| Path::new(&fd.target).starts_with(prefix)),
            FdKind::Socket | FdKind::Pipe | FdKind::AnonInode => false,
        })
        .collect();
    findings.push(finding(
        "open files",
        if expect.allowed_file_prefixes.is_empty() {
            "sockets, pipes and event descriptors only".to_owned()
        } else {
            format!(
                "files beneath {} only",
                expect
                    .allowed_file_prefixes
                    .iter()
                    .map(|path| path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        if unexpected.is_empty() {
            format!(
                "{} descriptors, none outside the allowance",
                facts.open_fds.len()
            )
        } else {
            unexpected
                .iter()
                .map(|fd| format!("{}: {}", fd.fd, fd.target))
                .collect::<Vec<_>>()
                .join(", ")
        },
        unexpected.is_empty(),
    ));
    findings
}
