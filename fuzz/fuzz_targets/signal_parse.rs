//! Any bytes into the signalling parser: an error or a message, never a panic; a message that
//! parses has a known type.
#![no_main]

use kammer_core::signal::{ClientMessage, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = parse(data, 16 * 1024) {
        assert!(ClientMessage::TYPES.contains(&message.kind()));
    }
});
