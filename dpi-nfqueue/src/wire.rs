//! Netlink wire format: a bounded [`Reader`], an iterator over the messages of one
//! datagram, the parser of `NFQNL_MSG_PACKET` and `NLMSG_ERROR`, and the builders of the
//! configuration and verdict requests.
//!
//! Invariant: nothing here indexes a slice directly. Every read goes through
//! [`Reader::take`], which returns `None` past the end, so a short or garbled message
//! becomes a [`Malformed`] value (counted by the caller), never a panic.

use crate::sys;
use std::ops::Range;

/// Round up to the netlink alignment (4).
pub(crate) const fn align(n: usize) -> usize {
    (n + sys::NLA_ALIGNTO - 1) & !(sys::NLA_ALIGNTO - 1)
}

/// A cursor over a byte slice that never reads past its end.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes read so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The next `n` bytes, or `None` (and no movement) if fewer remain.
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// Skip up to `n` bytes (padding may be cut at the end of a message).
    pub(crate) fn skip_at_most(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.buf.len());
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }
    pub(crate) fn u16_ne(&mut self) -> Option<u16> {
        Some(u16::from_ne_bytes(self.array()?))
    }
    pub(crate) fn u32_ne(&mut self) -> Option<u32> {
        Some(u32::from_ne_bytes(self.array()?))
    }
    pub(crate) fn i32_ne(&mut self) -> Option<i32> {
        Some(i32::from_ne_bytes(self.array()?))
    }
    pub(crate) fn u16_be(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.array()?))
    }
    pub(crate) fn u32_be(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.array()?))
    }
    pub(crate) fn u64_be(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.array()?))
    }
}

/// The fixed header of one netlink message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NlHeader {
    pub(crate) len: usize,
    pub(crate) ty: u16,
    pub(crate) flags: u16,
    pub(crate) seq: u32,
}

/// Why a message could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// The datagram's bytes do not form a netlink message (short header, length out of
    /// range).
    Framing,
    /// A queue packet message that breaks its own format; `id` is set when the packet
    /// id could still be read, so the packet can be given a verdict.
    Packet { id: Option<u32> },
}

/// Iterates over the messages of one received datagram as `(range, header)`, where
/// `range` covers the whole message (header included) within the datagram. Stops at the
/// first framing error and reports it once.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct Messages<'a> {
    r: Reader<'a>,
    failed: bool,
}

#[cfg(test)]
impl<'a> Messages<'a> {
    pub(crate) fn new(datagram: &'a [u8]) -> Self {
        Messages { r: Reader::new(datagram), failed: false }
    }
}

#[cfg(test)]
impl Iterator for Messages<'_> {
    type Item = Result<(Range<usize>, NlHeader), Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = message_at(self.r.buf, self.r.pos())?;
        match &item {
            Ok(m) => self.r.pos = m.next,
            Err(_) => self.failed = true,
        }
        Some(item.map(|m| (m.range, m.hdr)))
    }
}

/// One message located in a datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Located {
    /// The whole message (header included) within the datagram.
    pub(crate) range: Range<usize>,
    pub(crate) hdr: NlHeader,
    /// Offset of the next message.
    pub(crate) next: usize,
}

/// The message starting at `pos` of a datagram. `None` at the end; `Err` when the bytes
/// there are not a message.
pub(crate) fn message_at(datagram: &[u8], pos: usize) -> Option<Result<Located, Malformed>> {
    let rest = datagram.get(pos..).filter(|r| !r.is_empty())?;
    let mut h = Reader::new(rest);
    let parsed = (|| {
        let len = h.u32_ne()? as usize;
        let ty = h.u16_ne()?;
        let flags = h.u16_ne()?;
        let seq = h.u32_ne()?;
        let _pid = h.u32_ne()?;
        Some(NlHeader { len, ty, flags, seq })
    })();
    Some(match parsed {
        Some(hdr) if hdr.len >= sys::NLMSG_HDRLEN && hdr.len <= rest.len() => {
            let next = pos + align(hdr.len).min(rest.len());
            Ok(Located { range: pos..pos + hdr.len, hdr, next })
        }
        _ => Err(Malformed::Framing),
    })
}

/// Iterates over the attributes in `buf` as `(type, value range)`, the range relative to
/// `base` (the offset of `buf` in the enclosing message). `Err` once on a bad length.
fn attrs(buf: &[u8], base: usize) -> impl Iterator<Item = Result<(u16, Range<usize>), ()>> + '_ {
    let mut r = Reader::new(buf);
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || r.remaining() == 0 {
            return None;
        }
        let start = r.pos();
        let item = (|| {
            let len = usize::from(r.u16_ne()?);
            let ty = r.u16_ne()? & sys::NLA_TYPE_MASK;
            let value = len.checked_sub(sys::NLA_HDRLEN)?;
            r.take(value)?;
            r.skip_at_most(align(len) - len);
            let v0 = base + start + sys::NLA_HDRLEN;
            Some((ty, v0..v0 + value))
        })();
        match item {
            Some(x) => Some(Ok(x)),
            None => {
                failed = true;
                Some(Err(()))
            }
        }
    })
}

/// What a `NFQNL_MSG_PACKET` message says, with the payload as a range of the message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PacketMeta {
    pub(crate) queue: u16,
    pub(crate) family: u8,
    pub(crate) id: u32,
    pub(crate) hw_protocol: u16,
    pub(crate) hook: u8,
    pub(crate) mark: u32,
    pub(crate) indev: u32,
    pub(crate) outdev: u32,
    pub(crate) physindev: u32,
    pub(crate) physoutdev: u32,
    pub(crate) hwaddr: Option<([u8; 8], u8)>,
    pub(crate) timestamp: Option<(u64, u64)>,
    pub(crate) skb_info: u32,
    /// Original length when the payload was cut to the copy range (0: not cut).
    pub(crate) cap_len: u32,
    /// The payload within the message; an empty range at the end when there is none.
    /// Always starts at least 14 bytes into the message (room for an Ethernet header).
    pub(crate) payload: Range<usize>,
}

fn be32(v: &[u8]) -> Option<u32> {
    Reader::new(v).u32_be()
}

/// Parse a whole `NFQNL_MSG_PACKET` message (`msg` starts at its netlink header).
pub(crate) fn parse_packet(msg: &[u8]) -> Result<PacketMeta, Malformed> {
    let bad = |id| Malformed::Packet { id };
    let mut r = Reader::new(msg);
    r.take(sys::NLMSG_HDRLEN).ok_or(bad(None))?;
    let family = r.u8().ok_or(bad(None))?;
    let _version = r.u8().ok_or(bad(None))?;
    let queue = r.u16_be().ok_or(bad(None))?;
    let body = msg.get(r.pos()..).ok_or(bad(None))?;
    let base = r.pos();
    let mut m = PacketMeta { queue, family, payload: msg.len()..msg.len(), ..Default::default() };
    let mut have_hdr = false;
    let mut broken = false;
    for a in attrs(body, base) {
        let Ok((ty, range)) = a else {
            broken = true;
            break;
        };
        let Some(v) = msg.get(range.clone()) else {
            broken = true;
            break;
        };
        let ok = match ty {
            sys::NFQA_PACKET_HDR => {
                let mut vr = Reader::new(v);
                match (vr.u32_be(), vr.u16_be(), vr.u8()) {
                    (Some(id), Some(proto), Some(hook)) if !have_hdr => {
                        m.id = id;
                        m.hw_protocol = proto;
                        m.hook = hook;
                        have_hdr = true;
                        v.len() >= sys::PACKET_HDR_LEN
                    }
                    _ => false,
                }
            }
            sys::NFQA_MARK => be32(v).map(|x| m.mark = x).is_some() && v.len() == 4,
            sys::NFQA_IFINDEX_INDEV => be32(v).map(|x| m.indev = x).is_some() && v.len() == 4,
            sys::NFQA_IFINDEX_OUTDEV => be32(v).map(|x| m.outdev = x).is_some() && v.len() == 4,
            sys::NFQA_IFINDEX_PHYSINDEV => {
                be32(v).map(|x| m.physindev = x).is_some() && v.len() == 4
            }
            sys::NFQA_IFINDEX_PHYSOUTDEV => {
                be32(v).map(|x| m.physoutdev = x).is_some() && v.len() == 4
            }
            sys::NFQA_SKB_INFO => be32(v).map(|x| m.skb_info = x).is_some() && v.len() == 4,
            sys::NFQA_CAP_LEN => be32(v).map(|x| m.cap_len = x).is_some() && v.len() == 4,
            sys::NFQA_HWADDR => {
                let mut vr = Reader::new(v);
                match (vr.u16_be(), vr.take(2), vr.array::<8>()) {
                    (Some(len), Some(_), Some(addr)) if v.len() >= sys::PACKET_HW_LEN => {
                        m.hwaddr = Some((addr, len.min(8) as u8));
                        true
                    }
                    _ => false,
                }
            }
            sys::NFQA_TIMESTAMP => {
                let mut vr = Reader::new(v);
                match (vr.u64_be(), vr.u64_be()) {
                    (Some(s), Some(us)) if v.len() == sys::PACKET_TIMESTAMP_LEN => {
                        m.timestamp = Some((s, us));
                        true
                    }
                    _ => false,
                }
            }
            sys::NFQA_PAYLOAD => {
                // Only one payload, and room for an Ethernet header before it (the
                // netlink and nfgenmsg headers always give 20 bytes).
                let first = m.payload.start == msg.len();
                m.payload = range.clone();
                first && range.start >= crate::frame::ETH_HLEN
            }
            _ => true,
        };
        if !ok {
            broken = true;
            break;
        }
    }
    if !have_hdr {
        return Err(bad(None));
    }
    if broken {
        return Err(bad(Some(m.id)));
    }
    Ok(m)
}

/// Read just the packet id of a queue packet message that is otherwise unusable (cut
/// short, broken attribute after the header): the id sits in the first attribute.
pub(crate) fn salvage_id(msg: &[u8]) -> Option<u32> {
    let mut r = Reader::new(msg);
    let _len = r.u32_ne()?;
    if r.u16_ne()? != sys::queue_msg_type(sys::NFQNL_MSG_PACKET) {
        return None;
    }
    r.take(sys::NLMSG_HDRLEN - 6 + sys::NFGENMSG_LEN)?;
    let len = usize::from(r.u16_ne()?);
    let ty = r.u16_ne()? & sys::NLA_TYPE_MASK;
    if ty != sys::NFQA_PACKET_HDR || len < sys::NLA_HDRLEN + 4 {
        return None;
    }
    r.u32_be()
}

/// An `NLMSG_ERROR` message: `errno` is 0 for an acknowledgement, otherwise the
/// (positive) error number; `seq` and `ty` are those of the request it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NlError {
    pub(crate) errno: i32,
    pub(crate) seq: u32,
    pub(crate) ty: u16,
}

pub(crate) fn parse_error(msg: &[u8]) -> Option<NlError> {
    let mut r = Reader::new(msg);
    r.take(sys::NLMSG_HDRLEN)?;
    let err = r.i32_ne()?;
    let _len = r.u32_ne()?;
    let ty = r.u16_ne()?;
    let _flags = r.u16_ne()?;
    let seq = r.u32_ne()?;
    Some(NlError { errno: err.checked_neg().unwrap_or(i32::MAX), seq, ty })
}

/// Appends netlink messages to a reusable buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    /// Start a queue message; returns its start offset for [`Writer::end`].
    pub(crate) fn begin(
        &mut self,
        msg: u16,
        flags: u16,
        seq: u32,
        family: u8,
        queue: u16,
    ) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched in end()
        self.buf.extend_from_slice(&sys::queue_msg_type(msg).to_ne_bytes());
        self.buf.extend_from_slice(&(sys::NLM_F_REQUEST | flags).to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&[family, sys::NFNETLINK_V0]);
        self.buf.extend_from_slice(&queue.to_be_bytes());
        start
    }

    /// Append one attribute, padded.
    pub(crate) fn attr(&mut self, ty: u16, parts: &[&[u8]]) {
        let value: usize = parts.iter().map(|p| p.len()).sum();
        let len = sys::NLA_HDRLEN + value;
        // Attribute lengths are 16-bit; callers never pass more than a copy range.
        self.buf.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        for p in parts {
            self.buf.extend_from_slice(p);
        }
        self.buf.resize(self.buf.len() + (align(len) - len), 0);
    }

    /// Patch the length of the message started at `start`.
    pub(crate) fn end(&mut self, start: usize) {
        let len = u32::try_from(self.buf.len() - start).unwrap_or(u32::MAX);
        if let Some(h) = self.buf.get_mut(start..start + 4) {
            h.copy_from_slice(&len.to_ne_bytes());
        }
    }

    /// `NFQNL_MSG_VERDICT` (one packet, optionally replacing its bytes) or
    /// `NFQNL_MSG_VERDICT_BATCH` (every pending packet with an id up to `id`).
    pub(crate) fn verdict(
        &mut self,
        queue: u16,
        batch: bool,
        verdict: u32,
        id: u32,
        payload: Option<&[u8]>,
    ) {
        let msg = if batch { sys::NFQNL_MSG_VERDICT_BATCH } else { sys::NFQNL_MSG_VERDICT };
        let start = self.begin(msg, 0, 0, libc::AF_UNSPEC as u8, queue);
        self.attr(sys::NFQA_VERDICT_HDR, &[&verdict.to_be_bytes(), &id.to_be_bytes()]);
        if let Some(p) = payload {
            self.attr(sys::NFQA_PAYLOAD, &[p]);
        }
        self.end(start);
    }
}

impl Writer {
    /// `NFQNL_MSG_CONFIG` binding `queue` and setting copy mode, copy range and queue
    /// length in the same request (so no packet is queued in the default no-copy mode,
    /// which the kernel would reject), acknowledged.
    pub(crate) fn config_bind(&mut self, queue: u16, seq: u32, copy_range: u32, maxlen: u32) {
        let start =
            self.begin(sys::NFQNL_MSG_CONFIG, sys::NLM_F_ACK, seq, libc::AF_UNSPEC as u8, queue);
        // The pf field of BIND is ignored since Linux 3.8: one instance serves IPv4 and
        // IPv6 (the PF_BIND/PF_UNBIND commands are no-ops there).
        let pf = (libc::AF_INET as u16).to_be_bytes();
        self.attr(sys::NFQA_CFG_CMD, &[&[sys::NFQNL_CFG_CMD_BIND, 0], &pf]);
        self.attr(sys::NFQA_CFG_PARAMS, &[&copy_range.to_be_bytes(), &[sys::NFQNL_COPY_PACKET]]);
        self.attr(sys::NFQA_CFG_QUEUE_MAXLEN, &[&maxlen.to_be_bytes()]);
        self.end(start);
    }

    /// `NFQNL_MSG_CONFIG` setting the queue flags under `mask`, acknowledged.
    pub(crate) fn config_flags(&mut self, queue: u16, seq: u32, flags: u32, mask: u32) {
        let start =
            self.begin(sys::NFQNL_MSG_CONFIG, sys::NLM_F_ACK, seq, libc::AF_UNSPEC as u8, queue);
        self.attr(sys::NFQA_CFG_MASK, &[&mask.to_be_bytes()]);
        self.attr(sys::NFQA_CFG_FLAGS, &[&flags.to_be_bytes()]);
        self.end(start);
    }
}

/// Length of one verdict message without payload.
pub(crate) const VERDICT_MSG_LEN: usize =
    sys::NLMSG_HDRLEN + sys::NFGENMSG_LEN + sys::NLA_HDRLEN + sys::VERDICT_HDR_LEN;

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet message as the kernel builds it.
    pub(crate) fn packet_msg(id: u32, extra: &[(u16, Vec<u8>)], payload: &[u8]) -> Vec<u8> {
        let mut w = Writer::default();
        let s = w.begin(sys::NFQNL_MSG_PACKET, 0, 0, libc::AF_INET as u8, 7);
        w.attr(sys::NFQA_PACKET_HDR, &[&id.to_be_bytes(), &0x0800u16.to_be_bytes(), &[1, 0]]);
        for (ty, v) in extra {
            w.attr(*ty, &[v]);
        }
        w.attr(sys::NFQA_PAYLOAD, &[payload]);
        w.end(s);
        w.buf
    }

    #[test]
    fn parses_a_kernel_style_packet() {
        let msg = packet_msg(
            42,
            &[
                (sys::NFQA_IFINDEX_INDEV, 3u32.to_be_bytes().to_vec()),
                (sys::NFQA_MARK, 9u32.to_be_bytes().to_vec()),
                (sys::NFQA_SKB_INFO, (sys::NFQA_SKB_GSO).to_be_bytes().to_vec()),
            ],
            &[0x45, 0, 0, 20],
        );
        let m = parse_packet(&msg).unwrap();
        assert_eq!((m.id, m.hw_protocol, m.hook, m.queue), (42, 0x0800, 1, 7));
        assert_eq!((m.indev, m.mark, m.skb_info), (3, 9, sys::NFQA_SKB_GSO));
        assert_eq!(&msg[m.payload.clone()], &[0x45, 0, 0, 20]);
        assert!(m.payload.start >= 14);
        let mut it = Messages::new(&msg);
        let (range, hdr) = it.next().unwrap().unwrap();
        assert_eq!(range, 0..msg.len());
        assert_eq!(hdr.ty, sys::queue_msg_type(sys::NFQNL_MSG_PACKET));
        assert!(it.next().is_none());
    }

    #[test]
    fn broken_attribute_after_the_header_keeps_the_id() {
        let mut msg = packet_msg(5, &[(sys::NFQA_MARK, vec![1, 2])], &[]);
        assert_eq!(parse_packet(&msg), Err(Malformed::Packet { id: Some(5) }));
        // Cut inside the payload attribute: the attribute overruns the message.
        msg = packet_msg(6, &[], &[0x60; 40]);
        msg.truncate(msg.len() - 8);
        assert_eq!(parse_packet(&msg), Err(Malformed::Packet { id: Some(6) }));
        assert_eq!(salvage_id(&msg), Some(6));
        assert_eq!(salvage_id(&msg[..20]), None);
    }

    #[test]
    fn framing_errors_stop_the_iteration() {
        let msg = packet_msg(1, &[], &[1, 2, 3]);
        let mut twice = msg.clone();
        twice.extend_from_slice(&msg);
        assert_eq!(Messages::new(&twice).filter(|m| m.is_ok()).count(), 2);
        let mut bad = msg.clone();
        bad[0..4].copy_from_slice(&9999u32.to_ne_bytes());
        let v: Vec<_> = Messages::new(&bad).collect();
        assert_eq!(v, vec![Err(Malformed::Framing)]);
        assert_eq!(Messages::new(&[1, 2, 3]).collect::<Vec<_>>(), vec![Err(Malformed::Framing)]);
    }

    #[test]
    fn error_message_round_trip() {
        let mut msg = Vec::new();
        msg.extend_from_slice(&36u32.to_ne_bytes());
        msg.extend_from_slice(&sys::NLMSG_ERROR.to_ne_bytes());
        msg.extend_from_slice(&[0; 10]);
        msg.extend_from_slice(&(-libc::EPERM).to_ne_bytes());
        msg.extend_from_slice(&20u32.to_ne_bytes());
        msg.extend_from_slice(&sys::queue_msg_type(sys::NFQNL_MSG_CONFIG).to_ne_bytes());
        msg.extend_from_slice(&0u16.to_ne_bytes());
        msg.extend_from_slice(&77u32.to_ne_bytes());
        let e = parse_error(&msg).unwrap();
        assert_eq!((e.errno, e.seq), (libc::EPERM, 77));
        assert_eq!(parse_error(&msg[..20]), None);
    }

    #[test]
    fn verdict_messages_have_the_documented_layout() {
        let mut w = Writer::default();
        w.verdict(3, true, sys::NF_ACCEPT, 0x01020304, None);
        assert_eq!(w.buf.len(), VERDICT_MSG_LEN);
        assert_eq!(&w.buf[0..4], &(VERDICT_MSG_LEN as u32).to_ne_bytes());
        assert_eq!(&w.buf[4..6], &sys::queue_msg_type(sys::NFQNL_MSG_VERDICT_BATCH).to_ne_bytes());
        assert_eq!(&w.buf[18..20], &3u16.to_be_bytes());
        assert_eq!(&w.buf[24..32], &[0, 0, 0, 1, 1, 2, 3, 4]);
        w.buf.clear();
        w.verdict(3, false, sys::NF_DROP, 9, Some(&[1, 2, 3]));
        assert_eq!(w.buf.len(), VERDICT_MSG_LEN + 8);
        assert_eq!(&w.buf[32..34], &7u16.to_ne_bytes());
        assert_eq!(&w.buf[36..39], &[1, 2, 3]);
    }
}
