//! Closing frees: a worker made, filled with every kind of object and closed, again and again,
//! leaves the process's heap where it was. A long-running server whose clients come and go must
//! not grow (found by the `control_api` fuzz target: each router with a transport was kept alive
//! by a reference cycle after its worker closed).
//!
//! Its own test binary, so the counting allocator sees this test alone.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use shardsfu_tests::shardsfu_engine::{
    block_on, AudioLevelObserverOptions, DataConsumerOptions, DataProducerOptions, DirectTransportOptions, Engine,
    PipeToRouterOptions, TransportListenInfo, WebRtcServerOptions, WebRtcTransportOptions,
};
use shardsfu_tests::*;

/// Heap bytes allocated and not yet freed, by anyone in the process.
static LIVE: AtomicI64 = AtomicI64::new(0);

struct Counting;

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        System.alloc_zeroed(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as i64, Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, size: usize) -> *mut u8 {
        LIVE.fetch_add(size as i64 - l.size() as i64, Ordering::Relaxed);
        System.realloc(p, l, size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One worker's life: two routers (spread over the shards), a producer and its consumer, the
/// producer piped to the other router and consumed there, a direct transport with a data
/// producer and consumer, a WebRtcServer with a WebRtcTransport, an audio level observer
/// watching nothing in particular; then the worker closes.
fn one_life(engine: &Engine) {
    let worker = worker(engine);
    let (r1, r2) = (router(&worker), router(&worker));
    let (ingest, _sender) = ingest(&r1);
    let producer = produce_vp8(&ingest, 1111, Some(1112));
    let (_t, _consumer, _sock) = consumer(&r1, &producer);
    let piped = block_on(r1.pipe_to_router(PipeToRouterOptions::new(producer.id(), &r2))).expect("pipeToRouter");
    let (_t2, _c2, _sock2) = consumer(&r2, &piped.pipe_producer);

    let direct = block_on(r2.create_direct_transport(DirectTransportOptions::default())).expect("direct");
    let data = block_on(direct.produce_data(DataProducerOptions::default())).expect("produceData");
    let _dc = block_on(direct.consume_data(DataConsumerOptions::new(data.id()))).expect("consumeData");

    let server = block_on(worker.create_webrtc_server(WebRtcServerOptions {
        listen_infos: vec![TransportListenInfo { port: Some(0), ..TransportListenInfo::udp("127.0.0.1") }],
        app_data: Default::default(),
    }))
    .expect("webRtcServer");
    let _w = block_on(r1.create_webrtc_transport(WebRtcTransportOptions::with_server(&server))).expect("webrtc");
    let _w2 =
        block_on(r2.create_webrtc_transport(WebRtcTransportOptions::new(vec![TransportListenInfo::udp("127.0.0.1")])))
            .expect("webrtc");
    let _o = block_on(r1.create_audio_level_observer(AudioLevelObserverOptions::default())).expect("observer");
    worker.close();
}

fn objects_left(engine: &Engine) -> u64 {
    let dump = block_on(engine.dump()).expect("dump");
    let shards = dump["shards"].as_array().expect("shards");
    shards.iter().flat_map(|s| s["objects"].as_object().expect("objects").values()).filter_map(|n| n.as_u64()).sum()
}

/// The live heap once the shards have let go of everything (close is asynchronous there) and the
/// dispatcher has delivered the close events.
fn settled_heap(engine: &Engine) -> i64 {
    assert!(wait_for(Duration::from_secs(10), || objects_left(engine) == 0), "objects left on the shards");
    std::thread::sleep(Duration::from_millis(300));
    LIVE.load(Ordering::Relaxed)
}

#[test]
fn closed_workers_free_what_they_held() {
    let engine = spread_engine();
    // Warm up: maps and queues reach their working sizes.
    for _ in 0..20 {
        one_life(&engine);
    }
    let before = settled_heap(&engine);
    const LIVES: i64 = 60;
    for _ in 0..LIVES {
        one_life(&engine);
    }
    let after = settled_heap(&engine);
    // Before the fix each life kept tens of KiB; allow a little slack for maps that grow in steps.
    let per_life = (after - before) / LIVES;
    eprintln!("heap: {before} bytes after the warm-up, {after} after {LIVES} more lives ({per_life} per life)");
    assert!(per_life < 512, "the heap grew {} bytes over {LIVES} lives ({per_life} per life)", after - before);
    engine.close();
}
