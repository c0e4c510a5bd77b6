//! Events out of the engine, drained with [`Ctx::poll_event`](crate::Ctx::poll_event).
//!
//! Records are plain `Copy` data (no allocation), so the event queue is a preallocated
//! ring. At this stage: session start and end records and threats.

use crate::app::AppState;
use crate::endpoint::WorkloadKey;
use crate::policy::PolicyAction;
pub use crate::report::ConnectionReport;
use crate::time::Time;
use core::net::{IpAddr, SocketAddr};

/// An event produced by the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A session was created (its first packet was accepted).
    SessionStart(SessionRecord),
    /// A session ended; `end` says why.
    SessionEnd(SessionRecord),
    /// A threat was raised by the engine or by a hook.
    Threat(ThreatRecord),
    /// Aggregated connections of a workload (periodic, and at once for violations).
    Connection(ConnectionReport),
    /// A policy violation (VIOLATE or DENY), once per session or denied flow.
    Violation(ViolationRecord),
    /// A server was seen speaking an application on a port (first time, or a change):
    /// what the engine learned about listening endpoints (reference §5.4).
    AppUpdate(AppUpdate),
}

/// An endpoint's application, as learned from its traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppUpdate {
    /// When.
    pub time: Time,
    /// The server address and port.
    pub server: SocketAddr,
    /// IP protocol.
    pub proto: u8,
    /// The application.
    pub app: crate::app::AppId,
}

/// Packets and bytes (whole frames, as captured) in one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirCounts {
    /// Packets.
    pub pkts: u64,
    /// Bytes, including the link header, as Suricata's EVE counts them.
    pub bytes: u64,
}

/// TCP connection state of one end, as inferred from what the engine saw (Linux names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TcpState {
    /// Nothing seen from this end yet (or an end picked up mid-stream before it spoke).
    #[default]
    None,
    /// Server waiting for the handshake.
    Listen,
    /// SYN sent.
    SynSent,
    /// SYN received and SYN/ACK sent.
    SynRecv,
    /// Handshake complete.
    Established,
    /// This end sent FIN, not yet acknowledged.
    FinWait1,
    /// This end's FIN was acknowledged; the other may still send (half-close).
    FinWait2,
    /// The other end sent FIN first; this end may still send.
    CloseWait,
    /// Both ends sent FIN before either was acknowledged.
    Closing,
    /// This end sent FIN after the other's FIN; waiting for the last ACK.
    LastAck,
    /// Both FINs exchanged and this end acknowledged the other's.
    TimeWait,
    /// Closed (RST, or the last ACK seen).
    Close,
}

impl TcpState {
    /// Lowercase name.
    pub const fn name(self) -> &'static str {
        match self {
            TcpState::None => "none",
            TcpState::Listen => "listen",
            TcpState::SynSent => "syn_sent",
            TcpState::SynRecv => "syn_recv",
            TcpState::Established => "established",
            TcpState::FinWait1 => "fin_wait1",
            TcpState::FinWait2 => "fin_wait2",
            TcpState::CloseWait => "close_wait",
            TcpState::Closing => "closing",
            TcpState::LastAck => "last_ack",
            TcpState::TimeWait => "time_wait",
            TcpState::Close => "close",
        }
    }
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndReason {
    /// TCP closed by FINs; its short linger timer then expired.
    TcpFin,
    /// TCP closed by a RST; its short linger timer then expired.
    TcpRst,
    /// No packet for the protocol's idle timeout.
    IdleTimeout,
    /// A new SYN reused the 4-tuple of this closed session.
    PortReuse,
    /// The session table was full and this session was closest to its deadline.
    Evicted,
    /// [`Ctx::flush`](crate::Ctx::flush) (end of a capture, shutdown).
    Flushed,
}

impl EndReason {
    /// Lowercase name.
    pub const fn name(self) -> &'static str {
        match self {
            EndReason::TcpFin => "tcp_fin",
            EndReason::TcpRst => "tcp_rst",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::PortReuse => "port_reuse",
            EndReason::Evicted => "evicted",
            EndReason::Flushed => "flushed",
        }
    }
}

/// Why inspection of a session stopped while tracking went on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BypassReason {
    /// An ACK covered data the capture never saw.
    CaptureLoss,
    /// More than 64 KiB waiting behind a hole in one direction, or too many holes.
    Overflow,
    /// The capture cut a payload short (snap length).
    Truncated,
    /// No stream buffer was free.
    PoolExhausted,
    /// A hook asked for it.
    Hook,
    /// Policy blocked the session: its packets are dropped, not inspected.
    Blocked,
}

impl BypassReason {
    /// Lowercase name.
    pub const fn name(self) -> &'static str {
        match self {
            BypassReason::CaptureLoss => "capture_loss",
            BypassReason::Overflow => "reassembly_overflow",
            BypassReason::Truncated => "truncated",
            BypassReason::PoolExhausted => "pool_exhausted",
            BypassReason::Hook => "hook",
            BypassReason::Blocked => "blocked",
        }
    }
}

/// TCP-specific part of a session record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpSummary {
    /// Client end's state.
    pub client_state: TcpState,
    /// Server end's state.
    pub server_state: TcpState,
    /// Retransmitted segments, both directions.
    pub retransmissions: u32,
    /// Segments that arrived ahead of a hole, both directions.
    pub out_of_order: u32,
}

/// A session start or end record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// Unique within the engine instance (worker id in the top 16 bits).
    pub id: u64,
    /// IP protocol.
    pub proto: u8,
    /// Client address and port (ICMP: the echo identifier on the client side).
    pub client: SocketAddr,
    /// Server address and port (ICMP: `code << 8 | type` of the request).
    pub server: SocketAddr,
    /// VLAN ids, outermost first; `vlan_count` valid.
    pub vlan: [u16; 2],
    /// Number of VLAN tags.
    pub vlan_count: u8,
    /// Client to server.
    pub to_server: DirCounts,
    /// Server to client.
    pub to_client: DirCounts,
    /// Time of the first packet.
    pub first_seen: Time,
    /// Time of the last packet.
    pub last_seen: Time,
    /// TCP details (`None` for other protocols).
    pub tcp: Option<TcpSummary>,
    /// Picked up without seeing the TCP handshake.
    pub mid_stream: bool,
    /// TCP handshake completed (or picked up mid-stream); for other protocols, both
    /// directions seen.
    pub established: bool,
    /// TCP closed by FIN or RST.
    pub closed: bool,
    /// Why inspection stopped, if it did.
    pub bypassed: Option<BypassReason>,
    /// ICMP errors that quoted this session's packets.
    pub icmp_errors: u32,
    /// Why it ended (`None` in start records).
    pub end: Option<EndReason>,
    /// The policy decision, when a workload's policy applies.
    pub policy: Option<PolicySummary>,
    /// Application.
    pub app: AppState,
}

/// The policy side of a session record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicySummary {
    /// The workload whose policy decided.
    pub workload: WorkloadKey,
    /// The workload is the server.
    pub ingress: bool,
    /// Final action.
    pub action: PolicyAction,
    /// Rule that decided (0: the mode's default).
    pub rule_id: u32,
    /// The session was blocked (its packets dropped from some point on).
    pub blocked: bool,
}

/// A policy violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViolationRecord {
    /// When.
    pub time: Time,
    /// The session, if one was created (a flow denied at its first packet has none).
    pub session_id: Option<u64>,
    /// The workload whose policy was violated.
    pub workload: WorkloadKey,
    /// The workload is the server.
    pub ingress: bool,
    /// Client.
    pub client: SocketAddr,
    /// Server.
    pub server: SocketAddr,
    /// IP protocol.
    pub proto: u8,
    /// VLAN ids (0 where absent).
    pub vlan: [u16; 2],
    /// Application, as far as known.
    pub app: AppState,
    /// Rule (0: the mode's default).
    pub rule_id: u32,
    /// VIOLATE (reported, let through) or DENY (stopped).
    pub action: PolicyAction,
}

impl SessionRecord {
    /// The VLAN ids present, outermost first.
    pub fn vlans(&self) -> &[u16] {
        &self.vlan[..usize::from(self.vlan_count)]
    }
}

/// Threat kinds. Ids are stable and follow NeuVector's threat ids where one exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ThreatKind {
    /// Overlapping IP fragments (the "teardrop" attack and fragment-overlap evasions).
    IpTeardrop,
}

impl ThreatKind {
    /// Lowercase name.
    pub const fn name(self) -> &'static str {
        match self {
            ThreatKind::IpTeardrop => "ip_teardrop",
        }
    }
}

/// A threat occurrence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreatRecord {
    /// What was detected.
    pub kind: ThreatKind,
    /// When.
    pub time: Time,
    /// Session it belongs to, if one exists.
    pub session_id: Option<u64>,
    /// Source of the offending packet.
    pub src: IpAddr,
    /// Destination of the offending packet.
    pub dst: IpAddr,
    /// IP protocol.
    pub proto: u8,
}
