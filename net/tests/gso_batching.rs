//! Transmit batching: GSO merges same-destination, same-size runs; the fallback sends the same
//! bytes one datagram per message.
mod common;

use std::net::SocketAddr;

use common::*;
use shardsfu_net::ShardHandle;

const BODY: &[u8; 100] = &[0xAB; 100];

/// Datagram `i`: 4-byte head (index) + shared 100-byte body; `short` ones have a 10-byte body.
fn expected(i: u32, short: bool) -> Vec<u8> {
    let mut v = i.to_be_bytes().to_vec();
    v.extend_from_slice(if short { &BODY[..10] } else { &BODY[..] });
    v
}

fn bind(h: &ShardHandle<Cmd>, fallback: bool) -> shardsfu_net::SocketId {
    call(h, move |_, io| {
        if fallback {
            io.force_gso_fallback();
        }
        io.bind_udp("127.0.0.1:0".parse().unwrap()).unwrap()
    })
}

fn recv_all(sock: &Peer, want: &[Vec<u8>]) {
    let mut buf = [0u8; 2048];
    for w in want {
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &w[..]);
    }
}

fn gso_counters(h: &ShardHandle<Cmd>) -> (bool, u64) {
    call(h, |_, io| (io.gso_enabled(), io.gso_messages_sent()))
}

fn thirty_two_equal(fallback: bool) {
    let rt = start(config(1));
    let h = rt.handle(0);
    let sock = bind(&h, fallback);
    let receiver = peer("127.0.0.1:0");
    let dest = receiver.local_addr().unwrap();
    // All 32 queued in one command, so one flush (one turn) sends them.
    call(&h, move |_, io| {
        for i in 0u32..32 {
            io.send(sock, dest, &i.to_be_bytes(), BODY);
        }
    });
    let want: Vec<_> = (0..32).map(|i| expected(i, false)).collect();
    recv_all(&receiver, &want);
    let (gso_on, gso_messages) = gso_counters(&h);
    if fallback {
        assert!(!gso_on);
        assert_eq!(gso_messages, 0);
    } else if gso_on {
        assert_eq!(gso_messages, 1, "32 equal datagrams should be one GSO message");
    } else {
        eprintln!("kernel refused GSO; the fallback delivered instead");
    }
    wait_load(&h, |l| l.tx_packets == 32 && l.tx_dropped == 0);
    rt.shutdown();
}

#[test]
fn thirty_two_equal_datagrams_go_out_as_one_gso_message() {
    thirty_two_equal(false);
}

#[test]
fn fallback_delivers_the_same_thirty_two() {
    thirty_two_equal(true);
}

/// Runs split on destination change, on a longer datagram, and after a shorter one.
fn mixed(fallback: bool) {
    let rt = start(config(1));
    let h = rt.handle(0);
    let sock = bind(&h, fallback);
    let a = peer("127.0.0.1:0");
    let b = peer("127.0.0.1:0");
    let (da, db): (SocketAddr, SocketAddr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    // (dest is b, short body)
    let plan: Vec<(bool, bool)> = vec![
        (false, false),
        (false, false),
        (false, true), // shorter: ends the run
        (false, false),
        (true, false), // new dest
        (true, false),
        (false, false),
        (false, true),
        (false, true), // shorter after shorter: new message
    ];
    let sent = plan.clone();
    call(&h, move |_, io| {
        for (i, (to_b, short)) in sent.into_iter().enumerate() {
            let body: &'static [u8] = if short { &BODY[..10] } else { &BODY[..] };
            io.send(sock, if to_b { db } else { da }, &(i as u32).to_be_bytes(), body);
        }
    });
    let pick = |want_b: bool| -> Vec<Vec<u8>> {
        plan.iter()
            .enumerate()
            .filter(|(_, (to_b, _))| *to_b == want_b)
            .map(|(i, (_, short))| expected(i as u32, *short))
            .collect()
    };
    recv_all(&a, &pick(false));
    recv_all(&b, &pick(true));
    let (gso_on, gso_messages) = gso_counters(&h);
    if gso_on {
        // [0,1,2] [3] [4,5] [6,7] [8]: three multi-segment messages.
        assert_eq!(gso_messages, 3);
    }
    wait_load(&h, |l| l.tx_packets == plan.len() as u64);
    rt.shutdown();
}

#[test]
fn mixed_sizes_and_destinations_keep_order_with_gso() {
    mixed(false);
}

#[test]
fn mixed_sizes_and_destinations_keep_order_without_gso() {
    mixed(true);
}

#[test]
fn more_than_the_queue_holds_flushes_early_and_loses_nothing() {
    let rt = start(config(1));
    let h = rt.handle(0);
    let sock = bind(&h, false);
    let receiver = peer("127.0.0.1:0");
    let dest = receiver.local_addr().unwrap();
    let total = shardsfu_net::MAX_TX_ENTRIES as u32 + 100;
    call(&h, move |_, io| {
        for i in 0..total {
            io.send(sock, dest, &i.to_be_bytes(), &BODY[..20]);
        }
    });
    wait_load(&h, |l| l.tx_packets + l.tx_dropped == total as u64);
    // Loopback delivers what the kernel accepted unless the receiver's buffer overflows, so
    // demand every datagram only when the kernel granted a buffer large enough to hold them.
    let all_fit = receiver.rcvbuf() >= 4 << 20;
    let mut buf = [0u8; 2048];
    receiver.set_read_timeout(Some(std::time::Duration::from_millis(200))).unwrap();
    let mut next = 0u32;
    while let Ok(n) = receiver.recv(&mut buf) {
        assert_eq!(n, 24);
        let i = u32::from_be_bytes(buf[..4].try_into().unwrap());
        assert!(i >= next, "out of order: {i} after {next}");
        if all_fit {
            assert_eq!(i, next, "datagram lost");
        }
        next = i + 1;
    }
    if all_fit {
        assert_eq!(next, total);
        assert_eq!(h.load().tx_packets, total as u64);
    }
    rt.shutdown();
}
