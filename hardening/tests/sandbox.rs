//! Each role's sandbox, tested per rule in a child process (a filter cannot be removed, so the
//! test binary runs itself again as the sandboxed child): allowed work goes on, each forbidden
//! call kills the child with SIGSYS, Landlock denies files outside the allowance, and `inspect`
//! / `evaluate` see from outside what is in force.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kammer_hardening::{Expected, Role, Sandbox, enter, evaluate, inspect};

/// Tells the re-run test binary which child to be: `ROLE:ACTION[:DIR]`.
const CHILD: &str = "KAMMER_HARDENING_CHILD";

fn sandbox(role: Role, dir: Option<&Path>) -> Sandbox {
    let root = nix::unistd::Uid::effective().is_root();
    Sandbox {
        role,
        user: root.then_some((65534, 65534)),
        read_write: dir.map(Path::to_owned).into_iter().collect(),
        read_only: Vec::new(),
        tcp_connect: Vec::new(),
        private_namespaces: true,
        max_open_files: 1024,
    }
}

/// The child's side: enter the sandbox, then do one thing. Exit code 0: it worked; 3: it was
/// denied with an error; killed by SIGSYS: the filter stopped it.
fn child(spec: &str) -> ! {
    let mut parts = spec.splitn(3, ':');
    let role: Role = parts.next().and_then(|r| r.parse().ok()).expect("role");
    let action = parts.next().expect("action").to_owned();
    let dir = parts.next().map(PathBuf::from);
    // Owned by root and 0700 once the child runs as nobody: make it the child's.
    if let Some(dir) = &dir
        && nix::unistd::Uid::effective().is_root()
    {
        std::os::unix::fs::chown(dir, Some(65534), Some(65534)).expect("chown");
    }
    let applied = enter(&sandbox(role, dir.as_deref())).expect("enter the sandbox");
    assert_eq!(applied.seccomp_filters, 2);
    let outcome: std::io::Result<()> = match action.as_str() {
        "work" => {
            // A thread, memory, a Unix socket pair: the runtime's everyday calls.
            let handle =
                std::thread::spawn(|| vec![7u8; 1 << 20].iter().map(|b| *b as u64).sum::<u64>());
            assert_eq!(handle.join().expect("thread"), 7 << 20);
            let (mut a, mut b) = UnixStream::pair().expect("socketpair");
            a.write_all(b"ping").expect("write");
            let mut buf = [0u8; 4];
            b.read_exact(&mut buf).expect("read");
            assert_eq!(&buf, b"ping");
            Ok(())
        }
        "wait" => {
            // Stay alive for `inspect` until the parent closes stdin.
            let _ = std::io::stdin().read(&mut [0u8; 1]);
            Ok(())
        }
        "write-inside" => {
            let path = dir.expect("dir").join("inside");
            std::fs::write(&path, b"ok").and_then(|()| std::fs::read(&path).map(drop))
        }
        "read-outside" => std::fs::read("/etc/hostname").map(drop),
        violation => kammer_hardening::trigger::attempt(violation.parse().expect("violation")),
    };
    std::process::exit(match outcome {
        Ok(()) => 0,
        Err(_) => 3,
    })
}

/// Runs this test binary as the child `spec`; returns the exit status.
fn run(spec: &str) -> std::process::ExitStatus {
    Command::new(std::env::current_exe().expect("test binary"))
        .env(CHILD, spec)
        .stdout(Stdio::null())
        .status()
        .expect("run the child")
}

/// A plain `main` (`harness = false`): the test harness runs tests on threads, and a sandbox
/// is entered only by a process that has one.
fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
    }
    let tests: [(&str, fn()); 4] = [
        (
            "workers_go_on_with_their_work_and_die_on_every_forbidden_call",
            workers_go_on_with_their_work_and_die_on_every_forbidden_call,
        ),
        (
            "landlock_confines_the_key_manager_to_its_directory",
            landlock_confines_the_key_manager_to_its_directory,
        ),
        (
            "inspect_sees_the_sandbox_from_outside",
            inspect_sees_the_sandbox_from_outside,
        ),
        // Last: were it not refused, this process would be sandboxed from then on.
        (
            "enter_refuses_a_process_with_threads",
            enter_refuses_a_process_with_threads,
        ),
    ];
    for (name, test) in tests {
        test();
        println!("test {name} ... ok");
    }
    println!("test result: ok. {} passed", tests.len());
}

fn workers_go_on_with_their_work_and_die_on_every_forbidden_call() {
    for role in ["signal", "media", "keys"] {
        let status = run(&format!("{role}:work"));
        assert_eq!(
            status.code(),
            Some(0),
            "{role}: allowed work failed: {status}"
        );
        for violation in ["execve", "open-file", "packet-socket", "ptrace"] {
            if role == "keys" && violation == "open-file" {
                continue; // the key manager opens files; Landlock confines it (next test)
            }
            let status = run(&format!("{role}:{violation}"));
            assert_eq!(
                status.signal(),
                Some(libc::SIGSYS),
                "{role}: {violation} was not killed by seccomp: {status}"
            );
        }
    }
}

fn landlock_confines_the_key_manager_to_its_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = |action: &str| format!("keys:{action}:{}", dir.path().display());
    assert_eq!(run(&spec("write-inside")).code(), Some(0));
    assert_eq!(
        run(&spec("read-outside")).code(),
        Some(3),
        "a file outside the state directory is denied (EACCES), not read"
    );
}

fn inspect_sees_the_sandbox_from_outside() {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .env(CHILD, "media:wait")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("child");
    let pid = child.id() as i32;
    // Until the sandbox is in force (two filters).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let facts = loop {
        let facts = inspect(pid).expect("inspect");
        if facts.seccomp_filters == 2 {
            break facts;
        }
        assert!(std::time::Instant::now() < deadline, "{facts:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let root = nix::unistd::Uid::effective().is_root();
    let expected = Expected {
        uid: root.then_some(65534),
        gid: root.then_some(65534),
        allowed_file_prefixes: Vec::new(),
        reference_namespaces: root
            .then(|| inspect(std::process::id() as i32).expect("self").namespaces),
    };
    // Descriptors the test process was started with (not close-on-exec) reach the child too:
    // they are the environment's, not the child's doing.
    let inherited: Vec<(i32, String)> = inspect(std::process::id() as i32)
        .expect("self")
        .open_fds
        .into_iter()
        .map(|fd| (fd.fd, fd.target))
        .collect();
    let mut facts = facts;
    facts
        .open_fds
        .retain(|fd| !inherited.contains(&(fd.fd, fd.target.clone())));
    let findings = evaluate(Role::Media, &facts, None, &expected);
    for finding in &findings {
        // Landlock is only visible in the process's own report, which this test does not pass.
        let expected_ok = !finding.item.starts_with("landlock");
        if root || !["capabilities", "namespaces"].contains(&finding.item.as_str()) {
            assert_eq!(finding.ok, expected_ok, "{finding:?}");
        }
    }
    assert_eq!(facts.core_limit, (Some(0), Some(0)));
    assert!(facts.no_new_privs);
    drop(child.stdin.take());
    assert!(child.wait().expect("wait").success());

    // This test process has none of it: every item deviates.
    let own = inspect(std::process::id() as i32).expect("inspect self");
    let findings = evaluate(Role::Media, &own, None, &Expected::default());
    for item in ["seccomp", "no_new_privs", "core dumps"] {
        let finding = findings.iter().find(|f| f.item == item).expect(item);
        assert!(!finding.ok, "{finding:?}");
    }
}

fn enter_refuses_a_process_with_threads() {
    let _extra = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_millis(500)));
    let error = enter(&sandbox(Role::Media, None)).expect_err("refused");
    assert!(error.to_string().contains("threads"), "{error}");
}
