//! RTP observers: a shard with two audio producers watched by an AudioLevelObserver and an
//! ActiveSpeakerObserver, driven by packets with arbitrary audio level extensions, time steps
//! and observer/producer calls. See `shardsfu_engine::core::fuzz_observers`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shardsfu_engine::core::fuzz_observers::drive(data);
});
