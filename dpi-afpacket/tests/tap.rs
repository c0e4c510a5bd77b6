//! Tap port in real namespaces: both directions seen with correct bytes and metadata.

#![allow(clippy::unwrap_used)]

mod common;

use common::{pair, udp_payload, v4, wait_until, MAC1, MAC2};
use dpi_afpacket::{PacketType, TapConfig, TapPort};
use std::net::UdpSocket;
use std::time::Duration;

const N: usize = 20;

/// (outgoing, UDP payload, source MAC, destination MAC, packet type) of a frame.
type Seen = (bool, Vec<u8>, [u8; 6], [u8; 6], PacketType);

#[test]
fn tap_sees_both_directions() {
    if !common::ready() {
        return;
    }
    let (a, b) = pair();
    let mut tap = b.enter(|| TapPort::open("eth0", &TapConfig::default())).unwrap();
    assert_eq!(tap.iface(), "eth0");

    let server = b.enter(|| UdpSocket::bind("10.9.0.2:9000")).unwrap();
    let client = a.enter(|| UdpSocket::bind("10.9.0.1:9001")).unwrap();
    for s in [&server, &client] {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    }
    let mut buf = [0u8; 2048];
    for i in 0..N {
        let req = format!("request {i:02} from a");
        client.send_to(req.as_bytes(), "10.9.0.2:9000").unwrap();
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], req.as_bytes());
        let resp = format!("response {i:02} from b, a little longer");
        server.send_to(resp.as_bytes(), from).unwrap();
        let (n, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], resp.as_bytes());
    }

    // Every UDP 9000/9001 frame the tap saw.
    let mut seen: Vec<Seen> = Vec::new();
    let done = wait_until(Duration::from_secs(2), || {
        tap.poll(Duration::from_millis(20)).unwrap();
        tap.recv(64, |frame, meta| {
            let Some(v) = v4(frame) else { return };
            if v.proto != 17 || ![9000, 9001].contains(&v.dport) {
                return;
            }
            assert_eq!(meta.wire_len as usize, frame.len());
            assert!(!meta.truncated && !meta.copied);
            assert!(
                meta.timestamp.as_secs() > 1_600_000_000,
                "kernel timestamp {:?}",
                meta.timestamp
            );
            let p = udp_payload(frame).unwrap().to_vec();
            let src: [u8; 6] = frame[6..12].try_into().unwrap();
            let dst: [u8; 6] = frame[..6].try_into().unwrap();
            seen.push((meta.is_outgoing(), p, src, dst, meta.pkt_type));
        });
        seen.len() >= 2 * N
    });
    assert!(done, "tap saw {} of {} frames", seen.len(), 2 * N);

    let incoming: Vec<_> = seen.iter().filter(|s| !s.0).collect();
    let outgoing: Vec<_> = seen.iter().filter(|s| s.0).collect();
    assert_eq!(incoming.len(), N);
    assert_eq!(outgoing.len(), N);
    for (i, s) in incoming.iter().enumerate() {
        assert_eq!(s.1, format!("request {i:02} from a").as_bytes());
        assert_eq!((s.2, s.3, s.4), (MAC1, MAC2, PacketType::Host));
    }
    for (i, s) in outgoing.iter().enumerate() {
        assert_eq!(s.1, format!("response {i:02} from b, a little longer").as_bytes());
        assert_eq!((s.2, s.3, s.4), (MAC2, MAC1, PacketType::Outgoing));
    }
    // Nothing more than what was sent (plus ARP/IPv6 noise, filtered above).
    std::thread::sleep(Duration::from_millis(20));
    let mut extra = 0;
    tap.recv(usize::MAX, |f, _| {
        if v4(f).is_some_and(|v| v.proto == 17) {
            extra += 1;
        }
    });
    assert_eq!(extra, 0);

    let c = tap.counters();
    assert!(c.rx_frames >= 2 * N as u64);
    assert_eq!((c.oversize_dropped, c.tx_frames), (0, 0));
    let k = tap.kernel_stats().unwrap();
    assert!(k.packets >= 2 * N as u64, "{k:?}");
    assert_eq!((k.drops, k.freeze_count), (0, 0));
    // Read again: totals, not deltas.
    assert!(tap.kernel_stats().unwrap().packets >= k.packets);
}

#[test]
fn tap_rejects_bad_config_and_unknown_interface() {
    if !common::ready() {
        return;
    }
    let (_a, b) = pair();
    let err = b
        .enter(|| TapPort::open("eth0", &TapConfig { block_size: 1000, ..TapConfig::default() }))
        .unwrap_err();
    assert!(err.to_string().contains("block_size"), "{err}");
    let err = b.enter(|| TapPort::open("nosuch0", &TapConfig::default())).unwrap_err();
    assert!(err.to_string().contains("nosuch0"), "{err}");
}
