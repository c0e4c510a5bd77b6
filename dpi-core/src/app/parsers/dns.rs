//! DNS (RFC 1035) over UDP and TCP (2-byte length prefix).
//!
//! Identification: a well-formed header (opcode query/iquery/status/notify/update; a query
//! has one or more questions and no answers) and a well-formed first question (labels,
//! type, class IN/CH/HS/ANY). NetBIOS name service (RFC 1002: DNS framing with NB/NBSTAT
//! questions), multicast DNS and LLMNR (the same framing on ports 5353 and 5355, distinct
//! protocols) are not DNS. Names learned from answers feed FQDN rules (`crate::fqdn`).

use crate::app::probe::{at, be16, Probe, ProbeCtx};

/// mDNS and LLMNR ports: DNS framing, other protocols.
const NOT_DNS_PORTS: [u16; 2] = [5353, 5355];

/// Is `m` a plausible DNS message? `query`: sent by the client.
pub fn message(m: &[u8], query: bool) -> Option<bool> {
    let h = at(m, 0, 12)?;
    let flags = u16::from_be_bytes([h[2], h[3]]);
    let qr = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0xf;
    let qd = be16(h, 4)?;
    let an = be16(h, 6)?;
    let ns = be16(h, 8)?;
    if qr == query || !matches!(opcode, 0 | 1 | 2 | 4 | 5) || qd > 16 || an > 256 || ns > 256 {
        return Some(false);
    }
    if query && (qd == 0 || an != 0) {
        return Some(false);
    }
    if qd == 0 {
        return Some(opcode != 0 || flags & 0xf != 0); // an error response may echo none
    }
    // The first question: labels (no compression in a first question), type, class.
    let mut p = 12;
    let mut total = 0;
    loop {
        let len = usize::from(*m.get(p)?);
        if len == 0 {
            p += 1;
            break;
        }
        if len > 63 {
            return Some(false);
        }
        // Labels are any octets (RFC 2181 §11): only lengths are checked.
        at(m, p + 1, len)?;
        total += len + 1;
        if total > 255 {
            return Some(false);
        }
        p += len + 1;
    }
    let qtype = be16(m, p)?;
    let qclass = be16(m, p + 2)? & 0x7fff;
    // NetBIOS name service: NB/NBSTAT questions about a 32-letter encoded name (RFC 1002
    // §4.1; 0x21 alone is also SRV).
    let netbios_name = m.get(12) == Some(&32)
        && at(m, 13, 32).is_some_and(|n| n.iter().all(|c| (b'A'..=b'P').contains(c)));
    if qtype == 0 || (matches!(qtype, 0x20 | 0x21) && netbios_name) {
        return Some(false);
    }
    Some(matches!(qclass, 1 | 3 | 4 | 255))
}

fn answer(ok: Option<bool>, done: bool) -> Probe {
    match ok {
        Some(true) => Probe::Match,
        Some(false) => Probe::No,
        None if done => Probe::No,
        None => Probe::NeedMore,
    }
}

/// DNS over UDP: the first client datagram is a query (or, if the query was not seen, the
/// first server datagram is a response).
pub fn probe_udp(cx: &ProbeCtx<'_>) -> Probe {
    if NOT_DNS_PORTS.iter().any(|&p| cx.port_is(p)) {
        return Probe::No;
    }
    if !cx.c2s.is_empty() {
        return answer(message(cx.c2s, true), true);
    }
    if !cx.s2c.is_empty() {
        return answer(message(cx.s2c, false), true);
    }
    Probe::NeedMore
}

/// DNS over TCP: a 2-byte length, then a query.
pub fn probe_tcp(cx: &ProbeCtx<'_>) -> Probe {
    let (b, query, done) = if !cx.c2s.is_empty() {
        (cx.c2s, true, cx.c2s_done)
    } else if !cx.s2c.is_empty() {
        (cx.s2c, false, cx.s2c_done)
    } else {
        return Probe::NeedMore;
    };
    let Some(len) = be16(b, 0) else { return answer(None, done) };
    if !(12..=65_535).contains(&len) {
        return Probe::No;
    }
    answer(message(&b[2..], query), done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m
    }

    #[test]
    fn queries_and_lookalikes() {
        assert_eq!(message(&query("example.com", 1), true), Some(true));
        assert_eq!(message(&query("example.com", 1), false), Some(false), "QR clear");
        assert_eq!(message(&query("EFEFEFEFEFEFEFEFEFEFEFEFEFEFEFAA", 0x20), true), Some(false));
        assert_eq!(message(&query("_sip._udp.sip.example.dk", 0x21), true), Some(true), "SRV");
        assert_eq!(message(&query("a", 1)[..14], true), None, "cut short");
        let mut tcp = ((query("x.org", 28).len()) as u16).to_be_bytes().to_vec();
        tcp.extend_from_slice(&query("x.org", 28));
        let cx = ProbeCtx {
            proto: 6,
            client_port: 1,
            server_port: 2,
            c2s: &tcp,
            s2c: b"",
            c2s_done: false,
            s2c_done: false,
            first: None,
            mid_stream: false,
        };
        assert_eq!(probe_tcp(&cx), Probe::Match);
    }
}
