//! Shared set-up of the end-to-end tests: a client and a server namespace joined by a
//! veth pair (IPv4 and IPv6), iptables rules in the server, a queue worker thread with a
//! stop flag, and traffic helpers that all carry explicit timeouts (≤ 2 s per call).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use dpi_nfqueue::{kernel_stats, Packet, Queue, QueueConfig, QueueKernelStats, Verdict};
use netns_harness::{require_root, AnonNs};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const C4: &str = "10.99.0.1";
pub const S4: &str = "10.99.0.2";
pub const C6: &str = "fd00:99::1";
pub const S6: &str = "fd00:99::2";
pub const CMAC: &str = "02:00:00:00:99:01";
pub const SMAC: &str = "02:00:00:00:99:02";

/// The longest any single socket call in these tests may block.
pub const IO_TIMEOUT: Duration = Duration::from_secs(1);

pub struct Lab {
    pub client: AnonNs,
    pub server: AnonNs,
}

impl Lab {
    /// The two namespaces, or `None` (test skipped) without root and tools.
    pub fn new() -> Option<Lab> {
        if !require_root(&["ip", "iptables-nft", "ip6tables-nft", "ping"]) {
            return None;
        }
        let client = AnonNs::new().unwrap();
        let server = AnonNs::new().unwrap();
        client.veth_to("eth0", &server, "eth0").unwrap();
        client.addr("eth0", &format!("{C4}/24")).unwrap();
        server.addr("eth0", &format!("{S4}/24")).unwrap();
        client.addr("eth0", &format!("{C6}/64")).unwrap();
        server.addr("eth0", &format!("{S6}/64")).unwrap();
        client.mac("eth0", CMAC).unwrap();
        server.mac("eth0", SMAC).unwrap();
        client.up("eth0").unwrap();
        server.up("eth0").unwrap();
        // Static neighbours: no ARP or neighbour discovery in the way (a fresh link's
        // first IPv6 neighbour solicitation can go unanswered for a second).
        for (ns, peer4, peer6, mac) in [(&client, S4, S6, SMAC), (&server, C4, C6, CMAC)] {
            for peer in [peer4, peer6] {
                ns.run(&[
                    "ip",
                    "neigh",
                    "replace",
                    peer,
                    "lladdr",
                    mac,
                    "dev",
                    "eth0",
                    "nud",
                    "permanent",
                ])
                .unwrap();
            }
        }
        Some(Lab { client, server })
    }

    /// `iptables-nft` in the server namespace, e.g. `"-A INPUT -p udp --dport 9000 -j
    /// NFQUEUE --queue-num 0"`.
    pub fn iptables(&self, rule: &str) {
        run_rule(&self.server, "iptables-nft", rule);
    }

    pub fn ip6tables(&self, rule: &str) {
        run_rule(&self.server, "ip6tables-nft", rule);
    }

    /// Open a queue inside the server namespace.
    pub fn open(&self, cfg: QueueConfig) -> Queue {
        self.server.enter(move || Queue::open(cfg)).unwrap()
    }

    /// The kernel's counters of queue `num` in the server namespace.
    pub fn kernel_stats(&self, num: u16) -> Option<QueueKernelStats> {
        self.server.enter(move || kernel_stats(num))
    }

    /// A UDP socket bound in the server namespace, with a read timeout.
    pub fn udp_server(&self, addr: &str, port: u16) -> UdpSocket {
        let a: SocketAddr = sockaddr(addr, port);
        let s = self.server.enter(move || UdpSocket::bind(a)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        s
    }

    /// Send `n` datagrams of `len` bytes from the client to `addr:port`, `gap` apart.
    pub fn udp_send(&self, addr: &str, port: u16, n: usize, len: usize, gap: Duration) {
        let to = sockaddr(addr, port);
        self.client.enter(move || {
            let from: SocketAddr = if to.is_ipv6() { sockaddr(C6, 0) } else { sockaddr(C4, 0) };
            let s = UdpSocket::bind(from).unwrap();
            let buf = vec![0x5a; len];
            for _ in 0..n {
                s.send_to(&buf, to).unwrap();
                if !gap.is_zero() {
                    std::thread::sleep(gap);
                }
            }
        });
    }

    /// A one-connection TCP echo server in the server namespace (gives up after
    /// `accept_for`).
    pub fn tcp_echo(&self, addr: &str, port: u16, accept_for: Duration) -> JoinHandle<usize> {
        let a = sockaddr(addr, port);
        let l = self.server.enter(move || TcpListener::bind(a)).unwrap();
        std::thread::spawn(move || echo_once(l, accept_for))
    }

    /// Connect from the client (1 s connect timeout), send `msg`, read it back.
    pub fn tcp_exchange(&self, addr: &str, port: u16, msg: &'static [u8]) -> io::Result<Vec<u8>> {
        let to = sockaddr(addr, port);
        self.client.enter(move || {
            let mut s = TcpStream::connect_timeout(&to, IO_TIMEOUT)?;
            s.set_read_timeout(Some(IO_TIMEOUT))?;
            s.set_write_timeout(Some(IO_TIMEOUT))?;
            s.write_all(msg)?;
            let mut back = vec![0; msg.len()];
            s.read_exact(&mut back)?;
            Ok(back)
        })
    }

    /// One ping from the client (1 s deadline): true if answered.
    pub fn ping(&self, addr: &str) -> bool {
        let mut argv = vec!["ping", "-c", "1", "-W", "1", "-q"];
        if addr.contains(':') {
            argv.insert(1, "-6");
        }
        argv.push(addr);
        self.client.run(&argv).is_ok()
    }
}

fn run_rule(ns: &AnonNs, bin: &str, rule: &str) {
    let mut argv = vec![bin];
    argv.extend(rule.split_whitespace());
    ns.run(&argv).unwrap();
}

pub fn sockaddr(addr: &str, port: u16) -> SocketAddr {
    if addr.contains(':') {
        format!("[{addr}]:{port}").parse().unwrap()
    } else {
        format!("{addr}:{port}").parse().unwrap()
    }
}

fn echo_once(l: TcpListener, accept_for: Duration) -> usize {
    l.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + accept_for;
    let mut s = loop {
        match l.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => return 0,
        }
    };
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut total = 0;
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 || s.write_all(&buf[..n]).is_err() {
            break;
        }
        total += n;
    }
    total
}

/// Receive datagrams until `want` have arrived or `wait` has passed; returns the count.
pub fn udp_count(s: &UdpSocket, want: usize, wait: Duration) -> usize {
    let deadline = Instant::now() + wait;
    let mut got = 0;
    let mut buf = [0u8; 2048];
    while got < want && Instant::now() < deadline {
        if s.recv_from(&mut buf).is_ok() {
            got += 1;
        }
    }
    got
}

pub use netns_harness::eventually;

/// (protocol, destination port) of an IPv4 or IPv6 packet without extension headers.
pub fn l4(ip: &[u8]) -> Option<(u8, u16)> {
    let (proto, off) = match ip.first()? >> 4 {
        4 => (*ip.get(9)?, usize::from(ip.first()? & 0x0f) * 4),
        6 => (*ip.get(6)?, 40),
        _ => return None,
    };
    let port = match proto {
        6 | 17 => u16::from_be_bytes([*ip.get(off + 2)?, *ip.get(off + 3)?]),
        _ => 0,
    };
    Some((proto, port))
}

/// A queue served on its own thread until stopped; the verdict comes from `f`.
pub struct Worker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Queue>>,
}

impl Worker {
    pub fn start<F>(mut queue: Queue, mut f: F) -> Worker
    where
        F: FnMut(&mut Packet<'_>) -> Verdict + Send + 'static,
    {
        queue.set_poll_timeout(Duration::from_millis(50));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                queue.recv_batch(64, &mut f).unwrap();
            }
            queue
        });
        Worker { stop, handle: Some(handle) }
    }

    /// Stop the thread and take the queue back.
    pub fn stop(mut self) -> Queue {
        self.stop.store(true, Ordering::Relaxed);
        let h = self.handle.take().unwrap();
        h.join().unwrap()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Queue 0 with the defaults (fail-open, GSO).
pub fn cfg() -> QueueConfig {
    QueueConfig::new(0)
}
