//! The reference matcher: the rule semantics of this module's docs as a plain ordered scan.
//! Slow (linear in the rules) and obviously right; the compiled matcher must give the same
//! answer on every query (property-tested).

use super::{name_matches, AppState, Decision, Match, Peer, Query, Rule, RuleAction};

fn peer_matches(p: &Peer, v6: bool, addr: u128, external: bool, names: &[&str]) -> bool {
    match p {
        Peer::Any => true,
        Peer::External => external,
        Peer::Net(n) => n.contains(v6, addr),
        Peer::Fqdn(pattern) => names.iter().any(|n| name_matches(pattern, n)),
    }
}

/// The first rule (by position in `rules`) that decides `q`, as described in the module
/// docs.
pub fn first_match(rules: &[Rule], q: &Query<'_>) -> Option<Match> {
    for (order, r) in rules.iter().enumerate() {
        let client_ok = r
            .from
            .iter()
            .any(|p| peer_matches(p, q.v6, q.client, q.client_external, q.client_names));
        let server_ok =
            r.to.iter().any(|p| peer_matches(p, q.v6, q.server, q.server_external, q.server_names));
        let port_ok = r.ports.iter().any(|p| p.covers(q.proto, q.port));
        if !(client_ok && server_ok && port_ok) {
            continue;
        }
        let m = |decision| Some(Match { rule_id: r.id, order: order as u32, decision });
        if r.vhost {
            // The server-side FQDN peers of the rule; the vhost (which names the server)
            // must match one.
            let patterns: Vec<&str> =
                r.to.iter()
                    .filter_map(|p| match p {
                        Peer::Fqdn(s) => Some(s.as_str()),
                        _ => None,
                    })
                    .collect();
            match q.vhost {
                None => return m(Decision::CheckVhost),
                Some(v) if !patterns.iter().any(|p| name_matches(p, v)) => continue,
                Some(_) => {}
            }
        }
        if !r.apps.is_empty() {
            match q.app {
                AppState::Pending => return m(Decision::CheckApp),
                AppState::Unidentified => continue,
                AppState::Known(a) if !r.apps.contains(&a) => continue,
                AppState::Known(_) => {}
            }
        }
        return m(match r.action {
            RuleAction::Allow => Decision::Allow,
            RuleAction::Deny => Decision::Deny,
        });
    }
    None
}
