//! The TCP tracker (RFC 9293 as seen from the middle of the path; reference §3.8).
//!
//! Each session has two wings, client and server. The state of a wing is the state its
//! end is in, as far as the packets seen show (Linux state names). Rules:
//!
//! - A session starts on a SYN (client = sender), on a SYN/ACK (client = receiver; the SYN
//!   was missed), or mid-stream on any other packet except a lone FIN or RST. Mid-stream
//!   direction is decided by the caller (learned listening ports, then port numbers).
//! - Handshake: SYN → client `SynSent`, server `Listen`; SYN/ACK acknowledging the SYN →
//!   server `SynRecv`; the client's ACK of the server's SYN → both `Established`. Crossing
//!   SYNs (simultaneous open) take both ends through `SynSent` → `SynRecv` → `Established`.
//!   A repeated SYN or SYN/ACK with the same ISN is a retransmission; one with another ISN
//!   is ignored (`tcp_unexpected_syn`), unless the session is closed, in which case the
//!   caller ends it and starts a new one (port reuse).
//! - FIN: the first end to send one goes `FinWait1` and the other `CloseWait`; when the FIN
//!   is acknowledged `FinWait2` (half-close); the second FIN takes its sender to `LastAck`
//!   and the first end to `TimeWait` (or both to `Closing` if neither FIN was acknowledged
//!   yet); the final ACK takes the `LastAck` end to `Close`.
//! - RST (accepted when in the receiver's window, RFC 5961 §3, or when the window is
//!   unknown): both ends `Close`.
//! - In-window check once both SYNs were seen: a segment must start within
//!   `[acked - 64 KiB, acked + window + 1]` of what the receiver acknowledged, else it is
//!   counted and not inspected (`tcp_out_of_window`).
//! - An ACK beyond everything the other end was seen sending means the capture lost data:
//!   inspection of the session stops (bypass, `tcp_bypass_capture_loss`).

use super::session::{sf, wf, Session};
use super::stream::seq_diff;
use super::Dir;
use crate::config::Timeouts;
use crate::counters::Counters;
use crate::event::{BypassReason, TcpState};
use crate::packet::TcpHdr;

/// Largest distance behind the acknowledged point still accepted as a (re)transmission.
const MAX_BEHIND: i32 = 65_536;

/// How a packet without a session starts one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Open {
    /// SYN: the sender is the client.
    Syn,
    /// SYN/ACK: the receiver is the client.
    SynAck,
    /// Anything else but a lone FIN or RST: picked up mid-stream.
    MidStream,
    /// A FIN or RST with no session: no session is created.
    Refuse,
}

pub(crate) fn classify_new(h: &TcpHdr) -> Open {
    let f = h.flags;
    if f.syn() {
        if f.ack() {
            Open::SynAck
        } else {
            Open::Syn
        }
    } else if f.rst() || f.fin() {
        Open::Refuse
    } else {
        Open::MidStream
    }
}

/// Prepare a new session's wings; the creating packet then goes through [`track`].
pub(crate) fn init(s: &mut Session, open: Open, dir: Dir, h: &TcpHdr, c: &mut Counters) {
    if open == Open::MidStream {
        s.flags |= sf::MID_STREAM | sf::ESTABLISHED | sf::ACTIVE;
        s.wings[0].state = TcpState::Established;
        s.wings[1].state = TcpState::Established;
        if h.flags.ack() {
            let rx = &mut s.wings[dir.receiver()];
            rx.next_seq = h.ack;
            rx.flags |= wf::SEQ;
        }
        c.tcp_midstream += 1;
    }
}

/// What the caller does with the packet's payload after [`track`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Track {
    /// Deliver the payload (it starts at the returned sequence number).
    Payload(u32),
    /// Do not inspect this packet's payload (retransmitted SYN, out of window, RST).
    Skip,
    /// Stop inspecting the session.
    Bypass(BypassReason),
}

/// Track one packet of a session.
pub(crate) fn track(
    s: &mut Session,
    dir: Dir,
    h: &TcpHdr,
    payload_len: u32,
    c: &mut Counters,
) -> Track {
    let (a, b) = (dir.sender(), dir.receiver());
    let f = h.flags;
    if f.rst() {
        if !in_window(s, b, h.seq) {
            c.tcp_out_of_window += 1;
            return Track::Skip;
        }
        s.wings[0].state = TcpState::Close;
        s.wings[1].state = TcpState::Close;
        s.flags |= sf::RST;
        return Track::Skip;
    }
    if f.syn() {
        return syn(s, a, b, h, payload_len, c);
    }
    if !s.wings[a].has(wf::SEQ) {
        s.wings[a].next_seq = h.seq;
        s.wings[a].flags |= wf::SEQ;
    }
    if !in_window(s, b, h.seq) {
        c.tcp_out_of_window += 1;
        return Track::Skip;
    }
    let mut out = Track::Payload(h.seq);
    if f.ack() {
        if let Some(r) = ack(s, a, b, h) {
            out = Track::Bypass(r);
        }
    }
    if f.fin() {
        fin(s, a, b, h.seq.wrapping_add(payload_len));
    }
    if payload_len > 0 {
        s.flags |= sf::ACTIVE;
    }
    out
}

fn syn(
    s: &mut Session,
    a: usize,
    b: usize,
    h: &TcpHdr,
    payload_len: u32,
    c: &mut Counters,
) -> Track {
    if payload_len > 0 {
        c.tcp_syn_with_data += 1;
    }
    let first_payload = Track::Payload(h.seq.wrapping_add(1));
    let wa = s.wings[a];
    if wa.has(wf::SYN) {
        if h.seq != wa.isn {
            c.tcp_unexpected_syn += 1;
            return Track::Skip;
        }
        if h.flags.ack() && wa.state == TcpState::SynSent {
            // Simultaneous open: our SYN crossed theirs; now we acknowledge theirs.
            s.wings[a].state = TcpState::SynRecv;
            let _ = ack(s, a, b, h);
            return Track::Skip;
        }
        c.tcp_retransmissions += 1;
        s.wings[a].retrans = s.wings[a].retrans.saturating_add(1);
        return Track::Skip;
    }
    if wa.has(wf::SEQ) {
        // A SYN from an end that already sent data: not part of this connection.
        c.tcp_unexpected_syn += 1;
        return Track::Skip;
    }
    let wb = s.wings[b];
    if h.flags.ack() && wb.has(wf::SYN) && h.ack != wb.isn.wrapping_add(1) {
        c.tcp_unexpected_syn += 1;
        return Track::Skip;
    }
    {
        let w = &mut s.wings[a];
        w.isn = h.seq;
        w.next_seq = h.seq.wrapping_add(1);
        w.flags |= wf::SYN | wf::SEQ;
        if let Some(ws) = h.opts.wscale {
            w.wscale = ws;
            w.flags |= wf::WSCALE;
        }
        w.state = if h.flags.ack() { TcpState::SynRecv } else { TcpState::SynSent };
    }
    if h.flags.ack() {
        if !wb.has(wf::SYN) {
            // The SYN was not seen: infer it from the acknowledgment.
            let w = &mut s.wings[b];
            w.isn = h.ack.wrapping_sub(1);
            w.next_seq = h.ack;
            w.flags |= wf::SYN | wf::SEQ;
            w.state = TcpState::SynSent;
        }
        let _ = ack(s, a, b, h);
    } else if s.wings[b].state == TcpState::None {
        s.wings[b].state = TcpState::Listen;
    }
    if s.wings[a].has(wf::WSCALE) && s.wings[b].has(wf::WSCALE) {
        s.flags |= sf::WSCALE;
    }
    first_payload
}

/// Process the acknowledgment `h.ack` sent by wing `a` about wing `b`'s data.
fn ack(s: &mut Session, a: usize, b: usize, h: &TcpHdr) -> Option<BypassReason> {
    let scale = if s.has(sf::WSCALE) && !h.flags.syn() { s.wings[a].wscale } else { 0 };
    {
        let wa = &mut s.wings[a];
        if !wa.has(wf::ACKED) || seq_diff(h.ack, wa.acked) > 0 {
            wa.acked = h.ack;
        }
        wa.flags |= wf::ACKED;
        wa.window = u32::from(h.window) << scale;
    }
    let wb = s.wings[b];
    // Handshake: this acknowledges b's SYN.
    if wb.has(wf::SYN) && h.ack == wb.isn.wrapping_add(1) && !h.flags.syn() {
        if wb.state == TcpState::SynRecv {
            s.wings[b].state = TcpState::Established;
        }
        if matches!(s.wings[a].state, TcpState::SynSent | TcpState::SynRecv) {
            s.wings[a].state = TcpState::Established;
        }
        if s.wings[a].state == TcpState::Established && s.wings[b].state == TcpState::Established {
            s.flags |= sf::ESTABLISHED;
        }
    }
    // This acknowledges b's FIN.
    if wb.has(wf::FIN) && !wb.has(wf::FIN_ACKED) && seq_diff(h.ack, wb.fin_seq) > 0 {
        let w = &mut s.wings[b];
        w.flags |= wf::FIN_ACKED;
        w.state = match w.state {
            TcpState::FinWait1 => TcpState::FinWait2,
            TcpState::Closing => TcpState::TimeWait,
            TcpState::LastAck => TcpState::Close,
            other => other,
        };
    }
    // An acknowledgment of bytes b was never seen sending: the capture lost them. Only
    // once b was seen sending at all: a capture of one direction only (asymmetric
    // routing, a mid-stream pickup from the other side) has nothing to compare with.
    if s.bypass.is_none() && wb.has(wf::SEQ) && wb.sent.pkts > 0 && seq_diff(h.ack, wb.next_seq) > 0
    {
        let fin_pending = wb.has(wf::FIN) && !wb.has(wf::FIN_DONE);
        if !(fin_pending && seq_diff(h.ack, wb.fin_seq) <= 1) {
            return Some(BypassReason::CaptureLoss);
        }
    }
    None
}

fn fin(s: &mut Session, a: usize, b: usize, fin_seq: u32) {
    if s.wings[a].has(wf::FIN) {
        return; // retransmitted FIN
    }
    let b_fin = s.wings[b].has(wf::FIN);
    let b_fin_acked = s.wings[b].has(wf::FIN_ACKED);
    let wa = &mut s.wings[a];
    wa.flags |= wf::FIN;
    wa.fin_seq = fin_seq;
    if b_fin {
        wa.state = if b_fin_acked { TcpState::LastAck } else { TcpState::Closing };
        let wb = &mut s.wings[b];
        wb.state = if b_fin_acked { TcpState::TimeWait } else { TcpState::Closing };
    } else {
        wa.state = TcpState::FinWait1;
        s.wings[b].state = TcpState::CloseWait;
    }
}

/// After the payload went through the stream: if the frontier reached the FIN, step over
/// it (a FIN occupies one sequence number).
pub(crate) fn consume_fin(s: &mut Session, dir: Dir) {
    let w = &mut s.wings[dir.sender()];
    if w.has(wf::FIN) && !w.has(wf::FIN_DONE) && w.next_seq == w.fin_seq {
        w.next_seq = w.next_seq.wrapping_add(1);
        w.flags |= wf::FIN_DONE;
    }
}

/// Is `seq` from the other end acceptable to wing `rx`?
fn in_window(s: &Session, rx: usize, seq: u32) -> bool {
    let w = &s.wings[rx];
    // Only once the handshake fixed the window scale, and the receiver advertised one.
    if s.has(sf::MID_STREAM) || !w.has(wf::ACKED) || !s.wings[1 - rx].has(wf::SYN) {
        return true;
    }
    let d = seq_diff(seq, w.acked);
    d >= -MAX_BEHIND && i64::from(d) <= i64::from(w.window) + 1
}

/// Idle timeout for the session's current state.
pub(crate) fn timeout(s: &Session, t: &Timeouts) -> u32 {
    let [c, v] = &s.wings;
    if s.tcp_closed() || (c.state == TcpState::Close && v.state == TcpState::Close) {
        t.tcp_closed
    } else if c.has(wf::FIN_ACKED) || v.has(wf::FIN_ACKED) {
        t.tcp_half_closed
    } else if !s.has(sf::ESTABLISHED) {
        t.tcp_handshake
    } else if !s.has(sf::ACTIVE) {
        t.tcp_established_idle
    } else {
        t.tcp_active
    }
}

/// Whether a SYN on this existing session starts a new connection on the same 4-tuple.
pub(crate) fn is_port_reuse(s: &Session, dir: Dir, h: &TcpHdr) -> bool {
    if !h.flags.syn() || h.flags.ack() || !s.tcp_closed() {
        return false;
    }
    let w = &s.wings[dir.sender()];
    !(w.has(wf::SYN) && w.isn == h.seq)
}
