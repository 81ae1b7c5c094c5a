//! Every rule of the validator, one message each.

use super::*;

const MINIMAL: &str = r#"
[server]
listen = "127.0.0.1:8443"
state_dir = "/var/lib/kammer"

[tls]
certificate = "/etc/kammer/server.pem"
private_key = "/etc/kammer/server.key"
"#;

fn problems(text: &str) -> Vec<String> {
    match Config::from_toml(text, false) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(error) => error.problems.iter().map(ToString::to_string).collect(),
    }
}

fn one_problem(text: &str) -> String {
    let problems = problems(text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    problems.into_iter().next().expect("one")
}

fn with(extra: &str) -> String {
    format!("{MINIMAL}\n{extra}")
}

#[test]
fn minimal_file_gets_the_documented_defaults() {
    let config = Config::from_toml(MINIMAL, false).expect("valid");
    assert_eq!(
        config.listen,
        "127.0.0.1:8443".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!(config.tls12, Tls12::Refused);
    assert!(config.metrics_allow.is_none());
    assert_eq!(config.limits, Limits::default());
    assert_eq!(config.outbound_queue, 256);
    assert_eq!(config.max_tcp_connections, 2048);
    assert_eq!(config.rooms, RoomPolicy::default());
    assert_eq!(config.log_level, LogLevel::Info);
    assert_eq!(config.log_format, LogFormat::Text);
}

#[test]
fn every_key_can_be_set() {
    let text = r#"
[server]
listen = "[::]:443"
state_dir = "/srv/kammer"
max_connections = 100

[tls]
certificate = "/c.pem"
private_key = "/k.pem"
allow_tls12 = true

[metrics]
enabled = true
allow = ["10.1.0.0/16", "192.0.2.7"]

[signalling]
max_message_bytes = 32768
messages_per_second = 10
message_burst = 20
chat_per_10s = 3
chat_max_chars = 500
max_participants_per_room = 12
max_connections = 300
idle_timeout_secs = 120
max_join_attempts = 3
outbound_queue = 64

[rooms]
allow_ad_hoc = true
lobby_by_default = false

[log]
level = "debug"
format = "json"

[media]
enabled = true
listen = "[::]:3480"
announce = ["192.0.2.10", "2001:db8::10"]
max_participants = 50
"#;
    let config = Config::from_toml(text, false).expect("valid");
    let media = config.media.clone().expect("media");
    assert_eq!(
        media.listen,
        "[::]:3480".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!(media.announce.len(), 2);
    assert_eq!(media.max_participants, 50);
    assert_eq!(
        config.listen,
        "[::]:443".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!(config.max_tcp_connections, 100);
    assert_eq!(config.tls12, Tls12::Allowed);
    assert_eq!(
        config.metrics_allow,
        Some(vec![
            "10.1.0.0/16".parse().expect("net"),
            "192.0.2.7/32".parse().expect("net")
        ])
    );
    assert_eq!(
        config.limits,
        Limits {
            max_message_bytes: 32768,
            messages_per_second: 10,
            message_burst: 20,
            chat_per_10s: 3,
            chat_max_chars: 500,
            max_participants_per_room: 12,
            max_connections: 300,
            idle_timeout: Duration::from_secs(120),
            max_join_attempts: 3,
        }
    );
    assert_eq!(config.outbound_queue, 64);
    assert!(config.rooms.allow_ad_hoc_rooms);
    assert!(!config.rooms.lobby_by_default);
    assert_eq!(config.log_level, LogLevel::Debug);
    assert_eq!(config.log_format, LogFormat::Json);
}

#[test]
fn unknown_keys_are_named_with_their_line() {
    let text = MINIMAL.replace("listen =", "lisen =");
    let problem = one_problem(&text);
    assert!(
        problem.starts_with("line 3: server.lisen: unknown key `lisen`"),
        "{problem}"
    );
    assert!(problem.contains("listen"), "{problem}");

    let problem = one_problem(&with("[signaling]\nmax_message_bytes = 1"));
    assert!(
        problem.contains("signaling: unknown key `signaling`"),
        "{problem}"
    );

    let problem = one_problem(&with("[signalling]\nmax_msg = 1"));
    assert!(
        problem.contains("signalling.max_msg: unknown key"),
        "{problem}"
    );
}

#[test]
fn wrong_types_are_named() {
    let problem = one_problem(&with("[signalling]\nmax_message_bytes = \"16k\""));
    assert!(
        problem
            .contains("signalling.max_message_bytes: invalid type: string \"16k\"; expected i64"),
        "{problem}"
    );
    let problem = one_problem(&MINIMAL.replace("[tls]", "[tls]\nallow_tls12 = 1"));
    assert!(
        problem.contains("tls.allow_tls12: invalid type: integer `1`; expected a boolean"),
        "{problem}"
    );
    let problem = one_problem(&with("[metrics]\nenabled = \"yes\""));
    assert!(
        problem.contains("metrics.enabled: invalid type: string"),
        "{problem}"
    );
    let problem = one_problem(&with("[rooms]\nlobby_by_default = 0"));
    assert!(
        problem.contains("rooms.lobby_by_default: invalid type: integer"),
        "{problem}"
    );
    // A second [tls] table is a TOML error, reported with its line.
    let problem = one_problem(&with("[tls]\nallow_tls12 = true"));
    assert!(problem.starts_with("line "), "{problem}");
    let problem = one_problem(&MINIMAL.replace(
        "state_dir = \"/var/lib/kammer\"",
        "state_dir = \"/x\"\nmax_connections = true",
    ));
    assert!(
        problem.contains("server.max_connections: invalid type: boolean"),
        "{problem}"
    );
}

#[test]
fn enumerations_list_their_values() {
    let problem = one_problem(&with("[log]\nlevel = \"loud\""));
    assert!(
        problem.contains("log.level: unknown variant `loud`"),
        "{problem}"
    );
    assert!(problem.contains("warn"), "{problem}");
    let problem = one_problem(&with("[log]\nformat = \"xml\""));
    assert!(
        problem.contains("log.format: unknown variant `xml`"),
        "{problem}"
    );
}

#[test]
fn syntax_errors_give_a_line() {
    let problem = one_problem("[server\nlisten = 1");
    assert!(problem.starts_with("line 1:"), "{problem}");
}

#[test]
fn required_keys_are_named() {
    assert_eq!(problems(""), ["server: is required", "tls: is required"]);
    let text = "[server]\n[tls]\n";
    assert_eq!(
        problems(text),
        [
            "server.listen: is required",
            "server.state_dir: is required",
            "tls.certificate: is required",
            "tls.private_key: is required",
        ]
    );
}

#[test]
fn bad_addresses_are_explained() {
    let problem = one_problem(&MINIMAL.replace("127.0.0.1:8443", "localhost"));
    assert_eq!(
        problem,
        "server.listen: \"localhost\" is not an address with port, such as \"0.0.0.0:443\" or \"[::]:443\""
    );
}

#[test]
fn every_range_is_checked() {
    for (table, key, bad, range) in [
        ("server", "max_connections", "1", "16 to 1000000"),
        ("signalling", "max_message_bytes", "100", "1024 to 1048576"),
        ("signalling", "messages_per_second", "0", "1 to 1000"),
        ("signalling", "message_burst", "0", "1 to 10000"),
        ("signalling", "chat_per_10s", "101", "1 to 100"),
        ("signalling", "chat_max_chars", "0", "1 to 100000"),
        ("signalling", "max_participants_per_room", "1", "2 to 10000"),
        ("signalling", "max_connections", "-5", "1 to 1000000"),
        ("signalling", "idle_timeout_secs", "20", "30 to 86400"),
        ("signalling", "max_join_attempts", "0", "1 to 1000"),
        ("signalling", "outbound_queue", "8", "16 to 65536"),
    ] {
        let text = if table == "server" {
            MINIMAL.replace(
                "state_dir = \"/var/lib/kammer\"",
                &format!("state_dir = \"/x\"\n{key} = {bad}"),
            )
        } else {
            with(&format!("[{table}]\n{key} = {bad}"))
        };
        let problems = problems(&text);
        let expected = format!("{table}.{key}: {bad} is out of range; allowed are {range}");
        assert!(problems.contains(&expected), "{expected}\n{problems:#?}");
    }
}

#[test]
fn cross_field_rules() {
    let problem = one_problem(&with(
        "[signalling]\nmessages_per_second = 50\nmessage_burst = 10",
    ));
    assert_eq!(
        problem,
        "signalling.message_burst: must be at least signalling.messages_per_second"
    );
    let problem = one_problem(&with("[signalling]\nmax_message_bytes = 2048"));
    assert!(
        problem.starts_with("signalling.chat_max_chars: a text of 2000 characters may not fit"),
        "{problem}"
    );
}

#[test]
fn metrics_rules() {
    let problem = one_problem(&with("[metrics]\nenabled = true"));
    assert!(
        problem.starts_with("metrics.allow: must name at least one network"),
        "{problem}"
    );
    let problem = one_problem(&with(
        "[metrics]\nenabled = true\nallow = [\"127.0.0.1/8\", \"nonsense\"]",
    ));
    assert_eq!(
        problem,
        "metrics.allow[1]: \"nonsense\" is not an address or network such as \"10.0.0.0/8\""
    );
    let problem = one_problem(&with("[metrics]\nallow = [\"127.0.0.1\"]"));
    assert!(
        problem.starts_with("metrics.allow: is set but metrics.enabled is false"),
        "{problem}"
    );
}

#[test]
fn all_problems_are_reported_together() {
    let text = with(
        "[signalling]\nmax_message_bytes = 1\nidle_timeout_secs = 0\n[metrics]\nenabled = true",
    );
    let error = Config::from_toml(&text, false).expect_err("invalid");
    assert!(error.problems.len() >= 3, "{error}");
    assert!(error.to_string().starts_with(&format!(
        "{} problems in the configuration:",
        error.problems.len()
    )));
}

#[test]
fn missing_files_are_reported_when_checked() {
    let error = Config::from_toml(MINIMAL, true).expect_err("files do not exist");
    let text = error.to_string();
    assert!(
        text.contains("tls.certificate: /etc/kammer/server.pem cannot be read"),
        "{text}"
    );
    assert!(
        text.contains("tls.private_key: /etc/kammer/server.key cannot be read"),
        "{text}"
    );
}

#[test]
fn oversized_files_are_refused() {
    let text = format!("{MINIMAL}\n#{}", "x".repeat(MAX_CONFIG_BYTES));
    assert!(one_problem(&text).contains("larger than"));
}

#[test]
fn the_embedded_demo_defaults_are_valid() {
    let dir = std::env::temp_dir();
    let cert = dir.join("kammer-config-test-cert.pem");
    std::fs::write(&cert, "x").expect("write");
    let config = Config::demo(&dir, 0, &cert, &cert).expect("valid demo config");
    assert_eq!(config.listen.port(), 0);
    assert!(config.listen.ip().is_loopback());
    assert!(config.metrics_allow.is_some());
}

#[test]
fn rooms_without_ad_hoc_creation_are_refused_until_provisioning_exists() {
    let problem = one_problem(&with("[rooms]\nallow_ad_hoc = false"));
    assert!(
        problem.starts_with("rooms.allow_ad_hoc: false needs provisioned rooms"),
        "{problem}"
    );
}

#[test]
fn media_defaults_to_the_front_doors_address_on_port_10000() {
    let config = Config::from_toml(MINIMAL, false).expect("valid");
    let media = config.media.expect("media on by default");
    assert_eq!(
        media.listen,
        "127.0.0.1:10000".parse::<SocketAddr>().expect("addr")
    );
    assert!(media.announce.is_empty());
    assert_eq!(media.max_participants, 1000);
}

#[test]
fn media_on_a_wildcard_address_needs_announced_addresses() {
    let wildcard = MINIMAL.replace("127.0.0.1:8443", "0.0.0.0:443");
    let problem = one_problem(&wildcard);
    assert!(
        problem.starts_with("media.announce: must list the addresses clients reach"),
        "{problem}"
    );
    let config = Config::from_toml(
        &format!("{wildcard}\n[media]\nannounce = [\"192.0.2.10\"]"),
        false,
    )
    .expect("valid with an announced address");
    let media = config.media.expect("media");
    assert_eq!(
        media.listen,
        "0.0.0.0:10000".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!(
        media.announce,
        ["192.0.2.10".parse::<std::net::IpAddr>().expect("ip")]
    );
}

#[test]
fn media_values_are_checked_each_with_its_key() {
    let problems = problems(&with(
        "[media]\nlisten = \"udp\"\nannounce = [\"0.0.0.0\", \"somewhere\"]\nmax_participants = 0",
    ));
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("media.listen: \"udp\" is not an address"))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("media.announce[0]: \"0.0.0.0\" cannot be reached"))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("media.announce[1]: \"somewhere\" is not an IP address"))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("media.max_participants"))
    );
}

#[test]
fn media_can_be_switched_off() {
    let config = Config::from_toml(&with("[media]\nenabled = false"), false).expect("valid");
    assert!(config.media.is_none());
}

#[test]
fn keys_move_the_tls_key_into_the_key_manager() {
    let tpm = MINIMAL.replace("private_key = \"/etc/kammer/server.key\"\n", "")
        + "\n[keys]\nbackend = \"tpm\"\npcrs = [7, 11]\n";
    let config = Config::from_toml(&tpm, false).expect("valid");
    assert_eq!(config.tls_key, TlsKey::KeyManager);
    let Some(kammer_keys::Backend::Tpm { tcti, pcrs, signed }) = config.keys else {
        panic!("the TPM backend");
    };
    assert_eq!(tcti.to_string(), "device:/dev/tpmrm0", "the default device");
    assert_eq!(pcrs.indices(), [7, 11]);
    assert_eq!(
        signed, None,
        "no signed policy unless a public key is given"
    );
    assert_eq!(config.tls_key_mode, kammer_keys::TlsKeyMode::InTpm);
    let sealed =
        Config::from_toml(&format!("{tpm}tls_key_mode = \"sealed\"\n"), false).expect("valid");
    assert_eq!(sealed.tls_key_mode, kammer_keys::TlsKeyMode::Sealed);
    let wrong = format!("{tpm}tls_key_mode = \"in-ram\"\n");
    assert!(one_problem(&wrong).starts_with("keys.tls_key_mode: \"in-ram\" is not a mode"));

    let both = with("[keys]\nbackend = \"tpm\"\ntcti = \"swtpm:host=127.0.0.1,port=2321\"");
    assert!(
        one_problem(&both).starts_with("tls.private_key: the TLS key lives in the key manager"),
        "{both}"
    );
}

#[test]
fn keys_take_a_signed_pcr_policy() {
    let tpm = MINIMAL.replace("private_key = \"/etc/kammer/server.key\"\n", "")
        + "\n[keys]\nbackend = \"tpm\"\npcrs = [7]\n";
    let signed = format!("{tpm}pcr_public_key = \"/usr/lib/kammer/pcr-signing.pem\"\n");
    let config = Config::from_toml(&signed, false).expect("valid");
    let Some(kammer_keys::Backend::Tpm {
        pcrs,
        signed: Some(policy),
        ..
    }) = config.keys
    else {
        panic!("the TPM backend with a signed policy");
    };
    assert_eq!(pcrs.indices(), [7]);
    assert_eq!(
        policy.public_key(),
        Path::new("/usr/lib/kammer/pcr-signing.pem")
    );
    assert_eq!(
        policy.signature(),
        Path::new("/run/systemd/tpm2-pcr-signature.json"),
        "the default signature file"
    );
    assert_eq!(policy.pcrs().indices(), [11], "the default signed PCR");

    let explicit =
        format!("{signed}pcr_signature = \"/run/kammer/signature.json\"\nsigned_pcrs = [11, 12]\n");
    let config = Config::from_toml(&explicit, false).expect("valid");
    let Some(kammer_keys::Backend::Tpm {
        signed: Some(policy),
        ..
    }) = config.keys
    else {
        panic!("the TPM backend with a signed policy");
    };
    assert_eq!(policy.signature(), Path::new("/run/kammer/signature.json"));
    assert_eq!(policy.pcrs().indices(), [11, 12]);

    for (extra, problem) in [
        (
            "pcr_public_key = \"pcr.pem\"\n",
            "keys.pcr_public_key: \"pcr.pem\" is not an absolute path",
        ),
        (
            "pcr_public_key = \"/k.pem\"\npcr_signature = \"sig.json\"\n",
            "keys.pcr_signature: \"sig.json\" is not an absolute path",
        ),
        (
            "pcr_public_key = \"/k.pem\"\nsigned_pcrs = []\n",
            "keys.signed_pcrs: a signed PCR policy needs at least one PCR",
        ),
        (
            "pcr_public_key = \"/k.pem\"\nsigned_pcrs = [7]\n",
            "keys.signed_pcrs: PCR 7 is bound both literally and through signatures",
        ),
        (
            "pcr_public_key = \"/k.pem\"\nsigned_pcrs = [30]\n",
            "keys.signed_pcrs: PCR 30 does not exist",
        ),
        (
            "pcr_signature = \"/run/sig.json\"\n",
            "keys.pcr_signature: only applies with keys.pcr_public_key",
        ),
        (
            "signed_pcrs = [11]\n",
            "keys.signed_pcrs: only applies with keys.pcr_public_key",
        ),
    ] {
        let text = format!("{tpm}{extra}");
        let found = one_problem(&text);
        assert!(found.starts_with(problem), "{extra}: {found}");
    }
    let soft = MINIMAL.replace("private_key = \"/etc/kammer/server.key\"\n", "")
        + "\n[keys]\nbackend = \"soft\"\nallow_insecure_soft_keys = true\npcr_public_key = \"/k.pem\"\n";
    assert!(one_problem(&soft).starts_with("keys.backend: \"soft\" has no TPM"));
}

#[test]
fn soft_keys_need_the_explicit_switch() {
    let soft = MINIMAL.replace("private_key = \"/etc/kammer/server.key\"\n", "")
        + "\n[keys]\nbackend = \"soft\"\n";
    let problem = one_problem(&soft);
    assert!(
        problem.starts_with("keys.backend: \"soft\" keeps keys in files on disk, for development only; set keys.allow_insecure_soft_keys = true"),
        "{problem}"
    );
    let allowed = format!("{soft}allow_insecure_soft_keys = true\n");
    let config = Config::from_toml(&allowed, false).expect("valid with the switch");
    assert_eq!(config.keys, Some(kammer_keys::Backend::Soft));
}

#[test]
fn key_settings_are_checked_each_with_its_key() {
    let bad = MINIMAL.replace("private_key = \"/etc/kammer/server.key\"\n", "")
        + "\n[keys]\nbackend = \"tpm\"\ntcti = \"swtpm:host=192.0.2.1,port=2321\"\npcrs = [7, 24, -1]\nallow_insecure_soft_keys = true\n";
    let problems = problems(&bad);
    assert!(
        problems.iter().any(|p| p.starts_with("keys.tcti:")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("keys.pcrs[2]: -1 is not a PCR index")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("keys.pcrs: PCR 24 does not exist")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("keys.allow_insecure_soft_keys: only applies")),
        "{problems:#?}"
    );
    let unknown = MINIMAL.replace("private_key = \"/etc/kammer/server.key\"\n", "")
        + "\n[keys]\nbackend = \"hsm\"\n";
    assert!(one_problem(&unknown).starts_with("keys.backend: \"hsm\" is not a backend"));
}

#[test]
fn sandbox_and_dangerous_tables() {
    let config = Config::from_toml(MINIMAL, false).expect("valid");
    assert_eq!(config.sandbox_user, None);
    assert!(config.dangerous.enabled().is_empty());

    let set = with("[sandbox]\nuser = \"kammer-worker\"\n\n[dangerous]\ndisable_sandbox = true");
    let config = Config::from_toml(&set, false).expect("valid");
    assert_eq!(config.sandbox_user.as_deref(), Some("kammer-worker"));
    assert!(config.dangerous.disable_sandbox);
    assert_eq!(config.dangerous.enabled(), ["dangerous.disable_sandbox"]);

    let bad_user = with("[sandbox]\nuser = \"../root\"");
    let problem = one_problem(&bad_user);
    assert!(
        problem.contains("sandbox.user: \"../root\" is not an account name"),
        "{problem}"
    );
    let unknown = with("[dangerous]\nallow_everything = true");
    assert!(
        one_problem(&unknown).contains("allow_everything"),
        "{unknown}"
    );
    let wrong_type = with("[dangerous]\ndisable_sandbox = \"yes\"");
    let problem = one_problem(&wrong_type);
    assert!(
        problem.contains("dangerous.disable_sandbox: invalid type: string"),
        "{problem}"
    );
}
