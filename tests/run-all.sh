#!/usr/bin/env bash
# Runs every test of the project: the Rust unit and integration tests
# (which also compile and run the C programs in tests/c/ against the
# project's server and an independent Python `websockets` server).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import websockets' 2>/dev/null; then
    python3 -m pip install --quiet -r tests/requirements.txt
fi

cargo test --no-fail-fast
