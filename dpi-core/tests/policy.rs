//! Policy in the packet path: modes, rules, deny at creation, mid-session deny with
//! resets, application rules, policy swaps, unknown traffic, apply direction, reports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dpi_core::app::{AppId, AppState};
use dpi_core::endpoint::{
    ApplyDirection, Mode, PolicyConfig, PolicySettings, PolicyStore, UnknownTraffic, Wiring,
    WorkloadKey, WorkloadPolicy, WorkloadSpec,
};
use dpi_core::policy::{IpNet, Peer, PolicyAction, PortSpec, Rule, RuleAction};
use dpi_core::{Action, Config, Ctx, Dir, DropReason, Event, HookCx, Inspector, SessionView, Time};
use pcapgen::{Host, IpPath, Side, SynOptions, TcpConversation};
use std::sync::Arc;

const C: Host = Host::v4(1, [10, 0, 0, 1]);
const S: Host = Host::v4(2, [10, 0, 0, 2]);
const S2: Host = Host::v4(3, [10, 0, 0, 3]);

fn ip(h: &Host) -> Peer {
    let (v6, a) = dpi_core::endpoint::store::split(h.ip);
    Peer::Net(IpNet::host(v6, a))
}

fn rule(id: u32, from: Peer, to: Peer, ports: Vec<PortSpec>, action: RuleAction) -> Rule {
    Rule { id, from: vec![from], to: vec![to], ports, apps: vec![], action, vhost: false }
}

fn workload(name: &str, h: &Host, mode: Mode, wiring: Wiring, rules: Vec<Rule>) -> WorkloadPolicy {
    WorkloadPolicy {
        spec: WorkloadSpec { name: name.into(), macs: vec![h.mac], ips: vec![h.ip], mode, wiring },
        rules,
    }
}

/// A full TCP connection C:port → server:80 with a request and response.
fn http(server: Host, cport: u16) -> Vec<Vec<u8>> {
    let mut c = TcpConversation::new(IpPath::new(C, server), cport, 80, 1000, 5000);
    let mut f = c.handshake(&SynOptions::NONE, &SynOptions::NONE);
    f.push(c.data(Side::Client, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    f.push(c.data(Side::Server, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    f.push(c.data(Side::Client, b"GET /again HTTP/1.1\r\nHost: a\r\n\r\n"));
    f.extend(c.close(Side::Client));
    f
}

struct Run {
    actions: Vec<Action>,
    events: Vec<Event>,
    transmits: Vec<Vec<u8>>,
    ctx: Ctx,
}

fn run_with(ctx: Ctx, frames: &[Vec<u8>], between: impl Fn(usize)) -> Run {
    let mut r = Run { actions: vec![], events: vec![], transmits: vec![], ctx };
    let mut t = 1_767_225_600_000_000u64;
    for (i, f) in frames.iter().enumerate() {
        between(i);
        t += 1000;
        r.ctx.handle_timeout(Time::from_micros(t));
        r.actions.push(r.ctx.recv_packet(&mut f.clone()));
        while let Some(e) = r.ctx.poll_event() {
            r.events.push(e);
        }
        while let Some(x) = r.ctx.poll_transmit() {
            r.transmits.push(x.frame.to_vec());
        }
    }
    while r.ctx.flush() > 0 {
        while let Some(e) = r.ctx.poll_event() {
            r.events.push(e);
        }
    }
    while let Some(e) = r.ctx.poll_event() {
        r.events.push(e);
    }
    r
}

fn ctx_with(store: &Arc<PolicyStore>) -> Ctx {
    let mut ctx = Ctx::new(Config::default());
    ctx.set_policy_store(store.clone());
    ctx
}

fn store(cfg: PolicyConfig) -> Arc<PolicyStore> {
    let s = PolicyStore::new();
    s.update(cfg).unwrap();
    s
}

fn violations(r: &Run) -> Vec<dpi_core::event::ViolationRecord> {
    r.events
        .iter()
        .filter_map(|e| if let Event::Violation(v) = e { Some(*v) } else { None })
        .collect()
}

fn reports(r: &Run) -> Vec<dpi_core::event::ConnectionReport> {
    r.events
        .iter()
        .filter_map(|e| if let Event::Connection(c) = e { Some(*c) } else { None })
        .collect()
}

fn ends(r: &Run) -> Vec<dpi_core::SessionRecord> {
    r.events
        .iter()
        .filter_map(|e| if let Event::SessionEnd(s) = e { Some(*s) } else { None })
        .collect()
}

#[test]
fn discover_learns_everything_and_reports_it() {
    let st = store(PolicyConfig {
        workloads: vec![workload("web", &S, Mode::Discover, Wiring::Tap, vec![])],
        ..Default::default()
    });
    let r = run_with(ctx_with(&st), &http(S, 40000), |_| {});
    assert!(r.actions.iter().all(|a| *a == Action::Forward));
    assert!(violations(&r).is_empty());
    let reps = reports(&r);
    assert_eq!(reps.len(), 1, "{reps:#?}");
    let c = reps[0];
    assert_eq!(c.action, PolicyAction::Learn);
    assert_eq!((c.sessions, c.violations, c.port, c.proto), (1, 0, 80, 6));
    assert!(c.ingress);
    assert_eq!(c.workload, WorkloadKey::Registered(0));
    assert_eq!(st.workload_name(0).as_deref(), Some("web"));
    let e = ends(&r);
    let p = e[0].policy.unwrap();
    assert_eq!((p.action, p.rule_id, p.blocked), (PolicyAction::Learn, 0, false));
    assert_eq!(c.bytes, e[0].to_server.bytes + e[0].to_client.bytes);
}

#[test]
fn protect_denies_at_creation_once_per_flow() {
    let st = store(PolicyConfig {
        workloads: vec![workload("web", &S, Mode::Protect, Wiring::Inline, vec![])],
        ..Default::default()
    });
    let mut frames = http(S, 40000);
    // A retransmitted SYN.
    frames.insert(1, frames[0].clone());
    let r = run_with(ctx_with(&st), &frames, |_| {});
    assert!(
        r.actions.iter().all(|a| matches!(a, Action::Drop(DropReason::Policy))),
        "{:?}",
        r.actions
    );
    assert_eq!(r.ctx.counters().flows_denied, 1);
    let v = violations(&r);
    assert_eq!(v.len(), 1, "one violation per flow");
    assert_eq!((v[0].action, v[0].rule_id, v[0].session_id), (PolicyAction::Deny, 0, None));
    assert!(ends(&r).is_empty(), "no session was created");
    let reps = reports(&r);
    assert_eq!(reps.iter().map(|c| c.violations).sum::<u32>(), 1);
    // Handshake packets get no resets; the data packets of the denied flow do.
    assert!(r.ctx.counters().drops(DropReason::Policy) as usize == frames.len());
}

#[test]
fn protect_allows_what_a_rule_allows_and_nothing_else() {
    let rules = vec![rule(100, ip(&C), ip(&S), vec![PortSpec::Tcp(80, 80)], RuleAction::Allow)];
    let st = store(PolicyConfig {
        workloads: vec![
            workload("web", &S, Mode::Protect, Wiring::Inline, rules.clone()),
            workload("web2", &S2, Mode::Protect, Wiring::Inline, rules),
        ],
        ..Default::default()
    });
    let mut frames = http(S, 40000);
    let denied = http(S2, 40001);
    frames.extend(denied.iter().cloned());
    let r = run_with(ctx_with(&st), &frames, |_| {});
    let n = frames.len() - denied.len();
    assert!(r.actions[..n].iter().all(|a| *a == Action::Forward));
    assert!(r.actions[n..].iter().all(|a| matches!(a, Action::Drop(_))));
    let e = ends(&r);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].policy.unwrap().action, PolicyAction::Allow);
    assert_eq!(e[0].policy.unwrap().rule_id, 100);
    assert_eq!(violations(&r).len(), 1);
    assert_eq!(violations(&r)[0].server.ip(), S2.ip);
}

#[test]
fn monitor_reports_but_never_drops() {
    let st = store(PolicyConfig {
        workloads: vec![workload("web", &S, Mode::Monitor, Wiring::Tap, vec![])],
        ..Default::default()
    });
    let r = run_with(ctx_with(&st), &http(S, 40000), |_| {});
    assert!(r.actions.iter().all(|a| *a == Action::Forward));
    let v = violations(&r);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].action, PolicyAction::Violate);
    assert!(v[0].session_id.is_some());
}

#[test]
fn protect_on_a_tap_cannot_drop_and_reports_violations() {
    let st = store(PolicyConfig {
        workloads: vec![workload("web", &S, Mode::Protect, Wiring::Tap, vec![])],
        ..Default::default()
    });
    let r = run_with(ctx_with(&st), &http(S, 40000), |_| {});
    assert!(r.actions.iter().all(|a| *a == Action::Forward));
    assert_eq!(violations(&r)[0].action, PolicyAction::Violate);
}

/// An inspector that names the application on the first client payload.
struct SetApp(AppState);

impl Inspector for SetApp {
    fn on_payload(
        &mut self,
        _: &SessionView<'_>,
        dir: Dir,
        data: &[u8],
        cx: &mut HookCx<'_>,
    ) -> usize {
        if dir == Dir::ToServer {
            cx.set_app(self.0);
        }
        data.len()
    }
}

fn app_rules() -> Vec<Rule> {
    let mut deny_http = rule(10, Peer::Any, ip(&S), vec![PortSpec::Tcp(80, 80)], RuleAction::Deny);
    deny_http.apps = vec![AppId::HTTP];
    vec![deny_http, rule(20, Peer::Any, Peer::Any, vec![PortSpec::Tcp(80, 80)], RuleAction::Allow)]
}

#[test]
fn application_rule_blocks_mid_session_with_resets() {
    let st = store(PolicyConfig {
        workloads: vec![workload("web", &S, Mode::Protect, Wiring::Inline, app_rules())],
        ..Default::default()
    });
    let mut ctx =
        Ctx::with_inspector(Config::default(), Box::new(SetApp(AppState::Known(AppId::HTTP))));
    ctx.set_policy_store(st);
    let frames = http(S, 40000);
    let r = run_with(ctx, &frames, |_| {});
    // Handshake allowed (app pending), the request is the deciding packet.
    assert_eq!(&r.actions[..3], &[Action::Forward; 3]);
    assert_eq!(r.actions[3], Action::Drop(DropReason::Policy));
    assert!(r.actions[4..].iter().all(|a| *a == Action::Drop(DropReason::Blocked)));
    assert_eq!(r.ctx.counters().sessions_blocked, 1);
    let e = ends(&r);
    let p = e[0].policy.unwrap();
    assert_eq!((p.action, p.rule_id, p.blocked), (PolicyAction::Deny, 10, true));
    assert_eq!(e[0].app, AppState::Known(AppId::HTTP));
    assert_eq!(violations(&r).len(), 1);
    assert_eq!(r.ctx.counters().resets_sent, 2);
    assert_eq!(r.transmits.len(), 2);
}

#[test]
fn application_rule_pending_then_other_app_falls_through() {
    let st = store(PolicyConfig {
        workloads: vec![workload("web", &S, Mode::Protect, Wiring::Inline, app_rules())],
        ..Default::default()
    });
    for app in [AppState::Known(AppId::REDIS), AppState::Unidentified] {
        let mut ctx = Ctx::with_inspector(Config::default(), Box::new(SetApp(app)));
        ctx.set_policy_store(st.clone());
        let r = run_with(ctx, &http(S, 40000), |_| {});
        assert!(r.actions.iter().all(|a| *a == Action::Forward), "{app:?}");
        let p = ends(&r)[0].policy.unwrap();
        assert_eq!((p.action, p.rule_id), (PolicyAction::Allow, 20), "{app:?}");
    }
}

#[test]
fn policy_swap_mid_session_re_evaluates_and_blocks() {
    let allow = vec![rule(100, ip(&C), ip(&S), vec![PortSpec::Tcp(80, 80)], RuleAction::Allow)];
    let cfg = |rules| PolicyConfig {
        workloads: vec![workload("web", &S, Mode::Protect, Wiring::Inline, rules)],
        ..Default::default()
    };
    let st = store(cfg(allow));
    let frames = http(S, 40000);
    let swap_at = 4;
    let st2 = st.clone();
    let r = run_with(ctx_with(&st), &frames, move |i| {
        if i == swap_at {
            st2.update(cfg(vec![])).unwrap();
        }
    });
    assert!(r.actions[..swap_at].iter().all(|a| *a == Action::Forward));
    assert_eq!(r.actions[swap_at], Action::Drop(DropReason::Policy));
    assert!(r.ctx.counters().policy_reevaluations >= 1);
    let p = ends(&r)[0].policy.unwrap();
    assert_eq!((p.action, p.rule_id, p.blocked), (PolicyAction::Deny, 0, true));
}

#[test]
fn unchanged_workloads_are_not_re_evaluated_by_an_unrelated_update() {
    let allow = vec![rule(100, ip(&C), ip(&S), vec![PortSpec::Tcp(80, 80)], RuleAction::Allow)];
    let mut cfg = PolicyConfig {
        workloads: vec![workload("web", &S, Mode::Protect, Wiring::Inline, allow)],
        ..Default::default()
    };
    let st = store(cfg.clone());
    let baseline = run_with(ctx_with(&st), &http(S, 40000), |_| {});
    cfg.workloads.push(workload("other", &S2, Mode::Monitor, Wiring::Tap, vec![]));
    let st2 = st.clone();
    let r = run_with(ctx_with(&st), &http(S, 40000), move |i| {
        if i == 4 {
            st2.update(cfg.clone()).unwrap();
        }
    });
    assert!(r.actions.iter().all(|a| *a == Action::Forward));
    // Only the application becoming known re-evaluates, as without the update.
    assert_eq!(r.ctx.counters().policy_reevaluations, baseline.ctx.counters().policy_reevaluations);
}

#[test]
fn ipv6_is_policed_like_ipv4() {
    let c6 = Host::v6(1, "fd00::1".parse().unwrap());
    let s6 = Host::v6(2, "fd00::2".parse().unwrap());
    let rules = vec![rule(7, ip(&c6), ip(&s6), vec![PortSpec::Tcp(443, 443)], RuleAction::Allow)];
    let st = store(PolicyConfig {
        workloads: vec![workload("web6", &s6, Mode::Protect, Wiring::Inline, rules)],
        ..Default::default()
    });
    let mk = |port| {
        let mut c = TcpConversation::new(IpPath::new(c6, s6), 40000, port, 1, 2);
        let mut f = c.handshake(&SynOptions::NONE, &SynOptions::NONE);
        f.push(c.data(Side::Client, b"hello"));
        f
    };
    let r = run_with(ctx_with(&st), &mk(443), |_| {});
    assert!(r.actions.iter().all(|a| *a == Action::Forward));
    let r = run_with(ctx_with(&st), &mk(8443), |_| {});
    assert!(r.actions.iter().all(|a| matches!(a, Action::Drop(_))));
    assert_eq!(violations(&r).len(), 1);
}

#[test]
fn unknown_traffic_track_ignore_drop() {
    for (unknown, expect) in [
        (UnknownTraffic::Track, Action::Forward),
        (UnknownTraffic::Ignore, Action::Forward),
        (UnknownTraffic::Drop, Action::Drop(DropReason::UnknownWorkload)),
    ] {
        let st = store(PolicyConfig {
            settings: PolicySettings { unknown, ..Default::default() },
            workloads: vec![workload(
                "other",
                &Host::v4(9, [10, 9, 9, 9]),
                Mode::Protect,
                Wiring::Inline,
                vec![],
            )],
            ..Default::default()
        });
        let r = run_with(ctx_with(&st), &http(S, 40000), |_| {});
        assert!(r.actions.iter().all(|a| *a == expect), "{unknown:?}: {:?}", r.actions);
        assert!(violations(&r).is_empty());
        let sessions = ends(&r).len();
        assert_eq!(sessions, usize::from(unknown == UnknownTraffic::Track), "{unknown:?}");
    }
}

#[test]
fn apply_direction_picks_the_deciding_workload() {
    // Client workload in Protect with no rules, server workload in Discover.
    for (apply, expect_action, ingress) in [
        (ApplyDirection::Ingress, PolicyAction::Learn, true),
        (ApplyDirection::Egress, PolicyAction::Deny, false),
    ] {
        let st = store(PolicyConfig {
            settings: PolicySettings { apply, ..Default::default() },
            workloads: vec![
                workload("client", &C, Mode::Protect, Wiring::Inline, vec![]),
                workload("server", &S, Mode::Discover, Wiring::Tap, vec![]),
            ],
            ..Default::default()
        });
        let r = run_with(ctx_with(&st), &http(S, 40000), |_| {});
        let reps = reports(&r);
        assert_eq!(reps[0].action, expect_action, "{apply:?}");
        assert_eq!(reps[0].ingress, ingress, "{apply:?}");
    }
}

#[test]
fn implicit_workloads_police_every_host() {
    let st = store(PolicyConfig {
        settings: PolicySettings {
            implicit_workloads: Some((Mode::Monitor, Wiring::Inline)),
            ..Default::default()
        },
        ..Default::default()
    });
    let r = run_with(ctx_with(&st), &http(S, 40000), |_| {});
    let v = violations(&r);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].workload, WorkloadKey::Implicit(S.ip));
}

#[test]
fn external_and_learned_rules() {
    // A learned rule (id 10001) in Discover reports LEARN; an explicit one reports ALLOW.
    let out = Host::v4(7, [8, 8, 8, 8]);
    let rules = vec![
        rule(10001, ip(&C), ip(&S), vec![PortSpec::Tcp(80, 80)], RuleAction::Allow),
        rule(5, ip(&C), Peer::External, vec![PortSpec::Any], RuleAction::Allow),
    ];
    let st = store(PolicyConfig {
        workloads: vec![
            workload("server", &S, Mode::Discover, Wiring::Tap, rules.clone()),
            workload("client", &C, Mode::Protect, Wiring::Inline, rules),
        ],
        ..Default::default()
    });
    let mut frames = http(S, 40000);
    frames.extend(http(out, 40001));
    let r = run_with(ctx_with(&st), &frames, |_| {});
    assert!(r.actions.iter().all(|a| *a == Action::Forward));
    let e = ends(&r);
    let by_server = |h: &Host| e.iter().find(|x| x.server.ip() == h.ip).unwrap().policy.unwrap();
    assert_eq!((by_server(&S).action, by_server(&S).rule_id), (PolicyAction::Learn, 10001));
    assert_eq!((by_server(&out).action, by_server(&out).rule_id), (PolicyAction::Allow, 5));
    assert!(!by_server(&out).ingress, "the client's policy decided toward the external server");
}

/// A DNS response for `name` with one A record.
fn dns_answer(id: u16, name: &str, addr: [u8; 4]) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
    m.extend_from_slice(&addr);
    m
}

fn fqdn_rule(id: u32, name: &str, port: u16) -> Rule {
    rule(id, ip(&C), Peer::Fqdn(name.into()), vec![PortSpec::Tcp(port, port)], RuleAction::Allow)
}

fn client_workload(rules: Vec<Rule>) -> PolicyConfig {
    PolicyConfig {
        settings: PolicySettings { apply: ApplyDirection::Egress, ..Default::default() },
        workloads: vec![workload("client", &C, Mode::Protect, Wiring::Inline, rules)],
        ..Default::default()
    }
}

#[test]
fn fqdn_rules_match_addresses_learned_from_dns_answers() {
    let dns_server = Host::v4(53, [10, 0, 0, 53]);
    let answer =
        IpPath::new(dns_server, C).udp(53, 41000, &dns_answer(7, "api.example.com", [10, 0, 0, 2]));
    for (pattern, with_dns, allowed) in [
        ("api.example.com", true, true),
        ("*.example.com", true, true),
        ("api.example.com", false, false),
        ("web.example.com", true, false),
    ] {
        let st = store(client_workload(vec![
            rule(1, ip(&C), ip(&dns_server), vec![PortSpec::Udp(53, 53)], RuleAction::Allow),
            fqdn_rule(5, pattern, 80),
        ]));
        let mut frames = vec![];
        if with_dns {
            frames.push(answer.clone());
        }
        frames.extend(http(S, 40000));
        let r = run_with(ctx_with(&st), &frames, |_| {});
        let web = ends(&r).into_iter().find(|e| e.server.port() == 80);
        if allowed {
            let p = web.expect("session").policy.unwrap();
            assert_eq!((p.action, p.rule_id), (PolicyAction::Allow, 5), "{pattern}");
        } else {
            assert!(web.is_none(), "{pattern} with_dns={with_dns}: denied at creation");
            assert_eq!(violations(&r).len(), 1, "{pattern}");
        }
    }
}

#[test]
fn fqdn_names_from_the_control_plane() {
    let mut cfg = client_workload(vec![fqdn_rule(5, "api.example.com", 80)]);
    cfg.names = vec![("API.example.com".into(), vec![S.ip])];
    let st = store(cfg);
    let r = run_with(ctx_with(&st), &http(S, 40000), |_| {});
    assert!(r.actions.iter().all(|a| *a == Action::Forward));
    assert_eq!(ends(&r)[0].policy.unwrap().rule_id, 5);
}

/// An inspector that reports the virtual host on the first client payload.
struct SetVhost(&'static str);

impl Inspector for SetVhost {
    fn on_payload(
        &mut self,
        _: &SessionView<'_>,
        dir: Dir,
        data: &[u8],
        cx: &mut HookCx<'_>,
    ) -> usize {
        if dir == Dir::ToServer {
            cx.set_vhost(self.0);
        }
        data.len()
    }
}

#[test]
fn vhost_rules_wait_for_the_host_then_decide() {
    let mut vh = fqdn_rule(9, "*.example.com", 80);
    vh.vhost = true;
    let mut cfg = client_workload(vec![vh]);
    cfg.names = vec![("www.example.com".into(), vec![S.ip])];
    let st = store(cfg);
    for (host, allowed) in [("WWW.Example.com", true), ("evil.test", false)] {
        let mut ctx = Ctx::with_inspector(Config::default(), Box::new(SetVhost(host)));
        ctx.set_policy_store(st.clone());
        let r = run_with(ctx, &http(S, 40000), |_| {});
        let p = ends(&r)[0].policy.unwrap();
        if allowed {
            assert!(r.actions.iter().all(|a| *a == Action::Forward), "{host}");
            assert_eq!((p.action, p.rule_id), (PolicyAction::Allow, 9));
        } else {
            // Handshake allowed while the vhost is unknown; the request reveals it.
            assert_eq!(&r.actions[..3], &[Action::Forward; 3]);
            assert_eq!(r.actions[3], Action::Drop(DropReason::Policy));
            assert_eq!((p.action, p.blocked), (PolicyAction::Deny, true));
            assert_eq!(r.transmits.len(), 2, "reset both ways");
        }
    }
}

/// Tag a frame as the shared inline port sees it: the workload's MAC replaced by its
/// "NeuV" tag, on the source side (leaving the workload) or the destination side
/// (arriving at it).
fn tagged(frame: &[u8], idx: u8, source: bool) -> Vec<u8> {
    let mut f = frame.to_vec();
    let at = if source { 6 } else { 0 };
    f[at..at + 6].copy_from_slice(&[0x4e, 0x65, 0x75, 0x56, 0, idx]);
    f
}

#[test]
fn two_inline_workloads_each_frame_passes_twice_and_each_pass_is_its_own_session() {
    let tags = |h: &Host, idx: u8| vec![h.mac, [0x4e, 0x65, 0x75, 0x56, 0, idx]];
    let mk = |rules: Vec<Rule>| {
        let mut c1 = workload("c1", &C, Mode::Protect, Wiring::Inline, vec![]);
        c1.spec.macs = tags(&C, 1);
        let mut c2 = workload("c2", &S, Mode::Protect, Wiring::Inline, rules);
        c2.spec.macs = tags(&S, 2);
        store(PolicyConfig { workloads: vec![c1, c2], ..Default::default() })
    };
    // Every frame twice: as it leaves its sender (source tagged) and as it reaches its
    // receiver (destination tagged).
    let conversation = http(S, 40000);
    let mut frames = vec![];
    for f in &conversation {
        let from_client = f[6..12] == C.mac;
        let (sender, receiver) = if from_client { (1, 2) } else { (2, 1) };
        frames.push(tagged(f, sender, true));
        frames.push(tagged(f, receiver, false));
    }
    let allow = vec![rule(80, ip(&C), ip(&S), vec![PortSpec::Tcp(80, 80)], RuleAction::Allow)];
    let r = run_with(ctx_with(&mk(allow)), &frames, |_| {});
    assert!(r.actions.iter().all(|a| *a == Action::Forward), "{:?}", r.actions);
    let e = ends(&r);
    assert_eq!(e.len(), 2, "one session per pass: {e:#?}");
    for s in &e {
        assert_eq!(s.to_server.pkts + s.to_client.pkts, conversation.len() as u64);
        assert_eq!(s.tcp.unwrap().retransmissions, 0, "the second pass is no retransmission");
    }
    // c2's pass (the server's, ingress) decides by c2's rule; c1's pass stays open.
    let decided: Vec<_> = e.iter().filter_map(|s| s.policy).collect();
    assert_eq!(decided.len(), 1);
    assert_eq!(
        (decided[0].action, decided[0].rule_id, decided[0].ingress),
        (PolicyAction::Allow, 80, true)
    );
    assert_eq!(decided[0].workload, WorkloadKey::Registered(1));

    // Without the rule, c2's pass denies the first SYN (c1's pass let it out).
    let r = run_with(ctx_with(&mk(vec![])), &frames[..2], |_| {});
    assert_eq!(r.actions, vec![Action::Forward, Action::Drop(DropReason::Policy)]);
    assert_eq!(violations(&r).len(), 1);
}

#[test]
fn ipv6_neighbour_discovery_is_never_policed() {
    // A protected workload with no rule: echo is denied, but neighbour solicitation and
    // advertisement (IPv6's ARP) pass, or the link itself would break.
    let c6 = Host::v6(1, "fd00::1".parse().unwrap());
    let s6 = Host::v6(2, "fd00::2".parse().unwrap());
    let st = store(PolicyConfig {
        workloads: vec![workload("web6", &s6, Mode::Protect, Wiring::Inline, vec![])],
        ..Default::default()
    });
    let mut to_s = IpPath::new(c6, s6);
    let mut to_c = to_s.reversed();
    let target = [0u8; 20];
    let frames = vec![
        to_s.icmp(135, 0, [0; 4], &target), // neighbour solicitation
        to_c.icmp(136, 0, [0x60, 0, 0, 0], &target), // neighbour advertisement
        to_s.icmp(135, 0, [0; 4], &target),
        to_s.echo_request(7, 1, b"ping"),
    ];
    let r = run_with(ctx_with(&st), &frames, |_| {});
    assert_eq!(&r.actions[..3], &[Action::Forward; 3]);
    assert_eq!(r.actions[3], Action::Drop(DropReason::Policy));
    assert_eq!(violations(&r).len(), 1, "only the echo");
    assert!(r.ctx.counters().icmp6_link_control >= 1);
}
