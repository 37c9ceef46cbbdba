//! Key frame detection from the RTP payload, per codec. A video consumer that (re)starts waits
//! for a key frame before forwarding, so the receiver never sees a broken reference chain.

/// Codecs whose payload we can inspect for key frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFrameCodec {
    Vp8,
    Vp9,
    H264,
    /// No inspection: every packet is acceptable as a start point.
    Unsupported,
}

impl KeyFrameCodec {
    pub fn from_mime(mime: &str) -> Self {
        if mime.eq_ignore_ascii_case("video/vp8") {
            KeyFrameCodec::Vp8
        } else if mime.eq_ignore_ascii_case("video/vp9") {
            KeyFrameCodec::Vp9
        } else if mime.eq_ignore_ascii_case("video/h264") {
            KeyFrameCodec::H264
        } else {
            KeyFrameCodec::Unsupported
        }
    }

    pub fn supported(self) -> bool {
        self != KeyFrameCodec::Unsupported
    }
}

/// Does this RTP payload start (or carry) a key frame? Never panics on short input.
pub fn is_key_frame(codec: KeyFrameCodec, payload: &[u8]) -> bool {
    match codec {
        KeyFrameCodec::Vp8 => vp8_key_frame(payload),
        KeyFrameCodec::Vp9 => vp9_key_frame(payload),
        KeyFrameCodec::H264 => h264_key_frame(payload),
        KeyFrameCodec::Unsupported => false,
    }
}

/// RFC 7741: payload descriptor, then the VP8 payload header whose P bit is 0 on key frames.
fn vp8_key_frame(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    let start = b0 & 0x10 != 0;
    let pid = b0 & 0x07;
    if !start || pid != 0 {
        return false;
    }
    let mut i = 1;
    if b0 & 0x80 != 0 {
        // X: extension byte with I, L, T, K flags.
        let Some(&x) = p.get(i) else { return false };
        i += 1;
        if x & 0x80 != 0 {
            // I: picture id, 7 or 15 bits.
            let Some(&m) = p.get(i) else { return false };
            i += if m & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1; // L: TL0PICIDX
        }
        if x & 0x30 != 0 {
            i += 1; // T or K: TID/Y/KEYIDX
        }
    }
    matches!(p.get(i), Some(&h) if h & 0x01 == 0)
}

/// RFC 9628 (VP9): flexible or not, P bit clear and B bit set on the first packet of a key frame.
fn vp9_key_frame(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    let inter_picture = b0 & 0x40 != 0; // P
    let begin = b0 & 0x08 != 0; // B
    if inter_picture || !begin {
        return false;
    }
    // With L (layer indices) present, only spatial layer 0 starts a key frame.
    if b0 & 0x20 != 0 {
        let mut i = 1;
        if b0 & 0x80 != 0 {
            let Some(&m) = p.get(i) else { return false };
            i += if m & 0x80 != 0 { 2 } else { 1 };
        }
        let Some(&l) = p.get(i) else { return false };
        return (l >> 1) & 0x07 == 0;
    }
    true
}

/// RFC 6184: an IDR slice (5) or SPS (7) in a single NAL unit, STAP-A, or the start of a FU-A.
fn h264_key_frame(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    match b0 & 0x1f {
        5 | 7 => true,
        24 => {
            // STAP-A: [2-byte size][NAL] ...
            let mut i = 1;
            while i + 2 < p.len() {
                let size = usize::from(u16::from_be_bytes([p[i], p[i + 1]]));
                let Some(&nal) = p.get(i + 2) else { return false };
                if matches!(nal & 0x1f, 5 | 7) {
                    return true;
                }
                i += 2 + size;
            }
            false
        }
        28 => {
            let Some(&fu) = p.get(1) else { return false };
            fu & 0x80 != 0 && matches!(fu & 0x1f, 5 | 7)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_key_and_delta() {
        // S=1, PID=0, no X; payload header byte 0x10 -> P=0 (key frame).
        assert!(is_key_frame(KeyFrameCodec::Vp8, &[0x10, 0x10, 0x02, 0x00]));
        assert!(!is_key_frame(KeyFrameCodec::Vp8, &[0x10, 0x11, 0x02, 0x00]));
        // X with I (15-bit picture id).
        assert!(is_key_frame(KeyFrameCodec::Vp8, &[0x90, 0x80, 0x81, 0x23, 0x10]));
        // Not the start of a partition.
        assert!(!is_key_frame(KeyFrameCodec::Vp8, &[0x00, 0x10]));
        assert!(!is_key_frame(KeyFrameCodec::Vp8, &[]));
        assert!(!is_key_frame(KeyFrameCodec::Vp8, &[0x90]));
    }

    #[test]
    fn h264_idr_sps_stapa_fua() {
        assert!(is_key_frame(KeyFrameCodec::H264, &[0x65, 0x88]));
        assert!(is_key_frame(KeyFrameCodec::H264, &[0x67, 0x42]));
        assert!(!is_key_frame(KeyFrameCodec::H264, &[0x41, 0x9a]));
        assert!(is_key_frame(KeyFrameCodec::H264, &[0x18, 0x00, 0x02, 0x67, 0x42]));
        assert!(is_key_frame(KeyFrameCodec::H264, &[0x7c, 0x85]));
        assert!(!is_key_frame(KeyFrameCodec::H264, &[0x7c, 0x05]));
        assert!(!is_key_frame(KeyFrameCodec::H264, &[0x18, 0xff]));
    }

    #[test]
    fn vp9_flags() {
        assert!(is_key_frame(KeyFrameCodec::Vp9, &[0x08]));
        assert!(!is_key_frame(KeyFrameCodec::Vp9, &[0x48]));
        assert!(!is_key_frame(KeyFrameCodec::Vp9, &[0x00]));
    }
}
