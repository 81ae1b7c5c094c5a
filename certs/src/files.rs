//! File handling shared by the development PKI and the offline CA: reads, writes that never
//! replace an existing file, atomic replacement of state files, and the CA directory lock.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// A file operation that failed, with the file it failed on.
#[derive(Debug)]
pub(crate) struct FileError {
    pub(crate) path: PathBuf,
    pub(crate) source: std::io::Error,
}

impl FileError {
    pub(crate) fn new(path: &Path, source: std::io::Error) -> Self {
        Self {
            path: path.to_owned(),
            source,
        }
    }
}

/// Creates `dir` and its parents; a directory created here gets mode 0700.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), FileError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| FileError::new(dir, source))
}

pub(crate) fn read(path: &Path) -> Result<String, FileError> {
    fs::read_to_string(path).map_err(|source| FileError::new(path, source))
}

pub(crate) fn read_secret(path: &Path) -> Result<Zeroizing<String>, FileError> {
    read(path).map(Zeroizing::new)
}

/// The temporary name `path` is written under before it is moved into place.
fn temporary(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Writes `contents` to a fresh temporary file next to `path`, created with its final mode
/// (never reused: a leftover from an interrupted run may have other permissions) and synced.
fn write_temporary(path: &Path, contents: &[u8], mode: u32) -> Result<PathBuf, FileError> {
    let tmp = temporary(path);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(FileError::new(&tmp, source)),
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|source| FileError::new(&tmp, source))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|source| FileError::new(&tmp, source))?;
    Ok(tmp)
}

/// Writes a file that must not exist yet: to a fresh temporary file first, then linked into
/// place, which fails instead of replacing an existing file.
pub(crate) fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), FileError> {
    let tmp = write_temporary(path, contents, mode)?;
    let linked = fs::hard_link(&tmp, path).map_err(|source| FileError::new(path, source));
    let _ = fs::remove_file(&tmp);
    linked?;
    sync_parent(path)
}

/// Replaces `path` (or creates it) atomically: a reader sees the old or the new contents,
/// never a mixture, also after a crash.
pub(crate) fn replace(path: &Path, contents: &[u8], mode: u32) -> Result<(), FileError> {
    let tmp = write_temporary(path, contents, mode)?;
    if let Err(source) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(FileError::new(path, source));
    }
    sync_parent(path)
}

/// Makes a new or renamed directory entry durable.
fn sync_parent(path: &Path) -> Result<(), FileError> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    fs::File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|source| FileError::new(parent, source))
}

/// An exclusive lock on a directory's `lock` file, held until dropped: two processes working
/// on the same CA directory take turns instead of losing each other's updates.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: fs::File,
}

pub(crate) fn lock_dir(dir: &Path) -> Result<DirLock, FileError> {
    let path = dir.join("lock");
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|source| FileError::new(&path, source))?;
    file.lock()
        .map_err(|source| FileError::new(&path, source))?;
    Ok(DirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn write_new_refuses_an_existing_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a");
        write_new(&path, b"one", 0o600).expect("first");
        let error = write_new(&path, b"two", 0o600).expect_err("second");
        assert_eq!(error.source.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).expect("read"), b"one");
        assert!(!temporary(&path).exists());
    }

    #[test]
    fn replace_swaps_contents_and_sets_the_mode() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state");
        replace(&path, b"old", 0o644).expect("create");
        replace(&path, b"new", 0o600).expect("replace");
        assert_eq!(fs::read(&path).expect("read"), b"new");
        let mode = fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn the_lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let held = lock_dir(dir.path()).expect("lock");
        let other = fs::File::open(dir.path().join("lock")).expect("open");
        assert!(other.try_lock().is_err());
        drop(held);
        other.try_lock().expect("free again");
    }
}
