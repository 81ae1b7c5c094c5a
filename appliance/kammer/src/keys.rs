//! `kammer keys …`: the key ceremony and the key manager's state, for a security officer.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use kammer::audit::{AuditLog, VerifyingKey};
use kammer::config::Config;
use kammer_certs::{SubjectName, csr_for_remote_key};
use kammer_keys::{KeyConfig, KeyManager, Role};

/// Every role, in the order they are listed.
const ROLES: [Role; 3] = [Role::Tls, Role::Audit, Role::Media];

/// A configuration for key commands: like `serve`'s, but the TLS certificate need not exist
/// yet (the ceremony comes before it is issued).
pub fn load(path: &Path) -> anyhow::Result<(Config, KeyConfig)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let config = Config::from_toml(&text, false)
        .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
    let backend = config.keys.clone().with_context(|| {
        format!(
            "{}: has no [keys] table; the key manager is not configured",
            path.display()
        )
    })?;
    let keys = KeyConfig::new(&config.state_dir, backend).with_tls_mode(config.tls_key_mode);
    Ok((config, keys))
}

/// Opens the key manager for `serve`, with a message a security officer can act on.
pub fn open(config: &KeyConfig) -> anyhow::Result<Arc<KeyManager>> {
    KeyManager::open(config).map(Arc::new).map_err(|error| {
        anyhow::anyhow!(
            "the key manager cannot start: {error} (after a new installation, run `kammer keys init --config FILE` once)"
        )
    })
}

/// `kammer keys init`: creates what is missing, keeps what exists, prints the fingerprints and
/// writes a CSR for the TLS key.
pub fn init(path: &Path, names: &[String]) -> anyhow::Result<()> {
    let names = parse_names(names)?;
    let (_, config) = load(path)?;
    let keys = KeyManager::init(&config).context("key ceremony failed")?;
    println!("Key ceremony done. Keys in {}:", config.key_dir().display());
    print_keys(&keys);
    write_csr(&keys, &config, &names)?;
    let fingerprints: serde_json::Map<String, serde_json::Value> = ROLES
        .into_iter()
        .map(|role| {
            (
                role.name().to_owned(),
                keys.public_key(role).fingerprint().to_string().into(),
            )
        })
        .collect();
    let names: Vec<String> = names.iter().map(ToString::to_string).collect();
    let seq = record(
        &keys,
        &config,
        "key_ceremony",
        serde_json::json!({
            "backend": backend_name(&keys.status().backend),
            "storage": keys.status().storage.sealing(),
            "keys": fingerprints,
            "csr_names": names,
        }),
    )?;
    println!("Recorded in the audit log as record {seq}.");
    Ok(())
}

/// Appends a record signed with the audit key.
fn record(
    keys: &KeyManager,
    config: &KeyConfig,
    event: &str,
    details: serde_json::Value,
) -> anyhow::Result<u64> {
    let log = AuditLog::in_state_dir(&state_dir(config))?;
    let key = keys.public_key(Role::Audit).fingerprint().to_string();
    let signer = |message: &[u8]| {
        keys.sign(Role::Audit, message)
            .map_err(|error| error.to_string())
    };
    Ok(log.append(event, details, &key, &signer)?)
}

/// `kammer audit verify`: the chain and every signature, under the current audit key and any
/// given public keys (earlier audit keys).
pub fn verify_audit(path: &Path, extra: &[std::path::PathBuf]) -> anyhow::Result<()> {
    let (_, config) = load(path)?;
    let keys = open(&config)?;
    let mut verifying = vec![verifying_key(&keys.public_key(Role::Audit))];
    for file in extra {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        for block in
            pem::parse_many(&text).with_context(|| format!("{}: not PEM", file.display()))?
        {
            let key = kammer_keys::PublicKey::from_spki_der(block.contents())
                .with_context(|| format!("{}: not an ECDSA P-256 public key", file.display()))?;
            verifying.push(verifying_key(&key));
        }
    }
    let log = AuditLog::in_state_dir(&state_dir(&config))?;
    let verified = kammer::audit::verify(log.path(), &verifying)
        .with_context(|| format!("{} does not verify", log.path().display()))?;
    println!(
        "{}: {} records, chain intact, every signature valid; head {}",
        log.path().display(),
        verified.records,
        verified.head
    );
    Ok(())
}

/// The state directory: the key directory's parent.
fn state_dir(config: &KeyConfig) -> std::path::PathBuf {
    let keys = config.key_dir();
    keys.parent().map(Path::to_path_buf).unwrap_or(keys)
}

fn backend_name(backend: &kammer_keys::BackendStatus) -> serde_json::Value {
    match backend {
        kammer_keys::BackendStatus::Tpm {
            tcti,
            vendor,
            storage_key,
        } => serde_json::json!({
            "kind": "tpm",
            "tcti": tcti.to_string(),
            "vendor": vendor,
            "storage_key": storage_key.to_string(),
        }),
        kammer_keys::BackendStatus::Soft => serde_json::json!({"kind": "soft"}),
    }
}

fn verifying_key(key: &kammer_keys::PublicKey) -> VerifyingKey {
    VerifyingKey {
        fingerprint: key.fingerprint().to_string(),
        point: key.point().to_vec(),
    }
}

/// `kammer keys new-tls-key`: a new TLS key in the configured mode (after `keys.tls_key_mode`
/// changed, or to leave a sealed key the PCRs no longer unlock); then a new CSR.
pub fn new_tls_key(path: &Path, names: &[String]) -> anyhow::Result<()> {
    let names = parse_names(names)?;
    let (_, config) = load(path)?;
    let keys = KeyManager::open_with_new_tls_key(&config).context("no new TLS key")?;
    let new = keys.public_key(Role::Tls);
    println!(
        "tls: new key ({}), SHA-256 fingerprint {}",
        config.tls_mode(),
        new.fingerprint()
    );
    record(
        &keys,
        &config,
        "tls_key_replaced",
        serde_json::json!({"mode": config.tls_mode().to_string(), "new": new.fingerprint().to_string()}),
    )?;
    write_csr(&keys, &config, &names)
}

/// `kammer keys csr`: a new CSR for the current TLS key.
pub fn csr(path: &Path, names: &[String]) -> anyhow::Result<()> {
    let names = parse_names(names)?;
    let (_, config) = load(path)?;
    let keys = open(&config)?;
    write_csr(&keys, &config, &names)
}

fn parse_names(names: &[String]) -> anyhow::Result<Vec<SubjectName>> {
    names
        .iter()
        .map(|name| {
            name.parse::<SubjectName>()
                .with_context(|| format!("--name {name}"))
        })
        .collect()
}

/// Signs a CSR for the TLS key through the key manager: the key never leaves it.
fn write_csr(keys: &KeyManager, config: &KeyConfig, names: &[SubjectName]) -> anyhow::Result<()> {
    let public = keys.public_key(Role::Tls);
    let signer = |message: &[u8]| keys.sign(Role::Tls, message);
    let common_name = names.first().map(ToString::to_string).unwrap_or_default();
    let request = csr_for_remote_key(&signer, public.spki_der(), &common_name, names)
        .context("cannot make the CSR for the TLS key")?;
    let path = config.key_dir().join("tls.csr");
    std::fs::write(&path, request).with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "CSR for the TLS key: {} (issue it with `kammer pki issue` on the offline CA)",
        path.display()
    );
    Ok(())
}

/// `kammer keys status`: the key manager's state and the TLS certificate's validity.
pub fn status(path: &Path) -> anyhow::Result<()> {
    let (settings, config) = load(path)?;
    let keys = open(&config)?;
    println!("{}", keys.status());
    println!("{}", certificate_status(&settings.certificate, &keys));
    Ok(())
}

/// One line about the configured TLS certificate: missing, for another key, or valid until.
fn certificate_status(path: &Path, keys: &KeyManager) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return format!(
            "TLS certificate {}: none yet (issue one for keys/tls.csr)",
            path.display()
        );
    };
    let Some(block) = pem::parse_many(&text)
        .ok()
        .and_then(|blocks| blocks.into_iter().next())
    else {
        return format!("TLS certificate {}: not a PEM certificate", path.display());
    };
    let Ok((_, certificate)) = x509_parser::parse_x509_certificate(block.contents()) else {
        return format!("TLS certificate {}: does not parse", path.display());
    };
    let matches = certificate.public_key().raw == keys.public_key(Role::Tls).spki_der();
    let not_after = certificate.validity().not_after;
    let days = (not_after.timestamp() - time::OffsetDateTime::now_utc().unix_timestamp()) / 86_400;
    format!(
        "TLS certificate {}: valid until {not_after} ({days} days){}",
        path.display(),
        if matches {
            ""
        } else {
            "; NOT for the current TLS key: issue a new one"
        }
    )
}

/// `kammer keys rotate ROLE`.
pub fn rotate(path: &Path, role: &str) -> anyhow::Result<()> {
    let role = parse_role(role)?;
    let (_, config) = load(path)?;
    let keys = open(&config)?;
    let old = keys.public_key(role).fingerprint().to_string();
    let new = keys
        .rotate(role)
        .with_context(|| format!("rotating the {} key failed", role.name()))?;
    record(
        &keys,
        &config,
        "key_rotated",
        serde_json::json!({"role": role.name(), "old": old, "new": new.fingerprint().to_string()}),
    )?;
    println!(
        "{}: new key, SHA-256 fingerprint {}",
        role.name(),
        new.fingerprint()
    );
    if role == Role::Tls {
        println!("The TLS certificate no longer matches: issue a new one for this key.");
    }
    Ok(())
}

/// `kammer keys export-public`: every role's public key as PEM, for the CA and for verifiers.
pub fn export_public(path: &Path) -> anyhow::Result<()> {
    let (_, config) = load(path)?;
    let keys = open(&config)?;
    for role in ROLES {
        let key = keys.public_key(role);
        println!(
            "# {} key, SHA-256 fingerprint {}",
            role.name(),
            key.fingerprint()
        );
        println!("{}", pem("PUBLIC KEY", key.spki_der()));
    }
    Ok(())
}

fn print_keys(keys: &KeyManager) {
    for role in ROLES {
        println!(
            "  {:<6} {}  SHA-256 {}",
            role.name(),
            kammer_keys::ALGORITHM,
            keys.public_key(role).fingerprint()
        );
    }
    let status = keys.status();
    if status.is_insecure() {
        println!("WARNING: soft backend: keys are files on disk, for development only.");
    }
}

fn parse_role(text: &str) -> anyhow::Result<Role> {
    ROLES
        .into_iter()
        .find(|role| role.name() == text)
        .with_context(|| format!("\"{text}\" is not a key role; use tls, audit or media"))
}

/// PEM armour.
fn pem(label: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(label, der))
        .trim_end()
        .to_owned()
}

/// The media plane's DTLS certificate for this run: a fresh P-256 key in memory (DTLS signs
/// every handshake; a TPM would stall the media thread), with a certificate the key manager's
/// `media` key issues, so that the certificate is the appliance's and not anybody's.
pub(crate) fn media_certificate(keys: &KeyManager) -> anyhow::Result<crate::process::DtlsKeyPair> {
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|_| anyhow::anyhow!("cannot generate the media DTLS key"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| anyhow::anyhow!("cannot read the media DTLS key"))?;
    // SubjectPublicKeyInfo of an uncompressed P-256 point: the fixed DER prefix, then the point.
    const P256_SPKI_PREFIX: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    let spki = [&P256_SPKI_PREFIX[..], pair.public_key().as_ref()].concat();
    let subject = kammer_keys::PublicKey::from_spki_der(&spki)
        .context("the media DTLS key is not a P-256 point")?;
    let issuer = keys.public_key(Role::Media);
    let signer = |message: &[u8]| keys.sign(Role::Media, message);
    let der = kammer_certs::certify_with_remote_key(
        &signer,
        issuer.spki_der(),
        "kammer media key",
        subject.spki_der(),
        "kammer media dtls",
        // Renewed at every start; a year bounds it for appliances that run long.
        365,
    )
    .context("the media key could not certify the DTLS key")?;
    let pair = crate::process::DtlsKeyPair {
        pkcs8: zeroize::Zeroizing::new(pkcs8.as_ref().to_vec()),
        certificate: der,
    };
    // Checked here, where a failure can still be reported to the supervisor.
    pair.certificate()?;
    Ok(pair)
}
