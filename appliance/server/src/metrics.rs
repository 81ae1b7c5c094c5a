//! `/metrics` in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use kammer_core::media::dtls::{DatagramDrop, HandshakeFailure};
use kammer_core::media::sfu::DropReason;
use kammer_core::room::CloseReason;
use kammer_core::signal::ErrorCode;

use crate::ShellCounters;
use crate::media::MediaSnapshot;
use crate::signal::Snapshot;

/// The whole page: the hub's and the shell's figures, then the media plane's (already
/// rendered by [`render_media_text`], in whichever process the media plane runs).
pub(crate) fn render(snapshot: &Snapshot, media: Option<&str>, shell: &ShellCounters) -> String {
    let mut out = String::with_capacity(4096);
    let gauges = snapshot.gauges;
    let counters = &snapshot.counters;
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        write_metric(&mut out, name, kind, help, samples);
    };
    let plain = |value: u64| vec![(String::new(), value)];
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);

    metric(
        "kammer_build_info",
        "gauge",
        "Version of the running binary.",
        &[(format!("{{version=\"{}\"}}", env!("CARGO_PKG_VERSION")), 1)],
    );
    metric(
        "kammer_signal_connections",
        "gauge",
        "Open signalling connections.",
        &plain(gauges.connections as u64),
    );
    metric(
        "kammer_rooms",
        "gauge",
        "Rooms with at least one participant.",
        &plain(gauges.rooms as u64),
    );
    metric(
        "kammer_participants",
        "gauge",
        "Admitted participants over all rooms.",
        &plain(gauges.participants as u64),
    );
    metric(
        "kammer_lobby_waiting",
        "gauge",
        "Participants waiting in lobbies.",
        &plain(gauges.waiting as u64),
    );
    metric(
        "kammer_signal_messages_total",
        "counter",
        "Signalling messages received.",
        &plain(counters.messages_received),
    );
    metric(
        "kammer_chat_messages_total",
        "counter",
        "Chat messages delivered to rooms.",
        &plain(counters.chat_messages),
    );
    let dropped: Vec<(String, u64)> = ErrorCode::ALL
        .iter()
        .map(|code| {
            (
                format!("{{reason=\"{}\"}}", code.as_str()),
                counters.dropped(*code),
            )
        })
        .collect();
    metric(
        "kammer_signal_dropped_total",
        "counter",
        "Signalling messages refused, by error code.",
        &dropped,
    );
    let closed: Vec<(String, u64)> = CloseReason::ALL
        .iter()
        .map(|reason| {
            (
                format!("{{reason=\"{}\"}}", reason.as_str()),
                counters.closed(*reason),
            )
        })
        .collect();
    metric(
        "kammer_signal_closed_total",
        "counter",
        "Signalling connections closed by the server, by reason.",
        &closed,
    );
    metric(
        "kammer_tcp_accepted_total",
        "counter",
        "TCP connections accepted.",
        &plain(load(&shell.tcp_accepted)),
    );
    metric(
        "kammer_tcp_refused_total",
        "counter",
        "TCP connections refused because the connection limit was reached.",
        &plain(load(&shell.tcp_refused_busy)),
    );
    metric(
        "kammer_tls_handshake_failures_total",
        "counter",
        "TLS handshakes that failed or timed out.",
        &plain(load(&shell.tls_handshake_failed)),
    );
    metric(
        "kammer_http_requests_total",
        "counter",
        "HTTP requests served.",
        &plain(load(&shell.http_requests)),
    );
    metric(
        "kammer_websocket_refused_total",
        "counter",
        "WebSocket upgrades refused (wrong origin).",
        &plain(load(&shell.ws_upgrades_refused)),
    );
    if let Some(media) = media {
        out.push_str(media);
    }
    out
}

/// One metric in the text format: help, type, samples.
fn write_metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// The media plane's part of `/metrics`.
pub(crate) fn render_media_text(media: &MediaSnapshot) -> String {
    let mut out = String::with_capacity(4096);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        write_metric(&mut out, name, kind, help, samples);
    };
    render_media(&mut metric, media);
    out
}

/// The media plane's figures: gauges, what was forwarded, and every drop by reason (SFU
/// reasons and the DTLS endpoint's own).
fn render_media(
    metric: &mut impl FnMut(&str, &str, &str, &[(String, u64)]),
    media: &MediaSnapshot,
) {
    let plain = |value: u64| vec![(String::new(), value)];
    let labelled = |pairs: Vec<(&str, u64)>| -> Vec<(String, u64)> {
        pairs
            .into_iter()
            .map(|(reason, value)| (format!("{{reason=\"{reason}\"}}"), value))
            .collect()
    };
    let sfu = &media.sfu;
    metric(
        "kammer_media_participants",
        "gauge",
        "Participants with media state.",
        &plain(media.participants as u64),
    );
    metric(
        "kammer_media_transports_connected",
        "gauge",
        "Media transports whose DTLS handshake completed.",
        &plain(media.connected_transports as u64),
    );
    metric(
        "kammer_media_datagrams_received_total",
        "counter",
        "UDP datagrams received on the media port.",
        &plain(media.datagrams_received),
    );
    metric(
        "kammer_media_datagrams_sent_total",
        "counter",
        "UDP datagrams sent from the media port.",
        &plain(media.datagrams_sent),
    );
    metric(
        "kammer_media_gso_sends_total",
        "counter",
        "Sends that carried several datagrams to one destination (UDP segmentation offload).",
        &plain(media.gso_sends),
    );
    metric(
        "kammer_media_send_errors_total",
        "counter",
        "UDP sends that failed.",
        &plain(media.send_errors),
    );
    metric(
        "kammer_media_rtp_received_total",
        "counter",
        "RTP packets accepted from publishers.",
        &plain(sfu.rtp_received),
    );
    metric(
        "kammer_media_rtp_forwarded_total",
        "counter",
        "RTP packets sent to subscribers.",
        &plain(sfu.rtp_forwarded),
    );
    metric(
        "kammer_media_nack_resent_total",
        "counter",
        "RTP packets sent again on a NACK.",
        &plain(sfu.nack_resent),
    );
    metric(
        "kammer_media_keyframe_requests_total",
        "counter",
        "Key-frame requests sent to publishers.",
        &plain(sfu.keyframe_requests),
    );
    metric(
        "kammer_media_offers_repeated_total",
        "counter",
        "Subscribe offers made again because the client did not answer in time.",
        &plain(sfu.offers_repeated),
    );
    metric(
        "kammer_media_keyframe_requests_received_total",
        "counter",
        "Key-frame requests (PLI, FIR) from subscribers: all, for unknown streams, throttled.",
        &[
            (
                "{outcome=\"received\"}".to_owned(),
                sfu.keyframe_requests_received,
            ),
            (
                "{outcome=\"unmatched\"}".to_owned(),
                sfu.keyframe_requests_unmatched,
            ),
            (
                "{outcome=\"throttled\"}".to_owned(),
                sfu.keyframe_requests_throttled,
            ),
        ],
    );
    let mut cumulative = 0;
    let mut buckets: Vec<(String, u64)> = crate::media::LATENCY_BOUNDS_US
        .iter()
        .zip(&media.forwarding.buckets)
        .map(|(bound, count)| {
            cumulative += count;
            (
                format!("_bucket{{le=\"{}\"}}", *bound as f64 / 1_000_000.0),
                cumulative,
            )
        })
        .collect();
    buckets.push(("_bucket{le=\"+Inf\"}".to_owned(), media.forwarding.count));
    buckets.push(("_count".to_owned(), media.forwarding.count));
    metric(
        "kammer_media_forward_seconds",
        "histogram",
        "Time from reading a batch of datagrams to having sent all it caused, per datagram sent.",
        &buckets,
    );
    metric(
        "kammer_media_dropped_total",
        "counter",
        "Media datagrams or packets dropped, by reason.",
        &labelled(
            DropReason::ALL
                .iter()
                .map(|reason| (reason.as_str(), sfu.dropped(*reason)))
                .collect(),
        ),
    );
    metric(
        "kammer_media_dtls_dropped_total",
        "counter",
        "DTLS datagrams dropped, by reason.",
        &labelled(
            DatagramDrop::ALL
                .iter()
                .map(|reason| (reason.as_str(), media.dtls.dropped(*reason)))
                .collect(),
        ),
    );
    metric(
        "kammer_media_dtls_failed_total",
        "counter",
        "DTLS handshakes or associations that failed, by reason.",
        &labelled(
            HandshakeFailure::ALL
                .iter()
                .map(|reason| (reason.as_str(), media.dtls.failed(*reason)))
                .collect(),
        ),
    );
}
