//! Application identification does not depend on port numbers.
//!
//! Every nDPI corpus capture (`../shared/corpus/ndpi/pcap`, any link type, through
//! [`CaptureReader`]) is replayed twice through a fresh [`Ctx`]: as it is, and with every
//! TCP and UDP port rewritten onto unusual ports (20000 and up). The map is built per
//! capture from the ports it uses and preserves their order (so the engine's "lower port
//! is the server" rule for flows picked up mid-stream decides the same way) and their
//! distinctness (so flows stay apart); it avoids the few high ports some service is known
//! by. Ports are rewritten in place in the frame: in TCP/UDP headers, in the first
//! fragment of a fragmented datagram, and in the transport header an ICMP error quotes
//! (so errors still find their session). Checksums are left stale: the engine does not
//! verify them by default (`Config::verify_checksums` is off), so no fix-up is needed.
//!
//! Then each TCP/UDP session's application (its `SessionEnd` record) is compared between
//! the two runs, sessions matched by their (remapped) endpoints and their order among the
//! sessions of those endpoints. Every difference fails the test with a listing, except the
//! ones [`allowed`] names: protocols identified partly by port, and ports the engine or a
//! parser deliberately treats specially.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dpi_core::app::{AppId, AppState};
use dpi_core::packet::{decode, Frame, L4};
use dpi_core::{Config, Ctx, Event, SessionRecord};
use enforcer::capture::CaptureReader;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;

/// First port of the remapped range.
const BASE: u16 = 20_000;
/// High ports services are known by (MongoDB, gRPC's usual port): never mapped onto.
const AVOID: [u16; 4] = [27_017, 27_018, 27_019, 50_051];

/// Apps whose parsers use port hints (see `dpi_core::app::probe`): Echo has no signature at
/// all; TFTP and NTP are checked by payload, but their payload checks are weak alone and
/// are combined with their well-known ports (69, 123).
const PORT_HINT_APPS: [AppId; 3] = [AppId::ECHO, AppId::TFTP, AppId::NTP];
/// mDNS and LLMNR: DNS framing, deliberately not DNS (`dns::probe_udp`).
const NOT_DNS_PORTS: [u16; 2] = [5353, 5355];
/// UDP ports by which the engine picks the client of a flow whose first packet it sees
/// (`UDP_SERVER_PORTS` in `dpi_core::ctx`): DHCP, DNS, mDNS.
const UDP_SERVER_PORTS: [u16; 3] = [67, 53, 5353];

fn ndpi_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/ndpi/pcap");
    dir.is_dir().then_some(dir)
}

/// Where in a frame its transport ports are: the source port's offset, for frames with
/// ports (TCP/UDP, a first fragment of either, an ICMP error quoting either).
fn port_offsets(frame: &[u8]) -> Vec<usize> {
    let Ok(Frame::Ip(d)) = decode(frame, false) else { return vec![] };
    let mut at = vec![];
    match d.l4 {
        L4::Tcp(_) | L4::Udp(_) => at.push(d.l4_off),
        L4::Fragment => {
            if let Some(f) = d.ip.frag {
                if f.offset == 0 && matches!(f.next_proto, TCP | UDP) {
                    at.push(f.data_off);
                }
            }
        }
        L4::Icmp(_) => {
            // ICMP errors quote the offending packet's IP header and at least 8 bytes more.
            let q = d.payload_off;
            let quoted = match frame.get(q).map(|b| b >> 4) {
                Some(4) => frame
                    .get(q + 9)
                    .filter(|p| matches!(**p, TCP | UDP))
                    .map(|_| q + usize::from(frame[q] & 0xf) * 4),
                Some(6) => frame.get(q + 6).filter(|p| matches!(**p, TCP | UDP)).map(|_| q + 40),
                _ => None,
            };
            let error = matches!((d.ip.proto, frame[d.l4_off]), (ICMP, 3 | 4 | 5 | 11 | 12))
                || matches!((d.ip.proto, frame[d.l4_off]), (ICMPV6, 1..=4));
            if let Some(off) = quoted.filter(|_| error) {
                at.push(off);
            }
        }
        _ => {}
    }
    at.retain(|&o| o + 4 <= frame.len());
    at
}

/// The ports a capture uses.
fn ports_of(path: &Path) -> BTreeSet<u16> {
    let mut reader = CaptureReader::open(path).unwrap();
    let mut ports = BTreeSet::new();
    while let Some(f) = reader.next_frame().unwrap() {
        for o in port_offsets(f.data) {
            ports.insert(u16::from_be_bytes([f.data[o], f.data[o + 1]]));
            ports.insert(u16::from_be_bytes([f.data[o + 2], f.data[o + 3]]));
        }
    }
    ports
}

/// An order-preserving, injective map of `ports` onto unusual ports, spread over
/// `BASE..=65535` and skipping [`AVOID`].
fn port_map(ports: &BTreeSet<u16>) -> HashMap<u16, u16> {
    let free = usize::from(u16::MAX - BASE) + 1 - AVOID.len();
    assert!(ports.len() <= free, "{} distinct ports do not fit", ports.len());
    let step = free / ports.len().max(1);
    let mut targets = (BASE..=u16::MAX).filter(|p| !AVOID.contains(p)).step_by(step);
    ports.iter().map(|&p| (p, targets.next().unwrap())).collect()
}

#[test]
fn port_map_is_injective_and_monotonic() {
    let all: BTreeSet<u16> = (0..=u16::MAX).step_by(3).collect();
    let m = port_map(&all);
    let mut last = None;
    for p in &all {
        let q = m[p];
        assert!(q >= BASE && !AVOID.contains(&q));
        assert!(last < Some(q), "{p} -> {q} after {last:?}");
        last = Some(q);
    }
    let few: BTreeSet<u16> = [53, 80, 443, 5353, 65535].into();
    let m = port_map(&few);
    assert_eq!(m.values().collect::<BTreeSet<_>>().len(), 5);
}

/// Replay a capture (rewriting ports through `map` if given); the TCP/UDP end records in
/// end order.
fn replay(path: &Path, map: Option<&HashMap<u16, u16>>) -> Vec<SessionRecord> {
    let mut reader = CaptureReader::open(path).unwrap();
    let mut ctx = Ctx::new(Config { session_start_events: false, ..Config::default() });
    let mut ends = vec![];
    let mut take = |ctx: &mut Ctx| {
        while let Some(ev) = ctx.poll_event() {
            if let Event::SessionEnd(r) = ev {
                if matches!(r.proto, TCP | UDP) {
                    ends.push(r);
                }
            }
        }
    };
    while let Some(f) = reader.next_frame().unwrap() {
        if let Some(map) = map {
            for o in port_offsets(f.data) {
                for at in [o, o + 2] {
                    let p = u16::from_be_bytes([f.data[at], f.data[at + 1]]);
                    f.data[at..at + 2].copy_from_slice(&map[&p].to_be_bytes());
                }
            }
        }
        ctx.handle_timeout(f.ts);
        ctx.recv_packet(f.data);
        take(&mut ctx);
    }
    while ctx.flush() > 0 {
        take(&mut ctx);
    }
    take(&mut ctx);
    ends
}

/// A session's endpoints, direction-free, with ports through `map`.
type Key = (u8, [(IpAddr, u16); 2], [u16; 2]);

fn key(r: &SessionRecord, map: Option<&HashMap<u16, u16>>) -> Key {
    let m = |a: SocketAddr| (a.ip(), map.map_or(a.port(), |m| m[&a.port()]));
    let mut e = [m(r.client), m(r.server)];
    e.sort();
    (r.proto, e, r.vlan)
}

/// Why a difference between the original (`a`) and the remapped (`b`) session is allowed,
/// if it is.
fn allowed(a: &SessionRecord, b: &SessionRecord, map: &HashMap<u16, u16>) -> Option<&'static str> {
    let ports = [a.client.port(), a.server.port()];
    if let AppState::Known(app) = a.app {
        if PORT_HINT_APPS.contains(&app) {
            return Some("Echo/TFTP/NTP are identified with the help of their ports");
        }
    }
    if a.proto == UDP
        && b.app == AppState::Known(AppId::DNS)
        && ports.iter().any(|p| NOT_DNS_PORTS.contains(p))
    {
        return Some("DNS framing on 5353/5355 is mDNS/LLMNR, not DNS; elsewhere it is DNS");
    }
    let swapped = b.client.ip() != a.client.ip() || b.client.port() != map[&a.client.port()];
    if a.proto == UDP && swapped && ports.iter().any(|p| UDP_SERVER_PORTS.contains(p)) {
        // The engine takes the sender of a UDP flow's first packet as its client unless
        // that packet comes from 53/67/5353; without those ports a flow seen reply-first
        // has client and server the other way round, and the probes see the reply as
        // the client's bytes.
        return Some("UDP client picked by well-known server port (53/67/5353) in the engine");
    }
    None
}

fn show(r: &SessionRecord) -> String {
    let proto = if r.proto == TCP { "tcp" } else { "udp" };
    format!("{proto} {} -> {}", r.client, r.server)
}

#[test]
fn identification_does_not_depend_on_ports() {
    let Some(dir) = ndpi_dir() else {
        eprintln!("note: nDPI corpus not found (../shared/corpus/ndpi/pcap): skipped");
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let (mut sessions, mut identified, mut captures) = (0, 0, 0);
    let mut exceptions: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut failures = vec![];
    for path in &files {
        if CaptureReader::open(path).is_err() {
            continue;
        }
        captures += 1;
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let map = port_map(&ports_of(path));
        let plain = replay(path, None);
        let moved = replay(path, Some(&map));
        // Sessions by endpoints, in end order.
        let mut by_key: HashMap<Key, Vec<&SessionRecord>> = HashMap::new();
        for r in &moved {
            by_key.entry(key(r, None)).or_default().push(r);
        }
        let mut seen: HashMap<Key, usize> = HashMap::new();
        for a in &plain {
            let k = key(a, Some(&map));
            let n = seen.entry(k).or_default();
            let Some(b) = by_key.get(&k).and_then(|v| v.get(*n)).copied() else {
                failures.push(format!("{name}: {} has no counterpart after remap", show(a)));
                continue;
            };
            *n += 1;
            sessions += 1;
            assert!(
                b.client.port() >= BASE && b.server.port() >= BASE,
                "{name}: ports not rewritten: {}",
                show(b)
            );
            identified += usize::from(matches!(a.app, AppState::Known(_)));
            if a.app == b.app {
                continue;
            }
            let line = format!("{name}: {} {:?} -> {:?} after remap", show(a), a.app, b.app);
            match allowed(a, b, &map) {
                Some(why) => exceptions.entry(why).or_default().push(line),
                None => failures.push(line),
            }
        }
        for (k, v) in &by_key {
            if v.len() > seen.get(k).copied().unwrap_or(0) {
                failures.push(format!("{name}: {} only after remap", show(v[v.len() - 1])));
            }
        }
    }
    eprintln!(
        "{captures} captures, {sessions} TCP/UDP sessions compared ({identified} identified)"
    );
    for (why, lines) in &exceptions {
        eprintln!("allowed ({} sessions): {why}; e.g.", lines.len());
        for l in lines.iter().take(3) {
            eprintln!("  {l}");
        }
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    assert!(failures.is_empty(), "{} sessions differ (listed above)", failures.len());
    // The corpus gives 3004 sessions, 457 of them identified (with HTTP, TLS, SSH and DNS
    // parsers; more as parsers are added).
    assert!(sessions > 2700 && identified > 400, "{sessions} sessions, {identified} identified");
}
