//! Our RTP view and header writer against `rtc-rtp`: packets it marshals we parse to the same
//! fields, extensions and payload; headers we write it parses to the fields we wrote.

use bytes::Bytes;
use rtc_rtp::header::{Extension, Header, EXTENSION_PROFILE_ONE_BYTE, EXTENSION_PROFILE_TWO_BYTE};
use rtc_rtp::packet::Packet;
use rtc_shared::marshal::{Marshal, Unmarshal};
use shardsfu_engine::rtp::*;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
}

fn their_packet(rng: &mut Lcg) -> Packet {
    let two_byte = rng.next().is_multiple_of(3);
    let with_ext = !rng.next().is_multiple_of(4);
    let mut extensions = Vec::new();
    if with_ext {
        for id in 1..=(1 + rng.next() % 4) as u8 {
            let len = 1 + (rng.next() % if two_byte { 40 } else { 16 }) as usize;
            extensions.push(Extension { id: id + 2, payload: Bytes::from(vec![id; len]) });
        }
    }
    let csrc: Vec<u32> = (0..rng.next() % 3).map(|i| 100 + i).collect();
    let payload: Vec<u8> = (0..rng.next() % 200).map(|i| i as u8).collect();
    Packet {
        header: Header {
            version: 2,
            padding: false,
            extension: with_ext,
            marker: rng.next().is_multiple_of(2),
            payload_type: (rng.next() % 128) as u8,
            sequence_number: rng.next() as u16,
            timestamp: rng.next(),
            ssrc: rng.next(),
            csrc,
            extension_profile: if two_byte { EXTENSION_PROFILE_TWO_BYTE } else { EXTENSION_PROFILE_ONE_BYTE },
            extensions,
            extensions_padding: 0,
        },
        payload: Bytes::from(payload),
    }
}

#[test]
fn we_read_what_rtc_rtp_writes() {
    let mut rng = Lcg(7);
    for _ in 0..1000 {
        let p = their_packet(&mut rng);
        let buf = p.marshal().unwrap();
        let h = parse_rtp(&buf).unwrap();
        assert_eq!(h.marker, p.header.marker);
        assert_eq!(h.payload_type, p.header.payload_type);
        assert_eq!(h.sequence_number, p.header.sequence_number);
        assert_eq!(h.timestamp, p.header.timestamp);
        assert_eq!(h.ssrc, p.header.ssrc);
        assert_eq!(h.csrc_count as usize, p.header.csrc.len());
        for (i, c) in p.header.csrc.iter().enumerate() {
            assert_eq!(h.csrc(&buf, i), Some(*c));
        }
        let exts: Vec<(u8, Vec<u8>)> = h.extensions(&buf).map(|(i, v)| (i, v.to_vec())).collect();
        let want: Vec<(u8, Vec<u8>)> = p.header.extensions.iter().map(|e| (e.id, e.payload.to_vec())).collect();
        assert_eq!(exts, want);
        assert_eq!(h.payload(&buf), &p.payload[..]);
    }
}

#[test]
fn rtc_rtp_reads_what_we_write() {
    let mut rng = Lcg(11);
    let mut head = [0u8; MAX_HEADER_LEN];
    for _ in 0..1000 {
        let p = their_packet(&mut rng);
        let src = p.marshal().unwrap();
        let hdr = parse_rtp(&src).unwrap();
        let mut ext = ExtensionsBuilder::new();
        let n_ext = rng.next() % 4;
        for k in 0..n_ext {
            let id = if rng.next().is_multiple_of(5) { 15 + k as u8 } else { 1 + k as u8 };
            ext.push(id, &vec![k as u8; 1 + (rng.next() % 20) as usize]).unwrap();
        }
        let fields = HeaderFields {
            payload_type: (rng.next() % 128) as u8,
            sequence_number: rng.next() as u16,
            timestamp: rng.next(),
            ssrc: rng.next(),
            marker: rng.next().is_multiple_of(2),
        };
        let n = write_header(&mut head, &src, &hdr, &fields, Some(&ext)).unwrap();
        let mut wire = head[..n].to_vec();
        wire.extend_from_slice(hdr.body(&src));
        let q = Packet::unmarshal(&mut &wire[..]).unwrap();
        assert_eq!(q.header.marker, fields.marker);
        assert_eq!(q.header.payload_type, fields.payload_type);
        assert_eq!(q.header.sequence_number, fields.sequence_number);
        assert_eq!(q.header.timestamp, fields.timestamp);
        assert_eq!(q.header.ssrc, fields.ssrc);
        assert_eq!(q.header.csrc, p.header.csrc);
        let theirs: Vec<(u8, Vec<u8>)> = q.header.extensions.iter().map(|e| (e.id, e.payload.to_vec())).collect();
        let ours: Vec<(u8, Vec<u8>)> = ext.iter().map(|(i, v)| (i, v.to_vec())).collect();
        assert_eq!(theirs, ours);
        assert_eq!(q.payload, p.payload);
    }
}
