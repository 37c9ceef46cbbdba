//! The per-packet path allocates nothing: forwarding RTP to many consumers, answering NACKs and
//! taking receiver reports, counted with a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use shardsfu_engine::core::{ConsumerSpec, NtpClock, PlainSpec, ProducerSpec, Shard, Sink};
use shardsfu_engine::ortc;
use shardsfu_engine::rtp::rtcp;
use shardsfu_engine::rtp_parameters::{
    MediaKind, RtcpFeedback, RtpCodecCapability, RtpCodecParameters, RtpEncodingParameters, RtpParameters,
};
use shardsfu_net::SocketId;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator; only counts on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Counts what leaves; allocates nothing.
#[derive(Default)]
struct CountingSink {
    datagrams: u64,
    bytes: u64,
    /// Last sequence number sent on the first consumer's socket, and retransmissions there.
    first_consumer_seq: u16,
    first_consumer_datagrams: u64,
}

impl<'a> Sink<'a> for CountingSink {
    fn send(&mut self, socket: SocketId, _dest: SocketAddr, head: &[u8], body: &'a [u8]) {
        self.datagrams += 1;
        self.bytes += (head.len() + body.len()) as u64;
        if socket == SocketId(10) && head.len() >= 4 && !(192..=223).contains(&head[1]) {
            self.first_consumer_seq = u16::from_be_bytes([head[2], head[3]]);
            self.first_consumer_datagrams += 1;
        }
    }
}

const CONSUMERS: u64 = 50;
const PRODUCER_SSRC: u32 = 1111;

fn setup(now: Instant) -> Shard {
    let mut shard = Shard::new(now, NtpClock::new(now, SystemTime::now()));
    let vp8 = RtpCodecCapability {
        kind: MediaKind::Video,
        mime_type: "video/VP8".into(),
        preferred_payload_type: None,
        clock_rate: 90000,
        channels: None,
        parameters: None,
        rtcp_feedback: None,
    };
    let caps = ortc::generate_router_rtp_capabilities(&[vp8]).unwrap();
    shard.create_router(1).unwrap();
    let local: SocketAddr = "127.0.0.1:10000".parse().unwrap();
    let plain = |socket: u32, comedia: bool| PlainSpec {
        rtp_socket: SocketId(socket),
        local,
        rtcp_socket: None,
        local_rtcp: None,
        comedia,
        rtcp_mux: true,
    };
    shard.create_plain_transport(now, 1, 2, plain(1, true)).unwrap();
    let mut params = RtpParameters {
        codecs: vec![RtpCodecParameters {
            mime_type: "video/VP8".into(),
            payload_type: 96,
            clock_rate: 90000,
            channels: None,
            parameters: None,
            rtcp_feedback: Some(vec![RtcpFeedback::new("nack", None), RtcpFeedback::new("nack", Some("pli"))]),
        }],
        encodings: Some(vec![RtpEncodingParameters { ssrc: Some(PRODUCER_SSRC), ..Default::default() }]),
        ..Default::default()
    };
    ortc::validate_rtp_parameters(&mut params).unwrap();
    let mapping = ortc::get_producer_rtp_parameters_mapping(&mut params, &caps, 5000).unwrap();
    let consumable = ortc::get_consumable_rtp_parameters(MediaKind::Video, &params, &caps, &mapping).unwrap();
    let spec = ProducerSpec {
        kind: MediaKind::Video,
        rtp_parameters: params,
        rtp_mapping: mapping,
        ext_map: Vec::new(),
        paused: false,
        key_frame_request_delay_ms: 0,
    };
    shard.produce(now, 2, 3, spec).unwrap();
    for i in 0..CONSUMERS {
        let tid = 100 + 2 * i;
        shard.create_plain_transport(now, 1, tid, plain(10 + i as u32, false)).unwrap();
        shard.connect_plain_transport(tid, format!("127.0.0.1:{}", 20000 + i).parse().unwrap(), None).unwrap();
        let rtp_parameters =
            ortc::get_consumer_rtp_parameters(&consumable, &caps, false, true, 7000 + i as u32, 9000 + i as u32)
                .unwrap();
        shard.consume(now, tid, tid + 1, ConsumerSpec { producer: 3, rtp_parameters, paused: false }).unwrap();
    }
    shard
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
    p.extend_from_slice(&PRODUCER_SSRC.to_be_bytes());
    p.extend_from_slice(&[0x10, 0x10]);
    p.resize(1000, 0x5a);
    p
}

#[test]
fn forwarding_nack_answers_and_reports_allocate_nothing() {
    let t0 = Instant::now();
    let mut shard = setup(t0);
    let sender: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut sink = CountingSink::default();
    // Buffers made up front: the network layer owns receive buffers, the core must not need any.
    let mut packets: Vec<Vec<u8>> = (0..600u16).map(rtp).collect();
    let mut nack = [0u8; 64];
    let mut rr = [0u8; 64];
    let block = rtcp::ReportBlock { ssrc: 7001, fraction_lost: 3, ..Default::default() };
    let rr_len = rtcp::write_rr(&mut rr, 2, &[block]).unwrap();
    let consumer_remote: SocketAddr = "127.0.0.1:20000".parse().unwrap();
    let consumer_remote_1: SocketAddr = "127.0.0.1:20001".parse().unwrap();

    // Warm up: the first packets grow the shard's tables (listener learning, fan-out state).
    for p in packets.iter_mut().take(100) {
        shard.handle_datagram(t0, SocketId(1), sender, p, &mut sink);
    }
    // NACK three packets the first consumer really got (answered from the producer's buffer).
    let last = sink.first_consumer_seq;
    let nack_len = rtcp::write_nack(&mut nack, 1, 7000, &[last - 3, last - 2, last - 1]).unwrap();
    let forwarded_before = sink.datagrams;
    let first_before = sink.first_consumer_datagrams;
    let before = allocations();
    for (i, p) in packets.iter_mut().enumerate().skip(100) {
        let now = t0 + Duration::from_micros(i as u64 * 100);
        shard.handle_datagram(now, SocketId(1), sender, p, &mut sink);
        if i % 50 == 0 {
            let mut n = nack;
            shard.handle_datagram(now, SocketId(10), consumer_remote, &mut n[..nack_len], &mut sink);
            let mut r = rr;
            shard.handle_datagram(now, SocketId(11), consumer_remote_1, &mut r[..rr_len], &mut sink);
        }
    }
    let allocated = allocations() - before;
    let forwarded = sink.datagrams - forwarded_before;
    assert!(forwarded >= 500 * CONSUMERS, "every packet went to every consumer: {forwarded}");
    // 500 forwarded plus 3 retransmissions per NACK (10 NACKs) on the first consumer's socket.
    assert_eq!(sink.first_consumer_datagrams - first_before, 500 + 10 * 3, "NACKs answered");
    assert_eq!(allocated, 0, "allocations on the packet path ({forwarded} datagrams out)");
}
