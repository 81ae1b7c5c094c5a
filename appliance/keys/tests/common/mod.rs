//! Test support: a real swtpm per test binary, a separate TPM connection to inspect and change
//! it, signature checks in software, and searches of the key directory for the storage secret
//! and for private keys.

#![allow(dead_code)] // Each test binary uses part of this module.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use kammer_keys::{PublicKey, Tcti};
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, UnparsedPublicKey,
};
use tss_esapi::constants::CapabilityType;
use tss_esapi::constants::tss::{TPM2_LOADED_SESSION_FIRST, TPM2_TRANSIENT_FIRST};
use tss_esapi::handles::PcrHandle;
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{CapabilityData, Digest, DigestValues};
use tss_esapi::{Context, TctiNameConf};

/// Runs `body` with `TSS2_LOG=all+NONE` in the environment, so that tpm2-tss's C logging stays
/// silent (expected failures, such as a PCR policy check, would otherwise print errors).
///
/// Setting the variable inside this multi-threaded test process would need `unsafe`, so when it
/// is missing the test re-runs itself (this binary, this test only) in a child process that
/// has it, and checks that the child passed.
pub fn with_quiet_tss(test: &str, body: impl FnOnce()) {
    if std::env::var_os("TSS2_LOG").is_some() {
        body();
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe);
    child.args([test, "--exact", "--test-threads=1"]);
    if std::env::args().any(|arg| arg == "--nocapture") {
        child.arg("--nocapture");
    }
    let status = child
        .env("TSS2_LOG", "all+NONE")
        .status()
        .expect("re-running the test binary");
    assert!(
        status.success(),
        "{test} failed in the child process (output above)"
    );
}

/// A swtpm process on a free loopback port with its own state directory; killed on drop.
pub struct Swtpm {
    child: Child,
    port: u16,
}

impl Swtpm {
    /// Starts swtpm on `state` (which it creates if empty: a new TPM, new seeds). Panics with a
    /// clear message if swtpm is not installed: the TPM tests are required, never skipped.
    pub fn start(state: &Path) -> Swtpm {
        std::fs::create_dir_all(state).expect("the swtpm state directory");
        let port = free_port_pair();
        let child = Command::new("swtpm")
            .arg("socket")
            .arg("--tpm2")
            .arg("--tpmstate")
            .arg(format!("dir={}", state.display()))
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
            .args(["--flags", "not-need-init,startup-clear"])
            .stdin(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "swtpm is not installed, and the TPM tests need it (they are never skipped): \
                 apt-get install swtpm swtpm-tools tpm2-tools libtss2-dev, or run ci/install-deps"
            ),
            Err(e) => panic!("starting swtpm: {e}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("swtpm exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "swtpm did not listen on port {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Swtpm { child, port }
    }

    /// The TCTI for this swtpm.
    pub fn tcti(&self) -> Tcti {
        Tcti::from_str(&format!("swtpm:host=127.0.0.1,port={}", self.port)).expect("valid TCTI")
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        // The seeds and NV memory are written to the state directory when they change, so a
        // kill loses nothing a restart needs (the TPM starts with Startup(CLEAR) anyway).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port `p` such that `p` and `p + 1` (swtpm's server and control ports) are free on loopback.
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind to loopback");
        let port = first.local_addr().expect("local address").port();
        if port < u16::MAX && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return port;
        }
    }
    panic!("found no two consecutive free ports on loopback");
}

/// A separate TPM connection, as another program on the machine would have.
pub fn tpm(tcti: &Tcti) -> Context {
    Context::new(TctiNameConf::from_str(&tcti.to_string()).expect("TCTI")).expect("connect")
}

/// The transient objects and sessions loaded in the TPM: none may be left after an operation.
pub fn assert_nothing_loaded(tcti: &Tcti, after: &str) {
    let mut ctx = tpm(tcti);
    for first in [TPM2_TRANSIENT_FIRST, TPM2_LOADED_SESSION_FIRST] {
        let (data, _) = ctx
            .get_capability(CapabilityType::Handles, first, 64)
            .expect("TPM2_GetCapability");
        let CapabilityData::Handles(handles) = data else {
            panic!("TPM2_GetCapability returned no handle list");
        };
        assert!(handles.is_empty(), "left loaded after {after}: {handles:?}");
    }
}

/// Extends PCR 16 (the debug PCR, resettable only by a TPM restart).
pub fn extend_pcr16(tcti: &Tcti) {
    let mut values = DigestValues::new();
    values.set(
        HashingAlgorithm::Sha256,
        Digest::try_from(vec![0x42; 32]).expect("digest"),
    );
    tpm(tcti)
        .execute_with_session(Some(AuthSession::Password), |ctx| {
            ctx.pcr_extend(PcrHandle::Pcr16, values)
        })
        .expect("extend PCR 16");
}

/// Whether `signature` (DER) is a valid ECDSA P-256 SHA-256 signature of `message` by `key`,
/// checked in software with ring.
pub fn verifies(key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.point())
        .verify(message, signature)
        .is_ok()
}

/// Opens a blob made by `KeyManager::wrap` with a candidate storage secret, following the
/// format documented in `kammer_keys::wrap` (written independently of the crate's code).
pub fn open_with_candidate(candidate: &[u8], label: &str, blob: &[u8]) -> Option<Vec<u8>> {
    let (&1, rest) = blob.split_first()? else {
        return None;
    };
    let (nonce, sealed) = rest.split_at_checked(12)?;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"kammer-keys/v1").extract(candidate);
    let info = [b"wrap\0".as_slice(), label.as_bytes()];
    let mut key = [0; 32];
    prk.expand(&info, &aead::AES_256_GCM)
        .ok()?
        .fill(&mut key)
        .ok()?;
    let key = LessSafeKey::new(UnboundKey::new(&aead::AES_256_GCM, &key).ok()?);
    let mut aad = vec![1];
    aad.extend_from_slice(label.as_bytes());
    let mut buffer = sealed.to_vec();
    let plain = key
        .open_in_place(
            Nonce::try_assume_unique_for_key(nonce).ok()?,
            Aad::from(aad),
            &mut buffer,
        )
        .ok()?;
    Some(plain.to_vec())
}

/// The files of `dir` (recursively) in which some 32-byte window, raw or hex-encoded, opens
/// `blob` as the storage secret: every file that contains the secret in one of those forms.
pub fn files_holding_the_secret(dir: &Path, label: &str, blob: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for path in files_under(dir) {
        let bytes = std::fs::read(&path).expect("read a key file");
        let raw = bytes
            .windows(32)
            .any(|w| open_with_candidate(w, label, blob).is_some());
        let hex = bytes
            .windows(64)
            .filter_map(decode_hex)
            .any(|candidate| open_with_candidate(&candidate, label, blob).is_some());
        if raw || hex {
            found.push(path);
        }
    }
    found
}

/// The files of `dir` (recursively) in which some 32-byte window, raw or hex-encoded, is the
/// private scalar of `public` (ring derives the public key from each candidate and compares):
/// every file that holds the private key in clear, as a PKCS#8 document, a raw key or hex.
pub fn files_holding_the_private_key(dir: &Path, public: &PublicKey) -> Vec<PathBuf> {
    let rng = SystemRandom::new();
    let is_the_key = |candidate: &[u8]| {
        EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            candidate,
            public.point(),
            &rng,
        )
        .is_ok()
    };
    let mut found = Vec::new();
    for path in files_under(dir) {
        let bytes = std::fs::read(&path).expect("read a key file");
        let raw = bytes.windows(32).any(is_the_key);
        let hex = bytes
            .windows(64)
            .filter_map(decode_hex)
            .any(|candidate| is_the_key(&candidate));
        if raw || hex {
            found.push(path);
        }
    }
    found
}

/// Every file under `dir`, recursively, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read the key directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16);
    text.chunks(2)
        .map(|pair| Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8))
        .collect()
}

/// Every file under `dir`, with its size.
pub fn list_files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read the key directory")
        .map(|entry| {
            let entry = entry.expect("directory entry");
            (entry.path(), entry.metadata().expect("metadata").len())
        })
        .collect();
    files.sort();
    files
}
