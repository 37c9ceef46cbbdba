//! The per-shard UDP layer: socket table, batched receive (`recvmmsg`) and batched, zero-copy
//! transmit (`sendmmsg` + UDP GSO, with a permanent per-shard fallback to plain `sendmmsg`).
//! The socket table also holds the shard's TCP listeners and connections (see `tcp.rs`), so
//! UDP and TCP share one `SocketId` space and one epoll set.

use std::io;
use std::mem;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::ptr;
use std::rc::Rc;

use crate::sys::{self, Epoll};
use crate::tcp::{TcpConn, MAX_TCP_CONNECTIONS_PER_SHARD};

/// Most sockets one shard may own: UDP sockets, TCP listeners and TCP connections together
/// (connections are further bounded by `MAX_TCP_CONNECTIONS_PER_SHARD`).
pub const MAX_SOCKETS_PER_SHARD: usize = 4096 + MAX_TCP_CONNECTIONS_PER_SHARD;
/// Messages fetched by one `recvmmsg` call (each one datagram, or a GRO train of them).
pub const MAX_RX_BATCH: usize = 64;
/// Largest datagram received; larger ones are dropped and counted as truncated.
pub const RX_BUFFER_BYTES: usize = 2048;
/// Room per received message: a whole UDP GRO train (the kernel coalesces at most 64 KiB), plus
/// one cache line so that the slots' first lines (the RTP headers) do not all fall into the same
/// cache sets, as a 64 KiB stride would make them.
const RX_SLOT_BYTES: usize = 65_536 + 64;
/// Longest `head` accepted by `Io::send` (it is copied into the arena).
pub const MAX_HEAD_BYTES: usize = 2048;
/// Datagrams queued per shard between flushes.
pub const MAX_TX_ENTRIES: usize = 8192;
/// Bytes of copied heads (and of datagrams built in place) queued per shard between flushes.
pub const TX_ARENA_BYTES: usize = MAX_TX_ENTRIES * TX_ARENA_BYTES_PER_ENTRY;
/// Arena bytes per queued datagram: room for whole packets (built in the arena by
/// `Io::send_with`, or copied whole as a head, e.g. retransmissions), so that a full queue, not a
/// full arena, ends a batch. (When WebRTC fan-out built its SRTP packets here, a 1 MiB arena cut
/// its GSO trains short: 0.42 of the relay at N = 100 in `webrtc_fanout`; it now queues heads
/// only, see `Io::send_sealed`.) Pages are touched only as far as a batch reaches.
const TX_ARENA_BYTES_PER_ENTRY: usize = 1536;
/// Bytes of the per-shard staging buffer sealed datagrams (`Io::send_sealed`) are sealed into
/// at the flush, one socket's train (or a part of it) at a time: it stays in L2 while the
/// kernel copies from it, where datagrams built in the arena are cold by the time it does.
/// A `sendmmsg` chunk ends when it is full, which still leaves GSO messages of full length.
pub const SEAL_STAGING_BYTES: usize = 256 * 1024;
/// Longest sealed datagram (`head`, `body` and the seal's overhead together) `Io::send_sealed`
/// takes; longer ones are dropped and counted (`tx_dropped`).
pub const MAX_SEALED_BYTES: usize = 4096;
/// Most messages passed to one `sendmmsg` call (also the kernel's UIO_MAXIOV cap on vlen).
pub const MAX_TX_MESSAGES: usize = 1024;
/// Most segments in one GSO message.
pub const MAX_GSO_SEGMENTS: usize = 64;
/// Most payload bytes in one GSO message (below the 64 KiB IP datagram limit).
pub const MAX_GSO_BYTES: usize = 65_000;
/// SO_RCVBUF / SO_SNDBUF requested for each socket (the kernel clamps to rmem_max / wmem_max).
pub const SOCKET_BUFFER_BYTES: i32 = 4 << 20;

const _: () = assert!(MAX_SOCKETS_PER_SHARD <= 1 << 16, "SocketId keeps the index in 16 bits");
const _: () = assert!(MAX_HEAD_BYTES <= TX_ARENA_BYTES);
const _: () = assert!(MAX_SEALED_BYTES <= SEAL_STAGING_BYTES && MAX_SEALED_BYTES <= u16::MAX as usize);
const _: () = assert!(MAX_HEAD_BYTES <= MAX_SEALED_BYTES);

/// Seals (protects) one datagram at transmit time: the SRTP context of a transport, for
/// [`Io::send_sealed`](crate::Io::send_sealed). The transmit queue keeps an `Rc` of it with each
/// queued datagram, so the context outlives whatever queued it, and calls `seal` at the flush,
/// on the shard thread, in the queue order of each socket (datagrams for one socket are sealed
/// in the order they were queued; sockets one after the other).
pub trait Seal {
    /// Writes the sealed form of `head ++ body` into `out`, which is exactly
    /// `head.len() + body.len() + self.overhead()` bytes long, and returns its length: that same
    /// length, or `None` to drop the datagram (counted in `ShardLoad::tx_seal_failed`). Any
    /// other length is treated as `None`. Never called re-entrantly from within `seal`.
    fn seal(&self, head: &[u8], body: &[u8], out: &mut [u8]) -> Option<usize>;
    /// Bytes `seal` adds to `head ++ body`.
    fn overhead(&self) -> usize;
}

/// Identifies a socket owned by one shard (UDP socket, TCP listener or TCP connection): the low 16 bits index that shard's socket table,
/// the high 16 bits are a generation, so a stale id never reaches a socket reusing the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(pub u32);

impl SocketId {
    fn new(index: usize, generation: u16) -> SocketId {
        SocketId(index as u32 | (generation as u32) << 16)
    }
    fn index(self) -> usize {
        (self.0 & 0xffff) as usize
    }
    fn generation(self) -> u16 {
        (self.0 >> 16) as u16
    }
}

/// End of a pending-datagram list.
const NO_ENTRY: u32 = u32::MAX;

/// Per-shard datagram counters (plain integers: only the shard touches them).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counters {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// sendmmsg messages that carried more than one datagram (UDP GSO trains).
    pub tx_gso_messages: u64,
    /// Received messages that held more than one datagram (UDP GRO trains).
    pub rx_gro_trains: u64,
    pub tx_dropped: u64,
    /// Sealed datagrams whose `Seal::seal` failed at the flush (dropped).
    pub tx_seal_failed: u64,
    pub rx_truncated: u64,
    pub tcp_accepted: u64,
    pub tcp_rejected: u64,
    pub tcp_closed: u64,
    pub tcp_tx_dropped: u64,
    pub tcp_rx_empty: u64,
    /// Open connections now (a gauge).
    pub tcp_connections: u64,
}

/// What a table slot holds.
pub(crate) enum Sock {
    Udp(UdpSocket),
    TcpListener(TcpListener),
    TcpConn(Box<TcpConn>),
}

impl Sock {
    fn raw_fd(&self) -> RawFd {
        match self {
            Sock::Udp(s) => s.as_raw_fd(),
            Sock::TcpListener(l) => l.as_raw_fd(),
            Sock::TcpConn(c) => c.stream.as_raw_fd(),
        }
    }
}

/// The kind of socket an id names, for the shard loop's dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Udp,
    TcpListener,
    TcpConn,
}

struct Slot {
    socket: Option<Sock>,
    generation: u16,
    /// First and last queued datagram (indices into `TxQueue::entries`).
    first: u32,
    last: u32,
}

/// One queued datagram: `head` lives in the arena, `body` is borrowed until the next flush.
/// A sealed one goes out as `seal`'s output for `head ++ body`, built at the flush.
struct TxEntry {
    dest: SocketAddr,
    head_offset: u32,
    head_len: u32,
    /// Bytes the seal adds (0 without one).
    seal_overhead: u32,
    next: u32,
    body_ptr: *const u8,
    body_len: usize,
    seal: Option<Rc<dyn Seal>>,
}

impl TxEntry {
    /// Length on the wire (sealed length for a sealed datagram).
    fn len(&self) -> usize {
        self.head_len as usize + self.body_len + self.seal_overhead as usize
    }
}

/// Aligned room for one `UDP_SEGMENT` control message.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct CmsgBuf([u8; 32]);

/// What each built message holds: where its datagrams start in `order`, and how many.
#[derive(Clone, Copy, Default)]
struct MsgMeta {
    start: u32,
    segments: u32,
}

/// The kernel refused GSO for the message whose first datagram is `order[pos]`.
struct GsoRefused {
    pos: usize,
}

/// Transmit queue and the preallocated scratch arrays used to flush it.
struct TxQueue {
    entries: Vec<TxEntry>,
    arena: Box<[u8]>,
    arena_used: usize,
    /// Socket indices with queued datagrams (may repeat after a close + reuse; bounded by entries).
    dirty: Vec<u32>,
    order: Vec<u32>,
    hdrs: Box<[libc::mmsghdr]>,
    iovecs: Box<[libc::iovec]>,
    names: Box<[libc::sockaddr_storage]>,
    cmsgs: Box<[CmsgBuf]>,
    meta: Box<[MsgMeta]>,
    /// Where sealed datagrams are sealed at the flush (`SEAL_STAGING_BYTES`), reused by every
    /// `sendmmsg` chunk.
    staging: Box<[u8]>,
    gso: bool,
    gso_messages: u64,
}

/// The shard's sockets, its epoll set (shared with the wake-up eventfd) and its transmit queue.
pub(crate) struct Udp {
    slots: Vec<Slot>,
    free: Vec<u32>,
    epoll: Epoll,
    tx: TxQueue,
    pub counters: Counters,
    /// TCP connections with frames to write at the next flush (each listed once).
    pub(crate) tcp_dirty: Vec<SocketId>,
    /// TCP connections net closed because they ended (peer, error), not yet reported to the
    /// service (`ShardService::on_tcp_closed`, at the next flush point).
    pub(crate) tcp_ended: Vec<SocketId>,
    /// Connection limit in force (`MAX_TCP_CONNECTIONS_PER_SHARD`; lowered only by tests).
    pub(crate) tcp_limit: usize,
    /// A descriptor held in reserve once a listener exists: when `accept` fails for lack of
    /// descriptors (EMFILE), it is closed to accept and close the waiting connection, so the
    /// level-triggered listener does not keep the shard spinning (see `Udp::accept_tcp`).
    pub(crate) spare_fd: Option<std::fs::File>,
    /// Where `queue_with` and `queue_sealed` build a datagram bound for a TCP connection.
    tcp_scratch: Box<[u8]>,
}

impl Udp {
    pub(crate) fn new(epoll: Epoll, gso: bool) -> Udp {
        // SAFETY: mmsghdr is a plain C struct; all-zero (null pointers, zero lengths) is valid.
        let zero_hdr: libc::mmsghdr = unsafe { mem::zeroed() };
        // SAFETY: sockaddr_storage is plain data; all-zero is valid.
        let zero_name: libc::sockaddr_storage = unsafe { mem::zeroed() };
        let zero_iov = libc::iovec { iov_base: ptr::null_mut(), iov_len: 0 };
        Udp {
            slots: Vec::with_capacity(MAX_SOCKETS_PER_SHARD),
            free: Vec::with_capacity(MAX_SOCKETS_PER_SHARD),
            epoll,
            tx: TxQueue {
                entries: Vec::with_capacity(MAX_TX_ENTRIES),
                arena: vec![0u8; TX_ARENA_BYTES].into_boxed_slice(),
                arena_used: 0,
                dirty: Vec::with_capacity(MAX_TX_ENTRIES),
                order: Vec::with_capacity(MAX_TX_ENTRIES),
                hdrs: vec![zero_hdr; MAX_TX_MESSAGES].into_boxed_slice(),
                iovecs: vec![zero_iov; 2 * MAX_TX_ENTRIES].into_boxed_slice(),
                names: vec![zero_name; MAX_TX_MESSAGES].into_boxed_slice(),
                cmsgs: vec![CmsgBuf([0; 32]); MAX_TX_MESSAGES].into_boxed_slice(),
                meta: vec![MsgMeta::default(); MAX_TX_MESSAGES].into_boxed_slice(),
                staging: vec![0u8; SEAL_STAGING_BYTES].into_boxed_slice(),
                gso,
                gso_messages: 0,
            },
            counters: Counters::default(),
            tcp_scratch: vec![0u8; MAX_SEALED_BYTES].into_boxed_slice(),
            tcp_dirty: Vec::with_capacity(MAX_TCP_CONNECTIONS_PER_SHARD),
            tcp_ended: Vec::with_capacity(MAX_TCP_CONNECTIONS_PER_SHARD),
            tcp_limit: MAX_TCP_CONNECTIONS_PER_SHARD,
            spare_fd: None,
        }
    }

    pub(crate) fn epoll(&self) -> &Epoll {
        &self.epoll
    }

    pub(crate) fn gso_enabled(&self) -> bool {
        self.tx.gso
    }

    pub(crate) fn disable_gso(&mut self) {
        self.tx.gso = false;
    }

    pub(crate) fn gso_messages(&self) -> u64 {
        self.tx.gso_messages
    }

    fn slot(&self, id: SocketId) -> Option<&Slot> {
        self.slots.get(id.index()).filter(|s| s.generation == id.generation() && s.socket.is_some())
    }

    pub(crate) fn sock(&self, id: SocketId) -> Option<&Sock> {
        self.slot(id).and_then(|s| s.socket.as_ref())
    }

    pub(crate) fn sock_mut(&mut self, id: SocketId) -> Option<&mut Sock> {
        let slot = self.slots.get_mut(id.index()).filter(|s| s.generation == id.generation())?;
        slot.socket.as_mut()
    }

    pub(crate) fn kind(&self, id: SocketId) -> Option<Kind> {
        self.sock(id).map(|s| match s {
            Sock::Udp(_) => Kind::Udp,
            Sock::TcpListener(_) => Kind::TcpListener,
            Sock::TcpConn(_) => Kind::TcpConn,
        })
    }

    /// The descriptor of UDP socket `id` (`None` for unknown ids and TCP sockets).
    pub(crate) fn raw_fd(&self, id: SocketId) -> Option<RawFd> {
        match self.sock(id) {
            Some(Sock::Udp(s)) => Some(s.as_raw_fd()),
            _ => None,
        }
    }

    pub(crate) fn local_addr(&self, id: SocketId) -> Option<SocketAddr> {
        match self.sock(id)? {
            Sock::Udp(s) => s.local_addr().ok(),
            Sock::TcpListener(l) => l.local_addr().ok(),
            Sock::TcpConn(c) => c.stream.local_addr().ok(),
        }
    }

    /// Whether the table has a free slot.
    pub(crate) fn has_room(&self) -> bool {
        !self.free.is_empty() || self.slots.len() < MAX_SOCKETS_PER_SHARD
    }

    pub(crate) fn bind(&mut self, addr: SocketAddr) -> io::Result<SocketId> {
        if !self.has_room() {
            return Err(table_full());
        }
        let socket = UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        let fd = socket.as_raw_fd();
        // Best effort: the kernel clamps to net.core.{r,w}mem_max; a smaller buffer still works.
        let _ = sys::set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, SOCKET_BUFFER_BYTES);
        let _ = sys::set_int_option(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, SOCKET_BUFFER_BYTES);
        // Best effort too: without it (kernels before 5.0) every datagram arrives alone.
        let _ = sys::set_int_option(fd, libc::SOL_UDP, sys::UDP_GRO, 1);
        self.insert(Sock::Udp(socket))
    }

    /// Puts `sock` in a free slot and registers it with the epoll set (read interest).
    pub(crate) fn insert(&mut self, sock: Sock) -> io::Result<SocketId> {
        let index = match self.free.last() {
            Some(&i) => i as usize,
            None if self.slots.len() < MAX_SOCKETS_PER_SHARD => self.slots.len(),
            None => return Err(table_full()),
        };
        let fd = sock.raw_fd();
        let generation = self.slots.get(index).map_or(0, |s| s.generation);
        let id = SocketId::new(index, generation);
        self.epoll.add(fd, id.0 as u64)?;
        let slot = Slot { socket: Some(sock), generation, first: NO_ENTRY, last: NO_ENTRY };
        if index == self.slots.len() {
            self.slots.push(slot);
        } else {
            self.free.pop();
            self.slots[index] = slot;
        }
        Ok(id)
    }

    pub(crate) fn close(&mut self, id: SocketId) {
        if self.slot(id).is_none() {
            return;
        }
        // What was queued on it goes out first (a DTLS close alert before its socket closes):
        // closing is control plane, so an early flush of the whole queue costs nothing that matters.
        let queued = self.slots[id.index()].first != NO_ENTRY;
        if queued || matches!(self.slots[id.index()].socket, Some(Sock::TcpConn(_))) {
            self.flush();
        }
        let slot = &mut self.slots[id.index()];
        let mut e = slot.first;
        while e != NO_ENTRY {
            self.counters.tx_dropped += 1;
            e = self.tx.entries[e as usize].next;
        }
        slot.first = NO_ENTRY;
        slot.last = NO_ENTRY;
        slot.generation = slot.generation.wrapping_add(1);
        if let Some(sock) = slot.socket.take() {
            let _ = self.epoll.delete(sock.raw_fd());
            if let Sock::TcpConn(_) = sock {
                // Unsent framed bytes go with it.
                self.counters.tcp_connections -= 1;
            }
        }
        self.free.push(id.index() as u32);
    }

    /// Queues one datagram (`head` copied, `body` borrowed). The caller guarantees `body` stays
    /// valid until the next `flush` (see `Io::send`).
    pub(crate) fn queue(&mut self, id: SocketId, dest: SocketAddr, head: &[u8], body: &[u8]) {
        match self.sock(id) {
            Some(Sock::Udp(_)) => {}
            Some(Sock::TcpConn(_)) => return self.queue_tcp(id, head, body),
            Some(Sock::TcpListener(_)) | None => {
                self.counters.tx_dropped += 1;
                return;
            }
        }
        if head.len() > MAX_HEAD_BYTES {
            self.counters.tx_dropped += 1;
            return;
        }
        let offset = self.reserve(head.len());
        self.tx.arena[offset..offset + head.len()].copy_from_slice(head);
        self.push_entry(id, dest, offset, head.len(), body, None);
    }

    /// Queues one datagram that goes out sealed: `seal`'s output for `head ++ body`, built at
    /// the flush in the staging buffer (`head` copied now, `body` borrowed until the flush, as
    /// `queue` does). The caller guarantees `body` stays valid until the next `flush`.
    /// On a TCP connection it is sealed now, in a scratch buffer, and framed as `queue` does.
    pub(crate) fn queue_sealed(
        &mut self,
        id: SocketId,
        dest: SocketAddr,
        head: &[u8],
        body: &[u8],
        seal: Rc<dyn Seal>,
    ) {
        let overhead = seal.overhead();
        let len = head.len() + body.len() + overhead;
        match self.sock(id) {
            Some(Sock::Udp(_)) => {}
            Some(Sock::TcpConn(_)) => {
                if len > MAX_SEALED_BYTES {
                    self.counters.tcp_tx_dropped += 1;
                    return;
                }
                let mut scratch = std::mem::take(&mut self.tcp_scratch);
                if seal.seal(head, body, &mut scratch[..len]) == Some(len) {
                    self.queue_tcp(id, &scratch[..len], &[]);
                } else {
                    self.counters.tx_seal_failed += 1;
                }
                self.tcp_scratch = scratch;
                return;
            }
            Some(Sock::TcpListener(_)) | None => {
                self.counters.tx_dropped += 1;
                return;
            }
        }
        if head.len() > MAX_HEAD_BYTES || len > MAX_SEALED_BYTES {
            self.counters.tx_dropped += 1;
            return;
        }
        let offset = self.reserve(head.len());
        self.tx.arena[offset..offset + head.len()].copy_from_slice(head);
        self.push_entry(id, dest, offset, head.len(), body, Some((seal, overhead as u32)));
    }

    /// Queues one datagram of at most `max_len` bytes that `write` builds in place, in the
    /// arena (no copy after it): `write` returns the length it wrote, 0 to send nothing.
    /// On a TCP connection the datagram is built in a scratch buffer and framed as `queue` does.
    pub(crate) fn queue_with(
        &mut self,
        id: SocketId,
        dest: SocketAddr,
        max_len: usize,
        write: &mut dyn FnMut(&mut [u8]) -> usize,
    ) {
        match self.sock(id) {
            Some(Sock::Udp(_)) => {}
            Some(Sock::TcpConn(_)) => {
                let mut scratch = std::mem::take(&mut self.tcp_scratch);
                let n = write(&mut scratch[..max_len.min(MAX_HEAD_BYTES)]);
                if n > 0 {
                    self.queue_tcp(id, &scratch[..n], &[]);
                }
                self.tcp_scratch = scratch;
                return;
            }
            Some(Sock::TcpListener(_)) | None => {
                self.counters.tx_dropped += 1;
                return;
            }
        }
        if max_len > MAX_HEAD_BYTES {
            self.counters.tx_dropped += 1;
            return;
        }
        let offset = self.reserve(max_len);
        let n = write(&mut self.tx.arena[offset..offset + max_len]).min(max_len);
        if n > 0 {
            self.push_entry(id, dest, offset, n, &[], None);
        }
    }

    /// Room for `len` bytes in the arena (flushing first when the queue is full); its offset.
    fn reserve(&mut self, len: usize) -> usize {
        if self.tx.entries.len() == MAX_TX_ENTRIES || self.tx.arena_used + len > TX_ARENA_BYTES {
            self.flush();
        }
        self.tx.arena_used
    }

    fn push_entry(
        &mut self,
        id: SocketId,
        dest: SocketAddr,
        offset: usize,
        head_len: usize,
        body: &[u8],
        seal: Option<(Rc<dyn Seal>, u32)>,
    ) {
        self.tx.arena_used += head_len;
        let entry_index = self.tx.entries.len() as u32;
        let (seal, seal_overhead) = match seal {
            Some((seal, overhead)) => (Some(seal), overhead),
            None => (None, 0),
        };
        self.tx.entries.push(TxEntry {
            dest,
            head_offset: offset as u32,
            head_len: head_len as u32,
            seal_overhead,
            next: NO_ENTRY,
            body_ptr: body.as_ptr(),
            body_len: body.len(),
            seal,
        });
        let slot = &mut self.slots[id.index()];
        if slot.first == NO_ENTRY {
            slot.first = entry_index;
            self.tx.dirty.push(id.index() as u32);
        } else {
            self.tx.entries[slot.last as usize].next = entry_index;
        }
        slot.last = entry_index;
    }

    /// Sends everything queued, one `sendmmsg` series per socket, and empties the queue.
    pub(crate) fn flush(&mut self) {
        for d in 0..self.tx.dirty.len() {
            let slot = &mut self.slots[self.tx.dirty[d] as usize];
            if slot.first == NO_ENTRY {
                continue;
            }
            self.tx.order.clear();
            let mut e = slot.first;
            while e != NO_ENTRY {
                self.tx.order.push(e);
                e = self.tx.entries[e as usize].next;
            }
            slot.first = NO_ENTRY;
            slot.last = NO_ENTRY;
            match slot.socket.as_ref() {
                Some(Sock::Udp(socket)) => self.tx.send_socket(socket.as_raw_fd(), &mut self.counters),
                _ => self.counters.tx_dropped += self.tx.order.len() as u64,
            }
        }
        self.tx.entries.clear();
        self.tx.dirty.clear();
        self.tx.arena_used = 0;
        if !self.tcp_dirty.is_empty() {
            self.flush_tcp();
        }
    }
}

fn table_full() -> io::Error {
    io::Error::other(format!("shard socket table full (MAX_SOCKETS_PER_SHARD = {MAX_SOCKETS_PER_SHARD})"))
}

impl TxQueue {
    fn send_socket(&mut self, fd: RawFd, counters: &mut Counters) {
        let mut from = 0;
        while from < self.order.len() {
            let (messages, next) = self.build(from, counters);
            match self.transmit(fd, messages, counters) {
                Ok(()) => from = next,
                Err(GsoRefused { pos }) => {
                    tracing::warn!(
                        "kernel refused UDP GSO (UDP_SEGMENT); falling back to plain sendmmsg on this shard"
                    );
                    self.gso = false;
                    // Sealed datagrams from `pos` on are sealed again: same bytes for SRTP (its
                    // nonce is the packet's index), and this happens once per shard.
                    from = pos;
                }
            }
        }
    }

    /// Builds `mmsghdr`s for `order[from..]`; returns (messages built, first position not built).
    ///
    /// Sealed datagrams are sealed here, in queue order, into `staging`; the chunk ends when it is
    /// full (the next `build` reuses it, once `transmit` has handed these to the kernel). A
    /// datagram whose seal fails is dropped and counted; the message goes on without it.
    fn build(&mut self, from: usize, counters: &mut Counters) -> (usize, usize) {
        let mut pos = from;
        let mut k = 0;
        let mut iov = 0;
        let mut staged = 0;
        let mut staging_full = false;
        'messages: while pos < self.order.len() && k < MAX_TX_MESSAGES && !staging_full {
            let first = &self.entries[self.order[pos] as usize];
            let (dest, seg_size) = (first.dest, first.len());
            let start_pos = pos;
            let start_iov = iov;
            let mut segments = 0;
            let max_segments =
                if self.gso && seg_size > 0 { MAX_GSO_SEGMENTS.min(MAX_GSO_BYTES / seg_size).max(1) } else { 1 };
            while pos < self.order.len() && segments < max_segments {
                let e = &self.entries[self.order[pos] as usize];
                let len = e.len();
                if segments > 0 && (e.dest != dest || len > seg_size || len == 0) {
                    break;
                }
                if let Some(seal) = &e.seal {
                    if staged + len > self.staging.len() {
                        staging_full = true;
                        break;
                    }
                    let head = &self.arena[e.head_offset as usize..][..e.head_len as usize];
                    // SAFETY: the body was borrowed for `body_len` bytes at `body_ptr` and the
                    // caller keeps it valid until this flush completes (`Io::send_sealed`).
                    let body = unsafe { std::slice::from_raw_parts(e.body_ptr, e.body_len) };
                    let out = &mut self.staging[staged..staged + len];
                    if seal.seal(head, body, out) != Some(len) {
                        counters.tx_seal_failed += 1;
                        pos += 1;
                        if segments == 0 {
                            continue 'messages; // the next datagram starts the message
                        }
                        continue;
                    }
                    self.iovecs[iov] = libc::iovec { iov_base: out.as_mut_ptr().cast(), iov_len: len };
                    iov += 1;
                    staged += len;
                } else {
                    if e.head_len > 0 {
                        self.iovecs[iov] = libc::iovec {
                            iov_base: self.arena[e.head_offset as usize..].as_mut_ptr().cast(),
                            iov_len: e.head_len as usize,
                        };
                        iov += 1;
                    }
                    if e.body_len > 0 {
                        // The kernel only reads through this pointer (sendmmsg).
                        self.iovecs[iov] =
                            libc::iovec { iov_base: e.body_ptr as *mut libc::c_void, iov_len: e.body_len };
                        iov += 1;
                    }
                }
                segments += 1;
                pos += 1;
                if len < seg_size {
                    break; // a shorter datagram can only end a GSO message
                }
            }
            if segments == 0 {
                // Staging full before this message's first datagram: the next chunk starts here.
                // (Not on a chunk's first message: a sealed datagram fits in empty staging.)
                debug_assert!(k > 0, "a sealed datagram longer than the staging buffer");
                break;
            }
            let namelen = sys::write_sockaddr(&dest, &mut self.names[k]);
            let hdr = &mut self.hdrs[k];
            hdr.msg_len = 0;
            let m = &mut hdr.msg_hdr;
            m.msg_name = (&mut self.names[k] as *mut libc::sockaddr_storage).cast();
            m.msg_namelen = namelen;
            m.msg_iov = self.iovecs[start_iov..].as_mut_ptr();
            m.msg_iovlen = iov - start_iov;
            m.msg_flags = 0;
            if segments > 1 {
                let buf = &mut self.cmsgs[k];
                m.msg_control = buf.0.as_mut_ptr().cast();
                // SAFETY: CMSG_SPACE is a pure size computation.
                m.msg_controllen = unsafe { libc::CMSG_SPACE(mem::size_of::<u16>() as u32) } as usize;
                debug_assert!(m.msg_controllen <= mem::size_of::<CmsgBuf>());
                // SAFETY: msg_control points to an aligned buffer of at least msg_controllen
                // bytes, so CMSG_FIRSTHDR returns a valid, writable cmsghdr with room for a u16.
                unsafe {
                    let c = libc::CMSG_FIRSTHDR(m);
                    (*c).cmsg_level = libc::SOL_UDP;
                    (*c).cmsg_type = libc::UDP_SEGMENT;
                    (*c).cmsg_len = libc::CMSG_LEN(mem::size_of::<u16>() as u32) as usize;
                    ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), seg_size as u16);
                }
            } else {
                m.msg_control = ptr::null_mut();
                m.msg_controllen = 0;
            }
            self.meta[k] = MsgMeta { start: start_pos as u32, segments: segments as u32 };
            k += 1;
        }
        (k, pos)
    }

    /// Sends `hdrs[..n]` with as few `sendmmsg` calls as the kernel allows.
    fn transmit(&mut self, fd: RawFd, n: usize, counters: &mut Counters) -> Result<(), GsoRefused> {
        let mut sent = 0;
        while sent < n {
            // SAFETY: hdrs[sent..n] were built by `build` and point into the arena, the iovec,
            // name and cmsg arrays (all alive and unmoved) and to bodies the caller keeps valid
            // until this flush completes.
            let ret = unsafe { libc::sendmmsg(fd, self.hdrs[sent..].as_mut_ptr(), (n - sent) as u32, 0) };
            if ret > 0 {
                for (meta, hdr) in self.meta[sent..sent + ret as usize].iter().zip(&self.hdrs[sent..]) {
                    counters.tx_packets += meta.segments as u64;
                    counters.tx_bytes += u64::from(hdr.msg_len);
                    if meta.segments > 1 {
                        self.gso_messages += 1;
                        counters.tx_gso_messages += 1;
                    }
                }
                sent += ret as usize;
                continue;
            }
            let err = if ret == 0 { libc::EAGAIN } else { io::Error::last_os_error().raw_os_error().unwrap_or(0) };
            let meta = self.meta[sent];
            match err {
                libc::EINTR => {}
                libc::EAGAIN | libc::ENOBUFS => {
                    // Socket buffer full: drop the rest rather than stall the shard.
                    counters.tx_dropped += self.meta[sent..n].iter().map(|m| m.segments as u64).sum::<u64>();
                    return Ok(());
                }
                libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP if meta.segments > 1 => {
                    return Err(GsoRefused { pos: meta.start as usize });
                }
                _ => {
                    // This message is bad (too big, unroutable...): drop it, keep the others.
                    tracing::debug!(errno = err, "sendmmsg dropped a message");
                    counters.tx_dropped += meta.segments as u64;
                    sent += 1;
                }
            }
        }
        Ok(())
    }
}

/// Why a received datagram is not handed to the service.
pub(crate) enum RxSkip {
    Truncated,
    BadAddress,
}

/// Preallocated receive buffers and the `recvmmsg` arrays pointing into them.
///
/// Sockets ask for UDP GRO (`UDP_GRO`): the kernel then hands over consecutive datagrams of one
/// flow with the same size as one message (a train: on loopback, a sender's GSO message as it
/// was sent; from a NIC, what GRO merged within one poll), with the segment size in a control
/// message. One receive then costs one socket-buffer dequeue and one copy per train instead of
/// per datagram; the shard loop splits the train back into datagrams.
pub(crate) struct RxBatch {
    bufs: Box<[u8]>,
    iovecs: Box<[libc::iovec]>,
    names: Box<[libc::sockaddr_storage]>,
    cmsgs: Box<[CmsgBuf]>,
    hdrs: Box<[libc::mmsghdr]>,
    /// Messages asked for per `recvmmsg` (adapted by the shard loop to the work per message).
    pub(crate) limit: usize,
}

impl RxBatch {
    pub(crate) fn new() -> RxBatch {
        // SAFETY: all-zero bytes are valid for these plain C structs.
        let zero_hdr: libc::mmsghdr = unsafe { mem::zeroed() };
        // SAFETY: as above.
        let zero_name: libc::sockaddr_storage = unsafe { mem::zeroed() };
        RxBatch {
            // Pages are touched only as far as messages reach: single datagrams use one page per slot.
            bufs: vec![0u8; MAX_RX_BATCH * RX_SLOT_BYTES].into_boxed_slice(),
            iovecs: vec![libc::iovec { iov_base: ptr::null_mut(), iov_len: 0 }; MAX_RX_BATCH].into_boxed_slice(),
            names: vec![zero_name; MAX_RX_BATCH].into_boxed_slice(),
            cmsgs: vec![CmsgBuf([0; 32]); MAX_RX_BATCH].into_boxed_slice(),
            hdrs: vec![zero_hdr; MAX_RX_BATCH].into_boxed_slice(),
            limit: MAX_RX_BATCH,
        }
    }

    /// Receive up to `limit` (at most `MAX_RX_BATCH`) messages from `fd` without blocking.
    pub(crate) fn recv(&mut self, fd: RawFd, limit: usize) -> io::Result<usize> {
        let limit = limit.clamp(1, MAX_RX_BATCH);
        for i in 0..limit {
            self.iovecs[i] =
                libc::iovec { iov_base: self.bufs[i * RX_SLOT_BYTES..].as_mut_ptr().cast(), iov_len: RX_SLOT_BYTES };
            let m = &mut self.hdrs[i].msg_hdr;
            m.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            m.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            m.msg_iov = &mut self.iovecs[i];
            m.msg_iovlen = 1;
            m.msg_control = self.cmsgs[i].0.as_mut_ptr().cast();
            m.msg_controllen = mem::size_of::<CmsgBuf>();
            m.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        loop {
            // SAFETY: every header points to its own name buffer, control buffer and a single
            // iovec covering a distinct RX_SLOT_BYTES slice of `bufs`; all stay alive and unmoved
            // for the call.
            let ret = unsafe {
                libc::recvmmsg(fd, self.hdrs.as_mut_ptr(), limit as u32, libc::MSG_DONTWAIT, ptr::null_mut())
            };
            if ret >= 0 {
                return Ok(ret as usize);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    /// The `i`th message of the last `recv`: its source, its bytes (mutable, in place) and the
    /// size of the datagrams it holds (its whole length unless it is a GRO train; the last
    /// datagram of a train may be shorter).
    pub(crate) fn message(&mut self, i: usize) -> Result<(SocketAddr, &mut [u8], usize), RxSkip> {
        let hdr = &self.hdrs[i];
        if hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            return Err(RxSkip::Truncated);
        }
        let src = sys::read_sockaddr(&self.names[i], hdr.msg_hdr.msg_namelen).ok_or(RxSkip::BadAddress)?;
        let len = (hdr.msg_len as usize).min(RX_SLOT_BYTES);
        // SAFETY: the kernel wrote `msg_controllen` bytes of well-formed control messages into
        // this header's own buffer, which CMSG_FIRSTHDR/CMSG_NXTHDR walk within.
        let segment = unsafe { gro_segment(&hdr.msg_hdr) }.filter(|&s| s > 0 && s < len).unwrap_or(len);
        if segment > RX_BUFFER_BYTES {
            return Err(RxSkip::Truncated);
        }
        let start = i * RX_SLOT_BYTES;
        Ok((src, &mut self.bufs[start..start + len], segment))
    }
}

/// The segment size of a GRO train from a received header's `UDP_GRO` control message.
///
/// # Safety
/// `hdr`'s control buffer and length must be as `recvmmsg` left them.
unsafe fn gro_segment(hdr: &libc::msghdr) -> Option<usize> {
    let mut c = libc::CMSG_FIRSTHDR(hdr);
    while !c.is_null() {
        if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == sys::UDP_GRO {
            return Some(ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>()) as usize);
        }
        c = libc::CMSG_NXTHDR(hdr, c);
    }
    None
}
