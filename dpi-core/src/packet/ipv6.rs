//! IPv6 (RFC 8200): fixed header and the extension-header chain: hop-by-hop (first only),
//! routing, destination options, mobility, HIP, shim6 (length in 8-octet units), AH
//! (RFC 4302, 4-octet units) and Fragment. An atomic fragment (offset 0, M clear,
//! RFC 6946) is walked through like any other extension header. An unknown next header is
//! the upper layer; No Next Header (59) is an empty "other" payload. At most
//! [`MAX_EXT_HEADERS`] extension headers.

use super::{be16, be32, Decoded, FragInfo};
use crate::action::DropReason;

/// Longest extension-header chain accepted.
pub(super) const MAX_EXT_HEADERS: usize = 8;

const HOP_BY_HOP: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const AH: u8 = 51;
const DEST_OPTS: u8 = 60;
const MOBILITY: u8 = 135;
const HIP: u8 = 139;
const SHIM6: u8 = 140;

pub(super) fn parse(frame: &[u8], d: &mut Decoded) -> Result<(), DropReason> {
    let off = d.l3_off;
    if frame.len() < off + 40 {
        return Err(DropReason::Ipv6Truncated);
    }
    let h = &frame[off..];
    if h[0] >> 4 != 6 {
        return Err(DropReason::Ipv6Truncated);
    }
    let total = 40 + usize::from(be16(h, 4));
    d.ip.v6 = true;
    d.ip.src = u128::from_be_bytes(h[8..24].try_into().unwrap_or([0; 16]));
    d.ip.dst = u128::from_be_bytes(h[24..40].try_into().unwrap_or([0; 16]));
    d.ip.wire_len = total;
    d.ip.truncated = h.len() < total;
    // The chain must lie within both the declared and the captured bytes.
    let end = h.len().min(total);
    let mut nh = h[6];
    let mut nh_field = 6usize;
    let mut pos = 40usize;
    for i in 0..=MAX_EXT_HEADERS {
        let len = match nh {
            HOP_BY_HOP | ROUTING | DEST_OPTS | MOBILITY | HIP | SHIM6 => {
                if nh == HOP_BY_HOP && i != 0 {
                    return Err(DropReason::Ipv6BadExtHeader);
                }
                if end < pos + 2 {
                    return Err(DropReason::Ipv6BadExtHeader);
                }
                (usize::from(h[pos + 1]) + 1) * 8
            }
            AH => {
                if end < pos + 2 {
                    return Err(DropReason::Ipv6BadExtHeader);
                }
                (usize::from(h[pos + 1]) + 2) * 4
            }
            FRAGMENT => {
                if end < pos + 8 {
                    return Err(DropReason::Ipv6BadExtHeader);
                }
                let fo = be16(h, pos + 2);
                let offset = u32::from(fo & 0xfff8);
                let more = fo & 1 != 0;
                if offset != 0 || more {
                    d.ip.proto = h[pos];
                    d.l4_off = off + pos + 8;
                    d.ip.frag = Some(FragInfo {
                        id: be32(h, pos + 4),
                        offset,
                        more,
                        data_off: off + pos + 8,
                        data_len: total - (pos + 8),
                        next_proto: h[pos],
                        v6_frag_hdr_off: off + pos,
                        v6_nh_field_off: off + nh_field,
                    });
                    return Ok(());
                }
                d.ip.atomic_frag = true;
                8
            }
            upper => {
                d.ip.proto = upper;
                d.l4_off = off + pos;
                return Ok(());
            }
        };
        if end < pos + len || i == MAX_EXT_HEADERS {
            return Err(DropReason::Ipv6BadExtHeader);
        }
        nh = h[pos];
        nh_field = pos;
        pos += len;
    }
    Err(DropReason::Ipv6BadExtHeader)
}
