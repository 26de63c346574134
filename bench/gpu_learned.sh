#!/usr/bin/env bash
# The learned models trained on a lent GPU (issue 35): one run of the device tool, well inside one 10-minute call.
#   First the CUDA checks (tests/test_cuda.py), then the four bench models (LPBA40 and OASIS-TRT, unsupervised and
#   weak) trained from the packed training sets, MINUTES each (default 2), their model.pt, training.tsv and
#   training.png and a result with each model's SHA-256 under $OUT/learned (or bench/work/gpu_models).
#
# Here, once: python -m bench run learned_gpu pack      (bench/work/packed/{lpba40,oasis}.npz, git-ignored)
#             echo /.whl/ >> .git/info/exclude
#             python3 -m pip download --no-deps --only-binary=:all: -d .whl nibabel==5.4.2 monai==1.6.1
# (the device machine has torch, numpy, scipy and pytest, but not nibabel or MONAI, and cannot fetch them), then:
#   device run, carry [".whl", "bench/work/packed"], command "bash bench/gpu_learned.sh"
# Checked end to end on the CPU with a few seconds a model: MINUTES=0.05 DEVICE=cpu bash bench/gpu_learned.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/work}
MINUTES=${MINUTES:-2}
DEVICE=${DEVICE:-auto}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site:$PWD
fi
mkdir -p "$OUT/learned"
{
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
    if [ "$DEVICE" != "cpu" ]; then python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py; fi
    python3 -m bench run learned_gpu train --packed bench/work/packed --out "$OUT/learned" --minutes "$MINUTES" \
        --device "$DEVICE"
} 2>&1 | tee "$OUT/learned/gpu_learned.txt"
