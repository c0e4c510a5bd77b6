//! What an interface looks like, read with `ip -j`, and how to make an interface look
//! like that again: [`LinkSnapshot::capture`] and [`LinkSnapshot::apply`].
//!
//! A snapshot holds what a workload's network configuration consists of: the name
//! (kept by the caller), MAC, MTU, admin state, IPv6 address-generation mode, addresses
//! (IPv4 and IPv6 with prefix length, broadcast, label, scope, flags, lifetimes),
//! routes through the interface in every table (IPv4 and IPv6, default included) and
//! permanent neighbour entries. It leaves out what the kernel makes by itself and makes
//! again when the addresses come back: routes of protocol `kernel` (the prefix route of
//! an address, `fe80::/64`), the `local` table, routes learned from router
//! advertisements or redirects, and IPv6 addresses made by SLAAC or privacy extensions.
//!
//! `apply` changes only what differs and may run any number of times: an address already
//! there is not added again, routes are written with `ip route replace`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::exec::Ns;
use super::WiringError;

/// An Ethernet MAC address, written `02:00:00:00:00:01`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The six bytes.
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }

    /// True for an address an interface can have: not all zero, not a group address.
    pub const fn is_unicast(self) -> bool {
        self.0[0] & 1 == 0 && !matches!(self.0, [0, 0, 0, 0, 0, 0])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for MacAddr {
    type Err = String;

    /// Six two-digit hex bytes separated by `:`.
    fn from_str(s: &str) -> Result<MacAddr, String> {
        let mut mac = [0u8; 6];
        let mut parts = s.split(':');
        for b in mac.iter_mut() {
            let p = parts.next().filter(|p| p.len() == 2);
            *b = p
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| format!("not a MAC address: {s:?}"))?;
        }
        if parts.next().is_some() {
            return Err(format!("not a MAC address: {s:?}"));
        }
        Ok(MacAddr(mac))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<MacAddr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An interface address with its prefix length (`10.250.0.1/24`, `fd00::1/64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IfAddr {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length (0–32 for IPv4, 0–128 for IPv6).
    pub prefix_len: u8,
}

impl fmt::Display for IfAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// One address as `ip -j addr` shows it, with what `ip addr add` needs to make it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AddrRecord {
    pub(crate) local: IpAddr,
    pub(crate) prefixlen: u8,
    /// The peer of a point-to-point address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) peer: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) broadcast: Option<Ipv4Addr>,
    /// `host` or `link` for IPv4 (global is the default and not recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scope: Option<String>,
    /// An IPv4 label other than the interface name (`eth0:1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) label: Option<String>,
    /// Flags `ip addr add` takes: `nodad`, `noprefixroute`, `home`, `mngtmpaddr`,
    /// `optimistic`, `autojoin`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) flags: Vec<String>,
    /// Lifetimes in seconds when not forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) valid_lft: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) preferred_lft: Option<u64>,
}

impl AddrRecord {
    fn is_v6_link_local(&self) -> bool {
        matches!(self.local, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80)
    }

    fn add_argv(&self, iface: &str) -> Vec<String> {
        let mut a: Vec<String> = vec!["ip".into()];
        a.push(if self.local.is_ipv6() { "-6" } else { "-4" }.into());
        a.extend(["addr".into(), "add".into()]);
        match self.peer {
            Some(p) => {
                a.extend([self.local.to_string(), "peer".into(), format!("{p}/{}", self.prefixlen)])
            }
            None => a.push(format!("{}/{}", self.local, self.prefixlen)),
        }
        if let Some(b) = self.broadcast {
            a.extend(["broadcast".into(), b.to_string()]);
        }
        if let Some(s) = &self.scope {
            a.extend(["scope".into(), s.clone()]);
        }
        if let Some(l) = &self.label {
            a.extend(["label".into(), l.clone()]);
        }
        a.extend(["dev".into(), iface.into()]);
        a.extend(self.flags.iter().cloned());
        if self.valid_lft.is_some() || self.preferred_lft.is_some() {
            let lft = |v: Option<u64>| v.map_or("forever".to_string(), |s| s.to_string());
            a.extend(["valid_lft".into(), lft(self.valid_lft)]);
            a.extend(["preferred_lft".into(), lft(self.preferred_lft)]);
        }
        a
    }
}

/// One nexthop of a multipath route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NextHop {
    pub(crate) gateway: Option<String>,
    pub(crate) dev: Option<String>,
    pub(crate) weight: Option<u32>,
    #[serde(default)]
    pub(crate) onlink: bool,
}

/// One route through the interface, as `ip -j -d route show table all dev X` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RouteRecord {
    pub(crate) v6: bool,
    /// `default` or a prefix.
    pub(crate) dst: String,
    /// The gateway; an IPv6 gateway of an IPv4 route is written `inet6 ADDR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gateway: Option<String>,
    /// The table when not `main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) table: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) protocol: Option<String>,
    /// IPv4 scope when not the default for the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) prefsrc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) metric: Option<u64>,
    #[serde(default)]
    pub(crate) onlink: bool,
    /// IPv6 router preference (`low`, `medium`, `high`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pref: Option<String>,
    /// Route metrics with a plain numeric value (`mtu 1400`, `advmss 1360`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) metrics: Vec<(String, u64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) nexthops: Vec<NextHop>,
}

impl RouteRecord {
    fn replace_argv(&self, iface: &str) -> Vec<String> {
        let mut a: Vec<String> = vec!["ip".into()];
        a.push(if self.v6 { "-6" } else { "-4" }.into());
        a.extend(["route".into(), "replace".into(), self.dst.clone()]);
        if let Some(t) = &self.table {
            a.extend(["table".into(), t.clone()]);
        }
        if let Some(p) = &self.protocol {
            a.extend(["proto".into(), p.clone()]);
        }
        if let Some(s) = &self.scope {
            a.extend(["scope".into(), s.clone()]);
        }
        if let Some(s) = &self.prefsrc {
            a.extend(["src".into(), s.clone()]);
        }
        if let Some(m) = self.metric {
            a.extend(["metric".into(), m.to_string()]);
        }
        if let Some(p) = &self.pref {
            a.extend(["pref".into(), p.clone()]);
        }
        for (k, v) in &self.metrics {
            a.extend([k.clone(), v.to_string()]);
        }
        if self.nexthops.is_empty() {
            if let Some(g) = &self.gateway {
                a.push("via".into());
                a.extend(g.split(' ').map(String::from));
            }
            a.extend(["dev".into(), iface.into()]);
            if self.onlink {
                a.push("onlink".into());
            }
        } else {
            for h in &self.nexthops {
                a.push("nexthop".into());
                if let Some(g) = &h.gateway {
                    a.push("via".into());
                    a.extend(g.split(' ').map(String::from));
                }
                a.extend(["dev".into(), h.dev.clone().unwrap_or_else(|| iface.into())]);
                if let Some(w) = h.weight {
                    a.extend(["weight".into(), w.to_string()]);
                }
                if h.onlink {
                    a.push("onlink".into());
                }
            }
        }
        a
    }
}

/// A permanent neighbour entry (`ip neigh add ... nud permanent`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NeighRecord {
    pub(crate) dst: IpAddr,
    pub(crate) lladdr: String,
    #[serde(default)]
    pub(crate) router: bool,
}

/// What an interface looked like (see the module documentation for what is included).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LinkSnapshot {
    pub(crate) ifindex: u32,
    pub(crate) mac: MacAddr,
    pub(crate) mtu: u32,
    pub(crate) up: bool,
    /// `veth`, `macvlan`, ... (informative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<String>,
    /// `eui64`, `none`, `stable_secret`, `random`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) addr_gen_mode: Option<String>,
    pub(crate) addrs: Vec<AddrRecord>,
    pub(crate) routes: Vec<RouteRecord>,
    pub(crate) neighbours: Vec<NeighRecord>,
}

/// The link attributes `ip -j -d link show` reports that apply and capture use.
#[derive(Clone, Debug)]
pub(crate) struct LinkInfo {
    pub(crate) name: String,
    pub(crate) ifindex: u32,
    pub(crate) mac: Option<MacAddr>,
    pub(crate) mtu: u32,
    pub(crate) up: bool,
    pub(crate) kind: Option<String>,
    pub(crate) addr_gen_mode: Option<String>,
}

impl LinkInfo {
    fn from_json(v: &Value) -> Option<LinkInfo> {
        let flags = v.get("flags").and_then(Value::as_array);
        Some(LinkInfo {
            name: v.get("ifname")?.as_str()?.to_string(),
            ifindex: u32::try_from(v.get("ifindex")?.as_u64()?).ok()?,
            mac: v.get("address").and_then(Value::as_str).and_then(|s| s.parse().ok()),
            mtu: u32::try_from(v.get("mtu")?.as_u64()?).ok()?,
            up: flags.is_some_and(|f| f.iter().any(|x| x.as_str() == Some("UP"))),
            kind: v.pointer("/linkinfo/info_kind").and_then(Value::as_str).map(String::from),
            addr_gen_mode: v.get("inet6_addr_gen_mode").and_then(Value::as_str).map(String::from),
        })
    }
}

/// Every link in a namespace.
pub(crate) fn links(ns: &Ns<'_>) -> Result<Vec<LinkInfo>, WiringError> {
    let argv = ["ip", "-j", "-d", "link", "show"];
    let out = ns.run(&argv)?;
    let v = parse_array(ns, &argv, &out)?;
    Ok(v.iter().filter_map(LinkInfo::from_json).collect())
}

/// One link, or `None` when there is no link of that name.
pub(crate) fn link(ns: &Ns<'_>, iface: &str) -> Result<Option<LinkInfo>, WiringError> {
    let argv = ["ip", "-j", "-d", "link", "show", "dev", iface];
    match ns.attempt(&argv, None)? {
        Ok(out) => {
            let v = parse_array(ns, &argv, &out)?;
            let info = v.first().and_then(LinkInfo::from_json);
            info.map(Some).ok_or_else(|| ns.bad_output(&argv, "no link object"))
        }
        Err(f) if f.stderr.contains("does not exist") => Ok(None),
        Err(f) => Err(f.into_error(ns.who)),
    }
}

fn parse_array(ns: &Ns<'_>, argv: &[&str], out: &str) -> Result<Vec<Value>, WiringError> {
    if out.trim().is_empty() {
        return Ok(Vec::new());
    }
    match serde_json::from_str::<Value>(out) {
        Ok(Value::Array(a)) => Ok(a),
        Ok(_) => Err(ns.bad_output(argv, "not a JSON array")),
        Err(e) => Err(ns.bad_output(argv, e.to_string())),
    }
}

fn lifetime(v: Option<&Value>) -> Option<u64> {
    // `ip -j` writes "forever" as 4294967295.
    v.and_then(Value::as_u64).filter(|&s| s != u64::from(u32::MAX))
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(String::from)
}

/// The addresses in `ip -j addr show dev X` output.
fn parse_addrs(iface: &str, v: &[Value]) -> Vec<AddrRecord> {
    let mut addrs = Vec::new();
    let infos = v.first().and_then(|l| l.get("addr_info")).and_then(Value::as_array);
    for a in infos.into_iter().flatten() {
        let (Some(local), Some(prefixlen)) = (
            a.get("local").and_then(Value::as_str).and_then(|s| s.parse::<IpAddr>().ok()),
            a.get("prefixlen").and_then(Value::as_u64).and_then(|p| u8::try_from(p).ok()),
        ) else {
            continue;
        };
        let flag = |k: &str| a.get(k).and_then(Value::as_bool).unwrap_or(false);
        // Made by the kernel from router advertisements (SLAAC, privacy extensions):
        // it makes them again.
        if local.is_ipv6() && (flag("dynamic") || flag("temporary")) {
            continue;
        }
        let flags = ["nodad", "noprefixroute", "home", "mngtmpaddr", "optimistic", "autojoin"]
            .into_iter()
            .filter(|k| flag(k))
            .map(String::from)
            .collect();
        let scope = str_of(a, "scope").filter(|s| local.is_ipv4() && s != "global");
        let label = str_of(a, "label").filter(|l| local.is_ipv4() && l != iface);
        let peer = a
            .get("address")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<IpAddr>().ok())
            .filter(|p| *p != local);
        addrs.push(AddrRecord {
            local,
            prefixlen,
            peer,
            broadcast: a.get("broadcast").and_then(Value::as_str).and_then(|s| s.parse().ok()),
            scope,
            label,
            flags,
            valid_lft: lifetime(a.get("valid_life_time")),
            preferred_lft: lifetime(a.get("preferred_life_time")),
        });
    }
    addrs
}

fn gateway_of(v: &Value) -> Option<String> {
    if let Some(g) = str_of(v, "gateway") {
        return Some(g);
    }
    let via = v.get("via")?;
    let host = str_of(via, "host")?;
    Some(match via.get("family").and_then(Value::as_str) {
        Some("inet6") => format!("inet6 {host}"),
        Some("inet") => format!("inet {host}"),
        _ => host,
    })
}

fn has_flag(v: &Value, flag: &str) -> bool {
    v.get("flags")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x.as_str() == Some(flag)))
}

/// The routes in `ip -j -d route show table all dev X` output that the kernel does not
/// make by itself.
fn parse_routes(v6: bool, v: &[Value]) -> Vec<RouteRecord> {
    let mut routes = Vec::new();
    for r in v {
        let Some(dst) = str_of(r, "dst") else { continue };
        let kind = str_of(r, "type").unwrap_or_else(|| "unicast".into());
        let table = str_of(r, "table").unwrap_or_else(|| "main".into());
        let protocol = str_of(r, "protocol");
        if kind != "unicast"
            || table == "local"
            || matches!(protocol.as_deref(), Some("kernel" | "ra" | "redirect"))
            || r.get("expires").is_some()
        {
            continue;
        }
        let metrics = r
            .get("metrics")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .flat_map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_u64()?))))
            .collect();
        let nexthops = r
            .get("nexthops")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|h| NextHop {
                gateway: gateway_of(h),
                dev: str_of(h, "dev"),
                weight: h.get("weight").and_then(Value::as_u64).and_then(|w| u32::try_from(w).ok()),
                onlink: has_flag(h, "onlink"),
            })
            .collect();
        routes.push(RouteRecord {
            v6,
            dst,
            gateway: gateway_of(r),
            table: Some(table).filter(|t| t != "main"),
            protocol,
            scope: str_of(r, "scope").filter(|s| !v6 && s != "global" && s != "universe"),
            prefsrc: str_of(r, "prefsrc"),
            metric: r.get("metric").and_then(Value::as_u64),
            onlink: has_flag(r, "onlink"),
            pref: str_of(r, "pref").filter(|_| v6),
            metrics,
            nexthops,
        });
    }
    routes
}

fn parse_neighbours(v: &[Value]) -> Vec<NeighRecord> {
    v.iter()
        .filter_map(|n| {
            Some(NeighRecord {
                dst: n.get("dst")?.as_str()?.parse().ok()?,
                lladdr: str_of(n, "lladdr")?,
                router: n.get("router").is_some(),
            })
        })
        .collect()
}

impl LinkSnapshot {
    /// Read interface `iface` in namespace `ns`; [`WiringError::NoSuchInterface`] if it
    /// is not there.
    pub(crate) fn capture(ns: &Ns<'_>, iface: &str) -> Result<LinkSnapshot, WiringError> {
        let info = link(ns, iface)?.ok_or_else(|| WiringError::NoSuchInterface {
            workload: ns.who.to_string(),
            iface: iface.to_string(),
            netns: ns.path.to_path_buf(),
        })?;
        let mac = info.mac.ok_or_else(|| WiringError::Invalid {
            workload: ns.who.to_string(),
            message: format!("interface {iface} has no Ethernet address"),
        })?;
        let json = |argv: &[&str]| -> Result<Vec<Value>, WiringError> {
            let out = ns.run(argv)?;
            parse_array(ns, argv, &out)
        };
        let addrs = parse_addrs(iface, &json(&["ip", "-j", "addr", "show", "dev", iface])?);
        let mut routes = parse_routes(
            false,
            &json(&["ip", "-j", "-4", "-d", "route", "show", "table", "all", "dev", iface])?,
        );
        routes.extend(parse_routes(
            true,
            &json(&["ip", "-j", "-6", "-d", "route", "show", "table", "all", "dev", iface])?,
        ));
        let neighbours = parse_neighbours(&json(&[
            "ip",
            "-j",
            "neigh",
            "show",
            "dev",
            iface,
            "nud",
            "permanent",
        ])?);
        Ok(LinkSnapshot {
            ifindex: info.ifindex,
            mac,
            mtu: info.mtu,
            up: info.up,
            kind: info.kind,
            addr_gen_mode: info.addr_gen_mode,
            addrs,
            routes,
            neighbours,
        })
    }

    /// Make interface `iface` in `ns` look like this snapshot (except its index): MAC,
    /// MTU, address generation mode, addresses, admin state, routes, permanent
    /// neighbours. Changes only what differs; safe to repeat.
    pub(crate) fn apply(&self, ns: &Ns<'_>, iface: &str) -> Result<(), WiringError> {
        let now = link(ns, iface)?.ok_or_else(|| WiringError::NoSuchInterface {
            workload: ns.who.to_string(),
            iface: iface.to_string(),
            netns: ns.path.to_path_buf(),
        })?;
        let mac = self.mac.to_string();
        let mtu = self.mtu.to_string();
        if now.mac != Some(self.mac) {
            ns.run(&["ip", "link", "set", "dev", iface, "address", &mac])?;
        }
        if now.mtu != self.mtu {
            ns.run(&["ip", "link", "set", "dev", iface, "mtu", &mtu])?;
        }
        if let Some(m) = &self.addr_gen_mode {
            if now.addr_gen_mode.as_ref() != Some(m) {
                ns.run(&["ip", "link", "set", "dev", iface, "addrgenmode", m])?;
            }
        }
        // Addresses before the link comes up (IPv6 link-local ones after: the kernel
        // makes the EUI-64 one itself as the link comes up).
        let (link_local, other): (Vec<&AddrRecord>, Vec<&AddrRecord>) =
            self.addrs.iter().partition(|a| a.is_v6_link_local());
        self.add_missing(ns, iface, &other)?;
        if now.up != self.up {
            ns.run(&["ip", "link", "set", "dev", iface, if self.up { "up" } else { "down" }])?;
        }
        self.add_missing(ns, iface, &link_local)?;
        self.replace_routes(ns, iface)?;
        for n in &self.neighbours {
            let dst = n.dst.to_string();
            let mut argv = vec![
                "ip",
                "neigh",
                "replace",
                &dst,
                "lladdr",
                &n.lladdr,
                "dev",
                iface,
                "nud",
                "permanent",
            ];
            if n.router {
                argv.push("router");
            }
            ns.run(&argv)?;
        }
        Ok(())
    }

    fn add_missing(
        &self,
        ns: &Ns<'_>,
        iface: &str,
        want: &[&AddrRecord],
    ) -> Result<(), WiringError> {
        if want.is_empty() {
            return Ok(());
        }
        let argv = ["ip", "-j", "addr", "show", "dev", iface];
        let out = ns.run(&argv)?;
        let have = parse_addrs(iface, &parse_array(ns, &argv, &out)?);
        for a in want {
            if have.iter().any(|h| h.local == a.local && h.prefixlen == a.prefixlen) {
                continue;
            }
            let argv = a.add_argv(iface);
            ns.run(&argv.iter().map(String::as_str).collect::<Vec<_>>())?;
        }
        Ok(())
    }

    /// `ip route replace` every route, in passes: a route whose gateway is reachable only
    /// through another recorded route succeeds once that one is in.
    fn replace_routes(&self, ns: &Ns<'_>, iface: &str) -> Result<(), WiringError> {
        let mut pending: Vec<&RouteRecord> = self.routes.iter().collect();
        while !pending.is_empty() {
            let mut failed = Vec::new();
            let mut last_error = None;
            for r in &pending {
                let argv = r.replace_argv(iface);
                match ns.attempt(&argv.iter().map(String::as_str).collect::<Vec<_>>(), None)? {
                    Ok(_) => {}
                    Err(f) => {
                        failed.push(*r);
                        last_error = Some(f);
                    }
                }
            }
            if failed.len() == pending.len() {
                if let Some(f) = last_error {
                    return Err(f.into_error(ns.who));
                }
            }
            pending = failed;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trip() {
        let m: MacAddr = "4e:65:75:56:00:01".parse().unwrap();
        assert_eq!(m.0, [0x4e, 0x65, 0x75, 0x56, 0, 1]);
        assert_eq!(m.to_string(), "4e:65:75:56:00:01");
        assert!(m.is_unicast());
        assert!(!MacAddr([0xff; 6]).is_unicast());
        assert!(!MacAddr([0; 6]).is_unicast());
        assert!("4e:65:75:56:00".parse::<MacAddr>().is_err());
        assert!("4e:65:75:56:00:01:02".parse::<MacAddr>().is_err());
        assert!("4e:65:75:56:00:zz".parse::<MacAddr>().is_err());
    }

    #[test]
    fn addresses_from_ip_json() {
        let json: Vec<Value> = serde_json::from_str(
            r#"[{"ifindex":2,"ifname":"eth0","addr_info":[
            {"family":"inet","local":"10.250.0.1","prefixlen":24,"broadcast":"10.250.0.255","scope":"global","label":"eth0","valid_life_time":4294967295,"preferred_life_time":4294967295},
            {"family":"inet","local":"10.250.1.1","prefixlen":24,"scope":"global","label":"eth0:1","valid_life_time":300,"preferred_life_time":200},
            {"family":"inet6","local":"fd00::1","prefixlen":64,"scope":"global","nodad":true,"valid_life_time":4294967295,"preferred_life_time":4294967295},
            {"family":"inet6","local":"2001:db8::5054:ff:fe00:1","prefixlen":64,"scope":"global","dynamic":true,"mngtmpaddr":true,"valid_life_time":86400,"preferred_life_time":14400},
            {"family":"inet6","local":"fe80::ff:fe00:1","prefixlen":64,"scope":"link","tentative":true,"valid_life_time":4294967295,"preferred_life_time":4294967295}]}]"#,
        )
        .unwrap();
        let a = parse_addrs("eth0", &json);
        assert_eq!(a.len(), 4, "the SLAAC address is left to the kernel: {a:?}");
        assert_eq!(
            a[0].add_argv("eth0").join(" "),
            "ip -4 addr add 10.250.0.1/24 broadcast 10.250.0.255 dev eth0"
        );
        assert_eq!(
            a[1].add_argv("eth0").join(" "),
            "ip -4 addr add 10.250.1.1/24 label eth0:1 dev eth0 valid_lft 300 preferred_lft 200"
        );
        assert_eq!(a[2].add_argv("eth0").join(" "), "ip -6 addr add fd00::1/64 dev eth0 nodad");
        assert!(a[3].is_v6_link_local());
    }

    #[test]
    fn routes_from_ip_json() {
        let v4: Vec<Value> = serde_json::from_str(
            r#"[{"type":"unicast","dst":"default","gateway":"10.250.0.254","table":"main","protocol":"boot","scope":"global","flags":[]},
            {"type":"unicast","dst":"10.250.0.0/24","table":"main","protocol":"kernel","scope":"link","prefsrc":"10.250.0.1","flags":[]},
            {"type":"local","dst":"10.250.0.1","table":"local","protocol":"kernel","scope":"host","prefsrc":"10.250.0.1","flags":[]},
            {"type":"unicast","dst":"10.99.0.0/16","gateway":"10.250.0.2","table":"100","protocol":"static","scope":"global","metric":7,"flags":["onlink"],"metrics":[{"mtu":1400}]},
            {"type":"unicast","dst":"10.98.0.0/16","table":"main","protocol":"boot","scope":"global","flags":[],"nexthops":[{"gateway":"10.250.0.2","dev":"eth0","weight":1,"flags":[]},{"gateway":"10.250.0.3","dev":"eth0","weight":2,"flags":[]}]}]"#,
        )
        .unwrap();
        let r = parse_routes(false, &v4);
        let lines: Vec<String> = r.iter().map(|r| r.replace_argv("eth0").join(" ")).collect();
        assert_eq!(
            lines,
            [
                "ip -4 route replace default proto boot via 10.250.0.254 dev eth0",
                "ip -4 route replace 10.99.0.0/16 table 100 proto static metric 7 mtu 1400 via 10.250.0.2 dev eth0 onlink",
                "ip -4 route replace 10.98.0.0/16 proto boot nexthop via 10.250.0.2 dev eth0 weight 1 nexthop via 10.250.0.3 dev eth0 weight 2",
            ]
        );
        let v6: Vec<Value> = serde_json::from_str(
            r#"[{"type":"unicast","dst":"fd00::/64","table":"main","protocol":"kernel","scope":"global","metric":256,"flags":[],"pref":"medium"},
            {"type":"unicast","dst":"default","gateway":"fe80::1","table":"main","protocol":"ra","metric":1024,"expires":1790,"flags":[],"pref":"medium"},
            {"type":"unicast","dst":"default","gateway":"fd00::fe","table":"main","protocol":"boot","scope":"global","metric":1024,"flags":[],"pref":"medium"},
            {"type":"multicast","dst":"ff00::/8","table":"local","protocol":"kernel","scope":"global","metric":256,"flags":[],"pref":"medium"}]"#,
        )
        .unwrap();
        let r = parse_routes(true, &v6);
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].replace_argv("eth0").join(" "),
            "ip -6 route replace default proto boot metric 1024 pref medium via fd00::fe dev eth0"
        );
    }

    #[test]
    fn ipv4_route_via_ipv6_gateway() {
        let v: Vec<Value> = serde_json::from_str(
            r#"[{"dst":"default","via":{"family":"inet6","host":"fe80::1"},"protocol":"static","flags":[]}]"#,
        )
        .unwrap();
        let r = parse_routes(false, &v);
        assert_eq!(
            r[0].replace_argv("eth0").join(" "),
            "ip -4 route replace default proto static via inet6 fe80::1 dev eth0"
        );
    }
}
