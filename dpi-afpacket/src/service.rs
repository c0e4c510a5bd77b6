//! Service (inline) port: TPACKET_V2 receive and transmit rings on one interface.
//!
//! Receive: the kernel fills fixed-size slots; [`ServicePort::recv`] walks the ready ones,
//! lends each to the callback and, on [`Verdict::Forward`], copies it into a TX slot (of
//! this port, or of another with [`ServicePort::recv_to`]) before handing the RX slot
//! back. At the end of the batch one `send(fd, NULL, 0, MSG_DONTWAIT)` makes the kernel
//! transmit every filled TX slot. `PACKET_IGNORE_OUTGOING` keeps the port from reading
//! back what it (or anything else on the host) sends on the interface.
//!
//! Transmit: a TX slot is ours when its status is available; a full ring (the kernel has
//! not yet freed the slot, which happens only once the receiver consumed the frame) drops
//! the frame and counts it ([`PortCounters::tx_ring_full`]). The kick never blocks
//! (`MSG_DONTWAIT`): a slot the kernel could not take (socket send buffer full) stays
//! queued and is retried by the next [`ServicePort::flush`]. Frames larger than a slot
//! or the MTU go out through a second socket without a ring, with a plain `send()`.

use crate::meta::{FrameMeta, Vlan};
use crate::sys::{self, Geometry, PacketSocket, Region, RxV2, TxV2, Version, VNET_HDR_LEN};
use crate::vnet::VnetHdr;
use crate::{ifindex, sock_err, Fanout, KernelStats, PortCounters, PortError, Verdict};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

/// Size of the buffer oversize frames are read into: the largest GSO frame (64 KiB, BIG
/// TCP off), with room for a `virtio_net_hdr` and a margin.
const BIG_FRAME: usize = 65536 + 256;
/// Longest wait for send-buffer room before a plain `send()` of a frame is given up. After
/// one wait in vain the port stops waiting (frames that find no room are dropped and
/// counted) until a send succeeds again, so a stuck peer costs the worker 10 ms, not 10 ms
/// per frame.
const SEND_WAIT_MS: i32 = 10;
/// Kick the TX ring once this many slots are waiting, even inside a batch.
const KICK_EVERY: u32 = 64;

/// Geometry and options of a [`ServicePort`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Bytes per ring slot (RX and TX; a multiple of 16). Default 2048, which holds frames
    /// up to 1982 bytes on receive and 2016 on transmit: enough for a 1500-byte MTU. Use
    /// 16384 for 9000-byte jumbo frames.
    pub frame_size: u32,
    /// RX ring slots. Default 4096 (8 MiB with 2 KiB slots).
    pub rx_frames: u32,
    /// TX ring slots. Default 4096.
    pub tx_frames: u32,
    /// Send with `PACKET_QDISC_BYPASS` (skip the interface's qdisc; no traffic control
    /// and no packet taps on the way out). Default off.
    pub qdisc_bypass: bool,
    /// Read frames larger than a slot whole (`PACKET_COPY_THRESH`, see the crate docs).
    /// Default on.
    pub copy_oversize: bool,
    /// Join a fanout group (default none).
    pub fanout: Option<Fanout>,
    /// Carry offload state through (`PACKET_VNET_HDR`): GSO super-frames arrive whole
    /// (flagged in [`FrameMeta::gso`]) and leave whole, and partial checksums are finished
    /// by the kernel on the way out, so transmit offload can stay on everywhere. Both
    /// ports of a [`ServicePort::recv_to`] pair should agree. Default off. See the crate
    /// docs.
    pub vnet_hdr: bool,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            frame_size: 2048,
            rx_frames: 4096,
            tx_frames: 4096,
            qdisc_bypass: false,
            copy_oversize: true,
            fanout: None,
            vnet_hdr: false,
        }
    }
}

/// What happened to a frame given to [`ServicePort::transmit`] or forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxOutcome {
    /// In a TX slot; leaves at the next kick (end of the batch or [`ServicePort::flush`]).
    Queued,
    /// Handed to the kernel with a plain `send()` (oversize frames).
    Sent,
    /// Dropped: no free TX slot (counted in [`PortCounters::tx_ring_full`]).
    RingFull,
    /// Dropped: the kernel refused it, e.g. larger than the MTU (counted in
    /// [`PortCounters::tx_errors`]).
    Failed,
}

#[derive(Debug)]
struct RxSide {
    // Ring before socket: the mapping goes before the socket closes.
    rx: RxV2,
    sock: PacketSocket,
    copy: bool,
    /// Bytes the kernel puts before each frame: `VNET_HDR_LEN` with `vnet_hdr`, else 0.
    pre: usize,
    big: Box<[u8]>,
    counters: PortCounters,
    kstats: KernelStats,
}

#[derive(Debug)]
struct TxSide {
    tx: TxV2,
    /// The ring socket (a second descriptor of it), for kicks.
    sock: PacketSocket,
    /// A ring-less socket on the same interface, for oversize frames.
    plain: PacketSocket,
    /// Largest frame the interface takes (MTU + Ethernet header + one VLAN tag), GSO
    /// super-frames aside.
    max_frame: usize,
    /// Both sockets expect a `virtio_net_hdr` before each frame.
    vnet: bool,
    /// The last wait for send-buffer room was in vain (see [`SEND_WAIT_MS`]).
    send_stalled: bool,
    pending: u32,
    /// Reused buffer for re-tagging an oversize frame.
    scratch: Vec<u8>,
    counters: PortCounters,
}

impl TxSide {
    /// Queue the concatenation of `parts` (starting with a `virtio_net_hdr` when `vnet`).
    fn push(&mut self, parts: &[&[u8]]) -> TxOutcome {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let frame_len = if self.vnet { total.saturating_sub(VNET_HDR_LEN) } else { total };
        if frame_len > self.max_frame || total > self.tx.slot_capacity() {
            return self.send_plain(parts, total);
        }
        if !self.tx.push(parts) {
            // One kick may free slots the kernel has finished with; try once more.
            self.flush();
            if !self.tx.push(parts) {
                self.counters.tx_ring_full += 1;
                return TxOutcome::RingFull;
            }
        }
        self.counters.tx_frames += 1;
        self.counters.tx_bytes += frame_len as u64;
        self.pending += 1;
        if self.pending >= KICK_EVERY {
            self.flush();
        }
        TxOutcome::Queued
    }

    fn send_plain(&mut self, parts: &[&[u8]], total: usize) -> TxOutcome {
        // Keep order with frames already in the ring.
        self.flush();
        let data: &[u8] = match parts {
            [one] => one,
            _ => {
                self.scratch.clear();
                for p in parts {
                    self.scratch.extend_from_slice(p);
                }
                &self.scratch
            }
        };
        let mut res = self.plain.send(data);
        if !self.send_stalled && matches!(&res, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            // Send buffer full (super-frames in flight): wait briefly for room rather than
            // drop 64 KiB of a TCP stream, but never block the worker for long.
            if sys::poll_out(self.plain.as_fd(), SEND_WAIT_MS).unwrap_or(false) {
                res = self.plain.send(data);
            } else {
                self.send_stalled = true;
            }
        }
        if res.is_ok() {
            self.send_stalled = false;
        }
        match res {
            Ok(_) => {
                self.counters.tx_frames += 1;
                self.counters.tx_bytes +=
                    (if self.vnet { total.saturating_sub(VNET_HDR_LEN) } else { total }) as u64;
                TxOutcome::Sent
            }
            Err(_) => {
                self.counters.tx_errors += 1;
                TxOutcome::Failed
            }
        }
    }

    /// Forward a received frame. `buf` is the frame preceded by its `pre` bytes of
    /// `virtio_net_hdr` (0 or `VNET_HDR_LEN`, as the receiving port was opened).
    fn forward(&mut self, buf: &mut [u8], pre: usize, vlan: Option<Vlan>) -> TxOutcome {
        if self.vnet && pre == VNET_HDR_LEN && vlan.is_none() && buf.len() >= pre {
            // Header and frame are contiguous already: one part, no copy on the way.
            let (hdr, frame) = buf.split_at_mut(pre);
            if let Ok(b) = <&mut [u8; VNET_HDR_LEN]>::try_from(hdr) {
                *b = VnetHdr::parse(b).for_tx(frame.len()).to_bytes();
            }
            return self.push(&[buf]);
        }
        let (hdr, frame) = buf.split_at(pre.min(buf.len()));
        let tag = match vlan {
            Some(v) if frame.len() >= 12 => {
                let mut tag = [0u8; 4];
                tag[..2].copy_from_slice(&v.tpid.to_be_bytes());
                tag[2..].copy_from_slice(&v.tci.to_be_bytes());
                Some(tag)
            }
            _ => None,
        };
        match (self.vnet, pre == VNET_HDR_LEN, tag) {
            (false, _, None) => self.push(&[frame]),
            (false, _, Some(tag)) => self.push(&[&frame[..12], &tag, &frame[12..]]),
            (true, has, tag) => {
                let mut h = match <&[u8; VNET_HDR_LEN]>::try_from(hdr) {
                    Ok(b) if has => VnetHdr::parse(b),
                    _ => VnetHdr::default(),
                };
                match tag {
                    Some(tag) => {
                        // The tag goes in after the MAC addresses: offsets past them move.
                        h = h.shifted(4);
                        let h = h.for_tx(frame.len() + 4).to_bytes();
                        self.push(&[&h, &frame[..12], &tag, &frame[12..]])
                    }
                    None => self.push(&[&h.for_tx(frame.len()).to_bytes(), frame]),
                }
            }
        }
    }

    fn flush(&mut self) {
        if self.pending == 0 {
            return;
        }
        match self.sock.kick() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => self.counters.tx_errors += 1,
        }
        // Slots the kernel could not take yet stay queued for the next kick.
        self.pending = if self.tx.last_unsent() { self.pending.max(1) } else { 0 };
    }
}

/// TPACKET_V2 RX and TX rings on one interface. See the module and crate docs.
#[derive(Debug)]
pub struct ServicePort {
    iface: String,
    rxs: RxSide,
    txs: TxSide,
}

fn geometry(frame_size: u32, frames: u32) -> Geometry {
    let page = sys::page_size() as u32;
    let block_size = frame_size.div_ceil(page) * page;
    let fpb = (block_size / frame_size).max(1);
    Geometry { block_size, block_nr: frames.div_ceil(fpb).max(1), frame_size }
}

impl ServicePort {
    /// Open a service port on `iface`, in the network namespace of the calling thread
    /// (the sockets stay in that namespace for life).
    pub fn open(iface: &str, cfg: &ServiceConfig) -> Result<ServicePort, PortError> {
        let bad = |field, reason: String| PortError::Config { iface: iface.into(), field, reason };
        if cfg.frame_size < 128 || !cfg.frame_size.is_multiple_of(16) || cfg.frame_size > 1 << 20 {
            return Err(bad(
                "frame_size",
                format!("{} must be a multiple of 16 between 128 and 1 MiB", cfg.frame_size),
            ));
        }
        if cfg.rx_frames == 0 || cfg.tx_frames == 0 {
            return Err(bad("rx_frames/tx_frames", "must be at least 1".into()));
        }
        let rg = geometry(cfg.frame_size, cfg.rx_frames);
        let tg = geometry(cfg.frame_size, cfg.tx_frames);
        let idx = ifindex(iface)?;
        let mtu = sys::mtu(iface).map_err(sock_err(iface, "SIOCGIFMTU"))? as usize;

        let sock = PacketSocket::new().map_err(sock_err(iface, "socket"))?;
        if cfg.vnet_hdr {
            // Before the version and the rings: the kernel refuses it once a ring exists.
            sock.set_vnet_hdr().map_err(sock_err(iface, "PACKET_VNET_HDR"))?;
        }
        sock.set_version(Version::V2).map_err(sock_err(iface, "PACKET_VERSION"))?;
        sock.set_ignore_outgoing().map_err(sock_err(iface, "PACKET_IGNORE_OUTGOING"))?;
        sock.set_loss().map_err(sock_err(iface, "PACKET_LOSS"))?;
        if cfg.copy_oversize {
            sock.set_copy_thresh().map_err(sock_err(iface, "PACKET_COPY_THRESH"))?;
        }
        if cfg.qdisc_bypass {
            sock.set_qdisc_bypass().map_err(sock_err(iface, "PACKET_QDISC_BYPASS"))?;
        }
        // Room for a few dozen whole GSO frames on the copy path (a few hundred with
        // vnet_hdr, where every super-frame takes it), and for every TX slot in flight (a
        // sent frame is charged to the socket until the receiver frees it).
        let snd = (tg.bytes() * 2).max(4 << 20);
        let rcv = match (cfg.copy_oversize, cfg.vnet_hdr) {
            (false, _) => 0,
            (true, false) => 4 << 20,
            (true, true) => 16 << 20,
        };
        sock.set_buffers(rcv, snd).map_err(sock_err(iface, "SO_RCVBUF/SO_SNDBUF"))?;
        sock.set_rx_ring_v2(&rg).map_err(sock_err(iface, "PACKET_RX_RING"))?;
        sock.set_tx_ring_v2(&tg).map_err(sock_err(iface, "PACKET_TX_RING"))?;
        let map = sock.mmap(rg.bytes() + tg.bytes()).map_err(sock_err(iface, "mmap"))?;
        let mut regions =
            Region::split(&map, &[rg.bytes(), tg.bytes()]).map_err(sock_err(iface, "mmap"))?;
        let (Some(txr), Some(rxr)) = (regions.pop(), regions.pop()) else {
            return Err(bad("frame_size", "ring mapping could not be split".into()));
        };
        sock.bind(idx, true).map_err(sock_err(iface, "bind"))?;
        if let Some(f) = cfg.fanout {
            sock.join_fanout(f.group_id, f.mode.into(), f.defrag, true)
                .map_err(sock_err(iface, "PACKET_FANOUT"))?;
        }

        let plain = PacketSocket::new().map_err(sock_err(iface, "socket"))?;
        if cfg.vnet_hdr {
            plain.set_vnet_hdr().map_err(sock_err(iface, "PACKET_VNET_HDR"))?;
        }
        if cfg.qdisc_bypass {
            plain.set_qdisc_bypass().map_err(sock_err(iface, "PACKET_QDISC_BYPASS"))?;
        }
        let plain_snd = if cfg.vnet_hdr { 16 << 20 } else { 4 << 20 };
        plain.set_buffers(0, plain_snd).map_err(sock_err(iface, "SO_SNDBUF"))?;
        plain.bind(idx, false).map_err(sock_err(iface, "bind"))?;
        let kick = sock.try_clone().map_err(sock_err(iface, "dup"))?;

        Ok(ServicePort {
            iface: iface.into(),
            rxs: RxSide {
                rx: RxV2::new(rxr, rg),
                sock,
                copy: cfg.copy_oversize,
                pre: if cfg.vnet_hdr { VNET_HDR_LEN } else { 0 },
                big: vec![0u8; BIG_FRAME].into_boxed_slice(),
                counters: PortCounters::default(),
                kstats: KernelStats::default(),
            },
            txs: TxSide {
                tx: TxV2::new(txr, tg),
                sock: kick,
                plain,
                max_frame: mtu + 14 + 4,
                vnet: cfg.vnet_hdr,
                send_stalled: false,
                pending: 0,
                scratch: Vec::new(),
                counters: PortCounters::default(),
            },
        })
    }

    /// Interface name.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Hand up to `max` received frames to `f`; a frame answered with
    /// [`Verdict::Forward`] is sent back out of this same port (the production layout:
    /// `vth-neuv` in and out). Flushes the TX ring at the end. Returns how many frames
    /// were taken from the ring (0 at once when none is ready).
    pub fn recv<F>(&mut self, max: usize, f: F) -> usize
    where
        F: FnMut(&mut [u8], &FrameMeta) -> Verdict,
    {
        let ServicePort { rxs, txs, .. } = self;
        recv_batch(rxs, txs, max, f)
    }

    /// Like [`ServicePort::recv`], but forwarded frames leave through `out` (a port pair:
    /// frames from `vin` out of `vex`). Flushes `out` at the end.
    pub fn recv_to<F>(&mut self, out: &mut ServicePort, max: usize, f: F) -> usize
    where
        F: FnMut(&mut [u8], &FrameMeta) -> Verdict,
    {
        recv_batch(&mut self.rxs, &mut out.txs, max, f)
    }

    /// Queue `frame` (a whole Ethernet frame, e.g. from `dpi_core::Ctx::poll_transmit`)
    /// for sending. It leaves at the next [`ServicePort::flush`] (which `recv` does at the
    /// end of each batch); a frame larger than a slot is sent at once.
    pub fn transmit(&mut self, frame: &[u8]) -> TxOutcome {
        if self.txs.vnet {
            // A finished frame: no GSO, checksums complete.
            let h = VnetHdr::default().for_tx(frame.len()).to_bytes();
            self.txs.push(&[&h, frame])
        } else {
            self.txs.push(&[frame])
        }
    }

    /// Have the kernel send every queued TX slot (non-blocking).
    pub fn flush(&mut self) {
        self.txs.flush();
    }

    /// Slots queued but not yet handed to the kernel.
    pub fn tx_pending(&self) -> u32 {
        self.txs.pending
    }

    /// A received frame is ready (no system call).
    pub fn ready(&self) -> bool {
        self.rxs.rx.ready()
    }

    /// Flush queued TX slots, then wait until a frame is ready, at most `timeout` (cut to
    /// [`crate::MAX_POLL`]). Returns whether one is.
    pub fn poll(&mut self, timeout: Duration) -> io::Result<bool> {
        self.txs.flush();
        if self.ready() {
            return Ok(true);
        }
        sys::poll_in(&[self.rxs.sock.as_fd()], crate::timeout_ms(timeout))?;
        Ok(self.ready())
    }

    /// Read the kernel's counters (`PACKET_STATISTICS`, `tpacket_stats`) and return the
    /// totals since the port was opened (the kernel resets its counters on each read).
    pub fn kernel_stats(&mut self) -> io::Result<KernelStats> {
        let (p, d) = self.rxs.sock.stats_v2()?;
        self.rxs.kstats.packets += u64::from(p);
        self.rxs.kstats.drops += u64::from(d);
        Ok(self.rxs.kstats)
    }

    /// This port's own counters: receive side (frames taken from its RX ring, verdicts)
    /// and transmit side (frames sent through it, whichever port received them).
    pub fn counters(&self) -> PortCounters {
        let r = &self.rxs.counters;
        let t = &self.txs.counters;
        PortCounters {
            rx_frames: r.rx_frames,
            rx_bytes: r.rx_bytes,
            tx_frames: t.tx_frames,
            tx_bytes: t.tx_bytes,
            forwarded: r.forwarded,
            dropped: r.dropped,
            tx_ring_full: t.tx_ring_full,
            tx_errors: t.tx_errors,
            copy_frames: r.copy_frames,
            oversize_dropped: r.oversize_dropped,
            csum_not_ready: r.csum_not_ready,
            gso_frames: r.gso_frames,
            outgoing_skipped: r.outgoing_skipped,
        }
    }
}

fn recv_batch<F>(rxs: &mut RxSide, txs: &mut TxSide, max: usize, mut f: F) -> usize
where
    F: FnMut(&mut [u8], &FrameMeta) -> Verdict,
{
    let pre = rxs.pre;
    let mut n = 0;
    while n < max {
        let Some(h) = rxs.rx.peek() else { break };
        n += 1;
        let c = &mut rxs.counters;
        if h.pkttype == sys::PKTTYPE_OUTGOING {
            // Sent on this interface (by another socket): forwarding it would loop.
            // PACKET_IGNORE_OUTGOING (and its fanout flag) keep these out; belt and braces.
            c.outgoing_skipped += 1;
            if h.status.copy() && rxs.copy {
                let _ = rxs.sock.recv(&mut rxs.big);
            }
            rxs.rx.release();
            continue;
        }
        if h.status.copy() && rxs.copy {
            // The whole frame is queued to the socket; the slot holds a truncated copy.
            rxs.rx.release();
            match rxs.sock.recv(&mut rxs.big) {
                Ok(len) if len <= rxs.big.len() && len >= pre => {
                    c.copy_frames += 1;
                    deliver(c, txs, &mut rxs.big[..len], pre, &h, true, &mut f);
                }
                _ => c.oversize_dropped += 1,
            }
            continue;
        }
        match rxs.rx.frame(&h, pre) {
            Some(buf) if (buf.len() - pre) as u64 >= u64::from(h.len) => {
                deliver(c, txs, buf, pre, &h, false, &mut f);
            }
            // Truncated (no copy possible) or inconsistent header: never forwarded.
            _ => c.oversize_dropped += 1,
        }
        rxs.rx.release();
    }
    txs.flush();
    n
}

/// Hand one frame to `f` and forward it on [`Verdict::Forward`]. `buf` is the frame
/// preceded by `pre` bytes of `virtio_net_hdr`.
fn deliver<F>(
    c: &mut PortCounters,
    txs: &mut TxSide,
    buf: &mut [u8],
    pre: usize,
    h: &sys::RxHdr,
    copied: bool,
    f: &mut F,
) where
    F: FnMut(&mut [u8], &FrameMeta) -> Verdict,
{
    let (hdr, frame) = buf.split_at_mut(pre);
    let vnet = <&[u8; VNET_HDR_LEN]>::try_from(&*hdr).ok().map(VnetHdr::parse);
    let meta = FrameMeta::from_hdr(h, vnet, copied, frame.len());
    c.rx_frames += 1;
    c.rx_bytes += frame.len() as u64;
    if meta.checksum == crate::Checksum::NotReady {
        c.csum_not_ready += 1;
    }
    if meta.gso.is_some() {
        c.gso_frames += 1;
    }
    match f(frame, &meta) {
        Verdict::Forward => {
            c.forwarded += 1;
            // The copy path's recv() data carries no VLAN information; ring frames do.
            let vlan = if copied { None } else { meta.vlan };
            txs.forward(buf, pre, vlan);
        }
        Verdict::Drop => c.dropped += 1,
    }
}

impl AsRawFd for ServicePort {
    fn as_raw_fd(&self) -> RawFd {
        self.rxs.sock.as_raw_fd()
    }
}

impl AsFd for ServicePort {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.rxs.sock.as_fd()
    }
}
