//! Fuzz target body for "RTP observers": [`drive`] builds a shard with two opus producers that
//! carry the `ssrc-audio-level` extension, one AudioLevelObserver and one ActiveSpeakerObserver
//! watching them, then reads `data` as operations: RTP packets with arbitrary extension bytes,
//! time steps, observer pause/resume, producer add/remove/pause/close. After each one it checks
//! what the observers told: only watched producers, loudest first, at most `maxEntries`, at or
//! above the threshold, `silence` never twice in a row, a dominant speaker told only on change.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use shardsfu_net::SocketId;

use super::fuzz::Input;
use super::{Event, NtpClock, ObjectId, ObserverSpec, PlainSpec, ProducerSpec, Shard, Sink};
use crate::ortc;
use crate::rtp_parameters::{uri, MediaKind, RtpParameters};

const ROUTER: ObjectId = 1;
const LEVELS: ObjectId = 50;
const SPEAKER: ObjectId = 51;
const MAX_ENTRIES: usize = 1;
const THRESHOLD: i8 = -60;
const LEVEL_EXT: u8 = 1;
const PRODUCERS: usize = 2;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

struct Discard;

impl<'a> Sink<'a> for Discard {
    fn send(&mut self, _: SocketId, _: SocketAddr, _: &[u8], _: &'a [u8]) {}
}

fn opus_spec(ssrc: u32) -> ProducerSpec {
    let media = serde_json::from_value::<Vec<_>>(json!([
        { "kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2 }
    ]))
    .expect("media codecs");
    let caps = ortc::generate_router_rtp_capabilities(&media).expect("router caps");
    let mut params: RtpParameters = serde_json::from_value(json!({
        "codecs": [{ "mimeType": "audio/opus", "payloadType": 100, "clockRate": 48000, "channels": 2 }],
        "headerExtensions": [{ "uri": uri::AUDIO_LEVEL, "id": LEVEL_EXT }],
        "encodings": [{ "ssrc": ssrc }]
    }))
    .expect("producer params");
    ortc::validate_rtp_parameters(&mut params).expect("valid");
    let mapping = ortc::get_producer_rtp_parameters_mapping(&mut params, &caps, ssrc).expect("mapping");
    ProducerSpec {
        kind: MediaKind::Audio,
        rtp_parameters: params,
        rtp_mapping: mapping,
        ext_map: Vec::new(),
        paused: false,
        key_frame_request_delay_ms: 0,
    }
}

struct Fuzz {
    shard: Shard,
    now: Instant,
    /// Per producer: its id, and whether it is open.
    open: [bool; PRODUCERS],
    seq: u16,
    silent: bool,
    dominant: Option<ObjectId>,
    /// Events seen: volumes, silences, dominant speaker changes.
    told: [u32; 3],
}

fn producer_id(i: usize) -> ObjectId {
    10 + i as ObjectId
}

impl Fuzz {
    fn new() -> Fuzz {
        let now = Instant::now();
        let mut shard = Shard::new(now, NtpClock::new(now, SystemTime::UNIX_EPOCH));
        shard.create_router(ROUTER).expect("router");
        for i in 0..PRODUCERS {
            let transport = 20 + i as ObjectId;
            let spec = PlainSpec {
                rtp_socket: SocketId(i as u32 + 1),
                local: addr(10_000 + i as u16),
                rtcp_socket: None,
                local_rtcp: None,
                comedia: false,
                rtcp_mux: true,
            };
            shard.create_plain_transport(now, ROUTER, transport, spec).expect("transport");
            shard.connect_plain_transport(transport, addr(20_000 + i as u16), None).expect("connect");
            shard.produce(now, transport, producer_id(i), opus_spec(1000 + i as u32)).expect("produce");
        }
        let levels = ObserverSpec::AudioLevel {
            max_entries: MAX_ENTRIES as u16,
            threshold: THRESHOLD,
            interval: Duration::from_millis(250),
        };
        shard.create_observer(now, ROUTER, LEVELS, levels).expect("observer");
        let speaker = ObserverSpec::ActiveSpeaker { interval: Duration::from_millis(100) };
        shard.create_observer(now, ROUTER, SPEAKER, speaker).expect("observer");
        for i in 0..PRODUCERS {
            for o in [LEVELS, SPEAKER] {
                shard.observer_add_producer(o, producer_id(i)).expect("add");
            }
        }
        Fuzz { shard, now, open: [true; PRODUCERS], seq: 0, silent: true, dominant: None, told: [0; 3] }
    }

    fn packet(&mut self, i: usize, input: &mut Input<'_>) {
        self.seq = self.seq.wrapping_add(1);
        let mut p = vec![0x90, 100];
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(self.seq) * 960).to_be_bytes());
        p.extend_from_slice(&(1000 + i as u32).to_be_bytes());
        // An extension block whose elements the input shapes (often a well formed level).
        let shape = input.u8();
        if shape < 200 {
            p.extend_from_slice(&[0xbe, 0xde, 0, 1, LEVEL_EXT << 4, input.u8(), 0, 0]);
        } else {
            let words = usize::from(shape % 4);
            p.extend_from_slice(&[0xbe, 0xde, 0, words as u8]);
            let body = input.bytes(words * 4).to_vec();
            p.extend_from_slice(&body);
            p.resize(16 + words * 4, 0);
        }
        p.extend_from_slice(&[0xfc; 20]);
        self.shard.handle_datagram(self.now, SocketId(i as u32 + 1), addr(20_000 + i as u16), &mut p, &mut Discard);
        self.check();
    }

    fn check(&mut self) {
        let watched: Vec<ObjectId> = (0..PRODUCERS).filter(|&i| self.open[i]).map(producer_id).collect();
        while let Some(ev) = self.shard.poll_event() {
            match ev {
                Event::AudioVolumes { observer, volumes } => {
                    assert_eq!(observer, LEVELS);
                    assert!(!volumes.is_empty() && volumes.len() <= MAX_ENTRIES, "{volumes:?}");
                    assert!(volumes.windows(2).all(|w| w[0].1 >= w[1].1), "loudest first: {volumes:?}");
                    assert!(volumes.iter().all(|&(p, v)| watched.contains(&p) && v >= THRESHOLD), "{volumes:?}");
                    self.silent = false;
                    self.told[0] += 1;
                }
                Event::AudioSilence { observer } => {
                    assert_eq!(observer, LEVELS);
                    assert!(!self.silent, "silence told twice in a row");
                    self.silent = true;
                    self.told[1] += 1;
                }
                Event::DominantSpeaker { observer, producer } => {
                    assert_eq!(observer, SPEAKER);
                    assert!(watched.contains(&producer), "dominant speaker {producer} not watched");
                    assert_ne!(self.dominant, Some(producer), "told without a change");
                    self.dominant = Some(producer);
                    self.told[2] += 1;
                }
                Event::ProducerScore { .. } | Event::Closed { .. } => {}
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
}

/// Run one fuzz input. Panics on a broken invariant.
pub fn drive(data: &[u8]) {
    run(data);
}

fn run(data: &[u8]) -> Fuzz {
    let mut f = Fuzz::new();
    let mut input = Input::new(data);
    for _ in 0..super::fuzz::MAX_OPS {
        if input.is_empty() {
            break;
        }
        let op = input.u8();
        let i = usize::from(op >> 4) % PRODUCERS;
        match op % 12 {
            0..=5 => f.packet(i, &mut input),
            6 | 7 => {
                f.now += Duration::from_millis(u64::from(input.u8()) * 4);
                f.shard.handle_timeout(f.now, &mut Discard);
            }
            8 => {
                let o = if op & 0x80 != 0 { LEVELS } else { SPEAKER };
                let _ = if op & 0x40 != 0 { f.shard.pause_observer(o) } else { f.shard.resume_observer(f.now, o) };
            }
            9 => {
                let o = if op & 0x80 != 0 { LEVELS } else { SPEAKER };
                let id = producer_id(i);
                // A rejected call (already added, not added, closed) must leave things as they were.
                if f.shard.observer_add_producer(o, id).is_err() {
                    let _ = f.shard.observer_remove_producer(o, id);
                    if o == SPEAKER && f.dominant == Some(id) {
                        f.dominant = None;
                    }
                }
            }
            10 => {
                let _ = if op & 0x40 != 0 {
                    f.shard.pause_producer(producer_id(i))
                } else {
                    f.shard.resume_producer(f.now, producer_id(i))
                };
            }
            _ => {
                if f.shard.close_producer(producer_id(i)).is_ok() {
                    f.open[i] = false;
                    if f.dominant == Some(producer_id(i)) {
                        f.dominant = None;
                    }
                }
            }
        }
        f.check();
    }
    f
}

#[cfg(test)]
mod tests {
    #[test]
    fn arbitrary_inputs_do_not_panic() {
        crate::core::fuzz::pseudo_random_inputs(0x0bad_cafe_1234_5678, &[0, 1, 9, 64, 512, 4096], 30, super::drive);
    }

    #[test]
    fn a_loud_producer_is_reported_then_silence_and_it_is_dominant() {
        // 20 packets of producer 0 at level 10, one per 20 ms (op 0: packet, shape 0: a level
        // byte; op 6: a step of 5 x 4 ms), then 400 ms steps with nothing sent.
        let mut data = Vec::new();
        for _ in 0..20 {
            data.extend_from_slice(&[0, 0, 0x80 | 10, 6, 5]);
        }
        data.extend_from_slice(&[6, 100, 6, 100, 6, 100]);
        let f = super::run(&data);
        assert_eq!(f.told[0], 1, "one volumes");
        assert_eq!(f.told[1], 1, "then one silence");
        assert_eq!(f.dominant, Some(super::producer_id(0)));
    }
}
