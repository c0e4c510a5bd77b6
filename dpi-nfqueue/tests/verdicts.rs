//! Verdicts through real kernels: a client and a server namespace, iptables-nft /
//! ip6tables-nft rules in the server queueing UDP, TCP and ICMP to queue 0, and a
//! [`Queue`] opened inside the server namespace answering them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dpi_nfqueue::{Hook, QueueConfig, Verdict};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const Q: &str = "-j NFQUEUE --queue-num 0";

#[test]
fn accept_lets_udp_and_tcp_through() {
    let Some(lab) = Lab::new() else { return };
    lab.iptables(&format!("-A INPUT -p udp --dport 9000 {Q}"));
    lab.iptables(&format!("-A INPUT -p tcp --dport 9001 {Q}"));
    let mut queue = lab.open(cfg());
    let ks = queue.kernel_stats().expect("queue 0 listed in the server namespace");
    assert_eq!((ks.portid, ks.copy_mode, ks.copy_range), (queue.portid(), 2, 65531));
    assert_eq!(lab.kernel_stats(0), Some(ks), "free function, same namespace, same line");

    let hooks = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = hooks.clone();
    let worker = Worker::start(queue, move |p| {
        seen.lock().unwrap().push((p.hook(), p.in_ifindex().is_some(), l4(p.payload())));
        Verdict::Accept
    });
    let udp = lab.udp_server(S4, 9000);
    lab.udp_send(S4, 9000, 5, 32, Duration::ZERO);
    assert_eq!(udp_count(&udp, 5, Duration::from_secs(2)), 5);
    let server = lab.tcp_echo(S4, 9001, Duration::from_secs(2));
    assert_eq!(lab.tcp_exchange(S4, 9001, b"hello nfqueue").unwrap(), b"hello nfqueue");
    assert_eq!(server.join().unwrap(), 13);

    let stats = worker.stop().stats();
    let hooks = hooks.lock().unwrap();
    assert!(stats.packets >= 5 + 3, "{stats:?}"); // 5 datagrams, SYN, ACK, data...
    assert_eq!(stats.accepted, stats.packets);
    assert_eq!((stats.dropped, stats.malformed, stats.netlink_errors), (0, 0, 0));
    assert!(hooks.iter().all(|(h, has_in, _)| *h == Hook::LocalIn && *has_in));
    assert_eq!(hooks.iter().filter(|(_, _, l)| *l == Some((17, 9000))).count(), 5);
    assert!(hooks.iter().any(|(_, _, l)| *l == Some((6, 9001))));
}

#[test]
fn drop_blocks_udp_and_tcp() {
    let Some(lab) = Lab::new() else { return };
    lab.iptables(&format!("-A INPUT -p udp --dport 9000 {Q}"));
    lab.iptables(&format!("-A INPUT -p tcp --dport 9001 {Q}"));
    let worker = Worker::start(lab.open(cfg()), |_| Verdict::Drop);
    let udp = lab.udp_server(S4, 9000);
    lab.udp_send(S4, 9000, 3, 32, Duration::ZERO);
    assert_eq!(udp_count(&udp, 1, Duration::from_millis(700)), 0);
    let _server = lab.tcp_echo(S4, 9001, Duration::from_millis(1500));
    let err = lab.tcp_exchange(S4, 9001, b"x").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "a silent drop, no reset: {err}");
    let stats = worker.stop().stats();
    assert!(stats.dropped > 3, "{stats:?}"); // the 3 datagrams and at least one SYN
    assert_eq!(stats.accepted, 0);
}

#[test]
fn selective_verdict_drops_one_tcp_port_only() {
    let Some(lab) = Lab::new() else { return };
    lab.iptables(&format!("-A INPUT -p udp --dport 9000 {Q}"));
    lab.iptables(&format!("-A INPUT -p tcp -m multiport --dports 9001,9002 {Q}"));
    let worker = Worker::start(lab.open(cfg()), |p| match l4(p.payload()) {
        Some((6, 9002)) => Verdict::Drop,
        _ => Verdict::Accept,
    });
    let allowed = lab.tcp_echo(S4, 9001, Duration::from_secs(2));
    let _denied = lab.tcp_echo(S4, 9002, Duration::from_millis(1500));
    assert_eq!(lab.tcp_exchange(S4, 9001, b"allowed").unwrap(), b"allowed");
    assert!(lab.tcp_exchange(S4, 9002, b"denied").is_err());
    let udp = lab.udp_server(S4, 9000);
    lab.udp_send(S4, 9000, 2, 32, Duration::ZERO);
    assert_eq!(udp_count(&udp, 2, Duration::from_secs(2)), 2);
    assert_eq!(allowed.join().unwrap(), 7);
    let stats = worker.stop().stats();
    assert!(stats.accepted > 0 && stats.dropped > 0, "{stats:?}");
}

#[test]
fn ipv6_rules_use_the_same_queue() {
    let Some(lab) = Lab::new() else { return };
    lab.ip6tables(&format!("-A INPUT -p udp --dport 9000 {Q}"));
    lab.ip6tables(&format!("-A INPUT -p tcp -m multiport --dports 9001,9002 {Q}"));
    let v6 = Arc::new(AtomicBool::new(true));
    let all_v6 = v6.clone();
    let worker = Worker::start(lab.open(cfg()), move |p| {
        if p.hw_protocol() != 0x86dd || p.ethertype() != 0x86dd {
            all_v6.store(false, Ordering::Relaxed);
        }
        match l4(p.payload()) {
            Some((6, 9002)) => Verdict::Drop,
            _ => Verdict::Accept,
        }
    });
    let udp = lab.udp_server(S6, 9000);
    lab.udp_send(S6, 9000, 3, 32, Duration::ZERO);
    assert_eq!(udp_count(&udp, 3, Duration::from_secs(2)), 3);
    let allowed = lab.tcp_echo(S6, 9001, Duration::from_secs(2));
    let _denied = lab.tcp_echo(S6, 9002, Duration::from_millis(1500));
    assert_eq!(lab.tcp_exchange(S6, 9001, b"over v6").unwrap(), b"over v6");
    assert!(lab.tcp_exchange(S6, 9002, b"denied").is_err());
    assert_eq!(allowed.join().unwrap(), 7);
    let stats = worker.stop().stats();
    assert!(v6.load(Ordering::Relaxed));
    assert!(stats.packets >= 3 + 3 && stats.dropped >= 1, "{stats:?}");
}

#[test]
fn ping_is_accepted_then_dropped_v4_and_v6() {
    let Some(lab) = Lab::new() else { return };
    lab.iptables(&format!("-A INPUT -p icmp --icmp-type echo-request {Q}"));
    // Only echo requests: neighbour discovery must not depend on the queue.
    lab.ip6tables(&format!("-A INPUT -p ipv6-icmp --icmpv6-type echo-request {Q}"));
    let drop = Arc::new(AtomicBool::new(false));
    let flag = drop.clone();
    let worker = Worker::start(lab.open(cfg()), move |p| {
        assert!(matches!(l4(p.payload()), Some((1 | 58, 0))));
        if flag.load(Ordering::Relaxed) {
            Verdict::Drop
        } else {
            Verdict::Accept
        }
    });
    assert!(lab.ping(S4), "ping accepted");
    assert!(lab.ping(S6), "ping6 accepted");
    drop.store(true, Ordering::Relaxed);
    assert!(!lab.ping(S4), "ping dropped");
    assert!(!lab.ping(S6), "ping6 dropped");
    let stats = worker.stop().stats();
    assert_eq!((stats.accepted, stats.dropped), (2, 2), "{stats:?}");
}

#[test]
fn a_burst_is_answered_with_batched_verdicts() {
    let Some(lab) = Lab::new() else { return };
    lab.iptables(&format!("-A INPUT -p udp --dport 9000 {Q}"));
    let queue = lab.open(QueueConfig { batch: 64, ..cfg() });
    let udp = lab.udp_server(S4, 9000);
    // Queue the whole burst before anyone reads it, so it comes back in full batches.
    lab.udp_send(S4, 9000, 200, 64, Duration::ZERO);
    assert!(eventually(Duration::from_secs(2), || {
        lab.kernel_stats(0).is_some_and(|k| k.queue_total == 200)
    }));
    let worker = Worker::start(queue, |_| Verdict::Accept);
    assert_eq!(udp_count(&udp, 200, Duration::from_secs(2)), 200);
    let stats = worker.stop().stats();
    assert_eq!(stats.packets, 200);
    assert!(stats.batch_msgs >= 1, "{stats:?}");
    // 200 packets in batches of at most 64: 4 batch messages, whatever the split.
    assert!(stats.verdict_messages() <= 200 / 16, "{stats:?}");
    assert!(stats.recv_calls <= 200 / 16, "{stats:?}");
    // Closing the socket unbinds the queue at once.
    assert_eq!(lab.kernel_stats(0), None);
}

/// GSO on: the sender's TCP super-packets (TSO on the veth) are queued whole at OUTPUT
/// and flagged; GSO off: the kernel segments them to the MTU before queueing.
#[test]
fn gso_flag_queues_super_packets_whole() {
    let Some(lab) = Lab::new() else { return };
    for gso in [true, false] {
        // Queue in the *client* namespace, at OUTPUT, where TCP hands down super-packets.
        lab.client
            .run(&["iptables-nft", "-F", "OUTPUT"])
            .and_then(|_| {
                lab.client.run(&[
                    "iptables-nft",
                    "-A",
                    "OUTPUT",
                    "-p",
                    "tcp",
                    "--dport",
                    "9003",
                    "-j",
                    "NFQUEUE",
                    "--queue-num",
                    "3",
                ])
            })
            .unwrap();
        let queue = lab
            .client
            .enter(move || dpi_nfqueue::Queue::open(QueueConfig { gso, ..QueueConfig::new(3) }))
            .unwrap();
        let max_len = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let max = max_len.clone();
        let worker = Worker::start(queue, move |p| {
            assert_eq!(p.hook(), Hook::LocalOut);
            max.fetch_max(p.payload().len(), Ordering::Relaxed);
            Verdict::Accept
        });
        let server = lab.tcp_echo(S4, 9003, Duration::from_secs(2));
        let sent = lab.client.enter(|| {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect_timeout(&sockaddr(S4, 9003), IO_TIMEOUT)?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.set_write_timeout(Some(Duration::from_secs(2)))?;
            let chunk = vec![7u8; 256 << 10];
            s.write_all(&chunk)?;
            let mut back = vec![0u8; chunk.len()];
            s.read_exact(&mut back)?;
            std::io::Result::Ok(back == chunk)
        });
        assert!(sent.unwrap(), "256 KiB echoed through the queue (gso={gso})");
        assert_eq!(server.join().unwrap(), 256 << 10);
        let stats = worker.stop().stats();
        let max = max_len.load(Ordering::Relaxed);
        if gso {
            assert!(stats.gso > 0 && max > 1500, "gso={gso} max={max} {stats:?}");
        } else {
            assert!(stats.gso == 0 && max <= 1500, "gso={gso} max={max} {stats:?}");
        }
    }
}
