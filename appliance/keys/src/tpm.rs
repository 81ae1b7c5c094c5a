//! The TPM 2.0 backend (tss-esapi over tpm2-tss).
//!
//! Objects and their life in the TPM:
//! * the **storage key**, the owner hierarchy's primary ECC P-256 key, is re-derived with
//!   TPM2_CreatePrimary at every start (same template and owner seed → same key). Its public
//!   key is kept in `storage-key.spki`; a different one means the TPM was cleared or replaced.
//! * each role's **signing key** is a child of the storage key, created once; its TPM2B_PUBLIC
//!   and TPM2B_PRIVATE (the private part encrypted by the storage key, usable only in this TPM)
//!   live in `<role>.tpm`. With [`TlsKeyMode::Sealed`] the TLS key is no TPM object but a
//!   software key wrapped under the storage secret (`tls.sealed`, see `tls_key`).
//! * the **sealed storage secret** is a keyed-hash data object under the storage key
//!   (`storage.tpm`), optionally bound to SHA-256 PCRs with their values at sealing time
//!   (`storage.pcrs`) and to PCRs with values an RSA key approved (`storage.signed`: the PCRs and
//!   the key's `pkfp`; see `authorize`). The key is loaded with TPM2_LoadExternal (public part
//!   only) for the trial session at sealing and for TPM2_VerifySignature at unsealing.
//!
//! No object stays loaded between two operations: each one loads what it needs (from a saved
//! context when the TPM still accepts it, else from the blobs) and flushes every object and
//! session before it returns, because swtpm over TCP and `/dev/tpm0` have no resource manager
//! and only three object slots. One mutex serialises the operations.
//!
//! The storage secret never crosses the TPM interface in clear: it is sent with TPM2_Create in
//! a session salted with the storage key (command parameter encryption) and read back with
//! TPM2_Unseal in such a session (response parameter encryption), so an eavesdropper on the
//! bus of a discrete TPM learns nothing. Signatures and public keys are not secret and use the
//! empty password session.

mod authorize;
mod objects;
mod sealing;
mod templates;
mod tls_key;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use tss_esapi::structures::{Digest, Private, Public};
use tss_esapi::utils::TpmsContext;
use tss_esapi::{Context, TctiNameConf};

use self::objects::create_primary;
use crate::config::{PcrPolicy, SignedPcrPolicy, Tcti, TlsKeyMode};
use crate::der::PublicKey;
use crate::error::KeyError;
use crate::process_key::ProcessKey;
use crate::secret::SecretBytes;
use crate::signed_policy::{SignedPolicy, hex};
use crate::store::KeyDir;
use crate::{BackendStatus, KeyLocation, Opening, Role, SignedPolicyStatus};

const STORAGE_KEY_FILE: &str = "storage-key.spki";
const SEALED_FILE: &str = "storage.tpm";
const SEALED_PCRS_FILE: &str = "storage.pcrs";
const SEALED_SIGNED_FILE: &str = "storage.signed";
/// TPM2_GetRandom returns at most one digest's worth per call.
const RANDOM_CHUNK: usize = 32;

fn role_file(role: Role) -> String {
    format!("{}.tpm", role.name())
}

/// The TPM backend.
pub(crate) struct TpmBackend {
    tcti: Tcti,
    vendor: String,
    dir: KeyDir,
    storage_key: PublicKey,
    sealing: Sealing,
    tls: TlsKey,
    state: Mutex<TpmState>,
}

/// What the storage secret is sealed to: PCRs with their values at sealing time, and PCRs with
/// values the signature file approves. Both empty: no policy, the empty authorization value.
pub(crate) struct Sealing {
    pcrs: PcrPolicy,
    signed: Option<SignedPolicy>,
}

impl Sealing {
    /// Whether the sealed object has a policy.
    fn is_bound(&self) -> bool {
        !self.pcrs.is_empty() || self.signed.is_some()
    }

    /// `storage.signed`'s content, or `none`.
    fn signed_record(&self) -> String {
        self.signed
            .as_ref()
            .map_or_else(|| "none".to_owned(), SignedPolicy::record)
    }
}

/// Where the TLS key signs.
enum TlsKey {
    /// In the TPM, like the other roles ([`TpmState::roles`] holds it).
    InTpm,
    /// In this process, outside the TPM mutex: software signatures do not queue behind TPM
    /// commands, and several threads sign at once.
    Sealed(RwLock<ProcessKey>),
}

/// Everything that talks to the TPM, behind the mutex. Its operations live in `objects` (keys)
/// and `sealing` (the storage secret). Those that take `transient` push every object and
/// session they load onto it as soon as it exists; their caller flushes them all with
/// [`TpmState::finish`], whether the operation succeeded or not.
struct TpmState {
    ctx: Context,
    dir: PathBuf,
    storage_key: PublicKey,
    /// The storage key's saved context, while the TPM accepts it.
    primary: Option<TpmsContext>,
    /// One per role, in the order of [`Role::ALL`]: every one once `open` returns, except the
    /// TLS key with [`TlsKeyMode::Sealed`].
    roles: [Option<RoleKey>; 3],
    /// The sealed storage secret (present once `open` returns).
    sealed: Option<TpmObject>,
}

/// A TPM object kept outside the TPM: its blobs and, once loaded, its saved context.
struct TpmObject {
    public: Public,
    private: Private,
    saved: Option<TpmsContext>,
}

struct RoleKey {
    object: TpmObject,
    key: PublicKey,
}

#[derive(Clone, Copy)]
enum Slot {
    Role(Role),
    Sealed,
}

impl TpmBackend {
    /// Connects to the TPM and loads the keys; [`Opening`] says what it may create.
    pub(crate) fn open(
        key_dir: PathBuf,
        tcti: &Tcti,
        pcrs: &PcrPolicy,
        signed: Option<&SignedPcrPolicy>,
        tls_mode: TlsKeyMode,
        opening: Opening,
    ) -> Result<Self, KeyError> {
        let create = opening == Opening::Create;
        // Both files now, before the caller enters a sandbox that no longer reaches them.
        let sealing = Sealing {
            pcrs: pcrs.clone(),
            signed: signed.map(SignedPolicy::load).transpose()?,
        };
        let dir = KeyDir::open(key_dir, "tpm", create)?;
        let not_initialized = || KeyError::NotInitialized {
            dir: dir.path().to_owned(),
        };
        let conf = TctiNameConf::from_str(&tcti.to_string())
            .map_err(KeyError::tpm("the TCTI configuration"))?;
        let mut ctx = Context::new(conf).map_err(KeyError::tpm("a connection (TCTI)"))?;
        let vendor = tss_esapi::utils::get_tpm_vendor(&mut ctx)
            .map_err(KeyError::tpm("TPM2_GetCapability"))?;

        let (primary, storage_key) = create_primary(&mut ctx)?;
        let saved = ctx.context_save(primary.into()).ok();
        ctx.flush_context(primary.into())
            .map_err(KeyError::tpm("TPM2_FlushContext"))?;
        match dir.read(STORAGE_KEY_FILE)? {
            Some(known) if known == storage_key.spki_der() => {}
            Some(_) => {
                return Err(KeyError::TpmChanged {
                    dir: dir.path().to_owned(),
                });
            }
            None if create => dir.write(STORAGE_KEY_FILE, storage_key.spki_der())?,
            None => return Err(not_initialized()),
        }
        tls_key::check_recorded_mode(&dir, tls_mode, opening)?;

        let mut state = TpmState {
            ctx,
            dir: dir.path().to_owned(),
            storage_key: storage_key.clone(),
            primary: saved,
            roles: [None, None, None],
            sealed: None,
        };
        for role in Role::ALL {
            if role == Role::Tls
                && (tls_mode == TlsKeyMode::Sealed || opening == Opening::NewTlsKey)
            {
                continue;
            }
            let file = role_file(role);
            let key = match dir.read(&file)? {
                Some(bytes) => state.load_role_blob(&dir.file(&file), &bytes)?,
                None if create => state.create_role_key(&dir, role)?,
                None => return Err(not_initialized()),
            };
            state.roles[role.index()] = Some(key);
        }
        let sealed = match (dir.read(SEALED_FILE)?, dir.read(SEALED_PCRS_FILE)?) {
            (Some(blob), Some(sealed_pcrs)) => {
                let sealed_pcrs = std::str::from_utf8(&sealed_pcrs)
                    .ok()
                    .and_then(|s| s.trim().parse::<PcrPolicy>().ok())
                    .ok_or_else(|| KeyError::Corrupt {
                        path: dir.file(SEALED_PCRS_FILE),
                        reason: "not a PCR list",
                    })?;
                if sealed_pcrs != *pcrs {
                    return Err(KeyError::PcrConfigMismatch {
                        sealed: sealed_pcrs,
                        configured: pcrs.clone(),
                    });
                }
                let sealed_signed = match dir.read(SEALED_SIGNED_FILE)? {
                    Some(record) => String::from_utf8(record)
                        .map(|record| record.trim().to_owned())
                        .map_err(|_| KeyError::Corrupt {
                            path: dir.file(SEALED_SIGNED_FILE),
                            reason: "not a signed policy record",
                        })?,
                    None => "none".to_owned(),
                };
                let configured = sealing.signed_record();
                if sealed_signed != configured {
                    return Err(KeyError::SignedPolicyConfigMismatch {
                        sealed: sealed_signed,
                        configured,
                    });
                }
                let corrupt = |reason| KeyError::Corrupt {
                    path: dir.file(SEALED_FILE),
                    reason,
                };
                let sealed = TpmObject::from_bytes(&blob)
                    .ok_or_else(|| corrupt("not a TPM2B_PUBLIC followed by a TPM2B_PRIVATE"))?;
                if !templates::is_sealed_secret(&sealed.public, sealing.is_bound()) {
                    return Err(corrupt("not a sealed secret with the expected policy"));
                }
                sealed
            }
            _ if create => {
                let sealed = state.seal_new_secret(&sealing)?;
                // The policy records first: a crash in between leaves no sealed object, so the
                // next `init` seals anew.
                match &sealing.signed {
                    Some(_) => dir.write(
                        SEALED_SIGNED_FILE,
                        format!("{}\n", sealing.signed_record()).as_bytes(),
                    )?,
                    None => dir.remove(SEALED_SIGNED_FILE)?,
                }
                dir.write(SEALED_PCRS_FILE, format!("{pcrs}\n").as_bytes())?;
                dir.write(SEALED_FILE, &sealed.to_bytes()?)?;
                sealed
            }
            _ => return Err(not_initialized()),
        };
        state.sealed = Some(sealed);

        // The TLS key last: with `Sealed` it needs the storage secret.
        let tls = match (tls_mode, opening) {
            (TlsKeyMode::InTpm, Opening::NewTlsKey) => {
                state.roles[Role::Tls.index()] = Some(state.create_role_key(&dir, Role::Tls)?);
                TlsKey::InTpm
            }
            (TlsKeyMode::InTpm, _) => TlsKey::InTpm,
            (TlsKeyMode::Sealed, Opening::NewTlsKey) => {
                TlsKey::Sealed(RwLock::new(state.new_sealed_tls_key(&dir, &sealing)?))
            }
            (TlsKeyMode::Sealed, _) => TlsKey::Sealed(RwLock::new(
                state.open_sealed_tls_key(&dir, &sealing, create)?,
            )),
        };
        if opening == Opening::NewTlsKey {
            tls_key::record_switch(&dir, tls_mode)?;
        }
        Ok(Self {
            tcti: tcti.clone(),
            vendor,
            dir,
            storage_key,
            sealing,
            tls,
            state: Mutex::new(state),
        })
    }

    fn state(&self) -> MutexGuard<'_, TpmState> {
        // A panic while the lock was held leaves nothing half-done that matters: saved
        // contexts are only caches, and every operation can start from the blobs again.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The TLS key, if it signs in this process.
    fn process_key(&self, role: Role) -> Option<RwLockReadGuard<'_, ProcessKey>> {
        match (&self.tls, role) {
            (TlsKey::Sealed(key), Role::Tls) => {
                Some(key.read().unwrap_or_else(PoisonError::into_inner))
            }
            _ => None,
        }
    }

    pub(crate) fn public_key(&self, role: Role) -> PublicKey {
        if let Some(key) = self.process_key(role) {
            return key.public_key().clone();
        }
        self.state().tpm_key(role).key.clone()
    }

    /// Signs `message` (hashed here with SHA-256) with the role's key; with `expected`, only if
    /// the role's key is still that one.
    pub(crate) fn sign(
        &self,
        role: Role,
        message: &[u8],
        expected: Option<&PublicKey>,
    ) -> Result<Vec<u8>, KeyError> {
        if let Some(key) = self.process_key(role) {
            return key.sign(role, message, expected);
        }
        let hash = ring::digest::digest(&ring::digest::SHA256, message);
        let digest = Digest::try_from(hash.as_ref()).map_err(KeyError::tpm("a digest"))?;
        let mut state = self.state();
        if expected.is_some_and(|key| *key != state.tpm_key(role).key) {
            return Err(KeyError::KeyRotated { role });
        }
        let mut transient = Vec::new();
        let result = state.sign(role, digest, &mut transient);
        state.finish(transient, result)
    }

    /// Unseals the storage secret for one operation.
    pub(crate) fn storage_secret(&self) -> Result<SecretBytes, KeyError> {
        self.state().storage_secret(&self.sealing)
    }

    pub(crate) fn random(&self, len: usize) -> Result<SecretBytes, KeyError> {
        self.state().random(len)
    }

    /// Replaces the role's key by a new one, in the same place (the old blob is overwritten:
    /// the old key is gone).
    pub(crate) fn rotate(&self, role: Role) -> Result<PublicKey, KeyError> {
        let mut state = self.state();
        if let (TlsKey::Sealed(tls), Role::Tls) = (&self.tls, role) {
            let key = state.new_sealed_tls_key(&self.dir, &self.sealing)?;
            let public = key.public_key().clone();
            *tls.write().unwrap_or_else(PoisonError::into_inner) = key;
            return Ok(public);
        }
        let key = state.create_role_key(&self.dir, role)?;
        let public = key.key.clone();
        state.roles[role.index()] = Some(key);
        Ok(public)
    }

    pub(crate) fn backend_status(&self) -> BackendStatus {
        BackendStatus::Tpm {
            tcti: self.tcti.clone(),
            vendor: self.vendor.clone(),
            storage_key: self.storage_key.fingerprint(),
        }
    }

    pub(crate) fn key_location(&self, role: Role) -> KeyLocation {
        match (&self.tls, role) {
            (TlsKey::Sealed(_), Role::Tls) => {
                KeyLocation::Wrapped(self.dir.file(tls_key::SEALED_TLS_FILE))
            }
            _ => KeyLocation::TpmBlob(self.dir.file(&role_file(role))),
        }
    }

    pub(crate) fn tls_mode(&self) -> TlsKeyMode {
        match self.tls {
            TlsKey::InTpm => TlsKeyMode::InTpm,
            TlsKey::Sealed(_) => TlsKeyMode::Sealed,
        }
    }

    pub(crate) fn storage_location(&self) -> KeyLocation {
        KeyLocation::TpmBlob(self.dir.file(SEALED_FILE))
    }

    pub(crate) fn pcrs(&self) -> &PcrPolicy {
        &self.sealing.pcrs
    }

    pub(crate) fn signed_status(&self) -> Option<SignedPolicyStatus> {
        self.sealing
            .signed
            .as_ref()
            .map(|signed| SignedPolicyStatus {
                pcrs: signed.config.pcrs().clone(),
                public_key: signed.config.public_key().to_owned(),
                key: signed.key.spki_fingerprint,
                pkfp: hex(&signed.key.pkfp),
                signature: signed.config.signature().to_owned(),
                approvals: signed.approvals.len(),
            })
    }

    pub(crate) fn key_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl TpmState {
    /// A role key held in the TPM.
    fn tpm_key(&self, role: Role) -> &RoleKey {
        self.roles[role.index()]
            .as_ref()
            .expect("`open` loads every role key the TPM holds")
    }

    /// Creates a new key for `role` in the TPM and writes its blob (replacing an old one).
    fn create_role_key(&mut self, dir: &KeyDir, role: Role) -> Result<RoleKey, KeyError> {
        let key = self.create_signing_key()?;
        dir.write(&role_file(role), &key.object.to_bytes()?)?;
        Ok(key)
    }
}
