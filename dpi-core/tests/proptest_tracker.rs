//! Property tests: on arbitrary sequences of TCP segments (any flags, sequence numbers
//! near each other so that retransmissions, overlaps, holes and out-of-window segments all
//! happen), UDP datagrams, ICMP messages and IPv4 fragments between a few hosts, the engine
//! never panics, never exceeds its bounds, ends every session it started exactly once, and
//! accounts every packet it attached to a session.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dpi_core::{Config, Ctx, Event, FragConfig, Time};
use pcapgen::{Host, IpPath, TcpFlags, TcpSegment};
use proptest::prelude::*;
use std::collections::HashMap;

const MAX_SESSIONS: usize = 4;
const MAX_BUFS: usize = 2;

#[derive(Debug, Clone)]
enum Pkt {
    Tcp { flow: u8, reverse: bool, flags: u8, seq_off: i32, ack_off: i32, len: u16, window: u16 },
    Udp { flow: u8, reverse: bool, len: u16 },
    Icmp { reverse: bool, ty: u8, id: u8 },
    Frag { id: u8, offset8: u16, len8: u8, more: bool },
}

fn pkt() -> impl Strategy<Value = Pkt> {
    prop_oneof![
        6 => (0u8..3, any::<bool>(), any::<u8>(), -3000i32..70_000, -3000i32..70_000, 0u16..1500, any::<u16>())
            .prop_map(|(flow, reverse, flags, seq_off, ack_off, len, window)| Pkt::Tcp {
                flow, reverse, flags, seq_off, ack_off, len, window
            }),
        2 => (0u8..3, any::<bool>(), 0u16..600).prop_map(|(flow, reverse, len)| Pkt::Udp { flow, reverse, len }),
        1 => (any::<bool>(), prop_oneof![Just(0u8), Just(8), Just(3), Just(11), any::<u8>()], 0u8..3)
            .prop_map(|(reverse, ty, id)| Pkt::Icmp { reverse, ty, id }),
        1 => (0u8..3, 0u16..20, 1u8..40, any::<bool>())
            .prop_map(|(id, offset8, len8, more)| Pkt::Frag { id, offset8, len8, more }),
    ]
}

fn hosts() -> (Host, Host) {
    (Host::v4(1, [10, 0, 0, 1]), Host::v4(2, [10, 0, 0, 2]))
}

fn build(p: &Pkt) -> Vec<u8> {
    let (a, b) = hosts();
    match *p {
        Pkt::Tcp { flow, reverse, flags, seq_off, ack_off, len, window } => {
            let (src, dst) = if reverse { (b, a) } else { (a, b) };
            let (sp, dp) = if reverse {
                (80, 40_000 + u16::from(flow))
            } else {
                (40_000 + u16::from(flow), 80)
            };
            let (base_s, base_a) =
                if reverse { (2_000_000u32, 1_000_000u32) } else { (1_000_000, 2_000_000) };
            let seg = TcpSegment {
                seq: base_s.wrapping_add_signed(seq_off),
                ack: base_a.wrapping_add_signed(ack_off),
                flags: TcpFlags(flags & 0x3f),
                window,
                payload: vec![0x41; usize::from(len)],
                ..TcpSegment::default()
            };
            IpPath::new(src, dst).tcp(sp, dp, &seg)
        }
        Pkt::Udp { flow, reverse, len } => {
            let (src, dst) = if reverse { (b, a) } else { (a, b) };
            let (sp, dp) = if reverse {
                (9000, 50_000 + u16::from(flow))
            } else {
                (50_000 + u16::from(flow), 9000)
            };
            IpPath::new(src, dst).udp(sp, dp, &vec![0x42; usize::from(len)])
        }
        Pkt::Icmp { reverse, ty, id } => {
            let (src, dst) = if reverse { (b, a) } else { (a, b) };
            let mut path = IpPath::new(src, dst);
            let rest = [0, id, 0, 1];
            // Quote a UDP packet of flow 0 so errors may match a session.
            let quoted = IpPath::new(a, b).udp_packet(50_000, 9000, b"q");
            path.icmp(ty, 3, rest, &quoted)
        }
        Pkt::Frag { id, offset8, len8, more } => {
            let mut path = IpPath::new(a, b);
            let data = vec![0x43; usize::from(len8) * 8];
            let whole = path.udp_packet(50_100 + u16::from(id), 9000, &vec![0x44; 400]);
            let mut f = pcapgen::frag::ipv4_fragment(&whole, usize::from(offset8) * 8, &data, more);
            // Give each datagram its own identification.
            f[4] = 0x7e;
            f[5] = id;
            pcapgen::checksum::fix_ipv4_header_checksum(&mut f);
            path.frame(&f)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn tracker_is_total_and_bounded(pkts in prop::collection::vec((pkt(), 0u32..3_000_000), 1..120)) {
        let cfg = Config {
            max_sessions: MAX_SESSIONS,
            max_stream_buffers: MAX_BUFS,
            frag: FragConfig { max_datagrams: 2, max_bytes: 4096, timeout_secs: 10 },
            ..Config::default()
        };
        let mut ctx = Ctx::new(cfg);
        let mut now = 1_767_225_600_000_000u64;
        let mut starts: HashMap<u64, u32> = HashMap::new();
        let mut ends: HashMap<u64, u32> = HashMap::new();
        let mut attached = 0u64;
        let collect = |ctx: &mut Ctx, starts: &mut HashMap<u64, u32>, ends: &mut HashMap<u64, u32>, attached: &mut u64| {
            while let Some(e) = ctx.poll_event() {
                match e {
                    Event::SessionStart(r) => *starts.entry(r.id).or_default() += 1,
                    Event::SessionEnd(r) => {
                        *ends.entry(r.id).or_default() += 1;
                        *attached += r.to_server.pkts + r.to_client.pkts;
                    }
                    _ => {}
                }
            }
        };
        for (p, dt) in &pkts {
            now += u64::from(*dt);
            ctx.handle_timeout(Time::from_micros(now));
            let mut frame = build(p);
            let _ = ctx.recv_packet(&mut frame);
            prop_assert!(ctx.session_count() <= MAX_SESSIONS);
            prop_assert!(ctx.stream_buffers_in_use() <= MAX_BUFS);
            prop_assert!(ctx.fragment_count() <= 2);
            collect(&mut ctx, &mut starts, &mut ends, &mut attached);
        }
        while ctx.flush() > 0 {
            collect(&mut ctx, &mut starts, &mut ends, &mut attached);
        }
        collect(&mut ctx, &mut starts, &mut ends, &mut attached);
        prop_assert_eq!(ctx.session_count(), 0);
        prop_assert_eq!(ctx.stream_buffers_in_use(), 0);
        prop_assert!(starts.values().all(|&n| n == 1));
        prop_assert_eq!(&starts, &ends, "every session started once and ended once");
        let c = ctx.counters();
        prop_assert_eq!(c.events_dropped, 0);
        // Every packet that reached a tracker and was not turned away is in some record.
        let expected = c.tcp - c.tcp_no_session + c.udp + c.icmp - c.icmp_errors_matched + c.other_ip;
        prop_assert_eq!(attached, expected);
        let created = c.sessions_tcp + c.sessions_udp + c.sessions_icmp + c.sessions_other;
        prop_assert_eq!(created as usize, starts.len());
    }
}

/// Which frame, which bytes to overwrite, where to cut it.
type Mutation = (usize, Vec<(usize, u8)>, Option<usize>);

/// A frame of a generated scenario with random bytes overwritten and possibly cut short.
fn mutated_frames() -> impl Strategy<Value = Vec<Mutation>> {
    let pick = (
        0usize..10_000,
        prop::collection::vec((0usize..200, any::<u8>()), 0..4),
        prop::option::of(0usize..200),
    );
    prop::collection::vec(pick, 1..80)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Real frames with corrupted headers (flipped length fields, flags, offsets, checksums
    /// and truncations): never a panic, always within bounds, every session ends once.
    #[test]
    fn corrupted_real_frames_are_handled(picks in mutated_frames()) {
        let all: Vec<pcapgen::Frame> = pcapgen::scenarios().into_iter().flat_map(|s| s.frames).collect();
        let cfg = Config {
            max_sessions: MAX_SESSIONS,
            max_stream_buffers: MAX_BUFS,
            frag: FragConfig { max_datagrams: 2, max_bytes: 4096, timeout_secs: 10 },
            verify_checksums: picks.len() % 2 == 0,
            ..Config::default()
        };
        let mut ctx = Ctx::new(cfg);
        let mut starts = 0u64;
        let mut ends = 0u64;
        let mut now = 1_767_225_600_000_000u64;
        for (i, edits, cut) in &picks {
            let f = &all[i % all.len()];
            let mut data = f.data.clone();
            for &(pos, byte) in edits {
                if !data.is_empty() {
                    let n = data.len();
                    data[pos % n] = byte;
                }
            }
            if let Some(c) = cut {
                data.truncate(*c);
            }
            now += 250_000;
            ctx.handle_timeout(Time::from_micros(now));
            let _ = ctx.recv_packet(&mut data);
            prop_assert!(ctx.session_count() <= MAX_SESSIONS);
            prop_assert!(ctx.stream_buffers_in_use() <= MAX_BUFS);
            while let Some(e) = ctx.poll_event() {
                match e {
                    Event::SessionStart(_) => starts += 1,
                    Event::SessionEnd(_) => ends += 1,
                    _ => {}
                }
            }
        }
        while ctx.flush() > 0 {}
        while let Some(e) = ctx.poll_event() {
            if let Event::SessionEnd(_) = e {
                ends += 1;
            }
        }
        prop_assert_eq!(starts, ends);
        prop_assert_eq!(ctx.stream_buffers_in_use(), 0);
    }
}
