//! `enforcer run` on the AF_PACKET data path, end to end: real namespaces, real veths,
//! the real binary, real traffic (Rust sockets, curl, ping).
//!
//! - Discover: tap ports; the reports list exactly the connections made.
//! - Protect: the link re-plumbed through the enforcer; the policy decides.
//! - Mid-session deny: an application rule resets an HTTP exchange on an allowed port.
//! - Discover → Protect with a live connection.
//! - Stopping: clean (links restored) and SIGKILL (fail-closed, or fail-open by option),
//!   and the next start recovering what the killed run left.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod live_common;

use live_common::*;
use netns_harness::{eventually, pseudo_random};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

const ALLOW_8080: &str = r#"
[[rule]]
id = 10
from = "10.77.0.1"
to = "10.77.0.2"
ports = ["tcp/8080"]
action = "allow"

[[rule]]
id = 11
from = "fd77::1"
to = "fd77::2"
ports = ["tcp/8080"]
action = "allow"
"#;

const ALLOW_ICMP: &str = r#"
[[rule]]
id = 30
from = "10.77.0.1"
to = "10.77.0.2"
ports = ["icmp"]
action = "allow"
"#;

/// (workload, client, server, port, proto) → (sessions, bytes, app) summed over lines.
type ConnKey = (String, String, String, u64, String);

fn connections(lines: &[Value]) -> BTreeMap<ConnKey, (u64, u64, String)> {
    let mut out: BTreeMap<ConnKey, (u64, u64, String)> = BTreeMap::new();
    for l in events(lines, "connection") {
        let (src, dst) = (l["src_ip"].as_str().unwrap_or(""), l["dest_ip"].as_str().unwrap_or(""));
        if ![C1, C2].contains(&src) || ![C1, C2].contains(&dst) {
            continue;
        }
        let c = &l["connection"];
        let key = (
            c["workload"].as_str().unwrap().to_string(),
            src.to_string(),
            dst.to_string(),
            l["dest_port"].as_u64().unwrap_or(0),
            l["proto"].as_str().unwrap().to_string(),
        );
        let e = out.entry(key).or_default();
        e.0 += c["sessions"].as_u64().unwrap_or(0);
        e.1 += c["bytes"].as_u64().unwrap_or(0);
        if let Some(app) = l["app_proto"].as_str() {
            if app != "failed" && !app.is_empty() {
                e.2 = app.to_string();
            }
        }
    }
    out
}

#[test]
fn discover_reports_exactly_the_connections_made() {
    if !ready() {
        return;
    }
    let t = Topo::new("discover");
    let run = t.run_file(
        "",
        "",
        &[("c1", &t.c1, "discover", "afpacket"), ("c2", &t.c2, "discover", "afpacket")],
    );
    let e = t.start(&run);
    let status = e.ctl(r#"{"cmd":"status"}"#);
    let wirings: Vec<_> =
        status["workloads"].as_array().unwrap().iter().map(|w| w["wiring"].clone()).collect();
    assert_eq!(wirings, vec!["tap", "tap"], "{status}");

    // TCP: 10 kB echoed on 8080.
    let server = echo_server(&t.c2, "10.77.0.2:8080", 1);
    let mut s = connect(&t.c1, "10.77.0.2:8080", Duration::from_secs(2)).unwrap();
    let data = pseudo_random(10_000);
    assert_eq!(echo_transfer(&mut s, &data).unwrap(), hash(&data));
    drop(s);
    assert_eq!(server.join().unwrap().len(), 1);
    // UDP: three datagrams to 5353 from one socket.
    let (a, b) = (udp(&t.c1, "10.77.0.1:40000"), udp(&t.c2, "10.77.0.2:5353"));
    assert!(udp_reaches(&a, &b, 3));
    // ICMP: one ping session.
    assert!(ping(&t.c1, C2, 3));
    // HTTP with curl.
    let web = http_server(&t.c2, "10.77.0.2:8000", 1);
    assert_eq!(curl(&t.c1, "http://10.77.0.2:8000/"), 0);
    assert_eq!(web.join().unwrap(), vec!["answered".to_string()]);

    // Bad control requests get an error reply and change nothing.
    for bad in [
        "not json",
        r#"{"cmd":"format_disk"}"#,
        r#"{"cmd":"set_mode","workload":"nobody","mode":"protect"}"#,
        r#"{"cmd":"set_mode","workload":"c1","mode":"paranoid"}"#,
    ] {
        let v = e.try_ctl(bad).unwrap();
        assert_eq!(v["ok"], false, "{bad}: {v}");
        assert!(!v["error"].as_str().unwrap().is_empty(), "{bad}: {v}");
    }
    assert_eq!(e.ctl(r#"{"cmd":"status"}"#)["workloads"], status["workloads"]);

    // Sessions end and are reported at stop.
    std::thread::sleep(Duration::from_millis(300));
    e.stop();
    let conns = connections(&t.report_lines());
    // Between two workloads, the side whose policy applies (ingress: the server, c2)
    // decides and reports; the client's pass is the same connection and is not reported
    // twice.
    let key = |port: u64, proto: &str| {
        ("c2".to_string(), C1.to_string(), C2.to_string(), port, proto.to_string())
    };
    let mut expected = vec![key(8000, "TCP"), key(8080, "TCP"), key(5353, "UDP")];
    let icmp: Vec<_> = conns.keys().filter(|k| k.4.starts_with("ICMP")).cloned().collect();
    let others: Vec<_> = conns.keys().filter(|k| !k.4.starts_with("ICMP")).cloned().collect();
    expected.sort();
    assert_eq!(others, expected, "{conns:#?}");
    assert_eq!(icmp.len(), 1, "one ICMP connection: {conns:#?}");
    assert_eq!((icmp[0].0.as_str(), icmp[0].1.as_str(), icmp[0].2.as_str()), ("c2", C1, C2));
    assert_eq!(conns[&icmp[0]].0, 1, "one ping session");
    let (sessions, bytes, _) = conns[&key(8080, "TCP")].clone();
    assert_eq!(sessions, 1);
    assert!(bytes >= 20_000, "both directions of 10 kB counted: {bytes}");
    let (sessions, bytes, _) = conns[&key(5353, "UDP")].clone();
    assert_eq!(sessions, 1);
    assert!(bytes >= 3 * 10, "{bytes}");
    let (sessions, _, app) = conns[&key(8000, "TCP")].clone();
    assert_eq!((sessions, app.as_str()), (1, "http"));
}

#[test]
fn protect_enforces_the_policy_and_stop_restores_the_links() {
    protect_enforces("shared");
}

#[test]
fn protect_with_port_pairs_enforces_the_same() {
    protect_enforces("pair");
}

/// Both protected, with `inline_ports = ports`: the engine on the shared `vth-neuv`
/// (NeuVector's layout) or on each workload's own `vin<i>`/`vex<i>`.
fn protect_enforces(ports: &str) {
    if !ready() {
        return;
    }
    let t = Topo::new(&format!("protect-{ports}"));
    let (before1, before2) = (Topo::link_state(&t.c1), Topo::link_state(&t.c2));
    let run = t.run_file(
        &format!("{ALLOW_8080}{HTTP_DENIED_ON_8090}"),
        &format!("inline_ports = \"{ports}\""),
        &[("c1", &t.c1, "protect", "afpacket"), ("c2", &t.c2, "protect", "afpacket")],
    );
    let e = t.start(&run);
    let status = e.ctl(r#"{"cmd":"status"}"#);
    let wirings: Vec<_> =
        status["workloads"].as_array().unwrap().iter().map(|w| w["wiring"].clone()).collect();
    assert_eq!(wirings, vec!["inline", "inline"], "{status}");
    let enf_links = t.enf.output(&["ip", "-o", "link"]).unwrap();
    for l in ["vin", "vex", "vbr-neuv", "vth-neuv"] {
        assert!(enf_links.contains(l), "re-plumbed through the enforcer: {enf_links}");
    }

    // 3 MB echoed on the allowed port, IPv4 and IPv6: intact.
    let data = pseudo_random(3 << 20);
    for addr in ["10.77.0.2:8080", "[fd77::2]:8080"] {
        let server = echo_server(&t.c2, addr, 1);
        let mut s = connect(&t.c1, addr, Duration::from_secs(3))
            .unwrap_or_else(|err| panic!("{addr}: {err}: {:?}", t.report_lines()));
        assert_eq!(echo_transfer(&mut s, &data).unwrap(), hash(&data), "{addr}");
        drop(s);
        assert!(server.join().unwrap()[0].is_ok());
    }

    // Another port: the SYN is dropped, the connect times out.
    let _listener = t.c2.enter(|| std::net::TcpListener::bind("10.77.0.2:8081")).unwrap();
    let r = connect(&t.c1, "10.77.0.2:8081", Duration::from_secs(2));
    assert_eq!(r.err().map(|e| e.kind()), Some(ErrorKind::TimedOut));
    // Denied UDP is dropped.
    let (a, b) = (udp(&t.c1, "10.77.0.1:40001"), udp(&t.c2, "10.77.0.2:5353"));
    assert!(!udp_reaches(&a, &b, 3));
    // ICMP follows the policy: denied, then allowed after a reload.
    assert!(!ping(&t.c1, C2, 2));
    std::fs::write(
        t.dir.path().join("policy.toml"),
        format!("{ALLOW_8080}{HTTP_DENIED_ON_8090}{ALLOW_ICMP}"),
    )
    .unwrap();
    e.ctl(r#"{"cmd":"reload"}"#);
    assert!(ping(&t.c1, C2, 2), "{}", e.log_text());

    // Mid-session deny: HTTP on 8090 is reset once identified, on both sides.
    let web = http_server(&t.c2, "10.77.0.2:8090", 1);
    let mut s = connect(&t.c1, "10.77.0.2:8090", Duration::from_secs(2)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: c2\r\nUser-Agent: live-test\r\nAccept: */*\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 256];
    let client = s.read(&mut buf);
    assert_eq!(
        client.as_ref().err().map(|e| e.kind()),
        Some(ErrorKind::ConnectionReset),
        "{client:?}"
    );
    let server = web.join().unwrap();
    assert_eq!(server, vec!["ConnectionReset".to_string()]);

    let stats = e.ctl(r#"{"cmd":"stats"}"#);
    let port_sum = |field: &str| -> u64 {
        stats["workers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|w| w["ports"].as_array().unwrap().iter())
            .map(|p| p[field].as_u64().unwrap())
            .sum()
    };
    assert!(port_sum("dropped") >= 3, "policy drops counted: {stats}");
    // The containers keep their default offloads and `inline_gso` is on by default: the
    // 3 MB echoes crossed the engine as GSO super-frames, whole, and nothing looped.
    assert!(port_sum("gso_frames") > 10, "{stats}");
    assert_eq!(port_sum("outgoing_skipped"), 0, "{stats}");
    assert!(port_sum("rx_frames") < 100_000, "{stats}");
    let names: std::collections::BTreeSet<String> = stats["workers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["ports"].as_array().unwrap().iter())
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    if ports == "pair" {
        assert!(!names.contains("vth-neuv"), "{names:?}");
        assert!(names.iter().filter(|n| n.starts_with("vin") || n.starts_with("vex")).count() == 4);
    } else {
        assert!(names.contains("vth-neuv"), "{names:?}");
    }
    let engine_sum = |field: &str| -> u64 {
        stats["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["engine"][field].as_u64().unwrap())
            .sum()
    };
    assert!(engine_sum("packets") > 100 && engine_sum("bytes") > 6 << 20, "{stats}");
    assert_eq!(engine_sum("events_dropped"), 0, "{stats}");

    e.stop();
    // Exactly one violation for the denied connect (its SYN retransmission is the same
    // connection), and the HTTP denial.
    let lines = t.report_lines();
    let alerts = events(&lines, "alert");
    let on =
        |port: u64| alerts.iter().filter(|a| a["dest_port"] == port && a["src_ip"] == C1).count();
    assert_eq!(on(8081), 1, "one violation for the denied connection: {alerts:#?}");
    let workloads_8081: std::collections::BTreeSet<_> = alerts
        .iter()
        .filter(|a| a["dest_port"] == 8081)
        .map(|a| a["enforcer"]["workload"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(workloads_8081.len(), 1, "decided by one side (ingress: c2): {alerts:#?}");
    assert!(on(8090) >= 1, "{alerts:#?}");
    assert!(
        alerts.iter().any(|a| a["dest_port"] == 8090 && a["app_proto"] == "http"),
        "{alerts:#?}"
    );

    // Unwired: the links are what they were, and plain connectivity is back.
    assert_eq!(Topo::link_state(&t.c1), before1);
    assert_eq!(Topo::link_state(&t.c2), before2);
    assert!(ping(&t.c1, C2, 1));
    let r = connect(&t.c1, "10.77.0.2:8082", Duration::from_secs(2));
    assert_eq!(r.err().map(|e| e.kind()), Some(ErrorKind::ConnectionRefused));
}

#[test]
fn a_live_connection_survives_discover_to_protect_and_back() {
    // NeuVector's service pair here (transmit offload off on vbr-neuv, every frame
    // segmented before the engine); the other inline tests use the default inline_gso.
    survives_switching("switch", "inline_gso = false");
}

#[test]
fn a_live_connection_survives_switching_with_port_pairs() {
    survives_switching("switch-pair", "inline_ports = \"pair\"");
}

fn survives_switching(topo: &str, extra: &str) {
    if !ready() {
        return;
    }
    let t = Topo::new(topo);
    let before2 = Topo::link_state(&t.c2);
    let run = t.run_file(
        ALLOW_8080,
        extra,
        &[("c1", &t.c1, "discover", "afpacket"), ("c2", &t.c2, "discover", "afpacket")],
    );
    let e = t.start(&run);
    let server = echo_server(&t.c2, "10.77.0.2:8080", 1);
    let mut s = connect(&t.c1, "10.77.0.2:8080", Duration::from_secs(2)).unwrap();
    let chunk = pseudo_random(100_000);
    assert_eq!(echo_transfer(&mut s, &chunk).unwrap(), hash(&chunk));

    e.ctl(r#"{"cmd":"set_mode","workload":"c2","mode":"protect"}"#);
    e.ctl(r#"{"cmd":"set_mode","workload":"c1","mode":"protect"}"#);
    let status = e.ctl(r#"{"cmd":"status"}"#);
    assert!(
        status["workloads"].as_array().unwrap().iter().all(|w| w["wiring"] == "inline"),
        "{status}"
    );
    for _ in 0..3 {
        assert_eq!(echo_transfer(&mut s, &chunk).unwrap(), hash(&chunk));
    }
    // Protected now: a new connection on another port is refused by policy (dropped).
    assert!(connect(&t.c1, "10.77.0.2:8081", Duration::from_secs(1)).is_err());

    e.ctl(r#"{"cmd":"set_mode","workload":"c2","mode":"discover"}"#);
    assert_eq!(Topo::link_state(&t.c2), before2, "back to a tap: the link is restored");
    assert_eq!(echo_transfer(&mut s, &chunk).unwrap(), hash(&chunk));
    drop(s);
    assert!(server.join().unwrap()[0].is_ok());
    e.stop();
}

#[test]
fn sigkill_fails_closed_and_the_next_start_recovers() {
    fails_closed("failclosed", "");
}

#[test]
fn sigkill_with_port_pairs_fails_closed_too() {
    fails_closed("failclosed-pair", "inline_ports = \"pair\"");
}

fn fails_closed(topo: &str, extra: &str) {
    if !ready() {
        return;
    }
    let t = Topo::new(topo);
    let before1 = Topo::link_state(&t.c1);
    let run = t.run_file(
        ALLOW_ICMP,
        extra,
        &[("c1", &t.c1, "protect", "afpacket"), ("c2", &t.c2, "protect", "afpacket")],
    );
    let e = t.start(&run);
    assert!(ping(&t.c1, C2, 2));
    e.kill();
    assert!(!ping(&t.c1, C2, 2), "fail-closed: no engine, no traffic");
    // The next start finds the state left behind, restores, and wires again.
    let e = t.start(&run);
    assert!(e.log_text().contains("recovery"), "{}", e.log_text());
    assert!(eventually(Duration::from_secs(5), || ping(&t.c1, C2, 1)));
    e.stop();
    assert_eq!(Topo::link_state(&t.c1), before1);
    assert!(ping(&t.c1, C2, 1));
}

#[test]
fn sigkill_fails_open_when_configured() {
    if !ready() {
        return;
    }
    let t = Topo::new("failopen");
    let before1 = Topo::link_state(&t.c1);
    // No rule allows ICMP: while the enforcer runs, ping is denied.
    let run = t.run_file(
        "",
        "fail = \"open\"",
        &[("c1", &t.c1, "protect", "afpacket"), ("c2", &t.c2, "protect", "afpacket")],
    );
    let e = t.start(&run);
    assert!(!ping(&t.c1, C2, 2));
    e.kill();
    assert!(
        eventually(Duration::from_secs(5), || ping(&t.c1, C2, 1)),
        "fail-open: traffic passes uninspected"
    );
    let e = t.start(&run);
    assert!(!ping(&t.c1, C2, 2), "inspected again");
    e.stop();
    assert_eq!(Topo::link_state(&t.c1), before1);
    assert!(ping(&t.c1, C2, 1));
}

#[test]
fn a_failed_start_unwires_what_it_had_wired() {
    if !ready() {
        return;
    }
    let t = Topo::new("badstart");
    let before1 = Topo::link_state(&t.c1);
    // c1 is wired inline first; c2 names an interface that does not exist.
    let run = t.run_file("", "", &[("c1", &t.c1, "protect", "afpacket")]);
    let mut text = std::fs::read_to_string(&run).unwrap();
    text.push_str(&format!(
        "[[workload]]\nname = \"c2\"\nnetns = \"{}\"\niface = \"eth9\"\nmode = \"protect\"\n",
        t.c2.path()
    ));
    std::fs::write(&run, text).unwrap();
    let out = t
        .enf
        .cmd(env!("CARGO_BIN_EXE_enforcer"))
        .args(["run", "--config"])
        .arg(&run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("c2") && stderr.contains("eth9"),
        "names the workload and interface: {stderr}"
    );
    assert_eq!(Topo::link_state(&t.c1), before1, "c1 restored: {stderr}");
    assert!(ping(&t.c1, C2, 1));
    let enf_links = t.enf.output(&["ip", "-o", "link"]).unwrap();
    assert!(!enf_links.contains("vex"), "nothing left in the enforcer namespace: {enf_links}");
}

#[test]
fn learn_live_then_protect_with_the_learned_policy() {
    if !ready() {
        return;
    }
    let t = Topo::new("learn");
    // Discover: c1 talks to c2 on 8080 (TCP) and 5353 (UDP).
    let run = t.run_file(
        "",
        "",
        &[("c1", &t.c1, "discover", "afpacket"), ("c2", &t.c2, "discover", "afpacket")],
    );
    let e = t.start(&run);
    let server = echo_server(&t.c2, "10.77.0.2:8080", 1);
    let mut s = connect(&t.c1, "10.77.0.2:8080", Duration::from_secs(2)).unwrap();
    assert_eq!(echo_transfer(&mut s, b"learn me").unwrap(), hash(b"learn me"));
    drop(s);
    server.join().unwrap();
    let (a, b) = (udp(&t.c1, "10.77.0.1:40002"), udp(&t.c2, "10.77.0.2:5353"));
    assert!(udp_reaches(&a, &b, 2));
    e.stop();

    // Learn from the live reports.
    let policy = t.dir.path().join("learned.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_enforcer"))
        .args(["learn", "--out"])
        .arg(&policy)
        .arg(t.reports())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let learned = std::fs::read_to_string(&policy).unwrap();
    assert!(learned.contains("tcp/8080") && learned.contains("udp/5353"), "{learned}");

    // Protect with exactly what was learned: the learned connections pass, others do not.
    std::fs::write(t.dir.path().join("policy.toml"), &learned).unwrap();
    let mut text = std::fs::read_to_string(&run).unwrap().replace("\"discover\"", "\"protect\"");
    text = text.replace("policy = \"policy.toml\"", "policy = \"learned.toml\"");
    std::fs::write(&run, text).unwrap();
    let e = t.start(&run);
    let server = echo_server(&t.c2, "10.77.0.2:8080", 1);
    let mut s = connect(&t.c1, "10.77.0.2:8080", Duration::from_secs(2)).unwrap();
    assert_eq!(echo_transfer(&mut s, b"learned").unwrap(), hash(b"learned"));
    drop(s);
    server.join().unwrap();
    assert!(udp_reaches(&a, &b, 2), "learned UDP passes");
    let _l = t.c2.enter(|| std::net::TcpListener::bind("10.77.0.2:8081")).unwrap();
    assert!(connect(&t.c1, "10.77.0.2:8081", Duration::from_secs(1)).is_err(), "not learned");
    assert!(!ping(&t.c1, C2, 1), "not learned");
    e.stop();
}

#[test]
fn workloads_come_and_go_while_running() {
    if !ready() {
        return;
    }
    let t = Topo::new("addremove");
    let before2 = Topo::link_state(&t.c2);
    let run = t.run_file(ALLOW_8080, "", &[("c1", &t.c1, "discover", "afpacket")]);
    let e = t.start(&run);
    let socket = t.state_dir().join("control.sock");
    let ctl = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_enforcer"))
            .arg("ctl")
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .output()
            .unwrap()
    };
    // A container starts: c2 joins, protected, with `enforcer ctl add`.
    let out = ctl(&["add", "c2", "--netns", &t.c2.path(), "--mode", "protect"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status = e.ctl(r#"{"cmd":"status"}"#);
    assert_eq!(status["workloads"].as_array().unwrap().len(), 2, "{status}");
    let _l = t.c2.enter(|| std::net::TcpListener::bind("10.77.0.2:8081")).unwrap();
    assert!(connect(&t.c1, "10.77.0.2:8081", Duration::from_secs(1)).is_err(), "c2 is protected");
    let server = echo_server(&t.c2, "10.77.0.2:8080", 1);
    let mut s = connect(&t.c1, "10.77.0.2:8080", Duration::from_secs(2)).unwrap();
    assert_eq!(echo_transfer(&mut s, b"allowed").unwrap(), hash(b"allowed"));
    drop(s);
    server.join().unwrap();
    // Clashes and unknown names are refused with a reason; nothing changes.
    let out = ctl(&["add", "c2", "--netns", &t.c2.path()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("running"), "{out:?}");
    let out = ctl(&["add", "c3", "--netns", &t.c1.path()]);
    assert!(!out.status.success(), "same interface as c1");
    let out = ctl(&["remove", "nobody"]);
    assert!(!out.status.success());
    // The container stops: c2 leaves, its link is restored, its traffic is free again.
    let out = ctl(&["remove", "c2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(Topo::link_state(&t.c2), before2);
    let r = connect(&t.c1, "10.77.0.2:8081", Duration::from_secs(2));
    assert!(r.is_ok(), "no longer protected: {r:?}");
    let status = e.ctl(r#"{"cmd":"status"}"#);
    assert_eq!(status["workloads"].as_array().unwrap().len(), 1, "{status}");
    e.stop();
}

#[test]
fn monitor_reports_violations_and_stops_nothing() {
    if !ready() {
        return;
    }
    let t = Topo::new("monitor");
    let run = t.run_file(ALLOW_8080, "", &[("c2", &t.c2, "monitor", "afpacket")]);
    let e = t.start(&run);
    let status = e.ctl(r#"{"cmd":"status"}"#);
    assert_eq!(status["workloads"][0]["wiring"], "tap", "{status}");
    // Log rotation: the report file is moved away, SIGHUP reopens it.
    std::fs::write(t.reports(), "").unwrap();
    std::fs::rename(t.reports(), t.dir.path().join("reports.json.1")).unwrap();
    let hup = std::process::Command::new("kill").args(["-HUP", &e.pid().to_string()]).status();
    assert!(hup.unwrap().success());
    assert!(
        eventually(Duration::from_secs(5), || t.reports().exists()),
        "reopened: {}",
        e.log_text()
    );
    let server = echo_server(&t.c2, "10.77.0.2:8081", 1);
    let mut s = connect(&t.c1, "10.77.0.2:8081", Duration::from_secs(2)).unwrap();
    assert_eq!(echo_transfer(&mut s, b"not allowed").unwrap(), hash(b"not allowed"));
    drop(s);
    server.join().unwrap();
    e.stop();
    let lines = t.report_lines();
    let alerts = events(&lines, "alert");
    let v: Vec<_> = alerts.iter().filter(|a| a["dest_port"] == 8081).collect();
    assert_eq!(v.len(), 1, "one violation: {alerts:#?}");
    assert_eq!(v[0]["alert"]["action"], "allowed", "reported, not blocked: {v:#?}");
    assert_eq!(v[0]["enforcer"]["workload"], "c2");
}

#[test]
fn a_second_enforcer_on_the_same_state_directory_is_refused_and_changes_nothing() {
    if !ready() {
        return;
    }
    let t = Topo::new("twice");
    let run = t.run_file(ALLOW_ICMP, "", &[("c1", &t.c1, "protect", "afpacket")]);
    let e = t.start(&run);
    assert!(ping(&t.c1, C2, 1));
    let out = t
        .enf
        .cmd(env!("CARGO_BIN_EXE_enforcer"))
        .args(["run", "--config"])
        .arg(&run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("another enforcer is running"), "{stderr}");
    // The first one's wiring is untouched: still inline, still enforcing.
    let status = e.ctl(r#"{"cmd":"status"}"#);
    assert_eq!(status["workloads"][0]["wiring"], "inline", "{status}");
    assert!(ping(&t.c1, C2, 1));
    let _l = t.c2.enter(|| std::net::TcpListener::bind("10.77.0.2:8081")).unwrap();
    assert!(connect(&t.c1, "10.77.0.2:8081", Duration::from_secs(1)).is_err(), "still protected");
    e.stop();
}
