//! Helpers shared by the offline CA tests: software P-256 keys (ring) that sign through the
//! remote-key callback, PEM decoding, signature checks.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kammer_certs::{CaError, CaOptions, IssueOptions, OfflineCa, SubjectName, csr_for_remote_key};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};
use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;

/// The first 26 bytes of every P-256 SubjectPublicKeyInfo with an uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// A P-256 key in this process, standing in for a key in the key manager.
pub struct RingKey {
    pair: EcdsaKeyPair,
    spki: Vec<u8>,
    rng: SystemRandom,
}

impl RingKey {
    pub fn generate() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("key generation");
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .expect("key");
        let mut spki = P256_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(pair.public_key().as_ref());
        Self { pair, spki, rng }
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// ECDSA P-256 over SHA-256 of `message`, DER: what `KeyManager::sign` returns.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ring::error::Unspecified> {
        Ok(self.pair.sign(&self.rng, message)?.as_ref().to_vec())
    }

    /// A certificate request for this key, built through the remote-key callback.
    pub fn csr(&self, common_name: &str, names: &[&str]) -> String {
        let names: Vec<SubjectName> = names.iter().map(|n| n.parse().expect("name")).collect();
        csr_for_remote_key(
            &|message| self.sign(message),
            &self.spki,
            common_name,
            &names,
        )
        .expect("certificate request")
    }
}

/// The DER inside the first PEM block of `pem`.
pub fn der(pem: &str) -> Vec<u8> {
    x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .expect("PEM")
        .1
        .contents
}

/// Checks `certificate`'s signature with `issuer`'s ECDSA P-384 key (SHA-384), with ring.
pub fn signed_by_p384(certificate: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    verify_p384(
        issuer,
        certificate.tbs_certificate.as_ref(),
        &certificate.signature_value.data,
    )
}

/// Checks a signature over `message` with `issuer`'s ECDSA P-384 key (SHA-384), with ring.
pub fn verify_p384(issuer: &X509Certificate<'_>, message: &[u8], signature: &[u8]) -> bool {
    signature::UnparsedPublicKey::new(
        &signature::ECDSA_P384_SHA384_ASN1,
        &issuer.public_key().subject_public_key.data,
    )
    .verify(message, signature)
    .is_ok()
}

/// The CA most tests use: constrained to `example.org` and `10.20.0.0/16`.
pub fn options() -> CaOptions {
    CaOptions {
        common_name: "Kammer Test CA".to_owned(),
        organization: Some("Kammer test".to_owned()),
        validity_days: 3650,
        name_constraints: vec![
            "example.org".parse().expect("dns"),
            "10.20.0.0/16".parse().expect("net"),
        ],
    }
}

pub fn names(names: &[&str]) -> Vec<SubjectName> {
    names.iter().map(|n| n.parse().expect("name")).collect()
}

pub fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, certificate) = x509_parser::parse_x509_certificate(der).expect("certificate");
    assert!(rest.is_empty());
    certificate
}

pub fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

pub fn subject_key_id(certificate: &X509Certificate<'_>) -> Vec<u8> {
    certificate
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        })
        .expect("subjectKeyIdentifier")
}

pub fn authority_key_id(extensions: &[x509_parser::extensions::X509Extension<'_>]) -> Vec<u8> {
    extensions
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|id| id.0.to_vec())
            }
            _ => None,
        })
        .expect("authorityKeyIdentifier")
}

/// Verifies `leaf` for server authentication up to `ca` with rustls-webpki, optionally with
/// `crl` (PEM) for revocation.
pub fn webpki_verify(
    ca_pem: &str,
    leaf_pem: &str,
    crl_pem: Option<&str>,
) -> Result<(), webpki::Error> {
    let ca_der = CertificateDer::from(der(ca_pem));
    let anchor = webpki::anchor_from_trusted_cert(&ca_der).expect("trust anchor");
    let leaf_der = CertificateDer::from(der(leaf_pem));
    let leaf = webpki::EndEntityCert::try_from(&leaf_der).expect("end entity");
    let crl_der = crl_pem.map(der);
    let crl = crl_der.as_ref().map(|der| {
        webpki::CertRevocationList::from(
            webpki::BorrowedCertRevocationList::from_der(der).expect("CRL"),
        )
    });
    let crls: Vec<&webpki::CertRevocationList<'_>> = crl.iter().collect();
    let revocation = (!crls.is_empty()).then(|| {
        webpki::RevocationOptionsBuilder::new(&crls)
            .expect("CRLs")
            .with_expiration_policy(webpki::ExpirationPolicy::Enforce)
            .build()
    });
    leaf.verify_for_usage(
        &[
            webpki::ring::ECDSA_P256_SHA256,
            webpki::ring::ECDSA_P256_SHA384,
            webpki::ring::ECDSA_P384_SHA256,
            webpki::ring::ECDSA_P384_SHA384,
        ],
        &[anchor],
        &[],
        UnixTime::now(),
        webpki::KeyUsage::server_auth(),
        revocation,
        None,
    )
    .map(|_| ())
}

/// PEM-encodes `der` (for requests built or altered by hand).
pub fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut base64 = String::new();
    for chunk in der.chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let value = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                base64.push(char::from(ALPHABET[(value >> (18 - 6 * i) & 63) as usize]));
            } else {
                base64.push('=');
            }
        }
    }
    let lines: Vec<&str> = base64
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).expect("ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// The error `ca` refuses `csr` with (default options).
pub fn refusal(ca: &OfflineCa, csr: &str) -> CaError {
    ca.issue_from_csr(csr, &IssueOptions::default())
        .expect_err("must be refused")
}
