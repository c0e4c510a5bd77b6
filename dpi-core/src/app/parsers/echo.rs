//! Echo (RFC 862), over TCP and UDP.
//!
//! Echo has no signature of its own, so this is the one identification that starts from
//! the port: the server's port is 7. To claim only sessions that behave as Echo there, the
//! server's first bytes must repeat the client's (TCP: as far as both directions are in,
//! at least one byte; UDP: the whole datagram).

use crate::app::probe::{Probe, ProbeCtx};

/// Echo's port.
pub const PORT: u16 = 7;

/// Echo.
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    if cx.server_port != PORT {
        return Probe::No;
    }
    let (c, s) = (cx.c2s, cx.s2c);
    if c.is_empty() {
        // The server never speaks first.
        return if cx.c2s_done || !s.is_empty() { Probe::No } else { Probe::NeedMore };
    }
    if s.is_empty() {
        return if cx.s2c_done { Probe::No } else { Probe::NeedMore };
    }
    let same = if cx.is_tcp() {
        let n = c.len().min(s.len());
        c[..n] == s[..n]
    } else {
        c == s
    };
    if same {
        Probe::Match
    } else {
        Probe::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Dir;

    fn cx<'a>(proto: u8, c2s: &'a [u8], s2c: &'a [u8]) -> ProbeCtx<'a> {
        ProbeCtx {
            proto,
            client_port: 40000,
            server_port: PORT,
            c2s,
            s2c,
            c2s_done: false,
            s2c_done: false,
            first: Some(Dir::ToServer),
            mid_stream: false,
        }
    }

    // The corpus has no Echo capture; any bytes do (an HTTP request line here).
    const LINE: &[u8] = b"GET / HTTP/1.1\r\n";

    #[test]
    fn echoed_bytes_on_port_7() {
        assert_eq!(probe(&cx(6, LINE, LINE)), Probe::Match);
        assert_eq!(probe(&cx(6, LINE, &LINE[..5])), Probe::Match, "echo in pieces");
        assert_eq!(probe(&cx(6, &LINE[..5], LINE)), Probe::Match);
        assert_eq!(probe(&cx(6, LINE, b"")), Probe::NeedMore);
        assert_eq!(probe(&cx(6, LINE, b"HTTP/1.1 200 OK\r\n")), Probe::No);
        assert_eq!(probe(&cx(6, b"", b"SSH-2.0-x\r\n")), Probe::No, "server first");
        assert_eq!(probe(&cx(17, LINE, LINE)), Probe::Match);
        assert_eq!(probe(&cx(17, LINE, &LINE[..5])), Probe::No, "a datagram is whole");
        let mut done = cx(17, LINE, b"");
        done.s2c_done = true;
        assert_eq!(probe(&done), Probe::No);
        let mut other = cx(6, LINE, LINE);
        other.server_port = 8;
        other.client_port = PORT;
        assert_eq!(probe(&other), Probe::No, "port 7 on the client side");
    }
}
