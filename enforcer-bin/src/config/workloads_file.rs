//! The workloads file: the workloads (addresses, mode, wiring) and the engine-wide apply
//! direction and unknown-traffic setting.
//!
//! ```toml
//! apply = "ingress"        # ingress | egress (default ingress)
//! unknown = "track"        # track | ignore | drop (default track)
//!
//! [[workload]]
//! name = "web"
//! macs = ["02:00:00:00:00:01"]
//! ips = ["10.0.0.1", "fd00::1"]
//! mode = "protect"         # discover | monitor | protect (default discover)
//! wiring = "inline"        # tap | inline (default: inline for protect, tap otherwise)
//! ```
//!
//! Invariants of a parsed file (the policy store would reject the rest): names unique,
//! every workload has a MAC or an address, no MAC or address belongs to two workloads or
//! is listed twice, MACs are unicast and not all-zero, addresses are neither unspecified,
//! multicast nor the IPv4 broadcast address.

use super::policy_file::StringList;
use super::source::{DeError, Seg, Source};
use super::{Format, Location};
use dpi_core::endpoint::{ApplyDirection, Mode, UnknownTraffic, Wiring, WorkloadSpec};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// A workloads file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadsFile {
    /// The workloads, in file order.
    pub workloads: Vec<WorkloadSpec>,
    /// Which side's policy decides traffic between two workloads.
    pub apply: ApplyDirection,
    /// What happens to traffic of no workload.
    pub unknown: UnknownTraffic,
}

/// Why a workloads file was rejected. Every message names the file; all but [`Read`] name
/// the line and column, and the workload and field where there is one.
///
/// [`Read`]: WorkloadsFileError::Read
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadsFileError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML or JSON, or a key or value the format does not have: an unknown or
    /// missing key, a value of the wrong type, an unknown mode, wiring or setting.
    #[error("{at}: {}{message}", workload_colon(workload.as_deref()))]
    Syntax {
        /// Where.
        at: Location,
        /// The name of the workload it is in, when known.
        workload: Option<String>,
        /// What the parser said.
        message: String,
    },
    /// A value that is well-formed but wrong: a bad MAC or address, a duplicate name or
    /// address, a workload without addresses.
    #[error("{at}: {}field \"{field}\": {message}", workload_comma(workload.as_deref()))]
    Invalid {
        /// Where (the offending value).
        at: Location,
        /// The workload's name (or `#N`, from 1, when the name itself is wrong).
        workload: Option<String>,
        /// The field.
        field: &'static str,
        /// What is wrong (starting with the offending value where there is one).
        message: String,
    },
}

fn workload_colon(w: Option<&str>) -> String {
    w.map(|w| format!("workload {w:?}: ")).unwrap_or_default()
}

fn workload_comma(w: Option<&str>) -> String {
    w.map(|w| format!("workload {w:?}, ")).unwrap_or_default()
}

const K_WORKLOAD: &[&str] = &["workload", "workloads"];
const K_NAME: &[&str] = &["name"];
const K_MACS: &[&str] = &["macs"];
const K_IPS: &[&str] = &["ips"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkloads {
    #[serde(default)]
    apply: RawApply,
    #[serde(default)]
    unknown: RawUnknown,
    #[serde(default, alias = "workloads")]
    workload: Vec<RawWorkload>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    name: String,
    #[serde(default)]
    macs: Option<StringList>,
    #[serde(default)]
    ips: Option<StringList>,
    #[serde(default)]
    mode: RawMode,
    #[serde(default)]
    wiring: Option<RawWiring>,
}

#[derive(Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawApply {
    #[default]
    Ingress,
    Egress,
}

#[derive(Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawUnknown {
    #[default]
    Track,
    Ignore,
    Drop,
}

#[derive(Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawMode {
    #[default]
    Discover,
    Monitor,
    Protect,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawWiring {
    Tap,
    Inline,
}

impl WorkloadsFile {
    /// Read and parse a workloads file; the format is chosen by [`Format::detect`].
    pub fn load(path: impl AsRef<Path>) -> Result<WorkloadsFile, WorkloadsFileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| WorkloadsFileError::Read { path: path.into(), source })?;
        WorkloadsFile::parse(&text, &path.display().to_string(), Format::detect(path, &text))
    }

    /// Parse the text of a workloads file; `file` names it in errors.
    pub fn parse(
        text: &str,
        file: &str,
        format: Format,
    ) -> Result<WorkloadsFile, WorkloadsFileError> {
        let src = Source::new(file, text, format);
        let raw: RawWorkloads = src.deserialize().map_err(|e| syntax_error(&src, e))?;
        validate(&src, raw)
    }

    /// The workload named `name`.
    pub fn get(&self, name: &str) -> Option<&WorkloadSpec> {
        self.workloads.iter().find(|w| w.name == name)
    }
}

fn syntax_error(src: &Source<'_>, e: DeError) -> WorkloadsFileError {
    let workload = e
        .offset
        .and_then(|off| src.element_at(K_WORKLOAD, off, K_NAME))
        .and_then(|(_, name)| name.map(str::to_string));
    WorkloadsFileError::Syntax { at: e.at, workload, message: e.message }
}

fn validate(src: &Source<'_>, raw: RawWorkloads) -> Result<WorkloadsFile, WorkloadsFileError> {
    let mut first_name: HashMap<String, usize> = HashMap::new();
    let mut mac_owner: HashMap<[u8; 6], (usize, usize)> = HashMap::new();
    let mut ip_owner: HashMap<IpAddr, (usize, usize)> = HashMap::new();
    let mut names: Vec<String> = Vec::with_capacity(raw.workload.len());
    let mut workloads = Vec::with_capacity(raw.workload.len());
    for (i, w) in raw.workload.into_iter().enumerate() {
        let path = |field: &'static [&'static str], elem: Option<usize>| {
            let mut p = vec![Seg::Key(K_WORKLOAD), Seg::Index(i), Seg::Key(field)];
            p.extend(elem.map(Seg::Index));
            p
        };
        let name_ok = check_name(&w.name);
        let who = if name_ok.is_ok() { w.name.clone() } else { format!("#{}", i + 1) };
        let bad = |field: &'static [&'static str], elem, message| WorkloadsFileError::Invalid {
            at: src.at_path(&path(field, elem)),
            workload: Some(who.clone()),
            field: field[0],
            message,
        };
        name_ok.map_err(|m| bad(K_NAME, None, format!("{:?}: {m}", w.name)))?;
        if let Some(&first) = first_name.get(&w.name) {
            let prev = src.at_path(&[Seg::Key(K_WORKLOAD), Seg::Index(first), Seg::Key(K_NAME)]);
            return Err(bad(
                K_NAME,
                None,
                format!("duplicate workload name (first at line {})", prev.line),
            ));
        }
        first_name.insert(w.name.clone(), i);

        let macs_text = w.macs.map(|l| l.0).unwrap_or_default();
        let ips_text = w.ips.map(|l| l.0).unwrap_or_default();
        if macs_text.is_empty() && ips_text.is_empty() {
            return Err(bad(
                K_NAME,
                None,
                "a workload needs at least one address: a MAC in \"macs\" or an IP in \"ips\""
                    .into(),
            ));
        }
        // Where an address was seen before: this workload or another.
        let owned = |(wi, ei): (usize, usize), field, names: &[String]| {
            let line = src
                .at_path(&[Seg::Key(K_WORKLOAD), Seg::Index(wi), Seg::Key(field), Seg::Index(ei)])
                .line;
            if wi == i {
                format!("listed twice (first at line {line})")
            } else {
                format!("also an address of workload {:?} (line {line})", names[wi])
            }
        };
        let mut macs = Vec::with_capacity(macs_text.len());
        for (j, s) in macs_text.iter().enumerate() {
            let mac = parse_mac(s).map_err(|m| bad(K_MACS, Some(j), format!("{s:?}: {m}")))?;
            if let Some(&prev) = mac_owner.get(&mac) {
                return Err(bad(
                    K_MACS,
                    Some(j),
                    format!("{s:?}: {}", owned(prev, K_MACS, &names)),
                ));
            }
            mac_owner.insert(mac, (i, j));
            macs.push(mac);
        }
        let mut ips = Vec::with_capacity(ips_text.len());
        for (j, s) in ips_text.iter().enumerate() {
            let ip =
                parse_workload_ip(s).map_err(|m| bad(K_IPS, Some(j), format!("{s:?}: {m}")))?;
            if let Some(&prev) = ip_owner.get(&ip) {
                return Err(bad(K_IPS, Some(j), format!("{s:?}: {}", owned(prev, K_IPS, &names))));
            }
            ip_owner.insert(ip, (i, j));
            ips.push(ip);
        }
        let mode = match w.mode {
            RawMode::Discover => Mode::Discover,
            RawMode::Monitor => Mode::Monitor,
            RawMode::Protect => Mode::Protect,
        };
        let wiring = match (w.wiring, mode) {
            (Some(RawWiring::Tap), _) => Wiring::Tap,
            (Some(RawWiring::Inline), _) | (None, Mode::Protect) => Wiring::Inline,
            (None, _) => Wiring::Tap,
        };
        names.push(w.name.clone());
        workloads.push(WorkloadSpec { name: w.name, macs, ips, mode, wiring });
    }
    let apply = match raw.apply {
        RawApply::Ingress => ApplyDirection::Ingress,
        RawApply::Egress => ApplyDirection::Egress,
    };
    let unknown = match raw.unknown {
        RawUnknown::Track => UnknownTraffic::Track,
        RawUnknown::Ignore => UnknownTraffic::Ignore,
        RawUnknown::Drop => UnknownTraffic::Drop,
    };
    Ok(WorkloadsFile { workloads, apply, unknown })
}

/// Check a workload name: 1 to 253 characters, no white space or control characters.
pub fn check_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty name".into());
    }
    if s.len() > 253 {
        return Err(format!("a name has at most 253 bytes, this one {}", s.len()));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a name has no spaces or control characters".into());
    }
    Ok(())
}

/// Parse a MAC address: six two-digit hex bytes separated by `:` (or all by `-`), any
/// case. The all-zero and group (multicast, broadcast) addresses are rejected: they are
/// no interface's address.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let t = s.trim();
    let sep = if t.contains(':') { ':' } else { '-' };
    let parts: Vec<&str> = t.split(sep).collect();
    let form = "not a MAC address: write six hex bytes, \"02:00:00:00:00:01\"";
    if parts.len() != 6
        || parts.iter().any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(form.into());
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(&parts) {
        *b = u8::from_str_radix(p, 16).map_err(|_| form.to_string())?;
    }
    if mac == [0; 6] {
        return Err("the all-zero MAC is no interface's address".into());
    }
    if mac[0] & 1 == 1 {
        return Err("a multicast or broadcast MAC is no interface's address".into());
    }
    Ok(mac)
}

/// Parse a workload's IP address: one address (no block), not unspecified, multicast or
/// the IPv4 broadcast address.
pub fn parse_workload_ip(s: &str) -> Result<IpAddr, String> {
    let t = s.trim();
    if t.contains('/') || t.contains('-') {
        return Err("a workload address is one address, not a block or range".into());
    }
    let ip: IpAddr = t.parse().map_err(|_| "not an IPv4 or IPv6 address".to_string())?;
    let broadcast = matches!(ip, IpAddr::V4(a) if a.is_broadcast());
    if ip.is_unspecified() || ip.is_multicast() || broadcast {
        return Err("an unspecified, multicast or broadcast address is no workload's".into());
    }
    Ok(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(parse_mac("02:00:00:0a:Bc:01").unwrap(), [2, 0, 0, 0x0a, 0xbc, 1]);
        assert_eq!(parse_mac("02-00-00-00-00-01").unwrap(), [2, 0, 0, 0, 0, 1]);
        assert!(parse_mac("02:00:00:00:00").unwrap_err().contains("six hex bytes"));
        assert!(parse_mac("02:00:00:00:00:+1").unwrap_err().contains("six hex bytes"));
        assert!(parse_mac("02:00-00:00:00:01").unwrap_err().contains("six hex bytes"));
        assert!(parse_mac("2:0:0:0:0:1").unwrap_err().contains("six hex bytes"));
        assert!(parse_mac("00:00:00:00:00:00").unwrap_err().contains("all-zero"));
        assert!(parse_mac("ff:ff:ff:ff:ff:ff").unwrap_err().contains("broadcast"));
        assert!(parse_mac("01:00:5e:00:00:01").unwrap_err().contains("multicast"));
    }

    #[test]
    fn ips() {
        assert!(parse_workload_ip(" fd00::1 ").is_ok());
        for bad in ["0.0.0.0", "::", "224.0.0.1", "ff02::1", "255.255.255.255"] {
            assert!(parse_workload_ip(bad).unwrap_err().contains("no workload's"), "{bad}");
        }
        assert!(parse_workload_ip("10.0.0.0/24").unwrap_err().contains("not a block"));
        assert!(parse_workload_ip("web").unwrap_err().contains("not an IPv4"));
    }

    #[test]
    fn names() {
        assert!(check_name("k8s.default.web-1").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"a".repeat(254)).is_err());
    }
}
