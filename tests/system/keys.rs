//! System test of the key ceremony with a real TPM simulator: `kammer keys init` in swtpm →
//! `kammer pki` offline CA issues the certificate for the CSR the TPM signed → `kammer serve`
//! signs every TLS handshake in the TPM, and a client trusting only the CA accepts it → both
//! `kammer` and swtpm restart on the same state and the same certificate still works →
//! `kammer keys rotate tls` makes the old certificate unusable, with a clear message. The media
//! plane's DTLS certificate is issued by the TPM's media key and works for a peer.

#[path = "support/mod.rs"]
mod support;

#[path = "../../appliance/keys/tests/common/mod.rs"]
mod tpm;

use std::path::Path;
use std::time::Instant;

use kammer_core::media::peer::OutgoingTrack;
use kammer_core::media::sdp::MediaKind;
use serde_json::json;
use support::media::{Endpoint, meeting, run_until};
use support::{Appliance, issue, kammer};
use tpm::Swtpm;

fn write_config(path: &Path, state: &Path, tcti: &str) {
    write_config_with(path, state, tcti, "in-tpm");
}

fn write_config_with(path: &Path, state: &Path, tcti: &str, mode: &str) {
    std::fs::write(
        path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{s}\"\n\n[tls]\ncertificate = \"{s}/tls.pem\"\n\n[keys]\nbackend = \"tpm\"\ntcti = \"{tcti}\"\ntls_key_mode = \"{mode}\"\n\n[media]\nlisten = \"127.0.0.1:0\"\n\n[sandbox]\nuser = \"nobody\"\n",
            s = state.display()
        ),
    )
    .expect("write config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ceremony_offline_ca_and_handshakes_signed_in_the_tpm_across_restarts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tpm_state = dir.path().join("tpm");
    let state = dir.path().join("state");
    let ca_dir = dir.path().join("ca");
    let config = dir.path().join("kammer.toml");
    let config_arg = config.to_str().expect("utf8");

    let swtpm = Swtpm::start(&tpm_state);
    write_config(&config, &state, &swtpm.tcti().to_string());

    // The ceremony: keys in the TPM, fingerprints printed, a CSR for the TLS key.
    let (ok, stdout, stderr) = kammer(&[
        "keys",
        "init",
        "--config",
        config_arg,
        "--name",
        "localhost",
        "--name",
        "127.0.0.1",
    ]);
    assert!(ok, "keys init failed: {stderr}");
    for role in ["tls", "audit", "media"] {
        assert!(
            stdout.contains(&format!("  {role}")),
            "{role} missing in {stdout}"
        );
    }
    let csr = state.join("keys/tls.csr");
    assert!(csr.exists(), "{stdout}");

    assert!(
        stdout.contains("Recorded in the audit log as record 1"),
        "{stdout}"
    );
    let (ok, stdout, stderr) = kammer(&["keys", "status", "--config", config_arg]);
    assert!(ok, "{stderr}");
    assert!(!stdout.contains("INSECURE"), "{stdout}");

    // The ceremony's record is signed in the TPM and verifies in software; a changed byte is
    // found.
    let (ok, stdout, stderr) = kammer(&["audit", "verify", "--config", config_arg]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("1 records, chain intact, every signature valid"),
        "{stdout}"
    );
    let log = state.join("audit/audit.jsonl");
    let original = std::fs::read_to_string(&log).expect("audit log");
    assert!(
        original.contains("\"event\":\"key_ceremony\""),
        "{original}"
    );
    std::fs::write(&log, original.replacen("localhost", "localhosT", 1)).expect("write");
    let (ok, _, stderr) = kammer(&["audit", "verify", "--config", config_arg]);
    assert!(!ok);
    assert!(
        stderr.contains("line 1: the signature does not verify"),
        "{stderr}"
    );
    std::fs::write(&log, &original).expect("write");

    // The offline CA issues the certificate for that CSR.
    let ca_arg = ca_dir.to_str().expect("utf8");
    let (ok, _, stderr) = kammer(&[
        "pki",
        "ca-init",
        "--dir",
        ca_arg,
        "--name",
        "Kammer Test CA",
    ]);
    assert!(ok, "{stderr}");
    let certificate = state.join("tls.pem");
    let (ok, stdout, stderr) = issue(&ca_dir, &csr, &certificate);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("localhost, 127.0.0.1"), "{stdout}");
    let (ok, stdout, _) = kammer(&["config", "check", config_arg]);
    assert!(ok && stdout.contains("valid"), "{stdout}");
    let (ok, stdout, stderr) = kammer(&["keys", "status", "--config", config_arg]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("(396 days)") || stdout.contains("(397 days)"),
        "{stdout}"
    );
    assert!(!stdout.contains("NOT for the current TLS key"), "{stdout}");

    // serve: every handshake is signed in the TPM; the client trusts only the CA.
    let ca = ca_dir.join("ca.pem");
    {
        let kammer = Appliance::serve_on(&state, &config, ca.clone());
        let (status, _, body) = kammer.get("/healthz").await;
        assert_eq!(status, 200, "{body}");

        // With the TPM backend every item of the self-check is in force.
        let (ok, stdout, stderr) = crate::kammer(&["selfcheck", "--json", "--config", config_arg]);
        let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
        let deviations: Vec<&serde_json::Value> = report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|row| row["ok"] == false)
            .collect();
        assert!(ok && deviations.is_empty(), "{deviations:#?}\n{stderr}");
        for scope in ["keys", "signal", "media", "tls", "key backend"] {
            assert!(
                report["findings"]
                    .as_array()
                    .expect("findings")
                    .iter()
                    .any(|row| row["scope"] == scope),
                "{scope} not checked"
            );
        }

        // Media: a peer completes DTLS with the certificate the TPM's media key issued.
        let (mut alice, _bob, _) = meeting(&kammer).await;
        let mut sender = Endpoint::new(1);
        let offer = sender.peer.publish_offer(&[OutgoingTrack {
            mid: "0",
            kind: MediaKind::Video,
            ssrc: 7,
        }]);
        alice
            .send(json!({"type": "publish", "sdp": offer, "tracks": [{"mid": "0", "source": "camera"}]}))
            .await;
        let answer = alice.recv_type("publish_answer").await;
        sender
            .peer
            .apply_remote(Instant::now(), answer["sdp"].as_str().expect("sdp"))
            .expect("usable answer");
        run_until(&mut [&mut sender], |e| e[0].peer.is_connected()).await;
    }

    // Both restart on the same state: the keys are found again and the certificate still works.
    drop(swtpm);
    let swtpm = Swtpm::start(&tpm_state);
    write_config(&config, &state, &swtpm.tcti().to_string());
    {
        let kammer = Appliance::serve_on(&state, &config, ca.clone());
        let (status, _, _) = kammer.get("/healthz").await;
        assert_eq!(status, 200);
    }

    // A new TLS key: the old certificate no longer matches and serve says so.
    let (ok, stdout, stderr) = kammer(&["keys", "rotate", "tls", "--config", config_arg]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("issue a new one"), "{stdout}");
    let (ok, stdout, stderr) = kammer(&["audit", "verify", "--config", config_arg]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("2 records"),
        "the rotation is recorded: {stdout}"
    );
    let (ok, _, stderr) = kammer(&["serve", "--config", config_arg]);
    assert!(!ok);
    assert!(
        stderr.contains("the certificate is not for the key manager's TLS key"),
        "{stderr}"
    );

    // The other TLS key mode: sealed in the TPM, held in memory. The switch is deliberate (a
    // new key, a new CSR, a new certificate); then handshakes are signed in software.
    write_config_with(&config, &state, &swtpm.tcti().to_string(), "sealed");
    let (ok, _, stderr) = kammer(&["keys", "status", "--config", config_arg]);
    assert!(!ok, "the recorded mode and the configured one differ");
    assert!(stderr.contains("in-tpm"), "{stderr}");
    let (ok, stdout, stderr) = kammer(&[
        "keys",
        "new-tls-key",
        "--config",
        config_arg,
        "--name",
        "localhost",
        "--name",
        "127.0.0.1",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("tls: new key (sealed)"), "{stdout}");
    let (ok, _, stderr) = issue(&ca_dir, &csr, &certificate);
    assert!(ok, "{stderr}");
    {
        let kammer = Appliance::serve_on(&state, &config, ca.clone());
        let (status, _, _) = kammer.get("/healthz").await;
        assert_eq!(status, 200);
    }
    let (ok, stdout, stderr) = kammer(&["audit", "verify", "--config", config_arg]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("3 records"), "{stdout}");
    drop(swtpm);
}
