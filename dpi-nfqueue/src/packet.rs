//! One queued packet as lent to the verdict callback, the netfilter hook it was queued
//! at, and the verdict.
//!
//! Invariant: a [`Packet`] borrows the whole netlink message in the receive buffer; its
//! metadata was parsed before the borrow was handed out, so rewriting bytes of the
//! message (the payload, or the 14 bytes before it for [`Packet::frame_mut`]) cannot
//! change what the accessors return.

use crate::frame::{self, ETH_HLEN};
use crate::sys;
use crate::wire::PacketMeta;
use std::time::Duration;

/// What the kernel does with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Let the packet continue through the netfilter hooks (and on to its socket or the
    /// wire).
    Accept,
    /// Discard the packet. For TCP this is a silent drop: NFQUEUE cannot inject a reset,
    /// so the peer retransmits until it times out.
    Drop,
}

impl Verdict {
    pub(crate) fn raw(self) -> u32 {
        match self {
            Verdict::Accept => sys::NF_ACCEPT,
            Verdict::Drop => sys::NF_DROP,
        }
    }
}

/// The netfilter hook a packet was queued at (which iptables chain sent it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hook {
    /// `PREROUTING`: arriving, before routing.
    PreRouting,
    /// `INPUT`: arriving, for this namespace.
    LocalIn,
    /// `FORWARD`: routed through this namespace.
    Forward,
    /// `OUTPUT`: sent by this namespace.
    LocalOut,
    /// `POSTROUTING`: leaving, after routing.
    PostRouting,
    /// Any other hook number (bridge or netdev families).
    Other(u8),
}

impl Hook {
    /// The hook for a kernel hook number.
    pub fn from_raw(n: u8) -> Hook {
        match n {
            sys::NF_INET_PRE_ROUTING => Hook::PreRouting,
            sys::NF_INET_LOCAL_IN => Hook::LocalIn,
            sys::NF_INET_FORWARD => Hook::Forward,
            sys::NF_INET_LOCAL_OUT => Hook::LocalOut,
            sys::NF_INET_POST_ROUTING => Hook::PostRouting,
            other => Hook::Other(other),
        }
    }
}

/// A packet waiting for its verdict, lent to the callback of
/// [`Queue::recv_batch`](crate::Queue::recv_batch).
pub struct Packet<'a> {
    msg: &'a mut [u8],
    meta: &'a PacketMeta,
    modified: bool,
}

impl std::fmt::Debug for Packet<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packet")
            .field("id", &self.meta.id)
            .field("hook", &self.hook())
            .field("hw_protocol", &format_args!("{:#06x}", self.meta.hw_protocol))
            .field("len", &self.payload().len())
            .field("orig_len", &self.orig_len())
            .field("in", &self.in_ifindex())
            .field("out", &self.out_ifindex())
            .field("mark", &self.meta.mark)
            .field("gso", &self.is_gso())
            .finish_non_exhaustive()
    }
}

impl<'a> Packet<'a> {
    pub(crate) fn new(msg: &'a mut [u8], meta: &'a PacketMeta) -> Self {
        Packet { msg, meta, modified: false }
    }

    /// The kernel's packet id (increasing per queue, wrapping at 2^32).
    pub fn id(&self) -> u32 {
        self.meta.id
    }

    /// The queue number the packet came from.
    pub fn queue_num(&self) -> u16 {
        self.meta.queue
    }

    /// The hook (chain) that queued it.
    pub fn hook(&self) -> Hook {
        Hook::from_raw(self.meta.hook)
    }

    /// The ethertype the kernel gives the packet (0x0800 IPv4, 0x86dd IPv6).
    pub fn hw_protocol(&self) -> u16 {
        self.meta.hw_protocol
    }

    /// The packet's netfilter mark (0 when unset; the kernel omits a zero mark).
    pub fn mark(&self) -> u32 {
        self.meta.mark
    }

    /// Index of the interface it arrived on (`None` for locally generated packets).
    pub fn in_ifindex(&self) -> Option<u32> {
        (self.meta.indev != 0).then_some(self.meta.indev)
    }

    /// Index of the interface it will leave by (`None` before routing and on input).
    pub fn out_ifindex(&self) -> Option<u32> {
        (self.meta.outdev != 0).then_some(self.meta.outdev)
    }

    /// Bridge port it arrived on, when the input interface is a bridge.
    pub fn phys_in_ifindex(&self) -> Option<u32> {
        (self.meta.physindev != 0).then_some(self.meta.physindev)
    }

    /// Bridge port it will leave by, when the output interface is a bridge.
    pub fn phys_out_ifindex(&self) -> Option<u32> {
        (self.meta.physoutdev != 0).then_some(self.meta.physoutdev)
    }

    /// Source MAC address of an arriving packet, when the link has one.
    pub fn src_mac(&self) -> Option<[u8; 6]> {
        let (addr, len) = self.meta.hwaddr?;
        let mut mac = [0u8; 6];
        mac.copy_from_slice(addr.get(..6)?);
        (len == 6).then_some(mac)
    }

    /// Arrival time (since the Unix epoch) when the kernel stamped the packet (input
    /// hooks only, and only while some socket asks for timestamps).
    pub fn timestamp(&self) -> Option<Duration> {
        let (s, us) = self.meta.timestamp?;
        Some(Duration::from_secs(s) + Duration::from_micros(us.min(999_999)))
    }

    /// The IP packet (as much of it as the copy range allowed).
    pub fn payload(&self) -> &[u8] {
        self.msg.get(self.meta.payload.clone()).unwrap_or(&[])
    }

    /// The IP packet, writable. Calling this marks the packet modified: its bytes are sent
    /// back with the verdict and replace the kernel's copy (fix the checksums yourself;
    /// the kernel marks the packet `CHECKSUM_NONE`). A packet cut short by the copy range
    /// is never written back (it would truncate the real packet); see
    /// [`QueueStats::modify_refused`](crate::QueueStats::modify_refused).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.modified = true;
        self.msg.get_mut(self.meta.payload.clone()).unwrap_or(&mut [])
    }

    /// Mark the packet modified after rewriting it through [`Packet::frame_mut`].
    pub fn set_modified(&mut self) {
        self.modified = true;
    }

    pub(crate) fn is_modified(&self) -> bool {
        self.modified
    }

    /// The ethertype of the payload: from the IP version nibble, else `hw_protocol`.
    pub fn ethertype(&self) -> u16 {
        frame::ethertype_for(self.payload(), self.meta.hw_protocol)
    }

    /// An Ethernet frame `dst | src | ethertype | IP packet`, built in place: the header is
    /// written over the 14 bytes of the message just before the payload (netlink
    /// headers already parsed), so nothing is copied. This is the slice to give
    /// `dpi_core::Ctx::recv_packet`. Does not mark the packet modified.
    pub fn frame_mut(&mut self, src: [u8; 6], dst: [u8; 6]) -> &mut [u8] {
        let ethertype = self.ethertype();
        let p = self.meta.payload.clone();
        // The parser guarantees p.start >= ETH_HLEN; the fallback is unreachable.
        let Some(frame) = self.msg.get_mut(p.start.saturating_sub(ETH_HLEN)..p.end) else {
            return &mut [];
        };
        if let Some(hdr) = frame.first_chunk_mut::<ETH_HLEN>() {
            frame::write_header(hdr, src, dst, ethertype);
        }
        frame
    }

    /// Length of the packet in the kernel (larger than [`Packet::payload`] when the copy
    /// range cut it).
    pub fn orig_len(&self) -> usize {
        if self.meta.cap_len != 0 {
            self.meta.cap_len as usize
        } else {
            self.payload().len()
        }
    }

    /// The payload was cut to the copy range (see [`Packet::orig_len`]).
    pub fn is_truncated(&self) -> bool {
        self.orig_len() > self.payload().len()
    }

    /// A GSO super-packet (only with [`QueueConfig::gso`](crate::QueueConfig::gso)): one
    /// IP header in front of up to 64 KB of data that the kernel segments later.
    pub fn is_gso(&self) -> bool {
        self.meta.skb_info & sys::NFQA_SKB_GSO != 0
    }

    /// The L4 checksum is not filled in yet (checksum offload of a local packet, only
    /// with `gso`); do not verify it.
    pub fn csum_not_ready(&self) -> bool {
        self.meta.skb_info & sys::NFQA_SKB_CSUMNOTREADY != 0
    }

    /// The kernel has not verified the checksum of this arriving packet.
    pub fn csum_not_verified(&self) -> bool {
        self.meta.skb_info & sys::NFQA_SKB_CSUM_NOTVERIFIED != 0
    }
}
