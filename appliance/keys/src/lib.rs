//! Kammer's key manager: the only code of the appliance that touches key material.
//!
//! # What it does
//! It holds three signing keys, one per [`Role`] (the TLS server certificate key, the audit and
//! vote key, the media DTLS key), all ECDSA P-256 with SHA-256, and a 32-byte **storage
//! secret** from which it derives the keys that wrap data keys (recording keys and the like).
//! The rest of kammer sees one narrow interface, [`KeyManager`]:
//!
//! * [`public_key`](KeyManager::public_key) and [`sign`](KeyManager::sign) per role (the
//!   manager hashes the message; the signature is DER),
//! * [`wrap`](KeyManager::wrap) / [`unwrap`](KeyManager::unwrap) of small secrets under a label
//!   (AES-256-GCM under an HKDF-SHA-256 key of the storage secret, see [`wrap`] for the format),
//! * [`random`](KeyManager::random), [`status`](KeyManager::status),
//!   [`rotate`](KeyManager::rotate),
//! * and [`tls`]: a rustls `SigningKey` backed by the `Tls` role.
//!
//! # Backends
//! * [`Backend::Tpm`] (production): keys are generated inside a TPM 2.0 and cannot leave it;
//!   only TPM-encrypted blobs are stored. The storage secret is sealed into the TPM, optionally
//!   to a set of PCRs, and unsealed for each wrap or unwrap. See the `tpm` module and
//!   `docs/keys.md`.
//! * [`Backend::Soft`] (development only): keys are files. [`Status::is_insecure`] says so.
//!
//! # Invariants
//! * No private key and no storage secret is ever written to disk by the TPM backend, nor
//!   returned by any function of this crate; the only secrets handed out are those the caller
//!   put in (`unwrap`) or asked for (`random`), as [`SecretBytes`].
//! * Secrets in memory are [`SecretBytes`]: a locked page each, zeroized on drop, `Debug`
//!   prints `[redacted]`. ring's internal key schedules and tpm2-tss's C buffers are outside
//!   this guarantee (both are short-lived; see `docs/keys.md`).
//! * No TPM object or session stays loaded between two calls (swtpm and `/dev/tpm0` have no
//!   resource manager).
//! * `open` never creates keys; only `init` (the key ceremony) does, so a lost state directory
//!   or a cleared TPM stops the appliance instead of silently minting new identities.
//!
//! # What it refuses
//! Exporting a private key; other curves or hashes; a swtpm that is not on loopback; wrapping
//! more than [`MAX_PLAINTEXT`] bytes (it wraps keys, not data); keys that do not have the
//! non-exportable signing template.

mod config;
mod der;
mod error;
mod secret;
mod soft;
mod store;
pub mod tls;
mod tpm;
pub mod wrap;

use std::fmt;
use std::path::{Path, PathBuf};

pub use config::{Backend, ConfigError, KeyConfig, PcrPolicy, Tcti};
pub use der::{Fingerprint, PublicKey};
pub use error::KeyError;
pub use secret::{SECRET_CAPACITY, SecretBytes};
pub use wrap::{MAX_LABEL, MAX_PLAINTEXT};

use crate::soft::SoftBackend;
use crate::tpm::TpmBackend;

/// The algorithm of every role key.
pub const ALGORITHM: &str = "ECDSA P-256 with SHA-256";

/// What a signing key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The TLS server certificate key (HTTPS and WebSocket).
    Tls,
    /// Audit records and vote protocols.
    Audit,
    /// The DTLS certificate for media (WebRTC).
    Media,
}

impl Role {
    /// Every role, in a fixed order.
    pub const ALL: [Role; 3] = [Role::Tls, Role::Audit, Role::Media];

    /// The role's name, also the stem of its key file.
    pub fn name(self) -> &'static str {
        match self {
            Role::Tls => "tls",
            Role::Audit => "audit",
            Role::Media => "media",
        }
    }

    fn index(self) -> usize {
        match self {
            Role::Tls => 0,
            Role::Audit => 1,
            Role::Media => 2,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

enum Keys {
    Tpm(Box<TpmBackend>),
    Soft(SoftBackend),
}

/// The key manager. `Send + Sync`: share it in an `Arc`; TPM operations are serialised inside.
pub struct KeyManager {
    keys: Keys,
}

impl KeyManager {
    /// The key ceremony: opens the key state, creating whatever is missing (role keys, the
    /// storage secret). Safe to run again: existing keys are kept.
    pub fn init(config: &KeyConfig) -> Result<Self, KeyError> {
        Self::open_or_create(config, true)
    }

    /// Opens existing keys; fails with [`KeyError::NotInitialized`] if any is missing, with
    /// [`KeyError::TpmChanged`] if the TPM was cleared or replaced since `init`.
    pub fn open(config: &KeyConfig) -> Result<Self, KeyError> {
        Self::open_or_create(config, false)
    }

    fn open_or_create(config: &KeyConfig, create: bool) -> Result<Self, KeyError> {
        let keys = match &config.backend {
            Backend::Tpm { tcti, pcrs } => Keys::Tpm(Box::new(TpmBackend::open(
                config.key_dir(),
                tcti,
                pcrs,
                create,
            )?)),
            Backend::Soft => Keys::Soft(SoftBackend::open(config.key_dir(), create)?),
        };
        Ok(Self { keys })
    }

    /// The role's public key (its DER SubjectPublicKeyInfo: [`PublicKey::spki_der`]).
    pub fn public_key(&self, role: Role) -> PublicKey {
        match &self.keys {
            Keys::Tpm(tpm) => tpm.public_key(role),
            Keys::Soft(soft) => soft.public_key(role),
        }
    }

    /// Signs `message` with the role's key: ECDSA P-256 over SHA-256(`message`), DER-encoded
    /// (`Ecdsa-Sig-Value`).
    pub fn sign(&self, role: Role, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.sign_checked(role, message, None)
    }

    /// Like [`sign`](Self::sign), but only while the role's key is still `expected`; else
    /// [`KeyError::KeyRotated`].
    pub fn sign_pinned(
        &self,
        role: Role,
        expected: &PublicKey,
        message: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        self.sign_checked(role, message, Some(expected))
    }

    fn sign_checked(
        &self,
        role: Role,
        message: &[u8],
        expected: Option<&PublicKey>,
    ) -> Result<Vec<u8>, KeyError> {
        match &self.keys {
            Keys::Tpm(tpm) => tpm.sign(role, message, expected),
            Keys::Soft(soft) => soft.sign(role, message, expected),
        }
    }

    /// Encrypts a data key (at most [`MAX_PLAINTEXT`] bytes) under the storage secret, bound
    /// to `label` (1 to [`MAX_LABEL`] bytes): only [`unwrap`](Self::unwrap) with the same label
    /// on the same key state opens it.
    pub fn wrap(&self, label: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(KeyError::TooLarge {
                what: "the plaintext to wrap",
                max: MAX_PLAINTEXT,
            });
        }
        wrap::check_label(label)?;
        let secret = self.storage_secret()?;
        wrap::wrap(&secret, label, plaintext)
    }

    /// Decrypts a blob made by [`wrap`](Self::wrap) for the same label. Fails with
    /// [`KeyError::Unwrap`] if it was changed, made for another label or another key state,
    /// and with [`KeyError::PcrPolicyFailed`] if the platform state no longer matches the
    /// storage secret's PCR policy.
    pub fn unwrap(&self, label: &str, blob: &[u8]) -> Result<SecretBytes, KeyError> {
        wrap::precheck(label, blob)?;
        let secret = self.storage_secret()?;
        wrap::unwrap(&secret, label, blob)
    }

    fn storage_secret(&self) -> Result<SecretBytes, KeyError> {
        match &self.keys {
            Keys::Tpm(tpm) => tpm.storage_secret(),
            Keys::Soft(soft) => Ok(soft.storage_secret()),
        }
    }

    /// `len` random bytes (at most [`SECRET_CAPACITY`]): with the TPM backend, the TPM's
    /// generator XOR the operating system's.
    pub fn random(&self, len: usize) -> Result<SecretBytes, KeyError> {
        if len > SECRET_CAPACITY {
            return Err(KeyError::TooLarge {
                what: "a random request",
                max: SECRET_CAPACITY,
            });
        }
        match &self.keys {
            Keys::Tpm(tpm) => tpm.random(len),
            Keys::Soft(soft) => soft.random(len),
        }
    }

    /// Replaces the role's key with a new one and returns its public key. The old key is gone:
    /// certificates for it must be reissued, and a [`tls::TlsSigningKey`] built for it refuses
    /// to sign.
    pub fn rotate(&self, role: Role) -> Result<PublicKey, KeyError> {
        match &self.keys {
            Keys::Tpm(tpm) => tpm.rotate(role),
            Keys::Soft(soft) => soft.rotate(role),
        }
    }

    /// What the manager holds and where.
    pub fn status(&self) -> Status {
        let (backend, key_dir) = match &self.keys {
            Keys::Tpm(tpm) => (tpm.backend_status(), tpm.key_dir()),
            Keys::Soft(soft) => (soft.backend_status(), soft.key_dir()),
        };
        let roles = Role::ALL
            .into_iter()
            .map(|role| RoleStatus {
                role,
                algorithm: ALGORITHM,
                fingerprint: self.public_key(role).fingerprint(),
                location: match &self.keys {
                    Keys::Tpm(tpm) => tpm.key_location(role),
                    Keys::Soft(soft) => soft.key_location(role),
                },
            })
            .collect();
        let storage = match &self.keys {
            Keys::Tpm(tpm) => StorageStatus {
                location: tpm.storage_location(),
                pcrs: Some(tpm.pcrs().clone()),
            },
            Keys::Soft(soft) => StorageStatus {
                location: soft.storage_location(),
                pcrs: None,
            },
        };
        Status {
            backend,
            key_dir: key_dir.to_owned(),
            roles,
            storage,
            memory_locking: SecretBytes::zeroed(0).is_locked(),
        }
    }

    fn key_dir(&self) -> &Path {
        match &self.keys {
            Keys::Tpm(tpm) => tpm.key_dir(),
            Keys::Soft(soft) => soft.key_dir(),
        }
    }
}

impl fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match &self.keys {
            Keys::Tpm(_) => "tpm",
            Keys::Soft(_) => "soft",
        };
        f.debug_struct("KeyManager")
            .field("backend", &backend)
            .field("key_dir", &self.key_dir())
            .finish_non_exhaustive()
    }
}

/// The key manager's state, for `kammer keys status` and the audit log. Contains no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The backend.
    pub backend: BackendStatus,
    /// The key directory.
    pub key_dir: PathBuf,
    /// One entry per role, in the order of [`Role::ALL`].
    pub roles: Vec<RoleStatus>,
    /// The storage secret.
    pub storage: StorageStatus,
    /// Whether secrets in memory can be locked into RAM (see [`SecretBytes::is_locked`]).
    pub memory_locking: bool,
}

impl Status {
    /// Whether keys are unprotected files (the soft backend).
    pub fn is_insecure(&self) -> bool {
        matches!(self.backend, BackendStatus::Soft)
    }
}

/// The backend in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendStatus {
    /// TPM 2.0.
    Tpm {
        /// How the TPM is reached.
        tcti: Tcti,
        /// The TPM's vendor string (for swtpm: `SW   TPM`).
        vendor: String,
        /// The fingerprint of the storage key (the owner hierarchy's primary key): it changes
        /// when the TPM is cleared or replaced.
        storage_key: Fingerprint,
    },
    /// Keys are files: insecure, for development.
    Soft,
}

/// One role's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleStatus {
    /// The role.
    pub role: Role,
    /// Always [`ALGORITHM`].
    pub algorithm: &'static str,
    /// SHA-256 of the public key's SubjectPublicKeyInfo.
    pub fingerprint: Fingerprint,
    /// Where the key is kept.
    pub location: KeyLocation,
}

/// The storage secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageStatus {
    /// Where it is kept.
    pub location: KeyLocation,
    /// The PCRs it is sealed to (TPM backend; `Some(none)` means sealed without PCR binding);
    /// `None` for the soft backend, which cannot bind to PCRs.
    pub pcrs: Option<PcrPolicy>,
}

/// Where a key is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLocation {
    /// A file holding the object's TPM2B_PUBLIC and TPM2B_PRIVATE; the object is loaded into
    /// the TPM as a transient object for each use and flushed afterwards (it has no persistent
    /// handle).
    TpmBlob(PathBuf),
    /// A plain key file (soft backend).
    File(PathBuf),
}

impl fmt::Display for KeyLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyLocation::TpmBlob(path) => {
                write!(f, "TPM blob {} (transient, loaded per use)", path.display())
            }
            KeyLocation::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backend {
            BackendStatus::Tpm {
                tcti,
                vendor,
                storage_key,
            } => {
                writeln!(f, "backend: tpm ({tcti}, vendor {:?})", vendor.trim())?;
                writeln!(
                    f,
                    "storage key: owner hierarchy primary ECC P-256 (re-derived at start), {storage_key}"
                )?;
            }
            BackendStatus::Soft => {
                writeln!(
                    f,
                    "backend: soft -- INSECURE: keys are plain files, for development only"
                )?;
            }
        }
        writeln!(f, "key directory: {}", self.key_dir.display())?;
        for role in &self.roles {
            writeln!(
                f,
                "{}: {}, {}, {}",
                role.role, role.algorithm, role.fingerprint, role.location
            )?;
        }
        let binding = match &self.storage.pcrs {
            Some(pcrs) if pcrs.is_empty() => "sealed, no PCR binding".to_owned(),
            Some(pcrs) => format!("sealed to PCRs {pcrs}"),
            None => "not sealed (soft backend)".to_owned(),
        };
        writeln!(f, "storage secret: {}, {binding}", self.storage.location)?;
        write!(
            f,
            "memory locking: {}",
            if self.memory_locking {
                "available"
            } else {
                "unavailable (RLIMIT_MEMLOCK)"
            }
        )
    }
}
