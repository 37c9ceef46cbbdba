//! RTCP builders: each writes one packet into a caller buffer and returns its length, or an
//! error (`BufferTooSmall`, `TooManyEntries`), in which case the buffer holds nothing useful.

use super::rtcp::{
    ReportBlock, RtcpError, SenderInfo, FMT_AFB, FMT_FIR, FMT_NACK, FMT_PLI, MAX_RTCP_COUNT, PT_BYE, PT_PSFB, PT_RR,
    PT_RTPFB, PT_SDES, PT_SR, REPORT_BLOCK_LEN, RTCP_HEADER_LEN, RTCP_VERSION, SDES_CNAME,
};

/// Writes the 4-byte header of a packet of `total` bytes (a multiple of 4).
fn put_header(out: &mut [u8], count: u8, pt: u8, total: usize) {
    debug_assert!(total & 3 == 0 && total >= RTCP_HEADER_LEN && count <= 31);
    out[0] = (RTCP_VERSION << 6) | count;
    out[1] = pt;
    out[2..4].copy_from_slice(&((total / 4 - 1) as u16).to_be_bytes());
}

fn check(out: &[u8], total: usize) -> Result<(), RtcpError> {
    if total > u16::MAX as usize * 4 {
        return Err(RtcpError::TooManyEntries);
    }
    if out.len() < total {
        return Err(RtcpError::BufferTooSmall);
    }
    Ok(())
}

fn put32(out: &mut [u8], at: usize, v: u32) {
    out[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Sender report with up to 31 report blocks. Returns the bytes written.
pub fn write_sr(out: &mut [u8], info: &SenderInfo, reports: &[ReportBlock]) -> Result<usize, RtcpError> {
    if reports.len() > MAX_RTCP_COUNT {
        return Err(RtcpError::TooManyEntries);
    }
    let total = RTCP_HEADER_LEN + 24 + REPORT_BLOCK_LEN * reports.len();
    check(out, total)?;
    put_header(out, reports.len() as u8, PT_SR, total);
    for (i, v) in [info.ssrc, info.ntp_sec, info.ntp_frac, info.rtp_ts, info.packet_count, info.octet_count]
        .into_iter()
        .enumerate()
    {
        put32(out, 4 + 4 * i, v);
    }
    for (i, rb) in reports.iter().enumerate() {
        let at = 28 + REPORT_BLOCK_LEN * i;
        rb.write(&mut out[at..at + REPORT_BLOCK_LEN]);
    }
    Ok(total)
}

/// Receiver report with up to 31 report blocks.
pub fn write_rr(out: &mut [u8], ssrc: u32, reports: &[ReportBlock]) -> Result<usize, RtcpError> {
    if reports.len() > MAX_RTCP_COUNT {
        return Err(RtcpError::TooManyEntries);
    }
    let total = RTCP_HEADER_LEN + 4 + REPORT_BLOCK_LEN * reports.len();
    check(out, total)?;
    put_header(out, reports.len() as u8, PT_RR, total);
    put32(out, 4, ssrc);
    for (i, rb) in reports.iter().enumerate() {
        let at = 8 + REPORT_BLOCK_LEN * i;
        rb.write(&mut out[at..at + REPORT_BLOCK_LEN]);
    }
    Ok(total)
}

/// SDES with one chunk holding a CNAME item (at most 255 bytes).
pub fn write_sdes_cname(out: &mut [u8], ssrc: u32, cname: &[u8]) -> Result<usize, RtcpError> {
    if cname.len() > 255 {
        return Err(RtcpError::TooManyEntries);
    }
    // ssrc, type, len, text, then at least one null byte, padded to 32 bits.
    let chunk = (4 + 2 + cname.len() + 1 + 3) & !3;
    let total = RTCP_HEADER_LEN + chunk;
    check(out, total)?;
    put_header(out, 1, PT_SDES, total);
    put32(out, 4, ssrc);
    out[8] = SDES_CNAME;
    out[9] = cname.len() as u8;
    out[10..10 + cname.len()].copy_from_slice(cname);
    out[10 + cname.len()..total].fill(0);
    Ok(total)
}

/// Generic NACK for `seqs`, packed into `(pid, blp)` pairs: a pair covers its pid and the 16
/// following sequence numbers. Ascending order (with wrap-around) gives the fewest pairs; any
/// order is correct. At most `out`'s room worth of pairs.
pub fn write_nack(out: &mut [u8], sender_ssrc: u32, media_ssrc: u32, seqs: &[u16]) -> Result<usize, RtcpError> {
    if seqs.is_empty() {
        return Err(RtcpError::TooShort);
    }
    if out.len() < 16 {
        return Err(RtcpError::BufferTooSmall);
    }
    put32(out, 4, sender_ssrc);
    put32(out, 8, media_ssrc);
    let mut at = 12;
    let mut pid = seqs[0];
    let mut blp = 0u16;
    for &s in &seqs[1..] {
        let d = s.wrapping_sub(pid);
        if d == 0 {
            continue;
        }
        if (1..=16).contains(&d) {
            blp |= 1 << (d - 1);
            continue;
        }
        check(out, at + 8)?;
        out[at..at + 2].copy_from_slice(&pid.to_be_bytes());
        out[at + 2..at + 4].copy_from_slice(&blp.to_be_bytes());
        at += 4;
        pid = s;
        blp = 0;
    }
    check(out, at + 4)?;
    out[at..at + 2].copy_from_slice(&pid.to_be_bytes());
    out[at + 2..at + 4].copy_from_slice(&blp.to_be_bytes());
    at += 4;
    put_header(out, FMT_NACK, PT_RTPFB, at);
    Ok(at)
}

/// Picture loss indication.
pub fn write_pli(out: &mut [u8], sender_ssrc: u32, media_ssrc: u32) -> Result<usize, RtcpError> {
    check(out, 12)?;
    put_header(out, FMT_PLI, PT_PSFB, 12);
    put32(out, 4, sender_ssrc);
    put32(out, 8, media_ssrc);
    Ok(12)
}

/// Full intra request for `media_ssrc` with command sequence number `seq_nr` (RFC 5104 4.3.1:
/// the header's media source field is 0, the SSRC goes in the FCI).
pub fn write_fir(out: &mut [u8], sender_ssrc: u32, media_ssrc: u32, seq_nr: u8) -> Result<usize, RtcpError> {
    check(out, 20)?;
    put_header(out, FMT_FIR, PT_PSFB, 20);
    put32(out, 4, sender_ssrc);
    put32(out, 8, 0);
    put32(out, 12, media_ssrc);
    out[16] = seq_nr;
    out[17..20].fill(0);
    Ok(20)
}

/// Goodbye for up to 31 sources, without a reason.
pub fn write_bye(out: &mut [u8], ssrcs: &[u32]) -> Result<usize, RtcpError> {
    if ssrcs.len() > MAX_RTCP_COUNT {
        return Err(RtcpError::TooManyEntries);
    }
    let total = RTCP_HEADER_LEN + 4 * ssrcs.len();
    check(out, total)?;
    put_header(out, ssrcs.len() as u8, PT_BYE, total);
    for (i, &s) in ssrcs.iter().enumerate() {
        put32(out, 4 + 4 * i, s);
    }
    Ok(total)
}

/// REMB (draft-alvestrand-rmcat-remb) for up to 255 SSRCs; the bitrate is rounded down to
/// 18 bits of mantissa.
pub fn write_remb(out: &mut [u8], sender_ssrc: u32, bitrate_bps: u64, ssrcs: &[u32]) -> Result<usize, RtcpError> {
    if ssrcs.len() > 255 {
        return Err(RtcpError::TooManyEntries);
    }
    let total = 20 + 4 * ssrcs.len();
    check(out, total)?;
    let mut exp = 0u32;
    while (bitrate_bps >> exp) > 0x3FFFF {
        exp += 1;
    }
    let mantissa = (bitrate_bps >> exp) as u32;
    put_header(out, FMT_AFB, PT_PSFB, total);
    put32(out, 4, sender_ssrc);
    put32(out, 8, 0);
    out[12..16].copy_from_slice(b"REMB");
    out[16] = ssrcs.len() as u8;
    out[17] = ((exp as u8) << 2) | ((mantissa >> 16) as u8 & 0x03);
    out[18..20].copy_from_slice(&(mantissa as u16).to_be_bytes());
    for (i, &s) in ssrcs.iter().enumerate() {
        put32(out, 20 + 4 * i, s);
    }
    Ok(total)
}
