//! Oracle Net (TNS) packets and the TTC calls they carry (no public specification; the
//! layout used here is the one documented in I. Redfern, "Oracle Protocol" (2003, public
//! domain) and by Wireshark's TNS dissector).
//!
//! Every packet starts with an 8-byte header: a big-endian length, a checksum (zero in
//! practice), the type (1 Connect, 2 Accept, 3 Ack, 4 Refuse, 5 Redirect, 6 Data, 7 Null,
//! 9 Abort, 11 Resend, 12 Marker, 13 Attention, 14 Control), a flags byte and a header
//! checksum (zero). From version 315 on, once negotiated, the length takes 4 bytes (the
//! packet checksum's place). The client speaks first, with a Connect.
//!
//! Identification: the client's first packet is a Connect (2-byte length, version
//! 300–400, lowest compatible version 256 up to it, the word holding 1 in either byte
//! order, connect data that starts `(DESCRIPTION=`, `(CONNECT_DATA=`, `(ADDRESS=`...
//! inside the packet or right after it); the server's first packet, if any, is an Accept, Refuse, Redirect,
//! Resend, Marker or Data packet. Mid-stream: either direction starts with such a Connect,
//! or a Refuse/Redirect carrying `(`-text; or both directions start with Data packets
//! (valid header, data flags, a known TTC message type) whose framing is consistent.
//!
//! Extraction: [`query`], the SQL text of a TTC function call (OALL8 and the older
//! parse/execute calls) in a Data packet, found as a length-prefixed (or 0xfe-chunked)
//! string starting with a SQL keyword.

use crate::app::probe::{at, be16, be32, Probe, ProbeCtx};
use crate::flow::Dir;

const CONNECT: u8 = 1;
const ACCEPT: u8 = 2;
const REFUSE: u8 = 4;
const REDIRECT: u8 = 5;
const DATA: u8 = 6;
const RESEND: u8 = 11;
const MARKER: u8 = 12;
/// Largest packet accepted (the SDU can be negotiated up to 2 MB).
const MAX_PACKET: usize = 2 << 20;
/// Words that open connect data.
const CONNECT_WORDS: [&[u8]; 6] = [
    b"DESCRIPTION",
    b"DESCRIPTION_LIST",
    b"CONNECT_DATA",
    b"ADDRESS",
    b"ADDRESS_LIST",
    b"SOURCE_ROUTE",
];
/// TTC function calls that carry SQL text: OALL8 (0x5e), OALL7 (0x47), OSQL7 (0x4a),
/// parse (0x03), execute (0x04).
const SQL_CALLS: [u8; 5] = [0x5e, 0x47, 0x4a, 0x03, 0x04];
/// Statements [`query`] recognises.
const SQL_WORDS: [&[u8]; 20] = [
    b"SELECT",
    b"INSERT",
    b"UPDATE",
    b"DELETE",
    b"MERGE",
    b"WITH",
    b"BEGIN",
    b"DECLARE",
    b"CALL",
    b"CREATE",
    b"ALTER",
    b"DROP",
    b"TRUNCATE",
    b"GRANT",
    b"REVOKE",
    b"COMMIT",
    b"ROLLBACK",
    b"EXPLAIN",
    b"LOCK",
    b"SAVEPOINT",
];

/// A packet header at the start of `b`: (type, packet length). `None`: fewer than 8
/// bytes; `Some(Err)`: not a TNS header.
fn header(b: &[u8]) -> Option<Result<(u8, usize), ()>> {
    let h = at(b, 0, 8)?;
    let t = h[4];
    let known = matches!(t, 1..=7 | 9 | 11..=14);
    let hi = u16::from_be_bytes([h[0], h[1]]);
    let lo = u16::from_be_bytes([h[2], h[3]]);
    let len = match (hi, lo) {
        (0, 0) => return Some(Err(())),
        (n, 0) => usize::from(n),  // 2-byte length, zero checksum
        (0, n) => usize::from(n),  // 4-byte length under 64 KB
        _ => be32(h, 0)? as usize, // 4-byte length
    };
    if !known || h[6] != 0 || h[7] != 0 || !(8..=MAX_PACKET).contains(&len) {
        return Some(Err(()));
    }
    Some(Ok((t, len)))
}

/// Case-insensitive prefix test.
fn starts_with_ci(b: &[u8], word: &[u8]) -> bool {
    b.get(..word.len()).is_some_and(|p| p.eq_ignore_ascii_case(word))
}

/// Connect data at the start of `d`: `(WORD=` with a known word. `None`: cut short.
fn connect_data(d: &[u8]) -> Option<bool> {
    if *d.first()? != b'(' {
        return Some(false);
    }
    let word_len = d[1..].iter().take(20).take_while(|c| c.is_ascii_alphabetic() || **c == b'_');
    let n = word_len.count();
    let after = *d.get(1 + n)?;
    let word = &d[1..1 + n];
    Some(after == b'=' && CONNECT_WORDS.iter().any(|w| word.eq_ignore_ascii_case(w)))
}

/// A Connect packet at the start of `b`. `None`: valid so far, cut short.
fn connect(b: &[u8]) -> Option<bool> {
    let (t, len) = match header(b)? {
        Ok(h) => h,
        Err(()) => return Some(false),
    };
    if t != CONNECT || len < 34 || b[2] != 0 || b[3] != 0 {
        return Some(false);
    }
    let version = be16(b, 8)?;
    let compat = be16(b, 10)?;
    let one = be16(b, 22)?;
    let cd_len = usize::from(be16(b, 24)?);
    let cd_off = usize::from(be16(b, 26)?);
    if !(300..=400).contains(&version)
        || !(256..=version).contains(&compat)
        || !(one == 0x0100 || one == 0x0001)
        || cd_len == 0
        || !(34..=1024).contains(&cd_off)
    {
        return Some(false);
    }
    if cd_off + cd_len <= len {
        connect_data(b.get(cd_off..)?)
    } else {
        // Long connect data follows the packet.
        connect_data(b.get(len..)?)
    }
}

/// A Refuse or Redirect packet carrying its `(...)` text.
fn refuse_or_redirect(b: &[u8]) -> Option<bool> {
    let (t, len) = match header(b)? {
        Ok(h) => h,
        Err(()) => return Some(false),
    };
    let (dlen_at, data_at) = match t {
        REFUSE => (10, 12),
        REDIRECT => (8, 10),
        _ => return Some(false),
    };
    let dlen = usize::from(be16(b, dlen_at)?);
    if dlen < 2 || data_at + dlen > len {
        return Some(false);
    }
    Some(*b.get(data_at)? == b'(')
}

/// TTC message types a Data packet may start with (after the data flags): protocol
/// negotiation, data types, function call, return status, row header/data, OPI
/// parameters, function complete, error, piggyback, ..., and the advanced negotiation
/// magic 0xdeadbeef.
fn ttc_type(t: u8) -> bool {
    matches!(t, 0x01..=0x11 | 0x15 | 0x17 | 0x1b | 0xde)
}

/// A Data packet at the start of `b`, its framing consistent with what follows.
fn data(b: &[u8]) -> Option<bool> {
    let (t, len) = match header(b)? {
        Ok(h) => h,
        Err(()) => return Some(false),
    };
    if t != DATA || len < 11 {
        return Some(false);
    }
    let flags = be16(b, 8)?;
    if flags & 0xf000 != 0 || !ttc_type(*b.get(10)?) {
        return Some(false);
    }
    // A complete packet is followed by nothing yet, or by another header.
    match b.get(len..) {
        Some(rest) if !rest.is_empty() => header(rest).map(|h| h.is_ok()).or(Some(true)),
        _ => Some(true),
    }
}

fn verdict(v: Option<bool>, done: bool) -> Probe {
    match v {
        Some(true) => Probe::Match,
        Some(false) => Probe::No,
        None if done => Probe::No,
        None => Probe::NeedMore,
    }
}

fn mid_stream(cx: &ProbeCtx<'_>) -> Probe {
    // Per direction: (starts with a Connect/Refuse/Redirect, starts with a Data packet);
    // `None` while too short to say.
    let side = |b: &[u8], done: bool| {
        let strong = match (connect(b), refuse_or_redirect(b)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (None, _) | (_, None) if !done => None,
            _ => Some(false),
        };
        let data = data(b).or((done).then_some(false));
        (strong, data)
    };
    let (c_strong, c_data) = side(cx.c2s, cx.c2s_done);
    let (s_strong, s_data) = side(cx.s2c, cx.s2c_done);
    if c_strong == Some(true) || s_strong == Some(true) {
        return Probe::Match;
    }
    if c_data == Some(true) && s_data == Some(true) {
        return Probe::Match;
    }
    let data_possible = c_data != Some(false) && s_data != Some(false);
    let strong_possible = c_strong.is_none() || s_strong.is_none();
    if data_possible || strong_possible {
        Probe::NeedMore
    } else {
        Probe::No
    }
}

/// Oracle TNS.
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    if cx.mid_stream {
        return mid_stream(cx);
    }
    if cx.first == Some(Dir::ToClient) {
        return Probe::No; // the server spoke first
    }
    match verdict(connect(cx.c2s), cx.c2s_done) {
        Probe::Match => {}
        other => return other,
    }
    match header(cx.s2c) {
        Some(Ok((t, _))) if !matches!(t, ACCEPT | REFUSE | REDIRECT | RESEND | MARKER | DATA) => {
            Probe::No
        }
        Some(Err(())) => Probe::No,
        _ => Probe::Match,
    }
}

/// Is `s` SQL text: a statement keyword then a non-word character, and printable?
fn is_sql(s: &[u8]) -> bool {
    let word = SQL_WORDS.iter().find(|w| starts_with_ci(s, w));
    let Some(w) = word else { return false };
    let after = s.get(w.len()).copied();
    let boundary = after.is_none_or(|c| !c.is_ascii_alphanumeric() && c != b'_');
    boundary && s.iter().all(|&c| c >= 0x20 || c == b'\t' || c == b'\r' || c == b'\n')
}

/// Copy `parts` into `out` (stopping when full) and return the text if it is UTF-8.
fn gather<'o, 'a>(parts: impl Iterator<Item = &'a [u8]>, out: &'o mut [u8]) -> Option<&'o str> {
    let mut n = 0;
    for p in parts {
        let room = out.len() - n;
        let k = p.len().min(room);
        out.get_mut(n..n + k)?.copy_from_slice(p.get(..k)?);
        n += k;
        if k < p.len() {
            break;
        }
    }
    let text = out.get(..n)?;
    match core::str::from_utf8(text) {
        Ok(s) => Some(s),
        // Cut inside a character by a full buffer: keep the valid prefix.
        Err(e) if e.error_len().is_none() => {
            core::str::from_utf8(text.get(..e.valid_up_to())?).ok()
        }
        Err(_) => None,
    }
}

/// A 0xfe-introduced chunked string at the start of `b` (after the 0xfe): chunks with a
/// 1-byte length, ended by a zero length. Returns (chunks' bytes, total).
fn chunks(b: &[u8]) -> Option<(&[u8], usize)> {
    let mut p = 0;
    let mut total = 0;
    for _ in 0..256 {
        let n = usize::from(*b.get(p)?);
        if n == 0 {
            return Some((b.get(..p + 1)?, total));
        }
        at(b, p + 1, n)?;
        total += n;
        p += 1 + n;
    }
    None
}

/// The SQL text of the TTC function call in the Data packet at the start of `b`, copied
/// into `out` (truncated to its size). The call (OALL8, OALL7, OSQL7, parse, execute;
/// possibly after piggybacked messages) is followed within 256 bytes by the statement: a
/// length byte and the text, or 0xfe and length-prefixed chunks. `None` if `b` does not
/// start with such a Data packet, or no statement is found in it.
pub fn query<'o>(b: &[u8], out: &'o mut [u8]) -> Option<&'o str> {
    let (t, len) = header(b)?.ok()?;
    if t != DATA {
        return None;
    }
    let payload = b.get(10..len.min(b.len()))?;
    if !matches!(payload.first(), Some(0x03 | 0x11)) {
        return None;
    }
    let call =
        payload.windows(2).take(64).position(|w| w[0] == 0x03 && SQL_CALLS.contains(&w[1]))?;
    let start = call + 2;
    let end = payload.len().min(start + 256);
    for p in start..end {
        let n = usize::from(payload[p]);
        if (1..=252).contains(&n) {
            if let Some(s) = at(payload, p + 1, n).filter(|s| is_sql(s)) {
                return gather(core::iter::once(s), out);
            }
        } else if n == 0xfe {
            let Some(rest) = payload.get(p + 1..) else { continue };
            let Some((raw, _)) = chunks(rest) else { continue };
            let first = raw.get(1..1 + usize::from(*raw.first()?))?;
            if !is_sql(first) {
                continue;
            }
            let mut parts = raw;
            let iter = core::iter::from_fn(move || {
                let n = usize::from(*parts.first()?);
                let part = parts.get(1..1 + n)?;
                parts = parts.get(1 + n..)?;
                (n > 0).then_some(part)
            });
            return gather(iter, out);
        }
    }
    None
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
            client_port: 40226,
            server_port: 1521,
            c2s,
            s2c,
            c2s_done: false,
            s2c_done: false,
            first: Some(Dir::ToServer),
            mid_stream: false,
        }
    }

    // oracle12.pcapng, 10.0.2.15:40226 -> 10.0.72.139:1521 (sqlplus, Oracle 12).
    const CONNECT_PKT: &str =
        "00d4000001000000013b012c0c412000ffff7f0800000100008e0046000008004141\
        0000000000000000000000000000000000000000000000000000200000200000000000002844455343524950544\
        94f4e3d28434f4e4e4543545f444154413d285349443d69676f7229284349443d2850524f4752414d3d73716c70\
        6c7573406b616c692928484f53543d6b616c692928555345523d726f6f7429292928414444524553533d2850524\
        f544f434f4c3d5443502928484f53543d31302e302e37322e3133392928504f52543d31353231292929";
    const RESEND_PKT: &str = "000800000b000000";
    const ACCEPT_PKT: &str =
        "0029000002000000013b0c410000000001000000002941410000000000000000000020000020000000";
    // Data: set protocol (client), then the server's answer (4-byte lengths).
    const DATA_C: &str =
        "0000002606000000000001060504030201007838365f36342f4c696e757820322e342e787800";
    const DATA_S: &str = "0000001a06000000000002800000003c3c3c8000000000000012";
    // Data: the client's authentication call (0x03 0x76), no SQL in it.
    const AUTH: &str =
        "000000e9060000000000037602feffffffffffffff0900000021000000feffffffffffffff0\
        500000000000000fefffffffffffffffeffffffffffffff03737973270000000d415554485f5445524d494e414c\
        0f000000057074732f30000000002d0000000f415554485f50524f4752414d5f4e4d480000001873716c706c757\
        3406b616c692028544e532056312d56332900000000240000000c415554485f4d414348494e450c000000046b61\
        6c69000000001800000008415554485f5049440f000000053139303333000000001800000008415554485f53494\
        40c00000004726f6f7400000000";

    #[test]
    fn connect_matches() {
        let c = hex(CONNECT_PKT);
        assert_eq!(probe(&cx(&c, b"")), Probe::Match);
        assert_eq!(probe(&cx(&c, &hex(RESEND_PKT))), Probe::Match);
        assert_eq!(probe(&cx(&c, &hex(ACCEPT_PKT))), Probe::Match);
        assert_eq!(probe(&cx(&c, b"HTTP/1.1 400 Bad Request\r\n")), Probe::No);
        for n in [1, 7, 8, 30, 70, 75] {
            assert_eq!(probe(&cx(&c[..n], b"")), Probe::NeedMore, "{n}");
        }
        let mut done = cx(&c[..75], b"");
        done.c2s_done = true;
        assert_eq!(probe(&done), Probe::No);
        // Connect data that is not a connect descriptor.
        let mut bad = c.clone();
        bad[71] = b'X';
        assert_eq!(probe(&cx(&bad, b"")), Probe::No);
    }

    #[test]
    fn other_protocols() {
        for c in [
            &b"GET / HTTP/1.1\r\n"[..],
            &[0x16, 3, 1, 0, 0xc8, 1, 0, 0, 0xc4, 3, 3][..],
            &hex("000000260003000075736572006f727978006461746162617365006d61696c73746f72650000"),
            &hex("1201002f0000010000001a00060100200001020021000103002200040400260001ff"),
            b"*1\r\n$4\r\nPING\r\n",
            &hex(DATA_C),
        ] {
            assert_eq!(probe(&cx(c, b"")), Probe::No, "{c:?}");
        }
    }

    #[test]
    fn mid_stream() {
        let (c, s) = (hex(DATA_C), hex(DATA_S));
        let mut m = cx(&c, &s);
        m.mid_stream = true;
        assert_eq!(probe(&m), Probe::Match);
        m.s2c = b"";
        assert_eq!(probe(&m), Probe::NeedMore);
        m.s2c = b"HTTP/1.1 200 OK\r\n";
        assert_eq!(probe(&m), Probe::No);
        let conn = hex(CONNECT_PKT);
        m.c2s = b"";
        m.s2c = &conn; // directions guessed the wrong way round
        assert_eq!(probe(&m), Probe::Match);
    }

    #[test]
    fn sql_of_data_packets() {
        let mut out = [0u8; 128];
        assert_eq!(query(&hex(AUTH), &mut out), None);
        assert_eq!(query(&hex(DATA_C), &mut out), None);
        assert_eq!(query(&hex(CONNECT_PKT), &mut out), None);
        // The corpus has no SQL call (the capture ends at authentication): an OALL8 built
        // after the layout the references describe — function call 0x03 0x5e, sequence,
        // options and cursor fields, then the statement with a length byte.
        let sql = b"SELECT ename FROM emp WHERE empno = :1";
        let mut p = vec![0, 0, 0, 0, DATA, 0, 0, 0, 0, 0, 0x03, 0x5e, 0x07];
        p.extend_from_slice(&[0x02, 0x01, 0x21, 0x00, 0x01, 0x01, 0x28, 0x01, 0x01, 0x0d]);
        p.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00]);
        p.push(sql.len() as u8);
        p.extend_from_slice(sql);
        p.extend_from_slice(&[0x01, 0x01, 0x00, 0x00]);
        let n = p.len() as u32;
        p[..4].copy_from_slice(&n.to_be_bytes());
        assert_eq!(query(&p, &mut out), Some("SELECT ename FROM emp WHERE empno = :1"));
        let mut small = [0u8; 6];
        assert_eq!(query(&p, &mut small), Some("SELECT"));
        // A long statement in 0xfe chunks.
        let long = b"select * from all_objects where object_name like 'X%' order by 1";
        let mut q = vec![0, 0, 0, 0, DATA, 0, 0, 0, 0, 0, 0x11, 0x69, 0x01, 0x03, 0x5e, 0x08];
        q.extend_from_slice(&[0x02, 0x01, 0x21, 0xfe]);
        for part in long.chunks(40) {
            q.push(part.len() as u8);
            q.extend_from_slice(part);
        }
        q.push(0);
        let n = q.len() as u32;
        q[..4].copy_from_slice(&n.to_be_bytes());
        assert_eq!(query(&q, &mut out), core::str::from_utf8(long).ok());
    }
}
