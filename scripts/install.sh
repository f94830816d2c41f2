#!/usr/bin/env bash
# Install codeact and its embedded model into ./.venv. Safe to run again: finished steps are skipped.
#
#   bash scripts/install.sh
#
# Why a script and not just `pip install -e '.[local]'`: llama-cpp-python ships as source only, and
# a default build tunes itself to the build machine's CPU; on CPUs with AMX that build crashes on
# the first generated token. We build it once with GGML_NATIVE=OFF, keep the wheel in a cache (with
# a stamp recording how it was built), and install that wheel before pip can build its own.
#
# Settings (environment variables):
#   PYTHON                    interpreter for the venv (default: python3; needs >= 3.10)
#   CODEACT_VENV              venv directory (default: .venv)
#   CODEACT_EXTRAS            extras to install (default: every extra but litellm)
#   CODEACT_PIP_ARGS          extra arguments for every pip install (e.g. an --index-url)
#   CODEACT_WHEEL_CACHE       where the built llama-cpp-python wheel is kept
#                             (default: ~/.cache/codeact/wheels)
#   CODEACT_LLAMA_CMAKE_ARGS  CMake flags for llama.cpp (default: -DGGML_NATIVE=OFF)
#   CODEACT_CACHE_DIR         where assembled model files go (default: the user cache dir)
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_VERSION=0.3.36
PYTHON=${PYTHON:-python3}
VENV=${CODEACT_VENV:-.venv}
EXTRAS=${CODEACT_EXTRAS-local,local-small,server,anthropic,telemetry,bench-peers,mcp,ray,export,serve,browser-tests,dev}
EXTRAS=${EXTRAS// /}
WHEELS=${CODEACT_WHEEL_CACHE:-$HOME/.cache/codeact/wheels}
CMAKE_FLAGS=${CODEACT_LLAMA_CMAKE_ARGS:--DGGML_NATIVE=OFF}
read -r -a PIP_ARGS <<<"${CODEACT_PIP_ARGS:-}"
VPY=$VENV/bin/python

step() { printf '==> %s\n' "$*"; }
die() {
    printf 'install.sh: error: %s\n' "$*" >&2
    exit 1
}
has_extra() { [[ ",$EXTRAS," == *",$1,"* ]]; }
# Every pip call goes through the venv's pip, with the user's extra arguments (if any).
pip() { "$VPY" -m pip "$@" ${PIP_ARGS[@]+"${PIP_ARGS[@]}"}; }

# -- 1. a venv with Python >= 3.10 ----------------------------------------------------------------
command -v "$PYTHON" >/dev/null || die "no '$PYTHON' on PATH; set PYTHON=/path/to/python3.10+"
version_ok='import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'
"$PYTHON" -c "$version_ok" ||
    die "$("$PYTHON" -V 2>&1) is too old; codeact needs Python >= 3.10 (set PYTHON=...)"
if [[ ! -x $VPY ]]; then
    step "creating $VENV with $("$PYTHON" -V 2>&1)"
    "$PYTHON" -m venv "$VENV" ||
        die "could not create a venv; on Debian/Ubuntu: apt-get install python3-venv"
    pip install -q --upgrade pip
else
    "$VPY" -c "$version_ok" || die "$VENV uses $("$VPY" -V 2>&1); remove it and run this again"
    step "using $VENV ($("$VPY" -V 2>&1))"
fi

# -- 2. llama-cpp-python, built once with portable flags ------------------------------------------
MODELS=()
has_extra local && MODELS+=(1.5b)
has_extra local-small && MODELS+=(0.5b)
if ((${#MODELS[@]})); then
    mkdir -p "$WHEELS"
    stamp_text="llama-cpp-python==$LLAMA_VERSION CMAKE_ARGS=$CMAKE_FLAGS machine=$(uname -m)"
    wheel=""
    for candidate in "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl; do
        if [[ -f $candidate && -f $candidate.stamp && "$(<"$candidate.stamp")" == "$stamp_text" ]]; then
            wheel=$candidate
        fi
    done
    if [[ -z $wheel ]]; then
        command -v c++ >/dev/null || command -v g++ >/dev/null ||
            die "building llama.cpp needs a C++ compiler; on Debian/Ubuntu: apt-get install build-essential"
        step "building llama-cpp-python $LLAMA_VERSION with CMAKE_ARGS=$CMAKE_FLAGS (once, a few minutes)"
        build=$(mktemp -d "$WHEELS/build.XXXXXX")
        trap 'rm -rf "$build"' EXIT
        if ! CMAKE_ARGS="$CMAKE_FLAGS" pip wheel --no-cache-dir --no-deps \
            -w "$build" "llama-cpp-python==$LLAMA_VERSION" >"$build/build.log" 2>&1; then
            tail -n 30 "$build/build.log" >&2
            cp "$build/build.log" "$WHEELS/build-failed.log"
            die "building llama-cpp-python failed; full log: $WHEELS/build-failed.log"
        fi
        built=("$build"/llama_cpp_python-"$LLAMA_VERSION"-*.whl)
        [[ -f ${built[0]} ]] || die "pip reported success but left no wheel in $build"
        wheel=$WHEELS/$(basename "${built[0]}")
        mv -f "${built[0]}" "$wheel"
        printf '%s' "$stamp_text" >"$wheel.stamp"
        rm -rf "$build"
        trap - EXIT
    else
        step "reusing $(basename "$wheel") (built with CMAKE_ARGS=$CMAKE_FLAGS)"
    fi
    # Reinstall only when the venv holds something else (e.g. a crashing default build): pip
    # records the hash of the wheel it installed from in direct_url.json.
    wheel_sum=$(sha256sum "$wheel" | cut -d' ' -f1)
    installed_sum=$("$VPY" -c '
import json
from importlib.metadata import distribution
info = json.loads(distribution("llama_cpp_python").read_text("direct_url.json") or "{}")
print(info.get("archive_info", {}).get("hash", "").replace("sha256=", ""))
' 2>/dev/null || true)
    if [[ $installed_sum != "$wheel_sum" ]]; then
        step "installing $(basename "$wheel")"
        pip install -q --force-reinstall --no-deps "$wheel"
    fi
fi

# -- 3. codeact itself, editable, with the chosen extras (the weight parts come with them) --------
step "installing codeact${EXTRAS:+[$EXTRAS]} (editable)"
pip install -q -e ".${EXTRAS:+[$EXTRAS]}"

# -- 3b. a real browser for the web page's tests (Debian's chromium; Playwright drives it) ------
if has_extra browser-tests && ! command -v chromium >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        step "installing chromium (apt) for the browser tests"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q chromium >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } ||
            die "apt-get install chromium failed; install it, or leave browser-tests out of CODEACT_EXTRAS"
    else
        printf 'install.sh: note: the browser tests need chromium: sudo apt-get install chromium\n' >&2
    fi
fi

# -- 4. join and verify the model weights, then prove one token can be generated ------------------
if ((${#MODELS[@]})); then
    step "assembling and verifying model weights: ${MODELS[*]}"
    "$VPY" -m codeact.models._weights "${MODELS[@]}"
    smallest=${MODELS[${#MODELS[@]} - 1]}
    step "smoke test: the $smallest model generates a reply"
    set +e
    "$VPY" - "$smallest" <<'EOF'
import sys
from codeact.models.base import Message
from codeact.models.local import LocalModel

model = LocalModel(sys.argv[1], n_ctx=512, max_tokens=4)
reply = model.complete([Message("user", "Say OK.")])
print(f"    reply: {reply.text.strip()!r} ({reply.usage.completion_tokens} tokens)")
EOF
    status=$?
    set -e
    if ((status != 0)); then
        if ((status > 128)); then
            die "llama.cpp crashed (signal $((status - 128))) on this CPU with CMAKE_ARGS=$CMAKE_FLAGS.
    Run again with other llama.cpp CMake flags in CODEACT_LLAMA_CMAKE_ARGS; the wheel is rebuilt when they change."
        fi
        die "the smoke test failed (exit status $status); see the error above"
    fi
fi

step "done. Try: $VENV/bin/codeact run \"What is the sum of the primes below 100?\""
