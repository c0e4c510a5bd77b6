//! The `enforcer replay` binary: exit codes, messages, record output and its shape.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("enforcer-cli");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let p = tmp(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn enforcer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_enforcer")).args(args).output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The flow records of the output (other event types, such as `app_update`, skipped).
fn lines(o: &Output) -> Vec<Value> {
    std::str::from_utf8(&o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v| v["event_type"] != "app_update")
        .collect()
}

/// Two UDP flows, then a TCP conversation; the last flow starts 40 s later so the UDP
/// ones time out (30 s) before the end of the capture.
fn mixed_capture() -> Vec<(u64, Vec<u8>)> {
    let t0 = 1_767_225_600_000_000u64; // 2026-01-01T00:00:00Z
    let mac = [2, 0, 0, 0, 0, 1];
    let mut v = vec![
        (t0, eth(0x0800, mac, &udp4(CLIENT, 33000, SERVER, 53, b"query-1"))),
        (t0 + 1000, eth(0x0800, mac, &udp4(SERVER, 53, CLIENT, 33000, b"answer-1"))),
        (t0 + 2000, eth(0x0800, mac, &udp4(CLIENT, 33001, SERVER, 53, b"query-2"))),
    ];
    v.extend(tcp_conversation(t0 + 40_000_000));
    v
}

#[test]
fn missing_file_fails_naming_it() {
    let p = tmp("does-not-exist.pcap");
    let o = enforcer(&["replay", s(&p)]);
    assert!(!o.status.success());
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("enforcer: cannot read {}: No such file or directory", s(&p))),
        "{err}"
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn text_file_fails_naming_it() {
    let p = write("notes.pcap", b"this is not a capture\n");
    let o = enforcer(&["replay", "--no-records", s(&p)]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains(&format!("cannot read {}: not a pcap or pcapng file", s(&p))), "{err}");
}

#[test]
fn bad_files_are_reported_and_good_ones_still_replayed() {
    let good = write("good-among-bad.pcap", &pcap(1, &mixed_capture()));
    let text = write("text-among-good.txt", b"hello\n");
    let missing = tmp("missing-among-good.pcap");
    let o = enforcer(&["replay", s(&text), s(&good), s(&missing)]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains(s(&text)) && err.contains(s(&missing)), "{err}");
    assert_eq!(lines(&o).len(), 3);
}

#[test]
fn truncated_capture_warns_and_succeeds() {
    let pkts = mixed_capture();
    let full = pcap(1, &pkts);
    // Cut inside the SYN/ACK (packet 5): the two UDP flows and the half-open TCP one.
    let off: usize = 24 + pkts[..4].iter().map(|(_, d)| 16 + d.len()).sum::<usize>();
    let p = write("cut.pcap", &full[..off + 20]);
    let o = enforcer(&["replay", s(&p)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("warning") && err.contains(s(&p)), "{err}");
    assert!(err.contains(&format!("byte {off}")), "{err}");
    let recs = lines(&o);
    assert_eq!(recs.len(), 3);
    let tcp: Vec<_> = recs.iter().filter(|r| r["proto"] == "TCP").collect();
    assert_eq!(tcp.len(), 1);
    assert_eq!(tcp[0]["flow"]["pkts_toserver"], 1);
    assert_eq!(tcp[0]["flow"]["state"], "new");
    assert_eq!(tcp[0]["tcp"]["state"], "syn_sent");
}

/// Field names and shape of every record, for any capture.
fn check_shape(r: &Value) {
    let o = r.as_object().unwrap();
    for k in ["timestamp", "flow_id", "event_type", "src_ip", "dest_ip", "proto", "app_proto"] {
        assert!(o.contains_key(k), "{k} missing in {r}");
    }
    assert_eq!(r["event_type"], "flow");
    let app = r["app_proto"].as_str().unwrap();
    assert!(app == "failed" || dpi_core::app::AppId::from_name(app).is_some(), "{app}");
    let ts = r["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), 31, "{ts}");
    assert!(ts.ends_with("+0000") && ts.as_bytes()[10] == b'T', "{ts}");
    let f = r["flow"].as_object().unwrap();
    for k in [
        "pkts_toserver",
        "pkts_toclient",
        "bytes_toserver",
        "bytes_toclient",
        "start",
        "end",
        "age",
        "state",
        "reason",
        "alerted",
    ] {
        assert!(f.contains_key(k), "flow.{k} missing in {r}");
    }
    assert_eq!(r["flow"]["end"], r["timestamp"]);
    assert!(["new", "established", "closed"].contains(&r["flow"]["state"].as_str().unwrap()));
    assert!(["timeout", "forced", "shutdown"].contains(&r["flow"]["reason"].as_str().unwrap()));
    let e = r["enforcer"].as_object().unwrap();
    for k in ["session_id", "end_reason", "mid_stream", "bypassed", "icmp_errors"] {
        assert!(e.contains_key(k), "enforcer.{k} missing in {r}");
    }
    assert_eq!(r["enforcer"]["session_id"], r["flow_id"]);
    if r["proto"] == "TCP" {
        assert!(r["tcp"]["state"].is_string());
        for k in ["client_state", "server_state", "retransmissions", "out_of_order"] {
            assert!(e.contains_key(k), "enforcer.{k} missing in {r}");
        }
    }
}

#[test]
fn records_have_the_eve_flow_shape() {
    let p = write("mixed.pcap", &pcap(1, &mixed_capture()));
    let o = enforcer(&["replay", s(&p)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    let recs = lines(&o);
    assert_eq!(recs.len(), 3);
    recs.iter().for_each(check_shape);

    // The UDP flows ended by idle timeout when the TCP conversation started, 40 s later.
    let udp: Vec<_> = recs.iter().filter(|r| r["proto"] == "UDP").collect();
    assert_eq!(udp.len(), 2);
    let answered = udp.iter().find(|r| r["src_port"] == 33000).unwrap();
    assert_eq!(answered["src_ip"], "10.0.0.1");
    assert_eq!(answered["dest_port"], 53);
    assert_eq!(answered["flow"]["state"], "established");
    assert_eq!(answered["flow"]["reason"], "timeout");
    assert_eq!(answered["enforcer"]["end_reason"], "idle_timeout");
    assert_eq!(answered["timestamp"], "2026-01-01T00:00:00.001000+0000");
    assert_eq!(answered["flow"]["start"], "2026-01-01T00:00:00.000000+0000");
    let lonely = udp.iter().find(|r| r["src_port"] == 33001).unwrap();
    assert_eq!(lonely["flow"]["state"], "new");
    assert_eq!(lonely["flow"]["pkts_toclient"], 0);

    // The TCP conversation: the client (SYN sender, ephemeral port) is src.
    let tcp = recs.iter().find(|r| r["proto"] == "TCP").unwrap();
    assert_eq!(tcp["src_ip"], "10.0.0.1");
    assert_eq!(tcp["src_port"], 40000);
    assert_eq!(tcp["dest_ip"], "10.0.0.2");
    assert_eq!(tcp["dest_port"], 80);
    assert_eq!(tcp["flow"]["pkts_toserver"], 5);
    assert_eq!(tcp["flow"]["pkts_toclient"], 3);
    assert_eq!(tcp["flow"]["state"], "closed");
    assert_eq!(tcp["flow"]["reason"], "shutdown");
    assert_eq!(tcp["flow"]["age"], 0);
    assert_eq!(tcp["flow"]["alerted"], false);
    assert_eq!(tcp["tcp"]["state"], "closed");
    assert_eq!(tcp["enforcer"]["end_reason"], "flushed");
    assert_eq!(tcp["enforcer"]["mid_stream"], false);
    assert_eq!(tcp["timestamp"], "2026-01-01T00:00:40.007000+0000");
    assert!(tcp.get("vlan").is_none());
    // Whole frames from the client (IPv4 source at byte 26) of the TCP conversation.
    let bytes_ts: u64 = mixed_capture()[3..]
        .iter()
        .filter(|(_, d)| d[26..30] == CLIENT)
        .map(|(_, d)| d.len() as u64)
        .sum();
    assert_eq!(tcp["flow"]["bytes_toserver"], bytes_ts);
}

/// Replay a capture holding one TCP conversation that is opened by a handshake and closed:
/// the TCP record's src is whoever sent the first bare SYN (found here independently of the
/// engine), and the session is closed.
fn check_handshake_capture(p: &Path) {
    let mut r = enforcer::capture::CaptureReader::open(p).unwrap();
    let mut client = None;
    while let Some(f) = r.next_frame().unwrap() {
        let Ok(pk) = etherparse::SlicedPacket::from_ethernet(f.data) else { continue };
        let (Some(etherparse::NetSlice::Ipv4(ip)), Some(etherparse::TransportSlice::Tcp(t))) =
            (&pk.net, &pk.transport)
        else {
            continue;
        };
        if t.syn() && !t.ack() {
            client = Some((ip.header().source_addr().to_string(), t.source_port()));
            break;
        }
    }
    let (client_ip, client_port) = client.expect("a SYN in the capture");
    let o = enforcer(&["replay", s(p)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let recs = lines(&o);
    recs.iter().for_each(check_shape);
    let tcp: Vec<_> = recs.iter().filter(|r| r["proto"] == "TCP").collect();
    assert_eq!(tcp.len(), 1, "{recs:?}");
    assert_eq!(tcp[0]["src_ip"], client_ip.as_str());
    assert_eq!(tcp[0]["src_port"], client_port);
    assert_eq!(tcp[0]["flow"]["state"], "closed");
    assert_eq!(tcp[0]["tcp"]["state"], "closed");
    assert_eq!(tcp[0]["enforcer"]["mid_stream"], false);
}

#[test]
fn handshake_capture_src_is_the_client() {
    check_handshake_capture(&write("handshake.pcap", &pcap(1, &tcp_conversation(1_000_000))));
}

#[test]
fn pcapgen_handshake_capture_if_present() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/pcap/tcp_handshake_close.pcap");
    if !p.is_file() {
        eprintln!("note: {} not generated yet: skipped", p.display());
        return;
    }
    check_handshake_capture(&p);
}

#[test]
fn pcapgen_captures_replay_if_present() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/pcap");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
                .collect()
        })
        .unwrap_or_default();
    if files.is_empty() {
        eprintln!("note: no captures in {}: skipped", dir.display());
        return;
    }
    files.sort();
    let mut args = vec!["replay", "--stats"];
    args.extend(files.iter().map(|p| s(p)));
    let o = enforcer(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let recs = lines(&o);
    assert!(!recs.is_empty());
    // The overlapping-fragments scenario raises a threat; every other line is a flow.
    let (threats, flows): (Vec<_>, Vec<_>) =
        recs.into_iter().partition(|r| r["event_type"] == "threat");
    flows.iter().for_each(check_shape);
    for t in &threats {
        assert_eq!(t["threat"], "ip_teardrop", "{t}");
    }
}

/// The exact output for the hand-built capture, byte for byte (the replay is
/// deterministic). Regenerate with `UPDATE_GOLDEN=1 cargo test -p enforcer-bin --test cli`.
#[test]
fn golden_output() {
    let p = write("golden.pcap", &pcap(1, &mixed_capture()));
    let o = enforcer(&["replay", s(&p)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/mixed.eve.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &o.stdout).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap();
    assert_eq!(String::from_utf8(o.stdout).unwrap(), want);
}

#[test]
fn out_no_records_and_stats() {
    let p = write("stats.pcap", &pcap(1, &mixed_capture()));
    let out = tmp("stats-records.json");
    let json = tmp("stats.json");
    let o = enforcer(&["replay", "--out", s(&out), "--stats", "--stats-json", s(&json), s(&p)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(written.lines().filter(|l| l.contains("\"event_type\":\"flow\"")).count(), 3);
    let err = stderr(&o);
    for needle in [
        "files",
        "packets            11",
        "sessions created   3 (tcp 1, udp 2",
        "Mpps",
        "idle_timeout 2",
    ] {
        assert!(err.contains(needle), "{needle:?} not in\n{err}");
    }
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["files"], 1);
    assert_eq!(v["packets"], 11);
    assert_eq!(v["records"], 3);
    assert_eq!(v["sessions_created"]["udp"], 2);
    assert_eq!(v["counters"]["packets"], 11);
    assert!(v["drops"].is_object());
    assert!(v["mpps"].is_number());

    let o = enforcer(&["replay", "--no-records", "--max-sessions", "1", s(&p)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    // --out and --no-records conflict; no file is a usage error.
    assert_eq!(
        enforcer(&["replay", "--no-records", "--out", s(&out), s(&p)]).status.code(),
        Some(2)
    );
    assert_eq!(enforcer(&["replay"]).status.code(), Some(2));
    assert_eq!(enforcer(&["replay", "--max-sessions", "0", s(&p)]).status.code(), Some(2));
}

#[test]
fn max_sessions_evicts() {
    let p = write("evict.pcap", &pcap(1, &mixed_capture()));
    let o = enforcer(&["replay", "--max-sessions", "1", s(&p)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let recs = lines(&o);
    assert_eq!(recs.len(), 3);
    assert!(recs
        .iter()
        .any(|r| r["flow"]["reason"] == "forced" && r["enforcer"]["end_reason"] == "evicted"));
}
