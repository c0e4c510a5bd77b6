//! MySQL and MariaDB client/server protocol (MySQL Internals, "Client/Server Protocol":
//! packet framing, connection phase, COM_QUERY).
//!
//! Every message is a packet: a 3-byte little-endian payload length and a sequence number,
//! then the payload. The server speaks first.
//!
//! Identification: the server's first packet (sequence 0) is a handshake greeting:
//! protocol version 10 (or 9, MySQL 3.x) followed by a printable, NUL-terminated server
//! version starting with a digit and, for version 10, the fixed fields after it (a zero
//! filler after the first scramble part, zeroed reserved bytes) inside the packet; or an
//! error packet (0xff, error code 1000–2999, printable message) refusing the connection.
//! A session where the client spoke first is not MySQL; a client packet after the
//! greeting must carry sequence 1 (the login or SSL request). Mid-stream: one direction
//! starts with a complete COM_QUERY or COM_STMT_PREPARE (sequence 0, printable SQL) and
//! the other with a packet of sequence 1 (its response).
//!
//! Extraction: [`query`], the SQL text of the first COM_QUERY in the client bytes;
//! [`server_version`], the version string of the greeting.

use crate::app::probe::{at, Probe, ProbeCtx};
use crate::flow::Dir;

const COM_QUERY: u8 = 0x03;
const COM_STMT_PREPARE: u8 = 0x16;
/// Longest greeting accepted (real ones are under 150 bytes).
const MAX_GREETING: usize = 512;
/// Longest server version string.
const MAX_VERSION: usize = 96;
/// Packets walked by [`query`] before giving up.
const MAX_PACKETS: usize = 16;

/// The packet header at the start of `b`: (payload length, sequence number).
fn header(b: &[u8]) -> Option<(usize, u8)> {
    let h = at(b, 0, 4)?;
    Some((usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16, h[3]))
}

fn printable(c: u8) -> bool {
    (0x20..0x7f).contains(&c)
}

/// Is `b` (the server's first bytes) a greeting or a connection error? `None`: valid so
/// far, cut short.
pub fn greeting(b: &[u8]) -> Option<bool> {
    let (len, seq) = header(b)?;
    if seq != 0 || !(8..=MAX_GREETING).contains(&len) {
        return Some(false);
    }
    // Never read past the packet: `p` stays within `4 + len`.
    let end = 4 + len;
    let get = |i: usize| if i < end { b.get(i).copied() } else { Some(0xff) };
    let proto = *b.get(4)?;
    match proto {
        9 | 10 => {}
        0xff => return connect_error(b, len),
        _ => return Some(false),
    }
    // Server version: printable, starts with a digit, NUL-terminated.
    let mut p = 5;
    if !get(p)?.is_ascii_digit() {
        return Some(false);
    }
    loop {
        let c = get(p)?;
        if c == 0 {
            break;
        }
        if !printable(c) || p - 5 >= MAX_VERSION || p + 1 >= end {
            return Some(false);
        }
        p += 1;
    }
    p += 1; // NUL
    if proto == 9 {
        // Connection id (4), scramble (8) and its NUL: the whole packet.
        return Some(p + 4 + 9 == end && get(end - 1)? == 0);
    }
    // Connection id (4), scramble part 1 (8), filler 0.
    p += 12;
    if p + 3 > end || get(p)? != 0 {
        return Some(false);
    }
    p += 3; // filler, capability flags (low half)
    if p == end {
        return Some(true); // a pre-4.1 server stops here
    }
    // Character set (1), status (2), capabilities (high half, 2), scramble length (1),
    // then 10 reserved bytes; MariaDB uses the last 4 for its own capabilities.
    p += 6;
    if p + 10 > end {
        return Some(false);
    }
    for i in p..p + 6 {
        if get(i)? != 0 {
            return Some(false);
        }
    }
    Some(true)
}

/// An error packet instead of a greeting ("Host is not allowed to connect", "Too many
/// connections"): code, then a printable message filling the packet.
fn connect_error(b: &[u8], len: usize) -> Option<bool> {
    let body = at(b, 4, len)?;
    let code = u16::from_le_bytes([*body.get(1)?, *body.get(2)?]);
    let msg = body.get(3..)?;
    Some((1000..3000).contains(&code) && msg.len() >= 8 && msg.iter().all(|&c| printable(c)))
}

/// A complete COM_QUERY / COM_STMT_PREPARE packet (sequence 0) at the start of `b`, as
/// its SQL text. `Err(())`: not one; `Ok(None)`: cut short.
fn command_text(b: &[u8]) -> Result<Option<&str>, ()> {
    let Some((len, seq)) = header(b) else { return Ok(None) };
    if seq != 0 || len < 2 {
        return Err(());
    }
    match b.get(4) {
        None => return Ok(None),
        Some(&(COM_QUERY | COM_STMT_PREPARE)) => {}
        Some(_) => return Err(()),
    }
    let Some(payload) = at(b, 4, len) else {
        // Check what is there already.
        return match b.get(5..).map(|t| t.iter().all(|&c| c >= 0x20 || c.is_ascii_whitespace())) {
            Some(true) | None => Ok(None),
            Some(false) => Err(()),
        };
    };
    sql_text(&payload[1..]).map(Some).ok_or(())
}

/// The SQL text of a COM_QUERY payload after the command byte: UTF-8 without control
/// characters (other than white space). With the query-attributes capability (MySQL
/// 8.0.23+) the text follows a parameter count and a parameter-set count; with no
/// parameters those are the bytes 0x00 0x01.
fn sql_text(t: &[u8]) -> Option<&str> {
    let t = match t {
        [0, 1, rest @ ..] => rest,
        _ => t,
    };
    let s = core::str::from_utf8(t).ok()?;
    let ok = !s.trim().is_empty() && s.chars().all(|c| !c.is_control() || c.is_whitespace());
    ok.then_some(s)
}

/// The server version string of the greeting at the start of `b` (the server's bytes),
/// such as `8.0.36` or `5.5.5-10.6.12-MariaDB-0ubuntu0.22.04.1`.
pub fn server_version(b: &[u8]) -> Option<&str> {
    if greeting(b) != Some(true) || !matches!(b.get(4), Some(9 | 10)) {
        return None;
    }
    let v = b.get(5..)?;
    let end = v.iter().position(|&c| c == 0)?;
    core::str::from_utf8(&v[..end]).ok()
}

/// The SQL text of the first complete COM_QUERY (sequence 0) among the packets at the
/// start of `b` (the client's bytes: login and authentication packets are skipped).
/// `None` if there is none, it is cut short, or it is not text.
pub fn query(b: &[u8]) -> Option<&str> {
    let mut p = 0;
    for _ in 0..MAX_PACKETS {
        let rest = b.get(p..)?;
        let (len, seq) = header(rest)?;
        let payload = at(rest, 4, len)?;
        if seq == 0 && payload.first() == Some(&COM_QUERY) {
            return sql_text(&payload[1..]);
        }
        p += 4 + len;
    }
    None
}

fn mid_stream(cx: &ProbeCtx<'_>) -> Probe {
    /// Does `b` start with a response packet (sequence 1)?
    fn response(b: &[u8]) -> Option<bool> {
        let (len, seq) = header(b)?;
        Some(seq == 1 && len > 0)
    }
    let mut undecided = false;
    for (req, resp) in [(cx.c2s, cx.s2c), (cx.s2c, cx.c2s)] {
        match (command_text(req), response(resp)) {
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

/// MySQL.
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    if cx.mid_stream {
        return mid_stream(cx);
    }
    if cx.first == Some(Dir::ToServer) {
        return Probe::No; // the client spoke first
    }
    match greeting(cx.s2c) {
        Some(true) => {}
        Some(false) => return Probe::No,
        None if cx.s2c_done => return Probe::No,
        None => return Probe::NeedMore,
    }
    // The client's first packet answers the greeting (login or SSL request).
    match header(cx.c2s) {
        Some((_, seq)) if seq != 1 => Probe::No,
        _ => Probe::Match,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn cx<'a>(c2s: &'a [u8], s2c: &'a [u8], first: Dir) -> ProbeCtx<'a> {
        ProbeCtx {
            proto: 6,
            client_port: 36732,
            server_port: 3306,
            c2s,
            s2c,
            c2s_done: false,
            s2c_done: false,
            first: Some(first),
            mid_stream: false,
        }
    }

    // mysql.pcapng, 192.168.88.231:36732 -> 192.168.88.201:3306 (MariaDB 10.6).
    const MARIADB_GREETING: &str = "6a0000000a352e352e352d31302e362e31322d4d6172696144422d30\
        7562756e7475302e32322e30342e3100200000004767503d212b544800fef72d0200ff8115000000000000\
        1d0000004976374f652f59526d52313e006d7973716c5f6e61746976655f70617373776f726400";
    const MARIADB_LOGIN_HEAD: &str = "d600000184a6ff20000000012100000000000000000000000000";
    const MARIADB_QUERY: &str =
        "210000000373656c65637420404076657273696f6e5f636f6d6d656e74206c696d69742031";
    const MARIADB_QUERY_RESPONSE: &str = "0200000101012800000203646566";
    // mysql.pcapng, 192.168.88.231:36272 -> 192.168.88.200:3306 (MySQL 8.0, then TLS).
    const MYSQL8_GREETING: &str = "4a0000000a382e302e3336000c00000031747567785f235600ffff\
        ff0200ffdf150000000000000000000070223e346d0f367c31226a7c0063616368696e675f7368613\
        25f70617373776f726400";
    const MYSQL8_SSL_REQUEST: &str =
        "2000000185aeff1900000001ff0000000000000000000000000000000000000000000000";

    #[test]
    fn greetings_match() {
        for g in [MARIADB_GREETING, MYSQL8_GREETING] {
            let g = hex(g);
            assert_eq!(greeting(&g), Some(true));
            assert_eq!(probe(&cx(b"", &g, Dir::ToClient)), Probe::Match);
            for n in [1, 4, 5, 12, 30] {
                assert_eq!(probe(&cx(b"", &g[..n], Dir::ToClient)), Probe::NeedMore, "{n}");
            }
            let mut done = cx(b"", &g[..20], Dir::ToClient);
            done.s2c_done = true;
            assert_eq!(probe(&done), Probe::No);
        }
        assert_eq!(
            server_version(&hex(MARIADB_GREETING)),
            Some("5.5.5-10.6.12-MariaDB-0ubuntu0.22.04.1")
        );
        assert_eq!(server_version(&hex(MYSQL8_GREETING)), Some("8.0.36"));
        let (g, login) = (hex(MARIADB_GREETING), hex(MARIADB_LOGIN_HEAD));
        assert_eq!(probe(&cx(&login, &g, Dir::ToClient)), Probe::Match);
        let (g, ssl) = (hex(MYSQL8_GREETING), hex(MYSQL8_SSL_REQUEST));
        assert_eq!(probe(&cx(&ssl, &g, Dir::ToClient)), Probe::Match);
        // A client packet with the wrong sequence number.
        assert_eq!(probe(&cx(&hex(MARIADB_QUERY), &g, Dir::ToClient)), Probe::No);
    }

    #[test]
    fn connection_refused_error() {
        let mut e = vec![0, 0, 0, 0, 0xff, 0x6a, 0x04];
        e.extend_from_slice(b"Host '10.1.2.3' is not allowed to connect to this MySQL server");
        e[0] = (e.len() - 4) as u8;
        assert_eq!(probe(&cx(b"", &e, Dir::ToClient)), Probe::Match);
    }

    #[test]
    fn other_protocols() {
        let g = hex(MARIADB_GREETING);
        // Client spoke first: HTTP, TLS, PostgreSQL startup.
        for c in [
            &b"GET / HTTP/1.1\r\n"[..],
            &[0x16, 3, 1, 0, 0xc8, 1][..],
            &hex("000000260003000075736572006f72797800")[..],
        ] {
            assert_eq!(probe(&cx(c, b"", Dir::ToServer)), Probe::No);
            assert_eq!(probe(&cx(c, &g, Dir::ToServer)), Probe::No);
        }
        // Server banners.
        for s in [
            &b"SSH-2.0-OpenSSH_9.6\r\n"[..],
            b"220 mail.example.com ESMTP Postfix\r\n",
            b"+OK POP3 ready\r\n",
            b"* OK [CAPABILITY IMAP4rev1] ready\r\n",
            // PostgreSQL 'R' authentication request (as if the server spoke first).
            &hex("520000000c00000005ad44ff54")[..],
        ] {
            assert_eq!(probe(&cx(b"", s, Dir::ToClient)), Probe::No, "{s:?}");
        }
    }

    #[test]
    fn mid_stream_query_and_response() {
        let (q, r) = (hex(MARIADB_QUERY), hex(MARIADB_QUERY_RESPONSE));
        let mut c = cx(&q, &r, Dir::ToServer);
        c.mid_stream = true;
        assert_eq!(probe(&c), Probe::Match);
        // Directions guessed the wrong way round.
        c.c2s = &r;
        c.s2c = &q;
        assert_eq!(probe(&c), Probe::Match);
        c.s2c = &q[..10];
        c.c2s = b"";
        assert_eq!(probe(&c), Probe::NeedMore);
        c.c2s = b"GET / HTTP/1.1\r\n";
        c.s2c = b"HTTP/1.1 200 OK\r\n";
        assert_eq!(probe(&c), Probe::No);
    }

    #[test]
    fn query_text() {
        let q = hex(MARIADB_QUERY);
        assert_eq!(query(&q), Some("select @@version_comment limit 1"));
        let mut stream = hex(MARIADB_LOGIN_HEAD);
        stream.resize(4 + 0xd6, 0); // the whole login packet (its tail zeroed)
        stream.extend_from_slice(&q);
        assert_eq!(query(&stream), Some("select @@version_comment limit 1"));
        assert_eq!(query(&q[..q.len() - 1]), None, "cut short");
        assert_eq!(query(&hex(MYSQL8_SSL_REQUEST)), None);
        // Query attributes (no parameters, one set).
        let mut attrs = vec![0x23, 0, 0, 0, COM_QUERY, 0, 1];
        attrs.extend_from_slice(b"select @@version_comment limit 1");
        assert_eq!(query(&attrs), Some("select @@version_comment limit 1"));
    }
}
