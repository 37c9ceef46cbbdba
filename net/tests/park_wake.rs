//! The park/wake protocol: commands reach a parked shard promptly, none are lost.
mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use shardsfu_net::SubmitError;

#[test]
fn many_submits_to_a_parked_shard_are_all_processed() {
    let mut cfg = config(1);
    cfg.spin_before_park = Duration::ZERO; // park as soon as idle
    let rt = start(cfg);
    let (tx, rx) = mpsc::channel();
    const THREADS: usize = 4;
    const PER_THREAD: usize = 500;
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let h = rt.handle(0);
            let tx = tx.clone();
            scope.spawn(move || {
                for i in 0..PER_THREAD {
                    let tx = tx.clone();
                    let mut cmd = job(move |_, _| {
                        let _ = tx.send((t, i));
                    });
                    loop {
                        match h.submit(cmd) {
                            Ok(()) => break,
                            Err(SubmitError::Full(c)) => {
                                cmd = c;
                                std::thread::yield_now();
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                    if i % 50 == 0 {
                        std::thread::sleep(Duration::from_micros(300)); // let it park again
                    }
                }
            });
        }
    });
    let mut next = [0usize; THREADS];
    for _ in 0..THREADS * PER_THREAD {
        let (t, i) = rx.recv_timeout(WAIT).expect("a command was lost");
        assert_eq!(i, next[t], "per-producer order");
        next[t] += 1;
    }
    rt.shutdown();
}

#[test]
fn a_parked_shard_wakes_without_waiting_for_its_park_timeout() {
    let mut cfg = config(1);
    cfg.spin_before_park = Duration::ZERO;
    let rt = start(cfg);
    let h = rt.handle(0);
    const ROUNDS: usize = 40;
    let mut slow = 0;
    for _ in 0..ROUNDS {
        std::thread::sleep(Duration::from_millis(2)); // the shard parks (100 ms cap)
        let (tx, rx) = mpsc::channel();
        let sent = Instant::now();
        h.submit(job(move |_, _| {
            let _ = tx.send(Instant::now());
        }))
        .unwrap();
        let ran = rx.recv_timeout(WAIT).unwrap();
        if ran.duration_since(sent) > Duration::from_millis(50) {
            slow += 1;
        }
    }
    // A lost wake-up would cost the whole 100 ms park each round.
    assert!(slow <= 3, "{slow} of {ROUNDS} wake-ups took > 50 ms");
    let load = h.load();
    assert!((0.0..=1.0).contains(&load.busy_fraction), "{load:?}");
    rt.shutdown();
}
