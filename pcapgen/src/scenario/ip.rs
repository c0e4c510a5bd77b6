//! IP-layer scenarios: IPv4/IPv6 fragmentation, IPv6 extension headers, VLANs.

use super::payload::{filler, http_get, ntp_reply, ntp_request, tls_client_hello};
use super::payload::{html_page, http_ok, tls_server_hello};
use super::{Scenario, CLIENT, CLIENT6, CLIENT_PORT, SERVER, SERVER6, SERVER_SYN};
use crate::capture::Capture;
use crate::frag::{fragment_ipv4, fragment_ipv6, fragmentable_part, ipv4_fragment};
use crate::ip::{IpPath, Ipv6Ext};
use crate::link::VlanTags;
use crate::tcp::{Side, SynOptions, TcpConversation};

pub(super) fn ipv4_fragments() -> Scenario {
    let mut cap = Capture::new();
    let mut path = IpPath::new(CLIENT, SERVER);
    let datagram = path.udp_packet(33000, 9000, &filler("udp-3000", 3000));
    let frags = fragment_ipv4(&datagram, &[0, 1480, 2960]);
    for i in [2, 0, 1] {
        cap.push(path.frame(&frags[i]));
    }
    cap.push(path.reversed().udp(9000, 33000, &filler("reply", 100)));
    Scenario::new(
        "ipv4_fragments",
        "A UDP datagram 10.0.0.1:33000 -> 10.0.0.2:9000 with 3000 bytes of payload in \
         3 IPv4 fragments (offsets 0, 1480, 2960) sent last, first, middle; then an \
         unfragmented 100-byte reply.",
        cap,
    )
}

pub(super) fn ipv4_fragments_overlap() -> Scenario {
    let mut cap = Capture::new();
    let mut path = IpPath::new(CLIENT, SERVER);
    // Teardrop-like: fragment 2 starts at 400, inside fragment 1 ([0, 808)), and
    // carries different bytes for [400, 808). The UDP checksum matches the bytes
    // of fragment 1 (first-wins reassembly).
    let datagram = path.udp_packet(33001, 9000, &filler("original", 1200));
    let part = fragmentable_part(&datagram).to_vec();
    cap.push(path.frame(&ipv4_fragment(&datagram, 0, &part[..808], true)));
    let mut second = part[400..].to_vec();
    second[..408].fill(b'X');
    cap.push(path.frame(&ipv4_fragment(&datagram, 400, &second, false)));
    // A well-formed fragmented datagram that must still reassemble.
    let good = path.udp_packet(33002, 9000, &filler("well-formed", 2000));
    for f in fragment_ipv4(&good, &[1480]) {
        cap.push(path.frame(&f));
    }
    Scenario::new(
        "ipv4_fragments_overlap",
        "An overlapping (teardrop-like) IPv4 fragment pair: 10.0.0.1:33001 -> :9000, \
         fragment 2 starts at offset 400 inside fragment 1 ([0,808)) with different \
         bytes; then a well-formed 2-fragment datagram from port 33002 that must \
         still reassemble.",
        cap,
    )
}

pub(super) fn ipv6_fragments() -> Scenario {
    let mut cap = Capture::new();
    let mut path = IpPath::new(CLIENT6, SERVER6);
    let datagram = path.udp_packet(33000, 9000, &filler("udp6-3000", 3000));
    let frags = fragment_ipv6(&datagram, 0x5eed_0001, &[0, 1448, 2896]);
    for i in [1, 2, 0] {
        cap.push(path.frame(&frags[i]));
    }
    let small = path.udp_packet(33001, 9000, b"atomic fragment: offset 0, M=0\n");
    for f in fragment_ipv6(&small, 0x5eed_0002, &[]) {
        cap.push(path.frame(&f));
    }
    Scenario::new(
        "ipv6_fragments",
        "UDP fd00::1:33000 -> fd00::2:9000 with 3000 bytes of payload in 3 fragments \
         (Fragment header, offsets 0, 1448, 2896) sent middle, last, first; then an \
         atomic fragment (offset 0, M=0) carrying a small UDP datagram from 33001.",
        cap,
    )
}

pub(super) fn ipv6_ext_headers() -> Scenario {
    let mut cap = Capture::new();
    let to_server = IpPath::new(CLIENT6, SERVER6).with_ipv6_ext(vec![
        Ipv6Ext::HopByHop(vec![]),
        Ipv6Ext::DestinationOptions(vec![]),
        Ipv6Ext::routing_type0(),
    ]);
    let mut c = TcpConversation::new(to_server, CLIENT_PORT, 443, 0xc1e0_0000, 0x5e40_0000);
    cap.push_all(c.handshake(&SynOptions::linux(1440), &SynOptions::linux(1440)));
    cap.push(c.data(Side::Client, &tls_client_hello("www.example.test")));
    cap.push(c.data(Side::Server, &tls_server_hello()));
    cap.push(c.ack(Side::Client));
    cap.push_all(c.close(Side::Client));
    Scenario::new(
        "ipv6_ext_headers",
        "TCP fd00::1:40000 -> fd00::2:443 (TLS ClientHello with SNI www.example.test, \
         ServerHello, FIN close) where every client packet carries Hop-by-Hop, \
         Destination Options and Routing (type 0, segments left 0) headers.",
        cap,
    )
}

pub(super) fn vlan() -> Scenario {
    let mut cap = Capture::new();
    ntp_exchange(&mut cap, VlanTags::Single(100));
    let qinq = IpPath::new(CLIENT, SERVER).with_vlan(VlanTags::Double { outer: 200, inner: 300 });
    let mut c = TcpConversation::new(qinq, 40002, 80, 0x0aaa_0000, 0x0bbb_0000);
    cap.push_all(c.handshake(&SERVER_SYN, &SERVER_SYN));
    cap.push(c.data(Side::Client, &http_get("intranet.example.test", "/")));
    cap.push(c.data(Side::Server, &http_ok(&html_page("intranet"))));
    cap.push(c.ack(Side::Client));
    cap.push_all(c.close(Side::Client));
    ntp_exchange(&mut cap, VlanTags::Single(101));
    Scenario::new(
        "vlan",
        "NTP request/response 10.0.0.1:50123 -> 10.0.0.2:123 on 802.1Q VLAN 100; an \
         HTTP connection 10.0.0.1:40002 -> :80 double-tagged (802.1ad 200, 802.1Q \
         300); the same NTP 5-tuple again on VLAN 101 (a separate session).",
        cap,
    )
}

/// An NTP request 10.0.0.1:50123 -> 10.0.0.2:123 and its reply, on `vlan`.
pub(super) fn ntp_exchange(cap: &mut Capture, vlan: VlanTags) {
    let mut out = IpPath::new(CLIENT, SERVER).with_vlan(vlan);
    let mut back = out.reversed();
    let sent = cap.next_ts();
    cap.push(out.udp(50123, 123, &ntp_request(sent)));
    let now = cap.next_ts();
    cap.push(back.udp(123, 50123, &ntp_reply(sent, now)));
}
