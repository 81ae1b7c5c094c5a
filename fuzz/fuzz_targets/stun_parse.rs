//! Any bytes into the STUN parser and the ICE-lite check: an error or a message, never a panic.
//! Every counted attribute lies inside the message; every response the agent writes parses and
//! carries a valid FINGERPRINT; a request built by the client encoder from the input is accepted
//! unless a byte of it was flipped.
#![no_main]

use std::net::SocketAddr;

use kammer_core::media::stun::{
    BindingDecision, BindingRequest, IceRole, StunMessage, TransactionId, answer_binding_request,
    encode_binding_request, encode_binding_success,
};
use libfuzzer_sys::fuzz_target;

const KEY: &[u8] = b"fuzz-password-0123456789";

fn lookup(ufrag: &str) -> Option<&'static [u8]> {
    (ufrag == "loc").then_some(KEY)
}

/// Checks one datagram; returns the decision if it parsed.
fn check(data: &[u8]) -> Option<bool> {
    let message = StunMessage::parse(data).ok()?;
    let whole = data.as_ptr_range();
    for attribute in message.attributes() {
        let value = attribute.value.as_ptr_range();
        assert!(whole.start <= value.start && value.end <= whole.end);
    }
    let _ = (
        message.username(),
        message.software(),
        message.priority(),
        message.use_candidate(),
        message.ice_controlling(),
        message.ice_controlled(),
        message.error_code(),
        message.fingerprint(),
        message.message_integrity(),
        message.unknown_required_attribute(),
    );
    let _ = message.verify_fingerprint();
    let _ = message.verify_integrity(KEY);

    let source: SocketAddr = "[2001:db8::9]:4711".parse().expect("literal address");
    let mut out = Vec::new();
    let decision = answer_binding_request(&message, source, lookup, &mut out);
    if let BindingDecision::Reject(reason) = decision {
        assert_eq!(out.is_empty(), reason.response().is_none());
    }
    if !out.is_empty() {
        let response = StunMessage::parse(&out).expect("our responses parse");
        assert_eq!(response.transaction_id(), message.transaction_id());
        assert!(response.verify_fingerprint().is_ok());
        if let BindingDecision::Accept(_) = decision {
            assert!(response.verify_integrity(KEY).is_ok());
            assert_eq!(response.xor_mapped_address(), Some(source));
        }
    }

    // A success response carrying the address this message carries round-trips.
    if let Some(mapped) = message.xor_mapped_address() {
        out.clear();
        encode_binding_success(&message.transaction_id(), mapped, KEY, &mut out);
        let response = StunMessage::parse(&out).expect("our responses parse");
        assert_eq!(response.xor_mapped_address(), Some(mapped));
        assert!(response.verify_integrity(KEY).is_ok());
        assert!(response.verify_fingerprint().is_ok());
    }
    Some(matches!(decision, BindingDecision::Accept(_)))
}

fuzz_target!(|data: &[u8]| {
    check(data);

    // The input as the remote ufrag of a client request, then maybe one byte flipped.
    let [flip_at, flip, id @ .., _] = data else {
        return;
    };
    let remote = String::from_utf8_lossy(&id[..id.len().min(64)]);
    let username = format!("loc:{remote}");
    let mut transaction_id = [0; 12];
    for (slot, byte) in transaction_id.iter_mut().zip(data.iter().rev()) {
        *slot = *byte;
    }
    let mut request = Vec::new();
    encode_binding_request(
        &BindingRequest {
            transaction_id: TransactionId(transaction_id),
            username: &username,
            password: KEY,
            priority: u32::from(*flip_at) << 8 | u32::from(*flip),
            role: IceRole::Controlling(u64::from(*flip)),
            use_candidate: flip_at & 1 == 1,
        },
        &mut request,
    )
    .expect("username under 512 bytes");
    let accepted = check(&request).expect("the client encoder writes valid messages");
    assert_eq!(accepted, !remote.is_empty());
    if *flip != 0 {
        let at = usize::from(*flip_at) % request.len();
        request[at] ^= flip;
        // A flipped byte never makes the agent accept: FINGERPRINT or MESSAGE-INTEGRITY catch it.
        assert_ne!(check(&request), Some(true));
    }
});
