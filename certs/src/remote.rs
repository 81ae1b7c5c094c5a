//! Certificate requests and self-signed certificates for a key that lives elsewhere: in the key
//! manager (`kammer-keys`), in a TPM. The key is given as its public key and a callback that
//! signs; the private key never reaches this crate.
//!
//! The key must be ECDSA P-256 and the callback must return an ECDSA signature with SHA-256
//! over the message it is given, DER-encoded (`Ecdsa-Sig-Value`): it hashes the message
//! itself, as `KeyManager::sign` does. For example, a request for the TLS role key (as `kammer keys init` makes it; an illustration, since this crate does not depend on the key manager):
//!
//! ```text
//! let tls = keys.public_key(Role::Tls);
//! let csr = csr_for_remote_key(
//!     &|message| keys.sign_pinned(Role::Tls, &tls, message),
//!     tls.spki_der(),
//!     "kammer.example.org",
//!     &["kammer.example.org".parse()?, "10.20.0.5".parse()?],
//! )?;
//! ```
//!
//! Every result is checked before it is returned: its signature must verify with the given
//! public key, so a callback that signs with another key is caught here, not by the CA.

use std::cell::RefCell;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::names::{self, NameError, SubjectName};
use crate::offline::{MAX_SERVER_VALIDITY_DAYS, Serial};
use crate::request::{self, Curve};

/// The callback that signs with the remote key: ECDSA P-256 over SHA-256 of its argument, the
/// signature DER-encoded.
pub type RemoteSigner<'a, E> = dyn Fn(&[u8]) -> Result<Vec<u8>, E> + 'a;

/// What can go wrong while building a request or certificate for a remote key.
#[derive(Debug, thiserror::Error)]
pub enum RemoteKeyError<E> {
    /// The public key is not what the callback can sign for.
    #[error("the public key is not an ECDSA P-256 SubjectPublicKeyInfo with an uncompressed point")]
    PublicKey,
    /// A name that cannot be used, or none at all.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A validity out of range.
    #[error("the validity must be 1 to {max} days, not {days}")]
    Validity {
        /// The days asked for.
        days: u32,
        /// The most allowed.
        max: u32,
    },
    /// The callback failed.
    #[error("the remote key did not sign")]
    Signer(#[source] E),
    /// The callback's signature does not verify with the public key.
    #[error(
        "the signature does not verify with the given public key: the signer holds another key"
    )]
    KeyMismatch,
    /// rcgen could not build the request or certificate.
    #[error("rcgen could not build the request or certificate")]
    Certificate(#[source] rcgen::Error),
    /// The operating system's random generator failed.
    #[error("the operating system's random generator failed")]
    Random,
}

/// Builds a PEM certificate request (PKCS #10) for the ECDSA P-256 key `spki_der` (DER
/// SubjectPublicKeyInfo) with subject `CN=<common_name>`, the `names` as subject alternative
/// names, and the wish for keyUsage `digitalSignature` and extendedKeyUsage `serverAuth`.
/// `signer` signs the request once.
pub fn csr_for_remote_key<E>(
    signer: &RemoteSigner<'_, E>,
    spki_der: &[u8],
    common_name: &str,
    names: &[SubjectName],
) -> Result<String, RemoteKeyError<E>> {
    let key = RemoteKey::new(signer, spki_der)?;
    let params = server_params(common_name, names)?;
    let request = params
        .serialize_request(&key)
        .map_err(|error| key.error(error))?;

    let (_, parsed) = X509CertificationRequest::from_der(request.der())
        .map_err(|_| RemoteKeyError::KeyMismatch)?;
    let info = &parsed.certification_request_info;
    request::verify_ecdsa(
        &key.spki()?,
        &parsed.signature_algorithm,
        info.raw,
        &parsed.signature_value.data,
    )
    .map_err(|_| RemoteKeyError::KeyMismatch)?;
    request.pem().map_err(RemoteKeyError::Certificate)
}

/// Builds a PEM self-signed server certificate for the ECDSA P-256 key `spki_der`: subject
/// `CN=<common_name>`, the `names`, keyUsage `digitalSignature`, extendedKeyUsage
/// `serverAuth`, basicConstraints `cA FALSE`, a random serial, valid from five minutes ago for
/// `validity_days` (1 to 397). For a client that pins this one certificate; an appliance in an
/// isolated network normally gets its certificate from the offline CA instead.
pub fn self_signed_for_remote_key<E>(
    signer: &RemoteSigner<'_, E>,
    spki_der: &[u8],
    common_name: &str,
    names: &[SubjectName],
    validity_days: u32,
) -> Result<String, RemoteKeyError<E>> {
    check_validity(validity_days)?;
    let key = RemoteKey::new(signer, spki_der)?;
    let mut params = server_params(common_name, names)?;
    let serial =
        Serial::random(&ring::rand::SystemRandom::new()).map_err(|_| RemoteKeyError::Random)?;
    params.serial_number = Some(SerialNumber::from_slice(serial.as_bytes()));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_identifier_method = KeyIdMethod::Sha256;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(i64::from(validity_days));
    let certificate = params.self_signed(&key).map_err(|error| key.error(error))?;

    check_signed_by(&key, certificate.der())?;
    Ok(certificate.pem())
}

/// The remote key really signed `der` (a callback holding another key is caught here).
fn check_signed_by<E>(key: &RemoteKey<'_, E>, der: &[u8]) -> Result<(), RemoteKeyError<E>> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(der).map_err(|_| RemoteKeyError::KeyMismatch)?;
    request::verify_ecdsa(
        &key.spki()?,
        &parsed.signature_algorithm,
        parsed.tbs_certificate.as_ref(),
        &parsed.signature_value.data,
    )
    .map_err(|_| RemoteKeyError::KeyMismatch)
}

fn check_validity<E>(days: u32) -> Result<(), RemoteKeyError<E>> {
    if days == 0 || days > MAX_SERVER_VALIDITY_DAYS {
        return Err(RemoteKeyError::Validity {
            days,
            max: MAX_SERVER_VALIDITY_DAYS,
        });
    }
    Ok(())
}

fn server_params<E>(
    common_name: &str,
    names: &[SubjectName],
) -> Result<CertificateParams, RemoteKeyError<E>> {
    names::check_common_name(common_name)?;
    let names = names::normalize(names.to_vec())?;
    let mut params = CertificateParams::default();
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, common_name);
    params.distinguished_name = subject;
    for name in &names {
        params.subject_alt_names.push(match name {
            SubjectName::Dns(dns) => SanType::DnsName(
                dns.as_str()
                    .try_into()
                    .map_err(RemoteKeyError::Certificate)?,
            ),
            SubjectName::Ip(address) => SanType::IpAddress(*address),
        });
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok(params)
}

/// rcgen's view of the remote key: its public key, and the callback behind `sign`. The
/// callback's own error is kept, since rcgen's `SigningKey::sign` can only report its own.
struct RemoteKey<'a, E> {
    signer: &'a RemoteSigner<'a, E>,
    spki_der: &'a [u8],
    point: Vec<u8>,
    failure: RefCell<Option<E>>,
}

impl<'a, E> RemoteKey<'a, E> {
    fn new(signer: &'a RemoteSigner<'a, E>, spki_der: &'a [u8]) -> Result<Self, RemoteKeyError<E>> {
        let (rest, spki) =
            SubjectPublicKeyInfo::from_der(spki_der).map_err(|_| RemoteKeyError::PublicKey)?;
        if !rest.is_empty() || request::curve_of(&spki) != Ok(Curve::P256) {
            return Err(RemoteKeyError::PublicKey);
        }
        Ok(Self {
            signer,
            spki_der,
            point: spki.subject_public_key.data.to_vec(),
            failure: RefCell::new(None),
        })
    }

    fn spki(&self) -> Result<SubjectPublicKeyInfo<'a>, RemoteKeyError<E>> {
        SubjectPublicKeyInfo::from_der(self.spki_der)
            .map(|(_, spki)| spki)
            .map_err(|_| RemoteKeyError::PublicKey)
    }

    /// The callback's error if it failed, else rcgen's.
    fn error(&self, error: rcgen::Error) -> RemoteKeyError<E> {
        match self.failure.take() {
            Some(failure) => RemoteKeyError::Signer(failure),
            None => RemoteKeyError::Certificate(error),
        }
    }
}

impl<E> rcgen::PublicKeyData for RemoteKey<'_, E> {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

impl<E> rcgen::SigningKey for RemoteKey<'_, E> {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        (self.signer)(message).map_err(|failure| {
            self.failure.replace(Some(failure));
            rcgen::Error::RemoteKeyError
        })
    }
}

/// A certificate (DER) for another ECDSA P-256 key, `subject_spki_der`, issued by the remote
/// key `issuer_spki_der` in the name `CN=<issuer_name>`: subject `CN=<subject_name>`,
/// keyUsage `digitalSignature`, basicConstraints `cA FALSE`, a random serial, valid from five
/// minutes ago for `validity_days` (1 to 397). The media plane's per-start DTLS certificate is
/// made this way, vouched for by the key manager's media key.
pub fn certify_with_remote_key<E>(
    signer: &RemoteSigner<'_, E>,
    issuer_spki_der: &[u8],
    issuer_name: &str,
    subject_spki_der: &[u8],
    subject_name: &str,
    validity_days: u32,
) -> Result<Vec<u8>, RemoteKeyError<E>> {
    check_validity(validity_days)?;
    names::check_common_name(issuer_name)?;
    names::check_common_name(subject_name)?;
    let key = RemoteKey::new(signer, issuer_spki_der)?;
    let mut issuer_params = CertificateParams::default();
    let mut issuer_dn = DistinguishedName::new();
    issuer_dn.push(DnType::CommonName, issuer_name);
    issuer_params.distinguished_name = issuer_dn;
    issuer_params.key_identifier_method = KeyIdMethod::Sha256;
    let issuer = rcgen::Issuer::new(issuer_params, &key);
    let subject = rcgen::SubjectPublicKeyInfo::from_der(subject_spki_der)
        .map_err(|_| RemoteKeyError::PublicKey)?;
    let mut params = CertificateParams::default();
    let mut subject_dn = DistinguishedName::new();
    subject_dn.push(DnType::CommonName, subject_name);
    params.distinguished_name = subject_dn;
    let serial =
        Serial::random(&ring::rand::SystemRandom::new()).map_err(|_| RemoteKeyError::Random)?;
    params.serial_number = Some(SerialNumber::from_slice(serial.as_bytes()));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.key_identifier_method = KeyIdMethod::Sha256;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(i64::from(validity_days));
    let certificate = params
        .signed_by(&subject, &issuer)
        .map_err(|error| key.error(error))?;
    check_signed_by(&key, certificate.der())?;
    Ok(certificate.der().to_vec())
}
