#!/usr/bin/env bash
# Builds libwsembed (release) and the C example examples/seed_example.c,
# starts the project's echo server on 127.0.0.1 (a free port), and runs the
# example against it: a real round trip, no internet needed.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --lib --example echo_server
mkdir -p target/demo
cc -std=c11 -Wall -Wextra -Werror -Iinclude examples/seed_example.c \
   -Ltarget/release -Wl,-rpath,"$PWD/target/release" -lwsembed -lpthread \
   -o target/demo/seed_example

fifo=$(mktemp -u)
mkfifo "$fifo"
target/release/examples/echo_server 0 >"$fifo" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$fifo"' EXIT
read -r _ _ url <"$fifo"
echo "echo server: $url"

target/demo/seed_example "$url" "Hello from wsembed" "Bonjour, WebSocket" "¡Hola! ✓"
