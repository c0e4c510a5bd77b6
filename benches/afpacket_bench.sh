#!/usr/bin/env bash
# Inline data-path benchmark (not CI): c1 — enf — c2, where enf joins `vin` (peer of c1's
# eth0) and `vex` (peer of c2's eth0) by
#   (a) kernel forwarding: a Linux bridge over vin and vex,
#   (b) dpi-afpacket: the `inline_bridge` example (two ServicePorts, TPACKET_V2 RX+TX
#       rings, dpi-core `Ctx::recv_packet` on every frame, one worker thread),
#   (c) Suricata 7 in AF_PACKET IPS mode (copy-mode: ips, copy-iface, no rules, workers),
#   (d) `enforcer run` with c2 in Protect (the product: re-plumbed link, nft steering,
#       the vth-neuv service port, one worker), vin and vex bridged as in (a), with
#       `inline_gso = false` (NeuVector's way: offload off on vbr-neuv);
#   (d+) the same with the default `inline_gso = true` and the containers' offloads on;
#   (e) the same with `inline_ports = "pair"`: the engine on c2's own vin1/vex1, no
#       vbr-neuv/vth-neuv crossing.
# For each: ping RTT (median/avg of 50 pings), iperf3 TCP throughput (one stream) and
# 64-byte UDP packets/s reached c2 (rx_packets delta of c2's eth0), sent by iperf3 -b 0
# and by trafgen (netsniff-ng; a much cheaper sender, so the forwarder is the limit).
# Transmit checksum offload is off on both containers' eth0 in these modes (needed by (b)
# and (c), see dpi-afpacket's docs), so the kernel path pays for software checksums too.
# Two more rows keep the containers' default offloads on (TSO/GSO super-frames):
#   (a+) the kernel bridge, and
#   (b+) the `inline_bridge` example with `--vnet` (PACKET_VNET_HDR: super-frames cross the
#        engine and the rings whole, the kernel finishes checksums on the way out).
#
# usage: bash benches/afpacket_bench.sh [SECONDS_PER_RUN]      (default 5; root; needs
#        iproute2, ethtool, iperf3, iputils-ping, suricata, python3, netsniff-ng (trafgen))
# Runs inside its own unshare'd network/mount/pid namespaces: nothing is left behind.
set -euo pipefail
secs=${1:-5}

if [ -z "${AFPB_INNER:-}" ]; then
  cd "$(dirname "$0")/.."
  for t in ip ethtool iperf3 ping suricata python3 unshare trafgen; do
    command -v "$t" >/dev/null || { echo "afpacket_bench: missing $t" >&2; exit 2; }
  done
  cargo build --release --quiet -p dpi-afpacket --example inline_bridge
  cargo build --release --quiet -p enforcer-bin --bin enforcer
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/examples/inline_bridge"
  enforcer="${CARGO_TARGET_DIR:-$PWD/target}/release/enforcer"
  [ -x "$bin" ] || { echo "afpacket_bench: $bin not built" >&2; exit 2; }
  exec unshare --net --mount --pid --fork --kill-child --mount-proc --propagation private \
    env AFPB_INNER=1 AFPB_BIN="$bin" AFPB_ENFORCER="$enforcer" bash "$0" "$secs"
fi

# ---- inside the private namespaces ----
source benches/udp64.sh
ip link set lo up
mkdir -p /run/netns && mount -t tmpfs afpb-netns /run/netns
tmp=$(mktemp -d /tmp/afpb.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

for n in c1 enf c2; do ip netns add $n; nsx $n ip link set lo up; done
ip -n c1 link add name eth0 type veth peer name vin netns enf
ip -n c2 link add name eth0 type veth peer name vex netns enf
ip -n c1 link set eth0 address 02:00:00:00:00:01
ip -n c2 link set eth0 address 02:00:00:00:00:02
ip -n c1 addr add 10.250.0.1/24 dev eth0
ip -n c2 addr add 10.250.0.2/24 dev eth0
for n in c1 c2; do ip -n $n link set eth0 up; nsx $n ethtool -K eth0 tx off >/dev/null; done
ip -n enf link set vin up; ip -n enf link set vex up

nsx c2 iperf3 -s -D -I "$tmp/iperf.pid" >/dev/null
# One 64-byte UDP flow c1 -> c2:5202, as iperf3 -l 64 sends (iperf3's frames are 106 bytes
# with headers), to a socket that never reads.
udp64_conf 02:00:00:00:00:01 02:00:00:00:00:02 10.250.0.1 10.250.0.2 5202 > "$tmp/udp64.trafgen"
nsx c2 bash -c "$(declare -f udp_sink); udp_sink 5202" &

wait_path() { # until ping passes (30 s max)
  for _ in $(seq 300); do
    nsx c1 ping -c1 -W1 -q 10.250.0.2 >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "afpacket_bench: no connectivity through $1" >&2; return 1
}

# FWD_PID: the forwarder's process (unset for the kernel rows). Over the trafgen window its
# user and system CPU time per frame that reached c2 is recorded (cpu_of): "user" is what
# the forwarder itself costs, "kernel" what the kernel's path costs it.
FWD_PID=
HZ=$(getconf CLK_TCK)
measure() { # $1 = label
  local label=$1 rtts tcp rx0 rx1 pps tgpps c0 c1 split
  nsx c1 ping -c 5 -i 0.02 -q 10.250.0.2 >/dev/null # warm ARP / flows
  rtts=$(nsx c1 ping -c 50 -i 0.02 10.250.0.2 | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -n)
  local med avg
  med=$(echo "$rtts" | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
  avg=$(echo "$rtts" | awk '{s+=$1} END{printf "%.3f", s/NR}')
  tcp=$(nsx c1 iperf3 -c 10.250.0.2 -t "$secs" -J | python3 -c \
    'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))')
  rx0=$(nsx c2 cat /sys/class/net/eth0/statistics/rx_packets)
  nsx c1 iperf3 -c 10.250.0.2 -u -b 0 -l 64 -t "$secs" >/dev/null
  rx1=$(nsx c2 cat /sys/class/net/eth0/statistics/rx_packets)
  pps=$(( (rx1 - rx0) / secs ))
  # The same 64-byte UDP flow from trafgen (one process, TX ring): a sender several times
  # cheaper per packet than iperf3, so the forwarder rather than the sender sets the rate.
  trafgen_flood c1 "$tmp/udp64.trafgen" &
  local tg=$!
  sleep 1
  rx0=$(nsx c2 cat /sys/class/net/eth0/statistics/rx_packets); c0=$(cpu_of "$FWD_PID")
  sleep "$secs"
  rx1=$(nsx c2 cat /sys/class/net/eth0/statistics/rx_packets); c1=$(cpu_of "$FWD_PID")
  pkill -INT -x trafgen || true; wait $tg 2>/dev/null || true
  tgpps=$(( (rx1 - rx0) / secs ))
  split=$(echo "$c0 $c1 $HZ $((rx1 - rx0))" | awk '$6 > 0 && $1 + $2 + $3 + $4 > 0 {
    printf "%.0f / %.0f", ($3 - $1) / $5 / $6 * 1e9, ($4 - $2) / $5 / $6 * 1e9; next } {print "-"}')
  printf '| %-52s | %8s | %12s | %12s | %10s | %10s | %15s |\n' "$label" "$tcp" "$pps" "$tgpps" "$med" "$avg" "$split" | tee -a "$tmp/table"
}

printf '| %-52s | %8s | %12s | %12s | %10s | %10s | %15s |\n' "path (enf joins vin and vex by)" "TCP Gb/s" "UDP 64B pps" "trafgen pps" "RTT med ms" "RTT avg ms" "trafgen ns/frame user / kernel" > "$tmp/table"
printf '|%s|---------:|-------------:|-------------:|-----------:|-----------:|----------------:|\n' "------------------------------------------------------" >> "$tmp/table"

kernel_row() { # $1 = label: vin and vex on a Linux bridge
  nsx enf ip link add name br0 type bridge
  nsx enf ip link set vin master br0; nsx enf ip link set vex master br0
  nsx enf ip link set br0 up
  wait_path "the kernel bridge"
  measure "$1" >/dev/null
  nsx enf ip link del br0
}

bridge_row() { # $1 = label, then inline_bridge's options
  local label=$1; shift
  rm -f "$tmp/stop"
  ip netns exec enf "$AFPB_BIN" vin vex "$@" --stop-file "$tmp/stop" 2>"$tmp/bridge.log" &
  local bridge=$!
  wait_path "inline_bridge $*"
  FWD_PID=$bridge measure "$label" >/dev/null
  touch "$tmp/stop"; wait $bridge || true
  sed 's/^/  # /' "$tmp/bridge.log" >&2
}

kernel_row "(a) kernel: Linux bridge vin<->vex"
bridge_row "(b) dpi-afpacket ServicePort x2 + dpi-core"

offload() { # on: the kernel's defaults (checksum offload, TSO, GSO); off: tx off as above
  local f=(tx off); [ "$1" = on ] && f=(tx on tso on gso on)
  for n in c1 c2; do nsx $n ethtool -K eth0 "${f[@]}" >/dev/null; done
}

# (a+) and (b+): the containers' default offloads on
offload on
kernel_row "(a+) kernel: Linux bridge, offloads on"
bridge_row "(b+) ServicePort x2 vnet_hdr + dpi-core, offl. on" --vnet
offload off

# (c) Suricata 7, AF_PACKET IPS
mkdir -p "$tmp/suri"
: > "$tmp/suri/empty.rules"
cat > "$tmp/suri/suricata.yaml" <<EOF
%YAML 1.1
---
default-log-dir: $tmp/suri
default-rule-path: $tmp/suri
rule-files: [empty.rules]
outputs: []
logging:
  default-log-level: warning
  outputs:
    - file: {enabled: yes, filename: $tmp/suri/suricata.log}
af-packet:
  - interface: vin
    threads: 1
    cluster-id: 98
    cluster-type: cluster_flow
    defrag: no
    use-mmap: yes
    tpacket-v3: no
    ring-size: 4096
    copy-mode: ips
    copy-iface: vex
  - interface: vex
    threads: 1
    cluster-id: 97
    cluster-type: cluster_flow
    defrag: no
    use-mmap: yes
    tpacket-v3: no
    ring-size: 4096
    copy-mode: ips
    copy-iface: vin
EOF
# Not through nsx: `ip netns exec` execs suricata, so $! is suricata itself (a backgrounded
# function is a bash subshell, which ignored the signal and never exited: the script hung).
ip netns exec enf suricata -c "$tmp/suri/suricata.yaml" --af-packet --runmode workers -k none \
  --pidfile "$tmp/suri/pid" >"$tmp/suri/stdout" 2>&1 &
suri=$!
wait_path "suricata" || { cat "$tmp/suri/stdout" "$tmp/suri/suricata.log" >&2; exit 1; }
FWD_PID=$suri measure "(c) Suricata $(suricata -V | awk '{print $5}') AF_PACKET IPS (no rules)" >/dev/null
kill -TERM $suri; wait $suri || true

# (d) `enforcer run`, c2 in Protect: the whole product path. vin and vex are bridged as in
# (a); the enforcer re-plumbs c2's link through its namespace (c2's eth0 becomes vex1 on the
# bridge, a new eth0/vin1 pair is created) and nft steers c2's frames through vbr-neuv to
# the engine on vth-neuv and back: every frame crosses the engine once, plus the bridge and
# the steering hops (a)-(c) do not have.
nsx enf ip link add name br0 type bridge
nsx enf ip link set vin master br0; nsx enf ip link set vex master br0; nsx enf ip link set br0 up
cat > "$tmp/policy.toml" <<EOF
[[rule]]
id = 1
from = "10.250.0.1"
to = "10.250.0.2"
ports = ["tcp/5201", "udp/5201", "udp/5202", "icmp"]
action = "allow"
EOF
enforcer_row() { # $1 = label, $2 = inline_gso (true|false), $3 = container offloads (on|off),
                 # $4 = inline_ports (shared|pair)
  cat > "$tmp/run.toml" <<EOF
policy = "$tmp/policy.toml"
workers = 1
reports = "$tmp/reports.json"
state_dir = "$tmp/state"
inline_gso = $2
inline_ports = "$4"
[[workload]]
name = "c2"
netns = "/run/netns/c2"
mode = "protect"
EOF
  offload "$3"
  ip netns exec enf "$AFPB_ENFORCER" run --config "$tmp/run.toml" 2>"$tmp/enforcer.log" &
  local enf_pid=$!
  for _ in $(seq 100); do [ -S "$tmp/state/control.sock" ] && break; sleep 0.1; done
  wait_path "enforcer run" || { cat "$tmp/enforcer.log" >&2; exit 1; }
  offload "$3" # c2's new eth0 (the old one became vex1)
  FWD_PID=$enf_pid measure "$1" >/dev/null
  "$AFPB_ENFORCER" ctl --socket "$tmp/state/control.sock" stats 2>/dev/null \
    | python3 -c 'import json,sys; [print("  #", p) for w in json.load(sys.stdin)["workers"] for p in w["ports"]]' >&2 || true
  kill -TERM $enf_pid; wait $enf_pid || true
}
enforcer_row "(d) enforcer run, c2 in Protect" false off shared
enforcer_row "(d+) enforcer run, Protect, inline_gso, offl. on" true on shared
enforcer_row "(e) enforcer run, Protect, port pair, offl. on" true on pair
offload off
nsx enf ip link del br0

echo
echo "afpacket_bench: ${secs}s per run, $(nproc) CPUs, kernel $(uname -r)"
cat "$tmp/table"
# With the forwarder saturated (trafgen), what a user space costing nothing could reach
# against Suricata: Suricata's CPU per frame over the kernel's part of ours.
python3 - "$tmp/table" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) == 7 and "/" in cells[6] and cells[0][:3] in ("(b)", "(c)", "(e)"):
        u, k = (float(x) for x in cells[6].split("/"))
        rows[cells[0][:3]] = (u, k)
if "(c)" in rows:
    su, sk = rows["(c)"]
    for r in ("(b)", "(e)"):
        if r in rows and rows[r][1] > 0:
            print(f"{r}: {rows[r][0] + rows[r][1]:.0f} ns of CPU per frame against Suricata's {su + sk:.0f}; "
                  f"ceiling with a user space costing nothing: {(su + sk) / rows[r][1]:.2f}x")
PY
