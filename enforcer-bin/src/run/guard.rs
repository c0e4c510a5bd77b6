//! The fail-open guard: a child process (`enforcer guard`, hidden) that outlives the
//! enforcer. The enforcer writes it the nft script that turns every inline workload's
//! steering into a straight pass-through, and keeps the write end of the pipe open for
//! its whole life. When that pipe reaches end-of-file without a `disarm` line — the
//! enforcer died (SIGKILL, a crash) — the guard loads the script, so inline workloads
//! keep talking (uninspected) until the next start restores them.
//!
//! Protocol (stdin, JSON lines): `{"script":"..."}` replaces the script; `{"disarm":true}`
//! ends the guard without doing anything (a clean stop unwired everything already).
//! The guard ignores SIGINT, which a terminal sends to the whole process group: the
//! enforcer handles it and disarms the guard.

use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, Write};
use std::process::{Child, ChildStdin, Command, Stdio};

#[derive(Debug, Default, Serialize, Deserialize)]
struct Message {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    script: Option<String>,
    #[serde(default)]
    disarm: bool,
}

/// The enforcer's handle on its guard.
#[derive(Debug)]
pub struct Guard {
    child: Child,
    stdin: ChildStdin,
}

impl Guard {
    /// Start the guard with `script`.
    pub fn spawn(script: &str) -> io::Result<Guard> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("guard")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take().ok_or_else(|| io::Error::other("guard without stdin"))?;
        let mut g = Guard { child, stdin };
        g.update(script)?;
        Ok(g)
    }

    /// Replace the script.
    pub fn update(&mut self, script: &str) -> io::Result<()> {
        send(&mut self.stdin, &Message { script: Some(script.into()), disarm: false })
    }

    /// End the guard without action and wait for it.
    pub fn disarm(mut self) {
        let _ = send(&mut self.stdin, &Message { script: None, disarm: true });
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

fn send(w: &mut impl Write, m: &Message) -> io::Result<()> {
    let mut line = serde_json::to_vec(m).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()
}

/// The guard's side: read messages until end-of-file; then, unless disarmed, load the
/// last script with `nft -f -`. Returns what it did.
pub fn serve(input: impl BufRead) -> io::Result<String> {
    let _ = signal_hook::flag::register(
        signal_hook::consts::SIGINT,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let mut script = None;
    for line in input.lines() {
        let Ok(line) = line else { break };
        match serde_json::from_str::<Message>(&line) {
            Ok(m) if m.disarm => return Ok("disarmed".into()),
            Ok(m) => script = m.script.or(script),
            Err(_) => continue,
        }
    }
    let Some(script) = script.filter(|s| !s.is_empty()) else {
        return Ok("no script".into());
    };
    let mut nft = Command::new("nft").args(["-f", "-"]).stdin(Stdio::piped()).spawn()?;
    if let Some(mut i) = nft.stdin.take() {
        i.write_all(script.as_bytes())?;
    }
    let status = nft.wait()?;
    if status.success() {
        Ok("enforcer gone: inline workloads failed open (pass-through table loaded)".into())
    } else {
        Err(io::Error::other(format!("nft -f - failed ({status}): inline workloads stay cut off")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disarmed_or_scriptless_guard_does_nothing() {
        let input = b"{\"script\":\"x\"}\n{\"disarm\":true}\n";
        assert_eq!(serve(&input[..]).unwrap(), "disarmed");
        assert_eq!(serve(&b"garbage\n"[..]).unwrap(), "no script");
    }
}
