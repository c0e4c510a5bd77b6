//! The control socket: `<state_dir>/control.sock`, a Unix stream socket (mode 0600, so
//! root only). A client sends one JSON request line and reads one JSON reply line:
//!
//! ```text
//! {"cmd":"status"}                                  → {"ok":true,"result":{...Status}}
//! {"cmd":"stats"}                                   → {"ok":true,"result":{...Stats}}
//! {"cmd":"set_mode","workload":"web","mode":"protect"}
//! {"cmd":"add","workload":{"name":"db","netns":"/run/netns/db","mode":"protect"}}
//!                       the same fields as a run file's [[workload]] (iface, datapath,
//!                       queue optional)
//! {"cmd":"remove","workload":"db"}
//! {"cmd":"reload"}      re-read the policy file
//! {"cmd":"stop"}        unwire everything and exit
//! anything else                                     → {"ok":false,"error":"..."}
//! ```
//!
//! A request is at most [`MAX_REQUEST`] bytes and must arrive within [`READ_TIMEOUT`]; a
//! slow or oversized client gets an error reply and is dropped, never stalls the daemon.

use super::{Daemon, RunError};
use crate::config::run_file::RunFile;
use crate::config::Format;
use dpi_core::endpoint::Mode;
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Longest request line.
pub const MAX_REQUEST: u64 = 64 << 10;
/// Longest wait for a request line.
pub const READ_TIMEOUT: Duration = Duration::from_secs(1);

/// Where the socket of a state directory is.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("control.sock")
}

/// A control request.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Workloads and their wiring.
    Status,
    /// Worker and port counters.
    Stats,
    /// Change a workload's mode.
    SetMode {
        /// The workload.
        workload: String,
        /// `discover`, `monitor` or `protect`.
        mode: String,
    },
    /// Add a workload (the fields of a run file's `[[workload]]`).
    Add {
        /// The workload table.
        workload: Value,
    },
    /// Remove a workload (restoring its link).
    Remove {
        /// Its name.
        workload: String,
    },
    /// Re-read the policy file.
    Reload,
    /// Stop the daemon.
    Stop,
}

/// The listening socket; removed when dropped.
#[derive(Debug)]
pub struct Listener {
    listener: UnixListener,
    path: PathBuf,
}

impl Listener {
    /// Bind `path`. A socket file nobody answers on (left by a killed run) is replaced; one
    /// that answers means another enforcer is running on this state directory.
    pub fn bind(path: &Path) -> Result<Listener, RunError> {
        let what = format!("control socket {}", path.display());
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(RunError::Io {
                    what,
                    source: io::Error::new(
                        io::ErrorKind::AddrInUse,
                        "another enforcer is running with this state directory",
                    ),
                });
            }
            let _ = std::fs::remove_file(path);
        }
        let err = |source| RunError::Io { what: what.clone(), source };
        let listener = UnixListener::bind(path).map_err(err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        Ok(Listener { listener, path: path.to_path_buf() })
    }

    /// Answer the clients waiting now, or sleep `tick` when there are none.
    pub fn serve(&self, d: &mut Daemon, tick: Duration) {
        let mut served = false;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    served = true;
                    if let Err(e) = answer(stream, d) {
                        eprintln!("enforcer: control client: {e}");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => break,
                Err(e) => {
                    eprintln!("enforcer: control socket: {e}");
                    break;
                }
            }
        }
        if !served {
            std::thread::sleep(tick);
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn answer(stream: UnixStream, d: &mut Daemon) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new((&stream).take(MAX_REQUEST)).read_line(&mut line)?;
    let reply = match serde_json::from_str::<Request>(line.trim()) {
        Ok(req) => match handle(req, d) {
            Ok(v) => json!({ "ok": true, "result": v }),
            Err(e) => json!({ "ok": false, "error": e }),
        },
        Err(e) => json!({ "ok": false, "error": format!("bad request: {e}") }),
    };
    let mut out = serde_json::to_vec(&reply).map_err(io::Error::other)?;
    out.push(b'\n');
    (&stream).write_all(&out)
}

fn handle(req: Request, d: &mut Daemon) -> Result<Value, String> {
    let to_value = |v: Result<Value, serde_json::Error>| v.map_err(|e| e.to_string());
    match req {
        Request::Status => to_value(serde_json::to_value(d.status())),
        Request::Stats => to_value(serde_json::to_value(d.stats())),
        Request::SetMode { workload, mode } => {
            let m = Mode::from_name(&mode)
                .ok_or_else(|| format!("mode {mode:?}: expected discover, monitor or protect"))?;
            d.set_mode(&workload, m).map_err(|e| e.to_string())?;
            Ok(Value::Null)
        }
        Request::Add { workload } => {
            let doc = json!({ "workload": [workload] }).to_string();
            let parsed =
                RunFile::parse(&doc, "add request", Format::Json).map_err(|e| e.to_string())?;
            let w = parsed.workloads.into_iter().next().ok_or("no workload in the request")?;
            d.add_workload(w).map_err(|e| e.to_string())?;
            Ok(Value::Null)
        }
        Request::Remove { workload } => {
            d.remove_workload(&workload).map_err(|e| e.to_string())?;
            Ok(Value::Null)
        }
        Request::Reload => {
            d.reload_policy().map_err(|e| e.to_string())?;
            Ok(Value::Null)
        }
        Request::Stop => {
            d.stop.store(true, Ordering::Relaxed);
            Ok(Value::Null)
        }
    }
}

/// Send one request line to the daemon at `path` and return its reply.
pub fn request(path: &Path, line: &str) -> io::Result<Value> {
    let mut s = UnixStream::connect(path)?;
    // A mode switch re-plumbs links: allow it time.
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.write_all(line.trim_end().as_bytes())?;
    s.write_all(b"\n")?;
    let mut reply = String::new();
    BufReader::new(&s).read_line(&mut reply)?;
    serde_json::from_str(&reply).map_err(|e| io::Error::other(format!("bad reply {reply:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_unknown_ones_are_refused() {
        let r: Request =
            serde_json::from_str(r#"{"cmd":"set_mode","workload":"a","mode":"protect"}"#).unwrap();
        assert_eq!(r, Request::SetMode { workload: "a".into(), mode: "protect".into() });
        assert_eq!(serde_json::from_str::<Request>(r#"{"cmd":"stop"}"#).unwrap(), Request::Stop);
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"format_disk"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"set_mode","workload":"a"}"#).is_err());
        assert!(serde_json::from_str::<Request>("not json").is_err());
    }
}
