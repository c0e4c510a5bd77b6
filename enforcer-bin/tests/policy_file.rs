//! Policy and workloads files: every valid form parses to the right engine value, every
//! kind of mistake is reported with file, line, column and field, JSON behaves as TOML,
//! the writer round-trips, and the shipped examples parse and load into a policy store.

// Helpers outside `#[test]` functions unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dpi_core::app::AppId;
use dpi_core::endpoint::{
    default_internal_subnets, ApplyDirection, Mode, PolicyStore, UnknownTraffic, Wiring,
};
use dpi_core::packet::addr_from_v4;
use dpi_core::policy::{IpNet, Peer, PortSpec, Rule, RuleAction};
use enforcer::config::{
    policy_config, Format, PolicyFile, PolicyFileError, PolicyRule, WorkloadsFile,
    WorkloadsFileError,
};
use std::path::{Path, PathBuf};

fn toml(text: &str) -> Result<PolicyFile, PolicyFileError> {
    PolicyFile::parse(text, "policy.toml", Format::Toml)
}

fn json(text: &str) -> Result<PolicyFile, PolicyFileError> {
    PolicyFile::parse(text, "policy.json", Format::Json)
}

/// The error message of a policy that must be rejected.
fn toml_err(text: &str) -> String {
    match toml(text) {
        Ok(p) => panic!("accepted: {p:?}"),
        Err(e) => e.to_string(),
    }
}

fn json_err(text: &str) -> String {
    match json(text) {
        Ok(p) => panic!("accepted: {p:?}"),
        Err(e) => e.to_string(),
    }
}

fn v4(s: &str) -> u128 {
    let a: std::net::Ipv4Addr = s.parse().unwrap();
    addr_from_v4(a.octets())
}

fn v6(s: &str) -> u128 {
    let a: std::net::Ipv6Addr = s.parse().unwrap();
    u128::from(a)
}

fn host4(s: &str) -> Peer {
    Peer::Net(IpNet::host(false, v4(s)))
}

fn net4(lo: &str, hi: &str) -> Peer {
    Peer::Net(IpNet { v6: false, lo: v4(lo), hi: v4(hi) })
}

fn net6(lo: &str, hi: &str) -> Peer {
    Peer::Net(IpNet { v6: true, lo: v6(lo), hi: v6(hi) })
}

fn rule(id: u32, from: Vec<Peer>, to: Vec<Peer>) -> Rule {
    Rule {
        id,
        from,
        to,
        ports: vec![PortSpec::Any],
        apps: vec![],
        action: RuleAction::Allow,
        vhost: false,
    }
}

const EVERY_FORM: &str = r#"
internal_subnets = ["10.0.0.0/8", "192.168.1.0-192.168.1.127", "fd00::/8", "172.16.0.1"]

[[rule]]
id = 100
from = ["10.0.0.1", "10.0.1.0/24", "10.0.2.1-10.0.2.9", "external", "any", "API.Example.com", "*.example.com", "fd00::1", "fd00::/64", "fd00::1-fd00::9", "db.example.com."]
to = ["10.0.0.2", "www.example.com"]
ports = ["tcp/80", "tcp/8000-8080", "udp/53", "icmp", "any", "ip/47", "tcp", "udp/any", "TCP/443"]
apps = ["http", "Redis"]
action = "deny"
workloads = ["web", "db"]
vhost = true
comment = "every form"

[[rule]]
id = 7
from = "any"
to = "external"
action = "allow"
"#;

#[test]
fn every_field_form_parses_to_the_engine_value() {
    let p = toml(EVERY_FORM).unwrap();
    let subnets = vec![
        IpNet::cidr(false, v4("10.0.0.0"), 8).unwrap(),
        IpNet { v6: false, lo: v4("192.168.1.0"), hi: v4("192.168.1.127") },
        IpNet::cidr(true, v6("fd00::"), 8).unwrap(),
        IpNet::host(false, v4("172.16.0.1")),
    ];
    assert_eq!(p.internal_subnets, subnets);
    assert_eq!(p.rules.len(), 2);
    let r = &p.rules[0];
    let expected = Rule {
        id: 100,
        from: vec![
            host4("10.0.0.1"),
            net4("10.0.1.0", "10.0.1.255"),
            net4("10.0.2.1", "10.0.2.9"),
            Peer::External,
            Peer::Any,
            Peer::Fqdn("api.example.com".into()),
            Peer::Fqdn("*.example.com".into()),
            net6("fd00::1", "fd00::1"),
            net6("fd00::", "fd00::ffff:ffff:ffff:ffff"),
            net6("fd00::1", "fd00::9"),
            Peer::Fqdn("db.example.com".into()),
        ],
        to: vec![host4("10.0.0.2"), Peer::Fqdn("www.example.com".into())],
        ports: vec![
            PortSpec::Tcp(80, 80),
            PortSpec::Tcp(8000, 8080),
            PortSpec::Udp(53, 53),
            PortSpec::Icmp,
            PortSpec::Any,
            PortSpec::Proto(47),
            PortSpec::Tcp(0, 65535),
            PortSpec::Udp(0, 65535),
            PortSpec::Tcp(443, 443),
        ],
        apps: vec![AppId::HTTP, AppId::REDIS],
        action: RuleAction::Deny,
        vhost: true,
    };
    assert_eq!(r.rule, expected);
    assert_eq!(r.workloads, Some(vec!["web".to_string(), "db".to_string()]));
    assert_eq!(r.comment.as_deref(), Some("every form"));
    // Single strings, and every optional field left out.
    let r = &p.rules[1];
    assert_eq!(r.rule, rule(7, vec![Peer::Any], vec![Peer::External]));
    assert_eq!((r.workloads.as_ref(), r.comment.as_ref()), (None, None));
}

#[test]
fn defaults_and_the_rules_alias() {
    let p = toml("").unwrap();
    assert!(p.rules.is_empty());
    assert_eq!(p.internal_subnets, default_internal_subnets());
    let p = toml("internal_subnets = []\n[[rules]]\nid = 1\nfrom = \"any\"\nto = \"any\"\naction = \"allow\"\napps = []\n")
        .unwrap();
    assert!(p.internal_subnets.is_empty());
    assert_eq!(p.rules[0].rule, rule(1, vec![Peer::Any], vec![Peer::Any]));
}

#[test]
fn json_is_the_same_format() {
    let text = r#"{
  "internal_subnets": ["10.0.0.0/8", "192.168.1.0-192.168.1.127", "fd00::/8", "172.16.0.1"],
  "rule": [
    {
      "id": 100,
      "from": ["10.0.0.1", "10.0.1.0/24", "10.0.2.1-10.0.2.9", "external", "any", "API.Example.com",
               "*.example.com", "fd00::1", "fd00::/64", "fd00::1-fd00::9", "db.example.com."],
      "to": ["10.0.0.2", "www.example.com"],
      "ports": ["tcp/80", "tcp/8000-8080", "udp/53", "icmp", "any", "ip/47", "tcp", "udp/any", "TCP/443"],
      "apps": ["http", "Redis"],
      "action": "deny",
      "workloads": ["web", "db"],
      "vhost": true,
      "comment": "every form"
    },
    {"id": 7, "from": "any", "to": "external", "action": "allow"}
  ]
}"#;
    assert_eq!(json(text).unwrap(), toml(EVERY_FORM).unwrap());
    // "rules" is accepted too, and the format is sniffed from the text.
    let text = r#"{"rules": [{"id": 7, "from": "any", "to": "external", "action": "allow"}]}"#;
    let p = PolicyFile::parse(text, "p", Format::detect(Path::new("p"), text)).unwrap();
    assert_eq!(p.rules[0].rule, rule(7, vec![Peer::Any], vec![Peer::External]));
}

/// A policy with one rule whose `field` line is replaced; the rule starts on line 2 and
/// the field is on line 6.
fn one_rule(field: &str) -> String {
    let mut lines = vec![
        "# a policy",
        "[[rule]]",
        "id = 100",
        "from = \"10.0.0.1\"",
        "to = \"10.0.0.2\"",
        "ports = \"any\"",
        "action = \"allow\"",
    ];
    let key = field.split(" =").next().unwrap_or("");
    match lines.iter().position(|l| l.starts_with(&format!("{key} ="))) {
        Some(i) => lines[i] = field,
        None => lines.insert(5, field),
    }
    lines.join("\n")
}

#[test]
fn every_kind_of_mistake_names_file_line_column_and_field() {
    let cases: &[(&str, &str)] = &[
        // ports
        (
            r#"ports = ["tcp/80", "tcp/80-70"]"#,
            r#"policy.toml:6:20: rule 100, field "ports": "tcp/80-70": range low 80 is above high 70"#,
        ),
        (
            r#"ports = "tcp/70000""#,
            r#"policy.toml:6:9: rule 100, field "ports": "tcp/70000": port 70000 is above 65535"#,
        ),
        (
            r#"ports = ["80"]"#,
            r#"policy.toml:6:10: rule 100, field "ports": "80": name the protocol: "tcp/80" or "udp/80""#,
        ),
        (
            r#"ports = ["sctp/80"]"#,
            r#"policy.toml:6:10: rule 100, field "ports": "sctp/80": unknown protocol "sctp": write tcp/PORT, tcp/LOW-HIGH, tcp/any, the same with udp, icmp, ip/PROTOCOL-NUMBER or any"#,
        ),
        (
            r#"ports = ["tcp/http"]"#,
            r#"policy.toml:6:10: rule 100, field "ports": "tcp/http": "http" is not a port number"#,
        ),
        (
            r#"ports = ["icmp/8"]"#,
            r#"policy.toml:6:10: rule 100, field "ports": "icmp/8": ICMP has no ports: write "icmp""#,
        ),
        (
            r#"ports = ["ip/300"]"#,
            r#"policy.toml:6:10: rule 100, field "ports": "ip/300": "300" is not an IP protocol number (0 to 255)"#,
        ),
        (
            "ports = []",
            r#"policy.toml:6:9: rule 100, field "ports": empty list: a rule with no ports never matches (omit the field, or write ["any"], for every port)"#,
        ),
        // peers
        (
            r#"from = ["10.0.0.300"]"#,
            r#"policy.toml:4:9: rule 100, field "from": "10.0.0.300": "10.0.0.300" is not an IPv4 or IPv6 address"#,
        ),
        (
            r#"to = "10.0.1.5/24""#,
            r#"policy.toml:5:6: rule 100, field "to": "10.0.1.5/24": host bits are set: write 10.0.1.0/24 for the block, or 10.0.1.5 alone for the address"#,
        ),
        (
            r#"to = "10.0.0.0/33""#,
            r#"policy.toml:5:6: rule 100, field "to": "10.0.0.0/33": prefix length "33" is not a number from 0 to 32"#,
        ),
        (
            r#"to = "10.0.2.9-10.0.2.1""#,
            r#"policy.toml:5:6: rule 100, field "to": "10.0.2.9-10.0.2.1": range low 10.0.2.9 is above high 10.0.2.1"#,
        ),
        (
            r#"to = "10.0.2.1-fd00::1""#,
            r#"policy.toml:5:6: rule 100, field "to": "10.0.2.1-fd00::1": a range must be IPv4 to IPv4 or IPv6 to IPv6"#,
        ),
        (
            r#"to = "fd00::g""#,
            r#"policy.toml:5:6: rule 100, field "to": "fd00::g": "fd00::g" is not an IPv4 or IPv6 address"#,
        ),
        (
            r#"to = ["any", "api.*.example.com"]"#,
            r#"policy.toml:5:14: rule 100, field "to": "api.*.example.com": a wildcard is allowed only as a leading "*." ("*.example.com")"#,
        ),
        (
            r#"to = "exteral""#,
            r#"policy.toml:5:6: rule 100, field "to": "exteral": not a keyword ("any", "external"), an address or a DNS name with at least two labels ("db.example.com")"#,
        ),
        (
            r#"to = "db_1.exa mple.com""#,
            r#"policy.toml:5:6: rule 100, field "to": "db_1.exa mple.com": label "exa mple" has ' ': names have letters, digits, '-' and '_'"#,
        ),
        (
            "from = []",
            r#"policy.toml:4:8: rule 100, field "from": empty list: a rule with no "from" peers never matches (write ["any"])"#,
        ),
        // ids
        (
            "id = 0",
            r#"policy.toml:3:6: rule 0, field "id": 0 is reserved for the default action: use 1 or more"#,
        ),
        // vhost
        (
            "vhost = true",
            r#"policy.toml:6:9: rule 100, field "vhost": a vhost rule needs a DNS name in "to" (the Host / SNI names the server and is matched against it)"#,
        ),
        // workloads
        (
            "workloads = []",
            r#"policy.toml:6:13: rule 100, field "workloads": empty list: the rule would be carried by no workload (omit the field for every workload)"#,
        ),
        (
            r#"workloads = ["web", "my db"]"#,
            r#"policy.toml:6:21: rule 100, field "workloads": "my db": a name has no spaces or control characters"#,
        ),
        // what serde rejects: unknown keys, wrong types, unknown actions, missing keys
        ("prots = [\"tcp/80\"]", "policy.toml:6:1: rule 100: unknown field `prots`, expected one of `id`, `from`, `to`, `ports`, `apps`, `action`, `workloads`, `vhost`, `comment`"),
        ("id = \"x\"", "policy.toml:3:6: invalid type: string \"x\", expected u32"),
        ("id = -1", "policy.toml:3:6: invalid value: integer `-1`, expected u32"),
        ("action = \"permit\"", "policy.toml:7:10: rule 100: unknown variant `permit`, expected `allow` or `deny`"),
        ("vhost = \"yes\"", "policy.toml:6:9: rule 100: invalid type: string \"yes\", expected a boolean"),
        ("ports = [80]", "policy.toml:6:10: rule 100: invalid type: integer `80`, expected a string"),
        ("to = 5", "policy.toml:5:6: rule 100: invalid type: integer `5`, expected a string or a list of strings"),
    ];
    for (field, expected) in cases {
        let text = one_rule(field);
        assert_eq!(&toml_err(&text), expected, "{text}");
    }
}

#[test]
fn more_mistakes() {
    // Unknown applications list the known ones.
    let e = toml_err(&one_rule(r#"apps = ["http", "gopher"]"#));
    assert!(
        e.starts_with(r#"policy.toml:6:17: rule 100, field "apps": "gopher": unknown application; known applications: http, tls, ssh, dns,"#),
        "{e}"
    );
    assert!(e.ends_with("nats, echo"), "{e}");
    // Duplicate ids name both lines.
    let text = format!(
        "{}\n\n{}",
        one_rule("comment = \"a\""),
        one_rule("comment = \"b\"").replace("# a policy\n", "")
    );
    assert_eq!(
        toml_err(&text),
        r#"policy.toml:11:6: rule 100, field "id": duplicate rule id 100 (first at line 3)"#
    );
    // A missing key, in the rule it is missing from.
    let text = "[[rule]]\nid = 1\nfrom = \"any\"\nto = \"any\"\naction = \"allow\"\n\n[[rule]]\nid = 2\nfrom = \"any\"\naction = \"allow\"\n";
    let e = toml_err(text);
    assert!(e.starts_with("policy.toml:7:1: ") && e.ends_with("missing field `to`"), "{e}");
    // Top-level fields.
    assert_eq!(
        toml_err("internal_subnets = [\"10.0.0.0/8\", \"fd00::1/8\"]\n"),
        r#"policy.toml:1:35: field "internal_subnets": "fd00::1/8": host bits are set: write fd00::/8 for the block, or fd00::1 alone for the address"#
    );
    assert_eq!(
        toml_err("internal_subnets = [\"any\"]\n"),
        r#"policy.toml:1:21: field "internal_subnets": "any": "any" is not an IPv4 or IPv6 address"#
    );
    assert_eq!(
        toml_err("internal-subnets = []\n"),
        "policy.toml:1:1: unknown field `internal-subnets`, expected one of `internal_subnets`, `rule`, `rules`"
    );
    // Not TOML at all.
    let e = toml_err("[[rule]\nid = 1\n");
    assert!(e == "policy.toml:1:8: unclosed array table, expected `]`", "{e}");
}

#[test]
fn json_mistakes_have_lines_too() {
    // Syntax: serde_json's line and column.
    let e = json_err("{\n  \"rule\": [\n    {\"id\": 1,}\n  ]\n}");
    assert!(e.starts_with("policy.json:3:14: "), "{e}");
    // Unknown key, in its rule.
    let e = json_err("{\"rule\": [\n {\"id\": 5, \"from\": \"any\", \"to\": \"any\", \"action\": \"allow\"},\n {\"id\": 6, \"prots\": 1}\n]}");
    assert!(e.starts_with("policy.json:3:18: rule 6: unknown field `prots`"), "{e}");
    // Validation errors point at the offending value.
    let text = "{\"rule\": [\n {\"id\": 5, \"from\": \"any\", \"to\": \"any\", \"action\": \"allow\"},\n {\"id\": 6, \"from\": \"any\", \"to\": \"any\", \"action\": \"allow\",\n  \"ports\": [\"tcp/80\", \"tcp/9-1\"]}\n]}";
    assert_eq!(
        json_err(text),
        r#"policy.json:4:23: rule 6, field "ports": "tcp/9-1": range low 9 is above high 1"#
    );
    let text = "{\"rule\": [\n {\"id\": 5, \"from\": \"any\", \"to\": \"any\", \"action\": \"allow\"},\n {\"id\": 5, \"from\": \"any\", \"to\": \"any\", \"action\": \"allow\"}\n]}";
    assert_eq!(
        json_err(text),
        r#"policy.json:3:9: rule 5, field "id": duplicate rule id 5 (first at line 2)"#
    );
}

#[test]
fn to_toml_round_trips() {
    let p = toml(EVERY_FORM).unwrap();
    let written = p.to_toml();
    assert_eq!(toml(&written).unwrap(), p, "{written}");

    let example = PolicyFile::load(examples().join("three-tier.toml")).unwrap();
    assert_eq!(toml(&example.to_toml()).unwrap(), example);

    // What `enforcer learn` writes: exact hosts, default subnets (not written out).
    let learned = PolicyFile::from_rules(vec![
        Rule {
            ports: vec![PortSpec::Tcp(80, 80), PortSpec::Udp(53, 53), PortSpec::Icmp],
            ..rule(10_000, vec![host4("10.0.0.1")], vec![host4("10.0.0.2")])
        },
        Rule {
            apps: vec![AppId::REDIS],
            ports: vec![PortSpec::Tcp(6379, 6379), PortSpec::Proto(132)],
            ..rule(10_001, vec![net6("fd00::1", "fd00::1")], vec![net6("fd00::2", "fd00::2")])
        },
    ]);
    let written = learned.to_toml();
    assert!(!written.contains("internal_subnets"), "{written}");
    assert!(written.contains("ports = [\"tcp/80\", \"udp/53\", \"icmp\"]"), "{written}");
    assert_eq!(toml(&written).unwrap(), learned);

    // Every kind of value, comments that need escaping, no internal subnets.
    let mut odd = PolicyFile::from_rules(vec![Rule {
        action: RuleAction::Deny,
        vhost: true,
        ports: vec![PortSpec::Any, PortSpec::Tcp(0, 65535), PortSpec::Udp(1, 1023)],
        ..rule(
            u32::MAX,
            vec![net4("0.0.0.0", "255.255.255.255"), net4("10.0.0.3", "10.0.0.4"), Peer::External],
            vec![
                net6("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
                Peer::Fqdn("*.a.example".into()),
            ],
        )
    }]);
    odd.rules[0].comment = Some("quote \" backslash \\ newline \n tab \t bell \u{7} é".into());
    odd.rules[0].workloads = Some(vec!["k8s/default/web-1".into()]);
    odd.internal_subnets = vec![];
    let written = odd.to_toml();
    assert!(
        written.contains("from = [\"0.0.0.0/0\", \"10.0.0.3-10.0.0.4\", \"external\"]"),
        "{written}"
    );
    assert_eq!(toml(&written).unwrap(), odd, "{written}");
}

#[test]
fn rules_for_keeps_order_and_filters_by_workload() {
    let p = toml(
        r#"
[[rule]]
id = 1
from = "any"
to = "any"
action = "allow"
workloads = ["db"]
[[rule]]
id = 2
from = "any"
to = "any"
action = "allow"
[[rule]]
id = 3
from = "any"
to = "any"
action = "deny"
workloads = ["web", "db"]
[[rule]]
id = 4
from = "any"
to = "any"
action = "deny"
workloads = ["gone"]
"#,
    )
    .unwrap();
    let ids = |rules: Vec<Rule>| rules.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(p.rules_for("db")), [1, 2, 3]);
    assert_eq!(ids(p.rules_for("web")), [2, 3]);
    assert_eq!(ids(p.rules_for("other")), [2]);
    assert_eq!(ids(p.common_rules()), [2]);
    assert_eq!(p.unknown_workloads(|n| n == "db" || n == "web"), [(4, "gone")]);
    assert!(p.rules[0].applies_to("db") && !p.rules[0].applies_to("web"));
}

fn tmp(name: &str, text: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn load_reads_by_extension_or_content_and_names_the_file() {
    let rule = r#"{"rule": [{"id": 1, "from": "any", "to": "any", "action": "allow"}]}"#;
    let a = PolicyFile::load(tmp("policy_file_a.json", rule)).unwrap();
    let b = PolicyFile::load(tmp("policy_file_b.policy", rule)).unwrap();
    let c = PolicyFile::load(tmp("policy_file_c", &PolicyFile::to_toml(&a))).unwrap();
    assert_eq!((&a, &b), (&c, &c));
    // JSON in a .toml file is read as TOML, and the error says so by its position.
    let path = tmp("policy_file_d.toml", rule);
    let e = PolicyFile::load(&path).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:1:", path.display())), "{e}");

    let missing = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-policy.toml");
    let e = PolicyFile::load(&missing).unwrap_err();
    assert!(matches!(e, PolicyFileError::Read { .. }));
    assert!(e.to_string().starts_with(&format!("cannot read {}: ", missing.display())), "{e}");
    let e = WorkloadsFile::load(&missing).unwrap_err();
    assert!(e.to_string().starts_with(&format!("cannot read {}: ", missing.display())), "{e}");
}

// ---- workloads files ----

fn workloads(text: &str) -> Result<WorkloadsFile, WorkloadsFileError> {
    WorkloadsFile::parse(text, "workloads.toml", Format::Toml)
}

fn workloads_err(text: &str) -> String {
    match workloads(text) {
        Ok(w) => panic!("accepted: {w:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn workloads_file_valid() {
    let w = workloads(
        r#"
apply = "egress"
unknown = "drop"

[[workload]]
name = "web"
macs = ["02:00:00:00:00:01", "02-00-00-00-00-02"]
ips = ["10.0.0.1", "fd00::1"]
mode = "protect"

[[workload]]
name = "db"
ips = "10.0.0.2"
mode = "protect"
wiring = "tap"

[[workload]]
name = "cache"
macs = "02:00:00:00:00:0A"
"#,
    )
    .unwrap();
    assert_eq!((w.apply, w.unknown), (ApplyDirection::Egress, UnknownTraffic::Drop));
    let web = w.get("web").unwrap();
    assert_eq!(web.macs, [[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]]);
    assert_eq!(
        web.ips,
        ["10.0.0.1".parse::<std::net::IpAddr>().unwrap(), "fd00::1".parse().unwrap()]
    );
    assert_eq!((web.mode, web.wiring), (Mode::Protect, Wiring::Inline));
    let db = w.get("db").unwrap();
    assert_eq!(
        (db.mode, db.wiring, db.macs.len(), db.ips.len()),
        (Mode::Protect, Wiring::Tap, 0, 1)
    );
    let cache = w.get("cache").unwrap();
    assert_eq!((cache.mode, cache.wiring), (Mode::Discover, Wiring::Tap));
    assert_eq!(cache.macs, [[2, 0, 0, 0, 0, 10]]);
    assert!(w.get("nope").is_none());

    let d = workloads("").unwrap();
    assert_eq!(
        (d.apply, d.unknown, d.workloads.len()),
        (ApplyDirection::Ingress, UnknownTraffic::Track, 0)
    );

    let j = WorkloadsFile::parse(
        r#"{"apply": "egress", "unknown": "drop", "workloads": [
            {"name": "web", "macs": ["02:00:00:00:00:01", "02-00-00-00-00-02"], "ips": ["10.0.0.1", "fd00::1"], "mode": "protect"},
            {"name": "db", "ips": "10.0.0.2", "mode": "protect", "wiring": "tap"},
            {"name": "cache", "macs": "02:00:00:00:00:0A"}]}"#,
        "workloads.json",
        Format::Json,
    )
    .unwrap();
    assert_eq!(j, w);
}

#[test]
fn workloads_file_mistakes() {
    let two = |second: &str| {
        format!("[[workload]]\nname = \"web\"\nmacs = [\"02:00:00:00:00:01\"]\nips = [\"10.0.0.1\"]\n\n[[workload]]\n{second}\n")
    };
    let cases: &[(String, &str)] = &[
        (
            two("name = \"web\"\nips = [\"10.0.0.2\"]"),
            r#"workloads.toml:7:8: workload "web", field "name": duplicate workload name (first at line 2)"#,
        ),
        (
            two("name = \"db\"\nmacs = [\"02:00:00:00:00:1\"]"),
            r#"workloads.toml:8:9: workload "db", field "macs": "02:00:00:00:00:1": not a MAC address: write six hex bytes, "02:00:00:00:00:01""#,
        ),
        (
            two("name = \"db\"\nmacs = \"ff:ff:ff:ff:ff:ff\""),
            r#"workloads.toml:8:8: workload "db", field "macs": "ff:ff:ff:ff:ff:ff": a multicast or broadcast MAC is no interface's address"#,
        ),
        (
            two("name = \"db\"\nmode = \"protect\""),
            r#"workloads.toml:7:8: workload "db", field "name": a workload needs at least one address: a MAC in "macs" or an IP in "ips""#,
        ),
        (
            two("name = \"db\"\nips = [\"10.0.0.2\", \"10.0.0.1\"]"),
            r#"workloads.toml:8:20: workload "db", field "ips": "10.0.0.1": also an address of workload "web" (line 4)"#,
        ),
        (
            two("name = \"db\"\nmacs = [\"02:00:00:00:00:01\"]"),
            r#"workloads.toml:8:9: workload "db", field "macs": "02:00:00:00:00:01": also an address of workload "web" (line 3)"#,
        ),
        (
            two("name = \"db\"\nips = [\"10.0.0.2\", \"10.0.0.2\"]"),
            r#"workloads.toml:8:20: workload "db", field "ips": "10.0.0.2": listed twice (first at line 8)"#,
        ),
        (
            two("name = \"db\"\nips = [\"10.0.0.0/24\"]"),
            r#"workloads.toml:8:8: workload "db", field "ips": "10.0.0.0/24": a workload address is one address, not a block or range"#,
        ),
        (
            two("name = \"\"\nips = [\"10.0.0.2\"]"),
            r##"workloads.toml:7:8: workload "#2", field "name": "": empty name"##,
        ),
        (
            two("name = \"db\"\nips = [\"10.0.0.2\"]\nmode = \"enforce\""),
            "workloads.toml:9:8: workload \"db\": unknown variant `enforce`, expected one of `discover`, `monitor`, `protect`",
        ),
        (
            two("name = \"db\"\nips = [\"10.0.0.2\"]\nwiring = \"span\""),
            "workloads.toml:9:10: workload \"db\": unknown variant `span`, expected `tap` or `inline`",
        ),
        (
            two("name = \"db\"\nip = [\"10.0.0.2\"]"),
            "workloads.toml:8:1: workload \"db\": unknown field `ip`, expected one of `name`, `macs`, `ips`, `mode`, `wiring`",
        ),
        (
            format!("apply = \"both\"\n{}", two("name = \"db\"")),
            "workloads.toml:1:9: unknown variant `both`, expected `ingress` or `egress`",
        ),
        (
            format!("unknown = \"allow\"\n{}", two("name = \"db\"")),
            "workloads.toml:1:11: unknown variant `allow`, expected one of `track`, `ignore`, `drop`",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(&workloads_err(text), expected, "{text}");
    }
    // JSON: a semantic error still has its line.
    let e = WorkloadsFile::parse(
        "{\"workload\": [\n  {\"name\": \"a\", \"ips\": \"10.0.0.1\"},\n  {\"name\": \"b\", \"ips\": \"10.0.0.1\"}\n]}",
        "w.json",
        Format::Json,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"w.json:3:24: workload "b", field "ips": "10.0.0.1": also an address of workload "a" (line 2)"#
    );
}

// ---- the shipped examples ----

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies")
}

#[test]
fn examples_parse_and_load_into_a_policy_store() {
    let policy = PolicyFile::load(examples().join("three-tier.toml")).unwrap();
    let workloads = WorkloadsFile::load(examples().join("workloads.toml")).unwrap();
    assert_eq!(policy.rules.len(), 10);
    assert!(policy.unknown_workloads(|n| workloads.get(n).is_some()).is_empty());
    assert_eq!(workloads.workloads.len(), 5);
    let ids = |name| policy.rules_for(name).iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids("web"), [100, 300, 310, 320]);
    assert_eq!(ids("db"), [120, 130, 300, 310, 320, 900]);
    assert_eq!(ids("api-1"), [110, 200, 300, 310, 320]);
    let api_to_payments = &policy.rules[5];
    assert_eq!(api_to_payments.rule.to, [Peer::Fqdn("*.payments.example.com".into())]);
    assert!(api_to_payments.rule.vhost);

    let cfg = policy_config(&workloads, &policy);
    assert_eq!(cfg.settings.internal_subnets, policy.internal_subnets);
    assert_eq!(cfg.workloads[0].rules, policy.rules_for("web"));
    let store = PolicyStore::new();
    store.update(cfg).unwrap();
    let snap = store.load();
    assert_eq!(snap.workloads().len(), 5);
    assert!(snap.is_external(false, addr_from_v4([93, 184, 216, 34])));
    assert!(!snap.is_external(false, addr_from_v4([10, 200, 0, 1])));
}

#[test]
fn policy_rule_is_plain_data() {
    let r = PolicyRule {
        rule: rule(1, vec![Peer::Any], vec![Peer::Any]),
        workloads: None,
        comment: None,
    };
    assert!(r.applies_to("anything"));
}

#[test]
fn the_examples_in_the_docs_parse() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/policy.md"))
            .unwrap();
    let mut checked = (0, 0);
    for (i, block) in doc.split("```").enumerate().filter(|(i, _)| i % 2 == 1) {
        let (format, body) = match block.split_once('\n') {
            Some(("toml", body)) => (Format::Toml, body),
            Some(("json", body)) => (Format::Json, body),
            _ => continue,
        };
        let name = format!("docs/policy.md block {i}");
        if body.contains("[[workload]]") || body.contains("\"name\":") {
            WorkloadsFile::parse(body, &name, format).unwrap_or_else(|e| panic!("{e}\n{body}"));
            checked.1 += 1;
        } else {
            PolicyFile::parse(body, &name, format).unwrap_or_else(|e| panic!("{e}\n{body}"));
            checked.0 += 1;
        }
    }
    assert_eq!(checked, (5, 2));
}

#[test]
fn the_run_example_parses_with_its_policy() {
    use enforcer::config::run_file::RunFile;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/run");
    let run = RunFile::load(dir.join("run.toml")).unwrap();
    assert_eq!(run.workloads.len(), 2);
    let policy = PolicyFile::load(run.policy.as_deref().unwrap()).unwrap();
    assert_eq!(policy.rules.len(), 1);
    assert!(policy.unknown_workloads(|n| run.get(n).is_some()).is_empty());
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/live.md"))
            .unwrap();
    let block = doc.split("```toml\n").nth(1).unwrap().split("```").next().unwrap();
    let from_doc = RunFile::parse(block, "docs/live.md", Format::Toml).unwrap();
    assert_eq!(from_doc.workloads.len(), 2);
}
