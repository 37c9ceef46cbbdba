//! ICE-lite server driven by operation sequences read from the input: valid requests (with or
//! without USE-CANDIDATE) from several tuples, requests with a wrong password or stale
//! credentials, corrupted requests, raw bytes, time steps, ICE restarts, tuple removal and close.
//! After every operation the server's invariants are checked; a panic is the finding.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use rtc_stun::attributes::{ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USERNAME, ATTR_USE_CANDIDATE};
use rtc_stun::crypto::providers::RingCrypto;
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{Message, Setter, TransactionId, BINDING_REQUEST, BINDING_SUCCESS};
use rtc_stun::textattrs::TextAttribute;
use shardsfu_engine::webrtc::ice::{IceEvent, IceServer, IceState, IceTuple, MAX_TUPLES};
use shardsfu_engine::webrtc::stun::STUN_RESPONSE_LEN_MAX;
use shardsfu_engine::Protocol;

/// Operations read from one input at most.
const MAX_OPS: usize = 128;
const TUPLES: usize = 10;

fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

fn tuple(i: u8) -> IceTuple {
    let i = i as usize % TUPLES;
    let protocol = if i % 3 == 2 { Protocol::Tcp } else { Protocol::Udp };
    let remote: SocketAddr = if i % 4 == 3 {
        format!("[2001:db8::{i}]:{}", 5000 + i).parse().unwrap()
    } else {
        format!("192.0.2.{i}:{}", 5000 + i).parse().unwrap()
    };
    IceTuple::new("10.0.0.1:40000".parse().unwrap(), remote, protocol)
}

fn request(ufrag: &str, pwd: &str, id: u32, use_candidate: bool) -> Vec<u8> {
    let mut tid = [0u8; 12];
    tid[..4].copy_from_slice(&id.to_be_bytes());
    let mut m = Message::new();
    m.build(&[Box::new(TransactionId(tid)), Box::new(BINDING_REQUEST)]).unwrap();
    TextAttribute::new(ATTR_USERNAME, format!("{ufrag}:remote")).add_to(&mut m).unwrap();
    m.add(ATTR_PRIORITY, &0x6e0001ffu32.to_be_bytes());
    if use_candidate {
        m.add(ATTR_USE_CANDIDATE, &[]);
    }
    m.add(ATTR_ICE_CONTROLLING, &7u64.to_be_bytes());
    MessageIntegrity::new_short_term_integrity_with_provider(pwd.to_owned(), &RingCrypto).add_to(&mut m).unwrap();
    FINGERPRINT.add_to(&mut m).unwrap();
    m.raw
}

struct Input<'d> {
    data: &'d [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }
}

fn check(server: &mut IceServer, now: Instant) {
    let state = server.state();
    match state {
        IceState::Connected | IceState::Completed => {
            let selected = *server.selected_tuple().expect("connected without a selected tuple");
            assert!(server.is_valid_tuple(&selected));
            assert!(server.tuples().contains(&selected));
            if !server.consent_timeout().is_zero() {
                let deadline = server.poll_timeout().expect("consent deadline while connected");
                assert!(deadline > now - Duration::from_secs(3600));
            }
        }
        IceState::New | IceState::Disconnected | IceState::Closed => {
            assert!(server.selected_tuple().is_none());
            assert!(server.tuples().is_empty());
            assert!(server.poll_timeout().is_none());
        }
    }
    assert!(server.tuples().len() <= MAX_TUPLES);
    let mut last_state = None;
    while let Some(event) = server.poll_event() {
        if let IceEvent::StateChange(s) = event {
            last_state = Some(s);
        }
    }
    if let Some(s) = last_state {
        assert_eq!(s, state);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input { data };
    let timeout = Duration::from_secs(input.byte() as u64 % 4 * 20); // 0 (off), 20, 40, 60 s
    let mut creds = ("fuzzufrag0".to_owned(), "fuzzpassword0123456789abcdef0".to_owned());
    let mut old = creds.clone();
    let mut server = IceServer::new(creds.0.clone(), creds.1.clone(), timeout);
    let mut now = t0();
    let mut out = [0u8; STUN_RESPONSE_LEN_MAX];
    let mut id = 0u32;
    for _ in 0..MAX_OPS {
        if input.data.is_empty() {
            break;
        }
        let op = input.byte();
        let t = tuple(input.byte());
        id += 1;
        let result = match op % 10 {
            0 | 1 => {
                let nominate = op & 0x10 != 0;
                let bytes = request(&creds.0, &creds.1, id, nominate);
                let was_closed = server.state() == IceState::Closed;
                let r = server.handle_stun(now, &t, &bytes, &mut out);
                if !was_closed {
                    let n = r.expect("valid request refused").expect("no response to a valid request");
                    let mut m = Message::new();
                    m.unmarshal_binary(&out[..n]).unwrap();
                    assert_eq!(m.typ, BINDING_SUCCESS);
                    assert!(server.is_valid_tuple(&t));
                    if nominate {
                        assert_eq!(server.selected_tuple(), Some(&t));
                        assert_eq!(server.state(), IceState::Completed);
                    }
                }
                Some(r)
            }
            2 => {
                let bytes = request(&creds.0, "wrongpassword0123456789abcdef", id, true);
                let before = (server.state(), server.selected_tuple().copied());
                let r = server.handle_stun(now, &t, &bytes, &mut out);
                assert!(r.is_err());
                assert_eq!(before, (server.state(), server.selected_tuple().copied()));
                Some(r)
            }
            3 => Some(server.handle_stun(now, &t, &request(&old.0, &old.1, id, op & 0x10 != 0), &mut out)),
            4 => {
                now += Duration::from_millis(input.byte() as u64 * 250);
                if server.poll_timeout().is_some_and(|d| d <= now) {
                    server.handle_timeout(now);
                    assert!(server.poll_timeout().is_none_or(|d| d > now));
                }
                None
            }
            5 => {
                old = creds.clone();
                creds = (format!("fuzzufrag{id}"), format!("fuzzpassword0123456789abcdef{id}"));
                let _ = server.restart(now, creds.0.clone(), creds.1.clone());
                None
            }
            6 => {
                server.remove_tuple(now, &t);
                None
            }
            7 => {
                let mut bytes = request(&creds.0, &creds.1, id, op & 0x10 != 0);
                let at = input.byte() as usize % bytes.len();
                bytes[at] ^= input.byte() | 1;
                Some(server.handle_stun(now, &t, &bytes, &mut out))
            }
            8 => {
                let n = input.byte() as usize;
                let bytes = input.bytes(n).to_vec();
                Some(server.handle_stun(now, &t, &bytes, &mut out))
            }
            _ => {
                if op == 255 {
                    server.close();
                }
                None
            }
        };
        if let Some(Ok(Some(n)) | Err(shardsfu_engine::webrtc::stun::StunError::Rejected { response_len: n, .. })) =
            result
        {
            assert!(n <= STUN_RESPONSE_LEN_MAX);
        }
        check(&mut server, now);
    }
});
