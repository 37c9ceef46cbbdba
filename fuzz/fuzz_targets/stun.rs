//! Arbitrary bytes through `IceServer::handle_stun`: never a panic; every outcome is a typed
//! error or a response that fits the buffer and parses as STUN; rejected input never changes
//! ICE state.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use shardsfu_engine::webrtc::ice::{IceServer, IceState, IceTuple};
use shardsfu_engine::webrtc::stun::STUN_RESPONSE_LEN_MAX;
use shardsfu_engine::Protocol;

fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

fuzz_target!(|data: &[u8]| {
    let mut server = IceServer::new("fuzzufrag".into(), "fuzzpassword0123456789abcdef".into(), Duration::from_secs(30));
    let remote: SocketAddr = if data.first().is_some_and(|b| b & 1 == 1) {
        "[2001:db8::1]:5000".parse().unwrap()
    } else {
        "192.0.2.1:5000".parse().unwrap()
    };
    let tuple = IceTuple::new("10.0.0.1:40000".parse().unwrap(), remote, Protocol::Udp);
    let mut out = [0u8; STUN_RESPONSE_LEN_MAX];
    match server.handle_stun(t0(), &tuple, data, &mut out) {
        Ok(Some(n)) => {
            assert!(n <= out.len());
            let mut m = rtc_stun::message::Message::new();
            m.unmarshal_binary(&out[..n]).expect("our response parses");
            assert!(server.is_valid_tuple(&tuple));
        }
        Ok(None) => assert_eq!(server.state(), IceState::New),
        Err(e) => {
            if let Some(n) = e.response_len() {
                let mut m = rtc_stun::message::Message::new();
                m.unmarshal_binary(&out[..n]).expect("our error response parses");
            }
            assert_eq!(server.state(), IceState::New);
            assert!(server.poll_event().is_none());
        }
    }
});
