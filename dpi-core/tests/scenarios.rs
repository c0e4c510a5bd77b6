//! The engine on the project's own targeted captures (pcapgen scenarios): each test checks
//! what the tracker must conclude from one situation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{run, scenario, Run};
use dpi_core::{
    Action, BypassReason, Config, DropReason, EndReason, Event, TcpState, ThreatKind, Time,
};

fn default_run(name: &str) -> Run {
    run(&scenario(name), Config::default())
}

fn tcp_states(r: &dpi_core::SessionRecord) -> (TcpState, TcpState) {
    let t = r.tcp.expect("tcp");
    (t.client_state, t.server_state)
}

#[test]
fn handshake_then_fin_close() {
    let r = default_run("tcp_handshake_close");
    assert_eq!(r.ends.len(), 1);
    let s = &r.ends[0];
    assert_eq!(s.client.to_string(), "10.0.0.1:40000");
    assert_eq!(s.server.to_string(), "10.0.0.2:80");
    assert!(s.established && s.closed && !s.mid_stream);
    assert_eq!(tcp_states(s), (TcpState::TimeWait, TcpState::Close));
    assert_eq!((s.to_server.pkts, s.to_client.pkts), (6, 4));
    assert_eq!(s.to_server.pkts + s.to_client.pkts, 10);
    assert_eq!(s.to_server.bytes + s.to_client.bytes, r.counters.bytes);
    assert!(r.actions.iter().all(|a| *a == Action::Forward));
    // The start record came first, with the same id and endpoints.
    assert_eq!(r.starts.len(), 1);
    assert_eq!((r.starts[0].id, r.starts[0].client), (s.id, s.client));
    assert_eq!(r.starts[0].end, None);
}

#[test]
fn closed_session_ends_after_the_short_linger_timeout() {
    let mut frames = scenario("tcp_handshake_close");
    let last = frames.last().unwrap().ts_micros;
    // A packet of an unrelated flow 16 s later drives the clock past the 15 s linger.
    let mut late = scenario("udp_dns").remove(0);
    late.ts_micros = last + 16_000_000;
    frames.push(late);
    let r = run(&frames, Config::default());
    let tcp = r.ends.iter().find(|e| e.proto == 6).unwrap();
    assert_eq!(tcp.end, Some(EndReason::TcpFin));
    assert_eq!(r.counters.sessions_timed_out, 1);
}

#[test]
fn simultaneous_open_establishes() {
    let r = default_run("tcp_simultaneous_open");
    let s = &r.ends[0];
    assert!(s.established && s.closed);
    assert_eq!(r.ends.len(), 1);
    assert_eq!(r.counters.tcp_unexpected_syn, 0);
}

#[test]
fn rst_closes_both_ends() {
    let r = default_run("tcp_rst");
    let s = &r.ends[0];
    assert_eq!(tcp_states(s), (TcpState::Close, TcpState::Close));
    assert!(s.closed);
    // Ended by the flush here; had its timer fired the reason would be tcp_rst.
    let mut frames = scenario("tcp_rst");
    let mut late = scenario("udp_dns").remove(0);
    late.ts_micros = frames.last().unwrap().ts_micros + 15_000_001;
    frames.push(late);
    let r = run(&frames, Config::default());
    assert_eq!(r.ends.iter().find(|e| e.proto == 6).unwrap().end, Some(EndReason::TcpRst));
}

#[test]
fn half_close_keeps_data_flowing_the_other_way() {
    let r = default_run("tcp_half_close");
    let s = &r.ends[0];
    assert!(s.closed);
    assert_eq!(tcp_states(s), (TcpState::TimeWait, TcpState::Close));
    // Server data after the client's FIN was delivered in order: request + 3 segments.
    assert_eq!(r.counters.stream_bytes_delivered, 180);
}

#[test]
fn half_close_uses_the_half_closed_timeout() {
    // Cut the capture right after the server ACKs the client's FIN (frame 6: handshake 3,
    // request, FIN, ACK of FIN). 89 s later the session is still there; at 90 s it is gone.
    let frames = scenario("tcp_half_close");
    let cut = &frames[..6];
    let t = cut.last().unwrap().ts_micros;
    let mut ctx = dpi_core::Ctx::new(Config::default());
    for f in cut {
        ctx.handle_timeout(Time::from_micros(f.ts_micros));
        ctx.recv_packet(&mut f.data.clone());
    }
    ctx.handle_timeout(Time::from_micros(t + 89_000_000));
    assert_eq!(ctx.session_count(), 1);
    ctx.handle_timeout(Time::from_micros(t + 91_000_000));
    assert_eq!(ctx.session_count(), 0);
}

#[test]
fn retransmissions_are_counted_not_redelivered() {
    let r = default_run("tcp_retransmission");
    let s = &r.ends[0];
    assert_eq!(s.tcp.unwrap().retransmissions, 2, "one SYN and one data segment");
    assert_eq!(r.counters.tcp_retransmissions, 2);
    assert!(s.established && s.closed);
}

type Chunks = Vec<(dpi_core::Dir, Vec<u8>)>;

/// An inspector recording every payload delivery.
#[derive(Default)]
struct Recorder {
    chunks: std::sync::Arc<std::sync::Mutex<Chunks>>,
    consume_at_most: Option<usize>,
}

impl dpi_core::Inspector for Recorder {
    fn on_payload(
        &mut self,
        _s: &dpi_core::SessionView<'_>,
        dir: dpi_core::Dir,
        data: &[u8],
        _cx: &mut dpi_core::HookCx<'_>,
    ) -> usize {
        self.chunks.lock().unwrap().push((dir, data.to_vec()));
        self.consume_at_most.map_or(data.len(), |m| m.min(data.len()))
    }
}

fn delivered(name: &str, consume_at_most: Option<usize>) -> (Chunks, Run) {
    let rec = Recorder { consume_at_most, ..Default::default() };
    let chunks = rec.chunks.clone();
    let mut ctx = dpi_core::Ctx::with_inspector(Config::default(), Box::new(rec));
    let mut ends = vec![];
    for f in scenario(name) {
        ctx.handle_timeout(Time::from_micros(f.ts_micros));
        ctx.recv_packet(&mut f.data.clone());
    }
    while ctx.flush() > 0 {}
    while let Some(e) = ctx.poll_event() {
        if let Event::SessionEnd(r) = e {
            ends.push(r);
        }
    }
    let counters = *ctx.counters();
    assert_eq!(ctx.stream_buffers_in_use(), 0);
    let out = chunks.lock().unwrap().clone();
    (out, Run { actions: vec![], starts: vec![], ends, events: vec![], counters })
}

fn client_stream(chunks: &[(dpi_core::Dir, Vec<u8>)]) -> Vec<u8> {
    chunks
        .iter()
        .filter(|(d, _)| *d == dpi_core::Dir::ToServer)
        .flat_map(|(_, c)| c.clone())
        .collect()
}

#[test]
fn out_of_order_segments_are_delivered_in_order() {
    let (chunks, r) = delivered("tcp_out_of_order", None);
    let stream = client_stream(&chunks);
    assert_eq!(stream.len(), 3000);
    // pcapgen's filler puts a label at the start of each 1000-byte segment.
    let starts: Vec<_> = (0..3)
        .map(|i| String::from_utf8_lossy(&stream[i * 1000..i * 1000 + 8]).to_string())
        .collect();
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(starts, sorted, "segments in sequence order: {starts:?}");
    assert_eq!(r.counters.tcp_out_of_order, 1, "segment 3 waited; 1 and 2 came in order");
}

#[test]
fn overlapping_segment_first_copy_wins() {
    let (chunks, r) = delivered("tcp_overlap", None);
    let stream = client_stream(&chunks);
    assert_eq!(stream.len(), 1500);
    let frames = scenario("tcp_overlap");
    // Segment A is the first client data frame: its bytes must be what was delivered.
    let a = frames.iter().map(|f| &f.data).find(|d| d.len() > 1000).expect("segment A");
    let a_payload = &a[a.len() - 1000..];
    assert_eq!(&stream[..1000], a_payload);
    assert_eq!(r.counters.tcp_overlaps, 1);
}

#[test]
fn unconsumed_bytes_are_presented_again() {
    // An inspector that consumes at most 10 bytes a call sees every byte, in order, each
    // exactly once as the head of a call, and the engine keeps the rest buffered.
    let (chunks, _) = delivered("tcp_out_of_order", Some(10));
    let to_server: Vec<_> = chunks.iter().filter(|(d, _)| *d == dpi_core::Dir::ToServer).collect();
    assert!(to_server.len() > 1);
    // The second delivery starts 10 bytes into the first, then carries the new bytes.
    assert_eq!(&to_server[1].1[..990], &to_server[0].1[10..]);
    assert_eq!(to_server[1].1.len(), 990 + 2000);
}

#[test]
fn reassembly_overflow_bypasses_but_keeps_tracking() {
    let r = default_run("tcp_reasm_overflow");
    let s = &r.ends[0];
    assert_eq!(s.bypassed, Some(BypassReason::Overflow));
    assert_eq!(r.counters.tcp_bypass_overflow, 1);
    assert_eq!(s.to_server.pkts, 74, "every packet still counted");
    assert!(s.closed, "FINs still tracked after the bypass");
    let (chunks, _) = delivered("tcp_reasm_overflow", None);
    assert!(chunks.is_empty(), "nothing after the hole was ever delivered");
}

#[test]
fn midstream_pickup_picks_the_server_by_port() {
    let r = default_run("tcp_midstream");
    let s = &r.ends[0];
    assert!(s.mid_stream && s.established);
    assert_eq!(s.server.port(), 6379, "first packet came from the server");
    assert_eq!(r.counters.tcp_midstream, 1);
    let (chunks, _) = delivered("tcp_midstream", None);
    let stream = client_stream(&chunks);
    assert!(stream.starts_with(b"*1\r\n$4\r\nPING\r\n"));
}

#[test]
fn learned_listener_decides_midstream_direction() {
    // A handshake to 10.0.0.3:6379 teaches the engine that port listens; then a mid-stream
    // flow between the same server port and a client port lower than 6379 must still
    // make 6379 the server.
    use pcapgen::{Host, IpPath, Side, TcpConversation};
    let client = Host::v4(1, [10, 0, 0, 1]);
    let server = Host::v4(3, [10, 0, 0, 3]);
    let mut cap = pcapgen::Capture::new();
    let mut a = TcpConversation::new(IpPath::new(client, server), 40000, 6379, 1, 1000);
    cap.push_all(a.handshake(&pcapgen::SynOptions::NONE, &pcapgen::SynOptions::NONE));
    let mut b = TcpConversation::new(IpPath::new(client, server), 1024, 6379, 5000, 9000);
    let _ = b.data(Side::Client, b"before the capture");
    cap.push(b.data(Side::Server, b"+PONG\r\n"));
    let r = run(&cap.into_frames(), Config::default());
    let mid = r.ends.iter().find(|e| e.mid_stream).unwrap();
    assert_eq!(mid.server.port(), 6379);
    assert_eq!(mid.client.port(), 1024);
}

#[test]
fn port_reuse_ends_the_old_session() {
    let r = default_run("tcp_port_reuse");
    assert_eq!(r.ends.len(), 2);
    assert_eq!(r.ends[0].end, Some(EndReason::PortReuse));
    assert_eq!(r.ends[0].client, r.ends[1].client);
    assert!(r.ends[1].first_seen > r.ends[0].last_seen);
    assert!(r.ends.iter().all(|e| e.closed && e.established));
    assert_eq!(r.counters.sessions_port_reused, 1);
}

#[test]
fn ack_of_unseen_data_is_capture_loss() {
    let r = default_run("tcp_capture_loss");
    assert_eq!(r.ends[0].bypassed, Some(BypassReason::CaptureLoss));
    assert_eq!(r.counters.tcp_bypass_capture_loss, 1);
    assert!(r.ends[0].closed);
}

#[test]
fn ipv4_fragments_reassemble_out_of_order() {
    let (chunks, r) = delivered("ipv4_fragments", None);
    assert_eq!(r.counters.frags, 3);
    assert_eq!(r.counters.frags_reassembled, 1);
    let s = r.ends.iter().find(|e| e.server.port() == 9000).unwrap();
    assert_eq!(s.to_server.pkts, 1, "one datagram");
    assert!(s.established, "the reply was seen");
    assert_eq!(chunks[0].1.len(), 3000);
}

#[test]
fn overlapping_fragments_are_dropped_and_raise_teardrop() {
    let r = default_run("ipv4_fragments_overlap");
    assert_eq!(r.counters.drops(DropReason::FragOverlap), 1);
    assert_eq!(r.counters.frags_overlapping, 1);
    assert!(r
        .events
        .iter()
        .any(|e| matches!(e, Event::Threat(t) if t.kind == ThreatKind::IpTeardrop)));
    // The well-formed datagram after it still reassembles.
    assert_eq!(r.counters.frags_reassembled, 1);
    assert_eq!(r.ends.len(), 1);
}

#[test]
fn ipv6_fragments_and_atomic_fragment() {
    let r = default_run("ipv6_fragments");
    assert_eq!(r.counters.frags_reassembled, 1);
    assert_eq!(r.counters.frags_atomic, 1);
    assert_eq!(r.ends.len(), 2);
    assert!(r.ends.iter().all(|e| e.client.is_ipv6()));
    let big = r.ends.iter().find(|e| e.client.port() == 33000).unwrap();
    assert_eq!(big.to_server.pkts, 1);
}

#[test]
fn fragments_time_out_after_ten_seconds() {
    let frames = scenario("ipv4_fragments");
    let mut ctx = dpi_core::Ctx::new(Config::default());
    let f = &frames[0];
    ctx.handle_timeout(Time::from_micros(f.ts_micros));
    ctx.recv_packet(&mut f.data.clone());
    assert_eq!(ctx.fragment_count(), 1);
    ctx.handle_timeout(Time::from_micros(f.ts_micros + 9_999_999));
    assert_eq!(ctx.fragment_count(), 1);
    ctx.handle_timeout(Time::from_micros(f.ts_micros + 10_000_000));
    assert_eq!(ctx.fragment_count(), 0);
    assert_eq!(ctx.counters().frags_timed_out, 1);
}

#[test]
fn ipv6_extension_headers_do_not_hide_tcp() {
    let r = default_run("ipv6_ext_headers");
    let s = &r.ends[0];
    assert!(s.client.is_ipv6() && s.established && s.closed);
    assert_eq!(s.server.port(), 443);
}

#[test]
fn vlans_separate_sessions() {
    let r = default_run("vlan");
    assert_eq!(r.ends.len(), 3);
    let mut vl: Vec<_> = r.ends.iter().map(|e| e.vlans().to_vec()).collect();
    vl.sort();
    assert_eq!(vl, vec![vec![100], vec![101], vec![200, 300]]);
}

#[test]
fn icmp_echo_replies_match_requests_v4_and_v6() {
    let r = default_run("icmp_echo");
    assert_eq!(r.ends.len(), 2, "{:#?}", r.ends);
    for e in &r.ends {
        assert!(e.established);
        assert_eq!(e.to_server.pkts, e.to_client.pkts);
    }
}

#[test]
fn icmp_errors_are_attributed_to_the_quoted_session() {
    let r = default_run("icmp_errors");
    assert_eq!(r.counters.icmp_errors_matched, 2);
    assert_eq!(r.counters.icmp_errors_unmatched, 1);
    let v4 = r.ends.iter().find(|e| e.proto == 17 && e.client.is_ipv4()).unwrap();
    let v6 = r.ends.iter().find(|e| e.proto == 17 && e.client.is_ipv6()).unwrap();
    assert_eq!((v4.icmp_errors, v6.icmp_errors), (1, 1));
    assert_eq!(r.ends.iter().filter(|e| e.proto == 1).count(), 1, "the unmatched error");
}

#[test]
fn udp_session_times_out_after_30_seconds() {
    let r = default_run("udp_dns");
    assert_eq!(r.ends.len(), 2);
    assert_eq!(r.ends[0].end, Some(EndReason::IdleTimeout));
    assert_eq!(r.ends[0].server.port(), 53);
    assert!(r.ends[0].established);
}

#[test]
fn other_ip_protocols_get_sessions() {
    let r = default_run("other_ip");
    let protos: Vec<_> = r.ends.iter().map(|e| e.proto).collect();
    assert_eq!(protos, vec![2, 47]);
    assert_eq!(r.ends[0].to_server.pkts, 2);
}

#[test]
fn malformed_frames_are_counted_drops() {
    let r = default_run("malformed");
    let expected = [
        DropReason::EthTruncated,
        DropReason::Ipv4BadHeaderLen,
        DropReason::Ipv4BadTotalLen,
        DropReason::TcpBadHeaderLen,
        DropReason::TcpBadFlags,
        DropReason::UdpTruncated,
        DropReason::Ipv6BadExtHeader,
    ];
    for d in expected {
        assert_eq!(r.counters.drops(d), 1, "{d:?}");
    }
    assert_eq!(r.counters.non_ip, 1, "ARP is forwarded, not dropped");
    assert!(r.ends.is_empty());
}

#[test]
fn full_table_evicts_the_session_nearest_its_deadline() {
    let frames = scenario("demo");
    let r = run(&frames, Config { max_sessions: 2, ..Config::default() });
    assert!(r.counters.sessions_evicted > 0);
    assert!(r.ends.iter().any(|e| e.end == Some(EndReason::Evicted)));
    let created = r.counters.sessions_tcp
        + r.counters.sessions_udp
        + r.counters.sessions_icmp
        + r.counters.sessions_other;
    assert_eq!(created as usize, r.ends.len(), "every session ends exactly once");
}

#[test]
fn same_input_same_output() {
    let a = default_run("demo");
    let b = default_run("demo");
    assert_eq!(a.events, b.events);
    assert!(a.ends.len() >= 6);
}
