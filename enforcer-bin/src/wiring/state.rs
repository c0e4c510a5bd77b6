//! The state directory: one JSON file per wired workload, `<name>.json`, written before
//! every change to the system (write-ahead), so that a later run can undo whatever a
//! crashed one left.
//!
//! A file is replaced atomically: the new text goes to `.<name>.json.tmp`, which is
//! flushed to disk (`fsync`), renamed over the old file, and the directory is flushed, so
//! after a crash or power loss the file holds either the old or the new record, never a
//! mix. A stray `.tmp` file means the crash came before the rename; it is ignored, and
//! removed by [`StateDir::remove_temporaries`].

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::exec::NsId;
use super::link::LinkSnapshot;
use super::nfqueue::NfqRecord;
use super::{Backend, WiringError};

/// The record format's version; a file of another version is not touched.
pub(crate) const VERSION: u32 = 1;

/// Where an inline wiring is. Every step is recorded before it starts, so a crash during
/// step S leaves `S` in the file; recovery checks the system itself and does not trust
/// the phase to say what is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Phase {
    /// The snapshot is taken; nothing changed yet.
    Recorded,
    /// Moving the interface into the enforcer's namespace as `vex<i>`.
    Moving,
    /// Creating the `<iface>`/`vin<i>` pair.
    CreatingPair,
    /// Giving the new interface the original configuration; setting vin/vex up.
    Configuring,
    /// Installing the steering (nft chains or tc filters).
    Steering,
    /// Wired.
    Wired,
    /// Being unwired: its steering is gone or going; the interface is being restored.
    Unwiring,
}

impl Phase {
    /// Whether the workload's steering belongs in the table.
    pub(crate) fn steered(self) -> bool {
        matches!(self, Phase::Steering | Phase::Wired)
    }
}

/// An inline workload's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InlineRecord {
    pub(crate) index: u16,
    pub(crate) backend: Backend,
    pub(crate) phase: Phase,
}

/// How the workload is wired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WiringRecord {
    Tap,
    Inline(InlineRecord),
    Nfqueue(NfqRecord),
}

impl WiringRecord {
    pub(crate) fn mode(&self) -> &'static str {
        match self {
            WiringRecord::Tap => "tap",
            WiringRecord::Inline(_) => "inline",
            WiringRecord::Nfqueue(_) => "nfqueue",
        }
    }
}

/// One workload's state file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) version: u32,
    pub(crate) name: String,
    pub(crate) netns: PathBuf,
    /// The namespace's identity when it was wired: a path that names another namespace
    /// later (a recreated `/run/netns/NAME`, a reused pid) is not the workload's.
    pub(crate) netns_id: NsId,
    pub(crate) iface: String,
    /// The interface as it was before any change.
    pub(crate) original: LinkSnapshot,
    pub(crate) wiring: WiringRecord,
}

impl Record {
    pub(crate) fn inline(&self) -> Option<&InlineRecord> {
        match &self.wiring {
            WiringRecord::Inline(r) => Some(r),
            _ => None,
        }
    }
}

/// A state file and its record, or why it could not be read.
pub(crate) type Loaded = (PathBuf, Result<Record, WiringError>);

/// The state directory.
#[derive(Clone, Debug)]
pub(crate) struct StateDir {
    dir: PathBuf,
}

fn state_error(path: &Path, what: &str, e: impl std::fmt::Display) -> WiringError {
    WiringError::State { path: path.to_path_buf(), message: format!("{what}: {e}") }
}

impl StateDir {
    /// Open (creating if needed, mode 0700) the directory.
    pub(crate) fn open(dir: PathBuf) -> Result<StateDir, WiringError> {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| state_error(&dir, "cannot create the state directory", e))?;
        Ok(StateDir { dir })
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Every state file with its record or why it could not be read, sorted by name.
    pub(crate) fn load_each(&self) -> Result<Vec<Loaded>, WiringError> {
        let entries =
            fs::read_dir(&self.dir).map_err(|e| state_error(&self.dir, "cannot list", e))?;
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| state_error(&self.dir, "cannot list", e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".json") && !name.starts_with('.') {
                paths.push(entry.path());
            }
        }
        paths.sort();
        Ok(paths
            .into_iter()
            .map(|p| {
                let r = fs::read(&p)
                    .map_err(|e| state_error(&p, "cannot read", e))
                    .and_then(|b| parse(&p, &b));
                (p, r)
            })
            .collect())
    }

    /// Write `record` atomically (temporary file, fsync, rename, fsync of the directory).
    pub(crate) fn save(&self, record: &Record) -> Result<(), WiringError> {
        let path = self.file(&record.name);
        let tmp = self.dir.join(format!(".{}.json.tmp", record.name));
        let mut text = serde_json::to_vec_pretty(record)
            .map_err(|e| state_error(&path, "cannot encode", e))?;
        text.push(b'\n');
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| state_error(&path, "cannot write", e))
    }

    /// Remove the record of `name` (absent is fine).
    pub(crate) fn remove(&self, name: &str) -> Result<(), WiringError> {
        let path = self.file(name);
        match fs::remove_file(&path) {
            Ok(()) => File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| state_error(&self.dir, "cannot sync", e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(state_error(&path, "cannot remove", e)),
        }
    }

    /// Remove `.tmp` files a crash left between writing and renaming.
    pub(crate) fn remove_temporaries(&self) -> Result<(), WiringError> {
        let entries =
            fs::read_dir(&self.dir).map_err(|e| state_error(&self.dir, "cannot list", e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".json.tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(())
    }
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Record, WiringError> {
    let record: Record =
        serde_json::from_slice(bytes).map_err(|e| state_error(path, "not a state record", e))?;
    if record.version != VERSION {
        return Err(state_error(
            path,
            "unsupported",
            format!("record version {} (this enforcer writes {VERSION})", record.version),
        ));
    }
    Ok(record)
}
