//! `--stats` output: a replay [`Summary`] as a readable table or as one JSON object.
//!
//! The table lists only what is non-zero (counters, drop reasons, skipped link types); the
//! JSON object ([`StatsReport`]) always has every counter and drop reason, so scripts can
//! rely on the keys. Rates are packet records (delivered or skipped) per second of wall
//! time spent in the replay, which includes reading the files and writing records.

use std::collections::BTreeMap;
use std::io::{self, Write};

use dpi_core::DropReason;
use serde::Serialize;

use crate::capture::linktype_name;
use crate::replay::{SessionsByProto, Summary};

/// The JSON form of a summary (`--stats-json`).
#[derive(Debug, Serialize)]
pub struct StatsReport {
    /// Files replayed.
    pub files: u64,
    /// Files that could not be read.
    pub files_failed: u64,
    /// Files that broke part-way.
    pub files_with_warnings: u64,
    /// Packet records read.
    pub packets: u64,
    /// Captured bytes of those records.
    pub bytes: u64,
    /// Frames given to the engine.
    pub frames: u64,
    /// Packets skipped (link type or protocol not supported).
    pub skipped: u64,
    /// Wall time, seconds.
    pub elapsed_secs: f64,
    /// Packet records per second.
    pub packets_per_sec: f64,
    /// The same in millions.
    pub mpps: f64,
    /// Sessions created by protocol.
    pub sessions_created: SessionsByProto,
    /// Sessions ended by reason (`EndReason::name`).
    pub sessions_ended: BTreeMap<&'static str, u64>,
    /// Flow records written.
    pub records: u64,
    /// Policy violations (EVE alert lines).
    pub alerts: u64,
    /// Connection reports (EVE connection lines).
    pub connections: u64,
    /// Frames the engine asked to transmit (TCP resets); a replay sends none.
    pub transmits: u64,
    /// Every engine counter, in declaration order.
    #[serde(serialize_with = "pairs::serialize")]
    pub counters: Vec<(&'static str, u64)>,
    /// Frames dropped, every reason, in declaration order.
    #[serde(serialize_with = "pairs::serialize")]
    pub drops: Vec<(&'static str, u64)>,
    /// Skipped packets by link type name (or number).
    pub skipped_by_linktype: BTreeMap<String, u64>,
    /// Files that broke part-way, one message each.
    pub warnings: Vec<String>,
    /// Files that could not be read, one message each.
    pub failed: Vec<String>,
}

impl StatsReport {
    /// Build the report of `s`.
    pub fn new(s: &Summary) -> Self {
        let mut counters = Vec::new();
        s.counters.for_each(|name, v| counters.push((name, v)));
        let drops = DropReason::ALL.iter().map(|&r| (r.label(), s.counters.drops(r))).collect();
        let pps = s.packets_per_sec();
        StatsReport {
            files: s.files,
            files_failed: s.failed.len() as u64,
            files_with_warnings: s.warnings.len() as u64,
            packets: s.packets,
            bytes: s.bytes,
            frames: s.frames,
            skipped: s.skipped_total(),
            elapsed_secs: s.elapsed.as_secs_f64(),
            packets_per_sec: pps,
            mpps: pps / 1e6,
            sessions_created: s.sessions_created(),
            sessions_ended: s.ended.clone(),
            records: s.records,
            alerts: s.alerts,
            connections: s.connections,
            transmits: s.transmits,
            counters,
            drops,
            skipped_by_linktype: s
                .skipped
                .iter()
                .map(|(&lt, &n)| (linktype_label(lt), n))
                .collect(),
            warnings: s.warnings.iter().map(|w| w.to_string()).collect(),
            failed: s.failed.iter().map(|(_, m)| m.clone()).collect(),
        }
    }
}

// Pairs serialise as a JSON object, not as an array of arrays.
mod pairs {
    use serde::ser::{SerializeMap, Serializer};

    pub(super) fn serialize<S: Serializer>(
        v: &[(&'static str, u64)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(v.len()))?;
        for (k, n) in v {
            m.serialize_entry(k, n)?;
        }
        m.end()
    }
}

/// "linux_sll (113)", or "linktype 147" for uncommon ones.
pub fn linktype_label(lt: u32) -> String {
    match linktype_name(lt) {
        Some(n) => format!("{n} ({lt})"),
        None => format!("linktype {lt}"),
    }
}

/// Write the summary as a readable table.
pub fn write_table(w: &mut dyn Write, s: &Summary) -> io::Result<()> {
    let r = StatsReport::new(s);
    writeln!(
        w,
        "files              {} replayed, {} failed, {} with warnings",
        r.files, r.files_failed, r.files_with_warnings
    )?;
    writeln!(w, "packets            {}", r.packets)?;
    writeln!(w, "bytes              {}", r.bytes)?;
    writeln!(w, "frames inspected   {} ({} skipped)", r.frames, r.skipped)?;
    writeln!(w, "elapsed            {:.3} s", r.elapsed_secs)?;
    writeln!(w, "rate               {:.0} packets/s ({:.2} Mpps)", r.packets_per_sec, r.mpps)?;
    let c = r.sessions_created;
    writeln!(
        w,
        "sessions created   {} (tcp {}, udp {}, icmp {}, other {})",
        c.total(),
        c.tcp,
        c.udp,
        c.icmp,
        c.other
    )?;
    let ended: Vec<String> = r.sessions_ended.iter().map(|(k, v)| format!("{k} {v}")).collect();
    writeln!(w, "sessions ended     {} ({})", s.sessions_ended(), ended.join(", "))?;
    writeln!(w, "records written    {}", r.records)?;
    if r.alerts + r.connections + r.transmits > 0 {
        writeln!(
            w,
            "policy             {} alerts, {} connection reports, {} resets",
            r.alerts, r.connections, r.transmits
        )?;
    }
    section(w, "counters", &r.counters)?;
    section(w, "drops", &r.drops)?;
    let skipped: Vec<(String, u64)> =
        r.skipped_by_linktype.iter().map(|(k, &v)| (k.clone(), v)).collect();
    if !skipped.is_empty() {
        writeln!(w, "skipped by link type")?;
        for (k, v) in &skipped {
            writeln!(w, "  {k:<28} {v:>12}")?;
        }
    }
    for m in &r.warnings {
        writeln!(w, "warning: {m}")?;
    }
    for m in &r.failed {
        writeln!(w, "failed: {m}")?;
    }
    Ok(())
}

fn section(w: &mut dyn Write, title: &str, rows: &[(&'static str, u64)]) -> io::Result<()> {
    let rows: Vec<_> = rows.iter().filter(|(_, v)| *v > 0).collect();
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(w, "{title}")?;
    for (k, v) in rows {
        writeln!(w, "  {k:<28} {v:>12}")?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn report_has_every_counter_and_drop() {
        let mut s = Summary {
            files: 2,
            packets: 10,
            elapsed: Duration::from_secs(2),
            ..Default::default()
        };
        s.counters.sessions_tcp = 3;
        s.counters.drop_counts[DropReason::TcpBadFlags as usize] = 4;
        s.skipped.insert(105, 7);
        s.ended.insert("flushed", 3);
        let v = serde_json::to_value(StatsReport::new(&s)).unwrap();
        assert_eq!(v["packets_per_sec"], 5.0);
        assert_eq!(v["sessions_created"]["tcp"], 3);
        assert_eq!(v["counters"]["sessions_tcp"], 3);
        assert_eq!(v["counters"]["packets"], 0);
        assert_eq!(v["drops"]["tcp_bad_flags"], 4);
        assert_eq!(v["drops"].as_object().unwrap().len(), DropReason::COUNT);
        assert_eq!(v["skipped_by_linktype"]["ieee802_11 (105)"], 7);
        assert_eq!(v["sessions_ended"]["flushed"], 3);

        let mut out = Vec::new();
        write_table(&mut out, &s).unwrap();
        let t = String::from_utf8(out).unwrap();
        assert!(t.contains("sessions created   3 (tcp 3, udp 0, icmp 0, other 0)"), "{t}");
        assert!(t.contains("tcp_bad_flags"));
        assert!(t.contains("ieee802_11 (105)"));
        // Zero counters are left out of the table.
        assert!(!t.contains("sessions_udp"));
    }
}
