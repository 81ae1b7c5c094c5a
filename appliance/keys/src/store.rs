//! The key directory `<state>/keys/`: mode 0700, files mode 0600, written atomically (temporary
//! file, fsync, rename, fsync of the directory), so a crash leaves either the old or the new
//! file, never half of one.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::KeyError;
use crate::secret::{SECRET_CAPACITY, SecretBytes};

/// The file naming the backend that created the directory.
const BACKEND_FILE: &str = "backend";

/// The key directory.
#[derive(Debug, Clone)]
pub(crate) struct KeyDir {
    path: PathBuf,
}

impl KeyDir {
    /// Opens the directory, creating it (mode 0700) if `create` is set, and checks that it
    /// belongs to `backend` (writing the marker if the directory is new).
    pub(crate) fn open(
        path: PathBuf,
        backend: &'static str,
        create: bool,
    ) -> Result<Self, KeyError> {
        let dir = Self { path };
        if create {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir.path)
                .map_err(KeyError::io(&dir.path))?;
            fs::set_permissions(&dir.path, fs::Permissions::from_mode(0o700))
                .map_err(KeyError::io(&dir.path))?;
        }
        match dir.read(BACKEND_FILE)? {
            Some(found) if found.trim_ascii() == backend.as_bytes() => Ok(dir),
            Some(found) => Err(KeyError::BackendMismatch {
                dir: dir.path.clone(),
                found: String::from_utf8_lossy(found.trim_ascii()).into_owned(),
                configured: backend,
            }),
            None if create => {
                dir.write(BACKEND_FILE, format!("{backend}\n").as_bytes())?;
                Ok(dir)
            }
            None => Err(KeyError::NotInitialized { dir: dir.path }),
        }
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The path of a file in the directory.
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Reads a file; `None` if it does not exist.
    pub(crate) fn read(&self, name: &str) -> Result<Option<Vec<u8>>, KeyError> {
        let path = self.file(name);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(KeyError::io(path)(e)),
        }
    }

    /// Reads a file holding a secret (soft backend only); `None` if it does not exist.
    pub(crate) fn read_secret(&self, name: &str) -> Result<Option<SecretBytes>, KeyError> {
        let Some(bytes) = self.read(name)?.map(Zeroizing::new) else {
            return Ok(None);
        };
        if bytes.len() > SECRET_CAPACITY {
            return Err(KeyError::Corrupt {
                path: self.file(name),
                reason: "too large for a key",
            });
        }
        Ok(Some(SecretBytes::copy_from(&bytes)))
    }

    /// Removes a file if it exists, and makes the removal durable.
    pub(crate) fn remove(&self, name: &str) -> Result<(), KeyError> {
        let path = self.file(name);
        match fs::remove_file(&path) {
            Ok(()) => File::open(&self.path)
                .and_then(|dir| dir.sync_all())
                .map_err(KeyError::io(&self.path)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(KeyError::io(path)(e)),
        }
    }

    /// Writes a file atomically with mode 0600, replacing any previous one.
    pub(crate) fn write(&self, name: &str, bytes: &[u8]) -> Result<(), KeyError> {
        let path = self.file(name);
        let temporary = self.file(&format!(".{name}.new"));
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temporary)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&temporary, &path)?;
            File::open(&self.path)?.sync_all()
        })();
        result.map_err(|e| {
            let _ = fs::remove_file(&temporary);
            KeyError::io(path)(e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_checks_and_writes_privately() {
        let state = tempfile::tempdir().expect("tempdir");
        let path = state.path().join("keys");
        assert!(matches!(
            KeyDir::open(path.clone(), "soft", false),
            Err(KeyError::NotInitialized { .. })
        ));
        let dir = KeyDir::open(path.clone(), "soft", true).expect("create");
        let mode = |p: &Path| fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o700);
        dir.write("x", b"one").expect("write");
        dir.write("x", b"two").expect("rewrite");
        assert_eq!(dir.read("x").expect("read").as_deref(), Some(&b"two"[..]));
        assert_eq!(mode(&dir.file("x")), 0o600);
        assert_eq!(dir.read("missing").expect("read"), None);
        dir.remove("x").expect("remove");
        dir.remove("x").expect("remove again");
        assert_eq!(dir.read("x").expect("read"), None);
        assert!(KeyDir::open(path.clone(), "soft", false).is_ok());
        assert!(matches!(
            KeyDir::open(path, "tpm", true),
            Err(KeyError::BackendMismatch { .. })
        ));
    }
}
