//! Shared pieces of the system tests: start the real `kammer` binary, talk TLS and WebSocket to it.

#![allow(dead_code)]

pub mod media;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

pub const KAMMER: &str = env!("CARGO_BIN_EXE_kammer");

/// Runs `kammer ARGS…` to its end: (exit success, stdout, stderr).
pub fn kammer(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(KAMMER)
        .args(args)
        .env("TSS2_LOG", "all+NONE")
        .output()
        .expect("run kammer");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `kammer pki issue`: the CA in `ca` issues a certificate for the CSR `csr` into `out`.
pub fn issue(ca: &Path, csr: &Path, out: &Path) -> (bool, String, String) {
    kammer(&[
        "pki",
        "issue",
        "--dir",
        ca.to_str().expect("utf8"),
        "--csr",
        csr.to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
    ])
}

/// A running `kammer` process, killed on drop.
pub struct Appliance {
    child: Child,
    pub addr: SocketAddr,
    pub ca: PathBuf,
    pub state: PathBuf,
    _owned_state: Option<tempfile::TempDir>,
}

impl Appliance {
    /// `kammer demo --port 0` in a fresh state directory.
    pub fn demo() -> Self {
        let state = tempfile::tempdir().expect("temp dir");
        let mut appliance = Self::demo_in(state.path());
        appliance._owned_state = Some(state);
        appliance
    }

    /// `kammer demo --port 0` with more arguments, in a fresh state directory.
    pub fn demo_with(args: &[&str]) -> Self {
        let state = tempfile::tempdir().expect("temp dir");
        let mut appliance = Self::demo_args(state.path(), args);
        appliance._owned_state = Some(state);
        appliance
    }

    /// `kammer demo --port 0` in a state directory the caller keeps.
    pub fn demo_in(state: &Path) -> Self {
        Self::demo_args(state, &[])
    }

    fn demo_args(state: &Path, args: &[&str]) -> Self {
        let child = Command::new(KAMMER)
            .args(["demo", "--port", "0", "--state-dir"])
            .arg(state)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kammer demo");
        let ca = state.join("pki/ca.pem");
        Self::wait_for_url(child, state.to_owned(), None, ca)
    }

    /// `kammer serve` with a development certificate and a configuration of `[server]`, `[tls]`
    /// and whatever `extra` adds (TOML tables, or `tls_extra` lines for the `[tls]` table).
    pub fn serve_with(tls_extra: &str, extra: &str) -> Self {
        let state = tempfile::tempdir().expect("temp dir");
        let pki = state.path().join("pki");
        let status = Command::new(KAMMER)
            .args(["pki", "dev-ca", "--dir"])
            .arg(&pki)
            .stdout(Stdio::null())
            .status()
            .expect("kammer pki dev-ca");
        assert!(status.success());
        let config = state.path().join("kammer.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{dir}\"\n\n[tls]\ncertificate = \"{dir}/pki/server.pem\"\nprivate_key = \"{dir}/pki/server.key\"\n{tls_extra}\n[media]\nlisten = \"127.0.0.1:0\"\n\n[sandbox]\nuser = \"nobody\"\n{extra}\n",
                dir = state.path().display()
            ),
        )
        .expect("write config");
        Self::serve(state, &config, pki.join("ca.pem"))
    }

    /// `kammer serve --config FILE` where the file is written into `state` by the caller.
    pub fn serve(state: tempfile::TempDir, config: &Path, ca: PathBuf) -> Self {
        let child = Self::spawn_serve(config);
        Self::wait_for_url(child, state.path().to_owned(), Some(state), ca)
    }

    /// `kammer serve --config FILE` on a state directory the caller keeps (restarts).
    pub fn serve_on(state: &Path, config: &Path, ca: PathBuf) -> Self {
        let child = Self::spawn_serve(config);
        Self::wait_for_url(child, state.to_owned(), None, ca)
    }

    fn spawn_serve(config: &Path) -> Child {
        Command::new(KAMMER)
            .args(["serve", "--config"])
            .arg(config)
            .env("KAMMER_LOG", "info")
            .env("TSS2_LOG", "all+NONE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kammer serve")
    }

    fn wait_for_url(
        mut child: Child,
        state: PathBuf,
        owned_state: Option<tempfile::TempDir>,
        ca: PathBuf,
    ) -> Self {
        let stdout = child.stdout.take().expect("stdout piped");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        {
            let log = Arc::clone(&log);
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    // `kammer serve` logs the address it listens on.
                    if let Some(rest) = line.split("address=").nth(1) {
                        let addr = rest
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                        let _ = tx.send(addr);
                    }
                    log.lock().expect("log").push_str(&format!("{line}\n"));
                }
            });
        }
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.trim().strip_prefix("URL:") {
                    let url = url
                        .trim()
                        .trim_start_matches("https://")
                        .trim_end_matches('/');
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr.parse().expect("socket address"),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "kammer did not report its address; stderr:\n{}",
                    log.lock().expect("log")
                );
            }
        };
        Self {
            child,
            addr,
            ca,
            state,
            _owned_state: owned_state,
        }
    }

    /// A rustls client that trusts the appliance's CA.
    pub fn tls_client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca).expect("CA file") {
            roots.add(cert.expect("CA certificate")).expect("add root");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    pub async fn tls(&self) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await.expect("TCP connect");
        let name = ServerName::IpAddress(self.addr.ip().into());
        TlsConnector::from(self.tls_client())
            .connect(name, tcp)
            .await
            .expect("TLS handshake")
    }

    /// A signalling client, with the `welcome` already read.
    pub async fn client(&self) -> Client {
        let (ws, welcome) = self
            .websocket(Some(&format!("https://{}", self.addr)))
            .await
            .expect("upgrade");
        let mut client = Client { ws };
        assert_eq!(welcome.status(), 101);
        let welcome = client.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        client
    }

    pub async fn websocket(
        &self,
        origin: Option<&str>,
    ) -> Result<
        (
            WebSocketStream<TlsStream<TcpStream>>,
            tokio_tungstenite::tungstenite::handshake::client::Response,
        ),
        tokio_tungstenite::tungstenite::Error,
    > {
        let mut request = format!("wss://{}/signal", self.addr)
            .into_client_request()
            .expect("request");
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", HeaderValue::from_str(origin).expect("header"));
        }
        tokio_tungstenite::client_async(request, self.tls().await).await
    }

    /// A plain HTTP/1.1 GET over TLS; returns (status, headers in lower case, body).
    pub async fn get(&self, path: &str) -> (u16, String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tls = self.tls().await;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        tls.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        let _ = tls.read_to_end(&mut response).await;
        let response = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
        let status = head
            .split_whitespace()
            .nth(1)
            .expect("status")
            .parse()
            .expect("number");
        (status, head.to_ascii_lowercase(), body.to_owned())
    }
}

impl Appliance {
    /// The process ID of the running binary.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Client {
    pub ws: WebSocketStream<TlsStream<TcpStream>>,
}

impl Client {
    pub async fn send(&mut self, value: Value) {
        self.send_text(value.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// The next JSON message; fails after 10 s.
    pub async fn recv(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("a message within 10 s")
                .expect("connection open")
                .expect("frame");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// The next message of type `kind`, skipping others; fails after 10 s without one.
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let message = self.recv().await;
            if message["type"] == kind {
                return message;
            }
        }
    }

    /// Waits for the server to close; returns the close frame's reason.
    pub async fn closed(&mut self) -> String {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("close within 10 s");
            match next {
                Some(Ok(Message::Close(frame))) => {
                    return frame.map(|f| f.reason.to_string()).unwrap_or_default();
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return String::new(),
            }
        }
    }
}
