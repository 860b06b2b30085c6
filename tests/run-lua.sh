#!/usr/bin/env bash
# Tests the LuaJIT binding (bindings/lua/wsembed.lua): builds libwsembed and
# the project's echo server, starts it and a Python `websockets` server
# (tests/lua/servers.py) on 127.0.0.1 on free ports, runs
# tests/lua/run_tests.lua with luajit against them, and stops the servers.
# Installs luajit with apt-get when missing (as root). Honours
# CARGO_TARGET_DIR (default target/). Exits non-zero if any test fails.
#
#   tests/run-lua.sh [NAME-PATTERN]     (only the tests whose name matches)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

if ! command -v luajit >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq luajit
    else
        echo "tests/run-lua.sh needs LuaJIT: sudo apt-get install luajit" >&2
        exit 1
    fi
fi
if ! python3 -c 'import websockets' 2>/dev/null; then
    python3 -m pip install --quiet -r tests/requirements.txt
fi

target="${CARGO_TARGET_DIR:-$PWD/target}"
echo "== building libwsembed and the echo server (cargo build --release)"
cargo build --release --lib --example echo_server
export WSEMBED_LIBRARY="$target/release/libwsembed.so"

servers=()
tmp=$(mktemp -d)
stop_servers() {
    local pid
    for pid in "${servers[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap stop_servers EXIT

# start NAME COMMAND...: runs a server in the background, its output in
# $tmp/NAME; waits (up to 30 s) for its first line, left in $line. (Not
# called as $(start ...): a subshell would keep the server's pid.)
start() {
    local name=$1
    shift
    "$@" >"$tmp/$name" 2>"$tmp/$name.err" &
    servers+=($!)
    local i
    for i in $(seq 300); do
        if [ -s "$tmp/$name" ]; then
            line=$(head -n 1 "$tmp/$name")
            return
        fi
        if ! kill -0 "${servers[-1]}" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "the $name server did not start:" >&2
    cat "$tmp/$name.err" >&2
    exit 1
}

start echo "$target/release/examples/echo_server" 0
export WSEMBED_ECHO_URL="${line##* }" # "listening on ws://127.0.0.1:PORT/"
start python python3 -u tests/lua/servers.py
read -r _ py_port hang_port <<<"$line" # "PORT n m"
export WSEMBED_PY_URL="ws://127.0.0.1:$py_port"
export WSEMBED_HANG_URL="ws://127.0.0.1:$hang_port/"
# A port where nothing listens, for a refused connection.
WSEMBED_FREE_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export WSEMBED_FREE_PORT
echo "== servers: $WSEMBED_ECHO_URL (echo_server), $WSEMBED_PY_URL/ (tests/lua/servers.py)"

echo "== $(luajit -v)"
status=0
timeout 600 luajit tests/lua/run_tests.lua "$@" || status=$?
echo "== Lua binding tests in $((SECONDS - start)) s (exit $status)"
exit "$status"
