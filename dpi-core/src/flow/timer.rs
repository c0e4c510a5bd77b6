//! A hashed timer wheel of one-second slots (NeuVector uses 3600; we use 4096 so slot
//! arithmetic is a mask and every default timeout fits).
//!
//! Sessions are linked into the slot of their deadline through intrusive links kept in
//! the session itself, so filing and unfiling never allocate. Refreshing is lazy: a packet
//! only moves `last_seen` forward; when a slot comes due, each session in it is either
//! expired (its real deadline has passed) or re-filed under its real deadline. A session is
//! moved eagerly only when its timeout shrinks (FIN, RST), so that it is not kept longer
//! than its new deadline. Cost per packet: O(1), usually nothing at all.

/// Number of one-second slots; the longest representable timeout is one less.
pub const WHEEL_SLOTS: usize = 4096;

/// Slot index of a deadline.
pub(crate) const fn slot_of(deadline_secs: u64) -> usize {
    (deadline_secs as usize) & (WHEEL_SLOTS - 1)
}
