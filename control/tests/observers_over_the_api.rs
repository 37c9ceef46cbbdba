//! RTP observers over the API, with real RTP over UDP carrying the `ssrc-audio-level` header
//! extension: `rtpObserver.volumes` then one `rtpObserver.silence` (AudioLevelObserver),
//! `rtpObserver.dominantspeaker` (ActiveSpeakerObserver), pause/resume, add/removeProducer with
//! their typed errors, calls on a closed observer, and `rtpObserver.routerclose`.

mod common;

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// The producers' id of the `ssrc-audio-level` extension.
const LEVEL_EXT: u8 = 1;
/// Silence in RFC 6464 terms (-127 dBov).
const SILENT: u8 = 127;

fn opus_params(ssrc: u32) -> Value {
    json!({
        "codecs": [{ "mimeType": "audio/opus", "payloadType": 100, "clockRate": 48000, "channels": 2 }],
        "headerExtensions": [{ "uri": AUDIO_LEVEL_URI, "id": LEVEL_EXT }],
        "encodings": [{ "ssrc": ssrc }],
    })
}

/// A comedia PlainTransport with an opus producer (SSRC `ssrc`) and a socket sending to it;
/// (producerId, sender).
fn opus_ingest(c: &mut Client, router: &str, ssrc: u32) -> (String, UdpSocket) {
    let t = c.call(
        "router.createPlainTransport",
        json!({ "routerId": router, "listenInfo": { "protocol": "udp", "ip": "127.0.0.1" }, "comedia": true }),
    );
    let sender = udp();
    sender.connect(("127.0.0.1", port_of(&t))).unwrap();
    let p = c.call(
        "transport.produce",
        json!({ "transportId": t["id"], "kind": "audio", "rtpParameters": opus_params(ssrc) }),
    );
    (p["id"].as_str().unwrap().to_owned(), sender)
}

/// One opus packet whose RFC 6464 level is `level` (-dBov, voice bit set), in an RFC 8285
/// one-byte header extension (profile 0xBEDE).
fn opus_packet(seq: u16, ssrc: u32, level: u8) -> Vec<u8> {
    let mut p = vec![0x90, 100];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 960).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    // One element (id, length 1) padded to a 32-bit word.
    p.extend_from_slice(&[0xbe, 0xde, 0, 1, LEVEL_EXT << 4, 0x80 | level, 0, 0]);
    p.extend_from_slice(&[0xfc; 40]);
    p
}

/// Senders sending one packet each per 10 ms, at the level their function gives for the time
/// since they started, until stopped.
struct Talk {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

type Level = Box<dyn Fn(Duration) -> u8 + Send>;

impl Talk {
    fn start(talkers: Vec<(UdpSocket, u32, Level)>) -> Talk {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let mut seq = 0u16;
            while !s.load(Ordering::Acquire) {
                seq = seq.wrapping_add(1);
                for (sock, ssrc, level) in &talkers {
                    let _ = sock.send(&opus_packet(seq, *ssrc, level(start.elapsed())));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Talk { stop, thread: Some(thread) }
    }

    /// Stop sending; the sockets are dropped.
    fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Talk {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn error_class(e: &Value) -> (Option<i64>, Option<&str>) {
    (e["code"].as_i64(), e["data"]["name"].as_str())
}

/// The `rtpObserver.*` notifications received (others, e.g. `producer.score`, are left out).
fn observer_notifications(c: &Client) -> Vec<&Value> {
    c.notifications.iter().filter(|n| n["method"].as_str().is_some_and(|m| m.starts_with("rtpObserver."))).collect()
}

fn count(c: &Client, method: &str, observer: &Value) -> usize {
    c.notifications.iter().filter(|n| n["method"] == method && &n["params"]["rtpObserverId"] == observer).count()
}

#[test]
fn audio_level_observer_volumes_silence_pause_and_errors() {
    let sfu = Sfu::start(&[]);
    let mut c = sfu.client();
    let (_, router, caps) = worker_and_router(&mut c);
    assert!(
        caps["headerExtensions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["uri"] == AUDIO_LEVEL_URI && e["kind"] == "audio"),
        "the router offers ssrc-audio-level for audio: {caps}"
    );

    // Bad options: the engine's TypeError, or a param of the wrong type.
    for bad in [json!({ "maxEntries": 0 }), json!({ "threshold": 1 }), json!({ "threshold": -128 })] {
        let mut params = bad.clone();
        params["routerId"] = json!(router);
        let e = c.call_err("router.createAudioLevelObserver", params);
        assert_eq!(error_class(&e), (Some(-32000), Some("TypeError")), "{bad}: {e}");
    }
    let e = c.call_err("router.createAudioLevelObserver", json!({ "routerId": router, "maxEntries": "two" }));
    assert_eq!(error_class(&e), (Some(-32602), Some("TypeError")), "{e}");

    let o = c.call(
        "router.createAudioLevelObserver",
        json!({ "routerId": router, "maxEntries": 2, "threshold": -80, "interval": 250, "appData": { "room": 1 } }),
    );
    assert_eq!(o["type"], "audiolevel", "{o}");
    assert_eq!(o["paused"], false, "{o}");
    let oid = o["id"].clone();
    assert!(oid.is_string());

    let (audio, sender) = opus_ingest(&mut c, &router, 3001);
    let (_, video, _) = ingest(&mut c, &router, 3002);

    // A video producer is a TypeError, an unknown one an Error; neither is added.
    let e = c.call_err("rtpObserver.addProducer", json!({ "rtpObserverId": oid, "producerId": video }));
    assert_eq!(error_class(&e), (Some(-32000), Some("TypeError")), "{e}");
    let e = c.call_err(
        "rtpObserver.addProducer",
        json!({ "rtpObserverId": oid, "producerId": "00000000-0000-0000-0000-000000000000" }),
    );
    assert_eq!(error_class(&e), (Some(-32000), Some("Error")), "{e}");
    let e = c.call_err("rtpObserver.addProducer", json!({ "rtpObserverId": oid }));
    assert_eq!(error_class(&e), (Some(-32602), Some("TypeError")), "{e}");
    assert_eq!(c.call("rtpObserver.addProducer", json!({ "rtpObserverId": oid, "producerId": audio })), Value::Null);

    let dump = c.call("router.dump", json!({ "routerId": router }));
    assert_eq!(dump["rtpObserverIds"], json!([oid]), "{dump}");
    let map = dump["mapProducerIdObserverIds"].to_string();
    assert!(map.contains(&audio) && map.contains(oid.as_str().unwrap()) && !map.contains(&video), "{dump}");

    // -20 dBov, 25 packets per 250 ms interval: volumes names the producer at -20.
    let talk = Talk::start(vec![(sender, 3001, Box::new(|_| 20))]);
    let n = c.notification("rtpObserver.volumes", "rtpObserverId", &oid);
    assert_eq!(n["params"]["volumes"], json!([{ "producerId": audio, "volume": -20 }]), "{n}");
    assert_eq!(count(&c, "rtpObserver.silence", &oid), 0, "no silence before or while it talks");

    // Paused: nothing is told; resumed: volumes again. The client's own calls echo nothing.
    c.call("rtpObserver.pause", json!({ "rtpObserverId": oid }));
    c.drain(Duration::from_millis(300));
    c.notifications.clear();
    c.drain(Duration::from_millis(700));
    assert!(observer_notifications(&c).is_empty(), "nothing while paused: {:?}", c.notifications);
    c.call("rtpObserver.pause", json!({ "rtpObserverId": oid }));
    c.call("rtpObserver.resume", json!({ "rtpObserverId": oid }));
    let n = c.notification("rtpObserver.volumes", "rtpObserverId", &oid);
    assert_eq!(n["params"]["volumes"], json!([{ "producerId": audio, "volume": -20 }]), "{n}");

    // Quiet: one silence, then nothing.
    talk.stop();
    c.notification("rtpObserver.silence", "rtpObserverId", &oid);
    c.notifications.clear();
    c.drain(Duration::from_millis(1000));
    assert!(observer_notifications(&c).is_empty(), "silence is told once: {:?}", c.notifications);

    // removeProducer: accepted; it is gone from the router's map.
    c.call("rtpObserver.removeProducer", json!({ "rtpObserverId": oid, "producerId": audio }));
    let dump = c.call("router.dump", json!({ "routerId": router }));
    assert!(!dump["mapProducerIdObserverIds"].to_string().contains(oid.as_str().unwrap()), "{dump}");

    // Closed by the client: every call is an InvalidStateError, and no routerclose comes later.
    c.call("rtpObserver.close", json!({ "rtpObserverId": oid }));
    for (method, extra) in [
        ("rtpObserver.addProducer", json!({ "producerId": audio })),
        ("rtpObserver.removeProducer", json!({ "producerId": audio })),
        ("rtpObserver.pause", json!({})),
        ("rtpObserver.resume", json!({})),
        ("rtpObserver.close", json!({})),
    ] {
        let mut params = extra;
        params["rtpObserverId"] = oid.clone();
        let e = c.call_err(method, params);
        assert_eq!(error_class(&e), (Some(-32000), Some("InvalidStateError")), "{method}: {e}");
    }
    let dump = c.call("router.dump", json!({ "routerId": router }));
    assert_eq!(dump["rtpObserverIds"], json!([]), "{dump}");

    // router.close: a live observer hears routerclose, and is gone.
    let other = c.call("router.createActiveSpeakerObserver", json!({ "routerId": router }))["id"].clone();
    c.call("router.close", json!({ "routerId": router }));
    c.notification("rtpObserver.routerclose", "rtpObserverId", &other);
    let e = c.call_err("rtpObserver.pause", json!({ "rtpObserverId": other }));
    assert_eq!(error_class(&e), (Some(-32000), Some("InvalidStateError")), "{e}");
    c.drain(Duration::from_millis(200));
    assert_eq!(count(&c, "rtpObserver.routerclose", &oid), 0, "{:?}", c.notifications);
}

#[test]
fn active_speaker_observer_names_the_loud_producer() {
    let sfu = Sfu::start(&[]);
    let mut c = sfu.client();
    let (worker, router, _) = worker_and_router(&mut c);
    let o = c.call("router.createActiveSpeakerObserver", json!({ "routerId": router, "interval": 100 }));
    assert_eq!(o["type"], "activespeaker", "{o}");
    let oid = o["id"].clone();

    let (loud, loud_sender) = opus_ingest(&mut c, &router, 4001);
    let (quiet, quiet_sender) = opus_ingest(&mut c, &router, 4002);
    let (_, video, _) = ingest(&mut c, &router, 4003);
    let e = c.call_err("rtpObserver.addProducer", json!({ "rtpObserverId": oid, "producerId": video }));
    assert_eq!(error_class(&e), (Some(-32000), Some("TypeError")), "{e}");
    for p in [&loud, &quiet] {
        c.call("rtpObserver.addProducer", json!({ "rtpObserverId": oid, "producerId": p }));
    }

    // The loud one sets a noise floor (-100 dBov) first, then talks at -20 dBov; the other sends
    // silence (-127 dBov) throughout.
    let talk = Talk::start(vec![
        (loud_sender, 4001, Box::new(|t: Duration| if t < Duration::from_millis(500) { 100 } else { 20 })),
        (quiet_sender, 4002, Box::new(|_| SILENT)),
    ]);
    let n = c.notification("rtpObserver.dominantspeaker", "rtpObserverId", &oid);
    assert_eq!(n["params"]["producerId"], loud.as_str(), "{n}");
    c.drain(Duration::from_millis(500));
    talk.stop();
    assert!(
        c.notifications.iter().all(|n| n["method"] != "rtpObserver.dominantspeaker"),
        "told once while nothing changes: {:?}",
        c.notifications
    );

    // worker.close closes the router: its observer hears routerclose.
    c.call("worker.close", json!({ "workerId": worker }));
    c.notification("rtpObserver.routerclose", "rtpObserverId", &oid);
}
