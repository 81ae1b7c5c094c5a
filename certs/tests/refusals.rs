//! What the offline CA refuses: bad or foreign requests, names and validities it must not
//! certify, overwriting a CA, a CA directory that does not fit together.

mod common;

use std::fs;

use common::{RingKey, der, options, pem, refusal};
use kammer_certs::{
    CaError, CaOptions, IssueOptions, KeyKind, NameError, Names, OfflineCa, RequestError,
};
use rcgen::{PublicKeyData, SigningKey};

/// Generated once with `openssl req -new -newkey rsa:2048 -nodes -subj /CN=rsa.example.org
/// -addext subjectAltName=DNS:rsa.example.org` (rcgen cannot make RSA keys with ring).
const RSA_CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----
MIICjDCCAXQCAQAwGjEYMBYGA1UEAwwPcnNhLmV4YW1wbGUub3JnMIIBIjANBgkq
hkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAh55uqGVkMx62UUKYkRwI4htLgip7QXCu
ShcmPp0+FU6OLVIFyLOsNdBrMpVWco952xNczFcE2AgmIxxMlMCuUA43YrmaUs+M
yYfLhdREoMOftPC9Ehej//PbNcG+qbhe1G10bKsZGlvAw1/GFBGaB9e4Z8QguQWN
uh9l8EY40l0u+7SygOdFEpkQb7+0j4KuOr7tTdCYx9aRmu7OPaL9iJmJx9XHI7nt
PtTc/77w4ZOtwgXMoEkf0g/m4YQe48XpWWBre4U2Knxghgthn3kKl6yodJxIgl6g
NceBv3L1RXYOXeNZCmjYDOR7/bNWkzVNw0Id8HNrR+sHPfMaPSxRsQIDAQABoC0w
KwYJKoZIhvcNAQkOMR4wHDAaBgNVHREEEzARgg9yc2EuZXhhbXBsZS5vcmcwDQYJ
KoZIhvcNAQELBQADggEBAFmDe1hidhDHmJv2/kze4OB7PzSmeUIFqbIKRmuo4p5U
U2b9z/daYtq4bFNrOO54HhQMuK3EjCMDdUtmsIQ+ijxR+tZUVxrW13X+VzWJC6rx
nnKiEVEMQWWPNXpCd84jQKQ+JJ1TdzLfC5jdCGeTC2H/x9H9g0kKBPQIWEPZtY+s
kgXOR04yqfJAeflXoH/YJuNSCoyzxNO4fmNoMJFoBtoEsbyTnOBZPCjsAwqPEQ1R
p+W48foBN9r5VCnUx0pLIXm6giH8DT0dO4ePkFkEo3zzAD1RH6D1TDSkhXUsngwt
ePMdpUpfKINgWZ9uWmbKyy5p3MT0QZwWNBP2pGu9iZc=
-----END CERTIFICATE REQUEST-----
";

/// Shows one key's public key and signs with another: a request whose signature is wrong.
struct Mismatched {
    shown: rcgen::KeyPair,
    signs: rcgen::KeyPair,
}

impl PublicKeyData for Mismatched {
    fn der_bytes(&self) -> &[u8] {
        self.shown.der_bytes()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.shown.algorithm()
    }
}

impl SigningKey for Mismatched {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.signs.sign(message)
    }
}

fn request(params: &rcgen::CertificateParams, key: &impl SigningKey) -> String {
    params
        .serialize_request(key)
        .expect("csr")
        .pem()
        .expect("pem")
}

#[test]
fn requests_that_are_refused() {
    let temp = tempfile::tempdir().expect("temp dir");
    let ca = OfflineCa::create(temp.path(), &options()).expect("create");
    let p256 = || rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let params = |names: &[&str]| {
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .expect("params")
    };

    // A signature that does not match the request's key.
    let mismatched = Mismatched {
        shown: p256(),
        signs: p256(),
    };
    let error = refusal(&ca, &request(&params(&["a.example.org"]), &mismatched));
    assert!(
        matches!(error, CaError::Request(RequestError::BadSignature)),
        "{error}"
    );
    println!("bad signature: {error}");

    // A request altered after signing (one byte of the subject's name).
    let good = request(&params(&["a.example.org"]), &p256());
    let mut altered = der(&good);
    let at = altered
        .windows(13)
        .position(|w| w == b"a.example.org")
        .expect("name in DER");
    altered[at] = b'b';
    let altered = pem("CERTIFICATE REQUEST", &altered);
    assert!(matches!(
        refusal(&ca, &altered),
        CaError::Request(RequestError::BadSignature)
    ));

    // RSA and Ed25519 keys.
    let error = refusal(&ca, RSA_CSR);
    assert!(
        matches!(
            error,
            CaError::Request(RequestError::UnsupportedKey(KeyKind::Rsa))
        ),
        "{error}"
    );
    println!("RSA: {error}");
    let ed25519 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
    let error = refusal(&ca, &request(&params(&["a.example.org"]), &ed25519));
    assert!(matches!(
        error,
        CaError::Request(RequestError::UnsupportedKey(KeyKind::Ed25519))
    ));

    // Not a request at all.
    assert!(matches!(
        refusal(&ca, "hello"),
        CaError::Request(RequestError::NotPem)
    ));
    assert!(matches!(
        refusal(&ca, ca.certificate_pem()),
        CaError::Request(RequestError::NotPem)
    ));
    let garbage = pem("CERTIFICATE REQUEST", b"\x30\x03\x02\x01\x00");
    assert!(matches!(
        refusal(&ca, &garbage),
        CaError::Request(RequestError::Malformed)
    ));

    // A request for a CA certificate.
    let mut ca_request = params(&["a.example.org"]);
    ca_request.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    assert!(matches!(
        refusal(&ca, &request(&ca_request, &p256())),
        CaError::Request(RequestError::AsksForCa)
    ));

    // Names a server certificate does not carry, or that are malformed.
    let mut email = params(&["a.example.org"]);
    email.subject_alt_names.push(rcgen::SanType::Rfc822Name(
        "ops@example.org".try_into().expect("ia5"),
    ));
    assert!(matches!(
        refusal(&ca, &request(&email, &p256())),
        CaError::Request(RequestError::UnsupportedName(_))
    ));
    let error = refusal(&ca, &request(&params(&["*.example.org"]), &p256()));
    assert!(
        matches!(
            error,
            CaError::Request(RequestError::Name(NameError::InvalidDnsName { .. }))
        ),
        "{error}"
    );
    println!("wildcard: {error}");

    // Names outside the CA's name constraints.
    for outside in ["example.com", "evilexample.org", "192.168.1.1", "fd00::1"] {
        let error = refusal(&ca, &RingKey::generate().csr("x", &[outside]));
        assert!(
            matches!(error, CaError::NotPermitted(_)),
            "{outside}: {error}"
        );
    }

    // Validity.
    let csr = RingKey::generate().csr("a.example.org", &["a.example.org"]);
    for days in [0, 398, 5000] {
        let error = ca
            .issue_from_csr(
                &csr,
                &IssueOptions {
                    validity_days: days,
                    names: Names::FromRequest,
                },
            )
            .expect_err("validity");
        assert!(
            matches!(error, CaError::Validity { max: 397, .. }),
            "{error}"
        );
    }
    println!(
        "validity: {}",
        CaError::Validity {
            what: "server certificate",
            days: 398,
            max: 397
        }
    );

    // Nothing was recorded for any refusal.
    assert!(ca.list().expect("list").is_empty());
    assert_eq!(
        fs::read_dir(temp.path().join("issued"))
            .expect("issued")
            .count(),
        0
    );
}

#[test]
fn a_certificate_never_outlives_its_ca() {
    let temp = tempfile::tempdir().expect("temp dir");
    let ca = OfflineCa::create(
        temp.path(),
        &CaOptions {
            validity_days: 30,
            ..options()
        },
    )
    .expect("create");
    let csr = RingKey::generate().csr("a.example.org", &["a.example.org"]);
    let error = ca
        .issue_from_csr(&csr, &IssueOptions::default())
        .expect_err("too long");
    assert!(matches!(error, CaError::OutlivesCa { .. }), "{error}");
    println!("outlives: {error}");
    ca.issue_from_csr(
        &csr,
        &IssueOptions {
            validity_days: 29,
            names: Names::FromRequest,
        },
    )
    .expect("fits");
}

#[test]
fn an_existing_ca_is_never_overwritten() {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path();
    OfflineCa::create(dir, &options()).expect("create");
    let key = fs::read(dir.join("ca.key")).expect("key");
    let certificate = fs::read(dir.join("ca.pem")).expect("certificate");

    let error = OfflineCa::create(dir, &options()).expect_err("second create");
    assert!(
        matches!(
            error,
            CaError::Exists {
                found: "ca.key",
                ..
            }
        ),
        "{error}"
    );
    println!("exists: {error}");
    assert_eq!(fs::read(dir.join("ca.key")).expect("key"), key);
    assert_eq!(
        fs::read(dir.join("ca.pem")).expect("certificate"),
        certificate
    );

    // Also when only part of a CA is left.
    fs::remove_file(dir.join("ca.key")).expect("rm");
    assert!(matches!(
        OfflineCa::create(dir, &options()),
        Err(CaError::Exists {
            found: "ca.pem",
            ..
        })
    ));
    assert!(matches!(
        OfflineCa::open(dir),
        Err(CaError::Incomplete {
            missing: "ca.key",
            ..
        })
    ));

    // A directory holding something else that looks like a CA (the development PKI) is left
    // as it was.
    let dev = tempfile::tempdir().expect("temp dir");
    kammer_certs::ensure_dev_pki(dev.path()).expect("dev pki");
    assert!(matches!(
        OfflineCa::create(dev.path(), &options()),
        Err(CaError::Exists { .. })
    ));
    assert!(!dev.path().join("lock").exists());
}

#[test]
fn open_checks_the_directory() {
    let temp = tempfile::tempdir().expect("temp dir");
    let error = OfflineCa::open(temp.path()).expect_err("empty");
    assert!(matches!(error, CaError::NoCa { .. }), "{error}");

    let one = temp.path().join("one");
    let two = temp.path().join("two");
    OfflineCa::create(&one, &options()).expect("one");
    OfflineCa::create(&two, &options()).expect("two");

    // Another CA's key.
    let own_key = fs::read(one.join("ca.key")).expect("key");
    fs::remove_file(one.join("ca.key")).expect("rm");
    fs::copy(two.join("ca.key"), one.join("ca.key")).expect("copy");
    assert!(matches!(
        OfflineCa::open(&one),
        Err(CaError::KeyMismatch { .. })
    ));
    fs::write(one.join("ca.key"), own_key).expect("restore");
    OfflineCa::open(&one).expect("restored");

    // A damaged index.
    fs::write(one.join("index.json"), "{").expect("damage");
    let error = OfflineCa::open(&one).expect_err("damaged index");
    assert!(matches!(error, CaError::Index { .. }), "{error}");
    println!("index: {error}");
}

#[test]
fn options_are_checked_on_create() {
    let temp = tempfile::tempdir().expect("temp dir");
    for (options, what) in [
        (
            CaOptions {
                validity_days: 0,
                ..options()
            },
            "validity 0",
        ),
        (
            CaOptions {
                validity_days: 7306,
                ..options()
            },
            "validity too long",
        ),
        (
            CaOptions {
                common_name: String::new(),
                ..options()
            },
            "empty CN",
        ),
        (
            CaOptions {
                common_name: "x".repeat(65),
                ..options()
            },
            "long CN",
        ),
        (
            CaOptions {
                organization: Some("a\nb".into()),
                ..options()
            },
            "control character",
        ),
    ] {
        assert!(OfflineCa::create(temp.path(), &options).is_err(), "{what}");
    }
    assert!(!temp.path().join("ca.key").exists());
    assert!(OfflineCa::create(temp.path(), &CaOptions::new("Minimal CA")).is_ok());
}
