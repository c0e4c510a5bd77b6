use super::*;
use crate::packet::{decode, Frame};
use etherparse::{LinkExtSlice, NetSlice, SlicedPacket, TransportSlice};
use pcapgen::{Host, IpPath, Ipv6Ext, Side, SynOptions, TcpConversation, VlanTags};

const C4: Host = Host::v4(1, [10, 0, 0, 1]);
const S4: Host = Host::v4(2, [10, 0, 0, 2]);

fn c6() -> Host {
    Host::v6(1, "2001:db8::1".parse().unwrap())
}

fn s6() -> Host {
    Host::v6(2, "2001:db8::2".parse().unwrap())
}

fn decoded(frame: &[u8]) -> Decoded {
    match decode(frame, true).unwrap() {
        Frame::Ip(d) => d,
        other => panic!("not IP: {other:?}"),
    }
}

fn reset(frame: &[u8], toward_sender: bool, seq: u32) -> Vec<u8> {
    let mut t = Transmit::default();
    assert!(build_reset(frame, &decoded(frame), toward_sender, seq, &mut t));
    t.frame.to_vec()
}

/// The fields of a parsed reset.
#[derive(Debug, PartialEq, Eq)]
struct Parsed {
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    vlans: Vec<u16>,
    src: std::net::IpAddr,
    dst: std::net::IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    /// Acknowledgment number if ACK is set.
    ack: Option<u32>,
}

/// Parse a reset back with etherparse, checking everything that does not depend on the
/// direction: flags, window, lengths, TTL, DF, no options, both checksums.
fn parse(frame: &[u8]) -> Parsed {
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let eth = match p.link.unwrap() {
        etherparse::LinkSlice::Ethernet2(e) => e,
        other => panic!("{other:?}"),
    };
    let vlans = p
        .link_exts
        .iter()
        .map(|x| match x {
            LinkExtSlice::Vlan(v) => v.vlan_identifier().value(),
            other => panic!("{other:?}"),
        })
        .collect();
    let tcp = match p.transport.unwrap() {
        TransportSlice::Tcp(t) => t,
        other => panic!("{other:?}"),
    };
    assert!(tcp.rst());
    assert!(!tcp.syn() && !tcp.fin() && !tcp.psh() && !tcp.urg());
    assert_eq!((tcp.window_size(), tcp.urgent_pointer(), tcp.data_offset()), (0, 0, 5));
    assert!(tcp.payload().is_empty());
    let (src, dst) = match p.net.unwrap() {
        NetSlice::Ipv4(ip) => {
            let h = ip.header();
            assert_eq!((h.ihl(), h.ttl(), h.total_len()), (5, 255, 40));
            assert!(h.dont_fragment() && !h.more_fragments());
            assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum(), "IP checksum");
            assert_eq!(
                tcp.checksum(),
                tcp.calc_checksum_ipv4(h.source(), h.destination()).unwrap(),
                "TCP checksum"
            );
            assert_eq!(frame.len(), 14 + 4 * p.link_exts.len() + 40, "minimal length");
            (h.source_addr().into(), h.destination_addr().into())
        }
        NetSlice::Ipv6(ip) => {
            let h = ip.header();
            assert_eq!((h.hop_limit(), h.payload_length(), h.next_header()), (255, 20, 6.into()));
            assert_eq!((h.traffic_class(), h.flow_label().value()), (0, 0));
            assert_eq!(
                tcp.checksum(),
                tcp.calc_checksum_ipv6(h.source(), h.destination()).unwrap(),
                "TCP checksum"
            );
            assert_eq!(frame.len(), 14 + 4 * p.link_exts.len() + 60, "minimal length");
            (h.source_addr().into(), h.destination_addr().into())
        }
        other => panic!("{other:?}"),
    };
    // Our own decoder, verifying checksums, accepts it too.
    let d = decoded(frame);
    assert!(matches!(d.l4, L4::Tcp(h) if h.flags.rst()));
    Parsed {
        dst_mac: eth.destination(),
        src_mac: eth.source(),
        vlans,
        src,
        dst,
        sport: tcp.source_port(),
        dport: tcp.destination_port(),
        seq: tcp.sequence_number(),
        ack: tcp.ack().then(|| tcp.acknowledgment_number()),
    }
}

fn vlan_ids(v: VlanTags) -> Vec<u16> {
    match v {
        VlanTags::None => vec![],
        VlanTags::Single(id) => vec![id],
        VlanTags::Double { outer, inner } => vec![outer, inner],
    }
}

#[test]
fn both_directions_for_every_family_and_tagging() {
    let tags = [VlanTags::None, VlanTags::Single(100), VlanTags::Double { outer: 200, inner: 300 }];
    for (c, s) in [(C4, S4), (c6(), s6())] {
        for vlan in tags {
            let path = IpPath::new(c, s).with_vlan(vlan);
            let mut conv = TcpConversation::new(path, 40000, 80, 1000, 5000);
            conv.handshake(&SynOptions::linux(1460), &SynOptions::linux(1460));
            // The server's response triggers the deny.
            let frame = conv.data(Side::Server, b"HTTP/1.1 200 OK\r\n\r\n");
            let (seq, ack) = (5001, 1001);
            let ctx = format!("{c:?} {vlan:?}");

            let to_receiver = parse(&reset(&frame, false, seq));
            assert_eq!(
                to_receiver,
                Parsed {
                    dst_mac: c.mac,
                    src_mac: s.mac,
                    vlans: vlan_ids(vlan),
                    src: s.ip,
                    dst: c.ip,
                    sport: 80,
                    dport: 40000,
                    seq,
                    ack: Some(ack),
                },
                "{ctx}"
            );
            let to_sender = parse(&reset(&frame, true, ack));
            assert_eq!(
                to_sender,
                Parsed {
                    dst_mac: s.mac,
                    src_mac: c.mac,
                    vlans: vlan_ids(vlan),
                    src: c.ip,
                    dst: s.ip,
                    sport: 40000,
                    dport: 80,
                    seq: ack,
                    ack: Some(seq + 19),
                },
                "{ctx}"
            );
        }
    }
}

#[test]
fn untagged_ipv4_is_54_bytes_and_ipv6_74() {
    let mut conv = TcpConversation::new(IpPath::new(C4, S4), 40000, 80, 1000, 5000);
    let frame = conv.data(Side::Client, b"x");
    assert_eq!(reset(&frame, false, 1001).len(), 54);
    let mut conv = TcpConversation::new(IpPath::new(c6(), s6()), 40000, 80, 1000, 5000);
    let frame = conv.data(Side::Client, b"x");
    assert_eq!(reset(&frame, true, 5001).len(), 74);
}

#[test]
fn tags_are_copied_verbatim_with_priority_bits() {
    let path = IpPath::new(C4, S4).with_vlan(VlanTags::Double { outer: 7, inner: 9 });
    let mut conv = TcpConversation::new(path, 40000, 80, 1000, 5000);
    let mut frame = conv.data(Side::Client, b"x");
    frame[14] |= 0xa0; // outer PCP 5
    frame[18] |= 0x30; // inner PCP 1, DEI
    for toward_sender in [false, true] {
        let r = reset(&frame, toward_sender, 1);
        assert_eq!(r[12..22], frame[12..22], "TPIDs, TCIs, then the ethertype");
    }
}

#[test]
fn ip_options_and_extension_headers_are_not_copied() {
    let rr = pcapgen::ip::ipv4_option::record_route(3);
    let path = IpPath::new(C4, S4).with_ipv4_options(rr);
    let mut conv = TcpConversation::new(path, 40000, 80, 1000, 5000);
    let frame = conv.data(Side::Client, b"x");
    assert!(decoded(&frame).l4_off > 34, "the trigger has options");
    let p = parse(&reset(&frame, false, 1001));
    assert_eq!((p.src, p.dport), (C4.ip, 80));

    let ext = vec![Ipv6Ext::HopByHop(vec![]), Ipv6Ext::DestinationOptions(vec![])];
    let path = IpPath::new(c6(), s6()).with_ipv6_ext(ext);
    let mut conv = TcpConversation::new(path, 40000, 80, 1000, 5000);
    let frame = conv.data(Side::Client, b"x");
    assert!(decoded(&frame).l4_off > 54, "the trigger has extension headers");
    let p = parse(&reset(&frame, true, 5001));
    assert_eq!((p.src, p.dst, p.sport), (s6().ip, c6().ip, 80));
}

#[test]
fn ack_numbers_follow_the_triggering_segment() {
    let mut conv = TcpConversation::new(IpPath::new(C4, S4), 40000, 80, 1000, 5000);
    // A SYN has no ACK: the reset toward its receiver carries RST alone.
    let syn = conv.syn(&SynOptions::NONE);
    assert_eq!(parse(&reset(&syn, false, 1000)).ack, None);
    // Toward the sender of a SYN/ACK (the server, in SYN-RECEIVED) the ACK is ISS + 1;
    // toward its receiver (the client, in SYN-SENT) it acknowledges the client's SYN.
    let syn_ack = conv.syn_ack(&SynOptions::NONE);
    assert_eq!(parse(&reset(&syn_ack, true, 1001)).ack, Some(5001));
    assert_eq!(parse(&reset(&syn_ack, false, 5000)).ack, Some(1001));
    conv.ack(Side::Client);
    // A FIN with data: payload and FIN both count.
    conv.data(Side::Client, b"abc");
    let fin = conv.fin(Side::Client);
    assert_eq!(parse(&reset(&fin, true, 5001)).ack, Some(1004 + 1));
    // Sequence numbers wrap.
    let mut conv = TcpConversation::new(IpPath::new(C4, S4), 40000, 80, u32::MAX - 1, 5000);
    let frame = conv.data(Side::Client, b"abcd");
    assert_eq!(parse(&reset(&frame, true, 5001)).ack, Some(3));
}

#[test]
fn pppoe_sessions_are_rebuilt() {
    for (c, s) in [(C4, S4), (c6(), s6())] {
        let mut conv = TcpConversation::new(IpPath::new(c, s), 40000, 80, 1000, 5000);
        let plain = conv.data(Side::Client, b"hello");
        let v6 = c.ip.is_ipv6();
        // Re-wrap the IP packet in a PPPoE session (RFC 2516): 0x8864, ver/type 0x11,
        // code 0, session 0x1234, length, PPP protocol.
        let ip = &plain[14..];
        let mut frame = plain[..12].to_vec();
        frame.extend_from_slice(&[0x88, 0x64, 0x11, 0x00, 0x12, 0x34]);
        frame.extend_from_slice(&(ip.len() as u16 + 2).to_be_bytes());
        frame.extend_from_slice(if v6 { &[0x00, 0x57] } else { &[0x00, 0x21] });
        frame.extend_from_slice(ip);

        let r = reset(&frame, true, 5001);
        let ip_len = if v6 { 60 } else { 40 };
        assert_eq!(r.len(), 14 + 8 + ip_len);
        assert_eq!(&r[0..6], &c.mac);
        assert_eq!(&r[6..12], &s.mac);
        assert_eq!(&r[12..18], &frame[12..18], "ethertype, ver/type, code, session");
        assert_eq!(u16::from_be_bytes([r[18], r[19]]) as usize, ip_len + 2);
        assert_eq!(&r[20..22], &frame[20..22]);
        // The decoder (checksums on) reads the reset back.
        let d = decoded(&r);
        let L4::Tcp(h) = d.l4 else { panic!("{d:?}") };
        assert!(h.flags.rst() && h.flags.ack());
        assert_eq!((h.sport, h.dport, h.seq, h.ack), (80, 40000, 5001, 1006));
        assert_eq!(d.ip.src, decoded(&frame).ip.dst);
    }
}

#[test]
fn not_tcp_or_inconsistent_is_refused() {
    let mut path = IpPath::new(C4, S4);
    let udp = path.udp(5000, 53, b"q");
    let mut t = Transmit::default();
    t.frame.push(0xee);
    assert!(!build_reset(&udp, &decoded(&udp), false, 1, &mut t));
    assert!(t.frame.is_empty(), "out is left empty");

    let mut conv = TcpConversation::new(IpPath::new(C4, S4), 40000, 80, 1000, 5000);
    let frame = conv.data(Side::Client, b"x");
    let d = decoded(&frame);
    // Offsets that do not describe this frame.
    let mut bad = d;
    bad.l3_off += 4;
    assert!(!build_reset(&frame, &bad, false, 1, &mut t));
    let mut bad = d;
    bad.ip.v6 = true;
    assert!(!build_reset(&frame, &bad, false, 1, &mut t));
    let mut bad = d;
    bad.vlan_count = 2;
    assert!(!build_reset(&frame, &bad, false, 1, &mut t));
    assert!(!build_reset(&frame[..10], &d, false, 1, &mut t));
    assert!(t.frame.is_empty());
    assert!(build_reset(&frame, &d, false, 1, &mut t));
}
