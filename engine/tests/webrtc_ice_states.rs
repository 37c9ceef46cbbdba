//! ICE state machine of the ICE-lite server, as mediasoup's `IceServer::HandleTuple`: connected
//! without nomination, completed with it, selected-tuple switches on a newer nomination, bounded
//! tuples, tuple removal and close.

#[path = "webrtc_ice_client.rs"]
mod client;

use client::*;
use shardsfu_engine::webrtc::ice::{IceEvent, IceState, MAX_TUPLES};
use shardsfu_engine::webrtc::stun::StunError;

#[test]
fn request_without_use_candidate_connects() {
    let mut h = Harness::new();
    let t = tuple(5000);
    assert_eq!(h.server.state(), IceState::New);
    assert!(!h.server.is_valid_tuple(&t));
    let req = h.req();
    assert!(h.send(&t, &req));
    assert_eq!(h.server.state(), IceState::Connected);
    assert_eq!(h.server.selected_tuple(), Some(&t));
    assert!(h.server.is_valid_tuple(&t));
    assert_eq!(h.events(), vec![IceEvent::SelectedTupleChange(t), IceEvent::StateChange(IceState::Connected)]);
    // More checks on the same tuple change nothing.
    let req = h.req();
    assert!(h.send(&t, &req));
    assert!(h.events().is_empty());
}

#[test]
fn use_candidate_completes_and_selects() {
    let mut h = Harness::new();
    let t = tuple(5000);
    let req = h.req().nominate();
    assert!(h.send(&t, &req));
    assert_eq!(h.server.state(), IceState::Completed);
    assert_eq!(h.server.selected_tuple(), Some(&t));
    assert_eq!(h.events(), vec![IceEvent::SelectedTupleChange(t), IceEvent::StateChange(IceState::Completed)]);
}

#[test]
fn connected_then_nominated_elsewhere_switches_and_completes() {
    let mut h = Harness::new();
    let (a, b) = (tuple(5000), tuple(5001));
    let req = h.req();
    assert!(h.send(&a, &req));
    h.events();
    // A check on another tuple without nomination: valid, not selected.
    let req = h.req();
    assert!(h.send(&b, &req));
    assert!(h.server.is_valid_tuple(&b));
    assert_eq!(h.server.selected_tuple(), Some(&a));
    assert!(h.events().is_empty());
    // Nominated: selected, completed.
    let req = h.req().nominate();
    assert!(h.send(&b, &req));
    assert_eq!(h.server.state(), IceState::Completed);
    assert_eq!(h.server.selected_tuple(), Some(&b));
    assert_eq!(h.events(), vec![IceEvent::SelectedTupleChange(b), IceEvent::StateChange(IceState::Completed)]);
    assert!(h.server.is_valid_tuple(&a));
}

#[test]
fn second_nominated_tuple_switches_selection() {
    let mut h = Harness::new();
    let (a, b) = (tuple(5000), tuple(5001));
    let req = h.req().nominate();
    assert!(h.send(&a, &req));
    h.events();
    let req = h.req().nominate();
    assert!(h.send(&b, &req));
    assert_eq!(h.server.state(), IceState::Completed);
    assert_eq!(h.server.selected_tuple(), Some(&b));
    assert_eq!(h.events(), vec![IceEvent::SelectedTupleChange(b)]);
    // And back.
    let req = h.req().nominate();
    assert!(h.send(&a, &req));
    assert_eq!(h.events(), vec![IceEvent::SelectedTupleChange(a)]);
}

#[test]
fn tcp_and_udp_tuples_are_distinct() {
    let mut h = Harness::new();
    let udp = tuple(5000);
    let mut tcp = udp;
    tcp.protocol = shardsfu_engine::Protocol::Tcp;
    let req = h.req();
    assert!(h.send(&udp, &req));
    assert!(!h.server.is_valid_tuple(&tcp));
}

#[test]
fn tuples_are_bounded_and_the_selected_one_survives() {
    let mut h = Harness::new();
    let selected = tuple(5000);
    let req = h.req().nominate();
    assert!(h.send(&selected, &req));
    h.events();
    for port in 6000..6000 + MAX_TUPLES as u16 + 3 {
        let req = h.req();
        assert!(h.send(&tuple(port), &req));
    }
    assert_eq!(h.server.tuples().len(), MAX_TUPLES);
    assert!(h.server.is_valid_tuple(&selected));
    assert_eq!(h.server.selected_tuple(), Some(&selected));
    // The oldest non-selected ones went, each with an event.
    let removed: Vec<_> = h.events().into_iter().filter(|e| matches!(e, IceEvent::TupleRemoved(_))).collect();
    assert_eq!(removed, (6000..6004).map(|p| IceEvent::TupleRemoved(tuple(p))).collect::<Vec<_>>());
    assert!(!h.server.is_valid_tuple(&tuple(6000)));
}

#[test]
fn removing_the_selected_tuple_selects_the_newest_or_disconnects() {
    let mut h = Harness::new();
    let (a, b) = (tuple(5000), tuple(5001));
    let req = h.req().nominate();
    assert!(h.send(&a, &req));
    let req = h.req();
    assert!(h.send(&b, &req));
    h.events();
    let now = h.now;
    h.server.remove_tuple(now, &a);
    assert_eq!(h.server.selected_tuple(), Some(&b));
    assert_eq!(h.events(), vec![IceEvent::TupleRemoved(a), IceEvent::SelectedTupleChange(b)]);
    h.server.remove_tuple(now, &b);
    assert_eq!(h.server.state(), IceState::Disconnected);
    assert_eq!(h.server.selected_tuple(), None);
    assert_eq!(h.events(), vec![IceEvent::TupleRemoved(b), IceEvent::StateChange(IceState::Disconnected)]);
    // A new check brings it back.
    let req = h.req();
    assert!(h.send(&a, &req));
    assert_eq!(h.server.state(), IceState::Connected);
}

#[test]
fn closed_server_refuses_everything() {
    let mut h = Harness::new();
    let t = tuple(5000);
    let req = h.req().nominate();
    assert!(h.send(&t, &req));
    h.events();
    h.server.close();
    assert_eq!(h.server.state(), IceState::Closed);
    assert!(!h.server.is_valid_tuple(&t));
    assert_eq!(h.events(), vec![IceEvent::TupleRemoved(t), IceEvent::StateChange(IceState::Closed)]);
    let bytes = h.req().build();
    assert_eq!(h.server.handle_stun(h.now, &t, &bytes, &mut h.out), Err(StunError::Closed));
    assert_eq!(h.server.poll_timeout(), None);
    let now = h.now;
    assert!(h.server.restart(now, UFRAG.into(), PWD.into()).is_err());
}

#[test]
fn parameters_and_candidates_serialize_like_mediasoup() {
    use shardsfu_engine::webrtc::ice::{ice_candidate_priority, IceCandidate, ProtocolPreference};
    use shardsfu_engine::Protocol;
    let h = Harness::new();
    let p = serde_json::to_value(h.server.parameters()).unwrap();
    assert_eq!(p, serde_json::json!({ "usernameFragment": UFRAG, "password": PWD, "iceLite": true }));
    let udp = IceCandidate::host(
        "203.0.113.1",
        Protocol::Udp,
        40000,
        ice_candidate_priority(0, Protocol::Udp, ProtocolPreference::None),
    );
    let tcp = IceCandidate::host(
        "203.0.113.1",
        Protocol::Tcp,
        40001,
        ice_candidate_priority(1, Protocol::Tcp, ProtocolPreference::None),
    );
    assert_eq!(
        serde_json::to_value(&udp).unwrap(),
        serde_json::json!({ "foundation": "udpcandidate", "priority": 1076302079u32, "address": "203.0.113.1",
            "ip": "203.0.113.1", "protocol": "udp", "port": 40000, "type": "host" })
    );
    let v = serde_json::to_value(&tcp).unwrap();
    assert_eq!(v["tcpType"], "passive");
    assert_eq!(v["foundation"], "tcpcandidate");
    assert!(udp.priority > tcp.priority);
    let back: IceCandidate = serde_json::from_value(v).unwrap();
    assert_eq!(back, tcp);
}
