//! Criterion micro-benchmarks of the engine: decode, session lookup and insertion, and
//! `recv_packet` end to end. Whole-process comparisons with Suricata and nDPI are in
//! `benches/run_replay_bench.sh` (see README.md).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dpi_benches::{tcp4, udp4, udp6_vlan_ext};
use dpi_core::{packet, Config, Ctx, Time};
use std::hint::black_box;

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    for (name, frame) in [
        ("tcp4_512B", tcp4(1, 1, 512)),
        ("udp4_64B", udp4(1, 64)),
        ("udp6_vlan_hbh_64B", udp6_vlan_ext(1, 64)),
    ] {
        g.bench_function(name, |b| b.iter(|| packet::decode(black_box(&frame), false)));
    }
    g.finish();
}

/// Packets of already-tracked flows, round robin over `n` sessions: the lookup path.
fn session_lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("session_lookup");
    g.throughput(Throughput::Elements(1));
    for n in [1_000u32, 100_000, 500_000] {
        let mut ctx = Ctx::new(Config { max_sessions: n as usize, ..Config::default() });
        ctx.handle_timeout(Time::from_secs(1_000));
        let mut frames: Vec<Vec<u8>> = (0..n).map(|i| udp4(i, 32)).collect();
        for f in &mut frames {
            ctx.recv_packet(f);
        }
        while ctx.poll_event().is_some() {}
        let mut i = 0usize;
        g.bench_function(format!("udp_{n}_sessions"), |b| {
            b.iter(|| {
                let len = frames.len();
                let f = &mut frames[i % len];
                i = i.wrapping_add(7919);
                black_box(ctx.recv_packet(f))
            })
        });
    }
    g.finish();
}

/// First packets of new flows into a full table: insertion plus eviction of the oldest,
/// the steady state of a table under churn.
fn session_insert(c: &mut Criterion) {
    let mut g = c.benchmark_group("session_insert");
    g.throughput(Throughput::Elements(1));
    let n = 65_536u32;
    let mut ctx = Ctx::new(Config { max_sessions: n as usize, ..Config::default() });
    ctx.handle_timeout(Time::from_secs(1_000));
    let mut frames: Vec<Vec<u8>> = (0..4 * n).map(|i| udp4(i, 32)).collect();
    for f in frames.iter_mut().take(n as usize) {
        ctx.recv_packet(f);
    }
    while ctx.poll_event().is_some() {}
    let mut i = n as usize;
    g.bench_function("udp_new_flow_full_table", |b| {
        b.iter(|| {
            let len = frames.len();
            let f = &mut frames[i % len];
            i += 1;
            let a = ctx.recv_packet(f);
            while ctx.poll_event().is_some() {}
            black_box(a)
        })
    });
    g.finish();
}

/// A mixed in-order TCP/UDP/IPv6 stream through a fresh engine per batch.
fn recv_packet(c: &mut Criterion) {
    let mut g = c.benchmark_group("recv_packet");
    let mut frames = Vec::new();
    for flow in 0..256u32 {
        let mut seq = 1u32;
        for _ in 0..8 {
            frames.push(tcp4(flow, seq, 400));
            seq += 400;
        }
        frames.push(udp4(flow, 64));
        frames.push(udp6_vlan_ext(flow, 64));
    }
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("mixed_2560_frames", |b| {
        b.iter_batched(
            || (Ctx::new(Config::default()), frames.clone()),
            |(mut ctx, mut frames)| {
                ctx.handle_timeout(Time::from_secs(1_000));
                for f in &mut frames {
                    black_box(ctx.recv_packet(f));
                }
                while ctx.poll_event().is_some() {}
                ctx
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, decode, session_lookup, session_insert, recv_packet);
criterion_main!(benches);
