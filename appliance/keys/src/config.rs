//! What the key manager is told: where its state lives and which backend holds the keys.
//!
//! Values are parsed and validated here ([`Tcti::from_str`], [`PcrPolicy::new`]); a
//! [`KeyConfig`] can only be built from validated parts.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A configuration value that is not acceptable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The TCTI string is neither `device:PATH` nor `swtpm:host=IP,port=N`.
    #[error(
        "TPM interface {0:?} is neither \"device:/dev/tpmrm0\" nor \"swtpm:host=127.0.0.1,port=N\""
    )]
    Tcti(String),
    /// swtpm must be reached over loopback: TPM commands over a network are unprotected.
    #[error("the swtpm host {0} is not a loopback address")]
    RemoteSwtpm(IpAddr),
    /// A PCR list that is not of the form `sha256:7,11` or `none`.
    #[error("PCR list {0:?} is not of the form \"sha256:7,11\" or \"none\"")]
    PcrList(String),
    /// A PCR index outside 0..=23.
    #[error("PCR {0} does not exist (PCRs are numbered 0 to 23)")]
    PcrIndex(u8),
    /// A signed PCR policy needs at least one PCR.
    #[error("a signed PCR policy needs at least one PCR")]
    NoSignedPcrs,
    /// A PCR both bound literally and through signatures.
    #[error("PCR {0} is bound both literally and through signatures: choose one")]
    PcrTwice(u8),
    /// A path of the signed policy that is not absolute.
    #[error("{0:?} is not an absolute path")]
    RelativePath(PathBuf),
    /// A TLS key mode other than `in-tpm` and `sealed`.
    #[error("TLS key mode {0:?} is neither \"in-tpm\" nor \"sealed\"")]
    TlsKeyMode(String),
}

/// How to reach the TPM: the TCTI (TPM command transmission interface) of tpm2-tss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tcti {
    /// A kernel TPM device, normally `/dev/tpmrm0` (the kernel's resource manager).
    Device(PathBuf),
    /// The swtpm simulator over TCP on a loopback address (tests, image build host).
    Swtpm {
        /// The loopback address swtpm listens on.
        host: IpAddr,
        /// Its command port (the control port is the next one).
        port: u16,
    },
}

impl FromStr for Tcti {
    type Err = ConfigError;

    /// Parses `device:/dev/tpmrm0` or `swtpm:host=127.0.0.1,port=2321`.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::Tcti(s.to_owned());
        if let Some(path) = s.strip_prefix("device:") {
            if !path.starts_with('/') || path.contains(',') {
                return Err(bad());
            }
            return Ok(Tcti::Device(PathBuf::from(path)));
        }
        let options = s.strip_prefix("swtpm:").ok_or_else(bad)?;
        let (mut host, mut port) = (None, None);
        for option in options.split(',') {
            match option.split_once('=') {
                Some(("host", value)) if host.is_none() => {
                    host = Some(value.parse::<IpAddr>().map_err(|_| bad())?);
                }
                Some(("port", value)) if port.is_none() => {
                    port = Some(value.parse::<u16>().map_err(|_| bad())?);
                }
                _ => return Err(bad()),
            }
        }
        let (host, port) = (host.ok_or_else(bad)?, port.ok_or_else(bad)?);
        if !host.is_loopback() {
            return Err(ConfigError::RemoteSwtpm(host));
        }
        Ok(Tcti::Swtpm { host, port })
    }
}

impl fmt::Display for Tcti {
    /// The tpm2-tss TCTI configuration string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tcti::Device(path) => write!(f, "device:{}", path.display()),
            Tcti::Swtpm { host, port } => write!(f, "swtpm:host={host},port={port}"),
        }
    }
}

/// The SHA-256 PCRs the storage secret is sealed to: sorted, without duplicates, each 0..=23.
/// Empty means no PCR binding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PcrPolicy(Vec<u8>);

impl PcrPolicy {
    /// The highest PCR index of a PC-client TPM.
    pub const MAX_INDEX: u8 = 23;

    /// Validates a list of PCR indices (order and duplicates do not matter).
    pub fn new(indices: impl IntoIterator<Item = u8>) -> Result<Self, ConfigError> {
        let mut pcrs: Vec<u8> = indices.into_iter().collect();
        if let Some(&bad) = pcrs.iter().find(|&&i| i > Self::MAX_INDEX) {
            return Err(ConfigError::PcrIndex(bad));
        }
        pcrs.sort_unstable();
        pcrs.dedup();
        Ok(Self(pcrs))
    }

    /// No PCR binding.
    pub fn none() -> Self {
        Self(Vec::new())
    }

    /// The PCR indices, ascending.
    pub fn indices(&self) -> &[u8] {
        &self.0
    }

    /// Whether the policy binds to no PCR.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for PcrPolicy {
    /// `sha256:7,11`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        f.write_str("sha256:")?;
        for (n, index) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            write!(f, "{index}")?;
        }
        Ok(())
    }
}

impl FromStr for PcrPolicy {
    type Err = ConfigError;

    /// Parses what [`Display`](fmt::Display) writes.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        if s == "none" {
            return Ok(Self::none());
        }
        let bad = || ConfigError::PcrList(s.to_owned());
        let list = s.strip_prefix("sha256:").ok_or_else(bad)?;
        let indices = list
            .split(',')
            .map(|i| i.parse::<u8>().map_err(|_| bad()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(indices)
    }
}

/// A PCR policy approved by signatures (TPM2_PolicyAuthorize): the storage secret is sealed to
/// "whatever values of [`pcrs`](Self::pcrs) the holder of this RSA key signed", so a new
/// release signed with the same key unseals it without resealing, and any other PCR values do
/// not. The signatures come in a JSON file of the format `systemd-measure sign` writes (see
/// `docs/keys.md`); both files are read when the key manager opens, before its sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPcrPolicy {
    public_key: PathBuf,
    signature: PathBuf,
    pcrs: PcrPolicy,
}

impl SignedPcrPolicy {
    /// Where systemd puts the signature file that the UKI carries.
    pub const DEFAULT_SIGNATURE: &str = "/run/systemd/tpm2-pcr-signature.json";
    /// The PCR systemd-stub measures the UKI into.
    pub const DEFAULT_PCRS: [u8; 1] = [11];

    /// `public_key`: an RSA-2048 public key in PEM (SubjectPublicKeyInfo, as
    /// `openssl rsa -pubout` writes it); `signature`: the signature file; `pcrs`: the PCRs whose
    /// values are signed (not empty). Both paths must be absolute.
    pub fn new(
        public_key: impl Into<PathBuf>,
        signature: impl Into<PathBuf>,
        pcrs: PcrPolicy,
    ) -> Result<Self, ConfigError> {
        let (public_key, signature) = (public_key.into(), signature.into());
        for path in [&public_key, &signature] {
            if !path.is_absolute() {
                return Err(ConfigError::RelativePath(path.clone()));
            }
        }
        if pcrs.is_empty() {
            return Err(ConfigError::NoSignedPcrs);
        }
        Ok(Self {
            public_key,
            signature,
            pcrs,
        })
    }

    /// The public key of the signer (PEM).
    pub fn public_key(&self) -> &Path {
        &self.public_key
    }

    /// The signature file (JSON).
    pub fn signature(&self) -> &Path {
        &self.signature
    }

    /// The PCRs whose values are signed.
    pub fn pcrs(&self) -> &PcrPolicy {
        &self.pcrs
    }

    /// Refuses a literal PCR list that shares a PCR with this policy: a PCR bound literally
    /// cannot change, which defeats signing its values.
    pub fn check_literal(&self, literal: &PcrPolicy) -> Result<(), ConfigError> {
        match literal
            .indices()
            .iter()
            .find(|i| self.pcrs.indices().contains(i))
        {
            Some(&index) => Err(ConfigError::PcrTwice(index)),
            None => Ok(()),
        }
    }
}

/// Where the TLS role key lives and signs (TPM backend).
///
/// * [`InTpm`](Self::InTpm), the default: a non-exportable key of the TPM, like the other roles;
///   every TLS handshake is one TPM2_Sign (tens of milliseconds on a hardware TPM, serialised with
///   every other TPM command).
/// * [`Sealed`](Self::Sealed): a software key generated at `init`, stored only wrapped under the
///   storage secret (so it is bound to the same PCRs), unwrapped once at `open` and then held in
///   locked memory of the key-manager process, where ring signs at software speed. A memory
///   disclosure of that process yields the key.
///
/// The mode is recorded in the key directory at `init`; [`KeyManager::open`](crate::KeyManager::open)
/// and `init` refuse a directory recorded with the other mode
/// ([`KeyError::TlsModeMismatch`](crate::KeyError::TlsModeMismatch)), and
/// [`KeyManager::open_with_new_tls_key`](crate::KeyManager::open_with_new_tls_key) switches
/// explicitly, with a new key. The soft backend ignores the mode: its TLS key is a plain file that
/// signs in the process, which is `Sealed` without the sealing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TlsKeyMode {
    /// The TLS key is a non-exportable TPM key; the TPM signs every handshake.
    #[default]
    InTpm,
    /// The TLS key is wrapped under the TPM-sealed storage secret on disk and held unwrapped
    /// only in the key-manager process's locked memory, where it signs in software.
    Sealed,
}

impl TlsKeyMode {
    /// The mode's name: `in-tpm` or `sealed` (also what the key directory records).
    pub fn name(self) -> &'static str {
        match self {
            TlsKeyMode::InTpm => "in-tpm",
            TlsKeyMode::Sealed => "sealed",
        }
    }
}

impl fmt::Display for TlsKeyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TlsKeyMode {
    type Err = ConfigError;

    /// Parses `in-tpm` or `sealed`.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        [TlsKeyMode::InTpm, TlsKeyMode::Sealed]
            .into_iter()
            .find(|mode| mode.name() == s)
            .ok_or_else(|| ConfigError::TlsKeyMode(s.to_owned()))
    }
}

/// Which backend holds the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// TPM 2.0: keys are created in and never leave the TPM (the TLS key unless its
    /// [`TlsKeyMode`] is `Sealed`); the storage secret is sealed to it.
    Tpm {
        /// How to reach the TPM.
        tcti: Tcti,
        /// The PCRs the storage secret is sealed to with their values at sealing time.
        pcrs: PcrPolicy,
        /// The PCRs the storage secret is sealed to with whatever values a key signed; combined
        /// with `pcrs` (both must hold).
        signed: Option<SignedPcrPolicy>,
    },
    /// **Insecure, for development**: keys and the storage secret are files (mode 0600).
    Soft,
}

/// The key manager's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyConfig {
    pub(crate) state_dir: PathBuf,
    pub(crate) backend: Backend,
    pub(crate) tls_mode: TlsKeyMode,
}

impl KeyConfig {
    /// Keys live in `<state_dir>/keys/`, created with mode 0700 if missing. The TLS key mode is
    /// [`TlsKeyMode::InTpm`].
    pub fn new(state_dir: impl Into<PathBuf>, backend: Backend) -> Self {
        Self {
            state_dir: state_dir.into(),
            backend,
            tls_mode: TlsKeyMode::default(),
        }
    }

    /// The same configuration with the TLS key held as `mode` prescribes (TPM backend; the soft
    /// backend ignores it).
    #[must_use]
    pub fn with_tls_mode(mut self, mode: TlsKeyMode) -> Self {
        self.tls_mode = mode;
        self
    }

    /// The directory holding the key files: `<state_dir>/keys`.
    pub fn key_dir(&self) -> PathBuf {
        self.state_dir.join("keys")
    }

    /// The configured backend.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The configured TLS key mode.
    pub fn tls_mode(&self) -> TlsKeyMode {
        self.tls_mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcti_strings_round_trip() {
        for s in [
            "device:/dev/tpmrm0",
            "swtpm:host=127.0.0.1,port=2321",
            "swtpm:host=::1,port=1",
        ] {
            let tcti: Tcti = s.parse().expect("valid");
            assert_eq!(tcti.to_string(), s);
        }
        assert_eq!(
            "swtpm:port=9,host=127.0.0.2".parse::<Tcti>(),
            Ok(Tcti::Swtpm {
                host: "127.0.0.2".parse().expect("address"),
                port: 9
            })
        );
    }

    #[test]
    fn bad_tctis_are_refused() {
        for s in [
            "",
            "mssim:host=127.0.0.1,port=2321",
            "device:",
            "device:relative",
            "swtpm:host=127.0.0.1",
            "swtpm:host=127.0.0.1,port=2321,port=2",
            "swtpm:host=localhost,port=2321",
            "swtpm:host=127.0.0.1,port=70000",
        ] {
            assert!(s.parse::<Tcti>().is_err(), "{s}");
        }
        assert!(matches!(
            "swtpm:host=10.0.0.1,port=2321".parse::<Tcti>(),
            Err(ConfigError::RemoteSwtpm(_))
        ));
    }

    #[test]
    fn pcr_policy_is_sorted_and_bounded() {
        let policy = PcrPolicy::new([11, 7, 11]).expect("valid");
        assert_eq!(policy.indices(), &[7, 11]);
        assert_eq!(policy.to_string(), "sha256:7,11");
        assert_eq!("sha256:7,11".parse::<PcrPolicy>(), Ok(policy));
        assert_eq!("none".parse::<PcrPolicy>(), Ok(PcrPolicy::none()));
        assert_eq!(PcrPolicy::new([24]), Err(ConfigError::PcrIndex(24)));
    }

    #[test]
    fn signed_pcr_policies_are_checked() {
        let eleven = PcrPolicy::new(SignedPcrPolicy::DEFAULT_PCRS).expect("valid");
        let signed = SignedPcrPolicy::new(
            "/etc/kammer/pcr.pem",
            SignedPcrPolicy::DEFAULT_SIGNATURE,
            eleven.clone(),
        )
        .expect("valid");
        assert_eq!(signed.pcrs().indices(), [11]);
        assert_eq!(
            signed.check_literal(&PcrPolicy::new([7]).expect("valid")),
            Ok(())
        );
        assert_eq!(
            signed.check_literal(&PcrPolicy::new([7, 11]).expect("valid")),
            Err(ConfigError::PcrTwice(11))
        );
        assert_eq!(
            SignedPcrPolicy::new("pcr.pem", "/run/sig.json", eleven.clone()),
            Err(ConfigError::RelativePath("pcr.pem".into()))
        );
        assert_eq!(
            SignedPcrPolicy::new("/pcr.pem", "/run/sig.json", PcrPolicy::none()),
            Err(ConfigError::NoSignedPcrs)
        );
    }

    #[test]
    fn tls_key_modes_round_trip() {
        for mode in [TlsKeyMode::InTpm, TlsKeyMode::Sealed] {
            assert_eq!(mode.to_string().parse::<TlsKeyMode>(), Ok(mode));
        }
        assert_eq!(TlsKeyMode::default(), TlsKeyMode::InTpm);
        assert_eq!(
            "memory".parse::<TlsKeyMode>(),
            Err(ConfigError::TlsKeyMode("memory".to_owned()))
        );
        let config = KeyConfig::new("/var/lib/kammer", Backend::Soft);
        assert_eq!(config.tls_mode(), TlsKeyMode::InTpm);
        assert_eq!(
            config.with_tls_mode(TlsKeyMode::Sealed).tls_mode(),
            TlsKeyMode::Sealed
        );
    }
}
