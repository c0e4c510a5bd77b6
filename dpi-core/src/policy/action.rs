//! The action a policy decision gives a session (reference §4.4), ordered by severity: a
//! session's action is only ever raised by a later decision on the same packet.

/// What policy decided for a session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum PolicyAction {
    /// No policy applies (no workload end, multicast/broadcast, no policy pushed yet).
    #[default]
    Open = 0,
    /// Allowed, and a learning candidate (Discover mode).
    Learn = 1,
    /// Allowed by a rule.
    Allow = 2,
    /// Allowed until the virtual host is known, then decided again.
    CheckVhost = 3,
    /// Allowed until the application is known, then decided again.
    CheckApp = 4,
    /// Allowed, reported as a violation (Monitor mode, deny rules outside Protect).
    Violate = 5,
    /// Denied (Protect mode on an inline wiring).
    Deny = 6,
}

impl PolicyAction {
    /// Lowercase name used in reports.
    pub const fn name(self) -> &'static str {
        match self {
            PolicyAction::Open => "open",
            PolicyAction::Learn => "learn",
            PolicyAction::Allow => "allow",
            PolicyAction::CheckVhost => "check_vhost",
            PolicyAction::CheckApp => "check_app",
            PolicyAction::Violate => "violate",
            PolicyAction::Deny => "deny",
        }
    }

    /// Parse a name from [`PolicyAction::name`].
    pub fn from_name(s: &str) -> Option<PolicyAction> {
        [
            PolicyAction::Open,
            PolicyAction::Learn,
            PolicyAction::Allow,
            PolicyAction::CheckVhost,
            PolicyAction::CheckApp,
            PolicyAction::Violate,
            PolicyAction::Deny,
        ]
        .into_iter()
        .find(|a| a.name() == s)
    }

    /// A violation to report (VIOLATE or DENY).
    pub const fn is_violation(self) -> bool {
        matches!(self, PolicyAction::Violate | PolicyAction::Deny)
    }

    /// Waiting for the application or vhost before deciding for good.
    pub const fn is_pending(self) -> bool {
        matches!(self, PolicyAction::CheckApp | PolicyAction::CheckVhost)
    }
}
