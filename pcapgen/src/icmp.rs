//! ICMP (RFC 792), ICMPv6 (RFC 4443) and IGMPv2 (RFC 2236) messages on an
//! [`IpPath`].
//!
//! The builders pick ICMP or ICMPv6 from the path's address family. Error
//! messages quote the offending packet the way Linux does: as much of it as fits
//! in 576 bytes (IPv4, RFC 1812 §4.3.2.3) or in the 1280-byte minimum MTU (IPv6,
//! RFC 4443 §2.4), which always includes the IP header and the first 8 bytes of
//! the transport header.

use std::net::Ipv4Addr;

use crate::checksum::{internet_checksum, pseudo_header_checksum};
use crate::ip::{ip_number, IpPath};

/// ICMP type: echo reply.
pub const ICMP_ECHO_REPLY: u8 = 0;
/// ICMP type: destination unreachable.
pub const ICMP_DEST_UNREACHABLE: u8 = 3;
/// ICMP type: echo request.
pub const ICMP_ECHO_REQUEST: u8 = 8;
/// ICMP destination-unreachable code: port unreachable.
pub const ICMP_CODE_PORT_UNREACHABLE: u8 = 3;
/// ICMP destination-unreachable code: fragmentation needed and DF set.
pub const ICMP_CODE_FRAG_NEEDED: u8 = 4;
/// ICMPv6 type: destination unreachable.
pub const ICMPV6_DEST_UNREACHABLE: u8 = 1;
/// ICMPv6 type: packet too big.
pub const ICMPV6_PACKET_TOO_BIG: u8 = 2;
/// ICMPv6 type: echo request.
pub const ICMPV6_ECHO_REQUEST: u8 = 128;
/// ICMPv6 type: echo reply.
pub const ICMPV6_ECHO_REPLY: u8 = 129;
/// ICMPv6 destination-unreachable code: port unreachable.
pub const ICMPV6_CODE_PORT_UNREACHABLE: u8 = 4;
/// IGMP type: version 2 membership report.
pub const IGMP_V2_MEMBERSHIP_REPORT: u8 = 0x16;

/// Most bytes of the offending packet an ICMPv4 error quotes (576 − 20 − 8).
pub const ICMP_MAX_QUOTE: usize = 548;
/// Most bytes of the offending packet an ICMPv6 error quotes (1280 − 40 − 8).
pub const ICMPV6_MAX_QUOTE: usize = 1232;

impl IpPath {
    /// The ICMP (IPv4 path) or ICMPv6 (IPv6 path) message `type`, `code`, the 4
    /// bytes after the checksum (`rest`) and `body`, with a correct checksum
    /// (ICMPv6 over the pseudo-header).
    pub fn icmp_bytes(&self, icmp_type: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
        let mut m = Vec::with_capacity(8 + body.len());
        m.extend_from_slice(&[icmp_type, code, 0, 0]);
        m.extend_from_slice(&rest);
        m.extend_from_slice(body);
        let sum = if self.is_ipv6() {
            pseudo_header_checksum(self.src.ip, self.dst.ip, ip_number::ICMPV6, &m)
        } else {
            internet_checksum(&m)
        };
        m[2..4].copy_from_slice(&sum.to_be_bytes());
        m
    }

    /// An IP packet carrying an ICMP or ICMPv6 message (see [`IpPath::icmp_bytes`]).
    pub fn icmp_packet(&mut self, icmp_type: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
        let m = self.icmp_bytes(icmp_type, code, rest, body);
        let proto = if self.is_ipv6() { ip_number::ICMPV6 } else { ip_number::ICMP };
        self.ip_packet(proto, &m)
    }

    /// An Ethernet frame carrying an ICMP or ICMPv6 message.
    pub fn icmp(&mut self, icmp_type: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
        let p = self.icmp_packet(icmp_type, code, rest, body);
        self.frame(&p)
    }

    fn echo(&mut self, request: bool, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
        let t = match (self.is_ipv6(), request) {
            (false, true) => ICMP_ECHO_REQUEST,
            (false, false) => ICMP_ECHO_REPLY,
            (true, true) => ICMPV6_ECHO_REQUEST,
            (true, false) => ICMPV6_ECHO_REPLY,
        };
        let [a, b] = id.to_be_bytes();
        let [c, d] = seq.to_be_bytes();
        self.icmp(t, 0, [a, b, c, d], payload)
    }

    /// An echo request frame (ICMP type 8 or ICMPv6 type 128).
    pub fn echo_request(&mut self, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
        self.echo(true, id, seq, payload)
    }

    /// An echo reply frame (ICMP type 0 or ICMPv6 type 129).
    pub fn echo_reply(&mut self, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
        self.echo(false, id, seq, payload)
    }

    fn quote<'a>(&self, original: &'a [u8]) -> &'a [u8] {
        let max = if self.is_ipv6() { ICMPV6_MAX_QUOTE } else { ICMP_MAX_QUOTE };
        &original[..original.len().min(max)]
    }

    /// A destination-unreachable frame (ICMP type 3 or ICMPv6 type 1) with `code`,
    /// quoting `original` (an IP packet that went the other way).
    pub fn dest_unreachable(&mut self, code: u8, original: &[u8]) -> Vec<u8> {
        let t = if self.is_ipv6() { ICMPV6_DEST_UNREACHABLE } else { ICMP_DEST_UNREACHABLE };
        let body = self.quote(original).to_vec();
        self.icmp(t, code, [0; 4], &body)
    }

    /// A "packet too big" frame: ICMPv6 type 2 with a 32-bit MTU, or on IPv4 the
    /// equivalent ICMP type 3 code 4 with a 16-bit next-hop MTU (RFC 1191).
    pub fn packet_too_big(&mut self, mtu: u32, original: &[u8]) -> Vec<u8> {
        let body = self.quote(original).to_vec();
        if self.is_ipv6() {
            self.icmp(ICMPV6_PACKET_TOO_BIG, 0, mtu.to_be_bytes(), &body)
        } else {
            let [a, b] = u16::try_from(mtu).unwrap_or(u16::MAX).to_be_bytes();
            self.icmp(ICMP_DEST_UNREACHABLE, ICMP_CODE_FRAG_NEEDED, [0, 0, a, b], &body)
        }
    }
}

/// An IGMPv2 membership report for `group` (8 bytes, checksum set).
pub fn igmp_v2_report(group: Ipv4Addr) -> Vec<u8> {
    let mut m = vec![IGMP_V2_MEMBERSHIP_REPORT, 0, 0, 0];
    m.extend_from_slice(&group.octets());
    let sum = internet_checksum(&m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

/// A GRE packet (RFC 2784, no checksum/key/sequence) carrying `inner` of
/// `protocol_type` (an EtherType, e.g. 0x0800 for IPv4).
pub fn gre_bytes(protocol_type: u16, inner: &[u8]) -> Vec<u8> {
    let mut g = Vec::with_capacity(4 + inner.len());
    g.extend_from_slice(&[0, 0]);
    g.extend_from_slice(&protocol_type.to_be_bytes());
    g.extend_from_slice(inner);
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::Host;
    use std::net::Ipv6Addr;

    #[test]
    fn icmpv4_echo_checksum_verifies() {
        let mut p = IpPath::new(Host::v4(1, [10, 0, 0, 1]), Host::v4(2, [10, 0, 0, 2]));
        let f = p.echo_request(0x1234, 1, b"abcdefgh");
        assert_eq!(&f[34..42], &[8, 0, f[36], f[37], 0x12, 0x34, 0, 1]);
        assert_eq!(internet_checksum(&f[34..]), 0);
    }

    #[test]
    fn icmpv6_error_quote_is_capped() {
        let a = Host::v6(1, Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
        let b = Host::v6(2, Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
        let mut p = IpPath::new(a, b);
        let f = p.packet_too_big(1280, &[0u8; 2000]);
        assert_eq!(f.len(), 14 + 40 + 8 + ICMPV6_MAX_QUOTE);
        assert_eq!(&f[54..62], &[2, 0, f[56], f[57], 0, 0, 5, 0]);
        let sum = pseudo_header_checksum(p.src.ip, p.dst.ip, ip_number::ICMPV6, &f[54..]);
        assert_eq!(sum, 0);
    }
}
