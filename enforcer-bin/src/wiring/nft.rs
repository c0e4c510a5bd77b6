//! The nftables netdev backend: one table, `table netdev enforcer`, in the enforcer's
//! namespace, regenerated whole and loaded with one `nft -f -` transaction on every
//! change (the `table ... {}` + `delete table ...` prefix makes the load replace the old
//! table atomically: no frame ever sees half a table).
//!
//! Per inline workload `i` with MAC `W` and tag `T = 4e:65:75:56:HH:LL` (the shape of
//! `reference/datapath.md` §3.2, with IPv6 added):
//!
//! - chain `in<i>` on `vin<i>` ingress (frames from the workload): unicast IPv4 and IPv6
//!   from `W` get source MAC `T` and go to `vbr-neuv` (the engine reads its peer
//!   `vth-neuv`); other unicast IP (a spoofed source MAC) is dropped; everything else
//!   (ARP, broadcast, multicast such as NDP solicitations) goes straight to `vex<i>`.
//! - chain `ex<i>` on `vex<i>` ingress (frames to the workload): IPv4 and IPv6 to `W`
//!   get destination MAC `T` and go to `vbr-neuv`; everything else straight to `vin<i>`.
//! - chain `ret` on `vbr-neuv` ingress (frames the engine writes back into `vth-neuv`):
//!   source `T` → source `W`, out of `vex<i>`; destination `T` → destination `W`, into
//!   `vin<i>`; anything else is dropped.
//!
//! The fail-open ("wire") variant keeps `ret` but `in<i>` and `ex<i>` only forward
//! straight between `vin<i>` and `vex<i>`: traffic flows uninspected.
//!
//! nft 1.0.6 needs a newline (not only `;`) after `fwd to "dev"` before a `}`; every
//! statement here ends its line. `fwd to` names are resolved to interface indexes when
//! the table is loaded, so a chain is only written for a workload whose `vin`/`vex`
//! exist.

use std::fmt::Write;

#[cfg(test)]
use super::link::MacAddr;
use super::InlinePort as Port;

/// The table's name (family `netdev`).
pub(crate) const TABLE: &str = "enforcer";

/// A script that removes the table if it is there (and does nothing if not).
pub(crate) const DELETE_SCRIPT: &str = "table netdev enforcer {}\ndelete table netdev enforcer\n";

/// `ether daddr` is a unicast address (the group bit of its first byte is clear).
const UNICAST_DST: &str = "ether daddr & 01:00:00:00:00:00 == 00:00:00:00:00:00";
/// IPv4 and IPv6 (no VLAN tag: tagged frames pass uninspected, as in NeuVector).
const IP: &str = "ether type { ip, ip6 }";

/// The table text (without the replace prefix).
///
/// `pairs`: the engine reads and writes each workload's `vin<i>`/`vex<i>` itself (a port
/// pair per workload): their chains then drop everything, after the packet sockets have
/// taken their copy (taps run before the ingress hook), so the kernel forwards nothing.
pub(crate) fn table(ports: &[Port], service: &str, fail_open: bool, pairs: bool) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "table netdev {TABLE} {{");
    for p in ports {
        let (i, vin, vex, w, tag) = (p.index, &p.vin, &p.vex, p.mac, p.tag);
        let _ = writeln!(t, "\tchain in{i} {{");
        let _ =
            writeln!(t, "\t\ttype filter hook ingress device \"{vin}\" priority 0; policy accept;");
        if pairs && !fail_open {
            let _ = writeln!(t, "\t\tdrop\n\t}}");
            let _ = writeln!(t, "\tchain ex{i} {{");
            let _ = writeln!(
                t,
                "\t\ttype filter hook ingress device \"{vex}\" priority 0; policy accept;"
            );
            let _ = writeln!(t, "\t\tdrop\n\t}}");
            continue;
        }
        if !fail_open {
            let _ = writeln!(
                t,
                "\t\tether saddr {w} {UNICAST_DST} {IP} ether saddr set {tag} fwd to \"{service}\""
            );
            let _ = writeln!(t, "\t\t{UNICAST_DST} {IP} drop");
        }
        let _ = writeln!(t, "\t\tfwd to \"{vex}\"");
        let _ = writeln!(t, "\t}}");
        let _ = writeln!(t, "\tchain ex{i} {{");
        let _ =
            writeln!(t, "\t\ttype filter hook ingress device \"{vex}\" priority 0; policy accept;");
        if !fail_open {
            let _ =
                writeln!(t, "\t\tether daddr {w} {IP} ether daddr set {tag} fwd to \"{service}\"");
        }
        let _ = writeln!(t, "\t\tfwd to \"{vin}\"");
        let _ = writeln!(t, "\t}}");
    }
    let _ = writeln!(t, "\tchain ret {{");
    let _ =
        writeln!(t, "\t\ttype filter hook ingress device \"{service}\" priority 0; policy accept;");
    for p in ports {
        let (vin, vex, w, tag) = (&p.vin, &p.vex, p.mac, p.tag);
        let _ = writeln!(t, "\t\tether saddr {tag} ether saddr set {w} fwd to \"{vex}\"");
        let _ = writeln!(t, "\t\tether daddr {tag} ether daddr set {w} fwd to \"{vin}\"");
    }
    let _ = writeln!(t, "\t\tdrop");
    let _ = writeln!(t, "\t}}");
    let _ = writeln!(t, "}}");
    t
}

/// A script for `nft -f -` that replaces the table atomically.
pub(crate) fn replace_script(
    ports: &[Port],
    service: &str,
    fail_open: bool,
    pairs: bool,
) -> String {
    format!("{DELETE_SCRIPT}{}", table(ports, service, fail_open, pairs))
}

/// The scratch table of the backend probe.
pub(crate) const PROBE_TABLE: &str = "enforcer_probe";

/// A scratch table for the backend probe: a netdev chain with `fwd to`.
pub(crate) fn probe_script(dev: &str, to: &str) -> String {
    format!(
        "table netdev {PROBE_TABLE} {{\n\tchain c {{\n\t\ttype filter hook ingress device \"{dev}\" priority 0;\n\t\tfwd to \"{to}\"\n\t}}\n}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(i: u16) -> Port {
        Port {
            index: i,
            vin: format!("vin{i}"),
            vex: format!("vex{i}"),
            mac: MacAddr([2, 0, 0, 0, 0, i as u8]),
            tag: super::super::tag_mac(i),
        }
    }

    #[test]
    fn fail_closed_table_has_the_datapath_shape() {
        let t = table(&[port(1), port(2)], "vbr-neuv", false, false);
        let expected = "\
table netdev enforcer {
\tchain in1 {
\t\ttype filter hook ingress device \"vin1\" priority 0; policy accept;
\t\tether saddr 02:00:00:00:00:01 ether daddr & 01:00:00:00:00:00 == 00:00:00:00:00:00 ether type { ip, ip6 } ether saddr set 4e:65:75:56:00:01 fwd to \"vbr-neuv\"
\t\tether daddr & 01:00:00:00:00:00 == 00:00:00:00:00:00 ether type { ip, ip6 } drop
\t\tfwd to \"vex1\"
\t}
\tchain ex1 {
\t\ttype filter hook ingress device \"vex1\" priority 0; policy accept;
\t\tether daddr 02:00:00:00:00:01 ether type { ip, ip6 } ether daddr set 4e:65:75:56:00:01 fwd to \"vbr-neuv\"
\t\tfwd to \"vin1\"
\t}
";
        assert!(t.starts_with(expected), "{t}");
        assert!(t.contains("\tchain in2 {"));
        assert!(t.contains(
            "\tchain ret {\n\t\ttype filter hook ingress device \"vbr-neuv\" priority 0; policy accept;\n\
             \t\tether saddr 4e:65:75:56:00:01 ether saddr set 02:00:00:00:00:01 fwd to \"vex1\"\n\
             \t\tether daddr 4e:65:75:56:00:01 ether daddr set 02:00:00:00:00:01 fwd to \"vin1\"\n\
             \t\tether saddr 4e:65:75:56:00:02 ether saddr set 02:00:00:00:00:02 fwd to \"vex2\"\n\
             \t\tether daddr 4e:65:75:56:00:02 ether daddr set 02:00:00:00:00:02 fwd to \"vin2\"\n\
             \t\tdrop\n\t}\n}\n"
        ));
    }

    #[test]
    fn fail_open_table_only_forwards() {
        let t = table(&[port(7)], "vbr-neuv", true, false);
        assert!(t.contains("\tchain in7 {\n\t\ttype filter hook ingress device \"vin7\" priority 0; policy accept;\n\t\tfwd to \"vex7\"\n\t}"));
        assert!(t.contains("\tchain ex7 {\n\t\ttype filter hook ingress device \"vex7\" priority 0; policy accept;\n\t\tfwd to \"vin7\"\n\t}"));
        assert!(!t.contains("in7 {\n\t\ttype filter hook ingress device \"vin7\" priority 0; policy accept;\n\t\tether"));
        assert!(!t.contains("drop\n\t\tfwd"), "no anti-spoofing drop in the wire table");
    }

    #[test]
    fn pair_tables_drop_what_the_engine_forwards_and_fail_open_as_usual() {
        let t = table(&[port(3)], "vbr-neuv", false, true);
        assert!(t.contains("\tchain in3 {\n\t\ttype filter hook ingress device \"vin3\" priority 0; policy accept;\n\t\tdrop\n\t}"));
        assert!(t.contains("\tchain ex3 {\n\t\ttype filter hook ingress device \"vex3\" priority 0; policy accept;\n\t\tdrop\n\t}"));
        assert!(!t.contains("fwd to \"vbr-neuv\""), "{t}");
        assert_eq!(
            table(&[port(3)], "vbr-neuv", true, true),
            table(&[port(3)], "vbr-neuv", true, false)
        );
    }

    #[test]
    fn every_fwd_ends_its_line() {
        let t = table(&[port(1)], "vbr-neuv", false, false);
        for line in t.lines().filter(|l| l.contains("fwd to")) {
            assert!(line.ends_with('"'), "{line}");
        }
    }

    #[test]
    fn replace_script_deletes_first() {
        let s = replace_script(&[port(1)], "vbr-neuv", false, false);
        assert!(s.starts_with(
            "table netdev enforcer {}\ndelete table netdev enforcer\ntable netdev enforcer {\n"
        ));
    }
}
