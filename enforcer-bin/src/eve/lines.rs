//! Engine events as EVE JSON lines: the one place that picks the line type of each
//! [`Event`], shared by `enforcer replay` and `enforcer run`.
//!
//! | event | line `event_type` |
//! |---|---|
//! | `SessionEnd` | `flow` (only when flows are on) |
//! | `Violation` | `alert` |
//! | `Connection` | `connection` |
//! | `AppUpdate` | `app_update` |
//! | `Threat` | `threat` |
//! | `SessionStart` | none |

use super::policy::{AlertEvent, AppUpdateEvent, ConnectionEvent};
use super::{EveIp, FlowWriter, Timestamp, WorkloadNames};
use dpi_core::event::ThreatRecord;
use dpi_core::Event;
use serde::Serialize;
use std::io::{self, Write};

/// Writes events as lines through one reused buffer.
#[derive(Debug)]
pub struct EventLines {
    writer: FlowWriter,
    /// Write `flow` lines for ended sessions.
    pub flows: bool,
}

impl EventLines {
    /// A writer; `flows` turns flow lines on.
    pub fn new(flows: bool) -> Self {
        EventLines { writer: FlowWriter::new(), flows }
    }

    /// Write `ev` to `w` as one line when its kind has one; returns whether it did.
    pub fn write(
        &mut self,
        w: &mut dyn Write,
        ev: &Event,
        names: &dyn WorkloadNames,
    ) -> io::Result<bool> {
        match ev {
            Event::SessionEnd(rec) if self.flows => self.writer.write_with(w, rec, names)?,
            Event::Violation(v) => self.writer.emit(w, &AlertEvent::new(v, names))?,
            Event::Connection(c) => self.writer.emit(w, &ConnectionEvent::new(c, names))?,
            Event::AppUpdate(u) => self.writer.emit(w, &AppUpdateEvent::new(u))?,
            Event::Threat(t) => self.writer.emit(w, &ThreatEvent::new(t))?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// A threat the engine raised (`event_type: "threat"`).
#[derive(Debug, Serialize)]
pub struct ThreatEvent {
    /// Time of the offending packet.
    pub timestamp: Timestamp,
    /// Always `"threat"`.
    pub event_type: &'static str,
    /// The threat (`ThreatKind::name`).
    pub threat: &'static str,
    /// The session, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<u64>,
    /// Source of the offending packet.
    pub src_ip: EveIp,
    /// Its destination.
    pub dest_ip: EveIp,
    /// IP protocol number.
    pub proto: u8,
}

impl ThreatEvent {
    /// The line of `t`.
    pub fn new(t: &ThreatRecord) -> Self {
        ThreatEvent {
            timestamp: Timestamp(t.time),
            event_type: "threat",
            threat: t.kind.name(),
            flow_id: t.session_id,
            src_ip: EveIp(t.src),
            dest_ip: EveIp(t.dst),
            proto: t.proto,
        }
    }
}
