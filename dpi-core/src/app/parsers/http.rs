//! HTTP/1.x (RFC 9112), and the request/status lines RTSP (RFC 7826) and SIP (RFC 3261)
//! share with it.
//!
//! Identification: the client's first bytes are a request line `METHOD SP target SP
//! HTTP/1.x CRLF` (method: 1–16 uppercase letters or `-`/`_`; the HTTP/2 preface `PRI *
//! HTTP/2.0` is not HTTP/1), or, on a session picked up mid-stream, the server's first
//! bytes are a status line `HTTP/1.x NNN`. RTSP and SIP are the same with `RTSP/1.0` and
//! `SIP/2.0`. Extraction: the `Host` header of the first request (the session's virtual
//! host for vhost rules).

use crate::app::probe::{Probe, ProbeCtx};

/// Longest request line looked at before giving up.
const MAX_LINE: usize = 8192;
const MAX_METHOD: usize = 16;

/// Which protocol a request or status line names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// HTTP/1.x
    Http,
    /// RTSP/1.0 or 2.0
    Rtsp,
    /// SIP/2.0
    Sip,
}

/// What a line parse found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete, valid line of this flavour.
    Complete(Flavor),
    /// Valid so far, cut short.
    Partial,
    /// Not such a line.
    Invalid,
}

/// A request line, as far as `b` shows.
pub fn request_line(b: &[u8]) -> Line {
    match request_line_inner(b) {
        Ok(Some(f)) => Line::Complete(f),
        Ok(None) => Line::Partial,
        Err(()) => Line::Invalid,
    }
}

/// A status line `HTTP/1.x NNN ` (or RTSP/SIP) at the start of `b`.
pub fn status_line(b: &[u8]) -> Line {
    match status_line_inner(b) {
        Ok(Some(f)) => Line::Complete(f),
        Ok(None) => Line::Partial,
        Err(()) => Line::Invalid,
    }
}

fn request_line_inner(b: &[u8]) -> Result<Option<Flavor>, ()> {
    // Method.
    let mut i = 0;
    while i < b.len() && b[i] != b' ' {
        let c = b[i];
        if !(c.is_ascii_uppercase() || c == b'-' || c == b'_') || i >= MAX_METHOD {
            return Err(());
        }
        i += 1;
    }
    if i == b.len() {
        return Ok(None);
    }
    if i == 0 {
        return Err(());
    }
    let method = &b[..i];
    // Lenient about runs of spaces between the parts (seen in the wild; RFC 9112 §3
    // allows a recipient to be).
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    // Target: visible characters up to the next space.
    let start = i;
    while i < b.len() && b[i] != b' ' {
        if b[i] <= b' ' || b[i] == 0x7f || i > MAX_LINE {
            return Err(());
        }
        i += 1;
    }
    if i == b.len() {
        return Ok(None);
    }
    if i == start {
        return Err(());
    }
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    // Version and CRLF (or a bare LF).
    let rest = &b[i..];
    let flavor = version(rest)?;
    let Some(flavor) = flavor else { return Ok(None) };
    if method == b"PRI" {
        return Err(()); // the HTTP/2 connection preface
    }
    Ok(Some(flavor))
}

/// `HTTP/1.x`, `RTSP/1.0`, `SIP/2.0` followed by CR LF, or a prefix of one.
fn version(rest: &[u8]) -> Result<Option<Flavor>, ()> {
    const FORMS: [(&[u8], Flavor); 5] = [
        (b"HTTP/1.1", Flavor::Http),
        (b"HTTP/1.0", Flavor::Http),
        (b"RTSP/1.0", Flavor::Rtsp),
        (b"RTSP/2.0", Flavor::Rtsp),
        (b"SIP/2.0", Flavor::Sip),
    ];
    for (f, flavor) in FORMS {
        let n = rest.len().min(f.len());
        if rest[..n] != f[..n] {
            continue;
        }
        if rest.len() < f.len() {
            return Ok(None);
        }
        return match rest.get(f.len()) {
            None => Ok(None),
            Some(b'\r') => match rest.get(f.len() + 1) {
                None => Ok(None),
                Some(b'\n') => Ok(Some(flavor)),
                Some(_) => Err(()),
            },
            Some(b'\n') => Ok(Some(flavor)),
            Some(_) => Err(()),
        };
    }
    Err(())
}

fn status_line_inner(b: &[u8]) -> Result<Option<Flavor>, ()> {
    let Some(sp) = b.iter().position(|&c| c == b' ') else {
        return if b.len() > 8 { Err(()) } else { Ok(None) };
    };
    let flavor = match &b[..sp] {
        b"HTTP/1.1" | b"HTTP/1.0" => Flavor::Http,
        b"RTSP/1.0" | b"RTSP/2.0" => Flavor::Rtsp,
        b"SIP/2.0" => Flavor::Sip,
        _ => return Err(()),
    };
    match b.get(sp + 1..sp + 5) {
        None => Ok(None),
        Some(code) if code[..3].iter().all(u8::is_ascii_digit) && code[3] == b' ' => {
            Ok(Some(flavor))
        }
        Some(_) => Err(()),
    }
}

fn probe_flavor(cx: &ProbeCtx<'_>, want: Flavor) -> Probe {
    if !cx.c2s.is_empty() {
        match request_line(cx.c2s) {
            Line::Complete(f) if f == want => return Probe::Match,
            Line::Complete(_) => return Probe::No,
            Line::Partial if !cx.c2s_done && cx.c2s.len() < MAX_LINE => return Probe::NeedMore,
            _ if !cx.mid_stream => return Probe::No,
            _ => {}
        }
    }
    if !cx.s2c.is_empty() {
        return match status_line(cx.s2c) {
            // A response without a request is only evidence mid-stream (or when the
            // capture missed the request).
            Line::Complete(f) if f == want && (cx.mid_stream || cx.c2s.is_empty()) => Probe::Match,
            Line::Partial if !cx.s2c_done => Probe::NeedMore,
            _ => Probe::No,
        };
    }
    if cx.s2c_done {
        Probe::No
    } else {
        Probe::NeedMore
    }
}

/// HTTP/1.x.
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    probe_flavor(cx, Flavor::Http)
}

/// RTSP.
pub fn probe_rtsp(cx: &ProbeCtx<'_>) -> Probe {
    probe_flavor(cx, Flavor::Rtsp)
}

/// SIP (over TCP or UDP).
pub fn probe_sip(cx: &ProbeCtx<'_>) -> Probe {
    probe_flavor(cx, Flavor::Sip)
}

/// The value of the first `Host` header of the request at the start of `b`, without a
/// port, if the header block holding it is in `b`.
pub fn host(b: &[u8]) -> Option<&str> {
    let mut lines = b.split(|&c| c == b'\n').skip(1);
    for line in lines.by_ref() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None; // end of headers
        }
        let Some(colon) = line.iter().position(|&c| c == b':') else { continue };
        if !line[..colon].eq_ignore_ascii_case(b"host") {
            continue;
        }
        let v = trim(&line[colon + 1..]);
        // Drop a port (not inside an IPv6 literal).
        let v = match v.iter().rposition(|&c| c == b':') {
            Some(i) if !v.contains(&b']') || v[..i].ends_with(b"]") => &v[..i],
            _ => v,
        };
        return core::str::from_utf8(v).ok().filter(|s| !s.is_empty() && s.len() <= 253);
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Dir;

    fn cx<'a>(c2s: &'a [u8], s2c: &'a [u8]) -> ProbeCtx<'a> {
        ProbeCtx {
            proto: 6,
            client_port: 40000,
            server_port: 8080,
            c2s,
            s2c,
            c2s_done: false,
            s2c_done: false,
            first: Some(Dir::ToServer),
            mid_stream: false,
        }
    }

    #[test]
    fn request_lines() {
        assert_eq!(probe(&cx(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"")), Probe::Match);
        assert_eq!(probe(&cx(b"PROPFIND /x HTTP/1.1\r\n", b"")), Probe::Match);
        assert_eq!(probe(&cx(b"GET     /x   HTTP/1.1\r\n", b"")), Probe::Match);
        assert_eq!(probe(&cx(b"GET /long/pa", b"")), Probe::NeedMore);
        assert_eq!(probe(&cx(b"GET / HTTP/1.", b"")), Probe::NeedMore);
        assert_eq!(probe(&cx(b"get / HTTP/1.1\r\n", b"")), Probe::No);
        assert_eq!(probe(&cx(b"\x16\x03\x01", b"")), Probe::No);
        assert_eq!(probe(&cx(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"")), Probe::No);
        assert_eq!(probe(&cx(b"OPTIONS rtsp://x/ RTSP/1.0\r\n", b"")), Probe::No);
        assert_eq!(probe_rtsp(&cx(b"OPTIONS rtsp://x/ RTSP/1.0\r\n", b"")), Probe::Match);
        assert_eq!(probe_sip(&cx(b"INVITE sip:bob@x SIP/2.0\r\n", b"")), Probe::Match);
    }

    #[test]
    fn responses_only_count_mid_stream() {
        let mut c = cx(b"", b"HTTP/1.1 200 OK\r\n");
        assert_eq!(probe(&c), Probe::Match, "request not seen");
        c.c2s = b"\x00\x01garbage";
        assert_eq!(probe(&c), Probe::No);
        c.mid_stream = true;
        assert_eq!(probe(&c), Probe::Match);
    }

    #[test]
    fn host_header() {
        let req = b"GET / HTTP/1.1\r\nUser-Agent: x\r\nhOsT:  Example.COM:8080 \r\n\r\n";
        assert_eq!(host(req), Some("Example.COM"));
        assert_eq!(host(b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"), Some("[::1]"));
        assert_eq!(host(b"GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n"), Some("[::1]"));
        assert_eq!(host(b"GET / HTTP/1.1\r\nX: y\r\n\r\nHost: late\r\n"), None);
    }
}
