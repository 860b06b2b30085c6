#!/usr/bin/env bash
# The Python binding's wheel, installed where there is no Rust: builds it
# once with bindings/python/build-wheel.sh (the release library that other
# steps built, reused through CARGO_TARGET_DIR), checks what it holds, then
# for CPython 3.8 and 3.13 (pyenv's) installs it into a fresh venv with a
# PATH that has no cargo nor rustc and runs a smoke test: the package loads
# the library it ships (WSEMBED_LIBRARY unset), its versions agree with the
# crate's, and a message comes back from the project's echo server
# ($WSEMBED_ECHO_SERVER, built here when unset).
#
# Usage: tests/python-wheel.sh [PYTHON...]. Prints a closing line
# "wheel: N passed, N failed" (one test per interpreter, one for the wheel)
# and exits non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

PYTHONS=("$@")
if [ ${#PYTHONS[@]} -eq 0 ]; then
    PYTHONS=(
        /root/.pyenv/versions/3.8.18/bin/python3.8
        /root/.pyenv/versions/3.13.0/bin/python3.13
    )
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
unset WSEMBED_LIBRARY
if [ -z "${WSEMBED_ECHO_SERVER:-}" ]; then
    cargo build --release --example echo_server
    WSEMBED_ECHO_SERVER="$CARGO_TARGET_DIR/release/examples/echo_server"
fi
crate_version=$(cargo metadata --no-deps --format-version 1 |
    python3 -c 'import json, sys
print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "wsembed"))')

passed=0
failed=0
out="$CARGO_TARGET_DIR/python-wheel/dist"
echo "== bindings/python/build-wheel.sh $out"
if bindings/python/build-wheel.sh "$out" >"$CARGO_TARGET_DIR/python-wheel.log" 2>&1; then
    tail -n 2 "$CARGO_TARGET_DIR/python-wheel.log"
else
    cat "$CARGO_TARGET_DIR/python-wheel.log"
    echo "wheel: 0 passed, $((${#PYTHONS[@]} + 1)) failed"
    exit 1
fi
shopt -s nullglob
wheels=("$out"/wsembed-"$crate_version"-py3-none-manylinux_*_x86_64.whl)
shopt -u nullglob

# What the wheel holds: exactly one native library, without debug info,
# and the py.typed marker (PEP 561).
check_contents() {
    if [ ${#wheels[@]} -ne 1 ]; then
        echo "expected one wsembed-$crate_version-py3-none-manylinux_*_x86_64.whl in $out" >&2
        return 1
    fi
    local wheel=${wheels[0]} names sos unpacked
    if command -v unzip >/dev/null; then
        unzip -l "$wheel"
    else
        python3 -m zipfile -l "$wheel"
    fi
    names=$(python3 -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$wheel")
    mapfile -t sos < <(grep -E '\.so(\.|$)' <<<"$names")
    if [ ${#sos[@]} -ne 1 ] || [ "${sos[0]}" != wsembed/libwsembed.so ]; then
        echo "expected wsembed/libwsembed.so as the one library, found: ${sos[*]}" >&2
        return 1
    fi
    if ! grep -qx 'wsembed/py\.typed' <<<"$names"; then
        echo "no wsembed/py.typed in the wheel: the package would not be typed" >&2
        return 1
    fi
    if grep -vE '/$|\.py$|^wsembed-[^/]*\.dist-info/[A-Za-z_]+(\.txt)?$|^wsembed/(libwsembed\.so|py\.typed)$' <<<"$names"; then
        echo "files other than Python, metadata, py.typed and the library (above) in the wheel" >&2
        return 1
    fi
    unpacked=$(mktemp -d)
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("wsembed/libwsembed.so", sys.argv[2])' \
        "$wheel" "$unpacked"
    local so="$unpacked/wsembed/libwsembed.so"
    if command -v file >/dev/null; then file "$so"; fi
    local debug
    debug=$(readelf -S --wide "$so" | grep -c '\.debug_' || true)
    # Stripping it again takes nothing more off.
    strip --strip-debug -o "$unpacked/again.so" "$so"
    local size again
    size=$(stat -c %s "$so")
    again=$(stat -c %s "$unpacked/again.so")
    rm -rf "$unpacked"
    echo "libwsembed.so: $size bytes, $debug .debug_* sections, $again bytes stripped again"
    [ "$debug" -eq 0 ] && [ "$size" -eq "$again" ]
}
echo "== the wheel's contents"
if check_contents; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    echo "wheel: $passed passed, $((failed + ${#PYTHONS[@]})) failed"
    exit 1
fi
wheel=${wheels[0]}

smoke() {
    local python=$1 version venv
    version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    venv="$CARGO_TARGET_DIR/python-wheel/venv-$version"
    echo "== Python $version: pip install ${wheel##*/} into $venv, no Rust on PATH"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    # Only the venv and the system's directories: cargo and rustc live in
    # ~/.cargo/bin, pyenv's shims elsewhere.
    local path="$venv/bin:/usr/bin:/bin"
    if env PATH="$path" sh -c 'command -v cargo || command -v rustc'; then
        echo "cargo or rustc is on PATH=$path" >&2
        return 1
    fi
    env PATH="$path" "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --no-index --no-deps "$wheel" || return 1
    # From outside the repository, so the installed package is imported.
    (cd "$venv" && env PATH="$path" CRATE_VERSION="$crate_version" \
        WSEMBED_ECHO_SERVER="$WSEMBED_ECHO_SERVER" "$venv/bin/python" - <<'EOF')
import os
import subprocess
import sys
from importlib import metadata

assert "WSEMBED_LIBRARY" not in os.environ

import wsembed

package_dir = os.path.dirname(os.path.abspath(wsembed.__file__))
assert package_dir.startswith(sys.prefix + os.sep), (package_dir, sys.prefix)
assert os.path.dirname(wsembed.library_path) == package_dir, wsembed.library_path
crate = os.environ["CRATE_VERSION"]
versions = (wsembed.__version__, wsembed.version(), metadata.version("wsembed"))
assert versions == (crate,) * 3, (versions, crate)

server = subprocess.Popen(
    [os.environ["WSEMBED_ECHO_SERVER"], "0"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
)
try:
    line = server.stdout.readline().decode()
    assert line.startswith("listening on "), line
    url = line.split()[-1]
    with wsembed.connect(url) as ws:
        ws.send("hello from the wheel")
        echo = ws.recv(timeout=10)
    assert echo == "hello from the wheel", echo
finally:
    server.kill()
    server.wait()

wheel_info = metadata.distribution("wsembed").read_text("WHEEL").splitlines()
tags = [line.split(":", 1)[1].strip() for line in wheel_info if line.startswith("Tag:")]
print("Python {}: wsembed {} (library {}), loaded {}".format(
    sys.version.split()[0], wsembed.__version__, wsembed.version(), wsembed.library_path))
print("  echo from {}: {!r}; wheel tag {}".format(url, echo, ", ".join(tags)))
EOF
}

for python in "${PYTHONS[@]}"; do
    if [ -x "$python" ] && smoke "$python"; then
        passed=$((passed + 1))
    else
        echo "FAILED: the wheel on $python" >&2
        failed=$((failed + 1))
    fi
done

echo "== the wheel in $((SECONDS - start)) s"
echo "wheel: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
