//! AF_PACKET workers: one thread, one engine context, and one socket of every port each.
//!
//! A worker owns its member of the inline service port's fanout group (`vth-neuv`) and
//! of every tap port's group. `PACKET_FANOUT_HASH` puts both directions of a flow on the
//! same member, and every group is joined in worker order, so member *i* of each group is
//! worker *i*: a flow lands on the same worker whether it is seen on a tap or inline.
//!
//! ## Tap frames carry the workload's tag
//!
//! A frame between two tapped workloads is seen twice (leaving one, entering the other),
//! exactly like a frame between two inline workloads passes the service port twice. The
//! worker rewrites the workload's MAC in the tap copy (the copy only; nothing is sent) to
//! a tag MAC of the workload (`4e:65:75:56:HH:LL`, from the tap range `80 01..`; the
//! inline steering uses its own tags from `00 01`). So each sighting is its own session in
//! the engine, decided by its own workload. After a switch to Protect the connection's
//! frames carry the inline tag: its next packet opens a mid-stream session, decided by the
//! policy at once, and the connection goes on if the policy allows it.
//!
//! ## Loop
//!
//! ```text
//!  commands (add/remove ports, stats) ─► poll(ports, ≤ 20 ms) ─► handle_timeout(now)
//!   ─► service.recv: recv_packet → Forward | Drop      (inline verdicts)
//!   ─► taps.recv:    rewrite tag, recv_packet           (verdicts ignored)
//!   ─► poll_transmit → service.transmit (TCP resets)
//!   ─► events → report lines
//! ```
//!
//! The poll watches at most 128 descriptors (the service port, two per port pair, then
//! taps); ports beyond that are still read on every turn, at worst 20 ms later.

use super::sink::{Engine, EventCounts};
use dpi_afpacket::{KernelStats, PortCounters, ServicePort, TapPort, Verdict};
use dpi_core::{Action, Counters};
use serde::Serialize;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

/// Frames taken from one port per turn.
const BATCH: usize = 256;
/// Longest wait for a frame; the worker sees commands and its stop flag this often.
const POLL: Duration = Duration::from_millis(20);
/// Descriptors one poll watches (`dpi_afpacket::poll_ready`).
const POLL_FDS: usize = dpi_afpacket::MAX_POLL_FDS;

/// A tap port of one workload, as a worker owns it.
#[derive(Debug)]
pub struct TapMember {
    /// The workload.
    pub workload: Arc<str>,
    /// Its interface's MAC.
    pub mac: [u8; 6],
    /// Its tag MAC.
    pub tag: [u8; 6],
    /// The socket.
    pub port: TapPort,
}

/// An inline workload's port pair (`inline_ports = "pair"`), as a worker owns it: frames
/// from `vin` (the workload's side) leave on `vex` and back. The worker puts the workload's
/// tag in place of its MAC while the engine looks at a frame, exactly as the shared
/// service port's steering does, and takes it out again before the frame leaves.
#[derive(Debug)]
pub struct PairMember {
    /// The workload.
    pub workload: Arc<str>,
    /// Its interface's MAC.
    pub mac: [u8; 6],
    /// Its inline tag MAC.
    pub tag: [u8; 6],
    /// The port on `vin<i>`.
    pub vin: ServicePort,
    /// The port on `vex<i>`.
    pub vex: ServicePort,
}

/// What the daemon asks of a worker.
#[derive(Debug)]
pub enum Command {
    /// Start reading a tap port.
    AddTap(TapMember),
    /// Stop reading (and close) the tap port of a workload.
    RemoveTap(Arc<str>),
    /// Use this service port (replacing any).
    SetService(ServicePort),
    /// Start forwarding an inline workload's port pair.
    AddPair(Box<PairMember>),
    /// Stop forwarding (and close) a workload's port pair.
    RemovePair(Arc<str>),
    /// Send a snapshot of the counters.
    Stats(SyncSender<WorkerStats>),
}

/// Counters of one port.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PortStats {
    /// Interface (or workload, for taps).
    pub name: String,
    /// Frames handed to the engine.
    pub rx_frames: u64,
    /// Frames forwarded (service port).
    pub forwarded: u64,
    /// Frames dropped on the engine's verdict (service port).
    pub dropped: u64,
    /// Frames sent (forwarded plus injected).
    pub tx_frames: u64,
    /// Frames lost for want of a TX slot.
    pub tx_ring_full: u64,
    /// Frames the kernel refused.
    pub tx_errors: u64,
    /// Oversize frames seen only truncated.
    pub oversize_dropped: u64,
    /// Frames with unfinished checksums (transmit offload on upstream).
    pub csum_not_ready: u64,
    /// GSO super-frames inspected and forwarded whole (`inline_gso`).
    pub gso_frames: u64,
    /// Frames sent on the port's interface that came back to it (never forwarded).
    pub outgoing_skipped: u64,
    /// Frames the kernel offered the ring.
    pub kernel_packets: u64,
    /// Frames the kernel dropped because the ring was full.
    pub kernel_drops: u64,
}

/// The engine counters `ctl stats` shows: traffic, and every bound that was hit.
#[derive(Serialize)]
struct EngineSummary {
    packets: u64,
    bytes: u64,
    sessions_evicted: u64,
    /// Sessions whose payload inspection stopped: out-of-order or unconsumed data beyond a
    /// stream buffer, no stream buffer left, frames seen truncated, capture gaps.
    tcp_bypass_overflow: u64,
    stream_pool_exhausted: u64,
    tcp_bypass_truncated: u64,
    tcp_bypass_capture_loss: u64,
    events_dropped: u64,
}

fn engine_summary<S: serde::Serializer>(c: &Counters, s: S) -> Result<S::Ok, S::Error> {
    EngineSummary {
        packets: c.packets,
        bytes: c.bytes,
        sessions_evicted: c.sessions_evicted,
        tcp_bypass_overflow: c.tcp_bypass_overflow,
        stream_pool_exhausted: c.stream_pool_exhausted,
        tcp_bypass_truncated: c.tcp_bypass_truncated,
        tcp_bypass_capture_loss: c.tcp_bypass_capture_loss,
        events_dropped: c.events_dropped,
    }
    .serialize(s)
}

impl PortStats {
    fn new(name: &str, c: PortCounters, k: KernelStats) -> Self {
        PortStats {
            name: name.to_string(),
            rx_frames: c.rx_frames,
            forwarded: c.forwarded,
            dropped: c.dropped,
            tx_frames: c.tx_frames,
            tx_ring_full: c.tx_ring_full,
            tx_errors: c.tx_errors,
            oversize_dropped: c.oversize_dropped,
            csum_not_ready: c.csum_not_ready,
            gso_frames: c.gso_frames,
            outgoing_skipped: c.outgoing_skipped,
            kernel_packets: k.packets,
            kernel_drops: k.drops,
        }
    }
}

/// A snapshot of one worker.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerStats {
    /// Worker name (`afpacket-N`, `nfqueue-WORKLOAD`).
    pub worker: String,
    /// Live sessions.
    pub sessions: usize,
    /// Engine counters (serialized as `engine`: the ones an operator acts on).
    #[serde(rename = "engine", serialize_with = "engine_summary")]
    pub counters: Counters,
    /// Events by kind.
    pub events: EventCounts,
    /// Resets the engine wanted to send that had no port to leave by (tap only).
    pub transmit_unsent: u64,
    /// Per port.
    pub ports: Vec<PortStats>,
    /// The queue's own counters (NFQUEUE workers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<super::nfq::NfqStats>,
}

impl WorkerStats {
    /// A worker's snapshot: its engine's figures and the given port and queue counters.
    pub(super) fn of(
        name: &str,
        engine: &Engine,
        transmit_unsent: u64,
        ports: Vec<PortStats>,
        queue: Option<super::nfq::NfqStats>,
    ) -> WorkerStats {
        WorkerStats {
            worker: name.to_string(),
            sessions: engine.ctx.session_count(),
            counters: *engine.ctx.counters(),
            events: engine.counts(),
            transmit_unsent,
            ports,
            queue,
        }
    }
}

/// One AF_PACKET worker.
#[derive(Debug)]
pub struct Worker {
    name: String,
    engine: Engine,
    service: Option<ServicePort>,
    taps: Vec<TapMember>,
    pairs: Vec<PairMember>,
    commands: Receiver<Command>,
    stop: Arc<AtomicBool>,
    transmit_unsent: u64,
}

impl Worker {
    /// A worker running `engine`; it takes ports and requests from `commands`.
    pub fn new(
        index: usize,
        engine: Engine,
        commands: Receiver<Command>,
        stop: Arc<AtomicBool>,
    ) -> Worker {
        Worker {
            name: format!("afpacket-{index}"),
            engine,
            service: None,
            taps: Vec::new(),
            pairs: Vec::new(),
            commands,
            stop,
            transmit_unsent: 0,
        }
    }

    /// Run until the stop flag is set (or the daemon is gone), then end every session and
    /// write the last reports.
    pub fn run(mut self) {
        while !self.stop.load(Ordering::Relaxed) {
            if !self.commands() {
                break;
            }
            self.wait();
            self.turn();
        }
        self.finish();
    }

    /// Apply pending commands; false when the daemon side is gone.
    fn commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::AddTap(m)) => {
                    self.taps.retain(|t| t.workload != m.workload);
                    self.taps.push(m);
                }
                Ok(Command::RemoveTap(w)) => self.taps.retain(|t| t.workload != w),
                Ok(Command::SetService(p)) => self.service = Some(p),
                Ok(Command::AddPair(m)) => {
                    self.pairs.retain(|p| p.workload != m.workload);
                    self.pairs.push(*m);
                }
                Ok(Command::RemovePair(w)) => self.pairs.retain(|p| p.workload != w),
                Ok(Command::Stats(reply)) => {
                    let _ = reply.send(self.stats());
                }
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn wait(&mut self) {
        let ready = self.service.as_ref().is_some_and(|p| p.ready())
            || self.pairs.iter().any(|p| p.vin.ready() || p.vex.ready())
            || self.taps.iter().any(|t| t.port.ready());
        if ready {
            return;
        }
        let mut fds: Vec<BorrowedFd<'_>> = Vec::with_capacity(POLL_FDS);
        if let Some(p) = &self.service {
            fds.push(p.as_fd());
        }
        for p in &self.pairs {
            fds.extend([p.vin.as_fd(), p.vex.as_fd()]);
        }
        fds.truncate(POLL_FDS);
        fds.extend(self.taps.iter().map(|t| t.port.as_fd()).take(POLL_FDS - fds.len()));
        if fds.is_empty() {
            std::thread::sleep(POLL);
        } else {
            // An error here (EINTR) only shortens the wait.
            let _ = dpi_afpacket::poll_ready(&fds, POLL);
        }
    }

    fn turn(&mut self) {
        self.engine.tick();
        let Worker { engine, service, taps, pairs, .. } = self;
        let ctx = &mut engine.ctx;
        if let Some(port) = service.as_mut() {
            port.recv(BATCH, |frame, _meta| match ctx.recv_packet(frame) {
                Action::Forward => Verdict::Forward,
                Action::Drop(_) => Verdict::Drop,
            });
        }
        for p in pairs.iter_mut() {
            let (mac, tag) = (p.mac, p.tag);
            // From the workload: unicast IP must come from its MAC (the shared steering's
            // anti-spoofing rule).
            p.vin.recv_to(&mut p.vex, BATCH, |frame, _meta| {
                if spoofed(frame, mac) {
                    return Verdict::Drop;
                }
                inspect_tagged(ctx, frame, mac, tag)
            });
            p.vex.recv_to(&mut p.vin, BATCH, |frame, _meta| inspect_tagged(ctx, frame, mac, tag));
        }
        for tap in taps.iter_mut() {
            let (mac, tag) = (tap.mac, tap.tag);
            tap.port.recv(BATCH, |frame, _meta| {
                retag(frame, mac, tag);
                // A copy: the verdict has nothing to act on.
                let _ = ctx.recv_packet(frame);
            });
        }
        while let Some(mut t) = self.engine.ctx.poll_transmit() {
            let f = &mut t.frame;
            // A reset for a port-pair workload carries its tag, on the side it goes to.
            let pair = (f.len() >= 14)
                .then(|| self.pairs.iter_mut().find(|p| f[0..6] == p.tag || f[6..12] == p.tag))
                .flatten();
            match (pair, self.service.as_mut()) {
                (Some(p), _) => {
                    let to_workload = f[0..6] == p.tag;
                    retag(f, p.tag, p.mac);
                    if to_workload {
                        p.vin.transmit(f);
                    } else {
                        p.vex.transmit(f);
                    }
                }
                (None, Some(port)) => {
                    port.transmit(f);
                }
                (None, None) => self.transmit_unsent += 1,
            }
        }
        if let Some(port) = self.service.as_mut() {
            port.flush();
        }
        for p in self.pairs.iter_mut() {
            p.vin.flush();
            p.vex.flush();
        }
        self.engine.drain();
    }

    fn stats(&mut self) -> WorkerStats {
        let service = self.service.iter_mut();
        let pairs = self.pairs.iter_mut().flat_map(|p| [&mut p.vin, &mut p.vex]);
        let mut ports: Vec<PortStats> = service
            .chain(pairs)
            .map(|p| {
                let ks = p.kernel_stats().unwrap_or_default();
                PortStats::new(p.iface(), p.counters(), ks)
            })
            .collect();
        for t in self.taps.iter_mut() {
            let ks = t.port.kernel_stats().unwrap_or_default();
            ports.push(PortStats::new(&t.workload, t.port.counters(), ks));
        }
        WorkerStats::of(&self.name, &self.engine, self.transmit_unsent, ports, None)
    }

    fn finish(&mut self) {
        self.engine.finish();
    }
}

/// The engine's verdict on a port-pair frame, looked at with the workload's tag in place of
/// its MAC (its zone, as through the shared service port); the MAC is back on return.
fn inspect_tagged(
    ctx: &mut dpi_core::Ctx,
    frame: &mut [u8],
    mac: [u8; 6],
    tag: [u8; 6],
) -> Verdict {
    retag(frame, mac, tag);
    let v = match ctx.recv_packet(frame) {
        Action::Forward => Verdict::Forward,
        Action::Drop(_) => Verdict::Drop,
    };
    retag(frame, tag, mac);
    v
}

/// A unicast IPv4/IPv6 frame from the workload's side whose source is not its MAC.
fn spoofed(frame: &[u8], mac: [u8; 6]) -> bool {
    frame.len() >= 14
        && frame[6..12] != mac
        && frame[0] & 1 == 0
        && matches!([frame[12], frame[13]], [0x08, 0x00] | [0x86, 0xdd])
}

/// In a tap copy, replace the workload's MAC (as source, else as destination) by its tag.
pub fn retag(frame: &mut [u8], mac: [u8; 6], tag: [u8; 6]) {
    if frame.len() < 14 {
        return;
    }
    if frame[6..12] == mac {
        frame[6..12].copy_from_slice(&tag);
    } else if frame[0..6] == mac {
        frame[0..6].copy_from_slice(&tag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retag_replaces_the_workload_side_only() {
        let mac = [2, 0, 0, 0, 0, 1];
        let tag = [0x4e, 0x65, 0x75, 0x56, 0, 1];
        let peer = [2, 0, 0, 0, 0, 2];
        let mut out = [peer, mac].concat();
        out.extend_from_slice(&[8, 0]);
        retag(&mut out, mac, tag);
        assert_eq!(&out[0..6], &peer);
        assert_eq!(&out[6..12], &tag);
        let mut inb = [mac, peer].concat();
        inb.extend_from_slice(&[8, 0]);
        retag(&mut inb, mac, tag);
        assert_eq!(&inb[0..6], &tag);
        let mut other = [peer, peer].concat();
        other.extend_from_slice(&[8, 0]);
        let before = other.clone();
        retag(&mut other, mac, tag);
        assert_eq!(other, before);
        let mut short = [1u8, 2, 3];
        retag(&mut short, mac, tag);
        assert_eq!(short, [1, 2, 3]);
    }
}
