#!/usr/bin/env bash
# run.sh - the HTTP library evaluation for source.http (docs/design/http-library.md).
#
# Installs what is missing (Debian packages, idempotent), builds h2o_server and mhd_server with
# cc -O2 -Wall -Wextra, then for each server configuration in turn (nginx `return 200` as the
# yardstick, h2o and libmicrohttpd inline and deferred) starts it on 127.0.0.1, runs wrk and
# stops it. Every round runs every configuration once, so drift on a shared machine hits all of
# them alike; the tables report the best round (others' work on a shared machine only ever
# lowers a result) with the spread over rounds. Then features.py records keep-alive, pipelining, limits, timeouts, SSE, 503 and
# shutdown behaviour. Prints the tables; raw wrk output stays under $OUT.
#
#   tools/bench/http_eval/run.sh               # 3 rounds, 10 s per wrk run (about 45 min)
#   ROUNDS=1 DURATION=3 tools/bench/http_eval/run.sh   # a quick look
#
# Per configuration and round: a 2 s warm-up, wrk -t1 -c64 -d$DURATION --latency, the same with
# -c128 and -c256, -c64 with pipeline.lua (16 requests per write), and a fixed-rate point at half of
# that round's -c64 rate: loadgen.c, 64 connections, open loop, latency from each request's due
# time (wrk 4.1 has no -R). Nothing is pinned to cores: the load generator and the server share
# the machine's two cores.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$(mktemp -d /tmp/http_eval.XXXXXX)}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18180}
CONFIGS=${CONFIGS:-}   # space-separated subset of the names below; empty = all
mkdir -p "$OUT/bin" "$OUT/raw"

# ---- packages --------------------------------------------------------------------------------
need=()
for p in gcc pkg-config libh2o-evloop-dev libssl-dev zlib1g-dev libmicrohttpd-dev wrk nginx \
         python3 curl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
if ((${#need[@]})); then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# ---- build -----------------------------------------------------------------------------------
CFLAGS="-O2 -Wall -Wextra"
# libh2o-evloop's headers include <openssl/ssl.h> (libssl-dev) but its .pc names only itself;
# the shared library brings libssl, libcrypto, libz and libwslay along by itself.
cc $CFLAGS -o "$OUT/bin/h2o_server" "$HERE/h2o_server.c" \
    $(pkg-config --cflags --libs libh2o-evloop) -pthread
cc $CFLAGS -o "$OUT/bin/mhd_server" "$HERE/mhd_server.c" \
    $(pkg-config --cflags --libs libmicrohttpd) -pthread
cc $CFLAGS -o "$OUT/bin/loadgen" "$HERE/loadgen.c"

# ---- servers ---------------------------------------------------------------------------------
declare -A CMD=(
    [nginx-w1]="nginx 1"
    [nginx-auto]="nginx auto"
    [h2o-inline-t1]="$OUT/bin/h2o_server -m inline -t 1"
    [h2o-inline-t2]="$OUT/bin/h2o_server -m inline -t 2"
    [h2o-deferred-t1]="$OUT/bin/h2o_server -m deferred -t 1"
    [h2o-deferred-t2]="$OUT/bin/h2o_server -m deferred -t 2"
    [h2o-deferred-t1-unbatched]="$OUT/bin/h2o_server -m deferred -t 1 -1"
    [mhd-inline-p1]="$OUT/bin/mhd_server -m inline -t 1"
    [mhd-inline-p2]="$OUT/bin/mhd_server -m inline -t 2"
    [mhd-inline-p1-noturbo]="$OUT/bin/mhd_server -m inline -t 1 -u 0"
    [mhd-inline-p1-poll]="$OUT/bin/mhd_server -m inline -t 1 -P"
    [mhd-deferred-p1]="$OUT/bin/mhd_server -m deferred -t 1"
    [mhd-deferred-p2]="$OUT/bin/mhd_server -m deferred -t 2"
    [mhd-deferred-p1-poll]="$OUT/bin/mhd_server -m deferred -t 1 -P"
    [mhd-deferred-p2-poll]="$OUT/bin/mhd_server -m deferred -t 2 -P"
)
ORDER="nginx-w1 nginx-auto h2o-inline-t1 h2o-inline-t2 h2o-deferred-t1 h2o-deferred-t2
       h2o-deferred-t1-unbatched mhd-inline-p1 mhd-inline-p2 mhd-inline-p1-noturbo mhd-inline-p1-poll
       mhd-deferred-p1 mhd-deferred-p2 mhd-deferred-p1-poll mhd-deferred-p2-poll"
[[ -n "$CONFIGS" ]] && ORDER=$CONFIGS

SERVER_PID=""
NGINX_PIDFILE=""
stop_server() {
    if [[ -n "$NGINX_PIDFILE" && -f "$NGINX_PIDFILE" ]]; then
        kill -TERM "$(cat "$NGINX_PIDFILE")" 2>/dev/null || true
        for _ in $(seq 50); do [[ -f "$NGINX_PIDFILE" ]] || break; sleep 0.1; done
    fi
    NGINX_PIDFILE=""
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
trap stop_server EXIT
trap 'exit 130' INT TERM

start_nginx() { # workers
    local dir="$OUT/nginx-$1"
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<EOF
worker_processes $1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_timeout 65;
    keepalive_requests 100000000;  # 1.22's default of 1000 would reconnect, the libraries do not
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    default_type application/json;
    server {
        listen 127.0.0.1:$PORT;
        location / { return 200 '{"ok":true}'; }
    }
}
EOF
    NGINX_PIDFILE="$dir/nginx.pid"
    nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
}

start_server() { # name
    local cmd=${CMD[$1]}
    if [[ $cmd == nginx* ]]; then
        start_nginx "${cmd#nginx }"
    else
        $cmd -p "$PORT" 2>>"$OUT/server.log" &
        SERVER_PID=$!
    fi
    for _ in $(seq 100); do
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/x" && return 0
        sleep 0.05
    done
    echo "run.sh: $1 did not start" >&2
    return 1
}

# ---- wrk -------------------------------------------------------------------------------------
# parse FILE -> "rps p50_us p90_us p99_us errors non2xx"
parse() {
    python3 - "$1" <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
def us(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    return float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)] if m else float("nan")
rps = re.search(r"Requests/sec:\s+([\d.]+)", t)
lat = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", t, re.M))
err = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
non = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print("%.0f %.0f %.0f %.0f %d %d" % (
    float(rps.group(1)) if rps else 0, us(lat.get("50", "")), us(lat.get("90", "")),
    us(lat.get("99", "")), sum(map(int, err.groups())) if err else 0,
    int(non.group(1)) if non else 0))
EOF
}

RESULTS="$OUT/results.tsv"
printf "round\tconfig\ttest\tconns\trps\tp50_us\tp90_us\tp99_us\terrors\tnon2xx\tload1\n" >"$RESULTS"

bench() { # round name test conns file [wrk args...]
    local args=("$@")
    bench_cmd "${args[@]:0:5}" wrk "${args[@]:5}" "http://127.0.0.1:$PORT/x"
}

bench_cmd() { # round name test conns file command...
    local round=$1 name=$2 test=$3 conns=$4 file=$5 load
    shift 5
    load=$(cut -d' ' -f1 /proc/loadavg) # others' work on the machine shows up here
    "$@" >"$file" 2>&1 || true
    printf "%s\t%s\t%s\t%s\t%s\t%s\n" "$round" "$name" "$test" "$conns" \
        "$(parse "$file" | tr ' ' '\t')" "$load" >>"$RESULTS"
}

{
    echo "date: $(date -u +%FT%TZ)"
    echo "cpus: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo "kernel: $(uname -r)"
    for p in libh2o-evloop0.13 libmicrohttpd12 nginx wrk gcc; do
        echo "$p: $(dpkg-query -W -f='${Version}' "$p" 2>/dev/null)"
    done
    echo "rounds: $ROUNDS, duration: ${DURATION}s, pinning: none"
} | tee "$OUT/machine.txt"

for round in $(seq "$ROUNDS"); do
    for name in $ORDER; do
        echo "round $round: $name"
        start_server "$name"
        raw="$OUT/raw/$round-$name"
        wrk -t1 -c64 -d2s "http://127.0.0.1:$PORT/x" >/dev/null 2>&1 || true # warm-up
        bench "$round" "$name" closed 64 "$raw-c64.txt" -t1 -c64 -d"${DURATION}s" --latency
        bench "$round" "$name" closed 128 "$raw-c128.txt" -t1 -c128 -d"${DURATION}s" --latency
        bench "$round" "$name" closed 256 "$raw-c256.txt" -t1 -c256 -d"${DURATION}s" --latency
        PIPELINE_DEPTH=16 bench "$round" "$name" pipelined-16 64 "$raw-pipe.txt" \
            -t1 -c64 -d"${DURATION}s" -s "$HERE/pipeline.lua"
        # half of this round's -c64 rate, at a constant rate
        peak=$(awk -F'\t' -v r="$round" -v n="$name" \
            '$1==r && $2==n && $3=="closed" && $4==64 {print $5}' "$RESULTS")
        target=$((${peak:-0} / 2))
        ((target < 1000)) && target=1000
        bench_cmd "$round" "$name" "half-load(target $target)" 64 "$raw-half.txt" \
            "$OUT/bin/loadgen" -c 64 -r "$target" -d "$DURATION" -p "$PORT"
        stop_server
    done
done

# ---- tables ----------------------------------------------------------------------------------
python3 - "$RESULTS" <<'EOF' | tee "$OUT/table.md"
import collections, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
groups = collections.OrderedDict()
for r in rows:
    test = "half-load" if r[2].startswith("half-load") else r[2]
    groups.setdefault((r[1], test, r[3] if test != "half-load" else ""), []).append(r)
def ms(v):
    return "%.2f" % (float(v) / 1000) if v != "nan" else "-"
nginx_best = collections.defaultdict(float)  # best nginx req/s per (test, conns)
for (c, t, n), rs in groups.items():
    if c.startswith("nginx") and t != "half-load":
        nginx_best[(t, n)] = max([nginx_best[(t, n)]] + [float(r[4]) for r in rs])
print("Closed loop (-c N, no think time) and pipelined: the best round's req/s and its p50/p99;")
print("min-max is the req/s spread over rounds. Half load: the round with the lowest p99 at about")
print("half of that round's -c64 rate; 'p99 all' lists every round's p99.")
print()
print("| config | test | conns | req/s best | min-max | x best nginx | p50 ms | p99 ms | p99 all | err |")
print("|---|---|---|---|---|---|---|---|---|---|")
for (cfg, test, conns), rs in groups.items():
    rps = [float(r[4]) for r in rs]
    if test == "half-load":
        b = min(rs, key=lambda r: float(r[7]) if r[7] != "nan" else 1e18)
        conns = b[3]
    else:
        b = max(rs, key=lambda r: float(r[4]))
    ref = nginx_best.get((test, conns)) if test != "half-load" else None
    lat = test != "pipelined-16"
    print("| %s | %s | %s | %.0f | %.0f-%.0f | %s | %s | %s | %s | %s |" % (
        cfg, test, conns, float(b[4]), min(rps), max(rps),
        "%.2f" % (float(b[4]) / ref) if ref else "-",
        ms(b[5]) if lat else "-", ms(b[7]) if lat else "-",
        " / ".join(ms(r[7]) for r in rs) if lat else "-",
        sum(int(r[8]) + int(r[9]) for r in rs)))
loads = [float(r[10]) for r in rows]
print()
print("1-minute load average when each wrk run started: %.2f to %.2f (2 cores)" % (
    min(loads), max(loads)))
EOF

echo
echo "features (features.py):"
python3 "$HERE/features.py" --h2o "$OUT/bin/h2o_server" --mhd "$OUT/bin/mhd_server" \
    --port $((PORT + 1)) | tee "$OUT/features.md"
echo
echo "raw output and tables: $OUT"
