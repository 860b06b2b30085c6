#!/usr/bin/env bash
# Fuzzes URL/option parsing and the bytes a server sends, with cargo-fuzz
# (libFuzzer, nightly toolchain, AddressSanitizer).
#
#   fuzz/run.sh [SECONDS_PER_TARGET]     (default 20; CI runs it briefly)
#
# New inputs go to target/fuzz-corpus/; crashes to fuzz/artifacts/ (the
# run fails then). Installs cargo-fuzz if missing (a few minutes).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-20}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
for t in url_and_options server_bytes; do
    corpus="../target/fuzz-corpus/$t"
    mkdir -p "$corpus"
    echo "== fuzz $t for ${seconds}s"
    cargo +nightly fuzz run "$t" "$corpus" "seeds/$t" -- \
        -max_total_time="$seconds" -timeout=30 -print_final_stats=1
done
