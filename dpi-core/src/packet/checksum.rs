//! The Internet checksum (RFC 1071), with the IPv4/IPv6 pseudo-headers of RFC 793/768/8200.
//! Used to verify headers on request and to fill in the frames the engine synthesises.

/// One's-complement sum of `data` as big-endian 16-bit words (odd tail padded with zero),
/// added to `acc`. Not folded.
pub fn sum(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]))
            + u64::from(u16::from_be_bytes([c[2], c[3]]))
            + u64::from(u16::from_be_bytes([c[4], c[5]]))
            + u64::from(u16::from_be_bytes([c[6], c[7]]));
    }
    let mut pairs = chunks.remainder().chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Fold a sum to 16 bits and complement it: the value to store in a checksum field.
pub fn finish(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Sum of the pseudo-header for an upper-layer packet of `len` bytes of protocol `proto`.
/// `src`/`dst` are 16-byte addresses (IPv4 mapped into `::ffff:0:0/96` when `v6` is false).
pub fn pseudo_header(v6: bool, src: u128, dst: u128, proto: u8, len: u32) -> u64 {
    let mut acc = 0u64;
    if v6 {
        acc = sum(&src.to_be_bytes(), acc);
        acc = sum(&dst.to_be_bytes(), acc);
        acc += u64::from(len >> 16) + u64::from(len & 0xffff);
    } else {
        acc = sum(&(src as u32).to_be_bytes(), acc);
        acc = sum(&(dst as u32).to_be_bytes(), acc);
        acc += u64::from(len & 0xffff);
    }
    acc + u64::from(proto)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // The worked example of RFC 1071 §3: sum 0xddf2, checksum its complement.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(finish(sum(&data, 0)), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12, 0x34, 0x56], 0), 0x1234 + 0x5600);
    }

    #[test]
    fn verifying_a_filled_header_gives_zero() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0x00,
            0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let c = finish(sum(&hdr, 0));
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(c, 0xb861);
        assert_eq!(finish(sum(&hdr, 0)), 0);
    }
}
