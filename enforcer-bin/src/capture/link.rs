//! Link-layer normalisation: every supported capture link type becomes an Ethernet II frame.
//!
//! The engine takes Ethernet II frames only, so frames of other link types get a synthesised
//! 14-byte Ethernet header in front of their network-layer payload:
//!
//! | link type (number) | header | ethertype from |
//! |---|---|---|
//! | Ethernet (1) | copied as is | the frame |
//! | Linux cooked SLL (113) | 16 bytes | its protocol field; source MAC = its address if 6 bytes long |
//! | Linux cooked SLL2 (276) | 20 bytes | its protocol field; source MAC as for SLL |
//! | raw IP (101; DLT_RAW 12 and 14) | none | the IP version nibble |
//! | IPv4 (228), IPv6 (229) | none | the link type |
//! | BSD null (0) | 4-byte family, host byte order (either accepted) | family: 2 IPv4; 10, 24, 28, 30 IPv6 |
//! | BSD loop (108) | 4-byte family, network byte order | as for null |
//! | PPP (9), PPP in HDLC framing (50) | optional `ff 03` address/control, 2-byte (or compressed 1-byte) protocol | 0x0021 IPv4, 0x0057 IPv6 |
//! | Cisco HDLC seen in link type 50 | `0f`/`8f`, `00`, 2-byte ethertype | the ethertype |
//!
//! The destination MAC of a synthesised header is all zeros. On SLL and SLL2 any protocol
//! value that is an ethertype (at least 0x0600: IP, ARP, VLAN, ...) is passed on, so the
//! engine counts non-IP frames as it does on Ethernet; smaller values (802.2 LLC, CAN,
//! netlink families) are not Ethernet payloads and are skipped. On the other links only
//! IPv4 and IPv6 are passed on. Frames too short for their link header are skipped.
//!
//! Invariant: [`to_ethernet`] never allocates once `out` has the capacity of the largest
//! frame, and never panics (every header read is bounds-checked).

/// Link type numbers (tcpdump.org `LINKTYPE_*` values, plus the two `DLT_RAW` values some
/// writers store instead of 101).
pub mod linktype {
    /// BSD loopback: 4-byte address family in the writer's byte order.
    pub const NULL: u32 = 0;
    /// Ethernet II / 802.3.
    pub const ETHERNET: u32 = 1;
    /// PPP (RFC 1661), optionally with HDLC address/control bytes.
    pub const PPP: u32 = 9;
    /// `DLT_RAW` on most systems (raw IP).
    pub const DLT_RAW_12: u32 = 12;
    /// `DLT_RAW` on OpenBSD (raw IP).
    pub const DLT_RAW_14: u32 = 14;
    /// PPP in HDLC-like framing (RFC 1662), also used for Cisco HDLC.
    pub const PPP_HDLC: u32 = 50;
    /// Raw IPv4 or IPv6, version from the first nibble.
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u32 = 276;
}

/// Short lowercase name of a link type, if it is one of the common ones.
pub fn linktype_name(lt: u32) -> Option<&'static str> {
    Some(match lt {
        linktype::NULL => "null",
        linktype::ETHERNET => "ethernet",
        linktype::PPP => "ppp",
        linktype::DLT_RAW_12 | linktype::DLT_RAW_14 | linktype::RAW => "raw",
        linktype::PPP_HDLC => "ppp_hdlc",
        linktype::LOOP => "loop",
        linktype::LINUX_SLL => "linux_sll",
        linktype::IPV4 => "ipv4",
        linktype::IPV6 => "ipv6",
        linktype::LINUX_SLL2 => "linux_sll2",
        105 => "ieee802_11",
        127 => "ieee802_11_radiotap",
        _ => return None,
    })
}

/// Why a frame was not turned into an Ethernet frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Skip {
    /// The link type is not supported.
    UnsupportedLinkType,
    /// The link header names a protocol that is not IP (nor, on SLL, any ethertype).
    NotIp,
    /// The frame is shorter than its link header.
    Truncated,
}

/// Ethertype of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// Ethertype of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// Smallest value that is an ethertype rather than an 802.3 length.
const MIN_ETHERTYPE: u16 = 0x0600;

/// Write `data`, captured on link type `lt`, into `out` as an Ethernet II frame (`out` is
/// cleared first). On `Err`, `out` is left empty.
pub fn to_ethernet(lt: u32, data: &[u8], out: &mut Vec<u8>) -> Result<(), Skip> {
    out.clear();
    match lt {
        linktype::ETHERNET => {
            out.extend_from_slice(data);
            Ok(())
        }
        linktype::LINUX_SLL => {
            // type(2) hatype(2) addr_len(2) addr(8) protocol(2)
            let hdr = data.get(..16).ok_or(Skip::Truncated)?;
            let proto = be16(hdr[14], hdr[15]);
            let addr_len = be16(hdr[4], hdr[5]);
            sll_frame(proto, addr_len == 6, &hdr[6..12], &data[16..], out)
        }
        linktype::LINUX_SLL2 => {
            // protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) addr_len(1) addr(8)
            let hdr = data.get(..20).ok_or(Skip::Truncated)?;
            let proto = be16(hdr[0], hdr[1]);
            sll_frame(proto, hdr[11] == 6, &hdr[12..18], &data[20..], out)
        }
        linktype::RAW | linktype::DLT_RAW_12 | linktype::DLT_RAW_14 => {
            let first = *data.first().ok_or(Skip::Truncated)?;
            let ty = match first >> 4 {
                4 => ETHERTYPE_IPV4,
                6 => ETHERTYPE_IPV6,
                _ => return Err(Skip::NotIp),
            };
            synthesise(ty, None, data, out);
            Ok(())
        }
        linktype::IPV4 => {
            synthesise(ETHERTYPE_IPV4, None, data, out);
            Ok(())
        }
        linktype::IPV6 => {
            synthesise(ETHERTYPE_IPV6, None, data, out);
            Ok(())
        }
        linktype::NULL => {
            let fam = data.get(..4).ok_or(Skip::Truncated)?;
            let le = u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]]);
            // Families are small numbers: a value that does not fit 16 bits was written
            // big-endian.
            let fam = if le > 0xffff { le.swap_bytes() } else { le };
            let ty = family_ethertype(fam).ok_or(Skip::NotIp)?;
            synthesise(ty, None, &data[4..], out);
            Ok(())
        }
        linktype::LOOP => {
            let fam = data.get(..4).ok_or(Skip::Truncated)?;
            let fam = u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]]);
            let ty = family_ethertype(fam).ok_or(Skip::NotIp)?;
            synthesise(ty, None, &data[4..], out);
            Ok(())
        }
        linktype::PPP | linktype::PPP_HDLC => ppp_frame(data, out),
        _ => Err(Skip::UnsupportedLinkType),
    }
}

fn be16(a: u8, b: u8) -> u16 {
    u16::from_be_bytes([a, b])
}

fn sll_frame(
    proto: u16,
    mac_is_addr: bool,
    addr: &[u8],
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Skip> {
    if proto < MIN_ETHERTYPE {
        return Err(Skip::NotIp);
    }
    let src = if mac_is_addr { addr.get(..6) } else { None };
    synthesise(proto, src, payload, out);
    Ok(())
}

/// Ethertype for a BSD/Linux address family.
fn family_ethertype(fam: u32) -> Option<u16> {
    match fam {
        2 => Some(ETHERTYPE_IPV4),
        // Linux, NetBSD/OpenBSD, FreeBSD, macOS values of AF_INET6.
        10 | 24 | 28 | 30 => Some(ETHERTYPE_IPV6),
        _ => None,
    }
}

fn ppp_frame(data: &[u8], out: &mut Vec<u8>) -> Result<(), Skip> {
    let mut rest = data;
    match rest {
        // Cisco HDLC: address (unicast or broadcast), control 0, ethertype.
        [0x0f | 0x8f, 0x00, hi, lo, payload @ ..] => {
            let ty = be16(*hi, *lo);
            if ty != ETHERTYPE_IPV4 && ty != ETHERTYPE_IPV6 {
                return Err(Skip::NotIp);
            }
            synthesise(ty, None, payload, out);
            return Ok(());
        }
        [0xff, 0x03, tail @ ..] => rest = tail,
        _ => {}
    }
    // Protocol field: 2 bytes, or 1 byte when compressed (an odd first byte, RFC 1661 §6.5).
    let (proto, payload) = match rest {
        [b, payload @ ..] if b & 1 == 1 => (u16::from(*b), payload),
        [hi, lo, payload @ ..] => (be16(*hi, *lo), payload),
        _ => return Err(Skip::Truncated),
    };
    let ty = match proto {
        0x0021 => ETHERTYPE_IPV4,
        0x0057 => ETHERTYPE_IPV6,
        _ => return Err(Skip::NotIp),
    };
    synthesise(ty, None, payload, out);
    Ok(())
}

fn synthesise(ethertype: u16, src_mac: Option<&[u8]>, payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&[0; 6]);
    match src_mac {
        Some(mac) => out.extend_from_slice(mac),
        None => out.extend_from_slice(&[0; 6]),
    }
    out.extend_from_slice(&ethertype.to_be_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const V4: [u8; 4] = [0x45, 0, 0, 20];
    const V6: [u8; 4] = [0x60, 0, 0, 0];

    fn eth(ty: u16, src: [u8; 6], payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0; 6];
        v.extend_from_slice(&src);
        v.extend_from_slice(&ty.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn conv(lt: u32, data: &[u8]) -> Result<Vec<u8>, Skip> {
        let mut out = Vec::new();
        to_ethernet(lt, data, &mut out).map(|()| out)
    }

    #[test]
    fn ethernet_is_copied() {
        let f = eth(0x0806, [1; 6], &[9; 28]);
        assert_eq!(conv(linktype::ETHERNET, &f), Ok(f.clone()));
        // Even runt frames: the engine counts them.
        assert_eq!(conv(linktype::ETHERNET, &[1, 2, 3]), Ok(vec![1, 2, 3]));
    }

    #[test]
    fn raw_uses_version_nibble() {
        assert_eq!(conv(linktype::RAW, &V4), Ok(eth(ETHERTYPE_IPV4, [0; 6], &V4)));
        assert_eq!(conv(linktype::DLT_RAW_12, &V6), Ok(eth(ETHERTYPE_IPV6, [0; 6], &V6)));
        assert_eq!(conv(linktype::DLT_RAW_14, &V6), Ok(eth(ETHERTYPE_IPV6, [0; 6], &V6)));
        assert_eq!(conv(linktype::RAW, &[0x50, 0]), Err(Skip::NotIp));
        assert_eq!(conv(linktype::RAW, &[]), Err(Skip::Truncated));
        // 228/229 trust the link type.
        assert_eq!(conv(linktype::IPV4, &V4), Ok(eth(ETHERTYPE_IPV4, [0; 6], &V4)));
        assert_eq!(conv(linktype::IPV6, &V6), Ok(eth(ETHERTYPE_IPV6, [0; 6], &V6)));
    }

    #[test]
    fn null_accepts_both_byte_orders() {
        let mut le = 2u32.to_le_bytes().to_vec();
        le.extend_from_slice(&V4);
        assert_eq!(conv(linktype::NULL, &le), Ok(eth(ETHERTYPE_IPV4, [0; 6], &V4)));
        for fam in [10u32, 24, 28, 30] {
            let mut be = fam.to_be_bytes().to_vec();
            be.extend_from_slice(&V6);
            assert_eq!(conv(linktype::NULL, &be), Ok(eth(ETHERTYPE_IPV6, [0; 6], &V6)));
        }
        let mut other = 7u32.to_le_bytes().to_vec();
        other.extend_from_slice(&V4);
        assert_eq!(conv(linktype::NULL, &other), Err(Skip::NotIp));
        assert_eq!(conv(linktype::NULL, &[2, 0]), Err(Skip::Truncated));
    }

    #[test]
    fn loop_is_network_order() {
        let mut be = 2u32.to_be_bytes().to_vec();
        be.extend_from_slice(&V4);
        assert_eq!(conv(linktype::LOOP, &be), Ok(eth(ETHERTYPE_IPV4, [0; 6], &V4)));
        let mut le = 2u32.to_le_bytes().to_vec();
        le.extend_from_slice(&V4);
        assert_eq!(conv(linktype::LOOP, &le), Err(Skip::NotIp));
    }

    #[test]
    fn sll_and_sll2() {
        let mac = [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];
        let mut sll = vec![0, 4, 0, 1, 0, 6];
        sll.extend_from_slice(&mac);
        sll.extend_from_slice(&[0, 0, 0x08, 0x00]);
        sll.extend_from_slice(&V4);
        assert_eq!(conv(linktype::LINUX_SLL, &sll), Ok(eth(ETHERTYPE_IPV4, mac, &V4)));
        // Address that is not 6 bytes long: zero source MAC.
        sll[5] = 4;
        assert_eq!(conv(linktype::LINUX_SLL, &sll), Ok(eth(ETHERTYPE_IPV4, [0; 6], &V4)));
        // 802.2 LLC (protocol 4) is not an ethertype.
        sll[14..16].copy_from_slice(&[0, 4]);
        assert_eq!(conv(linktype::LINUX_SLL, &sll), Err(Skip::NotIp));
        assert_eq!(conv(linktype::LINUX_SLL, &sll[..15]), Err(Skip::Truncated));

        let mut sll2 = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6];
        sll2.extend_from_slice(&mac);
        sll2.extend_from_slice(&[0, 0]);
        sll2.extend_from_slice(&V6);
        assert_eq!(conv(linktype::LINUX_SLL2, &sll2), Ok(eth(ETHERTYPE_IPV6, mac, &V6)));
        assert_eq!(conv(linktype::LINUX_SLL2, &sll2[..19]), Err(Skip::Truncated));
    }

    #[test]
    fn ppp_variants() {
        let mut hdlc = vec![0xff, 0x03, 0x00, 0x21];
        hdlc.extend_from_slice(&V4);
        assert_eq!(conv(linktype::PPP, &hdlc), Ok(eth(ETHERTYPE_IPV4, [0; 6], &V4)));
        assert_eq!(conv(linktype::PPP_HDLC, &hdlc), Ok(eth(ETHERTYPE_IPV4, [0; 6], &V4)));
        let mut bare = vec![0x00, 0x57];
        bare.extend_from_slice(&V6);
        assert_eq!(conv(linktype::PPP, &bare), Ok(eth(ETHERTYPE_IPV6, [0; 6], &V6)));
        let mut compressed = vec![0x21];
        compressed.extend_from_slice(&V4);
        assert_eq!(conv(linktype::PPP, &compressed), Ok(eth(ETHERTYPE_IPV4, [0; 6], &V4)));
        // LCP.
        assert_eq!(conv(linktype::PPP, &[0xff, 0x03, 0xc0, 0x21, 1, 2]), Err(Skip::NotIp));
        assert_eq!(conv(linktype::PPP, &[0xff, 0x03, 0x00]), Err(Skip::Truncated));
        let mut cisco = vec![0x0f, 0x00, 0x08, 0x00];
        cisco.extend_from_slice(&V4);
        assert_eq!(conv(linktype::PPP_HDLC, &cisco), Ok(eth(ETHERTYPE_IPV4, [0; 6], &V4)));
    }

    #[test]
    fn unsupported_link_type() {
        assert_eq!(conv(105, &[0; 40]), Err(Skip::UnsupportedLinkType));
    }

    #[test]
    fn buffer_is_reused() {
        let mut out = Vec::with_capacity(64);
        let ptr = out.as_ptr();
        for _ in 0..3 {
            to_ethernet(linktype::RAW, &V4, &mut out).unwrap();
            assert_eq!(out.len(), 18);
        }
        assert_eq!(out.as_ptr(), ptr);
        assert_eq!(to_ethernet(linktype::RAW, &[0x10], &mut out), Err(Skip::NotIp));
        assert!(out.is_empty());
    }
}
