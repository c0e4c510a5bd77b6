//! UDP header (RFC 768). The length field must cover the header and fit in the IP
//! payload (jumbograms, RFC 2675, are not supported: they never cross an Ethernet link).

use super::be16;
use crate::action::DropReason;

pub(super) const HEADER_LEN: usize = 8;

/// A decoded UDP header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpHdr {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Length field (header included).
    pub len: u16,
    /// Checksum field.
    pub checksum: u16,
}

/// `seg` is the captured segment, `wire_len` its length per the IP header.
pub(super) fn parse(seg: &[u8], wire_len: usize) -> Result<UdpHdr, DropReason> {
    if seg.len() < HEADER_LEN {
        return Err(DropReason::UdpTruncated);
    }
    let h = UdpHdr {
        sport: be16(seg, 0),
        dport: be16(seg, 2),
        len: be16(seg, 4),
        checksum: be16(seg, 6),
    };
    let len = usize::from(h.len);
    if len < HEADER_LEN || len > wire_len {
        return Err(DropReason::UdpBadLength);
    }
    Ok(h)
}
