//! The Internet checksum (RFC 1071) and the transport pseudo-headers.
//!
//! The IPv4 header checksum covers the header only (RFC 791). TCP, UDP and ICMPv6
//! prepend a pseudo-header: for IPv4 `src, dst, 0, protocol, length(16)` (RFC 793,
//! RFC 768), for IPv6 `src, dst, length(32), 0, 0, 0, next header` (RFC 8200 §8.1).
//! ICMPv4 and IGMP have no pseudo-header.
//!
//! Every function here expects the checksum field inside `data` to be zero when
//! computing a checksum, and returns the value to store in network byte order.

use std::net::IpAddr;

/// Adds `data` as a sequence of big-endian 16-bit words to `acc`.
///
/// An odd trailing byte is padded with a zero byte on the right, so only the last
/// chunk of a message may have an odd length.
fn add_words(mut acc: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds the carries of a one's-complement sum and complements it.
fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // `acc` fits in 16 bits after folding.
    !(acc as u16)
}

/// The Internet checksum of `data` (RFC 1071).
pub fn internet_checksum(data: &[u8]) -> u16 {
    fold(add_words(0, data))
}

/// The TCP/UDP/ICMPv6 checksum of `segment` sent from `src` to `dst` with the
/// given IP protocol (IPv4) or next-header value (IPv6).
///
/// For IPv6 `dst` must be the final destination (with a routing header whose
/// "segments left" is zero, that is the IPv6 destination field).
///
/// # Panics
/// If `src` and `dst` are of different address families.
pub fn pseudo_header_checksum(src: IpAddr, dst: IpAddr, protocol: u8, segment: &[u8]) -> u16 {
    let mut acc = 0;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            acc = add_words(acc, &s.octets());
            acc = add_words(acc, &d.octets());
            acc += u64::from(protocol);
            acc += segment.len() as u64;
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            acc = add_words(acc, &s.octets());
            acc = add_words(acc, &d.octets());
            acc = add_words(acc, &(segment.len() as u32).to_be_bytes());
            acc += u64::from(protocol);
        }
        _ => panic!("pseudo-header with mixed address families: {src} -> {dst}"),
    }
    fold(add_words(acc, segment))
}

/// Recomputes the header checksum of the IPv4 packet in `packet` in place.
///
/// Uses the IHL field to find the header end (clamped to the buffer). Does nothing
/// if `packet` is shorter than 12 bytes.
pub fn fix_ipv4_header_checksum(packet: &mut [u8]) {
    if packet.len() < 12 {
        return;
    }
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let end = ihl.clamp(12, packet.len());
    packet[10] = 0;
    packet[11] = 0;
    let sum = internet_checksum(&packet[..end]);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 example: the sum of these words is 0xddf2, checksum 0x220d.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&data), 0x220d);
    }

    #[test]
    fn known_ipv4_header() {
        // Wikipedia's example header, checksum 0xb861.
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        fix_ipv4_header_checksum(&mut hdr);
        assert_eq!(&hdr[10..12], &[0xb8, 0x61]);
        assert_eq!(internet_checksum(&hdr), 0);
    }

    #[test]
    fn odd_length_is_padded() {
        assert_eq!(internet_checksum(&[0x12]), !0x1200);
    }

    #[test]
    fn pseudo_header_sums_length_and_protocol() {
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        // 0x0a00+0x0001+0x0a00+0x0002+0x0011+0x0002 = 0x1416 (+ segment 0)
        assert_eq!(pseudo_header_checksum(a, b, 17, &[0, 0]), !0x1416);
    }
}
