//! Apache Cassandra: the CQL native protocol, versions 3 to 5 (`native_protocol_v3.spec`
//! to `native_protocol_v5.spec` in the Cassandra source tree), and the internode
//! messaging protocol's magic number.
//!
//! A CQL frame starts with a 9-byte header: version (the high bit set in responses),
//! flags (compression, tracing, custom payload, warning, beta), a 16-bit stream id, the
//! opcode and a 32-bit body length (below 256 MB). The client speaks first.
//!
//! Identification: the client's first frame is a request (version 3–5, direction bit
//! clear, known flags, request opcode) whose body fits: STARTUP is a string map with a
//! `CQL_VERSION` key exactly filling the body, which decides alone; OPTIONS (empty body)
//! and other requests need the server's answer: a response frame (direction bit set,
//! version 3–5, response opcode) on the same stream. Internode connections start with the
//! magic 0xCA552DFA (in either direction). Mid-stream: the internode magic, or a request
//! in one direction and a response of the same version in the other.

use crate::app::probe::{at, be16, be32, Probe, ProbeCtx};
use crate::flow::Dir;

/// Internode messaging magic (`MessagingService.PROTOCOL_MAGIC`).
const INTERNODE_MAGIC: [u8; 4] = [0xca, 0x55, 0x2d, 0xfa];
const STARTUP: u8 = 0x01;
const OPTIONS: u8 = 0x05;
const MAX_BODY: u32 = 256 << 20;

/// A frame header: (version without the direction bit, stream, opcode, body length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Frame {
    version: u8,
    stream: u16,
    opcode: u8,
    len: u32,
}

/// The frame header at the start of `b`, sent by the client (`request`) or the server.
/// `None`: too short (what is there is valid); `Some(None)`: not a frame.
fn frame(b: &[u8], request: bool) -> Option<Option<Frame>> {
    let v = *b.first()?;
    if (v & 0x80 == 0) != request || !(3..=5).contains(&(v & 0x7f)) {
        return Some(None);
    }
    if b.get(1).is_some_and(|f| f & !0x1f != 0) {
        return Some(None);
    }
    let h = at(b, 0, 9)?;
    let opcode = h[4];
    let len = be32(h, 5)?;
    let op_ok = if request {
        matches!(opcode, 0x01 | 0x05 | 0x07 | 0x09 | 0x0a | 0x0b | 0x0d | 0x0f)
    } else {
        matches!(opcode, 0x00 | 0x02 | 0x03 | 0x06 | 0x08 | 0x0c | 0x0e | 0x10)
    };
    if !op_ok || len > MAX_BODY || (opcode == OPTIONS && len != 0) {
        return Some(None);
    }
    Some(Some(Frame { version: v & 0x7f, stream: be16(h, 2)?, opcode, len }))
}

/// A STARTUP body: a string map (count, then key and value strings) exactly filling
/// `body`, with a `CQL_VERSION` key.
fn startup_body(body: &[u8]) -> bool {
    let Some(n) = be16(body, 0) else { return false };
    let mut p = 2;
    let mut cql_version = false;
    for i in 0..usize::from(n).min(32) {
        let Some(klen) = be16(body, p) else { return false };
        let Some(key) = at(body, p + 2, usize::from(klen)) else { return false };
        p += 2 + usize::from(klen);
        let Some(vlen) = be16(body, p) else { return false };
        if at(body, p + 2, usize::from(vlen)).is_none() {
            return false;
        }
        p += 2 + usize::from(vlen);
        if !key.iter().all(|c| c.is_ascii_uppercase() || *c == b'_') || i >= 31 {
            return false;
        }
        cql_version |= key == b"CQL_VERSION";
    }
    p == body.len() && cql_version
}

fn verdict(v: Option<bool>, done: bool) -> Probe {
    match v {
        Some(true) => Probe::Match,
        Some(false) => Probe::No,
        None if done => Probe::No,
        None => Probe::NeedMore,
    }
}

/// Does `b` start with the internode magic? `None`: too short.
fn internode(b: &[u8]) -> Option<bool> {
    let n = b.len().min(4);
    if b[..n] != INTERNODE_MAGIC[..n] {
        return Some(false);
    }
    (n == 4).then_some(true)
}

fn mid_stream(cx: &ProbeCtx<'_>) -> Probe {
    let (ci, si) = (internode(cx.c2s), internode(cx.s2c));
    if ci == Some(true) || si == Some(true) {
        return Probe::Match;
    }
    let mut undecided = ci.is_none() || si.is_none();
    for (req, resp) in [(cx.c2s, cx.s2c), (cx.s2c, cx.c2s)] {
        match (frame(req, true), frame(resp, false)) {
            (Some(Some(q)), Some(Some(r))) if q.version == r.version => return Probe::Match,
            (Some(None), _) | (_, Some(None)) | (Some(Some(_)), Some(Some(_))) => {}
            _ => undecided = true,
        }
    }
    verdict((!undecided).then_some(false), cx.c2s_done && cx.s2c_done)
}

/// Cassandra.
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    if cx.mid_stream {
        return mid_stream(cx);
    }
    if cx.first == Some(Dir::ToClient) {
        // Only an internode connection may start with the accepting side.
        return verdict(internode(cx.s2c), cx.s2c_done);
    }
    match internode(cx.c2s) {
        Some(true) => return Probe::Match,
        None => return verdict(None, cx.c2s_done),
        Some(false) => {}
    }
    let q = match frame(cx.c2s, true) {
        Some(Some(q)) => q,
        Some(None) => return Probe::No,
        None => return verdict(None, cx.c2s_done),
    };
    if q.opcode == STARTUP {
        return match at(cx.c2s, 9, q.len as usize) {
            Some(body) => verdict(Some(startup_body(body)), true),
            None => verdict(None, cx.c2s_done),
        };
    }
    match frame(cx.s2c, false) {
        // A server of another version answers with an error on the same stream.
        Some(Some(r)) => verdict(Some(r.stream == q.stream), true),
        Some(None) => Probe::No,
        None => verdict(None, cx.s2c_done),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn cx<'a>(c2s: &'a [u8], s2c: &'a [u8]) -> ProbeCtx<'a> {
        ProbeCtx {
            proto: 6,
            client_port: 37892,
            server_port: 9042,
            c2s,
            s2c,
            c2s_done: false,
            s2c_done: false,
            first: Some(Dir::ToServer),
            mid_stream: false,
        }
    }

    // cassandra.pcap: 198.18.0.3:37892 -> 9042 (protocol v5), 127.0.0.1:46536 (v4), and
    // the internode connection 198.18.0.2:37184 -> 7000.
    const OPTIONS_V5: &str = "050000000500000000";
    const SUPPORTED_V5: &str =
        "8500000006000000660003001150524f544f434f4c5f56455253494f4e530004000\
        4332f76330004342f76340004352f76350009362f76362d62657461000b434f4d5052455353494f4e0002000673\
        6e6170707900036c7a34000b43514c5f56455253494f4e00010005332e342e36";
    const STARTUP_V5: &str =
        "0500000101000000530003000b4452495645525f4e414d45001644617461537461782\
        0507974686f6e20447269766572000e4452495645525f56455253494f4e0006332e32352e30000b43514c5f5645\
        5253494f4e0005332e342e36";
    const OPTIONS_V4: &str = "040000000500000000";
    const SUPPORTED_V4: &str =
        "8400000006000000340002000b434f4d5052455353494f4e00020006736e6170707\
        900036c7a34000b43514c5f56455253494f4e00010005332e332e31";
    const STARTUP_V4: &str = "0400000101000000160001000b43514c5f56455253494f4e0005332e332e31";
    const INTERNODE: &str = "ca552dfa0c0a0c1106c61200021b58f3cb19b3";

    #[test]
    fn cql_exchanges() {
        for (opt, sup, start) in
            [(OPTIONS_V5, SUPPORTED_V5, STARTUP_V5), (OPTIONS_V4, SUPPORTED_V4, STARTUP_V4)]
        {
            let (opt, sup, start) = (hex(opt), hex(sup), hex(start));
            assert_eq!(probe(&cx(&opt, b"")), Probe::NeedMore, "OPTIONS waits for the answer");
            assert_eq!(probe(&cx(&opt, &sup)), Probe::Match);
            assert_eq!(probe(&cx(&opt, &sup[..5])), Probe::NeedMore);
            let mut mid = cx(&opt, &sup);
            mid.mid_stream = true;
            assert_eq!(probe(&mid), Probe::Match);
            assert_eq!(probe(&cx(&start, b"")), Probe::Match, "STARTUP alone");
            assert_eq!(probe(&cx(&start[..20], b"")), Probe::NeedMore);
            let mut done = cx(&opt, b"");
            done.c2s_done = true;
            done.s2c_done = true;
            assert_eq!(probe(&done), Probe::No);
        }
        let opt = hex(OPTIONS_V5);
        assert_eq!(probe(&cx(&opt, &hex(STARTUP_V4))), Probe::No, "a request as answer");
    }

    #[test]
    fn internode_magic() {
        let m = hex(INTERNODE);
        assert_eq!(probe(&cx(&m, b"")), Probe::Match);
        assert_eq!(probe(&cx(&m[..3], b"")), Probe::NeedMore);
        let mut mid = cx(b"", &m);
        mid.mid_stream = true;
        assert_eq!(probe(&mid), Probe::Match);
    }

    #[test]
    fn other_protocols() {
        for c in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            &[0x16, 3, 1, 0, 0xc8, 1, 0, 0, 0xc4, 3, 3][..],
            &hex("000000260003000075736572006f727978006461746162617365006d61696c73746f72650000"),
            &hex("1201002f0000010000001a00060100200001020021000103002200040400260001ff0f00077d"),
            b"*1\r\n$4\r\nPING\r\n",
            // fastcgi.pcap: FastCGI BEGIN_REQUEST (version 1), taken for Cassandra by
            // older nDPI.
            &hex("010100010008000000010100000000000104000104170000"),
        ] {
            assert_eq!(probe(&cx(c, b"")), Probe::No, "{c:?}");
            let mut m = cx(c, c);
            m.mid_stream = true;
            m.c2s_done = true;
            m.s2c_done = true;
            assert_eq!(probe(&m), Probe::No, "{c:?}");
        }
    }
}
