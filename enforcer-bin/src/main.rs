//! The `enforcer` command line: `enforcer replay [OPTIONS] FILE...` and
//! `enforcer learn REPORTS... [--out POLICY]`.
//!
//! Subcommands are a clap enum so `run` and `ctl` can join. Exit status:
//! 0 on success (warnings about broken captures allowed), 1 if a file could not be read
//! (every file is still tried and every failure reported) or output failed, 2 on a usage
//! error.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use dpi_core::endpoint::{Mode, PolicyStore, Wiring};
use dpi_core::Config;
use enforcer::config::{PolicyFile, WorkloadsFile};
use enforcer::learn::Learner;
use enforcer::replay::{ReplayError, Replayer};
use enforcer::report;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::sync::Arc;

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
    /// Turn Discover-mode connection reports (EVE JSON lines) into a policy file of
    /// learned allow rules.
    Learn(LearnArgs),
    /// Run the agent: wire the run file's workloads, enforce, report, until SIGINT,
    /// SIGTERM or `enforcer ctl stop` (SIGHUP re-reads the policy file).
    Run(RunArgs),
    /// Talk to a running agent through its control socket.
    Ctl(CtlArgs),
    /// The fail-open guard of `run` (started by it; not for direct use).
    #[command(hide = true)]
    Guard,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The run file (TOML or JSON): workloads, policy file, workers, reports.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

#[derive(Debug, Args)]
struct CtlArgs {
    /// The agent's control socket (default: <state_dir>/control.sock of --config, else
    /// /run/enforcer/control.sock).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Find the socket through this run file's state_dir.
    #[arg(long, value_name = "FILE", conflicts_with = "socket")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    request: CtlRequest,
}

#[derive(Debug, Subcommand)]
enum CtlRequest {
    /// Workloads, modes and wiring (JSON).
    Status,
    /// Worker, port and queue counters (JSON).
    Stats,
    /// Change a workload's mode (re-wires it when the data path changes).
    Mode {
        /// Workload name.
        workload: String,
        /// discover, monitor or protect.
        mode: String,
    },
    /// Add a workload (a container started) and wire it.
    Add {
        /// Workload name.
        name: String,
        /// Its network namespace (`/run/netns/NAME`, `/proc/PID/ns/net`).
        #[arg(long, value_name = "PATH")]
        netns: PathBuf,
        /// Its interface.
        #[arg(long, default_value = "eth0")]
        iface: String,
        /// discover, monitor or protect.
        #[arg(long, default_value = "discover")]
        mode: String,
        /// afpacket or nfqueue.
        #[arg(long, default_value = "afpacket")]
        datapath: String,
        /// NFQUEUE queue number (default: the lowest free from 1).
        #[arg(long)]
        queue: Option<u16>,
    },
    /// Remove a workload (a container stopped): restore its link, forget it.
    Remove {
        /// Workload name.
        name: String,
    },
    /// Re-read the policy file.
    Reload,
    /// Unwire everything and stop.
    Stop,
}

#[derive(Debug, Args)]
struct LearnArgs {
    /// Write the policy to FILE (TOML) instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// EVE JSON lines files with `connection` events (from `enforcer replay --mode
    /// discover` or a live run).
    #[arg(required = true, value_name = "REPORTS")]
    files: Vec<PathBuf>,
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
    /// Police the capture: without --workloads every host is a workload in this mode,
    /// wired inline. Output then includes EVE `alert` (violations) and `connection`
    /// (aggregated reports) events, and flow records carry the decision.
    #[arg(long, value_enum, value_name = "MODE")]
    mode: Option<ModeArg>,
    /// Workloads file (docs/policy.md): names, addresses, modes, wiring.
    #[arg(long, value_name = "FILE")]
    workloads: Option<PathBuf>,
    /// Policy file (docs/policy.md): rules, first match wins.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Capture files (pcap or pcapng, recognised by content).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// A workload mode on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ModeArg {
    Discover,
    Monitor,
    Protect,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Mode {
        match m {
            ModeArg::Discover => Mode::Discover,
            ModeArg::Monitor => Mode::Monitor,
            ModeArg::Protect => Mode::Protect,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay(args) => replay(args),
        Command::Learn(args) => learn(args),
        Command::Run(args) => match enforcer::run::run(&args.config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("enforcer: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Ctl(args) => ctl(args),
        Command::Guard => match enforcer::run::guard::serve(io::stdin().lock()) {
            Ok(what) => {
                eprintln!("enforcer guard: {what}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("enforcer guard: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn ctl(args: CtlArgs) -> ExitCode {
    let socket = match (&args.socket, &args.config) {
        (Some(s), _) => s.clone(),
        (None, Some(c)) => match enforcer::config::run_file::RunFile::load(c) {
            Ok(f) => enforcer::run::control::socket_path(&f.state_dir),
            Err(e) => {
                eprintln!("enforcer: {e}");
                return ExitCode::from(2);
            }
        },
        (None, None) => enforcer::run::control::socket_path(Path::new("/run/enforcer")),
    };
    let req = match &args.request {
        CtlRequest::Status => serde_json::json!({"cmd": "status"}),
        CtlRequest::Stats => serde_json::json!({"cmd": "stats"}),
        CtlRequest::Mode { workload, mode } => {
            serde_json::json!({"cmd": "set_mode", "workload": workload, "mode": mode})
        }
        CtlRequest::Add { name, netns, iface, mode, datapath, queue } => {
            let mut w = serde_json::json!({
                "name": name, "netns": netns, "iface": iface, "mode": mode, "datapath": datapath,
            });
            if let Some(q) = queue {
                w["queue"] = serde_json::json!(q);
            }
            serde_json::json!({"cmd": "add", "workload": w})
        }
        CtlRequest::Remove { name } => serde_json::json!({"cmd": "remove", "workload": name}),
        CtlRequest::Reload => serde_json::json!({"cmd": "reload"}),
        CtlRequest::Stop => serde_json::json!({"cmd": "stop"}),
    };
    match enforcer::run::control::request(&socket, &req.to_string()) {
        Ok(reply) if reply["ok"] == true => {
            if !reply["result"].is_null() {
                let text = serde_json::to_string_pretty(&reply["result"]).unwrap_or_default();
                println!("{text}");
            }
            ExitCode::SUCCESS
        }
        Ok(reply) => {
            eprintln!("enforcer: {}", reply["error"].as_str().unwrap_or("request failed"));
            ExitCode::FAILURE
        }
        Err(e) => {
            let hint = match e.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                    " (is `enforcer run` running with this state directory?)"
                }
                _ => "",
            };
            eprintln!("enforcer: control socket {}: {}{hint}", socket.display(), os_msg(&e));
            ExitCode::FAILURE
        }
    }
}

/// The policy store for a replay, if any policy option was given.
fn policy_store(args: &ReplayArgs) -> Result<Option<Arc<PolicyStore>>, String> {
    if args.mode.is_none() && args.workloads.is_none() && args.policy.is_none() {
        return Ok(None);
    }
    let policy = match &args.policy {
        Some(p) => PolicyFile::load(p).map_err(|e| e.to_string())?,
        None => PolicyFile::from_rules(vec![]),
    };
    let mut cfg = match &args.workloads {
        Some(p) => {
            let wf = WorkloadsFile::load(p).map_err(|e| e.to_string())?;
            let unknown = policy.unknown_workloads(|n| wf.get(n).is_some());
            if let Some((id, name)) = unknown.first() {
                return Err(format!(
                    "{}: rule {id} names workload {name:?}, which {} does not define",
                    args.policy.as_deref().unwrap_or(Path::new("policy")).display(),
                    p.display()
                ));
            }
            enforcer::config::policy_config(&wf, &policy)
        }
        None => {
            let none = WorkloadsFile {
                workloads: vec![],
                apply: Default::default(),
                unknown: Default::default(),
            };
            let mut cfg = enforcer::config::policy_config(&none, &policy);
            let mode = args.mode.map_or(Mode::Discover, Mode::from);
            cfg.settings.implicit_workloads = Some((mode, Wiring::Inline));
            cfg
        }
    };
    if args.workloads.is_some() && args.mode.is_some() {
        // The workloads file sets each workload's mode; --mode applies to hosts it does
        // not list.
        let mode = args.mode.map_or(Mode::Discover, Mode::from);
        cfg.settings.implicit_workloads = Some((mode, Wiring::Inline));
    }
    let store = PolicyStore::new();
    store.update(cfg).map_err(|e| e.to_string())?;
    Ok(Some(store))
}

fn learn(args: LearnArgs) -> ExitCode {
    let mut learner = Learner::default();
    for f in &args.files {
        if let Err(e) = learner.read_file(f) {
            eprintln!("enforcer: {e}");
            return ExitCode::FAILURE;
        }
    }
    let rules = learner.rules();
    let text = PolicyFile::from_rules(rules.clone()).to_toml();
    let written = match &args.out {
        Some(p) => std::fs::write(p, &text).map_err(|e| (p.display().to_string(), e)),
        None => io::stdout().lock().write_all(text.as_bytes()).map_err(|e| ("stdout".into(), e)),
    };
    if let Err((what, e)) = written {
        eprintln!("enforcer: cannot write {what}: {}", os_msg(&e));
        return ExitCode::FAILURE;
    }
    eprintln!(
        "enforcer: {} connection events, {} learned, {} rules",
        learner.events,
        learner.learned,
        rules.len()
    );
    ExitCode::SUCCESS
}

fn replay(args: ReplayArgs) -> ExitCode {
    let mut config = Config::default();
    if let Some(n) = args.max_sessions {
        config.max_sessions = usize::try_from(n).unwrap_or(usize::MAX);
    }
    config.verify_checksums = args.verify_checksums;
    // Replay writes end records only (EVE flow events); start events would be discarded.
    config.session_start_events = false;
    let store = match policy_store(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("enforcer: {e}");
            return ExitCode::from(2);
        }
    };

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
    if let Some(store) = store {
        replayer = replayer.with_policy(store);
    }
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
