//! Media between shards: shard 0 receives datagrams and forwards each to shard 1 with
//! `Io::forward_to_shard`; shard 1 sends each record out, its body borrowed from the batch buffer.
mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::{peer, WAIT};
use shardsfu_net::{
    Io, Runtime, RuntimeConfig, ShardHandle, ShardInfo, ShardLoad, ShardService, SocketId, MAX_MEDIA_BUFFERS_PER_PAIR,
    MEDIA_BATCH_BYTES, MEDIA_RECORD_PREFIX_BYTES,
};

/// Prepended by shard 0 (copied into the record), split off again by shard 1 as the send head.
const HEAD: &[u8] = b"fwd:";

type Job = Box<dyn FnOnce(&mut Relay, &mut Io<'_, Cmd>) + Send>;
struct Cmd(Job);

#[derive(Default)]
struct Relay {
    /// Forward every received datagram to this shard.
    forward_to: Option<usize>,
    forward_failed: u64,
    /// Send every record from another shard out on this socket, to this address.
    out: Option<(SocketId, SocketAddr)>,
    records: u64,
    bad_records: u64,
    flushes: u64,
    /// Time each record takes (a wide fan-out's cost), slept.
    record_cost: Duration,
}

impl ShardService for Relay {
    type Command = Cmd;

    fn on_command(&mut self, _now: Instant, cmd: Cmd, io: &mut Io<'_, Cmd>) {
        (cmd.0)(self, io)
    }

    fn on_datagram<'a>(
        &mut self,
        _now: Instant,
        _socket: SocketId,
        _src: SocketAddr,
        data: &'a mut [u8],
        io: &mut Io<'a, Cmd>,
    ) {
        if let Some(to) = self.forward_to {
            if !io.forward_to_shard(to, HEAD, data) {
                self.forward_failed += 1;
            }
        }
    }

    fn on_shard_datagram<'a>(&mut self, _now: Instant, from: usize, data: &'a mut [u8], io: &mut Io<'a, Cmd>) {
        self.records += 1;
        if !self.record_cost.is_zero() {
            std::thread::sleep(self.record_cost);
        }
        if from == io.shard() || !data.starts_with(HEAD) {
            self.bad_records += 1;
            return;
        }
        if let Some((socket, dest)) = self.out {
            let (head, body) = data.split_at(HEAD.len());
            io.send(socket, dest, head, body);
        }
    }

    fn on_flush(&mut self, _now: Instant, _io: &mut Io<'_, Cmd>) {
        self.flushes += 1;
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn on_timeout(&mut self, _now: Instant, _io: &mut Io<'_, Cmd>) {}
}

fn start(spin_before_park: Duration) -> Runtime<Cmd> {
    let config = RuntimeConfig {
        shards: 2,
        pin: false,
        spin_before_park,
        name: "net-media".to_string(),
        ..RuntimeConfig::default()
    };
    Runtime::start(config, |_: ShardInfo| Relay::default()).unwrap_or_else(|e| panic!("runtime start: {e}"))
}

fn call<R: Send + 'static>(
    h: &ShardHandle<Cmd>,
    f: impl FnOnce(&mut Relay, &mut Io<'_, Cmd>) -> R + Send + 'static,
) -> R {
    let (tx, rx) = mpsc::channel();
    h.submit(Cmd(Box::new(move |s, io| {
        let _ = tx.send(f(s, io));
    })))
    .unwrap_or_else(|e| panic!("submit: {e}"));
    rx.recv_timeout(WAIT).expect("shard did not run the command")
}

fn wait_load(h: &ShardHandle<Cmd>, cond: impl Fn(&ShardLoad) -> bool) -> ShardLoad {
    let deadline = Instant::now() + WAIT;
    loop {
        let load = h.load();
        if cond(&load) {
            return load;
        }
        assert!(Instant::now() < deadline, "load never matched: {load:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Shard 0 binds the ingress socket and forwards to shard 1; shard 1 binds the egress socket and
/// sends to `client`. Returns the ingress address.
fn relay(rt: &Runtime<Cmd>, client: SocketAddr) -> SocketAddr {
    call(&rt.handle(1), move |s, io| {
        let socket = io.bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        s.out = Some((socket, client));
    });
    call(&rt.handle(0), |s, io| {
        s.forward_to = Some(1);
        let socket = io.bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        io.local_addr(socket).unwrap()
    })
}

fn payload(i: u32) -> Vec<u8> {
    let len = 4 + (i as usize * 7) % 1200;
    let mut p: Vec<u8> = (0..len).map(|k| (k as u32).wrapping_mul(31).wrapping_add(i) as u8).collect();
    p[..4].copy_from_slice(&i.to_le_bytes());
    p
}

/// Body of the records `forward` makes.
const BODY: usize = 1000;

/// Records of `BODY` bytes (plus `HEAD`) one media batch holds.
fn per_batch() -> usize {
    MEDIA_BATCH_BYTES / (MEDIA_RECORD_PREFIX_BYTES + HEAD.len() + BODY)
}

/// Shard 0 forwards `n` records of `BODY` bytes to shard 1 at once; how many it accepted.
fn forward(h0: &ShardHandle<Cmd>, n: usize) -> usize {
    call(h0, move |_, io| {
        let body = [9u8; BODY];
        (0..n).filter(|_| io.forward_to_shard(1, HEAD, &body)).count()
    })
}

/// Holds the shard inside a command (it drains nothing) until the returned sender sends.
fn stick(h: &ShardHandle<Cmd>) -> mpsc::Sender<()> {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (stuck_tx, stuck_rx) = mpsc::channel();
    h.submit(Cmd(Box::new(move |_, _| {
        let _ = stuck_tx.send(());
        let _ = release_rx.recv_timeout(WAIT);
    })))
    .unwrap();
    stuck_rx.recv_timeout(WAIT).unwrap();
    release_tx
}

#[test]
fn every_datagram_crosses_once_in_order_with_its_bytes_and_buffers_recycle() {
    const N: u32 = 5000;
    /// Datagrams in flight at most: keeps every socket buffer far from full, so none is lost.
    const WINDOW: usize = 128;
    let rt = start(RuntimeConfig::default().spin_before_park);
    let client = peer("127.0.0.1:0");
    let ingress = relay(&rt, client.local_addr().unwrap());
    let sender = client.try_clone().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let progress = received.clone();
    let send = std::thread::spawn(move || {
        for i in 0..N {
            let deadline = Instant::now() + WAIT;
            while i as usize >= progress.load(Ordering::Acquire) + WINDOW {
                assert!(Instant::now() < deadline, "relay stalled at {i}");
                std::thread::yield_now();
            }
            sender.send_to(&payload(i), ingress).unwrap();
        }
    });
    let mut buf = vec![0u8; 4096];
    for i in 0..N {
        let n = client.recv(&mut buf).unwrap_or_else(|e| panic!("datagram {i} never arrived: {e}"));
        let got = &buf[..n];
        assert_eq!(&got[..HEAD.len()], HEAD, "datagram {i}");
        let seq = u32::from_le_bytes(got[HEAD.len()..HEAD.len() + 4].try_into().unwrap());
        if seq != i {
            std::thread::sleep(Duration::from_millis(300));
            panic!("order: got {seq}, want {i}; {:?} {:?}", rt.handle(0).load(), rt.handle(1).load());
        }
        assert_eq!(&got[HEAD.len()..], &payload(i)[..], "bytes of datagram {i}");
        received.fetch_add(1, Ordering::Release);
    }
    send.join().unwrap();

    let n = N as u64;
    let l0 = wait_load(&rt.handle(0), |l| l.rx_packets == n && l.shard_tx_records == n);
    let l1 = wait_load(&rt.handle(1), |l| l.shard_rx_records == n && l.tx_packets == n);
    assert_eq!((l0.shard_tx_dropped, l0.shard_rx_records, l0.shard_rx_malformed), (0, 0, 0), "{l0:?}");
    assert_eq!((l1.shard_tx_records, l1.shard_rx_malformed, l1.tx_dropped), (0, 0, 0), "{l1:?}");
    let (failed, allocated) = call(&rt.handle(0), |s, io| (s.forward_failed, io.media_buffers_allocated(1)));
    assert_eq!(failed, 0);
    // Batches went out at flush points and came back: one in the ring, one at shard 1 and the one
    // being filled served them all (plus a spare for scheduling noise).
    assert!((1..=4).contains(&allocated), "{allocated} buffers for {N} records");
    assert_eq!(l0.shard_batch_buffers, allocated as u64);
    assert_eq!(l1.shard_batch_buffers, 0);
    let (records, bad, flushes) = call(&rt.handle(1), |s, _| (s.records, s.bad_records, s.flushes));
    assert_eq!((records, bad), (n, 0));
    assert!(flushes > 0);
    rt.shutdown();
}

#[test]
fn a_parked_target_is_woken_by_a_batch() {
    let rt = start(Duration::ZERO); // both shards park as soon as idle
    let client = peer("127.0.0.1:0");
    let ingress = relay(&rt, client.local_addr().unwrap());
    const ROUNDS: u32 = 40;
    let mut slow = 0;
    let mut buf = [0u8; 2048];
    for i in 0..ROUNDS {
        std::thread::sleep(Duration::from_millis(3)); // both park (100 ms cap)
        let sent = Instant::now();
        client.send_to(&payload(i), ingress).unwrap();
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(&buf[HEAD.len()..n], &payload(i)[..]);
        if sent.elapsed() > Duration::from_millis(50) {
            slow += 1;
        }
    }
    // Shard 0 wakes on its socket; a lost wake-up of shard 1 would cost its whole 100 ms park.
    assert!(slow <= 3, "{slow} of {ROUNDS} relays took > 50 ms");
    rt.shutdown();
}

#[test]
fn a_target_that_does_not_drain_costs_counted_drops_not_memory() {
    let rt = start(RuntimeConfig::default().spin_before_park);
    let (h0, h1) = (rt.handle(0), rt.handle(1));
    let bad = call(&h0, |_, io| io.forward_to_shard(2, b"", b"nobody"));
    assert!(!bad, "out of range");
    let too_long = call(&h0, |_, io| io.forward_to_shard(1, &[0; 2], &vec![0; MEDIA_BATCH_BYTES - 3]));
    assert!(!too_long);

    // Shard 1 is stuck inside a command: it drains nothing while shard 0 forwards.
    let release = stick(&h1);

    let per_batch = per_batch();
    let tries = (MAX_MEDIA_BUFFERS_PER_PAIR + 4) * per_batch;
    let accepted = forward(&h0, tries);
    assert_eq!(accepted, MAX_MEDIA_BUFFERS_PER_PAIR * per_batch, "the pool stops at its bound");
    let dropped = (tries - accepted) as u64;
    let l0 = wait_load(&h0, |l| l.shard_tx_dropped == dropped + 1); // + the too-long record
    assert_eq!(l0.shard_tx_records, accepted as u64);
    assert_eq!(l0.shard_batch_buffers, MAX_MEDIA_BUFFERS_PER_PAIR as u64);

    // Released, shard 1 delivers every accepted record and hands the buffers back for reuse.
    release.send(()).unwrap();
    wait_load(&h1, |l| l.shard_rx_records == accepted as u64);
    let again = forward(&h0, 4 * per_batch);
    assert_eq!(again, 4 * per_batch);
    wait_load(&h1, |l| l.shard_rx_records == (accepted + again) as u64);
    assert_eq!(call(&h0, |_, io| io.media_buffers_allocated(1)), MAX_MEDIA_BUFFERS_PER_PAIR, "no new buffers");
    assert_eq!(call(&h1, |s, _| (s.records, s.bad_records)), ((accepted + again) as u64, 0));
    rt.shutdown();
}

#[test]
fn a_media_backlog_does_not_hold_the_turn() {
    let rt = start(RuntimeConfig::default().spin_before_park);
    let (h0, h1) = (rt.handle(0), rt.handle(1));
    // Each record costs shard 1 a millisecond, as one fanned out to a thousand consumers does.
    call(&h1, |s, _| s.record_cost = Duration::from_millis(1));

    // A full pool of batches waits for shard 1 while it is stuck in a command: about a second
    // of work, all queued before its next turn.
    let release = stick(&h1);
    let per_batch = per_batch();
    let total = MAX_MEDIA_BUFFERS_PER_PAIR * per_batch;
    assert_eq!(forward(&h0, total), total);
    release.send(()).unwrap();

    // Load reports keep coming while it works through the backlog ...
    let total = total as u64;
    let mid = wait_load(&h1, |l| l.shard_rx_records > 0 && l.shard_rx_records < total);
    // ... and a command waits at most a turn, not the whole backlog.
    std::thread::sleep(Duration::from_millis(100));
    let seen = call(&h1, |s, _| s.records);
    assert!(seen < total - per_batch as u64, "the command ran after {seen} of {total} records; {mid:?}");
    wait_load(&h1, |l| l.shard_rx_records == total);
    assert_eq!(call(&h1, |s, _| (s.records, s.bad_records)), (total, 0));
    rt.shutdown();
}
