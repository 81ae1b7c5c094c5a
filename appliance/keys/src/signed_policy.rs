//! The signed PCR policy's two inputs, read and checked before any TPM command: the RSA public
//! key that approves PCR values (a PEM SubjectPublicKeyInfo) and the signature file that lists
//! the approved values.
//!
//! The signature file is what `systemd-measure sign` writes and systemd-stub hands to the
//! booted system: a JSON object with one array per PCR bank; each entry approves one policy
//! digest for one set of PCRs, one entry per boot phase:
//!
//! ```json
//! {"sha256": [{"pcrs": [11], "pkfp": "<hex>", "pol": "<hex>", "sig": "<base64>"}, ...]}
//! ```
//!
//! * `pcrs`: the PCR indices the digest covers;
//! * `pkfp`: SHA-256 of the signing key's PKCS#1 `RSAPublicKey` DER (the BIT STRING inside the
//!   SubjectPublicKeyInfo);
//! * `pol`: the TPM2_PolicyPCR digest (SHA-256) of those PCRs holding the approved values,
//!   starting from the empty policy;
//! * `sig`: RSASSA-PKCS1-v1_5 with SHA-256 over `pol`, i.e. over the TPM2_PolicyAuthorize
//!   `aHash` = SHA-256(`pol` ‖ empty policyRef), so that TPM2_VerifySignature checks it as is.
//!
//! Only the `sha256` bank is used; other banks and unknown fields are ignored, entries for other
//! PCR sets are skipped. Everything else that is malformed is refused with the reason.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::config::{PcrPolicy, SignedPcrPolicy};
use crate::der::Fingerprint;
use crate::error::KeyError;

/// The largest public key or signature file read, in bytes (a signature file for every boot
/// phase of several releases is a few KiB).
pub(crate) const MAX_FILE: u64 = 1024 * 1024;
/// The size of an RSA-2048 modulus, and of its signatures.
pub(crate) const RSA_BYTES: usize = 256;
const DIGEST: usize = 32;

/// `rsaEncryption`, 1.2.840.113549.1.1.1, DER-encoded with its tag.
const RSA_ENCRYPTION_OID: [u8; 11] = [
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];

/// The RSA-2048 public key that approves PCR values.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PolicyKey {
    /// Big-endian, exactly 256 bytes, top bit set.
    pub(crate) modulus: Vec<u8>,
    pub(crate) exponent: u32,
    /// SHA-256 of the SubjectPublicKeyInfo DER.
    pub(crate) spki_fingerprint: Fingerprint,
    /// SHA-256 of the PKCS#1 RSAPublicKey DER: the signature file's `pkfp`.
    pub(crate) pkfp: [u8; DIGEST],
}

impl fmt::Debug for PolicyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PolicyKey(RSA-2048, pkfp {})", hex(&self.pkfp))
    }
}

impl PolicyKey {
    /// From a PEM `PUBLIC KEY` block (what `openssl rsa -pubout` writes).
    pub(crate) fn from_pem(text: &[u8]) -> Result<Self, &'static str> {
        let text = std::str::from_utf8(text).map_err(|_| "not a PEM text file")?;
        if text.contains("-----BEGIN RSA PUBLIC KEY-----") {
            return Err(
                "a PKCS#1 \"RSA PUBLIC KEY\", not a SubjectPublicKeyInfo \"PUBLIC KEY\" \
                        (convert it with `openssl rsa -RSAPublicKey_in -pubout`)",
            );
        }
        let body = text
            .split_once("-----BEGIN PUBLIC KEY-----")
            .and_then(|(_, rest)| rest.split_once("-----END PUBLIC KEY-----"))
            .map(|(body, _)| body)
            .ok_or("no PEM \"PUBLIC KEY\" block")?;
        let der = base64_decode(body).ok_or("the PEM block is not valid base64")?;
        Self::from_spki_der(&der)
    }

    /// From a DER SubjectPublicKeyInfo of an RSA-2048 key.
    pub(crate) fn from_spki_der(der: &[u8]) -> Result<Self, &'static str> {
        const NOT_SPKI: &str = "not a DER SubjectPublicKeyInfo";
        let (spki, rest) = tlv(der, 0x30).ok_or(NOT_SPKI)?;
        if !rest.is_empty() {
            return Err(NOT_SPKI);
        }
        let (algorithm, rest) = tlv(spki, 0x30).ok_or(NOT_SPKI)?;
        let (bits, rest) = tlv(rest, 0x03).ok_or(NOT_SPKI)?;
        if !rest.is_empty() {
            return Err(NOT_SPKI);
        }
        let parameters = algorithm
            .strip_prefix(&RSA_ENCRYPTION_OID[..])
            .ok_or("not an RSA key (the signed PCR policy needs RSA-2048)")?;
        if !(parameters.is_empty() || parameters == [0x05, 0x00]) {
            return Err(NOT_SPKI);
        }
        let rsa_public_key = bits.strip_prefix(&[0][..]).ok_or(NOT_SPKI)?;
        let (key, rest) = tlv(rsa_public_key, 0x30).ok_or(NOT_SPKI)?;
        let (modulus, rest_key) = tlv(key, 0x02).ok_or(NOT_SPKI)?;
        let (exponent, rest_key) = tlv(rest_key, 0x02).ok_or(NOT_SPKI)?;
        if !rest.is_empty() || !rest_key.is_empty() {
            return Err(NOT_SPKI);
        }
        let modulus = modulus.strip_prefix(&[0][..]).unwrap_or(modulus);
        if modulus.len() != RSA_BYTES || modulus[0] & 0x80 == 0 {
            return Err("not a 2048-bit RSA key (the signed PCR policy needs RSA-2048)");
        }
        let exponent = exponent.strip_prefix(&[0][..]).unwrap_or(exponent);
        if exponent.is_empty() || exponent.len() > 4 || exponent[0] == 0 {
            return Err("the RSA exponent is not one the TPM accepts");
        }
        let exponent = exponent
            .iter()
            .fold(0u32, |value, &byte| (value << 8) | u32::from(byte));
        if exponent < 3 || exponent.is_multiple_of(2) {
            return Err("the RSA exponent is not one the TPM accepts");
        }
        Ok(Self {
            modulus: modulus.to_vec(),
            exponent,
            spki_fingerprint: sha256(der).map_or(Fingerprint([0; DIGEST]), Fingerprint),
            pkfp: sha256(rsa_public_key).unwrap_or([0; DIGEST]),
        })
    }
}

/// One approved policy digest of the signature file (for the configured PCR set).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Approval {
    /// The signing key's `pkfp`.
    pub(crate) pkfp: [u8; DIGEST],
    /// The approved TPM2_PolicyPCR digest.
    pub(crate) policy: [u8; DIGEST],
    /// The RSASSA-PKCS1-v1_5 signature, as long as the key's modulus.
    pub(crate) signature: Vec<u8>,
}

impl fmt::Debug for Approval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Approval")
            .field("pkfp", &hex(&self.pkfp))
            .field("policy", &hex(&self.policy))
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct RawEntry {
    pcrs: Vec<u32>,
    pkfp: String,
    pol: String,
    sig: String,
}

/// The entries of a signature file's `sha256` bank that cover exactly `pcrs`, in file order.
/// Refuses a file that is no JSON object, whose `sha256` bank is missing or malformed, or that
/// approves nothing for `pcrs`.
pub(crate) fn parse_signatures(json: &[u8], pcrs: &PcrPolicy) -> Result<Vec<Approval>, String> {
    let document: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("not JSON ({e})"))?;
    let banks = document.as_object().ok_or("not a JSON object")?;
    let bank = banks
        .get("sha256")
        .ok_or("no \"sha256\" bank (sign with `--bank=sha256`)")?;
    let entries: Vec<RawEntry> = serde_json::from_value(bank.clone())
        .map_err(|e| format!("the \"sha256\" bank is not a list of signature entries ({e})"))?;
    let mut approvals = Vec::new();
    for (n, entry) in entries.into_iter().enumerate() {
        let bad = |what: &str| format!("sha256[{n}]: {what}");
        let mut indices = Vec::with_capacity(entry.pcrs.len());
        for &index in &entry.pcrs {
            match u8::try_from(index) {
                Ok(index) if index <= PcrPolicy::MAX_INDEX => indices.push(index),
                _ => return Err(bad(&format!("PCR {index} does not exist"))),
            }
        }
        let covered = PcrPolicy::new(indices).map_err(|e| bad(&e.to_string()))?;
        let pkfp = hex_digest(&entry.pkfp).ok_or_else(|| bad("\"pkfp\" is not 32 bytes in hex"))?;
        let policy = hex_digest(&entry.pol).ok_or_else(|| bad("\"pol\" is not 32 bytes in hex"))?;
        let signature =
            base64_decode(&entry.sig).ok_or_else(|| bad("\"sig\" is not valid base64"))?;
        if signature.is_empty() || signature.len() > 2 * RSA_BYTES {
            return Err(bad("\"sig\" is not an RSA signature"));
        }
        if covered == *pcrs {
            approvals.push(Approval {
                pkfp,
                policy,
                signature,
            });
        }
    }
    if approvals.is_empty() {
        return Err(format!("no approved policy for PCRs {pcrs}"));
    }
    Ok(approvals)
}

/// Why no approval fits the current PCR values.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NoApproval {
    /// No entry approves the digest.
    Unapproved,
    /// Entries approve it, but signed by another key (its `pkfp`).
    OtherKey([u8; DIGEST]),
}

/// The approval of `policy` by `key`.
pub(crate) fn find<'a>(
    approvals: &'a [Approval],
    key: &PolicyKey,
    policy: &[u8],
) -> Result<&'a Approval, NoApproval> {
    let mut matching = approvals.iter().filter(|a| a.policy[..] == *policy);
    let first = matching.clone().next().ok_or(NoApproval::Unapproved)?;
    matching
        .find(|a| a.pkfp == key.pkfp)
        .ok_or(NoApproval::OtherKey(first.pkfp))
}

/// The signed policy as `open` read it: the configuration, the key and the approvals. Read once
/// before the process enters its sandbox; a new signature file takes effect at the next start
/// (a new signed release means a reboot anyway).
#[derive(Debug, Clone)]
pub(crate) struct SignedPolicy {
    pub(crate) config: SignedPcrPolicy,
    pub(crate) key: PolicyKey,
    pub(crate) approvals: Vec<Approval>,
}

impl SignedPolicy {
    /// Reads and checks the public key and the signature file.
    pub(crate) fn load(config: &SignedPcrPolicy) -> Result<Self, KeyError> {
        let key_error = |reason: String| KeyError::PcrPublicKey {
            path: config.public_key().to_owned(),
            reason,
        };
        let key = read_limited(config.public_key()).map_err(key_error)?;
        let key = PolicyKey::from_pem(&key).map_err(|reason| key_error(reason.to_owned()))?;
        let signature_error = |reason: String| KeyError::PcrSignatureFile {
            path: config.signature().to_owned(),
            reason,
        };
        let json = read_limited(config.signature()).map_err(signature_error)?;
        let approvals = parse_signatures(&json, config.pcrs()).map_err(signature_error)?;
        Ok(Self {
            config: config.clone(),
            key,
            approvals,
        })
    }

    /// The record written beside the sealed secret: which PCRs, approved by which key.
    pub(crate) fn record(&self) -> String {
        format!("{} {}", self.config.pcrs(), hex(&self.key.pkfp))
    }

    /// The signature file's path.
    pub(crate) fn signature_path(&self) -> &Path {
        self.config.signature()
    }
}

fn read_limited(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("unreadable ({e})"))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("unreadable ({e})"))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(format!("larger than {MAX_FILE} bytes"));
    }
    Ok(bytes)
}

fn sha256(bytes: &[u8]) -> Option<[u8; DIGEST]> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .try_into()
        .ok()
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_digest(text: &str) -> Option<[u8; DIGEST]> {
    let text = text.as_bytes();
    if text.len() != 2 * DIGEST {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16);
    let mut out = [0; DIGEST];
    for (out, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *out = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

/// Standard base64 (RFC 4648, `+/`, `=` padding optional); ASCII whitespace is skipped (PEM
/// line breaks). `None` for any other character or a dangling final character.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let symbols: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let data = symbols
        .iter()
        .position(|&c| c == b'=')
        .map_or(&symbols[..], |end| {
            // Padding only at the end, at most two, and completing a group of four.
            &symbols[..end]
        });
    let padding = symbols.len() - data.len();
    if padding > 2
        || symbols[data.len()..].iter().any(|&c| c != b'=')
        || (padding > 0 && !symbols.len().is_multiple_of(4))
        || data.len() % 4 == 1
    {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    for group in data.chunks(4) {
        let mut bits = 0u32;
        for &c in group {
            bits = (bits << 6) | value(c)?;
        }
        bits <<= 6 * (4 - group.len() as u32);
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..group.len()]);
    }
    Some(out)
}

/// One DER TLV with tag `tag` at the start of `input`: its contents and what follows it.
/// Definite lengths up to two length bytes, minimal encoding not enforced.
fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81 => {
            let (&len, rest) = rest.split_first()?;
            (usize::from(len), rest)
        }
        0x82 => {
            let (len, rest) = rest.split_at_checked(2)?;
            (usize::from(u16::from_be_bytes([len[0], len[1]])), rest)
        }
        _ => return None,
    };
    rest.split_at_checked(len)
}

#[cfg(test)]
mod tests;
