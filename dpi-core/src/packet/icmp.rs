//! ICMP (RFC 792) and ICMPv6 (RFC 4443) headers: type, code and the identifier/sequence
//! word of the first 8 bytes. Errors quote the offending packet after the header; the
//! flow stage reads that quote (see `flow::icmp`).

use super::be16;
use crate::action::DropReason;

pub(super) const HEADER_LEN: usize = 8;

/// A decoded ICMP or ICMPv6 header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IcmpHdr {
    /// ICMPv6 rather than ICMPv4.
    pub v6: bool,
    /// Type.
    pub ty: u8,
    /// Code.
    pub code: u8,
    /// Bytes 4–5 (the echo identifier for echo messages).
    pub id: u16,
    /// Bytes 6–7 (the echo sequence number for echo messages).
    pub seq: u16,
}

pub(super) fn parse(seg: &[u8], v6: bool) -> Result<IcmpHdr, DropReason> {
    if seg.len() < HEADER_LEN {
        return Err(DropReason::IcmpTruncated);
    }
    Ok(IcmpHdr { v6, ty: seg[0], code: seg[1], id: be16(seg, 4), seq: be16(seg, 6) })
}
