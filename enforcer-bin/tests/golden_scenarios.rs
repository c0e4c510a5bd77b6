//! Golden outputs: every generated capture in `testdata/pcap/` replays to exactly the EVE
//! flow records committed in `testdata/golden/<name>.eve.json`. The records were reviewed
//! when written (and the engine's scenario tests assert the behaviour behind them); any
//! change in output shows up here as a diff. Regenerate after an intended change with
//! `UPDATE_GOLDEN=1 cargo test -p enforcer-bin --test golden_scenarios`, and review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dpi_core::Config;
use enforcer::replay::Replayer;
use std::path::Path;

#[test]
fn generated_captures_replay_to_their_golden_records() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut pcaps: Vec<_> = std::fs::read_dir(root.join("testdata/pcap"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    pcaps.sort();
    assert!(
        pcaps.len() >= 20,
        "generated captures missing: run `cargo run -p pcapgen -- testdata/pcap`"
    );
    let mut diffs = vec![];
    for pcap in &pcaps {
        let name = pcap.file_stem().unwrap().to_string_lossy().to_string();
        let mut out = Vec::new();
        let mut r = Replayer::new(Config::default()).with_records(&mut out);
        r.replay_file(pcap).unwrap();
        drop(r);
        let golden = root.join(format!("testdata/golden/{name}.eve.json"));
        if update {
            std::fs::write(&golden, &out).unwrap();
            continue;
        }
        let want = std::fs::read(&golden).unwrap_or_default();
        if want != out {
            diffs.push(format!(
                "{name}: output differs from {}\n--- golden\n{}\n+++ now\n{}",
                golden.display(),
                String::from_utf8_lossy(&want),
                String::from_utf8_lossy(&out)
            ));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
