//! WebRtcTransports in the sans-IO core, against peers built from independent pieces: STUN
//! requests from `rtc-stun`'s encoder, a DTLS client/server on `rtc-dtls`, SRTP keys from it.
//! Simulated time, no sockets: ICE -> DTLS -> SRTP -> produce -> consume, bytes checked, and
//! every refusal counted.

#[path = "webrtc_ice_client.rs"]
#[allow(unused)]
mod client;
mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::*;
use shardsfu_engine::core::{
    ConsumerSpec, Event, IceSocketSpec, NtpClock, ObjectId, Shard, Snapshot, WebRtcSpec, SRTP_PROFILES,
};
use shardsfu_engine::rtp::parse_rtp;
use shardsfu_engine::rtp_parameters::MediaKind;
use shardsfu_engine::webrtc::cert::{DtlsCertificate, DtlsRole, DtlsState};
use shardsfu_engine::webrtc::dtls::{DtlsEvent, DtlsSession, DtlsSide};
use shardsfu_engine::webrtc::ice::IceState;
use shardsfu_engine::webrtc::srtp::{SrtpProfile, SrtpSession};
use shardsfu_engine::Protocol;
use shardsfu_net::SocketId;

/// Counts allocations of this thread (for the no-allocation test).
struct Counting;

thread_local! {
    static ALLOCATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator; only counts on the side.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A sink that only counts (allocates nothing).
#[derive(Default)]
struct CountSink {
    datagrams: u64,
}

impl<'a> shardsfu_engine::core::Sink<'a> for CountSink {
    fn send(&mut self, _socket: SocketId, _dest: SocketAddr, _head: &[u8], _body: &'a [u8]) {
        self.datagrams += 1;
    }
}

const TA: ObjectId = 10;
const TB: ObjectId = 11;

/// One browser-like peer: ICE controlling, a DTLS endpoint, SRTP once connected.
struct Peer {
    socket: SocketId,
    remote: SocketAddr,
    cert: DtlsCertificate,
    dtls: Option<DtlsSession>,
    tx: Option<SrtpSession>,
    rx: Option<SrtpSession>,
    profile: Option<SrtpProfile>,
    failed: bool,
}

struct Net {
    shard: Shard,
    now: Instant,
    sink: VecSink,
    server_cert: Arc<DtlsCertificate>,
    next_id: ObjectId,
}

impl Net {
    fn new() -> Net {
        let now = Instant::now();
        let mut shard = Shard::new(now, NtpClock::new(now, SystemTime::now()));
        shard.create_router(ROUTER).unwrap();
        Net {
            shard,
            now,
            sink: VecSink::default(),
            server_cert: Arc::new(DtlsCertificate::generate().unwrap()),
            next_id: 100,
        }
    }

    /// A WebRtcTransport with its own UDP socket `socket` on `local`.
    fn transport(&mut self, id: ObjectId, socket: u32, local: SocketAddr, consent: Duration) -> (String, String) {
        let ufrag = format!("ufrag{id:027}");
        let password = format!("password{id:024}");
        let spec = WebRtcSpec {
            sockets: vec![IceSocketSpec { socket: SocketId(socket), protocol: Protocol::Udp, local }],
            server: None,
            ufrag: ufrag.clone(),
            password: password.clone(),
            consent_timeout: consent,
            certificate: self.server_cert.clone(),
            srtp_profiles: Vec::new(),
        };
        self.shard.create_webrtc_transport(self.now, ROUTER, id, spec).unwrap();
        (ufrag, password)
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.shard.poll_event()).collect()
    }

    fn recv(&mut self, socket: SocketId, src: SocketAddr, bytes: &[u8]) {
        let mut buf = bytes.to_vec();
        self.shard.handle_datagram(self.now, socket, src, &mut buf, &mut self.sink);
    }

    /// Datagrams the shard sent to `dest` since the last call (others stay).
    fn take_for(&mut self, dest: SocketAddr) -> Vec<Vec<u8>> {
        let (mine, rest): (Vec<_>, Vec<_>) = self.sink.datagrams.drain(..).partition(|d| d.dest == dest);
        self.sink.datagrams = rest;
        mine.into_iter().map(|d| d.bytes).collect()
    }

    fn advance(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        while let Some(t) = self.shard.poll_timeout().filter(|&t| t <= end) {
            self.now = t.max(self.now);
            self.shard.handle_timeout(self.now, &mut self.sink);
        }
        self.now = end;
    }

    /// ICE: a nominated Binding request from `peer`, answered.
    fn ice(&mut self, peer: &Peer, ufrag: &str, password: &str, id: u32) {
        let req = client::Req::new(ufrag, password, id).nominate();
        self.recv(peer.socket, peer.remote, &req.build());
        let replies: Vec<_> = self.take_for(peer.remote).into_iter().filter(|d| d[0] < 4).collect();
        assert_eq!(replies.len(), 1, "one STUN response");
        client::check_success(&replies[0], req.transaction_id, password);
    }

    /// Exchange DTLS between `peer` and the shard until both ends settle (or 50 rounds).
    fn handshake(&mut self, peer: &mut Peer) {
        for _ in 0..50 {
            let mut moved = false;
            let mut buf = [0u8; 1500];
            let dtls = peer.dtls.as_mut().expect("peer DTLS started");
            let mut out = Vec::new();
            while let Some(n) = dtls.poll_transmit(&mut buf) {
                out.push(buf[..n].to_vec());
            }
            for d in out {
                moved = true;
                self.recv(peer.socket, peer.remote, &d);
            }
            for d in self.take_for(peer.remote) {
                moved = true;
                let _ = peer.dtls.as_mut().unwrap().handle_datagram(self.now, &d);
            }
            while let Some(ev) = peer.dtls.as_mut().unwrap().poll_event() {
                match ev {
                    DtlsEvent::Connected { profile, local, remote } => {
                        peer.tx = Some(SrtpSession::new(profile, &local).unwrap());
                        peer.rx = Some(SrtpSession::new(profile, &remote).unwrap());
                        peer.profile = Some(profile);
                    }
                    DtlsEvent::Failed(_) => peer.failed = true,
                    _ => {}
                }
            }
            if !moved {
                self.advance(10);
                peer.dtls.as_mut().unwrap().handle_timeout(self.now);
                if peer.tx.is_some() || peer.failed {
                    return;
                }
            }
        }
    }
}

impl Peer {
    fn new(socket: u32, remote_port: u16) -> Peer {
        Peer {
            socket: SocketId(socket),
            remote: SocketAddr::from(([10, 0, 0, 2], remote_port)),
            cert: DtlsCertificate::generate().unwrap(),
            dtls: None,
            tx: None,
            rx: None,
            profile: None,
            failed: false,
        }
    }

    /// Start this peer's DTLS in `side`, trusting `server` (or a wrong certificate).
    fn start_dtls(&mut self, now: Instant, side: DtlsSide, server: &DtlsCertificate, profiles: &[SrtpProfile]) {
        let fps = server.fingerprints().to_vec();
        self.dtls = Some(DtlsSession::new(now, side, &self.cert, &fps, profiles).unwrap());
    }

    fn protect(&mut self, rtp: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; rtp.len() + 32];
        let n = self.tx.as_mut().unwrap().protect_rtp(rtp, &mut out).unwrap();
        out.truncate(n);
        out
    }

    fn unprotect(&mut self, srtp: &[u8]) -> Vec<u8> {
        let mut buf = srtp.to_vec();
        let n = self.rx.as_mut().unwrap().unprotect_rtp(&mut buf).expect("SRTP from the SFU authenticates");
        buf.truncate(n);
        buf
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], port))
}

/// Two connected transports (A publishes, B consumes) through ICE and DTLS with `profiles`
/// offered by the peers; the SFU is DTLS server towards A and client towards B.
fn connected(profiles: &[SrtpProfile]) -> (Net, Peer, Peer) {
    let mut net = Net::new();
    let (ua, pa) = net.transport(TA, 1, local(5000), Duration::from_secs(30));
    let (ub, pb) = net.transport(TB, 2, local(5001), Duration::from_secs(30));
    let mut a = Peer::new(1, 40_000);
    let mut b = Peer::new(2, 40_001);
    net.ice(&a, &ua, &pa, 1);
    net.ice(&b, &ub, &pb, 2);
    let fa = a.cert.fingerprints().to_vec();
    let fb = b.cert.fingerprints().to_vec();
    let mut sink = std::mem::take(&mut net.sink);
    assert_eq!(
        net.shard.connect_webrtc_transport(net.now, TA, Some(DtlsRole::Client), fa, &mut sink).unwrap(),
        DtlsRole::Server
    );
    assert_eq!(
        net.shard.connect_webrtc_transport(net.now, TB, Some(DtlsRole::Server), fb, &mut sink).unwrap(),
        DtlsRole::Client
    );
    net.sink = sink;
    let cert = net.server_cert.clone();
    a.start_dtls(net.now, DtlsSide::Client, &cert, profiles);
    b.start_dtls(net.now, DtlsSide::Server, &cert, profiles);
    net.handshake(&mut a);
    net.handshake(&mut b);
    assert!(a.tx.is_some() && b.tx.is_some(), "both peers connected (a failed: {}, b failed: {})", a.failed, b.failed);
    (net, a, b)
}

/// Producer on A (VP8, SSRC PRODUCER_SSRC), consumer on B; returns the consumer's SSRC.
fn produce_consume(net: &mut Net) -> u32 {
    let caps = router_caps();
    let params = producer_params(MediaKind::Video, false, Feedback::Full, "0");
    let (spec, consumable) = producer_spec(&caps, MediaKind::Video, params, 0);
    net.shard.produce(net.now, TA, PRODUCER, spec).unwrap();
    let ssrc = 0x2222_0000;
    let params = consumer_params(&consumable, &caps, false, ssrc, "0");
    net.next_id += 1;
    net.shard
        .consume(net.now, TB, net.next_id, ConsumerSpec { producer: PRODUCER, rtp_parameters: params, paused: false })
        .unwrap();
    ssrc
}

fn state_events(events: &[Event], id: ObjectId) -> (Vec<IceState>, Vec<DtlsState>) {
    let ice = events.iter().filter_map(|e| match e {
        Event::IceStateChange { transport, state } if *transport == id => Some(*state),
        _ => None,
    });
    let dtls = events.iter().filter_map(|e| match e {
        Event::DtlsStateChange { transport, state } if *transport == id => Some(*state),
        _ => None,
    });
    (ice.collect(), dtls.collect())
}

#[test]
fn media_flows_srtp_in_and_out_for_every_profile() {
    for profile in SRTP_PROFILES {
        let (mut net, mut a, mut b) = connected(&[profile]);
        assert_eq!(a.profile, Some(profile));
        let events = net.events();
        assert_eq!(
            state_events(&events, TA),
            (vec![IceState::Completed], vec![DtlsState::Connecting, DtlsState::Connected])
        );
        let consumer_ssrc = produce_consume(&mut net);
        net.take_for(b.remote); // RTCP so far
        for seq in 0..20u16 {
            let payload = if seq == 0 { vp8_key(seq as u8) } else { vp8_delta(seq as u8) };
            let rtp = Rtp::new(PRODUCER_SSRC, VIDEO_PT, 1000 + seq).payload(&payload).build();
            let srtp = a.protect(&rtp);
            net.recv(a.socket, a.remote, &srtp);
            let out = net.take_for(b.remote);
            assert_eq!(out.len(), 1, "{profile:?}: one packet out for seq {seq}");
            assert_ne!(out[0][12..], rtp[12..], "{profile:?}: the payload leaves encrypted");
            let plain = b.unprotect(&out[0]);
            let hdr = parse_rtp(&plain).unwrap();
            assert_eq!(hdr.ssrc, consumer_ssrc);
            assert_eq!(hdr.payload(&plain), &payload[..], "{profile:?}: payload bytes arrive unchanged");
        }
        assert_eq!(net.shard.drops().srtp_auth_failed, 0);
    }
}

#[test]
fn tampered_and_replayed_srtp_is_counted_and_dropped() {
    let (mut net, mut a, b) = connected(&[SrtpProfile::AeadAes128Gcm]);
    produce_consume(&mut net);
    net.take_for(b.remote);
    let rtp = Rtp::new(PRODUCER_SSRC, VIDEO_PT, 7).payload(&vp8_key(1)).build();
    let srtp = a.protect(&rtp);
    let mut bad = srtp.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    net.recv(a.socket, a.remote, &bad);
    assert_eq!(net.shard.drops().srtp_auth_failed, 1);
    assert!(net.take_for(b.remote).is_empty());
    net.recv(a.socket, a.remote, &srtp);
    assert_eq!(net.take_for(b.remote).len(), 1);
    net.recv(a.socket, a.remote, &srtp);
    assert_eq!(net.shard.drops().srtp_replay, 1);
    assert!(net.take_for(b.remote).is_empty());
}

#[test]
fn packets_from_unvalidated_tuples_or_with_wrong_credentials_are_dropped() {
    let (mut net, mut a, _b) = connected(&[SrtpProfile::AeadAes128Gcm]);
    produce_consume(&mut net);
    let rtp = Rtp::new(PRODUCER_SSRC, VIDEO_PT, 7).payload(&vp8_key(1)).build();
    let srtp = a.protect(&rtp);
    let stranger = SocketAddr::from(([10, 9, 9, 9], 1234));
    let before = net.shard.drops().unknown_source;
    net.recv(a.socket, stranger, &srtp);
    assert_eq!(net.shard.drops().unknown_source, before + 1);
    // Wrong password: 401, no tuple.
    let req = client::Req::new("ufrag000000000000000000000000010", "wrongpassword0123456789abc", 9).nominate();
    net.recv(a.socket, stranger, &req.build());
    let replies = net.take_for(stranger);
    assert_eq!(replies.len(), 1);
    assert_eq!(client::check_error(&replies[0], req.transaction_id), 401);
    assert_eq!(net.shard.drops().stun_rejected, 1);
    net.recv(a.socket, stranger, &srtp);
    assert_eq!(net.shard.drops().unknown_source, before + 2);
}

#[test]
fn a_wrong_fingerprint_fails_dtls_and_nothing_flows() {
    let mut net = Net::new();
    let (ua, pa) = net.transport(TA, 1, local(5000), Duration::from_secs(30));
    let mut a = Peer::new(1, 40_000);
    net.ice(&a, &ua, &pa, 1);
    // The SFU is told another certificate's fingerprints.
    let other = DtlsCertificate::generate().unwrap();
    let mut sink = std::mem::take(&mut net.sink);
    net.shard
        .connect_webrtc_transport(net.now, TA, Some(DtlsRole::Client), other.fingerprints().to_vec(), &mut sink)
        .unwrap();
    net.sink = sink;
    let cert = net.server_cert.clone();
    a.start_dtls(net.now, DtlsSide::Client, &cert, &SRTP_PROFILES);
    net.handshake(&mut a);
    let (_, dtls) = state_events(&net.events(), TA);
    assert_eq!(dtls.last(), Some(&DtlsState::Failed), "DTLS states: {dtls:?}");
    match net.shard.snapshot(TA).unwrap() {
        Snapshot::Transport(t) => assert_eq!(t.webrtc.unwrap().dtls_state, DtlsState::Failed),
        _ => unreachable!(),
    }
}

#[test]
fn connect_is_validated_and_only_once() {
    let mut net = Net::new();
    net.transport(TA, 1, local(5000), Duration::from_secs(30));
    let mut sink = VecSink::default();
    let err = net.shard.connect_webrtc_transport(net.now, TA, Some(DtlsRole::Client), vec![], &mut sink).unwrap_err();
    assert_eq!(err.kind(), shardsfu_engine::ErrorKind::TypeError);
    let fps = net.server_cert.fingerprints().to_vec();
    net.shard.connect_webrtc_transport(net.now, TA, None, fps.clone(), &mut sink).unwrap();
    let err = net.shard.connect_webrtc_transport(net.now, TA, None, fps, &mut sink).unwrap_err();
    assert_eq!(err.kind(), shardsfu_engine::ErrorKind::InvalidStateError);
}

#[test]
fn consent_expiry_disconnects_and_stops_media() {
    let (mut net, mut a, mut b) = connected(&[SrtpProfile::AeadAes128Gcm]);
    produce_consume(&mut net);
    net.events();
    // Only A keeps consent alive; B stays silent past its 30 s (ticks drive the deadline).
    for i in 0..8u32 {
        net.advance(5_000);
        let (ua, pa) = (format!("ufrag{TA:027}"), format!("password{TA:024}"));
        net.ice(&a, &ua, &pa, 100 + i);
    }
    let (ice, _) = state_events(&net.events(), TB);
    assert_eq!(ice, vec![IceState::Disconnected]);
    net.take_for(b.remote);
    let rtp = Rtp::new(PRODUCER_SSRC, VIDEO_PT, 1).payload(&vp8_key(1)).build();
    let srtp = a.protect(&rtp);
    net.recv(a.socket, a.remote, &srtp);
    assert!(net.take_for(b.remote).is_empty(), "nothing goes to a peer without consent");
    let _ = &mut b;
}

#[test]
fn ice_restart_keeps_media_and_accepts_the_new_credentials() {
    let (mut net, mut a, mut b) = connected(&[SrtpProfile::AeadAes128Gcm]);
    produce_consume(&mut net);
    let (nu, np) = ("newufrag0000000000000000000000ab".to_owned(), "newpassword000000000000000000000".to_owned());
    net.shard.restart_ice(net.now, TA, nu.clone(), np.clone()).unwrap();
    net.ice(&a, &nu, &np, 50);
    net.take_for(b.remote);
    let rtp = Rtp::new(PRODUCER_SSRC, VIDEO_PT, 3).payload(&vp8_key(3)).build();
    let srtp = a.protect(&rtp);
    net.recv(a.socket, a.remote, &srtp);
    let out = net.take_for(b.remote);
    assert_eq!(out.len(), 1);
    let plain = b.unprotect(&out[0]);
    assert_eq!(parse_rtp(&plain).unwrap().payload(&plain), &vp8_key(3)[..]);
}

#[test]
fn closing_a_transport_says_close_notify_and_releases_its_socket_and_tuples() {
    let (mut net, mut a, _b) = connected(&[SrtpProfile::AeadAes128Gcm]);
    net.shard.close_transport(TA).unwrap();
    let alerts = net.shard.take_control_tx();
    assert!(!alerts.is_empty(), "a DTLS close alert to send");
    let dtls = a.dtls.as_mut().unwrap();
    for (socket, dest, bytes) in alerts {
        assert_eq!((socket, dest), (a.socket, a.remote));
        let _ = dtls.handle_datagram(net.now, &bytes);
    }
    let events: Vec<DtlsEvent> = std::iter::from_fn(|| dtls.poll_event()).collect();
    assert!(events.contains(&DtlsEvent::Closed), "the peer saw close_notify: {events:?}");
    assert_eq!(net.shard.take_released_sockets(), vec![SocketId(1)]);
    let rtp = Rtp::new(PRODUCER_SSRC, VIDEO_PT, 3).build();
    let srtp = a.protect(&rtp);
    let before = net.shard.drops().unknown_socket;
    net.recv(a.socket, a.remote, &srtp);
    assert_eq!(net.shard.drops().unknown_socket, before + 1);
}

#[test]
fn srtp_in_and_out_allocates_nothing_per_packet() {
    let (mut net, mut a, b) = connected(&[SrtpProfile::AeadAes128Gcm]);
    produce_consume(&mut net);
    net.take_for(b.remote);
    let packets: Vec<Vec<u8>> = (0..300u16)
        .map(|seq| {
            let payload = if seq == 0 { vp8_key(1) } else { vp8_delta(seq as u8) };
            a.protect(&Rtp::new(PRODUCER_SSRC, VIDEO_PT, 2000 + seq).payload(&payload).build())
        })
        .collect();
    let mut sink = CountSink::default();
    // Warm-up: the first packets create the per-SSRC SRTP and sequence state.
    let mut bufs: Vec<Vec<u8>> = packets.clone();
    for buf in bufs.iter_mut().take(50) {
        net.shard.handle_datagram(net.now, a.socket, a.remote, buf, &mut sink);
    }
    let before = ALLOCATIONS.with(std::cell::Cell::get);
    for buf in bufs.iter_mut().skip(50) {
        net.shard.handle_datagram(net.now, a.socket, a.remote, buf, &mut sink);
    }
    let allocated = ALLOCATIONS.with(std::cell::Cell::get) - before;
    assert_eq!(sink.datagrams, 300, "every packet decrypted, forwarded and encrypted");
    assert_eq!(allocated, 0, "allocations on the SRTP forwarding path");
}

#[test]
fn as_dtls_server_the_sfu_picks_its_own_preferred_profile_as_mediasoup_does() {
    // Chrome's offer order: AES_CM_128_HMAC_SHA1_80 first. mediasoup answers AEAD_AES_256_GCM.
    let chrome = [SrtpProfile::AesCm128HmacSha1_80, SrtpProfile::AeadAes256Gcm, SrtpProfile::AeadAes128Gcm];
    let (net, a, b) = connected(&chrome);
    assert_eq!(a.profile, Some(SrtpProfile::AeadAes256Gcm), "the SFU as DTLS server");
    assert_eq!(b.profile, Some(SrtpProfile::AeadAes256Gcm), "the SFU as DTLS client offers its order");
    match net.shard.snapshot(TA).unwrap() {
        Snapshot::Transport(t) => assert_eq!(t.webrtc.unwrap().srtp_profile, Some(SrtpProfile::AeadAes256Gcm)),
        _ => unreachable!(),
    }
}
