//! The soft backend, **for development only**: every key is a file in the key directory.
//!
//! Role keys are PKCS#8 documents generated with ring (`<role>.p8`), the storage secret is 32
//! random bytes (`storage.key`), all mode 0600. Whoever can read the directory (a backup, a
//! stolen disk, another process of the same user) has every key: `status()` reports the backend
//! as insecure, and the appliance must not run with it in production.
//!
//! ring's `EcdsaKeyPair` is not zeroized when dropped (ring has no such support); the PKCS#8
//! bytes read from disk are.

use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use zeroize::Zeroizing;

use crate::der::PublicKey;
use crate::error::KeyError;
use crate::secret::SecretBytes;
use crate::store::KeyDir;
use crate::wrap::STORAGE_SECRET_LEN;
use crate::{BackendStatus, KeyLocation, Role};

const STORAGE_SECRET_FILE: &str = "storage.key";

fn role_file(role: Role) -> String {
    format!("{}.p8", role.name())
}

struct SoftKey {
    pair: EcdsaKeyPair,
    key: PublicKey,
}

/// The soft backend.
pub(crate) struct SoftBackend {
    dir: KeyDir,
    rng: SystemRandom,
    /// One per role, in the order of [`Role::ALL`].
    keys: RwLock<Vec<SoftKey>>,
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
            let pkcs8 = match dir.read(&file)?.map(Zeroizing::new) {
                Some(pkcs8) => pkcs8,
                None if create => {
                    let pkcs8 = generate(&rng)?;
                    dir.write(&file, &pkcs8)?;
                    pkcs8
                }
                None => return Err(not_initialized()),
            };
            keys.push(parse(&dir.file(&file), &pkcs8, &rng)?);
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

    fn keys(&self) -> RwLockReadGuard<'_, Vec<SoftKey>> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn public_key(&self, role: Role) -> PublicKey {
        self.keys()[role.index()].key.clone()
    }

    pub(crate) fn sign(
        &self,
        role: Role,
        message: &[u8],
        expected: Option<&PublicKey>,
    ) -> Result<Vec<u8>, KeyError> {
        let keys = self.keys();
        let key = &keys[role.index()];
        if expected.is_some_and(|expected| *expected != key.key) {
            return Err(KeyError::KeyRotated { role });
        }
        let signature = key
            .pair
            .sign(&self.rng, message)
            .map_err(|_| KeyError::Crypto("ECDSA signing"))?;
        Ok(signature.as_ref().to_vec())
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
        let pkcs8 = generate(&self.rng)?;
        let key = parse(&self.dir.file(&file), &pkcs8, &self.rng)?;
        self.dir.write(&file, &pkcs8)?;
        let public = key.key.clone();
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

fn generate(rng: &SystemRandom) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let document = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, rng)
        .map_err(|_| KeyError::Crypto("ECDSA key generation"))?;
    Ok(Zeroizing::new(document.as_ref().to_vec()))
}

fn parse(path: &Path, pkcs8: &[u8], rng: &SystemRandom) -> Result<SoftKey, KeyError> {
    let corrupt = || KeyError::Corrupt {
        path: path.to_owned(),
        reason: "not a PKCS#8 ECDSA P-256 key",
    };
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, rng)
        .map_err(|_| corrupt())?;
    let key = PublicKey::from_point(pair.public_key().as_ref()).ok_or_else(corrupt)?;
    Ok(SoftKey { pair, key })
}
