//! The offline CA's errors.

use std::path::PathBuf;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Serial;
use crate::files::FileError;
use crate::names::{NameError, SubjectName};
use crate::request::RequestError;

/// What can go wrong in the offline CA. Messages are meant for the operator; print the error
/// with its sources (`{:#}` through anyhow) to see the operating system's reason for I/O
/// errors.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// A file or directory could not be read or written.
    #[error("{}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// `create` found CA files in the directory.
    #[error(
        "{} already holds an offline CA ({found} exists); an existing CA is never overwritten",
        dir.display()
    )]
    Exists {
        /// The CA directory.
        dir: PathBuf,
        /// The file found.
        found: &'static str,
    },
    /// `open` found no `ca.pem`.
    #[error(
        "{} holds no offline CA (no ca.pem); create one with `kammer pki ca-init`",
        dir.display()
    )]
    NoCa {
        /// The directory.
        dir: PathBuf,
    },
    /// `ca.pem` exists but another file of the CA does not (an interrupted `create`, or files
    /// lost).
    #[error("{} is an incomplete offline CA: {missing} is missing", dir.display())]
    Incomplete {
        /// The CA directory.
        dir: PathBuf,
        /// The missing file.
        missing: &'static str,
    },
    /// `index.json` is damaged.
    #[error("{}: {detail}", path.display())]
    Index {
        /// The index file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// `ca.pem` or `ca.key` is not what `create` writes.
    #[error("{}: {reason}", path.display())]
    UnusableCa {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `ca.key` is not the key of `ca.pem`.
    #[error("ca.key in {} is not the key of ca.pem", dir.display())]
    KeyMismatch {
        /// The CA directory.
        dir: PathBuf,
    },
    /// A validity out of range.
    #[error("the {what} validity must be 1 to {max} days, not {days}")]
    Validity {
        /// What the validity is for.
        what: &'static str,
        /// The days asked for.
        days: u32,
        /// The most allowed.
        max: u32,
    },
    /// An empty or over-long organization, or one with control characters.
    #[error("the organization must be 1 to 64 characters long, without control characters")]
    InvalidOrganization,
    /// A name that cannot be used.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A certificate request that is refused.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// Neither the request nor the options name anything to certify.
    #[error("the request names no DNS name or IP address; give the names to certify")]
    NoNames,
    /// A name outside the CA's name constraints.
    #[error("{0} is outside the CA's name constraints")]
    NotPermitted(SubjectName),
    /// The certificate would be valid after the CA expires.
    #[error(
        "the certificate would be valid until {}, after the CA expires ({}); ask for fewer \
         days or create a new CA",
        rfc3339(*.not_after),
        rfc3339(*.ca_not_after)
    )]
    OutlivesCa {
        /// The certificate's end of validity.
        not_after: OffsetDateTime,
        /// The CA's.
        ca_not_after: OffsetDateTime,
    },
    /// `revoke` with a serial this CA did not issue.
    #[error("this CA issued no certificate with serial {0}")]
    UnknownSerial(Serial),
    /// `revoke` of a revoked certificate.
    #[error("the certificate with serial {0} is already revoked")]
    AlreadyRevoked(Serial),
    /// The operating system's random generator failed.
    #[error("the operating system's random generator failed")]
    Random,
    /// rcgen could not build or sign a certificate or CRL.
    #[error("rcgen could not build or sign the certificate or CRL")]
    Certificate(#[from] rcgen::Error),
}

impl From<FileError> for CaError {
    fn from(error: FileError) -> Self {
        Self::Io {
            path: error.path,
            source: error.source,
        }
    }
}

impl From<ring::error::Unspecified> for CaError {
    fn from(_: ring::error::Unspecified) -> Self {
        Self::Random
    }
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&Rfc3339)
        .unwrap_or_else(|_| time.unix_timestamp().to_string())
}
