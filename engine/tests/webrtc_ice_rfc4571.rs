//! RFC 4571 framing for ICE-TCP: frames split across pushes, many frames in one push, a full
//! buffer, and round trips through the encoder.

use shardsfu_engine::webrtc::framing::{
    encode_frame, frame_header, Rfc4571Decoder, RFC4571_BUFFER_LEN, RFC4571_FRAME_LEN_MAX,
};

fn frames() -> Vec<Vec<u8>> {
    vec![b"hello".to_vec(), vec![], vec![0xab; 1200], (0..=255u8).collect(), vec![7; 3]]
}

fn stream(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut s = Vec::new();
    for f in frames {
        let mut buf = vec![0u8; f.len() + 2];
        let n = encode_frame(f, &mut buf).unwrap();
        s.extend_from_slice(&buf[..n]);
    }
    s
}

/// Feeds `stream` in chunks of `chunk` bytes, popping after each push.
fn decode_chunked(stream: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let mut d = Rfc4571Decoder::new();
    let mut got = Vec::new();
    for piece in stream.chunks(chunk) {
        let mut rest = piece;
        while !rest.is_empty() {
            let n = d.push(rest);
            rest = &rest[n..];
            while let Some(f) = d.pop() {
                got.push(f.to_vec());
            }
        }
    }
    assert_eq!(d.buffered(), 0);
    got
}

#[test]
fn frames_split_across_pushes() {
    let fs = frames();
    let s = stream(&fs);
    for chunk in [1, 2, 3, 7, 100, 1201, s.len()] {
        assert_eq!(decode_chunked(&s, chunk), fs, "chunk {chunk}");
    }
}

#[test]
fn header_split_between_pushes() {
    let mut d = Rfc4571Decoder::new();
    assert_eq!(d.push(&[0x00]), 1);
    assert_eq!(d.pop(), None);
    assert_eq!(d.push(&[0x02, b'h']), 2);
    assert_eq!(d.pop(), None);
    assert_eq!(d.push(&[b'i', 0x00]), 2);
    assert_eq!(d.pop(), Some(&b"hi"[..]));
    assert_eq!(d.pop(), None);
    assert_eq!(d.buffered(), 1);
}

#[test]
fn largest_frames_back_to_back() {
    let fs = vec![vec![1u8; RFC4571_FRAME_LEN_MAX], vec![2u8; RFC4571_FRAME_LEN_MAX], vec![3u8; 10]];
    let s = stream(&fs);
    assert_eq!(decode_chunked(&s, 50_000), fs);
    assert_eq!(decode_chunked(&s, s.len()), fs);
}

#[test]
fn full_buffer_takes_only_what_fits() {
    let mut d = Rfc4571Decoder::new();
    let garbage = vec![0xffu8; RFC4571_BUFFER_LEN * 2];
    assert_eq!(d.push(&garbage), RFC4571_BUFFER_LEN);
    assert_eq!(d.push(&garbage), 0);
    assert_eq!(d.pop().map(<[u8]>::len), Some(RFC4571_FRAME_LEN_MAX));
    assert_eq!(d.free(), RFC4571_BUFFER_LEN);
    d.push(&garbage[..10]);
    d.clear();
    assert_eq!(d.buffered(), 0);
}

#[test]
fn encoder_bounds() {
    assert_eq!(frame_header(5).unwrap(), [0, 5]);
    assert!(frame_header(RFC4571_FRAME_LEN_MAX + 1).is_err());
    assert!(encode_frame(b"abc", &mut [0u8; 4]).is_err());
}
