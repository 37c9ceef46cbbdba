//! RFC 4571 decoder under arbitrary chunking: the input's first bytes pick chunk sizes, the rest
//! is the stream. The frames popped must equal a one-shot reference parse of the same stream, and
//! the decoder's byte accounting must hold after every push.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shardsfu_engine::webrtc::framing::{Rfc4571Decoder, RFC4571_BUFFER_LEN, RFC4571_FRAME_LEN_MAX};

/// Frames of `stream` by the obvious parse; the incomplete tail is left out.
fn reference(stream: &[u8]) -> Vec<&[u8]> {
    let mut frames = Vec::new();
    let mut rest = stream;
    while rest.len() >= 2 {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        if rest.len() < 2 + len {
            break;
        }
        frames.push(&rest[2..2 + len]);
        rest = &rest[2 + len..];
    }
    frames
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (sizes, stream) = data.split_at(4);
    let mut decoder = Rfc4571Decoder::new();
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut offset = 0;
    let mut turn = 0;
    let mut popped_bytes = 0;
    while offset < stream.len() {
        // Chunk sizes 1..=4096 cycling through the four size bytes.
        let chunk = (sizes[turn % 4] as usize * 16 + 1).min(stream.len() - offset);
        turn += 1;
        let taken = decoder.push(&stream[offset..offset + chunk]);
        assert!(taken <= chunk);
        offset += taken;
        while let Some(frame) = decoder.pop() {
            assert!(frame.len() <= RFC4571_FRAME_LEN_MAX);
            popped_bytes += 2 + frame.len();
            got.push(frame.to_vec());
        }
        assert!(decoder.buffered() < RFC4571_BUFFER_LEN);
        assert_eq!(popped_bytes + decoder.buffered(), offset);
    }
    let want = reference(stream);
    assert_eq!(got.len(), want.len());
    assert!(got.iter().zip(want).all(|(g, w)| g == w));
});
