//! `kammer selfcheck`: proves, from outside, that the running appliance is hardened as
//! designed.
//!
//! The supervisor's status file only says which process has which role. Every fact about a
//! process is then read from the kernel (`/proc/PID/status`, `limits`, `fd`, `ns`), except
//! Landlock, which the kernel does not expose for another process: for it the process's own
//! report is shown, marked as such. The TLS policy is checked on the port itself: a handshake
//! within the policy must succeed (and its server signature verify), handshakes with ChaCha20,
//! with X25519 only, and with TLS 1.2 when it is off must fail. The key backend must be the TPM.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kammer_hardening::{Expected, Role};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::Serialize;

use crate::process::status::Status;

/// One checked item.
#[derive(Debug, Serialize)]
struct Row {
    /// A process role, or `appliance`, `tls`, `key backend`.
    scope: String,
    item: String,
    expected: String,
    actual: String,
    ok: bool,
}

impl Row {
    fn new(scope: &str, item: &str, expected: &str, actual: String, ok: bool) -> Self {
        Self {
            scope: scope.to_owned(),
            item: item.to_owned(),
            expected: expected.to_owned(),
            actual,
            ok,
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    ok: bool,
    state_dir: PathBuf,
    supervisor_pid: i32,
    findings: Vec<Row>,
}

pub(crate) fn run(
    config: Option<&Path>,
    state_dir: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    let state_dir = match (config, state_dir) {
        // Read as `serve` read it.
        (Some(config), _) => crate::load(config)?.state_dir,
        (None, Some(dir)) => dir.to_owned(),
        (None, None) => PathBuf::from("./kammer-state"),
    };
    // `/proc` shows absolute paths; so must the allowance of the key manager's files.
    let state_dir = std::fs::canonicalize(&state_dir).unwrap_or(state_dir);
    let status = Status::read(&state_dir)?;
    let findings = check(&status, &state_dir);
    let ok = findings.iter().all(|row| row.ok);
    let report = Report {
        ok,
        state_dir,
        supervisor_pid: status.supervisor_pid,
        findings,
    };
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        for row in &report.findings {
            writeln!(
                out,
                "{} {:<11} {:<28} {}{}",
                if row.ok { "ok  " } else { "FAIL" },
                row.scope,
                row.item,
                row.actual,
                if row.ok {
                    String::new()
                } else {
                    format!(" (expected {})", row.expected)
                }
            )?;
        }
        writeln!(
            out,
            "{}",
            if ok {
                "selfcheck: every item is in force"
            } else {
                "selfcheck: DEVIATIONS FROM POLICY"
            }
        )?;
    }
    if ok {
        Ok(())
    } else {
        anyhow::bail!(
            "{} item(s) deviate from the policy",
            report.findings.iter().filter(|row| !row.ok).count()
        )
    }
}

fn check(status: &Status, state_dir: &Path) -> Vec<Row> {
    let mut rows = Vec::new();
    let supervisor = kammer_hardening::inspect(status.supervisor_pid);
    rows.push(Row::new(
        "appliance",
        "supervisor running",
        "yes",
        match &supervisor {
            Ok(_) => format!("pid {}", status.supervisor_pid),
            Err(error) => format!("no: {error}"),
        },
        supervisor.is_ok(),
    ));
    rows.push(Row::new(
        "appliance",
        "[dangerous] switches",
        "none",
        if status.dangerous.is_empty() {
            "none".to_owned()
        } else {
            status.dangerous.join(", ")
        },
        status.dangerous.is_empty(),
    ));
    if let Ok(facts) = &supervisor {
        // Its own filters on top of those it was started with (a service manager's, counted
        // by the supervisor itself before it installed its own).
        let (before, _) = status.supervisor_filters;
        let wanted = before + kammer_hardening::FILTERS_PER_PROCESS;
        rows.push(Row::new(
            "supervisor",
            "seccomp",
            &format!("filter mode, {wanted} filters ({before} inherited)"),
            format!(
                "mode {}, {} filters",
                facts.seccomp_mode, facts.seccomp_filters
            ),
            facts.seccomp_mode == 2 && facts.seccomp_filters >= wanted,
        ));
        rows.push(Row::new(
            "supervisor",
            "no_new_privs",
            "1",
            u8::from(facts.no_new_privs).to_string(),
            facts.no_new_privs,
        ));
        rows.push(Row::new(
            "supervisor",
            "core dumps",
            "limit 0",
            match facts.core_limit {
                (Some(soft), Some(hard)) => format!("limit {soft}/{hard}"),
                _ => "unlimited".to_owned(),
            },
            facts.core_limit == (Some(0), Some(0)),
        ));
    }
    let reference = supervisor.as_ref().ok();
    let own_ids = reference.map(|facts| (facts.uid[1], facts.gid[1]));
    let mut roles = vec![Role::Keys, Role::Signal];
    if status.media.is_some() {
        roles.push(Role::Media);
    }
    for role in roles {
        let Some(entry) = status.processes.iter().find(|entry| entry.role == role) else {
            rows.push(Row::new(
                role.as_str(),
                "process",
                "running",
                "missing".to_owned(),
                false,
            ));
            continue;
        };
        let facts = match kammer_hardening::inspect(entry.pid) {
            Ok(facts) => facts,
            Err(error) => {
                rows.push(Row::new(
                    role.as_str(),
                    "process",
                    "running",
                    format!("pid {}: {error}", entry.pid),
                    false,
                ));
                continue;
            }
        };
        let user = match role {
            Role::Keys => status.keys_user,
            _ => status.worker_user,
        }
        .or(own_ids);
        let mut allowed_paths = Vec::new();
        if role == Role::Keys {
            allowed_paths.push(state_dir.to_owned());
            if let Some(tcti) = status
                .keys
                .as_ref()
                .and_then(|keys| keys.tcti.as_deref())
                .and_then(|tcti| tcti.strip_prefix("device:"))
            {
                allowed_paths.push(PathBuf::from(tcti));
            }
        }
        let expected = Expected {
            uid: user.map(|(uid, _)| uid),
            gid: user.map(|(_, gid)| gid),
            allowed_file_prefixes: allowed_paths,
            reference_namespaces: reference.map(|facts| facts.namespaces.clone()),
            // A child starts under the supervisor's filters; its own must come on top.
            inherited_filters: reference
                .map_or(status.supervisor_filters.1, |facts| facts.seccomp_filters),
        };
        // The status file names the pid; the kernel says whose child it is.
        let parent = parent_of(entry.pid);
        rows.push(Row::new(
            role.as_str(),
            "process",
            "a child of the supervisor",
            format!(
                "pid {}, parent {}, {} restart(s)",
                entry.pid,
                parent.map_or_else(|| "unknown".to_owned(), |p| p.to_string()),
                entry.restarts
            ),
            parent == Some(status.supervisor_pid),
        ));
        for finding in kammer_hardening::evaluate(role, &facts, entry.applied.as_ref(), &expected) {
            rows.push(Row {
                scope: role.as_str().to_owned(),
                item: finding.item.to_string(),
                expected: finding.expected,
                actual: finding.actual,
                ok: finding.ok,
            });
        }
    }
    rows.push(Row::new(
        "appliance",
        "sandbox violations",
        "(reported)",
        status.violations.to_string(),
        true,
    ));
    match &status.keys {
        Some(keys) => {
            rows.push(Row::new(
                "key backend",
                "backend",
                "tpm",
                match &keys.tcti {
                    Some(tcti) => format!("{} ({tcti})", keys.backend),
                    None => keys.backend.clone(),
                },
                keys.backend == "tpm",
            ));
            rows.push(Row::new(
                "key backend",
                "TLS key",
                "in-tpm or sealed",
                format!(
                    "{} ({}, {})",
                    keys.tls_key, keys.tls_scheme, keys.tls_fingerprint
                ),
                keys.tls_key == "in-tpm" || keys.tls_key == "sealed",
            ));
            if let Some(storage) = &keys.storage {
                rows.push(Row::new(
                    "key backend",
                    "storage secret",
                    "(reported)",
                    storage.clone(),
                    true,
                ));
            }
            rows.push(Row::new(
                "key backend",
                "audit log",
                "signed records",
                if keys.audit_log {
                    "signed records"
                } else {
                    "none"
                }
                .to_owned(),
                keys.audit_log,
            ));
        }
        None => rows.push(Row::new(
            "key backend",
            "backend",
            "tpm",
            "unknown".to_owned(),
            false,
        )),
    }
    rows.extend(check_tls(status.listen, status.tls12));
    rows
}

/// The parent process of `pid`, from `/proc/PID/status`.
fn parent_of(pid: i32) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("PPid:"))?
        .trim()
        .parse()
        .ok()
}

/// Handshakes against the port: one within the policy, and ones the policy must refuse.
fn check_tls(listen: SocketAddr, tls12: bool) -> Vec<Row> {
    let address = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port())
        }
        _ => listen,
    };
    let ring = rustls::crypto::ring::default_provider();
    let policy = kammer_server::tls::provider(kammer_server::tls::Tls12::Refused);
    let mut rows = Vec::new();
    match handshake(address, policy, &[&rustls::version::TLS13]) {
        Ok(negotiated) => rows.push(Row::new(
            "tls",
            "TLS 1.3, AES-GCM, P-256/P-384",
            "accepted",
            negotiated,
            true,
        )),
        Err(error) => rows.push(Row::new(
            "tls",
            "TLS 1.3, AES-GCM, P-256/P-384",
            "accepted",
            format!("refused: {error}"),
            false,
        )),
    }
    let chacha = CryptoProvider {
        cipher_suites: vec![rustls::crypto::ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256],
        ..ring.clone()
    };
    let x25519 = CryptoProvider {
        kx_groups: vec![rustls::crypto::ring::kx_group::X25519],
        ..ring.clone()
    };
    let tls12_gcm = CryptoProvider {
        cipher_suites: vec![
            rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ],
        ..ring.clone()
    };
    let tls12_chacha = CryptoProvider {
        cipher_suites: vec![
            rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        ..ring
    };
    let mut refused =
        |item: &str,
         provider: CryptoProvider,
         versions: &[&'static rustls::SupportedProtocolVersion]| {
            let result = handshake(address, provider, versions);
            rows.push(Row::new(
                "tls",
                item,
                "refused",
                match &result {
                    Ok(negotiated) => format!("accepted: {negotiated}"),
                    Err(_) => "refused".to_owned(),
                },
                result.is_err(),
            ));
        };
    refused("ChaCha20-Poly1305 only", chacha, &[&rustls::version::TLS13]);
    refused("X25519 only", x25519, &[&rustls::version::TLS13]);
    refused(
        "TLS 1.2 with ChaCha20",
        tls12_chacha,
        &[&rustls::version::TLS12],
    );
    if !tls12 {
        refused(
            "TLS 1.2 (switched off)",
            tls12_gcm,
            &[&rustls::version::TLS12],
        );
    }
    rows
}

/// One handshake; returns the negotiated version, suite and group.
fn handshake(
    address: SocketAddr,
    provider: CryptoProvider,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> anyhow::Result<String> {
    let provider = Arc::new(provider);
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let mut connection = rustls::ClientConnection::new(
        Arc::new(config),
        ServerName::try_from("kammer")?.to_owned(),
    )?;
    let mut socket = TcpStream::connect_timeout(&address, Duration::from_secs(5))
        .with_context(|| format!("cannot connect to {address}"))?;
    socket.set_read_timeout(Some(Duration::from_secs(5)))?;
    socket.set_write_timeout(Some(Duration::from_secs(5)))?;
    while connection.is_handshaking() {
        connection.complete_io(&mut socket)?;
    }
    Ok(format!(
        "{:?}, {:?}, {:?}",
        connection.protocol_version().context("no version")?,
        connection
            .negotiated_cipher_suite()
            .context("no suite")?
            .suite(),
        connection
            .negotiated_key_exchange_group()
            .context("no group")?
            .name()
    ))
}

/// Accepts any certificate (this checks the policy, not the appliance's identity) but still
/// verifies the server's handshake signature: that proves the key manager signed it.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    /// docs/hardening.md carries the allowlists exactly as the policy declares them.
    #[test]
    fn the_documented_syscall_tables_are_the_policy() {
        let doc = include_str!("../../../docs/hardening.md");
        let begin = "<!-- BEGIN GENERATED SYSCALL TABLES -->\n";
        let end = "<!-- END GENERATED SYSCALL TABLES -->";
        let start = doc.find(begin).expect("begin marker") + begin.len();
        let stop = doc.find(end).expect("end marker");
        assert!(
            doc[start..stop] == kammer_hardening::policy_markdown(),
            "docs/hardening.md is out of date: replace the generated section with the output of \
             `kammer_hardening::policy_markdown()` (run `cargo run -p kammer -- __policy-markdown`)"
        );
    }
}
