//! Producer and consumer scores: mediasoup's `producer.score`, `consumer.score` and their
//! `score` events.
//!
//! - A producer stream is scored where it arrives (its origin shard), once per RTCP interval of
//!   its transport, from the packets expected and received in the interval. It starts at 0 and
//!   takes its first sample as its score; a stream from which nothing arrives for
//!   [`INACTIVE_VIDEO`] (or [`INACTIVE_AUDIO`]: audio with DTX is silent for long stretches)
//!   scores 0 until packets come again.
//! - A consumer's own score comes from its receiver's reports: the packets expected and lost
//!   between two report blocks.
//! - When a producer's scores change, its origin tells at once: the application (the producer's
//!   `score` event), each consumer on this shard (`score` with `producerScore` and
//!   `producerScores`), and every other shard it spans to, once per (producer, shard), as a
//!   [`ShardCommand::MirrorScore`]. There the mirror takes the scores and tells its own consumers
//!   the same way. A pipe consumer passes them on to its pipe producer likewise.
//!
//! Nothing here runs per packet: scoring reads the receive statistics the packet path keeps.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::objects::{ConsumerState, MirrorOf, ProducerState, ProducerStream, Target, TransportKind};
use super::{Event, Shard, ShardCommand};
use crate::rtp::{interval_score, ReportBlock};
use crate::rtp_parameters::MediaKind;

/// A video stream without packets for this long scores 0.
pub const INACTIVE_VIDEO: Duration = Duration::from_millis(1500);
/// An audio stream without packets for this long scores 0.
pub const INACTIVE_AUDIO: Duration = Duration::from_secs(5);
/// Streams per producer whose scores cross to other shards (simulcast uses up to 4; a producer
/// with more streams has the rest reported on its origin shard only).
pub const MAX_CARRIED_SCORES: usize = 8;

/// One entry of mediasoup's `producer.score`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProducerStreamScore {
    pub encoding_idx: u32,
    pub ssrc: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    pub score: u8,
}

/// mediasoup's `consumer.score`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerScore {
    /// What its receiver gets of what it is sent.
    pub score: u8,
    /// The producer stream it forwards (the best one, as it forwards every stream).
    pub producer_score: u8,
    /// Every stream of its producer, by encoding.
    pub producer_scores: Vec<u8>,
}

impl Default for ConsumerScore {
    fn default() -> Self {
        ConsumerScore::starting(&[])
    }
}

impl ConsumerScore {
    /// A new consumer's score: nothing lost yet, and its producer's scores as last told.
    pub fn starting(producer: &[ProducerStreamScore]) -> Self {
        ConsumerScore::with(crate::rtp::MAX_SCORE, producer.iter().map(|s| s.score).collect())
    }

    fn with(score: u8, producer_scores: Vec<u8>) -> Self {
        ConsumerScore { score, producer_score: producer_scores.iter().copied().max().unwrap_or(0), producer_scores }
    }
}

/// A producer's stream scores in a form that crosses shards (`Copy`, no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CarriedScores {
    len: u8,
    scores: [u8; MAX_CARRIED_SCORES],
}

impl CarriedScores {
    fn of(p: &ProducerState) -> Self {
        let mut c = CarriedScores { len: 0, scores: [0; MAX_CARRIED_SCORES] };
        for (slot, s) in c.scores.iter_mut().zip(&p.streams) {
            *slot = s.score.get();
            c.len += 1;
        }
        c
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.scores[..usize::from(self.len)]
    }
}

/// Takes one score sample of a received stream; true when its score changed.
fn sample_stream(s: &mut ProducerStream, now: Instant, inactive_after: Duration) -> bool {
    let (expected, received) = (s.recv.expected(), s.recv.packets_received());
    // A restart of the sequence resets the counts: saturate, the next sample is whole again.
    let expected_delta = expected.saturating_sub(s.scoring.expected);
    let received_delta = received.saturating_sub(s.scoring.received);
    s.scoring.expected = expected;
    s.scoring.received = received;
    if received_delta == 0 {
        let quiet = s.scoring.last_progress.is_some_and(|at| now.saturating_duration_since(at) >= inactive_after);
        if s.scoring.active && quiet {
            s.scoring.active = false;
            return s.score.reset(0);
        }
        return false;
    }
    s.scoring.last_progress = Some(now);
    let sample = interval_score(expected_delta, expected_delta.saturating_sub(received_delta));
    if std::mem::replace(&mut s.scoring.active, true) {
        s.score.add(sample)
    } else {
        // Starting, or back after a silence: the old samples say nothing of the new flow.
        s.score.reset(sample)
    }
}

fn consumer_score(c: &ConsumerState, p: Option<&ProducerState>) -> ConsumerScore {
    let producer_scores = p.map(|p| p.streams.iter().map(|s| s.score.get()).collect()).unwrap_or_default();
    ConsumerScore::with(c.score.get(), producer_scores)
}

impl Shard {
    /// Samples the scores of transport `tkey`'s producers (on its RTCP interval).
    pub(super) fn score_producers(&mut self, now: Instant, tkey: u32) {
        let Some(t) = self.transports.get(tkey) else { return };
        if matches!(t.kind, TransportKind::Link { .. }) {
            // Mirrors: their origin scores the stream and tells them.
            return;
        }
        for i in 0..t.producers.len() {
            let Some(pkey) = self.transports.get(tkey).and_then(|t| t.producers.get(i)).copied() else { break };
            let Some(p) = self.producers.get_mut(pkey) else { continue };
            let inactive_after = if p.kind == MediaKind::Video { INACTIVE_VIDEO } else { INACTIVE_AUDIO };
            let mut changed = false;
            for s in &mut p.streams {
                changed |= sample_stream(s, now, inactive_after);
            }
            if changed {
                self.producer_scores_changed(pkey);
            }
        }
    }

    /// A report block about consumer `ckey`'s stream: its own score takes a sample.
    pub(super) fn score_consumer(&mut self, ckey: u32, rb: &ReportBlock) {
        let Some(c) = self.consumers.get_mut(ckey) else { return };
        let report = (rb.ext_highest_seq, rb.cumulative_lost);
        let Some((seq_before, lost_before)) = c.last_report.replace(report) else { return };
        let expected = rb.ext_highest_seq.wrapping_sub(seq_before);
        if expected > i32::MAX as u32 {
            // Older than the last report (reordered RTCP): no sample.
            c.last_report = Some((seq_before, lost_before));
            return;
        }
        let lost = i64::from(rb.cumulative_lost) - i64::from(lost_before);
        if c.score.add(interval_score(u64::from(expected), lost.max(0) as u64)) {
            self.tell_consumer_score(ckey);
        }
    }

    /// Tells the application a consumer's score as it stands.
    pub(super) fn tell_consumer_score(&mut self, ckey: u32) {
        let Some(c) = self.consumers.get(ckey) else { return };
        let score = consumer_score(c, self.producers.get(c.producer));
        self.events.push_back(Event::ConsumerScore { consumer: c.id, score });
    }

    /// The scores of producer `pkey` changed: tell the application, its consumers here, and the
    /// shards it spans to.
    pub(super) fn producer_scores_changed(&mut self, pkey: u32) {
        let Shard { producers, consumers, routers, events, shard_out, .. } = self;
        let Some(p) = producers.get(pkey) else { return };
        let carried = CarriedScores::of(p);
        // A mirror of a spanning router is the same producer, which its origin already reported.
        if !matches!(p.mirror_of, Some(MirrorOf::Producer(_))) {
            let scores = p
                .streams
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    Some(ProducerStreamScore {
                        encoding_idx: i as u32,
                        ssrc: s.ssrc?,
                        rid: s.rid.clone(),
                        score: s.score.get(),
                    })
                })
                .collect();
            events.push_back(Event::ProducerScore { producer: p.id, scores });
        }
        for &(shard, mirror) in &p.subscribers {
            shard_out.push_back((shard, ShardCommand::MirrorScore { mirror, scores: carried }));
        }
        let Some(list) = routers.get(p.router).and_then(|r| r.fanout.get(&pkey)) else { return };
        for &ckey in list {
            let Some(c) = consumers.get(ckey) else { continue };
            if let Target::Shard { shard, mirror } = c.target {
                shard_out.push_back((shard, ShardCommand::MirrorScore { mirror, scores: carried }));
            }
            events.push_back(Event::ConsumerScore { consumer: c.id, score: consumer_score(c, Some(p)) });
        }
    }

    /// The scores of the source of mirror `pkey`, from its origin shard.
    pub(super) fn set_mirror_scores(&mut self, pkey: u32, scores: &CarriedScores) {
        let Some(p) = self.producers.get_mut(pkey) else { return };
        let mut changed = false;
        for (s, &score) in p.streams.iter_mut().zip(scores.as_slice()) {
            changed |= s.score.reset(score);
        }
        if changed {
            self.producer_scores_changed(pkey);
        }
    }

    /// Scores of a new subscriber `mirror` on `shard` (it starts from the source's current ones).
    pub(super) fn carried_scores(&self, pkey: u32) -> Option<CarriedScores> {
        self.producers.get(pkey).map(CarriedScores::of)
    }
}
