//! Tap port: a TPACKET_V3 receive ring on a workload's interface. It sees copies of the
//! frames in both directions (incoming and [`FrameMeta::is_outgoing`]) and never sends;
//! the kernel forwards traffic as usual. Blocks are handed over when full or after the
//! retire timeout, so a frame is seen at most `retire_timeout_ms` after it passed.

use crate::meta::FrameMeta;
use crate::sys::{self, Geometry, PacketSocket, Region, RxV3, Version};
use crate::{ifindex, sock_err, Fanout, KernelStats, PortCounters, PortError};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

/// Geometry and options of a [`TapPort`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TapConfig {
    /// Bytes per block (a multiple of the page size). Default 256 KiB: a 64 KiB GSO frame
    /// fits whole. Frames larger than a block are seen truncated.
    pub block_size: u32,
    /// Number of blocks. Default 16 (4 MiB in all).
    pub block_count: u32,
    /// Nominal frame size (a multiple of 16; V3 frames are variable-length, this only sets
    /// the kernel's frame count). Default 2048.
    pub frame_size: u32,
    /// Milliseconds after which a partly filled block is handed over. Default 2.
    pub retire_timeout_ms: u32,
    /// Join a fanout group (default none).
    pub fanout: Option<Fanout>,
}

impl Default for TapConfig {
    fn default() -> Self {
        TapConfig {
            block_size: 256 * 1024,
            block_count: 16,
            frame_size: 2048,
            retire_timeout_ms: 2,
            fanout: None,
        }
    }
}

/// A TPACKET_V3 receive ring bound to one interface. See the crate docs.
#[derive(Debug)]
pub struct TapPort {
    iface: String,
    // Field order: the ring (with its mapping) is dropped before the socket.
    rx: RxV3,
    sock: PacketSocket,
    counters: PortCounters,
    kstats: KernelStats,
}

impl TapPort {
    /// Open a tap on `iface`, in the network namespace of the calling thread (the socket
    /// stays in that namespace for life).
    pub fn open(iface: &str, cfg: &TapConfig) -> Result<TapPort, PortError> {
        let page = sys::page_size() as u32;
        let bad = |field, reason: String| PortError::Config { iface: iface.into(), field, reason };
        if cfg.block_size == 0 || !cfg.block_size.is_multiple_of(page) {
            return Err(bad(
                "block_size",
                format!("{} is not a multiple of {page}", cfg.block_size),
            ));
        }
        if cfg.frame_size < 64
            || !cfg.frame_size.is_multiple_of(16)
            || cfg.frame_size > cfg.block_size
        {
            return Err(bad(
                "frame_size",
                format!(
                    "{} must be a multiple of 16, at least 64, at most block_size",
                    cfg.frame_size
                ),
            ));
        }
        if cfg.block_count == 0 {
            return Err(bad("block_count", "must be at least 1".into()));
        }
        let g = Geometry {
            block_size: cfg.block_size,
            block_nr: cfg.block_count,
            frame_size: cfg.frame_size,
        };
        let idx = ifindex(iface)?;
        let sock = PacketSocket::new().map_err(sock_err(iface, "socket"))?;
        sock.set_version(Version::V3).map_err(sock_err(iface, "PACKET_VERSION"))?;
        sock.set_rx_ring_v3(&g, cfg.retire_timeout_ms.max(1))
            .map_err(sock_err(iface, "PACKET_RX_RING"))?;
        let map = sock.mmap(g.bytes()).map_err(sock_err(iface, "mmap"))?;
        let region = Region::split(&map, &[g.bytes()])
            .map_err(sock_err(iface, "mmap"))?
            .pop()
            .ok_or_else(|| bad("block_count", "empty ring".into()))?;
        sock.bind(idx, true).map_err(sock_err(iface, "bind"))?;
        if let Some(f) = cfg.fanout {
            sock.join_fanout(f.group_id, f.mode.into(), f.defrag, false)
                .map_err(sock_err(iface, "PACKET_FANOUT"))?;
        }
        Ok(TapPort {
            iface: iface.into(),
            rx: RxV3::new(region, g),
            sock,
            counters: PortCounters::default(),
            kstats: KernelStats::default(),
        })
    }

    /// Interface name.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Hand up to `max` received frames to `f`, in arrival order; returns how many. The
    /// frame may be modified in place (it is a copy; nothing is forwarded). Returns 0 at
    /// once when nothing is ready.
    pub fn recv<F>(&mut self, max: usize, mut f: F) -> usize
    where
        F: FnMut(&mut [u8], &FrameMeta),
    {
        let mut n = 0;
        while n < max {
            let Some(h) = self.rx.peek() else { break };
            if let Some(frame) = self.rx.frame(&h) {
                let meta = FrameMeta::from_hdr(&h, None, false, frame.len());
                let c = &mut self.counters;
                c.rx_frames += 1;
                c.rx_bytes += frame.len() as u64;
                if meta.truncated {
                    c.oversize_dropped += 1;
                }
                if meta.checksum == crate::Checksum::NotReady {
                    c.csum_not_ready += 1;
                }
                f(frame, &meta);
            } else {
                // Header offsets outside the block: nothing sane to hand over.
                self.counters.oversize_dropped += 1;
            }
            self.rx.advance();
            n += 1;
        }
        n
    }

    /// A frame is ready (no system call).
    pub fn ready(&self) -> bool {
        self.rx.ready()
    }

    /// Wait until a frame is ready, at most `timeout` (cut to [`crate::MAX_POLL`]).
    /// Returns whether one is.
    pub fn poll(&self, timeout: Duration) -> io::Result<bool> {
        if self.ready() {
            return Ok(true);
        }
        sys::poll_in(&[self.sock.as_fd()], crate::timeout_ms(timeout))?;
        Ok(self.ready())
    }

    /// Read the kernel's counters (`PACKET_STATISTICS`, `tpacket_stats_v3`) and return the
    /// totals since the port was opened (the kernel resets its counters on each read; this
    /// port accumulates them).
    pub fn kernel_stats(&mut self) -> io::Result<KernelStats> {
        let (p, d, fz) = self.sock.stats_v3()?;
        self.kstats.packets += u64::from(p);
        self.kstats.drops += u64::from(d);
        self.kstats.freeze_count += u64::from(fz);
        Ok(self.kstats)
    }

    /// This port's own counters.
    pub fn counters(&self) -> PortCounters {
        self.counters
    }
}

impl AsRawFd for TapPort {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for TapPort {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl From<crate::FanoutMode> for sys::FanoutKind {
    fn from(m: crate::FanoutMode) -> Self {
        match m {
            crate::FanoutMode::Hash => sys::FanoutKind::Hash,
            crate::FanoutMode::Cpu => sys::FanoutKind::Cpu,
            crate::FanoutMode::QueueMap => sys::FanoutKind::QueueMap,
            crate::FanoutMode::LoadBalance => sys::FanoutKind::LoadBalance,
        }
    }
}
