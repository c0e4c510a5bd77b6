//! Flow oracle: for every nDPI test capture, the sessions the engine reports are the flows
//! nDPI 4.11 expects (`expected_ndpi_4_11_flows` in the corpus index): same L4 protocol,
//! same pair of endpoints, same VLAN. Direction is not compared (nDPI and we may name
//! client and server differently on mid-stream flows); ICMP and other portless protocols
//! are compared per address pair, as nDPI keys them.
//!
//! Differences that follow from a deliberate design choice are listed in `ALLOWED`, per
//! capture, each with its reason; the test fails on any other difference, and also on an
//! allowed difference that no longer happens (so the list stays honest).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dpi_core::{Config, Ctx, Event, SessionRecord};
use enforcer::capture::CaptureReader;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A flow as both sides can name it: L4 name, sorted endpoints, VLAN.
type FlowId = (String, [String; 2], Option<u16>);

const TUNNEL: &str = "tunnel not decapsulated (as NeuVector): the outer flow is the session, \
                      nDPI reports the inner one";
const LONE_FIN_RST: &str = "packets of a flow seen only as FIN/RST (or as null/FIN scans, which \
                            are dropped as malformed) create no session (reference §3.8)";
const ICMP_ERROR: &str = "ICMP errors are attributed to the session they quote, not tracked as \
                          their own ICMP flow";
const FRAGMENTS: &str = "a datagram whose fragments never complete is not a session";

/// Allowed differences: capture, flows nDPI has that we do not, flows we have that nDPI
/// does not, why.
const ALLOWED: &[(&str, usize, usize, &str)] = &[
    ("ndpi/pcap/1kxun.pcap", 2, 0, LONE_FIN_RST),
    ("ndpi/pcap/netflix.pcap", 1, 0, LONE_FIN_RST),
    ("ndpi/pcap/tcp_scan.pcapng", 3, 0, LONE_FIN_RST),
    ("ndpi/pcap/teams.pcap", 2, 0, "one lone FIN/RST flow and one ICMP error (see above)"),
    ("ndpi/pcap/iphone.pcap", 1, 0, ICMP_ERROR),
    ("ndpi/pcap/ip_fragmented_garbage.pcap", 1, 0, FRAGMENTS),
    ("ndpi/pcap/4in4tunnel.pcap", 1, 1, TUNNEL),
    ("ndpi/pcap/4in6tunnel.pcap", 1, 1, TUNNEL),
    ("ndpi/pcap/6in4tunnel.pcap", 10, 1, TUNNEL),
    ("ndpi/pcap/6in6tunnel.pcap", 1, 2, TUNNEL),
    ("ndpi/pcap/gre.pcapng", 1, 1, TUNNEL),
    ("ndpi/pcap/http_origin_different_than_host.pcap", 1, 1, TUNNEL),
    ("ndpi/pcap/ipv6_in_gtp.pcap", 2, 2, TUNNEL),
    ("ndpi/pcap/tls_change_cipher.pcap", 1, 1, TUNNEL),
    ("ndpi/pcap/vxlan.pcap", 4, 9, TUNNEL),
    ("ndpi/pcap/syslog.pcap", 1, 2, TUNNEL),
];

fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    dir.join("index.json").is_file().then_some(dir)
}

fn l4_name(proto: u8) -> String {
    match proto {
        1 => "ICMP".into(),
        2 => "IGMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        50 => "ESP".into(),
        58 => "ICMPV6".into(),
        p => p.to_string(),
    }
}

fn endpoint(ip: std::net::IpAddr, port: u16) -> String {
    match ip {
        std::net::IpAddr::V4(a) => format!("{a}:{port}"),
        std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

fn portless(l4: &str) -> bool {
    !matches!(l4, "TCP" | "UDP")
}

fn id_of(rec: &SessionRecord) -> FlowId {
    let l4 = l4_name(rec.proto);
    let (cp, sp) = if portless(&l4) { (0, 0) } else { (rec.client.port(), rec.server.port()) };
    let mut eps = [endpoint(rec.client.ip(), cp), endpoint(rec.server.ip(), sp)];
    eps.sort();
    // nDPI reports the innermost VLAN id.
    (l4, eps, rec.vlans().last().copied())
}

fn ours(path: &Path) -> BTreeSet<FlowId> {
    let mut reader = CaptureReader::open(path).unwrap();
    let mut ctx = Ctx::new(Config::default());
    let mut out = BTreeSet::new();
    let take = |ctx: &mut Ctx, out: &mut BTreeSet<FlowId>| {
        while let Some(ev) = ctx.poll_event() {
            if let Event::SessionEnd(r) = ev {
                out.insert(id_of(&r));
            }
        }
    };
    while let Some(f) = reader.next_frame().unwrap() {
        ctx.handle_timeout(f.ts);
        ctx.recv_packet(f.data);
        take(&mut ctx, &mut out);
    }
    while ctx.flush() > 0 {
        take(&mut ctx, &mut out);
    }
    take(&mut ctx, &mut out);
    out
}

fn expected(entry: &serde_json::Value) -> BTreeSet<FlowId> {
    entry["expected_ndpi_4_11_flows"]
        .as_array()
        .map(|flows| {
            flows
                .iter()
                .map(|f| {
                    let l4 = f["l4"].as_str().unwrap().to_string();
                    let norm = |s: &str| {
                        let (ip, port) = s.rsplit_once(':').unwrap();
                        let ip = ip.trim_start_matches('[').trim_end_matches(']');
                        let ip: std::net::IpAddr = ip.parse().unwrap();
                        endpoint(ip, if portless(&l4) { 0 } else { port.parse().unwrap() })
                    };
                    let mut eps =
                        [norm(f["src"].as_str().unwrap()), norm(f["dst"].as_str().unwrap())];
                    eps.sort();
                    let vlan = f["vlan"].as_u64().map(|v| v as u16);
                    (l4, eps, vlan)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sessions_match_ndpi_flows() {
    let Some(dir) = corpus_dir() else {
        eprintln!("note: corpus not found next to the workspace (../../shared/corpus): skipped");
        return;
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let mut failures = String::new();
    let mut seen_allowed = 0;
    let (mut files, mut matched, mut total) = (0, 0usize, 0usize);
    for entry in index.as_array().unwrap().iter().filter(|e| e["set"] == "ndpi") {
        let file = entry["file"].as_str().unwrap();
        let want = expected(entry);
        let got = ours(&dir.join(file));
        files += 1;
        total += want.len();
        matched += want.intersection(&got).count();
        let missing: Vec<_> = want.difference(&got).collect();
        let extra: Vec<_> = got.difference(&want).collect();
        let allowed = ALLOWED.iter().find(|a| a.0 == file);
        if allowed.is_some() {
            seen_allowed += 1;
        }
        let (ok_missing, ok_extra) = allowed.map_or((0, 0), |a| (a.1, a.2));
        if (missing.len(), extra.len()) != (ok_missing, ok_extra) {
            failures.push_str(&format!(
                "{file}: {} missing, {} extra (allowed {ok_missing}, {ok_extra})\n",
                missing.len(),
                extra.len()
            ));
            for m in &missing {
                failures.push_str(&format!("    nDPI only: {m:?}\n"));
            }
            for m in &extra {
                failures.push_str(&format!("    ours only: {m:?}\n"));
            }
        }
    }
    eprintln!("{files} captures: {matched} of {total} expected flows found");
    assert!(files > 100, "only {files} nDPI captures in the index");
    assert_eq!(seen_allowed, ALLOWED.len(), "an allow-list entry names no capture");
    assert!(failures.is_empty(), "differences from nDPI's flows:\n{failures}");
}
