#!/usr/bin/env bash
# The GPU check: one short run on a lent GPU machine (the device tool), about 3 minutes.
#   CUDA tests (tests/test_cuda.py), then the torch engine's, the torch affine's and the learned network's
#   timings on CPU and CUDA (bench/gpu.py). Prints everything; its results land in $OUT (or bench/results).
#
# The device machine has torch, numpy, scipy and pytest, but not nibabel or MONAI, and cannot fetch them.
# Here, once:  echo /.whl/ >> .git/info/exclude
#              python3 -m pip download --no-deps --only-binary=:all: -d .whl nibabel==5.4.2 monai==1.6.1
# (both pure-Python wheels), then:  device run, carry [".whl"], command "bash bench/gpu_check.sh"
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site:$PWD
fi
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
    python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py
    python3 -m bench run gpu --devices cpu cuda --out "$OUT/gpu_check.json"
} 2>&1 | tee "$OUT/gpu_check.txt"
