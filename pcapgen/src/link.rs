//! Layer 2: hosts (MAC + IP), 802.1Q / 802.1ad VLAN tags and Ethernet II framing.
//!
//! Frames are emitted exactly as written: no padding to the 60-byte Ethernet
//! minimum and no FCS, which is what a capture on the sending host records.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// Tag protocol identifier of an 802.1Q (customer) VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// Tag protocol identifier of an 802.1ad (service, "QinQ") VLAN tag.
pub const ETHERTYPE_QINQ: u16 = 0x88a8;

/// The Ethernet broadcast address.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// A locally administered unicast MAC address `02:00:00:00:00:nn`.
pub const fn local_mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, n]
}

/// The Ethernet multicast MAC address an IPv4 multicast group maps to (RFC 1112 §6.4).
pub const fn ipv4_multicast_mac(group: Ipv4Addr) -> [u8; 6] {
    let o = group.octets();
    [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
}

/// One end of a conversation: a MAC address and an IP address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Host {
    /// Ethernet address.
    pub mac: [u8; 6],
    /// IPv4 or IPv6 address.
    pub ip: IpAddr,
}

impl Host {
    /// A host with the given addresses.
    pub const fn new(mac: [u8; 6], ip: IpAddr) -> Self {
        Self { mac, ip }
    }

    /// An IPv4 host with MAC `02:00:00:00:00:mac_suffix`.
    pub const fn v4(mac_suffix: u8, ip: [u8; 4]) -> Self {
        Self {
            mac: local_mac(mac_suffix),
            ip: IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
        }
    }

    /// An IPv6 host with MAC `02:00:00:00:00:mac_suffix`.
    pub const fn v6(mac_suffix: u8, ip: Ipv6Addr) -> Self {
        Self { mac: local_mac(mac_suffix), ip: IpAddr::V6(ip) }
    }
}

/// The VLAN tags in front of the EtherType (priority and DEI bits are always 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum VlanTags {
    /// Untagged frame.
    #[default]
    None,
    /// One 802.1Q tag (TPID 0x8100) with this VLAN id (12 bits).
    Single(u16),
    /// An outer 802.1ad tag (TPID 0x88a8) and an inner 802.1Q tag (TPID 0x8100).
    Double {
        /// Service VLAN id (outer tag).
        outer: u16,
        /// Customer VLAN id (inner tag).
        inner: u16,
    },
}

impl VlanTags {
    /// Number of bytes the tags add to the Ethernet header (0, 4 or 8).
    pub const fn len(self) -> usize {
        match self {
            Self::None => 0,
            Self::Single(_) => 4,
            Self::Double { .. } => 8,
        }
    }

    /// True for [`VlanTags::None`].
    pub const fn is_empty(self) -> bool {
        matches!(self, Self::None)
    }
}

/// Builds an Ethernet II frame: `dst`, `src`, the VLAN tags, `ether_type`, `payload`.
pub fn ethernet_frame(
    dst: [u8; 6],
    src: [u8; 6],
    vlan: VlanTags,
    ether_type: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + vlan.len() + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    let mut tag = |tpid: u16, vid: u16| {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    };
    match vlan {
        VlanTags::None => {}
        VlanTags::Single(vid) => tag(ETHERTYPE_VLAN, vid),
        VlanTags::Double { outer, inner } => {
            tag(ETHERTYPE_QINQ, outer);
            tag(ETHERTYPE_VLAN, inner);
        }
    }
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A valid ARP request (RFC 826) from `sender` asking who has `target_ip`.
pub fn arp_request(sender_mac: [u8; 6], sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
    let mut arp = Vec::with_capacity(28);
    arp.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]);
    arp.extend_from_slice(&sender_mac);
    arp.extend_from_slice(&sender_ip.octets());
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&target_ip.octets());
    ethernet_frame(BROADCAST_MAC, sender_mac, VlanTags::None, ETHERTYPE_ARP, &arp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_tag_layout() {
        let f = ethernet_frame(
            local_mac(2),
            local_mac(1),
            VlanTags::Double { outer: 200, inner: 300 },
            ETHERTYPE_IPV4,
            &[0xaa],
        );
        assert_eq!(f.len(), 14 + 8 + 1);
        assert_eq!(&f[12..22], &[0x88, 0xa8, 0x00, 200, 0x81, 0x00, 0x01, 0x2c, 0x08, 0x00]);
    }

    #[test]
    fn multicast_mac() {
        assert_eq!(
            ipv4_multicast_mac(Ipv4Addr::new(224, 0, 0, 22)),
            [0x01, 0x00, 0x5e, 0x00, 0x00, 0x16]
        );
    }
}
