//! HTTP over TLS: routes, security headers, the WebSocket upgrade and one connection's lifetime.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use ipnet::IpNet;
use kammer_core::room::CloseReason;
use tokio::sync::mpsc;

use crate::ShellCounters;
use crate::signal::{Event, HubHandle, Outbound};
use crate::web;

/// Frames this much larger than `signalling.max_message_bytes` end the connection; smaller
/// oversized ones are answered with `too_large` and the connection stays.
const WS_FRAME_SLACK: usize = 64 * 1024;
/// A health or metrics request waits at most this long for the hub.
const HUB_ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// A plain HTTP connection (not upgraded to a WebSocket) lives at most this long.
pub(crate) const HTTP_CONNECTION_LIFETIME: Duration = Duration::from_secs(120);
/// A client that does not take a frame within this time is dropped.
const WS_SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; media-src 'self' blob:; object-src 'none'; base-uri 'none'; \
frame-ancestors 'none'; form-action 'self'";
const PERMISSIONS_POLICY: &str =
    "camera=(self), microphone=(self), display-capture=(self), geolocation=(), payment=(), usb=()";

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) hub: HubHandle,
    pub(crate) media: Option<crate::media::MediaHandle>,
    pub(crate) counters: Arc<ShellCounters>,
    pub(crate) metrics_allow: Option<Arc<Vec<IpNet>>>,
    pub(crate) outbound_queue: usize,
    pub(crate) footer_notice: Option<Arc<str>>,
    pub(crate) max_message_bytes: usize,
}

/// The client's address, attached to each request of a connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) SocketAddr);

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/{file}", get(asset))
        .route("/healthz", get(healthz))
        .route("/info", get(info))
        .route("/metrics", get(metrics))
        .route("/signal", get(signal))
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Serves HTTP/1.1 on one TLS connection until it ends.
pub(crate) async fn serve_connection<S>(stream: S, peer: SocketAddr, app: Router)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(app.layer(Extension(Peer(peer))));
    let serving = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    // The future resolves once a WebSocket upgrade is handed over, so the limit applies to plain
    // HTTP only: a client that never reads its responses cannot hold a connection slot forever.
    match tokio::time::timeout(HTTP_CONNECTION_LIFETIME, serving).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%peer, %error, "HTTP connection ended with an error"),
        Err(_) => tracing::debug!(%peer, "HTTP connection closed after its maximum lifetime"),
    }
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let cache_set = headers.contains_key(header::CACHE_CONTROL);
    let mut set = |name: header::HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(header::CONTENT_SECURITY_POLICY, CSP);
    set(
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=63072000; includeSubDomains",
    );
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(
        header::HeaderName::from_static("permissions-policy"),
        PERMISSIONS_POLICY,
    );
    set(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    if !cache_set {
        set(header::CACHE_CONTROL, "no-store");
    }
    response
}

fn count(state: &AppState) {
    state.counters.http_requests.fetch_add(1, Ordering::Relaxed);
}

async fn index(State(state): State<AppState>) -> Response {
    count(&state);
    embedded(web::INDEX)
}

async fn asset(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    count(&state);
    match web::asset(&file) {
        Some(asset) => embedded(asset),
        None => not_found().await,
    }
}

fn embedded(asset: web::Asset) -> Response {
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        asset.body,
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "not found\n",
    )
        .into_response()
}

async fn healthz(State(state): State<AppState>) -> Response {
    count(&state);
    // Healthy means the signalling hub answers.
    match tokio::time::timeout(HUB_ANSWER_TIMEOUT, state.hub.snapshot())
        .await
        .ok()
        .flatten()
    {
        Some(_) => (StatusCode::OK, "ok\n").into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "signalling unavailable\n").into_response(),
    }
}

async fn info(State(state): State<AppState>) -> Response {
    count(&state);
    let body = serde_json::json!({
        "product": "kammer",
        "version": env!("CARGO_PKG_VERSION"),
        "protocol": kammer_core::signal::PROTOCOL_VERSION,
        "notice": state.footer_notice.as_deref(),
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn metrics(
    State(state): State<AppState>,
    Extension(Peer(peer)): Extension<Peer>,
) -> Response {
    count(&state);
    let Some(allow) = &state.metrics_allow else {
        return not_found().await;
    };
    if !allowed(allow, peer.ip()) {
        return (StatusCode::FORBIDDEN, "forbidden\n").into_response();
    }
    match tokio::time::timeout(HUB_ANSWER_TIMEOUT, state.hub.snapshot())
        .await
        .ok()
        .flatten()
    {
        Some(snapshot) => {
            let media = match &state.media {
                Some(media) => tokio::time::timeout(HUB_ANSWER_TIMEOUT, media.metrics())
                    .await
                    .ok()
                    .flatten(),
                None => None,
            };
            (
                [(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                crate::metrics::render(&snapshot, media.as_deref(), &state.counters),
            )
                .into_response()
        }
        None => (StatusCode::SERVICE_UNAVAILABLE, "signalling unavailable\n").into_response(),
    }
}

fn allowed(allow: &[IpNet], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    allow.iter().any(|net| net.contains(&ip))
}

/// The `Origin` must name the same host and port as `Host`.
fn same_origin(headers: &HeaderMap) -> bool {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => origin
            .strip_prefix("https://")
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

async fn signal(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    count(&state);
    if !same_origin(&headers) {
        state
            .counters
            .ws_upgrades_refused
            .fetch_add(1, Ordering::Relaxed);
        return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused\n").into_response();
    }
    upgrade
        .max_message_size(state.max_message_bytes + WS_FRAME_SLACK)
        .max_frame_size(state.max_message_bytes + WS_FRAME_SLACK)
        .on_upgrade(move |socket| connection(socket, state))
}

/// One signalling connection: frames in go to the hub, the hub's messages go out.
///
/// Reading and writing run as two loops, so that a full event queue towards the hub (which
/// slows the reader) never stops this client's outbound queue from draining.
async fn connection(socket: WebSocket, state: AppState) {
    let conn = state.hub.new_conn_id();
    let (outbound, queue) = mpsc::channel(state.outbound_queue);
    let events = state.hub.events.clone();
    if events
        .send(Event::Connect { conn, outbound })
        .await
        .is_err()
    {
        return;
    }
    let (sink, mut stream) = socket.split();
    let mut writer = tokio::spawn(write_loop(sink, queue));
    let max_message_bytes = state.max_message_bytes;
    loop {
        tokio::select! {
            _ = &mut writer => break,
            incoming = stream.next() => {
                let event = match incoming {
                    // Oversized frames are judged without copying them into the hub's queue.
                    Some(Ok(Message::Text(text))) if text.len() > max_message_bytes => Event::TooLarge { conn },
                    Some(Ok(Message::Text(text))) => Event::Text { conn, frame: text.as_bytes().to_vec() },
                    Some(Ok(Message::Binary(_))) => Event::Binary { conn },
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                };
                if events.send(event).await.is_err() {
                    break;
                }
            }
        }
    }
    writer.abort();
    let _ = events.send(Event::Disconnect { conn }).await;
}

/// Sends the hub's messages until the hub closes the connection or the client stops reading.
async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Outbound>,
) {
    while let Some(outgoing) = queue.recv().await {
        let message = match outgoing {
            Outbound::Text(text) => Message::Text(text.as_ref().into()),
            Outbound::Close(reason) => {
                let frame = CloseFrame {
                    code: close_code(reason),
                    reason: reason.as_str().into(),
                };
                let _ =
                    tokio::time::timeout(WS_SEND_TIMEOUT, sink.send(Message::Close(Some(frame))))
                        .await;
                return;
            }
        };
        match tokio::time::timeout(WS_SEND_TIMEOUT, sink.send(message)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return,
        }
    }
}

fn close_code(reason: CloseReason) -> u16 {
    match reason {
        CloseReason::IdleTimeout | CloseReason::Removed | CloseReason::MeetingEnded => 1000,
        CloseReason::TooSlow => 1008,
        CloseReason::TooManyAttempts => 1008,
        CloseReason::ServerFull => 1013,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_must_match_host() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8443"));
        assert!(!same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://127.0.0.1:8443"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8443"),
        );
        assert!(!same_origin(&headers));
    }

    #[test]
    fn metrics_allowlist_handles_mapped_addresses() {
        let allow: Vec<IpNet> = vec!["127.0.0.0/8".parse().expect("net")];
        assert!(allowed(&allow, "127.0.0.1".parse().expect("ip")));
        assert!(allowed(&allow, "::ffff:127.0.0.1".parse().expect("ip")));
        assert!(!allowed(&allow, "10.0.0.1".parse().expect("ip")));
    }
}
