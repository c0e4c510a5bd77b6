//! Policy events in EVE form: violations as Suricata-style `alert` events, aggregated
//! connections as `event_type: "connection"`, and the policy part of flow records.
//!
//! An alert (one line in the output):
//!
//! ```json
//! {"timestamp":"2026-01-01T00:00:00.001000+0000","flow_id":3,"event_type":"alert",
//!  "src_ip":"10.0.0.1","src_port":40000,"dest_ip":"10.0.0.2","dest_port":8080,
//!  "proto":"TCP","app_proto":"failed",
//!  "alert":{"action":"blocked","gid":1,"signature_id":0,"rev":1,
//!           "signature":"policy: no rule allows this connection (protect: deny)",
//!           "category":"Policy Violation","severity":1},
//!  "enforcer":{"workload":"web","direction":"ingress","action":"deny","rule_id":0}}
//! ```
//!
//! `alert.action` is `blocked` when the engine stopped the traffic (DENY), `allowed` when
//! it only reported it (VIOLATE: Monitor or Discover mode, a tap wiring);
//! `alert.signature_id` is the rule id, 0 for the workload's default action; `severity` 1
//! for DENY, 2 for VIOLATE. `flow_id` is absent for a flow denied at its first packet (no
//! session exists).
//!
//! A connection report:
//!
//! ```json
//! {"timestamp":"...","event_type":"connection","src_ip":"10.0.0.1","dest_ip":"10.0.0.2",
//!  "dest_port":80,"proto":"TCP","app_proto":"http",
//!  "connection":{"workload":"web","direction":"ingress","action":"learn","rule_id":0,
//!                "sessions":3,"violations":0,"bytes":5120,
//!                "first_seen":"...","last_seen":"...","threat":null}}
//! ```
//!
//! `timestamp` is the last packet covered. `enforcer learn` reads these.

use super::{app_proto, EveIp, ProtoName, Timestamp};
use dpi_core::app::AppState;
use dpi_core::endpoint::{PolicyStore, WorkloadKey};
use dpi_core::event::{ConnectionReport, PolicySummary, ViolationRecord};
use dpi_core::policy::PolicyAction;
use serde::Serialize;
use std::sync::Arc;

/// Turns workload keys into names for output.
pub trait WorkloadNames {
    /// The name of `key`: a registered workload's name, an implicit workload's address.
    fn name(&self, key: WorkloadKey) -> String;
}

/// Names without a store: ids and addresses.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoNames;

impl WorkloadNames for NoNames {
    fn name(&self, key: WorkloadKey) -> String {
        match key {
            WorkloadKey::Registered(id) => format!("workload-{id}"),
            WorkloadKey::Implicit(ip) => ip.to_string(),
        }
    }
}

/// Names from a policy store.
#[derive(Debug, Clone)]
pub struct StoreNames(pub Arc<PolicyStore>);

impl WorkloadNames for StoreNames {
    fn name(&self, key: WorkloadKey) -> String {
        match key {
            WorkloadKey::Registered(id) => {
                self.0.workload_name(id).map_or_else(|| NoNames.name(key), |n| n.to_string())
            }
            WorkloadKey::Implicit(ip) => ip.to_string(),
        }
    }
}

fn direction(ingress: bool) -> &'static str {
    if ingress {
        "ingress"
    } else {
        "egress"
    }
}

/// The policy part of a flow record's `enforcer` object.
#[derive(Debug, Serialize)]
pub struct PolicyPart {
    workload: String,
    direction: &'static str,
    action: &'static str,
    rule_id: u32,
    blocked: bool,
}

impl PolicyPart {
    /// From a session record's policy summary.
    pub fn new(p: &PolicySummary, names: &dyn WorkloadNames) -> Self {
        PolicyPart {
            workload: names.name(p.workload),
            direction: direction(p.ingress),
            action: p.action.name(),
            rule_id: p.rule_id,
            blocked: p.blocked,
        }
    }
}

/// Ports or ICMP type/code of an event, as flow records carry them.
#[derive(Debug, Serialize)]
struct Endpoints {
    src_ip: EveIp,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    dest_ip: EveIp,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
    proto: ProtoName,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u8>,
}

impl Endpoints {
    fn new(
        client: (std::net::IpAddr, Option<u16>),
        server: (std::net::IpAddr, u16),
        proto: u8,
    ) -> Self {
        let has_ports = matches!(proto, 6 | 17 | 132);
        let icmp = matches!(proto, 1 | 58);
        Endpoints {
            src_ip: EveIp(client.0),
            src_port: if has_ports { client.1 } else { None },
            dest_ip: EveIp(server.0),
            dest_port: has_ports.then_some(server.1),
            proto: ProtoName(proto),
            icmp_type: icmp.then_some((server.1 & 0xff) as u8),
            icmp_code: icmp.then_some((server.1 >> 8) as u8),
        }
    }
}

/// A violation as an EVE alert.
#[derive(Debug, Serialize)]
pub struct AlertEvent {
    timestamp: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow_id: Option<u64>,
    event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<Vec<u16>>,
    #[serde(flatten)]
    endpoints: Endpoints,
    app_proto: &'static str,
    alert: AlertPart,
    enforcer: AlertEnforcer,
}

#[derive(Debug, Serialize)]
struct AlertPart {
    action: &'static str,
    gid: u32,
    signature_id: u32,
    rev: u32,
    signature: String,
    category: &'static str,
    severity: u8,
}

#[derive(Debug, Serialize)]
struct AlertEnforcer {
    workload: String,
    direction: &'static str,
    action: &'static str,
    rule_id: u32,
}

impl AlertEvent {
    /// The alert for a violation.
    pub fn new(v: &ViolationRecord, names: &dyn WorkloadNames) -> Self {
        let blocked = v.action == PolicyAction::Deny;
        let workload = names.name(v.workload);
        let signature = if v.rule_id == 0 {
            format!(
                "policy: no rule allows this connection ({} {})",
                workload,
                if blocked { "denies" } else { "reports" }
            )
        } else {
            format!(
                "policy: rule {} {} this connection",
                v.rule_id,
                if blocked { "denies" } else { "flags" }
            )
        };
        let vlans: Vec<u16> = v.vlan.iter().copied().take_while(|&x| x != 0).collect();
        AlertEvent {
            timestamp: Timestamp(v.time),
            flow_id: v.session_id,
            event_type: "alert",
            vlan: (!vlans.is_empty()).then_some(vlans),
            endpoints: Endpoints::new(
                (v.client.ip(), Some(v.client.port())),
                (v.server.ip(), v.server.port()),
                v.proto,
            ),
            app_proto: app_proto(v.app),
            alert: AlertPart {
                action: if blocked { "blocked" } else { "allowed" },
                gid: 1,
                signature_id: v.rule_id,
                rev: 1,
                signature,
                category: "Policy Violation",
                severity: if blocked { 1 } else { 2 },
            },
            enforcer: AlertEnforcer {
                workload,
                direction: direction(v.ingress),
                action: v.action.name(),
                rule_id: v.rule_id,
            },
        }
    }
}

/// A connection report as an EVE line.
#[derive(Debug, Serialize)]
pub struct ConnectionEvent {
    timestamp: Timestamp,
    event_type: &'static str,
    #[serde(flatten)]
    endpoints: Endpoints,
    app_proto: &'static str,
    connection: ConnectionPart,
}

#[derive(Debug, Serialize)]
struct ConnectionPart {
    workload: String,
    direction: &'static str,
    action: &'static str,
    rule_id: u32,
    sessions: u32,
    violations: u32,
    bytes: u64,
    first_seen: Timestamp,
    last_seen: Timestamp,
    threat: Option<&'static str>,
}

impl ConnectionEvent {
    /// The line for a report.
    pub fn new(c: &ConnectionReport, names: &dyn WorkloadNames) -> Self {
        ConnectionEvent {
            timestamp: Timestamp(c.last_seen),
            event_type: "connection",
            endpoints: Endpoints::new((c.client, None), (c.server, c.port), c.proto),
            app_proto: app_proto(c.app),
            connection: ConnectionPart {
                workload: names.name(c.workload),
                direction: direction(c.ingress),
                action: c.action.name(),
                rule_id: c.rule_id,
                sessions: c.sessions,
                violations: c.violations,
                bytes: c.bytes,
                first_seen: Timestamp(c.first_seen),
                last_seen: Timestamp(c.last_seen),
                threat: c.threat.map(|t| t.name()),
            },
        }
    }
}

/// The application named in a connection event's `app_proto` ("failed" = none).
pub fn app_from_proto(s: &str) -> AppState {
    dpi_core::app::AppId::from_name(s).map_or(AppState::Unidentified, AppState::Known)
}

/// An endpoint application update (a server seen speaking an application on a port).
///
/// ```json
/// {"timestamp":"...","event_type":"app_update","dest_ip":"10.0.0.2","dest_port":6379,
///  "proto":"TCP","app_proto":"redis"}
/// ```
#[derive(Debug, Serialize)]
pub struct AppUpdateEvent {
    timestamp: Timestamp,
    event_type: &'static str,
    dest_ip: EveIp,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
    proto: ProtoName,
    app_proto: &'static str,
}

impl AppUpdateEvent {
    /// The line for an update.
    pub fn new(u: &dpi_core::event::AppUpdate) -> Self {
        AppUpdateEvent {
            timestamp: Timestamp(u.time),
            event_type: "app_update",
            dest_ip: EveIp(u.server.ip()),
            dest_port: matches!(u.proto, 6 | 17 | 132).then_some(u.server.port()),
            proto: ProtoName(u.proto),
            app_proto: u.app.name(),
        }
    }
}
