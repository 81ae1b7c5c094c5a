//! `TlsKeyMode::Sealed` against a real swtpm: the TLS key is a software key, stored only wrapped
//! under the TPM-sealed storage secret and held unwrapped in the manager's memory; from the key
//! ceremony through restarts, rotation and a changed PCR to switching modes.
//!
//! One scenario in one test, with its own swtpm (no resource manager: one manager at a time).

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{
    Swtpm, assert_nothing_loaded, extend_pcr16, files_holding_the_private_key, list_files,
    verifies, with_quiet_tss,
};
use kammer_keys::wrap::RESERVED_PREFIX;
use kammer_keys::{
    Backend, KeyConfig, KeyError, KeyLocation, KeyManager, PcrPolicy, PublicKey, Role, Tcti,
    TlsKeyMode,
};

fn config(state: &Path, tcti: Tcti, mode: TlsKeyMode) -> KeyConfig {
    KeyConfig::new(
        state,
        Backend::Tpm {
            tcti,
            pcrs: PcrPolicy::new([16]).expect("valid PCRs"),
            signed: None,
        },
    )
    .with_tls_mode(mode)
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

fn file_names(dir: &Path) -> Vec<String> {
    list_files(dir)
        .iter()
        .filter_map(|(path, _)| path.file_name()?.to_str().map(str::to_owned))
        .collect()
}

/// The private TLS key is in no file of the state directory: neither as PKCS#8, nor raw, nor
/// in hex.
fn assert_tls_key_in_no_file(state: &Path, key: &PublicKey) {
    assert_eq!(
        files_holding_the_private_key(state, key),
        Vec::<PathBuf>::new()
    );
}

#[test]
fn sealed_tls_key_lifecycle() {
    with_quiet_tss("sealed_tls_key_lifecycle", scenario);
}

fn scenario() {
    let work = tempfile::tempdir().expect("tempdir");
    let (tpm_state, state) = (work.path().join("swtpm"), work.path().join("state"));
    let keys_dir = state.join("keys");
    let swtpm = Swtpm::start(&tpm_state);
    let tcti = swtpm.tcti();
    let sealed = |tcti: &Tcti| config(&state, tcti.clone(), TlsKeyMode::Sealed);
    let in_tpm = |tcti: &Tcti| config(&state, tcti.clone(), TlsKeyMode::InTpm);

    assert!(matches!(
        KeyManager::open(&sealed(&tcti)),
        Err(KeyError::NotInitialized { .. })
    ));

    // init: the TLS key is wrapped on disk, the other roles are TPM keys.
    let started = Instant::now();
    let keys = KeyManager::init(&sealed(&tcti)).expect("init");
    println!(
        "init (2 TPM keys, sealed secret, sealed TLS key): {:?}",
        started.elapsed()
    );
    assert_nothing_loaded(&tcti, "init");
    let status = keys.status();
    let text = status.to_string();
    println!("{text}");
    assert_eq!(status.tls_mode, Some(TlsKeyMode::Sealed));
    assert!(text.contains("tls key mode: sealed"), "{text}");
    assert_eq!(
        status.roles[0].location,
        KeyLocation::Wrapped(keys_dir.join("tls.sealed"))
    );
    assert!(
        matches!(&status.roles[1].location, KeyLocation::TpmBlob(p) if p.ends_with("audit.tpm"))
    );
    assert_eq!(
        file_names(&keys_dir),
        [
            "audit.tpm",
            "backend",
            "media.tpm",
            "storage-key.spki",
            "storage.pcrs",
            "storage.tpm",
            "tls.mode",
            "tls.sealed"
        ]
    );
    assert_eq!(
        std::fs::read_to_string(keys_dir.join("tls.mode")).expect("tls.mode"),
        "sealed\n"
    );

    // Public keys and signatures, for every role; the TLS key signs in software.
    sign_and_verify_every_role(&keys);
    let tls = keys.public_key(Role::Tls);
    for role in [Role::Tls, Role::Audit] {
        let started = Instant::now();
        for _ in 0..50 {
            keys.sign(role, b"timing").expect("sign");
        }
        println!("sign {role}: {:?} per signature", started.elapsed() / 50);
    }
    assert_nothing_loaded(&tcti, "signing");

    // The private key is in no file in clear, and `unwrap` cannot open its blob: the label is
    // the manager's own.
    assert_tls_key_in_no_file(&state, &tls);
    let blob = std::fs::read(keys_dir.join("tls.sealed")).expect("tls.sealed");
    for label in ["kammer/tls-key", RESERVED_PREFIX] {
        assert!(matches!(
            keys.unwrap(label, &blob),
            Err(KeyError::ReservedLabel { .. })
        ));
        assert!(matches!(
            keys.wrap(label, b"a planted key"),
            Err(KeyError::ReservedLabel { .. })
        ));
    }
    // The sealed blob is 1 + 12 + PKCS#8 + 16 bytes: it is the key, encrypted.
    println!("tls.sealed: {} bytes", blob.len());

    // The other mode is refused, and so is `init` with it: no silent switch.
    drop(keys);
    for result in [
        KeyManager::open(&in_tpm(&tcti)),
        KeyManager::init(&in_tpm(&tcti)),
    ] {
        let error = result.expect_err("the other mode");
        assert!(
            matches!(
                error,
                KeyError::TlsModeMismatch {
                    found: TlsKeyMode::Sealed,
                    configured: TlsKeyMode::InTpm,
                    ..
                }
            ),
            "{error:?}"
        );
        println!("opening with the other mode: {error}");
    }
    assert!(!keys_dir.join("tls.tpm").exists());

    // Restart swtpm on the same state (PCRs reset) and reopen: the same keys.
    let publics: Vec<_> = {
        let keys = KeyManager::open(&sealed(&tcti)).expect("open");
        Role::ALL
            .iter()
            .map(|&role| keys.public_key(role))
            .collect()
    };
    drop(swtpm);
    let swtpm = Swtpm::start(&tpm_state);
    let tcti = swtpm.tcti();
    let started = Instant::now();
    let keys = KeyManager::open(&sealed(&tcti)).expect("reopen");
    println!(
        "open (2 TPM keys, unseal, unwrap the TLS key): {:?}",
        started.elapsed()
    );
    for (role, public) in Role::ALL.iter().zip(&publics) {
        assert_eq!(keys.public_key(*role), *public, "{role}");
    }
    assert_eq!(keys.public_key(Role::Tls), tls);
    sign_and_verify_every_role(&keys);
    assert_nothing_loaded(&tcti, "reopen");

    // Rotation makes a new sealed key, pins refuse the old one, a reopen finds the new one.
    let started = Instant::now();
    let rotated = keys.rotate(Role::Tls).expect("rotate");
    println!(
        "rotate tls (unseal, new key, wrap): {:?}",
        started.elapsed()
    );
    assert_ne!(rotated, tls);
    assert_eq!(keys.public_key(Role::Tls), rotated);
    assert!(matches!(
        keys.sign_pinned(Role::Tls, &tls, b"x"),
        Err(KeyError::KeyRotated { role: Role::Tls })
    ));
    let signature = keys
        .sign_pinned(Role::Tls, &rotated, b"pinned")
        .expect("sign");
    assert!(verifies(&rotated, b"pinned", &signature));
    assert_ne!(
        std::fs::read(keys_dir.join("tls.sealed")).expect("tls.sealed"),
        blob
    );
    assert_tls_key_in_no_file(&state, &rotated);
    assert_nothing_loaded(&tcti, "rotate");
    drop(keys);
    let keys = KeyManager::open(&sealed(&tcti)).expect("reopen");
    assert_eq!(keys.public_key(Role::Tls), rotated);

    // The storage secret is sealed to PCR 16, and so is the TLS key. A running manager keeps
    // signing with the key it holds, but cannot make a new one; a new one cannot open it.
    extend_pcr16(&tcti);
    let signature = keys.sign(Role::Tls, b"still in memory").expect("sign");
    assert!(verifies(&rotated, b"still in memory", &signature));
    assert!(matches!(
        keys.rotate(Role::Tls),
        Err(KeyError::PcrPolicyFailed { .. })
    ));
    assert_eq!(keys.public_key(Role::Tls), rotated);
    drop(keys);
    let error = KeyManager::open(&sealed(&tcti)).expect_err("PCR 16 changed");
    println!("open after extending PCR 16: {error}");
    assert!(
        matches!(error, KeyError::SealedTlsKeyLocked { ref pcrs } if pcrs.indices() == [16]),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("sealed TLS key cannot be opened"), "{text}");
    assert!(text.contains("PCRs sha256:16"), "{text}");
    assert!(matches!(
        KeyManager::open_with_new_tls_key(&sealed(&tcti)),
        Err(KeyError::PcrPolicyFailed { .. })
    ));
    assert_nothing_loaded(&tcti, "a failed unseal");

    // Back in the sealed state (restart: PCRs reset), the key opens again.
    drop(swtpm);
    let swtpm = Swtpm::start(&tpm_state);
    let tcti = swtpm.tcti();
    let keys = KeyManager::open(&sealed(&tcti)).expect("PCR 16 back");
    assert_eq!(keys.public_key(Role::Tls), rotated);
    drop(keys);

    // Switching modes is explicit and makes a new key: to `in-tpm` ...
    let keys = KeyManager::open_with_new_tls_key(&in_tpm(&tcti)).expect("switch to in-tpm");
    let in_tpm_key = keys.public_key(Role::Tls);
    assert_ne!(in_tpm_key, rotated);
    assert_eq!(keys.public_key(Role::Audit), publics[1]);
    assert_eq!(keys.status().tls_mode, Some(TlsKeyMode::InTpm));
    sign_and_verify_every_role(&keys);
    assert_nothing_loaded(&tcti, "switching to in-tpm");
    drop(keys);
    let names = file_names(&keys_dir);
    assert!(names.contains(&"tls.tpm".to_owned()), "{names:?}");
    assert!(!names.contains(&"tls.sealed".to_owned()), "{names:?}");
    assert!(matches!(
        KeyManager::open(&sealed(&tcti)),
        Err(KeyError::TlsModeMismatch { .. })
    ));
    assert_eq!(
        KeyManager::open(&in_tpm(&tcti))
            .expect("open in-tpm")
            .public_key(Role::Tls),
        in_tpm_key
    );

    // ... and back to `sealed`.
    let keys = KeyManager::open_with_new_tls_key(&sealed(&tcti)).expect("switch to sealed");
    let back = keys.public_key(Role::Tls);
    assert_ne!(back, in_tpm_key);
    assert_eq!(keys.status().tls_mode, Some(TlsKeyMode::Sealed));
    sign_and_verify_every_role(&keys);
    drop(keys);
    let names = file_names(&keys_dir);
    assert!(names.contains(&"tls.sealed".to_owned()), "{names:?}");
    assert!(!names.contains(&"tls.tpm".to_owned()), "{names:?}");
    assert_tls_key_in_no_file(&state, &back);

    // A damaged sealed key is refused at open.
    let path = keys_dir.join("tls.sealed");
    let good = std::fs::read(&path).expect("read");
    let mut bad = good.clone();
    bad[20] ^= 0x01;
    std::fs::write(&path, &bad).expect("write");
    let error = KeyManager::open(&sealed(&tcti)).expect_err("damaged");
    println!("damaged tls.sealed: {error}");
    assert!(matches!(error, KeyError::Corrupt { .. }), "{error:?}");
    std::fs::write(&path, &good).expect("write");
    assert_eq!(
        KeyManager::open(&sealed(&tcti))
            .expect("repaired")
            .public_key(Role::Tls),
        back
    );

    // While the PCRs differ, the way back to TLS is a new key in the TPM: that needs no unseal.
    extend_pcr16(&tcti);
    assert!(matches!(
        KeyManager::open(&sealed(&tcti)),
        Err(KeyError::SealedTlsKeyLocked { .. })
    ));
    let keys = KeyManager::open_with_new_tls_key(&in_tpm(&tcti)).expect("way out");
    let fallback = keys.public_key(Role::Tls);
    let signature = keys.sign(Role::Tls, b"TLS again").expect("sign");
    assert!(verifies(&fallback, b"TLS again", &signature));
    assert!(matches!(
        keys.unwrap("recording/room-1", &[1; 40]),
        Err(KeyError::PcrPolicyFailed { .. })
    ));
    assert!(!keys_dir.join("tls.sealed").exists());
    assert_nothing_loaded(&tcti, "the end");
}
