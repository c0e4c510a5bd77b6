//! Per-frame metadata decoded from a ring slot header and its `sockaddr_ll`.

use crate::sys;
use crate::vnet::{Gso, VnetHdr};
use std::time::Duration;

/// Link-layer packet type, as the kernel classified the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketType {
    /// Addressed to this host.
    Host,
    /// Link-layer broadcast.
    Broadcast,
    /// Link-layer multicast.
    Multicast,
    /// Addressed to another host (seen because the interface forwards or is promiscuous;
    /// on a veth, unicast to another MAC).
    OtherHost,
    /// Sent by this host (a tap sees both directions).
    Outgoing,
    /// Any other kernel value.
    Other(u8),
}

impl PacketType {
    fn from_raw(v: u8) -> PacketType {
        match v {
            sys::PKTTYPE_HOST => PacketType::Host,
            sys::PKTTYPE_BROADCAST => PacketType::Broadcast,
            sys::PKTTYPE_MULTICAST => PacketType::Multicast,
            sys::PKTTYPE_OTHERHOST => PacketType::OtherHost,
            sys::PKTTYPE_OUTGOING => PacketType::Outgoing,
            v => PacketType::Other(v),
        }
    }
}

/// What the kernel knows about the frame's L4 checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksum {
    /// Nothing known: verify in software if it matters.
    Unknown,
    /// Partial (`CHECKSUM_PARTIAL`): the sender left it for offload, the bytes in the frame
    /// are not a valid checksum yet (`TP_STATUS_CSUMNOTREADY`).
    NotReady,
    /// Already verified by the kernel or the device (`TP_STATUS_CSUM_VALID`).
    Valid,
}

/// An 802.1Q/802.1ad tag the kernel took out of the frame (VLAN acceleration): the frame
/// bytes handed over do not contain it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vlan {
    /// Tag control information (priority, DEI, VLAN id).
    pub tci: u16,
    /// Tag protocol id (0x8100 when the kernel did not say).
    pub tpid: u16,
}

/// Metadata of one received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameMeta {
    /// Length of the frame on the wire (`tp_len`); larger than the bytes handed over when
    /// [`FrameMeta::truncated`].
    pub wire_len: u32,
    /// How the kernel classified it; [`PacketType::Outgoing`] for frames this namespace
    /// sent.
    pub pkt_type: PacketType,
    /// Checksum status.
    pub checksum: Checksum,
    /// VLAN tag removed by the kernel, if any (re-inserted when a service port forwards
    /// the frame from its ring).
    pub vlan: Option<Vlan>,
    /// Kernel receive timestamp (since the Unix epoch).
    pub timestamp: Duration,
    /// Read whole through the copy path (it did not fit a ring slot).
    pub copied: bool,
    /// Fewer bytes than `wire_len` are available.
    pub truncated: bool,
    /// A GSO super-frame (larger than the MTU, segmented only on the way out), on service
    /// ports opened with [`crate::ServiceConfig::vnet_hdr`]; `None` elsewhere.
    pub gso: Option<Gso>,
}

impl FrameMeta {
    /// Sent by the namespace the port watches (as opposed to received by it).
    pub fn is_outgoing(&self) -> bool {
        self.pkt_type == PacketType::Outgoing
    }

    pub(crate) fn from_hdr(
        h: &sys::RxHdr,
        vnet: Option<VnetHdr>,
        copied: bool,
        available: usize,
    ) -> FrameMeta {
        let st = h.status;
        let checksum = if st.csum_not_ready() || vnet.is_some_and(VnetHdr::needs_csum) {
            Checksum::NotReady
        } else if st.csum_valid() || vnet.is_some_and(VnetHdr::data_valid) {
            Checksum::Valid
        } else {
            Checksum::Unknown
        };
        let vlan = (st.vlan_valid() || h.vlan_tci != 0).then(|| Vlan {
            tci: h.vlan_tci,
            tpid: if st.vlan_tpid_valid() && h.vlan_tpid != 0 { h.vlan_tpid } else { 0x8100 },
        });
        FrameMeta {
            wire_len: h.len,
            pkt_type: PacketType::from_raw(h.pkttype),
            checksum,
            vlan,
            timestamp: Duration::new(u64::from(h.sec), h.nsec.min(999_999_999)),
            copied,
            truncated: (available as u64) < u64::from(h.len),
            gso: vnet.and_then(VnetHdr::gso),
        }
    }
}
