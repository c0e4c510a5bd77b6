//! `pcapgen`: a deterministic generator of small Ethernet captures whose contents
//! are known exactly, for the engine's golden tests and the README demo.
//!
//! # Data flow
//!
//! ```text
//! Host (MAC + IP) ──> IpPath (one direction: VLAN tags, TTL, IPv4 options,
//!                     │        IPv6 extension headers, IPv4 id counter)
//!                     ├─ tcp / udp / icmp / ip_frame ─> frame bytes
//!                     ├─ *_packet ─> IP packet ─> frag::* ─> fragments ─> frame()
//!                     └─ TcpConversation (two paths + seq/ack of both ends)
//! frame bytes ──> Capture (simulated clock, 1 ms step) ──> Vec<Frame>
//! Vec<Frame>  ──> Scenario { name, description, frames } ──> to_pcap_bytes / write_pcap
//! ```
//!
//! Nothing reads the clock or a random source: the same code gives byte-identical
//! pcaps. Every checksum (IPv4 header, TCP, UDP, ICMP, ICMPv6, IGMP) is correct
//! unless a scenario corrupts it on purpose (see `malformed`).
//!
//! The `pcapgen` binary writes every scenario of [`scenarios`] to
//! `OUTDIR/<name>.pcap` (`pcapgen OUTDIR`) or lists them (`pcapgen --list`). The
//! generated files live in `testdata/pcap/` and a test fails if they are stale.
//!
//! # Example
//!
//! ```
//! use pcapgen::{Capture, Host, IpPath, Side, SynOptions, TcpConversation};
//!
//! let client = Host::v4(1, [10, 0, 0, 1]);
//! let server = Host::v4(2, [10, 0, 0, 2]);
//! let mut conv = TcpConversation::new(IpPath::new(client, server), 40000, 80, 1000, 5000);
//! let mut cap = Capture::new();
//! cap.push_all(conv.handshake(&SynOptions::linux(1460), &SynOptions::linux(1460)));
//! let request = conv.data(Side::Client, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
//! cap.push(request.clone());
//! cap.push(request); // an identical retransmission
//! cap.push(conv.ack(Side::Server));
//! assert_eq!(conv.next_ack(Side::Server), 1000 + 1 + 27);
//! let pcap = pcapgen::to_pcap_bytes(&cap.into_frames());
//! assert_eq!(&pcap[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
//! ```

#![forbid(unsafe_code)]

pub mod capture;
pub mod checksum;
pub mod frag;
pub mod icmp;
pub mod ip;
pub mod link;
mod pcap;
pub mod scenario;
pub mod tcp;
pub mod udp;

pub use capture::{Capture, Frame, BASE_TS_MICROS};
pub use ip::{IpPath, Ipv6Ext};
pub use link::{Host, VlanTags};
pub use pcap::{to_pcap_bytes, write_pcap, SNAPLEN};
pub use scenario::{scenario, scenarios, Scenario};
pub use tcp::{Side, SynOptions, TcpConversation, TcpFlags, TcpSegment};
