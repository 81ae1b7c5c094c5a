//! Secret bytes in memory: a page of their own, locked into RAM, zeroized on drop, unprintable.
//!
//! Each [`SecretBytes`] owns one heap page (`#[repr(align(4096))]`, so the allocator hands out a
//! whole, exclusive page). That page is `mlock`ed through `region::lock`, a safe wrapper, so no
//! `unsafe` is needed here. Because the page is exclusive, unlocking it on drop cannot unlock a
//! neighbour's secret (Linux locks per page, and `munlock` does not count). On a system whose
//! pages are larger than 4 KiB the lock is kept until the process ends instead.
//!
//! Locking can fail (an unprivileged process may lock only `RLIMIT_MEMLOCK` bytes); the secret is
//! then still zeroized and redacted, and [`SecretBytes::is_locked`] says so.

use std::fmt;

use zeroize::Zeroize;

/// The size of the page every secret occupies, and so the largest secret.
pub const SECRET_CAPACITY: usize = 4096;

#[repr(C, align(4096))]
struct Page([u8; SECRET_CAPACITY]);

/// Bytes that must not leak: zeroized when dropped, `Debug` prints `[redacted]`, held in a locked
/// memory page where the operating system allows it.
pub struct SecretBytes {
    page: Box<Page>,
    len: usize,
    lock: Option<region::LockGuard>,
}

impl SecretBytes {
    /// A zero-filled secret of `len` bytes, to be filled in place through
    /// [`as_mut_bytes`](Self::as_mut_bytes).
    ///
    /// # Panics
    /// If `len` exceeds [`SECRET_CAPACITY`]; callers bound their lengths first.
    pub(crate) fn zeroed(len: usize) -> Self {
        assert!(len <= SECRET_CAPACITY, "a secret is at most one page long");
        let page = Box::new(Page([0; SECRET_CAPACITY]));
        let lock = lock_page(page.0.as_ptr());
        Self { page, len, lock }
    }

    /// A secret holding a copy of `bytes` (the caller zeroizes its own copy).
    ///
    /// # Panics
    /// If `bytes` is longer than [`SECRET_CAPACITY`].
    pub(crate) fn copy_from(bytes: &[u8]) -> Self {
        let mut secret = Self::zeroed(bytes.len());
        secret.as_mut_bytes().copy_from_slice(bytes);
        secret
    }

    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.page.0[..self.len]
    }

    pub(crate) fn as_mut_bytes(&mut self) -> &mut [u8] {
        &mut self.page.0[..self.len]
    }

    /// Shortens the secret to `len` bytes, zeroizing the rest.
    pub(crate) fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.page.0[len..self.len].zeroize();
            self.len = len;
        }
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the secret holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the page holding the secret is locked into RAM (cannot be swapped out).
    pub fn is_locked(&self) -> bool {
        self.lock.is_some() || region::page::size() > SECRET_CAPACITY
    }
}

/// Locks the [`SECRET_CAPACITY`] bytes at `page`, the start of a page-aligned allocation of
/// exactly that size (so of an exclusive page), into RAM; the guard unlocks it when dropped.
/// `None` if locking failed, or if the system's pages are larger: then the page is shared with
/// other allocations, unlocking it later could unlock theirs, and it stays locked for the life of
/// the process.
pub(crate) fn lock_page(page: *const u8) -> Option<region::LockGuard> {
    match region::lock(page, SECRET_CAPACITY) {
        Ok(guard) if region::page::size() <= SECRET_CAPACITY => Some(guard),
        Ok(guard) => {
            std::mem::forget(guard);
            None
        }
        Err(_) => None,
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.page.0.zeroize();
        // The lock guard, dropped after this, unlocks the now zeroed page.
        drop(self.lock.take());
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([redacted], {} bytes)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let secret = SecretBytes::copy_from(b"very secret");
        let printed = format!("{secret:?}");
        assert!(!printed.contains("very"), "{printed}");
        assert!(printed.contains("[redacted]"));
    }

    #[test]
    fn each_secret_has_its_own_page() {
        let a = SecretBytes::copy_from(&[1; 32]);
        let b = SecretBytes::copy_from(&[2; 32]);
        let (pa, pb) = (
            a.as_bytes().as_ptr() as usize,
            b.as_bytes().as_ptr() as usize,
        );
        assert_eq!(pa % SECRET_CAPACITY, 0);
        assert_eq!(pb % SECRET_CAPACITY, 0);
        assert_ne!(pa, pb);
    }

    #[test]
    fn truncate_zeroizes_the_tail() {
        let mut a = SecretBytes::copy_from(&[7; 40]);
        a.truncate(32);
        assert_eq!(a.len(), 32);
        assert_eq!(a.as_bytes(), &[7; 32]);
        assert!(a.page.0[32..].iter().all(|&b| b == 0));
    }

    #[test]
    fn locks_when_the_limit_allows() {
        // Root (the CI machine) may always lock; elsewhere RLIMIT_MEMLOCK is at least 64 KiB on
        // current distributions, enough for one page.
        assert!(SecretBytes::zeroed(32).is_locked());
    }
}
