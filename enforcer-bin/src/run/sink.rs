//! Where the workers' report lines go: one writer (stdout or a file) shared by every
//! worker. A worker formats the events of one loop turn into its own buffer and hands the
//! whole batch over under the lock, so lines never interleave and the lock is taken once
//! per turn, not per event. Reports are per connection and per interval, never per packet,
//! so one writer keeps up.
//!
//! A failed write (disk full, a closed pipe) never stops the data path: the batch is
//! counted as lost (`report_lines_lost`) and the first error is logged.

use super::clock::Clock;
use crate::config::run_file::ReportTarget;
use crate::eve::{EventLines, StoreNames};
use dpi_core::{Ctx, Event};
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// The shared report writer.
pub struct ReportSink {
    out: Mutex<Box<dyn Write + Send>>,
    target: Option<ReportTarget>,
    written: AtomicU64,
    lost: AtomicU64,
    warned: AtomicBool,
}

impl std::fmt::Debug for ReportSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportSink")
            .field("written", &self.written.load(Ordering::Relaxed))
            .field("lost", &self.lost.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ReportSink {
    /// Open the target (a file is created or appended to).
    pub fn open(target: &ReportTarget) -> io::Result<ReportSink> {
        let mut sink = ReportSink::new(open_target(target)?);
        sink.target = Some(target.clone());
        Ok(sink)
    }

    /// Open the report file again (after log rotation moved it away); stdout stays.
    /// On an error the old file is kept.
    pub fn reopen(&self) -> io::Result<()> {
        let Some(target @ ReportTarget::File(_)) = &self.target else { return Ok(()) };
        let fresh = open_target(target)?;
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = out.flush();
        *out = fresh;
        Ok(())
    }

    /// A sink writing to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> ReportSink {
        ReportSink {
            out: Mutex::new(out),
            target: None,
            written: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            warned: AtomicBool::new(false),
        }
    }

    /// Write `buf` (`lines` whole lines) and flush.
    pub fn write_batch(&self, buf: &[u8], lines: u64) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        match out.write_all(buf).and_then(|()| out.flush()) {
            Ok(()) => {
                self.written.fetch_add(lines, Ordering::Relaxed);
            }
            Err(e) => {
                self.lost.fetch_add(lines, Ordering::Relaxed);
                if !self.warned.swap(true, Ordering::Relaxed) {
                    eprintln!("enforcer: writing reports failed (lines are counted as lost): {e}");
                }
            }
        }
    }

    /// Lines written.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Lines lost to write errors.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

fn open_target(target: &ReportTarget) -> io::Result<Box<dyn Write + Send>> {
    Ok(match target {
        ReportTarget::Stdout => Box::new(io::stdout()),
        ReportTarget::File(p) => Box::new(OpenOptions::new().create(true).append(true).open(p)?),
    })
}

/// Events seen by one worker, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EventCounts {
    /// Sessions ended.
    pub sessions_ended: u64,
    /// Policy violations.
    pub violations: u64,
    /// Connection reports.
    pub connections: u64,
    /// Application updates.
    pub app_updates: u64,
    /// Threats.
    pub threats: u64,
}

/// One worker's side of the sink: drains its engine's events into lines.
#[derive(Debug)]
pub struct EventPump {
    lines: EventLines,
    names: StoreNames,
    buf: Vec<u8>,
    pending: u64,
    /// Events seen so far.
    pub counts: EventCounts,
}

/// A batch buffer beyond this is handed over at once, and shrunk after.
const BATCH_BYTES: usize = 256 << 10;

impl EventPump {
    /// A pump naming workloads through `names`; `flows` adds one line per ended session.
    pub fn new(names: StoreNames, flows: bool) -> EventPump {
        EventPump {
            lines: EventLines::new(flows),
            names,
            buf: Vec::with_capacity(16 << 10),
            pending: 0,
            counts: EventCounts::default(),
        }
    }

    /// Take every pending event of `ctx` and write their lines to `sink`.
    pub fn drain(&mut self, ctx: &mut Ctx, sink: &ReportSink) {
        while let Some(ev) = ctx.poll_event() {
            let c = &mut self.counts;
            match &ev {
                Event::SessionEnd(_) => c.sessions_ended += 1,
                Event::Violation(_) => c.violations += 1,
                Event::Connection(_) => c.connections += 1,
                Event::AppUpdate(_) => c.app_updates += 1,
                Event::Threat(_) => c.threats += 1,
                _ => {}
            }
            // Writing to a Vec cannot fail; serialisation of these types cannot either.
            if let Ok(true) = self.lines.write(&mut self.buf, &ev, &self.names) {
                self.pending += 1;
            }
            if self.buf.len() >= BATCH_BYTES {
                self.hand_over(sink);
            }
        }
        if self.pending > 0 {
            self.hand_over(sink);
        }
    }

    fn hand_over(&mut self, sink: &ReportSink) {
        sink.write_batch(&self.buf, self.pending);
        self.buf.clear();
        self.buf.shrink_to(BATCH_BYTES);
        self.pending = 0;
    }
}

/// What every worker runs: one engine context, its clock, and the pump of its events to
/// the shared sink.
#[derive(Debug)]
pub struct Engine {
    /// The engine context (one per worker).
    pub ctx: Ctx,
    clock: Clock,
    pump: EventPump,
    sink: std::sync::Arc<ReportSink>,
}

impl Engine {
    /// An engine writing its events (through `pump`) to `sink`.
    pub fn new(ctx: Ctx, clock: Clock, pump: EventPump, sink: std::sync::Arc<ReportSink>) -> Self {
        Engine { ctx, clock, pump, sink }
    }

    /// Advance the engine's timers to now.
    pub fn tick(&mut self) {
        self.ctx.handle_timeout(self.clock.now());
    }

    /// Write the pending events' lines.
    pub fn drain(&mut self) {
        self.pump.drain(&mut self.ctx, &self.sink);
    }

    /// Events seen so far.
    pub fn counts(&self) -> EventCounts {
        self.pump.counts
    }

    /// End every session and write the last reports (the event queue is bounded, so
    /// flush and drain in rounds).
    pub fn finish(&mut self) {
        let mut rounds = 0;
        while self.ctx.flush() > 0 && rounds < 1 << 16 {
            self.drain();
            rounds += 1;
        }
        self.ctx.flush();
        self.drain();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn reopen_follows_log_rotation() {
        let dir = std::env::temp_dir().join(format!("enforcer-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("reports.json");
        let sink = ReportSink::open(&ReportTarget::File(path.clone())).unwrap();
        sink.write_batch(b"old\n", 1);
        std::fs::rename(&path, dir.join("reports.json.1")).unwrap();
        sink.reopen().unwrap();
        sink.write_batch(b"new\n", 1);
        assert_eq!(std::fs::read_to_string(dir.join("reports.json.1")).unwrap(), "old\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn batches_are_written_whole_and_failures_counted() {
        let out = Shared::default();
        let sink = ReportSink::new(Box::new(out.clone()));
        sink.write_batch(b"{\"a\":1}\n{\"b\":2}\n", 2);
        assert_eq!(sink.written(), 2);
        assert_eq!(out.0.lock().unwrap().as_slice(), b"{\"a\":1}\n{\"b\":2}\n");
        let sink = ReportSink::new(Box::new(Broken));
        sink.write_batch(b"x\n", 1);
        sink.write_batch(b"y\n", 1);
        assert_eq!((sink.written(), sink.lost()), (0, 2));
    }
}
