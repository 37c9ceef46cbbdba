//! Typed snapshots of shard objects for `dump()` and `getStats()`. The API layer turns them into
//! mediasoup's JSON, with UUID strings in place of internal ids.

use std::net::SocketAddr;

use super::objects::*;
use super::{DropCounters, ObjectCounts, ObjectId, ObjectKind, Shard};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct RouterSnapshot {
    pub transports: Vec<ObjectId>,
    /// producer -> consumers.
    pub fanout: Vec<(ObjectId, Vec<ObjectId>)>,
    /// data producer -> data consumers.
    pub data_fanout: Vec<(ObjectId, Vec<ObjectId>)>,
    /// RTP observers, and producer -> the observers watching it.
    pub observers: Vec<ObjectId>,
    pub producer_observers: Vec<(ObjectId, Vec<ObjectId>)>,
}

#[derive(Debug, Clone)]
pub struct TransportSnapshot {
    pub direct: bool,
    pub producers: Vec<ObjectId>,
    pub consumers: Vec<ObjectId>,
    pub data_producers: Vec<ObjectId>,
    pub data_consumers: Vec<ObjectId>,
    pub ssrc_table: Vec<(u32, ObjectId)>,
    pub mid_table: Vec<(String, ObjectId)>,
    pub consumer_ssrcs: Vec<(u32, ObjectId)>,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    pub local_rtcp: Option<SocketAddr>,
    pub remote_rtcp: Option<SocketAddr>,
    pub comedia: bool,
    pub rtcp_mux: bool,
    pub traffic: TrafficCounters,
    pub webrtc: Option<WebRtcSnapshot>,
}

/// A WebRtcTransport's ICE and DTLS state.
#[derive(Debug, Clone)]
pub struct WebRtcSnapshot {
    pub ice_state: crate::webrtc::ice::IceState,
    pub ice_selected_tuple: Option<crate::webrtc::ice::IceTuple>,
    pub ice_parameters: crate::webrtc::ice::IceParameters,
    pub dtls_state: crate::webrtc::cert::DtlsState,
    pub dtls_role: Option<crate::webrtc::cert::DtlsRole>,
    pub srtp_profile: Option<crate::webrtc::srtp::SrtpProfile>,
}

#[derive(Debug, Clone)]
pub struct StreamSnapshot {
    pub ssrc: Option<u32>,
    pub rtx_ssrc: Option<u32>,
    pub rid: Option<String>,
    pub mapped_ssrc: u32,
    pub packets_received: u64,
    pub packets_lost: i64,
    pub jitter: u32,
    pub packets_repaired: u64,
    pub score: u8,
}

#[derive(Debug, Clone)]
pub struct ProducerSnapshot {
    pub paused: bool,
    pub streams: Vec<StreamSnapshot>,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone)]
pub struct ConsumerSnapshot {
    pub producer: ObjectId,
    pub paused: bool,
    pub producer_paused: bool,
    pub ssrc: u32,
    pub rtx_ssrc: Option<u32>,
    pub packets: u64,
    pub bytes: u64,
    pub retransmitted: u64,
    pub nacks_in: u64,
    pub plis_in: u64,
    pub firs_in: u64,
    pub fraction_lost: u8,
    pub rtt_ms: f32,
    pub score: u8,
}

// Control-plane only (dump/getStats), one at a time: boxing the transport variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Snapshot {
    Router(RouterSnapshot),
    Transport(TransportSnapshot),
    Producer(ProducerSnapshot),
    Consumer(ConsumerSnapshot),
    DataProducer(super::DataProducerSnapshot),
    DataConsumer(super::DataConsumerSnapshot),
}

/// The shard as a whole, for the engine's dump and metrics.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardSnapshot {
    pub objects: ObjectCounts,
    pub drops: DropCounters,
    /// Packets sent to other shards of spanning routers (one per packet per subscribed shard).
    pub records_to_shards: u64,
    /// Data messages sent to other shards (one per message per subscribed shard or pipe link).
    pub data_messages_to_shards: u64,
}

impl Shard {
    pub fn shard_snapshot(&self) -> ShardSnapshot {
        ShardSnapshot {
            objects: self.object_counts(),
            drops: *self.drops(),
            records_to_shards: self.records_to_shards(),
            data_messages_to_shards: self.data_to_shards,
        }
    }

    pub fn snapshot(&self, id: ObjectId) -> Result<Snapshot> {
        let (kind, key) =
            *self.ids.get(&id).ok_or_else(|| Error::invalid_state(format!("object {id} not found or closed")))?;
        let pid = |k: u32| self.producers.get(k).map(|p| p.id).unwrap_or_default();
        let cid = |k: u32| self.consumers.get(k).map(|c| c.id).unwrap_or_default();
        Ok(match kind {
            ObjectKind::Router => {
                let r = self.routers.get(key).expect("key from ids");
                let (observers, producer_observers) = self.observer_ids(key);
                Snapshot::Router(RouterSnapshot {
                    transports: r.transports.iter().filter_map(|&t| self.transports.get(t)).map(|t| t.id).collect(),
                    fanout: r.fanout.iter().map(|(&p, cs)| (pid(p), cs.iter().map(|&c| cid(c)).collect())).collect(),
                    data_fanout: self.data_fanout_ids(key),
                    observers,
                    producer_observers,
                })
            }
            ObjectKind::Transport => {
                let t = self.transports.get(key).expect("key from ids");
                let (direct, local, remote, local_rtcp, remote_rtcp, comedia, rtcp_mux) = match &t.kind {
                    TransportKind::Direct | TransportKind::Link { .. } | TransportKind::PipeOut => {
                        (true, None, None, None, None, false, true)
                    }
                    TransportKind::WebRtc(_) => (false, None, None, None, None, false, true),
                    TransportKind::Plain(p) => {
                        (false, Some(p.local), p.remote, p.local_rtcp, p.remote_rtcp, p.comedia, p.rtcp_mux)
                    }
                };
                let (data_producers, data_consumers) = self.data_ids(key);
                Snapshot::Transport(TransportSnapshot {
                    direct,
                    data_producers,
                    data_consumers,
                    producers: t.producers.iter().map(|&p| pid(p)).collect(),
                    consumers: t.consumers.iter().map(|&c| cid(c)).collect(),
                    ssrc_table: t.ssrc_table.iter().map(|(&s, r)| (s, pid(r.producer))).collect(),
                    mid_table: t.mid_table.iter().map(|(m, p)| (m.clone(), pid(*p))).collect(),
                    consumer_ssrcs: t.consumer_ssrcs.iter().map(|(&s, &(c, _))| (s, cid(c))).collect(),
                    local,
                    remote,
                    local_rtcp,
                    remote_rtcp,
                    comedia,
                    rtcp_mux,
                    traffic: t.traffic,
                    webrtc: match &t.kind {
                        TransportKind::WebRtc(w) => Some(WebRtcSnapshot {
                            ice_state: w.ice.state(),
                            ice_selected_tuple: w.ice.selected_tuple().copied(),
                            ice_parameters: w.ice.parameters(),
                            dtls_state: w.dtls_state,
                            dtls_role: w.remote.as_ref().map(|r| r.side.into()),
                            srtp_profile: w.srtp_profile,
                        }),
                        _ => None,
                    },
                })
            }
            ObjectKind::Producer => {
                let p = self.producers.get(key).expect("key from ids");
                Snapshot::Producer(ProducerSnapshot {
                    paused: p.paused,
                    streams: p
                        .streams
                        .iter()
                        .map(|s| StreamSnapshot {
                            ssrc: s.ssrc,
                            rtx_ssrc: s.rtx_ssrc,
                            rid: s.rid.clone(),
                            mapped_ssrc: s.mapped_ssrc,
                            packets_received: s.recv.packets_received(),
                            packets_lost: s.recv.lost(),
                            jitter: s.recv.jitter(),
                            packets_repaired: s.packets_repaired,
                            score: s.score.get(),
                        })
                        .collect(),
                    packets: p.packets,
                    bytes: p.bytes,
                })
            }
            ObjectKind::Consumer => {
                let c = self.consumers.get(key).expect("key from ids");
                Snapshot::Consumer(ConsumerSnapshot {
                    producer: pid(c.producer),
                    paused: c.paused,
                    producer_paused: c.producer_paused,
                    ssrc: c.ssrc,
                    rtx_ssrc: c.rtx.map(|r| r.ssrc),
                    packets: c.packets,
                    bytes: c.bytes,
                    retransmitted: c.retransmitted,
                    nacks_in: c.nacks_in,
                    plis_in: c.plis_in,
                    firs_in: c.firs_in,
                    fraction_lost: c.fraction_lost,
                    rtt_ms: c.rtt_ms,
                    score: c.score.get(),
                })
            }
            ObjectKind::DataProducer => Snapshot::DataProducer(self.data_producer_snapshot(key)),
            ObjectKind::DataConsumer => Snapshot::DataConsumer(self.data_consumer_snapshot(key)),
            ObjectKind::RtpObserver => return Err(Error::invalid_state("an rtpObserver has no snapshot")),
        })
    }
}
