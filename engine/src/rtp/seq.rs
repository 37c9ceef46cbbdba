//! Output sequence numbers and timestamps for a consumer: one continuous stream for the receiver
//! across pauses, dropped packets and source switches (mediasoup's `SeqManager` idea, own code).
//!
//! Model: the output of input `x` is `x + base`, where `base` changes at *change points*: a
//! [`SeqManager::sync`] (a new source or a resume: the next packet continues the output) or a
//! [`SeqManager::drop`] (an input the consumer does not forward: later inputs shift down by one so
//! the receiver sees no gap). A short history of change points lets reordered packets, which
//! arrive after a later change, map with the base that was in force for them.

/// Inputs further than this behind the newest input are refused as too old
/// (libwebrtc / mediasoup use a similar misorder bound).
pub const MAX_SEQ_REORDER: u16 = 1500;
/// Change points kept for reordered packets. When more drops than this happen within the
/// reorder window, the oldest is forgotten and inputs older than the oldest kept change point are
/// refused (never mapped to a wrong output).
pub const MAX_SEQ_CHANGES: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Change {
    /// First input this change applies to.
    start: u16,
    /// Inputs `start..start + skip` are dropped (never output).
    skip: u16,
    /// Inputs from `start + skip` on (until the next change) map to `input + base`.
    base: u16,
}

/// Signed distance from `b` to `a` in sequence space (positive: `a` is newer).
#[inline]
fn seq_diff(a: u16, b: u16) -> i16 {
    a.wrapping_sub(b) as i16
}

/// A 16-bit RTP sequence number rewriter.
#[derive(Debug, Clone)]
pub struct SeqManager {
    started: bool,
    max_input: u16,
    max_output: u16,
    /// Ring of change points, oldest first: `changes[(head + i) % MAX_SEQ_CHANGES]`, i < len.
    changes: [Change; MAX_SEQ_CHANGES],
    head: usize,
    len: usize,
    /// The oldest change point is further back than the reorder window: it covers every input
    /// still accepted that no later change covers.
    oldest_covers_window: bool,
}

impl SeqManager {
    /// A manager whose first output will be `first_output` (RFC 3550 wants a random start).
    pub fn new(first_output: u16) -> Self {
        SeqManager {
            started: false,
            max_input: 0,
            max_output: first_output.wrapping_sub(1),
            changes: [Change::default(); MAX_SEQ_CHANGES],
            head: 0,
            len: 0,
            oldest_covers_window: false,
        }
    }

    /// The newest output so far (`first_output - 1` before any).
    pub fn max_output(&self) -> u16 {
        self.max_output
    }

    /// The newest input seen (forwarded or dropped).
    pub fn max_input(&self) -> u16 {
        self.max_input
    }

    fn change(&self, i: usize) -> &Change {
        debug_assert!(i < self.len);
        &self.changes[(self.head + i) % MAX_SEQ_CHANGES]
    }

    fn last_mut(&mut self) -> &mut Change {
        debug_assert!(self.len > 0);
        &mut self.changes[(self.head + self.len - 1) % MAX_SEQ_CHANGES]
    }

    fn push_change(&mut self, c: Change) {
        if self.len == MAX_SEQ_CHANGES {
            self.head = (self.head + 1) % MAX_SEQ_CHANGES;
            self.len -= 1;
            self.oldest_covers_window = false;
        }
        self.changes[(self.head + self.len) % MAX_SEQ_CHANGES] = c;
        self.len += 1;
    }

    /// Starts a new segment: input `first_input` (the next packet to be forwarded, e.g. the key
    /// frame of a new source) maps to `max_output + 1`. Inputs older than it are refused from now
    /// on. Note: mediasoup's `Sync(x)` maps `x + 1` to the next output; here the argument is the
    /// packet itself.
    pub fn sync(&mut self, first_input: u16) {
        self.started = true;
        self.len = 0;
        self.head = 0;
        self.oldest_covers_window = false;
        let base = self.max_output.wrapping_add(1).wrapping_sub(first_input);
        self.push_change(Change { start: first_input, skip: 0, base });
        self.max_input = first_input.wrapping_sub(1);
    }

    /// Drops `input` on purpose (not forwarded), so that the following inputs close the gap.
    /// Dropping an input older than the newest one cannot be hidden any more (its neighbours are
    /// out already); it is then only refused if it comes again, when it still lies in a known
    /// dropped run, and otherwise leaves a gap.
    pub fn drop(&mut self, input: u16) {
        if !self.started {
            return; // nothing out yet: the first forwarded input will get `first_output`
        }
        let d = seq_diff(input, self.max_input);
        if d <= 0 {
            return;
        }
        let last = *self.change(self.len - 1);
        if d == 1 && last.start.wrapping_add(last.skip) == input && self.max_input_is_skipped(&last) {
            // Extends the current dropped run: the same change point, one more skipped, base - 1.
            let last = self.last_mut();
            last.skip += 1;
            last.base = last.base.wrapping_sub(1);
        } else {
            self.push_change(Change { start: input, skip: 1, base: last.base.wrapping_sub(1) });
        }
        self.max_input = input;
        self.prune();
    }

    /// True when no input has been forwarded since `last` began (its dropped run reaches
    /// `max_input`).
    fn max_input_is_skipped(&self, last: &Change) -> bool {
        last.skip > 0 && last.start.wrapping_add(last.skip).wrapping_sub(1) == self.max_input
    }

    /// Maps a forwarded input to its output, or `None` for an input that was dropped, belongs
    /// before the last sync, or is too old.
    pub fn input(&mut self, input: u16) -> Option<u16> {
        if !self.started {
            self.sync(input);
        }
        let d = seq_diff(input, self.max_input);
        if d > 0 {
            let out = input.wrapping_add(self.change(self.len - 1).base);
            debug_assert!(seq_diff(out, self.max_output) > 0, "outputs only move forward");
            self.max_input = input;
            self.max_output = out;
            self.prune();
            return Some(out);
        }
        if d < -(MAX_SEQ_REORDER as i16) {
            return None;
        }
        // A reordered or repeated input: the newest change point at or before it.
        for i in (0..self.len).rev() {
            let c = self.change(i);
            let covers_all = i == 0 && self.oldest_covers_window;
            if covers_all || seq_diff(c.start, self.max_input) <= d {
                if !covers_all && input.wrapping_sub(c.start) < c.skip {
                    return None; // dropped
                }
                return Some(input.wrapping_add(c.base));
            }
        }
        None // before the last sync, or older than the history kept
    }

    /// Forgets change points that only cover inputs too old to be accepted.
    fn prune(&mut self) {
        let limit = -(MAX_SEQ_REORDER as i16);
        while self.len >= 2 && seq_diff(self.change(1).start, self.max_input) < limit {
            self.head = (self.head + 1) % MAX_SEQ_CHANGES;
            self.len -= 1;
            self.oldest_covers_window = false;
        }
        if !self.oldest_covers_window {
            let c = *self.change(0);
            // Its dropped run too must lie wholly outside the window before it can cover all.
            let end = c.start.wrapping_add(c.skip);
            if seq_diff(c.start, self.max_input) < limit && seq_diff(end, self.max_input) < limit {
                self.oldest_covers_window = true;
            }
        }
    }
}

/// A timestamp offset: output = input + offset (mod 2^32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TsOffset {
    offset: u32,
}

impl TsOffset {
    /// Makes `input_ts` come out as `output_ts` (e.g. the last sent timestamp plus the elapsed
    /// time in clock units, when switching source).
    pub fn sync(&mut self, input_ts: u32, output_ts: u32) {
        self.offset = output_ts.wrapping_sub(input_ts);
    }

    pub fn apply(&self, input_ts: u32) -> u32 {
        input_ts.wrapping_add(self.offset)
    }

    pub fn offset(&self) -> u32 {
        self.offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passthrough_with_offset_and_wrap() {
        let mut m = SeqManager::new(100);
        assert_eq!(m.input(65534), Some(100));
        assert_eq!(m.input(65535), Some(101));
        assert_eq!(m.input(0), Some(102));
        assert_eq!(m.input(1), Some(103));
        let mut m = SeqManager::new(65535);
        assert_eq!(m.input(10), Some(65535));
        assert_eq!(m.input(11), Some(0));
    }

    #[test]
    fn reordering_and_duplicates() {
        let mut m = SeqManager::new(0);
        assert_eq!(m.input(10), Some(0));
        assert_eq!(m.input(13), Some(3));
        assert_eq!(m.input(12), Some(2));
        assert_eq!(m.input(11), Some(1));
        assert_eq!(m.input(13), Some(3));
        assert_eq!(m.max_output(), 3);
    }

    #[test]
    fn too_old_refused() {
        let mut m = SeqManager::new(0);
        m.input(0);
        m.input(5000);
        assert_eq!(m.input(5000 - MAX_SEQ_REORDER), Some(5000 - MAX_SEQ_REORDER));
        assert_eq!(m.input(5000 - MAX_SEQ_REORDER - 1), None);
    }

    #[test]
    fn drop_closes_gap() {
        let mut m = SeqManager::new(0);
        assert_eq!(m.input(1), Some(0));
        m.drop(2);
        m.drop(3);
        assert_eq!(m.input(4), Some(1));
        m.drop(5);
        assert_eq!(m.input(6), Some(2));
        // dropped inputs coming again (retransmissions) are refused
        assert_eq!(m.input(2), None);
        assert_eq!(m.input(3), None);
        assert_eq!(m.input(5), None);
        // reordered forwarded inputs keep their output
        assert_eq!(m.input(4), Some(1));
        assert_eq!(m.input(1), Some(0));
    }

    #[test]
    fn drop_after_gap_keeps_reordered_slot() {
        let mut m = SeqManager::new(0);
        assert_eq!(m.input(1), Some(0));
        m.drop(4); // 2 and 3 still missing
        assert_eq!(m.input(5), Some(3));
        assert_eq!(m.input(3), Some(2));
        assert_eq!(m.input(2), Some(1));
        assert_eq!(m.input(4), None);
    }

    #[test]
    fn drop_across_wrap() {
        let mut m = SeqManager::new(500);
        assert_eq!(m.input(65534), Some(500));
        m.drop(65535);
        m.drop(0);
        assert_eq!(m.input(1), Some(501));
        assert_eq!(m.input(0), None);
        assert_eq!(m.input(65535), None);
    }

    #[test]
    fn old_drop_is_ignored() {
        let mut m = SeqManager::new(0);
        m.input(1);
        m.input(3);
        m.drop(2); // too late to hide: 3 is out already
        assert_eq!(m.input(4), Some(3));
    }

    #[test]
    fn sync_switches_source() {
        let mut m = SeqManager::new(0);
        assert_eq!(m.input(100), Some(0));
        assert_eq!(m.input(101), Some(1));
        // switch to a source numbering around 40000
        m.sync(40000);
        assert_eq!(m.input(40000), Some(2));
        assert_eq!(m.input(40001), Some(3));
        assert_eq!(m.input(39999), None, "before the sync point");
        // pause/resume within the same source: a jump without a gap downstream
        m.sync(40100);
        assert_eq!(m.input(40100), Some(4));
    }

    #[test]
    fn sync_then_drop_before_first() {
        let mut m = SeqManager::new(7);
        m.drop(5); // nothing out yet: ignored
        assert_eq!(m.input(6), Some(7));
        m.sync(1000);
        m.drop(1000);
        assert_eq!(m.input(1001), Some(8));
    }

    #[test]
    fn many_drops_bounded_history() {
        // Every other packet dropped (temporal layer filtering) for a long time.
        let mut m = SeqManager::new(0);
        let mut expected = 0u16;
        for i in 0..100_000u32 {
            let seq = i as u16;
            if i % 2 == 1 {
                m.drop(seq);
            } else {
                assert_eq!(m.input(seq), Some(expected));
                expected = expected.wrapping_add(1);
            }
            assert!(m.len <= MAX_SEQ_CHANGES);
        }
        // a reordered, recent forwarded packet still maps right
        let last_even = (99_998u32) as u16;
        assert_eq!(m.input(last_even), Some(expected.wrapping_sub(1)));
        assert_eq!(m.input(last_even.wrapping_sub(2)), Some(expected.wrapping_sub(2)));
        // a packet older than the history kept is refused, not mis-mapped
        assert_eq!(m.input(last_even.wrapping_sub(1000)), None);
    }

    #[test]
    fn long_steady_stream_keeps_reorder() {
        let mut m = SeqManager::new(0);
        for i in 0..200_000u32 {
            assert_eq!(m.input(i as u16), Some(i as u16));
        }
        let newest = 199_999u32 as u16;
        assert_eq!(m.input(newest.wrapping_sub(100)), Some(newest.wrapping_sub(100)));
    }

    #[test]
    fn ts_offset() {
        let mut t = TsOffset::default();
        assert_eq!(t.apply(5), 5);
        t.sync(u32::MAX, 10);
        assert_eq!(t.apply(u32::MAX), 10);
        assert_eq!(t.apply(0), 11);
    }
}
