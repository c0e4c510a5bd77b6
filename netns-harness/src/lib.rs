//! # netns-harness: throwaway network namespaces for end-to-end tests
//!
//! Real traffic through real kernels, never touching the root namespace (see the project's
//! `reference/datapath.md` §8–9). An [`AnonNs`] is an anonymous network namespace held only
//! by a file descriptor: no name in `/run/netns`, so parallel tests never collide, and the
//! kernel reclaims it (with its links) when the descriptor closes — on drop, on panic, on
//! SIGKILL of the test binary. Processes a test starts inside it ([`AnonNs::spawn`]) are
//! killed on drop and get `PR_SET_PDEATHSIG`.
//!
//! ```no_run
//! use netns_harness::{AnonNs, require_root};
//! if !require_root(&["ip"]) { return; }
//! let a = AnonNs::new().unwrap();
//! let b = AnonNs::new().unwrap();
//! a.veth_to("eth0", &b, "eth0").unwrap();
//! a.run(&["ip", "addr", "add", "10.9.0.1/24", "dev", "eth0"]).unwrap();
//! b.run(&["ip", "addr", "add", "10.9.0.2/24", "dev", "eth0"]).unwrap();
//! a.up("eth0").unwrap();
//! b.up("eth0").unwrap();
//! let echoed = b.enter(|| std::net::UdpSocket::bind("10.9.0.2:9000").map(|_| ()));
//! assert!(echoed.is_ok());
//! ```
//!
//! The only `unsafe` is in [`sys`]: `unshare`, `setns`, `prctl`, `kill`.

#![deny(unsafe_code)]
// Test support: a namespace that cannot be entered must fail the test loudly.
#![allow(clippy::expect_used)]

mod sys;

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;

/// An anonymous network namespace, alive while this value (or a process in it) is.
#[derive(Debug)]
pub struct AnonNs {
    ns: File,
    children: Mutex<Vec<Child>>,
}

impl AnonNs {
    /// A new, empty network namespace (its `lo` is brought up).
    pub fn new() -> io::Result<AnonNs> {
        let ns = std::thread::spawn(sys::new_netns)
            .join()
            .map_err(|_| io::Error::other("namespace thread panicked"))??;
        let ns = AnonNs { ns, children: Mutex::new(Vec::new()) };
        ns.run(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A path naming the namespace that other processes can open while this value lives
    /// (`/proc/<pid>/fd/<n>`), e.g. for `ip link set X netns PATH`.
    pub fn path(&self) -> String {
        format!("/proc/{}/fd/{}", std::process::id(), self.ns.as_raw_fd())
    }

    /// A command that runs inside the namespace.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        sys::join_on_exec(&mut c, self.ns.as_raw_fd());
        c
    }

    /// Run `argv` inside the namespace; an error if it fails, with its stderr.
    pub fn run(&self, argv: &[&str]) -> io::Result<Output> {
        let out = self.cmd(argv[0]).args(&argv[1..]).output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "{}: {}",
                argv.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(out)
    }

    /// Run `argv` and return its stdout as text.
    pub fn output(&self, argv: &[&str]) -> io::Result<String> {
        Ok(String::from_utf8_lossy(&self.run(argv)?.stdout).into_owned())
    }

    /// Start a long-running process inside the namespace (killed on drop).
    pub fn spawn(&self, argv: &[&str]) -> io::Result<u32> {
        let child = self
            .cmd(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let pid = child.id();
        self.children.lock().unwrap_or_else(|p| p.into_inner()).push(child);
        Ok(pid)
    }

    /// Run `f` on a thread that has joined the namespace; sockets it creates belong to
    /// the namespace for life.
    pub fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let fd = self.ns.try_clone().expect("clone namespace fd");
        std::thread::spawn(move || {
            sys::setns(fd.as_raw_fd()).expect("join namespace");
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// Create a veth pair: `name` here, `peer` in `other`.
    pub fn veth_to(&self, name: &str, other: &AnonNs, peer: &str) -> io::Result<()> {
        let path = other.path();
        self.run(&[
            "ip", "link", "add", "name", name, "type", "veth", "peer", "name", peer, "netns", &path,
        ])?;
        Ok(())
    }

    /// Set a link up.
    pub fn up(&self, link: &str) -> io::Result<()> {
        self.run(&["ip", "link", "set", link, "up"]).map(|_| ())
    }

    /// Add an address (CIDR form) to a link.
    pub fn addr(&self, link: &str, cidr: &str) -> io::Result<()> {
        let mut argv = vec!["ip"];
        if cidr.contains(':') {
            argv.push("-6");
        }
        argv.extend_from_slice(&["addr", "add", cidr, "dev", link]);
        if cidr.contains(':') {
            argv.push("nodad");
        }
        self.run(&argv).map(|_| ())
    }

    /// Set a link's MAC address.
    pub fn mac(&self, link: &str, mac: &str) -> io::Result<()> {
        self.run(&["ip", "link", "set", link, "address", mac]).map(|_| ())
    }
}

impl Drop for AnonNs {
    fn drop(&mut self) {
        let mut children = self.children.lock().unwrap_or_else(|p| p.into_inner());
        for c in children.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// True when the tests can run: root, and every tool in `tools` on the PATH. Otherwise
/// prints why; under CI (`CI` set) that is a failure rather than a skip, so missing
/// packages are never hidden.
pub fn require_root(tools: &[&str]) -> bool {
    let mut missing = Vec::new();
    if !sys::is_root() {
        missing.push("root".to_string());
    }
    for t in tools {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()));
        if !found {
            missing.push((*t).to_string());
        }
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("end-to-end test needs {}", missing.join(", "));
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("skipped: {msg}");
    false
}

/// Poll `cond` every 10 ms until it holds or `wait` has passed; whether it held. End-to-end
/// tests wait on the kernel (links settling, queues binding) with this, never with a bare
/// sleep.
pub fn eventually(wait: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + wait;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// `len` deterministic pseudo-random bytes (xorshift64): test payloads whose corruption
/// no hash comparison can miss by accident.
pub fn pseudo_random(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
