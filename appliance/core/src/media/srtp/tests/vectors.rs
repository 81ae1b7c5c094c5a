//! Known-answer vectors: RFC 7714 §16–17 (AES-GCM), RFC 3711 B.2–B.3 (AES-CM keystream and key
//! derivation), and libsrtp's `srtp_validate` and `srtp_validate_gcm` self-tests end to end.

use super::hex;
use crate::media::srtp::keys::{self, Label, MasterKey, SessionKeys, prf};
use crate::media::srtp::transform::Transform;
use crate::media::srtp::{SrtpContext, SrtpError, SrtpProfile};

// ---------------------------------------------------------------------------------------------
// RFC 7714 §16 and §17: AES-GCM with session key and salt given directly.
// ---------------------------------------------------------------------------------------------

const RFC7714_KEY_128: &str = "000102030405060708090a0b0c0d0e0f";
const RFC7714_KEY_256: &str = "000102030405060708090a0b0c0d0e0f 101112131415161718191a1b1c1d1e1f";
/// "Quid pro quo".
const RFC7714_SALT: &str = "517569642070726f2071756f";
/// SSRC 0x5501a0b2, SEQ 0xf17b, ROC 0, payload "Gallia est omnis divisa in partes tres".
const RFC7714_RTP: &str = "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973
                           20646976 69736120 696e2070 61727465 73207472 6573";
const RFC7714_SRTP_128: &str = "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca
                                be633bd5 0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1
                                6a9152cf 765ee439 0cce";
const RFC7714_SRTP_256: &str = "8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa 332e33aa
                                b1801238 9a58e2f3 b50b2a02 76ffae0f 1ba63799 b87b7aa3 db36dfff
                                d6b0f9bb 7878d7a7 6c13";
/// Sender SSRC "Mars", SRTCP index 0x5d4.
const RFC7714_RTCP: &str = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930
                            4c756e61 deadbeef deadbeef deadbeef deadbeef deadbeef";
const RFC7714_RTCP_SSRC: u32 = 0x4d61_7273;
const RFC7714_RTCP_INDEX: u32 = 0x5d4;
const RFC7714_SRTCP_128: &str = "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7
                                 6c06f32d c676a5f1 730d6fda 4ce09b46 86303ded 0bb9275b c84aa458
                                 96cf4d2f c5abf872 45d9eade 800005d4";
const RFC7714_SRTCP_256: &str = "81c8000d 4d617273 d50ae4d1 f5ce5d30 4ba297e4 7d470c28 2c3ece5d
                                 bffe0a50 a2eaa5c1 110555be 8415f658 c61de047 6f1b6fad 1d1eb30c
                                 4446839f 57ff6f6c b26ac3be 800005d4";
/// §17.3 and §17.4: E-bit clear, the RTCP packet only authenticated.
const RFC7714_SRTCP_128_CLEAR: &str = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a
                                       0000e930 4c756e61 deadbeef deadbeef deadbeef deadbeef
                                       deadbeef 841dd968 3dd78ec9 2ae58790 125f62b3 000005d4";
const RFC7714_SRTCP_256_CLEAR: &str = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a
                                       0000e930 4c756e61 deadbeef deadbeef deadbeef deadbeef
                                       deadbeef 91db4afb feee5a97 8fab4393 ed2615fe 000005d4";

fn rfc7714_context(profile: SrtpProfile) -> SrtpContext {
    let key = match profile {
        SrtpProfile::AeadAes128Gcm => hex(RFC7714_KEY_128),
        _ => hex(RFC7714_KEY_256),
    };
    SrtpContext::from_session_keys(profile, &key, &hex(RFC7714_SALT))
}

#[test]
fn rfc7714_rtp_vectors() {
    for (profile, protected) in [
        (SrtpProfile::AeadAes128Gcm, RFC7714_SRTP_128),
        (SrtpProfile::AeadAes256Gcm, RFC7714_SRTP_256),
    ] {
        let mut sender = rfc7714_context(profile);
        let mut packet = hex(RFC7714_RTP);
        sender.protect_rtp(&mut packet).expect("protects");
        assert_eq!(packet, hex(protected), "{profile:?} encryption");

        let mut receiver = rfc7714_context(profile);
        let len = receiver.unprotect_rtp(&mut packet).expect("unprotects");
        assert_eq!(packet[..len], hex(RFC7714_RTP), "{profile:?} decryption");
    }
}

#[test]
fn rfc7714_rtcp_vectors() {
    for (profile, protected) in [
        (SrtpProfile::AeadAes128Gcm, RFC7714_SRTCP_128),
        (SrtpProfile::AeadAes256Gcm, RFC7714_SRTCP_256),
    ] {
        let mut sender = rfc7714_context(profile);
        sender.set_next_srtcp_index(RFC7714_RTCP_SSRC, RFC7714_RTCP_INDEX);
        let mut packet = hex(RFC7714_RTCP);
        sender.protect_rtcp(&mut packet).expect("protects");
        assert_eq!(packet, hex(protected), "{profile:?} encryption");

        let mut receiver = rfc7714_context(profile);
        let len = receiver.unprotect_rtcp(&mut packet).expect("unprotects");
        assert_eq!(packet[..len], hex(RFC7714_RTCP), "{profile:?} decryption");
    }
}

#[test]
fn rfc7714_rtcp_vectors_without_encryption() {
    for (profile, protected) in [
        (SrtpProfile::AeadAes128Gcm, RFC7714_SRTCP_128_CLEAR),
        (SrtpProfile::AeadAes256Gcm, RFC7714_SRTCP_256_CLEAR),
    ] {
        let mut receiver = rfc7714_context(profile);
        let mut packet = hex(protected);
        let len = receiver.unprotect_rtcp(&mut packet).expect("verifies");
        assert_eq!(packet[..len], hex(RFC7714_RTCP), "{profile:?}");

        let mut tampered = hex(protected);
        tampered[20] ^= 1;
        assert_eq!(
            rfc7714_context(profile).unprotect_rtcp(&mut tampered),
            Err(SrtpError::AuthFailed)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// RFC 3711 Appendix B.2 (AES-CM keystream) and B.3 (key derivation).
// ---------------------------------------------------------------------------------------------

#[test]
fn rfc3711_b3_key_derivation() {
    let master = MasterKey::new(
        SrtpProfile::Aes128CmHmacSha1_80,
        &hex("E1F97A0D3E018BE0D64FA32C06DE4139"),
        &hex("0EC675AD498AFEEBB6960B3AABE6"),
    )
    .expect("valid lengths");

    let mut cipher_key = [0; 16];
    prf(&master, Label::RtpEncryption, &mut cipher_key);
    assert_eq!(cipher_key[..], hex("C61E7A93744F39EE10734AFE3FF7A087"));

    let mut cipher_salt = [0; 14];
    prf(&master, Label::RtpSalt, &mut cipher_salt);
    assert_eq!(cipher_salt[..], hex("30CBBC08863D8C85D49DB34A9AE1"));

    let auth_key_94 = hex(
        "CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
         E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
         6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2",
    );
    let mut auth_key = [0; 94];
    prf(&master, Label::RtpAuthentication, &mut auth_key);
    assert_eq!(auth_key[..], auth_key_94);

    // The session keys use the first 16, 14 and 20 bytes of the same streams.
    let session = SessionKeys::derive(&master, keys::Stream::Rtp);
    assert_eq!(session.encryption[..16], cipher_key);
    assert_eq!(session.salt, cipher_salt);
    assert_eq!(session.authentication[..], auth_key_94[..20]);
}

#[test]
fn rfc3711_b2_keystream() {
    let mut keys = SessionKeys {
        encryption: [0; 32],
        salt: [0; 14],
        authentication: [0; 20],
    };
    keys.encryption[..16].copy_from_slice(&hex("2B7E151628AED2A6ABF7158809CF4F3C"));
    keys.salt
        .copy_from_slice(&hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"));
    let Transform::Cm(cm) = Transform::from_session_keys(SrtpProfile::Aes128CmHmacSha1_80, &keys)
    else {
        panic!("AES-CM profile gives an AES-CM transform");
    };
    // SSRC 0, ROC 0, SEQ 0: the counter starts at the salt; blocks 0..=0xFF01.
    let mut keystream = vec![0; 0xff02 * 16];
    cm.keystream_for_test(&mut keystream);
    let block = |counter: usize| &keystream[counter * 16..(counter + 1) * 16];
    assert_eq!(block(0), hex("E03EAD0935C95E80E166B16DD92B4EB4"));
    assert_eq!(block(1), hex("D23513162B02D0F72A43A2FE4A5F97AB"));
    assert_eq!(block(2), hex("41E95B3BB0A2E8DD477901E4FCA894C0"));
    assert_eq!(block(0xfeff), hex("EC8CDF7398607CB0F2D21675EA9EA1E4"));
    assert_eq!(block(0xff00), hex("362B7C3C6773516318A077D7FC5073AE"));
    assert_eq!(block(0xff01), hex("6A2CC3787889374FBEB4C81B17BA6C44"));
}

/// The 96-bit GCM master salt is padded with zeros to 112 bits for the key derivation (what
/// libsrtp does); expected values computed independently with Python's `cryptography`.
#[test]
fn gcm_key_derivation_pads_the_salt() {
    let master = MasterKey::new(
        SrtpProfile::AeadAes128Gcm,
        &hex("000102030405060708090a0b0c0d0e0f"),
        &hex("a0a1a2a3a4a5a6a7a8a9aaab"),
    )
    .expect("valid lengths");
    let rtp = SessionKeys::derive(&master, keys::Stream::Rtp);
    let rtcp = SessionKeys::derive(&master, keys::Stream::Rtcp);
    assert_eq!(
        rtp.encryption[..16],
        hex("077c6143cb221bc355ff23d5f984a16e")
    );
    assert_eq!(rtp.salt[..12], hex("9af3e95364ebac9c99c5a7c4"));
    assert_eq!(
        rtcp.encryption[..16],
        hex("615dcd9042600666f6fd4d9e4fe4519f")
    );
    assert_eq!(rtcp.salt[..12], hex("fcca937b9112a500dac72269"));
    // No authentication key for AEAD profiles.
    assert_eq!(rtp.authentication, [0; 20]);
}

// ---------------------------------------------------------------------------------------------
// libsrtp's self-test vectors: key derivation, cipher and tag end to end.
// ---------------------------------------------------------------------------------------------

const LIBSRTP_RTP: &str = "800f1234 decafbad cafebabe abababab abababab abababab abababab";
const LIBSRTP_RTCP: &str = "81c8000b cafebabe abababab abababab abababab abababab";
const LIBSRTP_SSRC: u32 = 0xcafe_babe;

fn check_known_answer(master: &MasterKey, srtp: &str, srtcp: &str) {
    let mut sender = SrtpContext::new(master);
    let mut receiver = SrtpContext::new(master);

    let mut packet = hex(LIBSRTP_RTP);
    sender.protect_rtp(&mut packet).expect("protects");
    assert_eq!(packet, hex(srtp));
    let len = receiver.unprotect_rtp(&mut packet).expect("unprotects");
    assert_eq!(packet[..len], hex(LIBSRTP_RTP));

    // libsrtp numbers its first SRTCP packet 1.
    sender.set_next_srtcp_index(LIBSRTP_SSRC, 1);
    let mut packet = hex(LIBSRTP_RTCP);
    sender.protect_rtcp(&mut packet).expect("protects");
    assert_eq!(packet, hex(srtcp));
    let len = receiver.unprotect_rtcp(&mut packet).expect("unprotects");
    assert_eq!(packet[..len], hex(LIBSRTP_RTCP));
}

#[test]
fn libsrtp_aes_cm_hmac_sha1_80_vectors() {
    let master = MasterKey::new(
        SrtpProfile::Aes128CmHmacSha1_80,
        &hex("e1f97a0d3e018be0d64fa32c06de4139"),
        &hex("0ec675ad498afeebb6960b3aabe6"),
    )
    .expect("valid lengths");
    check_known_answer(
        &master,
        "800f1234 decafbad cafebabe 4e55dc4c e79978d8 8ca4d215 949d2402 b78d6acc 99ea179b 8dbb",
        "81c8000b cafebabe 7128035b e487b9bd bef89041 f977a5a8 80000001 993e08cd 54d6c123 0798",
    );
}

#[test]
fn libsrtp_aead_aes_128_gcm_vectors() {
    let master = MasterKey::new(
        SrtpProfile::AeadAes128Gcm,
        &hex("000102030405060708090a0b0c0d0e0f"),
        &hex("a0a1a2a3a4a5a6a7a8a9aaab"),
    )
    .expect("valid lengths");
    check_known_answer(
        &master,
        "800f1234 decafbad cafebabe c5002ede 04cfdd2e b91159e0 880aa06e d2976826 f796b201 df3131a1
         27e8a392",
        "81c8000b cafebabe c98b8b5d f0392a55 852b6c21 ac8e7025 c52c6fbe a2b3b446 ea31123b a88ce61e
         80000001",
    );
}
