//! Kammer's public-key infrastructure.
//!
//! Today this crate creates the **development PKI** that `kammer demo` uses: a local CA and a
//! server certificate for `localhost` / `127.0.0.1` / `::1`, both ECDSA P-256. The offline CA for
//! isolated networks (CSR issuance, revocation, CRLs) builds on the same pieces.
//!
//! Invariants: existing files are never overwritten; private keys are written with mode 0600 into
//! a directory with mode 0700, atomically (write to a temporary name, then rename); key material
//! held in memory is zeroized when dropped.

mod dev;

pub use dev::{DevPki, ensure_dev_pki};

/// What can go wrong while creating or loading certificates.
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
