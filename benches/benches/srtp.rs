//! SRTP micro-benchmarks: one unprotect + protect pair per element (what the SFU does per
//! forwarded packet and consumer), 1200-byte RTP packets, for every profile; our in-place
//! `SrtpSession` next to its baseline, `rtc_srtp::context::Context` (allocating), measured in the
//! same run. Target: >= 1,000,000 AEAD_AES_128_GCM pairs per second per core.
//!
//! `cargo bench --bench srtp -- --quick`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rtc_srtp::context::Context;
use rtc_srtp::option::srtp_replay_protection;
use rtc_srtp::protection_profile::ProtectionProfile;
use shardsfu_engine::webrtc::srtp::{SrtpKeys, SrtpProfile, SrtpSession, MAX_SRTP_OVERHEAD_BYTES};

const PACKET_BYTES: usize = 1200;

fn keys(profile: SrtpProfile) -> SrtpKeys {
    SrtpKeys {
        master_key: (0..profile.key_len() as u8).collect(),
        master_salt: (0..profile.salt_len() as u8).map(|b| b ^ 0x5a).collect(),
    }
}

/// A 1200-byte RTP packet: 12-byte header, a one-byte extension block, payload.
fn packet() -> Vec<u8> {
    let mut v =
        vec![0x90, 0x80 | 96, 0, 0, 0, 1, 0x5F, 0x90, 0xDE, 0xAD, 0xBE, 0xEF, 0xbe, 0xde, 0, 1, 0x10, 0x30, 0, 0];
    v.resize(PACKET_BYTES, 0xab);
    v
}

fn reference_profile(profile: SrtpProfile) -> ProtectionProfile {
    match profile {
        SrtpProfile::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
        SrtpProfile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        SrtpProfile::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
    }
}

fn srtp_pairs(c: &mut Criterion) {
    for profile in SrtpProfile::ALL {
        let mut group = c.benchmark_group(format!("srtp_unprotect_protect_1200B/{profile}"));
        group.throughput(Throughput::Elements(1));

        let keys = keys(profile);
        let mut plain = packet();
        let mut wire = vec![0u8; PACKET_BYTES + MAX_SRTP_OVERHEAD_BYTES];
        let mut out = vec![0u8; PACKET_BYTES + MAX_SRTP_OVERHEAD_BYTES];

        // Ours: a producer-side session unprotects in place, a consumer-side one protects into a
        // pooled buffer. The sender that produced the inbound packet is outside the measurement.
        {
            let mut remote_sender = SrtpSession::new(profile, &keys).unwrap();
            let mut inbound = SrtpSession::new(profile, &keys).unwrap();
            let mut outbound = SrtpSession::new(profile, &keys).unwrap();
            let mut seq = 0u16;
            group.bench_function("shardsfu", |b| {
                b.iter_batched_ref(
                    || {
                        seq = seq.wrapping_add(1);
                        plain[2..4].copy_from_slice(&seq.to_be_bytes());
                        let len = remote_sender.protect_rtp(&plain, &mut wire).unwrap();
                        wire[..len].to_vec()
                    },
                    |received| {
                        let plain_len = inbound.unprotect_rtp(black_box(received)).unwrap();
                        let len = outbound.protect_rtp(&received[..plain_len], &mut out).unwrap();
                        black_box(len)
                    },
                    criterion::BatchSize::SmallInput,
                )
            });
        }

        // rtc-srtp: allocates the output of every call.
        {
            let provider = rtc_srtp::crypto::default_provider().unwrap();
            let context = |replay: bool| {
                Context::new(
                    &keys.master_key,
                    &keys.master_salt,
                    reference_profile(profile),
                    replay.then(|| srtp_replay_protection(64)),
                    None,
                    provider.crypto(),
                )
                .unwrap()
            };
            let mut remote_sender = context(false);
            let mut inbound = context(true);
            let mut outbound = context(false);
            let mut seq = 0u16;
            group.bench_function("rtc-srtp", |b| {
                b.iter_batched_ref(
                    || {
                        seq = seq.wrapping_add(1);
                        plain[2..4].copy_from_slice(&seq.to_be_bytes());
                        remote_sender.encrypt_rtp(&plain).unwrap().to_vec()
                    },
                    |received| {
                        let decrypted = inbound.decrypt_rtp(black_box(received)).unwrap();
                        let protected = outbound.encrypt_rtp(&decrypted).unwrap();
                        black_box(protected.len())
                    },
                    criterion::BatchSize::SmallInput,
                )
            });
        }
        group.finish();
    }
}

criterion_group!(benches, srtp_pairs);
criterion_main!(benches);
