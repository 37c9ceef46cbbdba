//! Load reports: each shard sends one per window on its load ring, idle or not, with its
//! counters and the service's own figures; `ShardHandle::load` hands over the newest.

mod common;

use common::*;
use shardsfu_net::LOAD_WINDOW;

#[test]
fn an_idle_shard_reports_once_per_window() {
    let rt = start(config(1));
    let h = rt.handle(0);
    wait_load(&h, |l| l.seq >= 1);
    let first = h.load();
    // A parked shard wakes at least every MAX_PARK to report.
    std::thread::sleep(LOAD_WINDOW * 6);
    let later = h.load();
    let sent = later.seq - first.seq;
    assert!((2..=8).contains(&sent), "{sent} reports in 6 windows: {first:?} {later:?}");
    assert_eq!(later.reports_dropped, 0);
    assert_eq!(later.busy_fraction, 0.0, "nothing to do, nothing busy: {later:?}");
}

#[test]
fn reports_carry_the_counters_and_the_service_figures() {
    let rt = start(config(1));
    let h = rt.handle(0);
    let addr = call(&h, |_, io| {
        let socket = io.bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        io.local_addr(socket).unwrap()
    });
    let sender = peer("127.0.0.1:0");
    for i in 0..5u8 {
        sender.0.send_to(&[i; 100], addr).unwrap();
    }
    // TestService reports [datagrams received, 7, 0, ...].
    wait_load(&h, |l| l.service == [5, 7, 0, 0, 0, 0, 0, 0]);
    let load = h.load();
    assert_eq!((load.rx_packets, load.rx_bytes), (5, 500), "{load:?}");
    // Reading again without a new report gives the same newest report.
    let again = h.load();
    assert!(again.seq >= load.seq);
    assert_eq!(again.rx_packets, 5);
}
