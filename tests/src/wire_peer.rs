//! A wire-level WebRTC endpoint for tests and benches: it talks to a WebRtcTransport over a real
//! UDP socket or ICE-TCP connection with STUN requests built by `rtc-stun`, a DTLS session and
//! SRTP sessions of its own (the engine's sans-IO DTLS and SRTP, driven from outside the engine).
//! For an independent WebRTC stack, see the str0m peer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use rtc_stun::attributes::{ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USERNAME, ATTR_USE_CANDIDATE};
use rtc_stun::crypto::providers::RingCrypto;
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{Message, Setter, TransactionId, BINDING_REQUEST};
use rtc_stun::textattrs::TextAttribute;
use shardsfu_engine::webrtc::cert::{DtlsCertificate, DtlsParameters, DtlsRole};
use shardsfu_engine::webrtc::dtls::{DtlsEvent, DtlsSession, DtlsSide};
use shardsfu_engine::webrtc::ice::IceParameters;
use shardsfu_engine::webrtc::srtp::{SrtpProfile, SrtpSession};
use shardsfu_engine::{Protocol, WebRtcTransport};

use crate::ARRIVAL;

pub enum Wire {
    Udp(UdpSocket, SocketAddr),
    Tcp(TcpStream, Vec<u8>),
}

/// A browser-like endpoint on a real socket.
pub struct WirePeer {
    pub wire: Wire,
    cert: DtlsCertificate,
    dtls: Option<DtlsSession>,
    tx: Option<SrtpSession>,
    rx: Option<SrtpSession>,
    next_tid: u32,
}

impl WirePeer {
    pub fn connect(t: &WebRtcTransport, protocol: Protocol) -> WirePeer {
        let c = t.ice_candidates().iter().find(|c| c.protocol == protocol).expect("a candidate of the protocol");
        let server: SocketAddr = format!("{}:{}", c.address, c.port).parse().unwrap();
        let wire = match protocol {
            Protocol::Udp => {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                Wire::Udp(s, server)
            }
            Protocol::Tcp => {
                let s = TcpStream::connect(server).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                Wire::Tcp(s, Vec::new())
            }
        };
        WirePeer { wire, cert: DtlsCertificate::generate().unwrap(), dtls: None, tx: None, rx: None, next_tid: 1 }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        match &mut self.wire {
            Wire::Udp(s, server) => {
                s.send_to(bytes, *server).unwrap();
            }
            Wire::Tcp(s, _) => {
                let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(bytes);
                s.write_all(&framed).unwrap();
            }
        }
    }

    /// One datagram (or RFC 4571 frame), or None after ~20 ms.
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        let mut buf = [0u8; 4096];
        match &mut self.wire {
            Wire::Udp(s, _) => s.recv(&mut buf).ok().map(|n| buf[..n].to_vec()),
            Wire::Tcp(s, pending) => loop {
                if pending.len() >= 2 {
                    let len = usize::from(u16::from_be_bytes([pending[0], pending[1]]));
                    if pending.len() >= 2 + len {
                        let frame = pending[2..2 + len].to_vec();
                        pending.drain(..2 + len);
                        return Some(frame);
                    }
                }
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                }
            },
        }
    }

    /// A nominated Binding request with `ice`'s credentials; true when a success answer came.
    pub fn ice(&mut self, ice: &IceParameters) -> bool {
        let mut m = Message::new();
        let mut tid = [0u8; 12];
        tid[..4].copy_from_slice(&self.next_tid.to_be_bytes());
        self.next_tid += 1;
        m.build(&[Box::new(TransactionId(tid)), Box::new(BINDING_REQUEST)]).unwrap();
        TextAttribute::new(ATTR_USERNAME, format!("{}:peer", ice.username_fragment)).add_to(&mut m).unwrap();
        m.add(ATTR_PRIORITY, &0x6e00_01ffu32.to_be_bytes());
        m.add(ATTR_USE_CANDIDATE, &[]);
        m.add(ATTR_ICE_CONTROLLING, &42u64.to_be_bytes());
        MessageIntegrity::new_short_term_integrity_with_provider(ice.password.clone(), &RingCrypto)
            .add_to(&mut m)
            .unwrap();
        FINGERPRINT.add_to(&mut m).unwrap();
        self.send(&m.raw.clone());
        let deadline = Instant::now() + ARRIVAL;
        while Instant::now() < deadline {
            if let Some(d) = self.recv() {
                // A success response (0x0101) to our transaction.
                if d.len() >= 20 && d[0] == 0x01 && d[1] == 0x01 && d[8..20] == tid {
                    return true;
                }
            }
        }
        false
    }

    /// Run DTLS as `side` until connected; the SFU's certificate is `remote`'s fingerprints.
    pub fn handshake(&mut self, side: DtlsSide, remote: &DtlsParameters, profiles: &[SrtpProfile]) {
        let now = Instant::now();
        self.dtls = Some(DtlsSession::new(now, side, &self.cert, &remote.fingerprints, profiles).unwrap());
        let deadline = now + Duration::from_secs(10);
        while Instant::now() < deadline {
            let mut buf = [0u8; 1500];
            let mut out = Vec::new();
            while let Some(n) = self.dtls.as_mut().unwrap().poll_transmit(&mut buf) {
                out.push(buf[..n].to_vec());
            }
            for d in out {
                self.send(&d);
            }
            if let Some(d) = self.recv() {
                if (20..=63).contains(&d[0]) {
                    let _ = self.dtls.as_mut().unwrap().handle_datagram(Instant::now(), &d);
                }
            }
            self.dtls.as_mut().unwrap().handle_timeout(Instant::now());
            while let Some(ev) = self.dtls.as_mut().unwrap().poll_event() {
                match ev {
                    DtlsEvent::Connected { profile, local, remote } => {
                        self.tx = Some(SrtpSession::new(profile, &local).unwrap());
                        self.rx = Some(SrtpSession::new(profile, &remote).unwrap());
                    }
                    DtlsEvent::Failed(f) => panic!("peer DTLS failed: {f}"),
                    _ => {}
                }
            }
            if self.tx.is_some() {
                // The last flight (a server's Finished) still has to go out.
                while let Some(n) = self.dtls.as_mut().unwrap().poll_transmit(&mut buf) {
                    let d = buf[..n].to_vec();
                    self.send(&d);
                }
                return;
            }
        }
        panic!("DTLS did not connect within 10 s");
    }

    pub fn dtls_parameters(&self, role: DtlsRole) -> DtlsParameters {
        DtlsParameters { role: Some(role), fingerprints: self.cert.fingerprints().to_vec() }
    }

    pub fn send_rtp(&mut self, rtp: &[u8]) {
        let mut out = vec![0u8; rtp.len() + 32];
        let n = self.tx.as_mut().unwrap().protect_rtp(rtp, &mut out).unwrap();
        self.send(&out[..n]);
    }

    /// The next RTCP compound (decrypted) that `pred` accepts, skipping everything else.
    pub fn recv_rtcp_until(&mut self, mut pred: impl FnMut(&[u8]) -> bool) -> Option<Vec<u8>> {
        let deadline = Instant::now() + ARRIVAL;
        while Instant::now() < deadline {
            let Some(mut d) = self.recv() else { continue };
            if d[0] >> 6 == 2 && (192..=223).contains(&d[1]) {
                let n = self.rx.as_mut().unwrap().unprotect_rtcp(&mut d).expect("SRTCP from the SFU authenticates");
                d.truncate(n);
                if pred(&d) {
                    return Some(d);
                }
            }
        }
        None
    }

    /// The next RTP packet (decrypted), skipping RTCP, STUN and DTLS.
    pub fn recv_rtp(&mut self) -> Option<Vec<u8>> {
        let deadline = Instant::now() + ARRIVAL;
        while Instant::now() < deadline {
            let Some(mut d) = self.recv() else { continue };
            if d[0] >> 6 == 2 && !(192..=223).contains(&d[1]) {
                let n = self.rx.as_mut().unwrap().unprotect_rtp(&mut d).expect("SRTP from the SFU authenticates");
                d.truncate(n);
                return Some(d);
            }
        }
        None
    }
}
