//! Consent freshness (RFC 7675, mediasoup's `iceConsentTimeout`) on simulated time: without a
//! valid request on the selected tuple for the timeout, the server goes 'disconnected' and no
//! tuple is valid any more.

#[path = "webrtc_ice_client.rs"]
mod client;

use std::time::Duration;

use client::*;
use shardsfu_engine::webrtc::ice::{IceEvent, IceState, CONSENT_TIMEOUT_DEFAULT};

#[test]
fn no_deadline_before_connection() {
    let h = Harness::new();
    assert_eq!(h.server.poll_timeout(), None);
    assert_eq!(h.server.consent_timeout(), CONSENT_TIMEOUT_DEFAULT);
}

#[test]
fn consent_expiry_disconnects_and_invalidates_tuples() {
    let mut h = Harness::new();
    let (a, b) = (tuple(5000), tuple(5001));
    let req = h.req().nominate();
    assert!(h.send(&a, &req));
    let req = h.req();
    assert!(h.send(&b, &req));
    h.events();
    assert_eq!(h.server.poll_timeout(), Some(h.t0 + CONSENT_TIMEOUT_DEFAULT));

    h.advance(CONSENT_TIMEOUT_DEFAULT - Duration::from_millis(1));
    assert_eq!(h.server.state(), IceState::Completed);
    h.advance(Duration::from_millis(1));
    assert_eq!(h.server.state(), IceState::Disconnected);
    assert_eq!(h.server.selected_tuple(), None);
    assert!(!h.server.is_valid_tuple(&a) && !h.server.is_valid_tuple(&b));
    assert_eq!(h.server.poll_timeout(), None);
    assert_eq!(
        h.events(),
        vec![IceEvent::TupleRemoved(a), IceEvent::TupleRemoved(b), IceEvent::StateChange(IceState::Disconnected)]
    );

    // A fresh valid request reconnects.
    let req = h.req();
    assert!(h.send(&a, &req));
    assert_eq!(h.server.state(), IceState::Connected);
}

#[test]
fn requests_on_the_selected_tuple_keep_consent() {
    let mut h = Harness::new();
    let t = tuple(5000);
    let req = h.req().nominate();
    assert!(h.send(&t, &req));
    for _ in 0..20 {
        h.advance(Duration::from_secs(5));
        let req = h.req();
        assert!(h.send(&t, &req));
        assert_eq!(h.server.poll_timeout(), Some(h.now + CONSENT_TIMEOUT_DEFAULT));
    }
    assert_eq!(h.server.state(), IceState::Completed);
}

#[test]
fn requests_on_other_tuples_or_rejected_do_not_keep_consent() {
    let mut h = Harness::new();
    let (a, b) = (tuple(5000), tuple(5001));
    let req = h.req().nominate();
    assert!(h.send(&a, &req));
    for _ in 0..5 {
        h.advance(Duration::from_secs(5));
        let req = h.req();
        assert!(h.send(&b, &req)); // valid, not selected
        let mut bad = h.req();
        bad.password = Some("notthepassword0123456789".into());
        assert!(!h.send(&a, &bad)); // selected, not valid
    }
    assert_eq!(h.server.state(), IceState::Completed);
    h.advance(Duration::from_secs(5));
    assert_eq!(h.server.state(), IceState::Disconnected);
}

#[test]
fn switching_selected_tuple_starts_a_new_period() {
    let mut h = Harness::new();
    let (a, b) = (tuple(5000), tuple(5001));
    let req = h.req().nominate();
    assert!(h.send(&a, &req));
    h.advance(Duration::from_secs(20));
    let req = h.req().nominate();
    assert!(h.send(&b, &req));
    h.advance(Duration::from_secs(20));
    assert_eq!(h.server.state(), IceState::Completed);
    assert_eq!(h.server.selected_tuple(), Some(&b));
}

#[test]
fn zero_disables_and_small_values_clamp() {
    let mut h = Harness::with_timeout(Duration::ZERO);
    let req = h.req();
    assert!(h.send(&tuple(5000), &req));
    assert_eq!(h.server.poll_timeout(), None);
    h.advance(Duration::from_secs(3600));
    assert_eq!(h.server.state(), IceState::Connected);

    let h = Harness::with_timeout(Duration::from_secs(1));
    assert_eq!(h.server.consent_timeout(), Duration::from_secs(10));
}
