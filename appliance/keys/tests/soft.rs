//! The soft (development) backend: the same interface as the TPM backend, keys in files.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{files_holding_the_private_key, files_holding_the_secret, list_files, verifies};
use kammer_keys::{Backend, KeyConfig, KeyError, KeyLocation, KeyManager, Role, TlsKeyMode};

const LABEL: &str = "recording/room-1";
const DATA_KEY: &[u8; 32] = b"a 32-byte data key for the test.";

#[test]
fn soft_key_lifecycle() {
    let state = tempfile::tempdir().expect("tempdir");
    let config = KeyConfig::new(state.path(), Backend::Soft);
    assert!(matches!(
        KeyManager::open(&config),
        Err(KeyError::NotInitialized { .. })
    ));
    let keys = KeyManager::init(&config).expect("init");

    // Status says loudly that this is insecure.
    let status = keys.status();
    assert!(status.is_insecure());
    assert_eq!(status.storage.pcrs, None);
    let text = status.to_string();
    println!("{text}");
    assert!(text.contains("INSECURE"), "{text}");
    // The TLS key mode means nothing here.
    assert_eq!(status.tls_mode, None);
    assert!(text.contains("tls key mode: none (soft backend"), "{text}");
    for entry in &status.roles {
        assert!(matches!(&entry.location, KeyLocation::File(p) if p.exists()));
    }

    // Sign and verify in software; wrap and unwrap.
    for role in Role::ALL {
        let signature = keys.sign(role, b"a record").expect("sign");
        assert!(verifies(&keys.public_key(role), b"a record", &signature));
    }
    let blob = keys.wrap(LABEL, DATA_KEY).expect("wrap");
    assert_eq!(
        keys.unwrap(LABEL, &blob).expect("unwrap").as_bytes(),
        DATA_KEY
    );
    let mut tampered = blob.clone();
    tampered[0] = 2;
    assert!(matches!(
        keys.unwrap(LABEL, &tampered),
        Err(KeyError::Unwrap)
    ));
    assert!(matches!(keys.unwrap("other", &blob), Err(KeyError::Unwrap)));
    assert!(matches!(
        keys.wrap("kammer/tls-key", DATA_KEY),
        Err(KeyError::ReservedLabel { .. })
    ));
    assert!(matches!(keys.random(4097), Err(KeyError::TooLarge { .. })));
    assert_eq!(keys.random(4096).expect("random").len(), 4096);

    // Rotation, then reopen: the same (rotated) keys.
    let tls = keys.rotate(Role::Tls).expect("rotate");
    let publics: Vec<_> = Role::ALL.iter().map(|&r| keys.public_key(r)).collect();
    assert_eq!(publics[0], tls);
    drop(keys);
    let keys = KeyManager::open(&config).expect("reopen");
    for (role, public) in Role::ALL.iter().zip(&publics) {
        assert_eq!(keys.public_key(*role), *public);
    }
    assert_eq!(
        keys.unwrap(LABEL, &blob).expect("unwrap").as_bytes(),
        DATA_KEY
    );

    // Every key file is private, and the storage secret is in one of them: the positive
    // control for the TPM test's search, which must find nothing.
    let dir = state.path().join("keys");
    let mode = std::fs::metadata(&dir)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    for (path, _) in list_files(&dir) {
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
    assert_eq!(
        files_holding_the_secret(state.path(), LABEL, &blob),
        [dir.join("storage.key")]
    );
    // The same for the private key search of the sealed TLS key test: here the key is a file.
    assert_eq!(
        files_holding_the_private_key(state.path(), &publics[0]),
        [dir.join("tls.p8")]
    );

    // Either TLS key mode opens the same files; nothing records a mode. A new TLS key is a
    // rotation.
    let sealed = config.clone().with_tls_mode(TlsKeyMode::Sealed);
    let keys = KeyManager::open(&sealed).expect("open, mode ignored");
    assert_eq!(keys.public_key(Role::Tls), publics[0]);
    drop(keys);
    assert!(!dir.join("tls.mode").exists());
    let keys = KeyManager::open_with_new_tls_key(&sealed).expect("new TLS key");
    assert_ne!(keys.public_key(Role::Tls), publics[0]);
    assert_eq!(keys.public_key(Role::Audit), publics[1]);
    drop(keys);

    // A damaged key file is refused.
    std::fs::write(dir.join("media.p8"), b"not a key").expect("write");
    assert!(matches!(
        KeyManager::open(&config),
        Err(KeyError::Corrupt { .. })
    ));
}
