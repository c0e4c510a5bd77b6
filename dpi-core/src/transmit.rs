//! Frames the engine synthesises for the adapter to send (TCP resets from the policy
//! stage). Fixed-size, so queueing one never allocates.

use arrayvec::ArrayVec;
use std::collections::VecDeque;

/// Largest synthesised frame: Ethernet + two VLAN tags + IPv6 + TCP with options.
pub const MAX_TRANSMIT_FRAME: usize = 256;

/// A frame to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The whole Ethernet frame.
    pub frame: ArrayVec<u8, MAX_TRANSMIT_FRAME>,
}

#[derive(Debug, Default)]
pub(crate) struct TransmitQueue {
    q: VecDeque<Transmit>,
}

impl TransmitQueue {
    pub(crate) fn new() -> Self {
        TransmitQueue { q: VecDeque::new() }
    }

    pub(crate) fn pop(&mut self) -> Option<Transmit> {
        self.q.pop_front()
    }
}
