//! DHCP (RFC 2131) on the BOOTP message layout (RFC 951).
//!
//! Identification: a datagram (the client's first, or the server's when the client's was
//! not seen) of at least 241 bytes with `op` 1 (request) or 2 (reply), a hardware type of
//! at most 32 with an address length of at most 16, a hop count of at most 16, the magic
//! cookie 63 82 53 63 at offset 236, and among the options that follow (walked by code and
//! length up to the end option) a DHCP message type (option 53, length 1) of 1–18
//! (DISCOVER ... the RFC 6926 and RFC 7724 additions). BOOTP without option 53 is not
//! DHCP.

use crate::app::probe::{at, Probe, ProbeCtx};

const MAGIC: [u8; 4] = [0x63, 0x82, 0x53, 0x63];
/// Offset of the options (after the magic cookie).
const OPTIONS: usize = 240;
/// Options walked at most.
const MAX_OPTIONS: usize = 128;

/// Is the datagram `b` a DHCP message?
pub fn message(b: &[u8]) -> bool {
    let Some(h) = at(b, 0, 4) else { return false };
    if !matches!(h[0], 1 | 2) || h[1] == 0 || h[1] > 32 || h[2] > 16 || h[3] > 16 {
        return false;
    }
    if at(b, 236, 4) != Some(&MAGIC[..]) {
        return false;
    }
    let mut p = OPTIONS;
    for _ in 0..MAX_OPTIONS {
        let Some(&code) = b.get(p) else { return false };
        match code {
            0 => p += 1,
            255 => return false,
            _ => {
                let Some(&len) = b.get(p + 1) else { return false };
                let Some(v) = at(b, p + 2, usize::from(len)) else { return false };
                if code == 53 {
                    return len == 1 && (1..=18).contains(&v[0]);
                }
                p += 2 + usize::from(len);
            }
        }
    }
    false
}

/// DHCP (UDP).
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    let b = if cx.c2s.is_empty() { cx.s2c } else { cx.c2s };
    if b.is_empty() {
        return Probe::NeedMore;
    }
    if message(b) {
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
            client_port: 68,
            server_port: 67,
            c2s,
            s2c,
            c2s_done: !c2s.is_empty(),
            s2c_done: !s2c.is_empty(),
            first: Some(Dir::ToServer),
            mid_stream: false,
        }
    }

    // ndpi/pcap/1kxun.pcap: a REQUEST from 0.0.0.0:68 to the broadcast address, and an ACK
    // from 192.168.119.1:67.
    const REQUEST: &str = "01010600060fbf5b0000000000000000000000000000000000000000703eacf0f007000\
        00000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
        00000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
        00000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
        00000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
        000000000000000000000000000000000000000000000000000000000638253633501033707017903060f7\
        7fc390205dc3d0701703eacf0f0073204c0a803ed33040076a7000c045368656eff0000000000000000000\
        0000000000000";
    const ACK: &str = "020106001797c0cc00000000c0a80510c0a80510c0a877010000000060c54705bc8c0000000\
        00000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
        00000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
        00000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
        00000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
        00000000000000000000000000000000000000000000000000000638253633501053604c0a877013304000\
        0003c0104ffff00000304c0a877010610a85f010108080808a85fc00108080404ff0000000000000000000\
        000000000";

    #[test]
    fn requests_and_replies() {
        let q = hex(REQUEST);
        let a = hex(ACK);
        assert_eq!(probe(&cx(&q, b"")), Probe::Match);
        assert_eq!(probe(&cx(b"", &a)), Probe::Match, "the server's broadcast alone");
        assert_eq!(probe(&cx(&q, &a)), Probe::Match);
        assert_eq!(probe(&cx(&q[..239], b"")), Probe::No, "a datagram is whole");
        let mut bad = q.clone();
        bad[2] = 17; // hlen
        assert_eq!(probe(&cx(&bad, b"")), Probe::No);
        let mut bad = q.clone();
        bad[239] = 0x64; // cookie
        assert_eq!(probe(&cx(&bad, b"")), Probe::No);
        let mut bootp = q.clone();
        bootp[240] = 0xff; // options end before the message type
        assert_eq!(probe(&cx(&bootp, b"")), Probe::No);
        let mut bad = q.clone();
        bad[242] = 19; // message type
        assert_eq!(probe(&cx(&bad, b"")), Probe::No);
        assert_eq!(probe(&cx(b"", b"")), Probe::NeedMore);
    }

    #[test]
    fn other_protocols_are_not_dhcp() {
        // A DNS query (ndpi/pcap/dns.pcap shape) and an NTP client request.
        let dns = hex("1e6a0100000100000000000003777777076578616d706c6503636f6d0000010001");
        assert_eq!(probe(&cx(&dns, b"")), Probe::No);
        let mut ntp = vec![0x1b];
        ntp.resize(48, 0);
        assert_eq!(probe(&cx(&ntp, b"")), Probe::No);
        assert_eq!(probe(&cx(b"\x00\x01file\x00octet\x00", b"")), Probe::No, "TFTP");
        assert_eq!(probe(&cx(b"GET / HTTP/1.1\r\n\r\n", b"")), Probe::No);
        let mut zeros = vec![1u8, 1, 6, 0];
        zeros.resize(300, 0);
        assert_eq!(probe(&cx(&zeros, b"")), Probe::No, "no cookie");
    }
}
