#!/usr/bin/env bash
# Produces ROBUSTNESS.md: the Autobahn|Testsuite table, the API-abuse walk
# (operations tried), the fault-injection tests (faults survived) and the
# soak (leak deltas). Everything runs on this machine, on 127.0.0.1.
#
#   tests/robustness.sh            # writes ROBUSTNESS.md at the repository root
set -euo pipefail
cd "$(dirname "$0")/.."
out=ROBUSTNESS.md
log=$(mktemp -d)

tests/autobahn/run.sh >"$log/autobahn.txt" 2>&1 || { tail -40 "$log/autobahn.txt"; exit 1; }
target="${CARGO_TARGET_DIR:-target}"

cargo test --release --test abuse -- --nocapture >"$log/abuse.txt" 2>&1 || { cat "$log/abuse.txt"; exit 1; }
cargo test --release --test soak -- --nocapture >"$log/soak.txt" 2>&1 || { cat "$log/soak.txt"; exit 1; }
cargo test --release --test faults --test tls --test proxy >"$log/faults.txt" 2>&1 || { cat "$log/faults.txt"; exit 1; }

faults=$(grep -E '^test .* ok$' "$log/faults.txt" | sed 's/^test \(.*\) \.\.\. ok$/- \1/' | sort)
{
    echo "# Robustness figures"
    echo
    echo "Produced by \`tests/robustness.sh\` on $(date -u +%Y-%m-%d) ($(nproc) CPUs, $(uname -sr))."
    echo
    echo "## Autobahn|Testsuite (client mode, every case through the C ABI)"
    echo
    cat "$target/autobahn/summary.md"
    echo
    echo "## API abuse (tests/abuse.rs)"
    echo
    echo "A seeded random walk over every C function from 4 threads and from inside"
    echo "callbacks, with zero, stale and random handles, NULL pointers, random bytes:"
    echo
    echo '```'
    grep -E '^(WSEMBED_ABUSE_SEED|operations)' "$log/abuse.txt"
    echo '```'
    echo
    echo "Checked: every status code is one the call may return; events in protocol"
    echo "order with at most one close; no callback after \`ws_free\` returned; every"
    echo "\`ws_bind_ex\` finalizer exactly once."
    echo
    echo "## Faults survived (tests/faults.rs, tests/tls.rs, tests/proxy.rs)"
    echo
    echo "Each scripted peer gets the error and close events API.md promises, with no"
    echo "crash, hang or leak:"
    echo
    echo "$faults"
    echo
    echo "## Leaks and soak (tests/soak.rs)"
    echo
    echo '```'
    grep -E '^soak:' "$log/soak.txt"
    echo '```'
} >"$out"
echo "wrote $out"
