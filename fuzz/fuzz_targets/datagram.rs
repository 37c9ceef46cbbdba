//! Datagram demux + transport input: a shard with a comedia producer transport and consumers,
//! driven by a sequence of operations read from the input (datagrams from known and unknown
//! sources, time steps, pause/resume, consumer churn). See `shardsfu_engine::core::fuzz`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shardsfu_engine::core::fuzz::drive(data);
});
