//! The harness itself: two namespaces joined by a veth pair pass UDP and TCP; processes
//! and namespaces go away on drop.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use netns_harness::{require_root, AnonNs};
use std::io::{Read, Write};
use std::time::Duration;

#[test]
fn veth_pair_carries_udp_and_tcp_between_namespaces() {
    if !require_root(&["ip"]) {
        return;
    }
    let a = AnonNs::new().unwrap();
    let b = AnonNs::new().unwrap();
    a.veth_to("eth0", &b, "eth0").unwrap();
    a.addr("eth0", "10.77.0.1/24").unwrap();
    b.addr("eth0", "10.77.0.2/24").unwrap();
    a.up("eth0").unwrap();
    b.up("eth0").unwrap();
    let listener = b.enter(|| std::net::TcpListener::bind("10.77.0.2:9000").unwrap());
    let udp = b.enter(|| std::net::UdpSocket::bind("10.77.0.2:9001").unwrap());
    udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
    });
    let got = a.enter(|| {
        let u = std::net::UdpSocket::bind("10.77.0.1:0").unwrap();
        u.send_to(b"ping", "10.77.0.2:9001").unwrap();
        let addr = "10.77.0.2:9000".parse().unwrap();
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        buf
    });
    assert_eq!(&got, b"hello");
    let mut buf = [0u8; 8];
    let (n, _) = udp.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    server.join().unwrap();
    // The root namespace never saw these links.
    let root = std::process::Command::new("ip").args(["-o", "link"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&root.stdout).contains("10.77."));
}

#[test]
fn spawned_processes_die_with_the_namespace() {
    if !require_root(&["ip", "sleep"]) {
        return;
    }
    let pid = {
        let a = AnonNs::new().unwrap();
        a.spawn(&["sleep", "30"]).unwrap()
    };
    std::thread::sleep(Duration::from_millis(100));
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "sleep {pid} survived");
}
