//! The media plane in its own process: the link between the signalling worker's hub and the
//! media worker's SFU thread, over a Unix socket (frames of [`crate::ipc`]).
//!
//! On the signalling side a bridge task stands in for the media thread: it forwards the hub's
//! commands and `/metrics` requests, and hands media events back. While the media worker is
//! gone (it died and the supervisor is starting a new one) requests that need an answer are
//! refused with `media_unavailable`; when a new link arrives, every participant still in a room
//! is joined again and told `media_reset`, upon which clients publish again on new
//! connections.

use std::collections::{BTreeMap, VecDeque};
use std::net::UdpSocket;
use std::os::unix::net::UnixStream;

use kammer_core::media::sfu::{MediaCommand, MediaEvent};
use kammer_core::signal::ErrorCode;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot};

use crate::ipc::{self, FromMedia, ToMedia};
use crate::media::{self, MediaError, MediaInput, MediaSettings, MediaSocket};
use crate::signal::Event;

/// The media plane of a signalling worker whose SFU runs in another process.
#[derive(Debug)]
pub struct RemoteMedia {
    /// The link to the current media worker.
    pub link: UnixStream,
    /// Links to media workers started later (after the previous one died).
    pub relinks: mpsc::Receiver<UnixStream>,
}

/// What a link's reader task reports, tagged with the link's generation.
enum Received {
    Frame(u64, FromMedia),
    Gone(u64),
}

struct Link {
    generation: u64,
    writer: OwnedWriteHalf,
}

/// Starts a reader task for `stream` and returns its writing half.
fn open_link(
    stream: UnixStream,
    generation: u64,
    received: &mpsc::Sender<Received>,
) -> std::io::Result<Link> {
    stream.set_nonblocking(true)?;
    let (mut reader, writer) = tokio::net::UnixStream::from_std(stream)?.into_split();
    let received = received.clone();
    tokio::spawn(async move {
        loop {
            match ipc::recv_async::<FromMedia>(&mut reader).await {
                Ok(frame) => {
                    if received
                        .send(Received::Frame(generation, frame))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "the media worker's link ended");
                    let _ = received.send(Received::Gone(generation)).await;
                    return;
                }
            }
        }
    });
    Ok(Link { generation, writer })
}

/// The signalling side: runs until the hub's media handle is dropped.
pub(crate) async fn bridge(
    mut remote: RemoteMedia,
    mut inputs: mpsc::Receiver<MediaInput>,
    events: mpsc::Sender<Event>,
) {
    let (received_tx, mut received) = mpsc::channel(1024);
    let mut generation = 0;
    let mut link = open_link(remote.link, generation, &received_tx)
        .map_err(|error| tracing::error!(%error, "cannot use the media link"))
        .ok();
    // Who is in which room, to join them again on a new media worker.
    let mut joined: BTreeMap<u64, String> = BTreeMap::new();
    let mut metrics: VecDeque<oneshot::Sender<String>> = VecDeque::new();
    let mut relinks_open = true;
    loop {
        tokio::select! {
            input = inputs.recv() => {
                let Some(input) = input else { return };
                let message = match input {
                    MediaInput::Command(command) => {
                        match &command {
                            MediaCommand::Join { participant, room } => {
                                joined.insert(*participant, room.clone());
                            }
                            MediaCommand::Leave { participant } => {
                                joined.remove(participant);
                            }
                            MediaCommand::Publish { .. } | MediaCommand::SubscribeAnswer { .. } => {}
                        }
                        ToMedia::Command(command)
                    }
                    MediaInput::Metrics(reply) => {
                        if link.is_some() {
                            metrics.push_back(reply);
                        }
                        ToMedia::Metrics
                    }
                };
                let sent = match &mut link {
                    Some(current) => ipc::send_async(&mut current.writer, &message).await.is_ok(),
                    None => false,
                };
                if !sent {
                    link = None;
                    metrics.clear();
                    if let ToMedia::Command(command) = message
                        && let Some(participant) = needs_answer(&command)
                    {
                        let refused = MediaEvent::Refused { participant, code: ErrorCode::MediaUnavailable };
                        if events.send(Event::Media(refused)).await.is_err() {
                            return;
                        }
                    }
                }
            }
            received = received.recv() => match received {
                Some(Received::Frame(from, frame)) if link.as_ref().is_some_and(|l| l.generation == from) => {
                    match frame {
                        FromMedia::Event(event) => {
                            if events.send(Event::Media(event)).await.is_err() {
                                return;
                            }
                        }
                        FromMedia::Metrics(text) => {
                            if let Some(reply) = metrics.pop_front() {
                                let _ = reply.send(text);
                            }
                        }
                    }
                }
                Some(Received::Gone(from)) if link.as_ref().is_some_and(|l| l.generation == from) => {
                    link = None;
                    metrics.clear();
                }
                // From a link replaced since.
                Some(_) => {}
                None => return,
            },
            stream = remote.relinks.recv(), if relinks_open => {
                let Some(stream) = stream else {
                    relinks_open = false;
                    continue;
                };
                generation += 1;
                metrics.clear();
                link = match open_link(stream, generation, &received_tx) {
                    Ok(mut fresh) => {
                        tracing::info!(participants = joined.len(), "a new media worker is linked");
                        let mut ok = true;
                        for (participant, room) in &joined {
                            let join = ToMedia::Command(MediaCommand::Join {
                                participant: *participant,
                                room: room.clone(),
                            });
                            ok &= ipc::send_async(&mut fresh.writer, &join).await.is_ok();
                        }
                        // Their transports ended with the old worker: they publish again.
                        for participant in joined.keys() {
                            let reset = MediaEvent::Reset { participant: *participant };
                            if events.send(Event::Media(reset)).await.is_err() {
                                return;
                            }
                        }
                        ok.then_some(fresh)
                    }
                    Err(error) => {
                        tracing::error!(%error, "cannot use the new media link");
                        None
                    }
                };
            }
        }
    }
}

/// The participant a command needs an answer for, if any.
fn needs_answer(command: &MediaCommand) -> Option<u64> {
    match command {
        MediaCommand::Publish { participant, .. }
        | MediaCommand::SubscribeAnswer { participant, .. } => Some(*participant),
        MediaCommand::Join { .. } | MediaCommand::Leave { .. } => None,
    }
}

/// The media worker: runs the SFU thread on `socket` and serves the link on this thread until
/// the signalling worker closes it.
pub fn run_media_worker(
    socket: UdpSocket,
    settings: &MediaSettings,
    link: UnixStream,
) -> Result<(), MediaError> {
    let plane = MediaSocket::from_socket(socket, settings)?;
    let (handle, inputs) = media::channel();
    let (events_tx, mut events_rx) = mpsc::channel::<Event>(1024);
    media::spawn(plane, inputs, events_tx)?;
    let failed = |source| MediaError::Bind {
        address: settings.listen,
        source,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(failed)?;
    runtime.block_on(async move {
        link.set_nonblocking(true).map_err(failed)?;
        let (mut reader, mut writer) = tokio::net::UnixStream::from_std(link)
            .map_err(failed)?
            .into_split();
        let (out_tx, mut out_rx) = mpsc::channel::<FromMedia>(1024);
        let events_out = out_tx.clone();
        tokio::spawn(async move {
            while let Some(event) = events_rx.recv().await {
                let Event::Media(event) = event else { continue };
                if events_out.send(FromMedia::Event(event)).await.is_err() {
                    return;
                }
            }
        });
        tokio::spawn(async move {
            while let Some(message) = out_rx.recv().await {
                if ipc::send_async(&mut writer, &message).await.is_err() {
                    return;
                }
            }
        });
        loop {
            match ipc::recv_async::<ToMedia>(&mut reader).await {
                Ok(ToMedia::Command(command)) => {
                    if handle
                        .inputs
                        .send(MediaInput::Command(command))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Ok(ToMedia::Metrics) => {
                    let (reply, answer) = oneshot::channel();
                    if handle
                        .inputs
                        .send(MediaInput::Metrics(reply))
                        .await
                        .is_err()
                    {
                        break;
                    }
                    if let Ok(text) = answer.await
                        && out_tx.send(FromMedia::Metrics(text)).await.is_err()
                    {
                        break;
                    }
                }
                Err(ipc::IpcError::Closed) => {
                    tracing::info!("the signalling worker closed the media link");
                    break;
                }
                Err(error) => {
                    tracing::error!(%error, "the media link failed");
                    break;
                }
            }
        }
        Ok(())
    })
}
