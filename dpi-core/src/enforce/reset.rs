//! TCP resets toward either end of a connection (RFC 9293 §3.5.2, reference §4.7).
//!
//! [`build_reset`] turns the frame that triggered a deny into a reset addressed to one of
//! its two ends, as if the other end had sent it:
//!
//! | reset toward | MACs | VLAN tags, PPPoE | IP source, destination | TCP ports |
//! |---|---|---|---|---|
//! | the receiver (`toward_sender == false`) | as sent | copied | as sent | as sent |
//! | the sender (`toward_sender == true`) | swapped | copied | swapped | swapped |
//!
//! The frame is minimal: Ethernet II, the VLAN tags exactly as they were (TPID, priority
//! and DEI included), the PPPoE session header if there was one (its length field
//! rewritten), a 20-byte IPv4 header (version/IHL `0x45`, TOS 0, DF, TTL 255) or a
//! 40-byte IPv6 header (traffic class and flow label 0, hop limit 255) without the
//! triggering packet's IPv4 options or IPv6 extension headers, and a 20-byte TCP header
//! without options: 54 bytes for untagged IPv4, 74 for untagged IPv6. The IPv4
//! identification is derived from the sequence number (`seq >> 16 ^ seq & 0xffff`):
//! deterministic, and with DF set it identifies no fragments (RFC 6864 §4.1).
//!
//! **No padding to the 60-byte Ethernet minimum**: the length of a frame handed to
//! `AF_PACKET` is the length on the host's side of the interface; the NIC driver pads
//! short frames for the wire (veth pairs carry them as they are), and every receiver
//! reads the IP total length rather than the frame length. Padding here would only make
//! the synthesised frame differ from what a capture of it shows.
//!
//! ## Sequence and acknowledgment numbers
//!
//! The caller chooses `seq`: the sequence number the addressee expects next (its
//! `RCV.NXT`). From a packet that is dropped, those are:
//! - for its receiver: the packet's own sequence number (the receiver never gets it);
//! - for its sender: the packet's acknowledgment number (what the sender has received);
//!   only meaningful when the packet has ACK set, so the caller skips that reset
//!   otherwise.
//!
//! RFC 9293 §3.5.2 and RFC 5961 §3.2: in every synchronized state a reset is accepted on
//! its sequence number alone, exactly when it equals `RCV.NXT` (Linux, and the other
//! RFC 5961 stacks, answer an in-window but inexact one with a challenge ACK); the ACK
//! field of a reset is not examined there. In SYN-SENT, however, a reset is accepted
//! only with an ACK that acknowledges the SYN (RFC 9293 §3.10.7.3), and Linux's
//! SYN-RECEIVED code drops a segment whose ACK is not `ISS + 1` before looking at its RST
//! bit. So the reset carries **RST and ACK** whenever this builder knows the
//! addressee's `SND.NXT`, and RST alone otherwise (NeuVector always sends RST alone,
//! which cannot reset a client still in SYN-SENT):
//! - toward the sender: ACK = the packet's sequence number plus its length (payload,
//!   SYN and FIN each count), exactly what the sender has sent;
//! - toward the receiver: ACK = the packet's acknowledgment number if it has ACK set;
//!   otherwise RST alone.
//!
//! Window 0, urgent pointer 0. Both checksums are computed (the TCP one over the IPv4 or
//! IPv6 pseudo-header).

use crate::packet::checksum::{finish, pseudo_header, sum};
use crate::packet::{be16, ethertype, proto, Decoded, L4};
use crate::transmit::Transmit;

const ETH_ADDRS: usize = 12;
const VLAN_TAG: usize = 4;
const PPPOE_LEN: usize = 8;
const IPV4_LEN: usize = 20;
const IPV6_LEN: usize = 40;
const TCP_LEN: usize = 20;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;

/// TCP flag bits as on the wire.
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// Build into `out` a reset toward the receiver (`toward_sender == false`) or the sender
/// of the TCP packet `frame`, decoded as `d`, with sequence number `seq` (see the
/// [module docs](self) for the frame and the numbers). Returns false, with `out` empty,
/// if the packet is not TCP or its layer 2 is not one this module rebuilds (Ethernet II,
/// up to two VLAN tags, a PPPoE session).
pub(crate) fn build_reset(
    frame: &[u8],
    d: &Decoded,
    toward_sender: bool,
    seq: u32,
    out: &mut Transmit,
) -> bool {
    out.frame.clear();
    let ok = build(frame, d, toward_sender, seq, out).is_some();
    if !ok {
        out.frame.clear();
    }
    ok
}

fn build(
    frame: &[u8],
    d: &Decoded,
    toward_sender: bool,
    seq: u32,
    out: &mut Transmit,
) -> Option<()> {
    let L4::Tcp(h) = d.l4 else { return None };
    if d.ip.proto != proto::TCP {
        return None;
    }

    // Layer 2 as decoded: addresses, tags, then the IP ethertype or a PPPoE session.
    let tags_end = ETH_ADDRS + VLAN_TAG * usize::from(d.vlan_count);
    let ethertype = be16(frame.get(..tags_end + 2)?, tags_end);
    let pppoe = match ethertype {
        ethertype::IPV4 if !d.ip.v6 => false,
        ethertype::IPV6 if d.ip.v6 => false,
        ethertype::PPPOE_SESSION => true,
        _ => return None,
    };
    let l2_len = tags_end + 2 + if pppoe { PPPOE_LEN } else { 0 };
    if d.l3_off != l2_len {
        return None;
    }
    let (dst_mac, src_mac) = (frame.get(0..6)?, frame.get(6..12)?);
    let (dst_mac, src_mac) = if toward_sender { (src_mac, dst_mac) } else { (dst_mac, src_mac) };
    let f = &mut out.frame;
    f.try_extend_from_slice(dst_mac).ok()?;
    f.try_extend_from_slice(src_mac).ok()?;
    f.try_extend_from_slice(frame.get(ETH_ADDRS..tags_end)?).ok()?;
    let ip_len = if d.ip.v6 { IPV6_LEN } else { IPV4_LEN } + TCP_LEN;
    if pppoe {
        let hdr = frame.get(tags_end + 2..l2_len)?;
        f.try_extend_from_slice(&ethertype::PPPOE_SESSION.to_be_bytes()).ok()?;
        // Version/type, code and session id as they were; the length covers the PPP
        // protocol field and the IP packet.
        f.try_extend_from_slice(hdr.get(..4)?).ok()?;
        f.try_extend_from_slice(&((2 + ip_len) as u16).to_be_bytes()).ok()?;
        let ppp = if d.ip.v6 { PPP_IPV6 } else { PPP_IPV4 };
        f.try_extend_from_slice(&ppp.to_be_bytes()).ok()?;
    } else {
        f.try_extend_from_slice(&ethertype.to_be_bytes()).ok()?;
    }

    // IP.
    let (src, dst) = if toward_sender { (d.ip.dst, d.ip.src) } else { (d.ip.src, d.ip.dst) };
    if d.ip.v6 {
        let mut ip = [0u8; IPV6_LEN];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&(TCP_LEN as u16).to_be_bytes());
        ip[6] = proto::TCP;
        ip[7] = 255;
        ip[8..24].copy_from_slice(&src.to_be_bytes());
        ip[24..40].copy_from_slice(&dst.to_be_bytes());
        f.try_extend_from_slice(&ip).ok()?;
    } else {
        let mut ip = [0u8; IPV4_LEN];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&((seq >> 16) as u16 ^ seq as u16).to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = 255;
        ip[9] = proto::TCP;
        ip[12..16].copy_from_slice(&(src as u32).to_be_bytes());
        ip[16..20].copy_from_slice(&(dst as u32).to_be_bytes());
        let c = finish(sum(&ip, 0));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.try_extend_from_slice(&ip).ok()?;
    }

    // TCP.
    let (sport, dport) = if toward_sender { (h.dport, h.sport) } else { (h.sport, h.dport) };
    let ack = if toward_sender {
        let len = d.payload_wire_len as u32 + u32::from(h.flags.syn()) + u32::from(h.flags.fin());
        Some(h.seq.wrapping_add(len))
    } else {
        h.flags.ack().then_some(h.ack)
    };
    let mut tcp = [0u8; TCP_LEN];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&dport.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&ack.unwrap_or(0).to_be_bytes());
    tcp[12] = ((TCP_LEN / 4) as u8) << 4;
    tcp[13] = if ack.is_some() { RST | ACK } else { RST };
    let c = finish(sum(&tcp, pseudo_header(d.ip.v6, src, dst, proto::TCP, TCP_LEN as u32)));
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    f.try_extend_from_slice(&tcp).ok()?;
    Some(())
}

#[cfg(test)]
mod tests;
