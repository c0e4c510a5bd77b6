//! Learning: Discover-mode connection reports become allow rules.
//!
//! `enforcer learn REPORTS.jsonl...` reads the EVE lines a replay (or a live run) wrote,
//! keeps the `connection` events whose action is `learn`, and turns them into rules, as
//! NeuVector's controller does (reference §7.4), per (client address, server address):
//!
//! - connections whose application was identified on every session become application
//!   rules on their port (`apps = ["redis"]`); any session without an identified
//!   application on that port keeps a plain port rule, so nothing learned is later denied
//!   for lack of an application;
//! - the ports of one pair merge into one rule; more than [`MAX_PORTS`] become `any`;
//! - ids are numbered from 10000 in a stable order (sorted by client, server), the range
//!   NeuVector reserves for learned rules (Discover mode reports their matches as LEARN).
//!
//! Learned rules name exact addresses, so they apply to every workload's policy.

use dpi_core::app::{AppId, AppState};
use dpi_core::endpoint::store::split;
use dpi_core::policy::{IpNet, Peer, PortSpec, Rule, RuleAction};
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// More distinct ports than this in one learned rule collapse to `any`.
pub const MAX_PORTS: usize = 20;
/// First learned rule id.
pub const FIRST_LEARNED_ID: u32 = 10_000;

/// Why learning failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LearnError {
    /// A reports file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not an EVE JSON object, or a connection event lacks a field.
    #[error("{path}:{line}: {what}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// Line number (from 1).
        line: usize,
        /// What is wrong.
        what: String,
    },
}

/// A connection to learn from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Seen {
    client: IpAddr,
    server: IpAddr,
    proto: u8,
    port: u16,
}

/// What was learned, before it becomes rules.
#[derive(Debug, Default)]
pub struct Learner {
    /// Per connection: the applications seen, and whether a session had none.
    seen: BTreeMap<Seen, (BTreeSet<AppId>, bool)>,
    /// Connection events read, and those that were LEARN.
    pub events: u64,
    /// LEARN connection events used.
    pub learned: u64,
}

impl Learner {
    /// Read one reports file.
    pub fn read_file(&mut self, path: &Path) -> Result<(), LearnError> {
        let f = std::fs::File::open(path)
            .map_err(|source| LearnError::Read { path: path.into(), source })?;
        self.read(path, std::io::BufReader::new(f))
    }

    /// Read EVE lines from `input` (`path` names it in errors).
    pub fn read(&mut self, path: &Path, input: impl BufRead) -> Result<(), LearnError> {
        for (i, line) in input.lines().enumerate() {
            let line = line.map_err(|source| LearnError::Read { path: path.into(), source })?;
            if line.trim().is_empty() {
                continue;
            }
            let bad = |what: String| LearnError::Bad { path: path.into(), line: i + 1, what };
            let v: serde_json::Value =
                serde_json::from_str(&line).map_err(|e| bad(format!("not JSON: {e}")))?;
            if v["event_type"] != "connection" {
                continue;
            }
            self.events += 1;
            if v["connection"]["action"] != "learn" {
                continue;
            }
            let ip = |k: &str| -> Result<IpAddr, LearnError> {
                v[k].as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad(format!("field {k:?} missing or not an address")))
            };
            let proto = proto_number(v["proto"].as_str().unwrap_or(""))
                .ok_or_else(|| bad(format!("unknown proto {}", v["proto"])))?;
            let port = match proto {
                6 | 17 | 132 => v["dest_port"]
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| bad("field \"dest_port\" missing".into()))?,
                _ => 0,
            };
            let key = Seen { client: ip("src_ip")?, server: ip("dest_ip")?, proto, port };
            let app = crate::eve::policy::app_from_proto(v["app_proto"].as_str().unwrap_or(""));
            let e = self.seen.entry(key).or_default();
            match app {
                AppState::Known(a) => {
                    e.0.insert(a);
                }
                _ => e.1 = true,
            }
            self.learned += 1;
        }
        Ok(())
    }

    /// The learned rules, ids from [`FIRST_LEARNED_ID`].
    pub fn rules(&self) -> Vec<Rule> {
        // Per (client, server): ports without applications, and per application set the
        // ports that had only those applications.
        let mut groups: BTreeMap<Group, BTreeSet<(u8, u16)>> = BTreeMap::new();
        for (k, (apps, without)) in &self.seen {
            let apps = if *without { vec![] } else { apps.iter().copied().collect() };
            groups.entry((k.client, k.server, apps)).or_default().insert((k.proto, k.port));
        }
        (FIRST_LEARNED_ID..)
            .zip(groups)
            .map(|(id, ((client, server, apps), ports))| Rule {
                id,
                from: vec![peer(client)],
                to: vec![peer(server)],
                ports: if ports.len() > MAX_PORTS {
                    vec![PortSpec::Any]
                } else {
                    ports.into_iter().map(port_spec).collect()
                },
                apps,
                action: RuleAction::Allow,
                vhost: false,
            })
            .collect()
    }
}

/// A learned rule's identity: client, server, applications (empty: any).
type Group = (IpAddr, IpAddr, Vec<AppId>);

fn peer(ip: IpAddr) -> Peer {
    let (v6, a) = split(ip);
    Peer::Net(IpNet::host(v6, a))
}

fn port_spec((proto, port): (u8, u16)) -> PortSpec {
    match proto {
        6 => PortSpec::Tcp(port, port),
        17 => PortSpec::Udp(port, port),
        1 | 58 => PortSpec::Icmp,
        p => PortSpec::Proto(p),
    }
}

/// The IP protocol number of an EVE `proto` field.
fn proto_number(s: &str) -> Option<u8> {
    Some(match s {
        "TCP" => 6,
        "UDP" => 17,
        "ICMP" => 1,
        "IPv6-ICMP" => 58,
        "IGMP" => 2,
        "IPIP" => 4,
        "IPv6" => 41,
        "GRE" => 47,
        "ESP" => 50,
        "AH" => 51,
        "SCTP" => 132,
        other => return other.parse().ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(src: &str, dst: &str, proto: &str, port: u16, app: &str, action: &str) -> String {
        format!(
            r#"{{"event_type":"connection","src_ip":"{src}","dest_ip":"{dst}","dest_port":{port},"proto":"{proto}","app_proto":"{app}","connection":{{"action":"{action}"}}}}"#
        )
    }

    #[test]
    fn learns_port_and_app_rules() {
        let lines = [
            conn("10.0.0.1", "10.0.0.2", "TCP", 80, "failed", "learn"),
            conn("10.0.0.1", "10.0.0.2", "UDP", 53, "failed", "learn"),
            conn("10.0.0.1", "10.0.0.3", "TCP", 6379, "redis", "learn"),
            conn("10.0.0.1", "10.0.0.4", "TCP", 22, "ssh", "violate"),
            r#"{"event_type":"flow"}"#.to_string(),
        ]
        .join("\n");
        let mut l = Learner::default();
        l.read(Path::new("r.json"), lines.as_bytes()).unwrap();
        assert_eq!((l.events, l.learned), (4, 3));
        let rules = l.rules();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].id, 10_000);
        assert_eq!(rules[0].ports, vec![PortSpec::Tcp(80, 80), PortSpec::Udp(53, 53)]);
        assert!(rules[0].apps.is_empty());
        assert_eq!(rules[1].apps, vec![AppId::REDIS]);
        assert_eq!(rules[1].ports, vec![PortSpec::Tcp(6379, 6379)]);
    }

    #[test]
    fn a_session_without_app_keeps_the_port_rule_and_many_ports_collapse() {
        let mut lines = vec![
            conn("10.0.0.1", "10.0.0.3", "TCP", 6379, "redis", "learn"),
            conn("10.0.0.1", "10.0.0.3", "TCP", 6379, "failed", "learn"),
        ];
        for p in 0..25 {
            lines.push(conn("10.0.0.5", "10.0.0.6", "TCP", 1000 + p, "failed", "learn"));
        }
        let mut l = Learner::default();
        l.read(Path::new("r.json"), lines.join("\n").as_bytes()).unwrap();
        let rules = l.rules();
        assert_eq!(rules[0].apps, vec![]);
        assert_eq!(rules[1].ports, vec![PortSpec::Any]);
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let mut l = Learner::default();
        let e = l.read(Path::new("r.json"), "\n{nope".as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("r.json:2: not JSON"), "{e}");
    }
}
