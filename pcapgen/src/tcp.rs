//! TCP segments (RFC 9293) and [`TcpConversation`], a two-ended TCP builder that
//! tracks sequence and acknowledgement numbers.
//!
//! Model: every segment a side builds is assumed delivered, so the peer's next
//! acknowledgement moves to the end of the newest data (or FIN) it was sent. A
//! scenario decides what the capture *shows* by pushing, dropping, repeating or
//! reordering the returned frames; for acknowledgements that must not follow the
//! model (duplicate ACKs, ACKs behind a hole) use [`TcpConversation::ack_with`]
//! or [`TcpConversation::raw`].
//!
//! Both ends start "synchronised": `snd_nxt = ISN + 1` and `rcv_nxt = peer ISN + 1`
//! before any SYN is built, so a mid-stream capture just skips the handshake.
//! SYN options (MSS, window scale, SACK-permitted, timestamps) are only put on
//! SYNs; data segments carry no options.

use std::ops::BitOr;

use crate::checksum::pseudo_header_checksum;
use crate::ip::{ip_number, IpPath};

/// TCP header flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN.
    pub const FIN: Self = Self(0x01);
    /// SYN.
    pub const SYN: Self = Self(0x02);
    /// RST.
    pub const RST: Self = Self(0x04);
    /// PSH.
    pub const PSH: Self = Self(0x08);
    /// ACK.
    pub const ACK: Self = Self(0x10);
    /// URG.
    pub const URG: Self = Self(0x20);
    /// ECE.
    pub const ECE: Self = Self(0x40);
    /// CWR.
    pub const CWR: Self = Self(0x80);

    /// True if every flag of `other` is set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for TcpFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// One TCP segment with every header field explicit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpSegment {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number (written even without the ACK flag).
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Receive window (unscaled field value).
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Raw options, padded with End-of-Options to a multiple of 4 bytes (max 40).
    pub options: Vec<u8>,
    /// Payload.
    pub payload: Vec<u8>,
}

/// Options a SYN or SYN/ACK offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynOptions {
    /// Maximum segment size (kind 2).
    pub mss: Option<u16>,
    /// Window scale shift (kind 3).
    pub window_scale: Option<u8>,
    /// SACK permitted (kind 4).
    pub sack_permitted: bool,
    /// Timestamps (kind 8): `(TSval, TSecr)`.
    pub timestamps: Option<(u32, u32)>,
}

impl SynOptions {
    /// No options at all.
    pub const NONE: Self =
        Self { mss: None, window_scale: None, sack_permitted: false, timestamps: None };

    /// What Linux offers without timestamps: MSS, SACK permitted, window scale 7.
    pub const fn linux(mss: u16) -> Self {
        Self { mss: Some(mss), window_scale: Some(7), sack_permitted: true, timestamps: None }
    }

    /// Encodes the options in Linux order (MSS, SACK-permitted, timestamps, NOP,
    /// window scale), NOP-aligned; always a multiple of 4 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(20);
        if let Some(mss) = self.mss {
            o.extend_from_slice(&[2, 4]);
            o.extend_from_slice(&mss.to_be_bytes());
        }
        match (self.sack_permitted, self.timestamps) {
            (true, Some(_)) => o.extend_from_slice(&[4, 2]),
            (true, None) => o.extend_from_slice(&[1, 1, 4, 2]),
            (false, Some(_)) => o.extend_from_slice(&[1, 1]),
            (false, None) => {}
        }
        if let Some((val, ecr)) = self.timestamps {
            o.extend_from_slice(&[8, 10]);
            o.extend_from_slice(&val.to_be_bytes());
            o.extend_from_slice(&ecr.to_be_bytes());
        }
        if let Some(ws) = self.window_scale {
            o.extend_from_slice(&[1, 3, 3, ws]);
        }
        o
    }
}

/// Encodes a TCP header + payload with a correct checksum for `path`'s addresses.
///
/// # Panics
/// If the options exceed 40 bytes.
pub fn tcp_bytes(path: &IpPath, src_port: u16, dst_port: u16, seg: &TcpSegment) -> Vec<u8> {
    let opt_len = seg.options.len().div_ceil(4) * 4;
    assert!(opt_len <= 40, "TCP options are {} bytes, at most 40 fit", seg.options.len());
    let hlen = 20 + opt_len;
    let mut t = Vec::with_capacity(hlen + seg.payload.len());
    t.extend_from_slice(&src_port.to_be_bytes());
    t.extend_from_slice(&dst_port.to_be_bytes());
    t.extend_from_slice(&seg.seq.to_be_bytes());
    t.extend_from_slice(&seg.ack.to_be_bytes());
    t.push(((hlen / 4) as u8) << 4);
    t.push(seg.flags.0);
    t.extend_from_slice(&seg.window.to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&seg.urgent.to_be_bytes());
    t.extend_from_slice(&seg.options);
    t.resize(hlen, 0);
    t.extend_from_slice(&seg.payload);
    let sum = pseudo_header_checksum(path.src.ip, path.dst.ip, ip_number::TCP, &t);
    t[16..18].copy_from_slice(&sum.to_be_bytes());
    t
}

impl IpPath {
    /// An IP packet carrying `seg` from `src_port` to `dst_port`.
    pub fn tcp_packet(&mut self, src_port: u16, dst_port: u16, seg: &TcpSegment) -> Vec<u8> {
        let t = tcp_bytes(self, src_port, dst_port, seg);
        self.ip_packet(ip_number::TCP, &t)
    }

    /// An Ethernet frame carrying `seg` from `src_port` to `dst_port`.
    pub fn tcp(&mut self, src_port: u16, dst_port: u16, seg: &TcpSegment) -> Vec<u8> {
        let p = self.tcp_packet(src_port, dst_port, seg);
        self.frame(&p)
    }
}

/// Which end of a [`TcpConversation`] sends a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The end that opened the connection (or is considered the client).
    Client,
    /// The other end.
    Server,
}

impl Side {
    /// The other end.
    pub const fn peer(self) -> Self {
        match self {
            Self::Client => Self::Server,
            Self::Server => Self::Client,
        }
    }
}

/// Per-end sequence state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct End {
    isn: u32,
    /// Next sequence number to send.
    snd_nxt: u32,
    /// Next sequence number expected from the peer (the ACK value to send).
    rcv_nxt: u32,
    /// Window field value of non-SYN segments.
    window: u16,
}

/// `a` is after `b` in sequence space (RFC 9293 modular comparison).
const fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// A TCP connection between a client and a server, building the frames of both
/// ends and keeping their sequence numbers consistent (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpConversation {
    /// Client → server direction.
    pub to_server: IpPath,
    /// Server → client direction.
    pub to_client: IpPath,
    /// Client port.
    pub client_port: u16,
    /// Server port.
    pub server_port: u16,
    client: End,
    server: End,
}

impl TcpConversation {
    /// Window field of SYN and SYN/ACK segments (what Linux sends).
    pub const SYN_WINDOW: u16 = 64240;
    /// Default window field of later segments: 502, which with the window scale 7
    /// of [`SynOptions::linux`] means 64256 bytes, as Linux advertises.
    pub const DEFAULT_WINDOW: u16 = 502;

    /// A conversation on `to_server` (the reverse path is derived with
    /// [`IpPath::reversed`]) with the given ports and initial sequence numbers.
    /// Both paths get the IPv4 DF bit, as Linux sets it on TCP.
    pub fn new(
        to_server: IpPath,
        client_port: u16,
        server_port: u16,
        client_isn: u32,
        server_isn: u32,
    ) -> Self {
        let to_server = to_server.with_dont_fragment(true);
        let to_client = to_server.reversed();
        let end = |isn: u32, peer: u32| End {
            isn,
            snd_nxt: isn.wrapping_add(1),
            rcv_nxt: peer.wrapping_add(1),
            window: Self::DEFAULT_WINDOW,
        };
        Self {
            to_server,
            to_client,
            client_port,
            server_port,
            client: end(client_isn, server_isn),
            server: end(server_isn, client_isn),
        }
    }

    fn end(&self, side: Side) -> &End {
        match side {
            Side::Client => &self.client,
            Side::Server => &self.server,
        }
    }

    fn end_mut(&mut self, side: Side) -> &mut End {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    /// Initial sequence number of `side`.
    pub fn isn(&self, side: Side) -> u32 {
        self.end(side).isn
    }

    /// Next sequence number `side` will send.
    pub fn next_seq(&self, side: Side) -> u32 {
        self.end(side).snd_nxt
    }

    /// Acknowledgement number `side` currently sends.
    pub fn next_ack(&self, side: Side) -> u32 {
        self.end(side).rcv_nxt
    }

    /// Sequence number of byte `offset` of `side`'s stream (`ISN + 1 + offset`).
    pub fn seq_at(&self, side: Side, offset: u32) -> u32 {
        self.end(side).isn.wrapping_add(1).wrapping_add(offset)
    }

    /// Sets the window field `side` sends in non-SYN segments from now on.
    pub fn set_window(&mut self, side: Side, window: u16) {
        self.end_mut(side).window = window;
    }

    /// Builds the frame of an arbitrary segment from `side`. Does not change the
    /// sequence state.
    pub fn raw(&mut self, side: Side, seg: &TcpSegment) -> Vec<u8> {
        let (cp, sp) = (self.client_port, self.server_port);
        match side {
            Side::Client => self.to_server.tcp(cp, sp, seg),
            Side::Server => self.to_client.tcp(sp, cp, seg),
        }
    }

    /// A segment from `side` with its current seq/ack and window.
    fn segment(&self, side: Side, flags: TcpFlags, payload: &[u8]) -> TcpSegment {
        let e = self.end(side);
        TcpSegment {
            seq: e.snd_nxt,
            ack: e.rcv_nxt,
            flags,
            window: e.window,
            payload: payload.to_vec(),
            ..TcpSegment::default()
        }
    }

    /// Records that `side` has sent up to `end` (exclusive) and the peer got it.
    fn advance(&mut self, side: Side, end: u32) {
        let e = self.end_mut(side);
        if seq_after(end, e.snd_nxt) {
            e.snd_nxt = end;
        }
        let p = self.end_mut(side.peer());
        if seq_after(end, p.rcv_nxt) {
            p.rcv_nxt = end;
        }
    }

    /// A SYN (no ACK) from `side`: `seq = ISN`. Building it again gives the same
    /// segment (a retransmission). Use `Side::Server` too for simultaneous open.
    pub fn syn_from(&mut self, side: Side, opts: &SynOptions) -> Vec<u8> {
        let e = *self.end(side);
        let seg = TcpSegment {
            seq: e.isn,
            ack: 0,
            flags: TcpFlags::SYN,
            window: Self::SYN_WINDOW,
            options: opts.encode(),
            ..TcpSegment::default()
        };
        self.raw(side, &seg)
    }

    /// A SYN/ACK from `side`: `seq = ISN`, `ack = peer ISN + 1`.
    pub fn syn_ack_from(&mut self, side: Side, opts: &SynOptions) -> Vec<u8> {
        let e = *self.end(side);
        let seg = TcpSegment {
            seq: e.isn,
            ack: self.end(side.peer()).isn.wrapping_add(1),
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: Self::SYN_WINDOW,
            options: opts.encode(),
            ..TcpSegment::default()
        };
        self.raw(side, &seg)
    }

    /// The client's SYN.
    pub fn syn(&mut self, opts: &SynOptions) -> Vec<u8> {
        self.syn_from(Side::Client, opts)
    }

    /// The server's SYN/ACK.
    pub fn syn_ack(&mut self, opts: &SynOptions) -> Vec<u8> {
        self.syn_ack_from(Side::Server, opts)
    }

    /// SYN, SYN/ACK and the client's ACK.
    pub fn handshake(&mut self, client: &SynOptions, server: &SynOptions) -> Vec<Vec<u8>> {
        vec![self.syn(client), self.syn_ack(server), self.ack(Side::Client)]
    }

    /// A pure ACK from `side` with its current numbers.
    pub fn ack(&mut self, side: Side) -> Vec<u8> {
        let seg = self.segment(side, TcpFlags::ACK, &[]);
        self.raw(side, &seg)
    }

    /// A pure ACK from `side` acknowledging `ack` instead of everything received
    /// (duplicate ACKs, ACKs behind a hole). Does not change the state.
    pub fn ack_with(&mut self, side: Side, ack: u32) -> Vec<u8> {
        let mut seg = self.segment(side, TcpFlags::ACK, &[]);
        seg.ack = ack;
        self.raw(side, &seg)
    }

    /// A PSH/ACK data segment from `side` at its next sequence number. Returns the
    /// frame, which the caller may push, drop, repeat or reorder.
    pub fn data(&mut self, side: Side, payload: &[u8]) -> Vec<u8> {
        let offset = self.next_seq(side).wrapping_sub(self.seq_at(side, 0));
        self.data_at(side, offset, payload)
    }

    /// A PSH/ACK data segment from `side` carrying `payload` at stream byte
    /// `offset` (so `seq = ISN + 1 + offset`), for overlaps and retransmissions
    /// with new content. The next sequence number only moves forward.
    pub fn data_at(&mut self, side: Side, offset: u32, payload: &[u8]) -> Vec<u8> {
        let mut seg = self.segment(side, TcpFlags::PSH | TcpFlags::ACK, payload);
        seg.seq = self.seq_at(side, offset);
        let end = seg.seq.wrapping_add(payload.len() as u32);
        let frame = self.raw(side, &seg);
        self.advance(side, end);
        frame
    }

    /// A FIN/ACK from `side`; the FIN takes one sequence number.
    pub fn fin(&mut self, side: Side) -> Vec<u8> {
        let seg = self.segment(side, TcpFlags::FIN | TcpFlags::ACK, &[]);
        let end = seg.seq.wrapping_add(1);
        let frame = self.raw(side, &seg);
        self.advance(side, end);
        frame
    }

    /// An RST/ACK from `side` at its next sequence number (in the peer's window).
    pub fn rst(&mut self, side: Side) -> Vec<u8> {
        let seg = self.segment(side, TcpFlags::RST | TcpFlags::ACK, &[]);
        self.raw(side, &seg)
    }

    /// The usual close: FIN from `initiator`, FIN/ACK from the peer, last ACK.
    pub fn close(&mut self, initiator: Side) -> Vec<Vec<u8>> {
        vec![self.fin(initiator), self.fin(initiator.peer()), self.ack(initiator)]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::link::Host;

    fn conv() -> TcpConversation {
        let path = IpPath::new(Host::v4(1, [10, 0, 0, 1]), Host::v4(2, [10, 0, 0, 2]));
        TcpConversation::new(path, 40000, 80, 1000, 5000)
    }

    /// seq, ack, flags and payload length of a frame built by `conv()`.
    fn fields(frame: &[u8]) -> (u32, u32, u8, usize) {
        let t = &frame[14 + 20..];
        let seq = u32::from_be_bytes(t[4..8].try_into().unwrap());
        let ack = u32::from_be_bytes(t[8..12].try_into().unwrap());
        (seq, ack, t[13], t.len() - usize::from(t[12] >> 4) * 4)
    }

    #[test]
    fn handshake_and_request_numbers() {
        let mut c = conv();
        let hs = c.handshake(&SynOptions::linux(1460), &SynOptions::linux(1460));
        assert_eq!(fields(&hs[0]), (1000, 0, 0x02, 0));
        assert_eq!(fields(&hs[1]), (5000, 1001, 0x12, 0));
        assert_eq!(fields(&hs[2]), (1001, 5001, 0x10, 0));
        let req = c.data(Side::Client, &[b'x'; 100]);
        assert_eq!(fields(&req), (1001, 5001, 0x18, 100));
        let ack = c.ack(Side::Server);
        assert_eq!(fields(&ack), (5001, 1000 + 1 + 100, 0x10, 0));
        let close = c.close(Side::Client);
        assert_eq!(fields(&close[0]), (1101, 5001, 0x11, 0));
        assert_eq!(fields(&close[1]), (5001, 1102, 0x11, 0));
        assert_eq!(fields(&close[2]), (1102, 5002, 0x10, 0));
    }

    #[test]
    fn overlapping_data_only_moves_forward() {
        let mut c = conv();
        c.data_at(Side::Client, 0, &[0; 1000]);
        let b = c.data_at(Side::Client, 500, &[1; 1000]);
        assert_eq!(fields(&b).0, 1501);
        assert_eq!(c.next_seq(Side::Client), 2501);
        c.data_at(Side::Client, 0, &[0; 10]);
        assert_eq!(c.next_ack(Side::Server), 2501);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let path = IpPath::new(Host::v4(1, [10, 0, 0, 1]), Host::v4(2, [10, 0, 0, 2]));
        let mut c = TcpConversation::new(path, 1, 2, u32::MAX - 10, 0);
        c.data(Side::Client, &[0; 100]);
        assert_eq!(c.next_seq(Side::Client), 90);
        assert_eq!(c.next_ack(Side::Server), 90);
    }

    #[test]
    fn syn_options_layout() {
        let o = SynOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some((1, 0)),
        };
        assert_eq!(o.encode(), vec![2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7]);
        assert_eq!(SynOptions::linux(1460).encode().len(), 12);
    }
}
