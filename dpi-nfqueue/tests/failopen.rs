//! What happens when the consumer is slow, overrun or gone: fail-open, `--queue-bypass`,
//! socket-buffer overruns (`ENOBUFS`), clean shutdown, and the kernel's own counters.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dpi_nfqueue::{Queue, QueueConfig, QueueError, Verdict};
use std::time::Duration;

const UDP_RULE: &str = "-A INPUT -p udp --dport 9000 -j NFQUEUE --queue-num 0";
const GAP: Duration = Duration::from_millis(1);

/// The kernel's line for `queue` once `settled` holds (softirq processing of the sent
/// datagrams may lag the sender by a moment), or the last one read.
fn settled_stats(
    queue: &mut Queue,
    settled: impl Fn(&dpi_nfqueue::QueueKernelStats) -> bool,
) -> dpi_nfqueue::QueueKernelStats {
    let mut last = None;
    eventually(Duration::from_secs(2), || {
        last = queue.kernel_stats();
        last.as_ref().is_some_and(&settled)
    });
    last.unwrap()
}

/// Queue length 1 and nobody reading: the first datagram waits in the queue, the other
/// 19 find it full and are accepted uninspected. They get no packet id.
#[test]
fn fail_open_accepts_when_the_queue_is_full() {
    let Some(lab) = Lab::new() else { return };
    lab.iptables(UDP_RULE);
    let mut queue = lab.open(QueueConfig { queue_maxlen: 1, fail_open: true, ..cfg() });
    let udp = lab.udp_server(S4, 9000);
    lab.udp_send(S4, 9000, 20, 32, GAP);
    assert_eq!(udp_count(&udp, 19, Duration::from_secs(2)), 19);
    let ks = settled_stats(&mut queue, |k| k.queue_total == 1);
    assert_eq!((ks.queue_total, ks.queue_dropped, ks.user_dropped), (1, 0, 0), "{ks:?}");
    assert_eq!(ks.id_sequence, 1, "only the queued packet got an id: {ks:?}");
    // The blocked consumer wakes up and answers the one it holds.
    let worker = Worker::start(queue, |_| Verdict::Accept);
    assert_eq!(udp_count(&udp, 1, Duration::from_secs(2)), 1);
    let stats = worker.stop().stats();
    assert_eq!((stats.packets, stats.accepted), (1, 1));
}

/// Same, without fail-open: the 19 are dropped and counted as `queue_dropped`.
#[test]
fn without_fail_open_a_full_queue_drops() {
    let Some(lab) = Lab::new() else { return };
    lab.iptables(UDP_RULE);
    let mut queue = lab.open(QueueConfig { queue_maxlen: 1, fail_open: false, ..cfg() });
    let udp = lab.udp_server(S4, 9000);
    lab.udp_send(S4, 9000, 20, 32, GAP);
    assert_eq!(udp_count(&udp, 1, Duration::from_millis(500)), 0);
    let ks = settled_stats(&mut queue, |k| k.queue_total + k.queue_dropped == 20);
    assert_eq!((ks.queue_total, ks.queue_dropped, ks.id_sequence), (1, 19, 1), "{ks:?}");
    let worker = Worker::start(queue, |_| Verdict::Accept);
    assert_eq!(udp_count(&udp, 20, Duration::from_millis(1500)), 1);
    assert_eq!(worker.stop().stats().packets, 1);
}

/// A receive buffer too small for the burst: without fail-open the kernel drops what
/// does not fit (`user_dropped`) and reports `ENOBUFS` once; the queue counts it and
/// carries on, and later traffic passes.
#[test]
fn enobufs_is_counted_and_receiving_recovers() {
    let Some(lab) = Lab::new() else { return };
    lab.iptables(UDP_RULE);
    let cfg = QueueConfig { rcvbuf: 1, fail_open: false, ..cfg() };
    let mut queue = lab.open(cfg);
    let udp = lab.udp_server(S4, 9000);
    lab.udp_send(S4, 9000, 50, 1000, GAP);
    let ks = settled_stats(&mut queue, |k| k.queue_total + k.user_dropped == 50);
    assert!(ks.user_dropped > 0 && ks.queue_dropped == 0, "{ks:?}");
    let held = ks.queue_total as usize;
    assert!(held >= 1 && held + ks.user_dropped as usize == 50, "{ks:?}");
    let worker = Worker::start(queue, |_| Verdict::Accept);
    assert_eq!(udp_count(&udp, held, Duration::from_secs(2)), held);
    lab.udp_send(S4, 9000, 5, 1000, GAP);
    assert_eq!(udp_count(&udp, 5, Duration::from_secs(2)), 5, "receiving recovered");
    let stats = worker.stop().stats();
    assert_eq!(stats.enobufs, 1, "{stats:?}");
    assert_eq!(stats.packets as usize, held + 5);
    assert_eq!(stats.recv_errors, 0);
}

/// With fail-open, overrunning the socket buffer loses nothing either: what the kernel
/// cannot deliver it accepts. The overrun is still reported (`ENOBUFS`), so the counter
/// shows that packets went through uninspected.
#[test]
fn fail_open_also_covers_a_full_socket_buffer() {
    let Some(lab) = Lab::new() else { return };
    lab.iptables(UDP_RULE);
    let mut queue = lab.open(QueueConfig { rcvbuf: 1, fail_open: true, ..cfg() });
    let udp = lab.udp_server(S4, 9000);
    lab.udp_send(S4, 9000, 50, 1000, GAP);
    // The datagrams that did not fit arrive uninspected; the others wait in the queue.
    let passed = udp_count(&udp, 50, Duration::from_millis(1500));
    let ks = settled_stats(&mut queue, |k| k.queue_total as usize + passed == 50);
    let held = ks.queue_total as usize;
    assert!(held >= 1 && passed >= 1 && held + passed == 50, "{ks:?} passed={passed}");
    // Unlike a full queue, an overrun happens after the id is taken: every one has an id.
    assert_eq!((ks.user_dropped, ks.id_sequence), (0, 50), "{ks:?}");
    let stats = queue.shutdown();
    assert_eq!((stats.accepted as usize, stats.enobufs), (held, 1), "{stats:?}");
    assert_eq!(udp_count(&udp, held, Duration::from_secs(2)), held);
}

/// `--queue-bypass` with nobody bound: traffic skips the rule. Without it: dropped.
#[test]
fn bypass_without_a_listener_passes_and_plain_rule_blocks() {
    let Some(lab) = Lab::new() else { return };
    lab.iptables("-A INPUT -p udp --dport 9000 -j NFQUEUE --queue-num 0 --queue-bypass");
    lab.iptables("-A INPUT -p udp --dport 9001 -j NFQUEUE --queue-num 1");
    let bypass = lab.udp_server(S4, 9000);
    let plain = lab.udp_server(S4, 9001);
    lab.udp_send(S4, 9000, 3, 32, GAP);
    lab.udp_send(S4, 9001, 3, 32, GAP);
    assert_eq!(udp_count(&bypass, 3, Duration::from_secs(2)), 3);
    assert_eq!(udp_count(&plain, 1, Duration::from_millis(500)), 0);
}

/// The enforcer drops everything, then goes away (its socket closes, as on a crash):
/// with `--queue-bypass` traffic flows again and the kernel has unbound the queue.
#[test]
fn traffic_flows_again_once_the_enforcer_is_gone() {
    let Some(lab) = Lab::new() else { return };
    lab.iptables("-A INPUT -p udp --dport 9000 -j NFQUEUE --queue-num 0 --queue-bypass");
    let udp = lab.udp_server(S4, 9000);
    let worker = Worker::start(lab.open(cfg()), |_| Verdict::Drop);
    lab.udp_send(S4, 9000, 3, 32, GAP);
    assert_eq!(udp_count(&udp, 1, Duration::from_millis(500)), 0, "bypass ignored while bound");
    drop(worker.stop());
    assert_eq!(lab.kernel_stats(0), None, "queue unbound when the socket closed");
    lab.udp_send(S4, 9000, 3, 32, GAP);
    assert_eq!(udp_count(&udp, 3, Duration::from_secs(2)), 3);
}

/// `shutdown` answers what is already in the socket with Accept before closing.
#[test]
fn shutdown_accepts_packets_already_delivered() {
    let Some(lab) = Lab::new() else { return };
    lab.iptables(UDP_RULE);
    let queue = lab.open(cfg());
    let udp = lab.udp_server(S4, 9000);
    lab.udp_send(S4, 9000, 5, 32, GAP);
    assert_eq!(udp_count(&udp, 1, Duration::from_millis(300)), 0, "held in the queue");
    let stats = queue.shutdown();
    assert_eq!((stats.packets, stats.accepted), (5, 5));
    assert_eq!(udp_count(&udp, 5, Duration::from_secs(2)), 5);
}

/// A second socket cannot take a queue that is bound; the error says so.
#[test]
fn a_bound_queue_cannot_be_bound_twice() {
    let Some(lab) = Lab::new() else { return };
    let _first = lab.open(cfg());
    let second = lab.server.enter(|| Queue::open(cfg()));
    match second {
        Err(e @ QueueError::InUse { queue: 0 }) => {
            assert!(e.to_string().contains("already bound"), "{e}");
        }
        other => panic!("expected InUse, got {other:?}"),
    }
    let bad = lab.server.enter(|| Queue::open(QueueConfig { batch: 0, ..cfg() }));
    assert!(matches!(bad, Err(QueueError::InvalidConfig { field: "batch", .. })));
}
