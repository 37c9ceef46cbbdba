//! RTP observers: mediasoup's AudioLevelObserver and ActiveSpeakerObserver.
//!
//! An observer belongs to a router and lives on the router's home shard. It watches audio
//! producers of its router through the `ssrc-audio-level` header extension (RFC 6464) of their
//! packets. A producer on another shard of a spanning router is watched through its mirror on
//! the observer's shard (see `span.rs`): audio crosses once per (producer, shard) as for any
//! consumer there, and the mirror stays while an observer watches it.
//!
//! The packet path only adds the level to a running sum (or a speaker's frame ring); the
//! decisions are taken on the housekeeping tick, once per observer interval.

use std::time::{Duration, Instant};

use super::{Event, ObjectId, ObjectKind, Shard};
use crate::error::{Error, Result};
use crate::rtp_parameters::MediaKind;

/// What kind of observer, with mediasoup's options (already validated and clamped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObserverSpec {
    /// `volumes` every `interval` with the `max_entries` loudest producers at or above
    /// `threshold` dBov; `silence` once when none is.
    AudioLevel { max_entries: u16, threshold: i8, interval: Duration },
    /// `dominantspeaker` when the dominant speaker changes, decided every `interval`.
    ActiveSpeaker { interval: Duration },
}

/// mediasoup's AudioLevelObserver counts a producer only with this many packets in an interval.
const MIN_LEVELS_PER_INTERVAL: u32 = 10;

#[derive(Debug)]
pub struct ObserverState {
    pub id: ObjectId,
    pub router: u32,
    pub spec: ObserverSpec,
    pub paused: bool,
    pub watched: Vec<Watched>,
    /// The next decision.
    pub next: Instant,
    /// AudioLevelObserver: whether `silence` was the last thing told.
    pub silent: bool,
    /// ActiveSpeakerObserver: the dominant speaker (producer id).
    pub dominant: Option<ObjectId>,
}

/// One producer an observer watches.
#[derive(Debug)]
pub struct Watched {
    pub producer: u32,
    pub id: ObjectId,
    /// Levels (0 = loudest, 127 = silence) summed over the interval, and how many.
    pub level_sum: u32,
    pub levels: u32,
    pub speaker: Speaker,
}

impl ObserverState {
    fn interval(&self) -> Duration {
        match self.spec {
            ObserverSpec::AudioLevel { interval, .. } | ObserverSpec::ActiveSpeaker { interval } => interval,
        }
    }

    /// One level from a watched producer's packet.
    #[inline]
    pub fn on_level(&mut self, producer: u32, level: u8, now: Instant) {
        if self.paused {
            return;
        }
        let Some(w) = self.watched.iter_mut().find(|w| w.producer == producer) else { return };
        match self.spec {
            ObserverSpec::AudioLevel { .. } => {
                w.level_sum += u32::from(level);
                w.levels += 1;
            }
            ObserverSpec::ActiveSpeaker { .. } => w.speaker.frame(127 - level, now),
        }
    }

    fn reset_levels(&mut self) {
        for w in &mut self.watched {
            w.level_sum = 0;
            w.levels = 0;
        }
    }

    /// The interval is over: what to tell.
    fn decide(&mut self, now: Instant, producer_paused: impl Fn(u32) -> bool) -> Option<Event> {
        match self.spec {
            ObserverSpec::AudioLevel { max_entries, threshold, .. } => {
                let mut loud: Vec<(ObjectId, i8)> = self
                    .watched
                    .iter()
                    .filter(|w| w.levels >= MIN_LEVELS_PER_INTERVAL)
                    .map(|w| (w.id, -(((w.level_sum + w.levels / 2) / w.levels) as i8)))
                    .filter(|&(_, dbov)| dbov >= threshold)
                    .collect();
                self.reset_levels();
                // Loudest first; equal volumes keep the order producers were added in.
                loud.sort_by_key(|&(_, dbov)| std::cmp::Reverse(dbov));
                loud.truncate(usize::from(max_entries));
                if !loud.is_empty() {
                    self.silent = false;
                    Some(Event::AudioVolumes { observer: self.id, volumes: loud })
                } else if !self.silent {
                    self.silent = true;
                    Some(Event::AudioSilence { observer: self.id })
                } else {
                    None
                }
            }
            ObserverSpec::ActiveSpeaker { .. } => {
                for w in &mut self.watched {
                    w.speaker.catch_up(now);
                }
                let scores: Vec<(ObjectId, [f64; 3])> = self
                    .watched
                    .iter()
                    .filter(|w| !producer_paused(w.producer))
                    .map(|w| (w.id, w.speaker.scores()))
                    .collect();
                let next = dominant_speaker(self.dominant, &scores)?;
                self.dominant = Some(next);
                Some(Event::DominantSpeaker { observer: self.id, producer: next })
            }
        }
    }
}

// The dominant speaker test of Volfin and Cohen ("Dominant speaker identification for
// multipoint videoconferencing", 2013), over the one measure RTP gives us: the audio level of
// each packet (one ~20 ms frame). Three time scales:
// - immediate: how far the last frame is above the speaker's noise floor, in `IMMEDIATE_STEPS`;
// - medium: how many of the last `FRAMES_PER_MEDIUM` frames were active;
// - long: how many of the last `MEDIUMS_PER_LONG` mediums were active.
// Each count becomes an activity score (its share of the most it could be, floored above zero);
// a challenger replaces the dominant speaker only when the log-ratio of its scores to the
// dominant speaker's beats the paper's margins on all three scales: in effect, once the
// dominant speaker has gone quiet for a medium while the challenger talks, and has talked more
// over the long scale. A cough does not take over; a silent dominant speaker gives way to
// whoever talks. (The paper scores counts with a binomial likelihood ratio; the share is
// monotone where that is not, and the margins then read as plain ratios.)

/// Steps of an immediate (the paper's N1 sub-bands).
const IMMEDIATE_STEPS: u32 = 13;
/// Frames per medium (the paper's N2).
const FRAMES_PER_MEDIUM: usize = 5;
/// Mediums per long (the paper's N3).
const MEDIUMS_PER_LONG: usize = 10;
const FRAMES: usize = FRAMES_PER_MEDIUM * MEDIUMS_PER_LONG;
/// Volume (127 - level, i.e. dB) per immediate step.
const VOLUME_PER_STEP: u8 = 127u8.div_ceil(IMMEDIATE_STEPS as u8);
/// A frame is active when its immediate is above this (30 dB over the noise floor).
const ACTIVE_IMMEDIATE: u8 = 2;
/// A medium is active when more than this many of its frames are.
const ACTIVE_MEDIUM: usize = 2;
const MIN_SCORE: f64 = 1e-10;
/// Log-ratio margins a challenger must beat the dominant speaker by, per time scale.
const MARGINS: [f64; 3] = [3.0, 2.0, 0.0];
/// Audio frame length: with no packet for two frames, the speaker is silent.
const FRAME: Duration = Duration::from_millis(20);
/// The noise floor rises by 1 dB per this many frames above it (falls at once).
const FLOOR_RISE_FRAMES: u32 = 25;
/// The noise floor a speaker starts with: a room's background (-70 dBov). It falls to quieter
/// frames at once, so a speaker who talks from the first packet is heard as talking.
const INITIAL_FLOOR: u8 = 127 - 70;

/// One watched producer's recent frames, for the dominant speaker test.
#[derive(Debug, Clone)]
pub struct Speaker {
    /// Immediates of the last `FRAMES` frames, newest at `head - 1`.
    immediates: [u8; FRAMES],
    head: usize,
    floor: u8,
    above_floor: u32,
    last_frame: Option<Instant>,
}

impl Default for Speaker {
    fn default() -> Self {
        Speaker { immediates: [0; FRAMES], head: 0, floor: INITIAL_FLOOR, above_floor: 0, last_frame: None }
    }
}

impl Speaker {
    /// One frame of `volume` (0 = silence, 127 = 0 dBov).
    fn frame(&mut self, volume: u8, now: Instant) {
        // Digital silence (a muted microphone) says nothing of the room's noise.
        if volume > 0 && volume < self.floor {
            self.floor = volume;
            self.above_floor = 0;
        } else if volume > self.floor {
            self.above_floor += 1;
            if self.above_floor >= FLOOR_RISE_FRAMES {
                self.floor += 1;
                self.above_floor = 0;
            }
        }
        let steps = volume.saturating_sub(self.floor) / VOLUME_PER_STEP;
        self.push(steps.min(IMMEDIATE_STEPS as u8));
        self.last_frame = Some(now);
    }

    fn push(&mut self, immediate: u8) {
        self.immediates[self.head] = immediate;
        self.head = (self.head + 1) % FRAMES;
    }

    /// Frames that never came (the producer went quiet) count as silence.
    fn catch_up(&mut self, now: Instant) {
        let Some(last) = self.last_frame else { return };
        let mut missing = now.saturating_duration_since(last).as_millis() / FRAME.as_millis();
        if missing < 2 {
            return;
        }
        missing = missing.min(FRAMES as u128);
        for _ in 0..missing {
            self.push(0);
        }
        self.last_frame = Some(now);
    }

    /// The `i`-th newest immediate.
    fn newest(&self, i: usize) -> u8 {
        self.immediates[(self.head + FRAMES - 1 - i) % FRAMES]
    }

    /// Active frames in the `m`-th newest medium.
    fn medium(&self, m: usize) -> usize {
        (0..FRAMES_PER_MEDIUM).filter(|f| self.newest(m * FRAMES_PER_MEDIUM + f) > ACTIVE_IMMEDIATE).count()
    }

    /// Speech activity scores: immediate, medium, long.
    fn scores(&self) -> [f64; 3] {
        let immediate = u32::from(self.newest(0));
        let medium = self.medium(0) as u32;
        let long = (0..MEDIUMS_PER_LONG).filter(|&m| self.medium(m) > ACTIVE_MEDIUM).count() as u32;
        [
            activity_score(immediate, IMMEDIATE_STEPS),
            activity_score(medium, FRAMES_PER_MEDIUM as u32),
            activity_score(long, MEDIUMS_PER_LONG as u32),
        ]
    }
}

/// Activity score of `active` out of `of`.
fn activity_score(active: u32, of: u32) -> f64 {
    (f64::from(active) / f64::from(of)).max(MIN_SCORE)
}

/// The new dominant speaker, if it changes. With none yet, the most active speaker once anyone
/// has spoken in the last medium.
fn dominant_speaker(current: Option<ObjectId>, scores: &[(ObjectId, [f64; 3])]) -> Option<ObjectId> {
    let Some(dominant) = current.and_then(|d| scores.iter().find(|(id, _)| *id == d)) else {
        let spoke = scores.iter().filter(|(_, s)| s[1] > MIN_SCORE);
        let best = spoke.max_by(|a, b| (a.1[2], a.1[1]).partial_cmp(&(b.1[2], b.1[1])).expect("finite scores"))?;
        return (current != Some(best.0)).then_some(best.0);
    };
    let mut best: Option<(ObjectId, f64)> = None;
    for (id, s) in scores.iter().filter(|(id, _)| *id != dominant.0) {
        let ratios: [f64; 3] = std::array::from_fn(|i| (s[i] / dominant.1[i]).ln());
        if ratios.iter().zip(MARGINS).all(|(r, m)| *r > m) && best.is_none_or(|(_, b)| ratios[1] > b) {
            best = Some((*id, ratios[1]));
        }
    }
    best.map(|(id, _)| id)
}

impl Shard {
    fn observer_key(&self, id: ObjectId) -> Result<u32> {
        self.key(id, ObjectKind::RtpObserver)
            .ok_or_else(|| Error::invalid_state(format!("rtpObserver {id} not found or closed")))
    }

    /// mediasoup's `router.createAudioLevelObserver()` / `createActiveSpeakerObserver()`.
    pub fn create_observer(&mut self, now: Instant, router: ObjectId, id: ObjectId, spec: ObserverSpec) -> Result<()> {
        super::control::ensure_new(self, id)?;
        let rkey = self
            .key(router, ObjectKind::Router)
            .ok_or_else(|| Error::invalid_state(format!("router {router} not found or closed")))?;
        let mut o = ObserverState {
            id,
            router: rkey,
            spec,
            paused: false,
            watched: Vec::new(),
            next: now,
            silent: true,
            dominant: None,
        };
        o.next = now + o.interval();
        let key = self.observers.insert(o);
        self.routers.get_mut(rkey).expect("key from ids").observers.push(key);
        self.ids.insert(id, (ObjectKind::RtpObserver, key));
        self.arm_tick(now);
        Ok(())
    }

    /// mediasoup's `rtpObserver.addProducer({ producerId })`: an audio producer of the router
    /// (or its mirror on this shard).
    pub fn observer_add_producer(&mut self, id: ObjectId, producer: ObjectId) -> Result<()> {
        let okey = self.observer_key(id)?;
        let pkey = self
            .key(producer, ObjectKind::Producer)
            .ok_or_else(|| Error::invalid_state(format!("producer {producer} not found or closed")))?;
        let p = self.producers.get(pkey).expect("key from ids");
        let o = self.observers.get(okey).expect("key from ids");
        if p.router != o.router {
            return Err(Error::invalid_state(format!("producer {producer} is not in the observer's router")));
        }
        if p.kind != MediaKind::Audio {
            return Err(Error::type_error("not an audio Producer"));
        }
        if o.watched.iter().any(|w| w.producer == pkey) {
            return Err(Error::other("Producer already in map"));
        }
        let o = self.observers.get_mut(okey).expect("key from ids");
        o.watched.push(Watched { producer: pkey, id: producer, level_sum: 0, levels: 0, speaker: Speaker::default() });
        let p = self.producers.get_mut(pkey).expect("key from ids");
        p.observers.push(okey);
        p.idle_since = None;
        Ok(())
    }

    /// mediasoup's `rtpObserver.removeProducer({ producerId })`.
    pub fn observer_remove_producer(&mut self, id: ObjectId, producer: ObjectId) -> Result<()> {
        let okey = self.observer_key(id)?;
        let pkey = self
            .key(producer, ObjectKind::Producer)
            .filter(|&k| self.observers.get(okey).expect("key").watched.iter().any(|w| w.producer == k))
            .ok_or_else(|| Error::other(format!("Producer {producer} not found in the observer")))?;
        self.unwatch(okey, pkey);
        Ok(())
    }

    /// Observer `okey` stops watching producer `pkey`. A mirror left with neither consumers nor
    /// observers is torn down after `MIRROR_IDLE`.
    fn unwatch(&mut self, okey: u32, pkey: u32) {
        if let Some(o) = self.observers.get_mut(okey) {
            o.watched.retain(|w| w.producer != pkey);
            if o.dominant.is_some_and(|d| self.producers.get(pkey).is_some_and(|p| p.id == d)) {
                o.dominant = None;
            }
        }
        if let Some(p) = self.producers.get_mut(pkey) {
            p.observers.retain(|&o| o != okey);
            if p.mirror_of.is_some() {
                self.idle_mirrors.push(pkey);
            }
        }
    }

    /// A producer closed: its observers forget it (mediasoup tells nothing for that).
    pub(super) fn unwatch_all(&mut self, pkey: u32) {
        let observers = self.producers.get(pkey).map(|p| p.observers.clone()).unwrap_or_default();
        for okey in observers {
            self.unwatch(okey, pkey);
        }
    }

    pub fn pause_observer(&mut self, id: ObjectId) -> Result<()> {
        let okey = self.observer_key(id)?;
        let o = self.observers.get_mut(okey).expect("key from ids");
        o.paused = true;
        o.reset_levels();
        Ok(())
    }

    pub fn resume_observer(&mut self, now: Instant, id: ObjectId) -> Result<()> {
        let okey = self.observer_key(id)?;
        let o = self.observers.get_mut(okey).expect("key from ids");
        if o.paused {
            o.paused = false;
            o.next = now + o.interval();
        }
        Ok(())
    }

    pub fn close_observer(&mut self, id: ObjectId) -> Result<()> {
        let okey = self.observer_key(id)?;
        self.close_observer_key(okey, None);
        Ok(())
    }

    pub(super) fn close_observer_key(&mut self, okey: u32, reason: Option<super::CloseReason>) {
        let watched: Vec<u32> =
            self.observers.get(okey).map(|o| o.watched.iter().map(|w| w.producer).collect()).unwrap_or_default();
        for pkey in watched {
            self.unwatch(okey, pkey);
        }
        let o = self.observers.remove(okey).expect("observer key");
        if let Some(r) = self.routers.get_mut(o.router) {
            r.observers.retain(|&k| k != okey);
        }
        self.ids.remove(&o.id);
        if let Some(reason) = reason {
            self.events.push_back(Event::Closed { object: o.id, reason });
        }
    }

    /// Housekeeping: observers whose interval is over decide and tell.
    pub(super) fn run_observers(&mut self, now: Instant) {
        let Shard { observers, producers, events, .. } = self;
        for okey in 0..observers.key_bound() {
            let Some(o) = observers.get_mut(okey) else { continue };
            if o.paused || now < o.next {
                continue;
            }
            o.next = now + o.interval();
            if let Some(ev) = o.decide(now, |pkey| producers.get(pkey).is_none_or(|p| p.paused)) {
                events.push_back(ev);
            }
        }
    }

    /// (observer ids of the router, producer id -> observer ids), for the router's dump.
    pub(super) fn observer_ids(&self, rkey: u32) -> (Vec<ObjectId>, Vec<(ObjectId, Vec<ObjectId>)>) {
        let Some(r) = self.routers.get(rkey) else { return Default::default() };
        let mut by_producer: Vec<(ObjectId, Vec<ObjectId>)> = Vec::new();
        let mut ids = Vec::new();
        for o in r.observers.iter().filter_map(|&k| self.observers.get(k)) {
            ids.push(o.id);
            for w in &o.watched {
                match by_producer.iter_mut().find(|(p, _)| *p == w.id) {
                    Some((_, os)) => os.push(o.id),
                    None => by_producer.push((w.id, vec![o.id])),
                }
            }
        }
        (ids, by_producer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speaker_with(volumes: &[u8], t0: Instant) -> Speaker {
        let mut s = Speaker::default();
        for (i, &v) in volumes.iter().enumerate() {
            s.frame(v, t0 + FRAME * i as u32);
        }
        s
    }

    #[test]
    fn activity_scores_grow_with_activity() {
        for (i, n) in [(0, IMMEDIATE_STEPS), (1, FRAMES_PER_MEDIUM as u32), (2, MEDIUMS_PER_LONG as u32)] {
            let scores: Vec<f64> = (0..=n).map(|v| activity_score(v, n)).collect();
            assert!(scores.windows(2).all(|w| w[1] >= w[0]), "scale {i}: {scores:?}");
            assert!(scores[n as usize] > scores[0]);
        }
    }

    #[test]
    fn a_talker_beats_a_silent_dominant_speaker_but_not_a_cough() {
        let t0 = Instant::now();
        // A room with a noise floor at volume 30: talking is ~95, silence ~30.
        let mut talk = vec![30u8; 10];
        talk.extend(std::iter::repeat_n(95u8, 60));
        let silent = speaker_with(&[30; 70], t0);
        let talker = speaker_with(&talk, t0);
        let (a, b) = (1, 2);
        assert_eq!(dominant_speaker(None, &[(a, silent.scores()), (b, talker.scores())]), Some(b));
        assert_eq!(dominant_speaker(Some(a), &[(a, silent.scores()), (b, talker.scores())]), Some(b));
        assert_eq!(dominant_speaker(Some(b), &[(a, silent.scores()), (b, talker.scores())]), None, "no change");
        // Nobody spoke yet: nobody is dominant.
        assert_eq!(dominant_speaker(None, &[(a, silent.scores())]), None);
        // A cough (three loud frames) does not take over from a talker.
        let mut cough = vec![30u8; 67];
        cough.extend([100, 100, 100]);
        let cougher = speaker_with(&cough, t0);
        assert_eq!(dominant_speaker(Some(b), &[(a, cougher.scores()), (b, talker.scores())]), None);
    }

    #[test]
    fn missing_frames_are_silence() {
        let t0 = Instant::now();
        let mut v = vec![30u8; 5];
        v.extend([95; 60]);
        let mut s = speaker_with(&v, t0);
        assert!(s.scores()[2] > MIN_SCORE);
        s.catch_up(t0 + Duration::from_secs(3));
        assert_eq!(s.scores(), [MIN_SCORE; 3]);
    }
}
