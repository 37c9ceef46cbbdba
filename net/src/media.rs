//! Media between shards: pooled, fixed-size batch buffers of length-prefixed records, moved
//! through one SPSC media ring per ordered pair of shards and handed back through a return ring.
//!
//! A record is `[len: u16 LE][len bytes]`, the bytes being `head ++ body` as given to
//! `Io::forward_to_shard`. A batch is a `MEDIA_BATCH_BYTES` buffer filled with records back to back
//! plus its used length and record count (kept beside the buffer, moved through the ring with it).

use std::ops::Range;
use std::time::Duration;

use crate::ring::{Consumer, Producer};

/// Size of one batch buffer (records are copied into it back to back).
pub const MEDIA_BATCH_BYTES: usize = 64 * 1024;
/// Most batch buffers one shard allocates for one peer shard; the pool grows lazily up to this.
pub const MAX_MEDIA_BUFFERS_PER_PAIR: usize = 16;
/// Inbound media batches handed to the service per loop turn, over all peer shards.
pub const MAX_MEDIA_BATCHES_PER_TURN: usize = 16;
/// Longest an idle shard sleeps while it holds a partial batch for a target that has not yet
/// taken the previous one (it then looks again; see `MediaOut::push_partial`).
pub const MAX_MEDIA_HOLD: Duration = Duration::from_millis(1);
/// Bytes of the length prefix in front of each record.
pub const MEDIA_RECORD_PREFIX_BYTES: usize = 2;
/// Longest record (`head.len() + body.len()`) `Io::forward_to_shard` accepts.
pub const MAX_MEDIA_RECORD_BYTES: usize = MEDIA_BATCH_BYTES - MEDIA_RECORD_PREFIX_BYTES;
/// Slots of each media ring and each return ring. At least the pool size, so a push into either
/// never fails: every buffer of a pair is in exactly one place (the origin's hands, the media ring,
/// the target's hands, the return ring), and there are at most `MAX_MEDIA_BUFFERS_PER_PAIR`.
pub(crate) const MEDIA_RING_CAPACITY: usize = MAX_MEDIA_BUFFERS_PER_PAIR;

const _: () = assert!(MAX_MEDIA_RECORD_BYTES <= u16::MAX as usize, "the record prefix is a u16");
const _: () = assert!(MEDIA_RING_CAPACITY >= MAX_MEDIA_BUFFERS_PER_PAIR, "pushes must never find a ring full");

/// One pooled buffer and what it holds. Moving it through a ring moves the `Box`, never the bytes.
pub(crate) struct MediaBatch {
    buf: Box<[u8]>,
    /// Bytes of `buf` holding records.
    len: usize,
    records: u32,
}

impl MediaBatch {
    fn new() -> MediaBatch {
        MediaBatch { buf: vec![0u8; MEDIA_BATCH_BYTES].into_boxed_slice(), len: 0, records: 0 }
    }

    fn clear(&mut self) {
        self.len = 0;
        self.records = 0;
    }

    /// The records' bytes, for `decode_record`.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }

    /// Appends one record; `false` (batch unchanged) if it does not fit.
    fn push(&mut self, head: &[u8], body: &[u8]) -> bool {
        match encode_record(&mut self.buf, self.len, head, body) {
            Some(end) => {
                self.len = end;
                self.records += 1;
                true
            }
            None => false,
        }
    }
}

/// Writes `[len][head][body]` at `buf[at..]`; returns the end offset, or `None` if the record is
/// longer than `MAX_MEDIA_RECORD_BYTES` or does not fit in `buf` (nothing is written then).
pub(crate) fn encode_record(buf: &mut [u8], at: usize, head: &[u8], body: &[u8]) -> Option<usize> {
    let len = head.len().checked_add(body.len())?;
    if len > MAX_MEDIA_RECORD_BYTES {
        return None;
    }
    let start = at.checked_add(MEDIA_RECORD_PREFIX_BYTES)?;
    let end = start.checked_add(len)?;
    if end > buf.len() {
        return None;
    }
    buf[at..start].copy_from_slice(&(len as u16).to_le_bytes());
    buf[start..start + head.len()].copy_from_slice(head);
    buf[start + head.len()..end].copy_from_slice(body);
    Some(end)
}

/// The record ends past the bytes the batch holds (a framing bug; the rest of the batch is skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Truncated;

/// The record starting at `buf[at..]`: `Ok(Some((payload range, next offset)))`, `Ok(None)` at the
/// end of `buf`, `Err(Truncated)` if the prefix or payload runs past the end. Never panics.
pub(crate) fn decode_record(buf: &[u8], at: usize) -> Result<Option<(Range<usize>, usize)>, Truncated> {
    if at >= buf.len() {
        return Ok(None);
    }
    let start = at.checked_add(MEDIA_RECORD_PREFIX_BYTES).ok_or(Truncated)?;
    let prefix = buf.get(at..start).ok_or(Truncated)?;
    let len = u16::from_le_bytes([prefix[0], prefix[1]]) as usize;
    let end = start + len;
    if end > buf.len() {
        return Err(Truncated);
    }
    Ok(Some((start..end, end)))
}

/// Per-shard media counters (plain integers: only the shard touches them).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MediaCounters {
    /// Records appended to outbound batches.
    pub tx_records: u64,
    /// Records handed to `on_shard_datagram`.
    pub rx_records: u64,
    /// Records refused by `forward_to_shard` (pool exhausted, ring full, record too long).
    pub tx_dropped: u64,
    /// Inbound batches whose framing was broken (the rest of such a batch is skipped).
    pub rx_malformed: u64,
    /// Batch buffers this shard has allocated, over all peers.
    pub buffers_allocated: u64,
}

/// The origin's side of one ordered pair: the batch being filled, the media ring to the target,
/// and the return ring its processed buffers come back on.
pub(crate) struct MediaOut {
    current: Option<MediaBatch>,
    tx: Producer<MediaBatch>,
    returned: Consumer<MediaBatch>,
    allocated: usize,
    /// Listed in the owning shard's dirty list (pushed at its next flush point).
    pub queued: bool,
}

/// What `MediaOut::push_current` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Nothing to push.
    Empty,
    /// A batch went into the media ring: the target must be woken if parked.
    Batch,
    /// The ring was full; the batch stays current.
    Full,
    /// Not forced and the target has not yet taken our previous batch: the batch stays current
    /// and keeps filling (see `push_partial`).
    Held,
}

impl MediaOut {
    pub(crate) fn new(tx: Producer<MediaBatch>, returned: Consumer<MediaBatch>) -> MediaOut {
        MediaOut { current: None, tx, returned, allocated: 0, queued: false }
    }

    /// Buffers this pair has allocated so far (at most `MAX_MEDIA_BUFFERS_PER_PAIR`).
    pub(crate) fn allocated(&self) -> usize {
        self.allocated
    }

    /// A buffer to fill: the current one, else a returned one, else a new one while the pool may
    /// grow. `None` when the pool is exhausted.
    fn current(&mut self, counters: &mut MediaCounters) -> Option<&mut MediaBatch> {
        if self.current.is_none() {
            let batch = match self.returned.pop() {
                Some(mut b) => {
                    b.clear();
                    b
                }
                None if self.allocated < MAX_MEDIA_BUFFERS_PER_PAIR => {
                    self.allocated += 1;
                    counters.buffers_allocated += 1;
                    MediaBatch::new()
                }
                None => return None,
            };
            self.current = Some(batch);
        }
        self.current.as_mut()
    }

    /// A flush point: moves the current batch, if it holds records, into the media ring, unless
    /// (`force` false) the target has not yet popped the previous batch from this shard. The
    /// target is then busy with our records and will look at the ring again when done, so
    /// holding costs no latency beyond the FIFO wait, and the records coalesce into one batch
    /// instead of taking one pooled buffer per flush point (which a briefly descheduled target
    /// would otherwise turn into pool exhaustion and drops). The held batch goes at the first
    /// flush point after the target caught up, or when full, or (forced) when this shard stops.
    pub(crate) fn push_partial(&mut self, force: bool) -> Pushed {
        if !force && self.current.as_ref().is_some_and(|b| b.records > 0) && !self.tx.is_empty() {
            return Pushed::Held;
        }
        self.push_current()
    }

    /// Moves the current batch, if it holds records, into the media ring.
    fn push_current(&mut self) -> Pushed {
        match self.current.take() {
            Some(batch) if batch.records > 0 => match self.tx.push(batch) {
                Ok(()) => Pushed::Batch,
                Err(batch) => {
                    self.current = Some(batch);
                    Pushed::Full
                }
            },
            other => {
                self.current = other;
                Pushed::Empty
            }
        }
    }

    /// Appends one record, first pushing the current batch if the record does not fit in it.
    /// Returns whether the record was taken, and whether a batch was pushed (wake the target).
    pub(crate) fn append(&mut self, head: &[u8], body: &[u8], counters: &mut MediaCounters) -> (bool, bool) {
        if head.len() + body.len() > MAX_MEDIA_RECORD_BYTES {
            counters.tx_dropped += 1;
            return (false, false);
        }
        let mut pushed = false;
        if let Some(batch) = self.current(counters) {
            if batch.push(head, body) {
                counters.tx_records += 1;
                return (true, false);
            }
            // Full: hand it over now, then start another.
            match self.push_current() {
                Pushed::Batch => pushed = true,
                Pushed::Full | Pushed::Empty | Pushed::Held => {
                    counters.tx_dropped += 1;
                    return (false, false);
                }
            }
        }
        let taken = self.current(counters).is_some_and(|b| b.push(head, body));
        if taken {
            counters.tx_records += 1;
        } else {
            counters.tx_dropped += 1;
        }
        (taken, pushed)
    }
}

/// The target's side of one ordered pair.
pub(crate) struct MediaIn {
    pub from: usize,
    rx: Consumer<MediaBatch>,
    ret: Producer<MediaBatch>,
}

impl MediaIn {
    pub(crate) fn new(from: usize, rx: Consumer<MediaBatch>, ret: Producer<MediaBatch>) -> MediaIn {
        MediaIn { from, rx, ret }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    pub(crate) fn pop(&mut self) -> Option<MediaBatch> {
        self.rx.pop()
    }

    /// Hands a processed buffer back to its origin (never fails: see `MEDIA_RING_CAPACITY`).
    pub(crate) fn give_back(&mut self, batch: MediaBatch) {
        let returned = self.ret.push(batch);
        debug_assert!(returned.is_ok(), "return ring full: more buffers than MAX_MEDIA_BUFFERS_PER_PAIR");
    }
}

/// Builds both rings of the ordered pair `from -> to`.
pub(crate) fn pair(from: usize) -> (MediaOut, MediaIn) {
    let (tx, rx) = crate::ring::channel::<MediaBatch>(MEDIA_RING_CAPACITY);
    let (ret, returned) = crate::ring::channel::<MediaBatch>(MEDIA_RING_CAPACITY);
    (MediaOut::new(tx, returned), MediaIn::new(from, rx, ret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_in_order() {
        let mut buf = vec![0u8; 256];
        let mut at = 0;
        let records: [(&[u8], &[u8]); 4] = [(b"h1", b"body one"), (b"", b"no head"), (b"head only", b""), (b"", b"")];
        for (head, body) in records {
            at = encode_record(&mut buf, at, head, body).unwrap();
        }
        let used = &buf[..at];
        let mut off = 0;
        for (head, body) in records {
            let (range, next) = decode_record(used, off).unwrap().unwrap();
            assert_eq!(&used[range.start..range.start + head.len()], head);
            assert_eq!(&used[range.start + head.len()..range.end], body);
            off = next;
        }
        assert_eq!(decode_record(used, off), Ok(None));
    }

    #[test]
    fn a_record_that_does_not_fit_writes_nothing() {
        let mut buf = vec![0xeeu8; 10];
        assert_eq!(encode_record(&mut buf, 0, b"abcd", b"efgh"), Some(10));
        let mut buf = vec![0xeeu8; 10];
        assert_eq!(encode_record(&mut buf, 0, b"abcd", b"efghi"), None);
        assert_eq!(encode_record(&mut buf, 9, b"", b""), None);
        assert!(buf.iter().all(|&b| b == 0xee));
        let big = vec![0u8; MAX_MEDIA_RECORD_BYTES + 1];
        let mut batch = vec![0u8; 2 * MEDIA_BATCH_BYTES];
        assert_eq!(encode_record(&mut batch, 0, &[], &big), None);
        assert_eq!(encode_record(&mut batch, 0, &[1], &big[1..]), None);
        assert_eq!(encode_record(&mut batch, 0, &[], &big[1..]), Some(MEDIA_BATCH_BYTES));
    }

    #[test]
    fn truncated_records_are_detected_never_delivered() {
        let mut buf = vec![0u8; 64];
        let end = encode_record(&mut buf, 0, b"head", b"payload").unwrap();
        let end = encode_record(&mut buf, end, b"", b"second").unwrap();
        // Every cut inside the second record: the first still decodes, the second is `Truncated`.
        let first_end = MEDIA_RECORD_PREFIX_BYTES + 11;
        for cut in first_end + 1..end {
            let used = &buf[..cut];
            let (_, next) = decode_record(used, 0).unwrap().unwrap();
            assert_eq!(next, first_end);
            assert_eq!(decode_record(used, next), Err(Truncated), "cut at {cut}");
        }
        // Cuts inside the first record.
        for cut in 1..first_end {
            assert_eq!(decode_record(&buf[..cut], 0), Err(Truncated), "cut at {cut}");
        }
        // A prefix claiming more than there is, and offsets past the end.
        let lying = [0xff, 0xff, 1, 2, 3];
        assert_eq!(decode_record(&lying, 0), Err(Truncated));
        assert_eq!(decode_record(&lying, 5), Ok(None));
        assert_eq!(decode_record(&lying, usize::MAX), Ok(None));
        assert_eq!(decode_record(&[], 0), Ok(None));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_in_bounds() {
        // A cheap deterministic fuzz of the decoder over garbage batches.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut buf = [0u8; 300];
        for round in 0..2000 {
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = (x & if round % 2 == 0 { 0x07 } else { 0xff }) as u8;
            }
            let len = (x as usize) % buf.len();
            let used = &buf[..len];
            let mut off = 0;
            while let Ok(Some((range, next))) = decode_record(used, off) {
                assert!(range.end <= used.len() && next > off);
                off = next;
            }
        }
    }

    #[test]
    fn the_pool_grows_to_its_bound_then_recycles() {
        let (mut out, mut inn) = pair(0);
        let mut c = MediaCounters::default();
        let body = vec![7u8; 1000];
        let per_batch = MEDIA_BATCH_BYTES / (MEDIA_RECORD_PREFIX_BYTES + body.len());
        let mut taken = 0;
        for _ in 0..(MAX_MEDIA_BUFFERS_PER_PAIR + 2) * per_batch {
            taken += out.append(&[], &body, &mut c).0 as usize;
        }
        assert_eq!(taken, MAX_MEDIA_BUFFERS_PER_PAIR * per_batch);
        assert_eq!(out.allocated(), MAX_MEDIA_BUFFERS_PER_PAIR);
        assert_eq!(c.tx_dropped as usize, 2 * per_batch);
        // Every batch, the last included, went out full when the next record did not fit.
        assert_eq!(out.push_partial(true), Pushed::Empty);
        let mut delivered = 0;
        while let Some(mut batch) = inn.pop() {
            let bytes = batch.bytes_mut();
            let mut off = 0;
            while let Ok(Some((range, next))) = decode_record(bytes, off) {
                assert_eq!(&bytes[range], &body[..]);
                delivered += 1;
                off = next;
            }
            inn.give_back(batch);
        }
        assert_eq!(delivered, taken);
        // Everything came back: the next round reuses the same buffers.
        for _ in 0..per_batch * 4 {
            assert!(out.append(b"h", &body[1..], &mut c).0);
        }
        assert_eq!(out.allocated(), MAX_MEDIA_BUFFERS_PER_PAIR);
        assert_eq!(c.buffers_allocated as usize, MAX_MEDIA_BUFFERS_PER_PAIR);
    }

    #[test]
    fn a_partial_batch_is_held_while_the_target_has_not_taken_the_previous_one() {
        let (mut out, mut inn) = pair(0);
        let mut c = MediaCounters::default();
        assert_eq!(out.push_partial(false), Pushed::Empty);
        assert!(out.append(b"", b"one", &mut c).0);
        assert_eq!(out.push_partial(false), Pushed::Batch);
        assert!(out.append(b"", b"two", &mut c).0);
        assert_eq!(out.push_partial(false), Pushed::Held, "the target has not popped `one`");
        assert!(out.append(b"", b"three", &mut c).0);
        let first = inn.pop().unwrap();
        assert_eq!(first.records, 1);
        assert_eq!(out.push_partial(false), Pushed::Batch, "the target caught up");
        let mut second = inn.pop().unwrap();
        assert_eq!(second.records, 2);
        assert_eq!(decode_record(second.bytes_mut(), 0).unwrap().unwrap().0.len(), 3);
        assert!(out.append(b"", b"four", &mut c).0);
        assert!(out.append(b"", b"five", &mut c).0);
        assert_eq!(out.push_partial(false), Pushed::Batch);
        assert!(out.append(b"", b"six", &mut c).0);
        assert_eq!(out.push_partial(true), Pushed::Batch, "forced before parking");
        inn.give_back(first);
        inn.give_back(second);
        assert_eq!(out.allocated(), 4, "one, two+three, four+five, six: none given back yet");
    }
}
