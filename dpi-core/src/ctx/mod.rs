//! The per-worker engine context and the packet path that drives the stages; the policy
//! side of it is in [`policy`].

mod ident;
mod policy;

use crate::action::{Action, DropReason};
use crate::app::ident::IdentPool;
use crate::app::AppState;
use crate::config::Config;
use crate::counters::Counters;
use crate::endpoint::{PolicyStore, Snapshot};
use crate::event::{BypassReason, EndReason, Event, ThreatKind};
use crate::flow::icmp;
use crate::flow::key::FlowKey;
use crate::flow::listeners::Listeners;
use crate::flow::session::{sf, Session, NIL};
use crate::flow::stream::{seq_diff, StreamError, StreamPool};
use crate::flow::table::SessionTable;
use crate::flow::tcp::{self, Open, Track};
use crate::flow::Dir;
use crate::frag::{Defrag, Offer};
use crate::hooks::SessionUpdates;
use crate::hooks::{
    raise_packet_threat, HookCx, Inspector, NoInspector, PacketView, SessionView, Verdict,
};
use crate::packet::{self, proto, Decoded, IcmpHdr, TcpHdr, UdpHdr, L4};
use crate::queue::EventQueue;
use crate::report::Reporter;
use crate::time::Time;
use crate::transmit::{Transmit, TransmitQueue};
use std::sync::Arc;

/// UDP ports whose side is the server whichever way the first packet goes (DHCP, DNS,
/// mDNS; reference §3.9).
const UDP_SERVER_PORTS: [u16; 3] = [67, 53, 5353];

/// One worker's engine: session table, timers, reassembly state, counters, and the queues
/// of events and frames to transmit. Not shared between threads; run one per worker.
pub struct Ctx {
    cfg: Config,
    now: Time,
    table: SessionTable,
    streams: StreamPool,
    listeners: Listeners,
    defrag: Defrag,
    events: EventQueue,
    transmit: TransmitQueue,
    counters: Counters,
    inspector: Box<dyn Inspector>,
    next_id: u64,
    /// Rebuilt datagram of the last completed fragment set (reused buffer).
    reasm: Vec<u8>,
    /// Shared workloads and policy (none: every session is open).
    store: Option<Arc<PolicyStore>>,
    /// The store's snapshot this worker uses.
    snap: Arc<Snapshot>,
    reports: Reporter,
    /// Names of addresses, learned from DNS answers seen by this worker.
    fqdn: crate::fqdn::FqdnMap,
    denied: policy::DeniedFlows,
    vhosts: policy::VhostPool,
    /// What hooks reported during the current call.
    updates: SessionUpdates,
    /// Application identification state of sessions still undecided.
    ident: IdentPool,
    /// Endpoint applications already reported (direct-mapped).
    app_seen: Box<[u64]>,
}

impl core::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ctx")
            .field("now", &self.now)
            .field("sessions", &self.table.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Ctx {
    /// A new engine with no inspector hooks.
    pub fn new(cfg: Config) -> Self {
        Self::with_inspector(cfg, Box::new(NoInspector))
    }

    /// A new engine calling `inspector` at the hook points.
    pub fn with_inspector(cfg: Config, inspector: Box<dyn Inspector>) -> Self {
        let mut cfg = cfg;
        let max = crate::config::Timeouts::MAX_SECS;
        let t = &mut cfg.timeouts;
        for v in [
            &mut t.tcp_handshake,
            &mut t.tcp_established_idle,
            &mut t.tcp_active,
            &mut t.tcp_half_closed,
            &mut t.tcp_closed,
            &mut t.udp,
            &mut t.icmp,
            &mut t.other,
        ] {
            *v = (*v).clamp(1, max);
        }
        Ctx {
            table: SessionTable::new(cfg.max_sessions, cfg.hash_seed),
            streams: StreamPool::with_size(cfg.max_stream_buffers, cfg.stream_buffer_bytes),
            listeners: Listeners::new(cfg.listener_cache_entries),
            defrag: Defrag::new(cfg.frag, cfg.hash_seed),
            events: EventQueue::new(cfg.max_pending_events),
            transmit: TransmitQueue::new(cfg.max_pending_transmit),
            counters: Counters::default(),
            inspector,
            next_id: u64::from(cfg.worker_id) << 48,
            reasm: Vec::new(),
            store: None,
            snap: Arc::new(Snapshot::default()),
            reports: Reporter::new(cfg.max_report_entries, cfg.report_interval_secs),
            fqdn: crate::fqdn::FqdnMap::with_config(cfg.fqdn),
            denied: policy::DeniedFlows::new(),
            vhosts: policy::VhostPool::new(cfg.max_vhosts),
            updates: SessionUpdates::default(),
            ident: IdentPool::new(cfg.max_identifying),
            app_seen: vec![0; 4096].into_boxed_slice(),
            now: Time::ZERO,
            cfg,
        }
    }

    /// Replace the inspector.
    pub fn set_inspector(&mut self, inspector: Box<dyn Inspector>) {
        self.inspector = inspector;
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Live sessions.
    pub fn session_count(&self) -> usize {
        self.table.len()
    }

    /// Datagrams under fragment reassembly.
    pub fn fragment_count(&self) -> usize {
        self.defrag.len()
    }

    /// Sessions whose application is being identified.
    pub fn identifying_count(&self) -> usize {
        self.ident.in_use()
    }

    /// Stream buffers in use.
    pub fn stream_buffers_in_use(&self) -> usize {
        self.streams.in_use()
    }

    /// Events waiting in the queue.
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// The engine's clock (the latest time given to [`Ctx::handle_timeout`]).
    pub fn now(&self) -> Time {
        self.now
    }

    /// Next event, if any. Poll after every `recv_packet` and `handle_timeout`.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop()
    }

    /// Next frame the engine wants sent (TCP resets; none are synthesised before the
    /// policy stage exists).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmit.pop()
    }

    /// Advance the clock to `now` and expire what is due: sessions past their idle
    /// timeout, incomplete fragment sets. Call it with each packet's time before
    /// `recv_packet` (cheap when the second has not changed) and periodically when idle.
    /// Time never goes backwards: an earlier `now` is ignored.
    pub fn handle_timeout(&mut self, now: Time) {
        if now < self.now {
            return;
        }
        self.now = now;
        let secs = now.as_secs();
        self.table.start_clock(secs);
        while let Some(idx) = self.table.pop_expired(secs) {
            let reason = self.table.get(idx).timeout_reason();
            self.counters.sessions_timed_out += 1;
            self.end_session(idx, reason);
        }
        self.counters.frags_timed_out += self.defrag.expire(now);
        self.reports.tick(now, &mut self.events, &mut self.counters);
        self.fqdn.expire(now);
    }

    /// End live sessions (reason `flushed`), at most as many as the event queue has room
    /// for. Returns how many remain: call again after draining events until it returns 0.
    pub fn flush(&mut self) -> usize {
        let mut room = self.cfg.max_pending_events.max(1).saturating_sub(self.events.len());
        let mut next = self.table.next_live(0);
        while let (Some(idx), true) = (next, room > 0) {
            self.counters.sessions_flushed += 1;
            self.end_session(idx, EndReason::Flushed);
            room -= 1;
            next = self.table.next_live(idx + 1);
        }
        if self.table.len() == 0
            && self.events.len() + self.reports.len() <= self.cfg.max_pending_events
        {
            self.reports.flush(&mut self.events, &mut self.counters);
        }
        self.table.len()
    }

    /// Inspect one frame (a whole Ethernet II frame) and say what to do with it.
    pub fn recv_packet(&mut self, frame: &mut [u8]) -> Action {
        self.refresh_snapshot();
        self.counters.packets += 1;
        self.counters.bytes += frame.len() as u64;
        let mut d = Decoded::default();
        match packet::decode_into(frame, &mut d, self.cfg.verify_checksums) {
            Ok(None) => {}
            Ok(Some(_)) => {
                self.counters.non_ip += 1;
                return Action::Forward;
            }
            Err(r) => return self.drop(r),
        }
        if d.ip.v6 {
            self.counters.ipv6 += 1;
        } else {
            self.counters.ipv4 += 1;
        }
        if d.vlan_count > 0 {
            self.counters.vlan_tagged += 1;
        }
        if d.ip.atomic_frag {
            self.counters.frags_atomic += 1;
        }
        if d.ip.truncated {
            self.counters.truncated += 1;
        }
        d.zone = self.zone_of(frame);
        if let Some(fi) = d.ip.frag {
            return self.recv_fragment(frame, &d, &fi);
        }
        self.inspect(frame, &d)
    }

    /// The observation zone of a frame: the index of a tagged MAC (`mac_tag_prefix`) in its
    /// source or destination, plus one; 0 when neither is tagged.
    fn zone_of(&self, frame: &[u8]) -> u16 {
        let Some(prefix) = self.cfg.mac_tag_prefix else { return 0 };
        for mac in [&frame[6..12], &frame[0..6]] {
            if mac[..4] == prefix {
                return u16::from_be_bytes([mac[4], mac[5]]).wrapping_add(1).max(1);
            }
        }
        0
    }

    fn drop(&mut self, r: DropReason) -> Action {
        self.counters.count_drop(r);
        Action::Drop(r)
    }

    fn recv_fragment(&mut self, frame: &[u8], d: &Decoded, fi: &packet::FragInfo) -> Action {
        self.counters.frags += 1;
        let mut out = core::mem::take(&mut self.reasm);
        let action = match self.defrag.offer(frame, d, fi, self.now, &mut out) {
            Offer::Held => Action::Forward,
            Offer::Rejected(r) => {
                if r == DropReason::FragOverlap {
                    self.counters.frags_overlapping += 1;
                    raise_packet_threat(
                        ThreatKind::IpTeardrop,
                        d,
                        self.now,
                        &mut self.events,
                        &mut self.counters,
                    );
                }
                self.drop(r)
            }
            Offer::Complete => {
                self.counters.frags_reassembled += 1;
                let mut rd = Decoded { zone: d.zone, ..Decoded::default() };
                match packet::decode_into(&out, &mut rd, self.cfg.verify_checksums) {
                    Ok(None) if rd.ip.frag.is_none() => self.inspect(&out, &rd),
                    Ok(_) => self.drop(DropReason::FragInvalid),
                    Err(r) => self.drop(r),
                }
            }
        };
        self.reasm = out;
        action
    }

    fn inspect(&mut self, frame: &[u8], d: &Decoded) -> Action {
        match d.l4 {
            L4::Tcp(h) => self.recv_tcp(frame, d, &h),
            L4::Udp(h) => self.recv_udp(frame, d, &h),
            L4::Icmp(h) => self.recv_icmp(frame, d, &h),
            L4::Other | L4::Fragment => self.recv_other(frame, d),
        }
    }

    // ---- per-protocol paths ----------------------------------------------------------

    fn recv_tcp(&mut self, frame: &[u8], d: &Decoded, h: &TcpHdr) -> Action {
        self.counters.tcp += 1;
        let (mut key, src_lo) =
            FlowKey::new(d.ip.v6, proto::TCP, d.vlan, d.ip.src, h.sport, d.ip.dst, h.dport);
        key.zone = d.zone;
        let hash = self.table.hash(&key);
        let mut found = self.table.find(hash, &key);
        if let Some(idx) = found {
            let s = self.table.get(idx);
            if tcp::is_port_reuse(s, s.dir_of(src_lo), h) {
                self.counters.sessions_port_reused += 1;
                self.end_session(idx, EndReason::PortReuse);
                found = None;
            }
        }
        let (idx, dir) = match found {
            Some(idx) => (idx, self.table.get(idx).dir_of(src_lo)),
            None => {
                let open = tcp::classify_new(h);
                let client_is_src = match open {
                    Open::Refuse => {
                        // No session for a lone FIN or RST, but policy still applies: a
                        // denied flow's teardown packets are dropped too (NeuVector lets
                        // them through unchecked).
                        self.counters.tcp_no_session += 1;
                        let client_is_src = self.client_is_src_by_ports(d, h.sport, h.dport);
                        let dir = if client_is_src { Dir::ToServer } else { Dir::ToClient };
                        let mut s = Session::new(key, hash, 0, client_is_src == src_lo, self.now);
                        return match self.decide_new(&mut s, frame, d, dir) {
                            Ok(()) => Action::Forward,
                            Err(a) => a,
                        };
                    }
                    Open::Syn => true,
                    Open::SynAck => false,
                    Open::MidStream => self.client_is_src_by_ports(d, h.sport, h.dport),
                };
                let dir = if client_is_src { Dir::ToServer } else { Dir::ToClient };
                let mut s = self.new_session(key, hash, client_is_src == src_lo);
                tcp::init(&mut s, open, dir, h, &mut self.counters);
                s.timeout = tcp::timeout(&s, &self.cfg.timeouts);
                match self.admit(s, frame, d, dir) {
                    Ok(idx) => (idx, dir),
                    Err(a) => return a,
                }
            }
        };
        self.account(idx, dir, frame.len());
        let payload_len = d.payload_wire_len as u32;
        let step = tcp::track(self.table.get_mut(idx), dir, h, payload_len, &mut self.counters);
        match step {
            Track::Payload(seq) if payload_len > 0 => {
                let payload = &frame[d.payload_off..d.payload_off + d.payload_len];
                self.deliver_tcp(idx, dir, seq, payload, payload_len);
            }
            Track::Bypass(r) => {
                self.bypass(idx, r);
                if payload_len > 0 {
                    self.advance_bypassed(idx, dir, h.seq, payload_len);
                }
            }
            _ => {}
        }
        let s = self.table.get_mut(idx);
        tcp::consume_fin(s, dir);
        if h.flags.syn() && h.flags.ack() && dir == Dir::ToClient {
            let (a, p) = s.server_endpoint();
            self.listeners.learn(a, p, proto::TCP);
        }
        let timeout = tcp::timeout(self.table.get(idx), &self.cfg.timeouts);
        self.finish_packet(idx, frame, d, dir, timeout)
    }

    fn recv_udp(&mut self, frame: &[u8], d: &Decoded, h: &UdpHdr) -> Action {
        self.counters.udp += 1;
        let (mut key, src_lo) =
            FlowKey::new(d.ip.v6, proto::UDP, d.vlan, d.ip.src, h.sport, d.ip.dst, h.dport);
        key.zone = d.zone;
        let hash = self.table.hash(&key);
        let (idx, dir) = match self.table.find(hash, &key) {
            Some(idx) => (idx, self.table.get(idx).dir_of(src_lo)),
            None => {
                let client_is_src = if UDP_SERVER_PORTS.contains(&h.dport) {
                    true
                } else if UDP_SERVER_PORTS.contains(&h.sport) {
                    false
                } else if self.listeners.is_listening(d.ip.dst, h.dport, proto::UDP) {
                    true
                } else {
                    !self.listeners.is_listening(d.ip.src, h.sport, proto::UDP)
                };
                let timeout = self.cfg.timeouts.udp;
                match self.open(key, hash, src_lo, client_is_src, timeout, frame, d) {
                    Ok(found) => found,
                    Err(a) => return a,
                }
            }
        };
        self.account(idx, dir, frame.len());
        self.mark_if_bidirectional(idx);
        if dir == Dir::ToClient {
            let (a, p) = self.table.get(idx).server_endpoint();
            self.listeners.learn(a, p, proto::UDP);
        }
        if d.payload_len > 0 && !d.ip.truncated {
            let payload = &frame[d.payload_off..d.payload_off + d.payload_len];
            if h.sport == 53 && dir == Dir::ToClient {
                // DNS answers teach the names of addresses, for FQDN rules.
                self.counters.fqdn_learned += self.fqdn.learn_from_dns(payload, self.now) as u64;
            }
            self.deliver_datagram(idx, dir, payload);
        }
        let timeout = self.cfg.timeouts.udp;
        self.finish_packet(idx, frame, d, dir, timeout)
    }

    fn recv_icmp(&mut self, frame: &[u8], d: &Decoded, h: &IcmpHdr) -> Action {
        self.counters.icmp += 1;
        if icmp::is_error(h) {
            let quote = &frame[d.payload_off..d.payload_off + d.payload_len];
            if let Some(qk) = icmp::quoted_key(quote, d) {
                let qh = self.table.hash(&qk);
                if let Some(idx) = self.table.find(qh, &qk) {
                    self.counters.icmp_errors_matched += 1;
                    let s = self.table.get_mut(idx);
                    s.icmp_errors = s.icmp_errors.saturating_add(1);
                    return Action::Forward;
                }
            }
            self.counters.icmp_errors_unmatched += 1;
        }
        let (sport, dport) = icmp::pseudo_ports(h);
        let (mut key, src_lo) =
            FlowKey::new(d.ip.v6, d.ip.proto, d.vlan, d.ip.src, sport, d.ip.dst, dport);
        key.zone = d.zone;
        let hash = self.table.hash(&key);
        let (idx, dir) = match self.table.find(hash, &key) {
            Some(idx) => (idx, self.table.get(idx).dir_of(src_lo)),
            None => {
                // A reply without its request: the requester (its receiver) is the client.
                let client_is_src = sport == h.id;
                let timeout = self.cfg.timeouts.icmp;
                match self.open(key, hash, src_lo, client_is_src, timeout, frame, d) {
                    Ok(found) => found,
                    Err(a) => return a,
                }
            }
        };
        self.account(idx, dir, frame.len());
        self.mark_if_bidirectional(idx);
        let timeout = self.cfg.timeouts.icmp;
        self.finish_packet(idx, frame, d, dir, timeout)
    }

    fn recv_other(&mut self, frame: &[u8], d: &Decoded) -> Action {
        self.counters.other_ip += 1;
        let (mut key, src_lo) = FlowKey::new(d.ip.v6, d.ip.proto, d.vlan, d.ip.src, 0, d.ip.dst, 0);
        key.zone = d.zone;
        let hash = self.table.hash(&key);
        let (idx, dir) = match self.table.find(hash, &key) {
            Some(idx) => (idx, self.table.get(idx).dir_of(src_lo)),
            None => {
                let timeout = self.cfg.timeouts.other;
                match self.open(key, hash, src_lo, true, timeout, frame, d) {
                    Ok(found) => found,
                    Err(a) => return a,
                }
            }
        };
        self.account(idx, dir, frame.len());
        self.mark_if_bidirectional(idx);
        let timeout = self.cfg.timeouts.other;
        self.finish_packet(idx, frame, d, dir, timeout)
    }

    // ---- shared session steps ----------------------------------------------------------

    /// Client/server of a flow seen first mid-way: a learned listening port wins, else the
    /// lower port is the server's (reference §3.8).
    fn client_is_src_by_ports(&self, d: &Decoded, sport: u16, dport: u16) -> bool {
        let p = d.ip.proto;
        if self.listeners.is_listening(d.ip.dst, dport, p) {
            true
        } else if self.listeners.is_listening(d.ip.src, sport, p) {
            false
        } else {
            sport >= dport
        }
    }

    fn new_session(&mut self, key: FlowKey, hash: u64, client_is_lo: bool) -> Session {
        let id = self.next_id;
        self.next_id += 1;
        Session::new(key, hash, id, client_is_lo, self.now)
    }

    /// Create a connectionless session (UDP, ICMP, other) for a packet from `src`.
    #[allow(clippy::too_many_arguments)]
    fn open(
        &mut self,
        key: FlowKey,
        hash: u64,
        src_lo: bool,
        client_is_src: bool,
        timeout: u32,
        frame: &[u8],
        d: &Decoded,
    ) -> Result<(u32, Dir), Action> {
        let dir = if client_is_src { Dir::ToServer } else { Dir::ToClient };
        let mut s = self.new_session(key, hash, client_is_src == src_lo);
        s.timeout = timeout;
        Ok((self.admit(s, frame, d, dir)?, dir))
    }

    /// Policy at creation, room in the table, insertion, start event.
    fn admit(
        &mut self,
        mut s: Session,
        frame: &[u8],
        d: &Decoded,
        dir: Dir,
    ) -> Result<u32, Action> {
        let verdict = {
            let mut cx = HookCx {
                now: self.now,
                events: &mut self.events,
                counters: &mut self.counters,
                updates: &mut self.updates,
            };
            let pkt = PacketView { frame, decoded: d, dir };
            self.inspector.on_session_start(&SessionView::new(&s), &pkt, &mut cx)
        };
        if verdict == Verdict::Drop {
            self.updates = SessionUpdates::default();
            self.counters.sessions_denied += 1;
            return Err(self.drop(DropReason::Hook));
        }
        if let Err(a) = self.decide_new(&mut s, frame, d, dir) {
            self.updates = SessionUpdates::default();
            if a != Action::Forward {
                self.counters.sessions_denied += 1;
            }
            return Err(a);
        }
        if self.table.is_full() {
            if let Some(victim) = self.table.eviction_candidate() {
                self.counters.sessions_evicted += 1;
                self.end_session(victim, EndReason::Evicted);
            }
        }
        let c = &mut self.counters;
        match s.key.proto {
            proto::TCP => c.sessions_tcp += 1,
            proto::UDP => c.sessions_udp += 1,
            proto::ICMP | proto::ICMPV6 => c.sessions_icmp += 1,
            _ => c.sessions_other += 1,
        }
        let idx = self.table.insert(s);
        if self.cfg.session_start_events {
            let rec = self.table.get(idx).record(None);
            self.events.push(Event::SessionStart(rec), &mut self.counters);
        }
        if verdict == Verdict::Bypass {
            self.bypass(idx, BypassReason::Hook);
        }
        self.apply_updates(idx);
        self.after_admit(idx);
        Ok(idx)
    }

    /// Connectionless protocols are "established" once both directions were seen.
    fn mark_if_bidirectional(&mut self, idx: u32) {
        let s = self.table.get_mut(idx);
        if s.wings[0].sent.pkts > 0 && s.wings[1].sent.pkts > 0 {
            s.flags |= sf::ESTABLISHED;
        }
    }

    fn account(&mut self, idx: u32, dir: Dir, bytes: usize) {
        let now = self.now;
        let s = self.table.get_mut(idx);
        let w = &mut s.wings[dir.sender()];
        w.sent.pkts += 1;
        w.sent.bytes += bytes as u64;
        s.last_seen = now;
    }

    /// Per-packet hook, timer refresh, verdict.
    fn finish_packet(
        &mut self,
        idx: u32,
        frame: &[u8],
        d: &Decoded,
        dir: Dir,
        timeout: u32,
    ) -> Action {
        let verdict = {
            let s = self.table.get(idx);
            let mut cx = HookCx {
                now: self.now,
                events: &mut self.events,
                counters: &mut self.counters,
                updates: &mut self.updates,
            };
            let pkt = PacketView { frame, decoded: d, dir };
            self.inspector.on_packet(&SessionView::new(s), &pkt, &mut cx)
        };
        self.run_ident(idx, false);
        self.apply_updates(idx);
        let s = self.table.get_mut(idx);
        s.timeout = timeout;
        self.table.refresh_timer(idx);
        if let Some(a) = self.enforce(idx, frame, d) {
            return a;
        }
        match verdict {
            Verdict::Continue => Action::Forward,
            Verdict::Bypass => {
                self.bypass(idx, BypassReason::Hook);
                Action::Forward
            }
            Verdict::Drop => self.drop(DropReason::Hook),
        }
    }

    fn end_session(&mut self, idx: u32, reason: EndReason) {
        self.run_ident(idx, true);
        self.report_progress(idx, false);
        let vhost = self.table.get(idx).pol.vhost;
        if vhost != NIL {
            self.vhosts.release(vhost);
        }
        let rec = self.table.get(idx).record(Some(reason));
        self.events.push(Event::SessionEnd(rec), &mut self.counters);
        {
            let mut cx = HookCx {
                now: self.now,
                events: &mut self.events,
                counters: &mut self.counters,
                updates: &mut self.updates,
            };
            self.inspector.on_session_end(&SessionView::new(self.table.get(idx)), &mut cx);
        }
        self.release_streams(idx);
        self.table.remove(idx);
    }

    fn release_streams(&mut self, idx: u32) {
        let s = self.table.get_mut(idx);
        for w in &mut s.wings {
            if w.stream != NIL {
                self.streams.release(w.stream);
                w.stream = NIL;
            }
        }
    }

    /// Stop inspecting a session (first reason wins), free its stream buffers.
    fn bypass(&mut self, idx: u32, r: BypassReason) {
        let s = self.table.get_mut(idx);
        if s.bypass.is_some() {
            return;
        }
        s.bypass = Some(r);
        match r {
            BypassReason::CaptureLoss => self.counters.tcp_bypass_capture_loss += 1,
            BypassReason::Overflow => self.counters.tcp_bypass_overflow += 1,
            BypassReason::Truncated => self.counters.tcp_bypass_truncated += 1,
            BypassReason::PoolExhausted => self.counters.stream_pool_exhausted += 1,
            BypassReason::Hook | BypassReason::Blocked => {}
        }
        self.release_streams(idx);
    }

    /// Keep a bypassed direction's frontier moving so FIN tracking still works.
    fn advance_bypassed(&mut self, idx: u32, dir: Dir, seq: u32, len: u32) {
        let w = &mut self.table.get_mut(idx).wings[dir.sender()];
        let end = seq.wrapping_add(len);
        if seq_diff(seq, w.next_seq) <= 0 && seq_diff(end, w.next_seq) > 0 {
            w.next_seq = end;
        }
    }

    /// In-order delivery of a TCP segment's payload (see `flow::stream`).
    fn deliver_tcp(&mut self, idx: u32, dir: Dir, seq: u32, payload: &[u8], wire_len: u32) {
        let a = dir.sender();
        if self.table.get(idx).bypass.is_some() {
            self.advance_bypassed(idx, dir, seq, wire_len);
            return;
        }
        if payload.len() < wire_len as usize {
            self.bypass(idx, BypassReason::Truncated);
            self.advance_bypassed(idx, dir, seq, wire_len);
            return;
        }
        let s = self.table.get_mut(idx);
        let w = &mut s.wings[a];
        let rel = seq_diff(seq, w.next_seq);
        let (seq, data) = if rel < 0 {
            let skip = rel.unsigned_abs() as usize;
            if skip >= payload.len() {
                w.retrans = w.retrans.saturating_add(1);
                self.counters.tcp_retransmissions += 1;
                return;
            }
            self.counters.tcp_overlaps += 1;
            (w.next_seq, &payload[skip..])
        } else if rel > 0 {
            let next = w.next_seq;
            match self.streams.store_ahead(&mut w.stream, next, seq, payload) {
                Ok(true) => {
                    w.retrans = w.retrans.saturating_add(1);
                    self.counters.tcp_retransmissions += 1;
                }
                Ok(false) => {
                    w.ooo = w.ooo.saturating_add(1);
                    self.counters.tcp_out_of_order += 1;
                }
                Err(e) => self.bypass(idx, stream_bypass_reason(e)),
            }
            return;
        } else {
            (seq, payload)
        };
        let mut cx = HookCx {
            now: self.now,
            events: &mut self.events,
            counters: &mut self.counters,
            updates: &mut self.updates,
        };
        if w.stream == NIL {
            // Fast path: straight from the packet.
            w.next_seq = seq.wrapping_add(data.len() as u32);
            cx.counters.stream_bytes_delivered += data.len() as u64;
            ident_feed(&mut self.ident, s, dir, data, false, cx.counters);
            let consumed = self.inspector.on_payload(&SessionView::new(s), dir, data, &mut cx);
            let consumed = consumed.min(data.len());
            if consumed < data.len() {
                let w = &mut s.wings[a];
                let keep = seq.wrapping_add(consumed as u32);
                if let Err(e) = self.streams.keep_unconsumed(&mut w.stream, keep, &data[consumed..])
                {
                    self.bypass(idx, stream_bypass_reason(e));
                }
            }
            return;
        }
        let buf = w.stream;
        let held = self.streams.contiguous(buf).len();
        match self.streams.append_in_order(buf, data) {
            Ok(front) => {
                cx.counters.stream_bytes_delivered += u64::from(front.wrapping_sub(w.next_seq));
                w.next_seq = front;
            }
            Err(e) => {
                self.bypass(idx, stream_bypass_reason(e));
                return;
            }
        }
        let fresh = &self.streams.contiguous(buf)[held..];
        ident_feed(&mut self.ident, s, dir, fresh, false, cx.counters);
        let consumed = self.inspector.on_payload(
            &SessionView::new(s),
            dir,
            self.streams.contiguous(buf),
            &mut cx,
        );
        if self.streams.consume(buf, consumed) {
            self.streams.release(buf);
            s.wings[a].stream = NIL;
        }
    }

    /// A datagram's payload (UDP): one delivery, no buffering.
    fn deliver_datagram(&mut self, idx: u32, dir: Dir, payload: &[u8]) {
        let s = self.table.get_mut(idx);
        if s.bypass.is_some() {
            return;
        }
        ident_feed(&mut self.ident, s, dir, payload, true, &mut self.counters);
        let s = self.table.get(idx);
        let mut cx = HookCx {
            now: self.now,
            events: &mut self.events,
            counters: &mut self.counters,
            updates: &mut self.updates,
        };
        cx.counters.stream_bytes_delivered += payload.len() as u64;
        let _ = self.inspector.on_payload(&SessionView::new(s), dir, payload, &mut cx);
    }
}

/// Copy new in-order payload into the session's identification prefix (starting
/// identification on its first payload).
fn ident_feed(
    ident: &mut IdentPool,
    s: &mut Session,
    dir: Dir,
    data: &[u8],
    datagram: bool,
    counters: &mut Counters,
) {
    if s.pol.app != AppState::Pending || data.is_empty() {
        return;
    }
    if s.ident == NIL {
        match ident.start(s.key.proto) {
            Some(id) => s.ident = id,
            None => {
                counters.ident_pool_exhausted += 1;
                s.pol.app = AppState::Unidentified;
                s.pol.flags |= crate::flow::session::pf::REEVAL;
                return;
            }
        }
    }
    ident.append(s.ident, dir, data, datagram);
}

fn stream_bypass_reason(e: StreamError) -> BypassReason {
    match e {
        StreamError::Overflow => BypassReason::Overflow,
        StreamError::PoolExhausted => BypassReason::PoolExhausted,
    }
}

/// Inspect one frame with `ctx`: the same as [`Ctx::recv_packet`].
pub fn recv_packet(ctx: &mut Ctx, frame: &mut [u8]) -> Action {
    ctx.recv_packet(frame)
}
