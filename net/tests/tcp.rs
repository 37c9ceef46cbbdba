//! Passive TCP (ICE-TCP, RFC 4571 framing) over real loopback connections: a shard listens,
//! echoes every frame back on its connection, and reports accepts and closes on a channel.
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::WAIT;
use shardsfu_net::{Io, Runtime, RuntimeConfig, ShardHandle, ShardLoad, ShardService, SocketId, MAX_TCP_FRAME_BYTES};

type Job = Box<dyn FnOnce(&mut Echo, &mut Io<'_, Cmd>) + Send>;
struct Cmd(Job);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Accept { listener: SocketId, conn: SocketId, remote: SocketAddr },
    Closed(SocketId),
}

struct Echo {
    /// Echo each frame back on its connection (head = this prefix, body = the frame, borrowed).
    echo_prefix: Option<Vec<u8>>,
    events: mpsc::Sender<Event>,
}

impl ShardService for Echo {
    type Command = Cmd;

    fn on_command(&mut self, _now: Instant, cmd: Cmd, io: &mut Io<'_, Cmd>) {
        (cmd.0)(self, io)
    }

    fn on_datagram<'a>(
        &mut self,
        _now: Instant,
        socket: SocketId,
        src: SocketAddr,
        data: &'a mut [u8],
        io: &mut Io<'a, Cmd>,
    ) {
        if let Some(prefix) = &self.echo_prefix {
            io.send(socket, src, prefix, data);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn on_timeout(&mut self, _now: Instant, _io: &mut Io<'_, Cmd>) {}

    fn on_tcp_accept(
        &mut self,
        _now: Instant,
        listener: SocketId,
        conn: SocketId,
        remote: SocketAddr,
        io: &mut Io<'_, Cmd>,
    ) {
        assert_eq!(io.remote_addr(conn), Some(remote));
        let _ = self.events.send(Event::Accept { listener, conn, remote });
    }

    fn on_tcp_closed(&mut self, _now: Instant, conn: SocketId, io: &mut Io<'_, Cmd>) {
        assert_eq!(io.remote_addr(conn), None, "the id is dead");
        let _ = self.events.send(Event::Closed(conn));
    }
}

struct Shard {
    rt: Runtime<Cmd>,
    h: ShardHandle<Cmd>,
    events: mpsc::Receiver<Event>,
    listener: SocketId,
    addr: SocketAddr,
}

/// One shard listening on loopback; echoes with `prefix` if given.
fn start(prefix: Option<&'static [u8]>) -> Shard {
    let (tx, events) = mpsc::channel();
    let config = RuntimeConfig { shards: 1, pin: false, name: "net-tcp".to_string(), ..RuntimeConfig::default() };
    let rt = Runtime::start(config, move |_| Echo { echo_prefix: prefix.map(<[u8]>::to_vec), events: tx.clone() })
        .unwrap_or_else(|e| panic!("runtime start: {e}"));
    let h = rt.handle(0);
    let (listener, addr) = call(&h, |_, io| {
        let l = io.listen_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
        (l, io.local_addr(l).unwrap())
    });
    assert_ne!(addr.port(), 0);
    Shard { rt, h, events, listener, addr }
}

fn call<R: Send + 'static>(
    h: &ShardHandle<Cmd>,
    f: impl FnOnce(&mut Echo, &mut Io<'_, Cmd>) -> R + Send + 'static,
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

impl Shard {
    fn event(&self) -> Event {
        self.events.recv_timeout(WAIT).expect("no event from the shard")
    }

    /// Connects a client and waits for the shard's accept; returns it with its connection id.
    fn connect(&self) -> (TcpStream, SocketId) {
        let client = TcpStream::connect(self.addr).unwrap();
        client.set_read_timeout(Some(WAIT)).unwrap();
        client.set_nodelay(true).unwrap();
        match self.event() {
            Event::Accept { listener, conn, remote } => {
                assert_eq!(listener, self.listener);
                assert_eq!(remote, client.local_addr().unwrap());
                (client, conn)
            }
            other => panic!("expected an accept, got {other:?}"),
        }
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= MAX_TCP_FRAME_BYTES);
    let mut v = (payload.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

/// Reads one RFC 4571 frame (read_exact retries EINTR).
fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut payload = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut payload)?;
    Ok(payload)
}

fn expect_eof(s: &mut TcpStream) {
    let mut buf = [0u8; 16];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            other => panic!("expected EOF, got {other:?}"),
        }
    }
}

#[test]
fn frames_echo_back_on_their_connection() {
    let shard = start(Some(b"e:"));
    let (mut a, _) = shard.connect();
    let (mut b, _) = shard.connect();
    for i in 0..20u8 {
        let msg = vec![i; 1 + i as usize * 70];
        a.write_all(&frame(&msg)).unwrap();
        b.write_all(&frame(&[i])).unwrap();
        let echo = read_frame(&mut a).unwrap();
        assert_eq!(&echo[..2], b"e:");
        assert_eq!(&echo[2..], &msg[..]);
        assert_eq!(read_frame(&mut b).unwrap(), [b'e', b':', i]);
    }
    let load = wait_load(&shard.h, |l| l.rx_packets == 40 && l.tx_packets == 40);
    assert_eq!((load.tcp_accepted, load.tcp_connections), (2, 2));
    shard.rt.shutdown();
}

#[test]
fn a_frame_split_into_single_bytes_is_reassembled() {
    let shard = start(Some(b""));
    let (mut c, _) = shard.connect();
    let payloads: Vec<Vec<u8>> = (0..5u8).map(|i| (0..300).map(|k| (k as u8).wrapping_add(i)).collect()).collect();
    let stream: Vec<u8> = payloads.iter().flat_map(|p| frame(p)).collect();
    for (k, byte) in stream.iter().enumerate() {
        c.write_all(std::slice::from_ref(byte)).unwrap();
        if k % 64 == 0 {
            std::thread::sleep(Duration::from_millis(1)); // let the shard see partial frames
        }
    }
    for p in &payloads {
        assert_eq!(&read_frame(&mut c).unwrap(), p);
    }
    shard.rt.shutdown();
}

#[test]
fn many_frames_in_one_write_all_arrive_in_order() {
    let shard = start(Some(b""));
    let (mut c, _) = shard.connect();
    let count = 2000u32;
    let stream: Vec<u8> = (0..count).flat_map(|i| frame(&i.to_be_bytes().repeat(1 + i as usize % 50))).collect();
    assert!(stream.len() > 64 * 1024, "more than one read's worth");
    c.write_all(&stream).unwrap();
    for i in 0..count {
        assert_eq!(read_frame(&mut c).unwrap(), i.to_be_bytes().repeat(1 + i as usize % 50), "frame {i}");
    }
    wait_load(&shard.h, |l| l.rx_packets == count as u64);
    shard.rt.shutdown();
}

#[test]
fn a_maximal_frame_round_trips_and_a_longer_one_is_refused() {
    let shard = start(Some(b""));
    let (mut c, conn) = shard.connect();
    let big: Vec<u8> = (0..MAX_TCP_FRAME_BYTES).map(|k| (k % 251) as u8).collect();
    c.write_all(&frame(&big)).unwrap();
    assert_eq!(read_frame(&mut c).unwrap(), big);
    // head + body over 65535 bytes cannot be framed: dropped and counted, the stream stays sound.
    call(&shard.h, move |_, io| {
        io.send(conn, "0.0.0.0:0".parse().unwrap(), b"x", &[0u8; MAX_TCP_FRAME_BYTES]);
        io.send(conn, "0.0.0.0:0".parse().unwrap(), b"after", b"");
    });
    assert_eq!(read_frame(&mut c).unwrap(), b"after");
    wait_load(&shard.h, |l| l.tcp_tx_dropped == 1);
    shard.rt.shutdown();
}

#[test]
fn zero_length_frames_are_skipped_and_counted() {
    let shard = start(Some(b"e:"));
    let (mut c, _) = shard.connect();
    let mut stream = frame(b"");
    stream.extend(frame(b"one"));
    stream.extend(frame(b""));
    c.write_all(&stream).unwrap();
    assert_eq!(read_frame(&mut c).unwrap(), b"e:one");
    wait_load(&shard.h, |l| l.tcp_rx_empty == 2 && l.rx_packets == 1);
    shard.rt.shutdown();
}

#[test]
fn a_peer_that_disconnects_yields_on_tcp_closed_and_the_id_dies() {
    let shard = start(Some(b""));
    let (c, conn) = shard.connect();
    drop(c);
    assert_eq!(shard.event(), Event::Closed(conn));
    let load = wait_load(&shard.h, |l| l.tcp_closed == 1 && l.tcp_connections == 0);
    assert_eq!(load.tcp_accepted, 1);
    // Sending to, and closing, the dead id is harmless: a counted drop and a no-op.
    call(&shard.h, move |_, io| {
        io.send(conn, "127.0.0.1:9".parse().unwrap(), b"late", b"");
        io.close_socket(conn);
        assert_eq!(io.local_addr(conn), None);
    });
    wait_load(&shard.h, |l| l.tx_dropped == 1);

    // A reset (SO_LINGER 0) ends a connection the same way, frames before it still delivered.
    let (mut c, conn) = shard.connect();
    c.write_all(&frame(b"before")).unwrap();
    assert_eq!(read_frame(&mut c).unwrap(), b"before");
    set_linger_zero(&c);
    drop(c);
    assert_eq!(shard.event(), Event::Closed(conn));
    wait_load(&shard.h, |l| l.tcp_closed == 2 && l.tcp_connections == 0);
    shard.rt.shutdown();
}

fn set_linger_zero(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: passes a pointer to a live linger struct and its exact size.
    let ret = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(ret, 0);
}

#[test]
fn closing_from_the_service_ends_the_stream_without_a_callback() {
    let shard = start(Some(b""));
    let (mut c, conn) = shard.connect();
    let listener = shard.listener;
    call(&shard.h, move |_, io| {
        io.close_socket(conn);
        io.send(conn, "127.0.0.1:9".parse().unwrap(), b"late", b""); // dead: counted, no panic
        io.send(listener, "127.0.0.1:9".parse().unwrap(), b"x", b""); // a listener: dropped too
    });
    expect_eof(&mut c);
    let load = wait_load(&shard.h, |l| l.tcp_connections == 0 && l.tx_dropped == 2);
    assert_eq!(load.tcp_closed, 0, "tcp_closed counts only connections that ended by themselves");
    assert!(shard.events.recv_timeout(Duration::from_millis(100)).is_err(), "no on_tcp_closed");

    // Closing the listener refuses new connections; it is no longer an address.
    call(&shard.h, move |_, io| {
        io.close_socket(listener);
        assert_eq!(io.local_addr(listener), None);
    });
    assert!(TcpStream::connect(shard.addr).is_err());
    shard.rt.shutdown();
}

#[test]
fn connections_over_the_limit_are_closed_at_once_and_counted() {
    let shard = start(Some(b""));
    call(&shard.h, |_, io| io.limit_tcp_connections(2));
    let (mut a, _) = shard.connect();
    let (_b, _) = shard.connect();
    let mut c = TcpStream::connect(shard.addr).unwrap(); // the kernel completes the handshake
    c.set_read_timeout(Some(WAIT)).unwrap();
    expect_eof(&mut c);
    let load = wait_load(&shard.h, |l| l.tcp_rejected == 1);
    assert_eq!((load.tcp_accepted, load.tcp_connections), (2, 2));
    // The admitted ones still work, and a slot freed by a close admits the next one.
    a.write_all(&frame(b"ok")).unwrap();
    assert_eq!(read_frame(&mut a).unwrap(), b"ok");
    drop(a);
    assert!(matches!(shard.event(), Event::Closed(_)));
    let (mut d, _) = shard.connect();
    d.write_all(&frame(b"in")).unwrap();
    assert_eq!(read_frame(&mut d).unwrap(), b"in");
    shard.rt.shutdown();
}

#[test]
fn a_peer_that_never_reads_costs_dropped_frames_not_memory_or_framing() {
    let shard = start(None);
    let (mut c, conn) = shard.connect();
    // Send far more than the kernel's buffers and ours hold, in many flushes, without reading.
    let frame_bytes = 60_000usize;
    let mut next = 0u32;
    for _ in 0..200 {
        next = call(&shard.h, move |_, io| {
            let mut seq = next;
            for _ in 0..8 {
                let mut body = vec![0u8; frame_bytes];
                body[..4].copy_from_slice(&seq.to_be_bytes());
                io.send(conn, "0.0.0.0:0".parse().unwrap(), &body, b""); // head: copied now
                seq += 1;
            }
            seq
        });
    }
    let load = wait_load(&shard.h, |l| l.tcp_tx_dropped + l.tx_packets == next as u64);
    assert!(load.tcp_tx_dropped > 0);
    assert_eq!(load.tcp_tx_dropped + load.tx_packets, next as u64);
    // The shard still serves other connections meanwhile.
    let (mut other, other_conn) = shard.connect();
    call(&shard.h, move |_, io| io.send(other_conn, "0.0.0.0:0".parse().unwrap(), b"alive", b""));
    assert_eq!(read_frame(&mut other).unwrap(), b"alive");
    // Whatever reaches the slow reader is whole frames, in order, despite partial writes.
    let mut last = None;
    let mut got = 0u64;
    while got < load.tx_packets {
        let f = read_frame(&mut c).unwrap();
        assert_eq!(f.len(), frame_bytes);
        let seq = u32::from_be_bytes(f[..4].try_into().unwrap());
        assert!(last.is_none_or(|l| seq > l), "frames out of order: {last:?} then {seq}");
        last = Some(seq);
        got += 1;
    }
    shard.rt.shutdown();
}
