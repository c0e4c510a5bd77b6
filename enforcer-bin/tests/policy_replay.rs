//! Modes and learning through the `enforcer` binary, on the project's policy scenarios:
//!
//! 1. replay the baseline traffic in Discover mode → connection reports, no alerts;
//! 2. `enforcer learn` turns them into a policy;
//! 3. replay the baseline in Protect with that policy → zero violations, every flow allowed
//!    by a learned rule;
//! 4. replay the baseline plus one unlearned connection → exactly that connection is
//!    denied (one blocked alert, its packets dropped, no session);
//! 5. the same with an unlearned connection already established when the capture starts
//!    → denied, and reset both ways;
//! 6. Monitor mode reports the unlearned connection as an allowed alert and drops nothing;
//! 7. a workloads file instead of implicit workloads; bad files are clear errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn enforcer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_enforcer")).args(args).output().unwrap()
}

fn pcap(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/pcap")
        .join(format!("{name}.pcap"))
        .to_string_lossy()
        .into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("enforcer-policy-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn lines(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn of_type<'a>(v: &'a [Value], t: &str) -> Vec<&'a Value> {
    v.iter().filter(|e| e["event_type"] == t).collect()
}

fn stats(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn ok(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Discover → learn → the learned policy file.
fn learned_policy(tag: &str) -> PathBuf {
    let disc = tmp(&format!("discover-{tag}.json"));
    ok(&enforcer(&["replay", "--mode", "discover", &pcap("policy_baseline"), "--out", s(&disc)]));
    let ev = lines(&disc);
    assert!(of_type(&ev, "alert").is_empty(), "Discover raises no alerts");
    let conns = of_type(&ev, "connection");
    assert_eq!(conns.len(), 5, "DNS, frontend->api:8080 (two sessions), ping, redis, db");
    assert!(conns.iter().all(|c| c["connection"]["action"] == "learn"));
    let http = conns.iter().find(|c| c["dest_port"] == 8080).unwrap();
    assert_eq!(http["connection"]["sessions"], 2);
    assert!(of_type(&ev, "flow").iter().all(|f| f["enforcer"]["action"] == "learn"));

    let policy = tmp(&format!("learned-{tag}.toml"));
    let o = enforcer(&["learn", s(&disc), "--out", s(&policy)]);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("5 learned, 5 rules"));
    policy
}

#[test]
fn learn_then_protect_allows_exactly_what_was_learned() {
    let policy = learned_policy("a");
    let text = std::fs::read_to_string(&policy).unwrap();
    // HTTP and DNS were identified: they are learned as application rules.
    assert!(text.contains("\"tcp/8080\"]\napps = [\"http\"]"), "{text}");
    assert!(text.contains("\"udp/53\"]\napps = [\"dns\"]"), "{text}");

    // The same traffic in Protect: nothing denied.
    let out = tmp("protect-baseline.json");
    let st = tmp("protect-baseline.stats");
    ok(&enforcer(&[
        "replay",
        "--mode",
        "protect",
        "--policy",
        s(&policy),
        &pcap("policy_baseline"),
        "--out",
        s(&out),
        "--stats-json",
        s(&st),
    ]));
    let ev = lines(&out);
    assert!(of_type(&ev, "alert").is_empty(), "{:#?}", of_type(&ev, "alert"));
    let flows = of_type(&ev, "flow");
    assert_eq!(flows.len(), 6);
    for f in &flows {
        assert_eq!(f["enforcer"]["action"], "allow", "{f}");
        assert!(f["enforcer"]["rule_id"].as_u64().unwrap() >= 10_000);
    }
    assert_eq!(stats(&st)["drops"]["policy"], 0);

    // One more connection nobody learned: exactly it is denied.
    let out = tmp("protect-extra.json");
    let st = tmp("protect-extra.stats");
    ok(&enforcer(&[
        "replay",
        "--mode",
        "protect",
        "--policy",
        s(&policy),
        &pcap("policy_extra"),
        "--out",
        s(&out),
        "--stats-json",
        s(&st),
    ]));
    let ev = lines(&out);
    let alerts = of_type(&ev, "alert");
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = alerts[0];
    assert_eq!(
        (a["src_ip"].as_str(), a["dest_ip"].as_str(), a["dest_port"].as_u64()),
        (Some("10.1.0.10"), Some("10.1.0.40"), Some(5432))
    );
    assert_eq!(a["alert"]["action"], "blocked");
    assert_eq!(a["alert"]["signature_id"], 0);
    assert!(a.get("flow_id").is_none(), "denied at its first packet: no session");
    // Every packet of that connection (8 frames) is dropped; the baseline flows are not.
    let st = stats(&st);
    assert_eq!(st["drops"]["policy"], 8);
    assert_eq!(of_type(&ev, "flow").len(), 6);
    assert!(of_type(&ev, "flow").iter().all(|f| f["enforcer"]["action"] == "allow"));
    let denied: Vec<_> = of_type(&ev, "connection")
        .into_iter()
        .filter(|c| c["connection"]["action"] == "deny")
        .collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["connection"]["violations"], 1);
}

#[test]
fn an_established_unlearned_connection_is_reset() {
    let policy = learned_policy("b");
    let out = tmp("protect-mid.json");
    let st = tmp("protect-mid.stats");
    ok(&enforcer(&[
        "replay",
        "--mode",
        "protect",
        "--policy",
        s(&policy),
        &pcap("policy_midstream_extra"),
        "--out",
        s(&out),
        "--stats-json",
        s(&st),
    ]));
    let ev = lines(&out);
    assert_eq!(of_type(&ev, "alert").len(), 1);
    let st = stats(&st);
    assert_eq!(st["drops"]["policy"], 3);
    // Resets both ways for the first denied data packet; later packets of the flow are
    // dropped without new resets while the denial is remembered... each data packet of a
    // live connection gets its pair.
    assert!(st["transmits"].as_u64().unwrap() >= 2, "{st}");
}

#[test]
fn monitor_reports_but_lets_everything_through() {
    let policy = learned_policy("c");
    let out = tmp("monitor-extra.json");
    let st = tmp("monitor-extra.stats");
    ok(&enforcer(&[
        "replay",
        "--mode",
        "monitor",
        "--policy",
        s(&policy),
        &pcap("policy_extra"),
        "--out",
        s(&out),
        "--stats-json",
        s(&st),
    ]));
    let ev = lines(&out);
    let alerts = of_type(&ev, "alert");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["alert"]["action"], "allowed");
    assert!(alerts[0]["flow_id"].is_u64(), "the session exists");
    assert_eq!(stats(&st)["drops"]["policy"], 0);
    assert_eq!(of_type(&ev, "flow").len(), 7);
    let v = of_type(&ev, "flow")
        .into_iter()
        .find(|f| f["dest_ip"] == "10.1.0.40" && f["src_ip"] == "10.1.0.10")
        .unwrap()
        .clone();
    assert_eq!(v["enforcer"]["action"], "violate");
}

#[test]
fn workloads_file_names_the_workloads() {
    let wl = tmp("workloads.toml");
    std::fs::write(
        &wl,
        r#"
[[workload]]
name = "db"
ips = ["10.1.0.40"]
mode = "protect"

[[workload]]
name = "api"
ips = ["10.1.0.20"]
mode = "discover"
"#,
    )
    .unwrap();
    let policy = tmp("db-only.toml");
    std::fs::write(
        &policy,
        r#"
[[rule]]
id = 1
from = "10.1.0.20"
to = "10.1.0.40"
ports = "tcp/5432"
action = "allow"
workloads = "db"
"#,
    )
    .unwrap();
    let out = tmp("wl.json");
    ok(&enforcer(&[
        "replay",
        "--workloads",
        s(&wl),
        "--policy",
        s(&policy),
        &pcap("policy_extra"),
        "--out",
        s(&out),
    ]));
    let ev = lines(&out);
    let alerts = of_type(&ev, "alert");
    assert_eq!(alerts.len(), 1, "frontend->db denied by db's policy");
    assert_eq!(alerts[0]["enforcer"]["workload"], "db");
    let flows = of_type(&ev, "flow");
    let api_db =
        flows.iter().find(|f| f["src_ip"] == "10.1.0.20" && f["dest_ip"] == "10.1.0.40").unwrap();
    assert_eq!(
        (api_db["enforcer"]["workload"].as_str(), api_db["enforcer"]["rule_id"].as_u64()),
        (Some("db"), Some(1))
    );
    let to_api = flows.iter().find(|f| f["dest_ip"] == "10.1.0.20" && f["proto"] == "TCP").unwrap();
    assert_eq!(
        (to_api["enforcer"]["workload"].as_str(), to_api["enforcer"]["action"].as_str()),
        (Some("api"), Some("learn"))
    );
    // Traffic of no workload (frontend->dns) carries no decision.
    let dns = flows.iter().find(|f| f["dest_port"] == 53).unwrap();
    assert!(dns["enforcer"].get("action").is_none());
}

#[test]
fn bad_policy_files_are_usage_errors_naming_file_line_and_field() {
    let policy = tmp("bad.toml");
    std::fs::write(&policy, "[[rule]]\nid = 5\nfrom = \"any\"\nto = \"any\"\nports = \"tcp/80-70\"\naction = \"allow\"\n").unwrap();
    let o = enforcer(&[
        "replay",
        "--mode",
        "protect",
        "--policy",
        s(&policy),
        &pcap("policy_baseline"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.toml:5") && err.contains("ports") && err.contains("rule 5"), "{err}");
    let o = enforcer(&["learn", s(&tmp("missing.json"))]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.json"));
}

#[test]
fn fqdn_and_vhost_rules_on_names_learned_from_the_capture() {
    let policy = tmp("fqdn.toml");
    std::fs::write(
        &policy,
        r#"
[[rule]]
id = 1
from = "10.1.0.10"
to = "10.1.0.53"
ports = "udp/53"
action = "allow"

[[rule]]
id = 2
from = "10.1.0.10"
to = "api.partner.example"
ports = ["tcp/443", "tcp/80"]
vhost = true
action = "allow"
"#,
    )
    .unwrap();
    let out = tmp("fqdn.json");
    let st = tmp("fqdn.stats");
    ok(&enforcer(&[
        "replay",
        "--mode",
        "protect",
        "--policy",
        s(&policy),
        &pcap("policy_fqdn_vhost"),
        "--out",
        s(&out),
        "--stats-json",
        s(&st),
    ]));
    let ev = lines(&out);
    let flows = of_type(&ev, "flow");
    let flow = |ip: &str, port: u64, app: &str| {
        flows
            .iter()
            .find(|f| f["dest_ip"] == ip && f["dest_port"] == port && f["app_proto"] == app)
            .copied()
            .unwrap_or_else(|| panic!("no {app} flow to {ip}:{port}: {flows:#?}"))
    };
    // The DNS answer taught the name; SNI and Host match it: allowed by rule 2.
    let tls = flow("203.0.113.60", 443, "tls");
    assert_eq!(
        (tls["enforcer"]["action"].as_str(), tls["enforcer"]["rule_id"].as_u64()),
        (Some("allow"), Some(2))
    );
    let http = flows
        .iter()
        .find(|f| f["dest_port"] == 80 && f["enforcer"]["rule_id"] == 2)
        .expect("allowed HTTP flow");
    assert_eq!(http["enforcer"]["action"], "allow");
    // Another Host on the same address: the vhost rule does not match, default deny, the
    // session is blocked once the Host is seen.
    let evil = flows
        .iter()
        .find(|f| f["dest_port"] == 80 && f["enforcer"]["action"] == "deny")
        .expect("denied HTTP flow");
    assert_eq!(evil["enforcer"]["blocked"], true);
    let alerts = of_type(&ev, "alert");
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    // The unresolved address never matches the name: denied at its first packet.
    assert!(alerts.iter().any(|a| a["dest_ip"] == "203.0.113.61" && a.get("flow_id").is_none()));
    assert!(alerts.iter().any(|a| a["dest_ip"] == "203.0.113.60" && a["flow_id"].is_u64()));
    assert!(stats(&st)["transmits"].as_u64().unwrap() >= 2, "the blocked session is reset");
}
