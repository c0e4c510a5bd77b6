//! Stage 6: network policy.
//!
//! A [`Rule`] says which clients may talk to which servers on which ports and
//! applications, and with what action. An ordered list of rules is compiled into a
//! [`CompiledRules`] lookup structure; [`CompiledRules::lookup`] answers a [`Query`]
//! (client, server, protocol, server port, application, names, vhost) with the **first
//! matching rule by order**, across exact, range, FQDN and "external" rules alike
//! (NeuVector lets an exact-match rule hide an earlier range rule; we do not).
//!
//! Semantics of one rule (the reference is [`reference::first_match`], a plain ordered
//! scan the compiled matcher is property-tested against):
//!
//! - the client matches one of `from`, the server one of `to`: [`Peer::Any`];
//!   [`Peer::External`] (the address is outside the internal subnets and belongs to no
//!   workload: the query says so); [`Peer::Net`] (a single address, CIDR or range, of
//!   the query's family); [`Peer::Fqdn`] (one of the names the address is known by
//!   matches, exactly or as a `*.` wildcard: `*.example.com` matches `a.example.com` and
//!   `b.a.example.com`, not `example.com`);
//! - the protocol and server port match one of `ports` ([`PortSpec`]);
//! - applications: a rule with an empty `apps` list matches any application. A rule that
//!   names applications matches once the session's application is one of them; while the
//!   application is still [`AppState::Pending`] the rule stops the search with
//!   [`Decision::CheckApp`] (allow for now, decide again once the application is known);
//!   when [`AppState::Unidentified`] it does not match;
//! - vhost rules (`vhost = true`, with FQDN servers in `to`): the server matched by address
//!   (one of its DNS names fits a `to` pattern), and the session's virtual host (HTTP Host,
//!   TLS SNI) must also fit one of the rule's `to` name patterns; while the vhost is unknown
//!   the search stops with [`Decision::CheckVhost`].
//! - [`PortSpec::Icmp`] covers ICMP and ICMPv6 alike.
//!
//! No match gives `None`: the caller applies the workload's default action (its mode).

pub mod action;
pub(crate) mod eval;
pub mod matcher;
pub mod reference;

pub use crate::app::{AppId, AppState};
pub use action::PolicyAction;
pub use matcher::CompiledRules;

use crate::packet::Addr;

/// A contiguous range of addresses of one family (a single address, a CIDR block or an
/// explicit `low-high` range). IPv4 addresses are mapped as in [`Addr`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    /// IPv6 range (else IPv4, mapped).
    pub v6: bool,
    /// Lowest address.
    pub lo: Addr,
    /// Highest address (inclusive).
    pub hi: Addr,
}

impl IpNet {
    /// The block `addr/prefix` (`prefix` up to 32 for IPv4, 128 for IPv6). Host bits of
    /// `addr` are ignored. `None` if the prefix is too long.
    pub fn cidr(v6: bool, addr: Addr, prefix: u8) -> Option<IpNet> {
        let bits = if v6 { 128 } else { 32 };
        if u32::from(prefix) > bits {
            return None;
        }
        let host_bits = bits - u32::from(prefix);
        let mask: u128 = if host_bits == 128 { u128::MAX } else { (1u128 << host_bits) - 1 };
        let lo = addr & !mask;
        Some(IpNet { v6, lo, hi: lo | mask })
    }

    /// A single address.
    pub fn host(v6: bool, addr: Addr) -> IpNet {
        IpNet { v6, lo: addr, hi: addr }
    }

    /// Does the range hold `addr` (of family `v6`)?
    pub fn contains(&self, v6: bool, addr: Addr) -> bool {
        self.v6 == v6 && self.lo <= addr && addr <= self.hi
    }
}

/// One side of a rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    /// Any address.
    Any,
    /// Any address outside the internal subnets that belongs to no workload.
    External,
    /// An address, CIDR block or range.
    Net(IpNet),
    /// A DNS name, lowercase, possibly a wildcard (`*.example.com`).
    Fqdn(String),
}

/// Protocol and server ports a rule covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortSpec {
    /// Every protocol and port.
    Any,
    /// TCP, server ports `lo..=hi`.
    Tcp(u16, u16),
    /// UDP, server ports `lo..=hi`.
    Udp(u16, u16),
    /// ICMP and ICMPv6 (no ports).
    Icmp,
    /// Any other IP protocol by number (no ports).
    Proto(u8),
}

impl PortSpec {
    /// Does the spec cover protocol `proto` with server port `port`?
    pub fn covers(&self, proto: u8, port: u16) -> bool {
        use crate::packet::proto as p;
        match *self {
            PortSpec::Any => true,
            PortSpec::Tcp(lo, hi) => proto == p::TCP && lo <= port && port <= hi,
            PortSpec::Udp(lo, hi) => proto == p::UDP && lo <= port && port <= hi,
            PortSpec::Icmp => proto == p::ICMP || proto == p::ICMPV6,
            PortSpec::Proto(n) => proto == n,
        }
    }
}

/// What a rule does when it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleAction {
    /// Allow (reported as learned in Discover mode for learned rule ids).
    Allow,
    /// Deny (enforced in Protect mode; reported as a violation otherwise).
    Deny,
}

/// A rule as the operator wrote it (files are parsed by the agent into these).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Rule id, reported with every decision it makes. Ids 10000..100000 are learned
    /// rules (as NeuVector numbers them). 0 is reserved for the default action.
    pub id: u32,
    /// Clients (any one matches). Empty never matches.
    pub from: Vec<Peer>,
    /// Servers (any one matches). Empty never matches.
    pub to: Vec<Peer>,
    /// Protocols and ports (any one matches). Empty never matches.
    pub ports: Vec<PortSpec>,
    /// Applications; empty = any.
    pub apps: Vec<AppId>,
    /// Action.
    pub action: RuleAction,
    /// Also require the session's virtual host (HTTP Host / TLS SNI) to match the FQDN
    /// peer's name.
    pub vhost: bool,
}

/// The outcome of a lookup that found a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The rule allows.
    Allow,
    /// The rule denies.
    Deny,
    /// The first candidate rule names applications and the application is not known yet:
    /// allow for now, look up again once it is.
    CheckApp,
    /// The first candidate rule is a vhost rule and the vhost is not known yet: allow for
    /// now, look up again once it is.
    CheckVhost,
}

/// A lookup result: the rule (its id and position) and what it decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Match {
    /// The rule's id.
    pub rule_id: u32,
    /// The rule's position in the list (0 = first).
    pub order: u32,
    /// What it decided.
    pub decision: Decision,
}

/// What a lookup is about. The caller fills in the external flags (from its internal
/// subnets and workload registry) and the names each address is known by (from DNS).
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// Client address.
    pub client: Addr,
    /// Server address.
    pub server: Addr,
    /// IP protocol.
    pub proto: u8,
    /// Server port (0 for protocols without ports).
    pub port: u16,
    /// The session's application.
    pub app: AppState,
    /// The client is external.
    pub client_external: bool,
    /// The server is external.
    pub server_external: bool,
    /// Names the client address is known by (lowercase).
    pub client_names: &'a [&'a str],
    /// Names the server address is known by (lowercase).
    pub server_names: &'a [&'a str],
    /// The session's virtual host (lowercase), once known.
    pub vhost: Option<&'a str>,
}

/// Does the name `pattern` (lowercase; `*.suffix` for a wildcard) match `name`?
/// `*.example.com` matches `a.example.com` and `b.a.example.com`, not `example.com`.
pub fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            name.len() > suffix.len() + 1
                && name.ends_with(suffix)
                && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
        }
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(name_matches("*.example.com", "a.example.com"));
        assert!(name_matches("*.example.com", "b.a.example.com"));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(!name_matches("*.example.com", "aexample.com"));
        assert!(name_matches("api.example.com", "api.example.com"));
        assert!(!name_matches("api.example.com", "x.api.example.com"));
    }

    #[test]
    fn cidr_bounds() {
        let n = IpNet::cidr(false, crate::packet::addr_from_v4([10, 1, 2, 3]), 16).unwrap();
        assert!(n.contains(false, crate::packet::addr_from_v4([10, 1, 255, 255])));
        assert!(!n.contains(false, crate::packet::addr_from_v4([10, 2, 0, 0])));
        assert!(!n.contains(true, crate::packet::addr_from_v4([10, 1, 0, 0])));
        assert!(IpNet::cidr(false, 0, 33).is_none());
        let all6 = IpNet::cidr(true, 0, 0).unwrap();
        assert_eq!((all6.lo, all6.hi), (0, u128::MAX));
        let all4 = IpNet::cidr(false, crate::packet::addr_from_v4([1, 2, 3, 4]), 0).unwrap();
        assert_eq!(all4.lo, crate::packet::addr_from_v4([0, 0, 0, 0]));
        assert_eq!(all4.hi, crate::packet::addr_from_v4([255, 255, 255, 255]));
    }
}
