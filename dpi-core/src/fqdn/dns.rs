//! DNS responses (RFC 1035) reduced to what FQDN learning needs: the question name and
//! the addresses its answer finally resolves to.
//!
//! [`parse_response`] takes one DNS message (a UDP payload, or a TCP message without its
//! two-byte length prefix, see [`tcp_message`]) and, if it is a successful response to a
//! standard query, fills an [`Answer`]: the first question's name (lowercase, without the
//! trailing dot) and the A/AAAA records of the last name of the CNAME chain that starts
//! at the question name, each with its TTL. Everything else (authority and additional
//! sections, other record types and classes, records owned by names off the chain) is
//! ignored.
//!
//! Invariants:
//! - bounded and allocation-free: the message is read through a bounds-checked
//!   `Reader` cursor and never indexed directly; the answer lives in fixed-size arrays
//!   (a name of at most [`MAX_NAME_LEN`] bytes, at most [`MAX_ADDRS`] addresses);
//! - never panics on any input (property-tested and fuzz-shaped tests below);
//! - malformed input yields nothing: any answer record that does not parse, a name that
//!   breaks RFC 1035 §4.1.4 compression rules or the 255-byte limit, or an A/AAAA/CNAME
//!   record with an impossible RDATA length makes the whole message
//!   [`Ignored::Malformed`].
//!
//! Limits, chosen so a hostile message costs a bounded amount of work:
//! - a name may follow at most [`MAX_POINTER_JUMPS`] compression pointers (NeuVector's
//!   DNS parser uses the same loop limit); together with the 255-byte wire-length limit
//!   this stops pointer loops;
//! - the CNAME chain may have at most [`MAX_CNAME_HOPS`] links; a longer chain (or a
//!   loop) is [`Ignored::CnameChain`];
//! - only the first [`MAX_ANSWER_RECORDS`] A, AAAA and CNAME records of the answer
//!   section are considered (the rest are still checked for well-formedness).
//!
//! Names: a question name is accepted only if every label is printable ASCII other than
//! `.` (host names, underscores and `*` pass; spaces, control bytes and raw UTF-8 do
//! not), so that it can be stored as a `&str` and compared with policy patterns; other
//! names are [`Ignored::UnsupportedName`]. Owner and CNAME target names are compared with
//! the question name label by label, ASCII case-insensitively (RFC 4343), directly on the
//! wire form.
//!
//! TTLs with the most significant bit set are read as 0 (RFC 2181 §8). An extended RCODE
//! carried in an EDNS OPT record (RFC 6891) is not looked at: only the header's RCODE.

use crate::packet::{addr_from_v4, Addr};
use arrayvec::{ArrayString, ArrayVec};

/// Longest name in text form: 255 bytes on the wire (RFC 1035 §3.1) minus the first
/// length byte and the terminating root label.
pub const MAX_NAME_LEN: usize = 253;
/// Addresses kept per answer; further ones are counted in [`Answer::addrs_dropped`].
pub const MAX_ADDRS: usize = 32;
/// Longest CNAME chain followed.
pub const MAX_CNAME_HOPS: usize = 16;
/// A, AAAA and CNAME answer records considered per message.
pub const MAX_ANSWER_RECORDS: usize = 64;
/// Compression pointers followed within one name.
pub const MAX_POINTER_JUMPS: usize = 63;

const HEADER_LEN: usize = 12;
const MAX_WIRE_NAME: usize = 255;
const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

/// Why a message gave no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ignored {
    /// A query (QR = 0), not a response.
    Query,
    /// A response to something other than a standard query (OPCODE ≠ 0).
    Opcode,
    /// An error response (RCODE ≠ 0: NXDOMAIN, SERVFAIL, REFUSED, ...).
    Rcode,
    /// No question to name the answer by (QDCOUNT = 0).
    NoQuestion,
    /// The question name is the root, or has bytes a host name cannot have.
    UnsupportedName,
    /// The CNAME chain is longer than [`MAX_CNAME_HOPS`], or loops.
    CnameChain,
    /// Truncated or otherwise malformed (bad lengths, compression, record layout).
    Malformed,
}

/// One address an answer resolves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsAddr {
    /// IPv6 (an AAAA record) rather than IPv4 (an A record).
    pub v6: bool,
    /// The address; IPv4 is mapped as in [`Addr`].
    pub addr: Addr,
    /// The record's TTL in seconds.
    pub ttl: u32,
}

/// What a successful response says: the question name and its final addresses.
/// Fixed-size (about 1.3 KB); reuse one across messages.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    name: ArrayString<MAX_NAME_LEN>,
    addrs: ArrayVec<DnsAddr, MAX_ADDRS>,
    cname_hops: u8,
    addrs_dropped: u16,
}

impl Answer {
    /// An empty answer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The question name: lowercase, no trailing dot.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The A and AAAA records of the end of the CNAME chain, in message order.
    pub fn addrs(&self) -> &[DnsAddr] {
        &self.addrs
    }

    /// CNAME records followed from the question name to the name owning the addresses.
    pub fn cname_hops(&self) -> usize {
        usize::from(self.cname_hops)
    }

    /// Addresses beyond [`MAX_ADDRS`] that were not kept.
    pub fn addrs_dropped(&self) -> usize {
        usize::from(self.addrs_dropped)
    }

    fn clear(&mut self) {
        self.name.clear();
        self.addrs.clear();
        self.cname_hops = 0;
        self.addrs_dropped = 0;
    }
}

/// Parse one DNS message into `out` (cleared first). `Ok` means a successful response to
/// a standard query whose question name is in `out.name()`; its address list may be
/// empty (a NODATA answer, or a chain ending in a name without A/AAAA records).
pub fn parse_response(msg: &[u8], out: &mut Answer) -> Result<(), Ignored> {
    out.clear();
    let mut r = Reader::new(msg);
    let hdr: [u8; HEADER_LEN] = r.array().ok_or(Ignored::Malformed)?;
    let flags = u16::from_be_bytes([hdr[2], hdr[3]]);
    let qdcount = u16::from_be_bytes([hdr[4], hdr[5]]);
    let ancount = u16::from_be_bytes([hdr[6], hdr[7]]);
    if flags & 0x8000 == 0 {
        return Err(Ignored::Query);
    }
    if (flags >> 11) & 0xf != 0 {
        return Err(Ignored::Opcode);
    }
    if flags & 0xf != 0 {
        return Err(Ignored::Rcode);
    }
    if qdcount == 0 {
        return Err(Ignored::NoQuestion);
    }

    // Questions: the first one names the answer; all are skipped over.
    for i in 0..qdcount {
        let start = r.pos();
        let end = skip_name(msg, start)?;
        if i == 0 {
            decode_name(msg, start, &mut out.name)?;
        }
        r.seek(end);
        r.take(4).ok_or(Ignored::Malformed)?; // QTYPE, QCLASS
    }

    // Answer section: remember the records that can be on the chain.
    let mut recs: ArrayVec<Rec, MAX_ANSWER_RECORDS> = ArrayVec::new();
    for _ in 0..ancount {
        let owner = r.pos();
        r.seek(skip_name(msg, owner)?);
        let (Some(rtype), Some(class), Some(ttl), Some(rdlen)) =
            (r.u16(), r.u16(), r.u32(), r.u16())
        else {
            return Err(Ignored::Malformed);
        };
        let rdata = r.pos();
        r.take(usize::from(rdlen)).ok_or(Ignored::Malformed)?;
        if class != CLASS_IN || !matches!(rtype, TYPE_A | TYPE_AAAA | TYPE_CNAME) {
            continue;
        }
        let ok = match rtype {
            TYPE_A => rdlen == 4,
            TYPE_AAAA => rdlen == 16,
            _ => skip_name(msg, rdata)? == rdata + usize::from(rdlen),
        };
        if !ok {
            return Err(Ignored::Malformed);
        }
        // RFC 2181 §8: a TTL with the top bit set means zero.
        let ttl = if ttl & 0x8000_0000 != 0 { 0 } else { ttl };
        let _ = recs.try_push(Rec { owner, rtype, ttl, rdata });
    }

    // Follow the CNAME chain from the question name (at offset 12).
    let mut current = HEADER_LEN;
    let mut hops = 0;
    'chain: loop {
        for rec in recs.iter().filter(|rec| rec.rtype == TYPE_CNAME) {
            if names_eq(msg, rec.owner, current)? {
                hops += 1;
                if hops > MAX_CNAME_HOPS {
                    return Err(Ignored::CnameChain);
                }
                current = rec.rdata;
                continue 'chain;
            }
        }
        break;
    }
    out.cname_hops = hops as u8;

    for rec in recs.iter().filter(|rec| rec.rtype != TYPE_CNAME) {
        if !names_eq(msg, rec.owner, current)? {
            continue;
        }
        let mut rd = Reader::at(msg, rec.rdata);
        let (v6, addr) = if rec.rtype == TYPE_A {
            let b = rd.array::<4>().ok_or(Ignored::Malformed)?;
            (false, addr_from_v4(b))
        } else {
            let b = rd.array::<16>().ok_or(Ignored::Malformed)?;
            (true, u128::from_be_bytes(b))
        };
        if out.addrs.try_push(DnsAddr { v6, addr, ttl: rec.ttl }).is_err() {
            out.addrs_dropped = out.addrs_dropped.saturating_add(1);
        }
    }
    Ok(())
}

/// The first message of a DNS-over-TCP byte stream (RFC 1035 §4.2.2, RFC 7766): each
/// message is preceded by its length as two bytes. Returns the message and the bytes it
/// takes in `stream` (length prefix included), or `None` while it is incomplete.
pub fn tcp_message(stream: &[u8]) -> Option<(&[u8], usize)> {
    let mut r = Reader::new(stream);
    let len = usize::from(r.u16()?);
    let msg = r.take(len)?;
    Some((msg, 2 + len))
}

/// An answer record that may be on the chain (A, AAAA or CNAME, class IN).
#[derive(Clone, Copy, Debug)]
struct Rec {
    /// Offset of the owner name.
    owner: usize,
    rtype: u16,
    ttl: u32,
    /// Offset of the RDATA (for a CNAME, of the target name).
    rdata: usize,
}

/// A bounded cursor over a byte slice: every read is checked, none can panic.
#[derive(Clone, Copy, Debug)]
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn at(buf: &'a [u8], pos: usize) -> Self {
        Reader { buf, pos }
    }

    fn pos(&self) -> usize {
        self.pos
    }

    fn seek(&mut self, pos: usize) {
        self.pos = pos;
    }

    /// The next `n` bytes, or `None` (cursor unchanged) if there are fewer.
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }
}

/// Walks the labels of a possibly compressed name (RFC 1035 §4.1.4).
#[derive(Debug)]
struct Labels<'a> {
    r: Reader<'a>,
    /// Where the name ends in place (after its terminator or first pointer).
    end: Option<usize>,
    jumps: usize,
    /// Wire length so far (length bytes and label bytes, without the pointers).
    wire_len: usize,
    done: bool,
}

impl<'a> Labels<'a> {
    fn new(msg: &'a [u8], start: usize) -> Self {
        Labels { r: Reader::at(msg, start), end: None, jumps: 0, wire_len: 0, done: false }
    }

    /// The next label, `Ok(None)` after the last one.
    fn next_label(&mut self) -> Result<Option<&'a [u8]>, Ignored> {
        if self.done {
            return Ok(None);
        }
        loop {
            let len = self.r.u8().ok_or(Ignored::Malformed)?;
            match len & 0xc0 {
                0x00 if len == 0 => {
                    self.end.get_or_insert(self.r.pos());
                    self.done = true;
                    return Ok(None);
                }
                0x00 => {
                    let label = self.r.take(usize::from(len)).ok_or(Ignored::Malformed)?;
                    // Room must remain for the root label.
                    self.wire_len += 1 + label.len();
                    if self.wire_len + 1 > MAX_WIRE_NAME {
                        return Err(Ignored::Malformed);
                    }
                    return Ok(Some(label));
                }
                0xc0 => {
                    let lo = self.r.u8().ok_or(Ignored::Malformed)?;
                    self.end.get_or_insert(self.r.pos());
                    self.jumps += 1;
                    let target = usize::from(u16::from_be_bytes([len & 0x3f, lo]));
                    if self.jumps > MAX_POINTER_JUMPS || target < HEADER_LEN {
                        return Err(Ignored::Malformed);
                    }
                    self.r.seek(target);
                }
                // 0x40 (extended label types, RFC 6891 deprecated them) and 0x80 (reserved).
                _ => return Err(Ignored::Malformed),
            }
        }
    }
}

/// Check the name at `start` and return the offset just past it in place.
fn skip_name(msg: &[u8], start: usize) -> Result<usize, Ignored> {
    let mut l = Labels::new(msg, start);
    while l.next_label()?.is_some() {}
    l.end.ok_or(Ignored::Malformed)
}

/// Decode the name at `start` into lowercase dotted text.
fn decode_name(
    msg: &[u8],
    start: usize,
    out: &mut ArrayString<MAX_NAME_LEN>,
) -> Result<(), Ignored> {
    out.clear();
    let mut l = Labels::new(msg, start);
    while let Some(label) = l.next_label()? {
        if !out.is_empty() {
            out.try_push('.').map_err(|_| Ignored::Malformed)?;
        }
        for &b in label {
            if !b.is_ascii_graphic() || b == b'.' {
                return Err(Ignored::UnsupportedName);
            }
            out.try_push(char::from(b.to_ascii_lowercase())).map_err(|_| Ignored::Malformed)?;
        }
    }
    if out.is_empty() {
        return Err(Ignored::UnsupportedName);
    }
    Ok(())
}

/// Are the names at `a` and `b` equal, ignoring ASCII case (RFC 4343)?
fn names_eq(msg: &[u8], a: usize, b: usize) -> Result<bool, Ignored> {
    if a == b {
        return Ok(true);
    }
    let (mut la, mut lb) = (Labels::new(msg, a), Labels::new(msg, b));
    loop {
        match (la.next_label()?, lb.next_label()?) {
            (None, None) => return Ok(true),
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => {}
            _ => return Ok(false),
        }
    }
}

#[cfg(test)]
mod tests;
