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
//! * [`Backend::Tpm`] (production): keys are generated inside a TPM 2.0 and cannot leave it
//!   (except a TLS key of [`TlsKeyMode::Sealed`], below); only TPM-encrypted blobs are stored.
//!   The storage secret is sealed into the TPM, optionally to a set of PCRs with their values at
//!   sealing time, and optionally to PCRs with whatever values an RSA key approved
//!   ([`SignedPcrPolicy`]: TPM2_PolicyAuthorize over the signature file `systemd-measure sign`
//!   writes, so a new signed image release unseals it without resealing); it is unsealed for
//!   each wrap or unwrap. See the `tpm` module and `docs/keys.md`.
//! * [`Backend::Soft`] (development only): keys are files. [`Status::is_insecure`] says so.
//!
//! # The TLS key's two modes
//! [`TlsKeyMode`], part of the [`KeyConfig`] and recorded in the key directory at `init`:
//! * [`TlsKeyMode::InTpm`] (the default): the TLS key is a TPM key like the others, and the TPM
//!   signs every TLS handshake (tens of milliseconds each on a hardware TPM, one at a time).
//! * [`TlsKeyMode::Sealed`]: the TLS key is a software key, stored only wrapped under the
//!   storage secret (so the storage secret's PCR binding guards it too), unwrapped once by
//!   `open` and then held in locked memory of this process, where it signs at software speed.
//!   Whoever can read that process's memory can copy it.
//!
//! `open` and `init` refuse a key directory recorded with the other mode;
//! [`KeyManager::open_with_new_tls_key`] switches modes, with a new TLS key. Everything else —
//! `public_key`, `sign`, `sign_pinned`, `rotate`, [`tls`] — works alike in both modes.
//!
//! # Invariants
//! * No private key and no storage secret is ever written to disk unencrypted by the TPM
//!   backend (the only private key it writes at all is the `Sealed` TLS key, wrapped under the
//!   storage secret), nor returned by any function of this crate; the only secrets handed out
//!   are those the caller put in (`unwrap`) or asked for (`random`), as [`SecretBytes`]. Wrap
//!   labels starting with [`wrap::RESERVED_PREFIX`] are the manager's own, so `unwrap` cannot
//!   open the sealed TLS key.
//! * Secrets in memory are [`SecretBytes`]: a locked page each, zeroized on drop, `Debug`
//!   prints `[redacted]`. Keys that sign in this process (the `Sealed` TLS key, the soft
//!   backend's keys) are ring key pairs, each in a locked page of its own but not zeroized when
//!   dropped (ring cannot). ring's internal key schedules and tpm2-tss's C buffers are outside
//!   this guarantee (both are short-lived; see `docs/keys.md`).
//! * No TPM object or session stays loaded between two calls (swtpm and `/dev/tpm0` have no
//!   resource manager).
//! * `open` never creates keys; only `init` (the key ceremony) does, so a lost state directory
//!   or a cleared TPM stops the appliance instead of silently minting new identities.
//!
//! # What it refuses
//! Exporting a private key; other curves or hashes; a swtpm that is not on loopback; wrapping
//! more than [`MAX_PLAINTEXT`] bytes (it wraps keys, not data); wrap labels of its own
//! namespace; keys that do not have the non-exportable signing template; switching the TLS key
//! mode silently.

mod config;
mod der;
mod error;
mod process_key;
mod secret;
mod signed_policy;
mod soft;
mod store;
pub mod tls;
mod tpm;
pub mod wrap;

use std::fmt;
use std::path::{Path, PathBuf};

pub use config::{Backend, ConfigError, KeyConfig, PcrPolicy, SignedPcrPolicy, Tcti, TlsKeyMode};
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

/// What opening the key state may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opening {
    /// Load existing keys only ([`KeyManager::open`]).
    Existing,
    /// The key ceremony: create whatever is missing ([`KeyManager::init`]).
    Create,
    /// Load existing keys, but replace the TLS key by a new one held in the configured mode
    /// ([`KeyManager::open_with_new_tls_key`]).
    NewTlsKey,
}

/// The key manager. `Send + Sync`: share it in an `Arc`; TPM operations are serialised inside.
pub struct KeyManager {
    keys: Keys,
}

impl KeyManager {
    /// The key ceremony: opens the key state, creating whatever is missing (role keys, the
    /// storage secret) and recording the TLS key mode. Safe to run again: existing keys are
    /// kept. Fails with [`KeyError::TlsModeMismatch`] if the TLS key exists in the other mode.
    pub fn init(config: &KeyConfig) -> Result<Self, KeyError> {
        Self::open_as(config, Opening::Create)
    }

    /// Opens existing keys; fails with [`KeyError::NotInitialized`] if any is missing, with
    /// [`KeyError::TpmChanged`] if the TPM was cleared or replaced since `init`, with
    /// [`KeyError::TlsModeMismatch`] if the TLS key was made for the other [`TlsKeyMode`], and
    /// (mode `Sealed`) with [`KeyError::SealedTlsKeyLocked`] if the PCRs the storage secret is
    /// sealed to changed, so that the TLS key cannot be unwrapped.
    pub fn open(config: &KeyConfig) -> Result<Self, KeyError> {
        Self::open_as(config, Opening::Existing)
    }

    /// Opens existing keys like [`open`](Self::open), but first replaces the TLS key by a new
    /// one held in the configured [`TlsKeyMode`], whichever mode the key directory recorded:
    /// the one way to switch modes. Like [`rotate`](Self::rotate)`(Role::Tls)`, the old key is
    /// gone and the TLS certificate must be reissued for the new one. A `Sealed` key needs the
    /// storage secret, so this fails while the PCRs differ from their sealed values. With the
    /// soft backend it is `open` and `rotate(Role::Tls)`.
    pub fn open_with_new_tls_key(config: &KeyConfig) -> Result<Self, KeyError> {
        Self::open_as(config, Opening::NewTlsKey)
    }

    fn open_as(config: &KeyConfig, opening: Opening) -> Result<Self, KeyError> {
        let keys = match &config.backend {
            Backend::Tpm { tcti, pcrs, signed } => Keys::Tpm(Box::new(TpmBackend::open(
                config.key_dir(),
                tcti,
                pcrs,
                signed.as_ref(),
                config.tls_mode,
                opening,
            )?)),
            Backend::Soft => {
                let soft = SoftBackend::open(config.key_dir(), opening == Opening::Create)?;
                if opening == Opening::NewTlsKey {
                    soft.rotate(Role::Tls)?;
                }
                Keys::Soft(soft)
            }
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
    /// to `label` (1 to [`MAX_LABEL`] bytes, not starting with [`wrap::RESERVED_PREFIX`]): only
    /// [`unwrap`](Self::unwrap) with the same label on the same key state opens it.
    pub fn wrap(&self, label: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(KeyError::TooLarge {
                what: "the plaintext to wrap",
                max: MAX_PLAINTEXT,
            });
        }
        wrap::check_caller_label(label)?;
        let secret = self.storage_secret()?;
        wrap::wrap(&secret, label, plaintext)
    }

    /// Decrypts a blob made by [`wrap`](Self::wrap) for the same label. Fails with
    /// [`KeyError::Unwrap`] if it was changed, made for another label or another key state,
    /// and with [`KeyError::PcrPolicyFailed`] if the platform state no longer matches the
    /// storage secret's PCR policy. Labels starting with [`wrap::RESERVED_PREFIX`] are refused
    /// ([`KeyError::ReservedLabel`]): they are the manager's own, such as the sealed TLS key.
    pub fn unwrap(&self, label: &str, blob: &[u8]) -> Result<SecretBytes, KeyError> {
        wrap::check_caller_label(label)?;
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
    /// to sign. The TLS key stays in its [`TlsKeyMode`] (a `Sealed` one needs the storage
    /// secret, so its rotation fails while the PCRs differ from their sealed values).
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
                signed: tpm.signed_status(),
            },
            Keys::Soft(soft) => StorageStatus {
                location: soft.storage_location(),
                pcrs: None,
                signed: None,
            },
        };
        let tls_mode = match &self.keys {
            Keys::Tpm(tpm) => Some(tpm.tls_mode()),
            Keys::Soft(_) => None,
        };
        Status {
            backend,
            key_dir: key_dir.to_owned(),
            roles,
            tls_mode,
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
        let tls_mode = match &self.keys {
            Keys::Tpm(tpm) => tpm.tls_mode().name(),
            Keys::Soft(_) => "soft",
        };
        f.debug_struct("KeyManager")
            .field("backend", &backend)
            .field("key_dir", &self.key_dir())
            .field("tls_mode", &tls_mode)
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
    /// Where the TLS key signs (TPM backend); `None` for the soft backend, whose TLS key is a
    /// plain file that signs in the process whatever the mode.
    pub tls_mode: Option<TlsKeyMode>,
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
    /// The signed PCR policy it is sealed to besides `pcrs` (TPM backend, when configured).
    pub signed: Option<SignedPolicyStatus>,
}

impl StorageStatus {
    /// What the secret is sealed to, in words: `sealed to PCRs sha256:7`, `sealed to PCRs
    /// sha256:11 as approved by …`, `sealed, no PCR binding` or `not sealed (soft backend)`.
    pub fn sealing(&self) -> String {
        match (&self.pcrs, &self.signed) {
            (Some(pcrs), None) if pcrs.is_empty() => "sealed, no PCR binding".to_owned(),
            (Some(pcrs), None) => format!("sealed to PCRs {pcrs}"),
            (Some(pcrs), Some(signed)) if pcrs.is_empty() => format!("sealed to {signed}"),
            (Some(pcrs), Some(signed)) => format!("sealed to {signed} and to PCRs {pcrs}"),
            (None, _) => "not sealed (soft backend)".to_owned(),
        }
    }
}

/// The signed PCR policy the storage secret is sealed to, as read at `open`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPolicyStatus {
    /// The PCRs whose values are signed.
    pub pcrs: PcrPolicy,
    /// The signing key's public key file.
    pub public_key: PathBuf,
    /// SHA-256 of the signing key's SubjectPublicKeyInfo DER.
    pub key: Fingerprint,
    /// SHA-256 of the signing key's PKCS#1 RSAPublicKey DER, in hex: the `pkfp` of the
    /// signature file's entries.
    pub pkfp: String,
    /// The signature file.
    pub signature: PathBuf,
    /// How many policies (boot phases) it approves for these PCRs.
    pub approvals: usize,
}

impl fmt::Display for SignedPolicyStatus {
    /// `PCRs sha256:11 as approved by RSA-2048 key sha256:… (pkfp …) in FILE (N approved values)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PCRs {} as approved by RSA-2048 key {} (pkfp {}, {}) in {} ({} approved value{})",
            self.pcrs,
            self.key,
            self.pkfp,
            self.public_key.display(),
            self.signature.display(),
            self.approvals,
            if self.approvals == 1 { "" } else { "s" }
        )
    }
}

/// Where a key is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLocation {
    /// A file holding the object's TPM2B_PUBLIC and TPM2B_PRIVATE; the object is loaded into
    /// the TPM as a transient object for each use and flushed afterwards (it has no persistent
    /// handle).
    TpmBlob(PathBuf),
    /// A file holding the key's PKCS#8 document wrapped under the storage secret
    /// ([`TlsKeyMode::Sealed`]); `open` unwraps it once into locked memory of this process.
    Wrapped(PathBuf),
    /// A plain key file (soft backend).
    File(PathBuf),
}

impl fmt::Display for KeyLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyLocation::TpmBlob(path) => {
                write!(f, "TPM blob {} (transient, loaded per use)", path.display())
            }
            KeyLocation::Wrapped(path) => write!(
                f,
                "wrapped under the storage secret in {} (held unwrapped in locked memory of this \
                 process)",
                path.display()
            ),
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
        match self.tls_mode {
            Some(TlsKeyMode::InTpm) => {
                writeln!(f, "tls key mode: in-tpm (the TPM signs every handshake)")?;
            }
            Some(TlsKeyMode::Sealed) => writeln!(
                f,
                "tls key mode: sealed (unwrapped at start, signs in software in this process)"
            )?,
            None => writeln!(
                f,
                "tls key mode: none (soft backend: the key file signs in this process)"
            )?,
        }
        writeln!(
            f,
            "storage secret: {}, {}",
            self.storage.location,
            self.storage.sealing()
        )?;
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
