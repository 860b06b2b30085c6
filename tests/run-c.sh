#!/usr/bin/env bash
# Tests of wsembed for C and C++ users, against servers this script starts
# on 127.0.0.1 (the project's echo server, and a small Python `websockets`
# server for headers, subprotocols and server-side closes):
#
#   - builds the release library and compiles the C programs (tests/c/*.c,
#     examples/wscat.c, examples/seed_example.c) with -std=c11 -Wall -Wextra
#     -Wpedantic -Werror and the C++ wrapper tests (tests/cpp/, two
#     translation units) with -std=c++17 (and c++20) -Wall -Wextra
#     -Wpedantic -Werror, and runs them;
#   - runs them again under valgrind memcheck (no invalid access, nothing
#     definitely lost), as AddressSanitizer + UBSan builds and as
#     ThreadSanitizer builds;
#   - drives wscat through pipes: echo, binary, refused and bad URLs, a
#     handshake refused with 401 or 503 (status, headers and body shown),
#     headers and subprotocol, a server-side close, Ctrl-C, TLS options,
#     compression (--deflate), proxies (--proxy through a CONNECT proxy
#     written here, the environment's, --no-proxy-env), counters (--stats);
#   - installs the library with examples/install.sh into a temporary prefix
#     and builds programs against it through pkg-config (shared, static,
#     C++) and through the CMake example (examples/cmake).
#
# Installs what it lacks (gcc, g++, valgrind, pkg-config, cmake, patchelf
# with apt-get; Python websockets with pip). Honours CARGO_TARGET_DIR.
# Exits non-zero if anything failed; ends with "run-c: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
start=$SECONDS

# ---------------------------------------------------------------- tools
need_apt=()
command -v cc >/dev/null || need_apt+=(gcc)
command -v g++ >/dev/null || need_apt+=(g++)
command -v valgrind >/dev/null || need_apt+=(valgrind)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
command -v cmake >/dev/null || need_apt+=(cmake)
command -v patchelf >/dev/null || need_apt+=(patchelf)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "run-c.sh needs: ${need_apt[*]} (sudo apt-get install ${need_apt[*]})" >&2
        exit 1
    fi
    echo "== apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! python3 -c 'import websockets' 2>/dev/null; then
    python3 -m pip install --quiet -r tests/requirements.txt
fi

# ---------------------------------------------------------------- build
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
release=$CARGO_TARGET_DIR/release
echo "== cargo build --release (library and echo server)"
cargo build --release --lib --example echo_server

out=$(mktemp -d "${TMPDIR:-/tmp}/wsembed-c.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$out"
}
trap cleanup EXIT

passed=0
failed=0
failures=()
# check NAME COMMAND...: runs the command with its output in a log; shows
# the log's end when it fails, and goes on with the next check.
check() {
    local name=$1 log
    shift
    log=$out/log.$((passed + failed))
    if "$@" >"$log" 2>&1; then
        passed=$((passed + 1))
        echo "ok   $name"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "FAIL $name"
        tail -n 40 "$log" | sed 's/^/     | /'
    fi
}

# Every program run is bounded: a hang fails the check instead of CI.
limit=120

cflags=(-std=c11 -Wall -Wextra -Wpedantic -Werror -g -I"$root/include")
cxxflags=(-std=c++17 -Wall -Wextra -Wpedantic -Werror -g -I"$root/include" -I"$root/bindings/cpp")
link=(-L"$release" -Wl,-rpath,"$release" -lwsembed -lpthread)
cxx_sources=("$root/tests/cpp/wrapper_test.cc" "$root/tests/cpp/second_unit.cc")

# build VARIANT EXTRA_FLAGS...: every C and C++ test program, one variant.
build() {
    local variant=$1 f name
    shift
    mkdir -p "$out/$variant"
    # The test programs leave POSIX visibility to the compiler line (as
    # tests/c_programs.rs does); the examples must compile as they are.
    for f in tests/c/*.c; do
        cc "${cflags[@]}" -D_POSIX_C_SOURCE=200809L "$@" "$f" "${link[@]}" \
            -o "$out/$variant/$(basename "$f" .c)" || return 1
    done
    for f in examples/wscat.c examples/seed_example.c; do
        cc "${cflags[@]}" "$@" "$f" "${link[@]}" -o "$out/$variant/$(basename "$f" .c)" || return 1
    done
    g++ "${cxxflags[@]}" "$@" "${cxx_sources[@]}" "${link[@]}" -o "$out/$variant/wrapper_test"
}

# ---------------------------------------------------------------- servers
# start_server VAR COMMAND...: starts a server that prints its URL (last
# word of its first line) and stores the URL in VAR; waits at most 30 s.
start_server() {
    local var=$1 fd line
    shift
    exec {fd}< <(exec "$@")
    pids+=($!)
    if ! IFS= read -r -t 30 line <&"$fd"; then
        echo "server did not start: $*" >&2
        exit 1
    fi
    printf -v "$var" '%s' "${line##* }"
}
start_server url "$release/examples/echo_server" 0
echo "== echo server: $url"

cat >"$out/wscat_server.py" <<'EOF'
# Test server for wscat and the C++ tests (Python websockets): /headers
# sends back the X-Wscat-Test header and the selected subprotocol, /close
# closes with 4001 "bye now" after the first message, /restart sends
# "connection N" and closes its first connection with 1012 (restarting),
# anything else echoes.
# It agrees to permessage-deflate when offered (websockets' default).
import asyncio
import websockets

def pick(connection, offered):
    return next((p for p in ("chat", "superchat") if p in offered), None)

restarts = 0

async def handler(ws):
    global restarts
    if ws.request.path == "/restart":
        restarts += 1
        await ws.send("connection %d" % restarts)
        if restarts == 1:
            await ws.close(1012, "restarting")
            return
    if ws.request.path == "/headers":
        await ws.send("x-wscat-test=%s" % ws.request.headers.get("X-Wscat-Test"))
        await ws.send("subprotocol=%s" % ws.subprotocol)
    elif ws.request.path == "/close":
        await ws.recv()
        await ws.close(4001, "bye now")
        return
    async for message in ws:
        await ws.send(message)

async def main():
    async with websockets.serve(handler, "127.0.0.1", 0, select_subprotocol=pick) as server:
        print("listening on ws://127.0.0.1:%d" % server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()

asyncio.run(main())
EOF
start_server pyurl python3 "$out/wscat_server.py"

cat >"$out/refusing_server.py" <<'EOF'
# Refuses every WebSocket handshake, for wscat: /503 with Retry-After and a
# binary body, anything else 401 with a challenge and a text body.
import socket, threading

ANSWERS = {
    b"/503": b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 3\r\n\r\n\x00\x01\xff",
    b"/401": b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm="wscat"\r\n'
             b"Content-Length: 28\r\n\r\nToken expired, sign in again",
}

def answer(conn):
    with conn:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        conn.sendall(ANSWERS.get(request.split(b" ")[1], ANSWERS[b"/401"]))

listener = socket.create_server(("127.0.0.1", 0))
print("listening on ws://127.0.0.1:%d" % listener.getsockname()[1], flush=True)
while True:
    threading.Thread(target=answer, args=(listener.accept()[0],), daemon=True).start()
EOF
start_server refusing_url python3 "$out/refusing_server.py"

cat >"$out/connect_proxy.py" <<'EOF'
# An HTTP CONNECT proxy for wscat --proxy: appends "CONNECT host:port" to
# the file named by argv[1] for each tunnel, then relays it. Whatever host
# is asked for, it connects to 127.0.0.1 (the test servers' address).
import socket, sys, threading

log = sys.argv[1]

def relay(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass

def serve(client):
    with client:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = client.recv(4096)
            if not chunk:
                return
            request += chunk
        head, _, rest = request.partition(b"\r\n\r\n")
        method, target = head.split(b" ")[:2]
        if method != b"CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        with open(log, "a") as f:
            f.write("CONNECT %s\n" % target.decode())
        port = int(target.rsplit(b":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            back = threading.Thread(target=relay, args=(upstream, client), daemon=True)
            back.start()
            relay(client, upstream)
            back.join()

listener = socket.create_server(("127.0.0.1", 0))
print("listening on http://127.0.0.1:%d" % listener.getsockname()[1], flush=True)
while True:
    threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()
EOF
proxy_log=$out/proxy.log
: >"$proxy_log"
start_server proxy_url python3 "$out/connect_proxy.py" "$proxy_log"

# A port on 127.0.0.1 with nothing listening (bound, then released).
refused=ws://127.0.0.1:$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')/

# ---------------------------------------------------------------- compile
echo "== compile (warnings are errors)"
check "compile C and C++ tests (-std=c11, -std=c++17)" build plain
check "compile C++ tests as C++20 (std::span overload)" \
    g++ "${cxxflags[@]/-std=c++17/-std=c++20}" "${cxx_sources[@]}" "${link[@]}" -o "$out/wrapper_test_cxx20"
# AddressSanitizer + UBSan; the Rust library is not instrumented, but every
# allocation goes through the sanitizer's malloc, so misuse on either side
# of the boundary shows.
check "compile ASan + UBSan builds" build asan -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
check "compile TSan builds" build tsan -O1 -fsanitize=thread

# ---------------------------------------------------------------- run
# run_tests LABEL VARIANT [PREFIX COMMAND...]: the test programs of one
# build variant, each run under the prefix command (valgrind) if any.
run_tests() {
    local label=$1 variant=$2
    shift 2
    check "$label: tests/c/echo_cycle" timeout $limit "$@" "$out/$variant/echo_cycle" "$url"
    check "$label: tests/c/dispatcher" timeout $limit "$@" "$out/$variant/dispatcher" "$url"
    check "$label: examples/seed_example" timeout $limit "$@" "$out/$variant/seed_example" "$url" "Hello" "¡Hola! ✓"
    check "$label: tests/cpp/wrapper_test" timeout $limit "$@" "$out/$variant/wrapper_test" "$url" "$pyurl"
    check "$label: wscat through a pipe" wscat_pipe "$@" "$out/$variant/wscat"
    check "$label: wscat prints an HTTP refusal" wscat_http_refusal "$@" "$out/$variant/wscat"
    check "$label: wscat --stats counts the lines" wscat_stats "$@" "$out/$variant/wscat"
}

# wscat_pipe [PREFIX...] WSCAT: two lines in, their echoes out, a clean close.
wscat_pipe() {
    local got
    got=$(printf 'first line\nsecond ✓\nno newline at the end' | timeout $limit "$@" "$url" 2>"$out/wscat.err")
    cat "$out/wscat.err"
    [ "$got" = $'first line\nsecond ✓\nno newline at the end' ] &&
        grep -q 'closed: code 1000, reason "", clean' "$out/wscat.err"
}

# wscat_stats [PREFIX...] WSCAT: N lines sent, N echoed: one stats line on
# standard error with the exact message counts; a refused connection still
# gets its line, with nothing counted.
wscat_stats() {
    local got line rc=0
    got=$(printf 'one\ntwo\nthree ✓\n' | timeout $limit "$@" --stats "$url" 2>"$out/stats.err")
    cat "$out/stats.err"
    line=$(grep '^wscat: stats: ' "$out/stats.err") || return 1
    [ "$got" = $'one\ntwo\nthree ✓' ] && [ "$(grep -c '^wscat: stats: ' "$out/stats.err")" = 1 ] &&
        [[ " $line " == *" messages_sent=3 "* ]] && [[ " $line " == *" messages_received=3 "* ]] &&
        [[ " $line " == *" payload_bytes_sent=15 "* ]] && [[ " $line " == *" connections=1 "* ]] &&
        [[ " $line " =~ \ bytes_sent=[1-9][0-9]*\  ]] && [[ " $line " =~ \ bytes_received=[1-9][0-9]*\  ]] &&
        [[ " $line " =~ \ handshake_ms=[0-9]+\  ]] && [[ " $line " =~ \ last_rtt_us=[0-9]+\  ]] || return 1
    # Without --stats, no such line.
    printf 'x\n' | timeout $limit "$@" "$url" 2>"$out/stats.err" >/dev/null
    cat "$out/stats.err"
    ! grep -q 'stats' "$out/stats.err" || return 1
    timeout $limit "$@" --stats "$refused" </dev/null 2>"$out/stats.err" || rc=$?
    cat "$out/stats.err"
    [ $rc = 1 ] && grep -q '^wscat: stats: .* messages_sent=0 .* connections=0 ' "$out/stats.err"
}

# wscat_http_refusal [PREFIX...] WSCAT: a 401 and a 503 answered instead of
# 101: the status, the headers that say what to do and the body on
# standard error, and exit status 1.
wscat_http_refusal() {
    local rc=0
    timeout $limit "$@" "${refusing_url}/401" </dev/null 2>"$out/refusal.err" || rc=$?
    cat "$out/refusal.err"
    [ $rc = 1 ] && grep -q 'error: server answered HTTP 401 ' "$out/refusal.err" &&
        grep -qx 'wscat: refused with HTTP 401' "$out/refusal.err" &&
        grep -qx 'wscat: WWW-Authenticate: Bearer realm="wscat"' "$out/refusal.err" &&
        grep -qx 'Token expired, sign in again' "$out/refusal.err" &&
        grep -q 'closed: code 1006' "$out/refusal.err" || return 1
    rc=0
    timeout $limit "$@" "${refusing_url}/503" </dev/null 2>"$out/refusal.err" || rc=$?
    cat "$out/refusal.err"
    [ $rc = 1 ] && grep -qx 'wscat: refused with HTTP 503' "$out/refusal.err" &&
        grep -qx 'wscat: Retry-After: 7' "$out/refusal.err" &&
        grep -qx 'wscat: body: \[binary, 3 bytes\] 00 01 ff' "$out/refusal.err" &&
        ! grep -q 'WWW-Authenticate' "$out/refusal.err"
}

echo "== plain builds"
run_tests plain plain
check "plain: wrapper_test as C++20" timeout $limit "$out/wrapper_test_cxx20" "$url" "$pyurl"

echo "== valgrind memcheck"
valgrind=(valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --suppressions="$root/tests/cpp/valgrind.supp")
run_tests valgrind plain "${valgrind[@]}"

echo "== AddressSanitizer + UBSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
run_tests asan asan

echo "== ThreadSanitizer"
# The Rust library is not instrumented: TSan cannot see its locks, nor
# check its own memory. called_from_lib stops it from reporting what the
# library's code does (its allocations, its threads' accesses), and the C++
# wrapper declares the C API's hand-offs to it (see wsembed.hpp); what is
# left checked is the programs' own synchronisation around callbacks.
printf 'called_from_lib:libwsembed.so\n' >"$out/tsan.supp"
export TSAN_OPTIONS="suppressions=$out/tsan.supp halt_on_error=1 exitcode=66"
run_tests tsan tsan
unset TSAN_OPTIONS

# ---------------------------------------------------------------- wscat
echo "== wscat through pipes"
wscat=$out/plain/wscat

wscat_binary() {
    local got
    got=$(printf 'bytes\n' | timeout $limit "$wscat" --binary "$url" 2>&1 >"$out/bin.out")
    echo "$got"
    [ "$(cat "$out/bin.out")" = bytes ]
}
check "wscat --binary: lines sent and printed as binary" wscat_binary

wscat_refused() {
    local rc=0
    timeout $limit "$wscat" "$refused" </dev/null 2>"$out/err" || rc=$?
    cat "$out/err"
    [ $rc = 1 ] && grep -q 'error: .*Connection refused' "$out/err" &&
        grep -q 'closed: code 1006' "$out/err"
}
check "wscat: refused connection exits 1 with the error" wscat_refused

wscat_bad_url() {
    local rc=0
    timeout $limit "$wscat" http://127.0.0.1/ </dev/null 2>"$out/err" || rc=$?
    cat "$out/err"
    [ $rc = 1 ] && grep -q 'cannot open http://127.0.0.1/' "$out/err"
}
check "wscat: an http:// URL exits 1 at once" wscat_bad_url

wscat_usage() {
    local rc=0
    "$wscat" -H no-colon "$url" </dev/null 2>"$out/err" || rc=$?
    cat "$out/err"
    [ $rc = 2 ] && grep -q 'Name: value' "$out/err" && "$wscat" --help | grep -q usage
}
check "wscat: bad arguments exit 2 with usage" wscat_usage

wscat_headers() {
    local got
    got=$(timeout $limit "$wscat" -H "X-Wscat-Test: it works" -p superchat -p chat "${pyurl}/headers" </dev/null 2>"$out/err")
    cat "$out/err"
    echo "$got"
    [ "$got" = $'x-wscat-test=it works\nsubprotocol=chat' ] &&
        grep -q 'connected to .* (subprotocol "chat")' "$out/err"
}
check "wscat -H/-p: header and subprotocol reach the server" wscat_headers

# The server closes while standard input is still open: wscat must notice
# and exit at once rather than wait for input.
wscat_server_close() {
    local fd rc=0
    exec {fd}< <(printf 'hello\n'; exec sleep $limit)
    pids+=($!)
    timeout $limit "$wscat" "${pyurl}/close" <&"$fd" 2>"$out/err" || rc=$?
    exec {fd}<&-
    cat "$out/err"
    [ $rc = 0 ] && grep -q 'closed: code 4001, reason "bye now", clean' "$out/err"
}
check "wscat: a server-side close ends it while stdin is open" wscat_server_close

# --reconnect: the server restarts the first connection; a line typed
# after that goes out on the second, and the session ends cleanly.
wscat_reconnect() {
    local got
    # Input stays open after the line: the echo must come back before the
    # close (the Python server drops a message that races a close frame).
    got=$( (sleep 1; printf 'after the restart\n'; sleep 2) |
        timeout $limit "$wscat" --reconnect "${pyurl}/restart" 2>"$out/err")
    cat "$out/err"
    echo "$got"
    [ "$got" = $'connection 1\nconnection 2\nafter the restart' ] &&
        grep -q 'connection lost: code 1012, "restarting"; reconnecting in [0-9]* ms (attempt 1)' "$out/err" &&
        grep -q 'closed: code 1000, reason "", clean' "$out/err"
}
check "wscat --reconnect: a restarted server, the session goes on" wscat_reconnect

# Ctrl-C: close politely (1000) and exit 0.
wscat_sigint() {
    local fifo=$out/stdin pid rc=0 i
    mkfifo "$fifo"
    # Opened read-write so that wscat never sees the end of input.
    exec {keep}<>"$fifo"
    # --foreground: timeout forwards the SIGINT to wscat only; otherwise it
    # also signals its whole process group, wscat gets two SIGINTs, and a
    # second Ctrl-C kills wscat by design.
    timeout --foreground $limit "$wscat" "$url" <"$fifo" 2>"$out/err" &
    pid=$!
    for i in $(seq 300); do # wait for the event, at most 30 s
        grep -q connected "$out/err" && break
        sleep 0.1
    done
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" || rc=$?
    exec {keep}>&-
    cat "$out/err"
    [ $rc = 0 ] && grep -q 'closed: code 1000, reason "", clean' "$out/err"
}
check "wscat: Ctrl-C closes with 1000 and exits 0" wscat_sigint

# --proxy: through the CONNECT proxy, which logs the tunnel it made.
wscat_proxy() {
    local got before server=${url#ws://} nobody=${refused#ws://} rc=0
    before=$(wc -l <"$proxy_log")
    got=$(printf 'through the proxy\n' | timeout $limit "$wscat" --proxy "$proxy_url" --stats "$url" 2>"$out/err")
    cat "$out/err"
    [ "$got" = 'through the proxy' ] && grep -q 'closed: code 1000, reason "", clean' "$out/err" &&
        grep -q ' messages_sent=1 ' "$out/err" || return 1
    [ "$(wc -l <"$proxy_log")" = $((before + 1)) ] &&
        [ "$(tail -n 1 "$proxy_log")" = "CONNECT ${server%/}" ] || return 1
    # A proxy where nothing listens: a connect error naming its address
    # (not the server's); exit 1.
    timeout $limit "$wscat" --proxy "http://${nobody%/}" "$url" </dev/null 2>"$out/err" || rc=$?
    cat "$out/err"
    [ $rc = 1 ] && grep -q "error: .*${nobody%/}.*\[connection failed\]" "$out/err" &&
        ! grep -q "error: .*${server%/}" "$out/err" || return 1
    # Not a proxy URL: a usage error, exit 2, before connecting.
    rc=0
    "$wscat" --proxy ftp://127.0.0.1:1 "$url" </dev/null 2>"$out/err" || rc=$?
    cat "$out/err"
    [ $rc = 2 ] && grep -q '^wscat: --proxy: ' "$out/err"
}
check "wscat --proxy: through an HTTP CONNECT proxy; unreachable and bad proxies" wscat_proxy

# The environment's proxy, which skips loopback servers unless --no-proxy
# says otherwise ("": no host exempt); --no-proxy-env and --proxy ""
# ignore it.
wscat_proxy_env() {
    local got before mode flags
    for mode in env no-env none; do
        flags=(--no-proxy "")
        [ $mode = no-env ] && flags+=(--no-proxy-env)
        [ $mode = none ] && flags+=(--proxy "")
        before=$(wc -l <"$proxy_log")
        got=$(printf '%s\n' "$mode" |
            env ws_proxy="$proxy_url" timeout $limit "$wscat" "${flags[@]}" "$url" 2>"$out/err")
        cat "$out/err"
        [ "$got" = "$mode" ] && grep -q 'closed: code 1000, reason "", clean' "$out/err" || return 1
        if [ $mode = env ]; then
            [ "$(wc -l <"$proxy_log")" = $((before + 1)) ] || return 1
        else
            [ "$(wc -l <"$proxy_log")" = "$before" ] || return 1
        fi
    done
}
check "wscat --no-proxy-env, --proxy \"\": the environment's proxy, then none" wscat_proxy_env

# --ca and --insecure: WS_ERR_UNSUPPORTED said plainly without TLS; with
# TLS a missing CA file fails the open, and --insecure is accepted.
wscat_tls_options() {
    local rc=0
    "$wscat" --version
    if "$wscat" --version | grep -q 'TLS no'; then
        "$wscat" --ca /nonexistent.pem "$url" </dev/null 2>"$out/err" || rc=$?
        cat "$out/err"
        [ $rc = 1 ] && grep -q -- '--ca is unsupported: .*no TLS' "$out/err" || return 1
        rc=0
        "$wscat" --insecure "$url" </dev/null 2>"$out/err" || rc=$?
        cat "$out/err"
        [ $rc = 1 ] && grep -q -- '--insecure is unsupported' "$out/err"
    else
        "$wscat" --ca /nonexistent.pem wss://127.0.0.1:1/ </dev/null 2>"$out/err" || rc=$?
        cat "$out/err"
        [ $rc = 1 ] && grep -q 'cannot open' "$out/err" || return 1
        printf 'x\n' | timeout $limit "$wscat" --insecure "$url" 2>"$out/err" >/dev/null
        cat "$out/err"
        grep -q 'not checked' "$out/err"
    fi
}
check "wscat --ca/--insecure: TLS options, or a clear 'unsupported'" wscat_tls_options

# --deflate: agreed by the websockets server (wscat prints the extension),
# declined by the project's echo server (nothing printed); the echo is
# exact either way. Without deflate, a plain "unsupported".
wscat_deflate() {
    local rc=0 lines server fd i
    "$wscat" --version
    if "$wscat" --version | grep -q 'deflate no'; then
        "$wscat" --deflate "$url" </dev/null 2>"$out/err" || rc=$?
        cat "$out/err"
        [ $rc = 1 ] && grep -q -- '--deflate is unsupported' "$out/err"
        return
    fi
    # A long line that compresses, a short one, and non-ASCII text.
    lines="$(seq 1 20000 | tr '\n' ' ')"$'\nshort\ndéjà vu ✓'
    for server in "$pyurl" "$url"; do
        # Input stays open until the three echoes are out: websockets drops
        # what it has yet to echo once our close frame arrives.
        : >"$out/deflate.out"
        exec {fd}< <(printf '%s\n' "$lines"
            for i in $(seq 300); do
                [ "$(wc -l <"$out/deflate.out")" -ge 3 ] && break
                sleep 0.1
            done)
        pids+=($!)
        timeout $limit "$wscat" --deflate "$server" <&"$fd" >"$out/deflate.out" 2>"$out/err" || rc=$?
        exec {fd}<&-
        cat "$out/err"
        [ $rc = 0 ] && [ "$(cat "$out/deflate.out")" = "$lines" ] &&
            grep -q 'closed: code 1000, reason "", clean' "$out/err" || return 1
        if [ "$server" = "$pyurl" ]; then
            grep -q 'connected to .* (extensions "permessage-deflate' "$out/err" || return 1
        else
            ! grep -q 'extensions' "$out/err" || return 1
        fi
    done
}
check "wscat --deflate: compression offered, agreed or declined, echo intact" wscat_deflate

# ---------------------------------------------------------------- install
echo "== install (examples/install.sh) and pkg-config, CMake"
prefix=$out/prefix
check "examples/install.sh PREFIX" examples/install.sh "$prefix"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig

install_layout() {
    local lib=$prefix/lib
    ls -l "$lib" "$prefix/include/wsembed"
    cat "$lib/pkgconfig/wsembed.pc"
    local version
    version=$(pkg-config --modversion wsembed)
    [ "$version" = "$(sed -n 's/^#define WSEMBED_VERSION "\(.*\)"$/\1/p' include/wsembed.h)" ] &&
        [ -f "$lib/libwsembed.so.$version" ] && [ -f "$lib/libwsembed.a" ] &&
        [ "$(readlink "$lib/libwsembed.so")" = "libwsembed.so.$version" ] &&
        readelf -d "$lib/libwsembed.so.$version" | grep -q "SONAME.*\[libwsembed\.so\.${version%.*}\]" &&
        [ "$(readlink "$lib/libwsembed.so.${version%.*}")" = "libwsembed.so.$version" ] &&
        [ -f "$prefix/include/wsembed/wsembed.h" ] && [ -f "$prefix/include/wsembed/wsembed.hpp" ]
}
check "installed layout: soname'd .so + symlinks, .a, headers, wsembed.pc" install_layout

# The README's build line, run as written, without rpath: the loader finds
# the library by its soname through LD_LIBRARY_PATH.
pkgconfig_shared() {
    cc -std=c11 -Wall -Wextra -Werror examples/seed_example.c -o "$out/pc_seed" \
        $(pkg-config --cflags --libs wsembed) -lpthread || return 1
    readelf -d "$out/pc_seed" | grep NEEDED
    readelf -d "$out/pc_seed" | grep -q 'NEEDED.*\[libwsembed\.so\.[0-9.]*\]' &&
        LD_LIBRARY_PATH=$prefix/lib timeout $limit "$out/pc_seed" "$url" "through pkg-config"
}
check "pkg-config --cflags --libs: C program, shared library" pkgconfig_shared

pkgconfig_static() {
    local libdir
    libdir=$(pkg-config --variable=libdir wsembed)
    cc -std=c11 -Wall -Wextra -Werror examples/seed_example.c -o "$out/pc_static" \
        $(pkg-config --cflags wsembed) "$libdir/libwsembed.a" \
        $(pkg-config --static --libs wsembed | sed 's/-lwsembed//') || return 1
    ! readelf -d "$out/pc_static" | grep -q 'NEEDED.*libwsembed' &&
        timeout $limit "$out/pc_static" "$url" "statically linked"
}
check "pkg-config --static: C program, static library" pkgconfig_static

pkgconfig_cxx() {
    g++ -std=c++17 -Wall -Wextra -Werror examples/cmake/echo.cpp -o "$out/pc_echo_cpp" \
        $(pkg-config --cflags --libs wsembed) -lpthread &&
        LD_LIBRARY_PATH=$prefix/lib timeout $limit "$out/pc_echo_cpp" "$url" "C++ through pkg-config"
}
check "pkg-config: C++ program with the installed wsembed.hpp" pkgconfig_cxx

# CMAKE_PREFIX_PATH alone must lead pkg_check_modules to wsembed.pc.
cmake_example() {
    env -u PKG_CONFIG_PATH cmake -S examples/cmake -B "$out/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_C_FLAGS="-Wall -Wextra -Wpedantic -Werror" -DCMAKE_CXX_FLAGS="-Wall -Wextra -Werror" &&
        cmake --build "$out/cmake" &&
        timeout $limit "$out/cmake/echo_cpp" "$url" "through CMake" &&
        [ "$(printf 'cmake\n' | timeout $limit "$out/cmake/wscat" "$url")" = cmake ]
}
check "CMake example: find_package(PkgConfig) + pkg_check_modules" cmake_example

destdir_staging() {
    DESTDIR=$out/stage WSEMBED_NO_BUILD=1 examples/install.sh /usr/local &&
        [ -f "$out/stage/usr/local/lib/libwsembed.a" ] &&
        grep -qx 'prefix=/usr/local' "$out/stage/usr/local/lib/pkgconfig/wsembed.pc"
}
check "install.sh with DESTDIR stages under it, .pc names PREFIX" destdir_staging

# ---------------------------------------------------------------- summary
echo "== done in $((SECONDS - start)) s"
for f in "${failures[@]}"; do echo "failed: $f"; done
echo "run-c: $passed passed, $failed failed"
[ "$failed" = 0 ]
