//! ICMP and ICMPv6 sessions.
//!
//! Pseudo-ports give ICMP a 5-tuple (reference §3.2): for a request or an informational
//! message, source port = identifier and destination port = `code << 8 | type`; for a
//! reply, source port = `code << 8 | request type` and destination port = identifier,
//! so that a reply finds its request's session. Unlike NeuVector, ICMPv6 echo replies
//! (129) map to the request type (128) too, so they match their request.
//!
//! Error messages (destination unreachable, time exceeded, parameter problem, redirect,
//! source quench; ICMPv6 1–4) quote the offending packet. [`quoted_key`] rebuilds that
//! packet's session key so the error can be attributed to the session it is about.

use super::key::FlowKey;
use crate::packet::{addr_from_v4, be16, proto, Addr, Decoded, IcmpHdr};

/// Pseudo source and destination ports of an ICMP message.
pub(crate) fn pseudo_ports(h: &IcmpHdr) -> (u16, u16) {
    match request_of_reply(h) {
        Some(req) => ((u16::from(h.code) << 8) | u16::from(req), h.id),
        None => (h.id, (u16::from(h.code) << 8) | u16::from(h.ty)),
    }
}

fn request_of_reply(h: &IcmpHdr) -> Option<u8> {
    match (h.v6, h.ty) {
        (false, 0) => Some(8),
        (false, 14) => Some(13),
        (false, 16) => Some(15),
        (false, 18) => Some(17),
        (true, 129) => Some(128),
        _ => None,
    }
}

/// Is this ICMPv6 link-layer control, which IPv6 needs as IPv4 needs ARP: MLD (130–132,
/// 143), router and neighbour discovery (133–137), inverse ND (141, 142), multicast
/// router discovery (151–153)? These pass without a session or policy.
pub(crate) fn is_link_control(h: &IcmpHdr) -> bool {
    h.v6 && matches!(h.ty, 130..=137 | 141 | 142 | 143 | 151..=153)
}

/// Is this an error message that quotes another packet?
pub(crate) fn is_error(h: &IcmpHdr) -> bool {
    if h.v6 {
        matches!(h.ty, 1..=4)
    } else {
        matches!(h.ty, 3 | 4 | 5 | 11 | 12)
    }
}

/// Key of the packet quoted by an ICMP error (`quote` = the bytes after the 8-byte ICMP
/// header), with the outer frame's VLANs. `None` if the quote is too short to say.
pub(crate) fn quoted_key(quote: &[u8], outer: &Decoded) -> Option<FlowKey> {
    let (v6, src, dst, mut nh, mut off): (bool, Addr, Addr, u8, usize) = if outer.ip.v6 {
        if quote.len() < 40 || quote[0] >> 4 != 6 {
            return None;
        }
        let s = u128::from_be_bytes(quote.get(8..24)?.try_into().ok()?);
        let d = u128::from_be_bytes(quote.get(24..40)?.try_into().ok()?);
        (true, s, d, quote[6], 40)
    } else {
        if quote.len() < 20 || quote[0] >> 4 != 4 {
            return None;
        }
        let ihl = usize::from(quote[0] & 0xf) * 4;
        if ihl < 20 || be16(quote, 6) & 0x1fff != 0 {
            return None; // bad header, or a non-first fragment quoted: no ports
        }
        let s = addr_from_v4(quote[12..16].try_into().ok()?);
        let d = addr_from_v4(quote[16..20].try_into().ok()?);
        (false, s, d, quote[9], ihl)
    };
    // Walk simple IPv6 extension headers (hop-by-hop, routing, destination options).
    let mut hops = 0;
    while v6 && matches!(nh, 0 | 43 | 60) && hops < 4 {
        let h = quote.get(off..off + 2)?;
        nh = h[0];
        off += (usize::from(h[1]) + 1) * 8;
        hops += 1;
    }
    let l4 = quote.get(off..)?;
    let (sport, dport) = match nh {
        proto::TCP | proto::UDP => (be16(l4.get(..4)?, 0), be16(l4, 2)),
        proto::ICMP | proto::ICMPV6 => {
            let b = l4.get(..8)?;
            let h = IcmpHdr { v6, ty: b[0], code: b[1], id: be16(b, 4), seq: be16(b, 6) };
            pseudo_ports(&h)
        }
        _ => (0, 0),
    };
    let mut key = FlowKey::new(v6, nh, outer.vlan, src, sport, dst, dport).0;
    key.zone = outer.zone;
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_finds_its_request_for_both_families() {
        for (v6, req, rep) in [(false, 8, 0), (false, 13, 14), (true, 128, 129)] {
            let q = IcmpHdr { v6, ty: req, code: 0, id: 77, seq: 1 };
            let r = IcmpHdr { v6, ty: rep, code: 0, id: 77, seq: 1 };
            let (qs, qd) = pseudo_ports(&q);
            let (rs, rd) = pseudo_ports(&r);
            // The reply travels the other way: its ports are the request's, swapped.
            assert_eq!((rs, rd), (qd, qs), "v6={v6} type={req}");
        }
    }

    #[test]
    fn errors_are_recognised() {
        assert!(is_error(&IcmpHdr { v6: false, ty: 3, ..Default::default() }));
        assert!(is_error(&IcmpHdr { v6: true, ty: 1, ..Default::default() }));
        assert!(!is_error(&IcmpHdr { v6: true, ty: 128, ..Default::default() }));
        assert!(!is_error(&IcmpHdr { v6: false, ty: 8, ..Default::default() }));
    }
}
