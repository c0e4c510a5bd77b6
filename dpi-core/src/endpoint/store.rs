//! The shared, read-mostly policy state: workloads, their compiled rules and the engine's
//! policy settings, published by the control plane as immutable [`Snapshot`]s.
//!
//! Workers never wait for the control plane: [`PolicyStore::update`] compiles everything
//! first, then swaps one pointer (`arc-swap`); a worker notices the new version with one
//! atomic load per packet and takes the new snapshot. A packet therefore sees either the
//! whole old policy or the whole new one. Each workload's policy carries a version that
//! changes only when its mode, wiring or rules change, so existing sessions of untouched
//! workloads are not re-evaluated.

use super::{Mode, PolicySettings, Wiring, WorkloadPolicy};
use crate::packet::Addr;
use crate::policy::{CompiledRules, IpNet, Peer, Rule};
use arc_swap::ArcSwap;
use core::net::IpAddr;
/// Control-plane maps: fixed-key aHash (the engine reads no random source; these maps are
/// keyed by configuration, not by traffic).
type HashMap<K, V> = hashbrown::HashMap<K, V, core::hash::BuildHasherDefault<ahash::AHasher>>;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Which workload a decision was made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkloadKey {
    /// A registered workload, by id (see [`PolicyStore::workload_name`]).
    Registered(u32),
    /// An address treated as a workload of its own (`PolicySettings::implicit_workloads`).
    Implicit(IpAddr),
}

/// A registered workload, compiled.
#[derive(Debug)]
pub struct Workload {
    /// Stable id (kept across updates while the name exists).
    pub id: u32,
    /// Name.
    pub name: Arc<str>,
    /// Mode.
    pub mode: Mode,
    /// Wiring.
    pub wiring: Wiring,
    /// Compiled rules (shared between workloads with the same rule list).
    pub rules: Arc<CompiledRules>,
    /// Version of this workload's policy (mode, wiring, rules).
    pub version: u32,
    /// Some rule names a DNS peer (lookups then need the names of addresses).
    pub has_fqdn_rules: bool,
}

/// The policy of the workloads an address stands for when implicit workloads are on.
#[derive(Debug)]
struct Implicit {
    mode: Mode,
    wiring: Wiring,
    rules: Arc<CompiledRules>,
    version: u32,
    has_fqdn_rules: bool,
}

/// One workload end of a connection, resolved for a policy lookup.
#[derive(Clone, Copy, Debug)]
pub struct Resolved<'a> {
    /// Which workload.
    pub key: WorkloadKey,
    /// Its mode.
    pub mode: Mode,
    /// Its wiring.
    pub wiring: Wiring,
    /// Its rules.
    pub rules: &'a CompiledRules,
    /// Its policy version.
    pub version: u32,
    /// Its rules name DNS peers.
    pub has_fqdn_rules: bool,
}

/// An immutable view of the policy state.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Store version this snapshot was published as.
    pub version: u64,
    /// Settings.
    pub settings: PolicySettings,
    workloads: Vec<Workload>,
    by_id: HashMap<u32, usize>,
    by_mac: HashMap<[u8; 6], usize>,
    by_ip: HashMap<(bool, Addr), usize>,
    implicit: Option<Implicit>,
    /// Names of addresses given by the control plane (`PolicyConfig::names`).
    names: HashMap<(bool, Addr), Vec<Arc<str>>>,
    any_fqdn_rules: bool,
}

impl Snapshot {
    /// Is any workload (or implicit workload) defined?
    pub fn has_workloads(&self) -> bool {
        !self.workloads.is_empty() || self.implicit.is_some()
    }

    /// The workload behind a frame end: by MAC first, then by address, then (if on) the
    /// address as an implicit workload.
    pub fn resolve(&self, mac: [u8; 6], v6: bool, ip: Addr) -> Option<Resolved<'_>> {
        let idx = self.by_mac.get(&mac).or_else(|| self.by_ip.get(&(v6, ip)));
        if let Some(&i) = idx {
            let w = &self.workloads[i];
            return Some(Resolved {
                key: WorkloadKey::Registered(w.id),
                mode: w.mode,
                wiring: w.wiring,
                rules: &w.rules,
                version: w.version,
                has_fqdn_rules: w.has_fqdn_rules,
            });
        }
        let imp = self.implicit.as_ref()?;
        if is_multicast_or_broadcast(v6, ip) || ip == 0 {
            return None;
        }
        Some(Resolved {
            key: WorkloadKey::Implicit(crate::packet::addr_to_ip(ip, v6)),
            mode: imp.mode,
            wiring: imp.wiring,
            rules: &imp.rules,
            version: imp.version,
            has_fqdn_rules: imp.has_fqdn_rules,
        })
    }

    /// A registered workload by id.
    pub fn workload(&self, id: u32) -> Option<&Workload> {
        self.by_id.get(&id).map(|&i| &self.workloads[i])
    }

    /// Registered workloads.
    pub fn workloads(&self) -> &[Workload] {
        &self.workloads
    }

    /// Is the address one of a registered workload's?
    pub fn is_workload_ip(&self, v6: bool, ip: Addr) -> bool {
        self.by_ip.contains_key(&(v6, ip))
    }

    /// Does any workload's policy name DNS peers? (Lookups then gather names.)
    pub fn has_fqdn_rules(&self) -> bool {
        self.any_fqdn_rules
    }

    /// Names the control plane gave `addr`, into `out`; returns how many.
    pub fn static_names<'a>(&'a self, v6: bool, addr: Addr, out: &mut [&'a str]) -> usize {
        let Some(names) = self.names.get(&(v6, addr)) else { return 0 };
        let mut n = 0;
        for (slot, name) in out.iter_mut().zip(names) {
            *slot = name;
            n += 1;
        }
        n
    }

    /// Is the address "external": outside the internal subnets and no workload's?
    pub fn is_external(&self, v6: bool, ip: Addr) -> bool {
        !self.settings.internal_subnets.iter().any(|n| n.contains(v6, ip))
            && !self.is_workload_ip(v6, ip)
    }
}

/// IPv4 multicast (224/4) and limited broadcast, IPv6 multicast (ff00::/8).
pub fn is_multicast_or_broadcast(v6: bool, ip: Addr) -> bool {
    if v6 {
        ip >> 120 == 0xff
    } else {
        let v4 = ip as u32;
        v4 >> 28 == 0xe || v4 == u32::MAX
    }
}

/// Why an update was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// Two workloads share a name.
    DuplicateName(String),
    /// Two workloads claim one MAC address.
    DuplicateMac(String, String, [u8; 6]),
    /// Two workloads claim one IP address.
    DuplicateIp(String, String, IpAddr),
}

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StoreError::DuplicateName(n) => write!(f, "two workloads are named {n:?}"),
            StoreError::DuplicateMac(a, b, m) => write!(
                f,
                "workloads {a:?} and {b:?} both claim MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ),
            StoreError::DuplicateIp(a, b, ip) => {
                write!(f, "workloads {a:?} and {b:?} both claim address {ip}")
            }
        }
    }
}

impl std::error::Error for StoreError {}

/// What the control plane publishes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Settings.
    pub settings: PolicySettings,
    /// Registered workloads with their rules.
    pub workloads: Vec<WorkloadPolicy>,
    /// Rules of implicit workloads (when `settings.implicit_workloads` is on).
    pub implicit_rules: Vec<Rule>,
    /// DNS names of addresses known to the control plane (lowercase), used by FQDN rules
    /// besides what workers learn from DNS answers. Several workers or nodes share
    /// learned names this way.
    pub names: Vec<(String, Vec<IpAddr>)>,
}

#[derive(Debug, Default)]
struct Bookkeeping {
    ids: HashMap<String, u32>,
    names: Vec<Arc<str>>,
    /// Last published (mode, wiring, rules) and version per workload id.
    last: HashMap<u32, (Mode, Wiring, Vec<Rule>, u32)>,
    last_implicit: Option<(Mode, Wiring, Vec<Rule>, u32)>,
    next_version: u32,
}

/// The shared policy state; one per engine, shared by the control plane and all workers.
#[derive(Debug)]
pub struct PolicyStore {
    current: ArcSwap<Snapshot>,
    version: AtomicU64,
    books: Mutex<Bookkeeping>,
}

impl Default for PolicyStore {
    fn default() -> Self {
        PolicyStore {
            current: ArcSwap::from_pointee(Snapshot::default()),
            version: AtomicU64::new(0),
            books: Mutex::new(Bookkeeping::default()),
        }
    }
}

impl PolicyStore {
    /// An empty store: no workloads, default settings.
    pub fn new() -> Arc<PolicyStore> {
        Arc::new(PolicyStore::default())
    }

    /// Version of the current snapshot (bumped by every update).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The current snapshot.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Name of a workload id, also after the workload was removed.
    pub fn workload_name(&self, id: u32) -> Option<Arc<str>> {
        let books = self.books.lock().ok()?;
        books.names.get(id as usize).cloned()
    }

    /// Compile and publish a new policy state. Returns the new store version.
    pub fn update(&self, cfg: PolicyConfig) -> Result<u64, StoreError> {
        let mut books = self.books.lock().unwrap_or_else(|p| p.into_inner());
        let mut snap = Snapshot { settings: cfg.settings, ..Snapshot::default() };
        let mut compiled: HashMap<Vec<Rule>, Arc<CompiledRules>> = HashMap::default();
        let mut compile = |rules: &Vec<Rule>| {
            compiled
                .entry(rules.clone())
                .or_insert_with(|| Arc::new(CompiledRules::compile(rules)))
                .clone()
        };
        let mut owner_of_mac: HashMap<[u8; 6], String> = HashMap::default();
        let mut owner_of_ip: HashMap<IpAddr, String> = HashMap::default();
        for wp in &cfg.workloads {
            let spec = &wp.spec;
            if snap.workloads.iter().any(|w| *w.name == *spec.name) {
                return Err(StoreError::DuplicateName(spec.name.clone()));
            }
            // An address listed twice by one workload is harmless; by two, ambiguous.
            for m in &spec.macs {
                match owner_of_mac.insert(*m, spec.name.clone()) {
                    Some(o) if o != spec.name => {
                        return Err(StoreError::DuplicateMac(o, spec.name.clone(), *m))
                    }
                    _ => {}
                }
            }
            for ip in &spec.ips {
                match owner_of_ip.insert(*ip, spec.name.clone()) {
                    Some(o) if o != spec.name => {
                        return Err(StoreError::DuplicateIp(o, spec.name.clone(), *ip))
                    }
                    _ => {}
                }
            }
            let id = match books.ids.get(&spec.name) {
                Some(&id) => id,
                None => {
                    let id = books.names.len() as u32;
                    books.ids.insert(spec.name.clone(), id);
                    books.names.push(Arc::from(spec.name.as_str()));
                    id
                }
            };
            let unchanged = books
                .last
                .get(&id)
                .filter(|(m, w, r, _)| *m == spec.mode && *w == spec.wiring && *r == wp.rules);
            let version = match unchanged {
                Some(&(_, _, _, v)) => v,
                None => {
                    books.next_version = books.next_version.wrapping_add(1).max(1);
                    books.next_version
                }
            };
            books.last.insert(id, (spec.mode, spec.wiring, wp.rules.clone(), version));
            let idx = snap.workloads.len();
            for m in &spec.macs {
                snap.by_mac.insert(*m, idx);
            }
            for ip in &spec.ips {
                let (v6, a) = split(*ip);
                snap.by_ip.insert((v6, a), idx);
            }
            snap.by_id.insert(id, idx);
            snap.workloads.push(Workload {
                id,
                name: books.names[id as usize].clone(),
                mode: spec.mode,
                wiring: spec.wiring,
                rules: compile(&wp.rules),
                version,
                has_fqdn_rules: has_fqdn(&wp.rules),
            });
        }
        if let Some((mode, wiring)) = snap.settings.implicit_workloads {
            let unchanged = books
                .last_implicit
                .as_ref()
                .filter(|(m, w, r, _)| *m == mode && *w == wiring && *r == cfg.implicit_rules);
            let version = match unchanged {
                Some(&(_, _, _, v)) => v,
                None => {
                    books.next_version = books.next_version.wrapping_add(1).max(1);
                    books.next_version
                }
            };
            books.last_implicit = Some((mode, wiring, cfg.implicit_rules.clone(), version));
            snap.implicit = Some(Implicit {
                mode,
                wiring,
                rules: compile(&cfg.implicit_rules),
                version,
                has_fqdn_rules: has_fqdn(&cfg.implicit_rules),
            });
        }
        for (name, ips) in &cfg.names {
            let name: Arc<str> = Arc::from(name.to_ascii_lowercase().as_str());
            for ip in ips {
                let v = snap.names.entry(split(*ip)).or_default();
                if !v.contains(&name) {
                    v.push(name.clone());
                }
            }
        }
        snap.any_fqdn_rules = snap.workloads.iter().any(|w| w.has_fqdn_rules)
            || snap.implicit.as_ref().is_some_and(|i| i.has_fqdn_rules);
        let version = self.version.load(Ordering::Acquire) + 1;
        snap.version = version;
        self.current.store(Arc::new(snap));
        self.version.store(version, Ordering::Release);
        Ok(version)
    }
}

fn has_fqdn(rules: &[Rule]) -> bool {
    rules.iter().any(|r| r.from.iter().chain(r.to.iter()).any(|p| matches!(p, Peer::Fqdn(_))))
}

/// An [`IpAddr`] as (is IPv6, [`Addr`]).
pub fn split(ip: IpAddr) -> (bool, Addr) {
    match ip {
        IpAddr::V4(a) => (false, crate::packet::addr_from_v4(a.octets())),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

/// Does any internal subnet hold the address? (Helper for tests and tools.)
pub fn in_subnets(subnets: &[IpNet], ip: IpAddr) -> bool {
    let (v6, a) = split(ip);
    subnets.iter().any(|n| n.contains(v6, a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::WorkloadSpec;

    fn wl(name: &str, ip: &str, mode: Mode, rules: Vec<Rule>) -> WorkloadPolicy {
        WorkloadPolicy {
            spec: WorkloadSpec {
                name: name.into(),
                macs: vec![],
                ips: vec![ip.parse().unwrap()],
                mode,
                wiring: Wiring::Inline,
            },
            rules,
        }
    }

    #[test]
    fn versions_change_only_with_the_workload() {
        let store = PolicyStore::new();
        let mut cfg = PolicyConfig {
            workloads: vec![
                wl("a", "10.0.0.1", Mode::Protect, vec![]),
                wl("b", "10.0.0.2", Mode::Discover, vec![]),
            ],
            ..Default::default()
        };
        assert_eq!(store.update(cfg.clone()).unwrap(), 1);
        let s1 = store.load();
        let (va, vb) = (s1.workloads()[0].version, s1.workloads()[1].version);
        cfg.workloads[1].spec.mode = Mode::Monitor;
        assert_eq!(store.update(cfg).unwrap(), 2);
        let s2 = store.load();
        assert_eq!(s2.workloads()[0].version, va, "a untouched");
        assert_ne!(s2.workloads()[1].version, vb, "b changed mode");
        assert_eq!(s2.workloads()[0].id, s1.workloads()[0].id);
        assert_eq!(store.workload_name(s2.workloads()[1].id).as_deref(), Some("b"));
    }

    #[test]
    fn resolve_by_ip_and_implicit() {
        let store = PolicyStore::new();
        let mut cfg = PolicyConfig {
            workloads: vec![wl("a", "10.0.0.1", Mode::Protect, vec![])],
            ..Default::default()
        };
        cfg.settings.implicit_workloads = Some((Mode::Monitor, Wiring::Tap));
        store.update(cfg).unwrap();
        let s = store.load();
        let (v6, a) = split("10.0.0.1".parse().unwrap());
        let r = s.resolve([0; 6], v6, a).unwrap();
        assert_eq!(r.mode, Mode::Protect);
        let (v6, b) = split("10.0.0.7".parse().unwrap());
        let r = s.resolve([0; 6], v6, b).unwrap();
        assert_eq!(r.key, WorkloadKey::Implicit("10.0.0.7".parse().unwrap()));
        assert_eq!(r.mode, Mode::Monitor);
        let (v6, m) = split("224.0.0.22".parse().unwrap());
        assert!(s.resolve([0; 6], v6, m).is_none(), "multicast is no workload");
        assert!(!s.is_external(false, a));
        let (v6, ext) = split("8.8.8.8".parse().unwrap());
        assert!(s.is_external(v6, ext));
    }

    #[test]
    fn duplicates_are_refused() {
        let store = PolicyStore::new();
        let cfg = PolicyConfig {
            workloads: vec![
                wl("a", "10.0.0.1", Mode::Protect, vec![]),
                wl("b", "10.0.0.1", Mode::Protect, vec![]),
            ],
            ..Default::default()
        };
        assert!(matches!(store.update(cfg), Err(StoreError::DuplicateIp(..))));
        assert_eq!(store.version(), 0, "nothing published");
    }
}
