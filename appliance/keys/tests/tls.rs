//! The rustls adapter: a TLS 1.3 server whose handshake signatures come from the key manager's
//! `Tls` role (in swtpm, or with `TlsKeyMode::Sealed` in the manager's memory), a rustls client
//! that trusts the self-signed certificate, ECDSA P-256 only; and the handshake rates of both
//! modes against a software key.
//!
//! For the figures in docs/keys.md:
//! `KAMMER_KEYS_HANDSHAKES=500 cargo test --release -p kammer-keys --test tls -- --nocapture`

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{Swtpm, with_quiet_tss};
use kammer_keys::tls::{TlsSigningKey, certified_key};
use kammer_keys::{Backend, KeyConfig, KeyManager, PcrPolicy, Role, TlsKeyMode};
use rustls::client::Resumption;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, ring};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::NoServerSessionStorage;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, SignatureScheme,
    version,
};

const NAME: &str = "kammer.test";

/// rcgen signs the certificate through the key manager: the private key stays in it.
struct RoleKey {
    keys: Arc<KeyManager>,
    point: Vec<u8>,
}

impl rcgen::PublicKeyData for RoleKey {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for RoleKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.keys
            .sign(Role::Tls, message)
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

fn certificate_params() -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::new(vec![NAME.to_owned()]).expect("params");
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2045, 1, 1);
    params
}

/// A self-signed certificate for the `Tls` role key, signed by that key.
fn role_certificate(keys: &Arc<KeyManager>) -> CertificateDer<'static> {
    let key = RoleKey {
        keys: Arc::clone(keys),
        point: keys.public_key(Role::Tls).point().to_vec(),
    };
    certificate_params()
        .self_signed(&key)
        .expect("certificate")
        .der()
        .clone()
}

/// TLS 1.3, AES-GCM, P-256 key exchange; the handshake signature schemes a peer may verify are
/// limited to `schemes`.
fn provider(schemes: &[SignatureScheme]) -> Arc<CryptoProvider> {
    let base = ring::default_provider();
    let mapping: Vec<_> = base
        .signature_verification_algorithms
        .mapping
        .iter()
        .filter(|(scheme, _)| schemes.contains(scheme))
        .copied()
        .collect();
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
            ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
        ],
        kx_groups: vec![ring::kx_group::SECP256R1],
        signature_verification_algorithms: WebPkiSupportedAlgorithms {
            all: base.signature_verification_algorithms.all,
            // The test leaks one small list per configuration it builds.
            mapping: Vec::leak(mapping),
        },
        ..base
    })
}

fn server_config(certified: CertifiedKey) -> Arc<ServerConfig> {
    let mut config =
        ServerConfig::builder_with_provider(provider(&[SignatureScheme::ECDSA_NISTP256_SHA256]))
            .with_protocol_versions(&[&version::TLS13])
            .expect("TLS 1.3")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    // Full handshakes only: no tickets, no session cache.
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(NoServerSessionStorage {});
    Arc::new(config)
}

fn client_config(
    trusted: &CertificateDer<'static>,
    schemes: &[SignatureScheme],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(trusted.clone()).expect("trust anchor");
    let mut config = ClientConfig::builder_with_provider(provider(schemes))
        .with_protocol_versions(&[&version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    Arc::new(config)
}

/// One full handshake over in-memory buffers.
fn handshake(server: &Arc<ServerConfig>, client: &Arc<ClientConfig>) -> Result<(), rustls::Error> {
    let name = ServerName::try_from(NAME).expect("name");
    let mut client = ClientConnection::new(Arc::clone(client), name)?;
    let mut server = ServerConnection::new(Arc::clone(server))?;
    let mut buffer = Vec::new();
    for _ in 0..20 {
        if !client.is_handshaking() && !server.is_handshaking() {
            assert_eq!(
                client.protocol_version(),
                Some(rustls::ProtocolVersion::TLSv1_3)
            );
            return Ok(());
        }
        buffer.clear();
        client.write_tls(&mut buffer).expect("write to memory");
        let mut input = &buffer[..];
        while !input.is_empty() {
            server.read_tls(&mut input).expect("read from memory");
            server.process_new_packets()?;
        }
        buffer.clear();
        server.write_tls(&mut buffer).expect("write to memory");
        let mut input = &buffer[..];
        while !input.is_empty() {
            client.read_tls(&mut input).expect("read from memory");
            client.process_new_packets()?;
        }
    }
    panic!("the handshake did not finish in 20 rounds");
}

fn handshakes_per_second(server: &Arc<ServerConfig>, client: &Arc<ClientConfig>, n: u32) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        handshake(server, client).expect("handshake");
    }
    f64::from(n) / started.elapsed().as_secs_f64()
}

fn handshake_count() -> u32 {
    std::env::var("KAMMER_KEYS_HANDSHAKES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20)
}

/// The checks shared by both backends; returns the handshake rate through the adapter.
fn adapter_checks(keys: Arc<KeyManager>) -> f64 {
    let certificate = role_certificate(&keys);
    let certified = certified_key(Arc::clone(&keys), vec![certificate.clone()]).expect("matches");
    let server = server_config(certified);

    // A client restricted to ECDSA P-256 completes the handshake, signed by the role key.
    let p256 = client_config(&certificate, &[SignatureScheme::ECDSA_NISTP256_SHA256]);
    handshake(&server, &p256).expect("TLS 1.3 handshake");
    let rate = handshakes_per_second(&server, &p256, handshake_count());

    // A client that does not offer ECDSA P-256 gets no handshake: the key signs nothing else.
    let other = client_config(
        &certificate,
        &[
            SignatureScheme::ECDSA_NISTP384_SHA384,
            SignatureScheme::ED25519,
            SignatureScheme::RSA_PSS_SHA256,
        ],
    );
    let error = handshake(&server, &other).expect_err("no common signature scheme");
    println!("client without ECDSA P-256: {error}");

    // A certificate for another key is refused.
    let stranger = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let foreign = certificate_params()
        .self_signed(&stranger)
        .expect("certificate");
    assert!(certified_key(Arc::clone(&keys), vec![foreign.der().clone()]).is_err());

    // After rotation the old signer refuses instead of signing with a mismatched key.
    let signer = TlsSigningKey::new(Arc::clone(&keys));
    keys.rotate(Role::Tls).expect("rotate");
    let error = handshake(&server, &p256).expect_err("rotated key");
    println!("after rotating the TLS key: {error}");
    assert!(error.to_string().contains("rotated"), "{error}");
    drop(signer);
    let renewed = role_certificate(&keys);
    let server =
        server_config(certified_key(Arc::clone(&keys), vec![renewed.clone()]).expect("new"));
    handshake(
        &server,
        &client_config(&renewed, &[SignatureScheme::ECDSA_NISTP256_SHA256]),
    )
    .expect("handshake with the new key");
    rate
}

/// The same handshakes with rustls's own in-process ring key, for comparison.
fn software_key_rate() -> f64 {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let certificate = certificate_params().self_signed(&key).expect("certificate");
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing = ring::default_provider()
        .key_provider
        .load_private_key(der)
        .expect("software key");
    let server = server_config(CertifiedKey::new(vec![certificate.der().clone()], signing));
    let client = client_config(certificate.der(), &[SignatureScheme::ECDSA_NISTP256_SHA256]);
    handshakes_per_second(&server, &client, handshake_count())
}

/// A key manager on a fresh swtpm with the TLS key in `mode`.
fn tpm_keys(work: &std::path::Path, swtpm: &Swtpm, mode: TlsKeyMode) -> Arc<KeyManager> {
    let config = KeyConfig::new(
        work.join("state"),
        Backend::Tpm {
            tcti: swtpm.tcti(),
            pcrs: PcrPolicy::none(),
            signed: None,
        },
    )
    .with_tls_mode(mode);
    let keys = Arc::new(KeyManager::init(&config).expect("init"));
    assert_eq!(keys.status().tls_mode, Some(mode));
    keys
}

#[test]
fn tls_handshake_signed_in_the_tpm() {
    with_quiet_tss("tls_handshake_signed_in_the_tpm", || {
        let work = tempfile::tempdir().expect("tempdir");
        let swtpm = Swtpm::start(&work.path().join("swtpm"));
        let keys = tpm_keys(work.path(), &swtpm, TlsKeyMode::InTpm);
        let tpm = adapter_checks(keys);
        let software = software_key_rate();
        println!(
            "full TLS 1.3 handshakes/s ({} each, client and server in one thread): \
             TPM (swtpm) signer {tpm:.0}, software ring key {software:.0}",
            handshake_count()
        );
    });
}

#[test]
fn tls_handshake_with_a_sealed_key() {
    with_quiet_tss("tls_handshake_with_a_sealed_key", || {
        let work = tempfile::tempdir().expect("tempdir");
        let swtpm = Swtpm::start(&work.path().join("swtpm"));
        let keys = tpm_keys(work.path(), &swtpm, TlsKeyMode::Sealed);
        let sealed = adapter_checks(keys);
        println!(
            "full TLS 1.3 handshakes/s ({} each, client and server in one thread): \
             sealed TLS key (TPM backend, signing in process) {sealed:.0}",
            handshake_count()
        );
    });
}

#[test]
fn tls_handshake_with_the_soft_backend() {
    let state = tempfile::tempdir().expect("tempdir");
    let keys =
        Arc::new(KeyManager::init(&KeyConfig::new(state.path(), Backend::Soft)).expect("init"));
    let rate = adapter_checks(keys);
    println!("full TLS 1.3 handshakes/s through the adapter, soft backend: {rate:.0}");
}
