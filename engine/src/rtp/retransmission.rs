//! A producer stream's recent packets, kept for answering NACKs: a bounded window of slots keyed
//! by sequence number, all allocated at construction. Inserting copies the packet into its slot;
//! nothing is allocated afterwards.

use std::time::{Duration, Instant};

use super::packet::{parse_rtp, RtpHeader};

/// Most slots a buffer may have (a window of this many sequence numbers).
pub const MAX_SLOTS: usize = 600;
/// Largest packet a slot holds.
pub const MAX_PACKET_LEN: usize = 1500;
/// How long video packets are worth retransmitting.
pub const DEFAULT_MAX_AGE_VIDEO: Duration = Duration::from_secs(2);

/// A stored packet: its bytes, its parsed header and when it was stored.
#[derive(Clone)]
pub struct StoredPacket {
    data: [u8; MAX_PACKET_LEN],
    len: u16,
    header: RtpHeader,
    stored_at: Instant,
}

impl StoredPacket {
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }
    pub fn header(&self) -> &RtpHeader {
        &self.header
    }
    pub fn stored_at(&self) -> Instant {
        self.stored_at
    }
}

impl std::fmt::Debug for StoredPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPacket")
            .field("seq", &self.header.sequence_number)
            .field("len", &self.len)
            .field("stored_at", &self.stored_at)
            .finish()
    }
}

/// What [`RetransmissionBuffer::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    Stored,
    /// Older than the window (or than the max age).
    TooOld,
    /// The sequence number is stored already.
    Duplicate,
    /// Longer than [`MAX_PACKET_LEN`].
    TooLarge,
    /// Not an RTP packet.
    Malformed,
}

struct Slot {
    /// `None`: empty.
    seq: Option<u16>,
    packet: StoredPacket,
}

/// Ring of packet slots for one stream.
pub struct RetransmissionBuffer {
    slots: Box<[Slot]>,
    max_age: Duration,
    /// Sequence number of the window's first position, at `slots[head]`.
    start_seq: u16,
    head: usize,
    /// Positions in the window (`<= slots.len()`); 0 when empty.
    span: usize,
}

impl std::fmt::Debug for RetransmissionBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetransmissionBuffer")
            .field("slots", &self.slots.len())
            .field("start_seq", &self.start_seq)
            .field("span", &self.span)
            .finish()
    }
}

impl RetransmissionBuffer {
    /// A buffer of `slots` positions (`1..=MAX_SLOTS`). `now` only seeds empty slots.
    pub fn new(now: Instant, slots: usize, max_age: Duration) -> Self {
        assert!((1..=MAX_SLOTS).contains(&slots), "slots {slots} not in 1..={MAX_SLOTS}");
        let empty = || Slot {
            seq: None,
            packet: StoredPacket { data: [0; MAX_PACKET_LEN], len: 0, header: EMPTY_HEADER, stored_at: now },
        };
        RetransmissionBuffer { slots: (0..slots).map(|_| empty()).collect(), max_age, start_seq: 0, head: 0, span: 0 }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Number of stored packets.
    pub fn len(&self) -> usize {
        (0..self.span).filter(|&i| self.slot(i).seq.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.span == 0
    }

    #[inline]
    fn index(&self, offset: usize) -> usize {
        debug_assert!(offset < self.slots.len());
        (self.head + offset) % self.slots.len()
    }

    fn slot(&self, offset: usize) -> &Slot {
        &self.slots[self.index(offset)]
    }

    fn pop_front(&mut self) {
        debug_assert!(self.span > 0);
        let i = self.head;
        self.slots[i].seq = None;
        self.head = (self.head + 1) % self.slots.len();
        self.start_seq = self.start_seq.wrapping_add(1);
        self.span -= 1;
    }

    pub fn clear(&mut self) {
        while self.span > 0 {
            self.pop_front();
        }
    }

    /// Drops packets older than the max age from the front of the window.
    pub fn expire(&mut self, now: Instant) {
        while self.span > 0 {
            let s = self.slot(0);
            let stale = match s.seq {
                None => true,
                Some(_) => now.saturating_duration_since(s.packet.stored_at) > self.max_age,
            };
            if !stale {
                break;
            }
            self.pop_front();
        }
    }

    /// Copies `packet` into the slot for its sequence number.
    pub fn insert(&mut self, now: Instant, packet: &[u8]) -> InsertOutcome {
        if packet.len() > MAX_PACKET_LEN {
            return InsertOutcome::TooLarge;
        }
        let Ok(header) = parse_rtp(packet) else {
            return InsertOutcome::Malformed;
        };
        self.expire(now);
        let seq = header.sequence_number;
        let cap = self.slots.len();
        let offset = if self.span == 0 {
            self.start_seq = seq;
            self.span = 1;
            0
        } else {
            let newest = self.start_seq.wrapping_add(self.span as u16 - 1);
            let ahead = seq.wrapping_sub(newest) as i16;
            if ahead > 0 {
                let ahead = ahead as usize;
                if ahead >= cap {
                    // A jump past the whole window: start over.
                    self.clear();
                    self.start_seq = seq;
                    self.span = 1;
                    0
                } else {
                    // Open positions up to `seq` (they stay empty: missing packets), evicting
                    // the oldest ones to make room.
                    while self.span + ahead > cap {
                        self.pop_front();
                    }
                    for k in 0..ahead {
                        let i = self.index(self.span + k);
                        self.slots[i].seq = None;
                    }
                    self.span += ahead;
                    self.span - 1
                }
            } else {
                let offset = seq.wrapping_sub(self.start_seq) as usize;
                if offset >= self.span {
                    return InsertOutcome::TooOld;
                }
                offset
            }
        };
        let i = self.index(offset);
        let slot = &mut self.slots[i];
        if slot.seq == Some(seq) {
            return InsertOutcome::Duplicate;
        }
        slot.seq = Some(seq);
        slot.packet.data[..packet.len()].copy_from_slice(packet);
        slot.packet.len = packet.len() as u16;
        slot.packet.header = header;
        slot.packet.stored_at = now;
        debug_assert_eq!(self.slot(offset).seq, Some(seq));
        InsertOutcome::Stored
    }

    /// The packet with sequence number `seq`, if stored and not older than the max age.
    pub fn get(&self, now: Instant, seq: u16) -> Option<&StoredPacket> {
        if self.span == 0 {
            return None;
        }
        let offset = seq.wrapping_sub(self.start_seq) as usize;
        if offset >= self.span {
            return None;
        }
        let s = self.slot(offset);
        if s.seq != Some(seq) || now.saturating_duration_since(s.packet.stored_at) > self.max_age {
            return None;
        }
        Some(&s.packet)
    }
}

const EMPTY_HEADER: RtpHeader = RtpHeader {
    padding: false,
    padding_len: 0,
    extension: false,
    csrc_count: 0,
    marker: false,
    payload_type: 0,
    sequence_number: 0,
    timestamp: 0,
    ssrc: 0,
    ext_profile: 0,
    ext_offset: 0,
    ext_len: 0,
    header_len: 0,
    payload_len: 0,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u16, fill: u8) -> Vec<u8> {
        let mut v = vec![0x80, 96];
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
        v.extend_from_slice(&[fill; 20]);
        v
    }

    fn ms(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn insert_get() {
        let t0 = Instant::now();
        let mut b = RetransmissionBuffer::new(t0, 10, DEFAULT_MAX_AGE_VIDEO);
        assert!(b.is_empty());
        assert_eq!(b.insert(t0, &pkt(100, 1)), InsertOutcome::Stored);
        assert_eq!(b.insert(t0, &pkt(102, 2)), InsertOutcome::Stored);
        assert_eq!(b.insert(t0, &pkt(102, 2)), InsertOutcome::Duplicate);
        assert_eq!(b.get(t0, 101).map(|p| p.header().sequence_number), None);
        assert_eq!(b.insert(t0, &pkt(101, 3)), InsertOutcome::Stored);
        let p = b.get(t0, 101).unwrap();
        assert_eq!(p.bytes(), &pkt(101, 3)[..]);
        assert_eq!(p.header().sequence_number, 101);
        assert_eq!(b.len(), 3);
        assert_eq!(b.insert(t0, &pkt(99, 0)), InsertOutcome::TooOld);
        assert_eq!(b.insert(t0, &[0u8; 3]), InsertOutcome::Malformed);
        assert_eq!(b.insert(t0, &[0x80; MAX_PACKET_LEN + 1]), InsertOutcome::TooLarge);
    }

    #[test]
    fn window_slides_and_wraps() {
        let t0 = Instant::now();
        let mut b = RetransmissionBuffer::new(t0, 8, DEFAULT_MAX_AGE_VIDEO);
        for s in 65530u16..=65535 {
            b.insert(t0, &pkt(s, s as u8));
        }
        for s in 0u16..6 {
            b.insert(t0, &pkt(s, s as u8));
        }
        assert_eq!(b.len(), 8);
        assert!(b.get(t0, 65533).is_none());
        assert!(b.get(t0, 65534).is_some());
        assert!(b.get(t0, 5).is_some());
        assert_eq!(b.insert(t0, &pkt(65533, 0)), InsertOutcome::TooOld);
        // a jump larger than the window restarts it
        assert_eq!(b.insert(t0, &pkt(1000, 0)), InsertOutcome::Stored);
        assert_eq!(b.len(), 1);
        assert!(b.get(t0, 5).is_none());
    }

    #[test]
    fn max_age() {
        let t0 = Instant::now();
        let mut b = RetransmissionBuffer::new(t0, 100, Duration::from_millis(500));
        b.insert(t0, &pkt(1, 0));
        b.insert(ms(t0, 400), &pkt(2, 0));
        assert!(b.get(ms(t0, 501), 1).is_none());
        assert!(b.get(ms(t0, 501), 2).is_some());
        b.insert(ms(t0, 600), &pkt(3, 0));
        assert_eq!(b.len(), 2, "the stale front was evicted");
        assert_eq!(b.insert(ms(t0, 600), &pkt(1, 0)), InsertOutcome::TooOld);
    }

    #[test]
    fn full_size_ring() {
        let t0 = Instant::now();
        let mut b = RetransmissionBuffer::new(t0, MAX_SLOTS, DEFAULT_MAX_AGE_VIDEO);
        for i in 0..5000u32 {
            let s = (i * 3) as u16; // gaps
            assert_eq!(b.insert(t0, &pkt(s, 0)), InsertOutcome::Stored);
            assert!(b.span <= MAX_SLOTS);
        }
        assert_eq!(b.len(), MAX_SLOTS / 3);
    }
}
