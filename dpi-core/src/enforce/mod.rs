//! Stage 7: enforcement, the frames the engine sends on its own to carry out a decision.
//!
//! When policy denies a TCP session that already exists (an application or vhost rule
//! decided on a later packet, or the policy changed), dropping its packets alone would
//! leave both ends retrying until they time out. The engine instead drops the triggering
//! packet and queues a TCP reset toward each end (reference §4.7), built by
//! [`reset::build_reset`] from the triggering frame and handed to the adapter through
//! [`Ctx::poll_transmit`](crate::Ctx::poll_transmit). UDP, ICMP and other protocols are
//! dropped silently (no ICMP unreachable is generated, as NeuVector).
//!
//! Invariants: builders only read the triggering frame through the offsets of its
//! [`Decoded`](crate::packet::Decoded), write into a fixed-size
//! [`Transmit`](crate::Transmit) (no allocation) and return false rather than emit a
//! frame they cannot build correctly.

pub(crate) mod reset;
