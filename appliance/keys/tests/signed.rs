//! The storage secret sealed to a signed PCR policy (TPM2_PolicyAuthorize), against a real
//! swtpm: RSA keys made with the `openssl` command line, signature files written the way
//! `systemd-measure sign` writes them (and, in the second test, by `systemd-measure` itself).
//!
//! Each scenario runs in one test with its own swtpm (no resource manager: one manager at a
//! time).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Swtpm, assert_nothing_loaded, list_files, tpm, with_quiet_tss};
use kammer_keys::{
    Backend, KeyConfig, KeyError, KeyManager, PcrPolicy, SignedPcrPolicy, Tcti, TlsKeyMode,
};
use tss_esapi::handles::PcrHandle;
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{Digest, DigestValues, PcrSelectionListBuilder, PcrSlot};

const LABEL: &str = "recording-key";
const SYSTEMD_MEASURE: &str = "/usr/lib/systemd/systemd-measure";

fn sha256(bytes: &[u8]) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .try_into()
        .expect("32 bytes")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn run(command: &mut Command) -> Vec<u8> {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// An RSA-2048 key pair made with the openssl command line: (private key, public key PEM as
/// `openssl rsa -pubout` writes it).
fn rsa_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pem"));
    run(Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&private)
        .arg("2048")
        .stderr(std::process::Stdio::null()));
    run(Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public));
    (private, public)
}

/// SHA-256 of the key's PKCS#1 RSAPublicKey DER: the `pkfp` of a signature entry.
fn pkfp(public: &Path) -> String {
    let der = run(Command::new("openssl")
        .args([
            "rsa",
            "-pubin",
            "-RSAPublicKey_out",
            "-outform",
            "DER",
            "-in",
        ])
        .arg(public));
    hex(&sha256(&der))
}

/// The TPM2_PolicyPCR digest (from the empty policy) of SHA-256 PCR `index` holding `value`,
/// computed here in software from the TPM 2.0 specification.
fn policy_pcr_digest(index: u8, value: &[u8; 32]) -> [u8; 32] {
    let mut selection = vec![0, 0, 0, 1, 0x00, 0x0b, 3, 0, 0, 0];
    selection[7 + usize::from(index / 8)] = 1 << (index % 8);
    let mut message = vec![0; 32];
    message.extend_from_slice(&0x0000_017f_u32.to_be_bytes()); // TPM_CC_PolicyPCR
    message.extend_from_slice(&selection);
    message.extend_from_slice(&sha256(value));
    sha256(&message)
}

/// One signature entry as systemd-measure writes it: `private` signs SHA-256(`policy`) with
/// RSASSA-PKCS1-v1_5; `pkfp_of` names the key the entry claims.
fn entry(work: &Path, private: &Path, pkfp_of: &Path, policy: &[u8; 32]) -> String {
    let input = work.join("policy.bin");
    std::fs::write(&input, policy).expect("write the policy digest");
    let signature = run(Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(private)
        .arg(&input));
    let base64 = run(Command::new("openssl").args(["base64", "-A", "-in"]).arg({
        let path = work.join("signature.bin");
        std::fs::write(&path, signature).expect("write the signature");
        path
    }));
    format!(
        r#"{{"pcrs":[11],"pkfp":"{}","pol":"{}","sig":"{}"}}"#,
        pkfp(pkfp_of),
        hex(policy),
        String::from_utf8(base64).expect("base64 is ASCII").trim()
    )
}

fn write_signature(path: &Path, entries: &[String]) {
    std::fs::write(path, format!(r#"{{"sha256":[{}]}}"#, entries.join(",")))
        .expect("write the signature file");
}

fn extend(tcti: &Tcti, pcr: PcrHandle, data: &[u8]) {
    let mut values = DigestValues::new();
    values.set(
        HashingAlgorithm::Sha256,
        Digest::try_from(sha256(data).to_vec()).expect("digest"),
    );
    tpm(tcti)
        .execute_with_session(Some(AuthSession::Password), |ctx| {
            ctx.pcr_extend(pcr, values)
        })
        .expect("extend a PCR");
}

fn read_pcr11(tcti: &Tcti) -> [u8; 32] {
    let selection = PcrSelectionListBuilder::new()
        .with_selection(HashingAlgorithm::Sha256, &[PcrSlot::Slot11])
        .build()
        .expect("selection");
    let (_, _, digests) = tpm(tcti)
        .execute_without_session(|ctx| ctx.pcr_read(selection))
        .expect("TPM2_PCR_Read");
    digests.value()[0]
        .value()
        .try_into()
        .expect("a SHA-256 PCR")
}

fn config(state: &Path, tcti: &Tcti, literal: &[u8], public: &Path, signature: &Path) -> KeyConfig {
    let signed = SignedPcrPolicy::new(
        public,
        signature,
        PcrPolicy::new(SignedPcrPolicy::DEFAULT_PCRS).expect("valid PCRs"),
    )
    .expect("absolute paths");
    KeyConfig::new(
        state,
        Backend::Tpm {
            tcti: tcti.clone(),
            pcrs: PcrPolicy::new(literal.iter().copied()).expect("valid PCRs"),
            signed: Some(signed),
        },
    )
}

fn unwraps(keys: &KeyManager, blob: &[u8]) -> Result<Vec<u8>, KeyError> {
    keys.unwrap(LABEL, blob)
        .map(|secret| secret.as_bytes().to_vec())
}

/// Installs a signature file of `entries`, opens the key manager and returns why it refuses to
/// unwrap `blob` (the refusal is printed, as the test's evidence).
fn refused_with(
    signature: &Path,
    entries: &[String],
    config: &KeyConfig,
    blob: &[u8],
    what: &str,
) -> KeyError {
    write_signature(signature, entries);
    let keys = KeyManager::open(config).expect("open");
    let error = unwraps(&keys, blob).expect_err(what);
    println!("{error}");
    error
}

#[test]
fn signed_policy_lifecycle() {
    with_quiet_tss("signed_policy_lifecycle", signed_scenario);
}

fn signed_scenario() {
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let state = work.join("state");
    let swtpm = Swtpm::start(&work.join("swtpm"));
    let tcti = swtpm.tcti();
    let (release_key, release_pem) = rsa_key(work, "release");
    let (other_key, other_pem) = rsa_key(work, "other");
    let signature = work.join("tpm2-pcr-signature.json");
    let signed = |literal: &[u8]| config(&state, &tcti, literal, &release_pem, &signature);

    // Release 1 booted: PCR 11 holds its measurement. The signature file approves several
    // values (boot phases); one of them is the current one.
    extend(&tcti, PcrHandle::Pcr11, b"release 1");
    let release1 = read_pcr11(&tcti);
    write_signature(
        &signature,
        &[
            entry(
                work,
                &release_key,
                &release_pem,
                &policy_pcr_digest(11, &[7; 32]),
            ),
            entry(
                work,
                &release_key,
                &release_pem,
                &policy_pcr_digest(11, &release1),
            ),
            entry(
                work,
                &release_key,
                &release_pem,
                &policy_pcr_digest(11, &[9; 32]),
            ),
        ],
    );
    let keys = KeyManager::init(&signed(&[])).expect("init with a signed policy");
    assert_nothing_loaded(&tcti, "init");
    let blob = keys.wrap(LABEL, b"a recording key").expect("wrap");
    assert_eq!(unwraps(&keys, &blob).expect("unwrap"), b"a recording key");
    assert_nothing_loaded(&tcti, "unwrap");
    let status = keys.status();
    let text = status.to_string();
    println!("{text}");
    let shown = status.storage.signed.as_ref().expect("the signed policy");
    assert_eq!(shown.pkfp, pkfp(&release_pem));
    assert_eq!(shown.approvals, 3);
    assert_eq!(shown.pcrs.indices(), [11]);
    assert!(
        text.contains("sealed to PCRs sha256:11 as approved by RSA-2048 key sha256:")
            && text.contains(&shown.pkfp),
        "{text}"
    );
    let keys_dir = state.join("keys");
    assert_eq!(
        std::fs::read_to_string(keys_dir.join("storage.signed")).expect("storage.signed"),
        format!("sha256:11 {}\n", pkfp(&release_pem))
    );
    let sealed_object = std::fs::read(keys_dir.join("storage.tpm")).expect("storage.tpm");

    // A foreign or modified image: PCR 11 holds a value nobody signed.
    extend(&tcti, PcrHandle::Pcr11, b"a modified kernel");
    let error = unwraps(&keys, &blob).expect_err("an unsigned PCR 11");
    assert!(matches!(error, KeyError::PcrsNotApproved { .. }), "{error}");
    println!("{error}");
    assert!(
        error
            .to_string()
            .contains("not approved by the signing key")
    );
    assert_nothing_loaded(&tcti, "a refused unwrap");
    drop(keys);

    // Release 2, signed with the same key: its signature file approves the new PCR 11, and
    // the secret unseals without resealing.
    let release2 = read_pcr11(&tcti);
    write_signature(
        &signature,
        &[entry(
            work,
            &release_key,
            &release_pem,
            &policy_pcr_digest(11, &release2),
        )],
    );
    let keys = KeyManager::open(&signed(&[])).expect("open release 2");
    assert_eq!(
        unwraps(&keys, &blob).expect("unwrap on release 2"),
        b"a recording key"
    );
    assert_eq!(
        std::fs::read(keys_dir.join("storage.tpm")).expect("storage.tpm"),
        sealed_object,
        "not resealed"
    );
    drop(keys);

    // A signature file of another key (its own pkfp): refused.
    let error = refused_with(
        &signature,
        &[entry(
            work,
            &other_key,
            &other_pem,
            &policy_pcr_digest(11, &release2),
        )],
        &signed(&[]),
        &blob,
        "another key",
    );
    assert!(
        matches!(error, KeyError::PcrSignatureOtherKey { .. }),
        "{error}"
    );

    // Another key's signature claiming to be the release key's: the TPM rejects it.
    let error = refused_with(
        &signature,
        &[entry(
            work,
            &other_key,
            &release_pem,
            &policy_pcr_digest(11, &release2),
        )],
        &signed(&[]),
        &blob,
        "a forged signature",
    );
    assert!(
        matches!(error, KeyError::PcrSignatureInvalid { .. }),
        "{error}"
    );
    assert_nothing_loaded(&tcti, "a rejected signature");

    // Missing and malformed files: clear errors at open.
    std::fs::write(&signature, "{\"sha256\": [").expect("write");
    let error = KeyManager::open(&signed(&[])).expect_err("malformed");
    assert!(
        matches!(error, KeyError::PcrSignatureFile { .. }),
        "{error}"
    );
    println!("{error}");
    std::fs::remove_file(&signature).expect("remove");
    let error = KeyManager::open(&signed(&[])).expect_err("missing");
    assert!(
        matches!(error, KeyError::PcrSignatureFile { .. }),
        "{error}"
    );
    println!("{error}");
    let error = KeyManager::open(&config(
        &state,
        &tcti,
        &[],
        &work.join("missing.pem"),
        &signature,
    ))
    .expect_err("no key");
    assert!(matches!(error, KeyError::PcrPublicKey { .. }), "{error}");
    println!("{error}");

    // The configuration must name the policy the secret is sealed to.
    write_signature(
        &signature,
        &[entry(
            work,
            &release_key,
            &release_pem,
            &policy_pcr_digest(11, &release2),
        )],
    );
    let unsigned = KeyConfig::new(
        &state,
        Backend::Tpm {
            tcti: tcti.clone(),
            pcrs: PcrPolicy::none(),
            signed: None,
        },
    );
    let error = KeyManager::open(&unsigned).expect_err("the signed policy is not configured");
    assert!(
        matches!(error, KeyError::SignedPolicyConfigMismatch { .. }),
        "{error}"
    );
    let error = KeyManager::open(&config(&state, &tcti, &[], &other_pem, &signature))
        .expect_err("another key is configured");
    assert!(
        matches!(error, KeyError::SignedPolicyConfigMismatch { .. }),
        "{error}"
    );
    println!("{error}");

    // Combined with a literal PCR 7, in a new key state: both must hold.
    let state7 = work.join("state7");
    let combined = config(&state7, &tcti, &[7], &release_pem, &signature);
    let keys = KeyManager::init(&combined.clone().with_tls_mode(TlsKeyMode::Sealed))
        .expect("init with PCR 7 and the signed policy");
    let blob7 = keys.wrap(LABEL, b"another key").expect("wrap");
    assert_eq!(unwraps(&keys, &blob7).expect("unwrap"), b"another key");
    let text = keys.status().to_string();
    assert!(text.contains("and to PCRs sha256:7"), "{text}");
    assert!(
        list_files(&state7.join("keys"))
            .iter()
            .any(|(path, _)| path.ends_with("storage.signed"))
    );
    extend(&tcti, PcrHandle::Pcr7, b"another Secure Boot policy");
    let error = unwraps(&keys, &blob7).expect_err("PCR 7 changed");
    assert!(
        matches!(&error, KeyError::PcrPolicyFailed { pcrs } if pcrs.indices() == [7]),
        "{error}"
    );
    println!("{error}");
    drop(keys);
    // The sealed TLS key, wrapped under that secret, is locked too.
    let error =
        KeyManager::open(&combined.with_tls_mode(TlsKeyMode::Sealed)).expect_err("PCR 7 changed");
    assert!(
        matches!(error, KeyError::SealedTlsKeyLocked { .. }),
        "{error}"
    );
    assert_nothing_loaded(&tcti, "the end");
}

/// The signature file made by `systemd-measure sign` itself, for a UKI of two sections,
/// against PCR 11 extended the way systemd-stub and systemd-pcrphase measure such a UKI.
#[test]
fn systemd_measure_signature() {
    with_quiet_tss("systemd_measure_signature", systemd_measure_scenario);
}

fn systemd_measure_scenario() {
    assert!(
        Path::new(SYSTEMD_MEASURE).exists(),
        "{SYSTEMD_MEASURE} is missing (the systemd package, 252 or later, provides it)"
    );
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let swtpm = Swtpm::start(&work.join("swtpm"));
    let tcti = swtpm.tcti();
    let (private, public) = rsa_key(work, "release");
    let (linux, osrel) = (work.join("linux"), work.join("osrel"));
    std::fs::write(&linux, b"a kernel\n").expect("write");
    std::fs::write(&osrel, b"ID=kammer\n").expect("write");
    let json = run(Command::new(SYSTEMD_MEASURE)
        .arg("sign")
        .arg(format!("--linux={}", linux.display()))
        .arg(format!("--osrel={}", osrel.display()))
        .arg("--bank=sha256")
        .arg(format!("--private-key={}", private.display()))
        .arg(format!("--public-key={}", public.display()))
        .arg(format!("--tpm2-device={tcti}"))
        .arg("--json=short")
        .env("SYSTEMD_LOG_LEVEL", "err"));
    let signature = work.join("tpm2-pcr-signature.json");
    std::fs::write(&signature, &json).expect("write the signature file");
    println!("{}", String::from_utf8_lossy(&json));

    // What systemd-stub measures into PCR 11 for each section: its name (with the NUL), then
    // its contents; then the boot phase words.
    for (name, file) in [(".linux", &linux), (".osrel", &osrel)] {
        extend(&tcti, PcrHandle::Pcr11, format!("{name}\0").as_bytes());
        extend(
            &tcti,
            PcrHandle::Pcr11,
            &std::fs::read(file).expect("read a section"),
        );
    }
    extend(&tcti, PcrHandle::Pcr11, b"enter-initrd");

    let state = work.join("state");
    let config = config(&state, &tcti, &[], &public, &signature);
    let keys = KeyManager::init(&config).expect("init");
    assert_eq!(keys.status().storage.signed.expect("signed").approvals, 4);
    let blob = keys.wrap(LABEL, b"a recording key").expect("wrap");
    assert_eq!(
        unwraps(&keys, &blob).expect("unwrap in the initrd phase"),
        b"a recording key"
    );
    // The next boot phase is signed too.
    extend(&tcti, PcrHandle::Pcr11, b"leave-initrd");
    assert_eq!(
        unwraps(&keys, &blob).expect("unwrap after the initrd"),
        b"a recording key"
    );
    // A phase nobody signed.
    extend(&tcti, PcrHandle::Pcr11, b"something else");
    let error = unwraps(&keys, &blob).expect_err("an unsigned phase");
    assert!(matches!(error, KeyError::PcrsNotApproved { .. }), "{error}");
    assert_nothing_loaded(&tcti, "the end");
}
