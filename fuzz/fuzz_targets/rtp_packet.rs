//! RTP view: parse anything without panicking; for what parses, iterate the extensions, rebuild
//! them with `ExtensionsBuilder`, rewrite the header (forward, RTX, in place) and check that the
//! result re-parses to the written fields with the same payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shardsfu_engine::rtp::*;

fuzz_target!(|data: &[u8]| {
    let _ = classify(data);
    let Ok(hdr) = parse_rtp(data) else { return };
    assert_eq!(hdr.packet_len(), data.len());
    assert!(hdr.header_len <= data.len());
    assert_eq!(hdr.payload(data).len(), hdr.payload_len);

    // Rebuild the extensions the packet carries (distinct ids, as many as fit).
    let mut ext = ExtensionsBuilder::new();
    let mut seen = [false; 256];
    for (id, value) in hdr.extensions(data) {
        assert_ne!(id, 0);
        if seen[id as usize] {
            continue;
        }
        if ext.push(id, value).is_err() {
            break;
        }
        seen[id as usize] = true;
    }
    let mut with_mid = ext.clone();
    if let Some(mid_id) = (1..=255u8).find(|&i| !seen[i as usize]) {
        let _ = with_mid.push(mid_id, b"mid");
    }

    let fields = HeaderFields {
        payload_type: hdr.payload_type ^ 0x55,
        sequence_number: hdr.sequence_number.wrapping_add(12345),
        timestamp: !hdr.timestamp,
        ssrc: hdr.ssrc.rotate_left(7),
        marker: !hdr.marker,
    };
    let mut head = [0u8; MAX_HEADER_LEN];

    // Forwarding header + shared body.
    let n = write_header(&mut head, data, &hdr, &fields, Some(&with_mid)).expect("fits MAX_HEADER_LEN");
    let mut wire = head[..n].to_vec();
    wire.extend_from_slice(hdr.body(data));
    let h2 = parse_rtp(&wire).expect("written packet parses");
    assert_eq!(HeaderFields::from_header(&h2), fields);
    assert_eq!(h2.payload(&wire), hdr.payload(data));
    assert_eq!(h2.padding_len, hdr.padding_len);
    assert_eq!(h2.csrc_count, hdr.csrc_count);
    for i in 0..hdr.csrc_count as usize {
        assert_eq!(h2.csrc(&wire, i), hdr.csrc(data, i));
    }
    assert!(h2.extensions(&wire).eq(with_mid.iter()));

    // RTX: OSN + payload, no padding.
    let n = write_rtx_header(&mut head, data, &hdr, &fields, Some(&ext)).expect("fits MAX_HEADER_LEN");
    let mut rtx = head[..n].to_vec();
    rtx.extend_from_slice(hdr.payload(data));
    let h3 = parse_rtp(&rtx).expect("rtx packet parses");
    assert!(!h3.padding);
    let p = h3.payload(&rtx);
    assert_eq!(&p[..2], &hdr.sequence_number.to_be_bytes());
    assert_eq!(&p[2..], hdr.payload(data));
    assert!(h3.extensions(&rtx).eq(ext.iter()));

    // In place.
    let mut copy = data.to_vec();
    rewrite_in_place(&mut copy, &hdr, &fields).expect("valid packet");
    let h4 = parse_rtp(&copy).expect("rewritten packet parses");
    assert_eq!(HeaderFields::from_header(&h4), fields);
    assert_eq!(h4.payload(&copy), hdr.payload(data));
});
