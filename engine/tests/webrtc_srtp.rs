//! SRTP/SRTCP: round trips for every profile, equivalence with `rtc-srtp` (each side decrypts
//! what the other encrypts), replay and tamper rejection, rollover, bounds and malformed input.

use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;
use shardsfu_engine::webrtc::srtp::{SrtpError, SrtpKeys, SrtpProfile, SrtpSession, REPLAY_WINDOW_PACKETS};

fn keys(profile: SrtpProfile, seed: u8) -> SrtpKeys {
    SrtpKeys {
        master_key: (0..profile.key_len()).map(|i| seed.wrapping_mul(31).wrapping_add(i as u8)).collect(),
        master_salt: (0..profile.salt_len()).map(|i| seed.wrapping_add(0x55).wrapping_add(3 * i as u8)).collect(),
    }
}

fn pair(profile: SrtpProfile) -> (SrtpSession, SrtpSession) {
    let keys = keys(profile, 1);
    (SrtpSession::new(profile, &keys).unwrap(), SrtpSession::new(profile, &keys).unwrap())
}

fn reference(profile: SrtpProfile, keys: &SrtpKeys) -> Context {
    let reference_profile = match profile {
        SrtpProfile::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
        SrtpProfile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        SrtpProfile::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
    };
    let provider = rtc_srtp::crypto::default_provider().unwrap();
    Context::new(
        &keys.master_key,
        &keys.master_salt,
        reference_profile,
        Some(srtp_replay_protection(64)),
        Some(srtcp_replay_protection(64)),
        provider.crypto(),
    )
    .unwrap()
}

/// An RTP packet; `csrcs` CSRCs and, with `extension`, a one-byte header extension block.
fn rtp(seq: u16, ssrc: u32, payload_len: usize, csrcs: u8, extension: bool) -> Vec<u8> {
    let mut packet = vec![0x80 | csrcs | if extension { 0x10 } else { 0 }, 0x80 | 96];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    for csrc in 0..u32::from(csrcs) {
        packet.extend_from_slice(&(0xc000_0000 + csrc).to_be_bytes());
    }
    if extension {
        packet.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0]);
    }
    packet.extend((0..payload_len).map(|i| (i as u8) ^ (seq as u8)));
    packet
}

/// A compound RTCP packet: a sender report followed by an SDES-like filler.
fn rtcp(ssrc: u32) -> Vec<u8> {
    let mut packet = vec![0x80, 200, 0, 6];
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0x10, 0, 0, 0, 0, 9, 0, 0, 1, 0]);
    packet.extend_from_slice(&[0x81, 202, 0, 2]);
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend_from_slice(&[1, 1, b'x', 0]);
    packet
}

#[test]
fn rtp_round_trips_for_every_profile_and_header_shape() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile);
        for (i, (csrcs, extension, payload)) in
            [(0, false, 0), (0, false, 1200), (2, false, 100), (0, true, 50), (15, true, 1)].into_iter().enumerate()
        {
            let plain = rtp(1000 + i as u16, 0xdead_beef, payload, csrcs, extension);
            let mut wire = vec![0u8; plain.len() + profile.rtp_overhead()];
            let len = tx.protect_rtp(&plain, &mut wire).unwrap();
            assert_eq!(len, plain.len() + profile.rtp_overhead());
            if payload > 0 {
                assert_ne!(&wire[..plain.len()], &plain[..], "{profile}: payload encrypted");
            }
            let plain_len = rx.unprotect_rtp(&mut wire[..len]).unwrap();
            assert_eq!(&wire[..plain_len], &plain[..], "{profile}");
        }
    }
}

#[test]
fn rtcp_round_trips_for_every_profile() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile);
        for ssrc in [1, 2, 1] {
            let plain = rtcp(ssrc);
            let mut wire = vec![0u8; plain.len() + profile.rtcp_overhead()];
            let len = tx.protect_rtcp(&plain, &mut wire).unwrap();
            assert_eq!(len, wire.len());
            assert_eq!(&wire[..8], &plain[..8], "the first header stays clear");
            let plain_len = rx.unprotect_rtcp(&mut wire[..len]).unwrap();
            assert_eq!(&wire[..plain_len], &plain[..], "{profile}");
        }
    }
}

#[test]
fn rtc_srtp_decrypts_what_we_protect() {
    for profile in SrtpProfile::ALL {
        let keys = keys(profile, 7);
        let mut ours = SrtpSession::new(profile, &keys).unwrap();
        let mut theirs = reference(profile, &keys);
        let mut wire = [0u8; 1500];
        for seq in [65_530u16, 65_535, 0, 1, 2, 300] {
            let plain = rtp(seq, 0x0102_0304, 1000, 1, true);
            let len = ours.protect_rtp(&plain, &mut wire).unwrap();
            let decrypted = theirs.decrypt_rtp(&wire[..len]).unwrap();
            assert_eq!(&decrypted[..], &plain[..], "{profile} RTP seq {seq}");
        }
        for _ in 0..3 {
            let plain = rtcp(0x0102_0304);
            let len = ours.protect_rtcp(&plain, &mut wire).unwrap();
            let decrypted = theirs.decrypt_rtcp(&wire[..len]).unwrap();
            assert_eq!(&decrypted[..], &plain[..], "{profile} RTCP");
        }
    }
}

#[test]
fn we_unprotect_what_rtc_srtp_encrypts() {
    for profile in SrtpProfile::ALL {
        let keys = keys(profile, 9);
        let mut ours = SrtpSession::new(profile, &keys).unwrap();
        let mut theirs = reference(profile, &keys);
        for seq in [65_530u16, 65_535, 0, 1, 2, 300] {
            let plain = rtp(seq, 0x0a0b_0c0d, 1000, 0, seq % 2 == 0);
            let mut wire = theirs.encrypt_rtp(&plain).unwrap().to_vec();
            let plain_len = ours.unprotect_rtp(&mut wire).unwrap();
            assert_eq!(&wire[..plain_len], &plain[..], "{profile} RTP seq {seq}");
        }
        for _ in 0..3 {
            let plain = rtcp(0x0a0b_0c0d);
            let mut wire = theirs.encrypt_rtcp(&plain).unwrap().to_vec();
            let plain_len = ours.unprotect_rtcp(&mut wire).unwrap();
            assert_eq!(&wire[..plain_len], &plain[..], "{profile} RTCP");
        }
    }
}

#[test]
fn a_replayed_packet_is_refused() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile);
        let mut wire = [0u8; 1500];
        let len = tx.protect_rtp(&rtp(10, 5, 100, 0, false), &mut wire).unwrap();
        let captured = wire[..len].to_vec();
        rx.unprotect_rtp(&mut wire[..len]).unwrap();
        assert_eq!(rx.unprotect_rtp(&mut captured.clone()), Err(SrtpError::Replay), "{profile}");

        // Out of order inside the window is fine, once.
        let mut later = [0u8; 1500];
        let later_len = tx.protect_rtp(&rtp(12, 5, 100, 0, false), &mut later).unwrap();
        let mut earlier = [0u8; 1500];
        let earlier_len = tx.protect_rtp(&rtp(11, 5, 100, 0, false), &mut earlier).unwrap();
        rx.unprotect_rtp(&mut later[..later_len]).unwrap();
        let copy = earlier[..earlier_len].to_vec();
        rx.unprotect_rtp(&mut earlier[..earlier_len]).unwrap();
        assert_eq!(rx.unprotect_rtp(&mut copy.clone()), Err(SrtpError::Replay));

        let rtcp_plain = rtcp(5);
        let len = tx.protect_rtcp(&rtcp_plain, &mut wire).unwrap();
        let captured = wire[..len].to_vec();
        rx.unprotect_rtcp(&mut wire[..len]).unwrap();
        assert_eq!(rx.unprotect_rtcp(&mut captured.clone()), Err(SrtpError::Replay), "{profile} RTCP");
    }
}

#[test]
fn a_packet_older_than_the_replay_window_is_refused() {
    let profile = SrtpProfile::AeadAes128Gcm;
    let (mut tx, mut rx) = pair(profile);
    let mut old = [0u8; 200];
    let old_len = tx.protect_rtp(&rtp(1, 5, 10, 0, false), &mut old).unwrap();
    let mut wire = [0u8; 200];
    let len = tx.protect_rtp(&rtp(2 + REPLAY_WINDOW_PACKETS as u16, 5, 10, 0, false), &mut wire).unwrap();
    rx.unprotect_rtp(&mut wire[..len]).unwrap();
    assert_eq!(rx.unprotect_rtp(&mut old[..old_len]), Err(SrtpError::Replay));
}

#[test]
fn a_tampered_byte_fails_authentication_and_leaves_the_state_alone() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile);
        let mut wire = [0u8; 1500];
        let len = tx.protect_rtp(&rtp(100, 77, 300, 1, true), &mut wire).unwrap();
        // Header (marker/PT, timestamp), extension, payload, tag.
        for position in [1, 5, 21, 40, len - 1] {
            let mut tampered = wire[..len].to_vec();
            tampered[position] ^= 0x01;
            assert_eq!(rx.unprotect_rtp(&mut tampered), Err(SrtpError::Auth), "{profile} byte {position}");
        }
        // The forgeries did not advance the replay window: the genuine packet still passes.
        rx.unprotect_rtp(&mut wire[..len]).unwrap();

        let len = tx.protect_rtcp(&rtcp(77), &mut wire).unwrap();
        for position in [1, 4, 9, len - 5, len - 1] {
            let mut tampered = wire[..len].to_vec();
            tampered[position] ^= 0x01;
            assert!(
                matches!(rx.unprotect_rtcp(&mut tampered), Err(SrtpError::Auth | SrtpError::Unencrypted)),
                "{profile} RTCP byte {position}"
            );
        }
        rx.unprotect_rtcp(&mut wire[..len]).unwrap();
    }
}

#[test]
fn wrong_keys_fail_authentication() {
    for profile in SrtpProfile::ALL {
        let mut tx = SrtpSession::new(profile, &keys(profile, 1)).unwrap();
        let mut rx = SrtpSession::new(profile, &keys(profile, 2)).unwrap();
        let mut wire = [0u8; 1500];
        let len = tx.protect_rtp(&rtp(1, 1, 100, 0, false), &mut wire).unwrap();
        assert_eq!(rx.unprotect_rtp(&mut wire[..len]), Err(SrtpError::Auth));
        let len = tx.protect_rtcp(&rtcp(1), &mut wire).unwrap();
        assert_eq!(rx.unprotect_rtcp(&mut wire[..len]), Err(SrtpError::Auth));
    }
}

#[test]
fn the_rollover_counter_follows_sequence_wraps() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile);
        let mut wire = [0u8; 300];
        // Three wraps, with one reordered pair across the first.
        let mut seqs: Vec<u16> = (0..3 * 65_536u32 + 10).step_by(97).map(|i| i as u16).collect();
        seqs.swap(675, 676);
        for seq in seqs {
            let plain = rtp(seq, 9, 40, 0, false);
            let len = tx.protect_rtp(&plain, &mut wire).unwrap();
            let plain_len = rx.unprotect_rtp(&mut wire[..len]).unwrap_or_else(|e| panic!("{profile} seq {seq}: {e}"));
            assert_eq!(&wire[..plain_len], &plain[..]);
        }
    }
}

#[test]
fn keys_of_the_wrong_length_are_refused() {
    for profile in SrtpProfile::ALL {
        let mut bad = keys(profile, 1);
        bad.master_key.push(0);
        assert_eq!(SrtpSession::new(profile, &bad).err(), Some(SrtpError::KeyLength));
        let mut bad = keys(profile, 1);
        bad.master_salt.pop();
        assert_eq!(SrtpSession::new(profile, &bad).err(), Some(SrtpError::KeyLength));
    }
}

#[test]
fn small_buffers_and_malformed_packets_are_errors() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile);
        let plain = rtp(1, 1, 100, 0, false);
        let mut short = vec![0u8; plain.len() + profile.rtp_overhead() - 1];
        assert_eq!(tx.protect_rtp(&plain, &mut short), Err(SrtpError::BufferTooSmall));
        let mut short = vec![0u8; 20];
        assert_eq!(tx.protect_rtcp(&rtcp(1), &mut short), Err(SrtpError::BufferTooSmall));

        for mut packet in
            [vec![], vec![0x80; 11], vec![0x40; 40], vec![0x8f; 40], vec![0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]
        {
            assert_eq!(rx.unprotect_rtp(&mut packet), Err(SrtpError::Malformed), "{profile} {packet:?}");
            assert_eq!(tx.protect_rtp(&packet, &mut [0u8; 100]), Err(SrtpError::Malformed));
        }
        for mut packet in [vec![], vec![0x80; 8], vec![0x40; 40]] {
            assert_eq!(rx.unprotect_rtcp(&mut packet), Err(SrtpError::Malformed), "{profile} {packet:?}");
        }
        let mut unencrypted = vec![0x80, 200, 0, 1, 0, 0, 0, 1];
        unencrypted.extend(vec![0; profile.rtcp_overhead()]);
        assert!(matches!(rx.unprotect_rtcp(&mut unencrypted), Err(SrtpError::Unencrypted | SrtpError::Auth)));
    }
}

#[test]
fn the_number_of_ssrcs_is_bounded() {
    use shardsfu_engine::webrtc::srtp::MAX_SSRCS;
    let (mut tx, mut rx) = pair(SrtpProfile::AeadAes128Gcm);
    let mut wire = [0u8; 100];
    for ssrc in 0..MAX_SSRCS as u32 {
        let len = tx.protect_rtp(&rtp(1, ssrc, 10, 0, false), &mut wire).unwrap();
        rx.unprotect_rtp(&mut wire[..len]).unwrap();
    }
    assert_eq!(tx.protect_rtp(&rtp(1, u32::MAX, 10, 0, false), &mut wire), Err(SrtpError::TooManySsrcs));
    let mut other = SrtpSession::new(SrtpProfile::AeadAes128Gcm, &keys(SrtpProfile::AeadAes128Gcm, 1)).unwrap();
    let len = other.protect_rtp(&rtp(1, u32::MAX, 10, 0, false), &mut wire).unwrap();
    assert_eq!(rx.unprotect_rtp(&mut wire[..len]), Err(SrtpError::TooManySsrcs));
}
