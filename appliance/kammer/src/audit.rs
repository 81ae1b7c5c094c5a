//! The audit log: an append-only file of signed, hash-chained records of what security officers
//! and auditors need to reconstruct (key ceremony, key rotation, later security events and
//! meeting events).
//!
//! `state_dir/audit/audit.jsonl` holds one JSON object per line:
//!
//! ```text
//! {"seq":1,"time":"2026-11-27T04:20:00Z","event":"key_ceremony","details":{…},
//!  "prev":"<SHA-256 of the previous line, hex; 64 zeros for the first>",
//!  "key":"sha256:<fingerprint of the audit key>","sig":"<DER ECDSA P-256/SHA-256, hex>"}
//! ```
//!
//! The signature covers the line's bytes without the `sig` member (the same JSON, members in
//! this order, `details` with sorted keys); the key manager's `audit` key makes it. Removing,
//! reordering, inserting or changing a line breaks the chain or a signature; [`verify`] names
//! the first line that does not hold. Truncating the end cannot be seen from the file alone:
//! compare the last `seq` with one recorded elsewhere (e.g. on paper after the ceremony).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ring::digest::{SHA256, digest};
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// Signs a record's bytes with the audit key (DER ECDSA P-256/SHA-256), or says why not.
pub type Signer<'a> = dyn Fn(&[u8]) -> Result<Vec<u8>, String> + 'a;

/// Hash of "no previous line".
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One record as signed (everything but the signature), in wire order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Unsigned {
    seq: u64,
    time: String,
    event: String,
    details: serde_json::Value,
    prev: String,
    key: String,
}

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    seq: u64,
    time: String,
    event: String,
    details: serde_json::Value,
    prev: String,
    key: String,
    sig: String,
}

impl Line {
    fn unsigned(&self) -> Unsigned {
        Unsigned {
            seq: self.seq,
            time: self.time.clone(),
            event: self.event.clone(),
            details: self.details.clone(),
            prev: self.prev.clone(),
            key: self.key.clone(),
        }
    }
}

/// Why the log could not be written or does not verify.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The signer failed.
    #[error("the audit key could not sign: {0}")]
    Sign(String),
    /// A line does not hold.
    #[error("line {line}: {reason}")]
    Broken {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// A public key that audit records may be signed with: its fingerprint as written in `key`,
/// and the uncompressed P-256 point.
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    /// `sha256:<hex>` of the SubjectPublicKeyInfo.
    pub fingerprint: String,
    /// `04 || x || y`.
    pub point: Vec<u8>,
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Records in the file.
    pub records: u64,
    /// SHA-256 of the last line (hex), to write down elsewhere.
    pub head: String,
}

/// The audit log of one state directory.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    /// The log in `state_dir/audit/audit.jsonl` (the directory is created, mode 0700).
    pub fn in_state_dir(state_dir: &Path) -> Result<Self, AuditError> {
        let dir = state_dir.join("audit");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| AuditError::Io {
                path: dir.clone(),
                source,
            })?;
        Ok(Self {
            path: dir.join("audit.jsonl"),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one signed record; returns its sequence number. `signer` signs with the audit
    /// key whose fingerprint is `key`.
    pub fn append(
        &self,
        event: &str,
        details: serde_json::Value,
        key: &str,
        signer: &Signer<'_>,
    ) -> Result<u64, AuditError> {
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        let existing = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(error) => return Err(io(error)),
        };
        let (seq, prev) = match existing.lines().last() {
            Some(last) => {
                let line: Line = serde_json::from_str(last).map_err(|_| AuditError::Broken {
                    line: existing.lines().count(),
                    reason: "the last line is not an audit record; refusing to extend it".into(),
                })?;
                (line.seq + 1, hash(last))
            }
            None => (1, GENESIS.to_owned()),
        };
        let unsigned = Unsigned {
            seq,
            time: now(),
            event: event.to_owned(),
            details,
            prev,
            key: key.to_owned(),
        };
        let message = serde_json::to_vec(&unsigned).expect("records serialise");
        let sig = signer(&message).map_err(AuditError::Sign)?;
        let line = Line {
            seq,
            time: unsigned.time,
            event: unsigned.event,
            details: unsigned.details,
            prev: unsigned.prev,
            key: unsigned.key,
            sig: hex(&sig),
        };
        let mut text = serde_json::to_string(&line).expect("records serialise");
        text.push('\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(seq)
    }
}

/// Checks every line of `path`: it parses, `seq` counts from 1, `prev` is the hash of the line
/// before, and its signature verifies under one of `keys` (the one its `key` names).
pub fn verify(path: &Path, keys: &[VerifyingKey]) -> Result<Verified, AuditError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuditError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut prev = GENESIS.to_owned();
    let mut records = 0;
    for (index, raw) in text.lines().enumerate() {
        let broken = |reason: String| AuditError::Broken {
            line: index + 1,
            reason,
        };
        let line: Line = serde_json::from_str(raw)
            .map_err(|error| broken(format!("not an audit record: {error}")))?;
        if line.seq != records + 1 {
            return Err(broken(format!(
                "sequence number {} where {} was due",
                line.seq,
                records + 1
            )));
        }
        if line.prev != prev {
            return Err(broken(
                "does not chain to the line before (a line was removed, inserted or changed)"
                    .into(),
            ));
        }
        let key = keys
            .iter()
            .find(|key| key.fingerprint == line.key)
            .ok_or_else(|| broken(format!("signed by {}, which is not a given key", line.key)))?;
        let signature =
            unhex(&line.sig).ok_or_else(|| broken("the signature is not hex".into()))?;
        let message = serde_json::to_vec(&line.unsigned()).expect("records serialise");
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &key.point)
            .verify(&message, &signature)
            .map_err(|_| broken("the signature does not verify".into()))?;
        prev = hash(raw);
        records += 1;
    }
    Ok(Verified {
        records,
        head: prev,
    })
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn hash(line: &str) -> String {
    hex(digest(&SHA256, line.as_bytes()).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    fn new_key() -> (EcdsaKeyPair, VerifyingKey) {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .expect("key");
        let verifying = VerifyingKey {
            fingerprint: "sha256:test".to_owned(),
            point: pair.public_key().as_ref().to_vec(),
        };
        (pair, verifying)
    }

    fn write(log: &AuditLog, pair: &EcdsaKeyPair, n: usize) {
        let rng = SystemRandom::new();
        let signer = |message: &[u8]| {
            pair.sign(&rng, message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| "sign".to_owned())
        };
        for i in 0..n {
            log.append(
                "test",
                serde_json::json!({"i": i, "b": "x"}),
                "sha256:test",
                &signer,
            )
            .expect("append");
        }
    }

    #[test]
    fn records_chain_and_verify() {
        let dir = tempfile::tempdir().expect("dir");
        let log = AuditLog::in_state_dir(dir.path()).expect("log");
        let (pair, key) = new_key();
        write(&log, &pair, 3);
        let verified = verify(log.path(), &[key]).expect("verifies");
        assert_eq!(verified.records, 3);
        assert_eq!(verified.head.len(), 64);
    }

    #[test]
    fn every_kind_of_tampering_names_its_line() {
        let dir = tempfile::tempdir().expect("dir");
        let log = AuditLog::in_state_dir(dir.path()).expect("log");
        let (pair, key) = new_key();
        write(&log, &pair, 3);
        let original = std::fs::read_to_string(log.path()).expect("read");
        let lines: Vec<&str> = original.lines().collect();
        let cases: Vec<(String, usize, &str)> = vec![
            (original.replacen("\"i\":1", "\"i\":7", 1), 2, "signature"),
            (
                format!("{}\n{}\n", lines[0], lines[2]),
                2,
                "sequence number 3",
            ),
            (
                format!("{}\n{}\n{}\n", lines[1], lines[0], lines[2]),
                1,
                "sequence number 2",
            ),
            (
                original.replacen("\"b\":\"x\"", "\"b\": \"x\"", 1),
                2,
                "chain",
            ),
        ];
        for (tampered, line, reason) in cases {
            std::fs::write(log.path(), &tampered).expect("write");
            let error = verify(log.path(), std::slice::from_ref(&key)).expect_err("tampered");
            let text = error.to_string();
            assert!(
                text.starts_with(&format!("line {line}:")) && text.contains(reason),
                "{text}"
            );
        }
        std::fs::write(log.path(), &original).expect("write");
        let (_, other) = new_key();
        let other = VerifyingKey {
            fingerprint: key.fingerprint.clone(),
            ..other
        };
        let error = verify(log.path(), &[other]).expect_err("wrong key");
        assert!(error.to_string().contains("does not verify"), "{error}");
    }
}
