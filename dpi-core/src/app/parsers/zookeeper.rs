//! Apache ZooKeeper: the client protocol (jute records from `zookeeper.jute`, each behind
//! an `int32` length), the four-letter admin words, and the quorum protocol's opening
//! messages.
//!
//! Identification, any of:
//! - ConnectRequest from the client: length 44 (45 with the `readOnly` flag), protocol
//!   version 0, `lastZxidSeen`, a positive session timeout (ms, at most
//!   [`MAX_TIMEOUT_MS`]), session id, a 16-byte password; or, the request not captured,
//!   a ConnectResponse from the server (length 36/37, version 0, a 16-byte password);
//! - a four-letter word (`ruok`, `stat`, `srvr`, `mntr`, `conf`, `envi`, ...; optionally
//!   with a newline) answered the way ZooKeeper answers it (`imok`, `Zookeeper version:`,
//!   `zk_version`, ..., or its "not in the whitelist" / "not currently serving" notices);
//! - leader election (QuorumCnxManager): the connecting server's first message, protocol
//!   version −65536 or −65535, its server id, and its `host:port` address(es);
//! - a learner joining the leader: a QuorumPacket FOLLOWERINFO (11) or OBSERVERINFO (16)
//!   whose LearnerInfo carries protocol version 0x10000;
//! - a client ping (length 8, xid −2, op 11);
//! - picked up mid-stream: a request header (length, xid, known op code) and, among the
//!   server's first replies (notifications skipped), one with the same xid and a known
//!   error code.
//!
//! On a session picked up mid-stream, whose client and server the engine could only guess,
//! the roles are tried both ways round (`kafka::either_role`).
//!
//! UDP: no signature. ZooKeeper's UDP leader election (a 4-byte request echoed in a
//! 36-byte reply) was removed in 3.6 and is too generic a shape to claim traffic on.

use crate::app::probe::{at, be32, Probe, ProbeCtx};

/// Largest session timeout believed in a ConnectRequest, in milliseconds (a day).
pub const MAX_TIMEOUT_MS: u32 = 86_400_000;
/// Largest record believed (`jute.maxbuffer` default, 1 MiB, with headroom).
const MAX_RECORD: u32 = 4 << 20;
/// Server replies walked looking for a mid-stream request's xid.
const MAX_REPLIES: usize = 8;

/// The four-letter words and what the server's answer begins with (empty: only the
/// generic notices count).
const WORDS: &[(&[u8; 4], &[&[u8]])] = &[
    (b"ruok", &[b"imok"]),
    (b"stat", &[b"Zookeeper version: "]),
    (b"srvr", &[b"Zookeeper version: "]),
    (b"mntr", &[b"zk_version\t"]),
    (b"conf", &[b"clientPort="]),
    (b"envi", &[b"Environment:\n"]),
    (b"isro", &[b"rw", b"ro"]),
    (b"cons", &[b" /"]),
    (b"crst", &[b"Connection stats reset."]),
    (b"srst", &[b"Server stats reset."]),
    (b"dump", &[b"SessionTracker dump:"]),
    (b"dirs", &[b"datadir_size: "]),
    (b"wchs", &[]),
    (b"wchc", &[]),
    (b"wchp", &[]),
    (b"reqs", &[]),
    (b"gtmk", &[]),
    (b"stmk", &[]),
    (b"hash", &[]),
];
/// What the server answers any word when it will not.
const NOT_SERVING: &[u8] = b"This ZooKeeper instance is not currently serving requests";
const NOT_ALLOWED: &[u8] = b" is not executed because it is not in the whitelist.";

/// The outcome of one form's check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Yes,
    No,
    /// Valid so far, cut short.
    Short,
}

/// A form checked on bytes that stop growing once `done`.
fn form(ok: Option<bool>, done: bool) -> Form {
    match ok {
        Some(true) => Form::Yes,
        None if !done => Form::Short,
        _ => Form::No,
    }
}

/// Do the bytes `b` has so far agree with `want` (a shorter required prefix)?
fn agrees(b: &[u8], want: &[u8]) -> bool {
    let n = b.len().min(want.len());
    b[..n] == want[..n]
}

/// ConnectRequest at the start of `b`.
fn connect_request(b: &[u8]) -> Option<bool> {
    if !agrees(b, &[0, 0, 0]) {
        return Some(false);
    }
    let len = be32(b, 0)?;
    if len != 44 && len != 45 {
        return Some(false);
    }
    if be32(b, 4)? != 0 {
        return Some(false); // protocol version
    }
    if b.get(8)? & 0x80 != 0 {
        return Some(false); // a negative zxid
    }
    if !(1..=MAX_TIMEOUT_MS).contains(&be32(b, 16)?) {
        return Some(false);
    }
    if be32(b, 28)? != 16 {
        return Some(false); // password length
    }
    if len == 45 && *b.get(48)? > 1 {
        return Some(false); // readOnly
    }
    at(b, 0, 4 + len as usize).map(|_| true)
}

/// ConnectResponse at the start of `b`.
fn connect_response(b: &[u8]) -> Option<bool> {
    if !agrees(b, &[0, 0, 0]) {
        return Some(false);
    }
    let len = be32(b, 0)?;
    if len != 36 && len != 37 {
        return Some(false);
    }
    if be32(b, 4)? != 0 || be32(b, 8)? > MAX_TIMEOUT_MS || be32(b, 20)? != 16 {
        return Some(false);
    }
    if len == 37 && *b.get(40)? > 1 {
        return Some(false);
    }
    at(b, 0, 4 + len as usize).map(|_| true)
}

/// A four-letter word from the client and its answer.
fn four_letter(cx: &ProbeCtx<'_>) -> Form {
    let (c, s) = (cx.c2s, cx.s2c);
    let Some(word) = c.get(..4) else {
        let prefix = WORDS.iter().any(|(w, _)| w.starts_with(c));
        return if prefix && !cx.c2s_done { Form::Short } else { Form::No };
    };
    let Some(&(w, answers)) = WORDS.iter().find(|(w, _)| &w[..] == word) else {
        return Form::No;
    };
    if !matches!(&c[4..], b"" | b"\n" | b"\r\n") {
        return Form::No;
    }
    if s.is_empty() {
        return if cx.s2c_done { Form::No } else { Form::Short };
    }
    let mut short = false;
    let mut check = |want: &[u8]| {
        if s.starts_with(want) {
            return true;
        }
        short |= want.starts_with(s);
        false
    };
    let mut notice = [0u8; 4 + NOT_ALLOWED.len()];
    notice[..4].copy_from_slice(w);
    notice[4..].copy_from_slice(NOT_ALLOWED);
    let ok = answers.iter().any(|a| check(a)) || check(NOT_SERVING) || check(&notice);
    if ok {
        Form::Yes
    } else if short && !cx.s2c_done {
        Form::Short
    } else {
        Form::No
    }
}

/// Leader election: the connecting server's first message (protocol version, server id,
/// address list).
fn election(c: &[u8]) -> Option<bool> {
    if !agrees(c, &[0xff; 6]) {
        return Some(false);
    }
    let h = at(c, 0, 8)?;
    if h[..6] != [0xff; 6] || h[6] != 0 || h[7] > 1 {
        return Some(false);
    }
    if c.get(8)? & 0x80 != 0 {
        return Some(false); // server id
    }
    let len = be32(c, 16)? as usize;
    if !(3..=1024).contains(&len) {
        return Some(false);
    }
    let addr = c.get(20..).unwrap_or_default();
    let addr = &addr[..addr.len().min(len)];
    if !addr.iter().all(|ch| (0x21..0x7f).contains(ch)) {
        return Some(false);
    }
    if addr.len() < len {
        return None;
    }
    Some(addr.contains(&b':'))
}

/// A learner's FOLLOWERINFO / OBSERVERINFO QuorumPacket.
fn learner(c: &[u8]) -> Option<bool> {
    if !agrees(c, &[0, 0, 0]) {
        return Some(false);
    }
    let ty = be32(c, 0)?;
    if ty != 11 && ty != 16 {
        return Some(false);
    }
    let len = be32(c, 12)?;
    if len != 12 && len != 20 {
        return Some(false);
    }
    Some(be32(c, 24)? == 0x0001_0000)
}

/// A client ping.
fn ping(c: &[u8]) -> Option<bool> {
    const PING: [u8; 12] = [0, 0, 0, 8, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 11];
    let n = c.len().min(PING.len());
    if c[..n] != PING[..n] {
        return Some(false);
    }
    (n == PING.len()).then_some(true)
}

fn known_op(op: u32) -> bool {
    matches!(op as i32, 1..=9 | 11..=22 | 100..=107 | -11 | -10)
}

fn known_err(err: u32) -> bool {
    matches!(err as i32, 0 | -20..=-1 | -130..=-100)
}

/// Mid-stream: a request header and a reply with its xid.
fn mid_stream(c: &[u8], s: &[u8]) -> Option<bool> {
    let len = be32(c, 0)?;
    let xid = be32(c, 4)?;
    let op = be32(c, 8)?;
    if !(8..=MAX_RECORD).contains(&len) || !known_op(op) || xid as i32 <= -3 {
        return Some(false);
    }
    let mut off = 0usize;
    for _ in 0..MAX_REPLIES {
        let rlen = be32(s, off)?;
        if !(16..=MAX_RECORD).contains(&rlen) {
            return Some(false);
        }
        let rxid = be32(s, off + 4)?;
        let err = be32(s, off + 16)?;
        if !known_err(err) {
            return Some(false);
        }
        if rxid == xid {
            return Some(true);
        }
        if rxid as i32 >= 0 && rxid > xid {
            return Some(false); // replies come in order
        }
        off += 4 + rlen as usize;
    }
    Some(false)
}

/// ZooKeeper (TCP; UDP never matches).
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    super::kafka::either_role(cx, probe_roles)
}

/// ZooKeeper (TCP; UDP never matches), with the roles as given.
fn probe_roles(cx: &ProbeCtx<'_>) -> Probe {
    if !cx.is_tcp() {
        return Probe::No;
    }
    let (c, s) = (cx.c2s, cx.s2c);
    if c.is_empty() {
        // The client's request not captured: the server's ConnectResponse.
        if s.is_empty() || cx.mid_stream {
            return if cx.c2s_done { Probe::No } else { Probe::NeedMore };
        }
        return match connect_response(s) {
            Some(true) => Probe::Match,
            None if !cx.s2c_done && !cx.c2s_done => Probe::NeedMore,
            _ => Probe::No,
        };
    }
    let done = cx.c2s_done;
    let mut forms = [
        form(connect_request(c), done),
        four_letter(cx),
        form(election(c), done),
        form(learner(c), done),
        form(ping(c), done),
        Form::No,
    ];
    if cx.mid_stream {
        forms[5] = if s.is_empty() {
            form(None, cx.s2c_done)
        } else {
            form(mid_stream(c, s), cx.c2s_done && cx.s2c_done)
        };
    }
    if forms.contains(&Form::Yes) {
        Probe::Match
    } else if forms.contains(&Form::Short) {
        Probe::NeedMore
    } else {
        Probe::No
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
            client_port: 51000,
            server_port: 2181,
            c2s,
            s2c,
            c2s_done: false,
            s2c_done: false,
            first: Some(Dir::ToServer),
            mid_stream: false,
        }
    }

    // The corpus has no ZooKeeper capture: these records are laid out from
    // zookeeper.jute. ConnectRequest: protocol 0, lastZxidSeen 0, timeout 30000 ms,
    // session 0, 16 zero password bytes, readOnly false.
    const CONNECT: &str = "0000002d000000000000000000000000000075300000000000000000000000100000\
        000000000000000000000000000000";
    // ConnectResponse: protocol 0, timeout 30000, session 0x1000a3b5c1d0000, password.
    const CONNECTED: &str = "000000250000000000007530010000a3b5c1d00000000010a1b2c3d4e5f60718293a\
        4b5c6d7e8f9000";

    #[test]
    fn connect_handshake() {
        let c = hex(CONNECT);
        let s = hex(CONNECTED);
        assert_eq!(c.len(), 49);
        assert_eq!(s.len(), 41);
        assert_eq!(probe(&cx(&c, b"")), Probe::Match);
        assert_eq!(probe(&cx(&c, &s)), Probe::Match);
        assert_eq!(probe(&cx(b"", &s)), Probe::Match, "request missed");
        for n in 1..c.len() {
            assert_eq!(probe(&cx(&c[..n], b"")), Probe::NeedMore, "{n} bytes");
        }
        let mut v = c.clone();
        v[7] = 1; // protocol version 1
        assert_eq!(probe(&cx(&v, b"")), Probe::No);
        let mut v = c.clone();
        v[31] = 8; // password length
        assert_eq!(probe(&cx(&v, b"")), Probe::No);
        let mut udp = cx(&c, &s);
        udp.proto = 17;
        assert_eq!(probe(&udp), Probe::No);
    }

    #[test]
    fn four_letter_words() {
        assert_eq!(probe(&cx(b"ruok", b"imok")), Probe::Match);
        assert_eq!(probe(&cx(b"ruok", b"")), Probe::NeedMore);
        assert_eq!(probe(&cx(b"ru", b"")), Probe::NeedMore);
        assert_eq!(probe(&cx(b"srvr\n", b"Zookeeper version: 3.8.4-9316c2a7a97e1666d8f4593f34dd6fc36ecc436c, built on 2024-02-12 22:16 UTC\nLatency min/avg/max: 0/0.0/0\n")), Probe::Match);
        assert_eq!(
            probe(&cx(b"mntr", b"zk_version\t3.8.4\nzk_server_state\tstandalone\n")),
            Probe::Match
        );
        assert_eq!(probe(&cx(b"stat", b"Zook")), Probe::NeedMore);
        assert_eq!(
            probe(&cx(b"stat", b"stat is not executed because it is not in the whitelist.\n")),
            Probe::Match
        );
        assert_eq!(probe(&cx(b"wchs", NOT_SERVING)), Probe::Match);
        assert_eq!(probe(&cx(b"ruok", b"HTTP/1.1 400 Bad Request\r\n")), Probe::No);
        let mut done = cx(b"ruok", b"");
        done.s2c_done = true;
        assert_eq!(probe(&done), Probe::No);
        assert_eq!(probe(&cx(b"ruokay", b"imok")), Probe::No);
    }

    #[test]
    fn quorum_openings() {
        // Election: version -65536, sid 3, "10.0.0.3:3888".
        let mut e = hex("ffffffffffff00000000000000000003");
        e.extend_from_slice(&13u32.to_be_bytes());
        e.extend_from_slice(b"10.0.0.3:3888");
        assert_eq!(probe(&cx(&e, b"")), Probe::Match);
        assert_eq!(probe(&cx(&e[..25], b"")), Probe::NeedMore);
        // FOLLOWERINFO: zxid 0x100000000, LearnerInfo {sid 2, version 0x10000, config 0}.
        let f = hex("0000000b00000001000000000000001400000000000000020001000000000000000000\
            00ffffffff");
        assert_eq!(probe(&cx(&f, b"")), Probe::Match);
        // Ping, and its reply.
        let p = hex("00000008fffffffe0000000b");
        assert_eq!(probe(&cx(&p, b"")), Probe::Match);
        assert_eq!(probe(&cx(&p[..6], b"")), Probe::NeedMore);
    }

    #[test]
    fn mid_stream_request_reply() {
        // getData("/a", watch) with xid 7; the server's NodeDataChanged notification for
        // "/a" (xid -1), then the reply: NONODE (-101).
        let c = hex("0000000f000000070000000400000002 2f6101");
        let s = hex("0000001effffffff000000000000004200000000 00000003000000030000000 22f61\
            00000010000000070000000000000043ffffff9b");
        let mut x = cx(&c, &s);
        assert_eq!(probe(&x), Probe::No, "only mid-stream");
        x.mid_stream = true;
        assert_eq!(probe(&x), Probe::Match);
        x.s2c = &s[..10];
        assert_eq!(probe(&x), Probe::NeedMore);
        let bad = hex("00000010000000090000000000000043ffffff9b"); // another xid
        x.s2c = &bad;
        assert_eq!(probe(&x), Probe::No);
    }

    #[test]
    fn other_protocols_are_not_zookeeper() {
        let no = |c: &[u8], s: &[u8]| {
            let mut x = cx(c, s);
            x.c2s_done = true;
            x.s2c_done = true;
            probe(&x)
        };
        assert_eq!(no(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 OK\r\n"), Probe::No);
        assert_eq!(no(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b""), Probe::No);
        assert_eq!(no(b"\x00\x1c\x12\x34\x01\x00\x00\x01\x00\x00", b""), Probe::No, "DNS/TCP");
        // Kafka ApiVersions (ndpi/pcap/kafka.pcapng).
        assert_eq!(no(&hex("000000150012000000000081000772646b61666b6100000000"), b""), Probe::No);
        assert_eq!(no(b"AMQP\x00\x00\x09\x01", b""), Probe::No);
        assert_eq!(no(b"", b"INFO {\"server_id\":\"x\"}\r\n"), Probe::No);
        assert_eq!(probe(&cx(b"", b"\x0a\x00\x00\x00\x0a8.0.36\x00")), Probe::No, "MySQL");
    }
}
