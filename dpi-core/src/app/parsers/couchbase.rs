//! Couchbase Server's data port handshake, and the Erlang port mapper (EPMD) and
//! distribution handshake its cluster manager speaks (Couchbase "KV protocol" docs:
//! `docs/BinaryProtocol.md`, `docs/SASL.md`, `docs/Hello.md`; Erlang/OTP "Distribution
//! Protocol", ERTS user's guide).
//!
//! Identification, the client speaking first:
//! - memcached binary framing (24-byte header, magic 0x80 request / 0x81 response):
//!   HELO (0x1f) with a printable agent name as key and a list of 16-bit feature codes
//!   (1–0x40) as value; SASL auth or step (0x21, 0x22) whose key is a mechanism name
//!   (`PLAIN`, `SCRAM-SHA…`, `CRAM-MD5`, `OAUTHBEARER`, ...): either decides alone. SASL
//!   list-mechanisms (0x20, empty body) needs the answer: a response with the same opcode
//!   and opaque whose value lists known mechanism names;
//! - EPMD: a 2-byte length, then ALIVE2_REQ `x` (port, node type 77/72, protocol 0,
//!   versions 5–6, name and extra lengths exactly filling the request: decides alone),
//!   PORT_PLEASE2_REQ `z` (a node name) or NAMES_REQ `n`, answered by PORT2_RESP `w`,
//!   ALIVE2_RESP `y` / ALIVE2_X_RESP `v`, or the port mapper's port (4369) for NAMES;
//! - Erlang distribution: a 2-byte length, then the name message `n` (version 5, flags,
//!   `name@host`) or `N` (flags, creation, name length, `name@host`): decides alone; a
//!   server status message `s` (`ok`, `nok`, `alive`, ...) must follow if anything does.
//!
//! Mid-stream: the same checks with either direction as the client.

use super::memcached::{binary, REQUEST_MAGIC, RESPONSE_MAGIC};
use crate::app::probe::{at, be16, be32, Probe, ProbeCtx};
use crate::flow::Dir;

const HELO: u8 = 0x1f;
const SASL_LIST_MECHS: u8 = 0x20;
const SASL_AUTH: u8 = 0x21;
const SASL_STEP: u8 = 0x22;
/// The port mapper's own port, which a NAMES response starts with.
const EPMD_PORT: u32 = 4369;
/// SASL mechanism names (or their prefixes).
const MECHANISMS: [&[u8]; 7] =
    [b"PLAIN", b"CRAM-MD5", b"SCRAM-SHA", b"OAUTHBEARER", b"DIGEST-MD5", b"GSSAPI", b"EXTERNAL"];

/// What a check concluded: valid, not valid, or valid as far as the bytes go.
type Verdict = Option<bool>;

fn mechanism(m: &[u8]) -> bool {
    !m.is_empty()
        && m.len() <= 32
        && m.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'-')
        && MECHANISMS.iter().any(|p| m.starts_with(p))
}

/// The key and value of the binary request or response at the start of `b`, if whole.
fn key_value(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let key_len = usize::from(be16(b, 2)?);
    let extras = usize::from(*b.get(4)?);
    let body = at(b, 24, be32(b, 8)? as usize)?;
    let key = body.get(extras..extras + key_len)?;
    Some((key, body.get(extras + key_len..)?))
}

/// A Couchbase handshake request at the start of `c`, with the server's `s`.
fn kv(c: &[u8], s: &[u8], s_done: bool) -> Verdict {
    let Some((op, opaque, _)) = binary(c, REQUEST_MAGIC)? else { return Some(false) };
    match op {
        HELO => {
            let (key, value) = key_value(c)?;
            let features = value.chunks_exact(2).map(|f| u16::from_be_bytes([f[0], f[1]]));
            Some(
                !key.is_empty()
                    && key.iter().all(|c| (0x20..0x7f).contains(c))
                    && value.len() % 2 == 0
                    && features.clone().count() <= 64
                    && features.into_iter().all(|f| (1..=0x40).contains(&f)),
            )
        }
        SASL_AUTH | SASL_STEP => {
            let (key, _) = key_value(c)?;
            Some(mechanism(key))
        }
        SASL_LIST_MECHS => {
            if be16(c, 2)? != 0 || be32(c, 8)? != 0 {
                return Some(false);
            }
            if s.is_empty() && s_done {
                return Some(false);
            }
            let Some((rop, ropaque, _)) = binary(s, RESPONSE_MAGIC)? else {
                return Some(false);
            };
            if rop != op || ropaque != opaque {
                return Some(false);
            }
            let (_, list) = key_value(s)?;
            let mut names = list.split(|&c| c == b' ').filter(|n| !n.is_empty());
            let all_known = names.clone().all(mechanism);
            Some(names.next().is_some() && all_known)
        }
        _ => Some(false),
    }
}

/// Erlang node names: `name@host`, printable, no spaces.
fn node_name(n: &[u8], need_at: bool) -> bool {
    !n.is_empty()
        && n.len() <= 255
        && n.iter().all(|c| c.is_ascii_graphic())
        && (!need_at || n.contains(&b'@'))
}

/// An EPMD request or distribution name message at the start of `c` (both carry a
/// 2-byte length), with the server's `s`.
fn erlang(c: &[u8], s: &[u8], s_done: bool) -> Verdict {
    let len = usize::from(be16(c, 0)?);
    let tag = *c.get(2)?;
    if !matches!(tag, b'x' | b'z' | b'n' | b'N') || len == 0 || len > 1024 {
        return Some(false);
    }
    let m = at(c, 2, len)?;
    match tag {
        b'x' => {
            // ALIVE2_REQ: port, type, protocol, highest, lowest, nlen, name, elen, extra.
            let nlen = usize::from(be16(m, 9)?);
            let name = at(m, 11, nlen)?;
            let elen = usize::from(be16(m, 11 + nlen)?);
            let (highest, lowest) = (be16(m, 5)?, be16(m, 7)?);
            Some(
                matches!(m.get(3), Some(77 | 72))
                    && m.get(4) == Some(&0)
                    && (5..=6).contains(&lowest)
                    && (lowest..=6).contains(&highest)
                    && 13 + nlen + elen == len
                    && node_name(name, false),
            )
        }
        b'z' => {
            if !node_name(&m[1..], false) {
                return Some(false);
            }
            epmd_answer(s, s_done, |r| {
                r.first() == Some(&b'w') && r.get(1).is_some_and(|&x| x <= 1)
            })
        }
        b'n' if len == 1 => {
            // NAMES_REQ: the answer starts with the port mapper's port.
            if s.is_empty() && s_done {
                return Some(false);
            }
            Some(be32(s, 0)? == EPMD_PORT)
        }
        b'n' => {
            // Distribution name message: version 5, flags, name.
            let version = be16(m, 1)?;
            let name = m.get(7..)?;
            dist_answer(version == 5 && node_name(name, true), s)
        }
        _ => {
            // 'N': flags (8), creation (4), name length (2), name.
            let nlen = usize::from(be16(m, 13)?);
            let ok = 15 + nlen == len && node_name(at(m, 15, nlen)?, true);
            dist_answer(ok, s)
        }
    }
}

/// The server's reply to a PORT_PLEASE2 request: `check`ed if there, or accepted when
/// the session ended without one.
fn epmd_answer(s: &[u8], s_done: bool, check: impl Fn(&[u8]) -> bool) -> Verdict {
    if s.is_empty() {
        return if s_done { Some(true) } else { None };
    }
    if s.len() < 2 {
        return if s_done { Some(false) } else { None };
    }
    Some(check(s))
}

/// A distribution name message decides alone; a status message `s` must follow it if
/// anything does.
fn dist_answer(ok: bool, s: &[u8]) -> Verdict {
    if !ok {
        return Some(false);
    }
    match s.get(2) {
        None => Some(true),
        Some(&t) => Some(t == b's'),
    }
}

/// Is `c` (client) and `s` (server) a Couchbase or Erlang exchange?
fn exchange(c: &[u8], s: &[u8], s_done: bool) -> Verdict {
    match *c.first()? {
        REQUEST_MAGIC => kv(c, s, s_done),
        0..=3 => erlang(c, s, s_done), // a 2-byte length up to 1024
        _ => Some(false),
    }
}

fn verdict(v: Verdict, done: bool) -> Probe {
    match v {
        Some(true) => Probe::Match,
        Some(false) => Probe::No,
        None if done => Probe::No,
        None => Probe::NeedMore,
    }
}

/// Couchbase (and Erlang EPMD / distribution).
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    let done = cx.c2s_done && cx.s2c_done;
    if cx.mid_stream {
        let a = exchange(cx.c2s, cx.s2c, cx.s2c_done);
        let b = exchange(cx.s2c, cx.c2s, cx.c2s_done);
        return match (a, b) {
            (Some(true), _) | (_, Some(true)) => Probe::Match,
            (Some(false), Some(false)) => Probe::No,
            _ => verdict(None, done),
        };
    }
    if cx.first == Some(Dir::ToClient) {
        return Probe::No; // the server spoke first
    }
    verdict(exchange(cx.c2s, cx.s2c, cx.s2c_done), done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx<'a>(c2s: &'a [u8], s2c: &'a [u8]) -> ProbeCtx<'a> {
        ProbeCtx {
            proto: 6,
            client_port: 50000,
            server_port: 11210,
            c2s,
            s2c,
            c2s_done: false,
            s2c_done: false,
            first: Some(Dir::ToServer),
            mid_stream: false,
        }
    }

    // The corpus has no Couchbase or Erlang session: these messages are laid out as the
    // protocol documents describe them.

    /// A binary request or response with `op`, `key`, `value` and opaque 0xcafe.
    fn kv_msg(magic: u8, op: u8, key: &[u8], value: &[u8]) -> Vec<u8> {
        let mut m = vec![magic, op];
        m.extend_from_slice(&(key.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]);
        m.extend_from_slice(&((key.len() + value.len()) as u32).to_be_bytes());
        m.extend_from_slice(&[0, 0, 0xca, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0]);
        m.extend_from_slice(key);
        m.extend_from_slice(value);
        m
    }

    /// A 2-byte-length-prefixed Erlang message.
    fn erl(body: &[u8]) -> Vec<u8> {
        let mut m = (body.len() as u16).to_be_bytes().to_vec();
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn kv_handshakes() {
        // HELO "mchello v1.0" with Datatype, TCPNODELAY, XATTR, XERROR.
        let helo = kv_msg(0x80, HELO, b"mchello v1.0", &[0, 1, 0, 3, 0, 6, 0, 7]);
        assert_eq!(probe(&cx(&helo, b"")), Probe::Match);
        assert_eq!(probe(&cx(&helo[..30], b"")), Probe::NeedMore);
        let auth = kv_msg(0x80, SASL_AUTH, b"SCRAM-SHA512", b"n,,n=user,r=abc");
        assert_eq!(probe(&cx(&auth, b"")), Probe::Match);
        let plain = kv_msg(0x80, SASL_AUTH, b"PLAIN", b"\0user\0secret");
        assert_eq!(probe(&cx(&plain, b"")), Probe::Match);
        let list = kv_msg(0x80, SASL_LIST_MECHS, b"", b"");
        assert_eq!(probe(&cx(&list, b"")), Probe::NeedMore);
        let mechs = kv_msg(0x81, SASL_LIST_MECHS, b"", b"SCRAM-SHA512 SCRAM-SHA256 PLAIN");
        assert_eq!(probe(&cx(&list, &mechs)), Probe::Match);
        let wrong = kv_msg(0x81, SASL_LIST_MECHS, b"", b"hello world");
        assert_eq!(probe(&cx(&list, &wrong)), Probe::No);
        // A plain memcached GET is not Couchbase.
        assert_eq!(probe(&cx(&kv_msg(0x80, 0x00, b"Hello", b""), b"")), Probe::No);
        let bad = kv_msg(0x80, SASL_AUTH, b"secret", b"");
        assert_eq!(probe(&cx(&bad, b"")), Probe::No);
    }

    #[test]
    fn epmd() {
        // ALIVE2_REQ: port 25672, normal node, TCP, versions 6..5, "ns_1", no extra.
        let mut alive = vec![b'x', 0x64, 0x48, 77, 0, 0, 6, 0, 5, 0, 4];
        alive.extend_from_slice(b"ns_1");
        alive.extend_from_slice(&[0, 0]);
        let alive = erl(&alive);
        assert_eq!(probe(&cx(&alive, b"")), Probe::Match);
        assert_eq!(probe(&cx(&alive[..8], b"")), Probe::NeedMore);
        let please = erl(b"zns_1");
        assert_eq!(probe(&cx(&please, b"")), Probe::NeedMore, "waits for PORT2_RESP");
        let port2 = [b'w', 0, 0x64, 0x48, 77, 0, 0, 6, 0, 5, 0, 4, b'n', b's', b'_', b'1', 0, 0];
        assert_eq!(probe(&cx(&please, &port2)), Probe::Match);
        assert_eq!(probe(&cx(&please, b"HTTP/1.1 400")), Probe::No);
        let names = erl(b"n");
        assert_eq!(probe(&cx(&names, b"\x00\x00\x11\x11name ns_1 at port 21100\n")), Probe::Match);
        assert_eq!(probe(&cx(&names, b"\x00\x00\x00\x01")), Probe::No);
    }

    #[test]
    fn distribution() {
        let mut n = vec![b'n', 0, 5, 0, 0x07, 0x7f, 0xfd];
        n.extend_from_slice(b"ns_1@127.0.0.1");
        let n = erl(&n);
        assert_eq!(probe(&cx(&n, b"")), Probe::Match);
        assert_eq!(probe(&cx(&n, &erl(b"sok"))), Probe::Match);
        assert_eq!(probe(&cx(&n, &erl(b"xok"))), Probe::No);
        let mut big_n =
            vec![b'N', 0, 0, 0, 0x01, 0x0d, 0x07, 0x7f, 0xfd, 0x5f, 0x3a, 0x1b, 0x2c, 0];
        big_n.push(20);
        big_n.extend_from_slice(b"babysitter@127.0.0.1");
        let big_n = erl(&big_n);
        assert_eq!(probe(&cx(&big_n, b"")), Probe::Match);
        let mut no_host = vec![b'n', 0, 5, 0, 0x07, 0x7f, 0xfd];
        no_host.extend_from_slice(b"ns_1");
        assert_eq!(probe(&cx(&erl(&no_host), b"")), Probe::No);
    }

    #[test]
    fn other_protocols() {
        for c in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            &[0x16, 3, 1, 0, 0xc8, 1, 0, 0, 0xc4, 3, 3][..],
            b"*1\r\n$4\r\nPING\r\n",
            b"stats\r\n",
            b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
            // DNS over TCP.
            b"\x00\x1d\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01",
            // TNS connect header.
            b"\x00\xd4\x00\x00\x01\x00\x00\x00\x01\x3b\x01\x2c",
        ] {
            let mut done = cx(c, b"");
            done.c2s_done = true;
            done.s2c_done = true;
            assert_eq!(probe(&done), Probe::No, "{c:?}");
        }
        let please = erl(b"zns_1");
        let mut mid = cx(b"", &please);
        mid.mid_stream = true;
        assert_eq!(probe(&mid), Probe::NeedMore);
    }
}
