//! NFQUEUE wiring: iptables rules inside the workload's namespace that hand its packets
//! to a netlink queue (`reference/neuvector-dp.md` §1.5, `reference/datapath.md` §5).
//!
//! For each family (`iptables-nft` and `ip6tables-nft`, filter table):
//!
//! ```text
//! INPUT   -j ENFORCER-IN      (inserted first)
//! OUTPUT  -j ENFORCER-OUT     (inserted first)
//! FORWARD -j ENFORCER-FWD     (only with `forward`)
//! ENFORCER-IN  -i <iface> -m comment --comment enforcer:<name> -j NFQUEUE --queue-num Q --queue-bypass
//! ENFORCER-OUT -o <iface> -m comment --comment enforcer:<name> -j NFQUEUE --queue-num Q --queue-bypass
//! ENFORCER-FWD -i <iface> ... / -o <iface> ...          (only with `forward`)
//! ```
//!
//! plus the same for `lo` when loopback is asked for. Native nft `queue` does not exist
//! on these kernels (no nft_queue); the iptables-nft NFQUEUE target does. The comment (kept by
//! iptables-nft as rule metadata, no kernel module needed) marks whose rule it is; removal
//! deletes exactly the recorded rule specs (`-C` then `-D`), then the chains and jumps
//! when no rule is left in them, then what iptables-nft created implicitly (the `filter`
//! table, base chains) if it was not there before and is empty now. `iptables-save`
//! after unwiring equals `iptables-save` before wiring.
//!
//! The jumps go first in INPUT/OUTPUT so the engine sees every packet; a packet it
//! accepts leaves the filter table there (the NFQUEUE accept verdict ends the hook), so
//! rules the workload itself added after the jump are not consulted for it.
//! `--queue-bypass`: while no process is bound to the queue, packets pass (fail-open).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::exec::Ns;
use super::WiringError;

/// Chain jumped from INPUT.
pub(crate) const CHAIN_IN: &str = "ENFORCER-IN";
/// Chain jumped from OUTPUT.
pub(crate) const CHAIN_OUT: &str = "ENFORCER-OUT";
/// Chain jumped from FORWARD (with [`NfqOptions::forward`]).
pub(crate) const CHAIN_FWD: &str = "ENFORCER-FWD";

/// What to queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NfqOptions {
    /// The queue number (`--queue-num`).
    pub(crate) queue: u16,
    /// Also queue traffic on `lo` (service-mesh sidecars talk to the application there).
    /// Default false. (A port whose interface is `lo` queues it regardless.)
    pub(crate) loopback: bool,
    /// Also queue packets the namespace forwards through the interface (a workload that
    /// routes). Default false.
    pub(crate) forward: bool,
}

impl NfqOptions {
    /// Queue `queue`, interface traffic only.
    pub(crate) const fn queue(queue: u16) -> NfqOptions {
        NfqOptions { queue, loopback: false, forward: false }
    }
}

/// An iptables family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Family {
    Ip,
    Ip6,
}

impl Family {
    pub(crate) const ALL: [Family; 2] = [Family::Ip, Family::Ip6];

    pub(crate) fn iptables(self) -> &'static str {
        match self {
            Family::Ip => "iptables-nft",
            Family::Ip6 => "ip6tables-nft",
        }
    }

    fn nft(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
        }
    }
}

/// One rule: its chain and its match/target words (as for `-A CHAIN ...`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Rule {
    pub(crate) chain: String,
    pub(crate) spec: Vec<String>,
}

/// What a family's filter table looked like before wiring.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FamilyBefore {
    pub(crate) family: Family,
    pub(crate) table_existed: bool,
    /// Base chains (INPUT, OUTPUT, FORWARD) that existed.
    pub(crate) base_chains: Vec<String>,
}

/// An NFQUEUE workload's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NfqRecord {
    pub(crate) options: NfqOptions,
    pub(crate) rules: Vec<Rule>,
    pub(crate) before: Vec<FamilyBefore>,
    pub(crate) complete: bool,
}

/// The base chain each of our chains is jumped from.
fn base_of(chain: &str) -> &'static str {
    match chain {
        CHAIN_OUT => "OUTPUT",
        CHAIN_FWD => "FORWARD",
        _ => "INPUT",
    }
}

/// The queue rules for interface `iface` of workload `name` (the same in both families).
pub(crate) fn rules(name: &str, iface: &str, o: NfqOptions) -> Vec<Rule> {
    let mut ifaces = vec![iface];
    if o.loopback && iface != "lo" {
        ifaces.push("lo");
    }
    let mut chains = vec![(CHAIN_IN, "-i"), (CHAIN_OUT, "-o")];
    if o.forward {
        chains.extend([(CHAIN_FWD, "-i"), (CHAIN_FWD, "-o")]);
    }
    let mut out = Vec::new();
    // First in each chain: packets the enforcer itself sends (resets through its raw
    // sockets, marked) are not queued back to it.
    let mut seen: Vec<&str> = Vec::new();
    for (chain, _) in &chains {
        if seen.contains(chain) {
            continue;
        }
        seen.push(chain);
        let spec = [
            "-m",
            "mark",
            "--mark",
            &format!("{:#x}", super::INJECT_MARK),
            "-m",
            "comment",
            "--comment",
            &format!("enforcer:{name}"),
            "-j",
            "RETURN",
        ];
        out.push(Rule {
            chain: (*chain).into(),
            spec: spec.iter().map(|s| s.to_string()).collect(),
        });
    }
    for (chain, dir) in chains {
        for i in &ifaces {
            let spec = [
                dir,
                i,
                "-m",
                "comment",
                "--comment",
                &format!("enforcer:{name}"),
                "-j",
                "NFQUEUE",
                "--queue-num",
                &o.queue.to_string(),
                "--queue-bypass",
            ];
            out.push(Rule {
                chain: chain.into(),
                spec: spec.iter().map(|s| s.to_string()).collect(),
            });
        }
    }
    out
}

/// The table, its chains (name, is base chain, policy) and rule counts per chain.
struct TableView {
    chains: Vec<(String, bool, Option<String>)>,
    rules: Vec<String>,
}

fn view(ns: &Ns<'_>, f: Family) -> Result<Option<TableView>, WiringError> {
    let argv = ["nft", "-j", "list", "table", f.nft(), "filter"];
    let out = match ns.attempt(&argv, None)? {
        Ok(out) => out,
        Err(fail) if fail.stderr.contains("No such file or directory") => return Ok(None),
        Err(fail) => return Err(fail.into_error(ns.who)),
    };
    let v: Value = serde_json::from_str(&out).map_err(|e| ns.bad_output(&argv, e.to_string()))?;
    let items = v
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| ns.bad_output(&argv, "no nftables array"))?;
    let mut t = TableView { chains: Vec::new(), rules: Vec::new() };
    for item in items {
        if let Some(c) = item.get("chain") {
            let name = c.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
            let policy = c.get("policy").and_then(Value::as_str).map(String::from);
            t.chains.push((name, c.get("hook").is_some(), policy));
        } else if let Some(r) = item.get("rule") {
            t.rules.push(r.get("chain").and_then(Value::as_str).unwrap_or_default().to_string());
        }
    }
    Ok(Some(t))
}

/// How each family's filter table looks now (for the record, before wiring).
pub(crate) fn before(ns: &Ns<'_>) -> Result<Vec<FamilyBefore>, WiringError> {
    let mut out = Vec::new();
    for f in Family::ALL {
        let v = view(ns, f)?;
        out.push(FamilyBefore {
            family: f,
            table_existed: v.is_some(),
            base_chains: v
                .map(|v| v.chains.into_iter().filter(|c| c.1).map(|c| c.0).collect())
                .unwrap_or_default(),
        });
    }
    Ok(out)
}

fn argv<'a>(f: Family, op: &'a str, chain: &'a str, spec: &'a [String]) -> Vec<&'a str> {
    let mut a = vec![f.iptables(), "-w", op, chain];
    a.extend(spec.iter().map(String::as_str));
    a
}

fn chain_exists(ns: &Ns<'_>, f: Family, chain: &str) -> Result<bool, WiringError> {
    Ok(ns.attempt(&[f.iptables(), "-w", "-S", chain], None)?.is_ok())
}

fn rule_exists(ns: &Ns<'_>, f: Family, chain: &str, spec: &[String]) -> Result<bool, WiringError> {
    Ok(ns.attempt(&argv(f, "-C", chain, spec), None)?.is_ok())
}

/// Install `rules` in both families (each step only if not already done).
pub(crate) fn install(ns: &Ns<'_>, rules: &[Rule]) -> Result<(), WiringError> {
    for f in Family::ALL {
        let mut chains: Vec<&str> = Vec::new();
        for r in rules {
            if !chains.contains(&r.chain.as_str()) {
                chains.push(&r.chain);
            }
        }
        for c in &chains {
            if !chain_exists(ns, f, c)? {
                ns.run(&[f.iptables(), "-w", "-N", c])?;
            }
        }
        for r in rules {
            if !rule_exists(ns, f, &r.chain, &r.spec)? {
                ns.run(&argv(f, "-A", &r.chain, &r.spec))?;
            }
        }
        for c in &chains {
            let jump = ["-j".to_string(), c.to_string()];
            if !rule_exists(ns, f, base_of(c), &jump)? {
                ns.run(&[f.iptables(), "-w", "-I", base_of(c), "1", "-j", c])?;
            }
        }
    }
    Ok(())
}

/// Remove `rules`, then chains/jumps left empty, then what iptables-nft created
/// implicitly, as recorded in `before`. Safe to repeat.
pub(crate) fn remove(
    ns: &Ns<'_>,
    rules: &[Rule],
    before: &[FamilyBefore],
) -> Result<(), WiringError> {
    for f in Family::ALL {
        for r in rules.iter().rev() {
            while rule_exists(ns, f, &r.chain, &r.spec)? {
                ns.run(&argv(f, "-D", &r.chain, &r.spec))?;
            }
        }
        let mut chains: Vec<&str> = Vec::new();
        for r in rules {
            if !chains.contains(&r.chain.as_str()) {
                chains.push(&r.chain);
            }
        }
        for c in chains {
            if !chain_exists(ns, f, c)? {
                continue;
            }
            let listing = ns.run(&[f.iptables(), "-w", "-S", c])?;
            if listing.lines().any(|l| l.starts_with("-A ")) {
                continue; // another workload's rules are in it
            }
            let jump = ["-j".to_string(), c.to_string()];
            while rule_exists(ns, f, base_of(c), &jump)? {
                ns.run(&argv(f, "-D", base_of(c), &jump))?;
            }
            ns.run(&[f.iptables(), "-w", "-X", c])?;
        }
        let Some(b) = before.iter().find(|b| b.family == f) else { continue };
        let Some(now) = view(ns, f)? else { continue };
        let empty_base = |name: &str| {
            now.chains.iter().any(|(n, base, policy)| {
                n == name && *base && policy.as_deref().is_none_or(|p| p == "accept")
            }) && !now.rules.iter().any(|r| r == name)
        };
        if !b.table_existed {
            let all_empty_base = now.chains.iter().all(|(n, _, _)| empty_base(n));
            if all_empty_base {
                ns.run(&["nft", "delete", "table", f.nft(), "filter"])?;
            }
            continue;
        }
        for (name, _, _) in &now.chains {
            if !b.base_chains.contains(name) && empty_base(name) {
                ns.run(&["nft", "delete", "chain", f.nft(), "filter", name])?;
            }
        }
    }
    Ok(())
}

/// The rules as `iptables -S` lines.
#[cfg(test)]
fn describe(rules: &[Rule]) -> Vec<String> {
    rules.iter().map(|r| format!("-A {} {}", r.chain, r.spec.join(" "))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_per_interface() {
        let r = describe(&rules("web", "eth0", NfqOptions::queue(3)));
        assert_eq!(
            r,
            [
                "-A ENFORCER-IN -m mark --mark 0x4e567273 -m comment --comment enforcer:web -j RETURN",
                "-A ENFORCER-OUT -m mark --mark 0x4e567273 -m comment --comment enforcer:web -j RETURN",
                "-A ENFORCER-IN -i eth0 -m comment --comment enforcer:web -j NFQUEUE --queue-num 3 --queue-bypass",
                "-A ENFORCER-OUT -o eth0 -m comment --comment enforcer:web -j NFQUEUE --queue-num 3 --queue-bypass",
            ]
        );
        let all = rules("web", "eth0", NfqOptions { queue: 0, loopback: true, forward: true });
        assert_eq!(all.len(), 3 + 8, "a RETURN for marked packets per chain, then the queues");
        assert!(describe(&all).iter().any(|l| l.starts_with("-A ENFORCER-OUT -o lo ")));
        assert!(describe(&all).iter().any(|l| l.starts_with("-A ENFORCER-FWD -o eth0 ")));
        let lo = rules("mesh", "lo", NfqOptions { queue: 0, loopback: true, forward: false });
        assert_eq!(lo.len(), 2 + 2, "lo is not queued twice");
        assert_eq!(base_of(CHAIN_FWD), "FORWARD");
    }
}
