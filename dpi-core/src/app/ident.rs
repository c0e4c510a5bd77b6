//! Per-session identification state: the first bytes of each direction, the candidates
//! still in the running, and the packet budget. Held only while a session's application
//! is undecided, in a pool bounded by `Config::max_identifying` and recycled, so
//! identification never allocates in steady state.

use super::probe::{self, Outcome, ProbeCtx, C2S_PREFIX, PACKET_BUDGET, S2C_PREFIX};
use crate::flow::Dir;

#[derive(Debug)]
pub(crate) struct Ident {
    c2s: Box<[u8; C2S_PREFIX]>,
    s2c: Box<[u8; S2C_PREFIX]>,
    c2s_len: usize,
    s2c_len: usize,
    c2s_done: bool,
    s2c_done: bool,
    candidates: u64,
    first: Option<Dir>,
    packets: u8,
    /// New bytes since the candidates were last asked.
    fresh: bool,
}

impl Ident {
    fn new() -> Self {
        Ident {
            c2s: Box::new([0; C2S_PREFIX]),
            s2c: Box::new([0; S2C_PREFIX]),
            c2s_len: 0,
            s2c_len: 0,
            c2s_done: false,
            s2c_done: false,
            candidates: 0,
            first: None,
            packets: 0,
            fresh: false,
        }
    }

    /// The client prefix (for extraction once identified).
    pub(crate) fn c2s(&self) -> &[u8] {
        &self.c2s[..self.c2s_len]
    }
}

/// Facts about the session a probe needs besides the bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Meta {
    pub(crate) proto: u8,
    pub(crate) client_port: u16,
    pub(crate) server_port: u16,
    pub(crate) mid_stream: bool,
}

#[derive(Debug)]
pub(crate) struct IdentPool {
    slots: Vec<Ident>,
    free: Vec<u32>,
    max: usize,
}

impl IdentPool {
    pub(crate) fn new(max: usize) -> Self {
        IdentPool { slots: Vec::new(), free: Vec::new(), max }
    }

    pub(crate) fn in_use(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// A fresh slot for a session of protocol `proto`, or `None` when the pool is spent.
    pub(crate) fn start(&mut self, proto: u8) -> Option<u32> {
        let id = match self.free.pop() {
            Some(i) => i,
            None if self.slots.len() < self.max => {
                self.slots.push(Ident::new());
                (self.slots.len() - 1) as u32
            }
            None => return None,
        };
        let s = &mut self.slots[id as usize];
        s.c2s_len = 0;
        s.s2c_len = 0;
        s.c2s_done = false;
        s.s2c_done = false;
        s.candidates = probe::candidates(proto);
        s.first = None;
        s.packets = 0;
        s.fresh = false;
        Some(id)
    }

    pub(crate) fn release(&mut self, id: u32) {
        self.free.push(id);
    }

    pub(crate) fn get(&self, id: u32) -> &Ident {
        &self.slots[id as usize]
    }

    /// Add payload of direction `dir`. `datagram`: a whole UDP datagram (only the first of
    /// each direction is kept).
    pub(crate) fn append(&mut self, id: u32, dir: Dir, data: &[u8], datagram: bool) {
        let s = &mut self.slots[id as usize];
        if data.is_empty() {
            return;
        }
        s.first.get_or_insert(dir);
        s.packets = s.packets.saturating_add(1);
        let (buf, len, done): (&mut [u8], &mut usize, &mut bool) = match dir {
            Dir::ToServer => (&mut s.c2s[..], &mut s.c2s_len, &mut s.c2s_done),
            Dir::ToClient => (&mut s.s2c[..], &mut s.s2c_len, &mut s.s2c_done),
        };
        if *done {
            return;
        }
        // A first segment of a few zero bytes (some stacks send one before the real first
        // message) says nothing; leave it out so probes see the message at the start.
        if *len == 0 && !datagram && data.len() <= 2 && data.iter().all(|&b| b == 0) {
            return;
        }
        let n = data.len().min(buf.len() - *len);
        buf[*len..*len + n].copy_from_slice(&data[..n]);
        *len += n;
        if datagram || *len == buf.len() {
            *done = true;
        }
        s.fresh = true;
    }

    /// Ask the candidates if there is anything new. `closing`: the session ends, decide
    /// with what there is.
    pub(crate) fn decide(&mut self, id: u32, meta: &Meta, closing: bool) -> Option<Outcome> {
        let s = &mut self.slots[id as usize];
        if !s.fresh && !closing {
            return None;
        }
        s.fresh = false;
        // Once the budget is spent (or the session ends), a last pass with both
        // directions marked done: probes that still "need more" count as "no", so the
        // first match among the rest wins.
        let last = closing || s.packets >= PACKET_BUDGET || (s.c2s_done && s.s2c_done);
        let cx = ProbeCtx {
            proto: meta.proto,
            client_port: meta.client_port,
            server_port: meta.server_port,
            c2s: &s.c2s[..s.c2s_len],
            s2c: &s.s2c[..s.s2c_len],
            c2s_done: s.c2s_done || last,
            s2c_done: s.s2c_done || last,
            first: s.first,
            mid_stream: meta.mid_stream,
        };
        let out = probe::run(&cx, s.candidates);
        Some(match out {
            Outcome::Pending(_) if last => Outcome::None,
            Outcome::Pending(c) => {
                s.candidates = c;
                out
            }
            other => other,
        })
    }
}
