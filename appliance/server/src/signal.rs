//! The signalling driver: one task owns the hub; connection tasks send it events.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use kammer_core::media::sfu::{MediaCommand, MediaEvent};
use kammer_core::room::{
    CloseReason, ConnId, Counters, Entropy, Gauges, Hub, Limits, Output, RoomPolicy,
};
use kammer_core::signal::ErrorCode;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use crate::media::{MediaHandle, MediaInput};

/// Events queued towards the driver before connection tasks wait.
const EVENT_QUEUE: usize = 4096;

/// What a connection task tells the driver.
#[derive(Debug)]
pub(crate) enum Event {
    Connect {
        conn: ConnId,
        outbound: mpsc::Sender<Outbound>,
    },
    Text {
        conn: ConnId,
        frame: Vec<u8>,
    },
    Binary {
        conn: ConnId,
    },
    TooLarge {
        conn: ConnId,
    },
    Disconnect {
        conn: ConnId,
    },
    Snapshot(oneshot::Sender<Snapshot>),
    /// From the media thread: a message for a participant.
    Media(MediaEvent),
}

/// What the driver tells a connection task.
#[derive(Debug)]
pub(crate) enum Outbound {
    Text(Arc<str>),
    Close(CloseReason),
}

/// The hub's figures, for `/metrics`.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) counters: Counters,
    pub(crate) gauges: Gauges,
}

/// The handle connection tasks use.
#[derive(Debug, Clone)]
pub(crate) struct HubHandle {
    pub(crate) events: mpsc::Sender<Event>,
    next_conn: Arc<std::sync::atomic::AtomicU64>,
}

impl HubHandle {
    pub(crate) fn new_conn_id(&self) -> ConnId {
        ConnId(
            self.next_conn
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        )
    }

    pub(crate) async fn snapshot(&self) -> Option<Snapshot> {
        let (tx, rx) = oneshot::channel();
        self.events.send(Event::Snapshot(tx)).await.ok()?;
        rx.await.ok()
    }
}

/// The operating system's CSPRNG through ring.
pub(crate) struct SystemEntropy(SystemRandom);

impl SystemEntropy {
    pub(crate) fn new() -> Self {
        Self(SystemRandom::new())
    }
}

impl Entropy for SystemEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        self.0
            .fill(buf)
            .expect("the kernel's random source does not fail after boot");
    }
}

/// Starts the driver task.
///
/// Panic strategy: a panic inside a connection task ends that connection only. A panic inside
/// the hub is a bug that may have left every room in an inconsistent state, so it ends the
/// process (exit code 70) for the service manager to restart it, rather than serving on with
/// signalling silently dead.
pub(crate) fn spawn_driver(
    limits: Limits,
    policy: RoomPolicy,
    media: Option<MediaHandle>,
) -> HubHandle {
    let (events, rx) = mpsc::channel(EVENT_QUEUE);
    let hub = Hub::new(limits, policy, SystemEntropy::new());
    let driver = tokio::spawn(drive(hub, rx, media));
    tokio::spawn(async move {
        if let Err(error) = driver.await
            && error.is_panic()
        {
            tracing::error!("the signalling hub panicked; exiting so that the service restarts");
            std::process::exit(70);
        }
    });
    HubHandle {
        events,
        next_conn: Arc::new(std::sync::atomic::AtomicU64::new(1)),
    }
}

/// Feeds events and timeouts into the hub and carries out its outputs, until every sender is gone.
async fn drive(
    mut hub: Hub<SystemEntropy>,
    mut events: mpsc::Receiver<Event>,
    media: Option<MediaHandle>,
) {
    let mut conns: HashMap<ConnId, mpsc::Sender<Outbound>> = HashMap::new();
    loop {
        let deadline = hub.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                let now = Instant::now();
                match event {
                    Event::Connect { conn, outbound } => {
                        conns.insert(conn, outbound);
                        hub.handle_connect(conn, now);
                    }
                    Event::Text { conn, frame } => hub.handle_message(conn, &frame, now),
                    Event::Binary { conn } => hub.handle_binary(conn, now),
                    Event::TooLarge { conn } => hub.handle_oversized(conn, now),
                    Event::Disconnect { conn } => {
                        conns.remove(&conn);
                        hub.handle_disconnect(conn, now);
                    }
                    Event::Snapshot(reply) => {
                        let _ = reply.send(Snapshot {
                            counters: hub.counters().clone(),
                            gauges: hub.gauges(),
                        });
                    }
                    Event::Media(event) => hub.handle_media(event),
                }
            }
            () = sleep_until(deadline) => hub.handle_timeout(Instant::now()),
        }
        while let Some(output) = hub.poll_output() {
            match output {
                Output::Send { conn, text } => {
                    let Some(tx) = conns.get(&conn) else { continue };
                    match tx.try_send(Outbound::Text(text)) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => hub.handle_slow(conn, Instant::now()),
                        Err(TrySendError::Closed(_)) => {
                            conns.remove(&conn);
                            hub.handle_disconnect(conn, Instant::now());
                        }
                    }
                }
                Output::Close { conn, reason } => {
                    if let Some(tx) = conns.remove(&conn) {
                        tracing::debug!(conn = conn.0, reason = reason.as_str(), "closing");
                        // If the queue is full the dropped sender ends the task all the same.
                        let _ = tx.try_send(Outbound::Close(reason));
                    }
                }
                Output::Media(command) => to_media(&mut hub, media.as_ref(), command),
            }
        }
    }
}

/// Passes a command to the media thread. When there is none, or it is overwhelmed, the
/// participant's request is refused with `media_unavailable` (joins and leaves need no answer).
fn to_media(hub: &mut Hub<SystemEntropy>, media: Option<&MediaHandle>, command: MediaCommand) {
    let participant = match &command {
        MediaCommand::Publish { participant, .. }
        | MediaCommand::SubscribeAnswer { participant, .. } => Some(*participant),
        MediaCommand::Join { .. } | MediaCommand::Leave { .. } => None,
    };
    let sent =
        media.is_some_and(|media| media.inputs.try_send(MediaInput::Command(command)).is_ok());
    if !sent && let Some(participant) = participant {
        hub.handle_media(MediaEvent::Refused {
            participant,
            code: ErrorCode::MediaUnavailable,
        });
    }
}

pub(crate) async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
