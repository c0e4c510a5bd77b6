//! Where later stages plug in: application parsers, policy and threat detection.
//!
//! An [`Inspector`] is called by the engine at fixed points of the packet path:
//!
//! 1. [`Inspector::on_session_start`] before a session is created: the policy decision at
//!    creation. [`Verdict::Drop`] drops the packet and creates no session.
//! 2. [`Inspector::on_payload`] with each direction's payload, in order, without gaps
//!    (TCP reassembled; UDP one datagram at a time). It returns how many bytes it consumed;
//!    the engine keeps the rest and presents them again, followed by new bytes, with the
//!    next segment (bounded by the stream buffer, 64 KiB by default).
//! 3. [`Inspector::on_packet`] for every packet of a session after tracking: the
//!    per-packet policy decision.
//! 4. [`Inspector::on_session_end`] when a session ends.
//!
//! Every call gets a [`HookCx`] through which it can raise threats and report what it
//! learned of the session: its application ([`HookCx::set_app`]) and virtual host
//! ([`HookCx::set_vhost`]), which policy rules naming applications or vhosts wait for.
//! Hooks run on the worker's thread, inside `recv_packet`; they must not block.

use crate::app::AppState;
use crate::counters::Counters;
use crate::event::{Event, SessionRecord, ThreatKind, ThreatRecord};
use crate::flow::session::{sf, Session};
use crate::flow::Dir;
use crate::packet::{addr_to_ip, Decoded};
use crate::queue::EventQueue;
use crate::time::Time;
use arrayvec::ArrayString;
use core::net::SocketAddr;

/// A hook's decision about a packet or session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Verdict {
    /// Carry on.
    #[default]
    Continue,
    /// Drop this packet (at session start: and create no session).
    Drop,
    /// Stop inspecting this session (no more payload delivery); tracking goes on.
    Bypass,
}

/// Read-only view of a session given to hooks.
#[derive(Clone, Copy, Debug)]
pub struct SessionView<'a> {
    s: &'a Session,
}

impl<'a> SessionView<'a> {
    pub(crate) fn new(s: &'a Session) -> Self {
        SessionView { s }
    }

    /// Unique session id.
    pub fn id(&self) -> u64 {
        self.s.id
    }
    /// IP protocol.
    pub fn proto(&self) -> u8 {
        self.s.key.proto
    }
    /// Client address and port.
    pub fn client(&self) -> SocketAddr {
        self.s.client()
    }
    /// Server address and port.
    pub fn server(&self) -> SocketAddr {
        self.s.server()
    }
    /// VLAN ids (0 where absent), outermost first.
    pub fn vlan(&self) -> [u16; 2] {
        self.s.key.vlan
    }
    /// Picked up mid-stream.
    pub fn mid_stream(&self) -> bool {
        self.s.has(sf::MID_STREAM)
    }
    /// Established (TCP handshake done; others: both directions seen).
    pub fn established(&self) -> bool {
        self.s.has(sf::ESTABLISHED)
    }
    /// A snapshot record of the session (as in start/end events, without an end reason).
    pub fn record(&self) -> SessionRecord {
        self.s.record(None)
    }
}

/// One packet as hooks see it.
#[derive(Clone, Copy, Debug)]
pub struct PacketView<'a> {
    /// The whole frame.
    pub frame: &'a [u8],
    /// Its decoded headers (offsets into `frame`).
    pub decoded: &'a Decoded,
    /// Its direction within the session.
    pub dir: Dir,
}

/// What hooks may do besides returning a verdict.
#[derive(Debug)]
pub struct HookCx<'a> {
    pub(crate) now: Time,
    pub(crate) events: &'a mut EventQueue,
    pub(crate) counters: &'a mut Counters,
    pub(crate) updates: &'a mut SessionUpdates,
}

/// Session facts a hook reported during one call, applied by the engine after it returns.
#[derive(Debug, Default)]
pub(crate) struct SessionUpdates {
    pub(crate) app: Option<AppState>,
    pub(crate) vhost: Option<ArrayString<MAX_VHOST>>,
    pub(crate) threat: Option<ThreatKind>,
}

/// Longest virtual host name kept (a DNS name is at most 253 characters).
pub const MAX_VHOST: usize = 253;

impl HookCx<'_> {
    /// The current time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// The session's application is now known (or known to be unidentifiable): policy
    /// rules that name applications are decided on this packet.
    pub fn set_app(&mut self, app: AppState) {
        self.updates.app = Some(app);
    }

    /// The session's virtual host (HTTP Host, TLS SNI) is now known: vhost rules are
    /// decided on this packet. Stored lowercase; longer than 253 bytes is cut.
    pub fn set_vhost(&mut self, host: &str) {
        let mut v = ArrayString::new();
        for c in host.chars().map(|c| c.to_ascii_lowercase()) {
            if v.try_push(c).is_err() {
                break;
            }
        }
        self.updates.vhost = Some(v);
    }

    /// Raise a threat about a session.
    pub fn raise_threat(&mut self, kind: ThreatKind, s: &SessionView<'_>) {
        let rec = ThreatRecord {
            kind,
            time: self.now,
            session_id: Some(s.id()),
            src: s.client().ip(),
            dst: s.server().ip(),
            proto: s.proto(),
        };
        self.updates.threat = self.updates.threat.or(Some(kind));
        emit_threat(rec, self.events, self.counters);
    }
}

/// Raise a threat not tied to a session (decode and fragment stages).
pub(crate) fn raise_packet_threat(
    kind: ThreatKind,
    d: &Decoded,
    now: Time,
    events: &mut EventQueue,
    counters: &mut Counters,
) {
    let rec = ThreatRecord {
        kind,
        time: now,
        session_id: None,
        src: addr_to_ip(d.ip.src, d.ip.v6),
        dst: addr_to_ip(d.ip.dst, d.ip.v6),
        proto: d.ip.proto,
    };
    emit_threat(rec, events, counters);
}

fn emit_threat(rec: ThreatRecord, events: &mut EventQueue, counters: &mut Counters) {
    counters.threats += 1;
    events.push(Event::Threat(rec), counters);
}

/// Hooks into the packet path. Every method has a default that does nothing (and
/// consumes all payload), so an implementation overrides only what it needs.
pub trait Inspector: Send {
    /// Policy at session creation. Default: continue.
    fn on_session_start(
        &mut self,
        _s: &SessionView<'_>,
        _pkt: &PacketView<'_>,
        _cx: &mut HookCx<'_>,
    ) -> Verdict {
        Verdict::Continue
    }

    /// In-order payload of one direction. Returns bytes consumed (at most `data.len()`).
    /// Default: consume everything.
    fn on_payload(
        &mut self,
        _s: &SessionView<'_>,
        _dir: Dir,
        data: &[u8],
        _cx: &mut HookCx<'_>,
    ) -> usize {
        data.len()
    }

    /// Per-packet policy, after tracking and payload delivery. Default: continue.
    fn on_packet(
        &mut self,
        _s: &SessionView<'_>,
        _pkt: &PacketView<'_>,
        _cx: &mut HookCx<'_>,
    ) -> Verdict {
        Verdict::Continue
    }

    /// The session ended (its end record is already queued).
    fn on_session_end(&mut self, _s: &SessionView<'_>, _cx: &mut HookCx<'_>) {}
}

/// The inspector used when none is set: tracks only.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoInspector;

impl Inspector for NoInspector {}
