//! DTLS: a server-role `DtlsSession` (and the client talking to it) fed a sequence of operations
//! read from the input: arbitrary datagrams, genuine datagrams from the peer (some with one byte
//! flipped), time steps with timeouts, close. Nothing may panic.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use shardsfu_engine::webrtc::cert::DtlsCertificate;
use shardsfu_engine::webrtc::dtls::{DtlsSession, DtlsSide, MAX_DTLS_DATAGRAM_BYTES};
use shardsfu_engine::webrtc::srtp::SrtpProfile;

/// Operations per input.
const OPS_MAX: usize = 256;

fn certs() -> &'static (DtlsCertificate, DtlsCertificate) {
    static CERTS: OnceLock<(DtlsCertificate, DtlsCertificate)> = OnceLock::new();
    CERTS.get_or_init(|| (DtlsCertificate::generate().unwrap(), DtlsCertificate::generate().unwrap()))
}

fuzz_target!(|data: &[u8]| {
    // The ClientHello reader the engine runs on the first datagram of a server association.
    let _ = shardsfu_engine::webrtc::dtls::client_hello_srtp_profiles(data);
    let (client_cert, server_cert) = certs();
    let mut now = Instant::now();
    let Ok(mut server) =
        DtlsSession::new(now, DtlsSide::Server, server_cert, client_cert.fingerprints(), &SrtpProfile::ALL)
    else {
        return;
    };
    let Ok(mut client) =
        DtlsSession::new(now, DtlsSide::Client, client_cert, server_cert.fingerprints(), &SrtpProfile::ALL)
    else {
        return;
    };
    let mut buf = [0u8; MAX_DTLS_DATAGRAM_BYTES];
    let mut input = data;
    for _ in 0..OPS_MAX {
        let Some((&op, rest)) = input.split_first() else { break };
        input = rest;
        match op % 6 {
            // Arbitrary datagram to the server (length byte, then bytes).
            0 | 1 => {
                let Some((&len, rest)) = input.split_first() else { break };
                let len = usize::from(len).min(rest.len());
                let (datagram, rest) = rest.split_at(len);
                input = rest;
                let _ = server.handle_datagram(now, datagram);
            }
            // Genuine client datagram to the server, optionally with one byte flipped.
            2 => {
                let Some((&flip, rest)) = input.split_first() else { break };
                input = rest;
                if let Some(len) = client.poll_transmit(&mut buf) {
                    if flip & 1 == 1 && len > 0 {
                        buf[usize::from(flip) % len] ^= 1 << (flip % 8);
                    }
                    let _ = server.handle_datagram(now, &buf[..len]);
                }
            }
            // Genuine server datagram to the client.
            3 => {
                if let Some(len) = server.poll_transmit(&mut buf) {
                    let _ = client.handle_datagram(now, &buf[..len]);
                }
            }
            // Time passes; both sides' timers.
            4 => {
                let Some((&step, rest)) = input.split_first() else { break };
                input = rest;
                now += Duration::from_millis(u64::from(step) * 40);
                server.handle_timeout(now);
                client.handle_timeout(now);
                let _ = server.poll_timeout();
            }
            _ => {
                if input.first().is_some_and(|b| *b == 0xff) {
                    server.close(now);
                }
                while server.poll_event().is_some() {}
                while client.poll_event().is_some() {}
                let _ = server.send_application_data(now, b"x");
            }
        }
    }
});
