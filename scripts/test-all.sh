#!/usr/bin/env bash
# The whole test suite: formatting, lints, every unit/integration/property test, and a
# bounded fuzz run of recv_packet seeded with the project's own captures.
# usage: scripts/test-all.sh        (FUZZ_SECONDS=60 by default; 0 skips the fuzz run)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (workspace)"
cargo test --workspace --locked

secs=${FUZZ_SECONDS:-60}
if [ "$secs" != 0 ]; then
  step "fuzz recv_packet for ${secs}s"
  if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
  fi
  seeds=fuzz/corpus/recv_packet
  mkdir -p "$seeds"
  python3 fuzz/make_seeds.py "$seeds" testdata/pcap/*.pcap
  (cd fuzz && cargo fuzz run -s none recv_packet corpus/recv_packet -- \
      -max_total_time="$secs" -max_len=65536 -timeout=10 -print_final_stats=1)
fi
step "all tests passed"
