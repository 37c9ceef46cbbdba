//! One packet through the sans-IO core to N consumers: parse, listener, producer bookkeeping
//! (stats, NACK tracking, retransmission buffer copy), fan-out with a header rewrite per
//! consumer. The sink only counts, so this is the engine's own cost per packet, without syscalls.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shardsfu_benches::{vp8_capability, vp8_parameters};
use shardsfu_engine::core::{ConsumerSpec, NtpClock, PlainSpec, ProducerSpec, Shard, Sink};
use shardsfu_engine::ortc;
use shardsfu_engine::rtp_parameters::MediaKind;
use shardsfu_net::SocketId;

struct CountingSink {
    datagrams: u64,
    bytes: u64,
}

impl<'a> Sink<'a> for CountingSink {
    #[inline]
    fn send(&mut self, _socket: SocketId, _dest: SocketAddr, head: &[u8], body: &'a [u8]) {
        self.datagrams += 1;
        self.bytes += (head.len() + body.len()) as u64;
    }
}

const INGEST: SocketId = SocketId(1);
const SENDER: &str = "127.0.0.1:40000";

/// A shard with one VP8 producer (NACK on) and `n` consumers on their own transports.
fn shard_with_consumers(n: usize, now: Instant) -> Shard {
    let mut shard = Shard::new(now, NtpClock::new(now, SystemTime::now()));
    add_room(&mut shard, now, 0, n);
    shard
}

/// Room `r`: router, an ingest transport on socket `INGEST + r` with a producer of SSRC
/// `1111 + r`, and `n` consumers of it on their own transports. Object ids are `r`'s own.
fn add_room(shard: &mut Shard, now: Instant, r: u32, n: usize) {
    let vp8 = vp8_capability();
    let caps = ortc::generate_router_rtp_capabilities(&[vp8]).expect("caps");
    let base = 1_000_000 * u64::from(r);
    shard.create_router(base + 1).expect("router");
    let local: SocketAddr = "127.0.0.1:10000".parse().unwrap();
    let plain = |s: u32, comedia: bool| PlainSpec {
        rtp_socket: SocketId(s),
        local,
        rtcp_socket: None,
        local_rtcp: None,
        comedia,
        rtcp_mux: true,
    };
    shard.create_plain_transport(now, base + 1, base + 2, plain(INGEST.0 + r, true)).expect("ingest");
    let mut params = vp8_parameters(1111 + r);
    ortc::validate_rtp_parameters(&mut params).expect("valid");
    let mapping = ortc::get_producer_rtp_parameters_mapping(&mut params, &caps, 5000).expect("mapping");
    let consumable =
        ortc::get_consumable_rtp_parameters(MediaKind::Video, &params, &caps, &mapping).expect("consumable");
    let spec = ProducerSpec {
        kind: MediaKind::Video,
        rtp_parameters: params,
        rtp_mapping: mapping,
        ext_map: Vec::new(),
        paused: false,
        key_frame_request_delay_ms: 0,
    };
    shard.produce(now, base + 2, base + 3, spec).expect("produce");
    for i in 0..n as u64 {
        let tid = base + 100 + 2 * i;
        let socket = 100_000 + r * 100 + i as u32;
        shard.create_plain_transport(now, base + 1, tid, plain(socket, false)).expect("transport");
        shard.connect_plain_transport(tid, format!("127.0.0.1:{}", 20000 + i).parse().unwrap(), None).expect("connect");
        let rtp_parameters =
            ortc::get_consumer_rtp_parameters(&consumable, &caps, false, true, 7000 + i as u32, 9000 + i as u32)
                .expect("consumer params");
        shard
            .consume(now, tid, tid + 1, ConsumerSpec { producer: base + 3, rtp_parameters, paused: false })
            .expect("consume");
    }
}

/// Packet length of the benches below (an RTP header and a 1188-byte payload).
const PACKET_LEN: usize = 1200;

fn packet(seq: u16, ssrc: u32, len: usize) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0x10, 0x10]);
    p.resize(len, 0xab);
    p
}

fn forward(c: &mut Criterion) {
    let mut group = c.benchmark_group("forward");
    group.measurement_time(Duration::from_secs(3));
    for n in [1usize, 10, 100, 500] {
        let now = Instant::now();
        let mut shard = shard_with_consumers(n, now);
        let src: SocketAddr = SENDER.parse().unwrap();
        let mut sink = CountingSink { datagrams: 0, bytes: 0 };
        let mut seq = 0u16;
        let mut buf = packet(0, 1111, PACKET_LEN);
        // Learn the comedia remote and sync consumers on a key frame first.
        shard.handle_datagram(now, INGEST, src, &mut buf, &mut sink);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("one_packet_to_n_consumers", n), &n, |b, _| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                buf[2..4].copy_from_slice(&seq.to_be_bytes());
                shard.handle_datagram(now, INGEST, src, &mut buf, &mut sink);
            })
        });
        assert!(sink.datagrams >= n as u64, "every consumer got packets");
    }
    group.finish();
}

/// Many small rooms on one shard, packets taken in turn by each room's producer: unlike one
/// room, whose state stays in the caches, each packet finds its producer's and consumers' state
/// cold, as on a shard serving many rooms (the retransmission buffers alone are far larger than
/// the caches). Twice: with [`PACKET_LEN`]-byte packets, and with the scaling bench's 1012 bytes
/// (12 + 1000), a length that is not a multiple of 16, as most are: the retransmission buffer's
/// streaming copy handles its last bytes apart (storing them plainly once cost ~470 ns a packet
/// here, invisible with 1200-byte packets).
fn forward_many_rooms(c: &mut Criterion) {
    const PEERS_CONSUMING: usize = 3;
    let mut group = c.benchmark_group("forward");
    group.measurement_time(Duration::from_secs(3));
    let rooms = 400u32;
    for (name, len) in
        [("rooms_of_3_consumers_in_turn", PACKET_LEN), ("rooms_of_3_consumers_in_turn_1012_bytes", 12 + 1000)]
    {
        let now = Instant::now();
        let mut shard = Shard::new(now, NtpClock::new(now, SystemTime::now()));
        for r in 0..rooms {
            add_room(&mut shard, now, r, PEERS_CONSUMING);
        }
        let src: SocketAddr = SENDER.parse().unwrap();
        let mut sink = CountingSink { datagrams: 0, bytes: 0 };
        let mut bufs: Vec<Vec<u8>> = (0..rooms).map(|r| packet(0, 1111 + r, len)).collect();
        for (r, buf) in bufs.iter_mut().enumerate() {
            shard.handle_datagram(now, SocketId(INGEST.0 + r as u32), src, buf, &mut sink);
        }
        let (mut seq, mut r) = (0u16, 0usize);
        group.throughput(Throughput::Elements(PEERS_CONSUMING as u64));
        group.bench_with_input(BenchmarkId::new(name, rooms), &rooms, |b, _| {
            b.iter(|| {
                r += 1;
                if r == bufs.len() {
                    r = 0;
                    seq = seq.wrapping_add(1);
                }
                let buf = &mut bufs[r];
                buf[2..4].copy_from_slice(&seq.to_be_bytes());
                shard.handle_datagram(now, SocketId(INGEST.0 + r as u32), src, buf, &mut sink);
            })
        });
        assert!(sink.datagrams >= u64::from(rooms) * PEERS_CONSUMING as u64, "every consumer got packets");
    }
    group.finish();
}

criterion_group!(benches, forward, forward_many_rooms);
criterion_main!(benches);
