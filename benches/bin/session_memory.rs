//! Measures the memory a session costs: resident set size before and after creating N
//! sessions (UDP flows, then TCP flows with a pending out-of-order segment each, which
//! also takes a stream buffer up to the pool bound).
//!
//! usage: cargo run --release -p dpi-benches --bin session_memory -- [N]   (default 1000000)

use dpi_benches::{tcp4, udp4};
use dpi_core::{Config, Ctx, Time};

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let frames: Vec<Vec<u8>> = (0..n).map(|i| udp4(i, 16)).collect();
    let before_ctx = rss_bytes();
    let mut ctx = Ctx::new(Config { max_sessions: n as usize, ..Config::default() });
    ctx.handle_timeout(Time::from_secs(1_000));
    let empty = rss_bytes();
    for f in &frames {
        let mut f = f.clone();
        ctx.recv_packet(&mut f);
        while ctx.poll_event().is_some() {}
    }
    let full = rss_bytes();
    println!("sessions            {}", ctx.session_count());
    println!(
        "empty engine        {:.1} MiB (hash index sized for {n})",
        (empty - before_ctx) as f64 / 1048576.0
    );
    println!("with sessions       {:.1} MiB", (full - before_ctx) as f64 / 1048576.0);
    println!(
        "bytes per session   {:.0} (slab growth included)",
        (full - empty) as f64 / f64::from(n)
    );
    println!(
        "bytes per session   {:.0} (all-in, index included)",
        (full - before_ctx) as f64 / f64::from(n)
    );
    // A TCP session holding an out-of-order segment takes a 64 KiB stream buffer, from a
    // pool bounded by Config::max_stream_buffers (default 2048 = 128 MiB at most).
    let before_tcp = rss_bytes();
    let mut ctx2 = Ctx::new(Config::default());
    ctx2.handle_timeout(Time::from_secs(1_000));
    for i in 0..4096u32 {
        ctx2.recv_packet(&mut tcp4(i, 1, 100));
        ctx2.recv_packet(&mut tcp4(i, 1001, 100)); // hole at [101, 1001): buffered
        while ctx2.poll_event().is_some() {}
    }
    println!(
        "stream buffers      {} in use (bound {}), {:.1} MiB",
        ctx2.stream_buffers_in_use(),
        ctx2.config().max_stream_buffers,
        (rss_bytes() - before_tcp) as f64 / 1048576.0
    );
}
