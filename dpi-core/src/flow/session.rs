//! What a session holds: its key, which end is the client, two wings (client and server)
//! with per-direction counters and TCP sequence state, timers and flags. Fixed size, no
//! heap data: stream buffers live in a shared pool and are referenced by index.

use super::key::FlowKey;
use super::Dir;
use crate::event::{BypassReason, DirCounts, EndReason, SessionRecord, TcpState, TcpSummary};
use crate::packet::{addr_to_ip, proto, Addr};
use crate::time::Time;
use core::net::SocketAddr;

/// "No index" for intrusive links and stream buffer references.
pub(crate) const NIL: u32 = u32::MAX;

/// Wing flags.
pub(crate) mod wf {
    /// A SYN was seen from this end; `isn` is valid.
    pub(crate) const SYN: u8 = 1 << 0;
    /// `next_seq` is valid.
    pub(crate) const SEQ: u8 = 1 << 1;
    /// A FIN was seen from this end; `fin_seq` is valid.
    pub(crate) const FIN: u8 = 1 << 2;
    /// This end's FIN was acknowledged.
    pub(crate) const FIN_ACKED: u8 = 1 << 3;
    /// This end advertised a window (`acked`/`window` valid).
    pub(crate) const ACKED: u8 = 1 << 4;
    /// The FIN has been consumed by the stream (`next_seq` is past it).
    pub(crate) const FIN_DONE: u8 = 1 << 5;
    /// This end offered window scaling in its SYN.
    pub(crate) const WSCALE: u8 = 1 << 6;
}

/// Session flags.
pub(crate) mod sf {
    /// Picked up without a handshake.
    pub(crate) const MID_STREAM: u16 = 1 << 0;
    /// TCP handshake complete (or mid-stream); other protocols: both directions seen.
    pub(crate) const ESTABLISHED: u16 = 1 << 1;
    /// Payload seen (TCP active timeout applies).
    pub(crate) const ACTIVE: u16 = 1 << 2;
    /// A RST closed it.
    pub(crate) const RST: u16 = 1 << 3;
    /// Window scaling negotiated by both ends.
    pub(crate) const WSCALE: u16 = 1 << 4;
    /// IPv6.
    pub(crate) const V6: u16 = 1 << 5;
}

/// One end of a session.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Wing {
    /// Packets and bytes sent by this end.
    pub(crate) sent: DirCounts,
    /// TCP: initial sequence number (with `wf::SYN`).
    pub(crate) isn: u32,
    /// TCP: next in-order sequence number expected from this end (with `wf::SEQ`).
    pub(crate) next_seq: u32,
    /// TCP: sequence number of this end's FIN (with `wf::FIN`).
    pub(crate) fin_seq: u32,
    /// TCP: highest acknowledgment this end sent (with `wf::ACKED`).
    pub(crate) acked: u32,
    /// TCP: window this end advertised, scaled, in bytes.
    pub(crate) window: u32,
    /// TCP: stream buffer index in the pool, or `NIL`.
    pub(crate) stream: u32,
    /// TCP: segments retransmitted by this end.
    pub(crate) retrans: u16,
    /// TCP: segments from this end that arrived ahead of a hole.
    pub(crate) ooo: u16,
    /// TCP state of this end.
    pub(crate) state: TcpState,
    /// TCP: window scale shift offered in the SYN.
    pub(crate) wscale: u8,
    /// `wf` flags.
    pub(crate) flags: u8,
}

impl Wing {
    pub(crate) fn new() -> Self {
        Wing { stream: NIL, ..Default::default() }
    }

    pub(crate) fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

/// Session policy flags.
pub(crate) mod pf {
    /// The deciding workload is the server.
    pub(crate) const INGRESS: u8 = 1 << 0;
    /// Denials are enforced (Protect, inline).
    pub(crate) const ENFORCE: u8 = 1 << 1;
    /// Blocked: every further packet is dropped.
    pub(crate) const BLOCKED: u8 = 1 << 2;
    /// The violation was reported.
    pub(crate) const VIOLATION_REPORTED: u8 = 1 << 3;
    /// Counted as a session in a connection report.
    pub(crate) const COUNTED: u8 = 1 << 4;
    /// The application or vhost changed: decide again on this packet.
    pub(crate) const REEVAL: u8 = 1 << 5;
    /// The deciding workload's rules name DNS peers.
    pub(crate) const NAMES: u8 = 1 << 6;
    /// ICMPv6 link control (neighbour discovery, MLD): never policed.
    pub(crate) const LINK_CONTROL: u8 = 1 << 7;
}

/// No workload decides (open).
pub(crate) const NO_WORKLOAD: u32 = u32::MAX;
/// The deciding workload is an implicit one (its address is on the deciding side).
pub(crate) const IMPLICIT_WORKLOAD: u32 = u32::MAX - 1;

/// A session's policy state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionPolicy {
    /// Bytes already in connection reports.
    pub(crate) reported_bytes: u64,
    /// When the session last contributed to a report (whole seconds).
    pub(crate) reported_at: u32,
    /// Rule that decided.
    pub(crate) rule_id: u32,
    /// Deciding workload id, `IMPLICIT_WORKLOAD` or `NO_WORKLOAD`.
    pub(crate) workload: u32,
    /// Its policy version when decided.
    pub(crate) version: u32,
    /// Low bits of the store snapshot version last checked against.
    pub(crate) snap: u32,
    /// Slot of the session's vhost in the vhost pool, or `NIL`.
    pub(crate) vhost: u32,
    /// Application.
    pub(crate) app: crate::app::AppState,
    /// Action.
    pub(crate) action: crate::policy::PolicyAction,
    /// `pf` flags.
    pub(crate) flags: u8,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            reported_bytes: 0,
            reported_at: 0,
            rule_id: 0,
            workload: NO_WORKLOAD,
            version: 0,
            snap: 0,
            vhost: NIL,
            app: crate::app::AppState::Pending,
            action: crate::policy::PolicyAction::Open,
            flags: 0,
        }
    }
}

impl SessionPolicy {
    pub(crate) fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

/// One tracked session.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub(crate) key: FlowKey,
    /// Hash of `key` (kept so the index can grow without rehashing keys).
    pub(crate) hash: u64,
    pub(crate) id: u64,
    pub(crate) first_seen: Time,
    pub(crate) last_seen: Time,
    /// `[client, server]`.
    pub(crate) wings: [Wing; 2],
    /// MAC addresses, `[client, server]`, from the first packet.
    pub(crate) macs: [[u8; 6]; 2],
    /// Policy state.
    pub(crate) pol: SessionPolicy,
    /// The most recent threat a hook raised about the session.
    pub(crate) threat: Option<crate::event::ThreatKind>,
    /// Identification slot while the application is being identified, else `NIL`.
    pub(crate) ident: u32,
    /// Timer wheel links (intrusive doubly linked list per slot).
    pub(crate) timer_prev: u32,
    pub(crate) timer_next: u32,
    /// Deadline (whole seconds) the session is filed under in the wheel; the real
    /// deadline `last_seen + timeout` may be later (refreshes are lazy).
    pub(crate) timer_deadline: u64,
    /// Current idle timeout, seconds.
    pub(crate) timeout: u32,
    pub(crate) icmp_errors: u32,
    pub(crate) flags: u16,
    pub(crate) bypass: Option<BypassReason>,
    /// The client is the key's lower endpoint.
    pub(crate) client_is_lo: bool,
    /// Slot is in use.
    pub(crate) live: bool,
}

impl Session {
    pub(crate) fn new(key: FlowKey, hash: u64, id: u64, client_is_lo: bool, now: Time) -> Self {
        Session {
            key,
            hash,
            id,
            first_seen: now,
            last_seen: now,
            wings: [Wing::new(), Wing::new()],
            macs: [[0; 6]; 2],
            pol: SessionPolicy::default(),
            threat: None,
            ident: NIL,
            timer_prev: NIL,
            timer_next: NIL,
            timer_deadline: 0,
            timeout: 0,
            icmp_errors: 0,
            flags: if key.v6 { sf::V6 } else { 0 },
            bypass: None,
            client_is_lo,
            live: true,
        }
    }

    pub(crate) fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }

    /// Direction of a packet whose source is (`src_is_lo`) the key's lower endpoint.
    pub(crate) fn dir_of(&self, src_is_lo: bool) -> Dir {
        if src_is_lo == self.client_is_lo {
            Dir::ToServer
        } else {
            Dir::ToClient
        }
    }

    /// Real deadline in whole seconds.
    pub(crate) fn deadline(&self) -> u64 {
        self.last_seen.as_secs() + u64::from(self.timeout)
    }

    /// TCP closed by FIN on both sides or by RST.
    pub(crate) fn tcp_closed(&self) -> bool {
        self.has(sf::RST) || (self.wings[0].has(wf::FIN) && self.wings[1].has(wf::FIN))
    }

    /// The server's address and port, as in the key.
    pub(crate) fn server_endpoint(&self) -> (Addr, u16) {
        if self.client_is_lo {
            (self.key.hi_addr, self.key.hi_port)
        } else {
            (self.key.lo_addr, self.key.lo_port)
        }
    }

    pub(crate) fn client(&self) -> SocketAddr {
        let (a, p) = if self.client_is_lo {
            (self.key.lo_addr, self.key.lo_port)
        } else {
            (self.key.hi_addr, self.key.hi_port)
        };
        SocketAddr::new(addr_to_ip(a, self.key.v6), p)
    }

    pub(crate) fn server(&self) -> SocketAddr {
        let (a, p) = self.server_endpoint();
        SocketAddr::new(addr_to_ip(a, self.key.v6), p)
    }

    /// Why the session would end if its timer fired now.
    pub(crate) fn timeout_reason(&self) -> EndReason {
        if self.key.proto == proto::TCP && self.has(sf::RST) {
            EndReason::TcpRst
        } else if self.key.proto == proto::TCP && self.tcp_closed() {
            EndReason::TcpFin
        } else {
            EndReason::IdleTimeout
        }
    }

    /// The deciding workload, if any.
    pub(crate) fn workload_key(&self) -> Option<crate::endpoint::WorkloadKey> {
        use crate::endpoint::WorkloadKey;
        match self.pol.workload {
            NO_WORKLOAD => None,
            IMPLICIT_WORKLOAD => Some(WorkloadKey::Implicit(if self.pol.has(pf::INGRESS) {
                self.server().ip()
            } else {
                self.client().ip()
            })),
            id => Some(WorkloadKey::Registered(id)),
        }
    }

    fn policy_summary(&self) -> Option<crate::event::PolicySummary> {
        Some(crate::event::PolicySummary {
            workload: self.workload_key()?,
            ingress: self.pol.has(pf::INGRESS),
            action: self.pol.action,
            rule_id: self.pol.rule_id,
            blocked: self.pol.has(pf::BLOCKED),
        })
    }

    pub(crate) fn record(&self, end: Option<EndReason>) -> SessionRecord {
        let [c, s] = &self.wings;
        let tcp = (self.key.proto == proto::TCP).then(|| TcpSummary {
            client_state: c.state,
            server_state: s.state,
            retransmissions: u32::from(c.retrans) + u32::from(s.retrans),
            out_of_order: u32::from(c.ooo) + u32::from(s.ooo),
        });
        let vlan_count = self.key.vlan.iter().take_while(|&&v| v != 0).count() as u8;
        SessionRecord {
            id: self.id,
            proto: self.key.proto,
            client: self.client(),
            server: self.server(),
            vlan: self.key.vlan,
            vlan_count,
            to_server: c.sent,
            to_client: s.sent,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            tcp,
            mid_stream: self.has(sf::MID_STREAM),
            established: self.has(sf::ESTABLISHED),
            closed: self.key.proto == proto::TCP && self.tcp_closed(),
            bypassed: self.bypass,
            icmp_errors: self.icmp_errors,
            end,
            policy: self.policy_summary(),
            app: self.pol.app,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_size_is_bounded() {
        // Documented in the crate docs ("bytes per session"); keep it honest.
        let size = core::mem::size_of::<Session>();
        println!("Session: {size} bytes");
        assert!(size <= 272, "Session is {size} bytes");
    }
}
