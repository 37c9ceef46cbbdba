//! Passive TCP for ICE-TCP (RFC 6544 passive candidates) with RFC 4571 framing: every packet on
//! the stream is a 2-byte big-endian length, then that many bytes.
//!
//! Listeners and accepted connections live in the shard's socket table next to the UDP sockets
//! (same `SocketId` space, same epoll set). This file holds the per-connection state, the two
//! pure buffers (the [`Deframer`] for inbound bytes and the [`TxBuf`] for outbound frames, both
//! unit-tested without sockets) and the table operations specific to TCP. The shard loop
//! (`shard.rs`) drives them: accepts, reads and hands frames to the service, reports closes.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::os::fd::AsRawFd;

use crate::udp::{Sock, SocketId, Udp};

/// Length prefix of one RFC 4571 frame.
pub const TCP_FRAME_PREFIX_BYTES: usize = 2;
/// Longest frame payload the 2-byte prefix can express.
pub const MAX_TCP_FRAME_BYTES: usize = u16::MAX as usize;
/// Per-connection reassembly buffer: exactly one maximal frame with its prefix, so a partial
/// frame always fits once the complete frames before it are consumed.
pub const TCP_RX_BUFFER_BYTES: usize = TCP_FRAME_PREFIX_BYTES + MAX_TCP_FRAME_BYTES;
/// Per-connection send buffer (framed bytes not yet taken by the kernel). A frame that does not
/// fit is dropped and counted (`ShardLoad::tcp_tx_dropped`): a peer that does not read loses
/// packets, like a congested UDP path, instead of growing memory.
pub const TCP_TX_BUFFER_BYTES: usize = 256 * 1024;
/// Most accepted connections one shard holds; further accepts are closed at once and counted
/// (`ShardLoad::tcp_rejected`). With the two buffers this bounds TCP memory per shard to about
/// 1024 x 320 KiB = 320 MiB of address space (pages are touched only as they are used).
pub const MAX_TCP_CONNECTIONS_PER_SHARD: usize = 1024;
/// Connections accepted from one ready listener per loop turn.
pub const MAX_TCP_ACCEPTS_PER_TURN: usize = 32;
/// Bytes read from one connection per loop turn, so one fast sender cannot starve the shard
/// (level-triggered epoll reports the rest next turn).
pub const MAX_TCP_RX_BYTES_PER_TURN: usize = 128 * 1024;

const _: () = assert!(TCP_TX_BUFFER_BYTES >= TCP_FRAME_PREFIX_BYTES + MAX_TCP_FRAME_BYTES);

/// Reassembles RFC 4571 frames from a byte stream in one fixed buffer. Reads go into
/// [`Deframer::spare`], complete frames come out of [`Deframer::next_frame`] as ranges of the
/// buffer (delivered in place, mutable), and the incomplete tail moves to the front only when
/// more room is needed, i.e. after the frames handed out are no longer borrowed.
pub(crate) struct Deframer {
    buf: Box<[u8]>,
    /// Start of the first byte not yet consumed as a frame.
    start: usize,
    /// End of the bytes read.
    end: usize,
}

impl Deframer {
    /// Allocates the buffer (once per connection, at accept).
    pub(crate) fn new() -> Deframer {
        Deframer { buf: vec![0u8; TCP_RX_BUFFER_BYTES].into_boxed_slice(), start: 0, end: 0 }
    }

    /// A placeholder without a buffer (no allocation), left in the connection while the shard
    /// loop holds the real one.
    pub(crate) fn empty() -> Deframer {
        Deframer { buf: Box::default(), start: 0, end: 0 }
    }

    /// Room to read into. Moves the incomplete tail to the front first, so the caller must no
    /// longer reference frames handed out before (the shard loop flushes before calling this).
    /// Never empty once all complete frames are taken: the tail is shorter than one frame.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        debug_assert!(self.end < self.buf.len() || self.buf.is_empty(), "complete frames left unconsumed");
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were read into [`Deframer::spare`].
    pub(crate) fn filled(&mut self, n: usize) {
        assert!(self.end + n <= self.buf.len());
        self.end += n;
    }

    /// The next complete frame's payload (possibly empty: a zero-length frame), or `None` until
    /// more bytes arrive.
    pub(crate) fn next_frame(&mut self) -> Option<Range<usize>> {
        let available = self.end - self.start;
        if available < TCP_FRAME_PREFIX_BYTES {
            return None;
        }
        let len = u16::from_be_bytes([self.buf[self.start], self.buf[self.start + 1]]) as usize;
        if available < TCP_FRAME_PREFIX_BYTES + len {
            return None;
        }
        let payload = self.start + TCP_FRAME_PREFIX_BYTES;
        self.start = payload + len;
        if self.start == self.end {
            // Nothing left over: the next read starts at the front without a copy.
            // (Frames handed out stay valid: the bytes are not touched until the next read.)
            self.start = 0;
            self.end = 0;
        }
        Some(payload..payload + len)
    }

    /// The bytes of a range returned by [`Deframer::next_frame`].
    pub(crate) fn frame_mut(&mut self, range: Range<usize>) -> &mut [u8] {
        &mut self.buf[range]
    }

    /// Bytes of an incomplete frame waiting for the rest.
    #[cfg(test)]
    fn pending(&self) -> usize {
        self.end - self.start
    }
}

/// Why [`TxBuf::push_frame`] refused a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxReject {
    /// `head + body` longer than `MAX_TCP_FRAME_BYTES`: not expressible in RFC 4571.
    TooLong,
    /// The send buffer has no room (the peer reads slower than we send).
    Full,
}

/// A connection's bounded send buffer of framed bytes. Frames go in whole or not at all, and
/// the kernel takes bytes from the front, so a partial write never breaks the framing.
pub(crate) struct TxBuf {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl TxBuf {
    pub(crate) fn new() -> TxBuf {
        TxBuf { buf: vec![0u8; TCP_TX_BUFFER_BYTES].into_boxed_slice(), start: 0, end: 0 }
    }

    /// Appends `len(head ++ body)` as a big-endian `u16`, then `head`, then `body`.
    pub(crate) fn push_frame(&mut self, head: &[u8], body: &[u8]) -> Result<(), TxReject> {
        let len = head.len() + body.len();
        if len > MAX_TCP_FRAME_BYTES {
            return Err(TxReject::TooLong);
        }
        let need = TCP_FRAME_PREFIX_BYTES + len;
        if self.end + need > self.buf.len() {
            if self.end - self.start + need > self.buf.len() {
                return Err(TxReject::Full);
            }
            // Only after a partial write: move the unsent bytes to the front.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let at = self.end;
        self.buf[at..at + 2].copy_from_slice(&(len as u16).to_be_bytes());
        self.buf[at + 2..at + 2 + head.len()].copy_from_slice(head);
        self.buf[at + 2 + head.len()..at + need].copy_from_slice(body);
        self.end += need;
        Ok(())
    }

    /// Framed bytes not yet written.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The kernel took the first `n` pending bytes.
    pub(crate) fn consume(&mut self, n: usize) {
        assert!(n <= self.end - self.start);
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}

/// One accepted connection.
pub(crate) struct TcpConn {
    pub(crate) stream: TcpStream,
    pub(crate) remote: SocketAddr,
    pub(crate) rx: Deframer,
    pub(crate) tx: TxBuf,
    /// Listed in `Udp::tcp_dirty` (written at the next flush).
    pub(crate) queued: bool,
    /// The kernel's buffer was full: EPOLLOUT is registered and writes wait for it.
    pub(crate) want_write: bool,
}

impl TcpConn {
    /// Writes as much pending data as the kernel takes in one `send` (std uses `MSG_NOSIGNAL`,
    /// so a reset peer is an `EPIPE` error, never a signal). `Ok(true)`: nothing left.
    fn write_once(&mut self) -> io::Result<bool> {
        loop {
            let pending = self.tx.pending();
            if pending.is_empty() {
                return Ok(true);
            }
            match (&self.stream).write(pending) {
                Ok(n) => {
                    self.tx.consume(n);
                    return Ok(self.tx.pending().is_empty());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }
}

/// What one `accept` on a listener gave.
pub(crate) enum Accepted {
    /// A new connection, registered in the table and the epoll set.
    Conn(SocketId, SocketAddr),
    /// A connection over the limits (closed at once, counted).
    Rejected,
    /// Nothing more to accept now (or the listener is gone, or an error was logged).
    Done,
}

/// What one read from a connection gave.
pub(crate) enum ReadResult {
    /// `n > 0` bytes were read into the deframer's spare room.
    Bytes(usize),
    /// Nothing to read now.
    WouldBlock,
    /// The peer closed the stream, or it failed (reset...): the connection is over.
    Ended,
    /// The id no longer names a connection (the service closed it).
    Gone,
}

impl Udp {
    /// Binds a nonblocking listening TCP socket and registers it with the shard's epoll.
    /// (std's `TcpListener::bind` sets `SO_REUSEADDR` on Unix and listens with a backlog of 128.)
    pub(crate) fn listen_tcp(&mut self, addr: SocketAddr) -> io::Result<SocketId> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        if self.spare_fd.is_none() {
            self.spare_fd = std::fs::File::open("/dev/null").ok();
        }
        self.insert(Sock::TcpListener(listener))
    }

    /// Accepts one connection from `listener`.
    pub(crate) fn accept_tcp(&mut self, listener: SocketId) -> Accepted {
        let Some(Sock::TcpListener(l)) = self.sock(listener) else {
            return Accepted::Done;
        };
        let accepted = loop {
            match l.accept() {
                Ok(pair) => break Ok(pair),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The peer gave up while queued: try the next one.
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => return Accepted::Rejected,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Accepted::Done,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => break Err(e),
                Err(e) => {
                    // ENOBUFS, ENOMEM...: the listener stays readable; we retry next turn.
                    tracing::debug!(?listener, error = %e, "accept failed");
                    return Accepted::Done;
                }
            }
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => return self.shed_without_descriptors(listener, e),
        };
        if self.counters.tcp_connections as usize >= self.tcp_limit || !self.has_room() {
            self.counters.tcp_rejected += 1;
            return Accepted::Rejected; // dropping `stream` closes it
        }
        if stream.set_nonblocking(true).is_err() {
            self.counters.tcp_rejected += 1;
            return Accepted::Rejected;
        }
        // Media is latency-bound and frames are already batched per flush: no Nagle delay.
        let _ = stream.set_nodelay(true);
        let conn = TcpConn { stream, remote, rx: Deframer::new(), tx: TxBuf::new(), queued: false, want_write: false };
        match self.insert(Sock::TcpConn(Box::new(conn))) {
            Ok(id) => {
                self.counters.tcp_accepted += 1;
                self.counters.tcp_connections += 1;
                Accepted::Conn(id, remote)
            }
            Err(e) => {
                tracing::debug!(error = %e, "accepted connection not registered");
                self.counters.tcp_rejected += 1;
                Accepted::Rejected
            }
        }
    }

    /// Out of descriptors: the connection would stay queued and the level-triggered listener
    /// readable, spinning the shard. Frees the reserve descriptor to accept the connection and
    /// close it at once (counted as rejected), then takes the reserve again.
    fn shed_without_descriptors(&mut self, listener: SocketId, error: io::Error) -> Accepted {
        tracing::debug!(?listener, %error, "out of file descriptors; shedding a connection");
        let Some(spare) = self.spare_fd.take() else {
            return Accepted::Done;
        };
        drop(spare);
        let shed = matches!(self.sock(listener), Some(Sock::TcpListener(l)) if l.accept().is_ok());
        self.spare_fd = std::fs::File::open("/dev/null").ok();
        if !shed {
            return Accepted::Done;
        }
        self.counters.tcp_rejected += 1;
        Accepted::Rejected
    }

    /// The remote address of connection `id`.
    pub(crate) fn remote_addr(&self, id: SocketId) -> Option<SocketAddr> {
        match self.sock(id) {
            Some(Sock::TcpConn(c)) => Some(c.remote),
            _ => None,
        }
    }

    /// Takes the connection's deframer (and its remote address) so frames can be handed to the
    /// service while it also holds the table; give it back with [`Udp::put_deframer`].
    pub(crate) fn take_deframer(&mut self, id: SocketId) -> Option<(Deframer, SocketAddr)> {
        match self.sock_mut(id) {
            Some(Sock::TcpConn(c)) => Some((std::mem::replace(&mut c.rx, Deframer::empty()), c.remote)),
            _ => None,
        }
    }

    /// Puts a deframer back; dropped if the connection was closed meanwhile.
    pub(crate) fn put_deframer(&mut self, id: SocketId, rx: Deframer) {
        if let Some(Sock::TcpConn(c)) = self.sock_mut(id) {
            c.rx = rx;
        }
    }

    /// One `read` from connection `id` into `buf`.
    pub(crate) fn read_tcp(&mut self, id: SocketId, buf: &mut [u8]) -> ReadResult {
        let Some(Sock::TcpConn(c)) = self.sock(id) else {
            return ReadResult::Gone;
        };
        loop {
            match (&c.stream).read(buf) {
                Ok(0) => return ReadResult::Ended,
                Ok(n) => return ReadResult::Bytes(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadResult::WouldBlock,
                Err(e) => {
                    tracing::debug!(conn = ?id, error = %e, "tcp read failed");
                    return ReadResult::Ended;
                }
            }
        }
    }

    /// Frames `head ++ body` into connection `id`'s send buffer (written at the next flush).
    pub(crate) fn queue_tcp(&mut self, id: SocketId, head: &[u8], body: &[u8]) {
        let Some(Sock::TcpConn(c)) = self.sock_mut(id) else {
            self.counters.tx_dropped += 1;
            return;
        };
        match c.tx.push_frame(head, body) {
            Ok(()) => {
                let first = !std::mem::replace(&mut c.queued, true);
                self.counters.tx_packets += 1;
                self.counters.tx_bytes += (head.len() + body.len()) as u64;
                if first {
                    debug_assert!(self.tcp_dirty.len() < self.tcp_dirty.capacity());
                    self.tcp_dirty.push(id);
                }
            }
            Err(_) => self.counters.tcp_tx_dropped += 1,
        }
    }

    /// One write per queued connection (those waiting for EPOLLOUT are skipped: the event
    /// writes them). A connection whose write fails is closed and listed for `on_tcp_closed`.
    pub(crate) fn flush_tcp(&mut self) {
        for i in 0..self.tcp_dirty.len() {
            let id = self.tcp_dirty[i];
            let Some(Sock::TcpConn(c)) = self.sock_mut(id) else {
                continue;
            };
            c.queued = false;
            if !c.want_write {
                let result = c.write_once();
                self.after_write(id, result);
            }
        }
        self.tcp_dirty.clear();
    }

    /// EPOLLOUT on connection `id`: write what is pending.
    pub(crate) fn tcp_writable(&mut self, id: SocketId) {
        if let Some(Sock::TcpConn(c)) = self.sock_mut(id) {
            let result = c.write_once();
            self.after_write(id, result);
        }
    }

    /// Registers or drops EPOLLOUT interest after a write; closes the connection on error.
    fn after_write(&mut self, id: SocketId, result: io::Result<bool>) {
        let Some(Sock::TcpConn(c)) = self.sock_mut(id) else {
            return;
        };
        let fd = c.stream.as_raw_fd();
        match result {
            Ok(drained) if drained == c.want_write => {
                // Writable interest flips: on when the kernel's buffer filled, off once drained.
                c.want_write = !drained;
                let events = if drained { libc::EPOLLIN } else { libc::EPOLLIN | libc::EPOLLOUT };
                if let Err(e) = self.epoll().modify(fd, id.0 as u64, events as u32) {
                    tracing::debug!(conn = ?id, error = %e, "epoll_ctl(MOD) failed; closing");
                    self.end_tcp(id);
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(conn = ?id, error = %e, "tcp write failed; closing");
                self.end_tcp(id);
            }
        }
    }

    /// Closes connection `id` because it ended (peer, error): counted, and listed so the shard
    /// loop calls `on_tcp_closed` at its next flush point.
    pub(crate) fn end_tcp(&mut self, id: SocketId) {
        if !matches!(self.sock(id), Some(Sock::TcpConn(_))) {
            return;
        }
        self.close(id);
        self.counters.tcp_closed += 1;
        debug_assert!(self.tcp_ended.len() < self.tcp_ended.capacity());
        self.tcp_ended.push(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    /// Feeds `stream` in chunks of `chunk` bytes, collecting every frame.
    fn deframe(stream: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        let mut d = Deframer::new();
        let mut out = Vec::new();
        let mut rest = stream;
        while !rest.is_empty() {
            let spare = d.spare();
            let n = chunk.min(spare.len()).min(rest.len());
            spare[..n].copy_from_slice(&rest[..n]);
            d.filled(n);
            rest = &rest[n..];
            while let Some(r) = d.next_frame() {
                out.push(d.frame_mut(r).to_vec());
            }
        }
        assert_eq!(d.pending(), 0);
        out
    }

    #[test]
    fn deframer_handles_any_split() {
        let payloads: Vec<Vec<u8>> =
            vec![b"hello".to_vec(), Vec::new(), vec![7; 1200], vec![1], vec![9; MAX_TCP_FRAME_BYTES], b"end".to_vec()];
        let stream: Vec<u8> = payloads.iter().flat_map(|p| frame(p)).collect();
        for chunk in [1, 2, 3, 7, 1000, 4096, TCP_RX_BUFFER_BYTES] {
            assert_eq!(deframe(&stream, chunk), payloads, "chunk {chunk}");
        }
    }

    #[test]
    fn deframer_many_frames_in_one_read_and_a_held_tail() {
        let mut d = Deframer::new();
        let mut stream: Vec<u8> = (0..100u8).flat_map(|i| frame(&[i; 10])).collect();
        stream.extend_from_slice(&[0, 5, b'a', b'b']); // a frame missing 3 bytes
        let spare = d.spare();
        spare[..stream.len()].copy_from_slice(&stream);
        d.filled(stream.len());
        for i in 0..100u8 {
            let r = d.next_frame().unwrap();
            assert_eq!(d.frame_mut(r), &[i; 10]);
        }
        assert!(d.next_frame().is_none());
        assert_eq!(d.pending(), 4);
        let spare = d.spare();
        assert_eq!(spare.len(), TCP_RX_BUFFER_BYTES - 4, "the tail moved to the front");
        spare[..3].copy_from_slice(b"cde");
        d.filled(3);
        let r = d.next_frame().unwrap();
        assert_eq!(d.frame_mut(r), b"abcde");
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn deframer_maximal_frame_fills_the_buffer_exactly() {
        let mut d = Deframer::new();
        let stream = frame(&[3; MAX_TCP_FRAME_BYTES]);
        assert_eq!(stream.len(), TCP_RX_BUFFER_BYTES);
        let spare = d.spare();
        assert_eq!(spare.len(), stream.len());
        spare.copy_from_slice(&stream);
        d.filled(stream.len());
        let r = d.next_frame().unwrap();
        assert_eq!(r.len(), MAX_TCP_FRAME_BYTES);
        assert!(d.spare().len() == TCP_RX_BUFFER_BYTES);
    }

    #[test]
    fn txbuf_frames_and_survives_partial_writes() {
        let mut t = TxBuf::new();
        t.push_frame(b"ab", b"cde").unwrap();
        t.push_frame(b"", b"").unwrap();
        t.push_frame(b"x", b"").unwrap();
        assert_eq!(t.pending(), &[0, 5, b'a', b'b', b'c', b'd', b'e', 0, 0, 0, 1, b'x']);
        // A partial write: the rest stays, in order; new frames append after it.
        t.consume(3);
        t.push_frame(b"", b"yz").unwrap();
        assert_eq!(t.pending(), &[b'b', b'c', b'd', b'e', 0, 0, 0, 1, b'x', 0, 2, b'y', b'z']);
        let mut written = t.pending().to_vec();
        let n = t.pending().len();
        t.consume(n);
        assert!(t.pending().is_empty());
        // What was written in pieces deframes to the original frames.
        let mut stream = vec![0, 5, b'a'];
        stream.append(&mut written);
        assert_eq!(deframe(&stream, 5), vec![b"abcde".to_vec(), Vec::new(), b"x".to_vec(), b"yz".to_vec()]);
    }

    #[test]
    fn txbuf_bounds() {
        let mut t = TxBuf::new();
        assert_eq!(t.push_frame(&[0; 100], &[0; MAX_TCP_FRAME_BYTES - 100]), Ok(()));
        assert_eq!(t.push_frame(&[0; 101], &[0; MAX_TCP_FRAME_BYTES - 100]), Err(TxReject::TooLong));
        let per = TCP_FRAME_PREFIX_BYTES + 1000;
        let mut t = TxBuf::new();
        let fits = TCP_TX_BUFFER_BYTES / per;
        for _ in 0..fits {
            t.push_frame(&[1; 1000], b"").unwrap();
        }
        assert_eq!(t.push_frame(&[1; 1000], b""), Err(TxReject::Full));
        assert_eq!(t.pending().len(), fits * per, "a refused frame leaves no bytes");
        // After a partial write frees room at the front, the unsent bytes move and it fits.
        t.consume(per + 1);
        t.push_frame(&[2; 1000], b"").unwrap();
        assert_eq!(t.pending().len(), fits * per - 1);
        assert_eq!(&t.pending()[t.pending().len() - per..][..2], &1000u16.to_be_bytes());
    }
}
