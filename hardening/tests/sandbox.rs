//! Each role's sandbox, tested per rule in a child process: a filter cannot be removed, so the
//! test binary runs itself again as the sandboxed child. Allowed work goes on (threads, the
//! tokio runtimes the workers use, their socket calls, the key manager's files); each
//! forbidden call kills the child with SIGSYS; Landlock denies files and TCP ports outside the
//! allowance; the supervisor's filter lets children start and enter their own sandboxes; and
//! `inspect` / `evaluate` see from outside what is in force.
//!
//! A plain `main` (`harness = false`): the libtest harness runs tests on threads, and a sandbox
//! is entered only by a process that has one.

#[path = "sandbox/child.rs"]
mod child;

use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use kammer_hardening::{Applied, Expected, LandlockEnforcement, Role, Sandbox, evaluate, inspect};

/// Tells the re-run test binary which child to be: `ROLE:ACTION`.
const CHILD: &str = "KAMMER_HARDENING_CHILD";
/// The directory a child may use (Landlock: read and write beneath it).
const DIR: &str = "KAMMER_HARDENING_DIR";
/// The ids a sandboxed child switches to when the tests run as root.
const NOBODY: (u32, u32) = (65534, 65534);

fn root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

fn sandbox(role: Role, dir: Option<&Path>, tcp_connect: Vec<u16>) -> Sandbox {
    Sandbox {
        role,
        user: root().then_some(NOBODY),
        read_write: dir.map(Path::to_owned).into_iter().collect(),
        read_only: Vec::new(),
        tcp_connect,
        private_namespaces: true,
        max_open_files: 1024,
    }
}

fn command(spec: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command.env(CHILD, spec).stdout(Stdio::null());
    command
}

/// Runs this test binary as the child `spec` (with the directory of the environment, if any).
fn run(spec: &str) -> ExitStatus {
    command(spec).status().expect("run the child")
}

fn run_in(spec: &str, dir: &Path) -> ExitStatus {
    command(spec).env(DIR, dir).status().expect("run the child")
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        child::child(&spec);
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let tests: &[(&str, fn())] = &[
        (
            "workers_go_on_with_their_work_and_die_on_every_forbidden_call",
            workers_go_on_with_their_work_and_die_on_every_forbidden_call,
        ),
        (
            "argument_rules_stop_processes_executable_memory_and_other_sockets",
            argument_rules_stop_processes_executable_memory_and_other_sockets,
        ),
        (
            "landlock_confines_the_key_manager_to_its_directory_and_ports",
            landlock_confines_the_key_manager_to_its_directory_and_ports,
        ),
        (
            "children_start_and_enter_their_sandboxes_under_the_supervisor_filter",
            children_start_and_enter_their_sandboxes_under_the_supervisor_filter,
        ),
        (
            "inspect_and_evaluate_see_the_sandbox_from_outside",
            inspect_and_evaluate_see_the_sandbox_from_outside,
        ),
        (
            "an_unprivileged_process_gets_its_namespaces_through_a_user_namespace",
            an_unprivileged_process_gets_its_namespaces_through_a_user_namespace,
        ),
        (
            "enter_refuses_a_process_with_threads",
            enter_refuses_a_process_with_threads,
        ),
    ];
    let mut failed = Vec::new();
    let mut passed = 0;
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        match std::panic::catch_unwind(test) {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    if failed.is_empty() {
        println!("test result: ok. {passed} passed");
    } else {
        println!(
            "test result: FAILED. {passed} passed; {} failed: {}",
            failed.len(),
            failed.join(", ")
        );
        std::process::exit(101);
    }
}

fn workers_go_on_with_their_work_and_die_on_every_forbidden_call() {
    let dir = tempfile::tempdir().expect("temp dir");
    for role in ["signal", "media", "keys"] {
        let status = run_in(&format!("{role}:work"), dir.path());
        assert_eq!(
            status.code(),
            Some(0),
            "{role}: allowed work failed: {status}"
        );
        for violation in ["execve", "open-file", "packet-socket", "ptrace"] {
            if role == "keys" && violation == "open-file" {
                continue; // the key manager opens files; Landlock confines it (next test)
            }
            let status = run_in(&format!("{role}:{violation}"), dir.path());
            assert_eq!(
                status.signal(),
                Some(libc::SIGSYS),
                "{role}: {violation} was not killed by seccomp: {status}"
            );
        }
    }
}

fn argument_rules_stop_processes_executable_memory_and_other_sockets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cases = Vec::new();
    for role in ["signal", "media", "keys"] {
        cases.extend([
            (role, "fork", libc::SIGSYS),
            (role, "exec-memory", libc::SIGSYS),
            (role, "unix-socket", libc::SIGSYS),
            (role, "abort", libc::SIGABRT),
        ]);
    }
    cases.extend([
        ("keys", "udp-socket", libc::SIGSYS),
        ("keys", "raw-socket", libc::SIGSYS),
        ("media", "udp-socket", libc::SIGSYS),
    ]);
    for (role, action, signal) in cases {
        let status = run_in(&format!("{role}:{action}"), dir.path());
        assert_eq!(status.signal(), Some(signal), "{role}: {action}: {status}");
    }
}

fn landlock_confines_the_key_manager_to_its_directory_and_ports() {
    let dir = tempfile::tempdir().expect("temp dir");
    let code = |action: &str| run_in(&format!("keys:{action}"), dir.path()).code();
    assert_eq!(code("write-inside"), Some(0));
    assert_eq!(
        code("read-outside"),
        Some(3),
        "a file outside the state directory is denied (EACCES), not read"
    );
    assert_eq!(code("open-file"), Some(3), "/etc/passwd is denied");
    assert_eq!(
        code("connect-allowed"),
        Some(0),
        "the swtpm port is allowed"
    );
    assert_eq!(
        code("connect-denied"),
        Some(3),
        "any other TCP port is denied (EACCES)"
    );
    // The workers: no file at all, not even in a directory they are given nothing for.
    assert_eq!(run("signal:read-outside").signal(), Some(libc::SIGSYS));
}

fn children_start_and_enter_their_sandboxes_under_the_supervisor_filter() {
    let dir = tempfile::tempdir().expect("temp dir");
    let status = run_in("supervisor:start-children", dir.path());
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(dir.path().join("run/status.json").exists());
    for violation in ["ptrace", "packet-socket"] {
        let status = run(&format!("supervisor:{violation}"));
        assert_eq!(status.signal(), Some(libc::SIGSYS), "{violation}: {status}");
    }
}

/// Starts the child `spec` that reports on stdout and then waits for stdin to close.
fn waiting(spec: &str, dir: Option<&Path>) -> (std::process::Child, Option<Applied>) {
    let mut command = command(spec);
    if let Some(dir) = dir {
        command.env(DIR, dir);
    }
    spawn_waiting(command)
}

/// Starts a waiting child (see [`waiting`]) from a prepared command; returns its report.
fn spawn_waiting(mut command: Command) -> (std::process::Child, Option<Applied>) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("child");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("report");
    let applied = serde_json::from_str::<Applied>(&line).ok();
    (child, applied)
}

fn finish(mut child: std::process::Child) {
    drop(child.stdin.take());
    assert!(child.wait().expect("wait").success());
}

fn inspect_and_evaluate_see_the_sandbox_from_outside() {
    let own = inspect(std::process::id() as i32).expect("inspect self");
    // Descriptors this test process was started with (not close-on-exec) reach the children
    // too: they are the environment's, not the child's doing.
    let inherited = |facts: &mut kammer_hardening::ProcessFacts| {
        facts.open_fds.retain(|fd| {
            !own.open_fds
                .iter()
                .any(|o| o.fd == fd.fd && o.target == fd.target)
        });
    };
    let expected = |prefixes: Vec<PathBuf>| Expected {
        uid: root().then_some(NOBODY.0),
        gid: root().then_some(NOBODY.1),
        allowed_file_prefixes: prefixes,
        reference_namespaces: root().then(|| own.namespaces.clone()),
        inherited_filters: own.seccomp_filters,
    };

    // A sandboxed media worker: every item in force.
    let (child, applied) = waiting("media:wait", None);
    let applied = applied.expect("the child's report");
    assert_eq!(applied.landlock.status, LandlockEnforcement::Enforced);
    assert_eq!(
        applied.landlock.abi, 7,
        "Landlock ABI of this kernel (6.18)"
    );
    assert!(applied.capabilities_dropped && applied.no_new_privs && !applied.dumpable);
    assert_eq!(applied.open_files_limit, 1024);
    assert_eq!(
        applied.tasks_limit,
        root().then_some(kammer_hardening::TASKS_PER_ACCOUNT),
        "RLIMIT_NPROC only with a switch to a dedicated account"
    );
    let mut facts = inspect(child.id() as i32).expect("inspect");
    assert_eq!((facts.seccomp_mode, facts.seccomp_filters), (2, 2));
    assert!(facts.no_new_privs);
    assert_eq!(
        [
            facts.cap_effective,
            facts.cap_permitted,
            facts.cap_inheritable,
            facts.cap_ambient,
            facts.cap_bounding
        ],
        [0; 5]
    );
    assert_eq!(facts.core_limit, (Some(0), Some(0)));
    inherited(&mut facts);
    let findings = evaluate(Role::Media, &facts, Some(&applied), &expected(Vec::new()));
    assert!(findings.iter().all(|f| f.ok), "{findings:#?}");
    if root() {
        assert_eq!(facts.uid, [NOBODY.0; 4]);
        assert_eq!(facts.dumpable, Some(false), "told from /proc ownership");
        assert!(findings.iter().any(|f| f.item == "namespaces"));
    }
    // Without its report, Landlock cannot be confirmed.
    let without = evaluate(Role::Media, &facts, None, &expected(Vec::new()));
    let landlock = without
        .iter()
        .find(|f| f.item.starts_with("landlock"))
        .expect("landlock item");
    assert!(!landlock.ok);
    finish(child);

    // A key manager holding a file in its directory: allowed there, a deviation elsewhere.
    let dir = tempfile::tempdir().expect("temp dir");
    let (child, applied) = waiting("keys:wait", Some(dir.path()));
    let applied = applied.expect("the child's report");
    let mut facts = inspect(child.id() as i32).expect("inspect");
    inherited(&mut facts);
    let findings = evaluate(
        Role::Keys,
        &facts,
        Some(&applied),
        &expected(vec![dir.path().to_owned()]),
    );
    assert!(findings.iter().all(|f| f.ok), "{findings:#?}");
    let elsewhere = evaluate(Role::Keys, &facts, Some(&applied), &expected(Vec::new()));
    let files = elsewhere
        .iter()
        .find(|f| f.item == "open files")
        .expect("open files");
    assert!(!files.ok && files.actual.contains("held"), "{files:?}");
    finish(child);

    // An unsandboxed process: the deviations are reported.
    let (child, _) = waiting("none:wait", None);
    let mut facts = inspect(child.id() as i32).expect("inspect");
    inherited(&mut facts);
    let findings = evaluate(Role::Media, &facts, None, &expected(Vec::new()));
    let mut deviating = vec!["seccomp", "no_new_privs", "landlock (self-reported)"];
    if root() {
        deviating.extend(["capabilities", "uid/gid", "namespaces", "dumpable"]);
    }
    for item in deviating {
        let finding = findings.iter().find(|f| f.item == item).expect(item);
        assert!(!finding.ok, "{finding:?}");
    }
    finish(child);
}

fn an_unprivileged_process_gets_its_namespaces_through_a_user_namespace() {
    if !root() {
        println!(
            "skipped: the test runs unprivileged, so its sandboxed children already took this path"
        );
        return;
    }
    let mut command = command("media:wait");
    // As nobody from the start: no uid switch, no CAP_SYS_ADMIN.
    command.uid(NOBODY.0).gid(NOBODY.1);
    let (child, applied) = spawn_waiting(command);
    let applied = applied.expect("the child's report");
    assert_eq!(applied.namespaces, ["user", "mnt", "ipc"], "{applied:?}");
    assert!(
        applied.capabilities_dropped,
        "the bounding set, too, inside the user namespace"
    );
    assert_eq!(applied.landlock.status, LandlockEnforcement::Enforced);
    assert_eq!(
        applied.tasks_limit, None,
        "no dedicated account, no RLIMIT_NPROC"
    );
    let facts = inspect(child.id() as i32).expect("inspect");
    assert_eq!(facts.uid, [NOBODY.0; 4]);
    assert_eq!((facts.seccomp_mode, facts.seccomp_filters), (2, 2));
    let own = inspect(std::process::id() as i32).expect("self");
    for ns in ["user", "mnt", "ipc"] {
        assert_ne!(facts.namespaces.get(ns), own.namespaces.get(ns), "{ns}");
    }
    assert_eq!(facts.namespaces.get("net"), own.namespaces.get("net"));
    finish(child);
}

fn enter_refuses_a_process_with_threads() {
    assert_eq!(run("media:threads").code(), Some(0));
}
