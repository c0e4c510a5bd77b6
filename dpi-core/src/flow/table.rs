//! The per-worker session table: a slab of fixed-size sessions, a hash index of slab
//! indices (`hashbrown::HashTable`, hashes stored in the sessions), a free list and the
//! timer wheel.
//!
//! Bound: at most `capacity` live sessions. The hash index is allocated for that bound at
//! construction; the slab grows to the working size on demand and is never shrunk, so
//! after warm-up inserting and removing sessions allocates nothing. When
//! full, [`SessionTable::eviction_candidate`] names the session filed under the earliest
//! deadline; the caller ends it (reason `evicted`) before inserting.

use super::key::FlowKey;
use super::session::{Session, NIL};
use super::timer::{slot_of, WHEEL_SLOTS};
use hashbrown::HashTable;

pub(crate) struct SessionTable {
    slots: Vec<Session>,
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: ahash::RandomState,
    capacity: usize,
    live: usize,
    /// Wheel slot heads (session indices).
    heads: Box<[u32]>,
    /// Next second to process.
    wheel_pos: u64,
    /// Sessions taken out of a due slot and not yet examined (linked by `timer_next`).
    due: u32,
    wheel_started: bool,
}

impl core::fmt::Debug for SessionTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SessionTable")
            .field("live", &self.live)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl SessionTable {
    pub(crate) fn new(capacity: usize, seed: u64) -> Self {
        let capacity = capacity.clamp(1, NIL as usize - 1);
        SessionTable {
            slots: Vec::new(),
            free: Vec::new(),
            // Sized for the bound up front (about 5 bytes a session): removals leave
            // tombstones, and a table that could grow would reallocate in steady state.
            index: HashTable::with_capacity(capacity),
            hasher: ahash::RandomState::with_seeds(
                seed,
                seed.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15,
                seed.rotate_left(31) ^ 0xc2b2_ae3d_27d4_eb4f,
                seed.rotate_left(47) ^ 0x1656_67b1_9e37_79f9,
            ),
            capacity,
            live: 0,
            heads: vec![NIL; WHEEL_SLOTS].into_boxed_slice(),
            wheel_pos: 0,
            due: NIL,
            wheel_started: false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.live
    }

    pub(crate) fn is_full(&self) -> bool {
        self.live >= self.capacity
    }

    pub(crate) fn hash(&self, key: &FlowKey) -> u64 {
        self.hasher.hash_one(key.words())
    }

    pub(crate) fn find(&self, hash: u64, key: &FlowKey) -> Option<u32> {
        let slots = &self.slots;
        self.index.find(hash, |&i| slots[i as usize].key == *key).copied()
    }

    pub(crate) fn get(&self, idx: u32) -> &Session {
        &self.slots[idx as usize]
    }

    pub(crate) fn get_mut(&mut self, idx: u32) -> &mut Session {
        &mut self.slots[idx as usize]
    }

    /// Insert a session (the caller made room) and file it under its deadline.
    pub(crate) fn insert(&mut self, session: Session) -> u32 {
        debug_assert!(!self.is_full());
        let hash = session.hash;
        let deadline = session.deadline();
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = session;
                i
            }
            None => {
                self.slots.push(session);
                (self.slots.len() - 1) as u32
            }
        };
        let slots = &self.slots;
        self.index.insert_unique(hash, idx, |&i| slots[i as usize].hash);
        self.live += 1;
        self.file(idx, deadline);
        idx
    }

    /// Remove a live session: unindex, unfile, free its slot.
    pub(crate) fn remove(&mut self, idx: u32) {
        let s = &self.slots[idx as usize];
        debug_assert!(s.live);
        let (hash, key) = (s.hash, s.key);
        let slots = &self.slots;
        if let Ok(e) = self.index.find_entry(hash, |&i| i == idx || slots[i as usize].key == key) {
            e.remove();
        }
        self.unfile(idx);
        self.slots[idx as usize].live = false;
        self.free.push(idx);
        self.live -= 1;
    }

    /// Re-file a session whose timeout changed, if its real deadline moved earlier than
    /// the one it is filed under (later deadlines are handled lazily).
    pub(crate) fn refresh_timer(&mut self, idx: u32) {
        let s = &self.slots[idx as usize];
        let deadline = s.deadline();
        if deadline < s.timer_deadline {
            self.unfile(idx);
            self.file(idx, deadline);
        }
    }

    /// The session filed under the earliest deadline (the eviction victim).
    pub(crate) fn eviction_candidate(&self) -> Option<u32> {
        (0..WHEEL_SLOTS as u64)
            .map(|d| self.heads[slot_of(self.wheel_pos + d)])
            .find(|&h| h != NIL)
            .or_else(|| self.slots.iter().position(|s| s.live).map(|i| i as u32))
    }

    /// Start the wheel at `now_secs` on the first call; later calls are no-ops.
    pub(crate) fn start_clock(&mut self, now_secs: u64) {
        if !self.wheel_started {
            self.wheel_started = true;
            self.wheel_pos = now_secs;
        }
    }

    /// Next session whose deadline is at or before `now_secs`, or `None` when all due
    /// slots are processed. The caller must remove the returned session before calling
    /// again. Sessions found not yet due are re-filed under their real deadline.
    pub(crate) fn pop_expired(&mut self, now_secs: u64) -> Option<u32> {
        loop {
            if self.due != NIL {
                let idx = self.due;
                let s = &mut self.slots[idx as usize];
                self.due = s.timer_next;
                s.timer_next = NIL;
                s.timer_prev = NIL;
                let deadline = s.deadline();
                if deadline <= now_secs {
                    // Detached: `remove` will find nothing to unfile.
                    s.timer_deadline = u64::MAX;
                    return Some(idx);
                }
                self.file(idx, deadline);
                continue;
            }
            if self.wheel_pos > now_secs {
                return None;
            }
            // After a long jump, one pass over all slots visits every filed session.
            if now_secs - self.wheel_pos >= WHEEL_SLOTS as u64 {
                self.wheel_pos = now_secs + 1 - WHEEL_SLOTS as u64;
            }
            let slot = slot_of(self.wheel_pos);
            self.due = self.heads[slot];
            self.heads[slot] = NIL;
            if self.due != NIL {
                // The detached list is walked by `timer_next` only; mark its members as not
                // filed so that nothing tries to unlink them from a slot.
                let mut i = self.due;
                while i != NIL {
                    let s = &mut self.slots[i as usize];
                    s.timer_deadline = u64::MAX - 1;
                    i = s.timer_next;
                }
            }
            self.wheel_pos += 1;
        }
    }

    /// The first live session at or after slab index `from` (slab order is deterministic).
    pub(crate) fn next_live(&self, from: u32) -> Option<u32> {
        let from = from as usize;
        self.slots.get(from..)?.iter().position(|s| s.live).map(|i| (from + i) as u32)
    }

    fn file(&mut self, idx: u32, deadline: u64) {
        let slot = slot_of(deadline);
        let head = self.heads[slot];
        if head != NIL {
            self.slots[head as usize].timer_prev = idx;
        }
        let s = &mut self.slots[idx as usize];
        s.timer_deadline = deadline;
        s.timer_prev = NIL;
        s.timer_next = head;
        self.heads[slot] = idx;
    }

    fn unfile(&mut self, idx: u32) {
        let s = &self.slots[idx as usize];
        let (prev, next, deadline) = (s.timer_prev, s.timer_next, s.timer_deadline);
        if deadline >= u64::MAX - 1 {
            // Not filed (returned by `pop_expired`, or on the due list, which only
            // `pop_expired` walks and which is empty outside it).
            return;
        }
        if prev != NIL {
            self.slots[prev as usize].timer_next = next;
        } else {
            self.heads[slot_of(deadline)] = next;
        }
        if next != NIL {
            self.slots[next as usize].timer_prev = prev;
        }
        let s = &mut self.slots[idx as usize];
        s.timer_prev = NIL;
        s.timer_next = NIL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Time;

    fn session(t: &SessionTable, n: u16, now: u64, timeout: u32) -> Session {
        let (key, lo) = FlowKey::new(false, 17, [0; 2], 1, n, 2, 53);
        let mut s = Session::new(key, t.hash(&key), u64::from(n), lo, Time::from_secs(now));
        s.timeout = timeout;
        s
    }

    fn drain(t: &mut SessionTable, now: u64) -> Vec<u64> {
        let mut out = vec![];
        while let Some(i) = t.pop_expired(now) {
            out.push(t.get(i).id);
            t.remove(i);
        }
        out
    }

    #[test]
    fn expires_at_deadline_not_before() {
        let mut t = SessionTable::new(16, 1);
        t.start_clock(1000);
        let s = session(&t, 1, 1000, 30);
        t.insert(s);
        assert!(drain(&mut t, 1029).is_empty());
        assert_eq!(drain(&mut t, 1030), vec![1]);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn lazy_refresh_refiles_instead_of_expiring() {
        let mut t = SessionTable::new(16, 1);
        t.start_clock(0);
        let i = t.insert(session(&t, 1, 0, 30));
        t.get_mut(i).last_seen = Time::from_secs(25);
        assert!(drain(&mut t, 40).is_empty());
        assert_eq!(drain(&mut t, 55), vec![1]);
    }

    #[test]
    fn shrinking_timeout_refiles_eagerly() {
        let mut t = SessionTable::new(16, 1);
        t.start_clock(0);
        let i = t.insert(session(&t, 1, 0, 1200));
        t.get_mut(i).timeout = 15;
        t.refresh_timer(i);
        assert_eq!(drain(&mut t, 15), vec![1]);
    }

    #[test]
    fn long_jump_expires_everything_due_and_keeps_the_rest() {
        let mut t = SessionTable::new(64, 1);
        t.start_clock(0);
        for n in 0..10u16 {
            t.insert(session(&t, n, 0, 5 + u32::from(n) * 400));
        }
        // Jump far beyond the wheel span; every session is due.
        let mut got = drain(&mut t, 1_000_000);
        got.sort();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn find_insert_remove_and_reuse_slots() {
        let mut t = SessionTable::new(4, 7);
        t.start_clock(0);
        let s = session(&t, 9, 0, 30);
        let key = s.key;
        let i = t.insert(s);
        assert_eq!(t.find(t.hash(&key), &key), Some(i));
        t.remove(i);
        assert_eq!(t.find(t.hash(&key), &key), None);
        let j = t.insert(session(&t, 10, 0, 30));
        assert_eq!(i, j, "freed slot is reused");
    }

    #[test]
    fn eviction_candidate_is_earliest_deadline() {
        let mut t = SessionTable::new(3, 7);
        t.start_clock(0);
        t.insert(session(&t, 1, 0, 100));
        let early = t.insert(session(&t, 2, 0, 10));
        t.insert(session(&t, 3, 0, 50));
        assert!(t.is_full());
        assert_eq!(t.eviction_candidate(), Some(early));
    }
}
