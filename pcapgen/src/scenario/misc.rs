//! ICMP, DNS-over-UDP, non-TCP/UDP IP protocols and malformed frames.

use std::net::Ipv4Addr;

use super::payload::{dns_a_answer, dns_query, ping_payload, snmp_get_sysdescr};
use super::{Scenario, CLIENT, CLIENT6, SERVER, SERVER6};
use crate::capture::{Capture, SECONDS};
use crate::checksum::{fix_ipv4_header_checksum, pseudo_header_checksum};
use crate::icmp::{
    gre_bytes, igmp_v2_report, ICMPV6_CODE_PORT_UNREACHABLE, ICMP_CODE_PORT_UNREACHABLE,
    ICMP_ECHO_REQUEST,
};
use crate::ip::{ip_number, ipv4_option, IpPath};
use crate::link::{arp_request, ipv4_multicast_mac, Host, ETHERTYPE_IPV4};
use crate::tcp::{TcpFlags, TcpSegment};

/// A ping request/reply pair on `path`, then a 1 s pause.
fn ping_pair(cap: &mut Capture, path: &mut IpPath, id: u16, seq: u16) {
    let payload = ping_payload(cap.next_ts());
    cap.push(path.echo_request(id, seq, &payload));
    cap.push(path.reversed().echo_reply(id, seq, &payload));
    cap.next_gap(SECONDS);
}

pub(super) fn icmp_echo() -> Scenario {
    let mut cap = Capture::new();
    let mut v4 = IpPath::new(CLIENT, SERVER);
    for seq in 1..=3 {
        ping_pair(&mut cap, &mut v4, 0x4a21, seq);
    }
    let mut v6 = IpPath::new(CLIENT6, SERVER6);
    for seq in 1..=2 {
        ping_pair(&mut cap, &mut v6, 0x4a22, seq);
    }
    Scenario::new(
        "icmp_echo",
        "Ping: 3 ICMP echo request/reply pairs 10.0.0.1 <-> 10.0.0.2 (id 0x4a21, seq \
         1..3, 1 s apart), then 2 ICMPv6 pairs fd00::1 <-> fd00::2 (id 0x4a22).",
        cap,
    )
}

pub(super) fn icmp_errors() -> Scenario {
    let mut cap = Capture::new();
    let mut out = IpPath::new(CLIENT, SERVER);
    let snmp = out.udp_packet(41000, 161, &snmp_get_sysdescr(0x0102_0304));
    cap.push(out.frame(&snmp));
    cap.push(out.reversed().dest_unreachable(ICMP_CODE_PORT_UNREACHABLE, &snmp));
    // An error about a flow the capture never saw (and that never existed).
    let resolver = Host::v4(9, [10, 0, 0, 9]);
    let ghost =
        IpPath::new(CLIENT, resolver).udp_packet(42000, 53, &dns_query(0x0bad, "ghost.test"));
    cap.push(IpPath::new(resolver, CLIENT).dest_unreachable(ICMP_CODE_PORT_UNREACHABLE, &ghost));
    let mut out6 = IpPath::new(CLIENT6, SERVER6);
    let snmp6 = out6.udp_packet(41000, 161, &snmp_get_sysdescr(0x0506_0708));
    cap.push(out6.frame(&snmp6));
    cap.push(out6.reversed().dest_unreachable(ICMPV6_CODE_PORT_UNREACHABLE, &snmp6));
    Scenario::new(
        "icmp_errors",
        "ICMP errors quoting UDP: 10.0.0.1:41000 -> 10.0.0.2:161 answered by port \
         unreachable (3/3); a port unreachable from 10.0.0.9 quoting a never-seen \
         10.0.0.1:42000 -> 10.0.0.9:53; fd00::1:41000 -> fd00::2:161 answered by \
         ICMPv6 1/4.",
        cap,
    )
}

pub(super) fn udp_dns() -> Scenario {
    let mut cap = Capture::new();
    let dns = Host::v4(53, [10, 0, 0, 53]);
    let mut q = IpPath::new(CLIENT, dns);
    let mut a = q.reversed();
    cap.push(q.udp(53000, 53, &dns_query(0x3c5e, "example.com")));
    cap.push(a.udp(53, 53000, &dns_a_answer(0x3c5e, "example.com", [93, 184, 216, 34], 3600)));
    cap.next_gap(40 * SECONDS);
    cap.push(q.udp(53000, 53, &dns_query(0x3c5f, "example.com")));
    cap.push(a.udp(53, 53000, &dns_a_answer(0x3c5f, "example.com", [93, 184, 216, 34], 3560)));
    Scenario::new(
        "udp_dns",
        "DNS A query for example.com 10.0.0.1:53000 -> 10.0.0.53:53 and its answer \
         (93.184.216.34); 40 s later the same source port queries again (the first \
         session should have expired after 30 s idle).",
        cap,
    )
}

pub(super) fn other_ip() -> Scenario {
    let mut cap = Capture::new();
    let all_igmpv3 = Ipv4Addr::new(224, 0, 0, 22);
    let mcast = Host::new(ipv4_multicast_mac(all_igmpv3), all_igmpv3.into());
    let mut igmp = IpPath::new(CLIENT, mcast)
        .with_ttl(1)
        .with_ipv4_options(ipv4_option::router_alert().to_vec());
    for group in [Ipv4Addr::new(239, 1, 1, 1), Ipv4Addr::new(239, 1, 1, 2)] {
        cap.push(igmp.ip_frame(ip_number::IGMP, &igmp_v2_report(group)));
    }
    let mut inner_path = IpPath::new(Host::v4(1, [192, 168, 1, 1]), Host::v4(2, [192, 168, 2, 1]));
    let inner = inner_path.icmp_packet(ICMP_ECHO_REQUEST, 0, [0x00, 0x07, 0x00, 0x01], b"GRE ping");
    let mut outer = IpPath::new(CLIENT, SERVER);
    cap.push(outer.ip_frame(ip_number::GRE, &gre_bytes(ETHERTYPE_IPV4, &inner)));
    Scenario::new(
        "other_ip",
        "IP protocols other than TCP/UDP/ICMP: two IGMPv2 membership reports (239.1.1.1, \
         239.1.1.2) from 10.0.0.1 to 224.0.0.22 with Router Alert (IHL 6), and a GRE \
         packet 10.0.0.1 -> 10.0.0.2 carrying IPv4/ICMP 192.168.1.1 -> 192.168.2.1.",
        cap,
    )
}

/// Recomputes the TCP or UDP checksum of an IPv4 packet with a 20-byte header.
fn fix_transport_checksum(packet: &mut [u8], path: &IpPath, checksum_at: usize) {
    let at = 20 + checksum_at;
    packet[at..at + 2].fill(0);
    let sum = pseudo_header_checksum(path.src.ip, path.dst.ip, packet[9], &packet[20..]);
    packet[at..at + 2].copy_from_slice(&sum.to_be_bytes());
}

pub(super) fn malformed() -> Scenario {
    let mut cap = Capture::new();
    let mut p = IpPath::new(CLIENT, SERVER);
    // 1. Shorter than an Ethernet header.
    cap.push(vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0]);
    // 2. IPv4 with IHL = 4 (16 bytes, below the 20-byte minimum).
    let mut pkt = p.udp_packet(40000, 9000, b"ihl=4");
    pkt[0] = 0x44;
    fix_ipv4_header_checksum(&mut pkt);
    cap.push(p.frame(&pkt));
    // 3. IPv4 total length 16, below the header length.
    let mut pkt = p.udp_packet(40000, 9000, b"total length < header");
    pkt[2..4].copy_from_slice(&16u16.to_be_bytes());
    fix_ipv4_header_checksum(&mut pkt);
    cap.push(p.frame(&pkt));
    // 4. TCP with data offset 3 (12 bytes, below the 20-byte minimum).
    let seg = TcpSegment {
        seq: 1,
        ack: 1,
        flags: TcpFlags::ACK,
        window: 1024,
        payload: b"doff=3".to_vec(),
        ..TcpSegment::default()
    };
    let mut pkt = p.tcp_packet(40000, 80, &seg);
    pkt[20 + 12] = 0x30;
    fix_transport_checksum(&mut pkt, &p, 16);
    cap.push(p.frame(&pkt));
    // 5. TCP with SYN and FIN set together (otherwise valid).
    let seg = TcpSegment {
        seq: 0x0101_0101,
        flags: TcpFlags::SYN | TcpFlags::FIN,
        window: 1024,
        ..TcpSegment::default()
    };
    cap.push(p.tcp(40000, 80, &seg));
    // 6. A UDP header cut to 4 bytes (ports only).
    let pkt = p.ip_frame(ip_number::UDP, &[0x9c, 0x40, 0x23, 0x28]);
    cap.push(pkt);
    // 7. IPv6 whose Hop-by-Hop header claims 24 bytes but only 8 are present.
    let mut p6 = IpPath::new(CLIENT6, SERVER6);
    let chopped = [ip_number::TCP, 2, 1, 4, 0, 0, 0, 0];
    cap.push(p6.ip_frame(ip_number::HOP_BY_HOP, &chopped));
    // 8. A valid ARP request: not IP at all.
    cap.push(arp_request(CLIENT.mac, Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)));
    Scenario::new(
        "malformed",
        "Frames a decoder must reject, one per frame: 10-byte frame, IPv4 IHL=4, IPv4 \
         total length < header, TCP data offset 3, TCP SYN+FIN, UDP header of 4 bytes, \
         IPv6 with a truncated Hop-by-Hop header, and a valid ARP request (not IP).",
        cap,
    )
}
