#!/usr/bin/env bash
# Tools/bench live: the live forwarder against the kernel's own IP forwarding, same topology.
# A benchmark, not a test (run by hand, as root; figures go to docs/benchmarks.md).
#
#   Tools/bench live [--format json] [--seconds S=3] [--max-rate PPS=1500000] [--step PPS=100000]
#
# Topology (three network namespaces made here, removed on exit; nothing in the root namespace;
# addresses from 198.18.0.0/15 only; static neighbours, IPv6 off, so nothing else is on the wire):
#
#   mgbench-snd-PID            mgbench-dut-PID                      mgbench-snk-PID
#   s0 198.18.0.2  <--veth-->  d0 198.18.0.1 | d1 198.18.2.1  <--veth-->  k0 198.18.2.2
#   VIP 198.18.100.10 via DUT   kernel: ip_forward=1, VIP via sink   counts what arrives
#                               maglev forward on d0: GRE to 198.18.1.1-4 via sink (ip_forward=0)
#
# Systems: "kernel" (the DUT's own IPv4 forwarding, no encapsulation), "forwarder" (`maglev
# forward` as it runs by default: io_uring loop, GRE as whole frames through AF_PACKET with
# qdisc bypass, `--send packet`), "raw" (`maglev forward --send raw`: io_uring loop, GRE through
# raw IP sockets), "mmsg" (`maglev forward --io mmsg`: recvmmsg/sendmmsg, GRE frames through
# AF_PACKET as in the default).
#
# CPUs (2 vCPUs): the blaster and the probe receiver run under `taskset -c 1`, the forwarder
# under `taskset -c 0` (its one worker pins itself to CPU 0). veth hands a frame to the peer's
# receive path on the sending CPU, so the kernel's own forwarding (and, for the forwarders, the
# DUT's receive: the packet socket's copy and the dropped original) runs in softirq on CPU 1
# beside the blaster; what the forwarder sends is received by the sink on CPU 0. RPS could move
# the DUT's receive to CPU 0, but its IPIs cost more than they move on this VM (off by default;
# BENCH_RPS_D0 / BENCH_RPS_K0 set masks; BENCH_SYSTEMS picks systems; BENCH_LAT_SYSTEMS and
# BENCH_LAT_RATE pick latency runs; BENCH_FORWARD_ARGS adds forward options; BENCH_WRAP prefixes
# the forwarder command, e.g. "chrt -f 20").
#
# Rate: for each system the bounded blaster (Tools/bench-live.c) offers 100k, 200k, ... pps for
# S seconds each; a step passes when the sink's k0 rx counter got >= 99.9% of what was sent.
# After the first failing step, two refining steps (+step/2, then +/-step/4). The result is the
# highest passing rate. A step where the blaster itself could not reach the offered rate (< 97%)
# ends the search: the result is then generator-bound, and reported as such.
# CPU per packet (the same for every system): busy ticks of all CPUs from /proc/stat
# (user+nice+system+irq+softirq) during the best step per packet that reached the sink, minus
# the generator's own cost: the same blast at the same rate with nothing forwarding (the DUT
# receives each frame and discards it at its route lookup, as it does the originals beside the
# forwarder's packet socket). Softirq time cannot be split from the blaster's process time
# on this kernel (no IRQ_TIME_ACCOUNTING: it is charged to whichever task it interrupts), hence
# the calibration rather than "total minus the blaster's utime+stime". For the forwarders the
# process's own utime+stime per packet (/proc/PID/stat) is reported beside it.
# Latency (also for "busy": the default forwarder with --busy-poll): at half the forwarder's loss-free rate, the blaster also sends one probe every 1 ms
# carrying CLOCK_REALTIME taken just before its sendto; the sink stamps it with SO_TIMESTAMPNS
# on an AF_PACKET socket (the kernel's receive timestamp). Added latency = percentile through
# the forwarder minus the same percentile through the kernel's forwarding at the same rate.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
MAGLEV=${MAGLEV:-$REPO/.build/release/maglev}
FORMAT=text SECONDS_PER_STEP=3 MAX_RATE=1500000 STEP=100000
while [[ $# -gt 0 ]]; do
    case "$1" in
    --format) FORMAT=$2; shift 2 ;;
    --seconds) SECONDS_PER_STEP=$2; shift 2 ;;
    --max-rate) MAX_RATE=$2; shift 2 ;;
    --step) STEP=$2; shift 2 ;;
    *) echo "usage: Tools/bench live [--format json] [--seconds S] [--max-rate PPS] [--step PPS]" >&2; exit 2 ;;
    esac
done
[[ $FORMAT == json || $FORMAT == text ]] || { echo "--format json|text" >&2; exit 2; }
[[ $SECONDS_PER_STEP =~ ^[0-9]+$ ]] && ((SECONDS_PER_STEP >= 1 && SECONDS_PER_STEP <= 30)) || { echo "--seconds: 1..30" >&2; exit 2; }
[[ $MAX_RATE =~ ^[0-9]+$ ]] && ((MAX_RATE >= 10000 && MAX_RATE <= 5000000)) || { echo "--max-rate: 10000..5000000" >&2; exit 2; }
[[ $STEP =~ ^[0-9]+$ ]] && ((STEP >= 10000 && STEP <= MAX_RATE)) || { echo "--step: 10000..max-rate" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "Tools/bench live needs root (network namespaces, raw sockets)" >&2; exit 1; }
command -v ip >/dev/null && command -v taskset >/dev/null && command -v jq >/dev/null || {
    echo "needs ip (iproute2), taskset (util-linux) and jq" >&2; exit 1; }
[[ -x $MAGLEV ]] || { echo "no $MAGLEV: swift build -c release --product maglev" >&2; exit 1; }
(($(nproc) >= 2)) || { echo "needs 2 CPUs (DUT on CPU 0, generator on CPU 1)" >&2; exit 1; }

log() { echo "$*" >&2; }
SND=mgbench-snd-$$ DUT=mgbench-dut-$$ SNK=mgbench-snk-$$
DIR=$(mktemp -d)
PIDS=()
cleanup() {
    set +e   # never stop half-way: a failed kill or wait must not leave namespaces behind
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
    ip netns del "$SND" 2>/dev/null || true
    ip netns del "$DUT" 2>/dev/null || true
    ip netns del "$SNK" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cc -O2 -Wall -o "$DIR/bench-live" Tools/bench-live.c
BL=$DIR/bench-live

# ---- topology ----
MAC_S=02:00:5e:12:10:01 MAC_D0=02:00:5e:12:10:02 MAC_D1=02:00:5e:12:10:03 MAC_K=02:00:5e:12:10:04
ip netns add "$SND"
ip netns add "$DUT"
ip netns add "$SNK"
ip -n "$SND" link add s0 address $MAC_S type veth peer name d0 address $MAC_D0 netns "$DUT"
ip -n "$DUT" link add d1 address $MAC_D1 type veth peer name k0 address $MAC_K netns "$SNK"
for ns in "$SND" "$DUT" "$SNK"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
        net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    ip -n "$ns" link set lo up
done
ip -n "$SND" addr add 198.18.0.2/24 dev s0
ip -n "$DUT" addr add 198.18.0.1/24 dev d0
ip -n "$DUT" addr add 198.18.2.1/24 dev d1
ip -n "$SNK" addr add 198.18.2.2/24 dev k0
ip -n "$SND" link set s0 up
ip -n "$DUT" link set d0 up
ip -n "$DUT" link set d1 up
ip -n "$SNK" link set k0 up
ip -n "$SND" neigh replace 198.18.0.1 lladdr $MAC_D0 dev s0 nud permanent
ip -n "$DUT" neigh replace 198.18.0.2 lladdr $MAC_S dev d0 nud permanent
ip -n "$DUT" neigh replace 198.18.2.2 lladdr $MAC_K dev d1 nud permanent
ip -n "$SNK" neigh replace 198.18.2.1 lladdr $MAC_D1 dev k0 nud permanent
ip -n "$SND" route add 198.18.100.0/24 via 198.18.0.1 dev s0
ip -n "$DUT" route add 198.18.100.0/24 via 198.18.2.2 dev d1   # kernel forwarding: VIP to the sink
ip -n "$DUT" route add 198.18.1.0/24 via 198.18.2.2 dev d1     # GRE to backends: via the sink
# The sink has ip_forward=0 and no routes beyond its link: what arrives is counted and dropped.
# RPS off by default (BENCH_RPS_D0 / BENCH_RPS_K0 set CPU masks): on this VM its IPIs cost more
# than the work they move (measured: the forwarder's loss-free rate fell from 400k to 150k pps).
ip netns exec "$DUT" sh -c "echo ${BENCH_RPS_D0:-0} > /sys/class/net/d0/queues/rx-0/rps_cpus"
ip netns exec "$SNK" sh -c "echo ${BENCH_RPS_K0:-0} > /sys/class/net/k0/queues/rx-0/rps_cpus"

cat >"$DIR/lb.yaml" <<YAML
encap:
  source_ipv4: 198.18.2.1
connection_tracking:
  capacity: 65536
vips:
  - name: bench
    address: 198.18.100.10
    backends:
      - { name: b1, address: 198.18.1.1 }
      - { name: b2, address: 198.18.1.2 }
      - { name: b3, address: 198.18.1.3 }
      - { name: b4, address: 198.18.1.4 }
YAML

TICK=$(getconf CLK_TCK)
cpu0_ticks() { awk '$1 == "cpu0" { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
all_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
proc_ticks() { [[ -n ${1:-} ]] && awk '{ print $14 + $15 }' "/proc/$1/stat" || echo 0; }
link_counter() { ip -n "$1" -s -j link show "$2" | jq ".[0].stats64.$3.$4"; }

FWD_PID=""
start_system() {   # kernel | forwarder | raw | mmsg
    FWD_PID=""
    case "$1" in
    kernel) ip netns exec "$DUT" sysctl -qw net.ipv4.ip_forward=1 ;;
    forwarder | raw | mmsg | busy)
        ip netns exec "$DUT" sysctl -qw net.ipv4.ip_forward=0
        local -a how=(--io io_uring --send packet)
        [[ $1 == raw ]] && how=(--io io_uring --send raw)
        [[ $1 == mmsg ]] && how=(--io mmsg)
        [[ $1 == busy ]] && how=(--io io_uring --send packet --busy-poll)
        ip netns exec "$DUT" taskset -c 0 ${BENCH_WRAP:-} "$MAGLEV" forward --config "$DIR/lb.yaml" --interface d0 --workers 1 \
            "${how[@]}" ${BENCH_FORWARD_ARGS:-} --duration 900 >"$DIR/forward-$1.txt" 2>&1 &
        FWD_PID=$!
        PIDS+=("$FWD_PID")
        local i
        for i in $(seq 100); do
            grep -q '^forwarding on' "$DIR/forward-$1.txt" && break
            kill -0 "$FWD_PID" 2>/dev/null || { cat "$DIR/forward-$1.txt" >&2; exit 1; }
            sleep 0.1
        done
        grep -q '^forwarding on' "$DIR/forward-$1.txt" || { log "forwarder did not start"; exit 1; }
        ;;
    esac
}
stop_system() {
    ip netns exec "$DUT" sysctl -qw net.ipv4.ip_forward=0
    if [[ -n $FWD_PID ]]; then
        kill -TERM "$FWD_PID" 2>/dev/null || true
        wait "$FWD_PID" 2>/dev/null || true
        FWD_PID=""
    fi
}

# One step at RATE: prints "offered sent_pps received_pps loss_ppm all_cpu_ns_per_packet
# process_ns_per_packet sink_drops cpu0_ns_per_packet" (per packet at the sink).
step() {
    local rate=$1 count=$(($1 * SECONDS_PER_STEP))
    local a0 c0 p0 r0 d0 a1 c1 p1 r1 d1 out sent secs
    a0=$(all_ticks) c0=$(cpu0_ticks) p0=$(proc_ticks "$FWD_PID") r0=$(link_counter "$SNK" k0 rx packets) d0=$(link_counter "$DUT" d1 tx dropped)
    out=$(ip netns exec "$SND" taskset -c 1 "$BL" blast 198.18.100.10 "$rate" "$count" $((SECONDS_PER_STEP + 1)))
    sleep 0.3
    a1=$(all_ticks) c1=$(cpu0_ticks) p1=$(proc_ticks "$FWD_PID") r1=$(link_counter "$SNK" k0 rx packets) d1=$(link_counter "$DUT" d1 tx dropped)
    sent=$(awk '{ print $2 }' <<<"$out") secs=$(awk '{ print $6 }' <<<"$out")
    awk -v rate="$rate" -v sent="$sent" -v secs="$secs" -v rx=$((r1 - r0)) -v all=$((a1 - a0)) -v cpu=$((c1 - c0)) \
        -v proc=$((p1 - p0)) -v tick="$TICK" -v drops=$((d1 - d0)) 'BEGIN {
        loss = sent > 0 ? (sent - rx) / sent : 1; if (loss < 0) loss = 0
        n = rx > 0 ? rx : 1
        printf "%d %.0f %.0f %.0f %.0f %.0f %d %.0f\n", rate, sent / secs, rx / secs, loss * 1e6,
            all * 1e9 / tick / n, proc * 1e9 / tick / n, drops, cpu * 1e9 / tick / n }'
}

# The generator's own cost at RATE: the same blast with nothing forwarding (ip_forward=0, no
# forwarder), so the DUT receives each frame and discards it at its route lookup (silently:
# with forwarding off, ip_error sends no ICMP). (An ingress drop would be cleaner, but this
# kernel has no tc actions.) Prints all-CPU busy ns per packet sent.
calibrate() {
    local rate=$1 count=$(($1 * SECONDS_PER_STEP)) a0 a1 out sent
    ip netns exec "$DUT" sysctl -qw net.ipv4.ip_forward=0
    a0=$(all_ticks)
    out=$(ip netns exec "$SND" taskset -c 1 "$BL" blast 198.18.100.10 "$rate" "$count" $((SECONDS_PER_STEP + 1)))
    sleep 0.3
    a1=$(all_ticks)
    sent=$(awk '{ print $2 }' <<<"$out")
    awk -v all=$((a1 - a0)) -v tick="$TICK" -v sent="$sent" 'BEGIN { printf "%.0f\n", all * 1e9 / tick / (sent > 0 ? sent : 1) }'
}

# Loss-free rate search for one system. Appends step lines "system rate ..." to $DIR/steps and
# prints "best_rate ns_per_packet process_ns_per_packet generator_bound".
search() {
    local system=$1 rate=$STEP best=0 best_offered=0 best_ns=0 best_pns=0 bound=false fail=0 line
    local -a f
    try() {   # sets PASS
        line=$(step "$1")
        echo "$system $line" >>"$DIR/steps"
        read -r -a f <<<"$line"
        log "  $system $(printf '%8d' "${f[0]}") pps offered: sent ${f[1]}/s, at sink ${f[2]}/s, loss $(awk -v p="${f[3]}" 'BEGIN { printf "%.3f%%", p / 1e4 }'), all CPUs ${f[4]} ns/packet (CPU0 ${f[7]})${FWD_PID:+, process ${f[5]} ns/packet}, sink drops ${f[6]}"
        PASS=false
        if ((f[3] < 1000)); then
            PASS=true
            # The result is what reached the sink (below the offered rate when generator-bound).
            if ((f[2] > best)); then best=${f[2]} best_ns=${f[4]} best_pns=${f[5]} best_offered=${f[0]}; fi
        fi
        GENBOUND=false
        if ((f[1] * 100 < f[0] * 97)); then GENBOUND=true; fi
        return 0
    }
    while ((rate <= MAX_RATE)); do
        try "$rate"
        if [[ $GENBOUND == true ]]; then bound=true; break; fi
        if [[ $PASS != true ]]; then fail=$rate; break; fi
        rate=$((rate + STEP))
    done
    if ((fail > 0)); then   # refine between the last pass and the first failure
        local mid=$((fail - STEP / 2))
        if ((mid > best_offered)); then try $mid; fi
        if [[ $PASS == true ]]; then
            try $((mid + STEP / 4))
        elif ((mid - STEP / 4 > best_offered)); then
            try $((mid - STEP / 4))
        fi
    fi
    echo "$best $best_ns $best_pns $bound"
}

# Probe latency at RATE through the running system: writes "p50_us p99_us probes" to $DIR/lat.
latency() {
    local rate=$1 secs=$SECONDS_PER_STEP
    local max=$((secs * 1000 + 100))
    ip netns exec "$SNK" taskset -c 1 "$BL" probes k0 7 $((secs + 3)) "$max" >"$DIR/probes.txt" &
    local rx=$!
    PIDS+=("$rx")
    local i
    for i in $(seq 50); do grep -q ready "$DIR/probes.txt" && break; sleep 0.05; done
    ip netns exec "$SND" taskset -c 1 "$BL" blast 198.18.100.10 "$rate" $((rate * secs)) $((secs + 1)) 7 1000 >/dev/null
    sleep 0.3
    kill -INT "$rx" 2>/dev/null || true
    wait "$rx" 2>/dev/null || true
    grep -v ready "$DIR/probes.txt" | sort -n | awk '{ a[NR] = $1 } END {
        if (NR == 0) { print "0 0 0"; exit }
        i50 = int(NR * 0.50 + 0.5); i99 = int(NR * 0.99 + 0.5); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1
        printf "%.1f %.1f %d\n", a[i50] / 1000, a[i99] / 1000, NR }' >"$DIR/lat"
}

: >"$DIR/steps"
declare -A BEST NS PNS BOUND ALLNS GEN
SYSTEMS=${BENCH_SYSTEMS:-kernel forwarder raw mmsg}
for system in kernel forwarder raw mmsg; do BEST[$system]=0 NS[$system]=0 PNS[$system]=0 BOUND[$system]=false ALLNS[$system]=0 GEN[$system]=0; done
for system in $SYSTEMS; do
    log "== $system =="
    start_system "$system"
    read -r BEST[$system] ALLNS[$system] PNS[$system] BOUND[$system] < <(search "$system")
    stop_system
    [[ -f $DIR/forward-$system.txt ]] && log "  $system final: $(grep -m1 'total:' "$DIR/forward-$system.txt" || true)"
    GEN[$system]=0
    if ((BEST[$system] > 0)); then GEN[$system]=$(calibrate "${BEST[$system]}"); fi
    NS[$system]=$((ALLNS[$system] - GEN[$system]))
    log "  $system: ${BEST[$system]} pps; all CPUs ${ALLNS[$system]} ns/packet - generator alone ${GEN[$system]} = ${NS[$system]} ns/packet"
done

declare -A P50 P99 NPROBES
LAT_RATE=${BENCH_LAT_RATE:-$((BEST[forwarder] / 2))}
for system in kernel forwarder raw mmsg busy; do P50[$system]=0 P99[$system]=0 NPROBES[$system]=0; done
for system in ${BENCH_LAT_SYSTEMS-kernel forwarder raw mmsg busy}; do
    start_system "$system"
    latency "$LAT_RATE"
    read -r P50[$system] P99[$system] NPROBES[$system] <"$DIR/lat"
    log "  latency $system at $LAT_RATE pps: p50 ${P50[$system]} us, p99 ${P99[$system]} us (${NPROBES[$system]} probes)"
    stop_system
done
ADD50=$(awk -v a="${P50[forwarder]}" -v b="${P50[kernel]}" 'BEGIN { printf "%.1f", a - b }')
ADD99=$(awk -v a="${P99[forwarder]}" -v b="${P99[kernel]}" 'BEGIN { printf "%.1f", a - b }')
ADD50_RAW=$(awk -v a="${P50[raw]}" -v b="${P50[kernel]}" 'BEGIN { printf "%.1f", a - b }')
ADD99_RAW=$(awk -v a="${P99[raw]}" -v b="${P99[kernel]}" 'BEGIN { printf "%.1f", a - b }')
ADD50_BUSY=$(awk -v a="${P50[busy]}" -v b="${P50[kernel]}" 'BEGIN { printf "%.1f", a - b }')
ADD99_BUSY=$(awk -v a="${P99[busy]}" -v b="${P99[kernel]}" 'BEGIN { printf "%.1f", a - b }')
ADD50_MMSG=$(awk -v a="${P50[mmsg]}" -v b="${P50[kernel]}" 'BEGIN { printf "%.1f", a - b }')
ADD99_MMSG=$(awk -v a="${P99[mmsg]}" -v b="${P99[kernel]}" 'BEGIN { printf "%.1f", a - b }')

MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MACHINE="$(nproc) vCPU ${MODEL:-unknown CPU}, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)

if [[ $FORMAT == json ]]; then
    steps=$(awk '{ printf "%s{\"system\":\"%s\",\"offered_pps\":%s,\"sent_pps\":%s,\"sink_pps\":%s,\"loss_ppm\":%s,\"all_cpu_ns_per_packet\":%s,\"process_ns_per_packet\":%s,\"sink_drops\":%s,\"cpu0_ns_per_packet\":%s}", (NR > 1 ? ",\n    " : ""), $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$DIR/steps")
    cat <<JSON
{
  "forwarder_pps": ${BEST[forwarder]},
  "forwarder_ns_per_packet": ${NS[forwarder]},
  "kernel_pps": ${BEST[kernel]},
  "kernel_ns_per_packet": ${NS[kernel]},
  "raw_pps": ${BEST[raw]},
  "raw_ns_per_packet": ${NS[raw]},
  "mmsg_pps": ${BEST[mmsg]},
  "mmsg_ns_per_packet": ${NS[mmsg]},
  "added_latency_p50_us": $ADD50,
  "added_latency_p99_us": $ADD99,
  "forwarder_process_ns_per_packet": ${PNS[forwarder]},
  "raw_process_ns_per_packet": ${PNS[raw]},
  "mmsg_process_ns_per_packet": ${PNS[mmsg]},
  "generator_bound": {"kernel": ${BOUND[kernel]}, "forwarder": ${BOUND[forwarder]}, "raw": ${BOUND[raw]}, "mmsg": ${BOUND[mmsg]}},
  "latency_rate_pps": $LAT_RATE,
  "latency_us": {
    "kernel": {"p50": ${P50[kernel]}, "p99": ${P99[kernel]}, "probes": ${NPROBES[kernel]}},
    "forwarder": {"p50": ${P50[forwarder]}, "p99": ${P99[forwarder]}, "probes": ${NPROBES[forwarder]}},
    "raw": {"p50": ${P50[raw]}, "p99": ${P99[raw]}, "probes": ${NPROBES[raw]}},
    "busy_poll": {"p50": ${P50[busy]}, "p99": ${P99[busy]}, "probes": ${NPROBES[busy]}},
    "mmsg": {"p50": ${P50[mmsg]}, "p99": ${P99[mmsg]}, "probes": ${NPROBES[mmsg]}}
  },
  "busy_poll_added_latency_p50_us": $ADD50_BUSY,
  "busy_poll_added_latency_p99_us": $ADD99_BUSY,
  "raw_added_latency_p50_us": $ADD50_RAW,
  "raw_added_latency_p99_us": $ADD99_RAW,
  "mmsg_added_latency_p50_us": $ADD50_MMSG,
  "mmsg_added_latency_p99_us": $ADD99_MMSG,
  "seconds_per_step": $SECONDS_PER_STEP,
  "loss_threshold": 0.001,
  "cpu_method": "busy ticks of all CPUs (/proc/stat user+nice+system+irq+softirq) per packet at the sink, minus the same for the blaster alone at the same rate (DUT receives and discards: ip_forward=0, no forwarder)",
  "generator_ns_per_packet": {"kernel": ${GEN[kernel]}, "forwarder": ${GEN[forwarder]}, "raw": ${GEN[raw]}, "mmsg": ${GEN[mmsg]}},
  "all_cpu_ns_per_packet": {"kernel": ${ALLNS[kernel]}, "forwarder": ${ALLNS[forwarder]}, "raw": ${ALLNS[raw]}, "mmsg": ${ALLNS[mmsg]}},
  "machine": "$MACHINE",
  "date": "$DATE",
  "steps": [
    $steps
  ]
}
JSON
else
    echo "Live forwarding, $MACHINE, $DATE ($SECONDS_PER_STEP s per step, loss < 0.1%)"
    printf '%-10s %12s %16s %20s %s\n' system "pps" "DUT ns/packet" "process ns/packet" ""
    for system in kernel forwarder raw mmsg; do
        note=""
        [[ ${BOUND[$system]} == true ]] && note="(generator-bound: at least this much)"
        printf '%-10s %12s %16s %20s %s\n' "$system" "${BEST[$system]}" "${NS[$system]}" \
            "$([[ $system == kernel ]] && echo - || echo "${PNS[$system]}")" "$note"
    done
    echo "latency at $LAT_RATE pps (probe send -> sink receive): kernel p50 ${P50[kernel]} us p99 ${P99[kernel]} us;" \
        "forwarder p50 ${P50[forwarder]} us p99 ${P99[forwarder]} us; raw p50 ${P50[raw]} us p99 ${P99[raw]} us;" \
        "mmsg p50 ${P50[mmsg]} us p99 ${P99[mmsg]} us"
    echo "added by the forwarder: p50 $ADD50 us, p99 $ADD99 us (raw: p50 $ADD50_RAW us, p99 $ADD99_RAW us;" \
        "mmsg: p50 $ADD50_MMSG us, p99 $ADD99_MMSG us; --busy-poll: p50 $ADD50_BUSY us, p99 $ADD99_BUSY us)"
fi
