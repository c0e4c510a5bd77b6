//! IP fragmentation: IPv4 (RFC 791 §3.2) and IPv6 with a Fragment header
//! (RFC 8200 §4.5).
//!
//! Input is always a complete IP packet built by this crate (for example with
//! [`crate::IpPath::udp_packet`]); output is IP packets, to be framed with
//! [`crate::IpPath::frame`] and pushed in any order. [`fragment_ipv4`] and
//! [`fragment_ipv6`] cut a packet at given offsets; [`ipv4_fragment`] and
//! [`ipv6_fragment`] build one fragment with an explicit offset and explicit data,
//! which is how overlapping or otherwise inconsistent fragments are crafted.
//!
//! Offsets are byte offsets into the *fragmentable part*: for IPv4 the IP payload,
//! for IPv6 everything after the Hop-by-Hop / Routing headers (see
//! [`fragmentable_part`]). They must be multiples of 8.

use std::net::Ipv4Addr;

use crate::ip::{emit_ipv4, ip_number, Ipv4Fields};

/// Length of the IPv4 header of `packet` (IHL × 4).
fn ipv4_header_len(packet: &[u8]) -> usize {
    usize::from(packet[0] & 0x0f) * 4
}

/// Offset of the end of the IPv6 unfragmentable part of `packet`, and the index
/// of the next-header byte that names the first fragmentable header.
///
/// The unfragmentable part is the IPv6 header plus any Hop-by-Hop, Routing and
/// Destination Options headers up to the last Hop-by-Hop or Routing header.
fn ipv6_unfragmentable(packet: &[u8]) -> (usize, usize) {
    let (mut end, mut nh_at) = (40, 6);
    let (mut pos, mut nh_pos) = (40, 6);
    loop {
        let nh = packet[nh_pos];
        if !matches!(
            nh,
            ip_number::HOP_BY_HOP | ip_number::ROUTING | ip_number::DESTINATION_OPTIONS
        ) || pos + 2 > packet.len()
        {
            break;
        }
        let len = (usize::from(packet[pos + 1]) + 1) * 8;
        if nh != ip_number::DESTINATION_OPTIONS {
            end = pos + len;
            nh_at = pos;
        }
        nh_pos = pos;
        pos += len;
    }
    (end, nh_at)
}

/// The part of an IPv4 or IPv6 packet that fragmentation splits: the IPv4 payload
/// (up to the total length), or the IPv6 payload after the unfragmentable headers.
///
/// # Panics
/// If `packet` is not a well-formed IPv4 or IPv6 packet.
pub fn fragmentable_part(packet: &[u8]) -> &[u8] {
    match packet.first().map(|b| b >> 4) {
        Some(4) => {
            let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
            &packet[ipv4_header_len(packet)..total.min(packet.len())]
        }
        Some(6) => &packet[ipv6_unfragmentable(packet).0..],
        _ => panic!("not an IP packet"),
    }
}

/// Cut points: `offsets` without a leading 0, checked to be increasing multiples
/// of 8 inside `len`.
fn cuts(offsets: &[usize], len: usize) -> Vec<usize> {
    let mut out: Vec<usize> = offsets.iter().copied().filter(|&o| o != 0).collect();
    for (i, &o) in out.iter().enumerate() {
        assert!(o.is_multiple_of(8), "fragment offset {o} is not a multiple of 8");
        assert!(o < len, "fragment offset {o} is not inside the {len}-byte payload");
        assert!(i == 0 || out[i - 1] < o, "fragment offsets must increase");
    }
    out.insert(0, 0);
    out.push(len);
    out
}

/// The options of an IPv4 header that fragments after the first one keep: those
/// with the "copied" bit set (RFC 791 §3.1).
fn copied_options(options: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&kind) = options.get(i) {
        match kind {
            0 => break,
            1 => i += 1,
            _ => {
                let len = usize::from(options.get(i + 1).copied().unwrap_or(2)).max(2);
                if kind & 0x80 != 0 {
                    out.extend_from_slice(&options[i..(i + len).min(options.len())]);
                }
                i += len;
            }
        }
    }
    out
}

/// Builds one IPv4 fragment of `packet` holding `data` at byte `offset` of the
/// fragmentable part, with the MF flag set to `more_fragments`.
///
/// Identification, addresses, protocol, TOS and TTL are copied from `packet`; the
/// DF bit is cleared; the options are all kept in the fragment at offset 0 and only
/// the "copied" ones elsewhere. `data` need not match `packet`'s payload: that is
/// how overlapping fragments with different bytes are made.
///
/// # Panics
/// If `packet` is not IPv4 or `offset` is not a multiple of 8.
pub fn ipv4_fragment(packet: &[u8], offset: usize, data: &[u8], more_fragments: bool) -> Vec<u8> {
    assert!(packet.len() >= 20 && packet[0] >> 4 == 4, "not an IPv4 packet");
    let hlen = ipv4_header_len(packet).clamp(20, packet.len());
    let all_options = &packet[20..hlen];
    let options = if offset == 0 { all_options.to_vec() } else { copied_options(all_options) };
    let fields = Ipv4Fields {
        src: Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]),
        dst: Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]),
        protocol: packet[9],
        tos: packet[1],
        id: u16::from_be_bytes([packet[4], packet[5]]),
        ttl: packet[8],
        dont_fragment: false,
        more_fragments,
        frag_offset: offset,
        options: &options,
    };
    emit_ipv4(&fields, data)
}

/// Splits the IPv4 `packet` into fragments starting at `offsets` (bytes into the
/// IP payload; a leading 0 is optional). Returns the fragments in offset order.
///
/// Example: a 3008-byte UDP payload+header cut at `[0, 1480, 2960]` gives
/// fragments of 1480, 1480 and 48 bytes of data.
///
/// # Panics
/// If an offset is not a multiple of 8, not increasing or not inside the payload.
pub fn fragment_ipv4(packet: &[u8], offsets: &[usize]) -> Vec<Vec<u8>> {
    let payload = fragmentable_part(packet);
    let cuts = cuts(offsets, payload.len());
    cuts.windows(2)
        .map(|w| ipv4_fragment(packet, w[0], &payload[w[0]..w[1]], w[1] != payload.len()))
        .collect()
}

/// Builds one IPv6 fragment of `packet`: its unfragmentable part, a Fragment
/// header (identification, `offset`, M = `more_fragments`) and `data`.
///
/// # Panics
/// If `packet` is not IPv6 or `offset` is not a multiple of 8.
pub fn ipv6_fragment(
    packet: &[u8],
    identification: u32,
    offset: usize,
    data: &[u8],
    more_fragments: bool,
) -> Vec<u8> {
    assert!(packet.len() >= 40 && packet[0] >> 4 == 6, "not an IPv6 packet");
    assert!(offset.is_multiple_of(8), "IPv6 fragment offset {offset} is not a multiple of 8");
    let (end, nh_at) = ipv6_unfragmentable(packet);
    let mut p = packet[..end].to_vec();
    let first_fragmentable = p[nh_at];
    p[nh_at] = ip_number::FRAGMENT;
    let units = u16::try_from(offset / 8).unwrap_or(u16::MAX) & 0x1fff;
    let field = (units << 3) | u16::from(more_fragments);
    p.extend_from_slice(&[first_fragmentable, 0]);
    p.extend_from_slice(&field.to_be_bytes());
    p.extend_from_slice(&identification.to_be_bytes());
    p.extend_from_slice(data);
    let plen = u16::try_from(p.len() - 40).unwrap_or(u16::MAX);
    p[4..6].copy_from_slice(&plen.to_be_bytes());
    p
}

/// Splits the IPv6 `packet` into fragments starting at `offsets` (bytes into the
/// fragmentable part; a leading 0 is optional), all with `identification`.
/// With `offsets` empty or `[0]` it gives one "atomic fragment" (offset 0, M = 0).
///
/// # Panics
/// As [`fragment_ipv4`].
pub fn fragment_ipv6(packet: &[u8], identification: u32, offsets: &[usize]) -> Vec<Vec<u8>> {
    let part = fragmentable_part(packet);
    let cuts = cuts(offsets, part.len());
    cuts.windows(2)
        .map(|w| ipv6_fragment(packet, identification, w[0], &part[w[0]..w[1]], w[1] != part.len()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::internet_checksum;
    use crate::ip::{ipv4_option, IpPath, Ipv6Ext};
    use crate::link::Host;
    use std::net::Ipv6Addr;

    fn v4_path() -> IpPath {
        IpPath::new(Host::v4(1, [10, 0, 0, 1]), Host::v4(2, [10, 0, 0, 2]))
    }

    #[test]
    fn ipv4_split_offsets_and_flags() {
        let mut path = v4_path();
        let pkt = path.ip_packet(ip_number::UDP, &[7u8; 3008]);
        let frags = fragment_ipv4(&pkt, &[0, 1480, 2960]);
        assert_eq!(frags.len(), 3);
        let info: Vec<(u16, usize)> =
            frags.iter().map(|f| (u16::from_be_bytes([f[6], f[7]]), f.len() - 20)).collect();
        assert_eq!(info, vec![(0x2000, 1480), (0x2000 | 185, 1480), (370, 48)]);
        for f in &frags {
            assert_eq!(internet_checksum(&f[..20]), 0);
            assert_eq!(&f[4..6], &pkt[4..6]);
        }
    }

    #[test]
    fn ipv4_uncopied_options_only_in_first_fragment() {
        let mut opts = ipv4_option::record_route(1);
        opts.extend_from_slice(&ipv4_option::router_alert());
        let mut path = v4_path().with_ipv4_options(opts);
        let pkt = path.ip_packet(ip_number::UDP, &[0u8; 64]);
        let frags = fragment_ipv4(&pkt, &[32]);
        assert_eq!(frags[0][0], 0x48);
        assert_eq!(frags[1][0], 0x46);
        assert_eq!(&frags[1][20..24], &ipv4_option::router_alert());
    }

    #[test]
    fn ipv6_fragment_header_after_hop_by_hop() {
        let a = Host::v6(1, Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
        let b = Host::v6(2, Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
        let mut path = IpPath::new(a, b)
            .with_ipv6_ext(vec![Ipv6Ext::HopByHop(vec![]), Ipv6Ext::DestinationOptions(vec![])]);
        let pkt = path.ip_packet(ip_number::UDP, &[1u8; 100]);
        // Destination options before the upper layer are fragmentable.
        assert_eq!(fragmentable_part(&pkt).len(), 108);
        let frags = fragment_ipv6(&pkt, 0xabcd, &[56]);
        assert_eq!(frags.len(), 2);
        assert_eq!(frags[0][6], 0);
        assert_eq!(frags[0][40], ip_number::FRAGMENT);
        assert_eq!(&frags[0][48..56], &[60, 0, 0, 1, 0, 0, 0xab, 0xcd]);
        assert_eq!(&frags[1][48..52], &[60, 0, 0, 56]);
        assert_eq!(frags[1].len(), 56 + 52);
        assert_eq!(u16::from_be_bytes([frags[1][4], frags[1][5]]), 16 + 52);
    }
}
