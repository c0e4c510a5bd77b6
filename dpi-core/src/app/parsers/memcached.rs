//! Memcached: the text protocol (`doc/protocol.txt` of memcached, including meta
//! commands), the binary protocol (memcached wiki, "BinaryProtocolRevamped"), and the UDP
//! frame header both use over UDP.
//!
//! Identification (TCP), the client speaking first:
//! - text: the first line is a known lowercase command (`get`, `set`, `stats`,
//!   `version`, `mg`, ...) followed by a space or CRLF (storage commands with numeric
//!   flags, expiry and length), and the server's first line starts with a reply keyword
//!   (`VALUE `, `STORED`, `END`, `STAT `, `VERSION `, `ERROR`, `CLIENT_ERROR `, a number,
//!   a meta reply `HD`/`VA `/`EN`...). A text command alone says too little: the reply is
//!   required.
//! - binary: a 24-byte request header (magic 0x80, known opcode, key and extras inside the
//!   body, data type 0) answered by a response header (magic 0x81, same opcode and
//!   opaque, a known status). A session that ends without an answer is memcached if the
//!   whole request arrived.
//!
//! UDP: an 8-byte frame header (request id, sequence 0, datagram count 1, reserved 0),
//! then a text command or a binary request; the fixed header makes a request datagram
//! enough. A reply datagram must echo the request id.
//!
//! Mid-stream (TCP): a command in one direction, a reply in the other.
//!
//! The SASL and HELO opcodes of the binary protocol are left to the Couchbase parser,
//! which comes first in the registry.

use crate::app::probe::{at, be16, be32, Probe, ProbeCtx};
use crate::flow::Dir;

pub(crate) const REQUEST_MAGIC: u8 = 0x80;
pub(crate) const RESPONSE_MAGIC: u8 = 0x81;
/// Largest binary body accepted (items are at most 1 MB by default, 1 GB configurable;
/// a first request is small).
const MAX_BODY: u32 = 20 << 20;
/// Longest first line looked at.
const MAX_LINE: usize = 2048;

/// Text commands.
const COMMANDS: [&[u8]; 30] = [
    b"get",
    b"gets",
    b"gat",
    b"gats",
    b"set",
    b"add",
    b"replace",
    b"append",
    b"prepend",
    b"cas",
    b"incr",
    b"decr",
    b"delete",
    b"touch",
    b"stats",
    b"version",
    b"flush_all",
    b"verbosity",
    b"quit",
    b"mg",
    b"ms",
    b"md",
    b"ma",
    b"mn",
    b"me",
    b"lru_crawler",
    b"slabs",
    b"watch",
    b"shutdown",
    b"cache_memlimit",
];
/// Storage commands: `<cmd> <key> <flags> <exptime> <bytes> [<cas>] [noreply]`.
const STORAGE: [&[u8]; 6] = [b"set", b"add", b"replace", b"append", b"prepend", b"cas"];
/// First words of replies (with what must follow them).
const REPLIES: [&[u8]; 24] = [
    b"VALUE ",
    b"END\r\n",
    b"STORED\r\n",
    b"NOT_STORED\r\n",
    b"EXISTS\r\n",
    b"NOT_FOUND\r\n",
    b"DELETED\r\n",
    b"TOUCHED\r\n",
    b"OK\r\n",
    b"ERROR\r\n",
    b"ERROR ",
    b"CLIENT_ERROR ",
    b"SERVER_ERROR ",
    b"STAT ",
    b"VERSION ",
    b"HD",
    b"VA ",
    b"EN\r\n",
    b"NS",
    b"EX",
    b"NF",
    b"MN\r\n",
    b"ME ",
    b"RESET\r\n",
];

/// What a check concluded: valid, not valid, or valid as far as the bytes go.
type Verdict = Option<bool>;

/// The first line of `b` (without CRLF). `None`: no CRLF yet (and nothing invalid);
/// `Some(None)`: too long or not printable.
fn first_line(b: &[u8]) -> Option<Option<&[u8]>> {
    let scan = &b[..b.len().min(MAX_LINE)];
    for (i, &c) in scan.iter().enumerate() {
        if c == b'\r' {
            return match b.get(i + 1) {
                None => None,
                Some(b'\n') => Some(Some(&b[..i])),
                Some(_) => Some(None),
            };
        }
        if !(0x20..0x7f).contains(&c) {
            return Some(None);
        }
    }
    if b.len() >= MAX_LINE {
        Some(None)
    } else {
        None
    }
}

/// A text command line at the start of `b`.
fn text_command(b: &[u8]) -> Verdict {
    // The command word, checked as far as it arrived.
    let word_len = b.iter().take(16).take_while(|c| c.is_ascii_lowercase() || **c == b'_');
    let n = word_len.count();
    let partial = &b[..n];
    if n == b.len() {
        return if COMMANDS.iter().any(|c| c.starts_with(partial)) { None } else { Some(false) };
    }
    if !COMMANDS.contains(&partial) || !matches!(b[n], b' ' | b'\r') {
        return Some(false);
    }
    let Some(line) = first_line(b)? else { return Some(false) };
    let mut args = line.split(|&c| c == b' ').filter(|a| !a.is_empty()).skip(1);
    if STORAGE.contains(&partial) {
        // key, flags, exptime, bytes: numeric after the key.
        let key = args.next();
        let numeric = (0..3).all(|_| args.next().is_some_and(|a| a.iter().all(u8::is_ascii_digit)));
        return Some(key.is_some() && numeric);
    }
    if matches!(partial, b"get" | b"gets" | b"incr" | b"decr" | b"delete" | b"touch") {
        return Some(args.next().is_some());
    }
    Some(true)
}

/// A text reply at the start of `b`.
fn text_reply(b: &[u8]) -> Verdict {
    let n = b.len().min(14);
    let head = &b[..n];
    if REPLIES.iter().any(|r| b.starts_with(r)) {
        return match first_line(b)? {
            Some(_) => Some(true),
            None => Some(false),
        };
    }
    if REPLIES.iter().any(|r| r.starts_with(head)) {
        return None;
    }
    // A number (incr/decr).
    let digits = head.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return Some(false);
    }
    match first_line(b)? {
        Some(l) => Some(l.iter().all(u8::is_ascii_digit) && !l.is_empty()),
        None => Some(false),
    }
}

/// A binary protocol header at the start of `b` with `magic`: (opcode, opaque, body
/// length). `None`: fewer than 24 bytes (what is there is valid).
pub(crate) fn binary(b: &[u8], magic: u8) -> Option<Option<(u8, u32, u32)>> {
    if *b.first()? != magic {
        return Some(None);
    }
    let h = at(b, 0, 24)?;
    let key_len = u32::from(be16(h, 2)?);
    let extras = u32::from(h[4]);
    let data_type = h[5];
    let body = be32(h, 8)?;
    let ok = body <= MAX_BODY && key_len + extras <= body && data_type <= 0x07;
    Some(ok.then_some((h[1], be32(h, 12)?, body)))
}

/// Opcodes of the memcached binary protocol (get ... touch/GAT, range and vbucket
/// operations); SASL (0x20–0x22) and HELO (0x1f) are Couchbase's.
fn known_opcode(op: u8) -> bool {
    matches!(op, 0x00..=0x1e | 0x30..=0x48)
}

/// A binary request at the start of `b`; `whole`: its body must be there too.
fn binary_request(b: &[u8], whole: bool) -> Verdict {
    let Some((op, _, body)) = binary(b, REQUEST_MAGIC)? else { return Some(false) };
    if !known_opcode(op) {
        return Some(false);
    }
    if whole && b.len() < 24 + body as usize {
        return None;
    }
    Some(true)
}

/// A binary response to `request` (its opcode and opaque) at the start of `b`.
fn binary_response(b: &[u8], request: &[u8]) -> Verdict {
    let Some((op, opaque, _)) = binary(b, RESPONSE_MAGIC)? else { return Some(false) };
    let status = be16(b, 6)?;
    let (qop, qopaque, _) = binary(request, REQUEST_MAGIC)??;
    Some(op == qop && opaque == qopaque && status <= 0xff)
}

/// Over a TCP stream (or after the UDP frame header): do the client's `c` and the
/// server's `s` make a memcached exchange? `s_done`: no more server bytes will come;
/// `request_alone`: a request without an answer is enough.
fn exchange(c: &[u8], s: &[u8], s_done: bool, request_alone: bool) -> Verdict {
    if c.first() == Some(&REQUEST_MAGIC) {
        if !binary_request(c, false)? {
            return Some(false);
        }
        if s.is_empty() && (s_done || request_alone) {
            return binary_request(c, true).or(Some(false));
        }
        return binary_response(s, c);
    }
    if !text_command(c)? {
        return Some(false);
    }
    if s.is_empty() && request_alone {
        return Some(true);
    }
    text_reply(s)
}

fn verdict(v: Verdict, done: bool) -> Probe {
    match v {
        Some(true) => Probe::Match,
        Some(false) => Probe::No,
        None if done => Probe::No,
        None => Probe::NeedMore,
    }
}

/// The UDP frame header: (request id, sequence, count); reserved must be zero.
fn udp_header(b: &[u8]) -> Option<(u16, u16, u16)> {
    let h = at(b, 0, 8)?;
    let count = be16(h, 4)?;
    let seq = be16(h, 2)?;
    (be16(h, 6)? == 0 && count >= 1 && seq < count).then_some((be16(h, 0)?, seq, count))
}

fn probe_udp(cx: &ProbeCtx<'_>) -> Probe {
    if !cx.c2s.is_empty() {
        let Some((id, seq, count)) = udp_header(cx.c2s) else { return Probe::No };
        if seq != 0 || count != 1 {
            return Probe::No;
        }
        if let Some((rid, _, _)) = udp_header(cx.s2c) {
            if rid != id {
                return Probe::No;
            }
        }
        // The request alone decides; a datagram is complete.
        let c = &cx.c2s[8..];
        let s = cx.s2c.get(8..).unwrap_or_default();
        return verdict(exchange(c, s, true, true), true);
    }
    if !cx.s2c.is_empty() {
        let Some((_, seq, _)) = udp_header(cx.s2c) else { return Probe::No };
        let r = &cx.s2c[8..];
        let ok = seq == 0 && (r.first() == Some(&RESPONSE_MAGIC) || text_reply(r) == Some(true));
        return if ok { Probe::Match } else { Probe::No };
    }
    Probe::NeedMore
}

fn mid_stream(cx: &ProbeCtx<'_>) -> Probe {
    let mut undecided = false;
    for (c, s, s_done) in [(cx.c2s, cx.s2c, cx.s2c_done), (cx.s2c, cx.c2s, cx.c2s_done)] {
        if c.is_empty() || s.is_empty() {
            undecided = true;
            continue;
        }
        match exchange(c, s, s_done, false) {
            Some(true) => return Probe::Match,
            Some(false) => {}
            None => undecided = true,
        }
    }
    if undecided && !(cx.c2s_done && cx.s2c_done) {
        Probe::NeedMore
    } else {
        Probe::No
    }
}

/// Memcached (TCP and UDP).
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    if !cx.is_tcp() {
        return probe_udp(cx);
    }
    if cx.mid_stream {
        return mid_stream(cx);
    }
    if cx.first == Some(Dir::ToClient) {
        return Probe::No; // the server spoke first
    }
    if cx.c2s.is_empty() {
        return verdict(None, cx.c2s_done);
    }
    verdict(exchange(cx.c2s, cx.s2c, cx.s2c_done, false), cx.c2s_done && cx.s2c_done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx<'a>(c2s: &'a [u8], s2c: &'a [u8]) -> ProbeCtx<'a> {
        ProbeCtx {
            proto: 6,
            client_port: 59604,
            server_port: 11211,
            c2s,
            s2c,
            c2s_done: false,
            s2c_done: false,
            first: Some(Dir::ToServer),
            mid_stream: false,
        }
    }

    // memcached.cap, 127.0.0.1:59604 -> 11211.
    const STATS: &[u8] = b"stats\r\n";
    const STATS_REPLY: &[u8] = b"STAT pid 8837\r\nSTAT uptime 193\r\nSTAT time 1534343744\r\n";

    /// A binary GET request for key "Hello" and its "Not found" response, as in the
    /// protocol's examples (the corpus has no binary session).
    fn binary_get() -> (Vec<u8>, Vec<u8>) {
        let mut q = vec![0x80, 0x00, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0, 5, 0xde, 0xad, 0xbe, 0xef];
        q.extend_from_slice(&[0; 8]);
        q.extend_from_slice(b"Hello");
        let mut r = vec![0x81, 0x00, 0, 0, 0, 0, 0x00, 0x01, 0, 0, 0, 9, 0xde, 0xad, 0xbe, 0xef];
        r.extend_from_slice(&[0; 8]);
        r.extend_from_slice(b"Not found");
        (q, r)
    }

    #[test]
    fn text_exchanges() {
        assert_eq!(probe(&cx(STATS, STATS_REPLY)), Probe::Match);
        assert_eq!(probe(&cx(STATS, b"")), Probe::NeedMore, "a command alone says too little");
        assert_eq!(probe(&cx(&STATS[..3], b"")), Probe::NeedMore);
        assert_eq!(probe(&cx(STATS, b"STA")), Probe::NeedMore);
        let mut done = cx(STATS, b"");
        done.c2s_done = true;
        done.s2c_done = true;
        assert_eq!(probe(&done), Probe::No);
        assert_eq!(probe(&cx(b"set k 0 0 5\r\nhello\r\n", b"STORED\r\n")), Probe::Match);
        assert_eq!(probe(&cx(b"get a b\r\n", b"END\r\n")), Probe::Match);
        assert_eq!(probe(&cx(b"incr n 1\r\n", b"42\r\n")), Probe::Match);
        assert_eq!(probe(&cx(b"mg foo v\r\n", b"EN\r\n")), Probe::Match);
        assert_eq!(probe(&cx(b"set k x 0 5\r\n", b"STORED\r\n")), Probe::No, "flags");
        assert_eq!(probe(&cx(STATS, b"+OK\r\n")), Probe::No);
    }

    #[test]
    fn binary_exchanges() {
        let (q, r) = binary_get();
        assert_eq!(probe(&cx(&q, &r)), Probe::Match);
        assert_eq!(probe(&cx(&q, b"")), Probe::NeedMore);
        assert_eq!(probe(&cx(&q[..10], b"")), Probe::NeedMore);
        let mut done = cx(&q, b"");
        done.c2s_done = true;
        done.s2c_done = true;
        assert_eq!(probe(&done), Probe::Match, "whole request, no answer");
        let mut other = r.clone();
        other[15] = 0; // another opaque
        assert_eq!(probe(&cx(&q, &other)), Probe::No);
        let mut sasl = q.clone();
        sasl[1] = 0x20;
        assert_eq!(probe(&cx(&sasl, b"")), Probe::No, "SASL is Couchbase's");
    }

    #[test]
    fn udp_frames() {
        let mut c = cx(b"", b"");
        c.proto = 17;
        let mut req = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0];
        req.extend_from_slice(STATS);
        c.c2s = &req;
        assert_eq!(probe(&c), Probe::Match);
        let mut rep = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0];
        rep.extend_from_slice(STATS_REPLY);
        c.s2c = &rep;
        assert_eq!(probe(&c), Probe::Match);
        let mut other = rep.clone();
        other[1] = 0x35;
        c.s2c = &other;
        assert_eq!(probe(&c), Probe::No, "another request id");
        let mut bad = req.clone();
        bad[6] = 1; // reserved
        c.c2s = &bad;
        assert_eq!(probe(&c), Probe::No);
        // DNS query.
        c.c2s = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01";
        c.s2c = b"";
        assert_eq!(probe(&c), Probe::No);
    }

    #[test]
    fn other_protocols() {
        for c in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            &[0x16, 3, 1, 0, 0xc8, 1, 0, 0, 0xc4, 3, 3][..],
            b"*1\r\n$4\r\nPING\r\n",
            b"getx\r\n",
            b"EHLO example.com\r\n",
            b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
        ] {
            assert_eq!(probe(&cx(c, b"OK\r\n")), Probe::No, "{c:?}");
        }
        let mut server_first = cx(b"", b"VERSION 1.6\r\n");
        server_first.first = Some(Dir::ToClient);
        assert_eq!(probe(&server_first), Probe::No);
    }

    #[test]
    fn mid_stream() {
        let mut c = cx(STATS_REPLY, STATS);
        c.mid_stream = true;
        assert_eq!(probe(&c), Probe::Match);
        c.s2c = b"";
        assert_eq!(probe(&c), Probe::NeedMore);
    }
}
