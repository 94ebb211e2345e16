#!/usr/bin/env bash
# One-shot set-up of deepnotes on a fresh machine; safe to run again (it skips what is done).
#  1. Fashion-MNIST: Debian's dataset-fashion-mnist package where apt-get and root exist,
#     else a checksummed download into the user cache where online, else report the fallback.
#  2. A virtual environment .venv with the pinned dependencies (requirements.lock) and
#     deepnotes installed editable.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: deepnotes needs Python >= 3.11; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

fashion_dir=/usr/share/datasets/fashion-mnist
if [ ! -f "$fashion_dir/train-images-idx3-ubyte.gz" ] && command -v apt-get >/dev/null 2>&1 \
   && [ "$(id -u)" = 0 ]; then
  echo "setup: installing Debian package dataset-fashion-mnist"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) \
    >/dev/null 2>&1 || echo "setup: apt-get could not install dataset-fashion-mnist; continuing"
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.deepnotes-installed
if [ ! -f "$stamp" ] || [ requirements.lock -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing pinned dependencies (requirements.lock)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q -r requirements.lock
  .venv/bin/python -m pip install -q --no-deps -e .
  touch "$stamp"
fi

if ! .venv/bin/deepnotes data >/dev/null 2>&1 || .venv/bin/deepnotes data | grep -q MISSING; then
  .venv/bin/deepnotes data --download >/dev/null 2>&1 || true
fi
.venv/bin/deepnotes data | sed 's/^/setup: /'
