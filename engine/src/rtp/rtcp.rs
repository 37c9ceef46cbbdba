//! RTCP compound packets (RFC 3550, RFC 4585, RFC 5104): a zero-allocation parser that hands
//! out borrowed items. The builders are in [`super::rtcp_build`].
//!
//! Why not `rtc-rtcp` here: its `unmarshal` allocates a `Vec<Box<dyn Packet>>` plus a `Vec` per
//! report list / NACK list for every datagram; this parser allocates nothing (see
//! `benches/benches/rtp.rs` for the measured difference). `rtc-rtcp` stays the independent
//! oracle in the tests: what we build it parses, what it builds we parse.

/// Every RTCP packet starts with 4 bytes: V/P/count, PT, length.
pub const RTCP_HEADER_LEN: usize = 4;
pub const RTCP_VERSION: u8 = 2;
/// A report block is 24 bytes.
pub const REPORT_BLOCK_LEN: usize = 24;
/// At most 31 report blocks / sources / FCI count fit the 5-bit count field.
pub const MAX_RTCP_COUNT: usize = 31;
/// Items delivered per compound packet at most (a datagram of 1500 bytes holds at most 375
/// packets of 4 bytes; this bound also caps the work per datagram).
pub const MAX_COMPOUND_ITEMS: usize = 512;

pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_SDES: u8 = 202;
pub const PT_BYE: u8 = 203;
pub const PT_APP: u8 = 204;
pub const PT_RTPFB: u8 = 205;
pub const PT_PSFB: u8 = 206;
pub const FMT_NACK: u8 = 1;
pub const FMT_PLI: u8 = 1;
pub const FMT_FIR: u8 = 4;
pub const FMT_AFB: u8 = 15;
pub const SDES_CNAME: u8 = 1;

/// Why an RTCP compound packet is malformed (or a builder's buffer too small).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RtcpError {
    /// Fewer than 4 bytes left, or an empty compound.
    TooShort,
    BadVersion,
    /// The length field runs past the end of the datagram.
    BadLength,
    /// P is set with a padding count of 0 or larger than the packet.
    BadPadding,
    /// The body is too short for what the header announces (e.g. report count).
    Truncated,
    /// More than `MAX_COMPOUND_ITEMS` packets.
    TooManyItems,
    /// The output buffer cannot hold the packet.
    BufferTooSmall,
    /// A builder was given more entries than the packet can carry.
    TooManyEntries,
}

impl std::fmt::Display for RtcpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for RtcpError {}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// One report block (RFC 3550 6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// 24-bit signed on the wire.
    pub cumulative_lost: i32,
    pub ext_highest_seq: u32,
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received from this source, 0 if none.
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn read(b: &[u8]) -> Self {
        debug_assert!(b.len() >= REPORT_BLOCK_LEN);
        let lost24 = be32(b, 4) & 0x00FF_FFFF;
        // sign-extend 24 bits
        let cumulative_lost = ((lost24 << 8) as i32) >> 8;
        ReportBlock {
            ssrc: be32(b, 0),
            fraction_lost: b[4],
            cumulative_lost,
            ext_highest_seq: be32(b, 8),
            jitter: be32(b, 12),
            last_sr: be32(b, 16),
            delay_since_last_sr: be32(b, 20),
        }
    }

    /// Writes the 24 bytes of this block (`b.len() >= REPORT_BLOCK_LEN`).
    pub(super) fn write(&self, b: &mut [u8]) {
        let lost24 = (self.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0x00FF_FFFF;
        b[0..4].copy_from_slice(&self.ssrc.to_be_bytes());
        b[4..8].copy_from_slice(&(((self.fraction_lost as u32) << 24) | lost24).to_be_bytes());
        b[8..12].copy_from_slice(&self.ext_highest_seq.to_be_bytes());
        b[12..16].copy_from_slice(&self.jitter.to_be_bytes());
        b[16..20].copy_from_slice(&self.last_sr.to_be_bytes());
        b[20..24].copy_from_slice(&self.delay_since_last_sr.to_be_bytes());
    }
}

/// The sender info of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    pub ssrc: u32,
    pub ntp_sec: u32,
    pub ntp_frac: u32,
    pub rtp_ts: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

/// Report blocks of an SR / RR, read on demand.
#[derive(Debug, Clone)]
pub struct ReportBlocks<'b> {
    raw: &'b [u8],
}

impl<'b> ReportBlocks<'b> {
    pub fn len(&self) -> usize {
        self.raw.len() / REPORT_BLOCK_LEN
    }
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;
    fn next(&mut self) -> Option<ReportBlock> {
        if self.raw.len() < REPORT_BLOCK_LEN {
            return None;
        }
        let rb = ReportBlock::read(self.raw);
        self.raw = &self.raw[REPORT_BLOCK_LEN..];
        Some(rb)
    }
}

/// NACK FCI entries: `(pid, blp)` pairs; [`NackPairs::seqs`] expands them.
#[derive(Debug, Clone)]
pub struct NackPairs<'b> {
    raw: &'b [u8],
}

impl<'b> NackPairs<'b> {
    /// Every sequence number NACKed, in FCI order (a pid, then its bitmask from bit 0).
    pub fn seqs(self) -> impl Iterator<Item = u16> + 'b {
        self.flat_map(|(pid, blp)| {
            std::iter::once(pid)
                .chain((0..16u16).filter(move |i| blp & (1 << i) != 0).map(move |i| pid.wrapping_add(i + 1)))
        })
    }
}

impl Iterator for NackPairs<'_> {
    type Item = (u16, u16);
    fn next(&mut self) -> Option<(u16, u16)> {
        if self.raw.len() < 4 {
            return None;
        }
        let pair = (be16(self.raw, 0), be16(self.raw, 2));
        self.raw = &self.raw[4..];
        Some(pair)
    }
}

/// A list of 32-bit words (BYE sources, REMB SSRCs).
#[derive(Debug, Clone)]
pub struct Ssrcs<'b> {
    raw: &'b [u8],
}

impl Iterator for Ssrcs<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        if self.raw.len() < 4 {
            return None;
        }
        let v = be32(self.raw, 0);
        self.raw = &self.raw[4..];
        Some(v)
    }
}

/// FIR FCI entries: `(ssrc, command sequence number)`.
#[derive(Debug, Clone)]
pub struct FirEntries<'b> {
    raw: &'b [u8],
}

impl Iterator for FirEntries<'_> {
    type Item = (u32, u8);
    fn next(&mut self) -> Option<(u32, u8)> {
        if self.raw.len() < 8 {
            return None;
        }
        let v = (be32(self.raw, 0), self.raw[4]);
        self.raw = &self.raw[8..];
        Some(v)
    }
}

/// One packet of a compound, borrowed from the datagram.
#[derive(Debug, Clone)]
pub enum RtcpItem<'b> {
    SenderReport {
        info: SenderInfo,
        reports: ReportBlocks<'b>,
    },
    ReceiverReport {
        ssrc: u32,
        reports: ReportBlocks<'b>,
    },
    /// The chunks unparsed: `count` chunks in `body` (use [`sdes_cname`] for the CNAME).
    Sdes {
        count: u8,
        body: &'b [u8],
    },
    Bye {
        ssrcs: Ssrcs<'b>,
    },
    App {
        subtype: u8,
        ssrc: u32,
        name: [u8; 4],
        data: &'b [u8],
    },
    Nack {
        sender_ssrc: u32,
        media_ssrc: u32,
        pairs: NackPairs<'b>,
    },
    Pli {
        sender_ssrc: u32,
        media_ssrc: u32,
    },
    Fir {
        sender_ssrc: u32,
        entries: FirEntries<'b>,
    },
    Remb {
        sender_ssrc: u32,
        bitrate_bps: u64,
        ssrcs: Ssrcs<'b>,
    },
    /// Anything else (XR, TWCC, other feedback, unknown types): packet type, count/format and
    /// the body after the 4-byte header (padding removed).
    Other {
        pt: u8,
        fmt: u8,
        body: &'b [u8],
    },
}

/// Parses a compound RTCP datagram, delivering each packet to `f` in order. Stops at the first
/// malformed packet with an error; items already delivered stay delivered. Never allocates.
pub fn parse_compound<'b>(buf: &'b [u8], mut f: impl FnMut(RtcpItem<'b>)) -> Result<(), RtcpError> {
    if buf.is_empty() {
        return Err(RtcpError::TooShort);
    }
    let mut rest = buf;
    let mut items = 0;
    while !rest.is_empty() {
        if items == MAX_COMPOUND_ITEMS {
            return Err(RtcpError::TooManyItems);
        }
        items += 1;
        if rest.len() < RTCP_HEADER_LEN {
            return Err(RtcpError::TooShort);
        }
        if rest[0] >> 6 != RTCP_VERSION {
            return Err(RtcpError::BadVersion);
        }
        let padding = rest[0] & 0x20 != 0;
        let count = rest[0] & 0x1F;
        let pt = rest[1];
        let total = 4 * (be16(rest, 2) as usize + 1);
        if total > rest.len() {
            return Err(RtcpError::BadLength);
        }
        let mut body = &rest[RTCP_HEADER_LEN..total];
        rest = &rest[total..];
        if padding {
            let pad = *body.last().ok_or(RtcpError::BadPadding)? as usize;
            if pad == 0 || pad > body.len() {
                return Err(RtcpError::BadPadding);
            }
            body = &body[..body.len() - pad];
        }
        f(parse_one(pt, count, body)?);
    }
    Ok(())
}

fn parse_one(pt: u8, count: u8, body: &[u8]) -> Result<RtcpItem<'_>, RtcpError> {
    let count_usize = count as usize;
    let need = |n: usize| {
        if body.len() < n {
            Err(RtcpError::Truncated)
        } else {
            Ok(())
        }
    };
    Ok(match pt {
        PT_SR => {
            need(24 + count_usize * REPORT_BLOCK_LEN)?;
            let info = SenderInfo {
                ssrc: be32(body, 0),
                ntp_sec: be32(body, 4),
                ntp_frac: be32(body, 8),
                rtp_ts: be32(body, 12),
                packet_count: be32(body, 16),
                octet_count: be32(body, 20),
            };
            let raw = &body[24..24 + count_usize * REPORT_BLOCK_LEN];
            RtcpItem::SenderReport { info, reports: ReportBlocks { raw } }
        }
        PT_RR => {
            need(4 + count_usize * REPORT_BLOCK_LEN)?;
            let raw = &body[4..4 + count_usize * REPORT_BLOCK_LEN];
            RtcpItem::ReceiverReport { ssrc: be32(body, 0), reports: ReportBlocks { raw } }
        }
        PT_SDES => RtcpItem::Sdes { count, body },
        PT_BYE => {
            need(4 * count_usize)?;
            RtcpItem::Bye { ssrcs: Ssrcs { raw: &body[..4 * count_usize] } }
        }
        PT_APP => {
            need(8)?;
            let name = [body[4], body[5], body[6], body[7]];
            RtcpItem::App { subtype: count, ssrc: be32(body, 0), name, data: &body[8..] }
        }
        PT_RTPFB if count == FMT_NACK => {
            need(8)?;
            let fci = &body[8..];
            let fci = &fci[..fci.len() & !3];
            RtcpItem::Nack { sender_ssrc: be32(body, 0), media_ssrc: be32(body, 4), pairs: NackPairs { raw: fci } }
        }
        PT_PSFB if count == FMT_PLI => {
            need(8)?;
            RtcpItem::Pli { sender_ssrc: be32(body, 0), media_ssrc: be32(body, 4) }
        }
        PT_PSFB if count == FMT_FIR => {
            need(8)?;
            let fci = &body[8..];
            let fci = &fci[..fci.len() - fci.len() % 8];
            RtcpItem::Fir { sender_ssrc: be32(body, 0), entries: FirEntries { raw: fci } }
        }
        PT_PSFB if count == FMT_AFB && body.len() >= 16 && &body[8..12] == b"REMB" => {
            let num = body[12] as usize;
            need(16 + 4 * num)?;
            let exp = body[13] >> 2;
            let mantissa = ((body[13] as u64 & 0x03) << 16) | be16(body, 14) as u64;
            // exp <= 63: a mantissa of 18 bits shifted past 64 bits saturates.
            let bitrate_bps = mantissa.checked_shl(exp as u32).filter(|v| v >> exp == mantissa);
            RtcpItem::Remb {
                sender_ssrc: be32(body, 0),
                bitrate_bps: bitrate_bps.unwrap_or(u64::MAX),
                ssrcs: Ssrcs { raw: &body[16..16 + 4 * num] },
            }
        }
        _ => RtcpItem::Other { pt, fmt: count, body },
    })
}

/// The CNAME of the first chunk of an SDES body that has one, as `(ssrc, cname)`.
pub fn sdes_cname(count: u8, body: &[u8]) -> Option<(u32, &[u8])> {
    let mut pos = 0;
    for _ in 0..count {
        let ssrc = be32(body.get(pos..pos + 4)?, 0);
        pos += 4;
        // Items until a null type byte, then padding to the next 32-bit boundary.
        loop {
            let t = *body.get(pos)?;
            if t == 0 {
                pos = (pos + 4) & !3;
                break;
            }
            let len = *body.get(pos + 1)? as usize;
            let text = body.get(pos + 2..pos + 2 + len)?;
            if t == SDES_CNAME {
                return Some((ssrc, text));
            }
            pos += 2 + len;
        }
    }
    None
}

/// The builders live in `rtcp_build`; they are part of this module's interface too.
pub use super::rtcp_build::{
    write_bye, write_fir, write_nack, write_pli, write_remb, write_rr, write_sdes_cname, write_sr,
};
