//! AMQP: 0-9-1 (and 0-8, 0-9, 0-10) and 1.0.
//!
//! Identification, either of:
//! - the client's protocol header: `AMQP` followed by a known protocol id and version
//!   (`0 0 9 1`; `1 1 0 9`, `1 1 8 0`, `1 1 0 10` for 0-9, 0-8, 0-10; `0 1 0 0`,
//!   `2 1 0 0`, `3 1 0 0` for 1.0, its TLS and SASL layers); or, the header not captured,
//!   the server's first bytes: a Connection.Start method frame (channel 0, class 10,
//!   method 10, version 0-9) or a protocol header of its own;
//! - on a session picked up mid-stream (AMQP 0-9-1 general frame format, spec §4.2.3): a
//!   direction's first frames are complete frames — type 1 (method), 2 (content header), 3
//!   (body) or 8 (heartbeat), channel, size, and the frame-end octet 0xCE right after the
//!   payload — at least one of them a method frame with a known class and method, or a
//!   content header of class 60 (basic) with weight 0, or a protocol header from either
//!   side.
//!
//! On a session picked up mid-stream, whose client and server the engine could only guess,
//! the roles are tried both ways round (`kafka::either_role`).

use crate::app::probe::{at, be16, be32, Probe, ProbeCtx};

/// Largest frame payload believed (RabbitMQ's `frame_max` is 128 KiB by default).
pub const MAX_FRAME: u32 = 1 << 20;
/// Frames walked looking for a method or content-header frame.
const MAX_FRAMES: usize = 4;
const FRAME_END: u8 = 0xce;

/// Protocol ids and versions after `AMQP`.
const VERSIONS: [[u8; 4]; 7] = [
    [0, 0, 9, 1],
    [1, 1, 0, 9],
    [1, 1, 8, 0],
    [1, 1, 0, 10],
    [0, 1, 0, 0],
    [2, 1, 0, 0],
    [3, 1, 0, 0],
];

/// A protocol header at the start of `b`: `None` while it could still be one.
fn header(b: &[u8]) -> Option<bool> {
    const MAGIC: &[u8] = b"AMQP";
    let n = b.len().min(MAGIC.len());
    if b[..n] != MAGIC[..n] {
        return Some(false);
    }
    let v = at(b, 4, 4)?;
    Some(VERSIONS.iter().any(|k| k[..] == *v))
}

/// A Connection.Start frame at the start of `b`.
fn connection_start(b: &[u8]) -> Option<bool> {
    const HEAD: [u8; 3] = [1, 0, 0]; // method frame, channel 0
    let n = b.len().min(3);
    if b[..n] != HEAD[..n] {
        return Some(false);
    }
    let size = be32(b, 3)?;
    let m = at(b, 7, 6)?;
    Some(size <= MAX_FRAME && m == [0, 10, 0, 10, 0, 9])
}

fn known_method(class: u16, method: u16) -> bool {
    matches!(class, 10 | 20 | 30 | 40 | 50 | 60 | 85 | 90)
        && (10..=120).contains(&method)
        && method % 10 <= 2
}

/// The first frames of `b`: `Some(true)` complete, valid, and one a method or content
/// header; `None` cut short.
fn frames(b: &[u8]) -> Option<bool> {
    let mut off = 0;
    for _ in 0..MAX_FRAMES {
        let h = at(b, off, 7)?;
        let ty = h[0];
        let channel = be16(h, 1)?;
        let size = be32(h, 3)?;
        if !matches!(ty, 1 | 2 | 3 | 8) || size > MAX_FRAME {
            return Some(false);
        }
        let payload = at(b, off + 7, size as usize)?;
        if *b.get(off + 7 + size as usize)? != FRAME_END {
            return Some(false);
        }
        match ty {
            1 => {
                let ok = known_method(be16(payload, 0)?, be16(payload, 2)?);
                return Some(ok);
            }
            2 => return Some(be16(payload, 0)? == 60 && be16(payload, 2)? == 0),
            8 if channel != 0 || size != 0 => return Some(false),
            _ => {}
        }
        off += 8 + size as usize;
    }
    Some(false)
}

fn verdict(ok: Option<bool>, done: bool) -> Probe {
    match ok {
        Some(true) => Probe::Match,
        Some(false) => Probe::No,
        None if done => Probe::No,
        None => Probe::NeedMore,
    }
}

/// AMQP.
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    super::kafka::either_role(cx, probe_roles)
}

/// AMQP, with the roles as given.
fn probe_roles(cx: &ProbeCtx<'_>) -> Probe {
    if cx.mid_stream {
        if header(cx.c2s) == Some(true) {
            return Probe::Match; // picked up at the very start
        }
        let c = (!cx.c2s.is_empty()).then(|| verdict(frames(cx.c2s), cx.c2s_done));
        let s = (!cx.s2c.is_empty()).then(|| verdict(frames(cx.s2c), cx.s2c_done));
        return match (c, s) {
            (Some(Probe::Match), _) | (_, Some(Probe::Match)) => Probe::Match,
            (Some(Probe::No), Some(Probe::No)) => Probe::No,
            (Some(Probe::No), None) if cx.s2c_done => Probe::No,
            (None, Some(Probe::No)) if cx.c2s_done => Probe::No,
            _ if cx.c2s_done && cx.s2c_done => Probe::No,
            _ => Probe::NeedMore,
        };
    }
    if !cx.c2s.is_empty() {
        return verdict(header(cx.c2s), cx.c2s_done);
    }
    if cx.s2c.is_empty() {
        return verdict(None, cx.c2s_done);
    }
    // The client's header was not captured: the server's answer.
    match (header(cx.s2c), connection_start(cx.s2c)) {
        (Some(true), _) | (_, Some(true)) => Probe::Match,
        (Some(false), Some(false)) => Probe::No,
        _ => verdict(None, cx.s2c_done),
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
            client_port: 44205,
            server_port: 5672,
            c2s,
            s2c,
            c2s_done: false,
            s2c_done: false,
            first: Some(Dir::ToServer),
            mid_stream: false,
        }
    }

    // ndpi/pcap/amqp.pcap (picked up mid-stream), 127.0.0.1:44205 -> :5672: Basic.Publish
    // (celery heartbeat), then its content header.
    const PUBLISH: &str =
        "01000100000021003c002800000863656c657279657610776f726b65722e686561727462\
        65617400ce02000100000058003c00000000000000000127f800106170706c69636174696f6e2f6a736f6e";
    // The same capture, 5672 -> 44204: Basic.Deliver.
    const DELIVER: &str = "01000300000029003c003c01330000000000006176000863656c657279657610776f72\
        6b65722e686561727462656174ce";
    // The same capture, 44204 -> 5672: Basic.Ack.
    const ACK: &str = "0100010000000d003c0050000000000001bd1700ce";

    #[test]
    fn protocol_header() {
        assert_eq!(probe(&cx(b"AMQP\x00\x00\x09\x01", b"")), Probe::Match);
        assert_eq!(probe(&cx(b"AMQP\x00\x01\x00\x00", b"")), Probe::Match, "1.0");
        assert_eq!(probe(&cx(b"AMQP\x03\x01\x00\x00", b"")), Probe::Match, "1.0 SASL");
        assert_eq!(probe(&cx(b"AMQP\x00\x00\x09", b"")), Probe::NeedMore);
        assert_eq!(probe(&cx(b"AM", b"")), Probe::NeedMore);
        assert_eq!(probe(&cx(b"AMQP\x00\x00\x09\x07", b"")), Probe::No);
        // Connection.Start from the server, the header missed.
        let start = hex("010000000001f4000a000a0009000001cf0c6361706162696c6974696573");
        assert_eq!(probe(&cx(b"", &start)), Probe::Match);
        assert_eq!(probe(&cx(b"", &start[..8])), Probe::NeedMore);
        assert_eq!(probe(&cx(b"", b"SSH-2.0-x\r\n")), Probe::No);
    }

    #[test]
    fn mid_stream_frames() {
        let p = hex(PUBLISH);
        let mut x = cx(&p, b"");
        assert_eq!(probe(&x), Probe::No, "frames count only mid-stream");
        x.mid_stream = true;
        assert_eq!(probe(&x), Probe::Match);
        for n in [1, 7, 20, 40] {
            x.c2s = &p[..n];
            assert_eq!(probe(&x), Probe::NeedMore, "{n} bytes");
        }
        let d = hex(DELIVER);
        let a = hex(ACK);
        x.c2s = &a;
        x.s2c = &d;
        assert_eq!(probe(&x), Probe::Match);
        x.c2s = b"";
        assert_eq!(probe(&x), Probe::Match, "server side alone");
        let mut bad = d.clone();
        *bad.last_mut().unwrap() = 0xcd;
        x.s2c = &bad;
        x.c2s_done = true;
        assert_eq!(probe(&x), Probe::No, "frame end octet");
        // A heartbeat, then a method frame.
        let mut hb = hex("080000000000 00ce");
        hb.extend_from_slice(&a);
        x.s2c = &hb;
        assert_eq!(probe(&x), Probe::Match);
    }

    #[test]
    fn other_protocols_are_not_amqp() {
        let no = |c: &[u8], s: &[u8], mid: bool| {
            let mut x = cx(c, s);
            x.mid_stream = mid;
            x.c2s_done = true;
            x.s2c_done = true;
            probe(&x)
        };
        for mid in [false, true] {
            assert_eq!(
                no(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 OK\r\n", mid),
                Probe::No
            );
            assert_eq!(no(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"", mid), Probe::No);
            assert_eq!(no(b"\x00\x1c\x12\x34\x01\x00\x00\x01\x00\x00", b"", mid), Probe::No);
            assert_eq!(no(&hex("104000064d514973647003c2"), b"", mid), Probe::No, "MQTT");
            assert_eq!(no(b"CONNECT {\"verbose\":false}\r\n", b"INFO {}\r\n", mid), Probe::No);
        }
    }
}
