//! Requests and self-signed certificates for a key that signs through a callback (the key
//! manager's role keys).

mod common;

use common::{RingKey, der, names, parse};
use kammer_certs::{NameError, RemoteKeyError, csr_for_remote_key, self_signed_for_remote_key};
use rcgen::PublicKeyData;

#[test]
fn remote_key_requests_are_checked() {
    let key = RingKey::generate();
    let other = RingKey::generate();
    let names = names(&["kammer.example.org"]);

    // The request verifies with the key it names (checked again by the CA in the tests above).
    let csr = csr_for_remote_key(
        &|m| key.sign(m),
        key.spki_der(),
        "kammer.example.org",
        &names,
    )
    .expect("csr");
    assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));

    // A signer holding another key is caught.
    let error =
        csr_for_remote_key(&|m| other.sign(m), key.spki_der(), "k", &names).expect_err("mismatch");
    assert!(matches!(error, RemoteKeyError::KeyMismatch), "{error}");

    // The signer's own error comes back as the source.
    let error = csr_for_remote_key(
        &|_| Err::<Vec<u8>, _>(std::io::Error::other("the TPM is gone")),
        key.spki_der(),
        "k",
        &names,
    )
    .expect_err("signer fails");
    let source = std::error::Error::source(&error)
        .expect("source")
        .to_string();
    assert_eq!(source, "the TPM is gone");

    // Only P-256 public keys; names are required and checked.
    let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("key");
    let error = csr_for_remote_key(
        &|m| key.sign(m),
        &p384.subject_public_key_info(),
        "k",
        &names,
    )
    .expect_err("P-384");
    assert!(matches!(error, RemoteKeyError::PublicKey));
    assert!(matches!(
        csr_for_remote_key(&|m| key.sign(m), &key.spki_der()[..40], "k", &names),
        Err(RemoteKeyError::PublicKey)
    ));
    assert!(matches!(
        csr_for_remote_key(&|m| key.sign(m), key.spki_der(), "k", &[]),
        Err(RemoteKeyError::Name(NameError::NoNames))
    ));
    assert!(matches!(
        csr_for_remote_key(&|m| key.sign(m), key.spki_der(), "", &names),
        Err(RemoteKeyError::Name(NameError::InvalidCommonName))
    ));

    // A self-signed certificate for the remote key.
    let pem = self_signed_for_remote_key(&|m| key.sign(m), key.spki_der(), "k", &names, 30)
        .expect("self-signed");
    let certificate_der = der(&pem);
    let certificate = parse(&certificate_der);
    assert_eq!(certificate.public_key().raw, key.spki_der());
    assert!(
        !certificate
            .basic_constraints()
            .expect("bc")
            .expect("present")
            .value
            .ca
    );
    assert!(
        certificate
            .extended_key_usage()
            .expect("eku")
            .expect("present")
            .value
            .server_auth
    );
    let signed = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        &certificate.public_key().subject_public_key.data,
    )
    .verify(
        certificate.tbs_certificate.as_ref(),
        &certificate.signature_value.data,
    );
    assert!(signed.is_ok());
    assert!(matches!(
        self_signed_for_remote_key(&|m| key.sign(m), key.spki_der(), "k", &names, 398),
        Err(RemoteKeyError::Validity { .. })
    ));
    assert!(matches!(
        self_signed_for_remote_key(&|m| other.sign(m), key.spki_der(), "k", &names, 30),
        Err(RemoteKeyError::KeyMismatch)
    ));
}

#[test]
fn a_remote_key_certifies_another_key() {
    let issuer = RingKey::generate();
    let subject = RingKey::generate();
    let der = kammer_certs::certify_with_remote_key(
        &|m| issuer.sign(m),
        issuer.spki_der(),
        "kammer media",
        subject.spki_der(),
        "kammer dtls",
        30,
    )
    .expect("certificate");
    let certificate = parse(&der);
    assert_eq!(
        certificate.public_key().raw,
        subject.spki_der(),
        "the certificate names the subject key"
    );
    assert_eq!(certificate.issuer().to_string(), "CN=kammer media");
    assert_eq!(certificate.subject().to_string(), "CN=kammer dtls");
    let issuer_point = &issuer.spki_der()[26..];
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, issuer_point)
        .verify(
            certificate.tbs_certificate.as_ref(),
            &certificate.signature_value.data,
        )
        .expect("signed by the issuer key");
    // A signer with another key than the issuer's is caught.
    let error = kammer_certs::certify_with_remote_key(
        &|m| subject.sign(m),
        issuer.spki_der(),
        "kammer media",
        subject.spki_der(),
        "kammer dtls",
        30,
    )
    .expect_err("mismatch");
    assert!(matches!(error, RemoteKeyError::KeyMismatch), "{error}");
}
