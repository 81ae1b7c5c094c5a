//! The configuration file (TOML), documented key by key in docs/config.md.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use kammer_core::room::{Limits, RoomPolicy};
use kammer_server::tls::Tls12;
use serde::Deserialize;

/// Largest configuration file read, in bytes.
pub const MAX_CONFIG_BYTES: usize = 256 * 1024;

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key, e.g. `signalling.max_message_bytes`; empty for the file as a whole.
    pub key: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong, as a sentence fragment.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if self.key.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.key, self.reason)
        }
    }
}

/// Every problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, in the order of the keys.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        write!(
            f,
            "{count} problem{} in the configuration:",
            if count == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    fn single(key: &str, line: Option<usize>, reason: impl Into<String>) -> Self {
        Self {
            problems: vec![Problem {
                key: key.to_owned(),
                line,
                reason: reason.into(),
            }],
        }
    }
}

/// A validated configuration. Only [`Config::from_toml`] and [`Config::demo`] build one.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address and port of the TLS front door.
    pub listen: SocketAddr,
    /// Where the appliance keeps its state.
    pub state_dir: PathBuf,
    /// TCP connections served at once.
    pub max_tcp_connections: usize,
    /// PEM certificate chain.
    pub certificate: PathBuf,
    /// Where the TLS private key is.
    pub tls_key: TlsKey,
    /// The key manager; `None` without a `[keys]` table.
    pub keys: Option<kammer_keys::Backend>,
    /// Where the TLS key lives inside the key manager (`keys.tls_key_mode`).
    pub tls_key_mode: kammer_keys::TlsKeyMode,
    /// Whether TLS 1.2 is accepted.
    pub tls12: Tls12,
    /// `None`: `/metrics` is off; else the networks that may read it.
    pub metrics_allow: Option<Vec<IpNet>>,
    /// Limits of the signalling hub.
    pub limits: Limits,
    /// Messages queued per connection before a client counts as too slow.
    pub outbound_queue: usize,
    /// How rooms come to be.
    pub rooms: RoomPolicy,
    /// Log verbosity.
    pub log_level: LogLevel,
    /// Log format.
    pub log_format: LogFormat,
    /// The media plane; `None` when `media.enabled` is false.
    pub media: Option<MediaConfig>,
    /// The account the workers run as when the appliance is started as root (`sandbox.user`);
    /// `None`: `kammer`, or `nobody` for the demo when there is no `kammer` account.
    pub sandbox_user: Option<String>,
    /// `[dangerous]`: switches that weaken the appliance, reported wherever it reports itself.
    pub dangerous: Dangerous,
    _proof: Validated,
}

/// The `[dangerous]` table: development switches, each reported in the log, by `kammer
/// selfcheck` and in the web client's footer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dangerous {
    /// Run the processes without their sandboxes (no seccomp, Landlock, namespaces, uid switch
    /// or capability drop), for debugging with ptrace-based tools.
    pub disable_sandbox: bool,
}

impl Dangerous {
    /// The switches that are on, by their keys.
    pub fn enabled(self) -> Vec<&'static str> {
        let Self { disable_sandbox } = self;
        [("dangerous.disable_sandbox", disable_sandbox)]
            .into_iter()
            .filter_map(|(key, on)| on.then_some(key))
            .collect()
    }
}

/// Where the TLS server key lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsKey {
    /// A PEM file (`tls.private_key`).
    File(PathBuf),
    /// The key manager's `tls` key (`[keys]`), which never leaves it.
    KeyManager,
}

/// The validated `[media]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// Where the media UDP socket binds.
    pub listen: SocketAddr,
    /// Addresses written as host candidates; empty means the listen address (then not a
    /// wildcard).
    pub announce: Vec<std::net::IpAddr>,
    /// Participants with media at once.
    pub max_participants: usize,
}

/// Proof that a [`Config`] went through [`validate`]; nothing else can create one.
#[derive(Debug, Clone)]
struct Validated(());

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The name tracing's filter understands.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}

/// Log format on standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for collectors.
    Json,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: Option<RawServer>,
    tls: Option<RawTls>,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    signalling: RawSignalling,
    #[serde(default)]
    rooms: RawRooms,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    media: RawMedia,
    keys: Option<RawKeys>,
    #[serde(default)]
    sandbox: RawSandbox,
    #[serde(default)]
    dangerous: RawDangerous,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSandbox {
    user: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDangerous {
    disable_sandbox: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawKeys {
    backend: Option<String>,
    tcti: Option<String>,
    pcrs: Option<Vec<i64>>,
    pcr_public_key: Option<String>,
    pcr_signature: Option<String>,
    signed_pcrs: Option<Vec<i64>>,
    tls_key_mode: Option<String>,
    allow_insecure_soft_keys: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawMedia {
    enabled: bool,
    listen: Option<String>,
    announce: Vec<String>,
    max_participants: i64,
}

impl Default for RawMedia {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: None,
            announce: Vec::new(),
            max_participants: 1000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    state_dir: Option<PathBuf>,
    #[serde(default = "default_tcp_connections")]
    max_connections: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    certificate: Option<PathBuf>,
    private_key: Option<PathBuf>,
    #[serde(default)]
    allow_tls12: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    allow: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSignalling {
    max_message_bytes: i64,
    messages_per_second: i64,
    message_burst: i64,
    chat_per_10s: i64,
    chat_max_chars: i64,
    max_participants_per_room: i64,
    max_connections: i64,
    idle_timeout_secs: i64,
    max_join_attempts: i64,
    outbound_queue: i64,
}

impl Default for RawSignalling {
    fn default() -> Self {
        let limits = Limits::default();
        let wide = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        Self {
            max_message_bytes: wide(limits.max_message_bytes),
            messages_per_second: limits.messages_per_second.into(),
            message_burst: limits.message_burst.into(),
            chat_per_10s: limits.chat_per_10s.into(),
            chat_max_chars: wide(limits.chat_max_chars),
            max_participants_per_room: wide(limits.max_participants_per_room),
            max_connections: wide(limits.max_connections),
            idle_timeout_secs: i64::try_from(limits.idle_timeout.as_secs()).unwrap_or(i64::MAX),
            max_join_attempts: limits.max_join_attempts.into(),
            outbound_queue: 256,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRooms {
    allow_ad_hoc: bool,
    lobby_by_default: bool,
}

impl Default for RawRooms {
    fn default() -> Self {
        let policy = RoomPolicy::default();
        Self {
            allow_ad_hoc: policy.allow_ad_hoc_rooms,
            lobby_by_default: policy.lobby_by_default,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    level: LogLevel,
    format: LogFormat,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            level: LogLevel::Info,
            format: LogFormat::Text,
        }
    }
}

fn default_tcp_connections() -> i64 {
    2048
}

/// Collects problems while validating.
struct Check {
    problems: Vec<Problem>,
}

impl Check {
    fn fail(&mut self, key: &str, reason: impl Into<String>) {
        self.problems.push(Problem {
            key: key.to_owned(),
            line: None,
            reason: reason.into(),
        });
    }

    /// An integer in `min..=max`; on failure records the problem and returns `min`.
    fn range<T: TryFrom<i64>>(&mut self, key: &str, value: i64, min: i64, max: i64) -> T {
        let fallback = || T::try_from(min).ok().expect("minimum fits the target type");
        if value < min || value > max {
            self.fail(
                key,
                format!("{value} is out of range; allowed are {min} to {max}"),
            );
            return fallback();
        }
        T::try_from(value).unwrap_or_else(|_| fallback())
    }

    fn required<T>(&mut self, key: &str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            self.fail(key, "is required");
        }
        value
    }

    fn readable_file(&mut self, key: &str, path: &Path) {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => self.fail(key, format!("{} is not a regular file", path.display())),
            Err(error) => self.fail(key, format!("{} cannot be read: {error}", path.display())),
        }
    }
}

impl Config {
    /// Parses and validates a configuration file's text. `check_files` also checks that the
    /// files it names exist (the default for `serve` and `config check`).
    pub fn from_toml(text: &str, check_files: bool) -> Result<Self, ConfigError> {
        if text.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::single(
                "",
                None,
                format!("the file is larger than {MAX_CONFIG_BYTES} bytes"),
            ));
        }
        let raw = parse(text)?;
        validate(raw, check_files)
    }

    /// The embedded defaults of `kammer demo`, with its state directory and port, validated like
    /// any configuration.
    pub fn demo(
        state_dir: &Path,
        port: u16,
        certificate: &Path,
        private_key: &Path,
    ) -> Result<Self, ConfigError> {
        Self::demo_with(state_dir, port, certificate, private_key, "")
    }

    /// [`Config::demo`] with more TOML after the embedded defaults (for example a `[dangerous]`
    /// table), validated with them.
    pub fn demo_with(
        state_dir: &Path,
        port: u16,
        certificate: &Path,
        private_key: &Path,
        extra: &str,
    ) -> Result<Self, ConfigError> {
        let mut raw = parse(&format!("{}\n{extra}", include_str!("demo.toml")))?;
        let server = raw.server.get_or_insert(RawServer {
            listen: None,
            state_dir: None,
            max_connections: default_tcp_connections(),
        });
        server.listen = Some(format!("127.0.0.1:{port}"));
        server.state_dir = Some(state_dir.to_owned());
        raw.tls = Some(RawTls {
            certificate: Some(certificate.to_owned()),
            private_key: Some(private_key.to_owned()),
            allow_tls12: false,
        });
        validate(raw, true)
    }
}

fn parse(text: &str) -> Result<RawConfig, ConfigError> {
    let line_of = |span: Option<std::ops::Range<usize>>| {
        span.map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1)
    };
    let deserializer = toml::Deserializer::parse(text)
        .map_err(|e| ConfigError::single("", line_of(e.span()), e.message().to_owned()))?;
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let key = error.path().to_string();
        let inner = error.into_inner();
        let key = if key == "." { String::new() } else { key };
        ConfigError::single(&key, line_of(inner.span()), explain(inner.message()))
    })
}

/// Rewords serde's messages for people who edit a file rather than a struct.
fn explain(message: &str) -> String {
    message
        .replace("unknown field", "unknown key")
        .replace("missing field", "missing key")
        .replace(", expected one of", "; the keys allowed here are")
        .replace(", expected", "; expected")
}

fn validate(raw: RawConfig, check_files: bool) -> Result<Config, ConfigError> {
    let mut check = Check {
        problems: Vec::new(),
    };
    let c = &mut check;

    let (listen, state_dir, max_tcp) = match c.required("server", raw.server) {
        Some(server) => {
            let listen = c.required("server.listen", server.listen).and_then(|text| {
                text.parse::<SocketAddr>()
                    .map_err(|_| c.fail("server.listen", format!("\"{text}\" is not an address with port, such as \"0.0.0.0:443\" or \"[::]:443\"")))
                    .ok()
            });
            let state_dir = c.required("server.state_dir", server.state_dir);
            let max_tcp: usize = c.range(
                "server.max_connections",
                server.max_connections,
                16,
                1_000_000,
            );
            (listen, state_dir, max_tcp)
        }
        None => (None, None, 0),
    };

    let keys = raw.keys.as_ref().and_then(|keys| validate_keys(c, keys));
    let tls_key_mode = raw
        .keys
        .as_ref()
        .and_then(|keys| keys.tls_key_mode.as_deref())
        .map_or(Some(kammer_keys::TlsKeyMode::default()), |text| {
            text.parse::<kammer_keys::TlsKeyMode>()
                .map_err(|_| {
                    c.fail(
                        "keys.tls_key_mode",
                        format!("\"{text}\" is not a mode; use \"in-tpm\" or \"sealed\""),
                    );
                })
                .ok()
        })
        .unwrap_or_default();
    let (certificate, private_key, tls12) = match c.required("tls", raw.tls) {
        Some(tls) => {
            let certificate = c.required("tls.certificate", tls.certificate);
            let private_key = if raw.keys.is_some() {
                if tls.private_key.is_some() {
                    c.fail(
                        "tls.private_key",
                        "the TLS key lives in the key manager ([keys]); remove this key",
                    );
                }
                None
            } else {
                c.required("tls.private_key", tls.private_key)
            };
            if check_files {
                if let Some(path) = &certificate {
                    c.readable_file("tls.certificate", path);
                }
                if let Some(path) = &private_key {
                    c.readable_file("tls.private_key", path);
                }
            }
            let tls12 = if tls.allow_tls12 {
                Tls12::Allowed
            } else {
                Tls12::Refused
            };
            (certificate, private_key, tls12)
        }
        None => (None, None, Tls12::Refused),
    };

    let metrics_allow = if raw.metrics.enabled {
        if raw.metrics.allow.is_empty() {
            c.fail(
                "metrics.allow",
                "must name at least one network when metrics are enabled, such as \"127.0.0.1/32\"",
            );
        }
        let mut nets = Vec::new();
        for (i, entry) in raw.metrics.allow.iter().enumerate() {
            match entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
            {
                Ok(net) => nets.push(net),
                Err(_) => c.fail(
                    &format!("metrics.allow[{i}]"),
                    format!("\"{entry}\" is not an address or network such as \"10.0.0.0/8\""),
                ),
            }
        }
        Some(nets)
    } else {
        if !raw.metrics.allow.is_empty() {
            c.fail(
                "metrics.allow",
                "is set but metrics.enabled is false; enable metrics or remove the list",
            );
        }
        None
    };

    let s = &raw.signalling;
    let max_message_bytes: usize = c.range(
        "signalling.max_message_bytes",
        s.max_message_bytes,
        1024,
        1 << 20,
    );
    let messages_per_second: u32 = c.range(
        "signalling.messages_per_second",
        s.messages_per_second,
        1,
        1000,
    );
    let message_burst: u32 = c.range("signalling.message_burst", s.message_burst, 1, 10_000);
    if message_burst < messages_per_second {
        c.fail(
            "signalling.message_burst",
            "must be at least signalling.messages_per_second",
        );
    }
    let chat_per_10s: u32 = c.range("signalling.chat_per_10s", s.chat_per_10s, 1, 100);
    let chat_max_chars: usize = c.range("signalling.chat_max_chars", s.chat_max_chars, 1, 100_000);
    // A chat message of the longest text (up to 4 bytes a character, JSON-escaped up to 6)
    // must fit into one message.
    if chat_max_chars.saturating_mul(6).saturating_add(64) > max_message_bytes {
        c.fail(
            "signalling.chat_max_chars",
            format!("a text of {chat_max_chars} characters may not fit into signalling.max_message_bytes = {max_message_bytes}; allow at most {}", max_message_bytes.saturating_sub(64) / 6),
        );
    }
    let max_participants_per_room: usize = c.range(
        "signalling.max_participants_per_room",
        s.max_participants_per_room,
        2,
        10_000,
    );
    let max_connections: usize = c.range(
        "signalling.max_connections",
        s.max_connections,
        1,
        1_000_000,
    );
    let idle_secs: u64 = c.range(
        "signalling.idle_timeout_secs",
        s.idle_timeout_secs,
        30,
        86_400,
    );
    let max_join_attempts: u32 =
        c.range("signalling.max_join_attempts", s.max_join_attempts, 1, 1000);
    let outbound_queue: usize = c.range("signalling.outbound_queue", s.outbound_queue, 16, 65_536);

    let media = validate_media(c, &raw.media, listen);
    if let Some(user) = &raw.sandbox.user
        && (user.is_empty()
            || user.len() > 32
            || !user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
    {
        c.fail(
            "sandbox.user",
            format!("\"{user}\" is not an account name (letters, digits, '-', '_', '.')"),
        );
    }

    if !raw.rooms.allow_ad_hoc {
        c.fail(
            "rooms.allow_ad_hoc",
            "false needs provisioned rooms, which this version does not support yet; remove the key",
        );
    }

    if !check.problems.is_empty() {
        return Err(ConfigError {
            problems: check.problems,
        });
    }
    let (Some(listen), Some(state_dir), Some(certificate)) = (listen, state_dir, certificate)
    else {
        unreachable!("a missing required value is recorded as a problem")
    };
    let tls_key = match private_key {
        Some(path) => TlsKey::File(path),
        None => TlsKey::KeyManager,
    };
    Ok(Config {
        listen,
        state_dir,
        max_tcp_connections: max_tcp,
        certificate,
        tls_key,
        keys,
        tls_key_mode,
        tls12,
        metrics_allow,
        limits: Limits {
            max_message_bytes,
            messages_per_second,
            message_burst,
            chat_per_10s,
            chat_max_chars,
            max_participants_per_room,
            max_connections,
            idle_timeout: Duration::from_secs(idle_secs),
            max_join_attempts,
        },
        outbound_queue,
        rooms: RoomPolicy {
            allow_ad_hoc_rooms: raw.rooms.allow_ad_hoc,
            lobby_by_default: raw.rooms.lobby_by_default,
        },
        log_level: raw.log.level,
        log_format: raw.log.format,
        media,
        sandbox_user: raw.sandbox.user,
        dangerous: Dangerous {
            disable_sandbox: raw.dangerous.disable_sandbox,
        },
        _proof: Validated(()),
    })
}

/// The TPM device used when `keys.tcti` is not given.
const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";

fn validate_keys(c: &mut Check, raw: &RawKeys) -> Option<kammer_keys::Backend> {
    match raw.backend.as_deref() {
        Some("tpm") => {
            let text = raw.tcti.as_deref().unwrap_or(DEFAULT_TCTI);
            let tcti = text
                .parse::<kammer_keys::Tcti>()
                .map_err(|error| c.fail("keys.tcti", error.to_string()))
                .ok();
            let pcrs = validate_pcrs(c, "keys.pcrs", raw.pcrs.iter().flatten());
            let signed = validate_signed_policy(c, raw, pcrs.as_ref());
            if raw.allow_insecure_soft_keys {
                c.fail(
                    "keys.allow_insecure_soft_keys",
                    "only applies to backend = \"soft\"; remove it",
                );
            }
            Some(kammer_keys::Backend::Tpm {
                tcti: tcti?,
                pcrs: pcrs?,
                signed: signed?,
            })
        }
        Some("soft") => {
            if raw.tcti.is_some()
                || raw.pcrs.is_some()
                || raw.pcr_public_key.is_some()
                || raw.pcr_signature.is_some()
                || raw.signed_pcrs.is_some()
            {
                c.fail(
                    "keys.backend",
                    "\"soft\" has no TPM: remove keys.tcti, keys.pcrs, keys.pcr_public_key, \
                     keys.pcr_signature and keys.signed_pcrs",
                );
            }
            if !raw.allow_insecure_soft_keys {
                c.fail(
                    "keys.backend",
                    "\"soft\" keeps keys in files on disk, for development only; set keys.allow_insecure_soft_keys = true to run with it anyway",
                );
                return None;
            }
            Some(kammer_keys::Backend::Soft)
        }
        Some(other) => {
            c.fail(
                "keys.backend",
                format!("\"{other}\" is not a backend; use \"tpm\" or \"soft\""),
            );
            None
        }
        None => {
            c.fail(
                "keys.backend",
                "is required in [keys]: \"tpm\" (or \"soft\" for development)",
            );
            None
        }
    }
}

/// A list of PCR indices at `key`.
fn validate_pcrs<'a>(
    c: &mut Check,
    key: &str,
    raw: impl Iterator<Item = &'a i64>,
) -> Option<kammer_keys::PcrPolicy> {
    let mut indices = Vec::new();
    for (i, pcr) in raw.enumerate() {
        match u8::try_from(*pcr) {
            Ok(index) => indices.push(index),
            Err(_) => c.fail(
                &format!("{key}[{i}]"),
                format!("{pcr} is not a PCR index (0 to 23)"),
            ),
        }
    }
    kammer_keys::PcrPolicy::new(indices)
        .map_err(|error| c.fail(key, error.to_string()))
        .ok()
}

/// `keys.pcr_public_key`, `keys.pcr_signature`, `keys.signed_pcrs`: the signed PCR policy, on
/// when the public key is given. `Some(None)` when it is off; `None` after a problem. The files
/// are read when the key manager opens, not here: the signature file exists only on the booted
/// appliance.
fn validate_signed_policy(
    c: &mut Check,
    raw: &RawKeys,
    literal: Option<&kammer_keys::PcrPolicy>,
) -> Option<Option<kammer_keys::SignedPcrPolicy>> {
    let Some(public_key) = &raw.pcr_public_key else {
        for (key, given) in [
            ("keys.pcr_signature", raw.pcr_signature.is_some()),
            ("keys.signed_pcrs", raw.signed_pcrs.is_some()),
        ] {
            if given {
                c.fail(
                    key,
                    "only applies with keys.pcr_public_key (the key that signs PCR values)",
                );
            }
        }
        return Some(None);
    };
    let mut ok = true;
    let mut absolute = |c: &mut Check, key: &str, path: &str| {
        if !Path::new(path).is_absolute() {
            c.fail(key, format!("{path:?} is not an absolute path"));
            ok = false;
        }
    };
    absolute(c, "keys.pcr_public_key", public_key);
    let signature = raw
        .pcr_signature
        .as_deref()
        .unwrap_or(kammer_keys::SignedPcrPolicy::DEFAULT_SIGNATURE);
    absolute(c, "keys.pcr_signature", signature);
    let default_pcrs = kammer_keys::SignedPcrPolicy::DEFAULT_PCRS.map(i64::from);
    let pcrs = validate_pcrs(
        c,
        "keys.signed_pcrs",
        raw.signed_pcrs.as_deref().unwrap_or(&default_pcrs).iter(),
    )?;
    if !ok {
        return None;
    }
    let signed = kammer_keys::SignedPcrPolicy::new(public_key, signature, pcrs)
        .map_err(|error| c.fail("keys.signed_pcrs", error.to_string()))
        .ok()?;
    if let Some(literal) = literal
        && let Err(error) = signed.check_literal(literal)
    {
        c.fail("keys.signed_pcrs", error.to_string());
        return None;
    }
    Some(Some(signed))
}

/// The media port when `media.listen` is not given: the front door's address, this port.
const DEFAULT_MEDIA_PORT: u16 = 10_000;

fn validate_media(
    c: &mut Check,
    raw: &RawMedia,
    server_listen: Option<SocketAddr>,
) -> Option<MediaConfig> {
    let max_participants: usize =
        c.range("media.max_participants", raw.max_participants, 1, 100_000);
    let listen = match &raw.listen {
        Some(text) => text
            .parse::<SocketAddr>()
            .map_err(|_| {
                c.fail(
                    "media.listen",
                    format!("\"{text}\" is not an address with port, such as \"0.0.0.0:10000\""),
                );
            })
            .ok(),
        None => server_listen.map(|server| SocketAddr::new(server.ip(), DEFAULT_MEDIA_PORT)),
    };
    let mut announce = Vec::new();
    for (i, entry) in raw.announce.iter().enumerate() {
        match entry.parse::<std::net::IpAddr>() {
            Ok(ip) if ip.is_unspecified() || ip.is_multicast() => c.fail(
                &format!("media.announce[{i}]"),
                format!("\"{entry}\" cannot be reached by clients; name a unicast address"),
            ),
            Ok(ip) => announce.push(ip),
            Err(_) => c.fail(
                &format!("media.announce[{i}]"),
                format!("\"{entry}\" is not an IP address such as \"192.0.2.10\""),
            ),
        }
    }
    if raw.enabled
        && announce.is_empty()
        && raw.announce.is_empty()
        && listen.is_some_and(|listen| listen.ip().is_unspecified())
    {
        c.fail(
            "media.announce",
            "must list the addresses clients reach the media port at when media.listen is a wildcard address, such as [\"192.0.2.10\"]",
        );
    }
    if !raw.enabled {
        return None;
    }
    Some(MediaConfig {
        listen: listen?,
        announce,
        max_participants,
    })
}

#[cfg(test)]
mod tests;
