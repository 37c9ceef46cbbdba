//! STUN Binding handling of the ICE-lite server: success responses a browser accepts, and
//! mediasoup's error replies (400 / 401 / 487) or silent drops for everything else, none of which
//! changes ICE state.

#[path = "webrtc_ice_client.rs"]
mod client;

use client::*;
use rtc_stun::message::{
    MessageType, BINDING_SUCCESS, CLASS_INDICATION, CLASS_REQUEST, METHOD_ALLOCATE, METHOD_BINDING,
};
use shardsfu_engine::webrtc::ice::{IceServer, IceState};
use shardsfu_engine::webrtc::stun::{is_stun, RejectReason, StunError, STUN_RESPONSE_LEN_MAX};

/// Sends `req`, expects rejection with `reason`, checks the error response, and that the server
/// state did not move.
fn expect_reject(h: &mut Harness, req: &Req, reason: RejectReason) {
    let t = tuple(5000);
    let bytes = req.build();
    let err = h.server.handle_stun(h.now, &t, &bytes, &mut h.out).unwrap_err();
    let StunError::Rejected { reason: got, response_len } = err else { panic!("expected a rejection, got {err:?}") };
    assert_eq!(got, reason);
    assert_eq!(err.response_len(), Some(response_len));
    assert_eq!(check_error(&h.out[..response_len], req.transaction_id), reason.code());
    assert_eq!(h.server.state(), IceState::New);
    assert!(!h.server.is_valid_tuple(&t));
    assert!(h.events().is_empty());
}

#[test]
fn success_response_verifies_with_our_password_and_maps_the_source() {
    let mut h = Harness::new();
    let t = tuple(5000);
    let req = h.req();
    let bytes = req.build();
    assert!(is_stun(&bytes));
    let n = h.server.handle_stun(h.now, &t, &bytes, &mut h.out).unwrap().unwrap();
    assert!(n <= STUN_RESPONSE_LEN_MAX);
    assert_eq!(check_success(&h.out[..n], req.transaction_id, PWD), t.remote);
}

#[test]
fn ipv6_source_is_mapped() {
    let mut h = Harness::new();
    let mut t = tuple(5000);
    t.remote = "[2001:db8::7]:61000".parse().unwrap();
    let req = h.req();
    let n = h.server.handle_stun(h.now, &t, &req.build(), &mut h.out).unwrap().unwrap();
    assert_eq!(check_success(&h.out[..n], req.transaction_id, PWD), t.remote);
}

#[test]
fn wrong_password_is_401_and_changes_nothing() {
    let mut h = Harness::new();
    let mut req = h.req();
    req.password = Some("notthepassword0123456789".into());
    expect_reject(&mut h, &req, RejectReason::BadIntegrity);
}

#[test]
fn unknown_ufrag_is_401() {
    let mut h = Harness::new();
    let mut req = h.req();
    req.username = Some(format!("someoneelse:{REMOTE_UFRAG}"));
    expect_reject(&mut h, &req, RejectReason::BadUsername);
    // Our ufrag without the ':' separator is not "<ufrag>:<remote>" either.
    let mut req = h.req();
    req.username = Some(UFRAG.into());
    expect_reject(&mut h, &req, RejectReason::BadUsername);
}

#[test]
fn remote_part_of_username_is_not_checked() {
    let mut h = Harness::new();
    let mut req = h.req();
    req.username = Some(format!("{UFRAG}:anything-at-all"));
    assert!(h.send(&tuple(5000), &req));
}

#[test]
fn missing_attributes_are_400() {
    let mut h = Harness::new();
    let mut req = h.req();
    req.priority = None;
    expect_reject(&mut h, &req, RejectReason::MissingPriority);
    let mut req = h.req();
    req.priority = Some(0);
    expect_reject(&mut h, &req, RejectReason::MissingPriority);
    let mut req = h.req();
    req.username = None;
    expect_reject(&mut h, &req, RejectReason::MissingUsername);
    let mut req = h.req();
    req.password = None;
    expect_reject(&mut h, &req, RejectReason::MissingIntegrity);
    let mut req = h.req();
    req.fingerprint = false;
    expect_reject(&mut h, &req, RejectReason::MissingFingerprint);
    let mut req = h.req();
    req.typ = MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST);
    expect_reject(&mut h, &req, RejectReason::UnknownMethod);
}

#[test]
fn peer_claiming_controlled_is_487_after_authentication() {
    let mut h = Harness::new();
    let mut req = h.req();
    req.controlling = false;
    req.controlled = true;
    expect_reject(&mut h, &req, RejectReason::RoleConflict);
    // With bad credentials the 401 comes first.
    req.password = Some("notthepassword0123456789".into());
    expect_reject(&mut h, &req, RejectReason::BadIntegrity);
}

#[test]
fn request_without_ice_controlling_is_accepted() {
    let mut h = Harness::new();
    let mut req = h.req();
    req.controlling = false;
    assert!(h.send(&tuple(5000), &req));
}

#[test]
fn corrupt_fingerprint_is_dropped_without_reply() {
    let mut h = Harness::new();
    let req = h.req();
    let mut bytes = req.build();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert_eq!(h.server.handle_stun(h.now, &tuple(5000), &bytes, &mut h.out), Err(StunError::BadFingerprint));
    assert_eq!(h.server.state(), IceState::New);
}

#[test]
fn use_candidate_after_integrity_is_ignored() {
    let mut h = Harness::new();
    let mut req = h.req();
    req.use_candidate_after_integrity = true;
    assert!(h.send(&tuple(5000), &req));
    // Unauthenticated USE-CANDIDATE (RFC 8489 §14.5): connected, not completed.
    assert_eq!(h.server.state(), IceState::Connected);
}

#[test]
fn indications_and_responses_are_ignored() {
    let mut h = Harness::new();
    let mut req = h.req();
    req.typ = MessageType::new(METHOD_BINDING, CLASS_INDICATION);
    assert_eq!(h.server.handle_stun(h.now, &tuple(5000), &req.build(), &mut h.out), Ok(None));
    let mut req = h.req();
    req.typ = BINDING_SUCCESS;
    assert_eq!(h.server.handle_stun(h.now, &tuple(5000), &req.build(), &mut h.out), Ok(None));
    assert_eq!(h.server.state(), IceState::New);
}

#[test]
fn garbage_is_typed_errors() {
    let mut h = Harness::new();
    let t = tuple(5000);
    let valid = h.req().build();
    let cases: Vec<(Vec<u8>, StunError)> = vec![
        (vec![], StunError::NotStun),
        (vec![0x80; 40], StunError::NotStun),
        (valid[..valid.len() - 4].to_vec(), StunError::Malformed),
        ([valid.as_slice(), &[0, 0, 0, 0]].concat(), StunError::Malformed),
        ([valid.as_slice(), &[0u8; 1600]].concat(), StunError::TooLarge),
    ];
    for (bytes, want) in cases {
        assert_eq!(h.server.handle_stun(h.now, &t, &bytes, &mut h.out), Err(want));
    }
    let mut small = [0u8; 16];
    assert_eq!(h.server.handle_stun(h.now, &t, &valid, &mut small), Err(StunError::BufferTooSmall));
    assert_eq!(h.server.state(), IceState::New);
}

/// RFC 5769 §2.1 sample request: an independent MESSAGE-INTEGRITY / FINGERPRINT vector. It
/// carries ICE-CONTROLLED, so a server that verified both answers 487; with another password, 401.
#[test]
fn rfc5769_sample_request() {
    #[rustfmt::skip]
    let request: [u8; 108] = [
        0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
        0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,
        0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
        0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09,
        0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14,
        0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
        0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
    ];
    let t = tuple(5000);
    let mut out = [0u8; STUN_RESPONSE_LEN_MAX];
    let mut server = IceServer::new("evtj".into(), "VOkJxbRl1RmTxUk/WvJxBt".into(), std::time::Duration::ZERO);
    let err = server.handle_stun(std::time::Instant::now(), &t, &request, &mut out).unwrap_err();
    assert!(matches!(err, StunError::Rejected { reason: RejectReason::RoleConflict, .. }), "{err:?}");
    let mut server = IceServer::new("evtj".into(), "VOkJxbRl1RmTxUk/WvJxBX".into(), std::time::Duration::ZERO);
    let err = server.handle_stun(std::time::Instant::now(), &t, &request, &mut out).unwrap_err();
    assert!(matches!(err, StunError::Rejected { reason: RejectReason::BadIntegrity, .. }), "{err:?}");
}

#[test]
fn request_builder_is_valid_stun() {
    use rtc_stun::crypto::providers::RingCrypto;
    use rtc_stun::integrity::MessageIntegrity;
    use rtc_stun::message::Message;
    let bytes = Req::new(UFRAG, PWD, 1).nominate().build();
    let mut m = Message::new();
    m.unmarshal_binary(&bytes).unwrap();
    MessageIntegrity::check(&mut m, PWD.as_bytes(), &RingCrypto).unwrap();
}
