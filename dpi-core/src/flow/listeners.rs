//! Learned listening ports: `(address, port, protocol)` of ends seen acting as servers
//! (the sender of a SYN/ACK; a UDP server that answered). Used to pick the server of a TCP
//! session picked up mid-stream and of a UDP flow's first packet, as NeuVector does with
//! its endpoint app map (reference §5.4).
//!
//! Bounded and allocation-free after construction: a direct-mapped cache, each entry
//! overwritten by a newer one that hashes to the same place.

use crate::packet::Addr;

#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Entry {
    addr: Addr,
    port: u16,
    proto: u8,
    valid: bool,
}

pub(crate) struct Listeners {
    entries: Box<[Entry]>,
    mask: usize,
}

impl core::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Listeners").field("entries", &self.entries.len()).finish()
    }
}

impl Listeners {
    pub(crate) fn new(entries: usize) -> Self {
        let n = entries.max(1).next_power_of_two();
        Listeners { entries: vec![Entry::default(); n].into_boxed_slice(), mask: n - 1 }
    }

    fn slot(&self, addr: Addr, port: u16, proto: u8) -> usize {
        let x = (addr as u64) ^ ((addr >> 64) as u64).rotate_left(29);
        let x = (x ^ (u64::from(port) << 8 | u64::from(proto))).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (x >> 32) as usize & self.mask
    }

    pub(crate) fn learn(&mut self, addr: Addr, port: u16, proto: u8) {
        let i = self.slot(addr, port, proto);
        self.entries[i] = Entry { addr, port, proto, valid: true };
    }

    pub(crate) fn is_listening(&self, addr: Addr, port: u16, proto: u8) -> bool {
        let e = &self.entries[self.slot(addr, port, proto)];
        e.valid && e.addr == addr && e.port == port && e.proto == proto
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_and_forgets_on_collision_only() {
        let mut l = Listeners::new(1);
        l.learn(7, 80, 6);
        assert!(l.is_listening(7, 80, 6));
        assert!(!l.is_listening(7, 80, 17));
        l.learn(8, 443, 6);
        assert!(!l.is_listening(7, 80, 6), "one entry: overwritten");
        assert!(l.is_listening(8, 443, 6));
    }
}
