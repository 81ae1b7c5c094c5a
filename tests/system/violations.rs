//! (Test builds: `--features kammer/test-hooks`.) A media worker made to attempt `execve`,
//! opening a file, an `AF_PACKET` socket and `ptrace` — as a taken-over parser would — is killed
//! each time by its seccomp filter; the kill is recorded in the signed audit log, the worker is
//! replaced, its participants are told to publish again, and the meeting's signalling on the
//! other worker goes on throughout.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::media::meeting;
use support::{Appliance, issue, kammer};

/// `kammer selfcheck --json`: the findings of one scope that deviate.
fn deviations(state: &Path, scope: &str) -> Vec<Value> {
    let (_, stdout, _) = kammer(&[
        "selfcheck",
        "--json",
        "--state-dir",
        state.to_str().expect("utf8"),
    ]);
    let report: Value = serde_json::from_str(&stdout).expect("JSON report");
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|row| row["scope"] == scope && row["ok"] == false)
        .cloned()
        .collect()
}

/// The status file's entry for `role`.
fn process(state: &Path, role: &str) -> Value {
    let text = std::fs::read_to_string(state.join("run/status.json")).expect("status file");
    let status: Value = serde_json::from_str(&text).expect("JSON");
    status["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|entry| entry["role"] == role)
        .cloned()
        .unwrap_or(Value::Null)
}

/// The media UDP address from the status file.
fn media_addr(state: &Path) -> std::net::SocketAddr {
    let text = std::fs::read_to_string(state.join("run/status.json")).expect("status file");
    let status: Value = serde_json::from_str(&text).expect("JSON");
    status["media"]
        .as_str()
        .expect("media address")
        .parse()
        .expect("address")
}

fn violations(state: &Path) -> u64 {
    let text = std::fs::read_to_string(state.join("run/status.json")).expect("status file");
    let status: Value = serde_json::from_str(&text).expect("JSON");
    status["violations"].as_u64().expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compromised_media_worker_is_stopped_recorded_and_replaced_while_meetings_go_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let config = dir.path().join("kammer.toml");
    let config_arg = config.to_str().expect("utf8");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{s}\"\n\n[tls]\ncertificate = \"{s}/tls.pem\"\n\n[keys]\nbackend = \"soft\"\nallow_insecure_soft_keys = true\n\n[media]\nlisten = \"127.0.0.1:0\"\n\n[sandbox]\nuser = \"nobody\"\n",
            s = state.display()
        ),
    )
    .expect("config");
    let (ok, _, stderr) = kammer(&[
        "keys",
        "init",
        "--config",
        config_arg,
        "--name",
        "localhost",
        "--name",
        "127.0.0.1",
    ]);
    assert!(ok, "{stderr}");
    let ca = dir.path().join("ca");
    let ca_arg = ca.to_str().expect("utf8");
    let (ok, _, stderr) = kammer(&["pki", "ca-init", "--dir", ca_arg, "--name", "Test CA"]);
    assert!(ok, "{stderr}");
    let csr = state.join("keys/tls.csr");
    let certificate = state.join("tls.pem");
    let (ok, _, stderr) = issue(&ca, &csr, &certificate);
    assert!(ok, "{stderr}");

    let kammer_process = Appliance::serve_on(&state, &config, ca.join("ca.pem"));
    let (mut alice, mut bob, _) = meeting(&kammer_process).await;
    let media_port = media_addr(&state);
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");

    let attempts = ["execve", "open-file", "packet-socket", "ptrace"];
    for (round, attempt) in attempts.iter().enumerate() {
        let before = process(&state, "media");
        let old_pid = before["pid"].as_i64().expect("pid");
        probe
            .send_to(
                format!("KAMMER-TEST-VIOLATION {attempt}").as_bytes(),
                media_port,
            )
            .expect("send");
        // The worker dies by SIGSYS and a new one takes its place.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = process(&state, "media");
            if now["pid"].as_i64().is_some_and(|pid| pid != old_pid)
                && violations(&state) == round as u64 + 1
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{attempt}: the media worker was not replaced: {now}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            !Path::new(&format!("/proc/{old_pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{old_pid}/status"))
                    .is_ok_and(|s| s.contains("State:\tZ")),
            "{attempt}: the old worker is gone"
        );
        // Both participants are told to publish again on the new media worker.
        assert_eq!(alice.recv_type("media_reset").await["type"], "media_reset");
        assert_eq!(bob.recv_type("media_reset").await["type"], "media_reset");
        // Meanwhile the meeting on the signalling worker goes on.
        let text = format!("after {attempt}");
        bob.send(json!({"type": "chat", "text": text})).await;
        let chat = alice.recv_type("chat").await;
        assert_eq!(chat["text"], text.as_str());
    }

    // Each kill is a signed, chained record naming the media role.
    let (ok, stdout, stderr) = kammer(&["audit", "verify", "--config", config_arg]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("5 records"), "ceremony + 4 kills: {stdout}");
    let log = std::fs::read_to_string(state.join("audit/audit.jsonl")).expect("audit log");
    let kills: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("record"))
        .filter(|record| record["event"] == "sandbox_violation")
        .collect();
    assert_eq!(kills.len(), 4, "{log}");
    assert!(
        kills
            .iter()
            .all(|record| record["details"]["role"] == "media")
    );

    // The replacement is sandboxed like the first and media works again: a publish is answered.
    let media = deviations(&state, "media");
    assert!(media.is_empty(), "{media:#?}");
    assert_eq!(process(&state, "media")["restarts"], 4);
    let mut endpoint = support::media::Endpoint::new(1);
    let offer = endpoint
        .peer
        .publish_offer(&[kammer_core::media::peer::OutgoingTrack {
            mid: "0",
            kind: kammer_core::media::sdp::MediaKind::Video,
            ssrc: 7,
        }]);
    alice
        .send(
            json!({"type": "publish", "sdp": offer, "tracks": [{"mid": "0", "source": "camera"}]}),
        )
        .await;
    let answer = alice.recv_type("publish_answer").await;
    assert!(
        answer["sdp"]
            .as_str()
            .is_some_and(|sdp| sdp.contains("a=fingerprint"))
    );

    // A signalling worker that ends (here: killed from outside) takes its media worker with it;
    // both start again, the ending is recorded, and new meetings work.
    let signal_pid = process(&state, "signal")["pid"].as_i64().expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(signal_pid).expect("pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the signalling worker");
    let deadline = Instant::now() + Duration::from_secs(30);
    while process(&state, "signal")["pid"].as_i64() == Some(signal_pid) {
        assert!(
            Instant::now() < deadline,
            "the signalling worker was not replaced"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _, _) = kammer_process.get("/healthz").await;
    assert_eq!(status, 200);
    let (mut carol, _dave, _) = meeting(&kammer_process).await;
    carol
        .send(json!({"type": "chat", "text": "new meeting"}))
        .await;
    let (ok, stdout, stderr) = kammer(&["audit", "verify", "--config", config_arg]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("6 records"),
        "the worker's end is recorded: {stdout}"
    );
    let log = std::fs::read_to_string(state.join("audit/audit.jsonl")).expect("audit log");
    let last: Value = serde_json::from_str(log.lines().last().expect("a record")).expect("JSON");
    assert_eq!(last["event"], "worker_exit");
    assert_eq!(last["details"]["role"], "signal");
    assert_eq!(
        violations(&state),
        4,
        "a kill from outside is no sandbox violation"
    );
}
