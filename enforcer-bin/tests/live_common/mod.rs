//! Shared set-up of the live end-to-end tests: an enforcer namespace and two workload
//! namespaces whose `eth0`s are peers of one veth pair, the `enforcer run` binary started
//! inside the enforcer namespace on a generated run file, its control socket, its report
//! lines, and traffic helpers with explicit timeouts.
//!
//! Everything lives in anonymous namespaces ([`netns_harness::AnonNs`]) that the kernel
//! reclaims when the test ends, panics or is killed; the enforcer child is killed on drop.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use netns_harness::{require_root, AnonNs};
use serde_json::Value;
use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const C1: &str = "10.77.0.1";
pub const C2: &str = "10.77.0.2";
pub const C1_6: &str = "fd77::1";
pub const C2_6: &str = "fd77::2";
pub const C1_MAC: &str = "02:77:00:00:00:01";
pub const C2_MAC: &str = "02:77:00:00:00:02";

/// Policy rules: HTTP on tcp/8090 from c1 to c2 is denied once identified, the port
/// itself allowed (a mid-session deny).
pub const HTTP_DENIED_ON_8090: &str = r#"
[[rule]]
id = 20
from = "10.77.0.1"
to = "10.77.0.2"
ports = ["tcp/8090"]
apps = ["http"]
action = "deny"

[[rule]]
id = 21
from = "10.77.0.1"
to = "10.77.0.2"
ports = ["tcp/8090"]
action = "allow"
"#;

/// The tools the tests run.
pub fn ready() -> bool {
    require_root(&["ip", "nft", "iptables-nft", "ip6tables-nft", "ping", "curl", "nsenter"])
}

/// Two workloads (c1, c2) and the enforcer's namespace.
pub struct Topo {
    pub enf: AnonNs,
    pub c1: AnonNs,
    pub c2: AnonNs,
    pub dir: tempdir::Dir,
}

pub mod tempdir {
    use std::path::{Path, PathBuf};
    /// A directory under the system temp dir, removed on drop.
    pub struct Dir(PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!(
                "enforcer-live-{tag}-{}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
            ));
            let p = PathBuf::from(p.to_string_lossy().replace([' ', '{', '}', ':', ','], ""));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Topo {
    pub fn new(tag: &str) -> Topo {
        let (enf, c1, c2) =
            (AnonNs::new().unwrap(), AnonNs::new().unwrap(), AnonNs::new().unwrap());
        c1.veth_to("eth0", &c2, "eth0").unwrap();
        for (ns, mac, v4, v6) in [(&c1, C1_MAC, C1, C1_6), (&c2, C2_MAC, C2, C2_6)] {
            ns.mac("eth0", mac).unwrap();
            ns.addr("eth0", &format!("{v4}/24")).unwrap();
            ns.addr("eth0", &format!("{v6}/64")).unwrap();
            ns.up("eth0").unwrap();
        }
        Topo { enf, c1, c2, dir: tempdir::Dir::new(tag) }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn reports(&self) -> PathBuf {
        self.dir.path().join("reports.json")
    }

    /// A run file: `workloads` are (name, ns, mode, datapath) lines; `extra` top-level keys.
    pub fn run_file(
        &self,
        policy: &str,
        extra: &str,
        workloads: &[(&str, &AnonNs, &str, &str)],
    ) -> PathBuf {
        std::fs::write(self.dir.path().join("policy.toml"), policy).unwrap();
        let mut t = format!(
            "policy = \"policy.toml\"\nworkers = 2\nreports = \"{}\"\nreport_interval = 1\n\
             state_dir = \"{}\"\n{extra}\n",
            self.reports().display(),
            self.state_dir().display()
        );
        for (name, ns, mode, datapath) in workloads {
            t.push_str(&format!(
                "[[workload]]\nname = \"{name}\"\nnetns = \"{}\"\nmode = \"{mode}\"\ndatapath = \"{datapath}\"\n",
                ns.path()
            ));
        }
        let p = self.dir.path().join("run.toml");
        std::fs::write(&p, t).unwrap();
        p
    }

    /// Start `enforcer run` in the enforcer namespace; returns once it answers `status`.
    pub fn start(&self, run_file: &Path) -> Enforcer {
        let log = self.dir.path().join(format!("enforcer-{}.log", now_ms()));
        let child = self
            .enf
            .cmd(env!("CARGO_BIN_EXE_enforcer"))
            .args(["run", "--config"])
            .arg(run_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut e =
            Enforcer { child: Some(child), socket: self.state_dir().join("control.sock"), log };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(v) = e.try_ctl(r#"{"cmd":"status"}"#) {
                assert_eq!(v["ok"], true, "{v}");
                return e;
            }
            if let Some(st) = e.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("enforcer exited {st} at start:\n{}", e.log_text());
            }
            assert!(Instant::now() < deadline, "enforcer did not start:\n{}", e.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every report line written so far, parsed.
    pub fn report_lines(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.reports()).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// A snapshot of a workload's link, addresses and routes (`ip -j`), without the
    /// fields that legitimately change (ifindex, counters, timers).
    pub fn link_state(ns: &AnonNs) -> Value {
        let strip = |mut v: Value| {
            fn walk(v: &mut Value) {
                match v {
                    Value::Object(m) => {
                        for k in [
                            "ifindex",
                            "link_index",
                            "link_netnsid",
                            "stats64",
                            "stats",
                            "operstate",
                            "flags",
                            "link",
                            "valid_life_time",
                            "preferred_life_time",
                            "qdisc",
                            "group",
                            "txqlen",
                            "linkmode",
                            "parentbus",
                            "parentdev",
                            "altnames",
                            "addr_info_flags",
                            "gso_max_size",
                            "gso_max_segs",
                            "gro_max_size",
                            "tso_max_size",
                            "tso_max_segs",
                            "gso_ipv4_max_size",
                            "gro_ipv4_max_size",
                            "num_tx_queues",
                            "num_rx_queues",
                            "inet6_addr_gen_mode",
                            "promiscuity",
                            "allmulti",
                            "min_mtu",
                            "max_mtu",
                            "linkinfo",
                            "link_type",
                        ] {
                            m.remove(k);
                        }
                        for (_, x) in m.iter_mut() {
                            walk(x);
                        }
                    }
                    Value::Array(a) => a.iter_mut().for_each(walk),
                    _ => {}
                }
            }
            walk(&mut v);
            v
        };
        let j = |argv: &[&str]| strip(serde_json::from_str(&ns.output(argv).unwrap()).unwrap());
        serde_json::json!({
            "addr": j(&["ip", "-j", "addr", "show", "dev", "eth0"]),
            "route4": j(&["ip", "-j", "-4", "route", "show", "table", "all"]),
            "route6": j(&["ip", "-j", "-6", "route", "show", "table", "main"]),
        })
    }
}

/// A running `enforcer run`, killed on drop.
pub struct Enforcer {
    child: Option<Child>,
    socket: PathBuf,
    pub log: PathBuf,
}

impl Enforcer {
    pub fn try_ctl(&self, req: &str) -> std::io::Result<Value> {
        enforcer::run::control::request(&self.socket, req)
    }

    /// A control request that must succeed; returns its result.
    pub fn ctl(&self, req: &str) -> Value {
        let v = self.try_ctl(req).unwrap_or_else(|e| panic!("{req}: {e}\n{}", self.log_text()));
        assert_eq!(v["ok"], true, "{req}: {v}");
        v["result"].clone()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGTERM, then wait (≤ 30 s) for a clean exit.
    pub fn stop(mut self) -> String {
        let pid = self.pid().to_string();
        let st = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(st.success());
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                assert!(st.success(), "enforcer exit {st}:\n{}", self.log_text());
                return self.log_text();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("enforcer did not stop:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no chance to unwire.
    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Enforcer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            if std::thread::panicking() {
                eprintln!("enforcer log:\n{}", self.log_text());
            }
        }
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
}

/// A TCP listener in `ns`, accepting on a background thread: each connection's bytes are
/// echoed back until the client closes. Returns the join handle of the accept thread
/// (ends after `conns` connections).
pub fn echo_server(
    ns: &AnonNs,
    addr: &str,
    conns: usize,
) -> std::thread::JoinHandle<Vec<std::io::Result<u64>>> {
    let addr: SocketAddr = addr.parse().unwrap();
    let l = ns.enter(move || TcpListener::bind(addr)).unwrap();
    std::thread::spawn(move || {
        let mut results = Vec::new();
        for _ in 0..conns {
            let Ok((mut s, _)) = l.accept() else { break };
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = vec![0u8; 64 << 10];
            let mut total = 0u64;
            let r = loop {
                match s.read(&mut buf) {
                    Ok(0) => break Ok(total),
                    Ok(n) => {
                        total += n as u64;
                        if let Err(e) = s.write_all(&buf[..n]) {
                            break Err(e);
                        }
                    }
                    Err(e) => break Err(e),
                }
            };
            results.push(r);
        }
        results
    })
}

/// A TCP connection from `ns` (bounded connect).
pub fn connect(ns: &AnonNs, addr: &str, timeout: Duration) -> std::io::Result<TcpStream> {
    let addr: SocketAddr = addr.parse().unwrap();
    let s = ns.enter(move || TcpStream::connect_timeout(&addr, timeout))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

/// Send `data` through an echo connection, reading the echo concurrently; the hash of
/// what came back.
pub fn echo_transfer(s: &mut TcpStream, data: &[u8]) -> std::io::Result<u64> {
    let mut r = s.try_clone()?;
    let n = data.len();
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let mut h = DefaultHasher::new();
        let mut buf = vec![0u8; 64 << 10];
        let mut got = 0;
        while got < n {
            let k = r.read(&mut buf)?;
            if k == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("{got} of {n}"),
                ));
            }
            h.write(&buf[..k]);
            got += k;
        }
        Ok(h.finish())
    });
    s.write_all(data)?;
    reader.join().unwrap()
}

pub fn hash(data: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(data);
    h.finish()
}

/// A UDP socket in `ns` bound to `addr`, with a short read timeout.
pub fn udp(ns: &AnonNs, addr: &str) -> UdpSocket {
    let addr: SocketAddr = addr.parse().unwrap();
    let s = ns.enter(move || UdpSocket::bind(addr)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    s
}

/// Whether `count` datagrams sent from `from` reach `to` (at least one arrives).
pub fn udp_reaches(from: &UdpSocket, to: &UdpSocket, count: usize) -> bool {
    let dst = to.local_addr().unwrap();
    for i in 0..count {
        from.send_to(format!("datagram {i}").as_bytes(), dst).unwrap();
    }
    let mut buf = [0u8; 64];
    to.recv_from(&mut buf).is_ok()
}

/// `ping -c N -W 1 addr` from `ns`: true when replies came back.
pub fn ping(ns: &AnonNs, addr: &str, count: u32) -> bool {
    ns.cmd("ping")
        .args(["-c", &count.to_string(), "-W", "1", "-i", "0.2", addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// A minimal HTTP/1.1 server in `ns` answering every request with 200 and `body`
/// (one thread per connection, `conns` connections).
pub fn http_server(ns: &AnonNs, addr: &str, conns: usize) -> std::thread::JoinHandle<Vec<String>> {
    let addr: SocketAddr = addr.parse().unwrap();
    let l = ns.enter(move || TcpListener::bind(addr)).unwrap();
    std::thread::spawn(move || {
        let mut outcomes = Vec::new();
        for _ in 0..conns {
            let Ok((s, _)) = l.accept() else { break };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut outcome = String::new();
            loop {
                let mut line = String::new();
                match r.read_line(&mut line) {
                    Ok(0) => {
                        outcome = if outcome.is_empty() { "eof".into() } else { outcome };
                        break;
                    }
                    Ok(_) if line == "\r\n" => {
                        let body = "hello from c2\n";
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        match (&s).write_all(resp.as_bytes()) {
                            Ok(()) => outcome = "answered".into(),
                            Err(e) => {
                                outcome = format!("{:?}", e.kind());
                                break;
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        outcome = format!("{:?}", e.kind());
                        break;
                    }
                }
            }
            outcomes.push(outcome);
        }
        outcomes
    })
}

/// `curl` from `ns`: its exit code (0 = a response, 7 = refused, 28 = timeout, 56 = reset).
pub fn curl(ns: &AnonNs, url: &str) -> i32 {
    ns.cmd("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "4", url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .code()
        .unwrap_or(-1)
}

/// Report lines of one `event_type`.
pub fn events<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["event_type"] == kind).collect()
}
