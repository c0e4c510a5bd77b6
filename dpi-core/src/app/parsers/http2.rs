//! HTTP/2 over cleartext TCP ("h2c", RFC 9113) and gRPC over it.
//!
//! HTTP/2 identification, either of:
//! - prior knowledge (RFC 9113 §3.3): the client's first bytes are the connection preface
//!   `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` followed by the header of a SETTINGS frame (type 4,
//!   no ACK flag, a length that is a multiple of 6);
//! - upgrade (RFC 7540 §3.2): the client's first bytes are an HTTP/1.1 request whose
//!   `Upgrade` header lists the token `h2c`, and the server answers `HTTP/1.x 101`.
//!
//! A request without an `h2c` upgrade is left to the HTTP/1 probe (which already refuses
//! the preface); this probe waits for the end of the request headers to say so.
//!
//! gRPC identification (gRPC over HTTP/2 protocol): prior-knowledge HTTP/2 whose first
//! client HEADERS frame carries `content-type: application/grpc...`. The header block is
//! decoded (HPACK, RFC 7541) just far enough to find `content-type`: indexed fields, literal
//! fields with indexed or literal names, Huffman-coded strings (Appendix B, decoded
//! bit by bit against the canonical code, no allocation), and entries this same block adds
//! to the dynamic table (the first header block of a connection starts with an empty one).
//! gRPC says `NeedMore` until that HEADERS frame is in, and `No` once it is seen without
//! a gRPC content type, so the HTTP/2 probe (after it in the registry) wins then. A
//! header block cut by CONTINUATION frames is decoded up to the cut only.
//!
//! A session whose client preface came after a server's first bytes (a SETTINGS frame,
//! or a `101` answering a request the capture missed) is still judged on the preface.
//! On a session picked up mid-stream, whose client and server the engine could only guess,
//! the roles are tried both ways round (`kafka::either_role`).

use super::http;
use crate::app::probe::{at, be16, be32, Probe, ProbeCtx};

/// The client connection preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Frame header length.
const FRAME_HDR: usize = 9;
/// Frame types used here.
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const SETTINGS: u8 = 4;
/// SETTINGS flag.
const SETTINGS_ACK: u8 = 0x1;
/// HEADERS flags.
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// Frames walked before the first HEADERS at most.
const MAX_FRAMES: usize = 16;
/// Largest SETTINGS payload believed (a few dozen settings).
const MAX_SETTINGS: usize = 6 * 64;

/// A frame header.
#[derive(Clone, Copy, Debug)]
struct Frame {
    len: usize,
    ty: u8,
    flags: u8,
    stream: u32,
}

fn frame(b: &[u8], off: usize) -> Option<Frame> {
    let h = at(b, off, FRAME_HDR)?;
    Some(Frame {
        len: usize::from(h[0]) << 16 | usize::from(be16(h, 1)?),
        ty: h[3],
        flags: h[4],
        stream: be32(h, 5)? & 0x7fff_ffff,
    })
}

/// Is this the header of a client's or server's first SETTINGS frame? (Undefined flags
/// are ignored, as RFC 9113 §4.1 says; the stream id is not checked, the preface being
/// unique already.)
fn is_first_settings(f: Frame) -> bool {
    f.ty == SETTINGS
        && f.flags & SETTINGS_ACK == 0
        && f.len.is_multiple_of(6)
        && f.len <= MAX_SETTINGS
}

/// How `b` compares with `want`: all of it there (`Some(true)`), a prefix of it so far
/// (`None`), or different (`Some(false)`).
fn starts(b: &[u8], want: &[u8]) -> Option<bool> {
    let n = b.len().min(want.len());
    if b[..n] != want[..n] {
        Some(false)
    } else if n < want.len() {
        None
    } else {
        Some(true)
    }
}

fn undecided(done: bool) -> Probe {
    if done {
        Probe::No
    } else {
        Probe::NeedMore
    }
}

/// The server spoke and the client did not (yet): could this still be HTTP/2? A server
/// may send its SETTINGS before the client's preface arrives, and a `101` answers an
/// upgrade request the capture may have missed.
fn server_first(cx: &ProbeCtx<'_>) -> Probe {
    if cx.c2s_done {
        return Probe::No;
    }
    let s = cx.s2c;
    if s.is_empty() {
        return Probe::NeedMore;
    }
    if let Some(f) = frame(s, 0) {
        if is_first_settings(f) {
            return Probe::NeedMore;
        }
    } else if s.len() < FRAME_HDR && s[0] == 0 {
        return Probe::NeedMore; // a frame header on its way
    }
    match http::status_line(s) {
        http::Line::Complete(http::Flavor::Http) if at(s, 9, 3) == Some(b"101") => Probe::NeedMore,
        http::Line::Partial => Probe::NeedMore,
        _ => Probe::No,
    }
}

/// The client's bytes after the preface: `None` when they are not (all) there.
fn after_preface(c2s: &[u8]) -> Option<Option<&[u8]>> {
    match starts(c2s, PREFACE) {
        Some(true) => Some(Some(&c2s[PREFACE.len()..])),
        Some(false) => Some(None),
        None => None,
    }
}

/// HTTP/2 over cleartext TCP.
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    super::kafka::either_role(cx, probe_roles)
}

/// HTTP/2 over cleartext TCP, with the roles as given.
fn probe_roles(cx: &ProbeCtx<'_>) -> Probe {
    if cx.c2s.is_empty() {
        return server_first(cx);
    }
    match after_preface(cx.c2s) {
        None => undecided(cx.c2s_done),
        Some(Some(rest)) => match frame(rest, 0) {
            Some(f) if is_first_settings(f) => Probe::Match,
            Some(_) => Probe::No,
            None => undecided(cx.c2s_done),
        },
        Some(None) => upgrade(cx),
    }
}

/// An HTTP/1.1 request asking for `h2c`, answered by `101 Switching Protocols`.
fn upgrade(cx: &ProbeCtx<'_>) -> Probe {
    match http::request_line(cx.c2s) {
        http::Line::Complete(http::Flavor::Http) => {}
        http::Line::Partial => return undecided(cx.c2s_done),
        _ => return Probe::No,
    }
    match asks_h2c(cx.c2s) {
        Some(true) => {}
        Some(false) => return Probe::No,
        None => return undecided(cx.c2s_done),
    }
    if cx.s2c.is_empty() {
        return undecided(cx.s2c_done);
    }
    match http::status_line(cx.s2c) {
        http::Line::Complete(http::Flavor::Http) if at(cx.s2c, 9, 3) == Some(b"101") => {
            Probe::Match
        }
        http::Line::Partial => undecided(cx.s2c_done),
        _ => Probe::No,
    }
}

/// Does the request at the start of `b` carry `Upgrade: ...h2c...`? `None`: its header
/// block is not complete in `b`.
fn asks_h2c(b: &[u8]) -> Option<bool> {
    let mut rest = b;
    let mut first = true;
    loop {
        let nl = rest.iter().position(|&c| c == b'\n')?;
        let line = &rest[..nl];
        rest = &rest[nl + 1..];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if first {
            first = false;
            continue; // the request line
        }
        if line.is_empty() {
            return Some(false); // end of headers without the upgrade
        }
        let Some(colon) = line.iter().position(|&c| c == b':') else { continue };
        if !line[..colon].eq_ignore_ascii_case(b"upgrade") {
            continue;
        }
        let value = &line[colon + 1..];
        if value.split(|&c| c == b',').any(|t| trim(t).eq_ignore_ascii_case(b"h2c")) {
            return Some(true);
        }
    }
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// gRPC over cleartext HTTP/2.
pub fn probe_grpc(cx: &ProbeCtx<'_>) -> Probe {
    super::kafka::either_role(cx, probe_grpc_roles)
}

/// gRPC over cleartext HTTP/2, with the roles as given.
fn probe_grpc_roles(cx: &ProbeCtx<'_>) -> Probe {
    if cx.c2s.is_empty() {
        return server_first(cx);
    }
    let rest = match after_preface(cx.c2s) {
        None => return undecided(cx.c2s_done),
        Some(None) => return Probe::No,
        Some(Some(rest)) => rest,
    };
    match frame(rest, 0) {
        Some(f) if is_first_settings(f) => {}
        Some(_) => return Probe::No,
        None => return undecided(cx.c2s_done),
    }
    let mut off = 0;
    for _ in 0..MAX_FRAMES {
        let Some(f) = frame(rest, off) else { return undecided(cx.c2s_done) };
        let body = off + FRAME_HDR;
        if f.ty == DATA && f.stream != 0 {
            return Probe::No; // a request body before any request headers
        }
        if f.ty != HEADERS {
            off = body + f.len;
            continue;
        }
        if f.stream == 0 {
            return Probe::No;
        }
        // The header block fragment: what of the frame is there, less padding and priority.
        let avail = rest.get(body..).unwrap_or_default();
        let whole = avail.len() >= f.len;
        let payload = &avail[..avail.len().min(f.len)];
        let mut start = 0;
        let mut pad = 0;
        if f.flags & PADDED != 0 {
            let Some(&p) = payload.first() else { return undecided(cx.c2s_done) };
            pad = usize::from(p);
            start = 1;
        }
        if f.flags & PRIORITY != 0 {
            start += 5;
        }
        if start + pad > f.len {
            return Probe::No;
        }
        let end = if whole { f.len - pad } else { payload.len() };
        let block = payload.get(start..end.max(start)).unwrap_or_default();
        // A whole frame without END_HEADERS continues in CONTINUATION frames: judged on
        // this fragment alone.
        return match content_type(block) {
            Ct::Grpc => Probe::Match,
            Ct::Other => Probe::No,
            Ct::Absent if whole => Probe::No,
            Ct::Absent => undecided(cx.c2s_done),
        };
    }
    Probe::No
}

/// What a header block says about `content-type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ct {
    /// `application/grpc...`
    Grpc,
    /// Another content type, or a malformed block.
    Other,
    /// Not in the decoded part.
    Absent,
}

/// Index of `content-type` in the HPACK static table (RFC 7541 Appendix A).
const STATIC_CONTENT_TYPE: usize = 31;
/// Entries in the static table.
const STATIC_LEN: usize = 61;
/// Dynamic-table entries remembered while decoding one block.
const DYN_REMEMBERED: usize = 32;

/// Find `content-type` in an HPACK header block (the first of its connection, so the
/// dynamic table starts empty), decoding only what is needed. A block cut short reads as
/// `Absent` up to the cut.
fn content_type(block: &[u8]) -> Ct {
    // What this block added to the dynamic table, newest last: for each entry, whether
    // it is a content-type and, if so, whether gRPC's.
    let mut added = [Ct::Absent; DYN_REMEMBERED];
    let mut n_added = 0usize;
    let mut p = 0;
    while p < block.len() {
        let b = block[p];
        if b & 0x80 != 0 {
            // Indexed header field.
            let Some((idx, q)) = int(block, p, 7) else { return Ct::Absent };
            p = q;
            match lookup(idx, &added, n_added) {
                Some(Ct::Absent) => {}
                Some(ct) => return ct,
                None => return Ct::Other,
            }
            continue;
        }
        if b & 0xe0 == 0x20 {
            // Dynamic table size update.
            let Some((size, q)) = int(block, p, 5) else { return Ct::Absent };
            p = q;
            if size == 0 {
                n_added = 0;
            }
            continue;
        }
        // Literal: with incremental indexing (01), or without / never indexed (0000, 0001).
        let (prefix, indexing) = if b & 0x40 != 0 { (6, true) } else { (4, false) };
        let Some((idx, q)) = int(block, p, prefix) else { return Ct::Absent };
        p = q;
        let is_ct = if idx == 0 {
            let Some((name, q)) = string(block, p) else { return Ct::Absent };
            p = q;
            match name.eq(b"content-type") {
                Some(eq) => eq,
                None => return Ct::Other,
            }
        } else {
            match lookup(idx, &added, n_added) {
                Some(Ct::Absent) => idx == STATIC_CONTENT_TYPE,
                Some(_) => true,
                None => return Ct::Other,
            }
        };
        let Some((value, q)) = string(block, p) else { return Ct::Absent };
        p = q;
        let ct = if is_ct {
            match value.starts_with(b"application/grpc") {
                Some(true) => Ct::Grpc,
                _ => Ct::Other,
            }
        } else {
            Ct::Absent
        };
        if indexing {
            if n_added == DYN_REMEMBERED {
                added.copy_within(1.., 0);
                n_added -= 1;
            }
            added[n_added] = ct;
            n_added += 1;
        }
        if ct != Ct::Absent {
            return ct;
        }
    }
    Ct::Absent
}

/// A table index as a content-type verdict: `Absent` for the static table (whose
/// content-type entry has an empty value) and dynamic entries that are not one; `None`
/// for an index this block cannot resolve.
fn lookup(idx: usize, added: &[Ct; DYN_REMEMBERED], n_added: usize) -> Option<Ct> {
    if idx == 0 {
        return None;
    }
    if idx <= STATIC_LEN {
        return Some(if idx == STATIC_CONTENT_TYPE { Ct::Other } else { Ct::Absent });
    }
    let back = idx - STATIC_LEN - 1;
    if back >= n_added {
        return None;
    }
    Some(added[n_added - 1 - back])
}

/// An HPACK integer with an `n`-bit prefix at `b[p]` (RFC 7541 §5.1): the value and the
/// offset after it. Values past 2^28 are refused.
fn int(b: &[u8], p: usize, n: u32) -> Option<(usize, usize)> {
    let mask = (1usize << n) - 1;
    let mut v = usize::from(*b.get(p)?) & mask;
    let mut p = p + 1;
    if v < mask {
        return Some((v, p));
    }
    let mut shift = 0;
    loop {
        let c = *b.get(p)?;
        p += 1;
        v += usize::from(c & 0x7f) << shift;
        if c & 0x80 == 0 {
            return Some((v, p));
        }
        shift += 7;
        if shift > 21 {
            return None;
        }
    }
}

/// An HPACK string literal (RFC 7541 §5.2) at `b[p]`, and the offset after it.
fn string(b: &[u8], p: usize) -> Option<(Str<'_>, usize)> {
    let huffman = *b.get(p)? & 0x80 != 0;
    let (len, q) = int(b, p, 7)?;
    let bytes = at(b, q, len)?;
    Some((Str { bytes, huffman }, q + len))
}

/// A string literal, raw or Huffman-coded.
#[derive(Clone, Copy, Debug)]
struct Str<'a> {
    bytes: &'a [u8],
    huffman: bool,
}

impl Str<'_> {
    /// Does it begin with `want` (`whole`: and end there)? `None`: bad Huffman code.
    fn compare(&self, want: &[u8], whole: bool) -> Option<bool> {
        if !self.huffman {
            return Some(if whole { self.bytes == want } else { self.bytes.starts_with(want) });
        }
        let mut d = Huffman::new(self.bytes);
        for &w in want {
            match d.next_symbol() {
                Ok(Some(c)) if c == w => {}
                Ok(_) => return Some(false),
                Err(()) => return None,
            }
        }
        if !whole {
            return Some(true);
        }
        match d.next_symbol() {
            Ok(None) => Some(true),
            Ok(Some(_)) => Some(false),
            Err(()) => None,
        }
    }

    fn eq(&self, want: &[u8]) -> Option<bool> {
        self.compare(want, true)
    }

    fn starts_with(&self, want: &[u8]) -> Option<bool> {
        self.compare(want, false)
    }
}

/// Code lengths in bits of the HPACK Huffman code (RFC 7541 Appendix B), symbols 0–255
/// and EOS (256). The code is canonical: codes of one length are consecutive in symbol
/// order, and each length starts where the previous one ended, shifted left.
const CODE_LEN: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0x00
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 0x10
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // ' '..'/'
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // '0'..'?'
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // '@'..'O'
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 'P'..'_'
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // '`'..'o'
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 'p'..0x7f
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 0x80
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 0x90
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 0xa0
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 0xb0
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 0xc0
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 0xd0
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 0xe0
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 0xf0
    30, // EOS
];
const MAX_CODE_LEN: usize = 30;
const EOS: u16 = 256;

/// The canonical code, arranged for decoding: per length, the first code, how many codes
/// have it, and where its symbols start in `syms` (symbols sorted by length, then value).
#[derive(Debug)]
struct Canonical {
    first: [u32; MAX_CODE_LEN + 1],
    count: [u16; MAX_CODE_LEN + 1],
    start: [u16; MAX_CODE_LEN + 1],
    syms: [u16; 257],
}

const fn canonical() -> Canonical {
    let mut c = Canonical {
        first: [0; MAX_CODE_LEN + 1],
        count: [0; MAX_CODE_LEN + 1],
        start: [0; MAX_CODE_LEN + 1],
        syms: [0; 257],
    };
    let mut n = 0;
    let mut code = 0u32;
    let mut len = 1;
    while len <= MAX_CODE_LEN {
        c.first[len] = code;
        c.start[len] = n as u16;
        let mut s = 0;
        while s < 257 {
            if CODE_LEN[s] as usize == len {
                c.syms[n] = s as u16;
                n += 1;
                c.count[len] += 1;
            }
            s += 1;
        }
        code = (code + c.count[len] as u32) << 1;
        len += 1;
    }
    c
}

static CANONICAL: Canonical = canonical();

/// A Huffman-coded string, decoded one symbol at a time.
#[derive(Debug)]
struct Huffman<'a> {
    src: &'a [u8],
    bit: usize,
}

impl<'a> Huffman<'a> {
    fn new(src: &'a [u8]) -> Self {
        Huffman { src, bit: 0 }
    }

    /// The next symbol; `Ok(None)` at the end (only valid padding left); `Err` for EOS,
    /// a code longer than 30 bits, or padding that is not a prefix of EOS.
    fn next_symbol(&mut self) -> Result<Option<u8>, ()> {
        let c = &CANONICAL;
        let mut code = 0u32;
        let mut len = 0usize;
        while let Some(&byte) = self.src.get(self.bit / 8) {
            let bit = (byte >> (7 - self.bit % 8)) & 1;
            self.bit += 1;
            code = code << 1 | u32::from(bit);
            len += 1;
            if len > MAX_CODE_LEN {
                return Err(());
            }
            if let Some(i) = code.checked_sub(c.first[len]) {
                if i < u32::from(c.count[len]) {
                    let sym = c.syms[usize::from(c.start[len]) + i as usize];
                    return if sym == EOS { Err(()) } else { Ok(Some(sym as u8)) };
                }
            }
        }
        // Padding: at most 7 bits, all ones (the start of EOS).
        if len <= 7 && code == (1 << len) - 1 {
            Ok(None)
        } else {
            Err(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Dir;

    fn hex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(|c| c.is_ascii_hexdigit()).collect();
        s.chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    fn cx<'a>(c2s: &'a [u8], s2c: &'a [u8]) -> ProbeCtx<'a> {
        ProbeCtx {
            proto: 6,
            client_port: 37824,
            server_port: 29518,
            c2s,
            s2c,
            c2s_done: false,
            s2c_done: false,
            first: Some(Dir::ToServer),
            mid_stream: false,
        }
    }

    /// Huffman-encode (the inverse of the decoder's table; checked against RFC vectors by
    /// `huffman_code_is_complete_and_decodes_rfc_examples`).
    fn encode(s: &[u8]) -> Vec<u8> {
        let c = &CANONICAL;
        let code_of = |sym: u16| {
            let len = usize::from(CODE_LEN[usize::from(sym)]);
            let start = usize::from(c.start[len]);
            let i = c.syms[start..].iter().position(|&x| x == sym).unwrap();
            (c.first[len] + i as u32, len)
        };
        let (mut acc, mut n, mut out) = (0u64, 0, vec![]);
        for &ch in s {
            let (code, len) = code_of(u16::from(ch));
            acc = acc << len | u64::from(code);
            n += len;
            while n >= 8 {
                out.push((acc >> (n - 8)) as u8);
                n -= 8;
            }
        }
        if n > 0 {
            out.push(((acc << (8 - n)) as u8) | ((1u8 << (8 - n)) - 1));
        }
        out
    }

    fn decode(b: &[u8]) -> Result<Vec<u8>, ()> {
        let mut d = Huffman::new(b);
        let mut out = vec![];
        while let Some(c) = d.next_symbol()? {
            out.push(c);
        }
        Ok(out)
    }

    // ndpi/pcap/http2.pcapng, 127.0.0.1:37824 -> :29518 (a 5G SBI client): the preface
    // and SETTINGS, then a HEADERS frame with `content-type: application/json`.
    const SBI_C2S_1: &str = "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a0000120400000000\
        00000200000000000400400000000600a0000000000408000000000040000000";
    const SBI_C2S_2: &str = "00005d010400000003418b089d5c0b8170dc13ed85ef83459362a1d32ac43d34b1\
        dc2c22d8d04b0d5a4c7a91865f8b1d75d0620d263d4c7441ea538b1d75d0620d263d4c7441ea7a93d5596a\
        875e45b116a2d8349ec602b81703131f5c0331333550839bd9ab";
    const SBI_S2C: &str = "0000180400000000000005001000000003000000fa000600100140000400100000";

    // A gRPC call made with Node.js 20 (nghttp2) through a recording proxy: the client's
    // preface, SETTINGS, and HEADERS (`content-type: application/grpc`, Huffman-coded).
    // The corpus has no gRPC capture.
    const GRPC_C2S: &str = "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a000000040000000000\
        00006e0104000000018304956272d141fc1eca245f15852a4b631b87eb1968a0ff418b089d5c0b8170dc68\
        2213bf865f8b1d75d0620d263d4c4d656440027465864d833505b11f408e9acac8b0c842d6958b510f21aa\
        9b903485a9264fafa90b2d03497ea6f66aff7a8d9acac8b54790ab7443015df5c100000c00010000000100\
        000000070a05776f726c64";

    // suricata-verify http2-keywords2: an h2c upgrade request and its 101.
    const UPGRADE_REQ: &str = "474554202f726f626f74732e74787420485454502f312e310d0a486f73743a20\
        6e6768747470322e6f72670d0a557365722d4167656e743a206375726c2f372e36312e300d0a4163636570\
        743a202a2f2a0d0a436f6e6e656374696f6e3a20557067726164652c2048545450322d53657474696e6773\
        0d0a557067726164653a206832630d0a48545450322d53657474696e67733a2041414d414141426b414152\
        414141414141414941414141410d0a0d0a";
    const UPGRADE_RESP: &str = "485454502f312e312031303120537769746368696e672050726f746f636f6c\
        730d0a436f6e6e656374696f6e3a20557067726164650d0a557067726164653a206832630d0a0d0a0000120\
        40000000000000300000064000400100000000100002000";

    // suricata-verify app-layer-protocol-exact: DNS over HTTP/2 (GET), a HEADERS frame
    // with PRIORITY and no content-type (first 60 bytes of the frame).
    const DOH_C2S: &str = "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a00001e04000000000000\
        01000100000002000000000003000003e800040060000000060004000000000408000000000000ef000100\
        00c5012500000001800000009282418792a42f31cf35058704ff0f624a90b76b4b67aff24a910430c376";

    const TLS_HELLO: &[u8] = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    const HTTP_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";

    #[test]
    fn huffman_code_is_complete_and_decodes_rfc_examples() {
        // Kraft: a complete prefix code has sum(2^-len) == 1.
        let sum: u64 = CODE_LEN.iter().map(|&l| 1u64 << (30 - l)).sum();
        assert_eq!(sum, 1 << 30);
        // RFC 7541 C.4 and C.6.
        assert_eq!(decode(&hex("f1e3c2e5f23a6ba0ab90f4ff")).unwrap(), b"www.example.com");
        assert_eq!(decode(&hex("a8eb10649cbf")).unwrap(), b"no-cache");
        assert_eq!(decode(&hex("25a849e95ba97d7f")).unwrap(), b"custom-key");
        assert_eq!(decode(&hex("25a849e95bb8e8b4bf")).unwrap(), b"custom-value");
        assert_eq!(decode(&hex("6402")).unwrap(), b"302");
        assert_eq!(decode(&hex("aec3771a4b")).unwrap(), b"private");
        assert_eq!(
            decode(&hex("d07abe941054d444a8200595040b8166e082a62d1bff")).unwrap(),
            b"Mon, 21 Oct 2013 20:13:21 GMT"
        );
        assert_eq!(
            decode(&hex("9d29ad171863c78f0b97c8e9ae82ae43d3")).unwrap(),
            b"https://www.example.com"
        );
        assert_eq!(decode(&hex("1d75d0620d263d4c7441ea")).unwrap(), b"application/json");
        // Padding longer than 7 bits, padding with a zero, EOS itself.
        assert!(decode(&hex("a8eb10649cbfff")).is_err());
        assert!(decode(&hex("a8eb10649cbe")).is_err());
        assert!(decode(&hex("fffffffc")).is_err());
    }

    #[test]
    fn prior_knowledge_preface() {
        let c = hex(SBI_C2S_1);
        assert_eq!(probe(&cx(&c, b"")), Probe::Match);
        for n in [1, 10, 23, 24, 30] {
            assert_eq!(probe(&cx(&c[..n], b"")), Probe::NeedMore, "{n} bytes");
        }
        let mut done = cx(&c[..30], b"");
        done.c2s_done = true;
        assert_eq!(probe(&done), Probe::No);
        // Preface followed by something other than SETTINGS.
        let mut bad = c[..24].to_vec();
        bad.extend_from_slice(&hex("000008060000000000")); // PING
        assert_eq!(probe(&cx(&bad, b"")), Probe::No);
    }

    #[test]
    fn server_settings_first_waits_for_the_preface() {
        // suricata-verify http2-keywords: the server's SETTINGS came first.
        let s = hex("000006040000000000000300000064");
        assert_eq!(probe(&cx(b"", &s)), Probe::NeedMore);
        assert_eq!(probe_grpc(&cx(b"", &s)), Probe::NeedMore);
        assert_eq!(probe(&cx(b"", b"SSH-2.0-OpenSSH_9.6\r\n")), Probe::No);
        assert_eq!(probe(&cx(b"", b"\x0a\x00\x00\x00\x0a8.0.36\x00")), Probe::No, "MySQL");
        let mut done = cx(b"", &s);
        done.c2s_done = true;
        assert_eq!(probe(&done), Probe::No);
    }

    #[test]
    fn h2c_upgrade() {
        let req = hex(UPGRADE_REQ);
        let resp = hex(UPGRADE_RESP);
        assert_eq!(probe(&cx(&req, &resp)), Probe::Match);
        assert_eq!(probe(&cx(&req, b"")), Probe::NeedMore);
        assert_eq!(probe(&cx(&req[..60], b"")), Probe::NeedMore, "headers not complete");
        assert_eq!(probe(&cx(&req, b"HTTP/1.1 200 OK\r\n")), Probe::No, "upgrade refused");
        assert_eq!(probe(&cx(&req, &resp[..5])), Probe::NeedMore);
        assert_eq!(probe_grpc(&cx(&req, &resp)), Probe::No);
        // suricata-verify drop-protocol-change: a 101 first (the request was not captured),
        // then the preface and a SETTINGS frame with odd flags and stream id.
        assert_eq!(probe(&cx(b"", &resp)), Probe::NeedMore);
        let mut c = PREFACE.to_vec();
        c.extend_from_slice(&hex("000012041200010000000000001d64000440000000000200000000"));
        assert_eq!(probe(&cx(&c, &resp)), Probe::Match);
        c[24 + 4] = 0x01; // ACK: not a first SETTINGS
        assert_eq!(probe(&cx(&c, &resp)), Probe::No);
    }

    #[test]
    fn other_protocols_are_not_http2() {
        assert_eq!(probe(&cx(HTTP_GET, b"HTTP/1.1 200 OK\r\n")), Probe::No);
        assert_eq!(probe(&cx(HTTP_GET, b"")), Probe::No, "no upgrade asked");
        assert_eq!(probe(&cx(TLS_HELLO, b"")), Probe::No);
        assert_eq!(probe(&cx(b"\x00\x1c\x12\x34\x01\x00", b"")), Probe::No, "DNS over TCP");
        assert_eq!(probe(&cx(b"AMQP\x00\x00\x09\x01", b"")), Probe::No);
        assert_eq!(probe(&cx(b"CONNECT {\"verbose\":false}\r\n", b"")), Probe::No);
        assert_eq!(probe_grpc(&cx(HTTP_GET, b"")), Probe::No);
        assert_eq!(probe_grpc(&cx(TLS_HELLO, b"")), Probe::No);
        assert_eq!(probe_grpc(&cx(b"\x10\x40\x00\x06MQIsdp\x03", b"")), Probe::No);
    }

    #[test]
    fn grpc_content_type() {
        let c = hex(GRPC_C2S);
        assert_eq!(probe_grpc(&cx(&c, b"")), Probe::Match);
        assert_eq!(probe(&cx(&c, b"")), Probe::Match, "and HTTP/2 underneath");
        // Until the HEADERS frame is in, gRPC waits.
        for n in [10, 24, 33, 40, 50] {
            assert_eq!(probe_grpc(&cx(&c[..n], b"")), Probe::NeedMore, "{n} bytes");
        }
        let mut done = cx(&c[..40], b"");
        done.c2s_done = true;
        assert_eq!(probe_grpc(&done), Probe::No);
    }

    #[test]
    fn http2_without_grpc_is_left_to_http2() {
        let mut c = hex(SBI_C2S_1);
        assert_eq!(probe_grpc(&cx(&c, b"")), Probe::NeedMore, "no HEADERS yet");
        c.extend_from_slice(&hex(SBI_C2S_2));
        assert_eq!(probe_grpc(&cx(&c, &hex(SBI_S2C))), Probe::No);
        assert_eq!(probe(&cx(&c, &hex(SBI_S2C))), Probe::Match);
        // PRIORITY flag, no content-type at all.
        let d = hex(DOH_C2S);
        assert_eq!(probe_grpc(&cx(&d, b"")), Probe::NeedMore, "frame cut, no answer yet");
        let mut done = cx(&d, b"");
        done.c2s_done = true;
        assert_eq!(probe_grpc(&done), Probe::No);
        assert_eq!(probe(&cx(&d, b"")), Probe::Match);
    }

    #[test]
    fn hpack_forms() {
        // Literal with a raw literal name, never indexed.
        let mut b = vec![0x10, 12];
        b.extend_from_slice(b"content-type");
        b.push(21);
        b.extend_from_slice(b"application/grpc+json");
        assert_eq!(content_type(&b), Ct::Grpc);
        // Literal with indexing, indexed name (static 31), raw value; then a later field
        // referring to the new dynamic entry (62).
        let mut b = vec![0x40 | 31, 16];
        b.extend_from_slice(b"application/json");
        assert_eq!(content_type(&b), Ct::Other);
        let mut b = vec![0x7f, 0x00, 3]; // index 63 (none), value "abc"
        b.extend_from_slice(b"abc");
        assert_eq!(content_type(&b), Ct::Other, "an index the block cannot resolve");
        // A dynamic entry added as `x: y`, an indexed field, then content-type by static
        // index 31 without indexing.
        let mut b = vec![0x40, 1, b'x', 1, b'y', 0x82]; // x: y, then :method GET
        b.extend_from_slice(&[0x0f, 0x10, 16]); // without indexing, name index 31
        b.extend_from_slice(b"application/grpc");
        assert_eq!(content_type(&b), Ct::Grpc);
        // An indexed field pointing at a content-type this block added.
        let mut b = vec![0x40 | 31, 16];
        b.extend_from_slice(b"application/grpc");
        assert_eq!(content_type(&b), Ct::Grpc);
        assert_eq!(content_type(&[0x82, 0x86, 0x84]), Ct::Absent);
        // Huffman-coded literal name and value.
        let mut b = vec![0x00];
        for s in [&b"content-type"[..], b"application/grpc"] {
            let h = encode(s);
            b.push(0x80 | h.len() as u8);
            b.extend_from_slice(&h);
        }
        assert_eq!(content_type(&b), Ct::Grpc);
        b[2] ^= 0x40; // another name
        assert_eq!(content_type(&b), Ct::Absent);
        assert_eq!(content_type(&[0xbf]), Ct::Other, "static content-type, empty value");
        assert_eq!(content_type(&[0x3f, 0xe1, 0x1f, 0x82]), Ct::Absent, "size update");
        assert_eq!(content_type(&[0x0f, 0x10, 0x90, 0xff]), Ct::Absent, "cut short");
        assert_eq!(int(&[0x1f, 0x9a, 0x0a], 0, 5), Some((1337, 3)), "RFC 7541 C.1.2");
        assert_eq!(int(&[0x7f, 0xff, 0xff, 0xff, 0xff, 0x7f], 0, 7), None);
    }

    #[test]
    fn never_panics_on_prefixes_and_noise() {
        let c = hex(GRPC_C2S);
        for n in 0..c.len() {
            let _ = probe_grpc(&cx(&c[..n], b""));
            let _ = probe(&cx(&c[..n], b""));
        }
        let mut x = 0x1234_5678u32;
        let mut buf = PREFACE.to_vec();
        buf.extend_from_slice(&hex("000000040000000000"));
        buf.extend_from_slice(&hex("0000300125000000010000000000"));
        for _ in 0..2000 {
            let mut b = buf.clone();
            for _ in 0..64 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                b.push(x as u8);
            }
            let _ = probe_grpc(&cx(&b, b""));
            let _ = content_type(&b[42..]);
        }
    }
}
