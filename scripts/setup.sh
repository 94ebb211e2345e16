#!/usr/bin/env bash
# One-shot set-up of deepnotes on a fresh machine; safe to run again (it skips what is done).
#  1. As root with apt-get (Debian/Ubuntu): python3-venv if missing, and Fashion-MNIST from
#     the package dataset-fashion-mnist.
#  2. A virtual environment .venv with the pinned dependencies (requirements.lock) and
#     deepnotes installed editable.
#  3. Elsewhere, Fashion-MNIST by a checksummed download into the user cache where online;
#     without it, the report substitutes MNIST and says so.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
as_root_apt() { command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; }
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then apt-get update -qq >/dev/null 2>&1 || true; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

if ! command -v "$PY" >/dev/null 2>&1 && as_root_apt; then
  echo "setup: installing python3"
  apt_install python3 python3-venv || true
fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: deepnotes needs Python >= 3.11; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null && as_root_apt; then
  echo "setup: installing python3-venv"
  apt_install python3-venv || true
fi

fashion_dir=/usr/share/datasets/fashion-mnist
if [ ! -f "$fashion_dir/train-images-idx3-ubyte.gz" ] && as_root_apt; then
  echo "setup: installing Debian package dataset-fashion-mnist"
  apt_install dataset-fashion-mnist || echo "setup: apt-get could not install dataset-fashion-mnist; continuing"
fi

# A venv whose creation failed halfway has a python but no pip: make it again.
if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  echo "setup: creating .venv"
  rm -rf .venv
  "$PY" -m venv .venv
fi
stamp=.venv/.deepnotes-installed
if [ ! -f "$stamp" ] || [ requirements.lock -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing pinned dependencies (requirements.lock)"
  .venv/bin/python -m pip install -q -r requirements.lock
  .venv/bin/python -m pip install -q --no-deps -e .
  touch "$stamp"
fi

status=$(.venv/bin/deepnotes data 2>&1 || true)
if printf '%s\n' "$status" | grep -q "Fashion-MNIST: MISSING"; then
  echo "setup: Fashion-MNIST missing; trying the checksummed download"
  .venv/bin/deepnotes data --download >/dev/null 2>&1 || true
  status=$(.venv/bin/deepnotes data 2>&1 || true)
fi
printf '%s\n' "$status" | sed 's/^/setup: /'
