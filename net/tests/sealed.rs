//! Sealed datagrams (`Io::send_sealed`): sealed at the flush, in per-socket queue order, through
//! a staging buffer smaller than one socket's train; a failed seal drops that datagram only.
mod common;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;

use common::*;
use shardsfu_net::{Seal, ShardHandle, SocketId, SEAL_STAGING_BYTES};

/// XORs every byte with `key`, appends a 4-byte tag (the count of seals so far, so the order
/// in which they ran shows on the wire), and fails on every seal whose count is in `fail`.
struct XorSeal {
    key: u8,
    count: Cell<u32>,
    fail: Vec<u32>,
}

const TAG: usize = 4;

impl Seal for XorSeal {
    fn seal(&self, head: &[u8], body: &[u8], out: &mut [u8]) -> Option<usize> {
        let n = self.count.get();
        self.count.set(n + 1);
        if self.fail.contains(&n) {
            return None;
        }
        let plain = head.len() + body.len();
        assert_eq!(out.len(), plain + TAG, "out is exactly the sealed length");
        for (o, b) in out.iter_mut().zip(head.iter().chain(body)) {
            *o = b ^ self.key;
        }
        out[plain..].copy_from_slice(&n.to_be_bytes());
        Some(plain + TAG)
    }

    fn overhead(&self) -> usize {
        TAG
    }
}

/// Plain datagram `i` of a socket: 4-byte head (index), then the shared body (shortened for the
/// last one, so a train ends on a shorter datagram).
fn plain(i: u32, body: &[u8]) -> Vec<u8> {
    let mut v = i.to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn sealed(i: u32, body: &[u8], key: u8, count: u32) -> Vec<u8> {
    let mut v: Vec<u8> = plain(i, body).iter().map(|b| b ^ key).collect();
    v.extend_from_slice(&count.to_be_bytes());
    v
}

fn bind(h: &ShardHandle<Cmd>, fallback: bool) -> SocketId {
    call(h, move |_, io| {
        if fallback {
            io.force_gso_fallback();
        }
        io.bind_udp("127.0.0.1:0".parse().unwrap()).unwrap()
    })
}

fn recv_all(sock: &Peer, want: &[Vec<u8>]) {
    let mut buf = [0u8; 2048];
    for (i, w) in want.iter().enumerate() {
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &w[..], "datagram {i}");
    }
}

const BODY_BYTES: usize = 1000;
/// Per socket: more than one staging buffer's worth of sealed datagrams.
const PER_SOCKET: u32 = (SEAL_STAGING_BYTES / (4 + BODY_BYTES + TAG)) as u32 * 3 / 2;
/// Seals (counted per socket's context) that fail: one that would start a chunk's train, one
/// in the middle of a train, and the last (short) one.
const FAILING: [u32; 3] = [0, 77, PER_SOCKET - 1];

fn two_sockets_interleaved(fallback: bool) {
    let rt = start(config(1));
    let h = rt.handle(0);
    let (a, b) = (bind(&h, fallback), bind(&h, fallback));
    let (ra, rb) = (peer("127.0.0.1:0"), peer("127.0.0.1:0"));
    let (da, db): (SocketAddr, SocketAddr) = (ra.local_addr().unwrap(), rb.local_addr().unwrap());
    static BODY: [u8; BODY_BYTES] = {
        let mut b = [0u8; BODY_BYTES];
        let mut i = 0;
        while i < BODY_BYTES {
            b[i] = i as u8;
            i += 1;
        }
        b
    };
    // All queued in one command, so one flush seals them: a's and b's alternate in the queue,
    // plain ones mixed in on b, each socket's last one shorter.
    call(&h, move |_, io| {
        let seal_a: Rc<dyn Seal> = Rc::new(XorSeal { key: 0x5a, count: Cell::new(0), fail: FAILING.to_vec() });
        let seal_b: Rc<dyn Seal> = Rc::new(XorSeal { key: 0xc3, count: Cell::new(0), fail: vec![] });
        for i in 0..PER_SOCKET {
            let body = if i == PER_SOCKET - 1 { &BODY[..100] } else { &BODY[..] };
            io.send_sealed(a, da, &i.to_be_bytes(), body, seal_a.clone());
            if i % 10 == 9 {
                io.send(b, db, &i.to_be_bytes(), body);
            } else {
                io.send_sealed(b, db, &i.to_be_bytes(), body, seal_b.clone());
            }
        }
        // The queue keeps the contexts alive past this point.
    });
    let body = |i: u32| if i == PER_SOCKET - 1 { &BODY[..100] } else { &BODY[..] };
    // On a, seal number `n` is datagram `n` (sealed in queue order), the failing ones missing.
    let want_a: Vec<_> =
        (0..PER_SOCKET).filter(|i| !FAILING.contains(i)).map(|i| sealed(i, body(i), 0x5a, i)).collect();
    // On b, every tenth is plain: seal numbers count only the sealed ones.
    let mut count = 0;
    let want_b: Vec<_> = (0..PER_SOCKET)
        .map(|i| {
            if i % 10 == 9 {
                plain(i, body(i))
            } else {
                count += 1;
                sealed(i, body(i), 0xc3, count - 1)
            }
        })
        .collect();
    recv_all(&ra, &want_a);
    recv_all(&rb, &want_b);
    let total = 2 * u64::from(PER_SOCKET);
    wait_load(&h, |l| l.tx_packets == total - 3 && l.tx_seal_failed == 3 && l.tx_dropped == 0);
    if !fallback && call(&h, |_, io| io.gso_enabled()) {
        // Staging splits a socket's train into chunks, not into single datagrams.
        let gso = call(&h, |_, io| io.gso_messages_sent());
        assert!(gso > 0 && gso < total / 8, "{gso} GSO messages for {total} datagrams");
    }
    rt.shutdown();
}

#[test]
fn sealed_datagrams_go_out_in_queue_order_per_socket() {
    two_sockets_interleaved(false);
}

#[test]
fn sealed_datagrams_without_gso() {
    two_sockets_interleaved(true);
}

/// A context whose owner is gone by the flush still seals what was queued with it.
#[test]
fn queued_datagrams_keep_their_context_alive() {
    let rt = start(config(1));
    let h = rt.handle(0);
    let a = bind(&h, false);
    let ra = peer("127.0.0.1:0");
    let da = ra.local_addr().unwrap();
    call(&h, move |_, io| {
        let seal: Rc<dyn Seal> = Rc::new(XorSeal { key: 1, count: Cell::new(0), fail: vec![] });
        io.send_sealed(a, da, b"head", b"body", seal);
    });
    let mut want = b"headbody".iter().map(|b| b ^ 1).collect::<Vec<u8>>();
    want.extend_from_slice(&0u32.to_be_bytes());
    recv_all(&ra, &[want]);
    rt.shutdown();
}
