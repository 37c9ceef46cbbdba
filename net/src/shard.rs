//! The shard loop and the `Io` handle a [`ShardService`] drives it with.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::media::{
    decode_record, MediaCounters, MediaIn, MediaOut, Pushed, Truncated, MAX_MEDIA_BATCHES_PER_TURN, MAX_MEDIA_HOLD,
};
use crate::ring::{Consumer, Producer};
use crate::runtime::ShardLoad;
use crate::sys::{self, EventFd};
use crate::tcp::{Accepted, ReadResult, MAX_TCP_ACCEPTS_PER_TURN, MAX_TCP_RX_BYTES_PER_TURN};
use crate::udp::{Counters, Kind, RxBatch, RxSkip, Seal, SocketId, Udp, MAX_RX_BATCH};

/// Commands handed to the service per loop turn, over all inbound rings.
pub const MAX_COMMANDS_PER_TURN: usize = 256;
/// Datagrams received per loop turn, over all sockets.
pub const MAX_RX_PER_TURN: usize = 256;
/// `recvmmsg` batches taken from one ready socket per turn.
pub const MAX_RX_BATCHES_PER_SOCKET: usize = 2;
/// Readiness events fetched by one `epoll_wait`.
pub const MAX_EPOLL_EVENTS: usize = 64;
/// Longest a parked shard sleeps without a timer (it then reports its load and re-parks).
pub const MAX_PARK: Duration = Duration::from_millis(100);
/// Window over which load is measured; one report is sent per window.
pub const LOAD_WINDOW: Duration = Duration::from_millis(100);
/// Reports a shard's load ring holds (6.4 s of windows) for readers that come late.
pub const LOAD_RING_CAPACITY: usize = 64;
/// How long one receive batch (recvmmsg plus the service's work plus the flush) should take;
/// the batch size adapts to it (1..=MAX_RX_BATCH).
pub const RX_BATCH_TARGET: Duration = Duration::from_millis(20);
/// Receiving from sockets, and taking media batches from other shards, each stop for the turn
/// after this long (checked per batch), so commands, timers and load reports are not starved.
pub const MAX_RX_TURN: Duration = Duration::from_millis(40);

/// epoll token of the wake-up eventfd (socket tokens are `SocketId`s, at most `u32::MAX`).
pub(crate) const WAKE_TOKEN: u64 = u64::MAX;

/// The SFU logic a shard runs. Constructed on the shard thread, so it need not be `Send`.
pub trait ShardService: 'static {
    type Command: Send + 'static;
    /// A control command drained from the rings (API ring or a peer shard's ring).
    fn on_command(&mut self, now: Instant, cmd: Self::Command, io: &mut Io<'_, Self::Command>);
    /// One received datagram, in the shard's receive buffer (mutable: SRTP decrypts in place).
    /// Bodies given to `io.send` may borrow from `data`: the loop flushes the transmit queue after
    /// the whole receive batch and before the buffers are reused.
    fn on_datagram<'a>(
        &mut self,
        now: Instant,
        socket: SocketId,
        src: SocketAddr,
        data: &'a mut [u8],
        io: &mut Io<'a, Self::Command>,
    );
    /// Next time the service wants `on_timeout` (`None` = no timer).
    fn poll_timeout(&self) -> Option<Instant>;
    fn on_timeout(&mut self, now: Instant, io: &mut Io<'_, Self::Command>);
    /// One record another shard sent with [`Io::forward_to_shard`] (`head ++ body` as it was given),
    /// in the batch buffer it crossed in (mutable, like `on_datagram`'s). Bodies given to `io.send`
    /// may borrow from `data`: the loop flushes the transmit queue after the whole batch and only
    /// then hands the buffer back to `from_shard`.
    fn on_shard_datagram<'a>(
        &mut self,
        _now: Instant,
        _from_shard: usize,
        _data: &'a mut [u8],
        _io: &mut Io<'a, Self::Command>,
    ) {
    }
    /// Figures of the service's own, sent with each load report (`ShardLoad::service`), read
    /// once per `LOAD_WINDOW`. The engine's: object counts and creation commands received.
    fn load_figures(&self) -> [u32; 8] {
        [0; 8]
    }
    /// Called right before every transmit flush (after each receive batch, each inbound media
    /// batch, the commands, and at the end of each turn): the place to queue per-batch work.
    /// Runs often, so keep it cheap.
    fn on_flush(&mut self, _now: Instant, _io: &mut Io<'_, Self::Command>) {}
    /// A connection accepted on `listener` (from [`Io::listen_tcp`]), now open as `conn`.
    /// Its RFC 4571 frames arrive through [`ShardService::on_datagram`] with `socket = conn` and
    /// `src = remote`; [`Io::send`] to `conn` frames and queues (`dest` is ignored). The default
    /// keeps the connection.
    fn on_tcp_accept(
        &mut self,
        _now: Instant,
        _listener: SocketId,
        _conn: SocketId,
        _remote: SocketAddr,
        _io: &mut Io<'_, Self::Command>,
    ) {
    }
    /// Connection `conn` is closed and its id dead: the peer closed it (EOF), it failed (reset,
    /// write error), or its epoll registration did. Called at the flush point after net found
    /// out; *not* called for connections the service closed itself with [`Io::close_socket`],
    /// nor at shutdown.
    fn on_tcp_closed(&mut self, _now: Instant, _conn: SocketId, _io: &mut Io<'_, Self::Command>) {}
    /// Called once when the runtime stops, before sockets are closed.
    fn on_stop(&mut self, _now: Instant, _io: &mut Io<'_, Self::Command>) {}
}

/// What a shard shares with other threads: its wake-up protocol and stop flag.
pub(crate) struct ShardShared {
    /// Set (SeqCst) by the shard just before it blocks; producers check it after pushing.
    pub parked: AtomicBool,
    pub stop: AtomicBool,
    /// Set by the shard when its loop has ended (normally or by panic).
    pub exited: AtomicBool,
    pub wake: EventFd,
}

impl ShardShared {
    pub(crate) fn new(wake: EventFd) -> ShardShared {
        ShardShared {
            parked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            exited: AtomicBool::new(false),
            wake,
        }
    }

    /// Producer side of the park protocol; call after pushing into one of this shard's rings.
    /// The fence orders the push before the `parked` load (Dekker: the shard stores `parked`,
    /// fences, then re-checks the rings), so either the shard sees the item or we see `parked`.
    pub(crate) fn wake_if_parked(&self) {
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            self.wake.notify();
        }
    }
}

/// Shard state the service reaches through `Io`.
pub(crate) struct Core<C> {
    pub index: usize,
    pub udp: Udp,
    /// Outbound ring to each peer shard (`None` at our own index).
    pub peers: Vec<Option<Producer<C>>>,
    pub shared: Arc<[Arc<ShardShared>]>,
    /// Outbound media to each peer shard (`None` at our own index).
    pub media_out: Vec<Option<MediaOut>>,
    /// Peers whose current media batch holds records; pushed at the next flush point
    /// (each listed once, see `MediaOut::queued`; capacity = shard count, so never grows).
    pub media_dirty: Vec<usize>,
    pub media: MediaCounters,
}

impl<C> Core<C> {
    /// Pushes partially filled media batches to their targets, waking parked targets; `force`
    /// false holds a batch while its target has not taken the previous one (`push_partial`).
    fn push_media(&mut self, force: bool) {
        let (outs, shared) = (&mut self.media_out, &self.shared);
        self.media_dirty.retain(|&shard| {
            let Some(out) = outs[shard].as_mut() else {
                return false;
            };
            match out.push_partial(force) {
                Pushed::Batch => shared[shard].wake_if_parked(),
                Pushed::Empty => {}
                // Held, or full (cannot happen: the ring holds the whole pool): next flush point.
                Pushed::Held | Pushed::Full => return true,
            }
            out.queued = false;
            false
        });
    }
}

/// The service's handle on its shard: sockets, transmit queue, peer shards.
/// `'a` is how long bodies passed to [`Io::send`] must stay valid (until the next flush).
pub struct Io<'a, C> {
    core: &'a mut Core<C>,
    _body: PhantomData<&'a [u8]>,
}

impl<'a, C: Send + 'static> Io<'a, C> {
    fn new(core: &'a mut Core<C>) -> Io<'a, C> {
        Io { core, _body: PhantomData }
    }

    /// This shard's index.
    pub fn shard(&self) -> usize {
        self.core.index
    }

    pub fn shard_count(&self) -> usize {
        self.core.shared.len()
    }

    /// Binds a non-blocking UDP socket on this shard (buffers raised, IPv4 or IPv6 per `addr`,
    /// port 0 = ephemeral), registered for receive immediately.
    pub fn bind_udp(&mut self, addr: SocketAddr) -> std::io::Result<SocketId> {
        self.core.udp.bind(addr)
    }

    pub fn local_addr(&self, socket: SocketId) -> Option<SocketAddr> {
        self.core.udp.local_addr(socket)
    }

    /// Binds a nonblocking listening TCP socket (`SO_REUSEADDR`; port 0 = ephemeral, see
    /// [`Io::local_addr`]) owned by this shard. Each accepted connection gets its own
    /// [`SocketId`] and is announced by [`ShardService::on_tcp_accept`]; at most
    /// `MAX_TCP_CONNECTIONS_PER_SHARD` are open at once (more are closed at once and counted in
    /// `ShardLoad::tcp_rejected`).
    pub fn listen_tcp(&mut self, addr: SocketAddr) -> std::io::Result<SocketId> {
        self.core.udp.listen_tcp(addr)
    }

    /// The remote address of TCP connection `conn` (`None` for other or unknown ids).
    pub fn remote_addr(&self, conn: SocketId) -> Option<SocketAddr> {
        self.core.udp.remote_addr(conn)
    }

    /// Closes any socket: UDP socket, TCP listener (accepted connections stay open) or TCP
    /// connection. Queued, unflushed UDP datagrams are discarded (counted as `tx_dropped`); a
    /// connection's unsent framed bytes are discarded. No `on_tcp_closed` follows: the caller
    /// knows. An unknown id is a no-op.
    pub fn close_socket(&mut self, socket: SocketId) {
        self.core.udp.close(socket)
    }

    /// Same as [`Io::close_socket`] (kept for existing callers).
    pub fn close_udp(&mut self, socket: SocketId) {
        self.close_socket(socket)
    }

    /// Queues one datagram: `head` (copied now, at most `MAX_HEAD_BYTES`) then `body` (borrowed
    /// until the flush). Never allocates; flushes first when the preallocated queue is full.
    /// Unknown/closed socket or oversized head = counted drop.
    ///
    /// On a TCP connection `dest` is ignored: the frame (2-byte length, `head`, `body`, both
    /// copied now, together at most `MAX_TCP_FRAME_BYTES`) is appended to the connection's send
    /// buffer, written with one `send` per connection per flush. A frame that does not fit in
    /// the `TCP_TX_BUFFER_BYTES` buffer, or is too long, is dropped (`ShardLoad::tcp_tx_dropped`).
    pub fn send(&mut self, socket: SocketId, dest: SocketAddr, head: &[u8], body: &'a [u8]) {
        self.core.udp.queue(socket, dest, head, body)
    }

    /// Queues one datagram of at most `max_len` (<= `MAX_HEAD_BYTES`) bytes that `write` builds
    /// straight in the transmit arena (SRTP protects into it: no copy afterwards). `write`
    /// returns the length it wrote; 0 sends nothing.
    #[inline]
    pub fn send_with(
        &mut self,
        socket: SocketId,
        dest: SocketAddr,
        max_len: usize,
        write: &mut dyn FnMut(&mut [u8]) -> usize,
    ) {
        self.core.udp.queue_with(socket, dest, max_len, write)
    }

    /// Queues one datagram that goes out as `seal`'s output for `head ++ body` (SRTP protection),
    /// sealed at the flush rather than now: `head` is copied now (at most `MAX_HEAD_BYTES`),
    /// `body` borrowed until the flush like [`Io::send`]'s, so every consumer of a packet shares
    /// its payload; sealing happens in a small staging buffer, one socket's datagrams at a time,
    /// in the order they were queued on that socket. Never allocates (the `Rc` is kept with the
    /// datagram until the flush). A seal that fails drops that datagram only
    /// (`ShardLoad::tx_seal_failed`); longer than `MAX_SEALED_BYTES` sealed = counted drop.
    ///
    /// On a TCP connection it is sealed now and framed as [`Io::send`] frames.
    #[inline]
    pub fn send_sealed(
        &mut self,
        socket: SocketId,
        dest: SocketAddr,
        head: &[u8],
        body: &'a [u8],
        seal: std::rc::Rc<dyn Seal>,
    ) {
        self.core.udp.queue_sealed(socket, dest, head, body, seal)
    }

    /// Pushes a command into shard `shard`'s inbound ring from this shard, waking it if parked.
    /// `Err(cmd)` if that ring is full, `shard` is this shard, or out of range.
    pub fn send_to_shard(&mut self, shard: usize, cmd: C) -> Result<(), C> {
        let Some(Some(ring)) = self.core.peers.get_mut(shard) else {
            return Err(cmd);
        };
        ring.push(cmd)?;
        self.core.shared[shard].wake_if_parked();
        Ok(())
    }

    /// Copies one record (`head ++ body`, length-prefixed) into this shard's current media batch
    /// for shard `shard`, to reach that shard's [`ShardService::on_shard_datagram`]. Batches are
    /// pushed when full and at every flush point; pushing wakes a parked target. Never allocates
    /// except to grow the pair's buffer pool (at most `MAX_MEDIA_BUFFERS_PER_PAIR`).
    ///
    /// `shard` may be this shard: the record then arrives through the same path on a later turn.
    /// `false` if the record was dropped (counted in `shard_tx_dropped`: pool exhausted because
    /// the target is not draining, ring full, or longer than `MAX_MEDIA_RECORD_BYTES`), or if
    /// `shard` is out of range (a caller bug, not counted).
    pub fn forward_to_shard(&mut self, shard: usize, head: &[u8], body: &[u8]) -> bool {
        let core = &mut *self.core;
        let Some(Some(out)) = core.media_out.get_mut(shard) else {
            return false;
        };
        let (taken, pushed) = out.append(head, body, &mut core.media);
        if pushed {
            core.shared[shard].wake_if_parked();
        }
        if taken && !out.queued {
            out.queued = true;
            debug_assert!(core.media_dirty.len() < core.media_dirty.capacity());
            core.media_dirty.push(shard);
        }
        taken
    }

    /// Test hook: media batch buffers this shard has allocated for shard `shard` so far.
    #[doc(hidden)]
    pub fn media_buffers_allocated(&self, shard: usize) -> usize {
        self.core.media_out.get(shard).and_then(Option::as_ref).map_or(0, MediaOut::allocated)
    }

    /// Whether this shard still sends with UDP GSO (false after the kernel refused it).
    pub fn gso_enabled(&self) -> bool {
        self.core.udp.gso_enabled()
    }

    /// Test hook: switch this shard to the plain `sendmmsg` fallback, as if GSO were refused.
    #[doc(hidden)]
    pub fn force_gso_fallback(&mut self) {
        self.core.udp.disable_gso()
    }

    /// Test hook: lower this shard's TCP connection limit below `MAX_TCP_CONNECTIONS_PER_SHARD`
    /// (clamped to it), so the limit can be reached without thousands of sockets.
    #[doc(hidden)]
    pub fn limit_tcp_connections(&mut self, max: usize) {
        self.core.udp.tcp_limit = max.min(crate::tcp::MAX_TCP_CONNECTIONS_PER_SHARD);
    }

    /// Test hook: GSO messages (of more than one segment) the kernel accepted on this shard.
    #[doc(hidden)]
    pub fn gso_messages_sent(&self) -> u64 {
        self.core.udp.gso_messages()
    }
}

/// Measures busy time and packet rates; reports once per window, also in the middle of a long
/// turn, so that a report is never older than about one window.
struct LoadMeter {
    window_start: Instant,
    busy: Duration,
    /// Start of the part of the current turn not yet added to `busy`.
    mark: Instant,
    rx_at_start: u64,
    tx_at_start: u64,
    seq: u64,
    /// Reports the load ring had no room for.
    dropped: u64,
}

impl LoadMeter {
    fn new(start: Instant) -> Self {
        LoadMeter {
            window_start: start,
            busy: Duration::ZERO,
            mark: start,
            rx_at_start: 0,
            tx_at_start: 0,
            seq: 0,
            dropped: 0,
        }
    }

    /// Count the current turn as busy up to `now`.
    fn account(&mut self, now: Instant) {
        self.busy += now.saturating_duration_since(self.mark);
        self.mark = now;
    }

    /// Sends the window's report on the load ring (never waits: a full ring drops it, counted)
    /// and starts the next window.
    fn report(
        &mut self,
        now: Instant,
        out: &mut Producer<ShardLoad>,
        c: &Counters,
        m: &MediaCounters,
        service: [u32; 8],
    ) {
        let elapsed = now.saturating_duration_since(self.window_start);
        let secs = elapsed.as_secs_f64().max(1e-9);
        self.seq += 1;
        let report = ShardLoad {
            seq: self.seq,
            reports_dropped: self.dropped,
            service,
            busy_fraction: (self.busy.as_secs_f64() / secs).clamp(0.0, 1.0) as f32,
            rx_pps: ((c.rx_packets - self.rx_at_start) as f64 / secs) as u64,
            tx_pps: ((c.tx_packets - self.tx_at_start) as f64 / secs) as u64,
            rx_packets: c.rx_packets,
            tx_packets: c.tx_packets,
            rx_bytes: c.rx_bytes,
            tx_bytes: c.tx_bytes,
            tx_gso_messages: c.tx_gso_messages,
            rx_gro_trains: c.rx_gro_trains,
            tx_dropped: c.tx_dropped,
            tx_seal_failed: c.tx_seal_failed,
            rx_truncated: c.rx_truncated,
            shard_tx_records: m.tx_records,
            shard_rx_records: m.rx_records,
            shard_tx_dropped: m.tx_dropped,
            shard_rx_malformed: m.rx_malformed,
            shard_batch_buffers: m.buffers_allocated,
            tcp_accepted: c.tcp_accepted,
            tcp_rejected: c.tcp_rejected,
            tcp_closed: c.tcp_closed,
            tcp_tx_dropped: c.tcp_tx_dropped,
            tcp_rx_empty: c.tcp_rx_empty,
            tcp_connections: c.tcp_connections,
        };
        if out.push(report).is_err() {
            self.dropped += 1;
        }
        self.window_start = now;
        self.busy = Duration::ZERO;
        self.mark = now;
        self.rx_at_start = c.rx_packets;
        self.tx_at_start = c.tx_packets;
    }
}

/// Everything one shard's loop owns.
pub(crate) struct Shard<S: ShardService> {
    pub core: Core<S::Command>,
    /// Inbound rings: the API ring first, then one per peer shard.
    pub inbound: Vec<Consumer<S::Command>>,
    /// Inbound media rings, one per peer shard.
    pub media_in: Vec<MediaIn>,
    /// Where this shard's load reports go (read through its `ShardHandle`).
    pub load_out: Producer<ShardLoad>,
    pub spin_before_park: Duration,
}

impl<S: ShardService> Shard<S> {
    /// Runs until the runtime's stop flag is set, then calls `on_stop` and flushes.
    pub(crate) async fn run(mut self, mut service: S) {
        let me = self.core.shared[self.core.index].clone();
        let mut rx = RxBatch::new();
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; MAX_EPOLL_EVENTS];
        let start = Instant::now();
        let mut meter = LoadMeter::new(start);
        let mut idle_since: Option<Instant> = None;
        let mut first_ring = 0;
        let mut first_media = 0;
        while !me.stop.load(Ordering::Acquire) {
            let now = Instant::now();
            meter.mark = now;
            let commands = self.drain_commands(now, &mut service, first_ring);
            first_ring = (first_ring + 1) % self.inbound.len();
            if commands > 0 {
                self.flush_tx(now, &mut service);
                // Control work is not load: a burst of joins must not look like a hot shard to
                // placement. Only the data work below is measured as busy time.
                meter.mark = Instant::now();
            }
            let mut work = self.drain_media(now, &mut service, first_media, &mut meter);
            first_media = (first_media + 1) % self.media_in.len().max(1);
            work += self.receive(now, &mut service, &mut rx, &mut events, &me, &mut meter);
            if service.poll_timeout().is_some_and(|t| t <= now) {
                service.on_timeout(now, &mut Io::new(&mut self.core));
                work += 1;
            }
            self.flush_tx(now, &mut service);

            if work > 0 {
                meter.account(Instant::now());
            }
            if work + commands > 0 {
                idle_since = None;
            } else {
                let idle = *idle_since.get_or_insert(now);
                if now.duration_since(idle) >= self.spin_before_park {
                    // A batch held for a lagging target (see `MediaOut::push_partial`) must not
                    // wait for our whole park: sleep at most `MAX_MEDIA_HOLD`, then look again.
                    // (Pushing it now instead would spend one pooled buffer per park.)
                    let mut wake_at = service.poll_timeout();
                    if !self.core.media_dirty.is_empty() {
                        let hold_until = now + MAX_MEDIA_HOLD;
                        wake_at = Some(wake_at.map_or(hold_until, |t| t.min(hold_until)));
                    }
                    self.park(&me, wake_at, now).await;
                    idle_since = None;
                }
            }
            if now.duration_since(meter.window_start) >= LOAD_WINDOW {
                self.report_load(now, &mut meter, &service);
            }
            glommio::yield_if_needed().await;
        }
        let now = Instant::now();
        service.on_stop(now, &mut Io::new(&mut self.core));
        self.flush_tx(now, &mut service);
        self.core.push_media(true);
        self.report_load(now, &mut meter, &service);
    }

    fn report_load(&mut self, now: Instant, meter: &mut LoadMeter, service: &S) {
        meter.report(now, &mut self.load_out, &self.core.udp.counters, &self.core.media, service.load_figures());
    }

    /// Inside a long turn of data work: when the window is over, count the turn so far as busy
    /// and report, so the report stays on time however long the turn runs.
    fn report_load_mid_turn(&mut self, now: Instant, meter: &mut LoadMeter, service: &S) {
        if now.duration_since(meter.window_start) >= LOAD_WINDOW {
            meter.account(now);
            self.report_load(now, meter, service);
        }
    }

    /// Hands up to `MAX_COMMANDS_PER_TURN` commands to the service, round-robin over rings.
    fn drain_commands(&mut self, now: Instant, service: &mut S, first_ring: usize) -> usize {
        let mut budget = MAX_COMMANDS_PER_TURN;
        let n = self.inbound.len();
        for k in 0..n {
            if budget == 0 {
                break;
            }
            let ring = &mut self.inbound[(first_ring + k) % n];
            let core = &mut self.core;
            budget -= ring.drain(budget, |cmd| service.on_command(now, cmd, &mut Io::new(core)));
        }
        MAX_COMMANDS_PER_TURN - budget
    }

    /// A flush point: `on_flush`, then partial media batches go to their targets, then the
    /// transmit queue is sent (after which no body borrowed from a buffer is referenced).
    fn flush_tx(&mut self, now: Instant, service: &mut S) {
        service.on_flush(now, &mut Io::new(&mut self.core));
        self.core.push_media(false);
        self.core.udp.flush();
        if !self.core.udp.tcp_ended.is_empty() {
            self.report_tcp_ended(now, service);
        }
    }

    /// Tells the service about the TCP connections that ended (`on_tcp_closed`), then sends what
    /// it queued. Connections found ended by that send wait for the next flush point.
    fn report_tcp_ended(&mut self, now: Instant, service: &mut S) {
        let n = self.core.udp.tcp_ended.len();
        for i in 0..n {
            let conn = self.core.udp.tcp_ended[i];
            service.on_tcp_closed(now, conn, &mut Io::new(&mut self.core));
        }
        self.core.udp.tcp_ended.drain(..n);
        self.core.udp.flush();
    }

    /// Accepts up to `MAX_TCP_ACCEPTS_PER_TURN` connections from `listener`, announcing each
    /// with `on_tcp_accept`. Returns the connections taken (accepted or rejected).
    fn accept_tcp(&mut self, now: Instant, service: &mut S, listener: SocketId) -> usize {
        let mut taken = 0;
        for _ in 0..MAX_TCP_ACCEPTS_PER_TURN {
            match self.core.udp.accept_tcp(listener) {
                Accepted::Conn(conn, remote) => {
                    service.on_tcp_accept(now, listener, conn, remote, &mut Io::new(&mut self.core));
                }
                Accepted::Rejected => {}
                Accepted::Done => break,
            }
            taken += 1;
        }
        if taken > 0 {
            self.flush_tx(now, service);
        }
        taken
    }

    /// Reads connection `conn` (at most `MAX_TCP_RX_BYTES_PER_TURN` bytes) and hands each
    /// complete RFC 4571 frame to `on_datagram`, in place in the connection's reassembly buffer;
    /// flushes after each read, before the buffer is read into again (bodies may borrow it).
    /// Zero-length frames are skipped and counted. EOF or an error closes the connection
    /// (`on_tcp_closed` at the flush point). Returns the frames delivered.
    fn receive_tcp(&mut self, now: Instant, service: &mut S, conn: SocketId) -> usize {
        let Some((mut rx, remote)) = self.core.udp.take_deframer(conn) else {
            return 0;
        };
        let mut bytes = 0;
        let mut frames = 0;
        let mut ended = false;
        while bytes < MAX_TCP_RX_BYTES_PER_TURN {
            let spare = rx.spare();
            let room = spare.len();
            match self.core.udp.read_tcp(conn, spare) {
                ReadResult::Bytes(n) => {
                    rx.filled(n);
                    bytes += n;
                    while let Some(frame) = rx.next_frame() {
                        if frame.is_empty() {
                            self.core.udp.counters.tcp_rx_empty += 1;
                            continue;
                        }
                        if self.core.udp.kind(conn).is_none() {
                            break; // the service closed it while handling a frame
                        }
                        self.core.udp.counters.rx_packets += 1;
                        self.core.udp.counters.rx_bytes += frame.len() as u64;
                        frames += 1;
                        let mut io = Io::new(&mut self.core);
                        service.on_datagram(now, conn, remote, rx.frame_mut(frame), &mut io);
                    }
                    // Frames may be borrowed by queued sends: flush before `spare` moves bytes.
                    self.flush_tx(now, service);
                    if n < room {
                        break; // the socket is (very likely) drained: spare the EAGAIN read
                    }
                }
                ReadResult::WouldBlock | ReadResult::Gone => break,
                ReadResult::Ended => {
                    ended = true;
                    break;
                }
            }
        }
        if ended {
            self.core.udp.end_tcp(conn);
            self.flush_tx(now, service);
        } else {
            self.core.udp.put_deframer(conn, rx);
        }
        frames
    }

    /// Hands up to `MAX_MEDIA_BATCHES_PER_TURN` inbound media batches to the service, record by
    /// record, round-robin over peers; flushes after each batch, then returns its buffer. Stops
    /// after `MAX_RX_TURN`: a record fanned out to a thousand consumers costs a millisecond, so
    /// a full turn of batches could hold the shard for a second (no commands, timers or load
    /// reports meanwhile); the rest waits in the rings for the next turn.
    fn drain_media(&mut self, now: Instant, service: &mut S, first: usize, meter: &mut LoadMeter) -> usize {
        let n = self.media_in.len();
        let mut batches = 0;
        'peers: for k in 0..n {
            let i = (first + k) % n;
            while batches < MAX_MEDIA_BATCHES_PER_TURN {
                let Some(mut batch) = self.media_in[i].pop() else {
                    break;
                };
                let from = self.media_in[i].from;
                let bytes = batch.bytes_mut();
                let mut at = 0;
                loop {
                    match decode_record(bytes, at) {
                        Ok(Some((record, next))) => {
                            self.core.media.rx_records += 1;
                            let mut io = Io::new(&mut self.core);
                            service.on_shard_datagram(now, from, &mut bytes[record], &mut io);
                            at = next;
                        }
                        Ok(None) => break,
                        Err(Truncated) => {
                            // Only our own encoder writes batches: this is a bug. Skip the rest.
                            self.core.media.rx_malformed += 1;
                            tracing::error!(from, at, "malformed media batch; rest skipped");
                            break;
                        }
                    }
                }
                // Bodies may point into `batch`: send them before its origin reuses it.
                self.flush_tx(now, service);
                self.media_in[i].give_back(batch);
                batches += 1;
                let done = Instant::now();
                self.report_load_mid_turn(done, meter, service);
                if done.duration_since(now) >= MAX_RX_TURN {
                    break 'peers;
                }
            }
        }
        batches
    }

    /// One `epoll_wait(0)`, then up to `MAX_RX_PER_TURN` datagrams from the ready sockets.
    fn receive(
        &mut self,
        now: Instant,
        service: &mut S,
        rx: &mut RxBatch,
        events: &mut [libc::epoll_event],
        me: &ShardShared,
        meter: &mut LoadMeter,
    ) -> usize {
        let ready = self.core.udp.epoll().wait(events, 0);
        let mut received = 0;
        let mut accepted = 0;
        for ev in &events[..ready] {
            let token = ev.u64;
            if token == WAKE_TOKEN {
                me.wake.drain();
                continue;
            }
            if received > 0 && now.elapsed() >= MAX_RX_TURN {
                // Level-triggered epoll reports the rest again next turn.
                continue;
            }
            let socket = SocketId(token as u32);
            match self.core.udp.kind(socket) {
                Some(Kind::Udp) => {}
                Some(Kind::TcpListener) => {
                    accepted += self.accept_tcp(now, service, socket);
                    continue;
                }
                Some(Kind::TcpConn) => {
                    let flags = ev.events;
                    if flags & libc::EPOLLOUT as u32 != 0 {
                        self.core.udp.tcp_writable(socket);
                        accepted += 1; // work done, though not a datagram
                    }
                    let readable = (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32;
                    if flags & readable != 0 && received < MAX_RX_PER_TURN {
                        received += self.receive_tcp(now, service, socket);
                    }
                    continue;
                }
                None => continue,
            }
            for _ in 0..MAX_RX_BATCHES_PER_SOCKET {
                if received >= MAX_RX_PER_TURN {
                    break;
                }
                // Looked up each batch: the service may have closed the socket meanwhile.
                let Some(fd) = self.core.udp.raw_fd(socket) else {
                    break;
                };
                let batch_start = Instant::now();
                let n = match rx.recv(fd, rx.limit) {
                    Ok(n) => n,
                    Err(e) => {
                        if e.kind() != std::io::ErrorKind::WouldBlock {
                            tracing::debug!(?socket, error = %e, "recvmmsg failed");
                        }
                        break;
                    }
                };
                let mut datagrams = 0;
                for i in 0..n {
                    match rx.message(i) {
                        Ok((src, data, segment)) => {
                            // A GRO train is split back into its datagrams, each handed over alone.
                            self.core.udp.counters.rx_bytes += data.len() as u64;
                            if data.len() > segment {
                                self.core.udp.counters.rx_gro_trains += 1;
                            }
                            // At least one piece: an empty datagram is still a datagram.
                            let pieces = data.len().div_ceil(segment.max(1)).max(1);
                            let mut rest = data;
                            for _ in 0..pieces {
                                let take = segment.min(rest.len());
                                let (datagram, tail) = std::mem::take(&mut rest).split_at_mut(take);
                                rest = tail;
                                datagrams += 1;
                                self.core.udp.counters.rx_packets += 1;
                                let mut io = Io::new(&mut self.core);
                                service.on_datagram(now, socket, src, datagram, &mut io);
                            }
                        }
                        Err(RxSkip::Truncated) => self.core.udp.counters.rx_truncated += 1,
                        Err(RxSkip::BadAddress) => {}
                    }
                }
                // Bodies may point into `rx`: send them before the next recvmmsg reuses it.
                self.flush_tx(now, service);
                received += datagrams;
                // A wide fan-out makes each datagram expensive: size batches so one takes about
                // `RX_BATCH_TARGET`, and keep the counters fresh through a long turn.
                let done = Instant::now();
                let took = done.duration_since(batch_start);
                if took > RX_BATCH_TARGET && rx.limit > 1 {
                    rx.limit /= 2;
                } else if took < RX_BATCH_TARGET / 4 && n == rx.limit && rx.limit < MAX_RX_BATCH {
                    rx.limit *= 2;
                }
                self.report_load_mid_turn(done, meter, service);
                if n < rx.limit || done.duration_since(now) >= MAX_RX_TURN {
                    break;
                }
            }
        }
        received + accepted
    }

    /// Blocks until a ring push, a readable socket, the next timer, or `MAX_PARK` (see the crate
    /// doc for why the thread itself blocks in `epoll_wait`).
    async fn park(&mut self, me: &ShardShared, timer: Option<Instant>, now: Instant) {
        me.parked.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.inbound.iter().any(|r| !r.is_empty())
            || self.media_in.iter().any(|m| !m.is_empty())
            || me.stop.load(Ordering::SeqCst)
        {
            me.parked.store(false, Ordering::SeqCst);
            return;
        }
        let wait = timer.map_or(MAX_PARK, |t| t.saturating_duration_since(now).min(MAX_PARK));
        let timeout_ms = sys::timeout_ms(wait);
        // Block this thread in epoll_wait directly. The shard loop is the only task on its
        // executor and does its I/O with plain syscalls, not glommio's reactor, so blocking here
        // stalls nothing; handing the wait to glommio's blocking pool instead cost two thread
        // hops per park, which at partial load (frequent parks) took more CPU per packet than
        // the forwarding itself (measured with the scaling bench's CPU accounting).
        let mut ev = [libc::epoll_event { events: 0, u64: 0 }; 1];
        sys::epoll_wait_raw(self.core.udp.epoll().raw_fd(), &mut ev, timeout_ms);
        me.parked.store(false, Ordering::SeqCst);
    }
}
