#!/usr/bin/env bash
# Installs libwsembed for C and C++ programs, with the layout that
# `cargo cinstall --prefix=PREFIX` gives with the [package.metadata.capi]
# settings of this project, but from a plain `cargo build --release`
# (cargo-c itself takes many minutes to compile):
#
#   PREFIX/lib/libwsembed.so.0.1.0        the shared library, soname libwsembed.so.0.1
#   PREFIX/lib/libwsembed.so.0.1          symlink: what programs load at run time
#   PREFIX/lib/libwsembed.so              symlink: what -lwsembed finds at link time
#   PREFIX/lib/libwsembed.a
#   PREFIX/lib/pkgconfig/wsembed.pc
#   PREFIX/include/wsembed/wsembed.h      the C header
#   PREFIX/include/wsembed/wsembed.hpp    the C++ wrapper
#
# (for version 0.1.0; the soname follows cargo-c's semver rule: X.Y.Z gives
# libwsembed.so.X for X >= 1, 0.Y.Z gives libwsembed.so.0.Y)
#
# Usage: examples/install.sh PREFIX [cargo build arguments...]
#   e.g. examples/install.sh "$HOME/.local"
#        examples/install.sh /usr/local --no-default-features
# DESTDIR stages the files (DESTDIR/PREFIX/...) while wsembed.pc names
# PREFIX, as `make install` does. CARGO_TARGET_DIR is honoured; with
# WSEMBED_NO_BUILD=1 the existing release build is installed as it is.
#
# Needs: cargo, and patchelf to write the soname into the shared
# library (`apt-get install patchelf`), since cargo build does not.
set -euo pipefail

if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 2
fi
prefix=$1
shift
case $prefix in
/*) ;;
*) prefix=$PWD/$prefix ;; # wsembed.pc needs an absolute prefix
esac
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}
release=$target_dir/release

if ! command -v patchelf >/dev/null; then
    echo "install.sh: patchelf is needed to set the soname (apt-get install patchelf)" >&2
    exit 1
fi
if [ "${WSEMBED_NO_BUILD:-}" != 1 ]; then
    cargo build --release --lib "$@"
fi

# The version comes from the generated header, which build.rs writes from
# Cargo.toml's version, so the two cannot disagree.
version_part() { sed -n "s/^#define WSEMBED_VERSION_$1 \([0-9]*\)$/\1/p" include/wsembed.h; }
major=$(version_part MAJOR)
minor=$(version_part MINOR)
patch=$(version_part PATCH)
# cargo-c's soname rule (semver): 0.0.Z -> 0.0.Z, 0.Y.Z -> 0.Y, X.Y.Z -> X.
if [ "$major" = 0 ] && [ "$minor" = 0 ]; then
    sover=0.0.$patch
elif [ "$major" = 0 ]; then
    sover=0.$minor
else
    sover=$major
fi
full=libwsembed.so.$major.$minor.$patch
description=$(sed -n 's/^description = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)

# What a program linking the static library needs besides it: rustc's
# native-static-libs for the standard library (wsembed's dependencies add
# no system library of their own), asked of this very toolchain.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
echo 'fn main() {}' >"$scratch/empty.rs"
static_libs=$(rustc --crate-type staticlib --print native-static-libs \
    -o "$scratch/libempty.a" "$scratch/empty.rs" 2>&1 |
    sed -n 's/.*native-static-libs: //p')

lib=${DESTDIR:-}$prefix/lib
inc=${DESTDIR:-}$prefix/include/wsembed
mkdir -p "$lib/pkgconfig" "$inc"

cp "$release/libwsembed.so" "$lib/$full.tmp"
patchelf --set-soname "libwsembed.so.$sover" "$lib/$full.tmp"
mv -f "$lib/$full.tmp" "$lib/$full" # a running program keeps the old file
ln -sf "$full" "$lib/libwsembed.so.$sover"
ln -sf "$full" "$lib/libwsembed.so"
cp "$release/libwsembed.a" "$lib/libwsembed.a"
cp include/wsembed.h bindings/cpp/wsembed.hpp "$inc/"

cat >"$lib/pkgconfig/wsembed.pc" <<EOF
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: wsembed
Description: $description
Version: $major.$minor.$patch
Libs: -L\${libdir} -lwsembed
Cflags: -I\${includedir}/wsembed
Libs.private: $static_libs
EOF

echo "installed wsembed $major.$minor.$patch (soname libwsembed.so.$sover) in ${DESTDIR:-}$prefix"
