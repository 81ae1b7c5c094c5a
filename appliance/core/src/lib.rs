//! The sans-IO core of Kammer.
//!
//! This crate holds the appliance's protocol and room logic as plain state machines. It does no
//! I/O: it opens no socket, reads no clock, starts no thread and touches no file. Bytes and the
//! current time come in as arguments of `handle_*` methods; messages to send, connections to close
//! and the next deadline come out of `poll_*` methods. The tokio shell in `kammer-server` feeds it
//! and carries out what it asks for; tests feed it directly, in simulated time.
//!
//! * [`signal`] is the wire format of the signalling protocol (docs/protocol.md): parsing with size
//!   limits and strict schemas, and the messages the server sends.
//! * [`room`] is the meeting logic: rooms with PIN and moderator secret, the lobby, roles, chat,
//!   raised hands, moderator actions, rate limits and idle timeouts — all behind one [`room::Hub`].
//! * [`media`] is the media plane's packet work: STUN for ICE-lite, the RFC 7983 demultiplexer,
//!   RTP/RTCP parsing, the DTLS-SRTP handshake (on rtc-dtls) and SRTP protection (per-packet
//!   work on ring).
//! * [`secret`] holds the type that keeps PINs and moderator secrets out of logs and memory.
//!
//! Invariants: no input can make the core panic (every parser is fuzzed); a misbehaving
//! connection only ever affects itself; every dropped message is counted by reason.
//! What the core refuses to do: pick randomness itself (it asks an [`room::Entropy`] the shell
//! provides), or decide how to write to a socket. One exception: the DTLS handshake
//! ([`media::dtls`]) draws its keys, nonces and randoms from ring's system RNG inside rtc-dtls,
//! which also stamps the wall-clock time into its hello randoms.

pub mod media;
pub mod room;
pub mod secret;
pub mod signal;
