//! The offline CA against OpenSSL: requests made by `openssl req` (P-256, and P-384 signed
//! with SHA-256, OpenSSL's default digest) are issued, and `openssl verify -crl_check` accepts
//! the valid certificate and rejects the revoked one. Fails if the `openssl` command is
//! missing.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use kammer_certs::{CaOptions, IssueOptions, OfflineCa, RevocationReason};

fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command is needed for this test (apt-get install openssl)")
}

fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let output = openssl(dir, args);
    assert!(
        output.status.success(),
        "openssl {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A key on `curve` and a request for `name` made by OpenSSL; returns the request's PEM.
fn openssl_request(dir: &Path, stem: &str, curve: &str, name: &str) -> String {
    let key = format!("{stem}.key");
    let csr = format!("{stem}.csr");
    openssl_ok(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            &format!("ec_paramgen_curve:{curve}"),
            "-out",
            &key,
        ],
    );
    openssl_ok(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &key,
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            &format!("subjectAltName=DNS:{name}"),
            "-out",
            &csr,
        ],
    );
    fs::read_to_string(dir.join(csr)).expect("request")
}

#[test]
fn openssl_verifies_the_chain_and_the_crl() {
    let temp = tempfile::tempdir().expect("temp dir");
    let work = temp.path();
    let dir = work.join("ca");
    let options = CaOptions {
        name_constraints: vec!["example.org".parse().expect("dns")],
        ..CaOptions::new("Kammer OpenSSL Test CA")
    };
    let ca = OfflineCa::create(&dir, &options).expect("create");

    let good_csr = openssl_request(work, "good", "P-256", "kammer.example.org");
    let revoked_csr = openssl_request(work, "revoked", "P-384", "old.example.org");
    let good = ca
        .issue_from_csr(&good_csr, &IssueOptions::default())
        .expect("P-256 request");
    let revoked = ca
        .issue_from_csr(&revoked_csr, &IssueOptions::default())
        .expect("P-384 request signed with SHA-256");
    fs::write(work.join("good.pem"), &good.pem).expect("write");
    fs::write(work.join("revoked.pem"), &revoked.pem).expect("write");

    // The issued certificate belongs to OpenSSL's key.
    let certified = openssl_ok(work, &["x509", "-in", "good.pem", "-noout", "-pubkey"]);
    let requested = openssl_ok(work, &["pkey", "-in", "good.key", "-pubout"]);
    assert_eq!(certified, requested);
    let serial = openssl_ok(work, &["x509", "-in", "good.pem", "-noout", "-serial"]);
    assert_eq!(
        serial
            .trim()
            .strip_prefix("serial=")
            .map(str::to_ascii_lowercase),
        Some(good.serial.to_string())
    );

    ca.revoke(&revoked.serial, RevocationReason::Superseded)
        .expect("revoke");
    let crl = ca.crl(30).expect("crl");
    let ca_pem = dir.join("ca.pem");
    let crl_pem = dir.join("crl.pem");
    let ca_pem = ca_pem.to_str().expect("UTF-8 path");
    let crl_pem = crl_pem.to_str().expect("UTF-8 path");

    // The CRL: signed by the CA, number 1, lists the revoked serial.
    let text = openssl_ok(
        work,
        &["crl", "-in", crl_pem, "-CAfile", ca_pem, "-noout", "-text"],
    );
    assert!(text.contains("X509v3 CRL Number"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains(&revoked.serial.to_string()),
        "{text}"
    );
    assert!(text.contains("Superseded"), "{text}");
    assert_eq!(crl.number, 1);

    // Without the CRL both chains are fine (strict X.509 checks, server purpose).
    for leaf in ["good.pem", "revoked.pem"] {
        let out = openssl_ok(
            work,
            &[
                "verify",
                "-x509_strict",
                "-purpose",
                "sslserver",
                "-CAfile",
                ca_pem,
                leaf,
            ],
        );
        assert!(out.contains(": OK"), "{out}");
    }

    // With the CRL the revoked one fails and the other passes.
    let verify_with_crl = |leaf: &str| {
        openssl(
            work,
            &[
                "verify",
                "-x509_strict",
                "-purpose",
                "sslserver",
                "-crl_check",
                "-CAfile",
                ca_pem,
                "-CRLfile",
                crl_pem,
                leaf,
            ],
        )
    };
    let output = verify_with_crl("good.pem");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = verify_with_crl("revoked.pem");
    assert!(!output.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(said.contains("certificate revoked"), "{said}");

    // Name constraints: OpenSSL checks them too; a hostname check passes for the SAN.
    let out = openssl_ok(
        work,
        &[
            "verify",
            "-CAfile",
            ca_pem,
            "-verify_hostname",
            "kammer.example.org",
            "good.pem",
        ],
    );
    assert!(out.contains(": OK"), "{out}");
}
