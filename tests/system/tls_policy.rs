//! The TLS front door against an independent client (OpenSSL's `s_client`): TR-02102-2 policy.

#[path = "support/mod.rs"]
mod support;

use std::process::{Command, Stdio};

use support::Appliance;

/// Runs `openssl s_client` against the appliance; returns (handshake succeeded, output).
fn s_client(kammer: &Appliance, args: &[&str]) -> (bool, String) {
    let output = Command::new("timeout")
        .args([
            "20",
            "openssl",
            "s_client",
            "-brief",
            "-verify_return_error",
            "-connect",
        ])
        .arg(kammer.addr.to_string())
        .arg("-CAfile")
        .arg(&kammer.ca)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl must be installed (Debian package `openssl`)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let established = output.status.success() && text.contains("CONNECTION ESTABLISHED");
    (established, text)
}

fn assert_connects(kammer: &Appliance, args: &[&str], protocol: &str, cipher: &str) {
    let (ok, text) = s_client(kammer, args);
    assert!(ok, "{args:?} must connect:\n{text}");
    assert!(
        text.contains(&format!("Protocol version: {protocol}")),
        "{args:?}:\n{text}"
    );
    assert!(
        text.contains(&format!("Ciphersuite: {cipher}")),
        "{args:?}:\n{text}"
    );
}

fn assert_refused(kammer: &Appliance, args: &[&str]) {
    let (ok, text) = s_client(kammer, args);
    assert!(!ok, "{args:?} must be refused:\n{text}");
    // Refused by the server's policy (a TLS alert), not by an unreachable port.
    assert!(
        text.contains("alert"),
        "{args:?} failed without a TLS alert:\n{text}"
    );
}

#[test]
fn default_policy_is_tls13_gcm_on_nist_curves() {
    let kammer = Appliance::demo();
    assert_connects(
        &kammer,
        &["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"],
        "TLSv1.3",
        "TLS_AES_128_GCM_SHA256",
    );
    assert_connects(
        &kammer,
        &["-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384"],
        "TLSv1.3",
        "TLS_AES_256_GCM_SHA384",
    );
    assert_connects(
        &kammer,
        &["-tls1_3", "-groups", "P-256"],
        "TLSv1.3",
        "TLS_AES_256_GCM_SHA384",
    );
    assert_connects(
        &kammer,
        &["-tls1_3", "-groups", "P-384"],
        "TLSv1.3",
        "TLS_AES_256_GCM_SHA384",
    );

    assert_refused(
        &kammer,
        &["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"],
    );
    assert_refused(&kammer, &["-tls1_3", "-groups", "X25519"]);
    assert_refused(&kammer, &["-tls1_3", "-groups", "X448"]);
    assert_refused(&kammer, &["-tls1_2"]);
    assert_refused(&kammer, &["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"]);
    assert_refused(&kammer, &["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"]);
}

#[test]
fn tls12_only_when_enabled_and_only_ecdhe_ecdsa_gcm() {
    let kammer = Appliance::serve_with("allow_tls12 = true", "");

    assert_connects(
        &kammer,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
        "TLSv1.2",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
    );
    assert_connects(
        &kammer,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"],
        "TLSv1.2",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
    );
    assert_connects(
        &kammer,
        &["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"],
        "TLSv1.3",
        "TLS_AES_128_GCM_SHA256",
    );
    assert_refused(
        &kammer,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"],
    );
    assert_refused(
        &kammer,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256"],
    );
    assert_refused(&kammer, &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"]);
    assert_refused(&kammer, &["-tls1_2", "-groups", "X25519"]);
    assert_refused(&kammer, &["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"]);
    assert_refused(
        &kammer,
        &["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"],
    );
}
