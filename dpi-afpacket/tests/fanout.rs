//! Fanout: both directions of every TCP flow land on the same socket of the group.

#![allow(clippy::unwrap_used)]

mod common;

use common::{pair, v4};
use dpi_afpacket::{Fanout, FanoutMode, TapConfig, TapPort};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Flow key with the two endpoints in canonical order.
type Flow = ((u32, u16), (u32, u16));

fn flow(frame: &[u8]) -> Option<Flow> {
    let v = v4(frame)?;
    if v.proto != 6 {
        return None;
    }
    let a = (u32::from_be_bytes(v.src), v.sport);
    let b = (u32::from_be_bytes(v.dst), v.dport);
    Some(if a <= b { (a, b) } else { (b, a) })
}

/// Connect from `from` to a listener in `to`, exchange a few KB both ways, close.
fn exchange(from: &netns_harness::AnonNs, to: &netns_harness::AnonNs, addr: &str) {
    let addr: SocketAddr = addr.parse().unwrap();
    let listener = to.enter(move || TcpListener::bind(addr)).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 4096];
        let mut got = 0;
        while got < 20_000 {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        s.write_all(&[7u8; 10_000]).unwrap();
        got
    });
    let mut c =
        from.enter(move || TcpStream::connect_timeout(&addr, Duration::from_secs(2))).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    c.write_all(&[1u8; 20_000]).unwrap();
    let mut back = vec![0u8; 10_000];
    c.read_exact(&mut back).unwrap();
    assert_eq!(server.join().unwrap(), 20_000);
}

#[test]
fn fanout_hash_keeps_both_directions_of_a_flow_together() {
    if !common::ready() {
        return;
    }
    let (a, b) = pair();
    let cfg = TapConfig {
        fanout: Some(Fanout { group_id: 0x4e56, mode: FanoutMode::Hash, defrag: false }),
        ..TapConfig::default()
    };
    let mut taps = b.enter(move || {
        [TapPort::open("eth0", &cfg).unwrap(), TapPort::open("eth0", &cfg).unwrap()]
    });

    // Eight connections: four opened from a to b, four from b to a.
    for i in 0..4 {
        exchange(&a, &b, &format!("10.9.0.2:{}", 7000 + i));
        exchange(&b, &a, &format!("10.9.0.1:{}", 7100 + i));
    }

    // flow -> (socket index -> (incoming frames, outgoing frames))
    let mut seen: HashMap<Flow, HashMap<usize, (u32, u32)>> = HashMap::new();
    let mut quiet = 0;
    while quiet < 5 {
        let mut n = 0;
        for (i, tap) in taps.iter_mut().enumerate() {
            tap.poll(Duration::from_millis(10)).unwrap();
            n += tap.recv(usize::MAX, |frame, meta| {
                if let Some(f) = flow(frame) {
                    let e = seen.entry(f).or_default().entry(i).or_default();
                    if meta.is_outgoing() {
                        e.1 += 1;
                    } else {
                        e.0 += 1;
                    }
                }
            });
        }
        quiet = if n == 0 { quiet + 1 } else { 0 };
    }

    assert_eq!(seen.len(), 8, "flows seen: {seen:?}");
    let mut per_socket = [0usize; 2];
    for (f, by_sock) in &seen {
        assert_eq!(by_sock.len(), 1, "flow {f:?} split over sockets: {by_sock:?}");
        let (&i, &(inc, out)) = by_sock.iter().next().unwrap();
        assert!(inc >= 3 && out >= 3, "flow {f:?}: {inc} in, {out} out");
        per_socket[i] += 1;
    }
    eprintln!("flows per socket: {per_socket:?}");
    for t in &mut taps {
        assert_eq!(t.kernel_stats().unwrap().drops, 0);
    }
}
