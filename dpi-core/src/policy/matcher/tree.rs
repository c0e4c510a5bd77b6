//! A stabbing index over one dimension: which intervals contain a key?
//!
//! The endpoints of a set of intervals cut the key space into `n` elementary segments
//! (`bounds[i]` is the first key of segment `i`, `bounds[0]` the smallest key); a lookup
//! finds its segment by binary search. The index is a stack of **layers**, each in one of
//! two forms:
//!
//! - **flat** (elementary intervals): segment `i` has its own list of every interval of
//!   the layer that covers it. One list per lookup; costs one entry per (interval,
//!   segment covered) pair, so it suits narrow intervals only.
//! - **tree** (a segment tree over the segments): leaf `i` is node `n + i`, the parent of
//!   node `p` is `p / 2` (the implicit bottom-up layout); an interval is stored in the
//!   canonical nodes covering its segments, at most `2 log2 n` of them, and a key's
//!   intervals are those on the path from its leaf to the root. O(I log I) for I
//!   intervals however they nest; a lookup walks `log2 n` nodes.
//!
//! Building: the intervals, narrowest first (in segments covered), go into a flat layer
//! while its entries stay within [`FLAT_FACTOR`] × I + [`FLAT_SLACK`]; the wider rest
//! form the next layer (with its own, fewer, segments), and so on for at most
//! [`MAX_FLAT_LAYERS`] flat layers; what remains (many nested wide ranges) goes in a
//! tree layer. Memory is therefore O(I log I) in the worst case and O(I) for typical rule
//! sets (a few wide ranges above many narrow ones: two flat layers).
//!
//! Every list is sorted by rule order, so a caller looking for the first match stops
//! scanning a list at the first order not better than its best. Lists are stored
//! contiguously: list `j` is `items[offsets[j]..offsets[j + 1]]`.

/// A key type of one dimension.
pub(super) trait Key: Copy + Ord + core::fmt::Debug {
    /// The smallest key.
    const MIN: Self;
    /// `self + 1`, `None` at the largest key.
    fn next(self) -> Option<Self>;
    /// Number of significant bits of `self - lo` (`self >= lo`).
    fn bits_above(self, lo: Self) -> u32;
    /// `(self - lo) >> shift` (`self >= lo`, the result fits).
    fn bucket(self, lo: Self, shift: u32) -> usize;
    /// `lo + (j << shift)` (no overflow for buckets of a built table).
    fn bucket_start(lo: Self, j: usize, shift: u32) -> Self;
}

macro_rules! key {
    ($t:ty) => {
        impl Key for $t {
            const MIN: $t = 0;
            fn next(self) -> Option<$t> {
                self.checked_add(1)
            }
            #[inline]
            fn bits_above(self, lo: $t) -> u32 {
                <$t>::BITS - (self - lo).leading_zeros()
            }
            #[inline]
            fn bucket(self, lo: $t, shift: u32) -> usize {
                ((self - lo) >> shift) as usize
            }
            #[inline]
            fn bucket_start(lo: $t, j: usize, shift: u32) -> $t {
                lo + ((j as $t) << shift)
            }
        }
    };
}
key!(u32);
key!(u128);

use arrayvec::ArrayVec;

/// What an index stores per interval: ordered by rule order first (lists are sorted
/// by it).
pub(super) trait Ordered: Copy + Ord + core::fmt::Debug {
    /// Position of the item's rule.
    fn order(&self) -> u32;
}

/// A flat layer holds at most this many entries per interval of the whole index (plus
/// [`FLAT_SLACK`]).
const FLAT_FACTOR: usize = 4;
/// See [`FLAT_FACTOR`].
const FLAT_SLACK: usize = 1024;
/// Layers with fewer segments search their bounds directly (no radix table).
const RADIX_MIN: usize = 16;
/// Flat layers before the rest goes in a tree layer.
pub(super) const MAX_FLAT_LAYERS: usize = 3;

/// A radix bucket: `items[a..b]` (the bucket lies in one segment of a flat layer), or,
/// with [`SEARCH`] set in `a`, the segments `a..=b` to search.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    a: u32,
    b: u32,
}

/// See [`Bucket`].
const SEARCH: u32 = 1 << 31;
/// Radix buckets per segment (at least).
const RADIX_PER_SEGMENT: usize = 8;

/// One layer (see the module docs).
#[derive(Clone, Debug)]
struct Layer<K, T> {
    /// First key of each elementary segment, ascending (`bounds[0]` is `K::MIN`).
    bounds: Vec<K>,
    /// Radix table over `radix_lo..`: bucket `j` holds the keys from `radix_lo + (j <<
    /// shift)` on. A bucket within one segment of a flat layer gives that segment's list
    /// directly; any other gives the few segments to search. Empty for small layers.
    radix: Vec<Bucket>,
    /// `bounds[1]`: keys below are in segment 0.
    radix_lo: K,
    /// Bucket width (log2).
    shift: u32,
    /// List `j` is `items[offsets[j]..offsets[j + 1]]`: `n + 1` entries (flat) or
    /// `2n + 1` (tree, list `j` is node `j`).
    offsets: Vec<u32>,
    /// The lists, each sorted by order.
    items: Vec<T>,
    /// Tree form.
    tree: bool,
}

/// The index (see the module docs).
#[derive(Clone, Debug)]
pub(super) struct Tree<K, T> {
    layers: Vec<Layer<K, T>>,
    /// The smallest order stored (`u32::MAX` if none).
    min_order: u32,
}

impl<K: Key, T: Ordered> Tree<K, T> {
    /// Index the intervals `lo..=hi` (each with `lo <= hi`).
    #[cfg(test)]
    pub(super) fn build(intervals: &[(K, K, T)]) -> Self {
        Self::build_with(intervals, MAX_FLAT_LAYERS)
    }

    /// Index the intervals `lo..=hi` (each with `lo <= hi`) in at most `max_flat` flat
    /// layers (then a tree layer).
    pub(super) fn build_with(intervals: &[(K, K, T)], max_flat: usize) -> Self {
        let min_order = intervals.iter().map(|iv| iv.2.order()).min().unwrap_or(u32::MAX);
        let budget = FLAT_FACTOR * intervals.len() + FLAT_SLACK;
        let mut layers = Vec::new();
        let mut rest: Vec<(K, K, T)> = intervals.to_vec();
        while !rest.is_empty() {
            let bounds = bounds_of(&rest);
            if layers.len() == max_flat {
                layers.push(Layer::tree(bounds, &rest));
                break;
            }
            // Narrowest first; take them while the flat layer stays within budget.
            let span = |iv: &(K, K, T)| {
                let (l, r) = segments(&bounds, iv.0, iv.1);
                r - l
            };
            rest.sort_by_cached_key(|iv| core::cmp::Reverse(span(iv)));
            let mut total = 0usize;
            let mut take = 0;
            for iv in rest.iter().rev() {
                let s = span(iv);
                if total + s > budget {
                    break;
                }
                total += s;
                take += 1;
            }
            if take == 0 {
                layers.push(Layer::tree(bounds, &rest));
                break;
            }
            let flat = rest.split_off(rest.len() - take);
            layers.push(Layer::flat(&flat));
        }
        Tree { layers, min_order }
    }

    /// The smallest order stored (`u32::MAX` if the index is empty).
    #[inline]
    pub(super) fn min_order(&self) -> u32 {
        self.min_order
    }

    /// Push the lists holding `key` onto `out`: one per flat layer (empty or not: testing
    /// costs more than scanning nothing), the path's non-empty nodes for a tree layer.
    /// Each list is sorted by order; together they hold every interval containing `key`,
    /// each once. `false` if `out` filled up first (some lists are missing).
    #[inline]
    pub(super) fn lists<'a, const N: usize>(
        &'a self,
        key: K,
        out: &mut ArrayVec<&'a [T], N>,
    ) -> bool {
        // Lists whose first (smallest) order is not below `below` cannot improve on it.
        let mut push = |l: &'a [T]| out.try_push(l).is_ok();
        for layer in &self.layers {
            let i = match layer.locate(key) {
                Ok(list) => {
                    if !push(list) {
                        return false;
                    }
                    continue;
                }
                Err(i) => i,
            };
            let mut p = layer.bounds.len() + i;
            while p > 0 {
                if !layer.list(p).is_none_or(&mut push) {
                    return false;
                }
                p >>= 1;
            }
        }
        true
    }

    /// Number of stored entries (an interval counts once per list holding it).
    #[cfg(test)]
    pub(super) fn stored(&self) -> usize {
        self.layers.iter().map(|l| l.items.len()).sum()
    }
}

/// The segment starts of a set of intervals.
fn bounds_of<K: Key, T>(intervals: &[(K, K, T)]) -> Vec<K> {
    let mut bounds = Vec::with_capacity(2 * intervals.len() + 1);
    bounds.push(K::MIN);
    for &(lo, hi, _) in intervals {
        bounds.push(lo);
        bounds.extend(hi.next());
    }
    bounds.sort_unstable();
    bounds.dedup();
    bounds
}

/// The segments `l..r` an interval covers (its ends are in `bounds`).
fn segments<K: Key>(bounds: &[K], lo: K, hi: K) -> (usize, usize) {
    let seg = |k: K| bounds.partition_point(|&b| b < k);
    (seg(lo), hi.next().map_or(bounds.len(), seg))
}

/// Lists from `(list, item)` pairs: offsets for `lists` lists, items sorted by order.
fn pack<T: Ordered>(mut placed: Vec<(u32, T)>, lists: usize) -> (Vec<u32>, Vec<T>) {
    placed.sort_unstable();
    let mut offsets = vec![0u32; lists + 1];
    for &(j, _) in &placed {
        if let Some(o) = offsets.get_mut(j as usize + 1) {
            *o += 1;
        }
    }
    for j in 1..offsets.len() {
        offsets[j] += offsets[j - 1];
    }
    (offsets, placed.into_iter().map(|(_, it)| it).collect())
}

impl<K: Key, T: Ordered> Layer<K, T> {
    fn new(bounds: Vec<K>, offsets: Vec<u32>, items: Vec<T>, tree: bool) -> Self {
        let mut layer =
            Layer { bounds, radix: Vec::new(), radix_lo: K::MIN, shift: 0, offsets, items, tree };
        let n = layer.bounds.len();
        let (Some(&lo), Some(&hi)) = (layer.bounds.get(1), layer.bounds.last()) else {
            return layer;
        };
        if n < RADIX_MIN || layer.items.len() >= SEARCH as usize {
            return layer;
        }
        // 2^r >= RADIX_PER_SEGMENT * n buckets over lo..=hi.
        let r = usize::BITS - (RADIX_PER_SEGMENT * n).leading_zeros();
        let shift = hi.bits_above(lo).saturating_sub(r);
        let buckets = hi.bucket(lo, shift) + 1;
        let mut radix = Vec::with_capacity(buckets);
        // Segment of each bucket's first key, advanced as the buckets go up.
        let mut seg = 0;
        let seg_of = |seg: &mut usize, key: K| {
            while layer.bounds.get(*seg + 1).is_some_and(|&b| b <= key) {
                *seg += 1;
            }
            *seg
        };
        for j in 0..buckets {
            let a = seg_of(&mut seg, K::bucket_start(lo, j, shift));
            // The last segment the bucket reaches: the one before the next bucket's
            // first key (the last bucket reaches the end).
            let b = if j + 1 < buckets {
                let next = K::bucket_start(lo, j + 1, shift);
                a + layer.bounds.get(a + 1..).unwrap_or_default().partition_point(|&x| x < next)
            } else {
                n - 1
            };
            let list = |i: usize| (layer.offsets.get(i), layer.offsets.get(i + 1));
            radix.push(match (tree, a == b, list(a)) {
                (false, true, (Some(&s), Some(&e))) => Bucket { a: s, b: e },
                _ => Bucket { a: a as u32 | SEARCH, b: b as u32 },
            });
        }
        layer.radix = radix;
        layer.radix_lo = lo;
        layer.shift = shift;
        layer
    }

    /// The list of `key`'s segment (flat layer) or its segment (`Err`, tree layer).
    #[inline]
    fn locate(&self, key: K) -> Result<&[T], usize> {
        let seg = if self.radix.is_empty() {
            self.bounds.partition_point(|&b| b <= key).saturating_sub(1)
        } else if key < self.radix_lo {
            0
        } else {
            let j = key.bucket(self.radix_lo, self.shift);
            // Past the last bucket: above the last bound.
            let Some(&Bucket { a, b }) = self.radix.get(j) else {
                return self.located(self.bounds.len() - 1);
            };
            if a & SEARCH == 0 {
                return Ok(self.items.get(a as usize..b as usize).unwrap_or_default());
            }
            let a = (a & !SEARCH) as usize;
            // The last bound at or below `key` among `bounds[a..=b]` (`bounds[a]` is).
            let above = self.bounds.get(a + 1..=b as usize).unwrap_or_default();
            a + above.partition_point(|&x| x <= key)
        };
        self.located(seg)
    }

    /// [`Layer::locate`]'s answer for segment `seg`.
    #[inline]
    fn located(&self, seg: usize) -> Result<&[T], usize> {
        if self.tree {
            return Err(seg);
        }
        let start = self.offsets.get(seg).copied().unwrap_or_default() as usize;
        let end = self.offsets.get(seg + 1).copied().unwrap_or_default() as usize;
        Ok(self.items.get(start..end).unwrap_or_default())
    }

    /// List `j`, if not empty.
    #[inline]
    fn list(&self, j: usize) -> Option<&[T]> {
        match (self.offsets.get(j), self.offsets.get(j + 1)) {
            (Some(&s), Some(&e)) if s < e => self.items.get(s as usize..e as usize),
            _ => None,
        }
    }

    /// A flat layer: each segment lists the intervals covering it.
    fn flat(intervals: &[(K, K, T)]) -> Self {
        let bounds = bounds_of(intervals);
        let mut placed = Vec::new();
        for &(lo, hi, item) in intervals {
            let (l, r) = segments(&bounds, lo, hi);
            placed.extend((l..r).map(|j| (j as u32, item)));
        }
        let (offsets, items) = pack(placed, bounds.len());
        Layer::new(bounds, offsets, items, false)
    }

    /// A tree layer: each interval in its canonical nodes.
    fn tree(bounds: Vec<K>, intervals: &[(K, K, T)]) -> Self {
        let n = bounds.len();
        let mut placed = Vec::with_capacity(2 * intervals.len());
        for &(lo, hi, item) in intervals {
            let (l, r) = segments(&bounds, lo, hi);
            let (mut l, mut r) = (l + n, r + n);
            while l < r {
                if l & 1 == 1 {
                    placed.push((l as u32, item));
                    l += 1;
                }
                if r & 1 == 1 {
                    r -= 1;
                    placed.push((r as u32, item));
                }
                l >>= 1;
                r >>= 1;
            }
        }
        let (offsets, items) = pack(placed, 2 * n);
        Layer::new(bounds, offsets, items, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    struct Item {
        order: u32,
        atom: u32,
    }

    impl Ordered for Item {
        fn order(&self) -> u32 {
            self.order
        }
    }

    fn stab(t: &Tree<u32, Item>, k: u32) -> Vec<u32> {
        let mut lists: ArrayVec<&[Item], 64> = ArrayVec::new();
        assert!(t.lists(k, &mut lists));
        let mut v = Vec::new();
        for l in lists {
            assert!(l.windows(2).all(|w| w[0].order <= w[1].order));
            v.extend(l.iter().map(|it| it.atom))
        }
        v.sort_unstable();
        v
    }

    fn items(ivs: &[(u32, u32)]) -> Vec<(u32, u32, Item)> {
        ivs.iter()
            .enumerate()
            .map(|(i, &(lo, hi))| (lo, hi, Item { order: (i as u32 * 7) % 11, atom: i as u32 }))
            .collect()
    }

    #[test]
    fn stabbing_matches_brute_force_in_every_form() {
        let ivs = [(0, u32::MAX), (5, 10), (5, 5), (7, 20), (11, 11), (0, 4), (21, u32::MAX)];
        for max_flat in 0..=3 {
            let t = Tree::build_with(&items(&ivs), max_flat);
            assert_eq!(t.layers.iter().any(|l| l.tree), max_flat == 0);
            for k in (0..30).chain([u32::MAX - 1, u32::MAX]) {
                let want: Vec<u32> = ivs
                    .iter()
                    .enumerate()
                    .filter(|(_, &(lo, hi))| lo <= k && k <= hi)
                    .map(|(i, _)| i as u32)
                    .collect();
                assert_eq!(stab(&t, k), want, "key {k}, {max_flat} flat layers");
            }
            assert_eq!(t.min_order(), 0);
        }
    }

    #[test]
    fn wide_intervals_go_up_a_layer() {
        // 3000 disjoint narrow intervals under 20 intervals covering everything.
        let mut ivs: Vec<(u32, u32)> = (0..3000).map(|i| (i * 10, i * 10 + 3)).collect();
        ivs.extend((0..20).map(|i| (i, u32::MAX - i)));
        let t = Tree::build(&items(&ivs));
        assert_eq!(t.layers.len(), 2);
        assert!(t.layers.iter().all(|l| !l.tree));
        assert!(t.stored() <= FLAT_FACTOR * 3020 + FLAT_SLACK + 20 * 41, "{}", t.stored());
        // Key 12: the narrow (10, 13) and the wide (i, MAX - i) for i <= 12.
        assert_eq!(stab(&t, 12).len(), 14);
        assert_eq!(stab(&t, 14).len(), 15);
        assert_eq!(stab(&t, 100).len(), 21);
    }

    #[test]
    fn nested_ranges_stay_n_log_n() {
        // 1000 nested ranges [i, 2000 - i]: flat layers take what fits, a tree the rest;
        // O(n log n) entries, not O(n^2).
        let ivs: Vec<(u32, u32)> = (0..1000u32).map(|i| (i, 2000 - i)).collect();
        let t = Tree::build(&items(&ivs));
        assert!(t.layers.last().is_some_and(|l| l.tree));
        let budget = 3 * (FLAT_FACTOR * 1000 + FLAT_SLACK) + 1000 * 2 * 12;
        assert!(t.stored() <= budget, "{}", t.stored());
        assert_eq!(stab(&t, 1000).len(), 1000);
        assert_eq!(stab(&t, 0), vec![0]);
        assert_eq!(stab(&t, 2001), Vec::<u32>::new());
    }

    #[test]
    fn empty_index() {
        let t: Tree<u128, Item> = Tree::build(&[]);
        let mut lists: ArrayVec<&[Item], 1> = ArrayVec::new();
        assert!(t.lists(7, &mut lists));
        assert!(lists.is_empty());
        assert_eq!(t.min_order(), u32::MAX);
    }

    /// Random intervals over a small pool of keys (clustered near both ends of the space
    /// and in the middle, so radix buckets hold several segments), in every layer
    /// arrangement, against a brute-force scan.
    fn random_vs_brute_force<K: Key>(of: impl Fn(u64) -> K) {
        let mut x = 0x1234_5678_9abc_def1u64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..400 {
            let pool: Vec<K> = (0..rnd() % 40 + 2)
                .map(|_| match rnd() % 5 {
                    0 => of(rnd() % 64),
                    1 => of(u64::MAX - rnd() % 64),
                    2 => of((1 << 40) | (rnd() % 1000)),
                    _ => of(rnd()),
                })
                .collect();
            let pick = |r: u64| pool[(r % pool.len() as u64) as usize];
            let ivs: Vec<(K, K, Item)> = (0..rnd() % 60)
                .map(|i| {
                    let (a, b) = (pick(rnd()), pick(rnd()));
                    (a.min(b), a.max(b), Item { order: (rnd() % 50) as u32, atom: i as u32 })
                })
                .collect();
            let t = Tree::build_with(&ivs, round % 4);
            let mut keys = pool.clone();
            keys.extend(pool.iter().filter_map(|k| k.next()));
            keys.extend((0..20).map(|_| of(rnd())));
            keys.extend([of(0), of(u64::MAX)]);
            for k in keys {
                let mut lists: ArrayVec<&[Item], 64> = ArrayVec::new();
                assert!(t.lists(k, &mut lists));
                let mut got: Vec<u32> =
                    lists.iter().flat_map(|l| l.iter().map(|i| i.atom)).collect();
                got.sort_unstable();
                let want: Vec<u32> =
                    ivs.iter().filter(|iv| iv.0 <= k && k <= iv.1).map(|iv| iv.2.atom).collect();
                assert_eq!(got, want, "round {round} key {k:?}");
            }
        }
    }

    #[test]
    fn random_u32_keys() {
        // The high half of the pool: keys near `u32::MAX` and `0`.
        random_vs_brute_force(|x| (x >> 32) as u32);
    }

    #[test]
    fn random_u128_keys() {
        random_vs_brute_force(|x| u128::from(x) << 64 | u128::from(x.rotate_left(7)));
    }
}
