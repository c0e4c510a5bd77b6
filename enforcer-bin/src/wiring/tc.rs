//! The tc backend: NeuVector's `u32` + `pedit` + `mirred` filters
//! (`reference/neuvector-dp.md` §1.3), for kernels that have `act_pedit` (these CI
//! machines do not: `Wiring::open` picks nftables there, and the commands
//! below are tested only as text).
//!
//! `ingress` qdiscs on `vin<i>`, `vex<i>` and `vbr-neuv`. `W` is the workload MAC, `T`
//! its tag `4e:65:75:56:HH:LL`. Offsets are from the network header: `-14` is the
//! destination MAC (u16 at -14, u32 at -12), `-8` the source MAC (u32 at -8, u16 at -4).
//!
//! | port | pref | protocol | match | actions |
//! |---|---|---|---|---|
//! | vex | 10001 | ip | dst unicast, dst == W | pedit dst := T; mirred → vbr-neuv |
//! | vex | 10002 | ipv6 | same | same |
//! | vex | 10003 | all | anything | mirred → vin |
//! | vin | 10001 | ip | dst unicast, src == W | pedit src := T; mirred → vbr-neuv |
//! | vin | 10002 | ipv6 | same | same |
//! | vin | 10003 | all | anything | mirred → vex |
//! | vbr-neuv | 2i+1 | all | dst == T | pedit dst := W; mirred → vin |
//! | vbr-neuv | 2i+2 | all | src == T | pedit src := W; mirred → vex |
//!
//! Differences from NeuVector, on purpose: IPv6 is steered too (pref 10002, so the
//! match-all moves to 10003); the mirred action is `redirect`, not `mirror` (a mirror
//! leaves the original frame to the enforcer namespace's own stack, which routes it if
//! that namespace forwards; NeuVector avoids that by giving `vex` a random MAC, which we
//! do not change); the preferences on `vbr-neuv` come from the inline index (`2i+1`,
//! `2i+2`), so the index must be at most 32766. The fail-open variant replaces the
//! vin/vex filters with one match-all redirect to the other side (pref 10001).

use super::link::MacAddr;
use super::InlinePort as Port;

/// Preference of the IPv4 steering filter on vin/vex.
const PREF_IP: u16 = 10001;
/// Preference of the IPv6 steering filter.
const PREF_IP6: u16 = 10002;
/// Preference of the match-all filter that crosses straight to the other side.
const PREF_ALL: u16 = 10003;
/// The largest inline index the vbr-neuv preferences can take.
pub(crate) const MAX_INDEX: u16 = 32766;

/// The two preferences on vbr-neuv: (destination is the tag → vin, source is the tag →
/// vex); `None` when the index is out of range.
pub(crate) fn service_prefs(index: u16) -> Option<(u16, u16)> {
    (index <= MAX_INDEX).then(|| (2 * index + 1, 2 * index + 2))
}

fn hex16(b: [u8; 2]) -> String {
    format!("0x{:04x}", u16::from_be_bytes(b))
}

fn hex32(b: [u8; 4]) -> String {
    format!("0x{:08x}", u32::from_be_bytes(b))
}

/// `u32` match on the destination MAC == `m`.
fn match_dst(m: MacAddr) -> Vec<String> {
    let o = m.0;
    words(&format!(
        "match u16 {} 0xffff at -14 match u32 {} 0xffffffff at -12",
        hex16([o[0], o[1]]),
        hex32([o[2], o[3], o[4], o[5]])
    ))
}

/// `u32` match on the source MAC == `m`.
fn match_src(m: MacAddr) -> Vec<String> {
    let o = m.0;
    words(&format!(
        "match u32 {} 0xffffffff at -8 match u16 {} 0xffff at -4",
        hex32([o[0], o[1], o[2], o[3]]),
        hex16([o[4], o[5]])
    ))
}

/// `pedit` setting the destination MAC to `m`.
fn set_dst(m: MacAddr) -> Vec<String> {
    let o = m.0;
    words(&format!(
        "action pedit munge offset -14 u16 set {} munge offset -12 u32 set {} pipe",
        hex16([o[0], o[1]]),
        hex32([o[2], o[3], o[4], o[5]])
    ))
}

/// `pedit` setting the source MAC to `m`.
fn set_src(m: MacAddr) -> Vec<String> {
    let o = m.0;
    words(&format!(
        "action pedit munge offset -8 u32 set {} munge offset -4 u16 set {} pipe",
        hex32([o[0], o[1], o[2], o[3]]),
        hex16([o[4], o[5]])
    ))
}

fn words(s: &str) -> Vec<String> {
    s.split(' ').map(String::from).collect()
}

fn filter(dev: &str, pref: u16, proto: &str) -> Vec<String> {
    words(&format!("tc filter add dev {dev} pref {pref} parent ffff: protocol {proto} u32"))
}

fn redirect(to: &str) -> Vec<String> {
    words(&format!("action mirred egress redirect dev {to}"))
}

/// Commands run once when the service pair is created.
pub(crate) fn service_setup(service: &str) -> Vec<Vec<String>> {
    vec![words(&format!("tc qdisc add dev {service} ingress"))]
}

/// Commands that steer one workload (after [`port_reset`]): its vin/vex filters and
/// its two filters on the service port. `None` when the index is out of range.
pub(crate) fn port_steer(p: &Port, service: &str, fail_open: bool) -> Option<Vec<Vec<String>>> {
    let (pref_to_vin, pref_to_vex) = service_prefs(p.index)?;
    let mut cmds = vec![
        words(&format!("tc qdisc add dev {} ingress", p.vin)),
        words(&format!("tc qdisc add dev {} ingress", p.vex)),
    ];
    if fail_open {
        for (from, to) in [(&p.vex, &p.vin), (&p.vin, &p.vex)] {
            let mut c = filter(from, PREF_IP, "all");
            c.extend(words("match u8 0 0"));
            c.extend(redirect(to));
            cmds.push(c);
        }
    } else {
        for (pref, proto) in [(PREF_IP, "ip"), (PREF_IP6, "ipv6")] {
            // To the workload: the destination is W.
            let mut c = filter(&p.vex, pref, proto);
            c.extend(words("match u8 0 1 at -14"));
            c.extend(match_dst(p.mac));
            c.extend(set_dst(p.tag));
            c.extend(redirect(service));
            cmds.push(c);
        }
        let mut c = filter(&p.vex, PREF_ALL, "all");
        c.extend(words("match u8 0 0"));
        c.extend(redirect(&p.vin));
        cmds.push(c);
        for (pref, proto) in [(PREF_IP, "ip"), (PREF_IP6, "ipv6")] {
            // From the workload: unicast destination, the source is W.
            let mut c = filter(&p.vin, pref, proto);
            c.extend(words("match u8 0 1 at -14"));
            c.extend(match_src(p.mac));
            c.extend(set_src(p.tag));
            c.extend(redirect(service));
            cmds.push(c);
        }
        let mut c = filter(&p.vin, PREF_ALL, "all");
        c.extend(words("match u8 0 0"));
        c.extend(redirect(&p.vex));
        cmds.push(c);
    }
    // Back from the engine (present in both variants: frames in flight still arrive).
    let mut c = filter(service, pref_to_vin, "all");
    c.extend(match_dst(p.tag));
    c.extend(set_dst(p.mac));
    c.extend(redirect(&p.vin));
    cmds.push(c);
    let mut c = filter(service, pref_to_vex, "all");
    c.extend(match_src(p.tag));
    c.extend(set_src(p.mac));
    c.extend(redirect(&p.vex));
    cmds.push(c);
    Some(cmds)
}

/// Commands that remove one workload's steering (each may fail when the thing is
/// already gone; the caller ignores those failures). Without the vin/vex filters nothing
/// crosses between them (NeuVector's quarantine).
pub(crate) fn port_reset(p: &Port, service: &str) -> Vec<Vec<String>> {
    let mut cmds = vec![
        words(&format!("tc qdisc del dev {} ingress", p.vin)),
        words(&format!("tc qdisc del dev {} ingress", p.vex)),
    ];
    if let Some((a, b)) = service_prefs(p.index) {
        for pref in [a, b] {
            cmds.push(words(&format!("tc filter del dev {service} pref {pref} parent ffff:")));
        }
    }
    cmds
}

/// The probe for `act_pedit`: a filter on `dev` (which has an ingress qdisc) that tags
/// and redirects to `to`.
pub(crate) fn probe_filter(dev: &str, to: &str) -> Vec<String> {
    let mut c = filter(dev, 1, "all");
    c.extend(words("match u8 0 0 action pedit munge offset -14 u16 set 0x4e65 pipe"));
    c.extend(redirect(to));
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port() -> Port {
        Port {
            index: 1,
            vin: "vin1".into(),
            vex: "vex1".into(),
            mac: "02:00:00:aa:bb:01".parse().unwrap(),
            tag: "4e:65:75:56:00:01".parse().unwrap(),
        }
    }

    #[test]
    fn neuvector_commands_with_pedit_munge() {
        let cmds: Vec<String> =
            port_steer(&port(), "vbr-neuv", false).unwrap().iter().map(|c| c.join(" ")).collect();
        assert_eq!(
            cmds,
            [
                "tc qdisc add dev vin1 ingress",
                "tc qdisc add dev vex1 ingress",
                "tc filter add dev vex1 pref 10001 parent ffff: protocol ip u32 match u8 0 1 at -14 \
                 match u16 0x0200 0xffff at -14 match u32 0x00aabb01 0xffffffff at -12 \
                 action pedit munge offset -14 u16 set 0x4e65 munge offset -12 u32 set 0x75560001 pipe \
                 action mirred egress redirect dev vbr-neuv",
                "tc filter add dev vex1 pref 10002 parent ffff: protocol ipv6 u32 match u8 0 1 at -14 \
                 match u16 0x0200 0xffff at -14 match u32 0x00aabb01 0xffffffff at -12 \
                 action pedit munge offset -14 u16 set 0x4e65 munge offset -12 u32 set 0x75560001 pipe \
                 action mirred egress redirect dev vbr-neuv",
                "tc filter add dev vex1 pref 10003 parent ffff: protocol all u32 match u8 0 0 \
                 action mirred egress redirect dev vin1",
                "tc filter add dev vin1 pref 10001 parent ffff: protocol ip u32 match u8 0 1 at -14 \
                 match u32 0x020000aa 0xffffffff at -8 match u16 0xbb01 0xffff at -4 \
                 action pedit munge offset -8 u32 set 0x4e657556 munge offset -4 u16 set 0x0001 pipe \
                 action mirred egress redirect dev vbr-neuv",
                "tc filter add dev vin1 pref 10002 parent ffff: protocol ipv6 u32 match u8 0 1 at -14 \
                 match u32 0x020000aa 0xffffffff at -8 match u16 0xbb01 0xffff at -4 \
                 action pedit munge offset -8 u32 set 0x4e657556 munge offset -4 u16 set 0x0001 pipe \
                 action mirred egress redirect dev vbr-neuv",
                "tc filter add dev vin1 pref 10003 parent ffff: protocol all u32 match u8 0 0 \
                 action mirred egress redirect dev vex1",
                "tc filter add dev vbr-neuv pref 3 parent ffff: protocol all u32 \
                 match u16 0x4e65 0xffff at -14 match u32 0x75560001 0xffffffff at -12 \
                 action pedit munge offset -14 u16 set 0x0200 munge offset -12 u32 set 0x00aabb01 pipe \
                 action mirred egress redirect dev vin1",
                "tc filter add dev vbr-neuv pref 4 parent ffff: protocol all u32 \
                 match u32 0x4e657556 0xffffffff at -8 match u16 0x0001 0xffff at -4 \
                 action pedit munge offset -8 u32 set 0x020000aa munge offset -4 u16 set 0xbb01 pipe \
                 action mirred egress redirect dev vex1",
            ]
        );
    }

    #[test]
    fn fail_open_crosses_straight() {
        let cmds: Vec<String> =
            port_steer(&port(), "vbr-neuv", true).unwrap().iter().map(|c| c.join(" ")).collect();
        assert_eq!(
            cmds[2],
            "tc filter add dev vex1 pref 10001 parent ffff: protocol all u32 match u8 0 0 action mirred egress redirect dev vin1"
        );
        assert_eq!(
            cmds[3],
            "tc filter add dev vin1 pref 10001 parent ffff: protocol all u32 match u8 0 0 action mirred egress redirect dev vex1"
        );
        assert!(cmds.iter().take(4).all(|c| !c.contains("pedit")));
        assert_eq!(cmds.len(), 6, "two qdiscs, two wires, two return filters");
    }

    #[test]
    fn reset_and_ranges() {
        let r: Vec<String> = port_reset(&port(), "vbr-neuv").iter().map(|c| c.join(" ")).collect();
        assert_eq!(
            r,
            [
                "tc qdisc del dev vin1 ingress",
                "tc qdisc del dev vex1 ingress",
                "tc filter del dev vbr-neuv pref 3 parent ffff:",
                "tc filter del dev vbr-neuv pref 4 parent ffff:",
            ]
        );
        assert_eq!(service_prefs(0), Some((1, 2)));
        assert_eq!(service_prefs(MAX_INDEX), Some((65533, 65534)));
        assert_eq!(service_prefs(MAX_INDEX + 1), None);
        let mut p = port();
        p.index = 40000;
        assert!(port_steer(&p, "vbr-neuv", false).is_none());
        assert_eq!(service_setup("vbr-neuv")[0].join(" "), "tc qdisc add dev vbr-neuv ingress");
    }
}
