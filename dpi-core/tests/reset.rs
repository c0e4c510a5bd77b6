//! TCP resets end to end: a session denied after creation (an application rule decided on
//! the first request) gets its triggering packet dropped and one reset queued toward each
//! end. Each reset is read back with etherparse (an independent parser) and checked
//! against the conversation: addressing as if sent by the other end, VLAN tags kept, RST
//! with the sequence number the addressee expects next, valid checksums, minimal size.
//!
//! The frame layout itself (QinQ priority bits, PPPoE, IP options and extension headers
//! not copied, ACK numbers of SYN/FIN triggers) is unit-tested in
//! `dpi-core/src/enforce/reset.rs`, whose builder is crate-private.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dpi_core::app::{AppId, AppState};
use dpi_core::endpoint::{Mode, PolicyConfig, PolicyStore, Wiring, WorkloadPolicy, WorkloadSpec};
use dpi_core::policy::{IpNet, Peer, PortSpec, Rule, RuleAction};
use dpi_core::{Action, Config, Ctx, Dir, DropReason, HookCx, Inspector, SessionView, Time};
use etherparse::{LinkExtSlice, LinkSlice, NetSlice, SlicedPacket, TransportSlice};
use pcapgen::{Host, IpPath, Side, SynOptions, TcpConversation, VlanTags};
use std::net::IpAddr;

/// Names the application HTTP on the first client payload.
struct Http;

impl Inspector for Http {
    fn on_payload(
        &mut self,
        _: &SessionView<'_>,
        dir: Dir,
        data: &[u8],
        cx: &mut HookCx<'_>,
    ) -> usize {
        if dir == Dir::ToServer {
            cx.set_app(AppState::Known(AppId::HTTP));
        }
        data.len()
    }
}

/// The server workload, in Protect mode inline, denies HTTP (and allows the port, so
/// the session is created and the deny comes later, on the request).
fn ctx_protecting(server: &Host) -> Ctx {
    let (v6, a) = dpi_core::endpoint::store::split(server.ip);
    let rule = |id, apps: Vec<AppId>, action| Rule {
        id,
        from: vec![Peer::Any],
        to: vec![Peer::Net(IpNet::host(v6, a))],
        ports: vec![PortSpec::Tcp(80, 80)],
        apps,
        action,
        vhost: false,
    };
    let spec = WorkloadSpec {
        name: "web".into(),
        macs: vec![server.mac],
        ips: vec![server.ip],
        mode: Mode::Protect,
        wiring: Wiring::Inline,
    };
    let rules =
        vec![rule(10, vec![AppId::HTTP], RuleAction::Deny), rule(20, vec![], RuleAction::Allow)];
    let store = PolicyStore::new();
    store
        .update(PolicyConfig {
            workloads: vec![WorkloadPolicy { spec, rules }],
            ..Default::default()
        })
        .unwrap();
    let mut ctx = Ctx::with_inspector(Config::default(), Box::new(Http));
    ctx.set_policy_store(store);
    ctx
}

/// A reset as read back.
#[derive(Debug, PartialEq, Eq)]
struct Reset {
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    vlans: Vec<u16>,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: Option<u32>,
}

fn read_reset(frame: &[u8]) -> Reset {
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(LinkSlice::Ethernet2(eth)) = p.link else { panic!("{:?}", p.link) };
    let vlans: Vec<u16> = p
        .link_exts
        .iter()
        .map(|x| match x {
            LinkExtSlice::Vlan(v) => v.vlan_identifier().value(),
            other => panic!("{other:?}"),
        })
        .collect();
    let Some(TransportSlice::Tcp(tcp)) = p.transport else { panic!("not TCP") };
    assert!(tcp.rst() && !tcp.syn() && !tcp.fin() && !tcp.psh());
    assert_eq!((tcp.window_size(), tcp.data_offset()), (0, 5));
    assert!(tcp.payload().is_empty());
    let (src, dst): (IpAddr, IpAddr) = match p.net.unwrap() {
        NetSlice::Ipv4(ip) => {
            let h = ip.header();
            assert_eq!((h.ihl(), h.ttl(), h.total_len()), (5, 255, 40));
            assert!(h.dont_fragment());
            assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
            let want = tcp.calc_checksum_ipv4(h.source(), h.destination()).unwrap();
            assert_eq!(tcp.checksum(), want, "TCP checksum");
            assert_eq!(frame.len(), 14 + 4 * vlans.len() + 40);
            (h.source_addr().into(), h.destination_addr().into())
        }
        NetSlice::Ipv6(ip) => {
            let h = ip.header();
            assert_eq!((h.hop_limit(), h.payload_length()), (255, 20));
            let want = tcp.calc_checksum_ipv6(h.source(), h.destination()).unwrap();
            assert_eq!(tcp.checksum(), want, "TCP checksum");
            assert_eq!(frame.len(), 14 + 4 * vlans.len() + 60);
            (h.source_addr().into(), h.destination_addr().into())
        }
        NetSlice::Arp(_) => panic!("ARP"),
    };
    Reset {
        dst_mac: eth.destination(),
        src_mac: eth.source(),
        vlans,
        src,
        dst,
        sport: tcp.source_port(),
        dport: tcp.destination_port(),
        seq: tcp.sequence_number(),
        ack: tcp.ack().then(|| tcp.acknowledgment_number()),
    }
}

#[test]
fn mid_session_deny_resets_both_ends() {
    let c4 = Host::v4(1, [10, 0, 0, 1]);
    let s4 = Host::v4(2, [10, 0, 0, 2]);
    let c6 = Host::v6(1, "2001:db8::1".parse().unwrap());
    let s6 = Host::v6(2, "2001:db8::2".parse().unwrap());
    let cases = [
        (c4, s4, VlanTags::None, vec![]),
        (c4, s4, VlanTags::Double { outer: 100, inner: 200 }, vec![100, 200]),
        (c6, s6, VlanTags::Single(42), vec![42]),
    ];
    for (c, s, vlan, vlans) in cases {
        let what = format!("{} {vlan:?}", c.ip);
        let path = IpPath::new(c, s).with_vlan(vlan);
        let mut conv = TcpConversation::new(path, 40000, 80, 1000, 5000);
        let mut frames = conv.handshake(&SynOptions::linux(1460), &SynOptions::linux(1460));
        let request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        // What each end expects next when the request is sent (and dropped).
        let (server_expects, client_expects) =
            (conv.next_seq(Side::Client), conv.next_ack(Side::Client));
        frames.push(conv.data(Side::Client, request));

        let mut ctx = ctx_protecting(&s);
        let mut t = 1_767_225_600_000_000u64;
        let mut actions = vec![];
        let mut resets = vec![];
        for f in &frames {
            t += 1000;
            ctx.handle_timeout(Time::from_micros(t));
            actions.push(ctx.recv_packet(&mut f.clone()));
            while ctx.poll_event().is_some() {}
            while let Some(x) = ctx.poll_transmit() {
                resets.push(read_reset(&x.frame));
            }
        }
        assert_eq!(&actions[..3], &[Action::Forward; 3], "{what}");
        assert_eq!(actions[3], Action::Drop(DropReason::Policy), "{what}");
        assert_eq!(ctx.counters().resets_sent, 2, "{what}");
        assert_eq!(resets.len(), 2, "{what}");

        let to_server = Reset {
            dst_mac: s.mac,
            src_mac: c.mac,
            vlans: vlans.clone(),
            src: c.ip,
            dst: s.ip,
            sport: 40000,
            dport: 80,
            seq: server_expects,
            ack: Some(client_expects),
        };
        let to_client = Reset {
            dst_mac: c.mac,
            src_mac: s.mac,
            vlans,
            src: s.ip,
            dst: c.ip,
            sport: 80,
            dport: 40000,
            seq: client_expects,
            ack: Some(server_expects + request.len() as u32),
        };
        for want in [to_server, to_client] {
            assert!(resets.contains(&want), "{what}: {want:#?} not in {resets:#?}");
        }
    }
}
