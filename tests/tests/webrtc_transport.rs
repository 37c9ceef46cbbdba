//! WebRtcTransport and WebRtcServer through the embedded API over real loopback sockets, UDP and
//! ICE-TCP: a wire-level peer (STUN requests from `rtc-stun`, DTLS and SRTP sessions of its own)
//! publishes to one transport and consumes from another; bytes are checked after decryption.
//! (The independent-stack tests with str0m are in `webrtc_str0m.rs`.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use shardsfu_engine::rtp_parameters::MediaKind;
use shardsfu_engine::webrtc::cert::{DtlsCertificate, DtlsParameters, DtlsRole, DtlsState};
use shardsfu_engine::webrtc::dtls::DtlsSide;
use shardsfu_engine::webrtc::ice::{IceParameters, IceState};
use shardsfu_engine::webrtc::srtp::SrtpProfile;
use shardsfu_engine::{
    block_on, ConsumerOptions, ProducerOptions, Protocol, Router, TransportListenInfo, WebRtcServerOptions,
    WebRtcTransport, WebRtcTransportConnect, WebRtcTransportOptions,
};
use shardsfu_tests::wire_peer::WirePeer;
use shardsfu_tests::*;

fn listen(protocol: Protocol) -> TransportListenInfo {
    TransportListenInfo { protocol, ..TransportListenInfo::udp("127.0.0.1") }
}

fn transport(router: &Router, options: WebRtcTransportOptions) -> WebRtcTransport {
    block_on(router.create_webrtc_transport(options)).expect("webrtc transport")
}

/// `peer` publishes VP8 on `pub_t`, and `sub` consumes it on `sub_t`: `n` packets, bytes checked.
fn media_flows(
    router: &Router,
    pub_t: &WebRtcTransport,
    publisher: &mut WirePeer,
    sub_t: &WebRtcTransport,
    sub: &mut WirePeer,
) {
    let producer = block_on(pub_t.produce(ProducerOptions::new(MediaKind::Video, vp8_params(1111, None)))).unwrap();
    let consumer =
        block_on(sub_t.consume(ConsumerOptions::new(producer.id(), router.rtp_capabilities().clone()))).unwrap();
    let ssrc = consumer.rtp_parameters().encodings.as_ref().unwrap()[0].ssrc.unwrap();
    for seq in 0..20u16 {
        let body = format!("frame {seq} over {}", pub_t.id());
        publisher.send_rtp(&vp8(seq, 1111, seq == 0, body.as_bytes()));
        let got = sub.recv_rtp().unwrap_or_else(|| panic!("packet {seq} arrived"));
        assert_eq!(ssrc_of(&got), ssrc);
        assert!(payload_of(&got).ends_with(body.as_bytes()), "payload bytes of packet {seq}");
    }
}

/// ICE, then DTLS with the SFU as server (peer `client`), then checks the state the API reports.
fn bring_up(t: &WebRtcTransport, peer: &mut WirePeer, peer_side: DtlsSide) {
    assert!(peer.ice(&t.ice_parameters()), "ICE success response");
    let role = match peer_side {
        DtlsSide::Client => DtlsRole::Client,
        DtlsSide::Server => DtlsRole::Server,
    };
    block_on(t.connect(WebRtcTransportConnect { dtls_parameters: peer.dtls_parameters(role) })).unwrap();
    peer.handshake(peer_side, &t.dtls_parameters(), &[SrtpProfile::AeadAes128Gcm, SrtpProfile::AesCm128HmacSha1_80]);
    assert!(wait_for(ARRIVAL, || t.dtls_state() == DtlsState::Connected), "dtlsState connected");
    assert_eq!(t.ice_state(), IceState::Completed);
    assert!(t.ice_selected_tuple().is_some());
}

#[test]
fn udp_transports_carry_srtp_both_ways_with_mediasoups_events() {
    let engine = engine(1);
    let worker = worker(&engine);
    let router = router(&worker);
    let a = transport(&router, WebRtcTransportOptions::new(vec![listen(Protocol::Udp)]));
    let b = transport(&router, WebRtcTransportOptions::new(vec![listen(Protocol::Udp)]));
    assert_eq!(a.ice_role(), "controlled");
    assert!(a.ice_parameters().ice_lite);
    assert_eq!(a.ice_candidates().len(), 1);
    assert_eq!(a.dtls_parameters().role, Some(DtlsRole::Auto));
    assert_eq!(a.dtls_parameters().fingerprints.len(), 5);
    assert_eq!((a.ice_state(), a.dtls_state()), (IceState::New, DtlsState::New));
    let ice_events = Arc::new(Mutex::new(Vec::new()));
    let dtls_events = Arc::new(Mutex::new(Vec::new()));
    let tuples = Arc::new(AtomicUsize::new(0));
    {
        let (i, d, t) = (ice_events.clone(), dtls_events.clone(), tuples.clone());
        a.on_ice_state_change(move |s| i.lock().unwrap().push(s));
        a.on_dtls_state_change(move |s| d.lock().unwrap().push(s));
        a.on_ice_selected_tuple_change(move |_| {
            t.fetch_add(1, Ordering::SeqCst);
        });
    }
    let mut pa = WirePeer::connect(&a, Protocol::Udp);
    let mut pb = WirePeer::connect(&b, Protocol::Udp);
    bring_up(&a, &mut pa, DtlsSide::Client);
    bring_up(&b, &mut pb, DtlsSide::Server);
    assert_eq!(a.dtls_parameters().role, Some(DtlsRole::Server), "our role after connect");
    assert_eq!(b.dtls_parameters().role, Some(DtlsRole::Client));
    media_flows(&router, &a, &mut pa, &b, &mut pb);
    assert_eq!(*ice_events.lock().unwrap(), vec![IceState::Completed]);
    assert_eq!(*dtls_events.lock().unwrap(), vec![DtlsState::Connecting, DtlsState::Connected]);
    assert_eq!(tuples.load(Ordering::SeqCst), 1);
    let stats = block_on(a.get_stats()).unwrap();
    assert_eq!(stats[0]["type"], "webrtc-transport");
    assert_eq!(stats[0]["dtlsState"], "connected");
    let dump = block_on(b.dump()).unwrap();
    assert_eq!(dump["iceState"], "completed");
    assert_eq!(dump["iceSelectedTuple"]["protocol"], "udp");
}

#[test]
fn ice_tcp_through_a_webrtc_server() {
    let engine = engine(2);
    let worker = worker(&engine);
    let server = block_on(worker.create_webrtc_server(WebRtcServerOptions {
        listen_infos: vec![listen(Protocol::Udp), listen(Protocol::Tcp)],
        app_data: Default::default(),
    }))
    .expect("server");
    let router = router(&worker);
    let tcp_only = || WebRtcTransportOptions { enable_udp: false, ..WebRtcTransportOptions::with_server(&server) };
    let a = transport(&router, tcp_only());
    let b = transport(&router, tcp_only());
    assert!(a.ice_candidates().iter().all(|c| c.protocol == Protocol::Tcp));
    assert_eq!(a.ice_candidates()[0].tcp_type.map(|t| format!("{t:?}")), Some("Passive".into()));
    let mut pa = WirePeer::connect(&a, Protocol::Tcp);
    let mut pb = WirePeer::connect(&b, Protocol::Tcp);
    bring_up(&a, &mut pa, DtlsSide::Client);
    bring_up(&b, &mut pb, DtlsSide::Client);
    assert_eq!(a.ice_selected_tuple().unwrap().protocol, Protocol::Tcp);
    media_flows(&router, &a, &mut pa, &b, &mut pb);
    // The server's transports are in its dump; closing it closes them with listenserverclose.
    let dump = server.dump();
    assert_eq!(dump["webRtcTransportIds"].as_array().unwrap().len(), 2);
    let closed = Arc::new(AtomicUsize::new(0));
    let c = closed.clone();
    a.on_listen_server_close(move || {
        c.fetch_add(1, Ordering::SeqCst);
    });
    server.close();
    assert!(wait_for(ARRIVAL, || closed.load(Ordering::SeqCst) == 1 && a.closed() && b.closed()));
}

#[test]
fn udp_webrtc_server_ports_are_per_shard_and_media_flows() {
    let engine = engine(2);
    let worker = worker(&engine);
    let server = block_on(worker.create_webrtc_server(WebRtcServerOptions {
        listen_infos: vec![listen(Protocol::Udp)],
        app_data: Default::default(),
    }))
    .unwrap();
    assert_ne!(server.local_addrs(0), server.local_addrs(1), "each shard has its own port");
    let router = router(&worker);
    let a = transport(&router, WebRtcTransportOptions::with_server(&server));
    let b = transport(&router, WebRtcTransportOptions::with_server(&server));
    let mut pa = WirePeer::connect(&a, Protocol::Udp);
    let mut pb = WirePeer::connect(&b, Protocol::Udp);
    bring_up(&a, &mut pa, DtlsSide::Client);
    bring_up(&b, &mut pb, DtlsSide::Client);
    media_flows(&router, &a, &mut pa, &b, &mut pb);
}

#[test]
fn restart_ice_gives_new_credentials_and_media_keeps_flowing() {
    let engine = engine(1);
    let worker = worker(&engine);
    let router = router(&worker);
    let a = transport(&router, WebRtcTransportOptions::new(vec![listen(Protocol::Udp)]));
    let b = transport(&router, WebRtcTransportOptions::new(vec![listen(Protocol::Udp)]));
    let mut pa = WirePeer::connect(&a, Protocol::Udp);
    let mut pb = WirePeer::connect(&b, Protocol::Udp);
    bring_up(&a, &mut pa, DtlsSide::Client);
    bring_up(&b, &mut pb, DtlsSide::Client);
    let old = a.ice_parameters();
    let new = block_on(a.restart_ice()).unwrap();
    assert_ne!(old.username_fragment, new.username_fragment);
    assert_eq!(a.ice_parameters(), new);
    assert!(pa.ice(&new), "the new credentials are accepted");
    assert!(!pa.ice(&IceParameters { password: "wrongwrongwrongwrongwrong".into(), ..new.clone() }));
    media_flows(&router, &a, &mut pa, &b, &mut pb);
}

#[test]
fn invalid_options_are_typed_errors() {
    let engine = engine(1);
    let worker = worker(&engine);
    let router = router(&worker);
    let err = block_on(router.create_webrtc_transport(WebRtcTransportOptions::new(vec![]))).err().unwrap();
    assert_eq!(err.kind(), shardsfu_engine::ErrorKind::TypeError);
    let sctp = WebRtcTransportOptions { enable_sctp: true, ..WebRtcTransportOptions::new(vec![listen(Protocol::Udp)]) };
    let err = block_on(router.create_webrtc_transport(sctp)).err().unwrap();
    assert_eq!(err.kind(), shardsfu_engine::ErrorKind::UnsupportedError);
    let t = transport(&router, WebRtcTransportOptions::new(vec![listen(Protocol::Udp)]));
    let empty = DtlsParameters { role: Some(DtlsRole::Client), fingerprints: vec![] };
    let err = block_on(t.connect(WebRtcTransportConnect { dtls_parameters: empty })).unwrap_err();
    assert_eq!(err.kind(), shardsfu_engine::ErrorKind::TypeError);
    let cert = DtlsCertificate::generate().unwrap();
    let ok = DtlsParameters { role: Some(DtlsRole::Client), fingerprints: cert.fingerprints().to_vec() };
    block_on(t.connect(WebRtcTransportConnect { dtls_parameters: ok.clone() })).unwrap();
    let err = block_on(t.connect(WebRtcTransportConnect { dtls_parameters: ok })).unwrap_err();
    assert_eq!(err.kind(), shardsfu_engine::ErrorKind::InvalidStateError);
}

#[test]
fn a_room_of_webrtc_transports_over_two_shards() {
    let engine = spread_engine();
    let worker = worker(&engine);
    let router = router(&worker);
    let publisher = transport(&router, WebRtcTransportOptions::new(vec![listen(Protocol::Udp)]));
    let mut pp = WirePeer::connect(&publisher, Protocol::Udp);
    bring_up(&publisher, &mut pp, DtlsSide::Client);
    let producer = block_on(publisher.produce(ProducerOptions::new(MediaKind::Video, vp8_params(1111, None)))).unwrap();
    let mut subs = Vec::new();
    for _ in 0..4 {
        let t = transport(&router, WebRtcTransportOptions::new(vec![listen(Protocol::Udp)]));
        let mut peer = WirePeer::connect(&t, Protocol::Udp);
        bring_up(&t, &mut peer, DtlsSide::Client);
        let c = block_on(t.consume(ConsumerOptions::new(producer.id(), router.rtp_capabilities().clone()))).unwrap();
        subs.push((t, c, peer));
    }
    assert!(subs.iter().any(|(t, _, _)| t.shard() != publisher.shard()), "the room spans both shards");
    // The consumers on the other shard asked for a key frame: it reaches the publisher as SRTCP PLI.
    let pli = pp.recv_rtcp_until(|rtcp| {
        let mut found = false;
        let _ = shardsfu_engine::rtp::rtcp::parse_compound(rtcp, |item| found |= is_pli_for(&item, 1111));
        found
    });
    assert!(pli.is_some(), "the publisher got a PLI");
    for seq in 0..10u16 {
        let body = format!("spanning frame {seq}");
        pp.send_rtp(&vp8(seq, 1111, seq == 0, body.as_bytes()));
        for (t, c, peer) in subs.iter_mut() {
            let got = peer.recv_rtp().unwrap_or_else(|| panic!("shard {} consumer got packet {seq}", t.shard()));
            assert_eq!(ssrc_of(&got), c.rtp_parameters().encodings.as_ref().unwrap()[0].ssrc.unwrap());
            assert!(payload_of(&got).ends_with(body.as_bytes()));
        }
    }
}

#[test]
fn the_worker_certificate_comes_from_its_settings_files() {
    use shardsfu_engine::WorkerSettings;
    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["sfu.example".to_string()]).unwrap().self_signed(&key_pair).unwrap();
    let dir = std::env::temp_dir().join(format!("shardsfu-worker-cert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key_pair.serialize_pem()).unwrap();
    let expected = DtlsCertificate::from_pem(&cert.pem(), &key_pair.serialize_pem()).unwrap();

    let engine = engine(1);
    let settings = WorkerSettings {
        dtls_certificate_file: Some(cert_file.display().to_string()),
        dtls_private_key_file: Some(key_file.display().to_string()),
        ..WorkerSettings::default()
    };
    let worker = block_on(engine.create_worker(settings.clone())).unwrap();
    let router = router(&worker);
    let t = transport(&router, WebRtcTransportOptions::new(vec![listen(Protocol::Udp)]));
    assert_eq!(t.dtls_parameters().fingerprints, expected.fingerprints());
    // The handshake authenticates with it: the peer trusts exactly those fingerprints.
    let mut peer = WirePeer::connect(&t, Protocol::Udp);
    bring_up(&t, &mut peer, DtlsSide::Client);

    let half = WorkerSettings { dtls_private_key_file: None, ..settings.clone() };
    let err = block_on(engine.create_worker(half)).err().unwrap();
    assert_eq!(err.kind(), shardsfu_engine::ErrorKind::TypeError);
    let missing = WorkerSettings { dtls_certificate_file: Some("/nonexistent/cert.pem".into()), ..settings };
    assert!(block_on(engine.create_worker(missing)).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn max_incoming_bitrate_reaches_the_sender_as_a_remb() {
    let engine = engine(1);
    let worker = worker(&engine);
    let router = router(&worker);
    let publisher = transport(&router, WebRtcTransportOptions::new(vec![listen(Protocol::Udp)]));
    let mut pp = WirePeer::connect(&publisher, Protocol::Udp);
    bring_up(&publisher, &mut pp, DtlsSide::Client);
    let _producer =
        block_on(publisher.produce(ProducerOptions::new(MediaKind::Video, vp8_params(1111, None)))).unwrap();
    pp.send_rtp(&vp8(1, 1111, true, b"first"));
    publisher.set_max_incoming_bitrate(250_000).unwrap();
    // It comes with the next RTCP report (within a second), SRTCP-protected like all RTCP.
    let remb = pp.recv_rtcp_until(|rtcp| {
        let mut found = false;
        let _ = shardsfu_engine::rtp::rtcp::parse_compound(rtcp, |item| {
            if let shardsfu_engine::rtp::RtcpItem::Remb { bitrate_bps, ssrcs, .. } = item {
                found |= bitrate_bps == 250_000 && ssrcs.collect::<Vec<_>>() == [1111];
            }
        });
        found
    });
    assert!(remb.is_some(), "the publisher got a REMB of 250 kbit/s for its stream");
    engine.close();
}
