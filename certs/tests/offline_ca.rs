//! The offline CA end to end: create, issue from requests built through the remote-key
//! callback, check every certificate field and the chain (x509-parser + ring, and
//! rustls-webpki), revoke, CRLs; name constraints; concurrent use.

mod common;

use std::fs;

use common::{
    RingKey, authority_key_id, der, mode, names, options, parse, refusal, signed_by_p384,
    subject_key_id, verify_p384, webpki_verify,
};
use kammer_certs::{
    CaError, CaOptions, CertificateStatus, IssueOptions, Names, OfflineCa, PermittedName,
    RevocationReason, Serial, SubjectName,
};
use rcgen::PublicKeyData;
use rustls_pki_types::{CertificateDer, ServerName};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;
use x509_parser::num_bigint::BigUint;
use x509_parser::oid_registry::{OID_NIST_EC_P384, OID_SIG_ECDSA_WITH_SHA384};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

#[test]
fn create_issue_revoke_and_publish_crls() {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path().join("ca");
    let ca = OfflineCa::create(&dir, &options()).expect("create");

    // The directory and its files.
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("ca.key")), 0o600);
    assert!(dir.join("issued").is_dir());
    assert!(
        fs::read_to_string(dir.join("index.json"))
            .expect("index")
            .contains("kammer-offline-ca/1")
    );
    assert_eq!(
        fs::read_to_string(dir.join("ca.pem")).expect("ca.pem"),
        ca.certificate_pem()
    );
    assert_eq!(ca.certificate_fingerprint().len(), 64);

    // The CA certificate.
    let ca_der = der(ca.certificate_pem());
    let ca_cert = parse(&ca_der);
    assert_eq!(
        ca_cert.subject().to_string(),
        "O=Kammer test, CN=Kammer Test CA"
    );
    assert_eq!(ca_cert.issuer(), ca_cert.subject());
    assert_eq!(
        ca_cert.signature_algorithm.algorithm,
        OID_SIG_ECDSA_WITH_SHA384
    );
    let curve = ca_cert
        .public_key()
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok());
    assert_eq!(curve, Some(OID_NIST_EC_P384));
    assert!(signed_by_p384(&ca_cert, &ca_cert), "self-signature");
    let constraints = ca_cert.basic_constraints().expect("bc").expect("present");
    assert!(constraints.critical && constraints.value.ca);
    assert_eq!(constraints.value.path_len_constraint, Some(0));
    let usage = ca_cert.key_usage().expect("ku").expect("present");
    assert!(usage.critical && usage.value.key_cert_sign() && usage.value.crl_sign());
    assert!(!usage.value.digital_signature());
    let ca_key_id = subject_key_id(&ca_cert);
    let name_constraints = ca_cert.name_constraints().expect("nc").expect("present");
    assert!(name_constraints.critical);
    let permitted = name_constraints
        .value
        .permitted_subtrees
        .as_ref()
        .expect("permitted");
    assert_eq!(permitted.len(), 2);
    assert!(matches!(
        permitted[0].base,
        GeneralName::DNSName("example.org")
    ));
    assert!(matches!(
        permitted[1].base,
        GeneralName::IPAddress([10, 20, 0, 0, 255, 255, 0, 0])
    ));
    assert!(name_constraints.value.excluded_subtrees.is_none());
    let ca_days = (ca.not_after() - OffsetDateTime::now_utc()).whole_days();
    assert!((3649..=3650).contains(&ca_days), "{ca_days}");

    // A first certificate, for a key that signs through the remote-key callback.
    let first_key = RingKey::generate();
    let first_csr = first_key.csr("kammer.example.org", &["kammer.example.org", "10.20.0.5"]);
    let first = ca
        .issue_from_csr(&first_csr, &IssueOptions::default())
        .expect("issue");
    assert_eq!(first.names, names(&["kammer.example.org", "10.20.0.5"]));
    assert_eq!(fs::read_to_string(&first.path).expect("copy"), first.pem);
    assert_eq!(
        first.path,
        dir.join("issued").join(format!("{}.pem", first.serial))
    );

    let leaf_der = der(&first.pem);
    let leaf = parse(&leaf_der);
    assert_eq!(leaf.subject().to_string(), "CN=kammer.example.org");
    assert_eq!(leaf.issuer(), ca_cert.subject());
    assert_eq!(leaf.raw_serial(), first.serial.as_bytes());
    assert_eq!(leaf.public_key().raw, first_key.spki_der());
    assert_eq!(
        leaf.signature_algorithm.algorithm,
        OID_SIG_ECDSA_WITH_SHA384
    );
    assert!(signed_by_p384(&leaf, &ca_cert), "signed by the CA key");
    assert!(!signed_by_p384(&ca_cert, &leaf) && !signed_by_p384(&leaf, &leaf));
    let san = leaf
        .subject_alternative_name()
        .expect("san")
        .expect("present");
    assert_eq!(
        san.value.general_names,
        vec![
            GeneralName::DNSName("kammer.example.org"),
            GeneralName::IPAddress(&[10, 20, 0, 5])
        ]
    );
    let eku = leaf
        .extended_key_usage()
        .expect("eku")
        .expect("present")
        .value;
    assert!(eku.server_auth && !eku.client_auth && !eku.any && eku.other.is_empty());
    let usage = leaf.key_usage().expect("ku").expect("present");
    assert!(usage.critical && usage.value.digital_signature());
    assert_eq!(usage.value.flags.count_ones(), 1);
    let constraints = leaf.basic_constraints().expect("bc").expect("present");
    assert!(!constraints.value.ca);
    assert_eq!(authority_key_id(leaf.extensions()), ca_key_id);
    assert_ne!(subject_key_id(&leaf), ca_key_id);
    let not_before = leaf.validity().not_before.to_datetime();
    let not_after = leaf.validity().not_after.to_datetime();
    assert_eq!((not_before, not_after), (first.not_before, first.not_after));
    assert_eq!(
        not_after - not_before,
        Duration::days(397) + Duration::minutes(5)
    );
    assert!(not_before < OffsetDateTime::now_utc());

    // rustls-webpki agrees: the chain, server authentication, both names.
    webpki_verify(ca.certificate_pem(), &first.pem, None).expect("chain");
    let leaf_der = CertificateDer::from(leaf_der.clone());
    let end_entity = webpki::EndEntityCert::try_from(&leaf_der).expect("end entity");
    for name in ["kammer.example.org", "10.20.0.5"] {
        let name = ServerName::try_from(name).expect("server name");
        end_entity
            .verify_is_valid_for_subject_name(&name)
            .expect("valid for name");
    }
    let other = ServerName::try_from("other.example.org").expect("name");
    assert!(end_entity.verify_is_valid_for_subject_name(&other).is_err());

    // A second certificate gets another serial; both are listed.
    let second_key = RingKey::generate();
    let second = ca
        .issue_from_csr(
            &second_key.csr("meet.example.org", &["meet.example.org"]),
            &IssueOptions {
                validity_days: 90,
                names: Names::FromRequest,
            },
        )
        .expect("second");
    assert_ne!(second.serial, first.serial);
    assert_eq!(
        second.not_after - second.not_before,
        Duration::days(90) + Duration::minutes(5)
    );
    let listed = ca.list().expect("list");
    assert_eq!(listed.len(), 2);
    assert_eq!(
        (listed[0].serial, listed[1].serial),
        (first.serial, second.serial)
    );
    assert_eq!(listed[0].subject, "CN=kammer.example.org");
    assert!(listed.iter().all(|c| c.status == CertificateStatus::Valid));

    // A CRL before any revocation: number 1, empty.
    let empty = ca.crl(30).expect("crl");
    assert_eq!((empty.number, empty.revoked), (1, 0));
    webpki_verify(ca.certificate_pem(), &first.pem, Some(&empty.pem)).expect("not revoked");

    // Revocation.
    let revoked = ca
        .revoke(&first.serial, RevocationReason::KeyCompromise)
        .expect("revoke");
    assert!(matches!(
        revoked.status,
        CertificateStatus::Revoked {
            reason: RevocationReason::KeyCompromise,
            ..
        }
    ));
    assert!(matches!(
        ca.revoke(&first.serial, RevocationReason::Superseded),
        Err(CaError::AlreadyRevoked(serial)) if serial == first.serial
    ));
    let unknown: Serial = "4".repeat(32).parse().expect("serial");
    assert!(matches!(
        ca.revoke(&unknown, RevocationReason::Unspecified),
        Err(CaError::UnknownSerial(_))
    ));

    // The next CRL lists the revoked certificate only, with its reason, number 2.
    let crl = ca.crl(7).expect("crl");
    assert_eq!((crl.number, crl.revoked), (2, 1));
    assert_eq!(crl.path, dir.join("crl.pem"));
    assert_eq!(fs::read_to_string(&crl.path).expect("crl.pem"), crl.pem);
    assert_eq!(crl.next_update - crl.this_update, Duration::days(7));
    let crl_der = der(&crl.pem);
    let (rest, parsed) = CertificateRevocationList::from_der(&crl_der).expect("CRL parses");
    assert!(rest.is_empty());
    assert_eq!(parsed.crl_number(), Some(&BigUint::from(2u32)));
    assert_eq!(parsed.issuer(), ca_cert.subject());
    assert_eq!(
        parsed.signature_algorithm.algorithm,
        OID_SIG_ECDSA_WITH_SHA384
    );
    assert!(
        verify_p384(
            &ca_cert,
            parsed.tbs_cert_list.as_ref(),
            &parsed.signature_value.data
        ),
        "the CRL is signed by the CA key"
    );
    assert!(!verify_p384(
        &leaf,
        parsed.tbs_cert_list.as_ref(),
        &parsed.signature_value.data
    ));
    assert_eq!(authority_key_id(parsed.extensions()), ca_key_id);
    let entries: Vec<_> = parsed.iter_revoked_certificates().collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].raw_serial(), first.serial.as_bytes());
    assert_eq!(entries[0].reason_code().map(|(_, code)| code.0), Some(1));

    // rustls-webpki with the CRL: the revoked certificate fails, the other passes.
    assert_eq!(
        webpki_verify(ca.certificate_pem(), &first.pem, Some(&crl.pem)),
        Err(webpki::Error::CertRevoked)
    );
    webpki_verify(ca.certificate_pem(), &second.pem, Some(&crl.pem)).expect("still valid");

    // The state survives reopening: the CRL number continues, the revocation is remembered.
    drop(ca);
    let ca = OfflineCa::open(&dir).expect("open");
    let listed = ca.list().expect("list");
    assert!(matches!(
        listed[0].status,
        CertificateStatus::Revoked { .. }
    ));
    assert_eq!(listed[1].status, CertificateStatus::Valid);
    let third = ca.crl(30).expect("crl");
    assert_eq!((third.number, third.revoked), (3, 1));
}

#[test]
fn names_can_be_given_instead_of_taken_from_the_request() {
    let temp = tempfile::tempdir().expect("temp dir");
    let ca = OfflineCa::create(temp.path(), &options()).expect("create");

    // A request without subject alternative names (as `openssl req` makes by default).
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kammer.example.org");
    let bare = params
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem");
    assert!(matches!(
        ca.issue_from_csr(&bare, &IssueOptions::default()),
        Err(CaError::NoNames)
    ));

    let given = IssueOptions {
        validity_days: 30,
        names: Names::Exactly(names(&[
            "room.example.org",
            "10.20.1.1",
            "room.example.org",
        ])),
    };
    let issued = ca
        .issue_from_csr(&bare, &given)
        .expect("issued with given names");
    assert_eq!(issued.names, names(&["room.example.org", "10.20.1.1"]));
    let leaf_der = der(&issued.pem);
    let leaf = parse(&leaf_der);
    // The request's common name is not among the names: the first name is used.
    assert_eq!(leaf.subject().to_string(), "CN=room.example.org");

    // Given names replace the request's.
    let requested = RingKey::generate().csr("a.example.org", &["a.example.org"]);
    let issued = ca.issue_from_csr(&requested, &given).expect("issued");
    assert_eq!(issued.names, names(&["room.example.org", "10.20.1.1"]));
    assert!(matches!(
        ca.issue_from_csr(
            &requested,
            &IssueOptions {
                names: Names::Exactly(Vec::new()),
                ..given
            }
        ),
        Err(CaError::NoNames)
    ));
}

#[test]
fn a_p384_request_is_accepted() {
    let temp = tempfile::tempdir().expect("temp dir");
    let ca = OfflineCa::create(temp.path(), &options()).expect("create");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("key");
    let params =
        rcgen::CertificateParams::new(vec!["p384.example.org".to_owned()]).expect("params");
    let csr = params
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem");
    let issued = ca
        .issue_from_csr(&csr, &IssueOptions::default())
        .expect("issued");
    let leaf_der = der(&issued.pem);
    assert_eq!(
        parse(&leaf_der).public_key().raw,
        key.subject_public_key_info()
    );
    webpki_verify(ca.certificate_pem(), &issued.pem, None).expect("chain");
}

#[test]
fn dns_only_constraints_exclude_every_address() {
    let temp = tempfile::tempdir().expect("temp dir");
    let options = CaOptions {
        name_constraints: vec![PermittedName::Dns("example.org".parse().expect("dns"))],
        ..options()
    };
    let ca = OfflineCa::create(temp.path(), &options).expect("create");
    let ca_der = der(ca.certificate_pem());
    let ca_cert = parse(&ca_der);
    let constraints = ca_cert
        .name_constraints()
        .expect("nc")
        .expect("present")
        .value;
    let excluded = constraints.excluded_subtrees.as_ref().expect("excluded");
    assert!(matches!(
        excluded[0].base,
        GeneralName::IPAddress([0, 0, 0, 0, 0, 0, 0, 0])
    ));
    assert!(matches!(excluded[1].base, GeneralName::IPAddress(bytes) if bytes == [0; 32]));

    let error = refusal(
        &ca,
        &RingKey::generate().csr("x", &["a.example.org", "10.0.0.1"]),
    );
    assert!(
        matches!(error, CaError::NotPermitted(SubjectName::Ip(_))),
        "{error}"
    );
    let issued = ca
        .issue_from_csr(
            &RingKey::generate().csr("x", &["a.example.org"]),
            &IssueOptions::default(),
        )
        .expect("DNS name");
    webpki_verify(ca.certificate_pem(), &issued.pem, None).expect("chain");
}

#[test]
fn an_unconstrained_ca_certifies_any_name() {
    let temp = tempfile::tempdir().expect("temp dir");
    let ca = OfflineCa::create(temp.path(), &CaOptions::new("Open CA")).expect("create");
    let ca_der = der(ca.certificate_pem());
    assert!(parse(&ca_der).name_constraints().expect("nc").is_none());
    let csr = RingKey::generate().csr("kammer", &["kammer", "192.168.7.1"]);
    let issued = ca
        .issue_from_csr(&csr, &IssueOptions::default())
        .expect("issued");
    webpki_verify(ca.certificate_pem(), &issued.pem, None).expect("chain");
}

#[test]
fn concurrent_issuers_take_turns() {
    let temp = tempfile::tempdir().expect("temp dir");
    OfflineCa::create(temp.path(), &options()).expect("create");
    let csr = RingKey::generate().csr("a.example.org", &["a.example.org"]);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                // Each thread opens the CA itself, as a second process would.
                let ca = OfflineCa::open(temp.path()).expect("open");
                for _ in 0..8 {
                    ca.issue_from_csr(&csr, &IssueOptions::default())
                        .expect("issue");
                }
            });
        }
    });
    let ca = OfflineCa::open(temp.path()).expect("open");
    let mut serials: Vec<_> = ca.list().expect("list").iter().map(|c| c.serial).collect();
    assert_eq!(serials.len(), 16);
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 16);
    assert_eq!(
        fs::read_dir(temp.path().join("issued"))
            .expect("issued")
            .count(),
        16
    );
}
