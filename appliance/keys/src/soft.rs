//! The soft backend, **for development only**: every key is a file in the key directory.
//!
//! Role keys are PKCS#8 documents generated with ring (`<role>.p8`), the storage secret is 32
//! random bytes (`storage.key`), all mode 0600. Whoever can read the directory (a backup, a
//! stolen disk, another process of the same user) has every key: `status()` reports the backend
//! as insecure, and the appliance must not run with it in production.
//!
//! The keys sign in this process as [`ProcessKey`]s (locked memory; ring's key pair is not
//! zeroized when dropped, ring has no such support); the PKCS#8 bytes read from disk are. The
//! configured [`TlsKeyMode`](crate::TlsKeyMode) means nothing here: the TLS key behaves like a
//! `Sealed` one without the sealing.

use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::der::PublicKey;
use crate::error::KeyError;
use crate::process_key::ProcessKey;
use crate::secret::SecretBytes;
use crate::store::KeyDir;
use crate::wrap::STORAGE_SECRET_LEN;
use crate::{BackendStatus, KeyLocation, Role};

const STORAGE_SECRET_FILE: &str = "storage.key";

fn role_file(role: Role) -> String {
    format!("{}.p8", role.name())
}

/// The soft backend.
pub(crate) struct SoftBackend {
    dir: KeyDir,
    rng: SystemRandom,
    /// One per role, in the order of [`Role::ALL`].
    keys: RwLock<Vec<ProcessKey>>,
    storage_secret: SecretBytes,
}

impl SoftBackend {
    /// Loads the key files, creating missing ones when `create` is set.
    pub(crate) fn open(key_dir: PathBuf, create: bool) -> Result<Self, KeyError> {
        let dir = KeyDir::open(key_dir, "soft", create)?;
        let rng = SystemRandom::new();
        let not_initialized = || KeyError::NotInitialized {
            dir: dir.path().to_owned(),
        };
        let mut keys = Vec::with_capacity(Role::ALL.len());
        for role in Role::ALL {
            let file = role_file(role);
            let key = match dir.read(&file)?.map(Zeroizing::new) {
                Some(pkcs8) => parse(&dir.file(&file), &pkcs8)?,
                None if create => {
                    let pkcs8 = ProcessKey::generate_pkcs8()?;
                    dir.write(&file, pkcs8.as_bytes())?;
                    parse(&dir.file(&file), pkcs8.as_bytes())?
                }
                None => return Err(not_initialized()),
            };
            keys.push(key);
        }
        let storage_secret = match dir.read_secret(STORAGE_SECRET_FILE)? {
            Some(secret) if secret.len() == STORAGE_SECRET_LEN => secret,
            Some(_) => {
                return Err(KeyError::Corrupt {
                    path: dir.file(STORAGE_SECRET_FILE),
                    reason: "not 32 bytes long",
                });
            }
            None if create => {
                let mut secret = SecretBytes::zeroed(STORAGE_SECRET_LEN);
                rng.fill(secret.as_mut_bytes())
                    .map_err(|_| KeyError::Crypto("OS random numbers"))?;
                dir.write(STORAGE_SECRET_FILE, secret.as_bytes())?;
                secret
            }
            None => return Err(not_initialized()),
        };
        Ok(Self {
            dir,
            rng,
            keys: RwLock::new(keys),
            storage_secret,
        })
    }

    fn keys(&self) -> RwLockReadGuard<'_, Vec<ProcessKey>> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn public_key(&self, role: Role) -> PublicKey {
        self.keys()[role.index()].public_key().clone()
    }

    pub(crate) fn sign(
        &self,
        role: Role,
        message: &[u8],
        expected: Option<&PublicKey>,
    ) -> Result<Vec<u8>, KeyError> {
        self.keys()[role.index()].sign(role, message, expected)
    }

    /// A copy of the storage secret for one operation.
    pub(crate) fn storage_secret(&self) -> SecretBytes {
        SecretBytes::copy_from(self.storage_secret.as_bytes())
    }

    pub(crate) fn random(&self, len: usize) -> Result<SecretBytes, KeyError> {
        let mut out = SecretBytes::zeroed(len);
        self.rng
            .fill(out.as_mut_bytes())
            .map_err(|_| KeyError::Crypto("OS random numbers"))?;
        Ok(out)
    }

    pub(crate) fn rotate(&self, role: Role) -> Result<PublicKey, KeyError> {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        let file = role_file(role);
        let pkcs8 = ProcessKey::generate_pkcs8()?;
        let key = parse(&self.dir.file(&file), pkcs8.as_bytes())?;
        self.dir.write(&file, pkcs8.as_bytes())?;
        let public = key.public_key().clone();
        keys[role.index()] = key;
        Ok(public)
    }

    pub(crate) fn backend_status(&self) -> BackendStatus {
        BackendStatus::Soft
    }

    pub(crate) fn key_location(&self, role: Role) -> KeyLocation {
        KeyLocation::File(self.dir.file(&role_file(role)))
    }

    pub(crate) fn storage_location(&self) -> KeyLocation {
        KeyLocation::File(self.dir.file(STORAGE_SECRET_FILE))
    }

    pub(crate) fn key_dir(&self) -> &Path {
        self.dir.path()
    }
}

fn parse(path: &Path, pkcs8: &[u8]) -> Result<ProcessKey, KeyError> {
    ProcessKey::from_pkcs8(pkcs8).ok_or_else(|| KeyError::Corrupt {
        path: path.to_owned(),
        reason: "not a PKCS#8 ECDSA P-256 key",
    })
}
