//! Test helpers: an independent checksum verifier and reassembler built on
//! etherparse slicing, and small views of TCP/UDP frames.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

/// One's-complement sum of the concatenation of `parts`, folded to 16 bits. A
/// message with a correct checksum field sums to 0xffff.
pub(crate) fn ones_sum(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.concat();
    let mut acc: u32 = 0;
    for pair in bytes.chunks(2) {
        let hi = u32::from(pair[0]) << 8;
        let lo = pair.get(1).copied().map_or(0, u32::from);
        acc += hi | lo;
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Checks a transport (or other upper-layer) message of `proto` between `src`
/// and `dst` (4 or 16 bytes each).
pub(crate) fn check_upper(src: &[u8], dst: &[u8], proto: u8, msg: &[u8]) -> Result<(), String> {
    match proto {
        6 | 17 | 58 => {
            if proto == 17 && msg.get(6..8) == Some(&[0, 0]) {
                return Err("UDP checksum absent".into());
            }
            let len = msg.len() as u32;
            let pseudo: Vec<u8> = if src.len() == 4 {
                [src, dst, &[0, proto], &(len as u16).to_be_bytes()].concat()
            } else {
                [src, dst, &len.to_be_bytes()[..], &[0, 0, 0, proto]].concat()
            };
            match ones_sum(&[&pseudo, msg]) {
                0xffff => Ok(()),
                s => Err(format!("bad checksum for protocol {proto}: sum {s:#06x}")),
            }
        }
        1 | 2 => match ones_sum(&[msg]) {
            0xffff => Ok(()),
            s => Err(format!("bad ICMP/IGMP checksum: sum {s:#06x}")),
        },
        47 => {
            let proto_type = u16::from_be_bytes([msg[2], msg[3]]);
            if msg[0] != 0 || proto_type != 0x0800 {
                return Err("unexpected GRE header".into());
            }
            let inner = SlicedPacket::from_ip(&msg[4..]).map_err(|e| format!("GRE inner: {e}"))?;
            match check_net(inner.net.as_ref())? {
                Checked::Complete => Ok(()),
                Checked::Fragment(_) => Err("fragment inside GRE".into()),
            }
        }
        other => Err(format!("no checksum rule for protocol {other}")),
    }
}

/// (source, destination, protocol, identification) of a fragmented datagram.
pub(crate) type FragKey = (Vec<u8>, Vec<u8>, u8, u32);

/// A fragment waiting for reassembly.
#[derive(Clone, Debug)]
pub(crate) struct Fragment {
    pub(crate) key: FragKey,
    pub(crate) offset: usize,
    pub(crate) more: bool,
    pub(crate) data: Vec<u8>,
}

/// Outcome of checking one frame.
#[derive(Clone, Debug)]
pub(crate) enum Checked {
    /// Everything in the frame verified.
    Complete,
    /// An IP fragment: its IP header verified, the rest needs reassembly.
    Fragment(Fragment),
}

fn check_net(net: Option<&NetSlice<'_>>) -> Result<Checked, String> {
    match net {
        Some(NetSlice::Ipv4(v4)) => {
            let h = v4.header();
            if ones_sum(&[h.slice()]) != 0xffff {
                return Err("bad IPv4 header checksum".into());
            }
            let p = v4.payload();
            if p.fragmented {
                return Ok(Checked::Fragment(Fragment {
                    key: (
                        h.source().to_vec(),
                        h.destination().to_vec(),
                        p.ip_number.0,
                        u32::from(h.identification()),
                    ),
                    offset: usize::from(h.fragments_offset().byte_offset()),
                    more: h.more_fragments(),
                    data: p.payload.to_vec(),
                }));
            }
            check_upper(&h.source(), &h.destination(), p.ip_number.0, p.payload)?;
            Ok(Checked::Complete)
        }
        Some(NetSlice::Ipv6(v6)) => {
            let h = v6.header();
            let p = v6.payload();
            if p.fragmented {
                let frag = v6
                    .extensions()
                    .clone()
                    .into_iter()
                    .find_map(|e| match e {
                        etherparse::Ipv6ExtensionSlice::Fragment(f) => Some(f),
                        _ => None,
                    })
                    .ok_or("fragmented IPv6 without a Fragment header")?;
                return Ok(Checked::Fragment(Fragment {
                    key: (
                        h.source().to_vec(),
                        h.destination().to_vec(),
                        p.ip_number.0,
                        frag.identification(),
                    ),
                    offset: usize::from(frag.fragment_offset().byte_offset()),
                    more: frag.more_fragments(),
                    data: p.payload.to_vec(),
                }));
            }
            check_upper(&h.source(), &h.destination(), p.ip_number.0, p.payload)?;
            Ok(Checked::Complete)
        }
        Some(NetSlice::Arp(_)) => Ok(Checked::Complete),
        None => Err("no network layer".into()),
    }
}

/// Parses `frame` with etherparse and verifies every checksum it can.
pub(crate) fn check_frame(frame: &[u8]) -> Result<Checked, String> {
    let p = SlicedPacket::from_ethernet(frame).map_err(|e| format!("etherparse: {e}"))?;
    check_net(p.net.as_ref())
}

/// Reassembles fragments first-wins; returns each datagram's key and bytes, or an
/// error if one is incomplete or fails its checksum.
pub(crate) fn reassemble(frags: &[Fragment]) -> Result<Vec<(FragKey, Vec<u8>)>, String> {
    let mut groups: BTreeMap<_, Vec<&Fragment>> = BTreeMap::new();
    for f in frags {
        groups.entry(f.key.clone()).or_default().push(f);
    }
    let mut out = Vec::new();
    for (key, fs) in groups {
        let total = fs
            .iter()
            .find(|f| !f.more)
            .map(|f| f.offset + f.data.len())
            .ok_or("no last fragment")?;
        let mut buf: Vec<Option<u8>> = vec![None; total];
        for f in &fs {
            for (i, b) in f.data.iter().enumerate() {
                let slot = buf.get_mut(f.offset + i).ok_or("fragment beyond the end")?;
                slot.get_or_insert(*b);
            }
        }
        let bytes: Vec<u8> = buf.into_iter().collect::<Option<_>>().ok_or("hole in datagram")?;
        check_upper(&key.0, &key.1, key.2, &bytes)?;
        out.push((key, bytes));
    }
    Ok(out)
}

/// The fields of a TCP frame the tests look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TcpView {
    pub(crate) src_port: u16,
    pub(crate) dst_port: u16,
    pub(crate) seq: u32,
    pub(crate) ack: u32,
    pub(crate) syn: bool,
    pub(crate) ack_flag: bool,
    pub(crate) fin: bool,
    pub(crate) rst: bool,
    pub(crate) payload: Vec<u8>,
}

impl TcpView {
    /// Flags as a short string, e.g. "S", "SA", "A", "PA", "FA", "RA".
    pub(crate) fn flags(&self) -> String {
        let mut s = String::new();
        for (on, c) in [
            (self.syn, 'S'),
            (self.fin, 'F'),
            (self.rst, 'R'),
            (!self.payload.is_empty(), 'P'),
            (self.ack_flag, 'A'),
        ] {
            if on {
                s.push(c);
            }
        }
        s
    }
}

pub(crate) fn tcp(frame: &[u8]) -> Option<TcpView> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    match p.transport? {
        TransportSlice::Tcp(t) => Some(TcpView {
            src_port: t.source_port(),
            dst_port: t.destination_port(),
            seq: t.sequence_number(),
            ack: t.acknowledgment_number(),
            syn: t.syn(),
            ack_flag: t.ack(),
            fin: t.fin(),
            rst: t.rst(),
            payload: t.payload().to_vec(),
        }),
        _ => None,
    }
}

/// (source port, destination port, payload) of a UDP frame.
pub(crate) fn udp(frame: &[u8]) -> Option<(u16, u16, Vec<u8>)> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    match p.transport? {
        TransportSlice::Udp(u) => {
            Some((u.source_port(), u.destination_port(), u.payload().to_vec()))
        }
        _ => None,
    }
}

/// VLAN ids of a frame, outermost first.
pub(crate) fn vlan_ids(frame: &[u8]) -> Vec<u16> {
    SlicedPacket::from_ethernet(frame)
        .map(|p| p.vlan_ids().iter().map(|v| v.value()).collect())
        .unwrap_or_default()
}

/// The scenario called `name` (panics if absent).
pub(crate) fn scenario(name: &str) -> pcapgen::Scenario {
    pcapgen::scenario(name).unwrap_or_else(|| panic!("no scenario {name}"))
}
