//! Records of bytes into SRTP and SRTCP under a fixed key, for every profile: raw bytes into
//! `unprotect_*` (an error, never a panic), and packets protected by a sender with the same key,
//! sometimes with one bit flipped, into the receiver: an unchanged packet comes back as it was
//! sent, a flipped one is refused.
#![no_main]

use kammer_core::media::srtp::{MasterKey, SrtpContext, SrtpProfile};
use libfuzzer_sys::fuzz_target;

const KEY: [u8; 32] = [0x42; 32];
const SALT: [u8; 14] = [0x17; 14];

fn context(profile: SrtpProfile) -> SrtpContext {
    let key = MasterKey::new(
        profile,
        &KEY[..profile.master_key_len()],
        &SALT[..profile.master_salt_len()],
    )
    .expect("the fixed key and salt are long enough for every profile");
    SrtpContext::new(&key).with_max_ssrcs(8)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let profile = SrtpProfile::ALL[usize::from(first) % SrtpProfile::ALL.len()];
    let mut sender = context(profile);
    let mut receiver = context(profile);
    // While true, the receiver has seen exactly what the sender protected, so every unchanged
    // packet must come through.
    let mut in_step = true;
    let mut buffer = Vec::with_capacity(1024);
    // Each record: an operation byte, a length byte, then that many bytes.
    while let [op, len, tail @ ..] = rest {
        let (chunk, next) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = next;
        buffer.clear();
        buffer.extend_from_slice(chunk);
        let rtcp = op & 1 != 0;
        if op & 2 == 0 {
            let result = if rtcp {
                receiver.unprotect_rtcp(&mut buffer)
            } else {
                receiver.unprotect_rtp(&mut buffer)
            };
            if let Ok(len) = result {
                // Forging a tag by chance is out of reach; keep the check honest if it happens.
                assert!(len <= chunk.len());
                in_step = false;
            }
            continue;
        }
        let protected = if rtcp {
            sender.protect_rtcp(&mut buffer)
        } else {
            sender.protect_rtp(&mut buffer)
        };
        if protected.is_err() {
            assert_eq!(buffer, chunk, "a refused packet is left as it was");
            continue;
        }
        let flip = op & 4 != 0;
        if flip {
            let at = (usize::from(op >> 3) * 37 + chunk.len()) % buffer.len();
            buffer[at] ^= 1 << (op >> 5);
        }
        let result = if rtcp {
            receiver.unprotect_rtcp(&mut buffer)
        } else {
            receiver.unprotect_rtp(&mut buffer)
        };
        if flip {
            assert!(result.is_err(), "a flipped bit must not authenticate");
            in_step = false;
        } else if in_step {
            let len = result.expect("a packet protected under the same key comes through");
            assert_eq!(&buffer[..len], chunk);
        } else if let Ok(len) = result {
            assert_eq!(&buffer[..len], chunk);
        }
    }
});
