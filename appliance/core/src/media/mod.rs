//! The media plane's packet work, without sockets: what arrives on the one UDP port is told apart
//! ([`demux`]), STUN binding requests are checked and answered ([`stun`]), RTP and RTCP are parsed
//! ([`rtp`], [`rtcp`]), session descriptions are read and written ([`sdp`]), the DTLS-SRTP
//! handshake yields SRTP keys ([`dtls`]) and SRTP is removed and applied ([`srtp`]).

pub mod demux;
pub mod dtls;
#[cfg(any(test, feature = "peer"))]
pub mod peer;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod sfu;
pub mod srtp;
pub mod stun;
