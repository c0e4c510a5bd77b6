//! # wiring: putting workloads on the data path, and taking them off again
//!
//! A workload is a network namespace and one of its interfaces. It is wired in one of
//! three ways (`reference/datapath.md` §2, §3.2 and §5):
//!
//! - **tap**: nothing changes in the system; the workload is only recorded, so status
//!   and recovery know it (the engine opens its own tap socket).
//! - **inline**: NeuVector's re-plumbing. The workload's interface `I` is moved into the
//!   enforcer's namespace as `vex<i>`; a new veth pair `I`/`vin<i>` takes its place, and
//!   `I` gets the original MAC, MTU, addresses and routes. Steering (the nftables netdev
//!   table of `wiring/nft.rs`, or tc filters where `act_pedit` exists) sends the workload's
//!   unicast IP frames, MAC-tagged with [`tag_mac`], through the shared service pair
//!   `vbr-neuv`/[`SERVICE_IFACE`], where the engine reads and writes them back.
//! - **nfqueue**: iptables(-nft) chains in the workload's namespace queue its traffic to
//!   a netlink queue, with `--queue-bypass`.
//!
//! ```text
//!  workload ns            enforcer ns (the namespace of the thread calling Wiring::open)
//!  I (new, same MAC) ==== vin<i> ─┐ nft: tag src MAC ─► vbr-neuv ==== vth-neuv ◄─► engine
//!                                 │                     vbr-neuv ingress: untag, fwd
//!  (peer of the original) ==== vex<i> (the original I) ─┘ nft: tag dst MAC ─► vbr-neuv
//! ```
//!
//! ## Crash safety
//!
//! Every change is written ahead to the state directory (`wiring/state.rs`): a record per
//! workload with the original interface snapshot and the phase reached. [`Wiring::open`]
//! undoes every record a previous run left, checking the system rather than trusting
//! the phase. Dropping a [`Wiring`] changes nothing (so a crash and a drop look the
//! same); [`Wiring::shutdown`] is the orderly end.
//!
//! All commands run through `nsenter --net=PATH` (`wiring/exec.rs`); the enforcer namespace is
//! held open by a file descriptor taken in [`Wiring::open`], so the `Wiring` may later be
//! used from any thread.

mod error;
mod exec;
mod link;
mod nfqueue;
mod nft;
mod state;
mod tc;

use std::collections::BTreeMap;
use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use error::WiringError;
pub use link::{IfAddr, MacAddr};

use exec::{absolute_ns_path, Ns, NsId};
use link::LinkSnapshot;
use nfqueue::{NfqOptions, NfqRecord};
use state::{InlineRecord, Phase, Record, StateDir, WiringRecord};

/// `SO_MARK` of the packets the enforcer sends itself into a workload's namespace (the
/// resets of the NFQUEUE path): the queue rules return them unqueued. "NVrs".
pub const INJECT_MARK: u32 = 0x4e56_7273;

/// The service interface the engine reads and writes (an AF_PACKET ring on it).
pub const SERVICE_IFACE: &str = "vth-neuv";
/// The enforcer-side peer of [`SERVICE_IFACE`], where the steering sends frames.
const SERVICE_BRIDGE: &str = "vbr-neuv";
/// The name errors and commands use for shared state (service pair, table).
const ENFORCER: &str = "enforcer";
/// The scratch veth pair of the backend probes.
const PROBE_A: &str = "enfprobe0";
const PROBE_B: &str = "enfprobe1";

/// The MAC a workload's frames carry through the service port: `4e:65:75:56:HH:LL`
/// ("NeuV" and the inline index, big-endian), so the two passes of a frame between two
/// inline workloads can be told apart on the one shared port.
pub fn tag_mac(index: u16) -> MacAddr {
    let [h, l] = index.to_be_bytes();
    MacAddr([0x4e, 0x65, 0x75, 0x56, h, l])
}

/// Which inline steering backend to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// nftables netdev when its `fwd` works, else tc when `act_pedit` works, else none
    /// (inline wiring then fails with the reasons).
    Auto,
    /// nftables netdev; [`Wiring::open`] fails if it does not work here.
    Nft,
    /// tc `u32` + `pedit` + `mirred`; [`Wiring::open`] fails if `act_pedit` is missing.
    Tc,
}

/// The inline steering backend in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// `table netdev enforcer` (`wiring/nft.rs`).
    Nft,
    /// tc ingress filters (`wiring/tc.rs`).
    Tc,
}

/// How to open a [`Wiring`].
#[derive(Clone, Debug)]
pub struct WiringConfig {
    /// Where the per-workload records live (created with mode 0700).
    pub state_dir: PathBuf,
    /// The inline backend.
    pub backend: BackendChoice,
    /// Start with inline workloads forwarded uninspected (see [`Wiring::set_fail_open`]).
    pub fail_open: bool,
    /// Leave transmit offload on on `vbr-neuv`: the service port is opened with
    /// `PACKET_VNET_HDR` and carries GSO super-frames whole. False: offload off, the kernel
    /// segments and checksums before the service port (NeuVector's way).
    pub service_gso: bool,
    /// Port pairs: the engine reads and writes each inline workload's `vin<i>`/`vex<i>`
    /// itself and the steering only drops (nftables backend only). False: NeuVector's
    /// shared service port.
    pub port_pairs: bool,
}

/// How a workload is wired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireKind {
    /// Recorded only; the system is not changed.
    Tap,
    /// Re-plumbed through the service port.
    Inline,
    /// iptables NFQUEUE rules to `queue`, with `--queue-bypass`.
    Nfqueue {
        /// The queue number.
        queue: u16,
    },
}

impl WireKind {
    /// Lowercase name (`tap`, `inline`, `nfqueue`), as state records and status show it.
    pub const fn name(self) -> &'static str {
        match self {
            WireKind::Tap => "tap",
            WireKind::Inline => "inline",
            WireKind::Nfqueue { .. } => "nfqueue",
        }
    }
}

/// A wired workload's facts, for registering it with the engine.
#[derive(Clone, Debug)]
pub struct Wired {
    /// The workload's name.
    pub name: String,
    /// Its network namespace (as given, `/proc/self` made absolute).
    pub netns: PathBuf,
    /// Its interface (the same name after inline wiring).
    pub iface: String,
    /// The interface's MAC (kept by inline wiring).
    pub mac: MacAddr,
    /// Its links and tag in the enforcer namespace, when inline.
    pub inline: Option<InlinePort>,
    /// Its addresses, IPv4 and IPv6, link-local included.
    pub addrs: Vec<IpAddr>,
    /// How it is wired.
    pub kind: WireKind,
}

impl Wired {
    /// The tag its frames carry through the engine, when inline.
    pub fn tag(&self) -> Option<MacAddr> {
        self.inline.as_ref().map(|p| p.tag)
    }
}

/// An inline workload's links in the enforcer namespace, as the steering (nft, tc) and the
/// daemon's port pairs see them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlinePort {
    /// Its inline index.
    pub index: u16,
    /// `vin<index>`: the new pair's end facing the workload.
    pub vin: String,
    /// `vex<index>`: its original interface, moved here.
    pub vex: String,
    /// The workload's MAC.
    pub mac: MacAddr,
    /// Its tag, `tag_mac(index)`.
    pub tag: MacAddr,
}

impl InlinePort {
    fn of(r: &Record, index: u16) -> InlinePort {
        let (vin, vex) = link_names(index);
        InlinePort { index, vin, vex, mac: r.original.mac, tag: tag_mac(index) }
    }
}

/// The names of inline index `i`'s links: `vin<i>`, `vex<i>`.
fn link_names(i: u16) -> (String, String) {
    (format!("vin{i}"), format!("vex{i}"))
}

/// The wiring of every workload of this enforcer. See the module documentation.
///
/// Dropping it changes nothing in the system (the workloads stay wired, and the next
/// [`Wiring::open`] on the same state directory undoes them); call
/// [`Wiring::shutdown`] to unwire.
#[derive(Debug)]
pub struct Wiring {
    state: StateDir,
    /// Holds the enforcer namespace open; `enf_path` names it through this descriptor.
    _enf_ns: File,
    enf_path: PathBuf,
    enf_id: NsId,
    backend: Option<Backend>,
    /// Why no backend was found (with [`BackendChoice::Auto`]).
    no_backend: String,
    fail_open: bool,
    service_gso: bool,
    port_pairs: bool,
    records: BTreeMap<String, Record>,
}

impl Wiring {
    /// Opens/creates the state dir, recovers leftovers of a crashed run, probes the
    /// backend. Does not create the service pair until the first inline wire.
    ///
    /// The enforcer namespace is the calling thread's. The returned log says what
    /// recovery did, one line per action.
    pub fn open(cfg: WiringConfig) -> Result<(Wiring, Vec<String>), WiringError> {
        let self_ns = PathBuf::from("/proc/thread-self/ns/net");
        let ns_error = |source| WiringError::Namespace {
            workload: ENFORCER.into(),
            path: self_ns.clone(),
            source,
        };
        let enf_ns = File::open(&self_ns).map_err(ns_error)?;
        let enf_path =
            PathBuf::from(format!("/proc/{}/fd/{}", std::process::id(), enf_ns.as_raw_fd()));
        let enf_id = NsId::of(&enf_path).map_err(ns_error)?;
        let state = StateDir::open(cfg.state_dir)?;
        state.remove_temporaries()?;
        let mut w = Wiring {
            state,
            _enf_ns: enf_ns,
            enf_path,
            enf_id,
            backend: None,
            no_backend: String::new(),
            fail_open: cfg.fail_open,
            service_gso: cfg.service_gso,
            port_pairs: cfg.port_pairs,
            records: BTreeMap::new(),
        };
        let log = w.recover()?;
        w.probe(cfg.backend)?;
        Ok((w, log))
    }

    /// Whether the service pair keeps transmit offload on ([`WiringConfig::service_gso`]):
    /// service ports on it must be opened with `PACKET_VNET_HDR`.
    pub fn service_gso(&self) -> bool {
        self.service_gso
    }

    /// Whether inline workloads use port pairs ([`WiringConfig::port_pairs`]).
    pub fn port_pairs(&self) -> bool {
        self.port_pairs
    }

    /// The inline backend in use; `None` if none works here (and the choice was Auto).
    pub fn backend(&self) -> Option<Backend> {
        self.backend
    }

    /// Idempotent: wiring an already-wired workload to the same kind is a no-op returning
    /// its facts; to another kind (or another namespace or interface) converts it (undo
    /// old, do new).
    pub fn wire(
        &mut self,
        name: &str,
        netns: &Path,
        iface: &str,
        kind: WireKind,
    ) -> Result<Wired, WiringError> {
        check_name(name)?;
        check_iface(name, iface)?;
        let netns = absolute_ns_path(netns);
        let id = NsId::of(&netns).map_err(|source| WiringError::Namespace {
            workload: name.into(),
            path: netns.clone(),
            source,
        })?;
        if id == self.enf_id {
            return Err(WiringError::Invalid {
                workload: name.into(),
                message: format!("{} is the enforcer's own network namespace", netns.display()),
            });
        }
        if let Some(r) = self.records.get(name) {
            if r.netns_id == id && r.iface == iface && complete_as(r, kind) {
                return Ok(facts(r));
            }
            self.unwire(name)?;
        }
        if let Some(other) = self.records.values().find(|r| r.netns_id == id && r.iface == iface) {
            return Err(WiringError::InUse {
                workload: name.into(),
                what: format!("interface {iface} of {}", netns.display()),
                other: other.name.clone(),
            });
        }
        let original = LinkSnapshot::capture(&Ns::new(&netns, name), iface)?;
        let mut record = Record {
            version: state::VERSION,
            name: name.into(),
            netns,
            netns_id: id,
            iface: iface.into(),
            original,
            wiring: WiringRecord::Tap,
        };
        match kind {
            WireKind::Tap => {
                self.state.save(&record)?;
                self.records.insert(name.into(), record.clone());
                Ok(facts(&record))
            }
            WireKind::Inline => self.wire_inline(record),
            WireKind::Nfqueue { queue } => {
                let ns = Ns::new(&record.netns, name);
                let options = NfqOptions::queue(queue);
                let rules = nfqueue::rules(name, iface, options);
                let before = nfqueue::before(&ns)?;
                let nfq = NfqRecord { options, rules, before, complete: false };
                record.wiring = WiringRecord::Nfqueue(nfq.clone());
                self.state.save(&record)?;
                self.records.insert(name.into(), record.clone());
                if let Err(e) = nfqueue::install(&ns, &nfq.rules) {
                    return Err(self.roll_back(name, e));
                }
                record.wiring = WiringRecord::Nfqueue(NfqRecord { complete: true, ..nfq });
                self.state.save(&record)?;
                self.records.insert(name.into(), record.clone());
                Ok(facts(&record))
            }
        }
    }

    /// Undo a workload's wiring: inline restores the interface exactly as it was (name,
    /// MAC, MTU, addresses, routes); nfqueue removes exactly its rules (and what
    /// iptables created for them); tap forgets it.
    pub fn unwire(&mut self, name: &str) -> Result<(), WiringError> {
        let record = self
            .records
            .get(name)
            .cloned()
            .ok_or_else(|| WiringError::NotWired { workload: name.into() })?;
        self.undo(&record)?;
        Ok(())
    }

    /// Every wired workload (including one a failed unwire left half done).
    pub fn wired(&self) -> Vec<Wired> {
        self.records.values().map(facts).collect()
    }

    /// Unwire every workload, remove table and service pair; returns the errors
    /// (continues past failures).
    pub fn shutdown(&mut self) -> Vec<WiringError> {
        let mut errors = Vec::new();
        let names: Vec<String> = self.records.keys().cloned().collect();
        for name in names {
            if let Err(e) = self.unwire(&name) {
                errors.push(e);
            }
        }
        if let Err(e) = self.remove_shared() {
            errors.push(e);
        }
        errors
    }

    /// Fail-open (`true`): inline workloads' frames cross straight between `vin` and
    /// `vex`, uninspected (the engine is not needed). Fail-closed (`false`, the default):
    /// they go through the service port and nothing passes without the engine.
    pub fn set_fail_open(&mut self, open: bool) -> Result<(), WiringError> {
        self.fail_open = open;
        self.steer(None)
    }

    /// The `nft -f -` input that switches the table to fail-open, for a guard process
    /// to load into the enforcer namespace if the enforcer dies
    /// (`nsenter --net=<enforcer ns> nft -f -`, with `nft` on the guard's `PATH`). `None`
    /// when no inline workload is steered, or with the tc backend (no script form).
    ///
    /// The script names the `vin`/`vex` links of the workloads wired now: fetch it
    /// again after every `wire`/`unwire`, or `nft` refuses it for a link that is gone.
    pub fn fail_open_script(&self) -> Option<String> {
        let ports = self.nft_ports(None);
        (self.backend == Some(Backend::Nft) && !ports.is_empty())
            .then(|| nft::replace_script(&ports, SERVICE_BRIDGE, true, false))
    }

    // ----- orchestration -----

    fn enf<'a>(&'a self, who: &'a str) -> Ns<'a> {
        Ns::new(&self.enf_path, who)
    }

    /// Write `record` ahead and keep it.
    fn save(&mut self, record: Record) -> Result<(), WiringError> {
        self.state.save(&record)?;
        self.records.insert(record.name.clone(), record);
        Ok(())
    }

    fn set_phase(&mut self, name: &str, phase: Phase) -> Result<(), WiringError> {
        let Some(mut record) = self.records.get(name).cloned() else {
            return Err(WiringError::NotWired { workload: name.into() });
        };
        if let WiringRecord::Inline(i) = &mut record.wiring {
            i.phase = phase;
        }
        self.save(record)
    }

    /// After a failed wire: undo what was done; the error, or both errors if undoing
    /// failed too (the record then stays for a later unwire or recovery).
    fn roll_back(&mut self, name: &str, error: WiringError) -> WiringError {
        let Some(record) = self.records.get(name).cloned() else { return error };
        match self.undo(&record) {
            Ok(_) => error,
            Err(rollback) => {
                WiringError::RollbackFailed { error: Box::new(error), rollback: Box::new(rollback) }
            }
        }
    }

    fn wire_inline(&mut self, mut record: Record) -> Result<Wired, WiringError> {
        let name = record.name.clone();
        let backend = self.backend.ok_or_else(|| WiringError::Backend {
            backend: "inline",
            message: format!("no inline backend works here: {}", self.no_backend),
        })?;
        let index = self.free_index()?;
        if backend == Backend::Tc && index > tc::MAX_INDEX {
            return Err(WiringError::Backend {
                backend: "tc",
                message: format!(
                    "workload {name}: inline index {index} is above {}",
                    tc::MAX_INDEX
                ),
            });
        }
        record.wiring =
            WiringRecord::Inline(InlineRecord { index, backend, phase: Phase::Recorded });
        self.save(record)?;
        match self.do_inline(&name, index) {
            Ok(()) => Ok(facts(&self.records[&name])),
            Err(e) => Err(self.roll_back(&name, e)),
        }
    }

    /// The inline steps, each recorded before it starts.
    fn do_inline(&mut self, name: &str, index: u16) -> Result<(), WiringError> {
        let record = self.records[name].clone();
        let (vin, vex) = link_names(index);
        let w = Ns::new(&record.netns, name);
        let enf_path = self.enf_path.to_string_lossy().into_owned();
        let iface = record.iface.as_str();

        // One netlink request: the interface is either still `I` in the workload or
        // already `vex<i>` here, never half moved.
        self.set_phase(name, Phase::Moving)?;
        w.run(&["ip", "link", "set", "dev", iface, "netns", &enf_path, "name", &vex])?;

        self.set_phase(name, Phase::CreatingPair)?;
        w.run(&[
            "ip", "link", "add", "name", iface, "type", "veth", "peer", "name", &vin, "netns",
            &enf_path,
        ])?;

        self.set_phase(name, Phase::Configuring)?;
        let e = self.enf(name);
        let mtu = record.original.mtu.to_string();
        for dev in [&vin, &vex] {
            // No addresses here: no link-local, no router solicitations from the
            // enforcer's own stack.
            e.run(&["ip", "link", "set", "dev", dev, "addrgenmode", "none"])?;
            e.run(&["ip", "link", "set", "dev", dev, "mtu", &mtu])?;
            e.run(&["ip", "link", "set", "dev", dev, "up"])?;
        }
        // The new interface gets the original configuration; its IPv6 addresses skip
        // duplicate address detection (they are the same addresses, already checked).
        let mut inner = record.original.clone();
        for a in inner.addrs.iter_mut().filter(|a| a.local.is_ipv6()) {
            if !a.flags.iter().any(|f| f == "nodad") {
                a.flags.push("nodad".into());
            }
        }
        inner.apply(&w, iface)?;

        self.ensure_service(record.original.mtu)?;
        self.set_phase(name, Phase::Steering)?;
        self.steer(None)?;
        self.set_phase(name, Phase::Wired)
    }

    /// Undo `record` from whatever state it reached, then forget it. Returns notes for
    /// the recovery log.
    fn undo(&mut self, record: &Record) -> Result<Vec<String>, WiringError> {
        let name = record.name.as_str();
        let alive = NsId::of(&record.netns).is_ok_and(|id| id == record.netns_id);
        let mut notes = Vec::new();
        match &record.wiring {
            WiringRecord::Tap => {}
            WiringRecord::Nfqueue(n) => {
                if alive {
                    nfqueue::remove(&Ns::new(&record.netns, name), &n.rules, &n.before)?;
                    notes.push(format!("removed its NFQUEUE rules (queue {})", n.options.queue));
                } else {
                    notes.push("its namespace is gone, and its rules with it".into());
                }
            }
            WiringRecord::Inline(i) => notes.extend(self.undo_inline(record, i, alive)?),
        }
        self.state.remove(name)?;
        self.records.remove(name);
        Ok(notes)
    }

    fn undo_inline(
        &mut self,
        record: &Record,
        inline: &InlineRecord,
        alive: bool,
    ) -> Result<Vec<String>, WiringError> {
        let name = record.name.as_str();
        let iface = record.iface.as_str();
        let (vin, vex) = link_names(inline.index);
        let mut notes = Vec::new();
        if self.records.contains_key(name) {
            self.set_phase(name, Phase::Unwiring)?;
        }
        // Steering first: nothing may point at the links about to move.
        if inline.backend == Backend::Tc {
            let p = InlinePort::of(record, inline.index);
            for c in tc::port_reset(&p, SERVICE_BRIDGE) {
                let _ = self
                    .enf(name)
                    .attempt(&c.iter().map(String::as_str).collect::<Vec<_>>(), None)?;
            }
        }
        if self.backend == Some(Backend::Nft) || inline.backend == Backend::Nft {
            self.steer(Some(name))?;
        }
        let e = self.enf(name);
        let has_vex = link::link(&e, &vex)?.is_some();
        if !alive {
            // The workload is gone (its end of the vin pair went with its namespace):
            // its original interface has nowhere to go back to, and is deleted like
            // the runtime would have deleted it.
            del_link(&e, &vin)?;
            del_link(&e, &vex)?;
            notes.push(format!(
                "its namespace {} is gone; deleted what was left of it here ({vin}, {vex})",
                record.netns.display()
            ));
            return Ok(notes);
        }
        let w = Ns::new(&record.netns, name);
        if has_vex {
            // The original is here, so an `I` in the workload is the one we made.
            if link::link(&w, iface)?.is_some() {
                w.run(&["ip", "link", "del", "dev", iface])?;
                notes.push(format!("deleted the {iface}/{vin} pair"));
            }
            if link::link(&e, &vin)?.is_some() {
                e.run(&["ip", "link", "del", "dev", &vin])?;
            }
            let netns = record.netns.to_string_lossy().into_owned();
            e.run(&["ip", "link", "set", "dev", &vex, "netns", &netns, "name", iface])?;
            notes.push(format!("moved {vex} back as {iface}"));
        } else if link::link(&e, &vin)?.is_some() {
            e.run(&["ip", "link", "del", "dev", &vin])?;
            notes.push(format!("deleted {vin}"));
        }
        record.original.apply(&w, iface)?;
        notes.push(format!("restored {iface}'s MAC, MTU, addresses and routes"));
        Ok(notes)
    }

    /// Undo every record a previous run left, then the table it may have left.
    fn recover(&mut self) -> Result<Vec<String>, WiringError> {
        let mut log = Vec::new();
        let mut found = Vec::new();
        for (path, result) in self.state.load_each()? {
            match result {
                Ok(r) => found.push(r),
                Err(e) => log.push(format!("{}: skipped, not understood: {e}", path.display())),
            }
        }
        // Every inline record is being undone: no steering of them may stay.
        if self.table_exists() {
            self.delete_table()?;
            log.push(format!("enforcer: removed the leftover table netdev {}", nft::TABLE));
        }
        for record in found {
            let what = format!(
                "workload {} ({}, {})",
                record.name,
                record.wiring.mode(),
                phase_of(&record)
            );
            self.records.insert(record.name.clone(), record.clone());
            match self.undo(&record) {
                Ok(notes) => log.push(format!("{what}: undone: {}", notes.join("; "))),
                Err(e) => log.push(format!("{what}: undoing failed, kept for a later unwire: {e}")),
            }
        }
        Ok(log)
    }

    // ----- backends -----

    fn probe(&mut self, choice: BackendChoice) -> Result<(), WiringError> {
        let nft = || self.probe_with(probe_nft);
        let tc = || self.probe_with(probe_tc);
        match choice {
            BackendChoice::Nft => {
                nft().map_err(|m| WiringError::Backend { backend: "nft", message: m })?;
                self.backend = Some(Backend::Nft);
            }
            BackendChoice::Tc => {
                tc().map_err(|m| WiringError::Backend { backend: "tc", message: m })?;
                self.backend = Some(Backend::Tc);
            }
            BackendChoice::Auto => match nft() {
                Ok(()) => self.backend = Some(Backend::Nft),
                Err(n) => match tc() {
                    Ok(()) => self.backend = Some(Backend::Tc),
                    Err(t) => self.no_backend = format!("nft: {n}; tc: {t}"),
                },
            },
        }
        if self.port_pairs && self.backend == Some(Backend::Tc) {
            return Err(WiringError::Backend {
                backend: "tc",
                message: "inline port pairs need the nft backend".into(),
            });
        }
        Ok(())
    }

    /// Run `probe` on a scratch veth pair in the enforcer namespace, removed after.
    fn probe_with(&self, probe: fn(&Ns<'_>) -> Result<(), String>) -> Result<(), String> {
        let e = self.enf(ENFORCER);
        let del = || e.attempt(&["ip", "link", "del", "dev", PROBE_A], None);
        let _ = del();
        let made =
            e.run(&["ip", "link", "add", "name", PROBE_A, "type", "veth", "peer", "name", PROBE_B]);
        if let Err(err) = made {
            return Err(format!("cannot make a scratch veth pair: {err}"));
        }
        let result = probe(&e);
        let _ = del();
        result
    }

    /// The nft steering table entries of the steered inline workloads (all but `except`).
    fn nft_ports(&self, except: Option<&str>) -> Vec<InlinePort> {
        self.steered(except).map(|(r, i)| InlinePort::of(r, i)).collect()
    }

    fn steered<'a>(
        &'a self,
        except: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Record, u16)> + 'a {
        self.records
            .values()
            .filter(move |r| Some(r.name.as_str()) != except)
            .filter_map(|r| r.inline().filter(|i| i.phase.steered()).map(|i| (r, i.index)))
    }

    /// Load the steering of every steered inline workload (but `except`), in the
    /// current fail mode.
    fn steer(&mut self, except: Option<&str>) -> Result<(), WiringError> {
        match self.backend {
            Some(Backend::Nft) => {
                let ports = self.nft_ports(except);
                if ports.is_empty() {
                    return self.delete_table();
                }
                let script =
                    nft::replace_script(&ports, SERVICE_BRIDGE, self.fail_open, self.port_pairs);
                self.enf(ENFORCER).run_input(&["nft", "-f", "-"], &script)?;
            }
            Some(Backend::Tc) => {
                let ports: Vec<(String, InlinePort)> = self
                    .steered(except)
                    .map(|(r, i)| (r.name.clone(), InlinePort::of(r, i)))
                    .collect();
                for (who, p) in ports {
                    let e = self.enf(&who);
                    for c in tc::port_reset(&p, SERVICE_BRIDGE) {
                        let _ =
                            e.attempt(&c.iter().map(String::as_str).collect::<Vec<_>>(), None)?;
                    }
                    let cmds =
                        tc::port_steer(&p, SERVICE_BRIDGE, self.fail_open).ok_or_else(|| {
                            WiringError::Backend {
                                backend: "tc",
                                message: format!(
                                    "workload {who}: inline index {} out of range",
                                    p.index
                                ),
                            }
                        })?;
                    for c in cmds {
                        e.run(&c.iter().map(String::as_str).collect::<Vec<_>>())?;
                    }
                }
            }
            None => {}
        }
        Ok(())
    }

    fn table_exists(&self) -> bool {
        let argv = ["nft", "list", "table", "netdev", nft::TABLE];
        matches!(self.enf(ENFORCER).attempt(&argv, None), Ok(Ok(_)))
    }

    fn delete_table(&self) -> Result<(), WiringError> {
        if self.table_exists() {
            self.enf(ENFORCER).run_input(&["nft", "-f", "-"], nft::DELETE_SCRIPT)?;
        }
        Ok(())
    }

    /// The service pair, up, without addresses, with an MTU at least the workload's.
    /// Transmit offload on `vbr-neuv` is off (the kernel segments and checksums before the
    /// engine, NeuVector's way, §4) unless `service_gso`: then it is on and the service
    /// port carries super-frames and partial checksums whole (`PACKET_VNET_HDR`).
    fn ensure_service(&self, mtu: u32) -> Result<(), WiringError> {
        let e = self.enf(ENFORCER);
        let made = match link::link(&e, SERVICE_IFACE)? {
            Some(_) => false,
            None => {
                e.run(&[
                    "ip",
                    "link",
                    "add",
                    "name",
                    SERVICE_BRIDGE,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    SERVICE_IFACE,
                ])?;
                true
            }
        };
        for dev in [SERVICE_BRIDGE, SERVICE_IFACE] {
            let info = link::link(&e, dev)?.ok_or_else(|| WiringError::NoSuchInterface {
                workload: ENFORCER.into(),
                iface: dev.into(),
                netns: self.enf_path.clone(),
            })?;
            if made {
                e.run(&["ip", "link", "set", "dev", dev, "addrgenmode", "none"])?;
            }
            if info.mtu < mtu {
                e.run(&["ip", "link", "set", "dev", dev, "mtu", &mtu.to_string()])?;
            }
            if !info.up {
                e.run(&["ip", "link", "set", "dev", dev, "up"])?;
            }
        }
        let tx = if self.service_gso { "on" } else { "off" };
        e.run(&["ethtool", "-K", SERVICE_BRIDGE, "tx", tx, "tso", tx, "gso", tx])?;
        if self.backend == Some(Backend::Tc) {
            for c in tc::service_setup(SERVICE_BRIDGE) {
                let _ = e.attempt(&c.iter().map(String::as_str).collect::<Vec<_>>(), None)?;
            }
        }
        Ok(())
    }

    fn remove_shared(&self) -> Result<(), WiringError> {
        let e = self.enf(ENFORCER);
        if self.backend == Some(Backend::Nft) || self.table_exists() {
            self.delete_table()?;
        }
        if link::link(&e, SERVICE_BRIDGE)?.is_some() {
            e.run(&["ip", "link", "del", "dev", SERVICE_BRIDGE])?;
        }
        Ok(())
    }

    /// The smallest inline index from 1 no record holds and whose `vin`/`vex` names are
    /// free in the enforcer namespace (a stray link is skipped, not taken over).
    fn free_index(&self) -> Result<u16, WiringError> {
        let used: Vec<u16> =
            self.records.values().filter_map(|r| r.inline().map(|i| i.index)).collect();
        let names: Vec<String> =
            link::links(&self.enf(ENFORCER))?.into_iter().map(|l| l.name).collect();
        (1..=u16::MAX)
            .find(|i| {
                !used.contains(i) && {
                    let (vin, vex) = link_names(*i);
                    !names.iter().any(|n| *n == vin || *n == vex)
                }
            })
            .ok_or_else(|| WiringError::Invalid {
                workload: ENFORCER.into(),
                message: "no free inline index".into(),
            })
    }
}

/// Delete link `dev` if it is there (a link vanishing meanwhile, as when its namespace
/// is being freed, is fine).
fn del_link(ns: &Ns<'_>, dev: &str) -> Result<(), WiringError> {
    if link::link(ns, dev)?.is_none() {
        return Ok(());
    }
    match ns.attempt(&["ip", "link", "del", "dev", dev], None)? {
        Ok(_) => Ok(()),
        Err(_) if link::link(ns, dev)?.is_none() => Ok(()),
        Err(f) => Err(f.into_error(ns.who)),
    }
}

/// `nft` netdev `fwd` works: a chain with `fwd to` loads.
fn probe_nft(e: &Ns<'_>) -> Result<(), String> {
    let script = nft::probe_script(PROBE_A, PROBE_B);
    let r = e
        .run_input(&["nft", "-f", "-"], &script)
        .map(|_| ())
        .map_err(|err| format!("nft netdev fwd: {err}"));
    let _ = e.attempt(&["nft", "delete", "table", "netdev", nft::PROBE_TABLE], None);
    r
}

/// tc `u32` with `pedit` and `mirred` works (NeuVector's filters).
fn probe_tc(e: &Ns<'_>) -> Result<(), String> {
    e.run(&["tc", "qdisc", "add", "dev", PROBE_A, "ingress"]).map_err(|err| err.to_string())?;
    let argv = tc::probe_filter(PROBE_A, PROBE_B);
    match e.run(&argv.iter().map(String::as_str).collect::<Vec<_>>()) {
        Ok(_) => Ok(()),
        Err(err) => Err(format!(
            "the kernel lacks the tc pedit action (module act_pedit, CONFIG_NET_ACT_PEDIT), \
             which the tc backend needs to tag MAC addresses: {err}"
        )),
    }
}

/// A workload name names its state file: ASCII letters, digits, `.`, `_`, `-`, not
/// starting with `.`, at most 64 bytes.
fn check_name(name: &str) -> Result<(), WiringError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        return Ok(());
    }
    Err(WiringError::Invalid {
        workload: name.into(),
        message:
            "a workload name is 1-64 ASCII letters, digits, '.', '_' or '-', not starting with '.'"
                .into(),
    })
}

fn check_iface(name: &str, iface: &str) -> Result<(), WiringError> {
    let ok = !iface.is_empty()
        && iface.len() <= 15
        && iface.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if ok {
        return Ok(());
    }
    Err(WiringError::Invalid {
        workload: name.into(),
        message: format!("{iface:?} is not an interface name (1-15 bytes, no '/', ':' or spaces)"),
    })
}

/// Whether `r` is already fully wired as `kind`.
fn complete_as(r: &Record, kind: WireKind) -> bool {
    match (&r.wiring, kind) {
        (WiringRecord::Tap, WireKind::Tap) => true,
        (WiringRecord::Inline(i), WireKind::Inline) => i.phase == Phase::Wired,
        (WiringRecord::Nfqueue(n), WireKind::Nfqueue { queue }) => {
            n.complete && n.options.queue == queue
        }
        _ => false,
    }
}

fn phase_of(r: &Record) -> String {
    match &r.wiring {
        WiringRecord::Inline(i) => format!("index {}, phase {:?}", i.index, i.phase),
        WiringRecord::Nfqueue(n) => format!("queue {}, complete {}", n.options.queue, n.complete),
        WiringRecord::Tap => "recorded".into(),
    }
}

fn facts(r: &Record) -> Wired {
    let kind = match &r.wiring {
        WiringRecord::Tap => WireKind::Tap,
        WiringRecord::Inline(_) => WireKind::Inline,
        WiringRecord::Nfqueue(n) => WireKind::Nfqueue { queue: n.options.queue },
    };
    Wired {
        name: r.name.clone(),
        netns: r.netns.clone(),
        iface: r.iface.clone(),
        mac: r.original.mac,
        inline: r.inline().map(|i| InlinePort::of(r, i.index)),
        addrs: r.original.addrs.iter().map(|a| a.local).collect(),
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_neuv_and_the_index() {
        assert_eq!(tag_mac(1).to_string(), "4e:65:75:56:00:01");
        assert_eq!(tag_mac(0x1234).to_string(), "4e:65:75:56:12:34");
        assert!(tag_mac(7).is_unicast());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("web-1.a_b").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name(".hidden").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_iface("w", "eth0").is_ok());
        assert!(check_iface("w", "a-very-long-name0").is_err());
        assert!(check_iface("w", "a b").is_err());
    }
}
