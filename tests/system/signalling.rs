//! System test of the real `kammer demo` binary: HTTP surface and two signalling clients through
//! join → lobby admission → chat → removal, plus bad input on the wire.

#[path = "support/mod.rs"]
mod support;

use serde_json::json;
use support::Appliance;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_lobby_chat_removal() {
    let kammer = Appliance::demo();
    let mut alice = kammer.client().await;
    let mut bob = kammer.client().await;

    alice
        .send(
            json!({"type": "join", "protocol": 1, "room": "lage", "name": "Alice", "pin": "4711"}),
        )
        .await;
    let joined = alice.recv().await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["role"], "moderator");
    assert!(
        joined["moderator_secret"]
            .as_str()
            .is_some_and(|s| s.len() == 32)
    );

    bob.send(json!({"type": "join", "protocol": 1, "room": "lage", "name": "Bob", "pin": "0000"}))
        .await;
    assert_eq!(bob.recv().await["code"], "wrong_pin");
    bob.send(json!({"type": "join", "protocol": 1, "room": "lage", "name": "Bob", "pin": "4711"}))
        .await;
    assert_eq!(
        bob.recv().await,
        json!({"type": "lobby_waiting", "room": "lage"})
    );

    let lobby = alice.recv().await;
    assert_eq!(lobby["type"], "lobby_changed");
    assert_eq!(lobby["lobby"][0]["name"], "Bob");
    let bob_id = lobby["lobby"][0]["id"].as_u64().expect("id");

    alice
        .send(json!({"type": "admit", "participant": bob_id}))
        .await;
    let joined = bob.recv().await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["role"], "participant");
    assert!(
        joined.get("moderator_secret").is_none(),
        "only moderators see the secret"
    );
    assert_eq!(joined["participants"].as_array().expect("list").len(), 2);
    assert_eq!(
        alice.recv().await,
        json!({"type": "lobby_changed", "lobby": []})
    );
    let arrived = alice.recv().await;
    assert_eq!(arrived["type"], "participant_joined");
    assert_eq!(arrived["participant"]["name"], "Bob");

    bob.send(json!({"type": "chat", "text": "Guten Morgen"}))
        .await;
    let expected =
        json!({"type": "chat", "from": bob_id, "name": "Bob", "text": "Guten Morgen", "seq": 1});
    assert_eq!(alice.recv().await, expected);
    assert_eq!(bob.recv().await, expected);

    // Bad input on Bob's connection: errors with codes, the connection stays, Alice notices nothing.
    bob.send_text("{not json".into()).await;
    assert_eq!(bob.recv().await["code"], "malformed");
    bob.send_text(json!({"type": "chat", "text": "x".repeat(70_000)}).to_string())
        .await;
    assert_eq!(bob.recv().await["code"], "too_large");
    bob.send(json!({"type": "teleport"})).await;
    assert_eq!(bob.recv().await["code"], "unknown_type");
    bob.ws
        .send(tokio_tungstenite::tungstenite::Message::Binary(
            vec![1, 2, 3].into(),
        ))
        .await
        .expect("send binary");
    assert_eq!(bob.recv().await["code"], "binary_not_supported");
    bob.send(json!({"type": "remove", "participant": 1})).await;
    assert_eq!(bob.recv().await["code"], "not_moderator");
    bob.send(json!({"type": "ping"})).await;
    assert_eq!(bob.recv().await, json!({"type": "pong"}));

    alice
        .send(json!({"type": "remove", "participant": bob_id}))
        .await;
    let removed = bob.recv().await;
    assert_eq!(removed["type"], "removed");
    assert_eq!(bob.closed().await, "removed");
    assert_eq!(
        alice.recv().await,
        json!({"type": "participant_left", "participant": bob_id, "reason": "removed"})
    );

    let (status, _, metrics) = kammer.get("/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "kammer_participants 1",
        "kammer_signal_dropped_total{reason=\"malformed\"} 1",
        "kammer_signal_dropped_total{reason=\"too_large\"} 1",
        "kammer_signal_dropped_total{reason=\"unknown_type\"} 1",
        "kammer_signal_dropped_total{reason=\"binary_not_supported\"} 1",
        "kammer_signal_dropped_total{reason=\"wrong_pin\"} 1",
        "kammer_signal_closed_total{reason=\"removed\"} 1",
        "kammer_chat_messages_total 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line} in\n{metrics}"
        );
    }
}

use futures_util::SinkExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_surface_and_security_headers() {
    let kammer = Appliance::demo();
    let (status, head, body) = kammer.get("/").await;
    assert_eq!(status, 200);
    assert!(body.contains("<html"), "index served");
    let csp = head
        .lines()
        .find_map(|l| l.strip_prefix("content-security-policy: "))
        .expect("CSP header");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    for header in [
        "strict-transport-security: max-age=",
        "x-frame-options: deny",
        "referrer-policy: no-referrer",
        "x-content-type-options: nosniff",
    ] {
        assert!(head.contains(header), "missing {header} in\n{head}");
    }
    assert!(!head.contains("\nserver:"), "no server banner:\n{head}");

    for asset in [
        "/assets/app.js",
        "/assets/i18n.js",
        "/assets/style.css",
        "/assets/icon.svg",
    ] {
        let (status, head, body) = kammer.get(asset).await;
        assert_eq!(status, 200, "{asset}");
        assert!(head.contains("content-security-policy"), "{asset}");
        for scheme in ["http://", "https://"] {
            // The SVG namespace is an identifier, not a location that is fetched.
            let external = body.replace("http://www.w3.org/2000/svg", "");
            assert!(!external.contains(scheme), "{asset} names an external URL");
        }
    }
    assert_eq!(kammer.get("/assets/../Cargo.toml").await.0, 404);
    assert_eq!(kammer.get("/nothing-here").await.0, 404);
    let (status, _, body) = kammer.get("/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, head, body) = kammer.get("/info").await;
    assert_eq!(status, 200);
    assert!(head.contains("application/json"));
    let info: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(info["protocol"], 1);
    assert!(
        info["notice"].as_str().is_some_and(|n| n.contains("Demo")),
        "{info}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_websocket_is_refused() {
    let kammer = Appliance::demo();
    for origin in [None, Some("https://evil.example"), Some("http://127.0.0.1")] {
        match kammer.websocket(origin).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403, "{origin:?}");
            }
            Err(other) => panic!("{origin:?}: unexpected {other}"),
            Ok(_) => panic!("{origin:?}: cross-origin upgrade accepted"),
        }
    }
    let (_, _, metrics) = kammer.get("/metrics").await;
    assert!(
        metrics.contains("kammer_websocket_refused_total 3"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_rate_limited_and_a_huge_frame_ends_only_its_connection() {
    let kammer = Appliance::serve_with(
        "",
        "[signalling]\nmessages_per_second = 1\nmessage_burst = 40\n[metrics]\nenabled = true\nallow = [\"127.0.0.1\"]",
    );
    let mut alice = kammer.client().await;
    alice
        .send(json!({"type": "join", "protocol": 1, "room": "r", "name": "Alice"}))
        .await;
    assert_eq!(alice.recv().await["type"], "joined");

    let mut flooder = kammer.client().await;
    let started = std::time::Instant::now();
    for _ in 0..200 {
        flooder.send(json!({"type": "ping"})).await;
    }
    // With 1 message per second after a burst of 40, the flood must hit the limit; however slow
    // this machine is, no more pongs come back than the burst plus one per elapsed second.
    let mut pongs = 0u64;
    loop {
        let reply = flooder.recv().await;
        match reply["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") => {
                assert_eq!(reply["code"], "rate_limited");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        pongs <= 40 + started.elapsed().as_secs() + 1,
        "{pongs} pongs"
    );

    // Over the hard frame limit (1 MiB) the connection ends; nobody else is affected.
    let huge = "x".repeat(64 * 1024 + 64 * 1024 + 1);
    let _ = flooder
        .ws
        .send(tokio_tungstenite::tungstenite::Message::Text(huge.into()))
        .await;
    let _ = flooder.closed().await;
    alice
        .send(json!({"type": "chat", "text": "still here"}))
        .await;
    assert_eq!(alice.recv().await["text"], "still here");
    let (_, _, metrics) = kammer.get("/metrics").await;
    let limited_count: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("kammer_signal_dropped_total{reason=\"rate_limited\"} "))
        .and_then(|v| v.parse().ok())
        .expect("rate_limited counter");
    assert!(limited_count >= 1, "{limited_count}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_off_by_default_and_closed_to_addresses_outside_the_allowlist() {
    let off = Appliance::serve_with("", "");
    assert_eq!(off.get("/metrics").await.0, 404);
    let elsewhere =
        Appliance::serve_with("", "[metrics]\nenabled = true\nallow = [\"10.0.0.0/8\"]");
    let (status, _, body) = elsewhere.get("/metrics").await;
    assert_eq!(status, 403);
    assert!(!body.contains("kammer_"), "{body}");
    let (status, _, body) = elsewhere.get("/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
}
