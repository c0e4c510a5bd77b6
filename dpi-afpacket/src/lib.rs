//! # dpi-afpacket: AF_PACKET ring sockets for the enforcer's data path
//!
//! Two kinds of port, each one socket with memory-mapped rings shared with the kernel:
//!
//! - [`TapPort`]: a TPACKET_V3 receive ring on a workload's interface (Discover/Monitor
//!   mode). It sees copies of the frames in both directions — frames the namespace
//!   receives and frames it sends ([`FrameMeta::is_outgoing`]) — and never forwards.
//! - [`ServicePort`]: TPACKET_V2 receive *and* transmit rings on one interface (the
//!   enforcer's `vth-neuv` in production, or `vin`/`vex` of a port pair). The engine's
//!   [`Verdict`] decides per frame: forward (copied into a TX slot) or drop. Frames the
//!   engine synthesises (`dpi_core::Ctx::poll_transmit`, e.g. TCP resets) go out with
//!   [`ServicePort::transmit`].
//!
//! ## Data flow
//!
//! ```text
//!   kernel ──► RX ring slot (TP_STATUS_USER) ──► recv(|frame: &mut [u8], meta| -> Verdict)
//!                                                   │ the borrow of `frame` ends here
//!              slot handed back (TP_STATUS_KERNEL) ◄┘
//!   Forward ─► copy into TX slot (SEND_REQUEST) ─► one send(fd, NULL, 0) per batch ─► kernel
//! ```
//!
//! A ring frame is lent to the callback as `&mut [u8]` (it may be rewritten in place); the
//! callback's signature ends the borrow before the slot returns to the kernel, so no
//! reference into the ring can outlive its slot. All `unsafe` code is in the private `sys`
//! module, each block with a `SAFETY:` comment; the rest of the crate denies it.
//!
//! ## Ring layouts
//!
//! - **V2 (service port)**: fixed slots of [`ServiceConfig::frame_size`] bytes (default
//!   2 KiB, enough for a 1500-byte MTU; use 16 KiB for 9000-byte jumbo links). A slot is
//!   `tpacket2_hdr` (32 bytes), `sockaddr_ll`, padding, then the frame at `tp_mac` (66
//!   bytes in), so a 2 KiB slot holds frames up to 1982 bytes. The TX ring follows the RX
//!   ring in the same mapping; TX frame data starts 32 bytes into a slot.
//! - **V3 (tap port)**: [`TapConfig::block_size`] blocks (default 256 KiB) that the kernel
//!   fills with variable-length frames and hands over whole, when full or after
//!   [`TapConfig::retire_timeout_ms`] (default 2 ms). A frame is seen whole up to about the
//!   block size, so 64 KiB GSO frames fit in the default geometry.
//!
//! ## V2 versus V3
//!
//! V3 packs frames densely and wakes the reader once per block, which suits a tap, but a
//! block is only handed over when it fills or its retire timer fires: every frame waits up
//! to `retire_timeout_ms`. Inline, that latency is added to every packet of every
//! connection (1.8 ms RTT measured with a 1 ms timer, against 0.19 ms with V2), so the
//! service port uses V2, whose slots are handed over one by one. V2 also has the copy path
//! for oversize frames (below), which V3 lacks.
//!
//! ## Namespaces
//!
//! A socket belongs for life to the network namespace of the thread that created it.
//! Open ports on a thread that has joined the right namespace (for example inside
//! `netns_harness::AnonNs::enter`, or a thread that called `setns`); the returned port can
//! then be used from any thread. Interface names are resolved in that namespace too; the
//! same holds for [`set_tx_offload`].
//!
//! ## Checksum offload and GSO
//!
//! A veth whose *sender* side has transmit offloads on (the default) delivers frames with
//! partial checksums (flagged [`Checksum::NotReady`]) and GSO super-frames of up to 64 KiB.
//! Frames written back through AF_PACKET are taken as finished: a partial checksum stays
//! wrong and a super-frame larger than the MTU cannot be sent. So transmit offload must be
//! off on the device whose transmit path feeds the service port: `ethtool -K vbr-neuv tx
//! off` in NeuVector's topology (the kernel then checksums and segments in
//! `validate_xmit_skb`), or on the containers' `eth0` when the port sits directly on
//! `vin`/`vex`. [`set_tx_offload`] does this through the ethtool ioctl, without the
//! `ethtool` tool. Frames flagged `NotReady` are counted ([`PortCounters::csum_not_ready`]).
//!
//! Or keep offloads on and open the service ports with [`ServiceConfig::vnet_hdr`]
//! (`PACKET_VNET_HDR`). Each frame then comes with the kernel's `virtio_net_hdr`: GSO
//! super-frames of up to 64 KiB arrive whole ([`FrameMeta::gso`],
//! [`PortCounters::gso_frames`]; through the copy path when larger than a slot), and a
//! forwarded frame leaves with its header, so the kernel finishes partial checksums and
//! segments on the way out only where a device needs it (a veth peer takes super-frames
//! as they are). One engine pass per super-frame instead of per segment: measured 2.8x
//! Suricata's TCP throughput where the plain ports reach about 0.9x (`benches/README.md`).
//! Frames from [`ServicePort::transmit`] get an empty header (finished frame). BIG TCP
//! (`gso_max_size` above 64 KiB) must stay off on the devices feeding the port: such
//! frames exceed the copy buffer and are counted in [`PortCounters::oversize_dropped`].
//! A re-inserted VLAN tag moves the header's checksum start accordingly.
//!
//! ## Oversize frames (larger than a ring slot)
//!
//! Service port: the socket sets `PACKET_COPY_THRESH`, so the kernel queues a frame that
//! does not fit a V2 slot whole to the socket as well and flags the slot `TP_STATUS_COPY`.
//! [`ServicePort::recv`] then reads the whole frame with `recv()` into a 64 KiB buffer and
//! gives it to the callback like any other frame ([`FrameMeta::copied`],
//! [`PortCounters::copy_frames`]). A forwarded oversize frame leaves with a plain `send()`
//! on a second, ring-less socket of the output port (a socket with a TX ring can only send
//! from its ring). The kernel accepts that for frames up to the output MTU (a jumbo frame
//! on a jumbo link); a GSO super-frame larger than the MTU is refused (`EMSGSIZE`) and
//! counted in [`PortCounters::tx_errors`] — an alarm that offload is still on somewhere.
//! A frame the kernel could only deliver truncated (socket receive buffer full, so no
//! copy) is never forwarded and counted in [`PortCounters::oversize_dropped`].
//!
//! Tap port: V3 has no copy path; a frame larger than a block is seen truncated
//! ([`FrameMeta::truncated`], counted in `oversize_dropped`, still given to the callback).
//!
//! ## Fanout
//!
//! [`Fanout`] puts N sockets on one interface into a `PACKET_FANOUT` group so N workers
//! each own one socket. [`FanoutMode::Hash`] (`PACKET_FANOUT_HASH`) picks the socket by
//! `__skb_get_hash_symmetric()`: the kernel's flow dissector hash with addresses and ports
//! put in a canonical order, ignoring any `skb->hash` a sender's socket set. Both
//! directions of a TCP or UDP flow therefore land on the same socket, on incoming and
//! outgoing frames alike (verified by the `fanout` test with connections opened from both
//! sides). IP fragments hash on addresses only (the dissector stops at a fragment), so
//! they may land on another worker than the flow's unfragmented packets;
//! [`Fanout::defrag`] (`PACKET_FANOUT_FLAG_DEFRAG`) reassembles before hashing, which
//! suits taps but not inline ports (the reassembled datagram no longer fits the MTU).
//!
//! ## Worker loop
//!
//! ```no_run
//! use dpi_afpacket::{ServiceConfig, ServicePort, Verdict};
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::time::Duration;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let stop = AtomicBool::new(false);
//! let mut port = ServicePort::open("vth-neuv", &ServiceConfig::default())?;
//! while !stop.load(Ordering::Relaxed) {
//!     port.poll(Duration::from_millis(100))?; // bounded: the loop sees `stop` promptly
//!     port.recv(256, |frame, _meta| if frame.len() >= 14 { Verdict::Forward } else { Verdict::Drop });
//! }
//! # Ok(()) }
//! ```

#![deny(unsafe_code)]

mod meta;
mod service;
mod sys;
mod tap;
mod vnet;

pub use meta::{Checksum, FrameMeta, PacketType, Vlan};
pub use service::{ServiceConfig, ServicePort, TxOutcome};
pub use tap::{TapConfig, TapPort};
pub use vnet::{Gso, GsoKind};

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

/// What to do with a frame handed to a [`ServicePort`] callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send it on (after any in-place rewrite by the callback).
    Forward,
    /// Do not send it.
    Drop,
}

/// Longest wait of [`TapPort::poll`], [`ServicePort::poll`] and [`poll_ready`]: longer
/// timeouts are cut to this, so a worker loop always gets back to its stop flag.
pub const MAX_POLL: Duration = Duration::from_millis(100);

/// How a fanout group spreads frames over its sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FanoutMode {
    /// By symmetric flow hash (both directions of a flow on one socket).
    #[default]
    Hash,
    /// By the CPU that received the frame.
    Cpu,
    /// By the device's receive queue.
    QueueMap,
    /// Round robin (flows are split: only for stateless consumers).
    LoadBalance,
}

/// Membership of a `PACKET_FANOUT` group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Fanout {
    /// Group id; sockets with the same id on the same interface (and network namespace)
    /// share the traffic. Every member must use the same mode and flags.
    pub group_id: u16,
    /// How frames are spread.
    pub mode: FanoutMode,
    /// Reassemble IPv4 fragments before hashing (`PACKET_FANOUT_FLAG_DEFRAG`). Default
    /// off; see the crate docs.
    pub defrag: bool,
}

/// Kernel ring counters (`PACKET_STATISTICS`), accumulated since the port was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Frames the kernel offered to the socket, including the dropped ones.
    pub packets: u64,
    /// Frames dropped because the ring (or the receive buffer) was full.
    pub drops: u64,
    /// Times a V3 ring was frozen because every block was full (0 for V2).
    pub freeze_count: u64,
}

/// The port's own counters (user space), monotonically increasing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// Frames handed to a callback.
    pub rx_frames: u64,
    /// Bytes of those frames (as handed over).
    pub rx_bytes: u64,
    /// Frames queued for sending (TX slot or plain send accepted).
    pub tx_frames: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Frames forwarded on a [`Verdict::Forward`].
    pub forwarded: u64,
    /// Frames not forwarded on a [`Verdict::Drop`].
    pub dropped: u64,
    /// Frames lost because the TX ring had no free slot.
    pub tx_ring_full: u64,
    /// Frames the kernel refused to send (e.g. a GSO super-frame above the MTU), or a
    /// failed TX kick.
    pub tx_errors: u64,
    /// Oversize frames received whole through the copy path (`recv()`).
    pub copy_frames: u64,
    /// Oversize frames that could only be seen truncated: never forwarded.
    pub oversize_dropped: u64,
    /// Frames with a partial checksum (transmit offload on upstream).
    pub csum_not_ready: u64,
    /// GSO super-frames received whole (ports with [`ServiceConfig::vnet_hdr`]).
    pub gso_frames: u64,
    /// Frames sent on the interface that reached the receive ring anyway (never
    /// forwarded; 0 unless the kernel ignores `PACKET_IGNORE_OUTGOING`).
    pub outgoing_skipped: u64,
}

/// An error opening or configuring a port. Each names the interface.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// The interface does not exist in the calling thread's network namespace.
    #[error("interface {iface:?}: not found in this network namespace: {source}")]
    NoInterface {
        /// Interface name.
        iface: String,
        /// The lookup error.
        source: io::Error,
    },
    /// A socket call failed.
    #[error("interface {iface:?}: {what} failed: {source}")]
    Socket {
        /// Interface name.
        iface: String,
        /// The step that failed (e.g. `"PACKET_RX_RING"`).
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// A configuration value is out of range.
    #[error("interface {iface:?}: bad ring configuration: {field} {reason}")]
    Config {
        /// Interface name.
        iface: String,
        /// The configuration field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Most descriptors [`poll_ready`] watches.
pub const MAX_POLL_FDS: usize = sys::MAX_POLL_FDS;

/// Wait until one of `fds` is readable, at most `timeout` (cut to [`MAX_POLL`]); returns
/// how many are ready (0 on timeout or signal). For a worker owning several ports, e.g.
/// both sides of a port pair. At most [`MAX_POLL_FDS`] descriptors are watched.
pub fn poll_ready(fds: &[BorrowedFd<'_>], timeout: Duration) -> io::Result<usize> {
    sys::poll_in(fds, timeout_ms(timeout))
}

fn timeout_ms(t: Duration) -> i32 {
    t.min(MAX_POLL).as_millis() as i32
}

/// Turn transmit checksum offload of interface `iface` (in the calling thread's network
/// namespace) on or off, like `ethtool -K IFACE tx on|off`. With it off the kernel also
/// drops TSO (which needs it) and computes checksums and segments GSO packets in software
/// before the device. See the crate docs for which interfaces need it.
pub fn set_tx_offload(iface: &str, on: bool) -> io::Result<()> {
    sys::ethtool_set(iface, sys::EthtoolCmd::TxCsum, on)
}

/// Whether transmit checksum offload is on for `iface`.
pub fn tx_offload(iface: &str) -> io::Result<bool> {
    sys::ethtool_get(iface, sys::EthtoolCmd::TxCsum)
}

/// Resolve `iface` in the calling thread's namespace.
fn ifindex(iface: &str) -> Result<u32, PortError> {
    sys::ifindex(iface).map_err(|source| PortError::NoInterface { iface: iface.into(), source })
}

fn sock_err<'a>(iface: &'a str, what: &'static str) -> impl FnOnce(io::Error) -> PortError + 'a {
    move |source| PortError::Socket { iface: iface.into(), what, source }
}
