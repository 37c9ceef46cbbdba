//! Fuzz target body for "datagram demux + transport input": [`drive`] builds a shard with a
//! comedia producer transport (VP8 with RTX and NACK), three consumers (one paused, one on a
//! comedia transport, one without RTX), then reads `data` as a sequence of operations and checks
//! invariants after each one. A panic (assertion or bug) is the finding.
//!
//! Compiled for `cargo test` and under the `fuzzing` feature, which the cargo-fuzz crate in
//! `fuzz/` enables to call `shardsfu_engine::core::fuzz::drive`.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use shardsfu_net::SocketId;

use super::{ConsumerSpec, Event, NtpClock, ObjectId, PlainSpec, ProducerSpec, Shard, Sink, Snapshot};
use crate::ortc;
use crate::rtp::rtcp::{self, ReportBlock, SenderInfo};
use crate::rtp::{classify, parse_rtp, ExtensionsBuilder, PacketKind};
use crate::rtp_parameters::{uri, MediaKind, RtpCapabilities, RtpParameters};

/// Operations read from one input at most (bounds the work per input).
pub const MAX_OPS: usize = 256;
/// Consumer slots (each on its own transport).
const CONSUMERS: usize = 3;

const ROUTER: ObjectId = 1;
const PRODUCER_TRANSPORT: ObjectId = 2;
const PRODUCER: ObjectId = 3;
const PRODUCER_SOCKET: SocketId = SocketId(1);
const PRODUCER_SSRC: u32 = 1111;
const PRODUCER_RTX_SSRC: u32 = 1112;
const VIDEO_PT: u8 = 96;
const RTX_PT: u8 = 97;
/// Producer-side header extension ids.
const EXT_MID: u8 = 4;
const EXT_TCC: u8 = 3;
const EXT_ORIENTATION: u8 = 7;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Copies what the shard sends.
#[derive(Default)]
struct Out {
    datagrams: Vec<(SocketId, SocketAddr, Vec<u8>)>,
}

impl<'a> Sink<'a> for Out {
    fn send(&mut self, socket: SocketId, dest: SocketAddr, head: &[u8], body: &'a [u8]) {
        let mut v = Vec::with_capacity(head.len() + body.len());
        v.extend_from_slice(head);
        v.extend_from_slice(body);
        self.datagrams.push((socket, dest, v));
    }
}

/// Feed `drive` pseudo-random inputs (xorshift from `seed`): `per_len` of each length in `lens`.
/// The fuzz bodies' smoke test under `cargo test`.
#[cfg(test)]
pub(super) fn pseudo_random_inputs(mut seed: u64, lens: &[usize], per_len: usize, drive: impl Fn(&[u8])) {
    for &len in lens {
        for _ in 0..per_len {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            drive(&data);
        }
    }
}

/// Reads the input front to back; runs dry as zeros (so every op is well defined).
pub(super) struct Input<'d> {
    data: &'d [u8],
}

impl<'d> Input<'d> {
    pub(super) fn new(data: &'d [u8]) -> Self {
        Input { data }
    }
    pub(super) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub(super) fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }
    pub(super) fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    pub(super) fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    pub(super) fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }
}

struct Slot {
    transport: ObjectId,
    socket: SocketId,
    /// The endpoint's address (connected, or what it will send from when comedia).
    remote: SocketAddr,
    /// None while closed.
    id: Option<ObjectId>,
    ssrc: u32,
    rtx_ssrc: Option<u32>,
    /// Datagrams seen with the media / RTX SSRC for the current consumer.
    media_out: u64,
    rtx_out: u64,
    last_out_seq: u16,
}

struct Fuzz {
    shard: Shard,
    now: Instant,
    caps: RtpCapabilities,
    consumable: RtpParameters,
    slots: Vec<Slot>,
    next_id: ObjectId,
    next_ssrc: u32,
    seq: u16,
    producer_remote: Option<SocketAddr>,
    comedia_learned: [bool; 2],
    drops_total: u64,
}

fn router_caps() -> RtpCapabilities {
    let media = serde_json::from_value::<Vec<_>>(json!([
        { "kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2 },
        { "kind": "video", "mimeType": "video/VP8", "clockRate": 90000 }
    ]))
    .expect("media codecs");
    ortc::generate_router_rtp_capabilities(&media).expect("router caps")
}

fn producer_spec(caps: &RtpCapabilities) -> (ProducerSpec, RtpParameters) {
    let mut params: RtpParameters = serde_json::from_value(json!({
        "mid": "p",
        "codecs": [
            { "mimeType": "video/VP8", "payloadType": VIDEO_PT, "clockRate": 90000, "rtcpFeedback": [
                { "type": "nack" }, { "type": "nack", "parameter": "pli" }, { "type": "ccm", "parameter": "fir" }
            ] },
            { "mimeType": "video/rtx", "payloadType": RTX_PT, "clockRate": 90000, "parameters": { "apt": VIDEO_PT } }
        ],
        "headerExtensions": [
            { "uri": uri::MID, "id": EXT_MID },
            { "uri": uri::TRANSPORT_WIDE_CC, "id": EXT_TCC },
            { "uri": uri::VIDEO_ORIENTATION, "id": EXT_ORIENTATION }
        ],
        "encodings": [{ "ssrc": PRODUCER_SSRC, "rtx": { "ssrc": PRODUCER_RTX_SSRC } }],
        "rtcp": { "cname": "fuzz" }
    }))
    .expect("producer params");
    ortc::validate_rtp_parameters(&mut params).expect("valid");
    let mapping = ortc::get_producer_rtp_parameters_mapping(&mut params, caps, 5000).expect("mapping");
    let consumable =
        ortc::get_consumable_rtp_parameters(MediaKind::Video, &params, caps, &mapping).expect("consumable");
    let ext_map = params
        .header_extensions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| {
            let caps_ext = caps.header_extensions.as_deref().unwrap_or_default();
            caps_ext.iter().find(|c| c.uri == e.uri && c.kind == MediaKind::Video).map(|c| (e.id, c.preferred_id))
        })
        .collect();
    let spec = ProducerSpec {
        kind: MediaKind::Video,
        rtp_parameters: params,
        rtp_mapping: mapping,
        ext_map,
        paused: false,
        key_frame_request_delay_ms: 0,
    };
    (spec, consumable)
}

impl Fuzz {
    fn new() -> Fuzz {
        let now = Instant::now();
        let mut shard = Shard::new(now, NtpClock::new(now, SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 30)));
        let caps = router_caps();
        shard.create_router(ROUTER).expect("router");
        let plain = |socket: SocketId, port: u16, comedia: bool| PlainSpec {
            rtp_socket: socket,
            local: addr(port),
            rtcp_socket: None,
            local_rtcp: None,
            comedia,
            rtcp_mux: true,
        };
        shard.create_plain_transport(now, ROUTER, PRODUCER_TRANSPORT, plain(PRODUCER_SOCKET, 10_000, true)).unwrap();
        let (spec, consumable) = producer_spec(&caps);
        shard.produce(now, PRODUCER_TRANSPORT, PRODUCER, spec).expect("produce");
        let mut fuzz = Fuzz {
            shard,
            now,
            caps,
            consumable,
            slots: Vec::new(),
            next_id: 100,
            next_ssrc: 0x1000_0000,
            seq: 1000,
            producer_remote: None,
            comedia_learned: [false; 2],
            drops_total: 0,
        };
        for i in 0..CONSUMERS {
            let transport = 10 + i as ObjectId;
            let socket = SocketId(10 + i as u32);
            let remote = addr(21_000 + i as u16);
            // Slot 2 is on a comedia transport.
            let comedia = i == 2;
            fuzz.shard
                .create_plain_transport(now, ROUTER, transport, plain(socket, 11_000 + i as u16, comedia))
                .unwrap();
            if !comedia {
                fuzz.shard.connect_plain_transport(transport, remote, None).expect("connect");
            }
            fuzz.slots.push(Slot {
                transport,
                socket,
                remote,
                id: None,
                ssrc: 0,
                rtx_ssrc: None,
                media_out: 0,
                rtx_out: 0,
                last_out_seq: 0,
            });
            // Slot 1 starts paused.
            fuzz.create_consumer(i, i == 1);
        }
        fuzz
    }

    fn create_consumer(&mut self, i: usize, paused: bool) {
        let ssrc = self.next_ssrc;
        self.next_ssrc += 16;
        // Slot 2 has no RTX.
        let enable_rtx = i != 2;
        let mut params =
            ortc::get_consumer_rtp_parameters(&self.consumable, &self.caps, false, enable_rtx, ssrc, ssrc + 1)
                .expect("consumer params");
        params.mid = Some(format!("{i}"));
        let rtx_ssrc = params.encodings.as_ref().and_then(|e| e[0].rtx).map(|r| r.ssrc);
        let id = self.next_id;
        self.next_id += 1;
        let spec = ConsumerSpec { producer: PRODUCER, rtp_parameters: params, paused };
        self.shard.consume(self.now, self.slots[i].transport, id, spec).expect("consume");
        let slot = &mut self.slots[i];
        (slot.id, slot.ssrc, slot.rtx_ssrc, slot.media_out, slot.rtx_out) = (Some(id), ssrc, rtx_ssrc, 0, 0);
    }

    fn source(&self, sel: u8) -> SocketAddr {
        match sel % 4 {
            0 | 1 => addr(20_000),
            2 => addr(20_001),
            _ => self.slots[usize::from(sel / 4) % CONSUMERS].remote,
        }
    }

    fn socket(&self, sel: u8) -> SocketId {
        match sel % 6 {
            0..=2 => PRODUCER_SOCKET,
            5 => SocketId(99),
            k => self.slots[usize::from(k - 3) + usize::from(sel / 6) % 2].socket,
        }
    }

    fn deliver(&mut self, socket: SocketId, src: SocketAddr, mut bytes: Vec<u8>) {
        let mut out = Out::default();
        self.shard.handle_datagram(self.now, socket, src, &mut bytes, &mut out);
        self.check(out);
    }

    /// An RTP packet of the producer, shaped by the input.
    fn rtp(&mut self, input: &mut Input<'_>) -> Vec<u8> {
        let flags = input.u8();
        let delta = input.u8() as i8;
        self.seq = self.seq.wrapping_add(delta as u16);
        let (ssrc, pt) = match flags % 8 {
            0..=4 => (PRODUCER_SSRC, VIDEO_PT),
            5 => (PRODUCER_RTX_SSRC, RTX_PT),
            6 => (PRODUCER_SSRC, 50),
            _ => (input.u32(), VIDEO_PT),
        };
        let mut ext = ExtensionsBuilder::new();
        if flags & 0x08 != 0 {
            let _ = ext.push(EXT_TCC, &[0, 1]);
            let _ = ext.push(EXT_ORIENTATION, &[input.u8()]);
        }
        if flags & 0x10 != 0 {
            let _ = ext.push(EXT_MID, b"p");
        }
        let mut v = vec![if ext.is_empty() { 0x80 } else { 0x90 }, pt | (flags & 0x80)];
        v.extend_from_slice(&self.seq.to_be_bytes());
        v.extend_from_slice(&(u32::from(self.seq) * 3000).to_be_bytes());
        v.extend_from_slice(&ssrc.to_be_bytes());
        if !ext.is_empty() {
            let (profile, body) = ext.finish();
            v.extend_from_slice(&profile.to_be_bytes());
            v.extend_from_slice(&((body.len() / 4) as u16).to_be_bytes());
            v.extend_from_slice(body);
        }
        if pt == RTX_PT {
            if input.u8().is_multiple_of(16) {
                return v; // no room for an OSN
            }
            // RTX: an OSN near the current sequence number.
            v.extend_from_slice(&self.seq.wrapping_sub(u16::from(input.u8() % 32)).to_be_bytes());
        }
        // VP8 descriptor: a key frame start, a delta frame start, or a continuation.
        v.extend_from_slice(match flags & 0x60 {
            0x00 => &[0x10, 0x10, 0x02, 0x00],
            0x20 => &[0x10, 0x11, 0x02, 0x00],
            _ => &[0x00, 0x11],
        });
        let n = usize::from(input.u8() % 64);
        v.extend_from_slice(input.bytes(n));
        v
    }

    /// An RTCP compound from a consumer's endpoint about that consumer, shaped by the input.
    fn consumer_rtcp(&mut self, i: usize, input: &mut Input<'_>) -> Vec<u8> {
        let kind = input.u8();
        let slot = &self.slots[i];
        let media = match kind / 8 % 4 {
            0 | 1 => slot.ssrc,
            2 => slot.rtx_ssrc.unwrap_or(slot.ssrc),
            _ => input.u32(),
        };
        let mut buf = [0u8; 1500];
        let n = match kind % 4 {
            0 => {
                let count = usize::from(input.u8() % 8) + 1;
                let base = slot.last_out_seq;
                let seqs: Vec<u16> = (0..count).map(|_| base.wrapping_sub(u16::from(input.u8() % 16))).collect();
                rtcp::write_nack(&mut buf, 0xF00D, media, &seqs)
            }
            1 => rtcp::write_pli(&mut buf, 0xF00D, media),
            2 => rtcp::write_fir(&mut buf, 0xF00D, media, input.u8()),
            _ => {
                let block = ReportBlock {
                    ssrc: media,
                    fraction_lost: input.u8(),
                    cumulative_lost: i32::from(input.u16()),
                    ext_highest_seq: input.u32(),
                    jitter: input.u32(),
                    last_sr: input.u32(),
                    delay_since_last_sr: input.u32(),
                };
                rtcp::write_rr(&mut buf, 0xF00D, &[block])
            }
        };
        buf[..n.expect("fits")].to_vec()
    }

    fn producer_rtcp(&mut self, input: &mut Input<'_>) -> Vec<u8> {
        let mut buf = [0u8; 1500];
        let n = if input.u8().is_multiple_of(2) {
            let info = SenderInfo {
                ssrc: if input.u8().is_multiple_of(4) { input.u32() } else { PRODUCER_SSRC },
                ntp_sec: input.u32(),
                ntp_frac: input.u32(),
                rtp_ts: input.u32(),
                packet_count: input.u32(),
                octet_count: input.u32(),
            };
            rtcp::write_sr(&mut buf, &info, &[])
        } else {
            rtcp::write_bye(&mut buf, &[PRODUCER_SSRC])
        };
        buf[..n.expect("fits")].to_vec()
    }

    fn step(&mut self, input: &mut Input<'_>) {
        match input.u8() % 10 {
            0..=2 => {
                // Mostly from the producer's endpoint, sometimes from anywhere to anywhere.
                let (socket, src) = match input.u8() {
                    sel if sel % 8 != 7 => (PRODUCER_SOCKET, self.producer_remote.unwrap_or(addr(20_000))),
                    sel => (self.socket(sel / 8), self.source(input.u8())),
                };
                let bytes = self.rtp(input);
                self.deliver(socket, src, bytes);
            }
            3 => {
                let (socket, src) = (input.u8(), input.u8());
                let (socket, src) = (self.socket(socket), self.source(src));
                let n = usize::from(input.u8());
                let bytes = input.bytes(n).to_vec();
                self.deliver(socket, src, bytes);
            }
            4 => {
                let i = usize::from(input.u8()) % CONSUMERS;
                let bytes = self.consumer_rtcp(i, input);
                let (socket, remote) = (self.slots[i].socket, self.slots[i].remote);
                self.deliver(socket, remote, bytes);
            }
            5 => {
                let bytes = self.producer_rtcp(input);
                let src = self.producer_remote.unwrap_or(addr(20_000));
                self.deliver(PRODUCER_SOCKET, src, bytes);
            }
            6 => {
                let ms = u64::from(input.u8()) * 8;
                self.now += Duration::from_millis(ms);
                let mut out = Out::default();
                self.shard.handle_timeout(self.now, &mut out);
                self.check(out);
            }
            7 => {
                let sel = input.u8();
                // Resumes more often than pauses, so that media flows most of the time.
                let i = usize::from(sel / 8) % CONSUMERS;
                let r = match (sel % 8, self.slots[i].id) {
                    (0, Some(id)) => self.shard.pause_consumer(id),
                    (1..=3, Some(id)) => self.shard.resume_consumer(self.now, id),
                    (4, _) => self.shard.pause_producer(PRODUCER),
                    (5..=7, _) => self.shard.resume_producer(self.now, PRODUCER),
                    _ => Ok(()),
                };
                r.expect("pause/resume of a live object");
            }
            8 => {
                let sel = input.u8();
                let i = usize::from(sel) % CONSUMERS;
                match self.slots[i].id.take() {
                    Some(id) => self.shard.close_consumer(id).expect("close a live consumer"),
                    None => self.create_consumer(i, sel & 0x80 != 0),
                }
            }
            _ => {
                if let Some(id) = self.slots[usize::from(input.u8()) % CONSUMERS].id {
                    self.shard.consumer_request_key_frame(self.now, id).expect("live consumer");
                }
                let mut out = Out::default();
                self.shard.send_key_frame_requests(self.now, &mut out);
                self.check(out);
            }
        }
        self.check_state();
    }

    /// Every datagram is valid RTP or RTCP, from a socket we own, to an endpoint we know, and
    /// RTP only to consumers, with their SSRCs.
    fn check(&mut self, out: Out) {
        // A datagram may have taught a comedia remote that the same call already sent to.
        self.drain_events();
        for (socket, dest, bytes) in out.datagrams {
            match classify(&bytes) {
                PacketKind::Rtcp => {
                    let mut items = 0;
                    rtcp::parse_compound(&bytes, |_| items += 1).expect("RTCP we send parses");
                    assert!(items > 0);
                    let to_producer = socket == PRODUCER_SOCKET && Some(dest) == self.producer_remote;
                    let to_consumer = self.slots.iter().any(|s| s.socket == socket && s.remote == dest);
                    assert!(to_producer || to_consumer, "RTCP to {dest} on {socket:?}");
                }
                PacketKind::Rtp => {
                    let hdr = parse_rtp(&bytes).expect("RTP we send parses");
                    let slot = self
                        .slots
                        .iter_mut()
                        .find(|s| s.socket == socket && s.remote == dest)
                        .unwrap_or_else(|| panic!("RTP to {dest} on {socket:?}: not a consumer endpoint"));
                    assert!(slot.id.is_some(), "RTP for a closed consumer");
                    if hdr.ssrc == slot.ssrc {
                        slot.media_out += 1;
                        slot.last_out_seq = hdr.sequence_number;
                    } else if Some(hdr.ssrc) == slot.rtx_ssrc {
                        slot.rtx_out += 1;
                        assert!(hdr.payload_len >= 2, "RTX carries an OSN");
                    } else {
                        panic!("RTP with SSRC {} to consumer slot {dest}", hdr.ssrc);
                    }
                }
                other => panic!("sent a {other:?} datagram"),
            }
        }
    }

    /// Counters agree with what was seen; every live object answers; events make sense.
    fn check_state(&mut self) {
        let drops = self.shard.drops().total();
        assert!(drops >= self.drops_total, "drop counters only grow");
        self.drops_total = drops;
        let live = self.slots.iter().filter(|s| s.id.is_some()).count() as u32;
        let counts = self.shard.object_counts();
        assert_eq!((counts.routers, counts.transports, counts.producers, counts.consumers), (1, 4, 1, live));
        assert!(self.shard.poll_timeout().is_some(), "transports exist: the shard wants ticks");
        for slot in &self.slots {
            let Some(id) = slot.id else { continue };
            let Ok(Snapshot::Consumer(c)) = self.shard.snapshot(id) else { panic!("consumer {id} snapshot") };
            match slot.rtx_ssrc {
                Some(_) => {
                    assert_eq!(c.packets, slot.media_out, "consumer {id} packets");
                    assert_eq!(c.retransmitted, slot.rtx_out, "consumer {id} RTX");
                }
                None => assert_eq!(c.packets + c.retransmitted, slot.media_out, "consumer {id}"),
            }
        }
        self.drain_events();
    }

    /// Events make sense; comedia remotes are learned once.
    fn drain_events(&mut self) {
        while let Some(e) = self.shard.poll_event() {
            match e {
                Event::Tuple { transport, remote, .. } => {
                    let k = match transport {
                        PRODUCER_TRANSPORT => 0,
                        12 => 1,
                        _ => panic!("Tuple for non-comedia transport {transport}"),
                    };
                    assert!(!self.comedia_learned[k], "remote learned twice");
                    self.comedia_learned[k] = true;
                    if transport == PRODUCER_TRANSPORT {
                        self.producer_remote = Some(remote);
                    } else {
                        // Whoever spoke first is the endpoint from now on.
                        self.slots[2].remote = remote;
                    }
                }
                Event::ProducerPaused { consumer } | Event::ProducerResumed { consumer } => {
                    assert!(self.slots.iter().any(|s| s.id == Some(consumer)), "event for a live consumer");
                }
                Event::ProducerScore { producer, scores } => {
                    assert_eq!(producer, PRODUCER);
                    assert!(scores.iter().all(|s| s.score <= 10 && s.ssrc == PRODUCER_SSRC), "{scores:?}");
                }
                Event::ConsumerScore { score, .. } => {
                    assert!(score.score <= 10 && score.producer_score <= 10, "{score:?}");
                    assert!(score.producer_scores.iter().all(|&s| s <= 10), "{score:?}");
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
}

/// Runs one fuzz input. Panics on a broken invariant.
pub fn drive(data: &[u8]) {
    let mut fuzz = Fuzz::new();
    let mut input = Input { data };
    for _ in 0..MAX_OPS {
        if input.data.is_empty() {
            break;
        }
        fuzz.step(&mut input);
    }
    // Let every timer run out: NACK retries, reports, delayed requests.
    for _ in 0..10 {
        fuzz.now += Duration::from_millis(500);
        let mut out = Out::default();
        fuzz.shard.handle_timeout(fuzz.now, &mut out);
        fuzz.check(out);
        fuzz.check_state();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic xorshift64*.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    #[test]
    fn drive_survives_pseudo_random_inputs() {
        let mut rng = XorShift(0x5EED_F00D_CAFE_BEEF);
        for _ in 0..3000 {
            let len = (rng.next() % 1024) as usize;
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            drive(&data);
        }
    }

    #[test]
    fn drive_handles_empty_and_tiny_inputs() {
        drive(&[]);
        for b in 0..=255u8 {
            drive(&[b]);
            drive(&[b, b, b]);
        }
    }
}
