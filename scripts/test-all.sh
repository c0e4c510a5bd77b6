#!/usr/bin/env bash
# The whole test suite: formatting, lints, every unit/integration/property test, a
# bounded fuzz run of recv_packet seeded with the project's own captures, and a short run
# of every application parser's fuzz target (app_*).
# usage: scripts/test-all.sh        (FUZZ_SECONDS=60 by default, 0 skips the recv_packet
#                                    run; FUZZ_APP_SECONDS=3 per app_* target, 0 skips them)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (workspace)"
cargo test --workspace --locked

need_cargo_fuzz() {
  if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
  fi
}

secs=${FUZZ_SECONDS:-60}
if [ "$secs" != 0 ]; then
  step "fuzz recv_packet for ${secs}s"
  need_cargo_fuzz
  seeds=fuzz/corpus/recv_packet
  mkdir -p "$seeds"
  python3 fuzz/make_seeds.py "$seeds" testdata/pcap/*.pcap
  (cd fuzz && cargo fuzz run -s none recv_packet corpus/recv_packet -- \
      -max_total_time="$secs" -max_len=65536 -timeout=10 -print_final_stats=1)
fi

# One target per parser (fuzz/fuzz_targets/app_*.rs), built together, then each binary run
# directly (no per-target cargo start-up); all are run, then the failures are listed (crash
# inputs land in fuzz/artifacts/<target>/).
app_secs=${FUZZ_APP_SECONDS:-3}
if [ "$app_secs" != 0 ]; then
  step "fuzz every app_* target for ${app_secs}s each"
  need_cargo_fuzz
  (cd fuzz && cargo fuzz build -s none)
  bin="fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release"
  logs=$(mktemp -d)
  failed=()
  for t in $(cd fuzz && cargo fuzz list | grep '^app_'); do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    if "$bin/$t" -artifact_prefix="fuzz/artifacts/$t/" -max_total_time="$app_secs" \
        -max_len=4096 -timeout=10 -print_final_stats=1 "fuzz/corpus/$t" >"$logs/$t.log" 2>&1; then
      printf '  %-16s ok (%s runs)\n' "$t" \
        "$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log")"
    else
      printf '  %-16s FAILED\n' "$t"
      grep -A12 -m1 -E 'panicked|ERROR: libFuzzer' "$logs/$t.log" | sed 's/^/    /' || true
      failed+=("$t")
    fi
  done
  rm -rf "$logs"
  if [ "${#failed[@]}" != 0 ]; then
    echo "fuzz targets failed: ${failed[*]}" >&2
    echo "reproduce: cd fuzz && cargo fuzz run -s none TARGET artifacts/TARGET/crash-..." >&2
    exit 1
  fi
fi
step "all tests passed"
