//! The engine's clock in a live run: monotonic, but expressed as wall-clock time so
//! report timestamps are dates.
//!
//! `Time` is read once from the system clock at start; after that only the monotonic
//! clock advances it, so a system clock step (NTP, an operator) never moves session
//! timeouts backwards or forwards.

use dpi_core::Time;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Monotonic time since start, plus the wall-clock time of the start.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
    epoch_us: u64,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Clock {
        let epoch_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        Clock { start: Instant::now(), epoch_us }
    }

    /// The current time.
    pub fn now(&self) -> Time {
        let us = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        Time::from_micros(self.epoch_us.saturating_add(us))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_goes_backwards_and_is_a_date() {
        let c = Clock::new();
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
        // After 2020-01-01.
        assert!(a.as_secs() > 1_577_836_800);
    }
}
