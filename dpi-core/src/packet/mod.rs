//! Stage 1: decode a frame into offsets.
//!
//! [`decode`] walks Ethernet II, up to two VLAN tags (802.1Q `0x8100`, 802.1ad `0x88a8`,
//! and the legacy `0x9100`), a PPPoE session header, IPv4 (options skipped) or IPv6 (extension headers walked),
//! then TCP, UDP, ICMP/ICMPv6 or any other protocol, and returns a [`Decoded`] made of
//! offsets and a few copied scalars. Nothing borrows the frame, so the caller may rewrite
//! it afterwards (MAC rewrites, TCP resets built from it).
//!
//! Invariants: every offset in a [`Decoded`] is within the frame it came from;
//! `payload_off + payload_len <= frame.len()`. Malformed input returns a
//! [`DropReason`] and never panics (fuzzed).
//!
//! Length rules: the IP packet is trimmed to its declared length (Ethernet padding
//! ignored). If the declared length is larger than the captured bytes (a capture's snap
//! length), the packet is decoded from what is there and marked `truncated`.

pub mod checksum;
mod ether;
mod icmp;
mod ipv4;
mod ipv6;
mod tcp;
mod udp;

pub use icmp::IcmpHdr;
pub use tcp::{TcpFlags, TcpHdr, TcpOpts};
pub use udp::UdpHdr;

use crate::action::DropReason;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol numbers the engine names.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

/// Ethertypes.
pub(crate) mod ethertype {
    pub(crate) const IPV4: u16 = 0x0800;
    pub(crate) const IPV6: u16 = 0x86dd;
    pub(crate) const VLAN: u16 = 0x8100;
    pub(crate) const QINQ: u16 = 0x88a8;
    pub(crate) const QINQ_OLD: u16 = 0x9100;
    pub(crate) const PPPOE_SESSION: u16 = 0x8864;
}

/// An IP address as 128 bits; IPv4 is mapped into `::ffff:0:0/96` so both families share
/// one key type. Whether it is IPv6 is carried separately.
pub type Addr = u128;

/// Map an IPv4 address into an [`Addr`].
pub const fn addr_from_v4(b: [u8; 4]) -> Addr {
    0xffff_0000_0000 | u32::from_be_bytes(b) as u128
}

/// Turn an [`Addr`] back into an [`IpAddr`].
pub fn addr_to_ip(a: Addr, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        IpAddr::V4(Ipv4Addr::from(a as u32))
    }
}

/// Fragment information of an IP packet that is part of a fragmented datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragInfo {
    /// Identification (16 bits for IPv4, 32 for IPv6).
    pub id: u32,
    /// Offset of this fragment's data within the datagram's payload, in bytes.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
    /// Frame offset of this fragment's data.
    pub data_off: usize,
    /// Length of this fragment's data.
    pub data_len: usize,
    /// Protocol of the reassembled payload (IPv6: the Fragment header's next header).
    pub next_proto: u8,
    /// IPv6 only: frame offset of the Fragment header (the unfragmentable part ends here).
    pub v6_frag_hdr_off: usize,
    /// IPv6 only: frame offset of the next-header byte that names the Fragment header.
    pub v6_nh_field_off: usize,
}

/// The IP layer of a decoded packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpInfo {
    /// IPv6 rather than IPv4.
    pub v6: bool,
    /// Source address.
    pub src: Addr,
    /// Destination address.
    pub dst: Addr,
    /// Upper-layer protocol (after IPv6 extension headers).
    pub proto: u8,
    /// Bytes of the IP packet as declared by its header (may exceed what was captured).
    pub wire_len: usize,
    /// The capture cut the packet short of `wire_len`.
    pub truncated: bool,
    /// IPv6 only: an atomic fragment header (offset 0, no more fragments) was walked.
    pub atomic_frag: bool,
    /// Set when this packet is a fragment of a larger datagram (L4 is not decoded then).
    pub frag: Option<FragInfo>,
}

/// The transport layer of a decoded packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum L4 {
    /// TCP.
    Tcp(TcpHdr),
    /// UDP.
    Udp(UdpHdr),
    /// ICMP or ICMPv6.
    Icmp(IcmpHdr),
    /// Any other protocol; its bytes are the payload.
    #[default]
    Other,
    /// Not decoded: the packet is a fragment.
    Fragment,
}

/// A decoded IP frame: offsets into the frame plus copied header fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// VLAN ids, outermost first; `vlan_count` of them are valid.
    pub vlan: [u16; 2],
    /// Number of VLAN tags (0–2).
    pub vlan_count: u8,
    /// Observation zone (set by the engine from tagged MACs; 0 otherwise).
    pub zone: u16,
    /// Frame offset of the IP header.
    pub l3_off: usize,
    /// IP layer.
    pub ip: IpInfo,
    /// Frame offset of the transport header.
    pub l4_off: usize,
    /// Transport layer.
    pub l4: L4,
    /// Frame offset of the transport payload.
    pub payload_off: usize,
    /// Captured payload bytes.
    pub payload_len: usize,
    /// Payload bytes as declared by the headers (more than `payload_len` if truncated).
    pub payload_wire_len: usize,
}

impl Decoded {
    /// The VLAN ids present, outermost first.
    pub fn vlans(&self) -> &[u16] {
        &self.vlan[..usize::from(self.vlan_count)]
    }
}

/// What a frame turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Not IP (ARP, LLDP, ...): forwarded without inspection.
    NonIp {
        /// The innermost ethertype.
        ethertype: u16,
    },
    /// An IPv4 or IPv6 packet.
    Ip(Decoded),
}

/// Decode one Ethernet II frame.
pub fn decode(frame: &[u8], verify_checksums: bool) -> Result<Frame, DropReason> {
    let mut d = Decoded::default();
    match decode_into(frame, &mut d, verify_checksums)? {
        Some(ethertype) => Ok(Frame::NonIp { ethertype }),
        None => Ok(Frame::Ip(d)),
    }
}

/// Decode one Ethernet II frame into `d` (the engine's hot path: no 192-byte copies).
/// Returns `Some(ethertype)` for a non-IP frame (then `d` holds only the L2 fields).
pub fn decode_into(
    frame: &[u8],
    d: &mut Decoded,
    verify_checksums: bool,
) -> Result<Option<u16>, DropReason> {
    let l2 = ether::parse(frame)?;
    d.vlan = l2.vlan;
    d.vlan_count = l2.vlan_count;
    d.l3_off = l2.l3_off;
    match l2.ethertype {
        ethertype::IPV4 => ipv4::parse(frame, d, verify_checksums)?,
        ethertype::IPV6 => ipv6::parse(frame, d)?,
        other => return Ok(Some(other)),
    }
    if d.ip.frag.is_some() {
        d.l4 = L4::Fragment;
        return Ok(None);
    }
    decode_l4(frame, d, verify_checksums)?;
    Ok(None)
}

/// Decode the transport layer at `d.l4_off`; `d.ip` must be filled in. Also used on
/// reassembled datagrams.
pub(crate) fn decode_l4(
    frame: &[u8],
    d: &mut Decoded,
    verify_checksums: bool,
) -> Result<(), DropReason> {
    // Bytes of the transport segment: declared, and actually present.
    let l3_end_wire = d.l3_off + d.ip.wire_len;
    let wire = l3_end_wire.saturating_sub(d.l4_off);
    let avail = frame.len().min(l3_end_wire).saturating_sub(d.l4_off);
    let seg = &frame[d.l4_off..d.l4_off + avail];
    match d.ip.proto {
        proto::TCP => {
            let (h, hl) = tcp::parse(seg)?;
            d.l4 = L4::Tcp(h);
            d.payload_off = d.l4_off + hl;
            d.payload_len = avail - hl;
            d.payload_wire_len = wire.saturating_sub(hl);
        }
        proto::UDP => {
            let h = udp::parse(seg, wire)?;
            d.l4 = L4::Udp(h);
            d.payload_off = d.l4_off + udp::HEADER_LEN;
            d.payload_wire_len = usize::from(h.len) - udp::HEADER_LEN;
            d.payload_len = d.payload_wire_len.min(avail - udp::HEADER_LEN);
        }
        proto::ICMP | proto::ICMPV6 => {
            let h = icmp::parse(seg, d.ip.proto == proto::ICMPV6)?;
            d.l4 = L4::Icmp(h);
            d.payload_off = d.l4_off + icmp::HEADER_LEN;
            d.payload_len = avail - icmp::HEADER_LEN;
            d.payload_wire_len = wire - icmp::HEADER_LEN;
        }
        _ => {
            d.l4 = L4::Other;
            d.payload_off = d.l4_off;
            d.payload_len = avail;
            d.payload_wire_len = wire;
        }
    }
    if verify_checksums && !d.ip.truncated && d.l4 != L4::Other {
        verify_l4_checksum(seg, d)?;
    }
    Ok(())
}

fn verify_l4_checksum(seg: &[u8], d: &Decoded) -> Result<(), DropReason> {
    let pseudo = match d.l4 {
        L4::Udp(h) if h.checksum == 0 && !d.ip.v6 => return Ok(()), // optional in IPv4
        L4::Icmp(_) if !d.ip.v6 => 0,
        _ => checksum::pseudo_header(d.ip.v6, d.ip.src, d.ip.dst, d.ip.proto, seg.len() as u32),
    };
    if checksum::finish(checksum::sum(seg, pseudo)) != 0 {
        return Err(DropReason::L4BadChecksum);
    }
    Ok(())
}

#[inline]
pub(crate) fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

#[inline]
pub(crate) fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

#[cfg(test)]
mod tests;
