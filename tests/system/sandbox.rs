//! The process model and its sandboxes, tested on the real binary:
//!
//! * `kammer demo` runs as a supervisor with three sandboxed children, and `kammer selfcheck`
//!   finds every process item in force (the demo's file key is reported as a deviation);
//! * with `--dangerous disable_sandbox` the same check reports the deviations and fails.
//!
//! The attacks on a worker are in `violations.rs` (test builds only).

mod support;

use std::path::Path;

use serde_json::Value;
use support::{Appliance, kammer};

/// `kammer selfcheck --json` against a state directory: (exit success, findings).
fn selfcheck(state: &Path) -> (bool, Vec<Value>) {
    let (ok, stdout, stderr) = kammer(&[
        "selfcheck",
        "--json",
        "--state-dir",
        state.to_str().expect("utf8"),
    ]);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("selfcheck printed no JSON ({error}): {stdout}\n{stderr}"));
    assert_eq!(report["ok"], ok, "the exit status follows the report");
    let findings = report["findings"].as_array().expect("findings").clone();
    (ok, findings)
}

fn failed<'a>(findings: &'a [Value], scope: &str) -> Vec<&'a Value> {
    findings
        .iter()
        .filter(|row| row["scope"] == scope && row["ok"] == false)
        .collect()
}

fn items<'a>(findings: &'a [Value], scope: &str) -> Vec<&'a str> {
    findings
        .iter()
        .filter(|row| row["scope"] == scope)
        .filter_map(|row| row["item"].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_sandboxed_processes_and_selfcheck_proves_it() {
    let kammer = Appliance::demo();
    let (status, _, _) = kammer.get("/healthz").await;
    assert_eq!(status, 200);

    let (ok, findings) = selfcheck(&kammer.state);
    for role in ["keys", "signal", "media"] {
        assert!(
            failed(&findings, role).is_empty(),
            "{role}: {:#?}",
            failed(&findings, role)
        );
        let checked = items(&findings, role);
        for item in [
            "seccomp",
            "no_new_privs",
            "capabilities",
            "landlock",
            "core dumps",
            "dumpable",
            "open files",
        ] {
            assert!(
                checked.iter().any(|checked| checked.contains(item)),
                "{role}: no {item} item in {checked:?}"
            );
        }
    }
    assert!(failed(&findings, "tls").is_empty(), "{findings:#?}");
    assert!(
        items(&findings, "tls").len() >= 4,
        "a compliant handshake and the refused ones: {findings:#?}"
    );
    // The demo's TLS key is a file, not the TPM: a deviation, and so a failing selfcheck.
    assert!(!ok);
    let keys = failed(&findings, "key backend");
    assert!(keys.iter().any(|row| row["item"] == "backend"), "{keys:#?}");
    assert!(failed(&findings, "appliance").is_empty(), "{findings:#?}");
    assert!(failed(&findings, "supervisor").is_empty(), "{findings:#?}");
    assert!(items(&findings, "supervisor").contains(&"seccomp"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selfcheck_reports_a_disabled_sandbox() {
    let kammer = Appliance::demo_with(&["--dangerous", "disable_sandbox"]);
    let (status, _, body) = kammer.get("/info").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("dangerous.disable_sandbox"),
        "the web client's footer notice names the switch: {body}"
    );
    let (ok, findings) = selfcheck(&kammer.state);
    assert!(!ok);
    let appliance = failed(&findings, "appliance");
    assert!(
        appliance.iter().any(|row| row["actual"]
            .as_str()
            .is_some_and(|a| a.contains("disable_sandbox"))),
        "{findings:#?}"
    );
    for role in ["keys", "signal", "media"] {
        let failed: Vec<&str> = failed(&findings, role)
            .iter()
            .filter_map(|row| row["item"].as_str())
            .collect();
        for item in ["seccomp", "no_new_privs", "landlock"] {
            assert!(
                failed.iter().any(|f| f.contains(item)),
                "{role}: {item} not reported as deviating: {failed:?}"
            );
        }
    }
}
