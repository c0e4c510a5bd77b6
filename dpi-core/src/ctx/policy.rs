//! The policy side of the packet path: deciding new sessions, re-deciding live ones,
//! blocking, resets, violations and connection reports.
//!
//! - At creation ([`Ctx::decide_new`]): the session's deciding workload and action. A DENY
//!   (Protect, inline) drops the packet and creates no session; the violation is reported
//!   once per flow (a small cache of recently denied flows absorbs retransmissions). A
//!   denied packet of an established TCP flow (not a handshake packet: the flow existed
//!   before the engine or before the policy) also gets resets both ways.
//! - On every packet ([`Ctx::enforce`]): packets of a blocked session are dropped. The
//!   session is decided again when its workload's policy version changed (checked only
//!   when the store published a new snapshot), or when it waited for its application or
//!   vhost and that is now known. A new DENY blocks the session: TCP gets resets to both
//!   ends, every protocol has the packet dropped.
//! - Reports: a session with a deciding workload adds to the connection reports when it
//!   ends, every `report::MID_REPORT_SECS` while it lives, and at once (flushed) when it
//!   becomes a violation.
//!
//! On a tap wiring nothing is dropped (the decision layer already turned DENY into
//! VIOLATE there), and no resets are sent.

use super::Ctx;
use crate::action::{Action, DropReason};
use crate::endpoint::{PolicyStore, UnknownTraffic, WorkloadKey};
use crate::event::{Event, ViolationRecord};
use crate::flow::session::{pf, Session, IMPLICIT_WORKLOAD, NIL, NO_WORKLOAD};
use crate::flow::Dir;
use crate::packet::{Decoded, TcpHdr, L4};
use crate::policy::eval::{decide, Decided, Subject};
use crate::policy::PolicyAction;
use crate::report::{Contribution, ReportKey, MID_REPORT_SECS};
use std::sync::Arc;

/// Recently denied flows (direct-mapped on the flow key hash): the violation of a denied
/// flow is reported once, not for every retransmission.
#[derive(Debug)]
pub(super) struct DeniedFlows {
    slots: Box<[(u64, u64)]>,
}

/// How long a denied flow stays remembered, seconds.
const DENIED_MEMORY_SECS: u64 = 30;
const DENIED_SLOTS: usize = 4096;

impl DeniedFlows {
    pub(super) fn new() -> Self {
        DeniedFlows { slots: vec![(0, 0); DENIED_SLOTS].into_boxed_slice() }
    }

    /// Remember `hash` until `now + DENIED_MEMORY_SECS`; true if it was already there.
    fn seen(&mut self, hash: u64, now_secs: u64) -> bool {
        let slot = &mut self.slots[(hash as usize) & (DENIED_SLOTS - 1)];
        let known = slot.0 == hash && slot.1 > now_secs;
        *slot = (hash, now_secs + DENIED_MEMORY_SECS);
        known
    }
}

fn subject<'a>(s: &Session, vhost: Option<&'a str>, tag_prefix: Option<[u8; 4]>) -> Subject<'a> {
    let c = s.client();
    let v = s.server();
    let (v6, ca) = crate::endpoint::store::split(c.ip());
    let (_, sa) = crate::endpoint::store::split(v.ip());
    Subject {
        client_mac: s.macs[0],
        server_mac: s.macs[1],
        v6,
        client: ca,
        server: sa,
        proto: s.key.proto,
        port: v.port(),
        app: s.pol.app,
        vhost,
        client_names: &[],
        server_names: &[],
        tag_mac: tag_prefix
            .filter(|_| s.key.zone != 0)
            .and_then(|prefix| s.macs.iter().copied().find(|m| m[..4] == prefix)),
    }
}

impl Ctx {
    /// Use `store` for workloads and policy. Sessions already tracked are decided again
    /// on their next packet.
    pub fn set_policy_store(&mut self, store: Arc<PolicyStore>) {
        self.snap = store.load();
        self.store = Some(store);
    }

    /// Take the store's newest snapshot if it changed (one atomic load per packet).
    pub(super) fn refresh_snapshot(&mut self) {
        if let Some(store) = &self.store {
            if store.version() != self.snap.version {
                self.snap = store.load();
            }
        }
    }

    fn decide_session(&self, s: &Session) -> Decided {
        let vhost = (s.pol.vhost != NIL).then(|| self.vhosts.get(s.pol.vhost));
        let mut subj = subject(s, vhost, self.cfg.mac_tag_prefix);
        if !self.snap.has_fqdn_rules() {
            return decide(&self.snap, &subj);
        }
        // Names of both ends: from DNS answers this worker saw, and from the control plane.
        let mut cbuf = [""; 2 * crate::fqdn::MAX_NAMES_PER_ADDR];
        let mut sbuf = [""; 2 * crate::fqdn::MAX_NAMES_PER_ADDR];
        let cn = self.names_of(subj.v6, subj.client, &mut cbuf);
        let sn = self.names_of(subj.v6, subj.server, &mut sbuf);
        subj.client_names = &cbuf[..cn];
        subj.server_names = &sbuf[..sn];
        decide(&self.snap, &subj)
    }

    fn names_of<'a>(&'a self, v6: bool, addr: crate::packet::Addr, out: &mut [&'a str]) -> usize {
        let n = self.fqdn.names_into(v6, addr, self.now, out);
        n + self.snap.static_names(v6, addr, &mut out[n..])
    }

    fn apply_decision(s: &mut Session, d: &Decided, snap_version: u64) {
        s.pol.action = d.action;
        s.pol.rule_id = d.rule_id;
        s.pol.version = d.version;
        s.pol.snap = snap_version as u32;
        s.pol.workload = match d.workload {
            None => NO_WORKLOAD,
            Some(WorkloadKey::Implicit(_)) => IMPLICIT_WORKLOAD,
            Some(WorkloadKey::Registered(id)) => id,
        };
        let keep = s.pol.flags & (pf::BLOCKED | pf::VIOLATION_REPORTED | pf::COUNTED);
        s.pol.flags = keep
            | if d.ingress { pf::INGRESS } else { 0 }
            | if d.enforce { pf::ENFORCE } else { 0 }
            | if d.needs_names { pf::NAMES } else { 0 };
    }

    /// Decide a session about to be created from `frame`. `Err` carries the action for a
    /// packet that must not create a session.
    pub(super) fn decide_new(
        &mut self,
        s: &mut Session,
        frame: &[u8],
        d: &Decoded,
        dir: Dir,
    ) -> Result<(), Action> {
        let (dst, src) = mac_pair(frame);
        s.macs = if dir == Dir::ToServer { [src, dst] } else { [dst, src] };
        if let L4::Icmp(h) = d.l4 {
            if crate::flow::icmp::is_link_control(&h) {
                // IPv6's ARP: tracked, never policed (denying it cuts the link).
                self.counters.icmp6_link_control += 1;
                s.pol.flags |= pf::LINK_CONTROL;
                return Ok(());
            }
        }
        if !self.snap.has_workloads() {
            return Ok(());
        }
        self.counters.policy_lookups += 1;
        let decided = self.decide_session(s);
        Self::apply_decision(s, &decided, self.snap.version);
        if decided.workload.is_none() {
            let multicast = crate::endpoint::store::is_multicast_or_broadcast(
                s.key.v6,
                if s.client_is_lo { s.key.hi_addr } else { s.key.lo_addr },
            );
            return match self.snap.settings.unknown {
                UnknownTraffic::Track => Ok(()),
                _ if multicast => Ok(()),
                UnknownTraffic::Ignore => {
                    self.counters.unknown_ignored += 1;
                    Err(Action::Forward)
                }
                UnknownTraffic::Drop => Err(self.drop(DropReason::UnknownWorkload)),
            };
        }
        if decided.action == PolicyAction::Deny {
            let first = !self.denied.seen(s.hash, self.now.as_secs());
            if first {
                self.counters.flows_denied += 1;
                self.report_violation(s, None);
                let bytes = frame.len() as u64;
                self.add_report(s, bytes, 1, true);
            }
            if let L4::Tcp(h) = d.l4 {
                if !h.flags.syn() && !h.flags.rst() && !h.flags.fin() {
                    self.send_resets(frame, d, &h);
                }
            }
            return Err(self.drop(DropReason::Policy));
        }
        Ok(())
    }

    /// Called once the new session is in the table.
    pub(super) fn after_admit(&mut self, idx: u32) {
        let s = self.table.get(idx);
        if s.pol.action.is_violation() {
            self.violation_in_session(idx);
        }
    }

    /// The policy step of a packet of an existing session, after tracking. `Some` when the
    /// packet must not go on.
    pub(super) fn enforce(&mut self, idx: u32, frame: &[u8], d: &Decoded) -> Option<Action> {
        let snap_version = self.snap.version;
        let s = self.table.get(idx);
        if s.pol.has(pf::BLOCKED) {
            return Some(self.drop(DropReason::Blocked));
        }
        if s.pol.has(pf::LINK_CONTROL) {
            return None;
        }
        let mut reeval = s.pol.has(pf::REEVAL);
        if s.pol.snap != snap_version as u32 {
            // A new snapshot: decide again only if this session's workload changed.
            let cur = self.decide_session(s);
            let same = cur.version == s.pol.version
                && cur.workload.map_or(NO_WORKLOAD, |k| match k {
                    WorkloadKey::Registered(id) => id,
                    WorkloadKey::Implicit(_) => IMPLICIT_WORKLOAD,
                }) == s.pol.workload;
            reeval |= !same;
            self.table.get_mut(idx).pol.snap = snap_version as u32;
        }
        if !reeval {
            self.maybe_mid_report(idx);
            return None;
        }
        self.counters.policy_reevaluations += 1;
        self.counters.policy_lookups += 1;
        let s = self.table.get(idx);
        let before = (s.pol.action, s.pol.rule_id);
        let decided = self.decide_session(s);
        let s = self.table.get_mut(idx);
        s.pol.flags &= !pf::REEVAL;
        Self::apply_decision(s, &decided, snap_version);
        if (s.pol.action, s.pol.rule_id) != before {
            // Bytes so far belong to the old decision's report.
            self.report_progress(idx, false);
            if decided.action.is_violation() {
                self.table.get_mut(idx).pol.flags &= !pf::VIOLATION_REPORTED;
                self.violation_in_session(idx);
            }
            if decided.action == PolicyAction::Deny {
                self.counters.sessions_blocked += 1;
                self.table.get_mut(idx).pol.flags |= pf::BLOCKED;
                self.bypass(idx, crate::event::BypassReason::Blocked);
                if let L4::Tcp(h) = d.l4 {
                    self.send_resets(frame, d, &h);
                }
                return Some(self.drop(DropReason::Policy));
            }
        } else {
            self.maybe_mid_report(idx);
        }
        None
    }

    /// Apply what hooks reported during the last call (application, vhost, threat).
    pub(super) fn apply_updates(&mut self, idx: u32) {
        let u = &mut self.updates;
        let (app, vhost, threat) = (u.app.take(), u.vhost.take(), u.threat.take());
        let s = self.table.get_mut(idx);
        if let Some(t) = threat {
            s.threat = s.threat.or(Some(t));
        }
        if let Some(app) = app {
            if s.pol.app != app {
                s.pol.app = app;
                s.pol.flags |= pf::REEVAL;
            }
        }
        if let Some(v) = vhost {
            self.store_vhost(idx, &v);
        }
    }

    /// Keep the session's virtual host (lowercase) for vhost rules; decide again.
    pub(super) fn store_vhost(&mut self, idx: u32, v: &str) {
        let s = self.table.get_mut(idx);
        if s.pol.vhost == NIL {
            match self.vhosts.take() {
                Some(slot) => s.pol.vhost = slot,
                None => {
                    self.counters.vhost_pool_exhausted += 1;
                    return;
                }
            }
        }
        self.vhosts.set(s.pol.vhost, v);
        s.pol.flags |= pf::REEVAL;
    }

    /// Report a violation of a live session (once).
    fn violation_in_session(&mut self, idx: u32) {
        let s = self.table.get(idx);
        if s.pol.has(pf::VIOLATION_REPORTED) {
            return;
        }
        let s = s.clone();
        self.report_violation(&s, Some(s.id));
        self.table.get_mut(idx).pol.flags |= pf::VIOLATION_REPORTED;
        self.report_progress(idx, true);
    }

    fn report_violation(&mut self, s: &Session, session_id: Option<u64>) {
        let Some(workload) = s.workload_key() else { return };
        self.counters.violations += 1;
        let rec = ViolationRecord {
            time: self.now,
            session_id,
            workload,
            ingress: s.pol.has(pf::INGRESS),
            client: s.client(),
            server: s.server(),
            proto: s.key.proto,
            vlan: s.key.vlan,
            app: s.pol.app,
            rule_id: s.pol.rule_id,
            action: s.pol.action,
        };
        self.events.push(Event::Violation(rec), &mut self.counters);
    }

    fn maybe_mid_report(&mut self, idx: u32) {
        let s = self.table.get(idx);
        if s.pol.workload != NO_WORKLOAD
            && self.now.as_secs() >= u64::from(s.pol.reported_at) + MID_REPORT_SECS
            && s.pol.reported_at != 0
        {
            self.report_progress(idx, false);
        }
    }

    /// Add the session's unreported bytes (and itself, once) to the connection reports.
    pub(super) fn report_progress(&mut self, idx: u32, flush_now: bool) {
        let s = self.table.get(idx);
        if s.pol.workload == NO_WORKLOAD || s.pol.action == PolicyAction::Open {
            return;
        }
        let total = s.wings[0].sent.bytes + s.wings[1].sent.bytes;
        let bytes = total - s.pol.reported_bytes;
        let first = !s.pol.has(pf::COUNTED);
        let s = s.clone();
        self.add_report(&s, bytes, u32::from(first), flush_now);
        let now = self.now.as_secs() as u32;
        let s = self.table.get_mut(idx);
        s.pol.reported_bytes = total;
        s.pol.reported_at = now.max(1);
        s.pol.flags |= pf::COUNTED;
    }

    fn add_report(&mut self, s: &Session, bytes: u64, sessions: u32, flush_now: bool) {
        let Some(workload) = s.workload_key() else { return };
        let v = s.server();
        let (v6, client) = crate::endpoint::store::split(s.client().ip());
        let (_, server) = crate::endpoint::store::split(v.ip());
        let key = ReportKey {
            workload,
            ingress: s.pol.has(pf::INGRESS),
            v6,
            client,
            server,
            port: v.port(),
            proto: s.key.proto,
            app: s.pol.app,
            rule_id: s.pol.rule_id,
            action: s.pol.action,
        };
        let c = Contribution {
            bytes,
            sessions,
            violations: if s.pol.action.is_violation() {
                sessions.max(u32::from(flush_now))
            } else {
                0
            },
            first_seen: s.first_seen,
            last_seen: s.last_seen,
            threat: s.threat,
        };
        self.reports.add(key, c, flush_now, &mut self.events, &mut self.counters);
    }

    /// Queue resets to both ends of the TCP connection `frame` belongs to.
    fn send_resets(&mut self, frame: &[u8], d: &Decoded, h: &TcpHdr) {
        // The receiver expects this packet's sequence number (the packet is dropped); the
        // sender expects what it acknowledged.
        let mut sent = 0;
        for (toward_sender, seq) in [(false, h.seq), (true, h.ack)] {
            if toward_sender && !h.flags.ack() {
                continue;
            }
            let mut t = crate::transmit::Transmit::default();
            if crate::enforce::reset::build_reset(frame, d, toward_sender, seq, &mut t) {
                if self.transmit.push(t) {
                    sent += 1;
                } else {
                    self.counters.transmit_dropped += 1;
                }
            }
        }
        self.counters.resets_sent += sent;
    }
}

/// Destination and source MAC of a frame (the decoder guaranteed 14 bytes).
fn mac_pair(frame: &[u8]) -> ([u8; 6], [u8; 6]) {
    let mut dst = [0; 6];
    let mut src = [0; 6];
    dst.copy_from_slice(&frame[0..6]);
    src.copy_from_slice(&frame[6..12]);
    (dst, src)
}

/// Virtual host names of sessions waiting on (or decided by) vhost rules: fixed-size
/// slots, allocated up to `Config::max_vhosts` and recycled.
#[derive(Debug)]
pub(super) struct VhostPool {
    slots: Vec<arrayvec::ArrayString<{ crate::hooks::MAX_VHOST }>>,
    free: Vec<u32>,
    max: usize,
}

impl VhostPool {
    pub(super) fn new(max: usize) -> Self {
        VhostPool { slots: Vec::new(), free: Vec::new(), max }
    }

    pub(super) fn take(&mut self) -> Option<u32> {
        if let Some(i) = self.free.pop() {
            return Some(i);
        }
        if self.slots.len() >= self.max {
            return None;
        }
        self.slots.push(arrayvec::ArrayString::new());
        Some((self.slots.len() - 1) as u32)
    }

    pub(super) fn set(&mut self, slot: u32, v: &str) {
        let s = &mut self.slots[slot as usize];
        s.clear();
        let _ = s.try_push_str(v);
    }

    pub(super) fn get(&self, slot: u32) -> &str {
        &self.slots[slot as usize]
    }

    pub(super) fn release(&mut self, slot: u32) {
        self.free.push(slot);
    }
}
