//! What can go wrong in the key manager.

use std::path::PathBuf;

use crate::Role;
use crate::config::{PcrPolicy, TlsKeyMode};

/// An error of the key manager. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file or directory of the key state could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// `open` found no keys: the key ceremony (`init`) has not run for this state directory.
    #[error("{dir} holds no keys: run the key ceremony (`kammer keys init`) first")]
    NotInitialized {
        /// The key directory.
        dir: PathBuf,
    },
    /// The state directory was created by the other backend.
    #[error("{dir} holds keys of the {found} backend, but the {configured} backend is configured")]
    BackendMismatch {
        /// The key directory.
        dir: PathBuf,
        /// The backend named in the directory.
        found: String,
        /// The configured backend.
        configured: &'static str,
    },
    /// The key directory holds the TLS key in another [`TlsKeyMode`] than the configured one.
    /// Switching modes means a new TLS key and certificate: see
    /// [`KeyManager::open_with_new_tls_key`](crate::KeyManager::open_with_new_tls_key).
    #[error(
        "{dir} holds a TLS key of mode {found}, but mode {configured} is configured: switching \
         modes needs a new TLS key and a new certificate; to keep the key, configure {found} \
         again"
    )]
    TlsModeMismatch {
        /// The key directory.
        dir: PathBuf,
        /// The mode recorded in the directory.
        found: TlsKeyMode,
        /// The configured mode.
        configured: TlsKeyMode,
    },
    /// A file of the key state is malformed.
    #[error("{path} is damaged: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A TPM command failed.
    #[error("the TPM refused {operation}: {source}")]
    Tpm {
        /// What the key manager asked the TPM to do.
        operation: &'static str,
        /// The TPM's or tpm2-tss's error.
        source: tss_esapi::Error,
    },
    /// The TPM's storage key differs from the one the keys were created under: the TPM was
    /// cleared or replaced, and the keys in the state directory can no longer be loaded.
    #[error(
        "the TPM's owner hierarchy changed since the keys in {dir} were created (TPM cleared or \
         replaced): they cannot be loaded any more; a new key ceremony and new certificates are \
         needed"
    )]
    TpmChanged {
        /// The key directory.
        dir: PathBuf,
    },
    /// The PCR values differ from those the storage secret was sealed to, so the TPM refuses to
    /// unseal it.
    #[error(
        "the TPM refuses to unseal the storage secret: PCRs {pcrs} differ from their values at \
         sealing time (other firmware, boot chain or configuration)"
    )]
    PcrPolicyFailed {
        /// The PCRs the secret is sealed to.
        pcrs: PcrPolicy,
    },
    /// [`TlsKeyMode::Sealed`]: the TLS key, wrapped under the storage secret, cannot be opened
    /// because the TPM refuses to unseal that secret (the PCRs changed). TLS stays down until the
    /// platform is back in the state it was sealed in.
    #[error(
        "the sealed TLS key cannot be opened: the TPM refuses to unseal the storage secret because \
         PCRs {pcrs} differ from their values at sealing time (other firmware, boot chain or \
         configuration)"
    )]
    SealedTlsKeyLocked {
        /// The PCRs the storage secret is sealed to.
        pcrs: PcrPolicy,
    },
    /// The public key of the signed PCR policy is missing, unreadable or not an RSA-2048
    /// SubjectPublicKeyInfo in PEM.
    #[error("{path} is not usable as the PCR policy's signing key: {reason}")]
    PcrPublicKey {
        /// The configured public key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The signature file of the signed PCR policy is missing, unreadable or malformed.
    #[error("{path} is not usable as the PCR policy's signature file: {reason}")]
    PcrSignatureFile {
        /// The configured signature file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The current values of the signed PCRs are not among those the signing key approved: the
    /// system did not boot a signed release of the image the storage secret was sealed for.
    #[error(
        "the TPM refuses to unseal the storage secret: the current values of PCRs {pcrs} are not \
        approved by the signing key {key} in {signature} (this system did not boot a signed \
        release of the image the secret was sealed for)"
    )]
    PcrsNotApproved {
        /// The signed PCRs.
        pcrs: PcrPolicy,
        /// The signing key's `pkfp` (hex).
        key: String,
        /// The signature file.
        signature: PathBuf,
    },
    /// The signature file approves the current PCR values, but with another key than the
    /// configured one.
    #[error(
        "{signature} approves the current values of PCRs {pcrs} only with key {found}, not with \
        the configured signing key {expected}"
    )]
    PcrSignatureOtherKey {
        /// The signed PCRs.
        pcrs: PcrPolicy,
        /// The `pkfp` of the key that signed (hex).
        found: String,
        /// The configured key's `pkfp` (hex).
        expected: String,
        /// The signature file.
        signature: PathBuf,
    },
    /// The TPM found the signature for the current PCR values invalid for the configured key.
    #[error(
        "the TPM rejects the signature in {signature} for the current values of PCRs {pcrs}: it \
        was not made by the configured signing key {key}"
    )]
    PcrSignatureInvalid {
        /// The signed PCRs.
        pcrs: PcrPolicy,
        /// The configured key's `pkfp` (hex).
        key: String,
        /// The signature file.
        signature: PathBuf,
    },
    /// The configured signed PCR policy differs from the one the storage secret is sealed to.
    #[error(
        "the storage secret is sealed to the signed PCR policy {sealed}, but {configured} is \
        configured"
    )]
    SignedPolicyConfigMismatch {
        /// The sealed policy: `none`, or the PCRs and the key's `pkfp`.
        sealed: String,
        /// The configured one, alike.
        configured: String,
    },
    /// The configured PCR list differs from the one the storage secret is sealed to.
    #[error("the storage secret is sealed to PCRs {sealed}, but PCRs {configured} are configured")]
    PcrConfigMismatch {
        /// The PCRs named in the sealed object's policy file.
        sealed: PcrPolicy,
        /// The configured PCRs.
        configured: PcrPolicy,
    },
    /// A wrapped blob failed authentication: damaged, wrapped under another label, or under
    /// another storage secret.
    #[error("the wrapped blob is damaged or belongs to another label or another key state")]
    Unwrap,
    /// A label is empty or longer than [`MAX_LABEL`](crate::MAX_LABEL) bytes.
    #[error("a wrap label must be 1 to {max} bytes long")]
    Label {
        /// The longest label.
        max: usize,
    },
    /// A wrap label in the namespace the key manager keeps for its own keys (such as the sealed
    /// TLS key), which `wrap` and `unwrap` refuse so that no caller can unwrap them.
    #[error("wrap labels starting with {prefix:?} are reserved for the key manager's own keys")]
    ReservedLabel {
        /// The reserved prefix.
        prefix: &'static str,
    },
    /// An input is larger than the key manager accepts.
    #[error("{what} is larger than {max} bytes")]
    TooLarge {
        /// The input.
        what: &'static str,
        /// Its limit.
        max: usize,
    },
    /// The role's key was rotated after this signer was built for it (its certificate is for the
    /// old key).
    #[error("the {role} key was rotated: the certificate for the old key must be replaced")]
    KeyRotated {
        /// The role.
        role: Role,
    },
    /// The software crypto library failed (key generation, random numbers).
    #[error("the software crypto library failed: {0}")]
    Crypto(&'static str),
}

impl KeyError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> KeyError {
        let path = path.into();
        move |source| KeyError::Io { path, source }
    }

    pub(crate) fn tpm(operation: &'static str) -> impl FnOnce(tss_esapi::Error) -> KeyError {
        move |source| KeyError::Tpm { operation, source }
    }
}
