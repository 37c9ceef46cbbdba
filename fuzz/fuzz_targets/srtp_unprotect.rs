//! SRTP: arbitrary bytes through `unprotect_rtp` / `unprotect_rtcp` for every profile, after a
//! few genuine packets so that per-SSRC state (rollover counter, replay window) exists. Nothing
//! may panic, and nothing forged may authenticate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shardsfu_engine::webrtc::srtp::{SrtpKeys, SrtpProfile, SrtpSession};

fuzz_target!(|data: &[u8]| {
    for profile in SrtpProfile::ALL {
        let keys = SrtpKeys { master_key: vec![7; profile.key_len()], master_salt: vec![9; profile.salt_len()] };
        let (Ok(mut tx), Ok(mut rx)) = (SrtpSession::new(profile, &keys), SrtpSession::new(profile, &keys)) else {
            return;
        };
        let mut wire = [0u8; 128];
        // Genuine traffic from SSRC 1 (the input's first 12 bytes, if any, as its header).
        let plain = [0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xaa, 0xbb];
        if let Ok(len) = tx.protect_rtp(&plain, &mut wire) {
            let _ = rx.unprotect_rtp(&mut wire[..len]);
        }
        let rtcp = [0x80, 201, 0, 1, 0, 0, 0, 1];
        if let Ok(len) = tx.protect_rtcp(&rtcp, &mut wire) {
            let _ = rx.unprotect_rtcp(&mut wire[..len]);
        }

        let mut rtp_input = data.to_vec();
        let rtp_result = rx.unprotect_rtp(&mut rtp_input);
        let mut rtcp_input = data.to_vec();
        let rtcp_result = rx.unprotect_rtcp(&mut rtcp_input);
        // Forgeries succeed only with negligible probability, except a 32-bit tag, which a
        // fuzzer cannot find either; a success must at least return a length within the input.
        if let Ok(len) = rtp_result {
            assert!(len <= data.len());
        }
        if let Ok(len) = rtcp_result {
            assert!(len <= data.len());
        }
        // Protect must also survive arbitrary "plain" packets.
        let mut out = vec![0u8; data.len() + 32];
        let _ = tx.protect_rtp(data, &mut out);
        let _ = tx.protect_rtcp(data, &mut out);
    }
});
