//! Test helpers: IP packets built with etherparse, and pcap/pcapng files written by hand
//! (so the tests do not depend on the reader's own library to produce their input).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use etherparse::PacketBuilder;

pub const CLIENT: [u8; 4] = [10, 0, 0, 1];
pub const SERVER: [u8; 4] = [10, 0, 0, 2];
pub const CLIENT6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const SERVER6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// TCP flags for [`tcp4`].
#[derive(Clone, Copy, Default)]
pub struct Flags {
    pub syn: bool,
    pub ack: Option<u32>,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
}

pub const SYN: Flags = Flags { syn: true, ack: None, fin: false, rst: false, psh: false };

pub fn ack(n: u32) -> Flags {
    Flags { ack: Some(n), ..Flags::default() }
}

/// An IPv4 TCP packet (no link header).
pub fn tcp4(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    seq: u32,
    f: Flags,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ipv4(src, dst, 64).tcp(sport, dport, seq, 65535);
    if f.syn {
        b = b.syn();
    }
    if let Some(a) = f.ack {
        b = b.ack(a);
    }
    if f.fin {
        b = b.fin();
    }
    if f.rst {
        b = b.rst();
    }
    if f.psh {
        b = b.psh();
    }
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// An IPv6 TCP SYN (no link header).
pub fn tcp6_syn(sport: u16, dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(CLIENT6, SERVER6, 64)
        .tcp(sport, dport, 1, 65535)
        .syn()
        .write(&mut v, &[])
        .unwrap();
    v
}

/// An IPv4 UDP packet (no link header).
pub fn udp4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src, dst, 64).udp(sport, dport).write(&mut v, payload).unwrap();
    v
}

/// An Ethernet II frame around `payload`.
pub fn eth(ethertype: u16, src_mac: [u8; 6], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x02, 0, 0, 0, 0, 0xbb];
    v.extend_from_slice(&src_mac);
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// What the reader must produce for a synthesised header: zero destination MAC.
pub fn synth_eth(ethertype: u16, src_mac: [u8; 6], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0; 6];
    v.extend_from_slice(&src_mac);
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// IPv4 or IPv6 ethertype from the version nibble.
pub fn ethertype_of(ip: &[u8]) -> u16 {
    if ip[0] >> 4 == 6 {
        0x86dd
    } else {
        0x0800
    }
}

/// A pcap file: `(microseconds since the epoch, captured bytes)` per packet.
pub fn pcap(linktype: u32, packets: &[(u64, Vec<u8>)]) -> Vec<u8> {
    pcap_with(linktype, false, false, packets)
}

/// A pcap file, with nanosecond timestamps and/or big-endian fields on request.
pub fn pcap_with(linktype: u32, nanos: bool, big: bool, packets: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let w32 = |v: &mut Vec<u8>, x: u32| {
        v.extend_from_slice(&if big { x.to_be_bytes() } else { x.to_le_bytes() })
    };
    let w16 = |v: &mut Vec<u8>, x: u16| {
        v.extend_from_slice(&if big { x.to_be_bytes() } else { x.to_le_bytes() })
    };
    let mut v = Vec::new();
    w32(&mut v, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
    w16(&mut v, 2);
    w16(&mut v, 4);
    w32(&mut v, 0);
    w32(&mut v, 0);
    w32(&mut v, 262_144);
    w32(&mut v, linktype);
    for (us, data) in packets {
        w32(&mut v, (us / 1_000_000) as u32);
        let frac = us % 1_000_000;
        w32(&mut v, if nanos { (frac * 1000 + 7) as u32 } else { frac as u32 });
        w32(&mut v, data.len() as u32);
        w32(&mut v, data.len() as u32 + 4);
        v.extend_from_slice(data);
    }
    v
}

fn pad4(v: &mut Vec<u8>) {
    while v.len() & 3 != 0 {
        v.push(0);
    }
}

fn block(out: &mut Vec<u8>, ty: u32, body: &[u8]) {
    let mut body = body.to_vec();
    pad4(&mut body);
    let len = body.len() as u32 + 12;
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&len.to_le_bytes());
}

/// An interface for [`pcapng`]: link type and optional `if_tsresol`.
pub struct NgIface {
    pub linktype: u16,
    pub tsresol: Option<u8>,
}

/// A pcapng packet: interface, timestamp in that interface's units, data.
pub struct NgPacket {
    pub iface: u32,
    pub units: u64,
    pub data: Vec<u8>,
}

/// A little-endian pcapng file: one section, the interfaces, an interface statistics block
/// (to be ignored), then the packets as enhanced packet blocks.
pub fn pcapng(ifaces: &[NgIface], packets: &[NgPacket]) -> Vec<u8> {
    let mut v = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut v, 0x0a0d_0d0a, &shb);
    for i in ifaces {
        let mut idb = Vec::new();
        idb.extend_from_slice(&i.linktype.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&0u32.to_le_bytes());
        if let Some(r) = i.tsresol {
            idb.extend_from_slice(&9u16.to_le_bytes());
            idb.extend_from_slice(&1u16.to_le_bytes());
            idb.extend_from_slice(&[r, 0, 0, 0]);
            idb.extend_from_slice(&[0; 4]); // opt_endofopt
        }
        block(&mut v, 1, &idb);
    }
    // Interface statistics block for interface 0: no options.
    let mut isb = Vec::new();
    isb.extend_from_slice(&0u32.to_le_bytes());
    isb.extend_from_slice(&[0; 8]);
    block(&mut v, 5, &isb);
    for p in packets {
        let mut epb = Vec::new();
        epb.extend_from_slice(&p.iface.to_le_bytes());
        epb.extend_from_slice(&((p.units >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(p.units as u32).to_le_bytes());
        epb.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&p.data);
        pad4(&mut epb);
        block(&mut v, 6, &epb);
    }
    v
}

/// A complete TCP conversation on Ethernet: handshake, one request, one response, FIN
/// from the client, FIN from the server, last ACK. Client 10.0.0.1:40000, server
/// 10.0.0.2:80, starting at `t0` microseconds, one millisecond apart.
pub fn tcp_conversation(t0: u64) -> Vec<(u64, Vec<u8>)> {
    let (c, s) = (CLIENT, SERVER);
    let (cp, sp) = (40000, 80);
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let ci = 1000u32; // client ISN
    let si = 5000u32; // server ISN
    let c1 = ci + 1;
    let s1 = si + 1;
    let c2 = c1 + req.len() as u32;
    let s2 = s1 + resp.len() as u32;
    let pkts = [
        tcp4(c, cp, s, sp, ci, SYN, &[]),
        tcp4(s, sp, c, cp, si, Flags { syn: true, ack: Some(c1), ..Flags::default() }, &[]),
        tcp4(c, cp, s, sp, c1, ack(s1), &[]),
        tcp4(c, cp, s, sp, c1, Flags { psh: true, ack: Some(s1), ..Flags::default() }, req),
        tcp4(s, sp, c, cp, s1, Flags { psh: true, ack: Some(c2), ..Flags::default() }, resp),
        tcp4(c, cp, s, sp, c2, Flags { fin: true, ack: Some(s2), ..Flags::default() }, &[]),
        tcp4(s, sp, c, cp, s2, Flags { fin: true, ack: Some(c2 + 1), ..Flags::default() }, &[]),
        tcp4(c, cp, s, sp, c2 + 1, ack(s2 + 1), &[]),
    ];
    pkts.into_iter()
        .enumerate()
        .map(|(i, ip)| {
            let mac = if ip[12..16] == c { [2, 0, 0, 0, 0, 1] } else { [2, 0, 0, 0, 0, 2] };
            (t0 + i as u64 * 1000, eth(0x0800, mac, &ip))
        })
        .collect()
}
