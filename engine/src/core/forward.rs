//! The per-packet path: datagram in, RTP listener, producer, fan-out, consumer rewrite, out.
//!
//! No allocation here (DirectTransport output excepted: it leaves the process as an owned
//! buffer by definition). Drops are counted by reason, never returned as errors.

use std::net::SocketAddr;
use std::time::Instant;

use shardsfu_net::SocketId;

use super::keyframe::is_key_frame;
use super::objects::*;
use super::webrtc::SocketRoute;
use super::{DropReason, Event, Shard, Sink, MAX_FORWARDED_EXTENSIONS, RECORD_HEAD_BYTES};
use crate::rtp::{classify, parse_rtp, rewrite_in_place, write_header, HeaderFields, PacketKind, RtpHeader};

/// Comedia learns its remote only from a packet that parses (as mediasoup does): a stray
/// datagram that merely looks like RTP or RTCP by its first two bytes must not take the tuple.
fn latchable(kind: PacketKind, data: &[u8]) -> bool {
    match kind {
        PacketKind::Rtp => parse_rtp(data).is_ok(),
        PacketKind::Rtcp => crate::rtp::rtcp::parse_compound(data, |_| {}).is_ok(),
        _ => false,
    }
}

impl Shard {
    /// One datagram from the network on `socket`, sent by `src`.
    pub fn handle_datagram<'a>(
        &mut self,
        now: Instant,
        socket: SocketId,
        src: SocketAddr,
        data: &'a mut [u8],
        out: &mut impl Sink<'a>,
    ) {
        let (tkey, rtcp_socket) = match self.sockets.get(&socket) {
            Some(&SocketRoute::Plain { transport, rtcp }) => (transport, rtcp),
            Some(&SocketRoute::Ice(route)) => return self.handle_ice_datagram(now, socket, route, src, data, out),
            None => {
                self.drops.count(DropReason::UnknownSocket);
                return;
            }
        };
        let kind = classify(data);
        let t = self.transports.get_mut(tkey).expect("socket table holds live transports");
        let TransportKind::Plain(p) = &mut t.kind else {
            self.drops.count(DropReason::UnknownSocket);
            return;
        };
        // Source check, with comedia learning the remote from the first packet.
        let is_rtcp = kind == PacketKind::Rtcp;
        if rtcp_socket {
            if !is_rtcp {
                self.drops.count(DropReason::UnknownProtocol);
                return;
            }
            match p.remote_rtcp {
                Some(r) if r == src => {}
                None if p.comedia => {
                    if !latchable(kind, data) {
                        self.drops.count(DropReason::MalformedRtcp);
                        return;
                    }
                    p.remote_rtcp = Some(src);
                    let local = p.local_rtcp.unwrap_or(p.local);
                    self.events.push_back(Event::RtcpTuple { transport: t.id, local, remote: src });
                }
                _ => {
                    self.drops.count(DropReason::UnknownSource);
                    return;
                }
            }
        } else {
            match p.remote {
                Some(r) if r == src => {}
                None if p.comedia && matches!(kind, PacketKind::Rtp | PacketKind::Rtcp) => {
                    if !latchable(kind, data) {
                        self.drops.count(if is_rtcp { DropReason::MalformedRtcp } else { DropReason::MalformedRtp });
                        return;
                    }
                    p.remote = Some(src);
                    let local = p.local;
                    self.events.push_back(Event::Tuple { transport: t.id, local, remote: src });
                    self.refresh_targets(tkey);
                }
                _ => {
                    self.drops.count(DropReason::UnknownSource);
                    return;
                }
            }
        }
        match kind {
            PacketKind::Rtp => self.handle_rtp(now, tkey, None, data, out),
            PacketKind::Rtcp => self.handle_rtcp(now, tkey, data, out),
            _ => self.drops.count(DropReason::UnknownProtocol),
        }
    }

    /// An RTP packet handed in by the application (DirectTransport producer `send()`).
    pub fn handle_direct_rtp<'a>(
        &mut self,
        now: Instant,
        producer: super::ObjectId,
        data: &'a mut [u8],
        out: &mut impl Sink<'a>,
    ) -> crate::Result<()> {
        let pkey = self
            .key(producer, super::ObjectKind::Producer)
            .ok_or_else(|| crate::Error::invalid_state(format!("producer {producer} not found or closed")))?;
        let tkey = self.direct_transport(self.producers.get(pkey).expect("key").transport)?;
        self.handle_rtp(now, tkey, None, data, out);
        Ok(())
    }

    /// `tkey` if it is a DirectTransport, the API's error otherwise.
    pub(super) fn direct_transport(&self, tkey: u32) -> crate::Result<u32> {
        match self.transports.get(tkey).map(|t| &t.kind) {
            Some(TransportKind::Direct) => Ok(tkey),
            _ => Err(crate::Error::invalid_state("not a DirectTransport")),
        }
    }

    /// The stream of mirror `pkey` a forwarded packet belongs to: by SSRC, learning it when the
    /// origin learned it from MID/RID (the only case a mirror's stream has no SSRC yet).
    fn mirror_stream(&mut self, pkey: u32, hdr: &RtpHeader) -> Option<StreamRef> {
        let p = self.producers.get_mut(pkey)?;
        if let Some(i) = p.streams.iter().position(|s| s.ssrc == Some(hdr.ssrc)) {
            return Some(StreamRef { producer: pkey, stream: i as u16, rtx: false });
        }
        let i = p.streams.iter().position(|s| s.ssrc.is_none())?;
        p.streams[i].ssrc = Some(hdr.ssrc);
        Some(StreamRef { producer: pkey, stream: i as u16, rtx: false })
    }

    /// RTP listener: SSRC first, then MID, then RID. Learns the SSRC on a MID/RID match.
    fn find_stream(&mut self, tkey: u32, hdr: &RtpHeader, data: &[u8]) -> Option<StreamRef> {
        let t = self.transports.get_mut(tkey)?;
        if let Some(s) = t.ssrc_table.get(&hdr.ssrc) {
            return Some(*s);
        }
        let mid = (t.mid_ext_id != 0).then(|| hdr.extension(data, t.mid_ext_id)).flatten();
        let producer = match mid {
            Some(mid) => t.mid_table.iter().find(|(m, _)| m.as_bytes() == mid).map(|(_, k)| *k)?,
            None if t.producers.len() == 1 && t.rid_ext_id != 0 => t.producers[0],
            None => return None,
        };
        let p = self.producers.get_mut(producer)?;
        let rid = (t.rid_ext_id != 0).then(|| hdr.extension(data, t.rid_ext_id)).flatten();
        let rrid = (t.rrid_ext_id != 0).then(|| hdr.extension(data, t.rrid_ext_id)).flatten();
        let (index, rtx) = if let Some(rrid) = rrid {
            (p.streams.iter().position(|s| s.rid.as_deref().map(str::as_bytes) == Some(rrid))?, true)
        } else if let Some(rid) = rid {
            (p.streams.iter().position(|s| s.rid.as_deref().map(str::as_bytes) == Some(rid))?, false)
        } else if p.streams.len() == 1 {
            let is_rtx = p.codec(hdr.payload_type).is_some_and(|c| c.rtx_apt.is_some());
            (0, is_rtx)
        } else {
            return None;
        };
        let stream = &mut p.streams[index];
        let slot = if rtx { &mut stream.rtx_ssrc } else { &mut stream.ssrc };
        if slot.is_some_and(|s| s != hdr.ssrc) {
            return None;
        }
        *slot = Some(hdr.ssrc);
        let sref = StreamRef { producer, stream: index as u16, rtx };
        t.ssrc_table.insert(hdr.ssrc, sref);
        Some(sref)
    }

    /// One RTP packet on transport `tkey`, for the producer its listener finds or, for a record
    /// from another shard, for the mirror `mirror` the record names.
    pub(super) fn handle_rtp<'a>(
        &mut self,
        now: Instant,
        tkey: u32,
        mirror: Option<u32>,
        data: &'a mut [u8],
        out: &mut impl Sink<'a>,
    ) {
        let mut hdr = match parse_rtp(data) {
            Ok(h) => h,
            Err(_) => {
                self.drops.count(DropReason::MalformedRtp);
                return;
            }
        };
        let sref = match mirror {
            Some(pkey) => self.mirror_stream(pkey, &hdr),
            None => self.find_stream(tkey, &hdr, data),
        };
        let Some(sref) = sref else {
            self.drops.count(DropReason::ProducerNotFound);
            return;
        };
        {
            let t = self.transports.get_mut(tkey).expect("live transport");
            t.traffic.packets_in += 1;
            t.traffic.bytes_in += data.len() as u64;
        }
        let p = self.producers.get_mut(sref.producer).expect("listener holds live producers");
        let Some(mut codec) = p.codec(hdr.payload_type).copied() else {
            self.drops.count(DropReason::UnknownPayloadType);
            return;
        };
        let mut data = data;
        let mut repaired = false;
        if sref.rtx {
            // RFC 4588: strip the original sequence number and turn the packet back into the
            // original, in place: move the header over the OSN.
            let Some(apt) = codec.rtx_apt else {
                self.drops.count(DropReason::MalformedRtx);
                return;
            };
            let payload_start = hdr.header_len;
            if hdr.payload_len == 0 {
                self.drops.count(DropReason::RtxPaddingOnly);
                return;
            }
            if data.len() < payload_start + 2 || hdr.payload_len < 2 {
                self.drops.count(DropReason::MalformedRtx);
                return;
            }
            let osn = u16::from_be_bytes([data[payload_start], data[payload_start + 1]]);
            let Some(ssrc) = p.streams[usize::from(sref.stream)].ssrc else {
                self.drops.count(DropReason::MalformedRtx);
                return;
            };
            data.copy_within(0..payload_start, 2);
            data = &mut data[2..];
            let fields = HeaderFields {
                payload_type: apt,
                sequence_number: osn,
                timestamp: hdr.timestamp,
                ssrc,
                marker: hdr.marker,
            };
            // Same offsets: the header now starts where the slice does.
            if rewrite_in_place(data, &hdr, &fields).is_err() {
                self.drops.count(DropReason::MalformedRtx);
                return;
            }
            hdr = match parse_rtp(data) {
                Ok(h) => h,
                Err(_) => {
                    self.drops.count(DropReason::MalformedRtx);
                    return;
                }
            };
            // Now the repaired packet's own codec (the one RTX's `apt` names).
            let Some(media) = p.codec(apt).copied() else {
                self.drops.count(DropReason::UnknownPayloadType);
                return;
            };
            codec = media;
            repaired = true;
        }
        let data: &'a [u8] = data;
        let stream = &mut p.streams[usize::from(sref.stream)];
        let key_frame = codec.key_frame.supported() && is_key_frame(codec.key_frame, hdr.payload(data));
        stream.recv.on_packet(now, hdr.sequence_number, hdr.timestamp, hdr.payload_len);
        let mut send_nack = false;
        if let Some(nack) = stream.nack.as_mut() {
            // NACK a new gap at once (as mediasoup does); retries go out from `handle_timeout`.
            // (`on_packet`'s return value says a gap was *filled*, which needs no NACK.)
            let missing_before = nack.missing_len();
            nack.on_packet(now, hdr.sequence_number, key_frame);
            send_nack = nack.missing_len() > missing_before;
            if nack.take_key_frame_request() && p.key_frames.request() {
                self.key_frame_pending.push(sref.producer);
            }
        }
        if repaired {
            stream.packets_repaired += 1;
        }
        if let Some(buffer) = stream.buffer.as_mut() {
            buffer.insert_parsed(now, &hdr, data);
        }
        p.packets += 1;
        p.bytes += data.len() as u64;
        let pkey = sref.producer;
        if send_nack {
            self.send_nacks(now, pkey, out);
        }
        let p = self.producers.get_mut(pkey).expect("live producer");
        if p.paused {
            self.drops.count(DropReason::ProducerPaused);
            return;
        }
        if key_frame {
            p.key_frames.received();
        }
        if !p.observers.is_empty() && p.audio_level_ext != 0 {
            // RFC 6464: V bit, then the level in -dBov (0 loudest, 127 silence).
            if let Some(&[byte, ..]) = hdr.extension(data, p.audio_level_ext) {
                for &okey in &p.observers {
                    if let Some(o) = self.observers.get_mut(okey) {
                        o.on_level(pkey, byte & 0x7f, now);
                    }
                }
            }
        }
        // Other shards of the router: once per (producer, shard), whatever their consumer count.
        for &(shard, mirror) in &p.subscribers {
            if out.to_shard(shard, &mirror.to_be_bytes(), data) {
                self.records_out += 1;
            }
        }

        // Extensions forwarded to consumers, mapped to the router's ids once per packet.
        let mut forwarded: [(u8, &'a [u8]); MAX_FORWARDED_EXTENSIONS] = [(0, &[]); MAX_FORWARDED_EXTENSIONS];
        let mut n_ext = 0;
        for (id, value) in hdr.extensions(data) {
            let mapped = p.ext_map[usize::from(id)];
            if mapped != 0 && n_ext < MAX_FORWARDED_EXTENSIONS {
                forwarded[n_ext] = (mapped, value);
                n_ext += 1;
            }
        }
        let forwarded = &forwarded[..n_ext];
        let body: &'a [u8] = &data[hdr.header_len..];
        let router = p.router;

        let Shard { routers, consumers, transports, scratch, ext, drops, events, records_out, .. } = self;
        let Some(list) = routers.get(router).and_then(|r| r.fanout.get(&pkey)) else {
            return;
        };
        for &ckey in list {
            let c = consumers.get_mut(ckey).expect("fan-out holds live consumers");
            if !c.active() {
                drops.count(DropReason::ConsumerInactive);
                continue;
            }
            if c.target == Target::None {
                drops.count(DropReason::NoRemote);
                continue;
            }
            if c.sync_required {
                if c.key_frame.supported() && !key_frame {
                    drops.count(DropReason::NotAKeyFrame);
                    continue;
                }
                // `SeqManager::sync` takes the packet itself (not mediasoup's "one before").
                c.seq.sync(hdr.sequence_number);
                c.sync_required = false;
            }
            let Some(out_seq) = c.seq.input(hdr.sequence_number) else {
                drops.count(DropReason::SequenceRejected);
                continue;
            };
            ext.clear();
            for &(id, value) in forwarded {
                if c.allows_ext(id) {
                    let _ = ext.push(id, value);
                }
            }
            if let Some((id, mid, len)) = &c.mid {
                let _ = ext.push(*id, &mid[..usize::from(*len)]);
            }
            let fields = HeaderFields {
                payload_type: codec.mapped_payload_type,
                sequence_number: out_seq,
                timestamp: hdr.timestamp,
                ssrc: c.ssrc,
                marker: hdr.marker,
            };
            // The header goes after room for a record head, for consumers that feed another
            // router's producer through a shard record (pipeToRouter).
            let Ok(n) = write_header(&mut scratch[RECORD_HEAD_BYTES..], data, &hdr, &fields, Some(&*ext)) else {
                drops.count(DropReason::MalformedRtp);
                continue;
            };
            c.seq_map[usize::from(out_seq) & (SEQ_MAP_SIZE - 1)] = Some((out_seq, hdr.sequence_number));
            let size = n + body.len();
            // The SR's octet count is payload only (RFC 3550 6.4.1); `bytes` counts whole packets.
            c.send.on_packet_sent(now, hdr.timestamp, hdr.payload_len);
            c.packets += 1;
            c.bytes += size as u64;
            let head = &scratch[RECORD_HEAD_BYTES..RECORD_HEAD_BYTES + n];
            match c.target {
                Target::Udp { socket, dest } => out.send(socket, dest, head, body),
                Target::Direct => {
                    let mut packet = Vec::with_capacity(size);
                    packet.extend_from_slice(head);
                    packet.extend_from_slice(body);
                    events.push_back(Event::DirectRtp { consumer: c.id, packet });
                }
                Target::Shard { shard, mirror } => {
                    scratch[..RECORD_HEAD_BYTES].copy_from_slice(&mirror.to_be_bytes());
                    if out.to_shard(shard, &scratch[..RECORD_HEAD_BYTES + n], body) {
                        *records_out += 1;
                    }
                }
                Target::Srtp { socket, dest, transport } => {
                    Shard::send_srtp_rtp(transports, transport, socket, dest, head, body, drops, out)
                }
                Target::None => {}
            }
        }
    }
}
