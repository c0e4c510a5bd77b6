//! TCP header (RFC 9293) and options (MSS, window scale RFC 7323, SACK-permitted and SACK
//! RFC 2018, timestamps RFC 7323). Flag combinations no stack sends (null, FIN-only,
//! SYN+FIN, xmas and their relatives; the list of the reference §3.2) are rejected, as
//! are options with impossible lengths.

use super::{be16, be32};
use crate::action::DropReason;

/// TCP flag bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;

    /// FIN set.
    pub const fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    /// SYN set.
    pub const fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    /// RST set.
    pub const fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    /// ACK set.
    pub const fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// TCP options the tracker uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOpts {
    /// Maximum segment size, 0 when absent.
    pub mss: u16,
    /// Window scale shift (clamped to 14), `None` when absent.
    pub wscale: Option<u8>,
    /// SACK permitted.
    pub sack_perm: bool,
    /// Timestamp value and echo reply.
    pub ts: Option<(u32, u32)>,
}

/// A decoded TCP header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpHdr {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful when ACK is set).
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Raw (unscaled) window.
    pub window: u16,
    /// Options.
    pub opts: TcpOpts,
}

/// Masked flag combinations rejected as malformed (URG|ACK|PSH|RST|SYN|FIN bits).
/// Null, URG-only, FIN-only, PSH-only, PSH+FIN, PSH+URG, PSH+URG+FIN, and anything with
/// both SYN and FIN (which covers the "all but RST" and "all six" xmas variants).
fn bad_flags(f: u8) -> bool {
    const SYN_FIN: u8 = TcpFlags::SYN | TcpFlags::FIN;
    matches!(f & 0x3f, 0x00 | 0x20 | 0x01 | 0x08 | 0x09 | 0x28 | 0x29) || f & SYN_FIN == SYN_FIN
}

/// Parse a TCP header at the start of `seg` (the captured bytes of the segment). Returns
/// the header and its length in bytes.
pub(super) fn parse(seg: &[u8]) -> Result<(TcpHdr, usize), DropReason> {
    if seg.len() < 20 {
        return Err(DropReason::TcpTruncated);
    }
    let hl = usize::from(seg[12] >> 4) * 4;
    if hl < 20 {
        return Err(DropReason::TcpBadHeaderLen);
    }
    if seg.len() < hl {
        return Err(DropReason::TcpTruncated);
    }
    let flags = seg[13];
    if bad_flags(flags) {
        return Err(DropReason::TcpBadFlags);
    }
    let mut h = TcpHdr {
        sport: be16(seg, 0),
        dport: be16(seg, 2),
        seq: be32(seg, 4),
        ack: be32(seg, 8),
        flags: TcpFlags(flags),
        window: be16(seg, 14),
        opts: TcpOpts::default(),
    };
    parse_options(&seg[20..hl], &mut h.opts)?;
    Ok((h, hl))
}

fn parse_options(mut o: &[u8], out: &mut TcpOpts) -> Result<(), DropReason> {
    while let Some(&kind) = o.first() {
        match kind {
            0 => break, // end of option list
            1 => {
                o = &o[1..];
                continue;
            }
            _ => {}
        }
        let len = usize::from(*o.get(1).ok_or(DropReason::TcpBadOption)?);
        if len < 2 || len > o.len() {
            return Err(DropReason::TcpBadOption);
        }
        let body = &o[2..len];
        let expected = match kind {
            2 => Some(4),
            3 => Some(3),
            4 => Some(2),
            8 => Some(10),
            19 => Some(18), // TCP MD5 signature
            _ => None,
        };
        if expected.is_some_and(|e| e != len) {
            return Err(DropReason::TcpBadOption);
        }
        match kind {
            2 => out.mss = be16(body, 0),
            3 => out.wscale = Some(body[0].min(14)),
            4 => out.sack_perm = true,
            5 if len <= 2 || (len - 2) % 8 != 0 => return Err(DropReason::TcpBadOption),
            8 => out.ts = Some((be32(body, 0), be32(body, 4))),
            _ => {}
        }
        o = &o[len..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(flags: u8, opts: &[u8]) -> Vec<u8> {
        let hl = 20 + opts.len();
        let mut v = vec![0u8; hl];
        v[0..2].copy_from_slice(&1234u16.to_be_bytes());
        v[2..4].copy_from_slice(&80u16.to_be_bytes());
        v[4..8].copy_from_slice(&1000u32.to_be_bytes());
        v[12] = ((hl / 4) as u8) << 4;
        v[13] = flags;
        v[20..].copy_from_slice(opts);
        v
    }

    #[test]
    fn syn_options_are_read() {
        let opts = [2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        let (h, hl) = parse(&hdr(TcpFlags::SYN, &opts[..20])).unwrap();
        assert_eq!(hl, 40);
        assert_eq!(h.opts.mss, 1460);
        assert_eq!(h.opts.wscale, Some(7));
        assert!(h.opts.sack_perm);
        assert_eq!(h.opts.ts, Some((1, 0)));
        assert_eq!(h.seq, 1000);
    }

    #[test]
    fn scan_flag_combinations_are_rejected() {
        for f in [0, TcpFlags::FIN, TcpFlags::SYN | TcpFlags::FIN, 0x29, 0x3f, 0x3b, TcpFlags::PSH]
        {
            assert_eq!(parse(&hdr(f, &[])).unwrap_err(), DropReason::TcpBadFlags, "flags {f:#x}");
        }
        for f in [TcpFlags::SYN, TcpFlags::ACK, TcpFlags::RST, 0x11, 0x18, 0x12, 0x14, 0x19] {
            assert!(parse(&hdr(f, &[])).is_ok(), "flags {f:#x}");
        }
    }

    #[test]
    fn bad_option_lengths_are_rejected() {
        for opts in
            [&[2u8, 3, 0, 0][..], &[3, 2, 0, 0], &[8, 1, 0, 0], &[5, 2, 0, 0], &[30, 9, 0, 0]]
        {
            assert_eq!(
                parse(&hdr(TcpFlags::ACK, opts)).unwrap_err(),
                DropReason::TcpBadOption,
                "{opts:?}"
            );
        }
    }

    #[test]
    fn short_or_bad_offsets_are_rejected() {
        assert_eq!(parse(&[0; 19]).unwrap_err(), DropReason::TcpTruncated);
        let mut h = hdr(TcpFlags::ACK, &[]);
        h[12] = 3 << 4;
        assert_eq!(parse(&h).unwrap_err(), DropReason::TcpBadHeaderLen);
        h[12] = 6 << 4;
        assert_eq!(parse(&h).unwrap_err(), DropReason::TcpTruncated);
    }
}
