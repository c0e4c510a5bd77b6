//! Every `unsafe` block of the crate: the AF_PACKET socket calls, the ring mapping, and the
//! walkers that lend ring slots out as byte slices.
//!
//! Invariants the safe API above relies on:
//! - A [`Region`] is a byte range of one shared ring mapping that no other `Region`
//!   overlaps; the mapping lives as long as any `Region` of it (`Arc<Mapping>`).
//! - Ring slots are owned by the kernel or by us according to their status word, read with
//!   acquire ordering and written with release ordering. A slot's bytes are only lent out
//!   (as `&mut [u8]` tied to a `&mut` borrow of its walker) while the status says the slot is
//!   ours, and every offset the kernel wrote into a header is bounds-checked against the
//!   slot (V2) or block (V3) before it is used.
//! - Kernel constant names (`TP_STATUS_*`, `PACKET_*`) appear only here.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// `ETH_P_ALL`: every protocol.
const ETH_P_ALL: u16 = 0x0003;
/// Offset of the frame data in a V2 TX slot: `TPACKET_ALIGN(sizeof(tpacket2_hdr))`.
pub(crate) const V2_TX_DATA_OFF: usize = 32;
/// Size of `struct virtio_net_hdr` (sockets with `PACKET_VNET_HDR`).
pub(crate) const VNET_HDR_LEN: usize = 10;
/// Offset of the `sockaddr_ll` after a V2 header.
const V2_SLL_OFF: usize = 32;
/// Offset of the `sockaddr_ll` after a V3 header.
const V3_SLL_OFF: usize = 48;
/// Offset of `sll_pkttype` in `sockaddr_ll`.
const SLL_PKTTYPE_OFF: usize = 10;
/// Offset of `block_status` in `tpacket_block_desc` (after version and offset_to_priv,
/// 8-aligned union).
const BLOCK_STATUS_OFF: usize = 8;

/// Status bits a frame header carries (decoded from `tp_status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Status(u32);

impl Status {
    pub(crate) fn copy(self) -> bool {
        self.0 & libc::TP_STATUS_COPY != 0
    }
    pub(crate) fn csum_not_ready(self) -> bool {
        self.0 & libc::TP_STATUS_CSUMNOTREADY != 0
    }
    pub(crate) fn csum_valid(self) -> bool {
        self.0 & libc::TP_STATUS_CSUM_VALID != 0
    }
    pub(crate) fn vlan_valid(self) -> bool {
        self.0 & libc::TP_STATUS_VLAN_VALID != 0
    }
    pub(crate) fn vlan_tpid_valid(self) -> bool {
        self.0 & libc::TP_STATUS_VLAN_TPID_VALID != 0
    }
}

/// `sll_pkttype` value meaning the frame was sent by this host.
pub(crate) const PKTTYPE_OUTGOING: u8 = libc::PACKET_OUTGOING;
pub(crate) const PKTTYPE_HOST: u8 = libc::PACKET_HOST;
pub(crate) const PKTTYPE_BROADCAST: u8 = libc::PACKET_BROADCAST;
pub(crate) const PKTTYPE_MULTICAST: u8 = libc::PACKET_MULTICAST;
pub(crate) const PKTTYPE_OTHERHOST: u8 = libc::PACKET_OTHERHOST;

/// A received frame's header fields (copied out of the ring).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RxHdr {
    pub(crate) status: Status,
    pub(crate) len: u32,
    pub(crate) snaplen: u32,
    pub(crate) mac: u32,
    pub(crate) sec: u32,
    pub(crate) nsec: u32,
    pub(crate) vlan_tci: u16,
    pub(crate) vlan_tpid: u16,
    pub(crate) pkttype: u8,
}

/// Fanout modes, mapped to the kernel's numbers here.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FanoutKind {
    Hash,
    Cpu,
    QueueMap,
    LoadBalance,
}

/// Which TPACKET version a socket uses.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Version {
    V2,
    V3,
}

/// An `AF_PACKET`/`SOCK_RAW` socket.
#[derive(Debug)]
pub(crate) struct PacketSocket {
    fd: OwnedFd,
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl PacketSocket {
    /// A packet socket with protocol 0: it receives nothing until bound with a protocol,
    /// so the ring can be set up before traffic arrives.
    pub(crate) fn new() -> io::Result<PacketSocket> {
        // SAFETY: socket(2) takes no pointers; the result is checked before use.
        let fd =
            cvt(unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
        // SAFETY: `fd` is a fresh descriptor returned by socket(2), owned by nobody else.
        Ok(PacketSocket { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    fn setsockopt<T>(&self, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
        // SAFETY: `val` points to a live, initialised `T` of exactly the length passed; the
        // kernel only reads it.
        cvt(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                (val as *const T).cast(),
                size_of::<T>() as libc::socklen_t,
            )
        })
        .map(|_| ())
    }

    fn getsockopt<T: Copy>(&self, level: libc::c_int, name: libc::c_int) -> io::Result<T> {
        let mut val = MaybeUninit::<T>::zeroed();
        let mut len = size_of::<T>() as libc::socklen_t;
        // SAFETY: `val` is a writable buffer of `len` bytes and `len` is a valid in/out
        // length; the kernel writes at most `len` bytes.
        cvt(unsafe {
            libc::getsockopt(self.fd.as_raw_fd(), level, name, val.as_mut_ptr().cast(), &mut len)
        })?;
        // SAFETY: zero-initialised and `T` is a plain C struct of integers (every bit
        // pattern valid); the kernel filled in what it returned.
        Ok(unsafe { val.assume_init() })
    }

    fn set_packet_int(&self, name: libc::c_int, v: libc::c_int) -> io::Result<()> {
        self.setsockopt(libc::SOL_PACKET, name, &v)
    }

    pub(crate) fn set_version(&self, v: Version) -> io::Result<()> {
        let n = match v {
            Version::V2 => libc::tpacket_versions::TPACKET_V2 as libc::c_int,
            Version::V3 => libc::tpacket_versions::TPACKET_V3 as libc::c_int,
        };
        self.set_packet_int(libc::PACKET_VERSION, n)
    }

    pub(crate) fn set_ignore_outgoing(&self) -> io::Result<()> {
        self.set_packet_int(libc::PACKET_IGNORE_OUTGOING, 1)
    }

    pub(crate) fn set_qdisc_bypass(&self) -> io::Result<()> {
        self.set_packet_int(libc::PACKET_QDISC_BYPASS, 1)
    }

    /// Malformed TX slots are skipped (marked available) instead of stopping the ring.
    /// `PACKET_VNET_HDR`: every frame in and out carries a 10-byte `virtio_net_hdr`
    /// (GSO and checksum-offload state). Must be set before any ring exists (EBUSY after).
    pub(crate) fn set_vnet_hdr(&self) -> io::Result<()> {
        self.set_packet_int(libc::PACKET_VNET_HDR, 1)
    }

    pub(crate) fn set_loss(&self) -> io::Result<()> {
        self.set_packet_int(libc::PACKET_LOSS, 1)
    }

    /// Frames larger than a V1/V2 RX slot are also queued whole to the socket, readable
    /// with `recv`, and their slot is flagged COPY.
    pub(crate) fn set_copy_thresh(&self) -> io::Result<()> {
        self.set_packet_int(libc::PACKET_COPY_THRESH, 1)
    }

    /// Socket buffer sizes; the forced variants (root) first, the plain ones as fallback.
    pub(crate) fn set_buffers(&self, rcv: usize, snd: usize) -> io::Result<()> {
        let clamp = |v: usize| libc::c_int::try_from(v).unwrap_or(libc::c_int::MAX);
        if rcv > 0 {
            let v = clamp(rcv);
            self.setsockopt(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &v)
                .or_else(|_| self.setsockopt(libc::SOL_SOCKET, libc::SO_RCVBUF, &v))?;
        }
        if snd > 0 {
            let v = clamp(snd);
            self.setsockopt(libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &v)
                .or_else(|_| self.setsockopt(libc::SOL_SOCKET, libc::SO_SNDBUF, &v))?;
        }
        Ok(())
    }

    pub(crate) fn set_rx_ring_v2(&self, g: &Geometry) -> io::Result<()> {
        self.setsockopt(libc::SOL_PACKET, libc::PACKET_RX_RING, &g.req())
    }

    pub(crate) fn set_tx_ring_v2(&self, g: &Geometry) -> io::Result<()> {
        self.setsockopt(libc::SOL_PACKET, libc::PACKET_TX_RING, &g.req())
    }

    pub(crate) fn set_rx_ring_v3(&self, g: &Geometry, retire_ms: u32) -> io::Result<()> {
        let req = libc::tpacket_req3 {
            tp_block_size: g.block_size,
            tp_block_nr: g.block_nr,
            tp_frame_size: g.frame_size,
            tp_frame_nr: g.frame_nr(),
            tp_retire_blk_tov: retire_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        self.setsockopt(libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
    }

    /// Bind to `ifindex`; with `receive`, for every protocol (the socket starts receiving),
    /// otherwise with protocol 0 (a send-only socket).
    pub(crate) fn bind(&self, ifindex: u32, receive: bool) -> io::Result<()> {
        // SAFETY: sockaddr_ll is a plain C struct; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = if receive { ETH_P_ALL.to_be() } else { 0 };
        sll.sll_ifindex = libc::c_int::try_from(ifindex).map_err(io::Error::other)?;
        // SAFETY: `sll` is a live sockaddr_ll and the length passed is its size.
        cvt(unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })
        .map(|_| ())
    }

    /// Join fanout group `group`. `ignore_outgoing`: the group skips frames sent on the
    /// interface (`PACKET_FANOUT_FLAG_IGNORE_OUTGOING`); a member's own
    /// `PACKET_IGNORE_OUTGOING` does not apply once the group's hook replaces its own.
    pub(crate) fn join_fanout(
        &self,
        group: u16,
        kind: FanoutKind,
        defrag: bool,
        ignore_outgoing: bool,
    ) -> io::Result<()> {
        let mut mode = match kind {
            FanoutKind::Hash => libc::PACKET_FANOUT_HASH,
            FanoutKind::Cpu => libc::PACKET_FANOUT_CPU,
            FanoutKind::QueueMap => libc::PACKET_FANOUT_QM,
            FanoutKind::LoadBalance => libc::PACKET_FANOUT_LB,
        };
        if defrag {
            mode |= libc::PACKET_FANOUT_FLAG_DEFRAG;
        }
        if ignore_outgoing {
            mode |= libc::PACKET_FANOUT_FLAG_IGNORE_OUTGOING;
        }
        let arg = (u32::from(group)) | (mode << 16);
        self.set_packet_int(libc::PACKET_FANOUT, arg as libc::c_int)
    }

    /// `PACKET_STATISTICS` of a V1/V2 socket: (packets, drops) since the last read (the
    /// kernel resets them on every read; `packets` includes `drops`).
    pub(crate) fn stats_v2(&self) -> io::Result<(u32, u32)> {
        let s: libc::tpacket_stats = self.getsockopt(libc::SOL_PACKET, libc::PACKET_STATISTICS)?;
        Ok((s.tp_packets, s.tp_drops))
    }

    /// `PACKET_STATISTICS` of a V3 socket: (packets, drops, queue freezes) since the last
    /// read.
    pub(crate) fn stats_v3(&self) -> io::Result<(u32, u32, u32)> {
        let s: libc::tpacket_stats_v3 =
            self.getsockopt(libc::SOL_PACKET, libc::PACKET_STATISTICS)?;
        Ok((s.tp_packets, s.tp_drops, s.tp_freeze_q_cnt))
    }

    /// Read one queued frame without blocking; returns its full length (which may exceed
    /// `buf`, then the copy is truncated). `WouldBlock` when nothing is queued.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is a writable buffer of `buf.len()` bytes; MSG_TRUNC makes the
        // kernel report the real length but it still writes at most `buf.len()` bytes.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Send one frame with a plain `send` (the socket must have no TX ring).
    pub(crate) fn send(&self, frame: &[u8]) -> io::Result<usize> {
        // SAFETY: `frame` is a readable buffer of `frame.len()` bytes.
        let n = unsafe {
            libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), libc::MSG_DONTWAIT)
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// A second descriptor for the same socket.
    pub(crate) fn try_clone(&self) -> io::Result<PacketSocket> {
        Ok(PacketSocket { fd: self.fd.try_clone()? })
    }

    /// Ask the kernel to transmit every TX slot marked SEND_REQUEST, without waiting for
    /// completion (`send(fd, NULL, 0, MSG_DONTWAIT)`).
    pub(crate) fn kick(&self) -> io::Result<()> {
        // SAFETY: a NULL buffer of length 0 is valid for send(2) on a TX-ring socket: the
        // kernel reads the frames from the ring, never from the buffer.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), std::ptr::null(), 0, libc::MSG_DONTWAIT) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Map `len` bytes of the socket's rings (RX ring first, then TX ring).
    pub(crate) fn mmap(&self, len: usize) -> io::Result<Arc<Mapping>> {
        // SAFETY: a fresh shared mapping of the socket's ring, at an address the kernel
        // picks; the result is checked against MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                self.fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave NULL"))?;
        Ok(Arc::new(Mapping { ptr, len }))
    }
}

/// Most descriptors one [`poll_in`] watches (the rest of `fds` is ignored).
pub(crate) const MAX_POLL_FDS: usize = 128;

/// Wait until one of `fds` is readable or `timeout_ms` passes; returns how many are.
pub(crate) fn poll_in(fds: &[BorrowedFd<'_>], timeout_ms: i32) -> io::Result<usize> {
    let mut pfds = [libc::pollfd { fd: -1, events: 0, revents: 0 }; MAX_POLL_FDS];
    let n = fds.len().min(pfds.len());
    for (p, fd) in pfds.iter_mut().zip(fds) {
        p.fd = fd.as_raw_fd();
        p.events = libc::POLLIN;
    }
    // SAFETY: `pfds[..n]` is a valid, writable array of `n` pollfd entries.
    let r = unsafe { libc::poll(pfds.as_mut_ptr(), n as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(r as usize)
}

/// Wait until `fd` is writable (socket send buffer has room) or `timeout_ms` passes.
pub(crate) fn poll_out(fd: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
    // SAFETY: `p` is one valid, writable pollfd entry.
    let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(r > 0)
}

/// Page size of this machine.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf takes no pointers.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad interface name"));
    }
    // SAFETY: ifreq is a plain C struct (name array plus a union of integers and
    // pointers); all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    Ok(ifr)
}

fn ioctl_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; the result is checked.
    let fd = cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Index of interface `name` in the calling thread's network namespace.
pub(crate) fn ifindex(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a NUL-terminated string alive for the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(i)
}

/// MTU of interface `name`.
pub(crate) fn mtu(name: &str) -> io::Result<u32> {
    let s = ioctl_socket()?;
    let mut ifr = ifreq(name)?;
    // SAFETY: SIOCGIFMTU reads the name and writes `ifru_mtu` of the live `ifr`.
    cvt(unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCGIFMTU, &mut ifr) })?;
    // SAFETY: the kernel filled the `ifru_mtu` member for SIOCGIFMTU.
    let m = unsafe { ifr.ifr_ifru.ifru_mtu };
    Ok(u32::try_from(m).unwrap_or(0))
}

/// `struct ethtool_value`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// The legacy ethtool get/set commands this crate uses.
#[derive(Clone, Copy, Debug)]
pub(crate) enum EthtoolCmd {
    TxCsum,
}

impl EthtoolCmd {
    fn get(self) -> u32 {
        match self {
            EthtoolCmd::TxCsum => 0x16, // ETHTOOL_GTXCSUM
        }
    }
    fn set(self) -> u32 {
        self.get() + 1 // ETHTOOL_STXCSUM
    }
}

fn ethtool(name: &str, cmd: u32, data: u32) -> io::Result<u32> {
    let s = ioctl_socket()?;
    let mut ifr = ifreq(name)?;
    let mut v = EthtoolValue { cmd, data };
    ifr.ifr_ifru.ifru_data = (&mut v as *mut EthtoolValue).cast();
    // SAFETY: SIOCETHTOOL reads the name and follows `ifru_data` to `v`, a live
    // ethtool_value the kernel reads and (for get commands) writes.
    cvt(unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCETHTOOL, &mut ifr) })?;
    Ok(v.data)
}

pub(crate) fn ethtool_get(name: &str, cmd: EthtoolCmd) -> io::Result<bool> {
    ethtool(name, cmd.get(), 0).map(|v| v != 0)
}

pub(crate) fn ethtool_set(name: &str, cmd: EthtoolCmd, on: bool) -> io::Result<()> {
    ethtool(name, cmd.set(), u32::from(on)).map(|_| ())
}

/// Ring geometry as the kernel sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) block_size: u32,
    pub(crate) block_nr: u32,
    pub(crate) frame_size: u32,
}

impl Geometry {
    pub(crate) fn frames_per_block(&self) -> u32 {
        self.block_size / self.frame_size
    }
    pub(crate) fn frame_nr(&self) -> u32 {
        self.frames_per_block() * self.block_nr
    }
    pub(crate) fn bytes(&self) -> usize {
        self.block_size as usize * self.block_nr as usize
    }
    fn req(&self) -> libc::tpacket_req {
        libc::tpacket_req {
            tp_block_size: self.block_size,
            tp_block_nr: self.block_nr,
            tp_frame_size: self.frame_size,
            tp_frame_nr: self.frame_nr(),
        }
    }
    /// Byte offset of frame `i` (frames never straddle blocks).
    fn frame_off(&self, i: u32) -> usize {
        let fpb = self.frames_per_block();
        (i / fpb) as usize * self.block_size as usize
            + (i % fpb) as usize * self.frame_size as usize
    }
}

/// A shared mapping of a socket's rings.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; which thread touches which byte is governed by
// `Region` (disjoint ranges, each owned by one value) and the ring status protocol.
unsafe impl Send for Mapping {}
// SAFETY: as above; `Mapping` itself exposes no access, only `Region`s do.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; no `Region` (each holds an
        // `Arc<Mapping>`) is alive any more, so nothing refers to the memory.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// A byte range of a [`Mapping`] that no other `Region` overlaps.
#[derive(Debug)]
pub(crate) struct Region {
    map: Arc<Mapping>,
    off: usize,
    len: usize,
}

impl Region {
    /// Split `map` into consecutive disjoint regions of the given lengths.
    pub(crate) fn split(map: &Arc<Mapping>, lens: &[usize]) -> io::Result<Vec<Region>> {
        let total: usize = lens.iter().sum();
        if total > map.len {
            return Err(io::Error::other("ring regions exceed the mapping"));
        }
        let mut off = 0;
        let mut out = Vec::with_capacity(lens.len());
        for &len in lens {
            out.push(Region { map: Arc::clone(map), off, len });
            off += len;
        }
        Ok(out)
    }

    /// `at..at + n` is inside the region.
    fn within(&self, at: usize, n: usize) -> bool {
        at.checked_add(n).is_some_and(|e| e <= self.len)
    }

    fn ptr(&self, at: usize) -> *mut u8 {
        debug_assert!(at <= self.len);
        // SAFETY: callers check `at` against `self.len` (see `within`), and the region lies
        // inside the mapping (`split`), so the pointer stays inside one allocation.
        unsafe { self.map.ptr.as_ptr().add(self.off + at) }
    }

    /// The status word at `at` (4-aligned), shared with the kernel.
    fn status_word(&self, at: usize) -> Option<&AtomicU32> {
        if !self.within(at, 4) || !(self.ptr(at) as usize).is_multiple_of(4) {
            return None;
        }
        // SAFETY: in bounds and aligned (checked above); the word is only ever accessed
        // atomically by us and by the kernel's READ_ONCE/WRITE_ONCE + barriers.
        Some(unsafe { AtomicU32::from_ptr(self.ptr(at).cast()) })
    }

    fn load_status(&self, at: usize) -> u32 {
        self.status_word(at).map_or(0, |w| w.load(Ordering::Acquire))
    }

    fn store_status(&self, at: usize, v: u32) {
        if let Some(w) = self.status_word(at) {
            w.store(v, Ordering::Release);
        }
    }

    fn read_u32(&self, at: usize) -> u32 {
        if !self.within(at, 4) {
            return 0;
        }
        // SAFETY: in bounds (checked); the slot is ours (callers only read headers of slots
        // whose status they loaded with acquire ordering and found user-owned).
        unsafe { self.ptr(at).cast::<u32>().read_unaligned() }
    }

    fn read_u16(&self, at: usize) -> u16 {
        if !self.within(at, 2) {
            return 0;
        }
        // SAFETY: as `read_u32`.
        unsafe { self.ptr(at).cast::<u16>().read_unaligned() }
    }

    fn read_u8(&self, at: usize) -> u8 {
        if !self.within(at, 1) {
            return 0;
        }
        // SAFETY: as `read_u32`.
        unsafe { self.ptr(at).read() }
    }

    fn write_u32(&mut self, at: usize, v: u32) {
        if self.within(at, 4) {
            // SAFETY: in bounds; the slot is ours (status checked by the caller).
            unsafe { self.ptr(at).cast::<u32>().write_unaligned(v) }
        }
    }

    /// `at..at + n` as a mutable slice, if inside the region. Callers only ask for bytes of
    /// a slot they own; the borrow of `self` keeps the slice from outliving the slot.
    fn bytes_mut(&mut self, at: usize, n: usize) -> Option<&mut [u8]> {
        if !self.within(at, n) {
            return None;
        }
        // SAFETY: in bounds; `&mut self` makes this the only live reference into the
        // region, and the slot is user-owned (the kernel does not touch it until its status
        // is handed back, which needs `&mut self` again, after this borrow ends).
        Some(unsafe { std::slice::from_raw_parts_mut(self.ptr(at), n) })
    }
}

/// A TPACKET_V2 RX ring walker. The head slot is ours while its status has
/// `TP_STATUS_USER`; [`RxV2::release`] hands it back.
#[derive(Debug)]
pub(crate) struct RxV2 {
    region: Region,
    g: Geometry,
    head: u32,
}

impl RxV2 {
    pub(crate) fn new(region: Region, g: Geometry) -> RxV2 {
        RxV2 { region, g, head: 0 }
    }

    /// Header of the head frame, if the kernel has handed it to us.
    pub(crate) fn peek(&self) -> Option<RxHdr> {
        let at = self.g.frame_off(self.head);
        let st = self.region.load_status(at);
        if st & libc::TP_STATUS_USER == 0 {
            return None;
        }
        let r = &self.region;
        Some(RxHdr {
            status: Status(st),
            len: r.read_u32(at + 4),
            snaplen: r.read_u32(at + 8),
            mac: u32::from(r.read_u16(at + 12)),
            sec: r.read_u32(at + 16),
            nsec: r.read_u32(at + 20),
            vlan_tci: r.read_u16(at + 24),
            vlan_tpid: r.read_u16(at + 26),
            pkttype: r.read_u8(at + V2_SLL_OFF + SLL_PKTTYPE_OFF),
        })
    }

    /// The head frame's bytes (`snaplen` bytes at `mac`) preceded by the `pre` bytes the
    /// kernel wrote before it (the `virtio_net_hdr` of a `PACKET_VNET_HDR` socket, or 0),
    /// if the slot is ours and they lie inside it, after its own header.
    pub(crate) fn frame(&mut self, h: &RxHdr, pre: usize) -> Option<&mut [u8]> {
        let at = self.g.frame_off(self.head);
        if self.region.load_status(at) & libc::TP_STATUS_USER == 0 {
            return None;
        }
        let (mac, n) = (h.mac as usize, h.snaplen as usize);
        let start = mac.checked_sub(pre)?;
        if start < V2_SLL_OFF || mac.checked_add(n)? > self.g.frame_size as usize {
            return None;
        }
        self.region.bytes_mut(at + start, pre + n)
    }

    /// Whether the head frame is ours (no system call).
    pub(crate) fn ready(&self) -> bool {
        self.region.load_status(self.g.frame_off(self.head)) & libc::TP_STATUS_USER != 0
    }

    /// Give the head slot back to the kernel and move on.
    pub(crate) fn release(&mut self) {
        let at = self.g.frame_off(self.head);
        self.region.store_status(at, libc::TP_STATUS_KERNEL);
        self.head = (self.head + 1) % self.g.frame_nr().max(1);
    }
}

/// A TPACKET_V2 TX ring writer.
#[derive(Debug)]
pub(crate) struct TxV2 {
    region: Region,
    g: Geometry,
    head: u32,
}

impl TxV2 {
    pub(crate) fn new(region: Region, g: Geometry) -> TxV2 {
        TxV2 { region, g, head: 0 }
    }

    /// Largest frame a slot holds.
    pub(crate) fn slot_capacity(&self) -> usize {
        (self.g.frame_size as usize).saturating_sub(V2_TX_DATA_OFF)
    }

    /// The most recently filled slot is still waiting to be sent (a kick could not take
    /// it, e.g. the socket's send buffer was full).
    pub(crate) fn last_unsent(&self) -> bool {
        let n = self.g.frame_nr().max(1);
        let at = self.g.frame_off((self.head + n - 1) % n);
        self.region.load_status(at) & libc::TP_STATUS_SEND_REQUEST != 0
    }

    /// Copy the concatenation of `parts` into the head slot and mark it SEND_REQUEST.
    /// False when the slot is still in the kernel's hands (ring full) or the frame does
    /// not fit a slot.
    pub(crate) fn push(&mut self, parts: &[&[u8]]) -> bool {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > self.slot_capacity() {
            return false;
        }
        let at = self.g.frame_off(self.head);
        let st = self.region.load_status(at);
        // AVAILABLE (0) or WRONG_FORMAT (left by a rejected frame; with PACKET_LOSS the
        // kernel normally resets it itself): ours to fill.
        if st & (libc::TP_STATUS_SEND_REQUEST | libc::TP_STATUS_SENDING) != 0 {
            return false;
        }
        let Some(dst) = self.region.bytes_mut(at + V2_TX_DATA_OFF, total) else {
            return false;
        };
        let mut o = 0;
        for p in parts {
            dst[o..o + p.len()].copy_from_slice(p);
            o += p.len();
        }
        self.region.write_u32(at + 4, total as u32); // tp_len
        self.region.write_u32(at + 8, total as u32); // tp_snaplen
        self.region.store_status(at, libc::TP_STATUS_SEND_REQUEST);
        self.head = (self.head + 1) % self.g.frame_nr().max(1);
        true
    }
}

/// A TPACKET_V3 RX ring walker: whole blocks are retired to us; we walk their packets and
/// hand the block back when all of them are done.
#[derive(Debug)]
pub(crate) struct RxV3 {
    region: Region,
    g: Geometry,
    block: u32,
    /// Packets left in the current block (0: not inside a block).
    left: u32,
    /// Offset of the current packet inside the current block.
    pkt: usize,
}

impl RxV3 {
    pub(crate) fn new(region: Region, g: Geometry) -> RxV3 {
        RxV3 { region, g, block: 0, left: 0, pkt: 0 }
    }

    fn block_off(&self) -> usize {
        self.block as usize * self.g.block_size as usize
    }

    /// Enter the current block if the kernel has retired it to us.
    fn open_block(&mut self) -> bool {
        let b = self.block_off();
        if self.region.load_status(b + BLOCK_STATUS_OFF) & libc::TP_STATUS_USER == 0 {
            return false;
        }
        let num = self.region.read_u32(b + BLOCK_STATUS_OFF + 4);
        let first = self.region.read_u32(b + BLOCK_STATUS_OFF + 8) as usize;
        if num == 0 || first >= self.g.block_size as usize {
            self.release_block();
            return false;
        }
        self.left = num;
        self.pkt = first;
        true
    }

    fn release_block(&mut self) {
        let b = self.block_off();
        self.region.store_status(b + BLOCK_STATUS_OFF, libc::TP_STATUS_KERNEL);
        self.block = (self.block + 1) % self.g.block_nr.max(1);
        self.left = 0;
    }

    /// Header of the current packet, entering the next retired block if needed.
    pub(crate) fn peek(&mut self) -> Option<RxHdr> {
        if self.left == 0 && !self.open_block() {
            return None;
        }
        let at = self.block_off() + self.pkt;
        let r = &self.region;
        Some(RxHdr {
            status: Status(r.read_u32(at + 20)),
            len: r.read_u32(at + 16),
            snaplen: r.read_u32(at + 12),
            mac: u32::from(r.read_u16(at + 24)),
            sec: r.read_u32(at + 4),
            nsec: r.read_u32(at + 8),
            vlan_tci: r.read_u32(at + 32) as u16,
            vlan_tpid: r.read_u16(at + 36),
            pkttype: r.read_u8(at + V3_SLL_OFF + SLL_PKTTYPE_OFF),
        })
    }

    /// The current packet's bytes, if they lie inside the block.
    pub(crate) fn frame(&mut self, h: &RxHdr) -> Option<&mut [u8]> {
        if self.left == 0 {
            return None;
        }
        let start = self.pkt.checked_add(h.mac as usize)?;
        if start.checked_add(h.snaplen as usize)? > self.g.block_size as usize {
            return None;
        }
        let at = self.block_off() + start;
        self.region.bytes_mut(at, h.snaplen as usize)
    }

    /// Move past the current packet; the block goes back to the kernel after its last one.
    pub(crate) fn advance(&mut self) {
        if self.left == 0 {
            return;
        }
        let at = self.block_off() + self.pkt;
        let next = self.region.read_u32(at) as usize;
        self.left -= 1;
        if self.left == 0 || next == 0 || self.pkt + next >= self.g.block_size as usize {
            self.release_block();
        } else {
            self.pkt += next;
        }
    }

    /// Whether a packet is ready without a system call.
    pub(crate) fn ready(&self) -> bool {
        self.left > 0
            || self.region.load_status(self.block_off() + BLOCK_STATUS_OFF) & libc::TP_STATUS_USER
                != 0
    }
}
