#!/usr/bin/env bash
# Tests the Python binding on the oldest and the newest CPython of the
# image (pyenv's 3.8 and 3.13): first the wheel (tests/python-wheel.sh:
# built once, installed on each with no Rust on PATH, a smoke test); then
# for each, a fresh venv, the package installed as the README says
# (`pip install ./bindings/python`, which builds libwsembed with cargo),
# then its pytest suite against Python `websockets` and the project's echo
# server, all on 127.0.0.1; last, in the newest one's venv, `mypy --strict`
# over the package and examples/python/typed_usage.py.
#
# Needs a Rust toolchain and PyPI. Honours CARGO_TARGET_DIR (default
# target/): both installs share it, so the crate is built once. Exits
# non-zero if any step or test fails on any interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

PYTHONS=(
    /root/.pyenv/versions/3.8.18/bin/python3.8
    /root/.pyenv/versions/3.13.0/bin/python3.13
)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# The tests check that the package finds the library it ships.
unset WSEMBED_LIBRARY

echo "== building the project's echo server (examples/echo_server.rs)"
cargo build --release --example echo_server
export WSEMBED_ECHO_SERVER="$CARGO_TARGET_DIR/release/examples/echo_server"

# count LINE WORD: the number before WORD in pytest's closing line, or 0.
count() { grep -oE "[0-9]+ $2" <<<"$1" | grep -oE '^[0-9]+' || echo 0; }

summary=()
total_passed=0
total_failed=0
total_skipped=0

# The wheel (bindings/python/build-wheel.sh), built once from the release
# library above and installed on each Python with no Rust on PATH.
echo "== the wheel, installed without Rust (tests/python-wheel.sh)"
log="$CARGO_TARGET_DIR/python-wheel-test.log"
status=0
tests/python-wheel.sh "${PYTHONS[@]}" 2>&1 | tee "$log" || status=$?
last=$(tail -n 1 "$log")
passed=$(count "$last" passed)
failures=$(count "$last" failed)
if [ "$status" -ne 0 ] && [ "$failures" -eq 0 ]; then failures=1; fi
summary+=("wheel: $passed passed, $failures failed (exit $status)")
total_passed=$((total_passed + passed))
total_failed=$((total_failed + failures))

for python in "${PYTHONS[@]}"; do
    if [ ! -x "$python" ]; then
        echo "missing interpreter: $python" >&2
        exit 1
    fi
    version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    venv="$CARGO_TARGET_DIR/python-venvs/$version"
    echo "== Python $version: venv $venv"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r bindings/python/tests/requirements.txt
    echo "== Python $version: pip install ./bindings/python"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check ./bindings/python

    echo "== Python $version: pytest"
    log="$venv/pytest.log"
    # From the tests' directory, so `import wsembed` finds the installed
    # package and not the source tree; a hang is cut off, not waited out.
    status=0
    (cd bindings/python/tests &&
        timeout 900 "$venv/bin/python" -m pytest -q -p no:cacheprovider -rfEs) \
        2>&1 | tee "$log" || status=$?
    last=$(tail -n 1 "$log")
    passed=$(count "$last" passed)
    skipped=$(count "$last" skipped)
    failures=$(( $(count "$last" failed) + $(count "$last" 'errors?') ))
    # A run that failed without saying so (a crash, the timeout) counts.
    if [ "$status" -ne 0 ] && [ "$failures" -eq 0 ]; then failures=1; fi
    summary+=("Python $version: $passed passed, $failures failed, $skipped skipped (exit $status)")
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failures))
    total_skipped=$((total_skipped + skipped))
done

# Type checking, once, in the newest Python's venv (requirements.txt pins
# mypy there): `mypy --strict` over the package and the typed example, with
# the [tool.mypy] settings of bindings/python/pyproject.toml, which check
# them as Python 3.8. Its pytest run did the same (test_typing.py); this
# step reports it on a line of its own.
version=$("${PYTHONS[-1]}" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
echo "== Python $version: mypy --strict"
status=0
"$CARGO_TARGET_DIR/python-venvs/$version/bin/python" -m mypy \
    --config-file bindings/python/pyproject.toml --strict \
    --cache-dir "$CARGO_TARGET_DIR/mypy-cache" \
    bindings/python/wsembed examples/python/typed_usage.py || status=$?
if [ "$status" -eq 0 ]; then
    summary+=("mypy --strict: passed")
else
    summary+=("mypy --strict: failed (exit $status)")
    total_failed=$((total_failed + 1))
fi

echo "== Python binding tests in $((SECONDS - start)) s"
printf '%s\n' "${summary[@]}"
echo "python: $total_passed passed, $total_failed failed, $total_skipped skipped"
if [ "$total_failed" -ne 0 ]; then
    exit 1
fi
