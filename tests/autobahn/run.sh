#!/usr/bin/env bash
# Autobahn|Testsuite, client mode, against wsembed through its C ABI.
#
#   tests/autobahn/run.sh
#
# 1. installs wstest into a Python 2.7 virtualenv (install.sh; skipped when
#    it is already there),
# 2. builds the release library and tests/autobahn/client.c against
#    include/wsembed.h and libwsembed.so,
# 3. starts `wstest -m fuzzingserver` on 127.0.0.1, a free port, no web port,
# 4. runs the client (every case, echoing), then check.py on the report.
# The server is always stopped. Exits non-zero when a case failed, a case got
# stuck, or anything could not be set up.
#
# Everything goes under <target dir>/autobahn/ ($CARGO_TARGET_DIR or target/):
# venv/ (unless $AUTOBAHN_VENV), client, fuzzingserver.json, server.log,
# client.log, reports/ (index.html, index.json, one .json/.html per case),
# summary.md (the Markdown table).
#
# The client offers permessage-deflate on every connection, so sections 12
# and 13 (compression) run and must pass like the others; the server of the
# other sections accepts no extension, so the offer changes nothing there.
# AUTOBAHN_DEFLATE=0 runs without the offer (12 and 13 are then
# UNIMPLEMENTED, as for a client without compression).
#
# Knobs: AUTOBAHN_CASES="1.*,2.*" runs only those cases (the spec's "cases";
# default every case), AUTOBAHN_CASE_TIMEOUT seconds per case (default 120),
# AUTOBAHN_TIMEOUT seconds for the whole client run (default 1800).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
work="$target/autobahn"
mkdir -p "$work"
start=$SECONDS
step() { echo "== autobahn: $* ($((SECONDS - start)) s)"; }

step "install wstest"
venv="$("$here/install.sh" | tail -n 1)"

step "build the release library"
cargo build --release --lib
lib="$target/release"
[ -f "$lib/libwsembed.so" ] || { echo "no $lib/libwsembed.so" >&2; exit 1; }

step "compile client.c"
cc -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wpedantic -Werror -O2 -g \
    -I "$root/include" "$here/client.c" -o "$work/client" \
    -L "$lib" -Wl,-rpath,"$lib" -lwsembed -lpthread

# A free port on 127.0.0.1 (the server binds it a moment later; if someone
# takes it in between, the server fails to start and we try another).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

cases_json='["*"]'
if [ -n "${AUTOBAHN_CASES:-}" ]; then
    cases_json="$(python3 -c 'import json, sys; print(json.dumps([c.strip() for c in sys.argv[1].split(",") if c.strip()]))' "$AUTOBAHN_CASES")"
fi

reports="$work/reports"
server_pid=""
stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=""
}
trap stop_server EXIT
trap 'exit 130' INT TERM

port=""
for attempt in 1 2 3; do
    port="$(free_port)"
    cat >"$work/fuzzingserver.json" <<EOF
{
  "url": "ws://127.0.0.1:$port",
  "outdir": "$reports",
  "cases": $cases_json,
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
EOF
    rm -rf "$reports"
    step "start the fuzzing server on 127.0.0.1:$port (attempt $attempt)"
    # wstest -m fuzzingserver, bound to 127.0.0.1 (see fuzzingserver.py);
    # --webport 0: no web server on port 8080.
    (cd "$work" && exec "$venv/bin/python" -u "$here/fuzzingserver.py" \
        -m fuzzingserver -s "$work/fuzzingserver.json" --webport 0) >"$work/server.log" 2>&1 &
    server_pid=$!
    up=""
    for _ in $(seq 300); do
        kill -0 "$server_pid" 2>/dev/null || break
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            up=1
            break
        fi
        sleep 0.1
    done
    [ -n "$up" ] && break
    echo "the fuzzing server did not start:" >&2
    tail -n 20 "$work/server.log" >&2
    stop_server
done
[ -n "$up" ] || exit 1

step "run the cases (log: $work/client.log)"
client_status=0
deflate=()
check_deflate=()
if [ "${AUTOBAHN_DEFLATE:-1}" = 1 ]; then
    deflate=(--deflate)
    check_deflate=(--expect-deflate)
fi
timeout --signal=TERM --kill-after=10 "${AUTOBAHN_TIMEOUT:-1800}" \
    "$work/client" "ws://127.0.0.1:$port" --agent wsembed "${deflate[@]}" \
    --case-timeout "${AUTOBAHN_CASE_TIMEOUT:-120}" >"$work/client.log" 2>&1 || client_status=$?
grep -E '^(wsembed|[0-9]+ cases|ran |STUCK|FAIL|client done)' "$work/client.log" || true
if [ "$client_status" -ne 0 ]; then
    echo "the client failed (exit $client_status); last lines of $work/client.log:" >&2
    tail -n 20 "$work/client.log" >&2
fi
stop_server

step "check the report"
check_status=0
expect=()
announced="$(sed -n 's/^\([0-9][0-9]*\) cases$/\1/p' "$work/client.log" | head -n 1)"
[ -n "$announced" ] && expect=(--expect-cases "$announced")
python3 "$here/check.py" "$reports" --agent wsembed --markdown "$work/summary.md" "${expect[@]}" \
    "${check_deflate[@]}" ||
    check_status=$?
step "done; report: $reports/index.html"
if [ "$client_status" -ne 0 ] || [ "$check_status" -ne 0 ]; then
    exit 1
fi
