//! RTCP in both directions and the shard's housekeeping tick:
//! - from consumers' endpoints: receiver reports (loss, RTT), NACKs answered from the producer's
//!   retransmission buffer (as RTX when negotiated), PLI/FIR turned into a key frame request;
//! - to producers' endpoints: receiver reports, NACKs for lost packets, PLI/FIR (rate limited by
//!   `keyFrameRequestDelay`);
//! - to consumers' endpoints: sender reports.

use std::time::Instant;

use super::objects::*;
use super::{DropReason, Event, Shard, ShardCommand, Sink, RTCP_INTERVAL, TICK};
use crate::rtp::rtcp::{self, RtcpItem};
use crate::rtp::{rtt_from_report, write_header, write_rtx_header, HeaderFields, NtpTime, DEFAULT_RTT};
use crate::rtp_parameters::MediaKind;

/// SSRCs one REMB names at most (a transport's producers rarely have more streams).
const MAX_REMB_SSRCS: usize = 64;
/// NACK sequence numbers produced per stream per poll.
const MAX_NACKS_PER_POLL: usize = 64;

impl Shard {
    pub(super) fn handle_rtcp<'a>(&mut self, now: Instant, tkey: u32, data: &'a mut [u8], out: &mut impl Sink<'a>) {
        if let Some(t) = self.transports.get_mut(tkey) {
            t.traffic.rtcp_in += 1;
        }
        let result = rtcp::parse_compound(data, |item| match item {
            RtcpItem::SenderReport { info, reports } => {
                self.on_sender_report(now, tkey, info.ssrc, NtpTime { sec: info.ntp_sec, frac: info.ntp_frac });
                for rb in reports {
                    self.on_report_block(now, tkey, &rb);
                }
            }
            RtcpItem::ReceiverReport { reports, .. } => {
                for rb in reports {
                    self.on_report_block(now, tkey, &rb);
                }
            }
            RtcpItem::Nack { media_ssrc, pairs, .. } => {
                for seq in pairs.seqs() {
                    self.retransmit(now, tkey, media_ssrc, seq, out);
                }
            }
            RtcpItem::Pli { media_ssrc, .. } => self.on_key_frame_request(now, tkey, media_ssrc, false),
            RtcpItem::Fir { entries, .. } => {
                for (ssrc, _seq) in entries {
                    self.on_key_frame_request(now, tkey, ssrc, true);
                }
            }
            _ => {}
        });
        if result.is_err() {
            self.drops.count(DropReason::MalformedRtcp);
        }
        self.send_key_frame_requests(now, out);
    }

    /// A DirectTransport's `sendRtcp()`.
    pub fn handle_direct_rtcp<'a>(
        &mut self,
        now: Instant,
        transport: super::ObjectId,
        data: &'a mut [u8],
        out: &mut impl Sink<'a>,
    ) -> crate::Result<()> {
        let tkey = self
            .key(transport, super::ObjectKind::Transport)
            .ok_or_else(|| crate::Error::invalid_state(format!("transport {transport} not found or closed")))?;
        let tkey = self.direct_transport(tkey)?;
        self.handle_rtcp(now, tkey, data, out);
        Ok(())
    }

    fn on_sender_report(&mut self, now: Instant, tkey: u32, ssrc: u32, ntp: NtpTime) {
        let Some(sref) = self.transports.get(tkey).and_then(|t| t.ssrc_table.get(&ssrc)).copied() else {
            return;
        };
        if sref.rtx {
            // An SR about the RTX stream says nothing of the media stream's timing.
            return;
        }
        if let Some(s) = self.producers.get_mut(sref.producer).and_then(|p| p.streams.get_mut(usize::from(sref.stream)))
        {
            s.recv.on_sender_report(now, ntp);
        }
    }

    fn on_report_block(&mut self, now: Instant, tkey: u32, rb: &rtcp::ReportBlock) {
        let Some(&(ckey, false)) = self.transports.get(tkey).and_then(|t| t.consumer_ssrcs.get(&rb.ssrc)) else {
            return;
        };
        let ntp = self.clock.ntp(now);
        let Some(c) = self.consumers.get_mut(ckey) else { return };
        c.fraction_lost = rb.fraction_lost;
        if let Some(rtt) = rtt_from_report(ntp, rb) {
            c.rtt_ms = rtt.as_secs_f32() * 1000.0;
        }
        self.score_consumer(ckey, rb);
    }

    fn on_key_frame_request(&mut self, now: Instant, tkey: u32, media_ssrc: u32, fir: bool) {
        let Some(&(ckey, false)) = self.transports.get(tkey).and_then(|t| t.consumer_ssrcs.get(&media_ssrc)) else {
            return;
        };
        let Some(c) = self.consumers.get_mut(ckey) else { return };
        if fir {
            c.firs_in += 1;
        } else {
            c.plis_in += 1;
        }
        if c.active() {
            let pkey = c.producer;
            self.request_key_frame_for(now, pkey);
        }
    }

    /// Ask the producer's endpoint for a key frame; sent by `send_key_frame_requests`, at once
    /// or when `keyFrameRequestDelay` since the last request has passed.
    pub(super) fn request_key_frame_for(&mut self, _now: Instant, pkey: u32) {
        if let Some(p) = self.producers.get_mut(pkey) {
            if p.kind == MediaKind::Video && p.key_frames.request() {
                self.key_frame_pending.push(pkey);
            }
        }
    }

    /// Send due key frame requests (PLI, or FIR when the producer only negotiated FIR), and
    /// send again, once, those no key frame answered within [`KEY_FRAME_RETRY_WAIT`].
    pub fn send_key_frame_requests<'a>(&mut self, now: Instant, out: &mut impl Sink<'a>) {
        let Shard { producers, transports, scratch, events, key_frame_pending, shard_out, .. } = self;
        // Only producers with a request outstanding are visited; an entry stays while its
        // request waits (delay, or no remote yet) or waits for its key frame.
        key_frame_pending.retain(|&pkey| {
            let Some(p) = producers.get_mut(pkey) else { return false };
            let kf = &mut p.key_frames;
            if !kf.pending {
                match kf.retry_at {
                    // A key frame arrived meanwhile, or the retries are spent.
                    None => {
                        kf.listed = false;
                        return false;
                    }
                    Some(at) if now < at => return true,
                    Some(_) if kf.retries == 0 => {
                        kf.retry_at = None;
                        kf.listed = false;
                        return false;
                    }
                    Some(_) => {
                        // Unanswered: ask again.
                        kf.retries -= 1;
                        kf.pending = true;
                    }
                }
            }
            if kf.last_sent.is_some_and(|last| now < last + kf.delay) {
                return true;
            }
            let Some(t) = transports.get_mut(p.transport) else {
                kf.listed = false;
                return false;
            };
            if let TransportKind::Link { origin } = t.kind {
                // A mirror: the producer's own shard asks its sender (and applies its delay and
                // retries).
                let source = p.mirror_of.map_or(p.id, |m| m.source());
                shard_out.push_back((origin, ShardCommand::KeyFrameRequest { source }));
                kf.pending = false;
                kf.last_sent = Some(now);
                kf.listed = false;
                return false;
            }
            let target = t.rtcp_target(p.transport);
            if target == Target::None {
                // Nowhere to send yet (comedia before the first packet): keep it pending.
                return true;
            }
            for s in &p.streams {
                let Some(media_ssrc) = s.ssrc else { continue };
                let n = if kf.prefer_fir {
                    kf.fir_seq = kf.fir_seq.wrapping_add(1);
                    rtcp::write_fir(&mut scratch[..], t.rtcp_ssrc, media_ssrc, kf.fir_seq)
                } else {
                    rtcp::write_pli(&mut scratch[..], t.rtcp_ssrc, media_ssrc)
                };
                let Ok(n) = n else { continue };
                emit(target, t, &scratch[..n], events, out);
            }
            kf.sent(now);
            true
        });
    }

    /// NACK the producer's endpoint for what its streams miss now.
    pub(super) fn send_nacks<'a>(&mut self, now: Instant, pkey: u32, out: &mut impl Sink<'a>) {
        let Shard { producers, transports, scratch, events, .. } = self;
        let Some(p) = producers.get_mut(pkey) else { return };
        let Some(t) = transports.get_mut(p.transport) else { return };
        let target = t.rtcp_target(p.transport);
        let mut seqs = [0u16; MAX_NACKS_PER_POLL];
        for s in &mut p.streams {
            let (Some(nack), Some(media_ssrc)) = (s.nack.as_mut(), s.ssrc) else { continue };
            let n = nack.poll_nacks(now, DEFAULT_RTT, &mut seqs);
            if n == 0 {
                continue;
            }
            if let Ok(len) = rtcp::write_nack(&mut scratch[..], t.rtcp_ssrc, media_ssrc, &seqs[..n]) {
                emit(target, t, &scratch[..len], events, out);
            }
        }
    }

    /// Answer one NACKed sequence number of a consumer from its producer's buffer.
    fn retransmit<'a>(&mut self, now: Instant, tkey: u32, media_ssrc: u32, out_seq: u16, out: &mut impl Sink<'a>) {
        let Shard { transports, consumers, producers, scratch, drops, events, .. } = self;
        let Some(t) = transports.get_mut(tkey) else { return };
        let Some(&(ckey, false)) = t.consumer_ssrcs.get(&media_ssrc) else { return };
        let Some(c) = consumers.get_mut(ckey) else { return };
        c.nacks_in += 1;
        let Some((mapped_out, in_seq)) = c.seq_map[usize::from(out_seq) & (SEQ_MAP_SIZE - 1)] else { return };
        if mapped_out != out_seq || !c.active() {
            return;
        }
        let Some(p) = producers.get(c.producer) else { return };
        let Some(stored) = p.streams.first().and_then(|s| s.buffer.as_ref()).and_then(|b| b.get(now, in_seq)) else {
            return;
        };
        let bytes = stored.bytes();
        // The consumer's view of the packet: its own sequence number is the RTX OSN.
        let mut hdr = *stored.header();
        hdr.sequence_number = out_seq;
        let Some(codec) = p.codec(hdr.payload_type) else { return };
        let mut ext = crate::rtp::ExtensionsBuilder::default();
        if let Some((id, mid, len)) = &c.mid {
            let _ = ext.push(*id, &mid[..usize::from(*len)]);
        }
        let written = match c.rtx.as_mut() {
            Some(rtx) => {
                rtx.seq = rtx.seq.wrapping_add(1);
                let fields = HeaderFields {
                    payload_type: rtx.payload_type,
                    sequence_number: rtx.seq,
                    timestamp: hdr.timestamp,
                    ssrc: rtx.ssrc,
                    marker: hdr.marker,
                };
                write_rtx_header(&mut scratch[..], bytes, &hdr, &fields, Some(&ext)).map(|n| (n, hdr.payload(bytes)))
            }
            None => {
                let fields = HeaderFields {
                    payload_type: codec.mapped_payload_type,
                    sequence_number: out_seq,
                    timestamp: hdr.timestamp,
                    ssrc: c.ssrc,
                    marker: hdr.marker,
                };
                write_header(&mut scratch[..], bytes, &hdr, &fields, Some(&ext)).map(|n| (n, &bytes[hdr.header_len..]))
            }
        };
        let Ok((n, body)) = written else { return };
        if n + body.len() > scratch.len() {
            return;
        }
        scratch[n..n + body.len()].copy_from_slice(body);
        let len = n + body.len();
        c.retransmitted += 1;
        match c.target {
            Target::Udp { socket, dest } => out.send(socket, dest, &scratch[..len], &[]),
            Target::Direct => events.push_back(Event::DirectRtp { consumer: c.id, packet: scratch[..len].to_vec() }),
            Target::Srtp { socket, dest, transport } => {
                Shard::send_srtp_rtp(transports, transport, socket, dest, &scratch[..len], &[], drops, out)
            }
            // A pipe consumer's far side repairs from its own buffer.
            Target::None | Target::Shard { .. } => {}
        }
    }

    /// Housekeeping: NACK retries, delayed key frame requests, periodic RTCP reports.
    pub fn handle_timeout<'a>(&mut self, now: Instant, out: &mut impl Sink<'a>) {
        self.last_now = now;
        if self.next_tick.is_some_and(|t| now < t) {
            return;
        }
        self.next_tick = if self.transports.is_empty() { None } else { Some(now + TICK) };
        for pkey in 0..self.producers.key_bound() {
            if self.producers.get(pkey).is_some() {
                self.send_nacks(now, pkey, out);
            }
        }
        self.send_key_frame_requests(now, out);
        self.reap_idle_mirrors(now);
        self.reap_idle_data_mirrors(now);
        self.run_observers(now);
        self.webrtc_timeouts(now, out);
        for tkey in 0..self.transports.key_bound() {
            let due = self.transports.get(tkey).is_some_and(|t| t.next_rtcp <= now);
            if due {
                self.score_producers(now, tkey);
                self.send_reports(now, tkey, out);
            }
        }
    }

    /// Sender reports for the transport's consumers, receiver reports for its producers.
    fn send_reports<'a>(&mut self, now: Instant, tkey: u32, out: &mut impl Sink<'a>) {
        let ntp = self.clock.ntp(now);
        let Shard { transports, consumers, producers, scratch, events, .. } = self;
        let Some(t) = transports.get_mut(tkey) else { return };
        t.next_rtcp = now + RTCP_INTERVAL;
        let target = t.rtcp_target(tkey);
        if target == Target::None {
            return;
        }
        for i in 0..t.consumers.len() {
            let Some(c) = consumers.get(t.consumers[i]) else { continue };
            if c.packets == 0 {
                continue;
            }
            let Some(sr) = c.send.sender_info(now, ntp, c.ssrc) else { continue };
            let Ok(mut n) = rtcp::write_sr(&mut scratch[..], &sr, &[]) else { continue };
            // RFC 3550 6.1: a compound packet carries the sender's CNAME.
            if !c.cname.is_empty() {
                n += rtcp::write_sdes_cname(&mut scratch[n..], c.ssrc, c.cname.as_bytes()).unwrap_or(0);
            }
            emit(target, t, &scratch[..n], events, out);
        }
        let mut blocks = [rtcp::ReportBlock::default(); 31];
        let mut n_blocks = 0;
        for i in 0..t.producers.len() {
            let Some(p) = producers.get_mut(t.producers[i]) else { continue };
            for s in &mut p.streams {
                let Some(ssrc) = s.ssrc else { continue };
                if n_blocks == blocks.len() {
                    break;
                }
                blocks[n_blocks] = s.recv.report_block(now, ssrc);
                n_blocks += 1;
            }
        }
        if n_blocks > 0 {
            if let Ok(n) = rtcp::write_rr(&mut scratch[..], t.rtcp_ssrc, &blocks[..n_blocks]) {
                emit(target, t, &scratch[..n], events, out);
            }
        }
        if t.max_incoming_bitrate > 0 {
            // The cap covers every media stream the endpoint sends us.
            let mut ssrcs = [0u32; MAX_REMB_SSRCS];
            let mut n_ssrcs = 0;
            for &pkey in &t.producers {
                let Some(p) = producers.get(pkey) else { continue };
                for ssrc in p.streams.iter().filter_map(|s| s.ssrc) {
                    if n_ssrcs < MAX_REMB_SSRCS {
                        ssrcs[n_ssrcs] = ssrc;
                        n_ssrcs += 1;
                    }
                }
            }
            if n_ssrcs > 0 {
                let bitrate = u64::from(t.max_incoming_bitrate);
                if let Ok(n) = rtcp::write_remb(&mut scratch[..], t.rtcp_ssrc, bitrate, &ssrcs[..n_ssrcs]) {
                    emit(target, t, &scratch[..n], events, out);
                }
            }
        }
    }
}

/// Send one RTCP datagram to a transport's RTCP target.
fn emit<'a>(
    target: Target,
    t: &mut TransportState,
    bytes: &[u8],
    events: &mut std::collections::VecDeque<Event>,
    out: &mut impl Sink<'a>,
) {
    match target {
        Target::Srtp { socket, dest, .. } => {
            let TransportKind::WebRtc(w) = &mut t.kind else { return };
            let Some(srtp) = w.srtp_out.as_mut() else { return };
            let max_len = bytes.len() + srtp.profile().rtcp_overhead();
            let mut sent = false;
            out.send_with(socket, dest, max_len, &mut |buf| match srtp.protect_rtcp(bytes, buf) {
                Ok(n) => {
                    sent = true;
                    n
                }
                Err(_) => 0,
            });
            if sent {
                t.traffic.rtcp_out += 1;
            }
        }
        Target::Udp { socket, dest } => {
            t.traffic.rtcp_out += 1;
            out.send(socket, dest, bytes, &[]);
        }
        Target::Direct => {
            t.traffic.rtcp_out += 1;
            events.push_back(Event::DirectRtcp { transport: t.id, packet: bytes.to_vec() });
        }
        Target::None | Target::Shard { .. } => {}
    }
}
