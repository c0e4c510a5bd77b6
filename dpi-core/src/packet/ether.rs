//! Ethernet II, VLAN tags (IEEE 802.1Q, 802.1ad) and PPPoE sessions (RFC 2516). At most
//! two VLAN tags are decoded; a third is a drop (`vlan_too_deep`). A PPPoE session frame
//! carrying IPv4 or IPv6 (PPP protocols 0x0021, 0x0057) is decoded as that IP packet;
//! other PPP protocols (LCP, IPCP, ...) are non-IP.

use super::{be16, ethertype};
use crate::action::DropReason;

pub(super) const HEADER_LEN: usize = 14;
/// PPPoE header (6 bytes) plus the PPP protocol field (2 bytes).
const PPPOE_LEN: usize = 8;

pub(super) struct L2 {
    pub(super) ethertype: u16,
    pub(super) vlan: [u16; 2],
    pub(super) vlan_count: u8,
    pub(super) l3_off: usize,
}

pub(super) fn parse(frame: &[u8]) -> Result<L2, DropReason> {
    if frame.len() < HEADER_LEN {
        return Err(DropReason::EthTruncated);
    }
    let mut l2 = L2 { ethertype: be16(frame, 12), vlan: [0; 2], vlan_count: 0, l3_off: HEADER_LEN };
    while matches!(l2.ethertype, ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD) {
        if usize::from(l2.vlan_count) == l2.vlan.len() {
            return Err(DropReason::VlanTooDeep);
        }
        if frame.len() < l2.l3_off + 4 {
            return Err(DropReason::VlanTruncated);
        }
        l2.vlan[usize::from(l2.vlan_count)] = be16(frame, l2.l3_off) & 0x0fff;
        l2.vlan_count += 1;
        l2.ethertype = be16(frame, l2.l3_off + 2);
        l2.l3_off += 4;
    }
    if l2.ethertype == ethertype::PPPOE_SESSION {
        if frame.len() < l2.l3_off + PPPOE_LEN {
            return Err(DropReason::PppoeTruncated);
        }
        l2.ethertype = match be16(frame, l2.l3_off + 6) {
            0x0021 => ethertype::IPV4,
            0x0057 => ethertype::IPV6,
            _ => ethertype::PPPOE_SESSION,
        };
        l2.l3_off += PPPOE_LEN;
    }
    Ok(l2)
}
