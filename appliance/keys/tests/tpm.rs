//! The TPM backend against a real swtpm, one scenario from the key ceremony to a cleared TPM.
//!
//! One swtpm serves this binary; the scenario runs as one test because swtpm over TCP has no
//! resource manager (three object slots), so two managers must not use it at the same time.

mod common;

use std::time::Instant;

use common::{
    Swtpm, assert_nothing_loaded, extend_pcr16, files_holding_the_secret, list_files, tpm,
    verifies, with_quiet_tss,
};
use kammer_keys::{
    Backend, BackendStatus, KeyConfig, KeyError, KeyLocation, KeyManager, PcrPolicy, Role, Tcti,
    TlsKeyMode,
};
use tss_esapi::handles::AuthHandle;
use tss_esapi::interface_types::session_handles::AuthSession;

const LABEL: &str = "recording/room-1";
const DATA_KEY: &[u8; 32] = b"a 32-byte data key for the test.";

fn config(state: &std::path::Path, tcti: Tcti, pcrs: &[u8]) -> KeyConfig {
    KeyConfig::new(
        state,
        Backend::Tpm {
            tcti,
            pcrs: PcrPolicy::new(pcrs.iter().copied()).expect("valid PCRs"),
            signed: None,
        },
    )
}

fn clear_tpm(tcti: &Tcti) {
    tpm(tcti)
        .execute_with_session(Some(AuthSession::Password), |ctx| {
            ctx.clear(AuthHandle::Platform)
        })
        .expect("TPM2_Clear");
}

fn sign_and_verify_every_role(keys: &KeyManager) {
    for role in Role::ALL {
        let message = format!("a {role} record to sign");
        let signature = keys.sign(role, message.as_bytes()).expect("sign");
        let key = keys.public_key(role);
        assert!(verifies(&key, message.as_bytes(), &signature), "{role}");
        assert!(!verifies(&key, b"another message", &signature), "{role}");
    }
}

#[test]
fn tpm_key_lifecycle() {
    with_quiet_tss("tpm_key_lifecycle", scenario);
}

fn scenario() {
    let work = tempfile::tempdir().expect("tempdir");
    let (tpm_state, state) = (work.path().join("swtpm"), work.path().join("state"));
    let swtpm = Swtpm::start(&tpm_state);
    let tcti = swtpm.tcti();

    // Nothing there yet: `open` refuses, only the ceremony creates keys.
    assert!(matches!(
        KeyManager::open(&config(&state, tcti.clone(), &[16])),
        Err(KeyError::NotInitialized { .. })
    ));

    // init → status.
    let started = Instant::now();
    let keys = KeyManager::init(&config(&state, tcti.clone(), &[16])).expect("init");
    println!("init (3 keys, sealed secret): {:?}", started.elapsed());
    assert_nothing_loaded(&tcti, "init");
    let status = keys.status();
    println!("{status}");
    assert!(!status.is_insecure());
    assert!(matches!(&status.backend, BackendStatus::Tpm { tcti: t, .. } if *t == tcti));
    assert_eq!(status.roles.len(), 3);
    for (role, entry) in Role::ALL.iter().zip(&status.roles) {
        assert_eq!(entry.role, *role);
        assert_eq!(entry.algorithm, "ECDSA P-256 with SHA-256");
        assert_eq!(entry.fingerprint, keys.public_key(*role).fingerprint());
        assert!(matches!(&entry.location, KeyLocation::TpmBlob(p) if p.exists()));
    }
    assert_eq!(
        status.storage.pcrs,
        Some(PcrPolicy::new([16]).expect("valid"))
    );
    let text = status.to_string();
    assert!(text.contains("sealed to PCRs sha256:16"), "{text}");
    // The default TLS key mode: the TPM signs every handshake.
    assert_eq!(status.tls_mode, Some(TlsKeyMode::InTpm));
    assert!(text.contains("tls key mode: in-tpm"), "{text}");
    // Distinct keys per role.
    let publics: Vec<_> = Role::ALL.iter().map(|&r| keys.public_key(r)).collect();
    assert!(publics[0] != publics[1] && publics[1] != publics[2] && publics[0] != publics[2]);

    // Sign with each role; verify in software against public_key(role).
    sign_and_verify_every_role(&keys);
    let started = Instant::now();
    for _ in 0..50 {
        keys.sign(Role::Audit, b"timing").expect("sign");
    }
    println!("TPM sign: {:?} per signature", started.elapsed() / 50);
    assert_nothing_loaded(&tcti, "signing");

    // Wrap / unwrap; a changed blob or another label fails.
    let started = Instant::now();
    let blob = keys.wrap(LABEL, DATA_KEY).expect("wrap");
    println!("wrap (unseal + AES-GCM): {:?}", started.elapsed());
    assert_eq!(
        keys.unwrap(LABEL, &blob).expect("unwrap").as_bytes(),
        DATA_KEY
    );
    let mut tampered = blob.clone();
    tampered[20] ^= 0x01;
    assert!(matches!(
        keys.unwrap(LABEL, &tampered),
        Err(KeyError::Unwrap)
    ));
    assert!(matches!(
        keys.unwrap("recording/room-2", &blob),
        Err(KeyError::Unwrap)
    ));
    let random = keys.random(100).expect("random");
    assert_eq!(random.len(), 100);
    assert_ne!(
        random.as_bytes(),
        keys.random(100).expect("random").as_bytes()
    );
    assert!(format!("{random:?}").contains("redacted"));
    assert_nothing_loaded(&tcti, "wrap, unwrap and random");

    // The secret is sealed to PCR 16: extend it, and unseal fails with a clear error.
    extend_pcr16(&tcti);
    let error = keys.unwrap(LABEL, &blob).expect_err("PCR 16 changed");
    assert!(
        matches!(error, KeyError::PcrPolicyFailed { .. }),
        "{error:?}"
    );
    println!("after extending PCR 16: {error}");
    assert!(error.to_string().contains("PCRs sha256:16"));
    assert!(matches!(
        keys.wrap(LABEL, DATA_KEY),
        Err(KeyError::PcrPolicyFailed { .. })
    ));
    assert_nothing_loaded(&tcti, "a failed unseal");
    // Signing keys are not PCR-bound: they still work.
    sign_and_verify_every_role(&keys);

    // rotate(Tls) gives a new key; the others stay.
    let old_tls = keys.public_key(Role::Tls);
    let started = Instant::now();
    let new_tls = keys.rotate(Role::Tls).expect("rotate");
    println!("rotate: {:?}", started.elapsed());
    assert_ne!(new_tls, old_tls);
    assert_eq!(keys.public_key(Role::Tls), new_tls);
    assert_eq!(keys.public_key(Role::Audit), publics[1]);
    let signature = keys.sign(Role::Tls, b"after rotation").expect("sign");
    assert!(verifies(&new_tls, b"after rotation", &signature));
    assert!(!verifies(&old_tls, b"after rotation", &signature));
    assert!(matches!(
        keys.sign_pinned(Role::Tls, &old_tls, b"x"),
        Err(KeyError::KeyRotated { role: Role::Tls })
    ));
    let publics = [new_tls, publics[1].clone(), publics[2].clone()];
    let audit_signature = keys
        .sign(Role::Audit, b"kept across restarts")
        .expect("sign");
    assert_nothing_loaded(&tcti, "rotate");

    // Drop the manager, restart swtpm on the same state (PCRs reset), reopen: same keys.
    drop(keys);
    drop(swtpm);
    let swtpm = Swtpm::start(&tpm_state);
    let tcti = swtpm.tcti();
    // A different PCR list than the one sealed to is refused.
    assert!(matches!(
        KeyManager::open(&config(&state, tcti.clone(), &[7])),
        Err(KeyError::PcrConfigMismatch { .. })
    ));
    let started = Instant::now();
    let keys = KeyManager::open(&config(&state, tcti.clone(), &[16])).expect("reopen");
    println!("open (load and check 3 keys): {:?}", started.elapsed());
    for (role, public) in Role::ALL.iter().zip(&publics) {
        assert_eq!(keys.public_key(*role), *public, "{role}");
    }
    sign_and_verify_every_role(&keys);
    assert!(verifies(
        &publics[1],
        b"kept across restarts",
        &audit_signature
    ));
    // PCR 16 is back at its boot value: the old blob opens again.
    assert_eq!(
        keys.unwrap(LABEL, &blob).expect("unwrap").as_bytes(),
        DATA_KEY
    );
    assert_nothing_loaded(&tcti, "reopen");

    // The storage secret is in no file of the key directory (nor of the whole state).
    let files = list_files(&state.join("keys"));
    println!("key directory: {files:?}");
    let names: Vec<_> = files
        .iter()
        .filter_map(|(path, _)| path.file_name()?.to_str().map(str::to_owned))
        .collect();
    assert_eq!(
        names,
        [
            "audit.tpm",
            "backend",
            "media.tpm",
            "storage-key.spki",
            "storage.pcrs",
            "storage.tpm",
            "tls.mode",
            "tls.tpm"
        ]
    );
    assert_eq!(
        files_holding_the_secret(&state, LABEL, &blob),
        Vec::<std::path::PathBuf>::new()
    );

    // A damaged key blob is refused at open.
    drop(keys);
    let tls_blob = state.join("keys/tls.tpm");
    let good = std::fs::read(&tls_blob).expect("read");
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    std::fs::write(&tls_blob, &bad).expect("write");
    let error = KeyManager::open(&config(&state, tcti.clone(), &[16])).expect_err("damaged");
    println!("damaged blob: {error}");
    assert!(matches!(error, KeyError::Tpm { .. }), "{error:?}");
    std::fs::write(&tls_blob, &good).expect("write");
    let keys = KeyManager::open(&config(&state, tcti.clone(), &[16])).expect("repaired");

    // Clearing the TPM changes the owner seed: the keys are gone. A running manager notices at
    // its next operation (its saved contexts no longer load, the re-derived storage key
    // differs), and `open` refuses.
    clear_tpm(&tcti);
    let error = keys
        .sign(Role::Tls, b"x")
        .expect_err("cleared under a running manager");
    assert!(matches!(error, KeyError::TpmChanged { .. }), "{error:?}");
    let error = keys
        .unwrap(LABEL, &blob)
        .expect_err("cleared under a running manager");
    assert!(matches!(error, KeyError::TpmChanged { .. }), "{error:?}");
    assert_nothing_loaded(&tcti, "failures after TPM2_Clear");
    drop(keys);
    let error = KeyManager::open(&config(&state, tcti.clone(), &[16])).expect_err("cleared");
    println!("after TPM2_Clear: {error}");
    assert!(matches!(error, KeyError::TpmChanged { .. }), "{error:?}");
}

#[test]
fn tpm_without_pcr_binding_and_backend_marker() {
    with_quiet_tss("tpm_without_pcr_binding_and_backend_marker", || {
        let work = tempfile::tempdir().expect("tempdir");
        let swtpm = Swtpm::start(&work.path().join("swtpm"));
        let state = work.path().join("state");
        let keys = KeyManager::init(&config(&state, swtpm.tcti(), &[])).expect("init");
        assert!(keys.status().to_string().contains("no PCR binding"));
        let blob = keys.wrap(LABEL, DATA_KEY).expect("wrap");
        extend_pcr16(&swtpm.tcti());
        assert_eq!(
            keys.unwrap(LABEL, &blob).expect("unbound").as_bytes(),
            DATA_KEY
        );
        // init again keeps the keys.
        let tls = keys.public_key(Role::Tls);
        drop(keys);
        let again = KeyManager::init(&config(&state, swtpm.tcti(), &[])).expect("init again");
        assert_eq!(again.public_key(Role::Tls), tls);
        assert_eq!(
            again.unwrap(LABEL, &blob).expect("unwrap").as_bytes(),
            DATA_KEY
        );
        drop(again);
        // The TLS key mode is recorded; a directory from before it was (no `tls.mode`, a
        // `tls.tpm`) is `in-tpm`, and `init` records that. The other mode is refused, without
        // touching the key.
        let mode_file = state.join("keys/tls.mode");
        assert_eq!(
            std::fs::read_to_string(&mode_file).expect("tls.mode"),
            "in-tpm\n"
        );
        std::fs::remove_file(&mode_file).expect("remove tls.mode");
        let sealed = config(&state, swtpm.tcti(), &[]).with_tls_mode(TlsKeyMode::Sealed);
        for result in [KeyManager::open(&sealed), KeyManager::init(&sealed)] {
            let error = result.expect_err("the other mode");
            assert!(
                matches!(
                    error,
                    KeyError::TlsModeMismatch {
                        found: TlsKeyMode::InTpm,
                        configured: TlsKeyMode::Sealed,
                        ..
                    }
                ),
                "{error:?}"
            );
            println!("opening with the other mode: {error}");
        }
        let legacy = KeyManager::open(&config(&state, swtpm.tcti(), &[])).expect("legacy");
        assert_eq!(legacy.public_key(Role::Tls), tls);
        assert!(!mode_file.exists(), "open writes nothing");
        drop(legacy);
        drop(KeyManager::init(&config(&state, swtpm.tcti(), &[])).expect("init records"));
        assert_eq!(
            std::fs::read_to_string(&mode_file).expect("tls.mode"),
            "in-tpm\n"
        );
        // The soft backend does not open a TPM key directory.
        assert!(matches!(
            KeyManager::open(&KeyConfig::new(&state, Backend::Soft)),
            Err(KeyError::BackendMismatch { .. })
        ));
    });
}
