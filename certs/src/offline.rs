//! The offline CA for an isolated network (`kammer pki`): create a CA, issue server
//! certificates from certificate requests, revoke them, write CRLs.
//!
//! # The CA directory
//! | file | content | mode |
//! |---|---|---|
//! | `ca.key` | the CA's private key, ECDSA P-384, PKCS #8 PEM | 0600 |
//! | `ca.pem` | the self-signed CA certificate: the trust anchor to install on clients | 0644 |
//! | `index.json` | what was issued and revoked, and the last CRL number (format in `docs/keys.md`) | 0644 |
//! | `issued/<serial>.pem` | a copy of every certificate issued | 0644 |
//! | `crl.pem` | the last CRL written | 0644 |
//! | `lock` | empty; locked while an operation changes the directory | 0600 |
//!
//! The directory is created with mode 0700. `ca.key`, `ca.pem` and `issued/*.pem` are written
//! once and never replaced; `index.json` and `crl.pem` are replaced atomically (temporary file,
//! fsync, rename, fsync of the directory). Operations that change the directory hold an
//! exclusive lock on `lock` and re-read `index.json` under it, so two processes take turns.
//!
//! # The CA certificate
//! ECDSA P-384 with SHA-384 signatures. The CA key lives longest and signs everything below
//! it, so it gets the larger curve; its signatures are rare, so the cost does not matter, and
//! browsers, rustls and OpenSSL all verify ECDSA P-384/SHA-384. basicConstraints `cA TRUE,
//! pathLenConstraint 0` (no intermediate CAs), keyUsage `keyCertSign cRLSign` (critical),
//! subjectKeyIdentifier, and optionally nameConstraints (critical): the permitted DNS names
//! and IP networks. If DNS names are permitted but no IP network, every IP address is
//! excluded, so that a leaked CA key cannot certify an address either. (If only IP networks
//! are given, DNS names stay unconstrained: RFC 5280 constrains only the name forms listed.)
//!
//! # What it issues
//! Server certificates only: a random 126-bit serial (16 bytes), subject `CN=<name>`,
//! subjectAltName with the DNS names and IP addresses, keyUsage `digitalSignature`
//! (critical), extendedKeyUsage `serverAuth`, basicConstraints `cA FALSE` (critical),
//! subject and authority key identifiers, valid from five minutes ago for at most
//! [`MAX_SERVER_VALIDITY_DAYS`] days, and never beyond the CA's own expiry.
//!
//! # What it refuses
//! * overwriting an existing CA;
//! * a request whose own signature does not verify, or whose key is not ECDSA P-256 or P-384
//!   (RSA, Ed25519, other curves), or that is signed with anything but ECDSA with SHA-256 or
//!   SHA-384;
//! * a request that asks for a CA certificate, or names e-mail addresses, URIs or other name
//!   forms;
//! * a certificate without names (a request without subject alternative names needs names
//!   given with [`Names::Exactly`]), with wildcard or malformed names, or with a name outside
//!   the CA's name constraints;
//! * validity above [`MAX_SERVER_VALIDITY_DAYS`] days or beyond the CA's expiry;
//! * revoking an unknown serial, or one already revoked.
//!
//! The requester's wishes for key usages, extended key usages and the subject are ignored:
//! those are the CA's decisions. The common name is the request's, if it is one of the
//! certificate's names, else the first DNS name (or address).

mod error;
mod index;
mod profile;

use std::fmt;
use std::path::{Path, PathBuf};

pub use error::CaError;
pub use index::{
    CertificateStatus, InvalidSerial, IssuedCertificate, RevocationReason, Serial, UnknownReason,
};
use rcgen::{
    CertificateRevocationListParams, Issuer, KeyIdMethod, KeyPair, PKCS_ECDSA_P384_SHA384,
    RevokedCertParams, SerialNumber,
};
use ring::rand::SystemRandom;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::files;
use crate::names::{self, Constraints, NameError, PermittedName, SubjectName};
use crate::request::VerifiedRequest;
use index::Index;
use profile::{CaInfo, ca_params, common_name, server_params};

/// The longest a server certificate may be valid: browsers refuse leaf certificates valid for
/// more than 398 days.
pub const MAX_SERVER_VALIDITY_DAYS: u32 = 397;
/// The longest a CA certificate may be valid (20 years).
pub const MAX_CA_VALIDITY_DAYS: u32 = 7305;
/// A sensible CA validity (10 years).
pub const DEFAULT_CA_VALIDITY_DAYS: u32 = 3652;
/// The furthest a CRL's nextUpdate may lie ahead.
pub const MAX_CRL_VALIDITY_DAYS: u32 = 366;
/// A sensible CRL validity: a new CRL is due monthly.
pub const DEFAULT_CRL_VALIDITY_DAYS: u32 = 30;

/// Certificates start this long before they are issued, for clients with slow clocks.
const BACKDATE: Duration = Duration::minutes(5);

const CA_KEY: &str = "ca.key";
const CA_CERT: &str = "ca.pem";
const INDEX: &str = "index.json";
const ISSUED: &str = "issued";
const CRL: &str = "crl.pem";

/// What `create` puts into the CA certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaOptions {
    /// The CA's common name, e.g. `Kammer CA Building 3` (1 to 64 characters).
    pub common_name: String,
    /// The organization, if any (1 to 64 characters).
    pub organization: Option<String>,
    /// Validity in days, 1 to [`MAX_CA_VALIDITY_DAYS`].
    pub validity_days: u32,
    /// The names the CA may certify; empty: unconstrained (not recommended).
    pub name_constraints: Vec<PermittedName>,
}

impl CaOptions {
    /// A CA with this common name, no organization, [`DEFAULT_CA_VALIDITY_DAYS`] and no name
    /// constraints.
    pub fn new(common_name: impl Into<String>) -> Self {
        Self {
            common_name: common_name.into(),
            organization: None,
            validity_days: DEFAULT_CA_VALIDITY_DAYS,
            name_constraints: Vec::new(),
        }
    }
}

/// Which names a certificate is issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Names {
    /// The DNS names and IP addresses of the request's subject alternative names.
    FromRequest,
    /// These names, whatever the request asks for.
    Exactly(Vec<SubjectName>),
}

/// What `issue_from_csr` puts into a server certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueOptions {
    /// Validity in days, 1 to [`MAX_SERVER_VALIDITY_DAYS`].
    pub validity_days: u32,
    /// The names to certify.
    pub names: Names,
}

impl Default for IssueOptions {
    /// [`MAX_SERVER_VALIDITY_DAYS`], names from the request.
    fn default() -> Self {
        Self {
            validity_days: MAX_SERVER_VALIDITY_DAYS,
            names: Names::FromRequest,
        }
    }
}

/// A certificate just issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// Its serial number.
    pub serial: Serial,
    /// The certificate (PEM), without the CA certificate.
    pub pem: String,
    /// Its names.
    pub names: Vec<SubjectName>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// The copy in the CA directory, `issued/<serial>.pem`.
    pub path: PathBuf,
}

/// A CRL just written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crl {
    /// Its crlNumber (1 for the first CRL of a CA).
    pub number: u64,
    /// The CRL (PEM).
    pub pem: String,
    /// Its thisUpdate.
    pub this_update: OffsetDateTime,
    /// Its nextUpdate: clients may treat the CRL as stale after this.
    pub next_update: OffsetDateTime,
    /// How many revoked certificates it lists.
    pub revoked: usize,
    /// Where it was written: `crl.pem` in the CA directory.
    pub path: PathBuf,
}

/// An offline CA, opened from its directory. Holds the CA key in memory (inside ring, which
/// does not zeroize it; the PEM read from `ca.key` is zeroized).
pub struct OfflineCa {
    dir: PathBuf,
    certificate_pem: String,
    certificate_der: Vec<u8>,
    key: KeyPair,
    key_id: Vec<u8>,
    not_after: OffsetDateTime,
    constraints: Constraints,
}

impl fmt::Debug for OfflineCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfflineCa")
            .field("dir", &self.dir)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl OfflineCa {
    /// Creates a CA in `dir` (created with mode 0700 if missing; an existing directory is fine
    /// as long as it holds no CA): a new ECDSA P-384 key in `ca.key` (mode 0600), the
    /// self-signed certificate in `ca.pem`, an empty `index.json` and `issued/`.
    ///
    /// Refuses with [`CaError::Exists`] if `ca.key`, `ca.pem` or `index.json` exists. If it is
    /// interrupted, the files written so far stay and `open` reports the CA as incomplete;
    /// remove the directory and create again.
    pub fn create(dir: &Path, options: &CaOptions) -> Result<Self, CaError> {
        check_days("CA", options.validity_days, MAX_CA_VALIDITY_DAYS)?;
        names::check_common_name(&options.common_name)?;
        if let Some(organization) = &options.organization {
            names::check_common_name(organization).map_err(|_| CaError::InvalidOrganization)?;
        }
        // Checked before the lock file is created (so that a refused directory is left as it
        // was) and again under the lock.
        refuse_existing_ca(dir)?;
        files::create_private_dir(dir)?;
        let lock = files::lock_dir(dir)?;
        refuse_existing_ca(dir)?;
        let rng = SystemRandom::new();
        let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384)?;
        let params = ca_params(options, now(), Serial::random(&rng)?)?;
        let certificate = params.self_signed(&key)?;
        // The key first: `write_new` refuses to replace a file, so a second `create` racing
        // this one fails here at the latest.
        files::write_new(
            &dir.join(CA_KEY),
            Zeroizing::new(key.serialize_pem()).as_bytes(),
            0o600,
        )?;
        files::write_new(&dir.join(CA_CERT), certificate.pem().as_bytes(), 0o644)?;
        files::create_private_dir(&dir.join(ISSUED))?;
        files::write_new(
            &dir.join(INDEX),
            Index::default().to_json().as_bytes(),
            0o644,
        )?;
        drop(lock);
        Self::open(dir)
    }

    /// Opens the CA in `dir`: reads `ca.pem` and `ca.key`, checks that they belong together
    /// and that `index.json` is readable.
    pub fn open(dir: &Path) -> Result<Self, CaError> {
        let cert_path = dir.join(CA_CERT);
        if !cert_path.exists() {
            return Err(CaError::NoCa {
                dir: dir.to_owned(),
            });
        }
        for missing in [CA_KEY, INDEX] {
            if !dir.join(missing).exists() {
                return Err(CaError::Incomplete {
                    dir: dir.to_owned(),
                    missing,
                });
            }
        }
        let certificate_pem = files::read(&cert_path)?;
        let info = CaInfo::parse(&certificate_pem).map_err(|reason| CaError::UnusableCa {
            path: cert_path.clone(),
            reason,
        })?;
        let key_path = dir.join(CA_KEY);
        let key = KeyPair::from_pem(&files::read_secret(&key_path)?).map_err(|_| {
            CaError::UnusableCa {
                path: key_path.clone(),
                reason: "not a PKCS #8 PEM private key",
            }
        })?;
        if key.algorithm() != &PKCS_ECDSA_P384_SHA384 {
            return Err(CaError::UnusableCa {
                path: key_path,
                reason: "not an ECDSA P-384 key",
            });
        }
        if key.public_key_raw() != info.public_point {
            return Err(CaError::KeyMismatch {
                dir: dir.to_owned(),
            });
        }
        read_index(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            certificate_pem,
            certificate_der: info.der,
            key,
            key_id: info.key_id,
            not_after: info.not_after,
            constraints: info.constraints,
        })
    }

    /// The CA directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate (PEM), as in `ca.pem`.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// SHA-256 of the CA certificate (DER), in hex: to compare out of band when `ca.pem` is
    /// installed on a client.
    pub fn certificate_fingerprint(&self) -> String {
        ring::digest::digest(&ring::digest::SHA256, &self.certificate_der)
            .as_ref()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// When the CA certificate expires.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Issues a server certificate for the key of `csr_pem` (a PEM PKCS #10 request), records
    /// it in `index.json` and writes a copy to `issued/<serial>.pem`.
    ///
    /// The request's signature must verify with its own key, an ECDSA P-256 or P-384 key;
    /// see the module documentation for everything that is refused.
    pub fn issue_from_csr(&self, csr_pem: &str, options: &IssueOptions) -> Result<Issued, CaError> {
        check_days(
            "server certificate",
            options.validity_days,
            MAX_SERVER_VALIDITY_DAYS,
        )?;
        let request = VerifiedRequest::parse(csr_pem)?;
        let names = match &options.names {
            Names::FromRequest => request.names.clone(),
            Names::Exactly(names) => names.clone(),
        };
        let names = names::normalize(names).map_err(|error| match error {
            NameError::NoNames => CaError::NoNames,
            other => CaError::Name(other),
        })?;
        if let Some(name) = names.iter().find(|name| !self.constraints.permits(name)) {
            return Err(CaError::NotPermitted(name.clone()));
        }
        let now = now();
        let not_before = now - BACKDATE;
        let not_after = now + Duration::days(i64::from(options.validity_days));
        if not_after > self.not_after {
            return Err(CaError::OutlivesCa {
                not_after,
                ca_not_after: self.not_after,
            });
        }
        let common_name = common_name(request.common_name.as_deref(), &names);
        let public_key = rcgen::SubjectPublicKeyInfo::from_der(&request.spki_der)?;

        let rng = SystemRandom::new();
        let _lock = files::lock_dir(&self.dir)?;
        let mut index = read_index(&self.dir)?;
        let serial = loop {
            let serial = Serial::random(&rng)?;
            if !index.contains(&serial) {
                break serial;
            }
        };
        let params = server_params(
            serial,
            common_name.as_deref(),
            &names,
            not_before,
            not_after,
        )?;
        let certificate = params.signed_by(&public_key, &self.issuer()?)?;
        let pem = certificate.pem();

        index.certificates.push(IssuedCertificate {
            serial,
            subject: common_name
                .as_ref()
                .map(|cn| format!("CN={cn}"))
                .unwrap_or_default(),
            names: names.clone(),
            not_before,
            not_after,
            status: CertificateStatus::Valid,
        });
        // Recorded before it is handed out: every certificate that leaves the CA can be
        // revoked.
        write_index(&self.dir, &index)?;
        let issued = self.dir.join(ISSUED);
        files::create_private_dir(&issued)?;
        let path = issued.join(format!("{serial}.pem"));
        files::write_new(&path, pem.as_bytes(), 0o644)?;
        Ok(Issued {
            serial,
            pem,
            names,
            not_before,
            not_after,
            path,
        })
    }

    /// Records the revocation of the certificate with `serial` in `index.json`. The next
    /// [`crl`](Self::crl) lists it; until a new CRL is distributed, clients do not know.
    pub fn revoke(
        &self,
        serial: &Serial,
        reason: RevocationReason,
    ) -> Result<IssuedCertificate, CaError> {
        let _lock = files::lock_dir(&self.dir)?;
        let mut index = read_index(&self.dir)?;
        let certificate = index
            .find_mut(serial)
            .ok_or(CaError::UnknownSerial(*serial))?;
        if let CertificateStatus::Revoked { .. } = certificate.status {
            return Err(CaError::AlreadyRevoked(*serial));
        }
        certificate.status = CertificateStatus::Revoked { at: now(), reason };
        let revoked = certificate.clone();
        write_index(&self.dir, &index)?;
        Ok(revoked)
    }

    /// Writes a new CRL to `crl.pem` (replacing the last one) and returns it: every revoked
    /// certificate, the next crlNumber (recorded in `index.json` first, so that a number is
    /// never used twice), thisUpdate now, nextUpdate `next_update_days` later (1 to
    /// [`MAX_CRL_VALIDITY_DAYS`]).
    pub fn crl(&self, next_update_days: u32) -> Result<Crl, CaError> {
        check_days("CRL", next_update_days, MAX_CRL_VALIDITY_DAYS)?;
        let _lock = files::lock_dir(&self.dir)?;
        let mut index = read_index(&self.dir)?;
        let number = index
            .crl_number
            .checked_add(1)
            .ok_or_else(|| CaError::Index {
                path: self.dir.join(INDEX),
                detail: "the CRL number cannot grow any further".to_owned(),
            })?;
        let this_update = now();
        let next_update = this_update + Duration::days(i64::from(next_update_days));
        let revoked_certs: Vec<_> = index
            .certificates
            .iter()
            .filter_map(|certificate| match certificate.status {
                CertificateStatus::Valid => None,
                CertificateStatus::Revoked { at, reason } => Some(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(certificate.serial.as_bytes()),
                    revocation_time: at,
                    reason_code: reason.crl_reason(),
                    invalidity_date: None,
                }),
            })
            .collect();
        let revoked = revoked_certs.len();
        let crl = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::PreSpecified(self.key_id.clone()),
        }
        .signed_by(&self.issuer()?)?;
        let pem = crl.pem()?;
        index.crl_number = number;
        write_index(&self.dir, &index)?;
        let path = self.dir.join(CRL);
        files::replace(&path, pem.as_bytes(), 0o644)?;
        Ok(Crl {
            number,
            pem,
            this_update,
            next_update,
            revoked,
            path,
        })
    }

    /// Every certificate this CA issued, in the order issued.
    pub fn list(&self) -> Result<Vec<IssuedCertificate>, CaError> {
        Ok(read_index(&self.dir)?.certificates)
    }

    fn issuer(&self) -> Result<Issuer<'static, &KeyPair>, CaError> {
        Ok(Issuer::from_ca_cert_pem(&self.certificate_pem, &self.key)?)
    }
}

/// Now, to the second (certificates carry no fractions of a second).
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

fn refuse_existing_ca(dir: &Path) -> Result<(), CaError> {
    for found in [CA_KEY, CA_CERT, INDEX] {
        if dir.join(found).exists() {
            return Err(CaError::Exists {
                dir: dir.to_owned(),
                found,
            });
        }
    }
    Ok(())
}

fn check_days(what: &'static str, days: u32, max: u32) -> Result<(), CaError> {
    if days == 0 || days > max {
        return Err(CaError::Validity { what, days, max });
    }
    Ok(())
}

fn read_index(dir: &Path) -> Result<Index, CaError> {
    let path = dir.join(INDEX);
    let json = files::read(&path)?;
    Index::from_json(&json).map_err(|detail| CaError::Index { path, detail })
}

fn write_index(dir: &Path, index: &Index) -> Result<(), CaError> {
    Ok(files::replace(
        &dir.join(INDEX),
        index.to_json().as_bytes(),
        0o644,
    )?)
}
