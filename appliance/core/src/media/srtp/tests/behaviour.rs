//! Behaviour for every profile: profiles and keys, the RFC 5764 split, round trips, replay,
//! rollover, tampering, index reuse, limits and malformed input.

use super::{master, pair, protect, rtcp_packet, rtp_packet, unprotect, unprotect_rtcp};
use crate::media::srtp::{
    DtlsRole, MasterKey, MasterKeys, RTCP_REPLAY_WINDOW, RTP_REPLAY_WINDOW, SrtpContext, SrtpError,
    SrtpProfile,
};

// ---------------------------------------------------------------------------------------------
// Profiles, keys and the RFC 5764 split.
// ---------------------------------------------------------------------------------------------

#[test]
fn profile_ids_and_lengths() {
    assert_eq!(
        SrtpProfile::from_id(0x0001),
        Ok(SrtpProfile::Aes128CmHmacSha1_80)
    );
    assert_eq!(SrtpProfile::from_id(0x0007), Ok(SrtpProfile::AeadAes128Gcm));
    assert_eq!(SrtpProfile::from_id(0x0008), Ok(SrtpProfile::AeadAes256Gcm));
    for id in [0x0000, 0x0002, 0x0005, 0x0006, 0x0009, 0xffff] {
        assert_eq!(SrtpProfile::from_id(id), Err(SrtpError::UnknownProfile));
    }
    for profile in SrtpProfile::ALL {
        assert_eq!(SrtpProfile::from_id(profile.id()), Ok(profile));
        assert!(profile.name().starts_with("SRTP_"));
    }
    let lengths =
        SrtpProfile::ALL.map(|p| (p.keying_material_len(), p.rtp_overhead(), p.rtcp_overhead()));
    assert_eq!(lengths, [(56, 16, 20), (88, 16, 20), (60, 10, 14)]);
}

#[test]
fn master_key_checks_lengths_and_redacts() {
    let profile = SrtpProfile::AeadAes128Gcm;
    assert_eq!(
        MasterKey::new(profile, &[1; 15], &[2; 12]).err(),
        Some(SrtpError::KeyLength)
    );
    assert_eq!(
        MasterKey::new(profile, &[1; 16], &[2; 14]).err(),
        Some(SrtpError::KeyLength)
    );
    let key = MasterKey::new(profile, &[0xab; 16], &[0xcd; 12]).expect("valid lengths");
    let shown = format!("{key:?} {:?}", SrtpContext::new(&key));
    assert!(shown.contains("[redacted]"), "{shown}");
    assert!(!shown.contains("171") && !shown.contains("ab"), "{shown}");
}

#[test]
fn keying_material_splits_by_role() {
    let profile = SrtpProfile::AeadAes128Gcm;
    // client key | server key | client salt | server salt
    let mut material = Vec::new();
    material.extend_from_slice(&[0xc1; 16]);
    material.extend_from_slice(&[0x51; 16]);
    material.extend_from_slice(&[0xc2; 12]);
    material.extend_from_slice(&[0x52; 12]);

    let server =
        MasterKeys::from_keying_material(profile, &material, DtlsRole::Server).expect("splits");
    let client =
        MasterKeys::from_keying_material(profile, &material, DtlsRole::Client).expect("splits");
    let client_write = MasterKey::new(profile, &[0xc1; 16], &[0xc2; 12]).expect("valid");
    let server_write = MasterKey::new(profile, &[0x51; 16], &[0x52; 12]).expect("valid");

    // Same keys give the same SRTP packet; compare through protection, the keys stay private.
    let seal = |key: &MasterKey| {
        let mut packet = rtp_packet(7, 0x1234, &[], b"hello");
        SrtpContext::new(key)
            .protect_rtp(&mut packet)
            .expect("protects");
        packet
    };
    assert_eq!(seal(&server.local), seal(&server_write));
    assert_eq!(seal(&server.remote), seal(&client_write));
    assert_eq!(seal(&client.local), seal(&client_write));
    assert_eq!(seal(&client.remote), seal(&server_write));
    assert_ne!(seal(&server.local), seal(&server.remote));

    // The two ends talk to each other in both directions.
    let mut to_client = SrtpContext::new(&server.local);
    let mut from_server = SrtpContext::new(&client.remote);
    let mut packet = rtp_packet(1, 9, &[], b"down");
    to_client.protect_rtp(&mut packet).expect("protects");
    let len = from_server.unprotect_rtp(&mut packet).expect("unprotects");
    assert_eq!(packet[..len], rtp_packet(1, 9, &[], b"down"));

    for len in [0, 55, 57, 60, 88] {
        assert_eq!(
            MasterKeys::from_keying_material(profile, &vec![0; len], DtlsRole::Server).err(),
            Some(SrtpError::KeyingMaterialLength)
        );
    }
    for profile in SrtpProfile::ALL {
        let material = vec![7; profile.keying_material_len()];
        assert!(MasterKeys::from_keying_material(profile, &material, DtlsRole::Client).is_ok());
    }
}

#[test]
fn error_names_are_unique() {
    let mut names: Vec<_> = SrtpError::ALL.iter().map(|e| e.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), SrtpError::ALL.len());
}

// ---------------------------------------------------------------------------------------------
// Round trips, replay, rollover and tampering, for every profile.
// ---------------------------------------------------------------------------------------------

#[test]
fn round_trip_every_profile() {
    for profile in SrtpProfile::ALL {
        let (mut sender, mut receiver) = pair(profile);
        for (seq, (extension, payload)) in [
            (&[][..], &b""[..]),
            (&[][..], &b"x"[..]),
            (
                &[1, 2, 3, 4, 5, 6, 7, 8][..],
                &b"payload after an extension"[..],
            ),
            (&[][..], &[0x99; 1200][..]),
        ]
        .into_iter()
        .enumerate()
        {
            let seq = u16::try_from(seq).expect("small") + 100;
            let plain = rtp_packet(seq, 0xdead_beef, extension, payload);
            let protected = protect(&mut sender, &plain);
            assert_eq!(protected.len(), plain.len() + profile.rtp_overhead());
            // Header in the clear, payload not.
            let header_len = plain.len() - payload.len();
            assert_eq!(protected[..header_len], plain[..header_len]);
            if payload.len() > 4 {
                assert_ne!(protected[header_len..plain.len()], plain[header_len..]);
            }
            assert_eq!(
                unprotect(&mut receiver, &protected),
                Ok(plain),
                "{profile:?}"
            );
        }

        for body in [&b""[..], b"reception report", &[0x77; 600][..]] {
            let plain = rtcp_packet(0x0bad_cafe, body);
            let mut packet = plain.clone();
            sender.protect_rtcp(&mut packet).expect("protects");
            assert_eq!(packet.len(), plain.len() + profile.rtcp_overhead());
            assert_eq!(packet[..8], plain[..8]);
            assert_eq!(
                unprotect_rtcp(&mut receiver, &packet),
                Ok(plain),
                "{profile:?}"
            );
        }
    }
}

#[test]
fn protect_in_a_slice_needs_room_for_the_tag() {
    for profile in SrtpProfile::ALL {
        let (mut sender, mut receiver) = pair(profile);
        let plain = rtp_packet(1, 5, &[], b"abc");
        let mut buffer = [0u8; 64];
        buffer[..plain.len()].copy_from_slice(&plain);
        let short = plain.len() + profile.rtp_overhead() - 1;
        assert_eq!(
            sender.protect_rtp_in(&mut buffer[..short], plain.len()),
            Err(SrtpError::BufferTooSmall)
        );
        assert_eq!(buffer[..plain.len()], plain[..], "unchanged on error");
        let len = sender
            .protect_rtp_in(&mut buffer, plain.len())
            .expect("protects");
        assert_eq!(unprotect(&mut receiver, &buffer[..len]), Ok(plain));

        let rtcp = rtcp_packet(5, b"body");
        let mut buffer = [0u8; 64];
        buffer[..rtcp.len()].copy_from_slice(&rtcp);
        let short = rtcp.len() + profile.rtcp_overhead() - 1;
        assert_eq!(
            sender.protect_rtcp_in(&mut buffer[..short], rtcp.len()),
            Err(SrtpError::BufferTooSmall)
        );
        let len = sender
            .protect_rtcp_in(&mut buffer, rtcp.len())
            .expect("protects");
        assert_eq!(unprotect_rtcp(&mut receiver, &buffer[..len]), Ok(rtcp));
    }
}

#[test]
fn replayed_and_old_packets_are_rejected() {
    for profile in SrtpProfile::ALL {
        let (mut sender, mut receiver) = pair(profile);
        let ssrc = 0x4242;
        let packets: Vec<Vec<u8>> = (0..=RTP_REPLAY_WINDOW as u16 + 10)
            .map(|seq| protect(&mut sender, &rtp_packet(seq, ssrc, &[], &[seq as u8; 3])))
            .collect();

        // Out of order within the window: accepted once each.
        assert!(unprotect(&mut receiver, &packets[5]).is_ok());
        assert!(unprotect(&mut receiver, &packets[3]).is_ok());
        assert!(unprotect(&mut receiver, &packets[4]).is_ok());
        for seen in [3, 4, 5] {
            assert_eq!(
                unprotect(&mut receiver, &packets[seen]),
                Err(SrtpError::Replayed)
            );
        }
        // Move the window on: packet 3 falls out, packet 11 is still inside.
        let last = packets.len() - 1;
        assert!(unprotect(&mut receiver, &packets[last]).is_ok());
        assert_eq!(
            unprotect(&mut receiver, &packets[3]),
            Err(SrtpError::TooOld)
        );
        assert_eq!(
            unprotect(&mut receiver, &packets[10]),
            Err(SrtpError::TooOld)
        );
        assert!(unprotect(&mut receiver, &packets[11]).is_ok());
        assert_eq!(
            unprotect(&mut receiver, &packets[last]),
            Err(SrtpError::Replayed)
        );
    }
}

#[test]
fn srtcp_replay_is_rejected() {
    for profile in SrtpProfile::ALL {
        let (mut sender, mut receiver) = pair(profile);
        let packets: Vec<Vec<u8>> = (0..RTCP_REPLAY_WINDOW + 3)
            .map(|n| {
                let mut packet = rtcp_packet(77, &n.to_be_bytes());
                sender.protect_rtcp(&mut packet).expect("protects");
                packet
            })
            .collect();
        assert!(unprotect_rtcp(&mut receiver, &packets[1]).is_ok());
        assert!(unprotect_rtcp(&mut receiver, &packets[0]).is_ok());
        assert_eq!(
            unprotect_rtcp(&mut receiver, &packets[0]),
            Err(SrtpError::Replayed)
        );
        let last = packets.len() - 1;
        assert!(unprotect_rtcp(&mut receiver, &packets[last]).is_ok());
        assert_eq!(
            unprotect_rtcp(&mut receiver, &packets[2]),
            Err(SrtpError::TooOld)
        );
        assert!(unprotect_rtcp(&mut receiver, &packets[3]).is_ok());
    }
}

#[test]
fn rollover_counter_follows_the_wrap() {
    for profile in SrtpProfile::ALL {
        let (mut sender, mut receiver) = pair(profile);
        let ssrc = 0x5151;
        let sent: Vec<(u16, Vec<u8>)> = [65_533u16, 65_534, 65_535, 0, 1, 2]
            .into_iter()
            .map(|seq| {
                (
                    seq,
                    protect(&mut sender, &rtp_packet(seq, ssrc, &[], &[1, 2, 3])),
                )
            })
            .collect();
        // 65533 arrives late, after the wrap.
        for position in [1, 2, 3, 4, 0, 5] {
            let (seq, packet) = &sent[position];
            assert_eq!(
                unprotect(&mut receiver, packet),
                Ok(rtp_packet(*seq, ssrc, &[], &[1, 2, 3])),
                "{profile:?} seq {seq}"
            );
        }
        assert_eq!(receiver.received_rtp_index(ssrc), Some((1 << 16) | 2));

        // The sender used rollover counter 1 after the wrap: a receiver that saw the stream before
        // the wrap agrees, one that starts after it assumes 0 and fails.
        let mut before_wrap = pair(profile).1;
        assert!(unprotect(&mut before_wrap, &sent[0].1).is_ok());
        assert_eq!(
            unprotect(&mut before_wrap, &sent[4].1),
            Ok(rtp_packet(1, ssrc, &[], &[1, 2, 3]))
        );
        let mut fresh = pair(profile).1;
        assert_eq!(
            unprotect(&mut fresh, &sent[4].1),
            Err(SrtpError::AuthFailed)
        );
    }
}

#[test]
fn tampering_fails_and_marks_nothing() {
    for profile in SrtpProfile::ALL {
        let (mut sender, mut receiver) = pair(profile);
        let ssrc = 0x7777;
        let plain = rtp_packet(10, ssrc, &[9, 9, 9, 9], b"some payload");
        let good = protect(&mut sender, &plain);
        let header_len = plain.len() - b"some payload".len();
        for position in [1, 3, 7, header_len - 1, header_len, good.len() - 1] {
            let mut bad = good.clone();
            bad[position] ^= 0x20;
            assert_eq!(
                unprotect(&mut receiver, &bad),
                Err(SrtpError::AuthFailed),
                "{profile:?} byte {position}"
            );
        }
        // A forged packet created no state for its SSRC, and the genuine one still goes through.
        assert_eq!(receiver.received_rtp_index(ssrc), None);
        assert_eq!(unprotect(&mut receiver, &good), Ok(plain));

        let plain = rtcp_packet(ssrc, b"sender report");
        let mut good = plain.clone();
        sender.protect_rtcp(&mut good).expect("protects");
        for position in [
            1,
            5,
            9,
            good.len() - 1,
            good.len() - profile.rtcp_overhead(),
        ] {
            let mut bad = good.clone();
            bad[position] ^= 0x01;
            assert_eq!(
                unprotect_rtcp(&mut receiver, &bad),
                Err(SrtpError::AuthFailed),
                "{profile:?} byte {position}"
            );
        }
        assert_eq!(unprotect_rtcp(&mut receiver, &good), Ok(plain));

        // A packet under another key fails as well.
        let mut stranger = SrtpContext::new(&master(profile, 0x43));
        let foreign = protect(&mut stranger, &rtp_packet(11, ssrc, &[], b"x"));
        assert_eq!(
            unprotect(&mut receiver, &foreign),
            Err(SrtpError::AuthFailed)
        );
    }
}

#[test]
fn sender_refuses_to_reuse_an_index() {
    for profile in SrtpProfile::ALL {
        let (mut sender, _) = pair(profile);
        let plain = rtp_packet(500, 1, &[], b"first");
        let _ = protect(&mut sender, &plain);
        let mut again = rtp_packet(500, 1, &[], b"other");
        assert_eq!(sender.protect_rtp(&mut again), Err(SrtpError::IndexReused));
        assert_eq!(
            again,
            rtp_packet(500, 1, &[], b"other"),
            "unchanged on error"
        );
        // A different SSRC or a later sequence number is fine.
        let _ = protect(&mut sender, &rtp_packet(500, 2, &[], b"x"));
        let _ = protect(&mut sender, &rtp_packet(499, 1, &[], b"x"));
        let _ = protect(
            &mut sender,
            &rtp_packet(501 + RTP_REPLAY_WINDOW as u16, 1, &[], b"x"),
        );
        let mut stale = rtp_packet(400, 1, &[], b"x");
        assert_eq!(sender.protect_rtp(&mut stale), Err(SrtpError::TooOld));
    }
}

#[test]
fn srtcp_index_counts_up_and_runs_out() {
    let (mut sender, mut receiver) = pair(SrtpProfile::AeadAes128Gcm);
    let indices: Vec<u32> = (0..3)
        .map(|_| {
            let mut packet = rtcp_packet(3, b"rr");
            sender.protect_rtcp(&mut packet).expect("protects");
            let trailer = &packet[packet.len() - 4..];
            u32::from_be_bytes(trailer.try_into().expect("four bytes"))
        })
        .collect();
    assert_eq!(indices, [0x8000_0000, 0x8000_0001, 0x8000_0002]);

    sender.set_next_srtcp_index(3, 0x7fff_ffff);
    let mut packet = rtcp_packet(3, b"last");
    sender
        .protect_rtcp(&mut packet)
        .expect("the last index is usable");
    assert!(unprotect_rtcp(&mut receiver, &packet).is_ok());
    let mut packet = rtcp_packet(3, b"one too many");
    assert_eq!(
        sender.protect_rtcp(&mut packet),
        Err(SrtpError::KeyExhausted)
    );
}

#[test]
fn ssrc_limit_applies_after_authentication() {
    for profile in SrtpProfile::ALL {
        let key = master(profile, 1);
        let mut sender = SrtpContext::new(&key);
        let mut receiver = SrtpContext::new(&key).with_max_ssrcs(2);
        let packets: Vec<Vec<u8>> = (0..3)
            .map(|ssrc| protect(&mut sender, &rtp_packet(1, ssrc, &[], b"x")))
            .collect();
        // Forged packets of new SSRCs do not use up the limit.
        for ssrc in 100..110 {
            let mut forged = packets[0].clone();
            forged[8..12].copy_from_slice(&u32::to_be_bytes(ssrc));
            assert_eq!(
                unprotect(&mut receiver, &forged),
                Err(SrtpError::AuthFailed)
            );
        }
        assert!(unprotect(&mut receiver, &packets[0]).is_ok());
        assert!(unprotect(&mut receiver, &packets[1]).is_ok());
        assert_eq!(
            unprotect(&mut receiver, &packets[2]),
            Err(SrtpError::TooManySsrcs)
        );

        let mut limited = SrtpContext::new(&key).with_max_ssrcs(1);
        let _ = protect(&mut limited, &rtp_packet(1, 1, &[], b"x"));
        let mut packet = rtp_packet(1, 2, &[], b"x");
        assert_eq!(
            limited.protect_rtp(&mut packet),
            Err(SrtpError::TooManySsrcs)
        );
    }
}

#[test]
fn malformed_and_truncated_input_is_an_error() {
    for profile in SrtpProfile::ALL {
        let (mut sender, mut receiver) = pair(profile);
        let good = protect(&mut sender, &rtp_packet(1, 8, &[1, 2, 3, 4], b"data"));
        for cut in 0..good.len() {
            assert!(unprotect(&mut receiver, &good[..cut]).is_err(), "{cut}");
        }
        let mut rtcp = rtcp_packet(8, b"data");
        sender.protect_rtcp(&mut rtcp).expect("protects");
        for cut in 0..rtcp.len() {
            assert!(
                unprotect_rtcp(&mut receiver, &rtcp[..cut]).is_err(),
                "{cut}"
            );
        }
        assert!(unprotect(&mut receiver, &good).is_ok());
        assert!(unprotect_rtcp(&mut receiver, &rtcp).is_ok());

        assert_eq!(unprotect(&mut receiver, &[]), Err(SrtpError::TooShort));
        assert_eq!(unprotect_rtcp(&mut receiver, &[]), Err(SrtpError::TooShort));
        let mut version_1 = good.clone();
        version_1[0] = 0x40;
        assert_eq!(
            unprotect(&mut receiver, &version_1),
            Err(SrtpError::Malformed)
        );
        let mut version_1 = rtcp.clone();
        version_1[0] = 0x40;
        assert_eq!(
            unprotect_rtcp(&mut receiver, &version_1),
            Err(SrtpError::Malformed)
        );
        // An extension that claims more words than the packet has.
        let mut overlong = good.clone();
        overlong[22..24].copy_from_slice(&[0xff, 0xff]);
        assert_eq!(
            unprotect(&mut receiver, &overlong),
            Err(SrtpError::TooShort)
        );
        // Fifteen CSRCs in a short packet.
        let mut csrcs = good.clone();
        csrcs[0] = 0x8f;
        assert_eq!(unprotect(&mut receiver, &csrcs), Err(SrtpError::TooShort));

        let mut short = vec![0x80, 200, 0, 0];
        assert_eq!(sender.protect_rtcp(&mut short), Err(SrtpError::TooShort));
        assert_eq!(short, [0x80, 200, 0, 0], "unchanged on error");
        let mut short = vec![0x80; 11];
        assert_eq!(sender.protect_rtp(&mut short), Err(SrtpError::TooShort));
        assert_eq!(short.len(), 11, "unchanged on error");
    }
}
