//! Traffic of a small application, for the policy tests: learn it in Discover mode, then
//! enforce the learned policy. `policy_baseline` is the normal traffic; `policy_extra` is
//! the same traffic plus one connection nobody learned (a TCP connection to a database
//! port that is not normally used), and `policy_midstream_extra` the same plus an
//! unlearned connection already established when the capture starts.

use super::payload::{
    dns_a_answer, dns_query, http_get, http_ok, ping_payload, REDIS_PING, REDIS_PONG,
};
use super::Scenario;
use crate::capture::{Capture, MILLIS};
use crate::ip::IpPath;
use crate::link::Host;
use crate::tcp::{Side, SynOptions, TcpConversation};

const FRONTEND: Host = Host::v4(10, [10, 1, 0, 10]);
const API: Host = Host::v4(20, [10, 1, 0, 20]);
const CACHE: Host = Host::v4(30, [10, 1, 0, 30]);
const DB: Host = Host::v4(40, [10, 1, 0, 40]);
const DNS: Host = Host::v4(53, [10, 1, 0, 53]);

fn baseline(cap: &mut Capture) {
    // frontend resolves the API, calls it twice over HTTP.
    let mut q = IpPath::new(FRONTEND, DNS);
    cap.push(q.udp(41000, 53, &dns_query(0x1111, "api.shop.internal")));
    cap.push(q.reversed().udp(
        53,
        41000,
        &dns_a_answer(0x1111, "api.shop.internal", [10, 1, 0, 20], 60),
    ));
    for (i, port) in [(0u32, 42000u16), (1, 42001)] {
        let mut c =
            TcpConversation::new(IpPath::new(FRONTEND, API), port, 8080, 0x1000 + i, 0x9000 + i);
        cap.push_all(c.handshake(&SynOptions::linux(1460), &SynOptions::linux(1460)));
        cap.push(c.data(Side::Client, &http_get("api.shop.internal", "/cart")));
        cap.push(c.data(Side::Server, &http_ok("{\"items\":[]}")));
        cap.push_all(c.close(Side::Client));
        cap.next_gap(5 * MILLIS);
    }
    // api reads the cache (Redis) and the database (PostgreSQL port).
    let mut r = TcpConversation::new(IpPath::new(API, CACHE), 43000, 6379, 0x2000, 0xa000);
    cap.push_all(r.handshake(&SynOptions::linux(1460), &SynOptions::linux(1460)));
    cap.push(r.data(Side::Client, REDIS_PING));
    cap.push(r.data(Side::Server, REDIS_PONG));
    cap.push_all(r.close(Side::Client));
    let mut d = TcpConversation::new(IpPath::new(API, DB), 44000, 5432, 0x3000, 0xb000);
    cap.push_all(d.handshake(&SynOptions::linux(1460), &SynOptions::linux(1460)));
    cap.push(d.data(Side::Client, b"\x00\x00\x00\x08\x04\xd2\x16\x2f"));
    cap.push(d.data(Side::Server, b"N"));
    cap.push_all(d.close(Side::Client));
    // The frontend pings the API.
    let mut p = IpPath::new(FRONTEND, API);
    let payload = ping_payload(cap.next_ts());
    cap.push(p.echo_request(0x4242, 1, &payload));
    cap.push(p.reversed().echo_reply(0x4242, 1, &payload));
}

pub(super) fn policy_baseline() -> Scenario {
    let mut cap = Capture::new();
    baseline(&mut cap);
    Scenario::new(
        "policy_baseline",
        "A small application's normal traffic: DNS, two HTTP calls frontend->api:8080, \
         api->cache Redis, api->db:5432, a ping frontend->api.",
        cap,
    )
}

pub(super) fn policy_extra() -> Scenario {
    let mut cap = Capture::new();
    baseline(&mut cap);
    // The frontend talks to the database directly: never learned.
    let mut x = TcpConversation::new(IpPath::new(FRONTEND, DB), 45000, 5432, 0x5000, 0xc000);
    cap.push_all(x.handshake(&SynOptions::linux(1460), &SynOptions::linux(1460)));
    cap.push(x.data(Side::Client, b"\x00\x00\x00\x08\x04\xd2\x16\x2f"));
    cap.push(x.data(Side::Server, b"N"));
    cap.push_all(x.close(Side::Client));
    Scenario::new(
        "policy_extra",
        "policy_baseline plus one unlearned TCP connection frontend->db:5432 (handshake, \
         data, close).",
        cap,
    )
}

pub(super) fn policy_midstream_extra() -> Scenario {
    let mut cap = Capture::new();
    baseline(&mut cap);
    // An unlearned connection that was established before the capture (and the policy)
    // started: the first packet seen is client data.
    let mut x = TcpConversation::new(IpPath::new(FRONTEND, CACHE), 46000, 6379, 0x6000, 0xd000);
    let _ = x.handshake(&SynOptions::linux(1460), &SynOptions::linux(1460));
    cap.push(x.data(Side::Client, REDIS_PING));
    cap.push(x.data(Side::Server, REDIS_PONG));
    cap.push(x.data(Side::Client, REDIS_PING));
    Scenario::new(
        "policy_midstream_extra",
        "policy_baseline plus an unlearned TCP connection frontend->cache:6379 already \
         established when the capture starts (client data first).",
        cap,
    )
}

pub(super) fn policy_fqdn_vhost() -> Scenario {
    use super::payload::{tls_client_hello, tls_server_hello};
    let mut cap = Capture::new();
    // The frontend resolves a partner API, then calls it over TLS (SNI) and plain HTTP
    // (Host); then it calls an address nobody resolved, and the partner's address with a
    // Host header naming another site.
    let partner = Host::v4(60, [203, 0, 113, 60]);
    let unknown = Host::v4(61, [203, 0, 113, 61]);
    let mut q = IpPath::new(FRONTEND, DNS);
    cap.push(q.udp(41010, 53, &dns_query(0x2222, "api.partner.example")));
    cap.push(q.reversed().udp(
        53,
        41010,
        &dns_a_answer(0x2222, "api.partner.example", [203, 0, 113, 60], 300),
    ));
    let mut t = TcpConversation::new(IpPath::new(FRONTEND, partner), 47000, 443, 0x7000, 0xe000);
    cap.push_all(t.handshake(&SynOptions::linux(1460), &SynOptions::linux(1460)));
    cap.push(t.data(Side::Client, &tls_client_hello("api.partner.example")));
    cap.push(t.data(Side::Server, &tls_server_hello()));
    cap.push_all(t.close(Side::Client));
    let mut h = TcpConversation::new(IpPath::new(FRONTEND, partner), 47001, 80, 0x7100, 0xe100);
    cap.push_all(h.handshake(&SynOptions::linux(1460), &SynOptions::linux(1460)));
    cap.push(h.data(Side::Client, &http_get("api.partner.example", "/v1/orders")));
    cap.push(h.data(Side::Server, &http_ok("{}")));
    cap.push_all(h.close(Side::Client));
    let mut u = TcpConversation::new(IpPath::new(FRONTEND, unknown), 47002, 443, 0x7200, 0xe200);
    cap.push_all(u.handshake(&SynOptions::linux(1460), &SynOptions::linux(1460)));
    cap.push(u.data(Side::Client, &tls_client_hello("api.partner.example")));
    cap.push(u.data(Side::Server, &tls_server_hello()));
    cap.push_all(u.close(Side::Client));
    let mut e = TcpConversation::new(IpPath::new(FRONTEND, partner), 47003, 80, 0x7300, 0xe300);
    cap.push_all(e.handshake(&SynOptions::linux(1460), &SynOptions::linux(1460)));
    cap.push(e.data(Side::Client, &http_get("evil.example", "/")));
    cap.push(e.data(Side::Server, &http_ok("{}")));
    cap.push_all(e.close(Side::Client));
    Scenario::new(
        "policy_fqdn_vhost",
        "DNS answer api.partner.example -> 203.0.113.60; TLS (SNI api.partner.example) and \
         HTTP (Host api.partner.example) to it; TLS to the unresolved 203.0.113.61; HTTP to \
         203.0.113.60 with Host evil.example.",
        cap,
    )
}
