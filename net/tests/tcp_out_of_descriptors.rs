//! A shard out of file descriptors sheds waiting TCP connections (accept with its reserve
//! descriptor, close) instead of leaving them queued with the listener readable forever.
//! Its own test binary: it lowers the process's RLIMIT_NOFILE.
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use shardsfu_net::{Io, Runtime, RuntimeConfig, ShardService, SocketId};

type Job = Box<dyn FnOnce(&mut Io<'_, Cmd>) + Send>;
struct Cmd(Job);

struct Quiet;

impl ShardService for Quiet {
    type Command = Cmd;
    fn on_command(&mut self, _now: Instant, cmd: Cmd, io: &mut Io<'_, Cmd>) {
        (cmd.0)(io)
    }
    fn on_datagram<'a>(
        &mut self,
        _now: Instant,
        _socket: SocketId,
        _src: std::net::SocketAddr,
        _data: &'a mut [u8],
        _io: &mut Io<'a, Cmd>,
    ) {
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn on_timeout(&mut self, _now: Instant, _io: &mut Io<'_, Cmd>) {}
}

fn nofile() -> libc::rlimit {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a valid, writable rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim
}

fn set_nofile(lim: &libc::rlimit) {
    // SAFETY: a valid rlimit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, lim) }, 0);
}

#[test]
fn out_of_descriptors_sheds_the_connection() {
    let config = RuntimeConfig { shards: 1, pin: false, name: "net-emfile".to_string(), ..RuntimeConfig::default() };
    let rt = Runtime::start(config, |_| Quiet).unwrap_or_else(|e| panic!("runtime start: {e}"));
    let h = rt.handle(0);
    let (tx, rx) = mpsc::channel();
    h.submit(Cmd(Box::new(move |io| {
        let l = io.listen_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
        let _ = tx.send(io.local_addr(l).unwrap());
    })))
    .unwrap_or_else(|e| panic!("{e}"));
    let addr = rx.recv_timeout(Duration::from_secs(5)).unwrap();

    // Allow exactly one more descriptor: the client's socket. The shard's accept then fails.
    let probe = std::fs::File::open("/dev/null").unwrap();
    let lowest_free = probe.as_raw_fd() as u64;
    drop(probe);
    let saved = nofile();
    set_nofile(&libc::rlimit { rlim_cur: lowest_free + 1, rlim_max: saved.rlim_max });
    let client = TcpStream::connect(addr);
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.load().tcp_rejected == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    set_nofile(&saved);

    let mut client = client.unwrap();
    assert_eq!(h.load().tcp_rejected, 1, "{:?}", h.load());
    assert_eq!(h.load().tcp_accepted, 0);
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 8];
    loop {
        match client.read(&mut buf) {
            Ok(0) => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            other => panic!("expected the connection closed, got {other:?}"),
        }
    }
    // With descriptors back, connections are accepted again.
    let _ok = TcpStream::connect(addr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.load().tcp_accepted == 0 {
        assert!(Instant::now() < deadline, "{:?}", h.load());
        std::thread::sleep(Duration::from_millis(5));
    }
    rt.shutdown();
}
