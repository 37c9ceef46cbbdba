//! ICE restart (mediasoup's `restartIce()`): new credentials, tuples and state kept; the old
//! credentials keep working (answered with the old password) until the first request with the
//! new ones, and are refused after it.

#[path = "webrtc_ice_client.rs"]
mod client;

use std::time::Duration;

use client::*;
use shardsfu_engine::webrtc::ice::{generate_password, generate_ufrag, IceState, PASSWORD_LEN, UFRAG_LEN};
use shardsfu_engine::webrtc::stun::{RejectReason, StunError};

fn restart(h: &mut Harness) -> (String, String) {
    let ufrag = generate_ufrag(&[42; UFRAG_LEN]);
    let pwd = generate_password(&core::array::from_fn::<u8, PASSWORD_LEN, _>(|i| i as u8 * 7));
    let now = h.now;
    h.server.restart(now, ufrag.clone(), pwd.clone()).unwrap();
    (ufrag, pwd)
}

#[test]
fn restart_switches_credentials_and_old_ones_are_then_rejected() {
    let mut h = Harness::new();
    let t = tuple(5000);
    let req = h.req().nominate();
    assert!(h.send(&t, &req));
    h.events();

    let (ufrag, pwd) = restart(&mut h);
    assert_eq!(h.server.username_fragment(), ufrag);
    assert_eq!(h.server.parameters().password, pwd);
    assert_ne!(ufrag, UFRAG);
    // State and tuples kept: media keeps flowing during the renegotiation.
    assert_eq!(h.server.state(), IceState::Completed);
    assert!(h.server.is_valid_tuple(&t));
    assert!(h.events().is_empty());

    // Old credentials still answered (with the old password) until the new ones are used.
    assert!(h.send(&t, &Req::new(UFRAG, PWD, 100)));
    // New credentials.
    let req = Req::new(&ufrag, &pwd, 101).nominate();
    assert!(h.send(&t, &req));
    // From now on the old ones get 401.
    let old = Req::new(UFRAG, PWD, 102).build();
    let err = h.server.handle_stun(h.now, &t, &old, &mut h.out).unwrap_err();
    assert!(matches!(err, StunError::Rejected { reason: RejectReason::BadUsername, .. }), "{err:?}");
    assert_eq!(check_error(&h.out[..err.response_len().unwrap()], Req::new(UFRAG, PWD, 102).transaction_id), 401);
    assert_eq!(h.server.state(), IceState::Completed);
}

#[test]
fn restart_restarts_the_consent_period() {
    let mut h = Harness::new();
    let t = tuple(5000);
    let req = h.req().nominate();
    assert!(h.send(&t, &req));
    h.advance(Duration::from_secs(25));
    restart(&mut h);
    h.advance(Duration::from_secs(25));
    assert_eq!(h.server.state(), IceState::Completed);
    h.advance(Duration::from_secs(5));
    assert_eq!(h.server.state(), IceState::Disconnected);
}

#[test]
fn restart_before_connection_keeps_new() {
    let mut h = Harness::new();
    let (ufrag, pwd) = restart(&mut h);
    assert_eq!(h.server.state(), IceState::New);
    assert_eq!(h.server.poll_timeout(), None);
    assert!(h.send(&tuple(5000), &Req::new(&ufrag, &pwd, 1)));
    assert_eq!(h.server.state(), IceState::Connected);
}

#[test]
fn second_restart_forgets_the_first_credentials() {
    let mut h = Harness::new();
    restart(&mut h);
    let now = h.now;
    h.server.restart(now, "thirdufrag".into(), "thirdpassword0123456789abc".into()).unwrap();
    assert!(!h.send(&tuple(5000), &Req::new(UFRAG, PWD, 1)));
}
