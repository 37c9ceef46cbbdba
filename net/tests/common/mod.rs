//! A scriptable test service: commands are closures run on the shard, results come back on
//! std channels. Optional echo (head = prefix, body = the received bytes, borrowed).
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use shardsfu_net::{Io, Runtime, RuntimeConfig, ShardHandle, ShardInfo, ShardService, SocketId};

pub const WAIT: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce(&mut TestService, &mut Io<'_, Cmd>) + Send>;
type StopHook = Box<dyn FnOnce(&mut Io<'_, Cmd>)>;

pub struct Cmd(Job);

pub fn job(f: impl FnOnce(&mut TestService, &mut Io<'_, Cmd>) + Send + 'static) -> Cmd {
    Cmd(Box::new(f))
}

pub struct TestService {
    pub info: ShardInfo,
    pub echo_prefix: Option<Vec<u8>>,
    pub on_stop: Option<StopHook>,
    pub received: u64,
    /// One-shot timer: when due, `on_timeout` sends the time it ran on `timer_fired`.
    pub timer: Option<Instant>,
    pub timer_fired: Option<mpsc::Sender<Instant>>,
}

impl ShardService for TestService {
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
        self.received += 1;
        if let Some(prefix) = &self.echo_prefix {
            io.send(socket, src, prefix, data);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.timer
    }

    fn load_figures(&self) -> [u32; 8] {
        [self.received as u32, 7, 0, 0, 0, 0, 0, 0]
    }

    fn on_timeout(&mut self, now: Instant, _io: &mut Io<'_, Cmd>) {
        if self.timer.is_some_and(|t| t <= now) {
            self.timer = None;
            if let Some(tx) = &self.timer_fired {
                let _ = tx.send(now);
            }
        }
    }

    fn on_stop(&mut self, _now: Instant, io: &mut Io<'_, Cmd>) {
        if let Some(hook) = self.on_stop.take() {
            hook(io);
        }
    }
}

pub fn config(shards: usize) -> RuntimeConfig {
    RuntimeConfig { shards, pin: false, name: "net-test".to_string(), ..RuntimeConfig::default() }
}

pub fn start(config: RuntimeConfig) -> Runtime<Cmd> {
    Runtime::start(config, |info| TestService {
        info,
        echo_prefix: None,
        on_stop: None,
        received: 0,
        timer: None,
        timer_fired: None,
    })
    .unwrap_or_else(|e| panic!("runtime start: {e}"))
}

/// Runs `f` on the shard and returns its result.
pub fn call<R: Send + 'static>(
    h: &ShardHandle<Cmd>,
    f: impl FnOnce(&mut TestService, &mut Io<'_, Cmd>) -> R + Send + 'static,
) -> R {
    let (tx, rx) = mpsc::channel();
    h.submit(job(move |s, io| {
        let _ = tx.send(f(s, io));
    }))
    .unwrap_or_else(|e| panic!("submit: {e}"));
    rx.recv_timeout(WAIT).expect("shard did not run the command")
}

/// A plain blocking loopback socket for the test thread, with a large receive buffer (best
/// effort) and reads that retry on EINTR (glommio's threads may signal the process).
pub struct Peer(pub UdpSocket);

impl std::ops::Deref for Peer {
    type Target = UdpSocket;
    fn deref(&self) -> &UdpSocket {
        &self.0
    }
}

impl Peer {
    pub fn recv_from(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        loop {
            match self.0.recv_from(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    pub fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.recv_from(buf).map(|(n, _)| n)
    }

    /// The receive buffer the kernel granted, in bytes.
    pub fn rcvbuf(&self) -> usize {
        use std::os::fd::AsRawFd;
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: valid out-pointers of the sizes given.
        let ret = unsafe {
            libc::getsockopt(
                self.0.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if ret == 0 {
            value as usize
        } else {
            0
        }
    }
}

pub fn peer(addr: &str) -> Peer {
    use std::os::fd::AsRawFd;
    let s = UdpSocket::bind(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let size: libc::c_int = 8 << 20;
    // SAFETY: passes a pointer to a live c_int and its size; failure just leaves the default.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    Peer(s)
}

/// Waits until `cond(load)` holds for the shard's published load (published at least every ~100 ms).
pub fn wait_load(h: &ShardHandle<Cmd>, cond: impl Fn(&shardsfu_net::ShardLoad) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond(&h.load()) {
        assert!(Instant::now() < deadline, "load never matched: {:?}", h.load());
        std::thread::sleep(Duration::from_millis(5));
    }
}
