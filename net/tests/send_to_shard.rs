mod common;

use std::sync::mpsc;

use common::*;

#[test]
fn a_shard_sends_a_command_to_its_peer() {
    let rt = start(config(2));
    let (tx, rx) = mpsc::channel();
    let results = call(&rt.handle(0), move |_, io| {
        let to_self = io.send_to_shard(0, job(|_, _| {})).is_err();
        let out_of_range = io.send_to_shard(2, job(|_, _| {})).is_err();
        let to_peer = io
            .send_to_shard(
                1,
                job(move |s, io| {
                    let _ = tx.send((s.info.index, io.shard()));
                }),
            )
            .is_ok();
        (to_self, out_of_range, to_peer)
    });
    assert_eq!(results, (true, true, true));
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (1, 1));
    rt.shutdown();
}

#[test]
fn a_full_peer_ring_gives_the_command_back() {
    let mut cfg = config(2);
    cfg.ring_capacity = 4;
    let rt = start(cfg);
    // Shard 1 is blocked inside a command while shard 0 fills the 0->1 ring.
    let (block_tx, block_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel();
    rt.handle(1)
        .submit(job(move |_, _| {
            let _ = started_tx.send(());
            let _ = block_rx.recv_timeout(WAIT);
        }))
        .unwrap();
    started_rx.recv_timeout(WAIT).unwrap();
    let accepted = call(&rt.handle(0), |_, io| (0..10).filter(|_| io.send_to_shard(1, job(|_, _| {})).is_ok()).count());
    assert_eq!(accepted, 4);
    block_tx.send(()).unwrap();
    rt.shutdown();
}
