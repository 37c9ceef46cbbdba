//! Byte-level helpers of the peer: which packets to drop, fingerprints, sequence extension, and
//! the SRTP profile read off a plaintext DTLS 1.2 ServerHello.

use str0m::config::Fingerprint;

use super::SrtpProfile;

/// Is `datagram` RTP (RFC 7983: first byte 128..=191; RFC 5761: not an RTCP packet type) whose
/// (ssrc, seq) is in `drops`? If so, that entry is used up.
pub(super) fn take_drop(drops: &mut Vec<(u32, u16)>, datagram: &[u8]) -> bool {
    if drops.is_empty() || datagram.len() < 12 || !(128..=191).contains(&datagram[0]) {
        return false;
    }
    if (192..=223).contains(&datagram[1]) {
        return false;
    }
    let seq = u16::from_be_bytes([datagram[2], datagram[3]]);
    let ssrc = u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]);
    match drops.iter().position(|&d| d == (ssrc, seq)) {
        Some(i) => {
            drops.swap_remove(i);
            true
        }
        None => false,
    }
}

/// `AB:CD:..`, mediasoup's fingerprint spelling.
pub(super) fn hex_colons(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// str0m checks sha-256 (or sha-1) fingerprints only: take sha-256 when offered.
pub(super) fn pick_fingerprint(fps: &[(&str, &str)]) -> Result<Fingerprint, String> {
    let pick = |alg: &str| fps.iter().find(|(a, _)| a.eq_ignore_ascii_case(alg));
    let (alg, value) = pick("sha-256")
        .or_else(|| pick("sha-1"))
        .ok_or_else(|| format!("no sha-256 or sha-1 fingerprint among {fps:?} (str0m verifies only those)"))?;
    let bytes = value
        .split(':')
        .map(|h| u8::from_str_radix(h, 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|e| format!("fingerprint value '{value}' is not colon-separated hex: {e}"))?;
    Ok(Fingerprint { hash_func: alg.to_ascii_lowercase(), bytes })
}

/// The 64-bit sequence number nearest to `last` whose low 16 bits are `seq`.
pub(super) fn extend_seq(last: Option<u64>, seq: u16) -> u64 {
    let Some(last) = last else { return u64::from(seq) };
    let base = last & !0xffff;
    [base.wrapping_sub(0x1_0000), base, base + 0x1_0000]
        .into_iter()
        .filter(|b| *b <= u64::MAX - 0xffff)
        .map(|b| b + u64::from(seq))
        .min_by_key(|c| c.abs_diff(last))
        .expect("the current ROC is always a candidate")
}

/// The SRTP profile in a plaintext DTLS 1.2 ServerHello's use_srtp extension, if `datagram`
/// carries one. DTLS records: type(1) version(2) epoch(2) seq(6) length(2).
pub(super) fn sniff_server_hello(datagram: &[u8]) -> Option<SrtpProfile> {
    const HANDSHAKE: u8 = 22;
    const SERVER_HELLO: u8 = 2;
    let mut rest = datagram;
    while rest.len() >= 13 {
        let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
        let body = rest.get(13..13 + len)?;
        let epoch = u16::from_be_bytes([rest[3], rest[4]]);
        // Handshake header: type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3).
        if rest[0] == HANDSHAKE && epoch == 0 && body.len() >= 12 && body[0] == SERVER_HELLO {
            let offset = u32::from_be_bytes([0, body[6], body[7], body[8]]);
            let frag_len = u32::from_be_bytes([0, body[9], body[10], body[11]]) as usize;
            if offset == 0 {
                return server_hello_srtp(body.get(12..12 + frag_len)?);
            }
        }
        rest = &rest[13 + len..];
    }
    None
}

/// ServerHello: version(2) random(32) session_id(1+n) cipher_suite(2) compression(1) extensions.
pub(super) fn server_hello_srtp(hello: &[u8]) -> Option<SrtpProfile> {
    const USE_SRTP: u16 = 14;
    let mut i = 34;
    i += 1 + usize::from(*hello.get(i)?);
    i += 3;
    let ext_len = usize::from(u16::from_be_bytes([*hello.get(i)?, *hello.get(i + 1)?]));
    let exts = hello.get(i + 2..i + 2 + ext_len)?;
    let mut j = 0;
    while j + 4 <= exts.len() {
        let typ = u16::from_be_bytes([exts[j], exts[j + 1]]);
        let len = usize::from(u16::from_be_bytes([exts[j + 2], exts[j + 3]]));
        let data = exts.get(j + 4..j + 4 + len)?;
        if typ == USE_SRTP && data.len() >= 4 {
            // profiles length(2), the one chosen profile(2), mki.
            return SrtpProfile::from_id(u16::from_be_bytes([data[2], data[3]]));
        }
        j += 4 + len;
    }
    None
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn extend_seq_follows_wraps_both_ways() {
        assert_eq!(extend_seq(None, 65535), 65535);
        assert_eq!(extend_seq(Some(65535), 0), 65536);
        assert_eq!(extend_seq(Some(65536), 65535), 65535);
        assert_eq!(extend_seq(Some(3), 65535), 65535);
        assert_eq!(extend_seq(Some(70_000), 4465), 70_001);
    }

    #[test]
    fn fingerprint_prefers_sha256_and_parses_hex() {
        let fp = pick_fingerprint(&[("sha-1", "00:01"), ("sha-256", "AB:cd:0F")]).unwrap();
        assert_eq!((fp.hash_func.as_str(), fp.bytes.as_slice()), ("sha-256", &[0xab, 0xcd, 0x0f][..]));
        assert!(pick_fingerprint(&[("sha-512", "00")]).unwrap_err().contains("no sha-256"));
        assert_eq!(hex_colons(&[0xab, 0x01]), "AB:01");
    }
}
