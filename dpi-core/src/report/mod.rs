//! Stage 8: connection reports (reference §7).
//!
//! Sessions with a policy decision are aggregated per (workload, direction, client,
//! server, server port, protocol, application, rule, action): bytes and sessions since
//! the last report, violations, first and last seen. A session contributes when it ends,
//! every [`MID_REPORT_SECS`] while it lives, and at once when it becomes a violation
//! (whose entry is flushed immediately). All entries are flushed every
//! `Config::report_interval_secs`.
//!
//! Bounded: at most `Config::max_report_entries` entries; when a new one would not fit,
//! everything is flushed first, so nothing is lost (unless the event queue is full, which
//! `events_dropped` counts). The map is allocated once.

use crate::app::AppState;
use crate::counters::Counters;
use crate::endpoint::WorkloadKey;
use crate::event::{Event, ThreatKind};
use crate::packet::{addr_to_ip, Addr};
use crate::policy::PolicyAction;
use crate::queue::EventQueue;
use crate::time::Time;
use core::net::IpAddr;

/// A live session adds its new bytes to the reports this often (seconds).
pub const MID_REPORT_SECS: u64 = 60;

type Map<K, V> = hashbrown::HashMap<K, V, core::hash::BuildHasherDefault<ahash::AHasher>>;

/// One aggregated connection report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionReport {
    /// The workload whose policy decided.
    pub workload: WorkloadKey,
    /// The workload is the server (ingress) rather than the client.
    pub ingress: bool,
    /// Client address.
    pub client: IpAddr,
    /// Server address.
    pub server: IpAddr,
    /// Server port (0 for protocols without ports; ICMP: `code << 8 | type`).
    pub port: u16,
    /// IP protocol.
    pub proto: u8,
    /// Application.
    pub app: AppState,
    /// Bytes (both directions, whole frames) since the last report.
    pub bytes: u64,
    /// Sessions started since the last report.
    pub sessions: u32,
    /// Sessions that were violations (VIOLATE or DENY) since the last report.
    pub violations: u32,
    /// First packet covered by this report.
    pub first_seen: Time,
    /// Last packet covered by this report.
    pub last_seen: Time,
    /// Rule that decided (0: the mode's default action).
    pub rule_id: u32,
    /// Decision.
    pub action: PolicyAction,
    /// Most serious threat seen on these sessions.
    pub threat: Option<ThreatKind>,
}

/// Identity of an aggregate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ReportKey {
    pub(crate) workload: WorkloadKey,
    pub(crate) ingress: bool,
    pub(crate) v6: bool,
    pub(crate) client: Addr,
    pub(crate) server: Addr,
    pub(crate) port: u16,
    pub(crate) proto: u8,
    pub(crate) app: AppState,
    pub(crate) rule_id: u32,
    pub(crate) action: PolicyAction,
}

/// A contribution to an aggregate.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Contribution {
    pub(crate) bytes: u64,
    pub(crate) sessions: u32,
    pub(crate) violations: u32,
    pub(crate) first_seen: Time,
    pub(crate) last_seen: Time,
    pub(crate) threat: Option<ThreatKind>,
}

#[derive(Clone, Copy, Debug)]
struct Agg {
    bytes: u64,
    sessions: u32,
    violations: u32,
    first_seen: Time,
    last_seen: Time,
    threat: Option<ThreatKind>,
}

#[derive(Debug)]
pub(crate) struct Reporter {
    map: Map<ReportKey, Agg>,
    cap: usize,
    interval: u64,
    next_flush: u64,
}

impl Reporter {
    pub(crate) fn new(cap: usize, interval_secs: u32) -> Self {
        let cap = cap.max(1);
        Reporter {
            map: Map::with_capacity_and_hasher(cap, Default::default()),
            cap,
            interval: u64::from(interval_secs.max(1)),
            next_flush: 0,
        }
    }

    /// Add a contribution; `flush_now` emits this entry at once (violations).
    pub(crate) fn add(
        &mut self,
        key: ReportKey,
        c: Contribution,
        flush_now: bool,
        events: &mut EventQueue,
        counters: &mut Counters,
    ) {
        if !self.map.contains_key(&key) && self.map.len() >= self.cap {
            self.flush(events, counters);
        }
        let e = self.map.entry(key).or_insert(Agg {
            bytes: 0,
            sessions: 0,
            violations: 0,
            first_seen: c.first_seen,
            last_seen: c.last_seen,
            threat: None,
        });
        e.bytes += c.bytes;
        e.sessions += c.sessions;
        e.violations += c.violations;
        e.first_seen = e.first_seen.min(c.first_seen);
        e.last_seen = e.last_seen.max(c.last_seen);
        e.threat = e.threat.or(c.threat);
        if flush_now {
            if let Some(agg) = self.map.remove(&key) {
                emit(&key, &agg, events, counters);
            }
        }
    }

    /// Flush everything if the interval has passed.
    pub(crate) fn tick(&mut self, now: Time, events: &mut EventQueue, counters: &mut Counters) {
        let secs = now.as_secs();
        if self.next_flush == 0 {
            self.next_flush = secs + self.interval;
        } else if secs >= self.next_flush {
            self.flush(events, counters);
            self.next_flush = secs + self.interval;
        }
    }

    /// Emit every entry.
    pub(crate) fn flush(&mut self, events: &mut EventQueue, counters: &mut Counters) {
        for (k, a) in self.map.drain() {
            emit(&k, &a, events, counters);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

fn emit(k: &ReportKey, a: &Agg, events: &mut EventQueue, counters: &mut Counters) {
    counters.connection_reports += 1;
    let rep = ConnectionReport {
        workload: k.workload,
        ingress: k.ingress,
        client: addr_to_ip(k.client, k.v6),
        server: addr_to_ip(k.server, k.v6),
        port: k.port,
        proto: k.proto,
        app: k.app,
        bytes: a.bytes,
        sessions: a.sessions,
        violations: a.violations,
        first_seen: a.first_seen,
        last_seen: a.last_seen,
        rule_id: k.rule_id,
        action: k.action,
        threat: a.threat,
    };
    events.push(Event::Connection(rep), counters);
}
