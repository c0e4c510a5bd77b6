//! The policy file: rules in order (the first match wins) and the internal subnets.
//!
//! ```toml
//! internal_subnets = ["10.0.0.0/8", "fd00::/8"]   # optional
//!
//! [[rule]]
//! id = 100
//! from = ["10.0.1.0/24", "*.example.com"]         # or one string
//! to = "10.0.2.5"
//! ports = ["tcp/8080"]                             # optional: any
//! apps = ["http"]                                  # optional: any
//! action = "allow"                                 # allow | deny
//! workloads = ["api"]                              # optional: every workload
//! ```
//!
//! Format decisions (for operators: `docs/policy.md`):
//!
//! - peers: `any`, `external`, an address, a CIDR block, a `low-high` range (one family,
//!   low ≤ high), or a DNS name (at least two labels, a wildcard only as a leading `*.`).
//!   Names are lowercased and a trailing dot dropped. A CIDR block whose address has host
//!   bits set (`10.0.1.5/24`) is **rejected**: it is either a typo for the block or for the
//!   single address, and a policy should not guess which;
//! - ports: `any`, `tcp/80`, `tcp/8000-8080`, `tcp/any` (or `tcp`), the same for `udp`,
//!   `icmp` (ICMP and ICMPv6), `ip/47` (another IP protocol by number). A bare `80` is
//!   rejected: name the protocol;
//! - the writer ([`PolicyFile::to_toml`]) writes the canonical form of every value, so a
//!   written file parses back equal to what was written.

use super::source::{DeError, Seg, Source};
use super::{Format, Location};
use core::fmt::{self, Write as _};
use dpi_core::app::AppId;
use dpi_core::endpoint::default_internal_subnets;
use dpi_core::endpoint::store::split;
use dpi_core::packet::addr_to_ip;
use dpi_core::policy::{IpNet, Peer, PortSpec, Rule, RuleAction};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// A policy file: the rules, in order, and the internal subnets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyFile {
    /// The rules in file order; the first match wins.
    pub rules: Vec<PolicyRule>,
    /// Address ranges that are not "external" (default
    /// [`dpi_core::endpoint::default_internal_subnets`]).
    pub internal_subnets: Vec<IpNet>,
}

/// One rule of a policy file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRule {
    /// The rule.
    pub rule: Rule,
    /// The workloads whose policy carries the rule; `None`: every workload.
    pub workloads: Option<Vec<String>>,
    /// The operator's comment (not used by the engine).
    pub comment: Option<String>,
}

impl PolicyRule {
    /// Does the policy of workload `name` carry the rule?
    pub fn applies_to(&self, name: &str) -> bool {
        self.workloads.as_ref().is_none_or(|w| w.iter().any(|n| n == name))
    }
}

/// Why a policy file was rejected. Every message names the file; all but [`Read`] name
/// the line and column, and the rule and field where there is one.
///
/// [`Read`]: PolicyFileError::Read
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyFileError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML or JSON, or a key or value the format does not have: an unknown or
    /// missing key, a value of the wrong type, an unknown `action`.
    #[error("{at}: {}{message}", rule_colon(*rule))]
    Syntax {
        /// Where.
        at: Location,
        /// The id of the rule it is in, when known.
        rule: Option<u32>,
        /// What the parser said.
        message: String,
    },
    /// A value that is well-formed but wrong: a bad address, port range, name or
    /// application, a duplicate id.
    #[error("{at}: {}field \"{field}\": {message}", rule_comma(*rule))]
    Invalid {
        /// Where (the offending value).
        at: Location,
        /// The id of the rule, or `None` for a top-level field.
        rule: Option<u32>,
        /// The field (`ports`, `internal_subnets`, ...).
        field: &'static str,
        /// What is wrong (starting with the offending value where there is one).
        message: String,
    },
}

fn rule_colon(rule: Option<u32>) -> String {
    rule.map(|id| format!("rule {id}: ")).unwrap_or_default()
}

fn rule_comma(rule: Option<u32>) -> String {
    rule.map(|id| format!("rule {id}, ")).unwrap_or_default()
}

// Keys, with the spellings accepted for them.
const K_SUBNETS: &[&str] = &["internal_subnets"];
const K_RULE: &[&str] = &["rule", "rules"];
const K_ID: &[&str] = &["id"];
const K_FROM: &[&str] = &["from"];
const K_TO: &[&str] = &["to"];
const K_PORTS: &[&str] = &["ports"];
const K_APPS: &[&str] = &["apps"];
const K_WORKLOADS: &[&str] = &["workloads"];
const K_VHOST: &[&str] = &["vhost"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    internal_subnets: Option<Vec<String>>,
    #[serde(default, alias = "rules")]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: u32,
    from: StringList,
    to: StringList,
    #[serde(default)]
    ports: Option<StringList>,
    #[serde(default)]
    apps: Option<StringList>,
    action: RawAction,
    #[serde(default)]
    workloads: Option<StringList>,
    #[serde(default)]
    vhost: bool,
    #[serde(default)]
    comment: Option<String>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawAction {
    Allow,
    Deny,
}

/// A string or a list of strings.
pub(crate) struct StringList(pub(crate) Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<StringList, E> {
                Ok(StringList(vec![s.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StringList, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    v.push(s);
                }
                Ok(StringList(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl PolicyFile {
    /// A policy file holding `rules` for every workload, with the default internal
    /// subnets (what `enforcer learn` writes).
    pub fn from_rules(rules: Vec<Rule>) -> PolicyFile {
        PolicyFile {
            rules: rules
                .into_iter()
                .map(|rule| PolicyRule { rule, workloads: None, comment: None })
                .collect(),
            internal_subnets: default_internal_subnets(),
        }
    }

    /// Read and parse a policy file; the format is chosen by [`Format::detect`].
    pub fn load(path: impl AsRef<Path>) -> Result<PolicyFile, PolicyFileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| PolicyFileError::Read { path: path.into(), source })?;
        PolicyFile::parse(&text, &path.display().to_string(), Format::detect(path, &text))
    }

    /// Parse the text of a policy file; `file` names it in errors.
    pub fn parse(text: &str, file: &str, format: Format) -> Result<PolicyFile, PolicyFileError> {
        let src = Source::new(file, text, format);
        let raw: RawPolicy = src.deserialize().map_err(|e| syntax_error(&src, e))?;
        validate(&src, raw)
    }

    /// The rules of workload `name`'s policy, in order: those with no `workloads` list and
    /// those naming it.
    pub fn rules_for(&self, name: &str) -> Vec<Rule> {
        self.rules.iter().filter(|r| r.applies_to(name)).map(|r| r.rule.clone()).collect()
    }

    /// The rules with no `workloads` list (every workload's, and those of implicit
    /// workloads), in order.
    pub fn common_rules(&self) -> Vec<Rule> {
        self.rules.iter().filter(|r| r.workloads.is_none()).map(|r| r.rule.clone()).collect()
    }

    /// Workload names that rules list but `known` does not hold: `(rule id, name)`, in
    /// rule order. A rule naming an unknown workload is carried by no policy; callers
    /// usually warn about these.
    pub fn unknown_workloads(&self, known: impl Fn(&str) -> bool) -> Vec<(u32, &str)> {
        self.rules
            .iter()
            .flat_map(|r| r.workloads.iter().flatten().map(move |n| (r.rule.id, n.as_str())))
            .filter(|(_, n)| !known(n))
            .collect()
    }

    /// The file in TOML, every value in its canonical form. A file that [`parse`] accepted
    /// is written so that it parses back equal; rules built by hand must obey the same
    /// rules as a parsed file (non-zero unique ids, no empty `from`, `to`, `ports` or
    /// `workloads` list, valid names, IPv4 nets mapped as [`dpi_core::packet::addr_from_v4`]
    /// does) or the written file will be rejected when read.
    ///
    /// [`parse`]: PolicyFile::parse
    pub fn to_toml(&self) -> String {
        let mut out =
            String::from("# Policy file (docs/policy.md): rules in order, the first match wins.\n");
        if self.internal_subnets != default_internal_subnets() {
            let nets: Vec<String> = self.internal_subnets.iter().map(format_net).collect();
            let _ = writeln!(out, "internal_subnets = {}", toml_list(&nets));
        }
        for pr in &self.rules {
            let r = &pr.rule;
            let peers = |p: &[Peer]| toml_list(&p.iter().map(format_peer).collect::<Vec<_>>());
            let _ = writeln!(out, "\n[[rule]]\nid = {}", r.id);
            let _ = writeln!(out, "from = {}", peers(&r.from));
            let _ = writeln!(out, "to = {}", peers(&r.to));
            if r.ports != [PortSpec::Any] {
                let ports: Vec<String> = r.ports.iter().map(format_port_spec).collect();
                let _ = writeln!(out, "ports = {}", toml_list(&ports));
            }
            if !r.apps.is_empty() {
                let apps: Vec<&str> = r.apps.iter().map(|a| a.name()).collect();
                let _ = writeln!(out, "apps = {}", toml_list(&apps));
            }
            let action = match r.action {
                RuleAction::Allow => "allow",
                RuleAction::Deny => "deny",
            };
            let _ = writeln!(out, "action = \"{action}\"");
            if let Some(w) = &pr.workloads {
                let _ = writeln!(out, "workloads = {}", toml_list(w));
            }
            if r.vhost {
                out.push_str("vhost = true\n");
            }
            if let Some(c) = &pr.comment {
                let _ = writeln!(out, "comment = {}", toml_string(c));
            }
        }
        out
    }
}

fn syntax_error(src: &Source<'_>, e: DeError) -> PolicyFileError {
    let rule = e
        .offset
        .and_then(|off| src.element_at(K_RULE, off, K_ID))
        .and_then(|(_, id)| id?.parse().ok());
    PolicyFileError::Syntax { at: e.at, rule, message: e.message }
}

fn validate(src: &Source<'_>, raw: RawPolicy) -> Result<PolicyFile, PolicyFileError> {
    let invalid = |path: &[Seg], rule, field: &'static [&'static str], message| {
        PolicyFileError::Invalid { at: src.at_path(path), rule, field: field[0], message }
    };
    let internal_subnets = match raw.internal_subnets {
        None => default_internal_subnets(),
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, s)| {
                parse_net(s).map_err(|m| {
                    let path = [Seg::Key(K_SUBNETS), Seg::Index(i)];
                    invalid(&path, None, K_SUBNETS, format!("{s:?}: {m}"))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let mut first_of_id: HashMap<u32, usize> = HashMap::new();
    let mut rules = Vec::with_capacity(raw.rule.len());
    for (i, r) in raw.rule.into_iter().enumerate() {
        let id = r.id;
        let at = |field: &'static [&'static str], elem: Option<usize>| {
            let mut path = vec![Seg::Key(K_RULE), Seg::Index(i), Seg::Key(field)];
            path.extend(elem.map(Seg::Index));
            path
        };
        let bad = |field, elem, message| invalid(&at(field, elem), Some(id), field, message);
        if id == 0 {
            return Err(bad(
                K_ID,
                None,
                "0 is reserved for the default action: use 1 or more".into(),
            ));
        }
        if let Some(&first) = first_of_id.get(&id) {
            let prev = src.at_path(&[Seg::Key(K_RULE), Seg::Index(first), Seg::Key(K_ID)]);
            return Err(bad(
                K_ID,
                None,
                format!("duplicate rule id {id} (first at line {})", prev.line),
            ));
        }
        first_of_id.insert(id, i);

        let from = parse_list(K_FROM, r.from.0, parse_peer, &bad)?;
        let to = parse_list(K_TO, r.to.0, parse_peer, &bad)?;
        let ports = match r.ports {
            None => vec![PortSpec::Any],
            Some(p) => parse_list(K_PORTS, p.0, parse_port_spec, &bad)?,
        };
        let apps = match r.apps {
            None => vec![],
            Some(a) if a.0.is_empty() => vec![],
            Some(a) => parse_list(K_APPS, a.0, parse_app, &bad)?,
        };
        let workloads = match r.workloads {
            None => None,
            Some(w) => Some(parse_list(
                K_WORKLOADS,
                w.0,
                |s| super::workloads_file::check_name(s).map(|()| s.to_string()),
                &bad,
            )?),
        };
        let has_name = to.iter().any(|p| matches!(p, Peer::Fqdn(_)));
        if r.vhost && !has_name {
            return Err(bad(
                K_VHOST,
                None,
                "a vhost rule needs a DNS name in \"to\" (the Host / SNI names the server \
                 and is matched against it)"
                    .into(),
            ));
        }
        let action = match r.action {
            RawAction::Allow => RuleAction::Allow,
            RawAction::Deny => RuleAction::Deny,
        };
        rules.push(PolicyRule {
            rule: Rule { id, from, to, ports, apps, action, vhost: r.vhost },
            workloads,
            comment: r.comment,
        });
    }
    Ok(PolicyFile { rules, internal_subnets })
}

/// Parse every string of a list field; an empty list is an error.
fn parse_list<T>(
    field: &'static [&'static str],
    items: Vec<String>,
    parse: impl Fn(&str) -> Result<T, String>,
    bad: &dyn Fn(&'static [&'static str], Option<usize>, String) -> PolicyFileError,
) -> Result<Vec<T>, PolicyFileError> {
    if items.is_empty() {
        return Err(bad(field, None, empty_message(field)));
    }
    items
        .iter()
        .enumerate()
        .map(|(j, s)| parse(s).map_err(|m| bad(field, Some(j), format!("{s:?}: {m}"))))
        .collect()
}

fn empty_message(field: &'static [&'static str]) -> String {
    match field[0] {
        "ports" => "empty list: a rule with no ports never matches (omit the field, or write \
                    [\"any\"], for every port)"
            .into(),
        "workloads" => "empty list: the rule would be carried by no workload (omit the field \
                        for every workload)"
            .into(),
        f => format!("empty list: a rule with no \"{f}\" peers never matches (write [\"any\"])"),
    }
}

fn parse_app(s: &str) -> Result<AppId, String> {
    AppId::from_name(s.trim()).ok_or_else(|| {
        let names: Vec<&str> = AppId::ALL.iter().map(|a| a.name()).collect();
        format!("unknown application; known applications: {}", names.join(", "))
    })
}

/// Parse one peer: `any`, `external`, an address, CIDR block or range ([`parse_net`]), or
/// a DNS name ([`parse_name`]). Keywords and names are case-insensitive.
pub fn parse_peer(s: &str) -> Result<Peer, String> {
    let t = s.trim().to_ascii_lowercase();
    match t.as_str() {
        "any" => Ok(Peer::Any),
        "external" => Ok(Peer::External),
        _ if looks_like_address(&t) => parse_net(&t).map(Peer::Net),
        _ => parse_name(&t).map(Peer::Fqdn),
    }
}

/// Text that is meant as an address rather than a name: it has `:` or `/`, or its last
/// label is all digits (no DNS top-level domain is).
fn looks_like_address(s: &str) -> bool {
    s.contains(':')
        || s.contains('/')
        || s.rsplit('.')
            .next()
            .is_some_and(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_ip(s: &str) -> Result<IpAddr, String> {
    let s = s.trim();
    s.parse().map_err(|_| format!("{s:?} is not an IPv4 or IPv6 address"))
}

/// Parse an address (`10.0.0.1`, `fd00::1`), a CIDR block (`10.0.1.0/24`; the address
/// must have no host bits set) or a range (`10.0.2.1-10.0.2.9`; one family, low ≤ high).
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Some((a, p)) = s.split_once('/') {
        let ip = parse_ip(a)?;
        let (v6, addr) = split(ip);
        let max = if v6 { 128 } else { 32 };
        let prefix: u8 = p.trim().parse().ok().filter(|&n: &u8| n <= max).ok_or_else(|| {
            format!("prefix length {:?} is not a number from 0 to {max}", p.trim())
        })?;
        let net = IpNet::cidr(v6, addr, prefix)
            .ok_or_else(|| format!("prefix length {prefix} is above {max}"))?;
        if net.lo != addr {
            return Err(format!(
                "host bits are set: write {}/{prefix} for the block, or {ip} alone for the address",
                addr_to_ip(net.lo, v6)
            ));
        }
        Ok(net)
    } else if let Some((a, b)) = s.split_once('-') {
        let (lo, hi) = (parse_ip(a)?, parse_ip(b)?);
        let ((v6, l), (v6b, h)) = (split(lo), split(hi));
        if v6 != v6b {
            return Err("a range must be IPv4 to IPv4 or IPv6 to IPv6".into());
        }
        if l > h {
            return Err(format!("range low {lo} is above high {hi}"));
        }
        Ok(IpNet { v6, lo: l, hi: h })
    } else {
        let (v6, a) = split(parse_ip(s)?);
        Ok(IpNet::host(v6, a))
    }
}

/// Parse a DNS name for a rule: lowercased, a trailing dot dropped; labels of letters,
/// digits, `-` and `_` (1 to 63 characters, no `-` at either end), at least two labels,
/// at most 253 characters, a wildcard only as a leading `*.` (`*.example.com` matches
/// every name below `example.com`, not `example.com` itself).
pub fn parse_name(s: &str) -> Result<String, String> {
    let lower = s.trim().to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    let bare = name.strip_prefix("*.").unwrap_or(name);
    if name.is_empty() {
        return Err("empty name".into());
    }
    if !name.is_ascii() {
        return Err("write an internationalised name in its ASCII (xn--) form".into());
    }
    if bare.contains('*') {
        return Err("a wildcard is allowed only as a leading \"*.\" (\"*.example.com\")".into());
    }
    if name.len() > 253 {
        return Err(format!("a name has at most 253 characters, this one {}", name.len()));
    }
    let labels: Vec<&str> = bare.split('.').collect();
    for l in &labels {
        if l.is_empty() {
            return Err("empty label (two dots in a row, or a leading dot)".into());
        }
        if l.len() > 63 {
            return Err(format!("label {l:?} is longer than 63 characters"));
        }
        if let Some(c) = l.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("label {l:?} has {c:?}: names have letters, digits, '-' and '_'"));
        }
        if l.starts_with('-') || l.ends_with('-') {
            return Err(format!("label {l:?} starts or ends with '-'"));
        }
    }
    if labels.len() < 2 {
        return Err("not a keyword (\"any\", \"external\"), an address or a DNS name with at \
                    least two labels (\"db.example.com\")"
            .into());
    }
    Ok(name.to_string())
}

/// Parse a protocol and port spec: `any`; `tcp/80`, `tcp/8000-8080`, `tcp/any` or `tcp`
/// (and the same for `udp`); `icmp` (ICMP and ICMPv6); `ip/47` (any other IP protocol by
/// number). Case-insensitive.
pub fn parse_port_spec(s: &str) -> Result<PortSpec, String> {
    let t = s.trim().to_ascii_lowercase();
    const FORMS: &str = "write tcp/PORT, tcp/LOW-HIGH, tcp/any, the same with udp, icmp, \
                         ip/PROTOCOL-NUMBER or any";
    match t.as_str() {
        "any" => return Ok(PortSpec::Any),
        "icmp" => return Ok(PortSpec::Icmp),
        "tcp" => return Ok(PortSpec::Tcp(0, u16::MAX)),
        "udp" => return Ok(PortSpec::Udp(0, u16::MAX)),
        _ => {}
    }
    let Some((proto, rest)) = t.split_once('/') else {
        if t.bytes().all(|b| b.is_ascii_digit() || b == b'-') && !t.is_empty() {
            return Err(format!("name the protocol: \"tcp/{t}\" or \"udp/{t}\""));
        }
        return Err(format!("not a port spec: {FORMS}"));
    };
    let (proto, rest) = (proto.trim(), rest.trim());
    let range = || -> Result<(u16, u16), String> {
        if rest == "any" {
            return Ok((0, u16::MAX));
        }
        let (a, b) = rest.split_once('-').unwrap_or((rest, rest));
        let (lo, hi) = (parse_port(a)?, parse_port(b)?);
        if lo > hi {
            return Err(format!("range low {lo} is above high {hi}"));
        }
        Ok((lo, hi))
    };
    match proto {
        "tcp" => range().map(|(lo, hi)| PortSpec::Tcp(lo, hi)),
        "udp" => range().map(|(lo, hi)| PortSpec::Udp(lo, hi)),
        "ip" => rest
            .parse()
            .map(PortSpec::Proto)
            .map_err(|_| format!("{rest:?} is not an IP protocol number (0 to 255)")),
        "icmp" => Err("ICMP has no ports: write \"icmp\"".into()),
        _ => Err(format!("unknown protocol {proto:?}: {FORMS}")),
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    let s = s.trim();
    match s.parse::<u64>() {
        Ok(n) => u16::try_from(n).map_err(|_| format!("port {n} is above 65535")),
        Err(_) => Err(format!("{s:?} is not a port number")),
    }
}

/// The canonical text of a peer (what [`parse_peer`] reads back equal).
pub fn format_peer(p: &Peer) -> String {
    match p {
        Peer::Any => "any".into(),
        Peer::External => "external".into(),
        Peer::Net(n) => format_net(n),
        Peer::Fqdn(name) => name.clone(),
    }
}

/// The canonical text of an address range: an address, else a CIDR block when the range
/// is one, else `low-high`.
pub fn format_net(n: &IpNet) -> String {
    let ip = |a| addr_to_ip(a, n.v6);
    if n.lo == n.hi {
        return ip(n.lo).to_string();
    }
    let (lo, hi, bits) = if n.v6 {
        (n.lo, n.hi, 128)
    } else {
        (u128::from(n.lo as u32), u128::from(n.hi as u32), 32)
    };
    let diff = lo ^ hi;
    let ones_below = diff.checked_add(1).is_none_or(|d| diff & d == 0);
    if hi > lo && ones_below && lo & diff == 0 {
        format!("{}/{}", ip(n.lo), bits - diff.count_ones())
    } else {
        format!("{}-{}", ip(n.lo), ip(n.hi))
    }
}

/// The canonical text of a port spec (what [`parse_port_spec`] reads back equal).
pub fn format_port_spec(p: &PortSpec) -> String {
    let ports = |proto: &str, lo: u16, hi: u16| match (lo, hi) {
        (0, u16::MAX) => format!("{proto}/any"),
        (lo, hi) if lo == hi => format!("{proto}/{lo}"),
        (lo, hi) => format!("{proto}/{lo}-{hi}"),
    };
    match *p {
        PortSpec::Any => "any".into(),
        PortSpec::Tcp(lo, hi) => ports("tcp", lo, hi),
        PortSpec::Udp(lo, hi) => ports("udp", lo, hi),
        PortSpec::Icmp => "icmp".into(),
        PortSpec::Proto(n) => format!("ip/{n}"),
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_list<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| toml_string(s.as_ref())).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpi_core::packet::addr_from_v4;

    fn v4(a: [u8; 4]) -> u128 {
        addr_from_v4(a)
    }

    #[test]
    fn nets_format_canonically_and_parse_back() {
        let cases = [
            ("10.0.0.1", "10.0.0.1"),
            ("10.0.1.0/24", "10.0.1.0/24"),
            ("10.0.0.0-10.0.0.255", "10.0.0.0/24"),
            ("10.0.2.1-10.0.2.9", "10.0.2.1-10.0.2.9"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("::/0", "::/0"),
            ("fd00::/8", "fd00::/8"),
            ("fd00::1-fd00::ff", "fd00::1-fd00::ff"),
            ("10.0.0.0/32", "10.0.0.0"),
            ("FD00::1", "fd00::1"),
        ];
        for (input, canonical) in cases {
            let n = parse_net(input).unwrap();
            assert_eq!(format_net(&n), canonical, "{input}");
            assert_eq!(parse_net(canonical).unwrap(), n, "{input}");
        }
        assert_eq!(
            parse_net("10.0.0.0-10.0.0.255").unwrap(),
            IpNet { v6: false, lo: v4([10, 0, 0, 0]), hi: v4([10, 0, 0, 255]) }
        );
    }

    #[test]
    fn ports_format_canonically_and_parse_back() {
        for (input, canonical) in [
            ("TCP/80", "tcp/80"),
            ("tcp", "tcp/any"),
            ("udp/any", "udp/any"),
            ("udp/0-65535", "udp/any"),
            ("tcp/8000 - 8080", "tcp/8000-8080"),
            ("icmp", "icmp"),
            ("ip/47", "ip/47"),
            ("any", "any"),
        ] {
            let p = parse_port_spec(input).unwrap();
            assert_eq!(format_port_spec(&p), canonical, "{input}");
            assert_eq!(parse_port_spec(canonical).unwrap(), p);
        }
    }

    #[test]
    fn names() {
        assert_eq!(parse_name("API.Example.com.").unwrap(), "api.example.com");
        assert_eq!(parse_name("*.example.com").unwrap(), "*.example.com");
        assert!(parse_name("a.*.example.com").unwrap_err().contains("leading"));
        assert!(parse_name("*example.com").unwrap_err().contains("leading"));
        assert!(parse_name("exteral").unwrap_err().contains("two labels"));
        assert!(parse_name("-a.example.com").unwrap_err().contains("'-'"));
        assert!(parse_name("a..b").unwrap_err().contains("empty label"));
        assert!(parse_name("a b.com").unwrap_err().contains("' '"));
        assert!(parse_name(&format!("{}.com", "a".repeat(64))).unwrap_err().contains("63"));
        let long = vec!["abcdefghi"; 26].join(".");
        assert!(parse_name(&long).unwrap_err().contains("253"));
        assert!(parse_name("bücher.de").unwrap_err().contains("xn--"));
    }

    #[test]
    fn toml_strings_escape() {
        assert_eq!(toml_string("a\"b\\c\nd\u{1}é"), "\"a\\\"b\\\\c\\nd\\u0001é\"");
    }
}
