//! [`Queue`]: one bound NFQUEUE queue. Batched receive (`recvmmsg` into fixed slots),
//! one callback per packet, verdicts coalesced and sent with one `send` per batch.
//!
//! Verdict coalescing rule (kernel semantics of `NFQNL_MSG_VERDICT_BATCH`: the verdict
//! applies to *every* packet still pending with an id up to the given one): packets are
//! answered in id order; a run of two or more consecutive, unmodified packets with the
//! same verdict becomes one batch message carrying the run's last id; anything else (a
//! single packet, a packet whose bytes were rewritten) gets its own `NFQNL_MSG_VERDICT`.
//! Every packet received in a call is answered before the call returns, so when a batch
//! message is sent, the packets pending up to its id are exactly the run.

use crate::kstats::{self, QueueKernelStats};
use crate::packet::{Packet, Verdict};
use crate::sys;
use crate::wire::{self, Malformed, PacketMeta, Writer};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// How to bind and configure a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// Queue number (`iptables ... -j NFQUEUE --queue-num N`). Default 0.
    pub num: u16,
    /// Most packets the kernel holds waiting for verdicts (`NFQA_CFG_QUEUE_MAXLEN`),
    /// in packets. Default 1024 (the kernel's default).
    pub queue_maxlen: u32,
    /// Bytes of each packet copied to user space, in bytes. Default and maximum 65531
    /// (`0xffff` minus an attribute header; the kernel clamps larger values). Longer
    /// packets arrive cut, with [`Packet::orig_len`] giving the full length.
    pub copy_range: u32,
    /// `NFQA_CFG_F_FAIL_OPEN`: when the queue is full (or the socket buffer overflows) the
    /// kernel *accepts* the packet instead of dropping it. Default true.
    pub fail_open: bool,
    /// `NFQA_CFG_F_GSO`: large TCP/UDP packets arrive unsegmented (one verdict per
    /// super-packet of up to 64 KB, flagged [`Packet::is_gso`]) and local packets may
    /// carry an unfinished checksum ([`Packet::csum_not_ready`]). Without it the kernel
    /// segments them (and computes checksums) before queueing. Default true.
    pub gso: bool,
    /// Socket receive buffer, in bytes (`SO_RCVBUFFORCE`); 0 keeps the system default.
    /// The kernel doubles the value for its bookkeeping. Default 8 MiB.
    pub rcvbuf: usize,
    /// Receive slots: the most packets one [`Queue::recv_batch`] call takes (1..=64).
    /// Each slot holds one whole message (copy range + 1 KiB). Default 32.
    pub batch: usize,
    /// How long [`Queue::recv_batch`] waits for the first packet; zero never waits.
    /// Default 100 ms, short enough for a worker loop to notice a stop flag.
    pub poll_timeout: Duration,
    /// Report receive-buffer overruns as `ENOBUFS` (counted in
    /// [`QueueStats::enobufs`]); false sets `NETLINK_NO_ENOBUFS`. Default true.
    pub report_enobufs: bool,
}

impl QueueConfig {
    /// The defaults for queue `num`.
    pub fn new(num: u16) -> Self {
        QueueConfig {
            num,
            queue_maxlen: 1024,
            copy_range: sys::NFQNL_MAX_COPY_RANGE,
            fail_open: true,
            gso: true,
            rcvbuf: 8 << 20,
            batch: 32,
            poll_timeout: Duration::from_millis(100),
            report_enobufs: true,
        }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig::new(0)
    }
}

/// Counters of one queue since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Packets handed to the callback.
    pub packets: u64,
    /// Payload bytes handed to the callback.
    pub bytes: u64,
    /// Packets answered `Accept` (including malformed ones accepted unseen).
    pub accepted: u64,
    /// Packets answered `Drop`.
    pub dropped: u64,
    /// `NFQNL_MSG_VERDICT` messages sent (one packet each).
    pub verdict_msgs: u64,
    /// `NFQNL_MSG_VERDICT_BATCH` messages sent (a run of packets each).
    pub batch_msgs: u64,
    /// `send` calls carrying verdicts.
    pub sends: u64,
    /// `recvmmsg` calls that returned messages.
    pub recv_calls: u64,
    /// Receive errors other than `ENOBUFS` (returned to the caller).
    pub recv_errors: u64,
    /// `ENOBUFS` reports: the socket buffer overflowed and the kernel could not deliver
    /// packets (accepted with fail-open, dropped and counted as `user_dropped` in
    /// [`QueueKernelStats`] without). Receiving simply continues.
    pub enobufs: u64,
    /// Messages that could not be parsed. A malformed packet message whose id is
    /// readable is accepted without inspection; one without a readable id stays queued
    /// until a later batch verdict or the queue's close releases it.
    pub malformed: u64,
    /// Packets longer than the copy range (payload cut).
    pub truncated: u64,
    /// GSO super-packets.
    pub gso: u64,
    /// Packets whose rewritten bytes were sent back with the verdict.
    pub modified: u64,
    /// Rewrites ignored because the packet was cut by the copy range.
    pub modify_refused: u64,
    /// Error answers from the kernel (a verdict for an unknown id, ...).
    pub netlink_errors: u64,
    /// Verdict sends that failed (returned to the caller).
    pub send_errors: u64,
    /// Packets that arrived while the queue was being configured and were sent back
    /// through their hook (`NF_REPEAT`) to be queued again.
    pub requeued: u64,
}

impl QueueStats {
    /// Verdict messages of both kinds.
    pub fn verdict_messages(&self) -> u64 {
        self.verdict_msgs + self.batch_msgs
    }
}

/// Opening or configuring a queue failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// A system call failed.
    #[error("NFQUEUE {queue}: {op}: {source}")]
    Io {
        /// Queue number.
        queue: u16,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Another socket (another process, or another [`Queue`]) has this queue bound in
    /// this network namespace.
    #[error("NFQUEUE {queue} is already bound by another socket in this network namespace")]
    InUse {
        /// Queue number.
        queue: u16,
    },
    /// The kernel refused part of the configuration.
    #[error("NFQUEUE {queue}: kernel rejected {what}: {source}")]
    Rejected {
        /// Queue number.
        queue: u16,
        /// Which request.
        what: &'static str,
        /// The kernel's error.
        source: io::Error,
    },
    /// The kernel did not acknowledge the configuration in time.
    #[error("NFQUEUE {queue}: no acknowledgement from the kernel within {0:?}", CONFIG_TIMEOUT)]
    Timeout {
        /// Queue number.
        queue: u16,
    },
    /// A configuration value is out of range.
    #[error("NFQUEUE {queue}: invalid config field `{field}`: {reason}")]
    InvalidConfig {
        /// Queue number.
        queue: u16,
        /// The field of [`QueueConfig`].
        field: &'static str,
        /// What is allowed.
        reason: &'static str,
    },
}

/// How long [`Queue::open`] waits for the kernel's acknowledgements.
pub const CONFIG_TIMEOUT: Duration = Duration::from_secs(2);

/// Room in each receive slot beyond the copy range, for the netlink header and the
/// metadata attributes (about 150 bytes in practice).
const SLOT_HEADROOM: usize = 1024;
/// Send the verdict buffer once it holds this much (rewritten packets make it large;
/// a netlink send must fit the socket's send buffer).
const TX_FLUSH: usize = 64 << 10;
const SNDBUF: usize = 512 << 10;
const SEQ_BIND: u32 = 1;
const SEQ_FLAGS: u32 = 2;

/// One answered packet, in arrival order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rec {
    id: u32,
    verdict: u32,
    /// Range of the receive buffer to send back as the new packet.
    rewrite: Option<(usize, usize)>,
}

/// A bound NFQUEUE queue: a netlink socket, its receive slots and verdict buffer.
///
/// Open it on a thread inside the network namespace whose iptables rules queue the
/// packets (the socket stays in that namespace for life), then use it from any one
/// thread. Dropping it closes the socket; the kernel then drops the packets still
/// waiting for a verdict (use [`Queue::shutdown`] to accept them first), and later
/// packets follow the rule: dropped, or accepted with `--queue-bypass`.
pub struct Queue {
    fd: OwnedFd,
    cfg: QueueConfig,
    portid: u32,
    slot: usize,
    rx: Vec<u8>,
    rx_meta: Vec<sys::Received>,
    recs: Vec<Rec>,
    tx: Writer,
    stats: QueueStats,
    proc: Option<File>,
    proc_text: String,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("num", &self.cfg.num)
            .field("fd", &self.fd)
            .field("portid", &self.portid)
            .field("slots", &self.rx_meta.len())
            .field("slot_bytes", &self.slot)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn io_err(queue: u16, op: &'static str) -> impl FnOnce(io::Error) -> QueueError {
    move |source| QueueError::Io { queue, op, source }
}

impl Queue {
    /// Create a netlink socket in the calling thread's network namespace, bind queue
    /// `cfg.num` with copy-packet mode, the copy range and queue length, and set the
    /// fail-open and GSO flags, each step acknowledged by the kernel.
    pub fn open(cfg: QueueConfig) -> Result<Queue, QueueError> {
        let queue = cfg.num;
        let invalid = |field, reason| QueueError::InvalidConfig { queue, field, reason };
        if cfg.batch == 0 || cfg.batch > sys::MAX_SLOTS {
            return Err(invalid("batch", "must be 1..=64"));
        }
        if cfg.queue_maxlen == 0 {
            return Err(invalid("queue_maxlen", "must be at least 1"));
        }
        let copy_range = match cfg.copy_range {
            0 => sys::NFQNL_MAX_COPY_RANGE,
            n => n.min(sys::NFQNL_MAX_COPY_RANGE),
        };
        let fd = sys::open_netfilter().map_err(io_err(queue, "socket(NETLINK_NETFILTER)"))?;
        // Best effort: without CAP_ACK (Linux < 4.3) error answers are merely larger.
        let _ = sys::set_cap_ack(fd.as_fd());
        let _ = sys::set_sndbuf(fd.as_fd(), SNDBUF);
        if cfg.rcvbuf > 0 {
            sys::set_rcvbuf(fd.as_fd(), cfg.rcvbuf).map_err(io_err(queue, "SO_RCVBUF"))?;
        }
        if !cfg.report_enobufs {
            sys::set_no_enobufs(fd.as_fd(), true).map_err(io_err(queue, "NETLINK_NO_ENOBUFS"))?;
        }
        let portid = sys::bind_auto(fd.as_fd()).map_err(io_err(queue, "bind(AF_NETLINK)"))?;
        let slot = wire::align(copy_range as usize + SLOT_HEADROOM);
        let mut q = Queue {
            fd,
            cfg: QueueConfig { copy_range, ..cfg },
            portid,
            slot,
            rx: vec![0; slot * cfg.batch],
            rx_meta: vec![sys::Received::default(); cfg.batch],
            recs: Vec::with_capacity(cfg.batch * 2),
            tx: Writer { buf: Vec::with_capacity(TX_FLUSH + slot) },
            stats: QueueStats::default(),
            proc: File::open(kstats::PROC_PATH).ok(),
            proc_text: String::new(),
        };
        q.configure()?;
        Ok(q)
    }

    fn configure(&mut self) -> Result<(), QueueError> {
        let queue = self.cfg.num;
        self.tx.buf.clear();
        self.tx.config_bind(queue, SEQ_BIND, self.cfg.copy_range, self.cfg.queue_maxlen);
        let mut flags = 0;
        if self.cfg.fail_open {
            flags |= sys::NFQA_CFG_F_FAIL_OPEN;
        }
        if self.cfg.gso {
            flags |= sys::NFQA_CFG_F_GSO;
        }
        let mask = sys::NFQA_CFG_F_FAIL_OPEN | sys::NFQA_CFG_F_GSO;
        self.tx.config_flags(queue, SEQ_FLAGS, flags, mask);
        sys::send(self.fd.as_fd(), &self.tx.buf).map_err(io_err(queue, "send(config)"))?;
        self.tx.buf.clear();

        let deadline = Instant::now() + CONFIG_TIMEOUT;
        let (mut bind, mut set_flags) = (None, None);
        while bind.is_none() || set_flags.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(QueueError::Timeout { queue });
            }
            if !sys::poll_readable(self.fd.as_fd(), left).map_err(io_err(queue, "poll"))? {
                continue;
            }
            let n = match self.recv_raw() {
                Ok(n) => n,
                Err(e) if is_transient(&e) => continue,
                Err(e) => return Err(io_err(queue, "recvmmsg")(e)),
            };
            for i in 0..n {
                let len = self.rx_meta.get(i).map_or(0, |m| m.len);
                let dg = self.rx.get(i * self.slot..i * self.slot + len).unwrap_or(&[]);
                let mut pos = 0;
                while let Some(Ok(m)) = wire::message_at(dg, pos) {
                    pos = m.next;
                    let hdr = m.hdr;
                    let msg = dg.get(m.range).unwrap_or(&[]);
                    if hdr.ty == sys::NLMSG_ERROR {
                        match wire::parse_error(msg) {
                            Some(e) if e.seq == SEQ_BIND => bind = Some(e.errno),
                            Some(e) if e.seq == SEQ_FLAGS => set_flags = Some(e.errno),
                            _ => self.stats.netlink_errors += 1,
                        }
                    } else if hdr.ty == sys::queue_msg_type(sys::NFQNL_MSG_PACKET) {
                        // Queued before the configuration was complete: send it back
                        // through its hook so it is queued again, with a payload.
                        if let Some(id) = wire::salvage_id(msg) {
                            self.tx.verdict(queue, false, sys::NF_REPEAT, id, None);
                            self.stats.requeued += 1;
                        }
                    }
                }
            }
            if !self.tx.buf.is_empty() {
                let r = sys::send(self.fd.as_fd(), &self.tx.buf);
                self.tx.buf.clear();
                r.map_err(io_err(queue, "send(verdict)"))?;
            }
        }
        match bind.unwrap_or(0) {
            0 => {}
            sys::EPERM | sys::EBUSY => return Err(QueueError::InUse { queue }),
            e => {
                return Err(QueueError::Rejected {
                    queue,
                    what: "bind with copy mode, copy range and queue length",
                    source: io::Error::from_raw_os_error(e),
                })
            }
        }
        match set_flags.unwrap_or(0) {
            0 => Ok(()),
            e => Err(QueueError::Rejected {
                queue,
                what: "queue flags (fail_open, gso)",
                source: io::Error::from_raw_os_error(e),
            }),
        }
    }

    /// The configuration in force (copy range as clamped).
    pub fn config(&self) -> &QueueConfig {
        &self.cfg
    }

    /// The queue number.
    pub fn num(&self) -> u16 {
        self.cfg.num
    }

    /// The socket's netlink port id (the `portid` column of the kernel's table).
    pub fn portid(&self) -> u32 {
        self.portid
    }

    /// Counters so far.
    pub fn stats(&self) -> QueueStats {
        self.stats
    }

    /// Change how long [`Queue::recv_batch`] waits for the first packet.
    pub fn set_poll_timeout(&mut self, timeout: Duration) {
        self.cfg.poll_timeout = timeout;
    }

    /// The kernel's counters for this queue, read from the namespace the queue was
    /// opened in (callable from any thread).
    pub fn kernel_stats(&mut self) -> Option<QueueKernelStats> {
        let file = self.proc.as_mut()?;
        kstats::reread(file, self.cfg.num, &mut self.proc_text)
    }

    fn recv_raw(&mut self) -> io::Result<usize> {
        let slots = self.rx_meta.len();
        sys::recv_many(self.fd.as_fd(), &mut self.rx, self.slot, slots, &mut self.rx_meta)
    }

    /// Receive up to `max` packets (at most [`QueueConfig::batch`]), waiting up to
    /// [`QueueConfig::poll_timeout`] for the first, call `f` on each in arrival order,
    /// and send all their verdicts before returning. Returns how many packets were
    /// handled; 0 on timeout.
    ///
    /// `ENOBUFS` (the socket buffer overflowed) is counted and receiving continues; other
    /// receive or send errors are counted and returned.
    pub fn recv_batch<F>(&mut self, max: usize, mut f: F) -> io::Result<usize>
    where
        F: FnMut(&mut Packet<'_>) -> Verdict,
    {
        if !self.cfg.poll_timeout.is_zero()
            && !sys::poll_readable(self.fd.as_fd(), self.cfg.poll_timeout)?
        {
            return Ok(0);
        }
        let want = max.clamp(1, self.rx_meta.len());
        let mut n = 0;
        // Two tries: a pending ENOBUFS is reported once, ahead of the queued messages.
        for _ in 0..2 {
            let r =
                sys::recv_many(self.fd.as_fd(), &mut self.rx, self.slot, want, &mut self.rx_meta);
            match r {
                Ok(got) => {
                    n = got;
                    break;
                }
                Err(e) if e.raw_os_error() == Some(sys::ENOBUFS) => self.stats.enobufs += 1,
                Err(e) if is_transient(&e) => return Ok(0),
                Err(e) => {
                    self.stats.recv_errors += 1;
                    return Err(e);
                }
            }
        }
        if n == 0 {
            return Ok(0);
        }
        self.stats.recv_calls += 1;
        self.recs.clear();
        let before = self.stats.packets;
        let queue = self.cfg.num;
        for i in 0..n {
            let m = self.rx_meta.get(i).copied().unwrap_or_default();
            let base = i * self.slot;
            let Some(dg) = self.rx.get_mut(base..base + m.len) else { continue };
            handle_datagram(dg, base, queue, &mut self.recs, &mut self.stats, &mut f);
        }
        send_verdicts(self.fd.as_fd(), queue, &self.recs, &self.rx, &mut self.tx, &mut self.stats)?;
        Ok((self.stats.packets - before) as usize)
    }

    /// Accept every packet already delivered to the socket, then close it: a clean stop
    /// loses nothing that was queued before this call. (Packets queued between the last
    /// receive and the close are dropped by the kernel, or bypass with
    /// `--queue-bypass` once the socket is gone.) Returns the final counters.
    pub fn shutdown(mut self) -> QueueStats {
        self.cfg.poll_timeout = Duration::ZERO;
        let rounds = self.cfg.queue_maxlen as usize / self.rx_meta.len() + 2;
        for _ in 0..rounds {
            if !matches!(self.recv_batch(usize::MAX, |_| Verdict::Accept), Ok(n) if n > 0) {
                break;
            }
        }
        self.stats
    }
}

impl AsRawFd for Queue {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Queue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}

/// Handle every message of one received datagram (at offset `base` of the receive
/// buffer): packets go to `f` and their answers to `recs`; everything else is counted.
fn handle_datagram<F>(
    dg: &mut [u8],
    base: usize,
    queue: u16,
    recs: &mut Vec<Rec>,
    stats: &mut QueueStats,
    f: &mut F,
) where
    F: FnMut(&mut Packet<'_>) -> Verdict,
{
    let packet_ty = sys::queue_msg_type(sys::NFQNL_MSG_PACKET);
    let mut pos = 0;
    while let Some(item) = wire::message_at(dg, pos) {
        let (range, hdr) = match item {
            Ok(m) => {
                pos = m.next;
                (m.range, m.hdr)
            }
            Err(_) => {
                // Not a whole message (cut datagram or garbage): answer the packet if
                // its id can be read, and stop reading this datagram.
                stats.malformed += 1;
                if let Some(id) = dg.get(pos..).and_then(wire::salvage_id) {
                    accept_unseen(id, recs, stats);
                }
                break;
            }
        };
        if hdr.ty == packet_ty {
            let Some(msg) = dg.get_mut(range.clone()) else { break };
            match wire::parse_packet(msg) {
                Ok(meta) => {
                    let _ = queue; // one socket binds one queue: no demultiplexing
                    handle_packet(msg, &meta, range.start + base, recs, stats, f);
                }
                Err(Malformed::Packet { id: Some(id) }) => {
                    stats.malformed += 1;
                    accept_unseen(id, recs, stats);
                }
                Err(_) => stats.malformed += 1,
            }
        } else {
            match hdr.ty {
                sys::NLMSG_ERROR => match dg.get(range).and_then(wire::parse_error) {
                    Some(e) if e.errno == 0 => {}
                    Some(_) => stats.netlink_errors += 1,
                    None => stats.malformed += 1,
                },
                sys::NLMSG_NOOP | sys::NLMSG_DONE => {}
                sys::NLMSG_OVERRUN => stats.enobufs += 1,
                _ => stats.malformed += 1,
            }
        }
    }
}

fn accept_unseen(id: u32, recs: &mut Vec<Rec>, stats: &mut QueueStats) {
    stats.accepted += 1;
    recs.push(Rec { id, verdict: sys::NF_ACCEPT, rewrite: None });
}

fn handle_packet<F>(
    msg: &mut [u8],
    meta: &PacketMeta,
    msg_offset: usize,
    recs: &mut Vec<Rec>,
    stats: &mut QueueStats,
    f: &mut F,
) where
    F: FnMut(&mut Packet<'_>) -> Verdict,
{
    let mut pkt = Packet::new(msg, meta);
    stats.packets += 1;
    stats.bytes += pkt.payload().len() as u64;
    stats.gso += u64::from(pkt.is_gso());
    let truncated = pkt.is_truncated();
    stats.truncated += u64::from(truncated);
    let verdict = f(&mut pkt);
    match verdict {
        Verdict::Accept => stats.accepted += 1,
        Verdict::Drop => stats.dropped += 1,
    }
    let mut rewrite = None;
    if pkt.is_modified() && verdict == Verdict::Accept {
        if truncated {
            stats.modify_refused += 1;
        } else {
            stats.modified += 1;
            let p = &meta.payload;
            rewrite = Some((msg_offset + p.start, msg_offset + p.end));
        }
    }
    recs.push(Rec { id: meta.id, verdict: verdict.raw(), rewrite });
}

/// `id` comes after `prev` in the kernel's wrapping id sequence.
fn id_after(id: u32, prev: u32) -> bool {
    (id.wrapping_sub(prev) as i32) > 0
}

/// Encode the answers to `recs` (coalescing runs, see the module docs) and send them.
fn send_verdicts(
    fd: BorrowedFd<'_>,
    queue: u16,
    recs: &[Rec],
    rx: &[u8],
    tx: &mut Writer,
    stats: &mut QueueStats,
) -> io::Result<()> {
    tx.buf.clear();
    let r = encode_verdicts(queue, recs, rx, tx, stats, &mut |buf| sys::send(fd, buf));
    if r.is_err() {
        stats.send_errors += 1;
    }
    r
}

/// The coalescing itself, with the transport passed in (tests record the messages).
fn encode_verdicts(
    queue: u16,
    recs: &[Rec],
    rx: &[u8],
    tx: &mut Writer,
    stats: &mut QueueStats,
    send: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut flush = |tx: &mut Writer, stats: &mut QueueStats| -> io::Result<()> {
        if tx.buf.is_empty() {
            return Ok(());
        }
        stats.sends += 1;
        let r = send(&tx.buf);
        tx.buf.clear();
        r
    };
    let mut i = 0;
    while let Some(r) = recs.get(i) {
        if let Some((s, e)) = r.rewrite {
            let payload = rx.get(s..e).unwrap_or(&[]);
            if tx.buf.len() + payload.len() > TX_FLUSH {
                flush(tx, stats)?;
            }
            tx.verdict(queue, false, r.verdict, r.id, Some(payload));
            stats.verdict_msgs += 1;
            i += 1;
            continue;
        }
        let mut last = r.id;
        let mut j = i + 1;
        while let Some(n) = recs.get(j) {
            if n.rewrite.is_some() || n.verdict != r.verdict || !id_after(n.id, last) {
                break;
            }
            last = n.id;
            j += 1;
        }
        if tx.buf.len() + wire::VERDICT_MSG_LEN > TX_FLUSH {
            flush(tx, stats)?;
        }
        let batch = j - i >= 2;
        tx.verdict(queue, batch, r.verdict, last, None);
        if batch {
            stats.batch_msgs += 1;
        } else {
            stats.verdict_msgs += 1;
        }
        i = j;
    }
    flush(tx, stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn packet_msg(id: u32, payload: &[u8]) -> Vec<u8> {
        let mut w = Writer::default();
        let s = w.begin(sys::NFQNL_MSG_PACKET, 0, 0, libc::AF_INET as u8, 0);
        w.attr(sys::NFQA_PACKET_HDR, &[&id.to_be_bytes(), &0x0800u16.to_be_bytes(), &[1, 0]]);
        w.attr(sys::NFQA_PAYLOAD, &[payload]);
        w.end(s);
        w.buf
    }

    /// Decode the verdict messages in `buf` as (batch, verdict, id, payload length).
    fn decode(buf: &[u8]) -> Vec<(bool, u32, u32, usize)> {
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some(Ok(loc)) = wire::message_at(buf, pos) {
            pos = loc.next;
            let m = &buf[loc.range];
            let batch = loc.hdr.ty == sys::queue_msg_type(sys::NFQNL_MSG_VERDICT_BATCH);
            let verdict = u32::from_be_bytes(m[24..28].try_into().unwrap());
            let id = u32::from_be_bytes(m[28..32].try_into().unwrap());
            let plen =
                if m.len() > 32 { u16::from_ne_bytes([m[32], m[33]]) as usize - 4 } else { 0 };
            out.push((batch, verdict, id, plen));
        }
        out
    }

    fn plan(recs: &[Rec], rx: &[u8]) -> (Vec<(bool, u32, u32, usize)>, QueueStats) {
        let mut tx = Writer::default();
        let mut stats = QueueStats::default();
        let mut sent = Vec::new();
        encode_verdicts(0, recs, rx, &mut tx, &mut stats, &mut |b| {
            sent.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        (decode(&sent), stats)
    }

    fn rec(id: u32, v: Verdict) -> Rec {
        Rec { id, verdict: v.raw(), rewrite: None }
    }

    const A: u32 = sys::NF_ACCEPT;
    const D: u32 = sys::NF_DROP;

    #[test]
    fn runs_of_equal_verdicts_become_batches() {
        use Verdict::{Accept as Ac, Drop as Dr};
        let recs = [rec(1, Ac), rec(2, Ac), rec(3, Dr), rec(4, Dr), rec(5, Dr), rec(6, Ac)];
        let (msgs, stats) = plan(&recs, &[]);
        assert_eq!(msgs, vec![(true, A, 2, 0), (true, D, 5, 0), (false, A, 6, 0)]);
        assert_eq!((stats.batch_msgs, stats.verdict_msgs, stats.sends), (2, 1, 1));
        // Alternating verdicts: one message each.
        let recs = [rec(7, Ac), rec(8, Dr), rec(9, Ac)];
        let (msgs, _) = plan(&recs, &[]);
        assert_eq!(msgs, vec![(false, A, 7, 0), (false, D, 8, 0), (false, A, 9, 0)]);
        // Ids across the wrap are still in order.
        let (msgs, _) = plan(&[rec(u32::MAX, Ac), rec(0, Ac), rec(1, Ac)], &[]);
        assert_eq!(msgs, vec![(true, A, 1, 0)]);
        // Out-of-order ids (impossible from the kernel) are never swept by a batch.
        let (msgs, _) = plan(&[rec(5, Ac), rec(3, Ac)], &[]);
        assert_eq!(msgs, vec![(false, A, 5, 0), (false, A, 3, 0)]);
    }

    #[test]
    fn a_rewritten_packet_breaks_the_run_and_carries_its_bytes() {
        let rx = [9u8; 100];
        let recs = [
            rec(1, Verdict::Accept),
            rec(2, Verdict::Accept),
            Rec { id: 3, verdict: A, rewrite: Some((10, 50)) },
            rec(4, Verdict::Accept),
            rec(5, Verdict::Accept),
        ];
        let (msgs, _) = plan(&recs, &rx);
        assert_eq!(msgs, vec![(true, A, 2, 0), (false, A, 3, 40), (true, A, 5, 0)]);
    }

    #[test]
    fn datagram_of_packets_is_answered_in_order() {
        let mut dg = packet_msg(10, &[0x45, 0, 0, 4]);
        dg.extend_from_slice(&packet_msg(11, &[0x45, 0, 0, 4]));
        let mut recs = Vec::new();
        let mut stats = QueueStats::default();
        let mut seen = Vec::new();
        handle_datagram(&mut dg, 0, 0, &mut recs, &mut stats, &mut |p: &mut Packet<'_>| {
            seen.push(p.id());
            let frame = p.frame_mut([1; 6], [2; 6]);
            assert_eq!(&frame[12..], &[0x08, 0x00, 0x45, 0, 0, 4]);
            if p.id() == 11 {
                p.payload_mut()[1] = 7;
                Verdict::Accept
            } else {
                Verdict::Drop
            }
        });
        assert_eq!(seen, vec![10, 11]);
        assert_eq!((stats.packets, stats.accepted, stats.dropped, stats.modified), (2, 1, 1, 1));
        assert_eq!(recs[0], rec(10, Verdict::Drop));
        let (s, e) = recs[1].rewrite.unwrap();
        assert_eq!(&dg[s..e], &[0x45, 7, 0, 4]);
    }

    #[test]
    fn garbage_is_counted_never_panics() {
        let mut recs = Vec::new();
        let mut stats = QueueStats::default();
        let mut calls = 0;
        let mut f = |_: &mut Packet<'_>| {
            calls += 1;
            Verdict::Accept
        };
        for garbage in [
            vec![],
            vec![0xff; 3],
            vec![0xff; 64],
            vec![0; 16],
            vec![16, 0, 0, 0, 0xee, 0xee, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            {
                // A packet message whose first attribute overruns the message.
                let mut m = packet_msg(77, &[1; 8]);
                m[20..22].copy_from_slice(&200u16.to_ne_bytes());
                m
            },
            {
                // Cut datagram: the id is still readable and is accepted unseen.
                let mut m = packet_msg(78, &[1; 64]);
                m.truncate(40);
                m
            },
        ] {
            let mut g = garbage;
            handle_datagram(&mut g, 0, 0, &mut recs, &mut stats, &mut f);
        }
        assert_eq!(calls, 0);
        assert!(stats.malformed >= 5, "{stats:?}");
        assert_eq!(recs.iter().map(|r| r.id).collect::<Vec<_>>(), vec![78]);
        assert_eq!(stats.packets, 0);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut recs = Vec::new();
            let mut stats = QueueStats::default();
            handle_datagram(&mut bytes, 0, 0, &mut recs, &mut stats, &mut |p: &mut Packet<'_>| {
                let _ = (p.payload().len(), p.src_mac(), p.timestamp(), p.orig_len());
                let _ = p.frame_mut([0; 6], [0; 6]).len();
                Verdict::Drop
            });
            // Every answer is for a packet handed over or one counted malformed.
            prop_assert!(recs.len() as u64 <= stats.packets + stats.malformed);
            prop_assert_eq!(stats.accepted + stats.dropped, recs.len() as u64);
        }

        #[test]
        fn mutated_packets_never_panic(pos in 0usize..64, val in any::<u8>(), cut in 0usize..64) {
            let mut m = packet_msg(1, &[0x45; 24]);
            let p = pos % m.len();
            m[p] = val;
            m.truncate(m.len() - cut.min(m.len()));
            let mut recs = Vec::new();
            let mut stats = QueueStats::default();
            handle_datagram(&mut m, 0, 0, &mut recs, &mut stats, &mut |_: &mut Packet<'_>| Verdict::Accept);
            prop_assert!(recs.len() <= 1);
        }
    }
}
