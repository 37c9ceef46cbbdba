//! The browser side of the ICE tests: Binding requests built and responses checked with
//! `rtc-stun`'s own encoder and checks (MESSAGE-INTEGRITY, FINGERPRINT), independently of the
//! server's request path. Included by the other `webrtc_ice_*` tests with `#[path]` (built alone it
//! has no tests).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc_stun::attributes::{
    ATTR_ICE_CONTROLLED, ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USERNAME, ATTR_USE_CANDIDATE,
};
use rtc_stun::crypto::providers::RingCrypto;
use rtc_stun::error_code::ErrorCodeAttribute;
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{
    Getter, Message, MessageType, Setter, TransactionId, BINDING_ERROR, BINDING_REQUEST, BINDING_SUCCESS,
};
use rtc_stun::textattrs::TextAttribute;
use rtc_stun::xoraddr::XorMappedAddress;
use shardsfu_engine::webrtc::ice::{IceServer, IceTuple, CONSENT_TIMEOUT_DEFAULT};
use shardsfu_engine::webrtc::stun::STUN_RESPONSE_LEN_MAX;
use shardsfu_engine::Protocol;

pub const UFRAG: &str = "serverufrag0123456789abcdefghijk";
pub const PWD: &str = "serverpassword0123456789abcdefgh";
pub const REMOTE_UFRAG: &str = "brwsr";

/// A Binding request as a browser (ICE-controlling) sends it, with knobs to break it.
#[derive(Clone)]
pub struct Req {
    pub typ: MessageType,
    pub transaction_id: [u8; 12],
    pub username: Option<String>,
    pub password: Option<String>,
    pub priority: Option<u32>,
    pub use_candidate: bool,
    pub controlling: bool,
    pub controlled: bool,
    pub fingerprint: bool,
    /// USE-CANDIDATE smuggled after MESSAGE-INTEGRITY (must be ignored).
    pub use_candidate_after_integrity: bool,
}

impl Req {
    /// A valid request for the server's credentials `ufrag` / `pwd`.
    pub fn new(ufrag: &str, pwd: &str, id: u32) -> Self {
        let mut transaction_id = [0u8; 12];
        transaction_id[..4].copy_from_slice(&id.to_be_bytes());
        Req {
            typ: BINDING_REQUEST,
            transaction_id,
            username: Some(format!("{ufrag}:{REMOTE_UFRAG}")),
            password: Some(pwd.to_owned()),
            priority: Some(0x6e0001ff),
            use_candidate: false,
            controlling: true,
            controlled: false,
            fingerprint: true,
            use_candidate_after_integrity: false,
        }
    }

    pub fn nominate(mut self) -> Self {
        self.use_candidate = true;
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut m = Message::new();
        m.build(&[Box::new(TransactionId(self.transaction_id)), Box::new(self.typ)]).unwrap();
        if let Some(u) = &self.username {
            TextAttribute::new(ATTR_USERNAME, u.clone()).add_to(&mut m).unwrap();
        }
        if let Some(p) = self.priority {
            m.add(ATTR_PRIORITY, &p.to_be_bytes());
        }
        if self.use_candidate {
            m.add(ATTR_USE_CANDIDATE, &[]);
        }
        if self.controlling {
            m.add(ATTR_ICE_CONTROLLING, &0x0102_0304_0506_0708u64.to_be_bytes());
        }
        if self.controlled {
            m.add(ATTR_ICE_CONTROLLED, &0x0102_0304_0506_0708u64.to_be_bytes());
        }
        if let Some(pwd) = &self.password {
            MessageIntegrity::new_short_term_integrity_with_provider(pwd.clone(), &RingCrypto).add_to(&mut m).unwrap();
        }
        if self.use_candidate_after_integrity {
            m.add(ATTR_USE_CANDIDATE, &[]);
        }
        if self.fingerprint {
            FINGERPRINT.add_to(&mut m).unwrap();
        }
        m.raw.clone()
    }
}

fn decode(bytes: &[u8]) -> Message {
    let mut m = Message::new();
    m.unmarshal_binary(bytes).expect("response decodes");
    FINGERPRINT.check(&m).expect("response FINGERPRINT");
    m
}

/// Checks a success response the way the browser does: type, transaction, FINGERPRINT,
/// MESSAGE-INTEGRITY with `pwd`; returns XOR-MAPPED-ADDRESS.
pub fn check_success(bytes: &[u8], transaction_id: [u8; 12], pwd: &str) -> SocketAddr {
    let mut m = decode(bytes);
    assert_eq!(m.typ, BINDING_SUCCESS);
    assert_eq!(m.transaction_id.0, transaction_id);
    MessageIntegrity::check(&mut m, pwd.as_bytes(), &RingCrypto).expect("response MESSAGE-INTEGRITY");
    let mut xor = XorMappedAddress::default();
    xor.get_from(&m).expect("XOR-MAPPED-ADDRESS");
    SocketAddr::new(xor.ip, xor.port)
}

/// Checks an error response (type, transaction, FINGERPRINT); returns its ERROR-CODE.
pub fn check_error(bytes: &[u8], transaction_id: [u8; 12]) -> u16 {
    let m = decode(bytes);
    assert_eq!(m.typ, BINDING_ERROR);
    assert_eq!(m.transaction_id.0, transaction_id);
    let mut code = ErrorCodeAttribute::default();
    code.get_from(&m).expect("ERROR-CODE");
    code.code.0
}

pub fn tuple(remote_port: u16) -> IceTuple {
    IceTuple::new(
        SocketAddr::from(([10, 0, 0, 1], 40000)),
        SocketAddr::from(([192, 0, 2, 7], remote_port)),
        Protocol::Udp,
    )
}

/// A server and a simulated clock.
pub struct Harness {
    pub server: IceServer,
    pub t0: Instant,
    pub now: Instant,
    pub out: [u8; STUN_RESPONSE_LEN_MAX],
    next_id: u32,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Self {
        Self::with_timeout(CONSENT_TIMEOUT_DEFAULT)
    }

    pub fn with_timeout(consent_timeout: Duration) -> Self {
        let t0 = Instant::now();
        Harness {
            server: IceServer::new(UFRAG.to_owned(), PWD.to_owned(), consent_timeout),
            t0,
            now: t0,
            out: [0; STUN_RESPONSE_LEN_MAX],
            next_id: 1,
        }
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
        }
    }

    /// A valid request for the current credentials.
    pub fn req(&mut self) -> Req {
        self.next_id += 1;
        Req::new(self.server.username_fragment(), self.server.password(), self.next_id)
    }

    /// Sends `req` on `t`; on success checks the response with `req`'s password and the mapped
    /// address, and returns true.
    pub fn send(&mut self, t: &IceTuple, req: &Req) -> bool {
        let bytes = req.build();
        match self.server.handle_stun(self.now, t, &bytes, &mut self.out) {
            Ok(Some(n)) => {
                let mapped = check_success(&self.out[..n], req.transaction_id, req.password.as_deref().unwrap());
                assert_eq!(mapped, t.remote);
                true
            }
            Ok(None) => false,
            Err(_) => false,
        }
    }

    pub fn events(&mut self) -> Vec<shardsfu_engine::webrtc::ice::IceEvent> {
        std::iter::from_fn(|| self.server.poll_event()).collect()
    }
}
