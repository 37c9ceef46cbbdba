//! RFC 4571 framing for ICE-TCP: every STUN / DTLS / RTP / RTCP packet on a TCP connection is
//! preceded by its length as a 16-bit big-endian integer.
//!
//! [`Rfc4571Decoder`] takes stream bytes in any chunking and gives back whole frames. Its buffer
//! is bounded ([`RFC4571_BUFFER_LEN`]: one frame of the largest size plus its prefix), so
//! [`Rfc4571Decoder::push`] takes only what fits and says how much; the caller pops the complete
//! frames and pushes the rest. Every 16-bit length is a legal frame size, so garbage cannot make
//! the decoder fail: it decodes garbage frames, which the layer above drops (and which should get
//! the connection closed after a few, as the stream has lost sync).

use std::fmt;

/// Length prefix size.
pub const RFC4571_HEADER_LEN: usize = 2;
/// Largest frame payload (the prefix is 16 bits).
pub const RFC4571_FRAME_LEN_MAX: usize = u16::MAX as usize;
/// Decoder buffer size: one largest frame with its prefix. Any frame can complete in it.
pub const RFC4571_BUFFER_LEN: usize = RFC4571_HEADER_LEN + RFC4571_FRAME_LEN_MAX;

/// Errors of the encoder (the decoder has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FramingError {
    /// The payload is longer than [`RFC4571_FRAME_LEN_MAX`].
    FrameTooLarge,
    /// `out` cannot hold the prefix and the payload.
    BufferTooSmall,
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramingError::FrameTooLarge => write!(f, "RFC 4571 frame longer than {RFC4571_FRAME_LEN_MAX} bytes"),
            FramingError::BufferTooSmall => write!(f, "buffer too small for the RFC 4571 frame"),
        }
    }
}

impl std::error::Error for FramingError {}

/// The 2-byte prefix of a frame of `payload_len` bytes, for a gathered write (prefix, payload)
/// that does not copy the payload.
pub fn frame_header(payload_len: usize) -> Result<[u8; RFC4571_HEADER_LEN], FramingError> {
    let len = u16::try_from(payload_len).map_err(|_| FramingError::FrameTooLarge)?;
    Ok(len.to_be_bytes())
}

/// Writes `payload` framed (prefix then payload) into `out`; returns the bytes written.
pub fn encode_frame(payload: &[u8], out: &mut [u8]) -> Result<usize, FramingError> {
    let header = frame_header(payload.len())?;
    let total = RFC4571_HEADER_LEN + payload.len();
    let dst = out.get_mut(..total).ok_or(FramingError::BufferTooSmall)?;
    dst[..RFC4571_HEADER_LEN].copy_from_slice(&header);
    dst[RFC4571_HEADER_LEN..].copy_from_slice(payload);
    Ok(total)
}

/// Reassembles RFC 4571 frames from a byte stream. Bounded: holds at most
/// [`RFC4571_BUFFER_LEN`] bytes.
pub struct Rfc4571Decoder {
    buf: Box<[u8]>,
    /// First byte not yet popped.
    start: usize,
    /// One past the last byte pushed.
    end: usize,
}

impl Default for Rfc4571Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Rfc4571Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rfc4571Decoder").field("buffered", &self.buffered()).finish()
    }
}

impl Rfc4571Decoder {
    pub fn new() -> Self {
        Rfc4571Decoder { buf: vec![0; RFC4571_BUFFER_LEN].into_boxed_slice(), start: 0, end: 0 }
    }

    /// Bytes held (a partial frame, or frames not popped yet).
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Free room for [`Rfc4571Decoder::push`], after compaction.
    pub fn free(&self) -> usize {
        RFC4571_BUFFER_LEN - self.buffered()
    }

    /// Appends stream bytes; returns how many were taken (fewer than `data.len()` only when the
    /// buffer is full: pop the complete frames, then push the rest). Never takes more than
    /// [`Rfc4571Decoder::free`].
    pub fn push(&mut self, data: &[u8]) -> usize {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = data.len().min(RFC4571_BUFFER_LEN - self.end);
        self.buf[self.end..self.end + n].copy_from_slice(&data[..n]);
        self.end += n;
        debug_assert!(self.start <= self.end && self.end <= RFC4571_BUFFER_LEN);
        n
    }

    /// The next complete frame's payload, if one is buffered (possibly empty: a zero-length
    /// frame is legal framing). The slice is valid until the next call.
    pub fn pop(&mut self) -> Option<&[u8]> {
        let avail = &self.buf[self.start..self.end];
        if avail.len() < RFC4571_HEADER_LEN {
            return None;
        }
        let len = u16::from_be_bytes([avail[0], avail[1]]) as usize;
        if avail.len() < RFC4571_HEADER_LEN + len {
            return None;
        }
        let from = self.start + RFC4571_HEADER_LEN;
        self.start = from + len;
        if self.start == self.end {
            // Empty: rewind so the next push needs no copy.
            self.start = 0;
            self.end = 0;
        }
        Some(&self.buf[from..from + len])
    }

    /// Drops everything buffered (e.g. after the connection lost sync).
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_bounds() {
        let mut out = [0u8; 8];
        assert_eq!(encode_frame(b"abc", &mut out), Ok(5));
        assert_eq!(&out[..5], b"\x00\x03abc");
        assert_eq!(encode_frame(&[0; 7], &mut out), Err(FramingError::BufferTooSmall));
        assert_eq!(frame_header(RFC4571_FRAME_LEN_MAX + 1), Err(FramingError::FrameTooLarge));
    }

    #[test]
    fn pop_after_rewind_and_full_buffer() {
        let mut d = Rfc4571Decoder::new();
        let big = vec![7u8; RFC4571_BUFFER_LEN + 10];
        // A maximal frame header followed by payload: exactly one buffer full is taken.
        let mut stream = vec![0xff, 0xff];
        stream.extend_from_slice(&big[..RFC4571_FRAME_LEN_MAX + 5]);
        let taken = d.push(&stream);
        assert_eq!(taken, RFC4571_BUFFER_LEN);
        assert_eq!(d.pop().map(<[u8]>::len), Some(RFC4571_FRAME_LEN_MAX));
        assert_eq!(d.buffered(), 0);
        assert_eq!(d.push(&stream[taken..]), 5);
        assert_eq!(d.pop(), None);
    }
}
