//! TFTP (RFC 1350; options RFC 2347–2349, RFC 7440).
//!
//! Identification on the first datagram of each direction, by opcode:
//! - 1 RRQ / 2 WRQ: a file name of printable characters (empty only on a session to port
//!   69, the one port hint), its NUL, a mode `netascii`, `octet` or `mail` (any case) and
//!   its NUL, then option name/value pairs (printable, each NUL-terminated) up to the
//!   exact end of the datagram;
//! - 5 ERROR: an error code 0–8 and a printable NUL-terminated message ending the
//!   datagram;
//! - 6 OACK: one or more option pairs, at least one of them a known option (`blksize`,
//!   `tsize`, `timeout`, `windowsize`, `multicast`, `utimeout`, `rollover`);
//! - 3 DATA and 4 ACK (a transfer on its own pair of ports, the request elsewhere): only
//!   together with the other direction — DATA block n answered by ACK n, ACK n (0 after
//!   a WRQ or an OACK) answered by DATA n + 1, or either answered by an ERROR.

use crate::app::probe::{be16, Probe, ProbeCtx};

/// TFTP's well-known port: a request to it may have an empty file name.
const PORT: u16 = 69;
/// Longest file name, option name or value, or error message accepted.
const MAX_STRING: usize = 512;
/// Largest DATA payload (RFC 2348 block size limit).
const MAX_BLOCK: usize = 65_464;
/// Option pairs walked at most.
const MAX_OPTIONS: usize = 16;

const RRQ: u16 = 1;
const WRQ: u16 = 2;
const DATA: u16 = 3;
const ACK: u16 = 4;
const ERROR: u16 = 5;
const OACK: u16 = 6;

const KNOWN_OPTIONS: [&[u8]; 7] =
    [b"blksize", b"tsize", b"timeout", b"windowsize", b"multicast", b"utimeout", b"rollover"];

/// A NUL-terminated printable string at `b[p..]`: the string and the offset after its NUL.
fn cstr(b: &[u8], p: usize) -> Option<(&[u8], usize)> {
    let rest = b.get(p..)?;
    let n = rest.iter().take(MAX_STRING + 1).position(|&c| c == 0)?;
    let s = &rest[..n];
    s.iter().all(|&c| (0x20..0x7f).contains(&c)).then_some((s, p + n + 1))
}

/// Option pairs from `p` to the end of `b`: how many, and whether one is known; `None`
/// if malformed.
fn options(b: &[u8], mut p: usize) -> Option<(usize, bool)> {
    let mut n = 0;
    let mut known = false;
    while p < b.len() {
        if n == MAX_OPTIONS {
            return None;
        }
        let (name, q) = cstr(b, p)?;
        let (_, q) = cstr(b, q)?;
        if name.is_empty() {
            return None;
        }
        known |= KNOWN_OPTIONS.iter().any(|k| name.eq_ignore_ascii_case(k));
        n += 1;
        p = q;
    }
    Some((n, known))
}

/// A request (RRQ/WRQ) datagram; `to_port_69`: sent to TFTP's port.
fn request(b: &[u8], to_port_69: bool) -> bool {
    let Some((name, p)) = cstr(b, 2) else { return false };
    if name.is_empty() && !to_port_69 {
        return false;
    }
    let Some((mode, p)) = cstr(b, p) else { return false };
    let known = [&b"netascii"[..], b"octet", b"mail"];
    known.iter().any(|m| mode.eq_ignore_ascii_case(m)) && options(b, p).is_some()
}

/// An ERROR datagram.
fn error(b: &[u8]) -> bool {
    matches!(be16(b, 2), Some(0..=8)) && cstr(b, 4).is_some_and(|(_, end)| end == b.len())
}

/// What a first datagram is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Enough on its own.
    Alone,
    /// DATA with this block number.
    Data(u16),
    /// ACK with this block number.
    Ack(u16),
    /// An ERROR (enough alone; also answers DATA and ACK).
    Error,
    /// Not TFTP.
    Not,
}

fn kind(b: &[u8], to_port_69: bool) -> Kind {
    let Some(op) = be16(b, 0) else { return Kind::Not };
    match op {
        RRQ | WRQ if request(b, to_port_69) => Kind::Alone,
        OACK if matches!(options(b, 2), Some((1.., true))) => Kind::Alone,
        ERROR if error(b) => Kind::Error,
        DATA if b.len() >= 4 && b.len() <= 4 + MAX_BLOCK => {
            be16(b, 2).map_or(Kind::Not, Kind::Data)
        }
        ACK if b.len() == 4 => be16(b, 2).map_or(Kind::Not, Kind::Ack),
        _ => Kind::Not,
    }
}

/// TFTP (UDP).
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    let (q, r, q_to) = if cx.c2s.is_empty() {
        (cx.s2c, cx.c2s, cx.client_port)
    } else {
        (cx.c2s, cx.s2c, cx.server_port)
    };
    if q.is_empty() {
        return Probe::NeedMore;
    }
    let first = kind(q, q_to == PORT);
    match first {
        Kind::Alone | Kind::Error => return Probe::Match,
        Kind::Not => return Probe::No,
        Kind::Data(_) | Kind::Ack(_) => {}
    }
    if r.is_empty() {
        let done = if cx.c2s.is_empty() { cx.c2s_done } else { cx.s2c_done };
        return if done { Probe::No } else { Probe::NeedMore };
    }
    let answer = kind(r, false);
    let ok = match (first, answer) {
        (_, Kind::Error) => true,
        (Kind::Data(n), Kind::Ack(m)) => n == m,
        (Kind::Ack(n), Kind::Data(m)) => n.wrapping_add(1) == m,
        _ => false,
    };
    if ok {
        Probe::Match
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
            proto: 17,
            client_port: 44618,
            server_port: 62058,
            c2s,
            s2c,
            c2s_done: !c2s.is_empty(),
            s2c_done: !s2c.is_empty(),
            first: Some(Dir::ToServer),
            mid_stream: false,
        }
    }

    // ndpi/pcap/tftp.pcap: an RRQ ("sysman.lis", octet), a WRQ ("zz.bin", netascii), a WRQ
    // with blksize and tsize options and the server's OACK, a transfer's ACK 0 and DATA 1
    // (first 24 bytes), and an RRQ with an empty file name (sent to port 69).
    const RRQ: &str = "00017379736d616e2e6c6973006f6374657400";
    const WRQ: &str = "00027a7a2e62696e006e6574617363696900";
    const WRQ_OPTIONS: &str = "0002656d7074793130304b42006f6374657400626c6b73697a65003134363800747\
        3697a650031303030303000";
    const OACK: &str = "0006626c6b73697a650031343638007473697a650031303030303000";
    const ACK0: &str = "00040000";
    const DATA1: &str = "000300011f8b08009ca8f7600003ecdcbd6e9ed982a6e7dc";
    const RRQ_NO_NAME: &str = "0001006f6374657400";

    #[test]
    fn requests_stand_alone() {
        for r in [RRQ, WRQ, WRQ_OPTIONS, OACK] {
            assert_eq!(probe(&cx(&hex(r), b"")), Probe::Match, "{r}");
        }
        let empty = hex(RRQ_NO_NAME);
        assert_eq!(probe(&cx(&empty, b"")), Probe::No, "empty name, not port 69");
        let mut to69 = cx(&empty, b"");
        to69.server_port = PORT;
        assert_eq!(probe(&to69), Probe::Match);
        let mut bad = hex(RRQ);
        bad[13] = b'x'; // "octex"
        assert_eq!(probe(&cx(&bad, b"")), Probe::No);
        let mut trailing = hex(WRQ);
        trailing.push(b'x'); // an option name without its NUL
        assert_eq!(probe(&cx(&trailing, b"")), Probe::No);
        let mut unknown = hex(OACK);
        unknown[2] = b'c'; // "clksize" and "xsize": no known option left
        unknown[15] = b'x';
        assert_eq!(probe(&cx(&unknown, b"")), Probe::No);
        assert_eq!(probe(&cx(b"\x00\x05\x00\x01File not found\x00", b"")), Probe::Match);
        assert_eq!(probe(&cx(b"\x00\x05\x00\x09File not found\x00", b"")), Probe::No);
    }

    #[test]
    fn transfers_need_both_directions() {
        let ack = hex(ACK0);
        let data = hex(DATA1);
        assert_eq!(probe(&cx(&ack, &data)), Probe::Match);
        let mut one = cx(&ack, b"");
        one.s2c_done = false;
        assert_eq!(probe(&one), Probe::NeedMore);
        one.s2c_done = true;
        assert_eq!(probe(&one), Probe::No);
        assert_eq!(probe(&cx(&data, &hex("00040001"))), Probe::Match, "DATA 1, ACK 1");
        assert_eq!(probe(&cx(&data, &hex("00040002"))), Probe::No);
        assert_eq!(probe(&cx(&data, &data)), Probe::No);
        assert_eq!(probe(&cx(b"", &data)), Probe::NeedMore, "seen from the other side");
    }

    #[test]
    fn other_protocols_are_not_tftp() {
        let dns = hex("1e6a0100000100000000000003777777076578616d706c6503636f6d0000010001");
        assert_eq!(probe(&cx(&dns, b"")), Probe::No);
        let mut ntp = vec![0x1b];
        ntp.resize(48, 0);
        assert_eq!(probe(&cx(&ntp, b"")), Probe::No);
        let mut dhcp = vec![1u8, 1, 6, 0];
        dhcp.resize(300, 0);
        assert_eq!(probe(&cx(&dhcp, b"")), Probe::No);
        assert_eq!(probe(&cx(b"\x00\x01\x00\x00\x00\x00\x00\x00", b"")), Probe::No);
        assert_eq!(probe(&cx(b"M-SEARCH * HTTP/1.1\r\n", b"")), Probe::No, "SSDP");
    }
}
