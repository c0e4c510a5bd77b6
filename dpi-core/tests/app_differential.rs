//! Differential tests of the application parsers against reference parsers: `tls-parser`
//! (rusticata), `httparse` and `simple-dns`, over the real captures of the shared corpus.
//!
//! Every Ethernet capture (classic pcap, or pcapng interfaces with an Ethernet link type)
//! under `../shared/corpus/ndpi/pcap` and `../shared/corpus/suricata-verify/tests` is
//! replayed through a [`Ctx`] whose [`Inspector`] records, per TCP session, the first
//! [`C2S_PREFIX`] bytes the client sent (reassembled, in stream order: what identification
//! sees), and every UDP datagram to or from port 53. Sessions picked up mid-stream are kept:
//! their first bytes may start mid-message, which is more varied input, and the comparison
//! is about bytes (our probes are asked as if the bytes began a session). Then:
//!
//! - **TLS**: where tls-parser parses the client's first record as a ClientHello, our
//!   `tls::sni` must give the same host name (or both none) and `tls::probe` must match.
//!   Where tls-parser rejects the bytes (not TLS, or not a whole record), `tls::probe` must
//!   not match, except for the cases in [`tls_exception`].
//! - **HTTP**: where httparse parses a complete request (or a partial one whose request
//!   line is whole), `http::request_line` must say HTTP, `http::probe` must match, and
//!   (complete requests) `http::host` must equal httparse's `Host` value without its port.
//!   Where httparse rejects the bytes, `http::probe` must not match, except for the cases
//!   in [`http_exception`].
//! - **DNS**: where simple-dns parses a datagram, `dns::message` must accept it (with
//!   `is_query` from the header's QR bit: the oracle compares message structure, not who
//!   sent it); where simple-dns rejects it,
//!   the number of datagrams we still accept is reported and bounded
//!   ([`DNS_ACCEPTED_REJECTS_MAX`]).
//!
//! Each comparison prints its counts and requires a non-trivial number of samples. Without
//! the corpus the test prints a note and passes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dpi_core::app::parsers::{dns, http, tls};
use dpi_core::app::probe::{Probe, ProbeCtx, C2S_PREFIX};
use dpi_core::{Config, Ctx, Dir, HookCx, Inspector, SessionView, Time};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const TCP: u8 = 6;
const UDP: u8 = 17;

/// The client's first bytes of one TCP session.
#[derive(Debug)]
struct TcpSample {
    file: String,
    client_port: u16,
    server_port: u16,
    /// Up to `C2S_PREFIX` bytes, in stream order.
    c2s: Vec<u8>,
    /// The client sent more than `c2s` holds (so an incomplete parse is no verdict).
    cut: bool,
}

#[derive(Debug)]
struct DnsSample {
    file: String,
    payload: Vec<u8>,
}

#[derive(Debug, Default)]
struct Recorded {
    file: String,
    live: HashMap<u64, TcpSample>,
    tcp: Vec<TcpSample>,
    dns: Vec<DnsSample>,
    /// TCP sessions picked up mid-stream (their client bytes are compared all the same).
    mid_stream: usize,
}

/// Records payload for the comparisons; shared with the test through the mutex.
struct Recorder(Arc<Mutex<Recorded>>);

impl Inspector for Recorder {
    fn on_payload(
        &mut self,
        s: &SessionView<'_>,
        dir: Dir,
        data: &[u8],
        _cx: &mut HookCx<'_>,
    ) -> usize {
        let mut r = self.0.lock().unwrap();
        let file = r.file.clone();
        match s.proto() {
            TCP if dir == Dir::ToServer => {
                r.mid_stream += usize::from(s.mid_stream() && !r.live.contains_key(&s.id()));
                let e = r.live.entry(s.id()).or_insert_with(|| TcpSample {
                    file,
                    client_port: s.client().port(),
                    server_port: s.server().port(),
                    c2s: vec![],
                    cut: false,
                });
                let room = C2S_PREFIX - e.c2s.len();
                e.c2s.extend_from_slice(&data[..data.len().min(room)]);
                e.cut |= data.len() > room;
            }
            UDP if s.client().port() == 53 || s.server().port() == 53 => {
                r.dns.push(DnsSample { file, payload: data.to_vec() });
            }
            _ => {}
        }
        data.len()
    }

    fn on_session_end(&mut self, s: &SessionView<'_>, _cx: &mut HookCx<'_>) {
        let mut r = self.0.lock().unwrap();
        if let Some(t) = r.live.remove(&s.id()) {
            if !t.c2s.is_empty() {
                r.tcp.push(t);
            }
        }
    }
}

fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    dir.is_dir().then_some(dir)
}

/// Every capture file under `dir`, recursively, sorted.
fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = rd.map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            captures(&p, out);
        } else if p.file_name().unwrap().to_string_lossy().contains("pcap") {
            out.push(p);
        }
    }
}

/// pcapng timestamp units to microseconds (`if_tsresol`: bit 7 clear = 10^-n s, set =
/// 2^-n s; default 10^-6).
fn ng_micros(units: u64, tsresol: u8) -> u64 {
    let n = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 != 0 {
        ((u128::from(units) * 1_000_000) >> n.min(127)) as u64
    } else if n <= 6 {
        units.saturating_mul(10u64.pow(6 - n))
    } else {
        units / 10u64.checked_pow(n - 6).unwrap_or(u64::MAX)
    }
}

/// The Ethernet frames of a capture with their times in microseconds; `None` when the
/// file is not a capture or has no Ethernet frames. A file broken part-way gives the
/// frames before the break.
fn ethernet_frames(path: &Path) -> Option<Vec<(u64, Vec<u8>)>> {
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
    use pcap_file::pcapng::{Block, PcapNgReader};
    use pcap_file::DataLink;

    let bytes = std::fs::read(path).ok()?;
    let mut frames = vec![];
    if let Ok(mut r) = pcap_file::pcap::PcapReader::new(&bytes[..]) {
        if r.header().datalink != DataLink::ETHERNET {
            return None;
        }
        while let Some(Ok(p)) = r.next_packet() {
            frames.push((p.timestamp.as_micros() as u64, p.data.into_owned()));
        }
    } else if let Ok(mut r) = PcapNgReader::new(&bytes[..]) {
        // Per interface: Ethernet?, if_tsresol.
        let mut ifaces: Vec<(bool, u8)> = vec![];
        let mut last = 0;
        while let Some(Ok(block)) = r.next_block() {
            match block {
                Block::SectionHeader(_) => ifaces.clear(),
                Block::InterfaceDescription(idb) => {
                    let res = idb
                        .options
                        .iter()
                        .find_map(|o| match o {
                            InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
                            _ => None,
                        })
                        .unwrap_or(6);
                    ifaces.push((idb.linktype == DataLink::ETHERNET, res));
                }
                Block::EnhancedPacket(epb) => {
                    let Some(&(true, res)) = ifaces.get(epb.interface_id as usize) else {
                        continue;
                    };
                    // pcap-file hands the raw timestamp units over as nanoseconds.
                    last = ng_micros(epb.timestamp.as_nanos() as u64, res);
                    frames.push((last, epb.data.into_owned()));
                }
                Block::SimplePacket(spb) if ifaces.first().is_some_and(|i| i.0) => {
                    frames.push((last, spb.data.into_owned()));
                }
                _ => {}
            }
        }
    } else {
        return None;
    }
    (!frames.is_empty()).then_some(frames)
}

/// Replay every Ethernet capture of the corpus and record samples.
fn record(dir: &Path) -> (Recorded, usize) {
    let mut files = vec![];
    for sub in ["ndpi/pcap", "suricata-verify/tests"] {
        if dir.join(sub).is_dir() {
            captures(&dir.join(sub), &mut files);
        } else {
            eprintln!("note: {} missing: its captures are not compared", dir.join(sub).display());
        }
    }
    let shared = Arc::new(Mutex::new(Recorded::default()));
    let mut replayed = 0;
    for path in &files {
        let Some(frames) = ethernet_frames(path) else { continue };
        replayed += 1;
        let name = path.strip_prefix(dir).unwrap_or(path).display().to_string();
        shared.lock().unwrap().file = name;
        let cfg = Config { session_start_events: false, ..Config::default() };
        let mut ctx = Ctx::with_inspector(cfg, Box::new(Recorder(shared.clone())));
        let mut now = 0;
        for (ts, mut frame) in frames {
            now = now.max(ts); // some captures step back in time
            ctx.handle_timeout(Time::from_micros(now));
            ctx.recv_packet(&mut frame);
            while ctx.poll_event().is_some() {}
        }
        while ctx.flush() > 0 {
            while ctx.poll_event().is_some() {}
        }
        let mut r = shared.lock().unwrap();
        let left: Vec<_> = r.live.drain().map(|(_, t)| t).collect();
        r.tcp.extend(left.into_iter().filter(|t| !t.c2s.is_empty()));
    }
    let r = std::mem::take(&mut *shared.lock().unwrap());
    (r, replayed)
}

/// A fresh session's view with only the client's bytes, all of them.
fn client_cx(t: &TcpSample) -> ProbeCtx<'_> {
    ProbeCtx {
        proto: TCP,
        client_port: t.client_port,
        server_port: t.server_port,
        c2s: &t.c2s,
        s2c: b"",
        c2s_done: true,
        s2c_done: false,
        first: Some(Dir::ToServer),
        mid_stream: false,
    }
}

fn show(b: &[u8]) -> String {
    let n = b.len().min(48);
    format!("{:?}{}", String::from_utf8_lossy(&b[..n]), if b.len() > n { "..." } else { "" })
}

// ---------------------------------------------------------------------------------------
// TLS

/// What tls-parser makes of a client's first bytes.
#[derive(Debug, PartialEq)]
enum TlsOracle<'a> {
    /// A ClientHello; its SNI host name (`Err`: tls-parser could not parse the extensions).
    Hello(Result<Option<&'a str>, ()>),
    /// A TLS record, but not a ClientHello.
    OtherRecord,
    /// Not TLS, or not a whole record in bytes that will not grow.
    Rejected,
    /// Cut short by our prefix: no verdict.
    Undecided,
}

fn tls_oracle(t: &TcpSample) -> TlsOracle<'_> {
    use tls_parser::{
        parse_tls_client_hello_extensions, parse_tls_plaintext, SNIType, TlsExtension, TlsMessage,
        TlsMessageHandshake,
    };
    match parse_tls_plaintext(&t.c2s) {
        Ok((_, rec)) => match rec.msg.first() {
            Some(TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch))) => {
                let Some(ext) = ch.ext else { return TlsOracle::Hello(Ok(None)) };
                let Ok((_, exts)) = parse_tls_client_hello_extensions(ext) else {
                    return TlsOracle::Hello(Err(()));
                };
                let sni = exts.iter().find_map(|e| match e {
                    TlsExtension::SNI(names) => Some(
                        names
                            .iter()
                            .find(|(ty, _)| *ty == SNIType::HostName)
                            .and_then(|(_, n)| std::str::from_utf8(n).ok())
                            .filter(|s| !s.is_empty()),
                    ),
                    _ => None,
                });
                TlsOracle::Hello(Ok(sni.flatten()))
            }
            _ => TlsOracle::OtherRecord,
        },
        Err(tls_parser::Err::Incomplete(_)) if t.cut => TlsOracle::Undecided,
        Err(_) => TlsOracle::Rejected,
    }
}

/// Bytes tls-parser rejects that our probe may still call TLS, and why.
fn tls_exception(b: &[u8]) -> Option<&'static str> {
    // SSLv2-framed ClientHello (2-byte length with the high bit set, msg type 1): a
    // legacy hello format tls-parser does not parse at all; RFC 5246 appendix E.2 lets TLS
    // servers accept it for compatibility, and old clients still send it.
    if b.len() >= 3 && b[0] & 0x80 != 0 && b[2] == 1 {
        return Some("SSLv2-framed ClientHello (tls-parser has no SSLv2 parser)");
    }
    if b.len() >= 9 && b[0] == 22 && b[5] == 1 {
        let rec_len = usize::from(u16::from_be_bytes([b[3], b[4]]));
        let hs_len = usize::from(b[6]) << 16 | usize::from(b[7]) << 8 | usize::from(b[8]);
        // RFC 8446 §5.1: a handshake message may span records; tls-parser parses one
        // record at a time and fails on the first fragment.
        if hs_len + 4 > rec_len {
            return Some("ClientHello fragmented across records (tls-parser: one record)");
        }
        // The capture lost or cut the rest of the record: our probe decides on the record
        // and handshake headers, as it must on a session whose first segment is all we get.
        if b.len() < 5 + rec_len {
            return Some("ClientHello record cut short by the capture (header decides)");
        }
    }
    None
}

fn compare_tls(samples: &[TcpSample], failures: &mut Vec<String>) -> usize {
    let (mut hellos, mut with_sni, mut ext_unparsed, mut other, mut rejected, mut undecided) =
        (0, 0, 0, 0, 0, 0);
    let mut exceptions: HashMap<&str, Vec<&str>> = HashMap::new();
    for t in samples {
        let probe = tls::probe(&client_cx(t));
        match tls_oracle(t) {
            TlsOracle::Hello(sni) => {
                hellos += 1;
                if probe != Probe::Match {
                    failures.push(format!(
                        "tls: {} :{}: tls-parser parses a ClientHello, probe says {probe:?}",
                        t.file, t.server_port
                    ));
                }
                match sni {
                    Ok(want) => {
                        with_sni += usize::from(want.is_some());
                        let got = tls::sni(&t.c2s);
                        if got != want {
                            failures.push(format!(
                                "tls: {} :{}: sni {got:?}, tls-parser {want:?}",
                                t.file, t.server_port
                            ));
                        }
                    }
                    Err(()) => ext_unparsed += 1,
                }
            }
            TlsOracle::OtherRecord => other += 1,
            TlsOracle::Undecided => undecided += 1,
            TlsOracle::Rejected => {
                rejected += 1;
                if probe == Probe::Match {
                    match tls_exception(&t.c2s) {
                        Some(why) => exceptions.entry(why).or_default().push(&t.file),
                        None => failures.push(format!(
                            "tls: {} :{}: tls-parser rejects, probe matches: {}",
                            t.file,
                            t.server_port,
                            show(&t.c2s)
                        )),
                    }
                }
            }
        }
    }
    eprintln!(
        "TLS: {hellos} ClientHellos compared ({with_sni} with SNI, {ext_unparsed} whose \
         extensions tls-parser could not parse: SNI not compared); {rejected} first payloads \
         rejected by tls-parser; {other} other TLS records; {undecided} cut short"
    );
    for (why, files) in &exceptions {
        eprintln!("  TLS exception ({} sessions): {why}; e.g. {}", files.len(), files[0]);
    }
    hellos
}

// ---------------------------------------------------------------------------------------
// HTTP

/// `Host` value without a port, as the oracle sees it: `[v6]` literals keep their
/// brackets, otherwise everything from the first `:` goes. Empty or longer than a DNS name
/// (253) is none, as for `http::host`.
fn strip_port(v: &[u8]) -> Option<&str> {
    let v = std::str::from_utf8(v).ok()?.trim_matches([' ', '\t']);
    let host =
        if v.starts_with('[') { &v[..=v.find(']')?] } else { v.split(':').next().unwrap_or(v) };
    (!host.is_empty() && host.len() <= 253).then_some(host)
}

/// Bytes httparse rejects that our probe may still call HTTP, and why.
fn http_exception(b: &[u8]) -> Option<&'static str> {
    // RFC 9112 §3: "a recipient MAY instead parse on whitespace-delimited word boundaries";
    // our probe does (runs of spaces are seen in the wild); httparse only with this option.
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    let lenient = httparse::ParserConfig::default()
        .allow_multiple_spaces_in_request_line_delimiters(true)
        .parse_request(&mut req, b)
        .is_ok();
    if lenient {
        return Some("runs of spaces in the request line (RFC 9112 §3 leniency)");
    }
    // Identification looks at the request line only; a bad header further on (httparse
    // rejects e.g. a header name with a space or a non-token byte) does not make the
    // session something else.
    let line_end = b.iter().position(|&c| c == b'\n')?;
    let mut headers = [httparse::EMPTY_HEADER; 0];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(&b[..=line_end]) {
        Ok(_) | Err(httparse::Error::TooManyHeaders) => {
            Some("valid request line, header block httparse rejects")
        }
        Err(_) => None,
    }
}

fn compare_http(samples: &[TcpSample], failures: &mut Vec<String>) -> usize {
    let (mut complete, mut partial, mut hosts, mut rejected, mut skipped) = (0, 0, 0, 0, 0);
    let mut exceptions: HashMap<&str, Vec<&str>> = HashMap::new();
    for t in samples {
        let b = &t.c2s[..];
        let probe = http::probe(&client_cx(t));
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut headers);
        let res = req.parse(b);
        // A partial request whose request line is whole (httparse skips empty lines first).
        let line_whole = req.version.is_some()
            && b.iter().skip_while(|&&c| c == b'\r' || c == b'\n').any(|&c| c == b'\n');
        match res {
            Ok(st) if st.is_complete() || line_whole => {
                let line = http::request_line(b);
                if line != http::Line::Complete(http::Flavor::Http) || probe != Probe::Match {
                    failures.push(format!(
                        "http: {} :{}: httparse parses {} {}, request_line {line:?}, probe \
                         {probe:?}: {}",
                        t.file,
                        t.server_port,
                        req.method.unwrap_or(""),
                        req.path.unwrap_or(""),
                        show(b)
                    ));
                }
                if st.is_partial() {
                    partial += 1;
                    continue;
                }
                complete += 1;
                let want = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("host"))
                    .and_then(|h| strip_port(h.value));
                hosts += usize::from(want.is_some());
                let got = http::host(b);
                if got != want {
                    failures.push(format!(
                        "http: {} :{}: host {got:?}, httparse {want:?}",
                        t.file, t.server_port
                    ));
                }
            }
            Ok(_) | Err(httparse::Error::TooManyHeaders) => skipped += 1,
            Err(_) => {
                rejected += 1;
                if probe == Probe::Match {
                    match http_exception(b) {
                        Some(why) => exceptions.entry(why).or_default().push(&t.file),
                        None => failures.push(format!(
                            "http: {} :{}: httparse rejects, probe matches: {}",
                            t.file,
                            t.server_port,
                            show(b)
                        )),
                    }
                }
            }
        }
    }
    eprintln!(
        "HTTP: {} requests compared ({complete} complete, {hosts} with Host; {partial} with \
         only the request line whole); {rejected} first payloads rejected by httparse; \
         {skipped} undecided (partial request line, or more than 128 headers)",
        complete + partial
    );
    for (why, files) in &exceptions {
        eprintln!("  HTTP exception ({} sessions): {why}; e.g. {}", files.len(), files[0]);
    }
    complete + partial
}

// ---------------------------------------------------------------------------------------
// DNS

/// Datagrams simple-dns rejects that `dns::message` may accept: identification checks the
/// header and the first question only (not the whole message), so a message whose later
/// sections are garbage passes; in the corpus these are the crafted responses of
/// `ndpi/pcap/malformed_dns.pcap` (two questions and two answers announced, junk after the
/// first question).
const DNS_ACCEPTED_REJECTS_MAX: usize = 6;

fn compare_dns(samples: &[DnsSample], failures: &mut Vec<String>) -> usize {
    let (mut parsed, mut rejected) = (0, 0);
    let mut accepted_rejects = vec![];
    for d in samples {
        let m = &d.payload[..];
        match simple_dns::Packet::parse(m) {
            Ok(p) => {
                parsed += 1;
                let query = !p.has_flags(simple_dns::PacketFlag::RESPONSE);
                let got = dns::message(m, query);
                if got != Some(true) {
                    failures.push(format!(
                        "dns: {}: simple-dns parses a {} ({} questions, {} answers), \
                         message says {got:?}; bytes after the id: {:02x?}",
                        d.file,
                        if query { "query" } else { "response" },
                        p.questions.len(),
                        p.answers.len(),
                        &m[2..m.len().min(64)]
                    ));
                }
            }
            Err(e) => {
                rejected += 1;
                let query = m.get(2).is_none_or(|b| b & 0x80 == 0);
                if dns::message(m, query) == Some(true) {
                    accepted_rejects.push(format!(
                        "{}: simple-dns: {e}: {:02x?}",
                        d.file,
                        &m[..m.len().min(48)]
                    ));
                }
            }
        }
    }
    eprintln!(
        "DNS: {parsed} datagrams parsed by simple-dns and compared; {rejected} rejected by \
         simple-dns, of which dns::message accepts {}",
        accepted_rejects.len()
    );
    for a in &accepted_rejects {
        eprintln!("  accepted, simple-dns rejects: {a}");
    }
    if accepted_rejects.len() > DNS_ACCEPTED_REJECTS_MAX {
        failures.push(format!(
            "dns: {} datagrams simple-dns rejects are accepted (at most {DNS_ACCEPTED_REJECTS_MAX} \
             documented)",
            accepted_rejects.len()
        ));
    }
    parsed
}

#[test]
fn parsers_agree_with_reference_parsers() {
    let Some(dir) = corpus() else {
        eprintln!("note: corpus not found next to the workspace (../../shared/corpus): skipped");
        return;
    };
    let (rec, files) = record(&dir);
    eprintln!(
        "{files} Ethernet captures replayed: {} TCP sessions with client payload ({} of them \
         picked up mid-stream), {} UDP datagrams on port 53",
        rec.tcp.len(),
        rec.mid_stream,
        rec.dns.len()
    );
    let mut failures = vec![];
    let tls_n = compare_tls(&rec.tcp, &mut failures);
    let http_n = compare_http(&rec.tcp, &mut failures);
    let dns_n = compare_dns(&rec.dns, &mut failures);
    // The same disagreement tends to repeat (retransmissions, repeated lookups): list each
    // once with its count.
    let mut distinct: Vec<(&String, usize)> = vec![];
    for f in &failures {
        match distinct.iter_mut().find(|(g, _)| *g == f) {
            Some((_, n)) => *n += 1,
            None => distinct.push((f, 1)),
        }
    }
    for (f, n) in &distinct {
        eprintln!("FAIL ({n}x) {f}");
    }
    assert!(failures.is_empty(), "{} disagreements (listed above)", failures.len());
    // The corpus gives 191 ClientHellos, 196 HTTP requests and 1542 DNS messages.
    assert!(tls_n >= 170, "only {tls_n} ClientHellos compared");
    assert!(http_n >= 170, "only {http_n} HTTP requests compared");
    assert!(dns_n >= 1300, "only {dns_n} DNS messages compared");
}
