//! `kammer pki …`: the offline CA of an isolated network (library in `certs/`).

use std::path::Path;

use anyhow::Context;
use kammer_certs::offline::DEFAULT_CRL_VALIDITY_DAYS;
use kammer_certs::{CaOptions, IssueOptions, OfflineCa, PermittedName, RevocationReason, Serial};

/// `kammer pki ca-init`: a new CA in `dir` (refused if one is there).
pub fn ca_init(dir: &Path, name: &str, permit: &[String], days: Option<u32>) -> anyhow::Result<()> {
    let mut options = CaOptions::new(name);
    if let Some(days) = days {
        options.validity_days = days;
    }
    options.name_constraints = permit
        .iter()
        .map(|text| {
            text.parse::<PermittedName>()
                .with_context(|| format!("--permit {text}"))
        })
        .collect::<anyhow::Result<_>>()?;
    let ca = OfflineCa::create(dir, &options)
        .with_context(|| format!("cannot create a CA in {}", dir.display()))?;
    println!("CA created in {}", dir.display());
    println!("  certificate: {}", dir.join("ca.pem").display());
    println!("  SHA-256:     {}", ca.certificate_fingerprint());
    println!("  valid until: {}", ca.not_after());
    println!("Compare the fingerprint over a second channel wherever ca.pem is installed.");
    Ok(())
}

/// `kammer pki issue`: a server certificate for a CSR, written to `out`.
pub fn issue(dir: &Path, csr: &Path, out: &Path, days: Option<u32>) -> anyhow::Result<()> {
    let ca = open(dir)?;
    let request =
        std::fs::read_to_string(csr).with_context(|| format!("cannot read {}", csr.display()))?;
    let mut options = IssueOptions::default();
    if let Some(days) = days {
        options.validity_days = days;
    }
    let issued = ca
        .issue_from_csr(&request, &options)
        .with_context(|| format!("{}: not issued", csr.display()))?;
    std::fs::write(out, &issued.pem).with_context(|| format!("cannot write {}", out.display()))?;
    let names: Vec<String> = issued.names.iter().map(ToString::to_string).collect();
    println!(
        "issued serial {} for {} until {} -> {}",
        issued.serial,
        names.join(", "),
        issued.not_after,
        out.display()
    );
    Ok(())
}

/// `kammer pki revoke`: marks a certificate revoked (the next CRL lists it).
pub fn revoke(dir: &Path, serial: &str, reason: &str) -> anyhow::Result<()> {
    let ca = open(dir)?;
    let serial: Serial = serial
        .parse()
        .with_context(|| format!("\"{serial}\" is not a serial number"))?;
    let reason: RevocationReason = reason
        .parse()
        .with_context(|| format!("\"{reason}\" is not a revocation reason"))?;
    let revoked = ca.revoke(&serial, reason)?;
    println!(
        "revoked {} ({}); run `kammer pki crl` and distribute crl.pem",
        revoked.serial, revoked.subject
    );
    Ok(())
}

/// `kammer pki crl`: a new CRL in `dir/crl.pem`.
pub fn crl(dir: &Path, days: Option<u32>) -> anyhow::Result<()> {
    let ca = open(dir)?;
    let crl = ca.crl(days.unwrap_or(DEFAULT_CRL_VALIDITY_DAYS))?;
    println!(
        "CRL number {} with {} revoked certificate(s), next update {} -> {}",
        crl.number,
        crl.revoked,
        crl.next_update,
        crl.path.display()
    );
    Ok(())
}

/// `kammer pki list`: every certificate the CA issued.
pub fn list(dir: &Path) -> anyhow::Result<()> {
    let ca = open(dir)?;
    for certificate in ca.list()? {
        println!(
            "{}  {}  until {}  {:?}",
            certificate.serial, certificate.subject, certificate.not_after, certificate.status
        );
    }
    Ok(())
}

fn open(dir: &Path) -> anyhow::Result<OfflineCa> {
    OfflineCa::open(dir).with_context(|| format!("no usable CA in {}", dir.display()))
}
