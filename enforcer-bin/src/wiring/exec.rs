//! Running the network tools inside a namespace: every command is
//! `nsenter --net=PATH -- PROGRAM ARGS...`, so no code here calls `setns` (and no
//! `unsafe` is needed). A failed command becomes a [`WiringError::Command`] naming the
//! workload, the whole command line and its standard error.
//!
//! Commands run with `LC_ALL=C` so their messages (which some callers test, such as
//! "does not exist") are not translated.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::WiringError;

/// A network namespace, named by a path (`/proc/PID/ns/net`, `/run/netns/NAME`, or any
/// other path to an nsfs file) and the workload on whose behalf commands run there.
#[derive(Clone, Debug)]
pub(crate) struct Ns<'a> {
    pub(crate) path: &'a Path,
    pub(crate) who: &'a str,
}

/// A command that ran and exited non-zero.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) command: String,
    pub(crate) status: String,
    pub(crate) stderr: String,
}

impl Failed {
    pub(crate) fn into_error(self, who: &str) -> WiringError {
        WiringError::Command {
            workload: who.to_string(),
            command: self.command,
            status: self.status,
            stderr: self.stderr,
        }
    }
}

impl<'a> Ns<'a> {
    pub(crate) fn new(path: &'a Path, who: &'a str) -> Ns<'a> {
        Ns { path, who }
    }

    /// Run `argv`; its standard output, or an error when it exits non-zero.
    pub(crate) fn run(&self, argv: &[&str]) -> Result<String, WiringError> {
        self.attempt(argv, None)?.map_err(|f| f.into_error(self.who))
    }

    /// Run `argv` with `input` on its standard input.
    pub(crate) fn run_input(&self, argv: &[&str], input: &str) -> Result<String, WiringError> {
        self.attempt(argv, Some(input))?.map_err(|f| f.into_error(self.who))
    }

    /// Run `argv` when its failure is an answer (a `-C` check, a `show` of something that
    /// may be absent): `Ok(Ok(stdout))`, `Ok(Err(failed))`, or an error if it could not
    /// be started.
    pub(crate) fn attempt(
        &self,
        argv: &[&str],
        input: Option<&str>,
    ) -> Result<Result<String, Failed>, WiringError> {
        let command = command_line(self.path, argv);
        let spawn_error = |source| WiringError::Spawn {
            workload: self.who.to_string(),
            command: command.clone(),
            source,
        };
        let mut net = std::ffi::OsString::from("--net=");
        net.push(self.path.as_os_str());
        let mut cmd = Command::new("nsenter");
        cmd.arg(net)
            .arg("--")
            .args(argv)
            .env("LC_ALL", "C")
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(spawn_error)?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            // A tool that exits early closes the pipe; its status then tells what failed.
            let _ = stdin.write_all(text.as_bytes());
        }
        let out = child.wait_with_output().map_err(spawn_error)?;
        if out.status.success() {
            return Ok(Ok(String::from_utf8_lossy(&out.stdout).into_owned()));
        }
        let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if stderr.is_empty() {
            stderr = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        Ok(Err(Failed { command, status: out.status.to_string(), stderr }))
    }

    /// An error for output this module does not understand.
    pub(crate) fn bad_output(&self, argv: &[&str], message: impl Into<String>) -> WiringError {
        WiringError::Output {
            workload: self.who.to_string(),
            command: command_line(self.path, argv),
            message: message.into(),
        }
    }
}

/// `nsenter --net=PATH -- ARGV...`, each word quoted for a POSIX shell where needed.
pub(crate) fn command_line(ns: &Path, argv: &[&str]) -> String {
    let mut s = format!("nsenter --net={} --", quote(&ns.to_string_lossy()));
    for a in argv {
        s.push(' ');
        s.push_str(&quote(a));
    }
    s
}

/// `word` as a shell word: unchanged when it is plain, else in single quotes.
pub(crate) fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The identity of a namespace: the device and inode of its nsfs file. Two paths name
/// the same namespace exactly when these agree (while it lives; the kernel may reuse an
/// inode number after a namespace is freed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct NsId {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

impl NsId {
    pub(crate) fn of(path: &Path) -> std::io::Result<NsId> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path)?;
        Ok(NsId { dev: m.dev(), ino: m.ino() })
    }
}

/// A namespace path other processes can open: `/proc/self/...` and
/// `/proc/thread-self/...` mean the *opening* process, which for a command run in another
/// namespace is not us, so they are rewritten to `/proc/<our pid>/...`.
pub(crate) fn absolute_ns_path(path: &Path) -> PathBuf {
    let pid = std::process::id().to_string();
    if let Ok(rest) = path.strip_prefix("/proc/self") {
        return Path::new("/proc").join(&pid).join(rest);
    }
    if let Ok(rest) = path.strip_prefix("/proc/thread-self") {
        // Only the namespace files of the whole process are stable; a thread's own
        // namespace may differ, but the path names the process's if it is the main one.
        return Path::new("/proc").join(&pid).join(rest);
    }
    path.to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_pasteable() {
        let line = command_line(
            Path::new("/run/netns/c1"),
            &["iptables-nft", "-m", "comment", "--comment", "enforcer:web 1", "-j", "X"],
        );
        assert_eq!(
            line,
            "nsenter --net=/run/netns/c1 -- iptables-nft -m comment --comment 'enforcer:web 1' -j X"
        );
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn proc_self_is_made_absolute() {
        let p = absolute_ns_path(Path::new("/proc/self/ns/net"));
        assert_eq!(p, PathBuf::from(format!("/proc/{}/ns/net", std::process::id())));
        assert_eq!(absolute_ns_path(Path::new("/run/netns/x")), PathBuf::from("/run/netns/x"));
    }
}
