//! The session key: both endpoints in a canonical order (lower address/port first), the IP
//! protocol, the address family and the VLAN ids. Because the order does not depend on
//! who sent the packet, one hash lookup finds a session from either direction; the
//! session remembers which side is the client.

use crate::packet::Addr;

/// Direction-independent session key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    /// The lower endpoint's address.
    pub lo_addr: Addr,
    /// The higher endpoint's address.
    pub hi_addr: Addr,
    /// The lower endpoint's port.
    pub lo_port: u16,
    /// The higher endpoint's port.
    pub hi_port: u16,
    /// IP protocol.
    pub proto: u8,
    /// IPv6.
    pub v6: bool,
    /// VLAN ids (0 where absent), outermost first.
    pub vlan: [u16; 2],
    /// Observation zone: 0 normally; on an inline port where frames of two workloads pass
    /// the engine twice (once per workload, told apart by a tagged MAC), which workload's
    /// pass this is (see `Config::mac_tag_prefix`).
    pub zone: u16,
}

impl FlowKey {
    /// Key of a packet from `(src, sport)` to `(dst, dport)`, and whether the source is
    /// the key's lower endpoint.
    pub fn new(
        v6: bool,
        proto: u8,
        vlan: [u16; 2],
        src: Addr,
        sport: u16,
        dst: Addr,
        dport: u16,
    ) -> (FlowKey, bool) {
        let src_is_lo = (src, sport) <= (dst, dport);
        let (lo_addr, lo_port, hi_addr, hi_port) =
            if src_is_lo { (src, sport, dst, dport) } else { (dst, dport, src, sport) };
        (FlowKey { lo_addr, hi_addr, lo_port, hi_port, proto, v6, vlan, zone: 0 }, src_is_lo)
    }

    /// The key packed into six words, for hashing (one hasher call per word rather than
    /// one per field).
    pub(crate) fn words(&self) -> [u64; 6] {
        [
            self.lo_addr as u64,
            (self.lo_addr >> 64) as u64,
            self.hi_addr as u64,
            (self.hi_addr >> 64) as u64,
            u64::from(self.lo_port)
                | u64::from(self.hi_port) << 16
                | u64::from(self.proto) << 32
                | u64::from(self.v6) << 40,
            u64::from(self.vlan[0]) | u64::from(self.vlan[1]) << 16 | u64::from(self.zone) << 32,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_give_one_key() {
        let (a, a_lo) = FlowKey::new(false, 6, [0; 2], 10, 40000, 20, 80);
        let (b, b_lo) = FlowKey::new(false, 6, [0; 2], 20, 80, 10, 40000);
        assert_eq!(a, b);
        assert!(a_lo);
        assert!(!b_lo);
    }

    #[test]
    fn vlan_and_family_separate_sessions() {
        let (a, _) = FlowKey::new(false, 17, [100, 0], 10, 1, 20, 2);
        let (b, _) = FlowKey::new(false, 17, [101, 0], 10, 1, 20, 2);
        let (c, _) = FlowKey::new(true, 17, [100, 0], 10, 1, 20, 2);
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
