//! # dpi-nfqueue: a netlink NFQUEUE client for the engine's inline path
//!
//! For workloads whose traffic cannot be re-plumbed through a veth pair (service-mesh
//! sidecars on `lo`, CNIs such as Cilium, multi-network pods), iptables rules in the
//! workload's network namespace hand packets to user space with `-j NFQUEUE`, and user
//! space answers each with a verdict. This crate speaks that protocol directly over an
//! `AF_NETLINK`/`NETLINK_NETFILTER` socket: no libnetfilter_queue, no C.
//!
//! ## Data flow
//!
//! ```text
//!  iptables -A INPUT ... -j NFQUEUE --queue-num N [--queue-bypass]      (kernel)
//!        |  packet held in queue N, copied into a netlink message
//!        v
//!  Queue::recv_batch: poll (timeout) -> recvmmsg, up to `batch` messages in one call
//!        |  each message parsed through a bounded reader into a Packet
//!        v
//!  your callback(&mut Packet) -> Verdict      e.g. ctx.recv_packet(pkt.frame_mut(..))
//!        |  Accept / Drop, in arrival (= id) order
//!        v
//!  verdicts coalesced: runs of equal verdicts -> one NFQNL_MSG_VERDICT_BATCH,
//!  the rest -> NFQNL_MSG_VERDICT; all sent with one send() per batch  -> kernel
//! ```
//!
//! ```no_run
//! use dpi_nfqueue::{Queue, QueueConfig, Verdict};
//! use std::sync::atomic::{AtomicBool, Ordering};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let stop = AtomicBool::new(false);
//! let mut queue = Queue::open(QueueConfig { queue_maxlen: 4096, ..QueueConfig::new(0) })?;
//! while !stop.load(Ordering::Relaxed) {
//!     // Waits at most `poll_timeout` (100 ms) for the first packet.
//!     queue.recv_batch(64, |pkt| {
//!         let frame = pkt.frame_mut([0; 6], [0; 6]); // Ethernet header written in place
//!         if frame.len() > 1500 { Verdict::Drop } else { Verdict::Accept }
//!     })?;
//! }
//! println!("{:?}", queue.shutdown()); // accepts what is still in the socket
//! # Ok(()) }
//! ```
//!
//! ## Kernel facts this relies on
//!
//! - Works through `iptables -j NFQUEUE` with both the nft and legacy backends; native
//!   nft `queue` needs `nft_queue`, which the CI kernels lack.
//! - A queue is per network namespace: open the [`Queue`] on a thread inside the
//!   workload's namespace; the socket stays there for life and can then be used from any
//!   thread. Since Linux 3.8 one bound queue receives IPv4 and IPv6 alike (the old
//!   per-family `PF_BIND` is a no-op), so `ip6tables` rules use the same queue.
//! - Configuration is one acknowledged request: bind + copy-packet mode + copy range +
//!   queue length (a queue in the default no-copy mode would reject packets in
//!   between), then the flags. Packets that arrive before the acknowledgements are
//!   read are sent back through their hook (`NF_REPEAT`) and queued again.
//! - Each packet is one netlink message (so one datagram); `recvmmsg` batches them.
//!   Packet ids increase by one per queued packet, and the kernel delivers messages in id
//!   order. `NFQNL_MSG_VERDICT_BATCH` applies its verdict to every pending packet with an
//!   id up to the one given, which is why only runs of identical verdicts are coalesced.
//! - The copy range is at most 65531 bytes (`0xffff` minus a netlink attribute header);
//!   longer packets arrive cut, with their real length in [`Packet::orig_len`].
//! - Kernel counters are in `/proc/net/netfilter/nfnetlink_queue` ([`kernel_stats`]).
//!
//! ## Fail-open, bypass and what happens when the engine is gone
//!
//! - **Fail-open** ([`QueueConfig::fail_open`], `NFQA_CFG_F_FAIL_OPEN`): when the queue
//!   already holds `queue_maxlen` packets, or the socket's receive buffer is full, the
//!   kernel *accepts* the new packet uninspected instead of dropping it. Such packets get
//!   no id, so the kernel's `id_sequence` counts only packets actually queued. Without
//!   fail-open they are dropped and counted as `queue_dropped` / `user_dropped`.
//! - **`--queue-bypass`** (an iptables option, not a socket setting): when *no* socket is
//!   bound to the queue, packets skip the rule instead of being dropped. That is the
//!   behaviour when the engine has stopped or crashed: the kernel unbinds the queue when
//!   the socket closes, even on SIGKILL. Bypass does nothing while a listener is bound.
//! - Closing the socket drops the packets still awaiting a verdict;
//!   [`Queue::shutdown`] accepts the ones already delivered first.
//!
//! ## GSO
//!
//! With [`QueueConfig::gso`] (`NFQA_CFG_F_GSO`) the kernel queues TCP/UDP super-packets
//! of up to 64 KB as they are, one verdict each, flagged [`Packet::is_gso`]; their L4
//! checksum may be unfinished ([`Packet::csum_not_ready`]), so do not verify it. Without
//! the flag the kernel segments them into MTU-sized packets (one verdict each) and fills
//! in checksums first, which costs far more per byte.
//!
//! ## Enforcement on this path
//!
//! A denied TCP connection is a silent drop: NFQUEUE has no way to inject a reset, so the
//! client retransmits until it times out (as NeuVector does in NFQ mode). Rewritten
//! packets ([`Packet::payload_mut`]) are sent back with their verdict and replace the
//! kernel's copy.
//!
//! ## Layout
//!
//! `sys` holds every `unsafe` block (socket, bind, setsockopt, poll, recvmmsg, send) and
//! the kernel constants; `wire` parses and builds netlink messages through a bounded
//! reader (a malformed message is a counted error, never a panic); `packet` is the view
//! lent to the callback; `queue` the receive/verdict loop; `frame` the Ethernet header
//! synthesis for dpi-core; `kstats` the kernel's counters.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod frame;
mod kstats;
mod packet;
mod queue;
mod sys;
mod wire;

pub use frame::{ethertype_for, frame_for, ETH_HLEN};
pub use kstats::{kernel_stats, parse_kernel_stats, QueueKernelStats};
pub use packet::{Hook, Packet, Verdict};
pub use queue::{Queue, QueueConfig, QueueError, QueueStats, CONFIG_TIMEOUT};
