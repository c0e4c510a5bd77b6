//! Every capture of the shared corpus (nDPI test pcaps, suricata-verify inputs) replays
//! through the library without error, and the reader sees exactly the packet count that
//! the corpus index (made with tshark) gives for it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dpi_core::Config;
use enforcer::replay::Replayer;

fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    dir.join("index.json").is_file().then_some(dir)
}

fn is_capture(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("pcap" | "pcapng" | "cap"))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if is_capture(&p) {
            out.push(p);
        }
    }
}

#[test]
fn corpus_replays_with_expected_packet_counts() {
    let Some(dir) = corpus_dir() else {
        eprintln!("note: corpus not found next to the workspace (../../shared/corpus): skipped");
        return;
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let expected: BTreeMap<PathBuf, u64> = index
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (dir.join(e["file"].as_str().unwrap()), e["packets"].as_u64().unwrap()))
        .collect();

    let mut files = Vec::new();
    walk(&dir.join("ndpi/pcap"), &mut files);
    walk(&dir.join("suricata-verify/tests"), &mut files);
    files.sort();
    assert!(files.len() > 100, "only {} captures found", files.len());

    let mut sink = std::io::sink();
    let mut replayer = Replayer::new(Config::default()).with_records(&mut sink);
    let mut mismatches = Vec::new();
    let mut unindexed = 0;
    for f in &files {
        let rep = replayer.replay_file(f).unwrap_or_else(|e| panic!("{e}"));
        if let Some(w) = &rep.warning {
            eprintln!("warning: {w}");
        }
        // Every frame the reader delivered reached the engine.
        assert_eq!(rep.counters.packets, rep.capture.frames, "{}", f.display());
        match expected.get(f) {
            Some(&n) if n != rep.capture.packets => {
                mismatches.push(format!("{}: index {n}, read {}", f.display(), rep.capture.packets))
            }
            Some(_) => {}
            None => unindexed += 1,
        }
    }
    let s = replayer.into_summary();
    eprintln!(
        "{} files ({unindexed} not in the index), {} packets, {} skipped, {} sessions",
        s.files,
        s.packets,
        s.skipped_total(),
        s.sessions_created().total()
    );
    assert!(s.failed.is_empty(), "{:?}", s.failed);
    assert!(mismatches.is_empty(), "packet counts differ:\n{}", mismatches.join("\n"));
    // Every session created ended exactly once (flush at the end of each file).
    assert_eq!(s.sessions_ended(), s.sessions_created().total());
    assert_eq!(s.records, s.sessions_ended());
}
