//! Tunables of one engine instance. Every bound has a unit, a default and a counter that
//! says when it was hit.

/// Idle timeouts in seconds, per protocol and TCP state (NeuVector's values, reference
/// §3.11). Every packet of a session refreshes its timer. Values above
/// [`Timeouts::MAX_SECS`] are clamped to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP before the three-way handshake completes. Default 20 s.
    pub tcp_handshake: u32,
    /// TCP established, no payload seen yet. Default 30 s.
    pub tcp_established_idle: u32,
    /// TCP with payload seen (active). Default 1200 s.
    pub tcp_active: u32,
    /// TCP half-closed (one FIN sent and acknowledged). Default 90 s.
    pub tcp_half_closed: u32,
    /// TCP after both FINs, a RST, or the last ACK: kept briefly so late retransmissions
    /// still match. Default 15 s.
    pub tcp_closed: u32,
    /// UDP. Default 30 s.
    pub udp: u32,
    /// ICMP and ICMPv6. Default 5 s.
    pub icmp: u32,
    /// Any other IP protocol. Default 15 s.
    pub other: u32,
}

impl Timeouts {
    /// Longest timeout the timer wheel represents (its span minus one slot), in seconds.
    pub const MAX_SECS: u32 = crate::flow::timer::WHEEL_SLOTS as u32 - 1;
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_handshake: 20,
            tcp_established_idle: 30,
            tcp_active: 1200,
            tcp_half_closed: 90,
            tcp_closed: 15,
            udp: 30,
            icmp: 5,
            other: 15,
        }
    }
}

/// Bounds of the IP fragment reassembler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragConfig {
    /// Datagrams under reassembly at once. Default 4096. When full, a fragment of a new
    /// datagram is dropped (`frag_table_full`).
    pub max_datagrams: usize,
    /// Bytes of fragment payload held at once, all datagrams together. Default 16 MiB.
    pub max_bytes: usize,
    /// Seconds a datagram may stay incomplete, counted from its first fragment.
    /// Default 10 s.
    pub timeout_secs: u32,
}

impl Default for FragConfig {
    fn default() -> Self {
        FragConfig { max_datagrams: 4096, max_bytes: 16 << 20, timeout_secs: 10 }
    }
}

/// Configuration of one [`Ctx`](crate::Ctx) (one worker).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Sessions tracked at once. Default 524 288. When the table is full, the session
    /// closest to its idle deadline is evicted (ended with reason `evicted`, counted in
    /// `sessions_evicted`) to make room, so new flows are always tracked.
    pub max_sessions: usize,
    /// Per-direction TCP stream buffers ([`Config::stream_buffer_bytes`] each) for
    /// out-of-order segments and bytes a parser has not consumed yet. Default 2048
    /// (128 MiB at most with 64 KiB buffers). A session that needs one when none is left is
    /// bypassed (`stream_pool_exhausted`).
    pub max_stream_buffers: usize,
    /// Bytes of one stream buffer: how far beyond the first unconsumed byte a direction may
    /// hold data. Default 64 KiB ([`crate::flow::stream::STREAM_BUF_BYTES`]); clamped to
    /// 16 KiB..=16 MiB. Data that would land beyond it stops the session's inspection
    /// (`tcp_bypass_overflow`). Feeding GSO super-frames (up to 64 KiB each, e.g. from an
    /// AF_PACKET port with `PACKET_VNET_HDR`) needs room for a hole of one super-frame
    /// plus the next: use [`crate::flow::stream::STREAM_BUF_BYTES_GSO`] (256 KiB) there.
    pub stream_buffer_bytes: usize,
    /// Events held for [`Ctx::poll_event`](crate::Ctx::poll_event) before new ones are
    /// dropped (`events_dropped`). Default 65 536. Poll after every packet to never hit it.
    pub max_pending_events: usize,
    /// Entries in the learned listening-port cache used to pick client and server for
    /// mid-stream TCP and first UDP packets. Default 16 384 (direct-mapped, overwritten
    /// on collision).
    pub listener_cache_entries: usize,
    /// Queue an [`Event::SessionStart`](crate::Event::SessionStart) for every new session.
    /// Default on; a consumer that only wants end records (pcap replay) turns it off.
    pub session_start_events: bool,
    /// Connection report aggregates held between flushes. Default 32 768 (NeuVector's
    /// agent cap); when full, all are flushed early.
    pub max_report_entries: usize,
    /// Seconds between connection report flushes. Default 6 (as NeuVector).
    pub report_interval_secs: u32,
    /// Sessions whose virtual host (HTTP Host / TLS SNI) is kept for vhost rules.
    /// Default 8192; beyond it the vhost counts as unknown (`vhost_pool_exhausted`).
    pub max_vhosts: usize,
    /// Sessions whose application is being identified at once (each holds the first 4 KiB
    /// the client sent and 1 KiB of the server's, 5 KiB). Default 8192 (40 MiB at most);
    /// beyond it new sessions are left unidentified (`ident_pool_exhausted`).
    pub max_identifying: usize,
    /// Frames waiting for `poll_transmit` (resets) before new ones are dropped
    /// (`transmit_dropped`). Default 1024.
    pub max_pending_transmit: usize,
    /// MAC prefix of workload tags on a shared inline port (NeuVector's "NeuV",
    /// `4e:65:75:56`, reference §3.1 of datapath.md): a frame whose source or destination
    /// MAC starts with it belongs to that tagged workload's pass through the engine, so a
    /// frame between two inline workloads, seen twice, makes two sessions, each decided by
    /// its own workload. `None` turns tags off. Default `Some(4e:65:75:56)`.
    pub mac_tag_prefix: Option<[u8; 4]>,
    /// Verify IPv4 header and TCP/UDP/ICMP checksums; a wrong one is a drop. Default off
    /// (captures and veth frames carry offloaded, unfilled checksums).
    pub verify_checksums: bool,
    /// Idle timeouts.
    pub timeouts: Timeouts,
    /// Fragment reassembly bounds.
    pub frag: FragConfig,
    /// Bounds of the DNS-learned address-to-name map used by FQDN rules.
    pub fqdn: crate::fqdn::FqdnConfig,
    /// Seed of the flow-table hash. Give each worker a random one in production (the
    /// engine cannot read a random source itself); the default is fixed, so runs are
    /// reproducible.
    pub hash_seed: u64,
    /// Worker id, put in the top 16 bits of session ids so ids are unique across workers.
    pub worker_id: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_sessions: 524_288,
            max_stream_buffers: 2048,
            stream_buffer_bytes: crate::flow::stream::STREAM_BUF_BYTES,
            max_pending_events: 65_536,
            listener_cache_entries: 16_384,
            session_start_events: true,
            mac_tag_prefix: Some([0x4e, 0x65, 0x75, 0x56]),
            max_report_entries: 32_768,
            report_interval_secs: 6,
            max_vhosts: 8192,
            max_pending_transmit: 1024,
            max_identifying: 8192,
            verify_checksums: false,
            timeouts: Timeouts::default(),
            frag: FragConfig::default(),
            fqdn: crate::fqdn::FqdnConfig::default(),
            hash_seed: 0x5eed_d1c0_ffee_0001,
            worker_id: 0,
        }
    }
}
