//! The capture reader on hand-built files: every supported link type, unsupported ones,
//! pcapng with interfaces of different link types and resolutions, nanosecond and
//! big-endian pcap, truncated files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dpi_core::{Config, Time};
use enforcer::capture::{BreakKind, CaptureReader, Format};
use enforcer::replay::Replayer;

/// Every frame of a capture held in memory: (time, frame).
fn frames(bytes: &[u8]) -> (Vec<(Time, Vec<u8>)>, enforcer::capture::CaptureStats) {
    let mut r = CaptureReader::from_reader("mem.pcap", bytes).unwrap();
    let mut out = Vec::new();
    while let Some(f) = r.next_frame().unwrap() {
        out.push((f.ts, f.data.to_vec()));
    }
    assert!(r.warning().is_none(), "{:?}", r.warning());
    (out, r.stats().clone())
}

/// Two IP packets (IPv4 SYN, IPv6 SYN) wrapped by `wrap`, read back from a pcap of
/// `linktype`: each must come out as `synth_eth(ethertype, src_mac, ip)`.
fn check_link(linktype: u32, src_mac: [u8; 6], wrap: impl Fn(&[u8]) -> Vec<u8>) {
    let ips = [tcp4(CLIENT, 40000, SERVER, 80, 1, SYN, &[]), tcp6_syn(40001, 443)];
    let pkts: Vec<(u64, Vec<u8>)> =
        ips.iter().enumerate().map(|(i, ip)| (1_000_000 + i as u64, wrap(ip))).collect();
    let (got, stats) = frames(&pcap(linktype, &pkts));
    assert_eq!(stats.packets, 2);
    assert_eq!(stats.frames, 2, "linktype {linktype}");
    assert!(stats.skipped.is_empty());
    for (i, ip) in ips.iter().enumerate() {
        assert_eq!(got[i].0, Time::from_micros(1_000_000 + i as u64));
        assert_eq!(got[i].1, synth_eth(ethertype_of(ip), src_mac, ip), "linktype {linktype}");
    }
    // And the engine sees the sessions.
    let mut rep = Replayer::new(Config::default());
    let r = rep.replay_reader("mem.pcap", &pcap(linktype, &pkts)[..]).unwrap();
    assert_eq!(r.counters.sessions_tcp, 2, "linktype {linktype}");
    assert_eq!(r.counters.ipv4, 1);
    assert_eq!(r.counters.ipv6, 1);
}

#[test]
fn ethernet_frames_pass_unchanged() {
    let frame = eth(0x0800, [2, 0, 0, 0, 0, 1], &tcp4(CLIENT, 40000, SERVER, 80, 1, SYN, &[]));
    let arp = eth(0x0806, [2, 0, 0, 0, 0, 1], &[0; 28]);
    let (got, stats) = frames(&pcap(1, &[(5, frame.clone()), (6, arp.clone())]));
    assert_eq!(got, vec![(Time::from_micros(5), frame), (Time::from_micros(6), arp)]);
    assert_eq!(stats.frames, 2);
}

#[test]
fn linux_sll() {
    let mac = [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x01];
    check_link(113, mac, |ip| {
        let mut v = vec![0, 4, 0, 1, 0, 6];
        v.extend_from_slice(&mac);
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&ethertype_of(ip).to_be_bytes());
        v.extend_from_slice(ip);
        v
    });
}

#[test]
fn linux_sll2() {
    let mac = [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x02];
    check_link(276, mac, |ip| {
        let mut v = ethertype_of(ip).to_be_bytes().to_vec();
        v.extend_from_slice(&[0, 0, 0, 0, 0, 7, 0, 1, 0, 6]);
        v.extend_from_slice(&mac);
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(ip);
        v
    });
}

#[test]
fn raw_ip() {
    check_link(101, [0; 6], |ip| ip.to_vec());
    check_link(12, [0; 6], |ip| ip.to_vec());
    check_link(14, [0; 6], |ip| ip.to_vec());
}

#[test]
fn raw_ipv4_and_ipv6_link_types() {
    let ip4 = tcp4(CLIENT, 40000, SERVER, 80, 1, SYN, &[]);
    let (got, _) = frames(&pcap(228, &[(1, ip4.clone())]));
    assert_eq!(got[0].1, synth_eth(0x0800, [0; 6], &ip4));
    let ip6 = tcp6_syn(40000, 80);
    let (got, _) = frames(&pcap(229, &[(1, ip6.clone())]));
    assert_eq!(got[0].1, synth_eth(0x86dd, [0; 6], &ip6));
}

#[test]
fn bsd_null_both_byte_orders() {
    let family = |ip: &[u8]| if ip[0] >> 4 == 6 { 30u32 } else { 2 };
    check_link(0, [0; 6], |ip| {
        let mut v = family(ip).to_le_bytes().to_vec();
        v.extend_from_slice(ip);
        v
    });
    check_link(0, [0; 6], |ip| {
        let mut v = family(ip).to_be_bytes().to_vec();
        v.extend_from_slice(ip);
        v
    });
    // Linux AF_INET6 = 10, other BSDs 24 and 28.
    for fam in [10u32, 24, 28] {
        check_link(0, [0; 6], |ip| {
            let f = if ip[0] >> 4 == 6 { fam } else { 2 };
            let mut v = f.to_le_bytes().to_vec();
            v.extend_from_slice(ip);
            v
        });
    }
}

#[test]
fn bsd_loop() {
    check_link(108, [0; 6], |ip| {
        let fam: u32 = if ip[0] >> 4 == 6 { 24 } else { 2 };
        let mut v = fam.to_be_bytes().to_vec();
        v.extend_from_slice(ip);
        v
    });
}

#[test]
fn ppp_with_and_without_address_control() {
    let proto = |ip: &[u8]| if ip[0] >> 4 == 6 { [0x00, 0x57] } else { [0x00, 0x21] };
    for lt in [9, 50] {
        check_link(lt, [0; 6], |ip| {
            let mut v = vec![0xff, 0x03];
            v.extend_from_slice(&proto(ip));
            v.extend_from_slice(ip);
            v
        });
        check_link(lt, [0; 6], |ip| {
            let mut v = proto(ip).to_vec();
            v.extend_from_slice(ip);
            v
        });
    }
}

#[test]
fn non_ip_on_other_links_is_skipped_and_counted() {
    let ip = tcp4(CLIENT, 40000, SERVER, 80, 1, SYN, &[]);
    // PPP LCP, then an IPv4 packet.
    let mut lcp = vec![0xff, 0x03, 0xc0, 0x21];
    lcp.extend_from_slice(&[1, 1, 0, 4]);
    let mut good = vec![0xff, 0x03, 0x00, 0x21];
    good.extend_from_slice(&ip);
    let (got, stats) = frames(&pcap(9, &[(1, lcp), (2, good)]));
    assert_eq!(got.len(), 1);
    assert_eq!(stats.packets, 2);
    assert_eq!(stats.skipped.get(&9), Some(&1));
    // Null with an unknown family (AF_APPLETALK = 16); raw IP with version 5.
    let mut at = 16u32.to_le_bytes().to_vec();
    at.extend_from_slice(&[0; 20]);
    let (_, stats) = frames(&pcap(0, &[(1, at)]));
    assert_eq!(stats.skipped.get(&0), Some(&1));
    let (_, stats) = frames(&pcap(101, &[(1, vec![0x50; 20])]));
    assert_eq!(stats.skipped.get(&101), Some(&1));
}

#[test]
fn unsupported_link_type_is_skipped_and_counted() {
    // 802.11 (105) and Bluetooth HCI H4 (187).
    let pkts = vec![(1, vec![0x08; 40]), (2, vec![0x88; 40]), (3, vec![0; 10])];
    let (got, stats) = frames(&pcap(105, &pkts));
    assert!(got.is_empty());
    assert_eq!(stats.packets, 3);
    assert_eq!(stats.frames, 0);
    assert_eq!(stats.skipped.get(&105), Some(&3));

    let mut rep = Replayer::new(Config::default());
    rep.replay_reader("wifi.pcap", &pcap(105, &pkts)[..]).unwrap();
    rep.replay_reader("bt.pcap", &pcap(187, &pkts[..1])[..]).unwrap();
    let s = rep.summary();
    assert_eq!(s.packets, 4);
    assert_eq!(s.frames, 0);
    assert_eq!(s.skipped.get(&105), Some(&3));
    assert_eq!(s.skipped.get(&187), Some(&1));
    assert_eq!(s.counters.packets, 0);
}

#[test]
fn nanosecond_and_big_endian_pcap() {
    let frame = eth(0x0800, [2, 0, 0, 0, 0, 1], &tcp4(CLIENT, 40000, SERVER, 80, 1, SYN, &[]));
    let t = 1_767_225_600_123_456u64;
    for (nanos, big) in [(true, false), (true, true), (false, true)] {
        let bytes = pcap_with(1, nanos, big, &[(t, frame.clone())]);
        let r = CaptureReader::from_reader("x", &bytes[..]).unwrap();
        assert_eq!(r.format(), if nanos { Format::PcapNanos } else { Format::Pcap });
        let (got, _) = frames(&bytes);
        // The writer adds 7 ns to nanosecond stamps: truncated away.
        assert_eq!(got, vec![(Time::from_micros(t), frame.clone())]);
    }
}

#[test]
fn pcapng_interfaces_with_different_link_types() {
    let ip4 = tcp4(CLIENT, 40000, SERVER, 80, 1, SYN, &[]);
    let ip6 = tcp6_syn(40001, 443);
    let eth4 = eth(0x0800, [2, 0, 0, 0, 0, 1], &ip4);
    let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x86, 0xdd];
    sll.extend_from_slice(&ip6);
    let t = 1_767_225_600u64; // seconds
    let bytes = pcapng(
        &[
            NgIface { linktype: 1, tsresol: None },      // microseconds
            NgIface { linktype: 101, tsresol: Some(9) }, // raw IP, nanoseconds
            NgIface { linktype: 113, tsresol: Some(0x80 | 20) }, // SLL, 2^-20 s
            NgIface { linktype: 105, tsresol: None },    // 802.11: skipped
        ],
        &[
            NgPacket { iface: 0, units: t * 1_000_000 + 1, data: eth4.clone() },
            NgPacket { iface: 1, units: t * 1_000_000_000 + 2_000, data: ip6.clone() },
            NgPacket { iface: 3, units: 0, data: vec![0; 30] },
            NgPacket { iface: 2, units: (t << 20) | (1 << 19), data: sll },
            NgPacket { iface: 0, units: t * 1_000_000 + 4, data: eth4.clone() },
        ],
    );
    let r = CaptureReader::from_reader("x.pcapng", &bytes[..]).unwrap();
    assert_eq!(r.format(), Format::PcapNg);
    let (got, stats) = frames(&bytes);
    assert_eq!(stats.packets, 5);
    assert_eq!(stats.frames, 4);
    assert_eq!(stats.skipped.get(&105), Some(&1));
    let base = Time::from_secs(t);
    assert_eq!(
        got,
        vec![
            (base.add_micros(1), eth4.clone()),
            (base.add_micros(2), synth_eth(0x86dd, [0; 6], &ip6)),
            (base.add_micros(500_000), synth_eth(0x86dd, [1, 2, 3, 4, 5, 6], &ip6)),
            (base.add_micros(4), eth4),
        ]
    );
}

#[test]
fn truncated_pcap_delivers_packets_before_the_break() {
    let pkts: Vec<(u64, Vec<u8>)> = (0..5u16)
        .map(|i| {
            let ip = udp4(CLIENT, 5000 + i, SERVER, 53, &[i as u8; 30]);
            (1_000_000 * u64::from(i), eth(0x0800, [2, 0, 0, 0, 0, 1], &ip))
        })
        .collect();
    let full = pcap(1, &pkts);
    let rec_len = 16 + pkts[0].1.len();
    // Cut inside the fourth record's data, then inside its header.
    for cut in [24 + 3 * rec_len + 16 + 10, 24 + 3 * rec_len + 5] {
        let mut r = CaptureReader::from_reader("cut.pcap", &full[..cut]).unwrap();
        let mut n = 0;
        while r.next_frame().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 3);
        let w = r.warning().expect("a warning");
        assert_eq!(w.kind, BreakKind::Truncated);
        assert_eq!(w.packets, 3);
        assert_eq!(w.offset, (24 + 3 * rec_len) as u64);
        let msg = w.to_string();
        assert!(msg.starts_with("cut.pcap: truncated"), "{msg}");
        assert!(msg.contains(&format!("byte {}", 24 + 3 * rec_len)), "{msg}");
        assert!(msg.contains("packet 4"), "{msg}");
        // Calling again stays at the end.
        assert!(r.next_frame().unwrap().is_none());
    }
    // A whole file has no warning.
    let (got, _) = frames(&full);
    assert_eq!(got.len(), 5);
}

#[test]
fn truncated_pcapng_warns() {
    let eth4 = eth(0x0800, [2, 0, 0, 0, 0, 1], &tcp4(CLIENT, 40000, SERVER, 80, 1, SYN, &[]));
    let pkts: Vec<NgPacket> =
        (0..3).map(|i| NgPacket { iface: 0, units: i, data: eth4.clone() }).collect();
    let bytes = pcapng(&[NgIface { linktype: 1, tsresol: None }], &pkts);
    let cut = bytes.len() - 9;
    let mut r = CaptureReader::from_reader("cut.pcapng", &bytes[..cut]).unwrap();
    let mut n = 0;
    while r.next_frame().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 2);
    let w = r.warning().expect("a warning");
    assert_eq!(w.kind, BreakKind::Truncated);
    assert_eq!(w.packets, 2);
    let epb_len = 32 + eth4.len().div_ceil(4) * 4;
    assert_eq!(w.offset, (bytes.len() - epb_len) as u64);
}

#[test]
fn bad_headers_are_errors_naming_the_file() {
    // pcapng with a bad byte-order magic.
    let mut ng = pcapng(&[NgIface { linktype: 1, tsresol: None }], &[]);
    ng[8] = 0x99;
    let e = CaptureReader::from_reader("bad.pcapng", &ng[..]).unwrap_err();
    assert!(e.to_string().starts_with("cannot read bad.pcapng: bad pcapng file header"), "{e}");
    // pcap header cut short.
    let p = pcap(1, &[]);
    let e = CaptureReader::from_reader("short.pcap", &p[..20]).unwrap_err();
    assert!(e.to_string().starts_with("cannot read short.pcap: bad pcap file header"), "{e}");
    // An empty pcap (header only) is fine and empty.
    let (got, stats) = frames(&p);
    assert!(got.is_empty());
    assert_eq!(stats.packets, 0);
}

/// The memory-mapped path (`open` on a classic pcap) and the buffered path (`from_reader`)
/// yield the same frames, times and warnings, on whole files and on files cut short.
#[test]
fn mapped_and_buffered_readers_agree() {
    use enforcer::capture::CaptureReader;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/pcap");
    let tmp = std::env::temp_dir().join(format!("mapped-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for name in ["demo.pcap", "tcp_reasm_overflow.pcap", "vlan.pcap"] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        for cut in [bytes.len(), bytes.len() - 7, bytes.len() / 2, 30] {
            let path = tmp.join(format!("{cut}-{name}"));
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let collect = |mut r: CaptureReader<_>| {
                let mut v = vec![];
                while let Some(f) = r.next_frame().unwrap() {
                    v.push((f.ts, f.data.to_vec()));
                }
                (v, r.warning().map(|w| (w.offset, w.packets)), r.stats().packets)
            };
            let mapped = collect(CaptureReader::open(&path).unwrap());
            let file = std::fs::File::open(&path).unwrap();
            let buffered = collect(CaptureReader::from_reader(&path, file).unwrap());
            assert_eq!(mapped.0, buffered.0, "{name} cut at {cut}");
            assert_eq!(mapped.2, buffered.2, "{name} cut at {cut}");
            assert_eq!(mapped.1.is_some(), cut < bytes.len(), "{name} cut at {cut}");
            assert_eq!(mapped.1.map(|w| w.1), buffered.1.map(|w| w.1), "{name} cut at {cut}");
        }
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}
