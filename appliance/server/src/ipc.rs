//! Messages between the appliance's processes (see docs/hardening.md): length-prefixed JSON
//! frames over Unix stream sockets that the supervisor creates with `socketpair(2)`.
//!
//! A frame is a 4-byte big-endian length and that many bytes of JSON. Frames larger than
//! [`MAX_FRAME`] are refused before anything is allocated for them; a malformed frame ends the
//! link (the peer is a process of our own that misbehaves, not a client to be forgiving with).
//! Sockets that carry file descriptors (`SCM_RIGHTS`) must only be read with
//! [`recv_with_fds`], because a plain read would discard (and close) descriptors attached to
//! the bytes it consumes.

#![allow(unsafe_code)] // one place: taking ownership of descriptors received with SCM_RIGHTS

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use kammer_core::media::sfu::{MediaCommand, MediaEvent};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame either side accepts (an SDP offer of a full room, or the media metrics page).
pub const MAX_FRAME: usize = 4 << 20;

/// Most descriptors one frame carries.
const MAX_FDS: usize = 8;

/// A link that failed.
#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    /// The peer closed the link between frames.
    #[error("the peer closed the link")]
    Closed,
    /// Reading or writing failed.
    #[error("link error: {0}")]
    Io(#[from] std::io::Error),
    /// A frame announced more than [`MAX_FRAME`] bytes.
    #[error("a frame of {0} bytes is larger than allowed")]
    TooLarge(usize),
    /// A frame was not the expected message.
    #[error("a malformed frame: {0}")]
    Malformed(#[from] serde_json::Error),
}

fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, IpcError> {
    let body = serde_json::to_vec(message)?;
    if body.len() > MAX_FRAME {
        return Err(IpcError::TooLarge(body.len()));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

fn frame_len(header: [u8; 4]) -> Result<usize, IpcError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(IpcError::TooLarge(len));
    }
    Ok(len)
}

/// Reads exactly `buf.len()` bytes; a clean end of stream before the first byte is
/// [`IpcError::Closed`].
fn read_header(stream: &mut impl Read) -> Result<[u8; 4], IpcError> {
    let mut header = [0u8; 4];
    let mut filled = 0;
    while filled < header.len() {
        match stream.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Err(IpcError::Closed),
            Ok(0) => return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => filled += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(header)
}

/// Sends one frame (blocking).
pub fn send<T: Serialize>(stream: &mut impl Write, message: &T) -> Result<(), IpcError> {
    stream.write_all(&encode(message)?)?;
    Ok(())
}

/// Receives one frame (blocking).
pub fn recv<T: DeserializeOwned>(stream: &mut impl Read) -> Result<T, IpcError> {
    let len = frame_len(read_header(stream)?)?;
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    Ok(serde_json::from_slice(&body)?)
}

/// Sends one frame with descriptors attached to its first byte.
pub fn send_with_fds<T: Serialize>(
    stream: &UnixStream,
    message: &T,
    fds: &[BorrowedFd<'_>],
) -> Result<(), IpcError> {
    let frame = encode(message)?;
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let control = [ControlMessage::ScmRights(&raw)];
    let control: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &control };
    let sent = loop {
        match sendmsg::<()>(
            stream.as_raw_fd(),
            &[IoSlice::new(&frame)],
            control,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Err(nix::errno::Errno::EINTR) => {}
            other => break other.map_err(std::io::Error::from)?,
        }
    };
    // The descriptors went with the first byte; the rest is ordinary data.
    (&*stream).write_all(&frame[sent..])?;
    Ok(())
}

/// Receives one frame and the descriptors that came with it (blocking).
pub fn recv_with_fds<T: DeserializeOwned>(
    stream: &UnixStream,
) -> Result<(T, Vec<OwnedFd>), IpcError> {
    let mut fds = Vec::new();
    let mut header = [0u8; 4];
    let mut filled = 0;
    while filled < header.len() {
        let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
        let mut iov = [IoSliceMut::new(&mut header[filled..])];
        let message = match recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(message) => message,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(error) => return Err(std::io::Error::from(error).into()),
        };
        for control in message.cmsgs().map_err(std::io::Error::from)? {
            if let ControlMessageOwned::ScmRights(received) = control {
                // SAFETY: the kernel has just installed these descriptors in this process for
                // us (SCM_RIGHTS); nothing else refers to them, so we are their only owner.
                fds.extend(
                    received
                        .into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        let read = message.bytes;
        if read == 0 {
            return Err(if filled == 0 {
                IpcError::Closed
            } else {
                std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into()
            });
        }
        filled += read;
    }
    let len = frame_len(header)?;
    let mut body = vec![0u8; len];
    (&*stream).read_exact(&mut body)?;
    Ok((serde_json::from_slice(&body)?, fds))
}

/// Takes ownership of a descriptor this process inherited at `exec`, after checking that it is
/// open.
pub fn inherited_fd(fd: RawFd) -> std::io::Result<OwnedFd> {
    nix::fcntl::fcntl(
        // SAFETY: only borrowed for the duration of the check.
        unsafe { BorrowedFd::borrow_raw(fd) },
        nix::fcntl::FcntlArg::F_GETFD,
    )
    .map_err(std::io::Error::from)?;
    // SAFETY: the supervisor passed this descriptor to this process at exec (its number is on
    // our command line) and no other code of this process knows or owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Marks every descriptor above the standard streams close-on-exec: whatever the caller of
/// the appliance left open (a shell's, a service manager's) must not reach the children.
pub fn close_inherited_on_exec() -> std::io::Result<()> {
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: only borrowed for the call; a descriptor that closed since the listing
        // (the directory's own) makes fcntl fail with EBADF, which is ignored.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let _ = nix::fcntl::fcntl(
            borrowed,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
    }
    Ok(())
}

/// Sends one frame (async).
pub async fn send_async<T: Serialize>(
    stream: &mut (impl AsyncWrite + Unpin),
    message: &T,
) -> Result<(), IpcError> {
    stream.write_all(&encode(message)?).await?;
    Ok(())
}

/// Receives one frame (async).
pub async fn recv_async<T: DeserializeOwned>(
    stream: &mut (impl AsyncRead + Unpin),
) -> Result<T, IpcError> {
    let mut header = [0u8; 4];
    match stream.read_exact(&mut header).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(IpcError::Closed);
        }
        Err(error) => return Err(error.into()),
    }
    let len = frame_len(header)?;
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    Ok(serde_json::from_slice(&body)?)
}

/// From the signalling worker to the media worker.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) enum ToMedia {
    /// A command of the hub.
    Command(MediaCommand),
    /// Asks for the media part of `/metrics`.
    Metrics,
}

/// From the media worker to the signalling worker.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) enum FromMedia {
    /// An event for the hub.
    Event(MediaEvent),
    /// The media part of `/metrics`, answering [`ToMedia::Metrics`].
    Metrics(String),
}

/// A request of the signalling worker to the key manager process.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum KeyRequest {
    /// Sign a TLS handshake message with the TLS key, in this scheme (a rustls
    /// `SignatureScheme` as its wire value).
    SignTls {
        /// Numbers the request; the reply carries it, so that a reply that came too late for
        /// its request is recognised and dropped.
        id: u64,
        /// The scheme.
        scheme: u16,
        /// The message (rustls hands it over unhashed).
        message: Vec<u8>,
    },
}

/// The key manager process's answer.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum KeyReply {
    /// The signature for request `id`.
    Signature {
        /// The request.
        id: u64,
        /// The signature.
        signature: Vec<u8>,
    },
    /// Request `id` was refused, with the reason.
    Refused {
        /// The request.
        id: u64,
        /// Why.
        reason: String,
    },
}

impl KeyReply {
    /// The request this answers.
    pub fn id(&self) -> u64 {
        match self {
            KeyReply::Signature { id, .. } | KeyReply::Refused { id, .. } => *id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_descriptors_cross_a_socketpair() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let (extra, _keep) = UnixStream::pair().expect("socketpair");
        send_with_fds(
            &a,
            &vec!["one".to_owned()],
            &[std::os::fd::AsFd::as_fd(&extra)],
        )
        .expect("send");
        send(&mut &a, &7u32).expect("send");
        let (first, fds): (Vec<String>, _) = recv_with_fds(&b).expect("receive");
        assert_eq!(first, ["one"]);
        assert_eq!(fds.len(), 1);
        let (second, fds): (u32, _) = recv_with_fds(&b).expect("receive");
        assert_eq!((second, fds.len()), (7, 0));
        drop(a);
        assert!(matches!(recv::<u32>(&mut &b), Err(IpcError::Closed)));
    }

    #[test]
    fn oversized_and_malformed_frames_are_refused() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        (&a).write_all(&(MAX_FRAME as u32 + 1).to_be_bytes())
            .expect("write");
        assert!(matches!(recv::<u32>(&mut &b), Err(IpcError::TooLarge(_))));
        let (a, b) = UnixStream::pair().expect("socketpair");
        (&a).write_all(&3u32.to_be_bytes()).expect("write");
        (&a).write_all(b"{x}").expect("write");
        assert!(matches!(recv::<u32>(&mut &b), Err(IpcError::Malformed(_))));
    }
}
