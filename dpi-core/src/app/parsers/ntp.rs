//! NTP (RFC 5905 for versions 3 and 4, RFC 1305 / RFC 1119 before), including the mode 6
//! control messages (RFC 1305 Appendix B, RFC 9327) and ntpd's mode 7 private messages.
//!
//! Identification, on the first datagram of the client (or of the server, when the
//! client's was not seen), version 1–4:
//! - modes 1–5: at least 48 bytes, a multiple of 4 (extension fields and MAC come in
//!   words); stratum at most 16; poll −7..=17; precision −32..=0; root delay and root
//!   dispersion under 256 s; a stratum 1 reference id of ASCII letters and digits; the
//!   reference and receive timestamps (and, except in a server's reply, the origin
//!   timestamp, which echoes the client's possibly random transmit time) zero or between
//!   1968 and 2053 (era 0 and the start of era 1);
//! - mode 6: the 12-byte header (a defined opcode, no error bit in a request) and a
//!   length of exactly the header, the data count padded to a word, and a MAC or none;
//! - mode 7: implementation 0, 2 or 3, request code at most 45, the must-be-zero bits
//!   clear, and the items (count × size, at most 500 bytes) consistent with the length:
//!   a response is exactly its items, an unauthenticated request is its items and zero
//!   padding.
//!
//! When both directions' first datagrams are in, their modes must pair up: client (3) and
//! server (4), symmetric active (1) and active or passive (1, 2), control and private
//! requests with responses (the response bit set). A single datagram's mode is not
//! checked against its direction: reflected traffic (a server reply or a mode 7 response
//! sent to a victim's port) is NTP too. The port (123) is not needed.

use crate::app::probe::{at, be16, be32, Probe, ProbeCtx};

/// Smallest standard NTP packet.
const HEADER: usize = 48;
/// Largest standard packet believed (header, extension fields, MAC).
const MAX_LEN: usize = 2048;
/// Largest mode 6 data count and mode 7 data area.
const MAX_CONTROL_DATA: usize = 500;
/// Room for a MAC (key id and a 20-byte digest) after control data.
const MAC_ROOM: usize = 24;

/// Is a timestamp's seconds field plausible? Zero, or from 1968 (0x8000_0000) to the end
/// of era 0 (2036), or in the first 17 years of era 1.
fn sane_time(secs: u32) -> bool {
    secs == 0 || !(0x2000_0000..0x8000_0000).contains(&secs)
}

/// A mode 1–5 packet.
fn standard(b: &[u8], mode: u8) -> Option<bool> {
    if b.len() < HEADER || b.len() > MAX_LEN || !b.len().is_multiple_of(4) {
        return Some(false);
    }
    let stratum = b[1];
    let poll = b[2] as i8;
    let precision = b[3] as i8;
    if stratum > 16 || !(-7..=17).contains(&poll) || !(-32..=0).contains(&precision) {
        return Some(false);
    }
    if b[4] != 0 || b[8] != 0 {
        return Some(false); // root delay or dispersion of 256 s or more
    }
    let refid = at(b, 12, 4)?;
    if stratum == 1
        && !refid.iter().all(|&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == 0)
    {
        return Some(false);
    }
    let mut times = [16usize, 24, 32];
    if mode == 4 || mode == 2 {
        times[1] = 16; // the origin timestamp echoes the peer's transmit time
    }
    Some(times.iter().all(|&o| be32(b, o).is_some_and(sane_time)))
}

/// A mode 6 control message.
fn control(b: &[u8]) -> Option<bool> {
    let h = at(b, 0, 12)?;
    let response = h[1] & 0x80 != 0;
    let error = h[1] & 0x40 != 0;
    let opcode = h[1] & 0x1f;
    let count = usize::from(be16(h, 10)?);
    if !matches!(opcode, 1..=12 | 31) || (error && !response) || count > MAX_CONTROL_DATA {
        return Some(false);
    }
    // The header, the data padded to a word, and a MAC (key id and MD5 or SHA-1 digest)
    // or none.
    let body = 12 + count.next_multiple_of(4);
    Some([body, body + 20, body + 24].contains(&b.len()))
}

/// A mode 7 private message (ntpd's `ntpdc`).
fn private(b: &[u8]) -> Option<bool> {
    let h = at(b, 0, 8)?;
    let response = h[0] & 0x80 != 0;
    let authenticated = h[1] & 0x80 != 0;
    let implementation = h[2];
    let request = h[3];
    let items = usize::from(be16(h, 4)? & 0x0fff);
    let size = be16(h, 6)?;
    if !matches!(implementation, 0 | 2 | 3) || request > 45 || size & 0xf000 != 0 {
        return Some(false);
    }
    let data = items * usize::from(size);
    let end = 8 + data;
    if data > MAX_CONTROL_DATA || b.len() < end {
        return Some(false);
    }
    if response {
        // Exactly its items.
        return Some(b.len() <= end + 3);
    }
    // A request's data area is padded with zeros (then, when authenticated, a timestamp,
    // key id and MAC follow).
    if authenticated {
        return Some(b.len() <= 8 + data.max(40) + 8 + MAC_ROOM);
    }
    Some(b.len() <= 8 + data.max(40) && b[end..].iter().all(|&c| c == 0))
}

/// The mode of the NTP message `b`, or `None` if it is not one.
pub fn message(b: &[u8]) -> Option<u8> {
    let first = *b.first()?;
    let version = (first >> 3) & 7;
    let mode = first & 7;
    if !(1..=4).contains(&version) {
        return None;
    }
    let ok = match mode {
        1..=5 => standard(b, mode),
        6 => control(b),
        7 => private(b),
        _ => None,
    };
    (ok == Some(true)).then_some(mode)
}

/// Do a first datagram of mode `q` and an answer of mode `r` belong together?
fn pair(q: &[u8], r: &[u8], qm: u8, rm: u8) -> bool {
    match (qm, rm) {
        (3, 4) | (1, 1 | 2) => true,
        // The response bit: in the second byte in mode 6, in the first in mode 7.
        (6, 6) => q[1] & 0x80 == 0 && r[1] & 0x80 != 0,
        (7, 7) => q[0] & 0x80 == 0 && r[0] & 0x80 != 0,
        _ => false,
    }
}

/// NTP (UDP).
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    let (q, r) = if cx.c2s.is_empty() { (cx.s2c, &[][..]) } else { (cx.c2s, cx.s2c) };
    if q.is_empty() {
        return Probe::NeedMore;
    }
    let Some(qm) = message(q) else { return Probe::No };
    if r.is_empty() {
        return Probe::Match;
    }
    match message(r) {
        Some(rm) if pair(q, r, qm, rm) => Probe::Match,
        _ => Probe::No,
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
            client_port: 45863,
            server_port: 10123,
            c2s,
            s2c,
            c2s_done: !c2s.is_empty(),
            s2c_done: !s2c.is_empty(),
            first: Some(Dir::ToServer),
            mid_stream: false,
        }
    }

    // ndpi/pcap/NTPv2.pcap: an ntpd mode 7 MON_GETLIST_1 response (5 items of 72 bytes),
    // sent from port 123 to port 80 (reflection).
    // ndpi/pcap/NTPv3.pcap: a version 3 server reply (mode 4, stratum 0) sent to port 80.
    // ndpi/pcap/NTPv4.pcap: a version 4 client request.
    // ndpi/pcap/android.pcap: an SNTP request (all zero but the transmit time) and the
    // reply (stratum 1, reference "GOOG").
    const MONLIST_RESPONSE: &str = "970e032a00050048000000000000103a000000000000018848ef596dac100c\
        65000000010c02070200000000000000000000000000000000000000000000000000000000000000000000\
        000000000000000000010000106700000000000000c740bb9f0dac100c6500000001bb1c07020000000000\
        000000000000000000000000000000000000000000000000000000000000000000000000000000000010c4\
        00000000000006ba504829d2ac100c65000000012ada070200000000000000000000000000000000000000\
        00000000000000000000000000000000000000000000000000000010d800000000000005b35f5ab80bac10\
        0c650000000100500702000000000000000000000000000000000000000000000000000000000000000000\
        0000000000000000000000000010db0000000000000591477ba6f6ac100c65000000010050070200000000\
        000000000000000000000000000000000000000000000000000000000000000000000000";
    const V3_SERVER: &str = "1c0004fa00000000000000000000000000000000000000000000000000000000d94f4\
        f1100000000d94f4f1100000000";
    const V4_CLIENT: &str = "230207eb00000450000003ab83bc03dfd94f51c33165b860d944575530336fd0d9445\
        75531b4e978d94f51f42d26e2f4";
    const SNTP_REQUEST: &str = "1b0000000000000000000000000000000000000000000000000000000000000000\
        00000000000000e1fcd68ee3126ecc";
    const SNTP_REPLY: &str = "1c0100ec000000000000000c474f4f47e1fcd6d356f0a848e1fcd68ee3126ecce1fc\
        d6d356f0a849e1fcd6d356f0a84b";

    #[test]
    fn standard_modes() {
        let v4 = hex(V4_CLIENT);
        assert_eq!(message(&v4), Some(3));
        assert_eq!(probe(&cx(&v4, b"")), Probe::Match);
        let v3 = hex(V3_SERVER);
        assert_eq!(probe(&cx(&v3, b"")), Probe::Match, "a reply alone, either direction");
        let q = hex(SNTP_REQUEST);
        let r = hex(SNTP_REPLY);
        assert_eq!(probe(&cx(&q, &r)), Probe::Match);
        assert_eq!(probe(&cx(b"", &r)), Probe::Match);
        assert_eq!(probe(&cx(&q, &q)), Probe::No, "a request answered by a request");
        assert_eq!(probe(&cx(&q[..44], b"")), Probe::No, "short");
        let mut bad = r.clone();
        bad[12] = b'g'; // stratum 1 reference id
        assert_eq!(probe(&cx(&bad, b"")), Probe::No);
        let mut bad = v4.clone();
        bad[1] = 17; // stratum
        assert_eq!(probe(&cx(&bad, b"")), Probe::No);
        let mut bad = v4.clone();
        bad[0] = 0x03; // version 0
        assert_eq!(probe(&cx(&bad, b"")), Probe::No);
        let mut bad = v4.clone();
        bad[16] = 0x40; // reference time in 1934
        assert_eq!(probe(&cx(&bad, b"")), Probe::No);
        let mut mac = v4.clone();
        mac.extend_from_slice(&[0; 20]); // key id and MD5 digest
        assert_eq!(probe(&cx(&mac, b"")), Probe::Match);
        mac.push(0);
        assert_eq!(probe(&cx(&mac, b"")), Probe::No, "not a whole word");
        assert_eq!(probe(&cx(b"", b"")), Probe::NeedMore);
    }

    #[test]
    fn control_and_private_modes() {
        let m = hex(MONLIST_RESPONSE);
        assert_eq!(message(&m), Some(7));
        assert_eq!(probe(&cx(&m, b"")), Probe::Match);
        assert_eq!(probe(&cx(&m[..m.len() - 8], b"")), Probe::No, "items cut");
        // The monlist request that asks for it (ntpdc: version 2, implementation 3, request
        // 42, 40 bytes of zero data).
        let mut q = hex("1700032a00000000");
        q.resize(48, 0);
        assert_eq!(probe(&cx(&q, &m)), Probe::Match);
        assert_eq!(probe(&cx(&q, &hex(V3_SERVER))), Probe::No);
        // ntpq READVAR request (mode 6, opcode 2) and a response with 4 bytes of data.
        let rv = hex("160200010000000000000000");
        let resp = hex("16820001061800000000000476657273");
        assert_eq!(probe(&cx(&rv, &resp)), Probe::Match);
        let err_req = hex("164200010000000000000000");
        assert_eq!(probe(&cx(&err_req, b"")), Probe::No, "error bit in a request");
    }

    #[test]
    fn other_protocols_are_not_ntp() {
        // LLMNR queries from ndpi/pcap/1kxun.pcap whose ids read as mode 6 and mode 7.
        let llmnr = hex("e6a100000001000000000000086a61736f6e2d50430000ff0001");
        assert_eq!(probe(&cx(&llmnr, b"")), Probe::No);
        let llmnr = hex("a60d00000001000000000000066973617461700000010001");
        assert_eq!(probe(&cx(&llmnr, b"")), Probe::No);
        let mut m7 = llmnr.clone();
        m7[0] = 0x17;
        assert_eq!(probe(&cx(&m7, b"")), Probe::No, "mode 7 request with a name after it");
        let dns = hex("1e6a0100000100000000000003777777076578616d706c6503636f6d0000010001");
        assert_eq!(probe(&cx(&dns, b"")), Probe::No);
        assert_eq!(probe(&cx(b"\x00\x01file\x00octet\x00", b"")), Probe::No, "TFTP");
        let mut dhcp = vec![1u8, 1, 6, 0];
        dhcp.resize(300, 0);
        assert_eq!(probe(&cx(&dhcp, b"")), Probe::No);
        // A QUIC Initial (long header 0xc3, version 1): version 0 in NTP's reading.
        let mut quic = hex("c300000001088394c8f03e5157080000449e");
        quic.resize(1200, 0);
        assert_eq!(probe(&cx(&quic, b"")), Probe::No);
        assert_eq!(probe(&cx(b"M-SEARCH * HTTP/1.1\r\n", b"")), Probe::No, "SSDP");
    }
}
