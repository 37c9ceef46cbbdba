//! Starting and stopping the shards, and the thread-safe handles into them.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};

use crate::media::{self, MediaIn, MediaOut};
use crate::ring::{self, Consumer, Producer};
use crate::shard::{Core, Shard, ShardService, ShardShared, LOAD_RING_CAPACITY, WAKE_TOKEN};
use crate::sys::{self, Epoll, EventFd};
use crate::udp::Udp;

/// Most shards one runtime may start.
pub const MAX_SHARDS: usize = 256;
/// `RLIMIT_MEMLOCK` the runtime requires (glommio registers io_uring buffers).
pub const MEMLOCK_NEED_KIB: u64 = 512;
/// io_uring buffer memory each glommio executor registers. The shard does its own UDP I/O, so
/// glommio needs little; keeping it small keeps several shards under a modest memlock limit.
const GLOMMIO_IO_MEMORY_BYTES: usize = 64 * 1024;

pub struct RuntimeConfig {
    /// 0 = one per available CPU.
    pub shards: usize,
    /// Pin shard `i` to the `i % n`th CPU this process may run on.
    pub pin: bool,
    /// Spin (polling rings and sockets) this long with no work before parking.
    pub spin_before_park: Duration,
    /// Capacity of each ring (rounded up to a power of two).
    pub ring_capacity: usize,
    /// Thread name prefix.
    pub name: String,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            shards: 0,
            pin: true,
            spin_before_park: Duration::from_micros(50),
            ring_capacity: 1024,
            name: "shardsfu".to_string(),
        }
    }
}

/// Given to the service factory on the shard's own thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardInfo {
    pub index: usize,
    pub count: usize,
    pub cpu: Option<usize>,
}

/// Measured by the shard itself and sent once per `LOAD_WINDOW` as a message on the shard's
/// load ring (see [`ShardHandle::load`]), for placement and monitoring.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShardLoad {
    /// Reports this shard has sent (1 for the first); 0 means no report has arrived yet.
    pub seq: u64,
    /// Reports the shard could not send because its load ring was full (nobody read it).
    pub reports_dropped: u64,
    /// The service's own figures at the end of the window ([`ShardService::load_figures`]; the
    /// engine's: object counts and creation commands received).
    pub service: [u32; 8],
    /// Share of wall time over the last window spent on data work (datagrams in and out,
    /// inter-shard media, timers), 0..1. Control commands are not counted: they are bursts at
    /// setup, not load.
    pub busy_fraction: f32,
    pub rx_pps: u64,
    pub tx_pps: u64,
    /// Datagrams received (and handed to the service), TCP frames included.
    pub rx_packets: u64,
    /// Datagrams the kernel accepted (GSO segments count individually), and TCP frames taken
    /// into a connection's send buffer.
    pub tx_packets: u64,
    /// Bytes of `rx_packets` (UDP payloads, TCP frames without their length prefix).
    pub rx_bytes: u64,
    /// Bytes of `tx_packets` (UDP payloads the kernel accepted, TCP frames without their prefix).
    pub tx_bytes: u64,
    /// sendmmsg messages that carried a UDP GSO train (more than one datagram): `tx_packets`
    /// over this tells how long the trains are.
    pub tx_gso_messages: u64,
    /// Received messages that were UDP GRO trains (more than one datagram): `rx_packets` over
    /// this, for those, tells how much the kernel coalesced.
    pub rx_gro_trains: u64,
    /// Datagrams the kernel refused, or discarded by a close.
    pub tx_dropped: u64,
    /// Datagrams queued with `Io::send_sealed` whose seal failed (dropped): for the engine, SRTP
    /// protection failures of RTP packets.
    pub tx_seal_failed: u64,
    /// Datagrams larger than the receive buffer, dropped.
    pub rx_truncated: u64,
    /// Records this shard forwarded to other shards (`Io::forward_to_shard` accepted them).
    pub shard_tx_records: u64,
    /// Records other shards forwarded to this one, handed to `on_shard_datagram`.
    pub shard_rx_records: u64,
    /// Records `Io::forward_to_shard` dropped (target not draining: pool exhausted; or too long).
    pub shard_tx_dropped: u64,
    /// Inbound media batches with broken framing (never expected; the rest of each is skipped).
    pub shard_rx_malformed: u64,
    /// Media batch buffers this shard has allocated, over all peers (at most
    /// `MAX_MEDIA_BUFFERS_PER_PAIR` per peer; flat once the pools are warm).
    pub shard_batch_buffers: u64,
    /// TCP connections accepted (ICE-TCP passive candidates, `Io::listen_tcp`).
    pub tcp_accepted: u64,
    /// TCP connections closed at accept: over `MAX_TCP_CONNECTIONS_PER_SHARD`, a full socket
    /// table, or the process out of file descriptors.
    pub tcp_rejected: u64,
    /// TCP connections net closed because they ended: peer EOF, reset, write error.
    pub tcp_closed: u64,
    /// Frames `Io::send` could not queue on a TCP connection: its send buffer was full (the
    /// peer reads too slowly) or the frame was longer than `MAX_TCP_FRAME_BYTES`.
    pub tcp_tx_dropped: u64,
    /// Zero-length RFC 4571 frames received (skipped).
    pub tcp_rx_empty: u64,
    /// TCP connections open now.
    pub tcp_connections: u64,
}

#[derive(Debug)]
pub enum StartError {
    MemlockTooLow {
        have_kib: u64,
        need_kib: u64,
    },
    IoUring(std::io::Error),
    Io(std::io::Error),
    InvalidConfig(String),
    /// A shard's executor could not be created, or its service factory panicked.
    Shard {
        index: usize,
        reason: String,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::MemlockTooLow { have_kib, need_kib } => write!(
                f,
                "memlock limit is {have_kib} KiB, glommio needs at least {need_kib} KiB: \
                 run `ulimit -l {need_kib}` (or higher), or set `memlock {need_kib}` in \
                 /etc/security/limits.conf, or LimitMEMLOCK= in the systemd unit / \
                 --ulimit memlock=... for docker"
            ),
            StartError::IoUring(e) => write!(
                f,
                "io_uring is unavailable ({e}): glommio needs Linux kernel >= 5.8 with io_uring \
                 enabled (/proc/sys/kernel/io_uring_disabled = 0) and not blocked by a seccomp \
                 profile (e.g. docker's default: use --security-opt seccomp=unconfined or allow \
                 io_uring_setup/io_uring_enter/io_uring_register)"
            ),
            StartError::Io(e) => write!(f, "shard setup failed: {e}"),
            StartError::InvalidConfig(msg) => write!(f, "invalid runtime config: {msg}"),
            StartError::Shard { index, reason } => {
                write!(f, "shard {index} failed to start: {reason}")
            }
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::IoUring(e) | StartError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// The memlock check as a pure function of the soft limit (`None` = unlimited).
pub(crate) fn check_memlock(limit_bytes: Option<u64>) -> Result<(), StartError> {
    match limit_bytes {
        Some(bytes) if bytes / 1024 < MEMLOCK_NEED_KIB => {
            Err(StartError::MemlockTooLow { have_kib: bytes / 1024, need_kib: MEMLOCK_NEED_KIB })
        }
        _ => Ok(()),
    }
}

/// Why `ShardHandle::submit` gave the command back.
pub enum SubmitError<C> {
    /// The shard's API ring is full; retry later.
    Full(C),
    /// The runtime is stopping or stopped.
    Stopped(C),
}

impl<C> SubmitError<C> {
    pub fn into_inner(self) -> C {
        match self {
            SubmitError::Full(c) | SubmitError::Stopped(c) => c,
        }
    }
}

impl<C> fmt::Debug for SubmitError<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Full(_) => f.write_str("Full(..)"),
            SubmitError::Stopped(_) => f.write_str("Stopped(..)"),
        }
    }
}

impl<C> fmt::Display for SubmitError<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Full(_) => f.write_str("shard command ring is full"),
            SubmitError::Stopped(_) => f.write_str("shard runtime is stopped"),
        }
    }
}

impl<C> std::error::Error for SubmitError<C> {}

struct HandleInner<C> {
    index: usize,
    /// The API ring is SPSC; many caller threads share its producer behind a mutex
    /// (control plane only, never the packet path).
    api: Mutex<Producer<C>>,
    /// The shard's load reports, and the newest one taken off the ring.
    load: Mutex<LoadInbox>,
    shared: Arc<ShardShared>,
}

/// Reports on a shard's load ring: the reader side (many reader threads behind the handle's
/// mutex; control plane only).
struct LoadInbox {
    ring: Consumer<ShardLoad>,
    latest: ShardLoad,
}

/// Cheap, `Clone + Send + Sync` handle to one shard, usable from any thread.
pub struct ShardHandle<C: Send + 'static> {
    inner: Arc<HandleInner<C>>,
}

impl<C: Send + 'static> Clone for ShardHandle<C> {
    fn clone(&self) -> Self {
        ShardHandle { inner: self.inner.clone() }
    }
}

impl<C: Send + 'static> ShardHandle<C> {
    pub fn index(&self) -> usize {
        self.inner.index
    }

    /// Pushes `cmd` into the shard's API ring and wakes the shard if it is parked.
    pub fn submit(&self, cmd: C) -> Result<(), SubmitError<C>> {
        let shared = &self.inner.shared;
        if shared.stop.load(Ordering::Acquire) || shared.exited.load(Ordering::Acquire) {
            return Err(SubmitError::Stopped(cmd));
        }
        {
            let mut ring = match self.inner.api.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            ring.push(cmd).map_err(SubmitError::Full)?;
        }
        shared.wake_if_parked();
        Ok(())
    }

    /// The shard's newest load report: takes every report waiting on its load ring and keeps the
    /// last. The shard sends one per `LOAD_WINDOW` and never waits for the ring: a reader that
    /// lets `LOAD_RING_CAPACITY` windows pass without reading sees the figures of the window
    /// that filled it (`reports_dropped` counts the rest) until it reads again. The engine's
    /// event thread reads every window.
    pub fn load(&self) -> ShardLoad {
        let mut inbox = match self.inner.load.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let inbox = &mut *inbox;
        inbox.ring.drain(usize::MAX, |report| inbox.latest = report);
        inbox.latest
    }
}

/// The running shards. Stops them on `shutdown` or drop.
pub struct Runtime<C: Send + 'static> {
    handles: Vec<ShardHandle<C>>,
    joins: Vec<ExecutorJoinHandle<()>>,
}

/// Sends the shard's start result when dropped: `Err` unless marked ready (covers panics).
struct ReadyGuard {
    tx: mpsc::Sender<Result<usize, usize>>,
    index: usize,
    ready: bool,
}

impl Drop for ReadyGuard {
    fn drop(&mut self) {
        let msg = if self.ready { Ok(self.index) } else { Err(self.index) };
        let _ = self.tx.send(msg);
    }
}

/// Marks the shard exited when its loop ends, however it ends.
struct ExitGuard(Arc<ShardShared>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.0.exited.store(true, Ordering::Release);
    }
}

impl<C: Send + 'static> Runtime<C> {
    /// Checks memlock and io_uring, then starts one pinned glommio executor per shard, each
    /// building its service with `factory` on its own thread. Returns once all shards run.
    pub fn start<S, F>(config: RuntimeConfig, factory: F) -> Result<Runtime<C>, StartError>
    where
        S: ShardService<Command = C>,
        F: Fn(ShardInfo) -> S + Send + Sync + 'static,
    {
        check_memlock(sys::memlock_limit_bytes().map_err(StartError::Io)?)?;
        sys::probe_io_uring().map_err(StartError::IoUring)?;

        let count = if config.shards == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            config.shards
        };
        if count > MAX_SHARDS {
            return Err(StartError::InvalidConfig(format!("{count} shards exceeds MAX_SHARDS {MAX_SHARDS}")));
        }
        if config.ring_capacity == 0 || config.ring_capacity > ring::MAX_RING_CAPACITY {
            return Err(StartError::InvalidConfig(format!("ring_capacity must be in 1..={}", ring::MAX_RING_CAPACITY)));
        }
        let cpus = sys::allowed_cpus();
        let gso = sys::probe_gso();
        if !gso {
            tracing::warn!("UDP GSO (UDP_SEGMENT) unavailable; shards send with plain sendmmsg");
        }

        // Fallible per-shard resources first, on this thread, so errors come back plainly.
        let mut shared = Vec::with_capacity(count);
        let mut epolls = Vec::with_capacity(count);
        for _ in 0..count {
            let wake = EventFd::new().map_err(StartError::Io)?;
            let epoll = Epoll::new().map_err(StartError::Io)?;
            epoll.add(wake.raw_fd(), WAKE_TOKEN).map_err(StartError::Io)?;
            shared.push(Arc::new(ShardShared::new(wake)));
            epolls.push(epoll);
        }
        let shared: Arc<[Arc<ShardShared>]> = shared.into();

        // Rings: API ring per shard, then one per ordered pair of shards.
        let mut inbound: Vec<Vec<_>> = (0..count).map(|_| Vec::with_capacity(count)).collect();
        let mut handles = Vec::with_capacity(count);
        let mut load_out = Vec::with_capacity(count);
        for (i, ring_in) in inbound.iter_mut().enumerate() {
            let (tx, rx) = ring::channel::<C>(config.ring_capacity);
            ring_in.push(rx);
            let (load_tx, load_rx) = ring::channel::<ShardLoad>(LOAD_RING_CAPACITY);
            load_out.push(load_tx);
            let load = Mutex::new(LoadInbox { ring: load_rx, latest: ShardLoad::default() });
            handles.push(ShardHandle {
                inner: Arc::new(HandleInner { index: i, api: Mutex::new(tx), load, shared: shared[i].clone() }),
            });
        }
        let mut peers: Vec<Vec<Option<Producer<C>>>> = (0..count).map(|_| (0..count).map(|_| None).collect()).collect();
        for (from, row) in peers.iter_mut().enumerate() {
            for (to, slot) in row.iter_mut().enumerate() {
                if from != to {
                    let (tx, rx) = ring::channel::<C>(config.ring_capacity);
                    *slot = Some(tx);
                    inbound[to].push(rx);
                }
            }
        }

        // Media: a media ring and a return ring per ordered pair of shards, the pair (i, i)
        // included: a shard may forward to itself (two routers of one shard linked by
        // pipeToRouter), and the record then comes back through the same batch path next turn.
        let mut media_out: Vec<Vec<Option<MediaOut>>> =
            (0..count).map(|_| (0..count).map(|_| None).collect()).collect();
        let mut media_in: Vec<Vec<MediaIn>> = (0..count).map(|_| Vec::with_capacity(count)).collect();
        for (from, row) in media_out.iter_mut().enumerate() {
            for (to, slot) in row.iter_mut().enumerate() {
                let (out, inn) = media::pair(from);
                *slot = Some(out);
                media_in[to].push(inn);
            }
        }

        let factory = Arc::new(factory);
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut runtime = Runtime { handles, joins: Vec::with_capacity(count) };
        let parts = epolls.into_iter().zip(peers).zip(inbound).zip(media_out).zip(media_in).zip(load_out).enumerate();
        for (index, (((((epoll, peers), inbound), media_out), media_in), load_out)) in parts {
            let cpu = (config.pin && !cpus.is_empty()).then(|| cpus[index % cpus.len()]);
            let placement = cpu.map_or(Placement::Unbound, Placement::Fixed);
            let guard = ReadyGuard { tx: ready_tx.clone(), index, ready: false };
            let factory = factory.clone();
            let shared = shared.clone();
            let spin_before_park = config.spin_before_park;
            let spawned = LocalExecutorBuilder::new(placement)
                .name(&format!("{}-{index}", config.name))
                .io_memory(GLOMMIO_IO_MEMORY_BYTES)
                .spawn(move || async move {
                    let mut guard = guard;
                    let _exit = ExitGuard(shared[index].clone());
                    let service = factory(ShardInfo { index, count, cpu });
                    let shard = Shard::<S> {
                        core: Core {
                            index,
                            udp: Udp::new(epoll, gso),
                            peers,
                            shared,
                            media_out,
                            media_dirty: Vec::with_capacity(count),
                            media: Default::default(),
                        },
                        inbound,
                        media_in,
                        load_out,
                        spin_before_park,
                    };
                    guard.ready = true;
                    drop(guard);
                    shard.run(service).await;
                });
            match spawned {
                Ok(join) => runtime.joins.push(join),
                Err(e) => {
                    runtime.stop_and_join();
                    return Err(StartError::Shard { index, reason: e.to_string() });
                }
            }
        }
        drop(ready_tx);
        for _ in 0..count {
            match ready_rx.recv() {
                Ok(Ok(_)) => {}
                Ok(Err(index)) => {
                    runtime.stop_and_join();
                    return Err(StartError::Shard {
                        index,
                        reason: "executor creation failed or the service factory panicked".to_string(),
                    });
                }
                Err(_) => {
                    runtime.stop_and_join();
                    return Err(StartError::Shard {
                        index: 0,
                        reason: "shard thread ended during startup".to_string(),
                    });
                }
            }
        }
        Ok(runtime)
    }

    pub fn shard_count(&self) -> usize {
        self.handles.len()
    }

    /// Handle to shard `shard`. Panics if out of range (a caller bug).
    pub fn handle(&self, shard: usize) -> ShardHandle<C> {
        self.handles[shard].clone()
    }

    pub fn load(&self, shard: usize) -> ShardLoad {
        self.handles[shard].load()
    }

    /// Stops all shards (each calls `on_stop`, flushes, closes its sockets) and joins them.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        for h in &self.handles {
            h.inner.shared.stop.store(true, Ordering::SeqCst);
            h.inner.shared.wake.notify();
        }
        for (index, join) in self.joins.drain(..).enumerate() {
            if let Err(e) = join.join() {
                tracing::error!(shard = index, error = %e, "shard ended with an error");
            }
        }
    }
}

impl<C: Send + 'static> Drop for Runtime<C> {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memlock_message_names_the_fix() {
        let err = check_memlock(Some(64 * 1024)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("memlock limit is 64 KiB"), "{msg}");
        assert!(msg.contains("at least 512 KiB"), "{msg}");
        assert!(msg.contains("ulimit -l 512"), "{msg}");
        assert!(msg.contains("/etc/security/limits.conf"), "{msg}");
        assert!(msg.contains("LimitMEMLOCK="), "{msg}");
        assert!(msg.contains("--ulimit memlock"), "{msg}");
        assert!(check_memlock(Some(512 * 1024)).is_ok());
        assert!(check_memlock(Some(8 << 20)).is_ok());
        assert!(check_memlock(None).is_ok());
    }

    #[test]
    fn io_uring_message_names_the_fix() {
        let msg = StartError::IoUring(std::io::Error::from_raw_os_error(libc::ENOSYS)).to_string();
        assert!(msg.contains("kernel >= 5.8"), "{msg}");
        assert!(msg.contains("io_uring_disabled = 0"), "{msg}");
    }

    #[test]
    fn submit_error_debug_needs_no_debug_bound() {
        struct Opaque;
        let e = SubmitError::Full(Opaque);
        assert_eq!(format!("{e:?}"), "Full(..)");
        assert_eq!(e.to_string(), "shard command ring is full");
    }
}
