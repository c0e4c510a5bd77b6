//! Application payloads for the scenarios: HTTP/1.1, DNS, TLS 1.2 hellos, Redis,
//! NTP, SNMP and readable filler. All fixed bytes, no randomness.

/// An HTTP/1.1 GET as curl sends it.
pub(super) fn http_get(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n")
        .into_bytes()
}

/// An HTTP/1.1 200 response with an HTML `body`.
pub(super) fn http_ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\
         Content-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: keep-alive\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A small HTML page mentioning `title`.
pub(super) fn html_page(title: &str) -> String {
    format!(
        "<!doctype html>\n<html><head><title>{title}</title></head>\n\
         <body><h1>{title}</h1><p>Served by pcapgen.</p></body></html>\n"
    )
}

/// `len` bytes of readable, distinct text: lines `"<tag> line NNNN\n"`.
pub(super) fn filler(tag: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(format!("{tag} line {i:04}\n").as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

/// A Redis inline PING as redis-cli sends it (RESP array).
pub(super) const REDIS_PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";
/// The Redis reply to PING.
pub(super) const REDIS_PONG: &[u8] = b"+PONG\r\n";

/// A DNS name in wire format (uncompressed labels).
fn dns_name(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// A DNS query (RFC 1035) for the A record of `name`, recursion desired.
pub(super) fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(32);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&dns_name(name));
    m.extend_from_slice(&[0, 1, 0, 1]);
    m
}

/// The answer to [`dns_query`]: one A record `addr` with `ttl`, the owner name
/// compressed to a pointer at the question (offset 12).
pub(super) fn dns_a_answer(id: u16, name: &str, addr: [u8; 4], ttl: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(48);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    m.extend_from_slice(&dns_name(name));
    m.extend_from_slice(&[0, 1, 0, 1]);
    m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
    m.extend_from_slice(&ttl.to_be_bytes());
    m.extend_from_slice(&[0, 4]);
    m.extend_from_slice(&addr);
    m
}

/// Appends a TLS extension (type, 16-bit length, data).
fn tls_ext(out: &mut Vec<u8>, ext_type: u16, data: &[u8]) {
    out.extend_from_slice(&ext_type.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

/// A TLS record of type handshake holding one handshake message.
fn tls_handshake_record(record_version: u16, msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut rec = Vec::with_capacity(9 + body.len());
    rec.push(0x16);
    rec.extend_from_slice(&record_version.to_be_bytes());
    rec.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    rec.push(msg_type);
    rec.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    rec.extend_from_slice(body);
    rec
}

/// A TLS 1.2 ClientHello (RFC 5246) with SNI `server_name` (RFC 6066), ALPN h2 and
/// http/1.1, ECDHE-GCM/ChaCha suites; the random is a fixed pattern.
pub(super) fn tls_client_hello(server_name: &str) -> Vec<u8> {
    let mut b = vec![0x03, 0x03];
    b.extend((0..32u8).map(|i| 0x10 + i));
    b.push(0);
    let suites: [u16; 6] = [0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8];
    b.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        b.extend_from_slice(&s.to_be_bytes());
    }
    b.extend_from_slice(&[1, 0]);
    let mut ext = Vec::new();
    let name = server_name.as_bytes();
    let mut sni = Vec::with_capacity(name.len() + 5);
    sni.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    sni.push(0);
    sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni.extend_from_slice(name);
    tls_ext(&mut ext, 0x0000, &sni);
    tls_ext(&mut ext, 0x000a, &[0, 4, 0x00, 0x1d, 0x00, 0x17]);
    tls_ext(&mut ext, 0x000b, &[1, 0]);
    tls_ext(&mut ext, 0x000d, &[0, 6, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01]);
    tls_ext(&mut ext, 0x0010, b"\x00\x0c\x02h2\x08http/1.1");
    b.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    b.extend_from_slice(&ext);
    tls_handshake_record(0x0301, 1, &b)
}

/// A TLS 1.2 ServerHello choosing ECDHE-RSA-AES128-GCM-SHA256 and ALPN http/1.1.
pub(super) fn tls_server_hello() -> Vec<u8> {
    let mut b = vec![0x03, 0x03];
    b.extend((0..32u8).map(|i| 0x80 + i));
    b.push(0);
    b.extend_from_slice(&[0xc0, 0x2f, 0x00]);
    let mut ext = Vec::new();
    tls_ext(&mut ext, 0xff01, &[0]);
    tls_ext(&mut ext, 0x0010, b"\x00\x09\x08http/1.1");
    b.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    b.extend_from_slice(&ext);
    tls_handshake_record(0x0303, 2, &b)
}

/// Seconds between the NTP epoch (1900) and the Unix epoch.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// An NTP timestamp (RFC 5905) for `micros` since the Unix epoch.
fn ntp_ts(micros: u64) -> [u8; 8] {
    let secs = (micros / 1_000_000 + NTP_UNIX_OFFSET) as u32;
    let frac = (((micros % 1_000_000) << 32) / 1_000_000) as u32;
    let mut out = [0; 8];
    out[..4].copy_from_slice(&secs.to_be_bytes());
    out[4..].copy_from_slice(&frac.to_be_bytes());
    out
}

/// An NTPv4 client request sent at `now_micros` (48 bytes).
pub(super) fn ntp_request(now_micros: u64) -> Vec<u8> {
    let mut m = vec![0u8; 48];
    m[0] = 0x23;
    m[40..48].copy_from_slice(&ntp_ts(now_micros));
    m
}

/// An NTPv4 stratum-1 ("GPS") server reply to a request sent at `sent_micros`,
/// answered at `now_micros`.
pub(super) fn ntp_reply(sent_micros: u64, now_micros: u64) -> Vec<u8> {
    let mut m = vec![0u8; 48];
    m[..4].copy_from_slice(&[0x24, 1, 6, 0xe9]);
    m[12..16].copy_from_slice(b"GPS\0");
    m[16..24].copy_from_slice(&ntp_ts(now_micros.saturating_sub(16_000_000)));
    m[24..32].copy_from_slice(&ntp_ts(sent_micros));
    m[32..40].copy_from_slice(&ntp_ts(now_micros));
    m[40..48].copy_from_slice(&ntp_ts(now_micros));
    m
}

/// A BER TLV with a short-form length (contents under 128 bytes).
fn ber(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag, contents.len() as u8];
    out.extend_from_slice(contents);
    out
}

/// An SNMPv2c GetRequest for sysDescr.0 (1.3.6.1.2.1.1.1.0), community "public".
pub(super) fn snmp_get_sysdescr(request_id: u32) -> Vec<u8> {
    let oid = ber(0x06, &[0x2b, 6, 1, 2, 1, 1, 1, 0]);
    let varbind = ber(0x30, &[oid, vec![0x05, 0x00]].concat());
    let varbinds = ber(0x30, &varbind);
    let pdu = ber(
        0xa0,
        &[ber(0x02, &request_id.to_be_bytes()), ber(0x02, &[0]), ber(0x02, &[0]), varbinds]
            .concat(),
    );
    ber(0x30, &[ber(0x02, &[1]), ber(0x04, b"public"), pdu].concat())
}

/// A ping payload as iputils sends it: the 16-byte `struct timeval` of the send
/// time (little-endian) followed by the bytes 0x10..0x37.
pub(super) fn ping_payload(now_micros: u64) -> Vec<u8> {
    let mut p = Vec::with_capacity(56);
    p.extend_from_slice(&(now_micros / 1_000_000).to_le_bytes());
    p.extend_from_slice(&(now_micros % 1_000_000).to_le_bytes());
    p.extend(0x10..0x38u8);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_query_layout() {
        let q = dns_query(0x1234, "example.com");
        assert_eq!(q.len(), 12 + 13 + 4);
        assert_eq!(&q[12..25], b"\x07example\x03com\x00");
    }

    #[test]
    fn tls_lengths_are_consistent() {
        for rec in [tls_client_hello("www.example.test"), tls_server_hello()] {
            assert_eq!(usize::from(u16::from_be_bytes([rec[3], rec[4]])), rec.len() - 5);
            let hs_len = u32::from_be_bytes([0, rec[6], rec[7], rec[8]]) as usize;
            assert_eq!(hs_len, rec.len() - 9);
        }
    }

    #[test]
    fn snmp_message_length() {
        let m = snmp_get_sysdescr(0x1111_2222);
        assert_eq!(m[0], 0x30);
        assert_eq!(usize::from(m[1]), m.len() - 2);
        assert_eq!(m.len(), 43);
    }

    #[test]
    fn filler_is_exact_length() {
        let f = filler("seg1", 1000);
        assert_eq!(f.len(), 1000);
        assert!(f.starts_with(b"seg1 line 0000\n"));
    }
}
