//! [`WiringError`]: what went wrong while wiring or unwiring a workload, and where.

use std::io;
use std::path::PathBuf;

/// Why wiring, unwiring or recovery failed. Every message names the workload (or
/// `enforcer` for the shared service pair and table); a failed command is quoted in full,
/// ready to paste into a shell, with its exit status and standard error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WiringError {
    /// A command ran and failed.
    #[error("workload {workload}: `{command}` failed ({status}): {stderr}")]
    Command {
        /// The workload being wired (`enforcer` for shared state).
        workload: String,
        /// The command line, as run (with its `nsenter --net=PATH` prefix).
        command: String,
        /// The exit status.
        status: String,
        /// What it wrote to standard error (trimmed).
        stderr: String,
    },
    /// A command could not be started (the tool is not installed, or is not on `PATH`).
    #[error("workload {workload}: cannot run `{command}`: {source} (is the package installed?)")]
    Spawn {
        /// The workload being wired.
        workload: String,
        /// The command line.
        command: String,
        /// Why.
        source: io::Error,
    },
    /// A command's output was not what this module understands (`ip -j` JSON, `nft -j`).
    #[error("workload {workload}: cannot understand the output of `{command}`: {message}")]
    Output {
        /// The workload being wired.
        workload: String,
        /// The command line.
        command: String,
        /// What was wrong.
        message: String,
    },
    /// A network namespace path does not name a namespace.
    #[error("workload {workload}: network namespace {} cannot be opened: {source}", path.display())]
    Namespace {
        /// The workload (or `enforcer` for the enforcer's own namespace).
        workload: String,
        /// The path given.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The interface is not in the workload's namespace.
    #[error("workload {workload}: no interface {iface:?} in network namespace {}", netns.display())]
    NoSuchInterface {
        /// The workload.
        workload: String,
        /// The interface name.
        iface: String,
        /// The namespace looked in.
        netns: PathBuf,
    },
    /// A name that cannot be used: a workload name that cannot name a state file, an
    /// interface name longer than 15 bytes, a MAC that is not a unicast address.
    #[error("workload {workload}: {message}")]
    Invalid {
        /// The workload (as given).
        workload: String,
        /// What is wrong.
        message: String,
    },
    /// Another workload holds the resource (inline index, interface, link name).
    #[error("workload {workload}: {what} is already used by workload {other}")]
    InUse {
        /// The workload being wired.
        workload: String,
        /// What is taken (`inline index 3`, `interface eth0 of that namespace`).
        what: String,
        /// The workload that has it, or a description of the stray object.
        other: String,
    },
    /// The workload is not wired (nothing in the state directory).
    #[error("workload {workload}: not wired")]
    NotWired {
        /// The workload.
        workload: String,
    },
    /// A state file could not be read, written or parsed.
    #[error("state file {}: {message}", path.display())]
    State {
        /// The file (or the state directory).
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// An inline backend cannot be used: its probe failed (naming the missing kernel
    /// feature), or it cannot express this workload.
    #[error("the {backend} backend cannot be used: {message}")]
    Backend {
        /// `nft`, `tc`, or `inline` when no backend works.
        backend: &'static str,
        /// Why.
        message: String,
    },
    /// Wiring failed, and undoing the steps already taken failed too. The state file is
    /// kept, so `unwire`, `shutdown` or the next [`Wiring::open`] can try again.
    ///
    /// [`Wiring::open`]: super::Wiring::open
    #[error("{error}; rolling back failed too: {rollback}")]
    RollbackFailed {
        /// Why wiring failed.
        error: Box<WiringError>,
        /// Why the rollback failed.
        rollback: Box<WiringError>,
    },
}
