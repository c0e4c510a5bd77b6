//! Frame builders for the benchmarks: minimal, self-contained Ethernet/IPv4/IPv6 frames
//! with distinct flows, so each benchmark controls exactly how many sessions it touches.

/// Ethernet + IPv4 + UDP frame from `10.x.y.z:sport` (flow number `n` spread over the
/// source address and port) to `10.255.0.1:53`, with `payload` bytes of payload.
pub fn udp4(n: u32, payload: usize) -> Vec<u8> {
    let src = [10, (n >> 16) as u8, (n >> 8) as u8, n as u8];
    let sport = 10_000 + (n % 50_000) as u16;
    let mut l4 = Vec::with_capacity(8 + payload);
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&53u16.to_be_bytes());
    l4.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    l4.extend_from_slice(&[0, 0]);
    l4.resize(8 + payload, 0x61);
    frame4(17, src, [10, 255, 0, 1], &l4)
}

/// Ethernet + IPv4 + TCP ACK frame with payload, flow number `n` as in [`udp4`], to port 80.
pub fn tcp4(n: u32, seq: u32, payload: usize) -> Vec<u8> {
    let src = [10, (n >> 16) as u8, (n >> 8) as u8, n as u8];
    let sport = 10_000 + (n % 50_000) as u16;
    let mut l4 = Vec::with_capacity(20 + payload);
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&80u16.to_be_bytes());
    l4.extend_from_slice(&seq.to_be_bytes());
    l4.extend_from_slice(&1u32.to_be_bytes());
    l4.extend_from_slice(&[0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    l4.resize(20 + payload, 0x62);
    frame4(6, src, [10, 255, 0, 2], &l4)
}

/// Ethernet + 802.1Q + IPv6 (hop-by-hop header) + UDP frame.
pub fn udp6_vlan_ext(n: u32, payload: usize) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0x00, 0x64, 0x86, 0xdd];
    let plen = (8 + 8 + payload) as u16;
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&plen.to_be_bytes());
    f.extend_from_slice(&[0, 64]);
    let mut src = [0xfdu8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    src[12..16].copy_from_slice(&n.to_be_bytes());
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
    f.extend_from_slice(&[0x9c, 0x40, 0, 53]);
    f.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.resize(f.len() + payload, 0x63);
    f
}

fn frame4(proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = (20 + l4.len()) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(l4);
    f
}
