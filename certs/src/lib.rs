//! Kammer's public-key infrastructure.
//!
//! * The **development PKI** that `kammer demo` uses ([`ensure_dev_pki`]): a local CA and a
//!   server certificate for `localhost` / `127.0.0.1` / `::1`, both ECDSA P-256.
//! * The **offline CA** for an isolated network ([`OfflineCa`], behind `kammer pki`): an ECDSA
//!   P-384 CA in a directory of its own that issues server certificates from certificate
//!   requests, revokes them and writes CRLs. See the [`offline`] module for its files, what it
//!   issues and what it refuses.
//! * **Requests for a remote key** ([`csr_for_remote_key`], [`self_signed_for_remote_key`]):
//!   a certificate request or self-signed certificate for a key that lives in the key manager
//!   or a TPM, signed through a callback.
//!
//! Invariants: existing key and certificate files are never overwritten; private keys are
//! written with mode 0600 into a directory with mode 0700; files are written to a temporary
//! name and then linked or renamed into place, so that a crash leaves the old file or the new
//! one, never a mixture; key material read from files is zeroized when dropped (keys inside
//! ring are not). The CA signs nothing whose request signature it has not verified.

mod dev;
mod files;
mod names;
pub mod offline;
mod remote;
mod request;

pub use dev::{DevPki, ensure_dev_pki};
pub use names::{DnsName, MAX_NAMES, NameError, PermittedName, SubjectName};
pub use offline::{
    CaError, CaOptions, CertificateStatus, Crl, InvalidSerial, IssueOptions, Issued,
    IssuedCertificate, Names, OfflineCa, RevocationReason, Serial, UnknownReason,
};
pub use remote::{
    RemoteKeyError, RemoteSigner, certify_with_remote_key, csr_for_remote_key,
    self_signed_for_remote_key,
};
pub use request::{KeyKind, RequestError};

use crate::files::FileError;

/// What can go wrong while creating or loading the development PKI.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// rcgen could not build, sign or parse a certificate or key.
    #[error("certificate operation failed: {0}")]
    Certificate(#[from] rcgen::Error),
}

impl From<FileError> for CertError {
    fn from(error: FileError) -> Self {
        Self::Io {
            path: error.path,
            source: error.source,
        }
    }
}
