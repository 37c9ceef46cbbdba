//! Several shards of one engine in memory: a [`MeshSink`] per shard keeps its datagrams and its
//! inter-shard records, and [`Mesh::pump`] delivers records and shard commands between them.
#![allow(dead_code)]

use super::*;

/// One inter-shard record a shard queued for shard `to`: `[mirror id u64 BE][RTP packet]`.
#[derive(Debug, Clone)]
pub struct Record {
    pub to: usize,
    pub bytes: Vec<u8>,
}

impl Record {
    pub fn mirror(&self) -> ObjectId {
        ObjectId::from_be_bytes(self.bytes[..RECORD_HEAD_BYTES].try_into().expect("record head"))
    }

    pub fn packet(&self) -> &[u8] {
        &self.bytes[RECORD_HEAD_BYTES..]
    }
}

/// The sink of one shard of a [`Mesh`]: datagrams as [`VecSink`] keeps them, and every record
/// for another shard (always accepted: the rings never fill here).
#[derive(Debug, Default)]
pub struct MeshSink {
    pub net: VecSink,
    pub records: Vec<Record>,
}

impl<'a> Sink<'a> for MeshSink {
    fn send(&mut self, socket: SocketId, dest: SocketAddr, head: &[u8], body: &'a [u8]) {
        self.net.send(socket, dest, head, body);
    }

    fn to_shard(&mut self, shard: usize, head: &[u8], body: &[u8]) -> bool {
        let mut bytes = Vec::with_capacity(head.len() + body.len());
        bytes.extend_from_slice(head);
        bytes.extend_from_slice(body);
        self.records.push(Record { to: shard, bytes });
        true
    }
}

/// Something [`Mesh::pump`] carried from one shard to another (or to itself).
#[derive(Debug, Clone, PartialEq)]
pub enum Crossing {
    Record { from: usize, to: usize, mirror: ObjectId },
    Command { from: usize, to: usize, cmd: ShardCommand },
}

/// Rounds of delivery [`Mesh::pump`] allows before it calls the shards a livelock.
pub const MESH_PUMP_ROUNDS_MAX: usize = 64;

/// A producer on one shard of a [`Mesh`], on its own connected plain transport.
#[derive(Debug, Clone)]
pub struct MeshProducer {
    pub shard: usize,
    pub router: ObjectId,
    pub id: ObjectId,
    pub transport: ObjectId,
    pub socket: SocketId,
    pub remote: SocketAddr,
    pub kind: MediaKind,
    /// The SSRC its endpoint sends with.
    pub ssrc: u32,
    pub spec: ProducerSpec,
    pub consumable: RtpParameters,
}

/// A consumer on one shard of a [`Mesh`], on its own connected plain transport.
#[derive(Debug, Clone)]
pub struct MeshConsumer {
    pub shard: usize,
    pub id: ObjectId,
    pub producer: ObjectId,
    pub transport: ObjectId,
    pub socket: SocketId,
    pub remote: SocketAddr,
    pub ssrc: u32,
    pub rtx_ssrc: Option<u32>,
    pub pt: u8,
    pub rtx_pt: Option<u8>,
}

/// A pipeToRouter link as `api::pipe` builds it: a pipe consumer in the source router on the
/// source producer's shard, a pipe producer (a mirror of the pipe consumer) in the target router.
#[derive(Debug, Clone)]
pub struct MeshPipe {
    pub consumer: ObjectId,
    pub consumer_shard: usize,
    pub consumer_ssrc: u32,
    pub producer: ObjectId,
    pub producer_shard: usize,
    pub router: ObjectId,
    /// The pipe producer's consumable parameters, for consumers in the target router.
    pub consumable: RtpParameters,
}

/// Several shards of one engine, on simulated time. Object ids are unique across shards (the
/// API allocates them engine-wide); a mirror has the id of what it mirrors.
pub struct Mesh {
    pub shards: Vec<Shard>,
    pub sinks: Vec<MeshSink>,
    /// Everything delivered between shards so far, in order.
    pub crossings: Vec<Crossing>,
    pub t0: Instant,
    pub now: Instant,
    pub caps: RtpCapabilities,
    next_id: ObjectId,
    next_endpoint: u16,
}

impl Mesh {
    pub fn new(shards: usize) -> Mesh {
        let t0 = Instant::now();
        let clock = NtpClock::new(t0, SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        Mesh {
            shards: (0..shards).map(|_| Shard::new(t0, clock)).collect(),
            sinks: (0..shards).map(|_| MeshSink::default()).collect(),
            crossings: Vec::new(),
            t0,
            now: t0,
            caps: router_caps(),
            next_id: 1000,
            next_endpoint: 0,
        }
    }

    pub fn fresh_id(&mut self) -> ObjectId {
        self.next_id += 1;
        self.next_id
    }

    /// A socket, its local address and the remote endpoint's address, unique across shards.
    fn endpoint(&mut self) -> (SocketId, SocketAddr, SocketAddr) {
        let n = self.next_endpoint;
        self.next_endpoint += 1;
        (SocketId(1000 + u32::from(n)), addr(30_000 + n), addr(40_000 + n))
    }

    /// What the adapter does after every control operation on a shard: send due key frame
    /// requests (which on a mirror's shard become `KeyFrameRequest` commands).
    fn after_control(&mut self, shard: usize) {
        let now = self.now;
        self.shards[shard].send_key_frame_requests(now, &mut self.sinks[shard]);
    }

    /// A control operation on `shard`, followed by what the adapter does after one.
    pub fn control<R>(&mut self, shard: usize, op: impl FnOnce(&mut Shard, Instant) -> R) -> R {
        let now = self.now;
        let r = op(&mut self.shards[shard], now);
        self.after_control(shard);
        r
    }

    /// The router `id`'s part on `shard`.
    pub fn router(&mut self, shard: usize, id: ObjectId) {
        self.control(shard, |s, _| s.create_router(id)).unwrap();
    }

    /// A producer (VP8 with RTX and full feedback, or opus) whose endpoint sends with SSRC
    /// `ssrc` (and `ssrc + 1` for RTX) and MID `mid`; `signal_ssrc` false leaves the SSRCs out
    /// of the parameters, for the SFU to learn from the MID.
    pub fn producer_with(
        &mut self,
        shard: usize,
        router: ObjectId,
        kind: MediaKind,
        ssrc: u32,
        mid: &str,
        signal_ssrc: bool,
    ) -> MeshProducer {
        let (transport, id) = (self.fresh_id(), self.fresh_id());
        let (socket, local, remote) = self.endpoint();
        let mut params = producer_params(kind, kind == MediaKind::Video, Feedback::Full, mid);
        let encodings = params.encodings.as_mut().expect("encodings");
        encodings[0].ssrc = signal_ssrc.then_some(ssrc);
        match encodings[0].rtx.as_mut() {
            Some(rtx) if signal_ssrc => rtx.ssrc = ssrc + 1,
            _ => encodings[0].rtx = None,
        }
        let (spec, consumable) = producer_spec(&self.caps, kind, params, 0);
        let produced = spec.clone();
        self.control(shard, |s, now| {
            s.create_plain_transport(now, router, transport, plain(socket.0, local.port(), false))?;
            s.connect_plain_transport(transport, remote, None)?;
            s.produce(now, transport, id, produced)
        })
        .unwrap();
        MeshProducer { shard, router, id, transport, socket, remote, kind, ssrc, spec, consumable }
    }

    /// A VP8 (with RTX) or opus producer with the harness's usual SSRC and MID.
    pub fn producer(&mut self, shard: usize, router: ObjectId, kind: MediaKind) -> MeshProducer {
        self.producer_with(shard, router, kind, PRODUCER_SSRC, "p0", true)
    }

    /// Make `shard` hold a mirror of `producer` and subscribe it, as `api::consumer`'s
    /// `ensure_mirror` does; then deliver what that sent.
    pub fn mirror(&mut self, producer: &MeshProducer, shard: usize) -> shardsfu_engine::Result<()> {
        let (router, id, origin, spec) = (producer.router, producer.id, producer.shard, producer.spec.clone());
        self.control(shard, |s, now| s.create_mirror(now, router, id, origin, MirrorOf::Producer(id), spec))?;
        self.control(origin, |s, _| s.add_subscriber(id, shard, id))?;
        self.pump();
        Ok(())
    }

    /// A consumer of `producer` (a producer, mirror or pipe producer on `shard`) on a new
    /// connected transport; then deliver what that sent.
    pub fn consumer(
        &mut self,
        shard: usize,
        router: ObjectId,
        producer: ObjectId,
        consumable: &RtpParameters,
    ) -> MeshConsumer {
        let (transport, id) = (self.fresh_id(), self.fresh_id());
        let (socket, local, remote) = self.endpoint();
        let ssrc = 0x1000_0000 + 16 * id as u32;
        let params = consumer_params(consumable, &self.caps, true, ssrc, &format!("c{id}"));
        let pt = params.codecs[0].payload_type;
        let rtx_pt = params.codecs.iter().find(|c| c.mime_type.ends_with("/rtx")).map(|c| c.payload_type);
        let rtx_ssrc = params.encodings.as_ref().expect("encodings")[0].rtx.map(|r| r.ssrc);
        let spec = ConsumerSpec { producer, rtp_parameters: params, paused: false };
        self.control(shard, |s, now| {
            s.create_plain_transport(now, router, transport, plain(socket.0, local.port(), false))?;
            s.connect_plain_transport(transport, remote, None)?;
            s.consume(now, transport, id, spec)
        })
        .unwrap();
        self.pump();
        MeshConsumer { shard, id, producer, transport, socket, remote, ssrc, rtx_ssrc, pt, rtx_pt }
    }

    /// mediasoup's `router.pipeToRouter()` of `producer` into `router` on `shard`, computed as
    /// `api::pipe` does (no RTX on the link); then deliver what that sent.
    pub fn pipe(&mut self, producer: &MeshProducer, shard: usize, router: ObjectId) -> MeshPipe {
        let (consumer, pipe_producer) = (self.fresh_id(), self.fresh_id());
        let consumer_ssrc = 0x5000_0000 + consumer as u32;
        let consumer_params =
            get_pipe_consumer_rtp_parameters(&producer.consumable, false, consumer_ssrc, consumer_ssrc + 1);
        let mut params = consumer_params.clone();
        validate_rtp_parameters(&mut params).unwrap();
        let (mut spec, consumable) = producer_spec(&self.caps, producer.kind, params, 0);
        spec.paused = self.producer_snapshot(producer.shard, producer.id).paused;
        let (origin, source_router, source) = (producer.shard, producer.router, producer.id);
        self.control(shard, |s, now| {
            s.create_mirror(now, router, pipe_producer, origin, MirrorOf::PipeConsumer(consumer), spec)
        })
        .unwrap();
        self.control(origin, |s, now| {
            s.create_pipe_consumer(now, source_router, consumer, source, consumer_params, shard, pipe_producer)
        })
        .unwrap();
        self.pump();
        MeshPipe {
            consumer,
            consumer_shard: origin,
            consumer_ssrc,
            producer: pipe_producer,
            producer_shard: shard,
            router,
            consumable,
        }
    }

    /// Deliver shard commands and records until no shard has anything for another. Returns how
    /// many crossings that took.
    pub fn pump(&mut self) -> usize {
        let before = self.crossings.len();
        for _ in 0..MESH_PUMP_ROUNDS_MAX {
            let mut moved = false;
            for from in 0..self.shards.len() {
                moved |= self.deliver_commands(from) > 0;
                moved |= self.deliver_records(from) > 0;
            }
            if !moved {
                return self.crossings.len() - before;
            }
        }
        panic!("shards still messaging each other after {MESH_PUMP_ROUNDS_MAX} rounds");
    }

    /// Deliver the shard commands `from` has queued (not what they cause). Returns how many.
    pub fn deliver_commands(&mut self, from: usize) -> usize {
        let mut n = 0;
        while let Some((to, cmd)) = self.shards[from].poll_shard_command() {
            self.crossings.push(Crossing::Command { from, to, cmd: cmd.clone() });
            let now = self.now;
            self.shards[to].handle_shard_command(now, from, cmd);
            self.after_control(to);
            n += 1;
        }
        n
    }

    /// Deliver the records `from` has queued (not what they cause). Returns how many.
    pub fn deliver_records(&mut self, from: usize) -> usize {
        let records = std::mem::take(&mut self.sinks[from].records);
        for r in &records {
            self.crossings.push(Crossing::Record { from, to: r.to, mirror: r.mirror() });
            let mut bytes = r.bytes.clone();
            let now = self.now;
            self.shards[r.to].handle_shard_record(now, from, &mut bytes, &mut self.sinks[r.to]);
        }
        records.len()
    }

    /// Hand a datagram to `shard` (nothing delivered between shards yet).
    pub fn recv(&mut self, shard: usize, socket: SocketId, src: SocketAddr, bytes: &[u8]) {
        let mut buf = bytes.to_vec();
        let now = self.now;
        self.shards[shard].handle_datagram(now, socket, src, &mut buf, &mut self.sinks[shard]);
    }

    /// An RTP packet from `producer`'s endpoint (nothing delivered between shards yet).
    pub fn produce_rtp(&mut self, producer: &MeshProducer, rtp: &Rtp) {
        self.recv(producer.shard, producer.socket, producer.remote, &rtp.build());
    }

    /// VP8 (or opus) packet `seq` of `producer`, a key frame when `key`.
    pub fn media(producer: &MeshProducer, seq: u16, key: bool) -> Rtp {
        let ssrc = producer.ssrc;
        match producer.kind {
            MediaKind::Video => {
                let payload = if key { vp8_key(seq as u8) } else { vp8_delta(seq as u8) };
                Rtp::new(ssrc, VIDEO_PT, seq).payload(&payload)
            }
            MediaKind::Audio => Rtp::new(ssrc, AUDIO_PT, seq).ts(u32::from(seq) * 960),
        }
    }

    /// A packet of `producer`, then everything it causes between shards.
    pub fn send_media(&mut self, producer: &MeshProducer, seq: u16, key: bool) {
        self.produce_rtp(producer, &Mesh::media(producer, seq, key));
        self.pump();
    }

    /// An RTCP datagram from `consumer`'s endpoint (nothing delivered between shards yet).
    pub fn consumer_rtcp(&mut self, consumer: &MeshConsumer, bytes: &[u8]) {
        self.recv(consumer.shard, consumer.socket, consumer.remote, bytes);
    }

    /// Moves simulated time forward by `ms` in `TICK` steps, running every shard's timeout and
    /// delivering between shards at each step.
    pub fn advance(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        while self.now < end {
            self.now = (self.now + shardsfu_engine::core::TICK).min(end);
            for i in 0..self.shards.len() {
                let now = self.now;
                self.shards[i].handle_timeout(now, &mut self.sinks[i]);
            }
            self.pump();
        }
    }

    /// Datagrams `shard` sent since the last call.
    pub fn take(&mut self, shard: usize) -> Vec<Datagram> {
        std::mem::take(&mut self.sinks[shard].net.datagrams)
    }

    /// Forget every datagram sent so far, on every shard.
    pub fn clear(&mut self) {
        for s in &mut self.sinks {
            s.net.datagrams.clear();
        }
    }

    pub fn events(&mut self, shard: usize) -> Vec<Event> {
        std::iter::from_fn(|| self.shards[shard].poll_event()).collect()
    }

    pub fn consumer_snapshot(&self, c: &MeshConsumer) -> ConsumerSnapshot {
        match self.shards[c.shard].snapshot(c.id).unwrap() {
            Snapshot::Consumer(c) => c,
            other => panic!("not a consumer: {other:?}"),
        }
    }

    pub fn producer_snapshot(&self, shard: usize, id: ObjectId) -> ProducerSnapshot {
        match self.shards[shard].snapshot(id).unwrap() {
            Snapshot::Producer(p) => p,
            other => panic!("not a producer: {other:?}"),
        }
    }
}
