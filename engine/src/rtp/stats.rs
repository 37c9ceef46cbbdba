//! RTCP statistics (RFC 3550 appendix A): what a receiver reports about a stream it receives
//! ([`ReceiveStats`]) and what a sender reports about a stream it sends ([`SendStats`]).

use std::time::{Duration, Instant};

use super::rtcp::{ReportBlock, SenderInfo};

/// A jump ahead of at most this many sequence numbers counts as loss (RFC 3550 A.1).
pub const MAX_DROPOUT: u16 = 3000;
/// A sequence number at most this far behind counts as reordered, not as a restart.
pub const MAX_MISORDER: u16 = 100;
const RTP_SEQ_MOD: u32 = 1 << 16;
/// Cumulative loss is a 24-bit signed field.
const CUMULATIVE_LOST_MAX: i64 = 0x7F_FFFF;
const CUMULATIVE_LOST_MIN: i64 = -0x80_0000;

/// A 64-bit NTP timestamp (seconds since 1900 and a 32-bit fraction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NtpTime {
    pub sec: u32,
    pub frac: u32,
}

/// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01 (Unix epoch).
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

impl NtpTime {
    /// From the time since the Unix epoch (what the I/O layer reads from the wall clock).
    pub fn from_unix(since_epoch: Duration) -> Self {
        let sec = (since_epoch.as_secs() + NTP_UNIX_OFFSET_SECS) as u32;
        let frac = ((since_epoch.subsec_nanos() as u64) << 32) / 1_000_000_000;
        NtpTime { sec, frac: frac as u32 }
    }

    /// The middle 32 bits (the "compact" NTP format of LSR / DLSR, 1/65536 s units).
    pub fn mid32(&self) -> u32 {
        (self.sec << 16) | (self.frac >> 16)
    }
}

/// A duration in 1/65536 s units, saturating at `u32::MAX`.
fn to_q16(d: Duration) -> u32 {
    let units = (d.as_nanos() << 16) / 1_000_000_000;
    units.min(u32::MAX as u128) as u32
}

/// 1/65536 s units to a duration.
fn from_q16(units: u32) -> Duration {
    Duration::from_nanos(((units as u64) * 1_000_000_000) >> 16)
}

/// `d` in RTP clock units (mod 2^32).
fn to_rtp_units(d: Duration, clock_rate: u32) -> u32 {
    ((d.as_nanos() * clock_rate as u128) / 1_000_000_000) as u32
}

/// Reception statistics of one received stream.
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    clock_rate: u32,
    started: bool,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    octets: u64,
    /// Arrival times are measured from here, in RTP clock units.
    epoch: Option<Instant>,
    last_transit: Option<u32>,
    /// Interarrival jitter times 16 (RFC 3550 A.8 integer form).
    jitter_q4: u32,
    /// Middle 32 bits of the last SR's NTP time, and when it arrived.
    last_sr: Option<(u32, Instant)>,
}

impl ReceiveStats {
    pub fn new(clock_rate: u32) -> Self {
        assert!(clock_rate > 0, "clock rate must be positive");
        ReceiveStats {
            clock_rate,
            started: false,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            octets: 0,
            epoch: None,
            last_transit: None,
            jitter_q4: 0,
            last_sr: None,
        }
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = seq as u32;
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// Takes a received packet. Returns false when it was not counted (a large jump that may be
    /// a restart of the stream: a second packet continuing it re-synchronizes).
    pub fn on_packet(&mut self, now: Instant, seq: u16, rtp_ts: u32, payload_len: usize) -> bool {
        if !self.started {
            self.started = true;
            self.init_seq(seq);
        } else {
            let udelta = seq.wrapping_sub(self.max_seq);
            if udelta < MAX_DROPOUT {
                if seq < self.max_seq {
                    self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
                }
                self.max_seq = seq;
            } else if udelta as u32 <= RTP_SEQ_MOD - MAX_MISORDER as u32 {
                if seq as u32 == self.bad_seq {
                    // Two sequential packets after a jump: the source restarted.
                    self.init_seq(seq);
                    self.last_transit = None;
                } else {
                    self.bad_seq = (seq as u32 + 1) & (RTP_SEQ_MOD - 1);
                    return false;
                }
            }
            // else: duplicate or reordered, counted below
        }
        self.received += 1;
        self.octets += payload_len as u64;

        let epoch = *self.epoch.get_or_insert(now);
        let arrival = to_rtp_units(now.saturating_duration_since(epoch), self.clock_rate);
        let transit = arrival.wrapping_sub(rtp_ts);
        if let Some(last) = self.last_transit {
            let d = (transit.wrapping_sub(last) as i32).unsigned_abs();
            // J += (|D| - J) / 16, kept as 16 * J.
            self.jitter_q4 = self.jitter_q4.wrapping_add(d).wrapping_sub((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);
        true
    }

    /// Records a received sender report (its NTP time) for LSR / DLSR.
    pub fn on_sender_report(&mut self, now: Instant, ntp: NtpTime) {
        self.last_sr = Some((ntp.mid32(), now));
    }

    pub fn packets_received(&self) -> u64 {
        self.received
    }

    pub fn octets_received(&self) -> u64 {
        self.octets
    }

    /// Extended highest sequence number received (cycles and sequence number).
    pub fn ext_highest_seq(&self) -> u32 {
        self.cycles | self.max_seq as u32
    }

    /// Packets expected from the first one to the highest one.
    pub fn expected(&self) -> u64 {
        if !self.started {
            return 0;
        }
        (self.ext_highest_seq() as u64 + 1).saturating_sub(self.base_seq as u64)
    }

    /// Cumulative loss, negative with duplicates.
    pub fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Interarrival jitter in RTP clock units.
    pub fn jitter(&self) -> u32 {
        self.jitter_q4 >> 4
    }

    /// A report block for this stream; starts a new interval for the fraction lost.
    pub fn report_block(&mut self, now: Instant, ssrc: u32) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((mid, at)) => (mid, to_q16(now.saturating_duration_since(at))),
            None => (0, 0),
        };
        ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: self.lost().clamp(CUMULATIVE_LOST_MIN, CUMULATIVE_LOST_MAX) as i32,
            ext_highest_seq: self.ext_highest_seq(),
            jitter: self.jitter(),
            last_sr,
            delay_since_last_sr,
        }
    }
}

/// Statistics of one sent stream, for sender reports and RTT.
#[derive(Debug, Clone)]
pub struct SendStats {
    clock_rate: u32,
    packets: u64,
    octets: u64,
    last_rtp_ts: u32,
    last_sent_at: Option<Instant>,
}

impl SendStats {
    pub fn new(clock_rate: u32) -> Self {
        assert!(clock_rate > 0, "clock rate must be positive");
        SendStats { clock_rate, packets: 0, octets: 0, last_rtp_ts: 0, last_sent_at: None }
    }

    /// Takes a sent packet: its RTP timestamp and payload size (RFC 3550: header and padding
    /// excluded).
    pub fn on_packet_sent(&mut self, now: Instant, rtp_ts: u32, payload_len: usize) {
        self.packets += 1;
        self.octets += payload_len as u64;
        // Only a newer timestamp moves the SR's RTP/NTP anchor: a late (reordered or repaired)
        // packet sent now must not make the next SR's timestamp go backwards.
        if self.last_sent_at.is_none() || (rtp_ts.wrapping_sub(self.last_rtp_ts) as i32) > 0 {
            self.last_rtp_ts = rtp_ts;
            self.last_sent_at = Some(now);
        }
    }

    pub fn packets_sent(&self) -> u64 {
        self.packets
    }

    pub fn octets_sent(&self) -> u64 {
        self.octets
    }

    /// The RTP timestamp matching `now`: the last one sent, advanced by the time since.
    pub fn rtp_ts_at(&self, now: Instant) -> Option<u32> {
        let at = self.last_sent_at?;
        let ahead = to_rtp_units(now.saturating_duration_since(at), self.clock_rate);
        Some(self.last_rtp_ts.wrapping_add(ahead))
    }

    /// The sender info of an SR sent at `now` (wall clock `ntp`); `None` before any packet.
    pub fn sender_info(&self, now: Instant, ntp: NtpTime, ssrc: u32) -> Option<SenderInfo> {
        Some(SenderInfo {
            ssrc,
            ntp_sec: ntp.sec,
            ntp_frac: ntp.frac,
            rtp_ts: self.rtp_ts_at(now)?,
            packet_count: self.packets as u32,
            octet_count: self.octets as u32,
        })
    }
}

/// Round-trip time from a report block about one of our streams, received when the wall clock
/// read `ntp_now` (RFC 3550 6.4.1: now - LSR - DLSR). `None` when the peer has no SR of ours yet.
pub fn rtt_from_report(ntp_now: NtpTime, block: &ReportBlock) -> Option<Duration> {
    if block.last_sr == 0 {
        return None;
    }
    let units = ntp_now.mid32().wrapping_sub(block.last_sr).wrapping_sub(block.delay_since_last_sr);
    // Clock skew can make it negative: that is a zero RTT, not four hours.
    if (units as i32) < 0 {
        return Some(Duration::ZERO);
    }
    Some(from_q16(units))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn loss_and_fraction() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(90_000);
        for seq in 0..100u16 {
            if seq % 10 != 5 {
                s.on_packet(t0, seq, 0, 100);
            }
        }
        assert_eq!(s.expected(), 100);
        assert_eq!(s.lost(), 10);
        let rb = s.report_block(t0, 7);
        assert_eq!(rb.ssrc, 7);
        assert_eq!(rb.cumulative_lost, 10);
        assert_eq!(rb.fraction_lost, (10 * 256 / 100) as u8);
        assert_eq!(rb.ext_highest_seq, 99);
        // next interval without loss
        for seq in 100..200u16 {
            s.on_packet(t0, seq, 0, 100);
        }
        let rb = s.report_block(t0, 7);
        assert_eq!(rb.fraction_lost, 0);
        assert_eq!(rb.cumulative_lost, 10);
        assert_eq!(s.octets_received(), 190 * 100);
    }

    #[test]
    fn wrap_counts_cycles() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(48_000);
        for i in 0..10u32 {
            s.on_packet(t0, (65530 + i) as u16, 0, 1);
        }
        assert_eq!(s.ext_highest_seq(), (1 << 16) | 3);
        assert_eq!(s.lost(), 0);
    }

    #[test]
    fn restart_after_jump() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(48_000);
        s.on_packet(t0, 10, 0, 1);
        assert!(!s.on_packet(t0, 20_000, 0, 1));
        assert!(s.on_packet(t0, 20_001, 0, 1));
        assert_eq!(s.ext_highest_seq(), 20_001);
        assert_eq!(s.lost(), 0);
    }

    #[test]
    fn duplicates_make_negative_loss() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(48_000);
        for _ in 0..3 {
            s.on_packet(t0, 1, 0, 1);
        }
        assert_eq!(s.report_block(t0, 1).cumulative_lost, -2);
    }

    #[test]
    fn jitter_steady_and_noisy() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(90_000);
        // perfectly paced: 20 ms = 1800 units
        for i in 0..50u32 {
            s.on_packet(ms(t0, 20 * i as u64), i as u16, 1800 * i, 1);
        }
        assert_eq!(s.jitter(), 0);
        // alternate 0 / 10 ms late: |D| = 10 ms = 900 units each time, J converges toward 900
        for i in 50..500u32 {
            let skew = if i % 2 == 0 { 10 } else { 0 };
            s.on_packet(ms(t0, 20 * i as u64 + skew), i as u16, 1800 * i, 1);
        }
        assert!((850..=900).contains(&s.jitter()), "jitter {}", s.jitter());
    }

    #[test]
    fn lsr_dlsr_and_rtt() {
        let t0 = Instant::now();
        let mut r = ReceiveStats::new(90_000);
        r.on_packet(t0, 1, 0, 1);
        assert_eq!(r.report_block(t0, 1).last_sr, 0);
        let sr_ntp = NtpTime { sec: 0x1234_5678, frac: 0x8000_0000 };
        r.on_sender_report(t0, sr_ntp);
        let rb = r.report_block(ms(t0, 500), 1);
        assert_eq!(rb.last_sr, 0x5678_8000);
        assert_eq!(rb.delay_since_last_sr, 32768);
        // the sender gets the RR 600 ms after it sent the SR: 100 ms of network round trip
        let now = NtpTime { sec: 0x1234_5679, frac: 0x1999_9999 }; // +0.6 s
        let rtt = rtt_from_report(now, &rb).unwrap();
        assert!((rtt.as_millis() as i64 - 100).abs() <= 1, "rtt {rtt:?}");
        let early = NtpTime { sec: 0x1234_5678, frac: 0x8000_0000 };
        assert_eq!(rtt_from_report(early, &rb), Some(Duration::ZERO));
    }

    #[test]
    fn sender_rtp_extrapolation() {
        let t0 = Instant::now();
        let mut s = SendStats::new(90_000);
        assert!(s.sender_info(t0, NtpTime::default(), 1).is_none());
        s.on_packet_sent(t0, u32::MAX - 200, 500);
        s.on_packet_sent(t0, u32::MAX - 100, 500);
        // A late packet (older timestamp, sent later) does not move the anchor.
        s.on_packet_sent(ms(t0, 50), u32::MAX - 150, 500);
        let si = s.sender_info(ms(t0, 100), NtpTime { sec: 5, frac: 6 }, 9).unwrap();
        assert_eq!(si.rtp_ts, (u32::MAX - 100).wrapping_add(9000), "extrapolated across the wrap");
        assert_eq!((si.packet_count, si.octet_count), (3, 1500));
        assert_eq!((si.ntp_sec, si.ntp_frac, si.ssrc), (5, 6, 9));
    }

    #[test]
    fn ntp_from_unix() {
        let n = NtpTime::from_unix(Duration::from_millis(1500));
        assert_eq!(n.sec as u64, NTP_UNIX_OFFSET_SECS + 1);
        assert_eq!(n.frac, 0x8000_0000);
    }
}
