//! Resets on the NFQUEUE path. A queue can only accept or drop the packet it holds; it
//! cannot add one. So an NFQUEUE worker also holds two raw IP sockets (IPv4, IPv6) in the
//! workload's namespace and sends the engine's resets (`Ctx::poll_transmit`) through them
//! as whole IP packets: the reset to the workload goes through the namespace's local
//! delivery, the reset to the peer out of its interface. The sockets mark their packets
//! ([`crate::wiring::INJECT_MARK`]) and the queue rules return marked packets first, so a
//! reset is never queued back to the engine (whose blocked session would drop it).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;

/// Raw sockets of one workload's namespace.
#[derive(Debug)]
pub struct Injector {
    v4: OwnedFd,
    v6: OwnedFd,
}

impl Injector {
    /// Open both sockets in the calling thread's namespace.
    pub fn open() -> io::Result<Injector> {
        let mark = crate::wiring::INJECT_MARK;
        Ok(Injector {
            v4: crate::sys::raw_ip_socket(false, mark)?,
            v6: crate::sys::raw_ip_socket(true, mark)?,
        })
    }

    /// Send the IP packet of an Ethernet `frame` (as `poll_transmit` gives it).
    pub fn send_frame(&self, frame: &[u8]) -> io::Result<()> {
        let (v6, packet) = ip_packet(frame)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP frame"))?;
        let dst = if v6 {
            let b: [u8; 16] = packet[24..40].try_into().map_err(io::Error::other)?;
            IpAddr::V6(Ipv6Addr::from(b))
        } else {
            IpAddr::V4(Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]))
        };
        let sock = if v6 { &self.v6 } else { &self.v4 };
        crate::sys::send_raw(sock, packet, dst).map(|_| ())
    }
}

/// The IP packet inside an Ethernet II frame (optionally one VLAN tag), and whether it is
/// IPv6; `None` for anything else or a frame too short for its IP header.
fn ip_packet(frame: &[u8]) -> Option<(bool, &[u8])> {
    let mut off = 12;
    let mut ty = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    if ty == 0x8100 {
        off += 4;
        ty = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    }
    let packet = frame.get(off + 2..)?;
    match ty {
        0x0800 if packet.len() >= 20 => Some((false, packet)),
        0x86dd if packet.len() >= 40 => Some((true, packet)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_ip_packet_of_a_frame() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[0x45; 20]);
        assert_eq!(ip_packet(&f).map(|(v6, p)| (v6, p.len())), Some((false, 20)));
        let mut g = vec![0u8; 12];
        g.extend_from_slice(&[0x81, 0x00, 0, 5, 0x86, 0xdd]);
        g.extend_from_slice(&[0x60; 40]);
        assert_eq!(ip_packet(&g).map(|(v6, p)| (v6, p.len())), Some((true, 40)));
        assert_eq!(ip_packet(&[0u8; 13]), None);
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06, 0, 0]);
        assert_eq!(ip_packet(&arp), None);
        let mut short = vec![0u8; 12];
        short.extend_from_slice(&[0x08, 0x00, 0x45]);
        assert_eq!(ip_packet(&short), None);
    }
}
