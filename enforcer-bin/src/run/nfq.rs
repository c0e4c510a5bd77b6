//! NFQUEUE workers: one thread and one engine context per NFQUEUE workload.
//!
//! The thread joins the workload's network namespace, binds the workload's queue (a queue
//! exists per namespace) and answers every packet with the engine's verdict. A queue
//! carries one workload's input and output, so its sessions are all in this context.
//!
//! Packets arrive without a link layer; the worker writes an Ethernet header in front
//! (`Packet::frame_mut`) whose workload side is the workload's MAC — the destination for
//! packets queued on input, the source on output — so the engine resolves the workload by
//! its MAC and the peer by its address (NeuVector instead guesses the direction from
//! addresses and ports, §1.5; the hook says it exactly).
//!
//! Verdicts as NeuVector's NFQ path: a frame the engine could not parse is accepted (the
//! header is synthetic), a policy drop is dropped. A new connection denied at its first
//! packet is a silent drop (the client times out, as with NeuVector); a session denied
//! mid-stream (an application rule) gets TCP resets to both ends, which NeuVector's NFQ
//! path cannot send: the worker sends them through raw sockets in the workload's
//! namespace (`inject.rs`).

use super::afp::{PortStats, WorkerStats};
use super::inject::Injector;
use super::sink::Engine;
use dpi_core::{Action, DropReason};
use dpi_nfqueue::{Hook, Queue, QueueConfig, QueueStats, Verdict};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

/// An NFQUEUE worker's queue counters, ours and the kernel's.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct NfqStats {
    /// Verdict messages sent (single and batch).
    pub verdict_msgs: u64,
    /// Of which batch verdicts (`NFQNL_MSG_VERDICT_BATCH`).
    pub batch_msgs: u64,
    /// Receive errors other than `ENOBUFS`.
    pub recv_errors: u64,
    /// `ENOBUFS`: the socket buffer overran and the kernel dropped (or, fail-open,
    /// accepted) packets we never saw.
    pub enobufs: u64,
    /// Messages that did not parse.
    pub malformed: u64,
    /// Packets accepted because the engine could not parse the synthetic frame.
    pub accepted_unparsed: u64,
    /// Resets sent through the raw sockets (failures count in `transmit_unsent`).
    pub resets_sent: u64,
    /// Kernel: packets waiting in the queue now.
    pub kernel_queue_total: u32,
    /// Kernel: packets dropped because the queue was full (fail-open off).
    pub kernel_queue_dropped: u32,
    /// Kernel: packets dropped because the netlink socket was full.
    pub kernel_user_dropped: u32,
    /// Kernel: packet ids handed out (packets queued since the queue was bound).
    pub kernel_id_sequence: u32,
}

/// Packets taken per receive call.
const BATCH: usize = 64;

/// What the daemon asks of an NFQUEUE worker.
#[derive(Debug)]
pub enum Command {
    /// Send a snapshot of the counters.
    Stats(SyncSender<WorkerStats>),
}

/// The queue settings of the enforcer: fail-open (a full queue accepts) and GSO on,
/// room for 4096 packets.
pub fn queue_config(num: u16) -> QueueConfig {
    QueueConfig {
        queue_maxlen: 4096,
        poll_timeout: Duration::from_millis(20),
        ..QueueConfig::new(num)
    }
}

/// One NFQUEUE worker.
#[derive(Debug)]
pub struct Worker {
    name: String,
    engine: Engine,
    queue: Queue,
    injector: Injector,
    mac: [u8; 6],
    commands: Receiver<Command>,
    stop: Arc<AtomicBool>,
    accepted_unparsed: u64,
    injected: u64,
    transmit_unsent: u64,
}

impl Worker {
    /// A worker answering `queue` for the workload whose MAC is `mac`.
    pub fn new(
        workload: &str,
        engine: Engine,
        queue: Queue,
        injector: Injector,
        mac: [u8; 6],
        commands: Receiver<Command>,
        stop: Arc<AtomicBool>,
    ) -> Worker {
        Worker {
            name: format!("nfqueue-{workload}"),
            engine,
            queue,
            injector,
            mac,
            commands,
            stop,
            accepted_unparsed: 0,
            injected: 0,
            transmit_unsent: 0,
        }
    }

    /// Run until the stop flag is set; then accept what was delivered, close the queue
    /// (packets bypass it from then on) and write the last reports.
    pub fn run(mut self) -> QueueStats {
        while !self.stop.load(Ordering::Relaxed) {
            match self.commands.try_recv() {
                Ok(Command::Stats(reply)) => {
                    let _ = reply.send(self.stats());
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => break,
            }
            self.turn();
        }
        let Worker { mut engine, queue, .. } = self;
        let stats = queue.shutdown();
        engine.finish();
        stats
    }

    fn turn(&mut self) {
        self.engine.tick();
        let Worker { engine, queue, mac, accepted_unparsed, .. } = self;
        let ctx = &mut engine.ctx;
        let mac = *mac;
        let r = queue.recv_batch(BATCH, |pkt| {
            let (src, dst) = match pkt.hook() {
                Hook::LocalOut | Hook::PostRouting => (mac, [0; 6]),
                _ => ([0; 6], mac),
            };
            match ctx.recv_packet(pkt.frame_mut(src, dst)) {
                Action::Forward => Verdict::Accept,
                Action::Drop(r) if enforced(r) => Verdict::Drop,
                Action::Drop(_) => {
                    *accepted_unparsed += 1;
                    Verdict::Accept
                }
            }
        });
        if let Err(e) = r {
            // Counted by the queue; a persistent error would spin, so pause briefly.
            eprintln!("enforcer: {}: receive failed: {e}", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
        while let Some(t) = self.engine.ctx.poll_transmit() {
            match self.injector.send_frame(&t.frame) {
                Ok(()) => self.injected += 1,
                Err(_) => self.transmit_unsent += 1,
            }
        }
        self.engine.drain();
    }

    fn stats(&mut self) -> WorkerStats {
        let q = self.queue.stats();
        let k = self.queue.kernel_stats();
        let port = PortStats {
            name: format!("queue {}", self.queue.num()),
            rx_frames: q.packets,
            forwarded: q.accepted,
            dropped: q.dropped,
            kernel_packets: k.map_or(0, |k| u64::from(k.id_sequence)),
            kernel_drops: k.map_or(0, |k| u64::from(k.queue_dropped) + u64::from(k.user_dropped)),
            ..PortStats::default()
        };
        let queue = NfqStats {
            verdict_msgs: q.verdict_msgs,
            batch_msgs: q.batch_msgs,
            recv_errors: q.recv_errors,
            enobufs: q.enobufs,
            malformed: q.malformed,
            accepted_unparsed: self.accepted_unparsed,
            resets_sent: self.injected,
            kernel_queue_total: k.map_or(0, |k| k.queue_total),
            kernel_queue_dropped: k.map_or(0, |k| k.queue_dropped),
            kernel_user_dropped: k.map_or(0, |k| k.user_dropped),
            kernel_id_sequence: k.map_or(0, |k| k.id_sequence),
        };
        WorkerStats::of(&self.name, &self.engine, self.transmit_unsent, vec![port], Some(queue))
    }
}

/// Drops that are decisions (policy, hooks, a teardrop), not a failure to parse the
/// synthetic frame.
fn enforced(r: DropReason) -> bool {
    matches!(
        r,
        DropReason::Policy
            | DropReason::Blocked
            | DropReason::Hook
            | DropReason::UnknownWorkload
            | DropReason::FragOverlap
    )
}
