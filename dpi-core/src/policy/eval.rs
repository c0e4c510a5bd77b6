//! Deciding a session: which workload end's policy applies, the lookup, and the mode's
//! adjustments (reference §4.3–4.6).
//!
//! 1. Multicast and broadcast destinations are not policed (open), as in NeuVector.
//! 2. The deciding end: with the ingress apply direction the server's workload decides
//!    when the server is a workload, else the client's; egress is the other way round.
//!    Neither end a workload: open (the caller applies `PolicySettings::unknown`). On a
//!    tagged pass of a shared inline port, only the tagged workload can decide, and only
//!    if the apply direction gives it the decision (or the other end is no workload).
//! 3. The first matching rule of that workload (see [`crate::policy`]); none: the mode's
//!    default (Discover LEARN, Monitor VIOLATE, Protect DENY).
//! 4. Adjustments: a deny outside Protect, or in Protect on a tap wiring (nothing can be
//!    stopped there), is reported as VIOLATE; an allow by a learned rule id in Discover is
//!    LEARN.

use super::{AppState, Decision, PolicyAction, Query};
use crate::endpoint::store::is_multicast_or_broadcast;
use crate::endpoint::{ApplyDirection, Mode, Snapshot, Wiring, WorkloadKey};
use crate::packet::{proto, Addr};

/// What a decision is about.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Subject<'a> {
    pub(crate) client_mac: [u8; 6],
    pub(crate) server_mac: [u8; 6],
    pub(crate) v6: bool,
    pub(crate) client: Addr,
    pub(crate) server: Addr,
    pub(crate) proto: u8,
    pub(crate) port: u16,
    pub(crate) app: AppState,
    pub(crate) vhost: Option<&'a str>,
    pub(crate) client_names: &'a [&'a str],
    pub(crate) server_names: &'a [&'a str],
    /// On a tagged pass (see `Config::mac_tag_prefix`): the tagged MAC, which names the
    /// workload whose pass through the engine this session is.
    pub(crate) tag_mac: Option<[u8; 6]>,
}

/// A decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Decided {
    pub(crate) action: PolicyAction,
    pub(crate) rule_id: u32,
    /// The deciding workload, if any.
    pub(crate) workload: Option<WorkloadKey>,
    /// The deciding workload is the server.
    pub(crate) ingress: bool,
    /// Its policy version.
    pub(crate) version: u32,
    /// Its denials are enforced (Protect on an inline wiring).
    pub(crate) enforce: bool,
    /// Its rules name DNS peers.
    pub(crate) needs_names: bool,
}

/// Decide a session.
pub(crate) fn decide(snap: &Snapshot, s: &Subject<'_>) -> Decided {
    if is_multicast_or_broadcast(s.v6, s.server) {
        return Decided::default();
    }
    let server = snap.resolve(s.server_mac, s.v6, s.server);
    let client = snap.resolve(s.client_mac, s.v6, s.client);
    let (wl, ingress) = match s.tag_mac {
        // A tagged pass is about its own workload only. When the other end is a workload
        // too, that end's own pass decides if the apply direction says so; this pass then
        // stays open (reference §4.3: east-west traffic in the non-applied direction).
        Some(tag) => {
            let ingress = tag == s.server_mac;
            let (this, other) = if ingress { (server, client) } else { (client, server) };
            let Some(this) = this else { return Decided::default() };
            let decides = match snap.settings.apply {
                ApplyDirection::Ingress => ingress || other.is_none(),
                ApplyDirection::Egress => !ingress || other.is_none(),
            };
            if !decides {
                return Decided::default();
            }
            (this, ingress)
        }
        None => match (snap.settings.apply, server, client) {
            (ApplyDirection::Ingress, Some(w), _) | (ApplyDirection::Egress, Some(w), None) => {
                (w, true)
            }
            (_, _, Some(w)) => (w, false),
            (_, None, None) => return Decided::default(),
        },
    };
    let port = if matches!(s.proto, proto::TCP | proto::UDP) { s.port } else { 0 };
    let q = Query {
        v6: s.v6,
        client: s.client,
        server: s.server,
        proto: s.proto,
        port,
        app: s.app,
        client_external: snap.is_external(s.v6, s.client),
        server_external: snap.is_external(s.v6, s.server),
        client_names: s.client_names,
        server_names: s.server_names,
        vhost: s.vhost,
    };
    let enforce = wl.mode == Mode::Protect && wl.wiring == Wiring::Inline;
    let (lo, hi) = snap.settings.learned_ids;
    let (action, rule_id) = match wl.rules.lookup(&q) {
        None => (default_action(wl.mode), 0),
        Some(m) => {
            let a = match m.decision {
                Decision::Allow if wl.mode == Mode::Discover && (lo..hi).contains(&m.rule_id) => {
                    PolicyAction::Learn
                }
                Decision::Allow => PolicyAction::Allow,
                Decision::Deny => PolicyAction::Deny,
                Decision::CheckApp => PolicyAction::CheckApp,
                Decision::CheckVhost => PolicyAction::CheckVhost,
            };
            (a, m.rule_id)
        }
    };
    let action = match action {
        PolicyAction::Deny if !enforce => PolicyAction::Violate,
        a => a,
    };
    Decided {
        action,
        rule_id,
        workload: Some(wl.key),
        ingress,
        version: wl.version,
        enforce,
        needs_names: wl.has_fqdn_rules,
    }
}

/// The action when no rule matches.
pub(crate) fn default_action(mode: Mode) -> PolicyAction {
    match mode {
        Mode::Discover => PolicyAction::Learn,
        Mode::Monitor => PolicyAction::Violate,
        Mode::Protect => PolicyAction::Deny,
    }
}
