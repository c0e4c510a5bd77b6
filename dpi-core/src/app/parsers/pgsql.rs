//! PostgreSQL frontend/backend protocol 3.x (PostgreSQL documentation, chapter "Frontend/
//! Backend Protocol", "Message Formats").
//!
//! The client opens with an untyped message: a 4-byte big-endian length, then a 4-byte
//! code. Identification, client side: SSLRequest (length 8, code 80877103),
//! GSSENCRequest (length 8, code 80877104), CancelRequest (length 16, code 80877102), or a
//! StartupMessage (protocol 3.0–3.2, at most 10000 bytes) whose parameters are
//! NUL-terminated name/value pairs ending with an empty name, exactly filling the message,
//! and naming a `user`. These codes and this layout are specific enough to decide on the
//! client's message alone (a CancelRequest gets no answer at all). When the server has
//! answered, its first byte must fit: `S`/`N` (SSL), `G`/`N` (GSS), or `E` after either
//! request; `R` (authentication request), `E` or `v` (NegotiateProtocolVersion) after a
//! StartupMessage.
//!
//! Mid-stream: one direction starts with a complete simple query (`Q`) or Parse (`P`)
//! message with printable SQL, the other with a backend message type and a sane length.
//!
//! Extraction: [`query`], the SQL text of the first `Q` or `P` message of the client.

use crate::app::probe::{at, be32, Probe, ProbeCtx};
use crate::flow::Dir;

const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;
/// The server's limit on a startup packet.
const MAX_STARTUP: u32 = 10_000;
/// Messages walked by [`query`] before giving up.
const MAX_MESSAGES: usize = 32;

/// What the client's first message asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opening {
    Ssl,
    Gss,
    Cancel,
    Startup,
}

/// The client's first message. `Err(())`: not PostgreSQL; `Ok(None)`: cut short.
fn opening(b: &[u8]) -> Result<Option<Opening>, ()> {
    let (Some(len), Some(code)) = (be32(b, 0), be32(b, 4)) else {
        // Lengths are small: the first bytes of a length are zero.
        return if b.iter().take(2).all(|&c| c == 0) { Ok(None) } else { Err(()) };
    };
    match code {
        SSL_REQUEST if len == 8 => Ok(Some(Opening::Ssl)),
        GSSENC_REQUEST if len == 8 => Ok(Some(Opening::Gss)),
        CANCEL_REQUEST if len == 16 => Ok(Some(Opening::Cancel)),
        v if v >> 16 == 3 && v & 0xffff <= 2 && (9..=MAX_STARTUP).contains(&len) => {
            let end = (len as usize).min(b.len());
            match parameters(&b[8..end]) {
                Err(()) => Err(()),
                Ok(true) if end == len as usize => Ok(Some(Opening::Startup)),
                Ok(_) if end == len as usize => Err(()),
                Ok(_) => Ok(None),
            }
        }
        _ => Err(()),
    }
}

/// StartupMessage parameters: name/value pairs, each NUL-terminated, then an empty name.
/// `Ok(true)`: complete, ends exactly at the end of `p`, and names the user; `Ok(false)`:
/// valid but incomplete.
fn parameters(p: &[u8]) -> Result<bool, ()> {
    let mut i = 0;
    let mut user = false;
    loop {
        let Some(nlen) = p[i..].iter().position(|&c| c == 0) else {
            return name_ok(&p[i..]).then_some(false).ok_or(());
        };
        let name = &p[i..i + nlen];
        if nlen == 0 {
            return if i + 1 == p.len() && user { Ok(true) } else { Err(()) };
        }
        if !name_ok(name) {
            return Err(());
        }
        user |= name == b"user";
        i += nlen + 1;
        let Some(vlen) = p[i..].iter().position(|&c| c == 0) else {
            return value_ok(&p[i..]).then_some(false).ok_or(());
        };
        if !value_ok(&p[i..i + vlen]) {
            return Err(());
        }
        i += vlen + 1;
    }
}

/// Parameter names: `user`, `database`, `options`, `replication`, GUC names
/// (`client_encoding`, `_pq_.x`, `a.b`).
fn name_ok(n: &[u8]) -> bool {
    n.len() <= 64 && n.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
}

fn value_ok(v: &[u8]) -> bool {
    v.iter().all(|&c| c >= 0x20 && c != 0x7f)
}

/// Does the server's first reply fit the client's opening?
fn reply_fits(opening: Opening, s: &[u8]) -> Option<bool> {
    let t = *s.first()?;
    Some(match opening {
        Opening::Ssl => matches!(t, b'S' | b'N' | b'E'),
        Opening::Gss => matches!(t, b'G' | b'N' | b'E'),
        Opening::Cancel => false, // the server only closes
        Opening::Startup => {
            if !matches!(t, b'R' | b'E' | b'v') {
                return Some(false);
            }
            let len = be32(s, 1)?;
            match t {
                b'R' => (8..=65_536).contains(&len) && be32(s, 5)? <= 12,
                _ => (4..=65_536).contains(&len),
            }
        }
    })
}

/// A frontend `Q` or `P` message at the start of `b`, as its SQL text. `Err(())`: not
/// one; `Ok(None)`: cut short.
fn sql_message(b: &[u8]) -> Result<Option<&str>, ()> {
    let t = match b.first() {
        None => return Ok(None),
        Some(&t @ (b'Q' | b'P')) => t,
        Some(_) => return Err(()),
    };
    let Some(len) = be32(b, 1) else { return Ok(None) };
    if !(6..0x4000_0000).contains(&len) {
        return Err(());
    }
    let Some(body) = at(b, 5, len as usize - 4) else {
        let head = b.get(5..).unwrap_or_default();
        return if head.iter().all(|&c| c >= 0x20 || c == 0 || c.is_ascii_whitespace()) {
            Ok(None)
        } else {
            Err(())
        };
    };
    message_sql(t, body).map(Some).ok_or(())
}

/// The SQL of a complete `Q` (query string) or `P` (statement name, query string, ...)
/// body.
fn message_sql(t: u8, body: &[u8]) -> Option<&str> {
    let body = if t == b'P' {
        let name = body.iter().position(|&c| c == 0)?;
        body.get(name + 1..)?
    } else {
        body
    };
    let end = body.iter().position(|&c| c == 0)?;
    if t == b'Q' && end + 1 != body.len() {
        return None;
    }
    let s = core::str::from_utf8(&body[..end]).ok()?;
    let ok = !s.trim().is_empty() && s.chars().all(|c| !c.is_control() || c.is_whitespace());
    ok.then_some(s)
}

/// A backend message header at the start of `b`.
fn backend(b: &[u8]) -> Option<bool> {
    let t = *b.first()?;
    let len = be32(b, 1)?;
    Some(b"123ACDEGHIKNRSTVWZcdnstv".contains(&t) && (4..0x4000_0000).contains(&len))
}

/// The SQL text of the first simple query (`Q`) or Parse (`P`) message in the client's
/// bytes `b`: leading untyped messages (SSLRequest, StartupMessage) and other typed
/// messages (password, Bind, Execute, Sync, ...) are skipped. `None` if there is none in
/// `b`, it is cut short, or it is not text.
pub fn query(b: &[u8]) -> Option<&str> {
    let mut p = 0;
    // Untyped: a length whose first byte is zero (typed messages start with a letter).
    while b.get(p) == Some(&0) {
        let len = be32(b, p)? as usize;
        if !(8..=MAX_STARTUP as usize).contains(&len) {
            return None;
        }
        p += len;
    }
    for _ in 0..MAX_MESSAGES {
        let t = *b.get(p)?;
        let len = be32(b, p + 1)? as usize;
        if len < 4 || !t.is_ascii_alphabetic() {
            return None;
        }
        let body = at(b, p + 5, len - 4)?;
        if t == b'Q' || t == b'P' {
            return message_sql(t, body);
        }
        p += 1 + len;
    }
    None
}

fn mid_stream(cx: &ProbeCtx<'_>) -> Probe {
    let mut undecided = false;
    for (req, resp) in [(cx.c2s, cx.s2c), (cx.s2c, cx.c2s)] {
        match (sql_message(req), backend(resp)) {
            (Ok(Some(_)), Some(true)) => return Probe::Match,
            (Err(()), _) | (_, Some(false)) => {}
            _ => undecided = true,
        }
    }
    if undecided && !(cx.c2s_done && cx.s2c_done) {
        Probe::NeedMore
    } else {
        Probe::No
    }
}

/// PostgreSQL.
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    if cx.mid_stream {
        return mid_stream(cx);
    }
    if cx.first == Some(Dir::ToClient) {
        return Probe::No; // the server spoke first
    }
    let o = match opening(cx.c2s) {
        Ok(Some(o)) => o,
        Err(()) => return Probe::No,
        Ok(None) if cx.c2s_done => return Probe::No,
        Ok(None) => return Probe::NeedMore,
    };
    match reply_fits(o, cx.s2c) {
        Some(false) => Probe::No,
        _ => Probe::Match,
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
            client_port: 45930,
            server_port: 5432,
            c2s,
            s2c,
            c2s_done: false,
            s2c_done: false,
            first: Some(Dir::ToServer),
            mid_stream: false,
        }
    }

    // pgsql.pcap, 127.0.0.1:45930 -> 5432.
    const STARTUP: &str =
        "000000260003000075736572006f727978006461746162617365006d61696c73746f72650000";
    const AUTH_MD5: &str = "520000000c00000005ad44ff54";
    const PASSWORD: &str =
        "70000000286d6435636566666330316463646537353431383239646565663662356539633931343200";
    const PARSE_BEGIN: &str = "500000000d00626567696e000000420000000e0000000000000001000145000\
        00009000000000050000000310073656c656374207265766973696f6e2066726f6d206d61696c73746f7\
        26520666f7220757064617465000000420000000e00000000000000010001440000000650004500000009\
        00000000005300000004";
    const PARSE_COMPLETE: &str = "31000000043200000004430000000a424547494e00";
    // pgsql.pcap, 172.16.20.244:59036 (GSSENCRequest, 'G') and :59037 (SSLRequest, 'N').
    const GSSENC: &str = "0000000804d21630";
    const SSL: &str = "0000000804d2162f";
    // pgsql-cancel-request (suricata-verify), 100.88.2.140:39706.
    const CANCEL: &str = "0000001004d2162e0000711a350a9cf1";
    // pgsql-bug-5579 (suricata-verify): a simple query.
    const SIMPLE_QUERY: &str = "510000001773656c6563742070675f736c65657028392900";

    #[test]
    fn openings_match() {
        let s = hex(STARTUP);
        assert_eq!(probe(&cx(&s, b"")), Probe::Match);
        assert_eq!(probe(&cx(&s, &hex(AUTH_MD5))), Probe::Match);
        assert_eq!(probe(&cx(&hex(SSL), b"N")), Probe::Match);
        assert_eq!(probe(&cx(&hex(SSL), b"S")), Probe::Match);
        assert_eq!(probe(&cx(&hex(GSSENC), b"G")), Probe::Match);
        assert_eq!(probe(&cx(&hex(CANCEL), b"")), Probe::Match);
        assert_eq!(probe(&cx(&hex(SSL), b"R")), Probe::No, "answer does not fit");
        assert_eq!(probe(&cx(&s, b"HTTP/1.1 400")), Probe::No);
    }

    #[test]
    fn truncated_prefixes_need_more() {
        let s = hex(STARTUP);
        for n in [1, 3, 4, 7, 8, 12, 20, s.len() - 1] {
            assert_eq!(probe(&cx(&s[..n], b"")), Probe::NeedMore, "{n}");
        }
        let mut c = cx(&s[..20], b"");
        c.c2s_done = true;
        assert_eq!(probe(&c), Probe::No);
        assert_eq!(probe(&cx(&hex(SSL)[..5], b"")), Probe::NeedMore);
    }

    #[test]
    fn other_protocols() {
        for c in [
            &b"GET / HTTP/1.1\r\n"[..],
            &[0x16, 3, 1, 0, 0xc8, 1, 0, 0, 0xc4, 3, 3][..],
            b"*1\r\n$4\r\nPING\r\n",
            // A startup with a broken parameter list, and one without a user.
            &hex("0000001000030000757365720000ff00")[..],
            &hex("000000140003000064617461626173650078000000")[..],
            // TDS pre-login.
            &hex("1201002f0000010000001a00060100200001020021000103002200040400260001ff")[..],
        ] {
            assert_eq!(probe(&cx(c, b"")), Probe::No, "{c:?}");
        }
        let mut server_first = cx(b"", b"R");
        server_first.first = Some(Dir::ToClient);
        assert_eq!(probe(&server_first), Probe::No);
    }

    #[test]
    fn mid_stream_extended_query() {
        let (p, r) = (hex(PARSE_BEGIN), hex(PARSE_COMPLETE));
        let mut c = cx(&p, &r);
        c.mid_stream = true;
        assert_eq!(probe(&c), Probe::Match);
        c.c2s = &r;
        c.s2c = &p;
        assert_eq!(probe(&c), Probe::Match);
        c.c2s = b"";
        assert_eq!(probe(&c), Probe::NeedMore);
        c.c2s = b"\x16\x03\x03\x00\x10";
        assert_eq!(probe(&c), Probe::No);
    }

    #[test]
    fn query_text() {
        assert_eq!(query(&hex(SIMPLE_QUERY)), Some("select pg_sleep(9)"));
        let mut stream = hex(STARTUP);
        stream.extend_from_slice(&hex(PASSWORD));
        stream.extend_from_slice(&hex(PARSE_BEGIN));
        assert_eq!(query(&stream), Some("begin"));
        let mut stream = hex(SSL);
        stream.extend_from_slice(&hex(STARTUP));
        stream.extend_from_slice(&hex(SIMPLE_QUERY));
        assert_eq!(query(&stream), Some("select pg_sleep(9)"));
        assert_eq!(query(&stream[..stream.len() - 1]), None, "cut short");
        assert_eq!(query(&hex(PASSWORD)), None);
    }
}
