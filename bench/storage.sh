#!/usr/bin/env bash
# Side-by-side storage benchmark: corral (release build) and ZooKeeper 3.8 (Debian package) on the
# same disk, fsync on, driven by the same independent load generator (../shared/tools/zkbench).
# Prints a markdown table of results and ratios. Not a test: numbers move from run to run, so the
# servers alternate within one run and only ratios from the same run are meaningful.
#
# Usage: bench/storage.sh [NODES_FOR_RESTART (default 1000000)] [ROUNDS (default 2)]
set -euo pipefail
cd "$(dirname "$0")/.."
NODES=${1:-1000000}
ROUNDS=${2:-2}
ZKBENCH=${ZKBENCH:-../shared/tools/zkbench/zkbench}
[ -x "$ZKBENCH" ] || ZKBENCH=/work/shared/tools/zkbench/zkbench
cargo build --release -p corral >&2
CORRAL=target/release/corral
WORK=$(mktemp -d /var/tmp/corral-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

write_cfg() { # dir port
    mkdir -p "$1/data"
    cat > "$1/zoo.cfg" <<CFG
tickTime=2000
dataDir=$1/data
clientPort=$2
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=*
CFG
}

start() { # kind dir -> pid on stdout
    local kind=$1 dir=$2
    if [ "$kind" = zookeeper ]; then
        java -Xmx2g -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar \
            -Dlog4j.configuration=file:/etc/zookeeper/conf/log4j.properties -Dzookeeper.root.logger=WARN,CONSOLE \
            org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" >>"$dir/server.log" 2>&1 &
    else
        "$CORRAL" server --config "$dir/zoo.cfg" >>"$dir/server.log" 2>&1 &
    fi
    echo $!
}

stop() { # SIGTERM, then wait (bounded) until the process is really gone: it is not our child
    kill "$1" 2>/dev/null || true
    for _ in $(seq 1 600); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
}

field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }

declare -A RES
for kind in zookeeper corral; do
    dir="$WORK/$kind"; port=$(free_port); write_cfg "$dir" "$port"
    echo "$kind" > "$dir/kind"; echo "$port" > "$dir/port"
done

echo "# cases: rounds=$ROUNDS, machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB" >&2
# SKIP_CASES=1 runs only the restart part.
[ "${SKIP_CASES:-0}" = 1 ] && ROUNDS=0
for round in $(seq 1 "$ROUNDS"); do
    for kind in zookeeper corral; do
        dir="$WORK/$kind"; port=$(cat "$dir/port")
        pid=$(start "$kind" "$dir"); PIDS+=("$pid")
        python3 bench/probe.py "127.0.0.1:$port" / 60 >/dev/null
        for c in "create 20000 8 64 100" "set 20000 8 64 100" "create 2000 1 1 100" "set 2000 1 1 100"; do
            out=$("$ZKBENCH" "127.0.0.1:$port" $c)
            ops=$(echo "$out" | field ops_per_s); p99=$(echo "$out" | field p99_us)
            echo "round $round $kind $c: $out" >&2
            RES["$kind|$c|ops"]="${RES["$kind|$c|ops"]:-} $ops"
            RES["$kind|$c|p99"]="${RES["$kind|$c|p99"]:-} $p99"
        done
        stop "$pid"
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

[ "$ROUNDS" -gt 0 ] && echo "| case (zkbench, fsync on) | ZooKeeper ops/s | corral ops/s | ratio | ZooKeeper p99 µs | corral p99 µs |"
[ "$ROUNDS" -gt 0 ] && echo "|---|---|---|---|---|---|"
[ "$ROUNDS" -gt 0 ] && for c in "create 20000 8 64 100" "set 20000 8 64 100" "create 2000 1 1 100" "set 2000 1 1 100"; do
    zo=$(echo "${RES["zookeeper|$c|ops"]}" | median); co=$(echo "${RES["corral|$c|ops"]}" | median)
    zp=$(echo "${RES["zookeeper|$c|p99"]}" | median); cp=$(echo "${RES["corral|$c|p99"]}" | median)
    ratio=$(python3 -c "print(f'{$co/$zo:.2f}x')")
    echo "| $c | $zo | $co | $ratio | $zp | $cp |"
done

# Restart-to-serving with NODES znodes of 100 bytes.
for kind in zookeeper corral; do
    dir="$WORK/$kind-big"; port=$(free_port); write_cfg "$dir" "$port"
    pid=$(start "$kind" "$dir"); PIDS+=("$pid")
    python3 bench/probe.py "127.0.0.1:$port" / 60 >/dev/null
    "$ZKBENCH" "127.0.0.1:$port" create "$NODES" 8 64 100 >&2
    rss=$(ps -o rss= -p "$pid" | tr -d ' ')
    stop "$pid"
    snap=$(ls -S "$dir/data/version-2" | grep snapshot | head -1)
    pid=$(start "$kind" "$dir"); PIDS+=("$pid")
    secs=$(python3 bench/probe.py "127.0.0.1:$port" / 600)
    RES["$kind|restart"]=$secs; RES["$kind|rss"]=$rss
    stop "$pid"
    snapsize=$(du -b "$dir/data/version-2/"snapshot.* | sort -n | tail -1 | cut -f1)
    RES["$kind|snap"]=$snapsize
    echo "$kind: rss ${rss} KiB after $NODES creates, restart-to-serving ${secs} s, largest snapshot $snapsize bytes" >&2
done
echo
echo "| $NODES znodes of 100 B | ZooKeeper | corral | ratio |"
echo "|---|---|---|---|"
python3 - "${RES["zookeeper|restart"]}" "${RES["corral|restart"]}" "${RES["zookeeper|rss"]}" "${RES["corral|rss"]}" "${RES["zookeeper|snap"]}" "${RES["corral|snap"]}" <<'PY'
import sys
zr, cr, zm, cm, zs, cs = map(float, sys.argv[1:])
print(f"| restart to first read (s) | {zr:.2f} | {cr:.2f} | {cr/zr:.2f}x |")
print(f"| RSS after load (MiB) | {zm/1024:.0f} | {cm/1024:.0f} | {cm/zm:.2f}x |")
print(f"| snapshot size (MiB) | {zs/2**20:.0f} | {cs/2**20:.0f} | {cs/zs:.2f}x |")
PY
