//! The README demo: a little of everything, in one realistic-looking capture.

use super::ip::ntp_exchange;
use super::payload::{
    dns_a_answer, dns_query, filler, html_page, http_get, http_ok, ping_payload, REDIS_PING,
    REDIS_PONG,
};
use super::{Scenario, CLIENT, CLIENT6, CLIENT_SYN, SERVER, SERVER6, SERVER_SYN};
use crate::capture::{Capture, MILLIS};
use crate::frag::fragment_ipv4;
use crate::ip::IpPath;
use crate::link::{Host, VlanTags};
use crate::tcp::{Side, SynOptions, TcpConversation};

pub(super) fn demo() -> Scenario {
    let mut cap = Capture::new();
    // Name lookup.
    let dns = Host::v4(53, [10, 0, 0, 53]);
    let mut q = IpPath::new(CLIENT, dns);
    cap.push(q.udp(53001, 53, &dns_query(0x7e01, "web.internal.example")));
    cap.next_gap(2 * MILLIS);
    cap.push(q.reversed().udp(
        53,
        53001,
        &dns_a_answer(0x7e01, "web.internal.example", [10, 0, 0, 2], 300),
    ));

    // HTTP over IPv4 with a retransmitted request.
    let mut web =
        TcpConversation::new(IpPath::new(CLIENT, SERVER), 40010, 80, 0x3c3c_0000, 0x4d4d_0000);
    cap.push_all(web.handshake(&CLIENT_SYN, &SERVER_SYN));
    let req = web.data(Side::Client, &http_get("web.internal.example", "/"));
    cap.push(req.clone());
    cap.next_gap(200 * MILLIS);
    cap.push(req);
    cap.push(web.ack(Side::Server));
    cap.push(web.data(Side::Server, &http_ok(&html_page("web.internal.example"))));
    cap.push(web.ack(Side::Client));
    cap.push_all(web.close(Side::Client));

    // A ping.
    let mut ping = IpPath::new(CLIENT, SERVER);
    let payload = ping_payload(cap.next_ts());
    cap.push(ping.echo_request(0x0d0e, 1, &payload));
    cap.push(ping.reversed().echo_reply(0x0d0e, 1, &payload));

    // Redis over IPv6.
    let mut redis =
        TcpConversation::new(IpPath::new(CLIENT6, SERVER6), 40020, 6379, 0x6e6e_0000, 0x7f7f_0000);
    cap.push_all(redis.handshake(&SynOptions::linux(1440), &SynOptions::linux(1440)));
    cap.push(redis.data(Side::Client, REDIS_PING));
    cap.push(redis.data(Side::Server, REDIS_PONG));
    cap.push(redis.data(Side::Client, b"*3\r\n$3\r\nSET\r\n$4\r\ndemo\r\n$2\r\nok\r\n"));
    cap.push(redis.data(Side::Server, b"+OK\r\n"));
    cap.push_all(redis.close(Side::Client));

    // NTP on VLAN 100.
    ntp_exchange(&mut cap, VlanTags::Single(100));

    // A fragmented UDP datagram and its reply.
    let mut bulk = IpPath::new(CLIENT, SERVER);
    let datagram = bulk.udp_packet(33000, 9000, &filler("bulk", 2000));
    for f in fragment_ipv4(&datagram, &[1480]) {
        cap.push(bulk.frame(&f));
    }
    cap.push(bulk.reversed().udp(9000, 33000, b"bulk received: 2000 bytes\n"));

    Scenario::new(
        "demo",
        "README demo: DNS lookup, HTTP over IPv4 with a retransmitted request, a ping, \
         Redis over IPv6, NTP on VLAN 100 and a fragmented UDP datagram.",
        cap,
    )
}
