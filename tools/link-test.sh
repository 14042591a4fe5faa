#!/bin/sh
# Link test for `hequant verify`: runs both parties inside a fresh network namespace whose
# loopback is shaped like a link (as OpenCheetah's throttle script shapes lo), so nothing
# outside the namespace is affected, and compares measured with predicted latency.
#
#   tools/link-test.sh HEQUANT_BINARY lan|wan [verify options...]
#
# lan: 3 Gbit/s, 0.3 ms RTT; wan: 400 Mbit/s, 40 ms RTT (docs/protocol-reference.md 2.5). Needs
# root (unshare -n) and tc. Without the netem qdisc only the rate can be shaped: the
# script then says so and predicts with the shaped rate and zero RTT.
set -eu
bin=$1; link=$2; shift 2
case $link in
  lan) rate=3gbit; delay=0.15ms; mbps=3000; rtt=0.3 ;;
  wan) rate=400mbit; delay=20ms; mbps=400; rtt=40 ;;
  *) echo "link must be lan or wan" >&2; exit 2 ;;
esac
if ! unshare -n true 2>/dev/null; then
  echo "SKIPPED: this machine does not allow network namespaces (unshare -n)"; exit 0
fi
if ! command -v tc >/dev/null; then
  echo "SKIPPED: tc is not installed"; exit 0
fi
exec unshare -n sh -c "
  ip link set lo up
  if tc qdisc add dev lo root netem rate $rate delay $delay 2>/dev/null; then
    echo \"link $link: netem rate $rate, delay $delay each way\"
    exec $bin verify --bandwidth-mbps $mbps --rtt-ms $rtt $*
  fi
  echo \"netem is not available on this kernel: shaping the rate only (tbf $rate), no delay; predicting with RTT 0\"
  tc qdisc add dev lo root tbf rate $rate burst 256kb latency 100ms
  exec $bin verify --bandwidth-mbps $mbps --rtt-ms 0 $*
"
