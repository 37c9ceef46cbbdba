//! Zero-copy RTP header view (RFC 3550 section 5.1, RFC 8285 header extensions) and datagram
//! classification (RFC 7983, RFC 5761).
//!
//! [`parse_rtp`] validates a datagram once and returns an [`RtpHeader`]: the fixed fields plus
//! offsets into the buffer. Nothing is copied; the buffer stays with the caller and every accessor
//! that needs bytes takes it again (`hdr.payload(buf)`).

use std::ops::Range;

/// The fixed RTP header: V/P/X/CC, M/PT, sequence number, timestamp, SSRC.
pub const RTP_FIXED_HEADER_LEN: usize = 12;
/// The only RTP version there is.
pub const RTP_VERSION: u8 = 2;
/// RFC 8285 one-byte header extension profile.
pub const EXT_PROFILE_ONE_BYTE: u16 = 0xBEDE;
/// RFC 8285 two-byte header extension profile (the low 4 bits are "appbits").
pub const EXT_PROFILE_TWO_BYTE: u16 = 0x1000;
/// Mask selecting the two-byte profile without its appbits.
pub const EXT_PROFILE_TWO_BYTE_MASK: u16 = 0xFFF0;
/// One-byte form: ids 1..=14 carry data, 15 is reserved and stops parsing (RFC 8285 4.2).
pub const EXT_ONE_BYTE_ID_MAX: u8 = 14;
/// One-byte form: a value is 1..=16 bytes.
pub const EXT_ONE_BYTE_VALUE_LEN_MAX: usize = 16;

/// Why a datagram is not a valid RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RtpError {
    /// Shorter than the header it announces (fixed part, CSRCs or extension).
    TooShort,
    /// Version field is not 2.
    BadVersion,
    /// P is set but the padding count is 0 or larger than what follows the header.
    BadPadding,
    /// The extension block's length runs past the end of the packet.
    BadExtension,
    /// The output buffer cannot hold what is to be written.
    BufferTooSmall,
    /// An extension id outside 1..=255 (0 is padding).
    BadExtensionId,
    /// An extension value longer than 255 bytes, or an empty value in the one-byte form.
    BadExtensionLen,
    /// The extension block would exceed its fixed capacity.
    ExtensionsFull,
}

impl std::fmt::Display for RtpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for RtpError {}

/// A validated RTP header: fixed fields and offsets into the buffer it was parsed from.
///
/// Invariants (established by [`parse_rtp`]): `header_len <= payload_start + payload_len`,
/// `payload_start == header_len`, `header_len + payload_len + padding_len == buf.len()`,
/// the extension body lies inside the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub padding: bool,
    /// Number of padding bytes at the end (last byte included); 0 when `padding` is false.
    pub padding_len: u8,
    pub extension: bool,
    pub csrc_count: u8,
    pub marker: bool,
    pub payload_type: u8,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Extension profile (0xBEDE, 0x100X or anything else); 0 when `extension` is false.
    pub ext_profile: u16,
    /// Offset of the extension body (after the 4-byte extension header).
    pub ext_offset: usize,
    /// Length of the extension body in bytes (a multiple of 4).
    pub ext_len: usize,
    /// 12 + 4 * CC + (4 + ext_len if X): where the payload starts.
    pub header_len: usize,
    /// Payload length, padding excluded.
    pub payload_len: usize,
}

impl RtpHeader {
    /// The payload range in the parsed buffer (padding excluded).
    pub fn payload_range(&self) -> Range<usize> {
        self.header_len..self.header_len + self.payload_len
    }

    /// The payload (padding excluded). `buf` must be the buffer this header was parsed from.
    pub fn payload<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        buf.get(self.payload_range()).unwrap_or(&[])
    }

    /// Everything after the header: payload and the original padding.
    pub fn body<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        buf.get(self.header_len..).unwrap_or(&[])
    }

    /// Total packet length this header describes.
    pub fn packet_len(&self) -> usize {
        self.header_len + self.payload_len + self.padding_len as usize
    }

    /// The i-th CSRC, if present.
    pub fn csrc(&self, buf: &[u8], i: usize) -> Option<u32> {
        if i >= self.csrc_count as usize {
            return None;
        }
        let at = RTP_FIXED_HEADER_LEN + 4 * i;
        buf.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The raw extension body (without the 4-byte extension header).
    pub fn extension_body<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        buf.get(self.ext_offset..self.ext_offset + self.ext_len).unwrap_or(&[])
    }

    /// Iterates RFC 8285 extensions as `(id, value)`. Yields nothing for other profiles.
    /// Stops quietly at the first malformed element (garbage is not an error for a forwarder).
    pub fn extensions<'b>(&self, buf: &'b [u8]) -> ExtIter<'b> {
        let form = if !self.extension {
            ExtForm::None
        } else if self.ext_profile == EXT_PROFILE_ONE_BYTE {
            ExtForm::OneByte
        } else if self.ext_profile & EXT_PROFILE_TWO_BYTE_MASK == EXT_PROFILE_TWO_BYTE {
            ExtForm::TwoByte
        } else {
            ExtForm::None
        };
        ExtIter { body: self.extension_body(buf), pos: 0, form }
    }

    /// The value of extension `id`, if present.
    pub fn extension<'b>(&self, buf: &'b [u8], id: u8) -> Option<&'b [u8]> {
        self.extensions(buf).find(|&(i, _)| i == id).map(|(_, v)| v)
    }
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses and validates an RTP packet in place. Never panics; never allocates.
pub fn parse_rtp(buf: &[u8]) -> Result<RtpHeader, RtpError> {
    if buf.len() < RTP_FIXED_HEADER_LEN {
        return Err(RtpError::TooShort);
    }
    let b0 = buf[0];
    if b0 >> 6 != RTP_VERSION {
        return Err(RtpError::BadVersion);
    }
    let padding = b0 & 0x20 != 0;
    let extension = b0 & 0x10 != 0;
    let csrc_count = b0 & 0x0F;
    let b1 = buf[1];

    let mut header_len = RTP_FIXED_HEADER_LEN + 4 * csrc_count as usize;
    if buf.len() < header_len {
        return Err(RtpError::TooShort);
    }
    let (mut ext_profile, mut ext_offset, mut ext_len) = (0, 0, 0);
    if extension {
        if buf.len() < header_len + 4 {
            return Err(RtpError::TooShort);
        }
        ext_profile = be16(buf, header_len);
        ext_len = 4 * be16(buf, header_len + 2) as usize;
        ext_offset = header_len + 4;
        header_len = ext_offset + ext_len;
        if buf.len() < header_len {
            return Err(RtpError::BadExtension);
        }
    }

    let mut padding_len = 0u8;
    if padding {
        padding_len = buf[buf.len() - 1];
        if padding_len == 0 || buf.len() - header_len < padding_len as usize {
            return Err(RtpError::BadPadding);
        }
    }
    let payload_len = buf.len() - header_len - padding_len as usize;

    let hdr = RtpHeader {
        padding,
        padding_len,
        extension,
        csrc_count,
        marker: b1 & 0x80 != 0,
        payload_type: b1 & 0x7F,
        sequence_number: be16(buf, 2),
        timestamp: be32(buf, 4),
        ssrc: be32(buf, 8),
        ext_profile,
        ext_offset,
        ext_len,
        header_len,
        payload_len,
    };
    debug_assert_eq!(hdr.packet_len(), buf.len());
    Ok(hdr)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExtForm {
    None,
    OneByte,
    TwoByte,
}

/// Iterator over RFC 8285 header extensions, see [`RtpHeader::extensions`].
#[derive(Debug, Clone)]
pub struct ExtIter<'b> {
    body: &'b [u8],
    pos: usize,
    form: ExtForm,
}

impl<'b> Iterator for ExtIter<'b> {
    type Item = (u8, &'b [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        // Every turn advances `pos` by at least one byte, so the loop ends within body.len() turns.
        loop {
            let b = *self.body.get(self.pos)?;
            match self.form {
                ExtForm::None => return None,
                ExtForm::OneByte => {
                    let id = b >> 4;
                    if id == 0 {
                        // Padding. A nonzero length with id 0 is malformed; like libwebrtc,
                        // skip the byte as padding rather than give up on the rest.
                        self.pos += 1;
                        continue;
                    }
                    if id == 15 {
                        self.form = ExtForm::None; // reserved: stop (RFC 8285 4.2)
                        return None;
                    }
                    let len = (b & 0x0F) as usize + 1;
                    let start = self.pos + 1;
                    let Some(value) = self.body.get(start..start + len) else {
                        self.form = ExtForm::None;
                        return None;
                    };
                    self.pos = start + len;
                    return Some((id, value));
                }
                ExtForm::TwoByte => {
                    if b == 0 {
                        self.pos += 1; // padding
                        continue;
                    }
                    let Some(&len) = self.body.get(self.pos + 1) else {
                        self.form = ExtForm::None;
                        return None;
                    };
                    let start = self.pos + 2;
                    let Some(value) = self.body.get(start..start + len as usize) else {
                        self.form = ExtForm::None;
                        return None;
                    };
                    self.pos = start + len as usize;
                    return Some((b, value));
                }
            }
        }
    }
}

/// What a datagram on a bundled WebRTC 5-tuple is, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    Stun,
    Dtls,
    Rtp,
    Rtcp,
    Unknown,
}

/// Classifies a datagram (RFC 7983 first-byte ranges; RFC 5761 RTP/RTCP demultiplexing by the
/// second byte: RTCP packet types 192..=223 correspond to RTP payload types 64..=95, which are
/// not used for RTP).
pub fn classify(buf: &[u8]) -> PacketKind {
    match buf.first() {
        Some(0..=3) => PacketKind::Stun,
        Some(20..=63) => PacketKind::Dtls,
        Some(128..=191) => match buf.get(1) {
            Some(192..=223) => PacketKind::Rtcp,
            Some(_) => PacketKind::Rtp,
            None => PacketKind::Unknown,
        },
        _ => PacketKind::Unknown,
    }
}

/// True when `buf` looks like RTCP (see [`classify`]).
pub fn is_rtcp(buf: &[u8]) -> bool {
    classify(buf) == PacketKind::Rtcp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(b0: u8, extra: &[u8]) -> Vec<u8> {
        let mut v = vec![b0, 0x80 | 96, 0x12, 0x34, 0, 0, 0x10, 0, 0xDE, 0xAD, 0xBE, 0xEF];
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn fixed_fields() {
        let buf = packet(0x80, &[1, 2, 3]);
        let h = parse_rtp(&buf).unwrap();
        assert!(h.marker);
        assert_eq!(h.payload_type, 96);
        assert_eq!(h.sequence_number, 0x1234);
        assert_eq!(h.timestamp, 0x1000);
        assert_eq!(h.ssrc, 0xDEADBEEF);
        assert_eq!(h.header_len, 12);
        assert_eq!(h.payload(&buf), &[1, 2, 3]);
    }

    #[test]
    fn errors() {
        assert_eq!(parse_rtp(&[0x80; 11]), Err(RtpError::TooShort));
        assert_eq!(parse_rtp(&packet(0x40, &[])), Err(RtpError::BadVersion));
        assert_eq!(parse_rtp(&packet(0x81, &[])), Err(RtpError::TooShort));
        assert_eq!(parse_rtp(&packet(0x90, &[0xBE, 0xDE])), Err(RtpError::TooShort));
        assert_eq!(parse_rtp(&packet(0x90, &[0xBE, 0xDE, 0, 1])), Err(RtpError::BadExtension));
        assert_eq!(parse_rtp(&packet(0xA0, &[1, 0])), Err(RtpError::BadPadding));
        assert_eq!(parse_rtp(&packet(0xA0, &[1, 3])), Err(RtpError::BadPadding));
        assert_eq!(parse_rtp(&packet(0xA0, &[])), Err(RtpError::BadPadding));
    }

    #[test]
    fn padding_and_csrc() {
        let buf = packet(0xA1, &[0, 0, 0, 7, 9, 9, 0, 2]);
        let h = parse_rtp(&buf).unwrap();
        assert_eq!(h.csrc(&buf, 0), Some(7));
        assert_eq!(h.csrc(&buf, 1), None);
        assert_eq!(h.padding_len, 2);
        assert_eq!(h.payload(&buf), &[9, 9]);
        assert_eq!(h.body(&buf), &[9, 9, 0, 2]);
    }

    #[test]
    fn one_byte_extensions() {
        // id 1 len 1, padding, id 3 len 2, then reserved id 15 stops.
        let ext = [0xBE, 0xDE, 0, 2, 0x10, 0xAA, 0x00, 0x31, 0xBB, 0xCC, 0xF0, 0];
        let buf = packet(0x90, &ext);
        let h = parse_rtp(&buf).unwrap();
        let all: Vec<_> = h.extensions(&buf).collect();
        assert_eq!(all, vec![(1, &[0xAA][..]), (3, &[0xBB, 0xCC][..])]);
        assert_eq!(h.extension(&buf, 3), Some(&[0xBB, 0xCC][..]));
        assert_eq!(h.extension(&buf, 2), None);
        assert_eq!(h.payload_len, 0);
        // id 0 with a nonzero length is skipped like padding (fuzz regression)
        let ext = [0xBE, 0xDE, 0, 1, 0x05, 0x10, 0xAA, 0];
        let buf = packet(0x90, &ext);
        let h = parse_rtp(&buf).unwrap();
        assert_eq!(h.extensions(&buf).collect::<Vec<_>>(), vec![(1, &[0xAA][..])]);
    }

    #[test]
    fn two_byte_extensions_and_garbage() {
        let ext = [0x10, 0x00, 0, 2, 0, 5, 0, 20, 2, 0xAA, 0xBB, 0];
        let buf = packet(0x90, &ext);
        let h = parse_rtp(&buf).unwrap();
        let all: Vec<_> = h.extensions(&buf).collect();
        assert_eq!(all, vec![(5, &[][..]), (20, &[0xAA, 0xBB][..])]);
        // Length running past the body ends iteration without panicking.
        let ext = [0x10, 0x00, 0, 1, 7, 9, 0, 0];
        let buf = packet(0x90, &ext);
        let h = parse_rtp(&buf).unwrap();
        assert_eq!(h.extensions(&buf).count(), 0);
    }

    #[test]
    fn classification() {
        assert_eq!(classify(&[0, 1]), PacketKind::Stun);
        assert_eq!(classify(&[22, 254]), PacketKind::Dtls);
        assert_eq!(classify(&[0x80, 96]), PacketKind::Rtp);
        assert_eq!(classify(&[0x80, 200]), PacketKind::Rtcp);
        assert_eq!(classify(&[0x80, 223]), PacketKind::Rtcp);
        assert_eq!(classify(&[0x80, 224]), PacketKind::Rtp);
        assert_eq!(classify(&[0x80]), PacketKind::Unknown);
        assert_eq!(classify(&[]), PacketKind::Unknown);
        assert_eq!(classify(&[70, 0]), PacketKind::Unknown);
    }
}
