//! Redis serialization protocol, RESP2 and RESP3 (redis.io, "Redis serialization protocol
//! specification").
//!
//! Clients send commands as arrays of bulk strings: `*<count>\r\n$<len>\r\n<name>\r\n...`;
//! replies start with a type byte (`+ - : $ *` in RESP2; `_ , # ! = ( % ~ > |` too in
//! RESP3) and a CRLF-terminated first line. The client speaks first.
//!
//! Identification: the client's first bytes are an array header (1 to 1,000,000 elements)
//! whose first element is a bulk string of 1–64 bytes holding a command name (letters,
//! digits, `_ - . | :`), and the server's first bytes are a reply whose first line fits its
//! type (a status or error text, an integer, a length or -1, ...). A session that ends
//! before the server answered is Redis when the client's whole first array (every bulk
//! string, with its CRLF) arrived. Mid-stream: a command in one direction and a reply in
//! the other. Inline commands (`PING\r\n`) are not used: plain text says too little.

use crate::app::probe::{Probe, ProbeCtx};
use crate::flow::Dir;

/// Longest first reply line looked at (status and error texts are short).
const MAX_LINE: usize = 512;
const MAX_ELEMENTS: u64 = 1_000_000;
/// Longest bulk string of the first array checked for completeness.
const MAX_BULK: u64 = 512 << 20;

/// What a check concluded: valid, not valid, or valid as far as the bytes go.
type Verdict = Option<bool>;

/// A decimal number at the start of `b` ending with CRLF: (value, bytes used). `None`:
/// cut short; `Some(None)`: malformed.
fn number(b: &[u8], max_digits: usize) -> Option<Option<(u64, usize)>> {
    let mut v: u64 = 0;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'0'..=b'9' if i < max_digits => v = v * 10 + u64::from(c - b'0'),
            b'\r' if i > 0 => {
                return match b.get(i + 1) {
                    None => None,
                    Some(b'\n') => Some(Some((v, i + 2))),
                    Some(_) => Some(None),
                };
            }
            _ => return Some(None),
        }
    }
    None
}

/// The client's command at the start of `b`. `whole`: require every element of the
/// array to be there. `None`: valid so far, cut short.
fn command(b: &[u8], whole: bool) -> Verdict {
    if *b.first()? != b'*' {
        return Some(false);
    }
    let Some((count, mut p)) = number(b.get(1..)?, 7)? else { return Some(false) };
    if !(1..=MAX_ELEMENTS).contains(&count) {
        return Some(false);
    }
    p += 1;
    for i in 0..count {
        if *b.get(p)? != b'$' {
            return Some(false);
        }
        let Some((len, used)) = number(b.get(p + 1..)?, 10)? else { return Some(false) };
        p += 1 + used;
        if i == 0 {
            if !(1..=64).contains(&len) {
                return Some(false);
            }
            for k in 0..len as usize {
                let c = *b.get(p + k)?;
                if !(c.is_ascii_alphanumeric() || b"_-.|:".contains(&c)) {
                    return Some(false);
                }
            }
        } else if len > MAX_BULK {
            return Some(false);
        }
        p += len as usize;
        match (b.get(p), b.get(p + 1)) {
            (Some(b'\r'), Some(b'\n')) => p += 2,
            (None, _) | (Some(b'\r'), None) => return None,
            _ => return Some(false),
        }
        if !whole {
            return Some(true);
        }
    }
    Some(true)
}

/// The server's first reply line at the start of `b`.
fn reply(b: &[u8]) -> Verdict {
    let t = *b.first()?;
    let line = b.get(1..)?;
    let end = line.iter().take(MAX_LINE).position(|&c| c == b'\r');
    let Some(end) = end else {
        return if line.len() >= MAX_LINE || line.iter().any(|&c| c < 0x20) {
            Some(false)
        } else {
            None
        };
    };
    match line.get(end + 1) {
        None => return None,
        Some(b'\n') => {}
        Some(_) => return Some(false),
    }
    let text = &line[..end];
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    let signed = |s: &[u8]| digits(s.strip_prefix(b"-").unwrap_or(s));
    Some(match t {
        b'+' | b'-' => text.iter().all(|&c| (0x20..0x7f).contains(&c)),
        b':' | b'(' => signed(text),
        b'$' | b'*' | b'%' | b'~' | b'>' | b'|' | b'=' | b'!' => digits(text) || text == b"-1",
        b'_' => text.is_empty(),
        b'#' => text == b"t" || text == b"f",
        b',' => {
            !text.is_empty() && text.iter().all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
        }
        _ => false,
    })
}

fn mid_stream(cx: &ProbeCtx<'_>) -> Probe {
    let mut undecided = false;
    for (req, resp) in [(cx.c2s, cx.s2c), (cx.s2c, cx.c2s)] {
        match (command(req, false), reply(resp)) {
            (Some(true), Some(true)) => return Probe::Match,
            (Some(false), _) | (_, Some(false)) => {}
            _ => undecided = true,
        }
    }
    if undecided && !(cx.c2s_done && cx.s2c_done) {
        Probe::NeedMore
    } else {
        Probe::No
    }
}

/// Redis.
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    if cx.mid_stream {
        return mid_stream(cx);
    }
    if cx.first == Some(Dir::ToClient) {
        return Probe::No; // the server spoke first
    }
    match command(cx.c2s, false) {
        Some(true) => {}
        Some(false) => return Probe::No,
        None if cx.c2s_done => return Probe::No,
        None => return Probe::NeedMore,
    }
    if cx.s2c.is_empty() && cx.s2c_done {
        // No answer at all: the whole first command must be there.
        return match command(cx.c2s, true) {
            Some(true) => Probe::Match,
            _ => Probe::No,
        };
    }
    match reply(cx.s2c) {
        Some(true) => Probe::Match,
        Some(false) => Probe::No,
        None if cx.s2c_done => Probe::No,
        None => Probe::NeedMore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx<'a>(c2s: &'a [u8], s2c: &'a [u8]) -> ProbeCtx<'a> {
        ProbeCtx {
            proto: 6,
            client_port: 51882,
            server_port: 6379,
            c2s,
            s2c,
            c2s_done: false,
            s2c_done: false,
            first: Some(Dir::ToServer),
            mid_stream: false,
        }
    }

    // resp.pcap, 192.168.88.221:51882 -> 6379: COMMAND and the start of its (RESP2)
    // answer, then PING / +PONG.
    const COMMAND: &[u8] = b"*1\r\n$7\r\nCOMMAND\r\n";
    const COMMAND_REPLY: &[u8] = b"*240\r\n*10\r\n$11\r\nsinterstore\r\n:-3\r\n*2\r\n+write\r\n";
    const PING: &[u8] = b"*1\r\n$4\r\nping\r\n";
    const PONG: &[u8] = b"+PONG\r\n";

    #[test]
    fn command_and_reply() {
        assert_eq!(probe(&cx(COMMAND, COMMAND_REPLY)), Probe::Match);
        assert_eq!(probe(&cx(PING, PONG)), Probe::Match);
        assert_eq!(probe(&cx(COMMAND, b"")), Probe::NeedMore, "waits for the answer");
        assert_eq!(probe(&cx(COMMAND, b"*24")), Probe::NeedMore);
        for n in [1, 3, 5, 10] {
            assert_eq!(probe(&cx(&COMMAND[..n], b"")), Probe::NeedMore, "{n}");
        }
        assert_eq!(probe(&cx(COMMAND, b"HTTP/1.1 400 Bad Request\r\n")), Probe::No);
        // RESP3 replies.
        for r in [&b"%7\r\n"[..], b"_\r\n", b"#t\r\n", b",3.14\r\n", b"-ERR unknown\r\n"] {
            assert_eq!(probe(&cx(PING, r)), Probe::Match, "{r:?}");
        }
    }

    #[test]
    fn no_answer() {
        let mut c = cx(COMMAND, b"");
        c.c2s_done = true;
        c.s2c_done = true;
        assert_eq!(probe(&c), Probe::Match);
        c.c2s = &COMMAND[..COMMAND.len() - 2];
        assert_eq!(probe(&c), Probe::No);
    }

    #[test]
    fn other_protocols() {
        for c in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            &[0x16, 3, 1, 0, 0xc8, 1, 0, 0, 0xc4, 3, 3][..],
            b"PING\r\n",
            b"*1\r\n$4\r\nPI G\r\n",
            b"* OK IMAP4rev1\r\n",
            b"stats\r\n",
            b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
        ] {
            assert_eq!(probe(&cx(c, b"+OK\r\n")), Probe::No, "{c:?}");
        }
        let mut server_first = cx(b"", b"+OK\r\n");
        server_first.first = Some(Dir::ToClient);
        assert_eq!(probe(&server_first), Probe::No);
    }

    #[test]
    fn mid_stream() {
        let mut c = cx(PONG, PING); // directions guessed the wrong way round
        c.mid_stream = true;
        assert_eq!(probe(&c), Probe::Match);
        c.c2s = b"";
        assert_eq!(probe(&c), Probe::NeedMore);
        c.c2s = b"\x17\x03\x03\x00\x20";
        assert_eq!(probe(&c), Probe::No);
    }
}
