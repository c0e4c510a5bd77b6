//! UDP datagrams (RFC 768) on an [`IpPath`].
//!
//! The checksum always covers the pseudo-header; a computed 0 is sent as 0xffff.

use crate::checksum::pseudo_header_checksum;
use crate::ip::{ip_number, IpPath};

/// Encodes a UDP header + payload with a correct checksum for `path`'s addresses.
///
/// # Panics
/// If the datagram exceeds 65535 bytes.
pub fn udp_bytes(path: &IpPath, src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len())
        .unwrap_or_else(|_| panic!("UDP datagram of {} bytes exceeds 65535", 8 + payload.len()));
    let mut u = Vec::with_capacity(usize::from(len));
    u.extend_from_slice(&src_port.to_be_bytes());
    u.extend_from_slice(&dst_port.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let sum = match pseudo_header_checksum(path.src.ip, path.dst.ip, ip_number::UDP, &u) {
        0 => 0xffff,
        s => s,
    };
    u[6..8].copy_from_slice(&sum.to_be_bytes());
    u
}

impl IpPath {
    /// An IP packet carrying a UDP datagram.
    pub fn udp_packet(&mut self, src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
        let u = udp_bytes(self, src_port, dst_port, payload);
        self.ip_packet(ip_number::UDP, &u)
    }

    /// An Ethernet frame carrying a UDP datagram.
    pub fn udp(&mut self, src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
        let p = self.udp_packet(src_port, dst_port, payload);
        self.frame(&p)
    }
}
