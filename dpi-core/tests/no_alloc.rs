//! Steady state allocates nothing: replay a mix of captures once to warm the tables and
//! pools, end every session, then replay the same traffic again (an hour later) under a
//! counting global allocator and require zero allocations in `handle_timeout`,
//! `recv_packet`, `poll_event` and `flush`.

#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

use dpi_core::{Config, Ctx, Time};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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

/// Copies of the pcapgen scenarios: with them alone (no corpus next to the workspace) the
/// replay still passes well over a thousand packets.
const SCENARIO_COPIES: usize = 3;

/// Ethernet frames of every pcapgen scenario ([`SCENARIO_COPIES`] times, an hour apart so
/// every copy starts on tables its predecessor's sessions have left) and of the corpus's
/// classic pcaps (when the corpus is present), on one time line.
fn traffic() -> Vec<(u64, Vec<u8>)> {
    let mut frames = vec![];
    let mut t = 0u64;
    let scenarios = pcapgen::scenarios();
    for copy in 0..SCENARIO_COPIES {
        if copy > 0 {
            t += 3_600_000_000;
        }
        for s in &scenarios {
            let base = s.frames.first().map_or(0, |f| f.ts_micros);
            for f in &s.frames {
                frames.push((t + f.ts_micros - base, f.data.clone()));
            }
            t = frames.last().map_or(t, |f| f.0) + 1_000;
        }
    }
    let corpus =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/ndpi/pcap");
    for name in
        ["1kxun.pcap", "instagram.pcap", "dns_fragmented.pcap", "6in4tunnel.pcap", "iphone.pcap"]
    {
        let Ok(file) = std::fs::File::open(corpus.join(name)) else {
            eprintln!("corpus file {name} missing; using generated traffic only");
            continue;
        };
        let mut r = pcap_file::pcap::PcapReader::new(file).unwrap();
        if r.header().datalink != pcap_file::DataLink::ETHERNET {
            continue;
        }
        let mut base = None;
        while let Some(Ok(p)) = r.next_packet() {
            let ts = p.timestamp.as_micros() as u64;
            let b = *base.get_or_insert(ts);
            frames.push((t + ts.saturating_sub(b), p.data.into_owned()));
        }
        t = frames.last().map_or(t, |f| f.0) + 1_000;
    }
    frames
}

/// Replays and counts session end events (other events, such as application updates,
/// are reported once per endpoint and so differ between passes).
fn replay(ctx: &mut Ctx, frames: &mut [(u64, Vec<u8>)], offset: u64) -> u64 {
    let mut events = 0;
    for (ts, data) in frames.iter_mut() {
        ctx.handle_timeout(Time::from_micros(offset + *ts));
        ctx.recv_packet(data);
        while let Some(e) = ctx.poll_event() {
            events += u64::from(matches!(e, dpi_core::Event::SessionEnd(_)));
        }
    }
    while ctx.flush() > 0 {
        while let Some(e) = ctx.poll_event() {
            events += u64::from(matches!(e, dpi_core::Event::SessionEnd(_)));
        }
    }
    while let Some(e) = ctx.poll_event() {
        events += u64::from(matches!(e, dpi_core::Event::SessionEnd(_)));
    }
    events
}

#[test]
fn steady_state_replay_does_not_allocate() {
    let mut frames = traffic();
    let copy = frames.clone();
    let mut ctx = Ctx::new(Config::default());
    let start = 1_767_225_600_000_000u64;
    let first = replay(&mut ctx, &mut frames, start);
    frames.clone_from(&copy);
    let packets_before = ctx.counters().packets;

    // Whole seconds later, so every timeout falls the same way.
    let later = start + 3_600_000_000 + frames.last().unwrap().0 / 1_000_000 * 1_000_000;
    COUNTING.store(true, Ordering::SeqCst);
    let second = replay(&mut ctx, &mut frames, later);
    COUNTING.store(false, Ordering::SeqCst);

    let allocs = ALLOCS.load(Ordering::SeqCst);
    let packets = ctx.counters().packets - packets_before;
    assert!(packets > 1000, "replayed {packets} packets");
    assert_eq!(first, second, "same traffic, same events");
    assert!(ctx.counters().frags_reassembled > 0 && ctx.counters().tcp_out_of_order > 0);
    assert_eq!(allocs, 0, "{allocs} allocations over {packets} packets in steady state");
}
