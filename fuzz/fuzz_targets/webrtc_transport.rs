//! WebRTC transport input: a shard with a WebRtcTransport on its own socket and one behind a
//! WebRtcServer, driven by raw datagrams, authenticated STUN, connect(), ICE restarts, ICE-TCP
//! connections and time steps. See `shardsfu_engine::core::fuzz_webrtc`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shardsfu_engine::core::fuzz_webrtc::drive(data);
});
