//! The replay driver: capture files through a fresh engine each, session records out.
//!
//! For each file, [`Replayer::replay_file`] creates a new [`Ctx`] from the configuration,
//! then for every frame of the capture, in file order:
//!
//! ```text
//! ctx.handle_timeout(frame time)   expire sessions whose idle timer is due
//! ctx.recv_packet(frame)           the verdict is ignored (a capture is a tap)
//! ctx.poll_event() until None      SessionEnd records -> eve::write_flow
//! ```
//!
//! and at the end of the file `flush` ends every live session (reason `flushed`, EVE reason
//! "shutdown"), draining events between calls so none is dropped. Counters, capture tallies
//! and session-end tallies are summed over files in a [`Summary`].
//!
//! Records go to whatever `Write` is given (wrap files and stdout in a large `BufWriter`),
//! or nowhere. Nothing is allocated per packet here: the frame buffer belongs to the
//! capture reader and events are `Copy`.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dpi_core::endpoint::PolicyStore;
use dpi_core::{Config, Counters, Ctx, Event};
use std::sync::Arc;

use crate::capture::{CaptureError, CaptureReader, CaptureStats, CaptureWarning};
use crate::eve;

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// A capture could not be read (the message names the file).
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// Writing a record failed (a full disk, a closed pipe).
    #[error("cannot write records: {0}")]
    Output(#[source] io::Error),
}

/// Sessions created, by protocol (from the engine counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SessionsByProto {
    /// TCP.
    pub tcp: u64,
    /// UDP.
    pub udp: u64,
    /// ICMP and ICMPv6.
    pub icmp: u64,
    /// Any other IP protocol.
    pub other: u64,
}

impl SessionsByProto {
    /// All protocols together.
    pub fn total(&self) -> u64 {
        self.tcp + self.udp + self.icmp + self.other
    }
}

/// Outcome of one capture file.
#[derive(Clone, Debug)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// What the reader saw.
    pub capture: CaptureStats,
    /// Where the file broke, if it did.
    pub warning: Option<CaptureWarning>,
    /// This file's engine counters.
    pub counters: Counters,
    /// Sessions ended (records produced, written or not).
    pub sessions_ended: u64,
    /// Wall time spent on the file.
    pub elapsed: Duration,
}

/// Totals over every file replayed so far.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Files replayed (opened and recognised).
    pub files: u64,
    /// Files that could not be read, with the message.
    pub failed: Vec<(PathBuf, String)>,
    /// Files that broke part-way.
    pub warnings: Vec<CaptureWarning>,
    /// Packet records read, delivered or skipped.
    pub packets: u64,
    /// Captured bytes of those records.
    pub bytes: u64,
    /// Frames given to the engine.
    pub frames: u64,
    /// Skipped packets by link type (see [`crate::capture::CaptureStats::skipped`]).
    pub skipped: BTreeMap<u32, u64>,
    /// Engine counters, summed.
    pub counters: Counters,
    /// Sessions ended, by [`dpi_core::EndReason::name`].
    pub ended: BTreeMap<&'static str, u64>,
    /// Flow records written (0 without a record sink).
    pub records: u64,
    /// Alert (violation) lines written.
    pub alerts: u64,
    /// Connection report lines written.
    pub connections: u64,
    /// Application update lines written.
    pub app_updates: u64,
    /// Frames the engine asked to transmit (TCP resets); a replay has no wire to send them.
    pub transmits: u64,
    /// Wall time spent replaying (opening, reading, the engine and writing records).
    pub elapsed: Duration,
}

impl Summary {
    /// Sessions created, by protocol.
    pub fn sessions_created(&self) -> SessionsByProto {
        let c = &self.counters;
        SessionsByProto {
            tcp: c.sessions_tcp,
            udp: c.sessions_udp,
            icmp: c.sessions_icmp,
            other: c.sessions_other,
        }
    }

    /// Sessions ended, all reasons.
    pub fn sessions_ended(&self) -> u64 {
        self.ended.values().sum()
    }

    /// Skipped packets, all link types.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Packet records per second of wall time (0 if no time was measured).
    pub fn packets_per_sec(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.packets as f64 / s
        } else {
            0.0
        }
    }
}

/// Drives captures through the engine; see the module docs.
pub struct Replayer<'a> {
    config: Config,
    store: Option<Arc<PolicyStore>>,
    records: Option<&'a mut dyn Write>,
    progress: Option<&'a dyn Fn(u64)>,
    lines: eve::EventLines,
    summary: Summary,
}

impl core::fmt::Debug for Replayer<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Replayer")
            .field("config", &self.config)
            .field("records", &self.records.is_some())
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

impl<'a> Replayer<'a> {
    /// A replayer creating each file's engine from `config`, writing no records.
    pub fn new(config: Config) -> Self {
        Replayer {
            config,
            store: None,
            records: None,
            progress: None,
            lines: eve::EventLines::new(true),
            summary: Summary::default(),
        }
    }

    /// Write EVE flow records to `out` (give it a large `BufWriter`; flushing is the
    /// caller's).
    pub fn with_records(mut self, out: &'a mut dyn Write) -> Self {
        self.records = Some(out);
        self
    }

    /// Call `progress` with the number of bytes of every read from a capture file.
    /// Police the replay with `store` (workloads, modes, rules): flow records then carry
    /// the decision, and violations (EVE `alert`) and connection reports (EVE
    /// `connection`) are written too.
    pub fn with_policy(mut self, store: Arc<PolicyStore>) -> Self {
        self.store = Some(store);
        self
    }

    pub fn with_progress(mut self, progress: &'a dyn Fn(u64)) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Totals so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The totals, ending the replay.
    pub fn into_summary(self) -> Summary {
        self.summary
    }

    /// Replay one capture file. A file that cannot be read is also noted in
    /// [`Summary::failed`]; replaying other files afterwards is fine.
    pub fn replay_file(&mut self, path: impl AsRef<Path>) -> Result<FileReport, ReplayError> {
        let path = path.as_ref();
        let start = Instant::now();
        match CaptureReader::open(path) {
            Ok(cap) => self.run(path, cap, start, true),
            Err(e) => {
                self.summary.failed.push((path.into(), e.to_string()));
                Err(e.into())
            }
        }
    }

    /// Replay a capture read from `input`; `path` names it in messages.
    pub fn replay_reader<R: Read>(
        &mut self,
        path: impl AsRef<Path>,
        input: R,
    ) -> Result<FileReport, ReplayError> {
        let path = path.as_ref();
        let start = Instant::now();
        let input = Counted { inner: input, progress: self.progress };
        match CaptureReader::from_reader(path, input) {
            Ok(cap) => self.run(path, cap, start, false),
            Err(e) => {
                self.summary.failed.push((path.into(), e.to_string()));
                Err(e.into())
            }
        }
    }

    /// The replay loop. `progress_by_offset`: report progress from the reader's offset
    /// (mapped files are not read through `Counted`).
    fn run<R: Read>(
        &mut self,
        path: &Path,
        mut cap: CaptureReader<R>,
        start: Instant,
        progress_by_offset: bool,
    ) -> Result<FileReport, ReplayError> {
        let progress = if progress_by_offset { self.progress } else { None };
        let mut reported = 0u64;
        let mut ctx = Ctx::new(self.config.clone());
        let names: Box<dyn eve::WorkloadNames> = match &self.store {
            Some(store) => {
                ctx.set_policy_store(store.clone());
                Box::new(eve::StoreNames(store.clone()))
            }
            None => Box::new(eve::NoNames),
        };
        let mut sink = Sink {
            out: self.records.as_deref_mut(),
            lines: &mut self.lines,
            names: &*names,
            ended: 0,
            summary: &mut self.summary,
        };

        let mut failure: Option<ReplayError> = None;
        loop {
            match cap.next_frame() {
                Ok(Some(f)) => {
                    ctx.handle_timeout(f.ts);
                    ctx.recv_packet(f.data);
                    if let Err(e) = sink.drain(&mut ctx) {
                        failure = Some(e);
                        break;
                    }
                    if let Some(p) = progress {
                        let at = cap.offset();
                        if at - reported >= PROGRESS_STEP {
                            p(at - reported);
                            reported = at;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // An I/O error part-way: still end the sessions seen so far.
                    failure = Some(e.into());
                    break;
                }
            }
        }
        if !matches!(failure, Some(ReplayError::Output(_))) {
            let flushed = (|| {
                while ctx.flush() > 0 {
                    sink.drain(&mut ctx)?;
                }
                sink.drain(&mut ctx)
            })();
            if let Err(e) = flushed {
                failure = Some(e);
            }
        }
        let sessions_ended = sink.ended;

        let stats = cap.stats().clone();
        let warning = cap.warning().cloned();
        let s = &mut self.summary;
        s.files += 1;
        s.packets += stats.packets;
        s.bytes += stats.bytes;
        s.frames += stats.frames;
        for (&lt, &n) in &stats.skipped {
            *s.skipped.entry(lt).or_insert(0) += n;
        }
        s.counters.merge(ctx.counters());
        if let Some(w) = &warning {
            s.warnings.push(w.clone());
        }
        let elapsed = start.elapsed();
        s.elapsed += elapsed;
        if let Some(e) = failure {
            if let ReplayError::Capture(c) = &e {
                s.failed.push((path.into(), c.to_string()));
            }
            return Err(e);
        }
        Ok(FileReport {
            path: path.into(),
            capture: stats,
            warning,
            counters: *ctx.counters(),
            sessions_ended,
            elapsed,
        })
    }
}

/// Bytes between progress reports of a mapped file.
const PROGRESS_STEP: u64 = 4 << 20;

/// Where drained events go.
struct Sink<'s, 'w> {
    out: Option<&'s mut (dyn Write + 'w)>,
    lines: &'s mut eve::EventLines,
    names: &'s dyn eve::WorkloadNames,
    ended: u64,
    summary: &'s mut Summary,
}

impl Sink<'_, '_> {
    /// Take every pending event; write the lines of those that have one.
    fn drain(&mut self, ctx: &mut Ctx) -> Result<(), ReplayError> {
        while let Some(ev) = ctx.poll_event() {
            match &ev {
                Event::SessionEnd(rec) => {
                    self.ended += 1;
                    let reason = rec.end.map_or("unknown", |r| r.name());
                    *self.summary.ended.entry(reason).or_insert(0) += 1;
                }
                Event::Violation(_) => self.summary.alerts += 1,
                Event::Connection(_) => self.summary.connections += 1,
                Event::AppUpdate(_) => self.summary.app_updates += 1,
                _ => {}
            }
            if let Some(out) = self.out.as_deref_mut() {
                let wrote = self.lines.write(out, &ev, self.names).map_err(ReplayError::Output)?;
                if wrote && matches!(ev, Event::SessionEnd(_)) {
                    self.summary.records += 1;
                }
            }
        }
        // Frames the engine wanted to send (resets) have nowhere to go in a replay.
        while ctx.poll_transmit().is_some() {
            self.summary.transmits += 1;
        }
        Ok(())
    }
}

/// A reader reporting how many bytes each read returned.
struct Counted<'p, R> {
    inner: R,
    progress: Option<&'p dyn Fn(u64)>,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(p) = self.progress {
            p(n as u64);
        }
        Ok(n)
    }
}
