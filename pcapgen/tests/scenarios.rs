//! Each scenario contains what its description promises.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{scenario, tcp, udp, vlan_ids, TcpView};
use etherparse::{Ipv6ExtensionSlice, NetSlice, SlicedPacket, TransportSlice};
use pcapgen::{Capture, Host, IpPath, Side, SynOptions, TcpConversation};

fn tcp_frames(name: &str) -> Vec<TcpView> {
    scenario(name).frames.iter().map(|f| tcp(&f.data).expect("a TCP frame")).collect()
}

fn flags(frames: &[TcpView]) -> Vec<String> {
    frames.iter().map(TcpView::flags).collect()
}

#[test]
fn tcp_builder_ack_covers_isn_plus_one_plus_request() {
    let path = IpPath::new(Host::v4(1, [10, 0, 0, 1]), Host::v4(2, [10, 0, 0, 2]));
    let mut c = TcpConversation::new(path, 40000, 80, 0xffff_ff00, 42);
    let mut cap = Capture::new();
    cap.push_all(c.handshake(&SynOptions::linux(1460), &SynOptions::NONE));
    cap.push(c.data(Side::Client, &[b'r'; 100]));
    cap.push(c.ack(Side::Server));
    let frames = cap.into_frames();
    let ack = tcp(&frames[4].data).unwrap();
    assert_eq!(ack.ack, 0xffff_ff00u32.wrapping_add(1 + 100));
    assert_eq!(ack.seq, 43);
    let synack = tcp(&frames[1].data).unwrap();
    assert_eq!((synack.seq, synack.ack), (42, 0xffff_ff01));
}

#[test]
fn tcp_handshake_close_life_cycle() {
    let f = tcp_frames("tcp_handshake_close");
    assert_eq!(flags(&f), ["S", "SA", "A", "PA", "A", "PA", "A", "FA", "FA", "A"]);
    assert!(f[3].payload.starts_with(b"GET /index.html HTTP/1.1\r\n"));
    assert!(f[5].payload.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert_eq!(f[4].ack, f[3].seq + f[3].payload.len() as u32);
    assert_eq!(f[8].ack, f[7].seq + 1);
    assert_eq!(f[9].ack, f[8].seq + 1);
}

#[test]
fn tcp_simultaneous_open_has_crossing_syns() {
    let f = tcp_frames("tcp_simultaneous_open");
    assert_eq!(&flags(&f)[..4], ["S", "S", "SA", "SA"]);
    assert_eq!((f[0].src_port, f[1].src_port), (5000, 5001));
    assert_eq!(f[2].ack, f[1].seq + 1);
    assert_eq!(f[3].ack, f[0].seq + 1);
    assert_eq!(f.iter().filter(|t| t.fin).count(), 2);
}

#[test]
fn tcp_rst_is_in_window() {
    let f = tcp_frames("tcp_rst");
    assert_eq!(flags(&f), ["S", "SA", "A", "PA", "RA"]);
    assert_eq!(f[4].seq, f[1].seq + 1);
    assert_eq!(f[4].ack, f[3].seq + f[3].payload.len() as u32);
}

#[test]
fn tcp_half_close_server_sends_after_client_fin() {
    let f = tcp_frames("tcp_half_close");
    let client_fin = f.iter().position(|t| t.fin && t.src_port == 40000).unwrap();
    let server_data = f[client_fin..].iter().filter(|t| t.src_port == 80 && !t.payload.is_empty());
    assert_eq!(server_data.count(), 3);
    assert_eq!(f[client_fin + 1].ack, f[client_fin].seq + 1);
    assert!(f.last().unwrap().ack_flag && f[f.len() - 2].fin);
}

#[test]
fn tcp_retransmission_repeats_syn_and_data() {
    let s = scenario("tcp_retransmission");
    assert_eq!(s.frames[0].data, s.frames[1].data);
    assert_eq!(s.frames[1].ts_micros - s.frames[0].ts_micros, 1_000_000);
    let data: Vec<_> =
        s.frames.iter().filter(|f| !tcp(&f.data).unwrap().payload.is_empty()).collect();
    assert_eq!(data[0].data, data[1].data);
    assert_eq!(data.len(), 3);
}

#[test]
fn tcp_out_of_order_sends_3_1_2() {
    let f = tcp_frames("tcp_out_of_order");
    let isn = f[0].seq;
    let data: Vec<(u32, &[u8])> = f
        .iter()
        .filter(|t| !t.payload.is_empty())
        .map(|t| (t.seq - isn - 1, &t.payload[..10]))
        .collect();
    assert_eq!(data, [(2000, &b"segment-3 "[..]), (0, b"segment-1 "), (1000, b"segment-2 ")]);
    let acks: Vec<u32> =
        f.iter().filter(|t| t.src_port == 80 && !t.fin).map(|t| t.ack - isn - 1).collect();
    assert_eq!(&acks[1..], [0, 1000, 3000]);
}

#[test]
fn tcp_overlap_differs_in_the_overlap() {
    let f = tcp_frames("tcp_overlap");
    let data: Vec<&TcpView> = f.iter().filter(|t| !t.payload.is_empty()).collect();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1].seq - data[0].seq, 500);
    assert_eq!(data[0].payload.len(), 1000);
    assert_eq!(data[1].payload.len(), 1000);
    assert_ne!(data[0].payload[500..], data[1].payload[..500]);
}

#[test]
fn tcp_reasm_overflow_keeps_more_than_64k_behind_a_hole() {
    let f = tcp_frames("tcp_reasm_overflow");
    let first_data = f[2].seq; // the client's ACK: next byte is the hole
    let client_data: Vec<&TcpView> =
        f.iter().filter(|t| t.src_port == 40000 && !t.payload.is_empty()).collect();
    assert_eq!(client_data.len(), 70);
    assert_eq!(client_data[0].seq, first_data + 1000);
    let pending: usize = client_data.iter().map(|t| t.payload.len()).sum();
    assert!(pending > 64 * 1024);
    for t in f.iter().filter(|t| t.src_port == 80 && !t.syn) {
        assert_eq!(t.ack, first_data, "server ACKs beyond the hole");
    }
}

#[test]
fn tcp_midstream_starts_with_a_server_response() {
    let f = tcp_frames("tcp_midstream");
    assert!(f.iter().all(|t| !t.syn));
    assert_eq!((f[0].src_port, f[0].dst_port), (6379, 51234));
    assert_eq!(f[0].payload, b"+PONG\r\n");
    let pings = f.iter().filter(|t| t.payload == b"*1\r\n$4\r\nPING\r\n").count();
    assert_eq!(pings, 4);
}

#[test]
fn tcp_port_reuse_has_two_connections_with_rising_isn() {
    let s = scenario("tcp_port_reuse");
    let syns: Vec<(usize, TcpView)> = s
        .frames
        .iter()
        .enumerate()
        .map(|(i, f)| (i, tcp(&f.data).unwrap()))
        .filter(|(_, t)| t.syn && !t.ack_flag)
        .collect();
    assert_eq!(syns.len(), 2);
    assert_eq!(syns[0].1.src_port, syns[1].1.src_port);
    assert!(syns[1].1.seq > syns[0].1.seq);
    let (a, b) = (syns[1].0 - 1, syns[1].0);
    assert_eq!(s.frames[b].ts_micros - s.frames[a].ts_micros, 2_000_000);
}

#[test]
fn tcp_capture_loss_acks_unseen_data() {
    let f = tcp_frames("tcp_capture_loss");
    let data: Vec<&TcpView> = f.iter().filter(|t| !t.payload.is_empty()).collect();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1].seq - data[0].seq, 2000);
    let server_ack = f.iter().find(|t| t.src_port == 80 && !t.syn).unwrap();
    assert_eq!(server_ack.ack, data[1].seq + 1000);
}

#[test]
fn ipv6_ext_headers_on_every_client_packet() {
    for f in &scenario("ipv6_ext_headers").frames {
        let p = SlicedPacket::from_ethernet(&f.data).unwrap();
        let Some(NetSlice::Ipv6(v6)) = &p.net else { panic!("not IPv6") };
        let kinds: Vec<&str> = v6
            .extensions()
            .clone()
            .into_iter()
            .map(|e| match e {
                Ipv6ExtensionSlice::HopByHop(_) => "hbh",
                Ipv6ExtensionSlice::DestinationOptions(_) => "dst",
                Ipv6ExtensionSlice::Routing(r) => {
                    assert_eq!(&r.slice()[2..4], &[0, 0], "routing type 0, segments left 0");
                    "rt"
                }
                _ => "other",
            })
            .collect();
        let t = tcp(&f.data).unwrap();
        if t.dst_port == 443 {
            assert_eq!(kinds, ["hbh", "dst", "rt"]);
        } else {
            assert!(kinds.is_empty());
        }
    }
}

#[test]
fn vlan_tags_per_flow() {
    let s = scenario("vlan");
    let tags: Vec<Vec<u16>> = s.frames.iter().map(|f| vlan_ids(&f.data)).collect();
    assert_eq!(tags[0], [100]);
    assert_eq!(tags[1], [100]);
    assert!(tags[2..11].iter().all(|t| t == &[200, 300]));
    assert_eq!(&s.frames[2].data[12..14], &[0x88, 0xa8]);
    assert_eq!(tags[11], [101]);
    assert_eq!(tags[12], [101]);
    let tuple = |i: usize| udp(&s.frames[i].data).map(|(a, b, _)| (a, b));
    assert_eq!(tuple(0), tuple(11));
}

#[test]
fn icmp_errors_quote_the_original_packet() {
    let s = scenario("icmp_errors");
    let ip_of = |i: usize| s.frames[i].data[14..].to_vec();
    let quoted = |i: usize| -> Vec<u8> {
        let p = SlicedPacket::from_ethernet(&s.frames[i].data).unwrap();
        match p.transport.unwrap() {
            TransportSlice::Icmpv4(m) => {
                assert_eq!((m.type_u8(), m.code_u8()), (3, 3));
                m.payload().to_vec()
            }
            TransportSlice::Icmpv6(m) => {
                assert_eq!((m.type_u8(), m.code_u8()), (1, 4));
                m.payload().to_vec()
            }
            _ => panic!("not ICMP"),
        }
    };
    assert_eq!(quoted(1), ip_of(0));
    assert_eq!(quoted(4), ip_of(3));
    let ghost_bytes = quoted(2);
    let ghost = SlicedPacket::from_ip(&ghost_bytes).unwrap();
    let Some(TransportSlice::Udp(u)) = ghost.transport else { panic!("no quoted UDP") };
    assert_eq!((u.source_port(), u.destination_port()), (42000, 53));
}

#[test]
fn udp_dns_second_query_after_40s() {
    let s = scenario("udp_dns");
    assert_eq!(s.frames.len(), 4);
    assert_eq!(s.frames[2].ts_micros - s.frames[1].ts_micros, 40_000_000);
    let (sp, dp, answer) = udp(&s.frames[1].data).unwrap();
    assert_eq!((sp, dp), (53, 53000));
    assert_eq!(&answer[answer.len() - 4..], &[93, 184, 216, 34]);
    assert_eq!(udp(&s.frames[2].data).unwrap().0, 53000);
}

#[test]
fn other_ip_protocols() {
    let s = scenario("other_ip");
    let protos: Vec<u8> = s
        .frames
        .iter()
        .map(|f| match SlicedPacket::from_ethernet(&f.data).unwrap().net {
            Some(NetSlice::Ipv4(v4)) => v4.header().protocol().0,
            _ => panic!("not IPv4"),
        })
        .collect();
    assert_eq!(protos, [2, 2, 47]);
    assert_eq!(s.frames[0].data[14], 0x46, "Router Alert makes IHL 6");
}

#[test]
fn demo_has_a_realistic_mix() {
    let s = scenario("demo");
    assert!((30..=60).contains(&s.frames.len()));
    let mut v6 = 0;
    let mut tagged = 0;
    let mut frags = 0;
    for f in &s.frames {
        let p = SlicedPacket::from_ethernet(&f.data).unwrap();
        v6 += usize::from(matches!(p.net, Some(NetSlice::Ipv6(_))));
        tagged += usize::from(!p.vlan_ids().is_empty());
        frags += usize::from(p.is_ip_payload_fragmented());
    }
    assert!(v6 >= 9 && tagged == 2 && frags == 2);
    let datas: Vec<&[u8]> = s.frames.iter().map(|f| &f.data[..]).collect();
    let repeated = datas.windows(2).any(|w| w[0] == w[1]);
    assert!(repeated, "a retransmitted segment");
}
