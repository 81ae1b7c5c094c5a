//! The development PKI: a local CA and a localhost server certificate.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, PKCS_ECDSA_P256_SHA256, SanType,
};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::CertError;
use crate::files::{FileError, create_private_dir, read, read_secret, write_new};

/// Validity of the development CA.
const CA_VALIDITY: Duration = Duration::days(5 * 365);
/// Validity of the server certificate; browsers refuse leaf certificates valid for longer than
/// 398 days.
const SERVER_VALIDITY: Duration = Duration::days(397);

/// Where the development PKI lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevPki {
    /// The CA certificate to trust (PEM).
    pub ca_certificate: PathBuf,
    /// The server certificate followed by the CA certificate (PEM).
    pub server_chain: PathBuf,
    /// The server's private key (PKCS#8 PEM, mode 0600).
    pub server_key: PathBuf,
    /// Whether this call created anything (false: everything was reused).
    pub created: bool,
}

/// Creates the development CA and server certificate in `dir`, reusing whatever already exists.
///
/// A missing server certificate is issued by an existing CA; an existing file is never replaced.
pub fn ensure_dev_pki(dir: &Path) -> Result<DevPki, CertError> {
    create_private_dir(dir)?;
    let ca_cert_path = dir.join("ca.pem");
    let ca_key_path = dir.join("ca.key");
    let server_chain = dir.join("server.pem");
    let server_key = dir.join("server.key");
    let now = OffsetDateTime::now_utc();
    let mut created = false;

    let (ca_pem, ca_key) = if ca_cert_path.exists() && ca_key_path.exists() {
        let pem = read(&ca_cert_path)?;
        let key = KeyPair::from_pem(&read_secret(&ca_key_path)?)?;
        // From here on the CA key exists only inside `key`.
        (pem, key)
    } else if ca_cert_path.exists() || ca_key_path.exists() {
        return Err(FileError::new(
            dir,
            std::io::Error::other(
                "only one of ca.pem and ca.key exists; restore the other or remove both",
            ),
        )
        .into());
    } else {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = ca_params(now)?.self_signed(&key)?;
        write_new(
            &ca_key_path,
            Zeroizing::new(key.serialize_pem()).as_bytes(),
            0o600,
        )?;
        write_new(&ca_cert_path, cert.pem().as_bytes(), 0o644)?;
        created = true;
        (cert.pem(), key)
    };

    if !(server_chain.exists() && server_key.exists()) {
        if server_chain.exists() || server_key.exists() {
            return Err(FileError::new(
                dir,
                std::io::Error::other(
                    "only one of server.pem and server.key exists; restore the other or remove both",
                ),
            )
            .into());
        }
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = server_params(now)?.signed_by(&key, &issuer)?;
        let key_pem = Zeroizing::new(key.serialize_pem());
        write_new(&server_key, key_pem.as_bytes(), 0o600)?;
        write_new(
            &server_chain,
            format!("{}{}", cert.pem(), ca_pem).as_bytes(),
            0o644,
        )?;
        created = true;
    }

    Ok(DevPki {
        ca_certificate: ca_cert_path,
        server_chain,
        server_key,
        created,
    })
}

fn ca_params(now: OffsetDateTime) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "Kammer development");
    name.push(DnType::CommonName, "Kammer development CA");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    // A browser that trusts this CA trusts it for this machine's loopback names only, so that a
    // leaked development CA key cannot impersonate any other site.
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![
            GeneralSubtree::DnsName("localhost".to_owned()),
            GeneralSubtree::IpAddress(CidrSubnet::V4([127, 0, 0, 0], [255, 0, 0, 0])),
            GeneralSubtree::IpAddress(CidrSubnet::V6(
                std::net::Ipv6Addr::LOCALHOST.octets(),
                [0xff; 16],
            )),
        ],
        excluded_subtrees: Vec::new(),
    });
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + CA_VALIDITY;
    Ok(params)
}

fn server_params(now: OffsetDateTime) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "Kammer development");
    name.push(DnType::CommonName, "localhost");
    params.distinguished_name = name;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + SERVER_VALIDITY;
    Ok(params)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn creates_once_then_reuses() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = ensure_dev_pki(dir.path()).expect("created");
        assert!(first.created);
        let ca = fs::read(&first.ca_certificate).expect("ca");
        let key = fs::read(&first.server_key).expect("key");
        let mode = fs::metadata(&first.server_key)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let chain = fs::read_to_string(&first.server_chain).expect("chain");
        assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);

        let second = ensure_dev_pki(dir.path()).expect("reused");
        assert!(!second.created);
        assert_eq!(fs::read(&second.ca_certificate).expect("ca"), ca);
        assert_eq!(fs::read(&second.server_key).expect("key"), key);
    }

    #[test]
    fn missing_server_certificate_is_issued_by_the_existing_ca() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = ensure_dev_pki(dir.path()).expect("created");
        let ca = fs::read(&first.ca_certificate).expect("ca");
        fs::remove_file(&first.server_chain).expect("rm");
        fs::remove_file(&first.server_key).expect("rm");
        let second = ensure_dev_pki(dir.path()).expect("reissued");
        assert!(second.created);
        assert_eq!(fs::read(&second.ca_certificate).expect("ca"), ca);
        let chain = fs::read_to_string(&second.server_chain).expect("chain");
        assert!(chain.ends_with(&String::from_utf8(ca).expect("utf8")));
    }

    #[test]
    fn a_stale_temporary_file_does_not_lend_its_permissions() {
        let dir = tempfile::tempdir().expect("temp dir");
        let stale = dir.path().join(".server.key.tmp");
        fs::write(&stale, "old").expect("write");
        fs::set_permissions(&stale, fs::Permissions::from_mode(0o666)).expect("chmod");
        let pki = ensure_dev_pki(dir.path()).expect("created");
        let mode = fs::metadata(&pki.server_key)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!stale.exists());
    }

    #[test]
    fn half_a_key_pair_is_an_error_not_an_overwrite() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = ensure_dev_pki(dir.path()).expect("created");
        fs::remove_file(&first.server_key).expect("rm");
        let chain = fs::read(&first.server_chain).expect("chain");
        let error = ensure_dev_pki(dir.path()).expect_err("must refuse");
        assert!(error.to_string().contains("server.key"), "{error}");
        assert_eq!(fs::read(&first.server_chain).expect("chain"), chain);
    }
}
