#!/usr/bin/env bash
# Installs Autobahn|Testsuite (`wstest`) into a Python 2.7 virtualenv, with
# every package pinned (tests/autobahn/requirements.txt), from PyPI.
#
#   tests/autobahn/install.sh        # prints the virtualenv's path last
#
# Where: $AUTOBAHN_VENV if set, else <target dir>/autobahn/venv, the target
# dir being $CARGO_TARGET_DIR or the repository's target/.
# Idempotent: a virtualenv whose stamp matches requirements.txt and that
# imports the suite is kept as it is (a second run takes a second).
#
# The suite runs on Python 2.7 only. The interpreter is $PYTHON27, else the
# pyenv one of this machine image, else python2.7 on PATH. The virtualenv is
# made by `virtualenv<20.22` (the last releases that create 2.7 envs), itself
# installed into a throwaway Python 3 venv beside it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="${AUTOBAHN_VENV:-$target/autobahn/venv}"
bootstrap="$(dirname "$venv")/virtualenv-bootstrap"
requirements="$here/requirements.txt"

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_PYTHON_VERSION_WARNING=1 PIP_NO_INPUT=1

log() { echo "install.sh: $*" >&2; }

stamp="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ -f "$venv/.wsembed-stamp" ] && [ "$(cat "$venv/.wsembed-stamp")" = "$stamp" ] &&
    "$venv/bin/python" -c 'import autobahntestsuite, autobahn, twisted' 2>/dev/null &&
    [ -x "$venv/bin/wstest" ]; then
    log "up to date: $venv"
    echo "$venv"
    exit 0
fi

python27="${PYTHON27:-}"
if [ -z "$python27" ]; then
    for candidate in /root/.pyenv/versions/2.7.18/bin/python2.7 "$(command -v python2.7 || true)"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            python27="$candidate"
            break
        fi
    done
fi
if [ -z "$python27" ] || ! "$python27" -c 'import sys; assert sys.version_info[:2] == (2, 7)' 2>/dev/null; then
    log "no Python 2.7 interpreter found (set PYTHON27=/path/to/python2.7)"
    exit 1
fi
python3="${PYTHON3:-python3}"

start=$SECONDS
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"

# virtualenv<20.22 in a throwaway Python 3 venv; where python3 has no venv
# module (Debian without python3-venv), in a plain directory on PYTHONPATH.
if "$bootstrap/bin/python" -c 'import virtualenv' 2>/dev/null; then
    virtualenv=("$bootstrap/bin/python" -m virtualenv)
elif PYTHONPATH="$bootstrap/site" "$python3" -c 'import virtualenv' 2>/dev/null; then
    virtualenv=(env PYTHONPATH="$bootstrap/site" "$python3" -m virtualenv)
else
    log "bootstrap virtualenv<20.22: $bootstrap"
    rm -rf "$bootstrap"
    if "$python3" -m venv "$bootstrap" 2>/dev/null; then
        "$bootstrap/bin/python" -m pip install --quiet 'virtualenv<20.22'
        virtualenv=("$bootstrap/bin/python" -m virtualenv)
    else
        rm -rf "$bootstrap"
        "$python3" -m pip install --quiet --target "$bootstrap/site" 'virtualenv<20.22'
        virtualenv=(env PYTHONPATH="$bootstrap/site" "$python3" -m virtualenv)
    fi
fi

log "Python 2.7 virtualenv: $venv ($python27)"
"${virtualenv[@]}" --quiet --python "$python27" "$venv"

log "pip install -r $(basename "$requirements")"
"$venv/bin/python" -m pip install --quiet -r "$requirements"

"$venv/bin/python" -c 'import autobahntestsuite, autobahn, twisted, wsaccel, ujson'
"$venv/bin/wstest" --help >/dev/null
echo "$stamp" >"$venv/.wsembed-stamp"
log "installed in $((SECONDS - start)) s: $("$venv/bin/python" -m pip freeze 2>/dev/null | grep -i '^autobahntestsuite')"
echo "$venv"
