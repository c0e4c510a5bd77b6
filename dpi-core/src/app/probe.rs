//! The parser registry: which application protocols the engine recognises, and how.
//!
//! Identification works on the first bytes of a session: the engine copies the first
//! [`C2S_PREFIX`] bytes the client sends and the first [`S2C_PREFIX`] bytes the server sends
//! (TCP: in stream order, reassembled; UDP: the first datagram of each direction) and asks
//! every candidate parser, in [`PARSERS`] order, to [`probe`](ProbeFn) them each time a
//! direction got new bytes. A probe is a pure function of its [`ProbeCtx`]: it answers
//! [`Probe::Match`] (this is my protocol), [`Probe::No`] (it is not, never ask again), or
//! [`Probe::NeedMore`]. The first matching parser wins, unless a parser listed before it
//! still needs more bytes, in which case the engine waits (bounded by the prefixes and a
//! packet budget). When no candidate is left, or the budget is spent, the session's
//! application is unidentified.
//!
//! Identification uses the payload, never the ports alone, except for protocols with no
//! signature (Echo; TFTP and NTP get port hints as well as payload checks). Probes never
//! allocate and never panic on any input (fuzzed).

use super::AppId;
use crate::flow::Dir;
use crate::packet::proto;

/// Client bytes kept for identification (a TLS ClientHello with post-quantum key shares
/// is about 1.8 KB; HTTP request headers with cookies more).
pub const C2S_PREFIX: usize = 4096;
/// Server bytes kept for identification.
pub const S2C_PREFIX: usize = 1024;
/// Payload packets (both directions) after which an undecided session is unidentified.
pub const PACKET_BUDGET: u8 = 12;

/// What a probe sees.
#[derive(Clone, Copy, Debug)]
pub struct ProbeCtx<'a> {
    /// IP protocol (TCP or UDP).
    pub proto: u8,
    /// Client port.
    pub client_port: u16,
    /// Server port.
    pub server_port: u16,
    /// First client bytes (TCP: stream order; UDP: the first client datagram).
    pub c2s: &'a [u8],
    /// First server bytes.
    pub s2c: &'a [u8],
    /// No more client bytes will come into `c2s` (prefix full, or UDP datagram seen).
    pub c2s_done: bool,
    /// No more server bytes will come into `s2c`.
    pub s2c_done: bool,
    /// Which side sent payload first.
    pub first: Option<Dir>,
    /// The session was picked up mid-stream: `c2s`/`s2c` may start mid-message.
    pub mid_stream: bool,
}

impl ProbeCtx<'_> {
    /// TCP session?
    pub fn is_tcp(&self) -> bool {
        self.proto == proto::TCP
    }

    /// Either port is `p`.
    pub fn port_is(&self, p: u16) -> bool {
        self.server_port == p || self.client_port == p
    }
}

/// A probe's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// This is my protocol.
    Match,
    /// It is not; do not ask again.
    No,
    /// Not enough bytes yet to say.
    NeedMore,
}

/// A probe function.
pub type ProbeFn = fn(&ProbeCtx<'_>) -> Probe;

/// One parser.
#[derive(Clone, Copy, Debug)]
pub struct Parser {
    /// The application it recognises.
    pub app: AppId,
    /// Probe for TCP sessions.
    pub tcp: Option<ProbeFn>,
    /// Probe for UDP sessions.
    pub udp: Option<ProbeFn>,
}

use super::parsers as p;

/// Every parser, in priority order: more specific signatures first (gRPC before HTTP/2,
/// Couchbase before Memcached), port-only Echo last. Each parser's module documents its
/// signature.
pub static PARSERS: &[Parser] = &[
    Parser { app: AppId::TLS, tcp: Some(p::tls::probe), udp: None },
    Parser { app: AppId::SSH, tcp: Some(p::ssh::probe), udp: None },
    Parser { app: AppId::GRPC, tcp: Some(p::http2::probe_grpc), udp: None },
    Parser { app: AppId::HTTP2, tcp: Some(p::http2::probe), udp: None },
    Parser { app: AppId::HTTP, tcp: Some(p::http::probe), udp: None },
    Parser { app: AppId::RTSP, tcp: Some(p::http::probe_rtsp), udp: None },
    Parser { app: AppId::SIP, tcp: Some(p::http::probe_sip), udp: Some(p::http::probe_sip) },
    Parser { app: AppId::DNS, tcp: Some(p::dns::probe_tcp), udp: Some(p::dns::probe_udp) },
    Parser { app: AppId::DHCP, tcp: None, udp: Some(p::dhcp::probe) },
    Parser { app: AppId::NTP, tcp: None, udp: Some(p::ntp::probe) },
    Parser { app: AppId::TFTP, tcp: None, udp: Some(p::tftp::probe) },
    Parser { app: AppId::MYSQL, tcp: Some(p::mysql::probe), udp: None },
    Parser { app: AppId::PGSQL, tcp: Some(p::pgsql::probe), udp: None },
    Parser { app: AppId::TDS, tcp: Some(p::tds::probe), udp: None },
    Parser { app: AppId::TNS, tcp: Some(p::tns::probe), udp: None },
    Parser { app: AppId::MONGODB, tcp: Some(p::mongodb::probe), udp: None },
    Parser { app: AppId::CASSANDRA, tcp: Some(p::cassandra::probe), udp: None },
    Parser { app: AppId::REDIS, tcp: Some(p::redis::probe), udp: None },
    Parser { app: AppId::COUCHBASE, tcp: Some(p::couchbase::probe), udp: None },
    Parser {
        app: AppId::MEMCACHED,
        tcp: Some(p::memcached::probe),
        udp: Some(p::memcached::probe),
    },
    Parser { app: AppId::KAFKA, tcp: Some(p::kafka::probe), udp: None },
    Parser {
        app: AppId::ZOOKEEPER,
        tcp: Some(p::zookeeper::probe),
        udp: Some(p::zookeeper::probe),
    },
    Parser { app: AppId::SPARK, tcp: Some(p::spark::probe), udp: None },
    Parser { app: AppId::AMQP, tcp: Some(p::amqp::probe), udp: None },
    Parser { app: AppId::MQTT, tcp: Some(p::mqtt::probe), udp: None },
    Parser { app: AppId::NATS, tcp: Some(p::nats::probe), udp: None },
    Parser { app: AppId::ECHO, tcp: Some(p::echo::probe), udp: Some(p::echo::probe) },
];

/// Bit mask of the parsers that apply to `proto`.
pub(crate) fn candidates(proto_num: u8) -> u64 {
    let mut m = 0u64;
    for (i, p) in PARSERS.iter().enumerate() {
        let has = match proto_num {
            proto::TCP => p.tcp.is_some(),
            proto::UDP => p.udp.is_some(),
            _ => false,
        };
        if has {
            m |= 1 << i;
        }
    }
    m
}

/// Outcome of asking the candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Identified.
    Found(AppId),
    /// Still undecided; the remaining candidates.
    Pending(u64),
    /// No candidate left.
    None,
}

/// Ask the `candidates` (bit mask over [`PARSERS`]) about `cx`.
pub(crate) fn run(cx: &ProbeCtx<'_>, mut candidates: u64) -> Outcome {
    let mut waiting_before = false;
    for (i, p) in PARSERS.iter().enumerate() {
        if candidates & (1 << i) == 0 {
            continue;
        }
        let f = if cx.is_tcp() { p.tcp } else { p.udp };
        let Some(f) = f else {
            candidates &= !(1 << i);
            continue;
        };
        // Once no more bytes can come, "need more" is "no": a probe that cannot decide
        // must not hold back the others.
        let answer = match f(cx) {
            Probe::NeedMore if cx.c2s_done && cx.s2c_done => Probe::No,
            a => a,
        };
        match answer {
            Probe::Match if !waiting_before => return Outcome::Found(p.app),
            Probe::Match => {}
            Probe::No => candidates &= !(1 << i),
            Probe::NeedMore => waiting_before = true,
        }
    }
    if candidates == 0 {
        Outcome::None
    } else {
        Outcome::Pending(candidates)
    }
}

/// Bytes of a slice from `start`, if it is that long; a bounded reader for probes.
pub(crate) fn at(b: &[u8], start: usize, len: usize) -> Option<&[u8]> {
    b.get(start..start.checked_add(len)?)
}

/// Big-endian u16 at `off`.
pub(crate) fn be16(b: &[u8], off: usize) -> Option<u16> {
    at(b, off, 2).map(|x| u16::from_be_bytes([x[0], x[1]]))
}

/// Big-endian u32 at `off`.
#[allow(dead_code)] // for the parsers being written
pub(crate) fn be32(b: &[u8], off: usize) -> Option<u32> {
    at(b, off, 4).map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
}

/// Little-endian u32 at `off`.
#[allow(dead_code)] // for the parsers being written
pub(crate) fn le32(b: &[u8], off: usize) -> Option<u32> {
    at(b, off, 4).map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
}
