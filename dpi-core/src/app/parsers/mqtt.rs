//! MQTT 3.1, 3.1.1 and 5.0 (OASIS MQTT v3.1.1 §3.1, v5.0 §3.1).
//!
//! Identification: the client's first packet is a CONNECT — fixed header byte 0x10 (type
//! 1, flags 0), a remaining length (variable byte integer of 1–4 bytes, at least 12),
//! then the protocol name and level `MQTT` 4 (3.1.1) or 5 (5.0), or `MQIsdp` 3 (3.1),
//! connect flags with the reserved bit clear and a will QoS of at most 2 (QoS and retain
//! only with the will flag), and the keep-alive. When the server's first bytes are in,
//! they must be a CONNACK (0x20, remaining length 2 or more, acknowledge flags 0 or 1).
//!
//! A session picked up mid-stream is identified only if it starts with the CONNECT (from
//! either side, the roles being a guess then: `kafka::either_role`); MQTT's other
//! packets have one- or two-byte signatures too weak to tell it from other traffic.

use crate::app::probe::{at, be16, Probe, ProbeCtx};

/// Least remaining length of a CONNECT: name, level, flags, keep-alive, client id length.
const MIN_CONNECT: usize = 12;

/// A variable byte integer at `b[p]`: the value and its length. `Err`: more than 4 bytes.
fn varint(b: &[u8], p: usize) -> Result<Option<(usize, usize)>, ()> {
    let mut v = 0usize;
    for i in 0..4 {
        let Some(&c) = b.get(p + i) else { return Ok(None) };
        v |= usize::from(c & 0x7f) << (7 * i);
        if c & 0x80 == 0 {
            return Ok(Some((v, i + 1)));
        }
    }
    Err(())
}

/// A CONNECT packet at the start of `b`; `None` while it could still be one.
fn connect(b: &[u8]) -> Option<bool> {
    if *b.first()? != 0x10 {
        return Some(false);
    }
    let Ok(len) = varint(b, 1) else { return Some(false) };
    let (rem, n) = len?;
    if rem < MIN_CONNECT {
        return Some(false);
    }
    let v = &b[1 + n..];
    const NAMES: [(&[u8], u8); 3] =
        [(b"\x00\x04MQTT", 4), (b"\x00\x04MQTT", 5), (b"\x00\x06MQIsdp", 3)];
    let mut possible = false;
    for (name, level) in NAMES {
        let m = v.len().min(name.len());
        if v[..m] != name[..m] {
            continue;
        }
        let Some(&l) = v.get(name.len()) else {
            possible = true;
            continue;
        };
        if l != level {
            continue;
        }
        let flags = *v.get(name.len() + 1)?;
        let will = flags & 0x04 != 0;
        let qos = (flags >> 3) & 3;
        let retain = flags & 0x20 != 0;
        let ok = flags & 0x01 == 0 && qos <= 2 && (will || (qos == 0 && !retain));
        return be16(v, name.len() + 2).map(|_| ok);
    }
    if possible {
        None
    } else {
        Some(false)
    }
}

/// A CONNACK at the start of `b`.
fn connack(b: &[u8]) -> Option<bool> {
    let h = at(b, 0, 3)?;
    Some(h[0] == 0x20 && h[1] >= 2 && h[1] & 0x80 == 0 && h[2] <= 1)
}

/// MQTT.
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    super::kafka::either_role(cx, probe_roles)
}

/// MQTT, with the roles as given.
fn probe_roles(cx: &ProbeCtx<'_>) -> Probe {
    if cx.c2s.is_empty() {
        // The server never speaks first.
        return if cx.c2s_done || !cx.s2c.is_empty() { Probe::No } else { Probe::NeedMore };
    }
    match connect(cx.c2s) {
        Some(true) => {}
        Some(false) => return Probe::No,
        None if cx.c2s_done => return Probe::No,
        None => return Probe::NeedMore,
    }
    if cx.s2c.is_empty() {
        return Probe::Match;
    }
    match connack(cx.s2c) {
        Some(true) => Probe::Match,
        Some(false) => Probe::No,
        None if cx.s2c_done => Probe::No,
        None => Probe::NeedMore,
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
            client_port: 41892,
            server_port: 1883,
            c2s,
            s2c,
            c2s_done: false,
            s2c_done: false,
            first: Some(Dir::ToServer),
            mid_stream: false,
        }
    }

    // ndpi/pcap/mqtt.pcap, 192.168.0.1:41892 -> 10.10.10.1:1883: an MQTT 3.1 (MQIsdp)
    // CONNECT with a will and credentials, and the CONNACK.
    const CONNECT_31: &str =
        "104000064d514973647003c20014001663626161626362616261636262626262616161\
        616162000c303244353035303232334433000c303244353035303232334433";
    const CONNACK: &str = "20020000";
    // The same capture, 100.67.35.238:35035 -> 51.137.28.239:1883 (Azure IoT Hub): MQTT
    // 3.1.1 CONNECT with a two-byte remaining length (first 40 bytes).
    const CONNECT_311: &str =
        "109a0200044d51545404c00258001050343737373549443137305732313230004a69\
        6f74617a6577";

    #[test]
    fn connect_and_connack() {
        let c = hex(CONNECT_31);
        let s = hex(CONNACK);
        assert_eq!(probe(&cx(&c, b"")), Probe::Match);
        assert_eq!(probe(&cx(&c, &s)), Probe::Match);
        assert_eq!(probe(&cx(&c, &s[..2])), Probe::NeedMore);
        assert_eq!(probe(&cx(&c, b"HTTP/1.1 400 Bad Request\r\n")), Probe::No);
        let c4 = hex(CONNECT_311);
        assert_eq!(probe(&cx(&c4, b"")), Probe::Match);
        for n in 1..13 {
            assert_eq!(probe(&cx(&c4[..n], b"")), Probe::NeedMore, "{n} bytes");
        }
        let mut v5 = c4.clone();
        v5[9] = 5;
        assert_eq!(probe(&cx(&v5, b"")), Probe::Match, "MQTT 5");
        v5[9] = 3;
        assert_eq!(probe(&cx(&v5, b"")), Probe::No, "MQTT with level 3");
        let mut bad = c4.clone();
        bad[10] |= 0x01; // reserved flag
        assert_eq!(probe(&cx(&bad, b"")), Probe::No);
        let mut bad = c4.clone();
        bad[10] = 0x10; // will QoS without will
        assert_eq!(probe(&cx(&bad, b"")), Probe::No);
        assert_eq!(probe(&cx(&v5[..10], b"")), Probe::No, "level known wrong");
        let mut done = cx(&c4[..8], b"");
        done.c2s_done = true;
        assert_eq!(probe(&done), Probe::No);
    }

    #[test]
    fn other_protocols_are_not_mqtt() {
        let no = |c: &[u8], s: &[u8]| probe(&cx(c, s));
        assert_eq!(no(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b""), Probe::No);
        assert_eq!(no(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b""), Probe::No);
        assert_eq!(no(b"\x00\x1c\x12\x34\x01\x00\x00\x01\x00\x00", b""), Probe::No, "DNS/TCP");
        assert_eq!(no(b"AMQP\x00\x00\x09\x01", b""), Probe::No);
        assert_eq!(no(b"\x10\x0c\x00\x04HTTP\x04\x02\x00\x3c", b""), Probe::No);
        assert_eq!(no(b"\x10\xff\xff\xff\xff\x01", b""), Probe::No, "5-byte length");
        assert_eq!(no(b"", b"INFO {}\r\n"), Probe::No);
        assert_eq!(no(b"", b""), Probe::NeedMore);
    }
}
