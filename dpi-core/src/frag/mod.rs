//! Stage 1b: IPv4 and IPv6 fragment reassembly (RFC 791, RFC 8200 §4.5, RFC 5722).
//!
//! Fragments of a datagram are keyed by (source, destination, identification, protocol
//! for IPv4, VLANs). Each fragment's data is copied into its datagram's buffer at its
//! offset; once the first and last fragments are there and nothing is missing, the
//! datagram is rebuilt into one frame (the first fragment's link and IP headers, the
//! fragment fields cleared, lengths and the IPv4 checksum fixed; for IPv6 the Fragment
//! header removed) and inspected as a single packet.
//!
//! Unlike NeuVector, fragments are not held back: each fragment is forwarded when it
//! arrives and the verdict on the reassembled datagram applies to the fragment that
//! completes it. A denied datagram therefore never reaches its receiver complete, and
//! allowed traffic gains no latency.
//!
//! Bounds (`FragConfig`): at most `max_datagrams` datagrams and `max_bytes` bytes of
//! fragment data held; a datagram is discarded `timeout_secs` after its first fragment.
//! Checks: a fragment overlapping data already held (other than an exact duplicate) is
//! dropped and its whole datagram discarded (RFC 5722; the "teardrop" attack); a fragment
//! past 65 535 bytes, a non-final fragment whose length is not a multiple of 8, or a
//! final fragment contradicting an earlier one is invalid. Buffers are recycled, so
//! steady-state reassembly does not allocate.

use crate::action::DropReason;
use crate::config::FragConfig;
use crate::packet::{checksum, Addr, Decoded, FragInfo};
use crate::time::Time;
use arrayvec::ArrayVec;
use hashbrown::HashTable;

/// Largest reassembled payload (the IP length fields are 16 bits).
const MAX_DATAGRAM: usize = 65_535;
/// Largest link + unfragmentable IP header kept from the first fragment.
const MAX_HEADER: usize = 512;
/// Separate received ranges per datagram before it is given up as invalid.
const MAX_RANGES: usize = 64;
const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
struct FragKey {
    src: Addr,
    dst: Addr,
    id: u32,
    proto: u8,
    v6: bool,
    vlan: [u16; 2],
}

#[derive(Debug, Default)]
struct Datagram {
    key: FragKey,
    hash: u64,
    live: bool,
    created: Time,
    /// Creation-order list, for timeouts.
    prev: u32,
    next: u32,
    /// Link header + IP header (+ IPv6 extension headers before the Fragment header) of the
    /// first fragment.
    header: ArrayVec<u8, MAX_HEADER>,
    l3_off: usize,
    /// IPv6: offset in `header` of the next-header byte naming the Fragment header.
    nh_field: usize,
    next_proto: u8,
    has_first: bool,
    total: Option<u32>,
    data: Vec<u8>,
    ranges: ArrayVec<(u32, u32), MAX_RANGES>,
    held: usize,
}

/// What happened to a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Stored; the datagram is not complete yet.
    Held,
    /// The datagram is complete and rebuilt in the output buffer.
    Complete,
    /// Rejected (the datagram, if any, is discarded).
    Rejected(DropReason),
}

pub(crate) struct Defrag {
    cfg: FragConfig,
    index: HashTable<u32>,
    hasher: ahash::RandomState,
    slots: Vec<Datagram>,
    free: Vec<u32>,
    oldest: u32,
    newest: u32,
    live: usize,
    bytes: usize,
}

impl core::fmt::Debug for Defrag {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Defrag")
            .field("live", &self.live)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl Defrag {
    pub(crate) fn new(cfg: FragConfig, seed: u64) -> Self {
        Defrag {
            cfg,
            index: HashTable::with_capacity(cfg.max_datagrams),
            hasher: ahash::RandomState::with_seeds(seed ^ 0xf7a9, seed, !seed, seed.rotate_left(7)),
            slots: Vec::new(),
            free: Vec::new(),
            oldest: NIL,
            newest: NIL,
            live: 0,
            bytes: 0,
        }
    }

    /// Datagrams under reassembly.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Offer a fragment (`d.ip.frag` is `fi`). On `Complete`, `out` holds the rebuilt frame.
    pub(crate) fn offer(
        &mut self,
        frame: &[u8],
        d: &Decoded,
        fi: &FragInfo,
        now: Time,
        out: &mut Vec<u8>,
    ) -> Offer {
        let off = fi.offset as usize;
        let avail = frame.len().saturating_sub(fi.data_off).min(fi.data_len);
        if d.ip.truncated || avail < fi.data_len {
            return Offer::Rejected(DropReason::FragInvalid);
        }
        let len = fi.data_len;
        let end = off + len;
        if end > MAX_DATAGRAM || (fi.more && (!len.is_multiple_of(8) || len == 0)) {
            return Offer::Rejected(DropReason::FragInvalid);
        }
        let key = FragKey {
            src: d.ip.src,
            dst: d.ip.dst,
            id: fi.id,
            proto: if d.ip.v6 { 0 } else { fi.next_proto },
            v6: d.ip.v6,
            vlan: d.vlan,
        };
        if self.bytes + len > self.cfg.max_bytes {
            return Offer::Rejected(DropReason::FragTableFull);
        }
        let hash = self.hasher.hash_one(key);
        let slots = &self.slots;
        let idx = match self.index.find(hash, |&i| slots[i as usize].key == key).copied() {
            Some(i) => i,
            None => {
                if self.live >= self.cfg.max_datagrams {
                    return Offer::Rejected(DropReason::FragTableFull);
                }
                self.alloc(key, hash, now)
            }
        };
        let (start, end32) = (off as u32, end as u32);
        let g = &mut self.slots[idx as usize];
        // Exact duplicate of a fragment already held: harmless, nothing to add.
        if g.ranges.iter().any(|&(s, e)| s <= start && end32 <= e)
            && g.data.get(off..end) == frame.get(fi.data_off..fi.data_off + len)
        {
            return Offer::Held;
        }
        if g.ranges.iter().any(|&(s, e)| start < e && s < end32) {
            self.discard(idx);
            return Offer::Rejected(DropReason::FragOverlap);
        }
        let contradicts = match g.total {
            Some(t) => end32 > t || (!fi.more && end32 != t),
            None => !fi.more && g.ranges.iter().any(|&(_, e)| e > end32),
        };
        if contradicts {
            self.discard(idx);
            return Offer::Rejected(DropReason::FragInvalid);
        }
        if !fi.more {
            g.total = Some(end32);
        }
        if off == 0 {
            let hdr_end = if d.ip.v6 { fi.v6_frag_hdr_off } else { fi.data_off };
            if hdr_end > MAX_HEADER {
                self.discard(idx);
                return Offer::Rejected(DropReason::FragInvalid);
            }
            g.header.clear();
            let _ = g.header.try_extend_from_slice(&frame[..hdr_end]);
            g.l3_off = d.l3_off;
            g.nh_field = fi.v6_nh_field_off;
            g.next_proto = fi.next_proto;
            g.has_first = true;
        }
        if g.data.len() < end {
            g.data.resize(end, 0);
        }
        g.data[off..end].copy_from_slice(&frame[fi.data_off..fi.data_off + len]);
        if !insert_range(&mut g.ranges, start, end32) {
            self.discard(idx);
            return Offer::Rejected(DropReason::FragInvalid);
        }
        g.held += len;
        self.bytes += len;
        let complete = g.has_first && g.total.is_some_and(|t| g.ranges[..] == [(0, t)]);
        if !complete {
            return Offer::Held;
        }
        build(g, out);
        self.discard(idx);
        Offer::Complete
    }

    /// Discard datagrams older than the timeout; returns how many.
    pub(crate) fn expire(&mut self, now: Time) -> u64 {
        let mut n = 0;
        let limit = u64::from(self.cfg.timeout_secs) * 1_000_000;
        while self.oldest != NIL {
            let g = &self.slots[self.oldest as usize];
            if now.as_micros().saturating_sub(g.created.as_micros()) < limit {
                break;
            }
            self.discard(self.oldest);
            n += 1;
        }
        n
    }

    fn alloc(&mut self, key: FragKey, hash: u64, now: Time) -> u32 {
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Datagram::default());
                (self.slots.len() - 1) as u32
            }
        };
        let prev_newest = self.newest;
        {
            let g = &mut self.slots[idx as usize];
            g.key = key;
            g.hash = hash;
            g.live = true;
            g.created = now;
            g.prev = prev_newest;
            g.next = NIL;
            g.header.clear();
            g.has_first = false;
            g.total = None;
            g.data.clear();
            g.ranges.clear();
            g.held = 0;
        }
        if prev_newest != NIL {
            self.slots[prev_newest as usize].next = idx;
        } else {
            self.oldest = idx;
        }
        self.newest = idx;
        let slots = &self.slots;
        self.index.insert_unique(hash, idx, |&i| slots[i as usize].hash);
        self.live += 1;
        idx
    }

    fn discard(&mut self, idx: u32) {
        let (hash, prev, next, held) = {
            let g = &mut self.slots[idx as usize];
            g.live = false;
            (g.hash, g.prev, g.next, g.held)
        };
        if let Ok(e) = self.index.find_entry(hash, |&i| i == idx) {
            e.remove();
        }
        if prev != NIL {
            self.slots[prev as usize].next = next;
        } else {
            self.oldest = next;
        }
        if next != NIL {
            self.slots[next as usize].prev = prev;
        } else {
            self.newest = prev;
        }
        self.bytes -= held;
        self.live -= 1;
        self.free.push(idx);
    }
}

/// Insert `[s, e)` (disjoint from all) into sorted `ranges`, merging neighbours.
fn insert_range(ranges: &mut ArrayVec<(u32, u32), MAX_RANGES>, s: u32, e: u32) -> bool {
    let pos = ranges.iter().position(|&(rs, _)| rs > s).unwrap_or(ranges.len());
    if ranges.try_insert(pos, (s, e)).is_err() {
        return false;
    }
    let mut w = 0;
    for r in 1..ranges.len() {
        if ranges[w].1 == ranges[r].0 {
            ranges[w].1 = ranges[r].1;
        } else {
            w += 1;
            ranges[w] = ranges[r];
        }
    }
    ranges.truncate(w + 1);
    true
}

/// Rebuild the datagram into `out`: headers of the first fragment, then the data.
fn build(g: &Datagram, out: &mut Vec<u8>) {
    let total = g.total.unwrap_or(0) as usize;
    out.clear();
    out.extend_from_slice(&g.header);
    out.extend_from_slice(&g.data[..total]);
    let l3 = g.l3_off;
    if g.key.v6 {
        let ext_len = g.header.len() - l3 - 40;
        let plen = (ext_len + total) as u16;
        out[l3 + 4..l3 + 6].copy_from_slice(&plen.to_be_bytes());
        out[g.nh_field] = g.next_proto;
    } else {
        let ihl = g.header.len() - l3;
        let tot = (ihl + total) as u16;
        out[l3 + 2..l3 + 4].copy_from_slice(&tot.to_be_bytes());
        // Clear MF and the offset, keep DF.
        out[l3 + 6] &= 0x40;
        out[l3 + 7] = 0;
        out[l3 + 10] = 0;
        out[l3 + 11] = 0;
        let c = checksum::finish(checksum::sum(&out[l3..l3 + ihl], 0));
        out[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge() {
        let mut r = ArrayVec::new();
        assert!(insert_range(&mut r, 16, 24));
        assert!(insert_range(&mut r, 0, 8));
        assert_eq!(&r[..], &[(0, 8), (16, 24)]);
        assert!(insert_range(&mut r, 8, 16));
        assert_eq!(&r[..], &[(0, 24)]);
        assert!(insert_range(&mut r, 40, 48));
        assert!(insert_range(&mut r, 24, 40));
        assert_eq!(&r[..], &[(0, 48)]);
    }
}
