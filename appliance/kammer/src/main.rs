//! `kammer`: the appliance in one binary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use kammer::config::{Config, LogFormat, MAX_CONFIG_BYTES, TlsKey};

// The hooks make a worker attempt forbidden system calls on request: never in a release build.
#[cfg(all(feature = "test-hooks", not(debug_assertions)))]
compile_error!("the test-hooks feature is for test builds only; build releases without it");

mod keys;
mod pki;
mod process;
mod selfcheck;
use kammer_server::tls;

#[derive(Debug, Parser)]
#[command(
    name = "kammer",
    version,
    about = "A sealed video-conference appliance."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run on embedded defaults: a development CA, a localhost certificate, HTTPS on 127.0.0.1.
    Demo {
        /// TCP port (0 picks a free one).
        #[arg(long, default_value_t = 8443)]
        port: u16,
        /// Directory for the demo's state; reused when it exists.
        #[arg(long, default_value = "./kammer-state")]
        state_dir: PathBuf,
        /// Turn on a `[dangerous]` switch (see docs/config.md), e.g. `disable_sandbox`.
        #[arg(long = "dangerous", value_name = "SWITCH")]
        dangerous: Vec<String>,
    },
    /// Checks that the running appliance's hardening is in force; exits non-zero if anything
    /// deviates from the policy.
    Selfcheck {
        /// The configuration file of the running appliance (for its state directory).
        #[arg(long, conflicts_with = "state_dir")]
        config: Option<PathBuf>,
        /// The running appliance's state directory (the demo's: ./kammer-state).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Internal: prints the system-call allowlists as docs/hardening.md carries them.
    #[command(name = "__policy-markdown", hide = true)]
    PolicyMarkdown,
    /// Internal: a child process of the appliance (started by `serve` and `demo`).
    #[command(name = "__child", hide = true)]
    Child {
        /// Its role.
        role: String,
        /// The inherited control socket.
        #[arg(long)]
        control: i32,
    },
    /// Run with a configuration file (production).
    Serve {
        /// The TOML configuration file (see docs/config.md).
        #[arg(long)]
        config: PathBuf,
    },
    /// Work with configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The key manager: key ceremony, status, rotation.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Public-key infrastructure.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file without starting anything.
    Check {
        /// The TOML configuration file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// The key ceremony: creates the keys that are missing (keeps existing ones) and prints
    /// their fingerprints.
    Init {
        /// The TOML configuration file with a `[keys]` table.
        #[arg(long)]
        config: PathBuf,
        /// A name clients use to reach the appliance (repeatable: DNS names, IP addresses);
        /// they go into the CSR for the TLS key, written to `state_dir/keys/tls.csr`.
        #[arg(long = "name", required = true)]
        names: Vec<String>,
    },
    /// A new TLS key in the configured `keys.tls_key_mode` (after changing the mode), with a
    /// CSR for it.
    NewTlsKey {
        /// The TOML configuration file with a `[keys]` table.
        #[arg(long)]
        config: PathBuf,
        /// A name clients use to reach the appliance (repeatable).
        #[arg(long = "name", required = true)]
        names: Vec<String>,
    },
    /// Writes a new CSR for the current TLS key (after `keys rotate tls`).
    Csr {
        /// The TOML configuration file with a `[keys]` table.
        #[arg(long)]
        config: PathBuf,
        /// A name clients use to reach the appliance (repeatable).
        #[arg(long = "name", required = true)]
        names: Vec<String>,
    },
    /// Backend, keys, fingerprints and PCR binding.
    Status {
        /// The TOML configuration file with a `[keys]` table.
        #[arg(long)]
        config: PathBuf,
    },
    /// Replaces one role's key (`tls`, `audit` or `media`).
    Rotate {
        /// The role.
        role: String,
        /// The TOML configuration file with a `[keys]` table.
        #[arg(long)]
        config: PathBuf,
    },
    /// Prints every role's public key (PEM).
    ExportPublic {
        /// The TOML configuration file with a `[keys]` table.
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Checks the chain and every signature of the audit log.
    Verify {
        /// The TOML configuration file with a `[keys]` table.
        #[arg(long)]
        config: PathBuf,
        /// Earlier audit public keys (PEM, from `kammer keys export-public`), repeatable.
        #[arg(long = "public-key")]
        public_keys: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum PkiCommand {
    /// Create (or reuse) the development CA and a localhost server certificate.
    DevCa {
        /// Directory for the CA and certificate files.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Create the offline CA of an isolated network (refused if one exists in DIR).
    CaInit {
        /// Directory for the CA (ca.key stays here, mode 0600).
        #[arg(long)]
        dir: PathBuf,
        /// The CA's common name.
        #[arg(long)]
        name: String,
        /// A permitted name or network for the name constraints (repeatable), e.g.
        /// `kammer.example.org` or `10.20.0.0/16`.
        #[arg(long)]
        permit: Vec<String>,
        /// Validity in days.
        #[arg(long)]
        days: Option<u32>,
    },
    /// Issue a server certificate for a CSR (e.g. the one `kammer keys init` wrote).
    Issue {
        /// The CA directory.
        #[arg(long)]
        dir: PathBuf,
        /// The certificate signing request (PEM).
        #[arg(long)]
        csr: PathBuf,
        /// Where to write the certificate (PEM).
        #[arg(long)]
        out: PathBuf,
        /// Validity in days (at most 397).
        #[arg(long)]
        days: Option<u32>,
    },
    /// Revoke a certificate by serial number.
    Revoke {
        /// The CA directory.
        #[arg(long)]
        dir: PathBuf,
        /// The serial number (hex).
        serial: String,
        /// unspecified, key-compromise, affiliation-changed, superseded,
        /// cessation-of-operation or privilege-withdrawn.
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
    /// Write a new CRL (DIR/crl.pem).
    Crl {
        /// The CA directory.
        #[arg(long)]
        dir: PathBuf,
        /// Days until the next update.
        #[arg(long)]
        days: Option<u32>,
    },
    /// List every certificate the CA issued.
    List {
        /// The CA directory.
        #[arg(long)]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo {
            port,
            state_dir,
            dangerous,
        } => demo(port, &state_dir, &dangerous),
        Command::Serve { config } => serve(&config),
        Command::Selfcheck {
            config,
            state_dir,
            json,
        } => selfcheck::run(config.as_deref(), state_dir.as_deref(), json),
        Command::Child { role, control } => process::child_main(&role, control),
        Command::PolicyMarkdown => {
            print!("{}", kammer_hardening::policy_markdown());
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Check { file },
        } => load(&file).and_then(|config| {
            // The certificate and key must also parse, match the policy and belong together,
            // exactly as `serve` will read them.
            match &config.tls_key {
                TlsKey::File(key) => {
                    tls::server_config(&config.certificate, key, config.tls12).map(drop)
                }
                // The key is in the key manager: the chain must at least be readable here.
                TlsKey::KeyManager => tls::load_chain(&config.certificate).map(drop),
            }
            .map_err(|error| anyhow::anyhow!("{}: tls: {error}", file.display()))?;
            println!(
                "{}: valid (listen {}, TLS 1.2 {}, metrics {}, media {})",
                file.display(),
                config.listen,
                match config.tls12 {
                    tls::Tls12::Allowed => "allowed",
                    tls::Tls12::Refused => "refused",
                },
                if config.metrics_allow.is_some() {
                    "on"
                } else {
                    "off"
                },
                config
                    .media
                    .as_ref()
                    .map_or_else(|| "off".to_owned(), |media| format!("udp {}", media.listen)),
            );
            Ok(())
        }),
        Command::Keys { command } => match command {
            KeysCommand::Init { config, names } => keys::init(&config, &names),
            KeysCommand::Csr { config, names } => keys::csr(&config, &names),
            KeysCommand::NewTlsKey { config, names } => keys::new_tls_key(&config, &names),
            KeysCommand::Status { config } => keys::status(&config),
            KeysCommand::Rotate { role, config } => keys::rotate(&config, &role),
            KeysCommand::ExportPublic { config } => keys::export_public(&config),
        },
        Command::Audit {
            command:
                AuditCommand::Verify {
                    config,
                    public_keys,
                },
        } => keys::verify_audit(&config, &public_keys),
        Command::Pki {
            command:
                PkiCommand::CaInit {
                    dir,
                    name,
                    permit,
                    days,
                },
        } => pki::ca_init(&dir, &name, &permit, days),
        Command::Pki {
            command:
                PkiCommand::Issue {
                    dir,
                    csr,
                    out,
                    days,
                },
        } => pki::issue(&dir, &csr, &out, days),
        Command::Pki {
            command:
                PkiCommand::Revoke {
                    dir,
                    serial,
                    reason,
                },
        } => pki::revoke(&dir, &serial, &reason),
        Command::Pki {
            command: PkiCommand::Crl { dir, days },
        } => pki::crl(&dir, days),
        Command::Pki {
            command: PkiCommand::List { dir },
        } => pki::list(&dir),
        Command::Pki {
            command: PkiCommand::DevCa { dir },
        } => kammer_certs::ensure_dev_pki(&dir)
            .map(|pki| {
                println!("CA certificate:     {}", pki.ca_certificate.display());
                println!("server certificate: {}", pki.server_chain.display());
                println!("server key:         {}", pki.server_key.display());
            })
            .map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kammer: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &Path) -> anyhow::Result<Config> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.len() > MAX_CONFIG_BYTES as u64 {
        anyhow::bail!(
            "{}: larger than {MAX_CONFIG_BYTES} bytes; is this the right file?",
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Config::from_toml(&text, true).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
}

fn serve(path: &Path) -> anyhow::Result<()> {
    let config = load(path)?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let source = process::ConfigSource::File {
        path: path.to_owned(),
        text,
    };
    process::supervisor::run(source, config, None)
}

fn demo(port: u16, state_dir: &Path, dangerous: &[String]) -> anyhow::Result<()> {
    let pki = kammer_certs::ensure_dev_pki(&state_dir.join("pki"))
        .context("cannot create the development PKI")?;
    let extra = if dangerous.is_empty() {
        String::new()
    } else {
        let mut extra = "[dangerous]\n".to_owned();
        for switch in dangerous {
            if !switch.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                anyhow::bail!("--dangerous {switch}: not a switch name");
            }
            extra.push_str(&format!("{switch} = true\n"));
        }
        extra
    };
    // Every process reads the same files: absolute paths, whatever the working directory.
    let absolute = |path: &Path| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let state_dir = absolute(state_dir);
    let source = process::ConfigSource::Demo {
        state_dir: state_dir.clone(),
        port,
        certificate: absolute(&pki.server_chain),
        private_key: absolute(&pki.server_key),
        extra,
    };
    let config = source.load()?;
    process::supervisor::run(source, config, Some(absolute(&pki.ca_certificate)))
}

pub(crate) fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KAMMER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(config.log_level.as_str()));
    // The WebSocket library logs frame contents at trace level: PINs, secrets and chat text.
    // Whatever the configured level, it never logs below info.
    let filter = ["tungstenite=info", "tokio_tungstenite=info"]
        .into_iter()
        .fold(filter, |filter, directive| match directive.parse() {
            Ok(directive) => filter.add_directive(directive),
            Err(_) => filter,
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = match config.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
