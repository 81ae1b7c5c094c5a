//! Tests of SRTP: known-answer vectors in [`vectors`], behaviour (keys, round trips, replay,
//! rollover, tampering, limits) in [`behaviour`], and the helpers both share.

mod behaviour;
mod vectors;

use super::{MasterKey, SrtpContext, SrtpError, SrtpProfile};

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).expect("ASCII digits");
            u8::from_str_radix(pair, 16).expect("hex digits")
        })
        .collect()
}

fn master(profile: SrtpProfile, fill: u8) -> MasterKey {
    MasterKey::new(
        profile,
        &vec![fill; profile.master_key_len()],
        &vec![fill ^ 0x5a; profile.master_salt_len()],
    )
    .expect("valid lengths")
}

/// A sending and a receiving context with the same key.
fn pair(profile: SrtpProfile) -> (SrtpContext, SrtpContext) {
    let key = master(profile, 0x42);
    (SrtpContext::new(&key), SrtpContext::new(&key))
}

/// An RTP packet; with `extension` non-empty it carries CSRCs and a header extension.
fn rtp_packet(seq: u16, ssrc: u32, extension: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x80, 96];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    if !extension.is_empty() {
        assert!(extension.len().is_multiple_of(4));
        packet[0] |= 0x10 | 2; // X bit, two CSRCs
        packet.extend_from_slice(&[0x11; 8]);
        packet.extend_from_slice(&[0xbe, 0xde]);
        let words = u16::try_from(extension.len() / 4).expect("short extension");
        packet.extend_from_slice(&words.to_be_bytes());
        packet.extend_from_slice(extension);
    }
    packet.extend_from_slice(payload);
    packet
}

fn rtcp_packet(ssrc: u32, body: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x80, 201, 0, 1];
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend_from_slice(body);
    packet
}

fn protect(sender: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut packet = plain.to_vec();
    sender.protect_rtp(&mut packet).expect("protects");
    packet
}

fn unprotect(receiver: &mut SrtpContext, protected: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut packet = protected.to_vec();
    let len = receiver.unprotect_rtp(&mut packet)?;
    packet.truncate(len);
    Ok(packet)
}

fn unprotect_rtcp(receiver: &mut SrtpContext, protected: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut packet = protected.to_vec();
    let len = receiver.unprotect_rtcp(&mut packet)?;
    packet.truncate(len);
    Ok(packet)
}
