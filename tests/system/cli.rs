//! The command line: `config check`, `demo` reruns, `pki dev-ca`, bad invocations.

#[path = "support/mod.rs"]
mod support;

use std::process::Command;

use support::{Appliance, KAMMER, kammer};

#[test]
fn config_check_accepts_a_valid_file_and_names_every_problem_of_an_invalid_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = dir.path().join("pki");
    assert!(kammer(&["pki", "dev-ca", "--dir", pki.to_str().expect("utf8")]).0);
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        format!(
            "[server]\nlisten = \"0.0.0.0:443\"\nstate_dir = \"/var/lib/kammer\"\n[tls]\ncertificate = \"{p}/server.pem\"\nprivate_key = \"{p}/server.key\"\n[metrics]\nenabled = true\nallow = [\"10.0.0.0/8\"]\n[media]\nannounce = [\"10.1.2.3\"]\n",
            p = pki.display()
        ),
    )
    .expect("write");
    let (ok, stdout, stderr) = kammer(&["config", "check", good.to_str().expect("utf8")]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(
            "valid (listen 0.0.0.0:443, TLS 1.2 refused, metrics on, media udp 0.0.0.0:10000)"
        ),
        "{stdout}"
    );

    // Files that exist but are not a matching certificate and key are named too.
    let swapped = dir.path().join("swapped.toml");
    std::fs::write(
        &swapped,
        std::fs::read_to_string(&good)
            .expect("read")
            .replace("server.key", "ca.pem"),
    )
    .expect("write");
    let (ok, _, stderr) = kammer(&["config", "check", swapped.to_str().expect("utf8")]);
    assert!(!ok, "a certificate is not a private key");
    assert!(stderr.contains("swapped.toml: tls:"), "{stderr}");
    assert!(stderr.contains("ca.pem"), "{stderr}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = \"everywhere\"\nstate_dir = \"/x\"\n[tls]\ncertificate = \"/nonexistent.pem\"\nprivate_key = \"/nonexistent.key\"\n[signalling]\nidle_timeout_secs = 1\n",
    )
    .expect("write");
    let (ok, _, stderr) = kammer(&["config", "check", bad.to_str().expect("utf8")]);
    assert!(!ok);
    for expected in [
        "4 problems in the configuration",
        "server.listen: \"everywhere\" is not an address with port",
        "tls.certificate: /nonexistent.pem cannot be read",
        "tls.private_key: /nonexistent.key cannot be read",
        "signalling.idle_timeout_secs: 1 is out of range; allowed are 30 to 86400",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in\n{stderr}"
        );
    }

    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "[sever]\nlisten = \"0.0.0.0:443\"\n").expect("write");
    let (ok, _, stderr) = kammer(&["config", "check", typo.to_str().expect("utf8")]);
    assert!(!ok);
    assert!(
        stderr.contains("line 1: sever: unknown key `sever`"),
        "{stderr}"
    );

    let (ok, _, stderr) = kammer(&["config", "check", "/nonexistent/kammer.toml"]);
    assert!(!ok);
    assert!(
        stderr.contains("cannot read /nonexistent/kammer.toml"),
        "{stderr}"
    );

    let (ok, _, stderr) = kammer(&["serve", "--config", bad.to_str().expect("utf8")]);
    assert!(!ok, "serve refuses an invalid configuration");
    assert!(stderr.contains("server.listen"), "{stderr}");
}

#[test]
fn demo_reuses_its_state_and_never_overwrites_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let first = Appliance::demo_in(&state);
    let ca = std::fs::read(&first.ca).expect("CA written");
    let key = std::fs::read(state.join("pki/server.key")).expect("key written");
    drop(first);

    let mut second = Command::new(KAMMER)
        .args(["demo", "--port", "0", "--state-dir"])
        .arg(&state)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("second start");
    let mut line = String::new();
    let mut reader = std::io::BufReader::new(second.stdout.take().expect("stdout"));
    while !line.contains("CA file:") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut reader, &mut line).expect("read") > 0,
            "demo ended early"
        );
    }
    let _ = second.kill();
    let _ = second.wait();
    assert!(
        line.contains(&format!("{}", state.join("pki/ca.pem").display())),
        "{line}"
    );
    assert_eq!(std::fs::read(state.join("pki/ca.pem")).expect("CA"), ca);
    assert_eq!(
        std::fs::read(state.join("pki/server.key")).expect("key"),
        key
    );
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let kammer_a = Appliance::demo();
    let dir = tempfile::tempdir().expect("temp dir");
    let port = kammer_a.addr.port().to_string();
    let (ok, _, stderr) = kammer(&[
        "demo",
        "--port",
        &port,
        "--state-dir",
        dir.path().to_str().expect("utf8"),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[test]
fn unknown_commands_fail_with_usage() {
    let (ok, _, stderr) = kammer(&["frobnicate"]);
    assert!(!ok);
    assert!(stderr.contains("Usage"), "{stderr}");
}

#[test]
fn serve_refuses_soft_keys_without_the_explicit_switch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("soft.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{d}\"\n[tls]\ncertificate = \"{d}/server.pem\"\n[keys]\nbackend = \"soft\"\n",
            d = dir.path().display()
        ),
    )
    .expect("write");
    let (ok, _, stderr) = kammer(&["serve", "--config", config.to_str().expect("utf8")]);
    assert!(!ok, "serve must not start with soft keys unless allowed");
    assert!(
        stderr.contains("keys.backend: \"soft\" keeps keys in files on disk, for development only; set keys.allow_insecure_soft_keys = true"),
        "{stderr}"
    );
}

#[test]
fn soft_keys_and_the_offline_ca_commands_issue_revoke_and_publish_a_crl() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let ca = dir.path().join("ca");
    let config = dir.path().join("soft.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{s}\"\n[tls]\ncertificate = \"{s}/tls.pem\"\n[keys]\nbackend = \"soft\"\nallow_insecure_soft_keys = true\n",
            s = state.display()
        ),
    )
    .expect("write");
    let config = config.to_str().expect("utf8");
    let (ok, stdout, stderr) = kammer(&[
        "keys",
        "init",
        "--config",
        config,
        "--name",
        "kammer.example.org",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("WARNING: soft backend"), "{stdout}");
    let (ok, stdout, _) = kammer(&["keys", "status", "--config", config]);
    assert!(ok && stdout.contains("INSECURE"), "{stdout}");

    let ca_arg = ca.to_str().expect("utf8");
    assert!(
        kammer(&[
            "pki",
            "ca-init",
            "--dir",
            ca_arg,
            "--name",
            "Test CA",
            "--permit",
            "example.org"
        ])
        .0
    );
    let (ok, _, stderr) = kammer(&["pki", "ca-init", "--dir", ca_arg, "--name", "Again"]);
    assert!(!ok, "an existing CA is never overwritten");
    assert!(stderr.contains("cannot create a CA"), "{stderr}");
    let csr = state.join("keys/tls.csr");
    let out = state.join("tls.pem");
    let (ok, stdout, stderr) = kammer(&[
        "pki",
        "issue",
        "--dir",
        ca_arg,
        "--csr",
        csr.to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
        "--days",
        "30",
    ]);
    assert!(ok, "{stderr}");
    let serial = stdout
        .split_whitespace()
        .nth(2)
        .expect("issued serial <hex>")
        .to_owned();
    let (ok, stdout, _) = kammer(&["keys", "status", "--config", config]);
    assert!(
        ok && (stdout.contains("(29 days)") || stdout.contains("(30 days)")),
        "{stdout}"
    );

    let (ok, _, stderr) = kammer(&[
        "pki",
        "revoke",
        "--dir",
        ca_arg,
        &serial,
        "--reason",
        "key-compromise",
    ]);
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = kammer(&["pki", "crl", "--dir", ca_arg]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("CRL number 1 with 1 revoked"), "{stdout}");
    let (ok, stdout, _) = kammer(&["pki", "list", "--dir", ca_arg]);
    assert!(
        ok && stdout.contains(&serial) && stdout.contains("Revoked"),
        "{stdout}"
    );
    // OpenSSL agrees: the certificate chains to the CA and is revoked.
    let verify = std::process::Command::new("openssl")
        .args(["verify", "-crl_check", "-CAfile"])
        .arg(ca.join("ca.pem"))
        .arg("-CRLfile")
        .arg(ca.join("crl.pem"))
        .arg(&out)
        .output()
        .expect("openssl");
    assert!(!verify.status.success());
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains("revoked")
            || String::from_utf8_lossy(&verify.stderr).contains("revoked")
    );
}
