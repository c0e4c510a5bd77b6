//! Decoder tests on hand-built frames (each layer written out byte by byte, so the test
//! does not share code with what it checks).

use super::*;

fn eth(ethertype: u16, tags: &[(u16, u16)], l3: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    for &(tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(l3);
    f
}

fn ipv4(proto: u8, opts: &[u8], l4: &[u8]) -> Vec<u8> {
    let ihl = 20 + opts.len();
    let total = (ihl + l4.len()) as u16;
    let mut h = vec![0x40 | (ihl / 4) as u8, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, proto, 0, 0]);
    h.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    h.extend_from_slice(opts);
    let c = checksum::finish(checksum::sum(&h, 0));
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(l4);
    h
}

fn ipv6(next: u8, ext_and_l4: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(ext_and_l4.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    h.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    h.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    h.extend_from_slice(ext_and_l4);
    h
}

fn tcp(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t =
        vec![0x9c, 0x40, 0, 80, 0, 0, 0x03, 0xe8, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0];
    t.extend_from_slice(payload);
    t
}

fn udp(len_field: Option<u16>, payload: &[u8]) -> Vec<u8> {
    let len = len_field.unwrap_or((8 + payload.len()) as u16);
    let mut u = vec![0x9c, 0x41, 0, 53];
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

fn ip(frame: &[u8]) -> Decoded {
    match decode(frame, false) {
        Ok(Frame::Ip(d)) => d,
        other => panic!("not IP: {other:?}"),
    }
}

#[test]
fn tcp_over_ipv4_offsets_and_fields() {
    let f = eth(0x0800, &[], &ipv4(6, &[], &tcp(0x18, b"hello")));
    let d = ip(&f);
    assert_eq!(d.l3_off, 14);
    assert_eq!(d.l4_off, 34);
    assert_eq!(d.payload_off, 54);
    assert_eq!(&f[d.payload_off..d.payload_off + d.payload_len], b"hello");
    assert_eq!(d.ip.src, addr_from_v4([10, 0, 0, 1]));
    assert!(!d.ip.truncated);
    let L4::Tcp(h) = d.l4 else { panic!() };
    assert_eq!((h.sport, h.dport, h.seq, h.flags.0), (40000, 80, 1000, 0x18));
}

#[test]
fn ipv4_options_and_ethernet_padding() {
    let mut f = eth(0x0800, &[], &ipv4(17, &[1, 1, 1, 0], &udp(None, b"ab")));
    f.extend_from_slice(&[0; 12]); // padding to the Ethernet minimum
    let d = ip(&f);
    assert_eq!(d.l4_off, 14 + 24);
    assert_eq!(d.payload_len, 2, "padding is not payload");
}

#[test]
fn vlan_tags_one_two_and_too_many() {
    let l3 = ipv4(17, &[], &udp(None, b"x"));
    let d = ip(&eth(0x0800, &[(0x8100, 100)], &l3));
    assert_eq!(d.vlans(), &[100]);
    let d = ip(&eth(0x0800, &[(0x88a8, 200), (0x8100, 0x2000 | 300)], &l3));
    assert_eq!(d.vlans(), &[200, 300], "priority bits masked off");
    let f = eth(0x0800, &[(0x88a8, 1), (0x8100, 2), (0x8100, 3)], &l3);
    assert_eq!(decode(&f, false), Err(DropReason::VlanTooDeep));
    let mut f = eth(0x8100, &[], &[]);
    f.extend_from_slice(&[0, 1]);
    assert_eq!(decode(&f, false), Err(DropReason::VlanTruncated));
}

#[test]
fn non_ip_is_not_an_error() {
    let f = eth(0x0806, &[], &[0; 28]);
    assert_eq!(decode(&f, false), Ok(Frame::NonIp { ethertype: 0x0806 }));
}

#[test]
fn snap_length_truncation_is_marked_not_dropped() {
    let mut f = eth(0x0800, &[], &ipv4(6, &[], &tcp(0x18, &[7; 100])));
    f.truncate(f.len() - 60);
    let d = ip(&f);
    assert!(d.ip.truncated);
    assert_eq!(d.payload_len, 40);
    assert_eq!(d.payload_wire_len, 100);
}

#[test]
fn ipv4_malformed_headers() {
    let good = ipv4(6, &[], &tcp(0x10, &[]));
    let mut bad = good.clone();
    bad[0] = 0x44;
    assert_eq!(decode(&eth(0x0800, &[], &bad), false), Err(DropReason::Ipv4BadHeaderLen));
    let mut bad = good.clone();
    bad[0] = 0x55;
    assert_eq!(decode(&eth(0x0800, &[], &bad), false), Err(DropReason::Ipv4BadVersion));
    let mut bad = good.clone();
    bad[2..4].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(decode(&eth(0x0800, &[], &bad), false), Err(DropReason::Ipv4BadTotalLen));
    assert_eq!(decode(&eth(0x0800, &[], &good[..15]), false), Err(DropReason::Ipv4Truncated));
    let mut bad = good;
    bad[10] ^= 0xff;
    let f = eth(0x0800, &[], &bad);
    assert!(decode(&f, false).is_ok(), "checksums are not checked by default");
    assert_eq!(decode(&f, true), Err(DropReason::Ipv4BadChecksum));
}

#[test]
fn l4_checksums_when_asked() {
    let mut l4 = udp(None, b"data");
    // UDP checksum over the pseudo-header.
    let pseudo = checksum::pseudo_header(
        false,
        addr_from_v4([10, 0, 0, 1]),
        addr_from_v4([10, 0, 0, 2]),
        17,
        l4.len() as u32,
    );
    let c = checksum::finish(checksum::sum(&l4, pseudo));
    l4[6..8].copy_from_slice(&c.to_be_bytes());
    let f = eth(0x0800, &[], &ipv4(17, &[], &l4));
    assert!(decode(&f, true).is_ok());
    let mut f2 = f.clone();
    let n = f2.len();
    f2[n - 1] ^= 1;
    assert_eq!(decode(&f2, true), Err(DropReason::L4BadChecksum));
}

#[test]
fn ipv6_extension_headers_are_walked() {
    let mut ext = vec![60, 0, 1, 4, 0, 0, 0, 0]; // hop-by-hop -> dest opts, PadN
    ext.extend_from_slice(&[43, 0, 1, 4, 0, 0, 0, 0]); // dest opts -> routing
    ext.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0]); // routing type 0, segments left 0 -> TCP
    ext.extend_from_slice(&tcp(0x02, &[]));
    let d = ip(&eth(0x86dd, &[], &ipv6(0, &ext)));
    assert!(d.ip.v6);
    assert_eq!(d.ip.proto, 6);
    assert_eq!(d.l4_off, 14 + 40 + 24);
    assert!(matches!(d.l4, L4::Tcp(_)));
}

#[test]
fn ipv6_bad_chains() {
    // hop-by-hop not first
    let mut ext = vec![0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0];
    ext.extend_from_slice(&tcp(0x02, &[]));
    assert_eq!(
        decode(&eth(0x86dd, &[], &ipv6(60, &ext)), false),
        Err(DropReason::Ipv6BadExtHeader)
    );
    // header length runs past the packet
    let ext = [6, 9, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        decode(&eth(0x86dd, &[], &ipv6(60, &ext)), false),
        Err(DropReason::Ipv6BadExtHeader)
    );
    // chain too long
    let mut ext = vec![];
    for _ in 0..9 {
        ext.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
    }
    assert_eq!(
        decode(&eth(0x86dd, &[], &ipv6(60, &ext)), false),
        Err(DropReason::Ipv6BadExtHeader)
    );
}

#[test]
fn ipv6_fragments_and_atomic_fragments() {
    let mut frag = vec![17, 0, 0x00, 0x01, 0, 0, 0x12, 0x34]; // offset 0, M=1, id 0x1234
    frag.extend_from_slice(&udp(Some(100), &[0; 16]));
    let d = ip(&eth(0x86dd, &[], &ipv6(44, &frag)));
    let fi = d.ip.frag.expect("fragment");
    assert_eq!((fi.id, fi.offset, fi.more, fi.next_proto), (0x1234, 0, true, 17));
    assert_eq!(fi.v6_frag_hdr_off, 54);
    assert_eq!(fi.v6_nh_field_off, 14 + 6);
    assert_eq!(d.l4, L4::Fragment);
    let mut atomic = vec![17, 0, 0, 0, 0, 0, 0, 9];
    atomic.extend_from_slice(&udp(None, b"hi"));
    let d = ip(&eth(0x86dd, &[], &ipv6(44, &atomic)));
    assert!(d.ip.frag.is_none());
    assert!(d.ip.atomic_frag);
    assert!(matches!(d.l4, L4::Udp(_)));
}

#[test]
fn ipv4_fragment_fields() {
    let mut l3 = ipv4(17, &[], &[0; 16]);
    l3[6..8].copy_from_slice(&(0x2000u16 | 185).to_be_bytes()); // MF, offset 185*8
    let d = ip(&eth(0x0800, &[], &l3));
    let fi = d.ip.frag.expect("fragment");
    assert_eq!((fi.offset, fi.more, fi.data_len), (1480, true, 16));
}

#[test]
fn udp_and_icmp_lengths() {
    let f = eth(0x0800, &[], &ipv4(17, &[], &udp(Some(7), b"abc")));
    assert_eq!(decode(&f, false), Err(DropReason::UdpBadLength));
    let f = eth(0x0800, &[], &ipv4(17, &[], &udp(Some(200), b"abc")));
    assert_eq!(decode(&f, false), Err(DropReason::UdpBadLength));
    let f = eth(0x0800, &[], &ipv4(17, &[], &[0, 1, 0, 2]));
    assert_eq!(decode(&f, false), Err(DropReason::UdpTruncated));
    let f = eth(0x0800, &[], &ipv4(1, &[], &[8, 0, 0, 0]));
    assert_eq!(decode(&f, false), Err(DropReason::IcmpTruncated));
    let f = eth(0x0800, &[], &ipv4(1, &[], &[8, 0, 0, 0, 0, 7, 0, 1, 0xaa]));
    let d = ip(&f);
    assert_eq!(d.l4, L4::Icmp(IcmpHdr { v6: false, ty: 8, code: 0, id: 7, seq: 1 }));
    assert_eq!(d.payload_len, 1);
}

#[test]
fn other_protocols_are_opaque() {
    let d = ip(&eth(0x0800, &[], &ipv4(47, &[], &[1, 2, 3, 4])));
    assert_eq!(d.l4, L4::Other);
    assert_eq!(d.payload_len, 4);
    assert_eq!(d.ip.proto, 47);
}

#[test]
fn short_frames() {
    assert_eq!(decode(&[0; 13], false), Err(DropReason::EthTruncated));
    assert_eq!(decode(&eth(0x86dd, &[], &[0x60; 30]), false), Err(DropReason::Ipv6Truncated));
}

#[test]
fn pppoe_session_carries_ip() {
    let l3 = ipv4(17, &[], &udp(None, b"syslog"));
    let mut pppoe = vec![0x11, 0x00, 0x12, 0x34];
    pppoe.extend_from_slice(&((l3.len() + 2) as u16).to_be_bytes());
    pppoe.extend_from_slice(&[0x00, 0x21]);
    pppoe.extend_from_slice(&l3);
    let d = ip(&eth(0x8864, &[(0x8100, 7)], &pppoe));
    assert_eq!(d.l3_off, 14 + 4 + 8);
    assert_eq!(d.vlans(), &[7]);
    assert!(matches!(d.l4, L4::Udp(_)));
    let mut lcp = pppoe.clone();
    lcp[6..8].copy_from_slice(&[0xc0, 0x21]);
    assert_eq!(decode(&eth(0x8864, &[], &lcp), false), Ok(Frame::NonIp { ethertype: 0x8864 }));
    assert_eq!(decode(&eth(0x8864, &[], &pppoe[..5]), false), Err(DropReason::PppoeTruncated));
}
