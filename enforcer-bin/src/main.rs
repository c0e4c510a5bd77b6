//! The `enforcer` command line: `enforcer replay [OPTIONS] FILE...`.
//!
//! Subcommands are a clap enum so `run`, `learn` and `ctl` can join `replay`. Exit status:
//! 0 on success (warnings about broken captures allowed), 1 if a file could not be read
//! (every file is still tried and every failure reported) or output failed, 2 on a usage
//! error.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use dpi_core::Config;
use enforcer::replay::{ReplayError, Replayer};
use enforcer::report;
use indicatif::{ProgressBar, ProgressStyle};

/// Size of the record writer's buffer.
const OUT_BUFFER: usize = 1 << 20;

/// Inputs larger than this get a progress bar (when stderr is a terminal).
const PROGRESS_MIN_BYTES: u64 = 20 << 20;

/// Container network enforcer (NeuVector-style DPI data plane).
#[derive(Debug, Parser)]
#[command(name = "enforcer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay pcap/pcapng files through the engine and write session records as EVE JSON.
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// Write records to FILE instead of stdout.
    #[arg(long, value_name = "FILE", conflicts_with = "no_records")]
    out: Option<PathBuf>,
    /// Write no records (measure the engine alone).
    #[arg(long)]
    no_records: bool,
    /// Print a statistics table to stderr at the end.
    #[arg(long)]
    stats: bool,
    /// Write the statistics as a JSON object to FILE.
    #[arg(long, value_name = "FILE")]
    stats_json: Option<PathBuf>,
    /// Sessions tracked at once per file (default 524288).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_sessions: Option<u64>,
    /// Verify IPv4 header and TCP/UDP/ICMP checksums (a wrong one is a drop).
    #[arg(long)]
    verify_checksums: bool,
    /// Capture files (pcap or pcapng, recognised by content).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay(args) => replay(args),
    }
}

fn replay(args: ReplayArgs) -> ExitCode {
    let mut config = Config::default();
    if let Some(n) = args.max_sessions {
        config.max_sessions = usize::try_from(n).unwrap_or(usize::MAX);
    }
    config.verify_checksums = args.verify_checksums;
    // Replay writes end records only (EVE flow events); start events would be discarded.
    config.session_start_events = false;

    let mut out: Option<Box<dyn Write>> = if args.no_records {
        None
    } else if let Some(path) = &args.out {
        match File::create(path) {
            Ok(f) => Some(Box::new(BufWriter::with_capacity(OUT_BUFFER, f))),
            Err(e) => {
                eprintln!("enforcer: cannot create {}: {}", path.display(), os_msg(&e));
                return ExitCode::FAILURE;
            }
        }
    } else {
        Some(Box::new(BufWriter::with_capacity(OUT_BUFFER, io::stdout().lock())))
    };

    let total: u64 =
        args.files.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let bar = (io::stderr().is_terminal() && total > PROGRESS_MIN_BYTES).then(|| {
        let style = ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        ProgressBar::new(total).with_style(style)
    });
    let tick = |n: u64| {
        if let Some(b) = &bar {
            b.inc(n);
        }
    };
    let say = |msg: &str| match &bar {
        Some(b) => b.suspend(|| eprintln!("{msg}")),
        None => eprintln!("{msg}"),
    };

    let mut failed = false;
    let mut output_error: Option<io::Error> = None;
    let mut replayer = Replayer::new(config).with_progress(&tick);
    if let Some(w) = out.as_deref_mut() {
        replayer = replayer.with_records(w);
    }
    for path in &args.files {
        if let Some(b) = &bar {
            b.set_message(path.display().to_string());
        }
        match replayer.replay_file(path) {
            Ok(rep) => {
                if let Some(w) = &rep.warning {
                    say(&format!("enforcer: warning: {w}"));
                }
            }
            Err(ReplayError::Output(e)) => {
                output_error = Some(e);
                break;
            }
            Err(e) => {
                failed = true;
                say(&format!("enforcer: {e}"));
            }
        }
    }
    let summary = replayer.into_summary();
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if output_error.is_none() {
        if let Some(w) = out.as_mut() {
            if let Err(e) = w.flush() {
                output_error = Some(e);
            }
        }
    }
    drop(out);

    // A closed pipe (`enforcer replay x.pcap | head`) is a normal way to stop reading.
    let output_failed = match &output_error {
        Some(e) if e.kind() == io::ErrorKind::BrokenPipe => false,
        Some(e) => {
            eprintln!("enforcer: cannot write records: {}", os_msg(e));
            true
        }
        None => false,
    };

    if args.stats {
        let mut err = io::stderr().lock();
        let _ = report::write_table(&mut err, &summary);
    }
    if let Some(path) = &args.stats_json {
        let r = report::StatsReport::new(&summary);
        let res = File::create(path).and_then(|f| {
            let mut w = BufWriter::new(f);
            serde_json::to_writer_pretty(&mut w, &r)?;
            w.write_all(b"\n")?;
            w.flush()
        });
        if let Err(e) = res {
            eprintln!("enforcer: cannot write {}: {}", path.display(), os_msg(&e));
            failed = true;
        }
    }
    if failed || output_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// An I/O error's message without the "(os error N)" suffix.
fn os_msg(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
