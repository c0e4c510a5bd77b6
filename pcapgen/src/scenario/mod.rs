//! The named scenarios: small captures, each aimed at one behaviour of the engine.
//!
//! Every scenario is a function from nothing to a [`Scenario`], so the output
//! depends on the code only. Addresses are private (10.0.0.0/8, 192.168.0.0/16,
//! fd00::/8) and MACs locally administered (`02:00:00:00:00:xx`, with `xx` the
//! last address octet). Unless a scenario says otherwise the client is
//! 10.0.0.1:40000, the server 10.0.0.2:80 and frames are 1 ms apart starting at
//! 2026-01-01T00:00:00Z.
//!
//! To add a scenario: write a function in the matching file (`tcp`, `ip`,
//! `misc`), build frames with [`crate::TcpConversation`] / [`crate::IpPath`],
//! push them into a [`crate::Capture`] and list the function in [`scenarios`].
//! Then regenerate `testdata/pcap` with `cargo run -p pcapgen -- testdata/pcap`.

mod demo;
mod ip;
mod misc;
mod payload;
mod policy;
mod tcp;

use std::net::Ipv6Addr;

use crate::capture::{Capture, Frame};
use crate::link::Host;
use crate::tcp::{Side, SynOptions, TcpConversation};

/// A named capture with a one-line description of what it exercises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// File stem, e.g. `tcp_handshake_close` for `tcp_handshake_close.pcap`.
    pub name: &'static str,
    /// What the capture contains and what an engine should make of it.
    pub description: &'static str,
    /// The frames, in capture order, timestamps non-decreasing.
    pub frames: Vec<Frame>,
}

impl Scenario {
    fn new(name: &'static str, description: &'static str, cap: Capture) -> Self {
        Self { name, description, frames: cap.into_frames() }
    }

    /// The scenario as a pcap file.
    pub fn to_pcap_bytes(&self) -> Vec<u8> {
        crate::pcap::to_pcap_bytes(&self.frames)
    }
}

/// Every scenario, in a fixed order.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        tcp::tcp_handshake_close(),
        tcp::tcp_simultaneous_open(),
        tcp::tcp_rst(),
        tcp::tcp_half_close(),
        tcp::tcp_retransmission(),
        tcp::tcp_out_of_order(),
        tcp::tcp_overlap(),
        tcp::tcp_reasm_overflow(),
        tcp::tcp_midstream(),
        tcp::tcp_port_reuse(),
        tcp::tcp_capture_loss(),
        ip::ipv4_fragments(),
        ip::ipv4_fragments_overlap(),
        ip::ipv6_fragments(),
        ip::ipv6_ext_headers(),
        ip::vlan(),
        misc::icmp_echo(),
        misc::icmp_errors(),
        misc::udp_dns(),
        misc::other_ip(),
        misc::malformed(),
        demo::demo(),
        policy::policy_baseline(),
        policy::policy_extra(),
        policy::policy_midstream_extra(),
        policy::policy_fqdn_vhost(),
    ]
}

/// The scenario called `name`, if there is one.
pub fn scenario(name: &str) -> Option<Scenario> {
    scenarios().into_iter().find(|s| s.name == name)
}

/// 10.0.0.1, the usual client.
const CLIENT: Host = Host::v4(1, [10, 0, 0, 1]);
/// 10.0.0.2, the usual server.
const SERVER: Host = Host::v4(2, [10, 0, 0, 2]);
/// fd00::1, the usual IPv6 client.
const CLIENT6: Host = Host::v6(1, Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
/// fd00::2, the usual IPv6 server.
const SERVER6: Host = Host::v6(2, Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
/// The usual client port.
const CLIENT_PORT: u16 = 40000;

/// The SYN options of the usual client: Linux's, with timestamps offered.
const CLIENT_SYN: SynOptions = SynOptions {
    mss: Some(1460),
    window_scale: Some(7),
    sack_permitted: true,
    timestamps: Some((0x0012_d687, 0)),
};
/// The SYN/ACK options of the usual server: Linux's without timestamps, so
/// timestamps are not negotiated and later segments carry no options.
const SERVER_SYN: SynOptions = SynOptions::linux(1460);

/// A whole HTTP/1.1 exchange: handshake, GET, server ACK, 200 response, client
/// ACK, client FIN, server FIN/ACK, client ACK (10 frames).
fn http_session(cap: &mut Capture, conv: &mut TcpConversation, host: &str, path: &str) {
    cap.push_all(conv.handshake(&CLIENT_SYN, &SERVER_SYN));
    cap.push(conv.data(Side::Client, &payload::http_get(host, path)));
    cap.push(conv.ack(Side::Server));
    let body = payload::html_page(&format!("{host}{path}"));
    cap.push(conv.data(Side::Server, &payload::http_ok(&body)));
    cap.push(conv.ack(Side::Client));
    cap.push_all(conv.close(Side::Client));
}
