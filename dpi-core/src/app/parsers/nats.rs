//! NATS client protocol (docs.nats.io, "Client Protocol"): text lines ending in CRLF,
//! operation names case-insensitive.
//!
//! Identification, either of:
//! - the server's greeting `INFO {...}` whose JSON names a `"server_id"` (the server
//!   speaks first on every connection), or the client's `CONNECT {...}` whose JSON has
//!   one of the options `"verbose"`, `"pedantic"`, `"lang"`;
//! - on a session picked up mid-stream: the client's first line is `PUB` / `HPUB` (with
//!   exactly the announced number of payload bytes before the next CRLF), `SUB`, `UNSUB`,
//!   `PING` or `PONG`, and the server's first line `MSG` / `HMSG` (payload checked the
//!   same way), `+OK`, `-ERR`, `PING` or `PONG`, at least one of the two lines other
//!   than `PING`/`PONG`.
//!
//! On a session picked up mid-stream, whose client and server the engine could only guess,
//! the roles are tried both ways round (`kafka::either_role`).

use crate::app::probe::{Probe, ProbeCtx};

/// Longest control line looked at.
const MAX_LINE: usize = 1024;
/// Most arguments of an operation (`HMSG subject sid reply hdr total`).
const MAX_ARGS: usize = 6;
/// Largest payload size believed in a PUB or MSG line (the default `max_payload`, 1 MiB,
/// with headroom).
const MAX_PAYLOAD: usize = 64 << 20;

/// `b` starts with `word` (ASCII case-insensitive) followed by a space or tab: `None` while
/// `b` is a prefix of that.
fn verb(b: &[u8], word: &[u8]) -> Option<bool> {
    for (i, &w) in word.iter().enumerate() {
        let c = *b.get(i)?;
        if !c.eq_ignore_ascii_case(&w) {
            return Some(false);
        }
    }
    Some(matches!(*b.get(word.len())?, b' ' | b'\t'))
}

/// `INFO {` / `CONNECT {` with one of `keys` in the JSON on that line.
fn json_op(b: &[u8], word: &[u8], keys: &[&[u8]], done: bool) -> Option<bool> {
    if !verb(b, word)? {
        return Some(false);
    }
    let rest = &b[word.len()..];
    let Some(brace) = rest.iter().position(|&c| c != b' ' && c != b'\t') else {
        return if done { Some(false) } else { None };
    };
    if rest[brace] != b'{' {
        return Some(false);
    }
    let json = &rest[brace..];
    let line_end = json.iter().position(|&c| c == b'\n').unwrap_or(json.len());
    let line = &json[..line_end];
    if keys.iter().any(|k| line.windows(k.len()).any(|w| w == *k)) {
        return Some(true);
    }
    if line_end < json.len() || done || b.len() >= MAX_LINE {
        return Some(false);
    }
    None
}

/// The first line of `b` split into words; `None` if there is no CRLF within
/// [`MAX_LINE`] bytes. Also the offset after the CRLF.
fn line(b: &[u8]) -> Option<([&[u8]; MAX_ARGS], usize, usize)> {
    let end = b.iter().take(MAX_LINE).position(|&c| c == b'\n')?;
    if end == 0 || b[end - 1] != b'\r' {
        return Some(([&[][..]; MAX_ARGS], 0, 0)); // no words: refused by the callers
    }
    let mut words = [&[][..]; MAX_ARGS];
    let mut n = 0;
    for w in b[..end - 1].split(|&c| c == b' ' || c == b'\t').filter(|w| !w.is_empty()) {
        if n == MAX_ARGS || !w.iter().all(|c| (0x21..0x7f).contains(c)) {
            return Some(([&[][..]; MAX_ARGS], 0, 0));
        }
        words[n] = w;
        n += 1;
    }
    Some((words, n, end + 1))
}

fn number(w: &[u8]) -> Option<usize> {
    if w.is_empty() || w.len() > 9 || !w.iter().all(u8::is_ascii_digit) {
        return None;
    }
    w.iter().try_fold(0usize, |v, &d| Some(v * 10 + usize::from(d - b'0')))
}

/// How strong a line is as evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    /// Not a NATS line.
    Bad,
    /// Cut short.
    Short,
    /// `PING` / `PONG`.
    Weak,
    /// Any other operation.
    Strong,
}

/// A payload of `size` bytes at `b[at..]` followed by CRLF.
fn payload(b: &[u8], at: usize, size: usize) -> Line {
    if size > MAX_PAYLOAD {
        return Line::Bad;
    }
    match b.get(at + size..at + size + 2) {
        Some(b"\r\n") => Line::Strong,
        Some(_) => Line::Bad,
        None => Line::Short,
    }
}

/// The first line of a direction mid-stream: `client` or server operations.
fn op_line(b: &[u8], client: bool) -> Line {
    let Some((w, n, next)) = line(b) else {
        return if b.len() >= MAX_LINE { Line::Bad } else { Line::Short };
    };
    if n == 0 {
        return Line::Bad;
    }
    let is = |name: &[u8]| w[0].eq_ignore_ascii_case(name);
    let payload_at = |size: Option<usize>| match size {
        Some(size) => payload(b, next, size),
        None => Line::Bad,
    };
    let headed = |h: Option<usize>, t: Option<usize>| match (h, t) {
        (Some(h), Some(t)) if h <= t => payload(b, next, t),
        _ => Line::Bad,
    };
    if is(b"PING") || is(b"PONG") {
        return if n == 1 { Line::Weak } else { Line::Bad };
    }
    if client {
        if (is(b"SUB") && matches!(n, 3 | 4)) || (is(b"UNSUB") && matches!(n, 2 | 3)) {
            Line::Strong
        } else if is(b"PUB") && matches!(n, 3 | 4) {
            payload_at(number(w[n - 1]))
        } else if is(b"HPUB") && matches!(n, 4 | 5) {
            headed(number(w[n - 2]), number(w[n - 1]))
        } else {
            Line::Bad
        }
    } else if (is(b"+OK") && n == 1) || is(b"-ERR") {
        Line::Strong
    } else if is(b"MSG") && matches!(n, 4 | 5) {
        payload_at(number(w[n - 1]))
    } else if is(b"HMSG") && matches!(n, 5 | 6) {
        headed(number(w[n - 2]), number(w[n - 1]))
    } else {
        Line::Bad
    }
}

/// NATS.
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    super::kafka::either_role(cx, probe_roles)
}

/// NATS, with the roles as given.
fn probe_roles(cx: &ProbeCtx<'_>) -> Probe {
    let info = if cx.s2c.is_empty() {
        None
    } else {
        json_op(cx.s2c, b"INFO", &[b"\"server_id\""], cx.s2c_done)
    };
    let connect = if cx.c2s.is_empty() {
        None
    } else {
        json_op(cx.c2s, b"CONNECT", &[b"\"verbose\"", b"\"pedantic\"", b"\"lang\""], cx.c2s_done)
    };
    if info == Some(true) || connect == Some(true) {
        return Probe::Match;
    }
    if cx.mid_stream {
        let c = if cx.c2s.is_empty() { Line::Short } else { op_line(cx.c2s, true) };
        let s = if cx.s2c.is_empty() { Line::Short } else { op_line(cx.s2c, false) };
        match (c, s) {
            (Line::Strong, Line::Strong | Line::Weak) | (Line::Weak, Line::Strong) => {
                return Probe::Match
            }
            (Line::Bad, _) | (_, Line::Bad) | (Line::Weak, Line::Weak) => {}
            _ if cx.c2s_done && cx.s2c_done => {}
            _ => return Probe::NeedMore,
        }
    }
    // The server's INFO comes first, then the client's CONNECT: first bytes that are
    // neither settle it.
    if info == Some(false) || connect == Some(false) || cx.c2s_done && cx.s2c_done {
        Probe::No
    } else {
        Probe::NeedMore
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Dir;

    fn cx<'a>(c2s: &'a [u8], s2c: &'a [u8]) -> ProbeCtx<'a> {
        ProbeCtx {
            proto: 6,
            client_port: 54820,
            server_port: 4222,
            c2s,
            s2c,
            c2s_done: false,
            s2c_done: false,
            first: Some(Dir::ToClient),
            mid_stream: false,
        }
    }

    // ndpi/pcap/nats.pcap, 127.0.0.1:4222 -> :54820: the server's INFO (first 120 bytes),
    // and the client's CONNECT and PING.
    const INFO: &[u8] = b"INFO {\"server_id\":\"NALG56HQZ4C4ILRHCGYWMCSBVC5W2QHX6WKGH7A2I34P3DCEHISN72B7\",\"server_name\":\"NALG56HQZ4C4ILRHCGYWM";
    const CONNECT: &[u8] = b"CONNECT {\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"name\":\"\",\"lang\":\"C\",\"version\":\"2.1.0\",\"protocol\":1,\"echo\":true}\r\nPING\r\n";

    #[test]
    fn greeting_and_connect() {
        assert_eq!(probe(&cx(b"", INFO)), Probe::Match);
        assert_eq!(probe(&cx(CONNECT, b"")), Probe::Match);
        assert_eq!(probe(&cx(CONNECT, INFO)), Probe::Match);
        for n in [1, 4, 5, 6, 10] {
            assert_eq!(probe(&cx(b"", &INFO[..n])), Probe::NeedMore, "{n} bytes");
        }
        assert_eq!(probe(&cx(b"", b"INFO {\"port\":4222}\r\n")), Probe::No);
        assert_eq!(probe(&cx(b"", b"INFO\r\n")), Probe::No);
        assert_eq!(probe(&cx(b"", b"")), Probe::NeedMore);
        let mut done = cx(b"", &INFO[..10]);
        done.s2c_done = true;
        done.c2s_done = true;
        assert_eq!(probe(&done), Probe::No);
    }

    #[test]
    fn mid_stream_lines() {
        let mut x = cx(b"PUB foo.bar 5\r\nhello\r\n", b"+OK\r\n");
        assert_eq!(probe(&x), Probe::No, "only mid-stream");
        x.mid_stream = true;
        assert_eq!(probe(&x), Probe::Match);
        x.c2s = b"PUB foo.bar 5\r\nhell";
        assert_eq!(probe(&x), Probe::NeedMore);
        x.c2s = b"PUB foo.bar 5\r\nhello!\r\n";
        assert_eq!(probe(&x), Probe::No, "payload length");
        x.c2s = b"SUB foo.* q 1\r\n";
        x.s2c = b"MSG foo.x 1 3\r\nabc\r\n";
        assert_eq!(probe(&x), Probe::Match);
        x.c2s = b"PING\r\n";
        x.s2c = b"PONG\r\n";
        x.c2s_done = true;
        x.s2c_done = true;
        assert_eq!(probe(&x), Probe::No, "ping/pong alone");
        x.c2s = b"HPUB a 12 14\r\nNATS/1.0\r\n\r\nhi\r\n";
        assert_eq!(probe(&x), Probe::Match);
    }

    #[test]
    fn other_protocols_are_not_nats() {
        let no = |c: &[u8], s: &[u8], mid: bool| {
            let mut x = cx(c, s);
            x.mid_stream = mid;
            x.c2s_done = true;
            x.s2c_done = true;
            probe(&x)
        };
        for mid in [false, true] {
            assert_eq!(
                no(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 OK\r\n", mid),
                Probe::No
            );
            assert_eq!(no(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"", mid), Probe::No);
            assert_eq!(no(b"\x00\x1c\x12\x34\x01\x00\x00\x01\x00\x00", b"", mid), Probe::No);
            assert_eq!(no(b"AMQP\x00\x00\x09\x01", b"", mid), Probe::No);
            assert_eq!(no(b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n", mid), Probe::No, "Redis");
            assert_eq!(no(b"CONNECT example.com:443 HTTP/1.1\r\n\r\n", b"", mid), Probe::No);
        }
        // Not mid-stream, undecided directions stop waiting as soon as one says no.
        assert_eq!(probe(&cx(b"GET / HTTP/1.1\r\n", b"")), Probe::No);
        assert_eq!(probe(&cx(b"", b"SSH-2.0-x\r\n")), Probe::No);
    }
}
