#!/usr/bin/env bash
# One install for the Makefile and the Dockerfile, so the two cannot drift.
# usage: scripts/install.sh VENV_DIR [EXTRAS]   e.g. scripts/install.sh .venv dev
set -euo pipefail
venv=${1:-.venv}
extras=${2:-}
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
# torch first and alone: pip then takes the CPU build that lies on disk instead of a CUDA one.
# Elsewhere (the Docker image) TORCH_INDEX_URL names an index that serves the CPU build.
torch_source=()
[ -n "${TORCH_INDEX_URL:-}" ] && torch_source=(--index-url "$TORCH_INDEX_URL")
"$venv/bin/python" -c "import torch" 2>/dev/null || "${pip[@]}" install "${torch_source[@]}" "torch==2.13.0"
target="$here"
[ -n "$extras" ] && target="$here[$extras]"
"${pip[@]}" install -e "$target"
