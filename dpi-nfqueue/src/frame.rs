//! A synthetic Ethernet header for an IP packet, because dpi-core's `recv_packet` takes
//! whole Ethernet II frames and NFQUEUE hands out bare IP packets.
//!
//! Two ways: [`frame_for`] copies the packet behind a header into a caller's reusable
//! buffer; [`Packet::frame_mut`](crate::Packet::frame_mut) writes the header into the
//! receive buffer just before the payload and lends out the frame in place (no copy).

use crate::sys;

/// Length of an Ethernet II header (two MACs and the ethertype).
pub const ETH_HLEN: usize = 14;

/// The ethertype for an IP packet: from the version nibble (4 → IPv4, 6 → IPv6), else
/// `fallback` (the queue's `hw_protocol`).
pub fn ethertype_for(ip_packet: &[u8], fallback: u16) -> u16 {
    match ip_packet.first().map(|b| b >> 4) {
        Some(4) => sys::ETH_P_IP,
        Some(6) => sys::ETH_P_IPV6,
        _ => fallback,
    }
}

/// Write the 14-byte header (`dst`, `src`, ethertype) into `hdr`.
pub(crate) fn write_header(hdr: &mut [u8; ETH_HLEN], src: [u8; 6], dst: [u8; 6], ethertype: u16) {
    let (d, rest) = hdr.split_at_mut(6);
    let (s, t) = rest.split_at_mut(6);
    d.copy_from_slice(&dst);
    s.copy_from_slice(&src);
    t.copy_from_slice(&ethertype.to_be_bytes());
}

/// Build `dst | src | ethertype | ip_packet` in `out` (cleared first). `out` keeps its
/// capacity, so reusing one buffer allocates nothing once it has grown to the largest
/// packet.
///
/// ```
/// let ip = [0x45u8, 0, 0, 20];
/// let mut frame = Vec::new();
/// dpi_nfqueue::frame_for(&ip, [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], &mut frame);
/// assert_eq!(&frame[12..14], &[0x08, 0x00]);
/// assert_eq!(&frame[14..], &ip);
/// ```
pub fn frame_for(ip_packet: &[u8], src: [u8; 6], dst: [u8; 6], out: &mut Vec<u8>) {
    out.clear();
    let mut hdr = [0u8; ETH_HLEN];
    write_header(&mut hdr, src, dst, ethertype_for(ip_packet, 0));
    out.extend_from_slice(&hdr);
    out.extend_from_slice(ip_packet);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ethertype_follows_the_ip_version() {
        let mut out = Vec::with_capacity(64);
        frame_for(&[0x60, 0, 0, 0], [1; 6], [2; 6], &mut out);
        assert_eq!(&out[..6], &[2; 6]);
        assert_eq!(&out[6..12], &[1; 6]);
        assert_eq!(&out[12..14], &[0x86, 0xdd]);
        let cap = out.capacity();
        frame_for(&[0x45; 40], [1; 6], [2; 6], &mut out);
        assert_eq!(out.len(), 54);
        assert_eq!(out.capacity(), cap, "reused, not reallocated");
        assert_eq!(ethertype_for(&[], 0x1234), 0x1234);
    }
}
