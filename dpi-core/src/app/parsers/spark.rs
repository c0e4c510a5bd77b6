//! Apache Spark's network transport (the `network-common` module: driver/executor RPC,
//! the block transfer and the external shuffle service).
//!
//! A frame is an 8-byte big-endian frame length (counting itself), a 1-byte message type,
//! the message's header and, for most types, its body. Types 3–9 and their headers:
//!
//! | type | message | header | frame length |
//! |---|---|---|---|
//! | 3 | RpcRequest | request id (8), body size (4) | 21 + body |
//! | 4 | RpcResponse | request id (8), body size (4) | 21 + body |
//! | 5 | RpcFailure | request id (8), error string (4 + n) | 21 + n |
//! | 6 | StreamRequest | stream id string (4 + n) | 13 + n |
//! | 7 | StreamResponse | stream id string, byte count (8) | 21 + n (body follows outside) |
//! | 8 | StreamFailure | stream id string, error string | 17 + n + m |
//! | 9 | OneWayMessage | body size (4) | 13 + body |
//!
//! Identification: the client's first frame is one of these with its lengths consistent
//! (and a frame length under [`MAX_FRAME`]), and then either the server's first frames
//! (up to [`MAX_REPLIES`], all valid) hold the answer (an RpcResponse or RpcFailure with
//! the request's id, a StreamResponse or StreamFailure with the stream's id; for a one-way
//! message, or picked up mid-stream, any valid frame), or the server says nothing and the client's frame is
//! complete and followed by nothing or by another valid frame.
//!
//! On a session picked up mid-stream, whose client and server the engine could only guess,
//! the roles are tried both ways round (`kafka::either_role`).

use crate::app::probe::{at, be32, Probe, ProbeCtx};

/// Largest frame believed (Spark's RPC messages are small; block transfers are not
/// looked at), 16 MiB.
pub const MAX_FRAME: u32 = 16 << 20;
/// Server frames walked looking for the answer.
pub const MAX_REPLIES: usize = 8;
/// Longest stream id believed.
const MAX_STREAM_ID: usize = 512;

const RPC_REQUEST: u8 = 3;
const RPC_RESPONSE: u8 = 4;
const RPC_FAILURE: u8 = 5;
const STREAM_REQUEST: u8 = 6;
const STREAM_RESPONSE: u8 = 7;
const STREAM_FAILURE: u8 = 8;
const ONE_WAY: u8 = 9;

/// A frame header.
#[derive(Clone, Copy, Debug)]
struct Frame<'a> {
    len: usize,
    ty: u8,
    /// The RPC request id (types 3–5).
    id: Option<&'a [u8]>,
    /// The stream id (types 6–8).
    stream: Option<&'a [u8]>,
}

fn be64_hi_zero(b: &[u8], off: usize) -> Result<Option<u32>, ()> {
    // The high half of the 8-byte length must be zero (frames under 4 GiB); check what is
    // there of it byte by byte, so other protocols are refused early.
    let avail = b.get(off..).unwrap_or_default();
    if avail.iter().take(4).any(|&c| c != 0) {
        return Err(());
    }
    Ok(be32(b, off + 4))
}

/// The frame at `b[off..]`: `Err` not one, `Ok(None)` valid so far but cut short. Lengths
/// are added up in `u64`, so no field value can overflow them.
fn frame(b: &[u8], off: usize) -> Result<Option<Frame<'_>>, ()> {
    let Some(len) = be64_hi_zero(b, off)? else { return Ok(None) };
    if !(13..=MAX_FRAME).contains(&len) {
        return Err(());
    }
    let Some(&ty) = b.get(off + 8) else { return Ok(None) };
    let u32_at = |o: usize| be32(b, off + o).map(u64::from);
    // The frame length a message's fields add up to (`None`: not all there yet) must be
    // the one the frame states.
    let consistent = |total: Option<u64>| match total {
        None => Ok(false),
        Some(t) if t == u64::from(len) => Ok(true),
        Some(_) => Err(()),
    };
    let mut f = Frame { len: len as usize, ty, id: None, stream: None };
    match ty {
        RPC_REQUEST | RPC_RESPONSE | RPC_FAILURE => {
            if !consistent(u32_at(17).map(|n| 21 + n))? {
                return Ok(None);
            }
            f.id = at(b, off + 9, 8);
        }
        STREAM_REQUEST | STREAM_RESPONSE | STREAM_FAILURE => {
            let Some(n) = be32(b, off + 9) else { return Ok(None) };
            let n = n as usize;
            if n == 0 || n > MAX_STREAM_ID {
                return Err(());
            }
            let Some(id) = at(b, off + 13, n) else { return Ok(None) };
            if !id.iter().all(|c| (0x21..0x7f).contains(c)) {
                return Err(());
            }
            f.stream = Some(id);
            let n = n as u64;
            let total = match ty {
                STREAM_REQUEST => Some(13 + n),
                STREAM_RESPONSE => Some(21 + n),
                _ => u32_at(13 + id.len()).map(|m| 17 + n + m),
            };
            if !consistent(total)? {
                return Ok(None);
            }
        }
        ONE_WAY => {
            if !consistent(u32_at(9).map(|n| 13 + n))? {
                return Ok(None);
            }
        }
        _ => return Err(()),
    }
    Ok(Some(f))
}

/// Does the server frame `r` answer the client frame `q`?
fn answers(q: &Frame<'_>, r: &Frame<'_>) -> bool {
    match q.ty {
        RPC_REQUEST => matches!(r.ty, RPC_RESPONSE | RPC_FAILURE) && r.id == q.id,
        STREAM_REQUEST => matches!(r.ty, STREAM_RESPONSE | STREAM_FAILURE) && r.stream == q.stream,
        _ => false,
    }
}

/// Spark.
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    super::kafka::either_role(cx, probe_roles)
}

/// Spark, with the roles as given.
fn probe_roles(cx: &ProbeCtx<'_>) -> Probe {
    if cx.c2s.is_empty() {
        let wait = !cx.c2s_done && (cx.s2c.is_empty() || cx.mid_stream);
        return if wait { Probe::NeedMore } else { Probe::No };
    }
    let q = match frame(cx.c2s, 0) {
        Ok(Some(q)) => q,
        Ok(None) if !cx.c2s_done => return Probe::NeedMore,
        _ => return Probe::No,
    };
    if cx.s2c.is_empty() {
        if !cx.s2c_done {
            return Probe::NeedMore;
        }
        // The server said nothing: a whole frame, followed by nothing or another frame.
        return match cx.c2s.get(q.len..) {
            Some([]) => Probe::Match,
            Some(_) => match frame(cx.c2s, q.len) {
                Ok(_) => Probe::Match,
                Err(()) => Probe::No,
            },
            None => Probe::No,
        };
    }
    let mut off = 0;
    let any_frame = q.ty == ONE_WAY || cx.mid_stream;
    for i in 0..MAX_REPLIES {
        let r = match frame(cx.s2c, off) {
            Ok(Some(r)) => r,
            Ok(None) if cx.s2c_done => return Probe::No,
            Ok(None) => return Probe::NeedMore,
            Err(()) => return Probe::No,
        };
        if answers(&q, &r) || (i == 0 && any_frame) {
            return Probe::Match;
        }
        // Answers may come out of order, and the server may send requests of its own.
        off += r.len;
    }
    Probe::No
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Dir;

    fn cx<'a>(c2s: &'a [u8], s2c: &'a [u8]) -> ProbeCtx<'a> {
        ProbeCtx {
            proto: 6,
            client_port: 41234,
            server_port: 7077,
            c2s,
            s2c,
            c2s_done: false,
            s2c_done: false,
            first: Some(Dir::ToServer),
            mid_stream: false,
        }
    }

    /// A frame: type, header fields, body. The corpus has no Spark capture: frames are laid
    /// out as `network-common`'s MessageEncoder writes them.
    fn frame_of(ty: u8, header: &[u8], body: &[u8], body_in_frame: bool) -> Vec<u8> {
        let len = 9 + header.len() + if body_in_frame { body.len() } else { 0 };
        let mut f = (len as u64).to_be_bytes().to_vec();
        f.push(ty);
        f.extend_from_slice(header);
        f.extend_from_slice(body);
        f
    }

    fn rpc(ty: u8, id: u64, body: &[u8]) -> Vec<u8> {
        let mut h = id.to_be_bytes().to_vec();
        h.extend_from_slice(&(body.len() as u32).to_be_bytes());
        frame_of(ty, &h, body, true)
    }

    fn string(s: &[u8]) -> Vec<u8> {
        let mut v = (s.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(s);
        v
    }

    /// The body of a NettyRpcEnv RequestMessage: sender address, receiver address, receiver
    /// name, then a Java-serialized payload.
    fn request_body() -> Vec<u8> {
        let mut b = vec![1, 0, 11];
        b.extend_from_slice(b"192.168.1.5");
        b.extend_from_slice(&41_459u32.to_be_bytes());
        b.extend_from_slice(&[1, 0, 11]);
        b.extend_from_slice(b"192.168.1.2");
        b.extend_from_slice(&7077u32.to_be_bytes());
        b.extend_from_slice(&[0, 17]);
        b.extend_from_slice(b"endpoint-verifier");
        b.extend_from_slice(&[0xac, 0xed, 0x00, 0x05, 0x73, 0x72, 0x00, 0x3b]);
        b
    }

    #[test]
    fn rpc_request_and_response() {
        let q = rpc(RPC_REQUEST, 0x6e2a_17c4_90b1_5d03, &request_body());
        let r = rpc(RPC_RESPONSE, 0x6e2a_17c4_90b1_5d03, &[0xac, 0xed, 0, 5, 0x73, 0x72]);
        assert_eq!(probe(&cx(&q, &r)), Probe::Match);
        assert_eq!(probe(&cx(&q, b"")), Probe::NeedMore);
        assert_eq!(probe(&cx(&q, &r[..15])), Probe::NeedMore);
        let other = rpc(RPC_RESPONSE, 7, &[1, 2, 3]);
        assert_eq!(probe(&cx(&q, &other)), Probe::NeedMore, "a different id");
        let mut done = cx(&q, &other);
        done.s2c_done = true;
        assert_eq!(probe(&done), Probe::No);
        let mut two = other.clone();
        two.extend_from_slice(&r);
        assert_eq!(probe(&cx(&q, &two)), Probe::Match, "answered second");
        let mut fail = 0x6e2a_17c4_90b1_5d03u64.to_be_bytes().to_vec();
        fail.extend_from_slice(&string(b"java.lang.IllegalStateException"));
        let fail = frame_of(RPC_FAILURE, &fail, b"", true);
        assert_eq!(probe(&cx(&q, &fail)), Probe::Match);
        for n in 1..q.len() {
            assert_eq!(probe(&cx(&q[..n], b"")), Probe::NeedMore, "{n} bytes");
        }
        let mut bad = q.clone();
        bad[7] += 1; // frame length off by one
        assert_eq!(probe(&cx(&bad, &r)), Probe::No);
    }

    #[test]
    fn streams_and_one_way() {
        let q = frame_of(STREAM_REQUEST, &string(b"/jars/app.jar"), b"", true);
        let mut h = string(b"/jars/app.jar");
        h.extend_from_slice(&1_234_567u64.to_be_bytes());
        let r = frame_of(STREAM_RESPONSE, &h, b"PK\x03\x04", false);
        assert_eq!(probe(&cx(&q, &r)), Probe::Match);
        let mut h = string(b"/jars/app.jar");
        h.extend_from_slice(&string(b"Stream not found"));
        let f = frame_of(STREAM_FAILURE, &h, b"", true);
        assert_eq!(probe(&cx(&q, &f)), Probe::Match);
        let other = frame_of(
            STREAM_FAILURE,
            &{
                let mut h = string(b"/jars/b.jar");
                h.extend_from_slice(&string(b"x"));
                h
            },
            b"",
            true,
        );
        let mut done = cx(&q, &other);
        done.s2c_done = true;
        assert_eq!(probe(&done), Probe::No);
        // One-way messages get no answer: judged when the session ends.
        let body = request_body();
        let w = frame_of(ONE_WAY, &(body.len() as u32).to_be_bytes(), &body, true);
        let mut c = cx(&w, b"");
        assert_eq!(probe(&c), Probe::NeedMore);
        c.c2s_done = true;
        c.s2c_done = true;
        assert_eq!(probe(&c), Probe::Match);
        c.c2s = &w[..w.len() - 1];
        assert_eq!(probe(&c), Probe::No, "not whole");
    }

    #[test]
    fn other_protocols_are_not_spark() {
        let no = |c: &[u8], s: &[u8]| {
            let mut x = cx(c, s);
            x.c2s_done = true;
            x.s2c_done = true;
            probe(&x)
        };
        assert_eq!(no(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b""), Probe::No);
        assert_eq!(no(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b""), Probe::No);
        assert_eq!(no(b"\x00\x1c\x12\x34\x01\x00\x00\x01\x00\x00", b""), Probe::No, "DNS/TCP");
        assert_eq!(no(b"AMQP\x00\x00\x09\x01", b""), Probe::No);
        // Kafka ApiVersions and a ZooKeeper ping.
        let kafka =
            b"\x00\x00\x00\x15\x00\x12\x00\x00\x00\x00\x00\x81\x00\x07rdkafka\x00\x00\x00\x00";
        assert_eq!(no(kafka, b""), Probe::No);
        assert_eq!(no(b"\x00\x00\x00\x08\xff\xff\xff\xfe\x00\x00\x00\x0b", b""), Probe::No);
        assert_eq!(probe(&cx(b"\x00\x00\x00\x00\x00", b"")), Probe::NeedMore);
        assert_eq!(probe(&cx(b"", b"INFO {}\r\n")), Probe::No);
    }
}
