//! Not written yet: never matches.

use crate::app::probe::{Probe, ProbeCtx};

/// Probe (TCP).
pub fn probe(_cx: &ProbeCtx<'_>) -> Probe {
    Probe::No
}
