#!/usr/bin/env bash
# NFQUEUE throughput, not CI: 64-byte UDP packets/s and one TCP stream through
# `iptables -j NFQUEUE` with
#   - kernel          no NFQUEUE rule (the ceiling of this setup)
#   - enforcer        dpi-nfqueue's accept-all example (examples/nfq_accept.rs): every
#                     packet through dpi-core's Ctx::recv_packet, GSO on
#   - enforcer-nogso  the same with NFQA_CFG_F_GSO off (the kernel segments first)
#   - suricata        `suricata -q 0`, no rules, fail-open, verdict batches of 20
# on the same two-namespace setup (client -> veth -> server, rules in the server's INPUT
# queueing UDP and TCP to port 5201), in one run. Prints a markdown table.
#
# usage: benches/nfqueue_bench.sh [SECONDS] [RUNS]   (default 5 s per measurement, median
#                                                    of 3 runs)
#   CONS_CPU=1 TRAFFIC_CPU=0   consumer on its own core, iperf3 client and server on
#                              another (default when there are 2+ CPUs; "" disables)
# Needs root, iproute2, iptables (nft backend), iperf3, suricata 7 (NFQ support), jq,
# python3, trafgen (Debian package netsniff-ng).
#
# Columns:
#   sent         iperf3's send rate (64-byte payloads)
#   verdicts/s   the kernel's packet-id counter of queue 0 over the UDP run
#                (/proc/net/netfilter/nfnetlink_queue): packets that really went to user
#                space and back
#   delivered    what the iperf3 server received (sent minus lost)
#   CPU          the consumer's CPU time over the UDP run (user + system, % of one core;
#                system time includes delivering accepted packets, which the kernel does
#                inside the verdict's send)
#   verdicts/CPU-s  verdicts per second of consumer CPU: the rate one saturated core would
#                sustain, the fairest comparison when the sender is the bottleneck
#   TCP          one iperf3 stream, receiver's rate
#   trafgen verdicts/s  verdicts per second while trafgen (netsniff-ng; one process, TX
#                ring, far cheaper per packet than iperf3) floods 64-byte UDP frames to a
#                socket that listens and never reads: the consumer, not the sender, is the
#                limit (queue overflow fails open and is not counted as a verdict)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}
RUNS=${2:-3}
if [ "$(nproc)" -ge 2 ]; then
  CONS_CPU=${CONS_CPU-1}
  TRAFFIC_CPU=${TRAFFIC_CPU-0}
else
  CONS_CPU=${CONS_CPU-}
  TRAFFIC_CPU=${TRAFFIC_CPU-}
fi
# "taskset -c N" prefixes (empty: not pinned)
pin_args() { if [ -n "$CONS_CPU" ]; then echo "taskset -c $CONS_CPU"; fi; }
pin_args_traffic() { if [ -n "$TRAFFIC_CPU" ]; then echo "taskset -c $TRAFFIC_CPU"; fi; }

if [ -z "${NFQ_BENCH_INNER:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
  for t in ip iptables-nft iperf3 suricata jq python3 unshare taskset trafgen; do
    command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 1; }
  done
  cargo build --release -q -p dpi-nfqueue --example nfq_accept
  cargo build --release -q -p enforcer-bin --bin enforcer
  TARGET=${CARGO_TARGET_DIR:-$PWD/target}
  # Everything below runs in private network, mount and PID namespaces: nothing touches
  # the host's network, and every process started is killed when the script ends.
  exec env NFQ_BENCH_INNER=1 NFQ="$TARGET/release/examples/nfq_accept" \
    ENFORCER="$TARGET/release/enforcer" \
    CONS_CPU="$CONS_CPU" TRAFFIC_CPU="$TRAFFIC_CPU" \
    unshare --net --mount --pid --fork --kill-child --mount-proc --propagation private \
    bash "$0" "$@"
fi

source benches/udp64.sh
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mount -t tmpfs nfqbench-netns /run/netns 2>/dev/null || { mkdir -p /run/netns; mount -t tmpfs nfqbench-netns /run/netns; }
ip link set lo up
C="ip netns exec nfqb-c"
S="ip netns exec nfqb-s"
ip netns add nfqb-c
ip netns add nfqb-s
ip -n nfqb-c link add name eth0 type veth peer name eth0 netns nfqb-s
$C ip link set lo up; $S ip link set lo up
$C ip link set eth0 address 02:00:00:00:88:01
$S ip link set eth0 address 02:00:00:00:88:02
$C ip addr add 10.88.0.1/24 dev eth0
$S ip addr add 10.88.0.2/24 dev eth0
$C ip link set eth0 up; $S ip link set eth0 up
$C ip neigh replace 10.88.0.2 lladdr 02:00:00:00:88:02 dev eth0 nud permanent
$S ip neigh replace 10.88.0.1 lladdr 02:00:00:00:88:01 dev eth0 nud permanent
$S $(pin_args_traffic) iperf3 -s -p 5201 >/dev/null 2>&1 &
$S bash -c "$(declare -f udp_sink); udp_sink 5202" &
udp64_conf 02:00:00:00:88:01 02:00:00:00:88:02 10.88.0.1 10.88.0.2 5202 > "$W/udp64.trafgen"
: > "$W/empty.rules"
sleep 0.5

QNUM=0
idseq() { # queue $QNUM's id_sequence in the server namespace (0 when unbound)
  $S cat /proc/net/netfilter/nfnetlink_queue | awk -v q=$QNUM '$1 == q {print $8; f=1} END {if (!f) print 0}'
}

wait_bound() {
  for _ in $(seq 1 300); do
    $S cat /proc/net/netfilter/nfnetlink_queue | awk -v q=$QNUM '$1 == q {f=1} END {exit !f}' && return 0
    sleep 0.1
  done
  echo "queue $QNUM never bound" >&2; return 1
}

# The product: `enforcer run` with the server as an NFQUEUE workload in Protect. Its own
# rules queue all of the server's input and output on eth0 (not only port 5201) to queue 1.
cat > "$W/policy.toml" <<EOF
[[rule]]
id = 1
from = "10.88.0.1"
to = "10.88.0.2"
ports = ["tcp/5201", "udp/5201", "udp/5202"]
action = "allow"
EOF
cat > "$W/run.toml" <<EOF
policy = "$W/policy.toml"
workers = 1
reports = "$W/reports.json"
state_dir = "$W/state"
[[workload]]
name = "server"
netns = "/run/netns/nfqb-s"
mode = "protect"
datapath = "nfqueue"
queue = 1
EOF

start_consumer() { # name -> pid in $CONS
  rm -f "$W/stop"
  QNUM=0
  case $1 in
    kernel) CONS=""; return ;;
    enforcer-run) QNUM=1; $(pin_args) "$ENFORCER" run --config "$W/run.toml" \
      >"$W/enf.out" 2>"$W/enf.err" & ;;
    enforcer) $S $(pin_args) "$NFQ" --queue 0 --stop-file "$W/stop" --seconds 600 \
      >"$W/enf.out" 2>"$W/enf.err" & ;;
    enforcer-nogso) $S $(pin_args) "$NFQ" --queue 0 --no-gso --stop-file "$W/stop" --seconds 600 \
      >"$W/enf.out" 2>"$W/enf.err" & ;;
    suricata)
      mkdir -p "$W/suri"
      $S $(pin_args) suricata -q 0 -k none -S "$W/empty.rules" -l "$W/suri" --runmode workers \
        --set nfq.fail-open=yes --set nfq.batchcount=20 \
        --set outputs.1.eve-log.enabled=no --set outputs.0.fast.enabled=no \
        >"$W/suri.out" 2>&1 & ;;
  esac
  CONS=$!
  wait_bound
}

cpu_ticks() { # utime + stime of the consumer (all threads), in clock ticks
  cpu_of "$CONS" | awk '{print $1 + $2}'
}

stop_consumer() {
  [ -n "$CONS" ] || return 0
  touch "$W/stop"
  [ "$QNUM" = 1 ] && kill -TERM "$CONS" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$CONS" 2>/dev/null || break; sleep 0.1; done
  kill "$CONS" 2>/dev/null || true
  wait "$CONS" 2>/dev/null || true
}

HZ=$(getconf CLK_TCK)
: > "$W/results"
for run in $(seq 1 "$RUNS"); do
  for mode in kernel enforcer enforcer-nogso suricata enforcer-run; do
    $S iptables-nft -F INPUT
    if [ "$mode" != kernel ] && [ "$mode" != enforcer-run ]; then
      $S iptables-nft -A INPUT -p udp --dport 5201 -j NFQUEUE --queue-num 0
      $S iptables-nft -A INPUT -p udp --dport 5202 -j NFQUEUE --queue-num 0
      $S iptables-nft -A INPUT -p tcp --dport 5201 -j NFQUEUE --queue-num 0
    fi
    start_consumer "$mode"
    sleep 1
    before=$(idseq); t0=$(cpu_ticks)
    $C $(pin_args_traffic) iperf3 -c 10.88.0.2 -p 5201 -u -l 64 -b 0 -t "$SECS" -J >"$W/udp.json" || true
    after=$(idseq); t1=$(cpu_ticks)
    sleep 1
    $C $(pin_args_traffic) iperf3 -c 10.88.0.2 -p 5201 -t "$SECS" -J >"$W/tcp.json" || true
    sleep 1
    $(pin_args_traffic) bash -c "$(declare -f trafgen_flood); trafgen_flood nfqb-c $W/udp64.trafgen" &
    sleep 1
    tg0=$(idseq); d0=$($S cat /sys/class/net/eth0/statistics/rx_packets); s0=$(cpu_of "$CONS")
    sleep "$SECS"
    tg1=$(idseq); d1=$($S cat /sys/class/net/eth0/statistics/rx_packets); s1=$(cpu_of "$CONS")
    pkill -INT -x trafgen || true; wait $! 2>/dev/null || true
    # the kernel row: frames reaching the server (no queue)
    [ "$mode" = kernel ] && tg1=$((tg0 + d1 - d0))
    stop_consumer
    # mode sent_pps verdicts_per_s delivered_pps cpu_fraction tcp_bps trafgen_verdicts_per_s
    #   trafgen_user_cpu trafgen_kernel_cpu (CPU-seconds per second)
    jq -r --arg mode "$mode" --argjson v $((after - before)) --argjson secs "$SECS" \
      --argjson cpu "$(echo "$t0 $t1 $HZ" | awk '{printf "%.3f", ($2 - $1) / $3}')" \
      --argjson tg $((tg1 - tg0)) --slurpfile tcp "$W/tcp.json" \
      --argjson tgu "$(echo "$s0 $s1 $HZ" | awk -v s="$SECS" '{printf "%.4f", ($3 - $1) / $5 / s}')" \
      --argjson tgk "$(echo "$s0 $s1 $HZ" | awk -v s="$SECS" '{printf "%.4f", ($4 - $2) / $5 / s}')" '
      .end.sum as $u
      | "\($mode) \($u.packets / $u.seconds) \($v / $secs) \(($u.packets - $u.lost_packets) / $u.seconds) \($cpu / $secs) \($tcp[0].end.sum_received.bits_per_second // 0) \($tg / $secs) \($tgu) \($tgk)"' \
      "$W/udp.json" >> "$W/results"
    if [ "$mode" = enforcer ] || [ "$mode" = enforcer-nogso ]; then
      sed "s/^/  run $run $mode: /" "$W/enf.out" >&2
    fi
  done
done

python3 - "$W/results" "$RUNS" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    mode, *vals = line.split()
    rows[mode].append([float(v) for v in vals])
med = lambda mode, i: statistics.median(r[i] for r in rows[mode])
print(f"median of {sys.argv[2]} runs\n")
print("| consumer | UDP 64 B sent (pps) | verdicts/s | delivered (pps) | consumer CPU | verdicts per CPU-second | TCP (Gbit/s) | trafgen verdicts/s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for mode in ["kernel", "enforcer", "enforcer-nogso", "suricata", "enforcer-run"]:
    if mode not in rows:
        continue
    q = mode != "kernel"
    per_cpu = statistics.median(r[1] / r[3] for r in rows[mode] if r[3] > 0) if q else 0
    print(f"| {mode} | {med(mode, 0):,.0f} | {f'{med(mode, 1):,.0f}' if q else '-'} | {med(mode, 2):,.0f} | "
          f"{f'{med(mode, 3) * 100:.0f} %' if q else '-'} | {f'{per_cpu:,.0f}' if q else '-'} | {med(mode, 4) / 1e9:.2f} | "
          f"{med(mode, 5):,.0f}{'' if q else ' (no queue)'} |")

# Where a saturated consumer's time goes (trafgen phase): user and kernel CPU per verdict,
# from the consumer's utime/stime. The kernel's part (netlink copy, verdict parsing,
# reinjecting and delivering the accepted packet inside the verdict's send) is paid by
# every NFQUEUE consumer; the last line bounds what any user space could reach.
print("\n| consumer (trafgen phase) | user ns/verdict | kernel ns/verdict | user share |")
print("|---|---:|---:|---:|")
split = {}
for mode in ["enforcer", "enforcer-nogso", "suricata", "enforcer-run"]:
    if mode not in rows:
        continue
    u = statistics.median(r[6] / r[5] * 1e9 for r in rows[mode] if r[5] > 0)
    k = statistics.median(r[7] / r[5] * 1e9 for r in rows[mode] if r[5] > 0)
    split[mode] = (u, k)
    print(f"| {mode} | {u:,.0f} | {k:,.0f} | {u / (u + k) * 100:.0f} % |")
if "enforcer" in split and "suricata" in split and split["enforcer"][1] > 0:
    su, sk = split["suricata"]
    print(f"\nceiling of enforcer / suricata verdicts per second with a user space costing nothing: "
          f"{(su + sk) / split['enforcer'][1]:.2f}x (suricata's CPU per verdict / the enforcer's kernel part)")
PY
echo >&2 "($(nproc) CPUs, $(uname -r), ${SECS}s per measurement, consumer on CPU ${CONS_CPU:-any}, traffic on CPU ${TRAFFIC_CPU:-any})"
