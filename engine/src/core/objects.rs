//! The state of each entity on a shard. Plain data; the behaviour lives in `forward.rs`
//! (per-packet path), `feedback.rs` (RTCP and timers) and `mod.rs` (control operations).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use shardsfu_net::SocketId;

use super::keyframe::KeyFrameCodec;
use super::table::FastMap;
use super::ObjectId;
use crate::rtp::{NackGenerator, ReceiveStats, RetransmissionBuffer, Score, SendStats, SeqManager};
use crate::rtp_parameters::MediaKind;

/// Codecs per producer we look through on each packet (linear scan; they are few).
pub const MAX_CODECS_PER_PRODUCER: usize = 16;
/// Out-to-in sequence map per consumer, for answering NACKs (power of two).
pub const SEQ_MAP_SIZE: usize = 1024;
/// Header extension ids a consumer may carry are tracked in a bitmask: ids 1..=63.
pub const MAX_EXT_ID: u8 = 63;

#[derive(Debug)]
pub struct RouterState {
    pub transports: Vec<u32>,
    /// producer key -> consumer keys: the fan-out table.
    pub fanout: FastMap<u32, Vec<u32>>,
    /// data producer key -> data consumer keys.
    pub data_fanout: FastMap<u32, Vec<u32>>,
    /// RTP observers (on the router's home shard).
    pub observers: Vec<u32>,
}

/// Where a transport (or a consumer through it) sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Not connected yet.
    None,
    Udp {
        socket: SocketId,
        dest: SocketAddr,
    },
    /// Out of the process through events (DirectTransport).
    Direct,
    /// Into another router's producer (pipeToRouter): a record to `shard` for its `mirror`.
    Shard {
        shard: usize,
        mirror: ObjectId,
    },
    /// A WebRtcTransport's selected tuple, protected with `transport`'s outbound SRTP session.
    Srtp {
        socket: SocketId,
        dest: SocketAddr,
        transport: u32,
    },
}

#[derive(Debug)]
pub struct PlainState {
    pub rtp_socket: SocketId,
    pub rtcp_socket: Option<SocketId>,
    pub local: SocketAddr,
    pub local_rtcp: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    pub remote_rtcp: Option<SocketAddr>,
    pub comedia: bool,
    pub rtcp_mux: bool,
}

#[derive(Debug)]
pub enum TransportKind {
    Plain(PlainState),
    Direct,
    /// Hidden, one per (router, origin shard) on a shard where the router spans: it holds the
    /// mirrors of producers that live on `origin`, fed by inter-shard records.
    Link {
        origin: usize,
    },
    /// Hidden, one per router on a shard: holds the pipe consumers of pipeToRouter links, each
    /// with its own `Target::Shard`.
    PipeOut,
    /// ICE-lite + DTLS + SRTP (see `webrtc.rs`).
    WebRtc(Box<super::webrtc::WebRtcState>),
}

/// Which producer stream an SSRC belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRef {
    pub producer: u32,
    pub stream: u16,
    pub rtx: bool,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct TrafficCounters {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub rtcp_in: u64,
    pub rtcp_out: u64,
}

#[derive(Debug)]
pub struct TransportState {
    pub id: ObjectId,
    pub router: u32,
    pub kind: TransportKind,
    pub producers: Vec<u32>,
    pub consumers: Vec<u32>,
    pub data_producers: Vec<u32>,
    pub data_consumers: Vec<u32>,
    /// RTP listener: SSRC first, then MID, then RID.
    pub ssrc_table: FastMap<u32, StreamRef>,
    pub mid_table: Vec<(String, u32)>,
    pub mid_ext_id: u8,
    pub rid_ext_id: u8,
    pub rrid_ext_id: u8,
    /// consumer SSRC (and RTX SSRC) -> consumer key, for RTCP feedback.
    /// (consumer key, is its RTX SSRC); feedback is only taken for media SSRCs.
    pub consumer_ssrcs: FastMap<u32, (u32, bool)>,
    /// SSRC we use as RTCP sender for receiver reports.
    pub rtcp_ssrc: u32,
    pub next_rtcp: Instant,
    pub traffic: TrafficCounters,
    /// mediasoup's `setMaxIncomingBitrate` (bps, 0 = none): sent to the producers' endpoints as
    /// a REMB with each RTCP report.
    pub max_incoming_bitrate: u32,
}

impl TransportState {
    pub fn rtp_target(&self, tkey: u32) -> Target {
        match &self.kind {
            TransportKind::WebRtc(w) => w.target(tkey),
            TransportKind::Direct => Target::Direct,
            TransportKind::Link { .. } | TransportKind::PipeOut => Target::None,
            TransportKind::Plain(p) => match p.remote {
                Some(dest) => Target::Udp { socket: p.rtp_socket, dest },
                None => Target::None,
            },
        }
    }

    pub fn rtcp_target(&self, tkey: u32) -> Target {
        match &self.kind {
            TransportKind::WebRtc(w) => w.target(tkey),
            TransportKind::Direct => Target::Direct,
            TransportKind::Link { .. } | TransportKind::PipeOut => Target::None,
            TransportKind::Plain(p) if p.rtcp_mux => match p.remote {
                Some(dest) => Target::Udp { socket: p.rtp_socket, dest },
                None => Target::None,
            },
            TransportKind::Plain(p) => match (p.rtcp_socket, p.remote_rtcp) {
                (Some(socket), Some(dest)) => Target::Udp { socket, dest },
                _ => Target::None,
            },
        }
    }
}

/// One codec a producer may send, resolved for the packet path.
#[derive(Debug, Clone, Copy)]
pub struct CodecEntry {
    pub payload_type: u8,
    pub mapped_payload_type: u8,
    pub key_frame: KeyFrameCodec,
    /// RTX codec: `apt` is the (producer) payload type it repairs.
    pub rtx_apt: Option<u8>,
}

/// One encoding of a producer, as received.
#[derive(Debug)]
pub struct ProducerStream {
    pub ssrc: Option<u32>,
    pub rtx_ssrc: Option<u32>,
    pub rid: Option<String>,
    pub mapped_ssrc: u32,
    pub recv: ReceiveStats,
    pub nack: Option<NackGenerator>,
    pub buffer: Option<RetransmissionBuffer>,
    pub packets_repaired: u64,
    /// mediasoup's stream score: sampled on the origin shard (see `scores.rs`), set from the
    /// origin's on a mirror.
    pub score: Score,
    pub scoring: StreamScoring,
}

/// What the last score sample of a received stream saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamScoring {
    pub expected: u64,
    pub received: u64,
    /// Packets arrived since the stream last went quiet (a quiet stream scores 0).
    pub active: bool,
    /// The last sample that saw packets arrive.
    pub last_progress: Option<Instant>,
}

/// How long a sent key frame request waits for its key frame before it is sent once more
/// (mediasoup's `KeyFrameRetransmissionWaitTime`).
pub const KEY_FRAME_RETRY_WAIT: Duration = Duration::from_millis(1000);
/// Requests sent again for one unanswered request (mediasoup's `PendingKeyFrameInfo` retries
/// once). A request can be lost, or ignored: browsers throttle key frames (Chrome drops a PLI
/// that comes within 300 ms of the previous one), and a consumer that starts on a throttled PLI
/// would otherwise wait for a key frame that never comes.
pub const KEY_FRAME_RETRIES_MAX: u8 = 1;

#[derive(Debug)]
pub struct KeyFrameRequests {
    pub delay: Duration,
    pub last_sent: Option<Instant>,
    /// A request arrived inside the delay: send it when the delay ends.
    pub pending: bool,
    /// A request went out and no key frame came since: when to send it again, if `retries` allow.
    pub retry_at: Option<Instant>,
    /// Retries left for the request in flight.
    pub retries: u8,
    /// In the shard's list of producers with requests to send or to watch.
    pub listed: bool,
    pub prefer_fir: bool,
    pub fir_seq: u8,
}

impl KeyFrameRequests {
    pub fn new(delay: Duration, prefer_fir: bool) -> Self {
        Self {
            delay,
            last_sent: None,
            pending: false,
            retry_at: None,
            retries: 0,
            listed: false,
            prefer_fir,
            fir_seq: 0,
        }
    }

    /// A key frame is wanted (a new request: its retries start over). Returns true when the
    /// producer must be added to the shard's list.
    #[must_use]
    pub fn request(&mut self) -> bool {
        self.pending = true;
        self.retries = KEY_FRAME_RETRIES_MAX;
        !std::mem::replace(&mut self.listed, true)
    }

    /// A key frame arrived: nothing is wanted any more, nothing to retry.
    pub fn received(&mut self) {
        self.pending = false;
        self.retry_at = None;
    }

    /// A request went out at `now`: watch for its key frame.
    pub fn sent(&mut self, now: Instant) {
        self.pending = false;
        self.last_sent = Some(now);
        self.retry_at = Some(now + KEY_FRAME_RETRY_WAIT);
    }
}

#[derive(Debug)]
pub struct ProducerState {
    pub id: ObjectId,
    pub transport: u32,
    pub router: u32,
    pub kind: MediaKind,
    pub paused: bool,
    pub codecs: Vec<CodecEntry>,
    /// producer header extension id -> router id (0 = not forwarded).
    pub ext_map: [u8; 256],
    pub streams: Vec<ProducerStream>,
    pub key_frames: KeyFrameRequests,
    /// Other shards (and the mirror there) that get every packet once: the router's fan-out
    /// across shards. Never one entry per consumer.
    pub subscribers: Vec<(usize, ObjectId)>,
    /// For a mirror: what it mirrors on its origin shard.
    pub mirror_of: Option<MirrorOf>,
    /// For a plain mirror without consumers: since when (torn down after `MIRROR_IDLE`).
    pub idle_since: Option<Instant>,
    /// RTP observers watching it, and its `ssrc-audio-level` extension id (0: none).
    pub observers: Vec<u32>,
    pub audio_level_ext: u8,
    pub packets: u64,
    pub bytes: u64,
}

impl ProducerState {
    #[inline]
    pub fn codec(&self, payload_type: u8) -> Option<&CodecEntry> {
        self.codecs.iter().find(|c| c.payload_type == payload_type)
    }
}

/// What a mirror producer stands for on its origin shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorOf {
    /// The same producer (a router spanning shards).
    Producer(ObjectId),
    /// A pipe consumer of another router (pipeToRouter): the mirror is that router's pipe producer.
    PipeConsumer(ObjectId),
}

impl MirrorOf {
    pub fn source(self) -> ObjectId {
        match self {
            MirrorOf::Producer(id) | MirrorOf::PipeConsumer(id) => id,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RtxOut {
    pub ssrc: u32,
    pub payload_type: u8,
    pub seq: u16,
}

#[derive(Debug)]
pub struct ConsumerState {
    pub id: ObjectId,
    pub transport: u32,
    pub producer: u32,
    pub router: u32,
    pub kind: MediaKind,
    pub paused: bool,
    pub producer_paused: bool,
    pub target: Target,
    pub ssrc: u32,
    /// RTCP CNAME sent with sender reports (the producer's, as mediasoup does).
    pub cname: String,
    pub rtx: Option<RtxOut>,
    /// Router header extension ids this consumer negotiated, as a bitmask over 1..=63.
    pub ext_allowed: u64,
    pub mid: Option<(u8, [u8; 16], u8)>,
    pub key_frame: KeyFrameCodec,
    pub sync_required: bool,
    pub seq: SeqManager,
    /// out seq -> (out seq, in seq), for NACKs.
    pub seq_map: Box<[Option<(u16, u16)>; SEQ_MAP_SIZE]>,
    pub send: SendStats,
    pub packets: u64,
    pub bytes: u64,
    pub retransmitted: u64,
    pub nacks_in: u64,
    pub plis_in: u64,
    pub firs_in: u64,
    pub fraction_lost: u8,
    pub rtt_ms: f32,
    /// Its own score, from its receiver's reports.
    pub score: Score,
    /// Extended highest sequence number and cumulative loss of the last report block.
    pub last_report: Option<(u32, i32)>,
}

impl ConsumerState {
    #[inline]
    pub fn active(&self) -> bool {
        !self.paused && !self.producer_paused
    }

    #[inline]
    pub fn allows_ext(&self, id: u8) -> bool {
        id != 0 && id <= MAX_EXT_ID && self.ext_allowed & (1u64 << id) != 0
    }
}
