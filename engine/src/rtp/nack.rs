//! Receive-side loss tracking: which sequence numbers of a producer stream to NACK, when, and
//! when to give up and ask for a key frame (mediasoup's `NackGenerator` idea, own code).
//!
//! Sans-IO: [`NackGenerator::on_packet`] for every received packet, [`NackGenerator::poll_nacks`]
//! when [`NackGenerator::poll_timeout`] is due, [`NackGenerator::take_key_frame_request`] after.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Most missing packets tracked at once.
pub const MAX_NACK_PACKETS: usize = 1000;
/// Times one sequence number is NACKed before it is given up.
pub const MAX_NACK_RETRIES: u8 = 10;
/// Round-trip time assumed before one is measured.
pub const DEFAULT_RTT: Duration = Duration::from_millis(100);
/// Floor on the spacing between two NACKs of one packet.
pub const MIN_NACK_SPACING: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy)]
struct Missing {
    ext_seq: i64,
    added_at: Instant,
    sent_at: Option<Instant>,
    retries: u8,
}

/// NACK scheduling for one received stream.
#[derive(Debug)]
pub struct NackGenerator {
    /// Missing packets in ascending extended sequence order; bounded by `MAX_NACK_PACKETS`.
    missing: VecDeque<Missing>,
    started: bool,
    last_ext_seq: i64,
    last_key_frame_ext_seq: Option<i64>,
    key_frame_requested: bool,
    /// Spacing used by the last poll, for `poll_timeout`.
    spacing: Duration,
}

impl Default for NackGenerator {
    fn default() -> Self {
        Self::new()
    }
}

impl NackGenerator {
    pub fn new() -> Self {
        NackGenerator {
            missing: VecDeque::with_capacity(MAX_NACK_PACKETS),
            started: false,
            last_ext_seq: 0,
            last_key_frame_ext_seq: None,
            key_frame_requested: false,
            spacing: DEFAULT_RTT,
        }
    }

    /// Number of sequence numbers being tracked as missing.
    pub fn missing_len(&self) -> usize {
        self.missing.len()
    }

    /// Forgets all losses (e.g. after a key frame request has been answered).
    pub fn reset(&mut self) {
        self.missing.clear();
        self.started = false;
        self.last_key_frame_ext_seq = None;
    }

    fn remove_before(&mut self, ext_seq: i64) {
        while self.missing.front().is_some_and(|m| m.ext_seq < ext_seq) {
            self.missing.pop_front();
        }
    }

    /// Takes a received packet (also a recovered one: retransmitted, RTX-unwrapped or FEC).
    /// Returns true when it fills a gap that was being NACKed.
    pub fn on_packet(&mut self, now: Instant, seq: u16, is_key_frame: bool) -> bool {
        if !self.started {
            self.started = true;
            self.last_ext_seq = (1 << 32) + seq as i64; // room below for reordering
            if is_key_frame {
                self.last_key_frame_ext_seq = Some(self.last_ext_seq);
            }
            return false;
        }
        let last_seq = self.last_ext_seq as u16;
        let delta = seq.wrapping_sub(last_seq) as i16 as i64;
        let ext_seq = self.last_ext_seq + delta;
        if is_key_frame && self.last_key_frame_ext_seq.is_none_or(|k| k < ext_seq) {
            self.last_key_frame_ext_seq = Some(ext_seq);
        }
        if delta <= 0 {
            // Old, duplicate or recovered.
            return match self.missing.binary_search_by_key(&ext_seq, |m| m.ext_seq) {
                Ok(i) => {
                    self.missing.remove(i);
                    true
                }
                Err(_) => false,
            };
        }
        self.last_ext_seq = ext_seq;
        let gap = (delta - 1) as usize;
        if gap == 0 {
            return false;
        }
        if gap > MAX_NACK_PACKETS {
            // Too much lost to repair: start over from a key frame.
            self.missing.clear();
            self.key_frame_requested = true;
            return false;
        }
        // Make room before adding, so the list never grows past its bound (and never reallocates).
        if self.missing.len() + gap > MAX_NACK_PACKETS {
            // Losses before the newest key frame do not matter any more; if that is not enough,
            // give up on all of them and ask for a key frame.
            if let Some(k) = self.last_key_frame_ext_seq {
                self.remove_before(k);
                if k >= ext_seq {
                    return false; // this packet is the key frame: the new gap is moot too
                }
            }
            if self.missing.len() + gap > MAX_NACK_PACKETS {
                self.missing.clear();
                self.key_frame_requested = true;
                return false;
            }
        }
        for s in ext_seq - gap as i64..ext_seq {
            self.missing.push_back(Missing { ext_seq: s, added_at: now, sent_at: None, retries: 0 });
        }
        debug_assert!(self.missing.len() <= MAX_NACK_PACKETS);
        false
    }

    fn spacing_for(rtt: Duration) -> Duration {
        rtt.max(MIN_NACK_SPACING)
    }

    /// Writes into `out` the sequence numbers to NACK now (never NACKed, or last NACKed at least
    /// one RTT ago) and returns how many. Each is NACKed at most `MAX_NACK_RETRIES` times, then
    /// dropped. Pass [`DEFAULT_RTT`] while no RTT is known. Bounded by `out.len()` and
    /// `MAX_NACK_PACKETS`.
    pub fn poll_nacks(&mut self, now: Instant, rtt: Duration, out: &mut [u16]) -> usize {
        let spacing = Self::spacing_for(rtt);
        self.spacing = spacing;
        let mut n = 0;
        let mut i = 0;
        while i < self.missing.len() && n < out.len() {
            let m = &mut self.missing[i];
            let due = m.sent_at.is_none_or(|t| now.saturating_duration_since(t) >= spacing);
            if !due {
                i += 1;
                continue;
            }
            out[n] = m.ext_seq as u16;
            n += 1;
            m.sent_at = Some(now);
            m.retries += 1;
            if m.retries >= MAX_NACK_RETRIES {
                self.missing.remove(i);
            } else {
                i += 1;
            }
        }
        n
    }

    /// When `poll_nacks` has something to send next (in the past: now).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.missing.iter().map(|m| m.sent_at.map_or(m.added_at, |t| t + self.spacing)).min()
    }

    /// True once after losses were too many to repair: the stream needs a key frame.
    pub fn take_key_frame_request(&mut self) -> bool {
        std::mem::take(&mut self.key_frame_requested)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn poll(g: &mut NackGenerator, now: Instant) -> Vec<u16> {
        let mut out = [0u16; 64];
        let n = g.poll_nacks(now, DEFAULT_RTT, &mut out);
        out[..n].to_vec()
    }

    #[test]
    fn gap_nacked_then_recovered() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new();
        g.on_packet(t0, 10, true);
        g.on_packet(t0, 11, false);
        assert_eq!(g.poll_timeout(), None);
        g.on_packet(t0, 14, false);
        assert_eq!(g.poll_timeout(), Some(t0));
        assert_eq!(poll(&mut g, t0), vec![12, 13]);
        assert_eq!(poll(&mut g, at(t0, 50)), Vec::<u16>::new());
        assert_eq!(g.poll_timeout(), Some(at(t0, 100)));
        assert!(g.on_packet(at(t0, 60), 12, false));
        assert!(!g.on_packet(at(t0, 60), 12, false));
        assert_eq!(poll(&mut g, at(t0, 100)), vec![13]);
    }

    #[test]
    fn wrap_around() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new();
        g.on_packet(t0, 65534, false);
        g.on_packet(t0, 1, false);
        assert_eq!(poll(&mut g, t0), vec![65535, 0]);
        assert!(g.on_packet(t0, 0, false));
        assert_eq!(g.missing_len(), 1);
    }

    #[test]
    fn retries_bounded() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new();
        g.on_packet(t0, 1, false);
        g.on_packet(t0, 3, false);
        let mut sent = 0;
        for k in 0..50 {
            sent += poll(&mut g, at(t0, k * 100)).len();
        }
        assert_eq!(sent, MAX_NACK_RETRIES as usize);
        assert_eq!(g.missing_len(), 0);
        assert_eq!(g.poll_timeout(), None);
    }

    #[test]
    fn rtt_spacing() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new();
        g.on_packet(t0, 1, false);
        g.on_packet(t0, 3, false);
        let mut out = [0u16; 4];
        assert_eq!(g.poll_nacks(t0, Duration::from_millis(300), &mut out), 1);
        assert_eq!(g.poll_nacks(at(t0, 299), Duration::from_millis(300), &mut out), 0);
        assert_eq!(g.poll_nacks(at(t0, 300), Duration::from_millis(300), &mut out), 1);
    }

    #[test]
    fn out_buffer_bounds_batch() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new();
        g.on_packet(t0, 0, false);
        g.on_packet(t0, 11, false);
        let mut out = [0u16; 4];
        assert_eq!(g.poll_nacks(t0, DEFAULT_RTT, &mut out), 4);
        assert_eq!(out, [1, 2, 3, 4]);
        assert_eq!(g.poll_nacks(t0, DEFAULT_RTT, &mut out), 4);
        assert_eq!(out, [5, 6, 7, 8]);
    }

    #[test]
    fn huge_jump_requests_key_frame() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new();
        g.on_packet(t0, 0, false);
        g.on_packet(t0, 5, false);
        g.on_packet(t0, 5 + MAX_NACK_PACKETS as u16 + 2, false);
        assert_eq!(g.missing_len(), 0);
        assert!(g.take_key_frame_request());
        assert!(!g.take_key_frame_request());
    }

    #[test]
    fn overflow_trims_to_key_frame() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new();
        g.on_packet(t0, 0, false);
        g.on_packet(t0, 600, false); // 599 missing
        g.on_packet(t0, 601, true); // key frame
        g.on_packet(t0, 1200, false); // 598 more: over the bound
        assert_eq!(g.missing_len(), 598, "losses before the key frame dropped");
        assert!(!g.take_key_frame_request());
        g.on_packet(t0, 1700, false); // 499 more: over again, no newer key frame
        assert_eq!(g.missing_len(), 0);
        assert!(g.take_key_frame_request());
    }

    #[test]
    fn overflow_at_key_frame_drops_everything_older() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new();
        g.on_packet(t0, 0, false);
        g.on_packet(t0, 900, false); // 899 missing
        g.on_packet(t0, 1200, true); // key frame after 299 more: over the bound
        assert_eq!(g.missing_len(), 0);
        assert!(!g.take_key_frame_request(), "the key frame is here already");
        g.on_packet(t0, 1203, false);
        assert_eq!(g.missing_len(), 2);
    }

    #[test]
    fn old_packets_ignored() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new();
        g.on_packet(t0, 100, false);
        assert!(!g.on_packet(t0, 50, false));
        assert!(!g.on_packet(t0, 101, false));
        assert_eq!(g.missing_len(), 0);
    }
}
