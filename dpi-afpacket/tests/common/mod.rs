//! Shared topology, bridge and frame helpers of the namespace tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use dpi_afpacket::{poll_ready, FrameMeta, ServiceConfig, ServicePort, Verdict};
use netns_harness::AnonNs;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const MAC1: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub const MAC2: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// Tools every namespace test needs (traffic is generated from Rust, offloads are set
/// through the crate's ethtool ioctl).
pub fn ready() -> bool {
    netns_harness::require_root(&["ip"])
}

/// Two namespaces joined by a veth (`eth0` on both), 10.9.0.1 and 10.9.0.2.
pub fn pair() -> (AnonNs, AnonNs) {
    let a = AnonNs::new().unwrap();
    let b = AnonNs::new().unwrap();
    a.veth_to("eth0", &b, "eth0").unwrap();
    a.mac("eth0", "02:00:00:00:00:01").unwrap();
    b.mac("eth0", "02:00:00:00:00:02").unwrap();
    a.addr("eth0", "10.9.0.1/24").unwrap();
    b.addr("eth0", "10.9.0.2/24").unwrap();
    a.up("eth0").unwrap();
    b.up("eth0").unwrap();
    (a, b)
}

/// c1 — enf — c2: c1's `eth0` is peered with `vin` in enf, c2's `eth0` with `vex`;
/// 10.250.0.1 and 10.250.0.2 on one /24, so only a bridge in enf connects them.
pub struct Inline {
    pub c1: AnonNs,
    pub enf: AnonNs,
    pub c2: AnonNs,
}

impl Inline {
    pub fn new(mtu: Option<u32>) -> Inline {
        let c1 = AnonNs::new().unwrap();
        let enf = AnonNs::new().unwrap();
        let c2 = AnonNs::new().unwrap();
        c1.veth_to("eth0", &enf, "vin").unwrap();
        c2.veth_to("eth0", &enf, "vex").unwrap();
        c1.mac("eth0", "02:00:00:00:00:01").unwrap();
        c2.mac("eth0", "02:00:00:00:00:02").unwrap();
        c1.addr("eth0", "10.250.0.1/24").unwrap();
        c2.addr("eth0", "10.250.0.2/24").unwrap();
        if let Some(m) = mtu {
            let m = m.to_string();
            for (ns, l) in [(&c1, "eth0"), (&c2, "eth0"), (&enf, "vin"), (&enf, "vex")] {
                ns.run(&["ip", "link", "set", l, "mtu", &m]).unwrap();
            }
        }
        for (ns, l) in [(&c1, "eth0"), (&c2, "eth0"), (&enf, "vin"), (&enf, "vex")] {
            ns.up(l).unwrap();
        }
        Inline { c1, enf, c2 }
    }

    /// Transmit checksum offload of a container's `eth0`.
    pub fn offload(ns: &AnonNs, on: bool) {
        ns.enter(move || {
            dpi_afpacket::set_tx_offload("eth0", on).unwrap();
            assert_eq!(dpi_afpacket::tx_offload("eth0").unwrap(), on);
        });
    }

    /// Service ports on `vin` and `vex`, opened inside enf.
    pub fn ports(&self, cfg: ServiceConfig) -> (ServicePort, ServicePort) {
        self.enf.enter(move || {
            (ServicePort::open("vin", &cfg).unwrap(), ServicePort::open("vex", &cfg).unwrap())
        })
    }
}

type Filter = Box<dyn FnMut(&mut [u8], &FrameMeta) -> Verdict + Send>;

/// A user-space bridge between two service ports on a worker thread; stopped by a flag
/// and joined on `stop` (or drop).
pub struct Bridge {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<(ServicePort, ServicePort, Filter)>>,
}

impl Bridge {
    pub fn start(mut vin: ServicePort, mut vex: ServicePort, mut filter: Filter) -> Bridge {
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                poll_ready(&[vin.as_fd(), vex.as_fd()], Duration::from_millis(50)).unwrap();
                vin.recv_to(&mut vex, 256, &mut filter);
                vex.recv_to(&mut vin, 256, &mut filter);
            }
            (vin, vex, filter)
        });
        Bridge { stop, handle: Some(handle) }
    }

    pub fn stop(mut self) -> (ServicePort, ServicePort) {
        self.stop.store(true, Ordering::Relaxed);
        let (a, b, _) = self.handle.take().unwrap().join().unwrap();
        (a, b)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// IPv4 L4 view of an Ethernet frame: (protocol, ihl bytes offset of L4, src, dst, sport,
/// dport).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V4 {
    pub proto: u8,
    pub l4: usize,
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub sport: u16,
    pub dport: u16,
}

pub fn v4(frame: &[u8]) -> Option<V4> {
    if frame.len() < 14 + 20 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip.len() < ihl + 4 {
        return None;
    }
    let l4 = 14 + ihl;
    Some(V4 {
        proto: ip[9],
        l4,
        src: ip[12..16].try_into().unwrap(),
        dst: ip[16..20].try_into().unwrap(),
        sport: u16::from_be_bytes([frame[l4], frame[l4 + 1]]),
        dport: u16::from_be_bytes([frame[l4 + 2], frame[l4 + 3]]),
    })
}

/// UDP payload of an IPv4 frame.
pub fn udp_payload(frame: &[u8]) -> Option<&[u8]> {
    let v = v4(frame)?;
    if v.proto != 17 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([frame[v.l4 + 4], frame[v.l4 + 5]]));
    frame.get(v.l4 + 8..v.l4 + len)
}

fn sum16(mut acc: u32, data: &[u8]) -> u32 {
    let mut it = data.chunks_exact(2);
    for c in &mut it {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = it.remainder() {
        acc += u32::from(*b) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Recompute the L4 checksum of an IPv4 TCP/UDP frame (what a checksum-offloading NIC
/// would have done).
pub fn fix_l4_checksum(frame: &mut [u8]) {
    let Some(v) = v4(frame) else { return };
    let tot = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
    let end = (14 + tot).min(frame.len());
    let at = match v.proto {
        6 => v.l4 + 16,
        17 => v.l4 + 6,
        _ => return,
    };
    if at + 2 > end {
        return;
    }
    frame[at] = 0;
    frame[at + 1] = 0;
    let l4len = (end - v.l4) as u32;
    let mut acc = sum16(0, &v.src);
    acc = sum16(acc, &v.dst);
    acc += u32::from(v.proto) + l4len;
    acc = sum16(acc, &frame[v.l4..end]);
    let c = fold(acc);
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// A whole Ethernet/IPv4/UDP frame with valid checksums.
pub fn build_udp(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(42 + payload.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let tot = (20 + 8 + payload.len()) as u16;
    f.extend_from_slice(&[0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0]);
    f[16..18].copy_from_slice(&tot.to_be_bytes());
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    let c = fold(sum16(0, &f[14..34]));
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    fix_l4_checksum(&mut f);
    f
}

/// Poll `cond` every 10 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// FNV-1a over a byte stream (for comparing transfers).
#[derive(Clone, Copy, Debug)]
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn update(&mut self, data: &[u8]) {
        for b in data {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
}
