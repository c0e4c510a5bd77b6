//! Microsoft SQL Server / Sybase Tabular Data Stream ([MS-TDS] v20 §2.2: packet header,
//! PRELOGIN, LOGIN7, SQLBatch, RPCRequest, tokens of a tabular response).
//!
//! Every message travels in packets with an 8-byte header: type, status (bits 0x01 end
//! of message, 0x02 ignore, 0x04, 0x08 and 0x10 reset connection), a big-endian length
//! including the header (at most 32768), SPID, packet id and a window byte that is always
//! zero. The client speaks first.
//!
//! Identification, on a session seen from its start: the client's first packet (SPID 0,
//! packet id 0 or 1) is a PRELOGIN (0x12: an option list — VERSION first, tokens 0–8, offsets and lengths
//! inside the packet — ending with 0xff), a LOGIN7 (0x10: record length, TDS version
//! 7.0–7.4, first variable field's offset after the fixed part), or a TDS 4.2/5.0 login
//! (0x02: name lengths of at most 30 and a printable user name). The server's first
//! packet, if there is one, is a tabular response (0x04). Mid-stream (either direction,
//! since the client/server guess may be wrong): any buffer that starts with a packet whose
//! body fits its type — a SQL batch (optional ALL_HEADERS, then UTF-16LE text whose first
//! visible character can start SQL), an RPC request (optional ALL_HEADERS, then a
//! procedure id 1–15 or a UTF-16LE procedure name, then option flags), a PRELOGIN, LOGIN7,
//! a PRELOGIN carrying TLS, or a tabular response starting with a known token. When a
//! complete packet is followed by more bytes, those must start with a valid header too.
//!
//! Extraction: [`query`], the text of a SQL batch packet, converted from UTF-16LE to UTF-8
//! into a caller's buffer.

use crate::app::probe::{at, le32, Probe, ProbeCtx};
use crate::flow::Dir;

const SQL_BATCH: u8 = 0x01;
const LOGIN_OLD: u8 = 0x02;
const RPC: u8 = 0x03;
const RESPONSE: u8 = 0x04;
const ATTENTION: u8 = 0x06;
const BULK_LOAD: u8 = 0x07;
const TRANSACTION: u8 = 0x0e;
const LOGIN7: u8 = 0x10;
const SSPI: u8 = 0x11;
const PRELOGIN: u8 = 0x12;
const MAX_PACKET: usize = 32_768;
/// UTF-16 code units looked at to judge a SQL text.
const TEXT_UNITS: usize = 32;

/// A valid packet header at the start of `b`: (type, status, length). `None`: fewer than
/// 8 bytes (but those there are valid); `Some(Err)`: not a TDS header.
fn header(b: &[u8]) -> Option<Result<(u8, u8, usize), ()>> {
    let bad = Some(Err(()));
    if let Some(&t) = b.first() {
        let known = matches!(
            t,
            SQL_BATCH
                | LOGIN_OLD
                | RPC
                | RESPONSE
                | ATTENTION
                | BULK_LOAD
                | TRANSACTION
                | LOGIN7
                | SSPI
                | PRELOGIN
        );
        if !known {
            return bad;
        }
    }
    if b.get(1).is_some_and(|&s| s & !0x1f != 0) {
        return bad;
    }
    let h = at(b, 0, 8)?;
    let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if h[7] != 0 || !(8..=MAX_PACKET).contains(&len) || (h[0] == ATTENTION) != (len == 8) {
        return bad;
    }
    Some(Ok((h[0], h[1], len)))
}

/// What a packet's body looks like. `None`: too short to say (valid so far).
type Verdict = Option<bool>;

/// ALL_HEADERS (TDS 7.2+): a total length, then headers (length, type 1–3) filling it
/// exactly. Returns the bytes after it, or `body` itself if it does not start with one.
fn skip_all_headers(body: &[u8]) -> Option<&[u8]> {
    let total = le32(body, 0)? as usize;
    if !(4 + 6..=1024).contains(&total) || total > body.len() {
        return Some(body);
    }
    let mut p = 4;
    while p < total {
        let len = le32(body, p)? as usize;
        let ty = u16::from_le_bytes([*body.get(p + 4)?, *body.get(p + 5)?]);
        if len < 6 || p + len > total || !(1..=3).contains(&ty) {
            return Some(body);
        }
        p += len;
    }
    body.get(total..)
}

/// UTF-16LE code units of `b` (an odd trailing byte is left out).
fn units(b: &[u8]) -> impl Iterator<Item = u16> + '_ {
    b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]))
}

/// Does `text` (UTF-16LE) look like the start of a SQL batch: no control characters or
/// broken surrogates, and the first visible character can start a statement (a letter,
/// `(`, a comment, a variable, a bracketed name, an ODBC escape)?
fn sql_start(text: &[u8], complete: bool) -> Verdict {
    let mut first = None;
    let mut n = 0;
    let examined = TEXT_UNITS.min(text.len() / 2);
    for c in char::decode_utf16(units(text).take(examined)) {
        let Ok(c) = c else {
            // An unpaired surrogate; one cut off at the end of what is examined is fine.
            if n + 1 >= examined {
                break;
            }
            return Some(false);
        };
        n += c.len_utf16();
        if c.is_control() && !c.is_whitespace() {
            return Some(false);
        }
        if first.is_none() && !c.is_whitespace() {
            first = Some(c);
        }
    }
    match first {
        Some(c) => Some(c.is_ascii_alphabetic() || "(-/@[{;".contains(c)),
        None if complete => Some(false),
        None => None,
    }
}

/// SQL batch body.
fn sql_batch(body: &[u8], complete: bool) -> Verdict {
    let text = skip_all_headers(body)?;
    sql_start(text, complete)
}

/// RPC request body: [ALL_HEADERS] (0xffff, proc id 1–15 | name length, UTF-16LE name)
/// option flags.
fn rpc(body: &[u8]) -> Verdict {
    let b = skip_all_headers(body)?;
    let n = u16::from_le_bytes([*b.first()?, *b.get(1)?]);
    let flags_at = if n == 0xffff {
        let id = u16::from_le_bytes([*b.get(2)?, *b.get(3)?]);
        if !(1..=15).contains(&id) {
            return Some(false);
        }
        4
    } else {
        let n = usize::from(n);
        if !(1..=128).contains(&n) {
            return Some(false);
        }
        let name = at(b, 2, 2 * n)?;
        for c in char::decode_utf16(units(name)) {
            match c {
                Ok(c) if c.is_alphanumeric() || "_.#@$[] -".contains(c) => {}
                _ => return Some(false),
            }
        }
        2 + 2 * n
    };
    let flags = u16::from_le_bytes([*b.get(flags_at)?, *b.get(flags_at + 1)?]);
    Some(flags & !0x7 == 0)
}

/// PRELOGIN option list (request or response): VERSION first, tokens 0–8, each option's
/// data inside the body (`body_len` bytes, of which `body` is what arrived), a terminator.
/// Or, after the first exchange, a TLS record.
fn prelogin(body: &[u8], body_len: usize, tls_ok: bool) -> Verdict {
    if tls_ok && body.first() == Some(&0x16) {
        let h = at(body, 0, 3)?;
        return Some(h[1] == 3 && h[2] <= 4);
    }
    if *body.first()? != 0 {
        return Some(false);
    }
    let mut p = 0;
    loop {
        let t = *body.get(p)?;
        if t == 0xff {
            return Some(p > 0);
        }
        let opt = at(body, p, 5)?;
        let off = usize::from(u16::from_be_bytes([opt[1], opt[2]]));
        let len = usize::from(u16::from_be_bytes([opt[3], opt[4]]));
        // Options are listed before their data; data lies within the packet.
        if t > 8 || off < p + 5 || off + len > body_len {
            return Some(false);
        }
        if t == 0 && len != 6 {
            return Some(false);
        }
        p += 5;
        if p > 64 {
            return Some(false);
        }
    }
}

/// LOGIN7 record.
fn login7(body: &[u8]) -> Verdict {
    let len = le32(body, 0)? as usize;
    let v = at(body, 4, 4)?;
    let version = (0x70..=0x74).contains(&v[3]) || ((0x70..=0x74).contains(&v[0]) && v[3] == 0);
    if !(86..=8192).contains(&len) || !version {
        return Some(false);
    }
    let packet_size = le32(body, 8)?;
    if packet_size != 0 && !(512..=32_767).contains(&packet_size) {
        return Some(false);
    }
    let host_off = usize::from(u16::from_le_bytes([*body.get(36)?, *body.get(37)?]));
    Some((86..=len).contains(&host_off))
}

/// TDS 4.2/5.0 login record: host name, user name, password, host process, each 30
/// bytes and a length byte.
fn login_old(body: &[u8]) -> Verdict {
    let mut user_ok = false;
    for (i, field) in [0usize, 31, 62, 93].into_iter().enumerate() {
        let n = usize::from(*body.get(field + 30)?);
        if n > 30 {
            return Some(false);
        }
        let v = at(body, field, n)?;
        if i < 2 && !v.iter().all(|&c| (0x20..0x7f).contains(&c)) {
            return Some(false);
        }
        user_ok |= i == 1 && n > 0;
    }
    Some(user_ok)
}

/// Tabular response: a pre-login response, or a known first token.
fn response(body: &[u8], body_len: usize) -> Verdict {
    let t = *body.first()?;
    match t {
        0x00 => prelogin(body, body_len, true),
        // DONE, DONEPROC, DONEINPROC: status bits.
        0xfd..=0xff => Some(u16::from_le_bytes([*body.get(1)?, *body.get(2)?]) & !0x1ff == 0),
        // COLMETADATA: column count (0xffff: none).
        0x81 => {
            let n = u16::from_le_bytes([*body.get(1)?, *body.get(2)?]);
            Some((1..=4096).contains(&n) || n == 0xffff)
        }
        // ENVCHANGE, ERROR, INFO, LOGINACK, ORDER, COLINFO, TABNAME, RETURNVALUE,
        // FEATUREEXTACK, FEDAUTHINFO, SESSIONSTATE, SSPI: a length.
        0xe3 | 0xaa | 0xab | 0xad | 0xa9 | 0xa5 | 0xa4 | 0xac | 0xae | 0xee | 0xe4 | 0xed => {
            let n = u16::from_le_bytes([*body.get(1)?, *body.get(2)?]);
            Some(n > 0 && usize::from(n) < MAX_PACKET)
        }
        0x79 => Some(body.len() >= 5), // RETURNSTATUS
        _ => Some(false),
    }
}

/// Which packets a buffer may start with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The client's first packet of a session seen from its start.
    Opening,
    /// The server's first packet of a session seen from its start.
    Answer,
    /// Either side, mid-stream.
    Any,
}

/// Judge the packet at the start of `b`. `done`: no more bytes will come.
fn packet(b: &[u8], role: Role, done: bool) -> Probe {
    let (t, _status, len) = match header(b) {
        None if done => return Probe::No,
        None => return Probe::NeedMore,
        Some(Err(())) => return Probe::No,
        Some(Ok(h)) => h,
    };
    let allowed = match role {
        Role::Opening => matches!(t, PRELOGIN | LOGIN7 | LOGIN_OLD),
        Role::Answer => t == RESPONSE,
        Role::Any => !matches!(t, ATTENTION | BULK_LOAD | SSPI),
    };
    // A client's first packet: SPID 0, packet id 0 or 1.
    let first_ok = role != Role::Opening || (b[4] == 0 && b[5] == 0 && b[6] <= 1);
    if !allowed || !first_ok {
        return Probe::No;
    }
    let complete = b.len() >= len;
    let body = &b[8..len.min(b.len())];
    let v = match t {
        SQL_BATCH => sql_batch(body, complete),
        RPC => rpc(body),
        PRELOGIN => prelogin(body, len - 8, role == Role::Any),
        LOGIN7 => login7(body),
        LOGIN_OLD => login_old(body),
        RESPONSE => response(body, len - 8),
        TRANSACTION => {
            // ALL_HEADERS, then a request type 0–10.
            skip_all_headers(body).and_then(|r| {
                r.get(..2).map(|t| u16::from_le_bytes([t[0], t[1]]) <= 10 && r.len() != body.len())
            })
        }
        _ => Some(false),
    };
    // A complete packet followed by more bytes: they start with another header.
    let next = match b.get(len..) {
        Some(rest) if !rest.is_empty() => header(rest).map(|h| h.is_ok()),
        _ => Some(true),
    };
    match (v, next) {
        (Some(false), _) | (_, Some(false)) => Probe::No,
        (Some(true), _) => Probe::Match,
        (None, _) if done || complete => Probe::No,
        (None, _) => Probe::NeedMore,
    }
}

/// MS-SQL TDS.
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    if cx.mid_stream {
        let side = |b: &[u8], done: bool| match (b.is_empty(), done) {
            (true, true) => Probe::No,
            (true, false) => Probe::NeedMore,
            (false, _) => packet(b, Role::Any, done),
        };
        return match (side(cx.c2s, cx.c2s_done), side(cx.s2c, cx.s2c_done)) {
            (Probe::Match, _) | (_, Probe::Match) => Probe::Match,
            (Probe::NeedMore, _) | (_, Probe::NeedMore) => Probe::NeedMore,
            _ => Probe::No,
        };
    }
    if cx.first == Some(Dir::ToClient) {
        return Probe::No; // the server spoke first
    }
    match packet(cx.c2s, Role::Opening, cx.c2s_done) {
        Probe::Match if !cx.s2c.is_empty() => match packet(cx.s2c, Role::Answer, cx.s2c_done) {
            Probe::No => Probe::No,
            _ => Probe::Match,
        },
        p => p,
    }
}

/// The text of the SQL batch packet at the start of `b` (its first packet only), from
/// UTF-16LE into `out` as UTF-8, after the ALL_HEADERS. Stops at the end of the packet,
/// the end of `b`, a broken surrogate pair, or when `out` is full (at a character
/// boundary). `None` if `b` does not start with a SQL batch or it has no text.
pub fn query<'o>(b: &[u8], out: &'o mut [u8]) -> Option<&'o str> {
    let (t, _, len) = header(b)?.ok()?;
    if t != SQL_BATCH {
        return None;
    }
    let body = b.get(8..len.min(b.len()))?;
    let text = skip_all_headers(body)?;
    let mut n = 0;
    for c in char::decode_utf16(units(text)) {
        let Ok(c) = c else { break };
        let w = c.len_utf8();
        let Some(dst) = out.get_mut(n..n + w) else { break };
        c.encode_utf8(dst);
        n += w;
    }
    core::str::from_utf8(out.get(..n)?).ok().filter(|s| !s.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn cx<'a>(c2s: &'a [u8], s2c: &'a [u8], mid_stream: bool) -> ProbeCtx<'a> {
        ProbeCtx {
            proto: 6,
            client_port: 5555,
            server_port: 1433,
            c2s,
            s2c,
            c2s_done: false,
            s2c_done: false,
            first: Some(Dir::ToServer),
            mid_stream,
        }
    }

    // mssql_tds.pcap (no handshakes: every session is picked up mid-stream).
    // 10.111.111.111:5555 -> 1433: SQL batch with ALL_HEADERS.
    const BATCH: &str = "010100be0000010016000000120000000200000000000000000001000000200073\
        006500740020007400720061006e00730061006300740069006f006e002000690073006f006c0061007\
        40069006f006e0020006c006500760065006c00200020007200650061006400200063006f006d006d00\
        6900740074006500640020002000730065007400200069006d0070006c0069006300690074005f00740\
        0720061006e00730061006300740069006f006e00730020006f00660066002000";
    // Its answer: DONE tokens.
    const DONE: &str = "0401002200330100fd0100f9000000000000000000fd0000ba000000000000000000";
    // 10.111.111.111:2222: SQL batch without ALL_HEADERS.
    const COMMIT: &str = "0101002c0000010043004f004d004d004900540020005400520041004e005300\
        41004300540049004f004e00";
    // 10.111.111.111:3333: RPC by name, with ALL_HEADERS.
    const RPC_NAMED: &str =
        "030900b900000100160000001200000002000000000000000000010000000e0070005f00470065007400\
        42006f0067007500730044006100740061000000";
    // 10.111.111.111:5555: RPC by procedure id (sp_prepexec).
    const RPC_ID: &str = "0301003d0000010016000000120000000200000000000000000001000000ffff0c00\
        0000000026040402000000ffffff0c000000000026040402000000";
    // 10.111.111.111:6666: first segment of an 8000-byte RPC packet.
    const RPC_LONG_HEAD: &str = "03041f400000010016000000120000000200260000009d0000000100000\
        00d0070005f0053006100760065004500780061006d0070006c00650000000a40004c006f006e0067005\
        0006100720061006d0000e7ffff0904d00034";

    /// A PRELOGIN request laid out as in [MS-TDS] §2.2.6.5 (VERSION, ENCRYPTION,
    /// INSTOPT, THREADID, MARS, terminator, then their data): the corpus has none.
    const PRELOGIN_REQ: &str = "1201002f0000010000001a00060100200001020021000103002200040400\
        260001ff0f00077d000002000000000000";

    #[test]
    fn session_openings() {
        let p = hex(PRELOGIN_REQ);
        assert_eq!(probe(&cx(&p, b"", false)), Probe::Match);
        for n in [1, 8, 12, 30] {
            assert_eq!(probe(&cx(&p[..n], b"", false)), Probe::NeedMore, "{n}");
        }
        // A SQL batch cannot open a session.
        assert_eq!(probe(&cx(&hex(BATCH), b"", false)), Probe::No);
        // The server's answer must be a tabular response.
        assert_eq!(probe(&cx(&p, &hex(DONE), false)), Probe::Match);
        assert_eq!(probe(&cx(&p, &hex(BATCH), false)), Probe::No);
        // Login7 of TDS 7.4 (fixed part, host name offset 94).
        let mut l = vec![0x10, 0x01, 0, 0, 0, 0, 1, 0];
        let mut rec = vec![0u8; 94];
        rec[0..4].copy_from_slice(&94u32.to_le_bytes());
        rec[4..8].copy_from_slice(&[4, 0, 0, 0x74]);
        rec[8..12].copy_from_slice(&4096u32.to_le_bytes());
        rec[36..38].copy_from_slice(&94u16.to_le_bytes());
        l.extend_from_slice(&rec);
        l[3] = l.len() as u8;
        assert_eq!(probe(&cx(&l, b"", false)), Probe::Match);
        l[8 + 7] = 0x55;
        assert_eq!(probe(&cx(&l, b"", false)), Probe::No, "TDS version");
    }

    #[test]
    fn mid_stream_requests_and_responses() {
        for (c, s) in [
            (hex(BATCH), hex(DONE)),
            (hex(DONE), hex(BATCH)), // client/server guessed the wrong way round
            (hex(COMMIT), vec![]),
            (hex(RPC_NAMED), vec![]),
            (hex(RPC_ID), vec![]),
            (hex(RPC_LONG_HEAD), vec![]),
            (vec![], hex(DONE)),
        ] {
            assert_eq!(probe(&cx(&c, &s, true)), Probe::Match, "{c:02x?}");
        }
        let b = hex(BATCH);
        assert_eq!(probe(&cx(&b[..20], b"", true)), Probe::NeedMore);
        // Two packets back to back; garbage after a packet.
        let mut two = hex(COMMIT);
        two.extend_from_slice(&hex(RPC_ID));
        assert_eq!(probe(&cx(&two, b"", true)), Probe::Match);
        let mut junk = hex(COMMIT);
        junk.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let mut c = cx(&junk, b"", true);
        assert_eq!(probe(&c), Probe::NeedMore, "the server may still answer");
        c.s2c_done = true;
        assert_eq!(probe(&c), Probe::No);
    }

    #[test]
    fn other_protocols() {
        for c in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            &[0x16, 3, 1, 0, 0xc8, 1, 0, 0, 0xc4, 3, 3][..],
            &hex("000000260003000075736572006f727978006461746162617365006d61696c73746f72650000"),
            &hex("0400000000000000050000000000000000000000"),
            b"*1\r\n$4\r\nPING\r\n",
            // TNS connect.
            &hex("00d4000001000000013b012c0c412000ffff7f0800000100008e0046"),
        ] {
            assert_eq!(probe(&cx(c, b"", false)), Probe::No, "{c:?}");
            let mut m = cx(c, c, true);
            m.c2s_done = true;
            m.s2c_done = true;
            assert_eq!(probe(&m), Probe::No, "mid-stream {c:?}");
        }
    }

    #[test]
    fn batch_text() {
        let mut out = [0u8; 256];
        let b = hex(BATCH);
        let q = query(&b, &mut out).unwrap();
        assert!(q.starts_with(" set transaction isolation level  read committed"), "{q}");
        assert_eq!(query(&hex(COMMIT), &mut out), Some("COMMIT TRANSACTION"));
        let mut small = [0u8; 6];
        assert_eq!(query(&hex(COMMIT), &mut small), Some("COMMIT"));
        assert_eq!(query(&hex(RPC_ID), &mut out), None);
        assert_eq!(query(&hex(DONE), &mut out), None);
        // Non-ASCII text (UTF-16 "zaż" → UTF-8).
        let mut p = vec![1, 1, 0, 14, 0, 0, 1, 0, b'z', 0, b'a', 0, 0x7c, 0x01];
        assert_eq!(query(&p, &mut out), Some("zaż"));
        p.truncate(13);
        assert_eq!(query(&p, &mut out), Some("za"));
    }
}
