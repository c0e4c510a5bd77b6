//! The compiled matcher: the same answer as [`super::reference::first_match`] for every
//! query, without scanning the rule list.
//!
//! # Structure
//!
//! [`CompiledRules::compile`] splits every rule into **atoms**, one per combination of a
//! `from` entry, a `to` entry and a port interval (the cross product; the atoms of a rule
//! share its order). An atom is a box of one address family: client interval × server
//! interval × port-key interval, where the port key is `proto << 16 | port` (`Tcp(80, 90)`
//! is one interval, [`PortSpec::Icmp`] two, [`PortSpec::Any`] every key), plus "needs
//! external" flags for [`Peer::External`] sides (whose interval is every address).
//! `Any`/`External` on both sides give an atom in each family; a `Net` never meets the
//! other family (no atom). A rule with an empty `from`, `to` or `ports` gives no atom.
//!
//! - **Exact atoms** (one client, one server, one TCP or UDP port: what learned rules look
//!   like) go in a hash map per family keyed by that point. Its value is the point's
//!   **candidate list**: every atom, exact or range, whose box holds the point, by order,
//!   cut after the first one that decides every query there (no flags, apps or vhost).
//!   A query hitting the map checks those few candidates and is done, whatever the number
//!   of rules; a point whose only candidate decides every query (the common case of a
//!   learned rule) holds the answer itself. A point with more than [`MAX_CANDIDATES`]
//!   candidates keeps only its exact atoms and is marked to search the range index too.
//! - **Range atoms** (the rest) go in their family's range index: three stabbing indexes
//!   (`tree.rs`) on the server address, the client address and the port key. Each atom is
//!   in **one** of them: the dimension where its interval holds the fewest midpoints of
//!   the family's atoms (the midpoints stand for the traffic the rules expect; ties:
//!   server, client, port), so a wide or `Any` side is indexed only when every side is.
//!   An index is a stack of layers: narrow intervals in elementary-interval form (one
//!   binary search, or one radix-table load, gives the list of every interval holding
//!   the key), the few wide ones in a second layer of their own, and, for pathological
//!   nesting only, a segment tree. The index lists hold `Entry`s, the atom's box in
//!   compact keys (IPv4 as `u32`), sorted by order: a scan checks a candidate without
//!   touching the atom and stops at the first order not better than the best so far; a
//!   whole index is skipped when its smallest order is not better. The lists of the three
//!   indexes are gathered first and scanned after, so their memory loads overlap.
//! - **Named rules** (with a [`Peer::Fqdn`] entry) are also kept in an ordered side list,
//!   checked whole and only when the query carries names; their address-only atoms are
//!   indexed as above (a rule found twice gives the same answer).
//! - **Wide rules**, whose cross product exceeds [`MAX_ATOMS_PER_RULE`], are not split but
//!   kept in an ordered side list checked whole on every lookup (pruned by order): memory
//!   stays bounded against rules listing hundreds of peers on both sides.
//!
//! The answer is the candidate with the smallest order whose rule decides the query
//! (allow, deny, or a stop with `CheckApp`/`CheckVhost`); a candidate whose rule skips the
//! query (an app rule and another or no application, a vhost rule and another vhost) does
//! not end the search, exactly as in the reference.
//!
//! # Costs
//!
//! R rules, A atoms (the sum of the rules' cross products: A = R when each rule has one
//! entry of each kind), B range atoms, E exact points, L = [`MAX_CANDIDATES`]:
//!
//! - **memory** O(R + A + B log B + E·L), O(R + A + E·L) in practice: a flat layer holds
//!   at most 4 entries per range atom (plus a constant) and its radix table 8 to 16
//!   buckets per segment; only intervals too wide for that go up a layer, and after
//!   three flat layers into a segment tree (each interval in at most `2 log2(2B + 1)`
//!   nodes), so many wide nested ranges grow as B log B, never quadratically. Candidate
//!   lists are capped at L. Rules are kept whole only when they have conditions, names
//!   or are too wide. About 170 bytes per rule for the benchmark's mix (80% exact, 20%
//!   range); 900 bytes per rule for 10 000 ranges nested in one another;
//! - **compile** O(A log A + E·(log B + c)), c ≤ 4L the candidates gathered per exact
//!   point: 3 to 5 ms for 10 000 rules, 50 to 70 ms for 100 000 (benchmark mix);
//! - **lookup** hitting an exact point: one hash probe and at most L candidate checks
//!   (none for a decided point). Otherwise (or at an overflowed point): a hash probe and,
//!   per index, one radix load or binary search per layer (two layers typically, a tree
//!   walk of `log2(2B + 1)` nodes in the pathological case) and the candidates in its
//!   lists whose order is better than the best so far. That last term is the worst case: range atoms whose
//!   indexed intervals hold the query's point but whose other dimensions, flags or
//!   conditions reject it are checked one by one: O(B) for adversarial configurations
//!   (10 000 nested ranges all skipped by an application condition: 75 µs), two or three
//!   for realistic ones. Named and wide rules add a scan of their (short) lists, pruned
//!   by order.
//!
//! `lookup` does not allocate.
//!
//! # Invariants
//!
//! - An exact point's candidate list holds every atom whose box holds the point, up to
//!   and including the first unconditional one, in order (a list of one unconditional
//!   atom is stored as its answer); or the entry is marked overflowed and the lookup
//!   searches the range index as well.
//! - Every range atom is in exactly one index of its family; every index list is sorted
//!   by order; an entry's compact box holds every key its atom's box holds, and is exact
//!   (no false positives for mapped IPv4 addresses) unless the entry is marked to be
//!   rechecked on the atom.
//! - Orders are rule positions (`u32`: rules past `u32::MAX - 1` are ignored).

mod build;
mod tree;

#[cfg(test)]
mod tests;

use super::{name_matches, AppState, Decision, Match, Peer, Query, Rule};
use arrayvec::ArrayVec;
use hashbrown::HashMap;
use tree::Tree;

#[cfg(doc)]
use super::PortSpec;

/// Longest candidate list stored for an exact point; longer lists fall back to the range
/// index for that point.
pub const MAX_CANDIDATES: usize = 16;

/// Largest cross product (`from` × `to` × port intervals) a rule is split into; a larger
/// rule is checked whole on every lookup.
pub const MAX_ATOMS_PER_RULE: usize = 4096;

/// Lists gathered from a family's three indexes before scanning (flat layers give one
/// each); more (tree layers) fall back to one index at a time.
const GATHER: usize = 16;

/// Most lists one index can give: its flat layers, then a tree path of at most
/// `log2(2n) + 1` nodes for `n < 2^33` segments.
const PATH_LISTS: usize = tree::MAX_FLAT_LAYERS + 35;

/// IPv4 addresses are `V4_BASE | v4` (see [`crate::packet::Addr`]).
const V4_BASE: u128 = 0xffff_0000_0000;

/// The atom requires the query's client to be external.
const NEED_CLIENT_EXT: u8 = 1;
/// The atom requires the query's server to be external.
const NEED_SERVER_EXT: u8 = 2;

/// Port key of a protocol and server port: `proto << 16 | port`.
#[inline]
fn port_key(proto: u8, port: u16) -> u32 {
    u32::from(proto) << 16 | u32::from(port)
}

/// The key of an address in a family's index. For IPv4 (`u32`) it is a monotone clamp of
/// the mapped address: containment of keys follows from containment of addresses, and
/// is equivalent to it for mapped addresses and bounds (others are rechecked on the
/// exact `u128` bounds, see [`RECHECK`]).
trait FamilyKey: tree::Key {
    fn key(addr: u128) -> Self;
    /// `key` is exact for this query address.
    fn exact(addr: u128) -> bool;
    /// For every exact query address `x`: `lo <= x` iff `key(lo) <= key(x)`.
    fn lo_exact(lo: u128) -> bool;
    /// For every exact query address `x`: `x <= hi` iff `key(x) <= key(hi)`.
    fn hi_exact(hi: u128) -> bool;
}

impl FamilyKey for u32 {
    #[inline]
    fn key(addr: u128) -> u32 {
        addr.saturating_sub(V4_BASE).min(u128::from(u32::MAX)) as u32
    }
    #[inline]
    fn exact(addr: u128) -> bool {
        addr >> 32 == 0xffff
    }
    fn lo_exact(lo: u128) -> bool {
        lo <= V4_BASE || Self::exact(lo)
    }
    fn hi_exact(hi: u128) -> bool {
        hi >= V4_BASE | 0xffff_ffff || Self::exact(hi)
    }
}

impl FamilyKey for u128 {
    #[inline]
    fn key(addr: u128) -> u128 {
        addr
    }
    #[inline]
    fn exact(_: u128) -> bool {
        true
    }
    fn lo_exact(_: u128) -> bool {
        true
    }
    fn hi_exact(_: u128) -> bool {
        true
    }
}

/// The packed key of an IPv4 exact point, if both addresses are mapped IPv4 addresses.
#[inline]
fn exact4_key(client: u128, server: u128, pk: u32) -> Option<u128> {
    if client >> 32 != 0xffff || server >> 32 != 0xffff {
        return None;
    }
    Some(u128::from(client as u32) << 64 | u128::from(server as u32) << 32 | u128::from(pk))
}

/// A box of one family: the unit of indexing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Atom {
    order: u32,
    client_lo: u128,
    client_hi: u128,
    server_lo: u128,
    server_hi: u128,
    port_lo: u32,
    port_hi: u32,
    /// `NEED_*` flags.
    need: u8,
}

impl Atom {
    /// Does the box hold the point (flags not considered)?
    #[inline]
    fn holds(&self, client: u128, server: u128, pk: u32) -> bool {
        self.client_lo <= client
            && client <= self.client_hi
            && self.server_lo <= server
            && server <= self.server_hi
            && self.port_lo <= pk
            && pk <= self.port_hi
    }
}

/// A range atom as the index stores it: the rule order, the box in the family's keys
/// (checked without touching the atom), flags, and the atom (for rechecks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry<K> {
    order: u32,
    port_lo: u32,
    port_hi: u32,
    atom: u32,
    /// `NEED_*` flags and [`RECHECK`].
    flags: u8,
    client_lo: K,
    client_hi: K,
    server_lo: K,
    server_hi: K,
}

impl<K: FamilyKey> tree::Ordered for Entry<K> {
    #[inline]
    fn order(&self) -> u32 {
        self.order
    }
}

/// The entry's key box is not exact for its atom (IPv4 bounds outside the mapped
/// space): recheck the atom on a key match.
const RECHECK: u8 = 4;

/// A candidate of an exact point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Cand {
    order: u32,
    /// `NEED_*` flags.
    need: u8,
}

/// What an exact point's map entry holds.
#[derive(Clone, Copy, Debug)]
enum Point {
    /// One candidate, which decides every query at the point: the answer, at hand.
    Decided(Best),
    /// The candidates `cands[start..start + len]`.
    Cands {
        start: u32,
        len: u32,
        /// The list holds only the exact atoms: search the range index too.
        overflow: bool,
    },
}

/// What a rule decides when it needs nothing from the query beyond its addresses.
#[derive(Clone, Copy, Debug)]
struct Meta {
    id: u32,
    /// Allow or Deny.
    decision: Decision,
    /// The rule names applications or is a vhost rule.
    cond: bool,
    /// Index of the rule in `CompiledRules::whole` (conditional, named and wide rules),
    /// else `u32::MAX`.
    whole: u32,
}

/// One family's range index.
#[derive(Clone, Debug)]
struct Family<K> {
    atoms: Vec<Atom>,
    server: Tree<K, Entry<K>>,
    client: Tree<K, Entry<K>>,
    port: Tree<u32, Entry<K>>,
}

/// A query in a family's keys.
#[derive(Clone, Copy, Debug)]
struct Keys<K> {
    client: K,
    server: K,
    pk: u32,
    /// `NEED_*` flags the query does not satisfy.
    refuse: u8,
    /// The keys are exact for the query's addresses.
    exact: bool,
}

type ExactMap<K> = HashMap<K, Point, ahash::RandomState>;

/// Rules compiled for lookup (see the module docs).
#[derive(Debug, Clone)]
pub struct CompiledRules {
    /// The rules kept whole: conditional (apps, vhost), named and wide ones.
    whole: Vec<Rule>,
    meta: Vec<Meta>,
    exact4: ExactMap<u128>,
    exact6: ExactMap<(u128, u128, u32)>,
    cands: Vec<Cand>,
    v4: Family<u32>,
    v6: Family<u128>,
    /// Orders of the rules with an FQDN peer, ascending.
    named: Vec<u32>,
    /// Orders of the rules too wide to split, ascending.
    wide: Vec<u32>,
}

/// The best match so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Best {
    /// `u32::MAX`: none.
    order: u32,
    decision: Decision,
    /// The rule's id.
    id: u32,
}

impl Best {
    const NONE: Best = Best { order: u32::MAX, decision: Decision::Allow, id: 0 };
}

impl CompiledRules {
    /// Compile an ordered rule list.
    pub fn compile(rules: &[Rule]) -> Self {
        build::compile(rules, build::Limits::DEFAULT)
    }

    /// The first matching rule (see [`super`] for the semantics).
    pub fn lookup(&self, q: &Query<'_>) -> Option<Match> {
        let pk = port_key(q.proto, q.port);
        let flags = if q.client_external { NEED_CLIENT_EXT } else { 0 }
            | if q.server_external { NEED_SERVER_EXT } else { 0 };
        let mut best = Best::NONE;
        let point = if q.v6 {
            self.exact6.get(&(q.client, q.server, pk))
        } else {
            exact4_key(q.client, q.server, pk).and_then(|k| self.exact4.get(&k))
        };
        let search_ranges = match point {
            Some(&Point::Decided(b)) => {
                best = b;
                false
            }
            Some(&Point::Cands { start, len, overflow }) => {
                let (s, e) = (start as usize, start as usize + len as usize);
                self.check_cands(self.cands.get(s..e).unwrap_or_default(), q, flags, &mut best);
                overflow
            }
            None => true,
        };
        if search_ranges {
            if q.v6 {
                self.search_family(&self.v6, q, pk, flags, &mut best);
            } else {
                self.search_family(&self.v4, q, pk, flags, &mut best);
            }
        }
        if !q.client_names.is_empty() || !q.server_names.is_empty() {
            self.check_whole(&self.named, q, &mut best);
        }
        self.check_whole(&self.wide, q, &mut best);
        (best.order != u32::MAX).then_some(Match {
            rule_id: best.id,
            order: best.order,
            decision: best.decision,
        })
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    /// No rules.
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// Check an exact point's candidates.
    #[inline]
    fn check_cands(&self, cands: &[Cand], q: &Query<'_>, flags: u8, best: &mut Best) {
        for c in cands {
            if c.order >= best.order {
                return;
            }
            if c.need & !flags != 0 {
                continue;
            }
            if let Some(b) = self.outcome(c.order, q) {
                *best = b;
                return;
            }
        }
    }

    /// Search a family's range index.
    #[inline]
    fn search_family<K: FamilyKey>(
        &self,
        fam: &Family<K>,
        q: &Query<'_>,
        pk: u32,
        flags: u8,
        best: &mut Best,
    ) {
        let keys = Keys {
            client: K::key(q.client),
            server: K::key(q.server),
            pk,
            refuse: !flags & (NEED_CLIENT_EXT | NEED_SERVER_EXT),
            exact: K::exact(q.client) && K::exact(q.server),
        };
        // Gather the lists of the three indexes first, then scan them: the indexes'
        // loads overlap instead of waiting on each other's scans. The order of the scans
        // does not matter (the best order wins).
        let mut lists: ArrayVec<&[Entry<K>], GATHER> = ArrayVec::new();
        let all = (fam.server.min_order() >= best.order
            || fam.server.lists(keys.server, &mut lists))
            && (fam.client.min_order() >= best.order || fam.client.lists(keys.client, &mut lists))
            && (fam.port.min_order() >= best.order || fam.port.lists(pk, &mut lists));
        for l in &lists {
            self.scan(&fam.atoms, l, q, &keys, best);
        }
        if !all {
            // More lists than that (tree layers): one index at a time.
            self.search_index(&fam.server, keys.server, &fam.atoms, q, &keys, best);
            self.search_index(&fam.client, keys.client, &fam.atoms, q, &keys, best);
            self.search_index(&fam.port, pk, &fam.atoms, q, &keys, best);
        }
    }

    /// Scan every list of one index for `key`.
    fn search_index<I: tree::Key, K: FamilyKey>(
        &self,
        index: &Tree<I, Entry<K>>,
        key: I,
        atoms: &[Atom],
        q: &Query<'_>,
        keys: &Keys<K>,
        best: &mut Best,
    ) {
        let mut path: ArrayVec<&[Entry<K>], PATH_LISTS> = ArrayVec::new();
        let complete = index.lists(key, &mut path);
        debug_assert!(complete, "an index gives at most PATH_LISTS lists");
        for l in &path {
            self.scan(atoms, l, q, keys, best);
        }
    }

    /// Scan one index list (sorted by order) for a better match.
    #[inline(always)]
    fn scan<K: FamilyKey>(
        &self,
        atoms: &[Atom],
        list: &[Entry<K>],
        q: &Query<'_>,
        k: &Keys<K>,
        best: &mut Best,
    ) {
        for e in list {
            if e.order >= best.order {
                return;
            }
            if e.flags & k.refuse != 0
                || k.pk < e.port_lo
                || k.pk > e.port_hi
                || k.client < e.client_lo
                || k.client > e.client_hi
                || k.server < e.server_lo
                || k.server > e.server_hi
            {
                continue;
            }
            if (e.flags & RECHECK != 0 || !k.exact)
                && !atoms.get(e.atom as usize).is_some_and(|a| a.holds(q.client, q.server, k.pk))
            {
                continue;
            }
            if let Some(b) = self.outcome(e.order, q) {
                *best = b;
                return;
            }
        }
    }

    /// Check the rules `orders` (ascending) whole.
    fn check_whole(&self, orders: &[u32], q: &Query<'_>, best: &mut Best) {
        for &o in orders {
            if o >= best.order {
                return;
            }
            let Some(r) = self.whole_rule(o) else { continue };
            if !addresses_match(r, q) {
                continue;
            }
            if let Some(b) = self.outcome(o, q) {
                *best = b;
                return;
            }
        }
    }

    /// Rule `order`, if kept whole.
    fn whole_rule(&self, order: u32) -> Option<&Rule> {
        self.whole.get(self.meta.get(order as usize)?.whole as usize)
    }

    /// What rule `order`, whose addresses and ports match, decides (as a match): `None`
    /// if its application or vhost condition skips the query.
    #[inline]
    fn outcome(&self, order: u32, q: &Query<'_>) -> Option<Best> {
        let meta = self.meta.get(order as usize)?;
        let decided = |decision| Some(Best { order, decision, id: meta.id });
        if !meta.cond {
            return decided(meta.decision);
        }
        let r = self.whole.get(meta.whole as usize)?;
        if r.vhost {
            match q.vhost {
                None => return decided(Decision::CheckVhost),
                Some(v) if !fqdn_patterns(r).any(|p| name_matches(p, v)) => return None,
                Some(_) => {}
            }
        }
        if !r.apps.is_empty() {
            match q.app {
                AppState::Pending => return decided(Decision::CheckApp),
                AppState::Unidentified => return None,
                AppState::Known(a) if !r.apps.contains(&a) => return None,
                AppState::Known(_) => {}
            }
        }
        decided(meta.decision)
    }
}

/// The server-side FQDN patterns of a rule: what a virtual host (HTTP Host, TLS SNI,
/// which name the server) is checked against.
fn fqdn_patterns(r: &Rule) -> impl Iterator<Item = &str> {
    r.to.iter().filter_map(|p| match p {
        Peer::Fqdn(s) => Some(s.as_str()),
        _ => None,
    })
}

fn peer_matches(p: &Peer, v6: bool, addr: u128, external: bool, names: &[&str]) -> bool {
    match p {
        Peer::Any => true,
        Peer::External => external,
        Peer::Net(n) => n.contains(v6, addr),
        Peer::Fqdn(pattern) => names.iter().any(|n| name_matches(pattern, n)),
    }
}

/// Do the rule's peers and ports match the query (conditions aside)?
fn addresses_match(r: &Rule, q: &Query<'_>) -> bool {
    r.ports.iter().any(|p| p.covers(q.proto, q.port))
        && r.from.iter().any(|p| peer_matches(p, q.v6, q.client, q.client_external, q.client_names))
        && r.to.iter().any(|p| peer_matches(p, q.v6, q.server, q.server_external, q.server_names))
}
