//! TLS (RFC 8446, RFC 5246) and SSL 3.0/2.0 hellos.
//!
//! Identification: the client's first record is a TLS handshake record (type 22, version
//! 3.x, a sane length) carrying a ClientHello, or an SSLv2-framed ClientHello; mid-stream:
//! both directions start with a valid TLS record header. Extraction: the SNI host name of
//! the ClientHello (RFC 6066 §3).

use crate::app::probe::{at, be16, Probe, ProbeCtx};

/// Largest TLS record (2^14 plus the expansion TLS 1.2 allows).
const MAX_RECORD: u16 = 16384 + 2048;

/// Is `b` the start of a TLS record (of any content type)? `None`: too short to say.
fn record_header(b: &[u8]) -> Option<bool> {
    let h = at(b, 0, 5)?;
    let len = u16::from_be_bytes([h[3], h[4]]);
    Some(matches!(h[0], 20..=23) && h[1] == 3 && h[2] <= 4 && len > 0 && len <= MAX_RECORD)
}

/// Is `b` a ClientHello (TLS-framed or SSLv2-framed)? `None`: too short to say.
fn client_hello(b: &[u8]) -> Option<bool> {
    let first = *b.first()?;
    if first == 22 {
        let h = at(b, 0, 6)?;
        let len = u16::from_be_bytes([h[3], h[4]]);
        return Some(h[1] == 3 && h[2] <= 4 && (4..=MAX_RECORD).contains(&len) && h[5] == 1);
    }
    if first & 0x80 != 0 {
        // SSLv2 record: 2-byte length with the high bit set, then msg type 1 and a
        // version 0x0002 or 0x03xx.
        let h = at(b, 0, 5)?;
        let len = u16::from_be_bytes([h[0] & 0x7f, h[1]]);
        return Some(
            len >= 9 && h[2] == 1 && ((h[3] == 0 && h[4] == 2) || (h[3] == 3 && h[4] <= 4)),
        );
    }
    Some(false)
}

/// TLS.
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    // Picked up mid-stream with only one side talking: that side's record header.
    if cx.mid_stream && cx.c2s.is_empty() && cx.s2c_done {
        return if record_header(cx.s2c) == Some(true) { Probe::Match } else { Probe::No };
    }
    if cx.mid_stream && cx.s2c.is_empty() && cx.c2s_done {
        return if record_header(cx.c2s) == Some(true) { Probe::Match } else { Probe::No };
    }
    if cx.mid_stream {
        return match (record_header(cx.c2s), record_header(cx.s2c)) {
            (Some(true), Some(true)) => Probe::Match,
            (Some(false), _) | (_, Some(false)) => Probe::No,
            _ if cx.c2s_done && cx.s2c_done => Probe::No,
            _ => Probe::NeedMore,
        };
    }
    if cx.c2s.is_empty() {
        // The server spoke first: not TLS, unless the capture missed the hello (then the
        // server's handshake record says so) or shows only the server's side of a
        // connection picked up mid-stream (then any record header does).
        return match record_header(cx.s2c) {
            Some(true) if cx.s2c.first() == Some(&22) => Probe::Match,
            None if !cx.s2c_done => Probe::NeedMore,
            _ => Probe::No,
        };
    }
    match client_hello(cx.c2s) {
        Some(true) => Probe::Match,
        Some(false) => Probe::No,
        None if cx.c2s_done => Probe::No,
        None => Probe::NeedMore,
    }
}

/// The SNI host name of the ClientHello at the start of `b` (a TLS handshake record), if
/// the hello is complete in `b` and has one.
pub fn sni(b: &[u8]) -> Option<&str> {
    let rec_len = usize::from(be16(b, 3)?);
    if b.first() != Some(&22) {
        return None;
    }
    // The handshake message may span records; look only within the first record, where a
    // ClientHello of normal size is.
    let body = at(b, 5, rec_len).or_else(|| b.get(5..))?;
    if body.first() != Some(&1) {
        return None;
    }
    let hs_len = usize::from(*body.get(1)?) << 16 | usize::from(be16(body, 2)?);
    let hello = at(body, 4, hs_len)?;
    let mut p = 2 + 32; // client_version, random
    p += 1 + usize::from(*hello.get(p)?); // session_id
    p += 2 + usize::from(be16(hello, p)?); // cipher_suites
    p += 1 + usize::from(*hello.get(p)?); // compression_methods
    let ext_len = usize::from(be16(hello, p)?);
    let mut exts = at(hello, p + 2, ext_len)?;
    while exts.len() >= 4 {
        let ty = be16(exts, 0)?;
        let len = usize::from(be16(exts, 2)?);
        let data = at(exts, 4, len)?;
        if ty == 0 {
            // server_name_list: u16 length, then (name_type u8, name u16-prefixed)*
            let list = at(data, 2, usize::from(be16(data, 0)?))?;
            let mut q = list;
            while q.len() >= 3 {
                let nlen = usize::from(be16(q, 1)?);
                let name = at(q, 3, nlen)?;
                if q[0] == 0 {
                    return core::str::from_utf8(name).ok().filter(|s| !s.is_empty());
                }
                q = q.get(3 + nlen..)?;
            }
            return None;
        }
        exts = exts.get(4 + len..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Dir;

    /// A minimal ClientHello record with an SNI extension for `name`.
    pub(crate) fn hello(name: &str) -> Vec<u8> {
        let mut sni = vec![0, 0];
        let list_len = (3 + name.len()) as u16;
        let mut ext_data = list_len.to_be_bytes().to_vec();
        ext_data.push(0);
        ext_data.extend_from_slice(&(name.len() as u16).to_be_bytes());
        ext_data.extend_from_slice(name.as_bytes());
        sni.extend_from_slice(&(ext_data.len() as u16).to_be_bytes());
        sni.extend_from_slice(&ext_data);
        let mut h = vec![3, 3];
        h.extend_from_slice(&[7; 32]);
        h.push(0);
        h.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
        h.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        h.extend_from_slice(&sni);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&(h.len() as u16).to_be_bytes());
        hs.extend_from_slice(&h);
        let mut rec = vec![22, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    fn cx<'a>(c2s: &'a [u8], s2c: &'a [u8]) -> ProbeCtx<'a> {
        ProbeCtx {
            proto: 6,
            client_port: 40000,
            server_port: 9443,
            c2s,
            s2c,
            c2s_done: false,
            s2c_done: false,
            first: Some(Dir::ToServer),
            mid_stream: false,
        }
    }

    #[test]
    fn client_hello_and_sni() {
        let h = hello("api.example.com");
        assert_eq!(probe(&cx(&h, b"")), Probe::Match);
        assert_eq!(probe(&cx(&h[..3], b"")), Probe::NeedMore);
        assert_eq!(probe(&cx(b"GET / HTTP/1.1\r\n", b"")), Probe::No);
        assert_eq!(sni(&h), Some("api.example.com"));
        assert_eq!(sni(&h[..h.len() - 3]), None, "cut short");
        // A record header claiming a long record, then only the message type (fuzzer).
        assert_eq!(sni(&[0x16, 0x03, 0x01, 0x3f, 0x16, 0x01]), None);
        let v2 = [0x80, 0x2e, 0x01, 0x03, 0x01, 0, 0x15];
        assert_eq!(probe(&cx(&v2, b"")), Probe::Match);
    }

    #[test]
    fn midstream_needs_both_directions() {
        let rec = [23u8, 3, 3, 0, 10, 1, 2, 3];
        let mut c = cx(&rec, b"");
        c.mid_stream = true;
        assert_eq!(probe(&c), Probe::NeedMore);
        c.s2c = &rec;
        assert_eq!(probe(&c), Probe::Match);
    }
}
