//! shardsfu-net: the only crate that makes syscalls or holds `unsafe`.
//!
//! # Model
//!
//! One shard per core, mediasoup/seastar style: each shard is a glommio `LocalExecutor` on its own
//! (optionally pinned) thread, running one task, the *shard loop*, which owns a [`ShardService`]
//! (the sans-IO SFU logic, built on the shard thread by a factory), its UDP and TCP sockets, an epoll set
//! and a transmit queue. Nothing on the packet path is shared between threads. Shards talk to each
//! other and to API callers only through bounded SPSC [`ring`]s: per ordered pair of shards one
//! command ring, one media ring and one return ring, plus one inbound API ring per shard (its
//! producer behind a mutex in [`ShardHandle`]) and one outbound load ring per shard: once per
//! `LOAD_WINDOW` the shard sends a [`ShardLoad`] report on it (busy fraction of its loop, packets
//! in and out per second, counters, and the service's own figures), which
//! [`ShardHandle::load`] reads. A shard never waits for that ring: a report that finds it full is
//! dropped and counted.
//!
//! # The loop, per turn
//!
//! 1. `now = Instant::now()`; drain inbound rings round-robin, at most `MAX_COMMANDS_PER_TURN`
//!    commands, calling [`ShardService::on_command`]; then a flush point (below).
//! 2. Drain inbound media rings round-robin, at most `MAX_MEDIA_BATCHES_PER_TURN` batches and
//!    `MAX_RX_TURN` of time, calling [`ShardService::on_shard_datagram`] per record; a flush point
//!    after each batch, then the buffer goes back to its origin.
//! 3. `epoll_wait(timeout 0)` on the shard's level-triggered epoll fd; for each ready socket,
//!    `recvmmsg` a batch of up to `MAX_RX_BATCH` messages into preallocated buffers (sockets ask
//!    for UDP GRO, so a message may be a train of same-size datagrams, split here; datagrams over
//!    `RX_BUFFER_BYTES` are counted and skipped), call [`ShardService::on_datagram`] on each, then a flush
//!    point *before* the next `recvmmsg` reuses the buffers (bodies may borrow them).
//!    At most `MAX_RX_PER_TURN` datagrams per turn, so one socket cannot starve the others.
//!    TCP listeners accept and TCP connections read here too (see *Passive TCP* below).
//! 4. If `poll_timeout() <= now`, call [`ShardService::on_timeout`]; a flush point.
//! 5. If the turn did work, `yield_if_needed` and go again. Otherwise spin (steps 1-4 again) for
//!    `spin_before_park`, then park.
//!
//! A *flush point* is [`ShardService::on_flush`], then partial outbound media batches go to their
//! targets, then the transmit queue is sent.
//!
//! # Media between shards
//!
//! A room spanning shards: the producer's shard forwards each packet once per consumer shard with
//! [`Io::forward_to_shard`], which copies `head ++ body` as one length-prefixed record (`u16` LE,
//! at most `MAX_MEDIA_RECORD_BYTES`) into the current batch for that shard: a pooled
//! `MEDIA_BATCH_BYTES` (64 KiB) buffer. A full batch is pushed at once into the target's media
//! ring (the `Box` moves, not the bytes); a partial one at the next flush point, so latency stays
//! bounded. The target hands each record to [`ShardService::on_shard_datagram`] as a mutable slice
//! of the batch buffer, exactly like a received datagram: bodies given to `Io::send` borrow it
//! until the flush point after the batch, and only then does the buffer go back to its origin
//! through the pair's return ring. The origin refills returned buffers and allocates only when
//! none is back, up to `MAX_MEDIA_BUFFERS_PER_PAIR` per pair; then (the target is not draining)
//! records are dropped and counted (`ShardLoad::shard_tx_dropped`). Rings hold the whole pool, so
//! neither push can find its ring full. No allocation per packet or per batch once warm.
//!
//! One refinement keeps the pool small when the target lags: at a flush point a partial batch is
//! *held* (keeps filling) while the target has not yet popped our previous batch. The target is
//! then busy with our records and looks at its ring again when done, so this adds no latency
//! beyond the FIFO wait, and a descheduled target costs larger batches instead of one buffer per
//! flush point. A held batch goes at the first flush point after the target caught up, or when
//! full; an idle shard holding one parks for at most `MAX_MEDIA_HOLD` (1 ms) before looking again.
//! In steady state a pair uses three buffers: one in the ring, one at the target, one filling.
//! Pushing a batch wakes a parked target with the same protocol as commands (below); a parking
//! shard re-checks its media rings as well as its command rings.
//!
//! # Park / wake protocol (no lost wake-ups)
//!
//! Waking an idle core costs ~100 µs, hence the spin first. To park, the shard stores
//! `parked = true` (SeqCst), issues a SeqCst fence, re-checks its inbound rings and only then
//! blocks in `epoll_wait` (timeout = next timer, capped at `MAX_PARK`) on its epoll fd, which
//! also holds an eventfd. A producer (`ShardHandle::submit`, `Io::send_to_shard`, a media batch
//! push) pushes, fences (SeqCst), then loads `parked` and writes the eventfd if set. This is Dekker's pattern: either
//! the shard's re-check sees the pushed item, or the producer sees `parked` and wakes it. Socket
//! readiness wakes the same epoll. The shard blocks its own thread in that `epoll_wait`: glommio
//! 0.9 offers no public way to await a foreign fd, and the shard loop is the only task on its
//! executor and does its I/O with plain syscalls, so nothing else waits on glommio's reactor
//! meanwhile. (Handing the wait to glommio's blocking-thread pool cost two thread hops per
//! park, more CPU than forwarding at partial load.) glommio still provides the pinned executor
//! per core and its cooperative scheduling (`yield_if_needed`) when the loop is busy.
//!
//! # Why not glommio's `UdpSocket`
//!
//! glommio's UDP socket moves one datagram per operation. An SFU forwards each packet to many
//! receivers, so the shard batches instead: `recvmmsg` for receive, and for transmit one
//! `sendmmsg` per socket per flush, where consecutive datagrams to the same destination and of
//! the same size are merged into UDP GSO messages (`UDP_SEGMENT`), their payloads given as an
//! iovec list alternating the copied head (e.g. rewritten RTP header) and the borrowed body, so
//! bodies are never copied in user space. If the kernel refuses GSO, the shard falls back for
//! good to plain `sendmmsg` of single datagrams (logged once).
//!
//! Sealed datagrams ([`Io::send_sealed`], SRTP) are queued the same way (head copied, body
//! borrowed, plus an `Rc` of the [`Seal`] context) and sealed only at the flush: one socket's
//! datagrams at a time, in their queue order, into a per-shard staging buffer of
//! `SEAL_STAGING_BYTES` that the iovecs then point into; a `sendmmsg` chunk ends when it is
//! full, and the next chunk (or socket) reuses it. The ciphertext is thus written into, and read
//! by the kernel from, memory that stays in L2, instead of a fresh slot of the large arena per
//! datagram; and per-socket trains stay as long as with plain datagrams.
//!
//! # Passive TCP (ICE-TCP)
//!
//! For clients that cannot use UDP, a shard also owns TCP listeners ([`Io::listen_tcp`]; RFC 6544
//! passive candidates) and their accepted connections, in the same socket table, `SocketId`
//! space and epoll set as its UDP sockets. Each accepted connection gets its own id, announced
//! by [`ShardService::on_tcp_accept`]. The stream is framed as RFC 4571 (a 2-byte big-endian
//! length, then the packet) and net hides the framing: each complete frame reaches the service
//! through the same [`ShardService::on_datagram`] as a UDP datagram (`socket` = the connection,
//! `src` = its remote address), in place in the connection's reassembly buffer
//! (`TCP_RX_BUFFER_BYTES`, one maximal frame: a partial frame always fits). Frames split across
//! reads and many frames per read both work; zero-length frames are skipped and counted. One
//! connection is read for at most `MAX_TCP_RX_BYTES_PER_TURN` per turn, frames count against
//! `MAX_RX_PER_TURN`, and the loop flushes after each read, before the buffer is reused.
//!
//! [`Io::send`] on a connection ignores `dest` and copies `len ++ head ++ body` into the
//! connection's send buffer (`TCP_TX_BUFFER_BYTES`); at each flush every connection with data
//! gets one `send` (not one per packet). If the kernel takes only part, the rest stays (frames
//! are appended whole, bytes leave from the front, so framing survives partial writes) and
//! EPOLLOUT is registered until it drains. A frame that does not fit (a peer reading slower
//! than we send) or is longer than `MAX_TCP_FRAME_BYTES` is dropped and counted
//! (`ShardLoad::tcp_tx_dropped`), as UDP congestion would lose it.
//!
//! A connection that ends by itself (peer EOF, reset, write error) is closed by net and reported
//! once with [`ShardService::on_tcp_closed`] at the next flush point; its id is dead from then
//! on (sends are counted drops, closes are no-ops). [`Io::close_socket`] closes any socket
//! without a callback. At most `MAX_TCP_CONNECTIONS_PER_SHARD` connections are open per shard:
//! further ones are accepted and closed at once (`ShardLoad::tcp_rejected`). Buffers are
//! allocated once per connection at accept; nothing is allocated per frame.
//!
//! Everything is bounded (`MAX_*` constants) and preallocated per shard: no allocation per packet.

mod media;
pub mod ring;
mod runtime;
mod shard;
mod sys;
mod tcp;
mod udp;

pub use media::{
    MAX_MEDIA_BATCHES_PER_TURN, MAX_MEDIA_BUFFERS_PER_PAIR, MAX_MEDIA_HOLD, MAX_MEDIA_RECORD_BYTES, MEDIA_BATCH_BYTES,
    MEDIA_RECORD_PREFIX_BYTES,
};
pub use runtime::{
    Runtime, RuntimeConfig, ShardHandle, ShardInfo, ShardLoad, StartError, SubmitError, MAX_SHARDS, MEMLOCK_NEED_KIB,
};
pub use shard::{
    Io, ShardService, LOAD_RING_CAPACITY, LOAD_WINDOW, MAX_COMMANDS_PER_TURN, MAX_EPOLL_EVENTS, MAX_PARK,
    MAX_RX_BATCHES_PER_SOCKET, MAX_RX_PER_TURN,
};
pub use tcp::{
    MAX_TCP_ACCEPTS_PER_TURN, MAX_TCP_CONNECTIONS_PER_SHARD, MAX_TCP_FRAME_BYTES, MAX_TCP_RX_BYTES_PER_TURN,
    TCP_FRAME_PREFIX_BYTES, TCP_RX_BUFFER_BYTES, TCP_TX_BUFFER_BYTES,
};
pub use udp::{
    Seal, SocketId, MAX_GSO_BYTES, MAX_GSO_SEGMENTS, MAX_HEAD_BYTES, MAX_RX_BATCH, MAX_SEALED_BYTES,
    MAX_SOCKETS_PER_SHARD, MAX_TX_ENTRIES, MAX_TX_MESSAGES, RX_BUFFER_BYTES, SEAL_STAGING_BYTES, SOCKET_BUFFER_BYTES,
    TX_ARENA_BYTES,
};
