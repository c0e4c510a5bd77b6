//! Precedence cases of the compiled matcher; each answer is also checked against the
//! reference.

use super::*;
use crate::app::AppId;
use crate::packet::{addr_from_v4, proto};
use crate::policy::{reference, IpNet, PortSpec, RuleAction};

fn a4(b: [u8; 4]) -> u128 {
    addr_from_v4(b)
}

fn host4(b: [u8; 4]) -> Peer {
    Peer::Net(IpNet::host(false, a4(b)))
}

fn cidr4(b: [u8; 4], prefix: u8) -> Peer {
    Peer::Net(IpNet::cidr(false, a4(b), prefix).unwrap())
}

fn a6(last: u16) -> u128 {
    0x2001_0db8_u128 << 96 | u128::from(last)
}

fn host6(last: u16) -> Peer {
    Peer::Net(IpNet::host(true, a6(last)))
}

fn rule(id: u32, from: Peer, to: Peer, port: PortSpec, action: RuleAction) -> Rule {
    Rule {
        id,
        from: vec![from],
        to: vec![to],
        ports: vec![port],
        apps: vec![],
        action,
        vhost: false,
    }
}

fn allow(id: u32, from: Peer, to: Peer, port: PortSpec) -> Rule {
    rule(id, from, to, port, RuleAction::Allow)
}

fn deny(id: u32, from: Peer, to: Peer, port: PortSpec) -> Rule {
    rule(id, from, to, port, RuleAction::Deny)
}

fn tcp(p: u16) -> PortSpec {
    PortSpec::Tcp(p, p)
}

const C: [u8; 4] = [10, 0, 0, 5];
const S: [u8; 4] = [10, 0, 1, 7];

/// A TCP query C → S:`port` with a known (non-app-rule) application.
fn q4(port: u16) -> Query<'static> {
    Query {
        v6: false,
        client: a4(C),
        server: a4(S),
        proto: proto::TCP,
        port,
        app: AppState::Known(AppId::DNS),
        client_external: false,
        server_external: false,
        client_names: &[],
        server_names: &[],
        vhost: None,
    }
}

/// The compiled answer, asserted equal to the reference's; `(rule id, decision)`.
fn check(rules: &[Rule], q: &Query<'_>) -> Option<(u32, Decision)> {
    let got = CompiledRules::compile(rules).lookup(q);
    assert_eq!(got, reference::first_match(rules, q), "query {q:?}");
    got.map(|m| (m.rule_id, m.decision))
}

#[test]
fn exact_after_range_loses_to_the_range() {
    let rules = [
        deny(1, cidr4([10, 0, 0, 0], 24), cidr4([10, 0, 1, 0], 24), tcp(80)),
        allow(2, host4(C), host4(S), tcp(80)),
    ];
    assert_eq!(check(&rules, &q4(80)), Some((1, Decision::Deny)));
    assert_eq!(check(&rules, &q4(81)), None);
    // Also when the range is indexed on the client, the port, or is an IP range.
    for range in [
        deny(1, cidr4([10, 0, 0, 0], 29), Peer::Any, tcp(80)),
        deny(1, Peer::Any, Peer::Any, PortSpec::Tcp(1, 1000)),
        deny(
            1,
            Peer::Net(IpNet { v6: false, lo: a4([10, 0, 0, 1]), hi: a4([10, 0, 0, 9]) }),
            Peer::Any,
            PortSpec::Any,
        ),
    ] {
        let rules = [range, allow(2, host4(C), host4(S), tcp(80))];
        assert_eq!(check(&rules, &q4(80)), Some((1, Decision::Deny)));
    }
}

#[test]
fn range_after_exact_loses_to_the_exact() {
    let rules = [
        allow(2, host4(C), host4(S), tcp(80)),
        deny(1, cidr4([10, 0, 0, 0], 8), cidr4([10, 0, 0, 0], 8), PortSpec::Any),
    ];
    assert_eq!(check(&rules, &q4(80)), Some((2, Decision::Allow)));
    assert_eq!(check(&rules, &q4(443)), Some((1, Decision::Deny)));
}

#[test]
fn duplicate_exact_rules_first_wins() {
    let rules = [allow(1, host4(C), host4(S), tcp(80)), deny(2, host4(C), host4(S), tcp(80))];
    assert_eq!(check(&rules, &q4(80)), Some((1, Decision::Allow)));
}

#[test]
fn fqdn_and_ip_rules_by_order() {
    let fqdn = allow(1, Peer::Any, Peer::Fqdn("*.example.com".into()), tcp(443));
    let ip = deny(2, host4(C), host4(S), tcp(443));
    let names: &[&str] = &["api.example.com"];
    let named = Query { server_names: names, ..q4(443) };
    let rules = [fqdn.clone(), ip.clone()];
    assert_eq!(check(&rules, &named), Some((1, Decision::Allow)));
    assert_eq!(check(&rules, &q4(443)), Some((2, Decision::Deny)));
    let rules = [ip, fqdn];
    assert_eq!(check(&rules, &named), Some((2, Decision::Deny)));
    // A name the pattern does not cover.
    let other: &[&str] = &["example.com"];
    let rules = [allow(1, Peer::Any, Peer::Fqdn("*.example.com".into()), tcp(443))];
    assert_eq!(check(&rules, &Query { server_names: other, ..q4(443) }), None);
    // Client side names.
    let rules = [allow(1, Peer::Fqdn("client.local".into()), Peer::Any, PortSpec::Any)];
    let cn: &[&str] = &["client.local"];
    assert_eq!(check(&rules, &Query { client_names: cn, ..q4(1) }), Some((1, Decision::Allow)));
    assert_eq!(check(&rules, &Query { server_names: cn, ..q4(1) }), None);
}

#[test]
fn fqdn_rule_with_address_entries_matches_without_names() {
    let rules = [Rule {
        id: 7,
        from: vec![Peer::Any],
        to: vec![Peer::Fqdn("db.example.com".into()), host4(S)],
        ports: vec![tcp(5432)],
        apps: vec![],
        action: RuleAction::Allow,
        vhost: false,
    }];
    assert_eq!(check(&rules, &q4(5432)), Some((7, Decision::Allow)));
}

#[test]
fn external_versus_any() {
    let rules = [
        allow(1, Peer::External, host4(S), tcp(80)),
        deny(2, Peer::Any, host4(S), tcp(80)),
        allow(3, Peer::Any, Peer::External, PortSpec::Any),
    ];
    let ext = Query { client_external: true, ..q4(80) };
    assert_eq!(check(&rules, &ext), Some((1, Decision::Allow)));
    assert_eq!(check(&rules, &q4(80)), Some((2, Decision::Deny)));
    let out = Query { server_external: true, server: a4([8, 8, 8, 8]), ..q4(53) };
    assert_eq!(check(&rules, &out), Some((3, Decision::Allow)));
    assert_eq!(check(&rules, &Query { server_external: false, ..out }), None);
    // External on both sides, IPv6 too.
    let rules = [deny(4, Peer::External, Peer::External, PortSpec::Any)];
    let both = Query { client_external: true, server_external: true, ..q6(1, 2, 80) };
    assert_eq!(check(&rules, &both), Some((4, Decision::Deny)));
    assert_eq!(check(&rules, &Query { client_external: false, ..both }), None);
}

#[test]
fn external_flag_on_an_exact_point() {
    // An External range rule holding an exact point: a candidate that needs the flag.
    let rules = [deny(1, Peer::External, host4(S), tcp(80)), allow(2, host4(C), host4(S), tcp(80))];
    assert_eq!(check(&rules, &q4(80)), Some((2, Decision::Allow)));
    let ext = Query { client_external: true, ..q4(80) };
    assert_eq!(check(&rules, &ext), Some((1, Decision::Deny)));
}

fn with_apps(mut r: Rule, apps: &[AppId]) -> Rule {
    r.apps = apps.to_vec();
    r
}

#[test]
fn application_rules() {
    let rules = [
        with_apps(allow(1, host4(C), host4(S), tcp(80)), &[AppId::HTTP, AppId::TLS]),
        deny(2, host4(C), host4(S), tcp(80)),
    ];
    let at = |app| Query { app, ..q4(80) };
    assert_eq!(check(&rules, &at(AppState::Pending)), Some((1, Decision::CheckApp)));
    assert_eq!(check(&rules, &at(AppState::Unidentified)), Some((2, Decision::Deny)));
    assert_eq!(check(&rules, &at(AppState::Known(AppId::TLS))), Some((1, Decision::Allow)));
    assert_eq!(check(&rules, &at(AppState::Known(AppId::SSH))), Some((2, Decision::Deny)));
    // The app rule second: the first rule decides, no CheckApp.
    let rules = [
        deny(2, cidr4([10, 0, 0, 0], 16), host4(S), tcp(80)),
        with_apps(allow(1, host4(C), host4(S), tcp(80)), &[AppId::HTTP]),
    ];
    assert_eq!(check(&rules, &at(AppState::Pending)), Some((2, Decision::Deny)));
    // A range app rule before an exact rule.
    let rules = [
        with_apps(deny(1, Peer::Any, cidr4([10, 0, 1, 0], 24), PortSpec::Any), &[AppId::SSH]),
        allow(2, host4(C), host4(S), tcp(80)),
    ];
    assert_eq!(check(&rules, &at(AppState::Pending)), Some((1, Decision::CheckApp)));
    assert_eq!(check(&rules, &at(AppState::Known(AppId::SSH))), Some((1, Decision::Deny)));
    assert_eq!(check(&rules, &at(AppState::Known(AppId::HTTP))), Some((2, Decision::Allow)));
    assert_eq!(check(&rules, &at(AppState::Unidentified)), Some((2, Decision::Allow)));
}

#[test]
fn vhost_rules() {
    let mut v = allow(1, Peer::Any, Peer::Fqdn("*.example.com".into()), tcp(443));
    v.vhost = true;
    let rules = [v, deny(2, Peer::Any, Peer::Any, PortSpec::Any)];
    let names: &[&str] = &["www.example.com"];
    let named = Query { server_names: names, ..q4(443) };
    assert_eq!(check(&rules, &named), Some((1, Decision::CheckVhost)));
    let hit = Query { vhost: Some("shop.example.com"), ..named };
    assert_eq!(check(&rules, &hit), Some((1, Decision::Allow)));
    let miss = Query { vhost: Some("evil.org"), ..named };
    assert_eq!(check(&rules, &miss), Some((2, Decision::Deny)));
    assert_eq!(check(&rules, &q4(443)), Some((2, Decision::Deny)));
    // A vhost rule without FQDN peers (as the reference reads it): CheckVhost while the
    // vhost is unknown, then never matches.
    let mut ip = allow(3, host4(C), host4(S), tcp(443));
    ip.vhost = true;
    let rules = [ip, deny(4, host4(C), host4(S), tcp(443))];
    assert_eq!(check(&rules, &q4(443)), Some((3, Decision::CheckVhost)));
    assert_eq!(check(&rules, &Query { vhost: Some("a"), ..q4(443) }), Some((4, Decision::Deny)));
    // Vhost and apps: the vhost is checked first.
    let mut both =
        with_apps(allow(5, Peer::Any, Peer::Fqdn("a.io".into()), tcp(80)), &[AppId::HTTP]);
    both.vhost = true;
    let rules = [both];
    let names: &[&str] = &["a.io"];
    let base = Query { server_names: names, app: AppState::Pending, ..q4(80) };
    assert_eq!(check(&rules, &base), Some((5, Decision::CheckVhost)));
    assert_eq!(
        check(&rules, &Query { vhost: Some("a.io"), ..base }),
        Some((5, Decision::CheckApp))
    );
}

fn q6(client: u16, server: u16, port: u16) -> Query<'static> {
    Query { v6: true, client: a6(client), server: a6(server), ..q4(port) }
}

#[test]
fn families_never_cross() {
    // The same numbers, other family.
    let v4_as_v6 = Query { v6: true, ..q4(80) };
    let rules = [allow(1, host4(C), host4(S), tcp(80))];
    assert_eq!(check(&rules, &v4_as_v6), None);
    let rules = [allow(1, cidr4([10, 0, 0, 0], 8), Peer::Any, PortSpec::Any)];
    assert_eq!(check(&rules, &v4_as_v6), None);
    let rules = [allow(1, Peer::Net(IpNet::cidr(true, 0, 0).unwrap()), Peer::Any, PortSpec::Any)];
    assert_eq!(check(&rules, &q4(80)), None);
    assert_eq!(check(&rules, &q6(1, 2, 80)), Some((1, Decision::Allow)));
    // A v4 client with a v6 server never matches anything.
    let rules = [allow(1, host4(C), host6(2), tcp(80)), deny(2, Peer::Any, Peer::Any, tcp(80))];
    assert_eq!(check(&rules, &q4(80)), Some((2, Decision::Deny)));
    assert_eq!(check(&rules, &q6(1, 2, 80)), Some((2, Decision::Deny)));
    // Exact IPv6.
    let rules = [deny(9, host6(1), host6(2), PortSpec::Udp(53, 53))];
    let q = Query { proto: proto::UDP, ..q6(1, 2, 53) };
    assert_eq!(check(&rules, &q), Some((9, Decision::Deny)));
    assert_eq!(check(&rules, &Query { proto: proto::TCP, ..q }), None);
}

#[test]
fn port_range_boundaries() {
    let rules = [allow(1, Peer::Any, Peer::Any, PortSpec::Tcp(1000, 2000))];
    assert_eq!(check(&rules, &q4(999)), None);
    assert_eq!(check(&rules, &q4(1000)), Some((1, Decision::Allow)));
    assert_eq!(check(&rules, &q4(2000)), Some((1, Decision::Allow)));
    assert_eq!(check(&rules, &q4(2001)), None);
    assert_eq!(check(&rules, &Query { proto: proto::UDP, ..q4(1500) }), None);
    let rules = [allow(1, host4(C), host4(S), PortSpec::Udp(0, 65535))];
    assert_eq!(check(&rules, &Query { proto: proto::UDP, ..q4(0) }), Some((1, Decision::Allow)));
    let q = Query { proto: proto::UDP, ..q4(65535) };
    assert_eq!(check(&rules, &q), Some((1, Decision::Allow)));
    assert_eq!(check(&rules, &q4(53)), None);
}

#[test]
fn icmp_proto_and_any_port_specs() {
    let rules = [
        allow(1, host4(C), host4(S), PortSpec::Icmp),
        deny(2, host4(C), host4(S), PortSpec::Proto(47)),
        allow(3, host4(C), host4(S), PortSpec::Any),
    ];
    let p = |proto, port| Query { proto, port, ..q4(0) };
    assert_eq!(check(&rules, &p(proto::ICMP, 0)), Some((1, Decision::Allow)));
    assert_eq!(check(&rules, &p(proto::ICMPV6, 0)), Some((1, Decision::Allow)));
    assert_eq!(check(&rules, &p(47, 0)), Some((2, Decision::Deny)));
    assert_eq!(check(&rules, &p(47, 9)), Some((2, Decision::Deny)));
    assert_eq!(check(&rules, &p(proto::TCP, 22)), Some((3, Decision::Allow)));
    assert_eq!(check(&rules, &p(255, 65535)), Some((3, Decision::Allow)));
    let rules = [
        deny(4, host4(C), host4(S), PortSpec::Proto(proto::TCP)),
        allow(5, host4(C), host4(S), tcp(80)),
    ];
    assert_eq!(check(&rules, &q4(80)), Some((4, Decision::Deny)));
}

#[test]
fn empty_lists_never_match() {
    let full = allow(1, Peer::Any, Peer::Any, PortSpec::Any);
    let empty_from = Rule { from: vec![], ..full.clone() };
    let empty_to = Rule { to: vec![], ..full.clone() };
    let empty_ports = Rule { ports: vec![], ..full.clone() };
    let empty_range = Rule { ports: vec![PortSpec::Tcp(9, 8)], ..full.clone() };
    let bad_net = Rule { from: vec![Peer::Net(IpNet { v6: false, lo: 9, hi: 8 })], ..full };
    for r in [empty_from, empty_to, empty_ports, empty_range, bad_net] {
        assert_eq!(check(std::slice::from_ref(&r), &q4(9)), None);
        let q = Query { client_external: true, server_external: true, ..q4(80) };
        assert_eq!(
            check(&[r.clone(), deny(2, host4(C), host4(S), tcp(80))], &q),
            Some((2, Decision::Deny))
        );
    }
    let none = CompiledRules::compile(&[]);
    assert!(none.is_empty());
    assert_eq!(none.len(), 0);
    assert_eq!(none.lookup(&q4(80)), None);
}

#[test]
fn multi_entry_rules_split() {
    let r = Rule {
        id: 3,
        from: vec![host4([10, 0, 0, 1]), host4(C), cidr4([192, 168, 0, 0], 16)],
        to: vec![host6(5), host4(S)],
        ports: vec![tcp(22), PortSpec::Udp(53, 54), tcp(80)],
        apps: vec![],
        action: RuleAction::Deny,
        vhost: false,
    };
    let rules = [allow(1, host4([1, 1, 1, 1]), host4(S), tcp(80)), r];
    let c = CompiledRules::compile(&rules);
    assert_eq!(c.len(), 2);
    for port in [21, 22, 53, 54, 80] {
        for proto in [proto::TCP, proto::UDP] {
            for client in [a4([10, 0, 0, 1]), a4(C), a4([192, 168, 3, 4]), a4([172, 16, 0, 1])] {
                let q = Query { client, proto, port, ..q4(port) };
                assert_eq!(c.lookup(&q), reference::first_match(&rules, &q), "{q:?}");
            }
        }
    }
}

#[test]
fn unmapped_v4_addresses_follow_the_reference() {
    // Not produced by the decoder, but the answer must still be the reference's.
    let rules = [
        allow(1, Peer::Net(IpNet { v6: false, lo: 5, hi: 10 }), Peer::Any, PortSpec::Any),
        allow(
            2,
            Peer::Net(IpNet { v6: false, lo: 7, hi: 7 }),
            Peer::Net(IpNet { v6: false, lo: 8, hi: 8 }),
            tcp(1),
        ),
        deny(3, cidr4([0, 0, 0, 0], 0), Peer::Any, PortSpec::Any),
    ];
    for client in [4, 5, 7, 10, 11, a4([0, 0, 0, 7]), u128::MAX] {
        let q = Query { client, server: 8, ..q4(1) };
        check(&rules, &q);
    }
}

#[test]
fn crowded_point_overflows_to_the_range_index() {
    // More conditional range rules hold the point than a candidate list keeps.
    let mut rules: Vec<Rule> = (0..(MAX_CANDIDATES as u32 * 5))
        .map(|i| {
            let app = AppId::ALL[i as usize % AppId::ALL.len()];
            with_apps(
                deny(100 + i, cidr4([10, 0, 0, 0], 8 + (i % 16) as u8), Peer::Any, PortSpec::Any),
                &[app],
            )
        })
        .collect();
    rules.push(allow(1, host4(C), host4(S), tcp(80)));
    let c = CompiledRules::compile(&rules);
    assert!(c.exact4.values().any(|p| matches!(p, Point::Cands { overflow: true, .. })));
    for app in AppId::ALL
        .iter()
        .map(|&a| AppState::Known(a))
        .chain([AppState::Pending, AppState::Unidentified])
    {
        let q = Query { app, ..q4(80) };
        assert_eq!(c.lookup(&q), reference::first_match(&rules, &q));
    }
}

#[test]
fn wide_rules_are_checked_whole() {
    let many = |base: u8| (0..100u8).map(|i| host4([10, base, 0, i])).collect::<Vec<_>>();
    let wide = Rule {
        id: 5,
        from: many(1),
        to: many(2),
        ports: vec![tcp(80)],
        apps: vec![],
        action: RuleAction::Deny,
        vhost: false,
    };
    let rules = [allow(1, host4([10, 1, 0, 99]), host4([10, 2, 0, 98]), tcp(443)), wide];
    let c = CompiledRules::compile(&rules);
    assert_eq!(c.wide, vec![1]);
    assert!(c.v4.atoms.is_empty() && c.exact4.len() == 1);
    for (client, server, port) in [(99, 98, 80), (99, 98, 443), (0, 0, 80), (100, 0, 80)] {
        let q = Query {
            client: a4([10, 1, 0, client]),
            server: a4([10, 2, 0, server]),
            port,
            ..q4(port)
        };
        assert_eq!(c.lookup(&q), reference::first_match(&rules, &q), "{q:?}");
    }
}

#[test]
fn nested_wide_ranges_stay_bounded() {
    // 2000 nested ranges on both address sides plus 2000 exact points inside all of them:
    // storage grows as n log n, candidate lists stay capped.
    let n = 2000u32;
    let mut rules: Vec<Rule> = (0..n)
        .map(|i| {
            let lo = a4([10, 0, 0, 0]) + u128::from(i);
            let hi = a4([10, 255, 255, 255]) - u128::from(i);
            let net = Peer::Net(IpNet { v6: false, lo, hi });
            with_apps(allow(i, net.clone(), net, PortSpec::Any), &[AppId::HTTP])
        })
        .collect();
    rules.extend((0..n).map(|i| {
        let c = host4([10, 128, (i >> 8) as u8, i as u8]);
        allow(n + i, c, host4(S), tcp(80))
    }));
    let c = CompiledRules::compile(&rules);
    let stored = c.v4.server.stored() + c.v4.client.stored() + c.v4.port.stored();
    assert!(stored <= n as usize * 2 * 13, "{stored}");
    assert!(c.cands.len() <= n as usize * MAX_CANDIDATES, "{}", c.cands.len());
    for i in [0u32, 1, 999, 1999] {
        let q = Query {
            client: a4([10, 128, (i >> 8) as u8, i as u8]),
            app: AppState::Known(AppId::TLS),
            ..q4(80)
        };
        assert_eq!(c.lookup(&q).map(|m| m.rule_id), Some(n + i));
        assert_eq!(c.lookup(&Query { app: AppState::Pending, ..q }).map(|m| m.order), Some(0));
    }
}

#[test]
fn atoms_go_to_the_narrow_dimension() {
    // Any → many /24s: server tree; many /24s → Any: client tree; Any → Any per port: port tree.
    let mut rules = Vec::new();
    for i in 0..50u8 {
        rules.push(allow(u32::from(i), Peer::Any, cidr4([10, 1, i, 0], 24), tcp(80)));
        rules.push(allow(100 + u32::from(i), cidr4([10, 2, i, 0], 24), Peer::Any, tcp(80)));
        rules.push(allow(200 + u32::from(i), Peer::Any, Peer::Any, tcp(1000 + u16::from(i))));
    }
    let c = CompiledRules::compile(&rules);
    assert_eq!(c.v4.server.stored(), 50);
    assert_eq!(c.v4.client.stored(), 50);
    assert_eq!(c.v4.port.stored(), 50);
    let q = Query { client: a4([10, 2, 7, 1]), server: a4([99, 0, 0, 1]), ..q4(80) };
    assert_eq!(check(&rules, &q), Some((107, Decision::Allow)));
    assert_eq!(check(&rules, &q4(1049)), Some((249, Decision::Allow)));
}

/// A small deterministic generator for the differential test below.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, s: &[T]) -> T {
        s[self.below(s.len())]
    }
}

const POOL4: &[[u8; 4]] =
    &[[10, 0, 0, 0], [10, 0, 0, 5], [10, 0, 1, 7], [10, 0, 0, 9], [8, 8, 8, 8]];
const POOL6: &[u16] = &[0, 1, 2, 0x100];
const PORTS: &[u16] = &[0, 22, 80, 443];

fn random_addr(rng: &mut Rng, v6: bool) -> u128 {
    if v6 {
        a6(rng.pick(POOL6))
    } else {
        a4(rng.pick(POOL4))
    }
}

fn random_peer(rng: &mut Rng) -> Peer {
    let v6 = rng.below(4) == 0;
    match rng.below(10) {
        0 => Peer::Any,
        1 => Peer::External,
        2 => Peer::Fqdn(rng.pick(&["*.example.com", "a.example.com"]).to_string()),
        3 | 4 => {
            let a = random_addr(rng, v6);
            let p = if v6 { rng.pick(&[0, 112, 120, 127]) } else { rng.pick(&[0, 8, 24, 29, 31]) };
            Peer::Net(IpNet::cidr(v6, a, p).unwrap())
        }
        _ => Peer::Net(IpNet::host(v6, random_addr(rng, v6))),
    }
}

fn random_port(rng: &mut Rng) -> PortSpec {
    match rng.below(8) {
        0 => PortSpec::Any,
        1 => PortSpec::Icmp,
        2 => PortSpec::Tcp(rng.pick(PORTS), rng.pick(PORTS)),
        3 => PortSpec::Udp(rng.pick(PORTS), rng.pick(PORTS)),
        4 => PortSpec::Udp(53, 53),
        _ => tcp(rng.pick(PORTS)),
    }
}

/// Tiny limits: every rule too wide to split, or every candidate list overflowing, or
/// both; the fallbacks must still give the reference's answers.
#[test]
fn fallbacks_equal_reference_under_tiny_limits() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let apps = [AppId::HTTP, AppId::TLS];
    for round in 0..300 {
        let n = rng.below(60);
        let rules: Vec<Rule> = (0..n)
            .map(|i| Rule {
                id: i as u32,
                from: (0..rng.below(3) + 1).map(|_| random_peer(&mut rng)).collect(),
                to: (0..rng.below(3) + 1).map(|_| random_peer(&mut rng)).collect(),
                ports: (0..rng.below(2) + 1).map(|_| random_port(&mut rng)).collect(),
                apps: if rng.below(3) == 0 { vec![rng.pick(&apps)] } else { vec![] },
                action: if rng.below(2) == 0 { RuleAction::Allow } else { RuleAction::Deny },
                vhost: rng.below(8) == 0,
            })
            .collect();
        let limits = build::Limits {
            max_atoms_per_rule: [0, 1, 2, MAX_ATOMS_PER_RULE][round % 4],
            max_candidates: [0, 1, 2][round % 3],
            max_flat_layers: [0, 1, 3][round % 5 % 3],
        };
        let c = build::compile(&rules, limits);
        let names: &[&str] = &["a.example.com"];
        for _ in 0..100 {
            let v6 = rng.below(4) == 0;
            let app = [AppState::Pending, AppState::Unidentified, AppState::Known(AppId::HTTP)]
                [rng.below(3)];
            let q = Query {
                v6,
                client: random_addr(&mut rng, v6),
                server: random_addr(&mut rng, v6),
                proto: rng.pick(&[proto::TCP, proto::UDP, proto::ICMP]),
                port: rng.pick(PORTS),
                app,
                client_external: rng.below(2) == 0,
                server_external: rng.below(2) == 0,
                client_names: if rng.below(3) == 0 { names } else { &[] },
                server_names: if rng.below(3) == 0 { names } else { &[] },
                vhost: if rng.below(2) == 0 { Some("a.example.com") } else { None },
            };
            assert_eq!(c.lookup(&q), reference::first_match(&rules, &q), "{limits:?} {q:?}");
        }
    }
}

#[test]
fn deep_nesting_searches_every_list() {
    // 1000 ranges nested on the server side and 1000 on the client side: the query's
    // point is in every one, so an index gives more lists than are gathered at once.
    // Only the widest client-side range's application matches (its list comes last).
    let n = 1000u32;
    let nested = |i: u32| {
        let lo = a4([10, 0, 0, 0]) + u128::from(i);
        Peer::Net(IpNet { v6: false, lo, hi: a4([10, 255, 255, 255]) - u128::from(i) })
    };
    let mut rules = Vec::new();
    for i in 0..n {
        let app = if i == 0 { AppId::TLS } else { AppId::HTTP };
        rules.push(with_apps(deny(2 * i, Peer::Any, nested(i), PortSpec::Any), &[AppId::HTTP]));
        rules.push(with_apps(allow(2 * i + 1, nested(i), Peer::Any, PortSpec::Any), &[app]));
    }
    let c = CompiledRules::compile(&rules);
    let mid = Query { client: a4([10, 128, 0, 1]), server: a4([10, 128, 0, 2]), ..q4(80) };
    let q = Query { app: AppState::Known(AppId::TLS), ..mid };
    let got = c.lookup(&q);
    assert_eq!(got, reference::first_match(&rules, &q));
    assert_eq!(got.map(|m| m.rule_id), Some(1));
    let q = Query { app: AppState::Known(AppId::HTTP), ..mid };
    assert_eq!(c.lookup(&q).map(|m| m.order), Some(0));
}
