//! `enforcer run`: the live agent. It wires the run file's workloads, runs the engine on
//! their traffic and writes connection reports until it is told to stop.
//!
//! ```text
//!   run file ─► Daemon ─► Wiring (tap | inline re-plumb + nft steering | iptables NFQUEUE)
//!                 │  PolicyStore (shared by every worker, swapped atomically on change)
//!                 ├─► AF_PACKET workers 0..N: one Ctx each; member i of the service
//!                 │   port's fanout group and of every tap's group    (afp.rs)
//!                 ├─► one NFQUEUE worker per NFQUEUE workload          (nfq.rs)
//!                 ├─► ReportSink: JSON lines to stdout or a file        (sink.rs)
//!                 └─► control socket <state_dir>/control.sock          (control.rs)
//! ```
//!
//! ## Modes and wiring
//!
//! An AF_PACKET workload in Discover or Monitor is watched through a tap port (a copy of
//! its traffic; nothing can be stopped); in Protect its link is re-plumbed through the
//! enforcer's namespace and every frame passes the service port (`vth-neuv`), where the
//! engine forwards or drops it and injects TCP resets. Switching modes re-wires: the link
//! is re-plumbed, the policy store learns the new mode and tag, the new port is attached,
//! and only then is the old tap closed. Connections live across the switch (TCP
//! retransmits what the few milliseconds of re-plumbing lose). An NFQUEUE workload is
//! queued in every mode.
//!
//! ## Stopping, and dying
//!
//! SIGINT or SIGTERM (or `enforcer ctl stop`): every workload is unwired first (inline
//! links are restored to exactly what they were, NFQUEUE rules removed), then the
//! workers end their sessions and write the last reports, and the process exits 0.
//! SIGHUP re-reads the policy file and reopens the report file (log rotation). Workloads can be added and removed while running
//! (`enforcer ctl add|remove`), as containers start and stop.
//!
//! If the process dies without stopping (SIGKILL, a crash):
//! - `fail = "closed"` (default, as NeuVector): inline workloads are cut off — the
//!   steering still sends their frames to a service port nobody reads — until the
//!   enforcer starts again, which restores every workload a previous run left wired
//!   (from the state directory) before wiring anything.
//! - `fail = "open"`: a guard process (`guard.rs`), started with the first inline
//!   workload, sees the enforcer's end of a pipe close and loads the pass-through table
//!   (inline workloads talk directly, uninspected) until the next start.
//! - Tap workloads are unaffected (nothing was changed on their link).
//! - NFQUEUE workloads keep flowing: their rules use `--queue-bypass`, so with no
//!   program bound to the queue the kernel accepts.

pub mod afp;
pub mod clock;
pub mod control;
pub mod guard;
pub mod inject;
pub mod nfq;
pub mod sink;

use crate::config::run_file::{Datapath, FailMode, InlineBackend, RunFile, RunWorkload};
use crate::config::PolicyFile;
use crate::eve::StoreNames;
use crate::wiring::{
    self, BackendChoice, InlinePort, WireKind, Wired, Wiring, WiringConfig, WiringError,
};
use clock::Clock;
use dpi_afpacket::{Fanout, FanoutMode, ServiceConfig, ServicePort, TapConfig, TapPort};
use dpi_core::endpoint::{
    Mode, PolicyConfig, PolicySettings, PolicyStore, WorkloadPolicy, WorkloadSpec,
};
use dpi_core::{Config, Ctx};
use serde::Serialize;
use sink::{Engine, EventPump, ReportSink};
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Stream buffers per engine context, of `STREAM_BUF_BYTES_GSO` each (128 MiB).
const MAX_STREAM_BUFFERS: usize = 512;

/// Commands waiting for a worker before the daemon blocks.
const COMMAND_QUEUE: usize = 64;
/// Fanout group of the service port (per namespace; taps use `TAP_GROUP_BASE + n`).
const SERVICE_GROUP: u16 = 1;
const TAP_GROUP_BASE: u16 = 100;
/// Tag index range of tap workloads (inline tags come from the wiring, from 1 up).
const TAP_TAG_BASE: u16 = 0x8000;
/// Most workloads at once (tap tags `TAP_TAG_BASE + 1 ..`, fanout groups up to 32 866).
const MAX_TAP_SLOT: u16 = 0x7fff;
/// How often the main loop looks at signals and the control socket.
const TICK: Duration = Duration::from_millis(50);

/// Why the daemon could not start or do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The run file.
    #[error(transparent)]
    RunFile(#[from] crate::config::run_file::RunFileError),
    /// The policy file.
    #[error(transparent)]
    Policy(#[from] crate::config::policy_file::PolicyFileError),
    /// A rule names a workload the run file does not have.
    #[error("{file}: rule {id} names workload {name:?}, which the run file does not define")]
    UnknownWorkload {
        /// The policy file.
        file: String,
        /// The rule.
        id: u32,
        /// The name.
        name: String,
    },
    /// Wiring a workload.
    #[error(transparent)]
    Wiring(#[from] WiringError),
    /// Opening a port or queue, the report output, the control socket.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The engine refused the policy.
    #[error("policy: {0}")]
    Store(String),
    /// A control request named no known workload.
    #[error("no workload {0:?}")]
    NoWorkload(String),
    /// A workload to add clashes with a running one.
    #[error("cannot add workload {name:?}: {reason}")]
    Clash {
        /// The workload.
        name: String,
        /// What it clashes with.
        reason: String,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// A workload as the daemon runs it.
#[derive(Debug)]
struct Live {
    cfg: RunWorkload,
    mode: Mode,
    wired: Wired,
    /// Its slot among the running workloads (1 ..= MAX_TAP_SLOT): the tag MAC of its tap
    /// copies and its taps' fanout group derive from it. Freed slots are reused, so
    /// workloads coming and going never run out.
    slot: u16,
    /// Its NFQUEUE worker.
    nfq: Option<NfqHandle>,
}

impl Live {
    /// Tag MAC of its tap copies.
    fn tap_tag(&self) -> [u8; 6] {
        wiring::tag_mac(TAP_TAG_BASE + self.slot).0
    }

    /// Fanout group of its tap ports.
    fn tap_group(&self) -> u16 {
        TAP_GROUP_BASE + self.slot
    }

    /// Fanout groups of its port pair (`vin<i>`, `vex<i>`), in the enforcer namespace
    /// where the only other group is the service port's (1): 2·slot and 2·slot + 1.
    fn pair_groups(&self) -> (u16, u16) {
        (2 * self.slot, 2 * self.slot + 1)
    }
}

#[derive(Debug)]
struct NfqHandle {
    commands: SyncSender<nfq::Command>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<dpi_nfqueue::QueueStats>,
}

#[derive(Debug)]
struct AfpHandle {
    commands: SyncSender<afp::Command>,
    thread: JoinHandle<()>,
}

/// What `status` answers.
#[derive(Debug, Serialize)]
pub struct Status {
    /// Process id.
    pub pid: u32,
    /// AF_PACKET workers.
    pub workers: usize,
    /// Inline steering backend in use, if any inline workload can be wired.
    pub backend: Option<String>,
    /// `closed` or `open`.
    pub fail: &'static str,
    /// The workloads.
    pub workloads: Vec<WorkloadStatus>,
}

/// One workload in [`Status`].
#[derive(Debug, Serialize)]
pub struct WorkloadStatus {
    /// Name.
    pub name: String,
    /// Mode.
    pub mode: &'static str,
    /// `afpacket` or `nfqueue`.
    pub datapath: &'static str,
    /// `tap`, `inline` or `nfqueue`.
    pub wiring: &'static str,
    /// Interface.
    pub iface: String,
    /// Its MAC.
    pub mac: String,
    /// Its addresses.
    pub addrs: Vec<std::net::IpAddr>,
}

/// What `stats` answers.
#[derive(Debug, Serialize)]
pub struct Stats {
    /// Per worker.
    pub workers: Vec<afp::WorkerStats>,
    /// Report lines written.
    pub report_lines: u64,
    /// Report lines lost to write errors.
    pub report_lines_lost: u64,
}

/// The running agent.
#[derive(Debug)]
pub struct Daemon {
    file: RunFile,
    policy: PolicyFile,
    store: Arc<PolicyStore>,
    wiring: Wiring,
    sink: Arc<ReportSink>,
    clock: Clock,
    engine: Config,
    stop_workers: Arc<AtomicBool>,
    afp: Vec<AfpHandle>,
    service_open: bool,
    workloads: BTreeMap<String, Live>,
    guard: Option<guard::Guard>,
    /// The state directory's lock, held for the daemon's life (the kernel releases it
    /// when the process dies, so a crash never leaves it held).
    _lock: std::fs::File,
    /// Set by SIGINT/SIGTERM or `ctl stop`.
    pub stop: Arc<AtomicBool>,
    /// Set by SIGHUP or `ctl reload`.
    pub reload: Arc<AtomicBool>,
}

fn policy_of(file: &RunFile) -> Result<PolicyFile, RunError> {
    let policy = match &file.policy {
        Some(p) => PolicyFile::load(p)?,
        None => PolicyFile::from_rules(vec![]),
    };
    let unknown = policy.unknown_workloads(|n| file.get(n).is_some());
    if let Some((id, name)) = unknown.first() {
        return Err(RunError::UnknownWorkload {
            file: file.policy.as_deref().unwrap_or(Path::new("policy")).display().to_string(),
            id: *id,
            name: name.to_string(),
        });
    }
    Ok(policy)
}

/// Take the state directory's lock (`<state_dir>/lock`, created with the directory, mode
/// 0700). A second enforcer on the same directory would "recover" — undo — the running
/// one's wiring, so it is refused before it touches anything.
fn lock_state_dir(dir: &Path) -> Result<std::fs::File, RunError> {
    use std::os::unix::fs::DirBuilderExt;
    let what = format!("state directory {}", dir.display());
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(what.clone()))?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .map_err(io_err(what.clone()))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(RunError::Io {
            what,
            source: std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another enforcer is running with this state directory",
            ),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(io_err(what)(e)),
    }
}

impl Daemon {
    /// Start: recover what a previous run left, open the reports, start the workers and
    /// wire every workload of `file`. On an error, whatever was wired is unwired again.
    pub fn start(file: RunFile) -> Result<Daemon, RunError> {
        let policy = policy_of(&file)?;
        let lock = lock_state_dir(&file.state_dir)?;
        let (wiring, log) = Wiring::open(WiringConfig {
            state_dir: file.state_dir.clone(),
            backend: match file.inline_backend {
                InlineBackend::Auto => BackendChoice::Auto,
                InlineBackend::Nft => BackendChoice::Nft,
                InlineBackend::Tc => BackendChoice::Tc,
            },
            // Steered through the engine while it runs; the guard fails open on death.
            fail_open: false,
            service_gso: file.inline_gso,
            port_pairs: file.inline_pairs,
        })?;
        for line in log {
            eprintln!("enforcer: recovery: {line}");
        }
        let sink = Arc::new(
            ReportSink::open(&file.reports)
                .map_err(io_err(format!("reports {:?}", file.reports)))?,
        );
        let store = PolicyStore::new();
        let clock = Clock::new();
        let seeds = std::collections::hash_map::RandomState::new();
        let engine = Config {
            max_sessions: file.max_sessions,
            report_interval_secs: file.report_interval,
            hash_seed: seeds.hash_one(0xd1ce_u64),
            // Both data paths hand the engine GSO super-frames (inline_gso, NFQUEUE's GSO
            // flag): a buffer must hold one beyond a missing (reordered) one. Same 128 MiB
            // bound as the engine's default 2048 x 64 KiB.
            stream_buffer_bytes: dpi_core::flow::stream::STREAM_BUF_BYTES_GSO,
            max_stream_buffers: MAX_STREAM_BUFFERS,
            ..Config::default()
        };
        let stop_workers = Arc::new(AtomicBool::new(false));
        let mut afp = Vec::with_capacity(file.workers);
        for i in 0..file.workers {
            let (tx, rx) = sync_channel(COMMAND_QUEUE);
            let mut ctx = Ctx::new(Config { worker_id: i as u16, ..engine.clone() });
            ctx.set_policy_store(store.clone());
            let pump = EventPump::new(StoreNames(store.clone()), file.flows);
            let engine = Engine::new(ctx, clock, pump, sink.clone());
            let worker = afp::Worker::new(i, engine, rx, stop_workers.clone());
            let thread = std::thread::Builder::new()
                .name(format!("afpacket-{i}"))
                .spawn(move || worker.run())
                .map_err(io_err("spawning a worker"))?;
            afp.push(AfpHandle { commands: tx, thread });
        }
        let mut d = Daemon {
            policy,
            store,
            wiring,
            sink,
            clock,
            engine,
            stop_workers,
            afp,
            service_open: false,
            workloads: BTreeMap::new(),
            guard: None,
            _lock: lock,
            stop: Arc::new(AtomicBool::new(false)),
            reload: Arc::new(AtomicBool::new(false)),
            file,
        };
        let cfgs = d.file.workloads.clone();
        for w in cfgs {
            if let Err(e) = d.add(w) {
                d.shutdown();
                return Err(e);
            }
        }
        Ok(d)
    }

    /// The state directory's control socket path.
    pub fn control_path(&self) -> PathBuf {
        control::socket_path(&self.file.state_dir)
    }

    /// Serve until stopped: signals, the control socket, reloads. Then shut down.
    pub fn run(mut self) -> Result<(), RunError> {
        let listener = control::Listener::bind(&self.control_path())?;
        eprintln!(
            "enforcer: running: {} workloads, {} workers, control socket {}",
            self.workloads.len(),
            self.afp.len(),
            self.control_path().display()
        );
        while !self.stop.load(Ordering::Relaxed) {
            if self.reload.swap(false, Ordering::Relaxed) {
                // SIGHUP: log rotation moved the report file, the policy file changed.
                if let Err(e) = self.sink.reopen() {
                    eprintln!(
                        "enforcer: cannot reopen the report file, still writing the old one: {e}"
                    );
                }
                match self.reload_policy() {
                    Ok(()) => eprintln!("enforcer: policy reloaded"),
                    Err(e) => eprintln!("enforcer: reload failed, old policy kept: {e}"),
                }
            }
            listener.serve(&mut self, TICK);
        }
        drop(listener);
        self.shutdown();
        Ok(())
    }

    fn wire_kind(w: &RunWorkload, mode: Mode) -> WireKind {
        match w.datapath {
            Datapath::Nfqueue => WireKind::Nfqueue { queue: w.queue.unwrap_or(1) },
            Datapath::Afpacket if mode == Mode::Protect => WireKind::Inline,
            Datapath::Afpacket => WireKind::Tap,
        }
    }

    fn add(&mut self, cfg: RunWorkload) -> Result<(), RunError> {
        let mode = cfg.mode;
        let kind = Self::wire_kind(&cfg, mode);
        let wired = self.wiring.wire(&cfg.name, &cfg.netns, &cfg.iface, kind)?;
        let slot = (1..=MAX_TAP_SLOT)
            .find(|n| self.workloads.values().all(|l| l.slot != *n))
            .ok_or_else(|| RunError::Clash {
                name: cfg.name.clone(),
                reason: format!("{MAX_TAP_SLOT} workloads are running already"),
            })?;
        let live = Live { cfg, mode, wired, slot, nfq: None };
        let name = live.cfg.name.clone();
        self.workloads.insert(name.clone(), live);
        self.update_store()?;
        self.attach(&name)?;
        self.refresh_guard()
    }

    /// Add a workload while running (a container started): checked against the running
    /// ones (name, interface, queue number), wired, attached. On failure nothing of it
    /// stays wired.
    pub fn add_workload(&mut self, mut w: RunWorkload) -> Result<(), RunError> {
        let clash = |reason: String| RunError::Clash { name: w.name.clone(), reason };
        if self.workloads.contains_key(&w.name) {
            return Err(clash("a workload of that name is running".into()));
        }
        if let Some(o) =
            self.workloads.values().find(|l| l.cfg.netns == w.netns && l.cfg.iface == w.iface)
        {
            return Err(clash(format!("workload {:?} has that interface", o.cfg.name)));
        }
        if w.datapath == Datapath::Nfqueue {
            let used: Vec<u16> = self.workloads.values().filter_map(|l| l.cfg.queue).collect();
            match w.queue {
                Some(q) if used.contains(&q) => {
                    return Err(clash(format!("queue {q} is in use")));
                }
                Some(_) => {}
                None => w.queue = (1..=u16::MAX).find(|q| !used.contains(q)),
            }
        }
        let name = w.name.clone();
        self.file.workloads.push(w.clone());
        if let Err(e) = self.add(w) {
            // Undo whatever part was done.
            if let Some(mut l) = self.workloads.remove(&name) {
                self.detach(&name, &mut l);
            }
            let _ = self.wiring.unwire(&name);
            self.file.workloads.retain(|x| x.name != name);
            let _ = self.update_store();
            return Err(e);
        }
        Ok(())
    }

    /// Remove a workload while running (a container stopped): its link is restored (or
    /// its queue rules removed) first, then its ports are closed and the policy store
    /// forgets it.
    pub fn remove_workload(&mut self, name: &str) -> Result<(), RunError> {
        let Some(mut live) = self.workloads.remove(name) else {
            return Err(RunError::NoWorkload(name.into()));
        };
        let unwired = self.wiring.unwire(name);
        self.detach(name, &mut live);
        self.file.workloads.retain(|x| x.name != name);
        self.update_store()?;
        self.refresh_guard()?;
        Ok(unwired?)
    }

    /// Stop reading a workload's ports or queue.
    fn detach(&self, name: &str, live: &mut Live) {
        match live.wired.kind {
            WireKind::Tap => self.remove_taps(name),
            WireKind::Inline => self.remove_pairs(name),
            WireKind::Nfqueue { .. } => {
                if let Some(n) = live.nfq.take() {
                    n.stop.store(true, Ordering::Relaxed);
                    let _ = n.thread.join();
                }
            }
        }
    }

    /// Give the workers the workload's ports (or start its NFQUEUE worker).
    fn attach(&mut self, name: &str) -> Result<(), RunError> {
        let Some(live) = self.workloads.get(name) else {
            return Err(RunError::NoWorkload(name.into()));
        };
        match live.wired.kind {
            WireKind::Tap => {
                let ports = self.open_taps(live)?;
                let workload: Arc<str> = Arc::from(name);
                for (h, port) in self.afp.iter().zip(ports) {
                    let member = afp::TapMember {
                        workload: workload.clone(),
                        mac: live.wired.mac.0,
                        tag: live.tap_tag(),
                        port,
                    };
                    let _ = h.commands.send(afp::Command::AddTap(member));
                }
            }
            WireKind::Inline if self.wiring.port_pairs() => {
                let Some(links) = &live.wired.inline else {
                    return Err(RunError::Store(format!("workload {name}: inline without links")));
                };
                let workload = Arc::<str>::from(name);
                for (h, (vin, vex)) in self.afp.iter().zip(self.open_pairs(live, links)?) {
                    let member = afp::PairMember {
                        workload: workload.clone(),
                        mac: links.mac.0,
                        tag: links.tag.0,
                        vin,
                        vex,
                    };
                    let _ = h.commands.send(afp::Command::AddPair(Box::new(member)));
                }
            }
            WireKind::Inline => self.open_service()?,
            WireKind::Nfqueue { queue } => {
                let h = self.start_nfq(name, queue)?;
                if let Some(l) = self.workloads.get_mut(name) {
                    l.nfq = Some(h);
                }
            }
        }
        Ok(())
    }

    fn open_taps(&self, live: &Live) -> Result<Vec<TapPort>, RunError> {
        let cfg = TapConfig {
            fanout: Some(Fanout {
                group_id: live.tap_group(),
                mode: FanoutMode::Hash,
                defrag: true,
            }),
            ..TapConfig::default()
        };
        let (n, iface) = (self.afp.len(), live.wired.iface.clone());
        let what = format!("workload {}: tap port on {iface}", live.cfg.name);
        let ports = crate::netns::run_in(&live.cfg.netns, move || {
            // Joined in worker order: member i of the group is worker i.
            (0..n).map(|_| TapPort::open(&iface, &cfg)).collect::<Result<Vec<_>, _>>()
        })
        .map_err(io_err(what.clone()))?;
        ports.map_err(|e| RunError::Io { what, source: std::io::Error::other(e.to_string()) })
    }

    /// One port on `vin<i>` and one on `vex<i>` per worker, in fanout groups joined in
    /// worker order, always with GSO passthrough (the containers' offloads are theirs).
    fn open_pairs(
        &self,
        live: &Live,
        links: &InlinePort,
    ) -> Result<Vec<(ServicePort, ServicePort)>, RunError> {
        let (vin, vex) = (&links.vin, &links.vex);
        let (gin, gex) = live.pair_groups();
        let cfg = |group_id| ServiceConfig {
            fanout: (self.afp.len() > 1).then_some(Fanout {
                group_id,
                mode: FanoutMode::Hash,
                defrag: false,
            }),
            vnet_hdr: true,
            ..ServiceConfig::default()
        };
        let open = |iface: &str, group| {
            ServicePort::open(iface, &cfg(group)).map_err(|e| RunError::Io {
                what: format!("workload {}: port on {iface}", live.cfg.name),
                source: std::io::Error::other(e.to_string()),
            })
        };
        (0..self.afp.len()).map(|_| Ok((open(vin, gin)?, open(vex, gex)?))).collect()
    }

    fn remove_pairs(&self, name: &str) {
        if !self.wiring.port_pairs() {
            return;
        }
        let w: Arc<str> = Arc::from(name);
        for h in &self.afp {
            let _ = h.commands.send(afp::Command::RemovePair(w.clone()));
        }
    }

    fn open_service(&mut self) -> Result<(), RunError> {
        if self.service_open {
            return Ok(());
        }
        let cfg = ServiceConfig {
            fanout: (self.afp.len() > 1).then_some(Fanout {
                group_id: SERVICE_GROUP,
                mode: FanoutMode::Hash,
                defrag: false,
            }),
            vnet_hdr: self.wiring.service_gso(),
            ..ServiceConfig::default()
        };
        for h in &self.afp {
            let port =
                ServicePort::open(wiring::SERVICE_IFACE, &cfg).map_err(|e| RunError::Io {
                    what: format!("service port {}", wiring::SERVICE_IFACE),
                    source: std::io::Error::other(e.to_string()),
                })?;
            let _ = h.commands.send(afp::Command::SetService(port));
        }
        self.service_open = true;
        Ok(())
    }

    /// Give the fail-open guard the pass-through script of the links wired now (it names
    /// them, so it changes with every re-wiring); start the guard with the first one.
    fn refresh_guard(&mut self) -> Result<(), RunError> {
        if self.file.fail != FailMode::Open {
            return Ok(());
        }
        let script = self.wiring.fail_open_script().unwrap_or_default();
        match &mut self.guard {
            Some(g) => g.update(&script),
            None if script.is_empty() => Ok(()),
            None => {
                let g =
                    guard::Guard::spawn(&script).map_err(io_err("starting the fail-open guard"))?;
                self.guard = Some(g);
                Ok(())
            }
        }
        .map_err(io_err("updating the fail-open guard"))
    }

    fn start_nfq(&self, name: &str, queue: u16) -> Result<NfqHandle, RunError> {
        let live = &self.workloads[name];
        let what = format!("workload {name}: NFQUEUE {queue}");
        let (q, injector) = crate::netns::run_in(&live.cfg.netns, move || {
            let q = dpi_nfqueue::Queue::open(nfq::queue_config(queue))
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            Ok::<_, std::io::Error>((q, inject::Injector::open()?))
        })
        .and_then(|r| r)
        .map_err(io_err(what))?;
        let mut ctx = Ctx::new(Config {
            worker_id: (self.afp.len() as u16).saturating_add(queue),
            ..self.engine.clone()
        });
        ctx.set_policy_store(self.store.clone());
        let (tx, rx) = sync_channel(COMMAND_QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let pump = EventPump::new(StoreNames(self.store.clone()), self.file.flows);
        let engine = Engine::new(ctx, self.clock, pump, self.sink.clone());
        let worker =
            nfq::Worker::new(name, engine, q, injector, live.wired.mac.0, rx, stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("nfq-{queue}"))
            .spawn(move || worker.run())
            .map_err(io_err("spawning an NFQUEUE worker"))?;
        Ok(NfqHandle { commands: tx, stop, thread })
    }

    /// The engine's view of every workload, compiled and swapped in.
    fn update_store(&self) -> Result<(), RunError> {
        let workloads = self
            .workloads
            .values()
            .map(|l| {
                let mut macs = vec![l.wired.mac.0, l.tap_tag()];
                if let Some(t) = l.wired.tag() {
                    macs.push(t.0);
                }
                let wiring = match l.wired.kind {
                    WireKind::Tap => dpi_core::endpoint::Wiring::Tap,
                    WireKind::Inline | WireKind::Nfqueue { .. } => {
                        dpi_core::endpoint::Wiring::Inline
                    }
                };
                WorkloadPolicy {
                    spec: WorkloadSpec {
                        name: l.cfg.name.clone(),
                        macs,
                        ips: l.wired.addrs.clone(),
                        mode: l.mode,
                        wiring,
                    },
                    rules: self.policy.rules_for(&l.cfg.name),
                }
            })
            .collect();
        let cfg = PolicyConfig {
            settings: PolicySettings {
                apply: self.file.apply,
                unknown: self.file.unknown,
                internal_subnets: self.policy.internal_subnets.clone(),
                ..PolicySettings::default()
            },
            workloads,
            implicit_rules: vec![],
            names: vec![],
        };
        self.store.update(cfg).map(|_| ()).map_err(|e| RunError::Store(e.to_string()))
    }

    /// Re-read the policy file and swap it in.
    pub fn reload_policy(&mut self) -> Result<(), RunError> {
        let old = std::mem::replace(&mut self.policy, policy_of(&self.file)?);
        if let Err(e) = self.update_store() {
            self.policy = old;
            return Err(e);
        }
        Ok(())
    }

    /// Change a workload's mode, re-wiring it when its data path changes.
    pub fn set_mode(&mut self, name: &str, mode: Mode) -> Result<(), RunError> {
        let Some(live) = self.workloads.get_mut(name) else {
            return Err(RunError::NoWorkload(name.into()));
        };
        let old_mode = live.mode;
        let kind = Self::wire_kind(&live.cfg, mode);
        live.mode = mode;
        if kind == live.wired.kind {
            return self.update_store();
        }
        // The link changes, the engine learns the mode and tag, the new port is attached,
        // then the old tap closes.
        let was_tap = live.wired.kind == WireKind::Tap;
        let (netns, iface) = (live.cfg.netns.clone(), live.cfg.iface.clone());
        let wired = match self.wiring.wire(name, &netns, &iface, kind) {
            Ok(w) => w,
            Err(e) => {
                if let Some(l) = self.workloads.get_mut(name) {
                    l.mode = old_mode;
                }
                return Err(e.into());
            }
        };
        if let Some(l) = self.workloads.get_mut(name) {
            l.wired = wired;
        }
        self.update_store()?;
        self.attach(name)?;
        if was_tap {
            self.remove_taps(name);
        } else {
            self.remove_pairs(name);
        }
        self.refresh_guard()
    }

    fn remove_taps(&self, name: &str) {
        let w: Arc<str> = Arc::from(name);
        for h in &self.afp {
            let _ = h.commands.send(afp::Command::RemoveTap(w.clone()));
        }
    }

    /// What is running.
    pub fn status(&self) -> Status {
        Status {
            pid: std::process::id(),
            workers: self.afp.len(),
            backend: self.wiring.backend().map(|b| format!("{b:?}").to_lowercase()),
            fail: match self.file.fail {
                FailMode::Closed => "closed",
                FailMode::Open => "open",
            },
            workloads: self
                .workloads
                .values()
                .map(|l| WorkloadStatus {
                    name: l.cfg.name.clone(),
                    mode: l.mode.name(),
                    datapath: l.cfg.datapath.name(),
                    wiring: l.wired.kind.name(),
                    iface: l.wired.iface.clone(),
                    mac: l.wired.mac.to_string(),
                    addrs: l.wired.addrs.clone(),
                })
                .collect(),
        }
    }

    /// Counters of every worker (each answers between two turns of its loop).
    pub fn stats(&self) -> Stats {
        let mut replies = Vec::new();
        for h in &self.afp {
            let (tx, rx) = sync_channel(1);
            if h.commands.send(afp::Command::Stats(tx)).is_ok() {
                replies.push(rx);
            }
        }
        for l in self.workloads.values() {
            if let Some(n) = &l.nfq {
                let (tx, rx) = sync_channel(1);
                if n.commands.send(nfq::Command::Stats(tx)).is_ok() {
                    replies.push(rx);
                }
            }
        }
        let workers = replies
            .into_iter()
            .filter_map(|rx| rx.recv_timeout(Duration::from_secs(2)).ok())
            .collect();
        Stats { workers, report_lines: self.sink.written(), report_lines_lost: self.sink.lost() }
    }

    /// Unwire everything, then stop the workers (they end their sessions and write the
    /// last reports). Errors are printed; every step is tried.
    pub fn shutdown(&mut self) {
        for e in self.wiring.shutdown() {
            eprintln!("enforcer: unwiring: {e}");
        }
        if let Some(g) = self.guard.take() {
            g.disarm();
        }
        self.stop_workers.store(true, Ordering::Relaxed);
        for (name, mut live) in std::mem::take(&mut self.workloads) {
            self.detach(&name, &mut live);
        }
        for h in self.afp.drain(..) {
            drop(h.commands);
            let _ = h.thread.join();
        }
        eprintln!(
            "enforcer: stopped: {} report lines written, {} lost",
            self.sink.written(),
            self.sink.lost()
        );
    }
}

/// `enforcer run --config FILE`: start, serve until a signal or `ctl stop`, shut down.
pub fn run(config: &Path) -> Result<(), RunError> {
    let file = RunFile::load(config)?;
    let d = Daemon::start(file)?;
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, d.stop.clone()).map_err(io_err("signal handler"))?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, d.reload.clone())
        .map_err(io_err("signal handler"))?;
    d.run()
}
