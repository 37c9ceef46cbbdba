mod common;

use std::sync::{Arc, Mutex};

use common::*;
use shardsfu_net::{Runtime, RuntimeConfig, SubmitError};

#[test]
fn two_shards_start_and_stop_calling_on_stop() {
    let infos = Arc::new(Mutex::new(Vec::new()));
    let seen = infos.clone();
    let config = RuntimeConfig { shards: 2, pin: true, ..RuntimeConfig::default() };
    let rt = Runtime::start(config, move |info| {
        seen.lock().unwrap().push(info);
        TestService { info, echo_prefix: None, on_stop: None, received: 0, timer: None, timer_fired: None }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rt.shard_count(), 2);
    let mut infos = infos.lock().unwrap().clone();
    infos.sort_by_key(|i| i.index);
    assert_eq!(infos.len(), 2);
    for (i, info) in infos.iter().enumerate() {
        assert_eq!((info.index, info.count), (i, 2));
        assert!(info.cpu.is_some());
    }

    // on_stop may still send: each shard says "bye" to the receiver.
    let receiver = peer("127.0.0.1:0");
    let dest = receiver.local_addr().unwrap();
    for shard in 0..2 {
        let h = rt.handle(shard);
        assert_eq!(h.index(), shard);
        let (index, count) = call(&h, move |s, io| {
            let sock = io.bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
            s.on_stop = Some(Box::new(move |io| io.send(sock, dest, b"bye", b"")));
            (io.shard(), io.shard_count())
        });
        assert_eq!((index, count), (shard, 2));
    }
    let handle = rt.handle(0);
    rt.shutdown();
    let mut buf = [0u8; 16];
    for _ in 0..2 {
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"bye");
    }
    assert!(matches!(handle.submit(job(|_, _| {})), Err(SubmitError::Stopped(_))));
    assert!(handle.load().tx_packets >= 1);
}

#[test]
fn drop_stops_the_runtime() {
    let rt = start(config(2));
    let h = rt.handle(1);
    assert_eq!(call(&h, |s, _| s.info.index), 1);
    drop(rt);
    assert!(matches!(h.submit(job(|_, _| {})), Err(SubmitError::Stopped(_))));
}
