//! Session records as Suricata EVE `flow` events, one JSON object per line.
//!
//! [`write_flow`] turns a [`SessionRecord`] from [`Event::SessionEnd`](dpi_core::Event) into
//! the shape of Suricata's `event_type: "flow"` record, so tools written for Suricata's
//! `eve.json` (jq recipes, Elastic/Splunk mappings, suricata-verify style checks) read it:
//!
//! ```json
//! {"timestamp":"2026-01-01T00:00:05.000300+0000","flow_id":7,"event_type":"flow",
//!  "src_ip":"10.0.0.1","src_port":40000,"dest_ip":"10.0.0.2","dest_port":80,"proto":"TCP",
//!  "app_proto":"failed",
//!  "flow":{"pkts_toserver":5,"pkts_toclient":4,"bytes_toserver":330,"bytes_toclient":280,
//!          "start":"2026-01-01T00:00:00.000000+0000","end":"2026-01-01T00:00:05.000300+0000",
//!          "age":5,"state":"closed","reason":"timeout","alerted":false},
//!  "tcp":{"state":"closed"},
//!  "enforcer":{"session_id":7,"end_reason":"tcp_fin","client_state":"time_wait",
//!              "server_state":"close","retransmissions":0,"out_of_order":0,
//!              "mid_stream":false,"bypassed":null,"icmp_errors":0}}
//! ```
//!
//! (one line in the output). Field by field:
//!
//! - `timestamp`: the flow's last packet time, as Suricata stamps flow events; all times in
//!   Suricata's format `YYYY-MM-DDTHH:MM:SS.uuuuuu+0000`, in UTC.
//! - `flow_id`: the session id. `src_*` is always the client, `dest_*` the server.
//! - `vlan`: VLAN ids, outermost first; present only on tagged sessions.
//! - `src_port`/`dest_port`: TCP, UDP and SCTP only. ICMP flows carry `icmp_type` and
//!   `icmp_code` of the client's (request) message instead, other protocols neither.
//! - IPv6 addresses are written as Suricata writes them: eight groups of four hex digits,
//!   uncompressed (`2001:0db8:0000:0000:0000:0000:0000:0001`).
//! - `proto`: "TCP", "UDP", "ICMP", "IPv6-ICMP", "IGMP", "IPIP", "IPv6", "GRE", "ESP",
//!   "AH", "SCTP"; any other protocol as its number in decimal ("103").
//! - `app_proto`: the identified application's name, else "failed" (Suricata's word for
//!   "not identified").
//! - `flow.state`: "closed" for a TCP session closed by FINs or RST; otherwise
//!   "established" once the handshake completed (TCP; picked up mid-stream counts as
//!   completed) or packets went both ways (other protocols), else "new".
//! - `flow.reason`: "timeout" (ended by its idle or close-linger timer: `tcp_fin`,
//!   `tcp_rst`, `idle_timeout`), "forced" (`port_reuse`, `evicted`), "shutdown" (`flushed`
//!   at the end of the capture).
//! - `flow.age`: whole seconds between the first and the last packet, as Suricata computes it.
//! - `tcp.state` (TCP only): Suricata tracks one state per connection, seen from the
//!   client's side (a server that closes first puts it in `close_wait`). It is "closed"
//!   when the session is closed, else the client end's state as the engine inferred it
//!   (`syn_sent`, `established`, `fin_wait1`, `close_wait`, ...; `none` before the client
//!   spoke). Suricata's `tcp_flags*` fields are not produced.
//! - `enforcer`: everything that has no Suricata equivalent, under one key; with a policy
//!   decision also `workload`, `direction` (`ingress`: the workload is the server),
//!   `action`, `rule_id` and `blocked`.
//!
//! Policy violations and connection reports have their own event types; see [`policy`].

use std::io::{self, Write};
use std::net::IpAddr;

pub mod lines;
pub mod policy;

pub use lines::EventLines;
pub use policy::{NoNames, StoreNames, WorkloadNames};

use dpi_core::app::AppState;
use dpi_core::{EndReason, SessionRecord, TcpState, Time};
use serde::{Serialize, Serializer};

/// Write `rec` as one EVE flow line (JSON plus `\n`). For many records use a
/// [`FlowWriter`], which makes one `write_all` call per record.
pub fn write_flow<W: Write + ?Sized>(w: &mut W, rec: &SessionRecord) -> io::Result<()> {
    FlowWriter::new().write(w, rec)
}

/// Writes flow lines through a reused buffer: the record is serialised into memory and
/// handed to the writer in one `write_all` (serde_json alone issues dozens of small
/// writes per record, each a virtual call through a `dyn Write`).
#[derive(Debug, Default)]
pub struct FlowWriter {
    buf: Vec<u8>,
}

impl FlowWriter {
    /// A writer with an empty buffer (it grows to the longest line once).
    pub fn new() -> Self {
        FlowWriter { buf: Vec::with_capacity(1024) }
    }

    /// Write `rec` as one line to `w`.
    pub fn write<W: Write + ?Sized>(&mut self, w: &mut W, rec: &SessionRecord) -> io::Result<()> {
        self.write_with(w, rec, &NoNames)
    }

    /// Write `rec`, naming its workload through `names`.
    pub fn write_with<W: Write + ?Sized>(
        &mut self,
        w: &mut W,
        rec: &SessionRecord,
        names: &dyn WorkloadNames,
    ) -> io::Result<()> {
        let ev = FlowEvent::new(rec).with_policy(rec, names);
        self.emit(w, &ev)
    }

    /// Write any serialisable event as one line.
    pub fn emit<W: Write + ?Sized, T: Serialize>(&mut self, w: &mut W, ev: &T) -> io::Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, ev)?;
        self.buf.push(b'\n');
        w.write_all(&self.buf)
    }
}

/// An EVE flow event borrowing a session record; serialise it with serde.
#[derive(Debug, Serialize)]
pub struct FlowEvent<'a> {
    timestamp: Timestamp,
    flow_id: u64,
    event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<&'a [u16]>,
    src_ip: EveIp,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    dest_ip: EveIp,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
    proto: ProtoName,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u8>,
    app_proto: &'static str,
    flow: FlowPart,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp: Option<TcpPart>,
    enforcer: EnforcerPart,
}

#[derive(Debug, Serialize)]
struct FlowPart {
    pkts_toserver: u64,
    pkts_toclient: u64,
    bytes_toserver: u64,
    bytes_toclient: u64,
    start: Timestamp,
    end: Timestamp,
    age: u64,
    state: &'static str,
    reason: Option<&'static str>,
    alerted: bool,
}

#[derive(Debug, Serialize)]
struct TcpPart {
    state: &'static str,
}

#[derive(Debug, Serialize)]
struct EnforcerPart {
    session_id: u64,
    end_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retransmissions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    out_of_order: Option<u32>,
    mid_stream: bool,
    bypassed: Option<&'static str>,
    icmp_errors: u32,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    policy: Option<policy::PolicyPart>,
}

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;
const SCTP: u8 = 132;

impl<'a> FlowEvent<'a> {
    /// The event for `rec`.
    pub fn new(rec: &'a SessionRecord) -> Self {
        let has_ports = matches!(rec.proto, TCP | UDP | SCTP);
        let is_icmp = matches!(rec.proto, ICMP | ICMPV6);
        // ICMP sessions: the server "port" is `code << 8 | type` of the request.
        let icmp = rec.server.port();
        let vlans = rec.vlans();
        // `established`: TCP handshake done; other protocols: both directions seen.
        let state = if rec.closed {
            "closed"
        } else if rec.established {
            "established"
        } else {
            "new"
        };
        let tcp = rec.tcp.map(|t| TcpPart {
            state: if rec.closed { "closed" } else { suricata_tcp_state(t.client_state) },
        });
        FlowEvent {
            timestamp: Timestamp(rec.last_seen),
            flow_id: rec.id,
            event_type: "flow",
            vlan: (!vlans.is_empty()).then_some(vlans),
            src_ip: EveIp(rec.client.ip()),
            src_port: has_ports.then(|| rec.client.port()),
            dest_ip: EveIp(rec.server.ip()),
            dest_port: has_ports.then(|| rec.server.port()),
            proto: ProtoName(rec.proto),
            icmp_type: is_icmp.then_some((icmp & 0xff) as u8),
            icmp_code: is_icmp.then_some((icmp >> 8) as u8),
            app_proto: app_proto(rec.app),
            flow: FlowPart {
                pkts_toserver: rec.to_server.pkts,
                pkts_toclient: rec.to_client.pkts,
                bytes_toserver: rec.to_server.bytes,
                bytes_toclient: rec.to_client.bytes,
                start: Timestamp(rec.first_seen),
                end: Timestamp(rec.last_seen),
                age: rec.last_seen.as_secs().saturating_sub(rec.first_seen.as_secs()),
                state,
                reason: rec.end.map(suricata_reason),
                alerted: false,
            },
            tcp,
            enforcer: EnforcerPart {
                session_id: rec.id,
                end_reason: rec.end.map(EndReason::name),
                client_state: rec.tcp.map(|t| t.client_state.name()),
                server_state: rec.tcp.map(|t| t.server_state.name()),
                retransmissions: rec.tcp.map(|t| t.retransmissions),
                out_of_order: rec.tcp.map(|t| t.out_of_order),
                mid_stream: rec.mid_stream,
                bypassed: rec.bypassed.map(|b| b.name()),
                icmp_errors: rec.icmp_errors,
                policy: None,
            },
        }
    }

    /// Add the policy decision (workload named through `names`).
    pub fn with_policy(mut self, rec: &SessionRecord, names: &dyn WorkloadNames) -> Self {
        self.enforcer.policy = rec.policy.map(|p| policy::PolicyPart::new(&p, names));
        self
    }
}

/// `app_proto` as Suricata writes it: the application's name, or "failed" when it was not
/// identified.
pub fn app_proto(app: AppState) -> &'static str {
    match app {
        AppState::Known(a) => a.name(),
        AppState::Pending | AppState::Unidentified => "failed",
    }
}

/// Suricata's `flow.reason` for an end reason.
pub fn suricata_reason(r: EndReason) -> &'static str {
    match r {
        EndReason::Flushed => "shutdown",
        EndReason::PortReuse | EndReason::Evicted => "forced",
        // TcpFin, TcpRst, IdleTimeout and anything added later that ends by a timer.
        _ => "timeout",
    }
}

/// Suricata's spelling of a TCP state name (ours says "close" where it says "closed").
pub fn suricata_tcp_state(s: TcpState) -> &'static str {
    match s {
        TcpState::Close => "closed",
        other => other.name(),
    }
}

/// Protocol name as Suricata prints it.
pub fn proto_name(p: u8) -> Option<&'static str> {
    Some(match p {
        ICMP => "ICMP",
        2 => "IGMP",
        4 => "IPIP",
        TCP => "TCP",
        UDP => "UDP",
        41 => "IPv6",
        47 => "GRE",
        50 => "ESP",
        51 => "AH",
        ICMPV6 => "IPv6-ICMP",
        SCTP => "SCTP",
        _ => return None,
    })
}

#[derive(Debug)]
struct ProtoName(u8);

impl Serialize for ProtoName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match proto_name(self.0) {
            Some(n) => s.serialize_str(n),
            None => {
                let mut buf = [0u8; 3];
                let mut n = self.0;
                let mut i = buf.len();
                loop {
                    i -= 1;
                    buf[i] = b'0' + n % 10;
                    n /= 10;
                    if n == 0 {
                        break;
                    }
                }
                s.serialize_str(core::str::from_utf8(&buf[i..]).unwrap_or("?"))
            }
        }
    }
}

/// An IP address in Suricata's EVE form (IPv6 uncompressed, four hex digits per group).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EveIp(pub IpAddr);

impl EveIp {
    /// The text form in `buf`; returns its length.
    fn encode(&self, buf: &mut [u8; 39]) -> usize {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        match self.0 {
            IpAddr::V4(a) => {
                let mut n = 0;
                for (i, o) in a.octets().into_iter().enumerate() {
                    if i > 0 {
                        buf[n] = b'.';
                        n += 1;
                    }
                    if o >= 100 {
                        buf[n] = b'0' + o / 100;
                        n += 1;
                    }
                    if o >= 10 {
                        buf[n] = b'0' + o / 10 % 10;
                        n += 1;
                    }
                    buf[n] = b'0' + o % 10;
                    n += 1;
                }
                n
            }
            IpAddr::V6(a) => {
                for (i, seg) in a.segments().into_iter().enumerate() {
                    let o = i * 5;
                    for k in 0..4 {
                        buf[o + k] = HEX[usize::from(seg >> (12 - 4 * k) & 0xf)];
                    }
                    if i < 7 {
                        buf[o + 4] = b':';
                    }
                }
                39
            }
        }
    }
}

impl core::fmt::Display for EveIp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut buf = [0u8; 39];
        let n = self.encode(&mut buf);
        f.write_str(core::str::from_utf8(&buf[..n]).map_err(|_| core::fmt::Error)?)
    }
}

impl Serialize for EveIp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 39];
        let n = self.encode(&mut buf);
        match core::str::from_utf8(&buf[..n]) {
            Ok(text) => s.serialize_str(text),
            Err(_) => s.collect_str(self),
        }
    }
}

/// A time in Suricata's EVE format: `2026-01-01T00:00:00.000000+0000` (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp(pub Time);

/// Length of a formatted timestamp with a four-digit year.
const TIMESTAMP_LEN: usize = 31;

impl Timestamp {
    fn parts(&self) -> (i64, u32, u32, u64, u64) {
        let us = self.0.as_micros();
        let secs = us / 1_000_000;
        let (y, m, d) = civil_from_days((secs / 86_400) as i64);
        (y, m, d, secs % 86_400, us % 1_000_000)
    }

    /// The text form, without the formatting machinery; `None` for years past 9999.
    fn encode(&self) -> Option<[u8; TIMESTAMP_LEN]> {
        let (y, m, d, sod, us) = self.parts();
        if y > 9999 {
            return None;
        }
        let mut b = *b"0000-00-00T00:00:00.000000+0000";
        put_digits(&mut b[0..4], y as u64);
        put_digits(&mut b[5..7], u64::from(m));
        put_digits(&mut b[8..10], u64::from(d));
        put_digits(&mut b[11..13], sod / 3600);
        put_digits(&mut b[14..16], sod / 60 % 60);
        put_digits(&mut b[17..19], sod % 60);
        put_digits(&mut b[20..26], us);
        Some(b)
    }
}

/// Write `v` in decimal into all of `dst`, zero-padded (high digits beyond it dropped).
fn put_digits(dst: &mut [u8], mut v: u64) {
    for c in dst.iter_mut().rev() {
        *c = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

impl core::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if let Some(b) = self.encode() {
            return f.write_str(core::str::from_utf8(&b).map_err(|_| core::fmt::Error)?);
        }
        let (y, m, d, sod, us) = self.parts();
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{us:06}+0000",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.encode() {
            Some(b) => match core::str::from_utf8(&b) {
                Ok(text) => s.serialize_str(text),
                Err(_) => s.collect_str(self),
            },
            None => s.collect_str(self),
        }
    }
}

/// `t` in Suricata's EVE format.
pub fn format_timestamp(t: Time) -> String {
    Timestamp(t).to_string()
}

/// Proleptic Gregorian (year, month 1-12, day 1-31) of a day number counted from
/// 1970-01-01 (Howard Hinnant's `civil_from_days`, exact over the whole `i64` day range
/// that fits a year in `i64`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
    use dpi_core::{DirCounts, TcpSummary};

    fn days(y: i64, m: u32, d: u32) -> i64 {
        // Independent check: count days naively.
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let mdays = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let mut n = 0i64;
        if y >= 1970 {
            for yy in 1970..y {
                n += if leap(yy) { 366 } else { 365 };
            }
        } else {
            for yy in y..1970 {
                n -= if leap(yy) { 366 } else { 365 };
            }
        }
        for mm in 1..m {
            n += mdays[mm as usize - 1] + i64::from(mm == 2 && leap(y));
        }
        n + i64::from(d) - 1
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(days(2000, 2, 29)), (2000, 2, 29));
        assert_eq!(civil_from_days(days(2000, 3, 1)), (2000, 3, 1));
        assert_eq!(civil_from_days(days(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(civil_from_days(days(2026, 1, 1)), (2026, 1, 1));
        assert_eq!(days(2026, 1, 1), 20_454);
        // 2100 is not a leap year.
        assert_eq!(civil_from_days(days(2100, 2, 28) + 1), (2100, 3, 1));
        assert_eq!(civil_from_days(days(2106, 2, 7)), (2106, 2, 7));
        assert_eq!(civil_from_days(days(2400, 2, 29)), (2400, 2, 29));
        // Every day of several centuries against the naive count.
        let mut n = days(1899, 1, 1);
        for y in 1899..2205 {
            for (m, len) in [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31].into_iter().enumerate()
            {
                let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
                let len = if m == 1 && leap { 29 } else { len };
                for d in 1..=len {
                    assert_eq!(civil_from_days(n), (y, m as u32 + 1, d), "day {n}");
                    n += 1;
                }
            }
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(format_timestamp(Time::ZERO), "1970-01-01T00:00:00.000000+0000");
        assert_eq!(
            format_timestamp(Time::from_secs(1_767_225_600)),
            "2026-01-01T00:00:00.000000+0000"
        );
        assert_eq!(
            format_timestamp(Time::from_micros(951_782_400_000_000 + 3_723_000_042)),
            "2000-02-29T01:02:03.000042+0000"
        );
        assert_eq!(
            format_timestamp(Time::from_secs(4_107_542_399)),
            "2100-02-28T23:59:59.000000+0000"
        );
        assert_eq!(
            format_timestamp(Time::from_secs(4_107_542_400)),
            "2100-03-01T00:00:00.000000+0000"
        );
        // The largest pcap second (u32::MAX) and the largest Time do not panic.
        assert_eq!(
            format_timestamp(Time::from_secs(u64::from(u32::MAX))),
            "2106-02-07T06:28:15.000000+0000"
        );
        assert!(format_timestamp(Time::from_micros(u64::MAX)).starts_with("586524-"));
    }

    fn record(proto: u8, client: SocketAddr, server: SocketAddr) -> SessionRecord {
        SessionRecord {
            id: 42,
            proto,
            client,
            server,
            vlan: [0; 2],
            vlan_count: 0,
            to_server: DirCounts { pkts: 3, bytes: 200 },
            to_client: DirCounts { pkts: 2, bytes: 150 },
            first_seen: Time::from_micros(1_767_225_600_500_000),
            last_seen: Time::from_micros(1_767_225_602_400_000),
            tcp: None,
            mid_stream: false,
            established: true,
            closed: false,
            bypassed: None,
            icmp_errors: 0,
            end: Some(EndReason::IdleTimeout),
            policy: None,
            app: dpi_core::app::AppState::Pending,
        }
    }

    fn to_json(rec: &SessionRecord) -> serde_json::Value {
        let mut out = Vec::new();
        write_flow(&mut out, rec).unwrap();
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn udp_flow_shape() {
        let c = SocketAddr::new(Ipv4Addr::new(10, 0, 0, 1).into(), 5353);
        let s = SocketAddr::new(Ipv4Addr::new(10, 0, 0, 2).into(), 53);
        let mut rec = record(UDP, c, s);
        rec.vlan = [100, 0];
        rec.vlan_count = 1;
        let v = to_json(&rec);
        assert_eq!(v["timestamp"], "2026-01-01T00:00:02.400000+0000");
        assert_eq!(v["flow_id"], 42);
        assert_eq!(v["event_type"], "flow");
        assert_eq!(v["vlan"], serde_json::json!([100]));
        assert_eq!(v["src_ip"], "10.0.0.1");
        assert_eq!(v["src_port"], 5353);
        assert_eq!(v["dest_ip"], "10.0.0.2");
        assert_eq!(v["dest_port"], 53);
        assert_eq!(v["proto"], "UDP");
        assert_eq!(v["app_proto"], "failed");
        let f = &v["flow"];
        assert_eq!(f["pkts_toserver"], 3);
        assert_eq!(f["pkts_toclient"], 2);
        assert_eq!(f["bytes_toserver"], 200);
        assert_eq!(f["bytes_toclient"], 150);
        assert_eq!(f["start"], "2026-01-01T00:00:00.500000+0000");
        assert_eq!(f["end"], "2026-01-01T00:00:02.400000+0000");
        assert_eq!(f["age"], 2);
        assert_eq!(f["state"], "established");
        assert_eq!(f["reason"], "timeout");
        assert_eq!(f["alerted"], false);
        assert!(v.get("tcp").is_none());
        let e = &v["enforcer"];
        assert_eq!(e["end_reason"], "idle_timeout");
        assert_eq!(e["session_id"], 42);
        assert_eq!(e["bypassed"], serde_json::Value::Null);
        assert!(e.get("client_state").is_none());

        // Only the server spoke (a DNS answer without its query): the engine does not
        // call that established.
        rec.to_server = DirCounts::default();
        rec.established = false;
        assert_eq!(to_json(&rec)["flow"]["state"], "new");
    }

    #[test]
    fn tcp_icmp_and_other_shapes() {
        let c = SocketAddr::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).into(), 40000);
        let s = SocketAddr::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0xa, 2).into(), 443);
        let mut rec = record(TCP, c, s);
        rec.tcp = Some(TcpSummary {
            client_state: TcpState::FinWait2,
            server_state: TcpState::CloseWait,
            retransmissions: 2,
            out_of_order: 1,
        });
        rec.end = Some(EndReason::Evicted);
        let v = to_json(&rec);
        assert_eq!(v["src_ip"], "2001:0db8:0000:0000:0000:0000:0000:0001");
        assert_eq!(v["dest_ip"], "2001:0db8:0000:0000:0000:0000:000a:0002");
        assert_eq!(v["tcp"]["state"], "fin_wait2");
        assert_eq!(v["flow"]["reason"], "forced");
        assert_eq!(v["enforcer"]["client_state"], "fin_wait2");
        assert_eq!(v["enforcer"]["server_state"], "close_wait");
        assert_eq!(v["enforcer"]["retransmissions"], 2);
        assert_eq!(v["enforcer"]["out_of_order"], 1);
        rec.closed = true;
        rec.end = Some(EndReason::Flushed);
        let v = to_json(&rec);
        assert_eq!(v["tcp"]["state"], "closed");
        assert_eq!(v["flow"]["state"], "closed");
        assert_eq!(v["flow"]["reason"], "shutdown");

        // ICMP echo: client port = identifier, server port = code << 8 | type.
        let c = SocketAddr::new(Ipv4Addr::new(10, 0, 0, 1).into(), 0x1234);
        let s = SocketAddr::new(Ipv4Addr::new(10, 0, 0, 2).into(), 8);
        let mut rec = record(ICMP, c, s);
        rec.to_client = DirCounts::default();
        rec.established = false;
        let v = to_json(&rec);
        assert_eq!(v["proto"], "ICMP");
        assert_eq!(v["icmp_type"], 8);
        assert_eq!(v["icmp_code"], 0);
        assert!(v.get("src_port").is_none() && v.get("dest_port").is_none());
        assert_eq!(v["flow"]["state"], "new");

        let c = SocketAddr::new(Ipv4Addr::new(10, 0, 0, 1).into(), 0);
        let s = SocketAddr::new(Ipv4Addr::new(10, 0, 0, 2).into(), 0);
        for (p, name) in [(47, "GRE"), (4, "IPIP"), (41, "IPv6"), (103, "103"), (0, "0")] {
            let v = to_json(&record(p, c, s));
            assert_eq!(v["proto"], name);
            assert!(v.get("src_port").is_none() && v.get("icmp_type").is_none());
        }
    }

    #[test]
    fn ip_text() {
        let cases: [(IpAddr, &str); 5] = [
            (Ipv4Addr::new(0, 0, 0, 0).into(), "0.0.0.0"),
            (Ipv4Addr::new(10, 20, 100, 255).into(), "10.20.100.255"),
            (Ipv4Addr::new(1, 9, 99, 199).into(), "1.9.99.199"),
            (Ipv6Addr::UNSPECIFIED.into(), "0000:0000:0000:0000:0000:0000:0000:0000"),
            (
                Ipv6Addr::new(0xfe80, 0xabcd, 0x12, 0, 0, 0, 0xf00, 0xffff).into(),
                "fe80:abcd:0012:0000:0000:0000:0f00:ffff",
            ),
        ];
        for (ip, text) in cases {
            assert_eq!(EveIp(ip).to_string(), text);
            assert_eq!(serde_json::to_value(EveIp(ip)).unwrap(), text);
        }
    }

    #[test]
    fn timestamp_serialises_like_display() {
        for t in [0, 1, 999_999, 1_767_225_600_123_456, 253_402_300_799_999_999, u64::MAX] {
            let ts = Timestamp(Time::from_micros(t));
            assert_eq!(serde_json::to_value(ts).unwrap(), ts.to_string());
        }
        assert_eq!(
            format_timestamp(Time::from_micros(253_402_300_799_999_999)),
            "9999-12-31T23:59:59.999999+0000"
        );
        assert_eq!(
            format_timestamp(Time::from_micros(253_402_300_800_000_000)),
            "10000-01-01T00:00:00.000000+0000"
        );
    }

    #[test]
    fn flow_writer_reuses_its_buffer() {
        let c = SocketAddr::new(Ipv4Addr::new(10, 0, 0, 1).into(), 1);
        let s = SocketAddr::new(Ipv4Addr::new(10, 0, 0, 2).into(), 2);
        let rec = record(UDP, c, s);
        let mut fw = FlowWriter::new();
        let mut out = Vec::new();
        fw.write(&mut out, &rec).unwrap();
        fw.write(&mut out, &rec).unwrap();
        let mut one = Vec::new();
        write_flow(&mut one, &rec).unwrap();
        assert_eq!(out, [one.clone(), one].concat());
    }

    #[test]
    fn suricata_names() {
        assert_eq!(suricata_tcp_state(TcpState::Close), "closed");
        assert_eq!(suricata_tcp_state(TcpState::SynSent), "syn_sent");
        assert_eq!(suricata_reason(EndReason::TcpRst), "timeout");
        assert_eq!(suricata_reason(EndReason::PortReuse), "forced");
    }
}
