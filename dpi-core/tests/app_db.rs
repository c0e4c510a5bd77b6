//! Database and cache protocol identification on the corpus captures.
//!
//! Ground truth: the flows nDPI 4.11 labels with DPI confidence as MySQL, PostgreSQL,
//! MsSQL-TDS, Oracle, MongoDB, Cassandra, RESP (Redis) or Memcached
//! (`expected_ndpi_4_11_flows` of `shared/corpus/index.json`, copied into [`NDPI`]), and
//! the sessions of the suricata-verify `pgsql` tests (all PostgreSQL: each test.yaml
//! expects `app_proto: pgsql` or the pgsql events of every session). Every capture is
//! replayed through a fresh engine (`dpi_core::Ctx`) and the `app` of the session end
//! records is checked:
//!
//! - every ground-truth flow gets its application (except, for now, the one-sided
//!   mid-stream TDS sessions of [`BLOCKED_BY_HTTP`], while the HTTP probe holds them up);
//! - no other session of any corpus capture gets one of these applications, except flows
//!   nDPI itself labels that way by port only ([`BY_PORT`]), which may be identified or
//!   not;
//! - the same holds with every TCP/UDP port of every capture remapped, since
//!   identification rests on the payload (and mid-stream sessions, whose client is
//!   guessed from the ports, get the other guess).
//!
//! Captures with other link types are converted to Ethernet frames (BSD loopback, raw IP,
//! Linux cooked v1/v2); PPP captures are skipped. A missing corpus skips these tests with
//! a note. A last test, which needs no corpus, runs every database probe on every other
//! protocol's real opening messages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dpi_core::app::parsers::{http, tds};
use dpi_core::app::probe::{Probe, ProbeCtx};
use dpi_core::app::{AppId, AppState};
use dpi_core::{Config, Ctx, Event, SessionRecord, Time};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The applications under test.
const OURS: [AppId; 9] = [
    AppId::MYSQL,
    AppId::PGSQL,
    AppId::TDS,
    AppId::TNS,
    AppId::MONGODB,
    AppId::CASSANDRA,
    AppId::REDIS,
    AppId::MEMCACHED,
    AppId::COUCHBASE,
];

type Flow = (&'static str, &'static str, &'static str, AppId);

/// nDPI 4.11's DPI-confidence labels: (capture, client, server, application).
const NDPI: &[Flow] = &[
    ("ndpi/pcap/cassandra.pcap", "127.0.0.1:46536", "127.0.0.1:9042", AppId::CASSANDRA),
    ("ndpi/pcap/cassandra.pcap", "198.18.0.2:37184", "198.18.0.3:7000", AppId::CASSANDRA),
    ("ndpi/pcap/cassandra.pcap", "198.18.0.3:37892", "198.18.0.2:9042", AppId::CASSANDRA),
    ("ndpi/pcap/memcached.cap", "127.0.0.1:59604", "127.0.0.1:11211", AppId::MEMCACHED),
    ("ndpi/pcap/mongodb.pcap", "10.10.10.10:51822", "10.10.10.11:27017", AppId::MONGODB),
    ("ndpi/pcap/mongodb.pcap", "10.10.10.12:55582", "10.10.10.13:27017", AppId::MONGODB),
    ("ndpi/pcap/mongodb.pcap", "10.10.10.14:61503", "10.10.10.15:27017", AppId::MONGODB),
    ("ndpi/pcap/mongodb.pcap", "10.10.10.16:51358", "10.10.10.17:27017", AppId::MONGODB),
    ("ndpi/pcap/mongodb.pcap", "10.10.10.18:64566", "10.10.10.19:30000", AppId::MONGODB),
    ("ndpi/pcap/mssql_tds.pcap", "10.111.111.111:1111", "10.0.0.1:1433", AppId::TDS),
    ("ndpi/pcap/mssql_tds.pcap", "10.111.111.111:11111", "10.0.0.1:1433", AppId::TDS),
    ("ndpi/pcap/mssql_tds.pcap", "10.111.111.111:2222", "10.0.0.1:1433", AppId::TDS),
    ("ndpi/pcap/mssql_tds.pcap", "10.111.111.111:22222", "10.0.0.1:1433", AppId::TDS),
    ("ndpi/pcap/mssql_tds.pcap", "10.111.111.111:3333", "10.0.0.1:1433", AppId::TDS),
    ("ndpi/pcap/mssql_tds.pcap", "10.111.111.111:33333", "10.0.0.1:1433", AppId::TDS),
    ("ndpi/pcap/mssql_tds.pcap", "10.111.111.111:4444", "10.0.0.1:1433", AppId::TDS),
    ("ndpi/pcap/mssql_tds.pcap", "10.111.111.111:5555", "10.0.0.1:1433", AppId::TDS),
    ("ndpi/pcap/mssql_tds.pcap", "10.111.111.111:7777", "10.0.0.1:1433", AppId::TDS),
    ("ndpi/pcap/mssql_tds.pcap", "10.111.111.111:8888", "10.0.0.1:1433", AppId::TDS),
    ("ndpi/pcap/mssql_tds.pcap", "10.111.111.111:9999", "10.0.0.1:1433", AppId::TDS),
    ("ndpi/pcap/mysql.pcapng", "192.168.88.231:36272", "192.168.88.200:3306", AppId::MYSQL),
    ("ndpi/pcap/mysql.pcapng", "192.168.88.231:36732", "192.168.88.201:3306", AppId::MYSQL),
    ("ndpi/pcap/oracle12.pcapng", "10.0.2.15:40226", "10.0.72.139:1521", AppId::TNS),
    ("ndpi/pcap/pgsql.pcap", "127.0.0.1:45930", "127.0.0.1:5432", AppId::PGSQL),
    ("ndpi/pcap/pgsql.pcap", "127.0.0.1:45931", "127.0.0.1:5432", AppId::PGSQL),
    ("ndpi/pcap/pgsql.pcap", "172.16.20.244:59036", "172.16.20.75:5432", AppId::PGSQL),
    ("ndpi/pcap/pgsql.pcap", "172.16.20.244:59037", "172.16.20.75:5432", AppId::PGSQL),
    ("ndpi/pcap/pgsql.pcap", "172.16.20.244:59038", "172.16.20.75:5432", AppId::PGSQL),
    ("ndpi/pcap/pgsql.pcap", "172.16.20.244:59039", "172.16.20.75:5432", AppId::PGSQL),
    ("ndpi/pcap/pgsql2.pcapng", "10.220.20.67:58574", "10.220.20.67:60102", AppId::PGSQL),
    ("ndpi/pcap/resp.pcap", "192.168.88.221:51882", "192.168.88.231:6379", AppId::REDIS),
];

/// Every session of the suricata-verify PostgreSQL tests.
const SURICATA: &[Flow] = &[
    (SV_BUG_5579, "127.0.0.1:55824", "127.0.0.1:5432", AppId::PGSQL),
    (SV_CANCEL, "100.88.2.140:39704", "100.96.199.113:5432", AppId::PGSQL),
    (SV_CANCEL, "100.88.2.140:39706", "100.96.199.113:5432", AppId::PGSQL),
    (SV_COPY, "10.16.1.11:50370", "10.16.1.10:5432", AppId::PGSQL),
    (SV_ROLLBACK, "192.168.1.102:44848", "192.168.1.74:5432", AppId::PGSQL),
    (SV_SSL_REJECTED, "10.16.1.10:40816", "10.16.1.11:5432", AppId::PGSQL),
    (SV_SSL_REJECTED, "10.16.1.10:40784", "10.16.1.11:5432", AppId::PGSQL),
    (SV_UPGRADE_TLS, "192.168.50.11:60358", "192.168.50.12:5432", AppId::PGSQL),
    (SV_UPGRADE_TLS, "192.168.50.11:60359", "192.168.50.12:5432", AppId::PGSQL),
];
const SV_BUG_5579: &str = "suricata-verify/tests/pgsql/pgsql-bug-5579/input.pcap";
const SV_CANCEL: &str = "suricata-verify/tests/pgsql/pgsql-cancel-request/input.pcap";
const SV_COPY: &str =
    "suricata-verify/tests/pgsql/pgsql-copy-data-in/TLPW-Jason-copyfrom-small.pcap";
const SV_ROLLBACK: &str = "suricata-verify/tests/pgsql/pgsql-simple-query-rollback/input.pcap";
const SV_SSL_REJECTED: &str =
    "suricata-verify/tests/pgsql/pgsql-ssl-rejected-md5-auth-simple-query/input.pcap";
const SV_UPGRADE_TLS: &str = "suricata-verify/tests/pgsql/pgsql-upgrade-tls/input.pcap";

/// Flows nDPI labels as one of ours by port only (confidence "Match by port"): the 8000-byte
/// RPC of `mssql_tds.pcap` that starts mid-message for nDPI, and SYN-scan probes without
/// payload. Identifying them is allowed, not required.
const BY_PORT: &[Flow] = &[
    ("ndpi/pcap/mssql_tds.pcap", "10.111.111.111:6666", "10.0.0.1:1433", AppId::TDS),
    ("ndpi/pcap/synscan.pcap", "172.16.0.8:36050", "64.13.134.52:1433", AppId::TDS),
    ("ndpi/pcap/synscan.pcap", "172.16.0.8:36050", "64.13.134.52:1434", AppId::TDS),
    ("ndpi/pcap/synscan.pcap", "172.16.0.8:36050", "64.13.134.52:1521", AppId::TNS),
    ("ndpi/pcap/synscan.pcap", "172.16.0.8:36050", "64.13.134.52:3306", AppId::MYSQL),
    ("ndpi/pcap/synscan.pcap", "172.16.0.8:36050", "64.13.134.52:5432", AppId::PGSQL),
    ("ndpi/pcap/synscan.pcap", "172.16.0.8:36050", "64.13.134.52:7000", AppId::CASSANDRA),
    ("ndpi/pcap/synscan.pcap", "172.16.0.8:36051", "64.13.134.52:1433", AppId::TDS),
    ("ndpi/pcap/synscan.pcap", "172.16.0.8:36051", "64.13.134.52:1434", AppId::TDS),
    ("ndpi/pcap/synscan.pcap", "172.16.0.8:36051", "64.13.134.52:1521", AppId::TNS),
    ("ndpi/pcap/synscan.pcap", "172.16.0.8:36051", "64.13.134.52:3306", AppId::MYSQL),
    ("ndpi/pcap/synscan.pcap", "172.16.0.8:36051", "64.13.134.52:5432", AppId::PGSQL),
    ("ndpi/pcap/synscan.pcap", "172.16.0.8:36051", "64.13.134.52:7000", AppId::CASSANDRA),
];

/// One-sided sessions picked up mid-stream (no handshake in `mssql_tds.pcap`, the client's
/// RPC or SQL batch only): the TDS probe matches them, but the HTTP/RTSP/SIP probe, listed
/// before it, answers `NeedMore` for any mid-stream session without server bytes even when
/// the session closes, which keeps a later parser's match from counting (`probe::run`).
/// While that is so ([`http_blocks_one_sided_mid_stream`]), these flows may end
/// unidentified; once it is fixed they must be identified like the others.
const BLOCKED_BY_HTTP: &[(&str, &str)] = &[
    ("10.111.111.111:3333", "10.0.0.1:1433"),
    ("10.111.111.111:4444", "10.0.0.1:1433"),
    ("10.111.111.111:7777", "10.0.0.1:1433"),
    ("10.111.111.111:8888", "10.0.0.1:1433"),
    ("10.111.111.111:9999", "10.0.0.1:1433"),
    ("10.111.111.111:11111", "10.0.0.1:1433"),
    ("10.111.111.111:22222", "10.0.0.1:1433"),
    ("10.111.111.111:33333", "10.0.0.1:1433"),
];

/// Does the HTTP probe still wait on a closed mid-stream session with only (non-HTTP)
/// client bytes?
fn http_blocks_one_sided_mid_stream() -> bool {
    let rpc = [0x03, 0x01, 0x00, 0x10, 0, 0, 1, 0, 0xff, 0xff, 0x0a, 0, 0, 0, 0, 0];
    let cx = ProbeCtx {
        proto: 6,
        client_port: 3333,
        server_port: 1433,
        c2s: &rpc,
        s2c: b"",
        c2s_done: true,
        s2c_done: true,
        first: Some(dpi_core::Dir::ToServer),
        mid_stream: true,
    };
    assert_eq!(tds::probe(&cx), Probe::Match);
    http::probe(&cx) == Probe::NeedMore
}

fn corpus_root() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    if p.join("ndpi/pcap").is_dir() {
        Some(p)
    } else {
        eprintln!("corpus {} missing; test skipped", p.display());
        None
    }
}

/// Every capture under `dir`, sorted.
fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = rd.map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            captures(&p, out);
        } else if p.extension().is_some_and(|e| e == "pcap" || e == "pcapng" || e == "cap") {
            out.push(p);
        }
    }
}

/// An Ethernet frame carrying the IP packet `ip`.
fn ether(ip: &[u8], ethertype: Option<u16>) -> Option<Vec<u8>> {
    let ty = match ethertype {
        Some(t) => t,
        None => match ip.first()? >> 4 {
            4 => 0x0800,
            6 => 0x86dd,
            _ => return None,
        },
    };
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    f.extend_from_slice(&ty.to_be_bytes());
    f.extend_from_slice(ip);
    Some(f)
}

/// `data` of link type `link` as an Ethernet frame; `None` for link types not handled.
fn to_ethernet(link: pcap_file::DataLink, data: &[u8]) -> Option<Vec<u8>> {
    use pcap_file::DataLink as L;
    match link {
        L::ETHERNET => Some(data.to_vec()),
        L::NULL => ether(data.get(4..)?, None),
        L::RAW | L::IPV4 | L::IPV6 => ether(data, None),
        L::LINUX_SLL => {
            ether(data.get(16..)?, Some(u16::from_be_bytes([*data.get(14)?, *data.get(15)?])))
        }
        L::LINUX_SLL2 => {
            ether(data.get(20..)?, Some(u16::from_be_bytes([*data.first()?, *data.get(1)?])))
        }
        _ => None,
    }
}

/// The frames of a pcap or pcapng file as Ethernet, with their times in microseconds.
fn frames(path: &Path) -> Vec<(u64, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = vec![];
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut r = pcap_file::pcapng::PcapNgReader::new(&bytes[..]).unwrap();
        let mut links = vec![];
        while let Some(block) = r.next_block() {
            let Ok(block) = block else { break };
            match block {
                pcap_file::pcapng::Block::InterfaceDescription(i) => links.push(i.linktype),
                pcap_file::pcapng::Block::EnhancedPacket(p) => {
                    let link = links[p.interface_id as usize];
                    if let Some(f) = to_ethernet(link, &p.data) {
                        out.push((p.timestamp.as_micros() as u64, f));
                    }
                }
                _ => {}
            }
        }
    } else {
        let mut r = pcap_file::pcap::PcapReader::new(&bytes[..]).unwrap();
        let link = r.header().datalink;
        while let Some(p) = r.next_packet() {
            let Ok(p) = p else { break };
            if let Some(f) = to_ethernet(link, &p.data) {
                out.push((p.timestamp.as_micros() as u64, f));
            }
        }
    }
    out
}

/// Replay `frames` through a fresh engine; the session end records. Time never goes back
/// (some captures are not in time order).
fn replay(frames: &mut [(u64, Vec<u8>)]) -> Vec<SessionRecord> {
    let mut ctx = Ctx::new(Config::default());
    let mut ends = vec![];
    let drain = |ctx: &mut Ctx, ends: &mut Vec<SessionRecord>| {
        while let Some(e) = ctx.poll_event() {
            if let Event::SessionEnd(r) = e {
                ends.push(r);
            }
        }
    };
    let mut now = 0;
    for (ts, f) in frames.iter_mut() {
        now = now.max(*ts);
        ctx.handle_timeout(Time::from_micros(now));
        ctx.recv_packet(f);
        drain(&mut ctx, &mut ends);
    }
    while ctx.flush() > 0 {
        drain(&mut ctx, &mut ends);
    }
    drain(&mut ctx, &mut ends);
    ends
}

/// A session's address pair, client first as nDPI lists it (either order matches).
type Pair = (SocketAddr, SocketAddr);

fn same_pair(r: &SessionRecord, p: &Pair) -> bool {
    (r.client, r.server) == *p || (r.server, r.client) == *p
}

fn app(r: &SessionRecord) -> Option<AppId> {
    match r.app {
        AppState::Known(a) => Some(a),
        _ => None,
    }
}

/// Check one capture's sessions: the ground-truth flows of `file` (with ports mapped by
/// `map`) got their application, and no other session got one of ours. Failures are
/// appended to `errors`; `found` counts, per application, the flows identified and expected.
fn check(
    file: &str,
    ends: &[SessionRecord],
    map: &dyn Fn(SocketAddr) -> SocketAddr,
    errors: &mut Vec<String>,
    found: &mut BTreeMap<AppId, (usize, usize)>,
) {
    let http_blocks = http_blocks_one_sided_mid_stream();
    let blocked: Vec<Pair> = BLOCKED_BY_HTTP
        .iter()
        .filter(|_| file == "ndpi/pcap/mssql_tds.pcap" && http_blocks)
        .map(|(a, b)| (map(a.parse().unwrap()), map(b.parse().unwrap())))
        .collect();
    let flows = |table: &'static [Flow]| {
        table
            .iter()
            .filter(move |f| f.0 == file)
            .map(|f| ((map(f.1.parse().unwrap()), map(f.2.parse().unwrap())), f.3))
    };
    let truth: Vec<(Pair, AppId)> = flows(NDPI).chain(flows(SURICATA)).collect();
    let by_port: Vec<(Pair, AppId)> = flows(BY_PORT).collect();
    for (p, want) in &truth {
        let mine: Vec<_> = ends.iter().filter(|r| same_pair(r, p)).collect();
        let entry = found.entry(*want).or_default();
        entry.1 += 1;
        if mine.iter().any(|r| app(r) == Some(*want)) {
            entry.0 += 1;
        } else if blocked.contains(p)
            && !mine.is_empty()
            && mine.iter().all(|r| r.app == AppState::Unidentified)
        {
            eprintln!("{file}: {} -> {}: unidentified, blocked by the HTTP probe", p.0, p.1);
        } else {
            let got: Vec<_> = mine.iter().map(|r| r.app).collect();
            errors.push(format!("{file}: {} -> {}: want {want}, got {got:?}", p.0, p.1));
        }
    }
    for r in ends {
        let Some(a) = app(r).filter(|a| OURS.contains(a)) else { continue };
        let allowed = truth.iter().chain(&by_port).any(|(p, want)| *want == a && same_pair(r, p));
        if !allowed {
            errors.push(format!(
                "{file}: {} -> {} identified as {a}, not in the ground truth",
                r.client, r.server
            ));
        }
    }
}

/// Every capture of the corpus.
fn all_captures(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![];
    captures(&root.join("ndpi/pcap"), &mut files);
    captures(&root.join("suricata-verify/tests"), &mut files);
    assert!(files.len() > 100, "{} captures", files.len());
    files
}

fn ground_truth_files() -> Vec<&'static str> {
    let mut v: Vec<_> = NDPI.iter().chain(SURICATA).map(|f| f.0).collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn database_flows_are_identified_and_nothing_else() {
    let Some(root) = corpus_root() else { return };
    let files = all_captures(&root);
    let mut errors = vec![];
    let mut found = BTreeMap::new();
    let mut sessions = 0;
    for path in &files {
        let name = path.strip_prefix(&root).unwrap().to_str().unwrap().to_owned();
        let mut fr = frames(path);
        let ends = replay(&mut fr);
        sessions += ends.len();
        check(&name, &ends, &|a| a, &mut errors, &mut found);
    }
    eprintln!("{} captures, {sessions} sessions", files.len());
    assert!(sessions > 2000, "{sessions} sessions replayed");
    for (a, (got, want)) in &found {
        eprintln!("{a}: {got} of {want} ground-truth flows identified");
    }
    assert!(errors.is_empty(), "{} failures:\n{}", errors.len(), errors.join("\n"));
    for f in ground_truth_files() {
        assert!(files.iter().any(|p| p.ends_with(f)), "{f} not replayed");
    }
}

/// A bijection on ports, far from the usual ones.
fn remap(port: u16) -> u16 {
    port.wrapping_mul(40_503).rotate_left(5) ^ 0x2a2a
}

/// Rewrite the TCP/UDP ports of an Ethernet frame (IPv4 or IPv6, no extension headers).
fn remap_frame(f: &mut [u8]) {
    let off = {
        let Ok(p) = etherparse::SlicedPacket::from_ethernet(f) else { return };
        let l4 = match &p.transport {
            Some(etherparse::TransportSlice::Tcp(t)) => t.slice(),
            Some(etherparse::TransportSlice::Udp(u)) => u.slice(),
            _ => return,
        };
        l4.as_ptr() as usize - f.as_ptr() as usize
    };
    for i in [off, off + 2] {
        let port = u16::from_be_bytes([f[i], f[i + 1]]);
        f[i..i + 2].copy_from_slice(&remap(port).to_be_bytes());
    }
}

#[test]
fn labels_do_not_depend_on_ports() {
    let Some(root) = corpus_root() else { return };
    let mut errors = vec![];
    let mut found = BTreeMap::new();
    let map = |a: SocketAddr| SocketAddr::new(a.ip(), remap(a.port()));
    for path in all_captures(&root) {
        let name = path.strip_prefix(&root).unwrap().to_str().unwrap().to_owned();
        let mut fr = frames(&path);
        for (_, f) in &mut fr {
            remap_frame(f);
        }
        let ends = replay(&mut fr);
        check(&name, &ends, &map, &mut errors, &mut found);
    }
    assert!(errors.is_empty(), "{} failures:\n{}", errors.len(), errors.join("\n"));
}

// ---------------------------------------------------------------------------------------
// The probes against each other's openings (no corpus needed).

// Real first messages, from the corpus captures named in each parser's tests.
const MYSQL_GREETING: &str =
    "6a0000000a352e352e352d31302e362e31322d4d6172696144422d307562756e74753\
    02e32322e30342e3100200000004767503d212b544800fef72d0200ff81150000000000001d0000004976374f652f59\
    526d52313e006d7973716c5f6e61746976655f70617373776f726400";
const PGSQL_STARTUP: &str =
    "000000260003000075736572006f727978006461746162617365006d61696c73746f72\
    650000";
const PGSQL_AUTH: &str = "520000000c00000005ad44ff54";
const TDS_BATCH: &str =
    "010100be000001001600000012000000020000000000000000000100000020007300650074\
    0020007400720061006e00730061006300740069006f006e002000690073006f006c006100740069006f006e0020006\
    c006500760065006c00200020007200650061006400200063006f006d006d0069007400740065006400200020007300\
    65007400200069006d0070006c0069006300690074005f007400720061006e00730061006300740069006f006e00730\
    020006f00660066002000";
const TDS_DONE: &str = "0401002200330100fd0100f9000000000000000000fd0000ba000000000000000000";
const TNS_CONNECT: &str =
    "00d4000001000000013b012c0c412000ffff7f0800000100008e00460000080041410000\
    00000000000000000000000000000000000000000000000020000020000000000000284445534352495054494f4e3d2\
    8434f4e4e4543545f444154413d285349443d69676f7229284349443d2850524f4752414d3d73716c706c7573406b61\
    6c692928484f53543d6b616c692928555345523d726f6f7429292928414444524553533d2850524f544f434f4c3d544\
    3502928484f53543d31302e302e37322e3133392928504f52543d31353231292929";
const TNS_RESEND: &str = "000800000b000000";
const MONGO_QUERY: &str =
    "3b0000000000000000000000d4070000000000006162746573742e24636d640000000000\
    ffffffff13000000106765746e6f6e6365000100000000";
const CQL_OPTIONS: &str = "050000000500000000";
const CQL_SUPPORTED: &str =
    "8500000006000000660003001150524f544f434f4c5f56455253494f4e530004000433\
    2f76330004342f76340004352f76350009362f76362d62657461000b434f4d5052455353494f4e00020006736e61707\
    07900036c7a34000b43514c5f56455253494f4e00010005332e342e36";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// A session's first bytes: (application or `None`, client bytes, server bytes, who spoke
/// first, picked up mid-stream).
type Opening = (Option<AppId>, Vec<u8>, Vec<u8>, dpi_core::Dir, bool);

fn openings() -> Vec<Opening> {
    use dpi_core::Dir::{ToClient, ToServer};
    let mut helo = vec![0x80, 0x1f, 0, 12, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 1];
    helo.extend_from_slice(&[0; 8]);
    helo.extend_from_slice(b"mchello v1.0\x00\x01\x00\x03\x00\x06\x00\x07");
    let hello = tls_client_hello();
    vec![
        (Some(AppId::MYSQL), vec![], unhex(MYSQL_GREETING), ToClient, false),
        (Some(AppId::PGSQL), unhex(PGSQL_STARTUP), unhex(PGSQL_AUTH), ToServer, false),
        (Some(AppId::TDS), unhex(TDS_BATCH), unhex(TDS_DONE), ToServer, true),
        (Some(AppId::TNS), unhex(TNS_CONNECT), unhex(TNS_RESEND), ToServer, false),
        (Some(AppId::MONGODB), unhex(MONGO_QUERY), vec![], ToServer, false),
        (Some(AppId::CASSANDRA), unhex(CQL_OPTIONS), unhex(CQL_SUPPORTED), ToServer, false),
        (
            Some(AppId::REDIS),
            b"*1\r\n$7\r\nCOMMAND\r\n".to_vec(),
            b"*240\r\n*10\r\n$11\r\nsinterstore\r\n".to_vec(),
            ToServer,
            false,
        ),
        (
            Some(AppId::MEMCACHED),
            b"stats\r\n".to_vec(),
            b"STAT pid 8837\r\nSTAT uptime 193\r\n".to_vec(),
            ToServer,
            false,
        ),
        (Some(AppId::COUCHBASE), helo, vec![], ToServer, false),
        (
            None,
            b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
            ToServer,
            false,
        ),
        (None, hello.clone(), vec![], ToServer, false),
        (None, hello.clone(), hello, ToServer, true),
        (
            None,
            b"SSH-2.0-OpenSSH_9.6\r\n".to_vec(),
            b"SSH-2.0-OpenSSH_9.6\r\n".to_vec(),
            ToClient,
            false,
        ),
        (None, vec![], b"220 mail.example.com ESMTP\r\n".to_vec(), ToClient, false),
    ]
}

/// A TLS 1.2 ClientHello record (no extensions).
fn tls_client_hello() -> Vec<u8> {
    let mut h = vec![3, 3];
    h.extend_from_slice(&[7; 32]);
    h.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    let mut hs = vec![1, 0, 0, h.len() as u8];
    hs.extend_from_slice(&h);
    let mut rec = vec![22, 3, 1, 0, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

/// Each probe matches its own protocol's opening and says No to every other one, when
/// the sessions have ended (no `NeedMore` then), also mid-stream and with the roles of
/// the two directions swapped.
#[test]
fn probes_reject_each_others_openings() {
    use dpi_core::app::parsers::{
        cassandra, couchbase, memcached, mongodb, mysql, pgsql, redis, tns,
    };
    type ProbeFn = fn(&ProbeCtx<'_>) -> Probe;
    let probes: [(AppId, ProbeFn); 9] = [
        (AppId::MYSQL, mysql::probe),
        (AppId::PGSQL, pgsql::probe),
        (AppId::TDS, tds::probe),
        (AppId::TNS, tns::probe),
        (AppId::MONGODB, mongodb::probe),
        (AppId::CASSANDRA, cassandra::probe),
        (AppId::REDIS, redis::probe),
        (AppId::MEMCACHED, memcached::probe),
        (AppId::COUCHBASE, couchbase::probe),
    ];
    for (app, c2s, s2c, first, mid_stream) in openings() {
        for (who, probe) in probes {
            let cx = ProbeCtx {
                proto: 6,
                client_port: 40000,
                server_port: 40001,
                c2s: &c2s,
                s2c: &s2c,
                c2s_done: true,
                s2c_done: true,
                first: Some(first),
                mid_stream,
            };
            let want = if app == Some(who) { Probe::Match } else { Probe::No };
            assert_eq!(probe(&cx), want, "{who} probe on {app:?} ({c2s:02x?})");
            // Mid-stream, either way round: only the right protocol may match.
            for (c, s) in [(&c2s, &s2c), (&s2c, &c2s)] {
                let m = ProbeCtx { c2s: c, s2c: s, mid_stream: true, ..cx };
                if app != Some(who) {
                    assert_eq!(probe(&m), Probe::No, "{who} probe mid-stream on {app:?}");
                }
            }
        }
    }
}
