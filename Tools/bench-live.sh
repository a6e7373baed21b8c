#!/usr/bin/env bash
# Tools/bench live: CPU per forwarded packet, loss and added latency of `maglev forward` against
# the kernel's own IP forwarding, on one topology, at one fixed rate, in interleaved rounds.
# A benchmark, not a test (run by hand, as root; figures go to docs/benchmarks.md).
#
#   Tools/bench live [--format json|text] [--rate PPS] [--rounds N] [--seconds S]
#                    [--systems kernel,io_uring,ring,ring-frames,xdp,mmsg] [--saturation yes|no] [--sat-seconds S]
#                    [--workers N] [--generators M]
#
# Scaling (issue 10 §5): --workers N runs `maglev forward --workers N` pinned to CPUs 0..N-1,
# and --generators M runs M blasters, each at RATE/M, pinned to CPUs N..N+M-1 (the probe
# receiver on CPU N); every veth end gets max(N, M) queues, so --io xdp has one receive queue
# per worker (and a transmit queue per worker on d1) and the blasters' flows spread over them. Needs N + M CPUs (the default,
# 1 and 1, fits 2 vCPUs). A machine with 16 cores runs e.g. --workers 4 --generators 4.
#
# Topology (three network namespaces made here, removed on exit; nothing in the root namespace;
# addresses from 198.18.0.0/15 only; static neighbours, IPv6 off, so nothing else is on the wire):
#
#   mgbenchPID-snd             mgbenchPID-dut                        mgbenchPID-snk
#   s0 198.18.0.2  <--veth-->  d0 198.18.0.1 | d1 198.18.2.1  <--veth-->  k0 198.18.2.2
#   VIP 198.18.100.10 via DUT   kernel: ip_forward=1, VIP via sink     counts and drops
#   c0 198.18.3.2 --veth--> c1 (down): the calibration's dead end
#                               maglev forward on d0: GRE to 198.18.1.1-4 via sink (ip_forward=0)
#
# veth settings, the same for every system: s0/d0 at veth's defaults (GRO off, so the DUT
# receives each frame inline in the blaster's send); d1/k0, the pair towards the sink, GRO on
# and TSO off on both ends (BENCH_SINK_GRO=off: GRO off, TSO on), which puts k0's receive on
# NAPI: the sink takes what the DUT sends in batches, whether the kernel forwarded it or
# `maglev forward` sent it (k0's rx_queue_0_xdp_packets, recorded per run, shows it).
#
# Systems: "kernel" (the DUT's own IPv4 forwarding, no encapsulation); any other name N runs
# `maglev forward --io N --workers 1` on d0 (GRE frames through AF_PACKET, the default send
# path; xdp-native and xdp-generic: --io xdp with that --xdp-mode; the GRE leaves by d1, another
# interface, so xdp sends it through io_uring and AF_PACKET, not its XSK TX ring), e.g. io_uring,
# ring, xdp and mmsg.
#
# CPUs (2 vCPUs, the defaults): the blaster and the probe receiver run under `taskset -c 1`, the
# forwarder under `taskset -c 0`. veth hands a frame to the peer's receive path on the sending
# CPU.
#
# Method (docs/benchmarks.md, "Live forwarding"):
# - Fixed common rate (--rate, default 150000 pps), the same for every system: the bounded
#   blaster (Tools/bench-live.c) sends rate x S packets, 1024 UDP flows, 60-byte frames, paced
#   on a 97 us tick (BENCH_TICK_US; 0: per packet): every tick it sends what is due.
# - Interleaved rounds (--rounds, default 3): each round measures the generator alone and then
#   every system once, in an order rotated by one per round.
# - Generator alone (every round): the same blast into a veth whose peer is down (c0 -> c1), so
#   the blaster's whole send path runs and the frame is dropped at veth's transmit.
# - CPU: busy ticks of all CPUs from /proc/stat (user+nice+system+irq+softirq) per packet
#   received at the sink, minus the generator alone's busy ticks per packet sent, same round.
#   Beside it, "task" CPU: what our own tasks ran (the blaster's CLOCK_PROCESS_CPUTIME_ID, the
#   forwarder's threads and ksoftirqd/N from /proc/PID/schedstat, in ns) per packet, minus the
#   same for the generator alone; it is blind to other work on the machine, so the difference
#   between the two ("unattributed") shows whether a run was disturbed. On a shared or
#   virtualised machine read the task figure: busy ticks are sampled at the 4 ms tick and take
#   in every tenant's work (docs/benchmarks.md has the measurements).
# - Sink cross-check: packets received at the sink (Ip InReceives in the sink namespace's
#   /proc/net/snmp, and k0's rx counter) against packets sent.
# - Latency: after each CPU run, the same system at half the rate for S seconds with one probe
#   every 250 us carrying CLOCK_REALTIME taken just before its sendto; the sink stamps it with
#   SO_TIMESTAMPNS on an AF_PACKET socket. Percentiles over all rounds; "added" = the system's
#   percentile minus the kernel's.
# - Saturation (--saturation yes): per system, offered rates from --rate up by x1.25 steps
#   (--sat-seconds each) until loss > 0.1% or the blaster cannot reach 97% of the offered rate
#   (then the result is generator-bound: the system forwarded all it got).
set -Eeuo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
MAGLEV=${MAGLEV:-$REPO/.build/release/maglev}
FORMAT=text RATE=150000 ROUNDS=3 SECS=3 SYSTEMS_ARG=kernel,io_uring,ring,ring-frames,xdp,mmsg SATURATION=yes SAT_SECS=2
WORKERS=1 GENERATORS=1
SAT_MAX=${BENCH_SAT_MAX:-1000000}
MAX_OTHER=${BENCH_MAX_OTHER:-0.10}   # a run is "disturbed" when other work used more of the CPUs
COMMAND_LINE="Tools/bench live $*"
usage() {
    echo "usage: Tools/bench live [--format json|text] [--rate PPS] [--rounds N] [--seconds S]" \
        "[--systems kernel,io_uring,ring,ring-frames,xdp,mmsg] [--saturation yes|no] [--sat-seconds S] [--workers N] [--generators M]" >&2
    exit 2
}
while [[ $# -gt 0 ]]; do
    [[ $# -ge 2 ]] || usage
    case "$1" in
    --format) FORMAT=$2 ;;
    --rate) RATE=$2 ;;
    --rounds) ROUNDS=$2 ;;
    --seconds) SECS=$2 ;;
    --systems) SYSTEMS_ARG=$2 ;;
    --saturation) SATURATION=$2 ;;
    --sat-seconds) SAT_SECS=$2 ;;
    --workers) WORKERS=$2 ;;
    --generators) GENERATORS=$2 ;;
    *) usage ;;
    esac
    shift 2
done
[[ $FORMAT == json || $FORMAT == text ]] || { echo "--format json|text" >&2; exit 2; }
[[ $RATE =~ ^[0-9]+$ ]] && ((RATE >= 1000 && RATE <= 5000000)) || { echo "--rate: 1000..5000000 pps" >&2; exit 2; }
[[ $ROUNDS =~ ^[0-9]+$ ]] && ((ROUNDS >= 1 && ROUNDS <= 20)) || { echo "--rounds: 1..20" >&2; exit 2; }
[[ $SECS =~ ^[0-9]+$ ]] && ((SECS >= 1 && SECS <= 30)) || { echo "--seconds: 1..30" >&2; exit 2; }
[[ $SAT_SECS =~ ^[0-9]+$ ]] && ((SAT_SECS >= 1 && SAT_SECS <= 30)) || { echo "--sat-seconds: 1..30" >&2; exit 2; }
[[ $SATURATION == yes || $SATURATION == no ]] || { echo "--saturation yes|no" >&2; exit 2; }
IFS=, read -r -a SYSTEMS <<<"$SYSTEMS_ARG"
for s in "${SYSTEMS[@]}"; do
    [[ $s =~ ^[a-z][a-z0-9_-]*$ && $s != generator ]] || { echo "--systems: kernel and --io engine names, comma-separated" >&2; exit 2; }
done
[[ $(id -u) == 0 ]] || { echo "Tools/bench live needs root (network namespaces, raw sockets)" >&2; exit 1; }
command -v ip >/dev/null && command -v taskset >/dev/null && command -v jq >/dev/null || {
    echo "needs ip (iproute2), taskset (util-linux) and jq" >&2; exit 1; }
[[ $WORKERS =~ ^[0-9]+$ ]] && ((WORKERS >= 1 && WORKERS <= 64)) || { echo "--workers: 1..64" >&2; exit 2; }
[[ $GENERATORS =~ ^[0-9]+$ ]] && ((GENERATORS >= 1 && GENERATORS <= 64)) || { echo "--generators: 1..64" >&2; exit 2; }
# BENCH_OVERCOMMIT=1 lets a small machine run the scaling code paths (CPUs taken modulo its
# count; the figures then mean nothing): for checking the script, not for measuring.
NCPU=$(nproc)
((NCPU >= WORKERS + GENERATORS)) || [[ ${BENCH_OVERCOMMIT:-0} == 1 ]] || {
    echo "needs $((WORKERS + GENERATORS)) CPUs (forwarder on CPUs 0..$((WORKERS - 1)), generators after them); this machine has $NCPU" >&2
    exit 1
}
FWD_CPUS=0-$(((WORKERS - 1) % NCPU))
((WORKERS <= NCPU)) || FWD_CPUS=0-$((NCPU - 1))
cpu_of() { echo $(($1 % NCPU)); }
GEN_CPU0=$(cpu_of "$WORKERS")
QUEUES=$((WORKERS > GENERATORS ? WORKERS : GENERATORS))
for s in "${SYSTEMS[@]}"; do
    [[ $s == kernel || -x $MAGLEV ]] || { echo "no $MAGLEV: swift build -c release --product maglev" >&2; exit 1; }
done

log() { echo "$*" >&2; }
NS=mgbench$$
SND=$NS-snd DUT=$NS-dut SNK=$NS-snk
DIR=$(mktemp -d)
PIDS=()
cleanup() {
    set +e   # never stop half-way: a failed kill or wait must not leave namespaces behind
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
    ip netns del "$SND" 2>/dev/null
    ip netns del "$DUT" 2>/dev/null
    ip netns del "$SNK" 2>/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cc -O2 -Wall -o "$DIR/bench-live" Tools/bench-live.c -lm
# The blaster wakes every BENCH_TICK_US microseconds and sends what is due (14-15 packets at
# 150k pps), whatever the system: its own cost per packet then matches the calibration's. 97,
# not 100: a period that divides the kernel's accounting tick (4 ms at HZ=250) keeps the same
# phase against it, so tick-sampled busy time aliases (a whole quiet run of the blaster alone
# was once sampled at 156 ns per packet against 2,352 ns of measured run time).
export BENCH_TICK_US=${BENCH_TICK_US:-97}
BL=$DIR/bench-live

# ---- topology ----
MAC_S=02:00:5e:12:10:01 MAC_D0=02:00:5e:12:10:02 MAC_D1=02:00:5e:12:10:03 MAC_K=02:00:5e:12:10:04
MAC_C0=02:00:5e:12:10:05 MAC_C1=02:00:5e:12:10:06
ip netns add "$SND"
ip netns add "$DUT"
ip netns add "$SNK"
ip -n "$SND" link add s0 address $MAC_S numtxqueues $QUEUES numrxqueues $QUEUES type veth \
    peer name d0 address $MAC_D0 numtxqueues $QUEUES numrxqueues $QUEUES netns "$DUT"
ip -n "$DUT" link add d1 address $MAC_D1 numtxqueues $QUEUES numrxqueues $QUEUES type veth \
    peer name k0 address $MAC_K numtxqueues $QUEUES numrxqueues $QUEUES netns "$SNK"
ip -n "$SND" link add c0 address $MAC_C0 type veth peer name c1 address $MAC_C1
for ns in "$SND" "$DUT" "$SNK"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
        net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.ip_forward=0
    ip -n "$ns" link set lo up
done
ip -n "$SND" addr add 198.18.0.2/24 dev s0
ip -n "$SND" addr add 198.18.3.2/24 dev c0
ip -n "$DUT" addr add 198.18.0.1/24 dev d0
ip -n "$DUT" addr add 198.18.2.1/24 dev d1
ip -n "$SNK" addr add 198.18.2.2/24 dev k0
# The pair towards the sink: GRO on and TSO off on both ends. GRO on makes k0 receive through
# NAPI in batches; veth hands a frame to that NAPI path only when the sending side (d1) has TSO
# off (else only socket-owned frames with rx-gro-list on the receiver would qualify: the
# forwarder's AF_PACKET frames but not the kernel's forwarded ones).
SINK_GRO=${BENCH_SINK_GRO:-on}
SINK_TSO=off
[[ $SINK_GRO == on ]] || SINK_TSO=on
for end in "$DUT d1" "$SNK k0"; do
    read -r ns dev <<<"$end"
    ip netns exec "$ns" "$BL" feature "$dev" gro "$SINK_GRO" >/dev/null
    ip netns exec "$ns" "$BL" feature "$dev" tso "$SINK_TSO" >/dev/null
done
ip -n "$SND" link set s0 up
ip -n "$SND" link set c0 up   # c1 stays down: what is sent to c0 is dropped at veth's transmit
ip -n "$DUT" link set d0 up
ip -n "$DUT" link set d1 up
ip -n "$SNK" link set k0 up
ip -n "$SND" neigh replace 198.18.0.1 lladdr $MAC_D0 dev s0 nud permanent
ip -n "$SND" neigh replace 198.18.3.1 lladdr $MAC_C1 dev c0 nud permanent
ip -n "$DUT" neigh replace 198.18.0.2 lladdr $MAC_S dev d0 nud permanent
ip -n "$DUT" neigh replace 198.18.2.2 lladdr $MAC_K dev d1 nud permanent
ip -n "$SNK" neigh replace 198.18.2.1 lladdr $MAC_D1 dev k0 nud permanent
ip -n "$SND" route add 198.18.100.0/24 via 198.18.0.1 dev s0
ip -n "$SND" route add 198.18.200.0/24 via 198.18.3.1 dev c0   # the calibration's destination
ip -n "$DUT" route add 198.18.100.0/24 via 198.18.2.2 dev d1   # kernel forwarding: VIP to the sink
ip -n "$DUT" route add 198.18.1.0/24 via 198.18.2.2 dev d1     # GRE to backends: via the sink
# The sink has ip_forward=0 and no routes beyond its link: what arrives is counted and dropped.
VIP=198.18.100.10 DEAD_END=198.18.200.10
feature() { ip netns exec "$1" "$BL" feature "$2" "$3" | awk '{ print $3 }'; }
SETTINGS="s0/d0: veth defaults (GRO $(feature "$DUT" d0 gro), TSO $(feature "$SND" s0 tso)), no RPS;"
SETTINGS+=" d1/k0 (towards the sink): GRO $(feature "$DUT" d1 gro)/$(feature "$SNK" k0 gro),"
SETTINGS+=" TSO $(feature "$DUT" d1 tso)/$(feature "$SNK" k0 tso)"
[[ $SINK_GRO == on ]] && SETTINGS+=" (k0 receives through veth NAPI, in batches, for every system; checked per run: sink_napi_packets)"
SETTINGS+=", no RPS; static neighbours, IPv6 off, rp_filter off, sink ip_forward=0"

cat >"$DIR/lb.yaml" <<YAML
encap:
  source_ipv4: 198.18.2.1
connection_tracking:
  capacity: 65536
vips:
  - name: bench
    address: $VIP
    backends:
      - { name: b1, address: 198.18.1.1 }
      - { name: b2, address: 198.18.1.2 }
      - { name: b3, address: 198.18.1.3 }
      - { name: b4, address: 198.18.1.4 }
YAML

# ---- counters ----
TICK=$(getconf CLK_TCK)
all_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
steal_ticks() { awk '$1 == "cpu" { print $9 }' /proc/stat; }
KSOFTIRQD=()
for p in /proc/[0-9]*; do
    [[ $(cat "$p/comm" 2>/dev/null) == ksoftirqd/* ]] && KSOFTIRQD+=("${p#/proc/}")
done
# Run time in ns of every thread of the given processes.
task_ns() {
    local total=0 pid f t
    for pid in "$@"; do
        [[ -n $pid ]] || continue
        for f in /proc/"$pid"/task/*/schedstat; do
            read -r t _ <"$f" 2>/dev/null || continue
            total=$((total + t))
        done
    done
    echo "$total"
}
sink_in_receives() { ip netns exec "$SNK" awk '$1 == "Ip:" && ++n == 2 { print $4 }' /proc/net/snmp; }
sink_rx_packets() { ip -n "$SNK" -s -j link show k0 | jq '.[0].stats64.rx.packets'; }
sink_napi_packets() { ip netns exec "$SNK" "$BL" stat k0 rx_queue_0_xdp_packets; }   # frames k0 took via NAPI

FWD_PID=""
start_system() {   # generator | kernel | ENGINE
    FWD_PID=""
    case "$1" in
    generator) ;;
    kernel) ip netns exec "$DUT" sysctl -qw net.ipv4.ip_forward=1 ;;
    *)
        ip netns exec "$DUT" sysctl -qw net.ipv4.ip_forward=0
        # xdp-native / xdp-generic: --io xdp with that --xdp-mode.
        local engine=$1 extra=()
        case "$1" in xdp-native | xdp-generic) engine=xdp extra=(--xdp-mode "${1#xdp-}") ;; esac
        ip netns exec "$DUT" taskset -c "$FWD_CPUS" "$MAGLEV" forward --config "$DIR/lb.yaml" --interface d0 --workers "$WORKERS" \
            --io "$engine" "${extra[@]}" ${BENCH_FORWARD_ARGS:-} --duration 300 >"$DIR/forward.txt" 2>&1 &
        FWD_PID=$!
        PIDS+=("$FWD_PID")
        local i
        # Up to 30 s: on a loaded machine the pinned forwarder shares its CPU with other work.
        for i in $(seq 300); do
            grep -Eq '(^|[] :])forwarding( |$)' "$DIR/forward.txt" && break
            kill -0 "$FWD_PID" 2>/dev/null || { cat "$DIR/forward.txt" >&2; exit 1; }
            sleep 0.1
        done
        grep -Eq '(^|[] :])forwarding( |$)' "$DIR/forward.txt" || {
            cat "$DIR/forward.txt" >&2
            log "forwarder ($1) did not start within 30 s (its output is above)"
            exit 1
        }
        sleep 0.2
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

# GENERATORS blasters at RATE/GENERATORS each, in parallel, each pinned to its CPU: prints one
# blaster-style line with their sums ("sent N probes 0 seconds S cpu_ns C"; S the longest).
blast_all() {
    local dest=$1 rate=$2 count=$3 max_secs=$4 g
    if ((GENERATORS == 1)); then
        ip netns exec "$SND" taskset -c "$GEN_CPU0" "$BL" blast "$dest" "$rate" "$count" "$max_secs"
        return
    fi
    local pids=()
    for ((g = 0; g < GENERATORS; g++)); do
        ip netns exec "$SND" taskset -c "$(cpu_of $((WORKERS + g)))" "$BL" blast "$dest" $((rate / GENERATORS)) \
            $((count / GENERATORS)) "$max_secs" >"$DIR/blast-$g.txt" &
        pids+=($!)
    done
    wait "${pids[@]}"
    cat "$DIR"/blast-*.txt | awk '{ sent += $2; if ($6 > secs) secs = $6; cpu += $8 }
        END { printf "sent %d probes 0 seconds %s cpu_ns %d\n", sent, secs, cpu }'
    rm -f "$DIR"/blast-*.txt
}

# One CPU run of SYSTEM (already started) at RATE for SECONDS: appends a JSON line to FILE.
cpu_run() {
    local system=$1 round=$2 rate=$3 secs=$4 file=$5
    local dest=$VIP count=$(($3 * $4))
    [[ $system == generator ]] && dest=$DEAD_END
    local a0 t0 i0 r0 w0 f0 n0 s0 a1 t1 i1 r1 w1 f1 n1 s1 out
    # The busy-tick window holds the blast and 0.2 s for the last packets to drain, not the
    # counter reads around it (each costs a few milliseconds of CPU).
    i0=$(sink_in_receives) r0=$(sink_rx_packets) n0=$(sink_napi_packets) f0=$(task_ns $FWD_PID) t0=$(task_ns $FWD_PID "${KSOFTIRQD[@]}")
    s0=$(steal_ticks) a0=$(all_ticks) w0=$(date +%s%N)
    out=$(blast_all "$dest" "$rate" "$count" $((secs + 1)))
    sleep 0.2
    a1=$(all_ticks) w1=$(date +%s%N) s1=$(steal_ticks) t1=$(task_ns $FWD_PID "${KSOFTIRQD[@]}") f1=$(task_ns $FWD_PID)
    i1=$(sink_in_receives) r1=$(sink_rx_packets) n1=$(sink_napi_packets)
    local sent secs_run blaster_ns
    read -r _ sent _ _ _ secs_run _ blaster_ns <<<"$out"
    printf '{"system":"%s","round":%d,"offered_pps":%d,"sent":%d,"seconds":%s,"sink_ip_in_receives":%d,"sink_rx_packets":%d,"busy_ns":%d,"task_ns":%d,"window_ns":%d,"forwarder_ns":%d,"sink_napi_packets":%d,"steal_ns":%d}\n' \
        "$system" "$round" "$rate" "$sent" "$secs_run" $((i1 - i0)) $((r1 - r0)) \
        $(((a1 - a0) * (1000000000 / TICK))) $((t1 - t0 + blaster_ns)) $((w1 - w0)) $((f1 - f0)) $((n1 - n0)) $(((s1 - s0) * (1000000000 / TICK))) >>"$file"
}

# A latency run of SYSTEM (already started) at RATE for SECONDS: appends one latency in ns per
# probe to $DIR/lat-SYSTEM.
latency_run() {
    local system=$1 rate=$2 secs=$3 round=$4 every_us=250
    local max=$((secs * 1000000 / every_us + 100))
    ip netns exec "$SNK" taskset -c "$GEN_CPU0" "$BL" probes k0 7 $((secs + 3)) "$max" >"$DIR/probes.txt" &
    local rx=$!
    PIDS+=("$rx")
    local i
    for i in $(seq 50); do grep -q ready "$DIR/probes.txt" && break; sleep 0.05; done
    ip netns exec "$SND" taskset -c "$GEN_CPU0" "$BL" blast "$VIP" "$rate" $((rate * secs)) $((secs + 1)) 7 "$every_us" >/dev/null
    sleep 0.3
    kill -INT "$rx" 2>/dev/null || true
    wait "$rx" 2>/dev/null || true
    grep -v ready "$DIR/probes.txt" >"$DIR/lat-$system-$round" || true
    cat "$DIR/lat-$system-$round" >>"$DIR/lat-$system"
}

: >"$DIR/runs.jsonl"
: >"$DIR/sat.jsonl"
for s in "${SYSTEMS[@]}"; do : >"$DIR/lat-$s"; done
HALF=$((RATE / 2))
START=$(date +%s)
ORDER=(generator "${SYSTEMS[@]}")
for ((round = 1; round <= ROUNDS; round++)); do
    shift_by=$(((round - 1) % ${#ORDER[@]}))
    order=("${ORDER[@]:shift_by}" "${ORDER[@]:0:shift_by}")
    log "== round $round/$ROUNDS at $RATE pps: ${order[*]} =="
    for system in "${order[@]}"; do
        start_system "$system"
        cpu_run "$system" "$round" "$RATE" "$SECS" "$DIR/runs.jsonl"
        log "  $(tail -n 1 "$DIR/runs.jsonl")"
        if [[ $system != generator ]]; then
            latency_run "$system" "$HALF" "$SECS" "$round"
            if [[ -n $FWD_PID ]]; then
                log "  $system latency probes so far: $(wc -l <"$DIR/lat-$system")"
            fi
        fi
        stop_system
        [[ $system == kernel || $system == generator ]] || log "  $system final: $(grep -m1 'total:' "$DIR/forward.txt" || true)"
    done
done

if [[ $SATURATION == yes ]]; then
    for system in "${SYSTEMS[@]}"; do
        log "== saturation: $system =="
        start_system "$system"
        rate=$RATE prev=0
        while ((rate <= SAT_MAX)); do
            cpu_run "$system" 0 "$rate" "$SAT_SECS" "$DIR/sat.jsonl"
            line=$(tail -n 1 "$DIR/sat.jsonl")
            log "  $line"
            # Stop at the first lossy step, or where the blaster fell short of the offered rate.
            jq -e '(.sent - .sink_ip_in_receives) <= .sent / 1000 and .sent >= .offered_pps * .seconds * 0.97' <<<"$line" >/dev/null || break
            rate=$((rate * 5 / 4))
        done
        stop_system
    done
fi
ELAPSED=$(($(date +%s) - START))

# ---- latency percentiles (all rounds together, and each round) ----
percentiles() {   # FILE SYSTEM ROUND: one JSON line
    sort -n "$1" | awk -v s="$2" -v r="$3" '{ a[NR] = $1 } END {
        if (NR == 0) { printf "{\"system\":\"%s\",\"round\":%d,\"probes\":0,\"p50\":null,\"p99\":null,\"p99_9\":null}\n", s, r; exit }
        split("0.5 0.99 0.999", q, " ")
        for (k = 1; k <= 3; k++) { i = int(NR * q[k] + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; v[k] = a[i] / 1000 }
        printf "{\"system\":\"%s\",\"round\":%d,\"probes\":%d,\"p50\":%.1f,\"p99\":%.1f,\"p99_9\":%.1f}\n", s, r, NR, v[1], v[2], v[3] }'
}
: >"$DIR/lat.jsonl"
: >"$DIR/lat-rounds.jsonl"
for s in "${SYSTEMS[@]}"; do
    percentiles "$DIR/lat-$s" "$s" 0 >>"$DIR/lat.jsonl"
    for ((round = 1; round <= ROUNDS; round++)); do
        percentiles "$DIR/lat-$s-$round" "$s" "$round" >>"$DIR/lat-rounds.jsonl"
    done
done

MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MACHINE="$(nproc) vCPU ${MODEL:-unknown CPU}, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)

JSON=$(jq -n \
    --slurpfile runs "$DIR/runs.jsonl" --slurpfile sat "$DIR/sat.jsonl" --slurpfile lat "$DIR/lat.jsonl" \
    --slurpfile latr "$DIR/lat-rounds.jsonl" --argjson tick "$BENCH_TICK_US" \
    --argjson rate "$RATE" --argjson rounds "$ROUNDS" --argjson secs "$SECS" --argjson sat_secs "$SAT_SECS" \
    --arg systems "$SYSTEMS_ARG" --arg machine "$MACHINE" --arg date "$DATE" --arg command "$COMMAND_LINE" \
    --arg settings "$SETTINGS" --argjson elapsed "$ELAPSED" --argjson sat_max "$SAT_MAX" \
    --argjson ncpu "$(nproc)" --argjson max_other "$MAX_OTHER" \
    --argjson workers "$WORKERS" --argjson generators "$GENERATORS" '
def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def r0: if . == null then null else (. + 0.5 | floor) end;
def r2: if . == null then null else (. * 100 + 0.5 | floor) / 100 end;
def other_share: (.busy_ns - .task_ns) / (.window_ns * $ncpu);
($systems | split(",")) as $names
| [$runs[] | select(.system == "generator")] as $gen
| ($gen | map({key: (.round | tostring), value: {busy: (.busy_ns / .sent), task: (.task_ns / .sent), other: other_share}})
   | from_entries) as $cal
| [$runs[] | select(.system != "generator")
   | . as $r | $cal[$r.round | tostring] as $c
   | ([.sink_ip_in_receives, 1] | max) as $n
   | . + {
       other_cpu_share: other_share,
       disturbed: (other_share > $max_other or $c.other > $max_other),
       all_ns_per_packet: (.busy_ns / $n),
       ns_per_packet: (.busy_ns / $n - $c.busy),
       task_ns_per_packet: (.task_ns / $n - $c.task),
       unattributed_ns_per_packet: ((.busy_ns - .task_ns) / $n),
       loss: ((.sent - .sink_ip_in_receives) / .sent),
       sink_check: (.sink_ip_in_receives == .sent and .sink_rx_packets == .sent)}] as $measured
| (reduce $lat[] as $l ({}; .[$l.system] = $l)) as $latency
| ($names | map(. as $s | {key: $s, value: ([$measured[] | select(.system == $s)] | sort_by(.round))}) | from_entries) as $by
| def quiet: (map(select(.disturbed | not)) | if length > 0 then . else null end);
  ($by["kernel"] // [] | (quiet // .) | map(.ns_per_packet) | median) as $kernel_ns
| ($by["kernel"] // [] | map(.task_ns_per_packet) | median) as $kernel_task
| {
    rate_pps: $rate, rounds: $rounds, seconds_per_run: $secs,
    latency_rate_pps: ($rate / 2 | floor), latency_probe_every_us: 250, blaster_tick_us: $tick,
    systems: ($names | map(. as $s | $by[$s] as $rs | ($rs | (quiet // .) | map(.ns_per_packet) | median) as $med
      | ($rs | map(.task_ns_per_packet) | median) as $tmed | {key: $s, value: {
        ns_per_packet_median: ($med | r0),
        ns_per_packet_rounds: ($rs | map(.ns_per_packet | r0)),
        ns_per_packet_median_of: (if ($rs | quiet) == null then "all rounds (every round disturbed: not trustworthy)"
          else "\($rs | quiet | length) undisturbed rounds" end),
        rounds_disturbed: ($rs | map(.disturbed)),
        other_cpu_share_rounds: ($rs | map(.other_cpu_share | r2)),
        ns_per_packet_min: ($rs | map(.ns_per_packet) | min | r0),
        ns_per_packet_max: ($rs | map(.ns_per_packet) | max | r0),
        ratio_to_kernel: (if $kernel_ns == null or $kernel_ns <= 0 then null else ($med / $kernel_ns | r2) end),
        task_ns_per_packet_median: ($tmed | r0),
        task_ns_per_packet_rounds: ($rs | map(.task_ns_per_packet | r0)),
        task_ratio_to_kernel: (if $kernel_task == null or $kernel_task <= 0 then null else ($tmed / $kernel_task | r2) end),
        unattributed_ns_per_packet_rounds: ($rs | map(.unattributed_ns_per_packet | r0)),
        forwarder_process_ns_per_packet_rounds: ($rs | map(.forwarder_ns / ([.sink_ip_in_receives, 1] | max) | r0)),
        loss_rounds: ($rs | map(.loss)),
        loss_max: ($rs | map(.loss) | max),
        sink_check: {
          holds: ($rs | all(.sink_check)),
          sent_rounds: ($rs | map(.sent)),
          sink_ip_in_receives_rounds: ($rs | map(.sink_ip_in_receives)),
          sink_rx_packets_rounds: ($rs | map(.sink_rx_packets)),
          sink_napi_packets_rounds: ($rs | map(.sink_napi_packets)),
          all_through_napi: ($rs | all(.sink_napi_packets == .sink_rx_packets))},
        sent_pps_rounds: ($rs | map(.sent / .seconds | r0)),
        latency_us: ($latency[$s] | {probes, p50, p99, p99_9}),
        latency_us_rounds: ([$latr[] | select(.system == $s)] | sort_by(.round) | map({probes, p50, p99, p99_9})),
        added_latency_us: (if $latency["kernel"].probes > 0 and $latency[$s].probes > 0 then
          {p50: ($latency[$s].p50 - $latency["kernel"].p50 | r2), p99: ($latency[$s].p99 - $latency["kernel"].p99 | r2),
           p99_9: ($latency[$s].p99_9 - $latency["kernel"].p99_9 | r2)} else null end),
        saturation: ([$sat[] | select(.system == $s)] as $steps
          | ([$steps[] | select((.sent - .sink_ip_in_receives) <= .sent / 1000)] | max_by(.sink_ip_in_receives / .seconds)) as $best
          | (if $steps | length == 0 then null else {
            max_loss_free_pps: (if $best == null then 0 else ($best.sink_ip_in_receives / $best.seconds | r0) end),
            generator_bound: ($steps | any(.sent < .offered_pps * .seconds * 0.97)
              and all((.sent - .sink_ip_in_receives) <= .sent / 1000)),
            ceiling_reached: ($steps | all((.sent - .sink_ip_in_receives) <= .sent / 1000)
              and all(.sent >= .offered_pps * .seconds * 0.97)),
            steps: ($steps | map({offered_pps, sent_pps: (.sent / .seconds | r0), sink_pps: (.sink_ip_in_receives / .seconds | r0),
              loss: ((.sent - .sink_ip_in_receives) / .sent), all_ns_per_packet: (.busy_ns / ([.sink_ip_in_receives, 1] | max) | r0)}))}
          end))}}) | from_entries),
    calibration: {
      what: "generator alone: the same blast into a veth whose peer is down (dropped at veth transmit)",
      busy_ns_per_packet_rounds: ($gen | sort_by(.round) | map(.busy_ns / .sent | r0)),
      other_cpu_share_rounds: ($gen | sort_by(.round) | map(other_share | r2)),
      task_ns_per_packet_rounds: ($gen | sort_by(.round) | map(.task_ns / .sent | r0)),
      sent_pps_rounds: ($gen | sort_by(.round) | map(.sent / .seconds | r0))},
    disturbed_limit: $max_other,
    disturbed_when: "work other than ours (busy ticks minus our tasks run time) above \($max_other * 100)% of all CPUs in the run or in its round calibration; the busy-tick median leaves such rounds out when any other round is left",
    cpu_method: "busy ticks of all CPUs (/proc/stat user+nice+system+irq+softirq) per packet received at the sink, minus the generator alone busy ticks per packet sent in the same round; task_*: run time of our tasks (blaster, forwarder threads, ksoftirqd) instead of busy ticks, blind to other work on the machine",
    sink_check_method: "Ip InReceives of the sink namespace (/proc/net/snmp) and k0 rx packets, each equal to packets sent",
    latency_method: "probe send (CLOCK_REALTIME before sendto) to the sink AF_PACKET SO_TIMESTAMPNS, at half the rate; added = system percentile minus kernel percentile",
    saturation_method: ("offered rate from the common rate up by x1.25 steps of \($sat_secs) s (at most \($sat_max) pps) until loss > 0.1% or the blaster sends < 97% of the offered rate (generator-bound)"),
    veth_settings: $settings,
    ratios_to_kernel: ($names | map(. as $s | {key: $s, value: {
        busy_ticks: (($by[$s] | (quiet // .) | map(.ns_per_packet) | median) as $m
          | if $kernel_ns == null or $kernel_ns <= 0 then null else ($m / $kernel_ns | r2) end),
        tasks: (($by[$s] | map(.task_ns_per_packet) | median) as $m
          | if $kernel_task == null or $kernel_task <= 0 then null else ($m / $kernel_task | r2) end)}}) | from_entries),
    targets: ({io_uring_cpu_ratio_max: 2.0, added_p99_us_max: 100, added_p50_us_max: 15} as $t | $t + (
      if ($names | index("io_uring")) == null then {} else
        (($by["io_uring"] | map(.task_ns_per_packet) | median) as $m
         | {io_uring_task_ratio: (if $kernel_task == null or $kernel_task <= 0 then null else ($m / $kernel_task | r2) end),
            io_uring_added_p99_us: (if $latency["kernel"].probes > 0 then ($latency["io_uring"].p99 - $latency["kernel"].p99 | r2) else null end),
            io_uring_added_p50_us: (if $latency["kernel"].probes > 0 then ($latency["io_uring"].p50 - $latency["kernel"].p50 | r2) else null end)}
         | . + {cpu_met: (.io_uring_task_ratio != null and .io_uring_task_ratio <= $t.io_uring_cpu_ratio_max),
                p99_met: (.io_uring_added_p99_us != null and .io_uring_added_p99_us <= $t.added_p99_us_max),
                p50_met: (.io_uring_added_p50_us != null and .io_uring_added_p50_us <= $t.added_p50_us_max)})
      end)),
    order_rotated: true, elapsed_seconds: $elapsed, command: $command, machine: $machine, date: $date,
    workers: $workers, generators: $generators,
    runs: $runs }')

if [[ $FORMAT == json ]]; then
    echo "$JSON"
else
    jq -r '
      def pad($n): tostring | if length < $n then " " * ($n - length) + . else . end;
      def rpad($n): tostring | if length < $n then . + " " * ($n - length) else . end;
      "Live forwarding at \(.rate_pps) pps, \(.rounds) interleaved rounds of \(.seconds_per_run) s; \(.machine), \(.date)",
      "veth: \(.veth_settings)",
      "generator alone: \(.calibration.busy_ns_per_packet_rounds | map(tostring) | join(" / ")) ns/packet (busy ticks),"
        + " \(.calibration.task_ns_per_packet_rounds | map(tostring) | join(" / ")) (tasks); sent \(.calibration.sent_pps_rounds | map(tostring) | join(" / ")) pps",
      "",
      "net CPU ns per forwarded packet (all CPUs, minus the generator alone), median and rounds; x kernel",
      "\("system" | rpad(10)) \("busy ticks" | pad(10)) \("rounds" | rpad(24)) \("x" | pad(6)) \("tasks" | pad(7)) \("rounds" | rpad(24)) \("x" | pad(6))  loss max  sink check",
      (.systems | to_entries[] | .value as $v |
        "\(.key | rpad(10)) \($v.ns_per_packet_median | pad(10)) \($v.ns_per_packet_rounds | map(tostring) | join(", ") | rpad(24)) \($v.ratio_to_kernel | pad(6)) \($v.task_ns_per_packet_median | pad(7)) \($v.task_ns_per_packet_rounds | map(tostring) | join(", ") | rpad(24)) \($v.task_ratio_to_kernel | pad(6))  \($v.loss_max | pad(8))  \(if $v.sink_check.holds then "holds" else "FAILS" end)"),
      .disturbed_limit as $limit | (.systems | to_entries | map(select(.value.rounds_disturbed | any)) | if length > 0 then
        "disturbed rounds (other work above \($limit * 100)% of the CPUs): "
          + (map("\(.key) \(.value.rounds_disturbed | map(if . then "yes" else "no" end) | join("/")) (other work \(.value.other_cpu_share_rounds | map(. * 100 | floor | tostring + "%") | join("/")))") | join(", "))
          + "; busy-tick figures of disturbed rounds are not trustworthy, the task figures are"
        else empty end),
      "",
      "latency at \(.latency_rate_pps) pps, probe send to sink receive, us (added over the kernel)",
      "\("system" | rpad(10)) \("probes" | pad(7)) \("p50" | pad(16)) \("p99" | pad(18)) \("p99.9" | pad(18))  p99 per round",
      (.systems | to_entries[] | .value as $v | $v.latency_us as $l | $v.added_latency_us as $a |
        "\(.key | rpad(10)) \($l.probes | pad(7)) \("\($l.p50) (+\($a.p50))" | pad(16)) \("\($l.p99) (+\($a.p99))" | pad(18)) \("\($l.p99_9) (+\($a.p99_9))" | pad(18))  \($v.latency_us_rounds | map(.p99 | tostring) | join(" / "))"),
      (if [.systems[].saturation] | any(. != null) then "", "saturation (max loss-free pps at the sink):" else empty end),
      (.systems | to_entries[] | select(.value.saturation != null) | .value.saturation as $s |
        "  \(.key | rpad(10)) \($s.max_loss_free_pps | pad(8))\(if $s.generator_bound then "  generator-bound: the blaster fell short of the offered rate, the system lost nothing; at least this much" elif $s.ceiling_reached then "  search ceiling reached" else "" end)")
    ' <<<"$JSON"
fi
