//! Same code, same bytes: generation is repeatable and `testdata/pcap` is current.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use pcap_file::pcap::PcapReader;
use pcap_file::{DataLink, Endianness, TsResolution};

const NAMES: [&str; 26] = [
    "tcp_handshake_close",
    "tcp_simultaneous_open",
    "tcp_rst",
    "tcp_half_close",
    "tcp_retransmission",
    "tcp_out_of_order",
    "tcp_overlap",
    "tcp_reasm_overflow",
    "tcp_midstream",
    "tcp_port_reuse",
    "tcp_capture_loss",
    "ipv4_fragments",
    "ipv4_fragments_overlap",
    "ipv6_fragments",
    "ipv6_ext_headers",
    "vlan",
    "icmp_echo",
    "icmp_errors",
    "udp_dns",
    "other_ip",
    "malformed",
    "demo",
    "policy_baseline",
    "policy_extra",
    "policy_midstream_extra",
    "policy_fqdn_vhost",
];

fn testdata_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/pcap")
}

#[test]
fn scenario_names_are_exactly_the_documented_ones() {
    let names: Vec<&str> = pcapgen::scenarios().iter().map(|s| s.name).collect();
    assert_eq!(names, NAMES);
}

#[test]
fn generating_twice_gives_identical_bytes() {
    let a: Vec<Vec<u8>> = pcapgen::scenarios().iter().map(|s| s.to_pcap_bytes()).collect();
    let b: Vec<Vec<u8>> = pcapgen::scenarios().iter().map(|s| s.to_pcap_bytes()).collect();
    assert_eq!(a, b);
}

#[test]
fn committed_pcaps_match_a_fresh_generation() {
    let dir = testdata_dir();
    let hint = "regenerate with `cargo run -p pcapgen -- testdata/pcap`";
    for s in pcapgen::scenarios() {
        let path = dir.join(format!("{}.pcap", s.name));
        let on_disk =
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; {hint}", path.display()));
        assert!(on_disk == s.to_pcap_bytes(), "{} is stale; {hint}", path.display());
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pcap"))
        .collect();
    let expected: BTreeSet<String> = NAMES.iter().map(|n| format!("{n}.pcap")).collect();
    assert_eq!(on_disk, expected, "unexpected or missing pcaps in {}", dir.display());
}

#[test]
fn pcap_files_read_back_with_the_declared_format() {
    for s in pcapgen::scenarios() {
        let bytes = s.to_pcap_bytes();
        let mut r = PcapReader::new(&bytes[..]).unwrap();
        let h = r.header();
        assert_eq!(h.endianness, Endianness::Little);
        assert_eq!(h.ts_resolution, TsResolution::MicroSecond);
        assert_eq!(h.datalink, DataLink::ETHERNET);
        assert_eq!(h.snaplen, 65535);
        let mut n = 0;
        while let Some(pkt) = r.next_packet() {
            let pkt = pkt.unwrap();
            let f = &s.frames[n];
            assert_eq!(pkt.timestamp.as_micros(), u128::from(f.ts_micros));
            assert_eq!(pkt.data.as_ref(), &f.data[..]);
            assert_eq!(pkt.orig_len as usize, f.data.len());
            n += 1;
        }
        assert_eq!(n, s.frames.len(), "{}", s.name);
    }
}

#[test]
fn write_pcap_writes_the_same_bytes() {
    let s = pcapgen::scenario("tcp_rst").unwrap();
    let path = std::env::temp_dir().join(format!("pcapgen-test-{}.pcap", std::process::id()));
    pcapgen::write_pcap(&path, &s.frames).unwrap();
    let written = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(written, s.to_pcap_bytes());
}
