mod common;

use common::*;

fn echo_roundtrip(bind: &str) {
    let rt = start(config(1));
    let h = rt.handle(0);
    let bind_addr = bind.parse().unwrap();
    let local = call(&h, move |s, io| {
        s.echo_prefix = Some(b"echo:".to_vec());
        let sock = io.bind_udp(bind_addr).unwrap();
        io.local_addr(sock).unwrap()
    });
    assert_ne!(local.port(), 0);
    let client = peer(bind);
    let mut buf = [0u8; 4096];
    for i in 0..20u8 {
        let msg = vec![i; 1 + i as usize * 50];
        client.send_to(&msg, local).unwrap();
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(from, local);
        assert_eq!(&buf[..5], b"echo:");
        assert_eq!(&buf[5..n], &msg[..]);
    }
    wait_load(&h, |l| l.rx_packets == 20 && l.tx_packets == 20);
    rt.shutdown();
}

#[test]
fn echo_over_ipv4_loopback() {
    echo_roundtrip("127.0.0.1:0");
}

#[test]
fn echo_over_ipv6_loopback() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipping");
        return;
    }
    echo_roundtrip("[::1]:0");
}

#[test]
fn oversized_datagram_is_counted_truncated_and_skipped() {
    let rt = start(config(1));
    let h = rt.handle(0);
    let local = call(&h, |s, io| {
        s.echo_prefix = Some(Vec::new());
        let sock = io.bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        io.local_addr(sock).unwrap()
    });
    let client = peer("127.0.0.1:0");
    client.send_to(&[7u8; 3000], local).unwrap();
    client.send_to(b"small", local).unwrap();
    let mut buf = [0u8; 4096];
    let n = client.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"small");
    wait_load(&h, |l| l.rx_truncated == 1 && l.rx_packets == 1);
    assert_eq!(call(&h, |s, _| s.received), 1);
    rt.shutdown();
}

#[test]
fn close_sends_what_was_queued_first_and_unknown_ids_are_harmless() {
    let rt = start(config(1));
    let h = rt.handle(0);
    let receiver = peer("127.0.0.1:0");
    let dest = receiver.local_addr().unwrap();
    call(&h, move |_, io| {
        let sock = io.bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        for _ in 0..3 {
            io.send(sock, dest, b"queued", b"");
        }
        io.close_udp(sock);
        io.close_udp(sock); // unknown now: no-op
        io.send(sock, dest, b"stale", b""); // closed: counted drop
        assert_eq!(io.local_addr(sock), None);
        // The slot is reused with a new generation; the old id stays dead.
        let again = io.bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(again, sock);
        io.send(again, dest, b"live", b"");
    });
    let mut buf = [0u8; 64];
    for _ in 0..3 {
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"queued", "what was queued before close went out");
    }
    let n = receiver.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"live");
    wait_load(&h, |l| l.tx_dropped == 1 && l.tx_packets == 4);
    rt.shutdown();
}

/// Sends `segments` as one UDP GSO message (all but the last of one size) from `sock` to `dest`;
/// false when the kernel refuses GSO.
fn send_gso_train(sock: &std::net::UdpSocket, dest: std::net::SocketAddr, segments: &[Vec<u8>]) -> bool {
    use std::os::fd::AsRawFd;
    sock.connect(dest).unwrap();
    let mut train: Vec<u8> = segments.concat();
    let mut iov = libc::iovec { iov_base: train.as_mut_ptr().cast(), iov_len: train.len() };
    let mut control = [0u64; 4];
    // SAFETY: a zeroed msghdr is valid; it points at a live iovec and a control buffer of
    // CMSG_SPACE(2) bytes, where CMSG_FIRSTHDR's header and data are writable.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(2) as usize;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_UDP;
        (*c).cmsg_type = libc::UDP_SEGMENT;
        (*c).cmsg_len = libc::CMSG_LEN(2) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), segments[0].len() as u16);
        libc::sendmsg(sock.as_raw_fd(), &msg, 0) == train.len() as isize
    }
}

#[test]
fn a_gro_train_is_handed_over_as_its_datagrams() {
    let rt = start(config(1));
    let h = rt.handle(0);
    let local = call(&h, |s, io| {
        s.echo_prefix = Some(b"echo:".to_vec());
        let sock = io.bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        io.local_addr(sock).unwrap()
    });
    let client = peer("127.0.0.1:0");
    // Five datagrams of 300 bytes and a short last one, each with its own bytes.
    let segments: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i + 1; if i == 5 { 40 } else { 300 }]).collect();
    if !send_gso_train(&client, local, &segments) {
        eprintln!("no UDP GSO here; skipping");
        rt.shutdown();
        return;
    }
    let mut buf = [0u8; 4096];
    for want in &segments {
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(&buf[..5], b"echo:");
        assert_eq!(&buf[5..n], &want[..], "each datagram of the train, whole and in order");
    }
    assert_eq!(call(&h, |s, _| s.received), 6);
    // Loopback keeps a GSO message whole up to a UDP_GRO socket: one message, six datagrams.
    wait_load(&h, |l| l.rx_packets == 6 && l.rx_gro_trains == 1 && l.rx_bytes == 5 * 300 + 40);
    rt.shutdown();
}
