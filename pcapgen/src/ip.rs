//! Layer 3: IPv4 (RFC 791) and IPv6 (RFC 8200) headers, IPv4 options and IPv6
//! extension headers, and [`IpPath`], one direction between two hosts.
//!
//! An [`IpPath`] carries everything below the transport header that a scenario may
//! want to vary: addresses, VLAN tags, TTL / hop limit, the DF bit, IPv4 options and
//! the IPv6 extension-header chain. The transport builders (`tcp`, `udp`, `icmp`)
//! are methods on it, in two forms: `*_packet` returns the IP packet (to fragment it
//! or quote it in an ICMP error) and the plain name returns the Ethernet frame.
//!
//! Invariants of every emitted packet: IPv4 total length and IPv6 payload length
//! match the bytes written, the IPv4 header checksum is correct, IPv4 options are
//! padded with End-of-Options to a multiple of 4 bytes and IPv6 option headers are
//! padded with Pad1/PadN to a multiple of 8 bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum::internet_checksum;
use crate::link::{ethernet_frame, Host, VlanTags, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

/// IP protocol numbers / IPv6 next-header values used by the builders.
pub mod ip_number {
    /// IPv6 Hop-by-Hop Options header.
    pub const HOP_BY_HOP: u8 = 0;
    /// ICMP for IPv4.
    pub const ICMP: u8 = 1;
    /// IGMP.
    pub const IGMP: u8 = 2;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 Routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Generic Routing Encapsulation.
    pub const GRE: u8 = 47;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header".
    pub const NO_NEXT_HEADER: u8 = 59;
    /// IPv6 Destination Options header.
    pub const DESTINATION_OPTIONS: u8 = 60;
}

/// Byte strings of common IPv4 options (RFC 791, RFC 2113), for
/// [`IpPath::ipv4_options`].
pub mod ipv4_option {
    /// No-Operation (type 1), used as padding between options.
    pub const NOP: u8 = 1;

    /// Router Alert (type 148, RFC 2113), value 0: 4 bytes, copied on fragmentation.
    pub const fn router_alert() -> [u8; 4] {
        [0x94, 0x04, 0x00, 0x00]
    }

    /// An empty Record Route option (type 7) with room for `slots` addresses
    /// (at most 9), pointer at the first slot. Not copied on fragmentation.
    pub fn record_route(slots: u8) -> Vec<u8> {
        let slots = slots.min(9);
        let mut o = vec![0x07, 3 + 4 * slots, 4];
        o.resize(usize::from(3 + 4 * slots), 0);
        o
    }
}

/// One IPv6 extension header, as placed in [`IpPath::ipv6_ext`].
///
/// The builder fills in the next-header and length fields and pads option
/// headers to a multiple of 8 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ipv6Ext {
    /// Hop-by-Hop Options header (next header 0) holding these raw TLV options.
    HopByHop(Vec<u8>),
    /// Destination Options header (next header 60) holding these raw TLV options.
    DestinationOptions(Vec<u8>),
    /// Routing header (next header 43).
    Routing {
        /// Routing type (0 is the deprecated source route, RFC 5095).
        routing_type: u8,
        /// Segments left.
        segments_left: u8,
        /// The type-specific data after the first 4 bytes, zero-padded to 8n+4 bytes.
        data: Vec<u8>,
    },
    /// Fragment header (next header 44, RFC 8200 §4.5).
    Fragment {
        /// Offset of the data in the fragmentable part, in bytes (multiple of 8).
        offset: usize,
        /// The M flag: more fragments follow.
        more_fragments: bool,
        /// The identification shared by all fragments of one packet.
        identification: u32,
    },
}

impl Ipv6Ext {
    /// A routing header of type 0 with zero segments left and no addresses (8 bytes).
    pub fn routing_type0() -> Self {
        Self::Routing { routing_type: 0, segments_left: 0, data: vec![0; 4] }
    }

    /// The next-header value that announces this header.
    pub const fn number(&self) -> u8 {
        match self {
            Self::HopByHop(_) => ip_number::HOP_BY_HOP,
            Self::DestinationOptions(_) => ip_number::DESTINATION_OPTIONS,
            Self::Routing { .. } => ip_number::ROUTING,
            Self::Fragment { .. } => ip_number::FRAGMENT,
        }
    }

    /// Appends the encoded header, whose next-header field is `next`, to `out`.
    fn emit(&self, next: u8, out: &mut Vec<u8>) {
        let start = out.len();
        match self {
            Self::HopByHop(opts) | Self::DestinationOptions(opts) => {
                out.extend_from_slice(&[next, 0]);
                out.extend_from_slice(opts);
                pad_options(out, start);
            }
            Self::Routing { routing_type, segments_left, data } => {
                out.extend_from_slice(&[next, 0, *routing_type, *segments_left]);
                out.extend_from_slice(data);
                let rem = (out.len() - start) % 8;
                if rem != 0 {
                    out.resize(out.len() + 8 - rem, 0);
                }
            }
            Self::Fragment { offset, more_fragments, identification } => {
                assert!(
                    offset.is_multiple_of(8),
                    "IPv6 fragment offset {offset} is not a multiple of 8"
                );
                let units = u16::try_from(offset / 8).unwrap_or(u16::MAX) & 0x1fff;
                let field = (units << 3) | u16::from(*more_fragments);
                out.extend_from_slice(&[next, 0]);
                out.extend_from_slice(&field.to_be_bytes());
                out.extend_from_slice(&identification.to_be_bytes());
            }
        }
        let len8 = (out.len() - start) / 8;
        if !matches!(self, Self::Fragment { .. }) {
            out[start + 1] = u8::try_from(len8 - 1).unwrap_or(u8::MAX);
        }
    }
}

/// Pads the option header started at `start` in `out` to a multiple of 8 bytes
/// with Pad1 or PadN (RFC 8200 §4.2).
fn pad_options(out: &mut Vec<u8>, start: usize) {
    let rem = (out.len() - start) % 8;
    match 8 - rem {
        8 => {}
        1 => out.push(0),
        n => {
            out.extend_from_slice(&[1, (n - 2) as u8]);
            out.resize(out.len() + n - 2, 0);
        }
    }
}

/// The fields of one IPv4 header, before emission.
#[derive(Clone, Debug)]
pub(crate) struct Ipv4Fields<'a> {
    pub(crate) src: Ipv4Addr,
    pub(crate) dst: Ipv4Addr,
    pub(crate) protocol: u8,
    pub(crate) tos: u8,
    pub(crate) id: u16,
    pub(crate) ttl: u8,
    pub(crate) dont_fragment: bool,
    pub(crate) more_fragments: bool,
    /// Fragment offset in bytes (multiple of 8).
    pub(crate) frag_offset: usize,
    pub(crate) options: &'a [u8],
}

/// Emits an IPv4 header followed by `payload`, with total length and checksum set.
///
/// # Panics
/// If the options exceed 40 bytes, the packet exceeds 65535 bytes or the fragment
/// offset is not a multiple of 8.
pub(crate) fn emit_ipv4(f: &Ipv4Fields<'_>, payload: &[u8]) -> Vec<u8> {
    let opt_len = f.options.len().div_ceil(4) * 4;
    assert!(opt_len <= 40, "IPv4 options are {} bytes, at most 40 fit", f.options.len());
    assert!(
        f.frag_offset.is_multiple_of(8),
        "IPv4 fragment offset {} not a multiple of 8",
        f.frag_offset
    );
    let hlen = 20 + opt_len;
    let total = u16::try_from(hlen + payload.len())
        .unwrap_or_else(|_| panic!("IPv4 packet of {} bytes exceeds 65535", hlen + payload.len()));
    let units = u16::try_from(f.frag_offset / 8).unwrap_or(u16::MAX) & 0x1fff;
    let flags_frag =
        (u16::from(f.dont_fragment) << 14) | (u16::from(f.more_fragments) << 13) | units;
    let mut p = Vec::with_capacity(usize::from(total));
    p.push(0x40 | (hlen / 4) as u8);
    p.push(f.tos);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&f.id.to_be_bytes());
    p.extend_from_slice(&flags_frag.to_be_bytes());
    p.extend_from_slice(&[f.ttl, f.protocol, 0, 0]);
    p.extend_from_slice(&f.src.octets());
    p.extend_from_slice(&f.dst.octets());
    p.extend_from_slice(f.options);
    p.resize(hlen, 0);
    let sum = internet_checksum(&p);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Emits an IPv6 header, the extension chain `ext` and `payload` whose type is
/// `upper` (the next-header value of the last extension header).
///
/// # Panics
/// If the payload length exceeds 65535 bytes (no jumbograms).
pub(crate) fn emit_ipv6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    ext: &[Ipv6Ext],
    upper: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut p = Vec::with_capacity(40 + 8 * ext.len() + payload.len());
    p.extend_from_slice(&[0x60, 0, 0, 0, 0, 0]);
    p.push(ext.first().map_or(upper, Ipv6Ext::number));
    p.push(hop_limit);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    for (i, e) in ext.iter().enumerate() {
        e.emit(ext.get(i + 1).map_or(upper, Ipv6Ext::number), &mut p);
    }
    p.extend_from_slice(payload);
    let plen = u16::try_from(p.len() - 40)
        .unwrap_or_else(|_| panic!("IPv6 payload of {} bytes exceeds 65535", p.len() - 40));
    p[4..6].copy_from_slice(&plen.to_be_bytes());
    p
}

/// One direction between two hosts, with the knobs of the IP layer.
///
/// Build one per direction ([`IpPath::new`] then [`IpPath::reversed`] for replies).
/// IPv4 packets take their identification from [`IpPath::next_ip_id`], which is
/// incremented for every packet built, so a path must be `&mut`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpPath {
    /// Sender.
    pub src: Host,
    /// Receiver (the Ethernet destination is `dst.mac`, the next hop).
    pub dst: Host,
    /// VLAN tags on every frame.
    pub vlan: VlanTags,
    /// IPv4 TTL or IPv6 hop limit. Default 64.
    pub ttl: u8,
    /// IPv4 "don't fragment" bit. Default false (TCP conversations set it).
    pub dont_fragment: bool,
    /// Raw IPv4 options (see [`ipv4_option`]), padded to 4 bytes on emission.
    pub ipv4_options: Vec<u8>,
    /// IPv6 extension headers in front of the transport header, in order.
    pub ipv6_ext: Vec<Ipv6Ext>,
    /// Identification of the next IPv4 packet, incremented per packet. Default
    /// `0x1000 * src MAC suffix + 0x100` (wrapping), so the two directions differ.
    pub next_ip_id: u16,
}

impl IpPath {
    /// A path from `src` to `dst`, untagged, TTL 64, no options.
    ///
    /// # Panics
    /// If the two hosts have addresses of different families.
    pub fn new(src: Host, dst: Host) -> Self {
        assert!(
            src.ip.is_ipv4() == dst.ip.is_ipv4(),
            "IpPath between different address families: {} -> {}",
            src.ip,
            dst.ip
        );
        Self {
            src,
            dst,
            vlan: VlanTags::None,
            ttl: 64,
            dont_fragment: false,
            ipv4_options: Vec::new(),
            ipv6_ext: Vec::new(),
            next_ip_id: u16::from(src.mac[5]).wrapping_mul(0x1000).wrapping_add(0x0100),
        }
    }

    /// The reverse direction: hosts swapped, same VLAN tags, TTL and DF bit, no IP
    /// options or extension headers, its own identification counter.
    pub fn reversed(&self) -> Self {
        let mut r = Self::new(self.dst, self.src);
        r.vlan = self.vlan;
        r.ttl = self.ttl;
        r.dont_fragment = self.dont_fragment;
        r
    }

    /// Sets the VLAN tags.
    pub fn with_vlan(mut self, vlan: VlanTags) -> Self {
        self.vlan = vlan;
        self
    }

    /// Sets the TTL / hop limit.
    pub fn with_ttl(mut self, ttl: u8) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the IPv4 DF bit.
    pub fn with_dont_fragment(mut self, df: bool) -> Self {
        self.dont_fragment = df;
        self
    }

    /// Sets the raw IPv4 options.
    pub fn with_ipv4_options(mut self, options: Vec<u8>) -> Self {
        self.ipv4_options = options;
        self
    }

    /// Sets the IPv6 extension-header chain.
    pub fn with_ipv6_ext(mut self, ext: Vec<Ipv6Ext>) -> Self {
        self.ipv6_ext = ext;
        self
    }

    /// True if the path carries IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.src.ip.is_ipv6()
    }

    /// Builds an IP packet carrying `payload` of the given protocol (IPv4) or
    /// upper-layer next header (IPv6). Consumes one IPv4 identification.
    pub fn ip_packet(&mut self, protocol: u8, payload: &[u8]) -> Vec<u8> {
        match (self.src.ip, self.dst.ip) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let id = self.next_ip_id;
                self.next_ip_id = id.wrapping_add(1);
                let fields = Ipv4Fields {
                    src,
                    dst,
                    protocol,
                    tos: 0,
                    id,
                    ttl: self.ttl,
                    dont_fragment: self.dont_fragment,
                    more_fragments: false,
                    frag_offset: 0,
                    options: &self.ipv4_options,
                };
                emit_ipv4(&fields, payload)
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                emit_ipv6(src, dst, self.ttl, &self.ipv6_ext, protocol, payload)
            }
            (s, d) => panic!("IpPath between different address families: {s} -> {d}"),
        }
    }

    /// An Ethernet frame carrying an IP packet with a raw `payload` of `protocol`
    /// (for protocols without a builder, such as IGMP or GRE, or crafted headers).
    pub fn ip_frame(&mut self, protocol: u8, payload: &[u8]) -> Vec<u8> {
        let p = self.ip_packet(protocol, payload);
        self.frame(&p)
    }

    /// Wraps an IP packet (built on this path, or crafted) into an Ethernet frame
    /// from `src.mac` to `dst.mac` with this path's VLAN tags. The EtherType follows
    /// the path's address family.
    pub fn frame(&self, ip_packet: &[u8]) -> Vec<u8> {
        let ether_type = if self.is_ipv6() { ETHERTYPE_IPV6 } else { ETHERTYPE_IPV4 };
        ethernet_frame(self.dst.mac, self.src.mac, self.vlan, ether_type, ip_packet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn ipv4_with_options_has_larger_ihl() {
        let mut p = IpPath::new(Host::v4(1, [10, 0, 0, 1]), Host::v4(2, [10, 0, 0, 2]))
            .with_ipv4_options(ipv4_option::record_route(2));
        let pkt = p.ip_packet(ip_number::UDP, &[1, 2, 3]);
        // 11 bytes of Record Route padded to 12.
        assert_eq!(pkt[0], 0x48);
        assert_eq!(pkt.len(), 32 + 3);
        assert_eq!(internet_checksum(&pkt[..32]), 0);
        assert_eq!(p.next_ip_id, 0x1101);
    }

    #[test]
    fn ipv6_chain_links_next_headers() {
        let a = Host::v6(1, Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
        let b = Host::v6(2, Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
        let mut p = IpPath::new(a, b).with_ipv6_ext(vec![
            Ipv6Ext::HopByHop(vec![]),
            Ipv6Ext::DestinationOptions(vec![]),
            Ipv6Ext::routing_type0(),
        ]);
        let pkt = p.ip_packet(ip_number::TCP, &[0; 20]);
        assert_eq!(pkt[6], 0);
        assert_eq!(&pkt[40..48], &[60, 0, 1, 4, 0, 0, 0, 0]);
        assert_eq!(&pkt[48..56], &[43, 0, 1, 4, 0, 0, 0, 0]);
        assert_eq!(&pkt[56..64], &[6, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(u16::from_be_bytes([pkt[4], pkt[5]]), 24 + 20);
    }
}
