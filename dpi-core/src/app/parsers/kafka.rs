//! Apache Kafka wire protocol (kafka.apache.org/protocol, "Protocol Primitive Types",
//! "Common Request and Response Structure").
//!
//! Every message is an `int32` size followed by that many bytes. A request starts with
//! the request header: `int16 api_key`, `int16 api_version`, `int32 correlation_id`,
//! `nullable string client_id` (header v1 and v2 alike; v2 adds tagged fields after it). A
//! response starts with the correlation id of the request it answers.
//!
//! Identification: the client's first message is a request header with a known api key
//! (0–[`MAX_API_KEY`]), a small api version, a non-negative correlation id and a client id
//! of 1–[`MAX_CLIENT_ID`] printable characters, all inside the stated size (the client id
//! rules out other length-prefixed protocols, ZooKeeper's ConnectRequest among them);
//! then, either the server's first message carries the request's correlation id (on a
//! session picked up mid-stream, where the server's first bytes may answer earlier
//! requests, one of its first few messages), or the server says nothing at all (a
//! request-only capture) and the request is complete and exactly followed by another
//! valid request or by nothing.
//!
//! On a session picked up mid-stream, whose client and server the engine could only guess,
//! the roles are tried both ways round (`either_role`, which the other probes of this
//! family use too).

use crate::app::probe::{at, be16, be32, Probe, ProbeCtx};
use crate::flow::Dir;

/// Highest api key believed (Kafka 4.0 defines up to about 90).
pub const MAX_API_KEY: u16 = 90;
/// Highest api version believed (Fetch is at 17).
const MAX_API_VERSION: u16 = 20;
/// Longest client id accepted.
pub const MAX_CLIENT_ID: usize = 256;
/// Largest message believed (Kafka's `socket.request.max.bytes` default, 100 MiB).
const MAX_SIZE: u32 = 100 << 20;
/// Server messages walked looking for the correlation id (mid-stream).
const MAX_RESPONSES: usize = 8;

/// A request header at the start of `b`: its size and correlation id. `Err(())`: not one;
/// `Ok(None)`: cut short but valid so far.
fn request(b: &[u8]) -> Result<Option<(u32, u32)>, ()> {
    let Some(size) = be32(b, 0) else { return Ok(None) };
    if !(10..=MAX_SIZE).contains(&size) {
        return Err(());
    }
    let Some(key) = be16(b, 4) else { return Ok(None) };
    if key > MAX_API_KEY {
        return Err(());
    }
    let Some(version) = be16(b, 6) else { return Ok(None) };
    if version > MAX_API_VERSION {
        return Err(());
    }
    let Some(corr) = be32(b, 8) else { return Ok(None) };
    if corr > i32::MAX as u32 {
        return Err(());
    }
    let Some(id_len) = be16(b, 12) else { return Ok(None) };
    let id_len = usize::from(id_len);
    if id_len == 0 || id_len > MAX_CLIENT_ID || 10 + id_len > size as usize {
        return Err(()); // also a null (-1) client id
    }
    let avail = b.get(14..).unwrap_or_default();
    let seen = &avail[..avail.len().min(id_len)];
    if !seen.iter().all(|c| (0x20..0x7f).contains(c)) {
        return Err(());
    }
    if seen.len() < id_len {
        return Ok(None);
    }
    Ok(Some((size, corr)))
}

/// Does a server message among the first `walk` in `s2c` carry `corr`? `None`: the walk
/// ran out of bytes first.
fn answered(s2c: &[u8], corr: u32, walk: usize) -> Option<bool> {
    let mut off = 0usize;
    for _ in 0..walk {
        let size = be32(s2c, off)?;
        if !(4..=MAX_SIZE).contains(&size) {
            return Some(false);
        }
        if be32(s2c, off + 4)? == corr {
            return Some(true);
        }
        off += 4 + size as usize;
    }
    Some(false)
}

/// Kafka.
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    either_role(cx, probe_roles)
}

/// For a session picked up mid-stream, whose client and server the engine guessed (from
/// learned listeners, else the port order), `probe` with the roles as guessed and, unless
/// that matched, the other way round: `Match` if either matches, `NeedMore` if either
/// still could. Used by the probes of protocols seen mid-stream. (A candidate for a
/// `ProbeCtx` method in `app::probe`.)
pub(crate) fn either_role(cx: &ProbeCtx<'_>, probe: fn(&ProbeCtx<'_>) -> Probe) -> Probe {
    let a = probe(cx);
    if !cx.mid_stream || a == Probe::Match {
        return a;
    }
    let flip = |d: Dir| match d {
        Dir::ToServer => Dir::ToClient,
        Dir::ToClient => Dir::ToServer,
    };
    let reversed = ProbeCtx {
        client_port: cx.server_port,
        server_port: cx.client_port,
        c2s: cx.s2c,
        s2c: cx.c2s,
        c2s_done: cx.s2c_done,
        s2c_done: cx.c2s_done,
        first: cx.first.map(flip),
        ..*cx
    };
    match (a, probe(&reversed)) {
        (_, Probe::Match) => Probe::Match,
        (Probe::NeedMore, _) | (_, Probe::NeedMore) => Probe::NeedMore,
        _ => Probe::No,
    }
}

/// Kafka, with the roles as given.
fn probe_roles(cx: &ProbeCtx<'_>) -> Probe {
    if cx.c2s.is_empty() {
        // Servers never speak first, except in a session picked up mid-stream.
        let wait = !cx.c2s_done && (cx.s2c.is_empty() || cx.mid_stream);
        return if wait { Probe::NeedMore } else { Probe::No };
    }
    let (size, corr) = match request(cx.c2s) {
        Ok(Some(r)) => r,
        Ok(None) if !cx.c2s_done => return Probe::NeedMore,
        _ => return Probe::No,
    };
    if !cx.s2c.is_empty() {
        // Responses come in request order: the first answers the first request, unless
        // the session was picked up mid-stream.
        let walk = if cx.mid_stream { MAX_RESPONSES } else { 1 };
        return match answered(cx.s2c, corr, walk) {
            Some(true) => Probe::Match,
            Some(false) => Probe::No,
            None if cx.s2c_done => Probe::No,
            None => Probe::NeedMore,
        };
    }
    if !cx.s2c_done {
        return Probe::NeedMore;
    }
    // The server said nothing: the request must be whole, and whatever follows it another
    // request.
    let end = 4 + size as usize;
    match cx.c2s.get(end..) {
        Some([]) => Probe::Match,
        Some(next) => match request(next) {
            Ok(_) => Probe::Match,
            Err(()) => Probe::No,
        },
        None => Probe::No,
    }
}

/// The client id of the request at the start of `b`, if it is one.
pub fn client_id(b: &[u8]) -> Option<&str> {
    request(b).ok()??;
    let len = usize::from(be16(b, 12)?);
    core::str::from_utf8(at(b, 14, len)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(|c| c.is_ascii_hexdigit()).collect();
        s.chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    fn cx<'a>(c2s: &'a [u8], s2c: &'a [u8]) -> ProbeCtx<'a> {
        ProbeCtx {
            proto: 6,
            client_port: 49280,
            server_port: 9092,
            c2s,
            s2c,
            c2s_done: false,
            s2c_done: false,
            first: Some(Dir::ToServer),
            mid_stream: false,
        }
    }

    // ndpi/pcap/kafka.pcapng, 172.16.17.101:49280 -> :9092 (librdkafka): ApiVersions v0,
    // correlation 0x81, and the start of its response.
    const API_VERSIONS: &str = "000000150012000000000081000772646b61666b6100000000";
    const API_VERSIONS_RESP: &str = "0000015a0000008100000000003800000000000900010000000c";
    // The same capture, 172.16.17.101:53768: a lone Metadata v2 request.
    const METADATA: &str = "0000002800030002000000d4000772646b61666b610000000100114c425f4d41\
        494e5f4c4f475f494e505554";
    // The same capture, 127.0.0.1:46136 (Java client 3.6.1): ApiVersions v3, flexible
    // header with tagged fields.
    const API_VERSIONS_V3: &str = "0000003400120003000000030010636f6e736f6c652d70726f6475636572\
        00126170616368652d6b61666b612d6a61766106332e362e3100";
    // The same capture, 9092 -> 58052, picked up mid-stream: the server's first bytes
    // answer correlation 0x8c and 0x8d; the client's first request is 0x8e, answered third.
    const MID_S2C: &str = "0000015a0000008c00000000003800000000000900010000000c0002000000060003000\
        0000b000400000005000500000003000600000007000700000003000800000008000900000007000a00000\
        003000b00000007000c00000004000d00000004000e00000005000f0000000500100000000400110000000\
        10012000000030013000000070014000000060015000000020016000000040017000000040018000000030\
        01900000003001a00000003001b00000001001c00000003001d00000002001e00000002001f00000002002\
        00000000400210000000200220000000200230000000200240000000200250000000300260000000200270\
        0000002002800000002002900000002002a00000002002b00000002002c00000001002d00000000002e000\
        00000002f00000000003000000001003100000001003200000000003300000000003800000000003900000\
        000003c00000000003d00000000000000740000008d00000001000003e9000c3137322e33302e302e32333\
        700002384ffff001651354e4e6958506652327154416f46356937334a5067000003e900000001000000114\
        c425f4d41494e5f4c4f475f494e5055540000000001000000000000000003e900000001000003e90000000\
        1000003e9000000740000008e00000001000003e9000c3137";
    const MID_C2S: &str = "00000028000300020000008e000772646b61666b610000000100114c425f4d41494e5f4\
        c4f475f494e505554";

    #[test]
    fn request_answered_by_correlation_id() {
        let req = hex(API_VERSIONS);
        let resp = hex(API_VERSIONS_RESP);
        assert_eq!(probe(&cx(&req, &resp)), Probe::Match);
        assert_eq!(probe(&cx(&req, b"")), Probe::NeedMore);
        assert_eq!(probe(&cx(&req, &resp[..6])), Probe::NeedMore);
        let mut wrong = resp.clone();
        wrong[7] = 0x82;
        assert_eq!(probe(&cx(&req, &wrong)), Probe::No);
        assert_eq!(client_id(&req), Some("rdkafka"));
        let v3 = hex(API_VERSIONS_V3);
        assert_eq!(client_id(&v3), Some("console-producer"));
        assert_eq!(probe(&cx(&v3, &hex("000001ba00000003000000"))), Probe::Match);
    }

    #[test]
    fn lone_request_counts_once_the_server_is_silent() {
        let req = hex(METADATA);
        let mut c = cx(&req, b"");
        assert_eq!(probe(&c), Probe::NeedMore);
        c.c2s_done = true;
        c.s2c_done = true;
        assert_eq!(probe(&c), Probe::Match);
        c.c2s = &req[..30];
        assert_eq!(probe(&c), Probe::No, "cut short");
        let mut two = req.clone();
        two.extend_from_slice(&hex(API_VERSIONS));
        c.c2s = &two;
        assert_eq!(probe(&c), Probe::Match);
        let mut junk = req.clone();
        junk.extend_from_slice(b"GET / HTTP/1.1\r\n");
        c.c2s = &junk;
        assert_eq!(probe(&c), Probe::No);
    }

    #[test]
    fn mid_stream_response_walk() {
        let c = hex(MID_C2S);
        let s = hex(MID_S2C);
        let mut x = cx(&c, &s);
        x.mid_stream = true;
        assert_eq!(probe(&x), Probe::Match);
        x.s2c = &s[..400];
        assert_eq!(probe(&x), Probe::NeedMore);
    }

    #[test]
    fn mid_stream_roles_either_way() {
        // The engine took the broker for the client (ports remapped, say).
        let c = hex(MID_C2S);
        let s = hex(MID_S2C);
        let mut x = cx(&s, &c);
        assert_eq!(probe(&x), Probe::No, "roles are certain with a handshake");
        x.mid_stream = true;
        assert_eq!(probe(&x), Probe::Match);
    }

    #[test]
    fn truncated_prefixes_need_more() {
        let req = hex(API_VERSIONS);
        for n in 1..req.len() {
            assert_eq!(probe(&cx(&req[..n], b"")), Probe::NeedMore, "{n} bytes");
        }
    }

    #[test]
    fn other_protocols_are_not_kafka() {
        let no = |c: &[u8], s: &[u8]| {
            let mut x = cx(c, s);
            x.c2s_done = true;
            x.s2c_done = true;
            probe(&x)
        };
        assert_eq!(no(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b""), Probe::No);
        assert_eq!(no(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b""), Probe::No);
        assert_eq!(no(b"\x00\x1c\x12\x34\x01\x00\x00\x01\x00\x00", b""), Probe::No, "DNS/TCP");
        assert_eq!(no(b"AMQP\x00\x00\x09\x01", b""), Probe::No);
        assert_eq!(no(&hex("104000064d514973647003c2"), b""), Probe::No, "MQTT");
        // ZooKeeper ConnectRequest (protocol 0, zxid 0, timeout 30000, session 0, 16-byte
        // password) and its response: an empty client id in Kafka's reading.
        let zk = hex("0000002c00000000000000000000000000007530000000000000000000000010\
            0000000000000000000000000000000000");
        let zk_resp = hex("000000240000000000007530000000000000000000000010");
        assert_eq!(no(&zk, &zk_resp), Probe::No);
        assert_eq!(probe(&cx(b"", b"")), Probe::NeedMore);
        assert_eq!(probe(&cx(b"", b"INFO {\"server_id\":\"x\"}\r\n")), Probe::No);
    }
}
