//! The TLS key's mode in the key directory, and the TLS key of [`TlsKeyMode::Sealed`].
//!
//! `tls.mode` records the mode (`in-tpm` or `sealed`), written by the key ceremony before the
//! key itself: a crash in between leaves a mode and no key, and the next `init` creates the key.
//! A directory from before the mode was recorded holds `tls.tpm` and no `tls.mode`: it is
//! `in-tpm`.
//!
//! With `sealed`, `tls.sealed` is the key's PKCS#8 document wrapped under the storage secret for
//! the label [`TLS_KEY_LABEL`] (the format of [`crate::wrap`]). Opening it unseals the storage
//! secret, so the PCR binding guards the TLS key too; the unwrapped document lives only in a
//! [`SecretBytes`](crate::SecretBytes) until ring has parsed it into a [`ProcessKey`].

use super::{Sealing, TpmState, role_file};
use crate::Opening;
use crate::Role;
use crate::config::TlsKeyMode;
use crate::error::KeyError;
use crate::process_key::ProcessKey;
use crate::store::KeyDir;
use crate::wrap::{self, TLS_KEY_LABEL};

/// The file recording the TLS key mode.
const TLS_MODE_FILE: &str = "tls.mode";
/// The wrapped TLS key of [`TlsKeyMode::Sealed`].
pub(super) const SEALED_TLS_FILE: &str = "tls.sealed";

/// The mode the directory's TLS key was made for, if it has one.
fn recorded_mode(dir: &KeyDir) -> Result<Option<TlsKeyMode>, KeyError> {
    match dir.read(TLS_MODE_FILE)? {
        Some(bytes) => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| KeyError::Corrupt {
                path: dir.file(TLS_MODE_FILE),
                reason: "not a TLS key mode",
            }),
        None if dir.read(&role_file(Role::Tls))?.is_some() => Ok(Some(TlsKeyMode::InTpm)),
        None => Ok(None),
    }
}

/// Checks the recorded mode against the configured one, and records it at the first ceremony.
/// Only [`Opening::NewTlsKey`] accepts another mode (it replaces the key).
pub(super) fn check_recorded_mode(
    dir: &KeyDir,
    configured: TlsKeyMode,
    opening: Opening,
) -> Result<(), KeyError> {
    let recorded = recorded_mode(dir)?;
    if let Some(found) = recorded.filter(|&found| found != configured)
        && opening != Opening::NewTlsKey
    {
        return Err(KeyError::TlsModeMismatch {
            dir: dir.path().to_owned(),
            found,
            configured,
        });
    }
    match opening {
        Opening::Create if dir.read(TLS_MODE_FILE)?.is_none() => {
            dir.write(TLS_MODE_FILE, format!("{configured}\n").as_bytes())
        }
        Opening::NewTlsKey if recorded.is_none() => Err(KeyError::NotInitialized {
            dir: dir.path().to_owned(),
        }),
        _ => Ok(()),
    }
}

/// After a new TLS key was written for `mode`: records the mode, then removes the other mode's
/// key file. A crash before the first step leaves the old mode and key in force, one after it a
/// stale file that nothing reads.
pub(super) fn record_switch(dir: &KeyDir, mode: TlsKeyMode) -> Result<(), KeyError> {
    dir.write(TLS_MODE_FILE, format!("{mode}\n").as_bytes())?;
    match mode {
        TlsKeyMode::InTpm => dir.remove(SEALED_TLS_FILE),
        TlsKeyMode::Sealed => dir.remove(&role_file(Role::Tls)),
    }
}

impl TpmState {
    /// Unwraps the sealed TLS key (creating it when `create` is set and there is none).
    pub(super) fn open_sealed_tls_key(
        &mut self,
        dir: &KeyDir,
        sealing: &Sealing,
        create: bool,
    ) -> Result<ProcessKey, KeyError> {
        let Some(blob) = dir.read(SEALED_TLS_FILE)? else {
            if create {
                return self.new_sealed_tls_key(dir, sealing);
            }
            return Err(KeyError::NotInitialized {
                dir: dir.path().to_owned(),
            });
        };
        let corrupt = |reason| KeyError::Corrupt {
            path: dir.file(SEALED_TLS_FILE),
            reason,
        };
        let secret = self.storage_secret(sealing).map_err(|e| match e {
            KeyError::PcrPolicyFailed { pcrs } => KeyError::SealedTlsKeyLocked { pcrs },
            e => e,
        })?;
        let pkcs8 = wrap::unwrap(&secret, TLS_KEY_LABEL, &blob).map_err(|e| match e {
            KeyError::Unwrap => corrupt("not a blob wrapped under this storage secret"),
            e => e,
        })?;
        ProcessKey::from_pkcs8(pkcs8.as_bytes())
            .ok_or_else(|| corrupt("not a wrapped PKCS#8 ECDSA P-256 key"))
    }

    /// Generates a TLS key, writes it wrapped under the storage secret to `tls.sealed`
    /// (replacing an old one) and returns it.
    pub(super) fn new_sealed_tls_key(
        &mut self,
        dir: &KeyDir,
        sealing: &Sealing,
    ) -> Result<ProcessKey, KeyError> {
        let secret = self.storage_secret(sealing)?;
        let pkcs8 = ProcessKey::generate_pkcs8()?;
        let key = ProcessKey::from_pkcs8(pkcs8.as_bytes())
            .ok_or(KeyError::Crypto("ring refused the key it generated"))?;
        dir.write(
            SEALED_TLS_FILE,
            &wrap::wrap(&secret, TLS_KEY_LABEL, pkcs8.as_bytes())?,
        )?;
        Ok(key)
    }
}
