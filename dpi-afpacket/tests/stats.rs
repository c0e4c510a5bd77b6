//! Kernel ring statistics: a burst into a tiny ring that nobody reads is dropped, and the
//! drops are read back from `PACKET_STATISTICS`.

#![allow(clippy::unwrap_used)]

mod common;

use common::pair;
use dpi_afpacket::{ServiceConfig, ServicePort, TapConfig, TapPort, Verdict};
use std::net::UdpSocket;
use std::time::Duration;

const BURST: u64 = 2000;

#[test]
fn tiny_rings_count_kernel_drops() {
    if !common::ready() {
        return;
    }
    let (a, b) = pair();
    // V3: two 4 KiB blocks; V2: four 2 KiB slots.
    let tap_cfg = TapConfig { block_size: 4096, block_count: 2, ..TapConfig::default() };
    let svc_cfg = ServiceConfig { rx_frames: 4, tx_frames: 4, ..ServiceConfig::default() };
    let (mut tap, mut svc) = b.enter(move || {
        (TapPort::open("eth0", &tap_cfg).unwrap(), ServicePort::open("eth0", &svc_cfg).unwrap())
    });

    let client = a.enter(|| UdpSocket::bind("10.9.0.1:0")).unwrap();
    let payload = [0x5au8; 200];
    for _ in 0..BURST {
        client.send_to(&payload, "10.9.0.2:9999").unwrap();
    }
    // The reader "sleeps": nothing is consumed until the burst is over.
    std::thread::sleep(Duration::from_millis(50));

    let k = tap.kernel_stats().unwrap();
    assert!(k.packets >= BURST, "{k:?}");
    assert!(k.drops > 0, "V3 tiny ring: {k:?}");
    assert!(k.freeze_count > 0, "V3 queue should have frozen: {k:?}");
    let s = svc.kernel_stats().unwrap();
    assert!(s.packets >= BURST && s.drops > 0, "V2 tiny ring: {s:?}");
    assert!(s.drops < s.packets);

    // What was kept is still readable, and reading resumes normally.
    let mut kept = 0;
    tap.recv(usize::MAX, |_, _| kept += 1);
    assert!(kept > 0 && kept < BURST, "{kept}");
    let mut kept2 = 0u64;
    svc.recv(usize::MAX, |_, _| {
        kept2 += 1;
        Verdict::Drop
    });
    assert_eq!(kept2, 4, "a 4-slot ring holds 4 frames");
    assert_eq!(svc.counters().dropped, 4);
    // Totals accumulate across reads.
    assert!(svc.kernel_stats().unwrap().drops >= s.drops);
}
