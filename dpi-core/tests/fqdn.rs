//! FQDN learning on real and generated DNS traffic.
//!
//! Expected results were produced from the corpus captures with tshark 4.0
//! (`tshark -r FILE -Y 'dns && (udp.srcport==53 || tcp.srcport==53)' -T json
//! --no-duplicate-keys`): for every successful response (QR = 1, opcode 0, RCODE 0), the
//! lowercased question name linked to the A/AAAA records of the *answer section* that
//! end the CNAME chain starting at it. Cross-checked by hand with
//! `tshark -T fields -e dns.qry.name -e dns.a -e dns.aaaa` (whose address columns also
//! include the additional section: the glue addresses of `ns1/ns2.weberdns.de` in
//! `dns_fragmented.pcap` must *not* be linked to `pa.weberlab.de` or `fg2.weberlab.de`).
//!
//! Two feeding paths are checked:
//! - **direct**: each frame decoded with `dpi_core::packet::decode`, the payload of every
//!   UDP datagram from port 53 given to `FqdnMap::learn_from_dns` (what an adapter could do
//!   without the engine; IP fragments are not reassembled);
//! - **engine**: the capture replayed through a `Ctx` whose `Inspector` feeds DNS payloads
//!   from port 53 to the map: UDP datagrams after IP reassembly, TCP messages framed with
//!   `dns::tcp_message` on the reassembled stream. Only this path sees the fragmented
//!   responses of `dns_fragmented.pcap`.
//!
//! A missing corpus skips the capture tests with a note; the pcapgen tests always run.

#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

use dpi_core::fqdn::{dns, FqdnMap};
use dpi_core::packet::{addr_from_v4, decode, Addr, Frame, L4};
use dpi_core::{Config, Ctx, Dir, HookCx, Inspector, SessionView, Time};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Retention long enough that nothing expires within a capture (some span weeks).
const FOREVER: u32 = u32::MAX;

type Expected = &'static [(&'static str, &'static [&'static str])];

const DNS_PCAP: Expected = &[
    ("108.168.176.234", &["e7.whatsapp.net"]),
    ("169.45.219.232", &["e7.whatsapp.net"]),
    ("169.45.219.235", &["e7.whatsapp.net"]),
    ("169.45.248.121", &["e7.whatsapp.net"]),
    ("169.45.248.180", &["e7.whatsapp.net"]),
    ("169.45.248.189", &["e7.whatsapp.net"]),
    ("169.47.40.142", &["e7.whatsapp.net"]),
    ("169.53.81.79", &["e7.whatsapp.net"]),
];

const DNS_FRAGMENTED: Expected = &[
    ("134.91.78.139", &["sigok.verteiltesysteme.net"]),
    ("194.247.4.10", &["fg2.weberlab.de"]),
    ("194.247.5.14", &["ns2.weberdns.de"]),
    ("85.25.234.253", &["formel1.de"]),
    ("2001:470:1f0b:1024::2", &["pa.weberlab.de"]),
    ("2001:470:1f0b:16b0::1", &["fg2-mgmt.weberlab.de"]),
    ("2001:470:1f0b:16b0::a26:53", &["ns2.weberdns.de"]),
    ("2606:4700:30::6818:6291", &["erfpop.de"]),
    ("2606:4700:30::6818:6391", &["erfpop.de"]),
];

const ANDROID: Expected = &[
    ("17.253.53.201", &["captive.apple.com"]),
    ("17.253.53.208", &["captive.apple.com"]),
    ("172.217.168.206", &["app-measurement.com"]),
    ("172.217.18.3", &["connectivitycheck.gstatic.com"]),
    ("172.217.20.74", &["play.googleapis.com", "semanticlocation-pa.googleapis.com"]),
    ("172.217.20.76", &["proxy.googlezip.net"]),
    ("172.217.21.202", &["datasaver.googleapis.com"]),
    ("172.217.22.10", &["android.googleapis.com"]),
    ("173.194.79.114", &["check.googlezip.net"]),
    ("216.239.35.0", &["time.android.com"]),
    ("216.239.35.12", &["time.android.com"]),
    ("216.239.35.4", &["time.android.com"]),
    ("216.239.35.8", &["time.android.com"]),
    (
        "216.239.38.120",
        &[
            "accounts.google.com",
            "android.clients.google.com",
            "clients1.google.com",
            "mtalk.google.com",
            "www.google.com",
        ],
    ),
];

const IPHONE: Expected = &[
    ("104.73.61.30", &["cl4.apple.com"]),
    ("17.130.2.46", &["gsp85-ssl.ls.apple.com"]),
    ("17.137.166.35", &["gsa.apple.com"]),
    ("17.248.131.171", &["p26-keyvalueservice.icloud.com"]),
    ("17.248.131.178", &["p26-fmfmobile.icloud.com"]),
    ("17.248.131.202", &["p26-fmfmobile.icloud.com"]),
    ("17.248.131.203", &["p26-fmfmobile.icloud.com"]),
    ("17.248.131.8", &["p26-fmfmobile.icloud.com"]),
    ("17.248.176.137", &["gateway.icloud.com"]),
    ("17.248.176.141", &["gateway.icloud.com"]),
    ("17.248.176.40", &["gateway.icloud.com"]),
    ("17.248.176.75", &["gateway.icloud.com"]),
    ("17.248.176.77", &["gateway.icloud.com"]),
    ("17.248.177.101", &["gateway.icloud.com"]),
    ("17.248.177.133", &["gateway.icloud.com"]),
    ("17.248.177.170", &["gateway.icloud.com"]),
    ("17.248.185.10", &["p26-keyvalueservice.icloud.com"]),
    ("17.248.185.103", &["p26-fmfmobile.icloud.com", "p26-keyvalueservice.icloud.com"]),
    ("17.248.185.132", &["p26-keyvalueservice.icloud.com"]),
    ("17.248.185.140", &["p26-fmfmobile.icloud.com"]),
    ("17.248.185.141", &["p26-keyvalueservice.icloud.com"]),
    ("17.248.185.164", &["p26-fmfmobile.icloud.com"]),
    ("17.248.185.38", &["p26-keyvalueservice.icloud.com"]),
    ("17.248.185.39", &["p26-keyvalueservice.icloud.com"]),
    ("17.248.185.48", &["p26-fmfmobile.icloud.com"]),
    ("17.248.185.87", &["p26-keyvalueservice.icloud.com"]),
    ("17.253.105.202", &["captive.apple.com", "mesu.apple.com"]),
    ("17.253.53.202", &["captive.apple.com"]),
    ("17.253.53.203", &["mesu.apple.com"]),
    ("23.45.74.46", &["www.icloud.com"]),
    ("92.122.252.82", &["iphone-ld.apple.com"]),
    ("92.123.77.26", &["play.itunes.apple.com"]),
    ("92.123.77.64", &["play.itunes.apple.com"]),
    ("95.101.24.53", &["bag.itunes.apple.com", "init.itunes.apple.com", "sync.itunes.apple.com"]),
    ("95.101.25.53", &["gspe35-ssl.ls.apple.com"]),
];

// ---------------------------------------------------------------------------------------
// Reading captures.

fn corpus(name: &str) -> Option<PathBuf> {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/ndpi/pcap").join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("corpus file {} missing; test skipped", p.display());
        None
    }
}

/// The Ethernet frames of a pcap or pcapng file, with their times in microseconds.
fn frames(path: &PathBuf) -> Vec<(u64, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = vec![];
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut r = pcap_file::pcapng::PcapNgReader::new(&bytes[..]).unwrap();
        let mut links = vec![];
        while let Some(block) = r.next_block() {
            match block.unwrap() {
                pcap_file::pcapng::Block::InterfaceDescription(i) => links.push(i.linktype),
                pcap_file::pcapng::Block::EnhancedPacket(p) => {
                    let link = links[p.interface_id as usize];
                    assert_eq!(link, pcap_file::DataLink::ETHERNET, "{}", path.display());
                    out.push((p.timestamp.as_micros() as u64, p.data.into_owned()));
                }
                _ => {}
            }
        }
    } else {
        let mut r = pcap_file::pcap::PcapReader::new(&bytes[..]).unwrap();
        assert_eq!(r.header().datalink, pcap_file::DataLink::ETHERNET, "{}", path.display());
        while let Some(p) = r.next_packet() {
            let p = p.unwrap();
            out.push((p.timestamp.as_micros() as u64, p.data.into_owned()));
        }
    }
    assert!(!out.is_empty());
    out
}

fn addr(s: &str) -> (bool, Addr) {
    match s.parse::<IpAddr>().unwrap() {
        IpAddr::V4(a) => (false, addr_from_v4(a.octets())),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

/// Every address of `expected` has exactly its names; the map holds nothing else.
fn assert_learned(m: &FqdnMap, expected: Expected, now: Time, what: &str) {
    let want: BTreeMap<&str, BTreeSet<&str>> =
        expected.iter().map(|(a, n)| (*a, n.iter().copied().collect())).collect();
    let mut got = BTreeMap::new();
    for a in want.keys() {
        let (v6, ad) = addr(a);
        got.insert(*a, m.names(v6, ad, now).collect::<BTreeSet<_>>());
    }
    assert_eq!(got, want, "{what}");
    assert_eq!(m.len(), expected.len(), "{what}: no other address learned");
}

// ---------------------------------------------------------------------------------------
// Feeding paths.

/// Direct path: UDP datagrams from port 53, one frame at a time.
fn learn_direct(frames: &[(u64, Vec<u8>)]) -> (FqdnMap, Time) {
    let mut m = FqdnMap::new(65_536, FOREVER);
    let mut now = Time::ZERO;
    for (ts, f) in frames {
        now = Time::from_micros(*ts);
        let Ok(Frame::Ip(d)) = decode(f, false) else { continue };
        if let L4::Udp(h) = d.l4 {
            if h.sport == 53 {
                m.learn_from_dns(&f[d.payload_off..d.payload_off + d.payload_len], now);
            }
        }
    }
    (m, now)
}

/// Engine path: an inspector that snoops DNS answers.
struct Snoop(Arc<Mutex<FqdnMap>>);

impl Inspector for Snoop {
    fn on_payload(
        &mut self,
        s: &SessionView<'_>,
        dir: Dir,
        data: &[u8],
        cx: &mut HookCx<'_>,
    ) -> usize {
        let sender = if dir == Dir::ToServer { s.client() } else { s.server() };
        if sender.port() != 53 {
            return data.len();
        }
        let mut m = self.0.lock().unwrap();
        if s.proto() != 6 {
            m.learn_from_dns(data, cx.now());
            return data.len();
        }
        let mut used = 0;
        while let Some((msg, n)) = dns::tcp_message(&data[used..]) {
            m.learn_from_dns(msg, cx.now());
            used += n;
        }
        used
    }
}

fn learn_engine(frames: &[(u64, Vec<u8>)]) -> (FqdnMap, Time) {
    let map = Arc::new(Mutex::new(FqdnMap::new(65_536, FOREVER)));
    let mut ctx = Ctx::with_inspector(Config::default(), Box::new(Snoop(map.clone())));
    let mut now = Time::ZERO;
    for (ts, f) in frames {
        now = Time::from_micros(*ts);
        ctx.handle_timeout(now);
        ctx.recv_packet(&mut f.clone());
        while ctx.poll_event().is_some() {}
    }
    while ctx.flush() > 0 {
        while ctx.poll_event().is_some() {}
    }
    drop(ctx);
    let m = Arc::try_unwrap(map).unwrap().into_inner().unwrap();
    (m, now)
}

// ---------------------------------------------------------------------------------------
// Tests.

#[test]
fn corpus_unfragmented_captures_match_tshark() {
    for (name, expected, responses) in
        [("dns.pcap", DNS_PCAP, 3), ("android.pcap", ANDROID, 21), ("iphone.pcap", IPHONE, 19)]
    {
        let Some(path) = corpus(name) else { continue };
        let frames = frames(&path);
        let (direct, now) = learn_direct(&frames);
        assert_learned(&direct, expected, now, &format!("{name} direct"));
        assert_eq!(direct.counters().dns_responses, responses, "{name}");
        assert_eq!(direct.counters().dns_malformed, 0, "{name}");
        let (engine, now) = learn_engine(&frames);
        assert_learned(&engine, expected, now, &format!("{name} engine"));
        assert_eq!(engine.counters().dns_responses, responses, "{name}");
    }
}

#[test]
fn corpus_fragmented_and_tcp_responses_need_the_engine() {
    let Some(path) = corpus("dns_fragmented.pcap") else { return };
    let frames = frames(&path);
    // Through the engine: IP fragments reassembled (UDP over IPv4 and IPv6), TCP streams
    // reassembled and framed; every one of the 20 successful responses is read.
    let (engine, now) = learn_engine(&frames);
    assert_learned(&engine, DNS_FRAGMENTED, now, "dns_fragmented engine");
    assert_eq!(engine.counters().dns_responses, 20);
    assert_eq!(engine.counters().dns_ignored, 1, "the SERVFAIL for sigfail.verteiltesysteme.net");
    assert_eq!(engine.counters().dns_malformed, 0);
    // pa.weberlab.de's answer is only in a fragmented datagram; its glue records
    // (additional section) name other hosts.
    let (v6, pa) = addr("2001:470:1f0b:1024::2");
    assert!(engine.matches(v6, pa, "*.weberlab.de", now));
    let (v6, ns) = addr("2001:470:765b::a25:53");
    assert_eq!(engine.names(v6, ns, now).count(), 0, "glue is not an answer");

    // Frame by frame, the fragmented responses are invisible: 7 UDP responses are
    // fragmented and 2 go over TCP.
    let (direct, now) = learn_direct(&frames);
    assert_eq!(direct.counters().dns_responses, 20 - 7 - 2);
    assert_eq!(direct.names(v6, pa, now).count(), 0);
    let (v4, fg2) = addr("194.247.4.10");
    assert_eq!(direct.names(v4, fg2, now).count(), 0);
    let (v4, formel) = addr("85.25.234.253");
    assert_eq!(direct.names(v4, formel, now).collect::<Vec<_>>(), ["formel1.de"]);
}

#[test]
fn corpus_mdns_and_malformed_dns_never_teach_nonsense() {
    // Every UDP payload of these files, whatever its port, goes to the parser. Expected
    // counts from tshark: iphone.pcap adds mDNS (port 5353) responses, which have no
    // question and teach nothing; malformed_dns.pcap has 4 responses whose names tshark
    // calls "Name too long" and 2 queries; bad-dns-traffic.pcap (a DNS tunnel) has 159
    // successful responses, all MX, and 223 other messages; dns-invalid-chars.pcap asks
    // for a name with control bytes and gets an answer for another such name.
    let cases: [(&str, usize, u64, u64, u64); 4] = [
        // file, addresses learned, responses, ignored, malformed
        ("iphone.pcap", IPHONE.len(), 19, 53, 0),
        ("malformed_dns.pcap", 0, 0, 2, 4),
        ("bad-dns-traffic.pcap", 0, 159, 223, 0),
        ("dns-invalid-chars.pcap", 0, 0, 2, 0),
    ];
    for (name, addrs, responses, ignored, malformed) in cases {
        let Some(path) = corpus(name) else { continue };
        let mut m = FqdnMap::new(65_536, FOREVER);
        let mut answer = dns::Answer::new();
        for (ts, f) in frames(&path) {
            let Ok(Frame::Ip(d)) = decode(&f, false) else { continue };
            if let L4::Udp(_) = d.l4 {
                let payload = &f[d.payload_off..d.payload_off + d.payload_len];
                m.learn_from_dns(payload, Time::from_micros(ts));
                if dns::parse_response(payload, &mut answer).is_ok() {
                    let n = answer.name();
                    assert!(!n.is_empty() && n.len() <= dns::MAX_NAME_LEN, "{name}: {n:?}");
                    assert!(n.bytes().all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase()));
                    assert!(!n.starts_with('.') && !n.ends_with('.') && !n.contains(".."));
                }
            }
        }
        let c = m.counters();
        assert_eq!(
            (m.len(), c.dns_responses, c.dns_ignored, c.dns_malformed),
            (addrs, responses, ignored, malformed),
            "{name}: {c:?}"
        );
    }
}

#[test]
fn pcapgen_udp_dns_scenario() {
    let s = pcapgen::scenario("udp_dns").unwrap();
    let frames: Vec<_> = s.frames.iter().map(|f| (f.ts_micros, f.data.clone())).collect();
    for (m, now) in [learn_direct(&frames), learn_engine(&frames)] {
        let (v6, a) = addr("93.184.216.34");
        assert_eq!(m.names(v6, a, now).collect::<Vec<_>>(), ["example.com"]);
        assert_eq!(m.len(), 1);
        assert_eq!(m.counters().dns_responses, 2);
        assert_eq!(m.counters().dns_ignored, 0, "queries come from port 53000, not 53");
        assert!(m.matches(v6, a, "example.com", now));
        assert!(!m.matches(v6, a, "*.example.com", now), "a wildcard needs a label before");
    }
    // With the default retention (1800 s), the name is gone 30 minutes after the last
    // answer.
    let mut m = FqdnMap::new(1024, 1800);
    for (ts, f) in &frames {
        let Ok(Frame::Ip(d)) = decode(f, false) else { continue };
        m.learn_from_dns(&f[d.payload_off..d.payload_off + d.payload_len], Time::from_micros(*ts));
    }
    let last = Time::from_micros(frames.last().unwrap().0);
    let (v6, a) = addr("93.184.216.34");
    assert_eq!(m.names(v6, a, last.add_micros(1_799_000_000)).count(), 1);
    assert_eq!(m.names(v6, a, last.add_micros(1_800_000_000)).count(), 0);
    assert_eq!(m.expire(last.add_micros(1_800_000_000)), 1);
    assert!(m.is_empty());
}

// ---------------------------------------------------------------------------------------
// Steady state allocates nothing.

/// A response to `name` (type A) with one A record, its owner compressed.
fn a_response(name: &str, ip: [u8; 4]) -> Vec<u8> {
    let mut m = vec![0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
    m.extend_from_slice(&ip);
    m
}

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn note_alloc() {
    // `try_with`: thread-local storage may be gone while a thread shuts down.
    let _ = COUNTING.try_with(|c| {
        if c.get() {
            let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
        }
    });
}

// SAFETY: forwards every call to the system allocator unchanged; only counts (per thread,
// so that the other tests of this binary running in parallel are not counted).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn steady_state_learning_does_not_allocate() {
    // DNS answers from the corpus if present, and generated ones; a small map, so that
    // learning churns through evictions, name frees and slot reuse.
    let mut payloads: Vec<Vec<u8>> = vec![];
    for name in ["android.pcap", "iphone.pcap", "dns.pcap"] {
        let Some(path) = corpus(name) else { continue };
        for (_, f) in frames(&path) {
            if let Ok(Frame::Ip(d)) = decode(&f, false) {
                if matches!(d.l4, L4::Udp(h) if h.sport == 53) {
                    payloads.push(f[d.payload_off..d.payload_off + d.payload_len].to_vec());
                }
            }
        }
    }
    for f in pcapgen::scenario("udp_dns").unwrap().frames {
        let Ok(Frame::Ip(d)) = decode(&f.data, false) else { continue };
        payloads.push(f.data[d.payload_off..d.payload_off + d.payload_len].to_vec());
    }
    // 40 names with an address each, more than the map holds.
    for i in 0..40u8 {
        payloads.push(a_response(&format!("host{i}.example.org"), [192, 0, 2, i]));
    }
    let mut m = FqdnMap::new(16, 60);
    let mut t = 0u64;
    let mut pass = |m: &mut FqdnMap| {
        let mut learned = 0;
        for p in &payloads {
            t += 1_000_000;
            learned += m.learn_from_dns(p, Time::from_micros(t));
            let mut out = [""; 8];
            learned += m.names_into(
                false,
                addr_from_v4([17, 253, 53, 201]),
                Time::from_micros(t),
                &mut out,
            );
            m.expire(Time::from_micros(t));
        }
        learned
    };
    for _ in 0..3 {
        pass(&mut m);
    }
    let before = *m.counters();
    COUNTING.with(|c| c.set(true));
    let learned = pass(&mut m);
    COUNTING.with(|c| c.set(false));
    assert!(learned > 0);
    assert!(m.counters().addr_evictions > before.addr_evictions, "{:?}", m.counters());
    assert_eq!(ALLOCS.with(Cell::get), 0, "allocations in steady state");
}
