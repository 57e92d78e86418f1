#!/usr/bin/env bash
# Side-by-side 3-node ensemble benchmark: write throughput through the ensemble and the time from
# kill -9 of the leader to the first acknowledged write, corral (release build) vs ZooKeeper 3.8
# (Debian package), same machine, same disk, fsync on, same settings (tickTime=2000, initLimit=10,
# syncLimit=5), driven by the same independent load generator (../shared/tools/zkbench) and
# bench/probe.py. Not a test: numbers move from run to run, so the two alternate within one run
# and only ratios from the same run are meaningful.
#
# Usage: bench/ensemble.sh [ROUNDS (default 2)] [FAILOVERS_PER_ROUND (default 3)]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
FAILOVERS=${2:-3}
ZKBENCH=${ZKBENCH:-../shared/tools/zkbench/zkbench}
[ -x "$ZKBENCH" ] || ZKBENCH=/work/shared/tools/zkbench/zkbench
# CORRAL=path runs another build (e.g. a debug one to try the script); numbers need release.
if [ -z "${CORRAL:-}" ]; then cargo build --release -p corral >&2; CORRAL=target/release/corral; fi
WORK=$(mktemp -d /var/tmp/corral-ens-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }
four() { python3 -c '
import socket,sys
s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),timeout=3); s.sendall(sys.argv[2].encode())
out=b""
while True:
    c=s.recv(65536)
    if not c: break
    out+=c
print(out.decode())' "$1" "$2" 2>/dev/null || true; }

# Three members under $WORK/$kind/{1,2,3}, fresh data each round.
declare -A CPORT PID
setup() { # kind
    local kind=$1 lines="" i
    rm -rf "${WORK:?}/$kind"
    for i in 1 2 3; do
        CPORT[$kind$i]=$(free_port)
        lines+="server.$i=127.0.0.1:$(free_port):$(free_port)"$'\n'
    done
    for i in 1 2 3; do
        local d="$WORK/$kind/$i"
        mkdir -p "$d/data"; echo "$i" > "$d/data/myid"
        cat > "$d/zoo.cfg" <<CFG
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$d/data
clientPort=${CPORT[$kind$i]}
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=*
$lines
CFG
    done
}

start() { # kind member
    local kind=$1 i=$2 d="$WORK/$1/$2"
    if [ "$kind" = zookeeper ]; then
        java -Xmx1g -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar \
            -Dlog4j.configuration=file:/etc/zookeeper/conf/log4j.properties -Dzookeeper.root.logger=WARN,CONSOLE \
            org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg" >>"$d/server.log" 2>&1 &
    else
        "$CORRAL" server --config "$d/zoo.cfg" >>"$d/server.log" 2>&1 &
    fi
    PID[$kind$i]=$!
    PIDS+=("$!")
}

connect_string() { echo "127.0.0.1:${CPORT[${1}1]},127.0.0.1:${CPORT[${1}2]},127.0.0.1:${CPORT[${1}3]}"; }

wait_serving() { # kind
    for i in 1 2 3; do python3 bench/probe.py "127.0.0.1:${CPORT[$1$i]}" / 120 >/dev/null; done
}

leader_of() { # kind -> member number
    for i in 1 2 3; do
        if four "${CPORT[$1$i]}" srvr | grep -q 'Mode: leader'; then echo "$i"; return; fi
    done
    echo 0
}

CASES=("create 20000 8 64 100" "set 20000 8 64 100" "create 2000 1 1 100" "get 20000 8 64 100")
declare -A RES
echo "# machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB; rounds=$ROUNDS, failovers per round=$FAILOVERS" >&2
for round in $(seq 1 "$ROUNDS"); do
    for kind in zookeeper corral; do
        setup "$kind"
        for i in 1 2 3; do start "$kind" "$i"; done
        wait_serving "$kind"
        cs=$(connect_string "$kind")
        for c in "${CASES[@]}"; do
            out=$("$ZKBENCH" "$cs" $c)
            echo "round $round $kind $c: $out" >&2
            RES["$kind|$c|ops"]="${RES["$kind|$c|ops"]:-} $(echo "$out" | field ops_per_s)"
            RES["$kind|$c|p99"]="${RES["$kind|$c|p99"]:-} $(echo "$out" | field p99_us)"
        done
        for f in $(seq 1 "$FAILOVERS"); do
            l=$(leader_of "$kind")
            [ "$l" != 0 ] || { echo "$kind: no leader found" >&2; exit 1; }
            survivors=""
            for i in 1 2 3; do [ "$i" = "$l" ] || survivors+="${survivors:+,}127.0.0.1:${CPORT[$kind$i]}"; done
            kill -9 "${PID[$kind$l]}"
            wait "${PID[$kind$l]}" 2>/dev/null || true
            secs=$(python3 bench/probe.py "$survivors" "/failover-$round-$f" 120 create)
            echo "round $round $kind failover $f: leader $l killed, first write after $secs s" >&2
            RES["$kind|failover"]="${RES["$kind|failover"]:-} $secs"
            start "$kind" "$l"
            wait_serving "$kind"
        done
        for i in 1 2 3; do kill -9 "${PID[$kind$i]}" 2>/dev/null || true; wait "${PID[$kind$i]}" 2>/dev/null || true; done
        sleep 1
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "| 3-node case (zkbench, fsync on) | ZooKeeper ops/s | corral ops/s | ratio | ZooKeeper p99 µs | corral p99 µs |"
echo "|---|---|---|---|---|---|"
for c in "${CASES[@]}"; do
    zo=$(echo "${RES["zookeeper|$c|ops"]}" | median); co=$(echo "${RES["corral|$c|ops"]}" | median)
    zp=$(echo "${RES["zookeeper|$c|p99"]}" | median); cp=$(echo "${RES["corral|$c|p99"]}" | median)
    echo "| $c | $zo | $co | $(python3 -c "print(f'{$co/$zo:.2f}x')") | $zp | $cp |"
done
zf=$(echo "${RES["zookeeper|failover"]}" | median); cf=$(echo "${RES["corral|failover"]}" | median)
echo
echo "| leader kill -9 to first acknowledged write (median of $((ROUNDS * FAILOVERS))) | ZooKeeper | corral | ratio |"
echo "|---|---|---|---|"
echo "| seconds | $zf | $cf | $(python3 -c "print(f'{$cf/$zf:.2f}x')") |"
echo "all failover samples: ZooKeeper${RES["zookeeper|failover"]}; corral${RES["corral|failover"]}" >&2
