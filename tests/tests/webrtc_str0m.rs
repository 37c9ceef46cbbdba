//! An independent WebRTC stack against the engine: str0m peers (ICE-controlling, DTLS, SRTP of
//! their own) publish audio and video through WebRtcTransports and other str0m peers receive it,
//! byte for byte: for each SRTP profile str0m has, over UDP and ICE-TCP, through plain transports
//! and a WebRtcServer; ICE restart, consent expiry and a wrong fingerprint.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use shardsfu_engine::rtp_parameters::{MediaKind, RtpCodecParameters, RtpEncodingParameters, RtpParameters};
use shardsfu_engine::webrtc::cert::{DtlsFingerprint, DtlsParameters, DtlsRole as EngineRole, DtlsState};
use shardsfu_engine::webrtc::ice::IceState;
use shardsfu_engine::webrtc::srtp::SrtpProfile as EngineProfile;
use shardsfu_engine::{
    block_on, ConsumerOptions, Producer, ProducerOptions, Protocol, Router, TransportListenInfo, WebRtcServerOptions,
    WebRtcTransport, WebRtcTransportConnect, WebRtcTransportOptions,
};
use shardsfu_tests::str0m_peer::{drive_pair, run_pair_until, DtlsRole, IceProto, PeerConfig, SrtpProfile, Str0mPeer};
use shardsfu_tests::*;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const CONNECT: Duration = Duration::from_secs(10);
const AUDIO_SSRC: u32 = 0x1111_0001;
const VIDEO_SSRC: u32 = 0x2222_0001;

fn listen(protocol: Protocol) -> TransportListenInfo {
    TransportListenInfo { protocol, ..TransportListenInfo::udp("127.0.0.1") }
}

fn create(router: &Router, options: WebRtcTransportOptions) -> WebRtcTransport {
    block_on(router.create_webrtc_transport(options)).expect("webrtc transport")
}

/// A str0m peer connected to `t` over `proto`, as DTLS `role`; the transport's `connect` gets
/// the peer's parameters (role and fingerprint), as mediasoup-client would send them.
fn peer_for(t: &WebRtcTransport, name: &str, proto: Protocol, role: DtlsRole) -> Str0mPeer {
    let mut config = match proto {
        Protocol::Udp => PeerConfig::udp(name, SocketAddr::new(LOOPBACK, 0)),
        Protocol::Tcp => PeerConfig::tcp_active(name, LOOPBACK),
    };
    config.stun_max_rto = Some(Duration::from_millis(500));
    let mut peer = Str0mPeer::new(config).expect("str0m peer");
    let ice = t.ice_parameters();
    let candidates: Vec<(SocketAddr, IceProto)> = t
        .ice_candidates()
        .iter()
        .filter(|c| c.protocol == proto)
        .map(|c| {
            let addr = SocketAddr::new(c.address.parse().unwrap(), c.port);
            (addr, if proto == Protocol::Udp { IceProto::Udp } else { IceProto::Tcp })
        })
        .collect();
    let fps: Vec<(String, String)> =
        t.dtls_parameters().fingerprints.iter().map(|f| (f.algorithm.as_str().to_owned(), f.value.clone())).collect();
    let fps: Vec<(&str, &str)> = fps.iter().map(|(a, v)| (a.as_str(), v.as_str())).collect();
    peer.connect(&ice.username_fragment, &ice.password, &candidates, &fps, role).expect("peer connect");
    let (algorithm, value) = peer.local_fingerprint();
    let fingerprint: DtlsFingerprint =
        serde_json::from_value(serde_json::json!({ "algorithm": algorithm, "value": value })).unwrap();
    let engine_role = match role {
        DtlsRole::Client => EngineRole::Client,
        DtlsRole::Server => EngineRole::Server,
    };
    block_on(t.connect(WebRtcTransportConnect {
        dtls_parameters: DtlsParameters { role: Some(engine_role), fingerprints: vec![fingerprint] },
    }))
    .expect("transport connect");
    peer
}

fn opus_params(ssrc: u32) -> RtpParameters {
    RtpParameters {
        mid: Some("0".into()),
        codecs: vec![RtpCodecParameters {
            mime_type: "audio/opus".into(),
            payload_type: 100,
            clock_rate: 48000,
            channels: Some(2),
            parameters: None,
            rtcp_feedback: None,
        }],
        encodings: Some(vec![RtpEncodingParameters { ssrc: Some(ssrc), ..Default::default() }]),
        ..Default::default()
    }
}

/// The publisher's audio (opus, PT 100) and video (VP8, PT 96) producers.
fn produce(t: &WebRtcTransport) -> (Producer, Producer) {
    let audio = block_on(t.produce(ProducerOptions::new(MediaKind::Audio, opus_params(AUDIO_SSRC)))).unwrap();
    let mut video = vp8_params(VIDEO_SSRC, None);
    video.mid = Some("1".into());
    let video = block_on(t.produce(ProducerOptions::new(MediaKind::Video, video))).unwrap();
    (audio, video)
}

/// Consumers of both on `t`, declared on the subscriber; their (SSRC, payload type).
fn consume(
    router: &Router,
    t: &WebRtcTransport,
    sub: &mut Str0mPeer,
    producers: &(Producer, Producer),
) -> [(u32, u8); 2] {
    let mut out = [(0, 0); 2];
    for (i, p) in [&producers.0, &producers.1].into_iter().enumerate() {
        let c = block_on(t.consume(ConsumerOptions::new(p.id(), router.rtp_capabilities().clone()))).unwrap();
        let params = c.rtp_parameters();
        let ssrc = params.encodings.as_ref().unwrap()[0].ssrc.unwrap();
        let pt = params.codecs[0].payload_type;
        sub.declare_recv(params.mid.as_deref().unwrap(), ssrc, None, pt).unwrap();
        out[i] = (ssrc, pt);
    }
    out
}

/// `n` audio and video packets from `publ`; each arrives at `sub` with its bytes.
fn media_flows(publ: &mut Str0mPeer, sub: &mut Str0mPeer, wire: [(u32, u8); 2], first_seq: u16, n: u16) {
    for i in 0..n {
        let seq = first_seq.wrapping_add(i);
        let audio: Vec<u8> = (0..60u16).map(|k| (k ^ seq) as u8).collect();
        let mut video = if i == 0 { vp8_key_payload() } else { vec![0x10, 0x01] };
        video.extend((0..900u16).map(|k| (k.wrapping_mul(7) ^ seq) as u8));
        publ.send_rtp(AUDIO_SSRC, seq, u32::from(seq) * 960, false, &audio).unwrap();
        publ.send_rtp(VIDEO_SSRC, seq, u32::from(seq) * 3000, true, &video).unwrap();
        run_pair_until(publ, sub, "audio and video packet through the SFU", CONNECT, |_, s| {
            s.received_of(wire[0].0).any(|p| p.payload == audio) && s.received_of(wire[1].0).any(|p| p.payload == video)
        })
        .unwrap();
    }
    let audio_in: Vec<_> = sub.received_of(wire[0].0).collect();
    assert!(audio_in.iter().all(|p| p.payload_type == wire[0].1), "audio carries the consumer's payload type");
    let video_in: Vec<_> = sub.received_of(wire[1].0).collect();
    assert!(video_in.iter().all(|p| p.payload_type == wire[1].1), "video carries the consumer's payload type");
}

/// A VP8 key frame start (so video consumers, waiting for one, start at once).
fn vp8_key_payload() -> Vec<u8> {
    vec![0x10, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]
}

struct Room {
    router: Router,
    publ_t: WebRtcTransport,
    sub_t: WebRtcTransport,
    publ: Str0mPeer,
    sub: Str0mPeer,
    wire: [(u32, u8); 2],
}

/// A publisher and a subscriber, connected, with audio and video producers and consumers.
fn room(
    router: Router,
    publ_t: WebRtcTransport,
    sub_t: WebRtcTransport,
    proto: Protocol,
    roles: [DtlsRole; 2],
) -> Room {
    let mut publ = peer_for(&publ_t, "publisher", proto, roles[0]);
    let mut sub = peer_for(&sub_t, "subscriber", proto, roles[1]);
    run_pair_until(&mut publ, &mut sub, "both peers connected", CONNECT, |a, b| a.is_connected() && b.is_connected())
        .unwrap();
    let producers = produce(&publ_t);
    publ.declare_send("0", AUDIO_SSRC, None, 100).unwrap();
    publ.declare_send("1", VIDEO_SSRC, None, 96).unwrap();
    let wire = consume(&router, &sub_t, &mut sub, &producers);
    Room { router, publ_t, sub_t, publ, sub, wire }
}

#[test]
fn str0m_publishes_to_str0m_through_the_sfu_with_each_srtp_profile() {
    let engine = engine(1);
    let worker = worker(&engine);
    for (ours, theirs) in [
        (EngineProfile::AeadAes256Gcm, SrtpProfile::AeadAes256Gcm),
        (EngineProfile::AeadAes128Gcm, SrtpProfile::AeadAes128Gcm),
        (EngineProfile::AesCm128HmacSha1_80, SrtpProfile::AesCm128HmacSha1_80),
    ] {
        let router = router(&worker);
        let options = || WebRtcTransportOptions {
            srtp_crypto_suites: Some(vec![ours]),
            ..WebRtcTransportOptions::new(vec![listen(Protocol::Udp)])
        };
        let (a, b) = (create(&router, options()), create(&router, options()));
        // The publisher is DTLS client (the SFU answers as server), the subscriber DTLS server.
        let mut r = room(router, a, b, Protocol::Udp, [DtlsRole::Client, DtlsRole::Server]);
        assert_eq!(r.publ.srtp_profile(), Some(theirs), "negotiated with the publisher");
        media_flows(&mut r.publ, &mut r.sub, r.wire, 1, 10);
        assert_eq!(r.publ_t.dtls_state(), DtlsState::Connected);
        assert_eq!(r.sub_t.ice_state(), IceState::Completed);
        let stats = block_on(r.publ_t.dump()).unwrap();
        assert_eq!(stats["srtpCryptoSuite"], serde_json::json!(ours), "{ours:?}");
        let _ = &r.router;
    }
}

#[test]
fn str0m_over_ice_tcp_through_a_webrtc_server() {
    let engine = engine(2);
    let worker = worker(&engine);
    let server = block_on(worker.create_webrtc_server(WebRtcServerOptions {
        listen_infos: vec![listen(Protocol::Udp), listen(Protocol::Tcp)],
        app_data: Default::default(),
    }))
    .unwrap();
    let router = router(&worker);
    let tcp = || WebRtcTransportOptions { enable_udp: false, ..WebRtcTransportOptions::with_server(&server) };
    let (a, b) = (create(&router, tcp()), create(&router, tcp()));
    let mut r = room(router, a, b, Protocol::Tcp, [DtlsRole::Client, DtlsRole::Client]);
    media_flows(&mut r.publ, &mut r.sub, r.wire, 1, 10);
    assert_eq!(r.publ_t.ice_selected_tuple().unwrap().protocol, Protocol::Tcp);
    assert_eq!(r.sub_t.ice_selected_tuple().unwrap().protocol, Protocol::Tcp);
}

#[test]
fn str0m_over_udp_through_a_webrtc_server() {
    let engine = engine(1);
    let worker = worker(&engine);
    let server = block_on(worker.create_webrtc_server(WebRtcServerOptions {
        listen_infos: vec![listen(Protocol::Udp)],
        app_data: Default::default(),
    }))
    .unwrap();
    let router = router(&worker);
    let (a, b) = (
        create(&router, WebRtcTransportOptions::with_server(&server)),
        create(&router, WebRtcTransportOptions::with_server(&server)),
    );
    let mut r = room(router, a, b, Protocol::Udp, [DtlsRole::Client, DtlsRole::Client]);
    media_flows(&mut r.publ, &mut r.sub, r.wire, 1, 10);
}

#[test]
fn ice_restart_with_str0m_keeps_media_flowing() {
    let engine = engine(1);
    let worker = worker(&engine);
    let router = router(&worker);
    let (a, b) = (
        create(&router, WebRtcTransportOptions::new(vec![listen(Protocol::Udp)])),
        create(&router, WebRtcTransportOptions::new(vec![listen(Protocol::Udp)])),
    );
    let mut r = room(router, a, b, Protocol::Udp, [DtlsRole::Client, DtlsRole::Client]);
    media_flows(&mut r.publ, &mut r.sub, r.wire, 1, 5);
    let new = block_on(r.publ_t.restart_ice()).unwrap();
    r.publ.restart_ice(&new.username_fragment, &new.password, None);
    // Consent checks with the new credentials pass; media keeps flowing on the same tuple.
    drive_pair(&mut r.publ, &mut r.sub, Duration::from_millis(1500)).unwrap();
    media_flows(&mut r.publ, &mut r.sub, r.wire, 100, 5);
    assert_eq!(r.publ_t.ice_state(), IceState::Completed);
    let _ = &r.router;
}

#[test]
fn consent_expiry_ends_the_flow() {
    let engine = engine(1);
    let worker = worker(&engine);
    let router = router(&worker);
    // mediasoup clamps iceConsentTimeout to at least 10 s.
    let options = || WebRtcTransportOptions {
        ice_consent_timeout: 10,
        ..WebRtcTransportOptions::new(vec![listen(Protocol::Udp)])
    };
    let (a, b) = (create(&router, options()), create(&router, options()));
    let mut r = room(router, a, b, Protocol::Udp, [DtlsRole::Client, DtlsRole::Client]);
    media_flows(&mut r.publ, &mut r.sub, r.wire, 1, 3);
    // The subscriber goes silent (no consent requests): after the timeout its transport is
    // disconnected and nothing is sent to it any more.
    r.sub.stop();
    let sub_t = r.sub_t.clone();
    let disconnected = run_pair_until(
        &mut r.publ,
        &mut r.sub,
        "the subscriber's ICE disconnected",
        Duration::from_secs(20),
        |_, _| sub_t.ice_state() == IceState::Disconnected,
    );
    disconnected.unwrap();
    assert!(r.sub_t.ice_selected_tuple().is_none());
    assert_eq!(r.publ_t.ice_state(), IceState::Completed, "the publisher kept consent");
}

#[test]
fn a_wrong_fingerprint_is_refused() {
    let engine = engine(1);
    let worker = worker(&engine);
    let router = router(&worker);
    let t = create(&router, WebRtcTransportOptions::new(vec![listen(Protocol::Udp)]));
    let mut config = PeerConfig::udp("impostor", SocketAddr::new(LOOPBACK, 0));
    config.stun_max_rto = Some(Duration::from_millis(500));
    let mut peer = Str0mPeer::new(config).unwrap();
    let ice = t.ice_parameters();
    let c = &t.ice_candidates()[0];
    let fps: Vec<(String, String)> =
        t.dtls_parameters().fingerprints.iter().map(|f| (f.algorithm.as_str().to_owned(), f.value.clone())).collect();
    let fps: Vec<(&str, &str)> = fps.iter().map(|(a, v)| (a.as_str(), v.as_str())).collect();
    let remote = SocketAddr::new(c.address.parse().unwrap(), c.port);
    peer.connect(&ice.username_fragment, &ice.password, &[(remote, IceProto::Udp)], &fps, DtlsRole::Client).unwrap();
    // The SFU is told a fingerprint that is not the peer's certificate's.
    let wrong: DtlsFingerprint =
        serde_json::from_value(serde_json::json!({ "algorithm": "sha-256", "value": vec!["AB"; 32].join(":") }))
            .unwrap();
    block_on(t.connect(WebRtcTransportConnect {
        dtls_parameters: DtlsParameters { role: Some(EngineRole::Client), fingerprints: vec![wrong] },
    }))
    .unwrap();
    let t2 = t.clone();
    peer.run_until("the SFU's DTLS failed", CONNECT, |_| t2.dtls_state() == DtlsState::Failed).unwrap();
    assert!(!peer.is_connected(), "no SRTP with a peer whose certificate does not match");
}
