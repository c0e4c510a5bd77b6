//! TCP scenarios: connection life cycles, retransmission, reordering, overlap,
//! gaps and mid-stream starts.

use super::payload::{filler, html_page, http_get, http_ok, REDIS_PING, REDIS_PONG};
use super::{http_session, Scenario, CLIENT, CLIENT_PORT, CLIENT_SYN, SERVER, SERVER_SYN};
use crate::capture::{Capture, MILLIS, SECONDS};
use crate::ip::IpPath;
use crate::link::Host;
use crate::tcp::{Side, SynOptions, TcpConversation, TcpFlags, TcpSegment};

/// The usual IPv4 conversation 10.0.0.1:40000 → 10.0.0.2:80.
fn web_conv(client_isn: u32, server_isn: u32) -> TcpConversation {
    TcpConversation::new(IpPath::new(CLIENT, SERVER), CLIENT_PORT, 80, client_isn, server_isn)
}

pub(super) fn tcp_handshake_close() -> Scenario {
    let mut cap = Capture::new();
    let mut c = web_conv(0x6a1f_3c20, 0x1b7e_9d01);
    http_session(&mut cap, &mut c, "www.example.test", "/index.html");
    Scenario::new(
        "tcp_handshake_close",
        "HTTP/1.1 GET and 200 over a clean TCP life cycle: 3-way handshake, data, \
         ACKs, client FIN, server FIN/ACK, final ACK (10 frames).",
        cap,
    )
}

pub(super) fn tcp_simultaneous_open() -> Scenario {
    let mut cap = Capture::new();
    let mut c =
        TcpConversation::new(IpPath::new(CLIENT, SERVER), 5000, 5001, 0x2000_0000, 0x3000_0000);
    cap.push(c.syn_from(Side::Client, &SynOptions::linux(1460)));
    cap.push(c.syn_from(Side::Server, &SynOptions::linux(1460)));
    cap.push(c.syn_ack_from(Side::Client, &SynOptions::linux(1460)));
    cap.push(c.syn_ack_from(Side::Server, &SynOptions::linux(1460)));
    cap.push(c.data(Side::Client, b"HELLO from 10.0.0.1:5000\n"));
    cap.push(c.ack(Side::Server));
    cap.push_all(c.close(Side::Client));
    Scenario::new(
        "tcp_simultaneous_open",
        "Simultaneous open 10.0.0.1:5000 <-> 10.0.0.2:5001: crossing SYNs, then a \
         SYN/ACK from each side, one line of data, FIN both ways.",
        cap,
    )
}

pub(super) fn tcp_rst() -> Scenario {
    let mut cap = Capture::new();
    let mut c = web_conv(0x0bad_f00d, 0x7f00_0001);
    cap.push_all(c.handshake(&CLIENT_SYN, &SERVER_SYN));
    cap.push(c.data(Side::Client, &http_get("www.example.test", "/admin")));
    cap.push(c.rst(Side::Server));
    Scenario::new(
        "tcp_rst",
        "Handshake and one HTTP request, answered by an in-window RST/ACK from the \
         server (seq = server's next, ack = end of request).",
        cap,
    )
}

pub(super) fn tcp_half_close() -> Scenario {
    let mut cap = Capture::new();
    let mut c = web_conv(0x4000_1000, 0x9000_2000);
    cap.push_all(c.handshake(&CLIENT_SYN, &SERVER_SYN));
    cap.push(
        c.data(Side::Client, b"GET /export.csv HTTP/1.0\r\nHost: reports.example.test\r\n\r\n"),
    );
    cap.push(c.fin(Side::Client));
    cap.push(c.ack(Side::Server));
    let chunks: [&[u8]; 3] = [
        b"HTTP/1.0 200 OK\r\nContent-Type: text/csv\r\n\r\nid,name,bytes\n",
        b"1,alpha,1024\n2,beta,2048\n3,gamma,4096\n",
        b"4,delta,8192\n5,epsilon,16384\n",
    ];
    for chunk in chunks {
        cap.push(c.data(Side::Server, chunk));
        cap.push(c.ack(Side::Client));
    }
    cap.push(c.fin(Side::Server));
    cap.push(c.ack(Side::Client));
    Scenario::new(
        "tcp_half_close",
        "Half-close: the client sends an HTTP/1.0 request then FIN; the server ACKs \
         the FIN, still sends 3 data segments (each ACKed), then its own FIN.",
        cap,
    )
}

pub(super) fn tcp_retransmission() -> Scenario {
    let mut cap = Capture::new();
    let mut c = web_conv(0x1234_5678, 0x8765_4321);
    let syn = c.syn(&CLIENT_SYN);
    cap.push(syn.clone());
    cap.next_gap(SECONDS);
    cap.push(syn);
    cap.push(c.syn_ack(&SERVER_SYN));
    cap.push(c.ack(Side::Client));
    let req = c.data(Side::Client, &http_get("www.example.test", "/retry"));
    cap.push(req.clone());
    cap.next_gap(200 * MILLIS);
    cap.push(req);
    cap.push(c.ack(Side::Server));
    cap.push(c.data(Side::Server, &http_ok(&html_page("retry"))));
    cap.push(c.ack(Side::Client));
    cap.push_all(c.close(Side::Client));
    Scenario::new(
        "tcp_retransmission",
        "The client SYN is sent twice 1 s apart (same ISN), and the HTTP request is \
         retransmitted byte-identically 200 ms later; then reply and FIN close.",
        cap,
    )
}

pub(super) fn tcp_out_of_order() -> Scenario {
    let mut cap = Capture::new();
    let mut c = web_conv(0x5000_0000, 0x6000_0000);
    cap.push_all(c.handshake(&CLIENT_SYN, &SERVER_SYN));
    let s1 = c.data(Side::Client, &filler("segment-1", 1000));
    let s2 = c.data(Side::Client, &filler("segment-2", 1000));
    let s3 = c.data(Side::Client, &filler("segment-3", 1000));
    cap.push(s3);
    let hole = c.seq_at(Side::Client, 0);
    cap.push(c.ack_with(Side::Server, hole));
    cap.push(s1);
    let after_s1 = c.seq_at(Side::Client, 1000);
    cap.push(c.ack_with(Side::Server, after_s1));
    cap.push(s2);
    cap.push(c.ack(Side::Server));
    cap.push_all(c.close(Side::Client));
    Scenario::new(
        "tcp_out_of_order",
        "Three 1000-byte client segments with distinct text arrive in order 3, 1, 2; \
         the server ACKs cumulatively (dup ACK, ACK 1000, ACK 3000); FIN close.",
        cap,
    )
}

pub(super) fn tcp_overlap() -> Scenario {
    let mut cap = Capture::new();
    let mut c = web_conv(0x7000_0000, 0x7100_0000);
    cap.push_all(c.handshake(&CLIENT_SYN, &SERVER_SYN));
    cap.push(c.data_at(Side::Client, 0, &[b'A'; 1000]));
    cap.push(c.ack(Side::Server));
    cap.push(c.data_at(Side::Client, 500, &[b'B'; 1000]));
    cap.push(c.ack(Side::Server));
    cap.push_all(c.close(Side::Client));
    Scenario::new(
        "tcp_overlap",
        "Overlapping client segments: A = 1000 x 'A' at stream bytes [0,1000), then \
         B = 1000 x 'B' at [500,1500), so [500,1000) differs between the two.",
        cap,
    )
}

pub(super) fn tcp_reasm_overflow() -> Scenario {
    let mut cap = Capture::new();
    let mut c = web_conv(0x0100_0000, 0x0200_0000);
    cap.push_all(c.handshake(&CLIENT_SYN, &SERVER_SYN));
    // A receive window far larger than 64 KiB (4096 << 7 = 512 KiB, common on Linux), so
    // the pending data is within the window and only the engine's own bound stops it.
    c.set_window(Side::Server, 4096);
    let _missing = c.data(Side::Client, &filler("missing", 1000));
    let hole = c.seq_at(Side::Client, 0);
    for i in 1..=70 {
        cap.push(c.data(Side::Client, &filler(&format!("ooo-{i:02}"), 1000)));
        if i <= 3 {
            cap.push(c.ack_with(Side::Server, hole));
        }
    }
    cap.push(c.fin(Side::Client));
    let server_fin = TcpSegment {
        seq: c.next_seq(Side::Server),
        ack: hole,
        flags: TcpFlags::FIN | TcpFlags::ACK,
        window: 4096,
        ..TcpSegment::default()
    };
    cap.push(c.raw(Side::Server, &server_fin));
    let ack = c.next_seq(Side::Server).wrapping_add(1);
    cap.push(c.ack_with(Side::Client, ack));
    Scenario::new(
        "tcp_reasm_overflow",
        "The first 1000-byte client segment is never captured; 70 more follow \
         (70000 bytes pending behind the hole, > 64 KiB). The server only sends dup \
         ACKs at the hole, then client FIN, server FIN (still ACKing the hole), ACK.",
        cap,
    )
}

pub(super) fn tcp_midstream() -> Scenario {
    let mut cap = Capture::new();
    let redis = Host::v4(3, [10, 0, 0, 3]);
    let mut c =
        TcpConversation::new(IpPath::new(CLIENT, redis), 51234, 6379, 0x3a3a_0000, 0x5b5b_0000);
    // Traffic before the capture started: a few exchanges, then a request.
    for _ in 0..5 {
        let _ = c.data(Side::Client, REDIS_PING);
        let _ = c.data(Side::Server, REDIS_PONG);
    }
    let _ = c.data(Side::Client, REDIS_PING);
    cap.push(c.data(Side::Server, REDIS_PONG));
    for _ in 0..4 {
        cap.push(c.data(Side::Client, REDIS_PING));
        cap.push(c.data(Side::Server, REDIS_PONG));
    }
    cap.push(c.ack(Side::Client));
    Scenario::new(
        "tcp_midstream",
        "Capture starts mid-connection (no SYN): the first frame is a Redis +PONG \
         from 10.0.0.3:6379 to 10.0.0.1:51234, then 4 PING/PONG pairs; the server \
         is the side on the well-known port, not the first sender.",
        cap,
    )
}

pub(super) fn tcp_port_reuse() -> Scenario {
    let mut cap = Capture::new();
    let path = IpPath::new(CLIENT, SERVER);
    let mut first = TcpConversation::new(path.clone(), 40001, 80, 0x1000_0000, 0x5000_0000);
    http_session(&mut cap, &mut first, "www.example.test", "/first");
    cap.next_gap(2 * SECONDS);
    let mut second = TcpConversation::new(path, 40001, 80, 0x1008_0000, 0x6000_0000);
    http_session(&mut cap, &mut second, "www.example.test", "/second");
    Scenario::new(
        "tcp_port_reuse",
        "A complete HTTP connection 10.0.0.1:40001 -> 10.0.0.2:80, then 2 s later a \
         new SYN on the same 4-tuple with a higher ISN and a second complete \
         connection (two sessions).",
        cap,
    )
}

pub(super) fn tcp_capture_loss() -> Scenario {
    let mut cap = Capture::new();
    let mut c = web_conv(0x2468_0000, 0x1357_0000);
    cap.push_all(c.handshake(&CLIENT_SYN, &SERVER_SYN));
    cap.push(c.data(Side::Client, &filler("upload-1", 1000)));
    let _not_captured = c.data(Side::Client, &filler("upload-2", 1000));
    cap.push(c.data(Side::Client, &filler("upload-3", 1000)));
    cap.push(c.ack(Side::Server));
    cap.push_all(c.close(Side::Client));
    Scenario::new(
        "tcp_capture_loss",
        "Capture loss: client segments 1 and 3 (1000 bytes each) are captured, \
         segment 2 is not, yet the server ACKs up to the end of segment 3; FIN close.",
        cap,
    )
}
