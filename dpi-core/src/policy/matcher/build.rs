//! Compiling an ordered rule list into a [`CompiledRules`] (see the parent module's docs).

use super::tree::{self, Tree};
use super::{
    exact4_key, Atom, Best, Cand, CompiledRules, Entry, ExactMap, Family, FamilyKey, Meta, Point,
    MAX_ATOMS_PER_RULE, MAX_CANDIDATES, NEED_CLIENT_EXT, NEED_SERVER_EXT, PATH_LISTS, RECHECK,
};
use crate::packet::proto;
use crate::policy::{Decision, Peer, PortSpec, Rule, RuleAction};
use arrayvec::ArrayVec;
use core::hash::Hash;

/// Size limits of a compilation (tests shrink them to exercise the fallbacks).
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    /// See [`MAX_ATOMS_PER_RULE`].
    pub(super) max_atoms_per_rule: usize,
    /// See [`MAX_CANDIDATES`].
    pub(super) max_candidates: usize,
    /// Flat layers of an index before a tree layer (see `tree.rs`).
    pub(super) max_flat_layers: usize,
}

impl Limits {
    pub(super) const DEFAULT: Limits = Limits {
        max_atoms_per_rule: MAX_ATOMS_PER_RULE,
        max_candidates: MAX_CANDIDATES,
        max_flat_layers: tree::MAX_FLAT_LAYERS,
    };
}

/// Largest port key (`255 << 16 | 65535`).
const PORT_KEY_MAX: u32 = 0x00ff_ffff;

pub(super) fn compile(rules: &[Rule], limits: Limits) -> CompiledRules {
    let mut meta: Vec<Meta> = rules
        .iter()
        .map(|r| Meta {
            id: r.id,
            decision: match r.action {
                RuleAction::Allow => Decision::Allow,
                RuleAction::Deny => Decision::Deny,
            },
            cond: r.vhost || !r.apps.is_empty(),
            whole: u32::MAX,
        })
        .collect();
    let mut named = Vec::new();
    let mut wide = Vec::new();
    let mut atoms = [Vec::new(), Vec::new()];
    let mut scratch: Vec<Atom> = Vec::new();
    let mut ports: Vec<(u32, u32)> = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        // `u32::MAX` is the "no match" order.
        let Some(order) = u32::try_from(i).ok().filter(|&o| o < u32::MAX) else { break };
        if r.from.is_empty() || r.to.is_empty() || r.ports.is_empty() {
            continue;
        }
        ports.clear();
        for p in &r.ports {
            port_intervals(*p, &mut ports);
        }
        ports.sort_unstable();
        ports.dedup();
        let addressed = |side: &[Peer]| side.iter().filter(|p| !matches!(p, Peer::Fqdn(_))).count();
        let product =
            addressed(&r.from).saturating_mul(addressed(&r.to)).saturating_mul(ports.len());
        if product > limits.max_atoms_per_rule {
            wide.push(order);
            continue;
        }
        if r.from.iter().chain(&r.to).any(|p| matches!(p, Peer::Fqdn(_))) {
            named.push(order);
        }
        for (fam, v6) in [(0, false), (1, true)] {
            scratch.clear();
            for f in &r.from {
                let Some((client_lo, client_hi, cneed)) = side(f, v6, NEED_CLIENT_EXT) else {
                    continue;
                };
                for t in &r.to {
                    let Some((server_lo, server_hi, sneed)) = side(t, v6, NEED_SERVER_EXT) else {
                        continue;
                    };
                    for &(port_lo, port_hi) in &ports {
                        scratch.push(Atom {
                            order,
                            client_lo,
                            client_hi,
                            server_lo,
                            server_hi,
                            port_lo,
                            port_hi,
                            need: cneed | sneed,
                        });
                    }
                }
            }
            scratch.sort_unstable();
            scratch.dedup();
            atoms[fam].extend_from_slice(&scratch);
        }
    }
    let [atoms4, atoms6] = atoms;
    let mut cands = Vec::new();

    let (exact4, range4): (Vec<Atom>, Vec<Atom>) = atoms4
        .into_iter()
        .partition(|a| is_point(a) && exact4_key(a.client_lo, a.server_lo, a.port_lo).is_some());
    let v4: Family<u32> = build_family(range4, &exact4, limits.max_flat_layers);
    let exact4 = build_exact(
        exact4.iter().filter_map(|a| Some((exact4_key(a.client_lo, a.server_lo, a.port_lo)?, *a))),
        &v4,
        &meta,
        limits.max_candidates,
        &mut cands,
    );

    let (exact6, range6): (Vec<Atom>, Vec<Atom>) = atoms6.into_iter().partition(is_point);
    let v6: Family<u128> = build_family(range6, &exact6, limits.max_flat_layers);
    let exact6 = build_exact(
        exact6.iter().map(|a| ((a.client_lo, a.server_lo, a.port_lo), *a)),
        &v6,
        &meta,
        limits.max_candidates,
        &mut cands,
    );

    // Keep whole the rules whose conditions or peers are checked on the rule itself.
    let mut keep: Vec<u32> = named.iter().chain(&wide).copied().collect();
    keep.extend(meta.iter().enumerate().filter(|(_, m)| m.cond).map(|(o, _)| o as u32));
    keep.sort_unstable();
    keep.dedup();
    let mut whole = Vec::with_capacity(keep.len());
    for o in keep {
        if let (Some(m), Some(r)) = (meta.get_mut(o as usize), rules.get(o as usize)) {
            m.whole = whole.len() as u32;
            whole.push(r.clone());
        }
    }
    CompiledRules { whole, meta, exact4, exact6, cands, v4, v6, named, wide }
}

/// A single client, server and port key, needing no flags.
fn is_point(a: &Atom) -> bool {
    a.need == 0
        && a.client_lo == a.client_hi
        && a.server_lo == a.server_hi
        && a.port_lo == a.port_hi
}

/// The port-key intervals of a port spec (none for an empty port range).
fn port_intervals(p: PortSpec, out: &mut Vec<(u32, u32)>) {
    let whole = |proto: u8| (u32::from(proto) << 16, u32::from(proto) << 16 | 0xffff);
    match p {
        PortSpec::Any => out.push((0, PORT_KEY_MAX)),
        PortSpec::Tcp(lo, hi) | PortSpec::Udp(lo, hi) if lo > hi => {}
        PortSpec::Tcp(lo, hi) => {
            out.push((super::port_key(proto::TCP, lo), super::port_key(proto::TCP, hi)))
        }
        PortSpec::Udp(lo, hi) => {
            out.push((super::port_key(proto::UDP, lo), super::port_key(proto::UDP, hi)))
        }
        PortSpec::Icmp => out.extend([whole(proto::ICMP), whole(proto::ICMPV6)]),
        PortSpec::Proto(n) => out.push(whole(n)),
    }
}

/// The address interval and flags of a peer in family `v6`; `None` if it cannot match
/// an address of that family (other family, empty range, FQDN).
fn side(p: &Peer, v6: bool, external: u8) -> Option<(u128, u128, u8)> {
    match p {
        Peer::Any => Some((0, u128::MAX, 0)),
        Peer::External => Some((0, u128::MAX, external)),
        Peer::Net(n) if n.v6 == v6 && n.lo <= n.hi => Some((n.lo, n.hi, 0)),
        Peer::Net(_) | Peer::Fqdn(_) => None,
    }
}

/// An atom's interval in one dimension.
type Extent = fn(&Atom) -> (u128, u128);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dim {
    Server,
    Client,
    Port,
}

/// How many of the sorted points `mids` lie in `lo..=hi`.
fn holding(mids: &[u128], lo: u128, hi: u128) -> usize {
    mids.partition_point(|&m| m <= hi) - mids.partition_point(|&m| m < lo)
}

/// The index of a family: each range atom in the tree of the dimension where its
/// interval holds the fewest atoms' midpoints. The midpoints of all atoms (range and
/// exact alike) stand for the traffic the rules expect: an atom that is narrow in a
/// dimension where few others fall is scanned by few queries there. An `Any` side holds
/// every midpoint, so it is chosen only when all three sides are that wide.
fn build_family<K: FamilyKey>(atoms: Vec<Atom>, points: &[Atom], flat: usize) -> Family<K> {
    let dims: [(Dim, Extent); 3] = [
        (Dim::Server, |a| (a.server_lo, a.server_hi)),
        (Dim::Client, |a| (a.client_lo, a.client_hi)),
        (Dim::Port, |a| (u128::from(a.port_lo), u128::from(a.port_hi))),
    ];
    let mids: Vec<Vec<u128>> = dims
        .iter()
        .map(|&(_, f)| {
            let mut m: Vec<u128> = atoms
                .iter()
                .chain(points)
                .map(|a| {
                    let (lo, hi) = f(a);
                    lo + (hi - lo) / 2
                })
                .collect();
            m.sort_unstable();
            m
        })
        .collect();
    let (mut server, mut client, mut port) = (Vec::new(), Vec::new(), Vec::new());
    for (i, a) in atoms.iter().enumerate() {
        let mut choice = (usize::MAX, Dim::Server);
        for (&(dim, f), mids) in dims.iter().zip(&mids) {
            let (lo, hi) = f(a);
            let n = holding(mids, lo, hi);
            if n < choice.0 {
                choice = (n, dim);
            }
        }
        let exact = K::lo_exact(a.client_lo)
            && K::hi_exact(a.client_hi)
            && K::lo_exact(a.server_lo)
            && K::hi_exact(a.server_hi);
        let item = Entry {
            order: a.order,
            port_lo: a.port_lo,
            port_hi: a.port_hi,
            atom: i as u32,
            flags: a.need | if exact { 0 } else { RECHECK },
            client_lo: K::key(a.client_lo),
            client_hi: K::key(a.client_hi),
            server_lo: K::key(a.server_lo),
            server_hi: K::key(a.server_hi),
        };
        match choice.1 {
            Dim::Server => server.push((K::key(a.server_lo), K::key(a.server_hi), item)),
            Dim::Client => client.push((K::key(a.client_lo), K::key(a.client_hi), item)),
            Dim::Port => port.push((a.port_lo, a.port_hi, item)),
        }
    }
    Family {
        server: Tree::build_with(&server, flat),
        client: Tree::build_with(&client, flat),
        port: Tree::build_with(&port, flat),
        atoms,
    }
}

/// The exact-point map of a family: `points` are the exact atoms with their map keys.
fn build_exact<K: FamilyKey, M: Hash + Eq + Ord + Copy>(
    points: impl Iterator<Item = (M, Atom)>,
    fam: &Family<K>,
    meta: &[Meta],
    max_candidates: usize,
    cands: &mut Vec<Cand>,
) -> ExactMap<M> {
    // Tree candidates gathered for one point before giving up on its list (the point then
    // searches the range index at lookup).
    let collect_cap = 4 * max_candidates;
    let mut points: Vec<(M, Atom)> = points.collect();
    // By key, then by order (the atom's first field).
    points.sort_unstable();
    let keys = points.chunk_by(|a, b| a.0 == b.0).count();
    let mut map = ExactMap::with_capacity_and_hasher(keys, hasher());
    let unconditional =
        |c: &Cand| c.need == 0 && meta.get(c.order as usize).is_some_and(|m| !m.cond);
    let mut exact: Vec<Cand> = Vec::new();
    let mut ranged: Vec<Cand> = Vec::new();
    for group in points.chunk_by(|a, b| a.0 == b.0) {
        let Some(&(key, first)) = group.first() else { continue };
        let (c, s, pk) = (first.client_lo, first.server_lo, first.port_lo);
        exact.clear();
        exact.extend(group.iter().map(|(_, a)| Cand { order: a.order, need: 0 }));
        exact.dedup();
        if let Some(end) = exact.iter().position(unconditional) {
            exact.truncate(end + 1);
        }
        // Range atoms holding the point, better than the first unconditional candidate.
        let mut limit = exact.last().filter(|c| unconditional(c)).map_or(u32::MAX, |c| c.order);
        let mut overflow = false;
        ranged.clear();
        let mut visit = |list: &[Entry<K>]| {
            for it in list {
                if it.order >= limit {
                    return;
                }
                if ranged.len() >= collect_cap {
                    overflow = true;
                    return;
                }
                let Some(a) = fam.atoms.get(it.atom as usize) else { continue };
                if a.holds(c, s, pk) {
                    let cand = Cand { order: it.order, need: a.need };
                    ranged.push(cand);
                    if unconditional(&cand) {
                        limit = it.order;
                        return;
                    }
                }
            }
        };
        let mut lists: ArrayVec<&[Entry<K>], PATH_LISTS> = ArrayVec::new();
        // An index never has more than `PATH_LISTS` lists for a key; were one to, the
        // point would search the index at lookup.
        let mut complete = fam.server.lists(K::key(s), &mut lists);
        lists.drain(..).for_each(&mut visit);
        complete &= fam.client.lists(K::key(c), &mut lists);
        lists.drain(..).for_each(&mut visit);
        complete &= fam.port.lists(pk, &mut lists);
        lists.drain(..).for_each(&mut visit);
        let overflow = overflow || !complete;
        ranged.extend_from_slice(&exact);
        ranged.sort_unstable();
        ranged.dedup();
        if let Some(end) = ranged.iter().position(unconditional) {
            ranged.truncate(end + 1);
        }
        let (list, overflow) = if overflow || ranged.len() > max_candidates {
            (&exact, true)
        } else {
            (&ranged, false)
        };
        let point = match (overflow, list.as_slice()) {
            (false, [only]) if unconditional(only) => {
                let Some(m) = meta.get(only.order as usize) else { continue };
                Point::Decided(Best { order: only.order, decision: m.decision, id: m.id })
            }
            _ => {
                let start = cands.len() as u32;
                cands.extend_from_slice(list);
                Point::Cands { start, len: list.len() as u32, overflow }
            }
        };
        map.insert(key, point);
    }
    map
}

/// Fixed seeds: compilation is deterministic (dpi-core has no source of randomness). The
/// keys are configured rules; traffic only probes the map.
fn hasher() -> ahash::RandomState {
    ahash::RandomState::with_seeds(
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    )
}
