//! Fuzz target body for "WebRTC transport input": [`drive`] builds a shard with one
//! WebRtcTransport on its own socket and one through a WebRtcServer socket, a producer and a
//! consumer, then reads `data` as operations: raw datagrams (any first byte, so STUN, DTLS,
//! SRTP/SRTCP and garbage all reach the demux), authenticated STUN requests from a few remote
//! addresses (so tuples get validated and selected and the later datagrams reach DTLS and SRTP),
//! `connect()` with either role, ICE restarts, ICE-TCP connections opening and closing, and time
//! steps that run consent and DTLS timers. Checks after each operation: no panic, drop counters
//! never go down, and nothing but STUN answers leaves towards an address ICE never validated.
//!
//! Compiled for `cargo test` and under the `fuzzing` feature (see `fuzz/`).

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use rtc_stun::attributes::{ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USERNAME, ATTR_USE_CANDIDATE};
use rtc_stun::crypto::providers::RingCrypto;
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{Message, Setter, TransactionId, BINDING_REQUEST};
use rtc_stun::textattrs::TextAttribute;
use shardsfu_net::SocketId;

use super::{IceSocketSpec, NtpClock, ObjectId, Shard, Sink, WebRtcSpec};
use crate::rtp::{classify, PacketKind};
use crate::webrtc::cert::{DtlsCertificate, DtlsRole};
use crate::Protocol;

/// Operations read from one input at most.
pub const MAX_OPS: usize = 128;

const ROUTER: ObjectId = 1;
const SERVER: ObjectId = 2;
const OWN: ObjectId = 10;
const VIA_SERVER: ObjectId = 11;
const OWN_SOCKET: SocketId = SocketId(1);
const SERVER_SOCKET: SocketId = SocketId(2);
const SERVER_TCP: SocketId = SocketId(3);

fn certificate() -> Arc<DtlsCertificate> {
    static CERT: OnceLock<Arc<DtlsCertificate>> = OnceLock::new();
    CERT.get_or_init(|| Arc::new(DtlsCertificate::generate().expect("certificate"))).clone()
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn creds(id: ObjectId, generation: u8) -> (String, String) {
    (
        format!("u{id:02}g{generation:03}xxxxxxxxxxxxxxxxxxxxxxxxx"),
        format!("p{id:02}g{generation:03}yyyyyyyyyyyyyyyyyyyyyyyyy"),
    )
}

#[derive(Default)]
struct Out {
    /// (destination, first byte) of each datagram.
    sent: Vec<(SocketAddr, u8)>,
}

impl<'a> Sink<'a> for Out {
    fn send(&mut self, _socket: SocketId, dest: SocketAddr, head: &[u8], body: &'a [u8]) {
        let first = head.first().or(body.first()).copied().unwrap_or(0);
        self.sent.push((dest, first));
    }
}

struct Fuzz {
    shard: Shard,
    now: Instant,
    generation: [u8; 2],
    /// Addresses a STUN request with valid credentials came from (the only ones ICE may select).
    authenticated: HashSet<SocketAddr>,
    drops_total: u64,
    next_tcp: u32,
}

fn stun_request(ufrag: &str, password: &str, id: u32, nominate: bool) -> Vec<u8> {
    let mut m = Message::new();
    let mut tid = [0u8; 12];
    tid[..4].copy_from_slice(&id.to_be_bytes());
    m.build(&[Box::new(TransactionId(tid)), Box::new(BINDING_REQUEST)]).expect("header");
    TextAttribute::new(ATTR_USERNAME, format!("{ufrag}:remote")).add_to(&mut m).expect("username");
    m.add(ATTR_PRIORITY, &0x6e00_01ffu32.to_be_bytes());
    if nominate {
        m.add(ATTR_USE_CANDIDATE, &[]);
    }
    m.add(ATTR_ICE_CONTROLLING, &7u64.to_be_bytes());
    MessageIntegrity::new_short_term_integrity_with_provider(password.to_owned(), &RingCrypto)
        .add_to(&mut m)
        .expect("integrity");
    FINGERPRINT.add_to(&mut m).expect("fingerprint");
    m.raw.clone()
}

impl Fuzz {
    fn new() -> Fuzz {
        let now = Instant::now();
        let mut shard = Shard::new(now, NtpClock::new(now, SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 30)));
        shard.create_router(ROUTER).expect("router");
        let server_sockets = vec![
            IceSocketSpec { socket: SERVER_SOCKET, protocol: Protocol::Udp, local: addr(2000) },
            IceSocketSpec { socket: SERVER_TCP, protocol: Protocol::Tcp, local: addr(2000) },
        ];
        shard.create_webrtc_server(SERVER, server_sockets).expect("server");
        for (id, own) in [(OWN, true), (VIA_SERVER, false)] {
            let (ufrag, password) = creds(id, 0);
            let spec = WebRtcSpec {
                sockets: if own {
                    vec![IceSocketSpec { socket: OWN_SOCKET, protocol: Protocol::Udp, local: addr(1000) }]
                } else {
                    Vec::new()
                },
                server: (!own).then_some(SERVER),
                ufrag,
                password,
                consent_timeout: Duration::from_secs(10),
                certificate: certificate(),
                srtp_profiles: Vec::new(),
            };
            shard.create_webrtc_transport(now, ROUTER, id, spec).expect("transport");
        }
        Fuzz { shard, now, generation: [0; 2], authenticated: HashSet::new(), drops_total: 0, next_tcp: 100 }
    }

    fn check(&mut self, out: Out) {
        for (dest, first) in out.sent {
            let stun = classify(&[first, 0]) == PacketKind::Stun;
            assert!(stun || self.authenticated.contains(&dest), "non-STUN datagram to {dest}, never authenticated");
        }
        let total = self.shard.drops().total();
        assert!(total >= self.drops_total, "drop counters went down");
        self.drops_total = total;
        while self.shard.poll_event().is_some() {}
    }

    fn deliver(&mut self, socket: SocketId, src: SocketAddr, mut bytes: Vec<u8>) {
        let mut out = Out::default();
        self.shard.handle_datagram(self.now, socket, src, &mut bytes, &mut out);
        self.check(out);
    }

    fn step(&mut self, op: u8, input: &mut super::fuzz::Input<'_>) {
        let target = usize::from(input.u8() % 2);
        let id = [OWN, VIA_SERVER][target];
        let socket = match input.u8() % 4 {
            0 | 1 => [OWN_SOCKET, SERVER_SOCKET][target],
            2 => SocketId(self.next_tcp.saturating_sub(1)),
            _ => SocketId(99),
        };
        let src = addr(30_000 + u16::from(input.u8() % 4));
        match op % 8 {
            // A raw datagram: the demux and every layer behind it.
            0..=2 => {
                let n = usize::from(input.u16() % 1500);
                let bytes = input.bytes(n).to_vec();
                self.deliver(socket, src, bytes);
            }
            // A valid Binding request (nominated or not) with current or stale credentials.
            3 => {
                let stale = input.u8().is_multiple_of(4);
                let generation = self.generation[target].wrapping_sub(u8::from(stale));
                let (ufrag, password) = creds(id, generation);
                let nominate = input.u8().is_multiple_of(2);
                let request = stun_request(&ufrag, &password, input.u32(), nominate);
                self.authenticated.insert(src);
                self.deliver(socket, src, request);
            }
            // connect() with a role and the fingerprints of our own certificate.
            4 => {
                let role = [None, Some(DtlsRole::Auto), Some(DtlsRole::Client), Some(DtlsRole::Server)]
                    [usize::from(input.u8() % 4)];
                let fps = certificate().fingerprints().to_vec();
                let mut out = Out::default();
                let _ = self.shard.connect_webrtc_transport(self.now, id, role, fps, &mut out);
                self.check(out);
            }
            // ICE restart.
            5 => {
                self.generation[target] = self.generation[target].wrapping_add(1);
                let (ufrag, password) = creds(id, self.generation[target]);
                let _ = self.shard.restart_ice(self.now, id, ufrag, password);
            }
            // ICE-TCP: a connection opens on the server's listener, or the last one closes.
            6 => {
                if input.u8().is_multiple_of(2) {
                    self.shard.tcp_accepted(SERVER_TCP, SocketId(self.next_tcp));
                    self.next_tcp += 1;
                } else {
                    self.shard.tcp_closed(self.now, SocketId(self.next_tcp.saturating_sub(1)));
                }
                let _ = self.shard.take_released_sockets();
            }
            // Time: consent, DTLS retransmissions, RTCP.
            _ => {
                self.now += Duration::from_millis(u64::from(input.u16()) * 4);
                let mut out = Out::default();
                self.shard.handle_timeout(self.now, &mut out);
                self.check(out);
            }
        }
    }
}

/// Run one fuzz input.
pub fn drive(data: &[u8]) {
    let mut fuzz = Fuzz::new();
    let mut input = super::fuzz::Input::new(data);
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        let op = input.u8();
        fuzz.step(op, &mut input);
    }
    let _ = fuzz.shard.close_transport(OWN);
    let _ = fuzz.shard.close_webrtc_server(SERVER);
    let _ = fuzz.shard.take_released_sockets();
}

#[cfg(test)]
mod tests {
    #[test]
    fn arbitrary_inputs_do_not_panic() {
        crate::core::fuzz::pseudo_random_inputs(0x1234_5678_9abc_def0, &[0, 1, 7, 64, 512, 2048], 20, super::drive);
    }

    #[test]
    fn a_scripted_session_validates_a_tuple_and_starts_dtls() {
        // STUN (op 3) nominated on the own socket from src 0, then connect (op 4) as client.
        let data = [3, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 4, 0, 0, 0, 2];
        super::drive(&data);
    }
}
