//! MongoDB wire protocol (MongoDB manual, "MongoDB Wire Protocol"; BSON 1.1 spec).
//!
//! Every message starts with a 16-byte little-endian header: messageLength (including the
//! header), requestID, responseTo, opCode. The client speaks first.
//!
//! Identification: the client's first message has a client opcode (2004 OP_QUERY, 2013
//! OP_MSG, 2012 OP_COMPRESSED, legacy 2001/2002/2005/2006/2007, 2010 OP_COMMAND),
//! responseTo 0 (or -1, as some drivers send), a length of at most 48 MB, and a body that
//! fits its opcode: OP_QUERY flags, a printable `db.collection` name, then BSON documents
//! exactly filling the message; OP_MSG flag bits and sections (kind 0: a document; kind
//! 1: a size, an identifier, documents) exactly filling it; OP_COMPRESSED a known
//! original opcode and compressor. A BSON document has a length of at least 5, a known
//! first element type with a printable name, and a trailing zero. Such a message is
//! specific enough to decide on alone (captures of one-sided sessions exist); when the
//! server answered, its first message must have a server opcode (1 OP_REPLY, 2013, 2012,
//! 2011) and responseTo equal to the client's requestID. Mid-stream: either direction
//! starts with a complete valid message (responseTo not checked).

use crate::app::probe::{at, le32, Probe, ProbeCtx};
use crate::flow::Dir;

const OP_REPLY: u32 = 1;
const OP_UPDATE: u32 = 2001;
const OP_INSERT: u32 = 2002;
const OP_QUERY: u32 = 2004;
const OP_GET_MORE: u32 = 2005;
const OP_DELETE: u32 = 2006;
const OP_KILL_CURSORS: u32 = 2007;
const OP_COMMAND: u32 = 2010;
const OP_COMMAND_REPLY: u32 = 2011;
const OP_COMPRESSED: u32 = 2012;
const OP_MSG: u32 = 2013;
/// The server's default maximum message size.
const MAX_MESSAGE: u32 = 48_000_000;
/// Sections or documents walked in one message.
const MAX_PARTS: usize = 64;

fn is_client_op(op: u32) -> bool {
    matches!(
        op,
        OP_UPDATE
            | OP_INSERT
            | OP_QUERY
            | OP_GET_MORE
            | OP_DELETE
            | OP_KILL_CURSORS
            | OP_COMMAND
            | OP_COMPRESSED
            | OP_MSG
    )
}

fn is_server_op(op: u32) -> bool {
    matches!(op, OP_REPLY | OP_COMMAND_REPLY | OP_COMPRESSED | OP_MSG)
}

/// What a check concluded: valid, not valid, or valid as far as the bytes go.
type Verdict = Option<bool>;

/// A BSON document at `p` of `m` (the message, of declared length `end`); its length.
/// `Some(Err)`: invalid; `None`: cut short before it could be judged.
fn document(m: &[u8], p: usize, end: usize) -> Option<Result<usize, ()>> {
    let len = le32(m, p)? as usize;
    if len < 5 || p + len > end {
        return Some(Err(()));
    }
    // First element: a type, a printable name; or the terminator of an empty document.
    let t = *m.get(p + 4)?;
    if t == 0 {
        return Some(if len == 5 { Ok(len) } else { Err(()) });
    }
    if !matches!(t, 0x01..=0x13 | 0x7f | 0xff) {
        return Some(Err(()));
    }
    let name = m.get(p + 5..(p + len).min(m.len()))?;
    match name.iter().position(|&c| c == 0) {
        Some(0) => return Some(Err(())),
        Some(n) if !name[..n].iter().all(|&c| (0x20..0x7f).contains(&c)) => return Some(Err(())),
        Some(_) => {}
        None if name.iter().all(|&c| (0x20..0x7f).contains(&c)) && p + len > m.len() => {
            return None
        }
        None => return Some(Err(())),
    }
    match m.get(p + len - 1) {
        Some(0) => Some(Ok(len)),
        Some(_) => Some(Err(())),
        None => None,
    }
}

/// Documents from `p` exactly filling the message up to `end`; at least `min` of them.
fn documents(m: &[u8], mut p: usize, end: usize, min: usize) -> Verdict {
    // At the top of round `n`, `n` documents were read.
    for n in 0..MAX_PARTS {
        if p == end {
            return Some(n >= min);
        }
        match document(m, p, end)? {
            Ok(len) => p += len,
            Err(()) => return Some(false),
        }
        if p > m.len() {
            return None;
        }
    }
    Some(false)
}

/// A NUL-terminated printable name at `p` (at most `max` bytes): its end (after the NUL).
fn cstring(m: &[u8], p: usize, max: usize) -> Option<Result<usize, ()>> {
    for i in 0..=max {
        match *m.get(p + i)? {
            0 if i > 0 => return Some(Ok(p + i + 1)),
            c if (0x20..0x7f).contains(&c) => {}
            _ => return Some(Err(())),
        }
    }
    Some(Err(()))
}

/// OP_MSG: flag bits (checksumPresent, moreToCome, exhaustAllowed), then sections up to
/// the end (less a CRC-32C when flagged).
fn op_msg(m: &[u8], end: usize) -> Verdict {
    let flags = le32(m, 16)?;
    if flags & !0x0001_0003 != 0 {
        return Some(false);
    }
    let end = if flags & 1 != 0 { end.checked_sub(4)? } else { end };
    let mut p = 20;
    // At the top of round `sections`, that many sections were read.
    for sections in 0..MAX_PARTS {
        if p == end {
            return Some(sections > 0);
        }
        match *m.get(p)? {
            0 => match document(m, p + 1, end)? {
                Ok(len) => p += 1 + len,
                Err(()) => return Some(false),
            },
            1 => {
                let size = le32(m, p + 1)? as usize;
                if size < 5 || p + 1 + size > end {
                    return Some(false);
                }
                let ids = match cstring(m, p + 5, 64)? {
                    Ok(e) => e,
                    Err(()) => return Some(false),
                };
                if documents(m, ids, p + 1 + size, 0)? {
                    p += 1 + size;
                } else {
                    return Some(false);
                }
            }
            _ => return Some(false),
        }
        if p > m.len() {
            return None;
        }
    }
    Some(false)
}

/// The body of a message of opcode `op` in `m` (the whole message, declared `end` long).
fn body(m: &[u8], op: u32, end: usize) -> Verdict {
    match op {
        OP_QUERY => {
            let flags = le32(m, 16)?;
            if flags & !0xfe != 0 {
                return Some(false);
            }
            let name_end = match cstring(m, 20, 255)? {
                Ok(e) => e,
                Err(()) => return Some(false),
            };
            if !m.get(20..name_end)?.contains(&b'.') {
                return Some(false);
            }
            // numberToSkip, numberToReturn, query, [returnFieldsSelector]
            let docs = name_end + 8;
            if docs > end {
                return Some(false);
            }
            documents(m, docs, end, 1)
        }
        OP_MSG => op_msg(m, end),
        OP_COMPRESSED => {
            let original = le32(m, 16)?;
            let size = le32(m, 20)?;
            let compressor = *m.get(24)?;
            Some(
                original != OP_COMPRESSED
                    && (is_client_op(original) || is_server_op(original))
                    && size > 0
                    && size <= MAX_MESSAGE
                    && compressor <= 3
                    && end > 25,
            )
        }
        OP_REPLY => {
            let flags = le32(m, 16)?;
            let returned = le32(m, 32)?;
            if flags & !0xf != 0 || returned > 1_000_000 {
                return Some(false);
            }
            documents(m, 36, end, returned.min(1) as usize)
        }
        OP_UPDATE | OP_INSERT | OP_DELETE | OP_GET_MORE => {
            if le32(m, 16)? != 0 && op != OP_INSERT {
                return Some(false); // ZERO (OP_INSERT: flags)
            }
            match cstring(m, 20, 255)? {
                Ok(e) => Some(e <= end && m.get(20..e)?.contains(&b'.')),
                Err(()) => Some(false),
            }
        }
        OP_KILL_CURSORS => {
            let n = le32(m, 20)? as usize;
            Some(le32(m, 16)? == 0 && n > 0 && end.checked_sub(24) == n.checked_mul(8))
        }
        OP_COMMAND | OP_COMMAND_REPLY => {
            // Deprecated: database and command names, then documents.
            match cstring(m, 16, 255)? {
                Ok(e) => Some(e < end),
                Err(()) => Some(false),
            }
        }
        _ => Some(false),
    }
}

/// The message at the start of `b`: `(requestID, responseTo)` if valid. `from_client`:
/// which opcodes are allowed (`None`: either side's).
fn message(b: &[u8], from_client: Option<bool>) -> Option<Result<(u32, u32), ()>> {
    let len = le32(b, 0)?;
    if !(16 + 5..=MAX_MESSAGE).contains(&len) {
        return Some(Err(()));
    }
    let h = at(b, 0, 16)?;
    let op = le32(h, 12)?;
    let op_ok = match from_client {
        Some(true) => is_client_op(op),
        Some(false) => is_server_op(op),
        None => is_client_op(op) || is_server_op(op),
    };
    if !op_ok {
        return Some(Err(()));
    }
    match body(b, op, len as usize)? {
        true => Some(Ok((le32(h, 4)?, le32(h, 8)?))),
        false => Some(Err(())),
    }
}

fn mid_stream(cx: &ProbeCtx<'_>) -> Probe {
    let side = |b: &[u8], done: bool| match message(b, None) {
        Some(Ok(_)) => Probe::Match,
        Some(Err(())) => Probe::No,
        None if done => Probe::No,
        None => Probe::NeedMore,
    };
    match (side(cx.c2s, cx.c2s_done), side(cx.s2c, cx.s2c_done)) {
        (Probe::Match, _) | (_, Probe::Match) => Probe::Match,
        (Probe::NeedMore, _) | (_, Probe::NeedMore) => Probe::NeedMore,
        _ => Probe::No,
    }
}

/// MongoDB.
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    if cx.mid_stream {
        return mid_stream(cx);
    }
    if cx.first == Some(Dir::ToClient) {
        return Probe::No; // the server spoke first
    }
    let request_id = match message(cx.c2s, Some(true)) {
        Some(Ok((id, to))) if to == 0 || to == u32::MAX => id,
        Some(_) => return Probe::No,
        None if cx.c2s_done => return Probe::No,
        None => return Probe::NeedMore,
    };
    match message(cx.s2c, Some(false)) {
        Some(Ok((_, to))) if to != request_id => Probe::No,
        Some(Err(())) => Probe::No,
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
            client_port: 55582,
            server_port: 27017,
            c2s,
            s2c,
            c2s_done: false,
            s2c_done: false,
            first: Some(Dir::ToServer),
            mid_stream: false,
        }
    }

    // mongodb.pcap: OP_QUERY getnonce (10.10.10.12:55582), isMaster (10.10.10.14:61503),
    // getnonce with responseTo -1 (10.10.10.18:64566, port 30000).
    const GETNONCE: &str =
        "3b0000000000000000000000d4070000000000006162746573742e24636d64000000000\
        0ffffffff13000000106765746e6f6e6365000100000000";
    const ISMASTER: &str =
        "3a0000004c04000000000000d40700000000000061646d696e2e24636d6400000000000\
        1000000130000001069734d6173746572000100000000";
    const GETNONCE_M1: &str =
        "4900000087910000ffffffffd407000000000000496e616374697665557365724964\
        656e746974792e24636d6400000000000100000013000000106765746e6f6e6365000100000000";

    /// An OP_MSG `{ping: 1, $db: "admin"}` and its reply `{ok: 1.0}`, laid out as the wire
    /// protocol documents them (the corpus has no OP_MSG).
    fn op_msg_pair() -> (Vec<u8>, Vec<u8>) {
        let doc = |fields: &[u8]| {
            let mut d = ((fields.len() + 5) as u32).to_le_bytes().to_vec();
            d.extend_from_slice(fields);
            d.push(0);
            d
        };
        let msg = |id: u32, to: u32, d: &[u8]| {
            let mut m = ((16 + 4 + 1 + d.len()) as u32).to_le_bytes().to_vec();
            m.extend_from_slice(&id.to_le_bytes());
            m.extend_from_slice(&to.to_le_bytes());
            m.extend_from_slice(&OP_MSG.to_le_bytes());
            m.extend_from_slice(&[0, 0, 0, 0, 0]);
            m.extend_from_slice(d);
            m
        };
        let req = doc(b"\x10ping\x00\x01\x00\x00\x00\x02$db\x00\x06\x00\x00\x00admin\x00");
        let rep = doc(b"\x01ok\x00\x00\x00\x00\x00\x00\x00\xf0\x3f");
        (msg(7, 0, &req), msg(99, 7, &rep))
    }

    #[test]
    fn client_queries_match() {
        for q in [GETNONCE, ISMASTER, GETNONCE_M1] {
            let q = hex(q);
            assert_eq!(probe(&cx(&q, b"")), Probe::Match);
            for n in [1, 15, 16, 30, q.len() - 1] {
                assert_eq!(probe(&cx(&q[..n], b"")), Probe::NeedMore, "{n}");
            }
            let mut done = cx(&q[..q.len() - 1], b"");
            done.c2s_done = true;
            assert_eq!(probe(&done), Probe::No);
        }
        let (req, rep) = op_msg_pair();
        assert_eq!(probe(&cx(&req, b"")), Probe::Match);
        assert_eq!(probe(&cx(&req, &rep)), Probe::Match);
        let mut wrong = rep.clone();
        wrong[8] = 8; // responseTo another request
        assert_eq!(probe(&cx(&req, &wrong)), Probe::No);
    }

    #[test]
    fn other_protocols() {
        // mongo_false_positive.pcapng (TLS-like traffic on 443 nDPI once took for MongoDB).
        let fp = hex("4b450000020601550000039e010000008fe0a8cf6b86210100aa049ac38595885b26e5");
        for c in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            &[0x16, 3, 1, 0, 0xc8, 1, 0, 0, 0xc4, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
            &hex("000000260003000075736572006f727978006461746162617365006d61696c73746f72650000"),
            &hex("1201002f0000010000001a00060100200001020021000103002200040400260001ff0f00077d"),
            b"*1\r\n$4\r\nPING\r\n\r\n\r\n\r\n",
            &fp,
        ] {
            assert_eq!(probe(&cx(c, b"")), Probe::No, "{c:?}");
            let mut m = cx(c, c);
            m.mid_stream = true;
            m.c2s_done = true;
            m.s2c_done = true;
            assert_eq!(probe(&m), Probe::No, "{c:?}");
        }
        // A reply where a request belongs.
        let (_, rep) = op_msg_pair();
        let mut r = rep.clone();
        r[12..16].copy_from_slice(&OP_REPLY.to_le_bytes());
        assert_eq!(probe(&cx(&r, b"")), Probe::No);
    }

    #[test]
    fn mid_stream_either_direction() {
        let (req, rep) = op_msg_pair();
        let mut m = cx(b"", &rep);
        m.mid_stream = true;
        assert_eq!(probe(&m), Probe::Match);
        m.s2c = &req[..10];
        assert_eq!(probe(&m), Probe::NeedMore);
        m.c2s = b"\x00\x01\x02\x03 garbage garbage";
        m.s2c = &req;
        assert_eq!(probe(&m), Probe::Match);
    }
}
