//! FQDN learning: which DNS names an address is known by, learned from the DNS answers
//! seen on the wire (reference §4.9, "DNS snooping").
//!
//! Policy rules may name a peer by DNS name, exactly (`api.example.com`) or as a wildcard
//! (`*.example.com`). A connection carries addresses, not names, so the engine remembers,
//! per address, the names it was given for in DNS answers, and the policy stage asks
//! [`FqdnMap::names`] for the names of a session's peer and matches them with
//! [`crate::policy::name_matches`] (see [`FqdnMap::matches`]).
//!
//! ```text
//!  DNS payload ──► dns::parse_response ──► (question name, final A/AAAA addresses)
//!                                                   │ learn(name, v6, addr, now)
//!                                                   ▼
//!            FqdnMap: address ──► up to 8 names, each with an expiry
//!                                                   │ names(v6, addr, now)
//!                                                   ▼
//!                              policy: name_matches(pattern, name)
//! ```
//!
//! What is learned: the **question name** (what the client asked for, which is what
//! rules are written against), linked to the addresses at the end of its CNAME chain.
//! Intermediate CNAME names are not linked (NeuVector does the same). Wildcard records
//! are not materialised as NeuVector does (`a.b.example.com` also filed under
//! `*.b.example.com`, `*.example.com`): a wildcard pattern is matched against the exact
//! names at lookup time, which gives the same answer with one record per name.
//!
//! ## Bounds, expiry and eviction
//!
//! - **Addresses**: at most [`FqdnConfig::max_addrs`] (default 65 536). Each address
//!   entry is a fixed-size record (at most 192 bytes, asserted) holding up to
//!   [`FqdnConfig::names_per_addr`] (default and maximum [`MAX_NAMES_PER_ADDR`] = 8)
//!   (name, expiry) pairs.
//! - **Names** are interned: each distinct name is stored once, in a fixed-capacity slot
//!   (`ArrayString<253>`, 272 bytes with its hash and count), at most [`FqdnConfig::max_names`]
//!   (default: as many as addresses) at once. A slot is recycled when no address refers
//!   to it.
//! - **Expiry**: a (name, address) pair expires [`FqdnConfig::retention_secs`] (default
//!   1800 s, NeuVector's) after the last answer that gave it; every sighting refreshes it.
//!   The record TTL is not used: clients often keep using an address long after its TTL,
//!   and a rule must still recognise the connection. An address entry expires with its
//!   last pair. [`FqdnMap::names`] never returns an expired pair; [`FqdnMap::expire`]
//!   frees expired entries (call it from the caller's timer, e.g. once a second).
//! - **Eviction**: entries are kept on a list ordered by last sighting. Since every
//!   sighting sets the expiry to `now + retention`, the head of that list is both the
//!   oldest sighting and the entry closest to expiry. When a new address arrives and the
//!   table is full, the head is removed (counted in
//!   [`FqdnCounters::addr_evictions`], or in `expired` if it had already expired). When a
//!   new name arrives and the name slots are full, head entries are removed the same way
//!   until a slot is freed. When an address already has its maximum of names, a new name
//!   replaces its pair closest to expiry ([`FqdnCounters::name_evictions`]).
//! - **Allocation**: the two hash indexes are allocated at construction for twice their
//!   bounds (about 10 bytes per address and per name), so that cleaning up after removals
//!   never reallocates; the entry and name slabs grow on demand to their working size and
//!   are recycled through free lists, so once warmed up, learning and lookups allocate
//!   nothing (an integration test counts allocations).
//!
//! Time comes from the caller; the order of the eviction list assumes it does not go
//! backwards (if it does, eviction picks an entry near, not at, the earliest expiry).

pub mod dns;

use crate::packet::Addr;
use crate::policy::name_matches;
use crate::time::Time;
use arrayvec::ArrayString;
use hashbrown::HashTable;

pub use dns::MAX_NAME_LEN;

/// Most names one address can carry at once.
pub const MAX_NAMES_PER_ADDR: usize = 8;

const NIL: u32 = u32::MAX;
/// Largest accepted `max_addrs` and `max_names`.
const MAX_BOUND: usize = 1 << 28;

/// Bounds and retention of an [`FqdnMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FqdnConfig {
    /// Addresses remembered at once. Default 65 536; clamped to 1..=2^28.
    pub max_addrs: usize,
    /// Distinct names remembered at once. Default 65 536; clamped to 1..=2^28.
    pub max_names: usize,
    /// Names kept per address, 1 to [`MAX_NAMES_PER_ADDR`]. Default 8.
    pub names_per_addr: usize,
    /// Seconds a (name, address) pair is remembered after the last DNS answer that gave
    /// it. Default 1800.
    pub retention_secs: u32,
}

impl Default for FqdnConfig {
    fn default() -> Self {
        FqdnConfig {
            max_addrs: 65_536,
            max_names: 65_536,
            names_per_addr: MAX_NAMES_PER_ADDR,
            retention_secs: 1800,
        }
    }
}

/// What an [`FqdnMap`] did, cumulative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FqdnCounters {
    /// (name, address) sightings recorded (new or refreshed).
    pub learned: u64,
    /// Address entries removed to make room while still live.
    pub addr_evictions: u64,
    /// Names pushed out of an address that already had its maximum of names.
    pub name_evictions: u64,
    /// Address entries removed because all their names had expired.
    pub expired: u64,
    /// DNS messages given to [`FqdnMap::learn_from_dns`] that were successful responses.
    pub dns_responses: u64,
    /// DNS messages ignored as queries, error responses, other opcodes or unusable names.
    pub dns_ignored: u64,
    /// DNS messages ignored as malformed (including over-long CNAME chains).
    pub dns_malformed: u64,
}

/// A name an address was seen for, and until when.
#[derive(Clone, Copy, Debug)]
struct NameRef {
    /// Index of the name's slot.
    id: u32,
    expires: Time,
}

#[derive(Clone, Debug)]
struct AddrEntry {
    addr: Addr,
    v6: bool,
    len: u8,
    hash: u64,
    names: [NameRef; MAX_NAMES_PER_ADDR],
    /// Latest expiry among the names (= last sighting + retention).
    expires: Time,
    /// Eviction list, ordered by last sighting (`NIL` ends).
    prev: u32,
    next: u32,
}

impl AddrEntry {
    fn names(&self) -> &[NameRef] {
        &self.names[..usize::from(self.len)]
    }
}

#[derive(Clone, Debug)]
struct NameSlot {
    text: ArrayString<MAX_NAME_LEN>,
    hash: u64,
    /// Address entries referring to this name (plus a transient pin while learning).
    refs: u32,
}

/// Address → names learned from DNS answers. See the [module docs](self) for bounds,
/// expiry and eviction.
pub struct FqdnMap {
    cfg: FqdnConfig,
    retention_us: u64,
    hasher: ahash::RandomState,
    entries: Vec<AddrEntry>,
    free_entries: Vec<u32>,
    addr_index: HashTable<u32>,
    live: usize,
    /// Eviction list ends: least and most recently seen.
    head: u32,
    tail: u32,
    names: Vec<NameSlot>,
    free_names: Vec<u32>,
    name_index: HashTable<u32>,
    counters: FqdnCounters,
}

impl core::fmt::Debug for FqdnMap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FqdnMap")
            .field("cfg", &self.cfg)
            .field("addrs", &self.live)
            .field("names", &self.name_index.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl FqdnMap {
    /// A map of at most `max_addrs` addresses (and as many distinct names), remembering a
    /// name for `retention_secs` after its last sighting; 8 names per address.
    pub fn new(max_addrs: usize, retention_secs: u32) -> Self {
        Self::with_config(FqdnConfig {
            max_addrs,
            max_names: max_addrs,
            retention_secs,
            ..FqdnConfig::default()
        })
    }

    /// A map with the given bounds (clamped to their valid ranges).
    pub fn with_config(cfg: FqdnConfig) -> Self {
        let limit = MAX_BOUND;
        let cfg = FqdnConfig {
            max_addrs: cfg.max_addrs.clamp(1, limit),
            max_names: cfg.max_names.clamp(1, limit),
            names_per_addr: cfg.names_per_addr.clamp(1, MAX_NAMES_PER_ADDR),
            retention_secs: cfg.retention_secs,
        };
        FqdnMap {
            cfg,
            retention_us: u64::from(cfg.retention_secs) * 1_000_000,
            hasher: ahash::RandomState::with_seeds(
                0x243f_6a88_85a3_08d3,
                0x1319_8a2e_0370_7344,
                0xa409_3822_299f_31d0,
                0x082e_fa98_ec4e_6c89,
            ),
            entries: Vec::new(),
            free_entries: Vec::new(),
            // Sized for twice the bound up front: removals can leave tombstones, and
            // hashbrown cleans them by rehashing in place (no allocation) only while the
            // table is at most half full; otherwise it could reallocate in steady state.
            addr_index: HashTable::with_capacity(2 * cfg.max_addrs),
            live: 0,
            head: NIL,
            tail: NIL,
            names: Vec::new(),
            free_names: Vec::new(),
            name_index: HashTable::with_capacity(2 * cfg.max_names),
            counters: FqdnCounters::default(),
        }
    }

    /// The bounds in force.
    pub fn config(&self) -> &FqdnConfig {
        &self.cfg
    }

    /// What the map did so far.
    pub fn counters(&self) -> &FqdnCounters {
        &self.counters
    }

    /// Addresses held (some may have expired and not yet been removed by
    /// [`FqdnMap::expire`]).
    pub fn len(&self) -> usize {
        self.live
    }

    /// No address held.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Distinct names held.
    pub fn name_count(&self) -> usize {
        self.name_index.len()
    }

    /// Record that `addr` (IPv6 if `v6`, else a mapped IPv4 address) was given as an
    /// answer for `name` at `now`. The name is stored lowercase, without a trailing dot.
    /// Returns false (nothing recorded) if the name is empty or longer than
    /// [`MAX_NAME_LEN`].
    pub fn learn(&mut self, name: &str, v6: bool, addr: Addr, now: Time) -> bool {
        let name = name.strip_suffix('.').unwrap_or(name);
        let mut lower = ArrayString::<MAX_NAME_LEN>::new();
        if name.is_empty() || lower.try_push_str(name).is_err() {
            return false;
        }
        lower.make_ascii_lowercase();
        self.learn_lower(&lower, v6, addr, now)
    }

    /// Parse `payload` as a DNS message (a UDP payload, or a TCP message without its
    /// length prefix: see [`dns::tcp_message`]) and learn the question name for every
    /// final address of a successful response. Returns the addresses learned.
    pub fn learn_from_dns(&mut self, payload: &[u8], now: Time) -> usize {
        let mut answer = dns::Answer::new();
        match dns::parse_response(payload, &mut answer) {
            Ok(()) => self.counters.dns_responses += 1,
            Err(dns::Ignored::Malformed | dns::Ignored::CnameChain) => {
                self.counters.dns_malformed += 1;
                return 0;
            }
            Err(_) => {
                self.counters.dns_ignored += 1;
                return 0;
            }
        }
        let mut n = 0;
        for a in answer.addrs() {
            n += usize::from(self.learn_lower(answer.name(), a.v6, a.addr, now));
        }
        n
    }

    /// The names `addr` is known by at `now` (unexpired pairs), in a deterministic order
    /// (the order of the address's name slots).
    pub fn names(&self, v6: bool, addr: Addr, now: Time) -> impl Iterator<Item = &str> + '_ {
        let refs = match self.find_addr(v6, addr) {
            Some(i) => self.entries[i as usize].names(),
            None => &[],
        };
        refs.iter()
            .filter(move |r| r.expires > now)
            .map(|r| self.names[r.id as usize].text.as_str())
    }

    /// [`FqdnMap::names`] into a caller's array (such as the `&[&str]` a policy query
    /// takes). Returns how many were written; stops when `out` is full.
    pub fn names_into<'a>(&'a self, v6: bool, addr: Addr, now: Time, out: &mut [&'a str]) -> usize {
        let mut n = 0;
        for (slot, name) in out.iter_mut().zip(self.names(v6, addr, now)) {
            *slot = name;
            n += 1;
        }
        n
    }

    /// Is `addr` known at `now` by a name that `pattern` (exact, or a `*.` wildcard)
    /// matches? The matching is [`crate::policy::name_matches`], as in policy rules.
    pub fn matches(&self, v6: bool, addr: Addr, pattern: &str, now: Time) -> bool {
        self.names(v6, addr, now).any(|n| name_matches(pattern, n))
    }

    /// Remove every address whose names have all expired at `now`. Returns how many.
    pub fn expire(&mut self, now: Time) -> usize {
        let mut n: usize = 0;
        while self.head != NIL && self.entries[self.head as usize].expires <= now {
            self.remove_entry(self.head);
            n += 1;
        }
        self.counters.expired += n as u64;
        n
    }

    fn learn_lower(&mut self, name: &str, v6: bool, addr: Addr, now: Time) -> bool {
        let expires = now.add_micros(self.retention_us);
        let Some(id) = self.intern(name, now) else {
            return false;
        };
        // `id` is pinned (refs + 1) so that making room for the address cannot free it.
        let hash = self.hasher.hash_one((addr, v6));
        let idx = match self.find_addr_hashed(hash, v6, addr) {
            Some(i) => i,
            None => self.insert_addr(hash, v6, addr, now),
        };
        let cap = self.cfg.names_per_addr;
        let e = &mut self.entries[idx as usize];
        e.expires = e.expires.max(expires);
        let mut released = None;
        if let Some(r) = e.names[..usize::from(e.len)].iter_mut().find(|r| r.id == id) {
            r.expires = expires;
            released = Some(id); // already referred to: drop the pin
        } else if usize::from(e.len) < cap {
            e.names[usize::from(e.len)] = NameRef { id, expires };
            e.len += 1;
        } else {
            // Full: replace the pair closest to expiry (expired ones come first).
            let mut victim = 0;
            for (i, r) in e.names().iter().enumerate() {
                if r.expires < e.names[victim].expires {
                    victim = i;
                }
            }
            let old = core::mem::replace(&mut e.names[victim], NameRef { id, expires });
            if old.expires > now {
                self.counters.name_evictions += 1;
            }
            released = Some(old.id);
        }
        if let Some(old) = released {
            self.release_name(old);
        }
        self.touch(idx);
        self.counters.learned += 1;
        true
    }

    fn find_addr(&self, v6: bool, addr: Addr) -> Option<u32> {
        self.find_addr_hashed(self.hasher.hash_one((addr, v6)), v6, addr)
    }

    fn find_addr_hashed(&self, hash: u64, v6: bool, addr: Addr) -> Option<u32> {
        let entries = &self.entries;
        self.addr_index
            .find(hash, |&i| {
                let e = &entries[i as usize];
                e.addr == addr && e.v6 == v6
            })
            .copied()
    }

    /// A new, empty entry for the address, at the tail of the eviction list.
    fn insert_addr(&mut self, hash: u64, v6: bool, addr: Addr, now: Time) -> u32 {
        while self.live >= self.cfg.max_addrs && self.head != NIL {
            self.evict_head(now);
        }
        let entry = AddrEntry {
            addr,
            v6,
            len: 0,
            hash,
            names: [NameRef { id: NIL, expires: Time::ZERO }; MAX_NAMES_PER_ADDR],
            expires: now,
            prev: NIL,
            next: NIL,
        };
        let idx = match self.free_entries.pop() {
            Some(i) => {
                self.entries[i as usize] = entry;
                i
            }
            None => {
                self.entries.push(entry);
                // The free list can come to hold every entry: grow it with the slab, so
                // freeing never allocates.
                let want = self.entries.len();
                self.free_entries.reserve(want.saturating_sub(self.free_entries.len()));
                (self.entries.len() - 1) as u32
            }
        };
        let entries = &self.entries;
        self.addr_index.insert_unique(hash, idx, |&i| entries[i as usize].hash);
        self.live += 1;
        self.link_tail(idx);
        idx
    }

    /// Remove the least recently seen entry to make room.
    fn evict_head(&mut self, now: Time) {
        if self.entries[self.head as usize].expires <= now {
            self.counters.expired += 1;
        } else {
            self.counters.addr_evictions += 1;
        }
        self.remove_entry(self.head);
    }

    fn remove_entry(&mut self, idx: u32) {
        self.unlink(idx);
        let e = &self.entries[idx as usize];
        let (hash, len) = (e.hash, usize::from(e.len));
        if let Ok(slot) = self.addr_index.find_entry(hash, |&i| i == idx) {
            slot.remove();
        }
        for k in 0..len {
            let id = self.entries[idx as usize].names[k].id;
            self.release_name(id);
        }
        self.entries[idx as usize].len = 0;
        self.free_entries.push(idx);
        self.live -= 1;
    }

    /// Move an entry to the tail of the eviction list (most recently seen).
    fn touch(&mut self, idx: u32) {
        if self.tail != idx {
            self.unlink(idx);
            self.link_tail(idx);
        }
    }

    fn link_tail(&mut self, idx: u32) {
        let tail = self.tail;
        {
            let e = &mut self.entries[idx as usize];
            e.prev = tail;
            e.next = NIL;
        }
        match tail {
            NIL => self.head = idx,
            t => self.entries[t as usize].next = idx,
        }
        self.tail = idx;
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let e = &self.entries[idx as usize];
            (e.prev, e.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.entries[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.entries[n as usize].prev = prev,
        }
        let e = &mut self.entries[idx as usize];
        e.prev = NIL;
        e.next = NIL;
    }

    /// The slot of `name` (lowercase), created if needed, with one more reference (the
    /// caller's pin). `None` only if no slot can be freed.
    fn intern(&mut self, name: &str, now: Time) -> Option<u32> {
        let hash = self.hasher.hash_one(name.as_bytes());
        let names = &self.names;
        if let Some(&id) = self.name_index.find(hash, |&i| names[i as usize].text.as_str() == name)
        {
            self.names[id as usize].refs += 1;
            return Some(id);
        }
        // Make room: every name is referred to by some entry, so removing entries from
        // the head of the eviction list frees slots.
        while self.name_index.len() >= self.cfg.max_names {
            if self.head == NIL {
                return None;
            }
            self.evict_head(now);
        }
        let mut text = ArrayString::new();
        text.try_push_str(name).ok()?;
        let slot = NameSlot { text, hash, refs: 1 };
        let id = match self.free_names.pop() {
            Some(i) => {
                self.names[i as usize] = slot;
                i
            }
            None => {
                self.names.push(slot);
                let want = self.names.len();
                self.free_names.reserve(want.saturating_sub(self.free_names.len()));
                (self.names.len() - 1) as u32
            }
        };
        let names = &self.names;
        self.name_index.insert_unique(hash, id, |&i| names[i as usize].hash);
        Some(id)
    }

    fn release_name(&mut self, id: u32) {
        let slot = &mut self.names[id as usize];
        slot.refs -= 1;
        if slot.refs == 0 {
            let hash = slot.hash;
            slot.text.clear();
            if let Ok(e) = self.name_index.find_entry(hash, |&i| i == id) {
                e.remove();
            }
            self.free_names.push(id);
        }
    }
}

#[cfg(test)]
mod tests;
