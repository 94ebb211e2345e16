#!/usr/bin/env bash
# The prepared GPU check (issue 19): `pytest -m cuda`, then one quick-tier run each of
# cnn-fashion, char-lm, gpt-shakespeare and vae-fashion with --accelerator cuda
# --precision bf16-mixed, and one table of metric / train_seconds / throughput next to the
# last CPU figures of benchmarks/README.md with the tolerance check (scripts/gpu_check.py).
# At most 4 minutes on one H200. Without a CUDA GPU it says so in one line and exits 0.
#
# On the device machine (no network; its python3 has CUDA torch and most dependencies):
#   here, once:   bash scripts/gpu_carry.sh        # wheels + data into .gpu-carry (ignored)
#   device tool:  run(command="bash scripts/gpu_check.sh", carry=[".gpu-carry"], timeout_s=330)
# deepnotes is used from src/ (PYTHONPATH), not installed: no build isolation, no download.
# Arguments go to gpu_check.py (e.g. --only char-lm --skip-pytest; --accelerator cpu --tier
# smoke to try the pipeline on a CPU).
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
gpu_wanted=1
case " $* " in *" --accelerator cpu "*) gpu_wanted=0 ;; esac
if [ "$gpu_wanted" = 1 ] && ! "$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' \
    >/dev/null 2>&1; then
  echo "gpu_check: no CUDA GPU here ($PY sees none through torch); nothing to check"
  exit 0
fi

CARRY=.gpu-carry
SITE=${TMPDIR:-/tmp}/gpu-check-site
if compgen -G "$CARRY/wheels/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "$CARRY"/wheels/*.whl || { echo "gpu_check: wheel install failed" >&2; exit 1; }
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if [ -d "$CARRY/data" ]; then export DEEPNOTES_DATA="$PWD/$CARRY/data"; fi
export DEEPNOTES_HOME=${DEEPNOTES_HOME:-${TMPDIR:-/tmp}/gpu-check-home}
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
exec "$PY" scripts/gpu_check.py "$@"
