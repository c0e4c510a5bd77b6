//! The read loop allocates nothing per packet: once a reader is open (and, for pcapng, its
//! interfaces are described and each link type was seen once), `next_frame` over every packet — Ethernet copied,
//! other link types given a synthesised header, unsupported ones skipped — runs under a
//! counting global allocator with zero allocations. Likewise `FlowWriter` once warm.

#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::*;
use enforcer::capture::CaptureReader;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Read every remaining frame, counting allocations; returns (frames, allocations).
fn drain_counting<R: std::io::Read>(r: &mut CaptureReader<R>) -> (u64, u64) {
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    let mut n = 0u64;
    let mut sum = 0u64;
    while let Some(f) = r.next_frame().unwrap() {
        n += 1;
        sum += u64::from(f.data[12]);
    }
    COUNTING.store(false, Ordering::Relaxed);
    assert!(sum > 0);
    (n, ALLOCS.load(Ordering::Relaxed))
}

#[test]
fn read_loops_do_not_allocate() {
    // One test function: the counter is global.

    // pcap, Ethernet, a few thousand packets of varied sizes.
    let mut pkts = Vec::new();
    for i in 0..3000u64 {
        let payload = vec![0x55; (i % 1400) as usize];
        let ip = udp4(CLIENT, 1024 + (i % 500) as u16, SERVER, 53, &payload);
        pkts.push((i * 1000, eth(0x0800, [2, 0, 0, 0, 0, 1], &ip)));
    }
    let bytes = pcap(1, &pkts);
    let mut r = CaptureReader::from_reader("eth.pcap", &bytes[..]).unwrap();
    assert_eq!(drain_counting(&mut r), (3000, 0));

    // pcap, raw IP (synthesised headers).
    let raw: Vec<_> = pkts.iter().map(|(t, f)| (*t, f[14..].to_vec())).collect();
    let bytes = pcap(101, &raw);
    let mut r = CaptureReader::from_reader("raw.pcap", &bytes[..]).unwrap();
    assert_eq!(drain_counting(&mut r), (3000, 0));

    // pcapng, interfaces of three link types (one unsupported), packets interleaved.
    let ngp: Vec<NgPacket> = pkts
        .iter()
        .enumerate()
        .map(|(i, (t, f))| match i % 3 {
            0 => NgPacket { iface: 0, units: *t, data: f.clone() },
            1 => NgPacket { iface: 1, units: *t, data: f[14..].to_vec() },
            _ => NgPacket { iface: 2, units: *t, data: f.clone() },
        })
        .collect();
    let bytes = pcapng(
        &[
            NgIface { linktype: 1, tsresol: None },
            NgIface { linktype: 101, tsresol: Some(9) },
            NgIface { linktype: 105, tsresol: None },
        ],
        &ngp,
    );
    let mut r = CaptureReader::from_reader("mixed.pcapng", &bytes[..]).unwrap();
    // Warm up past the interface description blocks (pcap-file parses them into owned
    // values) and the first skipped packet (a new link type is a new map entry).
    for _ in 0..3 {
        assert!(r.next_frame().unwrap().is_some());
    }
    assert_eq!(r.stats().skipped.get(&105), Some(&1));
    assert_eq!(drain_counting(&mut r), (1997, 0));
    assert_eq!(r.stats().skipped.get(&105), Some(&1000));

    // EVE lines through a warm FlowWriter.
    let mut out = Vec::with_capacity(1 << 20);
    let mut fw = enforcer::eve::FlowWriter::new();
    let mut ctx = dpi_core::Ctx::new(dpi_core::Config::default());
    let mut recs = Vec::new();
    for (t, f) in &pkts[..200] {
        ctx.handle_timeout(dpi_core::Time::from_micros(*t));
        ctx.recv_packet(&mut f.clone());
    }
    ctx.flush();
    while let Some(ev) = ctx.poll_event() {
        if let dpi_core::Event::SessionEnd(rec) = ev {
            recs.push(rec);
        }
    }
    assert!(!recs.is_empty());
    fw.write(&mut out, &recs[0]).unwrap();
    out.clear();
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    for rec in &recs {
        fw.write(&mut out, rec).unwrap();
    }
    COUNTING.store(false, Ordering::Relaxed);
    assert_eq!(ALLOCS.load(Ordering::Relaxed), 0);
    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), recs.len());
}
