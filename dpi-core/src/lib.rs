//! # dpi-core: a sans-I/O deep packet inspection engine
//!
//! The engine a container firewall is built on: give it Ethernet frames, it decodes them,
//! tracks every session, reassembles TCP streams for inspection, and says whether each
//! frame goes on. It does no I/O of its own (no sockets, files, clocks, threads or
//! logging), so the same input always gives the same output, and it can be embedded by
//! any adapter: AF_PACKET rings, NFQUEUE, pcap files, a fuzzer.
//!
//! ## Data flow
//!
//! ```text
//!  frame ──► packet::decode ──► frag (IP reassembly) ──► flow::table (session lookup/create)
//!                                                              │
//!            Action ◄── hooks: on_packet ◄── flow::tcp / udp / icmp trackers
//!                                                 │
//!                                  flow::stream ──► hooks: on_payload (in order, per direction)
//!  events (session start/end, threats) ──► poll_event      frames to send ──► poll_transmit
//! ```
//!
//! ## Use
//!
//! ```
//! use dpi_core::{Action, Config, Ctx, Event, Time};
//!
//! let mut ctx = Ctx::new(Config::default());
//! let mut frame = [0u8; 60]; // an Ethernet frame from somewhere
//! ctx.handle_timeout(Time::from_secs(1_700_000_000)); // the packet's time
//! let action = ctx.recv_packet(&mut frame);
//! assert!(matches!(action, Action::Forward | Action::Drop(_)));
//! while let Some(ev) = ctx.poll_event() {
//!     if let Event::SessionEnd(rec) = ev {
//!         println!("{} -> {}", rec.client, rec.server);
//!     }
//! }
//! ```
//!
//! ## Contracts
//!
//! - **Time** comes from the caller through [`Ctx::handle_timeout`]; timeouts have
//!   one-second resolution (see [`Timeouts`]).
//! - **Bounds**: sessions ([`Config::max_sessions`], evicting the session nearest its
//!   deadline when full), stream buffers ([`Config::max_stream_buffers`] of
//!   [`Config::stream_buffer_bytes`], 64 KiB by default), fragments ([`FragConfig`]),
//!   pending events ([`Config::max_pending_events`]). Every
//!   bound hit is counted in [`Counters`].
//! - **No allocation per packet** once the tables and pools have grown to their working
//!   size (a test replays a capture twice under a counting allocator).
//! - **Malformed input** is a counted [`DropReason`], never a panic (fuzzed).
//! - **Memory per session**: a session is a fixed-size record (see
//!   `flow::session::Session`, asserted at most 256 bytes; 208 on x86-64) plus about 5 bytes
//!   of hash index; stream buffers are taken from the pool only while a direction has
//!   out-of-order or unconsumed bytes.
//!
//! ## Where later stages plug in
//!
//! [`Inspector`] hooks: at session creation (policy), per in-order payload chunk
//! (application parsers), per packet (policy re-evaluation), at session end. Threats can be
//! raised from any hook through [`HookCx`].

#![forbid(unsafe_code)]

pub mod action;
pub mod app;
pub mod config;
pub mod counters;
mod ctx;
pub mod endpoint;
pub(crate) mod enforce;
pub mod event;
pub mod flow;
pub mod fqdn;
mod frag;
pub mod hooks;
pub mod packet;
pub mod policy;
mod queue;
pub mod report;
pub mod time;
pub mod transmit;

pub use action::{Action, DropReason};
pub use config::{Config, FragConfig, Timeouts};
pub use counters::Counters;
pub use ctx::{recv_packet, Ctx};
pub use event::{
    BypassReason, DirCounts, EndReason, Event, SessionRecord, TcpState, TcpSummary, ThreatKind,
    ThreatRecord,
};
pub use flow::Dir;
pub use hooks::{HookCx, Inspector, NoInspector, PacketView, SessionView, Verdict};
pub use time::Time;
pub use transmit::Transmit;
