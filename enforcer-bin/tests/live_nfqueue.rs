//! `enforcer run` on the NFQUEUE data path, end to end: iptables-nft rules in the
//! workload's namespace queue its input and output; the engine answers every packet.
//!
//! - Allowed TCP, UDP and ICMP pass and denied traffic is blocked, IPv4 and IPv6.
//! - An application rule cuts a denied app off once identified, with resets to both ends.
//! - Stopped cleanly: the rules are gone (iptables-save as before), traffic flows.
//! - SIGKILL: `--queue-bypass` keeps traffic flowing with nobody on the queue.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod live_common;

use live_common::*;
use netns_harness::pseudo_random;
use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

const ALLOW: &str = r#"
[[rule]]
id = 10
from = ["10.77.0.1", "fd77::1"]
to = ["10.77.0.2", "fd77::2"]
ports = ["tcp/8080", "udp/5353", "icmp"]
action = "allow"
"#;

/// An EVE address (IPv6 is written expanded, as Suricata does).
fn ip_of(v: &serde_json::Value) -> Option<std::net::IpAddr> {
    v.as_str()?.parse().ok()
}

fn saves(ns: &netns_harness::AnonNs) -> (String, String) {
    let save = |tool: &str| {
        let out = ns.output(&[tool]).unwrap();
        out.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n")
    };
    (save("iptables-nft-save"), save("ip6tables-nft-save"))
}

#[test]
fn nfqueue_enforces_v4_v6_and_apps_and_bypasses_when_gone() {
    if !ready() {
        return;
    }
    let t = Topo::new("nfq");
    let before = saves(&t.c2);
    let run = t.run_file(
        &format!("{ALLOW}{HTTP_DENIED_ON_8090}"),
        "",
        &[("c2", &t.c2, "protect", "nfqueue")],
    );
    let e = t.start(&run);
    let status = e.ctl(r#"{"cmd":"status"}"#);
    assert_eq!(status["workloads"][0]["wiring"], "nfqueue", "{status}");
    let (v4, _) = saves(&t.c2);
    assert!(v4.contains("--queue-num 1 --queue-bypass"), "{v4}");

    for (server_ip, client_ip) in [(C2, C1), (C2_6, C1_6)] {
        let sa = |port: u16| {
            if server_ip.contains(':') {
                format!("[{server_ip}]:{port}")
            } else {
                format!("{server_ip}:{port}")
            }
        };
        let ca = |port: u16| {
            if client_ip.contains(':') {
                format!("[{client_ip}]:{port}")
            } else {
                format!("{client_ip}:{port}")
            }
        };
        // Allowed TCP: 1 MB intact.
        let server = echo_server(&t.c2, &sa(8080), 1);
        let mut s = connect(&t.c1, &sa(8080), Duration::from_secs(3)).unwrap();
        let data = pseudo_random(1 << 20);
        assert_eq!(echo_transfer(&mut s, &data).unwrap(), hash(&data), "{server_ip}");
        drop(s);
        assert!(server.join().unwrap()[0].is_ok());
        // Denied TCP: the SYN is dropped (no reset on this path), the connect times out.
        let _l = {
            let a: std::net::SocketAddr = sa(8081).parse().unwrap();
            t.c2.enter(move || std::net::TcpListener::bind(a)).unwrap()
        };
        let r = connect(&t.c1, &sa(8081), Duration::from_secs(2));
        assert_eq!(r.err().map(|e| e.kind()), Some(ErrorKind::TimedOut), "{server_ip}");
        // UDP: allowed port passes, another is dropped.
        let a = udp(&t.c1, &ca(0));
        assert!(udp_reaches(&a, &udp(&t.c2, &sa(5353)), 2), "{server_ip}");
        assert!(!udp_reaches(&a, &udp(&t.c2, &sa(5354)), 2), "{server_ip}");
        // ICMP allowed.
        assert!(ping(&t.c1, server_ip, 2), "{server_ip}");
    }

    // HTTP on 8090: the connection is allowed until HTTP is identified, then cut off, and
    // both ends get a reset (sent through the worker's raw sockets, not queued back).
    let web = http_server(&t.c2, "10.77.0.2:8090", 1);
    let mut s = connect(&t.c1, "10.77.0.2:8090", Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: c2\r\nUser-Agent: live-test\r\nAccept: */*\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 256];
    let r = s.read(&mut buf);
    assert_eq!(
        r.as_ref().err().map(|e| e.kind()),
        Some(ErrorKind::ConnectionReset),
        "client: {r:?}"
    );
    assert_eq!(web.join().unwrap(), vec!["ConnectionReset".to_string()], "server");
    drop(s);

    let stats = e.ctl(r#"{"cmd":"stats"}"#);
    let q = stats["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["worker"] == "nfqueue-c2")
        .unwrap_or_else(|| panic!("{stats}"))
        .clone();
    let port = &q["ports"][0];
    assert!(port["rx_frames"].as_u64().unwrap() > 100, "{q}");
    assert!(port["dropped"].as_u64().unwrap() >= 6, "{q}");
    // The kernel's own view: every packet we answered got an id, none was lost.
    let kq = &q["queue"];
    assert!(
        kq["kernel_id_sequence"].as_u64().unwrap() >= port["rx_frames"].as_u64().unwrap(),
        "{q}"
    );
    assert_eq!(kq["kernel_queue_dropped"], 0, "{q}");
    assert!(kq["batch_msgs"].as_u64().unwrap() > 0, "consecutive verdicts batched: {q}");
    assert!(kq["resets_sent"].as_u64().unwrap() >= 2, "{q}");
    assert_eq!(q["transmit_unsent"], 0, "{q}");

    // Clean stop: the rules are gone exactly, and traffic flows on any port.
    e.stop();
    assert_eq!(saves(&t.c2), before);
    let _l = t.c2.enter(|| std::net::TcpListener::bind("10.77.0.2:8083")).unwrap();
    assert!(connect(&t.c1, "10.77.0.2:8083", Duration::from_secs(2)).is_ok());
    let alerts = t.report_lines();
    let alerts = events(&alerts, "alert");
    assert!(alerts.iter().any(|a| a["dest_port"] == 8081 && a["src_ip"] == C1), "{alerts:#?}");
    assert!(
        alerts.iter().any(|a| a["dest_port"] == 8081 && ip_of(&a["src_ip"]) == C1_6.parse().ok()),
        "{alerts:#?}"
    );
    assert!(
        alerts.iter().any(|a| a["dest_port"] == 8090 && a["app_proto"] == "http"),
        "{alerts:#?}"
    );

    // SIGKILL: the rules stay, nobody is on the queue, --queue-bypass lets traffic by.
    let e = t.start(&run);
    let r = connect(&t.c1, "10.77.0.2:8083", Duration::from_secs(2));
    assert!(r.is_err(), "denied while running");
    e.kill();
    let (v4, _) = saves(&t.c2);
    assert!(v4.contains("NFQUEUE"), "the killed run's rules are still there: {v4}");
    assert!(connect(&t.c1, "10.77.0.2:8083", Duration::from_secs(2)).is_ok(), "bypass");
    assert!(ping(&t.c1, C2, 1));
    // The next start cleans up the killed run's rules before wiring again.
    let e = t.start(&run);
    assert!(e.log_text().contains("recovery"), "{}", e.log_text());
    e.stop();
    assert_eq!(saves(&t.c2), before);
}
