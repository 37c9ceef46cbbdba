//! Placement from the shards' load reports: a shard at its consumer watermark takes no new
//! transports while existing ones keep forwarding; when every shard is there, new transports
//! are refused; the figures placement used come from the shards' reports and show in dump().

use std::time::Duration;

use shardsfu_tests::shardsfu_engine::placement::PlacementPolicy;
use shardsfu_tests::shardsfu_engine::{block_on, Engine, PlainTransportOptions, TransportListenInfo};
use shardsfu_tests::*;

const WATERMARK: u32 = 3;

/// Rooms stay whole (no spreading by size), busy time is left out (machine noise); only the
/// consumer watermark moves transports.
fn watermark_engine() -> Engine {
    two_shards(PlacementPolicy {
        consumers_watermark: WATERMARK,
        spread_transports: 1_000,
        ..PlacementPolicy::default()
    })
}

#[test]
fn a_shard_at_its_watermark_takes_no_new_transports_and_keeps_forwarding() {
    let engine = watermark_engine();
    let worker = worker(&engine);
    let router = router(&worker);
    let (ingest, sender) = ingest(&router);
    let home = ingest.shard();
    let producer = produce_vp8(&ingest, 4242, None);
    let at_home: Vec<_> = (0..WATERMARK).map(|_| consumer(&router, &producer)).collect();
    assert!(at_home.iter().all(|(t, _, _)| t.shard() == home), "the room stays home while it fits");

    // The home shard's report counts the consumers (before it comes, the engine counts them as sent).
    assert!(
        wait_for(Duration::from_secs(3), || {
            let l = engine.loads()[home];
            l.report > 0 && l.consumers == WATERMARK
        }),
        "{:?}",
        engine.loads()
    );
    let (t, c, sock) = consumer(&router, &producer);
    assert_ne!(t.shard(), home, "home is at its watermark: the new transport goes elsewhere");

    // Every consumer, old and new, still gets the media.
    for i in 0..5u16 {
        sender.send(&rtp(96, 10 + i, 3000 * u32::from(i), 4242, i == 0, b"still here")).unwrap();
    }
    for (t, c, sock) in at_home.iter().chain(std::iter::once(&(t, c, sock))) {
        let got = recv_rtp_n(sock, 5, Duration::from_secs(3));
        assert_eq!(got.len(), 5, "consumer {} on shard {}", c.id(), t.shard());
        assert!(got.iter().all(|p| p.ends_with(b"still here")));
    }

    // The decisions and the reported figures behind them show in dump().
    let dump = block_on(engine.dump()).unwrap();
    let last = dump["placements"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["object"], "transport");
    let inputs = last["inputs"].as_array().unwrap();
    assert_eq!(inputs[home]["consumers"], WATERMARK);
    assert!(inputs[home]["report"].as_u64().unwrap() > 0, "{last}");
    engine.close();
}

#[test]
fn when_every_shard_is_at_its_watermark_new_transports_are_refused() {
    let engine = watermark_engine();
    let worker = worker(&engine);
    let router = router(&worker);
    let (ingest, _sender) = ingest(&router);
    let producer = produce_vp8(&ingest, 4343, None);
    let consumers: Vec<_> = (0..2 * WATERMARK).map(|_| consumer(&router, &producer)).collect();
    let per_shard = |s: usize| consumers.iter().filter(|(t, _, _)| t.shard() == s).count() as u32;
    assert_eq!((per_shard(0), per_shard(1)), (WATERMARK, WATERMARK));
    // Compare reported figures (the shards also count the hidden transports of mirrors).
    assert!(wait_for(Duration::from_secs(3), || engine.loads().iter().all(|l| l.report > 0)));
    let before = engine.loads();
    let refused =
        block_on(router.create_plain_transport(PlainTransportOptions::new(TransportListenInfo::udp("127.0.0.1"))));
    let err = refused.err().expect("no shard has room");
    assert!(err.to_string().contains("watermark"), "{err}");
    // Nothing was created by the refusal, as the next reports say.
    let seen = before.iter().map(|l| l.report).collect::<Vec<_>>();
    assert!(wait_for(Duration::from_secs(3), || engine.loads().iter().zip(&seen).all(|(l, s)| l.report > *s)));
    let after = engine.loads();
    for s in 0..2 {
        assert_eq!(after[s].transports, before[s].transports, "shard {s}: {before:?} {after:?}");
        assert_eq!(after[s].consumers, WATERMARK);
    }
    engine.close();
}
