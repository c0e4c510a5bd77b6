//! Stages 3 and 4: sessions and L4 trackers.
//!
//! - [`key`]: the 5-tuple (+ VLANs) key, direction-independent so one lookup serves both
//!   directions of a flow.
//! - [`session`]: what a session holds (two "wings": client and server).
//! - [`table`]: the bounded per-worker session table and its timer wheel.
//! - [`tcp`]: the TCP tracker (handshake, FIN/RST, windows, retransmissions).
//! - [`stream`]: per-direction in-order delivery with bounded out-of-order buffering.
//! - [`icmp`]: ICMP pseudo-ports and ICMP errors matched to the session they quote.
//! - [`listeners`]: learned listening ports, to pick client and server mid-stream.

pub mod icmp;
pub mod key;
pub mod listeners;
pub mod session;
pub mod stream;
pub mod table;
pub mod tcp;
pub mod timer;

pub use key::FlowKey;

/// Direction of a packet within its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Sent by the client.
    ToServer,
    /// Sent by the server.
    ToClient,
}

impl Dir {
    /// Index of the sending wing: 0 client, 1 server.
    pub const fn sender(self) -> usize {
        match self {
            Dir::ToServer => 0,
            Dir::ToClient => 1,
        }
    }

    /// Index of the receiving wing.
    pub const fn receiver(self) -> usize {
        1 - self.sender()
    }
}
