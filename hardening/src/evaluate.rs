//! Comparing a process's facts (from [`crate::inspect`]) and its own report (from
//! [`crate::enter`]) with the policy of its role, item by item, for `kammer selfcheck`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{
    Applied, FILTERS_PER_PROCESS, FdKind, LandlockEnforcement, OpenFd, ProcessFacts, Role,
};

/// What the policy expects of a process beyond its role's fixed items.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// The uid it must run as (real, effective, saved and filesystem).
    pub uid: Option<u32>,
    /// The gid it must run as.
    pub gid: Option<u32>,
    /// Regular files, directories and devices it may hold open lie beneath these paths (none
    /// for the workers; the state directory and the TPM device for the key manager).
    pub allowed_file_prefixes: Vec<PathBuf>,
    /// The namespaces of a reference process (the supervisor): the mount and IPC namespaces
    /// must differ from them. `None`: not checked.
    pub reference_namespaces: Option<BTreeMap<String, u64>>,
    /// Seccomp filters the process inherited from its parent (the supervisor's, and a service
    /// manager's): its own come on top, so that inherited filters alone do not pass.
    pub inherited_filters: u32,
}

/// One checked item.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    /// What was checked: `seccomp`, `no_new_privs`, `capabilities`, `uid/gid`, `core dumps`,
    /// `dumpable`, `landlock (self-reported)`, `namespaces`, `open files`.
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

/// Compares `facts` (and, for what the kernel does not show, the process's own `reported`
/// sandbox) with the policy of `role`. Every item is returned, agreeing or not.
pub fn evaluate(
    role: Role,
    facts: &ProcessFacts,
    reported: Option<&Applied>,
    expect: &Expected,
) -> Vec<Finding> {
    let mut findings = vec![
        finding(
            "seccomp",
            format!(
                "filter mode, {} filters ({} inherited + {FILTERS_PER_PROCESS} own)",
                expect.inherited_filters + FILTERS_PER_PROCESS,
                expect.inherited_filters
            ),
            format!(
                "mode {}, {} filters",
                facts.seccomp_mode, facts.seccomp_filters
            ),
            facts.seccomp_mode == 2
                && facts.seccomp_filters >= expect.inherited_filters + FILTERS_PER_PROCESS,
        ),
        finding(
            "no_new_privs",
            "1",
            u8::from(facts.no_new_privs).to_string(),
            facts.no_new_privs,
        ),
        capabilities(role, facts),
        ids(facts, expect),
        finding(
            "core dumps",
            "limit 0",
            match facts.core_limit {
                (Some(soft), Some(hard)) => format!("limit {soft}/{hard}"),
                (soft, hard) => format!(
                    "limit {}/{}",
                    soft.map_or("unlimited".to_owned(), |v| v.to_string()),
                    hard.map_or("unlimited".to_owned(), |v| v.to_string())
                ),
            },
            facts.core_limit == (Some(0), Some(0)),
        ),
        dumpable(facts, reported),
        landlock(role, reported),
    ];
    if let Some(reference) = &expect.reference_namespaces {
        let private: Vec<&str> = ["mnt", "ipc"]
            .into_iter()
            .filter(|name| facts.namespaces.get(*name) != reference.get(*name))
            .collect();
        findings.push(finding(
            "namespaces",
            "private mnt, ipc",
            if private.is_empty() {
                "shared with the reference process".to_owned()
            } else {
                format!("private {}", private.join(", "))
            },
            private.len() == 2,
        ));
    }
    findings.push(open_files(facts, expect));
    findings
}

fn capabilities(role: Role, facts: &ProcessFacts) -> Finding {
    let sets = [
        ("eff", facts.cap_effective),
        ("prm", facts.cap_permitted),
        ("inh", facts.cap_inheritable),
        ("amb", facts.cap_ambient),
        ("bnd", facts.cap_bounding),
    ];
    let actual = sets
        .iter()
        .map(|(name, value)| format!("{name} {value:x}"))
        .collect::<Vec<_>>()
        .join(", ");
    match role {
        // It keeps what its children need to switch ids; it passes nothing on by itself.
        Role::Supervisor => finding(
            "capabilities",
            "inheritable and ambient sets empty",
            actual,
            facts.cap_inheritable == 0 && facts.cap_ambient == 0,
        ),
        Role::Keys | Role::Signal | Role::Media => finding(
            "capabilities",
            "every set empty",
            actual,
            sets.iter().all(|(_, value)| *value == 0),
        ),
    }
}

fn ids(facts: &ProcessFacts, expect: &Expected) -> Finding {
    let matches = |actual: &[u32; 4], expected: Option<u32>| {
        expected.is_none_or(|expected| actual.iter().all(|id| *id == expected))
    };
    let show = |id: Option<u32>| id.map_or("unchanged".to_owned(), |id| id.to_string());
    let all = |ids: &[u32; 4]| {
        if ids.iter().all(|id| *id == ids[0]) {
            ids[0].to_string()
        } else {
            format!("{ids:?}")
        }
    };
    finding(
        "uid/gid",
        format!("{}/{}", show(expect.uid), show(expect.gid)),
        format!("{}/{}", all(&facts.uid), all(&facts.gid)),
        matches(&facts.uid, expect.uid) && matches(&facts.gid, expect.gid),
    )
}

fn dumpable(facts: &ProcessFacts, reported: Option<&Applied>) -> Finding {
    let (value, actual) = match (facts.dumpable, reported) {
        (Some(value), _) => (
            Some(value),
            format!("{} (from the ownership of /proc/PID)", u8::from(value)),
        ),
        (None, Some(applied)) => (
            Some(applied.dumpable),
            format!(
                "{} (self-reported: /proc cannot tell for a process running as uid 0)",
                u8::from(applied.dumpable)
            ),
        ),
        (None, None) => (None, "unknown".to_owned()),
    };
    finding("dumpable", "0", actual, value == Some(false))
}

fn landlock(role: Role, reported: Option<&Applied>) -> Finding {
    const ITEM: &str = "landlock (self-reported)";
    const WHY: &str = "the kernel does not show a process's Landlock domain";
    let expected = match role {
        Role::Supervisor => "not applied (its children need the filesystem to start)",
        Role::Keys | Role::Signal | Role::Media => "enforced",
    };
    match (role, reported) {
        (Role::Supervisor, _) => finding(ITEM, expected, "not checked", true),
        (_, Some(applied)) => finding(
            ITEM,
            expected,
            format!(
                "{} (ABI {}; {WHY})",
                applied.landlock.status, applied.landlock.abi
            ),
            applied.landlock.status == LandlockEnforcement::Enforced,
        ),
        (_, None) => finding(ITEM, expected, format!("no sandbox report ({WHY})"), false),
    }
}

fn open_files(facts: &ProcessFacts, expect: &Expected) -> Finding {
    let allowed = |fd: &OpenFd| {
        expect
            .allowed_file_prefixes
            .iter()
            .any(|prefix| Path::new(&fd.target).starts_with(prefix))
    };
    let unexpected: Vec<&OpenFd> = facts
        .open_fds
        .iter()
        // 0–2 are the standard streams the appliance was started with (a terminal, /dev/null,
        // a pipe, the journal, a log file): inherited, not opened by the process.
        .filter(|fd| fd.fd > 2)
        .filter(|fd| match fd.kind {
            FdKind::File | FdKind::Directory | FdKind::Device | FdKind::Other => !allowed(fd),
            FdKind::Socket | FdKind::Pipe | FdKind::AnonInode => false,
        })
        .collect();
    let expected = if expect.allowed_file_prefixes.is_empty() {
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
    };
    let actual = if unexpected.is_empty() {
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
    };
    finding("open files", expected, actual, unexpected.is_empty())
}
