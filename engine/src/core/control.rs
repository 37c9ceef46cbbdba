//! Control operations on a shard: create, connect, pause, resume, close, with mediasoup's close
//! cascades. Every operation validates first and mutates after, so a rejected call leaves the
//! shard as it was.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use shardsfu_net::SocketId;

use super::keyframe::KeyFrameCodec;
use super::objects::*;
use super::table::FastMap;
use super::{CloseReason, Event, ObjectId, ObjectKind, Shard, RTCP_INTERVAL};
use crate::error::{Error, Result};
use crate::ortc::RtpMapping;
use crate::rtp::{NackGenerator, ReceiveStats, RetransmissionBuffer, Score, SendStats, SeqManager, MAX_SCORE};

/// Packets kept per producer stream for retransmission (about 2 s of 2.5 Mbit/s video).
pub const RETRANSMISSION_SLOTS: usize = 512;
/// Older packets are not retransmitted: the receiver has given up on them.
pub const RETRANSMISSION_MAX_AGE: Duration = Duration::from_millis(2000);
use crate::rtp_parameters::{uri, MediaKind, RtpParameters};

/// Sockets and options of a new PlainTransport (sockets already bound by the adapter).
#[derive(Debug, Clone)]
pub struct PlainSpec {
    pub rtp_socket: SocketId,
    pub local: SocketAddr,
    pub rtcp_socket: Option<SocketId>,
    pub local_rtcp: Option<SocketAddr>,
    pub comedia: bool,
    pub rtcp_mux: bool,
}

/// A validated produce request (ORTC already applied by the API layer).
#[derive(Debug, Clone)]
pub struct ProducerSpec {
    pub kind: MediaKind,
    pub rtp_parameters: RtpParameters,
    pub rtp_mapping: RtpMapping,
    /// (producer header extension id, router header extension id).
    pub ext_map: Vec<(u8, u8)>,
    pub paused: bool,
    pub key_frame_request_delay_ms: u32,
}

/// A validated consume request: the consumer's final RTP parameters.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    pub producer: ObjectId,
    pub rtp_parameters: RtpParameters,
    pub paused: bool,
}

pub(super) fn ensure_new(shard: &Shard, id: ObjectId) -> Result<()> {
    if shard.ids.contains_key(&id) {
        return Err(Error::type_error(format!("object id {id} already exists")));
    }
    Ok(())
}

fn has_feedback(params: &RtpParameters, fb_type: &str, parameter: Option<&str>) -> bool {
    params.codecs.iter().any(|c| {
        c.rtcp_feedback
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|f| f.r#type == fb_type && f.parameter.as_deref().filter(|p| !p.is_empty()) == parameter)
    })
}

fn ext_id(params: &RtpParameters, wanted: &str) -> u8 {
    params.header_extensions.as_deref().unwrap_or_default().iter().find(|e| e.uri == wanted).map(|e| e.id).unwrap_or(0)
}

fn is_rtx(mime: &str) -> bool {
    mime.len() > 4 && mime[mime.len() - 4..].eq_ignore_ascii_case("/rtx")
}

impl Shard {
    pub fn create_router(&mut self, id: ObjectId) -> Result<()> {
        ensure_new(self, id)?;
        let key = self.routers.insert(RouterState {
            transports: Vec::new(),
            fanout: FastMap::default(),
            data_fanout: FastMap::default(),
            observers: Vec::new(),
        });
        self.ids.insert(id, (ObjectKind::Router, key));
        Ok(())
    }

    pub(super) fn insert_transport(
        &mut self,
        now: Instant,
        router: ObjectId,
        id: ObjectId,
        kind: TransportKind,
    ) -> Result<u32> {
        ensure_new(self, id)?;
        let rkey = self
            .key(router, ObjectKind::Router)
            .ok_or_else(|| Error::invalid_state(format!("router {router} not found or closed")))?;
        let sockets: Vec<(SocketId, bool)> = match &kind {
            TransportKind::Plain(p) => {
                let mut v = vec![(p.rtp_socket, false)];
                if let Some(s) = p.rtcp_socket {
                    v.push((s, true));
                }
                v
            }
            TransportKind::Direct | TransportKind::Link { .. } | TransportKind::PipeOut | TransportKind::WebRtc(_) => {
                Vec::new()
            }
        };
        // A socket routes to one transport: taking over another's would leave that one deaf and
        // release the socket under it when this one closes.
        if sockets
            .iter()
            .enumerate()
            .any(|(i, (s, _))| self.sockets.contains_key(s) || sockets[..i].iter().any(|o| o.0 == *s))
        {
            return Err(Error::type_error("socket already used by a transport"));
        }
        let key = self.transports.insert(TransportState {
            id,
            router: rkey,
            kind,
            producers: Vec::new(),
            consumers: Vec::new(),
            data_producers: Vec::new(),
            data_consumers: Vec::new(),
            ssrc_table: FastMap::default(),
            mid_table: Vec::new(),
            mid_ext_id: 0,
            rid_ext_id: 0,
            rrid_ext_id: 0,
            consumer_ssrcs: FastMap::default(),
            rtcp_ssrc: (id as u32).wrapping_mul(2_654_435_761) | 1,
            next_rtcp: now + RTCP_INTERVAL,
            traffic: TrafficCounters::default(),
            max_incoming_bitrate: 0,
        });
        for (s, rtcp) in sockets {
            self.sockets.insert(s, super::webrtc::SocketRoute::Plain { transport: key, rtcp });
        }
        self.ids.insert(id, (ObjectKind::Transport, key));
        self.routers.get_mut(rkey).expect("router key checked").transports.push(key);
        self.arm_tick(now);
        Ok(key)
    }

    pub fn create_plain_transport(
        &mut self,
        now: Instant,
        router: ObjectId,
        id: ObjectId,
        spec: PlainSpec,
    ) -> Result<()> {
        let plain = PlainState {
            rtp_socket: spec.rtp_socket,
            rtcp_socket: if spec.rtcp_mux { None } else { spec.rtcp_socket },
            local: spec.local,
            local_rtcp: if spec.rtcp_mux { None } else { spec.local_rtcp },
            remote: None,
            remote_rtcp: None,
            comedia: spec.comedia,
            rtcp_mux: spec.rtcp_mux,
        };
        self.insert_transport(now, router, id, TransportKind::Plain(plain)).map(|_| ())
    }

    pub fn create_direct_transport(&mut self, now: Instant, router: ObjectId, id: ObjectId) -> Result<()> {
        self.insert_transport(now, router, id, TransportKind::Direct).map(|_| ())
    }

    /// mediasoup's `plainTransport.connect({ ip, port, rtcpPort })`.
    pub fn connect_plain_transport(
        &mut self,
        id: ObjectId,
        remote: SocketAddr,
        remote_rtcp: Option<SocketAddr>,
    ) -> Result<()> {
        let key = self
            .key(id, ObjectKind::Transport)
            .ok_or_else(|| Error::invalid_state(format!("transport {id} not found or closed")))?;
        let t = self.transports.get_mut(key).expect("key from ids");
        let TransportKind::Plain(p) = &mut t.kind else {
            return Err(Error::type_error("not a PlainTransport"));
        };
        if p.comedia {
            return Err(Error::invalid_state("connect() not allowed with comedia enabled"));
        }
        if p.remote.is_some() {
            return Err(Error::invalid_state("connect() already called"));
        }
        if !p.rtcp_mux && remote_rtcp.is_none() {
            return Err(Error::type_error("missing rtcpPort (required if rtcpMux is false)"));
        }
        p.remote = Some(remote);
        if !p.rtcp_mux {
            p.remote_rtcp = remote_rtcp;
        }
        self.refresh_targets(key);
        Ok(())
    }

    /// Copy the transport's current target into its consumers.
    pub(super) fn refresh_targets(&mut self, tkey: u32) {
        let t = self.transports.get(tkey).expect("transport key");
        let target = t.rtp_target(tkey);
        for &c in &t.consumers {
            if let Some(c) = self.consumers.get_mut(c) {
                c.target = target;
            }
        }
    }

    pub fn produce(&mut self, now: Instant, transport: ObjectId, id: ObjectId, spec: ProducerSpec) -> Result<()> {
        ensure_new(self, id)?;
        let tkey = self
            .key(transport, ObjectKind::Transport)
            .ok_or_else(|| Error::invalid_state(format!("transport {transport} not found or closed")))?;
        let params = &spec.rtp_parameters;
        let encodings = params.encodings.as_deref().unwrap_or_default();
        if encodings.is_empty() || encodings.len() != spec.rtp_mapping.encodings.len() {
            return Err(Error::type_error("encodings and their mapping do not match"));
        }
        let t = self.transports.get(tkey).expect("key from ids");
        // Mirrors are addressed by id (see `span.rs`), never through a listener: producers of
        // different transports on the origin may share SSRCs or MIDs.
        let listened = !matches!(t.kind, TransportKind::Link { .. });
        // Every SSRC must be new on this transport.
        for e in encodings.iter().filter(|_| listened) {
            for ssrc in e.ssrc.iter().chain(e.rtx.as_ref().map(|r| &r.ssrc)) {
                if t.ssrc_table.contains_key(ssrc) {
                    return Err(Error::type_error(format!("ssrc {ssrc} already exists in this transport")));
                }
            }
        }
        let mid = params.mid.clone().filter(|m| listened && !m.is_empty());
        if let Some(mid) = &mid {
            if t.mid_table.iter().any(|(m, _)| m == mid) {
                return Err(Error::type_error(format!("mid '{mid}' already exists in this transport")));
            }
        }

        // Codecs: producer PT -> router PT, RTX by apt.
        let mut codecs = Vec::with_capacity(params.codecs.len());
        for c in &params.codecs {
            let mapped = spec
                .rtp_mapping
                .codecs
                .iter()
                .find(|m| m.payload_type == c.payload_type)
                .map(|m| m.mapped_payload_type)
                .ok_or_else(|| Error::type_error(format!("no mapping for payload type {}", c.payload_type)))?;
            let rtx_apt = if is_rtx(&c.mime_type) {
                c.parameters.as_ref().and_then(|p| p.get("apt")).and_then(|v| v.as_u64()).map(|v| v as u8)
            } else {
                None
            };
            codecs.push(CodecEntry {
                payload_type: c.payload_type,
                mapped_payload_type: mapped,
                key_frame: KeyFrameCodec::from_mime(&c.mime_type),
                rtx_apt,
            });
            if codecs.len() > MAX_CODECS_PER_PRODUCER {
                return Err(Error::type_error("too many codecs"));
            }
        }
        let main_codec =
            params.codecs.iter().find(|c| !is_rtx(&c.mime_type)).ok_or_else(|| Error::type_error("no media codec"))?;
        let use_nack = has_feedback(params, "nack", None);
        let mut ext_map = [0u8; 256];
        for &(from, to) in &spec.ext_map {
            ext_map[usize::from(from)] = to;
        }
        // MID, RID and RRID are per-hop: never forwarded as-is.
        let (mid_id, rid_id, rrid_id) = (ext_id(params, uri::MID), ext_id(params, uri::RID), ext_id(params, uri::RRID));
        for id in [mid_id, rid_id, rrid_id] {
            ext_map[usize::from(id)] = 0;
        }
        ext_map[0] = 0;
        // The transport-wide sequence and send time belong to the sender's transport.
        for u in [uri::TRANSPORT_WIDE_CC, uri::ABS_SEND_TIME] {
            ext_map[usize::from(ext_id(params, u))] = 0;
        }

        let streams = encodings
            .iter()
            .zip(&spec.rtp_mapping.encodings)
            .map(|(e, m)| {
                let clock_rate = e
                    .codec_payload_type
                    .and_then(|pt| params.codecs.iter().find(|c| c.payload_type == pt))
                    .map(|c| c.clock_rate)
                    .unwrap_or(main_codec.clock_rate);
                ProducerStream {
                    ssrc: e.ssrc,
                    rtx_ssrc: e.rtx.map(|r| r.ssrc),
                    rid: e.rid.clone(),
                    mapped_ssrc: m.mapped_ssrc,
                    recv: ReceiveStats::new(clock_rate),
                    nack: use_nack.then(NackGenerator::new),
                    buffer: use_nack
                        .then(|| RetransmissionBuffer::new(now, RETRANSMISSION_SLOTS, RETRANSMISSION_MAX_AGE)),
                    packets_repaired: 0,
                    // No media yet: 0 until a sample sees packets arrive.
                    score: Score::new(0),
                    scoring: StreamScoring::default(),
                }
            })
            .collect::<Vec<_>>();

        let t = self.transports.get_mut(tkey).expect("key from ids");
        let router = t.router;
        let pkey = self.producers.insert(ProducerState {
            id,
            transport: tkey,
            router,
            kind: spec.kind,
            paused: spec.paused,
            codecs,
            ext_map,
            streams,
            subscribers: Vec::new(),
            mirror_of: None,
            idle_since: None,
            observers: Vec::new(),
            audio_level_ext: if spec.kind == MediaKind::Audio { ext_id(params, uri::AUDIO_LEVEL) } else { 0 },
            key_frames: KeyFrameRequests::new(
                Duration::from_millis(u64::from(spec.key_frame_request_delay_ms)),
                !has_feedback(params, "nack", Some("pli")) && has_feedback(params, "ccm", Some("fir")),
            ),
            packets: 0,
            bytes: 0,
        });
        for (i, e) in encodings.iter().enumerate().filter(|_| listened) {
            if let Some(ssrc) = e.ssrc {
                t.ssrc_table.insert(ssrc, StreamRef { producer: pkey, stream: i as u16, rtx: false });
            }
            if let Some(rtx) = e.rtx {
                t.ssrc_table.insert(rtx.ssrc, StreamRef { producer: pkey, stream: i as u16, rtx: true });
            }
        }
        if let Some(mid) = mid {
            t.mid_table.push((mid, pkey));
        }
        for (slot, id) in [(&mut t.mid_ext_id, mid_id), (&mut t.rid_ext_id, rid_id), (&mut t.rrid_ext_id, rrid_id)] {
            if id != 0 {
                *slot = id;
            }
        }
        t.producers.push(pkey);
        self.routers.get_mut(router).expect("router of transport").fanout.insert(pkey, Vec::new());
        self.ids.insert(id, (ObjectKind::Producer, pkey));
        Ok(())
    }

    pub fn consume(&mut self, now: Instant, transport: ObjectId, id: ObjectId, spec: ConsumerSpec) -> Result<()> {
        ensure_new(self, id)?;
        let tkey = self
            .key(transport, ObjectKind::Transport)
            .ok_or_else(|| Error::invalid_state(format!("transport {transport} not found or closed")))?;
        let pkey = self
            .key(spec.producer, ObjectKind::Producer)
            .ok_or_else(|| Error::invalid_state(format!("producer {} not found or closed", spec.producer)))?;
        let t = self.transports.get(tkey).expect("key from ids");
        let p = self.producers.get(pkey).expect("key from ids");
        if p.router != t.router {
            return Err(Error::invalid_state("producer belongs to another router"));
        }
        let params = &spec.rtp_parameters;
        let enc = params
            .encodings
            .as_deref()
            .and_then(|e| e.first())
            .ok_or_else(|| Error::type_error("consumer rtpParameters without encodings"))?;
        let ssrc = enc.ssrc.ok_or_else(|| Error::type_error("consumer encoding without ssrc"))?;
        let media = params
            .codecs
            .iter()
            .find(|c| !is_rtx(&c.mime_type))
            .ok_or_else(|| Error::type_error("consumer rtpParameters without a media codec"))?;
        let rtx = match (enc.rtx, params.codecs.iter().find(|c| is_rtx(&c.mime_type))) {
            (Some(r), Some(c)) => Some(RtxOut { ssrc: r.ssrc, payload_type: c.payload_type, seq: 0 }),
            _ => None,
        };
        let mut ext_allowed = 0u64;
        let mut mid_ext = 0u8;
        for e in params.header_extensions.as_deref().unwrap_or_default() {
            if e.uri == uri::MID {
                mid_ext = e.id;
            } else if e.id != 0 && e.id <= MAX_EXT_ID {
                ext_allowed |= 1u64 << e.id;
            }
        }
        let mid = match (&params.mid, mid_ext) {
            (Some(m), id) if id != 0 && !m.is_empty() && m.len() <= 16 => {
                let mut buf = [0u8; 16];
                buf[..m.len()].copy_from_slice(m.as_bytes());
                Some((id, buf, m.len() as u8))
            }
            _ => None,
        };
        // Both SSRCs key this transport's RTCP feedback: neither may be taken (or the same).
        for s in std::iter::once(ssrc).chain(rtx.map(|r| r.ssrc)) {
            if t.consumer_ssrcs.contains_key(&s) || rtx.is_some_and(|r| r.ssrc == ssrc) {
                return Err(Error::type_error(format!("consumer ssrc {s} already used in this transport")));
            }
        }

        let target = t.rtp_target(tkey);
        let router = t.router;
        let kind = p.kind;
        let producer_paused = p.paused;
        let key_frame =
            p.codecs.iter().find(|c| c.rtx_apt.is_none()).map(|c| c.key_frame).unwrap_or(KeyFrameCodec::Unsupported);
        let ckey = self.consumers.insert(ConsumerState {
            id,
            transport: tkey,
            producer: pkey,
            router,
            kind,
            paused: spec.paused,
            producer_paused,
            target,
            ssrc,
            cname: params.rtcp.as_ref().and_then(|r| r.cname.clone()).unwrap_or_default(),
            rtx,
            ext_allowed,
            mid,
            key_frame: if kind == MediaKind::Video { key_frame } else { KeyFrameCodec::Unsupported },
            sync_required: true,
            seq: SeqManager::new(ssrc as u16),
            seq_map: Box::new([None; SEQ_MAP_SIZE]),
            send: SendStats::new(media.clock_rate),
            packets: 0,
            bytes: 0,
            retransmitted: 0,
            nacks_in: 0,
            plis_in: 0,
            firs_in: 0,
            fraction_lost: 0,
            rtt_ms: 0.0,
            score: Score::new(MAX_SCORE),
            last_report: None,
        });
        let t = self.transports.get_mut(tkey).expect("key from ids");
        t.consumers.push(ckey);
        t.consumer_ssrcs.insert(ssrc, (ckey, false));
        if let Some(r) = rtx {
            t.consumer_ssrcs.insert(r.ssrc, (ckey, true));
        }
        self.routers.get_mut(router).expect("router").fanout.entry(pkey).or_default().push(ckey);
        self.ids.insert(id, (ObjectKind::Consumer, ckey));
        if kind == MediaKind::Video && !spec.paused && !producer_paused {
            self.request_key_frame_for(now, pkey);
        }
        Ok(())
    }

    pub fn pause_producer(&mut self, id: ObjectId) -> Result<()> {
        self.set_producer_paused(id, true).map(|_| ())
    }

    pub fn resume_producer(&mut self, now: Instant, id: ObjectId) -> Result<()> {
        let changed = self.set_producer_paused(id, false)?;
        let pkey = self.key(id, ObjectKind::Producer).expect("checked");
        if changed && self.producers.get(pkey).map(|p| p.kind) == Some(MediaKind::Video) {
            self.request_key_frame_for(now, pkey);
        }
        Ok(())
    }

    /// Whether the state changed.
    fn set_producer_paused(&mut self, id: ObjectId, paused: bool) -> Result<bool> {
        let pkey = self
            .key(id, ObjectKind::Producer)
            .ok_or_else(|| Error::invalid_state(format!("producer {id} not found or closed")))?;
        let p = self.producers.get_mut(pkey).expect("key from ids");
        if p.paused == paused {
            return Ok(false);
        }
        p.paused = paused;
        for &(shard, mirror) in &p.subscribers {
            self.shard_out.push_back((shard, super::ShardCommand::MirrorPaused { mirror, paused }));
        }
        if matches!(p.mirror_of, Some(MirrorOf::PipeConsumer(_))) {
            // A pipe producer is an object of its own to the application: its state changed.
            self.events.push_back(Event::Paused { object: p.id, paused });
        }
        let router = p.router;
        let consumers = self.routers.get(router).and_then(|r| r.fanout.get(&pkey)).cloned().unwrap_or_default();
        for c in consumers {
            let c = self.consumers.get_mut(c).expect("fan-out holds live consumers");
            c.producer_paused = paused;
            if !paused {
                c.sync_required = true;
            }
            if let Target::Shard { shard, mirror } = c.target {
                let paused = !c.active();
                self.shard_out.push_back((shard, super::ShardCommand::MirrorPaused { mirror, paused }));
            }
            self.events.push_back(if paused {
                Event::ProducerPaused { consumer: c.id }
            } else {
                Event::ProducerResumed { consumer: c.id }
            });
        }
        Ok(true)
    }

    pub fn pause_consumer(&mut self, id: ObjectId) -> Result<()> {
        let ckey = self
            .key(id, ObjectKind::Consumer)
            .ok_or_else(|| Error::invalid_state(format!("consumer {id} not found or closed")))?;
        let c = self.consumers.get_mut(ckey).expect("key from ids");
        c.paused = true;
        if let Target::Shard { shard, mirror } = c.target {
            self.shard_out.push_back((shard, super::ShardCommand::MirrorPaused { mirror, paused: true }));
        }
        Ok(())
    }

    pub fn resume_consumer(&mut self, now: Instant, id: ObjectId) -> Result<()> {
        let ckey = self
            .key(id, ObjectKind::Consumer)
            .ok_or_else(|| Error::invalid_state(format!("consumer {id} not found or closed")))?;
        let c = self.consumers.get_mut(ckey).expect("key from ids");
        if !c.paused {
            return Ok(());
        }
        c.paused = false;
        c.sync_required = true;
        if let Target::Shard { shard, mirror } = c.target {
            let paused = !c.active();
            self.shard_out.push_back((shard, super::ShardCommand::MirrorPaused { mirror, paused }));
        }
        let (pkey, kind, active) = (c.producer, c.kind, c.active());
        if kind == MediaKind::Video && active {
            self.request_key_frame_for(now, pkey);
        }
        Ok(())
    }

    /// mediasoup's `consumer.requestKeyFrame()`.
    pub fn consumer_request_key_frame(&mut self, now: Instant, id: ObjectId) -> Result<()> {
        let ckey = self
            .key(id, ObjectKind::Consumer)
            .ok_or_else(|| Error::invalid_state(format!("consumer {id} not found or closed")))?;
        let pkey = self.consumers.get(ckey).expect("key from ids").producer;
        self.request_key_frame_for(now, pkey);
        Ok(())
    }

    pub fn close_router(&mut self, id: ObjectId, reason: Option<CloseReason>) -> Result<()> {
        let rkey = self
            .key(id, ObjectKind::Router)
            .ok_or_else(|| Error::invalid_state(format!("router {id} not found or closed")))?;
        let transports = self.routers.get(rkey).expect("key").transports.clone();
        // Every transport of the router closes, so every consumer gets `transportclose` (as in
        // mediasoup), not `producerclose` from a producer on an earlier transport closing first.
        for &t in &transports {
            let consumers = self.transports.get(t).expect("router holds live transports").consumers.clone();
            for c in consumers {
                self.close_consumer_key(c, Some(CloseReason::TransportClosed));
            }
            let data_consumers = self.transports.get(t).expect("router holds live transports").data_consumers.clone();
            for c in data_consumers {
                self.close_data_consumer_key(c, Some(CloseReason::TransportClosed));
            }
        }
        for t in transports {
            self.close_transport_key(t, Some(CloseReason::RouterClosed));
        }
        for o in self.routers.get(rkey).expect("key").observers.clone() {
            self.close_observer_key(o, Some(CloseReason::RouterClosed));
        }
        self.routers.remove(rkey);
        self.ids.remove(&id);
        if let Some(reason) = reason {
            self.events.push_back(Event::Closed { object: id, reason });
        }
        Ok(())
    }

    /// mediasoup's `transport.setMaxIncomingBitrate(bps)` (0 removes the limit): from the next
    /// RTCP report on, the endpoints sending to this transport get a REMB of `bps` for their
    /// streams, which browsers take as a cap on their send rate.
    pub fn set_max_incoming_bitrate(&mut self, id: ObjectId, bps: u32) -> Result<()> {
        let tkey = self
            .key(id, ObjectKind::Transport)
            .ok_or_else(|| Error::invalid_state(format!("transport {id} not found or closed")))?;
        self.transports.get_mut(tkey).expect("key from ids").max_incoming_bitrate = bps;
        Ok(())
    }

    pub fn close_transport(&mut self, id: ObjectId) -> Result<()> {
        let tkey = self
            .key(id, ObjectKind::Transport)
            .ok_or_else(|| Error::invalid_state(format!("transport {id} not found or closed")))?;
        self.close_transport_key(tkey, None);
        Ok(())
    }

    pub(super) fn close_transport_key(&mut self, tkey: u32, reason: Option<CloseReason>) {
        let producers = self.transports.get(tkey).expect("transport key").producers.clone();
        for p in producers {
            self.close_producer_key(p, Some(CloseReason::TransportClosed));
        }
        // Read after the producers closed: a consumer of one of them on this same transport is
        // gone already (with `producerclose`).
        let consumers = self.transports.get(tkey).expect("transport key").consumers.clone();
        for c in consumers {
            self.close_consumer_key(c, Some(CloseReason::TransportClosed));
        }
        let data_producers = self.transports.get(tkey).expect("transport key").data_producers.clone();
        for p in data_producers {
            self.close_data_producer_key(p, Some(CloseReason::TransportClosed));
        }
        let data_consumers = self.transports.get(tkey).expect("transport key").data_consumers.clone();
        for c in data_consumers {
            self.close_data_consumer_key(c, Some(CloseReason::TransportClosed));
        }
        let mut t = self.transports.remove(tkey).expect("transport key");
        match &mut t.kind {
            TransportKind::Plain(p) => {
                for s in std::iter::once(p.rtp_socket).chain(p.rtcp_socket) {
                    self.sockets.remove(&s);
                    self.released_sockets.push(s);
                }
            }
            TransportKind::WebRtc(w) => self.release_webrtc(tkey, w),
            TransportKind::Direct | TransportKind::Link { .. } | TransportKind::PipeOut => {}
        }
        if let Some(r) = self.routers.get_mut(t.router) {
            r.transports.retain(|&k| k != tkey);
        }
        self.ids.remove(&t.id);
        if self.transports.is_empty() {
            self.next_tick = None;
        }
        if let Some(reason) = reason {
            self.events.push_back(Event::Closed { object: t.id, reason });
        }
    }

    pub fn close_producer(&mut self, id: ObjectId) -> Result<()> {
        let pkey = self
            .key(id, ObjectKind::Producer)
            .ok_or_else(|| Error::invalid_state(format!("producer {id} not found or closed")))?;
        self.close_producer_key(pkey, None);
        Ok(())
    }

    pub(super) fn close_producer_key(&mut self, pkey: u32, reason: Option<CloseReason>) {
        self.unwatch_all(pkey);
        let p = self.producers.get(pkey).expect("producer key");
        let consumers = self.routers.get(p.router).and_then(|r| r.fanout.get(&pkey)).cloned().unwrap_or_default();
        for c in consumers {
            self.close_consumer_key(c, Some(CloseReason::ProducerClosed));
        }
        let p = self.producers.remove(pkey).expect("producer key");
        for &(shard, mirror) in &p.subscribers {
            self.shard_out.push_back((shard, super::ShardCommand::MirrorClosed { mirror }));
        }
        // A pipe producer closing closes its pipe consumer on the origin shard.
        if let (Some(MirrorOf::PipeConsumer(consumer)), Some(TransportKind::Link { origin })) =
            (p.mirror_of, self.transports.get(p.transport).map(|t| &t.kind))
        {
            self.shard_out.push_back((*origin, super::ShardCommand::PipeClosed { consumer }));
        }
        if let Some(r) = self.routers.get_mut(p.router) {
            r.fanout.remove(&pkey);
        }
        if let Some(t) = self.transports.get_mut(p.transport) {
            t.producers.retain(|&k| k != pkey);
            t.ssrc_table.retain(|_, s| s.producer != pkey);
            t.mid_table.retain(|(_, k)| *k != pkey);
        }
        self.ids.remove(&p.id);
        if let Some(reason) = reason {
            self.events.push_back(Event::Closed { object: p.id, reason });
        }
    }

    pub fn close_consumer(&mut self, id: ObjectId) -> Result<()> {
        let ckey = self
            .key(id, ObjectKind::Consumer)
            .ok_or_else(|| Error::invalid_state(format!("consumer {id} not found or closed")))?;
        self.close_consumer_key(ckey, None);
        Ok(())
    }

    pub(super) fn close_consumer_key(&mut self, ckey: u32, reason: Option<CloseReason>) {
        let c = self.consumers.remove(ckey).expect("consumer key");
        if let Target::Shard { shard, mirror } = c.target {
            self.shard_out.push_back((shard, super::ShardCommand::MirrorClosed { mirror }));
        }
        if let Some(list) = self.routers.get_mut(c.router).and_then(|r| r.fanout.get_mut(&c.producer)) {
            list.retain(|&k| k != ckey);
        }
        if let Some(t) = self.transports.get_mut(c.transport) {
            t.consumers.retain(|&k| k != ckey);
            t.consumer_ssrcs.retain(|_, (k, _)| *k != ckey);
        }
        self.ids.remove(&c.id);
        // The last consumer of a mirror gone: the mirror may be torn down (see `span.rs`).
        let mirror = self.producers.get(c.producer).is_some_and(|p| matches!(p.mirror_of, Some(MirrorOf::Producer(_))));
        if mirror && self.routers.get(c.router).and_then(|r| r.fanout.get(&c.producer)).is_none_or(Vec::is_empty) {
            self.idle_mirrors.push(c.producer);
        }
        if let Some(reason) = reason {
            self.events.push_back(Event::Closed { object: c.id, reason });
        }
    }
}
