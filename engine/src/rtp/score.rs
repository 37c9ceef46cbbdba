//! Stream quality scores, 0 (nothing arrives) to 10 (nothing is lost), as mediasoup reports them
//! in `producer.score` and `consumer.score`.
//!
//! Each reporting interval gives one sample from the packets expected and lost in it
//! ([`interval_score`]); the score is a weighted average of the last [`SCORE_HISTORY`] samples in
//! which the newest weighs most, so one bad second lowers the score at once and a good one lifts
//! it back over a few seconds.

/// Samples the score averages.
pub const SCORE_HISTORY: usize = 8;
/// The best score.
pub const MAX_SCORE: u8 = 10;

/// One interval's sample: `expected` packets should have arrived, `lost` of them did not (after
/// retransmissions repaired what they could). The delivered ratio counts to the fourth power, so
/// a few percent of loss already costs points: 1% -> 10, 5% -> 8, 10% -> 7, 20% -> 4, 50% -> 1.
/// Nothing expected scores 10 (there was nothing to lose).
pub fn interval_score(expected: u64, lost: u64) -> u8 {
    if expected == 0 {
        return MAX_SCORE;
    }
    let delivered = (expected - lost.min(expected)) as f64 / expected as f64;
    (delivered.powi(4) * f64::from(MAX_SCORE)).round() as u8
}

/// A weighted average of the last samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Score {
    /// Samples, oldest first; `len` of them are valid.
    samples: [u8; SCORE_HISTORY],
    len: u8,
    current: u8,
}

impl Score {
    /// A score of `value` with no history (the next sample alone decides the next value).
    pub fn new(value: u8) -> Self {
        Score { samples: [0; SCORE_HISTORY], len: 0, current: value.min(MAX_SCORE) }
    }

    #[inline]
    pub fn get(&self) -> u8 {
        self.current
    }

    /// Adds one sample (clamped to 10); true when the score changed.
    pub fn add(&mut self, sample: u8) -> bool {
        let sample = sample.min(MAX_SCORE);
        if usize::from(self.len) == SCORE_HISTORY {
            self.samples.copy_within(1.., 0);
            self.samples[SCORE_HISTORY - 1] = sample;
        } else {
            self.samples[usize::from(self.len)] = sample;
            self.len += 1;
        }
        // Weights 1, 2, ..., len from the oldest to the newest.
        let (mut weighted, mut weights) = (0u32, 0u32);
        for (i, &s) in self.samples[..usize::from(self.len)].iter().enumerate() {
            let w = i as u32 + 1;
            weighted += w * u32::from(s);
            weights += w;
        }
        let value = ((weighted + weights / 2) / weights) as u8;
        std::mem::replace(&mut self.current, value) != value
    }

    /// Forgets the history: `value` is the score and its only sample. True when the score
    /// changed.
    pub fn reset(&mut self, value: u8) -> bool {
        let value = value.min(MAX_SCORE);
        let changed = self.current != value;
        *self = Score::new(value);
        self.samples[0] = value;
        self.len = 1;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_follow_the_delivered_ratio() {
        assert_eq!(interval_score(0, 0), 10);
        assert_eq!(interval_score(100, 0), 10);
        assert_eq!(interval_score(100, 1), 10);
        assert_eq!(interval_score(100, 5), 8);
        assert_eq!(interval_score(100, 10), 7);
        assert_eq!(interval_score(100, 20), 4);
        assert_eq!(interval_score(100, 50), 1);
        assert_eq!(interval_score(100, 100), 0);
        // More lost than expected (duplicates, a report from a confused receiver) is total loss.
        assert_eq!(interval_score(10, 1000), 0);
    }

    #[test]
    fn the_newest_sample_weighs_most() {
        let mut s = Score::new(10);
        assert!(!s.add(10), "a perfect sample keeps a perfect score");
        assert!(s.add(0));
        // (1 * 10 + 2 * 0) / 3 = 3.33
        assert_eq!(s.get(), 3);
        s.add(10);
        // (1 * 10 + 2 * 0 + 3 * 10) / 6 = 6.67
        assert_eq!(s.get(), 7);
    }

    #[test]
    fn old_samples_leave_the_history() {
        let mut s = Score::new(10);
        s.add(0);
        for _ in 0..SCORE_HISTORY {
            s.add(10);
        }
        assert_eq!(s.get(), 10, "the 0 is out of the last {SCORE_HISTORY} samples");
        for _ in 0..SCORE_HISTORY {
            s.add(4);
        }
        assert_eq!(s.get(), 4);
    }

    #[test]
    fn reset_forgets_the_history() {
        let mut s = Score::new(10);
        s.add(2);
        assert!(s.reset(0));
        assert!(!s.reset(0));
        assert!(s.add(9));
        assert_eq!(s.get(), 6, "(1 * 0 + 2 * 9) / 3: the 2 is forgotten");
        assert!(!Score::new(10).reset(10));
        assert_eq!(Score::new(42).get(), 10, "clamped");
    }
}
