//! Certificate signing requests (PKCS #10) as the offline CA accepts them.
//!
//! A request is accepted only as a [`VerifiedRequest`], which only [`VerifiedRequest::parse`]
//! creates, and only after the request's own signature has verified: the CA cannot certify a
//! key whose holder has not proven possession of it.

use std::fmt;

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_PKCS1_RSASSAPSS, OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ED448,
    OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

use crate::names::{NameError, SubjectName};

/// The PEM labels of a certificate request (the second is an old Netscape/Microsoft form).
const REQUEST_LABELS: [&str; 2] = ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"];
/// Larger inputs are not certificate requests of a server.
const MAX_REQUEST_PEM: usize = 64 * 1024;

/// The kind of a public key that the CA does not certify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA (PKCS #1 or RSASSA-PSS).
    Rsa,
    /// Ed25519.
    Ed25519,
    /// Ed448.
    Ed448,
    /// An elliptic curve other than P-256 and P-384.
    OtherCurve,
    /// Any other algorithm.
    Other,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rsa => "an RSA key",
            Self::Ed25519 => "an Ed25519 key",
            Self::Ed448 => "an Ed448 key",
            Self::OtherCurve => "an ECDSA key on a curve other than P-256 and P-384",
            Self::Other => "a key of an unknown algorithm",
        })
    }
}

/// Why a certificate request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The input is not PEM with a `CERTIFICATE REQUEST` label.
    #[error("not a PEM certificate request (expected -----BEGIN CERTIFICATE REQUEST-----)")]
    NotPem,
    /// The DER inside does not parse as a PKCS #10 request.
    #[error("the certificate request is malformed")]
    Malformed,
    /// The request's key is not ECDSA P-256 or P-384.
    #[error("the request holds {0}; only ECDSA P-256 and P-384 keys are certified")]
    UnsupportedKey(KeyKind),
    /// The request's public key is not an uncompressed point on its curve.
    #[error("the request's ECDSA public key is not an uncompressed curve point")]
    MalformedKey,
    /// Signed with something other than ECDSA with SHA-256 or SHA-384.
    #[error("the request is signed with an algorithm other than ECDSA with SHA-256 or SHA-384")]
    UnsupportedSignature,
    /// The signature does not verify with the request's key.
    #[error("the request's signature does not verify: it was altered or not signed by its own key")]
    BadSignature,
    /// The request asks for a CA certificate (basicConstraints cA TRUE).
    #[error("the request asks for a CA certificate; this CA issues server certificates only")]
    AsksForCa,
    /// A subject alternative name that is neither a DNS name nor an IP address.
    #[error("the request asks for {0}; only DNS names and IP addresses are certified")]
    UnsupportedName(&'static str),
    /// A subject alternative name extension that does not parse.
    #[error("the request's subject alternative names are malformed")]
    MalformedNames,
    /// A requested name that is not usable.
    #[error(transparent)]
    Name(#[from] NameError),
}

/// The curve of an accepted key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
}

/// A certificate request whose signature has been verified with its own ECDSA P-256 or P-384
/// key.
#[derive(Debug)]
pub(crate) struct VerifiedRequest {
    /// The DER SubjectPublicKeyInfo of the key to certify.
    pub(crate) spki_der: Vec<u8>,
    /// The subject's common name, if the request has one.
    pub(crate) common_name: Option<String>,
    /// The DNS names and IP addresses of its subject alternative names, unsorted.
    pub(crate) names: Vec<SubjectName>,
}

impl VerifiedRequest {
    /// Parses a PEM request, checks its key and verifies its signature.
    pub(crate) fn parse(pem: &str) -> Result<Self, RequestError> {
        if pem.len() > MAX_REQUEST_PEM {
            return Err(RequestError::NotPem);
        }
        let (_, block) =
            x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|_| RequestError::NotPem)?;
        if !REQUEST_LABELS.contains(&block.label.as_str()) {
            return Err(RequestError::NotPem);
        }
        let (rest, request) = X509CertificationRequest::from_der(&block.contents)
            .map_err(|_| RequestError::Malformed)?;
        if !rest.is_empty() {
            return Err(RequestError::Malformed);
        }
        let info = &request.certification_request_info;
        verify_ecdsa(
            &info.subject_pki,
            &request.signature_algorithm,
            info.raw,
            &request.signature_value.data,
        )?;

        let mut names = Vec::new();
        for extension in request.requested_extensions().into_iter().flatten() {
            match extension {
                ParsedExtension::BasicConstraints(constraints) if constraints.ca => {
                    return Err(RequestError::AsksForCa);
                }
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        names.push(subject_name(name)?);
                    }
                }
                ParsedExtension::ParseError { .. } => return Err(RequestError::Malformed),
                // Key usages, extended key usages and anything else the requester asks for
                // are the CA's decision, not the requester's: they are ignored.
                _ => {}
            }
        }
        let common_name = info
            .subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        Ok(Self {
            spki_der: info.subject_pki.raw.to_vec(),
            common_name,
            names,
        })
    }
}

fn subject_name(name: &GeneralName<'_>) -> Result<SubjectName, RequestError> {
    match name {
        GeneralName::DNSName(dns) => Ok(dns.parse()?),
        GeneralName::IPAddress(bytes) => {
            let address = match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes).map(std::net::IpAddr::from),
                16 => <[u8; 16]>::try_from(*bytes).map(std::net::IpAddr::from),
                _ => return Err(RequestError::MalformedNames),
            }
            .map_err(|_| RequestError::MalformedNames)?;
            Ok(SubjectName::ip(address)?)
        }
        GeneralName::RFC822Name(_) => Err(RequestError::UnsupportedName("an e-mail address")),
        GeneralName::URI(_) => Err(RequestError::UnsupportedName("a URI")),
        GeneralName::DirectoryName(_) => Err(RequestError::UnsupportedName("a directory name")),
        GeneralName::OtherName(..) => Err(RequestError::UnsupportedName("an otherName")),
        GeneralName::RegisteredID(_) => Err(RequestError::UnsupportedName("a registered ID")),
        GeneralName::X400Address(_) | GeneralName::EDIPartyName(_) => {
            Err(RequestError::UnsupportedName("an X.400 or EDI party name"))
        }
        GeneralName::Invalid(..) => Err(RequestError::MalformedNames),
    }
}

/// The curve of an ECDSA P-256 or P-384 public key with an uncompressed point; every other key
/// is refused, naming its kind.
pub(crate) fn curve_of(spki: &SubjectPublicKeyInfo<'_>) -> Result<Curve, RequestError> {
    let algorithm = &spki.algorithm.algorithm;
    if *algorithm == OID_PKCS1_RSAENCRYPTION || *algorithm == OID_PKCS1_RSASSAPSS {
        return Err(RequestError::UnsupportedKey(KeyKind::Rsa));
    }
    if *algorithm == OID_SIG_ED25519 {
        return Err(RequestError::UnsupportedKey(KeyKind::Ed25519));
    }
    if *algorithm == OID_SIG_ED448 {
        return Err(RequestError::UnsupportedKey(KeyKind::Ed448));
    }
    if *algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY {
        return Err(RequestError::UnsupportedKey(KeyKind::Other));
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|parameters| parameters.as_oid().ok());
    let (curve, coordinate) = match curve {
        Some(oid) if oid == OID_EC_P256 => (Curve::P256, 32),
        Some(oid) if oid == OID_NIST_EC_P384 => (Curve::P384, 48),
        _ => return Err(RequestError::UnsupportedKey(KeyKind::OtherCurve)),
    };
    let point = &spki.subject_public_key.data;
    if point.len() != 1 + 2 * coordinate || point.first() != Some(&0x04) {
        return Err(RequestError::MalformedKey);
    }
    Ok(curve)
}

/// Verifies an ECDSA signature (DER `Ecdsa-Sig-Value`) over `message` with `spki`'s key.
pub(crate) fn verify_ecdsa(
    spki: &SubjectPublicKeyInfo<'_>,
    signature_algorithm: &AlgorithmIdentifier<'_>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), RequestError> {
    use ring::signature;

    let curve = curve_of(spki)?;
    let sha384 = if signature_algorithm.algorithm == OID_SIG_ECDSA_WITH_SHA256 {
        false
    } else if signature_algorithm.algorithm == OID_SIG_ECDSA_WITH_SHA384 {
        true
    } else {
        return Err(RequestError::UnsupportedSignature);
    };
    let algorithm = match (curve, sha384) {
        (Curve::P256, false) => &signature::ECDSA_P256_SHA256_ASN1,
        (Curve::P256, true) => &signature::ECDSA_P256_SHA384_ASN1,
        (Curve::P384, false) => &signature::ECDSA_P384_SHA256_ASN1,
        (Curve::P384, true) => &signature::ECDSA_P384_SHA384_ASN1,
    };
    signature::UnparsedPublicKey::new(algorithm, &spki.subject_public_key.data)
        .verify(message, signature)
        .map_err(|_| RequestError::BadSignature)
}
