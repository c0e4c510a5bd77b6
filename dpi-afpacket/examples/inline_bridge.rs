//! A one-worker inline bridge between two interfaces (a `vin`/`vex` port pair) with the
//! dpi-core engine on every frame: what `benches/afpacket_bench.sh` measures.
//!
//! ```text
//! ip netns exec enf inline_bridge vin vex [--no-engine] [--vnet] [--seconds N] [--stop-file PATH]
//! ```
//!
//! Frames from `vin` leave on `vex` and back, if the engine's `Action` is `Forward`;
//! frames the engine synthesises (`poll_transmit`) leave on the port the triggering frame
//! came in on. `--vnet` opens the ports with `PACKET_VNET_HDR` (GSO super-frames pass
//! whole; transmit offload may stay on in the containers). Stops after N seconds, when PATH exists, or never; then prints the port
//! and engine counters to stderr.

#![allow(clippy::print_stderr)]

use dpi_afpacket::{poll_ready, ServiceConfig, ServicePort, Verdict};
use dpi_core::flow::stream::{STREAM_BUF_BYTES, STREAM_BUF_BYTES_GSO};
use dpi_core::{Action, Config, Ctx, Time};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

struct Args {
    a: String,
    b: String,
    engine: bool,
    vnet: bool,
    seconds: Option<u64>,
    stop_file: Option<PathBuf>,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut pos = Vec::new();
    let (mut engine, mut seconds, mut stop_file) = (true, None, None);
    let mut vnet = false;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--no-engine" => engine = false,
            "--vnet" => vnet = true,
            "--seconds" => {
                let v = it.next().ok_or("--seconds needs a value")?;
                seconds = Some(v.parse::<u64>().map_err(|e| format!("--seconds {v}: {e}"))?);
            }
            "--stop-file" => {
                stop_file = Some(PathBuf::from(it.next().ok_or("--stop-file needs a path")?))
            }
            _ if a.starts_with('-') => return Err(format!("unknown option {a}")),
            _ => pos.push(a),
        }
    }
    match <[String; 2]>::try_from(pos) {
        Ok([a, b]) => Ok(Args { a, b, engine, vnet, seconds, stop_file }),
        Err(_) => Err("usage: inline_bridge IN_IFACE OUT_IFACE [--no-engine] [--vnet] [--seconds N] [--stop-file PATH]".into()),
    }
}

/// Run `ctx` (if any) on one batch from `rx`, forwarding through `tx`.
fn pump(rx: &mut ServicePort, tx: &mut ServicePort, ctx: &mut Option<Ctx>, now: Time) -> usize {
    // Timers advance once per batch: every frame of the batch arrived by `now`.
    if let Some(c) = ctx.as_mut() {
        c.handle_timeout(now);
    }
    let n = rx.recv_to(tx, 256, |frame, _meta| match ctx {
        Some(c) => match c.recv_packet(frame) {
            Action::Forward => Verdict::Forward,
            Action::Drop(_) => Verdict::Drop,
        },
        None => Verdict::Forward,
    });
    if let Some(c) = ctx {
        while let Some(t) = c.poll_transmit() {
            rx.transmit(&t.frame);
        }
        while c.poll_event().is_some() {}
    }
    n
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let cfg = ServiceConfig { vnet_hdr: args.vnet, ..Default::default() };
    let (mut a, mut b) = match (ServicePort::open(&args.a, &cfg), ServicePort::open(&args.b, &cfg))
    {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("inline_bridge: {e}");
            return ExitCode::FAILURE;
        }
    };
    // GSO super-frames need stream buffers that hold one beyond a missing one.
    let big = if args.vnet { STREAM_BUF_BYTES_GSO } else { STREAM_BUF_BYTES };
    let mut ctx =
        args.engine.then(|| Ctx::new(Config { stream_buffer_bytes: big, ..Config::default() }));
    let start = Instant::now();
    let deadline = args.seconds.map(|s| start + Duration::from_secs(s));
    let mut last_check = start;
    loop {
        let now = Instant::now();
        if now.duration_since(last_check) >= Duration::from_millis(100) {
            last_check = now;
            if deadline.is_some_and(|d| now >= d)
                || args.stop_file.as_ref().is_some_and(|p| p.exists())
            {
                break;
            }
            if let Some(c) = ctx.as_mut() {
                c.handle_timeout(Time::from_micros(now.duration_since(start).as_micros() as u64));
                while c.poll_event().is_some() {}
            }
        }
        if !a.ready() && !b.ready() {
            if let Err(e) = poll_ready(&[a.as_fd(), b.as_fd()], Duration::from_millis(100)) {
                eprintln!("inline_bridge: poll: {e}");
                return ExitCode::FAILURE;
            }
        }
        let t = Time::from_micros(Instant::now().duration_since(start).as_micros() as u64);
        pump(&mut a, &mut b, &mut ctx, t);
        pump(&mut b, &mut a, &mut ctx, t);
    }
    for p in [&mut a, &mut b] {
        let k = p.kernel_stats().ok();
        eprintln!("{}: {:?} kernel {:?}", p.iface(), p.counters(), k);
    }
    if let Some(c) = &ctx {
        let k = c.counters();
        eprintln!(
            "engine: {} packets, {} sessions live, inspection stopped: {} (overflow) {} (capture loss); TCP out of order {}, retransmissions {}",
            k.packets,
            c.session_count(),
            k.tcp_bypass_overflow,
            k.tcp_bypass_capture_loss,
            k.tcp_out_of_order,
            k.tcp_retransmissions
        );
    }
    ExitCode::SUCCESS
}
