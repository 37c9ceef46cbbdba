//! In-memory harness for the sans-IO core: no sockets, no clock.
//!
//! - [`VecSink`] collects every datagram the shard sends as `(socket, dest, head ++ body)`, and
//!   remembers where `body` pointed so tests can see that consumers share one payload.
//! - [`Sfu`] builds a router, a producer on its own plain transport and consumers on theirs,
//!   through the real ORTC functions, the way the API layer does; it drives the shard on
//!   simulated time (`t0 + Duration`).
//! - [`Rtp`] builds RTP packets; [`parse_rtcp`] turns RTCP compounds into owned items.
//! - [`Mesh`] drives several shards of one engine: a [`MeshSink`] per shard keeps its datagrams
//!   and its inter-shard records, and [`Mesh::pump`] delivers records and shard commands between
//!   them (to the sending shard itself when `to == from`, as the engine's adapter does).
//!
//! Each test file uses a part of this module only.
#![allow(dead_code)]

mod mesh;
#[allow(unused_imports)] // each test file uses a part of the harness only
pub use mesh::*;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use shardsfu_engine::core::{
    ConsumerSnapshot, ConsumerSpec, Event, MirrorOf, NtpClock, ObjectId, PlainSpec, ProducerSnapshot, ProducerSpec,
    Shard, ShardCommand, Sink, Snapshot, TransportSnapshot, RECORD_HEAD_BYTES,
};
use shardsfu_engine::ortc::{
    generate_router_rtp_capabilities, get_consumable_rtp_parameters, get_consumer_rtp_parameters,
    get_pipe_consumer_rtp_parameters, get_producer_rtp_parameters_mapping, validate_rtp_parameters,
};
use shardsfu_engine::rtp::rtcp::{self, RtcpItem};
use shardsfu_engine::rtp::{parse_rtp, ExtensionsBuilder, RtpHeader};
use shardsfu_engine::rtp_parameters::{uri, MediaKind, RtpCapabilities, RtpParameters};
use shardsfu_net::SocketId;

// ---- sink ---------------------------------------------------------------------------------

/// One datagram the shard sent.
#[derive(Debug, Clone)]
pub struct Datagram {
    pub socket: SocketId,
    pub dest: SocketAddr,
    /// `head ++ body`, as it would go on the wire.
    pub bytes: Vec<u8>,
    pub head_len: usize,
    /// Address of the `body` slice the core passed (0 when empty): equal addresses mean a shared
    /// payload.
    pub body_addr: usize,
}

impl Datagram {
    pub fn is_rtcp(&self) -> bool {
        shardsfu_engine::rtp::is_rtcp(&self.bytes)
    }

    /// The RTP header (panics when the datagram is not valid RTP).
    pub fn rtp(&self) -> RtpHeader {
        assert!(!self.is_rtcp(), "expected RTP, got RTCP {:?}", parse_rtcp(&self.bytes));
        parse_rtp(&self.bytes).expect("valid RTP")
    }

    pub fn payload(&self) -> &[u8] {
        self.rtp().payload(&self.bytes)
    }

    pub fn ext(&self, id: u8) -> Option<Vec<u8>> {
        self.rtp().extension(&self.bytes, id).map(<[u8]>::to_vec)
    }

    pub fn ext_ids(&self) -> Vec<u8> {
        self.rtp().extensions(&self.bytes).map(|(id, _)| id).collect()
    }

    /// The RTCP items (panics when the datagram is not a valid RTCP compound).
    pub fn rtcp(&self) -> Vec<Rtcp> {
        assert!(self.is_rtcp(), "expected RTCP");
        parse_rtcp(&self.bytes)
    }
}

/// Collects datagrams; implements [`Sink`] for every lifetime by copying.
#[derive(Debug, Default)]
pub struct VecSink {
    pub datagrams: Vec<Datagram>,
}

impl<'a> Sink<'a> for VecSink {
    fn send(&mut self, socket: SocketId, dest: SocketAddr, head: &[u8], body: &'a [u8]) {
        let mut bytes = Vec::with_capacity(head.len() + body.len());
        bytes.extend_from_slice(head);
        bytes.extend_from_slice(body);
        let body_addr = if body.is_empty() { 0 } else { body.as_ptr() as usize };
        self.datagrams.push(Datagram { socket, dest, bytes, head_len: head.len(), body_addr });
    }
}

// ---- RTCP -----------------------------------------------------------------------------------

/// An RTCP item, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum Rtcp {
    Sr { info: rtcp::SenderInfo, blocks: Vec<rtcp::ReportBlock> },
    Rr { ssrc: u32, blocks: Vec<rtcp::ReportBlock> },
    Nack { sender: u32, media: u32, seqs: Vec<u16> },
    Pli { sender: u32, media: u32 },
    Fir { sender: u32, entries: Vec<(u32, u8)> },
    Other { pt: u8, fmt: u8 },
}

/// Parses an RTCP compound (panics when malformed).
pub fn parse_rtcp(bytes: &[u8]) -> Vec<Rtcp> {
    let mut items = Vec::new();
    rtcp::parse_compound(bytes, |item| {
        items.push(match item {
            RtcpItem::SenderReport { info, reports } => Rtcp::Sr { info, blocks: reports.collect() },
            RtcpItem::ReceiverReport { ssrc, reports } => Rtcp::Rr { ssrc, blocks: reports.collect() },
            RtcpItem::Nack { sender_ssrc, media_ssrc, pairs } => {
                Rtcp::Nack { sender: sender_ssrc, media: media_ssrc, seqs: pairs.seqs().collect() }
            }
            RtcpItem::Pli { sender_ssrc, media_ssrc } => Rtcp::Pli { sender: sender_ssrc, media: media_ssrc },
            RtcpItem::Fir { sender_ssrc, entries } => Rtcp::Fir { sender: sender_ssrc, entries: entries.collect() },
            RtcpItem::Sdes { .. } => Rtcp::Other { pt: rtcp::PT_SDES, fmt: 0 },
            RtcpItem::Bye { .. } => Rtcp::Other { pt: rtcp::PT_BYE, fmt: 0 },
            RtcpItem::App { .. } => Rtcp::Other { pt: rtcp::PT_APP, fmt: 0 },
            RtcpItem::Remb { .. } => Rtcp::Other { pt: rtcp::PT_PSFB, fmt: rtcp::FMT_AFB },
            RtcpItem::Other { pt, fmt, .. } => Rtcp::Other { pt, fmt },
        })
    })
    .expect("valid RTCP compound");
    items
}

pub fn nack(sender: u32, media: u32, seqs: &[u16]) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    let n = rtcp::write_nack(&mut buf, sender, media, seqs).unwrap();
    buf[..n].to_vec()
}

pub fn pli(sender: u32, media: u32) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let n = rtcp::write_pli(&mut buf, sender, media).unwrap();
    buf[..n].to_vec()
}

pub fn fir(sender: u32, media: u32, seq: u8) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let n = rtcp::write_fir(&mut buf, sender, media, seq).unwrap();
    buf[..n].to_vec()
}

pub fn rr(sender: u32, blocks: &[rtcp::ReportBlock]) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    let n = rtcp::write_rr(&mut buf, sender, blocks).unwrap();
    buf[..n].to_vec()
}

pub fn sr(info: &rtcp::SenderInfo) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    let n = rtcp::write_sr(&mut buf, info, &[]).unwrap();
    buf[..n].to_vec()
}

// ---- RTP ------------------------------------------------------------------------------------

/// An RTP packet to build.
#[derive(Debug, Clone)]
pub struct Rtp {
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub marker: bool,
    /// One-byte (or two-byte when needed) RFC 8285 extensions.
    pub exts: Vec<(u8, Vec<u8>)>,
    pub payload: Vec<u8>,
    /// Padding bytes at the end (0: none).
    pub padding: u8,
}

impl Rtp {
    pub fn new(ssrc: u32, pt: u8, seq: u16) -> Self {
        Rtp {
            pt,
            seq,
            ts: u32::from(seq) * 3000,
            ssrc,
            marker: false,
            exts: Vec::new(),
            payload: vec![0xAB; 20],
            padding: 0,
        }
    }

    pub fn ts(mut self, ts: u32) -> Self {
        self.ts = ts;
        self
    }

    pub fn marker(mut self) -> Self {
        self.marker = true;
        self
    }

    pub fn ext(mut self, id: u8, value: &[u8]) -> Self {
        self.exts.push((id, value.to_vec()));
        self
    }

    pub fn payload(mut self, payload: &[u8]) -> Self {
        self.payload = payload.to_vec();
        self
    }

    pub fn padding(mut self, n: u8) -> Self {
        self.padding = n;
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut ext = ExtensionsBuilder::new();
        for (id, value) in &self.exts {
            ext.push(*id, value).expect("extension fits");
        }
        let mut v = vec![
            0x80 | if self.padding > 0 { 0x20 } else { 0 } | if ext.is_empty() { 0 } else { 0x10 },
            if self.marker { 0x80 } else { 0 } | self.pt,
        ];
        v.extend_from_slice(&self.seq.to_be_bytes());
        v.extend_from_slice(&self.ts.to_be_bytes());
        v.extend_from_slice(&self.ssrc.to_be_bytes());
        if !ext.is_empty() {
            let (profile, body) = ext.finish();
            v.extend_from_slice(&profile.to_be_bytes());
            v.extend_from_slice(&((body.len() / 4) as u16).to_be_bytes());
            v.extend_from_slice(body);
        }
        v.extend_from_slice(&self.payload);
        if self.padding > 0 {
            v.extend(std::iter::repeat_n(0, usize::from(self.padding) - 1));
            v.push(self.padding);
        }
        v
    }
}

/// A VP8 payload starting a key frame (RFC 7741: S=1, PID=0, then P=0), tagged with `tag`.
pub fn vp8_key(tag: u8) -> Vec<u8> {
    vec![0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, tag, tag, tag]
}

/// A VP8 payload of an inter frame (P=1).
pub fn vp8_delta(tag: u8) -> Vec<u8> {
    vec![0x10, 0x11, 0x02, 0x00, tag, tag, tag, tag]
}

// ---- ORTC -----------------------------------------------------------------------------------

/// The router's media codecs: opus and VP8 (with RTX).
pub fn router_caps() -> RtpCapabilities {
    let media = serde_json::from_value::<Vec<_>>(json!([
        { "kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2 },
        { "kind": "video", "mimeType": "video/VP8", "clockRate": 90000 }
    ]))
    .unwrap();
    generate_router_rtp_capabilities(&media).unwrap()
}

/// Which video feedback the producer negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    /// nack, nack pli, ccm fir, transport-cc.
    Full,
    /// ccm fir only.
    FirOnly,
    /// nack pli only (no NACK, no retransmission buffer).
    PliOnly,
}

/// Producer-side extension ids (different from the router's, so mapping shows).
pub const P_EXT_MID: u8 = 4;
pub const P_EXT_ABS_SEND_TIME: u8 = 2;
pub const P_EXT_TCC: u8 = 3;
pub const P_EXT_VIDEO_ORIENTATION: u8 = 7;
pub const P_EXT_TOFFSET: u8 = 6;
pub const P_EXT_AUDIO_LEVEL: u8 = 9;

pub const VIDEO_PT: u8 = 96;
pub const VIDEO_RTX_PT: u8 = 97;
pub const AUDIO_PT: u8 = 111;
pub const PRODUCER_SSRC: u32 = 1111;
pub const PRODUCER_RTX_SSRC: u32 = 1112;
pub const MAPPED_SSRC_BASE: u32 = 5000;

/// What mediasoup-client would send for a VP8 or opus track with one SSRC.
pub fn producer_params(kind: MediaKind, rtx: bool, feedback: Feedback, mid: &str) -> RtpParameters {
    let value = match kind {
        MediaKind::Video => {
            let fb = match feedback {
                Feedback::Full => json!([
                    { "type": "nack" }, { "type": "nack", "parameter": "pli" },
                    { "type": "ccm", "parameter": "fir" }, { "type": "transport-cc" }
                ]),
                Feedback::FirOnly => json!([{ "type": "ccm", "parameter": "fir" }]),
                Feedback::PliOnly => json!([{ "type": "nack", "parameter": "pli" }]),
            };
            let mut codecs = vec![json!({
                "mimeType": "video/VP8", "payloadType": VIDEO_PT, "clockRate": 90000, "rtcpFeedback": fb
            })];
            let mut encoding = json!({ "ssrc": PRODUCER_SSRC });
            if rtx {
                codecs.push(json!({
                    "mimeType": "video/rtx", "payloadType": VIDEO_RTX_PT, "clockRate": 90000,
                    "parameters": { "apt": VIDEO_PT }
                }));
                encoding["rtx"] = json!({ "ssrc": PRODUCER_RTX_SSRC });
            }
            json!({
                "mid": mid,
                "codecs": codecs,
                "headerExtensions": [
                    { "uri": uri::MID, "id": P_EXT_MID },
                    { "uri": uri::ABS_SEND_TIME, "id": P_EXT_ABS_SEND_TIME },
                    { "uri": uri::TRANSPORT_WIDE_CC, "id": P_EXT_TCC },
                    { "uri": uri::VIDEO_ORIENTATION, "id": P_EXT_VIDEO_ORIENTATION },
                    { "uri": uri::TOFFSET, "id": P_EXT_TOFFSET }
                ],
                "encodings": [encoding],
                "rtcp": { "cname": "producer" }
            })
        }
        MediaKind::Audio => json!({
            "mid": mid,
            "codecs": [{
                "mimeType": "audio/opus", "payloadType": AUDIO_PT, "clockRate": 48000, "channels": 2,
                "parameters": { "useinbandfec": 1 }, "rtcpFeedback": [{ "type": "transport-cc" }]
            }],
            "headerExtensions": [
                { "uri": uri::MID, "id": P_EXT_MID },
                { "uri": uri::ABS_SEND_TIME, "id": P_EXT_ABS_SEND_TIME },
                { "uri": uri::AUDIO_LEVEL, "id": P_EXT_AUDIO_LEVEL }
            ],
            "encodings": [{ "ssrc": PRODUCER_SSRC }],
            "rtcp": { "cname": "producer" }
        }),
    };
    let mut params: RtpParameters = serde_json::from_value(value).unwrap();
    validate_rtp_parameters(&mut params).unwrap();
    params
}

/// A producer spec as `api::Producer::create` computes it, plus the consumable parameters.
pub fn producer_spec(
    caps: &RtpCapabilities,
    kind: MediaKind,
    mut params: RtpParameters,
    key_frame_request_delay_ms: u32,
) -> (ProducerSpec, RtpParameters) {
    let mapping = get_producer_rtp_parameters_mapping(&mut params, caps, MAPPED_SSRC_BASE).unwrap();
    let consumable = get_consumable_rtp_parameters(kind, &params, caps, &mapping).unwrap();
    let ext_map = params
        .header_extensions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| {
            caps.header_extensions
                .as_deref()
                .unwrap_or_default()
                .iter()
                .find(|c| c.uri == e.uri && c.kind == kind)
                .map(|c| (e.id, c.preferred_id))
        })
        .collect();
    let spec = ProducerSpec {
        kind,
        rtp_parameters: params,
        rtp_mapping: mapping,
        ext_map,
        paused: false,
        key_frame_request_delay_ms,
    };
    (spec, consumable)
}

/// A consumer's parameters as `api::Consumer::create` computes them (the remote endpoint has
/// the router's capabilities).
pub fn consumer_params(
    consumable: &RtpParameters,
    caps: &RtpCapabilities,
    enable_rtx: bool,
    ssrc: u32,
    mid: &str,
) -> RtpParameters {
    let mut params = get_consumer_rtp_parameters(consumable, caps, false, enable_rtx, ssrc, ssrc + 1).unwrap();
    params.mid = Some(mid.to_owned());
    params
}

/// The router's header extension id for `uri` and `kind`.
pub fn router_ext_id(caps: &RtpCapabilities, kind: MediaKind, wanted: &str) -> u8 {
    caps.header_extensions.as_deref().unwrap().iter().find(|e| e.uri == wanted && e.kind == kind).unwrap().preferred_id
}

// ---- addresses ------------------------------------------------------------------------------

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

pub fn plain(socket: u32, local_port: u16, comedia: bool) -> PlainSpec {
    PlainSpec {
        rtp_socket: SocketId(socket),
        local: addr(local_port),
        rtcp_socket: None,
        local_rtcp: None,
        comedia,
        rtcp_mux: true,
    }
}

// ---- the SFU under test ---------------------------------------------------------------------

pub const ROUTER: ObjectId = 1;
pub const PRODUCER_TRANSPORT: ObjectId = 10;
pub const PRODUCER: ObjectId = 20;
pub const PRODUCER_SOCKET: SocketId = SocketId(10);
/// Where the producer's endpoint sends from (and where RTCP for it goes).
pub const PRODUCER_REMOTE_PORT: u16 = 20_000;

/// What to build.
#[derive(Debug, Clone)]
pub struct Options {
    pub kind: MediaKind,
    pub consumers: usize,
    pub producer_rtx: bool,
    pub consumer_rtx: bool,
    pub feedback: Feedback,
    pub key_frame_request_delay_ms: u32,
    /// The producer transport learns its remote from the first packet instead of `connect`.
    pub producer_comedia: bool,
    pub consumers_paused: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            kind: MediaKind::Video,
            consumers: 2,
            producer_rtx: true,
            consumer_rtx: true,
            feedback: Feedback::Full,
            key_frame_request_delay_ms: 0,
            producer_comedia: false,
            consumers_paused: false,
        }
    }
}

impl Options {
    pub fn audio() -> Self {
        Options { kind: MediaKind::Audio, producer_rtx: false, ..Options::default() }
    }
}

/// One consumer and its own transport.
#[derive(Debug, Clone)]
pub struct ConsumerInfo {
    pub id: ObjectId,
    pub transport: ObjectId,
    pub socket: SocketId,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub ssrc: u32,
    pub rtx_ssrc: Option<u32>,
    pub pt: u8,
    pub rtx_pt: Option<u8>,
    pub mid: String,
    pub params: RtpParameters,
}

/// A shard with a router, one producer on its transport and consumers on theirs.
pub struct Sfu {
    pub shard: Shard,
    pub t0: Instant,
    pub now: Instant,
    pub sink: VecSink,
    pub caps: RtpCapabilities,
    pub opts: Options,
    pub producer_spec: ProducerSpec,
    pub consumable: RtpParameters,
    pub producer_remote: SocketAddr,
    pub consumers: Vec<ConsumerInfo>,
    next_id: ObjectId,
}

impl Sfu {
    pub fn new(opts: Options) -> Sfu {
        let t0 = Instant::now();
        let mut shard = Shard::new(t0, NtpClock::new(t0, SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)));
        let caps = router_caps();
        shard.create_router(ROUTER).unwrap();
        shard
            .create_plain_transport(
                t0,
                ROUTER,
                PRODUCER_TRANSPORT,
                plain(PRODUCER_SOCKET.0, 10_000, opts.producer_comedia),
            )
            .unwrap();
        let producer_remote = addr(PRODUCER_REMOTE_PORT);
        if !opts.producer_comedia {
            shard.connect_plain_transport(PRODUCER_TRANSPORT, producer_remote, None).unwrap();
        }
        let params = producer_params(opts.kind, opts.producer_rtx, opts.feedback, "p0");
        let (producer_spec, consumable) = producer_spec(&caps, opts.kind, params, opts.key_frame_request_delay_ms);
        shard.produce(t0, PRODUCER_TRANSPORT, PRODUCER, producer_spec.clone()).unwrap();
        let mut sfu = Sfu {
            shard,
            t0,
            now: t0,
            sink: VecSink::default(),
            caps,
            producer_spec,
            consumable,
            producer_remote,
            consumers: Vec::new(),
            next_id: 100,
            opts: opts.clone(),
        };
        for _ in 0..opts.consumers {
            sfu.add_consumer(opts.consumers_paused);
        }
        sfu
    }

    /// A new connected transport with one consumer of the producer. Returns its index.
    pub fn add_consumer(&mut self, paused: bool) -> usize {
        let i = self.consumers.len();
        let n = 100 + i as u32;
        let transport = self.next_id;
        self.next_id += 1;
        let (socket, local, remote) = (SocketId(n), addr(11_000 + i as u16), addr(21_000 + i as u16));
        self.shard.create_plain_transport(self.now, ROUTER, transport, plain(socket.0, local.port(), false)).unwrap();
        self.shard.connect_plain_transport(transport, remote, None).unwrap();
        self.add_consumer_on(transport, socket, local, remote, paused)
    }

    /// A consumer of the producer on an existing transport.
    pub fn add_consumer_on(
        &mut self,
        transport: ObjectId,
        socket: SocketId,
        local: SocketAddr,
        remote: SocketAddr,
        paused: bool,
    ) -> usize {
        let i = self.consumers.len();
        let id = self.next_id;
        self.next_id += 1;
        let ssrc = 0x1000_0000 + 16 * i as u32;
        let mid = format!("c{i}");
        let params = consumer_params(&self.consumable, &self.caps, self.opts.consumer_rtx, ssrc, &mid);
        let pt = params.codecs[0].payload_type;
        let rtx_pt = params.codecs.iter().find(|c| c.mime_type.ends_with("/rtx")).map(|c| c.payload_type);
        let rtx_ssrc = params.encodings.as_ref().unwrap()[0].rtx.map(|r| r.ssrc);
        let spec = ConsumerSpec { producer: PRODUCER, rtp_parameters: params.clone(), paused };
        self.shard.consume(self.now, transport, id, spec).unwrap();
        self.consumers.push(ConsumerInfo {
            id,
            transport,
            socket,
            local,
            remote,
            ssrc,
            rtx_ssrc,
            pt,
            rtx_pt,
            mid,
            params,
        });
        i
    }

    pub fn fresh_id(&mut self) -> ObjectId {
        self.next_id += 1;
        self.next_id - 1
    }

    pub fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    /// Milliseconds since `t0`.
    pub fn elapsed_ms(&self) -> u64 {
        self.now.duration_since(self.t0).as_millis() as u64
    }

    /// Moves simulated time forward by `ms`, calling `handle_timeout` whenever the shard asked
    /// for it on the way (every `TICK`).
    pub fn advance(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        while let Some(t) = self.shard.poll_timeout().filter(|&t| t <= end) {
            self.now = t.max(self.now);
            self.shard.handle_timeout(self.now, &mut self.sink);
        }
        self.now = end;
    }

    /// Hands a datagram to the shard.
    pub fn recv(&mut self, socket: SocketId, src: SocketAddr, bytes: &[u8]) {
        let mut buf = bytes.to_vec();
        self.shard.handle_datagram(self.now, socket, src, &mut buf, &mut self.sink);
    }

    /// An RTP packet from the producer's endpoint.
    pub fn produce_rtp(&mut self, rtp: &Rtp) {
        let (src, bytes) = (self.producer_remote, rtp.build());
        self.recv(PRODUCER_SOCKET, src, &bytes);
    }

    /// A VP8 (or opus) packet of the producer with `seq`, a key frame when `key`.
    pub fn media(&self, seq: u16, key: bool) -> Rtp {
        match self.opts.kind {
            MediaKind::Video => {
                let payload = if key { vp8_key(seq as u8) } else { vp8_delta(seq as u8) };
                Rtp::new(PRODUCER_SSRC, VIDEO_PT, seq).payload(&payload)
            }
            MediaKind::Audio => Rtp::new(PRODUCER_SSRC, AUDIO_PT, seq).ts(u32::from(seq) * 960),
        }
    }

    pub fn send_media(&mut self, seq: u16, key: bool) {
        let rtp = self.media(seq, key);
        self.produce_rtp(&rtp);
    }

    /// An RTCP datagram from consumer `i`'s endpoint.
    pub fn consumer_rtcp(&mut self, i: usize, bytes: &[u8]) {
        let c = &self.consumers[i];
        let (socket, remote) = (c.socket, c.remote);
        self.recv(socket, remote, bytes);
    }

    /// An RTCP datagram from the producer's endpoint.
    pub fn producer_rtcp(&mut self, bytes: &[u8]) {
        let src = self.producer_remote;
        self.recv(PRODUCER_SOCKET, src, bytes);
    }

    /// Everything sent since the last call.
    pub fn take(&mut self) -> Vec<Datagram> {
        std::mem::take(&mut self.sink.datagrams)
    }

    /// Everything sent since the last call, split: RTP to consumer `i` are not separated here.
    pub fn take_rtp_to(&mut self, i: usize) -> Vec<Datagram> {
        let dest = self.consumers[i].remote;
        self.take().into_iter().filter(|d| d.dest == dest && !d.is_rtcp()).collect()
    }

    /// RTCP items sent to the producer's endpoint in `datagrams`.
    pub fn rtcp_to_producer(&self, datagrams: &[Datagram]) -> Vec<Rtcp> {
        datagrams
            .iter()
            .filter(|d| d.dest == self.producer_remote && d.socket == PRODUCER_SOCKET)
            .flat_map(Datagram::rtcp)
            .collect()
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.shard.poll_event()).collect()
    }

    pub fn consumer(&self, i: usize) -> ConsumerSnapshot {
        match self.shard.snapshot(self.consumers[i].id).unwrap() {
            Snapshot::Consumer(c) => c,
            other => panic!("not a consumer: {other:?}"),
        }
    }

    pub fn producer(&self) -> ProducerSnapshot {
        match self.shard.snapshot(PRODUCER).unwrap() {
            Snapshot::Producer(p) => p,
            other => panic!("not a producer: {other:?}"),
        }
    }

    pub fn transport(&self, id: ObjectId) -> TransportSnapshot {
        match self.shard.snapshot(id).unwrap() {
            Snapshot::Transport(t) => t,
            other => panic!("not a transport: {other:?}"),
        }
    }

    /// The router's id for a header extension of the producer's kind.
    pub fn router_ext(&self, wanted: &str) -> u8 {
        router_ext_id(&self.caps, self.opts.kind, wanted)
    }

    /// Starts the stream: a key frame at `seq` reaches every active consumer. Clears the sink.
    pub fn start(&mut self, seq: u16) {
        self.send_media(seq, true);
        self.take();
    }
}
