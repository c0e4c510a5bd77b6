//! Stage 2: workloads (endpoints) and their modes.
//!
//! A workload has MAC and IP addresses, a [`Mode`] (Discover, Monitor, Protect), a
//! [`Wiring`] (tap: the engine sees copies; inline: traffic passes through it) and the
//! rules of its policy. The control plane describes workloads with [`WorkloadSpec`]s.

pub mod store;

pub use store::{PolicyConfig, PolicyStore, Resolved, Snapshot, StoreError, Workload, WorkloadKey};

use crate::policy::{IpNet, Rule};
use core::net::IpAddr;

/// How a workload's traffic is treated by default (reference §4.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Learn: connections are allowed and reported as learning candidates.
    #[default]
    Discover,
    /// Report: connections no rule allows are reported as violations, not stopped.
    Monitor,
    /// Enforce: connections no rule allows are denied (when the wiring is inline).
    Protect,
}

impl Mode {
    /// Lowercase name.
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Discover => "discover",
            Mode::Monitor => "monitor",
            Mode::Protect => "protect",
        }
    }

    /// Parse a lowercase name.
    pub fn from_name(s: &str) -> Option<Mode> {
        match s {
            "discover" => Some(Mode::Discover),
            "monitor" => Some(Mode::Monitor),
            "protect" => Some(Mode::Protect),
            _ => None,
        }
    }
}

/// How the engine is attached to a workload's traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Wiring {
    /// A copy of the traffic: nothing can be dropped; decisions are reported only.
    #[default]
    Tap,
    /// The traffic passes through the engine: drops and resets take effect.
    Inline,
}

impl Wiring {
    /// Lowercase name.
    pub const fn name(self) -> &'static str {
        match self {
            Wiring::Tap => "tap",
            Wiring::Inline => "inline",
        }
    }

    /// Parse a lowercase name.
    pub fn from_name(s: &str) -> Option<Wiring> {
        match s {
            "tap" => Some(Wiring::Tap),
            "inline" => Some(Wiring::Inline),
            _ => None,
        }
    }
}

/// A workload as the control plane describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadSpec {
    /// Unique name (reported with every connection of the workload).
    pub name: String,
    /// Its interfaces' MAC addresses.
    pub macs: Vec<[u8; 6]>,
    /// Its addresses, IPv4 and IPv6.
    pub ips: Vec<IpAddr>,
    /// Mode.
    pub mode: Mode,
    /// Wiring.
    pub wiring: Wiring,
}

/// Where policy is applied for traffic between two workloads (reference §4.6): the
/// workload on that side decides; traffic with a non-workload peer is decided by the
/// workload end whatever the direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ApplyDirection {
    /// The server's policy decides (Kubernetes; default).
    #[default]
    Ingress,
    /// The client's policy decides.
    Egress,
}

/// What happens to frames whose ends are both unknown (no workload).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum UnknownTraffic {
    /// Tracked as sessions with no policy (open); reported in session records only.
    #[default]
    Track,
    /// Forwarded without inspection (counted).
    Ignore,
    /// Dropped (counted): a strict inline port that should only carry workload traffic.
    Drop,
}

/// Engine-wide policy settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySettings {
    /// Which side's policy decides workload-to-workload traffic.
    pub apply: ApplyDirection,
    /// Frames of no workload.
    pub unknown: UnknownTraffic,
    /// Address ranges that are not "external" (workload addresses never are).
    pub internal_subnets: Vec<IpNet>,
    /// Treat every address not registered as a workload as a workload of this mode and
    /// wiring, named after the address (offline replay of captures without a workloads
    /// file). Its rules are the rules that apply to all workloads.
    pub implicit_workloads: Option<(Mode, Wiring)>,
    /// Rule ids at or above this and below `learned_ids.1` are learned rules: in Discover
    /// mode they report LEARN rather than ALLOW (NeuVector: 10000..100000).
    pub learned_ids: (u32, u32),
}

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings {
            apply: ApplyDirection::Ingress,
            unknown: UnknownTraffic::Track,
            internal_subnets: default_internal_subnets(),
            implicit_workloads: None,
            learned_ids: (10_000, 100_000),
        }
    }
}

/// RFC 1918, CGNAT (RFC 6598), loopback, link-local, IPv6 ULA, link-local and loopback.
pub fn default_internal_subnets() -> Vec<IpNet> {
    use crate::packet::addr_from_v4 as v4;
    let v4net = |a: [u8; 4], p| IpNet::cidr(false, v4(a), p);
    let v6net = |a: u128, p| IpNet::cidr(true, a, p);
    [
        v4net([10, 0, 0, 0], 8),
        v4net([172, 16, 0, 0], 12),
        v4net([192, 168, 0, 0], 16),
        v4net([100, 64, 0, 0], 10),
        v4net([127, 0, 0, 0], 8),
        v4net([169, 254, 0, 0], 16),
        v6net(0xfc00 << 112, 7),
        v6net(0xfe80 << 112, 10),
        v6net(1, 128),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A workload and the rules of its policy, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadPolicy {
    /// The workload.
    pub spec: WorkloadSpec,
    /// Its rules, first match wins.
    pub rules: Vec<Rule>,
}
