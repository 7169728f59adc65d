#!/usr/bin/env bash
# setup.sh - install what sluice needs on Debian 12 (idempotent), build it,
# then run the demo or the whole test suite.
#
#   tools/setup.sh demo    set up, build, run the demo pipeline
#   tools/setup.sh test    set up, build (normal + ASan/UBSan), run every test
#   tools/setup.sh build   set up and build only
#
# Must run as root (or with sudo available) when packages are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PACKAGES=(meson ninja-build pkg-config gcc g++ python3
          libzmq3-dev libmsgpack-dev liblmdb-dev libyaml-dev libcmocka-dev
          libsimdjson-dev libyajl-dev libjansson-dev libmicrohttpd-dev libssl-dev zlib1g-dev libh2o-evloop-dev
          graphviz prometheus)

install_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "setup: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# configure DIR [meson options...]: set up once, reconfigure if options changed
configure() {
    local dir=$1; shift
    if [ -f "$dir/build.ninja" ]; then
        meson configure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@"
    fi
}

build() {
    configure build -Dwerror=true -Dbuildtype=release -Db_ndebug=false
    ninja -C build
}

shared_dir() {
    local d=${SLUICE_SHARED:-$ROOT/../shared}
    if [ ! -f "$d/bench/gen_events.py" ]; then
        echo "setup: cannot find shared/bench/gen_events.py (looked in $d; set SLUICE_SHARED)" >&2
        exit 1
    fi
    (cd "$d" && pwd)
}

# Print "N passed, N failed" from a meson test log, and fail if anything failed.
summarise() {
    python3 - "$@" <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line)
        res = r.get("result")
        if res in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif res == "SKIP":
            skipped += 1
        else:
            failed += 1
            print("FAILED:", path.split("/")[0], r.get("name"))
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or passed == 0 else 0)
PY
}

cmd=${1:-build}
install_packages
case "$cmd" in
build)
    build
    ;;
demo)
    build
    SHARED=$(shared_dir)
    mkdir -p data
    [ -f data/events.jsonl ] || python3 "$SHARED/bench/gen_events.py" --count 100000 --seed 7 > data/events.jsonl
    exec "$ROOT/tools/demo.sh"
    ;;
test)
    build
    export SLUICE_SHARED=$(shared_dir)
    status=0
    meson test -C build --print-errorlogs --num-processes 2 || status=1
    # the same suite with AddressSanitizer and UndefinedBehaviorSanitizer
    configure build-asan -Dwerror=true -Dbuildtype=debug -Db_sanitize=address,undefined \
        -Db_lundef=false
    ninja -C build-asan
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C build-asan --print-errorlogs --num-processes 2 --timeout-multiplier 3 \
        --no-suite bench || status=1
    summarise build/meson-logs/testlog.json build-asan/meson-logs/testlog.json || status=1
    exit $status
    ;;
*)
    echo "usage: tools/setup.sh demo|test|build" >&2
    exit 2
    ;;
esac
