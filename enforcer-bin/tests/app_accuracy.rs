//! Application identification accuracy against nDPI's expected labels on its test
//! captures (`../shared/corpus/index.json`, rows with confidence "DPI" are ground truth).
//!
//! - Recall: of the flows nDPI identified as a protocol in our set, the share we label the
//!   same. Goal: at least 98%.
//! - False labels: of the flows nDPI labelled with a protocol outside our set, or left
//!   unknown, the share we label as one of ours. Goal: at most 0.5%.
//!
//! Flows we do not track as sessions at all (inside tunnels, which are not decapsulated;
//! see `flow_oracle.rs`) are counted apart, not as misses.
//!
//! The per-protocol table is committed in `docs/app-accuracy.md`; this test fails when the
//! goals are missed or when the totals regress from the committed table. Regenerate the
//! table after an improvement with `UPDATE_DOCS=1 cargo test -p enforcer-bin --test
//! app_accuracy`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dpi_core::app::{AppId, AppState};
use dpi_core::{Config, Ctx, Event, SessionRecord};
use enforcer::capture::CaptureReader;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// nDPI's protocol names (master protocol, before the '.') for the applications we
/// identify.
const NDPI_NAMES: &[(&str, AppId)] = &[
    ("TLS", AppId::TLS),
    ("HTTP", AppId::HTTP),
    ("DNS", AppId::DNS),
    ("SSH", AppId::SSH),
    ("DHCP", AppId::DHCP),
    ("NTP", AppId::NTP),
    ("TFTP", AppId::TFTP),
    ("PostgreSQL", AppId::PGSQL),
    ("MQTT", AppId::MQTT),
    ("HTTP2", AppId::HTTP2),
    ("SIP", AppId::SIP),
    ("RTSP", AppId::RTSP),
    ("MySQL", AppId::MYSQL),
    ("RESP", AppId::REDIS),
    ("Redis", AppId::REDIS),
    ("Zookeeper", AppId::ZOOKEEPER),
    ("Cassandra", AppId::CASSANDRA),
    ("MongoDB", AppId::MONGODB),
    ("Kafka", AppId::KAFKA),
    ("Couchbase", AppId::COUCHBASE),
    ("Oracle", AppId::TNS),
    ("MsSQL-TDS", AppId::TDS),
    ("gRPC", AppId::GRPC),
    ("Memcached", AppId::MEMCACHED),
    ("AMQP", AppId::AMQP),
    ("Nats", AppId::NATS),
];

type FlowId = (u8, [String; 2], Option<u16>);

fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    dir.join("index.json").is_file().then_some(dir)
}

fn endpoint(ip: std::net::IpAddr, port: u16) -> String {
    match ip {
        std::net::IpAddr::V4(a) => format!("{a}:{port}"),
        std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

fn id_of(r: &SessionRecord) -> FlowId {
    let ports = matches!(r.proto, 6 | 17);
    let (cp, sp) = if ports { (r.client.port(), r.server.port()) } else { (0, 0) };
    let mut e = [endpoint(r.client.ip(), cp), endpoint(r.server.ip(), sp)];
    e.sort();
    (r.proto, e, r.vlans().last().copied())
}

/// Our application per flow of a capture (the first identified session of the flow).
pub fn our_apps(path: &Path) -> HashMap<FlowId, AppState> {
    let mut reader = CaptureReader::open(path).unwrap();
    let mut ctx = Ctx::new(Config { session_start_events: false, ..Config::default() });
    let mut out: HashMap<FlowId, AppState> = HashMap::new();
    let take = |ctx: &mut Ctx, out: &mut HashMap<FlowId, AppState>| {
        while let Some(ev) = ctx.poll_event() {
            if let Event::SessionEnd(r) = ev {
                let e = out.entry(id_of(&r)).or_insert(r.app);
                if !matches!(e, AppState::Known(_)) {
                    *e = r.app;
                }
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

fn l4_num(s: &str) -> u8 {
    match s {
        "TCP" => 6,
        "UDP" => 17,
        "ICMP" => 1,
        "ICMPV6" => 58,
        "IGMP" => 2,
        "ESP" => 50,
        _ => 0,
    }
}

fn expected_id(f: &serde_json::Value) -> FlowId {
    let l4 = l4_num(f["l4"].as_str().unwrap());
    let norm = |s: &str| {
        let (ip, port) = s.rsplit_once(':').unwrap();
        let ip: std::net::IpAddr =
            ip.trim_start_matches('[').trim_end_matches(']').parse().unwrap();
        endpoint(ip, if matches!(l4, 6 | 17) { port.parse().unwrap() } else { 0 })
    };
    let mut e = [norm(f["src"].as_str().unwrap()), norm(f["dst"].as_str().unwrap())];
    e.sort();
    (l4, e, f["vlan"].as_u64().map(|v| v as u16))
}

#[derive(Default, Debug, Clone, Copy)]
struct Row {
    ndpi: u32,
    found: u32,
    missed: u32,
    false_labels: u32,
}

/// Accuracy over the corpus: per application, and the flows outside our set.
fn measure(dir: &Path) -> (BTreeMap<&'static str, Row>, u32, u32, Vec<String>) {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let names: HashMap<&str, AppId> = NDPI_NAMES.iter().copied().collect();
    let mut rows: BTreeMap<&'static str, Row> = BTreeMap::new();
    let mut outside = 0u32;
    let mut untracked = 0u32;
    let mut notes = vec![];
    for entry in index.as_array().unwrap().iter().filter(|e| e["set"] == "ndpi") {
        let Some(flows) = entry["expected_ndpi_4_11_flows"].as_array() else { continue };
        let file = entry["file"].as_str().unwrap();
        let ours = our_apps(&dir.join(file));
        for f in flows {
            let conf = f["confidence"].as_str().unwrap_or("");
            let label = f["proto"].as_str().unwrap_or("").split('.').next().unwrap_or("");
            let Some(&got) = ours.get(&expected_id(f)) else {
                untracked += 1;
                continue;
            };
            let want = names.get(label).copied();
            match want {
                Some(app) if conf.starts_with("DPI") => {
                    let r = rows.entry(app.name()).or_default();
                    r.ndpi += 1;
                    if got == AppState::Known(app) {
                        r.found += 1;
                    } else {
                        r.missed += 1;
                        notes.push(format!("missed {label}: {file} {} -> {:?}", f["src"], got));
                    }
                }
                Some(_) => {} // matched by port or guessed: not ground truth
                None if conf.starts_with("DPI") || conf == "Unknown" => {
                    outside += 1;
                    if let AppState::Known(a) = got {
                        rows.entry(a.name()).or_default().false_labels += 1;
                        notes.push(format!("false {}: {file} {} nDPI {label}", a.name(), f["src"]));
                    }
                }
                None => {}
            }
        }
    }
    (rows, outside, untracked, notes)
}

fn table(
    rows: &BTreeMap<&'static str, Row>,
    outside: u32,
    untracked: u32,
) -> (String, u32, u32, u32) {
    let (mut n, mut found, mut falses) = (0, 0, 0);
    let mut t = String::from(
        "| application | nDPI flows | found | missed | false labels |\n|---|---:|---:|---:|---:|\n",
    );
    for (name, r) in rows {
        t.push_str(&format!(
            "| {name} | {} | {} | {} | {} |\n",
            r.ndpi, r.found, r.missed, r.false_labels
        ));
        n += r.ndpi;
        found += r.found;
        falses += r.false_labels;
    }
    t.push_str(&format!(
        "| **total** | {n} | {found} | {} | {falses} |\n\nRecall: {found}/{n} = {:.2}%. False labels: {falses} of {outside} flows outside our set or unknown = {:.2}%. Not counted: {untracked} flows inside tunnels, which are not sessions here.\n",
        n - found,
        100.0 * f64::from(found) / f64::from(n.max(1)),
        100.0 * f64::from(falses) / f64::from(outside.max(1)),
    ));
    (t, n, found, falses)
}

#[test]
fn identification_accuracy_against_ndpi() {
    let Some(dir) = corpus_dir() else {
        eprintln!("note: corpus not found next to the workspace (../../shared/corpus): skipped");
        return;
    };
    let (rows, outside, untracked, notes) = measure(&dir);
    let (t, n, found, falses) = table(&rows, outside, untracked);
    eprintln!("{t}");
    for note in &notes {
        eprintln!("{note}");
    }
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/app-accuracy.md");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let head = "# Application identification accuracy\n\nMeasured against nDPI 4.11's expected labels for its own test captures (`../shared/corpus/ndpi/pcap`, labels with confidence `DPI`), by `enforcer-bin/tests/app_accuracy.rs` (regenerate: `UPDATE_DOCS=1 cargo test -p enforcer-bin --test app_accuracy`). *found*: nDPI and we agree; *missed*: nDPI names the protocol, we do not; *false labels*: we name the protocol, nDPI names another one outside our set or none.\n\n";
        std::fs::write(&doc, format!("{head}{t}")).unwrap();
    }
    let recall = f64::from(found) / f64::from(n.max(1));
    let false_rate = f64::from(falses) / f64::from(outside.max(1));
    assert!(recall >= 0.98, "recall {:.2}% below 98%", 100.0 * recall);
    assert!(false_rate <= 0.005, "false labels {:.2}% above 0.5%", 100.0 * false_rate);
    // No regression from the committed table.
    if let Ok(committed) = std::fs::read_to_string(&doc) {
        let total = committed.lines().find(|l| l.starts_with("| **total**")).unwrap_or("");
        let cols: Vec<u32> = total.split('|').filter_map(|c| c.trim().parse().ok()).collect();
        if let [_, c_found, _, c_false] = cols[..] {
            assert!(found >= c_found, "found {found} < committed {c_found}");
            assert!(falses <= c_false, "false labels {falses} > committed {c_false}");
        }
    }
}
