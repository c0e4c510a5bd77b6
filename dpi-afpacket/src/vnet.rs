//! `struct virtio_net_hdr`: the 10 bytes a `PACKET_VNET_HDR` socket puts before every
//! frame it receives and expects before every frame it sends. They carry what the kernel
//! would otherwise have to finish before handing the frame over: a GSO super-frame's
//! segment size, and a partial checksum's start and offset. Passing them through lets a
//! service port forward super-frames whole; the kernel segments and checksums them on the
//! way out (or hands them on whole to a veth peer that takes GSO).
//!
//! Layout (native byte order for `PACKET_VNET_HDR`): `flags: u8, gso_type: u8,
//! hdr_len: u16, gso_size: u16, csum_start: u16, csum_offset: u16`.

use crate::sys::VNET_HDR_LEN;

const F_NEEDS_CSUM: u8 = 1;
const F_DATA_VALID: u8 = 2;
const GSO_ECN: u8 = 0x80;

/// What kind of segmentation a GSO super-frame asks for on the way out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GsoKind {
    /// TCP over IPv4 (`VIRTIO_NET_HDR_GSO_TCPV4`).
    TcpV4,
    /// TCP over IPv6.
    TcpV6,
    /// UDP fragmentation offload (`GSO_UDP`).
    Udp,
    /// UDP segmentation (`GSO_UDP_L4`).
    UdpL4,
    /// Any other kernel value.
    Other(u8),
}

/// GSO state of a received super-frame (see [`crate::FrameMeta::gso`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gso {
    /// Segmentation kind.
    pub kind: GsoKind,
    /// Payload bytes per segment once segmented (the MSS for TCP).
    pub segment_size: u16,
    /// Segments carry ECN (CWR handling).
    pub ecn: bool,
}

/// A parsed `virtio_net_hdr`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct VnetHdr {
    pub(crate) flags: u8,
    pub(crate) gso_type: u8,
    pub(crate) hdr_len: u16,
    pub(crate) gso_size: u16,
    pub(crate) csum_start: u16,
    pub(crate) csum_offset: u16,
}

impl VnetHdr {
    pub(crate) fn parse(b: &[u8; VNET_HDR_LEN]) -> VnetHdr {
        let u = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        }
    }

    pub(crate) fn to_bytes(self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }

    pub(crate) fn needs_csum(self) -> bool {
        self.flags & F_NEEDS_CSUM != 0
    }

    pub(crate) fn data_valid(self) -> bool {
        self.flags & F_DATA_VALID != 0
    }

    pub(crate) fn gso(self) -> Option<Gso> {
        let kind = match self.gso_type & !GSO_ECN {
            0 => return None,
            1 => GsoKind::TcpV4,
            3 => GsoKind::Udp,
            4 => GsoKind::TcpV6,
            5 => GsoKind::UdpL4,
            v => GsoKind::Other(v),
        };
        Some(Gso { kind, segment_size: self.gso_size, ecn: self.gso_type & GSO_ECN != 0 })
    }

    /// The header to send a frame of `len` bytes with. A frame that is not a GSO
    /// super-frame gets `hdr_len = len`: the kernel then copies it whole into the socket
    /// buffer's linear area (TX ring and `send()` alike) instead of attaching the rest as
    /// page fragments of our buffer, which a veth must copy again (`skb_copy_ubufs`) and
    /// the receiver's IP layer must pull back into the linear area. GSO headers keep the
    /// kernel's `hdr_len` (the length of the headers to repeat in each segment).
    pub(crate) fn for_tx(self, len: usize) -> VnetHdr {
        let mut v = self;
        if v.gso_type == 0 {
            v.hdr_len = u16::try_from(len).unwrap_or(v.hdr_len);
        }
        v
    }

    /// The header for the same frame once `n` bytes (a VLAN tag) are inserted after the
    /// MAC addresses: offsets into the frame past byte 12 move by `n`.
    pub(crate) fn shifted(self, n: u16) -> VnetHdr {
        let mut v = self;
        if v.needs_csum() {
            v.csum_start = v.csum_start.saturating_add(n);
        }
        if v.hdr_len != 0 {
            v.hdr_len = v.hdr_len.saturating_add(n);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_shift() {
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: 4 | GSO_ECN,
            hdr_len: 86,
            gso_size: 1428,
            csum_start: 54,
            csum_offset: 16,
        };
        assert_eq!(VnetHdr::parse(&h.to_bytes()), h);
        assert_eq!(h.gso(), Some(Gso { kind: GsoKind::TcpV6, segment_size: 1428, ecn: true }));
        let s = h.shifted(4);
        assert_eq!((s.csum_start, s.hdr_len, s.csum_offset), (58, 90, 16));
        let plain = VnetHdr::parse(&[0; VNET_HDR_LEN]);
        assert_eq!((plain.gso(), plain.needs_csum()), (None, false));
        // No partial checksum: csum_start means nothing and stays.
        assert_eq!(plain.shifted(4), plain);
        // Sending: a plain frame is copied whole (hdr_len = its length); a super-frame's
        // header length is the kernel's.
        assert_eq!(plain.for_tx(60).hdr_len, 60);
        assert_eq!(h.for_tx(60_000).hdr_len, 86);
    }
}
