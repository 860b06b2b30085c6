#!/usr/bin/env bash
# Runs every test of the project:
# 1. the Rust unit and integration tests in the default build (with TLS) and
#    in the build without TLS (they also compile and run the C programs in
#    tests/c/ against the project's server and an independent Python
#    `websockets` server; the proxy tests go through a real tinyproxy);
# 2. tests/run-c.sh: wscat, the C++ wrapper, valgrind, sanitizers, install
#    and pkg-config;
# 3. tests/run-python.sh, tests/run-lua.sh: Python (3.8, 3.13), LuaJIT bindings;
# 4. tests/autobahn/run.sh: Autobahn|Testsuite, every case.
# Installs the test tools it needs when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import websockets' 2>/dev/null; then
    python3 -m pip install --quiet -r tests/requirements.txt
fi
if ! command -v tinyproxy >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tinyproxy-bin
    else
        echo "tests/proxy.rs needs tinyproxy: sudo apt-get install tinyproxy-bin" >&2
        exit 1
    fi
fi

echo "== cargo test (default features: TLS on)"
cargo test --no-fail-fast
echo "== cargo test --no-default-features (no TLS: wss:// is WS_ERR_UNSUPPORTED)"
cargo test --no-fail-fast --no-default-features
echo "== C and C++ (tests/run-c.sh)"
tests/run-c.sh
echo "== Python binding (tests/run-python.sh)"
tests/run-python.sh
echo "== LuaJIT binding (tests/run-lua.sh)"
tests/run-lua.sh
echo "== Autobahn|Testsuite (tests/autobahn/run.sh)"
tests/autobahn/run.sh
