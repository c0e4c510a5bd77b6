//! Frames the engine synthesises for the adapter to send (TCP resets from the policy
//! stage). Fixed-size and queued in a preallocated ring (`Config::max_pending_transmit`),
//! so queueing one never allocates.

use arrayvec::ArrayVec;
use std::collections::VecDeque;

/// Largest synthesised frame: Ethernet + two VLAN tags + IPv6 + TCP with options.
pub const MAX_TRANSMIT_FRAME: usize = 256;

/// A frame to send.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transmit {
    /// The whole Ethernet frame.
    pub frame: ArrayVec<u8, MAX_TRANSMIT_FRAME>,
}

#[derive(Debug, Default)]
pub(crate) struct TransmitQueue {
    q: VecDeque<Transmit>,
    cap: usize,
}

impl TransmitQueue {
    pub(crate) fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        TransmitQueue { q: VecDeque::with_capacity(cap), cap }
    }

    /// Queue a frame; false (frame dropped) when the queue is full.
    pub(crate) fn push(&mut self, t: Transmit) -> bool {
        if self.q.len() >= self.cap {
            return false;
        }
        self.q.push_back(t);
        true
    }

    pub(crate) fn pop(&mut self) -> Option<Transmit> {
        self.q.pop_front()
    }
}
