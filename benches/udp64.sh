# Shared by the bench scripts (sourced): a 64-byte UDP flood from trafgen, a socket that
# receives it, and the CPU time a forwarder spends on it.

# udp64_conf SRC_MAC DST_MAC SRC_IP DST_IP PORT: a trafgen config of 64-byte frames (60 +
# FCS; payload 18 bytes, the minimum frame) of one UDP flow SRC_IP:40000 -> DST_IP:PORT.
udp64_conf() {
  cat <<CONF
{
  eth(da=$2, sa=$1),
  ipv4(saddr=$3, daddr=$4, ttl=64),
  udp(sport=40000, dport=$5),
  fill(0x41, 18)
}
CONF
}

# udp_sink PORT: listen on UDP PORT and never read (run in the receiver's namespace, in
# the background). As an overrun server: the kernel queues, then drops on the full
# buffer, rather than answering port-unreachable to every frame.
udp_sink() {
  python3 -c "import socket,time; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('0.0.0.0',$1)); time.sleep(1e6)"
}

# trafgen_flood NS CONF: trafgen on NS's eth0, one process, in the background. It forks
# its sender: stop it with `pkill -INT -x trafgen` (in a private pid namespace that only
# sees this script's processes).
trafgen_flood() {
  ip netns exec "$1" trafgen --dev eth0 --conf "$2" --cpus 1 --no-sock-mem --notouch-irq \
    --no-cpu-stats >/dev/null 2>&1
}

# cpu_of PID: "utime stime" of PID (all its threads) in clock ticks (getconf CLK_TCK);
# "0 0" without a PID (the kernel rows). The receiver's stack runs inside a forwarder's
# send() and is charged to it as system time, for every forwarder alike.
cpu_of() {
  if [ -n "${1:-}" ]; then awk '{print $14, $15}' "/proc/$1/stat"; else echo "0 0"; fi
}
