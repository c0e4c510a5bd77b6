//! The run file: what `enforcer run` enforces and where it writes.
//!
//! ```toml
//! policy = "policy.toml"        # rules (optional; relative to this file)
//! workers = 2                   # AF_PACKET workers, one engine context each (1..=64)
//! reports = "-"                 # JSON lines: "-" is stdout, else a file (appended)
//! flows = false                 # also one "flow" line per ended session
//! report_interval = 6           # seconds between connection reports of a workload
//! max_sessions = 524288         # per worker
//! state_dir = "/run/enforcer"   # wiring state (crash recovery) and the control socket
//! fail = "closed"               # inline workloads when the enforcer dies: closed | open
//! inline_backend = "auto"       # nft | tc | auto (tc when the kernel has act_pedit)
//! inline_gso = true             # GSO super-frames cross the service port whole
//! inline_ports = "shared"       # shared (vth-neuv, NeuVector) | pair (per workload)
//! apply = "ingress"             # ingress | egress
//! unknown = "track"             # track | ignore | drop
//!
//! [[workload]]
//! name = "web"
//! netns = "/run/netns/web"      # the workload's network namespace (a path to open)
//! iface = "eth0"                # its interface (default eth0)
//! mode = "protect"              # discover | monitor | protect (default discover)
//! datapath = "afpacket"         # afpacket (tap, inline when protected) | nfqueue
//! queue = 1                     # NFQUEUE queue number (nfqueue only; default: 1, 2, ...)
//! ```
//!
//! The workloads' MAC and IP addresses are not written here: the enforcer reads them from
//! the interface when it wires the workload, as NeuVector's agent does from the container.
//!
//! Invariants of a parsed file: workload names unique and valid ([`check_name`]), no two
//! workloads on the same interface of the same namespace, interface names valid for the
//! kernel (1 to 15 bytes, no `/`, `:` or spaces), queue numbers unique and only on
//! NFQUEUE workloads.

use super::source::{DeError, Seg, Source};
use super::workloads_file::check_name;
use super::{Format, Location};
use dpi_core::endpoint::{ApplyDirection, Mode, UnknownTraffic};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How a workload's traffic reaches the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Datapath {
    /// AF_PACKET: a tap port on the interface in Discover and Monitor, the shared inline
    /// service port (the link re-plumbed through the enforcer) in Protect.
    Afpacket,
    /// NFQUEUE: iptables rules in the workload's namespace queue its input and output to
    /// the enforcer in every mode (`--queue-bypass`: traffic flows when it is gone).
    Nfqueue,
}

impl Datapath {
    /// Lowercase name.
    pub const fn name(self) -> &'static str {
        match self {
            Datapath::Afpacket => "afpacket",
            Datapath::Nfqueue => "nfqueue",
        }
    }
}

/// What happens to inline (AF_PACKET) workloads when the enforcer dies without unwiring
/// them (SIGKILL, crash, OOM kill).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FailMode {
    /// Their traffic stops until an enforcer runs again (NeuVector's behaviour: the
    /// re-plumbed links lead to a service port nobody reads). A restart recovers them.
    #[default]
    Closed,
    /// A guard process that outlives the enforcer restores plain connectivity as soon as
    /// the enforcer is gone.
    Open,
}

/// The inline steering backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum InlineBackend {
    /// tc when the kernel has `act_pedit`, else nftables netdev.
    #[default]
    Auto,
    /// nftables netdev ingress chains.
    Nft,
    /// tc u32 + pedit + mirred, as NeuVector (needs `act_pedit`).
    Tc,
}

/// Where reports go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportTarget {
    /// Standard output.
    Stdout,
    /// A file, appended to.
    File(PathBuf),
}

/// One workload of a run file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunWorkload {
    /// Unique name.
    pub name: String,
    /// Its network namespace (a file to open: `/run/netns/NAME`, `/proc/PID/ns/net`).
    pub netns: PathBuf,
    /// Its interface in that namespace.
    pub iface: String,
    /// Mode.
    pub mode: Mode,
    /// How its traffic reaches the engine.
    pub datapath: Datapath,
    /// NFQUEUE queue number (NFQUEUE workloads only; assigned when not given).
    pub queue: Option<u16>,
}

/// A parsed run file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunFile {
    /// Policy file (resolved against the run file's directory).
    pub policy: Option<PathBuf>,
    /// AF_PACKET workers.
    pub workers: usize,
    /// Report output.
    pub reports: ReportTarget,
    /// Also write one flow record per ended session.
    pub flows: bool,
    /// Seconds between connection reports.
    pub report_interval: u32,
    /// Sessions per worker.
    pub max_sessions: usize,
    /// State directory.
    pub state_dir: PathBuf,
    /// Fail mode of inline workloads.
    pub fail: FailMode,
    /// Inline steering backend.
    pub inline_backend: InlineBackend,
    /// GSO super-frames and partial checksums cross the inline service port whole
    /// (`PACKET_VNET_HDR`; transmit offload stays on on `vbr-neuv`). False: NeuVector's
    /// way, transmit offload off on `vbr-neuv`, so the kernel segments and checksums
    /// every frame before the engine sees it. Default true.
    pub inline_gso: bool,
    /// Inline workloads share NeuVector's `vth-neuv` service port (false, the default), or
    /// each gets its own port pair on its `vin<i>`/`vex<i>` (true: fewer hops per frame,
    /// two ring pairs per workload and worker; always with GSO passthrough).
    pub inline_pairs: bool,
    /// Which side's policy decides traffic between two workloads.
    pub apply: ApplyDirection,
    /// Traffic of no workload.
    pub unknown: UnknownTraffic,
    /// The workloads, in file order.
    pub workloads: Vec<RunWorkload>,
}

/// Most AF_PACKET workers.
pub const MAX_WORKERS: usize = 64;

impl RunFile {
    /// Read and parse a run file; relative paths in it are resolved against its directory.
    pub fn load(path: impl AsRef<Path>) -> Result<RunFile, RunFileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| RunFileError::Read { path: path.into(), source })?;
        let mut f =
            RunFile::parse(&text, &path.display().to_string(), Format::detect(path, &text))?;
        let base = path.parent().unwrap_or(Path::new("."));
        f.resolve_paths(base);
        Ok(f)
    }

    /// Parse the text of a run file; `file` names it in errors. Paths stay as written.
    pub fn parse(text: &str, file: &str, format: Format) -> Result<RunFile, RunFileError> {
        let src = Source::new(file, text, format);
        let raw: RawRun = src.deserialize().map_err(|e| syntax_error(&src, e))?;
        validate(&src, raw)
    }

    /// The workload named `name`.
    pub fn get(&self, name: &str) -> Option<&RunWorkload> {
        self.workloads.iter().find(|w| w.name == name)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(p) = self.policy.as_mut() {
            join(p);
        }
        if let ReportTarget::File(p) = &mut self.reports {
            join(p);
        }
        join(&mut self.state_dir);
    }
}

/// Why a run file was rejected. Every message names the file; all but [`Read`] name the
/// line and column, and the workload and field where there is one.
///
/// [`Read`]: RunFileError::Read
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunFileError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML or JSON, or an unknown or missing key, a wrong type, an unknown setting.
    #[error("{at}: {}{message}", workload_colon(workload.as_deref()))]
    Syntax {
        /// Where.
        at: Location,
        /// The workload it is in, when known.
        workload: Option<String>,
        /// What the parser said.
        message: String,
    },
    /// A well-formed value that is wrong.
    #[error("{at}: {}field \"{field}\": {message}", workload_comma(workload.as_deref()))]
    Invalid {
        /// Where.
        at: Location,
        /// The workload, when the value is in one.
        workload: Option<String>,
        /// The field.
        field: &'static str,
        /// What is wrong.
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
const K_IFACE: &[&str] = &["iface"];
const K_NETNS: &[&str] = &["netns"];
const K_QUEUE: &[&str] = &["queue"];
const K_WORKERS: &[&str] = &["workers"];
const K_INTERVAL: &[&str] = &["report_interval"];
const K_SESSIONS: &[&str] = &["max_sessions"];
const K_REPORTS: &[&str] = &["reports"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRun {
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    workers: Option<i64>,
    #[serde(default)]
    reports: Option<String>,
    #[serde(default)]
    flows: bool,
    #[serde(default)]
    report_interval: Option<i64>,
    #[serde(default)]
    max_sessions: Option<i64>,
    #[serde(default)]
    state_dir: Option<String>,
    #[serde(default)]
    fail: RawFail,
    #[serde(default)]
    inline_backend: RawBackend,
    #[serde(default)]
    inline_gso: Option<bool>,
    #[serde(default)]
    inline_ports: RawInlinePorts,
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
    netns: String,
    #[serde(default)]
    iface: Option<String>,
    #[serde(default)]
    mode: RawMode,
    #[serde(default)]
    datapath: RawDatapath,
    #[serde(default)]
    queue: Option<i64>,
}

#[derive(Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawFail {
    #[default]
    Closed,
    Open,
}

#[derive(Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawInlinePorts {
    #[default]
    Shared,
    Pair,
}

#[derive(Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawBackend {
    #[default]
    Auto,
    Nft,
    Tc,
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

#[derive(Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawDatapath {
    #[default]
    Afpacket,
    Nfqueue,
}

fn syntax_error(src: &Source<'_>, e: DeError) -> RunFileError {
    let workload = e
        .offset
        .and_then(|off| src.element_at(K_WORKLOAD, off, K_NAME))
        .and_then(|(_, name)| name.map(str::to_string));
    RunFileError::Syntax { at: e.at, workload, message: e.message }
}

/// Check an interface name as the kernel does (`dev_valid_name`).
pub fn check_iface(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 15 {
        return Err(format!("an interface name has 1 to 15 bytes, this one {}", s.len()));
    }
    if s == "." || s == ".." || s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        return Err("not a valid interface name (no '/', ':' or spaces)".into());
    }
    Ok(())
}

fn validate(src: &Source<'_>, raw: RawRun) -> Result<RunFile, RunFileError> {
    let top = |field: &'static [&'static str], message: String| RunFileError::Invalid {
        at: src.at_path(&[Seg::Key(field)]),
        workload: None,
        field: field[0],
        message,
    };
    let workers = match raw.workers {
        None => 1,
        Some(n) if (1..=MAX_WORKERS as i64).contains(&n) => n as usize,
        Some(n) => return Err(top(K_WORKERS, format!("{n}: between 1 and {MAX_WORKERS}"))),
    };
    let report_interval = match raw.report_interval {
        None => 6,
        Some(n) if (1..=3600).contains(&n) => n as u32,
        Some(n) => return Err(top(K_INTERVAL, format!("{n}: between 1 and 3600 seconds"))),
    };
    let max_sessions = match raw.max_sessions {
        None => dpi_core::Config::default().max_sessions,
        Some(n) if (1..=1 << 26).contains(&n) => n as usize,
        Some(n) => return Err(top(K_SESSIONS, format!("{n}: between 1 and {}", 1 << 26))),
    };
    let reports = match raw.reports.as_deref() {
        None | Some("-") => ReportTarget::Stdout,
        Some("") => return Err(top(K_REPORTS, "empty: write \"-\" for stdout or a path".into())),
        Some(p) => ReportTarget::File(p.into()),
    };

    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut by_iface: HashMap<(String, String), usize> = HashMap::new();
    let mut by_queue: HashMap<u16, usize> = HashMap::new();
    let mut workloads = Vec::with_capacity(raw.workload.len());
    for (i, w) in raw.workload.iter().enumerate() {
        let who = if check_name(&w.name).is_ok() { w.name.clone() } else { format!("#{}", i + 1) };
        let bad = |field: &'static [&'static str], message: String| RunFileError::Invalid {
            at: src.at_path(&[Seg::Key(K_WORKLOAD), Seg::Index(i), Seg::Key(field)]),
            workload: Some(who.clone()),
            field: field[0],
            message,
        };
        let line_of = |j: usize, field: &'static [&'static str]| {
            src.at_path(&[Seg::Key(K_WORKLOAD), Seg::Index(j), Seg::Key(field)]).line
        };
        check_name(&w.name).map_err(|m| bad(K_NAME, format!("{:?}: {m}", w.name)))?;
        if let Some(&j) = by_name.get(&w.name) {
            let line = line_of(j, K_NAME);
            return Err(bad(K_NAME, format!("duplicate workload name (first at line {line})")));
        }
        by_name.insert(w.name.clone(), i);
        if w.netns.is_empty() {
            return Err(bad(K_NETNS, "empty: the path of the workload's network namespace".into()));
        }
        let iface = w.iface.clone().unwrap_or_else(|| "eth0".into());
        check_iface(&iface).map_err(|m| bad(K_IFACE, format!("{iface:?}: {m}")))?;
        let key = (w.netns.clone(), iface.clone());
        if let Some(&j) = by_iface.get(&key) {
            return Err(bad(
                K_IFACE,
                format!(
                    "{iface:?} in {:?} is also workload {:?}'s (line {})",
                    w.netns,
                    raw.workload[j].name,
                    line_of(j, K_NAME)
                ),
            ));
        }
        by_iface.insert(key, i);
        let datapath = match w.datapath {
            RawDatapath::Afpacket => Datapath::Afpacket,
            RawDatapath::Nfqueue => Datapath::Nfqueue,
        };
        let queue = match (w.queue, datapath) {
            (None, _) => None,
            (Some(_), Datapath::Afpacket) => {
                return Err(bad(
                    K_QUEUE,
                    "only NFQUEUE workloads (datapath = \"nfqueue\") have a queue".into(),
                ))
            }
            (Some(q), Datapath::Nfqueue) => {
                let q = u16::try_from(q)
                    .map_err(|_| bad(K_QUEUE, format!("{q}: between 0 and 65535")))?;
                if let Some(&j) = by_queue.get(&q) {
                    return Err(bad(
                        K_QUEUE,
                        format!(
                            "{q}: also workload {:?}'s queue (line {})",
                            raw.workload[j].name,
                            line_of(j, K_QUEUE)
                        ),
                    ));
                }
                by_queue.insert(q, i);
                Some(q)
            }
        };
        let mode = match w.mode {
            RawMode::Discover => Mode::Discover,
            RawMode::Monitor => Mode::Monitor,
            RawMode::Protect => Mode::Protect,
        };
        workloads.push(RunWorkload {
            name: w.name.clone(),
            netns: PathBuf::from(&w.netns),
            iface,
            mode,
            datapath,
            queue,
        });
    }
    // Assign free queue numbers, from 1 in file order (0 is the service-mesh `lo` queue in
    // NeuVector; a file may still name it).
    let mut next = 1u16;
    for w in workloads.iter_mut().filter(|w| w.datapath == Datapath::Nfqueue && w.queue.is_none()) {
        while by_queue.contains_key(&next) {
            next = next.wrapping_add(1);
        }
        by_queue.insert(next, usize::MAX);
        w.queue = Some(next);
    }

    Ok(RunFile {
        policy: raw.policy.map(PathBuf::from),
        workers,
        reports,
        flows: raw.flows,
        report_interval,
        max_sessions,
        state_dir: raw.state_dir.map_or_else(|| PathBuf::from("/run/enforcer"), PathBuf::from),
        fail: match raw.fail {
            RawFail::Closed => FailMode::Closed,
            RawFail::Open => FailMode::Open,
        },
        inline_backend: match raw.inline_backend {
            RawBackend::Auto => InlineBackend::Auto,
            RawBackend::Nft => InlineBackend::Nft,
            RawBackend::Tc => InlineBackend::Tc,
        },
        inline_gso: raw.inline_gso.unwrap_or(true),
        inline_pairs: raw.inline_ports == RawInlinePorts::Pair,
        apply: match raw.apply {
            RawApply::Ingress => ApplyDirection::Ingress,
            RawApply::Egress => ApplyDirection::Egress,
        },
        unknown: match raw.unknown {
            RawUnknown::Track => UnknownTraffic::Track,
            RawUnknown::Ignore => UnknownTraffic::Ignore,
            RawUnknown::Drop => UnknownTraffic::Drop,
        },
        workloads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RunFile, RunFileError> {
        RunFile::parse(text, "run.toml", Format::Toml)
    }

    #[test]
    fn defaults_and_full_file() {
        let f = parse("[[workload]]\nname = \"a\"\nnetns = \"/run/netns/a\"\n").unwrap();
        assert_eq!(f.workers, 1);
        assert_eq!(f.reports, ReportTarget::Stdout);
        assert_eq!(f.fail, FailMode::Closed);
        assert!(f.inline_gso && !f.inline_pairs);
        let w = &f.workloads[0];
        assert_eq!(
            (w.iface.as_str(), w.mode, w.datapath, w.queue),
            ("eth0", Mode::Discover, Datapath::Afpacket, None)
        );

        let f = parse(
            r#"
policy = "p.toml"
workers = 4
reports = "out.jsonl"
fail = "open"
inline_backend = "nft"
inline_gso = false
inline_ports = "pair"
apply = "egress"
[[workload]]
name = "a"
netns = "/proc/1/ns/net"
mode = "protect"
[[workload]]
name = "b"
netns = "/run/netns/b"
datapath = "nfqueue"
[[workload]]
name = "c"
netns = "/run/netns/c"
iface = "lo"
datapath = "nfqueue"
queue = 1
"#,
        )
        .unwrap();
        assert_eq!(f.workers, 4);
        assert_eq!(f.fail, FailMode::Open);
        assert!(!f.inline_gso && f.inline_pairs);
        assert_eq!(f.apply, ApplyDirection::Egress);
        // b gets the first free queue after c's explicit 1.
        assert_eq!(f.get("b").unwrap().queue, Some(2));
        assert_eq!(f.get("c").unwrap().queue, Some(1));
    }

    #[test]
    fn errors_are_located() {
        let e = parse("workers = 0\n").unwrap_err().to_string();
        assert!(e.starts_with("run.toml:1:") && e.contains("between 1 and 64"), "{e}");
        let e = parse("[[workload]]\nname = \"a\"\nnetns = \"/x\"\n[[workload]]\nname = \"a\"\nnetns = \"/y\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("run.toml:5:") && e.contains("duplicate") && e.contains("line 2"),
            "{e}"
        );
        let e = parse("[[workload]]\nname = \"a\"\nnetns = \"/x\"\n[[workload]]\nname = \"b\"\nnetns = \"/x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("workload \"b\"") && e.contains("also workload \"a\"'s"), "{e}");
        let e = parse(
            "[[workload]]\nname = \"a\"\nnetns = \"/x\"\niface = \"a-very-long-interface\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("run.toml:4:") && e.contains("1 to 15 bytes"), "{e}");
        let e = parse("[[workload]]\nname = \"a\"\nnetns = \"/x\"\nqueue = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("only NFQUEUE workloads"), "{e}");
        let e = parse("[[workload]]\nname = \"a\"\nnetns = \"/x\"\nmode = \"enforce\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("run.toml:4:") && e.contains("workload \"a\""), "{e}");
        let e = parse("[[workload]]\nname = \"a\"\n").unwrap_err().to_string();
        assert!(e.contains("netns"), "{e}");
        let e = parse("colour = 1\n").unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn relative_paths_resolve_against_the_file() {
        let dir = std::env::temp_dir().join(format!("run-file-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("run.toml");
        std::fs::write(&p, "policy = \"p.toml\"\nreports = \"/abs/out\"\nstate_dir = \"st\"\n")
            .unwrap();
        let f = RunFile::load(&p).unwrap();
        assert_eq!(f.policy, Some(dir.join("p.toml")));
        assert_eq!(f.reports, ReportTarget::File("/abs/out".into()));
        assert_eq!(f.state_dir, dir.join("st"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
