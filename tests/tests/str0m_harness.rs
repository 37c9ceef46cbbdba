//! The str0m peer harness proves itself without the engine: two `Str0mPeer`s on loopback, one
//! ICE-controlling and one controlled (or ICE-lite, as the engine is), DTLS client and server,
//! over UDP and RFC 4571 TCP, and media sent by one arrives byte-exact at the other.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use shardsfu_tests::str0m_peer::{
    drive_pair, run_pair_until, DtlsRole, IceProto, PeerConfig, PeerEvent, ReceivedRtp, SrtpProfile, Str0mPeer,
};
use str0m::config::DtlsVersion;
use str0m::crypto::dtls::ProtocolVersion;
use str0m::media::KeyframeRequestKind;
use str0m::IceConnectionState;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const ANY_PORT: SocketAddr = SocketAddr::new(LOOPBACK, 0);
/// Generous bound for a loopback handshake (never a speed assertion).
const CONNECT: Duration = Duration::from_secs(10);
const ARRIVAL: Duration = Duration::from_secs(5);

const OPUS_PT: u8 = 100;
const VP8_PT: u8 = 101;
const AUDIO_SSRC: u32 = 0x1111_0001;
const VIDEO_SSRC: u32 = 0x2222_0001;
const VIDEO_RTX_SSRC: u32 = 0x2222_0002;
const BACK_SSRC: u32 = 0x3333_0001;

/// The controlled side as the engine is: answers only, learns the client from its checks.
fn server_config(mut c: PeerConfig) -> PeerConfig {
    c.ice_controlling = false;
    c.ice_lite = true;
    c
}

/// Hand each peer the other's parameters, as the engine-side tests will with the transport's:
/// the controlling peer gets the server's candidates; the server gets none.
fn connect(client: &mut Str0mPeer, server: &mut Str0mPeer, client_role: DtlsRole) {
    let (cu, cp) = client.local_ice();
    let (su, sp) = server.local_ice();
    let cfp = client.local_fingerprint();
    let sfp = server.local_fingerprint();
    let server_candidates = server.local_candidates().to_vec();
    client.connect(&su, &sp, &server_candidates, &[(&sfp.0, &sfp.1)], client_role).unwrap();
    server.connect(&cu, &cp, &[], &[(&cfp.0, &cfp.1)], client_role.remote()).unwrap();
    run_pair_until(client, server, "both peers connected", CONNECT, |a, b| a.is_connected() && b.is_connected())
        .unwrap();
}

/// A VP8-looking payload that differs per packet.
fn payload(i: u16, len: usize) -> Vec<u8> {
    let mut p = vec![0x10, if i == 0 { 0x00 } else { 0x01 }];
    p.extend((0..len).map(|k| (k as u16).wrapping_mul(31).wrapping_add(i) as u8));
    p
}

/// Send `n` packets per stream (audio and video from client, video back from server) and check
/// every field and byte at the other end.
fn exchange_media(client: &mut Str0mPeer, server: &mut Str0mPeer, n: u16) {
    client.declare_send("0", AUDIO_SSRC, None, OPUS_PT).unwrap();
    client.declare_send("1", VIDEO_SSRC, Some(VIDEO_RTX_SSRC), VP8_PT).unwrap();
    server.declare_recv("0", AUDIO_SSRC, None, OPUS_PT).unwrap();
    server.declare_recv("1", VIDEO_SSRC, Some(VIDEO_RTX_SSRC), VP8_PT).unwrap();
    server.declare_send("2", BACK_SSRC, None, VP8_PT).unwrap();
    client.declare_recv("2", BACK_SSRC, None, VP8_PT).unwrap();

    // Sequence numbers cross the 16-bit wrap; sizes up to a full-MTU payload.
    let seq0: u16 = 65_530;
    let mut sent_audio = Vec::new();
    let mut sent_video = Vec::new();
    let mut sent_back = Vec::new();
    for i in 0..n {
        let seq = seq0.wrapping_add(i);
        let audio = ReceivedRtp {
            ssrc: AUDIO_SSRC,
            seq,
            timestamp: 1_000_000 + u32::from(i) * 960,
            payload_type: OPUS_PT,
            marker: i == 0,
            payload: payload(i, 40 + usize::from(i) % 80),
        };
        let video = ReceivedRtp {
            ssrc: VIDEO_SSRC,
            seq,
            timestamp: 3_000_000 + u32::from(i / 2) * 3000,
            payload_type: VP8_PT,
            marker: i % 2 == 1,
            payload: payload(i, 1000 + usize::from(i) * 7),
        };
        let back = ReceivedRtp { ssrc: BACK_SSRC, seq: i, ..video.clone() };
        for p in [&audio, &video] {
            client.send_rtp(p.ssrc, p.seq, p.timestamp, p.marker, &p.payload).unwrap();
        }
        server.send_rtp(back.ssrc, back.seq, back.timestamp, back.marker, &back.payload).unwrap();
        sent_audio.push(audio);
        sent_video.push(video);
        sent_back.push(back);
        drive_pair(client, server, Duration::from_millis(5)).unwrap();
    }
    let n = usize::from(n);
    run_pair_until(client, server, "every packet of the three streams", ARRIVAL, |c, s| {
        s.received_of(AUDIO_SSRC).count() >= n
            && s.received_of(VIDEO_SSRC).count() >= n
            && c.received_of(BACK_SSRC).count() >= n
    })
    .unwrap();
    let got = |p: &Str0mPeer, ssrc| p.received_of(ssrc).cloned().collect::<Vec<_>>();
    assert_eq!(got(server, AUDIO_SSRC), sent_audio, "audio at the server");
    assert_eq!(got(server, VIDEO_SSRC), sent_video, "video at the server");
    assert_eq!(got(client, BACK_SSRC), sent_back, "video back at the client");
}

fn udp_pair(client_controlling_name: &str) -> (Str0mPeer, Str0mPeer) {
    let client = Str0mPeer::new_udp(client_controlling_name, ANY_PORT).unwrap();
    let server = Str0mPeer::new(server_config(PeerConfig::udp("server", ANY_PORT))).unwrap();
    (client, server)
}

#[test]
fn udp_dtls_client_is_ice_controlling() {
    let (mut client, mut server) = udp_pair("client");
    connect(&mut client, &mut server, DtlsRole::Client);
    assert_eq!(client.ice_state(), IceConnectionState::Completed, "{}", client.status());
    exchange_media(&mut client, &mut server, 40);
}

#[test]
fn udp_dtls_server_is_ice_controlling() {
    let (mut client, mut server) = udp_pair("client");
    connect(&mut client, &mut server, DtlsRole::Server);
    assert_eq!(client.dtls_role(), Some(DtlsRole::Server));
    exchange_media(&mut client, &mut server, 40);
}

/// Two full ICE agents (no ICE-lite), the controlled one also told the controlling one's candidate.
#[test]
fn udp_full_ice_on_both_sides() {
    let mut a = Str0mPeer::new_udp("controlling", ANY_PORT).unwrap();
    let mut cfg = PeerConfig::udp("controlled", ANY_PORT);
    cfg.ice_controlling = false;
    let mut b = Str0mPeer::new(cfg).unwrap();
    let (au, ap) = a.local_ice();
    let (bu, bp) = b.local_ice();
    let afp = a.local_fingerprint();
    let bfp = b.local_fingerprint();
    let (ac, bc) = (a.local_candidates().to_vec(), b.local_candidates().to_vec());
    a.connect(&bu, &bp, &bc, &[(&bfp.0, &bfp.1)], DtlsRole::Client).unwrap();
    b.connect(&au, &ap, &ac, &[(&afp.0, &afp.1)], DtlsRole::Server).unwrap();
    run_pair_until(&mut a, &mut b, "both connected", CONNECT, |a, b| a.is_connected() && b.is_connected()).unwrap();
    exchange_media(&mut a, &mut b, 10);
}

/// str0m offers (as DTLS client) and prefers (as server) AEAD_AES_256_GCM first, and has no knob
/// for either, so two str0m peers always agree on it, whichever side is the DTLS server.
#[test]
fn two_str0m_peers_agree_on_aes_256_gcm() {
    for role in [DtlsRole::Client, DtlsRole::Server] {
        let (mut client, mut server) = udp_pair("client");
        connect(&mut client, &mut server, role);
        assert_eq!(client.srtp_profile(), Some(SrtpProfile::AeadAes256Gcm), "{}", client.status());
        assert_eq!(server.srtp_profile(), Some(SrtpProfile::AeadAes256Gcm), "{}", server.status());
        assert_eq!(client.dtls_version(), Some(ProtocolVersion::DTLS1_2));
    }
    assert!(!SrtpProfile::STR0M_SUPPORTED.contains(&SrtpProfile::AesCm128HmacSha1_32));
}

/// DTLS 1.3 works between str0m peers; its ServerHello hides the SRTP profile from the sniffer.
#[test]
fn udp_dtls_13() {
    let mut cc = PeerConfig::udp("client", ANY_PORT);
    cc.dtls_version = DtlsVersion::Dtls13;
    let mut sc = server_config(PeerConfig::udp("server", ANY_PORT));
    sc.dtls_version = DtlsVersion::Dtls13;
    let (mut client, mut server) = (Str0mPeer::new(cc).unwrap(), Str0mPeer::new(sc).unwrap());
    connect(&mut client, &mut server, DtlsRole::Client);
    assert_eq!(client.dtls_version(), Some(ProtocolVersion::DTLS1_3));
    assert_eq!(client.srtp_profile(), None);
    exchange_media(&mut client, &mut server, 10);
}

/// ICE-TCP: an active client candidate connects to a passive server one; RFC 4571 frames.
#[test]
fn tcp_active_to_passive() {
    for role in [DtlsRole::Client, DtlsRole::Server] {
        let mut client = Str0mPeer::new_tcp("tcp-client", LOOPBACK).unwrap();
        let mut server = Str0mPeer::new(server_config(PeerConfig::tcp_passive("tcp-server", ANY_PORT))).unwrap();
        assert!(client.local_candidates().is_empty(), "active candidates exist only after connect");
        connect(&mut client, &mut server, role);
        assert_eq!(client.local_candidates().len(), 1);
        assert_eq!(client.local_candidates()[0].1, IceProto::Tcp);
        exchange_media(&mut client, &mut server, 30);
        assert_eq!(client.counters().tcp_unroutable, 0, "{}", client.status());
    }
}

/// The receiver asks for a key frame; the sender sees the request on the stream's MID.
#[test]
fn keyframe_request_reaches_the_sender() {
    let (mut client, mut server) = udp_pair("client");
    connect(&mut client, &mut server, DtlsRole::Client);
    client.declare_send("v", VIDEO_SSRC, None, VP8_PT).unwrap();
    server.declare_recv("v", VIDEO_SSRC, None, VP8_PT).unwrap();
    client.send_rtp(VIDEO_SSRC, 1, 90_000, true, &payload(0, 100)).unwrap();
    run_pair_until(&mut client, &mut server, "the first packet", ARRIVAL, |_, s| s.received().len() == 1).unwrap();
    server.request_keyframe(VIDEO_SSRC, KeyframeRequestKind::Pli).unwrap();
    let want = PeerEvent::KeyframeRequest { mid: "v".into(), kind: KeyframeRequestKind::Pli };
    run_pair_until(&mut client, &mut server, "a PLI at the sender", ARRIVAL, |c, _| c.events().contains(&want))
        .unwrap();
}

/// A packet lost on the way is NACKed by the receiving str0m and resent by the sending one on
/// its RTX SSRC; the receiver sees it under the original SSRC and sequence number, byte-exact.
#[test]
fn lost_packet_is_repaired_over_rtx() {
    let (mut client, mut server) = udp_pair("client");
    connect(&mut client, &mut server, DtlsRole::Client);
    client.declare_send("v", VIDEO_SSRC, Some(VIDEO_RTX_SSRC), VP8_PT).unwrap();
    server.declare_recv("v", VIDEO_SSRC, Some(VIDEO_RTX_SSRC), VP8_PT).unwrap();
    client.drop_outgoing_rtp(VIDEO_SSRC, 5);
    for seq in 0..10u16 {
        client.send_rtp(VIDEO_SSRC, seq, u32::from(seq) * 3000, true, &payload(seq, 300)).unwrap();
        drive_pair(&mut client, &mut server, Duration::from_millis(10)).unwrap();
    }
    run_pair_until(&mut client, &mut server, "all 10 packets, the lost one repaired", ARRIVAL, |_, s| {
        s.received_of(VIDEO_SSRC).count() == 10
    })
    .unwrap();
    let repaired = server.received_of(VIDEO_SSRC).find(|p| p.seq == 5).unwrap();
    assert_eq!(repaired.payload, payload(5, 300));
    assert_eq!((repaired.timestamp, repaired.payload_type), (15_000, VP8_PT));
    // It came after the one sent behind it, whose arrival revealed the gap.
    let at = |seq| server.received().iter().position(|p| p.seq == seq).unwrap();
    assert!(at(5) > at(6), "the repair of 5 arrived before 6: {:?}", server.received());
}

/// A client that gives up on a silent server within about 2 s (str0m's default is about 20 s).
fn impatient_client() -> Str0mPeer {
    let mut c = PeerConfig::udp("client", ANY_PORT);
    c.stun_max_rto = Some(Duration::from_millis(500));
    c.stun_max_retransmits = Some(3);
    Str0mPeer::new(c).unwrap()
}

fn impatient_pair() -> (Str0mPeer, Str0mPeer) {
    (impatient_client(), Str0mPeer::new(server_config(PeerConfig::udp("server", ANY_PORT))).unwrap())
}

/// New server credentials mid-session (what mediasoup's restartIce hands out): a client told of
/// them keeps its connection and media flowing; one not told loses it (so the change is real).
#[test]
fn ice_credentials_change() {
    const NEW_UFRAG: &str = "newsrvufrag";
    const NEW_PWD: &str = "newserverpassword0123456";
    for told in [true, false] {
        let (mut client, mut server) = impatient_pair();
        connect(&mut client, &mut server, DtlsRole::Client);
        let (cu, cp) = client.local_ice();
        server.restart_ice(&cu, &cp, Some((NEW_UFRAG, NEW_PWD)));
        if told {
            client.restart_ice(NEW_UFRAG, NEW_PWD, None);
            // Several rounds of the client's checks, past the time a stale one needs to give up.
            drive_pair(&mut client, &mut server, Duration::from_secs(5)).unwrap();
            assert_ne!(client.ice_state(), IceConnectionState::Disconnected, "{}", client.status());
            exchange_media(&mut client, &mut server, 10);
        } else {
            run_pair_until(&mut client, &mut server, "a stale client to disconnect", CONNECT, |c, _| {
                c.ice_state() == IceConnectionState::Disconnected
            })
            .unwrap();
        }
    }
}

/// After `stop()` a peer answers nothing: the other side's ICE goes Disconnected.
#[test]
fn stopped_peer_answers_nothing() {
    let (mut client, mut server) = impatient_pair();
    connect(&mut client, &mut server, DtlsRole::Client);
    server.stop();
    let received = server.counters().datagrams_received;
    run_pair_until(&mut client, &mut server, "client ICE disconnected", CONNECT, |c, _| {
        c.ice_state() == IceConnectionState::Disconnected
    })
    .unwrap();
    assert_eq!(server.counters().datagrams_received, received, "a stopped peer takes nothing in");
}

/// A time-out names what it waited for and where the peer stood.
#[test]
fn timeouts_say_what_they_waited_for() {
    let mut p = Str0mPeer::new_udp("lonely", ANY_PORT).unwrap();
    let err = p.wait_connected(Duration::from_millis(50)).unwrap_err().to_string();
    assert!(err.contains("ICE + DTLS connected (peer 'lonely')"), "{err}");
    assert!(err.contains("connect not called"), "{err}");
    let err = p.declare_send("0", 1, None, 55).unwrap_err().to_string();
    assert!(err.contains("payload type 55 is not among the peer's codecs"), "{err}");
    let err = p.connect("u", "p", &[], &[("sha-256", "00")], DtlsRole::Client).unwrap_err().to_string();
    assert!(err.contains("needs at least one remote candidate"), "{err}");
}
