//! SSH (RFC 4253 §4.2): either side's identification string `SSH-protoversion-...`, where
//! the protocol version is `2.0`, `1.99` or `1.x`.

use crate::app::probe::{Probe, ProbeCtx};

fn banner(b: &[u8], done: bool) -> Probe {
    const HEAD: &[u8] = b"SSH-";
    let n = b.len().min(HEAD.len());
    if b[..n] != HEAD[..n] {
        return Probe::No;
    }
    // "SSH-" digit "." digits "-"
    let rest = &b[n..];
    if b.len() < HEAD.len() || rest.len() < 4 {
        return if done { Probe::No } else { Probe::NeedMore };
    }
    let mut i = 0;
    if !rest[i].is_ascii_digit() {
        return Probe::No;
    }
    i += 1;
    if rest[i] != b'.' {
        return Probe::No;
    }
    i += 1;
    let digits = rest[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return Probe::No;
    }
    match rest.get(i + digits) {
        Some(b'-') => Probe::Match,
        None if !done => Probe::NeedMore,
        _ => Probe::No,
    }
}

/// SSH.
pub fn probe(cx: &ProbeCtx<'_>) -> Probe {
    let c = (!cx.c2s.is_empty()).then(|| banner(cx.c2s, cx.c2s_done));
    let s = (!cx.s2c.is_empty()).then(|| banner(cx.s2c, cx.s2c_done));
    match (c, s) {
        (Some(Probe::Match), _) | (_, Some(Probe::Match)) => Probe::Match,
        (Some(Probe::No), _) | (_, Some(Probe::No)) => Probe::No,
        _ => Probe::NeedMore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banners() {
        assert_eq!(banner(b"SSH-2.0-OpenSSH_9.6\r\n", false), Probe::Match);
        assert_eq!(banner(b"SSH-1.99-Cisco-1.25\r\n", false), Probe::Match);
        assert_eq!(banner(b"SSH-2.", false), Probe::NeedMore);
        assert_eq!(banner(b"SSH-x.0-", false), Probe::No);
        assert_eq!(banner(b"HTTP/1.1", false), Probe::No);
    }
}
