//! Time as the caller gives it.
//!
//! The engine never reads a clock: every timestamp comes in through
//! [`Ctx::handle_timeout`](crate::Ctx::handle_timeout) (the packet time in a replay, a
//! monotonic clock in a live adapter). The same input therefore gives the same output.

use core::fmt;

/// A point in time, in microseconds since an epoch chosen by the caller (the Unix epoch
/// for pcap replay, so that records carry wall-clock times).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(u64);

impl Time {
    /// The epoch itself.
    pub const ZERO: Time = Time(0);

    /// From microseconds since the epoch.
    pub const fn from_micros(us: u64) -> Self {
        Time(us)
    }

    /// From whole seconds since the epoch.
    pub const fn from_secs(s: u64) -> Self {
        Time(s.saturating_mul(1_000_000))
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch (the resolution of session timeouts).
    pub const fn as_secs(self) -> u64 {
        self.0 / 1_000_000
    }

    /// This time plus `us` microseconds, saturating.
    pub const fn add_micros(self, us: u64) -> Self {
        Time(self.0.saturating_add(us))
    }
}

impl fmt::Debug for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}
