//! The compiled policy matcher answers every query exactly as the reference scan does.
//!
//! Rule sets (0–200 rules) and queries are drawn from small pools of addresses, prefixes,
//! ports, names and applications so that ranges overlap and queries hit often: CIDRs,
//! explicit ranges (some empty), single hosts, `Any`/`External`, exact and wildcard FQDNs,
//! port ranges, ICMP/protocol/any specs, applications, vhost rules, IPv4 and IPv6 (and
//! IPv4-mapped numbers queried as IPv6, which must not cross families).
//!
//! Also: `lookup` does not allocate (a counting allocator, armed per thread).

#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

use dpi_core::app::{AppId, AppState};
use dpi_core::packet::{addr_from_v4, proto};
use dpi_core::policy::{reference, CompiledRules, IpNet, Peer, PortSpec, Query, Rule, RuleAction};
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

// ---- a counting allocator, armed per thread ----

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn note_alloc() {
    // `try_with`: the thread-locals may be gone while a thread shuts down.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---- pools ----

const V4: &[[u8; 4]] = &[
    [10, 0, 0, 0],
    [10, 0, 0, 1],
    [10, 0, 0, 2],
    [10, 0, 0, 5],
    [10, 0, 0, 255],
    [10, 0, 1, 0],
    [10, 0, 1, 7],
    [10, 1, 0, 1],
    [192, 168, 1, 1],
    [8, 8, 8, 8],
    [0, 0, 0, 0],
    [255, 255, 255, 255],
];
const V4_PREFIXES: &[u8] = &[0, 8, 16, 24, 28, 30, 31, 32];

/// IPv6 pool; the last entries are IPv4-mapped numbers (`::ffff:10.0.0.1`), equal as
/// integers to IPv4 pool addresses.
const V6: &[u128] = &[
    0x2001_0db8 << 96,
    (0x2001_0db8 << 96) | 1,
    (0x2001_0db8 << 96) | 2,
    (0x2001_0db8 << 96) | 0x1_0000,
    (0x2001_0db8 << 96) | 0xffff_ffff,
    0xfe80 << 112 | 1,
    1,
    0,
    u128::MAX,
    0xffff_0a00_0001,
    0xffff_0a00_0005,
];
const V6_PREFIXES: &[u8] = &[0, 32, 64, 96, 112, 120, 126, 127, 128];

const NAMES: &[&str] = &["a.example.com", "b.a.example.com", "example.com", "db.local", "x.io"];
const PATTERNS: &[&str] =
    &["a.example.com", "example.com", "db.local", "*.example.com", "*.a.example.com", "*.io"];
const PORTS: &[u16] = &[0, 1, 22, 53, 79, 80, 81, 443, 8080, 65535];
const PROTOS: &[u8] = &[proto::ICMP, proto::TCP, proto::UDP, 47, proto::ICMPV6];
const APPS: &[AppId] = &[AppId::HTTP, AppId::TLS, AppId::DNS];

fn addr(v6: bool) -> impl Strategy<Value = u128> {
    if v6 {
        prop::sample::select(V6).boxed()
    } else {
        prop::sample::select(V4).prop_map(addr_from_v4).boxed()
    }
}

fn net() -> impl Strategy<Value = IpNet> {
    any::<bool>().prop_flat_map(|v6| {
        let prefixes = if v6 { V6_PREFIXES } else { V4_PREFIXES };
        prop_oneof![
            3 => addr(v6).prop_map(move |a| IpNet::host(v6, a)),
            3 => (addr(v6), prop::sample::select(prefixes))
                .prop_map(move |(a, p)| IpNet::cidr(v6, a, p).unwrap()),
            // Explicit ranges, sometimes reversed (empty).
            2 => (addr(v6), addr(v6)).prop_map(move |(lo, hi)| IpNet { v6, lo, hi }),
        ]
    })
}

fn peer() -> BoxedStrategy<Peer> {
    prop_oneof![
        2 => Just(Peer::Any),
        1 => Just(Peer::External),
        8 => net().prop_map(Peer::Net),
        1 => prop::sample::select(PATTERNS).prop_map(|p| Peer::Fqdn(p.to_string())),
    ]
    .boxed()
}

fn port_spec() -> BoxedStrategy<PortSpec> {
    let port = || prop::sample::select(PORTS);
    prop_oneof![
        2 => Just(PortSpec::Any),
        5 => port().prop_map(|p| PortSpec::Tcp(p, p)),
        3 => port().prop_map(|p| PortSpec::Udp(p, p)),
        2 => (port(), port()).prop_map(|(a, b)| PortSpec::Tcp(a, b)),
        1 => (port(), port()).prop_map(|(a, b)| PortSpec::Udp(a, b)),
        1 => Just(PortSpec::Icmp),
        1 => prop::sample::select(PROTOS).prop_map(PortSpec::Proto),
    ]
    .boxed()
}

fn entries<S: Strategy + Clone + 'static>(s: S) -> impl Strategy<Value = Vec<S::Value>> {
    // Mostly one entry; sometimes none (never matches) or several.
    prop_oneof![1 => Just(0usize..1), 12 => Just(1usize..2), 3 => Just(2usize..4)]
        .prop_flat_map(move |n| prop::collection::vec(s.clone(), n))
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        entries(peer()),
        entries(peer()),
        entries(port_spec()),
        prop_oneof![4 => Just(vec![]), 1 => prop::collection::vec(prop::sample::select(APPS), 1..3)],
        any::<bool>(),
        prop::bool::weighted(0.1),
        0u32..100_000,
    )
        .prop_map(|(from, to, ports, apps, deny, vhost, id)| Rule {
            id,
            from,
            to,
            ports,
            apps,
            action: if deny { RuleAction::Deny } else { RuleAction::Allow },
            vhost,
        })
}

#[derive(Clone, Debug)]
struct Q {
    v6: bool,
    client: u128,
    server: u128,
    proto: u8,
    port: u16,
    app: AppState,
    client_external: bool,
    server_external: bool,
    client_names: Vec<&'static str>,
    server_names: Vec<&'static str>,
    vhost: Option<&'static str>,
}

impl Q {
    fn query(&self) -> (Vec<&str>, Vec<&str>) {
        (self.client_names.clone(), self.server_names.clone())
    }
}

fn names() -> impl Strategy<Value = Vec<&'static str>> {
    prop_oneof![2 => Just(vec![]), 1 => prop::collection::vec(prop::sample::select(NAMES), 1..3)]
}

fn query() -> impl Strategy<Value = Q> {
    let app = prop_oneof![
        Just(AppState::Pending),
        Just(AppState::Unidentified),
        prop::sample::select(APPS).prop_map(AppState::Known),
        Just(AppState::Known(AppId::SSH)),
    ];
    (
        any::<bool>().prop_flat_map(|v6| (Just(v6), addr(v6), addr(v6))),
        prop::sample::select(PROTOS),
        prop_oneof![4 => prop::sample::select(PORTS), 1 => any::<u16>()],
        app,
        any::<bool>(),
        any::<bool>(),
        names(),
        names(),
        prop::option::of(prop::sample::select(NAMES)),
    )
        .prop_map(
            |(
                (v6, client, server),
                proto,
                port,
                app,
                ce,
                se,
                client_names,
                server_names,
                vhost,
            )| Q {
                v6,
                client,
                server,
                proto,
                port,
                app,
                client_external: ce,
                server_external: se,
                client_names,
                server_names,
                vhost,
            },
        )
}

fn check(rules: &[Rule], compiled: &CompiledRules, q: &Q) -> Result<(), TestCaseError> {
    let (cn, sn) = q.query();
    let query = Query {
        v6: q.v6,
        client: q.client,
        server: q.server,
        proto: q.proto,
        port: q.port,
        app: q.app,
        client_external: q.client_external,
        server_external: q.server_external,
        client_names: &cn,
        server_names: &sn,
        vhost: q.vhost,
    };
    ARMED.with(|a| a.set(true));
    let got = compiled.lookup(&query);
    ARMED.with(|a| a.set(false));
    prop_assert_eq!(ALLOCS.with(|n| n.replace(0)), 0, "lookup allocated");
    prop_assert_eq!(got, reference::first_match(rules, &query), "query {:?}", q);
    Ok(())
}

proptest! {
    // XorShift: ChaCha generation dominates the run time in debug builds.
    #![proptest_config(ProptestConfig {
        cases: 1000,
        rng_algorithm: proptest::test_runner::RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    })]

    #[test]
    fn compiled_equals_reference(
        rules in prop::collection::vec(rule(), 0..200),
        queries in prop::collection::vec(query(), 1..48),
    ) {
        let compiled = CompiledRules::compile(&rules);
        prop_assert_eq!(compiled.len(), rules.len());
        for q in &queries {
            check(&rules, &compiled, q)?;
        }
    }

    /// Queries built from the rules' own exact points (so exact-table hits, with all
    /// their precedence against ranges, are frequent).
    #[test]
    fn exact_points_equal_reference(
        rules in prop::collection::vec(rule(), 1..200),
        picks in prop::collection::vec((any::<prop::sample::Index>(), query()), 1..48),
    ) {
        let compiled = CompiledRules::compile(&rules);
        for (pick, base) in &picks {
            let r = pick.get(&rules);
            let host = |p: Option<&Peer>| match p {
                Some(Peer::Net(n)) => Some((n.v6, n.lo)),
                _ => None,
            };
            let (Some((v6, client)), Some((v6s, server))) = (host(r.from.first()), host(r.to.first()))
            else { continue };
            let (proto, port) = match r.ports.first() {
                Some(PortSpec::Tcp(lo, _)) => (proto::TCP, *lo),
                Some(PortSpec::Udp(lo, _)) => (proto::UDP, *lo),
                _ => (base.proto, base.port),
            };
            let q = Q { v6: v6 && v6s, client, server, proto, port, ..base.clone() };
            check(&rules, &compiled, &q)?;
        }
    }
}
