//! Header rewrite for forwarding: a consumer writes a fresh header into a small scratch buffer
//! and sends it followed by the producer's body, which is shared, never copied.
//!
//! [`ExtensionsBuilder`] encodes an RFC 8285 extension block in a fixed inline buffer. The SFU
//! builds the extensions shared by all consumers once per input packet, then clones the builder
//! (a memcpy) and appends the per-consumer ones (MID) for each consumer.

use super::packet::{
    RtpError, RtpHeader, EXT_ONE_BYTE_ID_MAX, EXT_ONE_BYTE_VALUE_LEN_MAX, EXT_PROFILE_ONE_BYTE, EXT_PROFILE_TWO_BYTE,
    RTP_FIXED_HEADER_LEN, RTP_VERSION,
};

/// Capacity of an extension block, padding included (a multiple of 4).
pub const MAX_EXTENSIONS_LEN: usize = 256;
/// Two-byte form: a value is 0..=255 bytes.
pub const EXT_TWO_BYTE_VALUE_LEN_MAX: usize = 255;
/// The RFC 4588 original sequence number in front of an RTX payload.
pub const RTX_OSN_LEN: usize = 2;
/// Largest header [`write_header`] can produce: fixed part, 15 CSRCs, extension header and block,
/// RTX OSN.
pub const MAX_HEADER_LEN: usize = RTP_FIXED_HEADER_LEN + 15 * 4 + 4 + MAX_EXTENSIONS_LEN + RTX_OSN_LEN;

/// An RFC 8285 extension block under construction, encoded as it grows.
#[derive(Clone)]
pub struct ExtensionsBuilder {
    /// Encoded elements in `buf[..len]`; `buf[len..round4(len)]` is kept zero (padding).
    buf: [u8; MAX_EXTENSIONS_LEN],
    len: usize,
    two_byte: bool,
}

impl Default for ExtensionsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ExtensionsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtensionsBuilder")
            .field("two_byte", &self.two_byte)
            .field("bytes", &&self.buf[..self.len])
            .finish()
    }
}

#[inline]
fn round4(n: usize) -> usize {
    (n + 3) & !3
}

impl ExtensionsBuilder {
    pub const fn new() -> Self {
        ExtensionsBuilder { buf: [0; MAX_EXTENSIONS_LEN], len: 0, two_byte: false }
    }

    /// Removes every element.
    pub fn clear(&mut self) {
        self.len = 0;
        self.two_byte = false;
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends extension `id` (1..=255) with `value` (0..=255 bytes). The block uses the
    /// one-byte form while every element fits it (id 1..=14, value 1..=16 bytes) and switches to
    /// the two-byte form, re-encoding what is there, at the first one that does not.
    /// Duplicate ids are the caller's business (debug-asserted).
    pub fn push(&mut self, id: u8, value: &[u8]) -> Result<(), RtpError> {
        if id == 0 {
            return Err(RtpError::BadExtensionId);
        }
        if value.len() > EXT_TWO_BYTE_VALUE_LEN_MAX {
            return Err(RtpError::BadExtensionLen);
        }
        debug_assert!(!self.iter().any(|(i, _)| i == id), "duplicate extension id {id}");
        let fits_one_byte = id <= EXT_ONE_BYTE_ID_MAX && !value.is_empty() && value.len() <= EXT_ONE_BYTE_VALUE_LEN_MAX;
        let convert = !fits_one_byte && !self.two_byte;
        let grow = if convert { self.iter().count() } else { 0 };
        let elem_len = if self.two_byte || convert { 2 } else { 1 } + value.len();
        // Checked before anything changes: a failed push leaves the builder as it was.
        if round4(self.len + grow + elem_len) > MAX_EXTENSIONS_LEN {
            return Err(RtpError::ExtensionsFull);
        }
        if convert {
            self.convert_to_two_byte();
        }
        let end = self.len + elem_len;
        let at = self.len;
        if self.two_byte {
            self.buf[at] = id;
            self.buf[at + 1] = value.len() as u8;
        } else {
            self.buf[at] = (id << 4) | (value.len() as u8 - 1);
        }
        self.buf[at + elem_len - value.len()..end].copy_from_slice(value);
        self.buf[end..round4(end)].fill(0);
        self.len = end;
        Ok(())
    }

    /// Re-encodes the one-byte elements in the two-byte form (one more byte each).
    /// The caller has checked that the result fits.
    fn convert_to_two_byte(&mut self) {
        debug_assert!(!self.two_byte);
        let count = self.iter().count();
        debug_assert!(round4(self.len + count) <= MAX_EXTENSIONS_LEN);
        let old = self.buf;
        let old_len = self.len;
        let mut pos = 0;
        let mut out = 0;
        while pos < old_len {
            let id = old[pos] >> 4;
            let len = (old[pos] & 0x0F) as usize + 1;
            self.buf[out] = id;
            self.buf[out + 1] = len as u8;
            self.buf[out + 2..out + 2 + len].copy_from_slice(&old[pos + 1..pos + 1 + len]);
            pos += 1 + len;
            out += 2 + len;
        }
        debug_assert_eq!(out, old_len + count);
        self.buf[out..round4(out)].fill(0);
        self.len = out;
        self.two_byte = true;
    }

    /// The profile (0xBEDE or 0x1000) and the block padded to a multiple of 4 bytes.
    /// An empty builder gives an empty block.
    pub fn finish(&self) -> (u16, &[u8]) {
        let profile = if self.two_byte { EXT_PROFILE_TWO_BYTE } else { EXT_PROFILE_ONE_BYTE };
        (profile, &self.buf[..round4(self.len)])
    }

    /// The elements pushed so far, as `(id, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &[u8])> + '_ {
        let two_byte = self.two_byte;
        let body = &self.buf[..self.len];
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= body.len() {
                return None;
            }
            let (id, len, skip) = if two_byte {
                (body[pos], body[pos + 1] as usize, 2)
            } else {
                (body[pos] >> 4, (body[pos] & 0x0F) as usize + 1, 1)
            };
            let value = &body[pos + skip..pos + skip + len];
            pos += skip + len;
            Some((id, value))
        })
    }
}

/// The fields a consumer rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderFields {
    pub payload_type: u8,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub marker: bool,
}

impl HeaderFields {
    /// The fields as they are in `hdr`.
    pub fn from_header(hdr: &RtpHeader) -> Self {
        HeaderFields {
            payload_type: hdr.payload_type,
            sequence_number: hdr.sequence_number,
            timestamp: hdr.timestamp,
            ssrc: hdr.ssrc,
            marker: hdr.marker,
        }
    }
}

fn write_common(
    out: &mut [u8],
    src: &[u8],
    hdr: &RtpHeader,
    fields: &HeaderFields,
    ext: Option<&ExtensionsBuilder>,
    padding: bool,
    trailer: usize,
) -> Result<usize, RtpError> {
    debug_assert!(fields.payload_type < 128, "payload type {} has 7 bits", fields.payload_type);
    let csrc_len = 4 * hdr.csrc_count as usize;
    let block = match ext {
        Some(b) if !b.is_empty() => Some(b.finish()),
        _ => None,
    };
    let ext_total = block.map_or(0, |(_, body)| 4 + body.len());
    let n = RTP_FIXED_HEADER_LEN + csrc_len + ext_total;
    if out.len() < n + trailer {
        return Err(RtpError::BufferTooSmall);
    }
    let csrcs = src.get(RTP_FIXED_HEADER_LEN..RTP_FIXED_HEADER_LEN + csrc_len).ok_or(RtpError::TooShort)?;

    out[0] =
        (RTP_VERSION << 6) | if padding { 0x20 } else { 0 } | if block.is_some() { 0x10 } else { 0 } | hdr.csrc_count;
    out[1] = if fields.marker { 0x80 } else { 0 } | (fields.payload_type & 0x7F);
    out[2..4].copy_from_slice(&fields.sequence_number.to_be_bytes());
    out[4..8].copy_from_slice(&fields.timestamp.to_be_bytes());
    out[8..12].copy_from_slice(&fields.ssrc.to_be_bytes());
    out[RTP_FIXED_HEADER_LEN..RTP_FIXED_HEADER_LEN + csrc_len].copy_from_slice(csrcs);
    if let Some((profile, body)) = block {
        debug_assert_eq!(body.len() % 4, 0);
        let at = RTP_FIXED_HEADER_LEN + csrc_len;
        out[at..at + 2].copy_from_slice(&profile.to_be_bytes());
        out[at + 2..at + 4].copy_from_slice(&((body.len() / 4) as u16).to_be_bytes());
        out[at + 4..at + 4 + body.len()].copy_from_slice(body);
    }
    Ok(n)
}

/// Writes a forwarding header into `out` and returns its length `n`. The packet on the wire is
/// `out[..n]` followed by `hdr.body(src)` (payload and the original padding; P is copied).
/// CSRCs are copied from `src`; the original extensions are replaced by `ext` (none if `None` or
/// empty).
pub fn write_header(
    out: &mut [u8],
    src: &[u8],
    hdr: &RtpHeader,
    fields: &HeaderFields,
    ext: Option<&ExtensionsBuilder>,
) -> Result<usize, RtpError> {
    write_common(out, src, hdr, fields, ext, hdr.padding, 0)
}

/// Writes an RFC 4588 retransmission header: `fields` carry the RTX ssrc / payload type /
/// sequence number, and the 2-byte original sequence number follows the header. Returns `n`;
/// the packet is `out[..n]` followed by `hdr.payload(src)` (padding dropped, so P is cleared).
pub fn write_rtx_header(
    out: &mut [u8],
    src: &[u8],
    hdr: &RtpHeader,
    fields: &HeaderFields,
    ext: Option<&ExtensionsBuilder>,
) -> Result<usize, RtpError> {
    let n = write_common(out, src, hdr, fields, ext, false, RTX_OSN_LEN)?;
    out[n..n + RTX_OSN_LEN].copy_from_slice(&hdr.sequence_number.to_be_bytes());
    Ok(n + RTX_OSN_LEN)
}

/// Rewrites marker, payload type, sequence number, timestamp and SSRC of a packet in place,
/// keeping everything else.
pub fn rewrite_in_place(buf: &mut [u8], hdr: &RtpHeader, fields: &HeaderFields) -> Result<(), RtpError> {
    debug_assert!(fields.payload_type < 128);
    if buf.len() < RTP_FIXED_HEADER_LEN || buf.len() < hdr.header_len {
        return Err(RtpError::TooShort);
    }
    buf[1] = if fields.marker { 0x80 } else { 0 } | (fields.payload_type & 0x7F);
    buf[2..4].copy_from_slice(&fields.sequence_number.to_be_bytes());
    buf[4..8].copy_from_slice(&fields.timestamp.to_be_bytes());
    buf[8..12].copy_from_slice(&fields.ssrc.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::packet::parse_rtp;
    use super::*;

    fn src_packet() -> Vec<u8> {
        // V=2 P=1 X=1 CC=1, PT 100, seq 7, ts 9, ssrc 1, csrc 0x55, ext (one-byte id 4), payload, padding 3
        let mut v = vec![0xB1, 100, 0, 7, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0x55];
        v.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x40, 0xEE, 0, 0]);
        v.extend_from_slice(&[1, 2, 3, 4, 5]);
        v.extend_from_slice(&[0, 0, 3]);
        v
    }

    #[test]
    fn builder_forms() {
        let mut b = ExtensionsBuilder::new();
        assert!(b.is_empty());
        b.push(1, &[0xAA]).unwrap();
        b.push(3, &[1, 2, 3]).unwrap();
        let (p, body) = b.finish();
        assert_eq!(p, EXT_PROFILE_ONE_BYTE);
        assert_eq!(body, &[0x10, 0xAA, 0x32, 1, 2, 3, 0, 0]);
        let mut c = b.clone();
        c.push(20, b"mid").unwrap();
        let (p, body) = c.finish();
        assert_eq!(p, EXT_PROFILE_TWO_BYTE);
        assert_eq!(body, &[1, 1, 0xAA, 3, 3, 1, 2, 3, 20, 3, b'm', b'i', b'd', 0, 0, 0]);
        // the original is untouched
        assert_eq!(b.finish().0, EXT_PROFILE_ONE_BYTE);
        assert_eq!(b.push(0, &[1]), Err(RtpError::BadExtensionId));
        assert_eq!(b.push(5, &[0; 256]), Err(RtpError::BadExtensionLen));
        b.clear();
        assert!(b.finish().1.is_empty());
    }

    #[test]
    fn builder_capacity() {
        let mut b = ExtensionsBuilder::new();
        for id in 1..=14 {
            b.push(id, &[id; 16]).unwrap();
        }
        assert_eq!(b.finish().1.len(), 14 * 17 + 2);
        assert_eq!(b.push(15, &[1; 16]), Err(RtpError::ExtensionsFull));
        assert_eq!(b.iter().count(), 14);
        assert_eq!(b.finish().0, EXT_PROFILE_ONE_BYTE, "a failed push changes nothing");
    }

    #[test]
    fn header_round_trip() {
        let src = src_packet();
        let hdr = parse_rtp(&src).unwrap();
        let mut ext = ExtensionsBuilder::new();
        ext.push(2, &[0x11, 0x22]).unwrap();
        ext.push(10, b"0").unwrap();
        let fields = HeaderFields { payload_type: 96, sequence_number: 1000, timestamp: 5, ssrc: 0xABCD, marker: true };
        let mut out = [0u8; MAX_HEADER_LEN];
        let n = write_header(&mut out, &src, &hdr, &fields, Some(&ext)).unwrap();
        let mut wire = out[..n].to_vec();
        wire.extend_from_slice(hdr.body(&src));
        let h2 = parse_rtp(&wire).unwrap();
        assert_eq!(HeaderFields::from_header(&h2), fields);
        assert_eq!(h2.csrc(&wire, 0), Some(0x55));
        assert_eq!(h2.extension(&wire, 2), Some(&[0x11, 0x22][..]));
        assert_eq!(h2.extension(&wire, 10), Some(&b"0"[..]));
        assert_eq!(h2.extension(&wire, 4), None);
        assert_eq!(h2.payload(&wire), &[1, 2, 3, 4, 5]);
        assert_eq!(h2.padding_len, 3);

        let n = write_header(&mut out, &src, &hdr, &fields, None).unwrap();
        assert_eq!(n, 16);
        assert_eq!(write_header(&mut out[..15], &src, &hdr, &fields, None), Err(RtpError::BufferTooSmall));
    }

    #[test]
    fn rtx_round_trip() {
        let src = src_packet();
        let hdr = parse_rtp(&src).unwrap();
        let fields = HeaderFields { payload_type: 97, sequence_number: 1, timestamp: 9, ssrc: 2, marker: false };
        let mut out = [0u8; MAX_HEADER_LEN];
        let n = write_rtx_header(&mut out, &src, &hdr, &fields, None).unwrap();
        let mut wire = out[..n].to_vec();
        wire.extend_from_slice(hdr.payload(&src));
        let h2 = parse_rtp(&wire).unwrap();
        assert!(!h2.padding);
        assert_eq!(HeaderFields::from_header(&h2), fields);
        assert_eq!(h2.payload(&wire), &[0, 7, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn in_place() {
        let mut src = src_packet();
        let hdr = parse_rtp(&src).unwrap();
        let fields = HeaderFields { payload_type: 1, sequence_number: 2, timestamp: 3, ssrc: 4, marker: true };
        rewrite_in_place(&mut src, &hdr, &fields).unwrap();
        let h2 = parse_rtp(&src).unwrap();
        assert_eq!(HeaderFields::from_header(&h2), fields);
        assert_eq!(h2.extension(&src, 4), Some(&[0xEE][..]));
        assert_eq!(rewrite_in_place(&mut [0u8; 4], &hdr, &fields), Err(RtpError::TooShort));
    }
}
