//! Service ports inline: c1 — [vin | user-space bridge | vex] — c2, in real namespaces.

#![allow(clippy::unwrap_used)]

mod common;

use common::{build_udp, fix_l4_checksum, v4, wait_until, Bridge, Fnv, Inline, MAC1, MAC2};
use dpi_afpacket::{Checksum, Fanout, ServiceConfig, ServicePort, TxOutcome, Verdict};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T: Option<Duration> = Some(Duration::from_secs(2));

use netns_harness::pseudo_random;

/// Send `data` from c1 to a listener in c2 on `port`; returns (bytes received, hash of
/// them). The sender gives up after `limit`.
fn tcp_transfer(net: &Inline, port: u16, data: Vec<u8>, limit: Duration) -> (usize, u64) {
    let addr: SocketAddr = format!("10.250.0.2:{port}").parse().unwrap();
    let listener = net.c2.enter(move || TcpListener::bind(addr)).unwrap();
    let server = std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(limit)).unwrap();
        let (mut n, mut h, mut buf) = (0, Fnv::default(), vec![0u8; 65536]);
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => {
                    n += k;
                    h.update(&buf[..k]);
                }
            }
        }
        (n, h.0)
    });
    let client = net.c1.enter(move || TcpStream::connect_timeout(&addr, Duration::from_secs(2)));
    match client {
        Ok(mut c) => {
            c.set_write_timeout(Some(limit)).unwrap();
            let _ = c.write_all(&data);
            let _ = c.shutdown(std::net::Shutdown::Write);
        }
        Err(e) => {
            // Unblock the accept so the server thread ends.
            let _ = net.c2.enter(move || TcpStream::connect_timeout(&addr, Duration::from_secs(1)));
            panic!("connect through the bridge failed: {e}");
        }
    }
    server.join().unwrap()
}

#[test]
fn bridge_forwards_filters_and_transmits() {
    if !common::ready() {
        return;
    }
    let t0 = Instant::now();
    let net = Inline::new(None);
    // NeuVector disables transmit offload on the container-side eth0 (and vbr-neuv): the
    // frames reaching the rings then carry full checksums and are at most MTU-sized.
    Inline::offload(&net.c1, false);
    Inline::offload(&net.c2, false);
    let (vin, vex) = net.ports(ServiceConfig::default());
    let not_ready = Arc::new(AtomicU64::new(0));
    let nr = Arc::clone(&not_ready);
    let bridge = Bridge::start(
        vin,
        vex,
        Box::new(move |frame, meta| {
            if meta.checksum == Checksum::NotReady {
                nr.fetch_add(1, Ordering::Relaxed);
            }
            match v4(frame) {
                Some(v) if v.proto == 17 && v.dport == 7777 => Verdict::Drop,
                _ => Verdict::Forward,
            }
        }),
    );

    // UDP: port 7778 passes, port 7777 is dropped by the bridge closure.
    let pass = net.c2.enter(|| UdpSocket::bind("10.250.0.2:7778")).unwrap();
    let blocked = net.c2.enter(|| UdpSocket::bind("10.250.0.2:7777")).unwrap();
    let client = net.c1.enter(|| UdpSocket::bind("10.250.0.1:0")).unwrap();
    pass.set_read_timeout(T).unwrap();
    blocked.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut buf = [0u8; 2048];
    for i in 0..5 {
        let msg = format!("datagram {i}");
        client.send_to(msg.as_bytes(), "10.250.0.2:7777").unwrap();
        client.send_to(msg.as_bytes(), "10.250.0.2:7778").unwrap();
        let (n, from) = pass.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], msg.as_bytes());
        assert_eq!(from.ip().to_string(), "10.250.0.1");
    }
    assert!(blocked.recv_from(&mut buf).is_err(), "a datagram to the dropped port arrived");

    // TCP: 4 MB arrive intact.
    let data = pseudo_random(4 << 20);
    let mut h = Fnv::default();
    h.update(&data);
    let (n, got) = tcp_transfer(&net, 8080, data, Duration::from_secs(2));
    assert_eq!((n, got), (4 << 20, h.0), "TCP transfer through the bridge");

    let (mut vin, mut vex) = bridge.stop();
    let (ci, ce) = (vin.counters(), vex.counters());
    assert_eq!(ci.dropped, 5, "{ci:?}");
    assert!(ci.forwarded > 2000 && ce.tx_frames > 2000, "{ci:?} {ce:?}");
    assert!(ce.forwarded > 100 && ci.tx_frames > 100, "ACKs back: {ce:?} {ci:?}");
    assert_eq!(ci.forwarded, ce.tx_frames + ce.tx_ring_full + ce.tx_errors);
    assert_eq!((ci.copy_frames, ci.oversize_dropped, ci.csum_not_ready), (0, 0, 0));
    assert_eq!(not_ready.load(Ordering::Relaxed), 0);
    let k = vin.kernel_stats().unwrap();
    assert!(k.packets >= ci.rx_frames, "{k:?} {ci:?}");

    // A frame the engine synthesises (here: a UDP datagram "from c1") leaves on vex.
    let sink = net.c2.enter(|| UdpSocket::bind("10.250.0.2:6000")).unwrap();
    sink.set_read_timeout(T).unwrap();
    let payload = b"synthesized by the enforcer";
    let frame = build_udp(MAC1, MAC2, [10, 250, 0, 1], [10, 250, 0, 2], 5555, 6000, payload);
    assert_eq!(vex.transmit(&frame), TxOutcome::Queued);
    assert_eq!(vex.tx_pending(), 1);
    vex.flush();
    let (n, from) = sink.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], payload);
    assert_eq!(from.to_string(), "10.250.0.1:5555");
    eprintln!("inline bridge test: {:?}", t0.elapsed());
}

#[test]
fn jumbo_frames_take_the_copy_path() {
    if !common::ready() {
        return;
    }
    // 9000-byte MTU everywhere, 2 KiB ring slots: every large datagram is oversize for
    // the ring, read whole with recv() and sent with a plain send().
    let net = Inline::new(Some(9000));
    Inline::offload(&net.c1, false);
    Inline::offload(&net.c2, false);
    let (vin, vex) = net.ports(ServiceConfig::default());
    let copied = Arc::new(AtomicU64::new(0));
    let cp = Arc::clone(&copied);
    let bridge = Bridge::start(
        vin,
        vex,
        Box::new(move |frame, meta| {
            if meta.copied {
                assert_eq!(frame.len(), meta.wire_len as usize);
                assert!(!meta.truncated);
                cp.fetch_add(1, Ordering::Relaxed);
            }
            Verdict::Forward
        }),
    );
    let server = net.c2.enter(|| UdpSocket::bind("10.250.0.2:7000")).unwrap();
    let client = net.c1.enter(|| UdpSocket::bind("10.250.0.1:0")).unwrap();
    server.set_read_timeout(T).unwrap();
    let big = pseudo_random(8000);
    let mut buf = vec![0u8; 10000];
    for _ in 0..3 {
        client.send_to(&big, "10.250.0.2:7000").unwrap();
        let (n, _) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &big[..], "8000-byte datagram through 2 KiB slots");
    }
    let (vin, vex) = bridge.stop();
    let (ci, ce) = (vin.counters(), vex.counters());
    assert_eq!(ci.copy_frames, 3, "{ci:?}");
    assert_eq!(copied.load(Ordering::Relaxed), 3);
    assert_eq!((ci.oversize_dropped, ce.tx_errors), (0, 0), "{ci:?} {ce:?}");
}

#[test]
fn gso_frames_with_offload_on_are_copied_and_counted() {
    if !common::ready() {
        return;
    }
    // c1 keeps its default offloads: TCP hands vin partial checksums and GSO super-frames
    // of up to 64 KiB. The bridge completes checksums (so the handshake works) and
    // forwards; a super-frame is read whole through the copy path, but no interface sends
    // a frame above its MTU, so the forward fails and is counted as an error.
    let net = Inline::new(None);
    net.c1.enter(|| assert!(dpi_afpacket::tx_offload("eth0").unwrap()));
    Inline::offload(&net.c2, false);
    let (vin, vex) = net.ports(ServiceConfig::default());
    let big_seen = Arc::new(AtomicBool::new(false));
    let bs = Arc::clone(&big_seen);
    let bridge = Bridge::start(
        vin,
        vex,
        Box::new(move |frame, meta| {
            if meta.checksum == Checksum::NotReady {
                fix_l4_checksum(frame);
            }
            if meta.copied && frame.len() > 1514 {
                assert_eq!(frame.len(), meta.wire_len as usize);
                bs.store(true, Ordering::Relaxed);
            }
            Verdict::Forward
        }),
    );
    let data = pseudo_random(1 << 20);
    let net2 = Arc::new(net);
    let n2 = Arc::clone(&net2);
    let sender =
        std::thread::spawn(move || tcp_transfer(&n2, 8081, data, Duration::from_millis(1500)));
    assert!(
        wait_until(Duration::from_secs(3), || big_seen.load(Ordering::Relaxed)),
        "no GSO frame reached the callback whole"
    );
    let (vin, vex) = bridge.stop();
    let _ = sender.join().unwrap();
    let (ci, ce) = (vin.counters(), vex.counters());
    assert!(ci.csum_not_ready > 0, "{ci:?}");
    assert!(ci.copy_frames > 0, "{ci:?}");
    assert!(ce.tx_errors > 0, "oversize forwards must be counted: {ce:?}");
    assert_eq!(ci.oversize_dropped, 0, "{ci:?}");
}

#[test]
fn vnet_hdr_ports_carry_gso_frames_whole() {
    if !common::ready() {
        return;
    }
    // Offloads stay on at both ends (the kernel default). With PACKET_VNET_HDR the ports
    // see super-frames whole with their offload state and send them on whole; the kernel
    // finishes checksums (and segments, where a device needs it) on the way out.
    // Each port also joins a fanout group (of one): the group's hook then replaces the
    // socket's own, and super-frames leave through the ring-less socket, so only the
    // group's ignore-outgoing flag keeps the port from reading them back and looping.
    let net = Inline::new(None);
    let cfg = |group_id| ServiceConfig {
        vnet_hdr: true,
        fanout: Some(Fanout { group_id, ..Default::default() }),
        ..Default::default()
    };
    let (vin, vex) = net.enf.enter(move || {
        (ServicePort::open("vin", &cfg(301)).unwrap(), ServicePort::open("vex", &cfg(302)).unwrap())
    });
    let largest = Arc::new(AtomicU64::new(0));
    let l2 = Arc::clone(&largest);
    let bridge = Bridge::start(
        vin,
        vex,
        Box::new(move |frame, meta| {
            if let Some(g) = meta.gso {
                assert_eq!(g.kind, dpi_afpacket::GsoKind::TcpV4, "{meta:?}");
                assert!(g.segment_size > 0 && g.segment_size <= 1460, "{g:?}");
                assert_eq!(frame.len(), meta.wire_len as usize);
                l2.fetch_max(frame.len() as u64, Ordering::Relaxed);
            }
            Verdict::Forward
        }),
    );
    let data = pseudo_random(16 << 20);
    let mut h = Fnv::default();
    h.update(&data);
    let (n, got) = tcp_transfer(&net, 8082, data, Duration::from_secs(5));
    assert_eq!((n, got), (16 << 20, h.0), "TCP transfer of GSO frames through the bridge");

    let (mut vin, mut vex) = bridge.stop();
    let (ci, ce) = (vin.counters(), vex.counters());
    assert!(ci.gso_frames > 10, "{ci:?}");
    assert!(largest.load(Ordering::Relaxed) > 1514 * 4, "{ci:?}");
    assert!(ci.csum_not_ready > 0, "{ci:?}");
    assert_eq!((ce.tx_errors, ci.tx_errors, ci.oversize_dropped), (0, 0, 0), "{ci:?} {ce:?}");
    assert_eq!(ci.forwarded, ce.tx_frames + ce.tx_ring_full);
    assert_eq!((ci.outgoing_skipped, ce.outgoing_skipped), (0, 0), "{ci:?} {ce:?}");
    // Nothing looped: about one frame per 64 KiB plus the handshake's, not millions.
    assert!(ci.rx_frames < 20_000, "{ci:?}");

    // An engine-made frame (finished, no offload state) still leaves correctly.
    let sink = net.c2.enter(|| UdpSocket::bind("10.250.0.2:6001")).unwrap();
    sink.set_read_timeout(T).unwrap();
    let payload = b"reset-like frame from the engine";
    let frame = build_udp(MAC1, MAC2, [10, 250, 0, 1], [10, 250, 0, 2], 5556, 6001, payload);
    assert_eq!(vex.transmit(&frame), TxOutcome::Queued);
    vex.flush();
    let mut buf = [0u8; 2048];
    let (n, from) = sink.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], payload);
    assert_eq!(from.to_string(), "10.250.0.1:5556");
    let k = vin.kernel_stats().unwrap();
    assert!(k.packets >= ci.rx_frames, "{k:?} {ci:?}");
}

#[test]
fn service_port_rejects_bad_config() {
    if !common::ready() {
        return;
    }
    let net = Inline::new(None);
    let err = net
        .enf
        .enter(|| {
            dpi_afpacket::ServicePort::open(
                "vin",
                &ServiceConfig { frame_size: 1000, ..Default::default() },
            )
        })
        .unwrap_err();
    assert!(err.to_string().contains("frame_size") && err.to_string().contains("vin"), "{err}");
}
