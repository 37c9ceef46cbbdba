//! mediasoup's RTP observers over real UDP: AudioLevelObserver's `volumes` and `silence`,
//! ActiveSpeakerObserver's `dominantspeaker`, their typed errors, pause, close cascades, and a
//! router spanning shards whose producers the observer sees wherever they were placed.

use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shardsfu_tests::shardsfu_engine::rtp_parameters::{
    uri, MediaKind, RtpCodecParameters, RtpEncodingParameters, RtpHeaderExtensionParameters, RtpParameters,
};
use shardsfu_tests::shardsfu_engine::{
    block_on, ActiveSpeakerObserverOptions, AudioLevelObserverOptions, AudioLevelObserverVolume, ErrorKind, Producer,
    ProducerOptions, Router,
};
use shardsfu_tests::*;

/// The producer's id of the `ssrc-audio-level` extension.
const LEVEL_EXT: u8 = 1;
/// Silence in RFC 6464 terms (-127 dBov).
const SILENT: u8 = 127;

fn opus_params(ssrc: u32) -> RtpParameters {
    RtpParameters {
        codecs: vec![RtpCodecParameters {
            mime_type: "audio/opus".into(),
            payload_type: 100,
            clock_rate: 48000,
            channels: Some(2),
            parameters: None,
            rtcp_feedback: None,
        }],
        header_extensions: Some(vec![RtpHeaderExtensionParameters {
            uri: uri::AUDIO_LEVEL.into(),
            id: LEVEL_EXT,
            encrypt: None,
            parameters: None,
        }]),
        encodings: Some(vec![RtpEncodingParameters { ssrc: Some(ssrc), ..Default::default() }]),
        ..Default::default()
    }
}

/// A talker: an opus producer on its own comedia transport, and the socket it sends from.
struct Talker {
    transport: shardsfu_tests::shardsfu_engine::PlainTransport,
    producer: Producer,
    sock: UdpSocket,
    ssrc: u32,
    seq: u16,
}

fn talker(router: &Router, ssrc: u32) -> Talker {
    let (t, sock) = ingest(router);
    let producer = block_on(t.produce(ProducerOptions::new(MediaKind::Audio, opus_params(ssrc)))).expect("produce");
    Talker { transport: t, producer, sock, ssrc, seq: 0 }
}

impl Talker {
    /// One 20 ms opus packet whose audio level is `level` (-dBov) with the voice bit set.
    fn send(&mut self, level: u8) {
        self.seq = self.seq.wrapping_add(1);
        let mut p = vec![0x90, 100];
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(self.seq) * 960).to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        // RFC 8285 one-byte header: one element (id, length 1), padded to a 32-bit word.
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, LEVEL_EXT << 4, 0x80 | level, 0, 0]);
        p.extend_from_slice(&[0xfc; 40]);
        self.sock.send(&p).expect("send");
    }
}

/// Every talker sends one packet per 10 ms at its level, for `time`.
fn talk(talkers: &mut [(&mut Talker, u8)], time: Duration) {
    let end = Instant::now() + time;
    while Instant::now() < end {
        for (t, level) in talkers.iter_mut() {
            t.send(*level);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn opus_router(engine: &shardsfu_tests::shardsfu_engine::Engine) -> Router {
    router(&worker(engine))
}

fn kind<T>(r: Result<T, shardsfu_tests::shardsfu_engine::Error>) -> ErrorKind {
    r.map(|_| ()).unwrap_err().kind
}

type Volumes = Arc<Mutex<Vec<Vec<AudioLevelObserverVolume>>>>;

fn volume(producer: &Producer, volume: i8) -> AudioLevelObserverVolume {
    AudioLevelObserverVolume { producer_id: producer.id().to_owned(), volume }
}

#[test]
fn audio_levels_report_the_loudest_producers_then_silence_once() {
    let engine = engine(1);
    let router = opus_router(&engine);
    let (mut loud, mut soft, mut faint) = (talker(&router, 1001), talker(&router, 1002), talker(&router, 1003));
    let options = |max_entries, threshold| AudioLevelObserverOptions {
        max_entries,
        threshold,
        interval: 250,
        ..Default::default()
    };
    let two = block_on(router.create_audio_level_observer(options(2, -60))).unwrap();
    let one = block_on(router.create_audio_level_observer(options(1, -60))).unwrap();
    let (volumes_two, volumes_one): (Volumes, Volumes) = Default::default();
    let silences = counter();
    for (o, v) in [(&two, &volumes_two), (&one, &volumes_one)] {
        let v = v.clone();
        o.on_volumes(move |vs| v.lock().unwrap().push(vs.to_vec()));
        for t in [&loud, &soft, &faint] {
            block_on(o.add_producer(t.producer.id())).unwrap();
        }
    }
    two.on_silence(bump(&silences));

    // -20 and -50 dBov pass the -60 threshold, -70 does not; loudest first, at most maxEntries.
    talk(&mut [(&mut loud, 20), (&mut soft, 50), (&mut faint, 70)], Duration::from_millis(900));
    let want_two = vec![volume(&loud.producer, -20), volume(&soft.producer, -50)];
    assert!(wait_for(ARRIVAL, || volumes_two.lock().unwrap().contains(&want_two)), "{:?}", volumes_two.lock().unwrap());
    assert!(volumes_two.lock().unwrap().iter().all(|vs| !vs.iter().any(|v| v.producer_id == faint.producer.id())));
    assert!(volumes_one.lock().unwrap().iter().all(|vs| vs.len() == 1));
    assert!(volumes_one.lock().unwrap().contains(&vec![volume(&loud.producer, -20)]));
    assert_eq!(count(&silences), 0);

    // Quiet: one `silence`, not one per interval.
    assert!(wait_for(ARRIVAL, || count(&silences) == 1));
    let heard = volumes_two.lock().unwrap().len();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(count(&silences), 1, "silence is told once");
    assert_eq!(volumes_two.lock().unwrap().len(), heard);

    // The router's dump lists the observers and what each producer is watched by.
    let dump = block_on(router.dump()).unwrap();
    let ids = dump["rtpObserverIds"].as_array().unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&serde_json::json!(two.id())) && ids.contains(&serde_json::json!(one.id())));
    let map = dump["mapProducerIdObserverIds"].as_array().unwrap();
    assert_eq!(map.len(), 3);
    assert!(map.iter().all(|e| e["values"].as_array().unwrap().len() == 2));
    engine.close();
}

#[test]
fn observer_calls_are_checked_and_a_rejected_call_changes_nothing() {
    let engine = engine(1);
    let router = opus_router(&engine);
    let bad = |max_entries, threshold| AudioLevelObserverOptions { max_entries, threshold, ..Default::default() };
    assert_eq!(kind(block_on(router.create_audio_level_observer(bad(0, -80)))), ErrorKind::TypeError);
    assert_eq!(kind(block_on(router.create_audio_level_observer(bad(1, 1)))), ErrorKind::TypeError);
    assert_eq!(kind(block_on(router.create_audio_level_observer(bad(1, -128)))), ErrorKind::TypeError);
    assert_eq!(block_on(router.dump()).unwrap()["rtpObserverIds"], serde_json::json!([]), "nothing created");

    let observer =
        block_on(router.create_audio_level_observer(AudioLevelObserverOptions { interval: 250, ..Default::default() }))
            .unwrap();
    let (ingest_t, _) = ingest(&router);
    let video = produce_vp8(&ingest_t, 3000, None);
    assert_eq!(kind(block_on(observer.add_producer(video.id()))), ErrorKind::TypeError, "not an audio Producer");
    assert_eq!(kind(block_on(observer.add_producer("no-such-producer"))), ErrorKind::Error);
    let mut voice = talker(&router, 3001);
    block_on(observer.add_producer(voice.producer.id())).unwrap();
    assert_eq!(kind(block_on(observer.add_producer(voice.producer.id()))), ErrorKind::Error, "already added");
    assert_eq!(kind(block_on(observer.remove_producer(video.id()))), ErrorKind::Error, "never added");

    // The failed calls left the observer as it was: it still reports the voice, once.
    let heard: Volumes = Default::default();
    let h = heard.clone();
    observer.on_volumes(move |vs| h.lock().unwrap().push(vs.to_vec()));
    talk(&mut [(&mut voice, 30)], Duration::from_millis(600));
    assert!(wait_for(ARRIVAL, || heard.lock().unwrap().contains(&vec![volume(&voice.producer, -30)])));

    let (added, removed) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
    let (a, r) = (added.clone(), removed.clone());
    observer.on_add_producer(move |id| a.lock().unwrap().push(id.to_owned()));
    observer.on_remove_producer(move |id| r.lock().unwrap().push(id.to_owned()));
    block_on(observer.remove_producer(voice.producer.id())).unwrap();
    block_on(observer.add_producer(voice.producer.id())).unwrap();
    assert_eq!(*removed.lock().unwrap(), vec![voice.producer.id().to_owned()]);
    assert_eq!(*added.lock().unwrap(), vec![voice.producer.id().to_owned()]);

    let closes = counter();
    observer.on_close(bump(&closes));
    observer.close();
    assert!(observer.closed());
    assert_eq!(count(&closes), 1);
    assert_eq!(kind(block_on(observer.add_producer(voice.producer.id()))), ErrorKind::InvalidStateError);
    assert_eq!(kind(block_on(observer.pause())), ErrorKind::InvalidStateError);
    assert_eq!(block_on(router.dump()).unwrap()["rtpObserverIds"], serde_json::json!([]));
    assert!(!voice.producer.closed(), "closing an observer leaves its producers alone");
    engine.close();
}

#[test]
fn a_paused_observer_tells_nothing_and_a_closed_producer_is_forgotten() {
    let engine = engine(1);
    let router = opus_router(&engine);
    let observer =
        block_on(router.create_audio_level_observer(AudioLevelObserverOptions { interval: 250, ..Default::default() }))
            .unwrap();
    let mut voice = talker(&router, 4001);
    block_on(observer.add_producer(voice.producer.id())).unwrap();
    let heard: Volumes = Default::default();
    let h = heard.clone();
    observer.on_volumes(move |vs| h.lock().unwrap().push(vs.to_vec()));
    let (pauses, resumes) = (counter(), counter());
    observer.on_pause(bump(&pauses));
    observer.on_resume(bump(&resumes));

    block_on(observer.pause()).unwrap();
    assert!(observer.paused());
    assert_eq!(count(&pauses), 1);
    talk(&mut [(&mut voice, 25)], Duration::from_millis(700));
    assert!(heard.lock().unwrap().is_empty(), "paused: no volumes");

    block_on(observer.resume()).unwrap();
    assert_eq!(count(&resumes), 1);
    talk(&mut [(&mut voice, 25)], Duration::from_millis(600));
    assert!(wait_for(ARRIVAL, || heard.lock().unwrap().contains(&vec![volume(&voice.producer, -25)])));

    voice.producer.close();
    assert!(wait_for(ARRIVAL, || block_on(router.dump()).unwrap()["mapProducerIdObserverIds"] == serde_json::json!([])));
    assert!(!observer.closed());
    engine.close();
}

#[test]
fn the_dominant_speaker_follows_whoever_talks() {
    let engine = engine(1);
    let router = opus_router(&engine);
    let observer = block_on(
        router.create_active_speaker_observer(ActiveSpeakerObserverOptions { interval: 100, ..Default::default() }),
    )
    .unwrap();
    let (mut a, mut b) = (talker(&router, 5001), talker(&router, 5002));
    for t in [&a, &b] {
        block_on(observer.add_producer(t.producer.id())).unwrap();
    }
    let dominant = Arc::new(Mutex::new(Vec::<String>::new()));
    let d = dominant.clone();
    observer.on_dominant_speaker(move |id| d.lock().unwrap().push(id.to_owned()));
    let last = || dominant.lock().unwrap().last().cloned();

    // Both quiet (a noise floor near -100 dBov): nobody is dominant.
    talk(&mut [(&mut a, 100), (&mut b, 100)], Duration::from_millis(500));
    assert_eq!(last(), None);
    // A talks (-20 dBov), B stays quiet: A.
    talk(&mut [(&mut a, 20), (&mut b, 100)], Duration::from_millis(1500));
    assert!(wait_for(ARRIVAL, || last().as_deref() == Some(a.producer.id())), "{:?}", dominant.lock().unwrap());
    // Now B talks and A is quiet: B takes over.
    talk(&mut [(&mut a, 100), (&mut b, 20)], Duration::from_millis(2000));
    assert!(wait_for(ARRIVAL, || last().as_deref() == Some(b.producer.id())), "{:?}", dominant.lock().unwrap());
    let told = dominant.lock().unwrap().clone();
    assert_eq!(told, vec![a.producer.id().to_owned(), b.producer.id().to_owned()], "told on each change only");
    engine.close();
}

#[test]
fn an_observer_watches_producers_on_every_shard_of_its_router() {
    let engine = spread_engine();
    let router = opus_router(&engine);
    let observer = block_on(router.create_audio_level_observer(AudioLevelObserverOptions {
        max_entries: 4,
        interval: 250,
        ..Default::default()
    }))
    .unwrap();
    let mut talkers: Vec<Talker> = (0..4).map(|i| talker(&router, 6001 + i)).collect();
    assert_eq!(router.shards().len(), 2, "the room spread over both shards");
    assert!(talkers.iter().any(|t| t.transport.shard() != router.shard()), "producers away from the observer");
    for t in &talkers {
        block_on(observer.add_producer(t.producer.id())).unwrap();
    }
    let heard: Volumes = Default::default();
    let h = heard.clone();
    observer.on_volumes(move |vs| h.lock().unwrap().push(vs.to_vec()));
    let levels = [10u8, 20, 30, 40];
    let mut pairs: Vec<(&mut Talker, u8)> = talkers.iter_mut().zip(levels).collect();
    talk(&mut pairs, Duration::from_millis(900));
    let want: Vec<_> = talkers.iter().zip(levels).map(|(t, l)| volume(&t.producer, -(l as i8))).collect();
    assert!(wait_for(ARRIVAL, || heard.lock().unwrap().contains(&want)), "{:?}", heard.lock().unwrap());

    // Audio from the far shard crossed once per packet per producer (to the observer's mirror).
    let dump = block_on(engine.dump()).unwrap();
    let crossed: u64 = dump["shards"].as_array().unwrap().iter().map(|s| s["recordsToShards"].as_u64().unwrap()).sum();
    assert!(crossed > 0, "{dump}");

    // The router closes: so does its observer, with `routerclose`.
    let router_closes = counter();
    observer.on_router_close(bump(&router_closes));
    router.close();
    assert!(wait_for(ARRIVAL, || observer.closed() && count(&router_closes) == 1));
    let _ = talkers.iter_mut().map(|t| t.send(SILENT)).count();
    engine.close();
}
