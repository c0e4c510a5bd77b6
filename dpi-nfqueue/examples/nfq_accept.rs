//! Accept-all NFQUEUE consumer that still pays the engine's real per-packet cost: each
//! packet gets an in-place Ethernet header and goes through `dpi_core::Ctx::recv_packet`
//! (decode, session table, TCP tracking, parsers), then is accepted whatever the engine
//! says. Used by `benches/nfqueue_bench.sh`.
//!
//! ```text
//! nfq_accept [--queue N] [--seconds S] [--stop-file F] [--batch B] [--maxlen L]
//!            [--no-gso] [--no-engine]
//! ```
//!
//! Runs inside the namespace whose iptables rules queue the traffic, for `S` seconds
//! (default 10) or until file `F` exists, then prints one line of counters (`key=value`).

use dpi_core::flow::stream::{STREAM_BUF_BYTES, STREAM_BUF_BYTES_GSO};
use dpi_core::{Action, Config, Ctx, Time};
use dpi_nfqueue::{Queue, QueueConfig, Verdict};
use std::time::{Duration, Instant};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = arg(&args, "--seconds", 10);
    let stop_file: Option<String> =
        args.iter().position(|a| a == "--stop-file").and_then(|i| args.get(i + 1).cloned());
    let cfg = QueueConfig {
        batch: arg(&args, "--batch", 64),
        queue_maxlen: arg(&args, "--maxlen", 4096),
        gso: !args.iter().any(|a| a == "--no-gso"),
        ..QueueConfig::new(arg(&args, "--queue", 0))
    };
    let engine = !args.iter().any(|a| a == "--no-engine");
    let mut queue = Queue::open(cfg)?;
    // GSO super-frames need stream buffers that hold one beyond a missing one.
    let big = if cfg.gso { STREAM_BUF_BYTES_GSO } else { STREAM_BUF_BYTES };
    let mut ctx = Ctx::new(Config { stream_buffer_bytes: big, ..Config::default() });
    eprintln!("nfq_accept: queue {} bound (portid {}), engine={engine}", cfg.num, queue.portid());

    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let (mut forwarded, mut engine_drops) = (0u64, 0u64);
    let mut next_check = start;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if now >= next_check {
            next_check = now + Duration::from_millis(100);
            if stop_file.as_ref().is_some_and(|f| std::path::Path::new(f).exists()) {
                break;
            }
        }
        ctx.handle_timeout(Time::from_micros(start.elapsed().as_micros() as u64));
        queue.recv_batch(cfg.batch, |pkt| {
            if engine {
                let frame = pkt.frame_mut([0x02, 0, 0, 0, 0, 1], [0x02, 0, 0, 0, 0, 2]);
                match ctx.recv_packet(frame) {
                    Action::Forward => forwarded += 1,
                    Action::Drop(_) => engine_drops += 1,
                }
            }
            Verdict::Accept
        })?;
        while ctx.poll_event().is_some() {}
    }
    let s = queue.stats();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "packets={} bytes={} pps={:.0} verdict_msgs={} batch_msgs={} recv_calls={} gso={} \
         enobufs={} malformed={} engine_forward={} engine_drop={} sessions={} secs={:.2}",
        s.packets,
        s.bytes,
        s.packets as f64 / secs,
        s.verdict_msgs,
        s.batch_msgs,
        s.recv_calls,
        s.gso,
        s.enobufs,
        s.malformed,
        forwarded,
        engine_drops,
        ctx.session_count(),
        secs,
    );
    queue.shutdown();
    Ok(())
}
