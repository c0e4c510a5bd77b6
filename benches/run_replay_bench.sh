#!/usr/bin/env bash
# Whole-process offline throughput: `enforcer replay` vs Suricata 7 and ndpiReader, pinned
# to one core, in the same run. Prints a markdown table (median of RUNS runs).
#
# usage: benches/run_replay_bench.sh [RUNS]      (default 5)
#   PCAP=...   benchmark capture (default /tmp/bench/curated_x30.pcap, built from the
#              shared corpus with make_bench_inputs.sh when missing; needs wireshark-common)
#   CPU=1      core to pin every process to
# Needs: suricata (bookworm-backports), libndpi-bin, and a release build of enforcer.
#
# Packets/s = packets / (wall time - startup), where startup is each tool's wall time on a
# one-packet capture (the same correction for every tool).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
CPU=${CPU:-1}
SHARED=$(cd ../shared && pwd)
PCAP=${PCAP:-/tmp/bench/curated_x30.pcap}
if [ ! -f "$PCAP" ]; then
  bash "$SHARED/tools/make_bench_inputs.sh" "$(dirname "$PCAP")" 30 >&2
fi
cargo build --release -q -p enforcer-bin
ENF=$PWD/target/release/enforcer
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
editcap -r "$PCAP" "$W/one.pcap" 1 >/dev/null
PKTS=$(capinfos -c -M "$PCAP" | awk '/Number of packets/ {print $NF}')
: > "$W/empty.rules"

timeit() { # label pcap cmd... ; appends "label pcap wall" to results
  local label=$1 pcap=$2; shift 2
  rm -rf "$W/o"; mkdir -p "$W/o"
  /usr/bin/time -f "%e" -o "$W/t" taskset -c "$CPU" "$@" >/dev/null 2>"$W/err" || {
    echo "$label failed:" >&2; cat "$W/err" >&2; exit 1; }
  echo "$label $pcap $(cat "$W/t")" >> "$W/results"
}

run_all() { # pcap tag
  local p=$1 tag=$2
  timeit enforcer_records_off "$tag" "$ENF" replay --no-records "$p"
  timeit enforcer_records_file "$tag" "$ENF" replay --out "$W/o/flows.json" "$p"
  timeit suricata_eve_off "$tag" suricata -r "$p" --runmode single -k none -S "$W/empty.rules" -l "$W/o" \
    --set outputs.1.eve-log.enabled=no --set outputs.0.fast.enabled=no
  timeit suricata_eve_on "$tag" suricata -r "$p" --runmode single -k none -S "$W/empty.rules" -l "$W/o"
  timeit ndpiReader "$tag" ndpiReader -i "$p" -q
}

for _ in $(seq 1 "$RUNS"); do
  run_all "$W/one.pcap" one
  run_all "$PCAP" big
done

python3 - "$W/results" "$PKTS" "$RUNS" "$PCAP" <<'PY'
import sys, statistics, collections
res, pkts, runs, pcap = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
t = collections.defaultdict(list)
for line in open(res):
    label, tag, wall = line.split()
    t[(label, tag)].append(float(wall))
labels = ["enforcer_records_off", "enforcer_records_file", "suricata_eve_off", "suricata_eve_on", "ndpiReader"]
pps = {}
for l in labels:
    big, one = statistics.median(t[(l, "big")]), statistics.median(t[(l, "one")])
    pps[l] = (big, one, pkts / max(big - one, 1e-9))
print(f"capture: {pcap} ({pkts} packets), median of {runs} runs, one core\n")
print("| engine | wall s | startup s | Mpps | vs Suricata (no logging) | vs Suricata (EVE on) | vs ndpiReader |")
print("|---|---:|---:|---:|---:|---:|---:|")
for l in labels:
    big, one, p = pps[l]
    r = lambda o: f"{p / pps[o][2]:.1f}x"
    print(f"| {l} | {big:.3f} | {one:.3f} | {p/1e6:.2f} | {r('suricata_eve_off')} | {r('suricata_eve_on')} | {r('ndpiReader')} |")
PY
