//! `poll_timeout` / `on_timeout`: a parked shard wakes for its timer, never early.
mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_parked_shard_fires_its_timer_on_time() {
    let mut cfg = config(1);
    cfg.spin_before_park = Duration::ZERO;
    let rt = start(cfg);
    let h = rt.handle(0);
    for delay_ms in [0u64, 5, 30, 150] {
        let (tx, rx) = mpsc::channel();
        let deadline = call(&h, move |s, _| {
            let deadline = Instant::now() + Duration::from_millis(delay_ms);
            s.timer = Some(deadline);
            s.timer_fired = Some(tx);
            deadline
        });
        let fired = rx.recv_timeout(WAIT).expect("timer never fired");
        assert!(fired >= deadline, "fired early");
        assert!(fired - deadline < Duration::from_millis(60), "fired {:?} late", fired - deadline);
    }
    rt.shutdown();
}
