//! IPv4 (RFC 791): version, header length, total length, fragments; options skipped.

use super::{addr_from_v4, be16, checksum, Decoded, FragInfo};
use crate::action::DropReason;

pub(super) fn parse(frame: &[u8], d: &mut Decoded, verify: bool) -> Result<(), DropReason> {
    let off = d.l3_off;
    if frame.len() < off + 20 {
        return Err(DropReason::Ipv4Truncated);
    }
    let h = &frame[off..];
    if h[0] >> 4 != 4 {
        return Err(DropReason::Ipv4BadVersion);
    }
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if ihl < 20 {
        return Err(DropReason::Ipv4BadHeaderLen);
    }
    if h.len() < ihl {
        return Err(DropReason::Ipv4Truncated);
    }
    let total = usize::from(be16(h, 2));
    if total < ihl {
        return Err(DropReason::Ipv4BadTotalLen);
    }
    if verify && checksum::finish(checksum::sum(&h[..ihl], 0)) != 0 {
        return Err(DropReason::Ipv4BadChecksum);
    }
    d.ip.v6 = false;
    d.ip.src = addr_from_v4([h[12], h[13], h[14], h[15]]);
    d.ip.dst = addr_from_v4([h[16], h[17], h[18], h[19]]);
    d.ip.proto = h[9];
    d.ip.wire_len = total;
    d.ip.truncated = h.len() < total;
    d.l4_off = off + ihl;
    let flags_frag = be16(h, 6);
    let more = flags_frag & 0x2000 != 0;
    let frag_off = u32::from(flags_frag & 0x1fff) * 8;
    if more || frag_off != 0 {
        d.ip.frag = Some(FragInfo {
            id: u32::from(be16(h, 4)),
            offset: frag_off,
            more,
            data_off: off + ihl,
            data_len: total - ihl,
            next_proto: h[9],
            v6_frag_hdr_off: 0,
            v6_nh_field_off: 0,
        });
    }
    Ok(())
}
