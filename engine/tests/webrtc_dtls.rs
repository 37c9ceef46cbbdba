//! DTLS-SRTP between two in-memory `DtlsSession`s on simulated time: handshake (with and without
//! a lost flight), mirrored SRTP keys, media across the exported keys for every profile,
//! fingerprint mismatch, close_notify, certificates and mediasoup's JSON shapes.

use std::time::{Duration, Instant};

use shardsfu_engine::webrtc::cert::{
    DtlsCertificate, DtlsFingerprint, DtlsParameters, DtlsRole, DtlsState, FingerprintAlgorithm,
};
use shardsfu_engine::webrtc::dtls::{
    DtlsError, DtlsEvent, DtlsFailure, DtlsSession, DtlsSide, MAX_DTLS_DATAGRAM_BYTES,
};
use shardsfu_engine::webrtc::srtp::{SrtpKeys, SrtpProfile, SrtpSession};

/// Simulated-time steps before a drive gives up.
const STEPS_MAX: usize = 200;

struct Peer {
    session: DtlsSession,
    events: Vec<DtlsEvent>,
}

impl Peer {
    fn connected(&self) -> Option<(SrtpProfile, &SrtpKeys, &SrtpKeys)> {
        self.events.iter().find_map(|event| match event {
            DtlsEvent::Connected { profile, local, remote } => Some((*profile, local, remote)),
            _ => None,
        })
    }

    fn failure(&self) -> Option<&DtlsFailure> {
        self.events.iter().find_map(|event| match event {
            DtlsEvent::Failed(failure) => Some(failure),
            _ => None,
        })
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            self.events.push(event);
        }
    }
}

/// Moves every queued datagram of `from` to `to`; `drop` decides per datagram whether it is lost.
/// Returns how many were taken from `from`.
fn deliver(from: &mut Peer, to: &mut Peer, now: Instant, drop: &mut dyn FnMut(&[u8]) -> bool) -> usize {
    let mut buf = [0u8; MAX_DTLS_DATAGRAM_BYTES];
    let mut moved = 0;
    while let Some(len) = from.session.poll_transmit(&mut buf) {
        moved += 1;
        if !drop(&buf[..len]) {
            let _ = to.session.handle_datagram(now, &buf[..len]);
        }
    }
    from.drain_events();
    to.drain_events();
    moved
}

struct Net {
    client: Peer,
    server: Peer,
    now: Instant,
    start: Instant,
}

impl Net {
    fn new(client_profiles: &[SrtpProfile], server_profiles: &[SrtpProfile]) -> Net {
        let client_cert = DtlsCertificate::generate().unwrap();
        let server_cert = DtlsCertificate::generate().unwrap();
        Net::with(
            client_cert.clone(),
            server_cert.clone(),
            &client_cert,
            &server_cert,
            client_profiles,
            server_profiles,
        )
    }

    /// `client_claims` / `server_claims`: the certificates whose fingerprints each side signals.
    fn with(
        client_cert: DtlsCertificate,
        server_cert: DtlsCertificate,
        client_claims: &DtlsCertificate,
        server_claims: &DtlsCertificate,
        client_profiles: &[SrtpProfile],
        server_profiles: &[SrtpProfile],
    ) -> Net {
        let start = Instant::now();
        let server = DtlsSession::new(
            start,
            DtlsSide::Server,
            &server_cert,
            &client_claims.fingerprints()[2..3],
            server_profiles,
        )
        .unwrap();
        let client =
            DtlsSession::new(start, DtlsSide::Client, &client_cert, server_claims.fingerprints(), client_profiles)
                .unwrap();
        Net {
            client: Peer { session: client, events: vec![] },
            server: Peer { session: server, events: vec![] },
            now: start,
            start,
        }
    }

    /// Runs until both sides are past connecting (or nothing more can happen). `drop_c2s` and
    /// `drop_s2c` decide which datagrams are lost.
    fn drive(&mut self, drop_c2s: &mut dyn FnMut(&[u8]) -> bool, drop_s2c: &mut dyn FnMut(&[u8]) -> bool) {
        for _ in 0..STEPS_MAX {
            let moved = deliver(&mut self.client, &mut self.server, self.now, drop_c2s)
                + deliver(&mut self.server, &mut self.client, self.now, drop_s2c);
            if moved > 0 {
                continue;
            }
            let settled = |state| !matches!(state, DtlsState::New | DtlsState::Connecting);
            if settled(self.client.session.state()) && settled(self.server.session.state()) {
                return;
            }
            let next =
                [self.client.session.poll_timeout(), self.server.session.poll_timeout()].into_iter().flatten().min();
            let Some(next) = next else { return };
            self.now = self.now.max(next);
            self.client.session.handle_timeout(self.now);
            self.server.session.handle_timeout(self.now);
        }
        panic!("no convergence in {STEPS_MAX} steps");
    }

    fn drive_lossless(&mut self) {
        self.drive(&mut |_| false, &mut |_| false);
    }
}

fn assert_mirrored(net: &Net) -> SrtpProfile {
    let (client_profile, client_local, client_remote) = net.client.connected().expect("client connected");
    let (server_profile, server_local, server_remote) = net.server.connected().expect("server connected");
    assert_eq!(client_profile, server_profile);
    assert_eq!(client_local, server_remote);
    assert_eq!(client_remote, server_local);
    assert_ne!(client_local, client_remote);
    assert_eq!(client_local.master_key.len(), client_profile.key_len());
    assert_eq!(client_local.master_salt.len(), client_profile.salt_len());
    assert_eq!(net.client.session.state(), DtlsState::Connected);
    assert_eq!(net.server.session.state(), DtlsState::Connected);
    client_profile
}

#[test]
fn handshake_without_loss_connects_both_sides_with_mirrored_keys() {
    let mut net = Net::new(&SrtpProfile::ALL, &SrtpProfile::ALL);
    assert_eq!(net.client.session.state(), DtlsState::Connecting);
    assert_eq!(net.server.session.state(), DtlsState::New);
    net.drive_lossless();
    let profile = assert_mirrored(&net);
    assert_eq!(profile, SrtpProfile::AeadAes256Gcm, "first preference of both");
    assert_eq!(net.now, net.start, "no retransmission needed");
    assert_eq!(net.client.session.poll_timeout(), None);
}

#[test]
fn a_lost_server_flight_is_retransmitted_on_timeout() {
    let mut net = Net::new(&SrtpProfile::ALL, &SrtpProfile::ALL);
    // Lose the server's first datagram (its HelloVerifyRequest).
    let mut seen = 0;
    let mut lost = 0;
    net.drive(&mut |_| false, &mut |_| {
        seen += 1;
        lost += usize::from(seen == 1);
        seen == 1
    });
    assert_eq!(lost, 1);
    assert_mirrored(&net);
    assert!(net.now >= net.start + Duration::from_millis(500), "recovered through a retransmission timeout");
}

#[test]
fn a_lost_client_flight_is_retransmitted_on_timeout() {
    let mut net = Net::new(&SrtpProfile::ALL, &SrtpProfile::ALL);
    // Lose the client's third datagram: its flight 5 (certificate, key exchange, Finished).
    let mut datagrams_seen = 0;
    let mut lost = 0;
    net.drive(
        &mut |_| {
            datagrams_seen += 1;
            if datagrams_seen == 3 {
                lost += 1;
                return true;
            }
            false
        },
        &mut |_| false,
    );
    assert_eq!(lost, 1);
    assert_mirrored(&net);
    assert!(net.now > net.start);
}

#[test]
fn a_silent_peer_fails_the_handshake_after_retransmissions() {
    let mut net = Net::new(&SrtpProfile::ALL, &SrtpProfile::ALL);
    net.drive(&mut |_| true, &mut |_| true);
    assert_eq!(net.client.session.state(), DtlsState::Failed);
    assert_eq!(net.client.failure(), Some(&DtlsFailure::Timeout));
    assert_eq!(net.server.session.state(), DtlsState::New);
}

#[test]
fn keys_from_dtls_protect_media_for_every_profile() {
    for profile in SrtpProfile::ALL {
        let mut net = Net::new(&[profile], &SrtpProfile::ALL);
        net.drive_lossless();
        assert_eq!(assert_mirrored(&net), profile);
        let (_, client_local, client_remote) = net.client.connected().unwrap();
        let (_, server_local, server_remote) = net.server.connected().unwrap();

        // client -> server and server -> client, RTP and RTCP.
        for (send_keys, recv_keys) in [(client_local, server_remote), (server_local, client_remote)] {
            let mut sender = SrtpSession::new(profile, send_keys).unwrap();
            let mut receiver = SrtpSession::new(profile, recv_keys).unwrap();
            let rtp = rtp_packet(7, 0x1234_5678, 300);
            let mut wire = [0u8; 1500];
            let len = sender.protect_rtp(&rtp, &mut wire).unwrap();
            let plain_len = receiver.unprotect_rtp(&mut wire[..len]).unwrap();
            assert_eq!(&wire[..plain_len], &rtp[..], "{profile}: RTP");

            let rtcp = rtcp_receiver_report(0x1234_5678);
            let len = sender.protect_rtcp(&rtcp, &mut wire).unwrap();
            let plain_len = receiver.unprotect_rtcp(&mut wire[..len]).unwrap();
            assert_eq!(&wire[..plain_len], &rtcp[..], "{profile}: RTCP");
        }
    }
}

#[test]
fn the_offered_profile_order_and_intersection_decide_the_profile() {
    let mut net = Net::new(&[SrtpProfile::AesCm128HmacSha1_80, SrtpProfile::AeadAes128Gcm], &SrtpProfile::ALL);
    net.drive_lossless();
    let profile = assert_mirrored(&net);
    assert!(matches!(profile, SrtpProfile::AesCm128HmacSha1_80 | SrtpProfile::AeadAes128Gcm));
}

#[test]
fn no_common_srtp_profile_fails() {
    let mut net = Net::new(&[SrtpProfile::AesCm128HmacSha1_32], &[SrtpProfile::AeadAes128Gcm]);
    net.drive_lossless();
    assert_eq!(net.server.session.state(), DtlsState::Failed);
    assert!(net.client.connected().is_none());
    assert!(net.server.connected().is_none());
}

#[test]
fn a_server_certificate_not_matching_the_signalled_fingerprint_fails_the_client() {
    let client_cert = DtlsCertificate::generate().unwrap();
    let server_cert = DtlsCertificate::generate().unwrap();
    let impostor = DtlsCertificate::generate().unwrap();
    let mut net =
        Net::with(client_cert.clone(), server_cert, &client_cert, &impostor, &SrtpProfile::ALL, &SrtpProfile::ALL);
    net.drive_lossless();
    assert_eq!(net.client.session.state(), DtlsState::Failed);
    assert_eq!(net.client.failure(), Some(&DtlsFailure::FingerprintMismatch));
    assert!(net.client.connected().is_none());
    assert!(net.server.connected().is_none());
}

#[test]
fn a_client_certificate_not_matching_the_signalled_fingerprint_fails_the_server() {
    let client_cert = DtlsCertificate::generate().unwrap();
    let server_cert = DtlsCertificate::generate().unwrap();
    let impostor = DtlsCertificate::generate().unwrap();
    let mut net =
        Net::with(client_cert, server_cert.clone(), &impostor, &server_cert, &SrtpProfile::ALL, &SrtpProfile::ALL);
    net.drive_lossless();
    assert_eq!(net.server.session.state(), DtlsState::Failed);
    assert_eq!(net.server.failure(), Some(&DtlsFailure::FingerprintMismatch));
    assert!(net.server.connected().is_none());
    assert!(net.client.connected().is_none());
}

#[test]
fn close_notify_closes_the_peer() {
    let mut net = Net::new(&SrtpProfile::ALL, &SrtpProfile::ALL);
    net.drive_lossless();
    assert_mirrored(&net);
    net.client.session.close(net.now);
    assert_eq!(net.client.session.state(), DtlsState::Closed);
    deliver(&mut net.client, &mut net.server, net.now, &mut |_| false);
    assert_eq!(net.server.session.state(), DtlsState::Closed);
    assert_eq!(net.server.events.last(), Some(&DtlsEvent::Closed));
    let mut buf = [0u8; MAX_DTLS_DATAGRAM_BYTES];
    assert!(net.server.session.poll_transmit(&mut buf).is_some(), "the server answers with its close_notify");
    assert_eq!(net.server.session.handle_datagram(net.now, &buf), Err(DtlsError::NotActive));
}

#[test]
fn application_data_flows_both_ways() {
    let mut net = Net::new(&SrtpProfile::ALL, &SrtpProfile::ALL);
    net.drive_lossless();
    net.client.session.send_application_data(net.now, b"sctp from client").unwrap();
    net.server.session.send_application_data(net.now, b"sctp from server").unwrap();
    deliver(&mut net.client, &mut net.server, net.now, &mut |_| false);
    deliver(&mut net.server, &mut net.client, net.now, &mut |_| false);
    assert!(net.server.events.contains(&DtlsEvent::ApplicationData(b"sctp from client".to_vec())));
    assert!(net.client.events.contains(&DtlsEvent::ApplicationData(b"sctp from server".to_vec())));
}

#[test]
fn garbage_datagrams_are_dropped_and_the_handshake_still_completes() {
    let mut net = Net::new(&SrtpProfile::ALL, &SrtpProfile::ALL);
    for junk in [&[][..], &[22][..], &[22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 50][..], &[0x80; 100][..]] {
        assert_eq!(net.server.session.handle_datagram(net.now, junk), Err(DtlsError::Malformed));
        assert_eq!(net.client.session.handle_datagram(net.now, junk), Err(DtlsError::Malformed));
    }
    net.drive_lossless();
    assert_mirrored(&net);
}

#[test]
fn generated_certificates_carry_all_five_fingerprints_in_mediasoups_format() {
    let cert = DtlsCertificate::generate().unwrap();
    let lengths = [20, 28, 32, 48, 64];
    assert_eq!(cert.fingerprints().len(), 5);
    for ((fingerprint, algorithm), bytes) in cert.fingerprints().iter().zip(FingerprintAlgorithm::ALL).zip(lengths) {
        assert_eq!(fingerprint.algorithm, algorithm);
        assert_eq!(fingerprint.value.len(), bytes * 3 - 1);
        assert!(fingerprint.value.chars().all(|c| c == ':' || c.is_ascii_digit() || c.is_ascii_uppercase()));
        assert!(fingerprint.matches(cert.der()));
        assert_eq!(cert.fingerprint(algorithm), fingerprint);
    }
    let other = DtlsCertificate::generate().unwrap();
    assert!(!cert.fingerprints()[2].matches(other.der()));
    let lower =
        DtlsFingerprint { algorithm: FingerprintAlgorithm::Sha256, value: cert.fingerprints()[2].value.to_lowercase() };
    assert!(lower.matches(cert.der()), "hex compares case-blind");
}

#[test]
fn certificates_load_from_pem() {
    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["example".to_string()]).unwrap().self_signed(&key_pair).unwrap();
    let loaded = DtlsCertificate::from_pem(&cert.pem(), &key_pair.serialize_pem()).unwrap();
    assert_eq!(loaded.der(), cert.der().as_ref());
    assert_eq!(DtlsCertificate::from_pem(&loaded.to_pem(), &key_pair.serialize_pem()).unwrap().der(), loaded.der());

    let dir = std::env::temp_dir().join(format!("shardsfu-dtls-pem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key_pair.serialize_pem()).unwrap();
    let from_files = DtlsCertificate::from_pem_files(dir.join("cert.pem"), dir.join("key.pem")).unwrap();
    assert_eq!(from_files.fingerprints(), loaded.fingerprints());
    assert!(DtlsCertificate::from_pem_files(dir.join("missing.pem"), dir.join("key.pem")).is_err());
    std::fs::remove_dir_all(&dir).unwrap();

    assert!(DtlsCertificate::from_pem("not pem", &key_pair.serialize_pem()).is_err());
    assert!(DtlsCertificate::from_pem(&cert.pem(), "not pem").is_err());

    // A session runs with a loaded certificate.
    let peer = DtlsCertificate::generate().unwrap();
    let mut net = Net::with(loaded.clone(), peer.clone(), &loaded, &peer, &SrtpProfile::ALL, &SrtpProfile::ALL);
    net.drive_lossless();
    assert_mirrored(&net);
}

#[test]
fn dtls_parameters_have_mediasoups_json_shape() {
    let json = r#"{"role":"auto","fingerprints":[{"algorithm":"sha-256","value":"AB:CD"}]}"#;
    let parameters: DtlsParameters = serde_json::from_str(json).unwrap();
    assert_eq!(parameters.role, Some(DtlsRole::Auto));
    assert_eq!(parameters.fingerprints[0].algorithm, FingerprintAlgorithm::Sha256);
    assert_eq!(serde_json::to_string(&parameters).unwrap(), json);

    let no_role: DtlsParameters = serde_json::from_str(r#"{"fingerprints":[]}"#).unwrap();
    assert_eq!(no_role.role, None);
    assert_eq!(serde_json::to_string(&no_role).unwrap(), r#"{"fingerprints":[]}"#);
    assert!(serde_json::from_str::<DtlsParameters>(r#"{"role":"bogus","fingerprints":[]}"#).is_err());
    assert!(serde_json::from_str::<DtlsFingerprint>(r#"{"algorithm":"md5","value":"AB"}"#).is_err());

    for (state, name) in [
        (DtlsState::New, "new"),
        (DtlsState::Connecting, "connecting"),
        (DtlsState::Connected, "connected"),
        (DtlsState::Failed, "failed"),
        (DtlsState::Closed, "closed"),
    ] {
        assert_eq!(serde_json::to_value(state).unwrap(), name);
    }
    for profile in SrtpProfile::ALL {
        assert_eq!(serde_json::to_value(profile).unwrap(), profile.as_str());
    }
    assert_eq!(serde_json::to_value(SrtpProfile::AeadAes128Gcm).unwrap(), "AEAD_AES_128_GCM");
    assert_eq!(serde_json::to_value(SrtpProfile::AesCm128HmacSha1_32).unwrap(), "AES_CM_128_HMAC_SHA1_32");
}

fn rtp_packet(seq: u16, ssrc: u32, payload_len: usize) -> Vec<u8> {
    let mut packet = vec![0x80, 111];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&90_000u32.to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend((0..payload_len).map(|i| i as u8));
    packet
}

fn rtcp_receiver_report(ssrc: u32) -> Vec<u8> {
    let mut packet = vec![0x80, 201, 0, 1];
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet
}

#[test]
fn the_client_hello_use_srtp_offer_is_read_in_the_clients_order() {
    use shardsfu_engine::webrtc::dtls::client_hello_srtp_profiles;
    let (client_cert, server_cert) = (DtlsCertificate::generate().unwrap(), DtlsCertificate::generate().unwrap());
    let offer = [SrtpProfile::AesCm128HmacSha1_80, SrtpProfile::AeadAes128Gcm];
    let mut client =
        DtlsSession::new(Instant::now(), DtlsSide::Client, &client_cert, server_cert.fingerprints(), &offer).unwrap();
    let mut buf = [0u8; 1500];
    let n = client.poll_transmit(&mut buf).expect("the first flight");
    let ids = client_hello_srtp_profiles(&buf[..n]).expect("a ClientHello with use_srtp");
    assert_eq!(ids, offer.iter().map(|p| p.dtls_id()).collect::<Vec<_>>());
    // Anything else, or any truncation of it, is None, never a panic.
    for cut in 0..n {
        assert_eq!(client_hello_srtp_profiles(&buf[..cut]), None, "cut at {cut}");
    }
    assert_eq!(client_hello_srtp_profiles(&[22, 0xfe, 0xfd]), None);
    assert_eq!(client_hello_srtp_profiles(b"not dtls at all"), None);
}
