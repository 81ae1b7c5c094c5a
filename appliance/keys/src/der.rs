//! The few DER structures the key manager writes: a P-256 SubjectPublicKeyInfo and an ECDSA
//! signature. Both have fixed shapes, so they are written by hand rather than through an ASN.1
//! library.

use std::fmt;

/// `SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (0 unused bits) ...`: the
/// first 26 bytes of every P-256 SubjectPublicKeyInfo with an uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, // SEQUENCE, 89 bytes
    0x30, 0x13, // SEQUENCE, 19 bytes
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, // 1.2.840.10045.2.1 id-ecPublicKey
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, // 1.2.840.10045.3.1.7 P-256
    0x03, 0x42, 0x00, // BIT STRING, 66 bytes, no unused bits
];
const COORDINATE: usize = 32;
const POINT: usize = 1 + 2 * COORDINATE;
const SPKI: usize = P256_SPKI_PREFIX.len() + POINT;

/// An ECDSA P-256 public key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    spki: [u8; SPKI],
}

impl PublicKey {
    /// From the affine coordinates, big-endian (shorter ones are left-padded with zeros).
    pub(crate) fn from_coordinates(x: &[u8], y: &[u8]) -> Option<Self> {
        if x.len() > COORDINATE || y.len() > COORDINATE {
            return None;
        }
        let mut spki = [0; SPKI];
        spki[..P256_SPKI_PREFIX.len()].copy_from_slice(&P256_SPKI_PREFIX);
        let point = &mut spki[P256_SPKI_PREFIX.len()..];
        point[0] = 0x04;
        point[1 + COORDINATE - x.len()..1 + COORDINATE].copy_from_slice(x);
        point[POINT - y.len()..].copy_from_slice(y);
        Some(Self { spki })
    }

    /// From an uncompressed point `04 || x || y`.
    pub(crate) fn from_point(point: &[u8]) -> Option<Self> {
        match point {
            [0x04, rest @ ..] if rest.len() == 2 * COORDINATE => {
                Self::from_coordinates(&rest[..COORDINATE], &rest[COORDINATE..])
            }
            _ => None,
        }
    }

    /// From a DER SubjectPublicKeyInfo (P-256, uncompressed point only).
    pub fn from_spki_der(der: &[u8]) -> Option<Self> {
        let point = der.strip_prefix(&P256_SPKI_PREFIX[..])?;
        Self::from_point(point)
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The uncompressed point `04 || x || y` (what ring's `UnparsedPublicKey` and rcgen's
    /// `PublicKeyData::der_bytes` expect).
    pub fn point(&self) -> &[u8] {
        &self.spki[P256_SPKI_PREFIX.len()..]
    }

    /// SHA-256 of the DER SubjectPublicKeyInfo.
    pub fn fingerprint(&self) -> Fingerprint {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.spki);
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest.as_ref());
        Fingerprint(bytes)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(P-256, {})", self.fingerprint())
    }
}

/// The SHA-256 fingerprint of a public key's DER SubjectPublicKeyInfo (the same value as a
/// `pin-sha256` of RFC 7469, here printed in hex).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` from big-endian scalars of at most
/// 32 bytes each (what the TPM returns).
pub(crate) fn ecdsa_signature(r: &[u8], s: &[u8]) -> Option<Vec<u8>> {
    if r.len() > COORDINATE || s.len() > COORDINATE {
        return None;
    }
    let (r, s) = (integer(r), integer(s));
    let body = r.len() + s.len();
    let mut der = Vec::with_capacity(2 + body);
    // At most 2 × 35 bytes: the short length form always fits.
    der.extend_from_slice(&[0x30, u8::try_from(body).ok()?]);
    der.extend_from_slice(&r);
    der.extend_from_slice(&s);
    Some(der)
}

/// A DER INTEGER holding the unsigned big-endian `value` (at most 32 bytes).
fn integer(value: &[u8]) -> Vec<u8> {
    let first = value.iter().position(|&b| b != 0).unwrap_or(value.len());
    let digits = if first == value.len() {
        &[0][..]
    } else {
        &value[first..]
    };
    let pad = usize::from(digits[0] & 0x80 != 0);
    let mut out = Vec::with_capacity(2 + pad + digits.len());
    out.push(0x02);
    // digits.len() ≤ 32, so the length is a single byte.
    out.push((pad + digits.len()) as u8);
    if pad == 1 {
        out.push(0);
    }
    out.extend_from_slice(digits);
    out
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{self, EcdsaKeyPair, KeyPair};

    use super::*;

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(integer(&[0, 0, 1]), [2, 1, 1]);
        assert_eq!(integer(&[0x80]), [2, 2, 0, 0x80]);
        assert_eq!(integer(&[0, 0]), [2, 1, 0]);
        assert_eq!(integer(&[]), [2, 1, 0]);
        assert_eq!(integer(&[0x7f, 0xff]), [2, 2, 0x7f, 0xff]);
    }

    #[test]
    fn spki_matches_ring_and_round_trips() {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("generate");
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("parse");
        let key = PublicKey::from_point(pair.public_key().as_ref()).expect("point");
        assert_eq!(key.point(), pair.public_key().as_ref());
        assert_eq!(PublicKey::from_spki_der(key.spki_der()), Some(key.clone()));
        // The PKCS#8 document embeds the same point; the SPKI prefix is the standard one.
        assert!(pkcs8.as_ref().windows(POINT).any(|w| w == key.point()));

        // A fixed-size (r || s) signature re-encoded as DER verifies with ring's ASN.1 verifier.
        let message = b"kammer";
        let fixed = pair.sign(&rng, message).expect("sign");
        let (r, s) = fixed.as_ref().split_at(32);
        let der = ecdsa_signature(r, s).expect("encode");
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, key.point())
            .verify(message, &der)
            .expect("verifies");
    }

    #[test]
    fn short_coordinates_are_padded() {
        let key = PublicKey::from_coordinates(&[1], &[2; 31]).expect("key");
        assert_eq!(&key.point()[..33], &[&[4][..], &[0; 31], &[1]].concat()[..]);
        assert_eq!(key.point()[33], 0);
        assert!(PublicKey::from_coordinates(&[1; 33], &[1]).is_none());
        assert!(PublicKey::from_point(&[4; 64]).is_none());
    }

    #[test]
    fn fingerprint_prints_as_hex() {
        let text = Fingerprint([0xab; 32]).to_string();
        assert_eq!(text.len(), 7 + 64);
        assert!(text.starts_with("sha256:abab"));
    }
}
